/*
** legacy1_weighted.c - the make_qkx2_quants fits of the importance-weighted Q4_1 / Q5_1 rows
** (weighted.c's q1_row) on the AVX2 search lanes of kquants.c (mq_qkx2_fit_blocks), which fit the
** eight 32-value sub-blocks of a 256-value super-block in eight lanes: here eight consecutive
** 32-blocks of a row are such a "super-block". The lanes run the scalar search lane-wise in the
** scalar order, so each block's d, min and codes are the scalar loop's for any input.
**
** What differs from the weighted Q4_K use (kquants_weighted.c): sigma2 is the row's
** (sum(x^2) / n_per_row, computed by the caller), not 2 * sum(x^2) / 256 per super-block, and
** the codes are the search's own (no requantization from fp16 scales).
*/
#include "kquants_simd.h"
#include "legacy1_lanes.h"

#ifdef MQ_KQ_SIMD
#include <immintrin.h>

#include "avx2_lanes.h"

enum { QK = 32, SET = 8 * QK };

/*
** weights w = qw * sqrtf(sigma2 + x^2) lane-wise (the scalar's multiply, add, square root and
** multiply in its order), the lanes' fit, then each block's codes: the winning step's
** clamp(nearest(l_iscale * (x - l_min))) with ggml's nearest_int (0 for a max == min block).
*/
__attribute__((target("avx2,f16c"))) static void l1_fit_avx2(int nmax, const float *x, const float *qw, float sigma2,
                                                            int nb, struct mq_l1_fit *out)
{
    float weights[MQ_L1_BATCH / 8][SET];
    const float *xs[MQ_L1_BATCH / 8] = {NULL}, *ws[MQ_L1_BATCH / 8] = {NULL};
    const int nset = nb / 8;
    const __m256 vs2 = _mm256_set1_ps(sigma2);
    for (int s = 0; s < nset; s++) {
        const float *xb = x + SET * s, *qb = qw + SET * s;
        for (int i = 0; i < SET; i += 8) {
            const __m256 xv = _mm256_loadu_ps(xb + i);
            const __m256 r = _mm256_sqrt_ps(_mm256_add_ps(vs2, _mm256_mul_ps(xv, xv)));
            _mm256_storeu_ps(weights[s] + i, _mm256_mul_ps(_mm256_loadu_ps(qb + i), r));
        }
        xs[s] = xb;
        ws[s] = weights[s];
    }
    struct mq_qkx2_fit8 f[MQ_L1_BATCH / 8];
    const struct mq_qkx2_params p = {nmax, -0.9f, 0.05f, 36, ws};
    mq_qkx2_fit_blocks(xs, nset, &p, f);

    const __m256i vnmax = _mm256_set1_epi32(nmax), zero = _mm256_setzero_si256();
    for (int s = 0; s < nset; s++) {
        for (int j = 0; j < 8; j++) {
            struct mq_l1_fit *o = &out[8 * s + j];
            o->d = f[s].scale[j];
            o->the_min = f[s].the_min[j];
            if ((f[s].flat >> j) & 1) {
                memset(o->L, 0, sizeof o->L);
                continue;
            }
            const __m256 is = _mm256_set1_ps(f[s].l_iscale[j]), mn = _mm256_set1_ps(f[s].l_min[j]);
            __m256i l[4];
            for (int k = 0; k < 4; k++) {
                const __m256 xv = _mm256_loadu_ps(xs[s] + QK * j + 8 * k);
                l[k] = _mm256_max_epi32(zero, _mm256_min_epi32(vnmax, mq_avx2_nearest_int(_mm256_mul_ps(is, _mm256_sub_ps(xv, mn)))));
            }
            /* 32 int32 codes (0..31) to bytes in order: the packs interleave 128-bit halves,
             * the permute puts them back */
            const __m256i w01 = _mm256_packs_epi32(l[0], l[1]), w23 = _mm256_packs_epi32(l[2], l[3]);
            const __m256i b = _mm256_packus_epi16(w01, w23);
            _mm256_storeu_si256((__m256i *)o->L, _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
        }
    }
}
#endif

static uint64_t fast_blocks; /* mq_l1_fast_blocks */

uint64_t mq_l1_fast_blocks(void) { return __atomic_load_n(&fast_blocks, __ATOMIC_RELAXED); }

bool mq_l1_fit_weighted_fast(int nmax, const float *x, const float *qw, float sigma2, int nb, struct mq_l1_fit *out)
{
#ifdef MQ_KQ_SIMD
    if (mq_cpu_avx2() && (nb == 8 || nb == 16)) {
        l1_fit_avx2(nmax, x, qw, sigma2, nb, out);
        __atomic_fetch_add(&fast_blocks, (uint64_t)nb, __ATOMIC_RELAXED);
        return true;
    }
#endif
    (void)nmax, (void)x, (void)qw, (void)sigma2, (void)nb, (void)out;
    return false;
}
