/*
** test_qx_lanes.c - the make_qx_quants lane kernels (src/quant/qx_lanes.c) and the weighted
** Q4_0, Q5_0, Q3_K and Q6_K paths that run on them (src/quant/weighted.c), proven byte-identical:
**   kernel level: mq_qx_fit_lanes for n 16 and 32, nmax 4, 8, 16, 32, the three weight forms and
**     1..16 groups, and mq_qx_fit_group, against the scalar mq_make_qx_quants (scales bit for
**     bit, every code); NaN/Inf refused; the lanes must actually run on an AVX2 machine.
**   end to end: mq_quantize_weighted against ggml_quantize_chunk(type, ..., imatrix) from the
**     pinned libggml-base (tests/helpers/ggml_ref.h), with the SIMD path on and off (with
**     MODELQ_NO_SIMD set only off), over many data and importance distributions, odd row counts
**     and, for Q4_0/Q5_0, row lengths of 32*k that are not multiples of 256 (tails of 1..15
**     blocks after the batches of 16). Non-finite rows: fast and scalar must agree.
** A fixed seed plus a printed random one (MODELQ_DIFF_SEED=<n> replays). Without the library
** the ggml comparisons skip; with CI set they fail.
*/
#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml_ref.h"
#include "modelq/codec.h"
#include "modelq/imatrix.h"
#include "modelq/quant.h"
#include "quant_testdata.h"
#include "qx_lanes.h"

static struct mq_ggml G;
static bool have_ggml;
static char why[1200];

static void setup(void) { have_ggml = mq_ggml_open(&G, why, sizeof why); }
static void teardown(void)
{
    mq_quant_set_simd(-1);
    mq_ggml_close(&G);
}

static bool no_simd_env(void)
{
    const char *e = getenv("MODELQ_NO_SIMD");
    return e && *e && strcmp(e, "0") != 0;
}

/* SIMD as the environment asks (MODELQ_NO_SIMD: the scalar path only), else auto */
static void simd_default(void) { mq_quant_set_simd(no_simd_env() ? 0 : -1); }

/* ---- inputs ---- */

#define DATA_KINDS (MQ_TEST_ROW_KINDS + 4)
/* quant_testdata's row kinds, then: log-normal over decades with random signs, all zero, values
 * around GROUP_MAX_EPS (1e-15), and exact multiples of 1/2 (ties for the rounding) */
static void fill_data(struct mq_test_rng *r, int kind, float *x, size_t n)
{
    if (kind < MQ_TEST_ROW_KINDS) {
        mq_test_fill_row(r, kind, x, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const double u = mq_test_rng_unit(r);
        switch (kind - MQ_TEST_ROW_KINDS) {
        case 0: x[i] = (float)((u < 0.5 ? -1 : 1) * exp(mq_test_rng_normal(r) * 3.0)); break;
        case 1: x[i] = 0.0f; break;
        case 2: x[i] = (float)((u - 0.5) * ((i / 16) % 3 == 0 ? 2e-15 : (i / 16) % 3 == 1 ? 1e-15 : 4e-15)); break;
        default: x[i] = (float)(0.5 * (double)((int)(u * 33.0) - 16)); break;
        }
    }
}

#define IM_KINDS 9
static const char *const im_names[IM_KINDS] = {"uniform", "lognormal", "zeros", "tiny", "huge",
                                               "all-zero", "one-hot", "halves", "ties"};

/* importances of n columns (finite, >= 0) */
static void fill_imatrix(struct mq_test_rng *r, int kind, float *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const double u = mq_test_rng_unit(r);
        switch (kind) {
        case 0: w[i] = (float)(0.5 + u); break;
        case 1: w[i] = (float)exp(mq_test_rng_normal(r) * 4.0); break; /* ~12 decades */
        case 2: w[i] = u < 0.3 ? 0.0f : (float)(u * 3.0); break;
        case 3: w[i] = (float)(u * 1e-30); break;
        case 4: w[i] = (float)(u * 1e12 + 1.0); break;
        case 5: w[i] = 0.0f; break;
        case 6: w[i] = (i % 61 == 7) ? 1.0f : 0.0f; break;
        case 7: w[i] = (i % 32) < 16 ? 0.5f : 2.0f; break; /* the halves of each block weighted apart */
        default: w[i] = 1.0f; break;
        }
    }
}

/* ---- kernel level ---- */

static float sum_sq(const float *x, size_t n)
{
    float s = 0;
    for (size_t j = 0; j < n; j++) s += x[j] * x[j];
    return s;
}

