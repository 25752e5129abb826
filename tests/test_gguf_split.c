/*
** test_gguf_split.c - split GGUF models (llama.cpp's gguf-split convention): read whole, written
** as llama.cpp loads them, one atomic set, merged and re-split with identical bytes.
**
** Fixtures: the tiny model converted to one f32 GGUF by modelq, then split by write_split()
** below, a writer of its own that follows the documented layout (gguf.h; gguf-split.cpp): part 1
** holds every key and then split.no (UINT16), split.count (UINT16), split.tensors.count (INT32);
** the other parts hold the three split keys only; each part's tensor data starts at its own
** aligned data section. No modelq keys (no checksums, no set identity): what gguf-split or
** gguf-py write. One mutation per failure mode makes the bad sets. @huggingface/gguf reads the
** parts (cross-check of the layout), llama.cpp loads modelq's split output.
*/
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ggml_ref.h"
#include "gguf_dump.h"
#include "gguf_write.h"
#include "llama_cpp.h"
#include "modelq/meta.h"
#include "modelq/model.h"
#include "model_build.h"
#include "run_cmd.h"

#define MODEL "testdata/tiny-llama"



static const char *path_in(const char *dir, const char *name)
{
    static char buf[8][1024];
    static int i;
    char *b = buf[i++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", dir, name);
    return b;
}

/* The tiny model as one f32 GGUF in dir/one.gguf. */
static void make_single(const char *dir)
{
    struct cmd_result r = run_modelq("convert " MODEL " -o %s/one.gguf --type f32 --quiet", dir);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
}

enum mutation {
    MUT_NONE,
    MUT_MISSING,        /* part 2 deleted */
    MUT_WRONG_NO,       /* part 2 says split.no = 2 */
    MUT_NO_KEYS,        /* part 2 has no split keys */
    MUT_OTHER_MODEL,    /* part 2 says split.tensors.count + 1 */
    MUT_DUPLICATE,      /* part 2 also holds part 1's first tensor */
    MUT_WRONG_COUNT,    /* every part says split.tensors.count + 1 */
    MUT_TRUNCATED,      /* the last part cut by 100 bytes */
    MUT_KEY_TYPE,       /* split.count written as UINT32 in part 1 */
    MUT_OTHER_KEY,      /* part 2 holds general.name with another value */
};

/*
** Splits dir/one.gguf into `n` parts dir/s-0000K-of-0000N.gguf with the tensors dealt in order,
** as evenly as possible (the layout of gguf.h; no modelq keys), then applies `mut`.
*/
static void write_split(const char *dir, unsigned n, enum mutation mut)
{
    struct mq_model *m;
    struct mq_error err = {0};
    cr_assert_eq(mq_model_open(path_in(dir, "one.gguf"), &m, &err), MQ_OK, "%s", err.msg);
    size_t nt = m->n_tensors;
    for (unsigned k = 0; k < n; k++) {
        size_t first = nt * k / n, last = nt * (k + 1) / n;
        struct mq_meta meta;
        mq_meta_init(&meta);
        if (k == 0) {
            cr_assert_eq(mq_meta_copy(&meta, &m->meta, &err), MQ_OK);
            mq_meta_remove(&meta, "modelq.tensor_xxh3");
            mq_meta_remove(&meta, "modelq.header_xxh3");
        }
        if (k == 1 && mut == MUT_OTHER_KEY) mq_meta_set_str(&meta, "general.name", "another", SIZE_MAX, &err);
        bool keys = !(k == 1 && mut == MUT_NO_KEYS);
        if (keys) {
            mq_meta_set_uint(&meta, "split.no", MQ_META_U16, k == 1 && mut == MUT_WRONG_NO ? 2 : k, &err);
            mq_meta_set_uint(&meta, "split.count", k == 0 && mut == MUT_KEY_TYPE ? MQ_META_U32 : MQ_META_U16, n, &err);
            int64_t total = (int64_t)nt + (mut == MUT_WRONG_COUNT || (k == 1 && mut == MUT_OTHER_MODEL));
            mq_meta_set_int(&meta, "split.tensors.count", MQ_META_I32, total, &err);
        }
        size_t extra = k == 1 && mut == MUT_DUPLICATE;
        size_t cnt = last - first + extra;
        struct mq_gguf_tensor_info *info = calloc(cnt + 1, sizeof *info);
        size_t *src = calloc(cnt + 1, sizeof *src);
        for (size_t j = 0; j < cnt; j++) {
            size_t i = j < last - first ? first + j : 0;
            const struct mq_tensor *t = &m->tensors[i];
            src[j] = i;
            info[j].name = t->name;
            info[j].n_dims = t->ndim ? t->ndim : 1;
            info[j].ne[0] = info[j].ne[1] = info[j].ne[2] = info[j].ne[3] = 1;
            for (uint32_t d = 0; d < t->ndim; d++) info[j].ne[d] = t->shape[t->ndim - 1 - d];
            info[j].type = t->ggml_type;
            info[j].nbytes = t->nbytes;
        }
        uint64_t ds, size;
        cr_assert_eq(mq_gguf_layout(&meta, info, cnt, &ds, &size, &err), MQ_OK, "%s", err.msg);
        uint8_t *buf = calloc(1, size);
        cr_assert_eq(mq_gguf_header_write(&meta, info, cnt, buf, ds, &err), MQ_OK, "%s", err.msg);
        for (size_t j = 0; j < cnt; j++)
            cr_assert_eq(mq_model_read(m, src[j], 0, buf + ds + info[j].offset, info[j].nbytes, &err), MQ_OK);
        char name[64];
        snprintf(name, sizeof name, "s-%05u-of-%05u.gguf", k + 1, n);
        FILE *f = fopen(path_in(dir, name), "wb");
        size_t len = k == n - 1 && mut == MUT_TRUNCATED ? size - 100 : size;
        cr_assert_eq(fwrite(buf, 1, len, f), len);
        fclose(f);
        free(buf);
        free(info);
        free(src);
        mq_meta_free(&meta);
    }
    mq_model_free(m);
    if (mut == MUT_MISSING) run_shell("rm '%s/s-00002-of-%05u.gguf'", dir, n);
}

/* ---- reading a set ---- */

Test(gguf_split, a_set_reads_whole_from_any_part)
{
    char *d = make_temp_dir("split-read");
    make_single(d);
    write_split(d, 3, MUT_NONE);
    struct cmd_result one = run_modelq("estimate %s/one.gguf --json", d);
    cr_assert_eq(one.code, 0, "%s", one.err);
    for (int k = 1; k <= 3; k++) {
        struct cmd_result r = run_modelq("inspect %s/s-%05d-of-00003.gguf", d, k);
        cr_assert_eq(r.code, 0, "%s", r.err);
        cr_expect(strstr(r.out, "21 tensors, a split model of 3 parts (read as one"), "%s", r.out);
        cmd_result_free(&r);
        r = run_modelq("estimate %s/s-%05d-of-00003.gguf", d, k);
        cr_assert_eq(r.code, 0, "%s", r.err);
        cr_expect(strstr(r.out, "a split model of 3 parts, read as one"), "%s", r.out);
        cr_expect(strstr(r.out, "1,377,536 in 21 tensors"), "%s", r.out);
        cmd_result_free(&r);
    }
    struct cmd_result j = run_modelq("inspect --json %s/s-00002-of-00003.gguf", d);
    cr_expect(strstr(j.out, "\"split_parts\":\t3"), "%s", j.out);
    cmd_result_free(&j);
    cmd_result_free(&one);

    /* merged: the same tensor bytes as the file that was split, no split keys */
    struct cmd_result r = run_modelq("convert %s/s-00001-of-00003.gguf -o %s/merged.gguf --quiet", d, d);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    struct mq_model *a, *b;
    struct mq_error err = {0};
    cr_assert_eq(mq_model_open(path_in(d, "one.gguf"), &a, &err), MQ_OK);
    cr_assert_eq(mq_model_open(path_in(d, "merged.gguf"), &b, &err), MQ_OK);
    cr_assert_eq(a->n_tensors, b->n_tensors);
    cr_expect_null(mq_meta_get(&b->meta, "split.count"), "a merged model does not claim to be split");
    cr_expect_null(mq_meta_get(&b->meta, "split.no"));
    cr_expect_eq(b->split_parts, 0);
    for (size_t i = 0; i < a->n_tensors; i++) {
        cr_assert_str_eq(a->tensors[i].name, b->tensors[i].name);
        cr_assert_eq(a->tensors[i].nbytes, b->tensors[i].nbytes);
        uint8_t *x = malloc(a->tensors[i].nbytes), *y = malloc(b->tensors[i].nbytes);
        mq_model_read(a, i, 0, x, a->tensors[i].nbytes, &err);
        mq_model_read(b, i, 0, y, b->tensors[i].nbytes, &err);
        cr_expect_eq(memcmp(x, y, a->tensors[i].nbytes), 0, "tensor %s", a->tensors[i].name);
        free(x);
        free(y);
    }
    mq_model_free(a);
    mq_model_free(b);

    /* @huggingface/gguf reads each part of the fixture as gguf.h describes it */
    char why[1024];
    for (int k = 1; k <= 3; k++) {
        struct gguf_view v;
        char p[1024];
        snprintf(p, sizeof p, "%s/s-%05d-of-00003.gguf", d, k);
        gguf_view_need_tools(gguf_view_from_js(&v, p, why, sizeof why), why);
        cr_expect(gguf_view_check_layout(&v, why, sizeof why), "%s", why);
        cr_expect(gguf_view_expect_uint(&v, "split.no", GGREF_GGUF_UINT16, (uint64_t)k - 1, why, sizeof why), "%s", why);
        cr_expect(gguf_view_expect_uint(&v, "split.count", GGREF_GGUF_UINT16, 3, why, sizeof why), "%s", why);
        cr_expect(gguf_view_expect_int(&v, "split.tensors.count", GGREF_GGUF_INT32, 21, why, sizeof why), "%s", why);
        cr_expect_eq(gguf_view_find_kv(&v, "general.architecture") != NULL, k == 1);
        gguf_view_free(&v);
    }
    remove_tree(d);
    free(d);
}

/* Each broken set: exit 3, exactly this one line (the format's arguments name the scratch folder d_), nothing written,
** the folder unchanged. */
#define expect_broken(mut, ...)                                                                         \
    do {                                                                                                \
        char *d_ = make_temp_dir("split-bad");                                                          \
        make_single(d_);                                                                                \
        write_split(d_, 3, (mut));                                                                      \
        char line_[2048];                                                                               \
        snprintf(line_, sizeof line_, __VA_ARGS__);                                                     \
        expect_broken_line(d_, line_);                                                                  \
    } while (0)

static void expect_broken_line(char *d, const char *line)
{
    char *before = tree_snapshot(d);
    const char *cmds[] = {"inspect", "estimate", "convert", "verify"};
    for (int c = 0; c < 4; c++) {
        /* from part 1 and from the last part: the same set, the same message */
        for (int from = 1; from <= 3; from += 2) {
            struct cmd_result r = strcmp(cmds[c], "convert") == 0
                                      ? run_modelq("convert %s/s-%05d-of-00003.gguf -o %s/out.gguf --quiet", d, from, d)
                                      : run_modelq("%s %s/s-%05d-of-00003.gguf", cmds[c], d, from);
            cr_expect_eq(r.code, 3, "%s from part %d: exit %d: %s", cmds[c], from, r.code, r.err);
            cr_expect_str_eq(r.err, line, "%s from part %d", cmds[c], from);
            cmd_result_free(&r);
        }
    }
    char *after = tree_snapshot(d);
    cr_expect_str_eq(after, before, "nothing changed on disk");
    free(before);
    free(after);
    remove_tree(d);
    free(d);
}

Test(gguf_split, missing_part)
{
    expect_broken(MUT_MISSING, "modelq: error: %s/s-00002-of-00003.gguf: part 2 of 3 of this split model is missing "
                               "(no such file)\n", d_);
}

Test(gguf_split, part_with_another_index)
{
    expect_broken(MUT_WRONG_NO, "modelq: error: %s/s-00002-of-00003.gguf: split.no = 2 and split.count = 3, but the "
                                "name says part 2 of 3 (split.no 1): not a part of this set\n", d_);
}

Test(gguf_split, file_named_as_a_part_without_split_keys)
{
    expect_broken(MUT_NO_KEYS, "modelq: error: %s/s-00002-of-00003.gguf: named as part 2 of 3 of a split model but "
                               "has no split.no key: not a part of this set\n", d_);
}

Test(gguf_split, part_of_another_model)
{
    expect_broken(MUT_OTHER_MODEL, "modelq: error: %s/s-00002-of-00003.gguf: split.tensors.count = 22 but "
                                   "%s/s-00001-of-00003.gguf says 21: a part of another model\n", d_, d_);
}

Test(gguf_split, part_with_another_models_metadata)
{
    expect_broken(MUT_OTHER_KEY, "modelq: error: %s/s-00002-of-00003.gguf: key 'general.name' differs from its value "
                                 "in %s/s-00001-of-00003.gguf: a part of another model\n", d_, d_);
}

Test(gguf_split, duplicated_tensor)
{
    expect_broken(MUT_DUPLICATE, "modelq: error: %s/s-00002-of-00003.gguf: tensor 'output.weight' is also in "
                                 "%s/s-00001-of-00003.gguf\n", d_, d_);
}

Test(gguf_split, wrong_tensor_count)
{
    expect_broken(MUT_WRONG_COUNT, "modelq: error: %s/s-00001-of-00003.gguf: split.tensors.count = 22, but the 3 "
                                   "parts hold 21 tensors\n", d_);
}

Test(gguf_split, wrong_key_type)
{
    expect_broken(MUT_KEY_TYPE, "modelq: error: %s/s-00001-of-00003.gguf: split.count is UINT32; llama.cpp reads it "
                                "as UINT16\n", d_);
}

Test(gguf_split, truncated_last_part)
{
    char *d = make_temp_dir("split-trunc");
    make_single(d);
    write_split(d, 3, MUT_TRUNCATED);
    char *before = tree_snapshot(d);
    struct cmd_result r = run_modelq("convert %s/s-00001-of-00003.gguf -o %s/out.gguf --quiet", d, d);
    cr_expect_eq(r.code, 3, "%s", r.err);
    cr_expect(strstr(r.err, "s-00003-of-00003.gguf: tensor 'output_norm.weight': tensor-within-file:"), "%s", r.err);
    cr_expect_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1, "one line: %s", r.err);
    cmd_result_free(&r);
    char *after = tree_snapshot(d);
    cr_expect_str_eq(after, before);
    free(before);
    free(after);
    remove_tree(d);
    free(d);
}

