/*
** q8_0.c - ggml Q8_0: blocks of 32, 34 bytes each.
**
** Block layout: d (fp16 LE) @0 | qs int8[32] @2.
** Reference (ggml quantize_row_q8_0_ref, which ggml_quantize_chunk runs): amax = max|x| (start
** 0), d = amax/127, id = d ? 1/d : 0, d stored as fp16, q_j = roundf(x_j*id) (half away from
** zero), computed with the fp32 d, not the fp16-rounded one. Dequantization: x = q * fp16(d).
*/
#include "qcommon.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MQ_X86 1
#endif

enum { QK = 32, QBYTES = 34 };

void mq_quantize_q8_0_ref(const float *src, size_t n, size_t row_len, uint32_t block,
                          uint8_t *data, float *scales, int8_t *zeros)
{
    (void)row_len, (void)block, (void)scales, (void)zeros;
    for (size_t b = 0; b < n / QK; b++) {
        const float *x = src + b * QK;
        uint8_t *y = data + b * QBYTES;
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        mq_put_f16(y, d);
        for (int j = 0; j < QK; j++) y[2 + j] = mq_cvt_i8(roundf(x[j] * id));
    }
}

#ifdef MQ_X86
/* roundf on 8 lanes: truncate, then step away from zero when the dropped fraction is >= 0.5.
 * x - trunc(x) is exact in binary floating point, so this equals roundf for every input. */
__attribute__((target("avx2,f16c"))) static inline __m256 round_half_away(__m256 v)
{
    const __m256 signmask = _mm256_set1_ps(-0.0f);
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 frac = _mm256_andnot_ps(signmask, _mm256_sub_ps(v, t));
    __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    __m256 one = _mm256_or_ps(_mm256_and_ps(v, signmask), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(t, _mm256_and_ps(up, one));
}

__attribute__((target("avx2,f16c"))) static inline float hmax8(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

__attribute__((target("avx2,f16c"))) static void q8_0_avx2(const float *src, size_t nb, uint8_t *data)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (size_t b = 0; b < nb; b++) {
        const float *x = src + b * QK;
        uint8_t *y = data + b * QBYTES;
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        /* max is order-independent for non-NaN input (NaN is refused before quantizing) */
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, absmask), _mm256_and_ps(v1, absmask)),
                                 _mm256_max_ps(_mm256_and_ps(v2, absmask), _mm256_and_ps(v3, absmask)));
        const float amax = hmax8(m);
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        mq_put_f16(y, d);
        const __m256 vid = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvtps_epi32(round_half_away(_mm256_mul_ps(v0, vid)));
        __m256i i1 = _mm256_cvtps_epi32(round_half_away(_mm256_mul_ps(v1, vid)));
        __m256i i2 = _mm256_cvtps_epi32(round_half_away(_mm256_mul_ps(v2, vid)));
        __m256i i3 = _mm256_cvtps_epi32(round_half_away(_mm256_mul_ps(v3, vid)));
        /* keep the low byte of each int32 (cvtps gives INT32_MIN for Inf/NaN, as mq_cvt_i8) */
        const __m256i lo = _mm256_set1_epi32(0xff);
        i0 = _mm256_and_si256(i0, lo), i1 = _mm256_and_si256(i1, lo);
        i2 = _mm256_and_si256(i2, lo), i3 = _mm256_and_si256(i3, lo);
        __m256i p01 = _mm256_packus_epi32(i0, i1), p23 = _mm256_packus_epi32(i2, i3);
        __m256i p = _mm256_packus_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, perm);
        _mm256_storeu_si256((__m256i *)(y + 2), p);
    }
}
#endif

void mq_quantize_q8_0_fast(const float *src, size_t n, size_t row_len, uint32_t block,
                           uint8_t *data, float *scales, int8_t *zeros)
{
#ifdef MQ_X86
    if (mq_cpu_avx2()) {
        q8_0_avx2(src, n / QK, data);
        return;
    }
#endif
    mq_quantize_q8_0_ref(src, n, row_len, block, data, scales, zeros);
}

void mq_dequantize_q8_0(const uint8_t *data, const float *scales, const int8_t *zeros, size_t n,
                        size_t row_len, uint32_t block, float *dst)
{
    (void)scales, (void)zeros, (void)row_len, (void)block;
    for (size_t b = 0; b < n / QK; b++) {
        const uint8_t *y = data + b * QBYTES;
        const float d = mq_get_f16(y);
        for (int j = 0; j < QK; j++) dst[b * QK + j] = (float)(int8_t)y[2 + j] * d;
    }
}
