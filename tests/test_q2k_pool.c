/*
** test_q2k_pool.c - the pool of lanes for the importance-weighted Q2_K fits (q2_k_pool.c), which
** skips the steps of make_qkx2_quants' search whose codes provably equal the last computed step's,
** against the lockstep lanes (q2_k_avx2.c, which run every step and are held to ggml by
** test_imatrix_fast.c): every field of every sub-block's fit bit for bit, and the Q2_K bytes
** against ggml's own quantize_row_q2_K_impl (tests/helpers/ggml_ref.h) and the scalar loops.
**
** The adversarial set puts values exactly on (and one or two ulps beside) the rounding boundaries
** of the search: for a step s and the min in effect at s (found by a scalar replay of the search,
** repeated because moving a value moves the mins), x_i = min + (l + 0.5) / iscale_s nudged by -2..2
** ulps, so iscale_s * (x_i - min) lands on or beside l + 0.5; sub-blocks scaled by powers of two
** down to subnormal and up near FLT_MAX / 8; all-negative and all-positive ones; ties; weights
** with zeros, one hot, all zero and over 12 decades. The negative controls make the skip test
** unsound on purpose (a 2^-30 margin, or skipping right after an update) and must then produce
** mismatches on the same set: the set is sharp enough to catch a broken skip.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml_ref.h"
#include "modelq/codec.h"
#include "modelq/imatrix.h"
#include "modelq/quant.h"
#include "q2_k_lanes.h"
#include "qcommon.h"
#include "quant_testdata.h"

enum { QK = 256, SUBS = 16 };

static struct mq_ggml G;
static bool have_ggml;
static char why[1200];

static void setup(void) { have_ggml = mq_ggml_open(&G, why, sizeof why); }
static void teardown(void)
{
    mq_q2_k_pool_test_knobs(20, 1, 0, 0);
    mq_ggml_close(&G);
}

TestSuite(q2k_pool, .init = setup, .fini = teardown);

static bool lanes_here(void)
{
    if (mq_cpu_avx2()) return true;
    fprintf(stderr, "SKIP q2k_pool: no AVX2 here\n");
    return false;
}

/* The scalar's iscale at step s for range d (rmin + rdelta * s + nmax, then / d). */
static float step_iscale(int s, float d)
{
    float num = -0.9f + 0.05f * (float)s;
    num = num + 3.f;
    return num / d;
}

/*
** make_qkx2_quants(16, 3, x, w, ..., -0.9, 0.05, 36, false) replayed in scalar: min_at[s] the min
** in effect at step s (for s = 0..36). Returns false when the sub-block is flat (max == min).
*/
static bool replay_mins(const float *x, const float *w, float *max_out, float min_at[37])
{
    float mn = x[0], mx = x[0], sum_w = w[0], sum_x = w[0] * x[0];
    for (int i = 1; i < 16; i++) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (mn > 0) mn = 0;
    if (mx == mn) return false;
    *max_out = mx;
    float is = 3.f / (mx - mn), sc = 1.f / is, best = 0;
    for (int i = 0; i < 16; i++) {
        const int l = mq_imax(0, mq_imin(3, mq_nearest_int(is * (x[i] - mn))));
        const float diff = sc * (float)l + mn - x[i];
        best += w[i] * (diff * diff);
    }
    for (int s = 0; s <= 36; s++) {
        min_at[s] = mn;
        is = step_iscale(s, mx - mn);
        float sl = 0, sl2 = 0, sxl = 0;
        int L[16];
        for (int i = 0; i < 16; i++) {
            L[i] = mq_imax(0, mq_imin(3, mq_nearest_int(is * (x[i] - mn))));
            const float wl = w[i] * (float)L[i];
            sl += wl;
            sl2 += wl * (float)L[i];
            sxl += wl * x[i];
        }
        const float D = sum_w * sl2 - sl * sl;
        if (!(D > 0)) continue;
        float ts = (sum_w * sxl - sum_x * sl) / D, tm = (sl2 * sum_x - sl * sxl) / D;
        if (tm > 0) {
            tm = 0;
            ts = sxl / sl2;
        }
        float e = 0;
        for (int i = 0; i < 16; i++) {
            const float diff = ts * (float)L[i] + tm - x[i];
            e += w[i] * (diff * diff);
        }
        if (e < best) {
            best = e;
            mn = tm;
        }
    }
    return true;
}

