/*
** iq4_avx2.c - IQ4_NL and IQ4_XS with AVX2: ggml's quantize_row_iq4_nl_impl fit for eight blocks
** of 32 at once, block k in lane k.
**
** Every float operation is the scalar kernel's, lane-wise and in its order (w*q*x as (w*q)*x,
** sums left to right over j = 0..31, true divisions, no FMA), and every `if` is a per-lane
** blend, so each lane's scale equals the scalar one bit for bit. The 16 trial scales of a block
** (the first 1/(-max/values[0]), then (itry + values[0])/max for itry = -7..7) are independent
** until the "keep the better one" step, so their sums are computed four trials at a time (four
** independent add chains per lane) and the keep step then runs over them in the scalar order.
**
** The nearest grid value (ggml's best_index_int8) is the number of midpoints m_i <= y (see
** iq4_lanes.h), found by a four-level binary search over the 15 midpoints: compares against
** m_7, then m_3 or m_11, then one of four and one of eight (the last two picked by permutes).
** The compares are "not less than, unordered true", so a NaN y counts every midpoint and gets
** 15, as in ggml; no table lookup, no gather (a gather costs ~13 cycles on Zen 3).
*/
#include <float.h>

#include "iq4_lanes.h"

enum { QK = 32, NTRY = 7, NTRIAL = 2 * NTRY + 2, TG = 4 };

#define GROUP_MAX_EPS 1e-15f

/* (v_i + v_i+1) / 2 of the IQ4_NL grid, all multiples of 0.5 and exact in float */
static const float mid[15] = {-115.5f, -93.5f, -74.f, -57.f, -42.f, -28.5f, -16.f, -4.5f,
                              7.f,      19.f,   31.5f, 45.5f, 61.f,  79.f,   101.f};

int mq_iq4_mid_index(float y)
{
    /* the lanes' search, one value at a time */
    int c1 = !(y < mid[7]);
    int c2 = !(y < (c1 ? mid[11] : mid[3]));
    int i2 = 2 * c1 + c2;
    int c3 = !(y < mid[4 * i2 + 1]);
    int i3 = 2 * i2 + c3;
    int c4 = !(y < mid[2 * i3]);
    return 2 * i3 + c4;
}

/*
** Trials 1..15 share the sign of id (itry + values[0] < 0) and |id| falls with itry, so each
** |y| = |x| * |id| (exact: rounding is sign-symmetric) falls monotonically toward 0 and the
** index moves toward the centre (8) by at most two midpoints over all 15: |y| drops by at most
** 14 * |x/max| <= 14 (|x| <= |max|) while two midpoint gaps on one side add up to more than 14.
** So after a full search at trial 1 (index k) every later trial only compares |y| against the
** next two midpoints toward 0 (ta, tb: "crossed" when |y| <= t; a positive midpoint m is turned
** into the float just below m, since there the test is y < m) and picks one of three values.
** Only for finite x (a group with Inf or NaN takes the full search for every trial).
*/

/* the later trials' tables, indexed by the trial-1 index k */
struct iq4_step {
    float v[16];            /* the grid as floats */
    float ta[16], tb[16];   /* the next two thresholds on |y| toward 0 (-1: none) */
    float q1[16], q2[16];   /* the values past them */
};

static void step_init(struct iq4_step *t)
{
    for (int k = 0; k < 16; k++) {
        t->v[k] = mq_iq4nl_values[k];
        t->ta[k] = t->tb[k] = -1.f; /* no crossing: |y| >= 0 > -1 */
        t->q1[k] = t->q2[k] = mq_iq4nl_values[k];
        if (k < 8) { /* y < 0, the index rises: crossing m_k when y >= m_k, i.e. |y| <= -m_k */
            t->ta[k] = -mid[k];
            if (k + 1 < 8) t->tb[k] = -mid[k + 1];
            t->q1[k] = mq_iq4nl_values[k + 1];
            t->q2[k] = mq_iq4nl_values[k + 2];
        } else if (k > 8) { /* y > 0, the index falls: crossing m_k-1 when y < m_k-1 */
            t->ta[k] = nextafterf(mid[k - 1], 0.f);
            if (k - 2 >= 8) t->tb[k] = nextafterf(mid[k - 2], 0.f);
            t->q1[k] = mq_iq4nl_values[k - 1];
            t->q2[k] = mq_iq4nl_values[k - 2];
        }
    }
}

