/*
** q2_k_avx2.c - Q2_K with AVX2, without importance weights (q2_k.c's reference, ggml's
** quantize_row_q2_K_ref) and with them (the fits and codes of weighted.c's q2_k_block, ggml's
** quantize_row_q2_K_impl): the make_qkx2_quants fits of a super-block's 16 sub-blocks of 16 run
** eight at a time, sub-block k of a half in lane k (sub-blocks 0..7 and 8..15), two super-blocks at
** once. One fit body serves both searches (fit_body: plain = weights |x|, rmin -0.5, rdelta 0.1,
** 15 steps, error |diff|; weighted = the given weights, rmin -0.9, rdelta 0.05, 36 steps, error
** diff^2). The weighted fits normally run on q2_k_pool.c's pool of lanes instead (it skips the
** steps that cannot change anything); this lockstep form stays as the tests' reference for it.
**
** Every float operation is the scalar one, lane-wise and in the scalar order (w*l*l as (w*l)*l,
** separate mul and add, true divisions, sums left to right over the 16 elements) and every `if`
** is a per-lane blend, so each lane's scale, min and codes equal the reference's for any input,
** NaN and Inf included. The codes of a step are ggml's nearest_int bit trick, or the float round
** where that is provably the same (round_ok: every lane's iscale * (x - min) within
** [-2^22, 2^22 - 1] and no NaN; outside it, e.g. once a fitted min is clamped to 0 and
** iscale * (x - min) passes 2^22, nearest_int returns mantissa bits and only the trick agrees).
**
** A step's codes are clamp(nearest(iscale * (x - min))) for that step's iscale and min, so the
** winning pair (l_iscale, l_min) is kept instead of the codes, and the codes are formed again from
** it only for a sub-block whose 4-bit scale is 0 (the only case where ggml keeps the fit's codes).
*/
#include "qcommon.h"

#include "q2_k_lanes.h"

enum { QK_K = 256, SUB = 16 };

#if defined(__x86_64__) || defined(__i386__)
#include "avx2_lanes.h"

/*
** G sets of eight sub-blocks (the halves of two super-blocks) fitted side by side: a step's sums,
** its error and the next step's iscale are one long chain of dependent operations per set (the
** next step starts from the min this one may have set), so independent sets fill the gaps. Each
** set's element loop runs on its own (interleaving all four needs more registers than there are,
** and a spilled sum puts a store-load into every add of its chain).
*/
enum { G = 4 };
#define FOR_G _Pragma("GCC unroll 4") for (int g = 0; g < G; g++)

__attribute__((target("avx2,f16c"))) static inline __m256i code8(__m256 f)
{
    return _mm256_max_epi32(_mm256_setzero_si256(), _mm256_min_epi32(_mm256_set1_epi32(3), mq_avx2_nearest_int(f)));
}

