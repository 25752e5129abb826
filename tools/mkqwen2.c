/*
** mkqwen2.c - writes testdata/tiny-qwen2/, a tiny deterministic Qwen2ForCausalLM checkpoint with
** tied embeddings (tests/test_llama_run.c regenerates it and compares every byte).
**
** Usage: mkqwen2 OUTDIR [TOKENIZER_DIR]
**   OUTDIR/config.json, model.safetensors, and tokenizer.json + tokenizer_config.json copied
**   unchanged from TOKENIZER_DIR (default testdata/tiny-llama: same 384-token vocabulary).
**
** Model: hidden 256, intermediate 256, 2 layers, 4 query heads x head_dim 64, 2 KV heads, q/k/v
** projections WITH biases (o_proj and the MLP without, as in Qwen2), tie_word_embeddings true (no
** lm_head.weight: the output layer is the embedding matrix), rms_norm_eps 1e-6, rope_theta 1e6,
** BF16. About 0.9 M parameters, 1.8 MB.
**
** Determinism: every value is a small integer m (|m| < 128, from splitmix64 seeded by the tensor
** name) times a power of two, which is exactly a BF16 number; ldexpf is exact for it and the
** BF16 bits are the top half of the float's (checked). Floating point beyond that is used only by
** the self-check below, which decides whether the tool succeeds, never what it writes.
**
** Scales: with tied embeddings the logits are embedding . final hidden state, so the embedding
** scale (2^-8) and how much attention and MLP add to the residual stream (o_proj 2^-13,
** down_proj 2^-14; every block input is RMS-normed, so only these ratios matter) set how peaked
** the next-token distributions are: top probability about 0.5. q 2^-7 and k 2^-8 give attention
** scores with a standard deviation near 8, and the q/k/v biases (2^-3) are as large as the
** projections' outputs, so a loader that dropped them (or a reference that ignored them) is
** visibly wrong.
** Before writing, the tool runs tests/helpers/llama_ref.c on fixed token sequences and fails
** unless every layer's attention-score std is >= 1 and removing the biases moves some logit of
** every sequence by >= 3 (measured: 4.7 to 5.4).
*/
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devutil.h"
#include "stwrite.h"

/* The reference forward pass, from its single source (tools are one .c file each). */
#include "../tests/helpers/llama_ref.c"

enum {
    N_EMBD = 256,
    N_FF = 256,
    N_LAYER = 2,
    N_HEAD = 4,
    N_KV_HEAD = 2,
    HEAD_DIM = 64,
    N_VOCAB = 384,
    TOK_BOS = 382,
    TOK_EOS = 383,
    MAX_POS = 2048,
    MAX_TENSORS = 32
};
#define RMS_EPS 1e-6
#define ROPE_THETA 1000000.0
#define SEED 0x6d6f64656c712d32ull /* "modelq-2" */

/* ---- deterministic values ------------------------------------------------------------------ */

struct tensor {
    char name[80];
    uint32_t rows, cols; /* cols 0: 1-D */
    float *v;            /* exactly representable in BF16 */
};

static size_t numel(const struct tensor *t) { return (size_t)t->rows * (t->cols ? t->cols : 1); }

static uint16_t bf16_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if (u & 0xFFFF) dev_die("internal: %g is not a BF16 value", (double)f);
    return (uint16_t)(u >> 16);
}

/* offset + uniform integer in [-r, r], times 2^e (r + |offset| < 128 keeps it within BF16's 8 bits). */
static void fill(struct tensor *t, int offset, int r, int e)
{
    uint64_t s = dev_fnv1a64(t->name) ^ SEED; /* values do not depend on tensor order */
    for (size_t i = 0; i < numel(t); i++) {
        int m = offset + (int)(dev_splitmix64(&s) % (uint64_t)(2 * r + 1)) - r;
        t->v[i] = ldexpf((float)m, e);
    }
}

/* "model.layers.L.SUFFIX", or SUFFIX alone when layer < 0 */
static void tensor_name(char *out, size_t cap, int layer, const char *suffix)
{
    if (layer < 0) snprintf(out, cap, "%s", suffix);
    else snprintf(out, cap, "model.layers.%d.%s", layer, suffix);
}

