/* meta.c - typed key/value metadata (see include/modelq/meta.h). */
#include "modelq/meta.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "ckd.h"

static const struct {
    const char *name;
    size_t size;
} type_table[MQ_META_TYPE_COUNT] = {
    [MQ_META_U8] = {"UINT8", 1},   [MQ_META_I8] = {"INT8", 1},      [MQ_META_U16] = {"UINT16", 2},
    [MQ_META_I16] = {"INT16", 2},  [MQ_META_U32] = {"UINT32", 4},   [MQ_META_I32] = {"INT32", 4},
    [MQ_META_F32] = {"FLOAT32", 4}, [MQ_META_BOOL] = {"BOOL", 1},   [MQ_META_STRING] = {"STRING", 0},
    [MQ_META_ARRAY] = {"ARRAY", 0}, [MQ_META_U64] = {"UINT64", 8},  [MQ_META_I64] = {"INT64", 8},
    [MQ_META_F64] = {"FLOAT64", 8},
};

const char *mq_meta_type_name(enum mq_meta_type t)
{
    return (unsigned)t < MQ_META_TYPE_COUNT ? type_table[t].name : "?";
}

size_t mq_meta_type_size(enum mq_meta_type t)
{
    return (unsigned)t < MQ_META_TYPE_COUNT ? type_table[t].size : 0;
}

static bool is_scalar(enum mq_meta_type t)
{
    return (unsigned)t < MQ_META_TYPE_COUNT && t != MQ_META_STRING && t != MQ_META_ARRAY;
}

void mq_meta_init(struct mq_meta *m) { memset(m, 0, sizeof *m); }

void mq_meta_value_clear(struct mq_meta_value *v)
{
    free(v->str.p);
    free(v->arr);
    if (v->strs) {
        for (uint64_t i = 0; i < v->count; i++) free(v->strs[i].p);
        free(v->strs);
    }
    memset(v, 0, sizeof *v);
}

void mq_meta_free(struct mq_meta *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->items[i].key);
        mq_meta_value_clear(&m->items[i].v);
    }
    free(m->items);
    free(m->ix);
    memset(m, 0, sizeof *m);
}

/* ---- the key index: open addressing on XXH3-64 of the key, linear probing ---- */

static size_t ix_home(const char *key, size_t cap) { return (size_t)XXH3_64bits(key, strlen(key)) & (cap - 1); }

static void ix_put(size_t *ix, size_t cap, const char *key, size_t item)
{
    size_t j = ix_home(key, cap);
    while (ix[j]) j = (j + 1) & (cap - 1);
    ix[j] = item + 1;
}

/* Rebuilds the index for items[0..n) with room for `want` keys; without memory the index is
** dropped and lookups fall back to a linear search (slower, never wrong). */
static void ix_rebuild(struct mq_meta *m, size_t want)
{
    size_t cap = 16;
    while (cap / 2 < want && cap < SIZE_MAX / 4 / sizeof *m->ix) cap *= 2;
    free(m->ix);
    m->ix = cap / 2 >= want ? calloc(cap, sizeof *m->ix) : NULL;
    m->ix_cap = m->ix ? cap : 0;
    for (size_t i = 0; m->ix && i < m->n; i++) ix_put(m->ix, cap, m->items[i].key, i);
}

long mq_meta_find(const struct mq_meta *m, const char *key)
{
    if (!m->ix) {
        for (size_t i = 0; i < m->n; i++)
            if (strcmp(m->items[i].key, key) == 0) return (long)i;
        return -1;
    }
    for (size_t j = ix_home(key, m->ix_cap); m->ix[j]; j = (j + 1) & (m->ix_cap - 1))
        if (strcmp(m->items[m->ix[j] - 1].key, key) == 0) return (long)(m->ix[j] - 1);
    return -1;
}

const struct mq_meta_value *mq_meta_get(const struct mq_meta *m, const char *key)
{
    long i = mq_meta_find(m, key);
    return i < 0 ? NULL : &m->items[i].v;
}

bool mq_meta_remove(struct mq_meta *m, const char *key)
{
    long i = mq_meta_find(m, key);
    if (i < 0) return false;
    free(m->items[i].key);
    mq_meta_value_clear(&m->items[i].v);
    memmove(&m->items[i], &m->items[i + 1], (m->n - (size_t)i - 1) * sizeof m->items[0]);
    m->n--;
    ix_rebuild(m, m->n); /* the items after i moved: O(n), as the memmove */
    return true;
}