/*
** A step's codes when every lane's iscale * (x - min) lies in [-2^22, 2^22 - 1] (and no x is NaN):
** there nearest_int is round-half-even, so the float round gives the same code, and the clamp to
** 0..3 runs on the float bits (a negative float, -0 included, is a negative int32; non-negative
** floats order as their bits), leaving the code as a float ready for the sums.
*/
__attribute__((target("avx2,f16c"))) static inline __m256 code8_round(__m256 f)
{
    __m256i r = _mm256_castps_si256(_mm256_round_ps(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    r = _mm256_max_epi32(r, _mm256_setzero_si256());
    r = _mm256_min_epi32(r, _mm256_castps_si256(_mm256_set1_ps(3.f)));
    return _mm256_castsi256_ps(r);
}

/* true when code8_round equals code8 in every lane for all x of a set: lo..hi its smallest and
 * largest x, no NaN among them (iscale * (x - min) is monotone in x, so its extremes are at lo, hi) */
__attribute__((target("avx2,f16c"))) static inline bool round_ok(__m256 iscale, __m256 lo, __m256 hi, __m256 min)
{
    const __m256 a = _mm256_mul_ps(iscale, _mm256_sub_ps(lo, min));
    const __m256 b = _mm256_mul_ps(iscale, _mm256_sub_ps(hi, min));
    const __m256 low = _mm256_set1_ps(-4194304.f), high = _mm256_set1_ps(4194303.f);
    /* both ends against both bounds: a lane whose min moved above its max has iscale < 0 */
    __m256 ok = _mm256_and_ps(_mm256_cmp_ps(a, low, _CMP_GE_OQ), _mm256_cmp_ps(a, high, _CMP_LE_OQ));
    ok = _mm256_and_ps(ok, _mm256_and_ps(_mm256_cmp_ps(b, low, _CMP_GE_OQ), _mm256_cmp_ps(b, high, _CMP_LE_OQ)));
    return _mm256_movemask_ps(ok) == 0xff;
}

/*
** make_qkx2_quants(16, 3, x, w, L, &min, Laux, rmin, rdelta, nstep, use_mad) for the 16
** sub-blocks of each of the super-blocks xs[0] and xs[1] (which may be the same), in one of two
** settings (weighted is a constant in each caller, so the other's code folds away):
**   plain    (quantize_row_q2_K_ref): w = |x|, rmin -0.5, rdelta 0.1, 15 steps, error |diff|;
**   weighted (quantize_row_q2_K_impl): w = ws[b] (256 weights per super-block), rmin -0.9,
**            rdelta 0.05, 36 steps, error diff^2; also each sub-block's weight sum (sw).
*/
__attribute__((target("avx2,f16c"), always_inline)) static inline void
fit_body(const float *const xs[2], const float *const ws[2], struct mq_q2_k_fit out[2], const bool weighted)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 signbit = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    const __m256 zero = _mm256_setzero_ps();
    const float rmin = weighted ? -0.9f : -0.5f, rdelta = weighted ? 0.05f : 0.1f;
    const int nstep = weighted ? 36 : 15;
    /* XM = X - min for the lane's current min (formed again when a lane's min moves) */
    __m256 X[SUB][G], W[SUB][G], XM[SUB][G], Lf[SUB][G];
    __m256 min[G], max[G], lo[G], sum_w[G], sum_x[G], flat[G], flat_min[G];
    __m256 scale[G], best_error[G], l_iscale[G], l_min[G];
    bool nan_free[G];

    FOR_G {
        __m256 t[SUB];
        const size_t off = 128 * (size_t)(g % 2);
        const float *xg = xs[g / 2] + off;
        mq_avx2_load_t8(xg, SUB, t);
        mq_avx2_load_t8(xg + 8, SUB, t + 8);
        __m256 ord = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
        for (int i = 0; i < SUB; i++) {
            X[i][g] = t[i];
            ord = _mm256_and_ps(ord, _mm256_cmp_ps(t[i], t[i], _CMP_ORD_Q));
            if (!weighted) W[i][g] = _mm256_and_ps(t[i], absmask);
        }
        nan_free[g] = _mm256_movemask_ps(ord) == 0xff;
        if (weighted) {
            mq_avx2_load_t8(ws[g / 2] + off, SUB, t);
            mq_avx2_load_t8(ws[g / 2] + off + 8, SUB, t + 8);
            __m256 sw = zero; /* quantize_row_q2_K_impl's sw[j], from 0 */
            for (int i = 0; i < SUB; i++) {
                W[i][g] = t[i];
                sw = _mm256_add_ps(sw, t[i]);
            }
            _mm256_storeu_ps(out[g / 2].sw + 8 * (g % 2), sw);
        }
        __m256 mn = X[0][g], mx = X[0][g], sw = W[0][g], sx = _mm256_mul_ps(W[0][g], X[0][g]);
        for (int i = 1; i < SUB; i++) {
            mn = _mm256_blendv_ps(mn, X[i][g], _mm256_cmp_ps(X[i][g], mn, _CMP_LT_OQ));
            mx = _mm256_blendv_ps(mx, X[i][g], _mm256_cmp_ps(X[i][g], mx, _CMP_GT_OQ));
            sw = _mm256_add_ps(sw, W[i][g]);
            sx = _mm256_add_ps(sx, _mm256_mul_ps(W[i][g], X[i][g]));
        }
        lo[g] = mn;                                                     /* smallest x, for round_ok */
        mn = _mm256_andnot_ps(_mm256_cmp_ps(mn, zero, _CMP_GT_OQ), mn); /* if (min > 0) min = 0 */
        min[g] = flat_min[g] = mn;
        max[g] = mx;
        sum_w[g] = sw;
        sum_x[g] = sx;
        flat[g] = _mm256_cmp_ps(mx, mn, _CMP_EQ_OQ);
        for (int i = 0; i < SUB; i++) XM[i][g] = _mm256_sub_ps(X[i][g], mn);

        const __m256 iscale = _mm256_div_ps(_mm256_set1_ps(3.f), _mm256_sub_ps(mx, mn));
        const __m256 sc = _mm256_div_ps(_mm256_set1_ps(1.f), iscale);
        __m256 err = zero;
        for (int i = 0; i < SUB; i++) {
            __m256 lf = _mm256_cvtepi32_ps(code8(_mm256_mul_ps(iscale, XM[i][g])));
            __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(sc, lf), mn), X[i][g]);
            diff = weighted ? _mm256_mul_ps(diff, diff) : _mm256_and_ps(diff, absmask);
            err = _mm256_add_ps(err, _mm256_mul_ps(W[i][g], diff));
        }
        scale[g] = sc;
        best_error[g] = err;
        l_iscale[g] = iscale;
        l_min[g] = mn;
    }

    for (int is = 0; is <= nstep; is++) {
        const __m256 num = _mm256_set1_ps(rmin + rdelta * (float)is + 3.f); /* rmin + rdelta * is + nmax */
        __m256 iscale[G], sum_l[G], sum_l2[G], sum_xl[G], D[G], dpos[G];
        FOR_G {
            iscale[g] = _mm256_div_ps(num, _mm256_sub_ps(max[g], min[g]));
            sum_l[g] = sum_l2[g] = sum_xl[g] = zero;
        }
        FOR_G {
            __m256 sl = zero, sl2 = zero, sxl = zero;
            if (nan_free[g] && round_ok(iscale[g], lo[g], max[g], min[g])) {
                for (int i = 0; i < SUB; i++) {
                    const __m256 lf = code8_round(_mm256_mul_ps(iscale[g], XM[i][g]));
                    Lf[i][g] = lf;
                    const __m256 wl = _mm256_mul_ps(W[i][g], lf);
                    sl = _mm256_add_ps(sl, wl);
                    sl2 = _mm256_add_ps(sl2, _mm256_mul_ps(wl, lf));
                    sxl = _mm256_add_ps(sxl, _mm256_mul_ps(wl, X[i][g]));
                }
            } else {
                for (int i = 0; i < SUB; i++) {
                    const __m256 lf = _mm256_cvtepi32_ps(code8(_mm256_mul_ps(iscale[g], XM[i][g])));
                    Lf[i][g] = lf;
                    const __m256 wl = _mm256_mul_ps(W[i][g], lf);
                    sl = _mm256_add_ps(sl, wl);
                    sl2 = _mm256_add_ps(sl2, _mm256_mul_ps(wl, lf));
                    sxl = _mm256_add_ps(sxl, _mm256_mul_ps(wl, X[i][g]));
                }
            }
            sum_l[g] = sl, sum_l2[g] = sl2, sum_xl[g] = sxl;
        }
        __m256 any = zero;
        FOR_G {
            D[g] = mq_avx2_qkx2_det(sum_w[g], sum_l[g], sum_l2[g]);
            dpos[g] = _mm256_cmp_ps(D[g], zero, _CMP_GT_OQ);
            any = _mm256_or_ps(any, dpos[g]);
        }
        if (_mm256_testz_ps(any, any)) continue; /* no lane has D > 0 */
        __m256 this_scale[G], this_min[G], cur_error[G];
        FOR_G {
            mq_avx2_qkx2_solve(sum_w[g], sum_x[g], sum_l[g], sum_l2[g], sum_xl[g], D[g], &this_scale[g], &this_min[g]);
            cur_error[g] = zero;
        }
        FOR_G {
            __m256 e = zero;
            for (int i = 0; i < SUB; i++) {
                __m256 diff =
                    _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(this_scale[g], Lf[i][g]), this_min[g]), X[i][g]);
                diff = weighted ? _mm256_mul_ps(diff, diff) : _mm256_and_ps(diff, absmask);
                e = _mm256_add_ps(e, _mm256_mul_ps(W[i][g], diff));
            }
            cur_error[g] = e;
        }
        FOR_G {
            const __m256 upd = _mm256_and_ps(dpos[g], _mm256_cmp_ps(cur_error[g], best_error[g], _CMP_LT_OQ));
            if (_mm256_testz_ps(upd, upd)) continue;
            best_error[g] = _mm256_blendv_ps(best_error[g], cur_error[g], upd);
            scale[g] = _mm256_blendv_ps(scale[g], this_scale[g], upd);
            l_iscale[g] = _mm256_blendv_ps(l_iscale[g], iscale[g], upd);
            l_min[g] = _mm256_blendv_ps(l_min[g], min[g], upd);
            min[g] = _mm256_blendv_ps(min[g], this_min[g], upd);
            for (int i = 0; i < SUB; i++) XM[i][g] = _mm256_sub_ps(X[i][g], min[g]);
        }
    }
    /* max == min lanes return early in the scalar code: scale 0, -min of the first pass */
    out[0].flat = out[1].flat = 0;
    FOR_G {
        struct mq_q2_k_fit *o = &out[g / 2];
        const int h = 8 * (g % 2);
        _mm256_storeu_ps(o->scale + h, _mm256_andnot_ps(flat[g], scale[g]));
        _mm256_storeu_ps(o->the_min + h, _mm256_xor_ps(_mm256_blendv_ps(min[g], flat_min[g], flat[g]), signbit));
        _mm256_storeu_ps(o->l_iscale + h, l_iscale[g]);
        _mm256_storeu_ps(o->l_min + h, l_min[g]);
        o->flat |= _mm256_movemask_ps(flat[g]) << h;
    }
}

