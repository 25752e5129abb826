/*
** safetensors_read.c - validating reader for one .safetensors file.
**
** Layout (https://github.com/huggingface/safetensors, README "Format"):
**   [0, 8)        N, u64 little-endian: header length in bytes, padding included
**   [8, 8+N)      UTF-8 JSON object: {"__metadata__": {str: str}?,
**                   "NAME": {"dtype": "BF16", "shape": [d0, d1, ...], "data_offsets": [BEGIN, END]}, ...}
**                 leading/trailing JSON whitespace allowed (writers pad with spaces), nothing else
**   [8+N, EOF)    data; BEGIN/END are relative to 8+N; tensors tile it exactly (no holes, no overlap,
**                 no trailing bytes), row-major, little-endian, no alignment guaranteed.
**
** Checks, in the order of the reference reader (safetensors/src/tensor.rs read_metadata +
** Metadata::validate), each with its own name (the `check` of the error):
**   file-too-small, header-length-limit, header-within-file, header-utf8, header-json (syntax,
**   header-not-object, header-trailing), metadata-strings, tensor-entry, dtype-known,
**   shape-integers, max-dims, offsets-pair, duplicate-name (stricter than the reference, which
**   keeps the last duplicate silently), then after sorting by (begin, end): offsets-contiguous,
**   offsets-reversed, size-overflow, whole-bytes, span-size, and finally data-coverage.
** Only headers are read here; data is reached later by pread (model.c).
*/
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckd.h"
#include "fileio.h"
#include "format.h"
#include "json_strict.h"
#include "span.h"

#define ST_MAX_HEADER 100000000ull /* the reference reader's MAX_HEADER_SIZE */
#define ST_MAX_DEPTH 64
/* JSON values in one header: about 9 per tensor (entry, dtype, shape and its dims, data_offsets
** and its pair), so 2^21 allows ~230 000 tensors in one file, 2.5x all of DeepSeek-V3's (~91 000,
** spread over 163 shards), and bounds the parsed tree to ~200 MB whatever the header holds. */
#define ST_MAX_NODES (1u << 21)

struct st_entry {
    const char *name; /* points into the cJSON tree */
    enum mq_dtype dtype;
    uint32_t ndim;
    uint64_t shape[MQ_MAX_DIMS];
    uint64_t begin, end;
};

static int st_probe(const uint8_t *head, size_t len, const char *path)
{
    size_t pl = strlen(path);
    int by_name = pl >= 12 && strcmp(path + pl - 12, ".safetensors") == 0;
    if (len >= 9) {
        uint64_t n = mq_load_u64le(head);
        uint8_t c = head[8];
        if (n <= ST_MAX_HEADER && (c == '{' || c == ' ' || c == '\t' || c == '\n' || c == '\r'))
            return by_name ? 100 : 60;
    }
    return by_name ? 50 : 0; /* a damaged .safetensors still goes here, to get a precise error */
}

/* Reads a JSON number the strict scan has already proven to be an integer <= 2^53. */
static int json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return 1;
    *out = (uint64_t)v->valuedouble;
    return 0;
}

