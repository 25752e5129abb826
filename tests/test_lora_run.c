/*
** test_lora_run.c - PEFT LoRA adapters written as GGUF adapters, run by llama.cpp (issue 17).
**
** A rank-8 adapter on all seven Linear weights of both layers of testdata/tiny-llama (q, k, v, o,
** gate, up, down; values from a fixed generator, large enough to move the next-token
** distributions far) is written as PEFT saves one: adapter_config.json and
** adapter_model.safetensors with "base_model.model.<module>.lora_A.weight" [r, in] and
** "...lora_B.weight" [out, r]. modelq converts the base to an f32 GGUF and the adapter to a GGUF
** adapter; llama.cpp (the pinned libllama, llama_adapter_lora_init + llama_set_adapters_lora, as
** its --lora) runs the base with the adapter, and its next-token distributions are compared with
** the float64 reference forward pass (tests/helpers/llama_ref.c) on the MERGED weights
** W + (alpha / r) B A computed here in double: KL(reference || llama.cpp) per position.
** rsLoRA (use_rslora: alpha / sqrt(r)) is checked the same way. Negative controls, each far from
** the merged reference: the adapter at scale 0 (the base alone), the adapter converted without
** the Q/K row permutation of lora_b, and the rsLoRA adapter against the alpha / r merge.
** Refusals (CLI, exit code and message, nothing written): DoRA, alpha_pattern, another PEFT type,
** a missing lora_B, a base of another shape, a K-quant type, a bitsandbytes output, no base.
*/
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_impl.h"
#include "bf16_read.h"
#include "convert_checked.h"
#include "llama_cpp.h"
#include "llama_need.h"
#include "llama_ref.h"
#include "logprob.h"
#include "modelq/convert.h"
#include "modelq/model.h"
#include "run_cmd.h"
#include "stwrite.h"

#define BASE "testdata/tiny-llama"
#define RANK 8
#define ALPHA 16.0
#define N_MOD 7
#define N_LAYER 2
/* f32 files against the float64 reference of the merged weights: llama.cpp computes
 * W x + s B (A x) in f32; measured max KL 9e-12 (f16 5e-6, q8_0 9e-4: the printed table) */
#define F32_KL_MAX 1e-6
#define CONTROL_KL_MIN 1e-2

static struct mq_llama_cpp *need_llama_cpp(void) { return llama_cpp_or_skip(); }

/* The seven adapted modules: PEFT module name and the weight's [out, in] from the config. */
struct module {
    const char *name;
    int out, in; /* filled from the config */
};

struct base {
    struct llama_ref_config cfg;
    struct llama_ref_layer layers[N_LAYER];
    struct llama_ref_weights w;
    float *owned[64];
    int n_owned;
    struct module mods[N_MOD];
};

static float *take(struct base *B, const struct mq_model *m, const char *name, uint64_t numel)
{
    long t = mq_model_find(m, name);
    cr_assert_geq(t, 0, "%s missing", name);
    cr_assert_eq(m->tensors[t].dtype, MQ_DTYPE_BF16);
    cr_assert_eq(m->tensors[t].numel, numel, "%s", name);
    float *v = bf16_read_f32(m, (size_t)t, numel);
    B->owned[B->n_owned++] = v;
    return v;
}

/* The weight of module k of a layer (pointer into the reference layer). */
static const float **layer_weight(struct llama_ref_layer *L, int k)
{
    const float **w[N_MOD] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    return w[k];
}

static void base_load(struct base *B)
{
    memset(B, 0, sizeof *B);
    struct mq_model *m;
    struct mq_error err;
    cr_assert_eq(mq_model_open(BASE, &m, &err), MQ_OK, "%s", err.msg);
    const struct mq_config *c = &m->config;
    cr_assert_eq(c->num_layers, N_LAYER);
    const int E = (int)c->hidden_size, F = (int)c->intermediate_size, V = (int)c->vocab_size, D = (int)c->head_dim;
    const int QD = (int)c->num_heads * D, KD = (int)c->num_kv_heads * D;
    B->cfg = (struct llama_ref_config){V, E, F, N_LAYER, (int)c->num_heads, (int)c->num_kv_heads, D, 0, 0};
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(c->json, "rms_norm_eps");
    const cJSON *theta = cJSON_GetObjectItemCaseSensitive(c->json, "rope_theta");
    cr_assert(cJSON_IsNumber(eps) && cJSON_IsNumber(theta));
    B->cfg.rms_eps = eps->valuedouble;
    B->cfg.rope_theta = theta->valuedouble;
    const struct module mods[N_MOD] = {{"self_attn.q_proj", QD, E}, {"self_attn.k_proj", KD, E},
                                       {"self_attn.v_proj", KD, E}, {"self_attn.o_proj", E, QD},
                                       {"mlp.gate_proj", F, E},     {"mlp.up_proj", F, E},
                                       {"mlp.down_proj", E, F}};
    memcpy(B->mods, mods, sizeof mods);
    char n[160];
    for (int l = 0; l < N_LAYER; l++) {
        struct llama_ref_layer *L = &B->layers[l];
        snprintf(n, sizeof n, "model.layers.%d.input_layernorm.weight", l);
        L->attn_norm = take(B, m, n, (uint64_t)E);
        snprintf(n, sizeof n, "model.layers.%d.post_attention_layernorm.weight", l);
        L->ffn_norm = take(B, m, n, (uint64_t)E);
        for (int k = 0; k < N_MOD; k++) {
            snprintf(n, sizeof n, "model.layers.%d.%s.weight", l, mods[k].name);
            *layer_weight(L, k) = take(B, m, n, (uint64_t)mods[k].out * (uint64_t)mods[k].in);
        }
    }
    B->w = (struct llama_ref_weights){take(B, m, "model.embed_tokens.weight", (uint64_t)V * E), B->layers,
                                      take(B, m, "model.norm.weight", (uint64_t)E),
                                      take(B, m, "lm_head.weight", (uint64_t)V * E)};
    mq_model_free(m);
}

