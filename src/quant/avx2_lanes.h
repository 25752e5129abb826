/*
** avx2_lanes.h - AVX2 helpers of the kernels that fit eight blocks at once, block k in lane k
** (iq4_avx2.c, q2_k_avx2.c). x86 only; callers check mq_cpu_avx2() first.
*/
#ifndef MODELQ_AVX2_LANES_H
#define MODELQ_AVX2_LANES_H

#include <immintrin.h>
#include <stddef.h>

/* out[i] lane k = p[k * stride + i] for i, k = 0..7 (an 8x8 transpose, no gathers). */
__attribute__((target("avx2,f16c"))) static inline void mq_avx2_load_t8(const float *p, int stride, __m256 *out)
{
    __m256 r[8], t[8];
    for (int k = 0; k < 8; k++) r[k] = _mm256_loadu_ps(p + (size_t)k * (size_t)stride);
    for (int k = 0; k < 8; k += 2) {
        t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);     /* r0[0] r1[0] r0[1] r1[1] | r0[4] r1[4] .. */
        t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]); /* r0[2] r1[2] r0[3] r1[3] | .. */
    }
    for (int k = 0; k < 8; k += 4) {
        r[k] = _mm256_shuffle_ps(t[k], t[k + 2], 0x44);     /* column 0 (and 4) of rows k..k+3 */
        r[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], 0xEE); /* column 1 (and 5) */
        r[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0x44);
        r[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        out[c] = _mm256_permute2f128_ps(r[c], r[c + 4], 0x20);
        out[c + 4] = _mm256_permute2f128_ps(r[c], r[c + 4], 0x31);
    }
}

/* ggml's nearest_int lane-wise, bit for bit for every input (the 1.5*2^23 trick on the bits). */
__attribute__((target("avx2,f16c"))) static inline __m256i mq_avx2_nearest_int(__m256 f)
{
    __m256i i = _mm256_castps_si256(_mm256_add_ps(f, _mm256_set1_ps(12582912.f)));
    return _mm256_sub_epi32(_mm256_and_si256(i, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x00400000));
}

/*
** make_qkx2_quants' least-squares fit of one candidate, lane-wise in ggml's order (the lane kernels
** of kquants.c, q2_k_avx2.c and q2_k_pool.c). mq_avx2_qkx2_det: D = sum_w*sum_l2 - sum_l*sum_l
** (ggml evaluates the candidate where D > 0). mq_avx2_qkx2_solve: this_scale = (sum_w*sum_xl -
** sum_x*sum_l) / D, this_min = (sum_l2*sum_x - sum_l*sum_xl) / D, and where this_min > 0 it becomes 0
** with this_scale = sum_xl / sum_l2; branch-free (which lanes need that is unpredictable, and a
** division is cheaper than a mispredicted branch).
*/
__attribute__((target("avx2,f16c"))) static inline __m256 mq_avx2_qkx2_det(__m256 sum_w, __m256 sum_l, __m256 sum_l2)
{
    return _mm256_sub_ps(_mm256_mul_ps(sum_w, sum_l2), _mm256_mul_ps(sum_l, sum_l));
}

__attribute__((target("avx2,f16c"))) static inline void mq_avx2_qkx2_solve(__m256 sum_w, __m256 sum_x, __m256 sum_l,
                                                                          __m256 sum_l2, __m256 sum_xl, __m256 D,
                                                                          __m256 *scale, __m256 *min)
{
    const __m256 s = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_w, sum_xl), _mm256_mul_ps(sum_x, sum_l)), D);
    const __m256 m = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_l2, sum_x), _mm256_mul_ps(sum_l, sum_xl)), D);
    const __m256 mpos = _mm256_cmp_ps(m, _mm256_setzero_ps(), _CMP_GT_OQ);
    *min = _mm256_andnot_ps(mpos, m);
    *scale = _mm256_blendv_ps(s, _mm256_div_ps(sum_xl, sum_l2), mpos);
}

#endif /* MODELQ_AVX2_LANES_H */
