/*
** q4.c - ggml Q4_0 and Q4_1: blocks of 32 elements, 4-bit codes.
**
** Q4_0 block (18 bytes): d (fp16 LE) @0 | qs[16] @2.
** Q4_1 block (20 bytes): d (fp16 LE) @0 | m (fp16 LE, the block min) @2 | qs[16] @4.
** Byte qs[j] holds element j in the low nibble and element j+16 in the high nibble.
**
** Q4_0 (quantize_row_q4_0_ref): max = the first element of largest |x| (sign kept), d = max/-8,
** id = d ? 1/d : 0, q = MIN(15, (int8)(x*id + 8.5f)); value = (q-8)*d. An all-zero block gives
** d = -0.0 (bytes 00 80) and codes 8.
** Q4_1 (quantize_row_q4_1_ref): d = (max-min)/15, id = d ? 1/d : 0,
** q = MIN(15, (int8)((x-min)*id + 0.5f)); value = q*d + m.
** Both use the fp32 d for the codes and store fp16(d).
*/
#include "qcommon.h"

#include <float.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MQ_X86 1
#endif

enum { QK = 32, Q40_BYTES = 18, Q41_BYTES = 20 };

static inline int q4_clamp(float v)
{
    int q = (int8_t)mq_cvt_i8(v);
    return q < 15 ? q : 15;
}

void mq_quantize_q4_0_ref(const float *src, size_t n, size_t row_len, uint32_t block,
                          uint8_t *data, float *scales, int8_t *zeros)
{
    (void)row_len, (void)block, (void)scales, (void)zeros;
    for (size_t b = 0; b < n / QK; b++) {
        const float *x = src + b * QK;
        uint8_t *y = data + b * Q40_BYTES;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        mq_put_f16(y, d);
        for (int j = 0; j < QK / 2; j++) {
            int q0 = q4_clamp(x[j] * id + 8.5f);
            int q1 = q4_clamp(x[j + QK / 2] * id + 8.5f);
            y[2 + j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void mq_quantize_q4_1_ref(const float *src, size_t n, size_t row_len, uint32_t block,
                          uint8_t *data, float *scales, int8_t *zeros)
{
    (void)row_len, (void)block, (void)scales, (void)zeros;
    for (size_t b = 0; b < n / QK; b++) {
        const float *x = src + b * QK;
        uint8_t *y = data + b * Q41_BYTES;
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        mq_put_f16(y, d);
        mq_put_f16(y + 2, min);
        for (int j = 0; j < QK / 2; j++) {
            int q0 = q4_clamp((x[j] - min) * id + 0.5f);
            int q1 = q4_clamp((x[j + QK / 2] - min) * id + 0.5f);
            y[4 + j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

#ifdef MQ_X86
/* (int8)(v) then MIN(15, .) on 8 lanes, as q4_clamp: cvttps gives INT32_MIN out of range;
 * the low byte is sign-extended before the MIN, exactly like the scalar int8_t path. */
__attribute__((target("avx2,f16c"))) static inline __m256i q4_clamp8(__m256 v)
{
    __m256i i = _mm256_cvttps_epi32(v);
    i = _mm256_srai_epi32(_mm256_slli_epi32(i, 24), 24);
    return _mm256_min_epi32(i, _mm256_set1_epi32(15));
}

/* Pack 16 low codes (lanes of lo0,lo1) and 16 high codes (hi0,hi1) into 16 bytes lo|hi<<4. */
__attribute__((target("avx2,f16c"))) static inline __m128i q4_pack(__m256i lo0, __m256i lo1, __m256i hi0,
                                                                  __m256i hi1)
{
    __m256i a = _mm256_or_si256(lo0, _mm256_slli_epi32(hi0, 4));
    __m256i b = _mm256_or_si256(lo1, _mm256_slli_epi32(hi1, 4));
    /* codes are 0..15 except where the int8 wrap made them negative: mask to a byte first */
    const __m256i ff = _mm256_set1_epi32(0xff);
    a = _mm256_and_si256(a, ff);
    b = _mm256_and_si256(b, ff);
    __m256i p = _mm256_packus_epi32(a, b);        /* 16-bit: a0..3 b0..3 | a4..7 b4..7 */
    p = _mm256_permute4x64_epi64(p, 0xd8);        /* a0..7 b0..7 */
    __m128i w = _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
    return w;
}

__attribute__((target("avx2,f16c"))) static void q4_0_avx2(const float *src, size_t nb, uint8_t *data)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (size_t b = 0; b < nb; b++) {
        const float *x = src + b * QK;
        uint8_t *y = data + b * Q40_BYTES;
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 a0 = _mm256_and_ps(v0, absmask), a1 = _mm256_and_ps(v1, absmask);
        __m256 a2 = _mm256_and_ps(v2, absmask), a3 = _mm256_and_ps(v3, absmask);
        __m256 m = _mm256_max_ps(_mm256_max_ps(a0, a1), _mm256_max_ps(a2, a3));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        const float amax = _mm_cvtss_f32(h);
        /* The scalar scan keeps the first element reaching amax (strict >), and keeps +0.0
         * when amax is 0; find that element with one compare per lane group. */
        float max = 0.0f;
        if (amax > 0.0f) {
            __m256 va = _mm256_set1_ps(amax);
            uint32_t mask = (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(a0, va, _CMP_EQ_OQ)) |
                            ((uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(a1, va, _CMP_EQ_OQ)) << 8) |
                            ((uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(a2, va, _CMP_EQ_OQ)) << 16) |
                            ((uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(a3, va, _CMP_EQ_OQ)) << 24);
            max = x[__builtin_ctz(mask)];
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        mq_put_f16(y, d);
        const __m256 vid = _mm256_set1_ps(id), k = _mm256_set1_ps(8.5f);
        __m256i q0 = q4_clamp8(_mm256_add_ps(_mm256_mul_ps(v0, vid), k));
        __m256i q1 = q4_clamp8(_mm256_add_ps(_mm256_mul_ps(v1, vid), k));
        __m256i q2 = q4_clamp8(_mm256_add_ps(_mm256_mul_ps(v2, vid), k));
        __m256i q3 = q4_clamp8(_mm256_add_ps(_mm256_mul_ps(v3, vid), k));
        _mm_storeu_si128((__m128i *)(y + 2), q4_pack(q0, q1, q2, q3));
    }
}

__attribute__((target("avx2,f16c"))) static void q4_1_avx2(const float *src, size_t nb, uint8_t *data)
{
    for (size_t b = 0; b < nb; b++) {
        const float *x = src + b * QK;
        uint8_t *y = data + b * Q41_BYTES;
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 mn = _mm256_min_ps(_mm256_min_ps(v0, v1), _mm256_min_ps(v2, v3));
        __m256 mx = _mm256_max_ps(_mm256_max_ps(v0, v1), _mm256_max_ps(v2, v3));
        __m128 l = _mm_min_ps(_mm256_castps256_ps128(mn), _mm256_extractf128_ps(mn, 1));
        l = _mm_min_ps(l, _mm_movehl_ps(l, l));
        l = _mm_min_ss(l, _mm_movehdup_ps(l));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float min = _mm_cvtss_f32(l), max = _mm_cvtss_f32(h);
        /* The scalar scan uses strict < and >: with mixed +0/-0 it keeps the first zero seen;
         * vector min/max may pick the other one. Redo those rare blocks in scalar. */
        if (min == 0.0f || max == 0.0f) {
            mq_quantize_q4_1_ref(x, QK, QK, QK, y, NULL, NULL);
            continue;
        }
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        mq_put_f16(y, d);
        mq_put_f16(y + 2, min);
        const __m256 vid = _mm256_set1_ps(id), vmin = _mm256_set1_ps(min), k = _mm256_set1_ps(0.5f);
        __m256i q0 = q4_clamp8(_mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(v0, vmin), vid), k));
        __m256i q1 = q4_clamp8(_mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(v1, vmin), vid), k));
        __m256i q2 = q4_clamp8(_mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(v2, vmin), vid), k));
        __m256i q3 = q4_clamp8(_mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(v3, vmin), vid), k));
        _mm_storeu_si128((__m128i *)(y + 4), q4_pack(q0, q1, q2, q3));
    }
}
#endif

