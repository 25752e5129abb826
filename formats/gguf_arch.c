/*
** gguf_arch.c - the engine that applies an architecture row (gguf_families.c) to a plan: reads
** and checks config.json's hyper-parameters, checks every tensor against the row's shapes, names
** the tensors as llama.cpp's converter does, stacks experts, adds the per-tensor transforms (Q/K
** permutation, Gemma's norm + 1) and the generated tensors (llama3 rope_freqs, Phi-3's LongRoPE
** factors), and writes the {arch}.* keys.
**
** Hyper-parameters (../shared/docs/gguf-and-ggml.md section 4.6), with the value types
** llama.cpp's loader checks exactly: counts UINT32, epsilon, RoPE base and scales FLOAT32.
**   {a}.context_length        max_position_embeddings
**   {a}.embedding_length      hidden_size
**   {a}.block_count           num_hidden_layers
**   {a}.feed_forward_length   intermediate_size
**   {a}.attention.head_count  num_attention_heads
**   {a}.attention.head_count_kv  num_key_value_heads (default: head_count)
**   {a}.rope.freq_base        rope_theta (when present, or the family's default differs from 10000)
**   {a}.attention.layer_norm_rms_epsilon  rms_norm_eps
**   {a}.attention.key_length / value_length  head_dim (only when config.json has it)
**   {a}.rope.dimension_count  head_dim, else hidden_size / num_attention_heads; Phi-3:
**                             int(partial_rotary_factor x hidden_size) / num_attention_heads
**   {a}.vocab_size            vocab_size
**   {a}.expert_count / expert_used_count / expert_feed_forward_length   MoE
**   {a}.attention.sliding_window, attn_logit_softcapping, final_logit_softcapping   Gemma, Phi-3
**   {a}.embedding_scale, residual_scale, attention.scale, logit_scale   Granite's multipliers
**   rope_scaling: linear / yarn -> {a}.rope.scaling.type, .factor, .original_context_length
**                 (yarn only with transformers' default betas and magnitude: check_yarn);
**                 llama3 -> a generated F32 tensor rope_freqs.weight [head_dim / 2];
**                 longrope (Phi-3) -> rope_factors_long/short.weight [rope dims / 2] and
**                 {a}.rope.scaling.attn_factor.
** Every value comes from config.json as parsed once (mq_config.json), is range-checked (the
** hparams table: UINT32 counts in 1..2^32-1 before any cast, FLOAT32 values normal and finite)
** and checked against the tensors (check_tensors: block_count = the layers found, each tensor's
** dims from its rule) before anything is written; a mismatch is one line naming config.json and
** the key(s). Config values llama.cpp's graph fixes (mq_fixed rows, family checks) are refused
** when they differ: such a file would run and compute something else.
** Names (section 4.4): model.embed_tokens -> token_embd, model.norm -> output_norm, lm_head ->
** output (dropped when tie_word_embeddings), model.layers.N.<hf stem> -> blk.N.<gguf stem>;
** .weight/.bias kept; expert E of layer N (..experts.E..) -> one [experts, rows, cols] tensor.
*/
#include <cjson/cJSON.h>
#include <float.h>
#include <libgen.h>
#include <unistd.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "gguf_arch.h"
#include "gguf_family.h"
#include "gguf_vocab.h"
#include "model_build.h"
#include "modelq/plugin.h" /* the plan: names, added tensors, transforms, metadata */

/* ---- config.json values ---- */

struct cfg {
    const cJSON *root;
    const char *path;
};

/*
** What a number in config.json must be: in [min, max], and an integer when `integer`. Counts
** written as UINT32 have max <= 2^32 - 1, so their cast is exact and defined; floats written as
** FLOAT32 have min >= FLT_MIN and max <= FLT_MAX, so they stay normal and finite as floats
** (1e-50 would flush to 0, 1e39 become inf). NaN and the inf of an overflowing literal fail
** every comparison.
*/
struct range {
    bool integer;
    double min, max;
};

static const struct range R_COUNT = {true, 1, 4294967295.0};           /* UINT32, at least 1 */
static const struct range R_CTX = {true, 1, 2147483647.0};             /* positions: llama.cpp int32 */
static const struct range R_EPS = {false, FLT_MIN, 1.0};               /* a small positive FLOAT32 */
static const struct range R_F32_POS = {false, FLT_MIN, FLT_MAX};       /* a positive normal FLOAT32 */
static const struct range R_FINITE = {false, -1e308, 1e308};           /* any finite number */

/*
** The number at obj.key (called `prefix` + key in messages) within `r`. Absent or null: *present
** = false and *out unchanged, an error when `required`. Anything else out of `r` is an error
** naming the file and the key.
*/
static enum mq_status cfg_value(const struct cfg *c, const cJSON *obj, const char *prefix, const char *key,
                                const struct range *r, bool required, double *out, bool *present, struct mq_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *present = false;
    if (!v || cJSON_IsNull(v)) {
        if (required) return MQ_FAIL(err, MQ_E_CORRUPT, "config-field", "%s: missing \"%s%s\"", c->path, prefix, key);
        return MQ_OK;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= r->min && d <= r->max) || (r->integer && d != floor(d))) {
        char got[48];
        mq_json_describe(v, got, sizeof got);
        if (r == &R_FINITE)
            return MQ_FAIL(err, MQ_E_CORRUPT, "config-field", "%s: \"%s%s\" is %s; it must be a number", c->path, prefix,
                           key, got);
        if (r->integer)
            return MQ_FAIL(err, MQ_E_CORRUPT, "config-field", "%s: \"%s%s\" is %s; it must be an integer from %.0f to %.0f",
                           c->path, prefix, key, got, r->min, r->max);
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-field", "%s: \"%s%s\" is %s; it must be a number from %.9g to %.9g%s",
                       c->path, prefix, key, got, r->min, r->max, r->max <= FLT_MAX ? " (a normal FLOAT32)" : "");
    }
    *out = d;
    *present = true;
    return MQ_OK;
}

/* ---- hyper-parameters: one row each ---- */

static const struct range R_SWA = {true, 1, 2147483647.0};             /* a window of positions */
static const struct range R_FRACTION = {false, FLT_MIN, 1.0};          /* (0, 1] */

