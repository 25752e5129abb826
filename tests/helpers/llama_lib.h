/*
** llama_lib.h - llama.cpp's libllama, loaded with dlopen, to load a GGUF's vocabulary and tokenize
** with llama.cpp itself (tests/test_gguf_vocab.c).
**
** The library comes from the npm package @node-llama-cpp/linux-x64 3.22.1 (pinned in
** tools/interop/package-lock.json, installed by tools/setup.sh): bins/linux-x64/libllama*.so,
** built from llama.cpp release v0.5.0 (bins/linux-x64/_nlcBuildMetadata.json). $MODELQ_LLAMA_LIB
** overrides the path. Its RUNPATH is $ORIGIN, so libggml*.so beside it are found.
**
** struct llama_model_params is passed by value, so its layout must be exactly that release's
** include/llama.h; llama_lib.c declares it and checks the defaults llama_model_default_params()
** returns against that header before anything is loaded.
*/
#ifndef MODELQ_LLAMA_LIB_H
#define MODELQ_LLAMA_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mq_llama {
    void *handle;
    char path[1024];
};

/* Loads the library and checks the ABI; on failure returns false with a reason in `why`. */
bool mq_llama_open(struct mq_llama *l, char *why, size_t why_len);

/* Loads only the vocabulary of a GGUF (vocab_only = true). NULL on failure, with llama.cpp's
** last log lines in `why`. */
void *mq_llama_load_vocab(struct mq_llama *l, const char *gguf_path, char *why, size_t why_len);
void mq_llama_free_model(struct mq_llama *l, void *model);

/* llama_tokenize(vocab, text, len, ids, cap, add_special, parse_special = true): the token count,
** or a negative number (-needed) when cap is too small. */
int32_t mq_llama_tokenize(struct mq_llama *l, void *model, const char *text, size_t len, bool add_special,
                          int32_t *ids, int32_t cap);

/* llama_vocab_n_tokens, llama_vocab_type (1 SPM, 2 BPE), llama_vocab_bos/eos, get_add_bos/eos,
** llama_vocab_get_score, llama_vocab_get_attr. */
int32_t mq_llama_n_tokens(struct mq_llama *l, void *model);
int mq_llama_vocab_type(struct mq_llama *l, void *model);
int32_t mq_llama_bos(struct mq_llama *l, void *model);
int32_t mq_llama_eos(struct mq_llama *l, void *model);
bool mq_llama_add_bos(struct mq_llama *l, void *model);
bool mq_llama_add_eos(struct mq_llama *l, void *model);
float mq_llama_score(struct mq_llama *l, void *model, int32_t id);
/* the token's text as llama.cpp holds it */
const char *mq_llama_text(struct mq_llama *l, void *model, int32_t id);

#endif /* MODELQ_LLAMA_LIB_H */
