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
** split:   --split-max-size / --split-max-tensors (gguf.h: names and keys): the tensors are
**          dealt to parts in order as gguf-split deals them - a new part starts when the next
**          tensor's padded data would take the part's tensor data past the size, or when the part
**          holds the tensor count; a tensor larger than the size gets a part of its own, no part is
**          empty. One part: a plain file at -o (as gguf-py writes a single shard). Otherwise part
**          1 gets every key, then split.no, split.count, split.tensors.count, the set identity and
**          its checksums; parts 2..N general.alignment (when set), the split keys, the identity
**          and their own checksums. All parts are laid out here in one offset space (part k from
**          the sum of the sizes before it) and written in the same single pass as one file.
*/
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "format.h"
#include "gguf.h"
#include "gguf_arch.h"
#include "gguf_family.h"
#include "gguf_write.h"
#include "modelq/plugin.h" /* the plan, the output file, the checksum records */
#include "span.h"

/* One part of a split output: its metadata (part 1: the plan's), tensors [first, first + n). */
struct gguf_part {
    struct mq_meta meta;
    size_t first, n;
    uint64_t base, data_start, size; /* base: offset of the part in the run's offset space */
};

struct gguf_state {
    struct mq_gguf_tensor_info *info;
    struct gguf_part *parts;         /* split outputs only (n_parts >= 2), else NULL */
    size_t n_parts;
    char **names;                    /* the parts' paths */
    uint64_t *sizes;
};

static bool gguf_stores_codec(enum mq_codec c) { return mq_codec_info(c) && mq_codec_info(c)->ggml_type >= 0; }

/* ggml type of a raw (copied) tensor, or -1 when GGUF has none. */
static int32_t raw_ggml_type(const struct mq_plan_tensor_info *t)
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
    const struct mq_model *m = mq_plan_model(p);
    struct mq_meta *pmeta = mq_plan_meta(p);
    for (size_t i = 0; i < mq_plan_n_tensors(p); i++) {
        struct mq_plan_tensor_info ti;
        const struct mq_plan_tensor_info *t = &ti;
        mq_plan_tensor_info(p, i, &ti);
        if (t->ndim > MQ_GGUF_MAX_DIMS)
            return MQ_FAIL(err, MQ_E_UNSUPPORTED, "gguf-dims", "tensor %s: %u dims; GGUF tensors have at most %u",
                           t->name, t->ndim, MQ_GGUF_MAX_DIMS);
        if (strlen(t->name) > MQ_GGUF_MAX_NAME)
            return MQ_FAIL(err, MQ_E_UNSUPPORTED, "gguf-name-length",
                           "tensor %s: name of %zu bytes; GGUF allows at most %u", t->name, strlen(t->name),
                           MQ_GGUF_MAX_NAME);
        if (t->raw_source && raw_ggml_type(t) < 0)
            return MQ_FAIL(err, MQ_E_UNSUPPORTED, "gguf-dtype", "tensor %s: dtype %s has no GGUF (ggml) type",
                           t->name, mq_dtype_name(t->raw_dtype));
    }
    if (mq_model_format(m) && strcmp(mq_model_format(m), "gguf") == 0) {
        MQ_TRY(mq_meta_copy(pmeta, mq_model_meta(m), err));
        mq_meta_remove(pmeta, MQ_CHECKSUM_TENSORS_KEY);
        mq_meta_remove(pmeta, MQ_CHECKSUM_HEADER_KEY);
        mq_gguf_split_strip(pmeta); /* a set's keys describe its files, not the model */
        if (mq_plan_target(p) == MQ_TARGET_AUTO) mq_plan_set_file_type(p, -2); /* keep the input's */
        return MQ_OK;
    }
    bool applied;
    MQ_TRY(mq_gguf_arch_apply(p, &applied, err));
    if (applied) return MQ_OK;
    /* names unchanged (no config.json, no architectures, --raw-names): a model_type here would
    ** send llama.cpp looking for tensors that are not there */
    MQ_TRY(mq_meta_set_str(pmeta, "general.architecture", "raw", SIZE_MAX, err));
    char name[256];
    mq_gguf_model_name(mq_model_input_path(m), name, sizeof name);
    MQ_TRY(mq_meta_set_str(pmeta, "general.name", name, SIZE_MAX, err));
    return MQ_OK;
}

/* The checksum keys, last, tensor then header: verify tells an older file (tensor key last) from
 * a damaged header key this way. Zeros now (their size is planned), filled at finish. */
