/*
** test_range_checks.c - values a codec cannot hold are refused, never written (issue 18, items
** 7, 8 and 13).
**
**   - Library sweep: every quantized codec (ggml types, NF4/FP4 with and without double
**     quantization, INT8_ROW, INT8_ASYM) and F16/BF16 over magnitudes 1e3..3.4e38, positive,
**     negative, mixed and single outliers among small values. For every case either
**     mq_range_scan refuses it, or the values come back finite and per block within
**     max(1.2 x the error of the same values at unit scale + 0.02, 0.25) of max|x| (faithful
**     codecs stay below 0.15; a zeroed block errs by 1). Negative control: Q6_K's raw kernel at
**     1e20 does zero its block, which the criterion flags.
**   - End to end: a safetensors tensor converted to each GGUF quant type, to bf16/f16 and to the
**     bitsandbytes types exits 3 with one line naming the tensor; the output does not appear and
**     an earlier output stays byte for byte (every file of the folder hashed before and after).
**   - GGUF copies: a Q8_0/Q4_K tensor copied unchanged whose block scale is NaN or Inf is refused
**     naming the tensor and the block.
*/
#include <criterion/criterion.h>
#include <dirent.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"
#include "modelq/model.h"
#include "modelq/quant.h"
#include "run_cmd.h"
#include "stwrite.h"

/* ---- library sweep ---- */

struct sweep_codec {
    enum mq_codec c;
    bool double_quant;
};

static const struct sweep_codec sweep_codecs[] = {
    {MQ_CODEC_Q8_0, false},   {MQ_CODEC_Q4_0, false}, {MQ_CODEC_Q4_1, false},     {MQ_CODEC_Q5_0, false},
    {MQ_CODEC_Q5_1, false},   {MQ_CODEC_IQ4_NL, false}, {MQ_CODEC_Q4_K, false},   {MQ_CODEC_Q5_K, false},
    {MQ_CODEC_Q6_K, false},   {MQ_CODEC_NF4, false},  {MQ_CODEC_NF4, true},       {MQ_CODEC_FP4, false},
    {MQ_CODEC_FP4, true},     {MQ_CODEC_INT8_ROW, false}, {MQ_CODEC_INT8_ASYM, false}, {MQ_CODEC_F16, false},
    {MQ_CODEC_BF16, false},
};

#define N 512   /* two rows of 256: two K-quant blocks, 16 Q8_0 blocks, 8 NF4 blocks */
#define ROW 256

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}
static double unit(uint32_t *s) { return (double)lcg(s) / 16777216.0; } /* [0, 1) */

/* Pattern at unit scale: 0 mixed signs, 1 positive, 2 negative. */
static void pattern(int kind, uint32_t seed, double *u)
{
    uint32_t s = seed;
    for (int i = 0; i < N; i++) {
        double a = unit(&s);
        u[i] = kind == 0 ? 2 * a - 1 : kind == 1 ? 0.5 + 0.5 * a : -(0.5 + 0.5 * a);
    }
}

/* Quantize + dequantize as the file would hold it (NF4/FP4 double quantization of the absmax
 * included); returns false when the codec's geometry refuses the call. */
static void round_trip(const struct sweep_codec *sc, const float *x, float *y)
{
    static uint8_t data[4 * N];
    static float scales[N], nested[N];
    static int8_t zeros[N];
    static uint8_t qabs[N];
    struct mq_codec_params params = {0, sc->double_quant};
    struct mq_qbuf q = {data, scales, zeros};
    struct mq_error err;
    cr_assert_eq(mq_quantize(sc->c, &params, x, N, ROW, &q, false, &err), MQ_OK, "%s", err.msg);
    if (sc->double_quant) {
        size_t nb = (size_t)mq_codec_side_count(sc->c, &params, N, ROW);
        float offset;
        mq_bnb_double_quant(scales, nb, qabs, nested, &offset);
        mq_bnb_double_dequant(qabs, nested, offset, nb, scales);
    }
    cr_assert_eq(mq_dequantize(sc->c, &params, &q, N, ROW, y, &err), MQ_OK, "%s", err.msg);
}

