/* tensor_view.c - PyTorch storage views: extents, CRC-32 of storages, gathering strided reads. */
#include "tensor_view.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ckd.h"
#include "fileio.h"

/* Scratch for one run of a strided read, and the unit of CRC checking. */
#define SPAN_BYTES (1u << 20)

struct mq_storage *mq_storage_new(uint32_t file, const char *entry, uint64_t offset, uint64_t nbytes, uint32_t crc32)
{
    struct mq_storage *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->entry = strdup(entry);
    if (!s->entry) {
        free(s);
        return NULL;
    }
    s->refs = 1;
    s->file = file;
    s->offset = offset;
    s->nbytes = nbytes;
    s->crc32 = crc32;
    return s;
}

void mq_storage_unref(struct mq_storage *s)
{
    if (!s || --s->refs > 0) return;
    free(s->entry);
    free(s);
}

void mq_view_free(struct mq_view *v)
{
    if (!v) return;
    mq_storage_unref(v->storage);
    free(v);
}

int mq_view_extent(uint64_t elem_offset, uint32_t ndim, const uint64_t *shape, const uint64_t *stride, uint64_t *out)
{
    *out = 0;
    for (uint32_t d = 0; d < ndim; d++)
        if (shape[d] == 0) return 0;
    uint64_t last = elem_offset, step;
    for (uint32_t d = 0; d < ndim; d++) {
        if (mq_ckd_mul_u64(&step, shape[d] - 1, stride[d]) || mq_ckd_add_u64(&last, last, step)) return 1;
    }
    return mq_ckd_add_u64(out, last, 1);
}

bool mq_view_is_contiguous(uint32_t ndim, const uint64_t *shape, const uint64_t *stride)
{
    uint64_t want = 1;
    for (uint32_t d = ndim; d-- > 0;) {
        if (shape[d] == 1) continue;
        if (stride[d] != want) return false;
        want *= shape[d]; /* <= numel, proven not to overflow at open */
    }
    return true;
}

/* Checks the storage entry's CRC-32 once (every reader thread may race to do it: harmless). */
static enum mq_status check_crc(const struct mq_model *m, const struct mq_tensor *t, struct mq_storage *s,
                                struct mq_error *err)
{
    int state = __atomic_load_n(&s->checked, __ATOMIC_ACQUIRE);
    const struct mq_file *f = &m->files[s->file];
    if (state == 0) {
        uint8_t *buf = malloc(SPAN_BYTES);
        if (!buf) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory checking '%s'", s->entry);
        uLong crc = crc32(0L, Z_NULL, 0);
        enum mq_status st = MQ_OK;
        for (uint64_t at = 0; at < s->nbytes && st == MQ_OK;) {
            size_t n = s->nbytes - at < SPAN_BYTES ? (size_t)(s->nbytes - at) : SPAN_BYTES;
            st = mq_pread_full(f->fd, f->path, buf, n, s->offset + at, err);
            if (st == MQ_OK) crc = crc32(crc, buf, (uInt)n);
            at += n;
        }
        free(buf);
        if (st != MQ_OK) return st;
        state = (uint32_t)crc == s->crc32 ? 1 : 2;
        __atomic_store_n(&s->checked, state, __ATOMIC_RELEASE);
    }
    if (state == 2)
        return MQ_FAIL(err, MQ_E_CORRUPT, "zip-crc",
                       "%s: zip-crc: entry '%s' (the storage of tensor '%s') does not match its CRC-32 %08x", f->path,
                       s->entry, t->name, (unsigned)s->crc32);
    return MQ_OK;
}

struct gather {
    const struct mq_file *f;
    const struct mq_storage *s;
    uint32_t esz;
    uint8_t *scratch; /* SPAN_BYTES, allocated on first need */
    struct mq_error *err;
};

