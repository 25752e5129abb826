/*
** test_imatrix_fast.c - the AVX2 paths of the importance-weighted Q4_1, Q5_1 (legacy1_weighted.c
** on kquants.c's make_qkx2_quants lanes) and Q2_K (q2_k_avx2.c's weighted lanes) against ggml
** itself: ggml_quantize_chunk(type, src, dst, 0, nrows, n_per_row, imatrix) from the pinned
** libggml-base (tests/helpers/ggml_ref.h) must give exactly mq_quantize_weighted's bytes, with
** the fast kernels on and with SIMD off (the scalar loops of weighted.c, what MODELQ_NO_SIMD=1
** selects in the CLI), and the two must agree with each other.
**
** Inputs: every row kind of quant_testdata.h plus log-normal rows over many decades, x several
** importance kinds (uniform-ish, log-normal over 12 decades, exact zeros, tiny, huge, all zero,
** one hot, and equal weights on rows of exact ties); odd row counts; Q4_1/Q5_1 rows of 32 * k
** for k = 1..7 (all scalar), 8, 9, 15..17, 23..25, 31, 33, 40, 47 (a batch of 16 or 8 on the
** lanes and a scalar tail) and Q2_K rows of 1..5 super-blocks (an odd count fits the last one
** alone). A fixed seed plus a printed random one (MODELQ_DIFF_SEED=<n> replays).
** Which path ran is read from the kernels' block counters (mq_l1_fast_blocks,
** mq_q2_k_weighted_fast_blocks): with SIMD on they count every block the lanes should take, with
** SIMD off (or MODELQ_NO_SIMD set in the environment, which this test honours like the CLI) none.
** NaN/Inf rows (ggml is never given them by modelq): fast == scalar.
** Without the library the ggml comparisons skip with a message; with CI set they fail.
*/
#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml_ref.h"
#include "legacy1_lanes.h"
#include "modelq/codec.h"
#include "modelq/imatrix.h"
#include "modelq/quant.h"
#include "q2_k_lanes.h"
#include "qcommon.h"
#include "quant_testdata.h"

static struct mq_ggml G;
static bool have_ggml;
static char why[1200];

/* MODELQ_NO_SIMD in the environment: the whole test runs the scalar path (as the CLI would) */
static bool no_simd_env(void)
{
    const char *e = getenv("MODELQ_NO_SIMD");
    return e && *e && strcmp(e, "0") != 0;
}

static void setup(void)
{
    have_ggml = mq_ggml_open(&G, why, sizeof why);
    if (no_simd_env()) mq_quant_set_simd(0);
}
static void teardown(void)
{
    mq_quant_set_simd(-1);
    mq_ggml_close(&G);
}

TestSuite(imatrix_fast, .init = setup, .fini = teardown);

static bool need_ggml(void)
{
    if (have_ggml) return true;
    if (getenv("CI")) cr_assert_fail("ggml library required when CI is set: %s", why);
    fprintf(stderr, "SKIP weighted fast-kernel ggml comparison: %s (set CI to make this a failure)\n", why);
    return false;
}

/* whether the lanes can run here (AVX2 + F16C, SIMD not switched off) */
static bool lanes_here(void) { return mq_cpu_avx2(); }

#define IM_KINDS 8
static const char *const im_kind_names[IM_KINDS] = {"uniform", "lognormal", "zeros", "tiny",
                                                    "huge",    "all-zero",  "one-hot", "equal"};

/* An importance vector of n columns (finite, >= 0), as a calibration could produce. */
static void fill_imatrix(struct mq_test_rng *r, int kind, float *w, size_t n)
{
    const size_t hot = (size_t)(mq_test_rng_u64(r) % n);
    for (size_t i = 0; i < n; i++) {
        double u = mq_test_rng_unit(r);
        switch (kind) {
        case 0: w[i] = (float)(0.5 + u); break;
        case 1: w[i] = (float)exp(mq_test_rng_normal(r) * 6.4); break; /* ~12 decades either way */
        case 2: w[i] = u < 0.4 ? 0.0f : (float)(u * 3.0); break;
        case 3: w[i] = (float)(u * 1e-30); break;
        case 4: w[i] = (float)(u * 1e12 + 1.0); break;
        case 5: w[i] = 0.0f; break;
        case 6: w[i] = i == hot ? 1.0f : 0.0f; break;
        default: w[i] = 1.0f; break;
        }
    }
}

/* Row kinds: quant_testdata's 16, then log-normal magnitudes over decades with random signs, then
 * exact ties (small integers and half-integers: equal codes and equal errors between steps). */
#define ROW_KINDS (MQ_TEST_ROW_KINDS + 2)
static void fill_row(struct mq_test_rng *r, int kind, float *x, size_t n)
{
    if (kind < MQ_TEST_ROW_KINDS) {
        mq_test_fill_row(r, kind, x, n);
    } else if (kind == MQ_TEST_ROW_KINDS) {
        for (size_t i = 0; i < n; i++) {
            float v = (float)exp(mq_test_rng_normal(r) * 4.0);
            x[i] = (mq_test_rng_u64(r) & 1) ? v : -v;
        }
    } else {
        for (size_t i = 0; i < n; i++) x[i] = (float)((int)(mq_test_rng_u64(r) % 9) - 4) * 0.5f;
    }
}
static const char *row_kind_name(int kind)
{
    return kind < MQ_TEST_ROW_KINDS ? mq_test_row_kind_name(kind) : kind == MQ_TEST_ROW_KINDS ? "lognormal" : "ties";
}