static bool refused(const struct sweep_codec *sc, const float *x)
{
    struct mq_codec_params params = {0, sc->double_quant};
    struct mq_range_check rc;
    mq_range_init(&rc);
    mq_range_scan(&rc, sc->c, &params, x, N, ROW);
    return rc.bad > 0;
}

/* Error unit for the comparisons: the codec's block (64 for the flat codecs; INT8_ROW: the row;
 * F16/BF16: 32 elements); with double
 * quantization the group of 256 blocks whose absmax share one nested scale (here all N values),
 * since the format stores a block's absmax only to a precision relative to its group. */
static size_t check_block(const struct sweep_codec *sc)
{
    if (sc->double_quant) return N;
    if (sc->c == MQ_CODEC_INT8_ROW) return ROW; /* one scale per row */
    uint32_t b = mq_codec_block(sc->c, NULL);
    return b > 1 ? b : 32;
}

/* Largest |y-x| / max|x| over the blocks, +Inf when a value is not finite. */
static void block_errors(const float *x, const float *y, size_t blk, double *out)
{
    for (size_t b = 0; b < N / blk; b++) {
        double amax = 0, e = 0;
        for (size_t i = b * blk; i < (b + 1) * blk; i++) {
            if (!isfinite(y[i])) {
                e = INFINITY;
                break;
            }
            amax = fmax(amax, fabs((double)x[i]));
            e = fmax(e, fabs((double)y[i] - (double)x[i]));
        }
        out[b] = amax > 0 ? e / amax : e;
    }
}

static const char *codec_label(const struct sweep_codec *sc)
{
    return sc->double_quant ? (sc->c == MQ_CODEC_NF4 ? "nf4-dq" : "fp4-dq") : mq_codec_info(sc->c)->name;
}

Test(range_sweep, every_codec_every_magnitude_refused_or_faithful)
{
    static double u[N];
    static float x[N], y[N];
    static double ref_err[N], err_m[N];
    int accepted = 0, refusals = 0;
    for (size_t k = 0; k < sizeof sweep_codecs / sizeof sweep_codecs[0]; k++) {
        const struct sweep_codec *sc = &sweep_codecs[k];
        const size_t blk = check_block(sc);
        for (int kind = 0; kind < 3; kind++) {
            pattern(kind, 7u + (uint32_t)kind, u);
            for (int i = 0; i < N; i++) x[i] = (float)u[i];
            cr_assert(!refused(sc, x), "%s refuses unit-scale values", codec_label(sc));
            round_trip(sc, x, y);
            block_errors(x, y, blk, ref_err);
            for (int e2 = 6; e2 <= 77; e2++) { /* 10^(e2/2): 1e3 .. 3.2e38, then FLT_MAX */
                double m = e2 == 77 ? (double)FLT_MAX : pow(10.0, e2 / 2.0);
                for (int i = 0; i < N; i++) x[i] = (float)(u[i] * m);
                if (refused(sc, x)) {
                    refusals++;
                    continue;
                }
                accepted++;
                round_trip(sc, x, y);
                block_errors(x, y, blk, err_m);
                for (size_t b = 0; b < N / blk; b++)
                    cr_assert(err_m[b] <= fmax(1.2 * ref_err[b] + 0.02, 0.25),
                              "%s kind %d at %g: block %zu error %g of max|x| (unit scale: %g), accepted",
                              codec_label(sc), kind, m, b, err_m[b], ref_err[b]);
            }
        }
        /* single outliers among small values, at every position class of a block */
        for (int e2 = 6; e2 <= 77; e2++) {
            double m = e2 == 77 ? (double)FLT_MAX : pow(10.0, e2 / 2.0);
            uint32_t s = 99;
            for (int i = 0; i < N; i++) x[i] = (float)(0.05 * (2 * unit(&s) - 1));
            x[(e2 * 37) % N] = (float)(e2 % 2 ? m : -m);
            x[N - 1] = (float)m;
            if (refused(sc, x)) {
                refusals++;
                continue;
            }
            accepted++;
            round_trip(sc, x, y);
            block_errors(x, y, blk, err_m);
            for (size_t b = 0; b < N / blk; b++)
                cr_assert(err_m[b] <= 0.5, "%s outlier %g: block %zu error %g of max|x|, accepted", codec_label(sc),
                          m, b, err_m[b]);
        }
    }
    cr_expect_gt(accepted, 1000);
    cr_expect_gt(refusals, 500);
}

