/*
** kquants.c - ggml K-quants Q6_K, Q5_K and Q4_K (super-blocks of 256), byte-identical to
** quantize_row_q6_K_ref / quantize_row_q5_K_ref / quantize_row_q4_K_ref, which
** ggml_quantize_chunk runs when there is no importance matrix.
**
** Q6_K block (210 bytes): ql[128] @0 | qh[64] @128 | scales int8[16] @192 | d fp16 @208.
**   Per 128-element half h (ql += 64h, qh += 32h), l = 0..31, q = 6-bit code (L + 32):
**   ql[l] = q[l]&15 | (q[l+64]&15)<<4; ql[l+32] = q[l+32]&15 | (q[l+96]&15)<<4;
**   qh[l] = q[l]>>4 | (q[l+32]>>4)<<2 | (q[l+64]>>4)<<4 | (q[l+96]>>4)<<6.
**   value = d * scales[i/16] * (q - 32).
** Q5_K block (176 bytes): d fp16 @0 | dmin fp16 @2 | scales[12] @4 | qh[32] @16 | qs[128] @48.
**   Eight sub-blocks of 32 with 6-bit scale and min packed in scales[12] (mq_k4_scale_min, ggml's get_scale_min_k4);
**   in 64-chunk c: qs[32c+l] = q[64c+l]&15 | (q[64c+32+l]&15)<<4, the 5th bits go to qh[l]
**   bit 2c (element 64c+l) and bit 2c+1 (element 64c+32+l). value = d*sc*q - dmin*m.
** Q4_K block (144 bytes): d fp16 @0 | dmin fp16 @2 | scales[12] @4 | qs[128] @16.
**   Scales and mins as in Q5_K; in 64-chunk c: qs[32c+l] = q[64c+l] | q[64c+32+l]<<4 (q in 0..15).
**   value = d*sc*q - dmin*m.
** Q4_K and Q5_K share everything up to the packing (kquant_fit_superblock): they differ only in
** make_qkx2_quants' nmax, rmin and step count.
** All sums run left to right in float32 exactly as in ggml-quants.c.
*/
#include "avx2_lanes.h"
#include "kquants_simd.h"
#include "qx_lanes.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MQ_X86 1
#endif

enum { QK_K = 256, Q6K_BYTES = 210, Q5K_BYTES = 176, Q4K_BYTES = 144 };

#define GROUP_MAX_EPS 1e-15f


