/* ggml_ref.c - dlopen of libggml-base.so for the differential and interop tests (see ggml_ref.h). */
#include "ggml_ref.h"

#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GGML_DEFAULT_PATH "tools/interop/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so"

/* Byte offset of ne[] in struct ggml_tensor (fallback only; see ggml_ref.h). */
#define GGML_TENSOR_NE_OFFSET 16

bool mq_ggml_open(struct mq_ggml *g, char *why, size_t why_len)
{
    memset(g, 0, sizeof *g);
    const char *env = getenv("MODELQ_GGML_LIB");
    snprintf(g->path, sizeof g->path, "%s", env && *env ? env : GGML_DEFAULT_PATH);
    g->handle = dlopen(g->path, RTLD_NOW | RTLD_LOCAL);
    if (!g->handle) {
        snprintf(why, why_len, "cannot load %s (%s); run tools/setup.sh (npm ci in tools/interop)", g->path,
                 dlerror());
        return false;
    }
#define SYM(name, field) {#name, (void **)&g->field, false}
#define SYM_SAME(name) {#name, (void **)&g->name, false}
    struct {
        const char *name;
        void **slot;
        bool optional;
    } syms[] = {
        SYM(ggml_quantize_chunk, quantize_chunk),
        SYM(ggml_quantize_init, quantize_init),
        SYM(ggml_fp32_to_fp16, fp32_to_fp16),
        SYM(ggml_fp16_to_fp32, fp16_to_fp32),
        SYM(ggml_fp32_to_bf16, fp32_to_bf16),
        SYM_SAME(ggml_version),
        SYM_SAME(ggml_init),
        SYM_SAME(ggml_free),
        SYM_SAME(ggml_tensor_overhead),
        SYM_SAME(ggml_new_tensor),
        SYM_SAME(ggml_set_name),
        SYM_SAME(ggml_get_tensor),
        SYM_SAME(ggml_get_data),
        SYM_SAME(ggml_nbytes),
        SYM_SAME(ggml_nelements),
        SYM_SAME(ggml_n_dims),
        SYM_SAME(ggml_row_size),
        SYM_SAME(gguf_init_from_file),
        SYM_SAME(gguf_free),
        SYM_SAME(gguf_get_version),
        SYM_SAME(gguf_get_alignment),
        SYM_SAME(gguf_get_data_offset),
        SYM_SAME(gguf_get_n_kv),
        SYM_SAME(gguf_get_key),
        SYM_SAME(gguf_get_kv_type),
        SYM_SAME(gguf_get_arr_type),
        SYM_SAME(gguf_get_arr_n),
        SYM_SAME(gguf_get_arr_data),
        SYM_SAME(gguf_get_arr_str),
        SYM_SAME(gguf_get_val_u8),
        SYM_SAME(gguf_get_val_i8),
        SYM_SAME(gguf_get_val_u16),
        SYM_SAME(gguf_get_val_i16),
        SYM_SAME(gguf_get_val_u32),
        SYM_SAME(gguf_get_val_i32),
        SYM_SAME(gguf_get_val_f32),
        SYM_SAME(gguf_get_val_u64),
        SYM_SAME(gguf_get_val_i64),
        SYM_SAME(gguf_get_val_f64),
        SYM_SAME(gguf_get_val_bool),
        SYM_SAME(gguf_get_val_str),
        SYM_SAME(gguf_get_n_tensors),
        SYM_SAME(gguf_get_tensor_name),
        SYM_SAME(gguf_get_tensor_type),
        SYM_SAME(gguf_get_tensor_offset),
        SYM_SAME(gguf_get_tensor_size),
        {"gguf_get_tensor_ne", (void **)&g->gguf_get_tensor_ne, true},
        SYM_SAME(gguf_init_empty),
        SYM_SAME(gguf_set_val_u8),
        SYM_SAME(gguf_set_val_i8),
        SYM_SAME(gguf_set_val_u16),
        SYM_SAME(gguf_set_val_i16),
        SYM_SAME(gguf_set_val_u32),
        SYM_SAME(gguf_set_val_i32),
        SYM_SAME(gguf_set_val_f32),
        SYM_SAME(gguf_set_val_u64),
        SYM_SAME(gguf_set_val_i64),
        SYM_SAME(gguf_set_val_f64),
        SYM_SAME(gguf_set_val_bool),
        SYM_SAME(gguf_set_val_str),
        SYM_SAME(gguf_set_arr_data),
        SYM_SAME(gguf_set_arr_str),
        SYM_SAME(gguf_add_tensor),
        SYM_SAME(gguf_write_to_file),
    };
#undef SYM
#undef SYM_SAME
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *p = dlsym(g->handle, syms[i].name);
        if (!p && !syms[i].optional) {
            snprintf(why, why_len, "%s: missing symbol %s", g->path, syms[i].name);
            dlclose(g->handle);
            g->handle = NULL;
            return false;
        }
        /* ISO C has no conversion from void * to a function pointer; dlsym's contract is that
        ** the bytes are the function's address. */
        memcpy(syms[i].slot, &p, sizeof p);
    }
    return true;
}

void mq_ggml_close(struct mq_ggml *g)
{
    if (g->handle) dlclose(g->handle);
    g->handle = NULL;
}

bool mq_ggml_tensor_ne(const struct mq_ggml *g, const struct ggml_tensor *t, int64_t ne[4], char *why,
                       size_t why_len)
{
    memcpy(ne, (const unsigned char *)t + GGML_TENSOR_NE_OFFSET, 4 * sizeof ne[0]);
    int64_t prod = 1;
    int last = 0;
    for (int d = 0; d < 4; d++) {
        if (ne[d] < 0) prod = -1;
        else if (prod >= 0) prod *= ne[d];
        if (ne[d] > 1) last = d;
    }
    int64_t want = g->ggml_nelements(t);
    int dims = g->ggml_n_dims(t);
    if (prod != want || last + 1 != dims) {
        snprintf(why, why_len,
                 "struct ggml_tensor layout differs from the assumed one: ne at byte %d reads "
                 "[%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "] but ggml_nelements is %" PRId64
                 " and ggml_n_dims %d",
                 GGML_TENSOR_NE_OFFSET, ne[0], ne[1], ne[2], ne[3], want, dims);
        return false;
    }
    return true;
}