Test(range_sweep, negative_control_q6_K_kernel_zeroes_huge_blocks)
{
    /* what the old check let through: the kernel's search overflows and stores scale 0 */
    static float x[N], y[N];
    static double e[N];
    uint32_t s = 5;
    for (int i = 0; i < N; i++) x[i] = (float)((2 * unit(&s) - 1) * 1e20);
    const struct sweep_codec q6 = {MQ_CODEC_Q6_K, false};
    round_trip(&q6, x, y);
    block_errors(x, y, 256, e);
    cr_expect_geq(e[0], 0.99, "the raw Q6_K kernel is expected to lose the block (error %g)", e[0]);
    cr_expect(refused(&q6, x), "the range check refuses it");
    /* and the same values scaled into range are accepted and faithful */
    for (int i = 0; i < N; i++) x[i] *= 1e-15f;
    cr_expect(!refused(&q6, x));
}

Test(range_sweep, exact_limits_of_the_element_types)
{
    const struct sweep_codec f16 = {MQ_CODEC_F16, false}, bf16 = {MQ_CODEC_BF16, false};
    const struct sweep_codec nf4dq = {MQ_CODEC_NF4, true}, nf4 = {MQ_CODEC_NF4, false};
    static float x[N];
    memset(x, 0, sizeof x);
    x[3] = 65519.996f; /* rounds to 65504 */
    cr_expect(!refused(&f16, x));
    x[3] = -65520.0f;
    cr_expect(refused(&f16, x));
    x[3] = 0x1.fefffep+127f; /* largest float rounding to bf16's largest finite value */
    cr_expect(!refused(&bf16, x));
    x[3] = -0x1.ffp+127f;    /* rounds to bf16 -Inf */
    cr_expect(refused(&bf16, x));
    x[3] = FLT_MAX;
    cr_expect(!refused(&nf4, x), "single-precision absmax holds FLT_MAX");
    cr_expect(refused(&nf4dq, x), "double quantization cannot");
    x[3] = 0x1.fffffep+126f;
    cr_expect(!refused(&nf4dq, x));
}

/* ---- end to end ---- */

/* FNV-1a of a whole file (0 when missing). */
static uint64_t file_hash(const char *path)
{
    size_t len;
    uint8_t *d = read_file_all(path, &len);
    if (!d) return 0;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) h = (h ^ d[i]) * 1099511628211ull;
    free(d);
    return h;
}

/* "name=hash;" for every file in dir (one level; folders by their name), in readdir order
 * sorted by name. */
static char *dir_state(const char *dir)
{
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort);
    cr_assert_geq(n, 0);
    size_t cap = 64 + (size_t)n * 300, len = 0;
    char *s = calloc(1, cap);
    for (int i = 0; i < n; i++) {
        if (list[i]->d_name[0] != '.') {
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", dir, list[i]->d_name);
            len += (size_t)snprintf(s + len, cap - len, "%s=%016llx;", list[i]->d_name, (unsigned long long)file_hash(p));
        }
        free(list[i]);
    }
    free(list);
    return s;
}

static void write_f32_st(const char *path, const char *name, int rows, int cols, const float *v)
{
    char hdr[512];
    snprintf(hdr, sizeof hdr, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[0,%d]}}", name, rows, cols,
             rows * cols * 4);
    cr_assert_eq(stw_write_raw(path, strlen(hdr), hdr, strlen(hdr), v, (size_t)rows * cols * 4), 0);
}

