/*
** test_gguf_write_limits.c - modelq never writes a GGUF its own reader refuses (gguf.h caps,
** applied by gguf_write.c before anything is written), and the writer's checks stay linear.
**
** At the writer's API: each cap exactly reached is accepted, one past it refused with its check
** name (keys, tensors, header bytes, string bytes, array elements, int64 element counts), and a
** header of exactly MQ_GGUF_MAX_HEADER_BYTES is read back by the reader. From the CLI, inputs
** whose conversion would pass a cap are refused with one line naming the output, the cap and the
** key, and nothing changes on disk (every file of the folder hashed before and after):
** a GGUF input with 16,382 keys (+3 modelq adds), a tokenizer_config.json with 16,400 named chat
** templates, a tokenizer.json with a 64 MiB + 1 token, and one whose tokens make a header over
** 128 MiB. 262,144 tensors convert and verify; 262,145 are refused; a duplicate name among
** 262,144 is refused naming it.
*/
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "model_impl.h"
#include "gguf.h"
#include "gguf_write.h"
#include "modelq/convert.h"
#include "modelq/model.h"
#include "run_cmd.h"
#include "stwrite.h"

#define MODEL "testdata/tiny-llama"

/* ---- "nothing changed on disk": every file of a folder, hashed ---- */

struct snap {
    int n;
    char name[64][128];
    uint64_t hash[64];
    uint64_t size[64];
};

static int cmp_name(const void *a, const void *b) { return strcmp(a, b); }

static void snapshot(const char *dir, struct snap *s)
{
    memset(s, 0, sizeof *s);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    struct dirent *e;
    char names[64][128];
    int n = 0;
    while ((e = readdir(d)) && n < 64)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) snprintf(names[n++], 128, "%.127s", e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_name);
    for (int i = 0; i < n; i++) {
        char p[700];
        snprintf(p, sizeof p, "%.500s/%.127s", dir, names[i]);
        size_t len = 0;
        uint8_t *b = read_file_all(p, &len);
        memcpy(s->name[i], names[i], 128);
        s->hash[i] = b ? XXH3_64bits(b, len) : 0;
        s->size[i] = len;
        free(b);
    }
    s->n = n;
}

static void expect_unchanged(const struct snap *a, const char *dir)
{
    struct snap b;
    snapshot(dir, &b);
    cr_expect_eq(a->n, b.n, "%s: %d files before, %d after", dir, a->n, b.n);
    for (int i = 0; i < a->n && i < b.n; i++) {
        cr_expect_str_eq(a->name[i], b.name[i], "%s: same files", dir);
        cr_expect(a->hash[i] == b.hash[i] && a->size[i] == b.size[i], "%s/%s changed", dir, a->name[i]);
    }
}

/* Runs `convert IN -o OUT ARGS` expecting exit 3 and exactly the one-line `want` on stderr, with
** nothing changed in OUT's folder (nor in IN's, when it is a folder). */
static void expect_refused(const char *in, const char *out_dir, const char *args, const char *want)
{
    struct snap before_out, before_in;
    snapshot(out_dir, &before_out);
    struct stat st;
    bool in_dir = stat(in, &st) == 0 && S_ISDIR(st.st_mode);
    if (in_dir) snapshot(in, &before_in);
    struct cmd_result r = run_modelq("convert %s -o %s/out.gguf --quiet %s", in, out_dir, args);
    cr_expect_eq(r.code, 3, "exit %d: %s", r.code, r.err);
    cr_expect_str_eq(r.err, want);
    cmd_result_free(&r);
    expect_unchanged(&before_out, out_dir);
    if (in_dir) expect_unchanged(&before_in, in);
}

/* ---- at the writer's API ---- */

static enum mq_status layout(const struct mq_meta *m, struct mq_gguf_tensor_info *t, size_t n, struct mq_error *err)
{
    uint64_t a, b;
    mq_error_clear(err);
    return mq_gguf_layout(m, t, n, &a, &b, err);
}

