/*
** mkfamily.c - writes a small deterministic random checkpoint of one model family of issue 10,
** with that family's real tensor names and config.json keys (tests/test_families.c makes them
** at test time in a temporary folder; nothing is committed).
**
** Usage: mkfamily FAMILY OUTDIR [--shards N] [--tokenizer DIR]
**   FAMILY: qwen3 qwen3moe mixtral gemma2 gemma3 phi3 phi4mini smollm3 granite olmo2
**   OUTDIR/config.json (the key set of a published config of that family, sizes shrunk, keys
**   sorted as transformers writes them), model.safetensors (or N shards
**   model-0000i-of-0000N.safetensors + model.safetensors.index.json), and tokenizer.json +
**   tokenizer_config.json copied unchanged from DIR (default testdata/tiny-llama: 384 tokens).
**
** Key sets copied from: Qwen/Qwen3-0.6B, Qwen/Qwen3-30B-A3B, mistralai/Mixtral-8x7B-v0.1,
** google/gemma-2-2b, google/gemma-3-1b-it, microsoft/Phi-3-mini-4k-instruct,
** microsoft/Phi-4-mini-instruct (partial_rotary_factor 0.75, longrope with 24 short and long
** factors), HuggingFaceTB/SmolLM3-3B, ibm-granite/granite-3.0-2b-instruct, allenai/OLMo-2-0425-1B.
**
** Shapes (vocabulary 384, hidden 256 everywhere, BF16):
**   family    layers heads kv head_dim ffn  experts  other
**   qwen3       3     4    2    96     512    -      tied; q/k norms
**   qwen3moe    2     4    2    96     512   8 top 2 width 256, norm_topk_prob
**   mixtral     2     8    2    32     256   8 top 2
**   gemma2      4     4    2    96     512    -      sliding_window 8 (even layers), softcaps 50 / 30
**   gemma3      6     4    1    96     512    -      sliding_window 8 (layers 0-4), local base 1e4
**   phi3        2     8    4    32     512    -      fused qkv / gate_up; sliding_window 2047
**   phi4mini    2     4    2    64     512    -      partial rotary 48 of 64, longrope, tied
**   smollm3     4     4    2    64     512    -      layer 3 without RoPE, tied
**   granite     2     4    2    64     512    -      multipliers 12 / 0.22 / 1/64, logits / 8, tied
**   olmo2       2     4    2    64     512    -      post-norms only, full-width q/k norms
** head_dim differs from hidden/heads where the family has a head_dim key (Qwen3, Gemma); the
** sliding windows are shorter than the test's sequences (except Phi-3's: llama.cpp turns Phi-3
** SWA off, see test_families.c).
**
** Values: every weight is a small integer m (|m| <= 160, from splitmix64 seeded by the tensor
** name) times a power of two: exactly a BF16 number (checked). Norm weights sit near 1 (Gemma
** stores w - 1: near 0), q/k norms near 2 so attention scores spread; the scale exponents per
** family (struct scales) were chosen so that, in the reference, next-token distributions are
** peaked (median top probability in [0.2, 0.95]) and every layer's attention scores have a standard deviation >= 1. Experts differ (their
** own seeds) and the router's logits spread by several units, so routing changes token to token.
** Before writing, the tool runs the reference (tests/helpers/decoder_ref.c through
** family_ref.c, on the config.json text it is about to write) and fails unless those hold.
*/
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devutil.h"
#include "stwrite.h"

/* The reference, from its single source (tools are one .c file each). */
#include "../tests/helpers/llama_ref.c"
#include "../tests/helpers/decoder_ref.c"
#include "../tests/helpers/family_ref.c"
#include "../tests/helpers/why.c"

enum { N_VOCAB = 384, TOK_BOS = 382, TOK_EOS = 383, N_EMBD = 256, MAX_TENSORS = 512, MAX_SHARDS = 8 };
#define SEED 0x6d6f64656c712d66ull /* "modelq-f" */