/* Converts `in` to out with args expecting exit 3 and a single line naming `tensor`; the folder
 * is unchanged. */
static void expect_refused(const char *dir, const char *in, const char *out, const char *args, const char *tensor,
                           const char *needle)
{
    char *before = dir_state(dir);
    struct cmd_result r = run_modelq("convert %s -o %s --quiet %s", in, out, args);
    cr_expect_eq(r.code, 3, "%s: exit %d: %s", args, r.code, r.err);
    char quoted[256];
    snprintf(quoted, sizeof quoted, "tensor '%s'", tensor);
    cr_expect(strstr(r.err, quoted) != NULL, "%s: names %s: %s", args, tensor, r.err);
    cr_expect(strstr(r.err, needle) != NULL, "%s: says '%s': %s", args, needle, r.err);
    const char *nl = strchr(r.err, '\n');
    cr_expect(nl && nl[1] == 0, "%s: one line: %s", args, r.err);
    char *after = dir_state(dir);
    cr_expect_str_eq(after, before, "%s: the folder changed", args);
    free(before);
    free(after);
    cmd_result_free(&r);
}

Test(range_cli, every_gguf_quant_type_refuses_values_its_blocks_cannot_hold)
{
    static const char *types[] = {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl", "q4_K", "q5_K", "q6_K"};
    static const double mags[] = {1e9, 1e15, 1e18, 1e25, 1e38, -3.4e38};
    char *dir = make_temp_dir("rangecli");
    char in[512], out[512];
    snprintf(in, sizeof in, "%s/in.safetensors", dir);
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    static float v[4 * 256];
    for (size_t m = 0; m < sizeof mags / sizeof mags[0]; m++) {
        for (int variant = 0; variant < 2; variant++) {
            uint32_t s = 3;
            for (int i = 0; i < 4 * 256; i++)
                v[i] = variant == 0 ? (float)((2 * unit(&s) - 1) * mags[m]) : (float)(0.02 * (2 * unit(&s) - 1));
            if (variant == 1) v[700] = (float)mags[m]; /* one outlier in a row of small values */
            write_f32_st(in, "blk.0.ffn_down.weight", 4, 256, v);
            for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
                char args[64];
                snprintf(args, sizeof args, "--type f16 --tensor-type ffn_down=%s", types[k]);
                expect_refused(dir, in, out, args, "blk.0.ffn_down.weight", "do not fit");
            }
        }
    }
    /* an earlier output stays as it was */
    for (int i = 0; i < 4 * 256; i++) v[i] = (float)(i % 7) - 3.0f;
    write_f32_st(in, "blk.0.ffn_down.weight", 4, 256, v);
    struct cmd_result r = run_modelq("convert %s -o %s --quiet --type q6_K", in, out);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    v[5] = 1e20f;
    write_f32_st(in, "blk.0.ffn_down.weight", 4, 256, v);
    expect_refused(dir, in, out, "--type q6_K", "blk.0.ffn_down.weight", "do not fit q6_K");
    /* output.weight of a q4_K file is Q6_K (llama-quantize's rule) */
    write_f32_st(in, "output.weight", 4, 256, v);
    expect_refused(dir, in, out, "--type q4_K", "output.weight", "do not fit q6_K");
    remove_tree(dir);
    free(dir);
}

Test(range_cli, float_targets_finite_in_finite_out)
{
    char *dir = make_temp_dir("rangefloat");
    char in[512], out[512];
    snprintf(in, sizeof in, "%s/in.safetensors", dir);
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    static float v[2 * 64];
    for (int i = 0; i < 128; i++) v[i] = (float)i / 8.0f;
    v[77] = 0x1.fefffep+127f; /* bf16 rounds it to its largest finite value: accepted */
    write_f32_st(in, "a.weight", 2, 64, v);
    struct cmd_result r = run_modelq("convert %s -o %s --quiet --type bf16", in, out);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    v[77] = -3.4e38f;
    write_f32_st(in, "a.weight", 2, 64, v);
    expect_refused(dir, in, out, "--type bf16", "a.weight", "do not fit bf16");
    expect_refused(dir, in, out, "--type f16", "a.weight", "do not fit f16");
    v[77] = 65520.0f;
    write_f32_st(in, "a.weight", 2, 64, v);
    expect_refused(dir, in, out, "--type f16", "a.weight", "flat index 77");
    /* 1-D tensors stay F32 in every GGUF target: nothing to refuse */
    remove_tree(dir);
    free(dir);
}

