/*
** iq4_nl.c - ggml IQ4_NL: blocks of 32, 18 bytes: d (fp16 LE) @0 | qs[16] @2, element j in the
** low nibble of qs[j] and element j+16 in the high nibble; value = kvalues_iq4nl[nibble] * d.
**
** The quantizer is the one ggml_quantize_chunk and llama-quantize run (quantize_iq4_nl ->
** quantize_row_iq4_nl_impl with super_block = block = 32, no importance matrix, ntry = 7):
**   w_j = x_j^2; (amax, max) = first element of largest |x|; amax < 1e-15 -> d = 0, all codes 8
**   d0 = -max/values[0]; L = mq_iq4_grid_index(x/d0 scaled by id = 1/d0); d = sumqx/sumq2 (weighted
**   least squares), best = d*sumqx; then for itry = -7..7: id = (itry + values[0])/max, refit,
**   keep when sumqx^2 > best*sumq2. Finally L is recomputed from id = 1/d (fp32 d), d stored fp16.
** Sums run left to right in float32; the fast kernel keeps that order per block (one block per
** AVX2 lane) so the bytes are the same.
*/
#include "qcommon.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MQ_X86 1
#endif

enum { QK = 32, QBYTES = 18, NTRY = 7 };

const int8_t mq_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

#define GROUP_MAX_EPS 1e-15f


