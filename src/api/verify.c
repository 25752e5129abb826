/*
** verify.c - mq_verify(): recompute modelq's XXH3-64 checksums (what each covers: checksums.h).
**
** GGUF: the last keys say which kind of file this is (one flipped byte must not turn a new file
** into an "older" one, whose header is not covered):
**   ..., modelq.tensor_xxh3, modelq.header_xxh3 (UINT64)   current: header, padding, size, tensors
**   ..., modelq.tensor_xxh3                                older modelq: tensor data only
**   neither key                                            no checksums (not written by modelq)
**   anything else (one of them damaged, misplaced, mistyped) is an error.
** bitsandbytes folder: each shard's __metadata__ is classified the same way (all three modelq keys
** with the header checksum first / exactly {"format", "modelq.tensor_xxh3"} / no modelq key) and
** every shard must be of the same kind. Every stored entry must have exactly one checksum.
*/
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "checksums.h"
#include "fileio.h"
#include "modelq/convert.h"
#include "model_impl.h"
#include "model_build.h"
#include "nameset.h"

#define VERIFY_CHUNK (1u << 20)

typedef void (*on_item_fn)(void *, enum mq_verify_kind, const char *, uint64_t, uint64_t);

struct vctx {
    on_item_fn on_item;
    void *ctx;
    struct mq_verify_result *res;
    uint8_t *buf;            /* VERIFY_CHUNK bytes */
    XXH3_state_t *x;
    struct mq_error *err;
};

/*
** XXH3-64 of file bytes [off, off + len), with the bytes at [mask_at, mask_at + mask_len)
** (absolute offsets; mask_len 0 = none) read as `fill`.
*/
static enum mq_status hash_range(struct vctx *v, int fd, const char *path, uint64_t off, uint64_t len,
                                 uint64_t mask_at, uint64_t mask_len, uint8_t fill, uint64_t *out)
{
    XXH3_64bits_reset(v->x);
    for (uint64_t k = 0; k < len; k += VERIFY_CHUNK) {
        size_t n = len - k < VERIFY_CHUNK ? (size_t)(len - k) : VERIFY_CHUNK;
        uint64_t at = off + k;
        MQ_TRY(mq_pread_full(fd, path, v->buf, n, at, v->err));
        for (uint64_t m = mask_at; m < mask_at + mask_len; m++)
            if (m >= at && m < at + n) v->buf[m - at] = fill;
        XXH3_64bits_update(v->x, v->buf, n);
    }
    *out = XXH3_64bits_digest(v->x);
    return MQ_OK;
}

static void count(struct vctx *v, enum mq_verify_kind kind, const char *name, uint64_t stored, uint64_t actual)
{
    if (kind == MQ_VERIFY_TENSOR) {
        v->res->n_checked++;
        if (stored != actual) v->res->n_bad++;
    } else {
        v->res->n_parts++;
        if (stored != actual) v->res->n_parts_bad++;
    }
    if (v->on_item) v->on_item(v->ctx, kind, name, stored, actual);
}

/* ---- GGUF ---- */

static uint64_t pad_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* Which checksum keys the file has: -1 error, 0 none, 1 older (tensors only), 2 current. */
static int gguf_kind(const struct mq_model *m, struct vctx *v)
{
    const struct mq_meta *meta = &m->meta;
    const char *path = m->files[0].path;
    long kt = mq_meta_find(meta, MQ_CHECKSUM_TENSORS_KEY), kh = mq_meta_find(meta, MQ_CHECKSUM_HEADER_KEY);
    long last = (long)meta->n - 1;
    if (kt < 0 && kh < 0) return 0;
    if (kh < 0 && kt == last) return 1;
    if (kh == last && kt == last - 1 && meta->items[kh].v.type == MQ_META_U64 && m->files[0].gguf_header_sum_at) return 2;
    if (kh < 0)
        MQ_FAIL(v->err, MQ_E_CORRUPT, "checksum-keys",
                "%s: %s is missing but %s is not the last key (the header checksum key is damaged)", path,
                MQ_CHECKSUM_HEADER_KEY, MQ_CHECKSUM_TENSORS_KEY);
    else
        MQ_FAIL(v->err, MQ_E_CORRUPT, "checksum-keys",
                "%s: %s must be the last key, a UINT64, right after %s (the checksum keys are damaged, or a tool that rewrote the file copied them from its input)", path,
                MQ_CHECKSUM_HEADER_KEY, MQ_CHECKSUM_TENSORS_KEY);
    return -1;
}

