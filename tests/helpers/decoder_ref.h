/*
** decoder_ref.h - a generic reference decoder forward pass in plain C (double precision), for
** the model families of issue 10: Qwen3, Qwen3-MoE, Mixtral, Gemma 2, Gemma 3, Phi-3 /
** Phi-4-mini, SmolLM3, Granite, OLMo 2 (and Llama, which is every option at its default).
**
** Written from the semantics of transformers' modeling_<family>.py, not from modelq's converter
** nor from llama.cpp. Weights are plain float arrays in the Hugging Face layout, row-major
** [out_features, in_features] exactly as safetensors stores them (no GGUF Q/K permutation).
** Fused Phi-3 projections need no option: qkv_proj is q, k, v stacked by rows and gate_up_proj
** is gate then up (`gate, up = gate_up.chunk(2, dim=-1)`), so a caller passes row offsets into
** them as wq/wk/wv and w_gate/w_up.
**
**   x = embed[token] * embed_scale
**       (Gemma: hidden_size ** 0.5 rounded to float32, as transformers' torch.tensor(...,
**        dtype=float32) and llama.cpp's sqrtf both do; Granite: embedding_multiplier)
**   per layer l:
**       h = attn_norm ? norm(x, attn_norm) : x                   (OLMo 2 has no pre-norms)
**       a = o_proj(attention(h))
**       a = post_attn_norm ? norm(a, post_attn_norm) : a         (Gemma 2/3, OLMo 2)
**       x = x + residual_scale * a                               (Granite residual_multiplier)
**       h = ffn_norm ? norm(x, ffn_norm) : x                     (Gemma: pre_feedforward_layernorm;
**                                                                 Llama-like: post_attention_layernorm)
**       f = ffn(h)  (dense, or the mixture of experts below)
**       f = post_ffn_norm ? norm(f, post_ffn_norm) : f           (Gemma 2/3, OLMo 2)
**       x = x + residual_scale * f
**   logits = lm_head(norm(x, final_norm)) * logit_scale           (Granite: 1 / logits_scaling)
**   logits = final_softcap * tanh(logits / final_softcap)         (Gemma 2 final_logit_softcapping)
**
**   norm(v, w) = v / sqrt(mean(v^2) + eps) * w        (DREF_NORM_RMS, LlamaRMSNorm)
**              = v / sqrt(mean(v^2) + eps) * (1 + w)  (DREF_NORM_RMS_GEMMA: Gemma stores w - 1)
**
**   attention: q = Wq h (+bq), k = Wk h (+bk), v = Wv h (+bv);
**     qk_norm FULL (OLMo 2): q = norm(q, q_norm) over all n_head*head_dim values and
**       k = norm(k, k_norm) over n_kv_head*head_dim, before the head split;
**     qk_norm HEAD (Qwen3, Gemma 3): each head vector normed over head_dim with q_norm / k_norm;
**     then RoPE (unless the layer is NoPE: SmolLM3 no_rope_layers[l] == 0) "rotate half" on the
**       first rot_dim dims of each head (Phi-4-mini partial_rotary_factor; the rest pass):
**         for i < rot_dim/2, a = pos * inv_freq[i]:
**           out[i]           = (x[i] cos a - x[i + rot/2] sin a) * mag
**           out[i + rot/2]   = (x[i + rot/2] cos a + x[i] sin a) * mag
**       inv_freq from llama_ref_rope_freqs (default / linear / llama3 / yarn, over rot_dim) with
**       base rope_theta, or rope_theta_swa on sliding layers (Gemma 3 rope_local_base_freq, no
**       scaling there); LongRoPE (Phi-3 "longrope", transformers _compute_longrope_parameters):
**         ext = long_factor when the sequence is longer than original_max_position_embeddings,
**               else short_factor (transformers picks by the forward's sequence length);
**         inv_freq[i] = 1 / (ext[i] * theta^(2i / rot_dim));
**         mag = attention_factor, else sqrt(1 + ln(s) / ln(original)) with
**               s = max_position_embeddings / original_max_position_embeddings (1 when s <= 1);
**     score(t, s) = q_t . k_s * attn_scale        (1/sqrt(head_dim); Gemma query_pre_attn_scalar^-0.5;
**                                                  Granite attention_multiplier)
**     score = attn_softcap * tanh(score / attn_softcap)  (Gemma 2 attn_logit_softcapping)
**     allowed keys: s <= t, and t - s < sliding_window on sliding layers (transformers'
**       sliding_window_overlay: kv_idx > q_idx - sliding_window); softmax; GQA: query head h reads
**       KV head h / (n_head / n_kv_head).
**
**   dense ffn(h) = W_down (act(W_gate h) * W_up h), act = silu or gelu_pytorch_tanh
**     gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
**   mixture of experts (Mixtral, Qwen3-MoE), on a layer whose `router` is set:
**     p = softmax(router h) over n_expert; the n_expert_used largest (ties: lower index first);
**     w_j = p_j, divided by their sum when norm_topk (Mixtral always, Qwen3-MoE norm_topk_prob);
**     ffn(h) = sum_j w_j * expert_j(h), each expert a dense SwiGLU of width n_ff_exp.
*/
#ifndef MODELQ_DECODER_REF_H
#define MODELQ_DECODER_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llama_ref.h"

