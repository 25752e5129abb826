/*
** test_imatrix_convert.c - `modelq convert --imatrix` end to end on testdata/tiny-llama.
**
** Fixtures: tools/mkimatrix writes a GGUF imatrix and a legacy .dat with the same statistics for
** the model's GGUF tensors (names and shapes taken from `convert --type f32`, whose rows are the
** ones every quantized output is made from: Q/K already permuted).
** (a) For every weighted type and both files, every tensor of the output whose ggml type takes
**     importances equals ggml_quantize_chunk(type, f32 rows, ..., importances) from the pinned
**     libggml-base; the importances are computed by the test from the imatrix as ggml's own GGUF
**     reader reads it (in_sum2 / counts, per matrix) - (b): the independent parser's values.
** (c) A shuffled imatrix changes the bytes; an imatrix of another model (tiny-qwen2) and one
**     sharing no name are refused in one line (exit 3); hostile files (every truncation, NaN,
**     negative, huge counts) are refused and never crash.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ggml_ref.h"
#include "run_cmd.h"

static struct mq_ggml G;
static bool have_ggml;
static char why[1200];
static char *dir;
static char bdir[1024];

static void setup(void)
{
    have_ggml = mq_ggml_open(&G, why, sizeof why);
    const char *b = getenv("MODELQ_BUILD_DIR");
    snprintf(bdir, sizeof bdir, "%s", b && *b ? b : "build");
    dir = make_temp_dir("imatrix");
    struct cmd_result r = run_modelq("convert testdata/tiny-llama --type f32 -o '%s/f32.gguf' -q", dir);
    cr_assert_eq(r.code, 0, "f32 convert failed: %s", r.err);
    cmd_result_free(&r);
    run_shell("'%s/mkimatrix' '%s/f32.gguf' '%s/im.gguf' '%s/im.dat' 5", bdir, dir, dir, dir);
    run_shell("'%s/mkimatrix' '%s/f32.gguf' '%s/sh.gguf' '%s/sh.dat' 5 --shuffle", bdir, dir, dir, dir);
}
static void teardown(void)
{
    if (dir) remove_tree(dir);
    free(dir);
    mq_ggml_close(&G);
}

static void need_ggml(void)
{
    if (have_ggml) return;
    if (getenv("CI")) cr_assert_fail("ggml library required when CI is set: %s", why);
    cr_skip_test("ggml not available: %s", why);
}

struct gfile {
    struct gguf_context *g;
    struct ggml_context *ctx;
};
static struct gfile gopen(const char *path)
{
    struct gfile f = {0};
    struct mq_gguf_init_params p = {false, &f.ctx};
    f.g = G.gguf_init_from_file(path, p);
    cr_assert(f.g, "ggml cannot read %s", path);
    return f;
}
static void gclose(struct gfile *f)
{
    G.gguf_free(f->g);
    G.ggml_free(f->ctx);
}

/* Importances of `name` from the imatrix GGUF as ggml reads it; NULL when absent. Caller frees. */
static float *importances(const struct gfile *im, const char *name, int64_t *n)
{
    char sn[160], cn[160];
    snprintf(sn, sizeof sn, "%s.in_sum2", name);
    snprintf(cn, sizeof cn, "%s.counts", name);
    struct ggml_tensor *s = G.ggml_get_tensor(im->ctx, sn), *c = G.ggml_get_tensor(im->ctx, cn);
    if (!s || !c) return NULL;
    int64_t ne[4];
    cr_assert(G.gguf_get_tensor_ne || mq_ggml_tensor_ne(&G, s, ne, why, sizeof why), "%s", why);
    cr_assert(mq_ggml_tensor_ne(&G, s, ne, why, sizeof why), "%s", why);
    const float *sd = G.ggml_get_data(s), *cd = G.ggml_get_data(c);
    float *w = malloc((size_t)(ne[0] * ne[1]) * sizeof *w);
    for (int64_t j = 0; j < ne[1]; j++)
        for (int64_t i = 0; i < ne[0]; i++) w[j * ne[0] + i] = cd[j] > 0.0f ? sd[j * ne[0] + i] / cd[j] : 1.0f;
    *n = ne[0] * ne[1];
    return w;
}

