/*
** test_gguf_read.c - the GGUF reader (formats/gguf_read.c) on the committed fixtures in
** testdata/gguf/, written by tools/mkbadgguf.c:
**   - every bad/CHECK[--variant].gguf fails with exactly CHECK, its status, a one-line message
**     naming the file, and every check of the reader has at least one file;
**   - every ok/NAME.gguf loads with the values the generator wrote;
**   - rerunning mkbadgguf reproduces testdata/gguf byte for byte;
**   - ggml itself (gguf_init_from_file from the pinned libggml-base.so, no_alloc) accepts every
**     ok file with the same keys, tensors and offsets, and refuses every bad file except the ones
**     modelq is deliberately stricter about (ggml_accepts below). Without the library the ggml
**     test skips with a message; with CI set it fails.
**   - config.json beside a .gguf is not read, and the CLI shows GGUF inputs.
*/
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model_impl.h"
#include "modelq/model.h"

#define BAD "testdata/gguf/bad"
#define OK "testdata/gguf/ok"

/* Every check of the reader and the status it must carry. */
static const struct {
    const char *check;
    enum mq_status status;
} checks[] = {
    {"magic", MQ_E_CORRUPT},
    {"truncated", MQ_E_CORRUPT},
    {"version-zero", MQ_E_CORRUPT},
    {"version-byteswapped", MQ_E_UNSUPPORTED},
    {"version-1", MQ_E_UNSUPPORTED},
    {"version-newer", MQ_E_UNSUPPORTED},
    {"tensor-count", MQ_E_CORRUPT},
    {"tensor-count-limit", MQ_E_LIMIT},
    {"kv-count", MQ_E_CORRUPT},
    {"kv-count-limit", MQ_E_LIMIT},
    {"header-limit", MQ_E_LIMIT},
    {"string-length-limit", MQ_E_LIMIT},
    {"string-within-file", MQ_E_CORRUPT},
    {"array-count-limit", MQ_E_LIMIT},
    {"array-within-file", MQ_E_CORRUPT},
    {"key-empty", MQ_E_CORRUPT},
    {"key-nul", MQ_E_CORRUPT},
    {"key-duplicate", MQ_E_CORRUPT},
    {"value-type", MQ_E_CORRUPT},
    {"nested-array", MQ_E_CORRUPT},
    {"alignment-type", MQ_E_CORRUPT},
    {"alignment-value", MQ_E_CORRUPT},
    {"tensor-name-length", MQ_E_CORRUPT},
    {"tensor-name-nul", MQ_E_CORRUPT},
    {"tensor-name-duplicate", MQ_E_CORRUPT},
    {"n-dims", MQ_E_CORRUPT},
    {"ne-negative", MQ_E_CORRUPT},
    {"element-overflow", MQ_E_OVERFLOW},
    {"type-known", MQ_E_CORRUPT},
    {"block-multiple", MQ_E_CORRUPT},
    {"size-overflow", MQ_E_OVERFLOW},
    {"offset-contiguous", MQ_E_CORRUPT},
    {"data-within-file", MQ_E_CORRUPT},
    {"tensor-within-file", MQ_E_CORRUPT},
};
#define N_CHECKS (sizeof checks / sizeof checks[0])

/*
** Bad files ggml's gguf_init_from_file(no_alloc) accepts, because modelq is stricter there:
**   key-nul, tensor-name-nul  names are C strings in modelq (ggml keeps a NUL inside a key and
**                             cuts a tensor name at it)
**   type-known--newer         id 42 (Q2_0) is newer than modelq's type table
**   tensor-within-file        gguf.cpp checks it only when it loads the data; llama.cpp's loader
**                             checks it ("tensor data is not within the file bounds")
** modelq's caps (header-limit, tensor-count-limit, kv-count-limit, and string-length-limit /
** array-count-limit below gguf.cpp's 2^30) have no ggml rule either; their fixtures are still
** refused by ggml, for reading past the end of the file.
*/
static const char *const ggml_accepts[] = {"key-nul.gguf", "tensor-name-nul.gguf", "type-known--newer.gguf",
                                           "tensor-within-file.gguf"};

