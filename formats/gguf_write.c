/*
** gguf_write.c - GGUF v3 header serialization (layout in gguf.h, API in gguf_write.h).
**
** The writer applies the reader's caps (gguf.h, one definition each) before anything is written,
** so modelq never writes a GGUF its own reader refuses: key/value count, tensor count, header
** bytes (magic .. end of the tensor infos), string bytes (keys, values, names), array elements,
** and the element count of a tensor (int64, gguf.cpp's test). Duplicate keys and tensor names
** are found with a hashed set (linear time).
*/
#include "gguf_write.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "ckd.h"
#include "gguf.h"
#include "modelq/plugin.h" /* the output file and the checksum records */
#include "nameset.h"
#include "span.h"

/*
** A write cursor that only counts when buf is NULL (the sizing pass uses the same code). It also
** notes where the value of `mark_key` starts (mark_at, 0 = not written) and the first key or
** tensor whose end passes MQ_GGUF_MAX_HEADER_BYTES (over_kind/over_name).
*/
struct wcur {
    uint8_t *buf;
    uint64_t cap;
    uint64_t off;
    int ovf;
    const char *mark_key;
    uint64_t mark_at;
    const char *over_kind;
    const char *over_name;
};

static void w_note_limit(struct wcur *w, const char *kind, const char *name)
{
    if (!w->over_kind && (w->ovf || w->off > MQ_GGUF_MAX_HEADER_BYTES)) {
        w->over_kind = kind;
        w->over_name = name;
    }
}

static void w_bytes(struct wcur *w, const void *p, uint64_t n)
{
    if (w->buf && !w->ovf) {
        if (n > w->cap - w->off) {
            w->ovf = 1;
            return;
        }
        if (n) memcpy(w->buf + w->off, p, (size_t)n);
    }
    if (mq_ckd_add_u64(&w->off, w->off, n)) w->ovf = 1;
}
static void w_u32(struct wcur *w, uint32_t v)
{
    uint8_t b[4];
    mq_store_u32le(b, v);
    w_bytes(w, b, 4);
}
static void w_u64(struct wcur *w, uint64_t v)
{
    uint8_t b[8];
    mq_store_u64le(b, v);
    w_bytes(w, b, 8);
}
static void w_str(struct wcur *w, const char *s, uint64_t len)
{
    w_u64(w, len);
    w_bytes(w, s, len);
}

/* One scalar element, little-endian, from its packed host-order array slot. */
static void w_elem(struct wcur *w, enum mq_meta_type t, const uint8_t *p)
{
    size_t n = mq_meta_type_size(t);
    uint8_t b[8];
    if (n == 1) b[0] = (uint8_t)p[0];
    else if (n == 2) { uint16_t v; memcpy(&v, p, 2); mq_store_u16le(b, v); }
    else if (n == 4) { uint32_t v; memcpy(&v, p, 4); mq_store_u32le(b, v); }
    else { uint64_t v; memcpy(&v, p, 8); mq_store_u64le(b, v); }
    w_bytes(w, b, n);
}

/* A scalar value from struct mq_meta_value's num union. */
static void w_scalar(struct wcur *w, const struct mq_meta_value *v)
{
    uint8_t slot[8];
    switch (v->type) {
    case MQ_META_U8: case MQ_META_BOOL: { uint8_t x = (uint8_t)v->num.u; memcpy(slot, &x, 1); break; }
    case MQ_META_I8: { int8_t x = (int8_t)v->num.i; memcpy(slot, &x, 1); break; }
    case MQ_META_U16: { uint16_t x = (uint16_t)v->num.u; memcpy(slot, &x, 2); break; }
    case MQ_META_I16: { int16_t x = (int16_t)v->num.i; memcpy(slot, &x, 2); break; }
    case MQ_META_U32: { uint32_t x = (uint32_t)v->num.u; memcpy(slot, &x, 4); break; }
    case MQ_META_I32: { int32_t x = (int32_t)v->num.i; memcpy(slot, &x, 4); break; }
    case MQ_META_F32: { float x = (float)v->num.f; memcpy(slot, &x, 4); break; }
    case MQ_META_U64: memcpy(slot, &v->num.u, 8); break;
    case MQ_META_I64: memcpy(slot, &v->num.i, 8); break;
    case MQ_META_F64: memcpy(slot, &v->num.f, 8); break;
    default: return;
    }
    w_elem(w, v->type, slot);
}

