/*
** test_convert_bnb.c - `modelq convert --type nf4|nf4-dq|fp4|int8_row` writes a Hugging Face folder
** as bitsandbytes serializes Linear4bit / Linear8bitLt (../shared/docs/bitsandbytes.md sections
** 4-5). The folder is read back here with cJSON and raw reads (not modelq's reader):
** keys, dtypes and shapes per module; the quant_state JSON (exact keys in order, nested_offset vs
** a float64 mean of the absmax within 1 ulp of float32); the nested map against the documented
** table; config.json's quantization_config against the tensors; the data dequantized and compared
** with the original weights; INT8 against the LLM.int8 formula; the documented JSON vector; and
** the folder's atomic replacement.
*/
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <unistd.h>
#include <sys/wait.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model_impl.h"
#include "bnb_out.h"
#include "modelq/half.h"
#include "modelq/model.h"
#include "modelq/quant.h"
#include "run_cmd.h"

#define MODEL "testdata/tiny-llama"

/* A written model.safetensors, parsed independently. */
struct st_file {
    uint8_t *bytes;
    size_t len;
    uint64_t data;   /* data section start */
    cJSON *hdr;
};

static void st_open(struct st_file *f, const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    f->bytes = read_file_all(path, &f->len);
    cr_assert_not_null(f->bytes, "%s", path);
    uint64_t n = 0;
    for (int k = 0; k < 8; k++) n |= (uint64_t)f->bytes[k] << (8 * k);
    f->data = 8 + n;
    f->hdr = cJSON_ParseWithLength((const char *)f->bytes + 8, (size_t)n);
    cr_assert_not_null(f->hdr, "header parses");
}

static void st_close(struct st_file *f)
{
    cJSON_Delete(f->hdr);
    free(f->bytes);
}

/* Tensor `name`: checks dtype and shape, returns its bytes (and length). */
static const uint8_t *st_get(struct st_file *f, const char *name, const char *dtype, int ndim, const uint64_t *shape,
                             size_t *len)
{
    cJSON *e = cJSON_GetObjectItemCaseSensitive(f->hdr, name);
    cr_assert_not_null(e, "key %s present", name);
    cr_expect_str_eq(cJSON_GetObjectItem(e, "dtype")->valuestring, dtype, "%s dtype", name);
    cJSON *sh = cJSON_GetObjectItem(e, "shape");
    if (shape || ndim) cr_assert_eq(cJSON_GetArraySize(sh), ndim, "%s rank", name);
    for (int d = 0; shape && d < ndim; d++)
        cr_expect_eq((uint64_t)cJSON_GetArrayItem(sh, d)->valuedouble, shape[d], "%s dim %d", name, d);
    cJSON *off = cJSON_GetObjectItem(e, "data_offsets");
    uint64_t a = (uint64_t)cJSON_GetArrayItem(off, 0)->valuedouble, b = (uint64_t)cJSON_GetArrayItem(off, 1)->valuedouble;
    cr_assert(f->data + b <= f->len);
    if (len) *len = (size_t)(b - a);
    return f->bytes + f->data + a;
}

static float le_f32(const uint8_t *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float v;
    memcpy(&v, &u, 4);
    return v;
}

static void convert_bnb(const char *dir, const char *type)
{
    struct cmd_result r = run_modelq("convert " MODEL " -o %s --type %s --quiet", dir, type);
    cr_assert_eq(r.code, 0, "convert --type %s: %s", type, r.err);
    cmd_result_free(&r);
}

/* Original weights as f32. */
static float *original(const struct mq_model *m, const char *name, uint64_t *n)
{
    long i = mq_model_find(m, name);
    cr_assert_geq(i, 0, "%s", name);
    const struct mq_tensor *t = &m->tensors[i];
    uint16_t *raw = malloc(t->nbytes);
    struct mq_error err;
    cr_assert_eq(mq_model_read(m, (size_t)i, 0, raw, t->nbytes, &err), MQ_OK);
    float *x = malloc(t->numel * 4);
    for (uint64_t k = 0; k < t->numel; k++) x[k] = mq_bf16_to_f32(raw[k]);
    free(raw);
    *n = t->numel;
    return x;
}