static struct tensor *add(struct tensor *ts, size_t *n, uint32_t rows, uint32_t cols, int layer, const char *suffix)
{
    if (*n >= MAX_TENSORS) dev_die("internal: too many tensors");
    struct tensor *t = &ts[(*n)++];
    tensor_name(t->name, sizeof t->name, layer, suffix);
    t->rows = rows;
    t->cols = cols;
    t->v = dev_xcalloc(numel(t), sizeof *t->v);
    return t;
}

/* Scales: (range r, exponent e) of each kind; norms are (64 + [-8, 8]) / 64. */
enum { EMB_R = 31, EMB_E = -8, Q_R = 31, Q_E = -7, K_R = 31, K_E = -8, V_R = 31, V_E = -7, B_R = 31, B_E = -3,
       O_R = 31, O_E = -13, GU_R = 31, GU_E = -7, D_R = 31, D_E = -14 };

static size_t build(struct tensor *ts)
{
    size_t n = 0;
    fill(add(ts, &n, N_VOCAB, N_EMBD, -1, "model.embed_tokens.weight"), 0, EMB_R, EMB_E);
    for (int l = 0; l < N_LAYER; l++) {
        fill(add(ts, &n, N_EMBD, 0, l, "input_layernorm.weight"), 64, 8, -6);
        fill(add(ts, &n, N_HEAD * HEAD_DIM, N_EMBD, l, "self_attn.q_proj.weight"), 0, Q_R, Q_E);
        fill(add(ts, &n, N_HEAD * HEAD_DIM, 0, l, "self_attn.q_proj.bias"), 0, B_R, B_E);
        fill(add(ts, &n, N_KV_HEAD * HEAD_DIM, N_EMBD, l, "self_attn.k_proj.weight"), 0, K_R, K_E);
        fill(add(ts, &n, N_KV_HEAD * HEAD_DIM, 0, l, "self_attn.k_proj.bias"), 0, B_R, B_E);
        fill(add(ts, &n, N_KV_HEAD * HEAD_DIM, N_EMBD, l, "self_attn.v_proj.weight"), 0, V_R, V_E);
        fill(add(ts, &n, N_KV_HEAD * HEAD_DIM, 0, l, "self_attn.v_proj.bias"), 0, B_R, B_E);
        fill(add(ts, &n, N_EMBD, N_HEAD * HEAD_DIM, l, "self_attn.o_proj.weight"), 0, O_R, O_E);
        fill(add(ts, &n, N_EMBD, 0, l, "post_attention_layernorm.weight"), 64, 8, -6);
        fill(add(ts, &n, N_FF, N_EMBD, l, "mlp.gate_proj.weight"), 0, GU_R, GU_E);
        fill(add(ts, &n, N_FF, N_EMBD, l, "mlp.up_proj.weight"), 0, GU_R, GU_E);
        fill(add(ts, &n, N_EMBD, N_FF, l, "mlp.down_proj.weight"), 0, D_R, D_E);
    }
    fill(add(ts, &n, N_EMBD, 0, -1, "model.norm.weight"), 64, 8, -6);
    return n;
}

static const float *find(const struct tensor *ts, size_t n, int layer, const char *suffix)
{
    char name[80];
    tensor_name(name, sizeof name, layer, suffix);
    for (size_t i = 0; i < n; i++)
        if (strcmp(ts[i].name, name) == 0) return ts[i].v;
    dev_die("internal: no tensor %s", name);
}