/* quantize_row_q2_K_ref's fits (no importance weights) */
__attribute__((target("avx2,f16c"))) static void fit_superblocks(const float *const xs[2], struct mq_q2_k_fit out[2])
{
    const float *const none[2] = {NULL, NULL};
    fit_body(xs, none, out, false);
}

/* 16 codes (int32 lanes, two vectors) to 16 bytes in order */
__attribute__((target("avx2,f16c"))) static inline void store_codes16(__m256i a, __m256i b, uint8_t *L)
{
    __m256i w = _mm256_packs_epi32(a, b); /* a0-3 b0-3 | a4-7 b4-7 as int16 */
    __m128i lo = _mm256_castsi256_si128(w), hi = _mm256_extracti128_si256(w, 1);
    __m128i bytes = _mm_packus_epi16(lo, hi); /* a0-3 b0-3 a4-7 b4-7 */
    bytes = _mm_shuffle_epi32(bytes, _MM_SHUFFLE(3, 1, 2, 0));
    _mm_storeu_si128((__m128i *)L, bytes);
}

/* The scales of one super-block from its fits (q2_k.c's q2_k_block): sc[16] at y, d and dmin. */
static void q2_k_put_scales(const struct mq_q2_k_fit *fp, uint8_t *y)
{
    const struct mq_q2_k_fit f = *fp;
    uint8_t *sc = y;
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < SUB; j++) {
        if (f.scale[j] > max_scale) max_scale = f.scale[j];
        if (f.the_min[j] > max_min) max_min = f.the_min[j];
    }
    memset(sc, 0, SUB);
    if (max_scale > 0) {
        float iscale = 15.f / max_scale;
        for (int j = 0; j < SUB; j++) sc[j] = (uint8_t)mq_nearest_int(iscale * f.scale[j]);
    }
    mq_put_f16(y + 80, max_scale > 0 ? max_scale / 15.f : 0.f);
    if (max_min > 0) {
        float iscale = 15.f / max_min;
        /* shifted as unsigned: the same low byte without UB for a negative (NaN) code */
        for (int j = 0; j < SUB; j++) sc[j] |= (uint8_t)((unsigned)mq_nearest_int(iscale * f.the_min[j]) << 4);
    }
    mq_put_f16(y + 82, max_min > 0 ? max_min / 15.f : 0.f);
}