Test(gguf_split, a_part_not_named_as_one_is_refused)
{
    char *d = make_temp_dir("split-name");
    make_single(d);
    write_split(d, 3, MUT_NONE);
    run_shell("cp '%s/s-00001-of-00003.gguf' '%s/first.gguf'", d, d);
    struct cmd_result r = run_modelq("inspect %s/first.gguf", d);
    cr_expect_eq(r.code, 3);
    char line[1024];
    snprintf(line, sizeof line,
             "modelq: error: %s/first.gguf: split.count = 3: this is one part of a split model, but its name is not "
             "PREFIX-0000K-of-00003.gguf, so the other parts cannot be found (name the parts as gguf-split does)\n",
             d);
    cr_expect_str_eq(r.err, line);
    cmd_result_free(&r);
    remove_tree(d);
    free(d);
}

/* ---- writing a set ---- */

static void expect_parts(const char *d, const char *prefix, int n)
{
    for (int k = 1; k <= n; k++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s-%05d-of-%05d.gguf", d, prefix, k, n);
        cr_expect(file_exists(p), "%s", p);
    }
    cr_expect_eq(count_entries_containing(d, "modelq-tmp"), 0, "no temporary left");
}

Test(gguf_split, written_set_is_what_gguf_split_writes_and_verifies)
{
    char *d = make_temp_dir("split-write");
    struct cmd_result r = run_modelq("convert " MODEL " -o %s/s.gguf --type f32 --split-max-tensors 8 --quiet", d);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_expect(strstr(r.out, "wrote a split model of 3 parts"), "%s", r.out);
    cmd_result_free(&r);
    expect_parts(d, "s", 3);
    cr_expect(!file_exists(path_in(d, "s.gguf")));
    char why[1024];
    for (int k = 1; k <= 3; k++) {
        struct gguf_view v;
        char p[1024];
        snprintf(p, sizeof p, "%s/s-%05d-of-00003.gguf", d, k);
        gguf_view_need_tools(gguf_view_from_js(&v, p, why, sizeof why), why);
        cr_expect(gguf_view_check_layout(&v, why, sizeof why), "%s", why);
        cr_expect(gguf_view_expect_uint(&v, "split.no", GGREF_GGUF_UINT16, (uint64_t)k - 1, why, sizeof why), "%s", why);
        cr_expect(gguf_view_expect_uint(&v, "split.count", GGREF_GGUF_UINT16, 3, why, sizeof why), "%s", why);
        cr_expect(gguf_view_expect_int(&v, "split.tensors.count", GGREF_GGUF_INT32, 21, why, sizeof why), "%s", why);
        cr_expect_eq(v.n_tensors, k < 3 ? 8u : 5u, "gguf-split's deal: 8, 8, 5");
        if (k == 1) cr_expect(gguf_view_expect_str(&v, "general.architecture", "llama", why, sizeof why), "%s", why);
        else cr_expect_eq(v.n_kv, 6u, "part %d: split keys, set identity, checksums only", k);
        gguf_view_free(&v);
    }
    r = run_modelq("verify %s/s-00003-of-00003.gguf", d);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cr_expect(strstr(r.out, "all 21 tensors match their checksums, and so do the 3 headers"), "%s", r.out);
    cmd_result_free(&r);
    /* one flipped byte in part 2's data: verify of the set and of the part find it */
    run_shell("printf '\\125' | dd of='%s/s-00002-of-00003.gguf' bs=1 seek=100000 conv=notrunc 2>/dev/null", d);
    r = run_modelq("verify %s/s-00001-of-00003.gguf", d);
    cr_expect_neq(r.code, 0);
    cr_expect(strstr(r.out, "1 of 21 tensors do not match"), "%s", r.out);
    cmd_result_free(&r);
    remove_tree(d);
    free(d);
}