#define DREF_MAX_LAYERS 16
#define DREF_MAX_EXPERTS 16

enum dref_norm { DREF_NORM_RMS = 0, DREF_NORM_RMS_GEMMA };
/*
** DREF_ACT_GELU_TANH_GGML_F16 is NOT a transformers activation: it is what ggml's CPU backend
** computes for GELU on F32 activations (ggml-cpu/vec.h, GGML_GELU_FP16 defined: x <= -10 -> 0,
** x >= 10 -> x, else the input rounded to F16 looks up a table of F16-rounded gelu_tanh values).
** tests/test_families.c uses it only as a diagnostic, to show that what separates llama.cpp from
** the reference on Gemma is that table and nothing else.
*/
enum dref_act { DREF_ACT_SILU = 0, DREF_ACT_GELU_TANH, DREF_ACT_GELU_TANH_GGML_F16 };
enum dref_qk_norm { DREF_QK_NORM_NONE = 0, DREF_QK_NORM_HEAD, DREF_QK_NORM_FULL };

/* LongRoPE (Phi-3 rope_scaling type "longrope"); active when short_factor is set. */
struct dref_longrope {
    const double *short_factor, *long_factor; /* [rot_dim / 2] each */
    double original_max_pos;                  /* original_max_position_embeddings */
    double max_pos;                           /* max_position_embeddings */
    double attention_factor;                  /* rope_scaling.attention_factor; 0 = derived (above) */
};

struct dref_config {
    int n_vocab, n_embd, n_layer, n_head, n_kv_head, head_dim;
    int n_ff;               /* dense FFN width (intermediate_size) */
    int n_expert, n_expert_used, n_ff_exp; /* MoE layers: num_(local_)experts, num_experts_per_tok, width */
    bool norm_topk;         /* renormalise the top-k weights */
    double rms_eps;
    double rope_theta;
    double rope_theta_swa;  /* RoPE base on sliding layers; 0 = rope_theta */
    int rot_dim;            /* rotated dims per head; 0 = head_dim */
    struct llama_ref_rope rope;        /* scaling of the non-sliding layers (type DEFAULT = none) */
    struct dref_longrope longrope;
    enum dref_norm norm;
    enum dref_act act;
    enum dref_qk_norm qk_norm;
    double attn_scale;      /* 0 = 1 / sqrt(head_dim) */
    double attn_softcap, final_softcap; /* 0 = none */
    double embed_scale;     /* 0 = 1 */
    double residual_scale;  /* 0 = 1 */
    double logit_scale;     /* 0 = 1 */
    int sliding_window;     /* 0 = none */
    bool layer_sliding[DREF_MAX_LAYERS]; /* sliding-window layers (only with sliding_window > 0) */
    bool layer_nope[DREF_MAX_LAYERS];    /* layers without RoPE (SmolLM3) */
};

struct dref_expert {
    const float *w_gate, *w_up; /* [n_ff_exp, n_embd] */
    const float *w_down;        /* [n_embd, n_ff_exp] */
};

struct dref_layer {
    const float *attn_norm;          /* [n_embd] or NULL */
    const float *wq, *wk, *wv, *wo;  /* [H*D, E], [KV*D, E], [KV*D, E], [E, H*D] */
    const float *bq, *bk, *bv;       /* optional biases */
    const float *q_norm, *k_norm;    /* [head_dim] (HEAD) or [H*D], [KV*D] (FULL) */
    const float *post_attn_norm;     /* [n_embd] or NULL */
    const float *ffn_norm;           /* [n_embd] or NULL */
    const float *post_ffn_norm;      /* [n_embd] or NULL */
    const float *w_gate, *w_up, *w_down; /* dense FFN */
    const float *router;             /* [n_expert, n_embd]: set = MoE layer */
    struct dref_expert experts[DREF_MAX_EXPERTS];
};

struct dref_weights {
    const float *embed;                  /* [n_vocab, n_embd] */
    struct dref_layer layers[DREF_MAX_LAYERS];
    const float *final_norm;             /* [n_embd] */
    const float *lm_head;                /* [n_vocab, n_embd]; the embedding when tied */
};

/*
** Runs `n_tokens` tokens through the model and writes n_tokens * n_vocab logits, position-major.
** Pre-softmax attention scores (after softcapping, allowed pairs only) go to `stats` when not
** NULL. Returns 0, or -1 on an inconsistent config (sizes, a missing weight the options need, a
** token out of range) or when memory runs out.
*/
int dref_forward(const struct dref_config *cfg, const struct dref_weights *w, const int32_t *tokens,
                 size_t n_tokens, float *logits, struct llama_ref_stats *stats);

/* GELU with the tanh approximation (transformers' gelu_pytorch_tanh). */
double dref_gelu_tanh(double x);
/* x rounded to the nearest IEEE half-precision value (ties to even; |x| below 65504). */
double dref_round_f16(double x);

#endif /* MODELQ_DECODER_REF_H */