/* blocks the lanes take in one row of nb blocks: Q4_1/Q5_1 runs of 16, then 8; Q2_K all */
static uint64_t lane_blocks(enum mq_codec c, size_t nb)
{
    if (c == MQ_CODEC_Q2_K) return nb;
    return (uint64_t)(nb / 16 * 16 + (nb % 16 >= 8 ? 8 : 0));
}
static uint64_t lane_counter(enum mq_codec c)
{
    return c == MQ_CODEC_Q2_K ? mq_q2_k_weighted_fast_blocks() : mq_l1_fast_blocks();
}

static long g_rows;

/*
** nrows rows of row_len at x with importances w: ours with SIMD on (the lanes, which must have
** fitted exactly the blocks they should), ours with SIMD off (the scalar loops, no lane block),
** and with_ggml ggml's bytes: all equal. Returns the number of mismatching rows.
*/
static int check(const char *what, enum mq_codec c, const float *x, size_t nrows, size_t row_len, const float *w,
                 bool with_ggml)
{
    const struct mq_codec_info *ci = mq_codec_info(c);
    const size_t n = nrows * row_len, nbytes = (size_t)mq_codec_data_bytes(c, NULL, n), row_bytes = nbytes / nrows;
    uint8_t *fast = malloc(nbytes), *slow = malloc(nbytes), *want = malloc(nbytes);
    cr_assert(fast && slow && want);
    memset(fast, 0x5a, nbytes);
    memset(slow, 0xa5, nbytes);
    struct mq_error err = {0};

    const uint64_t before = lane_counter(c);
    cr_assert_eq(mq_quantize_weighted(c, x, n, row_len, w, fast, &err), MQ_OK, "%s", err.msg);
    const uint64_t ran = lane_counter(c) - before;
    const uint64_t expect = lanes_here() ? nrows * lane_blocks(c, row_len / ci->block_elems) : 0;
    cr_expect_eq(ran, expect, "%s: %s: the lanes fitted %" PRIu64 " blocks, expected %" PRIu64, what, ci->name, ran,
                 expect);

    mq_quant_set_simd(0);
    const uint64_t before_slow = lane_counter(c);
    cr_assert_eq(mq_quantize_weighted(c, x, n, row_len, w, slow, &err), MQ_OK, "%s", err.msg);
    cr_expect_eq(lane_counter(c), before_slow, "%s: %s: the lanes ran with SIMD off", what, ci->name);
    mq_quant_set_simd(no_simd_env() ? 0 : -1);

    if (with_ggml) {
        memset(want, 0xc3, nbytes);
        size_t wrote = G.quantize_chunk(ci->ggml_type, x, want, 0, (int64_t)nrows, (int64_t)row_len, w);
        cr_assert_eq(wrote, nbytes, "ggml wrote %zu bytes for %s, expected %zu", wrote, ci->name, nbytes);
    }
    int bad = 0;
    for (size_t r = 0; r < nrows; r++) {
        g_rows++;
        const uint8_t *f = fast + r * row_bytes, *s = slow + r * row_bytes, *g = want + r * row_bytes;
        const char *diff = memcmp(f, s, row_bytes) ? "fast vs scalar"
                           : with_ggml && memcmp(f, g, row_bytes) ? "ours vs ggml"
                                                                   : NULL;
        if (!diff) continue;
        if (bad < 3) {
            const uint8_t *o = strcmp(diff, "fast vs scalar") == 0 ? s : g;
            size_t k = 0;
            while (f[k] == o[k]) k++;
            cr_log_error("%s: %s row %zu: %s differ at byte %zu (%02x vs %02x)", what, ci->name, r, diff, k, f[k], o[k]);
        }
        bad++;
    }
    free(fast);
    free(slow);
    free(want);
    return bad;
}

/* Q4_1/Q5_1 row lengths in blocks of 32, and Q2_K's in super-blocks */
static const size_t l1_blocks[] = {1, 3, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 33, 40, 47};
static const size_t q2_blocks[] = {1, 2, 3, 4, 5};
#define NL1 (sizeof l1_blocks / sizeof l1_blocks[0])
#define NQ2 (sizeof q2_blocks / sizeof q2_blocks[0])

