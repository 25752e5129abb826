/*
** imatrix_plan.c - --imatrix in the plan: which tensors get importances, the checks, the keys.
**
** llama-imatrix names its entries by the GGUF tensor names of the model it ran on, so they are
** matched against the plan's OUTPUT names (after the family mapping), whatever the input format.
** As llama-quantize (src/llama-quant.cpp) does, for every tensor quantized to a type whose ggml
** quantizer takes importances:
**   - no entry: a warning (llama-quantize: "did not find weights for ..."), quantized without,
**     except a tensor the file type makes Q2_K only with importances (Q2_K_S: all but
**     token_embd / output): an error, as llama-quantize's "Missing importance matrix";
**   - an entry of another size than row length x matrices (3-D expert tensors: one matrix per
**     expert): an error, except for token_embd.weight (warned, quantized without);
**   - else the entry's values are the tensor's importances; a row of matrix m uses slice m.
** Row permutations (the Q/K heads) move rows, never columns, so the vectors apply unchanged.
** modelq also refuses an imatrix sharing no name with the model (an imatrix of another model).
** Keys written (GGUF), as llama-quantize's kv overrides give them:
**   quantize.imatrix.file           STRING  the path as given (at most 127 bytes)
**   quantize.imatrix.dataset        STRING  the first dataset (at most 127 bytes), when there is one
**   quantize.imatrix.entries_count  UINT32  entries in the file
**   quantize.imatrix.chunks_count   UINT32  chunks it was computed on, when > 0
*/
#include <stdio.h>
#include <string.h>

#include "modelq/imatrix.h"
#include "plan.h"

#define KV_STR_MAX 127 /* llama_model_kv_override.val_str holds 128 bytes with the NUL */

/* "FILE: <what> TENSOR: quantized without" through the caller's warning hook */
static void warn(const struct mq_plan *p, const char *file, const char *what, const char *tensor)
{
    if (!p->opt->warn) return;
    char msg[512];
    snprintf(msg, sizeof msg, "%s: %s %s: quantized without", file, what, tensor);
    p->opt->warn(p->opt->warn_ctx, msg);
}

static enum mq_status set_str(struct mq_meta *m, const char *key, const char *s, struct mq_error *err)
{
    size_t n = strlen(s);
    return mq_meta_set_str(m, key, s, n > KV_STR_MAX ? KV_STR_MAX : n, err);
}

enum mq_status mq_plan_attach_imatrix(struct mq_plan *p, struct mq_error *err)
{
    const struct mq_imatrix *im = p->opt->imatrix;
    if (!im) return MQ_OK;
    const char *file = p->opt->imatrix_path ? p->opt->imatrix_path : im->path;
    size_t common = 0;
    for (size_t i = 0; i < p->n; i++) {
        struct mq_plan_tensor *t = &p->t[i];
        const struct mq_imatrix_entry *e = mq_imatrix_find(im, t->name);
        if (e) common++;
        if (!t->convert || !t->quantized || !mq_codec_takes_imatrix(t->codec) || t->row_len == 0) continue;
        if (!e && mq_target_requires_imatrix(p->target, t->name, t->codec))
            return MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-missing",
                           "%s: no importances for %s, which --type %s quantizes to %s only with them (llama-quantize: "
                           "\"Missing importance matrix for tensor %s in a very low-bit quantization\")",
                           file, t->name, mq_target_info(p->target)->name, mq_codec_info(t->codec)->name, t->name);
        if (!e) {
            warn(p, file, "no importances for", t->name);
            continue;
        }
        const uint64_t n_mat = t->ndim == 3 ? t->shape[0] : 1;
        const uint64_t have = e->n_per_row * e->n_mat, need = t->row_len * n_mat;
        const bool shape_ok = have == need && (im->format == MQ_IMATRIX_LEGACY || e->n_per_row == t->row_len);
        if (!shape_ok) {
            if (strcmp(t->name, "token_embd.weight") == 0) {
                warn(p, file, "importances do not fit the shape of", t->name);
                continue;
            }
            return MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-shape",
                           "%s: importances of %s are %llu x %llu, the tensor needs %llu x %llu (row length x "
                           "matrices): an importance matrix of another model?",
                           file, t->name, (unsigned long long)e->n_per_row, (unsigned long long)e->n_mat,
                           (unsigned long long)t->row_len, (unsigned long long)n_mat);
        }
        t->imatrix = e->values;
        t->imatrix_mat_rows = t->rows / n_mat;
    }
    if (common == 0)
        return MQ_FAIL(err, MQ_E_CORRUPT, "imatrix-names",
                       "%s: none of its %zu entries (e.g. %s) names a tensor of %s: an importance matrix of another "
                       "model?", file, im->n_entries, im->n_entries ? im->entries[0].name : "-", p->model->input_path);
    if (!p->writer || strcmp(p->writer->name, "gguf") != 0) return MQ_OK;
    MQ_TRY(set_str(&p->meta, "quantize.imatrix.file", file, err));
    if (im->dataset) MQ_TRY(set_str(&p->meta, "quantize.imatrix.dataset", im->dataset, err));
    MQ_TRY(mq_meta_set_u32(&p->meta, "quantize.imatrix.entries_count", (uint32_t)im->n_entries, err));
    if (im->chunks > 0) MQ_TRY(mq_meta_set_u32(&p->meta, "quantize.imatrix.chunks_count", (uint32_t)im->chunks, err));
    return MQ_OK;
}