/*
** The rest of a super-block once sc[16], d and dmin are in y (the weighted and the plain kernel
** alike): the codes of x[256], then qs[64] at y + 16.
*/
__attribute__((target("avx2,f16c"))) static void q2_k_codes(const float *x, const struct mq_q2_k_fit *fp, uint8_t *y)
{
    const struct mq_q2_k_fit f = *fp;
    const uint8_t *sc = y;
    uint8_t *qs = y + 16;
    const float dd = mq_get_f16(y + 80), dmin = mq_get_f16(y + 82);
    uint8_t L[QK_K];
    for (int j = 0; j < SUB; j++) {
        const float *xj = x + SUB * j;
        const __m256 x0 = _mm256_loadu_ps(xj), x1 = _mm256_loadu_ps(xj + 8);
        const float d = dd * (sc[j] & 0xF);
        __m256i a, b;
        if (d) { /* (x + dm) / d, rounded, clamped */
            const __m256 vd = _mm256_set1_ps(d), vdm = _mm256_set1_ps(dmin * (sc[j] >> 4));
            a = code8(_mm256_div_ps(_mm256_add_ps(x0, vdm), vd));
            b = code8(_mm256_div_ps(_mm256_add_ps(x1, vdm), vd));
        } else if ((f.flat >> j) & 1) {
            a = b = _mm256_setzero_si256();
        } else { /* the winning step's codes */
            const __m256 is = _mm256_set1_ps(f.l_iscale[j]), m = _mm256_set1_ps(f.l_min[j]);
            a = code8(_mm256_mul_ps(is, _mm256_sub_ps(x0, m)));
            b = code8(_mm256_mul_ps(is, _mm256_sub_ps(x1, m)));
        }
        store_codes16(a, b, L + SUB * j);
    }
    /* qs[32h + l] = L[128h + l] | L[.. + 32] << 2 | L[.. + 64] << 4 | L[.. + 96] << 6 (codes <= 3: the
     * 16-bit shifts move no bit across a byte) */
    for (int h = 0; h < 2; h++) {
        const uint8_t *Lh = L + 128 * h;
        __m256i q = _mm256_loadu_si256((const __m256i *)Lh);
        q = _mm256_or_si256(q, _mm256_slli_epi16(_mm256_loadu_si256((const __m256i *)(Lh + 32)), 2));
        q = _mm256_or_si256(q, _mm256_slli_epi16(_mm256_loadu_si256((const __m256i *)(Lh + 64)), 4));
        q = _mm256_or_si256(q, _mm256_slli_epi16(_mm256_loadu_si256((const __m256i *)(Lh + 96)), 6));
        _mm256_storeu_si256((__m256i *)(qs + 32 * h), q);
    }
}