int mq_iq4_step_index(int k, float y)
{
    /* the lanes' pick among the three candidates, one value at a time */
    struct iq4_step t;
    step_init(&t);
    const float z = fabsf(y);
    const int dir = k < 8 ? 1 : -1;
    return z <= t.tb[k] ? k + 2 * dir : z <= t.ta[k] ? k + dir : k;
}

#if defined(__x86_64__) || defined(__i386__)
#include "avx2_lanes.h"

/* the search's constants, held in registers across a block group */
struct iq4_search {
    __m256 m7, m3, m11, l3, l4, vlo, vhi;
    struct iq4_step step;
};


__attribute__((target("avx2,f16c"))) static void search_init(struct iq4_search *s)
{
    s->m7 = _mm256_set1_ps(mid[7]);
    s->m3 = _mm256_set1_ps(mid[3]);
    s->m11 = _mm256_set1_ps(mid[11]);
    s->l3 = _mm256_setr_ps(mid[1], mid[5], mid[9], mid[13], 0, 0, 0, 0);
    s->l4 = _mm256_setr_ps(mid[0], mid[2], mid[4], mid[6], mid[8], mid[10], mid[12], mid[14]);
    float lo[8], hi[8];
    for (int i = 0; i < 8; i++) lo[i] = mq_iq4nl_values[2 * i], hi[i] = mq_iq4nl_values[2 * i + 1];
    s->vlo = _mm256_loadu_ps(lo);
    s->vhi = _mm256_loadu_ps(hi);
    step_init(&s->step);
}

/* The search down to the last compare: *i3 = index / 2 (0..7), *c4 = its low bit as a mask. */
__attribute__((target("avx2,f16c"))) static inline void search8(const struct iq4_search *s, __m256 y, __m256i *i3,
                                                               __m256 *c4)
{
    __m256 c1 = _mm256_cmp_ps(y, s->m7, _CMP_NLT_UQ);
    __m256 c2 = _mm256_cmp_ps(y, _mm256_blendv_ps(s->m3, s->m11, c1), _CMP_NLT_UQ);
    __m256i i2 = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(c1), _mm256_set1_epi32(2)),
                                  _mm256_castps_si256(c2));
    __m256 c3 = _mm256_cmp_ps(y, _mm256_permutevar8x32_ps(s->l3, i2), _CMP_NLT_UQ);
    __m256i j3 = _mm256_sub_epi32(_mm256_add_epi32(i2, i2), _mm256_castps_si256(c3));
    *c4 = _mm256_cmp_ps(y, _mm256_permutevar8x32_ps(s->l4, j3), _CMP_NLT_UQ);
    *i3 = j3;
}

/* the grid value nearest to y */
__attribute__((target("avx2,f16c"))) static inline __m256 grid_value8(const struct iq4_search *s, __m256 y)
{
    __m256i i3;
    __m256 c4;
    search8(s, y, &i3, &c4);
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(s->vlo, i3), _mm256_permutevar8x32_ps(s->vhi, i3), c4);
}

/* the grid index nearest to y */
__attribute__((target("avx2,f16c"))) static inline __m256i grid_index8(const struct iq4_search *s, __m256 y)
{
    __m256i i3;
    __m256 c4;
    search8(s, y, &i3, &c4);
    return _mm256_sub_epi32(_mm256_add_epi32(i3, i3), _mm256_castps_si256(c4));
}

/* Sums of TG trials with inverse scales id[0..TG-1], per lane in element order. */
__attribute__((target("avx2,f16c"))) static inline void trial_sums(const struct iq4_search *s, const __m256 *X,
                                                                  const __m256 *W, const __m256 *id, __m256 *sx,
                                                                  __m256 *s2)
{
    __m256 a[TG], b[TG];
    for (int k = 0; k < TG; k++) a[k] = b[k] = _mm256_setzero_ps();
    for (int j = 0; j < QK; j++) {
        const __m256 x = X[j], w = W[j];
#pragma GCC unroll 4
        for (int k = 0; k < TG; k++) {
            __m256 q = grid_value8(s, _mm256_mul_ps(id[k], x));
            __m256 wq = _mm256_mul_ps(w, q);
            a[k] = _mm256_add_ps(a[k], _mm256_mul_ps(wq, x));
            b[k] = _mm256_add_ps(b[k], _mm256_mul_ps(wq, q));
        }
    }
    for (int k = 0; k < TG; k++) sx[k] = a[k], s2[k] = b[k];
}

