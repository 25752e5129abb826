/* targets.c - the target table and the per-tensor rules (see include/modelq/target.h). */
#include "model_impl.h"
#include "modelq/target.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lowbit_rules.h"
#include "tensor_role.h"

#define GGUF_Q(n, lab, c, ft, row, h)                                                                       \
    {.name = n, .label = lab, .codec = c, .rules = MQ_RULES_GGUF, .llama_ftype = ft,                          \
     .container = MQ_CONTAINER_GGUF, .convert = true, .estimate_row = row, .help = h}
#define BNB(n, lab, c, bs, dq, row, h)                                                                        \
    {.name = n, .label = lab, .codec = c, .params = {bs, dq}, .rules = MQ_RULES_BNB_LINEAR, .llama_ftype = -1, \
     .container = MQ_CONTAINER_BNB, .convert = true, .estimate_row = row, .help = h}

/*
** The targets. llama_ftype from llama.cpp's include/llama.h; q4_K and q5_K are llama-quantize's
** Q4_K_M (15) and Q5_K_M (17): the same mixtures (see gguf_choose). estimate_row orders
** estimate's memory table.
*/
static const struct mq_target_info target_table[] = {
    [MQ_TARGET_AUTO] = {.name = "auto", .label = "source precision", .codec = MQ_CODEC_F32,
                        .rules = MQ_RULES_GGUF_FLOAT, .llama_ftype = -1, .container = MQ_CONTAINER_GGUF,
                        .convert = true, .help = "keep the source precision (BF16 stays BF16; the default)"},
    [MQ_TARGET_F32] = {.name = "f32", .label = "FP32", .codec = MQ_CODEC_F32, .rules = MQ_RULES_ALL_FLOAT,
                       .llama_ftype = 0, .container = MQ_CONTAINER_GGUF, .convert = true, .estimate_row = 1,
                       .help = "float32 GGUF, every tensor"},
    [MQ_TARGET_GGUF_F16] = {.name = "f16", .label = "GGUF F16", .codec = MQ_CODEC_F16, .rules = MQ_RULES_GGUF_FLOAT,
                            .llama_ftype = 1, .container = MQ_CONTAINER_GGUF, .convert = true,
                            .help = "float16 GGUF (1-D tensors and norms stay F32)"},
    [MQ_TARGET_GGUF_BF16] = {.name = "bf16", .label = "GGUF BF16", .codec = MQ_CODEC_BF16,
                             .rules = MQ_RULES_GGUF_FLOAT, .llama_ftype = 32, .container = MQ_CONTAINER_GGUF,
                             .convert = true, .help = "bfloat16 GGUF (1-D tensors and norms stay F32)"},
    [MQ_TARGET_Q8_0] = GGUF_Q("q8_0", "GGUF Q8_0", MQ_CODEC_Q8_0, 7, 3, "8-bit blocks of 32 (8.5 bits per weight)"),
    [MQ_TARGET_Q4_0] = GGUF_Q("q4_0", "GGUF Q4_0", MQ_CODEC_Q4_0, 2, 8, "4-bit blocks of 32, output.weight Q6_K"),
    [MQ_TARGET_Q4_1] = GGUF_Q("q4_1", "GGUF Q4_1", MQ_CODEC_Q4_1, 3, 0, "4-bit blocks of 32 with a minimum"),
    [MQ_TARGET_Q5_0] = GGUF_Q("q5_0", "GGUF Q5_0", MQ_CODEC_Q5_0, 8, 0, "5-bit blocks of 32"),
    [MQ_TARGET_Q5_1] = GGUF_Q("q5_1", "GGUF Q5_1", MQ_CODEC_Q5_1, 9, 0, "5-bit blocks of 32 with a minimum"),
    [MQ_TARGET_IQ4_NL] = GGUF_Q("iq4_nl", "GGUF IQ4_NL", MQ_CODEC_IQ4_NL, 25, 9,
                                "4-bit non-linear blocks of 32 (attn_v/ffn_down Q5_K where llama-quantize says)"),
    [MQ_TARGET_Q4_K_M] = {.name = "q4_K", .alias = "q4_K_M", .label = "GGUF Q4_K_M", .codec = MQ_CODEC_Q4_K,
                          .rules = MQ_RULES_GGUF, .llama_ftype = 15, .container = MQ_CONTAINER_GGUF, .convert = true,
                          .estimate_row = 10,
                          .help = "Q4_K_M: 4-bit super-blocks, attn_v/ffn_down Q6_K in llama-quantize's layers"},
    [MQ_TARGET_Q4_K_S] = GGUF_Q("q4_K_S", "GGUF Q4_K_S", MQ_CODEC_Q4_K, 14, 0, "Q4_K_S: 4-bit super-blocks, Q5_K for attn_v/ffn_down of the first layers"),
    [MQ_TARGET_Q5_K] = {.name = "q5_K", .alias = "q5_K_M", .label = "GGUF Q5_K_M", .codec = MQ_CODEC_Q5_K,
                        .rules = MQ_RULES_GGUF, .llama_ftype = 17, .container = MQ_CONTAINER_GGUF, .convert = true,
                        .help = "Q5_K_M: 5-bit super-blocks, attn_v/ffn_down Q6_K in llama-quantize's layers"},
    [MQ_TARGET_Q5_K_S] = GGUF_Q("q5_K_S", "GGUF Q5_K_S", MQ_CODEC_Q5_K, 16, 0, "Q5_K_S: 5-bit super-blocks"),
    [MQ_TARGET_Q6_K] = GGUF_Q("q6_K", "GGUF Q6_K", MQ_CODEC_Q6_K, 18, 0, "6-bit super-blocks"),
    [MQ_TARGET_Q2_K] = GGUF_Q("q2_K", "GGUF Q2_K", MQ_CODEC_Q2_K, 10, 15,
                              "Q2_K: 2-bit super-blocks, attn_v/ffn_down/attn_output Q3_K (attn_v Q4_K with GQA >= 4)"),
    [MQ_TARGET_Q2_K_S] = GGUF_Q("q2_K_S", "GGUF Q2_K_S", MQ_CODEC_Q2_K, 21, 16,
                                "Q2_K_S: 2-bit super-blocks; llama-quantize requires an importance matrix"),
    [MQ_TARGET_Q3_K_S] = GGUF_Q("q3_K_S", "GGUF Q3_K_S", MQ_CODEC_Q3_K, 11, 14, "Q3_K_S: 3-bit super-blocks"),
    [MQ_TARGET_Q3_K_M] = {.name = "q3_K", .alias = "q3_K_M", .label = "GGUF Q3_K_M", .codec = MQ_CODEC_Q3_K,
                          .rules = MQ_RULES_GGUF, .llama_ftype = 12, .container = MQ_CONTAINER_GGUF, .convert = true,
                          .estimate_row = 13,
                          .help = "Q3_K_M: 3-bit super-blocks, attn_v/ffn_down/attn_output Q4_K-Q5_K"},
    [MQ_TARGET_Q3_K_L] = GGUF_Q("q3_K_L", "GGUF Q3_K_L", MQ_CODEC_Q3_K, 13, 12,
                                "Q3_K_L: 3-bit super-blocks, attn_v/ffn_down/attn_output Q5_K"),
    [MQ_TARGET_IQ4_XS] = GGUF_Q("iq4_xs", "GGUF IQ4_XS", MQ_CODEC_IQ4_XS, 30, 11,
                                "4-bit non-linear super-blocks (4.25 bits per weight)"),
    [MQ_TARGET_NF4] = BNB("nf4", "bnb NF4 (block 64)", MQ_CODEC_NF4, 64, false, 6,
                          "bitsandbytes NF4 folder transformers loads (linear layers, block 64)"),
    [MQ_TARGET_NF4_DQ] = BNB("nf4-dq", "bnb NF4 + double quant", MQ_CODEC_NF4, 64, true, 7,
                             "bitsandbytes NF4 with double quantization of the absmax"),
    [MQ_TARGET_FP4] = BNB("fp4", "bnb FP4 (block 64)", MQ_CODEC_FP4, 64, false, 0, "bitsandbytes FP4 folder"),
    [MQ_TARGET_INT8_ROW] = BNB("int8_row", "bnb LLM.int8", MQ_CODEC_INT8_ROW, 0, false, 4,
                               "bitsandbytes LLM.int8 folder (one scale per row)"),
    [MQ_TARGET_INT8_ASYM] = {.name = "int8_asym", .label = "INT8 asym (block 64)", .codec = MQ_CODEC_INT8_ASYM,
                             .params = {64, false}, .rules = MQ_RULES_MATRICES, .llama_ftype = -1,
                             .container = MQ_CONTAINER_NONE, .convert = true, .estimate_row = 5,
                             .help = "modelq's asymmetric INT8 (block 64): --dry-run --stats only"},
    [MQ_TARGET_F16] = {.name = "f16", .label = "FP16 / BF16", .codec = MQ_CODEC_F16, .rules = MQ_RULES_ALL_FLOAT,
                       .llama_ftype = 1, .container = MQ_CONTAINER_NONE, .estimate_row = 2},
    /* rows past the named targets need no enum value: --type finds them by name */
};
#define N_TARGETS (sizeof target_table / sizeof target_table[0])
_Static_assert(N_TARGETS >= MQ_TARGET_COUNT, "every named target has a row");

