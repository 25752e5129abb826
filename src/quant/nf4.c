/*
** nf4.c - bitsandbytes 4-bit codecs NF4 and FP4 (flat blocks, default 64) and the NF4/FP4
** double quantization of absmax (8-bit blockwise against the dynamic map, block 256).
**
** Layout (../shared/docs/bitsandbytes.md sections 2 and 4.1):
**   data    ceil(n/2) bytes; element 2k in the HIGH nibble, 2k+1 in the low nibble; an odd
**           count is padded with the code of 0.0 (NF4 7, FP4 0).
**   scales  float32 absmax per block (the last block may be partial: only its valid items count).
** Encoding: inv = 1.0f/absmax, s = x*inv (float32); NF4 code = number of the 15 float32
** midpoints strictly below s (ties take the lower code); FP4 code = dQuantizeFP4's threshold
** tree. An all-zero block has absmax 0, inv = Inf and s = NaN, so every code is 0: the CUDA
** kernel's result (the CPU backend would write 7; both dequantize to 0).
*/
#include "modelq/quant.h"

#include <stdlib.h>

#include "qcommon.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MQ_X86 1
#endif

/* NF4 code book (get_4bit_type("nf4")), exact float32 bit patterns. */
static const uint32_t nf4_bits[16] = {
    0xbf800000, 0xbf3239b1, 0xbf066b30, 0xbeca32a0, 0xbe91a24d, 0xbe3d353f, 0xbdba7871, 0x00000000,
    0x3da2faff, 0x3e24cae3, 0x3e7c04dd, 0x3ead033a, 0x3ee1a4b8, 0x3f1007ab, 0x3f3913b3, 0x3f800000,
};
/* The 15 decision thresholds of dQuantizeNF4 (each the float32 midpoint of adjacent codes). */
static const uint32_t nf4_mid_bits[15] = {
    0xbf591cd8, 0xbf1c5270, 0xbeeb8480, 0xbeadea76, 0xbe703cec, 0xbe0d38bc, 0xbd3a7871, 0x3d22faff,
    0x3df64862, 0x3e5067e0, 0x3e9582d4, 0x3ec753f9, 0x3f006d04, 0x3f248daf, 0x3f5c89da,
};
/* FP4 (E2M1) code book / 12, codes 0..7 positive, 8..15 the same magnitudes negated. */
static const float fp4_values[16] = {
    0.0f,  0.0052083334885537624f,  0.6666666865348816f,  1.0f,  0.3333333432674408f,  0.5f,
    0.1666666716337204f,  0.25f,  -0.0f, -0.0052083334885537624f, -0.6666666865348816f, -1.0f,
    -0.3333333432674408f, -0.5f, -0.1666666716337204f, -0.25f,
};

/* Dynamic map create_dynamic_map(signed=True, 7, 8): positive half code[128..255] as bits. */
static const uint32_t dyn_pos_bits[128] = {
    0x3513a3b7, 0x365a1a94, 0x370205ff, 0x37b24206, 0x38378034, 0x388aefb3, 0x38ba1f4b, 0x3923d70b,
    0x398ce705, 0x39c7e283, 0x3a016f01, 0x3a1eecc1, 0x3a3c6a80, 0x3a59e83e, 0x3a7765ff, 0x3aa7ef9d,
    0x3af1a9fc, 0x3b1db22d, 0x3b428f5c, 0x3b676c8a, 0x3b8624dd, 0x3b989374, 0x3bab020d, 0x3bbd70a4,
    0x3bcfdf3b, 0x3be24dd3, 0x3bf4bc6a, 0x3c039581, 0x3c0ccccd, 0x3c160418, 0x3c1f3b64, 0x3c3ae148,
    0x3c68f5c3, 0x3c8b851f, 0x3ca28f5d, 0x3cb9999a, 0x3cd0a3d7, 0x3ce7ae15, 0x3cfeb852, 0x3d0ae148,
    0x3d166667, 0x3d21eb85, 0x3d2d70a3, 0x3d38f5c3, 0x3d447ae1, 0x3d500000, 0x3d5b851f, 0x3d670a3d,
    0x3d728f5d, 0x3d7e147b, 0x3d84cccd, 0x3d8a8f5d, 0x3d9051eb, 0x3d96147b, 0x3d9bd70a, 0x3da1999a,
    0x3da75c2a, 0x3dad1eb8, 0x3db2e148, 0x3db8a3d7, 0x3dbe6667, 0x3dc428f7, 0x3dc9eb85, 0x3ddb3334,
    0x3df80000, 0x3e0a6666, 0x3e18cccd, 0x3e273333, 0x3e35999a, 0x3e440000, 0x3e526666, 0x3e60cccd,
    0x3e6f3333, 0x3e7d9999, 0x3e860000, 0x3e8d3334, 0x3e946666, 0x3e9b999a, 0x3ea2cccc, 0x3eaa0000,
    0x3eb13333, 0x3eb86666, 0x3ebf999a, 0x3ec6cccc, 0x3ece0000, 0x3ed53333, 0x3edc6666, 0x3ee3999a,
    0x3eeacccc, 0x3ef20000, 0x3ef93332, 0x3f003333, 0x3f03cccc, 0x3f076666, 0x3f0b0000, 0x3f0e999a,
    0x3f123334, 0x3f15cccd, 0x3f196666, 0x3f1d0000, 0x3f20999a, 0x3f243334, 0x3f27cccd, 0x3f2b6666,
    0x3f2f0000, 0x3f32999a, 0x3f363334, 0x3f39cccd, 0x3f3d6666, 0x3f410000, 0x3f44999a, 0x3f483333,
    0x3f4bcccd, 0x3f4f6666, 0x3f530000, 0x3f56999a, 0x3f5a3333, 0x3f5dcccd, 0x3f616666, 0x3f650000,
    0x3f68999a, 0x3f6c3333, 0x3f6fcccd, 0x3f736666, 0x3f770000, 0x3f7a999a, 0x3f7e3333, 0x3f800000,
};