/* ng groups of n: the lanes against mq_make_qx_quants per group; returns mismatching groups */
static int kernel_case(const char *what, int n, int nmax, enum mq_qx_weights wk, const float *x, const float *qw,
                       int ng)
{
    const float sigma2 = sum_sq(x, (size_t)(n * ng)) / (float)(n * ng);
    float scales[16], wsum[16], w[32];
    int8_t L[16 * 32], Lr[32];
    memset(L, 0x7f, sizeof L);
    cr_assert(mq_qx_fit_lanes(n, nmax, wk, x, qw, sigma2, ng, scales, L, wsum), "%s: lanes refused finite data",
              what);
    float zscales[16], iscales[16], zwsum[16];
    const bool lazy_ok = ng == 16;
    if (lazy_ok)
        cr_assert(mq_qx_fit16_lazy(n, nmax, wk, x, qw, sigma2, zscales, iscales, zwsum), "%s: lazy lanes refused",
                  what);
    int bad = 0;
    for (int g = 0; g < ng; g++) {
        const float *xg = x + n * g;
        float sw = 0;
        for (int i = 0; i < n; i++) {
            w[i] = wk == MQ_QX_W_X2 ? xg[i] * xg[i]
                   : wk == MQ_QX_W_RAW ? qw[n * g + i]
                                       : qw[n * g + i] * sqrtf(sigma2 + xg[i] * xg[i]);
            sw += w[i];
        }
        const float want = mq_make_qx_quants(n, nmax, xg, Lr, w);
        /* the lazy form: the same scale and weight sum, and the same codes from its iscale */
        int8_t Lz[32];
        if (lazy_ok) mq_qx_codes(n, nmax, xg, iscales[g], Lz);
        if (memcmp(&want, &scales[g], sizeof want) || memcmp(Lr, L + n * g, (size_t)n) ||
            memcmp(&sw, &wsum[g], sizeof sw) ||
            (lazy_ok && (memcmp(&want, &zscales[g], sizeof want) || memcmp(Lr, Lz, (size_t)n) ||
                         memcmp(&sw, &zwsum[g], sizeof sw)))) {
            if (bad < 3)
                cr_log_error("%s: group %d of %d: scale %a vs %a, wsum %a vs %a", what, g, ng, (double)scales[g],
                             (double)want, (double)wsum[g], (double)sw);
            bad++;
        }
    }
    return bad;
}

Test(qx_lanes, kernel_matches_scalar_every_shape)
{
    mq_quant_set_simd(-1);
    if (!mq_cpu_avx2()) {
        cr_skip_test("no AVX2 on this CPU: the lane kernels cannot run here");
        return;
    }
    const int ns[] = {16, 32}, nmaxes[] = {4, 8, 16, 32}, ngs[] = {1, 2, 7, 8, 9, 15, 16};
    const enum mq_qx_weights wks[] = {MQ_QX_W_X2, MQ_QX_W_RAW, MQ_QX_W_SIGMA};
    uint64_t seeds[2] = {20251205, mq_test_pick_seed()};
    fprintf(stderr, "qx_lanes: kernel cases with seeds %" PRIu64 " and %" PRIu64 " (replay: MODELQ_DIFF_SEED)\n",
            seeds[0], seeds[1]);
    float x[16 * 32], qw[16 * 32];
    int bad = 0;
    long cases = 0;
    for (int si = 0; si < 2; si++) {
        struct mq_test_rng r;
        mq_test_rng_seed(&r, seeds[si]);
        for (int dk = 0; dk < DATA_KINDS; dk++)
            for (size_t a = 0; a < 2; a++)
                for (size_t b = 0; b < 4; b++)
                    for (size_t c = 0; c < 3; c++) {
                        const int n = ns[a], nmax = nmaxes[b];
                        const int ng = ngs[(size_t)(dk + si + (int)c) % 7];
                        fill_data(&r, dk, x, sizeof x / sizeof x[0]);
                        fill_imatrix(&r, (dk + (int)b + (int)c) % IM_KINDS, qw, sizeof qw / sizeof qw[0]);
                        char what[120];
                        snprintf(what, sizeof what, "seed %" PRIu64 " data %d n %d nmax %d weights %d", seeds[si], dk,
                                 n, nmax, (int)wks[c]);
                        bad += kernel_case(what, n, nmax, wks[c], x, qw, ng);
                        cases++;
                    }
    }
    fprintf(stderr, "qx_lanes: %ld kernel cases, %d mismatching groups\n", cases, bad);
    cr_expect_eq(bad, 0);
}

