/*
** q2_k.c - ggml Q2_K (super-blocks of 256), byte-identical to quantize_row_q2_K_ref, which
** ggml_quantize_chunk (quantize_q2_K) runs when there is no importance matrix.
**
** Block (84 bytes): scales[16] @0 | qs[64] @16 | d fp16 @80 | dmin fp16 @82.
**   Sixteen sub-blocks of 16; scales[j] = 4-bit scale (low nibble) | 4-bit min (high nibble).
**   Codes q in 0..3, in 128-element half h (qs += 32h), l = 0..31:
**   qs[l] = q[l] | q[l+32] << 2 | q[l+64] << 4 | q[l+96] << 6.
**   value = d * (scales[j] & 15) * q - dmin * (scales[j] >> 4).
** Reference, per sub-block j: make_qkx2_quants(16, nmax 3, weights |x|, rmin -0.5, rdelta 0.1,
** 15 steps) with the absolute-difference error (use_mad); the scales and mins are then coded in
** 4 bits against max_scale/15 and max_min/15, and the codes recomputed from the fp16 d and dmin
** ((x + dmin*m) / (d*s), rounded, clamped to 0..3); a sub-block whose coded scale is 0 keeps the
** fit's codes. All sums run left to right in float32 as in ggml-quants.c; the fast kernel
** (q2_k_avx2.c) keeps that order per sub-block (one per AVX2 lane).
*/
#include <assert.h>

#include "q2_k_lanes.h"
#include "qcommon.h"

enum { QK_K = 256, SUB = 16, NSUB = QK_K / SUB, NMAX = 3 };


/*
** ggml make_qkx2_quants(16, 3, x, weights, L, &min, Laux, -0.5, 0.1, 15, use_mad = true): an
** asymmetric fit (scale, min <= 0) of 16 values whose error is sum w*|diff| (kquants.c has the
** squared-error variant Q4_K/Q5_K use). Returns the scale; *the_min = -min.
*/
static float fit_sub_block(const float *x, const float *w, uint8_t *L, float *the_min)
{
    uint8_t Laux[SUB];
    return mq_make_qkx2_quants(SUB, NMAX, x, w, L, the_min, Laux, -0.5f, 0.1f, 15, true);
}

/* One super-block x[256] into the 84 bytes at y. */
static void q2_k_block(const float *x, uint8_t *y)
{
    uint8_t L[QK_K];
    float weights[SUB], scales[NSUB], mins[NSUB];
    uint8_t *sc = y, *qs = y + 16;
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < NSUB; j++) {
        for (int l = 0; l < SUB; l++) weights[l] = fabsf(x[SUB * j + l]);
        scales[j] = fit_sub_block(x + SUB * j, weights, L + SUB * j, &mins[j]);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    /* 4-bit scale and min codes (ggml stores nearest_int's low byte) */
    memset(sc, 0, NSUB);
    if (max_scale > 0) {
        float iscale = 15.f / max_scale;
        for (int j = 0; j < NSUB; j++) sc[j] = (uint8_t)mq_nearest_int(iscale * scales[j]);
    }
    mq_put_f16(y + 80, max_scale > 0 ? max_scale / 15.f : 0.f);
    if (max_min > 0) {
        float iscale = 15.f / max_min;
        /* shifted as unsigned: the same low byte without UB for a negative (NaN) code */
        for (int j = 0; j < NSUB; j++) sc[j] |= (uint8_t)((unsigned)mq_nearest_int(iscale * mins[j]) << 4);
    }
    mq_put_f16(y + 82, max_min > 0 ? max_min / 15.f : 0.f);
    const float dd = mq_get_f16(y + 80), dmin = mq_get_f16(y + 82);
    for (int j = 0; j < NSUB; j++) {
        const float d = dd * (sc[j] & 0xF);
        if (!d) continue;
        const float dm = dmin * (sc[j] >> 4);
        for (int ii = 0; ii < SUB; ii++) {
            int l = mq_nearest_int((x[SUB * j + ii] + dm) / d);
            L[SUB * j + ii] = (uint8_t)mq_imax(0, mq_imin(NMAX, l));
        }
    }
    for (int h = 0; h < QK_K; h += 128)
        for (int l = 0; l < 32; l++)
            qs[h / 4 + l] = (uint8_t)(L[h + l] | (L[h + l + 32] << 2) | (L[h + l + 64] << 4) | (L[h + l + 96] << 6));
}

void mq_q2_k_quantize_rows(const float *src, size_t n, size_t row_len, const float *qw, uint8_t *data)
{
    (void)row_len, (void)qw;
    /* the importance-weighted fit (quantize_row_q2_K_impl) is in weighted.c */
    assert(qw == NULL);
    for (size_t b = 0; b < n / QK_K; b++) q2_k_block(src + b * QK_K, data + b * sizeof(struct mq_block_q2_K));
}

void mq_quantize_q2_k_ref(const float *src, size_t n, size_t row_len, uint32_t block,
                          uint8_t *data, float *scales, int8_t *zeros)
{
    (void)block, (void)scales, (void)zeros;
    mq_q2_k_quantize_rows(src, n, row_len, NULL, data);
}

void mq_quantize_q2_k_fast(const float *src, size_t n, size_t row_len, uint32_t block,
                           uint8_t *data, float *scales, int8_t *zeros)
{
    if (!mq_q2_k_quantize_avx2(src, n / QK_K, data)) mq_quantize_q2_k_ref(src, n, row_len, block, data, scales, zeros);
}

/* dequantize_row_q2_K */
void mq_dequantize_q2_k(const uint8_t *data, const float *scales, const int8_t *zeros, size_t n,
                        size_t row_len, uint32_t block, float *dst)
{
    (void)scales, (void)zeros, (void)row_len, (void)block;
    for (size_t b = 0; b < n / QK_K; b++) {
        const uint8_t *blk = data + b * sizeof(struct mq_block_q2_K);
        const uint8_t *sc = blk, *q = blk + 16;
        const float d = mq_get_f16(blk + 80), min = mq_get_f16(blk + 82);
        float *y = dst + b * QK_K;
        int is = 0;
        for (int h = 0; h < QK_K; h += 128) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++) {
                    const uint8_t s = sc[is++];
                    const float dl = d * (s & 0xF), ml = min * (s >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * ((q[l + 16 * half] >> shift) & 3) - ml;
                }
            }
            q += 32;
        }
    }
}
