/*
** vocab_compare.h - token ids from llama.cpp reading a GGUF's tokenizer metadata against the
** pinned Hugging Face tokenizers library (tools/interop-tokenizer/encode.mjs) reading the
** tokenizer.json it describes, for tests/test_gguf_vocab.c and tests/test_spm_vocab.c.
**
** llama.cpp is libllama from the pinned @node-llama-cpp/linux-x64 (llama_lib.h), loaded once by
** vc_need_interop() into vc_llama. Without node_modules (tools/setup.sh) the comparisons skip;
** with CI set they fail.
*/
#ifndef MODELQ_TEST_VOCAB_COMPARE_H
#define MODELQ_TEST_VOCAB_COMPARE_H

#include <stdbool.h>
#include <stddef.h>

#include "llama_lib.h"
#include "modelq/meta.h"

/* Texts: prose, leading/trailing/runs of spaces, digits, punctuation, newlines, tabs, CR LF,
** accented Latin, CJK, emoji, Greek/Cyrillic, contractions, code, URLs, combining marks, "". */
extern const char *const vc_common_texts[];
extern const size_t VC_N_COMMON;

struct vc_texts {
    const char *v[64];
    size_t n;
};

/* vc_common_texts followed by `special` (texts with the fixture's special tokens). */
struct vc_texts vc_texts_for(const char *const *special, size_t n_special);

extern struct mq_llama vc_llama;

/* Loads libllama and checks tokenizers.js is installed, else skips the test (fails under CI). */
void vc_need_interop(void);

/* `m` as a metadata-only GGUF at `path`. */
void vc_write_gguf(const char *path, const struct mq_meta *m);

/* The llama hyper-parameters a vocab-only load reads (general.architecture "llama" ...). */
void vc_add_vocab_only_hparams(struct mq_meta *m);

/*
** llama.cpp (loading `gguf`) against tokenizers.js (reading `dir`) on every text, without and
** with special tokens (llama_tokenize add_special <-> encode add_special_tokens). With
** `expect_equal` the first difference fails the test with both id lists; else returns the number
** of tokenizations that differ (for negative controls). *n_ids: llama.cpp's id count.
*/
size_t vc_compare(const char *gguf, const char *dir, const struct vc_texts *t, bool expect_equal, size_t *n_ids);

#endif
