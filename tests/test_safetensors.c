/*
** test_safetensors.c - the safetensors reader on committed fixtures (testdata/).
**
** Every file in testdata/safetensors/bad/ and folder in testdata/sharded/bad/ is named after the
** check it must trip (CHECK or CHECK--variant); the reader must refuse it with exactly that check,
** a message naming the file, and no crash. testdata/safetensors/ok/ files must load with the
** exact tensors written by tools/mkbadfiles.c, and data is read back through pread at
** unaligned offsets.
*/
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"
#include "modelq/model.h"

static void expected_check(const char *entry, char *out, size_t cap)
{
    snprintf(out, cap, "%s", entry);
    char *dash = strstr(out, "--");
    if (dash) *dash = '\0';
    char *dot = strstr(out, ".safetensors");
    if (dot) *dot = '\0';
}

static int check_bad_dir(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char path[1024], want[256];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        expected_check(de->d_name, want, sizeof want);
        struct mq_model *m = NULL;
        struct mq_error err;
        mq_error_clear(&err);
        enum mq_status s = mq_model_open(path, &m, &err);
        cr_expect_neq(s, MQ_OK, "%s: opened but must fail with %s", path, want);
        cr_expect_null(m);
        cr_expect(err.check && strcmp(err.check, want) == 0, "%s: check '%s', expected '%s' (%s)", path,
                  err.check ? err.check : "(none)", want, err.msg);
        cr_expect(strstr(err.msg, de->d_name) != NULL, "%s: message does not name the file: %s", path, err.msg);
        cr_expect(strchr(err.msg, '\n') == NULL, "message is not one line");
        cr_expect(s == MQ_E_CORRUPT || s == MQ_E_LIMIT || s == MQ_E_OVERFLOW, "%s: status %s", path, mq_status_name(s));
        mq_model_free(m);
        n++;
    }
    closedir(d);
    return n;
}

Test(safetensors, every_bad_file_fails_with_its_check)
{
    int n = check_bad_dir("testdata/safetensors/bad");
    cr_assert_geq(n, 38, "only %d bad fixtures found", n);
}

Test(safetensors, every_bad_sharded_checkpoint_fails_with_its_check)
{
    int n = check_bad_dir("testdata/sharded/bad");
    cr_assert_geq(n, 10, "only %d bad sharded fixtures found", n);
}

static struct mq_model *open_ok(const char *path)
{
    struct mq_model *m = NULL;
    struct mq_error err;
    mq_error_clear(&err);
    cr_assert_eq(mq_model_open(path, &m, &err), MQ_OK, "%s: %s", path, err.msg);
    return m;
}

Test(safetensors, unaligned_data_reads_back_exact_values)
{
    struct mq_model *m = open_ok("testdata/safetensors/ok/unaligned.safetensors");
    cr_assert_eq(m->n_tensors, 1);
    cr_assert_eq(m->tensors[0].offset % 4, 3, "fixture must be misaligned");
    float v[3];
    struct mq_error err;
    cr_assert_eq(mq_model_read(m, 0, 0, v, sizeof v, &err), MQ_OK, "%s", err.msg);
    cr_expect_eq(v[0], 1.0f);
    cr_expect_eq(v[1], -2.0f);
    cr_expect_eq(v[2], 3.0f);
    /* a read past the tensor is refused */
    cr_expect_neq(mq_model_read(m, 0, 8, v, 8, &err), MQ_OK);
    mq_model_free(m);
}

Test(safetensors, edge_cases_the_reference_reader_accepts)
{
    struct mq_model *m = open_ok("testdata/safetensors/ok/empty.safetensors");
    cr_expect_eq(m->n_tensors, 0);
    mq_model_free(m);
    m = open_ok("testdata/safetensors/ok/zero-size.safetensors");
    cr_assert_eq(m->n_tensors, 2);
    cr_expect_str_eq(m->tensors[0].name, "a"); /* (0,0) sorts before (0,16) */
    cr_expect_eq(m->tensors[0].numel, 0);
    cr_expect_eq(m->tensors[1].nbytes, 16);
    mq_model_free(m);
    m = open_ok("testdata/safetensors/ok/scalar.safetensors");
    cr_assert_eq(m->n_tensors, 1);
    cr_expect_eq(m->tensors[0].ndim, 0);
    cr_expect_eq(m->tensors[0].numel, 1);
    mq_model_free(m);
    m = open_ok("testdata/safetensors/ok/leading-whitespace.safetensors");
    cr_expect_eq(m->n_tensors, 1);
    mq_model_free(m);
    m = open_ok("testdata/safetensors/ok/unknown-fields.safetensors");
    cr_expect_eq(m->n_tensors, 1);
    mq_model_free(m);
}

