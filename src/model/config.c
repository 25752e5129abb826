/*
** config.c - the fields of a Hugging Face config.json that modelq uses.
**
** Llama-family names first (num_hidden_layers, num_key_value_heads, head_dim ...), with the GPT-2
** aliases (n_layer, n_head, n_embd) and multimodal "text_config" nesting as fallbacks. Values
** must be non-negative integers; a wrong type is an error naming the file and the key.
**
** config.json is read here once, by mq_config_read_json (one size limit, one node limit, the
** strict scan of json_strict.h with duplicate keys refused), and the tree is kept in
** mq_config.json for every later reader (GGUF hyper-parameters in formats/gguf_arch.c, token ids
** in formats/gguf_vocab.c, the bitsandbytes config in formats/bnb_read.c and bnb_out.c).
*/
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "json_strict.h"
#include "model_build.h"
#include "swa.h"

/* Real config.json files are a few kB; the largest carry label maps (ImageNet-21k id2label and
** label2id: ~43 000 values, ~1 MB). 2^19 values bound the parsed tree to ~75 MB. */
#define CONFIG_MAX_BYTES (16u * 1024 * 1024)
#define CONFIG_MAX_NODES (1u << 19)
#define CONFIG_MAX_DEPTH 64

enum mq_status mq_config_read_json(const char *path, cJSON **out, size_t *bytes, struct mq_error *err)
{
    char *text;
    size_t len;
    *out = NULL;
    MQ_TRY(mq_read_small_file(path, CONFIG_MAX_BYTES, "config-size", &text, &len, err));
    struct json_strict_result jr;
    const struct json_strict_rules rules = {.unique_keys = true, .max_depth = CONFIG_MAX_DEPTH,
                                            .max_nodes = CONFIG_MAX_NODES};
    if (!json_strict_check(text, len, &rules, &jr)) {
        free(text);
        char in[160] = "";
        if (jr.top_key[0] && strcmp(jr.top_key, jr.key) != 0) snprintf(in, sizeof in, " in \"%s\"", jr.top_key);
        if (strcmp(jr.check, "json-duplicate-key") == 0)
            return MQ_FAIL(err, MQ_E_CORRUPT, "config-duplicate-key",
                           "%s: key \"%s\" appears twice%s (Python's json keeps the last, cJSON the first)", path,
                           jr.key, in);
        if (strcmp(jr.check, "json-nodes") == 0)
            return MQ_FAIL(err, MQ_E_LIMIT, "config-nodes-limit",
                           "%s: more than %u JSON values (the limit bounds the memory of the parsed file)", path,
                           CONFIG_MAX_NODES);
        if (strcmp(jr.check, "json-alloc") == 0) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
        if (jr.top_key[0])
            return MQ_FAIL(err, MQ_E_CORRUPT, "config-json", "%s: not valid JSON: %s at byte %zu (in \"%s\")", path,
                           jr.detail, jr.where, jr.top_key);
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-json", "%s: not valid JSON: %s at byte %zu", path, jr.detail,
                       jr.where);
    }
    *out = cJSON_ParseWithLength(text, len);
    free(text);
    if (bytes) *bytes = len;
    return *out ? MQ_OK : MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
}

const char *mq_json_describe(const cJSON *v, char *buf, size_t cap)
{
    if (cJSON_IsNumber(v)) snprintf(buf, cap, "%.10g", v->valuedouble);
    else snprintf(buf, cap, "%s", cJSON_IsString(v) ? "a string" : cJSON_IsTrue(v) ? "true" : cJSON_IsFalse(v) ? "false"
                                  : cJSON_IsArray(v) ? "an array" : cJSON_IsObject(v) ? "an object" : "null");
    return buf;
}

/* Looks `key` up in `obj`, then in obj.text_config. */
static const cJSON *config_get(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (v) return v;
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(obj, "text_config");
    return cJSON_IsObject(tc) ? cJSON_GetObjectItemCaseSensitive(tc, key) : NULL;
}

static enum mq_status config_uint(const cJSON *root, const char *path, const char *const *keys,
                                  uint64_t *out, struct mq_error *err)
{
    for (; *keys; keys++) {
        const cJSON *v = config_get(root, *keys);
        if (!v || cJSON_IsNull(v)) continue;
        double d = cJSON_IsNumber(v) ? v->valuedouble : -1.0;
        if (!(d >= 0) || d != floor(d) || d > 9007199254740992.0) {
            char got[48];
            return MQ_FAIL(err, MQ_E_CORRUPT, "config-value", "%s: \"%s\" is %s; it must be an integer from 0 to 2^53",
                           path, *keys, mq_json_describe(v, got, sizeof got));
        }
        *out = (uint64_t)d;
        return MQ_OK;
    }
    return MQ_OK;
}

static void config_str(const cJSON *root, const char *key, char *dst, size_t cap)
{
    const cJSON *v = config_get(root, key);
    if (cJSON_IsString(v) && v->valuestring) snprintf(dst, cap, "%s", v->valuestring);
}

/*
** architectures[0], the class transformers (and convert_hf_to_gguf) instantiate. Absent, null or
** [] names none (the checkpoint is then converted with its names unchanged); anything else that
** is not an array of strings is refused, as transformers would fail on it.
*/
static enum mq_status config_architecture(const cJSON *root, const char *path, char *dst, size_t cap,
                                          struct mq_error *err)
{
    const cJSON *ar = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    if (!ar || cJSON_IsNull(ar)) return MQ_OK;
    bool ok = cJSON_IsArray(ar);
    for (const cJSON *a = ok ? ar->child : NULL; a; a = a->next) ok = ok && cJSON_IsString(a) && a->valuestring[0];
    if (!ok)
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-field", "%s: \"architectures\" must be a list of class names (strings)",
                       path);
    if (ar->child) snprintf(dst, cap, "%s", ar->child->valuestring);
    return MQ_OK;
}

