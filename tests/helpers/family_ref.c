/*
** family_ref.c - config.json + tensor names -> reference decoder (see family_ref.h for the table).
** tools/mkfamily.c includes this file directly: no test-framework code, static names prefixed fr_.
*/
#include "family_ref.h"
#include "why.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum fr_family { FR_LLAMA, FR_QWEN3, FR_QWEN3MOE, FR_MIXTRAL, FR_GEMMA2, FR_GEMMA3, FR_PHI3, FR_SMOLLM3, FR_GRANITE,
                 FR_OLMO2 };

static const struct {
    const char *arch;
    enum fr_family fam;
    bool tied_default; /* tie_word_embeddings when config.json omits it */
} fr_archs[] = {
    {"LlamaForCausalLM", FR_LLAMA, false},      {"MistralForCausalLM", FR_LLAMA, false},
    {"Qwen2ForCausalLM", FR_LLAMA, false},      {"Qwen3ForCausalLM", FR_QWEN3, false},
    {"Qwen3MoeForCausalLM", FR_QWEN3MOE, false}, {"MixtralForCausalLM", FR_MIXTRAL, false},
    {"Gemma2ForCausalLM", FR_GEMMA2, true},     {"Gemma3ForCausalLM", FR_GEMMA3, true},
    {"Phi3ForCausalLM", FR_PHI3, false},        {"SmolLM3ForCausalLM", FR_SMOLLM3, true},
    {"GraniteForCausalLM", FR_GRANITE, false},  {"Olmo2ForCausalLM", FR_OLMO2, false},
};

/* A number key: its value, or `dflt` when absent or null. */
static double fr_num(const cJSON *c, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static bool fr_bool(const cJSON *c, const char *key, bool dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

/* Copies a list of numbers into out[n]; false when it is not exactly n numbers. */
static bool fr_list(const cJSON *arr, double *out, int n)
{
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != n) return false;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (!cJSON_IsNumber(e)) return false;
        out[i++] = e->valuedouble;
    }
    return true;
}

/* rope_scaling -> cfg (linear / llama3 / yarn / longrope); 0 or -1 */
static int fr_rope_scaling(const cJSON *c, struct fref_model *m, int rot, char *why, size_t len)
{
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(c, "rope_scaling");
    if (!rs || cJSON_IsNull(rs)) return 0;
    if (!cJSON_IsObject(rs)) return mq_test_why(why, len, "config.json: rope_scaling is not an object");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!cJSON_IsString(t)) t = cJSON_GetObjectItemCaseSensitive(rs, "type");
    if (!cJSON_IsString(t)) return mq_test_why(why, len, "config.json: rope_scaling without rope_type");
    const char *type = t->valuestring;
    struct llama_ref_rope *r = &m->cfg.rope;
    const double mp = fr_num(c, "max_position_embeddings", 0.0);
    if (strcmp(type, "default") == 0) return 0;
    if (strcmp(type, "longrope") == 0 || strcmp(type, "su") == 0) {
        if (rot / 2 > 256 || !fr_list(cJSON_GetObjectItemCaseSensitive(rs, "short_factor"), m->longrope_short, rot / 2) ||
            !fr_list(cJSON_GetObjectItemCaseSensitive(rs, "long_factor"), m->longrope_long, rot / 2))
            return mq_test_why(why, len, "config.json: rope_scaling short_factor/long_factor must have %d numbers", rot / 2);
        struct dref_longrope *lr = &m->cfg.longrope;
        lr->short_factor = m->longrope_short;
        lr->long_factor = m->longrope_long;
        lr->max_pos = mp;
        lr->original_max_pos = fr_num(c, "original_max_position_embeddings", mp);
        lr->attention_factor = fr_num(rs, "attention_factor", 0.0);
        return 0;
    }
    r->factor = fr_num(rs, "factor", 0.0);
    if (strcmp(type, "linear") == 0) {
        r->type = LLAMA_REF_ROPE_LINEAR;
    } else if (strcmp(type, "llama3") == 0) {
        r->type = LLAMA_REF_ROPE_LLAMA3;
        r->low_freq_factor = fr_num(rs, "low_freq_factor", 0.0);
        r->high_freq_factor = fr_num(rs, "high_freq_factor", 0.0);
        r->original_max_pos = fr_num(rs, "original_max_position_embeddings", 0.0);
    } else if (strcmp(type, "yarn") == 0) {
        r->type = LLAMA_REF_ROPE_YARN;
        r->original_max_pos = fr_num(rs, "original_max_position_embeddings", mp);
        r->beta_fast = fr_num(rs, "beta_fast", 0.0);
        r->beta_slow = fr_num(rs, "beta_slow", 0.0);
        r->attention_factor = fr_num(rs, "attention_factor", 0.0);
    } else {
        return mq_test_why(why, len, "config.json: rope_scaling type \"%s\" is not in the reference", type);
    }
    return 0;
}

