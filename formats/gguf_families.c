/*
** gguf_families.c - the architecture table: one row per Hugging Face architecture that modelq
** writes as GGUF the way llama.cpp's convert_hf_to_gguf.py does, for llama.cpp's graph of that
** architecture (src/llama-model.cpp: load_hparams, load_tensors, llama_model_rope_type).
**
** A row names its tensor groups (HF stem -> GGUF stem, shape as hyper-parameters, flags), the
** hyper-parameters it needs beyond the common ones, whether Q/K rows are permuted (llama.cpp
** "normal" RoPE: llama, granite, smollm3) or not ("neox": qwen2/3, gemma, phi3, olmo2), and the
** config.json values llama.cpp's graph fixes (anything else would convert to a file that runs
** and computes something else, so it is refused, naming the key).
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gguf_family.h"
#include "format.h" /* mq_gguf_architecture_list */

#define L TR_LAYER
#define R TR_REQUIRED

/* ---- tensor groups ---- */

static const struct mq_tensor_rule g_embed[] = {
    {"model.embed_tokens", "token_embd", R, 2, {{HP_VOCAB}, {HP_EMBD}}},
    {"lm_head", "output", 0, 2, {{HP_VOCAB}, {HP_EMBD}}},
    {"model.norm", "output_norm", R | TR_NORM, 1, {{HP_EMBD}}},
    {0},
};

static const struct mq_tensor_rule g_attn_norm[] = {
    {"input_layernorm", "attn_norm", L | R | TR_NORM, 1, {{HP_EMBD}}},
    {0},
};

static const struct mq_tensor_rule g_attn[] = {
    {"self_attn.q_proj", "attn_q", L | R | TR_BIAS | TR_Q, 2, {{HP_HEADS, HP_HEAD_DIM}, {HP_EMBD}}},
    {"self_attn.k_proj", "attn_k", L | R | TR_BIAS | TR_K, 2, {{HP_KV, HP_HEAD_DIM}, {HP_EMBD}}},
    {"self_attn.v_proj", "attn_v", L | R | TR_BIAS, 2, {{HP_KV, HP_HEAD_DIM}, {HP_EMBD}}},
    {"self_attn.o_proj", "attn_output", L | R | TR_BIAS, 2, {{HP_EMBD}, {HP_HEADS, HP_HEAD_DIM}}},
    {0},
};

/* Qwen3 / Gemma 3: RMSNorm of each head's q and k (head_dim wide, shared by the heads) */
static const struct mq_tensor_rule g_qk_norm_head[] = {
    {"self_attn.q_norm", "attn_q_norm", L | R | TR_NORM, 1, {{HP_HEAD_DIM}}},
    {"self_attn.k_norm", "attn_k_norm", L | R | TR_NORM, 1, {{HP_HEAD_DIM}}},
    {0},
};

/* OLMo 2: RMSNorm over the whole q and k projections, before the head split */
static const struct mq_tensor_rule g_qk_norm_full[] = {
    {"self_attn.q_norm", "attn_q_norm", L | R | TR_NORM, 1, {{HP_HEADS, HP_HEAD_DIM}}},
    {"self_attn.k_norm", "attn_k_norm", L | R | TR_NORM, 1, {{HP_KV, HP_HEAD_DIM}}},
    {0},
};

/* Llama: the pre-FFN norm is called post_attention_layernorm */
static const struct mq_tensor_rule g_ffn_norm[] = {
    {"post_attention_layernorm", "ffn_norm", L | R | TR_NORM, 1, {{HP_EMBD}}},
    {0},
};

static const struct mq_tensor_rule g_mlp[] = {
    {"mlp.gate_proj", "ffn_gate", L | R | TR_BIAS, 2, {{HP_FF}, {HP_EMBD}}},
    {"mlp.up_proj", "ffn_up", L | R | TR_BIAS, 2, {{HP_FF}, {HP_EMBD}}},
    {"mlp.down_proj", "ffn_down", L | R | TR_BIAS, 2, {{HP_EMBD}, {HP_FF}}},
    {0},
};

/* Gemma 2/3: norms before and after attention and the feed-forward block. GGUF names as
** llama.cpp's src/llama-arch.cpp spells them: LLM_TENSOR_ATTN_POST_NORM "blk.%d.post_attention_norm",
** LLM_TENSOR_FFN_POST_NORM "blk.%d.post_ffw_norm" (gguf-py constants.py MODEL_TENSOR.*_POST_NORM) */
static const struct mq_tensor_rule g_gemma_norms[] = {
    {"post_attention_layernorm", "post_attention_norm", L | R | TR_NORM, 1, {{HP_EMBD}}},
    {"pre_feedforward_layernorm", "ffn_norm", L | R | TR_NORM, 1, {{HP_EMBD}}},
    {"post_feedforward_layernorm", "post_ffw_norm", L | R | TR_NORM, 1, {{HP_EMBD}}},
    {0},
};

