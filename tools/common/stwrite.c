/* stwrite.c - development-only safetensors writers (see stwrite.h). */
#include "stwrite.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w <= 0) return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int stw_write_raw(const char *path, uint64_t header_len_field, const void *header, size_t header_len,
                  const void *data, size_t data_len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    uint8_t n[8];
    for (int i = 0; i < 8; i++) n[i] = (uint8_t)(header_len_field >> (8 * i));
    int rc = write_all(fd, n, 8);
    if (!rc && header_len) rc = write_all(fd, header, header_len);
    if (!rc && data_len) rc = write_all(fd, data, data_len);
    if (close(fd) != 0) rc = -1;
    return rc;
}

int stw_write_sparse(const char *path, const char *header, uint64_t data_len)
{
    size_t hl = strlen(header);
    if (stw_write_raw(path, hl, header, hl, NULL, 0) != 0) return -1;
    return truncate(path, (off_t)(8 + hl + data_len));
}

struct tensor_spec {
    char name[96];
    uint64_t shape[2];
    int ndim;
};

/* The tensors of a Llama checkpoint in Hugging Face names, in name order per layer. */
static size_t llama_tensors(const struct stw_llama *s, struct tensor_spec **out)
{
    size_t cap = 16 + (size_t)s->layers * 9, n = 0;
    struct tensor_spec *t = calloc(cap, sizeof *t);
    if (!t) return 0;
    uint64_t hd = s->hidden / s->heads, kv = (uint64_t)s->kv_heads * hd;
#define ADD2(nm, a, b) (snprintf(t[n].name, sizeof t[n].name, "%s", nm), t[n].shape[0] = (a), t[n].shape[1] = (b), t[n].ndim = 2, n++)
#define ADD1(nm, a) (snprintf(t[n].name, sizeof t[n].name, "%s", nm), t[n].shape[0] = (a), t[n].ndim = 1, n++)
    ADD2("model.embed_tokens.weight", s->vocab, s->hidden);
    for (unsigned l = 0; l < s->layers; l++) {
        char nm[96];
#define L(suffix) (snprintf(nm, sizeof nm, "model.layers.%u.%s", l, suffix), nm)
        ADD1(L("input_layernorm.weight"), s->hidden);
        ADD2(L("mlp.down_proj.weight"), s->hidden, s->ffn);
        ADD2(L("mlp.gate_proj.weight"), s->ffn, s->hidden);
        ADD2(L("mlp.up_proj.weight"), s->ffn, s->hidden);
        ADD1(L("post_attention_layernorm.weight"), s->hidden);
        ADD2(L("self_attn.k_proj.weight"), kv, s->hidden);
        ADD2(L("self_attn.o_proj.weight"), s->hidden, s->hidden);
        ADD2(L("self_attn.q_proj.weight"), s->hidden, s->hidden);
        ADD2(L("self_attn.v_proj.weight"), kv, s->hidden);
#undef L
    }
    ADD1("model.norm.weight", s->hidden);
    if (!s->tied) ADD2("lm_head.weight", s->vocab, s->hidden);
#undef ADD1
#undef ADD2
    *out = t;
    return n;
}

uint64_t stw_llama_params(const struct stw_llama *spec)
{
    struct tensor_spec *t;
    size_t n = llama_tensors(spec, &t);
    uint64_t p = 0;
    for (size_t i = 0; i < n; i++) p += t[i].shape[0] * (t[i].ndim == 2 ? t[i].shape[1] : 1);
    free(t);
    return p;
}

/* Appends to a growing string. */
struct sbuf {
    char *p;
    size_t len, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->cap - b->len, fmt, ap); /* NULL + 0 is UB */
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
}

static uint64_t tensor_elems(const struct tensor_spec *t) { return t->shape[0] * (t->ndim == 2 ? t->shape[1] : 1); }

static int write_config(const char *dir, const struct stw_llama *s)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f,
            "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": %u, "
            "\"intermediate_size\": %u, \"num_hidden_layers\": %u, \"num_attention_heads\": %u, "
            "\"num_key_value_heads\": %u, \"vocab_size\": %u, \"max_position_embeddings\": 4096, "
            "\"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"tie_word_embeddings\": %s, \"torch_dtype\": \"%s\"}\n",
            s->hidden, s->ffn, s->layers, s->heads, s->kv_heads, s->vocab, s->tied ? "true" : "false",
            strcmp(s->dtype, "BF16") == 0 ? "bfloat16" : "float16");
    return fclose(f) == 0 ? 0 : -1;
}

