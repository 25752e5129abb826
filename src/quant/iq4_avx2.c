/*
** iq4_avx2.c - IQ4_NL and IQ4_XS with AVX2: ggml's quantize_row_iq4_nl_impl fit for eight blocks
** of 32 at once, block k in lane k (see iq4_lanes.h for the grid lookup).
**
** Every float operation is the scalar kernel's, lane-wise and in its order (w*q*x as (w*q)*x,
** sums left to right over j = 0..31, true divisions, no FMA), and every `if` is a per-lane
** blend, so each lane's scale equals the scalar one bit for bit. The 16 trial scales of a block
** (the first -max/values[0], then (itry + values[0])/max for itry = -7..7) are independent until
** the "keep the better one" step, so their sums are computed four trials at a time (four
** independent add chains per lane) and the keep step then runs over them in the scalar order.
**
** Lookup table (struct iq4_lut): entry r + LUT_OFF for r = floor(2y), r in [-LUT_OFF, LUT_OFF):
** the grid index and the grid value of y. Inside the trial loop |y| <= 134 * (1 + 2^-22) (|x| <=
** |max| and |id| <= 134/|max|), so for finite input no clamp is needed; a group of blocks with an
** Inf or NaN, and the final code pass (whose inverse scale is not bounded), clamp r into the
** table first, NaN to the top (ggml's binary search gives 15 for NaN).
*/
#include "iq4_lanes.h"

enum { QK = 32, NTRY = 7, NTRIAL = 2 * NTRY + 2, LUT_OFF = 272, TG = 4 };

#define GROUP_MAX_EPS 1e-15f