/* OLMo 2: only norms after attention and the feed-forward block (the same GGUF names as Gemma's) */
static const struct mq_tensor_rule g_olmo2_norms[] = {
    {"post_attention_layernorm", "post_attention_norm", L | R | TR_NORM, 1, {{HP_EMBD}}},
    {"post_feedforward_layernorm", "post_ffw_norm", L | R | TR_NORM, 1, {{HP_EMBD}}},
    {0},
};

/* Phi-3: fused projections, kept fused (llama.cpp's phi3 graph splits q/k/v and gate/up itself:
** attn_qkv rows are q, then k, then v; ffn_up rows are gate, then up) */
static const struct mq_tensor_rule g_phi3[] = {
    {"self_attn.qkv_proj", "attn_qkv", L | R, 2, {{HP_QKV_ROWS}, {HP_EMBD}}},
    {"self_attn.o_proj", "attn_output", L | R, 2, {{HP_EMBD}, {HP_HEADS, HP_HEAD_DIM}}},
    {"post_attention_layernorm", "ffn_norm", L | R | TR_NORM, 1, {{HP_EMBD}}},
    {"mlp.gate_up_proj", "ffn_up", L | R, 2, {{HP_FF2}, {HP_EMBD}}},
    {"mlp.down_proj", "ffn_down", L | R, 2, {{HP_EMBD}, {HP_FF}}},
    {0},
};

/* Mixtral: router and 8 experts (w1 gate, w3 up, w2 down), stacked into [experts, rows, cols] */
static const struct mq_tensor_rule g_moe_mixtral[] = {
    {"block_sparse_moe.gate", "ffn_gate_inp", L | R, 2, {{HP_EXPERTS}, {HP_EMBD}}},
    {"block_sparse_moe.experts.%u.w1", "ffn_gate_exps", L | R | TR_EXPERT, 2, {{HP_FF}, {HP_EMBD}}},
    {"block_sparse_moe.experts.%u.w3", "ffn_up_exps", L | R | TR_EXPERT, 2, {{HP_FF}, {HP_EMBD}}},
    {"block_sparse_moe.experts.%u.w2", "ffn_down_exps", L | R | TR_EXPERT, 2, {{HP_EMBD}, {HP_FF}}},
    {0},
};

/* Qwen3-MoE: router and experts of moe_intermediate_size */
static const struct mq_tensor_rule g_moe_qwen[] = {
    {"mlp.gate", "ffn_gate_inp", L | R, 2, {{HP_EXPERTS}, {HP_EMBD}}},
    {"mlp.experts.%u.gate_proj", "ffn_gate_exps", L | R | TR_EXPERT, 2, {{HP_EXPERT_FF}, {HP_EMBD}}},
    {"mlp.experts.%u.up_proj", "ffn_up_exps", L | R | TR_EXPERT, 2, {{HP_EXPERT_FF}, {HP_EMBD}}},
    {"mlp.experts.%u.down_proj", "ffn_down_exps", L | R | TR_EXPERT, 2, {{HP_EMBD}, {HP_EXPERT_FF}}},
    {0},
};

#undef L
#undef R

#define GROUPS(...) ((const struct mq_tensor_rule *const[]){__VA_ARGS__, NULL})

static const struct mq_tensor_rule *const llama_groups[] = {g_embed, g_attn_norm, g_attn, g_ffn_norm, g_mlp, NULL};

/* ---- config values llama.cpp's graphs fix ---- */

#define SILU {"hidden_act", FIX_STR, 0, "silu", "llama.cpp's graph uses SiLU"}
#define GELU_TANH {"hidden_activation", FIX_STR, 0, "gelu_pytorch_tanh", "llama.cpp's graph uses GELU (tanh)"}, \
                  {"hidden_act", FIX_STR, 0, "gelu_pytorch_tanh", "llama.cpp's graph uses GELU (tanh)"}
#define NO_ATTN_BIAS {"attention_bias", FIX_OFF, 0, NULL, "llama.cpp's graph has no attention biases"}
#define NO_MLP_BIAS {"mlp_bias", FIX_OFF, 0, NULL, "llama.cpp's graph has no MLP biases"}
#define NO_SWA_QWEN {"use_sliding_window", FIX_OFF, 0, NULL, "llama.cpp's graph has no sliding window for it"}

