/*
** gguf_out.c - the GGUF writer plugged into the conversion pipeline (struct mq_writer_ops).
**
** prepare: metadata. GGUF input: every key copied in order (stale checksums dropped). Other
**          inputs: gguf_arch.c's keys for a supported architecture, else general.architecture
**          "raw" (tensor names unchanged) and general.name
**          (the input folder's or file's name: no paths, no timestamps, so bytes reproduce).
**          Refuses, naming the tensor, what GGUF cannot hold: > 4 dims, names over 63 bytes,
**          dtypes without a ggml type (BOOL, unsigned, FP8/FP6/FP4, complex).
** layout:  general.file_type (UINT32 llama_ftype) and general.quantization_version (UINT32 2)
**          set in place (or appended), then modelq.tensor_xxh3 (UINT64[n_tensors], tensor-info
**          order) and modelq.header_xxh3 (UINT64) appended as zeros so their size is planned
**          (what they cover: src/checksums.h); tensor infos with ggml dims (reversed shape);
**          offsets contiguous and 32-aligned; the reader's caps applied (gguf_write.c).
** finish:  the same bytes with the tensor checksums filled in, then the header checksum over
**          all of them (mq_gguf_header_seal).
*/
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "gguf.h"
#include "gguf_arch.h"
#include "gguf_write.h"
#include "outfile.h"
#include "plan.h"

struct gguf_state {
    struct mq_gguf_tensor_info *info;
};

static bool gguf_stores_codec(enum mq_codec c) { return mq_codec_info(c) && mq_codec_info(c)->ggml_type >= 0; }

/* ggml type of a raw (copied) tensor, or -1 when GGUF has none. */
static int32_t raw_ggml_type(const struct mq_plan_tensor *t)
{
    return t->raw_ggml_type >= 0 ? t->raw_ggml_type : mq_ggml_type_of_dtype(t->raw_dtype);
}

/* A Hugging Face cache snapshot ".../models--ORG--NAME/snapshots/COMMIT[/file]": NAME. */
static bool hf_cache_name(const char *input, char *out, size_t cap)
{
    const char *snap = strstr(input, "/snapshots/");
    if (!snap) return false;
    const char *repo = snap;
    while (repo > input && repo[-1] != '/') repo--;
    if (strncmp(repo, "models--", 8) != 0) return false;
    const char *sep = NULL;
    for (const char *q = repo; q + 1 < snap; q++)
        if (q[0] == '-' && q[1] == '-') sep = q;
    if (!sep || sep + 2 >= snap) return false;
    snprintf(out, cap, "%.*s", (int)(snap - sep - 2), sep + 2);
    return true;
}

/* "tiny-llama" from ".../tiny-llama" or ".../tiny-llama/model.safetensors" or "x.gguf" (or the
** repository's name for a Hugging Face cache snapshot). */
void mq_gguf_model_name(const char *input, char *out, size_t cap)
{
    if (hf_cache_name(input, out, cap)) return;
    char *a = strdup(input);
    if (!a) {
        snprintf(out, cap, "model");
        return;
    }
    size_t n = strlen(a);
    while (n > 1 && a[n - 1] == '/') a[--n] = '\0';
    char *base = basename(a);
    const char *exts[] = {".safetensors", ".json", ".gguf"};
    bool file = false;
    for (size_t i = 0; i < 3; i++) {
        size_t bl = strlen(base), el = strlen(exts[i]);
        if (bl > el && strcmp(base + bl - el, exts[i]) == 0) file = true;
    }
    if (file && (strncmp(base, "model", 5) == 0)) {
        /* model.safetensors / model.safetensors.index.json: the folder names the model */
        char *b = strdup(input);
        if (b) {
            char *d = dirname(b);
            snprintf(out, cap, "%s", basename(d));
            free(b);
        }
    } else {
        snprintf(out, cap, "%s", base);
        char *dot = strrchr(out, '.');
        if (file && dot && dot != out) *dot = '\0';
    }
    free(a);
    if (!out[0] || strcmp(out, "/") == 0 || strcmp(out, ".") == 0) snprintf(out, cap, "model");
}

static enum mq_status gguf_prepare(struct mq_plan *p, struct mq_error *err)
{
    const struct mq_model *m = p->model;
    for (size_t i = 0; i < p->n; i++) {
        const struct mq_plan_tensor *t = &p->t[i];
        if (t->ndim > MQ_GGUF_MAX_DIMS)
            return MQ_FAIL(err, MQ_E_UNSUPPORTED, "gguf-dims", "tensor %s: %u dims; GGUF tensors have at most %u",
                           t->name, t->ndim, MQ_GGUF_MAX_DIMS);
        if (strlen(t->name) > MQ_GGUF_MAX_NAME)
            return MQ_FAIL(err, MQ_E_UNSUPPORTED, "gguf-name-length",
                           "tensor %s: name of %zu bytes; GGUF allows at most %u", t->name, strlen(t->name),
                           MQ_GGUF_MAX_NAME);
        if (t->kind == MQ_SRC_RAW && raw_ggml_type(t) < 0)
            return MQ_FAIL(err, MQ_E_UNSUPPORTED, "gguf-dtype", "tensor %s: dtype %s has no GGUF (ggml) type",
                           t->name, mq_dtype_name(t->raw_dtype));
    }
    if (m->format && strcmp(m->format, "gguf") == 0) {
        MQ_TRY(mq_meta_copy(&p->meta, &m->meta, err));
        mq_meta_remove(&p->meta, MQ_CHECKSUM_TENSORS_KEY);
        mq_meta_remove(&p->meta, MQ_CHECKSUM_HEADER_KEY);
        if (p->target == MQ_TARGET_AUTO) p->file_type = -2; /* keep the input's */
        return MQ_OK;
    }
    bool applied;
    MQ_TRY(mq_gguf_arch_apply(p, &applied, err));
    if (applied) return MQ_OK;
    /* names unchanged (no config.json, no architectures, --raw-names): a model_type here would
    ** send llama.cpp looking for tensors that are not there */
    MQ_TRY(mq_meta_set_str(&p->meta, "general.architecture", "raw", SIZE_MAX, err));
    char name[256];
    mq_gguf_model_name(m->input_path, name, sizeof name);
    MQ_TRY(mq_meta_set_str(&p->meta, "general.name", name, SIZE_MAX, err));
    return MQ_OK;
}