Test(gguf_split, size_limits_and_max_shard_size)
{
    char *d = make_temp_dir("split-size");
    /* f32 tiny: tensors of 393,216 / 524,288 ... bytes; 1M = 10^6 bytes of tensor data per part */
    struct cmd_result r = run_modelq("convert " MODEL " -o %s/a.gguf --type f32 --split-max-size 1M --quiet", d);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    r = run_modelq("convert " MODEL " -o %s/b.gguf --type f32 --max-shard-size 1MB --quiet", d);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    struct cmd_result ls = run_modelq("inspect --json %s/a-00001-of-00008.gguf", d);
    cr_assert_eq(ls.code, 0, "%s", ls.err);
    cmd_result_free(&ls);
    /* 8 parts: gguf-split's deal of 393,216 + 393,216 + 1,024 | 524,288 | 524,288 | ... */
    for (int k = 1; k <= 8; k++) {
        char a[64], b[64];
        snprintf(a, sizeof a, "a-%05d-of-00008.gguf", k);
        snprintf(b, sizeof b, "b-%05d-of-00008.gguf", k);
        cr_expect(files_equal(path_in(d, a), path_in(d, b)), "--max-shard-size on a GGUF = --split-max-size: %s", a);
        struct mq_model *m;
        struct mq_error err = {0};
        cr_assert_eq(mq_model_open_gguf_part(path_in(d, a), &m, &err), MQ_OK, "%s", err.msg);
        uint64_t data = 0;
        for (size_t i = 0; i < m->n_tensors; i++) data += (m->tensors[i].nbytes + 31) / 32 * 32;
        cr_expect(data <= 1000000 || m->n_tensors == 1, "part %d: %llu bytes of tensor data", k,
                  (unsigned long long)data);
        mq_model_free(m);
    }
    /* everything fits one part: one plain file (as gguf-py writes a single shard) */
    r = run_modelq("convert " MODEL " -o %s/c.gguf --type q8_0 --split-max-size 50G --quiet", d);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    cr_expect(file_exists(path_in(d, "c.gguf")));
    cr_expect_eq(count_entries_containing(d, "c-0000"), 0);
    /* a bitsandbytes folder refuses the GGUF split options */
    r = run_modelq("convert " MODEL " -o %s/bnb --type nf4 --split-max-tensors 3", d);
    cr_expect_eq(r.code, 2);
    char line[1024];
    snprintf(line, sizeof line,
             "modelq: error: %s/bnb: --split-max-size and --split-max-tensors split a GGUF output; a bitsandbytes "
             "folder takes --max-shard-size\n",
             d);
    cr_expect_str_eq(r.err, line);
    cmd_result_free(&r);
    remove_tree(d);
    free(d);
}