static enum mq_status parse_entry(const char *path, const cJSON *obj, struct st_entry *e, struct mq_error *err)
{
    const char *name = obj->string;
    if (!cJSON_IsObject(obj))
        return MQ_FAIL(err, MQ_E_CORRUPT, "tensor-entry", "%s: tensor '%s': tensor-entry: not a JSON object", path, name);
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL;
    for (const cJSON *f = obj->child; f; f = f->next) {
        const cJSON **slot = strcmp(f->string, "dtype") == 0          ? &dtype
                             : strcmp(f->string, "shape") == 0        ? &shape
                             : strcmp(f->string, "data_offsets") == 0 ? &offs
                                                                      : NULL;
        if (!slot) continue; /* unknown fields are ignored, as serde does */
        if (*slot)
            return MQ_FAIL(err, MQ_E_CORRUPT, "tensor-entry", "%s: tensor '%s': tensor-entry: duplicate field \"%s\"",
                           path, name, f->string);
        *slot = f;
    }
    if (!dtype || !shape || !offs)
        return MQ_FAIL(err, MQ_E_CORRUPT, "tensor-entry", "%s: tensor '%s': tensor-entry: missing \"%s\"", path, name,
                       !dtype ? "dtype" : !shape ? "shape" : "data_offsets");
    if (!cJSON_IsString(dtype) || !mq_dtype_from_name(dtype->valuestring, &e->dtype))
        return MQ_FAIL(err, MQ_E_CORRUPT, "dtype-known", "%s: tensor '%s': dtype-known: unknown dtype %s%s%s", path,
                       name, cJSON_IsString(dtype) ? "\"" : "", cJSON_IsString(dtype) ? dtype->valuestring : "(not a string)",
                       cJSON_IsString(dtype) ? "\"" : "");
    if (!cJSON_IsArray(shape))
        return MQ_FAIL(err, MQ_E_CORRUPT, "shape-integers", "%s: tensor '%s': shape-integers: shape is not an array",
                       path, name);
    int nd = cJSON_GetArraySize(shape);
    if (nd > MQ_MAX_DIMS)
        return MQ_FAIL(err, MQ_E_LIMIT, "max-dims", "%s: tensor '%s': max-dims: %d dimensions, at most %d supported",
                       path, name, nd, MQ_MAX_DIMS);
    e->ndim = (uint32_t)nd;
    int i = 0;
    for (const cJSON *d = shape->child; d; d = d->next, i++)
        if (json_uint(d, &e->shape[i]))
            return MQ_FAIL(err, MQ_E_CORRUPT, "shape-integers",
                           "%s: tensor '%s': shape-integers: dimension %d is not a non-negative integer", path, name, i);
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || json_uint(offs->child, &e->begin) ||
        json_uint(offs->child->next, &e->end))
        return MQ_FAIL(err, MQ_E_CORRUPT, "offsets-pair",
                       "%s: tensor '%s': offsets-pair: data_offsets must be two non-negative integers", path, name);
    e->name = name;
    return MQ_OK;
}

static int cmp_offsets(const void *a, const void *b)
{
    const struct st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name); /* total order: output does not depend on qsort */
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static enum mq_status check_duplicates(const char *path, const cJSON *root, size_t n, struct mq_error *err)
{
    if (n < 2) return MQ_OK;
    const char **names = malloc(n * sizeof *names);
    if (!names) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
    size_t k = 0;
    for (const cJSON *c = root->child; c; c = c->next) names[k++] = c->string;
    qsort(names, k, sizeof *names, cmp_names);
    enum mq_status s = MQ_OK;
    for (size_t i = 1; i < k; i++) {
        if (strcmp(names[i - 1], names[i]) == 0) {
            s = MQ_FAIL(err, MQ_E_CORRUPT, "duplicate-name", "%s: tensor '%s': duplicate-name: the header names it twice",
                        path, names[i]);
            break;
        }
    }
    free(names);
    return s;
}

