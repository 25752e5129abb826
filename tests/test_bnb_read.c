/*
** test_bnb_read.c - reading bitsandbytes checkpoints (formats/bnb_read.c, src/bnb_source.c):
**   - the bitsandbytes.md section 8 vectors V1-V3 decoded from files;
**   - mq_bnb_read_f32 on any element range equals mq_dequantize (+ mq_bnb_double_dequant) of the
**     same bytes, rounded to the tensor's dtype, for NF4/FP4 x double quant x block sizes x
**     dtypes and LLM.int8, odd counts, odd starts, partial blocks, ranges over many pieces;
**   - testdata/bnb/ is what tools/mkbnb writes (byte for byte); every folder opens with the
**     logical names, shapes and dtypes of testdata/tiny-llama; inspect (text and JSON) shows
**     them; every testdata/bnb/bad/CHECK folder fails with CHECK;
**   - convert: a bnb folder to GGUF equals converting a BF16 checkpoint holding our own
**     dequantization (byte for byte, Q/K permutation included); requantizing needs the flag;
**   - NF4 round trip on the bundled model (errors printed) and bitsandbytes' own mean |err|
**     on N(0,1) data (bitsandbytes.md 2.6).
*/
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bf16_read.h"
#include "bnb_source.h"
#include "bnbwrite.h"
#include "modelq/convert.h"
#include "modelq/half.h"
#include "modelq/model.h"
#include "modelq/quant.h"
#include "run_cmd.h"

#define FIX "testdata/bnb"
#define SRC "testdata/tiny-llama"

/* snprintf of a path that must fit */
#define PATHF(buf, ...)                                                                            \
    do {                                                                                           \
        int n_ = snprintf((buf), sizeof(buf), __VA_ARGS__);                                        \
        cr_assert(n_ >= 0 && (size_t)n_ < sizeof(buf), "path too long");                           \
    } while (0)

/* ---- helpers ---------------------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

static double rng_normal(uint64_t *s) /* Box-Muller */
{
    double u = rng_unit(s), v = rng_unit(s);
    return sqrt(-2.0 * log(u > 0 ? u : 1e-300)) * cos(6.283185307179586 * v);
}

static float round_dtype(enum mq_dtype d, float v)
{
    if (d == MQ_DTYPE_BF16) return mq_bf16_to_f32(mq_f32_to_bf16(v));
    if (d == MQ_DTYPE_F16) return mq_f16_to_f32(mq_f32_to_f16(v));
    return v;
}

static void *read_part(const struct mq_model *m, uint32_t file, uint64_t off, uint64_t len)
{
    uint8_t *p = malloc(len ? (size_t)len : 1);
    cr_assert_not_null(p);
    cr_assert_eq(pread(m->files[file].fd, p, (size_t)len, (off_t)off), (ssize_t)len);
    return p;
}

static float *f32_of(const uint8_t *b, size_t n)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 | (uint32_t)b[4 * i + 2] << 16 |
                     (uint32_t)b[4 * i + 3] << 24;
        memcpy(&v[i], &u, 4);
    }
    return v;
}

/* The whole tensor as our codecs dequantize its stored bytes (independent of bnb_source.c). */
static float *reference(const struct mq_model *m, size_t ti)
{
    const struct mq_tensor *t = &m->tensors[ti];
    const struct mq_bnb_source *b = t->bnb;
    cr_assert_not_null(b, "%s is not a bitsandbytes weight", t->name);
    uint8_t *data = read_part(m, t->file, t->offset, t->nbytes);
    float *out = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *out);
    struct mq_error err;
    if (b->codec == MQ_CODEC_INT8_ROW) {
        uint8_t *sb = read_part(m, b->scb.file, b->scb.offset, b->scb.nbytes);
        float *scb = f32_of(sb, (size_t)b->n_absmax);
        struct mq_qbuf in = {data, scb, NULL};
        cr_assert_eq(mq_dequantize(MQ_CODEC_INT8_ROW, NULL, &in, (size_t)t->numel, (size_t)t->shape[1], out, &err), MQ_OK,
                     "%s", err.msg);
        free(sb);
        free(scb);
    } else {
        float *absmax;
        uint8_t *ab = read_part(m, b->absmax.file, b->absmax.offset, b->absmax.nbytes);
        if (b->double_quant) {
            uint8_t *nb = read_part(m, b->nested_absmax.file, b->nested_absmax.offset, b->nested_absmax.nbytes);
            float *nested = f32_of(nb, (size_t)(b->nested_absmax.nbytes / 4));
            absmax = malloc((size_t)(b->n_absmax ? b->n_absmax : 1) * sizeof *absmax);
            mq_bnb_double_dequant(ab, nested, b->offset, (size_t)b->n_absmax, absmax);
            free(nb);
            free(nested);
        } else {
            absmax = f32_of(ab, (size_t)b->n_absmax);
        }
        struct mq_codec_params p = {b->blocksize, false};
        struct mq_qbuf in = {data, absmax, NULL};
        cr_assert_eq(mq_dequantize(b->codec, &p, &in, (size_t)t->numel, 0, out, &err), MQ_OK, "%s", err.msg);
        free(ab);
        free(absmax);
    }
    for (uint64_t i = 0; i < t->numel; i++) out[i] = round_dtype(t->dtype, out[i]);
    free(data);
    return out;
}

static char *build_dir(void)
{
    const char *b = getenv("MODELQ_BUILD_DIR");
    cr_assert_not_null(b, "MODELQ_BUILD_DIR is not set (run through ctest)");
    return (char *)b;
}

/* Runs mkbnb --all into a fresh temporary folder (caller removes it). */
static char *generate_all(void)
{
    char *dir = make_temp_dir("bnb-gen");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s/mkbnb' --all '%s' '%s' > '%s/log' 2>&1", build_dir(), SRC, dir, dir);
    int rc = system(cmd);
    cr_assert(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "mkbnb failed (see %s/log)", dir);
    char log[1024];
    PATHF(log, "%s/log", dir);
    unlink(log);
    return dir;
}

static struct mq_model *open_ok(const char *path)
{
    struct mq_model *m;
    struct mq_error err;
    cr_assert_eq(mq_model_open(path, &m, &err), MQ_OK, "%s: %s", path, err.msg);
    return m;
}

static void write_one(struct bnbw *w, const char *path)
{
    cr_assert_eq(bnbw_write(w, path), 0, "cannot write %s", path);
    bnbw_free(w);
}

/* ---- bitsandbytes.md section 8 vectors ------------------------------------------------------ */

