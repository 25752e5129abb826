/*
** test_gguf_interop.c - proves the GGUF interop harness (tests/helpers/gguf_dump.h) on real bytes.
**
** ggml's own writer (gguf_init_empty, gguf_set_*, gguf_add_tensor, gguf_write_to_file from the
** pinned libggml-base.so) writes a reference file into a temporary folder: every scalar KV type,
** string/u32/i32/f32/bool/empty arrays, and three tensors (F32 3-D, F16, Q8_0) with known dims
** and data, sizes not multiples of the alignment so padding is exercised. Then:
**   - ggml's reader (no_alloc = false: it reads and size-checks every tensor's data) and
**     @huggingface/gguf (tools/interop/gguf-dump.mjs) must each return exactly what was written:
**     names, ne, ggml types, KV value types (UINT32 is not INT32) and values, data hashes;
**   - the two views must be equal, and gguf_view_compare must notice a changed type or value;
**   - truncated copies must be refused by ggml with no_alloc = false.
** The library and the package come from tools/setup.sh (npm ci in tools/interop). Without them
** the tests skip with a message; with CI set they fail.
**
** MODELQ_KEEP_TMP=1 keeps the temporary folder for inspection.
**
** The file keeps the default alignment (32): ggml 0.25.1's writer ignores a general.alignment
** set with gguf_set_val_u32 (it still places and pads tensors at 32) and its reader then refuses
** that file ("tensor 'b' has offset 96, expected 128"), so ggml cannot write a reference file
** with another alignment.
*/
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "ggml_ref.h"
#include "gguf_dump.h"

static struct mq_ggml G;
static bool have_ggml;
static char ggml_why[1200];
static char tmpdir[] = "/tmp/modelq-gguf-interop-XXXXXX";
static char ref_path[256];

/* ---- the reference file ------------------------------------------------------------------ */

#define ALIGNMENT 32 /* GGUF_DEFAULT_ALIGNMENT; see above */
static const char *const tokens[] = {"<s>", "</s>", "hello", "w\xc3\xb6rld", "", "it's \"quoted\"\n"};
#define N_TOKENS (sizeof tokens / sizeof tokens[0])
static const uint32_t arr_u32[] = {1, 2, 4294967295u};
static const int32_t arr_i32[] = {-1, 0, 2147483647};
static const float arr_f32[] = {0.5f, -0.0f, 3.25f, -1e-30f};
static const int8_t arr_bool[] = {1, 0, 1};
static const char *const unicode_str = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80";

struct tensor_def {
    const char *name;
    int type;
    int n_dims;
    int64_t ne[4];
    uint64_t nbytes;
    uint64_t hash; /* filled when written */
};
static struct tensor_def tdefs[] = {
    {"test.f32_3d", GGREF_GGML_F32, 3, {5, 3, 2, 1}, 5 * 3 * 2 * 4, 0},
    {"blk.0.attn_q.weight", GGREF_GGML_F16, 2, {16, 5, 1, 1}, 16 * 5 * 2, 0},
    {"output.weight", GGREF_GGML_Q8_0, 2, {64, 3, 1, 1}, 64 / 32 * 34 * 3, 0},
};
#define N_TENSORS (sizeof tdefs / sizeof tdefs[0])

