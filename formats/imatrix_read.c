/*
** imatrix_read.c - llama-imatrix's importance matrices, both formats (modelq/imatrix.h).
**
** GGUF form (llama.cpp tools/imatrix, read by tools/quantize load_imatrix): an ordinary GGUF v3
** read with the project's GGUF reader (gguf_read.c: caps, bounds, duplicate names). Per weight
** matrix NAME two F32 tensors:
**   NAME.in_sum2  ne [n_per_row, n_mat]  sum over calibration tokens of activation^2, per column
**   NAME.counts   ne [1, n_mat]          tokens seen per matrix (experts see different counts)
** (a trailing ne of 1 is not stored, so either may have one dimension). Keys (all required, as
** llama-quantize requires them): imatrix.datasets STRING array, imatrix.chunk_count UINT32,
** imatrix.chunk_size UINT32. Other tensors are ignored. Importance = in_sum2 / count in float32;
** a matrix with count 0 (never reached) gets importance 1 for every column, as llama-quantize.
**
** Legacy .dat form, little-endian, no alignment:
**   i32 n_entries (>= 1)
**   n_entries x { i32 len (>= 1) | name[len] | i32 ncall | i32 nval (>= 1) | f32 values[nval] }
**   optional trailer: i32 last_call | i32 dataset_len | dataset[dataset_len]
** values are sums over ncall calls: importance = value / ncall (float32) when ncall > 0.
**
** Hostile input: every count is checked against the bytes left before anything is allocated;
** names must be non-empty, NUL-free, at most MAX_NAME bytes and unique; values and counts must
** be finite and >= 0; nothing may follow the trailer. Errors are one line naming the file and
** the entry (MQ_E_CORRUPT), or MQ_E_IO / MQ_E_NOMEM.
*/
#include "modelq/imatrix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckd.h"
#include "fileio.h"
#include "gguf.h"
#include "model_impl.h"
#include "span.h"

#define MAX_NAME 1024u                 /* legacy names (GGUF tensor names are at most 63 bytes) */
#define MAX_LEGACY_BYTES (4ull << 30)  /* a legacy file is read whole: 4 GiB is far above any real one */
#define SUMS_SUFFIX ".in_sum2"
#define COUNTS_SUFFIX ".counts"

void mq_imatrix_free(struct mq_imatrix *im)
{
    if (!im) return;
    for (size_t i = 0; i < im->n_entries; i++) {
        free(im->entries[i].name);
        free(im->entries[i].values);
    }
    free(im->entries);
    free(im->path);
    free(im->dataset);
    free(im);
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct mq_imatrix_entry *)a)->name, ((const struct mq_imatrix_entry *)b)->name);
}

const struct mq_imatrix_entry *mq_imatrix_find(const struct mq_imatrix *im, const char *name)
{
    if (!im || !name) return NULL;
    struct mq_imatrix_entry key = {.name = (char *)name};
    return bsearch(&key, im->entries, im->n_entries, sizeof key, cmp_entry);
}

/* Sorted by name; two entries of one name are refused (llama-quantize would keep the last). */
static enum mq_status sort_entries(struct mq_imatrix *im, struct mq_error *err)
{
    qsort(im->entries, im->n_entries, sizeof *im->entries, cmp_entry);
    for (size_t i = 1; i < im->n_entries; i++)
        if (strcmp(im->entries[i - 1].name, im->entries[i].name) == 0)
            return MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-duplicate", "%s: entry '%s' appears twice", im->path,
                           im->entries[i].name);
    return MQ_OK;
}

/* A stored float that must be finite and >= 0 (a mean of squares, or a count). */
static bool bad_value(float v) { return !(v >= 0.0f && v <= 3.40282347e38f); }

/* ---- legacy .dat ---- */

static int span_i32(struct mq_span *s, int32_t *v)
{
    uint32_t u;
    if (mq_span_u32le(s, &u)) return 1;
    *v = (int32_t)u;
    return 0;
}