float mq_nf4_value(unsigned code) { return mq_f32_from_bits(nf4_bits[code & 15]); }
float mq_nf4_threshold(unsigned i) { return mq_f32_from_bits(nf4_mid_bits[i < 15 ? i : 14]); }
float mq_fp4_value(unsigned code) { return fp4_values[code & 15]; }

float mq_bnb_dynamic_value(unsigned code)
{
    code &= 255;
    if (code >= 128) return mq_f32_from_bits(dyn_pos_bits[code - 128]);
    if (code == 127) return 0.0f;
    return mq_f32_from_bits(dyn_pos_bits[254 - code - 128] | 0x80000000u);
}

void mq_bnb_dynamic_map(float out[256])
{
    for (unsigned i = 0; i < 256; i++) out[i] = mq_bnb_dynamic_value(i);
}

static inline uint8_t nf4_code(float s)
{
    uint8_t c = 0;
    for (int t = 0; t < 15; t++) c += mq_f32_from_bits(nf4_mid_bits[t]) < s;
    return c;
}

/* dQuantizeFP4 (kernels.cu): literals copied exactly, including 0.583333f. */
static inline uint8_t fp4_code(float x)
{
    uint8_t sign = x < 0 ? 8 : 0;
    float a = fabsf(x);
    uint8_t c;
    if (a > 0.29166667f) {
        if (a > 0.583333f) c = a > 0.8333333f ? 3 : 2;
        else c = a > 0.4166667f ? 5 : 4;
    } else if (a > 0.0859375f) {
        c = a > 0.20833333f ? 7 : 6;
    } else {
        c = a > 0.00260417f ? 1 : 0;
    }
    return c + sign;
}

typedef uint8_t (*code_fn)(float);

static void bnb4_quantize(const float *src, size_t n, uint32_t block, uint8_t *data, float *absmax,
                          code_fn code, uint8_t pad)
{
    for (size_t lo = 0, b = 0; lo < n; lo += block, b++) {
        size_t hi = n - lo < block ? n : lo + block;
        float am = 0.0f;
        for (size_t i = lo; i < hi; i++) am = fmaxf(am, fabsf(src[i]));
        absmax[b] = am;
        const float inv = 1.0f / am;
        /* block is even, so byte i/2 never straddles two blocks */
        for (size_t i = lo; i < hi; i += 2) {
            uint8_t c0 = code(src[i] * inv);
            uint8_t c1 = i + 1 < hi ? code(src[i + 1] * inv) : pad;
            data[i / 2] = (uint8_t)((c0 << 4) | c1);
        }
    }
}

void mq_quantize_nf4_ref(const float *src, size_t n, size_t row_len, uint32_t block, uint8_t *data,
                         float *scales, int8_t *zeros)
{
    (void)row_len, (void)zeros;
    bnb4_quantize(src, n, block, data, scales, nf4_code, 7);
}

void mq_quantize_fp4_ref(const float *src, size_t n, size_t row_len, uint32_t block, uint8_t *data,
                         float *scales, int8_t *zeros)
{
    (void)row_len, (void)zeros;
    bnb4_quantize(src, n, block, data, scales, fp4_code, 0);
}


