/*
** kquants_weighted.c - the sub-block fits of the importance-weighted Q4_K, Q5_K and Q6_K kernels
** (weighted.c: quantize_row_q4_K_impl / q5_K_impl / q6_K_impl) on the AVX2 search kernels of
** kquants.c, byte-identical to the scalar loops they replace; weighted.c keeps everything else
** (make_qp_quants, the packing) and calls these first, falling back to its own loop when they
** return false (no AVX2, or NaN/Inf in the block for Q6_K).
*/
#include "kquants_simd.h"

enum { QK_K = 256 };

#ifdef MQ_KQ_SIMD
#include <immintrin.h>

/*
** Q4_K/Q5_K: per block sigma2 = 2 * sum(x^2) / 256 (left to right from 0), weights
** w = qw * sqrtf(sigma2 + x^2) (one multiply, add, square root and multiply per value, in ggml's
** order), their sum per sub-block from 0 left to right, and make_qkx2_quants(32, nmax, x, w, L,
** &min, Laux, -0.9, 0.05, 36) for the eight sub-blocks of each of the n blocks at once: the
** scales, the mins (*the_min) and the codes L of the winning step (0 for a sub-block with
** max == min).
*/
__attribute__((target("avx2,f16c"))) static void kquant_fit_weighted_avx2(int nmax, const float *x, const float *qw,
                                                                         int n, struct mq_kquant_wfit *out)
{
    float weights[MQ_KQ_WBATCH][QK_K];
    const float *xs[MQ_KQ_WBATCH] = {NULL}, *ws[MQ_KQ_WBATCH] = {NULL};
    const __m256i lane_off = _mm256_setr_epi32(0, 32, 64, 96, 128, 160, 192, 224);
    for (int b = 0; b < n; b++) {
        const float *xb = x + QK_K * b, *qb = qw + QK_K * b;
        float s2 = 0;
        for (int i = 0; i < QK_K; i++) s2 += xb[i] * xb[i];
        const float sigma2 = 2 * s2 / QK_K;
        const __m256 vs2 = _mm256_set1_ps(sigma2);
        for (int i = 0; i < QK_K; i += 8) {
            const __m256 xv = _mm256_loadu_ps(xb + i);
            const __m256 r = _mm256_sqrt_ps(_mm256_add_ps(vs2, _mm256_mul_ps(xv, xv)));
            _mm256_storeu_ps(weights[b] + i, _mm256_mul_ps(_mm256_loadu_ps(qb + i), r));
        }
        __m256 sum = _mm256_setzero_ps();
        for (int i = 0; i < 32; i++) sum = _mm256_add_ps(sum, _mm256_i32gather_ps(weights[b] + i, lane_off, 4));
        _mm256_storeu_ps(out[b].sw, sum);
        xs[b] = xb;
        ws[b] = weights[b];
    }

    struct mq_qkx2_fit8 f[MQ_KQ_WBATCH];
    const struct mq_qkx2_params p = {nmax, -0.9f, 0.05f, 36, ws};
    mq_qkx2_fit_blocks(xs, n, &p, f);
    /* the winning step's codes, recomputed with ggml's rounding: clamp(nearest(iscale * (x - min))) */
    const __m256 magic = _mm256_set1_ps(12582912.f);
    for (int b = 0; b < n; b++) {
        memcpy(out[b].scales, f[b].scale, sizeof f[b].scale);
        memcpy(out[b].mins, f[b].the_min, sizeof f[b].the_min);
        for (int j = 0; j < 8; j++) {
            const __m256 is = _mm256_set1_ps(f[b].l_iscale[j]), mn = _mm256_set1_ps(f[b].l_min[j]);
            const bool flat = (f[b].flat >> j) & 1;
            for (int k = 0; k < 32; k += 8) {
                const __m256 xv = _mm256_loadu_ps(xs[b] + 32 * j + k);
                const __m256 v = _mm256_add_ps(_mm256_mul_ps(is, _mm256_sub_ps(xv, mn)), magic);
                __m256i l = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0x007fffff)),
                                             _mm256_set1_epi32(0x00400000));
                l = _mm256_max_epi32(_mm256_setzero_si256(), _mm256_min_epi32(_mm256_set1_epi32(nmax), l));
                int32_t t[8];
                _mm256_storeu_si256((__m256i *)t, l);
                for (int i = 0; i < 8; i++) out[b].L[32 * j + k + i] = flat ? 0 : (uint8_t)t[i];
            }
        }
    }
}
#endif

bool mq_kquant_fit_weighted_fast(int nmax, const float *x, const float *qw, int n, struct mq_kquant_wfit *out)
{
#ifdef MQ_KQ_SIMD
    if (mq_cpu_avx2() && n >= 1 && n <= MQ_KQ_WBATCH) {
        kquant_fit_weighted_avx2(nmax, x, qw, n, out);
        return true;
    }
#endif
    (void)nmax, (void)x, (void)qw, (void)n, (void)out;
    return false;
}