/* "model.layers.L.SUFFIX" through `get` */
static const float *fr_layer(fref_get_fn get, void *user, int l, const char *suffix, int rows, int cols, bool optional)
{
    char name[160];
    snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix);
    return get(user, name, rows, cols, optional);
}

int fref_bind(const cJSON *c, fref_get_fn get, void *user, struct fref_model *m, char *why, size_t len)
{
    memset(m, 0, sizeof *m);
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(c, "architectures");
    const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    if (!cJSON_IsString(a0)) return mq_test_why(why, len, "config.json: no architectures[0]");
    int fi = -1;
    for (size_t i = 0; i < sizeof fr_archs / sizeof fr_archs[0]; i++)
        if (strcmp(fr_archs[i].arch, a0->valuestring) == 0) fi = (int)i;
    if (fi < 0) return mq_test_why(why, len, "config.json: architecture %s is not in the reference", a0->valuestring);
    snprintf(m->arch, sizeof m->arch, "%s", a0->valuestring);
    const enum fr_family fam = fr_archs[fi].fam;
    struct dref_config *g = &m->cfg;

    g->n_vocab = (int)fr_num(c, "vocab_size", 0);
    g->n_embd = (int)fr_num(c, "hidden_size", 0);
    g->n_ff = (int)fr_num(c, "intermediate_size", 0);
    g->n_layer = (int)fr_num(c, "num_hidden_layers", 0);
    g->n_head = (int)fr_num(c, "num_attention_heads", 0);
    g->n_kv_head = (int)fr_num(c, "num_key_value_heads", g->n_head);
    if (g->n_embd <= 0 || g->n_head <= 0 || g->n_vocab <= 0 || g->n_layer <= 0 || g->n_layer > DREF_MAX_LAYERS)
        return mq_test_why(why, len, "config.json: sizes missing or out of the reference's range");
    g->head_dim = (int)fr_num(c, "head_dim", g->n_embd / g->n_head);
    g->rms_eps = fr_num(c, "rms_norm_eps", 1e-6);
    g->rope_theta = fr_num(c, "rope_theta", 10000.0);
    g->rot_dim = fam == FR_PHI3 ? (int)(g->head_dim * fr_num(c, "partial_rotary_factor", 1.0)) : g->head_dim;
    m->tied = fr_bool(c, "tie_word_embeddings", fr_archs[fi].tied_default);
    if (fr_rope_scaling(c, m, g->rot_dim, why, len) != 0) return -1;
    if (fr_bool(c, "use_sliding_window", false))
        return mq_test_why(why, len, "config.json: use_sliding_window true is not in the reference");

    const int E = g->n_embd, H = g->n_head, KV = g->n_kv_head, D = g->head_dim, F = g->n_ff;
    const int L = g->n_layer;
    bool moe_layer[DREF_MAX_LAYERS] = {0};
    switch (fam) {
    case FR_QWEN3:
        g->qk_norm = DREF_QK_NORM_HEAD;
        break;
    case FR_QWEN3MOE: {
        g->qk_norm = DREF_QK_NORM_HEAD;
        g->n_expert = (int)fr_num(c, "num_experts", 0);
        g->n_expert_used = (int)fr_num(c, "num_experts_per_tok", 0);
        g->n_ff_exp = (int)fr_num(c, "moe_intermediate_size", 0);
        g->norm_topk = fr_bool(c, "norm_topk_prob", false);
        const int step = (int)fr_num(c, "decoder_sparse_step", 1);
        const cJSON *only = cJSON_GetObjectItemCaseSensitive(c, "mlp_only_layers");
        for (int l = 0; l < L; l++) {
            bool dense_only = false;
            const cJSON *e;
            if (cJSON_IsArray(only)) cJSON_ArrayForEach(e, only) dense_only |= cJSON_IsNumber(e) && e->valueint == l;
            moe_layer[l] = !dense_only && g->n_expert > 0 && step > 0 && (l + 1) % step == 0;
        }
        break;
    }
    case FR_MIXTRAL:
        g->n_expert = (int)fr_num(c, "num_local_experts", 0);
        g->n_expert_used = (int)fr_num(c, "num_experts_per_tok", 0);
        g->n_ff_exp = F;
        g->norm_topk = true;
        for (int l = 0; l < L; l++) moe_layer[l] = true;
        g->sliding_window = (int)fr_num(c, "sliding_window", 0);
        for (int l = 0; l < L; l++) g->layer_sliding[l] = true;
        break;
    case FR_GEMMA2:
    case FR_GEMMA3: {
        g->norm = DREF_NORM_RMS_GEMMA;
        const cJSON *act = cJSON_GetObjectItemCaseSensitive(c, "hidden_activation");
        if (!cJSON_IsString(act)) act = cJSON_GetObjectItemCaseSensitive(c, "hidden_act");
        if (!cJSON_IsString(act) || strcmp(act->valuestring, "gelu_pytorch_tanh") != 0)
            return mq_test_why(why, len, "config.json: hidden_activation is not gelu_pytorch_tanh");
        g->act = DREF_ACT_GELU_TANH;
        g->embed_scale = (double)(float)sqrt((double)E); /* torch.tensor(hidden_size ** 0.5), float32 */
        g->attn_scale = 1.0 / sqrt(fr_num(c, "query_pre_attn_scalar", 0.0));
        if (!(g->attn_scale > 0.0) || isinf(g->attn_scale))
            return mq_test_why(why, len, "config.json: query_pre_attn_scalar missing");
        g->attn_softcap = fr_num(c, "attn_logit_softcapping", fam == FR_GEMMA2 ? 50.0 : 0.0);
        g->final_softcap = fr_num(c, "final_logit_softcapping", fam == FR_GEMMA2 ? 30.0 : 0.0);
        g->sliding_window = (int)fr_num(c, "sliding_window", fam == FR_GEMMA2 ? 4096 : 512);
        if (fam == FR_GEMMA2) {
            for (int l = 0; l < L; l++) g->layer_sliding[l] = l % 2 == 0;
        } else {
            g->qk_norm = DREF_QK_NORM_HEAD;
            g->rope_theta_swa = fr_num(c, "rope_local_base_freq", 10000.0);
            const cJSON *types = cJSON_GetObjectItemCaseSensitive(c, "layer_types");
            const int pattern = (int)fr_num(c, "sliding_window_pattern", 6);
            if (cJSON_IsArray(types) && cJSON_GetArraySize(types) >= L) {
                for (int l = 0; l < L; l++) {
                    const cJSON *t = cJSON_GetArrayItem(types, l);
                    g->layer_sliding[l] = cJSON_IsString(t) && strcmp(t->valuestring, "sliding_attention") == 0;
                }
            } else {
                for (int l = 0; l < L; l++) g->layer_sliding[l] = pattern > 0 && (l + 1) % pattern != 0;
            }
        }
        break;
    }
    case FR_PHI3:
        g->sliding_window = (int)fr_num(c, "sliding_window", 0);
        for (int l = 0; l < L; l++) g->layer_sliding[l] = true;
        break;
    case FR_SMOLLM3: {
        const cJSON *nope = cJSON_GetObjectItemCaseSensitive(c, "no_rope_layers");
        const int interval = (int)fr_num(c, "no_rope_layer_interval", 4);
        for (int l = 0; l < L; l++) {
            const cJSON *e = cJSON_IsArray(nope) ? cJSON_GetArrayItem(nope, l) : NULL;
            g->layer_nope[l] = e ? cJSON_IsNumber(e) && e->valueint == 0 : interval > 0 && (l + 1) % interval == 0;
        }
        break;
    }
    case FR_GRANITE:
        g->embed_scale = fr_num(c, "embedding_multiplier", 1.0);
        g->residual_scale = fr_num(c, "residual_multiplier", 1.0);
        g->attn_scale = fr_num(c, "attention_multiplier", 1.0);
        g->logit_scale = 1.0 / fr_num(c, "logits_scaling", 1.0);
        break;
    case FR_OLMO2:
        g->qk_norm = DREF_QK_NORM_FULL;
        break;
    case FR_LLAMA:
        break;
    }

    /* tensors */
    struct dref_weights *w = &m->w;
    w->embed = get(user, "model.embed_tokens.weight", g->n_vocab, E, false);
    w->final_norm = get(user, "model.norm.weight", E, 0, false);
    w->lm_head = m->tied ? w->embed : get(user, "lm_head.weight", g->n_vocab, E, false);
    if (!w->embed || !w->final_norm || !w->lm_head)
        return mq_test_why(why, len, "model.embed_tokens, model.norm or lm_head weight missing or misshapen");
    const int qn = g->qk_norm == DREF_QK_NORM_FULL ? H * D : D, kn = g->qk_norm == DREF_QK_NORM_FULL ? KV * D : D;
    for (int l = 0; l < L; l++) {
        struct dref_layer *y = &w->layers[l];
        const bool olmo = fam == FR_OLMO2, gemma = fam == FR_GEMMA2 || fam == FR_GEMMA3;
        if (!olmo) y->attn_norm = fr_layer(get, user, l, "input_layernorm.weight", E, 0, false);
        if (fam == FR_PHI3) {
            const float *qkv = fr_layer(get, user, l, "self_attn.qkv_proj.weight", (H + 2 * KV) * D, E, false);
            if (qkv) {
                y->wq = qkv;
                y->wk = qkv + (size_t)H * D * E;
                y->wv = qkv + (size_t)(H + KV) * D * E;
            }
        } else {
            y->wq = fr_layer(get, user, l, "self_attn.q_proj.weight", H * D, E, false);
            y->wk = fr_layer(get, user, l, "self_attn.k_proj.weight", KV * D, E, false);
            y->wv = fr_layer(get, user, l, "self_attn.v_proj.weight", KV * D, E, false);
            y->bq = fr_layer(get, user, l, "self_attn.q_proj.bias", H * D, 0, true);
            y->bk = fr_layer(get, user, l, "self_attn.k_proj.bias", KV * D, 0, true);
            y->bv = fr_layer(get, user, l, "self_attn.v_proj.bias", KV * D, 0, true);
        }
        y->wo = fr_layer(get, user, l, "self_attn.o_proj.weight", E, H * D, false);
        if (g->qk_norm != DREF_QK_NORM_NONE) {
            y->q_norm = fr_layer(get, user, l, "self_attn.q_norm.weight", qn, 0, false);
            y->k_norm = fr_layer(get, user, l, "self_attn.k_norm.weight", kn, 0, false);
        }
        if (gemma) {
            y->post_attn_norm = fr_layer(get, user, l, "post_attention_layernorm.weight", E, 0, false);
            y->ffn_norm = fr_layer(get, user, l, "pre_feedforward_layernorm.weight", E, 0, false);
            y->post_ffn_norm = fr_layer(get, user, l, "post_feedforward_layernorm.weight", E, 0, false);
        } else if (olmo) {
            y->post_attn_norm = fr_layer(get, user, l, "post_attention_layernorm.weight", E, 0, false);
            y->post_ffn_norm = fr_layer(get, user, l, "post_feedforward_layernorm.weight", E, 0, false);
        } else {
            y->ffn_norm = fr_layer(get, user, l, "post_attention_layernorm.weight", E, 0, false);
        }
        if (moe_layer[l] && fam == FR_MIXTRAL) {
            y->router = fr_layer(get, user, l, "block_sparse_moe.gate.weight", g->n_expert, E, false);
            for (int e = 0; e < g->n_expert && e < DREF_MAX_EXPERTS; e++) {
                char s[96];
                snprintf(s, sizeof s, "block_sparse_moe.experts.%d.w1.weight", e);
                y->experts[e].w_gate = fr_layer(get, user, l, s, g->n_ff_exp, E, false);
                snprintf(s, sizeof s, "block_sparse_moe.experts.%d.w3.weight", e);
                y->experts[e].w_up = fr_layer(get, user, l, s, g->n_ff_exp, E, false);
                snprintf(s, sizeof s, "block_sparse_moe.experts.%d.w2.weight", e);
                y->experts[e].w_down = fr_layer(get, user, l, s, E, g->n_ff_exp, false);
            }
        } else if (moe_layer[l]) {
            y->router = fr_layer(get, user, l, "mlp.gate.weight", g->n_expert, E, false);
            for (int e = 0; e < g->n_expert && e < DREF_MAX_EXPERTS; e++) {
                char s[96];
                snprintf(s, sizeof s, "mlp.experts.%d.gate_proj.weight", e);
                y->experts[e].w_gate = fr_layer(get, user, l, s, g->n_ff_exp, E, false);
                snprintf(s, sizeof s, "mlp.experts.%d.up_proj.weight", e);
                y->experts[e].w_up = fr_layer(get, user, l, s, g->n_ff_exp, E, false);
                snprintf(s, sizeof s, "mlp.experts.%d.down_proj.weight", e);
                y->experts[e].w_down = fr_layer(get, user, l, s, E, g->n_ff_exp, false);
            }
            if (!y->router) return mq_test_why(why, len, "layer %d: router (mlp.gate.weight) missing or misshapen", l);
        } else if (fam == FR_PHI3) {
            const float *gu = fr_layer(get, user, l, "mlp.gate_up_proj.weight", 2 * F, E, false);
            if (gu) {
                y->w_gate = gu;
                y->w_up = gu + (size_t)F * E;
            }
            y->w_down = fr_layer(get, user, l, "mlp.down_proj.weight", E, F, false);
        } else {
            y->w_gate = fr_layer(get, user, l, "mlp.gate_proj.weight", F, E, false);
            y->w_up = fr_layer(get, user, l, "mlp.up_proj.weight", F, E, false);
            y->w_down = fr_layer(get, user, l, "mlp.down_proj.weight", E, F, false);
        }
        if (!y->wq || !y->wk || !y->wv || !y->wo)
            return mq_test_why(why, len, "layer %d: an attention projection is missing or misshapen", l);
        if ((!olmo && !y->attn_norm) || (g->qk_norm && (!y->q_norm || !y->k_norm)))
            return mq_test_why(why, len, "layer %d: a norm weight is missing or misshapen", l);
        if (!y->router && (!y->w_gate || !y->w_up || !y->w_down))
            return mq_test_why(why, len, "layer %d: an MLP weight is missing or misshapen", l);
        for (int e = 0; y->router && e < g->n_expert; e++)
            if (!y->experts[e].w_gate || !y->experts[e].w_up || !y->experts[e].w_down)
                return mq_test_why(why, len, "layer %d: expert %d is missing or misshapen", l, e);
    }
    return 0;
}