static uint64_t pad(uint64_t x) { return (x + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT; }

/* Writes the reference file with ggml's writer; returns false (why filled) on failure. */
static bool write_reference(const char *path, char *why, size_t why_len)
{
    struct gguf_context *c = G.gguf_init_empty();
    G.gguf_set_val_str(c, "general.architecture", "llama");
    G.gguf_set_val_u8(c, "test.u8", 200);
    G.gguf_set_val_i8(c, "test.i8", -100);
    G.gguf_set_val_u16(c, "test.u16", 60000);
    G.gguf_set_val_i16(c, "test.i16", -30000);
    G.gguf_set_val_u32(c, "test.u32", 4000000000u);
    G.gguf_set_val_i32(c, "test.i32", -2000000000);
    G.gguf_set_val_f32(c, "test.f32", 0.1f);
    G.gguf_set_val_u64(c, "test.u64", (UINT64_C(1) << 63) + 5);
    G.gguf_set_val_i64(c, "test.i64", -(INT64_C(1) << 62) - 3);
    G.gguf_set_val_f64(c, "test.f64", 1.0 / 3.0);
    G.gguf_set_val_bool(c, "test.bool", true);
    G.gguf_set_val_str(c, "test.str", unicode_str);
    G.gguf_set_arr_str(c, "tokenizer.ggml.tokens", (const char **)tokens, N_TOKENS);
    G.gguf_set_arr_data(c, "test.arr_u32", GGREF_GGUF_UINT32, arr_u32, 3);
    G.gguf_set_arr_data(c, "test.arr_i32", GGREF_GGUF_INT32, arr_i32, 3);
    G.gguf_set_arr_data(c, "test.arr_f32", GGREF_GGUF_FLOAT32, arr_f32, 4);
    G.gguf_set_arr_data(c, "test.arr_bool", GGREF_GGUF_BOOL, arr_bool, 3);
    G.gguf_set_arr_data(c, "test.arr_empty", GGREF_GGUF_UINT32, arr_u32, 0);

    size_t mem = N_TENSORS * G.ggml_tensor_overhead() + 4096;
    for (size_t i = 0; i < N_TENSORS; i++) mem += (size_t)tdefs[i].nbytes + 64;
    struct ggml_context *ctx = G.ggml_init((struct mq_ggml_init_params){mem, NULL, false});
    if (!ctx) {
        snprintf(why, why_len, "ggml_init failed");
        G.gguf_free(c);
        return false;
    }
    for (size_t i = 0; i < N_TENSORS; i++) {
        struct tensor_def *d = &tdefs[i];
        struct ggml_tensor *t = G.ggml_new_tensor(ctx, d->type, d->n_dims, d->ne);
        G.ggml_set_name(t, d->name);
        cr_assert_eq(G.ggml_nbytes(t), d->nbytes, "%s: ggml says %zu bytes", d->name, G.ggml_nbytes(t));
        int64_t n = d->ne[0] * d->ne[1] * d->ne[2] * d->ne[3];
        float *x = malloc((size_t)n * sizeof *x);
        cr_assert_not_null(x);
        for (int64_t k = 0; k < n; k++) x[k] = (float)((k * 37 + (int64_t)i * 11) % 101 - 50) / 16.0f;
        void *data = G.ggml_get_data(t);
        if (d->type == GGREF_GGML_F32) memcpy(data, x, (size_t)n * 4);
        else if (d->type == GGREF_GGML_F16)
            for (int64_t k = 0; k < n; k++) ((uint16_t *)data)[k] = G.fp32_to_fp16(x[k]);
        else G.quantize_chunk(d->type, x, data, 0, n / d->ne[0], d->ne[0], NULL);
        free(x);
        d->hash = XXH64(data, (size_t)d->nbytes, 0);
        G.gguf_add_tensor(c, t);
    }
    bool ok = G.gguf_write_to_file(c, path, false);
    if (!ok) snprintf(why, why_len, "gguf_write_to_file(%s) failed", path);
    G.ggml_free(ctx);
    G.gguf_free(c);
    return ok;
}

static void setup(void)
{
    have_ggml = mq_ggml_open(&G, ggml_why, sizeof ggml_why);
    if (!have_ggml) return;
    cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(ref_path, sizeof ref_path, "%s/ref.gguf", tmpdir);
    char why[512];
    cr_assert(write_reference(ref_path, why, sizeof why), "%s", why);
}

static void teardown(void)
{
    if (have_ggml) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (!getenv("MODELQ_KEEP_TMP")) cr_expect_eq(system(cmd), 0);
    }
    mq_ggml_close(&G);
}

TestSuite(gguf_interop, .init = setup, .fini = teardown);

/* ---- expectations shared by both views ---------------------------------------------------- */

