/*
** qx_lanes.c - ggml's make_qx_quants(n, nmax, x, L, rmse_type 1, weights) for sixteen groups at
** once: group 8s + g in lane g of set s (two sets of eight lanes, run side by side: two
** independent chains of adds per sum). The scalar reference is mq_make_qx_quants (kquants.c).
**
** Exactness. Every float operation is the scalar one, lane-wise and in the scalar order, so each
** lane's scale equals the reference's: max is the first x of largest |x| (a strict > per value,
** as the scalar loop); the 19 inverse scales are -nmax / max, then -(nmax + 0.1f*is) / max; the
** sums add (w*x)*l and (w*l)*l from +0 left to right (ggml's w*x[i]*l is (w*x)*l, so w*x is
** computed once); "suml2 ? sumlx / suml2 : 0" and "suml2 > 0 && sumlx*sumlx > best*suml2" are
** lane masks with C's NaN behaviour (a NaN suml2 is true for the first, false for the second).
** The weights are computed here when asked to be qw * sqrtf(sigma2 + x*x): vsqrtps is the
** correctly rounded square root, as sqrtf; no multiply-add is fused (-ffp-contract=off).
**
** Rounding in the search. In a group whose amax >= GROUP_MAX_EPS every |x| <= |max|, so
** |iscale * x| <= (nmax + 0.9) * (1 + a few ulp) for each of the 19 iscales: for every nmax used
** (4 .. 32) far inside |f| < 2^22, where ggml's nearest_int (the 1.5*2^23 trick) is round half to
** even, which is what vroundps does. So the search rounds with vroundps and clamps in float to
** [-nmax, nmax-1] (a -0 in place of 0 is harmless: it only ever adds to sums that start at +0).
** Groups below GROUP_MAX_EPS (max may be 0: their iscales are Inf or NaN) compute garbage that
** is masked at the end: scale 0 and codes 0, as the scalar early return. NaN and Inf x are not in
** the range argument: a call holding one returns false and the caller runs the scalar kernel.
** Weights may be anything (huge, zero, Inf from an overflowing sigma2): the same operations give
** the same values, and the NaNs that arise are all the default NaN.
**
** Codes. The search keeps only the winning iscale per lane (the scalar kernel rewrites L exactly
** when it takes a new iscale); the codes are recomputed once from it at the end with ggml's own
** rounding (mq_avx2_nearest_int), clamped and stored + nmax.
**
** Partial calls (ng < 16 groups) run on a zero-padded copy: zero groups are below
** GROUP_MAX_EPS, and their results are not copied out.
*/
#include "qx_lanes.h"

#if defined(__x86_64__) || defined(__i386__)
#include "avx2_lanes.h"
#include "kquants_simd.h"

enum { GROUPS = 16, SETS = 2, MAXN = 32 };

#define GROUP_MAX_EPS 1e-15f
#define FOR_SET _Pragma("GCC unroll 2") for (int s = 0; s < SETS; s++)