static int run_set(uint64_t seed, int reps, bool with_ggml)
{
    struct mq_test_rng r;
    mq_test_rng_seed(&r, seed);
    enum { MAXN = 5 * 47 * 32 };
    float *x = malloc(MAXN * sizeof *x), *w = malloc(47 * 32 * sizeof *w);
    cr_assert(x && w);
    const size_t row_counts[] = {1, 3, 5};
    int bad = 0;
    for (int rep = 0; rep < reps; rep++) {
        const int kind = rep % ROW_KINDS, ik = (rep / 3) % IM_KINDS;
        const size_t nr = row_counts[(rep / 5) % 3];
        const enum mq_codec c = rep % 3 == 0 ? MQ_CODEC_Q2_K : rep % 3 == 1 ? MQ_CODEC_Q4_1 : MQ_CODEC_Q5_1;
        const size_t rl = c == MQ_CODEC_Q2_K ? 256 * q2_blocks[(rep / 3) % NQ2] : 32 * l1_blocks[(rep / 3) % NL1];
        for (size_t k = 0; k < nr; k++) fill_row(&r, ik == IM_KINDS - 1 ? ROW_KINDS - 1 : (kind + (int)k) % ROW_KINDS,
                                                 x + k * rl, rl);
        fill_imatrix(&r, ik, w, rl);
        char what[200];
        snprintf(what, sizeof what, "seed %" PRIu64 " rep %d (%s rows, %s weights, %zu x %zu)", seed, rep,
                 row_kind_name(kind), im_kind_names[ik], nr, rl);
        bad += check(what, c, x, nr, rl, w, with_ggml);
    }
    free(x);
    free(w);
    return bad;
}

Test(imatrix_fast, fixed_seed_every_kind_and_shape)
{
    const bool g = need_ggml();
    g_rows = 0;
    /* 3 codecs x every row kind x every importance kind x the shapes, each at least once */
    int bad = run_set(20261205, 3 * ROW_KINDS * IM_KINDS, g);
    fprintf(stderr, "imatrix_fast: fixed set: %ld rows compared (%s), %d mismatches, lanes %s\n", g_rows,
            g ? "fast, scalar and ggml" : "fast and scalar only", bad, lanes_here() ? "on" : "off");
    cr_expect_eq(bad, 0, "%d mismatching rows", bad);
}

Test(imatrix_fast, random_seed_printed)
{
    const bool g = need_ggml();
    const uint64_t seed = mq_test_diff_seed("imatrix_fast");
    g_rows = 0;
    int bad = run_set(seed, 150, g);
    fprintf(stderr, "imatrix_fast: random set: %ld rows compared, %d mismatches\n", g_rows, bad);
    cr_expect_eq(bad, 0, "seed %" PRIu64 ": %d mismatching rows", seed, bad);
}

/* Rows ggml is never given (NaN, Inf, values whose squares overflow): the lanes equal the scalar
 * loops byte for byte, with finite and with odd importances. */
Test(imatrix_fast, specials_fast_equals_scalar)
{
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 99);
    enum { RL = 16 * 32 };
    static float x[3 * RL], w[RL];
    const float specials[] = {NAN, INFINITY, -INFINITY, 3e38f, -3e38f, 1e-45f, 0.0f, -0.0f};
    int bad = 0;
    for (int t = 0; t < 24; t++) {
        for (int i = 0; i < 3 * RL; i++) x[i] = (float)mq_test_rng_normal(&r);
        /* one special per sub-block in some rows, a whole sub-block of them in others */
        const float sp = specials[t % 8];
        for (int i = 0; i < 3 * RL; i += (t < 8 ? 37 : t < 16 ? 1 : 256))
            if (t < 16 || i % 512 == 0) x[i] = sp;
        if (t >= 16)
            for (int i = 0; i < 16; i++) x[RL + 16 + i] = sp;
        fill_imatrix(&r, t % IM_KINDS, w, RL);
        char what[64];
        snprintf(what, sizeof what, "special %g pattern %d", (double)sp, t / 8);
        bad += check(what, MQ_CODEC_Q4_1, x, 3, RL, w, false);
        bad += check(what, MQ_CODEC_Q5_1, x, 3, RL, w, false);
        bad += check(what, MQ_CODEC_Q2_K, x, 3, RL, w, false);
    }
    cr_expect_eq(bad, 0, "%d rows where the lanes differ from the scalar loops", bad);
}

/* The plain Q2_K kernel (no importances) shares the fit body: its bytes stay ggml's. */
Test(imatrix_fast, plain_q2_k_unchanged)
{
    if (!need_ggml()) return;
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 4242);
    enum { RL = 3 * 256, NR = 3 };
    static float x[NR * RL];
    static uint8_t got[NR * RL], want[NR * RL];
    int bad = 0;
    for (int kind = 0; kind < ROW_KINDS; kind++) {
        for (int k = 0; k < NR; k++) fill_row(&r, (kind + k) % ROW_KINDS, x + k * RL, RL);
        const size_t nb = (size_t)mq_codec_data_bytes(MQ_CODEC_Q2_K, NULL, NR * RL);
        struct mq_qbuf q = {got, NULL, NULL};
        cr_assert_eq(mq_quantize(MQ_CODEC_Q2_K, NULL, x, NR * RL, RL, &q, true, NULL), MQ_OK);
        G.quantize_chunk(mq_codec_info(MQ_CODEC_Q2_K)->ggml_type, x, want, 0, NR, RL, NULL);
        if (memcmp(got, want, nb) != 0) {
            bad++;
            cr_log_error("plain Q2_K differs from ggml on %s rows", row_kind_name(kind));
        }
    }
    cr_expect_eq(bad, 0);
}
