/*
** int8.c - INT8_ROW (bitsandbytes LLM.int8 weights) and INT8_ASYM (modelq's asymmetric INT8).
**
** INT8_ROW (Int8Params._quantize / int8_vectorwise_quant, ../shared/docs/bitsandbytes.md 5.1):
**   data    int8 q[rows][row_len]
**   scales  float32 SCB[rows]
**   h = fp16(x) (the weight is cast to fp16 first), SCB = max|h| over the row,
**   q = rint(h * (127.0f/SCB)) half-to-even in float32; a zero row gives SCB 0 and q 0.
**   Dequantization as bnb: q * SCB * 7.874015718698502e-3f (float32, left to right).
**
** INT8_ASYM (issue 3; the seed's numpy code, in double precision), flat blocks (default 64):
**   data    int8 q[n]
**   scales  float32 scale[nb], zeros int8 zp[nb]
**   mn, mx over the block (as doubles); scale = (mx-mn)/255; zp = clamp(rint(-128 - mn/scale),
**   -128, 127); q = clamp(rint(x/scale) + zp, -128, 127), with the double scale; the stored scale
**   is (float)scale. Dequantization: (q - zp) * scale in float32.
**   Constant blocks (mx == mn, or a range so small that (float)scale is 0) store scale 0 and
**   reconstruct their value exactly from the codes: the float32 bit pattern of the value (mn)
**   is written little-endian into q[0..3] (zp 0, other codes 0). A block of 3 elements puts
**   the 4th byte in zp. A block of 1 or 2 elements (only a tensor's tail) cannot hold 4 bytes:
**   it stores scale = the value, zp = 0 and q = 1, which also reconstructs it exactly.
*/
#include "qcommon.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MQ_X86 1
#endif

void mq_quantize_int8_row_ref(const float *src, size_t n, size_t row_len, uint32_t block,
                              uint8_t *data, float *scales, int8_t *zeros)
{
    (void)block, (void)zeros;
    if (row_len == 0) row_len = n;
    for (size_t r = 0; r * row_len < n; r++) {
        const float *x = src + r * row_len;
        uint8_t *q = data + r * row_len;
        float scb = 0.0f;
        for (size_t j = 0; j < row_len; j++) scb = fmaxf(scb, fabsf(mq_f16_to_f32(mq_f32_to_f16(x[j]))));
        scales[r] = scb;
        if (scb == 0.0f) {
            memset(q, 0, row_len);
            continue;
        }
        const float s = 127.0f / scb;
        for (size_t j = 0; j < row_len; j++)
            q[j] = mq_cvt_i8(rintf(mq_f16_to_f32(mq_f32_to_f16(x[j])) * s));
    }
}

#ifdef MQ_X86
__attribute__((target("avx2,f16c"))) static void int8_row_avx2(const float *src, size_t rows,
                                                               size_t row_len, uint8_t *data,
                                                               float *scales)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (size_t r = 0; r < rows; r++) {
        const float *x = src + r * row_len;
        uint8_t *q = data + r * row_len;
        size_t j = 0;
        __m256 m = _mm256_setzero_ps();
        /* fp16 round trip with F16C: identical to mq_f32_to_f16 for non-NaN input (NaN is
         * refused before quantizing, and the scalar tail handles it the same way regardless) */
        for (; j + 8 <= row_len; j += 8) {
            __m256 h = _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + j), _MM_FROUND_TO_NEAREST_INT));
            m = _mm256_max_ps(m, _mm256_and_ps(h, absmask));
        }
        __m128 hm = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        hm = _mm_max_ps(hm, _mm_movehl_ps(hm, hm));
        hm = _mm_max_ss(hm, _mm_movehdup_ps(hm));
        float scb = _mm_cvtss_f32(hm);
        for (; j < row_len; j++) scb = fmaxf(scb, fabsf(mq_f16_to_f32(mq_f32_to_f16(x[j]))));
        scales[r] = scb;
        if (scb == 0.0f) {
            memset(q, 0, row_len);
            continue;
        }
        const float s = 127.0f / scb;
        const __m256 vs = _mm256_set1_ps(s);
        const __m256i lo = _mm256_set1_epi32(0xff);
        const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for (j = 0; j + 32 <= row_len; j += 32) {
            __m256i i4[4];
            for (int k = 0; k < 4; k++) {
                __m256 h = _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + j + 8 * k), _MM_FROUND_TO_NEAREST_INT));
                /* cvtps_epi32 rounds half to even (MXCSR default), as rintf */
                i4[k] = _mm256_and_si256(_mm256_cvtps_epi32(_mm256_mul_ps(h, vs)), lo);
            }
            __m256i p = _mm256_packus_epi16(_mm256_packus_epi32(i4[0], i4[1]), _mm256_packus_epi32(i4[2], i4[3]));
            _mm256_storeu_si256((__m256i *)(q + j), _mm256_permutevar8x32_epi32(p, perm));
        }
        for (; j < row_len; j++) q[j] = mq_cvt_i8(rintf(mq_f16_to_f32(mq_f32_to_f16(x[j])) * s));
    }
}
#endif