int mq_iq4_lut_index(float y)
{
    /* the scalar form of the lookup the lanes do: NaN -> top, clamp, floor(2y) */
    float r = y + y;
    if (!(r < (float)(LUT_OFF - 1))) r = (float)(LUT_OFF - 1);
    if (r < (float)-LUT_OFF) r = (float)-LUT_OFF;
    int k = (int)floorf(r);
    /* entry k: the count of midpoints <= k/2, which is ggml's index of k/2 */
    return mq_iq4_grid_index((float)k * 0.5f);
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

struct iq4_lut {
    float q[2 * LUT_OFF];   /* grid value of entry r */
    int32_t l[2 * LUT_OFF]; /* grid index of entry r */
};

static void iq4_lut_init(struct iq4_lut *t)
{
    for (int r = -LUT_OFF; r < LUT_OFF; r++) {
        int l = mq_iq4_grid_index((float)r * 0.5f);
        t->l[r + LUT_OFF] = l;
        t->q[r + LUT_OFF] = (float)mq_iq4nl_values[l];
    }
}

/* floor(y2) as a table offset; with clamp: y2 limited to the table first, NaN to the top */
__attribute__((target("avx2,f16c"))) static inline __m256i lut_slot(__m256 y2, bool clamp)
{
    if (clamp) {
        y2 = _mm256_min_ps(y2, _mm256_set1_ps((float)(LUT_OFF - 1))); /* NaN -> second operand */
        y2 = _mm256_max_ps(y2, _mm256_set1_ps((float)-LUT_OFF));
    }
    return _mm256_cvttps_epi32(_mm256_round_ps(y2, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC));
}

/*
** Sums of TG trials: id2[t] = 2 * the trial's inverse scale (exact), so y2 = x * id2 = 2 * (x * id)
** bit for bit (a subnormal product can differ, but every |y| < 0.5 maps to index 8 either way).
*/
__attribute__((target("avx2,f16c"))) static inline void trial_sums(const struct iq4_lut *t, const __m256 *X,
                                                                  const __m256 *W, const __m256 *id2, __m256 *sx,
                                                                  __m256 *s2, bool clamp)
{
    const float *qtab = t->q + LUT_OFF;
    __m256 a[TG], b[TG];
    for (int k = 0; k < TG; k++) a[k] = b[k] = _mm256_setzero_ps();
    for (int j = 0; j < QK; j++) {
        const __m256 x = X[j], w = W[j];
#pragma GCC unroll 4
        for (int k = 0; k < TG; k++) {
            __m256 q = _mm256_i32gather_ps(qtab, lut_slot(_mm256_mul_ps(x, id2[k]), clamp), 4);
            __m256 wq = _mm256_mul_ps(w, q);
            a[k] = _mm256_add_ps(a[k], _mm256_mul_ps(wq, x));
            b[k] = _mm256_add_ps(b[k], _mm256_mul_ps(wq, q));
        }
    }
    for (int k = 0; k < TG; k++) sx[k] = a[k], s2[k] = b[k];
}

/*
** The fit of eight blocks (X[j], W[j]: element j and its weight in each lane): the block scale
** of quantize_row_iq4_nl_impl, 0 for a block with max |x| < GROUP_MAX_EPS. guard: IQ4_NL's first
** refit d = sumq2 > 0 ? sumqx/sumq2 : 0 (iq4_nl.c); IQ4_XS divides unguarded (iq4_xs.c).
*/
__attribute__((target("avx2,f16c"))) static __m256 fit8(const struct iq4_lut *t, const __m256 *X, const __m256 *W,
                                                       bool guard)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 zero = _mm256_setzero_ps();
    __m256 amax = zero, max = zero, bad = zero;
    for (int j = 0; j < QK; j++) {
        __m256 ax = _mm256_and_ps(X[j], absmask);
        __m256 gt = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
        amax = _mm256_blendv_ps(amax, ax, gt);
        max = _mm256_blendv_ps(max, X[j], gt);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(ax, _mm256_set1_ps(3.402823466e38f), _CMP_NLE_UQ)); /* Inf, NaN */
    }
    const __m256 active = _mm256_cmp_ps(amax, _mm256_set1_ps(GROUP_MAX_EPS), _CMP_GE_OQ);
    /* inactive lanes get max = 1 so that their (discarded) trials stay inside the table */
    max = _mm256_blendv_ps(_mm256_set1_ps(1.f), max, active);
    const bool clamp = !_mm256_testz_ps(bad, bad);

    /* trial 0: id = 1 / (-max / values[0]); trial 1 + i: id = (i - 7 + values[0]) / max */
    __m256 id2[NTRIAL], sx[NTRIAL], s2[NTRIAL];
    const __m256 v0 = _mm256_set1_ps((float)mq_iq4nl_values[0]);
    __m256 id = _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_div_ps(_mm256_xor_ps(max, _mm256_set1_ps(-0.f)), v0));
    id2[0] = _mm256_add_ps(id, id);
    for (int i = 0; i <= 2 * NTRY; i++) {
        id = _mm256_div_ps(_mm256_set1_ps((float)(i - NTRY + mq_iq4nl_values[0])), max);
        id2[i + 1] = _mm256_add_ps(id, id);
    }
    for (int g = 0; g < NTRIAL; g += TG) {
        if (clamp) trial_sums(t, X, W, id2 + g, sx + g, s2 + g, true);
        else trial_sums(t, X, W, id2 + g, sx + g, s2 + g, false);
    }
    __m256 d = _mm256_div_ps(sx[0], s2[0]);
    if (guard) d = _mm256_and_ps(_mm256_cmp_ps(s2[0], zero, _CMP_GT_OQ), d);
    __m256 best = _mm256_mul_ps(d, sx[0]);
    for (int i = 1; i < NTRIAL; i++) {
        __m256 better = _mm256_and_ps(_mm256_cmp_ps(s2[i], zero, _CMP_GT_OQ),
                                      _mm256_cmp_ps(_mm256_mul_ps(sx[i], sx[i]), _mm256_mul_ps(best, s2[i]), _CMP_GT_OQ));
        __m256 nd = _mm256_div_ps(sx[i], s2[i]);
        d = _mm256_blendv_ps(d, nd, better);
        best = _mm256_blendv_ps(best, _mm256_mul_ps(nd, sx[i]), better);
    }
    return _mm256_and_ps(d, active);
}