/* ggml make_qx_quants with rmse_type 1: weights qw, or x^2 without (see qcommon.h). */
float mq_make_qx_quants(int n, int nmax, const float *x, int8_t *L, const float *qw)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = mq_nearest_int(iscale * x[i]);
        l = mq_imax(-nmax, mq_imin(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = qw ? qw[i] : x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = mq_nearest_int(iscale * x[i]);
            l = mq_imax(-nmax, mq_imin(nmax - 1, l));
            float w = qw ? qw[i] : x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = mq_nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + mq_imax(-nmax, mq_imin(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/*
** The block scale and the sixteen int8 sub-block scales of quantize_row_q6_K_ref (d at y+208,
** scales at y+192); false when every sub-block scale is below GROUP_MAX_EPS: the block is then
** all zero bytes and nothing else is written.
*/
static bool q6_k_pack_scales(const float *scales, uint8_t *y)
{
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < QK_K / 16; ib++) {
        float abs_scale = fabsf(scales[ib]);
        if (abs_scale > max_abs_scale) {
            max_abs_scale = abs_scale;
            max_scale = scales[ib];
        }
    }
    if (max_abs_scale < GROUP_MAX_EPS) {
        memset(y, 0, Q6K_BYTES);
        mq_put_f16(y + 208, 0.f);
        return false;
    }
    int8_t *sc = (int8_t *)(y + 192);
    float iscale = -128.f / max_scale;
    mq_put_f16(y + 208, 1 / iscale);
    for (int ib = 0; ib < QK_K / 16; ib++) sc[ib] = (int8_t)mq_imin(127, mq_nearest_int(iscale * scales[ib]));
    return true;
}

/* The 6-bit codes L[256] (0..63) into ql[128] at y and qh[64] at y+128 (layout in the header). */
static void q6_k_pack_bits(const int8_t *L, uint8_t *y)
{
    uint8_t *ql = y, *qh = y + 128;
    for (int j = 0; j < QK_K; j += 128) {
        for (int l = 0; l < 32; l++) {
            const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF;
            const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
            ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
            ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
            qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                              ((L[j + l + 96] >> 4) << 6));
        }
        ql += 64;
        qh += 32;
    }
}

/* The rest of quantize_row_q6_K_ref once the sub-block scales and codes Lin are fitted. */
static void q6_k_pack(const float *x, const float *scales, const int8_t *Lin, uint8_t *y)
{
    int8_t L[QK_K];
    memcpy(L, Lin, sizeof L);
    if (!q6_k_pack_scales(scales, y)) return;
    const int8_t *sc = (const int8_t *)(y + 192);
    const float dd = mq_get_f16(y + 208);
    for (int j = 0; j < QK_K / 16; j++) {
        float d = dd * sc[j];
        if (!d) continue;
        for (int ii = 0; ii < 16; ii++) {
            int l = mq_nearest_int(x[16 * j + ii] / d);
            l = mq_imax(-32, mq_imin(31, l));
            L[16 * j + ii] = (int8_t)(l + 32);
        }
    }
    q6_k_pack_bits(L, y);
}

void mq_quantize_q6_k_ref(const float *src, size_t n, size_t row_len, uint32_t block,
                          uint8_t *data, float *scales_unused, int8_t *zeros)
{
    (void)row_len, (void)block, (void)scales_unused, (void)zeros;
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (size_t b = 0; b < n / QK_K; b++) {
        const float *x = src + b * QK_K;
        for (int ib = 0; ib < QK_K / 16; ib++) scales[ib] = mq_make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, NULL);
        q6_k_pack(x, scales, L, data + b * Q6K_BYTES);
    }
}

#ifdef MQ_X86
__attribute__((target("avx2,f16c"))) static inline __m256i nearest_int8(__m256 f)
{
    __m256 v = _mm256_add_ps(f, _mm256_set1_ps(12582912.f));
    __m256i i = _mm256_castps_si256(v);
    return _mm256_sub_epi32(_mm256_and_si256(i, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x00400000));
}

/* clamp(nearest_int(f), lo, hi) exactly as ggml for every f (the 1.5*2^23 trick on integer lanes) */
__attribute__((target("avx2,f16c"))) static inline __m256i nearest_clamp8(__m256 f, int lo, int hi)
{
    return _mm256_max_epi32(_mm256_set1_epi32(lo), _mm256_min_epi32(_mm256_set1_epi32(hi), nearest_int8(f)));
}

/* q6_k_pack_bits, 32 codes a vector (each byte holds 6 bits: the 16-bit shifts stay in their byte
 * once masked) */
__attribute__((target("avx2,f16c"))) static void q6_k_pack_bits_avx2(const int8_t *L, uint8_t *y)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x03);
    for (int h = 0; h < 2; h++) {
        const int8_t *l = L + 128 * h;
        const __m256i a = _mm256_loadu_si256((const __m256i *)l), b = _mm256_loadu_si256((const __m256i *)(l + 32));
        const __m256i c = _mm256_loadu_si256((const __m256i *)(l + 64)), d = _mm256_loadu_si256((const __m256i *)(l + 96));
        const __m256i ql0 = _mm256_or_si256(_mm256_and_si256(a, m4), _mm256_slli_epi16(_mm256_and_si256(c, m4), 4));
        const __m256i ql1 = _mm256_or_si256(_mm256_and_si256(b, m4), _mm256_slli_epi16(_mm256_and_si256(d, m4), 4));
        __m256i qh = _mm256_and_si256(_mm256_srli_epi16(a, 4), m2);
        qh = _mm256_or_si256(qh, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(b, 4), m2), 2));
        qh = _mm256_or_si256(qh, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(c, 4), m2), 4));
        qh = _mm256_or_si256(qh, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(d, 4), m2), 6));
        _mm256_storeu_si256((__m256i *)(y + 64 * h), ql0);
        _mm256_storeu_si256((__m256i *)(y + 64 * h + 32), ql1);
        _mm256_storeu_si256((__m256i *)(y + 128 + 32 * h), qh);
    }
}

/*
** q6_k_pack with the codes recomputed eight at a time (true division, ggml's rounding); a
** sub-block whose scale codes to 0 keeps the search's codes, made here from its winning iscale
** (the fit is lazy: mq_qx_fit16_lazy).
*/
__attribute__((target("avx2,f16c"))) static void q6_k_pack_avx2(const float *x, const float *scales,
                                                               const float *iscales, int8_t *L, uint8_t *y)
{
    if (!q6_k_pack_scales(scales, y)) return;
    const int8_t *sc = (const int8_t *)(y + 192);
    const float dd = mq_get_f16(y + 208);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int j = 0; j < QK_K / 16; j += 2) {
        const float d0 = dd * sc[j], d1 = dd * sc[j + 1];
        if (!d0 || !d1) { /* a sub-block keeping the search's codes: scalar */
            for (int t = 0; t < 2; t++) {
                const float d = t ? d1 : d0;
                if (!d) {
                    mq_qx_codes(16, 32, x + 16 * (j + t), iscales[j + t], L + 16 * (j + t));
                    continue;
                }
                for (int ii = 0; ii < 16; ii++)
                    L[16 * (j + t) + ii] = (int8_t)(mq_imax(-32, mq_imin(31, mq_nearest_int(x[16 * (j + t) + ii] / d))) + 32);
            }
            continue;
        }
        __m256i l[4];
        for (int k = 0; k < 4; k++) {
            const __m256 vd = _mm256_set1_ps(k < 2 ? d0 : d1);
            l[k] = _mm256_add_epi32(nearest_clamp8(_mm256_div_ps(_mm256_loadu_ps(x + 16 * j + 8 * k), vd), -32, 31),
                                    _mm256_set1_epi32(32));
        }
        /* 32 codes in 0..63 to bytes, in order (the packs work per 128-bit half) */
        __m256i bts = _mm256_packus_epi16(_mm256_packs_epi32(l[0], l[1]), _mm256_packs_epi32(l[2], l[3]));
        _mm256_storeu_si256((__m256i *)(L + 16 * j), _mm256_permutevar8x32_epi32(bts, order));
    }
    q6_k_pack_bits_avx2(L, y);
}
#endif

