/*
** gguf_read.c - validating reader for one GGUF file, versions 2 and 3 (identical on disk).
**
** Layout (../shared/docs/gguf-and-ggml.md section 1; gguf.h), little-endian, packed:
**   [0, 4)    magic "GGUF"
**   [4, 8)    u32 version
**   [8, 16)   i64 n_tensors
**   [16, 24)  i64 n_kv
**   n_kv x      { u64 len, key bytes | i32 type | value }   value: scalar | u64 len + bytes |
**                                                           i32 elem_type, u64 count, elements
**   n_tensors x { u64 len, name | u32 n_dims | i64 ne[n_dims] | i32 ggml_type | u64 offset }
**   zero padding to ALIGNMENT, then the data section (offsets are relative to it).
**
** The header is read front to back through a window of at most MQ_GGUF_READ_CHUNK bytes per
** pread (struct gg_in), so a header of many MB (tokenizer arrays) is never read in one piece and
** the data section is never read. Every length from the file is checked against a cap and
** against the bytes the file has left before anything is allocated.
**
** Checks, in the order of ggml's gguf_init_from_reader (src/gguf.cpp), each with its own name:
**   magic, truncated (a fixed-size field past the end of the file), version-zero,
**   version-byteswapped, version-1, version-newer, tensor-count, kv-count;
**   per key: string-length-limit, string-within-file, key-empty, key-nul, key-duplicate,
**   value-type, nested-array, array-count-limit, array-within-file; then alignment-type,
**   alignment-value (general.alignment); per tensor: tensor-name-length, tensor-name-nul,
**   tensor-name-duplicate, n-dims, ne-negative, element-overflow, type-known, block-multiple,
**   size-overflow; then data-within-file, offset-contiguous, size-overflow (data section) and
**   llama.cpp's loader rule tensor-within-file. modelq's caps (gguf.h) add header-limit,
**   tensor-count-limit, kv-count-limit and tighter string-length-limit / array-count-limit.
** Stricter than gguf.cpp: those caps; key-nul and tensor-name-nul (names are C strings here;
** ggml keeps NUL in keys and cuts tensor names at it); type-known for ids newer than the table
** of gguf_types.c (42 = Q2_0); element-overflow also where ggml's own product wraps; and
** tensor-within-file, which gguf_init_from_file checks only when it loads the data (llama.cpp's
** model loader checks it always). A file whose last tensor lacks its final padding loads, with a
** warning (llama.cpp loads it too).
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckd.h"
#include "fileio.h"
#include "format.h"
#include "gguf.h"
#include "nameset.h"
#include "span.h"

#define GG_MAGIC_LEN 4
#define GG_SHOW_MAX 64       /* bytes of a key or name quoted in a message */

struct gg_in {
    int fd;
    const char *path;
    uint64_t size;           /* file size at open */
    uint64_t pos;            /* offset of the next header byte; <= MQ_GGUF_MAX_HEADER_BYTES */
    uint8_t *win;            /* MQ_GGUF_READ_CHUNK bytes: file bytes [win_off, win_off + win_len) */
    uint64_t win_off;
    size_t win_len;
    uint64_t bytes_read;     /* bytes pread, for mq_model.header_bytes_read */
    uint64_t header_sum_at;  /* offset of modelq.header_xxh3's UINT64 value, 0 = none */
    char where[GG_SHOW_MAX * 4 + 32]; /* "key 'x'", "tensor #3" ... or "" */
    struct mq_meta *meta;    /* where the typed key/values go: m->meta, or a split part's own */
    bool text;               /* also append them as text to m->metadata (the model's own keys) */
    struct mq_error *err;
};

/* One-line, printable rendering of len bytes of s (quotes escaped, long names cut). */
static void gg_show(const char *s, uint64_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (uint64_t i = 0; i < len && i < GG_SHOW_MAX && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '\'' || c == '\\') o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else out[o++] = (char)c;
    }
    if (len > GG_SHOW_MAX && o + 4 < cap) o += (size_t)snprintf(out + o, cap - o, "...");
    out[o < cap ? o : cap - 1] = '\0';
}