enum kind { K_QWEN3, K_QWEN3MOE, K_MIXTRAL, K_GEMMA2, K_GEMMA3, K_PHI3, K_PHI4MINI, K_SMOLLM3, K_GRANITE, K_OLMO2 };

/* Exponents e of the uniform integers in [-31, 31] * 2^e per weight kind. */
struct scales {
    int emb, q, k, v, o, gu, down, head, router;
};

struct family {
    const char *name;
    enum kind kind;
    int layers, heads, kv, head_dim, ffn, experts, used, ffn_exp;
    bool tied;
    struct scales s;
};

static const struct family families[] = {
    {"qwen3", K_QWEN3, 3, 4, 2, 96, 512, 0, 0, 0, true, {-7, -6, -6, -6, -12, -7, -13, 0, 0}},
    {"qwen3moe", K_QWEN3MOE, 2, 4, 2, 96, 512, 8, 2, 256, false, {-8, -6, -6, -6, -11, -7, -11, -6, -6}},
    {"mixtral", K_MIXTRAL, 2, 8, 2, 32, 256, 8, 2, 256, false, {-8, -7, -8, -7, -12, -7, -11, -6, -6}},
    {"gemma2", K_GEMMA2, 4, 4, 2, 96, 512, 0, 0, 0, true, {-8, -7, -7, -6, -8, -7, -8, 0, 0}},
    {"gemma3", K_GEMMA3, 6, 4, 1, 96, 512, 0, 0, 0, true, {-8, -6, -6, -6, -8, -7, -8, 0, 0}},
    {"phi3", K_PHI3, 2, 8, 4, 32, 512, 0, 0, 0, false, {-8, -8, -7, -7, -12, -7, -12, -6, 0}},
    {"phi4mini", K_PHI4MINI, 2, 4, 2, 64, 512, 0, 0, 0, true, {-7, -8, -7, -7, -12, -7, -12, 0, 0}},
    {"smollm3", K_SMOLLM3, 4, 4, 2, 64, 512, 0, 0, 0, true, {-7, -7, -7, -7, -12, -7, -12, 0, 0}},
    {"granite", K_GRANITE, 2, 4, 2, 64, 512, 0, 0, 0, true, {-6, -6, -5, -7, -7, -7, -7, 0, 0}},
    {"olmo2", K_OLMO2, 2, 4, 2, 64, 512, 0, 0, 0, false, {-8, -6, -6, -6, -8, -7, -8, -6, 0}},
};

/* ---- config.json ---------------------------------------------------------------------------- */

/* One "key": value line; the lines are sorted by key before writing (transformers sorts keys). */
struct kv {
    char key[64];
    char *val;
};
struct config {
    struct kv kv[64];
    int n;
};

static void put(struct config *c, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put(struct config *c, const char *key, const char *fmt, ...)
{
    if (c->n >= 64) dev_die("internal: too many config keys");
    struct kv *e = &c->kv[c->n++];
    snprintf(e->key, sizeof e->key, "%s", key);
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof tmp) dev_die("internal: config value too long");
    e->val = strdup(tmp);
    if (!e->val) dev_die("out of memory");
}

static int cmp_kv(const void *a, const void *b) { return strcmp(((const struct kv *)a)->key, ((const struct kv *)b)->key); }

/* LongRoPE factors: 24 = 48 rotated dims / 2; short near 1, long rising to 16 (dyadic values). */
static void longrope_list(struct dev_buf *b, bool lng)
{
    dev_buf_puts(b, "[");
    for (int i = 0; i < 24; i++) {
        double f = lng ? 1.0 + (double)(i * i) / 36.0 : 1.0 + (double)i / 64.0;
        f = round(f * 256.0) / 256.0;
        dev_buf_printf(b, "%s%.17g", i ? ", " : "", f);
    }
    dev_buf_puts(b, "]");
}