/* Streams the data of tensors [first, end) through `fill` into fd, in chunks of a fixed buffer. */
static int write_dense_data(int fd, const struct tensor_spec *t, size_t first, size_t end, unsigned esize,
                            stw_fill_fn fill, void *user)
{
    enum { CHUNK_BYTES = 4u << 20 };
    uint8_t *buf = malloc(CHUNK_BYTES);
    if (!buf) return -1;
    int rc = 0;
    for (size_t i = first; i < end && !rc; i++) {
        uint64_t n = tensor_elems(&t[i]), per = CHUNK_BYTES / esize;
        for (uint64_t at = 0; at < n && !rc; at += per) {
            uint64_t k = n - at < per ? n - at : per;
            fill(user, t[i].name, n, at, k, buf);
            rc = write_all(fd, buf, (size_t)(k * esize));
        }
    }
    free(buf);
    return rc;
}

/* Writes config.json and the shards; data is a hole (fill == NULL) or streamed from fill. */
static int write_llama(const char *dir, const struct stw_llama *s, stw_fill_fn fill, void *user)
{
    struct tensor_spec *t;
    size_t n = llama_tensors(s, &t);
    if (!n) return -1;
    unsigned esize = 2;
    char path[4096];
    if (write_config(dir, s) != 0) {
        free(t);
        return -1;
    }
    unsigned shards = s->shards ? s->shards : 1;
    struct sbuf index = {0};
    sb_printf(&index, "{\"metadata\": {\"total_size\": ");
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) total += tensor_elems(&t[i]) * esize;
    sb_printf(&index, "%" PRIu64 "}, \"weight_map\": {", total);
    size_t per = (n + shards - 1) / shards, first = 0;
    int rc = 0;
    for (unsigned k = 0; k < shards && !rc; k++) {
        size_t end = first + per < n ? first + per : n;
        char shard[64];
        if (shards == 1) snprintf(shard, sizeof shard, "model.safetensors");
        else snprintf(shard, sizeof shard, "model-%05u-of-%05u.safetensors", k + 1, shards);
        struct sbuf h = {0};
        sb_printf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
        uint64_t off = 0;
        for (size_t i = first; i < end; i++) {
            uint64_t bytes = tensor_elems(&t[i]) * esize;
            if (t[i].ndim == 2)
                sb_printf(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%" PRIu64 ",%" PRIu64 "],\"data_offsets\":[%" PRIu64
                              ",%" PRIu64 "]}",
                          t[i].name, s->dtype, t[i].shape[0], t[i].shape[1], off, off + bytes);
            else
                sb_printf(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%" PRIu64 "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}",
                          t[i].name, s->dtype, t[i].shape[0], off, off + bytes);
            sb_printf(&index, "%s\"%s\": \"%s\"", (i == 0) ? "" : ", ", t[i].name, shard);
            off += bytes;
        }
        sb_printf(&h, "}");
        while (h.len % 8) sb_printf(&h, " ");
        snprintf(path, sizeof path, "%s/%s", dir, shard);
        if (!fill) {
            rc = stw_write_sparse(path, h.p, off);
        } else {
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0) rc = -1;
            else {
                uint8_t nb[8];
                for (int b = 0; b < 8; b++) nb[b] = (uint8_t)((uint64_t)h.len >> (8 * b));
                rc = write_all(fd, nb, 8);
                if (!rc) rc = write_all(fd, h.p, h.len);
                if (!rc) rc = write_dense_data(fd, t, first, end, esize, fill, user);
                if (close(fd) != 0) rc = -1;
            }
        }
        free(h.p);
        first = end;
    }
    sb_printf(&index, "}}\n");
    if (!rc && shards > 1) {
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        FILE *f = fopen(path, "w");
        if (!f) rc = -1;
        else {
            fputs(index.p, f);
            if (fclose(f) != 0) rc = -1;
        }
    }
    free(index.p);
    free(t);
    return rc;
}

int stw_write_llama_sparse(const char *dir, const struct stw_llama *spec) { return write_llama(dir, spec, NULL, NULL); }

int stw_write_llama_dense(const char *dir, const struct stw_llama *spec, stw_fill_fn fill, void *user)
{
    if (!fill) return -1;
    return write_llama(dir, spec, fill, user);
}
