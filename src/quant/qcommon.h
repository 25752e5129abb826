/*
** qcommon.h - private helpers shared by the quantizer translation units (src/quant/).
**
** Every rounding helper here reproduces the exact float operation ggml or bitsandbytes uses;
** the whole project is compiled with -ffp-contract=off so no a*b+c is fused into an FMA.
*/
#ifndef MODELQ_QCOMMON_H
#define MODELQ_QCOMMON_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "modelq/codec.h"
#include "modelq/half.h"

static inline uint32_t mq_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline float mq_f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ggml's nearest_int: round half to even via the 1.5*2^23 trick; exact for |f| <= 4194303. */
static inline int mq_nearest_int(float f)
{
    float v = f + 12582912.f;
    uint32_t i = mq_f32_bits(v);
    return (int)(i & 0x007fffff) - 0x00400000;
}

/*
** float -> int8 as ggml's `(int8_t)f` behaves on x86-64: the compiler converts with cvttss2si
** (truncation to int32; out-of-range, Inf and NaN give INT32_MIN) and keeps the low byte. In
** range this is the C conversion; out of range (only when a block's inverse scale is Inf, i.e.
** all |x| < ~3.7e-37) C leaves it undefined, so it is spelled out here: the result is byte 0.
*/
static inline uint8_t mq_cvt_i8(float f)
{
    int32_t i = (f >= -2147483648.0f && f < 2147483648.0f) ? (int32_t)f : INT32_MIN;
    return (uint8_t)(i & 0xff);
}

/* Little-endian fp16 field in a block. */
static inline void mq_put_f16(uint8_t *p, float v)
{
    uint16_t h = mq_f32_to_f16(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}
static inline float mq_get_f16(const uint8_t *p) { return mq_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }
static inline uint16_t mq_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/*
** ggml's block layouts (ggml-common.h), byte for byte: fp16 fields as two little-endian bytes
** (d = scale, m / dmin = minimum), so no struct has padding; the codec table takes block_bytes
** from sizeof and these asserts pin each size to ggml's.
*/
struct mq_block_q8_0 { uint8_t d[2]; int8_t qs[32]; };
struct mq_block_q4_0 { uint8_t d[2]; uint8_t qs[16]; };
struct mq_block_q4_1 { uint8_t d[2], m[2]; uint8_t qs[16]; };
struct mq_block_iq4_nl { uint8_t d[2]; uint8_t qs[16]; };
struct mq_block_q5_0 { uint8_t d[2]; uint8_t qh[4]; uint8_t qs[16]; };
struct mq_block_q5_1 { uint8_t d[2], m[2]; uint8_t qh[4]; uint8_t qs[16]; };
struct mq_block_q4_K { uint8_t d[2], dmin[2]; uint8_t scales[12]; uint8_t qs[128]; };
struct mq_block_q5_K { uint8_t d[2], dmin[2]; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; };
struct mq_block_q6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint8_t d[2]; };
struct mq_block_q2_K { uint8_t scales[16]; uint8_t qs[64]; uint8_t d[2], dmin[2]; };
struct mq_block_q3_K { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint8_t d[2]; };
struct mq_block_iq4_xs { uint8_t d[2]; uint8_t scales_h[2]; uint8_t scales_l[4]; uint8_t qs[128]; };
_Static_assert(sizeof(struct mq_block_q8_0) == 34, "ggml block_q8_0");
_Static_assert(sizeof(struct mq_block_q4_0) == 18, "ggml block_q4_0");
_Static_assert(sizeof(struct mq_block_q4_1) == 20, "ggml block_q4_1");
_Static_assert(sizeof(struct mq_block_iq4_nl) == 18, "ggml block_iq4_nl");
_Static_assert(sizeof(struct mq_block_q5_0) == 22, "ggml block_q5_0");
_Static_assert(sizeof(struct mq_block_q5_1) == 24, "ggml block_q5_1");
_Static_assert(sizeof(struct mq_block_q4_K) == 144, "ggml block_q4_K");
_Static_assert(sizeof(struct mq_block_q5_K) == 176, "ggml block_q5_K");
_Static_assert(sizeof(struct mq_block_q6_K) == 210, "ggml block_q6_K");
_Static_assert(sizeof(struct mq_block_q2_K) == 84, "ggml block_q2_K");
_Static_assert(sizeof(struct mq_block_q3_K) == 110, "ggml block_q3_K");
_Static_assert(sizeof(struct mq_block_iq4_xs) == 136, "ggml block_iq4_xs");

/* Runtime CPU features (cpu.c). */
bool mq_cpu_avx2(void); /* AVX2 + F16C + OS support, and not disabled by MODELQ_NO_SIMD */