/* config.json key(s) (the first present is read), the valid range. Required: the common ones
** (`common`) and those in a family's `need`; the family's `opt` are read when present. How they
** must agree with the tensors is in the rules (gguf_families.c) and check_counts. */
static const struct hparam {
    const char *key[2];
    const struct range *range;
    bool common;
} hparams[HP_READ_N] = {
    [HP_CTX] = {{"max_position_embeddings"}, &R_CTX, true},
    [HP_EMBD] = {{"hidden_size"}, &R_COUNT, true},
    [HP_LAYERS] = {{"num_hidden_layers"}, &R_COUNT, true},      /* == the model.layers.N found */
    [HP_FF] = {{"intermediate_size"}, &R_COUNT, true},
    [HP_HEADS] = {{"num_attention_heads"}, &R_COUNT, true},     /* a multiple of num_key_value_heads */
    [HP_KV] = {{"num_key_value_heads"}, &R_COUNT, false},       /* default: num_attention_heads */
    [HP_HEAD_DIM] = {{"head_dim"}, &R_COUNT, false},            /* even; default hidden_size / heads */
    [HP_VOCAB] = {{"vocab_size"}, &R_COUNT, true},
    [HP_EPS] = {{"rms_norm_eps"}, &R_EPS, true},
    [HP_THETA] = {{"rope_theta"}, &R_F32_POS, false},           /* default: the family's, 10000 */
    [HP_EXPERTS] = {{"num_local_experts", "num_experts"}, &R_COUNT, false},
    [HP_EXPERTS_USED] = {{"num_experts_per_tok"}, &R_COUNT, false},  /* <= experts */
    [HP_EXPERT_FF] = {{"moe_intermediate_size"}, &R_COUNT, false},
    [HP_SWA] = {{"sliding_window"}, &R_SWA, false},
    [HP_ATTN_SOFTCAP] = {{"attn_logit_softcapping"}, &R_F32_POS, false},
    [HP_FINAL_SOFTCAP] = {{"final_logit_softcapping"}, &R_F32_POS, false},
    [HP_QPAS] = {{"query_pre_attn_scalar"}, &R_F32_POS, false},
    [HP_EMB_MULT] = {{"embedding_multiplier"}, &R_F32_POS, false},
    [HP_RES_MULT] = {{"residual_multiplier"}, &R_F32_POS, false},
    [HP_ATTN_MULT] = {{"attention_multiplier"}, &R_F32_POS, false},
    [HP_LOGIT_SCALE] = {{"logits_scaling"}, &R_F32_POS, false},
    [HP_PARTIAL_ROT] = {{"partial_rotary_factor"}, &R_FRACTION, false},
    [HP_ORIG_CTX] = {{"original_max_position_embeddings"}, &R_CTX, false},
};

/* The {arch}.* keys written, in this order, for every value the family read (have[]). */
static const struct hkey {
    const char *suffix;
    enum mq_hp hp;
    bool f32;
} hkeys[] = {
    {"context_length", HP_CTX, false},
    {"embedding_length", HP_EMBD, false},
    {"block_count", HP_LAYERS, false},
    {"feed_forward_length", HP_FF, false},
    {"attention.head_count", HP_HEADS, false},
    {"attention.head_count_kv", HP_KV, false},
    {"rope.freq_base", HP_THETA, true},
    {"attention.layer_norm_rms_epsilon", HP_EPS, true},
    {"attention.key_length", HP_HEAD_DIM, false},
    {"attention.value_length", HP_HEAD_DIM, false},
    {"rope.dimension_count", HP_ROT, false},
    {"vocab_size", HP_VOCAB, false},
    {"expert_count", HP_EXPERTS, false},
    {"expert_used_count", HP_EXPERTS_USED, false},
    {"expert_feed_forward_length", HP_EXPERT_FF, false},
    {"attention.sliding_window", HP_SWA, false},
    {"attn_logit_softcapping", HP_ATTN_SOFTCAP, true},
    {"final_logit_softcapping", HP_FINAL_SOFTCAP, true},
    {"embedding_scale", HP_EMB_MULT, true},
    {"residual_scale", HP_RES_MULT, true},
    {"attention.scale", HP_ATTN_MULT, true},
    {"logit_scale", HP_LOGIT_SCALE, true},
    {"rope.scaling.original_context_length", HP_ORIG_CTX, false},
};

/* A config key for messages; derived values name what they come from. */
static const char *hp_name(const struct mq_hvals *h, enum mq_hp k)
{
    switch (k) {
    case HP_HEAD_DIM:
        return h->have[HP_HEAD_DIM] ? "head_dim" : "hidden_size\" / \"num_attention_heads";
    case HP_QKV_ROWS:
        return "(num_attention_heads + 2 x num_key_value_heads) x head_dim";
    case HP_FF2:
        return "2 x intermediate_size";
    case HP_ROT:
        return "rope dimensions";
    default:
        return k < HP_READ_N ? hparams[k].key[0] : "?";
    }
}