static const char *const linears[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                      "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};

/* ---- 4-bit ---- */

static void check_4bit(const char *type, bool dq, bool fp4)
{
    char *dir = make_temp_dir("bnb4");
    char out[512];
    snprintf(out, sizeof out, "%s/model", dir);
    convert_bnb(out, type);
    struct st_file f;
    st_open(&f, out);
    cJSON *meta = cJSON_GetObjectItem(f.hdr, "__metadata__");
    cr_expect_str_eq(cJSON_GetObjectItem(meta, "format")->valuestring, "pt");
    struct mq_model *m;
    struct mq_error err;
    cr_assert_eq(mq_model_open(MODEL, &m, &err), MQ_OK);
    float dyn[256];
    mq_bnb_dynamic_map(dyn);
    double sum_abs = 0, sum_sq = 0;
    uint64_t total = 0;
    for (int layer = 0; layer < 2; layer++) {
        for (size_t k = 0; k < 7; k++) {
            char p[256], key[320];
            snprintf(p, sizeof p, "model.layers.%d.%s.weight", layer, linears[k]);
            uint64_t n;
            float *x = original(m, p, &n);
            uint64_t nb = (n + 63) / 64, nb2 = (nb + 255) / 256;
            size_t len;
            const uint8_t *w = st_get(&f, p, "U8", 2, (uint64_t[]){n / 2, 1}, &len);
            cr_expect_eq(len, n / 2);
            snprintf(key, sizeof key, "%s.quant_map", p);
            const uint8_t *qm = st_get(&f, key, "F32", 1, (uint64_t[]){16}, NULL);
            for (unsigned c = 0; c < 16; c++)
                cr_expect_eq(le_f32(qm + 4 * c), fp4 ? mq_fp4_value(c) : mq_nf4_value(c), "quant_map[%u]", c);
            /* the absmax, decoded from double quant when there is one */
            float *absmax = malloc(nb * 4);
            snprintf(key, sizeof key, "%s.absmax", p);
            float offset = 0;
            if (dq) {
                const uint8_t *q = st_get(&f, key, "U8", 1, (uint64_t[]){nb}, NULL);
                snprintf(key, sizeof key, "%s.nested_absmax", p);
                const uint8_t *na = st_get(&f, key, "F32", 1, (uint64_t[]){nb2}, NULL);
                snprintf(key, sizeof key, "%s.nested_quant_map", p);
                const uint8_t *nm = st_get(&f, key, "F32", 1, (uint64_t[]){256}, NULL);
                for (int c = 0; c < 256; c++) cr_expect_eq(le_f32(nm + 4 * c), dyn[c]);
                cr_expect_eq(le_f32(nm + 4 * 0), -0.992968738079071f, "documented code 0");
                cr_expect_eq(le_f32(nm + 4 * 127), 0.0f);
                cr_expect_eq(le_f32(nm + 4 * 255), 1.0f);
                snprintf(key, sizeof key, "%s.quant_state.bitsandbytes__%s", p, fp4 ? "fp4" : "nf4");
                size_t jl;
                const uint8_t *js = st_get(&f, key, "U8", 1, NULL, &jl);
                char *json = strndup((const char *)js, jl);
                char prefix[256];
                snprintf(prefix, sizeof prefix,
                         "{\"quant_type\": \"%s\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [%d, %d], "
                         "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": ",
                         fp4 ? "fp4" : "nf4", (int)m->tensors[mq_model_find(m, p)].shape[0],
                         (int)m->tensors[mq_model_find(m, p)].shape[1]);
                cr_expect(strncmp(json, prefix, strlen(prefix)) == 0, "quant_state keys in order: %s", json);
                cJSON *parsed = cJSON_Parse(json);
                cr_expect_not_null(parsed, "quant_state is JSON");
                cJSON_Delete(parsed);
                offset = (float)strtod(json + strlen(prefix), NULL);
                free(json);
                for (uint64_t b = 0; b < nb; b++)
                    absmax[b] = dyn[q[b]] * le_f32(na + 4 * (b / 256)) + offset;
            } else {
                const uint8_t *a = st_get(&f, key, "F32", 1, (uint64_t[]){nb}, NULL);
                for (uint64_t b = 0; b < nb; b++) absmax[b] = le_f32(a + 4 * b);
                /* the exact absmax: max |x| of each block of 64 */
                for (uint64_t b = 0; b < nb; b++) {
                    float mx = 0;
                    for (uint64_t j = b * 64; j < b * 64 + 64 && j < n; j++) mx = fmaxf(mx, fabsf(x[j]));
                    cr_expect_eq(absmax[b], mx, "%s block %llu absmax", p, (unsigned long long)b);
                }
                snprintf(key, sizeof key, "%s.quant_state.bitsandbytes__%s", p, fp4 ? "fp4" : "nf4");
                size_t jl;
                const uint8_t *js = st_get(&f, key, "U8", 1, NULL, &jl);
                char want[256];
                snprintf(want, sizeof want, "{\"quant_type\": \"%s\", \"blocksize\": 64, \"dtype\": \"bfloat16\", "
                         "\"shape\": [%d, %d]}", fp4 ? "fp4" : "nf4", (int)m->tensors[mq_model_find(m, p)].shape[0],
                         (int)m->tensors[mq_model_find(m, p)].shape[1]);
                cr_expect(jl == strlen(want) && memcmp(js, want, jl) == 0, "quant_state without double quant");
            }
            if (dq) {
                /* the offset is the float32 mean of the exact absmax (float64 sum), within 1 ulp */
                double s = 0;
                for (uint64_t b = 0; b < nb; b++) {
                    float mx = 0;
                    for (uint64_t j = b * 64; j < b * 64 + 64 && j < n; j++) mx = fmaxf(mx, fabsf(x[j]));
                    s += mx;
                }
                float mean = (float)(s / (double)nb);
                cr_expect(fabsf(offset - mean) <= nextafterf(fabsf(mean), INFINITY) - fabsf(mean),
                          "%s nested_offset %.9g vs float64 mean %.9g", p, offset, mean);
            }
            /* dequantize: element 2i in the high nibble */
            for (uint64_t j = 0; j < n; j++) {
                unsigned code = (w[j / 2] >> ((j % 2) ? 0 : 4)) & 15;
                float v = (fp4 ? mq_fp4_value(code) : mq_nf4_value(code)) * absmax[j / 64];
                double d = (double)v - (double)x[j];
                sum_abs += fabs(d);
                sum_sq += d * d;
            }
            total += n;
            free(absmax);
            free(x);
        }
    }
    /* embeddings, lm_head and norms stay BF16 */
    st_get(&f, "lm_head.weight", "BF16", 2, (uint64_t[]){384, 256}, NULL);
    st_get(&f, "model.embed_tokens.weight", "BF16", 2, (uint64_t[]){384, 256}, NULL);
    st_get(&f, "model.norm.weight", "BF16", 1, (uint64_t[]){256}, NULL);
    printf("bnb %s round trip on %s: mean |err| %.6f, rmse %.6f over %llu weights\n", type, MODEL,
           sum_abs / (double)total, sqrt(sum_sq / (double)total), (unsigned long long)total);
    cr_expect_lt(sum_abs / (double)total, fp4 ? 0.02 : 0.015);
    /* config.json */
    char cfgp[600];
    snprintf(cfgp, sizeof cfgp, "%s/config.json", out);
    char *cfg = (char *)read_file_all(cfgp, NULL);
    cJSON *c = cJSON_Parse(cfg);
    cJSON *q = cJSON_GetObjectItem(c, "quantization_config");
    cr_assert_not_null(q);
    cr_expect_str_eq(cJSON_GetObjectItem(q, "quant_method")->valuestring, "bitsandbytes");
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(q, "load_in_4bit")));
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(q, "load_in_8bit")));
    cr_expect_str_eq(cJSON_GetObjectItem(q, "bnb_4bit_quant_type")->valuestring, fp4 ? "fp4" : "nf4");
    cr_expect_eq(cJSON_IsTrue(cJSON_GetObjectItem(q, "bnb_4bit_use_double_quant")), dq);
    cr_expect_str_eq(cJSON_GetObjectItem(q, "bnb_4bit_compute_dtype")->valuestring, "bfloat16");
    cJSON *skip = cJSON_GetObjectItem(q, "llm_int8_skip_modules");
    cr_expect_eq(cJSON_GetArraySize(skip), 1);
    cr_expect_str_eq(cJSON_GetArrayItem(skip, 0)->valuestring, "lm_head");
    cr_expect_str_eq(cJSON_GetObjectItem(c, "torch_dtype")->valuestring, "bfloat16", "torch_dtype kept");
    cJSON_Delete(c);
    free(cfg);
    /* tokenizer files copied byte for byte */
    char a[600];
    snprintf(a, sizeof a, "%s/tokenizer.json", out);
    cr_expect(files_equal(a, MODEL "/tokenizer.json"));
    st_close(&f);
    mq_model_free(m);
    /* our own reader accepts the file (every byte of the data section covered, header padding) */
    char st[600];
    snprintf(st, sizeof st, "%s/model.safetensors", out);
    cr_expect_eq(mq_model_open(st, &m, &err), MQ_OK, "%s", err.msg);
    if (m) mq_model_free(m);
    remove_tree(dir);
    free(dir);
}