/*
** The kernel for 16 groups of n at x (and qw), n and wk compile-time constants in each caller
** below so the loops unroll. scales[16], L[16 * n], wsum[16] (or NULL).
*/
__attribute__((target("avx2,f16c"), always_inline)) static inline bool
qx_fit_body(const int n, const int nmax, const enum mq_qx_weights wk, const float *x, const float *qw, float sigma2,
            float *scale_out, int8_t *L, float *iscale_out, float *wsum)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 flo = _mm256_set1_ps((float)-nmax), fhi = _mm256_set1_ps((float)(nmax - 1));
    const __m256 zero = _mm256_setzero_ps();
    __m256 X[SETS][MAXN], W[SETS][MAXN], WX[SETS][MAXN];
    __m256 max[SETS], active[SETS], scale[SETS], best[SETS], best_iscale[SETS];
    __m256 finite = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    FOR_SET {
        /* X[s][i] lane g = x[n * (8s + g) + i]: eight transposes of 8x8 per set and array */
        for (int c = 0; c < n; c += 8) {
            mq_avx2_load_t8(x + n * 8 * s + c, n, &X[s][c]);
            if (wk != MQ_QX_W_X2) mq_avx2_load_t8(qw + n * 8 * s + c, n, &W[s][c]);
        }
        const __m256 vs2 = _mm256_set1_ps(sigma2);
        __m256 amax = zero, mx = zero, sw = zero;
        for (int i = 0; i < n; i++) {
            const __m256 xi = X[s][i];
            if (wk == MQ_QX_W_X2) W[s][i] = _mm256_mul_ps(xi, xi);
            else if (wk == MQ_QX_W_SIGMA)
                W[s][i] = _mm256_mul_ps(W[s][i], _mm256_sqrt_ps(_mm256_add_ps(vs2, _mm256_mul_ps(xi, xi))));
            sw = _mm256_add_ps(sw, W[s][i]);
            WX[s][i] = _mm256_mul_ps(W[s][i], xi);
            const __m256 ax = _mm256_and_ps(xi, absmask);
            finite = _mm256_and_ps(finite, _mm256_cmp_ps(ax, _mm256_set1_ps(3.4028235e38f), _CMP_LE_OQ));
            const __m256 gt = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
            amax = _mm256_blendv_ps(amax, ax, gt);
            mx = _mm256_blendv_ps(mx, xi, gt);
        }
        if (wsum) _mm256_storeu_ps(wsum + 8 * s, sw);
        max[s] = mx;
        active[s] = _mm256_cmp_ps(amax, _mm256_set1_ps(GROUP_MAX_EPS), _CMP_GE_OQ);
    }
    if (_mm256_movemask_ps(finite) != 0xff) return false;
    FOR_SET scale[s] = best[s] = best_iscale[s] = zero; /* set by the first pass */

    /* the first pass (is = 0: iscale = -nmax / max) sets scale and best, then the 18 others */
    static const int order[19] = {0, -9, -8, -7, -6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    for (int k = 0; k < 19; k++) {
        const int is = order[k];
        const __m256 num = _mm256_set1_ps(is == 0 ? (float)-nmax : -((float)nmax + 0.1f * (float)is));
        __m256 iscale[SETS], sumlx[SETS], suml2[SETS];
        FOR_SET {
            iscale[s] = _mm256_div_ps(num, max[s]);
            sumlx[s] = suml2[s] = zero;
        }
        for (int i = 0; i < n; i++) {
            FOR_SET {
                __m256 lf = _mm256_round_ps(_mm256_mul_ps(iscale[s], X[s][i]), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                lf = _mm256_min_ps(_mm256_max_ps(lf, flo), fhi);
                sumlx[s] = _mm256_add_ps(sumlx[s], _mm256_mul_ps(WX[s][i], lf));
                suml2[s] = _mm256_add_ps(suml2[s], _mm256_mul_ps(_mm256_mul_ps(W[s][i], lf), lf));
            }
        }
        FOR_SET {
            if (is == 0) {
                /* scale = suml2 ? sumlx / suml2 : 0; best = scale * sumlx */
                scale[s] = _mm256_and_ps(_mm256_cmp_ps(suml2[s], zero, _CMP_NEQ_UQ), _mm256_div_ps(sumlx[s], suml2[s]));
                best[s] = _mm256_mul_ps(scale[s], sumlx[s]);
                best_iscale[s] = iscale[s];
                continue;
            }
            /* if (suml2 > 0 && sumlx * sumlx > best * suml2) */
            const __m256 better =
                _mm256_and_ps(_mm256_cmp_ps(suml2[s], zero, _CMP_GT_OQ),
                              _mm256_cmp_ps(_mm256_mul_ps(sumlx[s], sumlx[s]), _mm256_mul_ps(best[s], suml2[s]), _CMP_GT_OQ));
            if (_mm256_testz_ps(better, better)) continue;
            const __m256 ns = _mm256_div_ps(sumlx[s], suml2[s]);
            scale[s] = _mm256_blendv_ps(scale[s], ns, better);
            best[s] = _mm256_blendv_ps(best[s], _mm256_mul_ps(ns, sumlx[s]), better);
            best_iscale[s] = _mm256_blendv_ps(best_iscale[s], iscale[s], better);
        }
    }
    const __m256i lo = _mm256_set1_epi32(-nmax), hi = _mm256_set1_epi32(nmax - 1), off = _mm256_set1_epi32(nmax);
    int32_t tmp[MAXN][8];
    FOR_SET {
        _mm256_storeu_ps(scale_out + 8 * s, _mm256_and_ps(scale[s], active[s]));
        /* the lazy form: the winning iscale, 0 for a group below GROUP_MAX_EPS (mq_qx_codes) */
        if (!L) {
            _mm256_storeu_ps(iscale_out + 8 * s, _mm256_and_ps(best_iscale[s], active[s]));
            continue;
        }
        for (int i = 0; i < n; i++) {
            __m256i l = mq_avx2_nearest_int(_mm256_mul_ps(best_iscale[s], X[s][i]));
            l = _mm256_add_epi32(_mm256_max_epi32(lo, _mm256_min_epi32(hi, l)), off);
            l = _mm256_and_si256(l, _mm256_castps_si256(active[s])); /* groups below GROUP_MAX_EPS: L = 0 */
            _mm256_storeu_si256((__m256i *)tmp[i], l);
        }
        for (int g = 0; g < 8; g++)
            for (int i = 0; i < n; i++) L[n * (8 * s + g) + i] = (int8_t)tmp[i][g];
    }
    return true;
}

__attribute__((target("avx2,f16c"))) static bool qx_fit16(const int n, int nmax, enum mq_qx_weights wk,
                                                          const float *x, const float *qw, float sigma2,
                                                          float *scales, int8_t *L, float *iscales, float *wsum)
{
    if (n == 16) {
        switch (wk) {
        case MQ_QX_W_X2: return qx_fit_body(16, nmax, MQ_QX_W_X2, x, qw, sigma2, scales, L, iscales, wsum);
        case MQ_QX_W_RAW: return qx_fit_body(16, nmax, MQ_QX_W_RAW, x, qw, sigma2, scales, L, iscales, wsum);
        default: return qx_fit_body(16, nmax, MQ_QX_W_SIGMA, x, qw, sigma2, scales, L, iscales, wsum);
        }
    }
    switch (wk) {
    case MQ_QX_W_X2: return qx_fit_body(32, nmax, MQ_QX_W_X2, x, qw, sigma2, scales, L, iscales, wsum);
    case MQ_QX_W_RAW: return qx_fit_body(32, nmax, MQ_QX_W_RAW, x, qw, sigma2, scales, L, iscales, wsum);
    default: return qx_fit_body(32, nmax, MQ_QX_W_SIGMA, x, qw, sigma2, scales, L, iscales, wsum);
    }
}

bool mq_qx_fit_lanes(int n, int nmax, enum mq_qx_weights wk, const float *x, const float *qw, float sigma2, int ng,
                     float *scales, int8_t *L, float *wsum)
{
    if ((n != 16 && n != 32) || nmax < 1 || nmax > 32 || ng < 1 || ng > GROUPS || !mq_cpu_avx2()) return false;
    if (ng == GROUPS) return qx_fit16(n, nmax, wk, x, qw, sigma2, scales, L, NULL, wsum);
    /* a tail: zero groups after the ng given ones (below GROUP_MAX_EPS, results dropped) */
    float xb[GROUPS * MAXN] = {0}, qb[GROUPS * MAXN] = {0}, sb[GROUPS], wb[GROUPS];
    int8_t lb[GROUPS * MAXN];
    memcpy(xb, x, sizeof(float) * (size_t)(n * ng));
    if (wk != MQ_QX_W_X2) memcpy(qb, qw, sizeof(float) * (size_t)(n * ng));
    if (!qx_fit16(n, nmax, wk, xb, qb, sigma2, sb, lb, NULL, wb)) return false;
    memcpy(scales, sb, sizeof(float) * (size_t)ng);
    memcpy(L, lb, (size_t)(n * ng));
    if (wsum) memcpy(wsum, wb, sizeof(float) * (size_t)ng);
    return true;
}

/*
** One group on its own (Q3_K's sixteen sub-block scales): here the lanes are the 19 candidate
** inverse scales (lane k of vector v: order[8v + k]; 24 lanes, the last 5 unused), each lane's
** sums over the n values added left to right as in the scalar loop, then the scalar kernel's
** choice among them made in its order on the 19 sums. The range argument is the one above.
*/
__attribute__((target("avx2,f16c"))) static bool qx_fit_one(int n, int nmax, const float *x, const float *qw,
                                                            int8_t *L, float *scale_out)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (!(ax <= 3.4028235e38f)) return false; /* NaN or Inf */
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        *scale_out = 0.f;
        return true;
    }
    float num[24] = {0};
    num[0] = (float)-nmax;
    for (int k = 1; k < 19; k++) {
        const int is = k <= 9 ? k - 10 : k - 9; /* -9 .. -1, 1 .. 9 */
        num[k] = -((float)nmax + 0.1f * (float)is);
    }
    const __m256 vmax = _mm256_set1_ps(max), zero = _mm256_setzero_ps();
    const __m256 flo = _mm256_set1_ps((float)-nmax), fhi = _mm256_set1_ps((float)(nmax - 1));
    __m256 iscale[3], sumlx[3], suml2[3];
    for (int v = 0; v < 3; v++) {
        iscale[v] = _mm256_div_ps(_mm256_loadu_ps(num + 8 * v), vmax);
        sumlx[v] = suml2[v] = zero;
    }
    for (int i = 0; i < n; i++) {
        const __m256 xi = _mm256_set1_ps(x[i]), wi = _mm256_set1_ps(qw[i]), wxi = _mm256_set1_ps(qw[i] * x[i]);
        for (int v = 0; v < 3; v++) {
            __m256 lf = _mm256_round_ps(_mm256_mul_ps(iscale[v], xi), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            lf = _mm256_min_ps(_mm256_max_ps(lf, flo), fhi);
            sumlx[v] = _mm256_add_ps(sumlx[v], _mm256_mul_ps(wxi, lf));
            suml2[v] = _mm256_add_ps(suml2[v], _mm256_mul_ps(_mm256_mul_ps(wi, lf), lf));
        }
    }
    float is_[24], lx[24], l2[24];
    for (int v = 0; v < 3; v++) {
        _mm256_storeu_ps(is_ + 8 * v, iscale[v]);
        _mm256_storeu_ps(lx + 8 * v, sumlx[v]);
        _mm256_storeu_ps(l2 + 8 * v, suml2[v]);
    }
    float scale = l2[0] ? lx[0] / l2[0] : 0.0f, best = scale * lx[0];
    int win = 0;
    for (int k = 1; k < 19; k++)
        if (l2[k] > 0 && lx[k] * lx[k] > best * l2[k]) {
            scale = lx[k] / l2[k];
            best = scale * lx[k];
            win = k;
        }
    for (int i = 0; i < n; i++)
        L[i] = (int8_t)(nmax + mq_imax(-nmax, mq_imin(nmax - 1, mq_nearest_int(is_[win] * x[i]))));
    *scale_out = scale;
    return true;
}