Test(qx_lanes, one_group_matches_scalar)
{
    mq_quant_set_simd(-1);
    if (!mq_cpu_avx2()) {
        cr_skip_test("no AVX2 on this CPU: the lane kernels cannot run here");
        return;
    }
    struct mq_test_rng r;
    mq_test_rng_seed(&r, mq_test_pick_seed());
    float x[32], w[32];
    int bad = 0;
    for (int rep = 0; rep < 4000; rep++) {
        const int n = rep % 2 ? 16 : 32, nmax = 4 << (rep / 2 % 4);
        fill_data(&r, rep % DATA_KINDS, x, 32);
        if (rep % 5 == 0) /* Q3_K-like: signed sub-block scales */
            for (int i = 0; i < 32; i++) x[i] = (float)(mq_test_rng_normal(&r) * 0.1);
        fill_imatrix(&r, rep / 3 % IM_KINDS, w, 32);
        int8_t L[32], Lr[32];
        float got;
        cr_assert(mq_qx_fit_group(n, nmax, x, w, L, &got));
        const float want = mq_make_qx_quants(n, nmax, x, Lr, w);
        if (memcmp(&got, &want, sizeof got) || memcmp(L, Lr, (size_t)n)) {
            if (bad < 3) cr_log_error("rep %d n %d nmax %d: %a vs %a", rep, n, nmax, (double)got, (double)want);
            bad++;
        }
    }
    cr_expect_eq(bad, 0, "%d mismatches", bad);
}

Test(qx_lanes, refuses_non_finite_and_without_simd)
{
    float x[16 * 32] = {0}, qw[16 * 32], s[16];
    int8_t L[16 * 32];
    for (int i = 0; i < 16 * 32; i++) {
        x[i] = (float)(i % 7) - 3.f;
        qw[i] = 1.f;
    }
    mq_quant_set_simd(0);
    cr_expect(!mq_qx_fit_lanes(32, 8, MQ_QX_W_SIGMA, x, qw, 1.f, 16, s, L, NULL), "lanes ran with SIMD off");
    cr_expect(!mq_qx_fit_group(16, 32, x, qw, L, s), "one-group lanes ran with SIMD off");
    mq_quant_set_simd(-1);
    if (!mq_cpu_avx2()) return;
    cr_expect(mq_qx_fit_lanes(32, 8, MQ_QX_W_SIGMA, x, qw, 1.f, 16, s, L, NULL));
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        const int at = 16 * 32 - 1 - 37 * k; /* in the last 256 values */
        x[at] = bad[k];
        cr_expect(!mq_qx_fit_lanes(32, 8, MQ_QX_W_SIGMA, x, qw, 1.f, 16, s, L, NULL), "non-finite x accepted");
        cr_expect(!mq_qx_fit_lanes(16, 4, MQ_QX_W_X2, x + 256, qw, 1.f, 16, s, L, NULL), "non-finite x accepted");
        cr_expect(!mq_qx_fit_group(16, 32, x + at / 16 * 16, qw, L, s), "non-finite x accepted");
        x[at] = 0.f;
    }
}

/* ---- end to end against ggml ---- */

static const enum mq_codec codecs[] = {MQ_CODEC_Q4_0, MQ_CODEC_Q5_0, MQ_CODEC_Q3_K, MQ_CODEC_Q6_K};
#define NCODECS (sizeof codecs / sizeof codecs[0])

static bool need_ggml(void)
{
    if (have_ggml) return true;
    if (getenv("CI")) cr_assert_fail("ggml library required when CI is set: %s", why);
    fprintf(stderr, "SKIP qx_lanes ggml comparison: %s (set CI to make this a failure)\n", why);
    cr_skip_test("ggml differential test skipped: %s", why);
    return false;
}

static long g_rows;

/* nrows rows of row_len with importances w, ours (SIMD on and off) vs ggml; mismatching rows */
static int compare(const char *what, enum mq_codec c, const float *x, size_t nrows, size_t row_len, const float *w)
{
    const size_t n = nrows * row_len, nbytes = (size_t)mq_codec_data_bytes(c, NULL, n), row_bytes = nbytes / nrows;
    uint8_t *want = malloc(nbytes), *got = malloc(nbytes);
    cr_assert(want && got);
    memset(want, 0xa5, nbytes);
    cr_assert_eq(G.quantize_chunk(mq_codec_info(c)->ggml_type, x, want, 0, (int64_t)nrows, (int64_t)row_len, w),
                 nbytes);
    int bad = 0;
    for (int mode = no_simd_env() ? 1 : 0; mode < 2; mode++) {
        mq_quant_set_simd(mode ? 0 : -1);
        memset(got, 0x5a, nbytes);
        cr_assert_eq(mq_quantize_weighted(c, x, n, row_len, w, got, NULL), MQ_OK);
        char label[320];
        snprintf(label, sizeof label, "%s: %s (%s)", what, mq_codec_info(c)->name, mode ? "scalar" : "simd");
        g_rows += (long)nrows;
        bad += mq_test_row_diffs(label, want, got, nrows, row_bytes, bad);
    }
    simd_default();
    free(want);
    free(got);
    return bad;
}

