/*
** test_lowbit_diff.c - the low-bit codecs Q2_K, Q3_K and IQ4_XS against ggml itself
** (libggml-base.so of the pinned @node-llama-cpp/linux-x64, see tests/helpers/ggml_ref.h):
**   - quantize: both our kernels (reference and fast) give exactly the bytes of
**     ggml_quantize_chunk(type, ..., imatrix NULL), which is what llama-quantize runs without an
**     importance matrix: every row kind of quant_testdata.h (random and adversarial), rows with
**     a printed seed (MODELQ_DIFF_SEED=<n> replays), and multi-row chunks of several row lengths
**     quantized with start > 0;
**   - IQ4_XS with importance weights (its kernel takes them): ggml_quantize_chunk with an imatrix;
**   - dequantize: ggml's dequantize_row_{q2_K,q3_K,iq4_xs} (exported by libggml-base) on our
**     blocks and on random blocks (random bytes, finite fp16 scales), bit for bit.
** Without the library the tests skip with a message; with CI set they fail.
*/
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml_ref.h"
#include "modelq/codec.h"
#include "modelq/half.h"
#include "modelq/quant.h"
#include "quant_testdata.h"
#include "qcommon.h"

#define ROW 512

typedef void (*ggml_dequant_fn)(const void *x, float *y, int64_t k);

static struct mq_ggml G;
static bool have_ggml;
static char why[1200];

static const enum mq_codec codecs[] = {MQ_CODEC_Q2_K, MQ_CODEC_Q3_K, MQ_CODEC_IQ4_XS};
static const char *const dequant_names[] = {"dequantize_row_q2_K", "dequantize_row_q3_K", "dequantize_row_iq4_xs"};
#define NCODECS (sizeof codecs / sizeof codecs[0])
static ggml_dequant_fn dequant[NCODECS];

static void setup(void)
{
    have_ggml = mq_ggml_open(&G, why, sizeof why);
    for (size_t k = 0; have_ggml && k < NCODECS; k++) {
        void *p = dlsym(G.handle, dequant_names[k]);
        if (!p) {
            snprintf(why, sizeof why, "%s: no symbol %s", G.path, dequant_names[k]);
            have_ggml = false;
        }
        memcpy(&dequant[k], &p, sizeof p); /* dlsym's contract: the object is the function */
    }
    for (size_t k = 0; have_ggml && k < NCODECS; k++) G.quantize_init(mq_codec_info(codecs[k])->ggml_type);
}
static void teardown(void) { mq_ggml_close(&G); }

static void need_ggml(void)
{
    if (have_ggml) return;
    if (getenv("CI")) cr_assert_fail("ggml library required when CI is set: %s", why);
    fprintf(stderr, "SKIP low-bit ggml differential test: %s (set CI to make this a failure)\n", why);
    cr_skip_test("ggml differential test skipped: %s", why);
}

static void dump_row(const char *what, enum mq_codec c, const float *x, size_t n)
{
    char path[1024];
    const char *dir = getenv("MODELQ_BUILD_DIR");
    snprintf(path, sizeof path, "%s/lowbit_diff_failures.txt", dir && *dir ? dir : ".");
    FILE *f = fopen(path, "a");
    if (!f) return;
    fprintf(f, "# %s codec %s row of %zu floats (hex f32 bits)\n", what, mq_codec_info(c)->name, n);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        fprintf(f, "%08" PRIx32 "%c", u, i % 16 == 15 ? '\n' : ' ');
    }
    fclose(f);
}

