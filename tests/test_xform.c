/*
** test_xform.c - per-tensor sources and transforms through the plan API (src/plan.h), the way an
** architecture table uses them: a test writer's prepare adds the tensors, the engine streams them.
**
**   - stacking: 4 experts [8, 256] (F32 and BF16) stacked into [4, 8, 256] give exactly the bytes
**     of one [32, 256] tensor holding their concatenation, for f32 / q8_0 / q4_K, with chunks
**     inside one expert, across experts, and pieces of rows (the chunk test hook), 1 and 3 threads;
**   - split: rows [8, 24) of the concatenation give the bytes of experts 1 and 2 stacked;
**   - ADD_CONST: a tensor with +1.0 gives the bytes of the tensor with 1.0 added beforehand (f32:
**     the values exactly; q8_0 / q4_K: identical bytes), a 1-D norm included (Gemma's w + 1);
**   - refusals: stacking different shapes, a transform on a tensor copied unchanged;
**   - memory: 8 experts of [2048, 4096] BF16 (128 MiB, a sparse file) stacked and quantized to
**     q8_0 (dry run: every chunk read, converted and quantized) peak under RSS_CAP_MIB (not checked
**     under ASan, whose shadow memory and quarantine are not the product's).
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "modelq/convert.h"
#include "modelq/half.h"
#include "modelq/model.h"
#include "outfile.h"
#include "plan.h"
#include "run_cmd.h"
#include "sanitizer.h"
#include "stwrite.h"
#include "modelq/testing.h"

/* Chunks of `chunk` elements (a decimal string) for the next in-process run; NULL: the default. */
static void set_chunk(const char *chunk)
{
    struct mq_test_hooks h = {0};
    if (chunk) h.chunk_elems = strtoull(chunk, NULL, 10);
    mq_testing_set_hooks(&h);
}

#define ROWS 8
#define COLS 256
#define NEXP 4
#define RSS_CAP_MIB 64


/* ---- a test writer: tensor data back to back from offset 0, no header ---- */

enum mode { M_PLAIN, M_STACK, M_SPLIT, M_ADD, M_STACK_BAD, M_ADD_RAW };
static enum mode MODE;
static const char *OUT_NAME = "blk.0.ffn_up_exps.weight";

static bool tw_stores(enum mq_codec c)
{
    (void)c;
    return true;
}

/* Drops every input tensor whose name starts with `prefix` (they went into a stacked one). */
static void drop_prefix(struct mq_plan *p, const char *prefix)
{
    size_t w = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (strncmp(p->t[i].name, prefix, strlen(prefix)) == 0) {
            mq_plan_tensor_release(&p->t[i]);
            continue;
        }
        p->t[w++] = p->t[i];
    }
    p->n = w;
}

static long find(const struct mq_plan *p, const char *name)
{
    long i = mq_model_find(p->model, name);
    cr_assert_geq(i, 0, "%s", name);
    return i;
}

static void rename_to(struct mq_plan_tensor *t, const char *name)
{
    free(t->name);
    t->name = strdup(name);
}

