/*
** fp8_read.c - FP8 weights of a safetensors checkpoint as logical float32 tensors.
**
** DeepSeek-V3 and the Qwen3 FP8 releases store Linear weights as F8_E4M3 P.weight [rows, cols]
** with block scales P.weight_scale_inv, F32 [ceil(rows/128), ceil(cols/128)], and say so in
** config.json: "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128], ...}.
** Here each F8_E4M3 / F8_E5M2 tensor becomes one logical F32 tensor (mq_fp8_source, model.h)
** that mq_model_read() dequantizes (src/fp8_source.c); its scale tensor is folded into it and is
** no tensor of its own. Scales are matched by name (P + "_scale_inv"); the block is the config's
** weight_block_size, else 128 x 128; a one-element scale applies to the whole tensor.
**
** Checks: fp8-block-size (weight_block_size not two integers in [1, 2^31)), fp8-scale (scale
** dtype not F32/BF16, or a shape that is not the weight's block grid or one element, or a block
** scale on a tensor that is not 2-D).
*/
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "ckd.h"
#include "format.h"

static int cmp_idx_name(const void *a, const void *b, void *ctx)
{
    const struct mq_model *m = ctx;
    return strcmp(m->tensors[*(const size_t *)a].name, m->tensors[*(const size_t *)b].name);
}

