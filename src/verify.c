/* verify.c - mq_verify(): recompute per-tensor XXH3-64 checksums (see modelq/convert.h). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "modelq/convert.h"
#include "fileio.h"
#include "modelq/model.h"

#define CHECKSUM_KEY "modelq.tensor_xxh3"
#define VERIFY_CHUNK (1u << 20)

/*
** safetensors files modelq wrote: __metadata__["modelq.tensor_xxh3"] = "<hex>:<name>,..." over
** the tensors as stored (a bitsandbytes weight is several entries). The header was validated
** when the model was opened; it is re-read here because the model view folds bnb entries.
*/
static enum mq_status verify_safetensors(const struct mq_model *m, size_t fi,
                                         void (*on_tensor)(void *, const char *, uint64_t, uint64_t), void *ctx,
                                         struct mq_verify_result *res, uint8_t *buf, XXH3_state_t *st,
                                         struct mq_error *err)
{
    const struct mq_file *f = &m->files[fi];
    uint8_t lenb[8];
    MQ_TRY(mq_pread_full(f->fd, f->path, lenb, 8, 0, err));
    uint64_t hl = 0;
    for (int k = 0; k < 8; k++) hl |= (uint64_t)lenb[k] << (8 * k);
    if (hl > f->size - 8) return MQ_FAIL(err, MQ_E_CORRUPT, "header-within-file", "%s: header past the end", f->path);
    char *hdr = malloc((size_t)hl + 1);
    if (!hdr) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    enum mq_status s = mq_pread_full(f->fd, f->path, hdr, (size_t)hl, 8, err);
    cJSON *doc = s == MQ_OK ? cJSON_ParseWithLength(hdr, (size_t)hl) : NULL;
    free(hdr);
    if (s != MQ_OK) return s;
    if (!doc) return MQ_FAIL(err, MQ_E_CORRUPT, "header-json", "%s: header is not JSON", f->path);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "__metadata__");
    const cJSON *sums = meta ? cJSON_GetObjectItemCaseSensitive(meta, CHECKSUM_KEY) : NULL;
    const char *p = cJSON_IsString(sums) ? sums->valuestring : NULL;
    if (p) res->has_checksums = true;
    while (s == MQ_OK && p && *p) {
        /* "<16 hex>:<name>" up to ',' */
        char *end;
        uint64_t want = strtoull(p, &end, 16);
        if (end != p + 16 || *end != ':') {
            s = MQ_FAIL(err, MQ_E_CORRUPT, "checksum-key", "%s: malformed %s", f->path, CHECKSUM_KEY);
            break;
        }
        const char *name = end + 1, *comma = strchr(name, ',');
        size_t nl = comma ? (size_t)(comma - name) : strlen(name);
        char *nm = strndup(name, nl);
        const cJSON *e = nm ? cJSON_GetObjectItemCaseSensitive(doc, nm) : NULL;
        const cJSON *off = e ? cJSON_GetObjectItemCaseSensitive(e, "data_offsets") : NULL;
        if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2) {
            s = MQ_FAIL(err, MQ_E_CORRUPT, "checksum-key", "%s: checksum for unknown tensor %s", f->path,
                        nm ? nm : "?");
            free(nm);
            break;
        }
        uint64_t a = (uint64_t)cJSON_GetArrayItem(off, 0)->valuedouble;
        uint64_t b = (uint64_t)cJSON_GetArrayItem(off, 1)->valuedouble;
        XXH3_64bits_reset(st);
        for (uint64_t o = a; s == MQ_OK && o < b; o += VERIFY_CHUNK) {
            size_t len = b - o < VERIFY_CHUNK ? (size_t)(b - o) : VERIFY_CHUNK;
            s = mq_pread_full(f->fd, f->path, buf, len, 8 + hl + o, err);
            if (s == MQ_OK) XXH3_64bits_update(st, buf, len);
        }
        if (s == MQ_OK) {
            uint64_t h = XXH3_64bits_digest(st);
            res->n_checked++;
            if (h != want) res->n_bad++;
            if (on_tensor) on_tensor(ctx, nm, want, h);
        }
        free(nm);
        p = comma ? comma + 1 : NULL;
    }
    cJSON_Delete(doc);
    return s;
}

enum mq_status mq_verify(const char *path,
                         void (*on_tensor)(void *ctx, const char *name, uint64_t stored, uint64_t actual),
                         void *ctx, struct mq_verify_result *res, struct mq_error *err)
{
    memset(res, 0, sizeof *res);
    struct mq_model *m;
    MQ_TRY(mq_model_open(path, &m, err));
    const struct mq_meta_value *v = mq_meta_get(&m->meta, CHECKSUM_KEY);
    enum mq_status s = MQ_OK;
    if (m->format && strcmp(m->format, "safetensors") == 0) {
        uint8_t *b = malloc(VERIFY_CHUNK);
        XXH3_state_t *x = XXH3_createState();
        if (!b || !x) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
        for (size_t fi = 0; s == MQ_OK && fi < m->n_files; fi++)
            s = verify_safetensors(m, fi, on_tensor, ctx, res, b, x, err);
        free(b);
        XXH3_freeState(x);
        goto done;
    }
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