void mq_quantize_q6_k_fast(const float *src, size_t n, size_t row_len, uint32_t block,
                           uint8_t *data, float *scales_unused, int8_t *zeros)
{
#ifdef MQ_X86
    if (mq_cpu_avx2()) {
        int8_t L[QK_K];
        float scales[QK_K / 16], iscales[QK_K / 16];
        for (size_t b = 0; b < n / QK_K; b++) {
            const float *x = src + b * QK_K;
            if (mq_qx_fit16_lazy(16, 32, MQ_QX_W_X2, x, NULL, 0.f, scales, iscales, NULL)) {
                q6_k_pack_avx2(x, scales, iscales, L, data + b * Q6K_BYTES);
            } else {
                for (int ib = 0; ib < QK_K / 16; ib++)
                    scales[ib] = mq_make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, NULL);
                q6_k_pack(x, scales, L, data + b * Q6K_BYTES);
            }
        }
        return;
    }
#endif
    mq_quantize_q6_k_ref(src, n, row_len, block, data, scales_unused, zeros);
}

void mq_dequantize_q6_k(const uint8_t *data, const float *scales, const int8_t *zeros, size_t n,
                        size_t row_len, uint32_t block, float *dst)
{
    (void)scales, (void)zeros, (void)row_len, (void)block;
    for (size_t b = 0; b < n / QK_K; b++) {
        const uint8_t *blk = data + b * Q6K_BYTES;
        const float d = mq_get_f16(blk + 208);
        const uint8_t *ql = blk, *qh = blk + 128;
        const int8_t *sc = (const int8_t *)(blk + 192);
        float *y = dst + b * QK_K;
        for (int h = 0; h < 2; h++) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

/* ---- Q5_K and Q4_K ---- */

/* ggml make_qkx2_quants (see qcommon.h); the Q4_K/Q5_K references call it with use_mad false. */
float mq_make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                          uint8_t *Laux, float rmin, float rdelta, int nstep, bool use_mad)
{
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = mq_nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)mq_imax(0, mq_imin(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = mq_nearest_int(iscale * (x[i] - min));
            l = mq_imax(0, mq_imin(nmax, l));
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; i++) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}


/*
** The six-bit scale and min of each sub-block, as in quantize_row_q4_K_ref: the eight fitted
** scales and mins quantized against the largest of each and packed into y[4..15] (the layout
** mq_k4_scale_min reads), d and dmin stored as fp16 at y[0] and y[2].
*/
static void kquant_pack_scales(const float *scales, const float *mins, uint8_t *y)
{
    uint8_t *sc = y + 4;
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t ls = (uint8_t)mq_nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)mq_nearest_int(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        mq_k4_pack_scale_min(sc, j, ls, lm);
    }
    mq_put_f16(y, max_scale / 63.f);
    mq_put_f16(y + 2, max_min / 63.f);
}

/*
** The common part of quantize_row_q4_K_ref and quantize_row_q5_K_ref for one super-block x[256]:
** a make_qkx2_quants fit per 32-element sub-block (weights av_x + |x|), the scales and mins
** packed (kquant_pack_scales), then the codes L[0..256) recomputed in 0..nmax from the fp16 d
** and dmin. A sub-block whose 6-bit scale came out 0 keeps make_qkx2_quants' codes, as in ggml.
*/
static void kquant_fit_superblock(const float *x, int nmax, float rmin, int nstep, uint8_t *y, uint8_t *L)
{
    uint8_t Laux[32];
    float mins[QK_K / 32], scales[QK_K / 32], weights[32];
    for (int j = 0; j < QK_K / 32; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = mq_make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep,
                                        false);
    }
    kquant_pack_scales(scales, mins, y);
    mq_k4_codes(x, y, nmax, L);
}

/* Q5_K codes L[256] (0..31) into qh[32] at y+16 and qs[128] at y+48 (no branches on the codes). */
static void q5_k_pack_codes(const uint8_t *L, uint8_t *y)
{
    uint8_t *qh = y + 16, *ql = y + 48;
    memset(qh, 0, QK_K / 8);
    for (int c = 0; c < QK_K / 64; c++) {
        for (int j = 0; j < 32; j++) {
            const int l1 = L[64 * c + j], l2 = L[64 * c + j + 32];
            qh[j] |= (uint8_t)(((l1 >> 4) << (2 * c)) | ((l2 >> 4) << (2 * c + 1)));
            ql[32 * c + j] = (uint8_t)((l1 & 15) | ((l2 & 15) << 4));
        }
    }
}

/* Q4_K codes L[256] (0..15) into qs[128] at y+16. */
static void q4_k_pack_codes(const uint8_t *L, uint8_t *y)
{
    uint8_t *q = y + 16;
    for (int c = 0; c < QK_K; c += 64) {
        for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[c + l] | (L[c + l + 32] << 4));
        q += 32;
    }
}

/*
** What separates Q4_K from Q5_K: make_qkx2_quants' settings (ggml's quantize_row_q4_K_ref uses
** nmax 15, rmin -1, 20 steps; quantize_row_q5_K_ref 31, -0.5, 15), the block size, where the code
** nibbles sit and, for Q5_K only, the 5th-bit plane. The reference, fast and dequantize paths all
** read the same row, so they cannot drift apart.
*/
struct kquant_kind {
    int nmax;
    float rmin;
    int nstep;
    size_t block_bytes;
    size_t qs_off;  /* code nibbles */
    size_t qh_off;  /* 5th bits (Q5_K), 0 = none */
    void (*pack_codes)(const uint8_t *L, uint8_t *y);
};

