/*
** test_imatrix_kernels.c - the weighted quantizers (src/quant/weighted.c) against ggml itself:
** ggml_quantize_chunk(type, src, dst, 0, nrows, n_per_row, imatrix) from the pinned
** libggml-base (tests/helpers/ggml_ref.h) must give exactly mq_quantize_weighted's bytes for
** Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q4_K, Q5_K, Q6_K, Q2_K, Q3_K (and Q8_0, which ignores the
** weights).
**
** Inputs: every row kind of quant_testdata.h (random and adversarial) x importance vectors of
** several kinds (uniform-ish, log-normal spread over 12 decades, with exact zeros, tiny, huge,
** all zero, one hot), several rows per call (odd row counts, rows of 256 and 1024 columns), a
** fixed seed plus a printed random one (MODELQ_DIFF_SEED=<n> replays). Negative control: with
** the weights of another column order the bytes change for most rows.
** Without the library the tests skip; with CI set they fail.
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

static struct mq_ggml G;
static bool have_ggml;
static char why[1200];

static void setup(void) { have_ggml = mq_ggml_open(&G, why, sizeof why); }
static void teardown(void) { mq_ggml_close(&G); }

static void need_ggml(void)
{
    if (have_ggml) return;
    if (getenv("CI")) cr_assert_fail("ggml library required when CI is set: %s", why);
    fprintf(stderr, "SKIP imatrix differential test: %s (set CI to make this a failure)\n", why);
    cr_skip_test("ggml differential test skipped: %s", why);
}

static const enum mq_codec codecs[] = {MQ_CODEC_Q4_0, MQ_CODEC_Q4_1, MQ_CODEC_Q5_0, MQ_CODEC_Q5_1, MQ_CODEC_IQ4_NL,
                                       MQ_CODEC_Q4_K, MQ_CODEC_Q5_K, MQ_CODEC_Q6_K, MQ_CODEC_Q2_K,
                                       MQ_CODEC_Q3_K, MQ_CODEC_Q8_0}; /* Q8_0 last (it ignores weights) */
#define NCODECS (sizeof codecs / sizeof codecs[0])

#define IM_KINDS 7
static const char *const im_kind_names[IM_KINDS] = {"uniform", "lognormal", "zeros", "tiny", "huge", "all-zero",
                                                    "one-hot"};

/* An importance vector of n columns (finite, >= 0), as a calibration could produce. */
static void fill_imatrix(struct mq_test_rng *r, int kind, float *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double u = mq_test_rng_unit(r);
        switch (kind) {
        case 0: w[i] = (float)(0.5 + u); break;
        case 1: w[i] = (float)exp(mq_test_rng_normal(r) * 4.0); break; /* ~12 decades */
        case 2: w[i] = u < 0.3 ? 0.0f : (float)(u * 3.0); break;
        case 3: w[i] = (float)(u * 1e-30); break;
        case 4: w[i] = (float)(u * 1e12 + 1.0); break;
        case 5: w[i] = 0.0f; break;
        default: w[i] = (i % 61 == 7) ? 1.0f : 0.0f; break;
        }
    }
}

static long g_compared;

/* nrows rows of row_len at x, with weights w: ours vs ggml; returns mismatching rows. */
static int compare(const char *what, enum mq_codec c, const float *x, size_t nrows, size_t row_len, const float *w)
{
    size_t n = nrows * row_len, nbytes = (size_t)mq_codec_data_bytes(c, NULL, n);
    size_t row_bytes = nbytes / nrows;
    uint8_t *want = malloc(nbytes), *got = malloc(nbytes);
    cr_assert(want && got);
    memset(want, 0xa5, nbytes);
    memset(got, 0x5a, nbytes);
    size_t wrote = G.quantize_chunk(mq_codec_info(c)->ggml_type, x, want, 0, (int64_t)nrows, (int64_t)row_len, w);
    cr_assert_eq(wrote, nbytes, "ggml wrote %zu bytes for %s, expected %zu", wrote, mq_codec_info(c)->name, nbytes);
    cr_assert_eq(mq_quantize_weighted(c, x, n, row_len, w, got, NULL), MQ_OK);
    char label[320];
    snprintf(label, sizeof label, "%s: %s", what, mq_codec_info(c)->name);
    g_compared += (long)nrows;
    const int bad = mq_test_row_diffs(label, want, got, nrows, row_bytes, 0);
    free(want);
    free(got);
    return bad;
}