/* ggml types whose quantizer takes importances: Q4_0 2, Q4_1 3, Q5_0 6, Q5_1 7, Q2_K 10, Q3_K 11,
 * Q4_K 12, Q5_K 13, Q6_K 14, IQ4_NL 20, IQ4_XS 23 */
static bool weighted_type(int t)
{
    return t == 2 || t == 3 || t == 6 || t == 7 || t == 10 || t == 11 || t == 12 || t == 13 || t == 14 || t == 20 ||
           t == 23;
}

/* Compares every weighted tensor of out against ggml; returns how many were compared. */
static int compare_file(const char *out, const struct gfile *ref, const struct gfile *im, int *bad)
{
    struct gfile o = gopen(out);
    int compared = 0;
    for (int64_t i = 0; i < G.gguf_get_n_tensors(o.g); i++) {
        const char *name = G.gguf_get_tensor_name(o.g, i);
        int type = G.gguf_get_tensor_type(o.g, i);
        if (!weighted_type(type)) continue;
        struct ggml_tensor *rt = G.ggml_get_tensor(ref->ctx, name), *ot = G.ggml_get_tensor(o.ctx, name);
        cr_assert(rt && ot, "%s missing", name);
        int64_t ne[4], nw = 0;
        cr_assert(mq_ggml_tensor_ne(&G, rt, ne, why, sizeof why), "%s", why);
        float *w = importances(im, name, &nw);
        cr_assert(w, "%s: no importances in the fixture", name);
        cr_assert_eq(nw, ne[0] * ne[2], "%s: importance count", name);
        size_t nb = G.ggml_nbytes(ot);
        uint8_t *want = malloc(nb);
        const float *x = G.ggml_get_data(rt);
        size_t per_mat = G.ggml_row_size(type, ne[0]) * (size_t)ne[1];
        for (int64_t e = 0; e < ne[2]; e++)
            G.quantize_chunk(type, x + e * ne[0] * ne[1], want + e * per_mat, 0, ne[1], ne[0], w + e * ne[0]);
        if (memcmp(want, G.ggml_get_data(ot), nb) != 0) {
            (*bad)++;
            cr_log_error("%s: %s (type %d) differs from ggml_quantize_chunk with the imatrix", out, name, type);
        }
        compared++;
        free(want);
        free(w);
    }
    gclose(&o);
    return compared;
}

TestSuite(imatrix_convert, .init = setup, .fini = teardown, .timeout = 600);