static void base_free(struct base *B)
{
    for (int i = 0; i < B->n_owned; i++) free(B->owned[i]);
}

/* ---- the adapter ------------------------------------------------------------------------ */

/* A[l][k] is [RANK, in], Bm[l][k] is [out, RANK]; values (u - 0.5) * 0.12 from a fixed LCG. */
struct adapter {
    float *A[N_LAYER][N_MOD], *Bm[N_LAYER][N_MOD];
};

static float next_value(uint32_t *x)
{
    *x = *x * 1664525u + 1013904223u;
    return ((float)(*x >> 8) / 16777216.0f - 0.5f) * 0.12f;
}

static void adapter_make(const struct base *B, struct adapter *ad)
{
    uint32_t x = 2024;
    for (int l = 0; l < N_LAYER; l++)
        for (int k = 0; k < N_MOD; k++) {
            const struct module *md = &B->mods[k];
            ad->A[l][k] = malloc((size_t)RANK * md->in * sizeof(float));
            ad->Bm[l][k] = malloc((size_t)md->out * RANK * sizeof(float));
            cr_assert(ad->A[l][k] && ad->Bm[l][k]);
            for (int i = 0; i < RANK * md->in; i++) ad->A[l][k][i] = next_value(&x);
            for (int i = 0; i < md->out * RANK; i++) ad->Bm[l][k][i] = next_value(&x);
        }
}

static void adapter_free(struct adapter *ad)
{
    for (int l = 0; l < N_LAYER; l++)
        for (int k = 0; k < N_MOD; k++) {
            free(ad->A[l][k]);
            free(ad->Bm[l][k]);
        }
}

/* Writes the PEFT folder: adapter_model.safetensors (F32) and adapter_config.json with `extra`
 * keys spliced in (e.g. "\"use_rslora\": true, "). `skip_b` leaves out one lora_B. */
static void adapter_write(const struct base *B, const struct adapter *ad, const char *dir, const char *extra,
                          bool skip_b)
{
    size_t cap = 64 * 1024, hl = 0, data_len = 0;
    char *hdr = malloc(cap);
    cr_assert_not_null(hdr);
    for (int l = 0; l < N_LAYER; l++)
        for (int k = 0; k < N_MOD; k++) data_len += (size_t)RANK * (B->mods[k].in + B->mods[k].out) * sizeof(float);
    uint8_t *data = malloc(data_len);
    cr_assert_not_null(data);
    size_t off = 0;
    hl += (size_t)snprintf(hdr + hl, cap - hl, "{");
    for (int l = 0; l < N_LAYER; l++)
        for (int k = 0; k < N_MOD; k++)
            for (int ab = 0; ab < 2; ab++) {
                if (skip_b && ab == 1 && l == 1 && k == 2) continue;
                const struct module *md = &B->mods[k];
                const int rows = ab ? md->out : RANK, cols = ab ? RANK : md->in;
                const size_t bytes = (size_t)rows * cols * sizeof(float);
                hl += (size_t)snprintf(hdr + hl, cap - hl,
                                       "%s\"base_model.model.model.layers.%d.%s.lora_%c.weight\":{\"dtype\":\"F32\","
                                       "\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}",
                                       off ? "," : "", l, md->name, ab ? 'B' : 'A', rows, cols, off, off + bytes);
                memcpy(data + off, ab ? ad->Bm[l][k] : ad->A[l][k], bytes);
                off += bytes;
            }
    hl += (size_t)snprintf(hdr + hl, cap - hl, "}");
    cr_assert_lt(hl, cap);
    char path[600];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    cr_assert_eq(stw_write_raw(path, hl, hdr, hl, data, off), 0);
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"peft_type\": \"LORA\", \"r\": %d, \"lora_alpha\": %g, %s\"target_modules\": [\"q_proj\", "
            "\"k_proj\", \"v_proj\", \"o_proj\", \"gate_proj\", \"up_proj\", \"down_proj\"], \"bias\": \"none\", "
            "\"base_model_name_or_path\": \"modelq-tests/tiny-llama\"}\n", RANK, ALPHA,
            extra);
    cr_assert_eq(fclose(f), 0);
    free(hdr);
    free(data);
}

/* The merged reference: W + s B A in double, rounded to float; *out owns the new weights. */
struct merged {
    struct llama_ref_layer layers[N_LAYER];
    struct llama_ref_weights w;
    float *owned[N_LAYER * N_MOD];
};

static void merge(const struct base *B, const struct adapter *ad, double s, struct merged *M)
{
    memcpy(M->layers, B->layers, sizeof M->layers);
    for (int l = 0; l < N_LAYER; l++)
        for (int k = 0; k < N_MOD; k++) {
            const struct module *md = &B->mods[k];
            const float *W = *layer_weight((struct llama_ref_layer *)&B->layers[l], k);
            float *out = malloc((size_t)md->out * md->in * sizeof *out);
            cr_assert_not_null(out);
            for (int i = 0; i < md->out; i++)
                for (int j = 0; j < md->in; j++) {
                    double d = 0;
                    for (int q = 0; q < RANK; q++)
                        d += (double)ad->Bm[l][k][(size_t)i * RANK + q] * ad->A[l][k][(size_t)q * md->in + j];
                    out[(size_t)i * md->in + j] = (float)((double)W[(size_t)i * md->in + j] + s * d);
                }
            *layer_weight(&M->layers[l], k) = out;
            M->owned[l * N_MOD + k] = out;
        }
    M->w = B->w;
    M->w.layers = M->layers;
}

static void merged_free(struct merged *M)
{
    for (int i = 0; i < N_LAYER * N_MOD; i++) free(M->owned[i]);
}

/* ---- running ------------------------------------------------------------------------------ */

#define N_SEQ 3
#define SEQ_LEN 24

