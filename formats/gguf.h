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

#include "modelq/plugin.h" /* the checksum record names */
#include "modelq/dtype.h"
#include "modelq/error.h"
#include "modelq/meta.h"
#include <stddef.h>

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

/*
** Split models (llama.cpp's gguf-split / gguf-py's GGUFWriter convention; gguf_split.c).
** Part k (1-based) of N is named PREFIX-%05d-of-%05d.gguf (k, N) and is a complete GGUF with its
** own tensor infos and data section (offsets relative to it). Keys, in every part:
**   split.no             UINT16  k - 1
**   split.count          UINT16  N
**   split.tensors.count  INT32   tensors in all parts together
** Part 1 holds all other metadata (gguf-split appends the three keys after it); the other parts
** hold only the split keys. modelq adds, in every part it writes:
**   modelq.split.set_xxh3 UINT64 the set's identity: XXH3-64 over every tensor of the set, in
**                         order, of its name, a NUL, its part number (u16 LE) and its data
**                         checksum (u64 LE), then N (u16 LE). Parts of two different sets never
**                         share it unless their tensors are identical and identically split.
** llama.cpp loads a set from part 1 (src/llama-model-loader.cpp): it derives the other names
** from part 1's, checks each part's split.no and that the total equals split.tensors.count.
*/
#define MQ_GGUF_SPLIT_NO "split.no"
#define MQ_GGUF_SPLIT_COUNT "split.count"
#define MQ_GGUF_SPLIT_TENSORS "split.tensors.count"
#define MQ_GGUF_SPLIT_SET_KEY "modelq.split.set_xxh3"
#define MQ_GGUF_SPLIT_MAX 65535u    /* split.count is a UINT16 */

struct mq_model;
/* The n-th (1-based) part name of a set: PREFIX-%05u-of-%05u.gguf; false when it does not fit. */
bool mq_gguf_split_path(char *out, size_t cap, const char *prefix, unsigned no, unsigned count);
/* Is `path` named like a part (PREFIX-NNNNN-of-NNNNN.gguf, 1 <= no <= count <= 65535)? Then the
** prefix (with any folder) goes to prefix[cap] and the numbers to *no and *count. */
bool mq_gguf_split_name(const char *path, char *prefix, size_t cap, unsigned *no, unsigned *count);
/* Removes the split keys and modelq's set identity from metadata copied out of a set. */
void mq_gguf_split_strip(struct mq_meta *meta);
/*
** gguf_read.c: reads one GGUF file into m (its file and tensors appended). meta NULL: its keys
** become the model's (m->meta and m->metadata, and m->config); else they go to *meta only.
*/
enum mq_status mq_gguf_read_part(struct mq_model *m, const char *path, struct mq_meta *meta, struct mq_error *err);
/*
** gguf_split.c: the GGUF reader's entry. A file named like a part of a split model is read with
** every other part of its set (all checked: see gguf_split.c); any other file is read alone, and
** refused when its keys say it is one part of several.
*/
enum mq_status mq_gguf_read_set(struct mq_model *m, const char *path, struct mq_error *err);

/*
** gguf_config.c: fills m->config from the typed metadata of a GGUF just read, when it names
** general.architecture = A (A.block_count, A.embedding_length, ...); `path` becomes config.path.
*/
enum mq_status mq_gguf_fill_config(struct mq_model *m, const char *path, struct mq_error *err);

#endif /* MODELQ_FORMATS_GGUF_H */