/* A one-weight file: packed bytes + F32 absmax + NF4 map + JSON (n elements, 1-D, float32). */
static void write_v(const char *path, const uint8_t *packed, size_t nbytes, float absmax, unsigned n)
{
    struct bnbw *w = bnbw_new();
    uint64_t ps[2] = {nbytes, 1}, one[1] = {1}, sixteen[1] = {16}, shape[1] = {n};
    uint8_t ab[4], book[64];
    memcpy(ab, &absmax, 4); /* little-endian hosts only, as the test machine */
    for (unsigned c = 0; c < 16; c++) {
        float v = mq_nf4_value(c);
        memcpy(book + 4 * c, &v, 4);
    }
    char js[256];
    size_t jl = bnbw_qstate_json(js, sizeof js, "nf4", 64, "float32", 1, shape, false, 0.0f);
    uint64_t jshape[1] = {jl};
    cr_assert_eq(bnbw_add(w, "w.weight", "U8", 2, ps, packed, nbytes), 0);
    cr_assert_eq(bnbw_add(w, "w.weight.absmax", "F32", 1, one, ab, 4), 0);
    cr_assert_eq(bnbw_add(w, "w.weight.quant_map", "F32", 1, sixteen, book, 64), 0);
    cr_assert_eq(bnbw_add(w, "w.weight.quant_state.bitsandbytes__nf4", "U8", 1, jshape, js, jl), 0);
    write_one(w, path);
}