const struct mq_target_info *mq_target_info(enum mq_target t)
{
    return (unsigned)t < N_TARGETS ? &target_table[t] : NULL;
}

bool mq_target_for_convert(const char *name, enum mq_target *out)
{
    for (size_t i = 0; i < N_TARGETS; i++) {
        const struct mq_target_info *ti = &target_table[i];
        if (ti->convert && (strcasecmp(ti->name, name) == 0 || (ti->alias && strcasecmp(ti->alias, name) == 0))) {
            *out = (enum mq_target)i;
            return true;
        }
    }
    return false;
}

static char convert_names[512];

/* "auto f32 ... q4_K(_M) ...": an alias that extends the name is written as "name(suffix)". */
static void build_convert_names(void)
{
    size_t k = 0;
    for (size_t i = 0; i < N_TARGETS; i++) {
        const struct mq_target_info *ti = &target_table[i];
        if (!ti->convert) continue;
        size_t nl = strlen(ti->name);
        int w;
        if (ti->alias && strncasecmp(ti->alias, ti->name, nl) == 0)
            w = snprintf(convert_names + k, sizeof convert_names - k, "%s%s(%s)", k ? " " : "", ti->name,
                         ti->alias + nl);
        else
            w = snprintf(convert_names + k, sizeof convert_names - k, "%s%s%s%s", k ? " " : "", ti->name,
                         ti->alias ? " " : "", ti->alias ? ti->alias : "");
        if (w < 0 || (size_t)w >= sizeof convert_names - k) break;
        k += (size_t)w;
    }
}

