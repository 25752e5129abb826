/* bnbwrite.c - development-only bitsandbytes-style safetensors writer (see bnbwrite.h). */
#include "bnbwrite.h"

#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "modelq/quant.h"

#define BNBW_MAX_DIMS 8

struct bnbw_tensor {
    char *name;
    char dtype[16];
    unsigned ndim;
    uint64_t shape[BNBW_MAX_DIMS];
    uint8_t *data;
    size_t nbytes;
};

struct bnbw {
    struct bnbw_tensor *t;
    size_t n, cap;
};

struct bnbw *bnbw_new(void) { return calloc(1, sizeof(struct bnbw)); }

static void tensor_release(struct bnbw_tensor *t)
{
    free(t->name);
    free(t->data);
}

void bnbw_free(struct bnbw *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) tensor_release(&w->t[i]);
    free(w->t);
    free(w);
}

static long find(const struct bnbw *w, const char *name)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0) return (long)i;
    return -1;
}

int bnbw_remove(struct bnbw *w, const char *name)
{
    long i = find(w, name);
    if (i < 0) return -1;
    tensor_release(&w->t[i]);
    memmove(&w->t[i], &w->t[i + 1], (w->n - (size_t)i - 1) * sizeof *w->t);
    w->n--;
    return 0;
}

uint8_t *bnbw_data(struct bnbw *w, const char *name, size_t *nbytes)
{
    long i = find(w, name);
    if (i < 0) return NULL;
    if (nbytes) *nbytes = w->t[i].nbytes;
    return w->t[i].data;
}

int bnbw_add(struct bnbw *w, const char *name, const char *dtype, unsigned ndim, const uint64_t *shape,
             const void *data, size_t nbytes)
{
    if (ndim > BNBW_MAX_DIMS || strlen(dtype) >= sizeof w->t[0].dtype) return -1;
    bnbw_remove(w, name);
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 32;
        struct bnbw_tensor *t = realloc(w->t, cap * sizeof *t);
        if (!t) return -1;
        w->t = t;
        w->cap = cap;
    }
    struct bnbw_tensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->data = malloc(nbytes ? nbytes : 1);
    if (!t->name || !t->data) {
        tensor_release(t);
        return -1;
    }
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
    t->ndim = ndim;
    for (unsigned d = 0; d < ndim; d++) t->shape[d] = shape[d];
    if (nbytes) memcpy(t->data, data, nbytes);
    t->nbytes = nbytes;
    w->n++;
    return 0;
}

static void put_f32le(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(u >> (8 * i));
}

/* n float32 values as little-endian F32 bytes (malloc'd). */
static uint8_t *f32_bytes(const float *v, size_t n)
{
    uint8_t *b = malloc(n ? n * 4 : 1);
    if (b)
        for (size_t i = 0; i < n; i++) put_f32le(b + 4 * i, v[i]);
    return b;
}

static int add_f32(struct bnbw *w, const char *name, const float *v, size_t n)
{
    uint8_t *b = f32_bytes(v, n);
    uint64_t shape[1] = {n};
    int rc = b ? bnbw_add(w, name, "F32", 1, shape, b, n * 4) : -1;
    free(b);
    return rc;
}

void bnbw_py_repr(double v, char *buf, size_t cap)
{
    if (v == 0) {
        snprintf(buf, cap, "%s", signbit(v) ? "-0.0" : "0.0");
        return;
    }
    char e[40];
    int p = 1;
    for (; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    /* e = [-]D[.DDD]e[+-]XX : digits and decimal exponent */
    char digits[24];
    size_t nd = 0;
    const char *q = e;
    bool neg = *q == '-';
    if (neg) q++;
    for (; *q && *q != 'e'; q++)
        if (*q != '.') digits[nd++] = *q;
    digits[nd] = '\0';
    int exp10 = atoi(q + 1);
    char out[64];
    size_t o = 0;
    if (neg) out[o++] = '-';
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 < 0) {
            out[o++] = '0';
            out[o++] = '.';
            for (int k = 0; k < -exp10 - 1; k++) out[o++] = '0';
            for (size_t k = 0; k < nd; k++) out[o++] = digits[k];
        } else {
            for (int k = 0; k <= exp10; k++) out[o++] = (size_t)k < nd ? digits[k] : '0';
            out[o++] = '.';
            if ((size_t)exp10 + 1 < nd)
                for (size_t k = (size_t)exp10 + 1; k < nd; k++) out[o++] = digits[k];
            else
                out[o++] = '0';
        }
        out[o] = '\0';
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (size_t k = 1; k < nd; k++) out[o++] = digits[k];
        }
        snprintf(out + o, sizeof out - o, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    }
    snprintf(buf, cap, "%s", out);
}