void mq_iq4_nl_fit_block(const float *x, const float *weight, uint8_t *y)
{
    const int8_t *values = mq_iq4nl_values;
    uint8_t L[QK];
    float amax = 0, max = 0;
    for (int j = 0; j < QK; j++) {
        float ax = fabsf(x[j]);
        if (ax > amax) {
            amax = ax;
            max = x[j];
        }
    }
    float scale = 0;
    if (amax >= GROUP_MAX_EPS) {
        float d = -max / values[0];
        float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < QK; j++) {
            int l = mq_iq4_grid_index(id * x[j]);
            float q = values[l];
            float w = weight[j];
            sumqx += w * q * x[j];
            sumq2 += w * q * q;
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
        float best = d * sumqx;
        for (int itry = -NTRY; itry <= NTRY; itry++) {
            id = (itry + values[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < QK; j++) {
                int l = mq_iq4_grid_index(id * x[j]);
                float q = values[l];
                float w = weight[j];
                sumqx += w * q * x[j];
                sumq2 += w * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scale = d;
    }
    mq_put_f16(y, scale);
    float id = scale ? 1 / scale : 0;
    for (int j = 0; j < QK; j++) L[j] = (uint8_t)mq_iq4_grid_index(id * x[j]);
    for (int j = 0; j < QK / 2; j++) y[2 + j] = (uint8_t)(L[j] | (L[j + QK / 2] << 4));
}

/* The reference: ggml's weights x^2 without an importance matrix. */
static void iq4_nl_block_ref(const float *x, uint8_t *y)
{
    float weight[QK];
    for (int j = 0; j < QK; j++) weight[j] = x[j] * x[j];
    mq_iq4_nl_fit_block(x, weight, y);
}

void mq_quantize_iq4_nl_ref(const float *src, size_t n, size_t row_len, uint32_t block,
                            uint8_t *data, float *scales, int8_t *zeros)
{
    (void)row_len, (void)block, (void)scales, (void)zeros;
    for (size_t b = 0; b < n / QK; b++) iq4_nl_block_ref(src + b * QK, data + b * QBYTES);
}

#ifdef MQ_X86
/*
** Eight blocks at once, block k in lane k. For element j the lanes hold x[k*32 + j]; every
** float operation is the scalar one applied lane-wise in the same order, so each lane's sums
** are bit-identical to the reference. best_index: mu = number of values <= x (x strictly
** inside (v0, v15)), then the same float compare x - v[mu-1] < v[mu] - x.
*/
__attribute__((target("avx2,f16c"))) static inline __m256i best_index8(__m256 x, const __m256 *vv,
                                                                      __m256 lo_tab, __m256 hi_tab)
{
    (void)lo_tab, (void)hi_tab;
    __m256i cnt = _mm256_setzero_si256();
    for (int i = 1; i < 15; i++)
        cnt = _mm256_sub_epi32(cnt, _mm256_castps_si256(_mm256_cmp_ps(vv[i], x, _CMP_LE_OQ)));
    /* cnt = #{i in 1..14 : v[i] <= x}; inside (v0, v15): mu = cnt + 1 */
    __m256i mu = _mm256_add_epi32(cnt, _mm256_set1_epi32(1));
    __m256i mu1 = cnt;
    /* gather v[mu-1], v[mu] from the 16-entry table held in two registers */
    __m256 vlo = vv[16], vhi = vv[17];
    __m256 a_lo = _mm256_permutevar8x32_ps(vlo, mu1), a_hi = _mm256_permutevar8x32_ps(vhi, mu1);
    __m256 b_lo = _mm256_permutevar8x32_ps(vlo, mu), b_hi = _mm256_permutevar8x32_ps(vhi, mu);
    __m256 sel_a = _mm256_castsi256_ps(_mm256_cmpgt_epi32(mu1, _mm256_set1_epi32(7)));
    __m256 sel_b = _mm256_castsi256_ps(_mm256_cmpgt_epi32(mu, _mm256_set1_epi32(7)));
    __m256 a = _mm256_blendv_ps(a_lo, a_hi, sel_a), b = _mm256_blendv_ps(b_lo, b_hi, sel_b);
    __m256 lower = _mm256_cmp_ps(_mm256_sub_ps(x, a), _mm256_sub_ps(b, x), _CMP_LT_OQ);
    __m256i idx = _mm256_add_epi32(mu1, _mm256_andnot_si256(_mm256_castps_si256(lower), _mm256_set1_epi32(1)));
    /* edges: x <= v0 -> 0, x >= v15 -> 15 (NaN falls through both tests, as in the scalar) */
    __m256 le0 = _mm256_cmp_ps(x, vv[0], _CMP_LE_OQ), ge15 = _mm256_cmp_ps(x, vv[15], _CMP_GE_OQ);
    idx = _mm256_andnot_si256(_mm256_castps_si256(le0), idx);
    /* NaN: the scalar binary search ends at mu = 15 and the final compare is false -> 15 */
    __m256 hi = _mm256_or_ps(ge15, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    idx = _mm256_blendv_epi8(idx, _mm256_set1_epi32(15), _mm256_castps_si256(hi));
    return idx;
}

/*
** For 8 blocks at once (one per lane): quantize x*id to the nearest IQ4_NL value q and sum
** w*q*x and w*q*q in element order j = 0..31, the order the reference kernel adds them.
*/
__attribute__((target("avx2,f16c"))) static inline void weighted_sums8(__m256 id, const __m256 *X, const __m256 *W,
                                                                      const __m256 *vv, __m256 vtab_lo, __m256 vtab_hi,
                                                                      __m256 *sumqx, __m256 *sumq2)
{
    __m256 sx = _mm256_setzero_ps(), s2 = _mm256_setzero_ps();
    for (int j = 0; j < QK; j++) {
        __m256i l = best_index8(_mm256_mul_ps(id, X[j]), vv, vtab_lo, vtab_hi);
        __m256 q = _mm256_blendv_ps(_mm256_permutevar8x32_ps(vtab_lo, l), _mm256_permutevar8x32_ps(vtab_hi, l),
                                    _mm256_castsi256_ps(_mm256_cmpgt_epi32(l, _mm256_set1_epi32(7))));
        __m256 wq = _mm256_mul_ps(W[j], q);
        sx = _mm256_add_ps(sx, _mm256_mul_ps(wq, X[j]));
        s2 = _mm256_add_ps(s2, _mm256_mul_ps(wq, q));
    }
    *sumqx = sx;
    *sumq2 = s2;
}

__attribute__((target("avx2,f16c"))) static void iq4_nl_8blocks_avx2(const float *src, uint8_t *data)
{
    __m256 vv[18];
    for (int i = 0; i < 16; i++) vv[i] = _mm256_set1_ps((float)mq_iq4nl_values[i]);
    vv[16] = _mm256_setr_ps(-127, -104, -83, -65, -49, -35, -22, -10);
    vv[17] = _mm256_setr_ps(1, 13, 25, 38, 53, 69, 89, 113);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i lane_off = _mm256_setr_epi32(0, 32, 64, 96, 128, 160, 192, 224);
    __m256 X[QK], W[QK];
    for (int j = 0; j < QK; j++) {
        X[j] = _mm256_i32gather_ps(src + j, lane_off, 4);
        W[j] = _mm256_mul_ps(X[j], X[j]);
    }
    __m256 amax = _mm256_setzero_ps(), max = _mm256_setzero_ps();
    for (int j = 0; j < QK; j++) {
        __m256 ax = _mm256_and_ps(X[j], absmask);
        __m256 gt = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
        amax = _mm256_blendv_ps(amax, ax, gt);
        max = _mm256_blendv_ps(max, X[j], gt);
    }
    const __m256 zero = _mm256_setzero_ps();
    const __m256 active = _mm256_cmp_ps(amax, _mm256_set1_ps(GROUP_MAX_EPS), _CMP_GE_OQ);
    /* d0 = -max/values[0]; id = 1/d0 */
    __m256 d = _mm256_div_ps(_mm256_xor_ps(max, _mm256_set1_ps(-0.0f)), vv[0]);
    __m256 id = _mm256_div_ps(_mm256_set1_ps(1.0f), d);
    __m256 vtab_lo = vv[16], vtab_hi = vv[17];
    __m256 sumqx, sumq2;
    weighted_sums8(id, X, W, vv, vtab_lo, vtab_hi, &sumqx, &sumq2);
    __m256 pos = _mm256_cmp_ps(sumq2, zero, _CMP_GT_OQ);
    d = _mm256_and_ps(pos, _mm256_div_ps(sumqx, sumq2));
    __m256 best = _mm256_mul_ps(d, sumqx);
    for (int itry = -NTRY; itry <= NTRY; itry++) {
        id = _mm256_div_ps(_mm256_set1_ps((float)(itry + mq_iq4nl_values[0])), max);
        weighted_sums8(id, X, W, vv, vtab_lo, vtab_hi, &sumqx, &sumq2);
        __m256 better = _mm256_and_ps(_mm256_cmp_ps(sumq2, zero, _CMP_GT_OQ),
                                      _mm256_cmp_ps(_mm256_mul_ps(sumqx, sumqx), _mm256_mul_ps(best, sumq2), _CMP_GT_OQ));
        __m256 nd = _mm256_div_ps(sumqx, sumq2);
        d = _mm256_blendv_ps(d, nd, better);
        best = _mm256_blendv_ps(best, _mm256_mul_ps(nd, sumqx), better);
    }
    d = _mm256_and_ps(d, active);
    float dl[8];
    _mm256_storeu_ps(dl, d);
    __m256 nz = _mm256_cmp_ps(d, zero, _CMP_NEQ_UQ);
    id = _mm256_and_ps(nz, _mm256_div_ps(_mm256_set1_ps(1.0f), d));
    uint32_t Ls[QK][8];
    for (int j = 0; j < QK; j++)
        _mm256_storeu_si256((__m256i *)Ls[j], best_index8(_mm256_mul_ps(id, X[j]), vv, vtab_lo, vtab_hi));
    for (int k = 0; k < 8; k++) {
        uint8_t *y = data + (size_t)k * QBYTES;
        mq_put_f16(y, dl[k]);
        for (int j = 0; j < QK / 2; j++) y[2 + j] = (uint8_t)(Ls[j][k] | (Ls[j + QK / 2][k] << 4));
    }
}
#endif

void mq_quantize_iq4_nl_fast(const float *src, size_t n, size_t row_len, uint32_t block,
                             uint8_t *data, float *scales, int8_t *zeros)
{
    size_t nb = n / QK, b = 0;
#ifdef MQ_X86
    if (mq_cpu_avx2())
        for (; b + 8 <= nb; b += 8) iq4_nl_8blocks_avx2(src + b * QK, data + b * QBYTES);
#endif
    mq_quantize_iq4_nl_ref(src + b * QK, (nb - b) * QK, row_len, block, data + b * QBYTES, scales, zeros);
}

void mq_dequantize_iq4_nl(const uint8_t *data, const float *scales, const int8_t *zeros, size_t n,
                          size_t row_len, uint32_t block, float *dst)
{
    (void)scales, (void)zeros, (void)row_len, (void)block;
    for (size_t b = 0; b < n / QK; b++) {
        const uint8_t *y = data + b * QBYTES;
        const float d = mq_get_f16(y);
        for (int j = 0; j < QK / 2; j++) {
            dst[b * QK + j] = d * mq_iq4nl_values[y[2 + j] & 0x0f];
            dst[b * QK + j + QK / 2] = d * mq_iq4nl_values[y[2 + j] >> 4];
        }
    }
}
