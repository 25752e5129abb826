/*
** q2_k_pool.c - the importance-weighted Q2_K sub-block fits (quantize_row_q2_K_impl:
** make_qkx2_quants(16, 3, x, w, L, &min, Laux, -0.9, 0.05, 36, false) per sub-block of 16) as a
** POOL of AVX2 lanes: one sub-block per lane, each lane at its own step of the 37-step search, and a
** lane whose sub-block is done is refilled with the next one of the batch. The lockstep kernel
** (q2_k_avx2.c's fit_body) runs every step of all eight lanes; most steps cannot change anything,
** and the pool runs only the steps that may.
**
** Why a step can be skipped (make_qkx2_quants' step s: iscale_s = (rmin + rdelta*s + nmax) / (max
** - min) for the current min, codes l_i = clamp(nearest(iscale_s * (x_i - min)), 0, 3), sums,
** D, this_scale, this_min, error, and an update of (best error, scale, min) if the error is lower):
**  1. A step whose codes equal those of the lane's last computed step s0, with the same min, has
**     the same sums, D, this_scale, this_min and error, so it updates iff s0 did. Hence: after an
**     update the next step is always computed (the min moved); after a step that did not update,
**     every later step with unchanged codes is skipped (it would not update either).
**  2. The codes are non-decreasing in s while the min stays: num_s = fl(fl(rmin + fl(rdelta * s)) +
**     nmax) is non-decreasing (every rounding is monotone), d = fl(max - min) > 0, so iscale_s =
**     fl(num_s / d) is too; for XM_i = fl(x_i - min) >= 0 fl(iscale_s * XM_i) is non-decreasing,
**     and nearest (round half to even inside [-2^22, 2^22 - 1], where ggml's bit trick is exact)
**     and the clamp are monotone. An XM_i <= 0 gives a product in [-2^22, 0] (checked: see
**     `safe`), so code 0 at every step; a code 3 stays 3.
**  3. So the codes of s > s0 equal those of s0 if for every "candidate" i (XM_i > 0, l_i < 3)
**     fl(iscale_s * XM_i) < l_i + 0.5. Per computed step R = max_i fl(XM_i * c(l_i)), c(l) =
**     fl(1 / (l + 0.5)) (2, 2/3, 0.4; 0 for l = 3; an XM_i <= 0 gives a product <= 0 that cannot
**     raise R from +0), and Q = fl(fl(d / R) * (1 - 2^-20)); a later step s is skipped while
**     num_s < Q (num_s the exact float the kernel divides by d). Proof, u = 2^-24, for a candidate
**     whose XM_i * c(l) is a normal float: R >= XM_i c(l)(1 - u) >= XM_i (1 - u)^2 / (l + .5);
**     Q <= (d / R)(1 + u)^2 (1 - 16u); fl(iscale_s * XM_i) <= (num_s / d)(1 + u) XM_i (1 + u)
**     < (Q / d)(1 + u)^2 XM_i <= (l + .5)(1 + u)^4 (1 - 16u) / (1 - u)^2 = (l + .5)(1 - 10u + O(u^2))
**     < l + .5. Strict, so a tie at l + .5 (which rounds to even, possibly up) is never reached.
**     If fl(d / R) overflows, d / R > FLT_MAX and every num_s (< 3.9) passes the exact bound too.
**     A candidate whose XM_i * c(l) is below 2^-126 (so also R = +0, Q = +Inf) has XM_i < 2^-124,
**     and iscale_s <= fl(3.86 / d) < 2^66 (d >= 2^-64 is required), so its product stays below
**     2^-58: code 0 at every step. The margin is what the tests' negative control removes: with
**     1 - 2^-30 (which is 1 in float) steps whose codes differ do get skipped.
**  `safe` (per lane, else every step of the lane is computed): the sub-block's x all finite, 2^-64
**  <= d <= FLT_MAX, and fl(lo - min) >= -2^19 d (lo the smallest x): then every product of an
**  XM_i <= 0 is >= -3.86 (1 + u)^2 2^19 > -2^22 at every step and those of the others are <=
**  3.86 (1 + u)^2, all inside the range where ggml's nearest_int is round-half-even (should
**  -2^19 d overflow to -Inf, |fl(lo - min)| <= FLT_MAX < 2^19 d holds anyway: min <= 0, lo finite).
**
** The next step of a lane that did not update is then the smallest s > s0 with num_s >= Q (or 37:
** done), estimated as ceil((Q - 2.1) * 20), stepped down at most twice until num_{s-1} < Q holds
** and else s0 + 1 (num_s is non-decreasing, so every step in between passes too; an estimate that
** is too low, or the fallback, only computes a step that could have been skipped). One division
** (d / R) per lane and step, no branches.
** Every computed step is the scalar step lane-wise (q2_k_avx2.c's rules: separate mul and add,
** true divisions, sums left to right, codes by ggml's bit trick, every `if` a per-lane blend), so
** results are the reference's for any input, NaN and Inf included (such lanes are never `safe`).
**
** The first pass (the initial fit at iscale = nmax / (max - min)) runs eight sub-blocks at a time
** in lockstep before the pool starts; sub-blocks with max == min (ggml returns early) never
** enter it.
*/
#include <float.h>

