/*
** test_model_api.c - the public accessors of an opened model (include/modelq/model.h,
** src/model/model_access.c) and the sized options structs (src/util/options.h).
**
**   - white-box: on a safetensors folder, a sharded checkpoint with warnings, GGUF files (all ggml
**     types, a split-free v2), bitsandbytes NF4 (double quant) and LLM.int8 folders and a PyTorch
**     checkpoint, every accessor returns what the private struct holds (model_impl.h); indexes
**     past the end give NULL / false and zeroed infos
**   - options: a caller built against an OLDER header (a struct cut at the first sized release,
**     allocated to exactly that size so ASan sees any read past it) converts byte-identically to a
**     full one; a NEWER header's struct (16 more bytes) works while they are zero and is refused
**     naming the byte when one is set; options never initialised (struct_size 0) are refused;
**     the same for mq_estimate_options
*/
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"
#include "modelq/convert.h"
#include "modelq/estimate.h"

static void check_model(const char *path)
{
    struct mq_model *m = NULL;
    struct mq_error err;
    mq_error_clear(&err);
    cr_assert_eq(mq_model_open(path, &m, &err), MQ_OK, "%s: %s", path, err.msg);
    cr_expect_str_eq(mq_model_format(m), m->format);
    cr_expect_str_eq(mq_model_input_path(m), m->input_path);
    cr_expect_eq(mq_model_split_parts(m), m->split_parts);
    cr_expect_eq(mq_model_header_bytes_read(m), m->header_bytes_read);
    cr_expect_eq(mq_model_config(m), &m->config);
    cr_expect_eq(mq_model_lora(m), m->lora);
    cr_expect_eq(mq_model_meta(m), &m->meta);

    cr_assert_eq(mq_model_n_files(m), m->n_files);
    struct mq_file_info fi;
    for (size_t i = 0; i < m->n_files; i++) {
        cr_assert(mq_model_file_info(m, i, &fi));
        cr_expect_str_eq(fi.path, m->files[i].path);
        cr_expect_eq(fi.size, m->files[i].size);
        cr_expect_eq(fi.header_bytes, m->files[i].data_start);
        cr_expect_eq(fi.gguf_version, m->files[i].gguf_version);
        cr_expect_eq(fi.gguf_alignment, m->files[i].gguf_alignment);
    }
    cr_expect_not(mq_model_file_info(m, m->n_files, &fi));
    cr_expect_null(fi.path);

    cr_assert_eq(mq_model_n_metadata(m), m->n_metadata);
    const char *k = NULL, *v = NULL;
    for (size_t i = 0; i < m->n_metadata; i++) {
        cr_assert(mq_model_metadata(m, i, &k, &v));
        cr_expect_str_eq(k, m->metadata[i].key);
        cr_expect_str_eq(v, m->metadata[i].value);
    }
    cr_expect_not(mq_model_metadata(m, m->n_metadata, &k, &v));

    cr_assert_eq(mq_model_n_warnings(m), m->n_warnings);
    for (size_t i = 0; i < m->n_warnings; i++) cr_expect_str_eq(mq_model_warning(m, i), m->warnings[i]);
    cr_expect_null(mq_model_warning(m, m->n_warnings));

    cr_assert_eq(mq_model_n_tensors(m), m->n_tensors);
    cr_expect_null(mq_model_tensor(m, m->n_tensors));
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct mq_tensor *t = mq_model_tensor(m, i), *p = &m->tensors[i];
        cr_assert_eq(t, p);
        cr_expect_str_eq(mq_tensor_name(t), p->name);
        cr_expect_eq(mq_tensor_dtype(t), p->dtype);
        cr_assert_eq(mq_tensor_ndim(t), p->ndim);
        cr_expect_eq(memcmp(mq_tensor_shape(t), p->shape, p->ndim * sizeof p->shape[0]), 0);
        cr_expect_eq(mq_tensor_numel(t), p->numel);
        cr_expect_eq(mq_tensor_nbytes(t), p->nbytes);
        cr_expect_eq(mq_tensor_file(t), p->file);
        cr_expect_eq(mq_tensor_offset(t), p->offset);
        cr_expect_eq(mq_tensor_ggml_type(t), p->from_gguf ? p->ggml_type : -1);
        struct mq_bnb_info bi;
        cr_assert_eq(mq_tensor_bnb_info(t, &bi), p->bnb != NULL);
        if (p->bnb) {
            cr_expect_eq(bi.codec, p->bnb->codec);
            cr_expect_eq(bi.double_quant, p->bnb->double_quant);
            cr_expect_eq(bi.n_stored, p->bnb->n_stored);
            cr_expect_eq(bi.packed_bytes, p->nbytes);
            cr_expect_eq(bi.stored_bytes, p->bnb->stored_bytes);
            cr_expect_eq(mq_tensor_stored_bytes(t), p->bnb->stored_bytes);
        } else {
            cr_expect_eq(bi.stored_bytes, 0);
        }
        struct mq_fp8_info f8;
        cr_assert_eq(mq_tensor_fp8_info(t, &f8), p->fp8 != NULL);
        if (!p->bnb && !p->fp8) {
            cr_expect_eq(mq_tensor_stored_bytes(t), p->nbytes);
            cr_expect_eq(mq_tensor_stored_dtype(t), p->dtype);
        }
    }
    mq_model_free(m);
}

Test(model_api, accessors_return_the_private_fields)
{
    static const char *const paths[] = {
        "testdata/tiny-llama",          "testdata/sharded/warn/total-size", "testdata/sharded/ok",
        "testdata/gguf/ok/all-types.gguf", "testdata/gguf/ok/v2.gguf",     "testdata/gguf/ok/tiny-llama.gguf",
        "testdata/bnb/nf4-dq",          "testdata/bnb/int8",                "testdata/pytorch/good.bin",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) check_model(paths[i]);
}