/* tab[idx] for a 16-entry float table */
__attribute__((target("avx2,f16c"))) static inline __m256 lookup16(const float *tab, __m256i idx)
{
    const __m256 hi = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)); /* bit 3 -> sign bit */
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(tab), idx),
                            _mm256_permutevar8x32_ps(_mm256_loadu_ps(tab + 8), idx), hi);
}

/* per element j of the eight blocks: |x|, the two thresholds and the three candidate values */
struct iq4_prep {
    __m256 ax[QK], ta[QK], tb[QK], q0[QK], q1[QK], q2[QK];
};

/*
** Trials 0 and 1 with the full search (their sums into sx[0..1], s2[0..1]), and from trial 1's
** indices the per-element data of the later trials.
*/
__attribute__((target("avx2,f16c"))) static void first_trials(const struct iq4_search *s, const struct iq4_step *t,
                                                             const __m256 *X, const __m256 *W, const __m256 *id,
                                                             __m256 *sx, __m256 *s2, struct iq4_prep *p)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 a0 = _mm256_setzero_ps(), b0 = a0, a1 = a0, b1 = a0;
    for (int j = 0; j < QK; j++) {
        const __m256 x = X[j], w = W[j];
        __m256 q = grid_value8(s, _mm256_mul_ps(id[0], x));
        __m256 wq = _mm256_mul_ps(w, q);
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(wq, x));
        b0 = _mm256_add_ps(b0, _mm256_mul_ps(wq, q));
        __m256i k = grid_index8(s, _mm256_mul_ps(id[1], x));
        q = lookup16(t->v, k);
        wq = _mm256_mul_ps(w, q);
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(wq, x));
        b1 = _mm256_add_ps(b1, _mm256_mul_ps(wq, q));
        p->ax[j] = _mm256_and_ps(x, absmask);
        p->q0[j] = q;
        p->ta[j] = lookup16(t->ta, k);
        p->tb[j] = lookup16(t->tb, k);
        p->q1[j] = lookup16(t->q1, k);
        p->q2[j] = lookup16(t->q2, k);
    }
    sx[0] = a0, s2[0] = b0, sx[1] = a1, s2[1] = b1;
}

/* Sums of trials with |id| = aid[0..n-1] (all from trial 2 on), n <= 4. */
__attribute__((target("avx2,f16c"))) static inline void step_sums(const struct iq4_prep *p, const __m256 *X,
                                                                 const __m256 *W, const __m256 *aid, int n, __m256 *sx,
                                                                 __m256 *s2)
{
    __m256 a[TG], b[TG];
    for (int k = 0; k < TG; k++) a[k] = b[k] = _mm256_setzero_ps();
    for (int j = 0; j < QK; j++) {
        const __m256 x = X[j], w = W[j];
#pragma GCC unroll 4
        for (int k = 0; k < n; k++) {
            __m256 z = _mm256_mul_ps(p->ax[j], aid[k]);
            __m256 q = _mm256_blendv_ps(p->q0[j], p->q1[j], _mm256_cmp_ps(z, p->ta[j], _CMP_LE_OQ));
            q = _mm256_blendv_ps(q, p->q2[j], _mm256_cmp_ps(z, p->tb[j], _CMP_LE_OQ));
            __m256 wq = _mm256_mul_ps(w, q);
            a[k] = _mm256_add_ps(a[k], _mm256_mul_ps(wq, x));
            b[k] = _mm256_add_ps(b[k], _mm256_mul_ps(wq, q));
        }
    }
    for (int k = 0; k < n; k++) sx[k] = a[k], s2[k] = b[k];
}

