/* model.c - lifetime and data access of an opened checkpoint (format-independent). */
#include "model_build.h"

#include "fileio.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckd.h"
#include "fileio.h"
#include "tensor_view.h"

struct mq_model *mq_model_new(const char *input_path)
{
    struct mq_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->config.tie_word_embeddings = -1;
    m->input_path = strdup(input_path);
    if (!m->input_path) {
        free(m);
        return NULL;
    }
    return m;
}

void mq_model_free(struct mq_model *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n_files; i++) {
        if (m->files[i].fd >= 0) close(m->files[i].fd);
        free(m->files[i].path);
    }
    free(m->files);
    for (size_t i = 0; i < m->n_tensors; i++) {
        free(m->tensors[i].name);
        free(m->tensors[i].bnb);
        if (m->tensors[i].fp8) free(m->tensors[i].fp8->scale_name);
        free(m->tensors[i].fp8);
        mq_view_free(m->tensors[i].view);
    }
    free(m->tensors);
    for (size_t i = 0; i < m->n_metadata; i++) {
        free(m->metadata[i].key);
        free(m->metadata[i].value);
    }
    free(m->metadata);
    mq_meta_free(&m->meta);
    for (size_t i = 0; i < m->n_warnings; i++) free(m->warnings[i]);
    free(m->warnings);
    free(m->config.path);
    cJSON_Delete(m->config.json);
    if (m->lora) free(m->lora->path);
    free(m->lora);
    free(m->input_path);
    free(m);
}

/* Grows *arr (of elem bytes) so that index `n` is valid; capacity doubles. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap <= n) ncap *= 2;
    size_t bytes;
    if (mq_ckd_mul_size(&bytes, ncap, elem)) return 1;
    void *p = realloc(*arr, bytes);
    if (!p) return 1;
    *arr = p;
    *cap = ncap;
    return 0;
}

enum mq_status mq_model_add_file(struct mq_model *m, const char *path, int fd, uint64_t size,
                                 uint32_t *index, struct mq_error *err)
{
    if (grow((void **)&m->files, &m->cap_files, m->n_files, sizeof *m->files))
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
    char *p = strdup(path);
    if (!p) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "%s: out of memory", path);
    struct mq_file *f = &m->files[m->n_files];
    memset(f, 0, sizeof *f);
    f->path = p;
    f->fd = fd;
    f->size = size;
    *index = (uint32_t)m->n_files++;
    return MQ_OK;
}

enum mq_status mq_model_open_file(struct mq_model *m, const char *path, int *fd, uint64_t *size, uint32_t *file,
                                  struct mq_error *err)
{
    MQ_TRY(mq_open_regular(path, fd, size, err));
    enum mq_status s = mq_model_add_file(m, path, *fd, *size, file, err);
    if (s != MQ_OK) close(*fd);
    return s;
}

enum mq_status mq_model_add_tensor(struct mq_model *m, const struct mq_tensor *t, struct mq_error *err)
{
    if (grow((void **)&m->tensors, &m->cap_tensors, m->n_tensors, sizeof *m->tensors))
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory adding tensor '%s'", t->name);
    m->tensors[m->n_tensors++] = *t;
    return MQ_OK;
}

enum mq_status mq_model_add_kv(struct mq_model *m, const char *key, const char *value, struct mq_error *err)
{
    if (grow((void **)&m->metadata, &m->cap_metadata, m->n_metadata, sizeof *m->metadata))
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    }
    m->metadata[m->n_metadata].key = k;
    m->metadata[m->n_metadata].value = v;
    m->n_metadata++;
    return MQ_OK;
}

enum mq_status mq_model_warn(struct mq_model *m, struct mq_error *err, const char *fmt, ...)
{
    if (grow((void **)&m->warnings, &m->cap_warnings, m->n_warnings, sizeof *m->warnings))
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *w = strdup(buf);
    if (!w) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    m->warnings[m->n_warnings++] = w;
    return MQ_OK;
}

long mq_model_find(const struct mq_model *m, const char *name)
{
    for (size_t i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return (long)i;
    return -1;
}

enum mq_status mq_model_read(const struct mq_model *m, size_t t, uint64_t offset, void *buf,
                             size_t len, struct mq_error *err)
{
    if (t >= m->n_tensors) return MQ_FAIL(err, MQ_E_USAGE, "tensor-index", "tensor index %zu out of range", t);
    const struct mq_tensor *ts = &m->tensors[t];
    uint64_t end;
    if (mq_ckd_add_u64(&end, offset, len) || end > ts->nbytes)
        return MQ_FAIL(err, MQ_E_USAGE, "read-range", "tensor '%s': read past its %llu bytes", ts->name,
                       (unsigned long long)ts->nbytes);
    if (ts->fp8) return mq_fp8_source_read(m, ts, offset, buf, len, err);
    if (ts->view) return mq_view_read(m, ts, offset, buf, len, err);
    const struct mq_file *f = &m->files[ts->file];
    uint8_t *dst = buf;
    uint64_t pos = ts->offset + offset;
    while (len > 0) {
        ssize_t r = pread(f->fd, dst, len, (off_t)pos);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            MQ_FAIL(err, MQ_E_IO, "read", "%s: tensor '%s': read failed: %s", f->path, ts->name, strerror(e));
            if (err) err->sys_errno = e;
            return MQ_E_IO;
        }
        if (r == 0)
            return MQ_FAIL(err, MQ_E_IO, "read", "%s: tensor '%s': file shrank while reading", f->path, ts->name);
        dst += r;
        pos += (uint64_t)r;
        len -= (size_t)r;
    }
    return MQ_OK;
}

uint64_t mq_tensor_row_len(const struct mq_tensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }

uint64_t mq_tensor_rows(const struct mq_tensor *t)
{
    uint64_t rl = mq_tensor_row_len(t);
    return rl ? t->numel / rl : 0;
}