static void expect_written(const struct gguf_view *v)
{
    char why[1024];
#define OK(call) cr_expect(call, "%s", why)
    cr_expect_eq(v->version, 3u, "%s: version", v->source);
    cr_expect_eq(v->alignment, (uint64_t)ALIGNMENT, "%s: alignment %" PRIu64, v->source, v->alignment);
    cr_expect_eq(v->n_kv, 19u, "%s: n_kv %" PRIu64, v->source, v->n_kv);
    cr_expect_eq(v->kv_len, 19u, "%s: kv entries %zu", v->source, v->kv_len);
    cr_expect_eq(v->n_tensors, (uint64_t)N_TENSORS, "%s", v->source);
    OK(gguf_view_expect_str(v, "general.architecture", "llama", why, sizeof why));
    cr_expect(!gguf_view_find_kv(v, "general.alignment"));
    OK(gguf_view_expect_uint(v, "test.u8", GGREF_GGUF_UINT8, 200, why, sizeof why));
    OK(gguf_view_expect_int(v, "test.i8", GGREF_GGUF_INT8, -100, why, sizeof why));
    OK(gguf_view_expect_uint(v, "test.u16", GGREF_GGUF_UINT16, 60000, why, sizeof why));
    OK(gguf_view_expect_int(v, "test.i16", GGREF_GGUF_INT16, -30000, why, sizeof why));
    OK(gguf_view_expect_uint(v, "test.u32", GGREF_GGUF_UINT32, 4000000000u, why, sizeof why));
    OK(gguf_view_expect_int(v, "test.i32", GGREF_GGUF_INT32, -2000000000, why, sizeof why));
    OK(gguf_view_expect_float(v, "test.f32", GGREF_GGUF_FLOAT32, 0.1, why, sizeof why));
    OK(gguf_view_expect_uint(v, "test.u64", GGREF_GGUF_UINT64, (UINT64_C(1) << 63) + 5, why, sizeof why));
    OK(gguf_view_expect_int(v, "test.i64", GGREF_GGUF_INT64, -(INT64_C(1) << 62) - 3, why, sizeof why));
    OK(gguf_view_expect_float(v, "test.f64", GGREF_GGUF_FLOAT64, 1.0 / 3.0, why, sizeof why));
    OK(gguf_view_expect_uint(v, "test.bool", GGREF_GGUF_BOOL, 1, why, sizeof why));
    OK(gguf_view_expect_str(v, "test.str", unicode_str, why, sizeof why));
    /* a u32 must not be readable as an i32, nor a string as anything else */
    cr_expect(!gguf_view_expect_int(v, "test.u32", GGREF_GGUF_INT32, -294967296, why, sizeof why));
    cr_expect(strstr(why, "is UINT32, want INT32") != NULL, "%s", why);

    OK(gguf_view_expect_array(v, "tokenizer.ggml.tokens", GGREF_GGUF_STRING, N_TOKENS, why, sizeof why));
    const struct gguf_view_kv *e = gguf_view_find_kv(v, "tokenizer.ggml.tokens");
    for (size_t j = 0; e && j < N_TOKENS && j < e->n; j++)
        cr_expect_str_eq(e->arr[j].s, tokens[j], "%s: token %zu", v->source, j);
    OK(gguf_view_expect_array(v, "test.arr_u32", GGREF_GGUF_UINT32, 3, why, sizeof why));
    e = gguf_view_find_kv(v, "test.arr_u32");
    for (size_t j = 0; e && j < 3 && j < e->n; j++) cr_expect_eq(e->arr[j].u, arr_u32[j], "%s", v->source);
    OK(gguf_view_expect_array(v, "test.arr_i32", GGREF_GGUF_INT32, 3, why, sizeof why));
    e = gguf_view_find_kv(v, "test.arr_i32");
    for (size_t j = 0; e && j < 3 && j < e->n; j++) cr_expect_eq(e->arr[j].i, arr_i32[j], "%s", v->source);
    OK(gguf_view_expect_array(v, "test.arr_f32", GGREF_GGUF_FLOAT32, 4, why, sizeof why));
    e = gguf_view_find_kv(v, "test.arr_f32");
    for (size_t j = 0; e && j < 4 && j < e->n; j++) {
        double want = arr_f32[j];
        cr_expect(memcmp(&e->arr[j].f, &want, 8) == 0, "%s: arr_f32[%zu] = %g (sign and bits kept)", v->source, j,
                  e->arr[j].f);
    }
    OK(gguf_view_expect_array(v, "test.arr_bool", GGREF_GGUF_BOOL, 3, why, sizeof why));
    e = gguf_view_find_kv(v, "test.arr_bool");
    for (size_t j = 0; e && j < 3 && j < e->n; j++) cr_expect_eq(e->arr[j].u, (uint64_t)arr_bool[j], "%s", v->source);
    OK(gguf_view_expect_array(v, "test.arr_empty", GGREF_GGUF_UINT32, 0, why, sizeof why));

    uint64_t off = 0;
    for (size_t i = 0; i < N_TENSORS; i++) {
        const struct tensor_def *d = &tdefs[i];
        OK(gguf_view_expect_tensor(v, d->name, d->type, (uint32_t)d->n_dims, d->ne, why, sizeof why));
        const struct gguf_view_tensor *t = gguf_view_find_tensor(v, d->name);
        if (!t) continue;
        cr_expect_eq(t->offset, off, "%s: %s offset %" PRIu64 ", want %" PRIu64, v->source, d->name, t->offset, off);
        cr_expect_eq(t->nbytes, d->nbytes, "%s: %s nbytes %" PRIu64, v->source, d->name, t->nbytes);
        off += pad(d->nbytes);
    }
    cr_expect_eq(v->data_offset % ALIGNMENT, 0u);
    cr_expect_eq(v->file_size, v->data_offset + off, "%s: file size %" PRIu64, v->source, v->file_size);
    OK(gguf_view_check_layout(v, why, sizeof why));
#undef OK
}