/*
** The data section: tensors back to back from D, each followed by zeros up to the alignment,
** and nothing after the last one's padding. *d_out = D (the end of what the header checksum covers).
*/
static enum mq_status gguf_check_layout(const struct mq_model *m, struct vctx *v, uint64_t *d_out)
{
    const struct mq_file *f = &m->files[0];
    uint64_t align = f->gguf_alignment ? f->gguf_alignment : 32;
    uint64_t d = pad_up(f->data_start, align), end = d; /* the reader leaves data_start unpadded without tensors */
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct mq_tensor *t = &m->tensors[i];
        uint64_t from = t->offset + t->nbytes, to = t->offset + pad_up(t->nbytes, align);
        if (to > f->size)
            return MQ_FAIL(v->err, MQ_E_CORRUPT, "file-size",
                           "%s: file-size: %" PRIu64 " bytes, but tensor '%s' and its padding end at %" PRIu64, f->path,
                           f->size, t->name, to);
        uint8_t pad[256];
        if (to - from > sizeof pad) {
            /* alignments above 256: check in pieces */
            for (uint64_t o = from; o < to; o += sizeof pad) {
                size_t n = to - o < sizeof pad ? (size_t)(to - o) : sizeof pad;
                MQ_TRY(mq_pread_full(f->fd, f->path, pad, n, o, v->err));
                for (size_t k = 0; k < n; k++)
                    if (pad[k])
                        return MQ_FAIL(v->err, MQ_E_CORRUPT, "padding-zero",
                                       "%s: padding-zero: byte %" PRIu64 " (padding after tensor '%s') is 0x%02x, not 0",
                                       f->path, o + k, t->name, pad[k]);
            }
        } else if (to > from) {
            MQ_TRY(mq_pread_full(f->fd, f->path, pad, (size_t)(to - from), from, v->err));
            for (size_t k = 0; k < to - from; k++)
                if (pad[k])
                    return MQ_FAIL(v->err, MQ_E_CORRUPT, "padding-zero",
                                   "%s: padding-zero: byte %" PRIu64 " (padding after tensor '%s') is 0x%02x, not 0",
                                   f->path, from + k, t->name, pad[k]);
        }
        end = to;
    }
    if (f->size != end)
        return MQ_FAIL(v->err, MQ_E_CORRUPT, "file-size",
                       "%s: file-size: %" PRIu64 " bytes, but the data section ends at %" PRIu64 " (bytes %s)", f->path,
                       f->size, end, f->size > end ? "appended" : "cut");
    *d_out = d;
    return MQ_OK;
}

static enum mq_status verify_gguf(const struct mq_model *m, struct vctx *v)
{
    const struct mq_file *f = &m->files[0];
    int kind = gguf_kind(m, v);
    if (kind < 0) return v->err->code;
    if (kind == 0) return MQ_OK;
    const struct mq_meta_value *sums = mq_meta_get(&m->meta, MQ_CHECKSUM_TENSORS_KEY);
    if (sums->type != MQ_META_ARRAY || sums->elem_type != MQ_META_U64 || sums->count != m->n_tensors)
        return MQ_FAIL(v->err, MQ_E_CORRUPT, "checksum-keys",
                       "%s: %s must be a UINT64 array with one entry per tensor (%zu)", f->path, MQ_CHECKSUM_TENSORS_KEY,
                       m->n_tensors);
    v->res->has_checksums = true;
    v->res->header_covered = kind == 2;
    uint64_t d = 0;
    MQ_TRY(gguf_check_layout(m, v, &d));
    if (kind == 2) {
        uint64_t h, stored = mq_meta_get(&m->meta, MQ_CHECKSUM_HEADER_KEY)->num.u;
        MQ_TRY(hash_range(v, f->fd, f->path, 0, d, f->gguf_header_sum_at, 8, 0, &h));
        count(v, MQ_VERIFY_HEADER, f->path, stored, h);
    }
    const uint64_t *want = sums->arr;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct mq_tensor *t = &m->tensors[i];
        uint64_t h;
        MQ_TRY(hash_range(v, m->files[t->file].fd, m->files[t->file].path, t->offset, t->nbytes, 0, 0, 0, &h));
        count(v, MQ_VERIFY_TENSOR, t->name, want[i], h);
    }
    return MQ_OK;
}