/* quantize_row_q2_K_impl's weights of one super-block */
static void block_weights(const float *x, const float *qw, float *w)
{
    float s = 0;
    for (int j = 0; j < QK; j++) s += x[j] * x[j];
    const float sigma2 = s / QK;
    for (int j = 0; j < QK; j++) w[j] = qw[j] * sqrtf(sigma2 + x[j] * x[j]);
}

static float nudge(float v, int ulps)
{
    for (; ulps > 0; ulps--) v = nextafterf(v, INFINITY);
    for (; ulps < 0; ulps++) v = nextafterf(v, -INFINITY);
    return v;
}

#define W_KINDS 7
static void fill_weights(struct mq_test_rng *r, int kind, float *qw, size_t n)
{
    const size_t hot = (size_t)(mq_test_rng_u64(r) % n);
    for (size_t i = 0; i < n; i++) {
        const double u = mq_test_rng_unit(r);
        switch (kind) {
        case 0: qw[i] = (float)(0.01 + u); break;
        case 1: qw[i] = (float)exp(mq_test_rng_normal(r) * 6.4); break;
        case 2: qw[i] = u < 0.4 ? 0.f : (float)(u * 3.0); break;
        case 3: qw[i] = i % 16 == hot % 16 ? 1.f : 0.f; break; /* one hot per sub-block */
        case 4: qw[i] = 0.f; break;
        case 5: qw[i] = 1.f; break;
        default: qw[i] = i == hot ? 1.f : 0.f; break;
        }
    }
}

/*
** One super-block x[256] (importances qw fixed) whose sub-blocks sit on rounding boundaries of
** the search: per sub-block a shape (signs, spread), then 3 rounds of: replay the search, pick a
** step s and 1..6 values, put each at min_s + (l + 0.5) / iscale_s nudged by -2..2 ulps.
*/
static void fill_boundary_block(struct mq_test_rng *r, float *x, const float *qw)
{
    float w[QK];
    for (int j = 0; j < SUBS; j++) {
        float *xs = x + 16 * j;
        const int shape = (int)(mq_test_rng_u64(r) % 4);
        const float M = ldexpf((float)(1 + mq_test_rng_unit(r)), (int)(mq_test_rng_u64(r) % 9) - 4);
        for (int i = 0; i < 16; i++) {
            const float u = (float)mq_test_rng_unit(r);
            xs[i] = shape == 0 ? u * M                                   /* min 0 */
                    : shape == 1 ? (2 * u - 1) * M                      /* both signs */
                    : shape == 2 ? -u * M                               /* all negative */
                                 : (float)mq_test_rng_normal(r) * M;    /* Gaussian */
        }
        xs[mq_test_rng_u64(r) % 16] = M;
    }
    for (int round = 0; round < 3; round++) {
        block_weights(x, qw, w);
        for (int j = 0; j < SUBS; j++) {
            float *xs = x + 16 * j, mx, min_at[37];
            if (!replay_mins(xs, w + 16 * j, &mx, min_at)) continue;
            const int s = (int)(mq_test_rng_u64(r) % 37), count = 1 + (int)(mq_test_rng_u64(r) % 6);
            const float is = step_iscale(s, mx - min_at[s]);
            for (int c = 0; c < count; c++) {
                const int i = (int)(mq_test_rng_u64(r) % 16), l = (int)(mq_test_rng_u64(r) % 3);
                const float v = nudge(min_at[s] + (l + 0.5f) / is, (int)(mq_test_rng_u64(r) % 5) - 2);
                if (xs[i] != mx && v < mx && isfinite(v)) xs[i] = v;
            }
        }
    }
}