static void need_ggml(void) { gguf_view_need_tools(have_ggml, ggml_why); }

Test(gguf_interop, ggml_reads_back_what_ggml_wrote)
{
    need_ggml();
    struct gguf_view v;
    char why[1024];
    cr_assert(gguf_view_from_ggml(&v, &G, ref_path, false, why, sizeof why), "%s", why);
    expect_written(&v);
    for (size_t i = 0; i < N_TENSORS; i++) {
        const struct gguf_view_tensor *t = gguf_view_find_tensor(&v, tdefs[i].name);
        cr_assert_not_null(t);
        cr_expect(t->has_hash && t->data_hash == tdefs[i].hash, "%s: data hash %016" PRIx64 ", wrote %016" PRIx64,
                  t->name, t->data_hash, tdefs[i].hash);
    }
    gguf_view_free(&v);
    /* no_alloc = true reads the same header but no data */
    cr_assert(gguf_view_from_ggml(&v, &G, ref_path, true, why, sizeof why), "%s", why);
    expect_written(&v);
    cr_expect(!v.tensors[0].has_hash);
    gguf_view_free(&v);
}

Test(gguf_interop, huggingface_gguf_reads_back_what_ggml_wrote)
{
    need_ggml();
    struct gguf_view v;
    char why[1024];
    bool ok = gguf_view_from_js(&v, ref_path, why, sizeof why);
    gguf_view_need_tools(ok, why);
    expect_written(&v);
    gguf_view_free(&v);
}