static const struct kquant_kind KQ_Q4K = {15, -1.f, 20, Q4K_BYTES, 16, 0, q4_k_pack_codes};
static const struct kquant_kind KQ_Q5K = {31, -0.5f, 15, Q5K_BYTES, 48, 16, q5_k_pack_codes};

#ifdef MQ_X86
/*
** make_qkx2_quants(32, nmax, ...) with kquant_fit_superblock's weights for the eight sub-blocks
** of one super-block at once, sub-block j in lane j. As in the make_qx_quants lanes (qx_lanes.c), every float
** operation is the scalar one, lane-wise and in the scalar order (separate mul and add where the
** scalar code has a*b + c, true divisions and square root), and every `if` is a per-lane blend,
** so each lane's scale, min and codes equal the reference's.
**
** The codes themselves are not kept: a step's codes are clamp(nearest(iscale * (x - min))) for
** that step's iscale and min, so the winning pair is recorded (l_iscale, l_min) and the codes are
** recomputed from it, with the same operations, only for a sub-block whose 6-bit scale is 0
** (the only case where ggml keeps make_qkx2_quants' codes).
*/
__attribute__((target("avx2,f16c"))) static inline __m256i clamp_code8(__m256 f, __m256i vnmax)
{
    return _mm256_max_epi32(_mm256_setzero_si256(), _mm256_min_epi32(vnmax, nearest_int8(f)));
}

/*
** Rounding the codes. ggml's nearest_int adds 1.5*2^23 and reads the low mantissa bits; for
** |f| < 2^22 that is exactly round-half-even(f), which vroundps computes in one instruction.
** The clamp to 0..nmax then works on the float bits as int32 (ordered like the floats for
** values >= 0, negative for -0 and every negative value, which go to +0 as ggml's integer 0
** converts): integer min/max run on every vector pipe, the float ones share the two multiply
** pipes with the sums' products. Outside that range, and for NaN, the trick's result is not the
** rounded value (the sum leaves [2^23, 2^24); NaN gives 0), so a step whose codes could leave it
** falls back to the integer path, bit for bit ggml's: codes_needed() bounds
** iscale * (x - min) over the lane's values by its two ends (x = the smallest value, x = max; a
** float subtraction and a multiplication by a fixed factor are monotone), any Inf or NaN end also
** sends the step to the integer path, and so does a NaN anywhere in the super-block. The same
** bounds drop a clamp that cannot act in a step (most steps need neither).
*/
__attribute__((target("avx2,f16c"))) static inline __m256 code_trick8(__m256 f, __m256i vnmax)
{
    return _mm256_cvtepi32_ps(clamp_code8(f, vnmax));
}

/* true when every lane's iscale * (x - min), x in [lo, hi], stays within [-2^22, 2^22 - 1] */
/* what a step's codes need: the integer path, or rounding with or without each clamp */
enum { CODES_TRICK = 1, CODES_CLAMP_LO = 2, CODES_CLAMP_HI = 4 };

/*
** Which path the codes of one step need, from every lane's bounds a = iscale * (lo - min) <=
** iscale * (x - min) <= b = iscale * (max - min): the integer path unless both lie within
** [-2^22, 2^22 - 1]; the clamp at 0 unless a >= 0 (then every f >= 0 rounds to +0 or more, or to -0:
** harmless, a -0 code only ever adds to sums that start at +0 and is squared in the error), the clamp at nmax unless b < nmax + 0.5 (then no f rounds
** above nmax). ORed over the blocks of the step by the caller.
*/
__attribute__((target("avx2,f16c"))) static inline int codes_needed(__m256 iscale, __m256 lo, __m256 hi, __m256 min,
                                                                   int nmax)
{
    const __m256 a = _mm256_mul_ps(iscale, _mm256_sub_ps(lo, min));
    const __m256 b = _mm256_mul_ps(iscale, _mm256_sub_ps(hi, min));
    const __m256 low = _mm256_set1_ps(-4194304.f), high = _mm256_set1_ps(4194303.f);
    __m256 ok = _mm256_and_ps(_mm256_cmp_ps(a, low, _CMP_GE_OQ), _mm256_cmp_ps(a, high, _CMP_LE_OQ));
    ok = _mm256_and_ps(ok, _mm256_and_ps(_mm256_cmp_ps(b, low, _CMP_GE_OQ), _mm256_cmp_ps(b, high, _CMP_LE_OQ)));
    if (_mm256_movemask_ps(ok) != 0xff) return CODES_TRICK;
    int need = 0;
    if (_mm256_movemask_ps(_mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_GE_OQ)) != 0xff) need |= CODES_CLAMP_LO;
    if (_mm256_movemask_ps(_mm256_cmp_ps(b, _mm256_set1_ps((float)nmax + 0.5f), _CMP_LT_OQ)) != 0xff)
        need |= CODES_CLAMP_HI;
    return need;
}