Test(imatrix_convert, every_weighted_type_both_formats_equal_ggml)
{
    need_ggml();
    /* the low-bit mixtures (from q2_K on) once each: GGUF imatrix, not --pure (test_imatrix_llama
     * holds them to llama-quantize too), so the suite stays in time under the sanitizers */
    static const char *const types[] = {"q4_0", "q4_1", "q5_0",   "q5_1",   "iq4_nl", "q4_K",   "q5_K",
                                        "q6_K", "q4_K_S", "iq4_xs", "q2_K", "q2_K_S", "q3_K_S", "q3_K_M", "q3_K_L"};
    const size_t n_full = 10;
    static const char *const files[] = {"im.gguf", "im.dat"};
    char ref_path[1200], im_path[1200];
    snprintf(ref_path, sizeof ref_path, "%s/f32.gguf", dir);
    snprintf(im_path, sizeof im_path, "%s/im.gguf", dir);
    struct gfile ref = gopen(ref_path), im = gopen(im_path);
    int total = 0, bad = 0;
    for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
        for (int f = 0; f < 2; f++) {
            for (int pure = 0; pure < 2; pure++) {
                if (k >= n_full && (f || pure)) continue;
                struct cmd_result r = run_modelq("convert testdata/tiny-llama --type %s %s --imatrix '%s/%s' -o '%s/o.gguf' -q",
                                                 types[k], pure ? "--pure" : "", dir, files[f], dir);
                cr_assert_eq(r.code, 0, "%s %s: %s", types[k], files[f], r.err);
                cr_expect(strstr(r.err, "quantized without") == NULL, "unexpected warning: %s", r.err);
                cmd_result_free(&r);
                char out[1200];
                snprintf(out, sizeof out, "%s/o.gguf", dir);
                total += compare_file(out, &ref, &im, &bad);
                /* the keys, as llama-quantize writes them */
                struct gfile o = gopen(out);
                int64_t kf = -1, kd = -1, ke = -1, kc = -1;
                for (int64_t i = 0; i < G.gguf_get_n_kv(o.g); i++) {
                    const char *key = G.gguf_get_key(o.g, i);
                    if (!strcmp(key, "quantize.imatrix.file")) kf = i;
                    if (!strcmp(key, "quantize.imatrix.dataset")) kd = i;
                    if (!strcmp(key, "quantize.imatrix.entries_count")) ke = i;
                    if (!strcmp(key, "quantize.imatrix.chunks_count")) kc = i;
                }
                cr_assert(kf >= 0 && kd >= 0 && ke >= 0 && kc >= 0, "imatrix keys missing");
                cr_expect_eq(G.gguf_get_kv_type(o.g, ke), GGREF_GGUF_UINT32);
                cr_expect_eq(G.gguf_get_kv_type(o.g, kc), GGREF_GGUF_UINT32);
                cr_expect_eq(G.gguf_get_val_u32(o.g, ke), 16);
                cr_expect_eq(G.gguf_get_val_u32(o.g, kc), 7);
                cr_expect_str_eq(G.gguf_get_val_str(o.g, kd), "mkimatrix-seed-5");
                cr_expect(strstr(G.gguf_get_val_str(o.g, kf), files[f]) != NULL);
                gclose(&o);
            }
        }
    }
    fprintf(stderr, "imatrix_convert: %d tensors compared with ggml_quantize_chunk + imatrix, %d differ\n", total, bad);
    cr_expect_eq(bad, 0);
    cr_expect(total >= 10 * 2 * 2 * 10, "only %d tensors compared", total);
    gclose(&ref);
    gclose(&im);
}

Test(imatrix_convert, shuffled_imatrix_changes_bytes)
{
    struct cmd_result a = run_modelq("convert testdata/tiny-llama --type q4_K --imatrix '%s/im.gguf' -o '%s/a.gguf' -q", dir, dir);
    struct cmd_result b = run_modelq("convert testdata/tiny-llama --type q4_K --imatrix '%s/sh.gguf' -o '%s/b.gguf' -q", dir, dir);
    struct cmd_result c = run_modelq("convert testdata/tiny-llama --type q4_K -o '%s/c.gguf' -q", dir);
    cr_assert(a.code == 0 && b.code == 0 && c.code == 0);
    size_t la, lb, lc;
    uint8_t *da = read_file_all(strcat(strcpy(why, dir), "/a.gguf"), &la);
    uint8_t *db = read_file_all(strcat(strcpy(why, dir), "/b.gguf"), &lb);
    uint8_t *dc = read_file_all(strcat(strcpy(why, dir), "/c.gguf"), &lc);
    /* the last 64 KiB are tensor data in all three (same layout but the header's keys) */
    cr_assert(la == lb && la > 65536 && lc > 65536);
    cr_expect(memcmp(da + la - 65536, db + lb - 65536, 65536) != 0, "shuffled importances gave the same bytes");
    cr_expect(memcmp(da + la - 65536, dc + lc - 65536, 65536) != 0, "importances gave the unweighted bytes");
    free(da), free(db), free(dc);
    cmd_result_free(&a), cmd_result_free(&b), cmd_result_free(&c);
}

