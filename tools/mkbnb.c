/*
** mkbnb.c - writes the bitsandbytes test folders under testdata/bnb/ (tests/test_bnb_read.c
** regenerates them and compares every byte).
**
** Usage: mkbnb [--all] SRC OUTDIR        (SRC: testdata/tiny-llama)
**
**   OUTDIR/nf4-dq/   the linear weights of SRC as NF4, block 64, double quant
**   OUTDIR/int8/     the linear weights as LLM.int8 (I8 + SCB + weight_format)
**   OUTDIR/nf4/      (--all) NF4, block 64, F32 absmax
**   OUTDIR/fp4/      (--all) FP4, block 64, F32 absmax
**   OUTDIR/bad/CHECK/   a one-module folder broken in exactly the way formats/bnb_read.c's
**                       check CHECK refuses
** nf4 and fp4 are not committed (about 1 MB each); the tests write them to a temporary folder.
**
** Each good folder is what transformers' save_pretrained writes for a BitsAndBytesConfig model
** (../shared/docs/bitsandbytes.md sections 4-5): linear weights quantized with modelq's codecs
** (the rule of `estimate`'s bitsandbytes rows: 2-D ".weight" that are not embeddings, lm_head or
** norms), every other tensor copied in its BF16 bytes, __metadata__ {"format": "pt"},
** config.json = SRC's with the quantization_config of section 4.4 (inserted in sorted key order,
** as transformers writes it), and SRC's generation_config.json, tokenizer.json and
** tokenizer_config.json copied. Written by tools/common/bnbwrite.c, not the product's writer.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"
#include "bnbwrite.h"
#include "devutil.h"
#include "modelq/half.h"
#include "modelq/model.h"
#include "modelq/quant.h"
#include "modelq/target.h"

/* snprintf of a path that must fit */
#define PATHF(buf, ...)                                                                            \
    do {                                                                                           \
        int n_ = snprintf((buf), sizeof(buf), __VA_ARGS__);                                        \
        if (n_ < 0 || (size_t)n_ >= sizeof(buf)) dev_die("path too long");                         \
    } while (0)

/* DST/NAME: a copy of SRC/NAME, when that exists. */
static void copy_if_present(const char *src, const char *dst, const char *name)
{
    char a[1024];
    PATHF(a, "%s/%s", src, name);
    size_t len;
    char *t = dev_read_file(a, &len);
    if (!t) return;
    dev_write_file(dst, name, t, len);
    free(t);
}

/* ---- quantization_config (BitsAndBytesConfig.to_dict, keys sorted, indent 2 at depth 1) ---- */

static void quant_config(char *out, size_t cap, bool int8, const char *quant_type, bool dq, int indent)
{
    const char *in = indent ? "    " : "", *close = indent ? "  " : "", *nl = indent ? "\n" : "";
    snprintf(out, cap,
             "{%s"
             "%s\"_load_in_4bit\": %s,%s"
             "%s\"_load_in_8bit\": %s,%s"
             "%s\"bnb_4bit_compute_dtype\": \"%s\",%s"
             "%s\"bnb_4bit_quant_storage\": \"uint8\",%s"
             "%s\"bnb_4bit_quant_type\": \"%s\",%s"
             "%s\"bnb_4bit_use_double_quant\": %s,%s"
             "%s\"llm_int8_enable_fp32_cpu_offload\": false,%s"
             "%s\"llm_int8_has_fp16_weight\": false,%s"
             "%s\"llm_int8_skip_modules\": [%s%s  \"lm_head\"%s%s],%s"
             "%s\"llm_int8_threshold\": 6.0,%s"
             "%s\"load_in_4bit\": %s,%s"
             "%s\"load_in_8bit\": %s,%s"
             "%s\"quant_method\": \"bitsandbytes\"%s"
             "%s}",
             nl, in, int8 ? "false" : "true", nl, in, int8 ? "true" : "false", nl, in, int8 ? "float32" : "bfloat16", nl,
             in, nl, in, quant_type, nl, in, dq ? "true" : "false", nl, in, nl, in, nl, in, nl, in, nl, in, nl, in, nl,
             in, int8 ? "false" : "true", nl, in, int8 ? "true" : "false", nl, in, nl, close);
}

