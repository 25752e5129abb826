/*
** lowbit_rules.c - llama-quantize's per-tensor mixtures of the low-bit file types Q2_K, Q2_K_S,
** Q3_K_S, Q3_K_M, Q3_K_L and IQ4_XS (llama.cpp src/llama-quant.cpp, llama_tensor_get_type_impl,
** without an importance matrix), one table row per file type.
**
** What the rows do not carry, because it is common to every GGUF target (targets.c gguf_choose):
** output.weight (and a tied token_embd) Q6_K or Q8_0, the 8-expert attn_k/attn_v Q8_0 and the
** 70B attn_v bump, and the fallback of rows that do not split into the type's blocks.
**
** Layers: llama-quantize counts attn_v and (dense) ffn_down tensors in its tensor order, which
** for one such tensor per layer is the layer index; MoE ffn_down layers come from the name. Both
** are the "blk.N." index here.
*/
#include "lowbit_rules.h"

#include <string.h>

#define NONE MQ_CODEC_COUNT /* "this rule leaves the type alone" */

struct lowbit_mixture {
    enum mq_target target;
    /* attn_v (and attn_kv_b): always / when n_head/n_head_kv >= 4 / in layers 0 and 1 */
    enum mq_codec attn_v, attn_v_gqa4, attn_v_first2;
    /* ffn_down: every layer / layers < n_layer/8 / layers < n_layer/16 */
    enum mq_codec ffn_down, ffn_down_first8, ffn_down_first16;
    /* attn_output: dense models / models with exactly 8 experts */
    enum mq_codec attn_out, attn_out_moe8;
    bool q2_k_needs_imatrix;   /* its Q2_K tensors (token_embd and output excepted) need an imatrix */
};

/* The first matching column wins, in the order attn_v_first2, attn_v_gqa4, attn_v (and
** ffn_down_first16, ffn_down_first8, ffn_down), as llama-quantize's else-if chains test them. */
static const struct lowbit_mixture mixtures[] = {
    /*                  attn_v   gqa>=4   layer<2  ffn_down first8  first16  attn_out moe8
     * (a fused attn_qkv takes the attn_v columns: targets.c) */
    {MQ_TARGET_Q2_K,   MQ_CODEC_Q3_K, MQ_CODEC_Q4_K, NONE, MQ_CODEC_Q3_K, NONE, NONE,
     MQ_CODEC_Q3_K, MQ_CODEC_Q5_K, false},
    {MQ_TARGET_Q2_K_S, NONE, MQ_CODEC_Q4_K, NONE, NONE, MQ_CODEC_Q4_K, NONE,
     NONE, NONE, true},
    {MQ_TARGET_Q3_K_S, NONE, NONE, NONE, NONE, NONE, NONE,
     NONE, MQ_CODEC_Q5_K, false},
    {MQ_TARGET_Q3_K_M, MQ_CODEC_Q4_K, NONE, MQ_CODEC_Q5_K, MQ_CODEC_Q4_K, NONE, MQ_CODEC_Q5_K,
     MQ_CODEC_Q4_K, MQ_CODEC_Q5_K, false},
    {MQ_TARGET_Q3_K_L, MQ_CODEC_Q5_K, NONE, NONE, MQ_CODEC_Q5_K, NONE, NONE,
     MQ_CODEC_Q5_K, NONE, false},
    /* ffn_down first eighth: only without an importance matrix */
    {MQ_TARGET_IQ4_XS, NONE, MQ_CODEC_Q5_K, NONE, NONE, MQ_CODEC_Q5_K, NONE,
     NONE, MQ_CODEC_Q5_K, false},
};

static const struct lowbit_mixture *mixture_of(enum mq_target t)
{
    for (size_t i = 0; i < sizeof mixtures / sizeof mixtures[0]; i++)
        if (mixtures[i].target == t) return &mixtures[i];
    return NULL;
}

bool mq_lowbit_is_mixture(enum mq_target t) { return mixture_of(t) != NULL; }

enum mq_codec mq_lowbit_choose(enum mq_target t, const struct mq_rule_context *rc, enum mq_role role, long layer,
                               enum mq_codec c, const char **why)
{
    const struct lowbit_mixture *m = mixture_of(t);
    if (!m) return c;
    enum mq_codec r = NONE;
    const char *w = NULL;
    switch (role) {
    case MQ_ROLE_ATTN_V:
        if (m->attn_v_first2 != NONE && layer >= 0 && layer < 2) r = m->attn_v_first2, w = "attn_v of layers 0-1";
        else if (m->attn_v_gqa4 != NONE && rc->n_gqa >= 4) r = m->attn_v_gqa4, w = "attn_v with GQA >= 4";
        else r = m->attn_v, w = "attn_v";
        break;
    case MQ_ROLE_FFN_DOWN:
        if (m->ffn_down_first16 != NONE && layer >= 0 && (uint64_t)layer < rc->n_layer / 16)
            r = m->ffn_down_first16, w = "ffn_down in the first n_layer/16 layers";
        else if (m->ffn_down_first8 != NONE && layer >= 0 && (uint64_t)layer < rc->n_layer / 8)
            r = m->ffn_down_first8, w = "ffn_down in the first n_layer/8 layers";
        else r = m->ffn_down, w = "ffn_down";
        break;
    case MQ_ROLE_ATTN_OUT:
        if (rc->n_expert == 8) r = m->attn_out_moe8, w = "attn_output with 8 experts";
        else r = m->attn_out, w = "attn_output";
        break;
    default: break;
    }
    if (r == NONE) return c;
    *why = w;
    return r;
}

bool mq_target_requires_imatrix(enum mq_target t, const char *gguf_name, enum mq_codec c)
{
    const struct lowbit_mixture *m = mixture_of(t);
    if (!m || !m->q2_k_needs_imatrix || c != MQ_CODEC_Q2_K) return false;
    /* llama-quantize's tensor_requires_imatrix exempts the embeddings and the output tensor */
    return strcmp(gguf_name, "token_embd.weight") != 0 && strcmp(gguf_name, "per_layer_token_embd.weight") != 0 &&
           strcmp(gguf_name, "output.weight") != 0;
}