void mq_quantize_q4_0_fast(const float *src, size_t n, size_t row_len, uint32_t block,
                           uint8_t *data, float *scales, int8_t *zeros)
{
#ifdef MQ_X86
    if (mq_cpu_avx2()) {
        q4_0_avx2(src, n / QK, data);
        return;
    }
#endif
    mq_quantize_q4_0_ref(src, n, row_len, block, data, scales, zeros);
}

void mq_quantize_q4_1_fast(const float *src, size_t n, size_t row_len, uint32_t block,
                           uint8_t *data, float *scales, int8_t *zeros)
{
#ifdef MQ_X86
    if (mq_cpu_avx2()) {
        q4_1_avx2(src, n / QK, data);
        return;
    }
#endif
    mq_quantize_q4_1_ref(src, n, row_len, block, data, scales, zeros);
}

void mq_dequantize_q4_0(const uint8_t *data, const float *scales, const int8_t *zeros, size_t n,
                        size_t row_len, uint32_t block, float *dst)
{
    (void)scales, (void)zeros, (void)row_len, (void)block;
    for (size_t b = 0; b < n / QK; b++) {
        const uint8_t *y = data + b * Q40_BYTES;
        const float d = mq_get_f16(y);
        for (int j = 0; j < QK / 2; j++) {
            dst[b * QK + j] = (float)((y[2 + j] & 0x0f) - 8) * d;
            dst[b * QK + j + QK / 2] = (float)((y[2 + j] >> 4) - 8) * d;
        }
    }
}

void mq_dequantize_q4_1(const uint8_t *data, const float *scales, const int8_t *zeros, size_t n,
                        size_t row_len, uint32_t block, float *dst)
{
    (void)scales, (void)zeros, (void)row_len, (void)block;
    for (size_t b = 0; b < n / QK; b++) {
        const uint8_t *y = data + b * Q41_BYTES;
        const float d = mq_get_f16(y), m = mq_get_f16(y + 2);
        for (int j = 0; j < QK / 2; j++) {
            dst[b * QK + j] = (float)(y[4 + j] & 0x0f) * d + m;
            dst[b * QK + j + QK / 2] = (float)(y[4 + j] >> 4) * d + m;
        }
    }
}