Test(imatrix_convert, another_models_imatrix_refused)
{
    struct cmd_result r = run_modelq("convert testdata/tiny-qwen2 --type f32 -o '%s/qw.gguf' -q", dir);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    run_shell("'%s/mkimatrix' '%s/qw.gguf' '%s/qw.im.gguf' '%s/qw.im.dat' 3", bdir, dir, dir, dir);
    for (int f = 0; f < 2; f++) {
        r = run_modelq("convert testdata/tiny-llama --type q4_0 --imatrix '%s/qw.im.%s' -o '%s/x.gguf'", dir,
                       f ? "dat" : "gguf", dir);
        cr_expect_eq(r.code, 3, "exit %d: %s", r.code, r.err);
        cr_expect(strstr(r.err, "another model") != NULL, "%s", r.err);
        cr_expect(!file_exists(strcat(strcpy(why, dir), "/x.gguf")));
        cmd_result_free(&r);
    }
    /* no name in common */
    FILE *f = fopen(strcat(strcpy(why, dir), "/foreign.dat"), "wb");
    int32_t hdr[] = {1, 10};
    fwrite(hdr, 4, 2, f);
    fwrite("foo.weight", 1, 10, f);
    int32_t cv[] = {1, 2};
    float v[2] = {1, 2};
    fwrite(cv, 4, 2, f);
    fwrite(v, 4, 2, f);
    fclose(f);
    r = run_modelq("convert testdata/tiny-llama --type q4_0 --imatrix '%s/foreign.dat' -o '%s/x.gguf'", dir, dir);
    cr_expect_eq(r.code, 3, "%s", r.err);
    cr_expect(strstr(r.err, "none of its 1 entries") != NULL, "%s", r.err);
    cmd_result_free(&r);
    /* bitsandbytes types take none */
    r = run_modelq("convert testdata/tiny-llama --type nf4 --imatrix '%s/im.dat' -o '%s/bnb'", dir, dir);
    cr_expect_eq(r.code, 2, "%s", r.err);
    cmd_result_free(&r);
}

/* Every truncation and a few corruptions of both files: refused (exit 3, one line), no crash. */
Test(imatrix_convert, hostile_files_refused)
{
    static const char *const files[] = {"im.gguf", "im.dat"};
    for (int k = 0; k < 2; k++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        size_t len;
        uint8_t *d = read_file_all(path, &len);
        cr_assert(d);
        char bad[1200];
        snprintf(bad, sizeof bad, "%s/bad.%s", dir, k ? "dat" : "gguf");
        int tried = 0;
        for (size_t cut = 0; cut < len; cut += (cut < 64 ? 1 : 997)) {
            FILE *f = fopen(bad, "wb");
            fwrite(d, 1, cut, f);
            fclose(f);
            struct cmd_result r = run_modelq("convert testdata/tiny-llama --type q4_0 --imatrix '%s' -o '%s/x.gguf' -q", bad, dir);
            cr_expect(r.code == 3 || r.code == 4, "%s cut at %zu: exit %d: %s", files[k], cut, r.code, r.err);
            cr_expect(strchr(r.err, '\n') == strrchr(r.err, '\n'), "more than one line: %s", r.err);
            cmd_result_free(&r);
            tried++;
        }
        /* corrupt values: NaN, negative, Inf (.dat: the third is an entry count of 2^31-1) */
        const uint32_t pokes[] = {0x7fc00000u, 0xbf800000u, 0x7f800000u};
        for (int p = 0; p < 3; p++) {
            uint8_t *c = malloc(len);
            memcpy(c, d, len);
            size_t at = len - 32; /* GGUF: the last tensor is a counts F32 [1,1] padded to 32 bytes */
            if (k && p == 2) at = 0;                  /* entry count 0x7f800000 */
            else if (k) {
                int32_t nl;
                memcpy(&nl, c + 4, 4);
                at = 4 + 4 + (size_t)nl + 8;          /* the first value */
            }
            memcpy(c + at, &pokes[p], 4);
            FILE *f = fopen(bad, "wb");
            fwrite(c, 1, len, f);
            fclose(f);
            struct cmd_result r = run_modelq("convert testdata/tiny-llama --type q4_0 --imatrix '%s' -o '%s/x.gguf' -q", bad, dir);
            cr_expect_eq(r.code, 3, "%s poke %d: exit %d: %s", files[k], p, r.code, r.err);
            cmd_result_free(&r);
            free(c);
        }
        free(d);
        fprintf(stderr, "imatrix_convert: %s: %d truncations refused\n", files[k], tried);
    }
}