/* How many sub-blocks of x[256 n] have a product iscale_s * (x_i - min_s) within 2 ulps of some
 * l + 0.5 (l = 0..2) at a step s of their replayed search: the set hits the boundaries. */
static int boundary_hits(const float *x, const float *qw, int n)
{
    int hits = 0;
    float w[QK];
    for (int b = 0; b < n; b++) {
        block_weights(x + QK * b, qw + QK * b, w);
        for (int j = 0; j < SUBS; j++) {
            const float *xs = x + QK * b + 16 * j;
            float mx, min_at[37];
            if (!replay_mins(xs, w + 16 * j, &mx, min_at)) continue;
            bool hit = false;
            for (int s = 0; s <= 36 && !hit; s++) {
                const float is = step_iscale(s, mx - min_at[s]);
                for (int i = 0; i < 16 && !hit; i++) {
                    const float p = is * (xs[i] - min_at[s]);
                    for (int l = 0; l < 3; l++)
                        if (p >= nudge(l + 0.5f, -2) && p <= nudge(l + 0.5f, 2)) hit = true;
                }
            }
            hits += hit;
        }
    }
    return hits;
}

/* bit-for-bit equality of two fits of n super-blocks; returns the differing sub-blocks */
static int diff_fits(const struct mq_q2_k_fit *a, const struct mq_q2_k_fit *b, int n)
{
    int bad = 0;
    for (int k = 0; k < n; k++) {
        if (a[k].flat != b[k].flat) bad++;
        for (int j = 0; j < SUBS; j++) {
            const bool same = mq_f32_bits(a[k].scale[j]) == mq_f32_bits(b[k].scale[j]) &&
                              mq_f32_bits(a[k].the_min[j]) == mq_f32_bits(b[k].the_min[j]) &&
                              mq_f32_bits(a[k].sw[j]) == mq_f32_bits(b[k].sw[j]) &&
                              mq_f32_bits(a[k].l_iscale[j]) == mq_f32_bits(b[k].l_iscale[j]) &&
                              mq_f32_bits(a[k].l_min[j]) == mq_f32_bits(b[k].l_min[j]);
            bad += !same;
        }
    }
    return bad;
}

/* the pool (with the given skip knobs, every skipped step checked: mq_q2_k_pool_wrong_skips)
 * against the lockstep lanes on n super-blocks */
static int pool_vs_lockstep(const float *x, const float *qw, int n, int margin_exp, int update_rule)
{
    struct mq_q2_k_fit pool[MQ_Q2K_FIT_MAX], lock[MQ_Q2K_FIT_MAX];
    memset(pool, 0x5a, sizeof pool);
    memset(lock, 0xa5, sizeof lock);
    mq_q2_k_pool_test_knobs(margin_exp, update_rule, 0, 1);
    cr_assert(mq_q2_k_fit_weighted_avx2(x, qw, n, pool));
    mq_q2_k_pool_test_knobs(20, 1, 1, 0);
    cr_assert(mq_q2_k_fit_weighted_avx2(x, qw, n, lock));
    mq_q2_k_pool_test_knobs(20, 1, 0, 0);
    return diff_fits(pool, lock, n);
}

/* power-of-two scalings of a whole batch: exact, so the boundaries stay boundaries (down to the
 * subnormals, where they blur, and the guards of the skip test: d < 2^-64, huge ranges) */
static const int scalings[] = {0, -150 + 40, -126, -100, -66, -64, -62, 40, 64, 100, 124};
#define NSCALE (sizeof scalings / sizeof scalings[0])

/* The adversarial batches: nb batches of MQ_Q2K_FIT_MAX super-blocks, every weight kind and
 * scaling. Returns the mismatching sub-blocks with the given knobs; *subs, *hits count. */