static enum mq_status read_legacy(struct mq_imatrix *im, struct mq_error *err)
{
    const char *path = im->path;
    char *buf = NULL;
    size_t len = 0;
    MQ_TRY(mq_read_small_file(path, (size_t)MAX_LEGACY_BYTES, "imatrix-size", &buf, &len, err));
    struct mq_span s = {(const uint8_t *)buf, len, 0};
    enum mq_status st = MQ_OK;
    int32_t n = 0;
    if (span_i32(&s, &n) || n < 1) {
        st = MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-entries", "%s: no importance matrix entries (count %d)", path,
                     (int)n);
        goto out;
    }
    /* an entry takes at least 17 bytes (len, a 1-byte name, ncall, nval, one value) */
    if ((uint64_t)n > mq_span_left(&s) / 17) {
        st = MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-entries", "%s: %d entries cannot fit in %zu bytes", path, (int)n,
                     len);
        goto out;
    }
    im->entries = calloc((size_t)n, sizeof *im->entries);
    if (!im->entries) {
        st = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
        goto out;
    }
    for (int32_t i = 0; i < n; i++) {
        int32_t nlen = 0, ncall = 0, nval = 0;
        const uint8_t *name, *vals = NULL;
        if (span_i32(&s, &nlen) || nlen < 1 || (uint32_t)nlen > MAX_NAME || mq_span_bytes(&s, (size_t)nlen, &name)) {
            st = MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-name", "%s: entry %d: bad or truncated name (length %d)", path,
                         (int)i + 1, (int)nlen);
            goto out;
        }
        if (memchr(name, 0, (size_t)nlen)) {
            st = MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-name", "%s: entry %d: name holds a NUL byte", path, (int)i + 1);
            goto out;
        }
        struct mq_imatrix_entry *e = &im->entries[im->n_entries];
        if (!(e->name = strndup((const char *)name, (size_t)nlen))) {
            st = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
            goto out;
        }
        im->n_entries++;
        if (span_i32(&s, &ncall) || span_i32(&s, &nval)) {
            st = MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-truncated", "%s: entry '%s': truncated", path, e->name);
            goto out;
        }
        if (ncall < 0 || nval < 1 || (uint64_t)nval > mq_span_left(&s) / 4) {
            st = MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-count", "%s: entry '%s': %d calls, %d values (%zu bytes left)",
                         path, e->name, (int)ncall, (int)nval, mq_span_left(&s));
            goto out;
        }
        if (mq_span_bytes(&s, (size_t)nval * 4, &vals)) {
            st = MQ_FAIL(err, MQ_E_INTERNAL, "imatrix-count", "%s: entry %s: values", path, e->name);
            goto out;
        }
        if (!(e->values = malloc((size_t)nval * sizeof *e->values))) {
            st = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
            goto out;
        }
        e->n_per_row = (uint64_t)nval;
        e->n_mat = 1;
        for (int32_t j = 0; j < nval; j++) {
            uint32_t u = mq_load_u32le(vals + 4 * (size_t)j);
            float v;
            memcpy(&v, &u, sizeof v);
            if (bad_value(v)) {
                st = MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-value", "%s: entry '%s': value %d is %g (must be finite, >= 0)",
                             path, e->name, (int)j, (double)v);
                goto out;
            }
            e->values[j] = ncall > 0 ? v / (float)ncall : v;
        }
    }
    im->chunks = -1;
    if (mq_span_left(&s) > 0) {
        int32_t last_call, dlen;
        const uint8_t *ds;
        if (span_i32(&s, &last_call) || span_i32(&s, &dlen) || dlen < 0 || last_call < 0 ||
            mq_span_bytes(&s, (size_t)dlen, &ds)) {
            st = MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-trailer", "%s: bad or truncated dataset trailer after %zu entries",
                         path, im->n_entries);
            goto out;
        }
        if (mq_span_left(&s) > 0) {
            st = MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-trailing", "%s: %zu unexpected bytes after the dataset name", path,
                         mq_span_left(&s));
            goto out;
        }
        im->chunks = last_call;
        /* llama-quantize keeps the name up to its first NUL (it becomes a C string) */
        if (!(im->dataset = strndup((const char *)ds, (size_t)dlen))) {
            st = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
            goto out;
        }
    }
    st = sort_entries(im, err);