static void build_config(const struct family *f, struct config *c)
{
    const int E = N_EMBD, H = f->heads, KV = f->kv, D = f->head_dim;
    const char *arch = NULL, *mt = NULL;
    switch (f->kind) {
    case K_QWEN3: arch = "Qwen3ForCausalLM", mt = "qwen3"; break;
    case K_QWEN3MOE: arch = "Qwen3MoeForCausalLM", mt = "qwen3_moe"; break;
    case K_MIXTRAL: arch = "MixtralForCausalLM", mt = "mixtral"; break;
    case K_GEMMA2: arch = "Gemma2ForCausalLM", mt = "gemma2"; break;
    case K_GEMMA3: arch = "Gemma3ForCausalLM", mt = "gemma3_text"; break;
    case K_PHI3: case K_PHI4MINI: arch = "Phi3ForCausalLM", mt = "phi3"; break;
    case K_SMOLLM3: arch = "SmolLM3ForCausalLM", mt = "smollm3"; break;
    case K_GRANITE: arch = "GraniteForCausalLM", mt = "granite"; break;
    case K_OLMO2: arch = "Olmo2ForCausalLM", mt = "olmo2"; break;
    }
    put(c, "architectures", "[\n    \"%s\"\n  ]", arch);
    put(c, "model_type", "\"%s\"", mt);
    put(c, "attention_dropout", "0.0");
    put(c, "hidden_size", "%d", E);
    put(c, "intermediate_size", "%d", f->ffn);
    put(c, "initializer_range", "0.02");
    put(c, "num_attention_heads", "%d", H);
    put(c, "num_hidden_layers", "%d", f->layers);
    put(c, "num_key_value_heads", "%d", KV);
    put(c, "vocab_size", "%d", N_VOCAB);
    put(c, "use_cache", "true");
    if (f->kind != K_GEMMA2 && f->kind != K_GEMMA3) put(c, "tie_word_embeddings", "%s", f->tied ? "true" : "false");
    put(c, "torch_dtype", "\"bfloat16\"");
    const bool bos = f->kind != K_SMOLLM3;
    if (bos) put(c, "bos_token_id", "%d", TOK_BOS);
    else put(c, "bos_token_id", "null");
    put(c, "eos_token_id", "%d", TOK_EOS);
    if (f->kind != K_MIXTRAL && f->kind != K_GEMMA2 && f->kind != K_PHI3 && f->kind != K_PHI4MINI)
        put(c, "attention_bias", "false");
    switch (f->kind) {
    case K_QWEN3:
    case K_QWEN3MOE:
        put(c, "head_dim", "%d", D);
        put(c, "hidden_act", "\"silu\"");
        put(c, "max_position_embeddings", "40960");
        put(c, "max_window_layers", "%d", f->layers);
        put(c, "rms_norm_eps", "1e-06");
        put(c, "rope_scaling", "null");
        put(c, "rope_theta", "1000000.0");
        put(c, "sliding_window", "null");
        put(c, "transformers_version", "\"4.51.0\"");
        put(c, "use_sliding_window", "false");
        if (f->kind == K_QWEN3MOE) {
            put(c, "decoder_sparse_step", "1");
            put(c, "mlp_only_layers", "[]");
            put(c, "moe_intermediate_size", "%d", f->ffn_exp);
            put(c, "norm_topk_prob", "true");
            put(c, "num_experts", "%d", f->experts);
            put(c, "num_experts_per_tok", "%d", f->used);
            put(c, "output_router_logits", "false");
            put(c, "router_aux_loss_coef", "0.001");
        }
        break;
    case K_MIXTRAL:
        put(c, "hidden_act", "\"silu\"");
        put(c, "max_position_embeddings", "32768");
        put(c, "num_experts_per_tok", "%d", f->used);
        put(c, "num_local_experts", "%d", f->experts);
        put(c, "output_router_logits", "false");
        put(c, "rms_norm_eps", "1e-05");
        put(c, "rope_theta", "1000000.0");
        put(c, "router_aux_loss_coef", "0.02");
        put(c, "sliding_window", "null");
        put(c, "transformers_version", "\"4.36.0.dev0\"");
        break;
    case K_GEMMA2:
        put(c, "attention_bias", "false");
        put(c, "attn_logit_softcapping", "50.0");
        put(c, "cache_implementation", "\"hybrid\"");
        put(c, "final_logit_softcapping", "30.0");
        put(c, "head_dim", "%d", D);
        put(c, "hidden_act", "\"gelu_pytorch_tanh\"");
        put(c, "hidden_activation", "\"gelu_pytorch_tanh\"");
        put(c, "max_position_embeddings", "8192");
        put(c, "pad_token_id", "0");
        put(c, "query_pre_attn_scalar", "%d", D);
        put(c, "rms_norm_eps", "1e-06");
        put(c, "rope_theta", "10000.0");
        put(c, "sliding_window", "8");
        put(c, "transformers_version", "\"4.42.4\"");
        break;
    case K_GEMMA3:
        put(c, "attn_logit_softcapping", "null");
        put(c, "cache_implementation", "\"hybrid\"");
        put(c, "final_logit_softcapping", "null");
        put(c, "head_dim", "%d", D);
        put(c, "hidden_activation", "\"gelu_pytorch_tanh\"");
        put(c, "max_position_embeddings", "32768");
        put(c, "pad_token_id", "0");
        put(c, "query_pre_attn_scalar", "%d", D);
        put(c, "rms_norm_eps", "1e-06");
        put(c, "rope_local_base_freq", "10000");
        put(c, "rope_scaling", "null");
        put(c, "rope_theta", "1000000");
        put(c, "sliding_window", "8");
        put(c, "sliding_window_pattern", "6");
        put(c, "transformers_version", "\"4.50.0.dev0\"");
        break;
    case K_PHI3:
    case K_PHI4MINI:
        put(c, "attention_bias", "false");
        put(c, "embd_pdrop", "0.0");
        put(c, "hidden_act", "\"silu\"");
        put(c, "original_max_position_embeddings", "4096");
        put(c, "pad_token_id", "%d", TOK_EOS);
        put(c, "resid_pdrop", "0.0");
        put(c, "rms_norm_eps", "1e-05");
        put(c, "rope_theta", "10000.0");
        if (f->kind == K_PHI3) {
            put(c, "max_position_embeddings", "4096");
            put(c, "rope_scaling", "null");
            put(c, "sliding_window", "2047");
            put(c, "transformers_version", "\"4.40.2\"");
        } else {
            struct dev_buf b = {0};
            dev_buf_puts(&b, "{\n    \"long_factor\": ");
            longrope_list(&b, true);
            dev_buf_puts(&b, ",\n    \"short_factor\": ");
            longrope_list(&b, false);
            dev_buf_puts(&b, ",\n    \"type\": \"longrope\"\n  }");
            put(c, "rope_scaling", "%s", b.p);
            free(b.p);
            put(c, "full_attn_mod", "1");
            put(c, "interpolate_factor", "1");
            put(c, "lm_head_bias", "false");
            put(c, "max_position_embeddings", "131072");
            put(c, "mlp_bias", "false");
            put(c, "partial_rotary_factor", "0.75");
            put(c, "sliding_window", "262144");
            put(c, "transformers_version", "\"4.45.0\"");
        }
        break;
    case K_SMOLLM3: {
        struct dev_buf lt = {0}, nr = {0};
        for (int l = 0; l < f->layers; l++) {
            dev_buf_printf(&lt, "%s\n    \"full_attention\"", l ? "," : "");
            dev_buf_printf(&nr, "%s\n    %d", l ? "," : "", (l + 1) % 4 != 0);
        }
        put(c, "hidden_act", "\"silu\"");
        put(c, "layer_types", "[%s\n  ]", lt.p);
        put(c, "max_position_embeddings", "65536");
        put(c, "max_window_layers", "%d", f->layers);
        put(c, "mlp_bias", "false");
        put(c, "no_rope_layer_interval", "4");
        put(c, "no_rope_layers", "[%s\n  ]", nr.p);
        put(c, "pad_token_id", "%d", TOK_EOS);
        put(c, "pretraining_tp", "2");
        put(c, "rms_norm_eps", "1e-06");
        put(c, "rope_scaling", "null");
        put(c, "rope_theta", "5000000.0");
        put(c, "sliding_window", "null");
        put(c, "transformers_version", "\"4.54.0.dev0\"");
        put(c, "use_sliding_window", "false");
        free(lt.p);
        free(nr.p);
        break;
    }
    case K_GRANITE:
        put(c, "attention_multiplier", "0.015625");
        put(c, "embedding_multiplier", "12.0");
        put(c, "hidden_act", "\"silu\"");
        put(c, "logits_scaling", "8.0");
        put(c, "max_position_embeddings", "4096");
        put(c, "mlp_bias", "false");
        put(c, "pad_token_id", "%d", TOK_EOS);
        put(c, "residual_multiplier", "0.22");
        put(c, "rms_norm_eps", "1e-05");
        put(c, "rope_scaling", "null");
        put(c, "rope_theta", "10000.0");
        put(c, "transformers_version", "\"4.46.0.dev0\"");
        break;
    case K_OLMO2:
        put(c, "hidden_act", "\"silu\"");
        put(c, "max_position_embeddings", "4096");
        put(c, "pad_token_id", "%d", TOK_EOS);
        put(c, "rms_norm_eps", "1e-06");
        put(c, "rope_scaling", "null");
        put(c, "rope_theta", "500000");
        put(c, "transformers_version", "\"4.48.0.dev0\"");
        break;
    }
    qsort(c->kv, (size_t)c->n, sizeof c->kv[0], cmp_kv);
    for (int i = 1; i < c->n; i++)
        if (strcmp(c->kv[i - 1].key, c->kv[i].key) == 0) dev_die("internal: key %s twice", c->kv[i].key);
}