static int adversarial(uint64_t seed, int nb, int margin_exp, int update_rule, long *subs, long *hits)
{
    struct mq_test_rng r;
    mq_test_rng_seed(&r, seed);
    enum { N = QK * MQ_Q2K_FIT_MAX };
    float *x = malloc(N * sizeof *x), *qw = malloc(N * sizeof *qw), *xs = malloc(N * sizeof *xs);
    cr_assert(x && qw && xs);
    int bad = 0;
    for (int t = 0; t < nb; t++) {
        fill_weights(&r, t % W_KINDS, qw, N);
        for (int b = 0; b < MQ_Q2K_FIT_MAX; b++) fill_boundary_block(&r, x + QK * b, qw + QK * b);
        if (hits) *hits += boundary_hits(x, qw, MQ_Q2K_FIT_MAX);
        for (size_t k = 0; k < NSCALE; k++) {
            for (int i = 0; i < N; i++) xs[i] = ldexpf(x[i], scalings[k]);
            bad += pool_vs_lockstep(xs, qw, MQ_Q2K_FIT_MAX, margin_exp, update_rule);
            if (subs) *subs += SUBS * MQ_Q2K_FIT_MAX;
        }
    }
    free(x);
    free(qw);
    free(xs);
    return bad;
}

Test(q2k_pool, adversarial_boundaries_match_lockstep)
{
    if (!lanes_here()) return;
    long subs = 0, hits = 0;
    const uint64_t wrong0 = mq_q2_k_pool_wrong_skips();
    const int bad = adversarial(20261205, 28, 20, 1, &subs, &hits);
    const uint64_t wrong = mq_q2_k_pool_wrong_skips() - wrong0;
    fprintf(stderr, "q2k_pool: %ld adversarial sub-blocks (%ld of %ld unscaled on a boundary), %d differ, %llu wrong skips\n",
            subs, hits, subs / (long)NSCALE, bad, (unsigned long long)wrong);
    cr_expect(hits * 2 > subs / (long)NSCALE, "the set should mostly sit on boundaries: %ld of %ld", hits,
              subs / (long)NSCALE);
    cr_expect_eq(wrong, 0, "%llu skipped steps had codes unlike the last computed step's", (unsigned long long)wrong);
    cr_expect_eq(bad, 0, "%d sub-block fits of the pool differ from the lockstep lanes", bad);
}

/*
** The negative controls: an unsound skip test must be caught by the same set. A margin of 2^-30
** (in float 1 - 2^-30 is 1: no margin at all) skips steps whose codes differ; whether that changes
** a fit depends on the skipped step winning, so the count that must be non-zero is the wrong skips.
** Skipping right after an update (the old step's codes, the new min) changes fits outright.
*/
Test(q2k_pool, negative_control_thin_margin)
{
    if (!lanes_here()) return;
    const uint64_t wrong0 = mq_q2_k_pool_wrong_skips();
    const int bad = adversarial(20261205, 28, 30, 1, NULL, NULL);
    const uint64_t wrong = mq_q2_k_pool_wrong_skips() - wrong0;
    fprintf(stderr, "q2k_pool: margin 2^-30: %llu wrong skips, %d sub-blocks differ\n", (unsigned long long)wrong, bad);
    cr_expect_gt(wrong, 0, "a 2^-30 margin should skip steps whose codes differ on the adversarial set");
}

Test(q2k_pool, negative_control_skip_after_update)
{
    if (!lanes_here()) return;
    const uint64_t wrong0 = mq_q2_k_pool_wrong_skips();
    const int bad = adversarial(20261205, 28, 20, 0, NULL, NULL);
    const uint64_t wrong = mq_q2_k_pool_wrong_skips() - wrong0;
    fprintf(stderr, "q2k_pool: skipping after an update: %llu wrong skips, %d sub-blocks differ\n",
            (unsigned long long)wrong, bad);
    cr_expect_gt(wrong, 0);
    cr_expect_gt(bad, 0, "skipping the step after an update should produce mismatches");
}

/* Random rows of every quant_testdata kind, every weight kind, batches of 1..16 super-blocks
 * (odd ones leave lanes idle at the end), NaN/Inf sprinkled in some. */
