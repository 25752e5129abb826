/*
** llama_quantize.h - llama.cpp's own llama-quantize (llama_model_quantize in the pinned libllama,
** see llama_lib.h), called in-process: the reference for modelq's GGUF file types.
**
** ABI: struct llama_model_quantize_params is passed by pointer; llama_quantize.c mirrors that
** release's layout (64 bytes: nthread, ftype, output_tensor_type, token_embedding_type, six
** bools, four pointers imatrix / kv_overrides / tt_overrides / prune_layers, then 8 bytes this
** release adds after them) and takes the library's llama_model_quantize_default_params() as the
** start, after checking every default it knows (ftype Q8_0, quantize_output_tensor only, no
** type overrides = GGML_TYPE_COUNT 43, NULL pointers), so fields it does not name keep the
** library's defaults and a different layout fails loudly.
*/
#ifndef MODELQ_TEST_LLAMA_QUANTIZE_H
#define MODELQ_TEST_LLAMA_QUANTIZE_H

#include <stdbool.h>
#include <stddef.h>

/* Loads libllama and checks the params layout; false with a reason in why. */
bool mq_llama_quantize_open(char *why, size_t why_len);

/*
** llama_model_quantize(in, out, {ftype, nthread, defaults otherwise}): the GGUF `in` (F32/F16/BF16
** tensors) quantized to llama_ftype `ftype` in `out`. Returns llama.cpp's status (0 = success);
** on failure `why` holds the end of llama.cpp's log.
*/
int mq_llama_quantize_run(const char *in, const char *out, int ftype, int nthread, char *why, size_t why_len);

/*
** One importance vector for llama_model_quantize: include/llama.h's struct llama_model_imatrix_data
** of the release (params.imatrix points to an array of them ended by a NULL name; libllama copies
** it into its std::unordered_map<std::string, std::vector<float>>, so no C++ is needed here).
** data holds size floats: n_per_row, or n_per_row x experts for a 3-D expert tensor (expert e at
** e * n_per_row), as llama-quantize's load_imatrix leaves them.
*/
struct mq_llama_imatrix {
    const char *name;
    const float *data;
    size_t size;
};

/*
** mq_llama_quantize_run with params.imatrix = entries (terminated by a NULL name; NULL = none).
** Fails (nonzero, reason in why) also when libllama's log does not report exactly that many
** entries ("have importance matrix data with N entries"): a layout drift fails loudly.
*/
int mq_llama_quantize_run_imatrix(const char *in, const char *out, int ftype, int nthread,
                                  const struct mq_llama_imatrix *entries, char *why, size_t why_len);

#endif