/* SRC's config.json with "quantization_config" inserted before "rms_norm_eps" (sorted keys). */
static void write_config(const char *src, const char *dst, bool int8, const char *quant_type, bool dq)
{
    char path[1024];
    PATHF(path, "%s/config.json", src);
    size_t len;
    char *text = dev_read_file(path, &len);
    if (!text) dev_die("%s: missing", path);
    const char *at = strstr(text, "  \"rms_norm_eps\"");
    if (!at) dev_die("%s: no \"rms_norm_eps\" line to insert quantization_config before", path);
    char qc[2048];
    quant_config(qc, sizeof qc, int8, quant_type, dq, 1);
    size_t head = (size_t)(at - text), cap = len + sizeof qc + 64;
    char *out = malloc(cap);
    if (!out) dev_die("out of memory");
    int n = snprintf(out, cap, "%.*s  \"quantization_config\": %s,\n%s", (int)head, text, qc, at);
    dev_write_file(dst, "config.json", out, (size_t)n);
    free(out);
    free(text);
}

/* ---- the good folders ------------------------------------------------------------------------ */

enum kind { K_NF4, K_NF4_DQ, K_FP4, K_INT8 };

static void write_folder(const struct mq_model *m, const char *src, const char *out, enum kind k)
{
    dev_make_dir(out);
    struct bnbw *w = bnbw_new();
    if (!w) dev_die("out of memory");
    struct mq_rule_context rc;
    mq_rule_context_init(&rc, m);
    struct mq_error err;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct mq_tensor *t = &m->tensors[i];
        if (t->dtype != MQ_DTYPE_BF16) dev_die("%s: tensor '%s' is not BF16", src, t->name);
        uint8_t *raw = malloc((size_t)t->nbytes);
        float *x = malloc((size_t)t->numel * sizeof *x);
        if (!raw || !x) dev_die("out of memory");
        if (mq_model_read(m, i, 0, raw, (size_t)t->nbytes, &err) != MQ_OK) dev_die("%s", err.msg);
        struct mq_tensor_plan p;
        if (mq_target_plan_tensor(MQ_TARGET_NF4, &rc, t, &p, &err) != MQ_OK) dev_die("%s", err.msg);
        int rcode;
        if (!p.quantized) {
            rcode = bnbw_add(w, t->name, "BF16", t->ndim, t->shape, raw, (size_t)t->nbytes);
        } else {
            for (uint64_t j = 0; j < t->numel; j++) x[j] = mq_bf16_to_f32((uint16_t)(raw[2 * j] | raw[2 * j + 1] << 8));
            if (k == K_INT8) {
                char prefix[256];
                snprintf(prefix, sizeof prefix, "%.*s", (int)(strlen(t->name) - 7), t->name); /* drop ".weight" */
                rcode = bnbw_add_int8(w, prefix, t->shape[0], t->shape[1], x, true);
            } else {
                rcode = bnbw_add_4bit(w, t->name, k == K_FP4 ? MQ_CODEC_FP4 : MQ_CODEC_NF4, 64, k == K_NF4_DQ, "bfloat16",
                                      t->ndim, t->shape, x);
            }
        }
        if (rcode) dev_die("%s: cannot add tensor '%s'", out, t->name);
        free(raw);
        free(x);
    }
    char path[1024];
    PATHF(path, "%s/model.safetensors", out);
    if (bnbw_write(w, path)) dev_die("%s: cannot write", path);
    bnbw_free(w);
    write_config(src, out, k == K_INT8, k == K_FP4 ? "fp4" : "nf4", k == K_NF4_DQ);
    copy_if_present(src, out, "generation_config.json");
    copy_if_present(src, out, "tokenizer.json");
    copy_if_present(src, out, "tokenizer_config.json");
}

/* ---- the bad folders: one module, one broken rule each ---------------------------------------- */

#define MOD "model.layers.0.mlp.down_proj"
#define W MOD ".weight"
#define ROWS 8
#define COLS 64

static void module_values(float *x)
{
    for (int i = 0; i < ROWS * COLS; i++)
        x[i] = mq_bf16_to_f32(mq_f32_to_bf16((float)(sin(0.37 * i) * (1 + i % 7))));
}