#include "qcommon.h"

#include "q2_k_lanes.h"

enum { QK_K = 256, SUB = 16, NSTEP = 36, MAXSB = 16 * MQ_Q2K_FIT_MAX };

/* test knobs (mq_q2_k_pool_test_knobs): the skip margin 1 - 2^-margin_exp, "an update forces the
 * next step", the lockstep kernel instead of the pool, the check of every skipped step */
static int knob_margin_exp = 20, knob_update_rule = 1, knob_lockstep = 0, knob_verify = 0;
static uint64_t wrong_skips; /* skipped steps whose codes differed (only counted with verify on) */

void mq_q2_k_pool_test_knobs(int margin_exp, int update_rule, int lockstep, int verify)
{
    __atomic_store_n(&knob_margin_exp, margin_exp, __ATOMIC_RELAXED);
    __atomic_store_n(&knob_update_rule, update_rule, __ATOMIC_RELAXED);
    __atomic_store_n(&knob_lockstep, lockstep, __ATOMIC_RELAXED);
    __atomic_store_n(&knob_verify, verify, __ATOMIC_RELAXED);
}

uint64_t mq_q2_k_pool_wrong_skips(void) { return __atomic_load_n(&wrong_skips, __ATOMIC_RELAXED); }

bool mq_q2_k_pool_lockstep(void) { return __atomic_load_n(&knob_lockstep, __ATOMIC_RELAXED) != 0; }

#if defined(__x86_64__) || defined(__i386__)
#include "avx2_lanes.h"

/* The first pass of each sub-block of the batch (index j = 16 * block + sub-block). */
struct first {
    float min[MAXSB], max[MAXSB], lo[MAXSB], sum_w[MAXSB], sum_x[MAXSB];
    float best[MAXSB], scale[MAXSB], iscale[MAXSB];
    uint8_t flat[MAXSB], fin[MAXSB];
};

/* One pool vector: lane k fits sub-block id[k] and is at step k (37 = done or idle). */
struct pool {
    __m256 X[SUB], W[SUB], XM[SUB];
    __m256 min, max, lo, sum_w, sum_x, best, scale, l_iscale, l_min, fin, live;
    __m256i k;
    int id[8];
};

/* the scalar's rmin + rdelta * s + nmax for a step index per lane */
__attribute__((target("avx2,f16c"))) static inline __m256 step_num(__m256i k)
{
    const __m256 t = _mm256_mul_ps(_mm256_set1_ps(0.05f), _mm256_cvtepi32_ps(k));
    return _mm256_add_ps(_mm256_add_ps(_mm256_set1_ps(-0.9f), t), _mm256_set1_ps(3.f));
}

__attribute__((target("avx2,f16c"))) static inline __m256i code8(__m256 f)
{
    return _mm256_max_epi32(_mm256_setzero_si256(), _mm256_min_epi32(_mm256_set1_epi32(3), mq_avx2_nearest_int(f)));
}

