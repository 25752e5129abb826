/*
** gguf_arch.c - Hugging Face architectures -> llama.cpp GGUF: hyper-parameters, tensor names,
** the Q/K row permutation and generated tensors. One row per architecture in `archs`.
**
** Hyper-parameters (../shared/docs/gguf-and-ggml.md section 4.6), with the value types
** llama.cpp's loader checks exactly: counts UINT32, epsilon and RoPE base FLOAT32.
**   {a}.context_length        max_position_embeddings
**   {a}.embedding_length      hidden_size
**   {a}.block_count           num_hidden_layers
**   {a}.feed_forward_length   intermediate_size
**   {a}.attention.head_count  num_attention_heads
**   {a}.attention.head_count_kv  num_key_value_heads (default: head_count)
**   {a}.rope.freq_base        rope_theta (when present)
**   {a}.attention.layer_norm_rms_epsilon  rms_norm_eps
**   {a}.attention.key_length / value_length  head_dim (only when config.json has it)
**   {a}.rope.dimension_count  head_dim, else hidden_size / num_attention_heads
**   {a}.vocab_size            vocab_size
**   rope_scaling: linear / yarn -> {a}.rope.scaling.type, .factor, .original_context_length
**                 (yarn only with transformers' default betas and magnitude: check_yarn);
**                 llama3 -> a generated F32 tensor rope_freqs.weight [head_dim / 2].
** Every value comes from config.json as parsed once (mq_config.json), is range-checked (the
** hparams table: UINT32 counts in 1..2^32-1 before any cast, FLOAT32 values normal and finite)
** and checked against the tensors (shape_rules, check_tensors: block_count = the layers found,
** token_embd [vocab_size, hidden_size], q rows = heads x head_dim ...) before anything is
** written; a mismatch is one line naming config.json and the key(s).
** Names (section 4.4): model.embed_tokens -> token_embd, model.norm -> output_norm,
** lm_head -> output (dropped when tie_word_embeddings), model.layers.N.{input_layernorm,
** self_attn.{q,k,v,o}_proj, post_attention_layernorm, mlp.{gate,up,down}_proj} ->
** blk.N.{attn_norm, attn_{q,k,v,output}, ffn_norm, ffn_{gate,up,down}}; .weight/.bias kept.
** Llama/Mistral permute the rows of q_proj (n_head) and k_proj (n_kv_head) so that RoPE pairs
** are adjacent (convert_hf_to_gguf LlamaModel.permute); Qwen2 uses NEOX RoPE and is not permuted.
*/
#include <cjson/cJSON.h>
#include <float.h>
#include <libgen.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "gguf_arch.h"
#include "gguf_vocab.h"
#include "model_build.h"
#include "plan.h"

struct arch {
    const char *hf;          /* config.json architectures[0] */
    const char *gguf;        /* general.architecture */
    bool permute_qk;
};

static const struct arch archs[] = {
    {"LlamaForCausalLM", "llama", true},
    {"MistralForCausalLM", "llama", true},
    {"Qwen2ForCausalLM", "qwen2", false},
};

const char *mq_gguf_arch_supported(void) { return "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM"; }

static const struct arch *find_arch(const char *hf)
{
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (strcmp(archs[i].hf, hf) == 0) return &archs[i];
    return NULL;
}

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

enum hp { HP_NONE, HP_CTX, HP_EMBD, HP_LAYERS, HP_FF, HP_HEADS, HP_KV, HP_HEAD_DIM, HP_VOCAB, HP_EPS, HP_THETA, HP_N };

