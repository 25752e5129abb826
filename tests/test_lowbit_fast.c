/*
** test_lowbit_fast.c - the AVX2 kernels of IQ4_NL, IQ4_XS (iq4_avx2.c) and Q2_K (q2_k_avx2.c) on
** the edge paths they add, against ggml (tests/helpers/ggml_ref.h) and against our scalar kernels:
**   - the grid search: mq_iq4_mid_index (the lanes' midpoint count) equals best_index_int8 on
**     every float near each midpoint and grid value, on specials and on random values;
**   - rows built to hit those paths: exact ties on grid midpoints (in the first trial and in the
**     later ones, which only compare against the next midpoints), all-equal rows, zeros of both
**     signs, denormals, GROUP_MAX_EPS on both sides, huge values whose squares overflow, blocks
**     whose best scale is found on the last try (IQ4: itry = 7; Q2_K: the last step), Q2_K
**     sub-blocks whose fitted min is clamped to 0 and whose 4-bit scale is 0; shapes with a tail
**     of 1..7 IQ4_NL blocks and an odd number of Q2_K super-blocks;
**   - with importance weights (mq_quantize_weighted: IQ4_NL and IQ4_XS), zero weights included;
**   - Inf and NaN inputs (which ggml is never given by modelq): fast kernel == scalar kernel.
** Without the library the ggml comparisons skip with a message; with CI set they fail.
*/
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml_ref.h"
#include "iq4_lanes.h"
#include "modelq/codec.h"
#include "modelq/imatrix.h"
#include "modelq/quant.h"
#include "qcommon.h"
#include "quant_testdata.h"

static struct mq_ggml G;
static bool have_ggml;
static char why[1200];

static const enum mq_codec codecs[] = {MQ_CODEC_IQ4_NL, MQ_CODEC_IQ4_XS, MQ_CODEC_Q2_K};
#define NCODECS (sizeof codecs / sizeof codecs[0])

static void setup(void)
{
    have_ggml = mq_ggml_open(&G, why, sizeof why);
    for (size_t k = 0; have_ggml && k < NCODECS; k++) G.quantize_init(mq_codec_info(codecs[k])->ggml_type);
}
static void teardown(void)
{
    mq_quant_set_simd(-1);
    mq_ggml_close(&G);
}

static bool need_ggml(void)
{
    if (have_ggml) return true;
    if (getenv("CI")) cr_assert_fail("ggml library required when CI is set: %s", why);
    fprintf(stderr, "SKIP low-bit fast-kernel ggml comparison: %s (set CI to make this a failure)\n", why);
    return false;
}

/* ours: the codec's kernel (fast or reference), or with qw the importance-weighted path */
static void ours(enum mq_codec c, const float *x, size_t n, size_t row_len, bool fast, const float *qw, uint8_t *out)
{
    struct mq_error err;
    if (qw) {
        cr_assert_eq(mq_quantize_weighted(c, x, n, row_len, qw, out, &err), MQ_OK, "%s", err.msg);
    } else {
        struct mq_qbuf q = {out, NULL, NULL};
        cr_assert_eq(mq_quantize(c, NULL, x, n, row_len, &q, fast, &err), MQ_OK, "%s", err.msg);
    }
}

/*
** Compares the fast kernel with the scalar one and (if with_ggml) with ggml on nrows rows of
** row_len; qw: row_len importance weights or NULL. Returns the number of mismatches.
*/
static int check(const char *what, enum mq_codec c, const float *x, size_t nrows, size_t row_len, const float *qw,
                 bool with_ggml)
{
    const size_t n = nrows * row_len, nb = (size_t)mq_codec_data_bytes(c, NULL, n);
    uint8_t *fast = malloc(nb), *ref = malloc(nb), *want = malloc(nb);
    cr_assert(fast && ref && want);
    int bad = 0;
    memset(fast, 0x5a, nb);
    ours(c, x, n, row_len, true, qw, fast);
    /* the scalar kernel: the reference entry, or for weights the same call with SIMD off */
    memset(ref, 0xa5, nb);
    if (qw) mq_quant_set_simd(0);
    ours(c, x, n, row_len, false, qw, ref);
    if (qw) mq_quant_set_simd(-1);
    if (memcmp(fast, ref, nb) != 0) {
        bad++;
        cr_log_error("%s: %s fast kernel differs from the scalar one", what, mq_codec_info(c)->name);
    }
    if (with_ggml) {
        memset(want, 0xa5, nb);
        G.quantize_chunk(mq_codec_info(c)->ggml_type, x, want, 0, (int64_t)nrows, (int64_t)row_len, qw);
        if (memcmp(fast, want, nb) != 0) {
            bad++;
            cr_log_error("%s: %s fast kernel differs from ggml", what, mq_codec_info(c)->name);
        }
    }
    free(fast);
    free(ref);
    free(want);
    return bad;
}