Test(gguf_split, merge_and_resplit_are_byte_identical)
{
    char *d = make_temp_dir("split-rt");
    struct cmd_result r = run_modelq("convert " MODEL " -o %s/a.gguf --type q8_0 --split-max-tensors 6 --quiet", d);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    r = run_modelq("convert %s/a-00002-of-00004.gguf -o %s/m.gguf --quiet", d, d);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    r = run_modelq("convert %s/m.gguf -o %s/b.gguf --split-max-tensors 6 --quiet", d, d);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    for (int k = 1; k <= 4; k++) {
        char a[64], b[64];
        snprintf(a, sizeof a, "a-%05d-of-00004.gguf", k);
        snprintf(b, sizeof b, "b-%05d-of-00004.gguf", k);
        cr_expect(files_equal(path_in(d, a), path_in(d, b)), "split -> merge -> split: %s identical", a);
    }
    /* merging again gives the same single file */
    r = run_modelq("convert %s/b-00001-of-00004.gguf -o %s/m2.gguf --quiet", d, d);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    cr_expect(files_equal(path_in(d, "m.gguf"), path_in(d, "m2.gguf")));
    /* the same set written over itself: refused, its parts are the input */
    char *before = tree_snapshot(d);
    r = run_modelq("convert %s/a-00001-of-00004.gguf -o %s/a.gguf --split-max-tensors 6 --quiet", d, d);
    cr_expect_eq(r.code, 2, "%s", r.err);
    cr_expect(strstr(r.err, "a-00001-of-00004.gguf") && strstr(r.err, "input"), "%s", r.err);
    cmd_result_free(&r);
    char *after = tree_snapshot(d);
    cr_expect_str_eq(after, before);
    free(before);
    free(after);
    remove_tree(d);
    free(d);
}