static void expected_check(const char *entry, char *out, size_t cap)
{
    snprintf(out, cap, "%s", entry);
    char *cut = strstr(out, "--");
    if (!cut) cut = strstr(out, ".gguf");
    if (cut) *cut = '\0';
}

/* Sorted *.gguf names of a directory; returns the count. */
static size_t list_gguf(const char *dir, char names[][128], size_t cap)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 5, ".gguf") != 0) continue;
        cr_assert_lt(n, cap);
        cr_assert_lt(l, 128, "%s: name too long", de->d_name);
        memcpy(names[n++], de->d_name, l + 1);
    }
    closedir(d);
    qsort(names, n, 128, (int (*)(const void *, const void *))strcmp);
    return n;
}

static struct mq_model *open_ok(const char *path)
{
    struct mq_model *m = NULL;
    struct mq_error err;
    mq_error_clear(&err);
    cr_assert_eq(mq_model_open(path, &m, &err), MQ_OK, "%s: %s", path, err.msg);
    cr_assert_str_eq(m->format, "gguf");
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct mq_tensor *t = &m->tensors[i];
        cr_assert(t->from_gguf);
        cr_assert_leq(t->offset + t->nbytes, m->files[0].size, "%s: tensor %s past the end", path, t->name);
        cr_assert_geq(t->offset, m->files[0].data_start);
    }
    return m;
}

Test(gguf_read, every_bad_file_fails_with_its_check_and_status)
{
    static char names[128][128];
    size_t n = list_gguf(BAD, names, 128);
    bool seen[N_CHECKS] = {false};
    for (size_t i = 0; i < n; i++) {
        char path[512], want[128];
        snprintf(path, sizeof path, BAD "/%s", names[i]);
        expected_check(names[i], want, sizeof want);
        size_t c = 0;
        while (c < N_CHECKS && strcmp(checks[c].check, want) != 0) c++;
        cr_assert_lt(c, N_CHECKS, "%s: '%s' is not a check of the reader (table above)", path, want);
        seen[c] = true;
        struct mq_model *m = NULL;
        struct mq_error err;
        mq_error_clear(&err);
        enum mq_status s = mq_model_open(path, &m, &err);
        cr_expect_null(m);
        cr_expect(err.check && strcmp(err.check, want) == 0, "%s: check '%s', expected '%s' (%s)", path,
                  err.check ? err.check : "(none)", want, err.msg);
        cr_expect_eq(s, checks[c].status, "%s: status %s, expected %s (%s)", path, mq_status_name(s),
                     mq_status_name(checks[c].status), err.msg);
        cr_expect(strstr(err.msg, names[i]) != NULL, "%s: message does not name the file: %s", path, err.msg);
        cr_expect(strchr(err.msg, '\n') == NULL, "%s: message is not one line", path);
        mq_model_free(m);
    }
    for (size_t c = 0; c < N_CHECKS; c++) cr_expect(seen[c], "no fixture in " BAD " for check %s", checks[c].check);
    cr_assert_geq(n, 50, "only %zu bad fixtures", n);
}

