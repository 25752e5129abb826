/*
** ggml_ref.h - llama.cpp's libggml-base.so, loaded with dlopen for differential tests.
**
** The library comes from the npm package @node-llama-cpp/linux-x64, pinned in
** tools/interop/package-lock.json and installed by tools/setup.sh (npm ci). Its path is
** $MODELQ_GGML_LIB when set, else tools/interop/node_modules/@node-llama-cpp/linux-x64/bins/
** linux-x64/libggml-base.so relative to the working directory (tests run from the repo root).
*/
#ifndef MODELQ_GGML_REF_H
#define MODELQ_GGML_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mq_ggml {
    void *handle;
    char path[1024];
    /* size_t ggml_quantize_chunk(enum ggml_type, const float *src, void *dst, int64_t start,
     *                            int64_t nrows, int64_t n_per_row, const float *imatrix) */
    size_t (*quantize_chunk)(int type, const float *src, void *dst, int64_t start, int64_t nrows,
                             int64_t n_per_row, const float *imatrix);
    void (*quantize_init)(int type);
    uint16_t (*fp32_to_fp16)(float);
    float (*fp16_to_fp32)(uint16_t);
    uint16_t (*fp32_to_bf16)(float); /* ggml_bf16_t is a struct of one uint16_t: same ABI */
};

/* Loads the library; on failure returns false with a reason in `why`. */
bool mq_ggml_open(struct mq_ggml *g, char *why, size_t why_len);
void mq_ggml_close(struct mq_ggml *g);

#endif /* MODELQ_GGML_REF_H */