Test(range_cli, bitsandbytes_types)
{
    char *dir = make_temp_dir("rangebnb");
    char in[512], out[512], back[512];
    snprintf(in, sizeof in, "%s/in.safetensors", dir);
    snprintf(out, sizeof out, "%s/bnb", dir);
    snprintf(back, sizeof back, "%s/back.gguf", dir);
    static float v[2 * 256];
    uint32_t s = 11;
    for (int i = 0; i < 512; i++) v[i] = (float)((2 * unit(&s) - 1) * 3.0e38);
    write_f32_st(in, "model.layers.0.mlp.down_proj.weight", 2, 256, v);
    expect_refused(dir, in, out, "--type nf4-dq", "model.layers.0.mlp.down_proj.weight", "do not fit nf4");
    expect_refused(dir, in, out, "--type int8_row", "model.layers.0.mlp.down_proj.weight", "do not fit int8_row");
    /* float32 absmax holds them: written, and they read back finite (an F32 convert refuses NaN/Inf) */
    static const char *ok[] = {"nf4", "fp4"};
    for (int k = 0; k < 2; k++) {
        struct cmd_result r = run_modelq("convert %s -o %s --quiet --type %s", in, out, ok[k]);
        cr_expect_eq(r.code, 0, "%s: %s", ok[k], r.err);
        cmd_result_free(&r);
        r = run_modelq("convert %s -o %s --quiet --type f32", out, back);
        cr_expect_eq(r.code, 0, "%s read back: %s", ok[k], r.err);
        cmd_result_free(&r);
        remove_tree(out);
    }
    remove_tree(dir);
    free(dir);
}

/* ---- GGUF tensors copied unchanged ---- */

/* Puts a little-endian u16 at `off` of the file. */
static void patch_u16(const char *path, uint64_t off, uint16_t v)
{
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, (long)off, SEEK_SET), 0);
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    cr_assert_eq(fwrite(b, 1, 2, f), 2u);
    fclose(f);
}

/* Offset of tensor `name`'s data in a GGUF file. */
static uint64_t tensor_offset(const char *path, const char *name, uint64_t *nbytes)
{
    struct mq_model *m;
    struct mq_error err;
    cr_assert_eq(mq_model_open(path, &m, &err), MQ_OK, "%s", err.msg);
    uint64_t off = 0;
    for (size_t i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) off = m->tensors[i].offset, *nbytes = m->tensors[i].nbytes;
    mq_model_free(m);
    cr_assert_neq(off, 0, "%s has no %s", path, name);
    return off;
}