Test(gguf_write_limits, keys_strings_arrays)
{
    struct mq_meta m;
    mq_meta_init(&m);
    struct mq_error err;
    for (unsigned i = 0; i < MQ_GGUF_MAX_KV; i++) {
        char key[32];
        snprintf(key, sizeof key, "k.%05u", i);
        cr_assert_eq(mq_meta_set_uint(&m, key, MQ_META_U8, i & 0xff, &err), MQ_OK);
    }
    cr_expect_eq(layout(&m, NULL, 0, &err), MQ_OK, "16384 keys: %s", err.msg);
    cr_assert_eq(mq_meta_set_uint(&m, "one.more", MQ_META_U8, 1, &err), MQ_OK);
    cr_expect_eq(layout(&m, NULL, 0, &err), MQ_E_LIMIT);
    cr_expect_str_eq(err.check, "gguf-kv-count-limit");
    cr_expect_str_eq(err.msg, "the GGUF would hold 16385 metadata keys, over the 16384 its reader accepts (key one.more "
                              "is past the limit)");
    mq_meta_free(&m);

    /* a string of exactly the cap, then one byte more; the same in a string array */
    mq_meta_init(&m);
    char *big = malloc(MQ_GGUF_MAX_STRING + 1);
    cr_assert_not_null(big);
    memset(big, 'x', MQ_GGUF_MAX_STRING + 1);
    cr_assert_eq(mq_meta_set_str(&m, "s", big, MQ_GGUF_MAX_STRING, &err), MQ_OK);
    cr_expect_eq(layout(&m, NULL, 0, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_meta_set_str(&m, "s", big, MQ_GGUF_MAX_STRING + 1, &err), MQ_OK);
    cr_expect_eq(layout(&m, NULL, 0, &err), MQ_E_LIMIT);
    cr_expect_str_eq(err.check, "gguf-string-length-limit");
    cr_expect_str_eq(err.msg, "metadata s: a string of 67108865 bytes is over the 67108864-byte limit of modelq's GGUF reader");
    mq_meta_remove(&m, "s");
    const char *strs[2] = {"a", big};
    uint64_t lens[2] = {1, MQ_GGUF_MAX_STRING + 1};
    cr_assert_eq(mq_meta_set_str_array(&m, "arr", strs, lens, 2, &err), MQ_OK);
    cr_expect_eq(layout(&m, NULL, 0, &err), MQ_E_LIMIT);
    cr_expect_str_eq(err.msg, "metadata arr: element 1 is a string of 67108865 bytes, over the 67108864-byte limit of "
                              "modelq's GGUF reader");
    mq_meta_remove(&m, "arr");
    free(big);

    /* arrays: 2^24 elements, then 2^24 + 1 */
    uint8_t *elems = calloc(MQ_GGUF_MAX_ARRAY + 1, 1);
    cr_assert_eq(mq_meta_set_array(&m, "a", MQ_META_U8, elems, MQ_GGUF_MAX_ARRAY, &err), MQ_OK);
    cr_expect_eq(layout(&m, NULL, 0, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_meta_set_array(&m, "a", MQ_META_U8, elems, MQ_GGUF_MAX_ARRAY + 1, &err), MQ_OK);
    cr_expect_eq(layout(&m, NULL, 0, &err), MQ_E_LIMIT);
    cr_expect_str_eq(err.check, "gguf-array-count-limit");
    cr_expect_str_eq(err.msg, "metadata a: an array of 16777217 elements is over the 16777216-element limit of modelq's "
                              "GGUF reader");
    free(elems);
    mq_meta_free(&m);
}

/* Two strings filling the header to exactly the cap: written, and read back; one byte more is refused. */
Test(gguf_write_limits, header_bytes_exactly_at_the_cap)
{
    struct mq_meta m;
    mq_meta_init(&m);
    struct mq_error err;
    /* header = 24 + 2 x (8 + 1 + 4 + 8 + len) */
    uint64_t fixed = 24 + 2 * (8 + 1 + 4 + 8);
    uint64_t la = MQ_GGUF_MAX_STRING, lb = MQ_GGUF_MAX_HEADER_BYTES - fixed - la;
    char *big = malloc(MQ_GGUF_MAX_STRING);
    cr_assert_not_null(big);
    memset(big, 'y', MQ_GGUF_MAX_STRING);
    cr_assert_eq(mq_meta_set_str(&m, "a", big, la, &err), MQ_OK);
    cr_assert_eq(mq_meta_set_str(&m, "b", big, lb, &err), MQ_OK);
    uint64_t start, size;
    cr_assert_eq(mq_gguf_layout(&m, NULL, 0, &start, &size, &err), MQ_OK, "%s", err.msg);
    cr_expect_eq(start, MQ_GGUF_MAX_HEADER_BYTES, "exactly the cap (a multiple of 32: no padding)");
    char *dir = make_temp_dir("hdrcap");
    char path[512];
    snprintf(path, sizeof path, "%s/cap.gguf", dir);
    cr_assert_eq(mq_gguf_write_meta_only(path, &m, &err), MQ_OK, "%s", err.msg);
    struct mq_model *mm;
    cr_expect_eq(mq_model_open(path, &mm, &err), MQ_OK, "the reader takes what the writer wrote: %s", err.msg);
    if (mm) mq_model_free(mm);
    cr_assert_eq(mq_meta_set_str(&m, "b", big, lb + 1, &err), MQ_OK);
    cr_expect_eq(layout(&m, NULL, 0, &err), MQ_E_LIMIT);
    cr_expect_str_eq(err.check, "gguf-header-limit");
    cr_expect_str_eq(err.msg, "the GGUF header would pass the 134217728-byte limit of modelq's GGUF reader at key b");
    remove_tree(dir);
    free(dir);
    free(big);
    mq_meta_free(&m);
}

Test(gguf_write_limits, element_count_must_fit_int64)
{
    struct mq_meta m;
    mq_meta_init(&m);
    struct mq_error err;
    struct mq_gguf_tensor_info t = {.name = "w", .n_dims = 2, .ne = {1ull << 32, 1ull << 31}, .type = 24, .nbytes = 0};
    cr_expect_eq(layout(&m, &t, 1, &err), MQ_E_OVERFLOW);
    cr_expect_str_eq(err.check, "gguf-element-overflow");
    cr_expect_str_eq(err.msg, "tensor w: the element count does not fit in int64 (GGUF readers refuse it)");
    struct mq_gguf_tensor_info u = {.name = "w", .n_dims = 1, .ne = {1ull << 63}, .type = 24, .nbytes = 0};
    cr_expect_eq(layout(&m, &u, 1, &err), MQ_E_OVERFLOW);
    cr_expect_str_eq(err.msg, "tensor w: ne[0] = 9223372036854775808 does not fit in int64");
    mq_meta_free(&m);
}

/* 262,144 tensors pass (linear time: no timing asserted), one more is refused, a duplicate named. */
Test(gguf_write_limits, tensor_count_and_duplicates_at_the_api)
{
    struct mq_meta m;
    mq_meta_init(&m);
    struct mq_error err;
    size_t n = MQ_GGUF_MAX_TENSORS + 1;
    struct mq_gguf_tensor_info *t = calloc(n, sizeof *t);
    char (*names)[16] = calloc(n, sizeof *names);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "t.%zu", i);
        t[i] = (struct mq_gguf_tensor_info){.name = names[i], .n_dims = 1, .ne = {1}, .type = 0, .nbytes = 4};
    }
    cr_expect_eq(layout(&m, t, n - 1, &err), MQ_OK, "%s", err.msg);
    cr_expect_eq(layout(&m, t, n, &err), MQ_E_LIMIT);
    cr_expect_str_eq(err.check, "gguf-tensor-count-limit");
    cr_expect_str_eq(err.msg, "the GGUF would hold 262145 tensors, over the 262144 its reader accepts (tensor t.262144 is "
                              "past the limit)");
    t[n - 2].name = "t.1000";
    cr_expect_eq(layout(&m, t, n - 1, &err), MQ_E_USAGE);
    cr_expect_str_eq(err.check, "gguf-duplicate-tensor");
    cr_expect_str_eq(err.msg, "tensor t.1000 appears twice");
    free(t);
    free(names);
    mq_meta_free(&m);
}

