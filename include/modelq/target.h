/*
** modelq/target.h - output targets and which tensors each one quantizes.
**
** A target is what a user asks for ("q4_0", "nf4-dq"); it has a default codec and one rule set
** that decides, per tensor, the codec actually used or that the tensor is kept. `estimate` and
** `convert` both call mq_target_plan_tensor(), so the bytes estimated are the bytes written.
**
** Rule sets:
**   ALL_FLOAT   every float tensor converted (F32, F16/BF16 rows of the memory table)
**   GGUF        llama.cpp: convert_hf_to_gguf keeps 1-D tensors, norms and biases in F32;
**               llama-quantize quantizes 2-D+ "*weight" tensors that are not norms, MoE routers,
**               position or token-type embeddings; output.weight (or a tied token_embd) gets Q6_K
**               unless the target is Q8_0; IQ4_NL puts attn_v in Q5_K when n_head/n_kv_head >= 4
**               and ffn_down of the first n_layer/8 layers in Q5_K; rows that do not split into
**               blocks fall back (Q6_K->Q8_0, Q5_K->Q5_1, Q4_K->Q5_0, Q3_K/Q2_K->Q4_0,
**               IQ4_XS->IQ4_NL, then F16). The low-bit file types' mixtures: src/model/lowbit_rules.c.
**   BNB_LINEAR  bitsandbytes: only nn.Linear weights (2-D "*.weight" that are not embeddings and
**               not lm_head, which transformers skips by default); everything else in source dtype.
**   MATRICES    modelq's own codecs: every 2-D+ float weight that is not a norm or embedding
**               position table; the rest in source dtype.
*/
#ifndef MODELQ_TARGET_H
#define MODELQ_TARGET_H

#include <stdbool.h>
#include <stdint.h>

#include "modelq/codec.h"
#include "modelq/model.h"
#include "modelq/export.h"

enum mq_target {
    MQ_TARGET_NONE = -1, /* "no such target" (lookups that find none) */
    /* convert --type targets, in the order its help lists them */
    MQ_TARGET_AUTO,      /* keep the source precision (BF16 stays BF16) */
    MQ_TARGET_F32,
    MQ_TARGET_GGUF_F16,  /* GGUF f16: matrices F16 (also from BF16), 1-D tensors and norms F32 */
    MQ_TARGET_GGUF_BF16,
    MQ_TARGET_Q8_0,
    MQ_TARGET_Q4_0,
    MQ_TARGET_Q4_1,
    MQ_TARGET_Q5_0,
    MQ_TARGET_Q5_1,
    MQ_TARGET_IQ4_NL,
    MQ_TARGET_Q4_K_M,    /* llama-quantize Q4_K_M (its "Q4_K") */
    MQ_TARGET_Q4_K_S,
    MQ_TARGET_Q5_K,      /* llama-quantize Q5_K_M (its "Q5_K") */
    MQ_TARGET_Q5_K_S,
    MQ_TARGET_Q6_K,
    MQ_TARGET_Q2_K,      /* llama-quantize Q2_K, and the rest of its low-bit file types */
    MQ_TARGET_Q2_K_S,
    MQ_TARGET_Q3_K_S,
    MQ_TARGET_Q3_K_M,    /* llama-quantize Q3_K_M (its "Q3_K") */
    MQ_TARGET_Q3_K_L,
    MQ_TARGET_IQ4_XS,
    MQ_TARGET_NF4,       /* bitsandbytes NF4, block 64, F32 absmax */
    MQ_TARGET_NF4_DQ,    /* NF4 + double quantization */
    MQ_TARGET_FP4,       /* bitsandbytes FP4, block 64 */
    MQ_TARGET_INT8_ROW,  /* bitsandbytes LLM.int8 */
    MQ_TARGET_INT8_ASYM, /* modelq asymmetric INT8, block 64 */
    /* estimate only */
    MQ_TARGET_F16,       /* 16-bit: BF16 stays BF16, F16 stays F16, F32 becomes F16 */
    MQ_TARGET_COUNT
};

/* Rows of estimate's memory table (the targets whose estimate_row is set). */
#define MQ_ESTIMATE_ROWS 16

/*
** GGUF_FLOAT: convert_hf_to_gguf's float output: 1-D tensors and norms F32, other float tensors
** in the target's type (AUTO: their own F32/F16/BF16 type).
*/
enum mq_rule_set { MQ_RULES_ALL_FLOAT, MQ_RULES_GGUF, MQ_RULES_BNB_LINEAR, MQ_RULES_MATRICES, MQ_RULES_GGUF_FLOAT };