static void make_seqs(int32_t ids[N_SEQ][SEQ_LEN], int n_vocab)
{
    uint32_t x = 777;
    for (int s = 0; s < N_SEQ; s++)
        for (int i = 0; i < SEQ_LEN; i++) {
            x = x * 1103515245u + 12345u;
            ids[s][i] = (int32_t)((x >> 9) % (uint32_t)(n_vocab - 2));
        }
}

static void convert_ok(const char *in, const char *base, const char *type, int debug_qk, const char *out)
{
    tc_convert(&(struct tc_convert){.input = in, .output = out, .type = type, .base = base, .debug_qk = debug_qk}, NULL);
}

/* Max KL(reference of `w` || llama.cpp running `model` with `adapter` at `scale`) over every position. */
static double max_kl(struct mq_llama_cpp_model *model, const char *adapter, float scale, const struct base *B,
                     const struct llama_ref_weights *w)
{
    int32_t ids[N_SEQ][SEQ_LEN];
    const int V = B->cfg.n_vocab;
    make_seqs(ids, V);
    float *got = malloc((size_t)SEQ_LEN * V * sizeof *got), *ref = malloc((size_t)SEQ_LEN * V * sizeof *ref);
    cr_assert(got && ref);
    double worst = 0;
    char why[2400];
    for (int s = 0; s < N_SEQ; s++) {
        struct mq_llama_cpp_ctx_opts opts = {.lora = adapter, .lora_scale = scale};
        cr_assert_eq(mq_llama_cpp_eval(model, &opts, ids[s], SEQ_LEN, got, why, sizeof why), 0, "%s", why);
        cr_assert_eq(llama_ref_forward(&B->cfg, w, ids[s], SEQ_LEN, ref, NULL), 0);
        for (int t = 0; t < SEQ_LEN; t++)
            worst = fmax(worst, logprob_kl(ref + (size_t)t * V, got + (size_t)t * V, V));
    }
    free(got);
    free(ref);
    return worst;
}

Test(lora_run, adapter_in_llama_cpp_equals_the_merged_reference)
{
    struct mq_llama_cpp *lc = need_llama_cpp();
    struct base B;
    base_load(&B);
    struct adapter ad;
    adapter_make(&B, &ad);
    char *tmp = make_temp_dir("lora-run"), dir[600], rsdir[600], path[700], why[2400];
    snprintf(dir, sizeof dir, "%s/adapter", tmp);
    snprintf(rsdir, sizeof rsdir, "%s/adapter-rs", tmp);
    cr_assert_eq(mkdir(dir, 0755), 0);
    cr_assert_eq(mkdir(rsdir, 0755), 0);
    adapter_write(&B, &ad, dir, "", false);
    adapter_write(&B, &ad, rsdir, "\"use_rslora\": true, ", false);

    snprintf(path, sizeof path, "%s/base-f32.gguf", tmp);
    convert_ok(BASE, NULL, "f32", 0, path);
    struct mq_llama_cpp_model *model = mq_llama_cpp_load(lc, path, NULL, why, sizeof why);
    cr_assert_not_null(model, "%s", why);

    struct merged M, MRS;
    merge(&B, &ad, ALPHA / RANK, &M);
    merge(&B, &ad, ALPHA / sqrt((double)RANK), &MRS);
    char f32[700], f16[700], q8[700], rs[700], noperm[700];
    snprintf(f32, sizeof f32, "%s/adapter-f32.gguf", tmp);
    snprintf(f16, sizeof f16, "%s/adapter-f16.gguf", tmp);
    snprintf(q8, sizeof q8, "%s/adapter-q8_0.gguf", tmp);
    snprintf(rs, sizeof rs, "%s/adapter-rs.gguf", tmp);
    snprintf(noperm, sizeof noperm, "%s/adapter-noperm.gguf", tmp);
    convert_ok(dir, BASE, "f32", 0, f32);
    convert_ok(dir, BASE, "f16", 0, f16);
    convert_ok(dir, BASE, "q8_0", 0, q8);
    convert_ok(rsdir, BASE, "f32", 0, rs);
    convert_ok(dir, BASE, "f32", 1, noperm);

    const double k_f32 = max_kl(model, f32, 1.0f, &B, &M.w), k_f16 = max_kl(model, f16, 1.0f, &B, &M.w),
                 k_q8 = max_kl(model, q8, 1.0f, &B, &M.w), k_rs = max_kl(model, rs, 1.0f, &B, &MRS.w);
    const double c_zero = max_kl(model, f32, 0.0f, &B, &M.w), c_noperm = max_kl(model, noperm, 1.0f, &B, &M.w),
                 c_rs = max_kl(model, rs, 1.0f, &B, &M.w), c_half = max_kl(model, f32, 0.5f, &B, &M.w);
    fprintf(stderr, "LoRA adapter (rank %d, alpha %g) on tiny-llama in llama.cpp vs the merged float64 reference, max KL "
            "per position:\n  f32 %.3e  f16 %.3e  q8_0 %.3e  rsLoRA f32 %.3e\n  controls: scale 0 %.3e, scale 0.5 "
            "%.3e, lora_b not permuted %.3e, rsLoRA file vs alpha/r merge %.3e\n", RANK, ALPHA, k_f32, k_f16, k_q8,
            k_rs, c_zero, c_half, c_noperm, c_rs);
    cr_expect_leq(k_f32, F32_KL_MAX);
    cr_expect_leq(k_rs, F32_KL_MAX);
    cr_expect_leq(k_f16, 1e-4);
    cr_expect_leq(k_q8, 5e-3);
    cr_expect_gt(c_zero, CONTROL_KL_MIN);
    cr_expect_gt(c_half, 100 * F32_KL_MAX);
    cr_expect_gt(c_noperm, CONTROL_KL_MIN);
    cr_expect_gt(c_rs, CONTROL_KL_MIN);
    mq_llama_cpp_free(model);

    /* what llama.cpp read: the keys, and lora_b of the q8_0 file in F16 (rank-8 rows fit no Q8_0 block) */
    struct mq_model *g;
    struct mq_error err;
    cr_assert_eq(mq_model_open(q8, &g, &err), MQ_OK, "%s", err.msg);
    const struct mq_meta_value *v = mq_meta_get(&g->meta, "general.type");
    cr_assert(v && v->type == MQ_META_STRING && strcmp(v->str.p, "adapter") == 0);
    v = mq_meta_get(&g->meta, "adapter.lora.alpha");
    cr_assert(v && v->type == MQ_META_F32 && v->num.f == (double)(float)ALPHA);
    long a = mq_model_find(g, "blk.1.attn_v.weight.lora_a"), b = mq_model_find(g, "blk.1.attn_v.weight.lora_b");
    cr_assert(a >= 0 && b >= 0);
    cr_expect_str_eq(mq_ggml_type_name(g->tensors[a].ggml_type), "Q8_0");
    cr_expect_str_eq(mq_ggml_type_name(g->tensors[b].ggml_type), "F16");
    cr_expect_eq(g->n_tensors, (size_t)(2 * N_LAYER * N_MOD));
    mq_model_free(g);
    cr_assert_eq(mq_model_open(rs, &g, &err), MQ_OK, "%s", err.msg);
    v = mq_meta_get(&g->meta, "adapter.lora.alpha");
    cr_assert(v && v->type == MQ_META_F32 && v->num.f == (double)(float)(ALPHA * sqrt((double)RANK)));
    mq_model_free(g);

    merged_free(&M);
    merged_free(&MRS);
    adapter_free(&ad);
    base_free(&B);
    remove_tree(tmp);
    free(tmp);
}

