/*
** bnb_out.c - a Hugging Face model folder with bitsandbytes-quantized linear layers
** (../shared/docs/bitsandbytes.md sections 4 and 5), plugged in as a struct mq_writer_ops.
**
** Folder: model.safetensors, config.json (the input's, plus "quantization_config"), and the
** tokenizer / generation files copied unchanged. It appears complete or not at all (mq_outfile).
**
** Keys per quantized module P (P.weight is the Linear weight [out, in], n = out*in, nb = ceil(n/B)):
**   4-bit  P.weight U8 [(n+1)/2, 1] packed nibbles (element 2i in the high nibble)
**          P.weight.absmax F32 [nb]  (double quant: U8 [nb] codes into the dynamic map)
**          P.weight.quant_map F32 [16]  (the NF4 / FP4 code book)
**          P.weight.nested_absmax F32 [ceil(nb/256)] and P.weight.nested_quant_map F32 [256]
**            (double quant only)
**          P.weight.quant_state.bitsandbytes__nf4 (or __fp4) U8 [len]: the JSON document
**            {"quant_type": .., "blocksize": .., "dtype": .., "shape": [out, in]
**             [, "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": X]}
**            with Python's json.dumps separators and X as Python's repr of the float32 offset.
**   8-bit  P.weight I8 [out, in], P.SCB F32 [out], P.weight_format U8 [] = 0 ("row").
** Everything else keeps its source dtype and bytes.
**
** File layout: the safetensors header is written last. Its size is planned with every JSON blob
** at its longest (their lengths depend on nested_offset, known only after the data) and padded
** with spaces; the blobs sit at the end of the data section and the file is cut after the last.
** __metadata__ = {"modelq.header_xxh3": "<16 hex>" (first, so at a fixed offset), "format": "pt",
** "modelq.tensor_xxh3": "<16 hex>:<name>,..." one per stored entry in header order,
** "modelq.files_xxh3": "<16 hex>:<file>,..." the folder's other files}; what each covers:
** src/pipeline/checksums.h. The other files (config.json, the index, the copied tokenizer files) are
** chosen at layout, so the header size is planned with their names; they are produced first in
** finish, and every shard header, with all checksums, last.
*/
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "fileio.h"
#include "hf_folder.h"
#include "modelq/plugin.h" /* the plan, the output file, the checksum records: nothing else of the pipeline */
#include "modelq/quant.h"
#include "bnb_out.h"

#define BNB_BLOB_MAX 512u      /* a quant_state JSON is < 200 bytes plus the shape digits */
#define HASH_CHUNK (1u << 20)

enum entry_kind { E_PLAIN, E_WEIGHT, E_SIDE, E_QABS, E_NESTED, E_QMAP, E_NMAP, E_WFMT, E_STATE };

struct entry {
    char *name;
    const char *dtype;
    uint32_t ndim;
    uint64_t shape[MQ_MAX_DIMS];
    uint64_t off, len;       /* relative to the data section */
    enum entry_kind kind;
    size_t t;                /* plan tensor */
    size_t shard;
    uint64_t hash;
};

/* One safetensors file: entries [begin, end) (fixed-size ones first, then the JSON blobs). */
struct shard {
    char name[64];
    size_t begin, end;
    uint64_t base;           /* first byte in the output's offset space */
    uint64_t header_len;     /* planned JSON header bytes (multiple of 8) */
    uint64_t fixed_end;      /* end of the fixed-size data (blobs follow), relative to the data */
    uint64_t planned;        /* planned file size */
    uint64_t size;           /* final file size */
};

/* A file of the folder other than the shards, with the checksum of its bytes. */
struct extra_file {
    const char *name;        /* static: "config.json", the index, a side file name */
    uint64_t hash;
};

#define BNB_MAX_EXTRA (2u + MQ_HF_N_SIDE_FILES) /* config.json, the index, the side files */

struct bnb_state {
    struct extra_file extra[BNB_MAX_EXTRA];
    size_t n_extra;
    struct entry *e;
    size_t n, cap;
    float *dq_offset;        /* per plan tensor: the double-quant offset */
    bool *conv1d;            /* per plan tensor: a GPT-2 Conv1D weight, stored [in, out] */
    size_t *qabs_of, *nested_of; /* per plan tensor: index in e of its E_QABS / E_NESTED entry, or SIZE_MAX */
    struct shard *sh;
    size_t n_sh;
    char **names;            /* shard file names, for the plan */
    uint64_t *sizes;
};

static uint64_t data_start(const struct shard *sh) { return sh->base + 8 + sh->header_len; }
static uint64_t abs_off(const struct bnb_state *st, const struct entry *e) { return data_start(&st->sh[e->shard]) + e->off; }

static bool bnb_stores_codec(enum mq_codec c)
{
    return c == MQ_CODEC_NF4 || c == MQ_CODEC_FP4 || c == MQ_CODEC_INT8_ROW || c == MQ_CODEC_F32 ||
           c == MQ_CODEC_F16 || c == MQ_CODEC_BF16;
}