/* Kernels, one pair per codec (see codec.h for the argument contract). */
#define MQ_DECLARE_KERNELS(name)                                                                  \
    void mq_quantize_##name##_ref(const float *src, size_t n, size_t row_len, uint32_t block,     \
                                  uint8_t *data, float *scales, int8_t *zeros);                   \
    void mq_quantize_##name##_fast(const float *src, size_t n, size_t row_len, uint32_t block,    \
                                   uint8_t *data, float *scales, int8_t *zeros);                  \
    void mq_dequantize_##name(const uint8_t *data, const float *scales, const int8_t *zeros,      \
                              size_t n, size_t row_len, uint32_t block, float *dst);

MQ_DECLARE_KERNELS(f32)
MQ_DECLARE_KERNELS(f16)
MQ_DECLARE_KERNELS(bf16)
MQ_DECLARE_KERNELS(q8_0)
MQ_DECLARE_KERNELS(q4_0)
MQ_DECLARE_KERNELS(q4_1)
MQ_DECLARE_KERNELS(q5_0)
MQ_DECLARE_KERNELS(q5_1)
MQ_DECLARE_KERNELS(iq4_nl)
MQ_DECLARE_KERNELS(q4_k)
MQ_DECLARE_KERNELS(q5_k)
MQ_DECLARE_KERNELS(q6_k)
MQ_DECLARE_KERNELS(nf4)
MQ_DECLARE_KERNELS(fp4)
MQ_DECLARE_KERNELS(int8_row)
MQ_DECLARE_KERNELS(int8_asym)
MQ_DECLARE_KERNELS(q2_k)
MQ_DECLARE_KERNELS(q3_k)
MQ_DECLARE_KERNELS(iq4_xs)

/*
** The low-bit kernels with room for importance weights: n elements (whole rows of row_len, or a
** run of whole super-blocks inside one row with row_len = n), qw = row_len importance weights
** per column (llama-quantize's imatrix entry of the tensor, the expert's slice for 3-D experts)
** or NULL for ggml's unweighted path. The codec table's kernels call them with qw = NULL.
** Q2_K and Q3_K: only qw = NULL (asserted; their importance-weighted fits are in weighted.c);
** IQ4_XS takes both.
*/
void mq_q2_k_quantize_rows(const float *src, size_t n, size_t row_len, const float *qw, uint8_t *data);
void mq_q3_k_quantize_rows(const float *src, size_t n, size_t row_len, const float *qw, uint8_t *data);
void mq_iq4_xs_quantize_rows(const float *src, size_t n, size_t row_len, const float *qw, uint8_t *data);
/* An IQ4_XS super-block's d and six-bit block scales from its eight fitted block scales; idl gets
 * each block's inverse coded scale (iq4_xs.c). */
void mq_iq4_xs_put_scales(uint8_t *y, const float scales[8], float idl[8]);

/* Q3_K: the sixteen make_q3_quants fits of one super-block x[256] with AVX2 (q3_k_avx2.c), the
** scales and codes (L in 0..7, 0 for a sub-block below GROUP_MAX_EPS) as q3_k.c's fit_sub_block
** gives them; false (nothing usable written) without AVX2 or for a super-block holding NaN/Inf. */
bool mq_q3_k_fit_avx2(const float *x, float scales[16], int8_t L[256]);
/* Q3_K: the rest of a block once its scales are packed: the codes L recomputed from x and the
** sub-block steps d[16] (nearest_int(x / d) clamped, + 4; a sub-block with d == 0 keeps its
** codes), then hmask[32] at y and qs[64] at y + 32. false (nothing written) without AVX2. */
bool mq_q3_k_codes_avx2(const float *x, const float d[16], int8_t L[256], uint8_t *y);

/* The fast sub-block fits of the importance-weighted K-quants (kquants_weighted.c), for
** weighted.c. Q4_K/Q5_K (nmax 15/31), n <= MQ_KQ_WBATCH consecutive super-blocks x[0..256n) of
** one row with their importances qw: per block sigma2 = 2 * sum(x^2) / 256, the weights
** qw * sqrtf(sigma2 + x^2), their sums sw per sub-block and make_qkx2_quants' scales, mins and
** codes. Q6_K: make_qx_quants(16, 32, ..., qw) per 16 values. false: not available here (no
** AVX2, or NaN/Inf in the Q6_K block), nothing usable written. */
enum { MQ_KQ_WBATCH = 8 };
struct mq_kquant_wfit {
    float scales[8], mins[8], sw[8];
    uint8_t L[256];
};
bool mq_kquant_fit_weighted_fast(int nmax, const float *x, const float *qw, int n, struct mq_kquant_wfit *out);

/* IQ4_NL's non-linear grid (ggml-common.h kvalues_iq4nl). */
extern const int8_t mq_iq4nl_values[16];


/*
** ggml's make_qkx2_quants (kquants.c): the scale and (returned negated in *the_min) minimum of n
** values for codes 0..nmax, weighted least squares over nstep + 1 candidate scales
** (rmin + rdelta * is + nmax) / (max - min); use_mad measures the error as |diff| (Q2_K) instead of
** diff^2. L gets the codes, Laux is scratch of n bytes.
*/
float mq_make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                          uint8_t *Laux, float rmin, float rdelta, int nstep, bool use_mad);