Test(bnb, nf4) { check_4bit("nf4", false, false); }
Test(bnb, nf4_double_quant) { check_4bit("nf4-dq", true, false); }
Test(bnb, fp4) { check_4bit("fp4", false, true); }

Test(bnb, int8_row_is_llm_int8)
{
    char *dir = make_temp_dir("bnb8");
    char out[512];
    snprintf(out, sizeof out, "%s/m8", dir);
    convert_bnb(out, "int8_row");
    struct st_file f;
    st_open(&f, out);
    struct mq_model *m;
    struct mq_error err;
    cr_assert_eq(mq_model_open(MODEL, &m, &err), MQ_OK);
    const char *p = "model.layers.1.mlp.down_proj";
    char key[256];
    snprintf(key, sizeof key, "%s.weight", p);
    uint64_t n;
    float *x = original(m, key, &n);
    uint64_t rows = 256, cols = 512;
    const uint8_t *w = st_get(&f, key, "I8", 2, (uint64_t[]){rows, cols}, NULL);
    snprintf(key, sizeof key, "%s.SCB", p);
    const uint8_t *scb = st_get(&f, key, "F32", 1, (uint64_t[]){rows}, NULL);
    snprintf(key, sizeof key, "%s.weight_format", p);
    size_t len;
    const uint8_t *wf = st_get(&f, key, "U8", 0, NULL, &len);
    cr_expect_eq(len, 1);
    cr_expect_eq(wf[0], 0, "weight_format 0 = row");
    for (uint64_t r = 0; r < rows; r++) {
        /* fp16 first, row absmax, round half to even of x * 127 / SCB */
        float mx = 0;
        for (uint64_t j = 0; j < cols; j++) mx = fmaxf(mx, fabsf(mq_f16_to_f32(mq_f32_to_f16(x[r * cols + j]))));
        cr_expect_eq(le_f32(scb + 4 * r), mx, "SCB[%llu]", (unsigned long long)r);
        for (uint64_t j = 0; j < cols; j++) {
            float h = mq_f16_to_f32(mq_f32_to_f16(x[r * cols + j]));
            int want = (int)rintf(h * (127.0f / mx));
            cr_assert_eq((int8_t)w[r * cols + j], want, "q[%llu][%llu]", (unsigned long long)r, (unsigned long long)j);
        }
    }
    char cfgp[600];
    snprintf(cfgp, sizeof cfgp, "%s/config.json", out);
    char *cfg = (char *)read_file_all(cfgp, NULL);
    cJSON *c = cJSON_Parse(cfg);
    cJSON *q = cJSON_GetObjectItem(c, "quantization_config");
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(q, "load_in_8bit")));
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(q, "load_in_4bit")));
    cJSON_Delete(c);
    free(cfg);
    free(x);
    st_close(&f);
    mq_model_free(m);
    remove_tree(dir);
    free(dir);
}