/* ---- from the CLI: nothing written ---- */

/* A GGUF input of n_keys UINT8 keys and one F32 tensor (through the library's header writer). */
static void write_keys_gguf(const char *path, unsigned n_keys)
{
    struct mq_meta m;
    mq_meta_init(&m);
    struct mq_error err;
    cr_assert_eq(mq_meta_set_str(&m, "general.architecture", "raw", SIZE_MAX, &err), MQ_OK);
    for (unsigned i = 1; i < n_keys; i++) {
        char key[32];
        snprintf(key, sizeof key, "k.%05u", i);
        cr_assert_eq(mq_meta_set_uint(&m, key, MQ_META_U8, i & 0xff, &err), MQ_OK);
    }
    struct mq_gguf_tensor_info t = {.name = "w", .n_dims = 1, .ne = {8}, .type = 0, .nbytes = 32};
    uint64_t start, size;
    cr_assert_eq(mq_gguf_layout(&m, &t, 1, &start, &size, &err), MQ_OK, "%s", err.msg);
    uint8_t *buf = calloc(1, (size_t)size);
    cr_assert_eq(mq_gguf_header_write(&m, &t, 1, buf, start, &err), MQ_OK);
    FILE *f = fopen(path, "wb");
    cr_assert_eq(fwrite(buf, 1, (size_t)size, f), size);
    fclose(f);
    free(buf);
    mq_meta_free(&m);
}

