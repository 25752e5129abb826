/*
** llama_ref.h - a reference Llama forward pass in plain C (double precision), for tests.
**
** It is the Hugging Face LlamaForCausalLM math (and Qwen2ForCausalLM's, which only adds q/k/v
** biases: llama_ref_forward_bias), written against plain float arrays in the Hugging Face layout
** (no GGUF Q/K permutation):
**
**   x = embed[token]
**   per layer:  h = x + o_proj(attn(rmsnorm(x) * input_layernorm))
**               x = h + down_proj(silu(gate_proj(n)) * up_proj(n)),  n = rmsnorm(h) * post_attention_layernorm
**   logits = lm_head(rmsnorm(x) * norm)
**
**   rmsnorm(v) = v / sqrt(mean(v^2) + rms_norm_eps)
**   attention: q = Wq n + bq, k = Wk n + bk, v = Wv n + bv (biases only where given) split into
**              heads of head_dim; query head h reads
**              KV head h / (n_head / n_kv_head) (transformers' repeat_kv); RoPE "rotate half":
**              for i < head_dim/2, with a = pos * rope_theta^(-2i/head_dim),
**                  out[i]            = x[i] cos a - x[i + head_dim/2] sin a
**                  out[i+head_dim/2] = x[i + head_dim/2] cos a + x[i] sin a
**              scores = q.k / sqrt(head_dim), causal (key position <= query position), softmax.
**
** Every weight is row-major [out_features, in_features], exactly as safetensors stores it.
** The attention-logit statistics are taken over the pre-softmax scores of every layer, head and
** causal (query, key) pair, the diagonal included.
*/
#ifndef MODELQ_LLAMA_REF_H
#define MODELQ_LLAMA_REF_H

#include <stddef.h>
#include <stdint.h>

struct llama_ref_config {
    int n_vocab;
    int n_embd;      /* hidden_size */
    int n_ff;        /* intermediate_size */
    int n_layer;     /* num_hidden_layers */
    int n_head;      /* num_attention_heads */
    int n_kv_head;   /* num_key_value_heads; must divide n_head */
    int head_dim;    /* even */
    double rms_eps;  /* rms_norm_eps */
    double rope_theta;
};

/* One decoder layer; shapes in Hugging Face order [rows, cols]. */
struct llama_ref_layer {
    const float *attn_norm; /* input_layernorm.weight           [n_embd] */
    const float *wq;        /* self_attn.q_proj.weight          [n_head*head_dim, n_embd] */
    const float *wk;        /* self_attn.k_proj.weight          [n_kv_head*head_dim, n_embd] */
    const float *wv;        /* self_attn.v_proj.weight          [n_kv_head*head_dim, n_embd] */
    const float *wo;        /* self_attn.o_proj.weight          [n_embd, n_head*head_dim] */
    const float *ffn_norm;  /* post_attention_layernorm.weight  [n_embd] */
    const float *w_gate;    /* mlp.gate_proj.weight             [n_ff, n_embd] */
    const float *w_up;      /* mlp.up_proj.weight               [n_ff, n_embd] */
    const float *w_down;    /* mlp.down_proj.weight             [n_embd, n_ff] */
};

struct llama_ref_weights {
    const float *embed;                   /* model.embed_tokens.weight [n_vocab, n_embd] */
    const struct llama_ref_layer *layers; /* n_layer entries */
    const float *final_norm;              /* model.norm.weight [n_embd] */
    const float *lm_head;                 /* lm_head.weight [n_vocab, n_embd] (embed when tied) */
};

/* Optional attention biases of one layer (Qwen2); a NULL member means that projection has none. */
struct llama_ref_bias {
    const float *bq;        /* self_attn.q_proj.bias            [n_head*head_dim] */
    const float *bk;        /* self_attn.k_proj.bias            [n_kv_head*head_dim] */
    const float *bv;        /* self_attn.v_proj.bias            [n_kv_head*head_dim] */
};

/* Pre-softmax attention scores (q.k / sqrt(head_dim)) seen during one or more forward passes. */
struct llama_ref_stats {
    uint64_t count;        /* causal scores seen, all layers and heads */
    double sum, sum_sq;    /* running sums for mean/std */
    int n_layer;           /* layers tracked in the per-layer arrays below (at most 16) */
    uint64_t layer_count[16];
    double layer_sum[16], layer_sum_sq[16];
};

void llama_ref_stats_init(struct llama_ref_stats *s);
/* Population standard deviation of all scores seen; 0 when none. */
double llama_ref_stats_std(const struct llama_ref_stats *s);
/* Smallest per-layer standard deviation (a layer with flat attention would hide in the total). */
double llama_ref_stats_min_layer_std(const struct llama_ref_stats *s);

/*
** Runs `n_tokens` tokens (each in [0, n_vocab)) through the model and writes n_tokens * n_vocab
** logits, position-major, to `logits` (caller-allocated). Scores are added to `stats` when it is
** not NULL. Returns 0, or -1 on a bad argument (token out of range, inconsistent config) or when
** memory runs out.
*/
int llama_ref_forward(const struct llama_ref_config *cfg, const struct llama_ref_weights *w,
                      const int32_t *tokens, size_t n_tokens, float *logits,
                      struct llama_ref_stats *stats);
/* The same with q/k/v biases: `bias` has n_layer entries, or is NULL (= llama_ref_forward). */
int llama_ref_forward_bias(const struct llama_ref_config *cfg, const struct llama_ref_weights *w,
                           const struct llama_ref_bias *bias, const int32_t *tokens, size_t n_tokens,
                           float *logits, struct llama_ref_stats *stats);

/*
** The Q/K row permutation of llama.cpp's convert_hf_to_gguf.py (LlamaModel.permute) on a
** row-major [rows, cols] matrix whose rows form `n_head` heads of rows/n_head (even) rows:
**   to_gguf = 1:  out[h*hd + 2i + j] = in[h*hd + j*hd/2 + i]   (HF rotate-half -> adjacent pairs)
**   to_gguf = 0:  the inverse, out[h*hd + j*hd/2 + i] = in[h*hd + 2i + j]
** (h < n_head, i < hd/2, j in {0,1}; columns unchanged). Running this reference with q/k weights
** passed through the inverse shows what llama.cpp computes from a file that lacks the permutation.
** Returns 0, or -1 when rows do not split into heads of an even size.
*/
int llama_ref_permute_rows(const float *in, int rows, int cols, int n_head, int to_gguf, float *out);

/* Softmax of one logit row: returns the largest probability and stores its index in *argmax. */
double llama_ref_top_prob(const float *logits, int n_vocab, int *argmax);

#endif /* MODELQ_LLAMA_REF_H */
