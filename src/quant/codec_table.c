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

#define FLOAT(n, bytes, id, ovf, k) \
    {.name = n, .kind = MQ_CODEC_KIND_FLOAT, .block_elems = 1, .block_bytes = bytes, .ggml_type = id, \
     .elem_overflow = ovf, k}
/* ggml block types: the block layout is the struct (qcommon.h), its size asserted against ggml */
#define GGML(n, elems, block, id, k) \
    {.name = n, .kind = MQ_CODEC_KIND_GGML, .block_elems = elems, .block_bytes = sizeof(block), .ggml_type = id, \
     .fp16_scales = true, k}

static const struct mq_codec_info codec_table[MQ_CODEC_COUNT] = {
    [MQ_CODEC_F32] = FLOAT("f32", 4, 0, 0, K(f32)),
    [MQ_CODEC_F16] = FLOAT("f16", 2, 1, F16_INF, K(f16)),
    [MQ_CODEC_BF16] = FLOAT("bf16", 2, 30, BF16_INF, K(bf16)),
    [MQ_CODEC_Q8_0] = GGML("q8_0", 32, struct mq_block_q8_0, 8, K(q8_0)),
    [MQ_CODEC_Q4_0] = GGML("q4_0", 32, struct mq_block_q4_0, 2, K(q4_0)),
    [MQ_CODEC_Q4_1] = GGML("q4_1", 32, struct mq_block_q4_1, 3, K(q4_1)),
    [MQ_CODEC_IQ4_NL] = GGML("iq4_nl", 32, struct mq_block_iq4_nl, 20, K(iq4_nl)),
    [MQ_CODEC_Q5_0] = GGML("q5_0", 32, struct mq_block_q5_0, 6, K(q5_0)),
    [MQ_CODEC_Q5_1] = GGML("q5_1", 32, struct mq_block_q5_1, 7, K(q5_1)),
    [MQ_CODEC_Q4_K] = GGML("q4_K", 256, struct mq_block_q4_K, 12, K(q4_k)),
    [MQ_CODEC_Q5_K] = GGML("q5_K", 256, struct mq_block_q5_K, 13, K(q5_k)),
    [MQ_CODEC_Q6_K] = GGML("q6_K", 256, struct mq_block_q6_K, 14, K(q6_k)),
    [MQ_CODEC_Q2_K] = GGML("q2_K", 256, struct mq_block_q2_K, 10, K(q2_k)),
    [MQ_CODEC_Q3_K] = GGML("q3_K", 256, struct mq_block_q3_K, 11, K(q3_k)),
    [MQ_CODEC_IQ4_XS] = GGML("iq4_xs", 256, struct mq_block_iq4_xs, 23, K(iq4_xs)),
    /* bitsandbytes / modelq codecs: packed codes (block_bytes = the codes of one block) plus side
     * entries; blocks run over the flattened tensor (block size is a parameter) */
    [MQ_CODEC_NF4] = {.name = "nf4", .kind = MQ_CODEC_KIND_SIDE, .block_elems = 64, .block_bytes = 32,
                      .flat_blocks = true, .ggml_type = -1, .code_bits = 4, .side_unit = MQ_SIDE_PER_BLOCK,
                      .side_bytes = 4, .fixed_bytes = 16 * 4, .double_quant_ok = true, K(nf4)},
    [MQ_CODEC_FP4] = {.name = "fp4", .kind = MQ_CODEC_KIND_SIDE, .block_elems = 64, .block_bytes = 32,
                      .flat_blocks = true, .ggml_type = -1, .code_bits = 4, .side_unit = MQ_SIDE_PER_BLOCK,
                      .side_bytes = 4, .fixed_bytes = 16 * 4, .double_quant_ok = true, K(fp4)},
    /* LLM.int8: weight I8[out,in] + SCB F32[out] + weight_format U8 scalar */
    [MQ_CODEC_INT8_ROW] = {.name = "int8_row", .kind = MQ_CODEC_KIND_SIDE, .block_elems = 1, .block_bytes = 1,
                           .ggml_type = -1, .elem_overflow = F16_INF, .code_bits = 8,
                           .side_unit = MQ_SIDE_PER_ROW, .side_bytes = 4, .fixed_bytes = 1, K(int8_row)},
    /* codes I8 + per block a F32 scale and an I8 zero point */
    [MQ_CODEC_INT8_ASYM] = {.name = "int8_asym", .kind = MQ_CODEC_KIND_SIDE, .block_elems = 64, .block_bytes = 64,
                            .flat_blocks = true, .ggml_type = -1, .code_bits = 8, .side_unit = MQ_SIDE_PER_BLOCK,
                            .side_bytes = 5, K(int8_asym)},
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

bool mq_codec_is_quantized(enum mq_codec c)
{
    const struct mq_codec_info *ci = mq_codec_info(c);
    return ci && ci->kind != MQ_CODEC_KIND_FLOAT;
}

/* Double quantization (../shared/docs/bitsandbytes.md 4.1): the absmax of each block as a U8
 * code, a F32 nested absmax per 256 blocks and the F32[256] nested code map. */
#define DQ_NESTED_BLOCK 256u
#define DQ_NESTED_MAP_BYTES (256u * 4u)

static bool double_quant(const struct mq_codec_info *ci, const struct mq_codec_params *params)
{
    return ci->double_quant_ok && params && params->double_quant;
}

/* Side entries for n elements in rows of row_len (0 when the codec has none). */
static uint64_t side_entries(const struct mq_codec_info *ci, const struct mq_codec_params *params, uint64_t n,
                             uint64_t row_len)
{
    switch (ci->side_unit) {
    case MQ_SIDE_PER_BLOCK: {
        uint64_t blk = ci->flat_blocks && params && params->block_elems ? params->block_elems : ci->block_elems;
        return mq_div_ceil_u64(n, blk);
    }
    case MQ_SIDE_PER_ROW: return row_len ? mq_div_ceil_u64(n, row_len) : n;
    case MQ_SIDE_NONE: break;
    }
    return 0;
}

/* Packed code bytes of n elements of a side-data codec (a 4-bit odd count pads its last byte). */
static uint64_t code_bytes(const struct mq_codec_info *ci, uint64_t n)
{
    return ci->code_bits == 8 ? n : n / 2 + (n & 1);
}

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
    uint64_t bytes = 0, t = 0;
    int ovf = 0;
    if (ci->kind != MQ_CODEC_KIND_SIDE) {
        if (row_len % ci->block_elems != 0)
            return MQ_FAIL(err, MQ_E_USAGE, "row-block",
                           "row length %llu is not a multiple of %s's block of %u",
                           (unsigned long long)row_len, ci->name, ci->block_elems);
        ovf |= mq_ckd_mul_u64(&bytes, numel / ci->block_elems, ci->block_bytes);
    } else {
        uint64_t ns = side_entries(ci, params, numel, row_len);
        bytes = code_bytes(ci, numel);
        if (double_quant(ci, params)) {
            ovf |= mq_ckd_add_u64(&bytes, bytes, ns);                           /* absmax codes: U8[ns] */
            ovf |= mq_ckd_mul_u64(&t, mq_div_ceil_u64(ns, DQ_NESTED_BLOCK), 4); /* nested_absmax: F32 */
            ovf |= mq_ckd_add_u64(&bytes, bytes, t);
            ovf |= mq_ckd_add_u64(&bytes, bytes, DQ_NESTED_MAP_BYTES);
        } else {
            ovf |= mq_ckd_mul_u64(&t, ns, ci->side_bytes);
            ovf |= mq_ckd_add_u64(&bytes, bytes, t);
        }
        ovf |= mq_ckd_add_u64(&bytes, bytes, ci->fixed_bytes);
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
    if (ci->kind == MQ_CODEC_KIND_SIDE) return code_bytes(ci, n);
    return mq_div_ceil_u64(n, mq_codec_block(c, params)) * ci->block_bytes;
}

uint64_t mq_codec_side_count(enum mq_codec c, const struct mq_codec_params *params, uint64_t n,
                             uint64_t row_len)
{
    const struct mq_codec_info *ci = mq_codec_info(c);
    return ci ? side_entries(ci, params, n, row_len) : 0;
}
