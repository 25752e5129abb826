/*
** half.c - F16/BF16 <-> F32 conversions, bit-exact with ggml (see modelq/half.h), and the
** F32/F16/BF16 "codecs" (plain element conversion, 2 or 4 bytes per element, little-endian).
*/
#include "modelq/half.h"

#include "qcommon.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MQ_X86 1
#endif

uint16_t mq_f32_to_f16(float f)
{
    uint32_t u = mq_f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u; /* NaN: ggml drops the payload */
    if (a >= 0x477ff000u) return sign | 0x7c00u; /* >= 65520 rounds to infinity (Inf too) */
    if (a >= 0x38800000u) {
        /* Normal half: rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits
         * to nearest even; a carry out of the mantissa correctly bumps the exponent. */
        uint32_t m = a - 0x38000000u;
        return sign | (uint16_t)((m + 0x0fffu + ((m >> 13) & 1u)) >> 13);
    }
    /* Subnormal half (unit 2^-24) or zero: value = mant * 2^(e-150), q = value / 2^-24. */
    uint32_t e = a >> 23;
    if (e < 102) return sign; /* < 2^-25: rounds to (signed) zero */
    uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    uint32_t s = 126 - e; /* 14..24 */
    uint32_t q = mant >> s, rem = mant & ((1u << s) - 1), half = 1u << (s - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return sign | (uint16_t)q;
}

float mq_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    /* Inf, or NaN made quiet (ggml's float-arithmetic conversion and vcvtph2ps both quiet it) */
    if (e == 0x1f) return mq_f32_from_bits(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0u));
    if (e != 0) return mq_f32_from_bits(sign | ((e + 112) << 23) | (m << 13));
    if (m == 0) return mq_f32_from_bits(sign);
    /* subnormal: m * 2^-24, exact in f32 */
    float v = (float)m * 0x1p-24f;
    return sign ? -v : v;
}

uint16_t mq_f32_to_bf16(float f)
{
    uint32_t u = mq_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

float mq_bf16_to_f32(uint16_t h) { return mq_f32_from_bits((uint32_t)h << 16); }

void mq_f32_to_f16_row_ref(const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = mq_f32_to_f16(src[i]);
}

void mq_f16_to_f32_row_ref(const uint16_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = mq_f16_to_f32(src[i]);
}

#ifdef MQ_X86
/* vcvtps2ph with imm 0 is IEEE RNE with subnormals, identical to mq_f32_to_f16 except for NaN,
 * which keeps payload bits; NaN lanes are patched to sign|0x7E00 as ggml does. */
__attribute__((target("avx2,f16c"))) static void f32_to_f16_row_avx2(const float *src, uint16_t *dst,
                                                                     size_t n)
{
    size_t i = 0;
    const __m256i absmask = _mm256_set1_epi32(0x7fffffff);
    const __m256i inf = _mm256_set1_epi32(0x7f800000);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(src + i);
        __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256i bits = _mm256_castps_si256(v);
        __m256i isnan = _mm256_cmpgt_epi32(_mm256_and_si256(bits, absmask), inf);
        if (!_mm256_testz_si256(isnan, isnan)) {
            for (int k = 0; k < 8; k++) dst[i + k] = mq_f32_to_f16(src[i + k]);
            continue;
        }
        _mm_storeu_si128((__m128i *)(dst + i), h);
    }
    for (; i < n; i++) dst[i] = mq_f32_to_f16(src[i]);
}

/* vcvtph2ps is exact for every pattern; NaN payloads are preserved as in mq_f16_to_f32. */
__attribute__((target("avx2,f16c"))) static void f16_to_f32_row_avx2(const uint16_t *src, float *dst,
                                                                     size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = mq_f16_to_f32(src[i]);
}
#endif

void mq_f32_to_f16_row(const float *src, uint16_t *dst, size_t n)
{
#ifdef MQ_X86
    if (mq_cpu_avx2()) {
        f32_to_f16_row_avx2(src, dst, n);
        return;
    }
#endif
    mq_f32_to_f16_row_ref(src, dst, n);
}

void mq_f16_to_f32_row(const uint16_t *src, float *dst, size_t n)
{
#ifdef MQ_X86
    if (mq_cpu_avx2()) {
        f16_to_f32_row_avx2(src, dst, n);
        return;
    }
#endif
    mq_f16_to_f32_row_ref(src, dst, n);
}

void mq_f32_to_bf16_row(const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = mq_f32_to_bf16(src[i]);
}

void mq_bf16_to_f32_row(const uint16_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = mq_bf16_to_f32(src[i]);
}