/*
** A split GGUF (opened as a set, so its parts are known to belong together): each part is a GGUF
** of its own with its own checksum keys, verified as one file. Every part must be of the same kind.
*/
static enum mq_status verify_gguf_set(const struct mq_model *set, struct vctx *v)
{
    bool first_has = false;
    for (size_t k = 0; k < set->n_files; k++) {
        struct mq_model *part;
        MQ_TRY(mq_model_open_gguf_part(set->files[k].path, &part, v->err));
        bool had = v->res->has_checksums;
        v->res->has_checksums = false;
        enum mq_status s = verify_gguf(part, v);
        if (s == MQ_OK && k == 0) first_has = v->res->has_checksums;
        if (s == MQ_OK && k > 0 && v->res->has_checksums != first_has)
            s = MQ_FAIL(v->err, MQ_E_CORRUPT, "checksum-keys", "%s: %s modelq checksums, unlike %s", part->files[0].path,
                        first_has ? "has no" : "has", set->files[0].path);
        if (k > 0) v->res->has_checksums = v->res->has_checksums || had;
        mq_model_free(part);
        MQ_TRY(s);
    }
    return MQ_OK;
}

/* ---- safetensors shards (bitsandbytes folders) ---- */

enum st_kind { ST_NONE, ST_OLD, ST_NEW, ST_DAMAGED };
static const char *const st_kind_name[] = {"no modelq checksums", "tensor checksums only (an older modelq)",
                                           "header, tensor and file checksums", "damaged checksum keys"};

/* Exactly 16 lower-case hex digits (as written with PRIx64). */
static bool parse_hex16(const char *p, uint64_t *out)
{
    uint64_t h = 0;
    for (int k = 0; k < 16; k++) {
        char c = p[k];
        if (c >= '0' && c <= '9') h = h << 4 | (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f') h = h << 4 | (uint64_t)(c - 'a' + 10);
        else return false;
    }
    *out = h;
    return true;
}

/*
** Splits "<16 hex>:<name>,<16 hex>:<name>..." (names without ',', as modelq writes them) into
** parallel arrays of *n names (malloc'd, caller frees each and the arrays) and checksums.
*/
static enum mq_status parse_list(const char *path, const char *key, const char *p, char ***names, uint64_t **sums,
                                 size_t *n, struct mq_error *err)
{
    size_t cap = 1;
    for (const char *q = p; *q; q++) cap += *q == ',';
    *names = calloc(cap, sizeof **names);
    *sums = calloc(cap, sizeof **sums);
    *n = 0;
    if (!*names || !*sums) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    while (*p) {
        const char *name = p + 17, *comma = NULL;
        if (strnlen(p, 17) < 17 || !parse_hex16(p, &(*sums)[*n]) || p[16] != ':' || !*name || *name == ',')
            return MQ_FAIL(err, MQ_E_CORRUPT, "checksum-keys", "%s: malformed %s (entry %zu)", path, key, *n + 1);
        comma = strchr(name, ',');
        size_t nl = comma ? (size_t)(comma - name) : strlen(name);
        (*names)[*n] = strndup(name, nl);
        if (!(*names)[*n]) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
        (*n)++;
        if (!comma) break;
        p = comma + 1;
        if (!*p) return MQ_FAIL(err, MQ_E_CORRUPT, "checksum-keys", "%s: malformed %s (ends with ',')", path, key);
    }
    return MQ_OK;
}

static void free_list(char **names, uint64_t *sums, size_t n)
{
    for (size_t i = 0; names && i < n; i++) free(names[i]);
    free(names);
    free(sums);
}

static enum st_kind st_classify(const cJSON *meta)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(meta, MQ_CHECKSUM_TENSORS_KEY);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(meta, MQ_CHECKSUM_HEADER_KEY);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(meta, MQ_CHECKSUM_FILES_KEY);
    int n = 0, ours = 0;
    for (const cJSON *e = meta ? meta->child : NULL; e; e = e->next, n++)
        if (e->string && strncmp(e->string, "modelq.", 7) == 0) ours++;
    if (ours == 0) return ST_NONE;
    if (cJSON_IsString(t) && cJSON_IsString(h) && cJSON_IsString(f)) return ST_NEW;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(meta, "format");
    if (cJSON_IsString(t) && n == 2 && ours == 1 && fmt) return ST_OLD;
    return ST_DAMAGED;
}

