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
    MQ_CODEC_COUNT
};

/* Options that change a codec's geometry or side data. Zero-initialised = the codec's defaults. */
struct mq_codec_params {
    uint32_t block_elems;  /* 0 = codec default (NF4/FP4 64, INT8_ASYM 64); fixed for ggml types */
    bool double_quant;     /* NF4/FP4: 8-bit absmax against the dynamic map, block 256 */
};

struct mq_codec_info {
    const char *name;      /* "q8_0", "nf4", ... (llama.cpp's spelling for ggml types) */
    uint32_t block_elems;  /* default elements per block (1 for plain float types) */
    uint32_t block_bytes;  /* bytes per block of the main data (scales inside ggml blocks) */
    bool flat_blocks;      /* true: blocks run over the flattened tensor; false: within rows */
    int ggml_type;         /* ggml type id, -1 when the codec has no GGUF type */
};

/* Row of the codec table; NULL for an out-of-range value. */
const struct mq_codec_info *mq_codec_info(enum mq_codec c);
/* Case-insensitive lookup by name ("Q8_0" or "q8_0"); false when unknown. */
bool mq_codec_from_name(const char *name, enum mq_codec *out);

/*
** Bytes the codec's container stores for one tensor of `numel` elements whose rows hold
** `row_len` elements (numel / row_len rows; a 1-D tensor is one row): the packed data plus all
** per-block and per-tensor side data (scales, zero points, SCB, absmax, code maps), excluding any
** JSON description blob. Fails with MQ_E_USAGE when rows do not split into whole blocks for a
** per-row codec, MQ_E_OVERFLOW on overflow.
*/
enum mq_status mq_codec_tensor_bytes(enum mq_codec c, const struct mq_codec_params *params,
                                     uint64_t numel, uint64_t row_len, uint64_t *out,
                                     struct mq_error *err);

#endif /* MODELQ_CODEC_H */