Test(gguf_split, a_new_set_replaces_an_old_one_with_the_same_names)
{
    char *d = make_temp_dir("split-replace");
    struct cmd_result r = run_modelq("convert " MODEL " -o %s/s.gguf --type f32 --split-max-tensors 8 --quiet", d);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    r = run_modelq("convert " MODEL " -o %s/s.gguf --type f16 --split-max-tensors 8 --quiet", d);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    r = run_modelq("verify %s/s-00001-of-00003.gguf", d);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    /* an old part 2 beside a new part 1: another set */
    run_shell("mkdir '%s/old' && cd '%s' && cp s-00002-of-00003.gguf old/", d, d);
    r = run_modelq("convert " MODEL " -o %s/s.gguf --type q8_0 --split-max-tensors 8 --quiet", d);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    run_shell("cp '%s/old/s-00002-of-00003.gguf' '%s/'", d, d);
    r = run_modelq("inspect %s/s-00001-of-00003.gguf", d);
    cr_expect_eq(r.code, 3);
    cr_expect(strstr(r.err, "s-00002-of-00003.gguf: modelq.split.set_xxh3 differs from") &&
                  strstr(r.err, "a part of another set"),
              "%s", r.err);
    cmd_result_free(&r);
    remove_tree(d);
    free(d);
}

