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
**
** A.attention.value_length is the V head size (head_dim_v; default head_dim). Sliding-window
** layers (src/model/swa.h) only for the families llama.cpp runs with them: the window from
** A.attention.sliding_window (else the family's default), the layers from
** A.attention.sliding_window_pattern (an array: per layer, non-zero = sliding; a scalar: the
** period) or the family's period.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "gguf.h"
#include "swa.h"

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

/* Sliding-window layers as llama.cpp's loader of `arch` reads them (swa.h). */
static enum mq_status gguf_swa(struct mq_model *m, const char *arch, struct mq_error *err)
{
    struct mq_config *c = &m->config;
    const struct mq_swa_family *f = mq_swa_family_of_gguf(arch);
    if (!f || !c->num_layers) return MQ_OK;
    char key[ARCH_MAX + 64];
    uint64_t window = f->gguf_window, period = f->period, layers;
    enum mq_status s = MQ_OK;
    snprintf(key, sizeof key, "%s.attention.sliding_window", arch);
    meta_count(m, key, &window, err, &s);
    MQ_TRY(s);
    snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", arch);
    const struct mq_meta_value *p = mq_meta_get(&m->meta, key);
    size_t esz = p && p->type == MQ_META_ARRAY ? mq_meta_type_size(p->elem_type) : 0;
    if (esz && p->elem_type != MQ_META_F32 && p->elem_type != MQ_META_F64) {
        /* one flag per layer (BOOL or an integer type): any non-zero byte is a sliding layer */
        layers = 0;
        for (uint64_t i = 0; i < p->count && i < c->num_layers; i++) {
            const unsigned char *e = (const unsigned char *)p->arr + i * esz;
            bool on = false;
            for (size_t b = 0; b < esz; b++) on = on || e[b];
            layers += on;
        }
        period = 0;
    } else {
        if (p && !mq_meta_get_uint(&m->meta, key, &period))
            MQ_TRY(mq_model_warn(m, err, "%s: %s is %s, not an integer or a list of per-layer flags: not used",
                                 m->input_path, key, mq_meta_type_name(p->type)));
        layers = mq_swa_layers_by_period(c->num_layers, period);
    }
    if (window && layers) {
        c->sliding_window = window;
        c->swa_layers = layers;
        c->swa_period = (uint32_t)(period > UINT32_MAX ? UINT32_MAX : period);
    }
    return MQ_OK;
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
        {"attention.value_length", &c->head_dim_v},
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
    if (!c->head_dim_v) c->head_dim_v = c->head_dim;
    MQ_TRY(gguf_swa(m, arch, err));
    snprintf(c->model_type, sizeof c->model_type, "%s", arch);
    c->path = strdup(path);
    if (!c->path) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
    c->present = true;
    return MQ_OK;
}