/* Reads and range-checks every row the family uses; the defaults of the optional ones filled in
** and the derived values computed. */
static enum mq_status read_hparams(const struct cfg *c, const struct mq_family *f, struct mq_hvals *h,
                                   struct mq_error *err)
{
    memset(h, 0, sizeof *h);
    h->v[HP_THETA] = f->rope_theta > 0 ? f->rope_theta : 10000.0;
    for (int k = HP_NONE + 1; k < HP_READ_N; k++) {
        const struct hparam *r = &hparams[k];
        const bool need = (f->need >> k) & 1, opt = (f->opt >> k) & 1;
        if (!r->common && !need && !opt && k != HP_KV && k != HP_HEAD_DIM && k != HP_THETA) continue;
        const bool required = r->common || need;
        const char *key = r->key[0];
        if (r->key[1] && !cJSON_GetObjectItemCaseSensitive(c->root, key)) key = r->key[1];
        MQ_TRY(cfg_value(c, c->root, "", key, r->range, required, &h->v[k], &h->have[k], err));
        if (r->range->integer) h->u[k] = (uint64_t)h->v[k]; /* in 0 .. 2^32 - 1: exact */
    }
    if (!h->have[HP_THETA] && f->rope_theta > 0 && f->rope_theta != 10000.0) h->have[HP_THETA] = true;
    if (!h->have[HP_KV]) h->u[HP_KV] = h->u[HP_HEADS];
    h->have[HP_KV] = true;
    if (h->u[HP_HEADS] % h->u[HP_KV] != 0)
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-field", "%s: num_attention_heads %llu is not a multiple of "
                       "num_key_value_heads %llu", c->path, (unsigned long long)h->u[HP_HEADS],
                       (unsigned long long)h->u[HP_KV]);
    if (!h->have[HP_HEAD_DIM]) {
        if (h->u[HP_EMBD] % h->u[HP_HEADS] != 0)
            return MQ_FAIL(err, MQ_E_CORRUPT, "config-field",
                           "%s: \"hidden_size\" %llu is not a multiple of \"num_attention_heads\" %llu and there is no "
                           "\"head_dim\"", c->path, (unsigned long long)h->u[HP_EMBD], (unsigned long long)h->u[HP_HEADS]);
        h->u[HP_HEAD_DIM] = h->u[HP_EMBD] / h->u[HP_HEADS];
    }
    if (h->u[HP_HEAD_DIM] % 2 != 0)
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-field", "%s: \"%s\" is %llu; RoPE rotates pairs, so it must be even",
                       c->path, hp_name(h, HP_HEAD_DIM), (unsigned long long)h->u[HP_HEAD_DIM]);
    if (h->have[HP_EXPERTS_USED] && (!h->have[HP_EXPERTS] || h->u[HP_EXPERTS_USED] > h->u[HP_EXPERTS]))
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-field", "%s: \"num_experts_per_tok\" %llu is more than the %llu experts",
                       c->path, (unsigned long long)h->u[HP_EXPERTS_USED], (unsigned long long)h->u[HP_EXPERTS]);
    if (h->have[HP_EXPERTS] && h->u[HP_EXPERTS] > 512) /* llama.cpp's LLAMA_MAX_EXPERTS */
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "config-field", "%s: %llu experts; llama.cpp runs at most 512", c->path,
                       (unsigned long long)h->u[HP_EXPERTS]);
    /* derived (every factor below 2^32: no overflow in 64 bits) */
    h->u[HP_ROT] = h->u[HP_HEAD_DIM];
    if (h->have[HP_PARTIAL_ROT]) {
        /* convert_hf_to_gguf Phi3MiniModel: int(partial_rotary_factor * hidden_size) // heads */
        h->u[HP_ROT] = (uint64_t)floor(h->v[HP_PARTIAL_ROT] * (double)h->u[HP_EMBD]) / h->u[HP_HEADS];
        if (h->u[HP_ROT] == 0 || h->u[HP_ROT] % 2 != 0 || h->u[HP_ROT] > h->u[HP_HEAD_DIM])
            return MQ_FAIL(err, MQ_E_CORRUPT, "config-field",
                           "%s: \"partial_rotary_factor\" %.9g gives %llu rotated dimensions per head; RoPE needs an "
                           "even number from 2 to head_dim %llu", c->path, h->v[HP_PARTIAL_ROT],
                           (unsigned long long)h->u[HP_ROT], (unsigned long long)h->u[HP_HEAD_DIM]);
    }
    h->have[HP_ROT] = true;
    h->u[HP_QKV_ROWS] = (h->u[HP_HEADS] + 2 * h->u[HP_KV]) * h->u[HP_HEAD_DIM];
    h->u[HP_FF2] = 2 * h->u[HP_FF];
    return MQ_OK;
}

/* The values llama.cpp's graph for the family fixes (gguf_families.c: mq_fixed rows). */
static enum mq_status check_fixed(const struct cfg *c, const struct mq_family *f, struct mq_error *err)
{
    for (const struct mq_fixed *x = f->fixed; x && x->key; x++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->root, x->key);
        const bool absent = !v || cJSON_IsNull(v);
        bool ok;
        switch (x->kind) {
        case FIX_OFF:
            ok = absent || cJSON_IsFalse(v) || (cJSON_IsNumber(v) && v->valuedouble == 0) ||
                 (cJSON_IsArray(v) && !v->child);
            break;
        case FIX_TRUE:
            ok = cJSON_IsTrue(v);
            break;
        case FIX_NUM:
            ok = absent || (cJSON_IsNumber(v) && v->valuedouble == x->num);
            break;
        case FIX_STR:
        default:
            ok = absent || (cJSON_IsString(v) && strcmp(v->valuestring, x->str) == 0);
            break;
        }
        if (ok) continue;
        char got[48];
        if (absent) snprintf(got, sizeof got, "absent");
        else mq_json_describe(v, got, sizeof got);
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "config-graph", "%s: \"%s\" is %s; %s, so %s cannot be converted for it",
                       c->path, x->key, got, x->why, f->hf);
    }
    return MQ_OK;
}

/* ---- tensors ---- */

/* "model.layers.N." + rest: N (decimal, no leading zero, below 10^9) and the rest; false otherwise. */
static bool parse_layer(const char *name, unsigned *layer, const char *rest_out[1])
{
    static const char prefix[] = "model.layers.";
    if (strncmp(name, prefix, sizeof prefix - 1) != 0) return false;
    const char *p = name + sizeof prefix - 1;
    unsigned v = 0;
    int n = 0;
    while (p[n] >= '0' && p[n] <= '9' && n < 9) v = v * 10 + (unsigned)(p[n++] - '0');
    if (n == 0 || p[n] != '.' || (p[0] == '0' && n > 1)) return false;
    *layer = v;
    rest_out[0] = p + n + 1;
    return true;
}

static int cmp_plan_name(const void *a, const void *b, void *ctx)
{
    const struct mq_plan *p = ctx;
    return strcmp(mq_plan_tensor_name(p, *(const size_t *)a), mq_plan_tensor_name(p, *(const size_t *)b));
}

/* The index (plan tensor = input tensor, prepare has not changed them yet) of the input tensor called `name` among idx[0..n) (sorted by name), or -1. */
static long find_input(const struct mq_plan *p, const size_t *idx, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, mq_plan_tensor_name(p, idx[mid]));
        if (c == 0) return (long)idx[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return -1;
}