Test(q2k_pool, random_rows_match_lockstep)
{
    if (!lanes_here()) return;
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 77);
    enum { N = QK * MQ_Q2K_FIT_MAX };
    float *x = malloc(N * sizeof *x), *qw = malloc(N * sizeof *qw);
    cr_assert(x && qw);
    int bad = 0;
    for (int t = 0; t < 160; t++) {
        const int n = 1 + t % MQ_Q2K_FIT_MAX;
        mq_test_fill_row(&r, t % MQ_TEST_ROW_KINDS, x, (size_t)QK * (size_t)n);
        fill_weights(&r, (t / 3) % W_KINDS, qw, (size_t)QK * (size_t)n);
        if (t % 10 == 9) { /* non-finite values: lanes never skip there, the bits must still agree */
            x[mq_test_rng_u64(&r) % (QK * (uint64_t)n)] = NAN;
            x[mq_test_rng_u64(&r) % (QK * (uint64_t)n)] = INFINITY;
            x[mq_test_rng_u64(&r) % (QK * (uint64_t)n)] = -INFINITY;
        }
        const int b = pool_vs_lockstep(x, qw, n, 20, 1);
        if (b) cr_log_error("%s rows, weights kind %d, %d super-blocks: %d sub-blocks differ",
                            mq_test_row_kind_name(t % MQ_TEST_ROW_KINDS), (t / 3) % W_KINDS, n, b);
        bad += b;
    }
    free(x);
    free(qw);
    cr_expect_eq(bad, 0);
}

/* The bytes: mq_quantize_weighted (the pool) against ggml and against the scalar loops on
 * adversarial rows of 16 and 21 super-blocks (a full batch and a short one). */
Test(q2k_pool, adversarial_bytes_match_ggml)
{
    if (!lanes_here()) return;
    if (!have_ggml) {
        if (getenv("CI")) cr_assert_fail("ggml library required when CI is set: %s", why);
        fprintf(stderr, "SKIP q2k_pool ggml comparison: %s\n", why);
    }
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 4242);
    const size_t rows = 3, nbs[] = {16, 21};
    for (size_t v = 0; v < 2; v++) {
        const size_t row = QK * nbs[v], n = rows * row;
        const size_t nbytes = (size_t)mq_codec_data_bytes(MQ_CODEC_Q2_K, NULL, n);
        float *x = malloc(n * sizeof *x), *qw = malloc(row * sizeof *qw);
        uint8_t *fast = malloc(nbytes), *slow = malloc(nbytes), *want = malloc(nbytes);
        cr_assert(x && qw && fast && slow && want);
        for (int wk = 0; wk < W_KINDS; wk++) {
            fill_weights(&r, wk, qw, row);
            for (size_t rr = 0; rr < rows; rr++)
                for (size_t b = 0; b < nbs[v]; b++) fill_boundary_block(&r, x + rr * row + QK * b, qw + QK * b);
            struct mq_error err = {0};
            cr_assert_eq(mq_quantize_weighted(MQ_CODEC_Q2_K, x, n, row, qw, fast, &err), MQ_OK, "%s", err.msg);
            mq_quant_set_simd(0);
            cr_assert_eq(mq_quantize_weighted(MQ_CODEC_Q2_K, x, n, row, qw, slow, &err), MQ_OK, "%s", err.msg);
            mq_quant_set_simd(-1);
            cr_expect(memcmp(fast, slow, nbytes) == 0, "pool vs scalar bytes differ (weights kind %d)", wk);
            if (have_ggml) {
                G.quantize_chunk(mq_codec_info(MQ_CODEC_Q2_K)->ggml_type, x, want, 0, (int64_t)rows, (int64_t)row,
                                 qw);
                cr_expect(memcmp(fast, want, nbytes) == 0, "pool vs ggml bytes differ (weights kind %d)", wk);
            }
        }
        free(x);
        free(qw);
        free(fast);
        free(slow);
        free(want);
    }
}