/* ggml's make_qx_quants (kquants.c): the scale of n values for signed codes -nmax..nmax-1 (stored
** + nmax in L), weighted least squares with weights qw, or x^2 when qw is NULL (Q6_K without an
** importance matrix). */
float mq_make_qx_quants(int n, int nmax, const float *x, int8_t *L, const float *qw);

/* IQ4_NL: one block of 32 with per-element weights (ggml's quantize_row_iq4_nl_impl, ntry 7): the
 * reference passes x^2, the importance-matrix path its weights (iq4_nl.c). */
void mq_iq4_nl_fit_block(const float *x, const float *weight, uint8_t *y);

/* ---- small helpers the kernels share ---- */

static inline int mq_imax(int a, int b) { return a > b ? a : b; }
static inline int mq_imin(int a, int b) { return a < b ? a : b; }

/* ggml's best_index_int8 on the IQ4_NL grid (mq_iq4nl_values, ascending): the nearest entry, ties
 * between two neighbours going to the upper index. */
static inline int mq_iq4_grid_index(float x)
{
    const int8_t *val = mq_iq4nl_values;
    if (x <= val[0]) return 0;
    if (x >= val[15]) return 15;
    int ml = 0, mu = 15;
    while (mu - ml > 1) {
        int mav = (ml + mu) / 2;
        if (x < val[mav]) mu = mav;
        else ml = mav;
    }
    return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
}

/* Q4_K/Q5_K: stores the six-bit scale ls and min lm of sub-block j into the 12 scale bytes sc, for
 * j = 0..7 in order: j < 4 sets sc[j] / sc[j + 4], j >= 4 sets the nibbles of sc[j + 4] and ORs its
 * top 2 bits into sc[j - 4] / sc[j] (what mq_k4_scale_min reads back). */
static inline void mq_k4_pack_scale_min(uint8_t *sc, int j, uint8_t ls, uint8_t lm)
{
    if (j < 4) {
        sc[j] = ls;
        sc[j + 4] = lm;
    } else {
        sc[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
        sc[j - 4] |= (uint8_t)((ls >> 4) << 6);
        sc[j - 0] |= (uint8_t)((lm >> 4) << 6);
    }
}

/* Q4_K/Q5_K: the six-bit scale and min of sub-block j from the 12 packed scale bytes (ggml's
 * get_scale_min_k4). */
static inline void mq_k4_scale_min(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

/* Q4_K/Q5_K: the codes L[0..256) in 0..nmax of super-block x from the block y already holding its fp16
 * d and dmin (y[0..3]) and packed scales (y[4..15]): l = nearest((x + dmin m) / (d s)) per sub-block,
 * as ggml recomputes them; a sub-block whose scale is 0 keeps the codes L already has. */
static inline void mq_k4_codes(const float *x, const uint8_t *y, int nmax, uint8_t *L)
{
    const uint8_t *sc = y + 4;
    const float dd = mq_get_f16(y), dmin = mq_get_f16(y + 2);
    for (int j = 0; j < 256 / 32; j++) {
        uint8_t s, m;
        mq_k4_scale_min(j, sc, &s, &m);
        const float d = dd * s;
        if (!d) continue;
        const float dm = dmin * m;
        for (int ii = 0; ii < 32; ii++) {
            int l = mq_nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)mq_imax(0, mq_imin(nmax, l));
        }
    }
}

/* Q2_K/Q3_K: 256 two-bit codes q[0..256) into qs[64]: in 128-element half h, byte 32h + l holds
 * q[l] | q[l+32] << 2 | q[l+64] << 4 | q[l+96] << 6 (q within 128h..). Codes must be 0..3. */
static inline void mq_k2_pack_codes(const uint8_t *q, uint8_t *qs)
{
    for (int h = 0; h < 256; h += 128)
        for (int l = 0; l < 32; l++)
            qs[h / 4 + l] = (uint8_t)(q[h + l] | (q[h + l + 32] << 2) | (q[h + l + 64] << 4) | (q[h + l + 96] << 6));
}

/* Q3_K: sub-block j's 6-bit scale code u (0..63 = signed scale + 32) into the 12 zeroed scale
 * bytes sc: low nibble in sc[j] (j < 8) or the high nibble of sc[j - 8], top two bits in
 * sc[8 + j % 4] at bit 2 * (j / 4). mq_q3_k_scale reads it back, signed. */
static inline void mq_q3_k_put_scale(uint8_t *sc, int j, uint8_t u)
{
    if (j < 8) sc[j] |= (uint8_t)(u & 0xF);
    else sc[j - 8] |= (uint8_t)((u & 0xF) << 4);
    sc[8 + j % 4] |= (uint8_t)(((u >> 4) & 3) << (2 * (j / 4)));
}
static inline int mq_q3_k_scale(const uint8_t *sc, int j)
{
    int lo = j < 8 ? sc[j] & 0xF : sc[j - 8] >> 4;
    return (lo | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

#endif /* MODELQ_QCOMMON_H */