Test(gguf_read, headers_and_empty_files)
{
    struct mq_model *m = open_ok(OK "/empty.gguf");
    cr_expect_eq(m->n_tensors, 0);
    cr_expect_eq(m->meta.n, 0);
    cr_expect_eq(m->files[0].gguf_version, 3);
    cr_expect_eq(m->files[0].gguf_alignment, 32);
    cr_expect_eq(m->files[0].data_start, 24);
    cr_expect(!m->config.present);
    mq_model_free(m);
    m = open_ok(OK "/zero-tensors.gguf");
    cr_expect_eq(m->n_tensors, 0);
    cr_assert_eq(m->meta.n, 2);
    cr_expect_str_eq(mq_meta_get_str(&m->meta, "general.name"), "zero tensors");
    cr_assert_eq(m->n_metadata, 2);
    cr_expect_str_eq(m->metadata[1].value, "\"zero tensors\"");
    mq_model_free(m);
    m = open_ok(OK "/v2.gguf");
    cr_expect_eq(m->files[0].gguf_version, 2);
    cr_assert_eq(m->n_tensors, 1);
    float v[3];
    struct mq_error err;
    cr_assert_eq(mq_model_read(m, 0, 0, v, sizeof v, &err), MQ_OK, "%s", err.msg);
    cr_expect(v[0] == 1.0f && v[1] == -2.0f && v[2] == 3.0f);
    cr_expect_eq(m->n_warnings, 0);
    mq_model_free(m);
}

Test(gguf_read, alignment_1_and_64)
{
    struct mq_model *m = open_ok(OK "/align-1.gguf");
    cr_expect_eq(m->files[0].gguf_alignment, 1);
    cr_assert_eq(m->n_tensors, 3);
    cr_expect_eq(m->files[0].data_start, m->tensors[0].offset);
    cr_expect_eq(m->tensors[1].offset, m->tensors[0].offset + 6, "packed, no padding");
    cr_expect_eq(m->tensors[2].offset, m->tensors[1].offset + 5);
    cr_expect_eq(m->tensors[0].dtype, MQ_DTYPE_F16);
    cr_expect_eq(m->tensors[1].dtype, MQ_DTYPE_I8);
    cr_expect_eq(m->tensors[2].offset + 4, m->files[0].size);
    mq_model_free(m);
    m = open_ok(OK "/align-64.gguf");
    cr_expect_eq(m->files[0].gguf_alignment, 64);
    cr_expect_eq(m->files[0].data_start % 64, 0);
    cr_assert_eq(m->n_tensors, 2);
    cr_expect_eq(m->tensors[1].offset, m->tensors[0].offset + 64);
    cr_expect_eq(m->tensors[1].ndim, 2);
    mq_model_free(m);
}

Test(gguf_read, shapes_zero_size_scalar_and_four_dims)
{
    struct mq_model *m = open_ok(OK "/zero-size.gguf");
    cr_assert_eq(m->n_tensors, 2);
    cr_expect_str_eq(m->tensors[0].name, "empty");
    cr_expect_eq(m->tensors[0].numel, 0);
    cr_expect_eq(m->tensors[0].nbytes, 0);
    cr_expect(m->tensors[0].ndim == 2 && m->tensors[0].shape[0] == 0 && m->tensors[0].shape[1] == 4,
              "shape is ne reversed");
    cr_expect_eq(m->tensors[1].offset, m->tensors[0].offset);
    mq_model_free(m);
    m = open_ok(OK "/dims.gguf");
    cr_assert_eq(m->n_tensors, 2);
    cr_expect_eq(m->tensors[0].ndim, 0);
    cr_expect_eq(m->tensors[0].numel, 1);
    cr_expect_eq(m->tensors[0].nbytes, 4);
    const struct mq_tensor *f = &m->tensors[1];
    cr_expect_eq(f->ndim, 4, "n_dims as stored, trailing 1s kept");
    cr_expect(f->shape[0] == 3 && f->shape[1] == 1 && f->shape[2] == 1 && f->shape[3] == 2);
    cr_expect_eq(f->numel, 6);
    cr_expect_eq(f->nbytes, 12);
    cr_expect_eq(f->dtype, MQ_DTYPE_BF16);
    cr_expect_eq(f->ggml_type, 30);
    mq_model_free(m);
}