/* Quantizes x (nrows rows of row_len) with ggml and with both our kernels; also dequantizes
** ggml's bytes with both. Returns the number of mismatches. */
static int compare(const char *what, enum mq_codec c, size_t k, const float *x, size_t nrows, size_t row_len)
{
    const size_t n = nrows * row_len;
    const size_t nbytes = (size_t)mq_codec_data_bytes(c, NULL, n);
    uint8_t *want = malloc(nbytes), *got = malloc(nbytes);
    float *yw = malloc(n * sizeof(float)), *yg = malloc(n * sizeof(float));
    cr_assert(want && got && yw && yg);
    memset(want, 0xa5, nbytes);
    size_t wrote = G.quantize_chunk(mq_codec_info(c)->ggml_type, x, want, 0, (int64_t)nrows, (int64_t)row_len, NULL);
    cr_assert_eq(wrote, nbytes, "ggml wrote %zu bytes for %s, we expect %zu", wrote, mq_codec_info(c)->name, nbytes);
    int bad = 0;
    for (int fast = 0; fast < 2; fast++) {
        struct mq_qbuf out = {got, NULL, NULL};
        memset(got, 0x5a, nbytes);
        cr_assert_eq(mq_quantize(c, NULL, x, n, row_len, &out, fast, NULL), MQ_OK);
        if (memcmp(want, got, nbytes) != 0) {
            bad++;
            cr_log_error("%s: %s (%s kernel) differs from ggml", what, mq_codec_info(c)->name, fast ? "fast" : "ref");
            dump_row(what, c, x, n);
        }
    }
    struct mq_qbuf in = {want, NULL, NULL};
    cr_assert_eq(mq_dequantize(c, NULL, &in, n, row_len, yg, NULL), MQ_OK);
    dequant[k](want, yw, (int64_t)n);
    if (memcmp(yw, yg, n * sizeof(float)) != 0) {
        bad++;
        cr_log_error("%s: %s dequantize differs from ggml's", what, mq_codec_info(c)->name);
    }
    free(want);
    free(got);
    free(yw);
    free(yg);
    return bad;
}

TestSuite(lowbit_diff, .init = setup, .fini = teardown);

Test(lowbit_diff, fixed_seed_all_row_kinds)
{
    need_ggml();
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 20250612);
    float x[ROW];
    int bad = 0, rows = 0;
    for (int kind = 0; kind < MQ_TEST_ROW_KINDS; kind++) {
        for (int rep = 0; rep < 24; rep++) {
            mq_test_fill_row(&r, kind, x, ROW);
            char what[64];
            snprintf(what, sizeof what, "fixed %s #%d", mq_test_row_kind_name(kind), rep);
            for (size_t k = 0; k < NCODECS; k++) bad += compare(what, codecs[k], k, x, 1, ROW);
            rows++;
        }
    }
    fprintf(stderr, "lowbit_diff: fixed set: %d rows x %zu codecs (ref, fast, dequantize), %d mismatches\n", rows,
            NCODECS, bad);
    cr_expect_eq(bad, 0, "%d mismatches (see lowbit_diff_failures.txt)", bad);
}

Test(lowbit_diff, random_rows_printed_seed)
{
    need_ggml();
    const uint64_t seed = mq_test_diff_seed("lowbit_diff");
    struct mq_test_rng r;
    mq_test_rng_seed(&r, seed);
    float x[ROW];
    int bad = 0;
    for (int rep = 0; rep < 300; rep++) {
        int kind = (int)(mq_test_rng_u64(&r) % MQ_TEST_ROW_KINDS);
        mq_test_fill_row(&r, kind, x, ROW);
        /* a random overall magnitude: tiny to large */
        float mag = (float)pow(10.0, (double)(mq_test_rng_u64(&r) % 9) - 6.0);
        if (kind < 3)
            for (int i = 0; i < ROW; i++) x[i] *= mag;
        char what[96];
        snprintf(what, sizeof what, "seed %" PRIu64 " row %d (%s)", seed, rep, mq_test_row_kind_name(kind));
        for (size_t k = 0; k < NCODECS; k++) bad += compare(what, codecs[k], k, x, 1, ROW);
    }
    fprintf(stderr, "lowbit_diff: random set: 300 rows x %zu codecs, %d mismatches\n", NCODECS, bad);
    cr_expect_eq(bad, 0, "seed %" PRIu64 ": %d mismatches (see lowbit_diff_failures.txt)", seed, bad);
}

