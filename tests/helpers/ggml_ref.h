/*
** ggml_ref.h - llama.cpp's libggml-base.so, loaded with dlopen for differential and interop tests.
**
** The library comes from the npm package @node-llama-cpp/linux-x64, pinned in
** tools/interop/package-lock.json and installed by tools/setup.sh (npm ci). Its path is
** $MODELQ_GGML_LIB when set, else tools/interop/node_modules/@node-llama-cpp/linux-x64/bins/
** linux-x64/libggml-base.so relative to the working directory (tests run from the repo root).
** Version 3.22.1 of the package ships ggml 0.25.1 (ggml_version(), commit 0ad4a86).
**
** What is bound (every function pointer below is non-NULL after mq_ggml_open, except the one
** marked optional):
**   - quantizers and half conversions (tests/test_ggml_diff.c);
**   - ggml's GGUF reader: gguf_init_from_file and the gguf_get_* accessors. Used by
**     tests/helpers/gguf_dump.c, which is the friendlier way to read a file;
**   - ggml's GGUF writer: gguf_init_empty, gguf_set_val_*, gguf_set_arr_*, gguf_add_tensor,
**     gguf_write_to_file, with ggml_init / ggml_new_tensor / ggml_set_name / ggml_get_data for
**     the tensors (tests/test_gguf_interop.c writes reference files with it).
**
** ABI notes (this header does not include ggml's; the prototypes are transcribed from
** ggml/include/ggml.h and gguf.h of that version):
**   - enum ggml_type and enum gguf_type are passed and returned as int.
**   - struct gguf_init_params {bool no_alloc; struct ggml_context **ctx;} and
**     struct ggml_init_params {size_t mem_size; void *mem_buffer; bool no_alloc;} are passed by
**     value; the mq_ copies below have the same members in the same order, hence the same layout.
**   - ggml_bf16_t is a struct of one uint16_t: returned like a uint16_t.
**   - gguf_get_val_<T> and gguf_get_arr_data abort the process (GGML_ASSERT) when the key has
**     another type, or (arr_data) is a string array: check gguf_get_kv_type/arr_type first.
**   - A tensor's dimensions: gguf_get_tensor_ne(ctx, id) returns ggml's int64_t ne[4] (trailing
**     dimensions 1). It is recent (not in every ggml), so it is optional here; without it
**     mq_ggml_tensor_ne() falls back to reading ne[] out of struct ggml_tensor, whose first members
**     have been {enum ggml_type type; struct ggml_backend_buffer *buffer; int64_t ne[4]; ...}
**     since 2023 (ne at byte 16 on LP64), and accepts that only when the product of the four dims
**     equals ggml_nelements(t) and the last dim > 1 is ggml_n_dims(t) - 1. Either way the caller
**     should cross-check against ggml_nelements; gguf_dump.c does.
*/
#ifndef MODELQ_GGML_REF_H
#define MODELQ_GGML_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Opaque ggml types (incomplete here; only pointers cross the boundary). */
struct ggml_context;
struct ggml_tensor;
struct gguf_context;

/* ggml_type ids used by the tests (include/ggml.h enum ggml_type). */
enum {
    GGREF_GGML_F32 = 0,
    GGREF_GGML_F16 = 1,
    GGREF_GGML_Q4_0 = 2,
    GGREF_GGML_Q4_1 = 3,
    GGREF_GGML_Q8_0 = 8,
    GGREF_GGML_Q5_K = 13,
    GGREF_GGML_Q6_K = 14,
    GGREF_GGML_IQ4_NL = 20,
    GGREF_GGML_BF16 = 30
};