/* ---- the grid search ---- */

Test(lowbit_fast, midpoint_search_is_best_index)
{
    int bad = 0;
    const float special[] = {0.f, -0.f, NAN, -NAN, INFINITY, -INFINITY, FLT_MAX, -FLT_MAX, FLT_MIN, -FLT_MIN,
                             1e-45f, -1e-45f, 4194304.f, -4194304.f, 1e30f, -1e30f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        if (mq_iq4_mid_index(special[i]) != mq_iq4_grid_index(special[i])) {
            bad++;
            cr_log_error("y = %a: search %d, best_index %d", (double)special[i], mq_iq4_mid_index(special[i]),
                         mq_iq4_grid_index(special[i]));
        }
    /* 4000 floats either side of every grid value and every midpoint */
    for (int k = 0; k < 16; k++) {
        for (int half = 0; half < 2; half++) {
            if (half && k == 15) break;
            float c = half ? 0.5f * ((float)mq_iq4nl_values[k] + (float)mq_iq4nl_values[k + 1]) : (float)mq_iq4nl_values[k];
            float lo = c, hi = c;
            for (int s = 0; s < 4000; s++) {
                lo = nextafterf(lo, -INFINITY);
                hi = nextafterf(hi, INFINITY);
                bad += mq_iq4_mid_index(lo) != mq_iq4_grid_index(lo);
                bad += mq_iq4_mid_index(hi) != mq_iq4_grid_index(hi);
            }
            bad += mq_iq4_mid_index(c) != mq_iq4_grid_index(c);
        }
    }
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 12);
    for (int s = 0; s < 2000000; s++) {
        float y = (float)((mq_test_rng_unit(&r) * 2 - 1) * 300);
        bad += mq_iq4_mid_index(y) != mq_iq4_grid_index(y);
    }
    cr_expect_eq(bad, 0, "%d values where the midpoint search differs from best_index", bad);
}

/* y1 (trial 1) and a later y of the same sign: |y| in [|y1| * 120/134, |y1|], as in the kernel */
static int step_case(float y1, float y)
{
    return mq_iq4_step_index(mq_iq4_grid_index(y1), y) != mq_iq4_grid_index(y);
}

Test(lowbit_fast, later_trial_pick_is_best_index)
{
    int bad = 0, n = 0;
    /* every float within 3000 ulps of each midpoint, with trial-1 values up to 134/120 above it */
    for (int k = 0; k < 15; k++) {
        const float m = 0.5f * ((float)mq_iq4nl_values[k] + (float)mq_iq4nl_values[k + 1]);
        float lo = m, hi = m;
        for (int s = 0; s < 3000; s++) {
            lo = nextafterf(lo, -INFINITY);
            hi = nextafterf(hi, INFINITY);
            const float c[3] = {lo, m, hi};
            for (int t = 0; t < 3; t++) {
                if (c[t] == 0) continue;
                for (int f = 0; f <= 16; f++) { /* y1 = y * (1 + f/16 * 14/120), and y1 = y exactly */
                    float y1 = c[t] * (1.f + (float)f / 16.f * (14.f / 120.f));
                    bad += step_case(y1, c[t]);
                    n++;
                }
            }
        }
    }
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 31);
    for (int s = 0; s < 1000000; s++) {
        float y1 = (float)((mq_test_rng_unit(&r) * 2 - 1) * 134);
        float y = y1 * (float)(1 - mq_test_rng_unit(&r) * (14.0 / 134));
        bad += step_case(y1, y);
        n++;
    }
    cr_expect_eq(bad, 0, "%d of %d later-trial picks differ from best_index", bad, n);
}

/* ---- rows that pick the winning trial last ---- */

/* The IQ4 fit of one block (iq4_nl.c / iq4_xs.c), returning the trial that set the scale: -1 the
 * first refit, 0..14 itry = -7..7. */