/* ---- F32 / F16 / BF16 codecs: data = n little-endian elements; no side data. ---- */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define MQ_HOST_LE 1 /* the file's byte order is the host's: copies replace byte assembly */
#endif

/* n little-endian u16 at data into host order, in blocks of at most 256 (for the row converters). */
static void load_u16le(const uint8_t *data, uint16_t *tmp, size_t n)
{
#ifdef MQ_HOST_LE
    memcpy(tmp, data, n * 2);
#else
    for (size_t j = 0; j < n; j++) tmp[j] = mq_get_u16(data + 2 * j);
#endif
}

void mq_quantize_f32_ref(const float *src, size_t n, size_t row_len, uint32_t block, uint8_t *data,
                         float *scales, int8_t *zeros)
{
    (void)row_len, (void)block, (void)scales, (void)zeros;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = mq_f32_bits(src[i]);
        for (int k = 0; k < 4; k++) data[4 * i + k] = (uint8_t)(u >> (8 * k));
    }
}
void mq_quantize_f32_fast(const float *src, size_t n, size_t row_len, uint32_t block, uint8_t *data,
                          float *scales, int8_t *zeros)
{
#ifdef MQ_HOST_LE
    (void)row_len, (void)block, (void)scales, (void)zeros;
    memcpy(data, src, n * 4);
#else
    mq_quantize_f32_ref(src, n, row_len, block, data, scales, zeros);
#endif
}
void mq_dequantize_f32(const uint8_t *data, const float *scales, const int8_t *zeros, size_t n,
                       size_t row_len, uint32_t block, float *dst)
{
    (void)scales, (void)zeros, (void)row_len, (void)block;
#ifdef MQ_HOST_LE
    memcpy(dst, data, n * 4);
    return;
#endif
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = data + 4 * i;
        dst[i] = mq_f32_from_bits((uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
                                  ((uint32_t)p[3] << 24));
    }
}

void mq_quantize_f16_ref(const float *src, size_t n, size_t row_len, uint32_t block, uint8_t *data,
                         float *scales, int8_t *zeros)
{
    (void)row_len, (void)block, (void)scales, (void)zeros;
    for (size_t i = 0; i < n; i++) mq_put_f16(data + 2 * i, src[i]);
}
void mq_quantize_f16_fast(const float *src, size_t n, size_t row_len, uint32_t block, uint8_t *data,
                          float *scales, int8_t *zeros)
{
    (void)row_len, (void)block, (void)scales, (void)zeros;
    uint16_t tmp[256];
    for (size_t i = 0; i < n; i += 256) {
        size_t k = n - i < 256 ? n - i : 256;
        mq_f32_to_f16_row(src + i, tmp, k);
        for (size_t j = 0; j < k; j++) {
            data[2 * (i + j)] = (uint8_t)tmp[j];
            data[2 * (i + j) + 1] = (uint8_t)(tmp[j] >> 8);
        }
    }
}
void mq_dequantize_f16(const uint8_t *data, const float *scales, const int8_t *zeros, size_t n,
                       size_t row_len, uint32_t block, float *dst)
{
    (void)scales, (void)zeros, (void)row_len, (void)block;
    uint16_t tmp[256];
    for (size_t i = 0; i < n; i += 256) {
        size_t k = n - i < 256 ? n - i : 256;
        load_u16le(data + 2 * i, tmp, k);
        mq_f16_to_f32_row(tmp, dst + i, k);
    }
}

void mq_quantize_bf16_ref(const float *src, size_t n, size_t row_len, uint32_t block, uint8_t *data,
                          float *scales, int8_t *zeros)
{
    (void)row_len, (void)block, (void)scales, (void)zeros;
    for (size_t i = 0; i < n; i++) {
        uint16_t h = mq_f32_to_bf16(src[i]);
        data[2 * i] = (uint8_t)h;
        data[2 * i + 1] = (uint8_t)(h >> 8);
    }
}
void mq_quantize_bf16_fast(const float *src, size_t n, size_t row_len, uint32_t block, uint8_t *data,
                           float *scales, int8_t *zeros)
{
    mq_quantize_bf16_ref(src, n, row_len, block, data, scales, zeros);
}
void mq_dequantize_bf16(const uint8_t *data, const float *scales, const int8_t *zeros, size_t n,
                        size_t row_len, uint32_t block, float *dst)
{
    (void)scales, (void)zeros, (void)row_len, (void)block;
    uint16_t tmp[256];
    for (size_t i = 0; i < n; i += 256) {
        size_t k = n - i < 256 ? n - i : 256;
        load_u16le(data + 2 * i, tmp, k);
        mq_bf16_to_f32_row(tmp, dst + i, k);
    }
}
