/*
** gguf.h - GGUF v3 constants and the ggml type table shared by the GGUF reader and writer.
**
** File layout (../shared/docs/gguf-and-ggml.md section 1), all little-endian, nothing aligned
** except the data section and each tensor:
**   "GGUF" | u32 version 3 | u64 n_tensors | u64 n_kv
**   n_kv x  { u64 key_len, key bytes | i32 value_type | value }
**           value: scalar bytes | u64 len + bytes (STRING) |
**                  i32 elem_type, u64 count, count elements (ARRAY, never nested)
**   n_tensors x { u64 name_len, name (<= 63 bytes) | u32 n_dims (<= 4) | i64 ne[n_dims]
**                 (ne[0] = row length, the reverse of safetensors' shape) | i32 ggml_type |
**                 u64 offset (relative to the data section) }
**   zero padding to ALIGNMENT (general.alignment, UINT32 power of two, default 32)
**   data: tensor 0, zero pad to ALIGNMENT, tensor 1, pad, ... last tensor, pad.
** Offsets are contiguous: tensor i starts at sum over j < i of PAD(nbytes_j).
*/
#ifndef MODELQ_FORMATS_GGUF_H
#define MODELQ_FORMATS_GGUF_H

#include <stdbool.h>
#include <stdint.h>

#include "checksums.h"
#include "modelq/dtype.h"
#include "modelq/error.h"

#define MQ_GGUF_MAGIC "GGUF"
#define MQ_GGUF_VERSION 3u
#define MQ_GGUF_DEFAULT_ALIGNMENT 32u
#define MQ_GGUF_MAX_NAME 63u        /* GGML_MAX_NAME - 1 */
#define MQ_GGUF_MAX_DIMS 4u         /* GGML_MAX_DIMS */
#define MQ_GGUF_QNT_VERSION 2u      /* GGML_QNT_VERSION */
#define MQ_GGUF_CHECKSUM_KEY MQ_CHECKSUM_TENSORS_KEY /* checksums.h: what it and modelq.header_xxh3 cover */

/*
** Reader caps (modelq's own; gguf.cpp allows 2^30-byte strings and 2^30-element arrays and caps
** nothing else). The writer (gguf_write.c) refuses to write past the same caps, so every GGUF
** modelq writes is one modelq reads. They bound what a hostile header can make the reader allocate: about 6x
** MQ_GGUF_MAX_HEADER_BYTES in the worst case (a header of empty strings), and every allocation
** is also checked against the bytes the file really has. Real files are far below them: the
** largest headers seen hold a 262k-token vocabulary plus merges (about 10 MB) or a whole
** tokenizer.json as one string (about 33 MB); real files have tens of keys and at most a few
** thousand tensors.
*/
#define MQ_GGUF_MAX_HEADER_BYTES (128ull << 20) /* magic .. end of the tensor infos */
#define MQ_GGUF_MAX_STRING (64ull << 20)        /* bytes of one string (key, value, name) */
#define MQ_GGUF_MAX_ARRAY (1ull << 24)          /* elements of one array */
#define MQ_GGUF_MAX_KV 16384u                   /* key/value pairs */
#define MQ_GGUF_MAX_TENSORS 262144u             /* tensor infos */
#define MQ_GGUF_READ_CHUNK 65536u               /* largest single pread while reading a header */

/* One ggml type: name (llama.cpp spelling), elements and bytes per block; blck 0 = removed id. */
struct mq_ggml_type {
    const char *name;
    uint32_t blck;
    uint32_t bytes;
    bool quantized;         /* a block-quantized type (not F32/F16/BF16/int/F64) */
    enum mq_dtype plain;    /* the safetensors dtype with the same bytes, or MQ_DTYPE_COUNT */
};

#define MQ_GGML_TYPE_COUNT 42u /* ids 0..41; later ids are refused (older readers reject them) */

/* The row for a type id, or NULL when the id is unknown or removed. */
const struct mq_ggml_type *mq_ggml_type(int32_t id);
/* The ggml type storing a plain dtype unchanged (F32, F16, BF16, I8..I64, F64), else -1. */
int32_t mq_ggml_type_of_dtype(enum mq_dtype d);
/* True when ne[0..3] (each >= 0, missing dims 1) has an element count gguf.cpp refuses:
** a running product reaching INT64_MAX. Zero-element tensors never overflow. */
bool mq_gguf_elements_overflow(const int64_t ne[4]);

struct mq_model;
/*
** gguf_config.c: fills m->config from the typed metadata of a GGUF just read, when it names
** general.architecture = A (A.block_count, A.embedding_length, ...); `path` becomes config.path.
*/
enum mq_status mq_gguf_fill_config(struct mq_model *m, const char *path, struct mq_error *err);

#endif /* MODELQ_FORMATS_GGUF_H */