static int iq4_winning_try(const float *x, const float *w)
{
    float amax = 0, max = 0;
    for (int j = 0; j < 32; j++)
        if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
    if (amax < 1e-15f) return -2;
    float id = 1 / (-max / mq_iq4nl_values[0]), sumqx = 0, sumq2 = 0;
    for (int j = 0; j < 32; j++) {
        float q = mq_iq4nl_values[mq_iq4_grid_index(id * x[j])];
        sumqx += w[j] * q * x[j];
        sumq2 += w[j] * q * q;
    }
    float d = sumqx / sumq2, best = d * sumqx;
    int win = -1;
    for (int itry = -7; itry <= 7; itry++) {
        id = (itry + mq_iq4nl_values[0]) / max;
        sumqx = sumq2 = 0;
        for (int j = 0; j < 32; j++) {
            float q = mq_iq4nl_values[mq_iq4_grid_index(id * x[j])];
            sumqx += w[j] * q * x[j];
            sumq2 += w[j] * q * q;
        }
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
            win = itry + 7;
        }
    }
    return win;
}

/* make_qkx2_quants(16, 3, ..., use_mad) as in Q2_K: the step that set the scale (-1 the first pass). */
static int q2_winning_step(const float *x)
{
    float w[16], min = x[0], max = x[0], sum_w = fabsf(x[0]), sum_x = sum_w * x[0];
    w[0] = fabsf(x[0]);
    for (int i = 1; i < 16; i++) {
        w[i] = fabsf(x[i]);
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) return -2;
    float iscale = 3 / (max - min), scale = 1 / iscale, best_error = 0;
    for (int i = 0; i < 16; i++) {
        int l = mq_imax(0, mq_imin(3, mq_nearest_int(iscale * (x[i] - min))));
        best_error += w[i] * fabsf(scale * l + min - x[i]);
    }
    int win = -1;
    for (int is = 0; is <= 15; is++) {
        iscale = (-0.5f + 0.1f * is + 3) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        uint8_t L[16];
        for (int i = 0; i < 16; i++) {
            int l = mq_imax(0, mq_imin(3, mq_nearest_int(iscale * (x[i] - min))));
            L[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D, this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) this_min = 0, this_scale = sum_xl / sum_l2;
            float err = 0;
            for (int i = 0; i < 16; i++) err += w[i] * fabsf(this_scale * L[i] + this_min - x[i]);
            if (err < best_error) best_error = err, min = this_min, win = is;
        }
    }
    return win;
}

/* Fills x[256] with blocks (of 32 for IQ4, of 16 for Q2_K) whose winner is the last try. */
static void fill_last_try(struct mq_test_rng *r, bool q2, float *x)
{
    const int blk = q2 ? 16 : 32;
    for (int b = 0; b < 256 / blk; b++) {
        float *xb = x + b * blk;
        for (int tries = 0;; tries++) {
            cr_assert(tries < 200000, "no block with the last try winning found");
            float mag = (float)pow(10.0, (double)(mq_test_rng_u64(r) % 7) - 3.0);
            int shape = (int)(mq_test_rng_u64(r) % 3);
            for (int j = 0; j < blk; j++) {
                double v = shape == 0 ? mq_test_rng_normal(r) : shape == 1 ? mq_test_rng_unit(r) * 2 - 1 : mq_test_rng_unit(r);
                xb[j] = (float)v * mag;
            }
            if (q2) {
                if (q2_winning_step(xb) == 15) break;
            } else {
                float w[32];
                for (int j = 0; j < 32; j++) w[j] = xb[j] * xb[j];
                if (iq4_winning_try(xb, w) == 14) break;
            }
        }
    }
}

/* ---- adversarial rows ---- */

enum { ROW = 768 }; /* 3 super-blocks (an odd count: Q2_K fits two at a time), 24 IQ4_NL blocks */