/* config.json key, whether it is required, its valid range; how it must agree with the tensors is
** in shape_rules below (and check_counts for the layer count, head divisibility and RoPE pairs). */
static const struct hparam {
    const char *key;
    bool required;
    const struct range *range;
} hparams[HP_N] = {
    [HP_CTX] = {"max_position_embeddings", true, &R_CTX},
    [HP_EMBD] = {"hidden_size", true, &R_COUNT},
    [HP_LAYERS] = {"num_hidden_layers", true, &R_COUNT},     /* == the model.layers.N found */
    [HP_FF] = {"intermediate_size", true, &R_COUNT},
    [HP_HEADS] = {"num_attention_heads", true, &R_COUNT},    /* a multiple of num_key_value_heads */
    [HP_KV] = {"num_key_value_heads", false, &R_COUNT},      /* default: num_attention_heads */
    [HP_HEAD_DIM] = {"head_dim", false, &R_COUNT},           /* even; default hidden_size / heads */
    [HP_VOCAB] = {"vocab_size", true, &R_COUNT},
    [HP_EPS] = {"rms_norm_eps", true, &R_EPS},
    [HP_THETA] = {"rope_theta", false, &R_F32_POS},          /* default 10000 */
};

struct hvals {
    double v[HP_N];
    bool have[HP_N];
    uint64_t u[HP_N]; /* the counts, exact (v[] of an integer row) */
};

/* A config key for messages; head_dim without the key is the derived hidden_size / heads. */
static const char *hp_name(const struct hvals *h, enum hp k)
{
    if (k == HP_HEAD_DIM && !h->have[HP_HEAD_DIM]) return "hidden_size\" / \"num_attention_heads";
    return hparams[k].key;
}

/*
** Every tensor's dims (Hugging Face order: [out, in]) as a product of one or two
** hyper-parameters: what llama.cpp's loader will demand of the GGUF tensor, checked here on the
** config.json the converter writes. Layer rows hold for every model.layers.N, N = 0 ..
** num_hidden_layers - 1.
*/
static const struct shape_rule {
    bool layer;         /* the name follows "model.layers.N." */
    const char *tensor;
    bool required;
    uint32_t ndim;
    enum hp dim[2][2]; /* dim d = value[dim[d][0]] x value[dim[d][1]] (HP_NONE = 1) */
} shape_rules[] = {
    {false, "model.embed_tokens.weight", true, 2, {{HP_VOCAB}, {HP_EMBD}}},
    {false, "lm_head.weight", false, 2, {{HP_VOCAB}, {HP_EMBD}}},
    {false, "model.norm.weight", true, 1, {{HP_EMBD}}},
    {true, "input_layernorm.weight", true, 1, {{HP_EMBD}}},
    {true, "self_attn.q_proj.weight", true, 2, {{HP_HEADS, HP_HEAD_DIM}, {HP_EMBD}}},
    {true, "self_attn.k_proj.weight", true, 2, {{HP_KV, HP_HEAD_DIM}, {HP_EMBD}}},
    {true, "self_attn.v_proj.weight", true, 2, {{HP_KV, HP_HEAD_DIM}, {HP_EMBD}}},
    {true, "self_attn.o_proj.weight", true, 2, {{HP_EMBD}, {HP_HEADS, HP_HEAD_DIM}}},
    {true, "self_attn.q_proj.bias", false, 1, {{HP_HEADS, HP_HEAD_DIM}}},
    {true, "self_attn.k_proj.bias", false, 1, {{HP_KV, HP_HEAD_DIM}}},
    {true, "self_attn.v_proj.bias", false, 1, {{HP_KV, HP_HEAD_DIM}}},
    {true, "self_attn.o_proj.bias", false, 1, {{HP_EMBD}}},
    {true, "post_attention_layernorm.weight", true, 1, {{HP_EMBD}}},
    {true, "mlp.gate_proj.weight", true, 2, {{HP_FF}, {HP_EMBD}}},
    {true, "mlp.up_proj.weight", true, 2, {{HP_FF}, {HP_EMBD}}},
    {true, "mlp.down_proj.weight", true, 2, {{HP_EMBD}, {HP_FF}}},
    {true, "mlp.gate_proj.bias", false, 1, {{HP_FF}}},
    {true, "mlp.up_proj.bias", false, 1, {{HP_FF}}},
    {true, "mlp.down_proj.bias", false, 1, {{HP_EMBD}}},
};