static enum mq_status add_checksum_keys(struct mq_meta *meta, size_t n, struct mq_error *err)
{
    mq_meta_remove(meta, MQ_CHECKSUM_TENSORS_KEY);
    mq_meta_remove(meta, MQ_CHECKSUM_HEADER_KEY);
    uint64_t *zeros = calloc(n ? n : 1, sizeof *zeros);
    if (!zeros) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    enum mq_status s = mq_meta_set_array(meta, MQ_CHECKSUM_TENSORS_KEY, MQ_META_U64, zeros, n, err);
    free(zeros);
    MQ_TRY(s);
    return mq_meta_set_uint(meta, MQ_CHECKSUM_HEADER_KEY, MQ_META_U64, 0, err);
}

static struct mq_meta *part_meta(struct mq_plan *p, struct gguf_state *st, size_t k)
{
    return k == 0 ? mq_plan_meta(p) : &st->parts[k].meta;
}

/* How many parts the split options make (gguf-split's rule, see the top); 1 = no split. */
static size_t deal_parts(const struct mq_plan *p, const struct gguf_state *st, size_t *part_of)
{
    const struct mq_convert_options *o = mq_plan_options(p);
    const size_t n_t = mq_plan_n_tensors(p);
    uint64_t max_size = o ? (o->split_max_size ? o->split_max_size : o->max_shard_size) : 0;
    uint64_t max_tensors = o ? o->split_max_tensors : 0;
    size_t k = 0, in_part = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n_t; i++) {
        uint64_t padded = (st->info[i].nbytes + 31) / 32 * 32; /* gguf-split pads with GGUF_DEFAULT_ALIGNMENT */
        bool next = in_part > 0 && ((max_size && bytes + padded > max_size) || (max_tensors && in_part >= max_tensors));
        if (next) {
            k++;
            in_part = 0;
            bytes = 0;
        }
        in_part++;
        bytes += padded;
        if (part_of) part_of[i] = k;
    }
    return n_t ? k + 1 : 1;
}

/* "-o NAME.gguf" -> "NAME" (the parts are NAME-0000K-of-0000N.gguf); any other name is the prefix. */
static enum mq_status part_names(struct mq_plan *p, struct gguf_state *st, struct mq_error *err)
{
    const struct mq_convert_options *o = mq_plan_options(p);
    const char *out = o && o->output ? o->output : "model.gguf";
    size_t n = strlen(out);
    if (n > 5 && strcmp(out + n - 5, ".gguf") == 0) n -= 5;
    char *prefix = strndup(out, n);
    st->names = calloc(st->n_parts, sizeof *st->names);
    st->sizes = calloc(st->n_parts, sizeof *st->sizes);
    if (!prefix || !st->names || !st->sizes) {
        free(prefix);
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    }
    enum mq_status s = MQ_OK;
    for (size_t k = 0; s == MQ_OK && k < st->n_parts; k++) {
        size_t cap = n + 32;
        st->names[k] = malloc(cap);
        if (!st->names[k]) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
        else if (!mq_gguf_split_path(st->names[k], cap, prefix, (unsigned)k + 1, (unsigned)st->n_parts))
            s = MQ_FAIL(err, MQ_E_INTERNAL, "split", "%s: cannot name part %zu", out, k + 1);
    }
    free(prefix);
    return s;
}