static char *config_text(const struct config *c)
{
    struct dev_buf b = {0};
    dev_buf_puts(&b, "{\n");
    for (int i = 0; i < c->n; i++) {
        dev_buf_printf(&b, "  \"%s\": ", c->kv[i].key);
        dev_buf_puts(&b, c->kv[i].val);
        dev_buf_puts(&b, i + 1 < c->n ? ",\n" : "\n");
    }
    dev_buf_puts(&b, "}\n");
    return b.p;
}

/* ---- tensors -------------------------------------------------------------------------------- */

struct tensor {
    char name[96];
    uint32_t rows, cols; /* cols 0: 1-D */
    float *v;            /* exactly representable in BF16 */
};

struct model {
    struct tensor t[MAX_TENSORS];
    size_t n;
};

static size_t numel(const struct tensor *t) { return (size_t)t->rows * (t->cols ? t->cols : 1); }

static uint16_t bf16_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if (u & 0xFFFF) dev_die("internal: %g is not a BF16 value", (double)f);
    return (uint16_t)(u >> 16);
}

/* Adds "model.layers.L.SUFFIX" (or SUFFIX when layer < 0) filled with (offset + U[-r, r]) * 2^e. */
static void add(struct model *m, int layer, const char *suffix, uint32_t rows, uint32_t cols, int offset, int r, int e)
{
    if (m->n >= MAX_TENSORS) dev_die("internal: too many tensors");
    struct tensor *t = &m->t[m->n++];
    if (layer < 0) snprintf(t->name, sizeof t->name, "%s", suffix);
    else snprintf(t->name, sizeof t->name, "model.layers.%d.%s", layer, suffix);
    t->rows = rows;
    t->cols = cols;
    t->v = dev_xcalloc(numel(t), sizeof *t->v);
    uint64_t s = dev_fnv1a64(t->name) ^ SEED; /* values do not depend on tensor order */
    for (size_t i = 0; i < numel(t); i++) {
        int v = offset + (int)(dev_splitmix64(&s) % (uint64_t)(2 * r + 1)) - r;
        t->v[i] = ldexpf((float)v, e);
        (void)bf16_bits(t->v[i]);
    }
}