static enum mq_status nomem(struct mq_error *err, const char *key)
{
    return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory storing metadata key %s", key);
}

/* Appends key/v at the end (no search); `v` is taken (freed on failure). */
static enum mq_status append_value(struct mq_meta *m, const char *key, struct mq_meta_value *v, struct mq_error *err);

enum mq_status mq_meta_append_value(struct mq_meta *m, const char *key, struct mq_meta_value *v,
                                    struct mq_error *err)
{
    return append_value(m, key, v, err);
}

enum mq_status mq_meta_set_value(struct mq_meta *m, const char *key, struct mq_meta_value *v,
                                 struct mq_error *err)
{
    long i = mq_meta_find(m, key);
    if (i >= 0) {
        mq_meta_value_clear(&m->items[i].v);
        m->items[i].v = *v;
        memset(v, 0, sizeof *v);
        return MQ_OK;
    }
    return append_value(m, key, v, err);
}

static enum mq_status append_value(struct mq_meta *m, const char *key, struct mq_meta_value *v, struct mq_error *err)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        struct mq_meta_entry *p = realloc(m->items, cap * sizeof *p);
        if (!p) {
            mq_meta_value_clear(v);
            return nomem(err, key);
        }
        m->items = p;
        m->cap = cap;
    }
    char *k = strdup(key);
    if (!k) {
        mq_meta_value_clear(v);
        return nomem(err, key);
    }
    m->items[m->n].key = k;
    m->items[m->n].v = *v;
    memset(v, 0, sizeof *v);
    m->n++;
    if (m->ix && m->n <= m->ix_cap / 2) ix_put(m->ix, m->ix_cap, k, m->n - 1);
    else ix_rebuild(m, m->n * 2); /* doubling: O(1) amortized per key */
    return MQ_OK;
}

enum mq_status mq_meta_set_uint(struct mq_meta *m, const char *key, enum mq_meta_type type, uint64_t v,
                                struct mq_error *err)
{
    if (!is_scalar(type)) return MQ_FAIL(err, MQ_E_INTERNAL, "meta-type", "%s: not a scalar type", key);
    struct mq_meta_value val = {.type = type};
    if (type == MQ_META_F32 || type == MQ_META_F64) val.num.f = (double)v;
    else val.num.u = v;
    return mq_meta_set_value(m, key, &val, err);
}

enum mq_status mq_meta_set_int(struct mq_meta *m, const char *key, enum mq_meta_type type, int64_t v,
                               struct mq_error *err)
{
    if (!is_scalar(type)) return MQ_FAIL(err, MQ_E_INTERNAL, "meta-type", "%s: not a scalar type", key);
    struct mq_meta_value val = {.type = type};
    if (type == MQ_META_F32 || type == MQ_META_F64) val.num.f = (double)v;
    else val.num.i = v;
    return mq_meta_set_value(m, key, &val, err);
}

enum mq_status mq_meta_set_f32(struct mq_meta *m, const char *key, float v, struct mq_error *err)
{
    struct mq_meta_value val = {.type = MQ_META_F32};
    val.num.f = (double)v;
    return mq_meta_set_value(m, key, &val, err);
}

enum mq_status mq_meta_set_f64(struct mq_meta *m, const char *key, double v, struct mq_error *err)
{
    struct mq_meta_value val = {.type = MQ_META_F64};
    val.num.f = v;
    return mq_meta_set_value(m, key, &val, err);
}

enum mq_status mq_meta_set_bool(struct mq_meta *m, const char *key, bool v, struct mq_error *err)
{
    return mq_meta_set_uint(m, key, MQ_META_BOOL, v ? 1 : 0, err);
}

enum mq_status mq_meta_set_u32(struct mq_meta *m, const char *key, uint32_t v, struct mq_error *err)
{
    return mq_meta_set_uint(m, key, MQ_META_U32, v, err);
}

static int dup_bytes(struct mq_meta_str *out, const char *s, uint64_t len)
{
    size_t n;
    if (mq_ckd_u64_to_size(&n, len) || n == SIZE_MAX) return 1;
    out->p = malloc(n + 1);
    if (!out->p) return 1;
    if (n) memcpy(out->p, s, n);
    out->p[n] = '\0';
    out->len = len;
    return 0;
}