Test(model_api, bnb_info_of_an_nf4_weight)
{
    struct mq_model *m = NULL;
    struct mq_error err;
    cr_assert_eq(mq_model_open("testdata/bnb/nf4-dq", &m, &err), MQ_OK, "%s", err.msg);
    size_t n = 0;
    for (size_t i = 0; i < mq_model_n_tensors(m); i++) {
        struct mq_bnb_info bi;
        if (!mq_tensor_bnb_info(mq_model_tensor(m, i), &bi)) continue;
        n++;
        cr_expect_eq(bi.codec, MQ_CODEC_NF4);
        cr_expect(bi.double_quant);
        cr_expect_gt(bi.blocksize, 0);
        cr_expect_gt(bi.stored_bytes, bi.packed_bytes);
    }
    cr_expect_gt(n, 0);
    mq_model_free(m);
}

/* ---- options of another header version ---- */

#define CONVERT_V1_SIZE (offsetof(struct mq_convert_options, progress_ctx) + sizeof(void *))

static void *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc((size_t)n);
    cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static enum mq_status convert_with(struct mq_convert_options *o, const char *out, struct mq_error *err)
{
    o->input = "testdata/tiny-llama";
    o->output = out;
    o->type = "q8_0";
    o->threads = 1;
    struct mq_convert_report rep;
    enum mq_status s = mq_convert(o, &rep, err);
    mq_convert_report_free(&rep);
    return s;
}

Test(model_api, convert_options_of_an_older_or_newer_header)
{
    char dir[] = "/tmp/modelq-optsize-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char full_out[256], old_out[256], new_out[256];
    snprintf(full_out, sizeof full_out, "%s/full.gguf", dir);
    snprintf(old_out, sizeof old_out, "%s/old.gguf", dir);
    snprintf(new_out, sizeof new_out, "%s/new.gguf", dir);
    struct mq_error err;
    mq_error_clear(&err);

    struct mq_convert_options o;
    mq_convert_options_init(&o);
    cr_expect_eq(o.struct_size, sizeof o);
    cr_assert_eq(convert_with(&o, full_out, &err), MQ_OK, "%s", err.msg);

    /* an older header: the struct ends at progress_ctx, and the buffer is exactly that long */
    struct mq_convert_options *old = malloc(CONVERT_V1_SIZE);
    mq_convert_options_init_sized(old, CONVERT_V1_SIZE);
    cr_expect_eq(old->struct_size, CONVERT_V1_SIZE);
    cr_assert_eq(convert_with(old, old_out, &err), MQ_OK, "%s", err.msg);
    free(old);

    /* a newer header: 16 more bytes, zero = the new fields' defaults */
    const size_t big = sizeof(struct mq_convert_options) + 16;
    unsigned char *nb = malloc(big);
    memset(nb, 0xAB, big);
    mq_convert_options_init_sized((struct mq_convert_options *)nb, big);
    for (size_t i = sizeof(struct mq_convert_options); i < big; i++) cr_assert_eq(nb[i], 0);
    cr_assert_eq(convert_with((struct mq_convert_options *)nb, new_out, &err), MQ_OK, "%s", err.msg);
    nb[big - 3] = 1;
    cr_expect_eq(convert_with((struct mq_convert_options *)nb, new_out, &err), MQ_E_USAGE);
    cr_expect_str_eq(err.check, "options-size");
    cr_expect_not_null(strstr(err.msg, "does not know that field"), "%s", err.msg);
    free(nb);

    size_t a, b, c;
    void *fa = read_all(full_out, &a), *fb = read_all(old_out, &b), *fc = read_all(new_out, &c);
    cr_assert(a == b && a == c);
    cr_expect_eq(memcmp(fa, fb, a), 0);
    cr_expect_eq(memcmp(fa, fc, a), 0);
    free(fa);
    free(fb);
    free(fc);

    /* never initialised */
    memset(&o, 0, sizeof o);
    cr_expect_eq(convert_with(&o, full_out, &err), MQ_E_USAGE);
    cr_expect_not_null(strstr(err.msg, "not set by mq_convert_options_init()"), "%s", err.msg);
    remove(full_out);
    remove(old_out);
    remove(new_out);
    remove(dir);
}

Test(model_api, estimate_options_of_an_older_header)
{
    struct mq_model *m = NULL;
    struct mq_error err;
    cr_assert_eq(mq_model_open("testdata/tiny-llama", &m, &err), MQ_OK, "%s", err.msg);
    struct mq_estimate_options o;
    mq_estimate_options_init(&o);
    struct mq_estimate full, older;
    cr_assert_eq(mq_estimate_model(m, &o, &full, &err), MQ_OK, "%s", err.msg);
    const size_t v1 = offsetof(struct mq_estimate_options, reserve_bytes) + sizeof(uint64_t);
    struct mq_estimate_options *old = malloc(v1);
    mq_estimate_options_init_sized(old, v1);
    cr_assert_eq(mq_estimate_model(m, old, &older, &err), MQ_OK, "%s", err.msg);
    free(old);
    cr_expect_eq(older.kv_bytes, full.kv_bytes);
    cr_expect_eq(older.rows[0].bytes, full.rows[0].bytes);
    cr_expect_eq(older.overhead_bytes, full.overhead_bytes);
    memset(&o, 0, sizeof o);
    cr_expect_eq(mq_estimate_model(m, &o, &older, &err), MQ_E_USAGE);
    cr_expect_str_eq(err.check, "options-size");
    mq_model_free(m);
}