/* One refused case: edit the config (or the tensors), run the CLI, check exit code and message,
 * and that no output appeared. */
static void expect_refused(const char *dir, const char *args, int code, const char *msg_part)
{
    char out[700];
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    struct cmd_result r = run_modelq("convert %s %s -o %s", dir, args, out);
    cr_expect_eq(r.code, code, "%s %s: exit %d: %s", dir, args, r.code, r.err);
    cr_expect(strstr(r.err, msg_part) != NULL, "%s %s: message \"%s\" lacks \"%s\"", dir, args, r.err, msg_part);
    cr_expect_neq(access(out, F_OK), 0, "%s: output written", out);
    cmd_result_free(&r);
}

Test(lora_run, adapters_llama_cpp_cannot_take_are_refused)
{
    struct base B;
    base_load(&B);
    struct adapter ad;
    adapter_make(&B, &ad);
    char *tmp = make_temp_dir("lora-refused"), dir[600];
    snprintf(dir, sizeof dir, "%s/a", tmp);
    /* the base named by base_model_name_or_path is looked up in this (empty) cache only */
    char cache[700];
    snprintf(cache, sizeof cache, "%s/hf-cache", tmp);
    cr_assert_eq(mkdir(cache, 0755), 0);
    cr_assert_eq(setenv("HF_HUB_CACHE", cache, 1), 0);
    cr_assert_eq(mkdir(dir, 0755), 0);
    static const struct {
        const char *extra, *args;
        int code;
        const char *msg;
    } cases[] = {
        {"\"use_dora\": true, ", "--base " BASE, 3, "DoRA"},
        {"\"alpha_pattern\": {\"q_proj\": 32}, ", "--base " BASE, 3, "alpha_pattern"},
        {"\"fan_in_fan_out\": true, ", "--base " BASE, 3, "fan_in_fan_out"},
        {"", "--base " BASE " --type q4_K", 2, "f32, f16, bf16 or q8_0"},
        {"", "--base " BASE " --type nf4 --format bnb", 2, "a GGUF adapter"},
        {"", "--base testdata/tiny-qwen2", 3, "do not fit the base weight"},
        {"", "--base /nonexistent/base", 4, "/nonexistent/base"},
        {"", "", 4, "modelq-tests/tiny-llama"}, /* not in any local cache */
    };
    /* inspect shows the adapter as adapter_config.json describes it */
    adapter_write(&B, &ad, dir, "\"use_rslora\": true, ", false);
    struct cmd_result r = run_modelq("inspect %s --json", dir);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cJSON *j = cJSON_Parse(r.out), *a = cJSON_GetObjectItemCaseSensitive(j, "adapter");
    cr_assert(cJSON_IsObject(a), "%s", r.out);
    cr_expect_eq(cJSON_GetObjectItemCaseSensitive(a, "r")->valuedouble, RANK);
    cr_expect_eq(cJSON_GetObjectItemCaseSensitive(a, "alpha")->valuedouble, ALPHA);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "use_rslora")));
    cr_expect_float_eq(cJSON_GetObjectItemCaseSensitive(a, "scale")->valuedouble, ALPHA / sqrt((double)RANK), 1e-12);
    cJSON_Delete(j);
    cmd_result_free(&r);
    /* estimate: the adapter's size as a GGUF adapter equals what convert writes; with --lora the
     * LoRA rows count the adapter's own parameters */
    uint64_t params = 0;
    for (int k = 0; k < N_MOD; k++) params += (uint64_t)N_LAYER * RANK * (uint64_t)(B.mods[k].in + B.mods[k].out);
    char q8[700];
    snprintf(q8, sizeof q8, "%s/est-q8_0.gguf", tmp);
    convert_ok(dir, BASE, "q8_0", 0, q8);
    struct mq_model *g;
    struct mq_error err;
    cr_assert_eq(mq_model_open(q8, &g, &err), MQ_OK, "%s", err.msg);
    uint64_t q8_bytes = 0;
    for (size_t i = 0; i < g->n_tensors; i++) q8_bytes += g->tensors[i].nbytes;
    mq_model_free(g);
    unlink(q8);
    r = run_modelq("estimate %s --json", dir);
    cr_assert_eq(r.code, 0, "%s", r.err);
    j = cJSON_Parse(r.out);
    cr_assert_not_null(j);
    cr_expect_eq(cJSON_GetObjectItemCaseSensitive(j, "parameters")->valuedouble, (double)params);
    const cJSON *gb = cJSON_GetObjectItemCaseSensitive(j, "gguf_adapter_bytes");
    cr_expect_eq(cJSON_GetObjectItemCaseSensitive(gb, "q8_0")->valuedouble, (double)q8_bytes);
    cr_expect_eq(cJSON_GetObjectItemCaseSensitive(gb, "f16")->valuedouble, (double)params * 2);
    cJSON_Delete(j);
    cmd_result_free(&r);
    r = run_modelq("estimate %s --lora %s --json", BASE, dir);
    cr_assert_eq(r.code, 0, "%s", r.err);
    j = cJSON_Parse(r.out);
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(j, "training");
    cr_expect_eq(cJSON_GetObjectItemCaseSensitive(tr, "lora_parameters")->valuedouble, (double)params);
    cr_expect_eq(cJSON_GetObjectItemCaseSensitive(tr, "lora_rank")->valuedouble, RANK);
    cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(tr, "lora_from")->valuestring, "adapter");
    cJSON_Delete(j);
    cmd_result_free(&r);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        adapter_write(&B, &ad, dir, cases[i].extra, false);
        expect_refused(dir, cases[i].args, cases[i].code, cases[i].msg);
    }
    /* another PEFT method, a missing lora_B */
    adapter_write(&B, &ad, dir, "", true);
    expect_refused(dir, "--base " BASE, 3, "has no B matrix");
    char path[700];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f && fputs("{\"peft_type\": \"IA3\", \"r\": 8}\n", f) >= 0 && fclose(f) == 0);
    expect_refused(dir, "--base " BASE, 3, "LoRA adapters only");
    adapter_free(&ad);
    base_free(&B);
    remove_tree(tmp);
    free(tmp);
}