size_t bnbw_qstate_json(char *buf, size_t cap, const char *quant_type, unsigned blocksize, const char *dtype,
                        unsigned ndim, const uint64_t *shape, bool nested, float offset)
{
    char sh[256] = "";
    size_t o = 0;
    for (unsigned d = 0; d < ndim; d++)
        o += (size_t)snprintf(sh + o, sizeof sh - o, "%s%" PRIu64, d ? ", " : "", shape[d]);
    int n;
    if (nested) {
        char off[40];
        bnbw_py_repr((double)offset, off, sizeof off);
        n = snprintf(buf, cap,
                     "{\"quant_type\": \"%s\", \"blocksize\": %u, \"dtype\": \"%s\", \"shape\": [%s], "
                     "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": %s}",
                     quant_type, blocksize, dtype, sh, off);
    } else {
        n = snprintf(buf, cap, "{\"quant_type\": \"%s\", \"blocksize\": %u, \"dtype\": \"%s\", \"shape\": [%s]}",
                     quant_type, blocksize, dtype, sh);
    }
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

int bnbw_add_4bit(struct bnbw *w, const char *weight, enum mq_codec codec, unsigned blocksize, bool double_quant,
                  const char *dtype, unsigned ndim, const uint64_t *shape, const float *x)
{
    if (codec != MQ_CODEC_NF4 && codec != MQ_CODEC_FP4) return -1;
    const char *qt = codec == MQ_CODEC_FP4 ? "fp4" : "nf4";
    uint64_t n = 1;
    for (unsigned d = 0; d < ndim; d++) n *= shape[d];
    uint64_t nb = (n + blocksize - 1) / blocksize, packed = n / 2 + (n & 1);
    uint8_t *data = malloc(packed ? packed : 1);
    float *absmax = malloc((nb ? nb : 1) * sizeof *absmax);
    uint8_t *qabs = malloc(nb ? nb : 1);
    float *nested = malloc(((nb + 255) / 256 + 1) * sizeof *nested);
    int rc = -1;
    char name[512], js[1024];
    if (!data || !absmax || !qabs || !nested) goto out;
    struct mq_codec_params params = {blocksize, false};
    struct mq_qbuf q = {data, absmax, NULL};
    struct mq_error err;
    if (n && mq_quantize(codec, &params, x, (size_t)n, 0, &q, false, &err) != MQ_OK) goto out;
    uint64_t wshape[2] = {packed, 1};
    if (bnbw_add(w, weight, "U8", 2, wshape, data, (size_t)packed)) goto out;
    float offset = 0.0f;
    snprintf(name, sizeof name, "%s.absmax", weight);
    if (double_quant) {
        mq_bnb_double_quant(absmax, (size_t)nb, qabs, nested, &offset);
        uint64_t s1[1] = {nb};
        if (bnbw_add(w, name, "U8", 1, s1, qabs, (size_t)nb)) goto out;
        snprintf(name, sizeof name, "%s.nested_absmax", weight);
        if (add_f32(w, name, nested, (size_t)((nb + 255) / 256))) goto out;
        float map[256];
        mq_bnb_dynamic_map(map);
        snprintf(name, sizeof name, "%s.nested_quant_map", weight);
        if (add_f32(w, name, map, 256)) goto out;
    } else if (add_f32(w, name, absmax, (size_t)nb)) {
        goto out;
    }
    float book[16];
    for (unsigned c = 0; c < 16; c++) book[c] = codec == MQ_CODEC_FP4 ? mq_fp4_value(c) : mq_nf4_value(c);
    if (codec == MQ_CODEC_FP4) book[8] = 0.0f; /* bitsandbytes' table has +0 (Python's -0 is the int 0) */
    snprintf(name, sizeof name, "%s.quant_map", weight);
    if (add_f32(w, name, book, 16)) goto out;
    size_t jl = bnbw_qstate_json(js, sizeof js, qt, blocksize, dtype, ndim, shape, double_quant, offset);
    uint64_t js_shape[1] = {jl};
    snprintf(name, sizeof name, "%s.quant_state.bitsandbytes__%s", weight, qt);
    if (!jl || bnbw_add(w, name, "U8", 1, js_shape, js, jl)) goto out;
    rc = 0;
out:
    free(data);
    free(absmax);
    free(qabs);
    free(nested);
    return rc;
}

