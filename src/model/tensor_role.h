/*
** tensor_role.h - what a tensor is, from its name (Hugging Face or GGUF spelling).
** The quantization rules of llama.cpp and bitsandbytes are written in terms of these roles.
*/
#ifndef MODELQ_TENSOR_ROLE_H
#define MODELQ_TENSOR_ROLE_H

#include <stdbool.h>

enum mq_role {
    MQ_ROLE_OTHER,
    MQ_ROLE_TOKEN_EMBD,  /* model.embed_tokens.weight, token_embd.weight, wte */
    MQ_ROLE_OUTPUT,      /* lm_head.weight, output.weight */
    MQ_ROLE_POS_EMBD,    /* learned position / token-type tables */
    MQ_ROLE_NORM,
    MQ_ROLE_ROUTER,      /* MoE gate (ffn_gate_inp) */
    MQ_ROLE_ATTN_Q,
    MQ_ROLE_ATTN_K,
    MQ_ROLE_ATTN_V,
    MQ_ROLE_ATTN_QKV,    /* fused Q/K/V projection (attn_qkv, qkv_proj) */
    MQ_ROLE_ATTN_OUT,
    MQ_ROLE_FFN_GATE,
    MQ_ROLE_FFN_UP,
    MQ_ROLE_FFN_DOWN
};

enum mq_role mq_tensor_role(const char *name);
/*
** llama-quantize's name rules for a GGUF tensor (llama.cpp src/llama-quant.cpp,
** tensor_allows_quantization, with the output tensor quantized as by default): NULL when a tensor
** of two or more dimensions with this name is quantized, else why not ("norm", "not a weight",
** ...). The dimension rule (ndim >= 2) is the caller's.
*/
const char *mq_tensor_gguf_unquantized(const char *name);

/* convert_hf_to_gguf.py's float outputs (f32/f16/bf16): a GGUF tensor name it always writes in F32
** beside 1-D tensors and norms (ModelBase.prepare_tensors: the MoE router, position embeddings,
** token types, and any tensor whose name does not end in ".weight"). */
bool mq_tensor_gguf_float_keeps_f32(const char *name);

/* Layer index from "layers.N." / "blk.N." / "h.N.", or -1. */
long mq_tensor_layer(const char *name);

#endif