/* ---- merging while converting (--lora) ---------------------------------------------------- */


static void convert_merge(const char *in, const struct mq_lora_merge *l, size_t nl, const char *type, const char *out)
{
    struct mq_convert_report rep;
    tc_convert(&(struct tc_convert){.input = in, .output = out, .type = type, .loras = l, .n_loras = nl}, &rep);
    size_t merged = 0;
    for (size_t i = 0; i < rep.n_tensors; i++) merged += rep.tensors[i].lora_terms > 0;
    cr_assert_gt(merged, 0, "%s: no tensor reported as merged", out);
    mq_convert_report_free(&rep);
}

/* Max KL(llama.cpp on file `a` [+ adapter] || llama.cpp on file `b`) over the fixed sequences. */
static double max_kl_files(struct mq_llama_cpp *lc, const char *a, const char *adapter, const char *b, int n_vocab)
{
    char why[2400];
    struct mq_llama_cpp_model *ma = mq_llama_cpp_load(lc, a, NULL, why, sizeof why);
    cr_assert_not_null(ma, "%s", why);
    struct mq_llama_cpp_model *mb = mq_llama_cpp_load(lc, b, NULL, why, sizeof why);
    cr_assert_not_null(mb, "%s", why);
    int32_t ids[N_SEQ][SEQ_LEN];
    make_seqs(ids, n_vocab);
    float *la = malloc((size_t)SEQ_LEN * n_vocab * sizeof *la), *lb = malloc((size_t)SEQ_LEN * n_vocab * sizeof *lb);
    cr_assert(la && lb);
    double worst = 0;
    for (int s = 0; s < N_SEQ; s++) {
        struct mq_llama_cpp_ctx_opts oa = {.lora = adapter, .lora_scale = 1.0f};
        cr_assert_eq(mq_llama_cpp_eval(ma, &oa, ids[s], SEQ_LEN, la, why, sizeof why), 0, "%s", why);
        cr_assert_eq(mq_llama_cpp_eval(mb, NULL, ids[s], SEQ_LEN, lb, why, sizeof why), 0, "%s", why);
        for (int t = 0; t < SEQ_LEN; t++)
            worst = fmax(worst, logprob_kl(la + (size_t)t * n_vocab, lb + (size_t)t * n_vocab, n_vocab));
    }
    free(la);
    free(lb);
    mq_llama_cpp_free(ma);
    mq_llama_cpp_free(mb);
    return worst;
}