/* "[384, 256]" */
static const char *show_shape(const struct mq_plan_tensor_info *t, char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (uint32_t d = 0; d < t->ndim && o < cap; d++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%llu", d ? ", " : "", (unsigned long long)t->shape[d]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
    return buf;
}

/* One tensor against its rule's dims (a bias: the first dim alone). */
static enum mq_status check_shape(const struct cfg *c, const struct mq_hvals *h, const struct mq_tensor_rule *r,
                                  bool bias, const struct mq_plan_tensor_info *t, struct mq_error *err)
{
    char sh[96];
    const uint32_t ndim = bias ? 1 : r->ndim;
    if (t->ndim != ndim)
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-shape", "tensor %s: shape %s has %u dims; it should have %u", t->name,
                       show_shape(t, sh, sizeof sh), t->ndim, ndim);
    for (uint32_t d = 0; d < ndim; d++) {
        enum mq_hp a = r->dim[d][0], b = r->dim[d][1];
        uint64_t want = h->u[a] * (b ? h->u[b] : 1); /* both below 2^32 (derived: below 2^35 x 2^32): exact */
        if (t->shape[d] == want) continue;
        if (!b)
            return MQ_FAIL(err, MQ_E_CORRUPT, "config-shape",
                           "%s: \"%s\" is %llu but tensor %s has shape %s (dim %u should be %llu)", c->path,
                           hp_name(h, a), (unsigned long long)h->u[a], t->name, show_shape(t, sh, sizeof sh), d,
                           (unsigned long long)want);
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-shape",
                       "%s: \"%s\" x \"%s\" is %llu x %llu but tensor %s has shape %s (dim %u should be %llu)", c->path,
                       hp_name(h, a), hp_name(h, b), (unsigned long long)h->u[a], (unsigned long long)h->u[b], t->name,
                       show_shape(t, sh, sizeof sh), d, (unsigned long long)want);
    }
    return MQ_OK;
}

/*
** What happens to each input tensor (act[i] for plan tensor i): renamed (name, rule), dropped, or
** expert `expert` of the stacked output `stack` (first = the member whose position in the
** input order the stacked tensor takes).
*/
enum act_kind { ACT_UNKNOWN, ACT_RENAME, ACT_DROP, ACT_EXPERT };

struct act {
    enum act_kind kind;
    const struct mq_tensor_rule *rule;
    char *name;             /* GGUF name (ACT_RENAME; ACT_EXPERT: on the first member) */
    long *members;          /* ACT_EXPERT, on the first member: model tensor indices, expert order */
    size_t n_members;
    bool first;
};

static void acts_free(struct act *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++) {
        free(a[i].name);
        free(a[i].members);
    }
    free(a);
}

/* Claims input `name` for (rule, layer); sets act and checks the shape. -1 absent. */
static enum mq_status claim(const struct cfg *c, const struct mq_hvals *h, struct mq_plan *p, const size_t *idx,
                            size_t n, struct act *acts, const char *name, const struct mq_tensor_rule *r, bool bias,
                            long *found, struct mq_error *err)
{
    *found = find_input(p, idx, n, name);
    if (*found < 0) return MQ_OK;
    struct act *a = &acts[*found];
    if (a->kind != ACT_UNKNOWN)
        return MQ_FAIL(err, MQ_E_INTERNAL, "tensor-name", "tensor %s: claimed by two rules", name);
    struct mq_plan_tensor_info t;
    mq_plan_tensor_info(p, (size_t)*found, &t);
    MQ_TRY(check_shape(c, h, r, bias, &t, err));
    a->kind = ACT_RENAME;
    a->rule = r;
    return MQ_OK;
}