Test(range_copy, non_finite_block_scale_in_a_copied_tensor_is_refused)
{
    char *dir = make_temp_dir("rangecopy");
    char src[512], bad[512], out[512];
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    static const struct {
        const char *type;
        unsigned block_bytes, scale_off; /* fp16 d (Q4_K: d, then dmin at +2) */
    } types[] = {{"q8_0", 34, 0}, {"q4_K", 144, 2}, {"q6_K", 210, 208}};
    static const uint16_t scales[] = {0x7e00 /* NaN */, 0x7c00 /* +Inf */, 0xfc00 /* -Inf */};
    for (size_t k = 0; k < 3; k++) {
        snprintf(src, sizeof src, "%s/src-%s.gguf", dir, types[k].type);
        struct cmd_result r =
            run_modelq("convert testdata/tiny-llama -o %s --quiet --type %s --pure", src, types[k].type);
        cr_assert_eq(r.code, 0, "%s", r.err);
        cmd_result_free(&r);
        /* control: the intact file copies through */
        r = run_modelq("convert %s -o %s --quiet --type auto", src, out);
        cr_expect_eq(r.code, 0, "%s intact: %s", types[k].type, r.err);
        cmd_result_free(&r);
        remove(out);
        uint64_t nbytes = 0;
        uint64_t off = tensor_offset(src, "blk.1.ffn_up.weight", &nbytes);
        uint64_t block = nbytes / types[k].block_bytes - 1; /* the last block */
        for (size_t s = 0; s < 3; s++) {
            snprintf(bad, sizeof bad, "%s/bad-%s-%zu.gguf", dir, types[k].type, s);
            size_t len;
            uint8_t *d = read_file_all(src, &len);
            FILE *f = fopen(bad, "wb");
            cr_assert(d && f);
            cr_assert_eq(fwrite(d, 1, len, f), len);
            fclose(f);
            free(d);
            patch_u16(bad, off + block * types[k].block_bytes + types[k].scale_off, scales[s]);
            char needle[96];
            snprintf(needle, sizeof needle, "block %llu of this %s tensor", (unsigned long long)block, types[k].type);
            expect_refused(dir, bad, out, "--type auto", "blk.1.ffn_up.weight", needle);
            char args[64];
            snprintf(args, sizeof args, "--type %s --pure -j 3", types[k].type);
            expect_refused(dir, bad, out, args, "blk.1.ffn_up.weight", needle);
        }
    }
    remove_tree(dir);
    free(dir);
}

/*
** The scan's fast first pass (a vector sweep over the chunk) must see a suspect value wherever it
** is: in every position of chunks of 1 to 80 elements (the vector body and its scalar tail), for
** an element type (F16: |x| >= 65520 overflows) and an fp16-scale block type (Q8_0, rows of 32:
** a block overflows when its scale max|x| / 127 does not fit an fp16).
** Each chunk holds one bad value among ordinary ones; the scan must report exactly it.
*/
Test(range_scan, a_bad_value_anywhere_in_a_chunk_is_found)
{
    static const float bad[2][5] = {{NAN, INFINITY, -INFINITY, 1e6f, -70000.0f}, {NAN, INFINITY, -INFINITY, 1e7f, -3e7f}};
    float x[96];
    for (size_t n = 1; n <= 80; n++)
        for (size_t pos = 0; pos < n; pos++)
            for (size_t b = 0; b < 5; b++)
                for (int codec = 0; codec < 2; codec++) {
                    const enum mq_codec c = codec ? MQ_CODEC_Q8_0 : MQ_CODEC_F16;
                    const size_t len = codec ? (n + 31) / 32 * 32 : n; /* Q8_0: whole blocks */
                    if (codec && pos >= len) continue;
                    for (size_t i = 0; i < len; i++) x[i] = (float)((int)(i % 7) - 3) * 0.25f;
                    x[pos] = bad[codec][b];
                    struct mq_range_check rc;
                    mq_range_init(&rc);
                    mq_range_scan(&rc, c, NULL, x, len, len);
                    cr_assert_eq(rc.bad, 1, "codec %d, %zu elements, bad value %g at %zu: %" PRIu64 " found", codec,
                                 len, (double)bad[codec][b], pos, rc.bad);
                    cr_assert_eq(rc.first_bad, pos);
                }
    /* and the largest values that fit pass: 65504 in an F16 chunk and in a Q8_0 block */
    for (size_t i = 0; i < 64; i++) x[i] = i == 37 ? -65504.0f : 1.0f;
    struct mq_range_check rc;
    mq_range_init(&rc);
    mq_range_scan(&rc, MQ_CODEC_F16, NULL, x, 64, 64);
    mq_range_scan(&rc, MQ_CODEC_Q8_0, NULL, x, 64, 64);
    cr_assert_eq(rc.bad, 0);
}