Test(safetensors, all_22_dtypes_with_their_widths)
{
    struct mq_model *m = open_ok("testdata/safetensors/ok/all-dtypes.safetensors");
    cr_assert_eq(m->n_tensors, MQ_DTYPE_COUNT);
    cr_assert_eq(MQ_DTYPE_COUNT, 22);
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct mq_tensor *t = &m->tensors[i];
        enum mq_dtype d = t->fp8 ? t->fp8->stored : t->dtype; /* FP8 weights read as F32 (fp8_read.c) */
        char want[64];
        snprintf(want, sizeof want, "t_%s", mq_dtype_name(d));
        cr_expect_str_eq(t->name, want);
        cr_expect_eq((t->fp8 ? t->fp8->data.nbytes : t->nbytes) * 8, t->numel * mq_dtype_bits(d), "%s", t->name);
    }
    cr_assert_eq(m->n_metadata, 2);
    cr_expect_str_eq(m->metadata[0].key, "format");
    mq_model_free(m);
}

Test(safetensors, sharded_checkpoint_and_its_warnings)
{
    struct mq_model *m = open_ok("testdata/sharded/ok");
    cr_assert_eq(m->n_files, 2);
    cr_assert_eq(m->n_tensors, 2);
    cr_expect_eq(m->n_warnings, 0);
    cr_expect_eq(m->tensors[1].file, 1);
    mq_model_free(m);
    m = open_ok("testdata/sharded/warn/total-size");
    cr_assert_eq(m->n_warnings, 1);
    cr_expect(strstr(m->warnings[0], "total_size") != NULL, "%s", m->warnings[0]);
    mq_model_free(m);
    m = open_ok("testdata/sharded/warn/extra-tensor");
    cr_expect_eq(m->n_tensors, 3);
    cr_assert_geq(m->n_warnings, 1);
    cr_expect(strstr(m->warnings[0], "'c'") != NULL, "%s", m->warnings[0]);
    mq_model_free(m);
}

Test(safetensors, index_json_path_and_folder_give_the_same_model)
{
    struct mq_model *a = open_ok("testdata/tiny-llama/sharded");
    struct mq_model *b = open_ok("testdata/tiny-llama/sharded/model.safetensors.index.json");
    struct mq_model *c = open_ok("testdata/tiny-llama");
    cr_assert_eq(a->n_tensors, b->n_tensors);
    cr_assert_eq(a->n_tensors, c->n_tensors);
    cr_expect_eq(a->n_files, 3);
    cr_expect(a->config.present && c->config.present);
    for (size_t i = 0; i < a->n_tensors; i++) {
        long j = mq_model_find(c, a->tensors[i].name);
        cr_assert_geq(j, 0, "%s missing from the single file", a->tensors[i].name);
        cr_expect_eq(a->tensors[i].nbytes, c->tensors[j].nbytes);
        cr_expect_eq(a->tensors[i].dtype, c->tensors[j].dtype);
    }
    mq_model_free(a);
    mq_model_free(b);
    mq_model_free(c);
}

Test(safetensors, pickle_only_folder_goes_to_the_pytorch_reader)
{
    /* the folder's pytorch_model.bin is read as a PyTorch zip; this one is 4 bytes of zip magic
     * and text, so the zip reader refuses it by name */
    struct mq_model *m = NULL;
    struct mq_error err;
    mq_error_clear(&err);
    cr_assert_eq(mq_model_open("testdata/pickle-only", &m, &err), MQ_E_CORRUPT);
    cr_expect_str_eq(err.check, "zip-eocd");
    cr_expect(strstr(err.msg, "pickle-only/pytorch_model.bin") != NULL, "%s", err.msg);
}

Test(safetensors, fixtures_regenerate_byte_identical)
{
    const char *bd = getenv("MODELQ_BUILD_DIR");
    cr_assert_not_null(bd, "MODELQ_BUILD_DIR not set (run through ctest)");
    char tmpl[] = "/tmp/modelq-fixtures-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s/mkbadfiles' '%s' && "
             "diff -r --no-dereference testdata/safetensors '%s/safetensors' && "
             "diff -r --no-dereference testdata/sharded '%s/sharded' && "
             "diff -r testdata/pickle-only '%s/pickle-only'",
             bd, tmpl, tmpl, tmpl, tmpl);
    int rc = system(cmd);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    cr_expect_eq(system(cmd), 0);
    cr_assert_eq(rc, 0, "regenerated fixtures differ from testdata/ (run build/mkbadfiles testdata)");
}