/* kind k of the rows below into x[ROW]; returns its name */
static const char *fill_edge(struct mq_test_rng *r, int k, float *x)
{
    static const float equal[] = {1.f, -1.f, 3.5f, -1e-3f, 1e30f, -1e30f, FLT_MIN, 1e-40f};
    switch (k) {
    case 0: /* block max 127: the first trial's y is x itself; values on midpoints, grid values and their neighbours */
        for (int i = 0; i < ROW; i++) {
            int t = (int)(mq_test_rng_u64(r) % 16);
            float v = (float)mq_iq4nl_values[t];
            if (t < 15 && (mq_test_rng_u64(r) & 1)) v = 0.5f * (v + (float)mq_iq4nl_values[t + 1]);
            int nb = (int)(mq_test_rng_u64(r) % 3);
            if (nb == 1) v = nextafterf(v, -INFINITY);
            if (nb == 2) v = nextafterf(v, INFINITY);
            x[i] = i % 32 == 5 ? ((i / 32) % 2 ? -127.f : 127.f) : v;
        }
        return "grid ties";
    case 1:
        for (int i = 0; i < ROW; i++) x[i] = equal[(i / 256 + (int)(mq_test_rng_u64(r) % 8)) % 8];
        for (int i = 0; i < ROW; i += 32)
            for (int j = 1; j < 32; j++) x[i + j] = x[i];
        return "all-equal blocks";
    case 2:
        for (int i = 0; i < ROW; i++) x[i] = (mq_test_rng_u64(r) & 1) ? 0.f : -0.f;
        for (int i = 256; i < 512; i++) x[i] = (float)(mq_test_rng_normal(r) * 1e-39); /* denormals */
        return "zeros and denormals";
    case 3: /* GROUP_MAX_EPS on both sides, and blocks far below it next to normal ones */
        for (int i = 0; i < ROW; i++) x[i] = (float)(mq_test_rng_normal(r) * 1e-17);
        for (int i = 0; i < ROW; i += 32) {
            int sel = (i / 32) % 4;
            x[i + 7] = sel == 0 ? 1e-15f : sel == 1 ? nextafterf(1e-15f, 0.f) : sel == 2 ? -1e-15f : 1.f;
        }
        return "GROUP_MAX_EPS";
    case 4: /* huge: squares and sums overflow to Inf */
        for (int i = 0; i < ROW; i++) x[i] = (float)(mq_test_rng_normal(r) * 1e37);
        for (int i = 0; i < ROW; i += 50) x[i] = (i / 50) % 2 ? FLT_MAX : -FLT_MAX;
        return "huge";
    case 5: /* huge next to tiny in one block */
        for (int i = 0; i < ROW; i++) x[i] = (float)(mq_test_rng_normal(r) * 1e-30);
        for (int i = 0; i < ROW; i += 16) x[i + 3] = (float)(mq_test_rng_normal(r) * 1e30);
        return "huge and tiny";
    case 6: /* Q2_K: all-positive sub-blocks (the fitted min is clamped to 0), one sub-block far smaller */
        for (int i = 0; i < ROW; i++) x[i] = (float)(mq_test_rng_unit(r) * 4 + 1);
        for (int i = 0; i < ROW; i += 256)
            for (int j = 0; j < 16; j++) x[i + 16 * 5 + j] = (float)(mq_test_rng_unit(r) * 1e-4);
        return "positive, one small sub-block";
    case 7: /* one large negative value among tiny positives */
        for (int i = 0; i < ROW; i++) x[i] = (float)(mq_test_rng_unit(r) * 1e-6);
        for (int i = 0; i < ROW; i += 16) x[i + (int)(mq_test_rng_u64(r) % 16)] = -(float)(mq_test_rng_unit(r) + 0.5);
        return "negative outlier among tiny";
    case 8: /* max |x| = 128 * 2^e: trial itry = -1 has id = -+1 / 2^e exactly, so y lands on midpoints (later-trial ties) */
        for (int i = 0; i < ROW; i += 32) {
            float s = ldexpf(1.f, (int)(mq_test_rng_u64(r) % 21) - 10), sign = (i / 32) % 2 ? 1.f : -1.f;
            for (int j = 0; j < 32; j++) {
                int t = (int)(mq_test_rng_u64(r) % 15);
                float v = (mq_test_rng_u64(r) & 1) ? 0.5f * ((float)mq_iq4nl_values[t] + (float)mq_iq4nl_values[t + 1])
                                                   : (float)mq_iq4nl_values[t];
                x[i + j] = v * s;
            }
            x[i + (int)(mq_test_rng_u64(r) % 32)] = sign * 128.f * s;
        }
        return "later-trial ties";
    case 9:
        fill_last_try(r, false, x);
        fill_last_try(r, false, x + 256);
        fill_last_try(r, true, x + 512);
        return "last try wins (IQ4: 0..511, Q2_K: 512..767)";
    default:
        fill_last_try(r, true, x);
        fill_last_try(r, true, x + 256);
        fill_last_try(r, false, x + 512);
        return "last try wins (Q2_K: 0..511, IQ4: 512..767)";
    }
}
#define NEDGE 11

Test(lowbit_fast, edge_rows_match_ggml, .init = setup, .fini = teardown)
{
    const bool g = need_ggml();
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 4242);
    static float x[4 * ROW];
    int bad = 0;
    for (int k = 0; k < NEDGE; k++) {
        for (int rep = 0; rep < 3; rep++) {
            const char *name = fill_edge(&r, k, x);
            char what[96];
            snprintf(what, sizeof what, "%s #%d", name, rep);
            for (size_t c = 0; c < NCODECS; c++) bad += check(what, codecs[c], x, 1, ROW, NULL, g);
        }
    }
    cr_expect_eq(bad, 0, "%d mismatches", bad);
}