#define MQ_Q2K_AVX2 1
#endif

bool mq_q2_k_quantize_avx2(const float *src, size_t nb, uint8_t *data)
{
#ifdef MQ_Q2K_AVX2
    if (mq_cpu_avx2()) {
        struct mq_q2_k_fit f[2];
        for (size_t b = 0; b < nb; b += 2) { /* two at a time, the last one alone fitted twice */
            const float *xs[2] = {src + b * QK_K, src + (b + 1 < nb ? b + 1 : b) * QK_K};
            fit_superblocks(xs, f);
            for (size_t k = 0; k < 2 && b + k < nb; k++) {
                uint8_t *y = data + (b + k) * sizeof(struct mq_block_q2_K);
                q2_k_put_scales(&f[k], y);
                q2_k_codes(xs[k], &f[k], y);
            }
        }
        return true;
    }
#endif
    (void)src, (void)nb, (void)data;
    return false;
}

#ifdef MQ_Q2K_AVX2
/*
** quantize_row_q2_K_impl's weights for n (1, 2) super-blocks: per block sigma2 = sum(x^2) / 256
** (left to right from 0; the two blocks' chains interleaved), w = qw * sqrtf(sigma2 + x^2) lane-wise
** in the scalar's order; then the fits (a lone block fitted twice).
*/
__attribute__((target("avx2,f16c"))) static void fit_weighted(const float *x, const float *qw, int n,
                                                             struct mq_q2_k_fit out[2])
{
    float weights[2][QK_K];
    const float *xs[2] = {x, x + (n > 1 ? QK_K : 0)}, *qs[2] = {qw, qw + (n > 1 ? QK_K : 0)};
    float s0 = 0, s1 = 0;
    for (int j = 0; j < QK_K; j++) {
        s0 += xs[0][j] * xs[0][j];
        s1 += xs[1][j] * xs[1][j];
    }
    const float sigma2[2] = {s0 / QK_K, s1 / QK_K};
    for (int b = 0; b < 2; b++) {
        const __m256 vs2 = _mm256_set1_ps(sigma2[b]);
        for (int i = 0; i < QK_K; i += 8) {
            const __m256 xv = _mm256_loadu_ps(xs[b] + i);
            const __m256 r = _mm256_sqrt_ps(_mm256_add_ps(vs2, _mm256_mul_ps(xv, xv)));
            _mm256_storeu_ps(weights[b] + i, _mm256_mul_ps(_mm256_loadu_ps(qs[b] + i), r));
        }
    }
    const float *const ws[2] = {weights[0], weights[1]};
    fit_body(xs, ws, out, true);
}
#endif