static void write_bad(const char *bad_dir, const char *check, struct bnbw *w, const char *qc_json)
{
    char dir[1024], path[1100];
    PATHF(dir, "%s/%s", bad_dir, check);
    dev_make_dir(dir);
    PATHF(path, "%s/model.safetensors", dir);
    if (bnbw_write(w, path)) dev_die("%s: cannot write", path);
    char cfg[4096];
    int n = snprintf(cfg, sizeof cfg,
                     "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\"%s%s, \"torch_dtype\": "
                     "\"bfloat16\"}\n",
                     qc_json ? ", \"quantization_config\": " : "", qc_json ? qc_json : "");
    dev_write_file(dir, "config.json", cfg, (size_t)n);
    bnbw_free(w);
}

/* A fresh list with the module quantized (4-bit, or int8 when codec is INT8_ROW). */
static struct bnbw *module(enum mq_codec codec, bool dq)
{
    struct bnbw *w = bnbw_new();
    float x[ROWS * COLS];
    module_values(x);
    uint64_t shape[2] = {ROWS, COLS};
    int rc = codec == MQ_CODEC_INT8_ROW ? bnbw_add_int8(w, MOD, ROWS, COLS, x, true)
                                        : bnbw_add_4bit(w, W, codec, 64, dq, "bfloat16", 2, shape, x);
    if (!w || rc) dev_die("cannot build the bad-fixture module");
    return w;
}

/* Replaces the module's quant_state JSON text. */
static void set_json(struct bnbw *w, const char *suffix, const char *json)
{
    char name[256];
    snprintf(name, sizeof name, W ".quant_state.bitsandbytes__%s", suffix);
    bnbw_remove(w, W ".quant_state.bitsandbytes__nf4");
    uint64_t n[1] = {strlen(json)};
    if (bnbw_add(w, name, "U8", 1, n, json, strlen(json))) dev_die("out of memory");
}

static void f32_tensor(struct bnbw *w, const char *name, const float *v, size_t n)
{
    uint8_t b[1024 * 4];
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int k = 0; k < 4; k++) b[4 * i + k] = (uint8_t)(u >> (8 * k));
    }
    uint64_t shape[1] = {n};
    if (bnbw_add(w, name, "F32", 1, shape, b, n * 4)) dev_die("out of memory");
}