/* Reads and range-checks every row; the defaults of the optional ones filled in. */
static enum mq_status read_hparams(const struct cfg *c, struct hvals *h, struct mq_error *err)
{
    memset(h, 0, sizeof *h);
    h->v[HP_THETA] = 10000.0;
    for (int k = HP_NONE + 1; k < HP_N; k++) {
        const struct hparam *r = &hparams[k];
        MQ_TRY(cfg_value(c, c->root, "", r->key, r->range, r->required, &h->v[k], &h->have[k], err));
        if (r->range->integer) h->u[k] = (uint64_t)h->v[k]; /* in 0 .. 2^32 - 1: exact */
    }
    if (!h->have[HP_KV]) h->u[HP_KV] = h->u[HP_HEADS];
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
    return MQ_OK;
}

/* "model.layers.N." + rest: N (decimal, no leading zero, below 10^9) and the rest; false otherwise. */
static bool parse_layer(const char *name, unsigned *layer, const char **rest)
{
    static const char prefix[] = "model.layers.";
    if (strncmp(name, prefix, sizeof prefix - 1) != 0) return false;
    const char *p = name + sizeof prefix - 1;
    unsigned v = 0;
    int n = 0;
    while (p[n] >= '0' && p[n] <= '9' && n < 9) v = v * 10 + (unsigned)(p[n++] - '0');
    if (n == 0 || p[n] != '.' || (p[0] == '0' && n > 1)) return false;
    *layer = v;
    *rest = p + n + 1;
    return true;
}

static int cmp_plan_name(const void *a, const void *b, void *ctx)
{
    const struct mq_plan *p = ctx;
    return strcmp(p->t[*(const size_t *)a].name, p->t[*(const size_t *)b].name);
}

/* The input tensor called `name` among idx[0..n) (sorted by name), or NULL. */
static const struct mq_plan_tensor *find_tensor(const struct mq_plan *p, const size_t *idx, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, p->t[idx[mid]].name);
        if (c == 0) return &p->t[idx[mid]];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

