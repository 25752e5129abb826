/*
** gguf_write.h - serializing a GGUF v3 header (metadata + tensor infos + padding).
**
** The writer plans the whole layout before any data is written: mq_gguf_header_size() gives the
** exact byte count of the header including the zero padding up to the data section, so tensor
** data can be written at final offsets first and the header (which carries the checksums) last.
** Tensor offsets are computed here too: contiguous, each padded to `alignment`.
*/
#ifndef MODELQ_FORMATS_GGUF_WRITE_H
#define MODELQ_FORMATS_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "modelq/error.h"
#include "modelq/meta.h"

struct mq_gguf_tensor_info {
    const char *name;     /* <= 63 bytes */
    uint32_t n_dims;      /* 1..4 */
    uint64_t ne[4];       /* ggml order: ne[0] = row length */
    int32_t type;         /* ggml type id */
    uint64_t nbytes;      /* data bytes (ggml_row_size * rows) */
    uint64_t offset;      /* filled by mq_gguf_layout: relative to the data section */
};

/*
** Checks names/dims/types and the reader's caps (gguf.h: keys, tensors, header bytes, string and
** array lengths, element counts; MQ_E_LIMIT naming the cap and the key or tensor), fills every t[i].offset, and returns the data section start
** (header bytes including padding) and the total file size (data padded after every tensor).
** `alignment` is general.alignment when meta has it (must then be a UINT32 power of two), else 32.
*/
enum mq_status mq_gguf_layout(const struct mq_meta *meta, struct mq_gguf_tensor_info *t, size_t n,
                              uint64_t *data_start, uint64_t *file_size, struct mq_error *err);

/* Writes exactly data_start header bytes (as computed by mq_gguf_layout) into buf. */
enum mq_status mq_gguf_header_write(const struct mq_meta *meta, const struct mq_gguf_tensor_info *t,
                                    size_t n, uint8_t *buf, uint64_t data_start, struct mq_error *err);

/*
** Fills modelq.header_xxh3 (a UINT64 0 in meta) in a header `buf` written by mq_gguf_header_write:
** the checksum of buf[0, data_start) (checksums.h), stored little-endian at the key's value and
** returned in *sum. Call it after every other value (the tensor checksums) is final.
*/
enum mq_status mq_gguf_header_seal(const struct mq_meta *meta, const struct mq_gguf_tensor_info *t, size_t n,
                                   uint8_t *buf, uint64_t data_start, uint64_t *sum, struct mq_error *err);

/* Convenience: a complete GGUF with no tensors (metadata only), written atomically to path. */
enum mq_status mq_gguf_write_meta_only(const char *path, const struct mq_meta *meta, struct mq_error *err);

#endif