int bnbw_add_int8(struct bnbw *w, const char *prefix, uint64_t rows, uint64_t cols, const float *x,
                  bool weight_format)
{
    size_t n = (size_t)(rows * cols);
    uint8_t *q = malloc(n ? n : 1);
    float *scb = malloc((rows ? rows : 1) * sizeof *scb);
    int rc = -1;
    char name[512];
    if (!q || !scb) goto out;
    struct mq_qbuf out = {q, scb, NULL};
    struct mq_error err;
    if (n && mq_quantize(MQ_CODEC_INT8_ROW, NULL, x, n, (size_t)cols, &out, false, &err) != MQ_OK) goto out;
    uint64_t shape[2] = {rows, cols};
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (bnbw_add(w, name, "I8", 2, shape, q, n)) goto out;
    snprintf(name, sizeof name, "%s.SCB", prefix);
    if (add_f32(w, name, scb, (size_t)rows)) goto out;
    if (weight_format) {
        uint8_t zero = 0;
        snprintf(name, sizeof name, "%s.weight_format", prefix);
        if (bnbw_add(w, name, "U8", 0, NULL, &zero, 1)) goto out;
    }
    rc = 0;
out:
    free(q);
    free(scb);
    return rc;
}

static int cmp_tensor(const void *a, const void *b)
{
    return strcmp((*(const struct bnbw_tensor *const *)a)->name, (*(const struct bnbw_tensor *const *)b)->name);
}

/* A growing string. */
struct sbuf {
    char *p;
    size_t len, cap;
};

static int sb_printf(struct sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sb_printf(struct sbuf *s, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(s->p ? s->p + s->len : NULL, s->p ? s->cap - s->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return -1;
        if (s->p && (size_t)n < s->cap - s->len) {
            s->len += (size_t)n;
            return 0;
        }
        size_t cap = (s->cap + (size_t)n + 1) * 2;
        char *p = realloc(s->p, cap);
        if (!p) return -1;
        s->p = p;
        s->cap = cap;
    }
}

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k <= 0) return -1;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

int bnbw_write(const struct bnbw *w, const char *path)
{
    const struct bnbw_tensor **order = malloc((w->n ? w->n : 1) * sizeof *order);
    if (!order) return -1;
    for (size_t i = 0; i < w->n; i++) order[i] = &w->t[i];
    qsort(order, w->n, sizeof *order, cmp_tensor);
    struct sbuf h = {0};
    int rc = sb_printf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (size_t i = 0; i < w->n && !rc; i++) {
        const struct bnbw_tensor *t = order[i];
        rc |= sb_printf(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, t->dtype);
        for (unsigned d = 0; d < t->ndim; d++) rc |= sb_printf(&h, "%s%" PRIu64, d ? "," : "", t->shape[d]);
        rc |= sb_printf(&h, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + t->nbytes);
        off += t->nbytes;
    }
    rc |= sb_printf(&h, "}");
    while (!rc && h.len % 8) rc |= sb_printf(&h, " ");
    int fd = rc ? -1 : open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) rc = -1;
    if (!rc) {
        uint8_t n8[8];
        for (int i = 0; i < 8; i++) n8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
        rc = write_all(fd, n8, 8);
        if (!rc) rc = write_all(fd, h.p, h.len);
        for (size_t i = 0; i < w->n && !rc; i++) rc = write_all(fd, order[i]->data, order[i]->nbytes);
    }
    if (fd >= 0 && close(fd) != 0) rc = -1;
    free(h.p);
    free(order);
    return rc;
}