#ifdef MQ_X86
/* dQuantizeFP4 on 8 lanes: the same seven strict compares, selected as in the scalar tree;
 * NaN fails every compare (code 0) and -0.0 is not < 0 (sign 0), as in fp4_code. */
__attribute__((target("avx2,f16c"))) static inline __m256i fp4_code8(__m256 s)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 a = _mm256_and_ps(s, absmask);
#define GT(t) _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(t), _CMP_GT_OQ))
#define I(v) _mm256_set1_epi32(v)
#define SEL(m, x, y) _mm256_blendv_epi8(y, x, m) /* m ? x : y */
    __m256i hi = SEL(GT(0.583333f), SEL(GT(0.8333333f), I(3), I(2)), SEL(GT(0.4166667f), I(5), I(4)));
    __m256i lo = SEL(GT(0.0859375f), SEL(GT(0.20833333f), I(7), I(6)), SEL(GT(0.00260417f), I(1), I(0)));
    __m256i c = _mm256_blendv_epi8(lo, hi, GT(0.29166667f));
#undef GT
#undef SEL
#undef I
    __m256i neg = _mm256_castps_si256(_mm256_cmp_ps(s, _mm256_setzero_ps(), _CMP_LT_OQ));
    return _mm256_add_epi32(c, _mm256_and_si256(neg, _mm256_set1_epi32(8)));
}

/* Full blocks whose size is a multiple of 16: absmax with vmaxps, NF4 codes as 15 compares
 * summed per lane (the count of thresholds below s, exactly nf4_code) or the FP4 tree, nibbles
 * packed high-first. */
__attribute__((target("avx2,f16c"))) static void bnb4_avx2(const float *src, size_t nblocks,
                                                           uint32_t block, uint8_t *data, float *absmax,
                                                           int fp4)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 th[15];
    for (int t = 0; t < 15; t++) th[t] = _mm256_set1_ps(mq_f32_from_bits(nf4_mid_bits[t]));
    /* byte shuffle gathering the even (high nibble) and odd (low nibble) int32 lanes */
    for (size_t b = 0; b < nblocks; b++) {
        const float *x = src + (size_t)b * block;
        uint8_t *y = data + (size_t)b * block / 2;
        __m256 m = _mm256_setzero_ps();
        for (uint32_t i = 0; i < block; i += 8)
            m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + i), absmask));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        const float am = _mm_cvtss_f32(h);
        absmax[b] = am;
        const __m256 inv = _mm256_set1_ps(1.0f / am);
        for (uint32_t i = 0; i < block; i += 16) {
            __m256 s0 = _mm256_mul_ps(_mm256_loadu_ps(x + i), inv);
            __m256 s1 = _mm256_mul_ps(_mm256_loadu_ps(x + i + 8), inv);
            __m256i c0 = _mm256_setzero_si256(), c1 = _mm256_setzero_si256();
            if (fp4) {
                c0 = fp4_code8(s0);
                c1 = fp4_code8(s1);
            } else {
                for (int t = 0; t < 15; t++) {
                    /* compare mask is -1 where threshold < s: subtracting counts it */
                    c0 = _mm256_sub_epi32(c0, _mm256_castps_si256(_mm256_cmp_ps(th[t], s0, _CMP_LT_OQ)));
                    c1 = _mm256_sub_epi32(c1, _mm256_castps_si256(_mm256_cmp_ps(th[t], s1, _CMP_LT_OQ)));
                }
            }
            /* pair lanes: byte k = c[2k] << 4 | c[2k+1]; shift the even lanes up by 4 and
             * OR in the odd lane moved down one int32 position */
            __m256i e0 = _mm256_slli_epi64(c0, 4), e1 = _mm256_slli_epi64(c1, 4);
            __m256i o0 = _mm256_srli_epi64(c0, 32), o1 = _mm256_srli_epi64(c1, 32);
            __m256i p0 = _mm256_or_si256(e0, o0), p1 = _mm256_or_si256(e1, o1); /* value in even int32 lanes */
            /* collect the low byte of int32 lanes 0,2,4,6 of p0 then of p1 */
            const __m256i shuf = _mm256_setr_epi8(0, 8, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                                  0, 8, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
            __m256i g0 = _mm256_shuffle_epi8(p0, shuf), g1 = _mm256_shuffle_epi8(p1, shuf);
            uint32_t w0 = (uint32_t)_mm256_extract_epi16(g0, 0) | ((uint32_t)_mm256_extract_epi16(g0, 8) << 16);
            uint32_t w1 = (uint32_t)_mm256_extract_epi16(g1, 0) | ((uint32_t)_mm256_extract_epi16(g1, 8) << 16);
            memcpy(y + i / 2, &w0, 4);
            memcpy(y + i / 2 + 4, &w1, 4);
        }
    }
}
#endif

