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
**              rope_theta^(-2i/head_dim) is the default inverse frequency; llama_ref_forward_rope
**              takes config.json's rope_scaling (struct llama_ref_rope) instead.
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
** RoPE scaling, as transformers' modeling_rope_utils derives it from config.json's rope_scaling
** (written here from those semantics, in double precision; not from modelq's converter code).
** From the default inv_freq[i] = rope_theta^(-2i/head_dim), i < head_dim/2:
**   LINEAR  (_compute_linear_scaling_rope_parameters): inv_freq[i] / factor.
**   LLAMA3  (_compute_llama3_parameters): with wavelen = 2 pi / inv_freq[i],
**           lo = original_max_position_embeddings / low_freq_factor,
**           hi = original_max_position_embeddings / high_freq_factor:
**             wavelen < hi:  inv_freq[i] (high frequencies kept)
**             wavelen > lo:  inv_freq[i] / factor
**             otherwise:     (1 - s) inv_freq[i] / factor + s inv_freq[i],
**                            s = (original_max_position_embeddings / wavelen - low_freq_factor)
**                                / (high_freq_factor - low_freq_factor)
**   YARN    (_compute_yarn_parameters with truncate true, the default): with L the original
**           context (rope_scaling.original_max_position_embeddings, else max_position_embeddings),
**             dim(r) = head_dim ln(L / (2 pi r)) / (2 ln rope_theta)
**             low = max(floor(dim(beta_fast)), 0), high = min(ceil(dim(beta_slow)), head_dim - 1)
**             ramp[i] = clamp((i - low) / (high - low), 0, 1)   (high == low: high - low = 0.001)
**             inv_freq[i] / factor * ramp[i] + inv_freq[i] * (1 - ramp[i]),
**           and cos, sin (so q and k) multiplied by attention_factor, by default
**           0.1 ln(factor) + 1 (1 when factor <= 1).
** Every other type has attention_factor 1.
*/
enum llama_ref_rope_type {
    LLAMA_REF_ROPE_DEFAULT = 0,
    LLAMA_REF_ROPE_LINEAR,
    LLAMA_REF_ROPE_LLAMA3,
    LLAMA_REF_ROPE_YARN,
};

struct llama_ref_rope {
    enum llama_ref_rope_type type;
    double factor;                            /* LINEAR, LLAMA3, YARN: > 0 */
    double low_freq_factor, high_freq_factor; /* LLAMA3: high > low > 0 */
    double original_max_pos;                  /* LLAMA3: original_max_position_embeddings; YARN: L */
    double beta_fast, beta_slow;              /* YARN; 0 = 32 and 1 (transformers' defaults) */
    double attention_factor;                  /* YARN; 0 = the default above */
};

/*
** The inverse frequencies ([head_dim/2], caller-allocated) and the cos/sin magnitude for `rope`
** (NULL = default). Returns 0, or -1 when head_dim is not even and positive, rope_theta <= 1 or
** a parameter the type needs is out of range.
*/
int llama_ref_rope_freqs(const struct llama_ref_rope *rope, int head_dim, double rope_theta, double *inv_freq,
                         double *attention_factor);

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
/* The same with RoPE scaling: `rope` NULL (or type DEFAULT) = llama_ref_forward_bias. */
int llama_ref_forward_rope(const struct llama_ref_config *cfg, const struct llama_ref_rope *rope,
                           const struct llama_ref_weights *w, const struct llama_ref_bias *bias,
                           const int32_t *tokens, size_t n_tokens, float *logits, struct llama_ref_stats *stats);

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