Test(gguf_read, quantized_tensor_and_missing_final_padding)
{
    struct mq_model *m = open_ok(OK "/q8_0.gguf");
    cr_assert_eq(m->n_tensors, 2);
    const struct mq_tensor *q = &m->tensors[0];
    cr_expect_eq(q->ggml_type, 8);
    cr_expect_str_eq(mq_ggml_type_name(q->ggml_type), "Q8_0");
    cr_expect_eq(q->dtype, MQ_DTYPE_U8, "quantized types have dtype U8");
    cr_expect(q->ndim == 2 && q->shape[0] == 2 && q->shape[1] == 32);
    cr_expect_eq(q->numel, 64);
    cr_expect_eq(q->nbytes, 68, "2 rows x 1 block x 34 bytes");
    unsigned char b[68];
    struct mq_error err;
    cr_assert_eq(mq_model_read(m, 0, 0, b, sizeof b, &err), MQ_OK, "%s", err.msg);
    cr_expect(b[0] == 0x00 && b[1] == 0x38 && b[2] == 0xF0 && b[33] == 15 && b[35] == 0x38, "block bytes");
    cr_expect_eq(m->tensors[1].dtype, MQ_DTYPE_I32);
    uint64_t qv = 0;
    cr_expect(mq_meta_get_uint(&m->meta, "general.quantization_version", &qv) && qv == 2);
    mq_model_free(m);

    m = open_ok(OK "/no-final-pad.gguf");
    cr_assert_eq(m->n_warnings, 1);
    cr_expect(strstr(m->warnings[0], "final padding") && strstr(m->warnings[0], "no-final-pad.gguf"), "%s",
              m->warnings[0]);
    cr_expect_eq(m->tensors[0].offset + m->tensors[0].nbytes, m->files[0].size);
    mq_model_free(m);
}