/*
** `count` storage elements start, start+stride, ... to out, out+out_step, ... (in elements).
** Contiguous runs to contiguous output are one pread; anything else reads spans of at most
** SPAN_BYTES (a stride wider than that: one pread per element) and picks the elements.
*/
static enum mq_status seg(struct gather *g, uint64_t start, uint64_t stride, uint64_t count, uint8_t *out,
                          uint64_t out_step)
{
    const uint64_t esz = g->esz;
    if ((stride == 1 || count == 1) && out_step == 1)
        return mq_pread_full(g->f->fd, g->f->path, out, (size_t)(count * esz), g->s->offset + start * esz, g->err);
    if (!g->scratch && !(g->scratch = malloc(SPAN_BYTES)))
        return MQ_FAIL(g->err, MQ_E_NOMEM, "alloc", "out of memory gathering '%s'", g->s->entry);
    uint64_t per; /* elements per span read */
    if (stride == 0) per = count;
    else if (stride * esz > SPAN_BYTES) per = 1;
    else per = (SPAN_BYTES / esz - 1) / stride + 1;
    for (uint64_t done = 0; done < count;) {
        uint64_t k = count - done < per ? count - done : per;
        uint64_t span = stride ? ((k - 1) * stride + 1) * esz : esz;
        MQ_TRY(mq_pread_full(g->f->fd, g->f->path, g->scratch, (size_t)span, g->s->offset + (start + done * stride) * esz,
                             g->err));
        for (uint64_t i = 0; i < k; i++)
            memcpy(out + (done + i) * out_step * esz, g->scratch + i * stride * esz, (size_t)esz);
        done += k;
    }
    return MQ_OK;
}

/*
** Logical (row-major) elements [e0, e1) of a strided view into out. Dimensions of size 1 are
** dropped first (they do not change the order). Rows are the innermost dimension: partial rows
** and rows whose elements are contiguous go row by row; whole rows of a 2-D view whose columns
** are the contiguous direction (a transpose) go column by column, one run of nrows per column.
*/
static enum mq_status gather_range(struct gather *g, const struct mq_view *v, uint64_t e0, uint64_t e1, uint8_t *out)
{
    uint64_t shp[MQ_MAX_DIMS], str[MQ_MAX_DIMS];
    uint32_t n = 0;
    for (uint32_t d = 0; d < v->ndim; d++)
        if (v->shape[d] != 1) shp[n] = v->shape[d], str[n++] = v->stride[d];
    if (n == 0) return seg(g, v->elem_offset, 1, e1 - e0, out, 1);
    const uint64_t L = shp[n - 1], sL = str[n - 1], esz = g->esz;
    for (uint64_t e = e0; e < e1;) {
        uint64_t row = e / L, c = e % L;
        uint64_t base = v->elem_offset; /* storage index of (row, 0) */
        for (uint32_t d = n - 1; d-- > 0;) {
            base += (row % shp[d]) * str[d];
            row /= shp[d];
        }
        uint8_t *o = out + (e - e0) * esz;
        if (c != 0 || e1 - e < L) {
            uint64_t k = L - c < e1 - e ? L - c : e1 - e;
            MQ_TRY(seg(g, base + c * sL, sL, k, o, 1));
            e += k;
        } else if (n == 2 && sL != 1) {
            uint64_t nrows = (e1 - e) / L;
            for (uint64_t j = 0; j < L; j++) MQ_TRY(seg(g, base + j * sL, str[0], nrows, o + j * esz, L));
            e += nrows * L;
        } else {
            MQ_TRY(seg(g, base, sL, L, o, 1));
            e += L;
        }
    }
    return MQ_OK;
}

enum mq_status mq_view_read(const struct mq_model *m, const struct mq_tensor *t, uint64_t off, void *buf, size_t len,
                            struct mq_error *err)
{
    const struct mq_view *v = t->view;
    if (len == 0) return MQ_OK;
    MQ_TRY(check_crc(m, t, v->storage, err));
    const struct mq_file *f = &m->files[v->storage->file];
    const uint64_t esz = v->esz;
    if (v->contiguous)
        return mq_pread_full(f->fd, f->path, buf, len, v->storage->offset + v->elem_offset * esz + off, err);
    struct gather g = {f, v->storage, v->esz, NULL, err};
    uint64_t e0 = off / esz, e1 = mq_div_ceil_u64(off + len, esz);
    enum mq_status s;
    if (off % esz == 0 && len % esz == 0) {
        s = gather_range(&g, v, e0, e1, buf);
    } else { /* a byte range that cuts elements: gather whole elements, keep the bytes asked for */
        uint8_t *tmp = malloc((size_t)((e1 - e0) * esz));
        if (!tmp) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory reading tensor '%s'", t->name);
        s = gather_range(&g, v, e0, e1, tmp);
        if (s == MQ_OK) memcpy(buf, tmp + (off - e0 * esz), len);
        free(tmp);
    }
    free(g.scratch);
    return s;
}