/* The folder's other files, listed in modelq.files_xxh3 (names beside the shard, no paths). */
static enum mq_status verify_files(const char *shard_path, const char *list, struct vctx *v)
{
    char **names = NULL;
    uint64_t *sums = NULL;
    size_t n = 0;
    enum mq_status s = parse_list(shard_path, MQ_CHECKSUM_FILES_KEY, list, &names, &sums, &n, v->err);
    char *dup = strdup(shard_path);
    if (s == MQ_OK && !dup) s = MQ_FAIL(v->err, MQ_E_NOMEM, "alloc", "out of memory");
    const char *dir = dup ? dirname(dup) : ".";
    for (size_t i = 0; s == MQ_OK && i < n; i++) {
        if (strchr(names[i], '/') || !strcmp(names[i], ".") || !strcmp(names[i], "..")) {
            s = MQ_FAIL(v->err, MQ_E_CORRUPT, "checksum-keys", "%s: %s names '%s', not a file beside it", shard_path,
                        MQ_CHECKSUM_FILES_KEY, names[i]);
            break;
        }
        size_t pl = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(pl);
        if (!path) {
            s = MQ_FAIL(v->err, MQ_E_NOMEM, "alloc", "out of memory");
            break;
        }
        snprintf(path, pl, "%s/%s", dir, names[i]);
        int fd;
        uint64_t size, h;
        s = mq_open_regular(path, &fd, &size, v->err);
        if (s != MQ_OK) mq_error_prefix(v->err, "%s lists %s", shard_path, names[i]);
        if (s == MQ_OK) {
            s = hash_range(v, fd, path, 0, size, 0, 0, 0, &h);
            close(fd);
        }
        if (s == MQ_OK) count(v, MQ_VERIFY_FILE, path, sums[i], h);
        free(path);
    }
    free(dup);
    free_list(names, sums, n);
    return s;
}