/*
** The sliding-window layers llama.cpp will run the converted model with (swa.h): only for the
** families it runs that way. Window: sliding_window (absent: transformers' default; null or 0:
** none). Layers: layer_types ("sliding_attention" per layer, transformers v4.53 and later) when
** present, else every layer but the last of each sliding_window_pattern (Gemma 3's key; 1 = no
** sliding layer, as llama.cpp's converter then writes no window), else the family's period.
*/
static enum mq_status config_swa(const cJSON *root, const char *path, struct mq_config *c, struct mq_error *err)
{
    const struct mq_swa_family *f = mq_swa_family_of_config(c->architecture, c->model_type);
    if (!f || !c->num_layers) return MQ_OK;
    static const char *const k_window[] = {"sliding_window", NULL};
    static const char *const k_pattern[] = {"sliding_window_pattern", NULL};
    uint64_t window = f->hf_window, period = f->period, layers = 0;
    const cJSON *w = config_get(root, "sliding_window");
    if (cJSON_IsNull(w)) window = 0;
    MQ_TRY(config_uint(root, path, k_window, &window, err));
    MQ_TRY(config_uint(root, path, k_pattern, &period, err));
    const cJSON *lt = config_get(root, "layer_types");
    if (lt && !cJSON_IsNull(lt)) {
        bool ok = cJSON_IsArray(lt);
        uint64_t i = 0;
        for (const cJSON *e = ok ? lt->child : NULL; e; e = e->next, i++) {
            ok = ok && cJSON_IsString(e);
            if (ok && i < c->num_layers && strcmp(e->valuestring, "sliding_attention") == 0) layers++;
        }
        if (!ok)
            return MQ_FAIL(err, MQ_E_CORRUPT, "config-value", "%s: \"layer_types\" must be a list of strings "
                           "(\"sliding_attention\", \"full_attention\" per layer)", path);
        period = 0;
    } else {
        layers = mq_swa_layers_by_period(c->num_layers, period);
    }
    if (window && layers) {
        c->sliding_window = window;
        c->swa_layers = layers;
        c->swa_period = (uint32_t)(period > UINT32_MAX ? UINT32_MAX : period);
    }
    return MQ_OK;
}

enum mq_status mq_config_load(struct mq_model *m, const char *path, struct mq_error *err)
{
    cJSON *root;
    size_t len;
    MQ_TRY(mq_config_read_json(path, &root, &len, err));
    m->header_bytes_read += len;
    struct mq_config *c = &m->config;
    c->json = root; /* owned by the model from here on */
    enum mq_status s = MQ_OK;
    static const char *const k_hidden[] = {"hidden_size", "n_embd", "d_model", NULL};
    static const char *const k_inter[] = {"intermediate_size", "n_inner", "ffn_dim", NULL};
    static const char *const k_layers[] = {"num_hidden_layers", "n_layer", "num_layers", NULL};
    static const char *const k_heads[] = {"num_attention_heads", "n_head", "num_heads", NULL};
    static const char *const k_kv[] = {"num_key_value_heads", "num_kv_heads", "multi_query_group_num", NULL};
    static const char *const k_hd[] = {"head_dim", NULL};
    static const char *const k_vocab[] = {"vocab_size", NULL};
    static const char *const k_maxpos[] = {"max_position_embeddings", "n_positions", "max_seq_len", NULL};
    static const char *const k_experts[] = {"num_local_experts", "num_experts", NULL};
    static const char *const k_used[] = {"num_experts_per_tok", NULL};
    if (s == MQ_OK) s = config_uint(root, path, k_hidden, &c->hidden_size, err);
    if (s == MQ_OK) s = config_uint(root, path, k_inter, &c->intermediate_size, err);
    if (s == MQ_OK) s = config_uint(root, path, k_layers, &c->num_layers, err);
    if (s == MQ_OK) s = config_uint(root, path, k_heads, &c->num_heads, err);
    if (s == MQ_OK) s = config_uint(root, path, k_kv, &c->num_kv_heads, err);
    if (s == MQ_OK) s = config_uint(root, path, k_hd, &c->head_dim, err);
    if (s == MQ_OK) s = config_uint(root, path, k_vocab, &c->vocab_size, err);
    if (s == MQ_OK) s = config_uint(root, path, k_maxpos, &c->max_position, err);
    if (s == MQ_OK) s = config_uint(root, path, k_experts, &c->num_experts, err);
    if (s == MQ_OK) s = config_uint(root, path, k_used, &c->experts_used, err);
    if (s == MQ_OK) {
        config_str(root, "model_type", c->model_type, sizeof c->model_type);
        s = config_architecture(root, path, c->architecture, sizeof c->architecture, err);
    }
    if (s == MQ_OK) {
        config_str(root, "torch_dtype", c->torch_dtype, sizeof c->torch_dtype);
        if (!c->torch_dtype[0]) config_str(root, "dtype", c->torch_dtype, sizeof c->torch_dtype);
        const cJSON *tie = config_get(root, "tie_word_embeddings");
        if (cJSON_IsBool(tie)) c->tie_word_embeddings = cJSON_IsTrue(tie) ? 1 : 0;
        if (!c->num_kv_heads) c->num_kv_heads = c->num_heads;
        if (!c->head_dim && c->num_heads) c->head_dim = c->hidden_size / c->num_heads;
        c->head_dim_v = c->head_dim;
        s = config_swa(root, path, c, err);
    }
    if (s == MQ_OK) {
        c->path = strdup(path);
        if (!c->path) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
        c->present = (s == MQ_OK);
    }
    return s;
}