static void build_tensors(const struct family *f, struct model *m)
{
    const uint32_t E = N_EMBD, H = (uint32_t)f->heads, KV = (uint32_t)f->kv, D = (uint32_t)f->head_dim;
    const uint32_t F = (uint32_t)f->ffn, QD = H * D, KD = KV * D;
    const struct scales *s = &f->s;
    const bool gemma = f->kind == K_GEMMA2 || f->kind == K_GEMMA3, olmo = f->kind == K_OLMO2;
    const bool phi = f->kind == K_PHI3 || f->kind == K_PHI4MINI;
    /* norm weights: near 1, or near 0 where Gemma stores w - 1 */
    const int n_off = gemma ? 0 : 64;
    add(m, -1, "model.embed_tokens.weight", N_VOCAB, E, 0, 31, s->emb);
    for (int l = 0; l < f->layers; l++) {
        if (!olmo) add(m, l, "input_layernorm.weight", E, 0, n_off, 8, -6);
        if (phi) {
            add(m, l, "self_attn.qkv_proj.weight", QD + 2 * KD, E, 0, 31, s->q);
        } else {
            add(m, l, "self_attn.q_proj.weight", QD, E, 0, 31, s->q);
            add(m, l, "self_attn.k_proj.weight", KD, E, 0, 31, s->k);
            add(m, l, "self_attn.v_proj.weight", KD, E, 0, 31, s->v);
        }
        add(m, l, "self_attn.o_proj.weight", E, QD, 0, 31, s->o);
        if (f->kind == K_QWEN3 || f->kind == K_QWEN3MOE) {
            add(m, l, "self_attn.q_norm.weight", D, 0, 128, 16, -6);
            add(m, l, "self_attn.k_norm.weight", D, 0, 128, 16, -6);
        } else if (f->kind == K_GEMMA3) {
            add(m, l, "self_attn.q_norm.weight", D, 0, 64, 16, -6); /* 1 + w near 2 */
            add(m, l, "self_attn.k_norm.weight", D, 0, 64, 16, -6);
        } else if (olmo) {
            add(m, l, "self_attn.q_norm.weight", QD, 0, 128, 16, -6);
            add(m, l, "self_attn.k_norm.weight", KD, 0, 128, 16, -6);
        }
        if (gemma) {
            add(m, l, "post_attention_layernorm.weight", E, 0, 0, 8, -6);
            add(m, l, "pre_feedforward_layernorm.weight", E, 0, 0, 8, -6);
            add(m, l, "post_feedforward_layernorm.weight", E, 0, 0, 8, -6);
        } else if (olmo) {
            add(m, l, "post_attention_layernorm.weight", E, 0, 64, 8, -6);
            add(m, l, "post_feedforward_layernorm.weight", E, 0, 64, 8, -6);
        } else {
            add(m, l, "post_attention_layernorm.weight", E, 0, 64, 8, -6);
        }
        if (f->kind == K_MIXTRAL || f->kind == K_QWEN3MOE) {
            const bool mx = f->kind == K_MIXTRAL;
            add(m, l, mx ? "block_sparse_moe.gate.weight" : "mlp.gate.weight", (uint32_t)f->experts, E, 0, 31, s->router);
            for (int e = 0; e < f->experts; e++) {
                char n[96];
                const uint32_t X = (uint32_t)f->ffn_exp;
                snprintf(n, sizeof n, mx ? "block_sparse_moe.experts.%d.w1.weight" : "mlp.experts.%d.gate_proj.weight", e);
                add(m, l, n, X, E, 0, 31, s->gu);
                snprintf(n, sizeof n, mx ? "block_sparse_moe.experts.%d.w3.weight" : "mlp.experts.%d.up_proj.weight", e);
                add(m, l, n, X, E, 0, 31, s->gu);
                snprintf(n, sizeof n, mx ? "block_sparse_moe.experts.%d.w2.weight" : "mlp.experts.%d.down_proj.weight", e);
                add(m, l, n, E, X, 0, 31, s->down);
            }
        } else if (phi) {
            add(m, l, "mlp.gate_up_proj.weight", 2 * F, E, 0, 31, s->gu);
            add(m, l, "mlp.down_proj.weight", E, F, 0, 31, s->down);
        } else {
            add(m, l, "mlp.gate_proj.weight", F, E, 0, 31, s->gu);
            add(m, l, "mlp.up_proj.weight", F, E, 0, 31, s->gu);
            add(m, l, "mlp.down_proj.weight", E, F, 0, 31, s->down);
        }
    }
    add(m, -1, "model.norm.weight", E, 0, n_off, 8, -6);
    if (!f->tied) add(m, -1, "lm_head.weight", N_VOCAB, E, 0, 31, s->head);
}