/* Checks 8-13 of the reference reader over entries sorted by (begin, end). */
static enum mq_status validate_layout(const char *path, struct st_entry *es, size_t n, uint64_t data_len,
                                      struct mq_error *err)
{
    qsort(es, n, sizeof *es, cmp_offsets);
    uint64_t expected = 0;
    for (size_t i = 0; i < n; i++) {
        const struct st_entry *e = &es[i];
        if (e->begin != expected)
            return MQ_FAIL(err, MQ_E_CORRUPT, "offsets-contiguous",
                           "%s: tensor '%s': offsets-contiguous: data starts at %llu, expected %llu (%s)", path,
                           e->name, (unsigned long long)e->begin, (unsigned long long)expected,
                           e->begin > expected ? "hole" : "overlap");
        if (e->end < e->begin)
            return MQ_FAIL(err, MQ_E_CORRUPT, "offsets-reversed", "%s: tensor '%s': offsets-reversed: end %llu < begin %llu",
                           path, e->name, (unsigned long long)e->end, (unsigned long long)e->begin);
        uint64_t numel = 1, bits;
        for (uint32_t d = 0; d < e->ndim; d++)
            if (mq_ckd_mul_u64(&numel, numel, e->shape[d]))
                return MQ_FAIL(err, MQ_E_OVERFLOW, "size-overflow",
                               "%s: tensor '%s': size-overflow: element count overflows 64 bits", path, e->name);
        if (mq_ckd_mul_u64(&bits, numel, mq_dtype_bits(e->dtype)))
            return MQ_FAIL(err, MQ_E_OVERFLOW, "size-overflow", "%s: tensor '%s': size-overflow: bit count overflows 64 bits",
                           path, e->name);
        if (bits % 8 != 0)
            return MQ_FAIL(err, MQ_E_CORRUPT, "whole-bytes",
                           "%s: tensor '%s': whole-bytes: %llu elements of %s are not a whole number of bytes", path,
                           e->name, (unsigned long long)numel, mq_dtype_name(e->dtype));
        if (e->end - e->begin != bits / 8)
            return MQ_FAIL(err, MQ_E_CORRUPT, "span-size",
                           "%s: tensor '%s': span-size: data_offsets span %llu bytes, shape and dtype need %llu", path,
                           e->name, (unsigned long long)(e->end - e->begin), (unsigned long long)(bits / 8));
        expected = e->end;
    }
    if (expected != data_len)
        return MQ_FAIL(err, MQ_E_CORRUPT, "data-coverage",
                       "%s: data-coverage: tensors cover %llu data bytes but the file has %llu (%s)", path,
                       (unsigned long long)expected, (unsigned long long)data_len,
                       expected < data_len ? "trailing bytes" : "truncated file");
    return MQ_OK;
}

static enum mq_status parse_header(struct mq_model *m, const char *path, const char *hdr, size_t hlen,
                                   uint64_t data_start, uint64_t data_len, uint32_t file, bool want_metadata,
                                   struct mq_error *err)
{
    struct json_strict_result jr;
    const struct json_strict_rules rules = {.integers_only = true, .max_depth = ST_MAX_DEPTH, .max_nodes = ST_MAX_NODES};
    if (!json_strict_check(hdr, hlen, &rules, &jr)) {
        const char *check = jr.check;
        if (strcmp(check, "json-nodes") == 0)
            return MQ_FAIL(err, MQ_E_LIMIT, "header-nodes-limit",
                           "%s: header-nodes-limit: more than %u JSON values in the header (the limit bounds the "
                           "memory of the parsed header)", path, ST_MAX_NODES);
        if (strcmp(check, "json-alloc") == 0) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
        /* numbers are legal only in shapes and data_offsets: name the rule of the field */
        if (strncmp(check, "json-integer", 12) == 0 && strcmp(jr.key, "data_offsets") == 0) check = "offsets-pair";
        else if (strncmp(check, "json-integer", 12) == 0 && strcmp(jr.key, "shape") == 0) check = "shape-integers";
        else if (strncmp(check, "json-", 5) == 0) check = "header-json";
        if (jr.top_key[0] && strcmp(jr.top_key, "__metadata__") != 0)
            return MQ_FAIL(err, MQ_E_CORRUPT, check, "%s: tensor '%s': %s: %s at header byte %zu", path, jr.top_key, check,
                           jr.detail, jr.where);
        return MQ_FAIL(err, MQ_E_CORRUPT, check, "%s: %s: %s at header byte %zu", path, check, jr.detail, jr.where);
    }
    cJSON *root = cJSON_ParseWithLength(hdr, hlen);
    if (!root) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory parsing the header", path);
    enum mq_status s = MQ_OK;
    size_t n = 0;
    for (const cJSON *c = root->child; c; c = c->next) n++;
    struct st_entry *es = calloc(n ? n : 1, sizeof *es);
    if (!es) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
    if (s == MQ_OK) s = check_duplicates(path, root, n, err);
    size_t ne = 0;
    for (const cJSON *c = root->child; c && s == MQ_OK; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(c)) {
                s = MQ_FAIL(err, MQ_E_CORRUPT, "metadata-strings", "%s: metadata-strings: __metadata__ is not an object", path);
                break;
            }
            for (const cJSON *kv = c->child; kv && s == MQ_OK; kv = kv->next) {
                if (!cJSON_IsString(kv))
                    s = MQ_FAIL(err, MQ_E_CORRUPT, "metadata-strings",
                                "%s: metadata-strings: __metadata__ value \"%s\" is not a string", path, kv->string);
                else if (want_metadata)
                    s = mq_model_add_kv(m, kv->string, kv->valuestring, err);
            }
            continue;
        }
        s = parse_entry(path, c, &es[ne], err);
        if (s == MQ_OK) ne++;
    }
    if (s == MQ_OK) s = validate_layout(path, es, ne, data_len, err);
    for (size_t i = 0; i < ne && s == MQ_OK; i++) {
        struct mq_tensor t = {0};
        t.name = strdup(es[i].name);
        if (!t.name) {
            s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
            break;
        }
        t.dtype = es[i].dtype;
        t.ndim = es[i].ndim;
        memcpy(t.shape, es[i].shape, sizeof t.shape);
        t.numel = 1;
        for (uint32_t d = 0; d < t.ndim; d++) t.numel *= t.shape[d]; /* proven not to overflow */
        t.nbytes = es[i].end - es[i].begin;
        t.file = file;
        t.offset = data_start + es[i].begin;
        s = mq_model_add_tensor(m, &t, err);
        if (s != MQ_OK) free(t.name);
    }
    free(es);
    cJSON_Delete(root);
    return s;
}

