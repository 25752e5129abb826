/*
** gguf_family.h - private: what one Hugging Face architecture ("family") is to the GGUF writer.
**
** The rows live in gguf_families.c (data: names, shapes, keys, constraints); the engine that
** applies a row to a plan is gguf_arch.c. Adding the next dense family is a row of existing
** groups plus its config constraints, and a test.
*/
#ifndef MODELQ_FORMATS_GGUF_FAMILY_H
#define MODELQ_FORMATS_GGUF_FAMILY_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf_vocab.h" /* enum mq_vocab_rule */
#include "modelq/error.h"

/*
** Hyper-parameters: config.json values (hparams[] in gguf_arch.c gives the keys and ranges) and
** derived values (computed from them after reading, never read). A family reads the common ones
** and those in its `need` (required) and `opt` (read when present) masks.
*/
enum mq_hp {
    HP_NONE,
    HP_CTX, HP_EMBD, HP_LAYERS, HP_FF, HP_HEADS, HP_KV, HP_HEAD_DIM, HP_VOCAB, HP_EPS, HP_THETA,
    HP_EXPERTS,       /* num_local_experts (Mixtral) / num_experts (Qwen3-MoE) */
    HP_EXPERTS_USED,  /* num_experts_per_tok */
    HP_EXPERT_FF,     /* moe_intermediate_size */
    HP_SWA,           /* sliding_window */
    HP_ATTN_SOFTCAP,  /* attn_logit_softcapping */
    HP_FINAL_SOFTCAP, /* final_logit_softcapping */
    HP_QPAS,          /* query_pre_attn_scalar */
    HP_EMB_MULT,      /* embedding_multiplier */
    HP_RES_MULT,      /* residual_multiplier */
    HP_ATTN_MULT,     /* attention_multiplier */
    HP_LOGIT_SCALE,   /* logits_scaling */
    HP_PARTIAL_ROT,   /* partial_rotary_factor */
    HP_ORIG_CTX,      /* original_max_position_embeddings (top level: Phi-3) */
    HP_READ_N,
    /* derived */
    HP_ROT = HP_READ_N, /* rope.dimension_count: head_dim, or (Phi-3) int(partial x hidden) / heads */
    HP_QKV_ROWS,        /* (heads + 2 kv) x head_dim: a fused qkv_proj */
    HP_FF2,             /* 2 x intermediate_size: a fused gate_up_proj */
    HP_N
};

#define HPM(k) (1ull << (k))

struct mq_hvals {
    double v[HP_N];
    bool have[HP_N];
    uint64_t u[HP_N]; /* counts, exact */
};

/* ---- tensors ---- */

enum {
    TR_LAYER = 1 << 0,    /* the name follows "model.layers.N." */
    TR_REQUIRED = 1 << 1, /* every layer (or the model) must have it */
    TR_BIAS = 1 << 2,     /* a ".bias" of dims[0] may come with the weight (when the family allows biases) */
    TR_Q = 1 << 3,        /* Q rows: permuted by num_attention_heads when the family permutes */
    TR_K = 1 << 4,        /* K rows: permuted by num_key_value_heads */
    TR_NORM = 1 << 5,     /* a norm weight: + 1 when the family stores Gemma's (w - 1) */
    TR_EXPERT = 1 << 6,   /* one per expert: hf holds "%u" for the expert; stacked into one tensor */
};

/* A tensor: Hugging Face stem (without .weight / .bias, after "model.layers.N." for a layer
** tensor), GGUF stem (after "blk.N."), and the weight's dims in HF order, each a product of one or
** two hyper-parameters (an expert's dims: the stacked tensor is [experts, dims...]). */
struct mq_tensor_rule {
    const char *hf;
    const char *gguf;
    unsigned flags;
    uint32_t ndim;
    enum mq_hp dim[2][2];
};

/* ---- config constraints llama.cpp's graph for the family fixes ---- */

enum mq_fixed_kind {
    FIX_OFF,      /* absent, null, false, 0 or [] (a feature llama.cpp's graph does not have) */
    FIX_TRUE,     /* must be true (absent = transformers' default, which is false) */
    FIX_NUM,      /* absent, or this number */
    FIX_STR,      /* absent, or this string */
};

struct mq_fixed {
    const char *key;
    enum mq_fixed_kind kind;
    double num;
    const char *str;
    const char *why; /* what llama.cpp does instead */
};

struct mq_family;

/* A family's own check of config.json against llama.cpp's fixed rules (NULL: none). */
typedef enum mq_status (*mq_family_check_fn)(const struct mq_family *f, const cJSON *cfg, const char *path,
                                             const struct mq_hvals *h, struct mq_error *err);

enum {
    RS_LINEAR = 1 << 0, RS_YARN = 1 << 1, RS_LLAMA3 = 1 << 2, RS_LONGROPE = 1 << 3,
};

struct mq_family {
    const char *hf;                   /* config.json architectures[0] */
    const char *gguf;                 /* general.architecture */
    const struct mq_tensor_rule *const *groups; /* NULL-terminated list of rule groups */
    uint64_t need, opt;               /* HPM() masks beyond the common hyper-parameters */
    bool permute_qk;                  /* llama.cpp RoPE "normal": Q/K rows permuted (LlamaModel.permute) */
    bool biases;                      /* TR_BIAS tensors may have biases (llama.cpp loads them) */
    bool norm_plus_one;               /* Gemma: HF stores RMSNorm weights as w - 1 */
    double rope_theta;                /* rope_theta when config.json has none (0: 10000, llama.cpp's default) */
    unsigned rope_scaling;            /* RS_* types accepted */
    const struct mq_fixed *fixed;     /* {NULL}-terminated */
    mq_family_check_fn check;
    enum mq_vocab_rule vocab;         /* which tokenizer file (0, unset: tokenizer.json only) */
};

struct mq_plan;
/* gguf_lora.c: a PEFT adapter's tensors named, checked and transformed for the family, and the
** adapter keys (the plan holds the adapter's tensors; h is the base model's config). */
enum mq_status mq_gguf_lora_plan(struct mq_plan *p, const struct mq_family *f, const struct mq_hvals *h,
                                 const char *cfg_path, struct mq_error *err);

struct mq_model;
/* gguf_lora.c: a GGUF base's tensor for a Hugging Face module weight (the writer op input_name_of_hf). */
enum mq_status mq_gguf_input_name_of_hf(const struct mq_model *m, const char *hf, char *out, size_t cap,
                                        uint64_t *permute_heads, struct mq_error *err);

const struct mq_family *mq_family_find(const char *hf);
/* Row i of the table, NULL past the last. */
const struct mq_family *mq_family_at(size_t i);
/* "LlamaForCausalLM, MistralForCausalLM, ..." into buf (truncated to cap) */
void mq_family_list(char *buf, size_t cap);

#endif
