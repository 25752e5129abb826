/*
** gguf_config.c - the mq_config fields modelq uses, from a GGUF's own metadata.
**
** A GGUF carries its hyperparameters under the architecture's name (gguf-and-ggml.md 1.10):
** general.architecture = A, then A.block_count, A.embedding_length, A.feed_forward_length,
** A.attention.head_count, A.attention.head_count_kv, A.attention.key_length, A.context_length,
** A.vocab_size (else the length of tokenizer.ggml.tokens). llama.cpp writes them as UINT32; any
** integer type is taken here, and a per-layer integer array (OpenELM, Gemma 3n) counts as its
** largest element, the conservative choice for memory estimates. A key of another type is
** skipped with a warning. config.json beside a .gguf is never read (input.c).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "gguf.h"

#define ARCH_MAX 63 /* mq_config.model_type holds the architecture name */

/* An integer scalar, or the largest element of an integer array; false when absent or another type. */
static bool meta_count(struct mq_model *m, const char *key, uint64_t *out, struct mq_error *err, enum mq_status *s)
{
    const struct mq_meta_value *v = mq_meta_get(&m->meta, key);
    if (!v) return false;
    if (mq_meta_get_uint(&m->meta, key, out)) return true;
    if (v->type == MQ_META_ARRAY && v->elem_type != MQ_META_STRING && v->elem_type != MQ_META_F32 &&
        v->elem_type != MQ_META_F64 && v->elem_type != MQ_META_BOOL && v->count > 0) {
        uint64_t best = 0;
        size_t esz = mq_meta_type_size(v->elem_type);
        for (uint64_t i = 0; i < v->count; i++) {
            const unsigned char *p = (const unsigned char *)v->arr + i * esz;
            uint64_t u = 0;
            int64_t x = 0;
            switch (v->elem_type) {
            case MQ_META_U8: u = *p; break;
            case MQ_META_U16: { uint16_t t; memcpy(&t, p, 2); u = t; break; }
            case MQ_META_U32: { uint32_t t; memcpy(&t, p, 4); u = t; break; }
            case MQ_META_U64: memcpy(&u, p, 8); break;
            case MQ_META_I8: x = (int8_t)*p; break;
            case MQ_META_I16: { int16_t t; memcpy(&t, p, 2); x = t; break; }
            case MQ_META_I32: { int32_t t; memcpy(&t, p, 4); x = t; break; }
            default: memcpy(&x, p, 8); break; /* I64 */
            }
            if (x > 0) u = (uint64_t)x;
            if (u > best) best = u;
        }
        *out = best;
        return true;
    }
    *s = mq_model_warn(m, err, "%s: %s is %s%s%s, not an integer: not used for the model's configuration",
                       m->input_path, key, mq_meta_type_name(v->type), v->type == MQ_META_ARRAY ? " of " : "",
                       v->type == MQ_META_ARRAY ? mq_meta_type_name(v->elem_type) : "");
    return false;
}

enum mq_status mq_gguf_fill_config(struct mq_model *m, const char *path, struct mq_error *err)
{
    const char *arch = mq_meta_get_str(&m->meta, "general.architecture");
    if (!arch || !arch[0] || strlen(arch) > ARCH_MAX) return MQ_OK;
    struct mq_config *c = &m->config;
    const struct {
        const char *suffix;
        uint64_t *field;
    } keys[] = {
        {"block_count", &c->num_layers},
        {"embedding_length", &c->hidden_size},
        {"feed_forward_length", &c->intermediate_size},
        {"attention.head_count", &c->num_heads},
        {"attention.head_count_kv", &c->num_kv_heads},
        {"attention.key_length", &c->head_dim},
        {"context_length", &c->max_position},
        {"vocab_size", &c->vocab_size},
        {"expert_count", &c->num_experts},
        {"expert_used_count", &c->experts_used},
    };
    enum mq_status s = MQ_OK;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0] && s == MQ_OK; i++) {
        char key[ARCH_MAX + 64];
        snprintf(key, sizeof key, "%s.%s", arch, keys[i].suffix);
        uint64_t v;
        if (meta_count(m, key, &v, err, &s)) *keys[i].field = v;
    }
    MQ_TRY(s);
    const struct mq_meta_value *tokens = mq_meta_get(&m->meta, "tokenizer.ggml.tokens");
    if (!c->vocab_size && tokens && tokens->type == MQ_META_ARRAY) c->vocab_size = tokens->count;
    if (!c->num_kv_heads) c->num_kv_heads = c->num_heads;
    if (!c->head_dim && c->num_heads) c->head_dim = c->hidden_size / c->num_heads;
    snprintf(c->model_type, sizeof c->model_type, "%s", arch);
    c->path = strdup(path);
    if (!c->path) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
    c->present = true;
    return MQ_OK;
}
