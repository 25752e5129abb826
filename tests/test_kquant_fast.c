/*
** test_kquant_fast.c - the K-quant fast kernels (Q4_K, Q5_K, Q6_K, Q3_K) against the reference
** kernels and against ggml, on super-blocks built from sub-block shapes that steer the fast
** kernels into their edge paths:
**   - the vroundps code path and its fallback to ggml's integer rounding (kquants.c): ranges so
**     small (denormal) that the inverse scale is Inf, so large that max - min overflows, sub-blocks
**     whose fitted minimum moves far above their smallest value, NaN and Inf (reference only:
**     ggml's range checks run before any kernel in modelq, but a kernel must still not differ);
**   - rounding ties (values on the half-code grid), all-equal rows, zeros, signed zeros;
**   - the unweighted and the importance-weighted kernels (mq_quantize_weighted), with importance
**     vectors that are positive, contain zeros, or span many decades.
** Each super-block mixes eight 32-value sub-blocks of random shapes; rows are 1024 values (4
** super-blocks) so that the two-at-a-time kernels also see a pairing. MODELQ_KQ_SEED=<n> replays.
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

#define ROW 1024
enum { SHAPES = 16 };

static const char *const shape_names[SHAPES] = {
    "normal",       "scaled normal", "constant",  "zeros + denormal", "all negative",    "all positive",
    "outlier",      "denormals",     "near FLT_MAX", "half-grid ties", "negative + one positive",
    "bimodal",      "signed zeros",  "ramp",      "nan/inf",          "wide exponents"};

/* One sub-block of 32 values of the given shape; nonfinite = false keeps every value finite. */
static void fill_sub(struct mq_test_rng *r, int shape, float *x, bool nonfinite)
{
    const float scale = (float)pow(10.0, (double)(mq_test_rng_u64(r) % 13) - 6.0);
    switch (shape) {
    case 0:
        for (int i = 0; i < 32; i++) x[i] = (float)mq_test_rng_normal(r);
        break;
    case 1:
        for (int i = 0; i < 32; i++) x[i] = scale * (float)mq_test_rng_normal(r);
        break;
    case 2: {
        const float c = (mq_test_rng_u64(r) & 1 ? -1.f : 1.f) * scale * (float)(mq_test_rng_u64(r) % 4);
        for (int i = 0; i < 32; i++) x[i] = c;
        break;
    }
    case 3:
        for (int i = 0; i < 32; i++) x[i] = 0.f;
        x[mq_test_rng_u64(r) % 32] = (mq_test_rng_u64(r) & 1 ? -1.f : 1.f) * 1e-45f * (float)(1 + mq_test_rng_u64(r) % 3);
        break;
    case 4:
        for (int i = 0; i < 32; i++) x[i] = -scale * (0.5f + (float)mq_test_rng_unit(r));
        break;
    case 5:
        for (int i = 0; i < 32; i++) x[i] = scale * (0.5f + (float)mq_test_rng_unit(r));
        break;
    case 6:
        for (int i = 0; i < 32; i++) x[i] = (float)mq_test_rng_normal(r) * 0.01f;
        x[mq_test_rng_u64(r) % 32] = (mq_test_rng_u64(r) & 1 ? -1.f : 1.f) * (float)pow(10.0, (double)(mq_test_rng_u64(r) % 30));
        break;
    case 7:
        for (int i = 0; i < 32; i++) x[i] = (float)mq_test_rng_normal(r) * 1e-40f;
        break;
    case 8:
        for (int i = 0; i < 32; i++) x[i] = (mq_test_rng_u64(r) & 1 ? -3.0e38f : 3.0e38f) * (float)mq_test_rng_unit(r);
        break;
    case 9: {
        const float step = scale / 2;
        for (int i = 0; i < 32; i++) x[i] = step * (float)((int)(mq_test_rng_u64(r) % 63) - 31);
        break;
    }
    case 10:
        for (int i = 0; i < 32; i++) x[i] = -scale * (100.f + (float)mq_test_rng_unit(r));
        x[mq_test_rng_u64(r) % 32] = scale * 1e-3f;
        break;
    case 11:
        for (int i = 0; i < 32; i++) x[i] = (mq_test_rng_u64(r) & 1 ? -scale : scale * 7.f) + 1e-3f * (float)mq_test_rng_unit(r);
        break;
    case 12:
        for (int i = 0; i < 32; i++) x[i] = mq_test_rng_u64(r) & 1 ? -0.f : 0.f;
        break;
    case 13:
        for (int i = 0; i < 32; i++) x[i] = scale * (float)i - scale * 4.f;
        break;
    case 14:
        for (int i = 0; i < 32; i++) x[i] = (float)mq_test_rng_normal(r);
        if (nonfinite) {
            const float bad[3] = {NAN, INFINITY, -INFINITY};
            x[mq_test_rng_u64(r) % 32] = bad[mq_test_rng_u64(r) % 3];
        }
        break;
    default:
        for (int i = 0; i < 32; i++) {
            const int e = (int)(mq_test_rng_u64(r) % 200) - 130;
            x[i] = (float)ldexp(mq_test_rng_normal(r), e);
        }
        break;
    }
}

