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
** Names (section 4.4): model.embed_tokens -> token_embd, model.norm -> output_norm,
** lm_head -> output (dropped when tie_word_embeddings), model.layers.N.{input_layernorm,
** self_attn.{q,k,v,o}_proj, post_attention_layernorm, mlp.{gate,up,down}_proj} ->
** blk.N.{attn_norm, attn_{q,k,v,output}, ffn_norm, ffn_{gate,up,down}}; .weight/.bias kept.
** Llama/Mistral permute the rows of q_proj (n_head) and k_proj (n_kv_head) so that RoPE pairs
** are adjacent (convert_hf_to_gguf LlamaModel.permute); Qwen2 uses NEOX RoPE and is not permuted.
*/
#include <cjson/cJSON.h>
#include <libgen.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "gguf_arch.h"
#include "gguf_vocab.h"
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
    cJSON *root;
    const char *path;
};

/* A finite number at `key`: *present says whether it is there; absent + required is an error. */
static enum mq_status cfg_float(const struct cfg *c, const char *key, bool required, double *out, bool *present,
                                struct mq_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->root, key);
    if (present) *present = false;
    if (!v || cJSON_IsNull(v)) {
        if (required) return MQ_FAIL(err, MQ_E_CORRUPT, "config-field", "%s: missing \"%s\"", c->path, key);
        return MQ_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-field", "%s: \"%s\" must be a number", c->path, key);
    *out = v->valuedouble;
    if (present) *present = true;
    return MQ_OK;
}

/* The same, for counts written as UINT32: an integer in 0..2^32-1. */
static enum mq_status cfg_uint(const struct cfg *c, const char *key, bool required, uint64_t *out, bool *present,
                               struct mq_error *err)
{
    double d;
    bool here;
    MQ_TRY(cfg_float(c, key, required, &d, &here, err));
    if (present) *present = here;
    if (!here) return MQ_OK;
    if (d < 0 || d > 4294967295.0 || d != floor(d))
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-field", "%s: \"%s\" must be an integer in 0..2^32-1", c->path, key);
    *out = (uint64_t)d;
    return MQ_OK;
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
    int used = 0;
    if (sscanf(hf, "model.layers.%u.%n", &layer, &used) != 1 || used == 0) return -1;
    const char *rest = hf + used;
    size_t rl = stem - (size_t)used;
    for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++) {
        if (strlen(layer_names[i].hf) == rl && strncmp(rest, layer_names[i].hf, rl) == 0) {
            snprintf(out, cap, "blk.%u.%s.%s", layer, layer_names[i].gguf, suffix);
            return 1;
        }
    }
    return -1;
}

/* ---- llama3 RoPE frequencies (convert_hf_to_gguf LlamaModel.generate_extra_tensors) ---- */

static enum mq_status add_rope_freqs(struct mq_plan *p, const cJSON *rs, double theta, uint64_t head_dim,
                                     const char *path, struct mq_error *err)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(rs, "factor");
    const cJSON *lo = cJSON_GetObjectItemCaseSensitive(rs, "low_freq_factor");
    const cJSON *hi = cJSON_GetObjectItemCaseSensitive(rs, "high_freq_factor");
    const cJSON *old = cJSON_GetObjectItemCaseSensitive(rs, "original_max_position_embeddings");
    double factor = cJSON_IsNumber(f) ? f->valuedouble : 8.0;
    double low = cJSON_IsNumber(lo) ? lo->valuedouble : 1.0;
    double high = cJSON_IsNumber(hi) ? hi->valuedouble : 4.0;
    double old_ctx = cJSON_IsNumber(old) ? old->valuedouble : 8192.0;
    if (!(factor > 0) || !(high > low) || !(old_ctx > 0))
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-field", "%s: rope_scaling (llama3) has invalid factors", path);
    uint64_t n = head_dim / 2;
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
static enum mq_status check_yarn(const cJSON *rs, double factor, const char *path, struct mq_error *err)
{
    const cJSON *fast = cJSON_GetObjectItemCaseSensitive(rs, "beta_fast");
    const cJSON *slow = cJSON_GetObjectItemCaseSensitive(rs, "beta_slow");
    const cJSON *af = cJSON_GetObjectItemCaseSensitive(rs, "attention_factor");
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(rs, "mscale");
    const cJSON *ms_all = cJSON_GetObjectItemCaseSensitive(rs, "mscale_all_dim");
    const char *bad = NULL;
    const double def = yarn_mscale(factor, 1.0);
    if (cJSON_IsNumber(fast) && fast->valuedouble != 0 && fast->valuedouble != 32) bad = "beta_fast";
    else if (cJSON_IsNumber(slow) && slow->valuedouble != 0 && slow->valuedouble != 1) bad = "beta_slow";
    else if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(rs, "truncate"))) bad = "truncate";
    else if (cJSON_IsNumber(af) && fabs(af->valuedouble - def) > 1e-6 * def) bad = "attention_factor";
    else if (!cJSON_IsNumber(af) && cJSON_IsNumber(ms) && cJSON_IsNumber(ms_all) && ms->valuedouble != 0 &&
             ms_all->valuedouble != 0 &&
             fabs(yarn_mscale(factor, ms->valuedouble) / yarn_mscale(factor, ms_all->valuedouble) - def) > 1e-6 * def)
        bad = "mscale";
    if (bad)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "rope-scaling",
                       "%s: rope_scaling (yarn) \"%s\" other than transformers' default is not supported (llama.cpp "
                       "ignores it for this architecture)", path, bad);
    return MQ_OK;
}