/*
** The fit of eight blocks (X[j], W[j]: element j and its weight in each lane): the block scale
** of quantize_row_iq4_nl_impl, 0 for a block with max |x| < GROUP_MAX_EPS. guard: IQ4_NL's first
** refit d = sumq2 > 0 ? sumqx/sumq2 : 0 (iq4_nl.c); IQ4_XS divides unguarded (iq4_xs.c).
*/
__attribute__((target("avx2,f16c"))) static __m256 fit8(const struct iq4_search *s, const struct iq4_step *t,
                                                       const __m256 *X, const __m256 *W, bool guard)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 zero = _mm256_setzero_ps();
    __m256 amax = zero, max = zero, bad = zero;
    for (int j = 0; j < QK; j++) {
        __m256 ax = _mm256_and_ps(X[j], absmask);
        __m256 gt = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
        amax = _mm256_blendv_ps(amax, ax, gt);
        max = _mm256_blendv_ps(max, X[j], gt);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(ax, _mm256_set1_ps(FLT_MAX), _CMP_NLE_UQ)); /* Inf, NaN */
    }
    const __m256 active = _mm256_cmp_ps(amax, _mm256_set1_ps(GROUP_MAX_EPS), _CMP_GE_OQ);

    /* trial 0: id = 1 / (-max / values[0]); trial 1 + i: id = (i - 7 + values[0]) / max */
    __m256 id[NTRIAL], sx[NTRIAL], s2[NTRIAL];
    const __m256 v0 = _mm256_set1_ps((float)mq_iq4nl_values[0]);
    id[0] = _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_div_ps(_mm256_xor_ps(max, _mm256_set1_ps(-0.f)), v0));
    for (int i = 0; i <= 2 * NTRY; i++)
        id[i + 1] = _mm256_div_ps(_mm256_set1_ps((float)(i - NTRY + mq_iq4nl_values[0])), max);
    if (!_mm256_testz_ps(bad, bad)) {
        for (int g = 0; g < NTRIAL; g += TG) trial_sums(s, X, W, id + g, sx + g, s2 + g);
    } else {
        struct iq4_prep p;
        first_trials(s, t, X, W, id, sx, s2, &p);
        __m256 aid[NTRIAL];
        for (int i = 2; i < NTRIAL; i++) aid[i] = _mm256_and_ps(id[i], absmask);
        for (int g = 2; g < NTRIAL; g += TG) step_sums(&p, X, W, aid + g, NTRIAL - g < TG ? NTRIAL - g : TG, sx + g, s2 + g);
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

/*
** The codes of eight blocks for per-lane inverse scales id, best_index(id * x), packed as IQ4_NL
** packs them (byte j = code j | code j+16 << 4): the 16 bytes of lane k go to dst + k * stride.
** The bytes are moved out of the lanes by packs, a 4x4 byte shuffle and a 4x4 dword transpose.
*/
__attribute__((target("avx2,f16c"))) static void codes8(const struct iq4_search *s, const __m256 *X, __m256 id,
                                                        uint8_t *dst, size_t stride)
{
    __m256i v[QK / 2];
    for (int j = 0; j < QK / 2; j++) {
        __m256i lo = grid_index8(s, _mm256_mul_ps(id, X[j]));
        __m256i hi = grid_index8(s, _mm256_mul_ps(id, X[j + QK / 2]));
        v[j] = _mm256_or_si256(lo, _mm256_slli_epi32(hi, 4));
    }
    /* C[i], per 128-bit half (blocks 0..3 low, 4..7 high): dword k = bytes j = 4i..4i+3 of block k */
    const __m256i tr4 = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, 0, 4, 8, 12, 1, 5, 9,
                                         13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m256i C[4];
    for (int i = 0; i < 4; i++) {
        __m256i b = _mm256_packus_epi16(_mm256_packus_epi32(v[4 * i], v[4 * i + 1]),
                                        _mm256_packus_epi32(v[4 * i + 2], v[4 * i + 3]));
        C[i] = _mm256_shuffle_epi8(b, tr4);
    }
    const __m256i t0 = _mm256_unpacklo_epi32(C[0], C[1]), t1 = _mm256_unpackhi_epi32(C[0], C[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(C[2], C[3]), t3 = _mm256_unpackhi_epi32(C[2], C[3]);
    const __m256i o[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2), _mm256_unpacklo_epi64(t1, t3),
                          _mm256_unpackhi_epi64(t1, t3)};
    for (int k = 0; k < 4; k++) {
        _mm_storeu_si128((__m128i *)(dst + (size_t)k * stride), _mm256_castsi256_si128(o[k]));
        _mm_storeu_si128((__m128i *)(dst + (size_t)(k + 4) * stride), _mm256_extracti128_si256(o[k], 1));
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
    for (int c = 0; c < QK; c += 8) mq_avx2_load_t8(x + c, stride, X + c);
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
    for (int c = 0; c < QK; c += 8) mq_avx2_load_t8(qw + c, stride, W + c);
    for (int j = 0; j < QK; j++) W[j] = _mm256_mul_ps(W[j], _mm256_sqrt_ps(_mm256_add_ps(sigma2, _mm256_mul_ps(X[j], X[j]))));
}

/* Eight IQ4_NL blocks at x (qw: their weights or NULL) into y[8 * 18]; only the first nout written. */
__attribute__((target("avx2,f16c"))) static void iq4_nl_8(const struct iq4_search *s, const float *x, const float *qw,
                                                          uint8_t *y, int nout)
{
    __m256 X[QK], W[QK];
    load8(x, qw, QK, NULL, X, W);
    const __m256 d = fit8(s, &s->step, X, W, true);
    /* id = d ? 1/d : 0 */
    const __m256 id = _mm256_and_ps(_mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_NEQ_UQ),
                                    _mm256_div_ps(_mm256_set1_ps(1.f), d));
    /* eight whole blocks are written in place, a shorter tail through a buffer */
    uint8_t out[8 * sizeof(struct mq_block_iq4_nl)];
    uint8_t *dst = nout == 8 ? y : out;
    codes8(s, X, id, dst + 2, sizeof(struct mq_block_iq4_nl));
    float dl[8];
    _mm256_storeu_ps(dl, d);
    for (int k = 0; k < 8; k++) mq_put_f16(dst + (size_t)k * sizeof(struct mq_block_iq4_nl), dl[k]);
    if (dst != y) memcpy(y, out, (size_t)nout * sizeof(struct mq_block_iq4_nl));
}

__attribute__((target("avx2,f16c"))) static void iq4_nl_avx2(const float *src, size_t nb, const float *qw, uint8_t *data)
{
    struct iq4_search s;
    search_init(&s);
    size_t b = 0;
    for (; b + 8 <= nb; b += 8)
        iq4_nl_8(&s, src + b * QK, qw ? qw + b * QK : NULL, data + b * sizeof(struct mq_block_iq4_nl), 8);
    if (b < nb) {
        /* the last 1..7 blocks, padded with all-zero blocks (a zero block is fitted on its own) */
        float xs[8 * QK] = {0}, ws[8 * QK] = {0};
        memcpy(xs, src + b * QK, (nb - b) * QK * sizeof(float));
        if (qw) memcpy(ws, qw + b * QK, (nb - b) * QK * sizeof(float));
        iq4_nl_8(&s, xs, qw ? ws : NULL, data + b * sizeof(struct mq_block_iq4_nl), (int)(nb - b));
    }
}

/* One IQ4_XS super-block x[256] (qw: its 256 weights or NULL) into the 136 bytes at y. */
__attribute__((target("avx2,f16c"))) static void iq4_xs_sb(const struct iq4_search *s, const float *x, const float *qw,
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
    _mm256_storeu_ps(scales, fit8(s, &s->step, X, W, false));
    float idl[8]; /* the block scales coded against d = -max_scale/32, as iq4_xs.c does */
    mq_iq4_xs_put_scales(y, scales, idl);
    uint8_t *qs = y + 8;
    codes8(s, X, _mm256_loadu_ps(idl), qs, QK / 2);
}

__attribute__((target("avx2,f16c"))) static void iq4_xs_avx2(const float *src, size_t n, size_t row_len,
                                                             const float *qw, uint8_t *data)
{
    struct iq4_search s;
    search_init(&s);
    for (size_t b = 0; b < n / 256; b++)
        iq4_xs_sb(&s, src + b * 256, qw ? qw + (b * 256) % row_len : NULL, data + b * sizeof(struct mq_block_iq4_xs));
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