/*
** The first pass of sub-blocks 8q..8q+7 (make_qkx2_quants up to its step loop) from x and the
** weights w (both 16 per sub-block, consecutive), and each sub-block's weight sum into out.
*/
__attribute__((target("avx2,f16c"))) static void first_pass8(const float *x, const float *w, int q, struct first *F,
                                                            struct mq_q2_k_fit *out)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 zero = _mm256_setzero_ps(), inf = _mm256_set1_ps(INFINITY);
    __m256 X[SUB], W[SUB];
    const size_t off = (size_t)128 * (size_t)q;
    mq_avx2_load_t8(x + off, SUB, X);
    mq_avx2_load_t8(x + off + 8, SUB, X + 8);
    mq_avx2_load_t8(w + off, SUB, W);
    mq_avx2_load_t8(w + off + 8, SUB, W + 8);
    __m256 fin = _mm256_castsi256_ps(_mm256_set1_epi32(-1)), sw = zero;
    for (int i = 0; i < SUB; i++) {
        fin = _mm256_and_ps(fin, _mm256_cmp_ps(_mm256_and_ps(X[i], absmask), inf, _CMP_LT_OQ));
        sw = _mm256_add_ps(sw, W[i]); /* quantize_row_q2_K_impl's sw[j], from 0 */
    }
    _mm256_storeu_ps(out[q / 2].sw + 8 * (q % 2), sw);
    __m256 mn = X[0], mx = X[0], sum_w = W[0], sum_x = _mm256_mul_ps(W[0], X[0]);
    for (int i = 1; i < SUB; i++) {
        mn = _mm256_blendv_ps(mn, X[i], _mm256_cmp_ps(X[i], mn, _CMP_LT_OQ));
        mx = _mm256_blendv_ps(mx, X[i], _mm256_cmp_ps(X[i], mx, _CMP_GT_OQ));
        sum_w = _mm256_add_ps(sum_w, W[i]);
        sum_x = _mm256_add_ps(sum_x, _mm256_mul_ps(W[i], X[i]));
    }
    const __m256 lo = mn;
    mn = _mm256_andnot_ps(_mm256_cmp_ps(mn, zero, _CMP_GT_OQ), mn); /* if (min > 0) min = 0 */
    const __m256 iscale = _mm256_div_ps(_mm256_set1_ps(3.f), _mm256_sub_ps(mx, mn));
    const __m256 sc = _mm256_div_ps(_mm256_set1_ps(1.f), iscale);
    __m256 err = zero;
    for (int i = 0; i < SUB; i++) {
        const __m256 lf = _mm256_cvtepi32_ps(code8(_mm256_mul_ps(iscale, _mm256_sub_ps(X[i], mn))));
        __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(sc, lf), mn), X[i]);
        err = _mm256_add_ps(err, _mm256_mul_ps(W[i], _mm256_mul_ps(diff, diff)));
    }
    const int j = 8 * q;
    _mm256_storeu_ps(F->min + j, mn);
    _mm256_storeu_ps(F->max + j, mx);
    _mm256_storeu_ps(F->lo + j, lo);
    _mm256_storeu_ps(F->sum_w + j, sum_w);
    _mm256_storeu_ps(F->sum_x + j, sum_x);
    _mm256_storeu_ps(F->best + j, err);
    _mm256_storeu_ps(F->scale + j, sc);
    _mm256_storeu_ps(F->iscale + j, iscale);
    const int flat = _mm256_movemask_ps(_mm256_cmp_ps(mx, mn, _CMP_EQ_OQ)), ok = _mm256_movemask_ps(fin);
    for (int k = 0; k < 8; k++) {
        F->flat[j + k] = (uint8_t)((flat >> k) & 1);
        F->fin[j + k] = (uint8_t)((ok >> k) & 1);
    }
}

/* lane `lane` of the vector at v (in memory) = f: one scalar store */
static inline void put_lane(void *v, int lane, float f) { memcpy((char *)v + 4 * lane, &f, sizeof f); }