enum mq_status mq_meta_set_str(struct mq_meta *m, const char *key, const char *s, size_t len,
                               struct mq_error *err)
{
    struct mq_meta_value val = {.type = MQ_META_STRING};
    if (len == SIZE_MAX) len = strlen(s);
    if (dup_bytes(&val.str, s, len)) return nomem(err, key);
    return mq_meta_set_value(m, key, &val, err);
}

enum mq_status mq_meta_set_array(struct mq_meta *m, const char *key, enum mq_meta_type elem_type,
                                 const void *data, uint64_t count, struct mq_error *err)
{
    if (!is_scalar(elem_type))
        return MQ_FAIL(err, MQ_E_INTERNAL, "meta-type", "%s: not a scalar element type", key);
    struct mq_meta_value val = {.type = MQ_META_ARRAY, .elem_type = elem_type, .count = count};
    uint64_t bytes;
    size_t n;
    if (mq_ckd_mul_u64(&bytes, count, mq_meta_type_size(elem_type)) || mq_ckd_u64_to_size(&n, bytes))
        return MQ_FAIL(err, MQ_E_OVERFLOW, "meta-size", "%s: array of %" PRIu64 " elements is too large", key,
                       count);
    val.arr = malloc(n ? n : 1);
    if (!val.arr) return nomem(err, key);
    if (n) memcpy(val.arr, data, n);
    return mq_meta_set_value(m, key, &val, err);
}

enum mq_status mq_meta_set_str_array(struct mq_meta *m, const char *key, const char *const *strs,
                                     const uint64_t *lens, uint64_t count, struct mq_error *err)
{
    struct mq_meta_value val = {.type = MQ_META_ARRAY, .elem_type = MQ_META_STRING};
    size_t n;
    if (mq_ckd_u64_to_size(&n, count) || n > SIZE_MAX / sizeof *val.strs)
        return MQ_FAIL(err, MQ_E_OVERFLOW, "meta-size", "%s: too many strings", key);
    val.strs = calloc(n ? n : 1, sizeof *val.strs);
    if (!val.strs) return nomem(err, key);
    for (size_t i = 0; i < n; i++) {
        uint64_t len = lens ? lens[i] : strlen(strs[i]);
        if (dup_bytes(&val.strs[i], strs[i], len)) {
            val.count = i;
            mq_meta_value_clear(&val);
            return nomem(err, key);
        }
    }
    val.count = count;
    return mq_meta_set_value(m, key, &val, err);
}

static enum mq_status copy_value(struct mq_meta_value *dst, const struct mq_meta_value *src)
{
    *dst = *src;
    dst->str.p = NULL;
    dst->arr = NULL;
    dst->strs = NULL;
    if (src->type == MQ_META_STRING && dup_bytes(&dst->str, src->str.p, src->str.len)) return MQ_E_NOMEM;
    if (src->type == MQ_META_ARRAY && src->elem_type != MQ_META_STRING) {
        size_t n = (size_t)src->count * mq_meta_type_size(src->elem_type);
        dst->arr = malloc(n ? n : 1);
        if (!dst->arr) return MQ_E_NOMEM;
        if (n) memcpy(dst->arr, src->arr, n);
    }
    if (src->type == MQ_META_ARRAY && src->elem_type == MQ_META_STRING) {
        dst->strs = calloc(src->count ? (size_t)src->count : 1, sizeof *dst->strs);
        if (!dst->strs) return MQ_E_NOMEM;
        for (uint64_t i = 0; i < src->count; i++) {
            if (dup_bytes(&dst->strs[i], src->strs[i].p, src->strs[i].len)) return MQ_E_NOMEM;
        }
    }
    return MQ_OK;
}

enum mq_status mq_meta_copy(struct mq_meta *dst, const struct mq_meta *src, struct mq_error *err)
{
    for (size_t i = 0; i < src->n; i++) {
        struct mq_meta_value v;
        if (copy_value(&v, &src->items[i].v) != MQ_OK) {
            mq_meta_value_clear(&v);
            return nomem(err, src->items[i].key);
        }
        MQ_TRY(mq_meta_set_value(dst, src->items[i].key, &v, err));
    }
    return MQ_OK;
}

bool mq_meta_get_uint(const struct mq_meta *m, const char *key, uint64_t *out)
{
    const struct mq_meta_value *v = mq_meta_get(m, key);
    if (!v) return false;
    switch (v->type) {
    case MQ_META_U8: case MQ_META_U16: case MQ_META_U32: case MQ_META_U64: case MQ_META_BOOL:
        *out = v->num.u;
        return true;
    case MQ_META_I8: case MQ_META_I16: case MQ_META_I32: case MQ_META_I64:
        if (v->num.i < 0) return false;
        *out = (uint64_t)v->num.i;
        return true;
    default:
        return false;
    }
}