const char *mq_target_convert_names(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, build_convert_names);
    return convert_names;
}

enum mq_target mq_target_of_estimate_row(int k)
{
    for (size_t i = 0; i < N_TARGETS; i++)
        if (target_table[i].estimate_row == k + 1) return (enum mq_target)i;
    return MQ_TARGET_NONE;
}

bool mq_target_is_gguf(enum mq_target t)
{
    const struct mq_target_info *ti = mq_target_info(t);
    return ti && ti->container == MQ_CONTAINER_GGUF;
}

bool mq_target_from_name(const char *name, enum mq_target *out)
{
    for (int k = 0; k < MQ_ESTIMATE_ROWS; k++) {
        enum mq_target t = mq_target_of_estimate_row(k);
        if (t != MQ_TARGET_NONE && strcasecmp(target_table[t].name, name) == 0) {
            *out = t;
            return true;
        }
    }
    return false;
}

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

void mq_rule_context_init(struct mq_rule_context *rc, const struct mq_model *m)
{
    memset(rc, 0, sizeof *rc);
    long max_layer = -1;
    for (size_t i = 0; i < m->n_tensors; i++) {
        if (mq_tensor_role(m->tensors[i].name) == MQ_ROLE_OUTPUT) rc->has_output = true;
        long l = mq_tensor_layer(m->tensors[i].name);
        if (l > max_layer) max_layer = l;
    }
    rc->n_layer = m->config.num_layers ? m->config.num_layers : (uint64_t)(max_layer + 1);
    if (m->config.num_heads && m->config.num_kv_heads) rc->n_gqa = m->config.num_heads / m->config.num_kv_heads;
    rc->n_expert = m->config.num_experts;
}