/*
** Puts sub-block j (x, w: its 16 values and weights) at step 0 into lane `lane` of P, XM included
** (fl(x - min), the lane-wise subtraction): scalar stores into the vectors in memory, read again
** only at the next step.
*/
__attribute__((target("avx2,f16c"))) static void lane_load(struct pool *P, int lane, int j, const float *x,
                                                          const float *w, const struct first *F)
{
    const float mn = F->min[j];
    for (int i = 0; i < SUB; i++) {
        put_lane(&P->X[i], lane, x[i]);
        put_lane(&P->W[i], lane, w[i]);
        put_lane(&P->XM[i], lane, x[i] - mn);
    }
    put_lane(&P->min, lane, mn);
    put_lane(&P->max, lane, F->max[j]);
    put_lane(&P->lo, lane, F->lo[j]);
    put_lane(&P->sum_w, lane, F->sum_w[j]);
    put_lane(&P->sum_x, lane, F->sum_x[j]);
    put_lane(&P->best, lane, F->best[j]);
    put_lane(&P->scale, lane, F->scale[j]);
    put_lane(&P->l_iscale, lane, F->iscale[j]);
    put_lane(&P->l_min, lane, mn);
    put_lane(&P->fin, lane, mq_f32_from_bits(F->fin[j] ? 0xffffffffu : 0u));
    put_lane(&P->live, lane, mq_f32_from_bits(0xffffffffu));
    put_lane(&P->k, lane, 0.f); /* int 0 */
    P->id[lane] = j;
}

/*
** NPOOL pool vectors stepped together, phase by phase: a step is one long chain of dependent
** operations per vector (sums, divisions, the error, the next step's search), so independent
** vectors fill each other's gaps. All NPOOL vectors draw from the same queue of sub-blocks.
*/
enum { NPOOL = 4 };
#define FOR_P _Pragma("GCC unroll 4") for (int p = 0; p < NPOOL; p++)