static enum mq_status gguf_layout(struct mq_plan *p, struct mq_error *err)
{
    if (p->file_type >= 0) MQ_TRY(mq_meta_set_u32(&p->meta, "general.file_type", (uint32_t)p->file_type, err));
    else if (p->file_type == -2) {
        uint64_t ft;
        if (mq_meta_get_uint(&p->meta, "general.file_type", &ft)) p->file_type = (int)ft;
    }
    MQ_TRY(mq_meta_set_u32(&p->meta, "general.quantization_version", MQ_GGUF_QNT_VERSION, err));
    /* the checksums last, tensor then header: verify tells an older file (tensor key last) from
     * a damaged header key this way */
    mq_meta_remove(&p->meta, MQ_CHECKSUM_TENSORS_KEY);
    mq_meta_remove(&p->meta, MQ_CHECKSUM_HEADER_KEY);
    uint64_t *zeros = calloc(p->n ? p->n : 1, sizeof *zeros);
    if (!zeros) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    enum mq_status s = mq_meta_set_array(&p->meta, MQ_CHECKSUM_TENSORS_KEY, MQ_META_U64, zeros, p->n, err);
    free(zeros);
    MQ_TRY(s);
    MQ_TRY(mq_meta_set_uint(&p->meta, MQ_CHECKSUM_HEADER_KEY, MQ_META_U64, 0, err));

    struct gguf_state *st = calloc(1, sizeof *st);
    if (!st) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    p->writer_state = st;
    st->info = calloc(p->n ? p->n : 1, sizeof *st->info);
    if (!st->info) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    for (size_t i = 0; i < p->n; i++) {
        const struct mq_plan_tensor *t = &p->t[i];
        struct mq_gguf_tensor_info *g = &st->info[i];
        g->name = t->name;
        g->n_dims = t->ndim ? t->ndim : 1;
        g->ne[0] = 1;
        for (uint32_t d = 0; d < t->ndim; d++) g->ne[d] = t->shape[t->ndim - 1 - d];
        g->type = t->convert ? mq_codec_info(t->codec)->ggml_type : raw_ggml_type(t);
        g->nbytes = t->bytes;
    }
    uint64_t data_start, size;
    enum mq_status ls = mq_gguf_layout(&p->meta, st->info, p->n, &data_start, &size, err);
    if (ls != MQ_OK && p->opt && p->opt->output) mq_error_prefix(err, "%s", p->opt->output); /* nothing written yet */
    MQ_TRY(ls);
    for (size_t i = 0; i < p->n; i++) p->t[i].offset = data_start + st->info[i].offset;
    p->data_start = data_start;
    p->file_size = size;
    return MQ_OK;
}

/* The header, with the checksums filled in (tensors, then the header's own), written at offset 0. */
static enum mq_status gguf_finish(struct mq_plan *p, struct mq_outfile *out, struct mq_error *err)
{
    struct gguf_state *st = p->writer_state;
    long k = mq_meta_find(&p->meta, MQ_CHECKSUM_TENSORS_KEY);
    if (k < 0 || p->meta.items[k].v.count != p->n)
        return MQ_FAIL(err, MQ_E_INTERNAL, "checksums", "checksum array missing from the planned header");
    uint64_t *sums = p->meta.items[k].v.arr;
    for (size_t i = 0; i < p->n; i++) sums[i] = p->t[i].xxh3;
    size_t len = (size_t)p->data_start;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory for the header");
    enum mq_status s = mq_gguf_header_write(&p->meta, st->info, p->n, buf, p->data_start, err);
    uint64_t sum;
    if (s == MQ_OK) s = mq_gguf_header_seal(&p->meta, st->info, p->n, buf, p->data_start, &sum, err);
    if (s == MQ_OK) s = mq_outfile_pwrite(out, buf, len, 0, err);
    free(buf);
    return s;
}

static void gguf_release(struct mq_plan *p)
{
    struct gguf_state *st = p->writer_state;
    if (st) free(st->info);
    free(st);
    p->writer_state = NULL;
}

const struct mq_writer_ops mq_gguf_writer = {
    .name = "gguf",
    .ext = ".gguf",
    .stores_codec = gguf_stores_codec,
    .prepare = gguf_prepare,
    .layout = gguf_layout,
    .finish = gguf_finish,
    .release = gguf_release,
};