Test(bnb_vectors, v1_v2_decode)
{
    char *dir = make_temp_dir("bnb-v");
    char path[512];
    static const uint8_t v1[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
    static const uint8_t v2[8] = {0xf0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde};
    struct mq_error err;
    float got[16], x[16];
    uint8_t q[8];
    float am;
    struct mq_qbuf out = {q, &am, NULL};
    /* V1: x = 2 * NF4[i] */
    for (int i = 0; i < 16; i++) x[i] = 2.0f * mq_nf4_value((unsigned)i);
    cr_assert_eq(mq_quantize(MQ_CODEC_NF4, NULL, x, 16, 0, &out, false, &err), MQ_OK);
    cr_assert(memcmp(q, v1, 8) == 0 && am == 2.0f, "V1 quantizes to the doc's bytes");
    PATHF(path, "%s/v1.safetensors", dir);
    write_v(path, v1, 8, 2.0f, 16);
    struct mq_model *m = open_ok(path);
    cr_assert_eq(m->n_tensors, 1);
    cr_assert_not_null(m->tensors[0].bnb);
    cr_assert_eq(m->tensors[0].dtype, MQ_DTYPE_F32);
    cr_assert_eq(m->tensors[0].ndim, 1);
    cr_assert_eq(m->tensors[0].shape[0], 16);
    cr_assert_eq(mq_bnb_read_f32(m, 0, 0, 16, got, &err), MQ_OK, "%s", err.msg);
    for (int i = 0; i < 16; i++) cr_expect_eq(got[i], x[i], "V1 element %d: %.9g != %.9g", i, (double)got[i], (double)x[i]);
    mq_model_free(m);
    /* V2: ties take the lower code: [1, T0..T14] decodes to [1, NF4[0..14]] */
    x[0] = 1.0f;
    for (int i = 1; i < 16; i++) x[i] = mq_nf4_threshold((unsigned)i - 1);
    cr_assert_eq(mq_quantize(MQ_CODEC_NF4, NULL, x, 16, 0, &out, false, &err), MQ_OK);
    cr_assert(memcmp(q, v2, 8) == 0 && am == 1.0f, "V2 quantizes to the doc's bytes");
    PATHF(path, "%s/v2.safetensors", dir);
    write_v(path, v2, 8, 1.0f, 16);
    m = open_ok(path);
    cr_assert_eq(mq_bnb_read_f32(m, 0, 0, 16, got, &err), MQ_OK, "%s", err.msg);
    cr_expect_eq(got[0], 1.0f);
    for (int i = 1; i < 16; i++) cr_expect_eq(got[i], mq_nf4_value((unsigned)i - 1), "V2 element %d", i);
    mq_model_free(m);
    remove_tree(dir);
    free(dir);
}

Test(bnb_vectors, v3_double_quant_file)
{
    float x[130];
    for (int i = 0; i < 130; i++) x[i] = (float)(sin(0.37 * i) * (1 + i % 7));
    /* the doc's JSON, byte for byte, from the dev writer */
    static const char doc_json[] = "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [130], "
                                   "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": "
                                   "5.354514122009277}";
    cr_assert_eq(strlen(doc_json), 162);
    uint64_t shape[1] = {130};
    char js[256];
    size_t jl = bnbw_qstate_json(js, sizeof js, "nf4", 64, "float32", 1, shape, true, 5.354514122009277f);
    cr_expect_eq(jl, 162);
    cr_expect_str_eq(js, doc_json);
    char *dir = make_temp_dir("bnb-v3");
    char path[512];
    PATHF(path, "%s/v3.safetensors", dir);
    struct bnbw *w = bnbw_new();
    cr_assert_eq(bnbw_add_4bit(w, "w.weight", MQ_CODEC_NF4, 64, true, "float32", 1, shape, x), 0);
    size_t n;
    uint8_t packed[65];
    const uint8_t *p = bnbw_data(w, "w.weight", &n);
    cr_assert_eq(n, 65);
    memcpy(packed, p, 65);
    static const uint8_t head[16] = {0x78, 0xad, 0xee, 0xe8, 0x86, 0x42, 0x10, 0x65,
                                     0x57, 0xad, 0xf9, 0xab, 0xb9, 0x52, 0x64, 0x32};
    cr_expect(memcmp(packed, head, 16) == 0 && packed[63] == 0x87 && packed[64] == 0x40, "V3 packed bytes");
    const uint8_t *qa = bnbw_data(w, "w.weight.absmax", &n);
    cr_expect(n == 3 && qa[0] == 221 && qa[1] == 217 && qa[2] == 0, "V3 qabsmax [221, 217, 0]");
    const uint8_t *js_stored = bnbw_data(w, "w.weight.quant_state.bitsandbytes__nf4", &n);
    cr_expect(n == 162 && memcmp(js_stored, doc_json, 162) == 0, "V3 quant_state JSON is the doc's");
    write_one(w, path);

    struct mq_model *m = open_ok(path);
    cr_assert_eq(m->n_tensors, 1);
    const struct mq_bnb_source *b = m->tensors[0].bnb;
    cr_assert(b && b->double_quant && b->blocksize == 64 && b->n_absmax == 3);
    cr_expect_eq(b->offset, 5.354514122009277f);
    float got[130];
    struct mq_error err;
    cr_assert_eq(mq_bnb_read_f32(m, 0, 0, 130, got, &err), MQ_OK, "%s", err.msg);
    float *ref = reference(m, 0);
    /* absmax' = 6.9813318, 6.8083172, 2.3003263 (doc): element = NF4[code] * absmax' */
    static const double am[3] = {6.9813318, 6.8083172, 2.3003263};
    for (int i = 0; i < 130; i++) {
        cr_expect_eq(got[i], ref[i], "V3 element %d: reader %.9g, codec %.9g", i, (double)got[i], (double)ref[i]);
        unsigned c = (i & 1) ? (packed[i / 2] & 15u) : (packed[i / 2] >> 4u);
        double want = (double)mq_nf4_value(c) * am[i / 64];
        cr_expect(fabs((double)got[i] - want) <= 1e-6 * am[i / 64], "V3 element %d: %.9g, NF4[%u] x absmax' = %.9g", i,
                  (double)got[i], c, want);
    }
    free(ref);
    mq_model_free(m);
    remove_tree(dir);
    free(dir);
}

/* ---- any range equals mq_dequantize ------------------------------------------------------------ */

struct range_case {
    enum mq_codec codec;
    unsigned block;
    bool dq;
    const char *dtype;      /* JSON dtype (4-bit) or config torch_dtype (int8; NULL = no config) */
    uint64_t rows, cols;    /* cols 0: 1-D [rows] */
};

static void check_ranges(const struct range_case *rc, int idx)
{
    char *dir = make_temp_dir("bnb-range");
    uint64_t n = rc->rows * (rc->cols ? rc->cols : 1);
    float *x = malloc((size_t)n * sizeof *x);
    uint64_t s = 0x1234 + (uint64_t)idx;
    for (uint64_t i = 0; i < n; i++) {
        double v = rng_normal(&s) * 0.02;
        if (i % 997 == 0) v *= 9; /* outliers: blocks with different absmax */
        if ((i / 4096) % 7 == 3) v = 0; /* whole zero blocks / rows */
        x[i] = (float)v;
    }
    struct bnbw *w = bnbw_new();
    if (rc->codec == MQ_CODEC_INT8_ROW) {
        cr_assert_eq(bnbw_add_int8(w, "m.lin", rc->rows, rc->cols, x, idx % 2 == 0), 0);
        if (rc->dtype) {
            char cfg[512], json[256];
            PATHF(cfg, "%s/config.json", dir);
            int l = snprintf(json, sizeof json, "{\"torch_dtype\": \"%s\"}", rc->dtype);
            FILE *f = fopen(cfg, "w");
            cr_assert(f && fwrite(json, 1, (size_t)l, f) == (size_t)l && fclose(f) == 0);
        }
    } else {
        uint64_t shape[2] = {rc->rows, rc->cols};
        cr_assert_eq(bnbw_add_4bit(w, "m.lin.weight", rc->codec, rc->block, rc->dq, rc->dtype, rc->cols ? 2 : 1, shape, x),
                     0);
    }
    char path[512];
    PATHF(path, "%s/model.safetensors", dir);
    write_one(w, path);
    struct mq_model *m = open_ok(dir);
    cr_assert_eq(m->n_tensors, 1, "case %d: one logical tensor", idx);
    const struct mq_tensor *t = &m->tensors[0];
    cr_assert_str_eq(t->name, "m.lin.weight");
    cr_assert_eq(t->numel, n);
    cr_assert_eq(t->bnb->codec, rc->codec);
    float *ref = reference(m, 0);
    float *got = malloc((size_t)n * sizeof *got);
    struct mq_error err;
    cr_assert_eq(mq_bnb_read_f32(m, 0, 0, (size_t)n, got, &err), MQ_OK, "%s", err.msg);
    cr_assert(memcmp(got, ref, (size_t)n * sizeof *got) == 0, "case %d: whole tensor differs from mq_dequantize", idx);
    for (int k = 0; k < 300; k++) {
        uint64_t first = rng_next(&s) % n;
        uint64_t maxlen = n - first;
        uint64_t len = k % 3 == 0 ? 1 + rng_next(&s) % (maxlen < 200 ? maxlen : 200) : 1 + rng_next(&s) % maxlen;
        if (k == 0) first = 1, len = n - 1;
        if (k == 1) first = n - 1, len = 1;
        memset(got, 0xff, (size_t)len * sizeof *got);
        cr_assert_eq(mq_bnb_read_f32(m, 0, first, (size_t)len, got, &err), MQ_OK, "%s", err.msg);
        cr_assert(memcmp(got, ref + first, (size_t)len * sizeof *got) == 0,
                  "case %d: elements [%llu, +%llu) differ from mq_dequantize", idx, (unsigned long long)first,
                  (unsigned long long)len);
    }
    cr_expect_eq(mq_bnb_read_f32(m, 0, n - 3, 4, got, &err), MQ_E_USAGE, "a range past the end is refused");
    free(ref);
    free(got);
    free(x);
    mq_model_free(m);
    remove_tree(dir);
    free(dir);
}

Test(bnb_read, any_range_equals_dequantize)
{
    static const struct range_case cases[] = {
        {MQ_CODEC_NF4, 64, false, "bfloat16", 280, 250},
        {MQ_CODEC_NF4, 64, true, "bfloat16", 280, 250},
        {MQ_CODEC_NF4, 64, true, "float32", 70001, 0}, /* odd, 1-D, 5 nested blocks, many pieces */
        {MQ_CODEC_NF4, 32, true, "float16", 130, 513},
        {MQ_CODEC_NF4, 256, false, "float32", 33, 4097},
        {MQ_CODEC_NF4, 4096, true, "bfloat16", 3, 7001},
        {MQ_CODEC_FP4, 64, false, "float32", 99, 301},
        {MQ_CODEC_FP4, 128, true, "bfloat16", 1, 100003},
        {MQ_CODEC_INT8_ROW, 0, false, NULL, 77, 1111},        /* F16 by default */
        {MQ_CODEC_INT8_ROW, 0, false, "bfloat16", 300, 65},
        {MQ_CODEC_INT8_ROW, 0, false, "float32", 20000, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_ranges(&cases[i], (int)i);
}

/* ---- fixtures ---------------------------------------------------------------------------------- */

static size_t list_dir(const char *path, char names[][256], size_t cap)
{
    DIR *d = opendir(path);
    cr_assert_not_null(d, "cannot open %s", path);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        cr_assert_lt(n, cap);
        snprintf(names[n++], 256, "%s", e->d_name);
    }
    closedir(d);
    qsort(names, n, 256, (int (*)(const void *, const void *))strcmp);
    return n;
}

static void compare_trees(const char *want, const char *got, int *files)
{
    static char wa[64][256], gb[64][256]; /* recursion reuses them only after the loop reads them */
    size_t na = list_dir(want, wa, 64), nb = list_dir(got, gb, 64);
    char (*a)[256] = malloc(sizeof wa), (*b)[256] = malloc(sizeof gb);
    memcpy(a, wa, sizeof wa);
    memcpy(b, gb, sizeof gb);
    for (size_t i = 0; i < na || i < nb; i++) {
        cr_assert(i < na && i < nb && strcmp(a[i], b[i]) == 0, "file sets differ in %s: committed \"%s\", regenerated \"%s\"",
                  want, i < na ? a[i] : "(none)", i < nb ? b[i] : "(none)");
        char pw[1024], pg[1024];
        PATHF(pw, "%s/%s", want, a[i]);
        PATHF(pg, "%s/%s", got, b[i]);
        struct stat sw;
        cr_assert_eq(stat(pw, &sw), 0);
        if (S_ISDIR(sw.st_mode)) {
            compare_trees(pw, pg, files);
            continue;
        }
        cr_assert(files_equal(pw, pg), "%s differs from what mkbnb writes (rerun build/mkbnb %s %s if intended)", pw, SRC,
                  FIX);
        (*files)++;
    }
    free(a);
    free(b);
}

Test(bnb_fixtures, regenerated_byte_identical)
{
    char *dir = generate_all();
    char names[8][256];
    size_t n = list_dir(FIX, names, 8);
    cr_assert(n == 3 && !strcmp(names[0], "bad") && !strcmp(names[1], "int8") && !strcmp(names[2], "nf4-dq"),
              "testdata/bnb holds bad/, int8/ and nf4-dq/ only");
    int files = 0;
    static const char *const sub[] = {"nf4-dq", "int8", "bad"};
    for (int i = 0; i < 3; i++) {
        char w[512], g[512];
        PATHF(w, FIX "/%s", sub[i]);
        PATHF(g, "%s/%s", dir, sub[i]);
        compare_trees(w, g, &files);
    }
    cr_expect_eq(files, 5 + 5 + 16 * 2, "5 files per model folder, 2 per bad folder (compared %d)", files);
    remove_tree(dir);
    free(dir);
}

/* Every folder is tiny-llama's tensors, logically: same names, shapes, dtype, 14 bnb weights. */
static void check_logical_view(const char *path, enum mq_codec codec, bool dq)
{
    struct mq_model *src = open_ok(SRC), *m = open_ok(path);
    cr_assert_eq(m->n_tensors, src->n_tensors, "%s: %zu tensors", path, m->n_tensors);
    cr_expect_eq(m->n_warnings, 0, "%s: %s", path, m->n_warnings ? m->warnings[0] : "");
    size_t nq = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct mq_tensor *a = &src->tensors[i], *b = &m->tensors[i];
        cr_assert_str_eq(b->name, a->name, "%s: tensor %zu", path, i);
        cr_expect_eq(b->dtype, MQ_DTYPE_BF16, "%s: %s dtype", path, b->name);
        cr_expect(b->ndim == a->ndim && memcmp(b->shape, a->shape, sizeof a->shape) == 0 && b->numel == a->numel,
                  "%s: %s logical shape", path, b->name);
        if (!b->bnb) continue;
        nq++;
        cr_expect_eq(b->bnb->codec, codec, "%s: %s codec", path, b->name);
        cr_expect_eq(b->bnb->double_quant, dq);
        if (codec != MQ_CODEC_INT8_ROW) cr_expect_eq(b->bnb->blocksize, 64);
        cr_expect_eq(b->bnb->n_stored, codec == MQ_CODEC_INT8_ROW ? 3u : dq ? 6u : 4u, "%s: %s stored entries", path, b->name);
    }
    cr_expect_eq(nq, 14, "%s: 14 quantized linear weights", path);
    mq_model_free(src);
    mq_model_free(m);
}

Test(bnb_fixtures, open_as_logical_tensors)
{
    check_logical_view(FIX "/nf4-dq", MQ_CODEC_NF4, true);
    check_logical_view(FIX "/int8", MQ_CODEC_INT8_ROW, false);
    char *dir = generate_all();
    char p[512];
    PATHF(p, "%s/nf4", dir);
    check_logical_view(p, MQ_CODEC_NF4, false);
    PATHF(p, "%s/fp4", dir);
    check_logical_view(p, MQ_CODEC_FP4, false);
    remove_tree(dir);
    free(dir);
}

static const cJSON *find_tensor(const cJSON *root, const char *name)
{
    const cJSON *ts = cJSON_GetObjectItem(root, "tensors");
    for (const cJSON *t = ts ? ts->child : NULL; t; t = t->next)
        if (strcmp(cJSON_GetObjectItem(t, "name")->valuestring, name) == 0) return t;
    return NULL;
}

Test(bnb_fixtures, inspect_text_and_json)
{
    struct cmd_result r = run_modelq("inspect " FIX "/nf4-dq");
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_expect_not_null(strstr(r.out, "bitsandbytes: 14 quantized weights (84 stored entries)"), "%s", r.out);
    const char *row = strstr(r.out, "\nmodel.layers.0.mlp.down_proj.weight ");
    cr_assert_not_null(row, "%s", r.out);
    const char *eol = strchr(row + 1, '\n');
    char line[512];
    snprintf(line, sizeof line, "%.*s", (int)(eol - row - 1), row + 1);
    cr_expect(strstr(line, " BF16 ") && strstr(line, "[256, 512]") && strstr(line, "131,072") &&
                  strstr(line, "nf4 (block 64, double quant)"),
              "row: %s", line);
    cr_expect_not_null(strstr(r.out, "  nf4+dq          14 tensors          1,179,648 parameters"), "%s", r.out);
    cmd_result_free(&r);

    r = run_modelq("inspect " FIX "/int8");
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_expect_not_null(strstr(r.out, "int8_row (LLM.int8, SCB per row)"), "%s", r.out);
    cr_expect_not_null(strstr(r.out, "  int8_row        14 tensors          1,179,648 parameters"), "%s", r.out);
    cmd_result_free(&r);

    r = run_modelq("inspect --json " FIX "/nf4-dq");
    cr_assert_eq(r.code, 0, "%s", r.err);
    cJSON *root = cJSON_Parse(r.out);
    cr_assert_not_null(root);
    const cJSON *t = find_tensor(root, "model.layers.1.self_attn.k_proj.weight");
    cr_assert_not_null(t);
    cr_expect_str_eq(cJSON_GetObjectItem(t, "dtype")->valuestring, "BF16");
    const cJSON *sh = cJSON_GetObjectItem(t, "shape");
    cr_expect(cJSON_GetArraySize(sh) == 2 && cJSON_GetArrayItem(sh, 0)->valuedouble == 128 &&
              cJSON_GetArrayItem(sh, 1)->valuedouble == 256);
    const cJSON *b = cJSON_GetObjectItem(t, "bitsandbytes");
    cr_assert_not_null(b);
    cr_expect_str_eq(cJSON_GetObjectItem(b, "quant_type")->valuestring, "nf4");
    cr_expect_eq(cJSON_GetObjectItem(b, "blocksize")->valuedouble, 64);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(b, "double_quant")));
    cr_expect_eq(cJSON_GetObjectItem(b, "packed_bytes")->valuedouble, 16384);
    cr_expect_eq(cJSON_GetObjectItem(b, "stored_tensors")->valuedouble, 6);
    /* stored bytes: codes 16384 + absmax codes 512 + nested 8 + maps 64 + 1024 + the JSON */
    double bytes = cJSON_GetObjectItem(t, "bytes")->valuedouble;
    cr_expect(bytes > 16384 + 512 + 8 + 64 + 1024 + 150 && bytes < 16384 + 512 + 8 + 64 + 1024 + 200, "bytes %g", bytes);
    cr_expect_null(cJSON_GetObjectItem(find_tensor(root, "model.norm.weight"), "bitsandbytes"));
    const cJSON *tot = cJSON_GetObjectItem(root, "totals");
    const cJSON *bb = cJSON_GetObjectItem(cJSON_GetObjectItem(tot, "by_bitsandbytes"), "nf4+dq");
    cr_assert_not_null(bb);
    cr_expect_eq(cJSON_GetObjectItem(bb, "tensors")->valuedouble, 14);
    cr_expect_eq(cJSON_GetObjectItem(bb, "parameters")->valuedouble, 1179648);
    const cJSON *bf = cJSON_GetObjectItem(cJSON_GetObjectItem(tot, "by_dtype"), "BF16");
    cr_expect_eq(cJSON_GetObjectItem(bf, "tensors")->valuedouble, 7);
    cr_expect_eq(cJSON_GetObjectItem(tot, "tensors")->valuedouble, 21);
    cr_expect_eq(cJSON_GetObjectItem(tot, "parameters")->valuedouble, 1377536);
    cJSON_Delete(root);
    cmd_result_free(&r);
}