Test(gguf_read, every_value_type_typed_and_in_order)
{
    struct mq_model *m = open_ok(OK "/all-types.gguf");
    static const char *const keys[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "bool.two", "string",
                                       "u64", "i64", "f64", "arr.u8", "arr.i8", "arr.u16", "arr.i16", "arr.u32",
                                       "arr.i32", "arr.f32", "arr.bool", "arr.string", "arr.u64", "arr.i64",
                                       "arr.f64", "arr.empty", "arr.empty_strings"};
    cr_assert_eq(m->meta.n, sizeof keys / sizeof keys[0]);
    cr_assert_eq(m->n_metadata, m->meta.n);
    for (size_t i = 0; i < m->meta.n; i++) {
        cr_expect_str_eq(m->meta.items[i].key, keys[i]);
        cr_expect_str_eq(m->metadata[i].key, keys[i]);
    }
    const struct mq_meta_value *v;
    v = mq_meta_get(&m->meta, "u8");
    cr_expect(v->type == MQ_META_U8 && v->num.u == 200);
    v = mq_meta_get(&m->meta, "i8");
    cr_expect(v->type == MQ_META_I8 && v->num.i == -128);
    v = mq_meta_get(&m->meta, "u16");
    cr_expect(v->type == MQ_META_U16 && v->num.u == 65535);
    v = mq_meta_get(&m->meta, "i16");
    cr_expect(v->type == MQ_META_I16 && v->num.i == -32768);
    v = mq_meta_get(&m->meta, "u32");
    cr_expect(v->type == MQ_META_U32 && v->num.u == 4000000000u);
    v = mq_meta_get(&m->meta, "i32");
    cr_expect(v->type == MQ_META_I32 && v->num.i == INT32_MIN);
    v = mq_meta_get(&m->meta, "f32");
    cr_expect(v->type == MQ_META_F32 && v->num.f == 0.25);
    v = mq_meta_get(&m->meta, "bool");
    cr_expect(v->type == MQ_META_BOOL && v->num.u == 1);
    v = mq_meta_get(&m->meta, "bool.two");
    cr_expect(v->type == MQ_META_BOOL && v->num.u == 1, "any nonzero byte is true");
    v = mq_meta_get(&m->meta, "string");
    cr_expect(v->type == MQ_META_STRING && v->str.len == 11 && memcmp(v->str.p, "h\xc3\xa9llo \"q\"\n", 11) == 0);
    v = mq_meta_get(&m->meta, "u64");
    cr_expect(v->type == MQ_META_U64 && v->num.u == UINT64_MAX);
    v = mq_meta_get(&m->meta, "i64");
    cr_expect(v->type == MQ_META_I64 && v->num.i == INT64_MIN);
    v = mq_meta_get(&m->meta, "f64");
    cr_expect(v->type == MQ_META_F64 && v->num.f == -1.5);

    v = mq_meta_get(&m->meta, "arr.u8");
    cr_expect(v->type == MQ_META_ARRAY && v->elem_type == MQ_META_U8 && v->count == 2 &&
              ((const uint8_t *)v->arr)[1] == 255);
    v = mq_meta_get(&m->meta, "arr.i8");
    cr_expect(v->elem_type == MQ_META_I8 && ((const int8_t *)v->arr)[1] == -1);
    v = mq_meta_get(&m->meta, "arr.u16");
    cr_expect(v->elem_type == MQ_META_U16 && ((const uint16_t *)v->arr)[1] == 65535);
    v = mq_meta_get(&m->meta, "arr.i16");
    cr_expect(v->elem_type == MQ_META_I16 && ((const int16_t *)v->arr)[1] == -1);
    v = mq_meta_get(&m->meta, "arr.u32");
    cr_expect(v->elem_type == MQ_META_U32 && ((const uint32_t *)v->arr)[1] == UINT32_MAX);
    v = mq_meta_get(&m->meta, "arr.i32");
    cr_expect(v->elem_type == MQ_META_I32 && ((const int32_t *)v->arr)[1] == -1);
    v = mq_meta_get(&m->meta, "arr.f32");
    cr_expect(v->elem_type == MQ_META_F32 && ((const float *)v->arr)[1] == -0.5f);
    v = mq_meta_get(&m->meta, "arr.bool");
    cr_expect(v->elem_type == MQ_META_BOOL && v->count == 3);
    cr_expect(((const uint8_t *)v->arr)[0] == 0 && ((const uint8_t *)v->arr)[2] == 1, "bools stored as 0/1");
    v = mq_meta_get(&m->meta, "arr.string");
    cr_expect(v->elem_type == MQ_META_STRING && v->count == 3 && v->strs[1].len == 0 &&
              strcmp(v->strs[2].p, "ccc") == 0);
    v = mq_meta_get(&m->meta, "arr.u64");
    cr_expect(v->elem_type == MQ_META_U64 && ((const uint64_t *)v->arr)[1] == UINT64_MAX);
    v = mq_meta_get(&m->meta, "arr.i64");
    cr_expect(v->elem_type == MQ_META_I64 && ((const int64_t *)v->arr)[1] == -1);
    v = mq_meta_get(&m->meta, "arr.f64");
    cr_expect(v->elem_type == MQ_META_F64 && ((const double *)v->arr)[1] == 1e300);
    v = mq_meta_get(&m->meta, "arr.empty");
    cr_expect(v->type == MQ_META_ARRAY && v->elem_type == MQ_META_U32 && v->count == 0);
    v = mq_meta_get(&m->meta, "arr.empty_strings");
    cr_expect(v->elem_type == MQ_META_STRING && v->count == 0);
    /* the text rendering is one line: control characters escaped */
    long si = mq_meta_find(&m->meta, "string");
    cr_expect(strchr(m->metadata[si].value, '\n') == NULL, "%s", m->metadata[si].value);
    mq_model_free(m);
}