/* ---- self-check ----------------------------------------------------------------------------- */

static const float *get_tensor(void *user, const char *name, int rows, int cols, bool optional)
{
    const struct model *m = user;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->t[i].name, name) == 0)
            return (int)m->t[i].rows == rows && (int)m->t[i].cols == cols ? m->t[i].v : NULL;
    (void)optional;
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int self_check(const struct family *f, const char *config, const struct model *m)
{
    cJSON *j = cJSON_Parse(config);
    if (!j) dev_die("internal: config.json does not parse");
    struct fref_model R;
    char why[256];
    if (fref_bind(j, get_tensor, (void *)m, &R, why, sizeof why) != 0) dev_die("internal: %s", why);
    cJSON_Delete(j);
    struct llama_ref_stats st;
    llama_ref_stats_init(&st);
    enum { T = 40, S = 3 };
    double top[S * T];
    int nt = 0;
    for (int s = 0; s < S; s++) {
        int32_t ids[T];
        uint64_t g = SEED + (uint64_t)s;
        for (int i = 0; i < T; i++) ids[i] = (int32_t)(dev_splitmix64(&g) % TOK_BOS);
        float *lg = dev_xcalloc((size_t)T * N_VOCAB, sizeof *lg);
        if (dref_forward(&R.cfg, &R.w, ids, T, lg, &st) != 0) dev_die("reference forward pass failed");
        for (int t = 0; t < T; t++) top[nt++] = llama_ref_top_prob(lg + (size_t)t * N_VOCAB, N_VOCAB, NULL);
        free(lg);
    }
    qsort(top, (size_t)nt, sizeof top[0], cmp_double);
    double sum = 0.0;
    for (int i = 0; i < nt; i++) sum += top[i];
    const double sd_min = llama_ref_stats_min_layer_std(&st);
    printf("%s: top probability mean %.3f median %.3f min %.3f; attention-score std %.3f (smallest per layer %.3f)\n",
           f->name, sum / nt, top[nt / 2], top[0], llama_ref_stats_std(&st), sd_min);
    int ok = 1;
    if (top[nt / 2] < 0.2) {
        fprintf(stderr, "mkfamily: FAILED: %s: median top probability %.3f < 0.2 (distributions too flat)\n", f->name,
                top[nt / 2]);
        ok = 0;
    }
    if (top[nt / 2] > 0.95) {
        fprintf(stderr, "mkfamily: FAILED: %s: median top probability %.3f > 0.95 (one token takes everything)\n",
                f->name, top[nt / 2]);
        ok = 0;
    }
    if (sd_min < 1.0) {
        fprintf(stderr, "mkfamily: FAILED: %s: attention-score std %.3f < 1 in some layer\n", f->name, sd_min);
        ok = 0;
    }
    return ok;
}