/*
** convert BASE --lora ADAPTER: the merged f32 file in llama.cpp equals the base file with the GGUF
** adapter in llama.cpp and the float64 reference of the merged weights; the QLoRA case (the base a
** bitsandbytes NF4 folder modelq wrote) equals the dequantized base with the adapter in llama.cpp.
*/
Test(lora_run, merged_while_converting_equals_the_adapter_in_llama_cpp)
{
    struct mq_llama_cpp *lc = need_llama_cpp();
    struct base B;
    base_load(&B);
    struct adapter ad;
    adapter_make(&B, &ad);
    char *tmp = make_temp_dir("lora-merge"), dir[600], base[700], adp[700], merged[700], zero[700], why[2400];
    snprintf(dir, sizeof dir, "%s/adapter", tmp);
    cr_assert_eq(mkdir(dir, 0755), 0);
    adapter_write(&B, &ad, dir, "", false);
    snprintf(base, sizeof base, "%s/base.gguf", tmp);
    snprintf(adp, sizeof adp, "%s/adapter.gguf", tmp);
    snprintf(merged, sizeof merged, "%s/merged.gguf", tmp);
    snprintf(zero, sizeof zero, "%s/merged-0.gguf", tmp);
    convert_ok(BASE, NULL, "f32", 0, base);
    convert_ok(dir, BASE, "f32", 0, adp);
    const struct mq_lora_merge one = {dir, 1.0}, none = {dir, 0.0};
    convert_merge(BASE, &one, 1, "f32", merged);
    convert_merge(BASE, &none, 1, "f32", zero);
    struct merged M;
    merge(&B, &ad, ALPHA / RANK, &M);
    struct mq_llama_cpp_model *mm = mq_llama_cpp_load(lc, merged, NULL, why, sizeof why);
    cr_assert_not_null(mm, "%s", why);
    const double vs_ref = max_kl(mm, NULL, 0.0f, &B, &M.w);
    mq_llama_cpp_free(mm);
    mm = mq_llama_cpp_load(lc, zero, NULL, why, sizeof why);
    cr_assert_not_null(mm, "%s", why);
    const double zero_vs_ref = max_kl(mm, NULL, 0.0f, &B, &M.w);
    mq_llama_cpp_free(mm);
    const double vs_adapter = max_kl_files(lc, base, adp, merged, B.cfg.n_vocab);

    /* a GGUF base (modelq's f32 file: GGUF names, Q/K rows permuted): the merged tensors are the
     * bytes of the merge from the Hugging Face folder (B's rows permuted like W's) */
    char from_gguf[700];
    snprintf(from_gguf, sizeof from_gguf, "%s/merged-from-gguf.gguf", tmp);
    convert_merge(base, &one, 1, "f32", from_gguf);
    size_t lh, lg;
    uint8_t *dh = tc_tensor_data(merged, &lh), *dg = tc_tensor_data(from_gguf, &lg);
    cr_expect(lh == lg && memcmp(dh, dg, lh) == 0, "merging into the GGUF base differs from merging into the folder");
    free(dh);
    free(dg);

    /* QLoRA: base NF4 (bitsandbytes folder) + adapter, merged onto the dequantized NF4 weights */
    char nf4[700], deq[700], qmerged[700];
    snprintf(nf4, sizeof nf4, "%s/base-nf4", tmp);
    snprintf(deq, sizeof deq, "%s/nf4-dequantized.gguf", tmp);
    snprintf(qmerged, sizeof qmerged, "%s/nf4-merged.gguf", tmp);
    convert_ok(BASE, NULL, "nf4", 0, nf4);
    convert_ok(nf4, NULL, "f32", 0, deq);
    convert_merge(nf4, &one, 1, "f32", qmerged);
    const double qlora = max_kl_files(lc, deq, adp, qmerged, B.cfg.n_vocab);
    const double qlora_control = max_kl_files(lc, deq, NULL, qmerged, B.cfg.n_vocab);
    fprintf(stderr, "--lora merged f32 file: max KL vs the merged float64 reference %.3e, vs base + GGUF adapter in "
            "llama.cpp %.3e; NF4 base: vs dequantized base + adapter %.3e (without the adapter %.3e); scale 0 vs "
            "the merged reference %.3e\n", vs_ref, vs_adapter, qlora, qlora_control, zero_vs_ref);
    cr_expect_leq(vs_ref, F32_KL_MAX);
    cr_expect_leq(vs_adapter, F32_KL_MAX);
    cr_expect_leq(qlora, F32_KL_MAX);
    cr_expect_gt(qlora_control, CONTROL_KL_MIN);
    cr_expect_gt(zero_vs_ref, CONTROL_KL_MIN);
    merged_free(&M);
    adapter_free(&ad);
    base_free(&B);
    remove_tree(tmp);
    free(tmp);
}

/* ---- merge arithmetic on a plain checkpoint ---------------------------------------------- */

#define LIN_OUT 48
#define LIN_IN 200 /* rows of 3 column tiles and a partial one (8 columns: the tile's scalar tail) */
#define R_LIN 4
#define R_CONV 6

/* Raw checkpoint (no config.json: names and layout unchanged): "lin.weight" [48, 256] (Linear,
 * [out, in]) and "conv.weight" [256, 48] (GPT-2 Conv1D, [in, out]), F32. */
static void write_plain_base(const char *dir, float *lin, float *conv)
{
    uint32_t x = 99;
    for (int i = 0; i < LIN_OUT * LIN_IN; i++) lin[i] = next_value(&x) * 8.0f;
    for (int i = 0; i < LIN_OUT * LIN_IN; i++) conv[i] = next_value(&x) * 8.0f;
    char hdr[512], path[700];
    const size_t bytes = (size_t)LIN_OUT * LIN_IN * 4;
    int hl = snprintf(hdr, sizeof hdr, "{\"lin.weight\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[0,%zu]},"
                      "\"conv.weight\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}}", LIN_OUT,
                      LIN_IN, bytes, LIN_IN, LIN_OUT, bytes, 2 * bytes);
    uint8_t *data = malloc(2 * bytes);
    cr_assert_not_null(data);
    memcpy(data, lin, bytes);
    memcpy(data + bytes, conv, bytes);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    cr_assert_eq(stw_write_raw(path, (uint64_t)hl, hdr, (size_t)hl, data, 2 * bytes), 0);
    free(data);
}

/* A one-module adapter folder: A [r, in], B [out, r] in `dtype` ("F32" or "BF16", values exact in BF16). */
static void write_one_adapter(const char *dir, const char *module, int r, int out, int in, const char *dtype,
                              const char *cfg_extra, float *A, float *Bm)
{
    uint32_t x = (uint32_t)r * 7919u;
    const bool bf = strcmp(dtype, "BF16") == 0;
    for (int i = 0; i < r * in; i++) A[i] = next_value(&x);
    for (int i = 0; i < out * r; i++) Bm[i] = next_value(&x);
    if (bf) /* keep values exact in BF16 */
        for (int i = 0; i < r * in + out * r; i++) {
            float *v = i < r * in ? &A[i] : &Bm[i - r * in];
            uint32_t u;
            memcpy(&u, v, 4);
            u &= 0xffff0000u;
            memcpy(v, &u, 4);
        }
    const size_t es = bf ? 2 : 4, na = (size_t)r * in, nb = (size_t)out * r;
    char hdr[1024], path[700];
    int hl = snprintf(hdr, sizeof hdr, "{\"base_model.model.%s.lora_A.weight\":{\"dtype\":\"%s\",\"shape\":[%d,%d],"
                      "\"data_offsets\":[0,%zu]},\"base_model.model.%s.lora_B.weight\":{\"dtype\":\"%s\",\"shape\":"
                      "[%d,%d],\"data_offsets\":[%zu,%zu]}}", module, dtype, r, in, na * es, module, dtype, out, r,
                      na * es, (na + nb) * es);
    uint8_t *data = malloc((na + nb) * es);
    cr_assert_not_null(data);
    for (size_t i = 0; i < na + nb; i++) {
        float v = i < na ? A[i] : Bm[i - na];
        uint32_t u;
        memcpy(&u, &v, 4);
        if (bf) {
            uint16_t h = (uint16_t)(u >> 16);
            memcpy(data + i * 2, &h, 2);
        } else {
            memcpy(data + i * 4, &u, 4);
        }
    }
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    cr_assert_eq(stw_write_raw(path, (uint64_t)hl, hdr, (size_t)hl, data, (na + nb) * es), 0);
    free(data);
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"peft_type\": \"LORA\", \"r\": %d, \"lora_alpha\": 12, %s\"target_modules\": [\"%s\"]}\n", r,
            cfg_extra, module);
    cr_assert_eq(fclose(f), 0);
}

