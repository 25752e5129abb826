/*
** test_convert_gguf_input.c - GGUF in, GGUF out, and `modelq verify`.
**
** Round trip: safetensors -> GGUF f32 -> GGUF q8_0 must equal safetensors -> GGUF q8_0 byte for
** byte (F32 holds BF16 values exactly, the metadata keeps its order). GGUF -> GGUF keeps the keys
** and tensor order, replaces file_type, refreshes the checksums; requantizing needs a flag;
** `--type auto` on a GGUF reproduces it. verify: 0 when intact, 6 naming the tensor after a
** flipped byte, 7 when the file carries no checksums. A Q4_K GGUF reads back through the codec's
** dequantization and requantizes.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"
#include "gguf_dump.h"
#include "modelq/model.h"
#include "modelq/quant.h"
#include "run_cmd.h"

#define MODEL "testdata/tiny-llama"

/* Converts, then has ggml itself read the whole file (no_alloc = false: every tensor's data). */
static void convert(const char *in, const char *out, const char *args)
{
    struct cmd_result r = run_modelq("convert %s -o %s --quiet %s", in, out, args);
    cr_assert_eq(r.code, 0, "convert %s -> %s %s: %s", in, out, args, r.err);
    cmd_result_free(&r);
    struct mq_ggml g;
    char why[1024];
    bool ok = mq_ggml_open(&g, why, sizeof why);
    gguf_view_need_tools(ok, why);
    struct gguf_view v;
    cr_assert(gguf_view_from_ggml(&v, &g, out, false, why, sizeof why), "ggml refuses %s: %s", out, why);
    cr_expect(gguf_view_check_layout(&v, why, sizeof why), "%s", why);
    gguf_view_free(&v);
    mq_ggml_close(&g);
}

Test(gguf_input, f32_then_quantized_equals_direct)
{
    char *dir = make_temp_dir("rt");
    char f32[512], a[512], b[512];
    snprintf(f32, sizeof f32, "%s/f32.gguf", dir);
    convert(MODEL, f32, "--type f32");
    static const char *types[] = {"q8_0", "q4_0", "iq4_nl", "q5_K", "bf16"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char args[64];
        snprintf(args, sizeof args, "--type %s", types[i]);
        snprintf(a, sizeof a, "%s/direct-%s.gguf", dir, types[i]);
        snprintf(b, sizeof b, "%s/via-f32-%s.gguf", dir, types[i]);
        convert(MODEL, a, args);
        convert(f32, b, args);
        cr_expect(files_equal(a, b), "%s: safetensors -> f32 -> %s differs from safetensors -> %s", types[i],
                  types[i], types[i]);
    }
    remove_tree(dir);
    free(dir);
}