Test(lowbit_fast, shapes_with_tails, .init = setup, .fini = teardown)
{
    const bool g = need_ggml();
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 99);
    int bad = 0;
    /* IQ4_NL rows of 1..15 blocks (tails of 1..7 after the groups of eight); rows of 1..5 super-blocks */
    for (size_t nbk = 1; nbk <= 15; nbk++) {
        size_t rl = 32 * nbk, nrows = 3;
        float *x = malloc(rl * nrows * sizeof(float));
        cr_assert(x);
        for (size_t i = 0; i < rl * nrows; i++) x[i] = (float)mq_test_rng_normal(&r);
        char what[64];
        snprintf(what, sizeof what, "%zu x %zu", nrows, rl);
        bad += check(what, MQ_CODEC_IQ4_NL, x, nrows, rl, NULL, g);
        free(x);
    }
    for (size_t nsb = 1; nsb <= 5; nsb++) {
        size_t rl = 256 * nsb;
        float *x = malloc(rl * sizeof(float));
        cr_assert(x);
        for (size_t i = 0; i < rl; i++) x[i] = (float)(mq_test_rng_normal(&r) * 0.03);
        char what[64];
        snprintf(what, sizeof what, "1 x %zu", rl);
        for (size_t c = 0; c < NCODECS; c++) bad += check(what, codecs[c], x, 1, rl, NULL, g);
        free(x);
    }
    cr_expect_eq(bad, 0, "%d mismatches", bad);
}

Test(lowbit_fast, importance_weights_match_ggml, .init = setup, .fini = teardown)
{
    const bool g = need_ggml();
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 7);
    enum { RL = 512 + 96 }; /* IQ4_NL: 19 blocks (a tail of 3); IQ4_XS uses the first 512 */
    static float x[2 * RL], qw[RL];
    int bad = 0;
    for (int rep = 0; rep < 24; rep++) {
        int k = rep % NEDGE;
        static float row[4 * ROW];
        fill_edge(&r, k, row);
        for (int i = 0; i < 2 * RL; i++) x[i] = row[i % ROW];
        for (int i = 0; i < RL; i++) {
            int t = (int)(mq_test_rng_u64(&r) % 8);
            qw[i] = t == 0 ? 0.f : t == 1 ? 1e-30f : (float)exp(mq_test_rng_normal(&r) * 2);
        }
        if (rep % 6 == 5) memset(qw, 0, sizeof qw); /* all weights zero */
        char what[64];
        snprintf(what, sizeof what, "weighted rep %d (edge kind %d)", rep, k);
        bad += check(what, MQ_CODEC_IQ4_NL, x, 2, RL, qw, g);
        /* IQ4_XS: rows of 512 from the same data */
        static float x2[2 * 512];
        for (int i = 0; i < 2 * 512; i++) x2[i] = x[i];
        bad += check(what, MQ_CODEC_IQ4_XS, x2, 2, 512, qw, g);
    }
    cr_expect_eq(bad, 0, "%d mismatches", bad);
}

Test(lowbit_fast, inf_and_nan_match_the_scalar_kernels, .init = setup, .fini = teardown)
{
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 5);
    static float x[ROW], qw[ROW];
    const float odd[] = {INFINITY, -INFINITY, NAN, -NAN};
    int bad = 0;
    for (int rep = 0; rep < 40; rep++) {
        for (int i = 0; i < ROW; i++) x[i] = (float)mq_test_rng_normal(&r);
        int m = 1 + (int)(mq_test_rng_u64(&r) % 6);
        for (int t = 0; t < m; t++) x[mq_test_rng_u64(&r) % ROW] = odd[mq_test_rng_u64(&r) % 4];
        if (rep % 5 == 0) /* a whole block of NaN / a block of zeros with one Inf */
            for (int j = 0; j < 32; j++) x[64 + j] = rep % 10 ? 0.f : NAN;
        if (rep % 5 == 0 && rep % 10) x[70] = INFINITY;
        for (int i = 0; i < ROW; i++) qw[i] = (float)mq_test_rng_unit(&r);
        char what[64];
        snprintf(what, sizeof what, "non-finite rep %d", rep);
        for (size_t c = 0; c < NCODECS; c++) bad += check(what, codecs[c], x, 1, ROW, NULL, false);
        bad += check(what, MQ_CODEC_IQ4_NL, x, 1, ROW, qw, false);
        bad += check(what, MQ_CODEC_IQ4_XS, x, 1, ROW, qw, false);
    }
    cr_expect_eq(bad, 0, "%d mismatches", bad);
}