/* The codes of eight blocks for per-lane inverse scales id: best_index(id * x) (clamped lookup). */
__attribute__((target("avx2,f16c"))) static inline void codes8(const struct iq4_lut *t, const __m256 *X, __m256 id,
                                                              uint32_t L[QK][8])
{
    const int *ltab = t->l + LUT_OFF;
    for (int j = 0; j < QK; j++) {
        __m256 y = _mm256_mul_ps(id, X[j]);
        __m256i l = _mm256_i32gather_epi32(ltab, lut_slot(_mm256_add_ps(y, y), true), 4);
        _mm256_storeu_si256((__m256i *)L[j], l);
    }
}

/*
** Loads eight blocks of 32 whose element 0 is at x + stride*k (lane k) and their weights: x^2
** without importance weights; with them (qw laid out like x) qw * sqrtf(sigma2 + x^2), where
** sigma2 is the per-lane 2/32 * sum(x^2) (IQ4_NL) unless sigma2_all is given (IQ4_XS: one value
** for the super-block).
*/
__attribute__((target("avx2,f16c"))) static void load8(const float *x, const float *qw, int stride,
                                                      const float *sigma2_all, __m256 *X, __m256 *W)
{
    const __m256i off = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(stride));
    for (int j = 0; j < QK; j++) X[j] = _mm256_i32gather_ps(x + j, off, 4);
    if (!qw) {
        for (int j = 0; j < QK; j++) W[j] = _mm256_mul_ps(X[j], X[j]);
        return;
    }
    __m256 sigma2;
    if (sigma2_all) {
        sigma2 = _mm256_set1_ps(*sigma2_all);
    } else {
        sigma2 = _mm256_setzero_ps();
        for (int j = 0; j < QK; j++) sigma2 = _mm256_add_ps(sigma2, _mm256_mul_ps(X[j], X[j]));
        sigma2 = _mm256_mul_ps(sigma2, _mm256_set1_ps(2.f / QK));
    }
    for (int j = 0; j < QK; j++)
        W[j] = _mm256_mul_ps(_mm256_i32gather_ps(qw + j, off, 4),
                             _mm256_sqrt_ps(_mm256_add_ps(sigma2, _mm256_mul_ps(X[j], X[j]))));
}

/* Eight IQ4_NL blocks at x (qw: their weights or NULL) into y[8 * 18]; only the first nout written. */
__attribute__((target("avx2,f16c"))) static void iq4_nl_8(const struct iq4_lut *t, const float *x, const float *qw,
                                                          uint8_t *y, int nout)
{
    __m256 X[QK], W[QK];
    load8(x, qw, QK, NULL, X, W);
    const __m256 d = fit8(t, X, W, true);
    /* id = d ? 1/d : 0 */
    const __m256 id = _mm256_and_ps(_mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_NEQ_UQ),
                                    _mm256_div_ps(_mm256_set1_ps(1.f), d));
    uint32_t L[QK][8];
    codes8(t, X, id, L);
    float dl[8];
    _mm256_storeu_ps(dl, d);
    for (int k = 0; k < nout; k++) {
        uint8_t *yb = y + (size_t)k * sizeof(struct mq_block_iq4_nl);
        mq_put_f16(yb, dl[k]);
        for (int j = 0; j < QK / 2; j++) yb[2 + j] = (uint8_t)(L[j][k] | (L[j + QK / 2][k] << 4));
    }
}

__attribute__((target("avx2,f16c"))) static void iq4_nl_avx2(const float *src, size_t nb, const float *qw, uint8_t *data)
{
    struct iq4_lut t;
    iq4_lut_init(&t);
    size_t b = 0;
    for (; b + 8 <= nb; b += 8)
        iq4_nl_8(&t, src + b * QK, qw ? qw + b * QK : NULL, data + b * sizeof(struct mq_block_iq4_nl), 8);
    if (b < nb) {
        /* the last 1..7 blocks, padded with all-zero blocks (a zero block is fitted on its own) */
        float xs[8 * QK] = {0}, ws[8 * QK] = {0};
        memcpy(xs, src + b * QK, (nb - b) * QK * sizeof(float));
        if (qw) memcpy(ws, qw + b * QK, (nb - b) * QK * sizeof(float));
        iq4_nl_8(&t, xs, qw ? ws : NULL, data + b * sizeof(struct mq_block_iq4_nl), (int)(nb - b));
    }
}