static uint64_t weighted_blocks; /* mq_q2_k_weighted_fast_blocks */

uint64_t mq_q2_k_weighted_fast_blocks(void) { return __atomic_load_n(&weighted_blocks, __ATOMIC_RELAXED); }

bool mq_q2_k_fit_weighted_avx2(const float *x, const float *qw, int n, struct mq_q2_k_fit *out)
{
#ifdef MQ_Q2K_AVX2
    if (mq_cpu_avx2() && n >= 1 && n <= MQ_Q2K_FIT_MAX) {
        if (mq_q2_k_pool_lockstep()) /* tests: the lockstep lanes, two super-blocks at a time */
            for (int b = 0; b < n; b += 2) fit_weighted(x + b * QK_K, qw + b * QK_K, n - b >= 2 ? 2 : 1, out + b);
        else
            mq_q2_k_fit_weighted_pool(x, qw, n, out);
        __atomic_fetch_add(&weighted_blocks, (uint64_t)n, __ATOMIC_RELAXED);
        return true;
    }
#endif
    (void)x, (void)qw, (void)n, (void)out;
    return false;
}

void mq_q2_k_codes_avx2(const float *x, const struct mq_q2_k_fit *f, uint8_t *y)
{
#ifdef MQ_Q2K_AVX2
    q2_k_codes(x, f, y);
#else
    (void)x, (void)f, (void)y;
#endif
}