static const struct mq_fixed fix_llama[] = {SILU, {0}};
static const struct mq_fixed fix_qwen2[] = {SILU, NO_SWA_QWEN, {0}};
static const struct mq_fixed fix_qwen3[] = {SILU, NO_SWA_QWEN, NO_ATTN_BIAS, {0}};
static const struct mq_fixed fix_qwen3moe[] = {
    SILU, NO_SWA_QWEN, NO_ATTN_BIAS,
    {"norm_topk_prob", FIX_TRUE, 0, NULL, "llama.cpp's qwen3moe graph always renormalises the top-k weights"},
    {"mlp_only_layers", FIX_OFF, 0, NULL, "llama.cpp's qwen3moe graph has experts in every layer"},
    {"decoder_sparse_step", FIX_NUM, 1, NULL, "llama.cpp's qwen3moe graph has experts in every layer"},
    {"shared_expert_intermediate_size", FIX_OFF, 0, NULL, "llama.cpp's qwen3moe graph has no shared expert"},
    {0},
};
static const struct mq_fixed fix_mixtral[] = {SILU, {0}};
static const struct mq_fixed fix_gemma2[] = {GELU_TANH, NO_ATTN_BIAS, {0}};
static const struct mq_fixed fix_gemma3[] = {
    GELU_TANH, NO_ATTN_BIAS,
    {"attn_logit_softcapping", FIX_OFF, 0, NULL, "llama.cpp's gemma3 graph does not cap attention logits"},
    {"final_logit_softcapping", FIX_OFF, 0, NULL, "llama.cpp's gemma3 graph does not cap the logits"},
    {"rope_local_base_freq", FIX_NUM, 10000, NULL, "llama.cpp's gemma3 graph uses 10000 on sliding-window layers"},
    {0},
};
static const struct mq_fixed fix_phi3[] = {SILU, {0}};
static const struct mq_fixed fix_smollm3[] = {
    SILU, NO_ATTN_BIAS, NO_MLP_BIAS,
    {"use_sliding_window", FIX_OFF, 0, NULL, "llama.cpp's smollm3 graph has no sliding window"},
    {0},
};
static const struct mq_fixed fix_granite[] = {SILU, NO_ATTN_BIAS, NO_MLP_BIAS, {0}};
static const struct mq_fixed fix_olmo2[] = {SILU, NO_ATTN_BIAS, {0}};

/* ---- checks that need arithmetic ---- */

static const cJSON *jget(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/*
** Gemma: transformers scales q by query_pre_attn_scalar^-1/2; llama.cpp's gemma2/gemma3 graphs use
** 1/sqrt(hidden_size / heads) for the 27B shapes (46 layers for Gemma 2, 62 for Gemma 3) and
** 1/sqrt(head_dim) for every other model, and read no key for it.
*/
static enum mq_status check_gemma_scale(const struct mq_family *f, const cJSON *cfg, const char *path,
                                        const struct mq_hvals *h, uint64_t layers_27b, struct mq_error *err)
{
    (void)cfg;
    const bool big = h->u[HP_LAYERS] == layers_27b;
    const double want = big ? floor((double)h->u[HP_EMBD] / (double)h->u[HP_HEADS]) : (double)h->u[HP_HEAD_DIM];
    if (h->v[HP_QPAS] != want)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "config-graph",
                       "%s: \"query_pre_attn_scalar\" is %.9g; llama.cpp's %s graph scales queries by 1/sqrt(%.9g) "
                       "(%s) for a model of %llu layers, so the file would compute something else", path,
                       h->v[HP_QPAS], f->gguf, want, big ? "hidden_size / num_attention_heads" : "head_dim",
                       (unsigned long long)h->u[HP_LAYERS]);
    return MQ_OK;
}

static enum mq_status check_gemma2(const struct mq_family *f, const cJSON *cfg, const char *path,
                                   const struct mq_hvals *h, struct mq_error *err)
{
    return check_gemma_scale(f, cfg, path, h, 46, err);
}

