/*
** tensor_view.h - private: a PyTorch tensor as a view of a storage, and how its bytes are read.
**
** torch.save writes each storage (a flat array of one dtype) once, as the zip entry
** <archive>/data/<key>, and each tensor as (storage, storage_offset, size, stride), all in
** elements. Several tensors may share one storage (tied weights, slices of one buffer), and a
** tensor may be non-contiguous (a transpose, a slice of columns). formats/pytorch_read.c proves
** at open that every element a view can reach lies inside its storage entry (mq_view_extent);
** mq_view_read then serves mq_model_read(): the tensor's bytes as if stored contiguously,
** row-major, gathered with bounded preads (only the bytes of the rows asked for, plus the gaps
** of at most one 1 MiB span per run), after checking the storage entry's CRC-32 once.
*/
#ifndef MODELQ_TENSOR_VIEW_H
#define MODELQ_TENSOR_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "model_impl.h"

/* One stored (uncompressed) zip entry holding a storage; shared by its views (refcounted). */
struct mq_storage {
    unsigned refs;
    uint32_t file;      /* index into mq_model.files */
    char *entry;        /* zip entry name, for messages (owned) */
    uint64_t offset;    /* absolute offset of the entry's data in the file */
    uint64_t nbytes;    /* entry size */
    uint32_t crc32;     /* CRC-32 the central directory records */
    int checked;        /* 0 not yet, 1 matched, 2 mismatch; atomic loads/stores (reader threads) */
};

struct mq_view {
    struct mq_storage *storage; /* one reference held */
    uint32_t esz;               /* bytes per element (the storage's dtype) */
    uint64_t elem_offset;       /* storage_offset, elements */
    uint32_t ndim;
    uint64_t shape[MQ_MAX_DIMS];
    uint64_t stride[MQ_MAX_DIMS]; /* elements; negative strides are refused at open */
    bool contiguous;            /* row-major: one pread at elem_offset */
};

/* A storage with one reference; NULL when out of memory. */
struct mq_storage *mq_storage_new(uint32_t file, const char *entry, uint64_t offset, uint64_t nbytes, uint32_t crc32);
void mq_storage_unref(struct mq_storage *s);

/*
** The number of storage elements a view reaches: 1 + elem_offset + sum((shape[d]-1) * stride[d]),
** or 0 when the view has no elements. Returns 1 on 64-bit overflow.
*/
int mq_view_extent(uint64_t elem_offset, uint32_t ndim, const uint64_t *shape, const uint64_t *stride, uint64_t *out);

/* True when the strides are the row-major strides of the shape (dimensions of size 1 ignored). */
bool mq_view_is_contiguous(uint32_t ndim, const uint64_t *shape, const uint64_t *stride);

/* Frees a view and drops its storage reference. Accepts NULL. */
void mq_view_free(struct mq_view *v);

/* mq_model_read() of a tensor with a view (range already checked against t->nbytes). */
enum mq_status mq_view_read(const struct mq_model *m, const struct mq_tensor *t, uint64_t off, void *buf, size_t len,
                            struct mq_error *err);

/* mq_model_read() of an FP8 weight (fp8_source.c): float32 little-endian values. */
enum mq_status mq_fp8_source_read(const struct mq_model *m, const struct mq_tensor *t, uint64_t off, void *buf,
                                  size_t len, struct mq_error *err);

#endif /* MODELQ_TENSOR_VIEW_H */