Test(gguf_read, config_from_the_metadata_not_from_config_json)
{
    struct mq_model *m = open_ok(OK "/tiny-llama.gguf");
    const struct mq_config *c = &m->config;
    cr_assert(c->present);
    cr_expect_str_eq(c->model_type, "llama");
    cr_expect_eq(c->num_layers, 1);
    cr_expect_eq(c->hidden_size, 32);
    cr_expect_eq(c->intermediate_size, 64);
    cr_expect_eq(c->num_heads, 4);
    cr_expect_eq(c->num_kv_heads, 2);
    cr_expect_eq(c->head_dim, 8);
    cr_expect_eq(c->max_position, 256);
    cr_expect_eq(c->vocab_size, 8, "vocab from the length of tokenizer.ggml.tokens");
    cr_assert_eq(m->n_tensors, 4);
    cr_expect_str_eq(m->tensors[2].name, "blk.0.attn_q.weight");
    cr_expect_eq(m->tensors[2].nbytes, 32 * 34);
    mq_model_free(m);

    /* a config.json beside the .gguf (as a folder and as a file path) is not read */
    char dir[] = "/tmp/modelq-gguf-cfg-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char cmd[1024], path[512];
    snprintf(cmd, sizeof cmd,
             "cp " OK "/tiny-llama.gguf '%s/model.gguf' && printf '{\"num_hidden_layers\": 99}' > '%s/config.json'",
             dir, dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/model.gguf", dir);
    const char *inputs[] = {dir, path};
    for (int i = 0; i < 2; i++) {
        m = open_ok(inputs[i]);
        cr_expect_eq(m->config.num_layers, 1, "%s: config.json was read", inputs[i]);
        cr_expect(m->config.path && strstr(m->config.path, "model.gguf"));
        mq_model_free(m);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

Test(gguf_read, fixtures_regenerate_byte_identical)
{
    const char *bd = getenv("MODELQ_BUILD_DIR");
    cr_assert_not_null(bd, "MODELQ_BUILD_DIR not set (run through ctest)");
    char tmpl[] = "/tmp/modelq-gguf-fixtures-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s/mkbadgguf' '%s' && diff -r testdata/gguf '%s/gguf'", bd, tmpl, tmpl);
    int rc = system(cmd);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    cr_expect_eq(system(cmd), 0);
    cr_assert_eq(rc, 0, "regenerated fixtures differ from testdata/gguf (run build/mkbadgguf testdata)");
}

/* ---- ggml's own reader, loaded with dlopen ---- */

struct gguf_init_params {
    bool no_alloc;
    void **ctx; /* struct ggml_context ** */
};

static struct {
    void *h;
    void *(*init)(const char *, struct gguf_init_params);
    void (*free_)(void *);
    void (*ggml_free)(void *);
    uint32_t (*version)(const void *);
    size_t (*alignment)(const void *);
    size_t (*data_offset)(const void *);
    int64_t (*n_kv)(const void *);
    const char *(*key)(const void *, int64_t);
    int64_t (*n_tensors)(const void *);
    const char *(*tensor_name)(const void *, int64_t);
    size_t (*tensor_offset)(const void *, int64_t);
    int (*tensor_type)(const void *, int64_t);
    size_t (*tensor_size)(const void *, int64_t);
} G;

static void quiet_log(int level, const char *text, void *user)
{
    (void)level, (void)text, (void)user;
}

/* Loads gguf_* from libggml-base.so; false with a reason when it is not there. */
static bool load_ggml(char *why, size_t cap)
{
    const char *env = getenv("MODELQ_GGML_LIB");
    const char *path = env && *env ? env
                                   : "tools/interop/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so";
    G.h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!G.h) {
        snprintf(why, cap, "cannot load %s (%s); run tools/setup.sh (npm ci in tools/interop)", path, dlerror());
        return false;
    }
    struct {
        const char *name;
        void **slot;
    } syms[] = {
        {"gguf_init_from_file", (void **)&G.init},       {"gguf_free", (void **)&G.free_},
        {"ggml_free", (void **)&G.ggml_free},            {"gguf_get_version", (void **)&G.version},
        {"gguf_get_alignment", (void **)&G.alignment},   {"gguf_get_data_offset", (void **)&G.data_offset},
        {"gguf_get_n_kv", (void **)&G.n_kv},             {"gguf_get_key", (void **)&G.key},
        {"gguf_get_n_tensors", (void **)&G.n_tensors},   {"gguf_get_tensor_name", (void **)&G.tensor_name},
        {"gguf_get_tensor_offset", (void **)&G.tensor_offset}, {"gguf_get_tensor_type", (void **)&G.tensor_type},
        {"gguf_get_tensor_size", (void **)&G.tensor_size},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *p = dlsym(G.h, syms[i].name);
        if (!p) {
            snprintf(why, cap, "%s: missing symbol %s", path, syms[i].name);
            return false;
        }
        memcpy(syms[i].slot, &p, sizeof p);
    }
    /* ggml logs every refusal on stderr; keep the test output readable */
    void (*log_set)(void (*)(int, const char *, void *), void *);
    void *p = dlsym(G.h, "ggml_log_set");
    if (p) {
        memcpy(&log_set, &p, sizeof p);
        log_set(quiet_log, NULL);
    }
    return true;
}

static void need_ggml(void)
{
    char why[1200];
    if (load_ggml(why, sizeof why)) return;
    if (getenv("CI")) cr_assert_fail("ggml library required when CI is set: %s", why);
    fprintf(stderr, "SKIP gguf interop test: %s (set CI to make this a failure)\n", why);
    cr_skip_test("gguf interop test skipped: %s", why);
}

/* gguf_init_from_file with no_alloc; *gctx gets the (metadata-only) ggml context. */
static void *ggml_open(const char *path, void **gctx)
{
    *gctx = NULL;
    struct gguf_init_params p = {.no_alloc = true, .ctx = gctx};
    return G.init(path, p);
}

static void ggml_close(void *g, void *gctx)
{
    if (g) G.free_(g);
    if (gctx) G.ggml_free(gctx);
}

Test(gguf_read, ggml_accepts_every_ok_file_with_the_same_layout)
{
    need_ggml();
    static char names[64][128];
    size_t n = list_gguf(OK, names, 64);
    cr_assert_geq(n, 10);
    for (size_t i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, OK "/%s", names[i]);
        void *gctx;
        void *g = ggml_open(path, &gctx);
        cr_assert_not_null(g, "%s: ggml's gguf_init_from_file refuses it", path);
        struct mq_model *m = open_ok(path);
        cr_expect_eq(G.version(g), m->files[0].gguf_version, "%s", path);
        cr_expect_eq(G.alignment(g), m->files[0].gguf_alignment, "%s", path);
        cr_expect_eq(G.data_offset(g), m->files[0].data_start, "%s: data offset", path);
        cr_assert_eq((size_t)G.n_kv(g), m->meta.n, "%s", path);
        for (size_t k = 0; k < m->meta.n; k++) cr_expect_str_eq(G.key(g, (int64_t)k), m->meta.items[k].key, "%s", path);
        cr_assert_eq((size_t)G.n_tensors(g), m->n_tensors, "%s", path);
        for (size_t t = 0; t < m->n_tensors; t++) {
            const struct mq_tensor *mt = &m->tensors[t];
            cr_expect_str_eq(G.tensor_name(g, (int64_t)t), mt->name, "%s", path);
            cr_expect_eq(G.data_offset(g) + G.tensor_offset(g, (int64_t)t), mt->offset, "%s: %s", path, mt->name);
            cr_expect_eq(G.tensor_type(g, (int64_t)t), mt->ggml_type, "%s: %s", path, mt->name);
            cr_expect_eq(G.tensor_size(g, (int64_t)t), mt->nbytes, "%s: %s", path, mt->name);
        }
        mq_model_free(m);
        ggml_close(g, gctx);
    }
}