static int run_set(uint64_t seed, int reps)
{
    struct mq_test_rng r;
    mq_test_rng_seed(&r, seed);
    enum { MAXN = 5 * 1024 };
    float *x = malloc(MAXN * sizeof *x), w[1024];
    const size_t row_lens[] = {256, 1024, 512};
    const size_t row_counts[] = {1, 3, 5};
    int bad = 0;
    for (int rep = 0; rep < reps; rep++) {
        size_t rl = row_lens[rep % 3], nr = row_counts[(rep / 3) % 3];
        int kind = rep % MQ_TEST_ROW_KINDS, ik = (rep / 2) % IM_KINDS;
        for (size_t k = 0; k < nr; k++) mq_test_fill_row(&r, (kind + (int)k) % MQ_TEST_ROW_KINDS, x + k * rl, rl);
        fill_imatrix(&r, ik, w, rl);
        char what[160];
        snprintf(what, sizeof what, "seed %" PRIu64 " rep %d (%s rows, %s weights, %zu x %zu)", seed, rep,
                 mq_test_row_kind_name(kind), im_kind_names[ik], nr, rl);
        for (size_t c = 0; c < NCODECS; c++) bad += compare(what, codecs[c], x, nr, rl, w);
    }
    free(x);
    return bad;
}

TestSuite(imatrix_kernels, .init = setup, .fini = teardown);

Test(imatrix_kernels, fixed_seed_all_kinds)
{
    need_ggml();
    g_compared = 0;
    int bad = run_set(20250911, 3 * MQ_TEST_ROW_KINDS * IM_KINDS);
    fprintf(stderr, "imatrix_kernels: fixed set: %ld rows compared over %zu types, %d mismatches\n", g_compared,
            NCODECS, bad);
    cr_expect_eq(bad, 0, "%d mismatching rows", bad);
}

Test(imatrix_kernels, random_seed_printed)
{
    need_ggml();
    const uint64_t seed = mq_test_diff_seed("imatrix_kernels");
    g_compared = 0;
    int bad = run_set(seed, 120);
    fprintf(stderr, "imatrix_kernels: random set: %ld rows compared, %d mismatches\n", g_compared, bad);
    cr_expect_eq(bad, 0, "seed %" PRIu64 ": %d mismatching rows", seed, bad);
}

/* The weights matter: shuffled importances (another column order) change the bytes. */
Test(imatrix_kernels, shuffled_weights_change_bytes)
{
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 7);
    float x[4 * 256], w[256], ws[256];
    for (int i = 0; i < 4 * 256; i++) x[i] = (float)mq_test_rng_normal(&r);
    fill_imatrix(&r, 1, w, 256);
    for (int i = 0; i < 256; i++) ws[i] = w[(i * 37 + 11) % 256];
    for (size_t c = 0; c + 1 < NCODECS; c++) {
        size_t nb = (size_t)mq_codec_data_bytes(codecs[c], NULL, 1024);
        uint8_t a[1024], b[1024], u[1024];
        cr_assert_eq(mq_quantize_weighted(codecs[c], x, 1024, 256, w, a, NULL), MQ_OK);
        cr_assert_eq(mq_quantize_weighted(codecs[c], x, 1024, 256, ws, b, NULL), MQ_OK);
        struct mq_qbuf q = {u, NULL, NULL};
        cr_assert_eq(mq_quantize(codecs[c], NULL, x, 1024, 256, &q, false, NULL), MQ_OK);
        cr_expect(memcmp(a, b, nb) != 0, "%s: shuffled weights gave the same bytes", mq_codec_info(codecs[c])->name);
        cr_expect(memcmp(a, u, nb) != 0, "%s: weights gave the unweighted bytes", mq_codec_info(codecs[c])->name);
    }
}

Test(imatrix_kernels, geometry_refused)
{
    float x[64] = {0}, w[64] = {0};
    uint8_t out[64];
    struct mq_error err = {0};
    cr_expect_eq(mq_quantize_weighted(MQ_CODEC_Q4_K, x, 64, 64, w, out, &err), MQ_E_USAGE);
    cr_expect_eq(mq_quantize_weighted(MQ_CODEC_NF4, x, 64, 64, w, out, &err), MQ_E_USAGE);
    cr_expect_eq(mq_quantize_weighted(MQ_CODEC_Q4_0, x, 64, 48, w, out, &err), MQ_E_USAGE);
    cr_expect(mq_codec_takes_imatrix(MQ_CODEC_Q6_K));
    cr_expect(!mq_codec_takes_imatrix(MQ_CODEC_Q8_0));
    cr_expect(!mq_codec_takes_imatrix(MQ_CODEC_F16));
}