void mq_quantize_int8_row_fast(const float *src, size_t n, size_t row_len, uint32_t block,
                               uint8_t *data, float *scales, int8_t *zeros)
{
#ifdef MQ_X86
    if (mq_cpu_avx2()) {
        if (row_len == 0) row_len = n;
        int8_row_avx2(src, row_len ? n / row_len : 0, row_len, data, scales);
        return;
    }
#endif
    mq_quantize_int8_row_ref(src, n, row_len, block, data, scales, zeros);
}

void mq_dequantize_int8_row(const uint8_t *data, const float *scales, const int8_t *zeros, size_t n,
                            size_t row_len, uint32_t block, float *dst)
{
    (void)zeros, (void)block;
    if (row_len == 0) row_len = n;
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)(int8_t)data[i] * scales[i / row_len] * 7.874015718698502e-3f;
}

/* ---- INT8_ASYM ---- */

static inline int8_t clamp_i8(double v)
{
    return (int8_t)(v < -128.0 ? -128 : v > 127.0 ? 127 : (int)v);
}

void mq_quantize_int8_asym_ref(const float *src, size_t n, size_t row_len, uint32_t block,
                               uint8_t *data, float *scales, int8_t *zeros)
{
    (void)row_len;
    for (size_t lo = 0, b = 0; lo < n; lo += block, b++) {
        size_t len = n - lo < block ? n - lo : block;
        const float *x = src + lo;
        int8_t *q = (int8_t *)data + lo;
        double mn = x[0], mx = x[0];
        for (size_t i = 1; i < len; i++) {
            if (x[i] < mn) mn = x[i];
            if (x[i] > mx) mx = x[i];
        }
        const double scale = (mx - mn) / 255.0;
        if ((float)scale == 0.0f) {
            /* constant block: the value's bits travel in the codes (see the file comment) */
            float v = (float)mn;
            uint32_t u = mq_f32_bits(v);
            memset(q, 0, len);
            zeros[b] = 0;
            if (len >= 3) {
                scales[b] = 0.0f;
                for (size_t k = 0; k < 3; k++) q[k] = (int8_t)(uint8_t)(u >> (8 * k));
                if (len >= 4) q[3] = (int8_t)(uint8_t)(u >> 24);
                else zeros[b] = (int8_t)(uint8_t)(u >> 24);
            } else {
                scales[b] = v;
                for (size_t k = 0; k < len; k++) q[k] = 1;
            }
            continue;
        }
        const int8_t zp = clamp_i8(rint(-128.0 - mn / scale));
        scales[b] = (float)scale;
        zeros[b] = zp;
        for (size_t i = 0; i < len; i++) q[i] = clamp_i8(rint((double)x[i] / scale) + zp);
    }
}

void mq_quantize_int8_asym_fast(const float *src, size_t n, size_t row_len, uint32_t block,
                                uint8_t *data, float *scales, int8_t *zeros)
{
    mq_quantize_int8_asym_ref(src, n, row_len, block, data, scales, zeros);
}

void mq_dequantize_int8_asym(const uint8_t *data, const float *scales, const int8_t *zeros, size_t n,
                             size_t row_len, uint32_t block, float *dst)
{
    (void)row_len;
    for (size_t lo = 0, b = 0; lo < n; lo += block, b++) {
        size_t len = n - lo < block ? n - lo : block;
        const int8_t *q = (const int8_t *)data + lo;
        if (scales[b] == 0.0f && len >= 3) {
            uint32_t u = (uint32_t)(uint8_t)q[0] | ((uint32_t)(uint8_t)q[1] << 8) |
                         ((uint32_t)(uint8_t)q[2] << 16) |
                         ((uint32_t)(uint8_t)(len >= 4 ? q[3] : zeros[b]) << 24);
            float v = mq_f32_from_bits(u);
            for (size_t i = 0; i < len; i++) dst[lo + i] = v;
            continue;
        }
        for (size_t i = 0; i < len; i++) dst[lo + i] = (float)(q[i] - zeros[b]) * scales[b];
    }
}