/* All F32 values of tensor `name` of the GGUF at `path`. */
static float *gguf_f32(const char *path, const char *name, size_t n)
{
    struct mq_model *m;
    struct mq_error err;
    cr_assert_eq(mq_model_open(path, &m, &err), MQ_OK, "%s", err.msg);
    long t = mq_model_find(m, name);
    cr_assert_geq(t, 0, "%s: no %s", path, name);
    cr_assert_eq(m->tensors[t].numel, n);
    cr_assert_eq(m->tensors[t].dtype, MQ_DTYPE_F32);
    float *v = malloc(n * sizeof *v);
    cr_assert_not_null(v);
    cr_assert_eq(mq_model_read(m, (size_t)t, 0, v, n * 4, &err), MQ_OK, "%s", err.msg);
    mq_model_free(m);
    return v;
}


/*
** The merge against a float64 computation here: a Linear weight with an rsLoRA adapter (F32, scale
** 12/sqrt(4) x 1) and a GPT-2 Conv1D weight ([in, out]) with a fan_in_fan_out adapter (BF16, scale
** 12/6 x 0.7), merged in one conversion. Then the merged q4_K and q8_0 files equal quantizing the
** merged f32 values written as a checkpoint of their own (the merge happens before quantization,
** whatever the chunks).
*/
Test(lora_run, merge_arithmetic_rslora_fan_in_fan_out_and_quantized_outputs)
{
    char *tmp = make_temp_dir("lora-arith"), bdir[600], a1[600], a2[600], out[700], path[700];
    snprintf(bdir, sizeof bdir, "%s/base", tmp);
    snprintf(a1, sizeof a1, "%s/rs", tmp);
    snprintf(a2, sizeof a2, "%s/fan", tmp);
    cr_assert(mkdir(bdir, 0755) == 0 && mkdir(a1, 0755) == 0 && mkdir(a2, 0755) == 0);
    static float lin[LIN_OUT * LIN_IN], conv[LIN_OUT * LIN_IN], A1[R_LIN * LIN_IN], B1[LIN_OUT * R_LIN],
        A2[R_CONV * LIN_IN], B2[LIN_OUT * R_CONV];
    write_plain_base(bdir, lin, conv);
    write_one_adapter(a1, "lin", R_LIN, LIN_OUT, LIN_IN, "F32", "\"use_rslora\": true, ", A1, B1);
    write_one_adapter(a2, "conv", R_CONV, LIN_OUT, LIN_IN, "BF16", "\"fan_in_fan_out\": true, ", A2, B2);
    const struct mq_lora_merge l[2] = {{a1, 1.0}, {a2, 0.7}};
    snprintf(out, sizeof out, "%s/merged-f32.gguf", tmp);
    convert_merge(bdir, l, 2, "f32", out);
    float *gl = gguf_f32(out, "lin.weight", (size_t)LIN_OUT * LIN_IN), *gc = gguf_f32(out, "conv.weight", (size_t)LIN_OUT * LIN_IN);
    const double s1 = 12.0 / sqrt((double)R_LIN), s2 = 0.7 * 12.0 / R_CONV;
    double worst = 0, worst_nofan = 0, worst_plain_scale = 0;
    for (int o = 0; o < LIN_OUT; o++)
        for (int i = 0; i < LIN_IN; i++) {
            double d1 = 0, d2 = 0, d2t = 0;
            for (int q = 0; q < R_LIN; q++) d1 += (double)B1[o * R_LIN + q] * A1[q * LIN_IN + i];
            for (int q = 0; q < R_CONV; q++) d2 += (double)B2[o * R_CONV + q] * A2[q * LIN_IN + i];
            /* conv is stored [in, out]: element (i, o) */
            const double want1 = (double)lin[o * LIN_IN + i] + s1 * d1;
            const double want2 = (double)conv[i * LIN_OUT + o] + s2 * d2;
            worst = fmax(worst, fabs(gl[o * LIN_IN + i] - want1));
            worst = fmax(worst, fabs(gc[i * LIN_OUT + o] - want2));
            worst_plain_scale = fmax(worst_plain_scale, fabs(gl[o * LIN_IN + i] - ((double)lin[o * LIN_IN + i] +
                                                                                    12.0 / R_LIN * d1)));
            /* control: B A added untransposed (fan_in_fan_out ignored), on the square part that has room */
            if (i < LIN_OUT) {
                for (int q = 0; q < R_CONV; q++) d2t += (double)B2[o * R_CONV + q] * A2[q * LIN_IN + i];
                worst_nofan = fmax(worst_nofan, fabs(gc[o * LIN_OUT + i] - ((double)conv[o * LIN_OUT + i] + s2 * d2t)));
            }
        }
    fprintf(stderr, "--lora arithmetic vs float64: max |error| %.3e (controls: alpha/r instead of rsLoRA %.3e, "
            "fan_in_fan_out ignored %.3e)\n", worst, worst_plain_scale, worst_nofan);
    cr_expect_leq(worst, 2e-6);
    cr_expect_gt(worst_plain_scale, 1e-3);
    cr_expect_gt(worst_nofan, 1e-3);

    /* merged q4_K / q8_0 == quantizing the merged values as a checkpoint of their own */
    char pre[600];
    snprintf(pre, sizeof pre, "%s/premerged", tmp);
    cr_assert_eq(mkdir(pre, 0755), 0);
    write_plain_base(pre, lin, conv); /* same names and layout ... */
    {
        /* ... with the merged values */
        char hdr[512];
        const size_t bytes = (size_t)LIN_OUT * LIN_IN * 4;
        int hl = snprintf(hdr, sizeof hdr, "{\"lin.weight\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[0,"
                          "%zu]},\"conv.weight\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}}",
                          LIN_OUT, LIN_IN, bytes, LIN_IN, LIN_OUT, bytes, 2 * bytes);
        uint8_t *data = malloc(2 * bytes);
        cr_assert_not_null(data);
        memcpy(data, gl, bytes);
        memcpy(data + bytes, gc, bytes);
        snprintf(path, sizeof path, "%s/model.safetensors", pre);
        cr_assert_eq(stw_write_raw(path, (uint64_t)hl, hdr, (size_t)hl, data, 2 * bytes), 0);
        free(data);
    }
    static const char *const types[] = {"q4_K", "q8_0"};
    for (size_t k = 0; k < 2; k++) {
        char direct[700], viaf32[700];
        snprintf(direct, sizeof direct, "%s/merged-%s.gguf", tmp, types[k]);
        snprintf(viaf32, sizeof viaf32, "%s/premerged-%s.gguf", tmp, types[k]);
        convert_merge(bdir, l, 2, types[k], direct);
        convert_ok(pre, NULL, types[k], 0, viaf32);
        size_t la, lb;
        uint8_t *da = tc_tensor_data(direct, &la), *db = tc_tensor_data(viaf32, &lb);
        cr_expect(la == lb && memcmp(da, db, la) == 0, "%s: merged while converting differs from the pre-merged file",
                  types[k]);
        free(da);
        free(db);
    }
    /* the AVX2 kernel and the portable one give the same bytes (CLI: MODELQ_NO_SIMD=1 forces portable) */
    char simd[700], portable[700];
    snprintf(simd, sizeof simd, "%s/simd.gguf", tmp);
    snprintf(portable, sizeof portable, "%s/portable.gguf", tmp);
    struct cmd_result r = run_modelq("convert %s --lora %s --lora %s:0.7 -o %s --type f32", bdir, a1, a2, simd);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    cr_assert_eq(setenv("MODELQ_NO_SIMD", "1", 1), 0);
    r = run_modelq("convert %s --lora %s --lora %s:0.7 -o %s --type f32", bdir, a1, a2, portable);
    unsetenv("MODELQ_NO_SIMD");
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    size_t ls, lp;
    uint8_t *ds = tc_tensor_data(simd, &ls), *dp = tc_tensor_data(portable, &lp);
    cr_expect(ls == lp && memcmp(ds, dp, ls) == 0, "the SIMD merge differs from the portable one");
    free(dp);
    /* chunks of 3 rows (the one-row path), of 9 rows (one 6-row tile and three rows alone) and of 1000
     * elements (pieces of rows) give the same bytes as the default chunks (the 6-row tile) */
    static const char *const chunks[] = {"600", "1800", "1000"};
    for (size_t c = 0; c < 3; c++) {
        cr_assert_eq(setenv("MODELQ_CHUNK_ELEMS", chunks[c], 1), 0);
        r = run_modelq("convert %s --lora %s --lora %s:0.7 -o %s --type f32 --force", bdir, a1, a2, portable);
        unsetenv("MODELQ_CHUNK_ELEMS");
        cr_assert_eq(r.code, 0, "%s", r.err);
        cmd_result_free(&r);
        dp = tc_tensor_data(portable, &lp);
        cr_expect(ls == lp && memcmp(ds, dp, ls) == 0, "chunks of %s elements merge differently", chunks[c]);
        free(dp);
    }
    free(ds);
    free(gl);
    free(gc);
    remove_tree(tmp);
    free(tmp);
}