/* gguf_type ids (include/gguf.h enum gguf_type; stored in files as int32). */
enum {
    GGREF_GGUF_UINT8 = 0,
    GGREF_GGUF_INT8 = 1,
    GGREF_GGUF_UINT16 = 2,
    GGREF_GGUF_INT16 = 3,
    GGREF_GGUF_UINT32 = 4,
    GGREF_GGUF_INT32 = 5,
    GGREF_GGUF_FLOAT32 = 6,
    GGREF_GGUF_BOOL = 7,
    GGREF_GGUF_STRING = 8,
    GGREF_GGUF_ARRAY = 9,
    GGREF_GGUF_UINT64 = 10,
    GGREF_GGUF_INT64 = 11,
    GGREF_GGUF_FLOAT64 = 12,
    GGREF_GGUF_COUNT = 13
};

/* Same layout as ggml's struct gguf_init_params. */
struct mq_gguf_init_params {
    bool no_alloc;               /* false: ggml reads (and size-checks) all tensor data */
    struct ggml_context **ctx;   /* if not NULL: receives a ggml context holding the tensors */
};

/* Same layout as ggml's struct ggml_init_params. */
struct mq_ggml_init_params {
    size_t mem_size;
    void *mem_buffer;
    bool no_alloc;
};

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

    /* ggml core: contexts and tensors */
    const char *(*ggml_version)(void);
    struct ggml_context *(*ggml_init)(struct mq_ggml_init_params params);
    void (*ggml_free)(struct ggml_context *ctx);
    size_t (*ggml_tensor_overhead)(void);
    struct ggml_tensor *(*ggml_new_tensor)(struct ggml_context *ctx, int type, int n_dims, const int64_t *ne);
    struct ggml_tensor *(*ggml_set_name)(struct ggml_tensor *t, const char *name);
    struct ggml_tensor *(*ggml_get_tensor)(struct ggml_context *ctx, const char *name);
    void *(*ggml_get_data)(const struct ggml_tensor *t);
    size_t (*ggml_nbytes)(const struct ggml_tensor *t);
    int64_t (*ggml_nelements)(const struct ggml_tensor *t);
    int (*ggml_n_dims)(const struct ggml_tensor *t);
    size_t (*ggml_row_size)(int type, int64_t ne);

    /* GGUF reader (gguf.h). Returns NULL for a file ggml refuses (reason printed on stderr). */
    struct gguf_context *(*gguf_init_from_file)(const char *fname, struct mq_gguf_init_params params);
    void (*gguf_free)(struct gguf_context *ctx);
    uint32_t (*gguf_get_version)(const struct gguf_context *ctx);
    size_t (*gguf_get_alignment)(const struct gguf_context *ctx);
    size_t (*gguf_get_data_offset)(const struct gguf_context *ctx);
    int64_t (*gguf_get_n_kv)(const struct gguf_context *ctx);
    const char *(*gguf_get_key)(const struct gguf_context *ctx, int64_t key_id);
    int (*gguf_get_kv_type)(const struct gguf_context *ctx, int64_t key_id);
    int (*gguf_get_arr_type)(const struct gguf_context *ctx, int64_t key_id);
    size_t (*gguf_get_arr_n)(const struct gguf_context *ctx, int64_t key_id);
    const void *(*gguf_get_arr_data)(const struct gguf_context *ctx, int64_t key_id);
    const char *(*gguf_get_arr_str)(const struct gguf_context *ctx, int64_t key_id, size_t i);
    uint8_t (*gguf_get_val_u8)(const struct gguf_context *ctx, int64_t key_id);
    int8_t (*gguf_get_val_i8)(const struct gguf_context *ctx, int64_t key_id);
    uint16_t (*gguf_get_val_u16)(const struct gguf_context *ctx, int64_t key_id);
    int16_t (*gguf_get_val_i16)(const struct gguf_context *ctx, int64_t key_id);
    uint32_t (*gguf_get_val_u32)(const struct gguf_context *ctx, int64_t key_id);
    int32_t (*gguf_get_val_i32)(const struct gguf_context *ctx, int64_t key_id);
    float (*gguf_get_val_f32)(const struct gguf_context *ctx, int64_t key_id);
    uint64_t (*gguf_get_val_u64)(const struct gguf_context *ctx, int64_t key_id);
    int64_t (*gguf_get_val_i64)(const struct gguf_context *ctx, int64_t key_id);
    double (*gguf_get_val_f64)(const struct gguf_context *ctx, int64_t key_id);
    bool (*gguf_get_val_bool)(const struct gguf_context *ctx, int64_t key_id);
    const char *(*gguf_get_val_str)(const struct gguf_context *ctx, int64_t key_id);
    int64_t (*gguf_get_n_tensors)(const struct gguf_context *ctx);
    const char *(*gguf_get_tensor_name)(const struct gguf_context *ctx, int64_t tensor_id);
    int (*gguf_get_tensor_type)(const struct gguf_context *ctx, int64_t tensor_id);
    size_t (*gguf_get_tensor_offset)(const struct gguf_context *ctx, int64_t tensor_id);
    size_t (*gguf_get_tensor_size)(const struct gguf_context *ctx, int64_t tensor_id);
    /* optional (NULL when the library lacks it): ggml's ne[4] of a tensor */
    const int64_t *(*gguf_get_tensor_ne)(const struct gguf_context *ctx, int64_t tensor_id);

    /* GGUF writer (gguf.h) */
    struct gguf_context *(*gguf_init_empty)(void);
    void (*gguf_set_val_u8)(struct gguf_context *ctx, const char *key, uint8_t val);
    void (*gguf_set_val_i8)(struct gguf_context *ctx, const char *key, int8_t val);
    void (*gguf_set_val_u16)(struct gguf_context *ctx, const char *key, uint16_t val);
    void (*gguf_set_val_i16)(struct gguf_context *ctx, const char *key, int16_t val);
    void (*gguf_set_val_u32)(struct gguf_context *ctx, const char *key, uint32_t val);
    void (*gguf_set_val_i32)(struct gguf_context *ctx, const char *key, int32_t val);
    void (*gguf_set_val_f32)(struct gguf_context *ctx, const char *key, float val);
    void (*gguf_set_val_u64)(struct gguf_context *ctx, const char *key, uint64_t val);
    void (*gguf_set_val_i64)(struct gguf_context *ctx, const char *key, int64_t val);
    void (*gguf_set_val_f64)(struct gguf_context *ctx, const char *key, double val);
    void (*gguf_set_val_bool)(struct gguf_context *ctx, const char *key, bool val);
    void (*gguf_set_val_str)(struct gguf_context *ctx, const char *key, const char *val);
    /* n elements of gguf type `type` copied from data */
    void (*gguf_set_arr_data)(struct gguf_context *ctx, const char *key, int type, const void *data, size_t n);
    void (*gguf_set_arr_str)(struct gguf_context *ctx, const char *key, const char **data, size_t n);
    /* the tensor's name, type, ne and (when writing) data are taken from the ggml tensor */
    void (*gguf_add_tensor)(struct gguf_context *ctx, const struct ggml_tensor *tensor);
    bool (*gguf_write_to_file)(const struct gguf_context *ctx, const char *fname, bool only_meta);
};

/* Loads the library and every symbol above; on failure returns false with a reason in `why`. */
bool mq_ggml_open(struct mq_ggml *g, char *why, size_t why_len);
void mq_ggml_close(struct mq_ggml *g);

/*
** Dimensions of tensor `t` (any tensor of a ggml context, e.g. from ggml_get_tensor after
** gguf_init_from_file with a ctx): fills ne[4] (unused dims 1) by the struct layout documented
** above, checked against ggml_nelements and ggml_n_dims. Returns false (why filled) when the
** check fails, i.e. the layout assumption does not hold for this library.
*/
bool mq_ggml_tensor_ne(const struct mq_ggml *g, const struct ggml_tensor *t, int64_t ne[4], char *why,
                       size_t why_len);

#endif /* MODELQ_GGML_REF_H */