static void gg_where(struct gg_in *in, const char *what, const char *s, uint64_t len)
{
    char shown[GG_SHOW_MAX * 4 + 8];
    gg_show(s, len, shown, sizeof shown);
    snprintf(in->where, sizeof in->where, "%s '%s'", what, shown);
}

/* "PATH: [WHERE: ]CHECK: detail" with the source line of the caller (for --verbose). */
static enum mq_status gg_fail_at(struct gg_in *in, enum mq_status code, const char *check, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static enum mq_status gg_fail_at(struct gg_in *in, enum mq_status code, const char *check, int line, const char *fmt, ...)
{
    char detail[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return mq_error_set_at(in->err, code, check, __FILE__, line, "%s: %s%s%s: %s", in->path, in->where,
                           in->where[0] ? ": " : "", check, detail);
}
#define GG_FAIL(in, code, check, ...) gg_fail_at((in), (code), (check), __LINE__, __VA_ARGS__)

static unsigned long long ull(uint64_t v) { return (unsigned long long)v; }

/* Room for n more header bytes: the header cap first, then the end of the file. */
static enum mq_status gg_room(struct gg_in *in, uint64_t n, const char *check_in_file, const char *what)
{
    if (n > MQ_GGUF_MAX_HEADER_BYTES - in->pos)
        return GG_FAIL(in, MQ_E_LIMIT, "header-limit", "%s (%llu bytes at offset %llu) would make the header larger than %llu bytes",
                       what, ull(n), ull(in->pos), ull(MQ_GGUF_MAX_HEADER_BYTES));
    if (n > in->size - in->pos)
        return GG_FAIL(in, MQ_E_CORRUPT, check_in_file, "%s needs %llu bytes at offset %llu but the file has %llu",
                       what, ull(n), ull(in->pos), ull(in->size));
    return MQ_OK;
}

/* Copies the next n header bytes (room already checked) through the window. */
static enum mq_status gg_copy(struct gg_in *in, void *dst, uint64_t n)
{
    uint8_t *d = dst;
    while (n > 0) {
        if (in->pos < in->win_off || in->pos >= in->win_off + in->win_len) {
            uint64_t left = in->size - in->pos;
            size_t len = left < MQ_GGUF_READ_CHUNK ? (size_t)left : MQ_GGUF_READ_CHUNK;
            MQ_TRY(mq_pread_full(in->fd, in->path, in->win, len, in->pos, in->err));
            in->win_off = in->pos;
            in->win_len = len;
            in->bytes_read += len;
        }
        uint64_t avail = in->win_off + in->win_len - in->pos;
        size_t k = (size_t)(n < avail ? n : avail);
        memcpy(d, in->win + (in->pos - in->win_off), k);
        d += k;
        in->pos += k;
        n -= k;
    }
    return MQ_OK;
}

static enum mq_status gg_fixed(struct gg_in *in, uint8_t *dst, size_t n, const char *what)
{
    MQ_TRY(gg_room(in, n, "truncated", what));
    return gg_copy(in, dst, n);
}

static enum mq_status gg_u32(struct gg_in *in, uint32_t *v, const char *what)
{
    uint8_t b[4];
    MQ_TRY(gg_fixed(in, b, 4, what));
    *v = mq_load_u32le(b);
    return MQ_OK;
}

static enum mq_status gg_u64(struct gg_in *in, uint64_t *v, const char *what)
{
    uint8_t b[8];
    MQ_TRY(gg_fixed(in, b, 8, what));
    *v = mq_load_u64le(b);
    return MQ_OK;
}

/* Two's complement from the unsigned field, without implementation-defined conversions. */
static int64_t as_i64(uint64_t u) { return u <= INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1; }
static int32_t as_i32(uint32_t u) { return u <= INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1; }

/*
** A string: u64 length, then the bytes. *out is malloc'd with a NUL after the len bytes (the
** caller frees it, also on failure of a later check).
*/
static enum mq_status gg_string(struct gg_in *in, char **out, uint64_t *len, const char *what)
{
    *out = NULL;
    uint64_t n;
    MQ_TRY(gg_u64(in, &n, what));
    if (n > MQ_GGUF_MAX_STRING)
        return GG_FAIL(in, MQ_E_LIMIT, "string-length-limit", "%s of %llu bytes is over the %llu-byte limit", what,
                       ull(n), ull(MQ_GGUF_MAX_STRING));
    MQ_TRY(gg_room(in, n, "string-within-file", what));
    char *p = malloc((size_t)n + 1);
    if (!p) return GG_FAIL(in, MQ_E_NOMEM, "alloc", "out of memory for %s of %llu bytes", what, ull(n));
    enum mq_status s = gg_copy(in, p, n);
    if (s != MQ_OK) {
        free(p);
        return s;
    }
    p[n] = '\0';
    *out = p;
    *len = n;
    return MQ_OK;
}

/* One scalar of type t from its little-endian bytes into v (type already set). */
static void decode_scalar(enum mq_meta_type t, const uint8_t *b, struct mq_meta_value *v)
{
    uint64_t u = 0;
    size_t n = mq_meta_type_size(t);
    for (size_t i = 0; i < n; i++) u |= (uint64_t)b[i] << (8 * i);
    switch (t) {
    case MQ_META_I8: v->num.i = (int8_t)(uint8_t)u; break;
    case MQ_META_I16: v->num.i = (int16_t)(uint16_t)u; break;
    case MQ_META_I32: v->num.i = as_i32((uint32_t)u); break;
    case MQ_META_I64: v->num.i = as_i64(u); break;
    case MQ_META_BOOL: v->num.u = u != 0; break; /* gguf.cpp: any nonzero byte is true */
    case MQ_META_F32: {
        uint32_t bits = (uint32_t)u;
        float f;
        memcpy(&f, &bits, 4);
        v->num.f = (double)f;
        break;
    }
    case MQ_META_F64: memcpy(&v->num.f, &u, 8); break;
    default: v->num.u = u; break;
    }
}

/* Rewrites count packed little-endian elements of size esz in place into host order. */
static void le_to_host(uint8_t *p, uint64_t count, size_t esz, bool is_bool)
{
    for (uint64_t i = 0; i < count; i++, p += esz) {
        uint64_t u = 0;
        for (size_t k = 0; k < esz; k++) u |= (uint64_t)p[k] << (8 * k);
        if (is_bool) u = u != 0;
        if (esz == 1) *p = (uint8_t)u;
        else if (esz == 2) { uint16_t x = (uint16_t)u; memcpy(p, &x, 2); }
        else if (esz == 4) { uint32_t x = (uint32_t)u; memcpy(p, &x, 4); }
        else memcpy(p, &u, 8);
    }
}

/* An array value after its i32 elem_type and u64 count (elem type already checked). */
static enum mq_status gg_array(struct gg_in *in, enum mq_meta_type et, uint64_t count, struct mq_meta_value *v)
{
    if (count > MQ_GGUF_MAX_ARRAY)
        return GG_FAIL(in, MQ_E_LIMIT, "array-count-limit", "array of %llu elements is over the %llu-element limit",
                       ull(count), ull(MQ_GGUF_MAX_ARRAY));
    /* strings: at least their u64 length each (gguf.cpp counts the same) */
    size_t esz = et == MQ_META_STRING ? 8 : mq_meta_type_size(et);
    MQ_TRY(gg_room(in, count * esz, "array-within-file", "the array"));
    v->type = MQ_META_ARRAY;
    v->elem_type = et;
    if (et != MQ_META_STRING) {
        v->arr = malloc(count ? (size_t)count * esz : 1);
        if (!v->arr) return GG_FAIL(in, MQ_E_NOMEM, "alloc", "out of memory for %llu array elements", ull(count));
        MQ_TRY(gg_copy(in, v->arr, count * esz));
        le_to_host(v->arr, count, esz, et == MQ_META_BOOL);
        v->count = count;
        return MQ_OK;
    }
    v->strs = calloc(count ? (size_t)count : 1, sizeof *v->strs);
    if (!v->strs) return GG_FAIL(in, MQ_E_NOMEM, "alloc", "out of memory for %llu strings", ull(count));
    for (uint64_t i = 0; i < count; i++) {
        MQ_TRY(gg_string(in, &v->strs[i].p, &v->strs[i].len, "a string in the array"));
        v->count = i + 1; /* so mq_meta_value_clear frees what was read */
    }
    return MQ_OK;
}

/* The value after a key: i32 type, then a scalar, a string or an array. */
static enum mq_status gg_value(struct gg_in *in, struct mq_meta_value *v)
{
    uint32_t t32;
    MQ_TRY(gg_u32(in, &t32, "the value type"));
    int32_t type = as_i32(t32);
    if (type == MQ_META_ARRAY) {
        uint32_t e32;
        uint64_t count;
        MQ_TRY(gg_u32(in, &e32, "the array element type"));
        MQ_TRY(gg_u64(in, &count, "the array length"));
        int32_t et = as_i32(e32);
        if (et == MQ_META_ARRAY)
            return GG_FAIL(in, MQ_E_CORRUPT, "nested-array", "arrays of arrays are not allowed (gguf.cpp refuses them)");
        if (et < 0 || et >= MQ_META_TYPE_COUNT)
            return GG_FAIL(in, MQ_E_CORRUPT, "value-type", "array element type %d is not a GGUF type (0..12)", (int)et);
        return gg_array(in, (enum mq_meta_type)et, count, v);
    }
    if (type < 0 || type >= MQ_META_TYPE_COUNT)
        return GG_FAIL(in, MQ_E_CORRUPT, "value-type", "value type %d is not a GGUF type (0..12)", (int)type);
    v->type = (enum mq_meta_type)type;
    if (type == MQ_META_STRING) return gg_string(in, &v->str.p, &v->str.len, "the string value");
    uint8_t b[8];
    MQ_TRY(gg_fixed(in, b, mq_meta_type_size(v->type), "the value"));
    decode_scalar(v->type, b, v);
    return MQ_OK;
}

/*
** Duplicate keys and tensor names are found with a hashed set (nameset.h; gguf.cpp compares every
** pair, this stays linear at the caps). The set of gg_read_kvs owns the key strings it holds
** (it frees them); the tensor-name set points at the model's names.
*/

/* Text rendering for inspect and mq_model.metadata: arrays summarized. */
#define GG_TEXT_MAX 200

/* One key/value into m->meta (typed) and m->metadata (text). */
static enum mq_status gg_read_kv(struct gg_in *in, struct mq_model *m, uint64_t i, struct mq_nameset *keys)
{
    snprintf(in->where, sizeof in->where, "key #%llu", ull(i));
    char *key;
    uint64_t klen;
    MQ_TRY(gg_string(in, &key, &klen, "the key"));
    enum mq_status s = MQ_OK;
    if (klen == 0) s = GG_FAIL(in, MQ_E_CORRUPT, "key-empty", "keys must not be empty");
    gg_where(in, "key", key, klen);
    if (s == MQ_OK && memchr(key, 0, (size_t)klen))
        s = GG_FAIL(in, MQ_E_CORRUPT, "key-nul", "the key contains a NUL byte");
    int dup = s == MQ_OK ? mq_nameset_add(keys, key) : 0;
    if (dup < 0) s = GG_FAIL(in, MQ_E_NOMEM, "alloc", "out of memory");
    if (dup > 0) s = GG_FAIL(in, MQ_E_CORRUPT, "key-duplicate", "the key appears twice");
    if (s != MQ_OK) {
        free(key);
        return s;
    }
    /* from here the set owns key (gg_read_kvs frees it) */
    struct mq_meta_value v;
    memset(&v, 0, sizeof v);
    uint64_t value_at = in->pos + 4; /* after the i32 type */
    s = gg_value(in, &v);
    if (s != MQ_OK) {
        mq_meta_value_clear(&v);
        return s;
    }
    if (v.type == MQ_META_U64 && strcmp(key, MQ_CHECKSUM_HEADER_KEY) == 0) in->header_sum_at = value_at; /* for verify */
    /* keys are unique (checked above with the hash set): append without the O(n) search */
    MQ_TRY(mq_meta_append_value(in->meta, key, &v, in->err)); /* takes v, frees it on failure */
    if (!in->text) return MQ_OK;
    char text[GG_TEXT_MAX + 64];
    mq_meta_value_format(&in->meta->items[in->meta->n - 1].v, text, sizeof text, GG_TEXT_MAX);
    return mq_model_add_kv(m, key, text, in->err);
}

static enum mq_status gg_read_kvs(struct gg_in *in, struct mq_model *m, uint64_t n_kv)
{
    struct mq_nameset keys = {0};
    enum mq_status s = MQ_OK;
    for (uint64_t i = 0; i < n_kv && s == MQ_OK; i++) s = gg_read_kv(in, m, i, &keys);
    for (size_t i = 0; i < keys.cap; i++) free((char *)keys.slot[i]);
    mq_nameset_free(&keys);
    MQ_TRY(s);
    in->where[0] = '\0';
    return MQ_OK;
}

/* general.alignment: UINT32, nonzero power of two; 32 when absent. */
static enum mq_status gg_alignment(struct gg_in *in, const struct mq_meta *meta, uint32_t *align)
{
    *align = MQ_GGUF_DEFAULT_ALIGNMENT;
    const struct mq_meta_value *a = mq_meta_get(meta, "general.alignment");
    if (!a) return MQ_OK;
    snprintf(in->where, sizeof in->where, "key 'general.alignment'");
    if (a->type != MQ_META_U32)
        return GG_FAIL(in, MQ_E_CORRUPT, "alignment-type", "must be UINT32, is %s", mq_meta_type_name(a->type));
    if (a->num.u == 0 || (a->num.u & (a->num.u - 1)) != 0)
        return GG_FAIL(in, MQ_E_CORRUPT, "alignment-value", "%llu is not a power of two", ull(a->num.u));
    *align = (uint32_t)a->num.u;
    in->where[0] = '\0';
    return MQ_OK;
}

/* One tensor info; appends the tensor to m with its offset still relative to the data section. */
static enum mq_status gg_tensor_info(struct gg_in *in, struct mq_model *m, uint32_t file, uint64_t i,
                                     struct mq_nameset *names)
{
    snprintf(in->where, sizeof in->where, "tensor #%llu", ull(i));
    struct mq_tensor t;
    memset(&t, 0, sizeof t);
    uint64_t len;
    MQ_TRY(gg_string(in, &t.name, &len, "the tensor name"));
    enum mq_status s = MQ_OK;
    gg_where(in, "tensor", t.name, len);
    if (len > MQ_GGUF_MAX_NAME)
        s = GG_FAIL(in, MQ_E_CORRUPT, "tensor-name-length", "name of %llu bytes, at most %u allowed (GGML_MAX_NAME - 1)",
                    ull(len), MQ_GGUF_MAX_NAME);
    if (s == MQ_OK && memchr(t.name, 0, (size_t)len))
        s = GG_FAIL(in, MQ_E_CORRUPT, "tensor-name-nul", "the name contains a NUL byte");
    if (s == MQ_OK) s = mq_model_add_tensor(m, &t, in->err); /* the model owns the name from here */
    if (s != MQ_OK) {
        free(t.name);
        return s;
    }
    struct mq_tensor *tp = &m->tensors[m->n_tensors - 1];
    int dup = mq_nameset_add(names, tp->name);
    if (dup < 0) return GG_FAIL(in, MQ_E_NOMEM, "alloc", "out of memory");
    if (dup) return GG_FAIL(in, MQ_E_CORRUPT, "tensor-name-duplicate", "a tensor of this name is already in the file");

    uint32_t n_dims;
    MQ_TRY(gg_u32(in, &n_dims, "n_dims"));
    if (n_dims > MQ_GGUF_MAX_DIMS)
        return GG_FAIL(in, MQ_E_CORRUPT, "n-dims", "%u dimensions, at most %u allowed", n_dims, MQ_GGUF_MAX_DIMS);
    int64_t ne[4] = {1, 1, 1, 1};
    for (uint32_t d = 0; d < n_dims; d++) {
        uint64_t u;
        MQ_TRY(gg_u64(in, &u, "a dimension"));
        ne[d] = as_i64(u);
        if (ne[d] < 0) return GG_FAIL(in, MQ_E_CORRUPT, "ne-negative", "ne[%u] = %lld is negative", d, (long long)ne[d]);
    }
    if (mq_gguf_elements_overflow(ne))
        return GG_FAIL(in, MQ_E_OVERFLOW, "element-overflow",
                       "ne = [%lld, %lld, %lld, %lld]: the element count does not fit in int64", (long long)ne[0],
                       (long long)ne[1], (long long)ne[2], (long long)ne[3]);
    uint32_t type32;
    MQ_TRY(gg_u32(in, &type32, "the ggml type"));
    int32_t type = as_i32(type32);
    const struct mq_ggml_type *gt = mq_ggml_type(type);
    if (!gt) return GG_FAIL(in, MQ_E_CORRUPT, "type-known", "ggml type %d is unknown or removed", (int)type);
    if (ne[0] % gt->blck != 0)
        return GG_FAIL(in, MQ_E_CORRUPT, "block-multiple", "row of %lld elements is not a multiple of the %s block (%u)",
                       (long long)ne[0], gt->name, gt->blck);
    uint64_t numel = (uint64_t)ne[0] * (uint64_t)ne[1] * (uint64_t)ne[2] * (uint64_t)ne[3]; /* < 2^63, see above */
    if (numel / gt->blck > SIZE_MAX / gt->bytes)
        return GG_FAIL(in, MQ_E_OVERFLOW, "size-overflow", "%llu elements of %s do not fit in size_t bytes", ull(numel),
                       gt->name);
    MQ_TRY(gg_u64(in, &tp->offset, "the data offset"));
    tp->ndim = n_dims;
    for (uint32_t d = 0; d < n_dims; d++) tp->shape[d] = (uint64_t)ne[n_dims - 1 - d]; /* outermost first */
    tp->numel = numel;
    tp->nbytes = numel / gt->blck * gt->bytes; /* = ggml_row_size(ne[0]) x rows, since blck divides ne[0] */
    tp->file = file;
    tp->from_gguf = true;
    tp->ggml_type = type;
    tp->dtype = gt->plain != MQ_DTYPE_COUNT ? gt->plain : MQ_DTYPE_U8;
    return MQ_OK;
}

/*
** After the infos: the data section starts at PAD(end of infos, alignment) (only when there are
** tensors, as in gguf.cpp), tensor i sits at sum over j < i of PAD(nbytes_j), and every tensor's
** bytes lie inside the file. Offsets become absolute.
*/
static enum mq_status gg_layout(struct gg_in *in, struct mq_model *m, size_t first, uint32_t align, uint64_t *data_start)
{
    uint64_t data_off = in->pos;
    size_t n = m->n_tensors - first;
    if (n > 0) {
        data_off = (in->pos + align - 1) / align * align; /* pos <= header cap: no overflow */
        if (data_off > in->size)
            return GG_FAIL(in, MQ_E_CORRUPT, "data-within-file",
                           "the data section starts at %llu (alignment %u) but the file has %llu bytes", ull(data_off),
                           align, ull(in->size));
    }
    uint64_t expect = 0;
    for (size_t i = first; i < m->n_tensors; i++) {
        struct mq_tensor *t = &m->tensors[i];
        gg_where(in, "tensor", t->name, strlen(t->name));
        if (t->offset != expect)
            return GG_FAIL(in, MQ_E_CORRUPT, "offset-contiguous", "offset %llu, expected %llu (%s)", ull(t->offset),
                           ull(expect), t->offset > expect ? "hole" : "overlap");
        uint64_t padded;
        if (mq_ckd_add_u64(&padded, t->nbytes, align - 1) || mq_ckd_add_u64(&expect, expect, padded / align * align) ||
            expect > SIZE_MAX)
            return GG_FAIL(in, MQ_E_OVERFLOW, "size-overflow", "the data section size overflows");
    }
    for (size_t i = first; i < m->n_tensors; i++) {
        struct mq_tensor *t = &m->tensors[i];
        uint64_t begin, end;
        if (mq_ckd_add_u64(&begin, data_off, t->offset) || mq_ckd_add_u64(&end, begin, t->nbytes) || end > in->size) {
            gg_where(in, "tensor", t->name, strlen(t->name));
            return GG_FAIL(in, MQ_E_CORRUPT, "tensor-within-file",
                           "%llu bytes at data offset %llu (file offset %llu) end past the file's %llu bytes",
                           ull(t->nbytes), ull(t->offset), ull(data_off + t->offset), ull(in->size));
        }
        t->offset = begin;
    }
    in->where[0] = '\0';
    uint64_t padded_end;
    if (n > 0 && (mq_ckd_add_u64(&padded_end, data_off, expect) || padded_end > in->size))
        MQ_TRY(mq_model_warn(m, in->err,
                             "%s: the last tensor lacks its final padding (the file ends at %llu, the padded data "
                             "section at %llu); llama.cpp accepts this",
                             in->path, ull(in->size), ull(data_off + expect)));
    *data_start = data_off;
    return MQ_OK;
}

/* Magic, version and the two counts (the first 24 bytes). */
static enum mq_status gg_fixed_header(struct gg_in *in, uint32_t *version, uint64_t *n_tensors, uint64_t *n_kv)
{
    uint8_t magic[GG_MAGIC_LEN];
    if (in->size < GG_MAGIC_LEN)
        return GG_FAIL(in, MQ_E_CORRUPT, "magic", "%llu bytes, too short for the GGUF magic", ull(in->size));
    MQ_TRY(gg_copy(in, magic, GG_MAGIC_LEN));
    if (memcmp(magic, MQ_GGUF_MAGIC, GG_MAGIC_LEN) != 0) {
        char shown[GG_MAGIC_LEN * 4 + 8];
        gg_show((const char *)magic, GG_MAGIC_LEN, shown, sizeof shown);
        return GG_FAIL(in, MQ_E_CORRUPT, "magic", "the file starts with '%s', not 'GGUF'", shown);
    }
    MQ_TRY(gg_u32(in, version, "the version"));
    if (*version == 0) return GG_FAIL(in, MQ_E_CORRUPT, "version-zero", "version 0 does not exist");
    if ((*version & 0xFFFFu) == 0)
        return GG_FAIL(in, MQ_E_UNSUPPORTED, "version-byteswapped",
                       "version field 0x%08x: a big-endian GGUF (byte-swapped version); only little-endian files are read",
                       *version);
    if (*version == 1)
        return GG_FAIL(in, MQ_E_UNSUPPORTED, "version-1", "GGUF v1 is not supported (ggml dropped it; reconvert the model)");
    if (*version > MQ_GGUF_VERSION)
        return GG_FAIL(in, MQ_E_UNSUPPORTED, "version-newer", "version %u, only 2 and 3 are read", *version);
    MQ_TRY(gg_u64(in, n_tensors, "n_tensors"));
    if (as_i64(*n_tensors) < 0)
        return GG_FAIL(in, MQ_E_CORRUPT, "tensor-count", "n_tensors = %lld is negative", (long long)as_i64(*n_tensors));
    if (*n_tensors > MQ_GGUF_MAX_TENSORS)
        return GG_FAIL(in, MQ_E_LIMIT, "tensor-count-limit", "%llu tensors, at most %u read", ull(*n_tensors),
                       MQ_GGUF_MAX_TENSORS);
    MQ_TRY(gg_u64(in, n_kv, "n_kv"));
    if (as_i64(*n_kv) < 0)
        return GG_FAIL(in, MQ_E_CORRUPT, "kv-count", "n_kv = %lld is negative", (long long)as_i64(*n_kv));
    if (*n_kv > MQ_GGUF_MAX_KV)
        return GG_FAIL(in, MQ_E_LIMIT, "kv-count-limit", "%llu key/value pairs, at most %u read", ull(*n_kv), MQ_GGUF_MAX_KV);
    return MQ_OK;
}

static enum mq_status gg_read_header(struct gg_in *in, struct mq_model *m, uint32_t file)
{
    uint32_t version, align;
    uint64_t n_tensors = 0, n_kv = 0, data_start = 0;
    MQ_TRY(gg_fixed_header(in, &version, &n_tensors, &n_kv));
    MQ_TRY(gg_read_kvs(in, m, n_kv));
    MQ_TRY(gg_alignment(in, in->meta, &align));
    size_t first = m->n_tensors;
    struct mq_nameset names = {0};
    enum mq_status s = MQ_OK;
    for (uint64_t i = 0; i < n_tensors && s == MQ_OK; i++) s = gg_tensor_info(in, m, file, i, &names);
    mq_nameset_free(&names);
    MQ_TRY(s);
    MQ_TRY(gg_layout(in, m, first, align, &data_start));
    m->files[file].data_start = data_start;
    m->files[file].gguf_version = version;
    m->files[file].gguf_alignment = align;
    m->files[file].gguf_header_sum_at = in->header_sum_at;
    return in->text ? mq_gguf_fill_config(m, m->files[file].path, in->err) : MQ_OK;
}

static int gg_probe(const uint8_t *head, size_t len, const char *path)
{
    size_t pl = strlen(path);
    if (len >= GG_MAGIC_LEN && memcmp(head, MQ_GGUF_MAGIC, GG_MAGIC_LEN) == 0) return 100;
    return pl >= 5 && strcmp(path + pl - 5, ".gguf") == 0 ? 50 : 0; /* a damaged .gguf: a precise error */
}

enum mq_status mq_gguf_read_part(struct mq_model *m, const char *path, struct mq_meta *meta, struct mq_error *err)
{
    int fd;
    uint64_t size;
    uint32_t file;
    enum mq_status s = MQ_OK;
    MQ_TRY(mq_model_open_file(m, path, &fd, &size, &file, err));
    struct gg_in in = {.fd = fd, .path = path, .size = size, .meta = meta ? meta : &m->meta, .text = !meta, .err = err};
    in.win = malloc(MQ_GGUF_READ_CHUNK);
    if (!in.win) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
    s = gg_read_header(&in, m, file);
    m->header_bytes_read += in.bytes_read;
    free(in.win);
    return s;
}

const struct mq_reader_ops mq_gguf_reader = {
    .name = "gguf",
    .probe = gg_probe,
    .read_file = mq_gguf_read_set, /* one file, or every part of a split model (gguf_split.c) */
};