/* ---- self-check ---------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int self_check(const struct tensor *ts, size_t n)
{
    struct llama_ref_config cfg = {N_VOCAB, N_EMBD, N_FF, N_LAYER, N_HEAD, N_KV_HEAD, HEAD_DIM, RMS_EPS, ROPE_THETA};
    struct llama_ref_layer layers[N_LAYER];
    struct llama_ref_bias bias[N_LAYER];
    for (int l = 0; l < N_LAYER; l++) {
        layers[l] = (struct llama_ref_layer){
            find(ts, n, l, "input_layernorm.weight"), find(ts, n, l, "self_attn.q_proj.weight"),
            find(ts, n, l, "self_attn.k_proj.weight"), find(ts, n, l, "self_attn.v_proj.weight"),
            find(ts, n, l, "self_attn.o_proj.weight"),
            find(ts, n, l, "post_attention_layernorm.weight"),
            find(ts, n, l, "mlp.gate_proj.weight"), find(ts, n, l, "mlp.up_proj.weight"),
            find(ts, n, l, "mlp.down_proj.weight")};
        bias[l] = (struct llama_ref_bias){find(ts, n, l, "self_attn.q_proj.bias"),
                                          find(ts, n, l, "self_attn.k_proj.bias"),
                                          find(ts, n, l, "self_attn.v_proj.bias")};
    }
    const float *embed = find(ts, n, -1, "model.embed_tokens.weight");
    struct llama_ref_weights w = {embed, layers, find(ts, n, -1, "model.norm.weight"), embed}; /* tied */
    struct llama_ref_stats stats;
    llama_ref_stats_init(&stats);
    int ok = 1;
    enum { T = 16 };
    for (int s = 0; s < 3; s++) {
        int32_t ids[T];
        uint64_t st = SEED + (uint64_t)s;
        for (int i = 0; i < T; i++) ids[i] = (int32_t)(dev_splitmix64(&st) % TOK_BOS);
        if (s == 0) ids[0] = TOK_BOS;
        float *lg = dev_xcalloc((size_t)T * N_VOCAB, sizeof *lg), *nob = dev_xcalloc((size_t)T * N_VOCAB, sizeof *nob);
        if (llama_ref_forward_bias(&cfg, &w, bias, ids, T, lg, &stats) != 0 ||
            llama_ref_forward(&cfg, &w, ids, T, nob, NULL) != 0)
            dev_die("reference forward pass failed");
        double top[T], sum = 0.0, delta = 0.0;
        for (int t = 0; t < T; t++) {
            top[t] = llama_ref_top_prob(lg + (size_t)t * N_VOCAB, N_VOCAB, NULL);
            sum += top[t];
            for (int k = 0; k < N_VOCAB; k++)
                delta = fmax(delta, fabs((double)lg[(size_t)t * N_VOCAB + k] - (double)nob[(size_t)t * N_VOCAB + k]));
        }
        qsort(top, T, sizeof top[0], cmp_double);
        printf("check %d: top probability mean %.3f median %.3f min %.3f; without the q/k/v biases logits move by up "
               "to %.2f\n", s, sum / T, top[T / 2], top[0], delta);
        if (delta < 3.0) {
            fprintf(stderr, "mkqwen2: FAILED: check %d: the biases move logits by only %.3f\n", s, delta);
            ok = 0;
        }
        free(lg);
        free(nob);
    }
    double sd_min = llama_ref_stats_min_layer_std(&stats);
    printf("attention-logit std %.3f (smallest per layer %.3f)\n", llama_ref_stats_std(&stats), sd_min);
    if (sd_min < 1.0) {
        fprintf(stderr, "mkqwen2: FAILED: attention-logit std %.3f < 1 in some layer\n", sd_min);
        ok = 0;
    }
    return ok;
}

/* ---- files --------------------------------------------------------------------------------- */


