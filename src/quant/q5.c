/*
** q5.c - ggml Q5_0 and Q5_1: blocks of 32 elements, 5-bit codes (4 low bits + 1 high bit).
**
** Q5_0 block (22 bytes): d (fp16 LE) @0 | qh (u32 LE) @2 | qs[16] @6.
** Q5_1 block (24 bytes): d (fp16 LE) @0 | m (fp16 LE, the block min) @2 | qh (u32 LE) @4 | qs[16] @8.
** Byte qs[j] holds the low 4 bits of element j (low nibble) and of element j+16 (high nibble);
** bit j of qh is bit 4 of element j (j = 0..31).
**
** Q5_0 (quantize_row_q5_0_ref): max = the first element of largest |x| (sign kept), d = max/-16,
** id = d ? 1/d : 0, q = MIN(31, (int8)(x*id + 16.5f)); value = (q-16)*d. A zero block gives
** d = -0.0, qh = 0xffffffff, qs = 0.
** Q5_1 (quantize_row_q5_1_ref): d = (max-min)/31, id = d ? 1/d : 0, q = (uint8)((x-min)*id + 0.5f)
** (no clamp); value = q*d + m.
** They exist for llama.cpp's shape fallback (Q5_K -> Q5_1) and as --type q5_0 / q5_1.
*/
#include "qcommon.h"

#include <float.h>

enum { QK = 32, Q50_BYTES = 22, Q51_BYTES = 24 };

static void put_u32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* 32 five-bit codes -> qh (u32 LE, bit j = bit 4 of code j) and qs[16] (low nibbles, j | j+16). */
static void pack_q5(const unsigned q[QK], uint8_t *qh_le, uint8_t *qs)
{
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; j++) {
        qs[j] = (uint8_t)((q[j] & 0x0f) | ((q[j + QK / 2] & 0x0f) << 4));
        qh |= ((q[j] & 0x10u) >> 4) << j;
        qh |= ((q[j + QK / 2] & 0x10u) >> 4) << (j + QK / 2);
    }
    put_u32le(qh_le, qh);
}

/* The inverse: the 32 codes of a block. */
static void unpack_q5(const uint8_t *qh_le, const uint8_t *qs, unsigned q[QK])
{
    const uint32_t qh = get_u32le(qh_le);
    for (int j = 0; j < QK / 2; j++) {
        q[j] = (qs[j] & 0x0fu) | (((qh >> j) << 4) & 0x10u);
        q[j + QK / 2] = (unsigned)(qs[j] >> 4) | ((qh >> (j + 12)) & 0x10u);
    }
}

void mq_quantize_q5_0_ref(const float *src, size_t n, size_t row_len, uint32_t block,
                          uint8_t *data, float *scales, int8_t *zeros)
{
    (void)row_len, (void)block, (void)scales, (void)zeros;
    for (size_t b = 0; b < n / QK; b++) {
        const float *x = src + b * QK;
        uint8_t *y = data + b * Q50_BYTES;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        mq_put_f16(y, d);
        unsigned q[QK];
        for (int j = 0; j < QK; j++) {
            int v = (int8_t)mq_cvt_i8(x[j] * id + 16.5f);
            q[j] = (unsigned)(v > 31 ? 31 : v);
        }
        pack_q5(q, y + 2, y + 6);
    }
}

void mq_quantize_q5_0_fast(const float *src, size_t n, size_t row_len, uint32_t block,
                           uint8_t *data, float *scales, int8_t *zeros)
{
    mq_quantize_q5_0_ref(src, n, row_len, block, data, scales, zeros);
}

void mq_dequantize_q5_0(const uint8_t *data, const float *scales, const int8_t *zeros,
                        size_t n, size_t row_len, uint32_t block, float *dst)
{
    (void)scales, (void)zeros, (void)row_len, (void)block;
    for (size_t b = 0; b < n / QK; b++) {
        const uint8_t *y = data + b * Q50_BYTES;
        const float d = mq_get_f16(y);
        unsigned q[QK];
        unpack_q5(y + 2, y + 6, q);
        for (int j = 0; j < QK; j++) dst[b * QK + (size_t)j] = (float)((int)q[j] - 16) * d;
    }
}

void mq_quantize_q5_1_ref(const float *src, size_t n, size_t row_len, uint32_t block,
                          uint8_t *data, float *scales, int8_t *zeros)
{
    (void)row_len, (void)block, (void)scales, (void)zeros;
    for (size_t b = 0; b < n / QK; b++) {
        const float *x = src + b * QK;
        uint8_t *y = data + b * Q51_BYTES;
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / ((1 << 5) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        mq_put_f16(y, d);
        mq_put_f16(y + 2, min);
        unsigned q[QK];
        for (int j = 0; j < QK; j++) q[j] = mq_cvt_i8((x[j] - min) * id + 0.5f); /* no clamp, as ggml */
        pack_q5(q, y + 4, y + 8);
    }
}

void mq_quantize_q5_1_fast(const float *src, size_t n, size_t row_len, uint32_t block,
                           uint8_t *data, float *scales, int8_t *zeros)
{
    mq_quantize_q5_1_ref(src, n, row_len, block, data, scales, zeros);
}

void mq_dequantize_q5_1(const uint8_t *data, const float *scales, const int8_t *zeros,
                        size_t n, size_t row_len, uint32_t block, float *dst)
{
    (void)scales, (void)zeros, (void)row_len, (void)block;
    for (size_t b = 0; b < n / QK; b++) {
        const uint8_t *y = data + b * Q51_BYTES;
        const float d = mq_get_f16(y), m = mq_get_f16(y + 2);
        unsigned q[QK];
        unpack_q5(y + 4, y + 8, q);
        for (int j = 0; j < QK; j++) dst[b * QK + (size_t)j] = (float)q[j] * d + m;
    }
}