static enum mq_status w_kv(struct wcur *w, const struct mq_meta_entry *e, struct mq_error *err)
{
    const struct mq_meta_value *v = &e->v;
    size_t klen = strlen(e->key);
    if (klen == 0) return MQ_FAIL(err, MQ_E_USAGE, "gguf-key", "GGUF metadata keys must not be empty");
    w_str(w, e->key, klen);
    w_u32(w, (uint32_t)v->type);
    if (w->mark_key && strcmp(e->key, w->mark_key) == 0) w->mark_at = w->off;
    if (v->type == MQ_META_STRING) {
        w_str(w, v->str.p, v->str.len);
    } else if (v->type == MQ_META_ARRAY) {
        if (v->elem_type == MQ_META_ARRAY || (unsigned)v->elem_type >= MQ_META_TYPE_COUNT)
            return MQ_FAIL(err, MQ_E_USAGE, "gguf-nested-array", "metadata %s: GGUF arrays cannot nest", e->key);
        w_u32(w, (uint32_t)v->elem_type);
        w_u64(w, v->count);
        if (v->elem_type == MQ_META_STRING) {
            for (uint64_t i = 0; i < v->count; i++) w_str(w, v->strs[i].p, v->strs[i].len);
        } else {
            size_t es = mq_meta_type_size(v->elem_type);
            for (uint64_t i = 0; i < v->count; i++) w_elem(w, v->elem_type, (const uint8_t *)v->arr + i * es);
        }
    } else if ((unsigned)v->type < MQ_META_TYPE_COUNT) {
        w_scalar(w, v);
    } else {
        return MQ_FAIL(err, MQ_E_INTERNAL, "gguf-type", "metadata %s: unknown value type %d", e->key, (int)v->type);
    }
    return MQ_OK;
}

static enum mq_status alignment_of(const struct mq_meta *meta, uint64_t *align, struct mq_error *err)
{
    *align = MQ_GGUF_DEFAULT_ALIGNMENT;
    const struct mq_meta_value *v = mq_meta_get(meta, "general.alignment");
    if (!v) return MQ_OK;
    if (v->type != MQ_META_U32 || v->num.u == 0 || (v->num.u & (v->num.u - 1)) != 0)
        return MQ_FAIL(err, MQ_E_USAGE, "gguf-alignment", "general.alignment must be a UINT32 power of two");
    *align = v->num.u;
    return MQ_OK;
}