/*
** Gemma 3: llama.cpp makes layer i a sliding-window layer exactly when (i + 1) % 6 != 0 (five
** local, one global); config.json says the same with layer_types (transformers >= 4.53) or
** sliding_window_pattern (older): any other layout is refused.
*/
static enum mq_status check_gemma3(const struct mq_family *f, const cJSON *cfg, const char *path,
                                   const struct mq_hvals *h, struct mq_error *err)
{
    MQ_TRY(check_gemma_scale(f, cfg, path, h, 62, err));
    const cJSON *types = jget(cfg, "layer_types");
    if (types && !cJSON_IsNull(types)) {
        if (!cJSON_IsArray(types) || (uint64_t)cJSON_GetArraySize(types) != h->u[HP_LAYERS])
            return MQ_FAIL(err, MQ_E_CORRUPT, "config-field", "%s: \"layer_types\" must be a list of %llu strings",
                           path, (unsigned long long)h->u[HP_LAYERS]);
        uint64_t i = 0;
        for (const cJSON *e = types->child; e; e = e->next, i++) {
            const bool local = (i + 1) % 6 != 0;
            const char *want = local ? "sliding_attention" : "full_attention";
            if (!cJSON_IsString(e) || strcmp(e->valuestring, want) != 0)
                return MQ_FAIL(err, MQ_E_UNSUPPORTED, "config-graph",
                               "%s: \"layer_types\"[%llu] is not \"%s\"; llama.cpp's gemma3 graph makes every sixth "
                               "layer global and the others sliding-window", path, (unsigned long long)i, want);
        }
    }
    const cJSON *pat = jget(cfg, "sliding_window_pattern");
    if (pat && !cJSON_IsNull(pat) && !(cJSON_IsNumber(pat) && pat->valuedouble == 6))
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "config-graph",
                       "%s: \"sliding_window_pattern\" must be 6 (llama.cpp's gemma3 graph makes every sixth layer "
                       "global)", path);
    return MQ_OK;
}

/*
** SmolLM3: llama.cpp skips RoPE on layer i exactly when (i + 1) % 4 == 0 (it reads no key);
** config.json's no_rope_layers (1 = RoPE) or no_rope_layer_interval must say the same.
*/
static enum mq_status check_smollm3(const struct mq_family *f, const cJSON *cfg, const char *path,
                                    const struct mq_hvals *h, struct mq_error *err)
{
    (void)f;
    const cJSON *iv = jget(cfg, "no_rope_layer_interval");
    if (iv && !cJSON_IsNull(iv) && !(cJSON_IsNumber(iv) && iv->valuedouble == 4))
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "config-graph",
                       "%s: \"no_rope_layer_interval\" must be 4 (llama.cpp's smollm3 graph skips RoPE on every "
                       "fourth layer)", path);
    const cJSON *list = jget(cfg, "no_rope_layers");
    if (!list || cJSON_IsNull(list)) return MQ_OK;
    if (!cJSON_IsArray(list) || (uint64_t)cJSON_GetArraySize(list) != h->u[HP_LAYERS])
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-field", "%s: \"no_rope_layers\" must be a list of %llu numbers",
                       path, (unsigned long long)h->u[HP_LAYERS]);
    uint64_t i = 0;
    for (const cJSON *e = list->child; e; e = e->next, i++) {
        const int want = (i + 1) % 4 != 0;
        if (!cJSON_IsNumber(e) || e->valuedouble != want)
            return MQ_FAIL(err, MQ_E_UNSUPPORTED, "config-graph",
                           "%s: \"no_rope_layers\"[%llu] is not %d; llama.cpp's smollm3 graph uses RoPE on every layer "
                           "but each fourth", path, (unsigned long long)i, want);
    }
    return MQ_OK;
}

/* ---- the rows ---- */

#define MOE (HPM(HP_EXPERTS) | HPM(HP_EXPERTS_USED))
#define GRANITE_MULTS (HPM(HP_EMB_MULT) | HPM(HP_RES_MULT) | HPM(HP_ATTN_MULT) | HPM(HP_LOGIT_SCALE))
#define GEMMA2_NEEDS (HPM(HP_HEAD_DIM) | HPM(HP_SWA) | HPM(HP_ATTN_SOFTCAP) | HPM(HP_FINAL_SOFTCAP) | HPM(HP_QPAS))