/* One IQ4_XS super-block x[256] (qw: its 256 weights or NULL) into the 136 bytes at y. */
__attribute__((target("avx2,f16c"))) static void iq4_xs_sb(const struct iq4_lut *t, const float *x, const float *qw,
                                                           uint8_t *y)
{
    __m256 X[QK], W[QK];
    float sigma2 = 0;
    if (qw) {
        for (int j = 0; j < 8 * QK; j++) sigma2 += x[j] * x[j];
        sigma2 *= 2.f / (8 * QK);
    }
    load8(x, qw, QK, &sigma2, X, W);
    float scales[8];
    _mm256_storeu_ps(scales, fit8(t, X, W, false));
    /* iq4_xs.c from here: the block scales coded against d = -max_scale/32 */
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < 8; ib++) {
        float a = fabsf(scales[ib]);
        if (a > amax_scale) {
            amax_scale = a;
            max_scale = scales[ib];
        }
    }
    const float d = -max_scale / 32;
    mq_put_f16(y, d);
    const float id = d ? 1 / d : 0.f;
    uint16_t scales_h = 0;
    uint8_t *scales_l = y + 4, *qs = y + 8;
    float idl[8];
    for (int ib = 0; ib < 8; ib++) {
        int l = mq_imax(-32, mq_imin(31, mq_nearest_int(id * scales[ib])));
        const float dl = d * l;
        idl[ib] = dl ? 1 / dl : 0.f;
        l += 32;
        if (ib % 2 == 0) scales_l[ib / 2] = (uint8_t)(l & 0xF);
        else scales_l[ib / 2] |= (uint8_t)((l & 0xF) << 4);
        scales_h |= (uint16_t)((l >> 4) << (2 * ib));
    }
    y[2] = (uint8_t)scales_h;
    y[3] = (uint8_t)(scales_h >> 8);
    uint32_t L[QK][8];
    codes8(t, X, _mm256_loadu_ps(idl), L);
    for (int ib = 0; ib < 8; ib++)
        for (int j = 0; j < QK / 2; j++) qs[16 * ib + j] = (uint8_t)(L[j][ib] | (L[j + 16][ib] << 4));
}

__attribute__((target("avx2,f16c"))) static void iq4_xs_avx2(const float *src, size_t n, size_t row_len,
                                                             const float *qw, uint8_t *data)
{
    struct iq4_lut t;
    iq4_lut_init(&t);
    for (size_t b = 0; b < n / 256; b++)
        iq4_xs_sb(&t, src + b * 256, qw ? qw + (b * 256) % row_len : NULL, data + b * sizeof(struct mq_block_iq4_xs));
}

#define MQ_IQ4_AVX2 1
#endif

bool mq_iq4_nl_quantize_avx2(const float *src, size_t nb, const float *qw, uint8_t *data)
{
#ifdef MQ_IQ4_AVX2
    if (mq_cpu_avx2()) {
        iq4_nl_avx2(src, nb, qw, data);
        return true;
    }
#endif
    (void)src, (void)nb, (void)qw, (void)data;
    return false;
}

void mq_iq4_xs_quantize_rows_fast(const float *src, size_t n, size_t row_len, const float *qw, uint8_t *data)
{
#ifdef MQ_IQ4_AVX2
    if (mq_cpu_avx2()) {
        iq4_xs_avx2(src, n, row_len, qw, data);
        return;
    }
#endif
    mq_iq4_xs_quantize_rows(src, n, row_len, qw, data);
}