Test(gguf_split, no_space_in_the_last_part_leaves_nothing)
{
    char *d = make_temp_dir("split-enospc");
    run_shell("echo keep > '%s/other'", d);
    char *before = tree_snapshot(d);
    /* the parts of f32 tiny total 5.5 MB; fail after 5.4 MB: inside the last part's data */
    struct cmd_result r;
    setenv("MODELQ_FAULT_WRITE_AFTER", "5400000", 1);
    r = run_modelq("convert " MODEL " -o %s/s.gguf --type f32 --split-max-tensors 8 -j 1 --quiet", d);
    unsetenv("MODELQ_FAULT_WRITE_AFTER");
    cr_expect_eq(r.code, 4, "%s", r.err);
    cr_expect(strstr(r.err, "No space left on device"), "%s", r.err);
    cmd_result_free(&r);
    char *after = tree_snapshot(d);
    cr_expect_str_eq(after, before, "no part, no temporary");
    free(before);
    free(after);
    remove_tree(d);
    free(d);
}

Test(gguf_split, sigkill_leaves_no_loadable_half_set)
{
    char *d = make_temp_dir("split-kill");
    char out[1024];
    snprintf(out, sizeof out, "%s/s.gguf", d);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        setenv("MODELQ_TEST_CHUNK_DELAY_MS", "20", 1);
        setenv("MODELQ_CHUNK_ELEMS", "2048", 1);
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1);
        dup2(nul, 2);
        execl(getenv("MODELQ_BIN"), "modelq", "convert", MODEL, "-o", out, "--type", "q4_0", "-j", "1",
              "--split-max-tensors", "5", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000 && count_entries_containing(d, "modelq-tmp") == 0; i++) usleep(5000);
    usleep(100000);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    cr_expect(WIFSIGNALED(st));
    for (int k = 1; k <= 5; k++) {
        char p[1100];
        snprintf(p, sizeof p, "%s/s-%05d-of-00005.gguf", d, k);
        cr_expect(!file_exists(p), "no part in place: %s", p);
    }
    struct cmd_result r = run_modelq("inspect %s/s-00002-of-00005.gguf", d);
    cr_expect_neq(r.code, 0);
    cmd_result_free(&r);
    /* the next run removes the leftover temporary folder and writes the whole set */
    r = run_modelq("convert " MODEL " -o %s --type q4_0 --split-max-tensors 5 --quiet", out);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    expect_parts(d, "s", 5);
    remove_tree(d);
    free(d);
}