/* bitsandbytes.md section 8, V3 JSON, and Python's repr rules. */
Test(bnb, python_float_repr)
{
    static const struct { float f; const char *want; } v[] = {
        {5.354514122009277f, "5.354514122009277"}, {1e-05f, "9.999999747378752e-06"}, {100000.0f, "100000.0"},
        {0.0001f, "9.999999747378752e-05"}, {1152921504606846976.0f, "1.152921504606847e+18"}, {2.0f, "2.0"},
        {0.5f, "0.5"}, {1048576.0f, "1048576.0"}, {0.001f, "0.0010000000474974513"},
        {0.24111175537109375f, "0.24111175537109375"}, {-3.25f, "-3.25"}, {0.0f, "0.0"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char buf[64];
        mq_py_float_repr(v[i].f, buf, sizeof buf);
        cr_expect_str_eq(buf, v[i].want, "repr(%.17g)", (double)v[i].f);
    }
}

Test(bnb, odd_count_refused_and_folder_replaced_atomically)
{
    char *dir = make_temp_dir("bnbdir");
    char out[512], in[512];
    snprintf(out, sizeof out, "%s/model", dir);
    convert_bnb(out, "nf4");
    char st[600];
    snprintf(st, sizeof st, "%s/model.safetensors", out);
    size_t before_len;
    uint8_t *before = read_file_all(st, &before_len);
    /* a failing run leaves the previous folder as it was, and no temporary folder */
    setenv("MODELQ_FAULT_WRITE_AFTER", "100000", 1);
    struct cmd_result r = run_modelq("convert " MODEL " -o %s --type fp4", out);
    unsetenv("MODELQ_FAULT_WRITE_AFTER");
    cr_expect_eq(r.code, 4, "%s", r.err);
    cmd_result_free(&r);
    size_t after_len;
    uint8_t *after = read_file_all(st, &after_len);
    cr_expect(after && after_len == before_len && memcmp(before, after, before_len) == 0, "previous folder intact");
    free(after);
    cr_expect_eq(count_entries_containing(dir, "modelq-tmp"), 0);
    /* a successful run replaces it whole */
    convert_bnb(out, "fp4");
    after = read_file_all(st, &after_len);
    cr_expect(after && (after_len != before_len || memcmp(before, after, before_len) != 0), "replaced");
    free(after);
    free(before);
    cr_expect_eq(count_entries_containing(dir, "modelq-tmp"), 0, "old folder removed");
    /* a temporary folder left by a killed run (its PID is gone) is removed by the next run */
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    cr_assert(dead > 0);
    waitpid(dead, NULL, 0);
    char stale[600], stale_file[700];
    snprintf(stale, sizeof stale, "%s/.model.modelq-tmp-%ld", dir, (long)dead);
    cr_assert_eq(mkdir(stale, 0755), 0);
    snprintf(stale_file, sizeof stale_file, "%s/model.safetensors", stale);
    FILE *half = fopen(stale_file, "w");
    cr_assert_not_null(half);
    fputs("half-written", half);
    fclose(half);
    convert_bnb(out, "nf4");
    cr_expect_eq(count_entries_containing(dir, "modelq-tmp"), 0, "the dead run's temporary folder is removed");
    /* never onto the input folder */
    r = run_modelq("convert %s -o %s --type nf4", out, out);
    cr_expect_eq(r.code, 2, "%s", r.err);
    cmd_result_free(&r);
    /* odd element count */
    snprintf(in, sizeof in, "%s/odd.safetensors", dir);
    FILE *fp = fopen(in, "wb");
    const char *hdr = "{\"l.weight\":{\"dtype\":\"F32\",\"shape\":[3,3],\"data_offsets\":[0,36]}}";
    uint64_t hl = strlen(hdr);
    fwrite(&hl, 8, 1, fp);
    fwrite(hdr, 1, hl, fp);
    static const float nine[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    fwrite(nine, 4, 9, fp);
    fclose(fp);
    r = run_modelq("convert %s -o %s/oddout --type nf4", in, dir);
    cr_expect_eq(r.code, 2, "%s", r.err);
    cr_expect(strstr(r.err, "l.weight") && strstr(r.err, "odd"), "%s", r.err);
    cmd_result_free(&r);
    cr_expect(!file_exists("oddout"));
    remove_tree(dir);
    free(dir);
}

/* Two independent writers (tools/common/bnbwrite.c made testdata/bnb/) agree tensor by tensor, and
** modelq reads its own folder back: inspect, and convert to GGUF f16 (dequantized). */
static void expect_same_tensors(const char *ours, const char *ref)
{
    struct st_file a, b;
    st_open(&a, ours);
    st_open(&b, ref);
    int n = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, b.hdr)
    {
        if (!strcmp(e->string, "__metadata__")) continue;
        cJSON *o = cJSON_GetObjectItemCaseSensitive(a.hdr, e->string);
        cr_assert_not_null(o, "%s missing from modelq's folder", e->string);
        cr_expect_str_eq(cJSON_GetObjectItem(o, "dtype")->valuestring, cJSON_GetObjectItem(e, "dtype")->valuestring);
        cJSON *oa = cJSON_GetObjectItem(o, "data_offsets"), *ob = cJSON_GetObjectItem(e, "data_offsets");
        uint64_t la = (uint64_t)(cJSON_GetArrayItem(oa, 1)->valuedouble - cJSON_GetArrayItem(oa, 0)->valuedouble);
        uint64_t lb = (uint64_t)(cJSON_GetArrayItem(ob, 1)->valuedouble - cJSON_GetArrayItem(ob, 0)->valuedouble);
        cr_assert_eq(la, lb, "%s: size", e->string);
        cr_expect_eq(memcmp(a.bytes + a.data + (uint64_t)cJSON_GetArrayItem(oa, 0)->valuedouble,
                            b.bytes + b.data + (uint64_t)cJSON_GetArrayItem(ob, 0)->valuedouble, (size_t)la), 0,
                     "%s: bytes differ between the two writers", e->string);
        n++;
    }
    cr_expect_eq(cJSON_GetArraySize(a.hdr), n + 1, "same key set");
    st_close(&a);
    st_close(&b);
}

Test(bnb, matches_the_fixture_writer_and_reads_back)
{
    char *dir = make_temp_dir("bnbrt");
    char out[512], out8[512];
    snprintf(out, sizeof out, "%s/nf4dq", dir);
    snprintf(out8, sizeof out8, "%s/int8", dir);
    convert_bnb(out, "nf4-dq");
    convert_bnb(out8, "int8_row");
    expect_same_tensors(out, "testdata/bnb/nf4-dq");
    expect_same_tensors(out8, "testdata/bnb/int8");
    struct cmd_result r = run_modelq("inspect %s", out);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cr_expect(strstr(r.out, "nf4") && strstr(r.out, "double quant"), "%s", r.out);
    cmd_result_free(&r);
    r = run_modelq("convert %s -o %s/back.gguf --type f16 --quiet", out, dir);
    cr_expect_eq(r.code, 0, "bnb folder -> GGUF f16: %s", r.err);
    cmd_result_free(&r);
    r = run_modelq("verify %s/back.gguf --quiet", dir);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    remove_tree(dir);
    free(dir);
}

/* The module a key belongs to: "P" of "P.weight", "P.weight.absmax", "P.SCB", "P.weight_format". */
static void module_of(const char *key, char *out, size_t cap)
{
    const char *w = strstr(key, ".weight");
    const char *scb = strstr(key, ".SCB");
    const char *bias = strstr(key, ".bias");
    const char *end = w ? w : scb ? scb : bias ? bias : key + strlen(key);
    snprintf(out, cap, "%.*s", (int)(end - key), key);
}

Test(bnb, shards_keep_each_module_together)
{
    char *dir = make_temp_dir("bnbshard");
    char one[512], many[512];
    snprintf(one, sizeof one, "%s/one", dir);
    snprintf(many, sizeof many, "%s/many", dir);
    convert_bnb(one, "nf4-dq");
    struct cmd_result r = run_modelq("convert " MODEL " -o %s --type nf4-dq --max-shard-size 300KB --quiet", many);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    char idx[600];
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", many);
    char *text = (char *)read_file_all(idx, NULL);
    cr_assert_not_null(text, "index written");
    cJSON *doc = cJSON_Parse(text);
    cJSON *map = cJSON_GetObjectItem(doc, "weight_map");
    struct st_file ref;
    st_open(&ref, one);
    int keys = 0, files = 0;
    char seen[16][64] = {{0}};
    cJSON *k;
    cJSON_ArrayForEach(k, map)
    {
        char mod[256];
        module_of(k->string, mod, sizeof mod);
        /* every key of this module names the same shard */
        cJSON *o;
        cJSON_ArrayForEach(o, map)
        {
            char m2[256];
            module_of(o->string, m2, sizeof m2);
            if (!strcmp(mod, m2))
                cr_expect_str_eq(o->valuestring, k->valuestring, "%s and %s in different shards", k->string, o->string);
        }
        /* and its bytes equal the single-file output */
        char shard_dir[600];
        snprintf(shard_dir, sizeof shard_dir, "%s/%s", many, k->valuestring);
        struct st_file sh;
        sh.bytes = read_file_all(shard_dir, &sh.len);
        cr_assert_not_null(sh.bytes);
        uint64_t n = 0;
        for (int b = 0; b < 8; b++) n |= (uint64_t)sh.bytes[b] << (8 * b);
        sh.data = 8 + n;
        sh.hdr = cJSON_ParseWithLength((const char *)sh.bytes + 8, (size_t)n);
        size_t la, lb;
        const uint8_t *a = st_get(&sh, k->string, cJSON_GetObjectItem(cJSON_GetObjectItem(ref.hdr, k->string), "dtype")->valuestring,
                                  0, NULL, &la);
        const uint8_t *b = st_get(&ref, k->string, cJSON_GetObjectItem(cJSON_GetObjectItem(ref.hdr, k->string), "dtype")->valuestring,
                                  0, NULL, &lb);
        cr_expect(la == lb && memcmp(a, b, la) == 0, "%s: same bytes sharded and unsharded", k->string);
        st_close(&sh);
        bool known = false;
        for (int f = 0; f < files; f++) known |= !strcmp(seen[f], k->valuestring);
        if (!known && files < 16) snprintf(seen[files++], 64, "%s", k->valuestring);
        keys++;
    }
    cr_expect_gt(files, 2, "several shards");
    cr_expect_eq(keys + 1, cJSON_GetArraySize(ref.hdr), "every key indexed");
    st_close(&ref);
    cJSON_Delete(doc);
    free(text);
    /* modelq reads the sharded folder back */
    r = run_modelq("convert %s -o %s/back.gguf --type f16 --quiet", many, dir);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    /* verify: every stored tensor of every shard, then one flipped byte */
    r = run_modelq("verify %s --quiet", many);
    cr_expect_eq(r.code, 0, "%s%s", r.out, r.err);
    cmd_result_free(&r);
    char shard2[600];
    snprintf(shard2, sizeof shard2, "%s/model-00002-of-00005.safetensors", many);
    FILE *fp = fopen(shard2, "r+b");
    cr_assert_not_null(fp);
    fseek(fp, -10, SEEK_END); /* inside the last quant_state blob */
    int c = fgetc(fp);
    fseek(fp, -10, SEEK_END);
    fputc(c ^ 1, fp);
    fclose(fp);
    r = run_modelq("verify %s --quiet", many);
    cr_expect_eq(r.code, 6, "%s%s", r.out, r.err);
    cr_expect(strstr(r.out, "MISMATCH") && strstr(r.out, "quant_state"), "%s", r.out);
    cmd_result_free(&r);
    remove_tree(dir);
    free(dir);
}

/* GPT-2 Conv1D weights are stored [in, out]; bitsandbytes quantizes them as [out, in]. */
Test(bnb, gpt2_conv1d_weights_are_transposed)
{
    char *dir = make_temp_dir("gpt2");
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"model_type\": \"gpt2\", \"architectures\": [\"GPT2LMHeadModel\"], \"n_embd\": 64, \"n_layer\": 1, "
          "\"n_head\": 2, \"vocab_size\": 50, \"torch_dtype\": \"float32\"}\n", f);
    fclose(f);
    enum { IN = 64, OUT = 96 };
    static float w[IN * OUT], wte[50 * IN], ln[IN];
    for (int i = 0; i < IN * OUT; i++) w[i] = (float)((i * 37) % 101 - 50) / 64.0f;
    for (int i = 0; i < 50 * IN; i++) wte[i] = (float)(i % 13) / 16.0f;
    for (int i = 0; i < IN; i++) ln[i] = 1.0f;
    char hdr[512];
    snprintf(hdr, sizeof hdr,
             "{\"h.0.attn.c_attn.weight\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[0,%d]},"
             "\"h.0.ln_1.weight\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%d,%d]},"
             "\"wte.weight\":{\"dtype\":\"F32\",\"shape\":[50,%d],\"data_offsets\":[%d,%d]}}",
             IN, OUT, IN * OUT * 4, IN, IN * OUT * 4, IN * OUT * 4 + IN * 4, IN, IN * OUT * 4 + IN * 4,
             IN * OUT * 4 + IN * 4 + 50 * IN * 4);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    f = fopen(path, "wb");
    uint64_t hl = strlen(hdr);
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, hl, f);
    fwrite(w, 4, IN * OUT, f);
    fwrite(ln, 4, IN, f);
    fwrite(wte, 4, 50 * IN, f);
    fclose(f);
    for (int four = 0; four < 2; four++) {
        char out[600];
        snprintf(out, sizeof out, "%s/out%d", dir, four);
        setenv("MODELQ_CHUNK_ELEMS", "1000", 1); /* several chunks of columns */
        struct cmd_result r = run_modelq("convert %s -o %s --type %s --quiet -j 3", dir, out, four ? "nf4" : "int8_row");
        unsetenv("MODELQ_CHUNK_ELEMS");
        cr_assert_eq(r.code, 0, "%s", r.err);
        cmd_result_free(&r);
        struct st_file sf;
        st_open(&sf, out);
        if (!four) {
            const uint8_t *q = st_get(&sf, "h.0.attn.c_attn.weight", "I8", 2, (uint64_t[]){OUT, IN}, NULL);
            const uint8_t *scb = st_get(&sf, "h.0.attn.c_attn.SCB", "F32", 1, (uint64_t[]){OUT}, NULL);
            for (int o = 0; o < OUT; o++) {
                float mx = 0;
                for (int i = 0; i < IN; i++) mx = fmaxf(mx, fabsf(w[i * OUT + o]));
                cr_expect_eq(le_f32(scb + 4 * o), mx, "SCB of output row %d = column %d of the Conv1D weight", o, o);
                for (int i = 0; i < IN; i++)
                    cr_assert_eq((int8_t)q[o * IN + i], (int)rintf(w[i * OUT + o] * (127.0f / mx)), "q[%d][%d]", o, i);
            }
        } else {
            const uint8_t *q = st_get(&sf, "h.0.attn.c_attn.weight", "U8", 2, (uint64_t[]){OUT * IN / 2, 1}, NULL);
            const uint8_t *a = st_get(&sf, "h.0.attn.c_attn.weight.absmax", "F32", 1, (uint64_t[]){OUT * IN / 64}, NULL);
            size_t jl;
            const uint8_t *js = st_get(&sf, "h.0.attn.c_attn.weight.quant_state.bitsandbytes__nf4", "U8", 1, NULL, &jl);
            cr_expect(strstr(strndupa((const char *)js, jl), "\"shape\": [96, 64]") != NULL, "shape [out, in]");
            for (int e = 0; e < OUT * IN; e++) {
                int o = e / IN, i = e % IN;
                unsigned code = (q[e / 2] >> ((e % 2) ? 0 : 4)) & 15;
                float v = mq_nf4_value(code) * le_f32(a + 4 * (e / 64));
                cr_assert(fabsf(v - w[i * OUT + o]) <= 0.5f * le_f32(a + 4 * (e / 64)) * 0.35f + 1e-6f,
                          "element [%d][%d]: %g vs %g", o, i, v, w[i * OUT + o]);
            }
        }
        st_get(&sf, "wte.weight", "F32", 2, (uint64_t[]){50, IN}, NULL);
        st_close(&sf);
    }
    remove_tree(dir);
    free(dir);
}