static enum mq_status tw_prepare(struct mq_plan *p, struct mq_error *err)
{
    long srcs[NEXP];
    char name[64];
    for (int e = 0; e < NEXP; e++) {
        snprintf(name, sizeof name, "experts.%d.weight", e);
        srcs[e] = find(p, name);
    }
    switch (MODE) {
    case M_PLAIN: /* the concatenation, as stored */
        for (size_t i = 0; i < p->n; i++)
            if (!strcmp(p->t[i].name, "cat.weight")) rename_to(&p->t[i], OUT_NAME);
        return MQ_OK;
    case M_STACK:
        MQ_TRY(mq_plan_add_stacked(p, OUT_NAME, srcs, NEXP, err));
        drop_prefix(p, "experts.");
        drop_prefix(p, "cat.");
        return MQ_OK;
    case M_SPLIT: /* experts 1 and 2 as rows [8, 24) of the concatenation, and as a stack */
        MQ_TRY(mq_plan_add_split(p, "split.weight", find(p, "cat.weight"), ROWS, 2 * ROWS, err));
        MQ_TRY(mq_plan_add_stacked(p, "stack.weight", srcs + 1, 2, err));
        drop_prefix(p, "experts.");
        drop_prefix(p, "cat.");
        return MQ_OK;
    case M_ADD:
        for (size_t i = 0; i < p->n; i++) {
            if (!strcmp(p->t[i].name, "norm.weight"))
                MQ_TRY(mq_plan_add_xform(&p->t[i], (struct mq_xform){.kind = MQ_XFORM_ADD_CONST, .c = 1.0f}, err));
        }
        return MQ_OK;
    case M_STACK_BAD: {
        long two[2] = {srcs[0], find(p, "cat.weight")};
        return mq_plan_add_stacked(p, OUT_NAME, two, 2, err);
    }
    case M_ADD_RAW:
        for (size_t i = 0; i < p->n; i++)
            if (!strcmp(p->t[i].name, "ids"))
                return mq_plan_add_xform(&p->t[i], (struct mq_xform){.kind = MQ_XFORM_ADD_CONST, .c = 1.0f}, err);
        return MQ_OK;
    }
    return MQ_OK;
}

static enum mq_status tw_layout(struct mq_plan *p, struct mq_error *err)
{
    (void)err;
    uint64_t off = 0;
    for (size_t i = 0; i < p->n; i++) {
        p->t[i].offset = off;
        off += p->t[i].bytes;
    }
    p->data_start = 0;
    p->file_size = off;
    return MQ_OK;
}

static enum mq_status tw_finish(struct mq_plan *p, struct mq_outfile *out, struct mq_error *err)
{
    (void)p;
    (void)out;
    (void)err;
    return MQ_OK;
}

static const struct mq_writer_ops TW = {
    .name = "test", .ext = ".bin", .stores_codec = tw_stores, .prepare = tw_prepare, .layout = tw_layout,
    .finish = tw_finish, .own_checksums = true,
};

/* One tensor's output bytes (malloc'd), its codec and shape, after a plan + run in `mode`. */
struct got {
    uint8_t *data;
    uint64_t bytes;
    enum mq_codec codec;
    uint32_t ndim;
    uint64_t shape[MQ_MAX_DIMS];
};

static enum mq_status convert_mode(const char *in, const char *type, enum mode mode, unsigned threads,
                                   const char *chunk, const char *tensor, struct got *g, struct mq_error *err)
{
    MODE = mode;
    struct mq_model *m;
    cr_assert_eq(mq_model_open(in, &m, err), MQ_OK, "%s", err->msg);
    struct mq_convert_options o;
    mq_convert_options_default(&o);
    o.input = in;
    o.type = type;
    o.pure = true;
    enum mq_target target;
    cr_assert(mq_target_for_convert(type, &target));
    struct mq_plan p;
    enum mq_status s = mq_plan_build(&p, m, &o, target, &TW, err);
    if (s != MQ_OK) {
        mq_plan_free(&p);
        mq_model_free(m);
        return s;
    }
    char path[600];
    char *dir = make_temp_dir("xform");
    snprintf(path, sizeof path, "%s/out.bin", dir);
    struct mq_outfile *out;
    cr_assert_eq(mq_outfile_create(path, p.file_size, &out, err), MQ_OK, "%s", err->msg);
    set_chunk(chunk);
    s = mq_plan_run(&p, out, threads, false, err);
    set_chunk(NULL);
    cr_assert_eq(s, MQ_OK, "%s", err->msg);
    cr_assert_eq(mq_outfile_commit(out, err), MQ_OK, "%s", err->msg);
    size_t len;
    uint8_t *all = read_file_all(path, &len);
    cr_assert_eq(len, p.file_size);
    bool found = false;
    for (size_t i = 0; i < p.n; i++) {
        const struct mq_plan_tensor *t = &p.t[i];
        if (strcmp(t->name, tensor) != 0) continue;
        found = true;
        g->bytes = t->bytes;
        g->codec = t->codec;
        g->ndim = t->ndim;
        memcpy(g->shape, t->shape, sizeof g->shape);
        g->data = malloc(t->bytes);
        memcpy(g->data, all + t->offset, t->bytes);
    }
    cr_assert(found, "no tensor %s", tensor);
    free(all);
    remove_tree(dir);
    free(dir);
    mq_plan_free(&p);
    mq_model_free(m);
    return MQ_OK;
}