/*
** One step of every lane of P[0..NPOOL) (each lane its own step k), then each lane's next step.
** Returns the lanes that finished (their k passed 36), bit 8p + lane.
*/
__attribute__((target("avx2,f16c"))) static unsigned pool_step(struct pool P[NPOOL], float margin, int update_rule,
                                                                uint64_t *wrong)
{
    const __m256 zero = _mm256_setzero_ps();
    /* c(l) = 1 / (l + 0.5) for the codes 0, 1, 2 and 0 for 3, in both 128-bit halves */
    const __m256 ctab = _mm256_setr_ps(2.f, 2.f / 3.f, 0.4f, 0.f, 2.f, 2.f / 3.f, 0.4f, 0.f);
    __m256 Lf[NPOOL][SUB];
    __m256 iscale[NPOOL], sl[NPOOL], sl2[NPOOL], sxl[NPOOL], R[NPOOL], D[NPOOL], dpos[NPOOL], upd[NPOOL];
    __m256 this_scale[NPOOL], this_min[NPOOL], e[NPOOL];
    FOR_P iscale[p] = _mm256_div_ps(step_num(P[p].k), _mm256_sub_ps(P[p].max, P[p].min));
    FOR_P {
        __m256 a = zero, a2 = zero, ax = zero, r = zero;
        for (int i = 0; i < SUB; i++) {
            const __m256 xm = P[p].XM[i];
            const __m256i li = code8(_mm256_mul_ps(iscale[p], xm));
            const __m256 lf = _mm256_cvtepi32_ps(li);
            Lf[p][i] = lf;
            r = _mm256_max_ps(_mm256_mul_ps(xm, _mm256_permutevar_ps(ctab, li)), r); /* r kept on equal: +0 */
            const __m256 wl = _mm256_mul_ps(P[p].W[i], lf);
            a = _mm256_add_ps(a, wl);
            a2 = _mm256_add_ps(a2, _mm256_mul_ps(wl, lf));
            ax = _mm256_add_ps(ax, _mm256_mul_ps(wl, P[p].X[i]));
        }
        sl[p] = a, sl2[p] = a2, sxl[p] = ax, R[p] = r;
    }
    __m256 any = zero;
    FOR_P {
        D[p] = mq_avx2_qkx2_det(P[p].sum_w, sl[p], sl2[p]);
        dpos[p] = _mm256_and_ps(P[p].live, _mm256_cmp_ps(D[p], zero, _CMP_GT_OQ));
        any = _mm256_or_ps(any, dpos[p]);
        upd[p] = zero;
    }
    if (!_mm256_testz_ps(any, any)) {
        FOR_P {
            mq_avx2_qkx2_solve(P[p].sum_w, P[p].sum_x, sl[p], sl2[p], sxl[p], D[p], &this_scale[p], &this_min[p]);
            e[p] = zero;
        }
        for (int i = 0; i < SUB; i++) /* the error chains side by side */
            FOR_P {
                const __m256 diff =
                    _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(this_scale[p], Lf[p][i]), this_min[p]), P[p].X[i]);
                e[p] = _mm256_add_ps(e[p], _mm256_mul_ps(P[p].W[i], _mm256_mul_ps(diff, diff)));
            }
        FOR_P {
            upd[p] = _mm256_and_ps(dpos[p], _mm256_cmp_ps(e[p], P[p].best, _CMP_LT_OQ));
            if (_mm256_testz_ps(upd[p], upd[p])) continue;
            P[p].best = _mm256_blendv_ps(P[p].best, e[p], upd[p]);
            P[p].scale = _mm256_blendv_ps(P[p].scale, this_scale[p], upd[p]);
            P[p].l_iscale = _mm256_blendv_ps(P[p].l_iscale, iscale[p], upd[p]);
            P[p].l_min = _mm256_blendv_ps(P[p].l_min, P[p].min, upd[p]);
            P[p].min = _mm256_blendv_ps(P[p].min, this_min[p], upd[p]);
            for (int i = 0; i < SUB; i++) P[p].XM[i] = _mm256_sub_ps(P[p].X[i], P[p].min);
        }
    }
    /* the next step: s0 + 1, or for a safe lane that did not update the first s with num_s >= Q */
    __m256 dn[NPOOL], safe[NPOOL], Q[NPOOL];
    __m256i k1[NPOOL], ks[NPOOL];
    FOR_P {
        k1[p] = _mm256_add_epi32(P[p].k, _mm256_set1_epi32(1));
        dn[p] = _mm256_sub_ps(P[p].max, P[p].min); /* d after the update (the same where none) */
        __m256 sf = _mm256_and_ps(P[p].live, P[p].fin);
        if (update_rule) sf = _mm256_andnot_ps(upd[p], sf);
        sf = _mm256_and_ps(sf, _mm256_cmp_ps(dn[p], _mm256_set1_ps(0x1p-64f), _CMP_GE_OQ));
        sf = _mm256_and_ps(sf, _mm256_cmp_ps(dn[p], _mm256_set1_ps(FLT_MAX), _CMP_LE_OQ));
        /* fl(lo - min) >= -2^19 d: every product iscale_s * XM_i >= -2^21 (iscale_s < 3.86 (1 + u) / d) */
        const __m256 low = _mm256_sub_ps(P[p].lo, P[p].min);
        safe[p] = _mm256_and_ps(sf, _mm256_cmp_ps(low, _mm256_mul_ps(dn[p], _mm256_set1_ps(-0x1p19f)), _CMP_GE_OQ));
        Q[p] = _mm256_mul_ps(_mm256_div_ps(dn[p], R[p]), _mm256_set1_ps(margin));
        /* estimate: num_s ~ 2.1 + 0.05 s < Q; NaN/Inf go to 37, then clamped to [k1, 37] */
        __m256 est = _mm256_ceil_ps(_mm256_mul_ps(_mm256_sub_ps(Q[p], _mm256_set1_ps(2.1f)), _mm256_set1_ps(20.f)));
        est = _mm256_max_ps(_mm256_min_ps(est, _mm256_set1_ps(37.f)), _mm256_cvtepi32_ps(k1[p]));
        ks[p] = _mm256_blendv_epi8(k1[p], _mm256_cvttps_epi32(est), _mm256_castps_si256(safe[p]));
    }
    /* two steps down at most, then s0 + 1 (conservative); branch-free */
    FOR_P {
        const __m256i si = _mm256_castps_si256(safe[p]), one = _mm256_set1_epi32(1);
        for (int t = 0; t < 2; t++) {
            const __m256i kd = _mm256_sub_epi32(ks[p], one);
            __m256i m = _mm256_and_si256(si, _mm256_cmpgt_epi32(ks[p], k1[p]));
            m = _mm256_and_si256(m, _mm256_castps_si256(_mm256_cmp_ps(step_num(kd), Q[p], _CMP_NLT_UQ)));
            ks[p] = _mm256_add_epi32(ks[p], m);
        }
        const __m256i bad = _mm256_and_si256(_mm256_cmpgt_epi32(ks[p], k1[p]),
                                             _mm256_castps_si256(_mm256_cmp_ps(
                                                 step_num(_mm256_sub_epi32(ks[p], one)), Q[p], _CMP_NLT_UQ)));
        ks[p] = _mm256_blendv_epi8(ks[p], k1[p], bad);
    }
    if (wrong) /* tests: each skipped step's codes, by the scalar's operations, against this step's */
        for (int p = 0; p < NPOOL; p++) {
            float xm[SUB][8], lf[SUB][8], d8[8];
            int k0[8], k8[8], sf = _mm256_movemask_ps(safe[p]);
            for (int i = 0; i < SUB; i++) {
                _mm256_storeu_ps(xm[i], P[p].XM[i]);
                _mm256_storeu_ps(lf[i], Lf[p][i]);
            }
            _mm256_storeu_ps(d8, dn[p]);
            _mm256_storeu_si256((__m256i *)k0, P[p].k);
            _mm256_storeu_si256((__m256i *)k8, ks[p]);
            for (int lane = 0; lane < 8; lane++) {
                if (!((sf >> lane) & 1)) continue;
                for (int st = k0[lane] + 1; st < k8[lane]; st++) {
                    float num = -0.9f + 0.05f * (float)st;
                    num = num + 3.f;
                    const float is = num / d8[lane];
                    for (int i = 0; i < SUB; i++)
                        if ((float)mq_imax(0, mq_imin(3, mq_nearest_int(is * xm[i][lane]))) != lf[i][lane]) {
                            (*wrong)++;
                            break;
                        }
                }
            }
        }
    unsigned done = 0;
    FOR_P {
        P[p].k = ks[p];
        const __m256i over = _mm256_cmpgt_epi32(ks[p], _mm256_set1_epi32(NSTEP));
        done |= (unsigned)_mm256_movemask_ps(_mm256_and_ps(P[p].live, _mm256_castsi256_ps(over))) << (8 * p);
    }
    return done;
}