static void write_bad_all(const char *out)
{
    char bad[1024];
    PATHF(bad, "%s/bad", out);
    dev_make_dir(bad);
    char qc_nf4[2048], qc_nf4_dq[2048], qc_int8[2048], qc_default_type[2048];
    quant_config(qc_nf4, sizeof qc_nf4, false, "nf4", false, 0);
    quant_config(qc_nf4_dq, sizeof qc_nf4_dq, false, "nf4", true, 0);
    quant_config(qc_int8, sizeof qc_int8, true, "fp4", false, 0);
    snprintf(qc_default_type, sizeof qc_default_type,
             "{\"bnb_4bit_use_double_quant\": true, \"load_in_4bit\": true, \"quant_method\": \"bitsandbytes\"}");
    const uint64_t flat[1] = {ROWS * COLS / 2};
    struct bnbw *w;
    float v[16];

    w = module(MQ_CODEC_NF4, false); /* no absmax */
    bnbw_remove(w, W ".absmax");
    write_bad(bad, "bnb-missing", w, qc_nf4);

    w = module(MQ_CODEC_NF4, false); /* packed weight 1-D */
    size_t nb;
    uint8_t *d = bnbw_data(w, W, &nb);
    uint8_t copy[ROWS * COLS / 2];
    memcpy(copy, d, sizeof copy);
    bnbw_add(w, W, "U8", 1, flat, copy, sizeof copy);
    write_bad(bad, "bnb-weight", w, qc_nf4);

    w = module(MQ_CODEC_NF4, false);
    set_json(w, "nf4", "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [8, 64],}");
    write_bad(bad, "bnb-quant-state", w, qc_nf4);

    w = module(MQ_CODEC_NF4, false);
    set_json(w, "nf4", "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [8, 64], "
                       "\"compress_statistics\": false}");
    write_bad(bad, "bnb-quant-state-keys", w, qc_nf4);

    w = module(MQ_CODEC_NF4, false);
    set_json(w, "nf4", "{\"quant_type\": \"fp4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [8, 64]}");
    write_bad(bad, "bnb-quant-type", w, qc_nf4);

    w = module(MQ_CODEC_NF4, false);
    set_json(w, "nf4", "{\"quant_type\": \"nf4\", \"blocksize\": 48, \"dtype\": \"bfloat16\", \"shape\": [8, 64]}");
    write_bad(bad, "bnb-blocksize", w, qc_nf4);

    w = module(MQ_CODEC_NF4, false);
    set_json(w, "nf4", "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float64\", \"shape\": [8, 64]}");
    write_bad(bad, "bnb-dtype", w, qc_nf4);

    w = module(MQ_CODEC_NF4, false);
    set_json(w, "nf4", "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [8, 64.5]}");
    write_bad(bad, "bnb-shape", w, qc_nf4);

    w = module(MQ_CODEC_NF4, false);
    set_json(w, "nf4", "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [8, 66]}");
    write_bad(bad, "bnb-weight-shape", w, qc_nf4);

    w = module(MQ_CODEC_NF4, false); /* 9 absmax for 8 blocks */
    float am[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    f32_tensor(w, W ".absmax", am, 9);
    write_bad(bad, "bnb-absmax", w, qc_nf4);

    w = module(MQ_CODEC_NF4, true); /* 2 nested_absmax for 8 codes */
    float na[2] = {1, 1};
    f32_tensor(w, W ".nested_absmax", na, 2);
    write_bad(bad, "bnb-nested", w, qc_nf4_dq);

    w = module(MQ_CODEC_NF4, false); /* the FP4 table under an NF4 weight */
    for (unsigned c = 0; c < 16; c++) v[c] = c == 8 ? 0.0f : mq_fp4_value(c);
    f32_tensor(w, W ".quant_map", v, 16);
    write_bad(bad, "bnb-quant-map", w, qc_nf4);

    w = module(MQ_CODEC_INT8_ROW, false); /* 7 SCB for 8 rows */
    float scb[7] = {1, 1, 1, 1, 1, 1, 1};
    f32_tensor(w, MOD ".SCB", scb, 7);
    write_bad(bad, "bnb-scb", w, qc_int8);

    w = module(MQ_CODEC_INT8_ROW, false); /* col32 layout */
    *bnbw_data(w, MOD ".weight_format", NULL) = 1;
    write_bad(bad, "bnb-weight-format", w, qc_int8);

    w = bnbw_new(); /* a plain BF16 weight with an absmax beside it */
    {
        float x[ROWS * COLS];
        module_values(x);
        uint8_t b[ROWS * COLS * 2];
        for (int i = 0; i < ROWS * COLS; i++) {
            uint16_t h = mq_f32_to_bf16(x[i]);
            b[2 * i] = (uint8_t)h;
            b[2 * i + 1] = (uint8_t)(h >> 8);
        }
        uint64_t shape[2] = {ROWS, COLS};
        if (!w || bnbw_add(w, W, "BF16", 2, shape, b, sizeof b)) dev_die("out of memory");
        f32_tensor(w, W ".absmax", am, 8);
    }
    write_bad(bad, "bnb-orphan", w, NULL);

    w = module(MQ_CODEC_NF4, true); /* config without bnb_4bit_quant_type: transformers' default is fp4 */
    write_bad(bad, "bnb-config", w, qc_default_type);
}

int main(int argc, char **argv)
{
    dev_set_prog("mkbnb");
    bool all = argc == 4 && strcmp(argv[1], "--all") == 0;
    if (argc != 3 && !all) {
        fprintf(stderr, "usage: mkbnb [--all] SRC OUTDIR   (SRC: testdata/tiny-llama)\n");
        return 2;
    }
    const char *src = argv[argc - 2], *out = argv[argc - 1];
    struct mq_model *m;
    struct mq_error err;
    if (mq_model_open(src, &m, &err) != MQ_OK) dev_die("%s", err.msg);
    dev_make_dir(out);
    char dir[1024];
    static const struct {
        const char *name;
        enum kind k;
        bool extra;
    } folders[] = {{"nf4-dq", K_NF4_DQ, false}, {"int8", K_INT8, false}, {"nf4", K_NF4, true}, {"fp4", K_FP4, true}};
    for (size_t i = 0; i < sizeof folders / sizeof folders[0]; i++) {
        if (folders[i].extra && !all) continue;
        PATHF(dir, "%s/%s", out, folders[i].name);
        write_folder(m, src, dir, folders[i].k);
    }
    mq_model_free(m);
    write_bad_all(out);
    return 0;
}