/*
** Q2_K_S makes every tensor but token_embd / output Q2_K only with importances: with an imatrix
** that lacks one of them, llama-quantize stops ("Missing importance matrix for tensor ..."), and
** so does modelq (exit 3, nothing written). The imatrix is the legacy fixture minus that entry.
*/
Test(imatrix_convert, q2_K_S_entry_missing_refused)
{
    struct cmd_result r = run_modelq("convert testdata/tiny-llama --type q2_K_S --imatrix '%s/im.dat' -o '%s/ks.gguf' -q",
                                     dir, dir);
    cr_assert_eq(r.code, 0, "q2_K_S with the full imatrix: %s", r.err);
    cmd_result_free(&r);
    /* the first Q2_K tensor of a block in that file (token_embd / output are exempt) */
    char path[1200], victim[160] = "";
    snprintf(path, sizeof path, "%s/ks.gguf", dir);
    if (have_ggml) {
        struct gfile o = gopen(path);
        for (int64_t i = 0; i < G.gguf_get_n_tensors(o.g) && !victim[0]; i++)
            if (G.gguf_get_tensor_type(o.g, i) == 10 && strncmp(G.gguf_get_tensor_name(o.g, i), "blk.", 4) == 0)
                snprintf(victim, sizeof victim, "%s", G.gguf_get_tensor_name(o.g, i));
        gclose(&o);
    } else {
        snprintf(victim, sizeof victim, "blk.0.attn_q.weight");
    }
    cr_assert(victim[0], "no Q2_K tensor in %s", path);
    /* legacy layout: i32 n; per entry i32 len, name, i32 ncall, i32 nval, f32[nval]; trailer */
    snprintf(path, sizeof path, "%s/im.dat", dir);
    size_t len;
    uint8_t *d = read_file_all(path, &len);
    cr_assert(d && len > 4);
    int32_t n;
    memcpy(&n, d, 4);
    size_t at = 4, cut = 0, cut_len = 0;
    for (int32_t k = 0; k < n; k++) {
        int32_t nl, nv;
        memcpy(&nl, d + at, 4);
        memcpy(&nv, d + at + 8 + (size_t)nl, 4);
        size_t size = 4 + (size_t)nl + 8 + 4 * (size_t)nv;
        if ((size_t)nl == strlen(victim) && memcmp(d + at + 4, victim, (size_t)nl) == 0) cut = at, cut_len = size;
        at += size;
    }
    cr_assert(cut_len, "%s not in %s", victim, path);
    n--;
    memcpy(d, &n, 4);
    snprintf(path, sizeof path, "%s/less.dat", dir);
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fwrite(d, 1, cut, f);
    fwrite(d + cut + cut_len, 1, len - cut - cut_len, f);
    fclose(f);
    free(d);
    r = run_modelq("convert testdata/tiny-llama --type q2_K_S --imatrix '%s' -o '%s/less.gguf' -q", path, dir);
    cr_expect_eq(r.code, 3, "exit %d: %s", r.code, r.err);
    cr_expect(strstr(r.err, "no importances for") && strstr(r.err, victim) && strstr(r.err, "Missing importance matrix"),
              "%s", r.err);
    cr_expect(strchr(r.err, '\n') == strrchr(r.err, '\n'), "not one line: %s", r.err);
    cmd_result_free(&r);
    snprintf(path, sizeof path, "%s/less.gguf", dir);
    cr_expect_neq(access(path, F_OK), 0, "output written");
    /* the same imatrix is fine for q2_K (llama-quantize warns and quantizes that tensor without) */
    r = run_modelq("convert testdata/tiny-llama --type q2_K --imatrix '%s/less.dat' -o '%s/less.gguf'", dir, dir);
    cr_expect_eq(r.code, 0, "q2_K: exit %d: %s", r.code, r.err);
    cr_expect(strstr(r.err, victim) && strstr(r.err, "quantized without"), "%s", r.err);
    cmd_result_free(&r);
}