Test(bnb_fixtures, bad_folders_fail_with_their_check)
{
    char names[32][256];
    size_t n = list_dir(FIX "/bad", names, 32);
    cr_assert_eq(n, 16, "one folder per check");
    for (size_t i = 0; i < n; i++) {
        char path[512];
        PATHF(path, FIX "/bad/%s", names[i]);
        struct mq_model *m = NULL;
        struct mq_error err;
        mq_error_clear(&err);
        enum mq_status s = mq_model_open(path, &m, &err);
        cr_expect_eq(s, MQ_E_CORRUPT, "%s: status %d (%s)", names[i], (int)s, err.msg);
        cr_expect_null(m);
        cr_expect(err.check && strcmp(err.check, names[i]) == 0, "%s: failed with check %s: %s", names[i],
                  err.check ? err.check : "(none)", err.msg);
        cr_expect_not_null(strstr(err.msg, path), "%s: the message names the file: %s", names[i], err.msg);
        cr_expect(strstr(err.msg, "tensor '") || strcmp(names[i], "bnb-config") == 0, "%s: names the tensor: %s", names[i],
                  err.msg);
        cr_expect_null(strchr(err.msg, '\n'), "one line");
        struct cmd_result r = run_modelq("inspect %s", path);
        cr_expect_eq(r.code, 3, "%s: inspect exit %d", names[i], r.code);
        cr_expect_not_null(strstr(r.err, names[i]), "%s: %s", names[i], r.err);
        cmd_result_free(&r);
    }
}

