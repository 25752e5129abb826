/*
** family_ref.h - a Hugging Face checkpoint's config.json and tensor names -> the reference
** decoder (decoder_ref.h), for the families of issue 10. Written from transformers'
** configuration_<family>.py defaults and modeling_<family>.py module names, independently of
** modelq's converter (formats/gguf_arch.c), so the two can check each other.
**
** architectures[0]           family options (decoder_ref.h), config keys read (default)
**   LlamaForCausalLM,        plain; q/k/v biases when the tensors exist
**   MistralForCausalLM, Qwen2ForCausalLM
**   Qwen3ForCausalLM         head_dim; q_norm/k_norm per head; use_sliding_window must be false
**   Qwen3MoeForCausalLM      as Qwen3; num_experts, num_experts_per_tok, moe_intermediate_size,
**                            norm_topk_prob (false), decoder_sparse_step (1), mlp_only_layers ([]):
**                            layer l is sparse when l is not in mlp_only_layers and
**                            (l + 1) % decoder_sparse_step == 0; mlp.gate, mlp.experts.E.*_proj
**   MixtralForCausalLM       num_local_experts, num_experts_per_tok, intermediate_size = expert
**                            width; block_sparse_moe.gate, .experts.E.w1 (gate) w3 (up) w2 (down);
**                            top-k always renormalised; sliding_window (null) on every layer
**   Gemma2ForCausalLM        Gemma norms (1 + w), gelu_pytorch_tanh (hidden_activation),
**                            embeddings * float32(sqrt(hidden_size)), post_attention_layernorm,
**                            pre_/post_feedforward_layernorm, query_pre_attn_scalar,
**                            attn_logit_softcapping (50), final_logit_softcapping (30),
**                            sliding_window (4096) on even layers, tied (true)
**   Gemma3ForCausalLM        as Gemma 2 with q_norm/k_norm per head, softcaps (null), layer_types,
**                            else sliding_window_pattern (6): layer l sliding when (l + 1) % 6 != 0;
**                            rope_local_base_freq (10000) on sliding layers, rope_scaling on the rest
**   Phi3ForCausalLM          qkv_proj (rows q, k, v) and gate_up_proj (rows gate, up) split by row
**                            offsets; partial_rotary_factor (1): rot_dim = int(head_dim * factor);
**                            rope_scaling {type|rope_type: longrope, short_factor, long_factor},
**                            original_max_position_embeddings, max_position_embeddings;
**                            sliding_window (null) on every layer
**   SmolLM3ForCausalLM       no_rope_layers (list: 0 = NoPE layer), else no_rope_layer_interval (4):
**                            layer l NoPE when (l + 1) % interval == 0; use_sliding_window false
**   GraniteForCausalLM       embedding_multiplier, residual_multiplier, attention_multiplier (the
**                            attention scale), logits_scaling (logits divided by it) (all 1)
**   Olmo2ForCausalLM         no input_layernorm: post_attention_layernorm and
**                            post_feedforward_layernorm on the block outputs; q_norm/k_norm over
**                            the full projection width
** Common: vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
** num_key_value_heads (= heads), head_dim (hidden/heads), rms_norm_eps, rope_theta (10000),
** rope_scaling (linear / llama3 / yarn as llama_ref.h), tie_word_embeddings (the family's
** default: true for Gemma 2/3 and SmolLM3, else false); tied = the embedding is the output layer.
*/
#ifndef MODELQ_FAMILY_REF_H
#define MODELQ_FAMILY_REF_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "decoder_ref.h"

/*
** A tensor of the checkpoint as floats, [rows, cols] (cols 0: 1-D), or NULL when it is absent
** or has another shape (`optional`: absence is not an error).
*/
typedef const float *(*fref_get_fn)(void *user, const char *name, int rows, int cols, bool optional);

struct fref_model {
    char arch[64];
    struct dref_config cfg;
    struct dref_weights w;
    double longrope_short[256], longrope_long[256]; /* owned copies of rope_scaling's factors */
    bool tied;
};

/*
** Fills `m` from config.json (parsed) and the tensors `get` returns. Returns 0, or -1 with a
** one-line reason in `why` (unknown architecture, a missing key or tensor).
*/
int fref_bind(const cJSON *config, fref_get_fn get, void *user, struct fref_model *m, char *why, size_t why_len);

#endif /* MODELQ_FAMILY_REF_H */