/* ---- files ---------------------------------------------------------------------------------- */

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const struct tensor *const *)a)->name, (*(const struct tensor *const *)b)->name);
}

/* One safetensors file of sel[0..n): header {"__metadata__":{"format":"pt"}, tensors by name}
** padded with spaces to a multiple of 8, then the BF16 data little-endian in the same order. */
static size_t write_safetensors(const char *path, const struct tensor *const *sel, size_t n)
{
    struct dev_buf h = {0};
    size_t total = 0;
    dev_buf_puts(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < n; i++) {
        size_t bytes = numel(sel[i]) * 2;
        if (sel[i]->cols)
            dev_buf_printf(&h, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%u,%u],\"data_offsets\":[%zu,%zu]}", sel[i]->name,
                           sel[i]->rows, sel[i]->cols, total, total + bytes);
        else
            dev_buf_printf(&h, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%u],\"data_offsets\":[%zu,%zu]}", sel[i]->name,
                           sel[i]->rows, total, total + bytes);
        total += bytes;
    }
    dev_buf_puts(&h, "}");
    while ((8 + h.len) % 8) dev_buf_puts(&h, " ");
    uint8_t *data = dev_xcalloc(total, 1);
    size_t off = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < numel(sel[i]); k++) {
            uint16_t b = bf16_bits(sel[i]->v[k]);
            data[off++] = (uint8_t)(b & 0xFF);
            data[off++] = (uint8_t)(b >> 8);
        }
    if (stw_write_raw(path, h.len, h.p, h.len, data, total) != 0) dev_die("%s: write failed: %s", path, strerror(errno));
    free(h.p);
    free(data);
    return total;
}