/* Parts, their keys and their layout in one offset space (split outputs). */
static enum mq_status layout_parts(struct mq_plan *p, struct gguf_state *st, const size_t *part_of,
                                   struct mq_error *err)
{
    if (st->n_parts > MQ_GGUF_SPLIT_MAX)
        return MQ_FAIL(err, MQ_E_USAGE, "split-count-limit",
                       "%s: the split options make %zu parts; split.count holds at most %u", mq_plan_options(p)->output,
                       st->n_parts, MQ_GGUF_SPLIT_MAX);
    st->parts = calloc(st->n_parts, sizeof *st->parts);
    if (!st->parts) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    for (size_t k = 0; k < st->n_parts; k++) mq_meta_init(&st->parts[k].meta);
    const size_t n_t = mq_plan_n_tensors(p);
    for (size_t i = 0; i < n_t; i++) st->parts[part_of[i]].n++;
    for (size_t k = 1; k < st->n_parts; k++) st->parts[k].first = st->parts[k - 1].first + st->parts[k - 1].n;
    MQ_TRY(part_names(p, st, err));
    uint64_t align, base = 0;
    bool has_align = mq_meta_get_uint(mq_plan_meta(p), "general.alignment", &align);
    for (size_t k = 0; k < st->n_parts; k++) {
        struct gguf_part *g = &st->parts[k];
        struct mq_meta *meta = part_meta(p, st, k);
        if (k > 0 && has_align) MQ_TRY(mq_meta_set_u32(meta, "general.alignment", (uint32_t)align, err));
        MQ_TRY(mq_meta_set_uint(meta, MQ_GGUF_SPLIT_NO, MQ_META_U16, k, err));
        MQ_TRY(mq_meta_set_uint(meta, MQ_GGUF_SPLIT_COUNT, MQ_META_U16, st->n_parts, err));
        MQ_TRY(mq_meta_set_int(meta, MQ_GGUF_SPLIT_TENSORS, MQ_META_I32, (int64_t)n_t, err));
        MQ_TRY(mq_meta_set_uint(meta, MQ_GGUF_SPLIT_SET_KEY, MQ_META_U64, 0, err));
        MQ_TRY(add_checksum_keys(meta, g->n, err));
        enum mq_status ls = mq_gguf_layout(meta, st->info + g->first, g->n, &g->data_start, &g->size, err);
        if (ls != MQ_OK) mq_error_prefix(err, "%s", st->names[k]); /* nothing written yet */
        MQ_TRY(ls);
        g->base = base;
        for (size_t i = g->first; i < g->first + g->n; i++)
            mq_plan_tensor_set_offset(p, i, base + g->data_start + st->info[i].offset);
        st->sizes[k] = g->size;
        base += g->size;
    }
    mq_plan_set_sizes(p, st->parts[0].data_start, base);
    mq_plan_set_files(p, st->n_parts, (const char *const *)st->names, st->sizes);
    mq_plan_set_split_set(p, true);
    return MQ_OK;
}

static enum mq_status gguf_layout(struct mq_plan *p, struct mq_error *err)
{
    struct mq_meta *pmeta = mq_plan_meta(p);
    const size_t n_t = mq_plan_n_tensors(p);
    const int file_type = mq_plan_file_type(p);
    if (file_type >= 0) MQ_TRY(mq_meta_set_u32(pmeta, "general.file_type", (uint32_t)file_type, err));
    else if (file_type == -2) {
        uint64_t ft;
        if (mq_meta_get_uint(pmeta, "general.file_type", &ft)) mq_plan_set_file_type(p, (int)ft);
    }
    MQ_TRY(mq_meta_set_u32(pmeta, "general.quantization_version", MQ_GGUF_QNT_VERSION, err));

    struct gguf_state *st = calloc(1, sizeof *st);
    if (!st) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    mq_plan_set_writer_state(p, st);
    st->info = calloc(n_t ? n_t : 1, sizeof *st->info);
    if (!st->info) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    for (size_t i = 0; i < n_t; i++) {
        struct mq_plan_tensor_info ti;
        const struct mq_plan_tensor_info *t = &ti;
        mq_plan_tensor_info(p, i, &ti);
        struct mq_gguf_tensor_info *g = &st->info[i];
        g->name = t->name;
        g->n_dims = t->ndim ? t->ndim : 1;
        g->ne[0] = 1;
        for (uint32_t d = 0; d < t->ndim; d++) g->ne[d] = t->shape[t->ndim - 1 - d];
        g->type = t->convert ? mq_codec_info(t->codec)->ggml_type : raw_ggml_type(t);
        g->nbytes = t->bytes;
    }
    st->n_parts = deal_parts(p, st, NULL);
    if (st->n_parts > 1) {
        size_t *part_of = calloc(n_t, sizeof *part_of);
        if (!part_of) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
        deal_parts(p, st, part_of);
        enum mq_status s = layout_parts(p, st, part_of, err);
        free(part_of);
        return s;
    }
    MQ_TRY(add_checksum_keys(pmeta, n_t, err));
    uint64_t data_start, size;
    enum mq_status ls = mq_gguf_layout(pmeta, st->info, n_t, &data_start, &size, err);
    const struct mq_convert_options *o = mq_plan_options(p);
    if (ls != MQ_OK && o && o->output) mq_error_prefix(err, "%s", o->output); /* nothing written yet */
    MQ_TRY(ls);
    for (size_t i = 0; i < n_t; i++) mq_plan_tensor_set_offset(p, i, data_start + st->info[i].offset);
    mq_plan_set_sizes(p, data_start, size);
    return MQ_OK;
}