Test(gguf_write_limits, gguf_input_with_too_many_keys_for_the_checksums)
{
    char *dir = make_temp_dir("kvcli");
    char in[512], out[512], want[1024];
    /* 16381 + quantization_version + the two checksum keys = 16384: written and verified */
    snprintf(in, sizeof in, "%s/fits.gguf", dir);
    write_keys_gguf(in, MQ_GGUF_MAX_KV - 3);
    snprintf(out, sizeof out, "%s/fits-out.gguf", dir);
    struct cmd_result r = run_modelq("convert %s -o %s --quiet", in, out);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    r = run_modelq("verify %s --quiet", out);
    cr_expect_eq(r.code, 0, "%s%s", r.out, r.err);
    cmd_result_free(&r);
    /* one key more */
    char *odir = make_temp_dir("kvcli-out");
    snprintf(in, sizeof in, "%s/over.gguf", dir);
    write_keys_gguf(in, MQ_GGUF_MAX_KV - 2);
    snprintf(want, sizeof want,
             "modelq: error: %s/out.gguf: the GGUF would hold 16385 metadata keys, over the 16384 its reader accepts "
             "(key modelq.header_xxh3 is past the limit)\n", odir);
    expect_refused(in, odir, "", want);
    remove_tree(odir);
    free(odir);
    remove_tree(dir);
    free(dir);
}

/* A copy of the tiny model (no shards folder) whose tokenizer files `edit` changes. */
static char *copy_model(const char *tag)
{
    char *dir = make_temp_dir(tag);
    static const char *const files[] = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                                        "tokenizer_config.json"};
    for (size_t i = 0; i < 5; i++) {
        char a[600], b[600];
        snprintf(a, sizeof a, "%s/%s", MODEL, files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        size_t len;
        uint8_t *d = read_file_all(a, &len);
        cr_assert_not_null(d);
        FILE *f = fopen(b, "wb");
        cr_assert_eq(fwrite(d, 1, len, f), len);
        fclose(f);
        free(d);
    }
    return dir;
}

static void save_json(const char *path, cJSON *doc)
{
    char *text = cJSON_PrintUnformatted(doc);
    cr_assert_not_null(text);
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
    free(text);
}

Test(gguf_write_limits, named_chat_templates_past_the_key_cap)
{
    char *model = copy_model("tplmodel");
    char *odir = make_temp_dir("tplout");
    char p[600], want[1024];
    snprintf(p, sizeof p, "%s/tokenizer_config.json", model);
    cJSON *doc = load_json(p);
    cJSON *list = cJSON_CreateArray();
    for (int i = 0; i < 16400; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%05d", i);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", name);
        cJSON_AddStringToObject(e, "template", "{{ messages }}");
        cJSON_AddItemToArray(list, e);
    }
    cJSON_DeleteItemFromObject(doc, "chat_template");
    cJSON_AddItemToObject(doc, "chat_template", list);
    save_json(p, doc);
    cJSON_Delete(doc);
    snprintf(want, sizeof want,
             "modelq: error: %s/out.gguf: the GGUF would hold 16427 metadata keys, over the 16384 its reader accepts "
             "(key tokenizer.chat_template.t16361 is past the limit)\n", odir);
    expect_refused(model, odir, "--type q8_0", want);
    remove_tree(model);
    remove_tree(odir);
    free(model);
    free(odir);
}

/* tokenizer.json with vocabulary tokens of `len` bytes replacing `n` tokens no merge uses. */
static void big_tokens(const char *model, size_t n, size_t len)
{
    char p[600];
    snprintf(p, sizeof p, "%s/tokenizer.json", model);
    cJSON *doc = load_json(p);
    cJSON *vocab = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "model"), "vocab");
    char *s = malloc(len + 1);
    cr_assert_not_null(s);
    /* ids 250 .. 250+n-1 are single characters no merge uses in the fixture */
    for (size_t k = 0; k < n; k++) {
        cJSON *e = NULL;
        cJSON_ArrayForEach(e, vocab) if ((size_t)e->valuedouble == 250 + k) break;
        cr_assert_not_null(e);
        char *old = strdup(e->string);
        cJSON_DeleteItemFromObject(vocab, old);
        free(old);
        memset(s, 'a' + (int)k, len);
        s[len] = '\0';
        cJSON_AddNumberToObject(vocab, s, (double)(250 + k));
    }
    free(s);
    save_json(p, doc);
    cJSON_Delete(doc);
}