/*
** Two super-blocks (eight lanes each) are fitted side by side, ng = 1 or 2 of them (a constant in
** each instantiation of qkx2_fit_body): each lane's sums are one long chain of dependent adds, so
** a second independent set of chains keeps the vector unit busy. Measured on a shared Zen 3
** (Q4_K): 2 blocks 0.52 GB/s, 4 the same, 8 0.43 (the accumulators no longer fit the 16
** registers). The blocks never mix.
*/
enum { KQ_G = MQ_KQ_BATCH };
/* the per-group loops are unrolled so that the groups' chains interleave */
#define KQ_FOR_G _Pragma("GCC unroll 2") for (int g = 0; g < KQ_G; g++)
#define NG_FOR_G _Pragma("GCC unroll 2") for (int g = 0; g < ng; g++)

/* one candidate step's sums over the 32 elements of each group; the codes go to Lf */
__attribute__((target("avx2,f16c"), always_inline)) static inline void
qkx2_step_sums(const __m256 (*XM)[KQ_G], const __m256 (*X)[KQ_G], const __m256 (*W)[KQ_G], __m256 (*Lf)[KQ_G],
               const __m256 iscale[KQ_G], int nmax, const int codes, __m256 sum_l[KQ_G], __m256 sum_l2[KQ_G],
               __m256 sum_xl[KQ_G], const int ng)
{
    const __m256i vnmax = _mm256_set1_epi32(nmax);
    const __m256i vnmaxf = _mm256_castps_si256(_mm256_set1_ps((float)nmax));
    NG_FOR_G sum_l[g] = sum_l2[g] = sum_xl[g] = _mm256_setzero_ps();
    for (int i = 0; i < 32; i++) {
        NG_FOR_G {
            const __m256 f = _mm256_mul_ps(iscale[g], XM[i][g]);
            __m256 lf;
            if (codes & CODES_TRICK) {
                lf = code_trick8(f, vnmax);
            } else {
                __m256i r = _mm256_castps_si256(_mm256_round_ps(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
                if (codes & CODES_CLAMP_LO) r = _mm256_max_epi32(r, _mm256_setzero_si256());
                if (codes & CODES_CLAMP_HI) r = _mm256_min_epi32(r, vnmaxf);
                lf = _mm256_castsi256_ps(r);
            }
            Lf[i][g] = lf;
            const __m256 wl = _mm256_mul_ps(W[i][g], lf);
            sum_l[g] = _mm256_add_ps(sum_l[g], wl);
            sum_l2[g] = _mm256_add_ps(sum_l2[g], _mm256_mul_ps(wl, lf));
            sum_xl[g] = _mm256_add_ps(sum_xl[g], _mm256_mul_ps(wl, X[i][g]));
        }
    }
}

/* ng = 1 or 2 super-blocks (a constant in each caller, so the group loops fold away) */
__attribute__((target("avx2,f16c"), always_inline)) static inline void
qkx2_fit_body(const float *const *xs, const struct mq_qkx2_params *p, struct mq_qkx2_fit8 *out, const int ng)
{
    const __m256i lane_off = _mm256_setr_epi32(0, 32, 64, 96, 128, 160, 192, 224);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 signbit = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    const __m256 zero = _mm256_setzero_ps();
    const int nmax = p->nmax;
    const __m256i vnmax = _mm256_set1_epi32(nmax);
    /* XM = X - min for the lane's current min (recomputed when a lane's min moves) */
    __m256 X[32][KQ_G], W[32][KQ_G], XM[32][KQ_G], Lf[32][KQ_G];
    __m256 min[KQ_G], max[KQ_G], lo[KQ_G], sum_w[KQ_G], sum_x[KQ_G], flat[KQ_G], flat_min[KQ_G];
    __m256 scale[KQ_G], best_error[KQ_G], l_iscale[KQ_G], l_min[KQ_G];
    bool nan_free = true;

    NG_FOR_G {
        __m256 ord = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
        for (int i = 0; i < 32; i++) {
            X[i][g] = _mm256_i32gather_ps(xs[g] + i, lane_off, 4);
            ord = _mm256_and_ps(ord, _mm256_cmp_ps(X[i][g], X[i][g], _CMP_ORD_Q));
        }
        nan_free = nan_free && _mm256_movemask_ps(ord) == 0xff;
        if (p->qw) {
            for (int i = 0; i < 32; i++) W[i][g] = _mm256_i32gather_ps(p->qw[g] + i, lane_off, 4);
        } else {
            /* kquant_fit_superblock: weights av_x + |x| with av_x = sqrtf(sum_x2 / 32) */
            __m256 sum_x2 = zero;
            for (int i = 0; i < 32; i++) sum_x2 = _mm256_add_ps(sum_x2, _mm256_mul_ps(X[i][g], X[i][g]));
            const __m256 av_x = _mm256_sqrt_ps(_mm256_div_ps(sum_x2, _mm256_set1_ps(32.f)));
            for (int i = 0; i < 32; i++) W[i][g] = _mm256_add_ps(av_x, _mm256_and_ps(X[i][g], absmask));
        }

        __m256 mn = X[0][g], mx = X[0][g], sw = W[0][g], sx = _mm256_mul_ps(W[0][g], X[0][g]);
        for (int i = 1; i < 32; i++) {
            mn = _mm256_blendv_ps(mn, X[i][g], _mm256_cmp_ps(X[i][g], mn, _CMP_LT_OQ));
            mx = _mm256_blendv_ps(mx, X[i][g], _mm256_cmp_ps(X[i][g], mx, _CMP_GT_OQ));
            sw = _mm256_add_ps(sw, W[i][g]);
            sx = _mm256_add_ps(sx, _mm256_mul_ps(W[i][g], X[i][g]));
        }
        lo[g] = mn;                                                     /* smallest value, for the range check */
        mn = _mm256_andnot_ps(_mm256_cmp_ps(mn, zero, _CMP_GT_OQ), mn); /* if (min > 0) min = 0 */
        min[g] = flat_min[g] = mn;
        max[g] = mx;
        sum_w[g] = sw;
        sum_x[g] = sx;
        flat[g] = _mm256_cmp_ps(mx, mn, _CMP_EQ_OQ);
        for (int i = 0; i < 32; i++) XM[i][g] = _mm256_sub_ps(X[i][g], mn);

        const __m256 iscale = _mm256_div_ps(_mm256_set1_ps((float)nmax), _mm256_sub_ps(mx, mn));
        const __m256 sc = _mm256_div_ps(_mm256_set1_ps(1.f), iscale);
        __m256 err = zero;
        for (int i = 0; i < 32; i++) {
            __m256 lf = code_trick8(_mm256_mul_ps(iscale, XM[i][g]), vnmax);
            __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(sc, lf), mn), X[i][g]);
            diff = _mm256_mul_ps(diff, diff);
            err = _mm256_add_ps(err, _mm256_mul_ps(W[i][g], diff));
        }
        scale[g] = sc;
        best_error[g] = err;
        l_iscale[g] = iscale;
        l_min[g] = mn;
    }

    for (int is = 0; is <= p->nstep; is++) {
        /* rmin + rdelta * is + nmax */
        const __m256 num = _mm256_set1_ps(p->rmin + p->rdelta * (float)is + (float)nmax);
        __m256 iscale[KQ_G], sum_l[KQ_G], sum_l2[KQ_G], sum_xl[KQ_G], D[KQ_G], dpos[KQ_G];
        int codes = nan_free ? 0 : CODES_TRICK;
        NG_FOR_G {
            iscale[g] = _mm256_div_ps(num, _mm256_sub_ps(max[g], min[g]));
            codes |= codes_needed(iscale[g], lo[g], max[g], min[g], nmax);
        }
        /* one instantiation per path (codes is a constant in each) */
        if (codes & CODES_TRICK) qkx2_step_sums(XM, X, W, Lf, iscale, nmax, CODES_TRICK, sum_l, sum_l2, sum_xl, ng);
        else if (codes == 0) qkx2_step_sums(XM, X, W, Lf, iscale, nmax, 0, sum_l, sum_l2, sum_xl, ng);
        else if (codes == CODES_CLAMP_HI)
            qkx2_step_sums(XM, X, W, Lf, iscale, nmax, CODES_CLAMP_HI, sum_l, sum_l2, sum_xl, ng);
        else
            qkx2_step_sums(XM, X, W, Lf, iscale, nmax, CODES_CLAMP_LO | CODES_CLAMP_HI, sum_l, sum_l2, sum_xl, ng);
        __m256 any = zero;
        NG_FOR_G {
            D[g] = mq_avx2_qkx2_det(sum_w[g], sum_l[g], sum_l2[g]);
            dpos[g] = _mm256_cmp_ps(D[g], zero, _CMP_GT_OQ);
            any = _mm256_or_ps(any, dpos[g]);
        }
        if (_mm256_testz_ps(any, any)) continue; /* no lane has D > 0 */
        __m256 this_scale[KQ_G], this_min[KQ_G], cur_error[KQ_G];
        NG_FOR_G {
            mq_avx2_qkx2_solve(sum_w[g], sum_x[g], sum_l[g], sum_l2[g], sum_xl[g], D[g], &this_scale[g], &this_min[g]);
            cur_error[g] = zero;
        }
        for (int i = 0; i < 32; i++) {
            NG_FOR_G {
                __m256 diff =
                    _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(this_scale[g], Lf[i][g]), this_min[g]), X[i][g]);
                diff = _mm256_mul_ps(diff, diff);
                cur_error[g] = _mm256_add_ps(cur_error[g], _mm256_mul_ps(W[i][g], diff));
            }
        }
        NG_FOR_G {
            const __m256 upd = _mm256_and_ps(dpos[g], _mm256_cmp_ps(cur_error[g], best_error[g], _CMP_LT_OQ));
            if (_mm256_testz_ps(upd, upd)) continue;
            best_error[g] = _mm256_blendv_ps(best_error[g], cur_error[g], upd);
            scale[g] = _mm256_blendv_ps(scale[g], this_scale[g], upd);
            l_iscale[g] = _mm256_blendv_ps(l_iscale[g], iscale[g], upd);
            l_min[g] = _mm256_blendv_ps(l_min[g], min[g], upd);
            min[g] = _mm256_blendv_ps(min[g], this_min[g], upd);
            for (int i = 0; i < 32; i++) XM[i][g] = _mm256_sub_ps(X[i][g], min[g]);
        }
    }
    /* max == min lanes return early in the scalar code: scale 0, -min of the first pass (their
     * steps all have D = 0, so min never moved, but the blend does not rely on that) */
    NG_FOR_G {
        _mm256_storeu_ps(out[g].scale, _mm256_andnot_ps(flat[g], scale[g]));
        _mm256_storeu_ps(out[g].the_min, _mm256_xor_ps(_mm256_blendv_ps(min[g], flat_min[g], flat[g]), signbit));
        _mm256_storeu_ps(out[g].l_iscale, l_iscale[g]);
        _mm256_storeu_ps(out[g].l_min, l_min[g]);
        out[g].flat = _mm256_movemask_ps(flat[g]);
    }
}