/* A row of ROW values: sub-blocks of random shapes, or every sub-block one shape (same_shape >= 0). */
static void fill_row(struct mq_test_rng *r, float *x, int same_shape, bool nonfinite)
{
    for (int s = 0; s < ROW / 32; s++) {
        int shape = same_shape >= 0 ? same_shape : (int)(mq_test_rng_u64(r) % SHAPES);
        fill_sub(r, shape, x + 32 * s, nonfinite);
    }
}

static void fill_imatrix(struct mq_test_rng *r, float *w)
{
    const int kind = (int)(mq_test_rng_u64(r) % 3);
    for (int i = 0; i < ROW; i++) {
        const double u = mq_test_rng_unit(r);
        w[i] = kind == 0 ? (float)(0.01 + u) : kind == 1 ? (u < 0.2 ? 0.f : (float)u) : (float)pow(10.0, 8 * u - 4);
    }
}

static const enum mq_codec codecs[] = {MQ_CODEC_Q4_K, MQ_CODEC_Q5_K, MQ_CODEC_Q6_K, MQ_CODEC_Q3_K};
#define NCODECS (sizeof codecs / sizeof codecs[0])

static struct mq_ggml G;
static bool have_ggml;

static void setup(void)
{
    char why[1200];
    have_ggml = mq_ggml_open(&G, why, sizeof why);
    if (!have_ggml) fprintf(stderr, "kquant_fast: no ggml (%s): comparing fast with reference kernels only\n", why);
}
static void teardown(void)
{
    if (have_ggml) mq_ggml_close(&G);
}

TestSuite(kquant_fast, .init = setup, .fini = teardown);

static uint64_t test_seed(void)
{
    const char *env = getenv("MODELQ_KQ_SEED");
    uint64_t seed = env && *env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
    fprintf(stderr, "kquant_fast: seed %" PRIu64 " (replay: MODELQ_KQ_SEED=%" PRIu64 ")\n", seed, seed);
    return seed;
}

/* fast == reference, and == ggml when the row is finite; returns mismatches (logged) */
static int check_row(const float *x, bool finite, const char *what)
{
    int bad = 0;
    for (size_t k = 0; k < NCODECS; k++) {
        const enum mq_codec c = codecs[k];
        const size_t nbytes = (size_t)mq_codec_data_bytes(c, NULL, ROW);
        uint8_t ref[ROW], fast[ROW], gg[ROW];
        memset(ref, 0xa5, sizeof ref);
        memset(fast, 0x5a, sizeof fast);
        struct mq_qbuf qr = {ref, NULL, NULL}, qf = {fast, NULL, NULL};
        cr_assert_eq(mq_quantize(c, NULL, x, ROW, ROW, &qr, false, NULL), MQ_OK);
        cr_assert_eq(mq_quantize(c, NULL, x, ROW, ROW, &qf, true, NULL), MQ_OK);
        if (memcmp(ref, fast, nbytes) != 0) {
            bad++;
            cr_log_error("%s: %s fast kernel differs from the reference", what, mq_codec_info(c)->name);
        }
        if (finite && have_ggml) {
            G.quantize_chunk(mq_codec_info(c)->ggml_type, x, gg, 0, 1, ROW, NULL);
            if (memcmp(gg, ref, nbytes) != 0) {
                bad++;
                cr_log_error("%s: %s differs from ggml", what, mq_codec_info(c)->name);
            }
        }
    }
    return bad;
}

Test(kquant_fast, every_shape_alone_and_mixed)
{
    struct mq_test_rng r;
    mq_test_rng_seed(&r, test_seed());
    float x[ROW];
    int bad = 0, rows = 0;
    for (int shape = -1; shape < SHAPES; shape++) {
        for (int rep = 0; rep < (shape < 0 ? 400 : 40); rep++, rows++) {
            const bool nonfinite = rep % 4 == 3;
            fill_row(&r, x, shape, nonfinite);
            bool finite = true;
            for (int i = 0; i < ROW; i++) finite = finite && isfinite(x[i]);
            char what[96];
            snprintf(what, sizeof what, "row %d (%s #%d)", rows, shape < 0 ? "mixed" : shape_names[shape], rep);
            bad += check_row(x, finite, what);
        }
    }
    fprintf(stderr, "kquant_fast: %d rows x %zu codecs, %d mismatches\n", rows, NCODECS, bad);
    cr_expect_eq(bad, 0);
}