static int run_set(uint64_t seed, int reps)
{
    struct mq_test_rng r;
    mq_test_rng_seed(&r, seed);
    /* Q4_0/Q5_0 rows of 32*k: 1, 3, 15, 16, 17, 65 blocks; the K types rows of 256*k */
    const size_t legacy_lens[] = {32, 96, 480, 512, 544, 2080}, k_lens[] = {256, 768, 1280};
    const size_t row_counts[] = {1, 3, 7, 2};
    enum { MAXN = 7 * 2080 };
    float *x = malloc(MAXN * sizeof *x), *w = malloc(2080 * sizeof *w);
    cr_assert(x && w);
    int bad = 0;
    for (int rep = 0; rep < reps; rep++) {
        const size_t nr = row_counts[rep % 4];
        const int dk = rep % DATA_KINDS, ik = (rep / 3) % IM_KINDS;
        for (size_t ci = 0; ci < NCODECS; ci++) {
            const enum mq_codec c = codecs[ci];
            const bool legacy = c == MQ_CODEC_Q4_0 || c == MQ_CODEC_Q5_0;
            const size_t rl = legacy ? legacy_lens[(size_t)(rep + (int)ci) % 6] : k_lens[(size_t)(rep + (int)ci) % 3];
            for (size_t k = 0; k < nr; k++) fill_data(&r, (dk + (int)k) % DATA_KINDS, x + k * rl, rl);
            fill_imatrix(&r, ik, w, rl);
            char what[160];
            snprintf(what, sizeof what, "seed %" PRIu64 " rep %d (data %d, %s weights, %zu x %zu)", seed, rep, dk,
                     im_names[ik], nr, rl);
            bad += compare(what, c, x, nr, rl, w);
        }
    }
    free(x);
    free(w);
    return bad;
}

TestSuite(qx_lanes, .init = setup, .fini = teardown);

Test(qx_lanes, ggml_fixed_seed)
{
    if (!need_ggml()) return;
    g_rows = 0;
    const int bad = run_set(20251205, 2 * DATA_KINDS * IM_KINDS);
    fprintf(stderr, "qx_lanes: fixed set: %ld rows compared (%s), %d mismatches\n", g_rows,
            no_simd_env() ? "scalar only" : "simd and scalar", bad);
    cr_expect_eq(bad, 0, "%d mismatching rows", bad);
}

Test(qx_lanes, ggml_random_seed_printed)
{
    if (!need_ggml()) return;
    const uint64_t seed = mq_test_diff_seed("qx_lanes");
    g_rows = 0;
    const int bad = run_set(seed, 300);
    fprintf(stderr, "qx_lanes: random set: %ld rows compared, %d mismatches\n", g_rows, bad);
    cr_expect_eq(bad, 0, "seed %" PRIu64 ": %d mismatching rows", seed, bad);
}

/* Rows holding NaN or Inf (and finite rows whose squares overflow): the lanes refuse them, the
 * scalar path runs; the bytes must be those of the SIMD-off run. */
Test(qx_lanes, non_finite_rows_fall_back)
{
    if (no_simd_env()) return;
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 99);
    enum { RL = 544, NR = 3 };
    float x[NR * RL], w[RL];
    fill_imatrix(&r, 1, w, RL);
    const float specials[4] = {NAN, INFINITY, -INFINITY, 3e38f};
    for (size_t ci = 0; ci < NCODECS; ci++) {
        const enum mq_codec c = codecs[ci];
        const size_t rl = (c == MQ_CODEC_Q4_0 || c == MQ_CODEC_Q5_0) ? RL : 512, n = NR * rl;
        const size_t nb = (size_t)mq_codec_data_bytes(c, NULL, n);
        for (int s = 0; s < 4; s++) {
            for (size_t i = 0; i < n; i++) x[i] = (float)mq_test_rng_normal(&r);
            x[rl + 5 + 31 * (size_t)s] = specials[s]; /* row 1 only */
            uint8_t a[NR * RL], b[NR * RL];
            mq_quant_set_simd(-1);
            cr_assert_eq(mq_quantize_weighted(c, x, n, rl, w, a, NULL), MQ_OK);
            mq_quant_set_simd(0);
            cr_assert_eq(mq_quantize_weighted(c, x, n, rl, w, b, NULL), MQ_OK);
            mq_quant_set_simd(-1);
            cr_expect(memcmp(a, b, nb) == 0, "%s with %g: SIMD and scalar bytes differ", mq_codec_info(c)->name,
                      (double)specials[s]);
        }
    }
}
