/*
** xform.c - per-tensor transforms (plan.h: enum mq_xform_kind): what each needs from chunking,
** the checks when one is added, and their application to a chunk's f32 values.
**
** The engine (convert_run.c) asks only this file: mq_xform_whole_rows() (no piece of a row),
** mq_xform_row_group() (rows per chunk a multiple of this), mq_xform_transposed() (the loader
** reads columns), then mq_xform_apply() on every chunk once its source is f32. Every op acts on
** one chunk alone, so the bytes do not depend on chunking or threads.
*/
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "lora_merge.h"
#include "plan.h"

/* What an op needs and does. */
static const struct xform_info {
    const char *name;
    bool whole_rows;  /* a chunk never cuts a row */
    bool moves_rows;  /* the op reorders rows (order matters against TRANSPOSE) */
} XF[MQ_XFORM_COUNT] = {
    [MQ_XFORM_PERMUTE_HEADS] = {"permute_heads", true, true},
    [MQ_XFORM_TRANSPOSE] = {"transpose", true, true},
    [MQ_XFORM_ADD_CONST] = {"add_const", false, false},
    [MQ_XFORM_ADD_LORA] = {"add_lora", false, false},
};

enum mq_status mq_plan_add_xform(struct mq_plan_tensor *t, struct mq_xform x, struct mq_error *err)
{
    if ((unsigned)x.kind >= MQ_XFORM_COUNT || t->nxf >= MQ_MAX_XFORMS)
        return MQ_FAIL(err, MQ_E_INTERNAL, "xform", "tensor %s: too many transforms", t->name);
    const char *what = XF[x.kind].name;
    if (t->kind == MQ_SRC_RAW || t->kind == MQ_SRC_GENERATED)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "xform-source",
                       "tensor %s: %s needs float or dequantizable values, the tensor is copied unchanged",
                       t->name, what);
    switch (x.kind) {
    case MQ_XFORM_PERMUTE_HEADS:
        if (t->ndim == 1) { /* a bias: its elements move like rows of one element */
            t->rows = t->numel;
            t->row_len = 1;
        }
        if (x.n == 0 || t->rows == 0 || t->rows % x.n || (t->rows / x.n) % 2)
            return MQ_FAIL(err, MQ_E_CORRUPT, "qk-shape", "tensor %s: %" PRIu64 " rows do not split into %" PRIu64
                           " heads of even size", t->name, t->rows, x.n);
        break;
    case MQ_XFORM_TRANSPOSE:
        for (size_t k = 0; k < t->nxf; k++)
            if (XF[t->xf[k].kind].moves_rows)
                return MQ_FAIL(err, MQ_E_INTERNAL, "xform", "tensor %s: transpose after %s", t->name,
                               XF[t->xf[k].kind].name);
        if (t->kind != MQ_SRC_FLOAT || t->ndim != 2 || t->nseg != 1 || mq_plan_seg(t, 0)->first != 0 ||
            mq_plan_seg(t, 0)->n != t->numel)
            return MQ_FAIL(err, MQ_E_UNSUPPORTED, "xform-source",
                           "tensor %s: transpose reads one whole 2-D F32/F16/BF16 tensor", t->name);
        {
            uint64_t a = t->shape[0], b = t->shape[1];
            t->shape[0] = b;
            t->shape[1] = a;
            t->row_len = a;
            t->rows = b;
        }
        break;
    case MQ_XFORM_ADD_LORA:
        if (t->nxf != 0 || !x.lora)
            return MQ_FAIL(err, MQ_E_INTERNAL, "xform", "tensor %s: add_lora must come first", t->name);
        break;
    case MQ_XFORM_ADD_CONST:
        if (!isfinite(x.c))
            return MQ_FAIL(err, MQ_E_INTERNAL, "xform", "tensor %s: add_const %g is not finite", t->name, (double)x.c);
        break;
    default:
        break;
    }
    t->xf[t->nxf++] = x;
    return MQ_OK;
}

bool mq_xform_whole_rows(const struct mq_plan_tensor *t)
{
    for (size_t k = 0; k < t->nxf; k++)
        if (XF[t->xf[k].kind].whole_rows) return true;
    return false;
}

uint64_t mq_xform_row_group(const struct mq_plan_tensor *t)
{
    for (size_t k = 0; k < t->nxf; k++)
        if (t->xf[k].kind == MQ_XFORM_PERMUTE_HEADS) return t->rows / t->xf[k].n; /* one head; one such op */
    return 0;
}

bool mq_xform_transposed(const struct mq_plan_tensor *t)
{
    for (size_t k = 0; k < t->nxf; k++)
        if (t->xf[k].kind == MQ_XFORM_TRANSPOSE) return true;
    return false;
}

/* Rows [row0, row0 + nrows) of row_len values, whole heads of hd rows (row0 a multiple of hd). */
static void permute_heads(float *v, float *tmp, uint64_t nrows, uint64_t hd, uint64_t row_len)
{
    memcpy(tmp, v, (size_t)(nrows * row_len) * sizeof *v);
    size_t rb = (size_t)row_len * sizeof *v;
    for (uint64_t h = 0; h < nrows / hd; h++)
        for (uint64_t i = 0; i < hd / 2; i++)
            for (uint64_t j = 0; j < 2; j++)
                memcpy(v + (h * hd + 2 * i + j) * row_len, tmp + (h * hd + j * (hd / 2) + i) * row_len, rb);
}

void mq_xform_apply(const struct mq_plan_tensor *t, uint64_t row0, uint64_t nrows, uint64_t first, size_t n,
                    float *v, float *tmp)
{
    (void)row0;
    for (size_t k = 0; k < t->nxf; k++) {
        const struct mq_xform *x = &t->xf[k];
        switch (x->kind) {
        case MQ_XFORM_PERMUTE_HEADS:
            permute_heads(v, tmp, nrows, t->rows / x->n, t->row_len);
            break;
        case MQ_XFORM_ADD_CONST:
            for (size_t i = 0; i < n; i++) v[i] += x->c;
            break;
        case MQ_XFORM_ADD_LORA: /* first: the values are still in the base's row order */
            mq_lora_merge_apply(t, x->lora, first, n, v);
            break;
        case MQ_XFORM_TRANSPOSE: /* done by the loader */
        default:
            break;
        }
    }
}
