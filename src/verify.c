/* verify.c - mq_verify(): recompute per-tensor XXH3-64 checksums (see modelq/convert.h). */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "modelq/convert.h"
#include "modelq/model.h"

#define CHECKSUM_KEY "modelq.tensor_xxh3"
#define VERIFY_CHUNK (1u << 20)

enum mq_status mq_verify(const char *path,
                         void (*on_tensor)(void *ctx, const char *name, uint64_t stored, uint64_t actual),
                         void *ctx, struct mq_verify_result *res, struct mq_error *err)
{
    memset(res, 0, sizeof *res);
    struct mq_model *m;
    MQ_TRY(mq_model_open(path, &m, err));
    const struct mq_meta_value *v = mq_meta_get(&m->meta, CHECKSUM_KEY);
    enum mq_status s = MQ_OK;
    if (!v) goto done;
    if (v->type != MQ_META_ARRAY || v->elem_type != MQ_META_U64 || v->count != m->n_tensors) {
        s = MQ_FAIL(err, MQ_E_CORRUPT, "checksum-key", "%s: %s must be a UINT64 array with one entry per tensor (%zu)",
                    path, CHECKSUM_KEY, m->n_tensors);
        goto done;
    }
    res->has_checksums = true;
    uint8_t *buf = malloc(VERIFY_CHUNK);
    XXH3_state_t *st = XXH3_createState();
    if (!buf || !st) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    const uint64_t *stored = v->arr;
    for (size_t i = 0; s == MQ_OK && i < m->n_tensors; i++) {
        const struct mq_tensor *t = &m->tensors[i];
        XXH3_64bits_reset(st);
        for (uint64_t off = 0; s == MQ_OK && off < t->nbytes; off += VERIFY_CHUNK) {
            size_t len = t->nbytes - off < VERIFY_CHUNK ? (size_t)(t->nbytes - off) : VERIFY_CHUNK;
            s = mq_model_read(m, i, off, buf, len, err);
            if (s == MQ_OK) XXH3_64bits_update(st, buf, len);
        }
        if (s != MQ_OK) break;
        uint64_t h = XXH3_64bits_digest(st);
        res->n_checked++;
        if (h != stored[i]) res->n_bad++;
        if (on_tensor) on_tensor(ctx, t->name, stored[i], h);
    }
    free(buf);
    XXH3_freeState(st);
done:
    mq_model_free(m);
    return s;
}