/* Binary search of name in idx (tensor indices sorted by name); -1 when absent. */
static long find_sorted(const struct mq_model *m, const size_t *idx, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->tensors[idx[mid]].name, name);
        if (c == 0) return (long)idx[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

static enum mq_status block_size(const struct mq_model *m, uint64_t *br, uint64_t *bc, struct mq_error *err)
{
    *br = *bc = 128;
    const cJSON *q = m->config.json ? cJSON_GetObjectItemCaseSensitive(m->config.json, "quantization_config") : NULL;
    const cJSON *w = cJSON_IsObject(q) ? cJSON_GetObjectItemCaseSensitive(q, "weight_block_size") : NULL;
    if (!w) return MQ_OK;
    const cJSON *a = cJSON_IsArray(w) && cJSON_GetArraySize(w) == 2 ? w->child : NULL;
    if (!a || !cJSON_IsNumber(a) || !cJSON_IsNumber(a->next) || a->valuedouble < 1 || a->valuedouble >= 2147483648.0 ||
        a->next->valuedouble < 1 || a->next->valuedouble >= 2147483648.0 || a->valuedouble != (double)(uint64_t)a->valuedouble ||
        a->next->valuedouble != (double)(uint64_t)a->next->valuedouble)
        return MQ_FAIL(err, MQ_E_CORRUPT, "fp8-block-size",
                       "%s: fp8-block-size: quantization_config.weight_block_size must be two integers in [1, 2^31)",
                       m->config.path ? m->config.path : "config.json");
    *br = (uint64_t)a->valuedouble;
    *bc = (uint64_t)a->next->valuedouble;
    return MQ_OK;
}

#define SFAIL(check, fmt, ...)                                                                                  \
    MQ_FAIL(err, MQ_E_CORRUPT, check, "%s: tensor '%s': " check ": " fmt, m->files[sc->file].path, sc->name, __VA_ARGS__)

/* Fills f from weight w and its scale tensor sc (NULL: no scales). */
static enum mq_status pair(const struct mq_model *m, const struct mq_tensor *w, const struct mq_tensor *sc, uint64_t br,
                           uint64_t bc, struct mq_fp8_source *f, struct mq_error *err)
{
    f->stored = w->dtype;
    f->data = (struct mq_bnb_part){w->file, w->offset, w->nbytes};
    f->stored_bytes = w->nbytes;
    if (!sc) return MQ_OK;
    if (sc->dtype != MQ_DTYPE_F32 && sc->dtype != MQ_DTYPE_BF16)
        return SFAIL("fp8-scale", "the scales of '%s' must be F32 or BF16, not %s", w->name, mq_dtype_name(sc->dtype));
    uint64_t rows = mq_tensor_rows(w), cols = mq_tensor_row_len(w);
    if (sc->numel == 1) { /* one scale for the whole tensor */
        f->scale_rows = f->scale_cols = 1;
        f->block_rows = rows ? rows : 1;
        f->block_cols = cols ? cols : 1;
    } else {
        uint64_t want_r = mq_div_ceil_u64(rows, br), want_c = mq_div_ceil_u64(cols, bc);
        if (w->ndim != 2)
            return SFAIL("fp8-scale", "block scales need a 2-D weight; '%s' has %u dimensions", w->name, w->ndim);
        if (sc->ndim != 2 || sc->shape[0] != want_r || sc->shape[1] != want_c)
            return SFAIL("fp8-scale",
                         "shape must be [%llu, %llu]: '%s' is [%llu, %llu] in blocks of %llu x %llu "
                         "(quantization_config.weight_block_size)",
                         (unsigned long long)want_r, (unsigned long long)want_c, w->name, (unsigned long long)rows,
                         (unsigned long long)cols, (unsigned long long)br, (unsigned long long)bc);
        f->scale_rows = want_r;
        f->scale_cols = want_c;
        f->block_rows = br;
        f->block_cols = bc;
    }
    f->has_scale = true;
    f->scale_dtype = sc->dtype;
    f->scale = (struct mq_bnb_part){sc->file, sc->offset, sc->nbytes};
    f->stored_bytes += sc->nbytes;
    f->scale_name = strdup(sc->name);
    if (!f->scale_name) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    return MQ_OK;
}

enum mq_status mq_fp8_read(struct mq_model *m, struct mq_error *err)
{
    size_t n_fp8 = 0;
    for (size_t i = 0; i < m->n_tensors; i++)
        n_fp8 += m->tensors[i].dtype == MQ_DTYPE_F8_E4M3 || m->tensors[i].dtype == MQ_DTYPE_F8_E5M2;
    if (n_fp8 == 0) return MQ_OK;
    uint64_t br, bc;
    MQ_TRY(block_size(m, &br, &bc, err));
    size_t *idx = malloc(m->n_tensors * sizeof *idx);
    bool *drop = calloc(m->n_tensors, sizeof *drop);
    enum mq_status s = MQ_OK;
    if (!idx || !drop) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    for (size_t i = 0; idx && i < m->n_tensors; i++) idx[i] = i;
    if (s == MQ_OK) qsort_r(idx, m->n_tensors, sizeof *idx, cmp_idx_name, m);
    for (size_t i = 0; s == MQ_OK && i < m->n_tensors; i++) {
        struct mq_tensor *w = &m->tensors[i];
        if (w->dtype != MQ_DTYPE_F8_E4M3 && w->dtype != MQ_DTYPE_F8_E5M2) continue;
        size_t nl = strlen(w->name);
        char *sname = malloc(nl + sizeof "_scale_inv");
        if (!sname) {
            s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
            break;
        }
        memcpy(sname, w->name, nl);
        memcpy(sname + nl, "_scale_inv", sizeof "_scale_inv");
        long si = find_sorted(m, idx, m->n_tensors, sname);
        free(sname);
        struct mq_fp8_source *f = calloc(1, sizeof *f);
        if (!f) {
            s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
            break;
        }
        s = pair(m, w, si >= 0 ? &m->tensors[si] : NULL, br, bc, f, err);
        if (s != MQ_OK) {
            free(f->scale_name);
            free(f);
            break;
        }
        if (si >= 0) drop[si] = true;
        w->fp8 = f;
        w->dtype = MQ_DTYPE_F32;
        w->nbytes = w->numel * 4; /* numel <= the FP8 bytes in the file: no overflow */
    }
    if (s == MQ_OK) { /* the scale tensors are part of their weights now */
        size_t k = 0;
        for (size_t i = 0; i < m->n_tensors; i++) {
            if (drop[i]) free(m->tensors[i].name);
            else m->tensors[k++] = m->tensors[i];
        }
        m->n_tensors = k;
    }
    free(idx);
    free(drop);
    return s;
}