/* ---- inputs ---- */

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* experts.E.weight [8, 256] x 4, cat.weight [32, 256] = their concatenation, cat1.weight = cat + 1
** (F32), norm.weight [256], norm1.weight = norm + 1 (F32), ids [4] I32; in `dtype` (F32 or BF16;
** the +1 tensors always F32, holding the float32 sums of the dtype's values). */
static void write_inputs(const char *path, bool bf16)
{
    enum { N = NEXP * ROWS * COLS };
    static float v[N], norm[COLS];
    uint32_t s = 3;
    for (int i = 0; i < N; i++) v[i] = (float)((int)(lcg(&s) % 4001) - 2000) / 1337.0f;
    for (int i = 0; i < COLS; i++) norm[i] = (float)((int)(lcg(&s) % 201) - 100) / 400.0f;
    if (bf16) {
        for (int i = 0; i < N; i++) v[i] = mq_bf16_to_f32(mq_f32_to_bf16(v[i]));
        for (int i = 0; i < COLS; i++) norm[i] = mq_bf16_to_f32(mq_f32_to_bf16(norm[i]));
    }
    const size_t es = bf16 ? 2 : 4;
    const char *dt = bf16 ? "BF16" : "F32";
    size_t cap = (size_t)N * es * 2 + (size_t)N * 4 + COLS * (es + 4) + 16;
    uint8_t *data = calloc(1, cap);
    char hdr[4096];
    size_t off = 0, hl = 0;
    hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "{");
#define PUT(name, dtype, shape, src, count, fsize)                                                              \
    do {                                                                                                       \
        for (int i_ = 0; i_ < (count); i_++) {                                                                 \
            float f_ = (src)[i_];                                                                              \
            if ((fsize) == 2) {                                                                                \
                uint16_t b_ = mq_f32_to_bf16(f_);                                                              \
                memcpy(data + off + 2 * (size_t)i_, &b_, 2);                                                   \
            } else {                                                                                           \
                memcpy(data + off + 4 * (size_t)i_, &f_, 4);                                                   \
            }                                                                                                  \
        }                                                                                                      \
        hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":%s,"         \
                               "\"data_offsets\":[%zu,%zu]}", off ? "," : "", name, dtype, shape, off,         \
                               off + (size_t)(count) * (fsize));                                               \
        off += (size_t)(count) * (fsize);                                                                      \
    } while (0)
    char nm[64];
    for (int e = 0; e < NEXP; e++) {
        snprintf(nm, sizeof nm, "experts.%d.weight", e);
        PUT(nm, dt, "[8,256]", v + e * ROWS * COLS, ROWS * COLS, es);
    }
    PUT("cat.weight", dt, "[32,256]", v, N, es);
    static float v1[N], n1[COLS];
    for (int i = 0; i < N; i++) v1[i] = v[i] + 1.0f;
    for (int i = 0; i < COLS; i++) n1[i] = norm[i] + 1.0f;
    PUT("cat1.weight", "F32", "[32,256]", v1, N, 4);
    PUT("norm.weight", dt, "[256]", norm, COLS, es);
    PUT("norm1.weight", "F32", "[256]", n1, COLS, 4);
#undef PUT
    hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, ",\"ids\":{\"dtype\":\"I32\",\"shape\":[4],"
                           "\"data_offsets\":[%zu,%zu]}}", off, off + 16);
    off += 16;
    cr_assert_eq(stw_write_raw(path, hl, hdr, hl, data, off), 0);
    free(data);
}

static const char *const TYPES[] = {"f32", "q8_0", "q4_K"};