const char *mq_meta_get_str(const struct mq_meta *m, const char *key)
{
    const struct mq_meta_value *v = mq_meta_get(m, key);
    return v && v->type == MQ_META_STRING ? v->str.p : NULL;
}

/* Appends printf output to buf at *pos without overrunning cap. */
static void put(char *buf, size_t cap, size_t *pos, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t cap, size_t *pos, const char *fmt, ...)
{
    if (*pos >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *pos, cap - *pos, fmt, ap);
    va_end(ap);
    if (n > 0) *pos += (size_t)n < cap - *pos ? (size_t)n : cap - *pos - 1;
}

static void put_str(char *buf, size_t cap, size_t *pos, const struct mq_meta_str *s, size_t max)
{
    put(buf, cap, pos, "\"");
    for (uint64_t i = 0; i < s->len && i < max; i++) {
        unsigned char c = (unsigned char)s->p[i];
        if (c == '"' || c == '\\') put(buf, cap, pos, "\\%c", c);
        else if (c < 0x20 || c == 0x7f) put(buf, cap, pos, "\\x%02x", c);
        else put(buf, cap, pos, "%c", c);
    }
    put(buf, cap, pos, s->len > max ? "\"..." : "\"");
}

static void put_scalar(char *buf, size_t cap, size_t *pos, enum mq_meta_type t, const void *p)
{
    switch (t) {
    case MQ_META_U8: put(buf, cap, pos, "%u", *(const uint8_t *)p); break;
    case MQ_META_I8: put(buf, cap, pos, "%d", *(const int8_t *)p); break;
    case MQ_META_U16: put(buf, cap, pos, "%u", *(const uint16_t *)p); break;
    case MQ_META_I16: put(buf, cap, pos, "%d", *(const int16_t *)p); break;
    case MQ_META_U32: put(buf, cap, pos, "%" PRIu32, *(const uint32_t *)p); break;
    case MQ_META_I32: put(buf, cap, pos, "%" PRId32, *(const int32_t *)p); break;
    case MQ_META_F32: put(buf, cap, pos, "%.9g", (double)*(const float *)p); break;
    case MQ_META_BOOL: put(buf, cap, pos, "%s", *(const uint8_t *)p ? "true" : "false"); break;
    case MQ_META_U64: put(buf, cap, pos, "%" PRIu64, *(const uint64_t *)p); break;
    case MQ_META_I64: put(buf, cap, pos, "%" PRId64, *(const int64_t *)p); break;
    case MQ_META_F64: put(buf, cap, pos, "%.17g", *(const double *)p); break;
    default: put(buf, cap, pos, "?"); break;
    }
}

void mq_meta_value_format(const struct mq_meta_value *v, char *buf, size_t cap, size_t max)
{
    size_t pos = 0;
    if (!cap) return;
    buf[0] = '\0';
    if (v->type == MQ_META_STRING) {
        put_str(buf, cap, &pos, &v->str, max);
    } else if (v->type == MQ_META_ARRAY) {
        put(buf, cap, &pos, "[%s x %" PRIu64 "]", mq_meta_type_name(v->elem_type), v->count);
        for (uint64_t i = 0; i < v->count && pos < max; i++) {
            put(buf, cap, &pos, i ? ", " : " ");
            if (v->elem_type == MQ_META_STRING) put_str(buf, cap, &pos, &v->strs[i], 32);
            else put_scalar(buf, cap, &pos, v->elem_type,
                            (const uint8_t *)v->arr + i * mq_meta_type_size(v->elem_type));
            if (i + 1 < v->count && pos >= max) put(buf, cap, &pos, ", ...");
        }
    } else if (v->type == MQ_META_F32 || v->type == MQ_META_F64) {
        put(buf, cap, &pos, v->type == MQ_META_F32 ? "%.9g" : "%.17g", v->num.f);
    } else if (v->type == MQ_META_BOOL) {
        put(buf, cap, &pos, "%s", v->num.u ? "true" : "false");
    } else if (v->type == MQ_META_I8 || v->type == MQ_META_I16 || v->type == MQ_META_I32 || v->type == MQ_META_I64) {
        put(buf, cap, &pos, "%" PRId64, v->num.i);
    } else {
        put(buf, cap, &pos, "%" PRIu64, v->num.u);
    }
}
