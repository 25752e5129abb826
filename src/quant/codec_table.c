/* codec_table.c - the codec table: sizes, geometry and the kernels of every codec. */
#include "modelq/codec.h"

#include <strings.h>

#include "ckd.h"
#include "qcommon.h"

#define K(x) .quantize_ref = mq_quantize_##x##_ref, .quantize_fast = mq_quantize_##x##_fast, \
             .dequantize = mq_dequantize_##x

/* Element overflow limits: the smallest float32 magnitudes that round to infinity (round to
 * nearest even) in fp16 (65504 + half a unit of 32) and in bf16 (0x1.fep+127 + half a unit). */
#define F16_INF MQ_F16_OVERFLOW
#define BF16_INF 0x1.ffp+127f

static const struct mq_codec_info codec_table[MQ_CODEC_COUNT] = {
    /* ggml types: block layouts from ggml-common.h (d = fp16 scale). */
    [MQ_CODEC_F32] = {"f32", 1, 4, false, 0, false, 0, K(f32)},
    [MQ_CODEC_F16] = {"f16", 1, 2, false, 1, false, F16_INF, K(f16)},
    [MQ_CODEC_BF16] = {"bf16", 1, 2, false, 30, false, BF16_INF, K(bf16)},
    [MQ_CODEC_Q8_0] = {"q8_0", 32, 34, false, 8, true, 0, K(q8_0)},      /* d + 32 x int8 */
    [MQ_CODEC_Q4_0] = {"q4_0", 32, 18, false, 2, true, 0, K(q4_0)},      /* d + 16 nibble bytes */
    [MQ_CODEC_Q4_1] = {"q4_1", 32, 20, false, 3, true, 0, K(q4_1)},      /* d + m + 16 nibble bytes */
    [MQ_CODEC_IQ4_NL] = {"iq4_nl", 32, 18, false, 20, true, 0, K(iq4_nl)}, /* d + 16 nibble bytes */
    [MQ_CODEC_Q5_0] = {"q5_0", 32, 22, false, 6, true, 0, K(q5_0)},      /* d + qh + 16 nibble bytes */
    [MQ_CODEC_Q5_1] = {"q5_1", 32, 24, false, 7, true, 0, K(q5_1)},      /* d + m + qh + 16 nibble bytes */
    [MQ_CODEC_Q4_K] = {"q4_K", 256, 144, false, 12, true, 0, K(q4_k)},
    [MQ_CODEC_Q5_K] = {"q5_K", 256, 176, false, 13, true, 0, K(q5_k)},
    [MQ_CODEC_Q6_K] = {"q6_K", 256, 210, false, 14, true, 0, K(q6_k)},
    /* bitsandbytes / modelq codecs: block_bytes counts the packed codes only; side data below. */
    [MQ_CODEC_NF4] = {"nf4", 64, 32, true, -1, false, 0, K(nf4)},
    [MQ_CODEC_FP4] = {"fp4", 64, 32, true, -1, false, 0, K(fp4)},
    [MQ_CODEC_INT8_ROW] = {"int8_row", 1, 1, false, -1, false, F16_INF, K(int8_row)},
    [MQ_CODEC_INT8_ASYM] = {"int8_asym", 64, 64, true, -1, false, 0, K(int8_asym)},
};

const struct mq_codec_info *mq_codec_info(enum mq_codec c)
{
    return (unsigned)c < MQ_CODEC_COUNT ? &codec_table[c] : NULL;
}

bool mq_codec_from_name(const char *name, enum mq_codec *out)
{
    for (int i = 0; i < MQ_CODEC_COUNT; i++) {
        if (strcasecmp(codec_table[i].name, name) == 0) {
            *out = (enum mq_codec)i;
            return true;
        }
    }
    return false;
}

/* bitsandbytes side data sizes (../shared/docs/bitsandbytes.md section 4.1). */
#define BNB_QUANT_MAP_BYTES (16u * 4u)          /* quant_map: F32[16] */
#define BNB_NESTED_MAP_BYTES (256u * 4u)        /* nested_quant_map: F32[256] */
#define BNB_NESTED_BLOCK 256u                   /* double-quant block of absmax values */