/* ---- tokenizer ---- */

/* tokenizer.json beside config.json -> tokenizer.ggml.*; without one, model "none" (llama.cpp
** then runs on token ids only, with {arch}.vocab_size giving the size). */
static enum mq_status add_vocab(struct mq_plan *p, const struct mq_model *m, struct mq_error *err)
{
    char *dup = strdup(m->config.path);
    if (!dup) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    char dir[4096], tok[4200];
    snprintf(dir, sizeof dir, "%s", dirname(dup));
    free(dup);
    snprintf(tok, sizeof tok, "%s/tokenizer.json", dir);
    if (access(tok, F_OK) != 0) return mq_meta_set_str(&p->meta, "tokenizer.ggml.model", "none", SIZE_MAX, err);
    return mq_gguf_vocab_from_hf(dir, m->config.vocab_size, &p->meta, err);
}

/* ---- hyper-parameters ---- */

static enum mq_status set_hparams(struct mq_plan *p, const struct arch *a, const struct cfg *c, struct mq_error *err)
{
    struct mq_meta *meta = &p->meta;
    char key[128];
    uint64_t ctx, embd, layers, ff, heads, kv = 0, head_dim = 0, vocab;
    double eps, theta = 10000.0;
    bool have_kv, have_hd, have_theta;
    MQ_TRY(cfg_uint(c, "max_position_embeddings", true, &ctx, NULL, err));
    MQ_TRY(cfg_uint(c, "hidden_size", true, &embd, NULL, err));
    MQ_TRY(cfg_uint(c, "num_hidden_layers", true, &layers, NULL, err));
    MQ_TRY(cfg_uint(c, "intermediate_size", true, &ff, NULL, err));
    MQ_TRY(cfg_uint(c, "num_attention_heads", true, &heads, NULL, err));
    MQ_TRY(cfg_uint(c, "num_key_value_heads", false, &kv, &have_kv, err));
    MQ_TRY(cfg_uint(c, "head_dim", false, &head_dim, &have_hd, err));
    MQ_TRY(cfg_uint(c, "vocab_size", true, &vocab, NULL, err));
    MQ_TRY(cfg_float(c, "rms_norm_eps", true, &eps, NULL, err));
    MQ_TRY(cfg_float(c, "rope_theta", false, &theta, &have_theta, err));
    if (!have_kv) kv = heads;
    if (heads == 0 || kv == 0 || heads % kv != 0)
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-field", "%s: num_attention_heads %llu is not a multiple of "
                       "num_key_value_heads %llu", c->path, (unsigned long long)heads, (unsigned long long)kv);
    uint64_t rope_dim = have_hd ? head_dim : embd / heads;
    if (!have_hd) head_dim = rope_dim;
#define U32(suffix, v) \
    do { \
        snprintf(key, sizeof key, "%s." suffix, a->gguf); \
        MQ_TRY(mq_meta_set_u32(meta, key, (uint32_t)(v), err)); \
    } while (0)