Test(gguf_write_limits, tokenizer_token_past_the_string_cap)
{
    char *model = copy_model("tokmodel");
    char *odir = make_temp_dir("tokout");
    char want[1024];
    big_tokens(model, 1, MQ_GGUF_MAX_STRING + 1);
    snprintf(want, sizeof want,
             "modelq: error: %s/out.gguf: metadata tokenizer.ggml.tokens: element 250 is a string of 67108865 bytes, "
             "over the 67108864-byte limit of modelq's GGUF reader\n", odir);
    expect_refused(model, odir, "--type q8_0", want);
    remove_tree(model);
    remove_tree(odir);
    free(model);
    free(odir);
}

Test(gguf_write_limits, tokenizer_tokens_past_the_header_cap)
{
    char *model = copy_model("hdrmodel");
    char *odir = make_temp_dir("hdrout");
    char want[1024];
    big_tokens(model, 3, 43u << 20); /* 129 MiB of tokens, each under the string cap */
    snprintf(want, sizeof want,
             "modelq: error: %s/out.gguf: the GGUF header would pass the 134217728-byte limit of modelq's GGUF reader "
             "at key tokenizer.ggml.tokens\n", odir);
    expect_refused(model, odir, "--type q8_0", want);
    remove_tree(model);
    remove_tree(odir);
    free(model);
    free(odir);
}

/* A safetensors file of n F32 [1] tensors "t.<i>" holding i. */
static void write_many(const char *path, size_t n)
{
    size_t cap = 64 + n * 80, len = 0;
    char *h = malloc(cap);
    float *data = malloc(n * sizeof *data);
    cr_assert(h && data);
    len += (size_t)snprintf(h + len, cap - len, "{");
    for (size_t i = 0; i < n; i++) {
        data[i] = (float)i;
        len += (size_t)snprintf(h + len, cap - len, "%s\"t.%zu\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%zu,%zu]}",
                                i ? "," : "", i, i * 4, i * 4 + 4);
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8) h[len++] = ' ';
    cr_assert_eq(stw_write_raw(path, len, h, len, data, n * sizeof *data), 0);
    free(h);
    free(data);
}

Test(gguf_write_limits, many_tiny_tensors_convert_and_one_more_is_refused)
{
    char *dir = make_temp_dir("many");
    char in[512], out[512], want[1024];
    snprintf(in, sizeof in, "%s/many.safetensors", dir);
    snprintf(out, sizeof out, "%s/many.gguf", dir);
    write_many(in, MQ_GGUF_MAX_TENSORS);
    struct cmd_result r = run_modelq("convert %s -o %s --quiet", in, out);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    r = run_modelq("verify %s --quiet", out);
    cr_expect_eq(r.code, 0, "%s%s", r.out, r.err);
    cr_expect(strstr(r.out, "all 262144 tensors match their checksums, and so does the header") != NULL, "%s", r.out);
    cmd_result_free(&r);
    struct mq_model *m;
    struct mq_error err;
    cr_assert_eq(mq_model_open(out, &m, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(m->n_tensors, MQ_GGUF_MAX_TENSORS);
    for (size_t i = 0; i < m->n_tensors; i += 4099) {
        char name[32];
        snprintf(name, sizeof name, "t.%zu", i);
        cr_expect_str_eq(m->tensors[i].name, name);
        float v = -1;
        cr_assert_eq(mq_model_read(m, i, 0, &v, 4, &err), MQ_OK);
        cr_expect_eq(v, (float)i, "%s holds its value", name);
    }
    mq_model_free(m);
    unlink(out);
    /* one more: refused, nothing written */
    write_many(in, MQ_GGUF_MAX_TENSORS + 1);
    snprintf(want, sizeof want,
             "modelq: error: %s/out.gguf: the GGUF would hold 262145 tensors, over the 262144 its reader accepts "
             "(tensor t.262144 is past the limit)\n", dir);
    expect_refused(in, dir, "", want);
    remove_tree(dir);
    free(dir);
}
