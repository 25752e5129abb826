/*
** q3_k.c - ggml Q3_K (super-blocks of 256), byte-identical to quantize_row_q3_K_ref, which
** ggml_quantize_chunk (quantize_q3_K) runs when there is no importance matrix.
**
** Block (110 bytes): hmask[32] @0 | qs[64] @32 | scales[12] @96 | d fp16 @108.
**   Sixteen sub-blocks of 16 with a signed 6-bit scale s_j (stored s_j + 32): its low nibble in
**   scales[j] (j < 8) or the high nibble of scales[j-8] (j >= 8), its top two bits in
**   scales[8 + j%4] at bit 2*(j/4).
**   Codes q in 0..7: bit 2 of element e in hmask[e % 32] at bit e / 32; the low two bits packed
**   as Q2_K's (128-element half h: qs[32h + l] = q[l] | q[l+32] << 2 | q[l+64] << 4 | q[l+96] << 6).
**   value = d * s_j * (q - 4).
** Reference, per sub-block: make_q3_quants(16, nmax 4, do_rmse): the symmetric scale -4/max, then
** up to five passes that move single codes while the weighted (w = x^2) fit improves; then the
** 16 scales coded in 6 bits against max_scale/-32 and the codes recomputed from the fp16 d (a
** sub-block whose coded scale is 0 keeps the fit's codes).
*/
#include <assert.h>

#include "qcommon.h"

enum { QK_K = 256, SUB = 16, NSUB = QK_K / SUB, NMAX = 4 };

#define GROUP_MAX_EPS 1e-15f


/* ggml make_q3_quants(16, 4, x, L, do_rmse = true): L in 0..7 (code + 4); returns the scale. */
static float fit_sub_block(const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < SUB; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, SUB);
        return 0.f;
    }
    const float iscale = -NMAX / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < SUB; i++) {
        int l = mq_imax(-NMAX, mq_imin(NMAX - 1, mq_nearest_int(iscale * x[i])));
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < SUB; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int new_l = mq_imax(-NMAX, mq_imin(NMAX - 1, mq_nearest_int(x[i] * sl2 / slx)));
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < SUB; i++) L[i] = (int8_t)(L[i] + NMAX);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Signed 6-bit scale of sub-block j from the packed scales[12]. */
static inline int q3_k_scale(const uint8_t *sc, int j)
{
    int lo = j < 8 ? sc[j] & 0xF : sc[j - 8] >> 4;
    return (lo | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

/* One super-block x[256] into the 110 bytes at y; fast: the sub-block fits by q3_k_avx2.c. */
static void q3_k_block(const float *x, uint8_t *y, bool fast)
{
    int8_t L[QK_K];
    float scales[NSUB];
    uint8_t *hmask = y, *qs = y + 32, *sc = y + 96;
    float max_scale = 0, amax = 0;
    if (!(fast && mq_q3_k_fit_avx2(x, scales, L)))
        for (int j = 0; j < NSUB; j++) scales[j] = fit_sub_block(x + SUB * j, L + SUB * j);
    for (int j = 0; j < NSUB; j++) {
        float a = fabsf(scales[j]);
        if (a > amax) {
            amax = a;
            max_scale = scales[j];
        }
    }
    memset(sc, 0, 12);
    if (max_scale) {
        const float iscale = -32.f / max_scale;
        for (int j = 0; j < NSUB; j++) {
            /* |iscale * scales[j]| <= 32: ggml's int8_t holds nearest_int exactly */
            int l = mq_imax(-32, mq_imin(31, mq_nearest_int(iscale * scales[j]))) + 32;
            if (j < 8) sc[j] = (uint8_t)(l & 0xF);
            else sc[j - 8] |= (uint8_t)((l & 0xF) << 4);
            sc[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
        }
        mq_put_f16(y + 108, 1 / iscale);
    } else {
        mq_put_f16(y + 108, 0.f);
    }
    const float dd = mq_get_f16(y + 108);
    if (fast) {
        float d[NSUB];
        for (int j = 0; j < NSUB; j++) d[j] = dd * q3_k_scale(sc, j);
        if (mq_q3_k_codes_avx2(x, d, L, y)) return;
    }
    for (int j = 0; j < NSUB; j++) {
        const float d = dd * q3_k_scale(sc, j);
        if (!d) continue;
        for (int ii = 0; ii < SUB; ii++) {
            int l = mq_imax(-4, mq_imin(3, mq_nearest_int(x[SUB * j + ii] / d)));
            L[SUB * j + ii] = (int8_t)(l + 4);
        }
    }
    memset(hmask, 0, 32);
    for (int e = 0; e < QK_K; e++) {
        if (L[e] > 3) {
            hmask[e % 32] |= (uint8_t)(1u << (e / 32));
            L[e] = (int8_t)(L[e] - 4);
        }
    }
    for (int h = 0; h < QK_K; h += 128)
        for (int l = 0; l < 32; l++)
            qs[h / 4 + l] = (uint8_t)(L[h + l] | (L[h + l + 32] << 2) | (L[h + l + 64] << 4) | (L[h + l + 96] << 6));
}

static void q3_k_rows(const float *src, size_t n, bool fast, uint8_t *data)
{
    for (size_t b = 0; b < n / QK_K; b++) q3_k_block(src + b * QK_K, data + b * sizeof(struct mq_block_q3_K), fast);
}

void mq_q3_k_quantize_rows(const float *src, size_t n, size_t row_len, const float *qw, uint8_t *data)
{
    (void)row_len, (void)qw;
    /* the importance-weighted fit (quantize_row_q3_K_impl) is in weighted.c */
    assert(qw == NULL);
    q3_k_rows(src, n, false, data);
}

void mq_quantize_q3_k_ref(const float *src, size_t n, size_t row_len, uint32_t block,
                          uint8_t *data, float *scales, int8_t *zeros)
{
    (void)block, (void)scales, (void)zeros;
    mq_q3_k_quantize_rows(src, n, row_len, NULL, data);
}

void mq_quantize_q3_k_fast(const float *src, size_t n, size_t row_len, uint32_t block,
                           uint8_t *data, float *scales, int8_t *zeros)
{
    (void)row_len, (void)block, (void)scales, (void)zeros;
    q3_k_rows(src, n, mq_cpu_avx2(), data);
}

/* dequantize_row_q3_K */
void mq_dequantize_q3_k(const uint8_t *data, const float *scales, const int8_t *zeros, size_t n,
                        size_t row_len, uint32_t block, float *dst)
{
    (void)scales, (void)zeros, (void)row_len, (void)block;
    for (size_t b = 0; b < n / QK_K; b++) {
        const uint8_t *blk = data + b * sizeof(struct mq_block_q3_K);
        const uint8_t *hm = blk, *q = blk + 32, *sc = blk + 96;
        const float d_all = mq_get_f16(blk + 108);
        float *y = dst + b * QK_K;
        int is = 0;
        uint8_t m = 1;
        for (int h = 0; h < QK_K; h += 128) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++) {
                    const float dl = d_all * q3_k_scale(sc, is++);
                    for (int l = 16 * half; l < 16 * half + 16; l++)
                        *y++ = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                }
                m = (uint8_t)(m << 1);
            }
            q += 32;
        }
    }
}