/* More refusals (and two acceptances), built in a temporary folder. */
static void write_case(const char *dir, struct bnbw *w, const char *config)
{
    char path[512];
    PATHF(path, "%s/model.safetensors", dir);
    write_one(w, path);
    PATHF(path, "%s/config.json", dir);
    unlink(path);
    if (config) {
        FILE *f = fopen(path, "w");
        cr_assert(f && fputs(config, f) >= 0 && fclose(f) == 0);
    }
}

static void expect_check(const char *dir, const char *check, const char *what)
{
    struct mq_model *m = NULL;
    struct mq_error err;
    mq_error_clear(&err);
    enum mq_status s = mq_model_open(dir, &m, &err);
    cr_expect(s == MQ_E_CORRUPT && err.check && strcmp(err.check, check) == 0, "%s: want %s, got status %d check %s: %s",
              what, check, (int)s, err.check ? err.check : "(none)", err.msg);
    mq_model_free(m);
}

static struct bnbw *one_module(enum mq_codec codec, bool dq)
{
    struct bnbw *w = bnbw_new();
    float x[8 * 64];
    for (int i = 0; i < 8 * 64; i++) x[i] = (float)sin(0.1 * i);
    uint64_t shape[2] = {8, 64};
    int rc = codec == MQ_CODEC_INT8_ROW ? bnbw_add_int8(w, "m.lin", 8, 64, x, true)
                                        : bnbw_add_4bit(w, "m.lin.weight", codec, 64, dq, "bfloat16", 2, shape, x);
    cr_assert_eq(rc, 0);
    return w;
}

static void set_state(struct bnbw *w, const char *suffix, const char *json)
{
    char name[128];
    snprintf(name, sizeof name, "m.lin.weight.quant_state.bitsandbytes__%s", suffix);
    uint64_t n[1] = {strlen(json)};
    cr_assert_eq(bnbw_add(w, name, "U8", 1, n, json, strlen(json)), 0);
}

#define QC4(extra) "{\"quantization_config\": {\"quant_method\": \"bitsandbytes\", \"load_in_4bit\": true, " \
                   "\"bnb_4bit_quant_type\": \"nf4\"" extra "}}"