out:
    free(buf);
    return st;
}

/* ---- GGUF ---- */

/* Length of `name` without `suffix`, or 0 when it does not end so (or is nothing else). */
static size_t strip_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    return n > k && strcmp(name + n - k, suffix) == 0 ? n - k : 0;
}

/* Reads an F32 tensor of at most 2 dims into a new buffer: ne0 = row length, ne1 = rows. */
static enum mq_status read_f32_tensor(const struct mq_model *m, size_t i, const char *path, float **out, uint64_t *ne0,
                                      uint64_t *ne1, struct mq_error *err)
{
    const struct mq_tensor *t = &m->tensors[i];
    if (t->ggml_type != 0 || t->ndim < 1 || t->ndim > 2)
        return MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-tensor", "%s: tensor '%s' must be F32 with 1 or 2 dimensions (type %s, %u dims)",
                       path, t->name, mq_ggml_type_name(t->ggml_type) ? mq_ggml_type_name(t->ggml_type) : "?",
                       (unsigned)t->ndim);
    *ne0 = t->shape[t->ndim - 1];
    *ne1 = t->ndim == 2 ? t->shape[0] : 1;
    size_t bytes;
    if (t->numel == 0 || mq_ckd_u64_to_size(&bytes, t->nbytes) || t->nbytes != t->numel * 4)
        return MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-tensor", "%s: tensor '%s' is empty or mis-sized", path, t->name);
    float *v = malloc(bytes);
    if (!v) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory for tensor '%s'", path, t->name);
    enum mq_status s = mq_model_read(m, i, 0, v, bytes, err);
    if (s != MQ_OK) {
        free(v);
        return s;
    }
    for (uint64_t k = 0; k < t->numel; k++) {
        uint32_t u;
        memcpy(&u, &v[k], 4);
        u = mq_load_u32le((const uint8_t *)&u);
        memcpy(&v[k], &u, 4);
        if (bad_value(v[k])) {
            float bad = v[k];
            free(v);
            return MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-value", "%s: tensor '%s': element %llu is %g (must be finite, >= 0)",
                           path, t->name, (unsigned long long)k, (double)bad);
        }
    }
    *out = v;
    return MQ_OK;
}