/* config.json in transformers' form (indent 2, sorted keys). */
static void write_config(const char *dir)
{
    char text[2048];
    int len = snprintf(text, sizeof text,
                       "{\n"
                       "  \"architectures\": [\n    \"Qwen2ForCausalLM\"\n  ],\n"
                       "  \"attention_dropout\": 0.0,\n"
                       "  \"bos_token_id\": %d,\n"
                       "  \"eos_token_id\": %d,\n"
                       "  \"hidden_act\": \"silu\",\n"
                       "  \"hidden_size\": %d,\n"
                       "  \"initializer_range\": 0.02,\n"
                       "  \"intermediate_size\": %d,\n"
                       "  \"max_position_embeddings\": %d,\n"
                       "  \"max_window_layers\": %d,\n"
                       "  \"model_type\": \"qwen2\",\n"
                       "  \"num_attention_heads\": %d,\n"
                       "  \"num_hidden_layers\": %d,\n"
                       "  \"num_key_value_heads\": %d,\n"
                       "  \"rms_norm_eps\": 1e-06,\n"
                       "  \"rope_scaling\": null,\n"
                       "  \"rope_theta\": 1000000.0,\n"
                       "  \"sliding_window\": %d,\n"
                       "  \"tie_word_embeddings\": true,\n"
                       "  \"torch_dtype\": \"bfloat16\",\n"
                       "  \"transformers_version\": \"4.46.0\",\n"
                       "  \"use_cache\": true,\n"
                       "  \"use_sliding_window\": false,\n"
                       "  \"vocab_size\": %d\n"
                       "}\n",
                       TOK_BOS, TOK_EOS, N_EMBD, N_FF, MAX_POS, N_LAYER, N_HEAD, N_LAYER, N_KV_HEAD, MAX_POS, N_VOCAB);
    if (len < 0 || (size_t)len >= sizeof text) dev_die("internal: config too long");
    dev_write_file(dir, "config.json", text, (size_t)len);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const struct tensor *const *)a)->name, (*(const struct tensor *const *)b)->name);
}

/* model.safetensors: header {"__metadata__":{"format":"pt"}, tensors by name} padded with spaces
** to a multiple of 8, then the BF16 data little-endian in the same order. */
static void write_safetensors(const char *dir, const struct tensor *ts, size_t n)
{
    const struct tensor *sel[MAX_TENSORS];
    for (size_t i = 0; i < n; i++) sel[i] = &ts[i];
    qsort(sel, n, sizeof sel[0], cmp_name);
    size_t cap = 64 + n * 160, hl = 0, total = 0;
    char *hdr = dev_xcalloc(cap, 1);
    hl += (size_t)snprintf(hdr + hl, cap - hl, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < n; i++) {
        size_t bytes = numel(sel[i]) * 2;
        char shape[32];
        if (sel[i]->cols) snprintf(shape, sizeof shape, "%u,%u", sel[i]->rows, sel[i]->cols);
        else snprintf(shape, sizeof shape, "%u", sel[i]->rows);
        hl += (size_t)snprintf(hdr + hl, cap - hl,
                               ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%s],\"data_offsets\":[%zu,%zu]}",
                               sel[i]->name, shape, total, total + bytes);
        total += bytes;
        if (hl >= cap) dev_die("internal: header too long");
    }
    hdr[hl++] = '}';
    while ((8 + hl) % 8) hdr[hl++] = ' ';
    uint8_t *data = dev_xcalloc(total, 1);
    size_t off = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < numel(sel[i]); k++) {
            uint16_t b = bf16_bits(sel[i]->v[k]);
            data[off++] = (uint8_t)(b & 0xFF);
            data[off++] = (uint8_t)(b >> 8);
        }
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/model.safetensors", dir) >= sizeof path) dev_die("path too long");
    if (stw_write_raw(path, hl, hdr, hl, data, total) != 0) dev_die("%s: write failed: %s", path, strerror(errno));
    printf("wrote %s: %zu tensors, %zu bytes of tensor data\n", path, n, total);
    free(hdr);
    free(data);
}

int main(int argc, char **argv)
{
    dev_set_prog("mkqwen2");
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: mkqwen2 OUTDIR [TOKENIZER_DIR]\n");
        return 2;
    }
    const char *out = argv[1], *tok = argc == 3 ? argv[2] : "testdata/tiny-llama";
    struct tensor ts[MAX_TENSORS];
    size_t n = build(ts);
    if (!self_check(ts, n)) return 1;
    dev_make_dir(out);
    write_config(out);
    dev_copy_file(tok, out, "tokenizer.json");
    dev_copy_file(tok, out, "tokenizer_config.json");
    write_safetensors(out, ts, n);
    for (size_t i = 0; i < n; i++) free(ts[i].v);
    return 0;
}