static void write_weights(const char *dir, const struct model *m, int shards)
{
    const struct tensor *sel[MAX_TENSORS];
    for (size_t i = 0; i < m->n; i++) sel[i] = &m->t[i];
    qsort(sel, m->n, sizeof sel[0], cmp_name);
    char path[4096];
    if (shards == 1) {
        if ((size_t)snprintf(path, sizeof path, "%s/model.safetensors", dir) >= sizeof path) dev_die("path too long");
        size_t total = write_safetensors(path, sel, m->n);
        printf("wrote %s: %zu tensors, %zu bytes of tensor data\n", path, m->n, total);
        return;
    }
    /* shards: contiguous runs of the sorted names; the index maps every name to its file */
    struct dev_buf map = {0};
    size_t total = 0, first = 0;
    for (int s = 0; s < shards; s++) {
        size_t end = m->n * (size_t)(s + 1) / (size_t)shards;
        char file[64];
        snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", s + 1, shards);
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path) dev_die("path too long");
        total += write_safetensors(path, sel + first, end - first);
        for (size_t i = first; i < end; i++) dev_buf_printf(&map, "%s\n    \"%s\": \"%s\"", map.len ? "," : "", sel[i]->name, file);
        first = end;
    }
    struct dev_buf idx = {0};
    dev_buf_printf(&idx, "{\n  \"metadata\": {\n    \"total_size\": %zu\n  },\n  \"weight_map\": {", total);
    dev_buf_puts(&idx, map.p);
    dev_buf_puts(&idx, "\n  }\n}\n");
    dev_write_file(dir, "model.safetensors.index.json", idx.p, idx.len);
    printf("wrote %s: %zu tensors in %d shards, %zu bytes of tensor data\n", dir, m->n, shards, total);
    free(map.p);
    free(idx.p);
}


static int usage(void)
{
    fprintf(stderr, "usage: mkfamily FAMILY OUTDIR [--shards N] [--tokenizer DIR]\n  FAMILY:");
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) fprintf(stderr, " %s", families[i].name);
    fprintf(stderr, "\n");
    return 2;
}

int main(int argc, char **argv)
{
    dev_set_prog("mkfamily");
    if (argc < 3) return usage();
    const struct family *f = NULL;
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (strcmp(families[i].name, argv[1]) == 0) f = &families[i];
    if (!f) return usage();
    const char *out = argv[2], *tok = "testdata/tiny-llama";
    int shards = 1;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--shards") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > MAX_SHARDS) return usage();
            shards = (int)v;
        } else if (strcmp(argv[i], "--tokenizer") == 0 && i + 1 < argc) {
            tok = argv[++i];
        } else {
            return usage();
        }
    }
    struct config c = {0};
    build_config(f, &c);
    char *config = config_text(&c);
    static struct model m;
    build_tensors(f, &m);
    if (!self_check(f, config, &m)) return 1;
    dev_make_dir(out);
    dev_write_file(out, "config.json", config, strlen(config));
    dev_copy_file(tok, out, "tokenizer.json");
    dev_copy_file(tok, out, "tokenizer_config.json");
    write_weights(out, &m, shards);
    for (size_t i = 0; i < m.n; i++) free(m.t[i].v);
    for (int i = 0; i < c.n; i++) free(c.kv[i].val);
    free(config);
    return 0;
}
