/*
** plan_access.c - the plan as a writer plug-in sees it (include/modelq/plugin.h): read through
** mq_plan_tensor_info, changed only through the setters. struct mq_plan itself stays private
** (plan.h), so the pipeline may change it without touching the writers that use this API.
*/
#include "plan.h"

#include <stdlib.h>
#include <string.h>

size_t mq_plan_n_tensors(const struct mq_plan *p) { return p->n; }
const char *mq_plan_tensor_name(const struct mq_plan *p, size_t i) { return i < p->n ? p->t[i].name : NULL; }

bool mq_plan_tensor_info(const struct mq_plan *p, size_t i, struct mq_plan_tensor_info *out)
{
    memset(out, 0, sizeof *out);
    if (i >= p->n) return false;
    const struct mq_plan_tensor *t = &p->t[i];
    out->name = t->name;
    out->ndim = t->ndim;
    memcpy(out->shape, t->shape, sizeof out->shape);
    out->numel = t->numel;
    out->row_len = t->row_len;
    out->rows = t->rows;
    out->convert = t->convert;
    out->codec = t->codec;
    out->params = t->params;
    out->quantized = t->quantized;
    out->raw_dtype = t->raw_dtype;
    out->raw_ggml_type = t->raw_ggml_type;
    out->bytes = t->bytes;
    out->offset = t->offset;
    out->generated = t->nseg == 0;
    out->float_source = t->kind == MQ_SRC_FLOAT;
    out->raw_source = t->kind == MQ_SRC_RAW;
    out->src_dtype = t->nseg ? mq_plan_src_tensor(p, t)->dtype : MQ_DTYPE_F32;
    out->src_index = t->nseg ? (long)mq_plan_seg(t, 0)->tensor : -1;
    out->xxh3 = t->xxh3;
    return true;
}

const struct mq_model *mq_plan_model(const struct mq_plan *p) { return p->model; }
const struct mq_convert_options *mq_plan_options(const struct mq_plan *p) { return p->opt; }
enum mq_target mq_plan_target(const struct mq_plan *p) { return p->target; }
struct mq_meta *mq_plan_meta(struct mq_plan *p) { return &p->meta; }
void *mq_plan_writer_state(const struct mq_plan *p) { return p->writer_state; }
void mq_plan_set_writer_state(struct mq_plan *p, void *state) { p->writer_state = state; }
void mq_plan_tensor_set_offset(struct mq_plan *p, size_t i, uint64_t offset) { p->t[i].offset = offset; }

void mq_plan_tensor_set_side(struct mq_plan *p, size_t i, uint64_t side_offset, bool keep)
{
    p->t[i].side_offset = side_offset;
    p->t[i].side_keep = keep;
}

enum mq_status mq_plan_add_generated(struct mq_plan *p, const char *name, float *v, uint64_t n, struct mq_error *err)
{
    enum mq_status s = mq_plan_add(p, name, -1, err);
    if (s != MQ_OK) {
        free(v);
        return s;
    }
    struct mq_plan_tensor *t = &p->t[p->n - 1];
    t->kind = MQ_SRC_GENERATED;
    t->src_codec = MQ_CODEC_F32;
    t->ndim = 1;
    t->shape[0] = n;
    t->numel = t->row_len = n;
    t->rows = 1;
    t->raw_dtype = MQ_DTYPE_F32;
    t->generated = v;
    return MQ_OK;
}

enum mq_status mq_plan_tensor_set_name(struct mq_plan *p, size_t i, const char *name, struct mq_error *err)
{
    char *dup = strdup(name);
    if (!dup) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory renaming tensor %s", p->t[i].name);
    free(p->t[i].name);
    p->t[i].name = dup;
    return MQ_OK;
}

enum mq_status mq_plan_tensor_permute_heads(struct mq_plan *p, size_t i, uint64_t n_heads, struct mq_error *err)
{
    return mq_plan_add_xform(&p->t[i], (struct mq_xform){.kind = MQ_XFORM_PERMUTE_HEADS, .n = n_heads}, err);
}

enum mq_status mq_plan_tensor_add_const(struct mq_plan *p, size_t i, float c, struct mq_error *err)
{
    return mq_plan_add_xform(&p->t[i], (struct mq_xform){.kind = MQ_XFORM_ADD_CONST, .c = c}, err);
}

enum mq_status mq_plan_keep(struct mq_plan *p, const size_t *order, size_t n, struct mq_error *err)
{
    bool *kept = calloc(p->n ? p->n : 1, sizeof *kept);
    struct mq_plan_tensor *nt = malloc((n ? n : 1) * sizeof *nt);
    if (!kept || !nt) {
        free(kept);
        free(nt);
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    }
    for (size_t k = 0; k < n; k++) {
        if (order[k] >= p->n || kept[order[k]]) {
            free(kept);
            free(nt);
            return MQ_FAIL(err, MQ_E_INTERNAL, "plan-keep", "tensor %zu kept twice or past the last (%zu)", order[k],
                           p->n);
        }
        kept[order[k]] = true;
        nt[k] = p->t[order[k]];
    }
    for (size_t i = 0; i < p->n; i++)
        if (!kept[i]) mq_plan_tensor_release(&p->t[i]);
    memcpy(p->t, nt, n * sizeof *nt);
    p->n = n;
    free(kept);
    free(nt);
    return MQ_OK;
}

enum mq_status mq_plan_tensor_read_transposed(struct mq_plan *p, size_t i, struct mq_error *err)
{
    struct mq_plan_tensor *t = &p->t[i];
    MQ_TRY(mq_plan_add_xform(t, (struct mq_xform){.kind = MQ_XFORM_TRANSPOSE}, err));
    /* the shape changed: so may the bytes of a codec whose blocks follow the rows */
    if (t->convert) MQ_TRY(mq_codec_tensor_bytes(t->codec, &t->params, t->numel, t->row_len, &t->bytes, err));
    return MQ_OK;
}

void mq_plan_set_files(struct mq_plan *p, size_t n, const char *const *names, const uint64_t *sizes)
{
    p->n_files = n;
    p->file_names = names;
    p->file_sizes = sizes;
}

void mq_plan_set_sizes(struct mq_plan *p, uint64_t data_start, uint64_t file_size)
{
    p->data_start = data_start;
    p->file_size = file_size;
}

void mq_plan_set_file_size(struct mq_plan *p, uint64_t file_size) { p->file_size = file_size; }
void mq_plan_set_side_bytes(struct mq_plan *p, uint64_t bytes) { p->side_bytes = bytes; }
int mq_plan_file_type(const struct mq_plan *p) { return p->file_type; }
void mq_plan_set_file_type(struct mq_plan *p, int file_type) { p->file_type = file_type; }
uint64_t mq_plan_data_start(const struct mq_plan *p) { return p->data_start; }
void mq_plan_set_split_set(struct mq_plan *p, bool split_set) { p->split_set = split_set; }