__attribute__((target("avx2,f16c"))) void mq_qkx2_fit_blocks(const float *const *xs, int n,
                                                           const struct mq_qkx2_params *p, struct mq_qkx2_fit8 *out)
{
    struct mq_qkx2_params q = *p;
    for (int done = 0; done < n;) {
        q.qw = p->qw ? p->qw + done : NULL;
        if (n - done >= KQ_G) {
            qkx2_fit_body(xs + done, &q, out + done, KQ_G);
            done += KQ_G;
        } else {
            qkx2_fit_body(xs + done, &q, out + done, 1);
            done += 1;
        }
    }
}

/*
** The rest of kquant_fit_superblock for x[256] once mq_qkx2_fit_8x32 has fitted it: the
** packed scales, then the codes L[256]. A sub-block with a nonzero 6-bit scale gets its codes
** recomputed eight at a time ((x + dm) / d, rounded and clamped, as in the scalar loop); the
** others keep the winning make_qkx2_quants step's codes, recomputed here from (l_iscale, l_min).
*/
__attribute__((target("avx2,f16c"))) static void kquant_codes_avx2(const float *x, int nmax,
                                                                  const struct mq_qkx2_fit8 *f, uint8_t *y, uint8_t *L)
{
    kquant_pack_scales(f->scale, f->the_min, y);
    const uint8_t *sc = y + 4;
    const float dd = mq_get_f16(y), dmin = mq_get_f16(y + 2);
    const __m256i vnmax = _mm256_set1_epi32(nmax);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int j = 0; j < QK_K / 32; j++) {
        const float *xj = x + 32 * j;
        uint8_t s, m;
        mq_k4_scale_min(j, sc, &s, &m);
        const float d = dd * s;
        if (!d) {
            for (int ii = 0; ii < 32; ii++) {
                int l = (f->flat >> j) & 1 ? 0 : mq_nearest_int(f->l_iscale[j] * (xj[ii] - f->l_min[j]));
                L[32 * j + ii] = (uint8_t)mq_imax(0, mq_imin(nmax, l));
            }
            continue;
        }
        const __m256 vd = _mm256_set1_ps(d), vdm = _mm256_set1_ps(dmin * m);
        __m256i l[4];
        for (int k = 0; k < 4; k++)
            l[k] = clamp_code8(_mm256_div_ps(_mm256_add_ps(_mm256_loadu_ps(xj + 8 * k), vdm), vd), vnmax);
        /* 32 codes in 0..nmax to bytes, in order (the packs work per 128-bit half) */
        __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(l[0], l[1]), _mm256_packs_epi32(l[2], l[3]));
        _mm256_storeu_si256((__m256i *)(L + 32 * j), _mm256_permutevar8x32_epi32(b, order));
    }
}