static void bnb4_fast(const float *src, size_t n, size_t row_len, uint32_t block, uint8_t *data, float *scales,
                      int8_t *zeros, int fp4)
{
    mq_quantize_fn ref = fp4 ? mq_quantize_fp4_ref : mq_quantize_nf4_ref;
#ifdef MQ_X86
    if (mq_cpu_avx2() && block % 16 == 0) {
        size_t full = n / block;
        bnb4_avx2(src, full, block, data, scales, fp4);
        size_t done = full * block;
        if (done < n) ref(src + done, n - done, row_len, block, data + done / 2, scales + full, zeros);
        return;
    }
#endif
    ref(src, n, row_len, block, data, scales, zeros);
}

void mq_quantize_nf4_fast(const float *src, size_t n, size_t row_len, uint32_t block, uint8_t *data,
                          float *scales, int8_t *zeros)
{
    bnb4_fast(src, n, row_len, block, data, scales, zeros, 0);
}

void mq_quantize_fp4_fast(const float *src, size_t n, size_t row_len, uint32_t block, uint8_t *data,
                          float *scales, int8_t *zeros)
{
    bnb4_fast(src, n, row_len, block, data, scales, zeros, 1);
}

static void bnb4_dequantize(const uint8_t *data, const float *absmax, size_t n, uint32_t block,
                            float *dst, int nf4)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t byte = data[i / 2];
        unsigned c = (i & 1) ? (byte & 15u) : (byte >> 4);
        float v = nf4 ? mq_f32_from_bits(nf4_bits[c]) : fp4_values[c];
        dst[i] = v * absmax[i / block];
    }
}

void mq_dequantize_nf4(const uint8_t *data, const float *scales, const int8_t *zeros, size_t n,
                       size_t row_len, uint32_t block, float *dst)
{
    (void)zeros, (void)row_len;
    bnb4_dequantize(data, scales, n, block, dst, 1);
}

void mq_dequantize_fp4(const uint8_t *data, const float *scales, const int8_t *zeros, size_t n,
                       size_t row_len, uint32_t block, float *dst)
{
    (void)zeros, (void)row_len;
    bnb4_dequantize(data, scales, n, block, dst, 0);
}

/* ---- double quantization (functional.py quantize_4bit compress_statistics) ---- */

/* Nearest dynamic-map index: the number of float32 midpoints strictly below v (ties lower). */
static uint8_t dyn_index(float v)
{
    /* binary search for the count of midpoints < v; midpoints are increasing */
    int lo = 0, hi = 255; /* answer in [0,255] */
    while (lo < hi) {
        int mid = (lo + hi) / 2; /* midpoint between code[mid] and code[mid+1] */
        float m = (mq_bnb_dynamic_value((unsigned)mid) + mq_bnb_dynamic_value((unsigned)mid + 1)) * 0.5f;
        if (m < v) lo = mid + 1;
        else hi = mid;
    }
    return (uint8_t)lo;
}

void mq_bnb_double_quant(const float *absmax, size_t nb, uint8_t *qabs, float *nested_absmax,
                         float *offset)
{
    double sum = 0;
    for (size_t i = 0; i < nb; i++) sum += absmax[i];
    const float off = nb ? (float)(sum / (double)nb) : 0.0f;
    *offset = off;
    for (size_t lo = 0, b = 0; lo < nb; lo += MQ_BNB_NESTED_BLOCK, b++) {
        size_t hi = nb - lo < MQ_BNB_NESTED_BLOCK ? nb : lo + MQ_BNB_NESTED_BLOCK;
        float am = 0.0f;
        for (size_t i = lo; i < hi; i++) am = fmaxf(am, fabsf(absmax[i] - off));
        nested_absmax[b] = am;
        const float inv = 1.0f / am;
        /* am == 0 gives NaN scaled values: index 0, as the CUDA kernel */
        for (size_t i = lo; i < hi; i++) {
            float v = (absmax[i] - off) * inv;
            qabs[i] = v == v ? dyn_index(v) : 0;
        }
    }
}

void mq_bnb_double_dequant(const uint8_t *qabs, const float *nested_absmax, float offset, size_t nb,
                           float *absmax)
{
    for (size_t i = 0; i < nb; i++)
        absmax[i] = mq_bnb_dynamic_value(qabs[i]) * nested_absmax[i / MQ_BNB_NESTED_BLOCK] + offset;
}