/* The same bytes for any thread count and chunking. */
Test(bnb, reproducible_across_threads_and_chunks)
{
    static const char *types[] = {"nf4-dq", "int8_row", "fp4"};
    char *dir = make_temp_dir("bnbrepro");
    for (size_t k = 0; k < 3; k++) {
        char a[512], b[512], fa[600], fb[600];
        snprintf(a, sizeof a, "%s/a-%s", dir, types[k]);
        snprintf(b, sizeof b, "%s/b-%s", dir, types[k]);
        struct cmd_result r = run_modelq("convert " MODEL " -o %s --type %s -j 1 --reference-kernels --quiet", a, types[k]);
        cr_assert_eq(r.code, 0, "%s", r.err);
        cmd_result_free(&r);
        setenv("MODELQ_CHUNK_ELEMS", "3000", 1);
        r = run_modelq("convert " MODEL " -o %s --type %s -j 8 --quiet", b, types[k]);
        unsetenv("MODELQ_CHUNK_ELEMS");
        cr_assert_eq(r.code, 0, "%s", r.err);
        cmd_result_free(&r);
        snprintf(fa, sizeof fa, "%s/model.safetensors", a);
        snprintf(fb, sizeof fb, "%s/model.safetensors", b);
        cr_expect(files_equal(fa, fb), "%s: -j1 reference vs -j8 small chunks", types[k]);
    }
    remove_tree(dir);
    free(dir);
}