Test(lowbit_diff, multi_row_chunks_of_several_shapes)
{
    need_ggml();
    static const size_t shapes[][2] = {{1, 256}, {3, 256}, {5, 768}, {2, 4096}, {7, 1280}, {4, 11008 / 43 * 43 / 256 * 256}};
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 77);
    int bad = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t nrows = shapes[s][0], row_len = shapes[s][1], n = nrows * row_len;
        float *x = malloc(n * sizeof(float));
        cr_assert(x);
        for (size_t i = 0; i < n; i++) x[i] = (float)(mq_test_rng_normal(&r) * 0.02);
        for (size_t i = 0; i < n; i += 97) x[i] *= 9.f; /* outliers */
        char what[64];
        snprintf(what, sizeof what, "%zu x %zu", nrows, row_len);
        for (size_t k = 0; k < NCODECS; k++) {
            bad += compare(what, codecs[k], k, x, nrows, row_len);
            /* ggml_quantize_chunk with start > 0 (the second half of the rows) */
            enum mq_codec c = codecs[k];
            size_t first = nrows / 2, rest = nrows - first;
            /* ggml writes the chunk at its place in dst: row `first` onwards */
            size_t nb = (size_t)mq_codec_data_bytes(c, NULL, rest * row_len);
            size_t skip = (size_t)mq_codec_data_bytes(c, NULL, first * row_len);
            uint8_t *want = malloc(skip + nb), *got = malloc(nb + 1);
            G.quantize_chunk(mq_codec_info(c)->ggml_type, x, want, (int64_t)(first * row_len), (int64_t)rest,
                             (int64_t)row_len, NULL);
            struct mq_qbuf out = {got, NULL, NULL};
            cr_assert_eq(mq_quantize(c, NULL, x + first * row_len, rest * row_len, row_len, &out, true, NULL), MQ_OK);
            if (memcmp(want + skip, got, nb) != 0) {
                bad++;
                cr_log_error("%s start>0: %s differs from ggml", what, mq_codec_info(c)->name);
            }
            free(want);
            free(got);
        }
        free(x);
    }
    cr_expect_eq(bad, 0, "%d mismatches", bad);
}

Test(lowbit_diff, iq4_xs_with_importance_weights)
{
    need_ggml();
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 4242);
    enum { NR = 4, RL = 1024 };
    static float x[NR * RL], qw[RL];
    static uint8_t want[NR * RL], got[NR * RL];
    int bad = 0;
    for (int rep = 0; rep < 40; rep++) {
        for (int kind = 0; kind < NR; kind++)
            mq_test_fill_row(&r, (int)(mq_test_rng_u64(&r) % MQ_TEST_ROW_KINDS), x + kind * RL, RL);
        for (int i = 0; i < RL; i++) {
            double u = mq_test_rng_unit(&r);
            qw[i] = rep % 5 == 0 ? 1.0f : (float)(u * u * 50.0); /* llama-imatrix's mean squared activations */
        }
        size_t nb = (size_t)mq_codec_data_bytes(MQ_CODEC_IQ4_XS, NULL, NR * RL);
        G.quantize_chunk(23, x, want, 0, NR, RL, qw);
        mq_iq4_xs_quantize_rows(x, NR * RL, RL, qw, got);
        if (memcmp(want, got, nb) != 0) {
            bad++;
            cr_log_error("weighted IQ4_XS rep %d differs from ggml", rep);
        }
    }
    cr_expect_eq(bad, 0, "%d mismatches", bad);
}

Test(lowbit_diff, dequantize_random_blocks)
{
    need_ggml();
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 99);
    enum { N = 256 * 8 };
    float yw[N], yg[N];
    int bad = 0;
    for (size_t k = 0; k < NCODECS; k++) {
        enum mq_codec c = codecs[k];
        const struct mq_codec_info *ci = mq_codec_info(c);
        size_t nb = (size_t)mq_codec_data_bytes(c, NULL, N);
        uint8_t blk[256 * 8 * 2];
        for (int rep = 0; rep < 200; rep++) {
            for (size_t i = 0; i < nb; i++) blk[i] = (uint8_t)mq_test_rng_u64(&r);
            /* finite fp16 scale fields: d (and dmin) below 2^15 */
            for (size_t b = 0; b < N / 256; b++) {
                uint8_t *p = blk + b * ci->block_bytes;
                size_t off = c == MQ_CODEC_Q2_K ? 80 : c == MQ_CODEC_Q3_K ? 108 : 0;
                mq_put_f16(p + off, (float)(mq_test_rng_normal(&r) * 0.01));
                if (c == MQ_CODEC_Q2_K) mq_put_f16(p + 82, (float)(mq_test_rng_normal(&r) * 0.01));
            }
            struct mq_qbuf in = {blk, NULL, NULL};
            cr_assert_eq(mq_dequantize(c, NULL, &in, N, N, yg, NULL), MQ_OK);
            dequant[k](blk, yw, N);
            if (memcmp(yw, yg, sizeof yw) != 0) {
                bad++;
                cr_log_error("%s: dequantize of random block %d differs from ggml's", ci->name, rep);
            }
        }
    }
    cr_expect_eq(bad, 0, "%d mismatches", bad);
}