/*
** Walks the family's rules over every layer: checks each tensor's dims, gives each input its
** action and GGUF name, and finds missing tensors. Afterwards an input no rule claimed is unknown
** to llama.cpp (it refuses files with tensors it does not load) unless it is dropped.
*/
static enum mq_status plan_tensors(const struct cfg *c, const struct mq_family *f, const struct mq_hvals *h,
                                   struct mq_plan *p, size_t n, bool tied, struct act *acts, struct mq_error *err)
{
    uint64_t layers = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned l;
        const char *rest[1];
        if (parse_layer(mq_plan_tensor_name(p, i), &l, rest) && (uint64_t)l + 1 > layers) layers = (uint64_t)l + 1;
    }
    if (layers != h->u[HP_LAYERS])
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-shape",
                       "%s: \"num_hidden_layers\" is %llu but the tensors have %llu layers (model.layers.0 to "
                       "model.layers.%lld)", c->path, (unsigned long long)h->u[HP_LAYERS], (unsigned long long)layers,
                       (long long)layers - 1);
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    for (size_t i = 0; i < n; i++) idx[i] = i;
    qsort_r(idx, n, sizeof *idx, cmp_plan_name, (void *)p);
    enum mq_status s = MQ_OK;
    const uint64_t n_exp = h->have[HP_EXPERTS] ? h->u[HP_EXPERTS] : 0;
    for (const struct mq_tensor_rule *const *g = f->groups; *g && s == MQ_OK; g++) {
        for (const struct mq_tensor_rule *r = *g; r->hf && s == MQ_OK; r++) {
            const bool per_layer = r->flags & TR_LAYER;
            for (uint64_t l = 0; l < (per_layer ? layers : 1) && s == MQ_OK; l++) {
                char base[192], name[224], gname[160];
                if (per_layer) snprintf(base, sizeof base, "model.layers.%u.%s", (unsigned)l, r->hf);
                else snprintf(base, sizeof base, "%s", r->hf);
                if (per_layer) snprintf(gname, sizeof gname, "blk.%u.%s", (unsigned)l, r->gguf);
                else snprintf(gname, sizeof gname, "%s", r->gguf);
                if (r->flags & TR_EXPERT) {
                    /* base holds "%u": one tensor per expert, all present, stacked in expert order */
                    long *members = calloc(n_exp ? n_exp : 1, sizeof *members);
                    if (!members) {
                        s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
                        break;
                    }
                    long first = -1;
                    for (uint64_t e = 0; e < n_exp && s == MQ_OK; e++) {
                        const char *at = strstr(base, "%u"); /* the table's placeholder for the expert */
                        if (!at) {
                            s = MQ_FAIL(err, MQ_E_INTERNAL, "tensor-name", "rule %s: no expert placeholder", r->hf);
                            break;
                        }
                        snprintf(name, sizeof name, "%.*s%u%s.weight", (int)(at - base), base, (unsigned)e, at + 2);
                        s = claim(c, h, p, idx, n, acts, name, r, false, &members[e], err);
                        if (s == MQ_OK && members[e] < 0)
                            s = MQ_FAIL(err, MQ_E_CORRUPT, "config-shape",
                                        "tensor %s is missing (%s: %llu experts; llama.cpp needs every expert)", name,
                                        c->path, (unsigned long long)n_exp);
                        if (s == MQ_OK) {
                            acts[members[e]].kind = ACT_EXPERT;
                            if (first < 0 || members[e] < first) first = members[e];
                        }
                    }
                    if (s != MQ_OK || first < 0) {
                        free(members);
                        continue;
                    }
                    for (uint64_t e = 0; e < n_exp; e++) {
                        struct mq_plan_tensor_info t;
                        mq_plan_tensor_info(p, (size_t)members[e], &t);
                        members[e] = t.src_index; /* the model tensor the stack reads */
                    }
                    struct act *a = &acts[first];
                    a->first = true;
                    a->members = members;
                    a->n_members = (size_t)n_exp;
                    a->rule = r;
                    snprintf(name, sizeof name, "%s.weight", gname);
                    if (!(a->name = strdup(name))) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
                    continue;
                }
                long w, b = -1;
                snprintf(name, sizeof name, "%s.weight", base);
                s = claim(c, h, p, idx, n, acts, name, r, false, &w, err);
                if (s == MQ_OK && w < 0 && (r->flags & TR_REQUIRED)) {
                    if (!per_layer)
                        s = MQ_FAIL(err, MQ_E_CORRUPT, "config-shape", "tensor %s is missing (llama.cpp needs it)", name);
                    else
                        s = MQ_FAIL(err, MQ_E_CORRUPT, "config-shape",
                                    "tensor %s is missing (%s: \"num_hidden_layers\" is %llu; llama.cpp needs every "
                                    "layer's tensors)", name, c->path, (unsigned long long)layers);
                }
                if (s == MQ_OK && (r->flags & TR_BIAS) && f->biases) {
                    snprintf(name, sizeof name, "%s.bias", base);
                    s = claim(c, h, p, idx, n, acts, name, r, true, &b, err);
                }
                if (s == MQ_OK && w >= 0) {
                    const bool drop = tied && strcmp(r->gguf, "output") == 0;
                    acts[w].kind = drop ? ACT_DROP : ACT_RENAME;
                    snprintf(name, sizeof name, "%s.weight", gname);
                    if (!drop && !(acts[w].name = strdup(name))) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
                }
                if (s == MQ_OK && b >= 0) {
                    snprintf(name, sizeof name, "%s.bias", gname);
                    if (!(acts[b].name = strdup(name))) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
                }
            }
        }
    }
    for (size_t i = 0; i < n && s == MQ_OK; i++) {
        if (acts[i].kind != ACT_UNKNOWN) continue;
        if (strstr(mq_plan_tensor_name(p, i), "rotary_emb.inv_freq")) acts[i].kind = ACT_DROP; /* recomputed by llama.cpp */
        else
            s = MQ_FAIL(err, MQ_E_UNSUPPORTED, "tensor-name", "tensor %s: no GGUF name for %s (llama.cpp would refuse "
                        "an unknown tensor)", mq_plan_tensor_name(p, i), f->hf);
    }
    free(idx);
    return s;
}

/* ---- generated tensors ---- */

/* Appends an F32 tensor [n] computed here (v owned by the plan from now on, also on failure). */
static enum mq_status add_generated(struct mq_plan *p, const char *name, float *v, uint64_t n, struct mq_error *err)
{
    return mq_plan_add_generated(p, name, v, n, err);
}

/* ---- llama3 RoPE frequencies (convert_hf_to_gguf LlamaModel.generate_extra_tensors) ---- */

static enum mq_status add_rope_freqs(struct mq_plan *p, const struct cfg *c, const cJSON *rs, double theta,
                                     uint64_t head_dim, struct mq_error *err)
{
    double factor = 8.0, low = 1.0, high = 4.0, old_ctx = 8192.0; /* defaults when absent */
    bool here;
    MQ_TRY(cfg_value(c, rs, "rope_scaling.", "factor", &R_F32_POS, false, &factor, &here, err));
    MQ_TRY(cfg_value(c, rs, "rope_scaling.", "low_freq_factor", &R_F32_POS, false, &low, &here, err));
    MQ_TRY(cfg_value(c, rs, "rope_scaling.", "high_freq_factor", &R_F32_POS, false, &high, &here, err));
    MQ_TRY(cfg_value(c, rs, "rope_scaling.", "original_max_position_embeddings", &R_CTX, false, &old_ctx, &here, err));
    if (!(high > low))
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-field",
                       "%s: \"rope_scaling.high_freq_factor\" %.9g must be above \"rope_scaling.low_freq_factor\" %.9g",
                       c->path, high, low);
    uint64_t n = head_dim / 2; /* head_dim = q rows / heads (check_tensors): bounded by the tensor */
    float *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    double low_wl = old_ctx / low, high_wl = old_ctx / high;
    for (uint64_t i = 0; i < n; i++) {
        /* freqs are float32 in the reference (torch.arange(..., dtype=float32)) */
        float freq = (float)(1.0 / pow(theta, (double)(float)((double)(2 * i) / (double)head_dim)));
        double wl = 2.0 * M_PI / (double)freq;
        double r;
        if (wl < high_wl) r = 1.0;
        else if (wl > low_wl) r = factor;
        else {
            double smooth = (old_ctx / wl - low) / (high - low);
            r = 1.0 / ((1.0 - smooth) / factor + smooth);
        }
        v[i] = (float)r;
    }
    return add_generated(p, "rope_freqs.weight", v, n, err);
}

/* ---- YaRN parameters llama.cpp does not take ---- */