static bool row_fits(enum mq_codec c, uint64_t row_len)
{
    const struct mq_codec_info *ci = mq_codec_info(c);
    return ci->flat_blocks || row_len % ci->block_elems == 0;
}

/* llama-quantize's use_more_bits(i_layer, n_layer): the first and last eighth of the layers and every
 * third layer in between. Layer -1 (a tensor outside the blocks) never qualifies. The arithmetic is
 * C int division as in llama.cpp; (i - n/8) % 3 == 2 needs i >= n/8, which the first test covers. */
static bool use_more_bits(long i, uint64_t n_layers)
{
    if (i < 0 || n_layers > (uint64_t)INT32_MAX) return false;
    long n = (long)n_layers;
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

enum mq_codec mq_codec_fallback(enum mq_codec c, uint64_t row_len)
{
    /* llama.cpp tensor_type_fallback: the K-quant's nearest 32-block type, then F16 */
    enum mq_codec f = c == MQ_CODEC_Q6_K ? MQ_CODEC_Q8_0
                    : c == MQ_CODEC_Q5_K ? MQ_CODEC_Q5_1
                    : c == MQ_CODEC_Q4_K ? MQ_CODEC_Q5_0
                    : c == MQ_CODEC_Q3_K || c == MQ_CODEC_Q2_K ? MQ_CODEC_Q4_0
                    : c == MQ_CODEC_IQ4_XS ? MQ_CODEC_IQ4_NL
                                         : MQ_CODEC_F16;
    return row_fits(f, row_len) ? f : MQ_CODEC_F16;
}

/* llama-quantize's file types with a K-quant mixture (llama_tensor_get_type). */
static bool is_k_m(enum mq_target t) { return t == MQ_TARGET_Q4_K_M || t == MQ_TARGET_Q5_K; }

/*
** llama-quantize's choice for an eligible tensor (llama_tensor_get_type without imatrix), for the
** file types modelq writes. Layers are taken from the name ("blk.N."), which equals llama.cpp's
** per-role counters (i_attention_wv, i_ffn_down) for one attn_v and one ffn_down per layer.
*/
static enum mq_codec gguf_choose(enum mq_target t, const struct mq_rule_context *rc, const struct mq_tensor *ts,
                                 enum mq_role role, bool *fell_back, const char **why)
{
    enum mq_codec c = target_table[t].codec;
    uint64_t row = mq_tensor_row_len(ts);
    long layer = mq_tensor_layer(ts->name);
    bool more_bits = use_more_bits(layer, rc->n_layer);
    /* LLM_TYPE_70B: 80 layers with grouped-query attention (Llama 2/3 70B; Qwen2 72B) */
    bool is_70b = rc->n_layer == 80 && rc->n_gqa > 1;
    *why = "quantized";
    /* the pinned llama-quant.cpp takes a fused attn_qkv for attn_v (one per layer, counted with
     * them): the same rules (checked against llama_model_quantize on a Phi-3 file) */
    if (role == MQ_ROLE_ATTN_QKV) role = MQ_ROLE_ATTN_V;
    /* the low-bit file types' mixtures (lowbit_rules.c); other targets pass through unchanged */
    c = mq_lowbit_choose(t, rc, role, layer, c, why);
    if (role == MQ_ROLE_OUTPUT || (role == MQ_ROLE_TOKEN_EMBD && !rc->has_output)) {
        if (!row_fits(c, row)) c = MQ_CODEC_Q8_0;
        else if (c != MQ_CODEC_Q8_0) c = MQ_CODEC_Q6_K;
        *why = role == MQ_ROLE_OUTPUT ? "output tensor" : "tied embeddings (as output)";
    } else if (role == MQ_ROLE_ATTN_V) {
        if (t == MQ_TARGET_IQ4_NL && rc->n_gqa >= 4) c = MQ_CODEC_Q5_K, *why = "attn_v with GQA >= 4";
        else if (is_k_m(t) && more_bits) c = MQ_CODEC_Q6_K, *why = "attn_v: more bits in this layer (_M)";
        else if (t == MQ_TARGET_Q4_K_S && layer >= 0 && layer < 4) c = MQ_CODEC_Q5_K, *why = "attn_v of layers 0-3 (Q4_K_S)";
        if (is_70b && (c == MQ_CODEC_Q3_K || c == MQ_CODEC_Q4_K)) c = MQ_CODEC_Q5_K, *why = "attn_v of a 70B model";
        /* Mixtral-style 8-expert models keep attention K/V at 8 bits in every file type */
        if (rc->n_expert == 8) c = MQ_CODEC_Q8_0, *why = "attn_k/attn_v with 8 experts";
    } else if (role == MQ_ROLE_ATTN_K) {
        if (rc->n_expert == 8) c = MQ_CODEC_Q8_0, *why = "attn_k/attn_v with 8 experts";
    } else if (role == MQ_ROLE_FFN_DOWN) {
        bool first_eighth = layer >= 0 && (uint64_t)layer < rc->n_layer / 8;
        if (t == MQ_TARGET_Q4_K_M && more_bits) c = MQ_CODEC_Q6_K, *why = "ffn_down: more bits in this layer (_M)";
        else if (t == MQ_TARGET_IQ4_NL && first_eighth) c = MQ_CODEC_Q5_K, *why = "ffn_down in the first n_layer/8 layers";
        else if (t == MQ_TARGET_Q5_K && more_bits) c = MQ_CODEC_Q6_K, *why = "ffn_down: more bits in this layer (_M)";
        else if (t == MQ_TARGET_Q4_K_S && first_eighth) c = MQ_CODEC_Q5_K, *why = "ffn_down in the first n_layer/8 layers";
    } else if (role == MQ_ROLE_ATTN_OUT) {
        /* llama-quantize's list for Q5_K attn_output with 8 experts, as far as modelq writes its types */
        if (rc->n_expert == 8 && (t == MQ_TARGET_IQ4_NL || t == MQ_TARGET_Q4_K_S || t == MQ_TARGET_Q4_K_M))
            c = MQ_CODEC_Q5_K, *why = "attn_output with 8 experts";
    }
    if (!row_fits(c, row)) {
        c = mq_codec_fallback(c, row);
        *fell_back = true;
        *why = "row length does not fit the block: fallback";
    }
    return c;
}

enum mq_status mq_target_plan_tensor(enum mq_target t, const struct mq_rule_context *rc,
                                     const struct mq_tensor *ts, struct mq_tensor_plan *out,
                                     struct mq_error *err)
{
    const struct mq_target_info *ti = mq_target_info(t);
    if (!ti) return MQ_FAIL(err, MQ_E_INTERNAL, "target", "unknown target %d", (int)t);
    memset(out, 0, sizeof *out);
    out->bytes = ts->nbytes;
    out->why = "kept";
    if (!mq_dtype_is_quantizable_float(ts->dtype)) {
        out->why = "not F32/F16/BF16: kept as stored";
        return MQ_OK;
    }
    enum mq_role role = mq_tensor_role(ts->name);
    bool weight = ends_with(ts->name, "weight");
    switch (ti->rules) {
    case MQ_RULES_ALL_FLOAT:
        out->convert = true;
        out->eligible = ts->ndim >= 2 && weight && role != MQ_ROLE_NORM;
        out->codec = ti->codec;
        if (ti->codec == MQ_CODEC_F16 && ts->dtype == MQ_DTYPE_BF16) out->codec = MQ_CODEC_BF16;
        out->why = "converted";
        break;
    case MQ_RULES_GGUF: {
        /* llama-quantize's rule on the GGUF name: only "_norm.weight" marks a norm */
        const char *excluded = ts->ndim >= 2 ? mq_tensor_gguf_unquantized(ts->name) : "1-D";
        bool eligible = excluded == NULL;
        out->convert = true;
        out->eligible = eligible;
        if (!eligible) {
            /* convert_hf_to_gguf.py writes these in F32 and llama-quantize copies them */
            out->codec = MQ_CODEC_F32;
            out->why = ts->ndim <= 1 ? "1-D: F32" : strcmp(excluded, "norm") == 0 ? "norm: F32"
                     : !weight ? "bias: F32" : excluded; /* llama-quantize's reason */
        } else {
            out->codec = gguf_choose(t, rc, ts, role, &out->fell_back, &out->why);
            out->quantized = mq_codec_is_quantized(out->codec);
        }
        break;
    }
    case MQ_RULES_BNB_LINEAR:
        /* every Linear weight; lm_head is one too: kept by default, but the user may quantize it */
        out->eligible = ts->ndim == 2 && ends_with(ts->name, ".weight") && role != MQ_ROLE_TOKEN_EMBD &&
                        role != MQ_ROLE_POS_EMBD && role != MQ_ROLE_NORM;
        if (out->eligible && role != MQ_ROLE_OUTPUT) {
            out->convert = out->quantized = true;
            out->codec = ti->codec;
            out->params = ti->params;
            out->why = "linear layer";
        } else {
            out->why = role == MQ_ROLE_OUTPUT ? "lm_head: skipped by default" : "not a linear layer: source dtype";
        }
        break;
    case MQ_RULES_GGUF_FLOAT: {
        /* convert_hf_to_gguf.py: F32 for 1-D tensors, names ending in "_norm.weight" and its always-F32 kinds */
        bool norm = ends_with(ts->name, "_norm.weight");
        out->convert = true;
        out->eligible = ts->ndim >= 2 && mq_tensor_gguf_unquantized(ts->name) == NULL;
        if (ts->ndim <= 1 || norm || mq_tensor_gguf_float_keeps_f32(ts->name)) {
            out->codec = MQ_CODEC_F32;
            out->why = ts->ndim <= 1 ? "1-D: F32" : norm ? "norm: F32" : "F32 in llama.cpp's converter";
        } else if (t == MQ_TARGET_AUTO) {
            out->codec = ts->dtype == MQ_DTYPE_BF16 ? MQ_CODEC_BF16 : ts->dtype == MQ_DTYPE_F16 ? MQ_CODEC_F16 : MQ_CODEC_F32;
            out->why = "source precision";
        } else {
            out->codec = ti->codec;
            out->why = "converted";
        }
        break;
    }
    case MQ_RULES_MATRICES:
        out->eligible = ts->ndim >= 2 && weight && role != MQ_ROLE_NORM && role != MQ_ROLE_POS_EMBD;
        if (out->eligible) {
            out->convert = out->quantized = true;
            out->codec = ti->codec;
            out->params = ti->params;
            out->why = "matrix";
        } else {
            out->why = "not a weight matrix: source dtype";
        }
        break;
    }
    if (out->convert)
        MQ_TRY(mq_codec_tensor_bytes(out->codec, &out->params, ts->numel, mq_tensor_row_len(ts), &out->bytes, err));
    return MQ_OK;
}