/* The fits of the nsb sub-blocks of x (weights w) after their first pass F, into out. */
__attribute__((target("avx2,f16c"))) static void pool_run(const float *x, const float *w, int nsb,
                                                         const struct first *F, struct mq_q2_k_fit *out)
{
    const float margin = 1.f - ldexpf(1.f, -__atomic_load_n(&knob_margin_exp, __ATOMIC_RELAXED));
    const int update_rule = __atomic_load_n(&knob_update_rule, __ATOMIC_RELAXED);
    const int verify = __atomic_load_n(&knob_verify, __ATOMIC_RELAXED);
    uint64_t wrong = 0;
    struct pool P[NPOOL];
    int next = 0;
    memset(P, 0, sizeof P);
    unsigned live = 0;
    for (int p = 0; p < NPOOL; p++) {
        P[p].k = _mm256_set1_epi32(NSTEP + 1);
        for (int lane = 0; lane < 8; lane++) {
            while (next < nsb && F->flat[next]) next++;
            if (next == nsb) break;
            lane_load(&P[p], lane, next, x + SUB * next, w + SUB * next, F);
            next++;
        }
        live |= (unsigned)_mm256_movemask_ps(P[p].live) << (8 * p);
    }
    while (live) {
        const unsigned done = pool_step(P, margin, update_rule, verify ? &wrong : NULL);
        if (!done) continue;
        for (int p = 0; p < NPOOL; p++) {
            const unsigned dp = (done >> (8 * p)) & 0xff;
            if (!dp) continue;
            float sc[8], mn[8], li[8], lm[8];
            _mm256_storeu_ps(sc, P[p].scale);
            _mm256_storeu_ps(mn, P[p].min);
            _mm256_storeu_ps(li, P[p].l_iscale);
            _mm256_storeu_ps(lm, P[p].l_min);
            for (int lane = 0; lane < 8; lane++) {
                if (!((dp >> lane) & 1)) continue;
                const int j = P[p].id[lane];
                struct mq_q2_k_fit *o = &out[j / SUB];
                o->scale[j % SUB] = sc[lane];
                o->the_min[j % SUB] = -mn[lane];
                o->l_iscale[j % SUB] = li[lane];
                o->l_min[j % SUB] = lm[lane];
                while (next < nsb && F->flat[next]) next++;
                if (next < nsb) {
                    lane_load(&P[p], lane, next, x + SUB * next, w + SUB * next, F);
                    next++;
                } else { /* idle: out of the live set for good */
                    const __m256 m = _mm256_castsi256_ps(
                        _mm256_cmpeq_epi32(_mm256_set1_epi32(lane), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
                    P[p].live = _mm256_andnot_ps(m, P[p].live);
                }
            }
            live = (live & ~(0xffu << (8 * p))) | ((unsigned)_mm256_movemask_ps(P[p].live) << (8 * p));
        }
    }
    if (wrong) __atomic_fetch_add(&wrong_skips, wrong, __ATOMIC_RELAXED);
}

/*
** quantize_row_q2_K_impl's weights and fits for n super-blocks: per block sigma2 = sum(x^2) / 256
** (left to right from 0), w = qw * sqrtf(sigma2 + x^2) lane-wise in the scalar's order; the first
** pass of every sub-block, the flat ones' results, then the pool.
*/
__attribute__((target("avx2,f16c"))) static void pool_fit(const float *x, const float *qw, int n,
                                                         struct mq_q2_k_fit *out)
{
    float weights[MQ_Q2K_FIT_MAX * QK_K], sigma2[MQ_Q2K_FIT_MAX];
    int b0 = 0;
    for (; b0 + 8 <= n; b0 += 8) { /* eight blocks' chains side by side, block k in lane k */
        __m256 acc = _mm256_setzero_ps(), t[8];
        for (int j = 0; j < QK_K; j += 8) {
            mq_avx2_load_t8(x + QK_K * b0 + j, QK_K, t);
            for (int i = 0; i < 8; i++) acc = _mm256_add_ps(acc, _mm256_mul_ps(t[i], t[i]));
        }
        _mm256_storeu_ps(sigma2 + b0, _mm256_div_ps(acc, _mm256_set1_ps((float)QK_K)));
    }
    for (int b = b0; b < n; b++) {
        float s = 0;
        for (int j = 0; j < QK_K; j++) s += x[QK_K * b + j] * x[QK_K * b + j];
        sigma2[b] = s / QK_K;
    }
    for (int b = 0; b < n; b++) {
        const __m256 vs2 = _mm256_set1_ps(sigma2[b]);
        for (int i = 0; i < QK_K; i += 8) {
            const __m256 xv = _mm256_loadu_ps(x + QK_K * b + i);
            const __m256 r = _mm256_sqrt_ps(_mm256_add_ps(vs2, _mm256_mul_ps(xv, xv)));
            _mm256_storeu_ps(weights + QK_K * b + i, _mm256_mul_ps(_mm256_loadu_ps(qw + QK_K * b + i), r));
        }
    }
    struct first F;
    const int nsb = SUB * n;
    for (int q = 0; q < nsb / 8; q++) first_pass8(x, weights, q, &F, out);
    for (int b = 0; b < n; b++) out[b].flat = 0;
    for (int j = 0; j < nsb; j++) {
        if (!F.flat[j]) continue;
        /* max == min: make_qkx2_quants returns scale 0, the_min = -min of the first pass */
        struct mq_q2_k_fit *o = &out[j / SUB];
        o->scale[j % SUB] = 0.f;
        o->the_min[j % SUB] = -F.min[j];
        o->l_iscale[j % SUB] = F.iscale[j];
        o->l_min[j % SUB] = F.min[j];
        o->flat |= 1 << (j % SUB);
    }
    pool_run(x, weights, nsb, &F, out);
}

#define MQ_Q2K_POOL 1
#endif

bool mq_q2_k_fit_weighted_pool(const float *x, const float *qw, int n, struct mq_q2_k_fit *out)
{
#ifdef MQ_Q2K_POOL
    if (mq_cpu_avx2() && n >= 1 && n <= MQ_Q2K_FIT_MAX) {
        pool_fit(x, qw, n, out);
        return true;
    }
#endif
    (void)x, (void)qw, (void)n, (void)out;
    return false;
}