Test(bnb_read, more_refusals)
{
    char *dir = make_temp_dir("bnb-more");
    struct bnbw *w;
    const char *plain = "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [8, 64]";

    w = one_module(MQ_CODEC_NF4, false); /* __nf4 and __fp4 for one weight */
    set_state(w, "fp4", "{\"quant_type\": \"fp4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [8, 64]}");
    write_case(dir, w, NULL);
    expect_check(dir, "bnb-quant-state", "nf4 and fp4 entries");

    w = one_module(MQ_CODEC_NF4, false);
    bnbw_remove(w, "m.lin.weight.quant_state.bitsandbytes__nf4");
    set_state(w, "int4", "{}");
    write_case(dir, w, NULL);
    expect_check(dir, "bnb-quant-type", "unknown suffix");

    char js[512];
    w = one_module(MQ_CODEC_NF4, false);
    snprintf(js, sizeof js, "%s, \"nested_blocksize\": 256}", plain);
    set_state(w, "nf4", js);
    write_case(dir, w, NULL);
    expect_check(dir, "bnb-quant-state-keys", "one nested key of three");

    w = one_module(MQ_CODEC_NF4, false);
    snprintf(js, sizeof js, "%s, \"blocksize\": 64}", plain);
    set_state(w, "nf4", js);
    write_case(dir, w, NULL);
    expect_check(dir, "bnb-quant-state-keys", "duplicate key");

    w = one_module(MQ_CODEC_NF4, false);
    char big[5000];
    snprintf(big, sizeof big, "%s, \"x\": \"%04090d\"}", plain, 0);
    set_state(w, "nf4", big);
    write_case(dir, w, NULL);
    expect_check(dir, "bnb-quant-state", "JSON over 4096 bytes");

    w = one_module(MQ_CODEC_NF4, true);
    size_t jn;
    uint8_t *jd = bnbw_data(w, "m.lin.weight.quant_state.bitsandbytes__nf4", &jn);
    char *j2 = strndup((char *)jd, jn);
    char *off = strstr(j2, "\"nested_offset\": ");
    cr_assert_not_null(off);
    snprintf(off, jn - (size_t)(off - j2) + 1, "\"nested_offset\": 1e999}");
    set_state(w, "nf4", j2);
    free(j2);
    write_case(dir, w, NULL);
    expect_check(dir, "bnb-nested", "infinite nested_offset");

    w = one_module(MQ_CODEC_NF4, false); /* nested entries without double quant */
    float one[1] = {1};
    uint8_t ob[4];
    memcpy(ob, one, 4);
    uint64_t s1[1] = {1};
    cr_assert_eq(bnbw_add(w, "m.lin.weight.nested_absmax", "F32", 1, s1, ob, 4), 0);
    write_case(dir, w, NULL);
    expect_check(dir, "bnb-nested", "nested_absmax without double quant");

    w = one_module(MQ_CODEC_NF4, false);
    write_case(dir, w, QC4(", \"bnb_4bit_quant_storage\": \"bfloat16\""));
    expect_check(dir, "bnb-config", "quant storage bfloat16");

    w = one_module(MQ_CODEC_NF4, false);
    write_case(dir, w, "{\"quantization_config\": {\"quant_method\": \"gptq\"}}");
    expect_check(dir, "bnb-config", "another quant_method");

    w = one_module(MQ_CODEC_NF4, false);
    write_case(dir, w, "{\"quantization_config\": {\"quant_method\": \"bitsandbytes\", \"load_in_8bit\": true}}");
    expect_check(dir, "bnb-config", "4-bit weights, load_in_8bit");

    w = one_module(MQ_CODEC_NF4, false);
    write_case(dir, w, QC4(", \"bnb_4bit_use_double_quant\": \"yes\""));
    expect_check(dir, "bnb-config", "a string for a bool");

    w = one_module(MQ_CODEC_INT8_ROW, false); /* load_in_8bit and an I8 weight without SCB */
    bnbw_remove(w, "m.lin.SCB");
    bnbw_remove(w, "m.lin.weight_format");
    write_case(dir, w, "{\"quantization_config\": {\"quant_method\": \"bitsandbytes\", \"load_in_8bit\": true}}");
    expect_check(dir, "bnb-missing", "I8 weight without SCB under load_in_8bit");

    w = one_module(MQ_CODEC_INT8_ROW, false);
    bnbw_remove(w, "m.lin.weight");
    write_case(dir, w, NULL);
    expect_check(dir, "bnb-missing", "SCB without its weight");

    w = one_module(MQ_CODEC_INT8_ROW, false);
    bnbw_remove(w, "m.lin.SCB");
    write_case(dir, w, NULL);
    expect_check(dir, "bnb-orphan", "weight_format without SCB");

    w = one_module(MQ_CODEC_INT8_ROW, false);
    write_case(dir, w, "{\"torch_dtype\": \"float64\"}");
    expect_check(dir, "bnb-config", "int8 with torch_dtype float64");

    /* accepted: no config (a warning), int8 without weight_format, and a nested map that differs
     * from the dynamic map (a warning; bitsandbytes decodes with the stored map, and so do we) */
    w = one_module(MQ_CODEC_INT8_ROW, false);
    bnbw_remove(w, "m.lin.weight_format");
    write_case(dir, w, NULL);
    struct mq_model *m = open_ok(dir);
    cr_expect(m->n_tensors == 1 && m->tensors[0].bnb && m->tensors[0].dtype == MQ_DTYPE_F16);
    cr_expect(m->n_warnings == 1 && strstr(m->warnings[0], "no config.json"), "%s", m->n_warnings ? m->warnings[0] : "");
    mq_model_free(m);

    w = one_module(MQ_CODEC_NF4, true);
    size_t mn;
    uint8_t *map = bnbw_data(w, "m.lin.weight.nested_quant_map", &mn);
    cr_assert_eq(mn, 1024);
    uint8_t *q = bnbw_data(w, "m.lin.weight.absmax", NULL);
    unsigned code = q[0];
    float v;
    memcpy(&v, map + 4 * code, 4);
    v *= 0.5f;
    memcpy(map + 4 * code, &v, 4);
    write_case(dir, w, QC4(", \"bnb_4bit_use_double_quant\": true"));
    m = open_ok(dir);
    cr_expect(m->n_warnings == 1 && strstr(m->warnings[0], "1 of 256 entries differ"), "%s",
              m->n_warnings ? m->warnings[0] : "");
    cr_expect_eq(m->tensors[0].bnb->nested_map[code], v, "the stored map is kept");
    mq_model_free(m);
    remove_tree(dir);
    free(dir);
}

/* ---- convert ----------------------------------------------------------------------------------- */

/* DIR/NAME: a plain BF16 checkpoint holding our own dequantization of bnb folder `bnb`. */
static void write_expected(const char *bnb, const char *dir)
{
    mkdir(dir, 0755);
    struct mq_model *m = open_ok(bnb);
    struct bnbw *w = bnbw_new();
    struct mq_error err;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct mq_tensor *t = &m->tensors[i];
        uint8_t *bytes = malloc((size_t)t->numel * 2);
        if (t->bnb) {
            float *ref = reference(m, i);
            for (uint64_t j = 0; j < t->numel; j++) {
                uint16_t h = mq_f32_to_bf16(ref[j]);
                bytes[2 * j] = (uint8_t)h;
                bytes[2 * j + 1] = (uint8_t)(h >> 8);
            }
            free(ref);
        } else {
            cr_assert_eq(mq_model_read(m, i, 0, bytes, (size_t)t->nbytes, &err), MQ_OK);
        }
        cr_assert_eq(bnbw_add(w, t->name, "BF16", t->ndim, t->shape, bytes, (size_t)t->numel * 2), 0);
        free(bytes);
    }
    char path[1024];
    PATHF(path, "%s/model.safetensors", dir);
    write_one(w, path);
    static const char *const copies[] = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"};
    for (int k = 0; k < 4; k++) {
        char a[1024];
        PATHF(a, "%s/%s", bnb, copies[k]);
        PATHF(path, "%s/%s", dir, copies[k]);
        size_t len;
        uint8_t *d = read_file_all(a, &len);
        cr_assert_not_null(d);
        FILE *f = fopen(path, "wb");
        cr_assert(f && fwrite(d, 1, len, f) == len && fclose(f) == 0);
        free(d);
    }
    mq_model_free(m);
}

static void convert_ok(const char *in, const char *out, const char *args)
{
    struct cmd_result r = run_modelq("convert %s -o %s --quiet %s", in, out, args);
    cr_assert_eq(r.code, 0, "convert %s %s: %s", in, args, r.err);
    cmd_result_free(&r);
}