/* transformers' get_mscale: the yarn cos/sin magnitude for a context `factor` */
static double yarn_mscale(double factor, double mscale) { return factor <= 1 ? 1.0 : 0.1 * mscale * log(factor) + 1.0; }

/*
** transformers' yarn also reads beta_fast / beta_slow (the correction range, default 32 / 1),
** truncate (default true) and attention_factor, or mscale with mscale_all_dim (the cos/sin
** magnitude, default 0.1 ln(factor) + 1). llama.cpp's llama and qwen2 graphs always use 32 / 1
** and truncation (their loaders read no rope.scaling.yarn_beta_* key: writing yarn_beta_slow into
** the test file changed nothing) and derive the magnitude from the factor, so any other value
** would convert to a model that computes something else: test_llama_run measured beta_slow 2
** moving llama.cpp's log-probabilities by up to 11.6 from transformers'. Refused (a magnitude
** might be expressible through rope.scaling.attn_factor, untested); the defaults spelled out are
** fine. transformers reads the betas as `value or default`, so 0 means the default too.
*/
static enum mq_status check_yarn(const struct cfg *c, const cJSON *rs, double factor, struct mq_error *err)
{
    enum { FAST, SLOW, AF, MS, MS_ALL, N };
    static const char *const keys[N] = {"beta_fast", "beta_slow", "attention_factor", "mscale", "mscale_all_dim"};
    double v[N] = {0};
    bool have[N];
    for (int k = 0; k < N; k++) MQ_TRY(cfg_value(c, rs, "rope_scaling.", keys[k], &R_FINITE, false, &v[k], &have[k], err));
    const char *bad = NULL;
    const double def = yarn_mscale(factor, 1.0);
    if (have[FAST] && v[FAST] != 0 && v[FAST] != 32) bad = "beta_fast";
    else if (have[SLOW] && v[SLOW] != 0 && v[SLOW] != 1) bad = "beta_slow";
    else if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(rs, "truncate"))) bad = "truncate";
    else if (have[AF] && fabs(v[AF] - def) > 1e-6 * def) bad = "attention_factor";
    else if (!have[AF] && have[MS] && have[MS_ALL] && v[MS] != 0 && v[MS_ALL] != 0 &&
             fabs(yarn_mscale(factor, v[MS]) / yarn_mscale(factor, v[MS_ALL]) - def) > 1e-6 * def)
        bad = "mscale";
    if (bad)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "rope-scaling",
                       "%s: rope_scaling (yarn) \"%s\" other than transformers' default is not supported (llama.cpp "
                       "ignores it for this architecture)", c->path, bad);
    return MQ_OK;
}

/* ---- LongRoPE (Phi-3): the per-pair frequency divisors and the cos/sin magnitude ---- */

/* rope_scaling.<key>: exactly `n` positive normal FLOAT32 numbers -> v (allocated). */
static enum mq_status read_factors(const struct cfg *c, const cJSON *rs, const char *key, uint64_t n, float **out,
                                   struct mq_error *err)
{
    *out = NULL;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(rs, key);
    if (!cJSON_IsArray(a) || (uint64_t)cJSON_GetArraySize(a) != n)
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-field",
                       "%s: \"rope_scaling.%s\" must be a list of %llu numbers (half the rotated dimensions)", c->path,
                       key, (unsigned long long)n);
    float *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    uint64_t i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++) {
        double d = cJSON_IsNumber(e) ? e->valuedouble : NAN;
        if (!(d >= FLT_MIN && d <= FLT_MAX)) {
            free(v);
            return MQ_FAIL(err, MQ_E_CORRUPT, "config-field",
                           "%s: \"rope_scaling.%s\"[%llu] must be a positive number (a normal FLOAT32)", c->path, key,
                           (unsigned long long)i);
        }
        v[i] = (float)d;
    }
    *out = v;
    return MQ_OK;
}

/*
** convert_hf_to_gguf Phi3MiniModel: rope_factors_long/short.weight from rope_scaling.long_factor /
** short_factor, and rope.scaling.attn_factor = sqrt(1 + ln(s) / ln(original)) for
** s = max_position_embeddings / original_max_position_embeddings > 1, else 1 (transformers'
** longrope default; an explicit different attention_factor is refused: llama.cpp would not use it).
*/
static enum mq_status add_longrope(struct mq_plan *p, const struct mq_family *f, const struct cfg *c, const cJSON *rs,
                                   const struct mq_hvals *h, struct mq_error *err)
{
    const double orig = h->have[HP_ORIG_CTX] ? h->v[HP_ORIG_CTX] : h->v[HP_CTX];
    const double scale = h->v[HP_CTX] / orig;
    const double af = scale > 1.0 ? sqrt(1.0 + log(scale) / log(orig)) : 1.0;
    double given;
    bool have;
    MQ_TRY(cfg_value(c, rs, "rope_scaling.", "attention_factor", &R_F32_POS, false, &given, &have, err));
    if (have && fabs(given - af) > 1e-6 * af)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "rope-scaling",
                       "%s: \"rope_scaling.attention_factor\" %.9g differs from %.9g, the value llama.cpp's %s graph "
                       "uses", c->path, given, af, f->gguf);
    float *lf, *sf;
    MQ_TRY(read_factors(c, rs, "long_factor", h->u[HP_ROT] / 2, &lf, err));
    enum mq_status s = read_factors(c, rs, "short_factor", h->u[HP_ROT] / 2, &sf, err);
    if (s != MQ_OK) {
        free(lf);
        return s;
    }
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.attn_factor", f->gguf);
    s = mq_meta_set_f32(mq_plan_meta(p), key, (float)af, err);
    if (s == MQ_OK) s = add_generated(p, "rope_factors_long.weight", lf, h->u[HP_ROT] / 2, err);
    else free(lf);
    if (s == MQ_OK) s = add_generated(p, "rope_factors_short.weight", sf, h->u[HP_ROT] / 2, err);
    else free(sf);
    return s;
}

/* ---- tokenizer ---- */