/* "[384, 256]" */
static const char *show_shape(const struct mq_plan_tensor *t, char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (uint32_t d = 0; d < t->ndim && o < cap; d++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%llu", d ? ", " : "", (unsigned long long)t->shape[d]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
    return buf;
}

/* One tensor against its rule: dims and each dim's product of hyper-parameters. */
static enum mq_status check_shape(const struct cfg *c, const struct hvals *h, const struct shape_rule *r,
                                  const struct mq_plan_tensor *t, struct mq_error *err)
{
    char sh[96];
    if (t->ndim != r->ndim)
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-shape", "tensor %s: shape %s has %u dims; it should have %u", t->name,
                       show_shape(t, sh, sizeof sh), t->ndim, r->ndim);
    for (uint32_t d = 0; d < r->ndim; d++) {
        enum hp a = r->dim[d][0], b = r->dim[d][1];
        uint64_t want = h->u[a] * (b ? h->u[b] : 1); /* both below 2^32: no overflow */
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
** The hyper-parameters against the tensors (names still Hugging Face's): num_hidden_layers is
** the number of model.layers.N found, every layer has its tensors, and every shape_rules tensor
** has the dims its row gives. llama.cpp would refuse such a file when loading it, or (a wrong
** head count) run it and compute something else.
*/
static enum mq_status check_tensors(const struct cfg *c, const struct hvals *h, const struct mq_plan *p, size_t n,
                                    struct mq_error *err)
{
    uint64_t layers = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned l;
        const char *rest;
        if (parse_layer(p->t[i].name, &l, &rest) && (uint64_t)l + 1 > layers) layers = (uint64_t)l + 1;
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
    for (size_t r = 0; r < sizeof shape_rules / sizeof shape_rules[0] && s == MQ_OK; r++) {
        const struct shape_rule *rule = &shape_rules[r];
        bool per_layer = rule->layer;
        for (uint64_t l = 0; l < (per_layer ? layers : 1) && s == MQ_OK; l++) {
            char name[160];
            if (per_layer) snprintf(name, sizeof name, "model.layers.%u.%s", (unsigned)l, rule->tensor);
            else snprintf(name, sizeof name, "%s", rule->tensor);
            const struct mq_plan_tensor *t = find_tensor(p, idx, n, name);
            if (t) s = check_shape(c, h, rule, t, err);
            else if (rule->required && !per_layer)
                s = MQ_FAIL(err, MQ_E_CORRUPT, "config-shape", "tensor %s is missing (llama.cpp needs it)", name);
            else if (rule->required)
                s = MQ_FAIL(err, MQ_E_CORRUPT, "config-shape",
                            "tensor %s is missing (%s: \"num_hidden_layers\" is %llu; llama.cpp needs every layer's "
                            "tensors)", name, c->path, (unsigned long long)layers);
        }
    }
    free(idx);
    return s;
}

/* ---- names ---- */

static const struct {
    const char *hf;
    const char *gguf;
} layer_names[] = {
    {"input_layernorm", "attn_norm"},     {"self_attn.q_proj", "attn_q"},   {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"},       {"self_attn.o_proj", "attn_output"},
    {"post_attention_layernorm", "ffn_norm"}, {"mlp.gate_proj", "ffn_gate"}, {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
};

/* GGUF name for an HF name: 1 mapped, 0 dropped (rotary inv_freq, tied lm_head), -1 unknown. */
static int map_name(const char *hf, bool tied, char *out, size_t cap)
{
    const char *suffix = NULL;
    size_t n = strlen(hf);
    if (n > 7 && strcmp(hf + n - 7, ".weight") == 0) suffix = "weight";
    else if (n > 5 && strcmp(hf + n - 5, ".bias") == 0) suffix = "bias";
    if (strstr(hf, "rotary_emb.inv_freq")) return 0;
    if (!suffix) return -1;
    size_t stem = n - strlen(suffix) - 1;
    if (strncmp(hf, "model.embed_tokens", stem) == 0 && stem == 18) {
        snprintf(out, cap, "token_embd.%s", suffix);
        return 1;
    }
    if (strncmp(hf, "model.norm", stem) == 0 && stem == 10) {
        snprintf(out, cap, "output_norm.%s", suffix);
        return 1;
    }
    if (strncmp(hf, "lm_head", stem) == 0 && stem == 7) {
        if (tied) return 0;
        snprintf(out, cap, "output.%s", suffix);
        return 1;
    }
    unsigned layer;
    const char *rest;
    if (!parse_layer(hf, &layer, &rest) || (size_t)(rest - hf) > stem) return -1;
    size_t rl = stem - (size_t)(rest - hf);
    for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++) {
        if (strlen(layer_names[i].hf) == rl && strncmp(rest, layer_names[i].hf, rl) == 0) {
            snprintf(out, cap, "blk.%u.%s.%s", layer, layer_names[i].gguf, suffix);
            return 1;
        }
    }
    return -1;
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
    enum mq_status s = mq_plan_add(p, "rope_freqs.weight", -1, err);
    if (s != MQ_OK) {
        free(v);
        return s;
    }
    struct mq_plan_tensor *t = &p->t[p->n - 1];
    t->kind = MQ_SRC_GENERATED;
    t->src_codec = MQ_CODEC_F32;
    t->ndim = 1;
    t->shape[0] = n;
    t->numel = t->row_len = n;
    t->rows = 1;
    t->raw_dtype = MQ_DTYPE_F32;
    t->generated = v;
    return MQ_OK;
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

/* ---- tokenizer ---- */

/* The folder's tokenizer (tokenizer.model or tokenizer.json, by the family's `rule`: gguf_vocab.h)
** -> tokenizer.ggml.*; a folder without one is refused. --no-vocab: model "none" (llama.cpp then
** runs on token ids only, with {arch}.vocab_size giving the size). */
static enum mq_status add_vocab(struct mq_plan *p, const struct mq_model *m, uint64_t vocab_size,
                                enum mq_vocab_rule rule, struct mq_error *err)
{
    if (p->opt->no_vocab) return mq_meta_set_str(&p->meta, "tokenizer.ggml.model", "none", SIZE_MAX, err);
    char *dup = strdup(m->config.path);
    if (!dup) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", dirname(dup));
    free(dup);
    return mq_gguf_vocab_from_folder(dir, m->config.json, vocab_size, rule, &p->meta, err);
}

/* ---- hyper-parameters ---- */

/* rope_scaling -> rope.scaling.* keys or the rope_freqs tensor (null or absent: none). */
static enum mq_status set_rope_scaling(struct mq_plan *p, const struct arch *a, const struct cfg *c,
                                       const struct hvals *h, struct mq_error *err)
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
    char key[128];
    if (strcmp(type, "llama3") == 0) return add_rope_freqs(p, c, rs, h->v[HP_THETA], h->u[HP_HEAD_DIM], err);
    if (strcmp(type, "linear") == 0 || strcmp(type, "yarn") == 0) {
        double factor, orig;
        bool here, have_orig;
        MQ_TRY(cfg_value(c, rs, "rope_scaling.", "factor", &R_F32_POS, true, &factor, &here, err));
        MQ_TRY(cfg_value(c, rs, "rope_scaling.", "original_max_position_embeddings", &R_CTX, false, &orig, &have_orig,
                         err));
        if (strcmp(type, "yarn") == 0) MQ_TRY(check_yarn(c, rs, factor, err));
        snprintf(key, sizeof key, "%s.rope.scaling.type", a->gguf);
        MQ_TRY(mq_meta_set_str(&p->meta, key, type, SIZE_MAX, err));
        snprintf(key, sizeof key, "%s.rope.scaling.factor", a->gguf);
        MQ_TRY(mq_meta_set_f32(&p->meta, key, (float)factor, err)); /* in FLOAT32 range: R_F32_POS */
        if (have_orig) {
            snprintf(key, sizeof key, "%s.rope.scaling.original_context_length", a->gguf);
            MQ_TRY(mq_meta_set_u32(&p->meta, key, (uint32_t)orig, err)); /* an integer in 1..2^31-1 */
        }
        return MQ_OK;
    }
    if (strcmp(type, "default") == 0 || !type[0]) return MQ_OK;
    return MQ_FAIL(err, MQ_E_UNSUPPORTED, "rope-scaling",
                   "%s: rope_scaling type \"%s\" is not supported (linear, yarn, llama3)", c->path, type);
}

/* The {arch}.* keys, in llama.cpp's converter's order, from values read_hparams and check_tensors
** have proven in range and consistent with the tensors. */
static enum mq_status set_hparams(struct mq_plan *p, const struct arch *a, const struct cfg *c, const struct hvals *h,
                                  struct mq_error *err)
{
    struct mq_meta *meta = &p->meta;
    char key[128];
#define U32(suffix, k) \
    do { \
        snprintf(key, sizeof key, "%s." suffix, a->gguf); \
        MQ_TRY(mq_meta_set_u32(meta, key, (uint32_t)h->u[k], err)); \
    } while (0)
#define F32(suffix, k) \
    do { \
        snprintf(key, sizeof key, "%s." suffix, a->gguf); \
        MQ_TRY(mq_meta_set_f32(meta, key, (float)h->v[k], err)); \
    } while (0)
    U32("context_length", HP_CTX);
    U32("embedding_length", HP_EMBD);
    U32("block_count", HP_LAYERS);
    U32("feed_forward_length", HP_FF);
    U32("attention.head_count", HP_HEADS);
    U32("attention.head_count_kv", HP_KV);
    if (h->have[HP_THETA]) F32("rope.freq_base", HP_THETA);
    F32("attention.layer_norm_rms_epsilon", HP_EPS);
    if (h->have[HP_HEAD_DIM]) {
        U32("attention.key_length", HP_HEAD_DIM);
        U32("attention.value_length", HP_HEAD_DIM);
    }
    U32("rope.dimension_count", HP_HEAD_DIM);
    U32("vocab_size", HP_VOCAB);
#undef U32
#undef F32
    return set_rope_scaling(p, a, c, h, err);
}

enum mq_status mq_gguf_arch_apply(struct mq_plan *p, bool *applied, struct mq_error *err)
{
    const struct mq_model *m = p->model;
    *applied = false;
    if (!m->config.present || !m->config.architecture[0]) return MQ_OK;
    const struct arch *a = find_arch(m->config.architecture);
    if (!a) {
        if (p->opt->raw_names) return MQ_OK;
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "architecture",
                       "%s: architecture %s is not supported for GGUF (supported: %s); --raw-names writes the "
                       "tensors unchanged (a GGUF llama.cpp cannot run)", m->config.path, m->config.architecture,
                       mq_gguf_arch_supported());
    }
    const struct cfg c = {m->config.json, m->config.path}; /* parsed once, by src/config.c */
    struct hvals h;
    size_t n_inputs = p->n;
    MQ_TRY(read_hparams(&c, &h, err));
    MQ_TRY(check_tensors(&c, &h, p, n_inputs, err));
    enum mq_status s = mq_meta_set_str(&p->meta, "general.architecture", a->gguf, SIZE_MAX, err);
    char name[256];
    mq_gguf_model_name(m->input_path, name, sizeof name);
    if (s == MQ_OK) s = mq_meta_set_str(&p->meta, "general.name", name, SIZE_MAX, err);
    if (s == MQ_OK) s = set_hparams(p, a, &c, &h, err);
    if (s == MQ_OK) s = add_vocab(p, m, h.u[HP_VOCAB], mq_gguf_vocab_rule(a->hf), err);
    uint64_t heads = h.u[HP_HEADS], kv = h.u[HP_KV];
    bool tied = m->config.tie_word_embeddings == 1;
    /* names: pass 1 checks every tensor and computes its name (NULL = dropped); pass 2 applies */
    char **names = s == MQ_OK ? calloc(n_inputs ? n_inputs : 1, sizeof *names) : NULL;
    if (s == MQ_OK && !names) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    for (size_t i = 0; s == MQ_OK && i < n_inputs; i++) {
        struct mq_plan_tensor *t = &p->t[i];
        char gname[128];
        int r = map_name(t->name, tied, gname, sizeof gname);
        if (r < 0) {
            s = MQ_FAIL(err, MQ_E_UNSUPPORTED, "tensor-name", "tensor %s: no GGUF name for %s (llama.cpp would refuse "
                        "an unknown tensor)", t->name, a->hf);
        } else if (r > 0 && !(names[i] = strdup(gname))) {
            s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
        } else if (r > 0 && a->permute_qk && (strstr(gname, ".attn_q.") || strstr(gname, ".attn_k."))) {
            uint64_t nh = strstr(gname, ".attn_q.") ? heads : kv;
            uint64_t rows = t->ndim >= 2 ? t->shape[0] : t->numel;
            if (nh == 0 || rows == 0 || rows % nh || (rows / nh) % 2)
                s = MQ_FAIL(err, MQ_E_CORRUPT, "qk-shape", "tensor %s: %llu rows do not split into %llu heads of "
                            "even size", gname, (unsigned long long)rows, (unsigned long long)nh);
        }
    }
    if (s == MQ_OK) {
        size_t w = 0;
        for (size_t i = 0; i < p->n; i++) {
            struct mq_plan_tensor *t = &p->t[i];
            if (i < n_inputs) {
                free(t->name);
                t->name = names[i];
                names[i] = NULL;
                if (!t->name) { /* dropped */
                    mq_plan_tensor_release(t);
                    continue;
                }
                if (s == MQ_OK && a->permute_qk && p->opt->debug_qk_permute != 1 &&
                    (strstr(t->name, ".attn_q.") || strstr(t->name, ".attn_k."))) {
                    bool q = strstr(t->name, ".attn_q.") != NULL;
                    struct mq_xform x = {MQ_XFORM_PERMUTE_HEADS, q || p->opt->debug_qk_permute == 2 ? heads : kv, 0};
                    s = mq_plan_add_xform(t, x, err); /* a bias permutes its elements as rows */
                }
            }
            p->t[w++] = *t;
        }
        p->n = w;
    } else if (names) {
        for (size_t i = 0; i < n_inputs; i++) free(names[i]);
    }
    free(names);
    if (s == MQ_OK) *applied = true;
    return s;
}
