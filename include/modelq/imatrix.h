/*
** modelq/imatrix.h - importance matrices (llama.cpp's llama-imatrix output) and the weighted
** quantizers that use them, as llama-quantize --imatrix does.
**
** An importance matrix holds, per weight matrix of a model (named by its GGUF tensor name, e.g.
** "blk.0.attn_q.weight"), one non-negative importance per input column: the mean of the squared
** activations that column saw during calibration. A 3-D expert tensor has one such vector per
** expert. llama-quantize hands the vector of a row's matrix to ggml_quantize_chunk, whose search
** then minimises the importance-weighted error instead of the plain one.
**
** Typical use:
**   struct mq_imatrix *im; mq_imatrix_load("imatrix.gguf", &im, &err);
**   const struct mq_imatrix_entry *e = mq_imatrix_find(im, "blk.0.attn_q.weight");
**   mq_quantize_weighted(MQ_CODEC_Q4_K, rows, n, row_len, e->values + expert * row_len, out, &err);
**   mq_imatrix_free(im);
** convert does all of this with mq_convert_options.imatrix_path (or .imatrix).
*/
#ifndef MODELQ_IMATRIX_H
#define MODELQ_IMATRIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modelq/codec.h"
#include "modelq/error.h"
#include "modelq/export.h"

enum mq_imatrix_format { MQ_IMATRIX_GGUF, MQ_IMATRIX_LEGACY };

/* One matrix's importances: values[m * n_per_row + c] for matrix (expert) m, column c. */
struct mq_imatrix_entry {
    char *name;            /* GGUF tensor name */
    uint64_t n_per_row;    /* columns (the weight's row length) */
    uint64_t n_mat;        /* matrices: 1, or the expert count of a 3-D expert tensor */
    float *values;         /* n_per_row * n_mat finite values >= 0 */
};

struct mq_imatrix {
    char *path;                     /* as given */
    enum mq_imatrix_format format;
    struct mq_imatrix_entry *entries; /* in file order (GGUF: sorted by name, as llama-quantize) */
    size_t n_entries;
    char *dataset;                  /* the first calibration dataset name, NULL when the file has none */
    int64_t chunks;                 /* GGUF imatrix.chunk_count / legacy last_call; -1 = not in the file */
};

/*
** Reads an importance matrix in either format llama-imatrix writes (told apart by the GGUF magic):
**   GGUF:   tensors "<name>.in_sum2" F32 [n_per_row, n_mat] and "<name>.counts" F32 [1, n_mat],
**           keys imatrix.datasets (string array), imatrix.chunk_count, imatrix.chunk_size;
**           importance = in_sum2 / count per matrix, 1 for a matrix whose count is 0
**           (load_imatrix in llama.cpp's tools/quantize).
**   legacy: i32 n_entries; per entry i32 name_len, name, i32 ncall, i32 nval, f32[nval];
**           optionally i32 last_call, i32 dataset_len, dataset. importance = value / ncall
**           when ncall > 0. A legacy entry is one matrix (n_mat 1; experts are not split).
** Refused (MQ_E_CORRUPT, one line naming the file and the entry): truncation, counts beyond
** the file, empty or duplicate names, NaN/Inf/negative values or counts, a sums tensor without
** its counts (or the reverse), shapes that disagree. *out is freed with mq_imatrix_free().
*/
MQ_API enum mq_status mq_imatrix_load(const char *path, struct mq_imatrix **out, struct mq_error *err);
MQ_API void mq_imatrix_free(struct mq_imatrix *im);
/* The entry for a GGUF tensor name, or NULL. */
MQ_API const struct mq_imatrix_entry *mq_imatrix_find(const struct mq_imatrix *im, const char *name);

/*
** Does ggml's quantizer of this codec use importance weights? True for Q4_0, Q4_1, Q5_0, Q5_1,
** IQ4_NL, Q4_K, Q5_K, Q6_K, Q2_K, Q3_K, IQ4_XS; false for Q8_0 (ggml ignores them), the float types and the
** bitsandbytes codecs.
*/
MQ_API bool mq_codec_takes_imatrix(enum mq_codec c);

/*
** Quantizes n values (whole rows of row_len) of a ggml block codec with the importances
** imatrix[0..row_len) of their matrix, exactly as ggml_quantize_chunk(type, src, dst, 0,
** n / row_len, row_len, imatrix). Rows must be whole: the legacy types derive their weights
** from the whole row. A codec that does not take weights (Q8_0) is quantized as without.
** Writes mq_codec_data_bytes(n) bytes.
*/
MQ_API enum mq_status mq_quantize_weighted(enum mq_codec c, const float *src, size_t n, size_t row_len,
                                           const float *imatrix, uint8_t *data, struct mq_error *err);

#endif /* MODELQ_IMATRIX_H */
