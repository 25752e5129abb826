/*
** test_ggml_diff.c - differential test against ggml itself (llama.cpp's libggml-base.so from
** the pinned npm package @node-llama-cpp/linux-x64, see tests/helpers/ggml_ref.h).
**
** For every ggml codec modelq writes (F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q4_K, Q5_K, Q6_K) both our
** reference and fast kernels must give exactly the bytes of ggml_quantize_chunk (no imatrix):
**   - a fixed-seed set: every row kind of quant_testdata.h (random and adversarial);
**   - rows drawn with a seed printed to stderr (MODELQ_DIFF_SEED=<n> replays a run).
** Mismatching rows are dumped (input floats and both outputs, hex) to
** $MODELQ_BUILD_DIR/ggml_diff_failures.txt (or ./ggml_diff_failures.txt).
** Without the library the tests skip with a message; with CI set they fail.
*/
#include <criterion/criterion.h>
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

#define ROW 512

static struct mq_ggml G;
static bool have_ggml;
static char why[1200];

static void setup(void)
{
    have_ggml = mq_ggml_open(&G, why, sizeof why);
}
static void teardown(void) { mq_ggml_close(&G); }

static void need_ggml(void)
{
    if (have_ggml) return;
    if (getenv("CI")) cr_assert_fail("ggml library required when CI is set: %s", why);
    fprintf(stderr, "SKIP ggml differential test: %s (set CI to make this a failure)\n", why);
    cr_skip_test("ggml differential test skipped: %s", why);
}

static const enum mq_codec codecs[] = {MQ_CODEC_F16,    MQ_CODEC_BF16, MQ_CODEC_Q8_0, MQ_CODEC_Q4_0,
                                       MQ_CODEC_Q4_1,   MQ_CODEC_IQ4_NL, MQ_CODEC_Q5_K, MQ_CODEC_Q6_K,
                                       MQ_CODEC_Q5_0,   MQ_CODEC_Q5_1, MQ_CODEC_Q4_K};
#define NCODECS (sizeof codecs / sizeof codecs[0])

static FILE *dump_file(void)
{
    static FILE *f;
    if (!f) {
        char path[1024];
        const char *dir = getenv("MODELQ_BUILD_DIR");
        snprintf(path, sizeof path, "%s/ggml_diff_failures.txt", dir && *dir ? dir : ".");
        f = fopen(path, "w");
        if (f) fprintf(stderr, "ggml_diff: dumping mismatching rows to %s\n", path);
    }
    return f;
}

static void dump_row(const char *what, enum mq_codec c, const float *x, const uint8_t *want,
                     const uint8_t *got, size_t nbytes)
{
    FILE *f = dump_file();
    if (!f) return;
    fprintf(f, "# %s codec %s row of %d floats (hex f32 bits), then ggml bytes, then ours\n", what,
            mq_codec_info(c)->name, ROW);
    for (int i = 0; i < ROW; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        fprintf(f, "%08" PRIx32 "%c", u, i % 16 == 15 ? '\n' : ' ');
    }
    for (size_t i = 0; i < nbytes; i++) fprintf(f, "%02x%s", want[i], i % 32 == 31 ? "\n" : "");
    fprintf(f, "\n");
    for (size_t i = 0; i < nbytes; i++) fprintf(f, "%02x%s", got[i], i % 32 == 31 ? "\n" : "");
    fprintf(f, "\n");
    fflush(f);
}

/* Compares one row for every codec and both kernels; returns the number of mismatches. */
static int compare_row(const char *what, const float *x, long *rows_compared)
{
    int bad = 0;
    for (size_t k = 0; k < NCODECS; k++) {
        enum mq_codec c = codecs[k];
        size_t nbytes = (size_t)mq_codec_data_bytes(c, NULL, ROW);
        uint8_t want[ROW * 4], got[ROW * 4];
        memset(want, 0xa5, sizeof want);
        size_t wrote = G.quantize_chunk(mq_codec_info(c)->ggml_type, x, want, 0, 1, ROW, NULL);
        cr_assert_eq(wrote, nbytes, "ggml wrote %zu bytes for %s, we expect %zu", wrote, mq_codec_info(c)->name, nbytes);
        for (int fast = 0; fast < 2; fast++) {
            struct mq_qbuf out = {got, NULL, NULL};
            memset(got, 0x5a, sizeof got);
            cr_assert_eq(mq_quantize(c, NULL, x, ROW, ROW, &out, fast, NULL), MQ_OK);
            if (memcmp(want, got, nbytes) != 0) {
                bad++;
                cr_log_error("%s: %s (%s kernel) differs from ggml", what, mq_codec_info(c)->name, fast ? "fast" : "ref");
                dump_row(what, c, x, want, got, nbytes);
            }
            (*rows_compared)++;
        }
    }
    return bad;
}