/*
** The packing of q4_k_pack_codes / q5_k_pack_codes, 32 codes a vector: in 64-chunk c the codes
** of sub-blocks 2c (lo) and 2c+1 (hi) share the bytes qs[32c..32c+32). Byte-wise shifts are done
** on 16-bit lanes: every byte holds at most 4 (Q4_K) or 5 (Q5_K) bits, so nothing crosses into
** the neighbouring byte once the masks are applied.
*/
__attribute__((target("avx2,f16c"))) static void kquant_pack_codes_avx2(const struct kquant_kind *k, const uint8_t *L,
                                                                       uint8_t *y)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), m1 = _mm256_set1_epi8(0x01);
    uint8_t *qs = y + k->qs_off;
    __m256i qh = _mm256_setzero_si256();
    for (int c = 0; c < QK_K / 64; c++) {
        const __m256i lo = _mm256_loadu_si256((const __m256i *)(L + 64 * c));
        const __m256i hi = _mm256_loadu_si256((const __m256i *)(L + 64 * c + 32));
        const __m256i q = _mm256_or_si256(_mm256_and_si256(lo, m4), _mm256_slli_epi16(_mm256_and_si256(hi, m4), 4));
        _mm256_storeu_si256((__m256i *)(qs + 32 * c), q);
        if (k->qh_off) {
            const __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(lo, 4), m1);
            const __m256i h2 = _mm256_and_si256(_mm256_srli_epi16(hi, 4), m1);
            /* bit 2c and 2c+1 of every byte; shifts by < 8 of a 0/1 byte stay in the byte */
            const __m128i s1 = _mm_cvtsi32_si128(2 * c), s2 = _mm_cvtsi32_si128(2 * c + 1);
            qh = _mm256_or_si256(qh, _mm256_or_si256(_mm256_sll_epi16(h1, s1), _mm256_sll_epi16(h2, s2)));
        }
    }
    if (k->qh_off) _mm256_storeu_si256((__m256i *)(y + k->qh_off), qh);
}