/* Converting the bnb folder == converting a BF16 checkpoint of our own dequantization. */
static void check_convert_equals_expected(const char *name)
{
    char *dir = make_temp_dir("bnb-conv");
    char bnb[512], exp_parent[512], exp[600], a[700], b[700];
    PATHF(bnb, FIX "/%s", name);
    PATHF(exp_parent, "%s/expected", dir);
    mkdir(exp_parent, 0755);
    PATHF(exp, "%s/%s", exp_parent, name); /* same folder name: same general.name */
    write_expected(bnb, exp);
    static const char *const types[] = {"f16", "auto", "f32", "bf16"};
    for (int k = 0; k < 4; k++) {
        char args[64];
        snprintf(args, sizeof args, "--type %s", types[k]);
        PATHF(a, "%s/bnb-%s.gguf", dir, types[k]);
        PATHF(b, "%s/exp-%s.gguf", dir, types[k]);
        convert_ok(bnb, a, args);
        convert_ok(exp, b, args);
        cr_expect(files_equal(a, b), "%s --type %s: the GGUF differs from converting our own dequantization", name,
                  types[k]);
    }
    /* small odd chunks and threads: same bytes */
    setenv("MODELQ_CHUNK_ELEMS", "700", 1);
    PATHF(a, "%s/bnb-f16-chunks.gguf", dir);
    convert_ok(bnb, a, "--type f16 -j 3");
    unsetenv("MODELQ_CHUNK_ELEMS");
    PATHF(b, "%s/exp-f16.gguf", dir);
    cr_expect(files_equal(a, b), "%s: chunks of 700 elements on 3 threads differ", name);
    remove_tree(dir);
    free(dir);
}

Test(bnb_convert, nf4_dq_to_gguf_is_own_dequantization) { check_convert_equals_expected("nf4-dq"); }

Test(bnb_convert, int8_to_gguf_is_own_dequantization) { check_convert_equals_expected("int8"); }

Test(bnb_convert, plan_and_requantize_rule)
{
    struct cmd_result r = run_modelq("convert " FIX "/nf4-dq --dry-run");
    cr_assert_eq(r.code, 0, "%s", r.err);
    /* No -o: the plan is the GGUF one (auto is a GGUF type), so rows carry GGUF names. */
    const char *row = strstr(r.out, "blk.0.attn_q.weight");
    cr_assert_not_null(row, "%s", r.out);
    cr_expect(strncmp(strstr(row, "nf4"), "nf4    bf16", 11) == 0, "auto: nf4 -> bf16: %.120s", row);
    cr_expect_not_null(strstr(r.out, "bitsandbytes: no GGUF type, dequantized to the source dtype"), "%s", r.out);
    cmd_result_free(&r);
    static const char *const quantized[] = {"q8_0", "q4_0", "nf4", "int8_row"};
    for (int k = 0; k < 4; k++) {
        r = run_modelq("convert " FIX "/nf4-dq --dry-run --type %s", quantized[k]);
        cr_expect_eq(r.code, 2, "%s without --allow-requantize: exit %d", quantized[k], r.code);
        cr_expect_not_null(strstr(r.err, "already quantized (nf4)"), "%s: %s", quantized[k], r.err);
        cr_expect_not_null(strstr(r.err, "--allow-requantize"));
        cmd_result_free(&r);
    }
    r = run_modelq("convert " FIX "/int8 --dry-run --type q8_0");
    cr_expect_eq(r.code, 2);
    cr_expect_not_null(strstr(r.err, "already quantized (int8_row)"), "%s", r.err);
    cmd_result_free(&r);
    r = run_modelq("convert " FIX "/nf4-dq --dry-run --stats --type q8_0 --allow-requantize");
    cr_expect_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    r = run_modelq("estimate " FIX "/nf4-dq");
    cr_expect_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
}

/* ---- round trip errors ------------------------------------------------------------------------- */

struct err_acc {
    double abs, sq, ref_sq;
    uint64_t n;
};

/* Adds n (original, decoded) pairs to a. */
static void err_acc_add(struct err_acc *a, const float *ref, const float *got, uint64_t n)
{
    for (uint64_t j = 0; j < n; j++) {
        double x = ref[j], e = (double)got[j] - x;
        a->abs += fabs(e);
        a->sq += e * e;
        a->ref_sq += x * x;
    }
    a->n += n;
}

static void err_acc_print(const char *label, const struct err_acc *a)
{
    fprintf(stderr, "  %-40s mean|err| %.4e  rmse %.4e  rel %.4f\n", label, a->abs / (double)a->n,
            sqrt(a->sq / (double)a->n), sqrt(a->sq / a->ref_sq));
}

static void roundtrip(const char *label, const char *path, double *rel_rmse_out)
{
    struct mq_model *src = open_ok(SRC), *m = open_ok(path);
    struct mq_error err;
    struct err_acc all = {0};
    fprintf(stderr, "%s: per tensor mean |err|, RMSE and RMSE / RMS(original):\n", label);
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct mq_tensor *t = &m->tensors[i];
        if (!t->bnb) continue;
        float *ref = bf16_read_f32(src, i, t->numel);
        float *got = malloc((size_t)t->numel * sizeof *got);
        cr_assert_eq(mq_bnb_read_f32(m, i, 0, (size_t)t->numel, got, &err), MQ_OK, "%s", err.msg);
        struct err_acc a = {0};
        err_acc_add(&a, ref, got, t->numel);
        err_acc_print(t->name, &a);
        all.abs += a.abs, all.sq += a.sq, all.ref_sq += a.ref_sq, all.n += a.n;
        free(ref);
        free(got);
    }
    err_acc_print("all", &all);
    *rel_rmse_out = sqrt(all.sq / all.ref_sq);
    mq_model_free(src);
    mq_model_free(m);
}

/* "model.layers.N.self_attn.q_proj.weight" -> "blk.N.attn_q.weight"; false for other tensors. */
static bool linear_gguf_name(const char *hf, char *out, size_t cap)
{
    static const char *const map[][2] = {
        {"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"}, {"self_attn.v_proj", "attn_v"},
        {"self_attn.o_proj", "attn_output"}, {"mlp.gate_proj", "ffn_gate"}, {"mlp.up_proj", "ffn_up"},
        {"mlp.down_proj", "ffn_down"},
    };
    unsigned layer;
    int used = 0;
    if (sscanf(hf, "model.layers.%u.%n", &layer, &used) != 1 || used == 0) return false;
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
        size_t n = strlen(map[k][0]);
        if (strncmp(hf + used, map[k][0], n) == 0 && strcmp(hf + used + n, ".weight") == 0)
            return snprintf(out, cap, "blk.%u.%s.weight", layer, map[k][1]) > 0;
    }
    return false;
}