/* One shard: its header checksum (ST_NEW), then one checksum per entry, every entry covered. */
static enum mq_status verify_shard(const struct mq_file *f, const cJSON *doc, uint64_t hl, const char *raw,
                                   enum st_kind kind, struct vctx *v)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "__metadata__");
    if (kind == ST_NEW) {
        const char *hv = cJSON_GetObjectItemCaseSensitive(meta, MQ_CHECKSUM_HEADER_KEY)->valuestring;
        size_t pl = sizeof MQ_ST_HEADER_SUM_PREFIX - 1;
        uint64_t stored, h;
        if (strlen(hv) != MQ_ST_HEADER_SUM_DIGITS || !parse_hex16(hv, &stored) || hl < pl + MQ_ST_HEADER_SUM_DIGITS ||
            memcmp(raw, MQ_ST_HEADER_SUM_PREFIX, pl) != 0 || memcmp(raw + pl, hv, MQ_ST_HEADER_SUM_DIGITS) != 0)
            return MQ_FAIL(v->err, MQ_E_CORRUPT, "checksum-keys",
                           "%s: %s must be 16 hex digits at the very start of the header (it is damaged)", f->path,
                           MQ_CHECKSUM_HEADER_KEY);
        MQ_TRY(hash_range(v, f->fd, f->path, 0, 8 + hl, MQ_ST_HEADER_SUM_AT, MQ_ST_HEADER_SUM_DIGITS, '0', &h));
        count(v, MQ_VERIFY_HEADER, f->path, stored, h);
    }
    const char *list = cJSON_GetObjectItemCaseSensitive(meta, MQ_CHECKSUM_TENSORS_KEY)->valuestring;
    char **names = NULL;
    uint64_t *sums = NULL;
    size_t n = 0;
    struct mq_nameset seen = {0};
    enum mq_status s = parse_list(f->path, MQ_CHECKSUM_TENSORS_KEY, list, &names, &sums, &n, v->err);
    for (size_t i = 0; s == MQ_OK && i < n; i++) {
        int dup = mq_nameset_add(&seen, names[i]);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, names[i]);
        const cJSON *off = e ? cJSON_GetObjectItemCaseSensitive(e, "data_offsets") : NULL;
        if (dup < 0) s = MQ_FAIL(v->err, MQ_E_NOMEM, "alloc", "out of memory");
        else if (dup)
            s = MQ_FAIL(v->err, MQ_E_CORRUPT, "checksum-keys", "%s: tensor '%s' has two checksums in %s", f->path,
                        names[i], MQ_CHECKSUM_TENSORS_KEY);
        else if (!strcmp(names[i], "__metadata__") || !cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
            s = MQ_FAIL(v->err, MQ_E_CORRUPT, "checksum-keys", "%s: %s has a checksum for unknown tensor '%s'", f->path,
                        MQ_CHECKSUM_TENSORS_KEY, names[i]);
        if (s != MQ_OK) break;
        /* offsets were validated when the model was opened (integers, inside the file) */
        uint64_t a = (uint64_t)cJSON_GetArrayItem(off, 0)->valuedouble;
        uint64_t b = (uint64_t)cJSON_GetArrayItem(off, 1)->valuedouble, h;
        s = hash_range(v, f->fd, f->path, 8 + hl + a, b - a, 0, 0, 0, &h);
        if (s == MQ_OK) count(v, MQ_VERIFY_TENSOR, names[i], sums[i], h);
    }
    /* every stored entry has its checksum */
    for (const cJSON *e = doc->child; s == MQ_OK && e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) continue;
        int r = mq_nameset_add(&seen, e->string);
        if (r < 0) s = MQ_FAIL(v->err, MQ_E_NOMEM, "alloc", "out of memory");
        else if (r == 0)
            s = MQ_FAIL(v->err, MQ_E_CORRUPT, "checksum-coverage", "%s: tensor '%s' has no checksum in %s", f->path,
                        e->string, MQ_CHECKSUM_TENSORS_KEY);
    }
    mq_nameset_free(&seen);
    free_list(names, sums, n);
    return s;
}

static enum mq_status read_header(const struct mq_file *f, char **raw, uint64_t *hl, cJSON **doc, struct mq_error *err)
{
    uint8_t lenb[8];
    MQ_TRY(mq_pread_full(f->fd, f->path, lenb, 8, 0, err));
    *hl = 0;
    for (int k = 0; k < 8; k++) *hl |= (uint64_t)lenb[k] << (8 * k);
    if (*hl > f->size - 8) return MQ_FAIL(err, MQ_E_CORRUPT, "header-within-file", "%s: header past the end", f->path);
    *raw = malloc((size_t)*hl + 1);
    if (!*raw) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    MQ_TRY(mq_pread_full(f->fd, f->path, *raw, (size_t)*hl, 8, err));
    (*raw)[*hl] = '\0';
    *doc = cJSON_ParseWithLength(*raw, (size_t)*hl);
    if (!*doc) return MQ_FAIL(err, MQ_E_CORRUPT, "header-json", "%s: header is not JSON", f->path);
    return MQ_OK;
}