/* Q4_K or Q5_K for nb super-blocks of src, two at a time (the last one alone fitted twice). */
__attribute__((target("avx2,f16c"))) static void kquant_quantize_avx2(const struct kquant_kind *k, const float *src,
                                                                     size_t nb, uint8_t *data)
{
    struct mq_qkx2_fit8 f[KQ_G];
    const float *xs[KQ_G];
    uint8_t L[QK_K];
    const struct mq_qkx2_params p = {k->nmax, k->rmin, 0.1f, k->nstep, NULL};
    for (size_t b = 0; b < nb; b += KQ_G) {
        const int n = nb - b < KQ_G ? (int)(nb - b) : KQ_G;
        for (int g = 0; g < n; g++) xs[g] = src + (b + (size_t)g) * QK_K;
        mq_qkx2_fit_blocks(xs, n, &p, f);
        for (int g = 0; g < n; g++) {
            uint8_t *y = data + (b + (size_t)g) * k->block_bytes;
            kquant_codes_avx2(xs[g], k->nmax, &f[g], y, L);
            kquant_pack_codes_avx2(k, L, y);
        }
    }
}
#endif

static void kquant_quantize_ref(const struct kquant_kind *k, const float *src, size_t nb, uint8_t *data)
{
    uint8_t L[QK_K];
    for (size_t b = 0; b < nb; b++) {
        uint8_t *y = data + b * k->block_bytes;
        kquant_fit_superblock(src + b * QK_K, k->nmax, k->rmin, k->nstep, y, L);
        k->pack_codes(L, y);
    }
}

static void kquant_quantize_fast(const struct kquant_kind *k, const float *src, size_t nb, uint8_t *data)
{
#ifdef MQ_X86
    if (mq_cpu_avx2()) {
        kquant_quantize_avx2(k, src, nb, data);
        return;
    }
#endif
    kquant_quantize_ref(k, src, nb, data);
}

void mq_quantize_q5_k_ref(const float *src, size_t n, size_t row_len, uint32_t block,
                          uint8_t *data, float *scales, int8_t *zeros)
{
    (void)row_len, (void)block, (void)scales, (void)zeros;
    kquant_quantize_ref(&KQ_Q5K, src, n / QK_K, data);
}

void mq_quantize_q5_k_fast(const float *src, size_t n, size_t row_len, uint32_t block,
                           uint8_t *data, float *scales, int8_t *zeros)
{
    (void)row_len, (void)block, (void)scales, (void)zeros;
    kquant_quantize_fast(&KQ_Q5K, src, n / QK_K, data);
}

/*
** dequantize_row_q5_K / dequantize_row_q4_K for one super-block: the low nibbles in qs, the 5th
** bits in qh (NULL for Q4_K, whose codes are the nibbles alone).
*/
static void kquant_dequant_superblock(const uint8_t *blk, const uint8_t *ql, const uint8_t *qh, float *y)
{
    const float d = mq_get_f16(blk), min = mq_get_f16(blk + 2);
    const uint8_t *sc = blk + 4;
    int is = 0;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < QK_K; j += 64) {
        uint8_t s, m;
        mq_k4_scale_min(is + 0, sc, &s, &m);
        const float d1 = d * s, m1 = min * m;
        mq_k4_scale_min(is + 1, sc, &s, &m);
        const float d2 = d * s, m2 = min * m;
        for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + (qh && (qh[l] & u1) ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + (qh && (qh[l] & u2) ? 16 : 0)) - m2;
        ql += 32;
        is += 2;
        u1 = (uint8_t)(u1 << 2);
        u2 = (uint8_t)(u2 << 2);
    }
}

/* Q4_K / Q5_K blocks back to floats. */
static void kquant_dequantize(const struct kquant_kind *k, const uint8_t *data, size_t nb, float *dst)
{
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = data + b * k->block_bytes;
        kquant_dequant_superblock(blk, blk + k->qs_off, k->qh_off ? blk + k->qh_off : NULL, dst + b * QK_K);
    }
}

void mq_dequantize_q5_k(const uint8_t *data, const float *scales, const int8_t *zeros, size_t n,
                        size_t row_len, uint32_t block, float *dst)
{
    (void)scales, (void)zeros, (void)row_len, (void)block;
    kquant_dequantize(&KQ_Q5K, data, n / QK_K, dst);
}

void mq_quantize_q4_k_ref(const float *src, size_t n, size_t row_len, uint32_t block,
                          uint8_t *data, float *scales, int8_t *zeros)
{
    (void)row_len, (void)block, (void)scales, (void)zeros;
    kquant_quantize_ref(&KQ_Q4K, src, n / QK_K, data);
}

void mq_quantize_q4_k_fast(const float *src, size_t n, size_t row_len, uint32_t block,
                           uint8_t *data, float *scales, int8_t *zeros)
{
    (void)row_len, (void)block, (void)scales, (void)zeros;
    kquant_quantize_fast(&KQ_Q4K, src, n / QK_K, data);
}

void mq_dequantize_q4_k(const uint8_t *data, const float *scales, const int8_t *zeros, size_t n,
                        size_t row_len, uint32_t block, float *dst)
{
    (void)scales, (void)zeros, (void)row_len, (void)block;
    kquant_dequantize(&KQ_Q4K, data, n / QK_K, dst);
}