/*
** One file's header (tensors [first, first + n), metadata meta) with the checksums filled in
** (tensors, then the header's own), written at offset `base` of the run's offset space.
*/
static enum mq_status write_header(struct mq_plan *p, struct mq_meta *meta, size_t first, size_t n,
                                   uint64_t base, uint64_t data_start, struct mq_outfile *out, struct mq_error *err)
{
    struct gguf_state *st = mq_plan_writer_state(p);
    long k = mq_meta_find(meta, MQ_CHECKSUM_TENSORS_KEY);
    if (k < 0 || meta->items[k].v.count != n)
        return MQ_FAIL(err, MQ_E_INTERNAL, "checksums", "checksum array missing from the planned header");
    uint64_t *sums = meta->items[k].v.arr;
    for (size_t i = 0; i < n; i++) {
        struct mq_plan_tensor_info t;
        mq_plan_tensor_info(p, first + i, &t);
        sums[i] = t.xxh3;
    }
    size_t len = (size_t)data_start;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory for the header");
    enum mq_status s = mq_gguf_header_write(meta, st->info + first, n, buf, data_start, err);
    uint64_t sum;
    if (s == MQ_OK) s = mq_gguf_header_seal(meta, st->info + first, n, buf, data_start, &sum, err);
    if (s == MQ_OK) s = mq_outfile_pwrite(out, buf, len, base, err);
    free(buf);
    return s;
}

/* The set identity (gguf.h): every tensor's name, part number and data checksum, then N. */
static enum mq_status set_identity(const struct mq_plan *p, const struct gguf_state *st, uint64_t *out,
                                   struct mq_error *err)
{
    XXH3_state_t *x = XXH3_createState();
    if (!x) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    XXH3_64bits_reset(x);
    for (size_t k = 0; k < st->n_parts; k++)
        for (size_t i = st->parts[k].first; i < st->parts[k].first + st->parts[k].n; i++) {
            uint8_t b[10];
            struct mq_plan_tensor_info t;
            mq_plan_tensor_info(p, i, &t);
            mq_store_u16le(b, (uint16_t)(k + 1));
            mq_store_u64le(b + 2, t.xxh3);
            XXH3_64bits_update(x, t.name, strlen(t.name) + 1);
            XXH3_64bits_update(x, b, sizeof b);
        }
    uint8_t nb[2];
    mq_store_u16le(nb, (uint16_t)st->n_parts);
    XXH3_64bits_update(x, nb, sizeof nb);
    *out = XXH3_64bits_digest(x);
    XXH3_freeState(x);
    return MQ_OK;
}

static enum mq_status gguf_finish(struct mq_plan *p, struct mq_outfile *out, struct mq_error *err)
{
    struct gguf_state *st = mq_plan_writer_state(p);
    if (!st->parts)
        return write_header(p, mq_plan_meta(p), 0, mq_plan_n_tensors(p), 0, mq_plan_data_start(p), out, err);
    uint64_t id = 0;
    MQ_TRY(set_identity(p, st, &id, err));
    for (size_t k = 0; k < st->n_parts; k++) {
        struct gguf_part *g = &st->parts[k];
        struct mq_meta *meta = part_meta(p, st, k);
        MQ_TRY(mq_meta_set_uint(meta, MQ_GGUF_SPLIT_SET_KEY, MQ_META_U64, id, err)); /* in place: same size */
        MQ_TRY(write_header(p, meta, g->first, g->n, g->base, g->data_start, out, err));
    }
    return MQ_OK;
}

static void gguf_release(struct mq_plan *p)
{
    struct gguf_state *st = mq_plan_writer_state(p);
    if (st) {
        free(st->info);
        for (size_t k = 0; st->parts && k < st->n_parts; k++) mq_meta_free(&st->parts[k].meta);
        for (size_t k = 0; st->names && k < st->n_parts; k++) free(st->names[k]);
        free(st->parts);
        free(st->names);
        free(st->sizes);
    }
    free(st);
    mq_plan_set_writer_state(p, NULL);
}

const struct mq_writer_ops mq_gguf_writer = {
    .input_name_of_hf = mq_gguf_input_name_of_hf,
    .name = "gguf",
    .ext = ".gguf",
    .stores_codec = gguf_stores_codec,
    .prepare = gguf_prepare,
    .layout = gguf_layout,
    .finish = gguf_finish,
    .release = gguf_release,
};