/* The folder's tokenizer (tokenizer.model or tokenizer.json, by the family row's `vocab` rule:
** gguf_vocab.h) -> tokenizer.ggml.*; a folder without one is refused. --no-vocab: model "none" (llama.cpp then
** runs on token ids only, with {arch}.vocab_size giving the size). */
static enum mq_status add_vocab(struct mq_plan *p, const struct mq_model *m, uint64_t vocab_size,
                                enum mq_vocab_rule rule, struct mq_error *err)
{
    if (mq_plan_options(p)->no_vocab) return mq_meta_set_str(mq_plan_meta(p), "tokenizer.ggml.model", "none", SIZE_MAX, err);
    char *dup = strdup(m->config.path);
    if (!dup) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", dirname(dup));
    free(dup);
    return mq_gguf_vocab_from_folder(dir, m->config.json, vocab_size, rule, mq_plan_meta(p), err);
}

/* ---- hyper-parameters ---- */

/* rope_scaling -> rope.scaling.* keys or generated tensors (null or absent: none), for the types
** the family's graph has. */
static enum mq_status set_rope_scaling(struct mq_plan *p, const struct mq_family *f, const struct cfg *c,
                                       const struct mq_hvals *h, struct mq_error *err)
{
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(c->root, "rope_scaling");
    if (!rs || cJSON_IsNull(rs)) return MQ_OK;
    if (!cJSON_IsObject(rs))
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-field", "%s: \"rope_scaling\" must be an object or null", c->path);
    /* transformers: rope_scaling.get("rope_type", rope_scaling.get("type")) */
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    const char *tkey = "rope_type";
    if (!ty || cJSON_IsNull(ty)) {
        ty = cJSON_GetObjectItemCaseSensitive(rs, "type");
        tkey = "type";
    }
    if (ty && !cJSON_IsNull(ty) && !cJSON_IsString(ty))
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-field", "%s: \"rope_scaling.%s\" must be a string", c->path, tkey);
    if (!cJSON_IsString(ty)) {
        if (!rs->child) return MQ_OK; /* {} */
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-field", "%s: \"rope_scaling\" has no \"rope_type\" (or \"type\")",
                       c->path);
    }
    const char *type = ty->valuestring;
    static const struct {
        const char *name;
        unsigned bit;
    } types[] = {{"linear", RS_LINEAR}, {"yarn", RS_YARN}, {"llama3", RS_LLAMA3}, {"longrope", RS_LONGROPE},
                 {"su", RS_LONGROPE}};
    unsigned bit = 0;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(type, types[i].name) == 0) bit = types[i].bit;
    if (strcmp(type, "default") == 0 || !type[0]) return MQ_OK;
    if (!(bit & f->rope_scaling)) {
        char list[96] = "";
        size_t o = 0;
        for (size_t i = 0; i < sizeof types / sizeof types[0] && o < sizeof list; i++)
            if ((types[i].bit & f->rope_scaling) && strcmp(types[i].name, "su") != 0)
                o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", o ? ", " : "", types[i].name);
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "rope-scaling",
                       "%s: rope_scaling type \"%s\" is not supported for %s (%s)", c->path, type, f->hf,
                       o ? list : "none");
    }
    char key[128];
    if (bit == RS_LLAMA3) return add_rope_freqs(p, c, rs, h->v[HP_THETA], h->u[HP_HEAD_DIM], err);
    if (bit == RS_LONGROPE) return add_longrope(p, f, c, rs, h, err);
    double factor, orig;
    bool here, have_orig;
    MQ_TRY(cfg_value(c, rs, "rope_scaling.", "factor", &R_F32_POS, true, &factor, &here, err));
    MQ_TRY(cfg_value(c, rs, "rope_scaling.", "original_max_position_embeddings", &R_CTX, false, &orig, &have_orig,
                     err));
    if (bit == RS_YARN) MQ_TRY(check_yarn(c, rs, factor, err));
    snprintf(key, sizeof key, "%s.rope.scaling.type", f->gguf);
    MQ_TRY(mq_meta_set_str(mq_plan_meta(p), key, type, SIZE_MAX, err));
    snprintf(key, sizeof key, "%s.rope.scaling.factor", f->gguf);
    MQ_TRY(mq_meta_set_f32(mq_plan_meta(p), key, (float)factor, err)); /* in FLOAT32 range: R_F32_POS */
    if (have_orig) {
        snprintf(key, sizeof key, "%s.rope.scaling.original_context_length", f->gguf);
        MQ_TRY(mq_meta_set_u32(mq_plan_meta(p), key, (uint32_t)orig, err)); /* an integer in 1..2^31-1 */
    }
    return MQ_OK;
}

/* The {arch}.* keys (hkeys order) from values read_hparams and plan_tensors have proven in range
** and consistent with the tensors. */
static enum mq_status set_hparams(struct mq_plan *p, const struct mq_family *f, const struct cfg *c,
                                  const struct mq_hvals *h, struct mq_error *err)
{
    char key[128];
    for (size_t i = 0; i < sizeof hkeys / sizeof hkeys[0]; i++) {
        const struct hkey *k = &hkeys[i];
        if (!h->have[k->hp]) continue;
        snprintf(key, sizeof key, "%s.%s", f->gguf, k->suffix);
        if (k->f32) MQ_TRY(mq_meta_set_f32(mq_plan_meta(p), key, (float)h->v[k->hp], err));
        else MQ_TRY(mq_meta_set_u32(mq_plan_meta(p), key, (uint32_t)h->u[k->hp], err)); /* below 2^32 */
    }
    return set_rope_scaling(p, f, c, h, err);
}