Test(lora_run, merge_refusals)
{
    char *tmp = make_temp_dir("lora-merge-refused"), dir[600], out[700], gguf[700];
    snprintf(dir, sizeof dir, "%s/ad", tmp);
    cr_assert_eq(mkdir(dir, 0755), 0);
    static float A[R_LIN * LIN_IN], Bm[LIN_OUT * R_LIN];
    write_one_adapter(dir, "model.layers.0.self_attn.q_proj", R_LIN, LIN_OUT, LIN_IN, "F32", "", A, Bm);
    snprintf(out, sizeof out, "%s/out.gguf", tmp);
    snprintf(gguf, sizeof gguf, "%s/base.gguf", tmp);
    convert_ok(BASE, NULL, "f32", 0, gguf);
    static const struct {
        const char *input, *extra;
        int code;
        const char *msg;
    } cases[] = {
        {BASE, "", 3, "do not fit"},                 /* q_proj is [256, 256], the adapter says [48, 256] */
        {BASE, "--lora " BASE, 2, "not a LoRA adapter folder"},
        {NULL, "", 3, "do not fit"}, /* the GGUF base: the same check through its GGUF names */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *in = cases[i].input ? cases[i].input : gguf;
        struct cmd_result r = strcmp(cases[i].extra, "") != 0
                                  ? run_modelq("convert %s %s -o %s --type f32", in, cases[i].extra, out)
                                  : run_modelq("convert %s --lora %s:0.5 -o %s --type f32", in, dir, out);
        cr_expect_eq(r.code, cases[i].code, "case %zu: exit %d: %s", i, r.code, r.err);
        cr_expect(strstr(r.err, cases[i].msg) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, r.err, cases[i].msg);
        cr_expect_neq(access(out, F_OK), 0, "case %zu: output written", i);
        cmd_result_free(&r);
    }
    remove_tree(tmp);
    free(tmp);
}