static enum mq_status st_read_file(struct mq_model *m, const char *path, struct mq_error *err)
{
    int fd;
    uint64_t size;
    uint32_t file;
    enum mq_status s = MQ_OK;
    MQ_TRY(mq_model_open_file(m, path, &fd, &size, &file, err));
    bool first_file = (file == 0);
    if (size < 8)
        return MQ_FAIL(err, MQ_E_CORRUPT, "file-too-small", "%s: file-too-small: %llu bytes, the header length alone is 8",
                       path, (unsigned long long)size);
    uint8_t lenbuf[8];
    MQ_TRY(mq_pread_full(fd, path, lenbuf, 8, 0, err));
    uint64_t n = mq_load_u64le(lenbuf);
    if (n > ST_MAX_HEADER)
        return MQ_FAIL(err, MQ_E_LIMIT, "header-length-limit",
                       "%s: header-length-limit: header of %llu bytes is over the %llu-byte limit", path,
                       (unsigned long long)n, ST_MAX_HEADER);
    if (n > size - 8)
        return MQ_FAIL(err, MQ_E_CORRUPT, "header-within-file",
                       "%s: header-within-file: header of %llu bytes does not fit in a %llu-byte file", path,
                       (unsigned long long)n, (unsigned long long)size);
    char *hdr = malloc((size_t)n + 1);
    if (!hdr) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory for a %llu-byte header", path, (unsigned long long)n);
    s = mq_pread_full(fd, path, hdr, (size_t)n, 8, err);
    if (s == MQ_OK) {
        hdr[n] = '\0';
        m->header_bytes_read += 8 + n;
        m->files[file].data_start = 8 + n;
        s = parse_header(m, path, hdr, (size_t)n, 8 + n, size - 8 - n, file, first_file, err);
    }
    free(hdr);
    return s;
}

const struct mq_reader_ops mq_safetensors_reader = {
    .name = "safetensors",
    .probe = st_probe,
    .read_file = st_read_file,
};