TestSuite(ggml_diff, .init = setup, .fini = teardown);

Test(ggml_diff, fixed_seed_all_row_kinds)
{
    need_ggml();
    for (size_t k = 0; k < NCODECS; k++) G.quantize_init(mq_codec_info(codecs[k])->ggml_type);
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 20240601);
    float x[ROW];
    long compared = 0;
    int bad = 0;
    for (int kind = 0; kind < MQ_TEST_ROW_KINDS; kind++) {
        for (int rep = 0; rep < 24; rep++) {
            mq_test_fill_row(&r, kind, x, ROW);
            char what[64];
            snprintf(what, sizeof what, "fixed %s #%d", mq_test_row_kind_name(kind), rep);
            bad += compare_row(what, x, &compared);
        }
    }
    fprintf(stderr, "ggml_diff: fixed set: %ld row comparisons (%d rows x %zu codecs x 2 kernels), %d mismatches\n",
            compared, MQ_TEST_ROW_KINDS * 24, NCODECS, bad);
    cr_expect_eq(bad, 0, "%d mismatching rows (see ggml_diff_failures.txt)", bad);
}

Test(ggml_diff, random_rows_printed_seed)
{
    need_ggml();
    const uint64_t seed = mq_test_diff_seed("ggml_diff");
    struct mq_test_rng r;
    mq_test_rng_seed(&r, seed);
    float x[ROW];
    long compared = 0;
    int bad = 0;
    for (int rep = 0; rep < 200; rep++) {
        int kind = (int)(mq_test_rng_u64(&r) % MQ_TEST_ROW_KINDS);
        mq_test_fill_row(&r, kind, x, ROW);
        char what[96];
        snprintf(what, sizeof what, "seed %" PRIu64 " row %d (%s)", seed, rep, mq_test_row_kind_name(kind));
        bad += compare_row(what, x, &compared);
    }
    fprintf(stderr, "ggml_diff: random set: %ld row comparisons, %d mismatches\n", compared, bad);
    cr_expect_eq(bad, 0, "seed %" PRIu64 ": %d mismatching rows (see ggml_diff_failures.txt)", seed, bad);
}

Test(ggml_diff, doc_lcg_input_multi_row_chunk)
{
    need_ggml();
    /* the 16 x 256 input of gguf-and-ggml.md 3.12, quantized as one chunk with start > 0 */
    float x[4096];
    uint32_t s = 12345u;
    for (int i = 0; i < 4096; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(int32_t)s * (1.0f / 2147483648.0f);
        if (i % 97 == 0) x[i] *= 8.0f;
    }
    for (size_t k = 0; k < NCODECS; k++) {
        enum mq_codec c = codecs[k];
        size_t nbytes = (size_t)mq_codec_data_bytes(c, NULL, 4096), half = nbytes / 2;
        uint8_t *want = calloc(1, nbytes), *got = calloc(1, nbytes);
        G.quantize_chunk(mq_codec_info(c)->ggml_type, x, want, 0, 8, 256, NULL);
        G.quantize_chunk(mq_codec_info(c)->ggml_type, x, want, 2048, 8, 256, NULL);
        struct mq_qbuf out = {got, NULL, NULL};
        cr_assert_eq(mq_quantize(c, NULL, x, 2048, 256, &out, true, NULL), MQ_OK);
        out.data = got + half;
        cr_assert_eq(mq_quantize(c, NULL, x + 2048, 2048, 256, &out, false, NULL), MQ_OK);
        cr_expect(memcmp(want, got, nbytes) == 0, "%s differs from ggml on the doc input", mq_codec_info(c)->name);
        free(want);
        free(got);
    }
}

Test(ggml_diff, half_conversions_match_ggml)
{
    need_ggml();
    /* every f16 pattern both ways, and a stride through all f32 patterns */
    for (uint32_t h = 0; h < 65536; h++) {
        float a = G.fp16_to_fp32((uint16_t)h), b = mq_f16_to_f32((uint16_t)h);
        cr_assert(memcmp(&a, &b, 4) == 0, "f16 %04x: ggml %a ours %a", h, (double)a, (double)b);
    }
    uint64_t mism16 = 0, mismbf = 0, n = 0;
    for (uint64_t u = 0; u <= 0xffffffffull; u += 997) {
        float f;
        uint32_t b = (uint32_t)u;
        memcpy(&f, &b, 4);
        mism16 += G.fp32_to_fp16(f) != mq_f32_to_f16(f);
        mismbf += G.fp32_to_bf16(f) != mq_f32_to_bf16(f);
        n++;
    }
    fprintf(stderr, "ggml_diff: %" PRIu64 " f32 patterns converted, f16 mismatches %" PRIu64 ", bf16 %" PRIu64 "\n", n,
            mism16, mismbf);
    cr_expect_eq(mism16, 0);
    cr_expect_eq(mismbf, 0);
}