Test(xform, stacked_experts_equal_the_concatenated_tensor)
{
    char *dir = make_temp_dir("stack");
    char in[600];
    struct mq_error err;
    static const char *chunks[] = {NULL, "1000", "100"}; /* default; 3 rows (across experts); pieces */
    for (int bf = 0; bf < 2; bf++) {
        snprintf(in, sizeof in, "%s/in%d.safetensors", dir, bf);
        write_inputs(in, bf);
        for (size_t k = 0; k < 3; k++) {
            struct got ref, got;
            cr_assert_eq(convert_mode(in, TYPES[k], M_PLAIN, 1, NULL, OUT_NAME, &ref, &err), MQ_OK, "%s", err.msg);
            cr_expect_eq(ref.ndim, 2);
            for (size_t c = 0; c < 3; c++) {
                for (unsigned th = 1; th <= 3; th += 2) {
                    cr_assert_eq(convert_mode(in, TYPES[k], M_STACK, th, chunks[c], OUT_NAME, &got, &err), MQ_OK,
                                 "%s", err.msg);
                    cr_expect_eq(got.ndim, 3);
                    cr_expect(got.shape[0] == NEXP && got.shape[1] == ROWS && got.shape[2] == COLS,
                              "shape [4, 8, 256]");
                    cr_expect_eq(got.codec, ref.codec, "%s: the same type", TYPES[k]);
                    cr_assert_eq(got.bytes, ref.bytes, "%s", TYPES[k]);
                    cr_expect(memcmp(got.data, ref.data, ref.bytes) == 0,
                              "%s %s: stacked bytes differ from the concatenated tensor (chunk %s, -j %u)",
                              bf ? "BF16" : "F32", TYPES[k], chunks[c] ? chunks[c] : "default", th);
                    free(got.data);
                }
            }
            /* split: rows [8, 24) of cat == experts 1..2 stacked */
            struct got sp, st;
            cr_assert_eq(convert_mode(in, TYPES[k], M_SPLIT, 2, "1000", "split.weight", &sp, &err), MQ_OK, "%s",
                         err.msg);
            cr_assert_eq(convert_mode(in, TYPES[k], M_SPLIT, 2, "1000", "stack.weight", &st, &err), MQ_OK, "%s",
                         err.msg);
            cr_expect(sp.ndim == 2 && sp.shape[0] == 2 * ROWS && sp.shape[1] == COLS);
            cr_assert_eq(sp.bytes, st.bytes);
            cr_assert_eq(sp.bytes * 2, ref.bytes);
            cr_expect(memcmp(sp.data, st.data, sp.bytes) == 0, "%s: split != stack", TYPES[k]);
            cr_expect(memcmp(sp.data, ref.data + ref.bytes / 4, sp.bytes) == 0, "%s: split != rows of cat", TYPES[k]);
            free(sp.data);
            free(st.data);
            free(ref.data);
        }
    }
    remove_tree(dir);
    free(dir);
}

Test(xform, add_const_equals_the_pre_added_tensor)
{
    char *dir = make_temp_dir("addc");
    char in[600];
    struct mq_error err;
    for (int bf = 0; bf < 2; bf++) {
        snprintf(in, sizeof in, "%s/in%d.safetensors", dir, bf);
        write_inputs(in, bf);
        for (size_t k = 0; k < 3; k++) {
            struct got ref, got;
            cr_assert_eq(convert_mode(in, TYPES[k], M_ADD, 2, "1000", "norm1.weight", &ref, &err), MQ_OK, "%s",
                         err.msg);
            cr_assert_eq(convert_mode(in, TYPES[k], M_ADD, 3, "300", "norm.weight", &got, &err), MQ_OK, "%s", err.msg);
            cr_expect_eq(got.codec, MQ_CODEC_F32, "a norm stays F32");
            cr_assert_eq(got.bytes, ref.bytes);
            cr_expect(memcmp(got.data, ref.data, ref.bytes) == 0, "%s: norm + 1 differs", TYPES[k]);
            free(got.data);
            free(ref.data);
        }
    }
    remove_tree(dir);
    free(dir);
}