/* Where `convert` writes a target's output. */
enum mq_container {
    MQ_CONTAINER_NONE,       /* measured only (estimate rows, convert --dry-run) */
    MQ_CONTAINER_GGUF,       /* a GGUF file: every tensor's plan is a ggml type */
    MQ_CONTAINER_BNB         /* a bitsandbytes Hugging Face folder */
};

/*
** One row per target: everything modelq knows about it. `convert --type` parsing, its help text,
** the list of known names in messages, the writer chosen for a dry run and estimate's table all
** follow from these rows; adding a target is adding a row.
*/
struct mq_target_info {
    const char *name;        /* CLI spelling: "q8_0", "nf4-dq" */
    const char *alias;       /* another accepted spelling (llama-quantize's "Q4_K_M"), or NULL */
    const char *label;       /* table label: "NF4 + double quant" */
    enum mq_codec codec;     /* default codec for quantized tensors */
    struct mq_codec_params params;
    enum mq_rule_set rules;
    int llama_ftype;         /* general.file_type for GGUF targets, -1 otherwise */
    enum mq_container container;
    bool convert;            /* accepted by `convert --type` (listed in its help, in table order) */
    int estimate_row;        /* 1-based row of estimate's memory table, 0 = not a row */
    const char *help;        /* convert --help: what the type is (one line) */
};

/* The row of target t, or NULL past the last row. The table may hold rows past MQ_TARGET_COUNT
** (targets no code names): iterate with t = 0, 1, ... until NULL. */
MQ_API const struct mq_target_info *mq_target_info(enum mq_target t);
/* Estimate rows by name (case-insensitive). */
MQ_API bool mq_target_from_name(const char *name, enum mq_target *out);
/* `convert --type NAME` (a convert row's name or alias, case-insensitive). */
MQ_API bool mq_target_for_convert(const char *name, enum mq_target *out);
/* The names mq_target_for_convert accepts, space separated ("q4_K(_M)" for an alias suffix). */
MQ_API const char *mq_target_convert_names(void);
/* The target of estimate's row k (0-based, k < MQ_ESTIMATE_ROWS). */
MQ_API enum mq_target mq_target_of_estimate_row(int k);
/* A GGUF target: the plan of every tensor is a ggml type. */
MQ_API bool mq_target_is_gguf(enum mq_target t);

/* What a target does with one tensor. */
struct mq_tensor_plan {
    bool convert;            /* false: kept as stored (dtype and bytes unchanged) */
    bool quantized;          /* the codec is a quantizer (not a plain float type) */
    enum mq_codec codec;     /* valid when convert */
    struct mq_codec_params params;
    uint64_t bytes;          /* output bytes of this tensor */
    bool fell_back;          /* the rule's codec did not fit the row length */
    bool eligible;           /* a weight matrix the user may retype (--tensor-type, --keep); 1-D
                              * tensors, norms and biases are not, as in llama-quantize */
    const char *why;         /* short reason for the choice ("norm", "output", "fallback" ...) */
};

/*
** llama-quantize refuses to write this tensor without an importance matrix (its
** tensor_requires_imatrix): a Q2_K tensor of a Q2_K_S file other than token_embd / output.
** gguf_name is the tensor's GGUF name, c its final type.
*/
MQ_API bool mq_target_requires_imatrix(enum mq_target t, const char *gguf_name, enum mq_codec c);

/* Model-wide facts the rules need (tied embeddings, GQA ratio, layer count). */
struct mq_rule_context {
    bool has_output;         /* an lm_head/output tensor exists (else embeddings are tied) */
    uint64_t n_gqa;          /* num_heads / num_kv_heads, 0 unknown */
    uint64_t n_layer;        /* from config or the highest layer index + 1 */
    uint64_t n_expert;       /* MoE experts (config num_local_experts), 0 = dense */
};

MQ_API void mq_rule_context_init(struct mq_rule_context *rc, const struct mq_model *m);

/* llama.cpp's tensor_type_fallback for codec c on rows of row_len that c's block does not divide:
 * Q6_K -> Q8_0, Q5_K -> Q5_1, Q4_K -> Q5_0, Q3_K and Q2_K -> Q4_0, IQ4_XS -> IQ4_NL, anything else
 * (or a fallback that does not fit) -> F16. */
MQ_API enum mq_codec mq_codec_fallback(enum mq_codec c, uint64_t row_len);

MQ_API enum mq_status mq_target_plan_tensor(enum mq_target t, const struct mq_rule_context *rc,
                                     const struct mq_tensor *ts, struct mq_tensor_plan *out,
                                     struct mq_error *err);

#endif /* MODELQ_TARGET_H */