Test(gguf_input, keeps_metadata_order_and_auto_reproduces_the_file)
{
    char *dir = make_temp_dir("keep");
    char q8[512], q4[512], same[512];
    snprintf(q8, sizeof q8, "%s/q8.gguf", dir);
    snprintf(q4, sizeof q4, "%s/q4.gguf", dir);
    snprintf(same, sizeof same, "%s/same.gguf", dir);
    convert(MODEL, q8, "--type q8_0");
    convert(q8, same, "");
    cr_expect(files_equal(q8, same), "--type auto on a GGUF copies every tensor and key unchanged");

    convert(q8, q4, "--type q4_0 --allow-requantize");
    struct mq_model *a, *b;
    struct mq_error err;
    cr_assert_eq(mq_model_open(q8, &a, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_model_open(q4, &b, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(a->meta.n, b->meta.n, "same keys");
    for (size_t i = 0; i < a->meta.n; i++)
        cr_expect_str_eq(a->meta.items[i].key, b->meta.items[i].key, "key %zu in the same place", i);
    cr_expect_str_eq(b->meta.items[b->meta.n - 2].key, "modelq.tensor_xxh3", "checksums last: tensors");
    cr_expect_str_eq(b->meta.items[b->meta.n - 1].key, "modelq.header_xxh3", "checksums last: then the header");
    uint64_t ft;
    cr_expect(mq_meta_get_uint(&b->meta, "general.file_type", &ft) && ft == 2, "file_type replaced: Q4_0 = 2");
    cr_assert_eq(a->n_tensors, b->n_tensors);
    for (size_t i = 0; i < a->n_tensors; i++)
        cr_expect_str_eq(a->tensors[i].name, b->tensors[i].name, "tensor order kept");
    mq_model_free(a);
    mq_model_free(b);
    struct cmd_result r = run_modelq("verify %s --quiet", q4);
    cr_expect_eq(r.code, 0, "fresh checksums: %s%s", r.out, r.err);
    cmd_result_free(&r);
    remove_tree(dir);
    free(dir);
}

Test(gguf_input, requantizing_needs_the_flag_dequantizing_does_not)
{
    char *dir = make_temp_dir("requant");
    char q8[512], out[512];
    snprintf(q8, sizeof q8, "%s/q8.gguf", dir);
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    convert(MODEL, q8, "--type q8_0");
    struct cmd_result r = run_modelq("convert %s -o %s --type q4_0", q8, out);
    cr_expect_eq(r.code, 2, "%s", r.err);
    cr_expect(strstr(r.err, "--allow-requantize") && strstr(r.err, "already quantized"), "%s", r.err);
    cr_expect(!file_exists(out));
    cmd_result_free(&r);
    r = run_modelq("convert %s -o %s --type f16", q8, out);
    cr_expect_eq(r.code, 0, "dequantizing to f16 is allowed: %s", r.err);
    cmd_result_free(&r);
    remove_tree(dir);
    free(dir);
}

/* The ggml view of a converted file (ggml has just read it in convert()). */
static void ggml_view(const char *path, struct gguf_view *v)
{
    struct mq_ggml g;
    char why[1024];
    bool ok = mq_ggml_open(&g, why, sizeof why);
    gguf_view_need_tools(ok, why);
    cr_assert(gguf_view_from_ggml(v, &g, path, true, why, sizeof why), "ggml refuses %s: %s", path, why);
    mq_ggml_close(&g);
}

/* A GGUF holding Q4_K tensors (ggml type 12, made here with --tensor-type) is read by dequantizing
 * them: its F32 copy holds exactly the dequantized blocks, and requantizing the Q4_K tensors gives
 * the bytes of quantizing that F32 copy. */
Test(gguf_input, q4_K_tensors_dequantized_and_requantized)
{
    char *dir = make_temp_dir("q4k");
    char q4k[512], f32[512], a[512], b[512];
    snprintf(q4k, sizeof q4k, "%s/q4k.gguf", dir);
    snprintf(f32, sizeof f32, "%s/f32.gguf", dir);
    snprintf(a, sizeof a, "%s/a.gguf", dir);
    snprintf(b, sizeof b, "%s/b.gguf", dir);
    convert(MODEL, q4k, "--type f32 --tensor-type 'ffn_(gate|up|down)=q4_K'");
    convert(q4k, f32, "--type f32");
    struct gguf_view vq, vf;
    ggml_view(q4k, &vq);
    ggml_view(f32, &vf);
    size_t lq, lf;
    uint8_t *bq = read_file_all(q4k, &lq), *bf = read_file_all(f32, &lf);
    cr_assert(bq && bf);
    cr_assert_eq(vq.tensors_len, vf.tensors_len);
    int n_q4k = 0;
    for (size_t i = 0; i < vq.tensors_len; i++) {
        const struct gguf_view_tensor *tq = &vq.tensors[i], *tf = &vf.tensors[i];
        cr_assert_str_eq(tq->name, tf->name, "tensor order kept");
        cr_assert_eq(tf->type, GGREF_GGML_F32);
        if (tq->type != 12) continue; /* Q4_K */
        uint64_t n = (uint64_t)(tq->ne[0] * tq->ne[1] * tq->ne[2] * tq->ne[3]);
        cr_assert_eq(tq->nbytes, n / 256 * 144);
        cr_assert_leq(vq.data_offset + tq->offset + tq->nbytes, lq);
        cr_assert_leq(vf.data_offset + tf->offset + n * 4, lf);
        float *y = malloc(n * sizeof *y);
        struct mq_qbuf in = {bq + vq.data_offset + tq->offset, NULL, NULL};
        cr_assert_eq(mq_dequantize(MQ_CODEC_Q4_K, NULL, &in, n, (size_t)tq->ne[0], y, NULL), MQ_OK);
        cr_expect(memcmp(y, bf + vf.data_offset + tf->offset, n * 4) == 0, "%s: F32 copy == dequantized Q4_K",
                  tq->name);
        free(y);
        n_q4k++;
    }
    cr_expect_eq(n_q4k, 6, "ffn_gate/up/down of both layers");
    convert(q4k, a, "--type f32 --tensor-type 'ffn_(gate|up|down)=q8_0' --allow-requantize");
    convert(f32, b, "--type f32 --tensor-type 'ffn_(gate|up|down)=q8_0'");
    cr_expect(files_equal(a, b), "Q4_K -> q8_0 differs from Q4_K -> f32 -> q8_0");
    free(bq);
    free(bf);
    gguf_view_free(&vq);
    gguf_view_free(&vf);
    remove_tree(dir);
    free(dir);
}

Test(verify, intact_flipped_and_unsigned_files)
{
    char *dir = make_temp_dir("verify");
    char path[512];
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    convert(MODEL, path, "--type q4_0");
    struct cmd_result r = run_modelq("verify %s", path);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cr_expect(strstr(r.out, "all 21 tensors match") != NULL, "%s", r.out);
    cmd_result_free(&r);

    /* flip one byte inside blk.1.ffn_down.weight's data */
    struct mq_model *m;
    struct mq_error err;
    cr_assert_eq(mq_model_open(path, &m, &err), MQ_OK, "%s", err.msg);
    long t = mq_model_find(m, "blk.1.ffn_down.weight");
    cr_assert_geq(t, 0);
    uint64_t off = m->tensors[t].offset + 100;
    mq_model_free(m);
    FILE *f = fopen(path, "r+b");
    fseek(f, (long)off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, (long)off, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
    r = run_modelq("verify %s --quiet", path);
    cr_expect_eq(r.code, 6, "mismatch exit code: %d %s", r.code, r.err);
    cr_expect(strstr(r.out, "MISMATCH blk.1.ffn_down.weight") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "1 of 21 tensors") != NULL, "%s", r.out);
    cmd_result_free(&r);

    /* a GGUF written by someone else carries no checksums */
    r = run_modelq("verify testdata/gguf/ok/zero-tensors.gguf");
    cr_expect_eq(r.code, 7, "%d %s", r.code, r.err);
    cr_expect(strstr(r.err, "no checksums") != NULL, "%s", r.err);
    cmd_result_free(&r);
    remove_tree(dir);
    free(dir);
}