static const char *codec_dtype(enum mq_codec c)
{
    return c == MQ_CODEC_F32 ? "F32" : c == MQ_CODEC_F16 ? "F16" : "BF16";
}

/* torch dtype name of the source ("bfloat16"), as the JSON blob's "dtype". */
static const char *torch_dtype(enum mq_dtype d)
{
    return d == MQ_DTYPE_F16 ? "float16" : d == MQ_DTYPE_F32 ? "float32" : "bfloat16";
}

static enum mq_status add_entry(struct bnb_state *st, const char *name, const char *suffix, const char *dtype,
                                uint32_t ndim, const uint64_t *shape, uint64_t len, enum entry_kind kind, size_t t,
                                struct mq_error *err)
{
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 64;
        struct entry *e = realloc(st->e, cap * sizeof *e);
        if (!e) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
        st->e = e;
        st->cap = cap;
    }
    struct entry *e = &st->e[st->n];
    memset(e, 0, sizeof *e);
    size_t nl = strlen(name) + strlen(suffix) + 1;
    e->name = malloc(nl);
    if (!e->name) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    snprintf(e->name, nl, "%s%s", name, suffix);
    e->dtype = dtype;
    e->ndim = ndim;
    for (uint32_t d = 0; d < ndim; d++) e->shape[d] = shape[d];
    e->len = len;
    e->kind = kind;
    e->t = t;
    st->n++;
    return MQ_OK;
}

static enum mq_status bnb_prepare(struct mq_plan *p, struct mq_error *err)
{
    const struct mq_config *c = mq_model_config(mq_plan_model(p));
    const size_t n_t = mq_plan_n_tensors(p);
    struct bnb_state *st = calloc(1, sizeof *st);
    if (!st) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    mq_plan_set_writer_state(p, st);
    st->conv1d = calloc(n_t ? n_t : 1, sizeof *st->conv1d);
    if (!st->conv1d) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    if (c->present && strcmp(c->model_type, "gpt2") == 0) {
        /* GPT-2's attention and MLP projections are Conv1D modules, weights stored [in, out] */
        static const char *const conv[] = {".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight",
                                           ".mlp.c_proj.weight"};
        for (size_t i = 0; i < n_t; i++) {
            struct mq_plan_tensor_info t;
            mq_plan_tensor_info(p, i, &t);
            size_t nl = strlen(t.name);
            for (size_t k = 0; k < sizeof conv / sizeof conv[0]; k++) {
                size_t cl = strlen(conv[k]);
                if (nl > cl && !strcmp(t.name + nl - cl, conv[k]) && t.ndim == 2 && t.float_source)
                    st->conv1d[i] = true;
            }
        }
    }
    return MQ_OK;
}