static uint64_t pad_to(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* Serializes everything before the padding; buf NULL = count only. */
static enum mq_status serialize(const struct mq_meta *meta, const struct mq_gguf_tensor_info *t, size_t n,
                                struct wcur *w, struct mq_error *err)
{
    w_bytes(w, MQ_GGUF_MAGIC, 4);
    w_u32(w, MQ_GGUF_VERSION);
    w_u64(w, (uint64_t)n);
    w_u64(w, (uint64_t)meta->n);
    for (size_t i = 0; i < meta->n; i++) {
        MQ_TRY(w_kv(w, &meta->items[i], err));
        w_note_limit(w, "key", meta->items[i].key);
    }
    for (size_t i = 0; i < n; i++) {
        w_str(w, t[i].name, strlen(t[i].name));
        w_u32(w, t[i].n_dims);
        for (uint32_t d = 0; d < t[i].n_dims; d++) w_u64(w, t[i].ne[d]);
        w_u32(w, (uint32_t)t[i].type);
        w_u64(w, t[i].offset);
        w_note_limit(w, "tensor", t[i].name);
    }
    if (w->ovf) return MQ_FAIL(err, MQ_E_OVERFLOW, "gguf-header-size", "GGUF header does not fit its planned size");
    return MQ_OK;
}

/* Key count, key and string lengths, array lengths and duplicate keys against the reader's caps. */
static enum mq_status check_meta_limits(const struct mq_meta *meta, struct mq_error *err)
{
    if (meta->n > MQ_GGUF_MAX_KV)
        return MQ_FAIL(err, MQ_E_LIMIT, "gguf-kv-count-limit",
                       "the GGUF would hold %zu metadata keys, over the %u its reader accepts (key %s is past the limit)",
                       meta->n, MQ_GGUF_MAX_KV, meta->items[MQ_GGUF_MAX_KV].key);
    struct mq_nameset keys = {0};
    enum mq_status s = MQ_OK;
    for (size_t i = 0; s == MQ_OK && i < meta->n; i++) {
        const struct mq_meta_entry *e = &meta->items[i];
        const struct mq_meta_value *v = &e->v;
        int dup = mq_nameset_add(&keys, e->key);
        if (dup < 0) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory checking metadata keys");
        else if (dup) s = MQ_FAIL(err, MQ_E_INTERNAL, "gguf-duplicate-key", "metadata key %s appears twice", e->key);
        else if (strlen(e->key) > MQ_GGUF_MAX_STRING)
            s = MQ_FAIL(err, MQ_E_LIMIT, "gguf-string-length-limit",
                        "metadata key of %zu bytes is over the %llu-byte string limit of GGUF readers (key %.64s...)",
                        strlen(e->key), (unsigned long long)MQ_GGUF_MAX_STRING, e->key);
        else if (v->type == MQ_META_STRING && v->str.len > MQ_GGUF_MAX_STRING)
            s = MQ_FAIL(err, MQ_E_LIMIT, "gguf-string-length-limit",
                        "metadata %s: a string of %" PRIu64 " bytes is over the %llu-byte limit of modelq's GGUF reader",
                        e->key, v->str.len, (unsigned long long)MQ_GGUF_MAX_STRING);
        else if (v->type == MQ_META_ARRAY && v->count > MQ_GGUF_MAX_ARRAY)
            s = MQ_FAIL(err, MQ_E_LIMIT, "gguf-array-count-limit",
                        "metadata %s: an array of %" PRIu64 " elements is over the %llu-element limit of modelq's GGUF reader",
                        e->key, v->count, (unsigned long long)MQ_GGUF_MAX_ARRAY);
        for (uint64_t k = 0; s == MQ_OK && v->type == MQ_META_ARRAY && v->elem_type == MQ_META_STRING && k < v->count; k++)
            if (v->strs[k].len > MQ_GGUF_MAX_STRING)
                s = MQ_FAIL(err, MQ_E_LIMIT, "gguf-string-length-limit",
                            "metadata %s: element %" PRIu64 " is a string of %" PRIu64
                            " bytes, over the %llu-byte limit of modelq's GGUF reader",
                            e->key, k, v->strs[k].len, (unsigned long long)MQ_GGUF_MAX_STRING);
    }
    mq_nameset_free(&keys);
    return s;
}

/* One tensor info against GGUF's rules and the reader's caps; its data bytes in *bytes. */
static enum mq_status check_tensor(const struct mq_gguf_tensor_info *ti, struct mq_nameset *names, uint64_t *bytes,
                                   struct mq_error *err)
{
    const struct mq_ggml_type *gt = mq_ggml_type(ti->type);
    size_t nl = strlen(ti->name);
    if (nl == 0 || nl > MQ_GGUF_MAX_NAME)
        return MQ_FAIL(err, MQ_E_USAGE, "gguf-name-length", "tensor %s: GGUF tensor names are 1..%u bytes (this one is %zu)",
                       ti->name, MQ_GGUF_MAX_NAME, nl);
    int dup = mq_nameset_add(names, ti->name);
    if (dup < 0) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory checking tensor names");
    if (dup) return MQ_FAIL(err, MQ_E_USAGE, "gguf-duplicate-tensor", "tensor %s appears twice", ti->name);
    if (ti->n_dims < 1 || ti->n_dims > MQ_GGUF_MAX_DIMS)
        return MQ_FAIL(err, MQ_E_USAGE, "gguf-dims", "tensor %s: GGUF tensors have 1..4 dims, not %" PRIu32, ti->name,
                       ti->n_dims);
    if (!gt) return MQ_FAIL(err, MQ_E_USAGE, "gguf-type", "tensor %s: unknown ggml type %d", ti->name, ti->type);
    int64_t ne[4] = {1, 1, 1, 1};
    for (uint32_t d = 0; d < ti->n_dims; d++) {
        if (ti->ne[d] > INT64_MAX)
            return MQ_FAIL(err, MQ_E_OVERFLOW, "gguf-element-overflow", "tensor %s: ne[%u] = %" PRIu64 " does not fit in int64",
                           ti->name, d, ti->ne[d]);
        ne[d] = (int64_t)ti->ne[d];
    }
    if (mq_gguf_elements_overflow(ne))
        return MQ_FAIL(err, MQ_E_OVERFLOW, "gguf-element-overflow",
                       "tensor %s: the element count does not fit in int64 (GGUF readers refuse it)", ti->name);
    if (ti->ne[0] % gt->blck)
        return MQ_FAIL(err, MQ_E_USAGE, "gguf-block", "tensor %s: row of %" PRIu64 " is not a multiple of %s's %u",
                       ti->name, ti->ne[0], gt->name, gt->blck);
    *bytes = ti->ne[0] / gt->blck * gt->bytes;
    for (uint32_t d = 1; d < ti->n_dims; d++)
        if (mq_ckd_mul_u64(bytes, *bytes, ti->ne[d]))
            return MQ_FAIL(err, MQ_E_OVERFLOW, "gguf-size", "tensor %s: size overflows", ti->name);
    if (*bytes != ti->nbytes)
        return MQ_FAIL(err, MQ_E_INTERNAL, "gguf-size", "tensor %s: planned %" PRIu64 " bytes, ggml says %" PRIu64,
                       ti->name, ti->nbytes, *bytes);
    return MQ_OK;
}

enum mq_status mq_gguf_layout(const struct mq_meta *meta, struct mq_gguf_tensor_info *t, size_t n,
                              uint64_t *data_start, uint64_t *file_size, struct mq_error *err)
{
    uint64_t align;
    MQ_TRY(alignment_of(meta, &align, err));
    if (n > MQ_GGUF_MAX_TENSORS)
        return MQ_FAIL(err, MQ_E_LIMIT, "gguf-tensor-count-limit",
                       "the GGUF would hold %zu tensors, over the %u its reader accepts (tensor %s is past the limit)", n,
                       MQ_GGUF_MAX_TENSORS, t[MQ_GGUF_MAX_TENSORS].name);
    MQ_TRY(check_meta_limits(meta, err));
    struct mq_nameset names = {0};
    enum mq_status s = MQ_OK;
    uint64_t off = 0;
    for (size_t i = 0; s == MQ_OK && i < n; i++) {
        uint64_t bytes = 0;
        s = check_tensor(&t[i], &names, &bytes, err);
        if (s != MQ_OK) break;
        t[i].offset = off;
        if (mq_ckd_add_u64(&off, off, pad_to(bytes, align)) || off < bytes)
            s = MQ_FAIL(err, MQ_E_OVERFLOW, "gguf-size", "tensor %s: file size overflows", t[i].name);
    }
    mq_nameset_free(&names);
    MQ_TRY(s);
    struct wcur w = {0};
    MQ_TRY(serialize(meta, t, n, &w, err));
    if (w.over_kind)
        return MQ_FAIL(err, MQ_E_LIMIT, "gguf-header-limit",
                       "the GGUF header would pass the %llu-byte limit of modelq's GGUF reader at %s %s",
                       (unsigned long long)MQ_GGUF_MAX_HEADER_BYTES, w.over_kind, w.over_name);
    *data_start = pad_to(w.off, align);
    if (mq_ckd_add_u64(file_size, *data_start, off))
        return MQ_FAIL(err, MQ_E_OVERFLOW, "gguf-size", "GGUF file size overflows");
    return MQ_OK;
}

enum mq_status mq_gguf_header_write(const struct mq_meta *meta, const struct mq_gguf_tensor_info *t,
                                    size_t n, uint8_t *buf, uint64_t data_start, struct mq_error *err)
{
    struct wcur w = {.buf = buf, .cap = data_start};
    MQ_TRY(serialize(meta, t, n, &w, err));
    memset(buf + w.off, 0, (size_t)(data_start - w.off));
    return MQ_OK;
}

enum mq_status mq_gguf_header_seal(const struct mq_meta *meta, const struct mq_gguf_tensor_info *t, size_t n,
                                   uint8_t *buf, uint64_t data_start, uint64_t *sum, struct mq_error *err)
{
    struct wcur w = {.mark_key = MQ_CHECKSUM_HEADER_KEY};
    MQ_TRY(serialize(meta, t, n, &w, err));
    const struct mq_meta_value *v = mq_meta_get(meta, MQ_CHECKSUM_HEADER_KEY);
    if (!v || v->type != MQ_META_U64 || v->num.u != 0 || w.mark_at == 0 || w.mark_at + 8 > data_start ||
        mq_load_u64le(buf + w.mark_at) != 0)
        return MQ_FAIL(err, MQ_E_INTERNAL, "checksums", "%s (UINT64 0) missing from the planned header",
                       MQ_CHECKSUM_HEADER_KEY);
    *sum = XXH3_64bits(buf, (size_t)data_start);
    mq_store_u64le(buf + w.mark_at, *sum);
    return MQ_OK;
}

enum mq_status mq_gguf_write_meta_only(const char *path, const struct mq_meta *meta, struct mq_error *err)
{
    uint64_t start, size;
    MQ_TRY(mq_gguf_layout(meta, NULL, 0, &start, &size, err));
    size_t len;
    if (mq_ckd_u64_to_size(&len, start)) return MQ_FAIL(err, MQ_E_OVERFLOW, "gguf-size", "%s: header too large", path);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory for the header", path);
    /* the same temporary file + rename as every other output (src/outfile.c) */
    struct mq_outfile *out = NULL;
    enum mq_status st = mq_gguf_header_write(meta, NULL, 0, buf, start, err);
    if (st == MQ_OK) st = mq_outfile_create(path, size, &out, err);
    if (st == MQ_OK) st = mq_outfile_pwrite(out, buf, len, 0, err);
    if (st == MQ_OK) {
        st = mq_outfile_commit(out, err);
        out = NULL;
    }
    mq_outfile_abort(out);
    free(buf);
    return st;
}