Test(gguf_read, ggml_refuses_every_bad_file_where_it_has_the_rule)
{
    need_ggml();
    static char names[128][128];
    size_t n = list_gguf(BAD, names, 128);
    size_t accepted = 0;
    for (size_t i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, BAD "/%s", names[i]);
        bool stricter = false;
        for (size_t k = 0; k < sizeof ggml_accepts / sizeof ggml_accepts[0]; k++)
            stricter |= strcmp(names[i], ggml_accepts[k]) == 0;
        void *gctx;
        void *g = ggml_open(path, &gctx);
        if (stricter) {
            cr_expect_not_null(g, "%s: ggml refuses it now: move it out of ggml_accepts", path);
            accepted += g != NULL;
        } else {
            cr_expect_null(g, "%s: ggml's gguf_init_from_file accepts it", path);
        }
        ggml_close(g, gctx);
    }
    cr_expect_eq(accepted, sizeof ggml_accepts / sizeof ggml_accepts[0]);
}

/* ---- the CLI on GGUF inputs ---- */

static int run(const char *args, char **out)
{
    const char *bin = getenv("MODELQ_BIN");
    cr_assert_not_null(bin, "MODELQ_BIN not set (run through ctest)");
    char tmp[] = "/tmp/modelq-gguf-cli-XXXXXX";
    close(mkstemp(tmp));
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>&1 </dev/null", bin, args, tmp);
    int st = system(cmd);
    FILE *f = fopen(tmp, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = calloc(1, (size_t)len + 1);
    cr_assert_eq(fread(*out, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    unlink(tmp);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(gguf_read, cli_inspect_and_estimate_on_gguf)
{
    char *out;
    cr_assert_eq(run("inspect " OK "/tiny-llama.gguf", &out), 0);
    cr_expect(strstr(out, "format:   gguf v3, alignment 32, 4 tensors") != NULL, "%s", out);
    cr_expect(strstr(out, "llama.block_count              UINT32   1\n") != NULL, "%s", out);
    cr_expect(strstr(out, "tokenizer.ggml.tokens          ARRAY    [STRING x 8] \"t0\"") != NULL, "%s", out);
    cr_expect(strstr(out, "ne (ggml order)") != NULL, "%s", out);
    cr_expect(strstr(out, "Q8_0        [32, 32]") != NULL, "%s", out);
    free(out);

    cr_assert_eq(run("inspect --json " OK "/q8_0.gguf", &out), 0);
    cJSON *doc = cJSON_Parse(out);
    cr_assert_not_null(doc, "not JSON: %.300s", out);
    cr_expect_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "gguf"), "version")->valuedouble, 3);
    cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "tensors"), 0);
    cr_expect_str_eq(cJSON_GetObjectItem(t0, "ggml_type")->valuestring, "Q8_0");
    cr_expect_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(t0, "ne"), 0)->valuedouble, 32);
    cr_expect_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(t0, "shape"), 0)->valuedouble, 2);
    cJSON *typed = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "metadata_typed"), 0);
    cr_expect_str_eq(cJSON_GetObjectItem(typed, "type")->valuestring, "UINT32");
    cJSON_Delete(doc);
    free(out);

    cr_assert_eq(run("inspect --json " OK "/all-types.gguf", &out), 0);
    doc = cJSON_Parse(out);
    cr_assert_not_null(doc, "not JSON: %.300s", out);
    cJSON_Delete(doc);
    free(out);

    cr_assert_eq(run("estimate --json " OK "/tiny-llama.gguf", &out), 0);
    doc = cJSON_Parse(out);
    cr_assert_not_null(doc, "not JSON: %.300s", out);
    cr_expect(cJSON_IsObject(cJSON_GetObjectItem(doc, "inference")), "KV cache from the GGUF metadata");
    cr_expect_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "stored_quantized"), "tensors")->valuedouble, 1);
    cJSON_Delete(doc);
    free(out);

    cr_assert_eq(run("inspect " BAD "/offset-contiguous.gguf", &out), 3);
    cr_expect(strstr(out, "offset-contiguous.gguf: tensor 'v': offset-contiguous:") != NULL, "%s", out);
    cr_expect(strchr(out, '\n') == out + strlen(out) - 1, "one line: %s", out);
    free(out);
}