#define F32(suffix, v) \
    do { \
        snprintf(key, sizeof key, "%s." suffix, a->gguf); \
        MQ_TRY(mq_meta_set_f32(meta, key, (float)(v), err)); \
    } while (0)
    U32("context_length", ctx);
    U32("embedding_length", embd);
    U32("block_count", layers);
    U32("feed_forward_length", ff);
    U32("attention.head_count", heads);
    U32("attention.head_count_kv", kv);
    if (have_theta) F32("rope.freq_base", theta);
    F32("attention.layer_norm_rms_epsilon", eps);
    if (have_hd) {
        U32("attention.key_length", head_dim);
        U32("attention.value_length", head_dim);
    }
    U32("rope.dimension_count", rope_dim);
    U32("vocab_size", vocab);
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(c->root, "rope_scaling");
    if (rs && cJSON_IsObject(rs)) {
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
        if (!cJSON_IsString(ty)) ty = cJSON_GetObjectItemCaseSensitive(rs, "type");
        const char *type = cJSON_IsString(ty) ? ty->valuestring : "";
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(rs, "factor");
        if (strcmp(type, "llama3") == 0) {
            MQ_TRY(add_rope_freqs(p, rs, theta, head_dim, c->path, err));
        } else if (strcmp(type, "linear") == 0 || strcmp(type, "yarn") == 0) {
            if (!cJSON_IsNumber(f))
                return MQ_FAIL(err, MQ_E_CORRUPT, "config-field", "%s: rope_scaling.factor missing", c->path);
            if (strcmp(type, "yarn") == 0) MQ_TRY(check_yarn(rs, f->valuedouble, c->path, err));
            snprintf(key, sizeof key, "%s.rope.scaling.type", a->gguf);
            MQ_TRY(mq_meta_set_str(meta, key, type, SIZE_MAX, err));
            F32("rope.scaling.factor", f->valuedouble);
            const cJSON *o = cJSON_GetObjectItemCaseSensitive(rs, "original_max_position_embeddings");
            if (cJSON_IsNumber(o)) U32("rope.scaling.original_context_length", o->valuedouble);
        } else if (strcmp(type, "default") != 0 && type[0]) {
            return MQ_FAIL(err, MQ_E_UNSUPPORTED, "rope-scaling",
                           "%s: rope_scaling type \"%s\" is not supported (linear, yarn, llama3)", c->path, type);
        }
    }
#undef U32
#undef F32
    return MQ_OK;
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
    size_t len;
    char *text = NULL;
    MQ_TRY(mq_read_small_file(m->config.path, 1u << 20, "config-size", &text, &len, err));
    struct cfg c = {cJSON_ParseWithLength(text, len), m->config.path};
    free(text);
    if (!c.root) return MQ_FAIL(err, MQ_E_CORRUPT, "config-json", "%s: not valid JSON", m->config.path);
    enum mq_status s = mq_meta_set_str(&p->meta, "general.architecture", a->gguf, SIZE_MAX, err);
    char name[256];
    mq_gguf_model_name(m->input_path, name, sizeof name);
    if (s == MQ_OK) s = mq_meta_set_str(&p->meta, "general.name", name, SIZE_MAX, err);
    size_t n_inputs = p->n;
    if (s == MQ_OK) s = set_hparams(p, a, &c, err);
    if (s == MQ_OK) s = add_vocab(p, m, err);
    uint64_t heads = m->config.num_heads, kv = m->config.num_kv_heads ? m->config.num_kv_heads : heads;
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
                if (!t->name) continue; /* dropped */
                if (a->permute_qk && p->opt->debug_qk_permute != 1 &&
                    (strstr(t->name, ".attn_q.") || strstr(t->name, ".attn_k."))) {
                    bool q = strstr(t->name, ".attn_q.") != NULL;
                    t->permute_heads = (uint32_t)(q || p->opt->debug_qk_permute == 2 ? heads : kv);
                    if (t->ndim == 1) { /* a bias: its elements move like rows of one element */
                        t->rows = t->numel;
                        t->row_len = 1;
                    }
                }
            }
            p->t[w++] = *t;
        }
        p->n = w;
    } else if (names) {
        for (size_t i = 0; i < n_inputs; i++) free(names[i]);
    }
    free(names);
    cJSON_Delete(c.root);
    if (s == MQ_OK) *applied = true;
    return s;
}
