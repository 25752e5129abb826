/*
** config.c - the fields of a Hugging Face config.json that modelq uses.
**
** Llama-family names first (num_hidden_layers, num_key_value_heads, head_dim ...), with the GPT-2
** aliases (n_layer, n_head, n_embd) and multimodal "text_config" nesting as fallbacks. Values
** must be non-negative integers; a wrong type is an error naming the file and the key.
*/
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "model_build.h"

#define CONFIG_MAX_BYTES (16u * 1024 * 1024)

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
        double d = v->valuedouble;
        if (!cJSON_IsNumber(v) || d < 0 || d != floor(d) || d > 9007199254740992.0)
            return MQ_FAIL(err, MQ_E_CORRUPT, "config-value", "%s: \"%s\" must be a non-negative integer",
                           path, *keys);
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

enum mq_status mq_config_load(struct mq_model *m, const char *path, struct mq_error *err)
{
    char *text;
    size_t len;
    MQ_TRY(mq_read_small_file(path, CONFIG_MAX_BYTES, "config-size", &text, &len, err));
    m->header_bytes_read += len;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    free(text);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return MQ_FAIL(err, MQ_E_CORRUPT, "config-json", "%s: not a valid JSON object", path);
    }
    struct mq_config *c = &m->config;
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
    if (s == MQ_OK) s = config_uint(root, path, k_hidden, &c->hidden_size, err);
    if (s == MQ_OK) s = config_uint(root, path, k_inter, &c->intermediate_size, err);
    if (s == MQ_OK) s = config_uint(root, path, k_layers, &c->num_layers, err);
    if (s == MQ_OK) s = config_uint(root, path, k_heads, &c->num_heads, err);
    if (s == MQ_OK) s = config_uint(root, path, k_kv, &c->num_kv_heads, err);
    if (s == MQ_OK) s = config_uint(root, path, k_hd, &c->head_dim, err);
    if (s == MQ_OK) s = config_uint(root, path, k_vocab, &c->vocab_size, err);
    if (s == MQ_OK) s = config_uint(root, path, k_maxpos, &c->max_position, err);
    if (s == MQ_OK) s = config_uint(root, path, k_experts, &c->num_experts, err);
    if (s == MQ_OK) {
        config_str(root, "model_type", c->model_type, sizeof c->model_type);
        const cJSON *ar = cJSON_GetObjectItemCaseSensitive(root, "architectures");
        const cJSON *a0 = cJSON_IsArray(ar) ? cJSON_GetArrayItem(ar, 0) : NULL;
        if (cJSON_IsString(a0)) snprintf(c->architecture, sizeof c->architecture, "%s", a0->valuestring);
        config_str(root, "torch_dtype", c->torch_dtype, sizeof c->torch_dtype);
        if (!c->torch_dtype[0]) config_str(root, "dtype", c->torch_dtype, sizeof c->torch_dtype);
        const cJSON *tie = config_get(root, "tie_word_embeddings");
        if (cJSON_IsBool(tie)) c->tie_word_embeddings = cJSON_IsTrue(tie) ? 1 : 0;
        if (!c->num_kv_heads) c->num_kv_heads = c->num_heads;
        if (!c->head_dim && c->num_heads) c->head_dim = c->hidden_size / c->num_heads;
        c->path = strdup(path);
        if (!c->path) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
        /* kept as text for the readers of quantized checkpoints (formats/bnb_read.c) */
        const cJSON *qc = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
        if (s == MQ_OK && qc && !cJSON_IsNull(qc)) {
            c->quantization_config = cJSON_PrintUnformatted(qc);
            if (!c->quantization_config) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
        }
        c->present = (s == MQ_OK);
    }
    cJSON_Delete(root);
    return s;
}