/* Python repr() of a float32 widened to double (shortest round trip, exponent outside [-4, 16)). */
void mq_py_float_repr(float f, char *out, size_t cap)
{
    double v = (double)f;
    if (v == 0) {
        snprintf(out, cap, signbit(v) ? "-0.0" : "0.0");
        return;
    }
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    /* e = [-]d[.ddd]e[+-]XX */
    bool neg = e[0] == '-';
    char digits[24];
    size_t nd = 0;
    const char *q = e + neg;
    for (; *q && *q != 'e'; q++)
        if (*q != '.') digits[nd++] = *q;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = '\0';
    int exp = atoi(q + 1);
    size_t pos = 0;
    if (neg) out[pos++] = '-';
    if (exp < -4 || exp >= 16) {
        pos += (size_t)snprintf(out + pos, cap - pos, "%c%s%se%c%02d", digits[0], nd > 1 ? "." : "", digits + 1,
                                exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    } else if (exp < 0) {
        pos += (size_t)snprintf(out + pos, cap - pos, "0.");
        for (int k = 0; k < -exp - 1; k++) out[pos++] = '0';
        snprintf(out + pos, cap - pos, "%s", digits);
    } else {
        for (int k = 0; k <= exp; k++) out[pos++] = (size_t)k < nd ? digits[k] : '0';
        out[pos++] = '.';
        if ((size_t)exp + 1 < nd) snprintf(out + pos, cap - pos, "%s", digits + exp + 1);
        else snprintf(out + pos, cap - pos, "0");
    }
}

/* The quant_state JSON of one 4-bit tensor. offset NAN = without double quant. */
static size_t state_json(const struct mq_plan_tensor_info *t, enum mq_dtype src, float offset, bool dq, char *buf,
                         size_t cap)
{
    int n = snprintf(buf, cap, "{\"quant_type\": \"%s\", \"blocksize\": %u, \"dtype\": \"%s\", \"shape\": [",
                     t->codec == MQ_CODEC_NF4 ? "nf4" : "fp4", mq_codec_block(t->codec, &t->params), torch_dtype(src));
    for (uint32_t d = 0; d < t->ndim; d++)
        n += snprintf(buf + n, cap - (size_t)n, "%s%" PRIu64, d ? ", " : "", t->shape[d]);
    n += snprintf(buf + n, cap - (size_t)n, "]");
    if (dq) {
        char r[40];
        mq_py_float_repr(offset, r, sizeof r);
        n += snprintf(buf + n, cap - (size_t)n,
                      ", \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": %s", r);
    }
    n += snprintf(buf + n, cap - (size_t)n, "}");
    return (size_t)n;
}

/* ---- the safetensors header ---- */

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_put(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_put(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

/* s with JSON string escapes (no quotes). */
static void sb_escaped(struct sbuf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') sb_put(b, "\\%c", c);
        else if (c < 0x20) sb_put(b, "\\u%04x", c);
        else sb_put(b, "%c", c);
    }
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_put(b, "\"");
    sb_escaped(b, s);
    sb_put(b, "\"");
}

/*
** The header JSON of one shard over entries e[sh->begin, sh->end); checksums as zeros until known
** (the planned size does not depend on them: 16 hex digits each). The header checksum is always
** written as 16 '0's here: bnb_finish fills it in over the finished bytes.
*/
static void header_json(const struct bnb_state *st, const struct entry *entries, const struct shard *sh,
                        struct sbuf *b, bool with_hash)
{
    sb_put(b, "%s%016" PRIx64 "\",\"format\":\"pt\",\"%s\":\"", MQ_ST_HEADER_SUM_PREFIX, (uint64_t)0,
           MQ_CHECKSUM_TENSORS_KEY);
    for (size_t i = sh->begin; i < sh->end; i++) {
        sb_put(b, "%s%016" PRIx64 ":", i > sh->begin ? "," : "", with_hash ? entries[i].hash : 0);
        sb_escaped(b, entries[i].name);
    }
    sb_put(b, "\",\"%s\":\"", MQ_CHECKSUM_FILES_KEY);
    for (size_t i = 0; i < st->n_extra; i++)
        sb_put(b, "%s%016" PRIx64 ":%s", i ? "," : "", with_hash ? st->extra[i].hash : 0, st->extra[i].name);
    sb_put(b, "\"}");
    for (size_t i = sh->begin; i < sh->end; i++) {
        const struct entry *e = &entries[i];
        sb_put(b, ",");
        sb_str(b, e->name);
        sb_put(b, ":{\"dtype\":\"%s\",\"shape\":[", e->dtype);
        for (uint32_t d = 0; d < e->ndim; d++) sb_put(b, "%s%" PRIu64, d ? "," : "", e->shape[d]);
        sb_put(b, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", e->off, e->off + e->len);
    }
    sb_put(b, "}");
}

#define INDEX_NAME "model.safetensors.index.json"
/* The folder of the input's config.json (side files are copied from there). */
static enum mq_status model_dir(const struct mq_model *m, char *dir, size_t cap, struct mq_error *err)
{
    char *dup = strdup(mq_model_config(m)->path);
    if (!dup) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    snprintf(dir, cap, "%s", dirname(dup));
    free(dup);
    return MQ_OK;
}

/*
** The folder's files besides the shards, fixed here so every shard header can be planned with
** their names (modelq.files_xxh3): config.json, the index when there are several shards, and
** the side files present beside the input's config.json now (one that vanishes before finish
** fails the conversion; one that appears later is not copied).
*/
static enum mq_status choose_extra_files(struct mq_plan *p, struct bnb_state *st, size_t n_sh, struct mq_error *err)
{
    st->n_extra = 0;
    st->extra[st->n_extra++].name = "config.json";
    if (n_sh > 1) st->extra[st->n_extra++].name = INDEX_NAME;
    if (!mq_model_config(mq_plan_model(p))->present) return MQ_OK;
    char dir[4096];
    MQ_TRY(model_dir(mq_plan_model(p), dir, sizeof dir, err));
    for (size_t i = 0; i < MQ_HF_N_SIDE_FILES; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, mq_hf_side_files[i]);
        if (access(path, F_OK) == 0) st->extra[st->n_extra++].name = mq_hf_side_files[i];
    }
    return MQ_OK;
}

/*
** Shards: whole modules (a plan tensor and all its entries) in order, a new file when the next
** module would pass --max-shard-size (a module larger than that gets a file of its own); within a
** file the fixed-size entries come first and the 4-bit JSON blobs last.
*/
static enum mq_status plan_shards(struct mq_plan *p, struct bnb_state *st, struct mq_error *err)
{
    uint64_t max = mq_plan_options(p)->max_shard_size;
    const size_t n_t = mq_plan_n_tensors(p);
    size_t fixed = st->n;
    size_t *shard_of = calloc(n_t ? n_t : 1, sizeof *shard_of);
    if (!shard_of) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    size_t n_sh = 0;
    uint64_t cur = 0;
    for (size_t i = 0, k = 0; i < n_t; i++) {
        uint64_t mb = 0;
        bool blob = false;
        struct mq_plan_tensor_info t;
        mq_plan_tensor_info(p, i, &t);
        for (; k < fixed && st->e[k].t == i; k++) {
            mb += st->e[k].len;
            blob |= st->e[k].kind == E_WEIGHT && t.codec != MQ_CODEC_INT8_ROW && t.convert;
        }
        if (blob) mb += BNB_BLOB_MAX;
        if (n_sh == 0 || (max && cur > 0 && cur + mb > max)) {
            n_sh++;
            cur = 0;
        }
        shard_of[i] = n_sh - 1;
        cur += mb;
    }
    if (n_sh == 0) n_sh = 1;
    enum mq_status cs = choose_extra_files(p, st, n_sh, err);
    if (cs != MQ_OK) {
        free(shard_of);
        return cs;
    }
    st->sh = calloc(n_sh, sizeof *st->sh);
    st->names = calloc(n_sh, sizeof *st->names);
    st->sizes = calloc(n_sh, sizeof *st->sizes);
    struct entry *ord = calloc(st->n * 2 + 1, sizeof *ord);
    if (!st->sh || !st->names || !st->sizes || !ord) {
        free(shard_of);
        free(ord);
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    }
    st->n_sh = n_sh;
    size_t w = 0;
    enum mq_status s = MQ_OK;
    uint64_t base = 0;
    for (size_t sh = 0; sh < n_sh && s == MQ_OK; sh++) {
        struct shard *S = &st->sh[sh];
        if (n_sh == 1) snprintf(S->name, sizeof S->name, "model.safetensors");
        else snprintf(S->name, sizeof S->name, "model-%05zu-of-%05zu.safetensors", sh + 1, n_sh);
        S->begin = w;
        for (size_t k = 0; k < fixed; k++)
            if (shard_of[st->e[k].t] == sh) ord[w++] = st->e[k];
        /* the blobs of this shard's 4-bit modules */
        for (size_t k = 0; k < fixed; k++) {
            const struct entry *e = &st->e[k];
            struct mq_plan_tensor_info t;
            mq_plan_tensor_info(p, e->t, &t);
            if (shard_of[e->t] != sh || e->kind != E_WEIGHT || t.codec == MQ_CODEC_INT8_ROW) continue;
            const char *sfx = t.codec == MQ_CODEC_NF4 ? ".quant_state.bitsandbytes__nf4"
                                                      : ".quant_state.bitsandbytes__fp4";
            size_t nl = strlen(t.name) + strlen(sfx) + 1;
            struct entry b = {0};
            b.name = malloc(nl);
            if (!b.name) {
                s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
                break;
            }
            snprintf(b.name, nl, "%s%s", t.name, sfx);
            b.dtype = "U8";
            b.ndim = 1;
            b.shape[0] = BNB_BLOB_MAX;
            b.len = BNB_BLOB_MAX;
            b.kind = E_STATE;
            b.t = e->t;
            ord[w++] = b;
        }
        S->end = w;
        uint64_t off = 0;
        for (size_t k = S->begin; k < S->end; k++) {
            ord[k].shard = sh;
            ord[k].off = off;
            off += ord[k].len;
            if (ord[k].kind != E_STATE) S->fixed_end = off;
        }
        S->base = base;
        struct sbuf hb = {0};
        header_json(st, ord, S, &hb, false);
        if (hb.oom) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory for the header");
        S->header_len = (hb.len + 7) / 8 * 8;
        free(hb.p);
        S->planned = 8 + S->header_len + off;
        base += S->planned;
        st->names[sh] = S->name;
        st->sizes[sh] = S->planned;
    }
    free(shard_of);
    /* the entries now live in `ord` (blob names included) */
    free(st->e);
    st->e = ord;
    st->n = w;
    st->cap = st->n * 2 + 1;
    MQ_TRY(s);
    mq_plan_set_files(p, n_sh, (const char *const *)st->names, st->sizes);
    mq_plan_set_sizes(p, data_start(&st->sh[0]), base);
    for (size_t k = 0; k < st->n; k++) {
        struct entry *e = &st->e[k];
        if (e->kind == E_PLAIN || e->kind == E_WEIGHT) mq_plan_tensor_set_offset(p, e->t, abs_off(st, e));
        /* written chunk by chunk (kept side data, double quant, has no E_SIDE entry) */
        if (e->kind == E_SIDE) mq_plan_tensor_set_side(p, e->t, abs_off(st, e), false);
    }
    st->qabs_of = malloc((n_t ? n_t : 1) * sizeof *st->qabs_of);
    st->nested_of = malloc((n_t ? n_t : 1) * sizeof *st->nested_of);
    if (!st->qabs_of || !st->nested_of) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    for (size_t i = 0; i < n_t; i++) st->qabs_of[i] = st->nested_of[i] = SIZE_MAX;
    for (size_t k = 0; k < st->n; k++) {
        if (st->e[k].kind == E_QABS) st->qabs_of[st->e[k].t] = k;
        if (st->e[k].kind == E_NESTED) st->nested_of[st->e[k].t] = k;
    }
    mq_plan_set_file_type(p, -1);
    return MQ_OK;
}

/*
** Upper bound of the small files finish() adds (for the free-space check before the data pass):
** the side files chosen at layout as they are, config.json twice over (plus its
** quantization_config), and the shard index (one "name": "shard" line per entry).
*/
static enum mq_status side_bytes(const struct mq_model *m, const struct bnb_state *st, uint64_t *out,
                                 struct mq_error *err)
{
    uint64_t total = 64u << 10; /* quantization_config, JSON indentation, the index's header */
    struct stat fs;
    const struct mq_config *c = mq_model_config(m);
    if (c->present && stat(c->path, &fs) == 0) total += 2 * (uint64_t)fs.st_size;
    if (c->present) {
        char dir[4096];
        MQ_TRY(model_dir(m, dir, sizeof dir, err));
        for (size_t i = 0; i < st->n_extra; i++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s", dir, st->extra[i].name);
            if (mq_hf_is_side_file(st->extra[i].name) && stat(path, &fs) == 0) total += (uint64_t)fs.st_size;
        }
    }
    if (st->n_sh > 1)
        for (size_t k = 0; k < st->n; k++) total += strlen(st->e[k].name) + 64;
    *out = total;
    return MQ_OK;
}

static enum mq_status bnb_layout(struct mq_plan *p, struct mq_error *err)
{
    struct bnb_state *st = mq_plan_writer_state(p);
    const size_t n_t = mq_plan_n_tensors(p);
    st->dq_offset = calloc(n_t ? n_t : 1, sizeof *st->dq_offset);
    if (!st->dq_offset) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    for (size_t i = 0; i < n_t; i++) {
        struct mq_plan_tensor_info ti;
        const struct mq_plan_tensor_info *t = &ti;
        mq_plan_tensor_info(p, i, &ti);
        const char *name = t->name;
        if (!t->convert) {
            MQ_TRY(add_entry(st, name, "", mq_dtype_name(t->raw_dtype), t->ndim, t->shape, t->bytes, E_PLAIN, i, err));
            continue;
        }
        if (t->codec == MQ_CODEC_F32 || t->codec == MQ_CODEC_F16 || t->codec == MQ_CODEC_BF16) {
            MQ_TRY(add_entry(st, name, "", codec_dtype(t->codec), t->ndim, t->shape, t->bytes, E_PLAIN, i, err));
            continue;
        }
        if (st->conv1d[i]) {
            /* bitsandbytes quantizes Conv1D weights transposed to [out, in] (and transformers does not
             * transpose pre-quantized ones back): read them transposed */
            MQ_TRY(mq_plan_tensor_read_transposed(p, i, err));
            mq_plan_tensor_info(p, i, &ti); /* its shape and bytes as read */
        }
        size_t nl = strlen(name);
        if (nl < 7 || strcmp(name + nl - 7, ".weight") != 0 || t->ndim != 2)
            return MQ_FAIL(err, MQ_E_USAGE, "bnb-linear", "tensor %s: bitsandbytes quantizes Linear weights "
                           "([out, in] tensors named *.weight) only", name);
        uint64_t n = t->numel;
        if (t->codec == MQ_CODEC_INT8_ROW) {
            char mod[1024];
            snprintf(mod, sizeof mod, "%.*s", (int)(nl - 7), name);
            uint64_t rows[1] = {t->shape[0]};
            MQ_TRY(add_entry(st, name, "", "I8", 2, t->shape, n, E_WEIGHT, i, err));
            MQ_TRY(add_entry(st, mod, ".SCB", "F32", 1, rows, t->shape[0] * 4, E_SIDE, i, err));
            MQ_TRY(add_entry(st, name, "_format", "U8", 0, NULL, 1, E_WFMT, i, err));
            continue;
        }
        if (n % 2)
            return MQ_FAIL(err, MQ_E_USAGE, "bnb-odd", "tensor %s: %" PRIu64 " elements; transformers cannot load "
                           "an odd element count in 4-bit (its packed shape check needs n/2)", name, n);
        uint64_t blk = mq_codec_block(t->codec, &t->params), nb = (n + blk - 1) / blk, nb2 = (nb + 255) / 256;
        uint64_t wshape[2] = {n / 2, 1}, s_nb[1] = {nb}, s16[1] = {16}, s_nb2[1] = {nb2}, s256[1] = {256};
        bool dq = t->params.double_quant;
        MQ_TRY(add_entry(st, name, "", "U8", 2, wshape, n / 2, E_WEIGHT, i, err));
        if (dq) MQ_TRY(add_entry(st, name, ".absmax", "U8", 1, s_nb, nb, E_QABS, i, err));
        else MQ_TRY(add_entry(st, name, ".absmax", "F32", 1, s_nb, nb * 4, E_SIDE, i, err));
        MQ_TRY(add_entry(st, name, ".quant_map", "F32", 1, s16, 64, E_QMAP, i, err));
        if (dq) {
            MQ_TRY(add_entry(st, name, ".nested_absmax", "F32", 1, s_nb2, nb2 * 4, E_NESTED, i, err));
            MQ_TRY(add_entry(st, name, ".nested_quant_map", "F32", 1, s256, 1024, E_NMAP, i, err));
        }
        mq_plan_tensor_set_side(p, i, 0, dq);
    }
    MQ_TRY(plan_shards(p, st, err));
    uint64_t sb;
    MQ_TRY(side_bytes(mq_plan_model(p), st, &sb, err));
    mq_plan_set_side_bytes(p, sb);
    return MQ_OK;
}

/* The double-quant entry of plan tensor t (E_QABS or E_NESTED), O(1): indexed at layout. */
static struct entry *find_entry(struct bnb_state *st, size_t t, enum entry_kind kind)
{
    size_t k = kind == E_QABS ? st->qabs_of[t] : kind == E_NESTED ? st->nested_of[t] : SIZE_MAX;
    return k < st->n ? &st->e[k] : NULL;
}

/* float32 little-endian: the F32 codec's encoding */
static void store_f32le(uint8_t *dst, const float *v, size_t n)
{
    struct mq_qbuf out = {dst, NULL, NULL};
    (void)mq_quantize(MQ_CODEC_F32, NULL, v, n, n, &out, true, NULL); /* F32 never fails for n >= 1 */
}

static enum mq_status bnb_tensor_side(struct mq_plan *p, size_t i, const float *absmax, uint64_t nb,
                                      struct mq_outfile *out, struct mq_error *err)
{
    struct bnb_state *st = mq_plan_writer_state(p);
    struct entry *eq = find_entry(st, i, E_QABS), *en = find_entry(st, i, E_NESTED);
    struct mq_plan_tensor_info t;
    mq_plan_tensor_info(p, i, &t);
    if (!eq || !en) return MQ_FAIL(err, MQ_E_INTERNAL, "bnb-side", "no double-quant entries for %s", t.name);
    uint64_t nb2 = (nb + 255) / 256;
    uint8_t *q = malloc((size_t)nb + 1);
    float *nested = malloc((size_t)nb2 * 4 + 4);
    uint8_t *le = malloc((size_t)nb2 * 4 + 4);
    enum mq_status s = MQ_OK;
    if (!q || !nested || !le) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    if (s == MQ_OK) {
        mq_bnb_double_quant(absmax, (size_t)nb, q, nested, &st->dq_offset[i]);
        store_f32le(le, nested, (size_t)nb2);
        s = mq_outfile_pwrite(out, q, (size_t)nb, abs_off(st, eq), err);
        if (s == MQ_OK) s = mq_outfile_pwrite(out, le, (size_t)nb2 * 4, abs_off(st, en), err);
    }
    free(q);
    free(nested);
    free(le);
    return s;
}

/* ---- finish: constants, blobs, extra files, checksums, headers ---- */

/* Adds one of the planned extra files to the output and records the checksum of its bytes. */
static enum mq_status add_file(struct bnb_state *st, struct mq_outfile *out, const char *name, const void *data,
                               size_t len, struct mq_error *err)
{
    struct extra_file *f = NULL;
    for (size_t i = 0; i < st->n_extra; i++)
        if (strcmp(st->extra[i].name, name) == 0) f = &st->extra[i];
    if (!f) return MQ_FAIL(err, MQ_E_INTERNAL, "bnb-files", "%s was not planned", name);
    f->hash = XXH3_64bits(data, len);
    return mq_outfile_add_file(out, name, data, len, err);
}

static enum mq_status hash_range(struct mq_outfile *out, uint64_t off, uint64_t len, uint64_t *h, uint8_t *buf,
                                 XXH3_state_t *x, struct mq_error *err)
{
    XXH3_64bits_reset(x);
    for (uint64_t k = 0; k < len; k += HASH_CHUNK) {
        size_t n = len - k < HASH_CHUNK ? (size_t)(len - k) : HASH_CHUNK;
        MQ_TRY(mq_outfile_pread(out, buf, n, off + k, err));
        XXH3_64bits_update(x, buf, n);
    }
    *h = XXH3_64bits_digest(x);
    return MQ_OK;
}

/* The input's config.json with "quantization_config" (doc section 4.4) set. */
static enum mq_status write_config(struct mq_plan *p, struct mq_outfile *out, struct mq_error *err)
{
    const struct mq_config *c = mq_model_config(mq_plan_model(p));
    /* the tree parsed when the model was opened (src/config.c), copied: the model stays as read */
    cJSON *root = c->json ? cJSON_Duplicate(c->json, true) : cJSON_CreateObject();
    if (!root) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory writing config.json");
    const struct mq_target_info *ti = mq_target_info(mq_plan_target(p));
    bool four = ti->codec != MQ_CODEC_INT8_ROW;
    bool dq = false;
    enum mq_dtype src = MQ_DTYPE_BF16;
    cJSON *skip = cJSON_CreateArray();
    for (size_t i = 0; i < mq_plan_n_tensors(p); i++) {
        struct mq_plan_tensor_info ts;
        const struct mq_plan_tensor_info *t = &ts;
        mq_plan_tensor_info(p, i, &ts);
        if (t->quantized && t->convert) {
            dq |= t->params.double_quant;
            if (!t->generated) src = t->src_dtype;
            continue;
        }
        /* every 2-D *.weight left unquantized that is not an embedding or a norm is a Linear to skip */
        size_t nl = strlen(t->name);
        if (t->ndim == 2 && nl > 7 && !strcmp(t->name + nl - 7, ".weight") && !strstr(t->name, "embed") &&
            !strstr(t->name, "norm") && !strstr(t->name, "wte") && !strstr(t->name, "wpe")) {
            char mod[1024];
            snprintf(mod, sizeof mod, "%.*s", (int)(nl - 7), t->name);
            cJSON_AddItemToArray(skip, cJSON_CreateString(mod));
        }
    }
    /* transformers replaces its default skip list by ours: lm_head must be in it when unquantized */
    cJSON *q = cJSON_CreateObject();
    cJSON_AddBoolToObject(q, "_load_in_4bit", four);
    cJSON_AddBoolToObject(q, "_load_in_8bit", !four);
    cJSON_AddStringToObject(q, "bnb_4bit_compute_dtype", torch_dtype(src));
    cJSON_AddStringToObject(q, "bnb_4bit_quant_storage", "uint8");
    cJSON_AddStringToObject(q, "bnb_4bit_quant_type", ti->codec == MQ_CODEC_FP4 ? "fp4" : "nf4");
    cJSON_AddBoolToObject(q, "bnb_4bit_use_double_quant", dq);
    cJSON_AddBoolToObject(q, "llm_int8_enable_fp32_cpu_offload", false);
    cJSON_AddBoolToObject(q, "llm_int8_has_fp16_weight", false);
    cJSON_AddItemToObject(q, "llm_int8_skip_modules", skip);
    cJSON_AddNumberToObject(q, "llm_int8_threshold", 6.0);
    cJSON_AddBoolToObject(q, "load_in_4bit", four);
    cJSON_AddBoolToObject(q, "load_in_8bit", !four);
    cJSON_AddStringToObject(q, "quant_method", "bitsandbytes");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "quantization_config");
    cJSON_AddItemToObject(root, "quantization_config", q);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory writing config.json");
    size_t tl = strlen(text);
    char *with_nl = realloc(text, tl + 2);
    if (!with_nl) {
        free(text);
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    }
    with_nl[tl] = '\n';
    with_nl[tl + 1] = '\0';
    enum mq_status s = add_file(mq_plan_writer_state(p), out, "config.json", with_nl, tl + 1, err);
    free(with_nl);
    return s;
}

/* Tokenizer and generation files beside config.json, copied byte for byte (those chosen at layout). */
static enum mq_status copy_side_files(struct bnb_state *st, const struct mq_model *m, struct mq_outfile *out,
                                      struct mq_error *err)
{
    if (!mq_model_config(m)->present) return MQ_OK; /* side files come from config.json's folder */
    char dir[4096];
    MQ_TRY(model_dir(m, dir, sizeof dir, err));
    for (size_t i = 0; i < st->n_extra; i++) {
        if (!mq_hf_is_side_file(st->extra[i].name)) continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, st->extra[i].name);
        char *data;
        size_t len;
        MQ_TRY(mq_read_small_file(path, 256u << 20, "side-file-size", &data, &len, err));
        enum mq_status s = add_file(st, out, st->extra[i].name, data, len, err);
        free(data);
        MQ_TRY(s);
    }
    return MQ_OK;
}

/* model.safetensors.index.json: total_size (tensor bytes) and the shard of every key. */
static enum mq_status write_index(struct bnb_state *st, struct mq_outfile *out, struct mq_error *err)
{
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_CreateObject(), *map = cJSON_CreateObject();
    uint64_t total = 0;
    for (size_t k = 0; k < st->n; k++) {
        total += st->e[k].len;
        cJSON_AddStringToObject(map, st->e[k].name, st->sh[st->e[k].shard].name);
    }
    cJSON_AddNumberToObject(meta, "total_size", (double)total);
    cJSON_AddItemToObject(root, "metadata", meta);
    cJSON_AddItemToObject(root, "weight_map", map);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory writing the index");
    enum mq_status s = add_file(st, out, INDEX_NAME, text, strlen(text), err);
    free(text);
    return s;
}

static enum mq_status bnb_finish(struct mq_plan *p, struct mq_outfile *out, struct mq_error *err)
{
    struct bnb_state *st = mq_plan_writer_state(p);
    float nf4[16], fp4[16], dyn[256];
    for (unsigned c = 0; c < 16; c++) nf4[c] = mq_nf4_value(c), fp4[c] = mq_fp4_value(c);
    mq_bnb_dynamic_map(dyn);
    uint8_t le[1024];
    for (size_t sh = 0; sh < st->n_sh; sh++) st->sh[sh].size = st->sh[sh].fixed_end;
    for (size_t k = 0; k < st->n; k++) {
        struct entry *e = &st->e[k];
        struct mq_plan_tensor_info ts;
        const struct mq_plan_tensor_info *t = &ts;
        mq_plan_tensor_info(p, e->t, &ts);
        if (e->kind == E_QMAP) {
            store_f32le(le, t->codec == MQ_CODEC_NF4 ? nf4 : fp4, 16);
            MQ_TRY(mq_outfile_pwrite(out, le, 64, abs_off(st, e), err));
        } else if (e->kind == E_NMAP) {
            store_f32le(le, dyn, 256);
            MQ_TRY(mq_outfile_pwrite(out, le, 1024, abs_off(st, e), err));
        } else if (e->kind == E_WFMT) {
            uint8_t zero = 0;
            MQ_TRY(mq_outfile_pwrite(out, &zero, 1, abs_off(st, e), err));
        } else if (e->kind == E_STATE) {
            char json[BNB_BLOB_MAX + 64];
            enum mq_dtype src = t->src_dtype; /* F32 when generated */
            size_t n = state_json(t, src, st->dq_offset[e->t], t->params.double_quant, json, sizeof json);
            if (n > BNB_BLOB_MAX)
                return MQ_FAIL(err, MQ_E_INTERNAL, "bnb-state", "%s: quant_state longer than planned", e->name);
            struct shard *S = &st->sh[e->shard];
            e->off = S->size;
            e->len = n;
            e->shape[0] = n;
            S->size += n;
            MQ_TRY(mq_outfile_pwrite(out, json, n, abs_off(st, e), err));
        }
    }
    uint8_t *buf = malloc(HASH_CHUNK);
    XXH3_state_t *x = XXH3_createState();
    enum mq_status s = buf && x ? MQ_OK : MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    for (size_t k = 0; s == MQ_OK && k < st->n; k++)
        s = hash_range(out, abs_off(st, &st->e[k]), st->e[k].len, &st->e[k].hash, buf, x, err);
    free(buf);
    XXH3_freeState(x);
    MQ_TRY(s);
    /* the other files first: their checksums go into every shard header */
    if (st->n_sh > 1) MQ_TRY(write_index(st, out, err));
    MQ_TRY(write_config(p, out, err));
    MQ_TRY(copy_side_files(st, mq_plan_model(p), out, err));
    uint64_t total = 0;
    for (size_t sh = 0; sh < st->n_sh; sh++) {
        struct shard *S = &st->sh[sh];
        struct sbuf b = {0};
        header_json(st, st->e, S, &b, true);
        if (b.oom || b.len > S->header_len) {
            free(b.p);
            return MQ_FAIL(err, b.oom ? MQ_E_NOMEM : MQ_E_INTERNAL, "bnb-header", "header larger than planned");
        }
        size_t hl = (size_t)S->header_len;
        uint8_t *h = malloc(8 + hl);
        if (!h) {
            free(b.p);
            return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
        }
        for (int k = 0; k < 8; k++) h[k] = (uint8_t)((uint64_t)hl >> (8 * k));
        memcpy(h + 8, b.p, b.len);
        memset(h + 8 + b.len, ' ', hl - b.len); /* safetensors allows trailing spaces in the header */
        free(b.p);
        /* the header checksum over all of it, its own 16 digits as '0's (checksums.h) */
        char hex[MQ_ST_HEADER_SUM_DIGITS + 1];
        snprintf(hex, sizeof hex, "%016" PRIx64, XXH3_64bits(h, 8 + hl));
        memcpy(h + MQ_ST_HEADER_SUM_AT, hex, MQ_ST_HEADER_SUM_DIGITS);
        s = mq_outfile_pwrite(out, h, 8 + hl, S->base, err);
        free(h);
        MQ_TRY(s);
        MQ_TRY(mq_outfile_truncate(out, sh, 8 + S->header_len + S->size, err));
        total += 8 + S->header_len + S->size;
    }
    mq_plan_set_file_size(p, total);
    return MQ_OK;
}

static void bnb_release(struct mq_plan *p)
{
    struct bnb_state *st = mq_plan_writer_state(p);
    if (!st) return;
    for (size_t k = 0; k < st->n; k++) free(st->e[k].name);
    free(st->e);
    free(st->dq_offset);
    free(st->conv1d);
    free(st->qabs_of);
    free(st->nested_of);
    free(st->sh);
    free(st->names);
    free(st->sizes);
    free(st);
    mq_plan_set_writer_state(p, NULL);
}

const struct mq_writer_ops mq_bnb_writer = {
    .name = "bnb",
    .ext = "",
    .stores_codec = bnb_stores_codec,
    .prepare = bnb_prepare,
    .layout = bnb_layout,
    .tensor_side = bnb_tensor_side,
    .finish = bnb_finish,
    .release = bnb_release,
    .folder = true,
    .own_checksums = true,
};