enum mq_status mq_codec_tensor_bytes(enum mq_codec c, const struct mq_codec_params *params,
                                     uint64_t numel, uint64_t row_len, uint64_t *out,
                                     struct mq_error *err)
{
    const struct mq_codec_info *ci = mq_codec_info(c);
    if (!ci) return MQ_FAIL(err, MQ_E_INTERNAL, "codec", "unknown codec %d", (int)c);
    if (row_len == 0) {
        /* a zero-sized tensor with a 0 as its row length: no rows, no blocks, no bytes */
        if (numel == 0 && !ci->flat_blocks) {
            *out = 0;
            return MQ_OK;
        }
        row_len = 1;
    }
    uint64_t rows = numel / row_len;
    uint64_t bytes = 0, t = 0;
    int ovf = 0;
    switch (c) {
    case MQ_CODEC_NF4:
    case MQ_CODEC_FP4: {
        uint64_t blk = params && params->block_elems ? params->block_elems : ci->block_elems;
        uint64_t nb = mq_div_ceil_u64(numel, blk);
        bytes = numel / 2 + (numel & 1); /* packed nibbles, odd count padded */
        if (params && params->double_quant) {
            uint64_t nb2 = mq_div_ceil_u64(nb, BNB_NESTED_BLOCK);
            ovf |= mq_ckd_add_u64(&bytes, bytes, nb);            /* absmax codes: U8[nb] */
            ovf |= mq_ckd_mul_u64(&t, nb2, 4);
            ovf |= mq_ckd_add_u64(&bytes, bytes, t);             /* nested_absmax: F32 */
            ovf |= mq_ckd_add_u64(&bytes, bytes, BNB_NESTED_MAP_BYTES);
        } else {
            ovf |= mq_ckd_mul_u64(&t, nb, 4);
            ovf |= mq_ckd_add_u64(&bytes, bytes, t);             /* absmax: F32[nb] */
        }
        ovf |= mq_ckd_add_u64(&bytes, bytes, BNB_QUANT_MAP_BYTES);
        break;
    }
    case MQ_CODEC_INT8_ROW:
        /* weight I8[out,in] + SCB F32[out] + weight_format U8 scalar */
        ovf |= mq_ckd_mul_u64(&t, rows, 4);
        ovf |= mq_ckd_add_u64(&bytes, numel, t);
        ovf |= mq_ckd_add_u64(&bytes, bytes, 1);
        break;
    case MQ_CODEC_INT8_ASYM: {
        /* codes I8 + per block: scale F32 + zero point I8 */
        uint64_t blk = params && params->block_elems ? params->block_elems : ci->block_elems;
        uint64_t nb = mq_div_ceil_u64(numel, blk);
        ovf |= mq_ckd_mul_u64(&t, nb, 5);
        ovf |= mq_ckd_add_u64(&bytes, numel, t);
        break;
    }
    default:
        if (row_len % ci->block_elems != 0)
            return MQ_FAIL(err, MQ_E_USAGE, "row-block",
                           "row length %llu is not a multiple of %s's block of %u",
                           (unsigned long long)row_len, ci->name, ci->block_elems);
        ovf |= mq_ckd_mul_u64(&bytes, numel / ci->block_elems, ci->block_bytes);
        break;
    }
    if (ovf) return MQ_FAIL(err, MQ_E_OVERFLOW, "size-overflow", "tensor size overflows 64 bits");
    *out = bytes;
    return MQ_OK;
}

uint32_t mq_codec_block(enum mq_codec c, const struct mq_codec_params *params)
{
    const struct mq_codec_info *ci = mq_codec_info(c);
    if (!ci) return 0;
    if (ci->flat_blocks && params && params->block_elems) return params->block_elems;
    return ci->block_elems;
}

uint64_t mq_codec_data_bytes(enum mq_codec c, const struct mq_codec_params *params, uint64_t n)
{
    const struct mq_codec_info *ci = mq_codec_info(c);
    if (!ci) return 0;
    switch (c) {
    case MQ_CODEC_NF4:
    case MQ_CODEC_FP4: return n / 2 + (n & 1);
    case MQ_CODEC_INT8_ROW:
    case MQ_CODEC_INT8_ASYM: return n;
    default: {
        uint64_t blk = mq_codec_block(c, params);
        return mq_div_ceil_u64(n, blk) * ci->block_bytes;
    }
    }
}

uint64_t mq_codec_side_count(enum mq_codec c, const struct mq_codec_params *params, uint64_t n,
                             uint64_t row_len)
{
    switch (c) {
    case MQ_CODEC_NF4:
    case MQ_CODEC_FP4:
    case MQ_CODEC_INT8_ASYM: return mq_div_ceil_u64(n, mq_codec_block(c, params));
    case MQ_CODEC_INT8_ROW: return row_len ? mq_div_ceil_u64(n, row_len) : n;
    default: return 0;
    }
}