static enum mq_status read_gguf(struct mq_imatrix *im, struct mq_model *m, struct mq_error *err)
{
    const char *path = im->path;
    MQ_TRY(mq_gguf_read_part(m, path, NULL, err));
    const struct mq_meta_value *ds = mq_meta_get(&m->meta, "imatrix.datasets");
    const struct mq_meta_value *cc = mq_meta_get(&m->meta, "imatrix.chunk_count");
    const struct mq_meta_value *cs = mq_meta_get(&m->meta, "imatrix.chunk_size");
    if (!ds || !cc || !cs)
        return MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-keys", "%s: missing imatrix metadata (imatrix.datasets, "
                       "imatrix.chunk_count, imatrix.chunk_size)", path);
    if (ds->type != MQ_META_ARRAY || ds->elem_type != MQ_META_STRING || cc->type != MQ_META_U32 || cs->type != MQ_META_U32)
        return MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-keys", "%s: imatrix.datasets must be a string array and "
                       "imatrix.chunk_count / chunk_size UINT32", path);
    im->chunks = (int64_t)cc->num.u;
    if (ds->count > 0 && !(im->dataset = strndup(ds->strs[0].p, (size_t)ds->strs[0].len)))
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
    /* pair NAME.in_sum2 with NAME.counts */
    size_t nsums = 0;
    for (size_t i = 0; i < m->n_tensors; i++) nsums += strip_suffix(m->tensors[i].name, SUMS_SUFFIX) != 0;
    im->entries = calloc(nsums ? nsums : 1, sizeof *im->entries);
    if (!im->entries) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
    for (size_t i = 0; i < m->n_tensors; i++) {
        const char *tn = m->tensors[i].name;
        size_t base = strip_suffix(tn, SUMS_SUFFIX);
        if (!base) {
            size_t cb = strip_suffix(tn, COUNTS_SUFFIX);
            if (!cb) continue;
            bool paired = false;
            for (size_t k = 0; k < m->n_tensors && !paired; k++) {
                const char *o = m->tensors[k].name;
                paired = strip_suffix(o, SUMS_SUFFIX) == cb && strncmp(o, tn, cb) == 0;
            }
            if (!paired)
                return MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-pair", "%s: mismatched sums and counts for '%.*s' (no "
                               "in_sum2)", path, (int)cb, tn);
            continue;
        }
        struct mq_imatrix_entry *e = &im->entries[im->n_entries];
        if (!(e->name = strndup(tn, base))) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
        im->n_entries++;
        char cname[MQ_GGUF_MAX_NAME + 1 + sizeof COUNTS_SUFFIX];
        snprintf(cname, sizeof cname, "%s%s", e->name, COUNTS_SUFFIX);
        long ci = mq_model_find(m, cname);
        if (ci < 0)
            return MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-pair", "%s: mismatched sums and counts for '%s' (no counts)",
                           path, e->name);
        float *counts = NULL;
        uint64_t c0, c1;
        MQ_TRY(read_f32_tensor(m, i, path, &e->values, &e->n_per_row, &e->n_mat, err));
        MQ_TRY(read_f32_tensor(m, (size_t)ci, path, &counts, &c0, &c1, err));
        if (c0 * c1 != e->n_mat) {
            free(counts);
            return MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-shape", "%s: entry '%s': %llu counts for %llu matrices", path,
                           e->name, (unsigned long long)(c0 * c1), (unsigned long long)e->n_mat);
        }
        for (uint64_t j = 0; j < e->n_mat; j++) {
            float *row = e->values + j * e->n_per_row;
            for (uint64_t c = 0; c < e->n_per_row; c++) row[c] = counts[j] > 0.0f ? row[c] / counts[j] : 1.0f;
        }
        free(counts);
    }
    if (im->n_entries == 0)
        return MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-entries", "%s: no importance matrix entries (no *.in_sum2 "
                       "tensors)", path);
    return sort_entries(im, err);
}

enum mq_status mq_imatrix_load(const char *path, struct mq_imatrix **out, struct mq_error *err)
{
    *out = NULL;
    if (!path) return MQ_FAIL(err, MQ_E_USAGE, "imatrix", "no importance matrix file given");
    int fd;
    uint64_t size;
    MQ_TRY(mq_open_regular(path, &fd, &size, err));
    uint8_t magic[4] = {0};
    enum mq_status s = size >= 4 ? mq_pread_full(fd, path, magic, 4, 0, err) : MQ_OK;
    close(fd);
    MQ_TRY(s);
    struct mq_imatrix *im = calloc(1, sizeof *im);
    if (!im || !(im->path = strdup(path))) {
        free(im);
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
    }
    if (memcmp(magic, MQ_GGUF_MAGIC, 4) == 0) {
        im->format = MQ_IMATRIX_GGUF;
        struct mq_model *m = calloc(1, sizeof *m);
        if (!m) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
        else {
            m->format = "gguf";
            s = read_gguf(im, m, err);
            mq_model_free(m);
        }
    } else {
        im->format = MQ_IMATRIX_LEGACY;
        s = read_legacy(im, err);
    }
    if (s != MQ_OK) {
        mq_imatrix_free(im);
        return s;
    }
    *out = im;
    return MQ_OK;
}