/* ---- llama.cpp loads modelq's split output ---- */

Test(gguf_split, llama_cpp_loads_the_split_output_with_identical_logits)
{
    char why[1400];
    struct mq_llama_cpp *lc = mq_llama_cpp_open(why, sizeof why);
    if (!lc) {
        if (getenv("CI")) cr_assert_fail("llama.cpp required when CI is set: %s", why);
        cr_skip_test("llama.cpp not available: %s", why);
    }
    char *d = make_temp_dir("split-llama");
    struct cmd_result r = run_modelq("convert " MODEL " -o %s/one.gguf --type f32 --quiet", d);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    r = run_modelq("convert " MODEL " -o %s/s.gguf --type f32 --split-max-tensors 4 --quiet", d);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    expect_parts(d, "s", 6);
    struct mq_llama_cpp_info ia, ib;
    struct mq_llama_cpp_model *a = mq_llama_cpp_load(lc, path_in(d, "one.gguf"), &ia, why, sizeof why);
    cr_assert_not_null(a, "%s", why);
    struct mq_llama_cpp_model *b = mq_llama_cpp_load(lc, path_in(d, "s-00001-of-00006.gguf"), &ib, why, sizeof why);
    cr_assert_not_null(b, "llama.cpp loads the set from part 1: %s", why);
    cr_expect_eq(ia.n_params, ib.n_params);
    const int32_t toks[] = {1, 17, 42, 99, 3, 250, 7, 8};
    size_t n = sizeof toks / sizeof toks[0];
    float *la = calloc(n * (size_t)ia.n_vocab, sizeof *la), *lb = calloc(n * (size_t)ib.n_vocab, sizeof *lb);
    cr_assert_eq(mq_llama_cpp_eval(a, NULL, toks, n, la, why, sizeof why), 0, "%s", why);
    cr_assert_eq(mq_llama_cpp_eval(b, NULL, toks, n, lb, why, sizeof why), 0, "%s", why);
    cr_expect_eq(memcmp(la, lb, n * (size_t)ia.n_vocab * sizeof *la), 0,
                 "identical logits at every position (KL = 0) from the split and the single file");
    free(la);
    free(lb);
    mq_llama_cpp_free(a);
    mq_llama_cpp_free(b);
    /* llama.cpp refuses the set without its part 1 ... and modelq names the missing part */
    run_shell("rm '%s/s-00001-of-00006.gguf'", d);
    r = run_modelq("inspect %s/s-00003-of-00006.gguf", d);
    cr_expect_eq(r.code, 3);
    cr_expect(strstr(r.err, "s-00001-of-00006.gguf: part 1 of 6 of this split model is missing"), "%s", r.err);
    cmd_result_free(&r);
    remove_tree(d);
    free(d);
}