/*
** The last field, vocab (gguf_vocab.h), is the tokenizer file llama.cpp's converter reads for the
** class: LlamaModel (Llama, Mistral, Mixtral, Granite, SmolLM3), Qwen2Model (Qwen2, Qwen3) and
** Phi3MiniModel try tokenizer.model first; Gemma2Model/Gemma3Model too, with add_space_prefix
** false; TextModel's default (Qwen3-MoE, OLMo 2) reads tokenizer.json only.
*/
static const struct mq_family families[] = {
    {"LlamaForCausalLM", "llama", llama_groups, 0, 0, true, true, false, false, RS_LINEAR | RS_YARN | RS_LLAMA3,
     fix_llama, NULL, MQ_VOCAB_MODEL_FIRST},
    {"MistralForCausalLM", "llama", llama_groups, 0, 0, true, true, false, false, RS_LINEAR | RS_YARN | RS_LLAMA3,
     fix_llama, NULL, MQ_VOCAB_MODEL_FIRST},
    {"MixtralForCausalLM", "llama", GROUPS(g_embed, g_attn_norm, g_attn, g_ffn_norm, g_moe_mixtral), MOE, 0, true,
     false, false, false, RS_LINEAR | RS_YARN, fix_mixtral, NULL, MQ_VOCAB_MODEL_FIRST},
    {"Qwen2ForCausalLM", "qwen2", llama_groups, 0, 0, false, true, false, false, RS_LINEAR | RS_YARN | RS_LLAMA3,
     fix_qwen2, NULL, MQ_VOCAB_MODEL_FIRST},
    {"Qwen3ForCausalLM", "qwen3", GROUPS(g_embed, g_attn_norm, g_attn, g_qk_norm_head, g_ffn_norm, g_mlp), 0, 0,
     false, false, false, false, RS_LINEAR | RS_YARN, fix_qwen3, NULL, MQ_VOCAB_MODEL_FIRST},
    {"Qwen3MoeForCausalLM", "qwen3moe", GROUPS(g_embed, g_attn_norm, g_attn, g_qk_norm_head, g_ffn_norm, g_moe_qwen),
     MOE | HPM(HP_EXPERT_FF), 0, false, false, false, false, RS_LINEAR | RS_YARN, fix_qwen3moe, NULL,
     MQ_VOCAB_JSON_ONLY},
    {"Gemma2ForCausalLM", "gemma2", GROUPS(g_embed, g_attn_norm, g_attn, g_gemma_norms, g_mlp), GEMMA2_NEEDS, 0,
     false, false, true, 0, 0, fix_gemma2, check_gemma2, MQ_VOCAB_GEMMA},
    {"Gemma3ForCausalLM", "gemma3", GROUPS(g_embed, g_attn_norm, g_attn, g_qk_norm_head, g_gemma_norms, g_mlp),
     HPM(HP_HEAD_DIM) | HPM(HP_SWA) | HPM(HP_QPAS), 0, false, false, true, 1e6, RS_LINEAR, fix_gemma3, check_gemma3,
     MQ_VOCAB_GEMMA},
    {"Phi3ForCausalLM", "phi3", GROUPS(g_embed, g_attn_norm, g_phi3), 0,
     HPM(HP_PARTIAL_ROT) | HPM(HP_SWA) | HPM(HP_ORIG_CTX), false, false, false, false, RS_LONGROPE, fix_phi3, NULL,
     MQ_VOCAB_MODEL_FIRST},
    {"SmolLM3ForCausalLM", "smollm3", llama_groups, 0, 0, true, false, false, false,
     RS_LINEAR | RS_YARN | RS_LLAMA3, fix_smollm3, check_smollm3, MQ_VOCAB_MODEL_FIRST},
    {"GraniteForCausalLM", "granite", llama_groups, GRANITE_MULTS, 0, true, false, false, false,
     RS_LINEAR | RS_YARN | RS_LLAMA3, fix_granite, NULL, MQ_VOCAB_MODEL_FIRST},
    {"Olmo2ForCausalLM", "olmo2", GROUPS(g_embed, g_attn, g_qk_norm_full, g_olmo2_norms, g_mlp), 0, 0, false, false,
     false, false, RS_LINEAR | RS_YARN, fix_olmo2, NULL, MQ_VOCAB_JSON_ONLY},
};

const struct mq_family *mq_family_find(const char *hf)
{
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (strcmp(families[i].hf, hf) == 0) return &families[i];
    return NULL;
}

const struct mq_family *mq_family_at(size_t i)
{
    return i < sizeof families / sizeof families[0] ? &families[i] : NULL;
}

void mq_family_list(char *buf, size_t cap)
{
    size_t o = 0;
    if (cap) buf[0] = 0;
    for (size_t i = 0; i < sizeof families / sizeof families[0] && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", families[i].hf);
}

const char *mq_gguf_architecture_list(void)
{
    static char list[1024];
    if (!list[0]) mq_family_list(list, sizeof list); /* the table is constant: same text every call */
    return list;
}
