/*
** modelq/codec.h - the codec table: every output element encoding modelq can produce.
**
** One row per codec (ggml's type_traits idea): name, block size, bytes per block, and the byte
** size of a whole tensor as its container stores it. Kernels (quantize/dequantize, reference and
** fast) hang off the same rows.
**
** Two block geometries exist:
**   - per-row blocks (ggml types, INT8_ROW's per-row scale): blocks never cross a row, so the
**     row length must be a multiple of block_elems;
**   - flat blocks (bitsandbytes NF4/FP4, INT8_ASYM): the tensor is flattened and cut into blocks
**     of block_elems; the last block may be partial.
*/
#ifndef MODELQ_CODEC_H
#define MODELQ_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modelq/error.h"
#include "modelq/export.h"

enum mq_codec {
    MQ_CODEC_F32,
    MQ_CODEC_F16,
    MQ_CODEC_BF16,
    MQ_CODEC_Q8_0,
    MQ_CODEC_Q4_0,
    MQ_CODEC_Q4_1,
    MQ_CODEC_IQ4_NL,
    MQ_CODEC_Q5_K,
    MQ_CODEC_Q6_K,
    MQ_CODEC_NF4,
    MQ_CODEC_FP4,
    MQ_CODEC_INT8_ROW,
    MQ_CODEC_INT8_ASYM,
    MQ_CODEC_Q5_0,
    MQ_CODEC_Q5_1,
    MQ_CODEC_Q4_K,
    MQ_CODEC_Q2_K,
    MQ_CODEC_Q3_K,
    MQ_CODEC_IQ4_XS,
    MQ_CODEC_COUNT
};

/* Options that change a codec's geometry or side data. Zero-initialised = the codec's defaults. */
struct mq_codec_params {
    uint32_t block_elems;  /* 0 = codec default (NF4/FP4 64, INT8_ASYM 64); fixed for ggml types */
    bool double_quant;     /* NF4/FP4: 8-bit absmax against the dynamic map, block 256 */
};

/*
** Kernel contract (one quantize/dequantize pair per codec; src/quant/<codec>.c).
**
** A kernel converts `n` consecutive elements of one tensor. `row_len` is the tensor's row length
** (used by INT8_ROW's per-row scale; per-row ggml codecs need n and row_len to be multiples of
** block_elems), `block` the effective block size (params->block_elems or the default).
** Outputs:
**   data    packed codes: ggml blocks (scales inline), bitsandbytes nibbles, int8 codes, or the
**           little-endian f32/f16/bf16 elements; mq_codec_data_bytes(n) bytes.
**   scales  per-block (NF4/FP4 absmax, INT8_ASYM scale) or per-row (INT8_ROW SCB) float32 side
**           data, mq_codec_side_count(n) entries; unused (may be NULL) for the other codecs.
**   zeros   INT8_ASYM zero points, one per block; unused (may be NULL) otherwise.
** Streaming: a tensor may be fed in chunks; every chunk but the last must be a whole number of
** blocks (flat codecs) or rows (per-row codecs), and the output pointers advance accordingly.
** The ggml codecs keep no state across the blocks of a row, so a run of whole blocks inside a
** row may be passed as a row of its own (row_len = n): the pipeline does so for long rows.
** Kernels never fail: value checks (NaN/Inf, fp16 overflow) happen before, in mq_range_scan().
*/
typedef void (*mq_quantize_fn)(const float *src, size_t n, size_t row_len, uint32_t block,
                               uint8_t *data, float *scales, int8_t *zeros);
typedef void (*mq_dequantize_fn)(const uint8_t *data, const float *scales, const int8_t *zeros,
                                 size_t n, size_t row_len, uint32_t block, float *dst);

/* What a codec stores. */
enum mq_codec_kind {
    MQ_CODEC_KIND_FLOAT,   /* plain elements (f32, f16, bf16): a "block" is one element */
    MQ_CODEC_KIND_GGML,    /* ggml blocks that carry their own scales (q8_0 ... q6_K) */
    MQ_CODEC_KIND_SIDE     /* packed codes plus float32 side data per block or per row, stored as
                              separate tensors (bitsandbytes NF4/FP4/LLM.int8, int8_asym) */
};