/* cat + 1 (the op) against cat1 (pre-added, F32 holding the float32 sums: for f32 output the
** values themselves), each alone in a plan under the same name. */
static enum mq_status tw_prepare_one(struct mq_plan *p, struct mq_error *err);
static bool PRE_ADDED;
static const struct mq_writer_ops TW1 = {
    .name = "test", .ext = ".bin", .stores_codec = tw_stores, .prepare = tw_prepare_one, .layout = tw_layout,
    .finish = tw_finish, .own_checksums = true,
};

static enum mq_status tw_prepare_one(struct mq_plan *p, struct mq_error *err)
{
    size_t w = 0;
    for (size_t i = 0; i < p->n; i++) {
        struct mq_plan_tensor *t = &p->t[i];
        bool keep = !strcmp(t->name, PRE_ADDED ? "cat1.weight" : "cat.weight");
        if (!keep) {
            mq_plan_tensor_release(t);
            continue;
        }
        rename_to(t, OUT_NAME);
        if (!PRE_ADDED) MQ_TRY(mq_plan_add_xform(t, (struct mq_xform){.kind = MQ_XFORM_ADD_CONST, .c = 1.0f}, err));
        p->t[w++] = *t;
    }
    p->n = w;
    return MQ_OK;
}

/* The whole output of a TW1 run (one tensor). */
static uint8_t *run_one(const char *in, const char *type, bool pre, const char *chunk, size_t *len,
                        enum mq_codec *codec)
{
    PRE_ADDED = pre;
    struct mq_error err;
    struct mq_model *m;
    cr_assert_eq(mq_model_open(in, &m, &err), MQ_OK, "%s", err.msg);
    struct mq_convert_options o;
    mq_convert_options_default(&o);
    o.input = in;
    o.type = type;
    o.pure = true;
    enum mq_target target;
    cr_assert(mq_target_for_convert(type, &target));
    struct mq_plan p;
    cr_assert_eq(mq_plan_build(&p, m, &o, target, &TW1, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(p.n, 1);
    *codec = p.t[0].codec;
    char *dir = make_temp_dir("xform1");
    char path[600];
    snprintf(path, sizeof path, "%s/out.bin", dir);
    struct mq_outfile *out;
    cr_assert_eq(mq_outfile_create(path, p.file_size, &out, &err), MQ_OK, "%s", err.msg);
    set_chunk(chunk);
    cr_assert_eq(mq_plan_run(&p, out, 3, false, &err), MQ_OK, "%s", err.msg);
    set_chunk(NULL);
    cr_assert_eq(mq_outfile_commit(out, &err), MQ_OK, "%s", err.msg);
    uint8_t *b = read_file_all(path, len);
    remove_tree(dir);
    free(dir);
    mq_plan_free(&p);
    mq_model_free(m);
    return b;
}

Test(xform, add_const_matrix_equals_the_pre_added_matrix)
{
    char *dir = make_temp_dir("addm");
    char in[600];
    for (int bf = 0; bf < 2; bf++) {
        snprintf(in, sizeof in, "%s/in%d.safetensors", dir, bf);
        write_inputs(in, bf);
        for (size_t k = 0; k < 3; k++) {
            size_t la, lb;
            enum mq_codec ca, cb;
            uint8_t *a = run_one(in, TYPES[k], true, NULL, &la, &ca);
            uint8_t *b = run_one(in, TYPES[k], false, "100", &lb, &cb);
            cr_expect_eq(ca, cb);
            cr_expect_eq(ca, k == 0 ? MQ_CODEC_F32 : k == 1 ? MQ_CODEC_Q8_0 : MQ_CODEC_Q4_K, "%s", TYPES[k]);
            cr_assert_eq(la, lb);
            cr_expect(memcmp(a, b, la) == 0, "%s %s: w + 1 differs from the pre-added tensor", bf ? "BF16" : "F32",
                      TYPES[k]);
            free(a);
            free(b);
        }
    }
    remove_tree(dir);
    free(dir);
}

Test(xform, refusals)
{
    char *dir = make_temp_dir("xref");
    char in[600];
    snprintf(in, sizeof in, "%s/in.safetensors", dir);
    write_inputs(in, false);
    struct mq_error err;
    struct got g;
    cr_expect_eq(convert_mode(in, "q8_0", M_STACK_BAD, 1, NULL, OUT_NAME, &g, &err), MQ_E_CORRUPT);
    cr_expect_str_eq(err.check, "stack-shape");
    cr_expect(strstr(err.msg, "tensor blk.0.ffn_up_exps.weight: experts.0.weight and cat.weight differ in shape or "
                              "type: they cannot be stacked") != NULL, "%s", err.msg);
    cr_expect_eq(convert_mode(in, "q8_0", M_ADD_RAW, 1, NULL, OUT_NAME, &g, &err), MQ_E_UNSUPPORTED);
    cr_expect_str_eq(err.check, "xform-source");
    cr_expect(strstr(err.msg, "tensor ids: add_const needs float or dequantizable values") != NULL, "%s", err.msg);
    remove_tree(dir);
    free(dir);
}

/* ---- memory: a stacked tensor is streamed, never held whole ---- */

static enum mq_status big_prepare(struct mq_plan *p, struct mq_error *err)
{
    long srcs[8];
    char name[64];
    for (int e = 0; e < 8; e++) {
        snprintf(name, sizeof name, "blk.0.experts.%d.weight", e);
        srcs[e] = mq_model_find(p->model, name);
        if (srcs[e] < 0) return MQ_FAIL(err, MQ_E_INTERNAL, "test", "no %s", name);
    }
    MQ_TRY(mq_plan_add_stacked(p, "blk.0.ffn_up_exps.weight", srcs, 8, err));
    drop_prefix(p, "blk.0.experts.");
    return MQ_OK;
}

static const struct mq_writer_ops BIG = {
    .name = "test", .ext = ".bin", .stores_codec = tw_stores, .prepare = big_prepare, .layout = tw_layout,
    .finish = tw_finish, .own_checksums = true,
};

Test(xform, stacked_memory_is_bounded)
{
    char *dir = make_temp_dir("stackrss");
    char path[600], hdr[4096];
    size_t hl = (size_t)snprintf(hdr, sizeof hdr, "{");
    const uint64_t each = 2048ull * 4096 * 2;
    for (int e = 0; e < 8; e++)
        hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl,
                               "%s\"blk.0.experts.%d.weight\":{\"dtype\":\"BF16\",\"shape\":[2048,4096],"
                               "\"data_offsets\":[%llu,%llu]}", e ? "," : "", e, (unsigned long long)(e * each),
                               (unsigned long long)((e + 1) * each));
    snprintf(hdr + hl, sizeof hdr - hl, "}");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    cr_assert_eq(stw_write_sparse(path, hdr, 8 * each), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct mq_error err;
        struct mq_model *m;
        if (mq_model_open(path, &m, &err) != MQ_OK) _exit(2);
        struct mq_convert_options o;
        mq_convert_options_default(&o);
        o.input = path;
        o.type = "q8_0";
        struct mq_plan p;
        if (mq_plan_build(&p, m, &o, MQ_TARGET_Q8_0, &BIG, &err) != MQ_OK) _exit(3);
        if (p.n != 1 || p.t[0].numel != 8ull * 2048 * 4096 || p.t[0].codec != MQ_CODEC_Q8_0) _exit(4);
        if (mq_plan_run(&p, NULL, 2, false, &err) != MQ_OK) _exit(5);
        mq_plan_free(&p);
        mq_model_free(m);
        _exit(0);
    }
    int status;
    struct rusage ru;
    cr_assert_eq(wait4(pid, &status, 0, &ru), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    long mib = ru.ru_maxrss / 1024;
    fprintf(stderr, "stacked 8 x [2048, 4096] BF16 (128 MiB) -> q8_0, -j 2: peak RSS %ld MiB\n", mib);
    if (!BUILT_WITH_ASAN) cr_expect_lt(mib, RSS_CAP_MIB, "peak RSS %ld MiB", mib); /* ASan's RSS is not ours */
    remove_tree(dir);
    free(dir);
}