Test(gguf_interop, both_views_equal_and_compare_sees_differences)
{
    need_ggml();
    struct gguf_view a, b;
    char why[1024];
    cr_assert(gguf_view_from_ggml(&a, &G, ref_path, false, why, sizeof why), "%s", why);
    bool ok = gguf_view_from_js(&b, ref_path, why, sizeof why);
    gguf_view_need_tools(ok, why);
    cr_expect(gguf_view_compare(&a, &b, why, sizeof why), "%s", why);
    cr_expect(gguf_view_compare(&b, &a, why, sizeof why), "%s", why);

    /* A changed KV type, value, tensor dim or offset is reported, naming what differs. */
    struct gguf_view_kv *e = (struct gguf_view_kv *)gguf_view_find_kv(&b, "test.u32");
    cr_assert_not_null(e);
    e->type = GGREF_GGUF_INT32;
    cr_expect(!gguf_view_compare(&a, &b, why, sizeof why));
    cr_expect(strstr(why, "test.u32") && strstr(why, "INT32"), "%s", why);
    e->type = GGREF_GGUF_UINT32;
    e->val.u++;
    cr_expect(!gguf_view_compare(&a, &b, why, sizeof why));
    cr_expect(strstr(why, "4000000001") != NULL, "%s", why);
    e->val.u--;
    e = (struct gguf_view_kv *)gguf_view_find_kv(&b, "test.arr_f32");
    e->arr[1].f = 0.0; /* was -0.0 */
    cr_expect(!gguf_view_compare(&a, &b, why, sizeof why));
    cr_expect(strstr(why, "test.arr_f32'[1]") != NULL, "%s", why);
    e->arr[1].f = -0.0;
    b.tensors[2].ne[1] = 4;
    cr_expect(!gguf_view_compare(&a, &b, why, sizeof why));
    cr_expect(strstr(why, "output.weight") != NULL, "%s", why);
    b.tensors[2].ne[1] = 3;
    b.tensors[1].offset += ALIGNMENT;
    cr_expect(!gguf_view_check_layout(&b, why, sizeof why));
    cr_expect(strstr(why, "blk.0.attn_q.weight") != NULL, "%s", why);
    b.tensors[1].offset -= ALIGNMENT;
    cr_expect(gguf_view_compare(&a, &b, why, sizeof why), "%s", why);
    gguf_view_free(&a);
    gguf_view_free(&b);
}

/* Copies the first `len` bytes of src to dst. */
static void copy_prefix(const char *src, const char *dst, long len)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    cr_assert(in && out);
    char buf[4096];
    long left = len;
    while (left > 0) {
        size_t n = fread(buf, 1, left < (long)sizeof buf ? (size_t)left : sizeof buf, in);
        cr_assert_gt(n, 0u);
        cr_assert_eq(fwrite(buf, 1, n, out), n);
        left -= (long)n;
    }
    fclose(in);
    cr_assert_eq(fclose(out), 0);
}

Test(gguf_interop, ggml_refuses_truncated_copies)
{
    need_ggml();
    struct gguf_view v;
    char why[1024];
    cr_assert(gguf_view_from_ggml(&v, &G, ref_path, true, why, sizeof why), "%s", why);
    long size = (long)v.file_size, data_off = (long)v.data_offset;
    gguf_view_free(&v);
    char cut[300];
    snprintf(cut, sizeof cut, "%s/cut.gguf", tmpdir);
    /* last padding byte, half the data, and a cut inside the tensor infos */
    const long lens[] = {size - 1, data_off + (size - data_off) / 2, data_off - 20};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        copy_prefix(ref_path, cut, lens[k]);
        fprintf(stderr, "gguf_interop: ggml should now refuse %s cut to %ld of %ld bytes:\n", cut, lens[k], size);
        cr_expect(!gguf_view_from_ggml(&v, &G, cut, false, why, sizeof why), "a copy cut to %ld of %ld bytes loaded",
                  lens[k], size);
        gguf_view_free(&v);
        /* @huggingface/gguf reads past the end as zeros; its view must at least fail the layout
        ** check (file size vs header + padded data) */
        if (gguf_view_from_js(&v, cut, why, sizeof why))
            cr_expect(!gguf_view_check_layout(&v, why, sizeof why), "JS view of a cut copy passes the layout check");
        gguf_view_free(&v);
    }
    /* the header-only read (what llama.cpp uses) accepts a file whose data is short: which is
    ** why the harness reads with no_alloc = false */
    copy_prefix(ref_path, cut, size - 1);
    cr_expect(gguf_view_from_ggml(&v, &G, cut, true, why, sizeof why), "%s", why);
    gguf_view_free(&v);
    unlink(cut);
}