/* Side data of a KIND_SIDE codec: one entry per block or per row. */
enum mq_side_unit { MQ_SIDE_NONE, MQ_SIDE_PER_BLOCK, MQ_SIDE_PER_ROW };

/*
** One row per codec (src/quant/codec_table.c): every size, the dispatch and the GGUF type
** follow from it (mq_codec_tensor_bytes / data_bytes / side_count read these fields; nothing
** switches on the codec). Adding a codec is its kernel file plus one row.
*/
struct mq_codec_info {
    const char *name;      /* "q8_0", "nf4", ... (llama.cpp's spelling for ggml types) */
    enum mq_codec_kind kind;
    uint32_t block_elems;  /* default elements per block (1 for plain float types) */
    uint32_t block_bytes;  /* bytes per block of the main data (scales inside ggml blocks) */
    bool flat_blocks;      /* true: blocks run over the flattened tensor; false: within rows */
    /* KIND_SIDE layout (../shared/docs/bitsandbytes.md 4.1): */
    uint32_t code_bits;    /* bits per element of the packed codes (4: two per byte, odd count
                              padded; 8: one byte each) */
    enum mq_side_unit side_unit;
    uint32_t side_bytes;   /* stored bytes per side entry (F32 absmax / SCB: 4; a scale and an
                              int8 zero point: 5) */
    uint32_t fixed_bytes;  /* per-tensor constant entries (quant_map F32[16]: 64; LLM.int8's
                              weight_format U8 scalar: 1) */
    bool double_quant_ok;  /* params->double_quant applies (absmax as U8 codes of 256-blocks) */
    int ggml_type;         /* ggml type id, -1 when the codec has no GGUF type */
    bool fp16_scales;      /* ggml block scales are fp16 (can overflow; see mq_range_scan) */
    float elem_overflow;   /* |x| at or above which an element rounds to an infinity of the stored
                            * element type (F16 and INT8_ROW's fp16 cast: 65520; BF16:
                            * 0x1.ffp+127); 0 = every finite float32 is stored finite */
    mq_quantize_fn quantize_ref;  /* plain C reference kernel: defines the bytes */
    mq_quantize_fn quantize_fast; /* same bytes; AVX2/F16C when the CPU has it, else portable */
    mq_dequantize_fn dequantize;
};

/* Row of the codec table; NULL for an out-of-range value. */
MQ_API const struct mq_codec_info *mq_codec_info(enum mq_codec c);
/* A quantizer (ggml block or side-data codec), not a plain float type. */
MQ_API bool mq_codec_is_quantized(enum mq_codec c);
/* Case-insensitive lookup by name ("Q8_0" or "q8_0"); false when unknown. */
MQ_API bool mq_codec_from_name(const char *name, enum mq_codec *out);

/*
** Bytes the codec's container stores for one tensor of `numel` elements whose rows hold
** `row_len` elements (numel / row_len rows; a 1-D tensor is one row): the packed data plus all
** per-block and per-tensor side data (scales, zero points, SCB, absmax, code maps), excluding any
** JSON description blob. Fails with MQ_E_USAGE when rows do not split into whole blocks for a
** per-row codec, MQ_E_OVERFLOW on overflow.
*/
MQ_API enum mq_status mq_codec_tensor_bytes(enum mq_codec c, const struct mq_codec_params *params,
                                     uint64_t numel, uint64_t row_len, uint64_t *out,
                                     struct mq_error *err);

/* Effective block size: params->block_elems when set (flat codecs only), else the default. */
MQ_API uint32_t mq_codec_block(enum mq_codec c, const struct mq_codec_params *params);

/* Bytes of `data` a kernel writes for n elements (a partial last block counts whole for flat
** codecs; NF4/FP4 pack (n+1)/2 bytes). */
MQ_API uint64_t mq_codec_data_bytes(enum mq_codec c, const struct mq_codec_params *params, uint64_t n);

/* Entries of `scales` (and `zeros` for INT8_ASYM) a kernel writes for n elements with rows of
** row_len: blocks for NF4/FP4/INT8_ASYM, rows for INT8_ROW, 0 for the others. */
MQ_API uint64_t mq_codec_side_count(enum mq_codec c, const struct mq_codec_params *params, uint64_t n,
                             uint64_t row_len);

#endif /* MODELQ_CODEC_H */