Test(kquant_fast, weighted_matches_ggml)
{
    struct mq_test_rng r;
    mq_test_rng_seed(&r, test_seed() + 1);
    if (!have_ggml) cr_skip_test("ggml library not found");
    static const enum mq_codec wc[] = {MQ_CODEC_Q4_K, MQ_CODEC_Q5_K, MQ_CODEC_Q6_K};
    float x[ROW], w[ROW];
    int bad = 0, rows = 0;
    for (int rep = 0; rep < 300; rep++, rows++) {
        const int shape = rep % 3 == 0 ? (int)(mq_test_rng_u64(&r) % 14) : -1; /* finite shapes only */
        fill_row(&r, x, shape == 14 ? 0 : shape, false);
        fill_imatrix(&r, w);
        for (size_t k = 0; k < sizeof wc / sizeof wc[0]; k++) {
            const size_t nbytes = (size_t)mq_codec_data_bytes(wc[k], NULL, ROW);
            uint8_t got[ROW], want[ROW];
            cr_assert_eq(mq_quantize_weighted(wc[k], x, ROW, ROW, w, got, NULL), MQ_OK);
            G.quantize_chunk(mq_codec_info(wc[k])->ggml_type, x, want, 0, 1, ROW, w);
            if (memcmp(got, want, nbytes) != 0) {
                bad++;
                cr_log_error("weighted row %d: %s differs from ggml", rep, mq_codec_info(wc[k])->name);
            }
        }
    }
    fprintf(stderr, "kquant_fast: %d weighted rows, %d mismatches\n", rows, bad);
    cr_expect_eq(bad, 0);
}

/* rows of 1, 3 and 9 super-blocks: the weighted row batches (8) and the pairs of the search
 * kernel both end on a partial batch; many rows in one call for the unweighted chunking */
Test(kquant_fast, odd_block_counts)
{
    struct mq_test_rng r;
    mq_test_rng_seed(&r, test_seed() + 2);
    static const int nblocks[] = {1, 3, 9};
    static const enum mq_codec wc[] = {MQ_CODEC_Q4_K, MQ_CODEC_Q5_K, MQ_CODEC_Q6_K};
    enum { MAXN = 9 * 256 * 3 };
    float *x = malloc(MAXN * sizeof *x), *w = malloc(MAXN * sizeof *w);
    uint8_t *ref = malloc(MAXN), *fast = malloc(MAXN), *gg = malloc(MAXN);
    cr_assert(x && w && ref && fast && gg);
    int bad = 0;
    for (size_t t = 0; t < sizeof nblocks / sizeof nblocks[0]; t++) {
        const size_t row = 256 * (size_t)nblocks[t], n = 3 * row;
        for (size_t i = 0; i < n; i += 32) fill_sub(&r, (int)(mq_test_rng_u64(&r) % 14), x + i, false);
        for (size_t i = 0; i < row; i++) w[i] = (float)(0.01 + mq_test_rng_unit(&r));
        for (size_t k = 0; k < NCODECS; k++) {
            const enum mq_codec c = codecs[k];
            const size_t nbytes = (size_t)mq_codec_data_bytes(c, NULL, n);
            struct mq_qbuf qr = {ref, NULL, NULL}, qf = {fast, NULL, NULL};
            cr_assert_eq(mq_quantize(c, NULL, x, n, row, &qr, false, NULL), MQ_OK);
            cr_assert_eq(mq_quantize(c, NULL, x, n, row, &qf, true, NULL), MQ_OK);
            if (memcmp(ref, fast, nbytes) != 0) {
                bad++;
                cr_log_error("%d blocks per row: %s fast differs from the reference", nblocks[t], mq_codec_info(c)->name);
            }
        }
        if (!have_ggml) continue;
        for (size_t k = 0; k < sizeof wc / sizeof wc[0]; k++) {
            const size_t nbytes = (size_t)mq_codec_data_bytes(wc[k], NULL, n);
            cr_assert_eq(mq_quantize_weighted(wc[k], x, n, row, w, fast, NULL), MQ_OK);
            G.quantize_chunk(mq_codec_info(wc[k])->ggml_type, x, gg, 0, 3, (int64_t)row, w);
            if (memcmp(gg, fast, nbytes) != 0) {
                bad++;
                cr_log_error("%d blocks per row: weighted %s differs from ggml", nblocks[t], mq_codec_info(wc[k])->name);
            }
        }
    }
    free(x), free(w), free(ref), free(fast), free(gg);
    cr_expect_eq(bad, 0);
}
