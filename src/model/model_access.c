/*
** model_access.c - the public accessors of an opened model (include/modelq/model.h), which keeps
** struct mq_model and struct mq_tensor opaque; the definitions are in model_impl.h.
**
** Each accessor only reads a field: no allocation, no error. Index arguments past the end give
** NULL / false rather than undefined behaviour, since a library user iterates with them.
*/
#include "model_impl.h"

#include <string.h>

const char *mq_model_format(const struct mq_model *m) { return m->format; }
const char *mq_model_input_path(const struct mq_model *m) { return m->input_path; }
size_t mq_model_n_tensors(const struct mq_model *m) { return m->n_tensors; }

const struct mq_tensor *mq_model_tensor(const struct mq_model *m, size_t i)
{
    return i < m->n_tensors ? &m->tensors[i] : NULL;
}

size_t mq_model_n_files(const struct mq_model *m) { return m->n_files; }

bool mq_model_file_info(const struct mq_model *m, size_t i, struct mq_file_info *out)
{
    memset(out, 0, sizeof *out);
    if (i >= m->n_files) return false;
    const struct mq_file *f = &m->files[i];
    out->path = f->path;
    out->size = f->size;
    out->header_bytes = f->data_start;
    out->gguf_version = f->gguf_version;
    out->gguf_alignment = f->gguf_alignment;
    return true;
}

uint32_t mq_model_split_parts(const struct mq_model *m) { return m->split_parts; }
uint64_t mq_model_header_bytes_read(const struct mq_model *m) { return m->header_bytes_read; }
size_t mq_model_n_metadata(const struct mq_model *m) { return m->n_metadata; }

bool mq_model_metadata(const struct mq_model *m, size_t i, const char **key, const char **value)
{
    if (i >= m->n_metadata) return false;
    if (key) *key = m->metadata[i].key;
    if (value) *value = m->metadata[i].value;
    return true;
}

const struct mq_meta *mq_model_meta(const struct mq_model *m) { return &m->meta; }
const struct mq_config *mq_model_config(const struct mq_model *m) { return &m->config; }
const struct mq_lora_config *mq_model_lora(const struct mq_model *m) { return m->lora; }
size_t mq_model_n_warnings(const struct mq_model *m) { return m->n_warnings; }

const char *mq_model_warning(const struct mq_model *m, size_t i)
{
    return i < m->n_warnings ? m->warnings[i] : NULL;
}

const char *mq_tensor_name(const struct mq_tensor *t) { return t->name; }
enum mq_dtype mq_tensor_dtype(const struct mq_tensor *t) { return t->dtype; }
uint32_t mq_tensor_ndim(const struct mq_tensor *t) { return t->ndim; }
const uint64_t *mq_tensor_shape(const struct mq_tensor *t) { return t->shape; }
uint64_t mq_tensor_numel(const struct mq_tensor *t) { return t->numel; }
uint64_t mq_tensor_nbytes(const struct mq_tensor *t) { return t->nbytes; }
size_t mq_tensor_file(const struct mq_tensor *t) { return t->file; }
uint64_t mq_tensor_offset(const struct mq_tensor *t) { return t->offset; }
int32_t mq_tensor_ggml_type(const struct mq_tensor *t) { return t->from_gguf ? t->ggml_type : -1; }

enum mq_dtype mq_tensor_stored_dtype(const struct mq_tensor *t) { return t->fp8 ? t->fp8->stored : t->dtype; }

uint64_t mq_tensor_stored_bytes(const struct mq_tensor *t)
{
    return t->bnb ? t->bnb->stored_bytes : t->fp8 ? t->fp8->stored_bytes : t->nbytes;
}

bool mq_tensor_bnb_info(const struct mq_tensor *t, struct mq_bnb_info *out)
{
    memset(out, 0, sizeof *out);
    const struct mq_bnb_source *b = t->bnb;
    if (!b) return false;
    out->codec = b->codec;
    out->blocksize = b->codec == MQ_CODEC_INT8_ROW ? 0 : b->blocksize;
    out->double_quant = b->double_quant;
    out->n_stored = b->n_stored;
    out->packed_bytes = t->nbytes;
    out->stored_bytes = b->stored_bytes;
    return true;
}

bool mq_tensor_fp8_info(const struct mq_tensor *t, struct mq_fp8_info *out)
{
    memset(out, 0, sizeof *out);
    const struct mq_fp8_source *f = t->fp8;
    if (!f) return false;
    out->stored = f->stored;
    out->has_scale = f->has_scale;
    out->scale_name = f->scale_name;
    out->scale_dtype = f->scale_dtype;
    out->scale_rows = f->scale_rows;
    out->scale_cols = f->scale_cols;
    out->block_rows = f->block_rows;
    out->block_cols = f->block_cols;
    out->stored_bytes = f->stored_bytes;
    return true;
}