/*
** The same 14 linear weights through a GGUF file of `type` (Q/K rows left unpermuted with the
** test-only debug_qk_permute = 1, so rows line up with the source), dequantized with the codec
** of each tensor's ggml type: the figure bitsandbytes' error is compared with.
*/
static void roundtrip_gguf(const char *type, const char *dir, double *rel_rmse_out)
{
    char path[512];
    PATHF(path, "%s/cmp-%s.gguf", dir, type);
    struct mq_convert_options o;
    mq_convert_options_default(&o);
    o.input = SRC;
    o.output = path;
    o.type = type;
    o.debug_qk_permute = 1;
    struct mq_convert_report rep;
    struct mq_error err;
    cr_assert_eq(mq_convert(&o, &rep, &err), MQ_OK, "%s", err.msg);
    mq_convert_report_free(&rep);
    struct mq_model *src = open_ok(SRC), *g = open_ok(path);
    struct err_acc all = {0};
    size_t n_linear = 0;
    for (size_t i = 0; i < src->n_tensors; i++) {
        char name[128];
        const struct mq_tensor *st = &src->tensors[i];
        if (!linear_gguf_name(st->name, name, sizeof name)) continue;
        long k = mq_model_find(g, name);
        cr_assert(k >= 0, "%s: no %s", path, name);
        const struct mq_tensor *gt = &g->tensors[k];
        enum mq_codec c = MQ_CODEC_COUNT;
        for (int j = 0; j < MQ_CODEC_COUNT; j++)
            if (mq_codec_info((enum mq_codec)j)->ggml_type == gt->ggml_type) c = (enum mq_codec)j;
        cr_assert(c != MQ_CODEC_COUNT, "%s: ggml type %d", name, gt->ggml_type);
        float *ref = bf16_read_f32(src, i, st->numel);
        uint8_t *q = malloc((size_t)gt->nbytes);
        float *got = malloc((size_t)st->numel * sizeof *got);
        cr_assert_eq(mq_model_read(g, (size_t)k, 0, q, (size_t)gt->nbytes, &err), MQ_OK);
        struct mq_qbuf in = {q, NULL, NULL};
        cr_assert_eq(mq_dequantize(c, NULL, &in, (size_t)st->numel, (size_t)st->shape[1], got, &err), MQ_OK, "%s",
                     err.msg);
        err_acc_add(&all, ref, got, st->numel);
        n_linear++;
        free(ref);
        free(q);
        free(got);
    }
    cr_expect_eq(n_linear, 14, "the 14 linear weights");
    fprintf(stderr, "GGUF %s, the same %zu linear weights: mean|err| %.4e  rmse %.4e  rel %.4f\n", type, n_linear,
            all.abs / (double)all.n, sqrt(all.sq / (double)all.n), sqrt(all.sq / all.ref_sq));
    *rel_rmse_out = sqrt(all.sq / all.ref_sq);
    mq_model_free(src);
    mq_model_free(g);
}

Test(bnb_roundtrip, bundled_model_errors)
{
    char *dir = generate_all();
    char p[512];
    double nf4, nf4dq, fp4, int8;
    PATHF(p, "%s/nf4", dir);
    roundtrip("nf4", p, &nf4);
    roundtrip("nf4-dq", FIX "/nf4-dq", &nf4dq);
    PATHF(p, "%s/fp4", dir);
    roundtrip("fp4", p, &fp4);
    roundtrip("int8", FIX "/int8", &int8);
    /* 4-bit: a few percent of the signal; double quant barely adds; FP4 is worse; int8 far better */
    cr_expect(nf4 > 0.03 && nf4 < 0.2, "nf4 relative RMSE %.4f", nf4);
    cr_expect(nf4dq >= nf4 * 0.99 && nf4dq < nf4 * 1.05, "nf4-dq %.4f vs nf4 %.4f", nf4dq, nf4);
    cr_expect(fp4 > nf4, "fp4 %.4f vs nf4 %.4f", fp4, nf4);
    cr_expect(int8 < nf4 / 5, "int8 %.4f vs nf4 %.4f", int8, nf4);
    /* GGUF for comparison: iq4_nl (block 32, fp16 scale, the same 4.5 bpw as NF4 block 64) is
     * more accurate than NF4 at block 64; q8_0 is close to LLM.int8 (smaller blocks: better) */
    double iq4, q8;
    roundtrip_gguf("iq4_nl", dir, &iq4);
    roundtrip_gguf("q8_0", dir, &q8);
    cr_expect(iq4 > 0.02 && iq4 < nf4, "iq4_nl %.4f vs nf4 %.4f", iq4, nf4);
    cr_expect(q8 < int8 * 1.5, "q8_0 %.4f vs int8 %.4f", q8, int8);
    remove_tree(dir);
    free(dir);
}

/* bitsandbytes' tests/test_functional.py thresholds (randn 1024 x 1024; mean +- 7 sigma, sigma ~7e-5). */
Test(bnb_roundtrip, normal_data_matches_bitsandbytes_figures)
{
    const size_t n = 1024 * 1024;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *absmax = malloc((n / 32) * sizeof *absmax);
    uint8_t *q = malloc(n / 2);
    uint64_t s = 42;
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_normal(&s);
    static const struct {
        enum mq_codec c;
        unsigned block;
        double want;
    } rows[] = {
        {MQ_CODEC_NF4, 32, 0.067746},  {MQ_CODEC_NF4, 64, 0.072798},  {MQ_CODEC_NF4, 128, 0.076831},
        {MQ_CODEC_NF4, 256, 0.080337}, {MQ_CODEC_NF4, 4096, 0.092547}, {MQ_CODEC_FP4, 32, 0.088925},
        {MQ_CODEC_FP4, 64, 0.096543},  {MQ_CODEC_FP4, 128, 0.102969}, {MQ_CODEC_FP4, 256, 0.108684},
        {MQ_CODEC_FP4, 4096, 0.129536},
    };
    struct mq_error err;
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        struct mq_codec_params p = {rows[k].block, false};
        struct mq_qbuf b = {q, absmax, NULL};
        cr_assert_eq(mq_quantize(rows[k].c, &p, x, n, 0, &b, true, &err), MQ_OK);
        cr_assert_eq(mq_dequantize(rows[k].c, &p, &b, n, 0, y, &err), MQ_OK);
        double sum = 0;
        for (size_t i = 0; i < n; i++) sum += fabs((double)y[i] - (double)x[i]);
        double mean = sum / (double)n;
        fprintf(stderr, "N(0,1) %s block %4u: mean |err| %.6f (bitsandbytes %.6f)\n", mq_codec_info(rows[k].c)->name,
                rows[k].block, mean, rows[k].want);
        cr_expect(fabs(mean - rows[k].want) < 7 * 7e-5, "%s block %u: mean |err| %.6f, bitsandbytes %.6f",
                  mq_codec_info(rows[k].c)->name, rows[k].block, mean, rows[k].want);
    }
    free(x);
    free(y);
    free(absmax);
    free(q);
}