static enum mq_status verify_safetensors(const struct mq_model *m, struct vctx *v)
{
    enum st_kind first = ST_NONE;
    char *files_list = NULL; /* the first shard's modelq.files_xxh3 */
    enum mq_status s = MQ_OK;
    for (size_t fi = 0; s == MQ_OK && fi < m->n_files; fi++) {
        const struct mq_file *f = &m->files[fi];
        char *raw = NULL;
        uint64_t hl = 0;
        cJSON *doc = NULL;
        s = read_header(f, &raw, &hl, &doc, v->err);
        const cJSON *meta = doc ? cJSON_GetObjectItemCaseSensitive(doc, "__metadata__") : NULL;
        enum st_kind kind = s == MQ_OK ? st_classify(meta) : ST_DAMAGED;
        if (s == MQ_OK && kind == ST_DAMAGED)
            s = MQ_FAIL(v->err, MQ_E_CORRUPT, "checksum-keys",
                        "%s: damaged checksum record: __metadata__ needs %s, %s and %s (or, from an older modelq, "
                        "exactly \"format\" and %s)", f->path, MQ_CHECKSUM_HEADER_KEY, MQ_CHECKSUM_TENSORS_KEY,
                        MQ_CHECKSUM_FILES_KEY, MQ_CHECKSUM_TENSORS_KEY);
        if (s == MQ_OK && fi == 0) first = kind;
        if (s == MQ_OK && kind != first)
            s = MQ_FAIL(v->err, MQ_E_CORRUPT, "checksum-keys", "%s: this shard has %s, but %s has %s", f->path,
                        st_kind_name[kind], m->files[0].path, st_kind_name[first]);
        if (s == MQ_OK && kind == ST_NEW) {
            const char *fl = cJSON_GetObjectItemCaseSensitive(meta, MQ_CHECKSUM_FILES_KEY)->valuestring;
            if (!files_list) {
                files_list = strdup(fl);
                if (!files_list) s = MQ_FAIL(v->err, MQ_E_NOMEM, "alloc", "out of memory");
            } else if (strcmp(files_list, fl) != 0) {
                s = MQ_FAIL(v->err, MQ_E_CORRUPT, "checksum-keys", "%s: %s differs from the one in %s", f->path,
                            MQ_CHECKSUM_FILES_KEY, m->files[0].path);
            }
        }
        if (s == MQ_OK && kind != ST_NONE) s = verify_shard(f, doc, hl, raw, kind, v);
        cJSON_Delete(doc);
        free(raw);
    }
    if (s == MQ_OK && first != ST_NONE) {
        v->res->has_checksums = true;
        v->res->header_covered = first == ST_NEW;
    }
    if (s == MQ_OK && files_list) s = verify_files(m->files[0].path, files_list, v);
    free(files_list);
    return s;
}

enum mq_status mq_verify(const char *path, on_item_fn on_item, void *ctx, struct mq_verify_result *res,
                         struct mq_error *err)
{
    memset(res, 0, sizeof *res);
    struct mq_model *m;
    MQ_TRY(mq_model_open(path, &m, err));
    struct vctx v = {.on_item = on_item, .ctx = ctx, .res = res, .err = err};
    v.buf = malloc(VERIFY_CHUNK);
    v.x = XXH3_createState();
    enum mq_status s = MQ_OK;
    if (!v.buf || !v.x) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    else if (m->format && strcmp(m->format, "safetensors") == 0) s = verify_safetensors(m, &v);
    else if (m->split_parts) s = verify_gguf_set(m, &v);
    else if (m->n_files == 1) s = verify_gguf(m, &v);
    else s = MQ_FAIL(err, MQ_E_UNSUPPORTED, "verify-format", "%s: verify reads one GGUF file or a safetensors model", path);
    free(v.buf);
    XXH3_freeState(v.x);
    mq_model_free(m);
    return s;
}