/* A warning line for the caller (convert's --quiet drops it). */
static void warn(const struct mq_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(const struct mq_plan *p, const char *fmt, ...)
{
    const struct mq_convert_options *o = mq_plan_options(p);
    if (!o->warn) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    o->warn(o->warn_ctx, msg);
}

/* Output order: an input's position (a stacked tensor takes its first expert's); generated last. */
struct order {
    size_t key;
    size_t t;
};

static int cmp_order(const void *a, const void *b)
{
    const struct order *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key;
}

/* Renames, drops and stacks as `acts` says, adds the transforms; the plan keeps input order. */
static enum mq_status apply_acts(struct mq_plan *p, const struct mq_family *f, const struct mq_hvals *h,
                                 size_t n_inputs, struct act *acts, struct mq_error *err)
{
    enum mq_status s = MQ_OK;
    const size_t n_generated = mq_plan_n_tensors(p) - n_inputs;
    /* stacked tensors are appended (after the generated ones); remember whose position they take */
    size_t n_stacked = 0;
    for (size_t i = 0; i < n_inputs; i++) n_stacked += acts[i].first;
    size_t *stack_pos = malloc((n_stacked ? n_stacked : 1) * sizeof *stack_pos);
    if (!stack_pos) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n_inputs && s == MQ_OK; i++) {
        if (!acts[i].first) continue;
        s = mq_plan_add_stacked(p, acts[i].name, acts[i].members, acts[i].n_members, err);
        stack_pos[k++] = i;
    }
    const size_t n_all = mq_plan_n_tensors(p);
    struct order *ord = s == MQ_OK ? malloc((n_all ? n_all : 1) * sizeof *ord) : NULL;
    size_t *keep = s == MQ_OK ? malloc((n_all ? n_all : 1) * sizeof *keep) : NULL;
    if (s == MQ_OK && (!ord || !keep)) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    if (s != MQ_OK) {
        free(ord);
        free(keep);
        free(stack_pos);
        return s;
    }
    size_t w = 0;
    for (size_t i = 0; i < n_all; i++) {
        size_t key;
        const struct mq_tensor_rule *rule = NULL;
        if (i < n_inputs) {
            /* dropped, or an expert now inside a stacked tensor: not kept (mq_plan_keep frees it) */
            if (acts[i].kind != ACT_RENAME) continue;
            if (s == MQ_OK) s = mq_plan_tensor_set_name(p, i, acts[i].name, err);
            rule = acts[i].rule;
            key = 2 * i;
        } else if (i < n_inputs + n_generated) {
            key = SIZE_MAX - n_generated + (i - n_inputs); /* last, in order */
        } else {
            key = 2 * stack_pos[i - n_inputs - n_generated] + 1;
            rule = NULL; /* experts: no transform */
        }
        if (rule && s == MQ_OK) {
            const bool q = rule->flags & TR_Q, kk = rule->flags & TR_K;
            const int debug_qk = mq_plan_options(p)->debug_qk_permute;
            if (f->permute_qk && (q || kk) && debug_qk != 1) /* a bias permutes its elements as rows */
                s = mq_plan_tensor_permute_heads(p, i, q || debug_qk == 2 ? h->u[HP_HEADS] : h->u[HP_KV], err);
            if (s == MQ_OK && f->norm_plus_one && (rule->flags & TR_NORM)) s = mq_plan_tensor_add_const(p, i, 1.0f, err);
        }
        ord[w].key = key;
        ord[w].t = i;
        w++;
    }
    /* the survivors in output order (on failure the plan stays whole: mq_plan_free frees it) */
    qsort(ord, w, sizeof *ord, cmp_order);
    for (size_t j = 0; j < w; j++) keep[j] = ord[j].t;
    if (s == MQ_OK) s = mq_plan_keep(p, keep, w, err);
    free(keep);
    free(ord);
    free(stack_pos);
    return s;
}

enum mq_status mq_gguf_arch_apply(struct mq_plan *p, bool *applied, struct mq_error *err)
{
    const struct mq_model *m = mq_plan_model(p);
    *applied = false;
    if (m->lora && (!m->config.present || !m->config.architecture[0]))
        return MQ_FAIL(err, MQ_E_USAGE, "base", "%s: a LoRA adapter needs its base model's config.json (with "
                       "\"architectures\")", m->input_path);
    if (!m->config.present || !m->config.architecture[0]) return MQ_OK;
    const struct mq_family *f = mq_family_find(m->config.architecture);
    if (!f) {
        if (mq_plan_options(p)->raw_names && !m->lora) return MQ_OK;
        char list[1024];
        mq_family_list(list, sizeof list);
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "architecture",
                       "%s: architecture %s is not supported for GGUF (supported: %s); --raw-names writes the "
                       "tensors unchanged (a GGUF llama.cpp cannot run)", m->config.path, m->config.architecture,
                       list);
    }
    const struct cfg c = {m->config.json, m->config.path}; /* parsed once, by src/config.c */
    struct mq_hvals h;
    const size_t n_inputs = mq_plan_n_tensors(p);
    MQ_TRY(read_hparams(&c, f, &h, err));
    if (m->lora) { /* the adapter's pairs; the base's own checks are its conversion's */
        MQ_TRY(mq_gguf_lora_plan(p, f, &h, c.path, err));
        *applied = true;
        return MQ_OK;
    }
    MQ_TRY(check_fixed(&c, f, err));
    if (f->check) MQ_TRY(f->check(f, c.root, c.path, &h, err));
    struct act *acts = calloc(n_inputs ? n_inputs : 1, sizeof *acts);
    if (!acts) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    const bool tied = m->config.tie_word_embeddings == 1;
    enum mq_status s = plan_tensors(&c, f, &h, p, n_inputs, tied, acts, err);
    if (s == MQ_OK) s = mq_meta_set_str(mq_plan_meta(p), "general.architecture", f->gguf, SIZE_MAX, err);
    char name[256];
    mq_gguf_model_name(m->input_path, name, sizeof name);
    if (s == MQ_OK) s = mq_meta_set_str(mq_plan_meta(p), "general.name", name, SIZE_MAX, err);
    if (s == MQ_OK) s = set_hparams(p, f, &c, &h, err);
    if (s == MQ_OK) s = add_vocab(p, m, h.u[HP_VOCAB], f->vocab, err);
    if (s == MQ_OK) s = apply_acts(p, f, &h, n_inputs, acts, err);
    acts_free(acts, n_inputs);
    if (s != MQ_OK) return s;
    if (strcmp(f->gguf, "phi3") == 0 && h.have[HP_SWA] && h.u[HP_SWA] < h.u[HP_CTX])
        warn(p, "%s: \"sliding_window\" is %llu: llama.cpp's phi3 graph attends to the whole context, so beyond %llu "
             "tokens it computes something else than transformers (as with llama.cpp's own converter)", c.path,
             (unsigned long long)h.u[HP_SWA], (unsigned long long)h.u[HP_SWA]);
    *applied = true;
    return MQ_OK;
}