bool mq_qx_fit_group(int n, int nmax, const float *x, const float *qw, int8_t *L, float *scale)
{
    if (n < 1 || nmax < 1 || nmax > 32 || !mq_cpu_avx2()) return false;
    return qx_fit_one(n, nmax, x, qw, L, scale);
}

bool mq_qx_fit16_lazy(int n, int nmax, enum mq_qx_weights wk, const float *x, const float *qw, float sigma2,
                      float scales[16], float iscales[16], float *wsum)
{
    if ((n != 16 && n != 32) || nmax < 1 || nmax > 32 || !mq_cpu_avx2()) return false;
    return qx_fit16(n, nmax, wk, x, qw, sigma2, scales, NULL, iscales, wsum);
}
#else
bool mq_qx_fit_lanes(int n, int nmax, enum mq_qx_weights wk, const float *x, const float *qw, float sigma2, int ng,
                     float *scales, int8_t *L, float *wsum)
{
    (void)n, (void)nmax, (void)wk, (void)x, (void)qw, (void)sigma2, (void)ng, (void)scales, (void)L, (void)wsum;
    return false;
}
bool mq_qx_fit16_lazy(int n, int nmax, enum mq_qx_weights wk, const float *x, const float *qw, float sigma2,
                      float scales[16], float iscales[16], float *wsum)
{
    (void)n, (void)nmax, (void)wk, (void)x, (void)qw, (void)sigma2, (void)scales, (void)iscales, (void)wsum;
    return false;
}
bool mq_qx_fit_group(int n, int nmax, const float *x, const float *qw, int8_t *L, float *scale)
{
    (void)n, (void)nmax, (void)x, (void)qw, (void)L, (void)scale;
    return false;
}
#endif

void mq_qx_codes(int n, int nmax, const float *x, float iscale, int8_t *L)
{
    for (int i = 0; i < n; i++)
        L[i] = iscale == 0.f ? 0 : (int8_t)(nmax + mq_imax(-nmax, mq_imin(nmax - 1, mq_nearest_int(iscale * x[i]))));
}
