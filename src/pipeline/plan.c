/* plan.c - from input tensors to output tensors with names, types, sizes and offsets. */
#include "plan.h"

#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bnb_source.h"
#include "ckd.h"
#include "lora_merge.h"
#include "tensor_role.h"

static bool float_codec_of(enum mq_dtype d, enum mq_codec *c)
{
    switch (d) {
    case MQ_DTYPE_F32: *c = MQ_CODEC_F32; return true;
    case MQ_DTYPE_F16: *c = MQ_CODEC_F16; return true;
    case MQ_DTYPE_BF16: *c = MQ_CODEC_BF16; return true;
    default: return false;
    }
}

/* The codec that reads a GGUF tensor of this ggml type, if modelq has one. */
static bool codec_of_ggml(int32_t ggml_type, enum mq_codec *c)
{
    for (int i = 0; i < MQ_CODEC_COUNT; i++) {
        if (mq_codec_info((enum mq_codec)i)->ggml_type == ggml_type) {
            *c = (enum mq_codec)i;
            return true;
        }
    }
    return false;
}

/*
** Tensor t as input tensor i (shape, dtype, bytes) and how its elements are read: the one place
** where what a reader produced (a bitsandbytes weight, a GGUF type) becomes a source.
*/
static void take_input(const struct mq_model *m, size_t i, struct mq_plan_tensor *t)
{
    const struct mq_tensor *in = &m->tensors[i];
    t->nseg = 1;
    t->seg_one = (struct mq_src_seg){i, 0, in->numel, 0, in->nbytes};
    t->ndim = in->ndim;
    memcpy(t->shape, in->shape, sizeof t->shape);
    t->numel = in->numel;
    t->row_len = mq_tensor_row_len(in);
    t->rows = t->row_len ? t->numel / t->row_len : 0;
    t->raw_dtype = in->dtype;
    t->bytes = in->nbytes;
    enum mq_codec c;
    if (in->bnb) { /* bitsandbytes weight: its filter decodes any element range */
        t->kind = MQ_SRC_FILTER;
        t->src_codec = in->bnb->codec;
        t->filter = mq_bnb_read_f32;
    } else if (in->from_gguf && in->ggml_type > 0 && in->ggml_type != 1 && in->ggml_type != 30) {
        /* not F32/F16/BF16: a quantized type, or ints/F64 */
        t->raw_ggml_type = in->ggml_type;
        if (codec_of_ggml(in->ggml_type, &c)) {
            t->kind = MQ_SRC_QUANT;
            t->src_codec = c;
        } else {
            t->kind = MQ_SRC_RAW;
        }
    } else if (float_codec_of(in->dtype, &c)) {
        t->kind = MQ_SRC_FLOAT;
        t->src_codec = c;
    } else {
        t->kind = MQ_SRC_RAW;
    }
}

enum mq_status mq_plan_add(struct mq_plan *p, const char *name, long src, struct mq_error *err)
{
    if (src >= 0 && (size_t)src >= p->model->n_tensors)
        return MQ_FAIL(err, MQ_E_INTERNAL, "plan-src", "tensor %s: no input tensor %ld", name, src);
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct mq_plan_tensor *t = realloc(p->t, cap * sizeof *t);
        if (!t) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory planning tensor %s", name);
        p->t = t;
        p->cap = cap;
    }
    struct mq_plan_tensor *t = &p->t[p->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory planning tensor %s", name);
    t->raw_ggml_type = -1;
    if (src >= 0) take_input(p->model, (size_t)src, t);
    p->n++;
    return MQ_OK;
}

/* Same source type and shape: tensors that can be concatenated. */
static bool same_source(const struct mq_plan_tensor *a, const struct mq_plan_tensor *b)
{
    return a->kind == b->kind && a->src_codec == b->src_codec && a->filter == b->filter &&
           a->raw_dtype == b->raw_dtype && a->raw_ggml_type == b->raw_ggml_type && a->ndim == b->ndim &&
           memcmp(a->shape, b->shape, sizeof a->shape) == 0 && a->bytes == b->bytes;
}

enum mq_status mq_plan_add_stacked(struct mq_plan *p, const char *name, const long *srcs, size_t n,
                                   struct mq_error *err)
{
    if (n == 0) return MQ_FAIL(err, MQ_E_INTERNAL, "stack", "tensor %s: nothing to stack", name);
    MQ_TRY(mq_plan_add(p, name, srcs[0], err));
    struct mq_plan_tensor *t = &p->t[p->n - 1];
    if (srcs[0] < 0 || t->kind == MQ_SRC_GENERATED || t->ndim + 1 > MQ_MAX_DIMS || t->ndim == 0)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "stack", "tensor %s: cannot stack tensors of %u dimensions", name,
                       t->ndim);
    struct mq_src_seg *segs = calloc(n, sizeof *segs);
    if (!segs) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory planning tensor %s", name);
    struct mq_plan_tensor one = *t;
    for (size_t k = 0; k < n; k++) {
        struct mq_plan_tensor other = {.raw_ggml_type = -1};
        if (srcs[k] < 0 || (size_t)srcs[k] >= p->model->n_tensors) {
            free(segs);
            return MQ_FAIL(err, MQ_E_INTERNAL, "plan-src", "tensor %s: no input tensor %ld", name, srcs[k]);
        }
        take_input(p->model, (size_t)srcs[k], &other);
        if (!same_source(&one, &other)) {
            free(segs);
            return MQ_FAIL(err, MQ_E_CORRUPT, "stack-shape",
                           "tensor %s: %s and %s differ in shape or type: they cannot be stacked", name,
                           p->model->tensors[srcs[0]].name, p->model->tensors[srcs[k]].name);
        }
        segs[k] = other.seg_one;
    }
    uint64_t numel, bytes;
    if (mq_ckd_mul_u64(&numel, one.numel, n) || mq_ckd_mul_u64(&bytes, one.bytes, n)) {
        free(segs);
        return MQ_FAIL(err, MQ_E_OVERFLOW, "size", "tensor %s: %zu stacked tensors overflow", name, n);
    }
    t->nseg = n;
    t->segs = n > 1 ? segs : NULL;
    if (n == 1) free(segs);
    t->ndim = one.ndim + 1;
    t->shape[0] = n;
    memcpy(t->shape + 1, one.shape, one.ndim * sizeof t->shape[0]);
    t->numel = numel;
    t->bytes = bytes;
    t->rows = t->row_len ? numel / t->row_len : 0;
    return MQ_OK;
}

enum mq_status mq_plan_add_split(struct mq_plan *p, const char *name, long src, uint64_t row0, uint64_t rows,
                                 struct mq_error *err)
{
    MQ_TRY(mq_plan_add(p, name, src, err));
    struct mq_plan_tensor *t = &p->t[p->n - 1];
    const uint64_t all = t->ndim >= 2 ? t->shape[0] : 0, per = all ? t->numel / all : 0; /* elements per row */
    if (src < 0 || t->ndim < 2 || row0 > all || rows > all - row0 || rows == 0 || t->bytes % all)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "split", "tensor %s: rows [%llu, +%llu) of %s: not a split of its "
                       "outermost dimension", name, (unsigned long long)row0, (unsigned long long)rows,
                       src >= 0 ? p->model->tensors[src].name : "(generated)");
    const uint64_t row_bytes = t->bytes / all;
    t->seg_one.first = row0 * per; /* within numel: no overflow */
    t->seg_one.n = rows * per;
    t->seg_one.off = row0 * row_bytes;
    t->seg_one.bytes = rows * row_bytes;
    t->shape[0] = rows;
    t->numel = rows * per;
    t->bytes = rows * row_bytes;
    t->rows = t->row_len ? t->numel / t->row_len : 0;
    return MQ_OK;
}

void mq_plan_tensor_release(struct mq_plan_tensor *t)
{
    free(t->name);
    free(t->generated);
    free(t->segs);
    t->name = NULL;
    t->generated = NULL;
    t->segs = NULL;
}

void mq_plan_free(struct mq_plan *p)
{
    if (p->writer && p->writer->release) p->writer->release(p);
    mq_lora_merge_free(p);
    for (size_t i = 0; i < p->n; i++) mq_plan_tensor_release(&p->t[i]);
    free(p->t);
    mq_meta_free(&p->meta);
    memset(p, 0, sizeof *p);
}

const struct mq_tensor *mq_plan_src_tensor(const struct mq_plan *p, const struct mq_plan_tensor *t)
{
    return t->nseg ? &p->model->tensors[mq_plan_seg(t, 0)->tensor] : NULL;
}

uint64_t mq_plan_src_bytes(const struct mq_plan *p, const struct mq_plan_tensor *t)
{
    (void)p;
    uint64_t n = 0;
    for (size_t k = 0; k < t->nseg; k++) n += mq_plan_seg(t, k)->bytes; /* <= the input files' sizes */
    return n;
}

const char *mq_plan_src_type_name(const struct mq_plan *p, const struct mq_plan_tensor *t)
{
    if (t->kind == MQ_SRC_GENERATED) return "F32";
    if (t->kind == MQ_SRC_QUANT || t->kind == MQ_SRC_FILTER) return mq_codec_info(t->src_codec)->name;
    return mq_dtype_name(mq_plan_src_tensor(p, t)->dtype);
}

static enum mq_status add_inputs(struct mq_plan *p, const struct mq_model *m, struct mq_error *err)
{
    for (size_t i = 0; i < m->n_tensors; i++) MQ_TRY(mq_plan_add(p, m->tensors[i].name, (long)i, err));
    return MQ_OK;
}

/* The --keep and --tensor-type patterns, compiled once per plan. */
struct patterns {
    regex_t *keep, *over;
    enum mq_codec *over_codec; /* the type of each --tensor-type, parsed once */
    size_t n_keep, n_over;
    /* per --tensor-type: tensors it matches that may be retyped, and that may not (the first of
     * those, with the rule that keeps it) */
    uint64_t *hit_eligible, *hit_other;
    const char **other_name, **other_why;
};

static void patterns_free(struct patterns *pt)
{
    for (size_t k = 0; k < pt->n_keep; k++) regfree(&pt->keep[k]);
    for (size_t k = 0; k < pt->n_over; k++) regfree(&pt->over[k]);
    free(pt->keep);
    free(pt->over);
    free(pt->over_codec);
    free(pt->hit_eligible);
    free(pt->hit_other);
    free(pt->other_name);
    free(pt->other_why);
}

/* Counts the --tensor-type patterns that match tensor t (eligible: the target's rules let
 * overrides retype it; else `why` says what keeps it). */
static void note_matches(struct patterns *pt, const struct mq_plan_tensor *t, bool eligible, const char *why)
{
    for (size_t k = 0; k < pt->n_over; k++) {
        if (regexec(&pt->over[k], t->name, 0, NULL, 0) != 0) continue;
        if (eligible) {
            pt->hit_eligible[k]++;
        } else if (pt->hit_other[k]++ == 0) {
            pt->other_name[k] = t->name;
            pt->other_why[k] = why;
        }
    }
}

/*
** A --tensor-type that retypes nothing is not an error (llama-quantize applies its patterns to the
** tensors it quantizes and ignores the rest silently), but says so: one warning per pattern that
** matches no tensor, or only tensors the target keeps (norms, 1-D tensors, routers ...).
*/
static void warn_unused_patterns(const struct mq_plan *p, const struct patterns *pt)
{
    const struct mq_convert_options *o = p->opt;
    if (!o->warn) return;
    char msg[768];
    for (size_t k = 0; k < pt->n_over; k++) {
        if (pt->hit_eligible[k]) continue;
        if (pt->hit_other[k] == 0)
            snprintf(msg, sizeof msg, "--tensor-type %s=%s matches no tensor: nothing retyped",
                     o->overrides[k].pattern, o->overrides[k].type);
        else
            snprintf(msg, sizeof msg,
                     "--tensor-type %s=%s matches only tensors that are not quantized (%" PRIu64
                     ", e.g. %s: %s): nothing retyped",
                     o->overrides[k].pattern, o->overrides[k].type, pt->hit_other[k], pt->other_name[k],
                     pt->other_why[k] ? pt->other_why[k] : "kept");
        o->warn(o->warn_ctx, msg);
    }
}

/* One POSIX extended pattern; errors name the option and the pattern. */
static enum mq_status compile_one(const char *opt, const char *pat, regex_t *re, struct mq_error *err)
{
    int rc = regcomp(re, pat, REG_EXTENDED | REG_NOSUB);
    if (rc == 0) return MQ_OK;
    char msg[128];
    regerror(rc, re, msg, sizeof msg);
    return MQ_FAIL(err, MQ_E_USAGE, "pattern", "%s '%s': not a valid POSIX extended regular expression: %s", opt,
                   pat, msg);
}

/* Compiles every pattern and checks every --tensor-type name up front, so that a typo is an error
 * even when its pattern matches no tensor of this model. */
static enum mq_status patterns_compile(struct patterns *pt, const struct mq_convert_options *o, struct mq_error *err)
{
    memset(pt, 0, sizeof *pt);
    pt->keep = calloc(o->n_keep ? o->n_keep : 1, sizeof *pt->keep);
    pt->over = calloc(o->n_overrides ? o->n_overrides : 1, sizeof *pt->over);
    size_t no = o->n_overrides ? o->n_overrides : 1;
    pt->over_codec = calloc(no, sizeof *pt->over_codec);
    pt->hit_eligible = calloc(no, sizeof *pt->hit_eligible);
    pt->hit_other = calloc(no, sizeof *pt->hit_other);
    pt->other_name = calloc(no, sizeof *pt->other_name);
    pt->other_why = calloc(no, sizeof *pt->other_why);
    if (!pt->keep || !pt->over || !pt->over_codec || !pt->hit_eligible || !pt->hit_other || !pt->other_name ||
        !pt->other_why)
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    for (size_t k = 0; k < o->n_overrides; k++) {
        if (!mq_codec_from_name(o->overrides[k].type, &pt->over_codec[k]))
            return MQ_FAIL(err, MQ_E_USAGE, "tensor-type", "--tensor-type %s=%s: unknown type '%s'",
                           o->overrides[k].pattern, o->overrides[k].type, o->overrides[k].type);
    }
    for (; pt->n_keep < o->n_keep; pt->n_keep++)
        MQ_TRY(compile_one("--keep", o->keep[pt->n_keep], &pt->keep[pt->n_keep], err));
    for (; pt->n_over < o->n_overrides; pt->n_over++)
        MQ_TRY(compile_one("--tensor-type", o->overrides[pt->n_over].pattern, &pt->over[pt->n_over], err));
    return MQ_OK;
}

static bool row_fits(enum mq_codec c, uint64_t row_len)
{
    const struct mq_codec_info *ci = mq_codec_info(c);
    return ci->flat_blocks || row_len % ci->block_elems == 0;
}

/* Applies the target's rules and the user's overrides to one tensor. */
static enum mq_status choose_type(struct mq_plan *p, const struct mq_rule_context *rc, struct patterns *pt,
                                  struct mq_plan_tensor *t, struct mq_error *err)
{
    const struct mq_convert_options *o = p->opt;
    const struct mq_target_info *ti = mq_target_info(p->target);
    if (t->kind == MQ_SRC_RAW) {
        t->convert = false;
        t->why = "not F32/F16/BF16: copied unchanged";
        note_matches(pt, t, false, t->why);
        return MQ_OK;
    }
    /* the rules see the output name and shape, with a float dtype */
    struct mq_tensor view = {0};
    view.name = t->name;
    view.dtype = t->kind == MQ_SRC_FLOAT || t->kind == MQ_SRC_FILTER ? mq_plan_src_tensor(p, t)->dtype : MQ_DTYPE_F32;
    view.ndim = t->ndim;
    memcpy(view.shape, t->shape, sizeof view.shape);
    view.numel = t->numel;
    view.nbytes = t->numel * 4;
    struct mq_tensor_plan tp;
    MQ_TRY(mq_target_plan_tensor(p->target, rc, &view, &tp, err));
    note_matches(pt, t, tp.eligible, tp.why);
    enum mq_codec keep_codec = t->src_codec; /* the source precision */
    if (t->kind == MQ_SRC_FILTER) float_codec_of(view.dtype, &keep_codec); /* bitsandbytes: its dequantized dtype */
    t->why = tp.why;
    t->fell_back = tp.fell_back;
    if (tp.convert && !(p->target == MQ_TARGET_AUTO && t->kind == MQ_SRC_QUANT)) {
        t->codec = tp.codec;
        t->params = tp.params;
        t->quantized = tp.quantized;
        if (t->codec == MQ_CODEC_NF4 || t->codec == MQ_CODEC_FP4) {
            if (o->double_quant) t->params.double_quant = true;
            if (o->blocksize) t->params.block_elems = o->blocksize;
        }
    } else {
        t->codec = keep_codec;
        t->quantized = false;
    }
    if (o->pure && tp.quantized && ti->rules == MQ_RULES_GGUF) {
        t->codec = ti->codec;
        t->fell_back = false;
        t->why = "--pure";
        if (!row_fits(t->codec, t->row_len)) {
            t->codec = mq_codec_fallback(t->codec, t->row_len);
            t->fell_back = true;
            t->why = "--pure; row length does not fit the block: fallback";
        }
    }
    /* --keep and --tensor-type retype weight matrices only (llama-quantize applies --tensor-type to
     * the tensors it quantizes): a broad pattern such as "ffn_" leaves ffn_norm in F32 */
    for (size_t k = 0; k < o->n_keep && tp.eligible; k++) {
        if (regexec(&pt->keep[k], t->name, 0, NULL, 0) == 0) {
            t->codec = keep_codec;
            t->params = (struct mq_codec_params){0};
            t->quantized = false;
            t->fell_back = false;
            t->overridden = true;
            t->why = "--keep";
            break;
        }
    }
    for (size_t k = 0; k < o->n_overrides && !t->overridden && tp.eligible; k++) {
        if (regexec(&pt->over[k], t->name, 0, NULL, 0) != 0) continue;
        enum mq_codec c = pt->over_codec[k];
        t->codec = c;
        t->params = (struct mq_codec_params){0};
        if (mq_codec_info(c)->flat_blocks) t->params = ti->params;
        t->quantized = mq_codec_is_quantized(c);
        t->overridden = true;
        t->fell_back = false;
        t->why = "--tensor-type";
        if (!row_fits(c, t->row_len)) {
            t->codec = mq_codec_fallback(c, t->row_len);
            t->fell_back = true;
            t->why = "--tensor-type; row length does not fit the block: fallback";
        }
        break;
    }
    /* llama-quantize refuses these without an importance matrix (with one, imatrix_plan.c decides) */
    if (!o->imatrix && mq_target_requires_imatrix(p->target, t->name, t->codec))
        return MQ_FAIL(err, MQ_E_USAGE, "needs-imatrix",
                       "--type %s: tensor %s would be %s, which llama-quantize writes only with an importance "
                       "matrix (\"this quantization requires an imatrix!\"); use q2_K, or --imatrix FILE",
                       ti->name, t->name, mq_codec_info(t->codec)->name);
    if (t->fell_back && o->no_fallback)
        return MQ_FAIL(err, MQ_E_USAGE, "no-fallback",
                       "tensor %s: rows of %" PRIu64 " elements do not split into %s blocks (--no-fallback)",
                       t->name, t->row_len, mq_codec_info(tp.codec)->name);
    if (p->writer && !p->writer->stores_codec(t->codec))
        return MQ_FAIL(err, MQ_E_USAGE, "type-format", "tensor %s: %s has no %s type", t->name,
                       mq_codec_info(t->codec)->name, p->writer->name);
    if (t->kind == MQ_SRC_FILTER && p->target == MQ_TARGET_AUTO && !t->overridden && t->codec == keep_codec)
        t->why = "bitsandbytes: no GGUF type, dequantized to the source dtype";
    if (t->kind == MQ_SRC_QUANT || t->kind == MQ_SRC_FILTER) {
        if (t->codec == t->src_codec && t->kind == MQ_SRC_QUANT && t->nxf == 0) { /* transforms need the values */
            t->convert = false;
            t->why = "already in this type: copied";
            return MQ_OK;
        }
        /* dequantizing to a float type is allowed; quantizing again needs the flag */
        if (mq_codec_is_quantized(t->codec) && !o->allow_requantize)
            return MQ_FAIL(err, MQ_E_USAGE, "requantize",
                           "tensor %s is already quantized (%s); converting it to %s compounds the error: "
                           "pass --allow-requantize to do it anyway",
                           t->name, mq_codec_info(t->src_codec)->name, mq_codec_info(t->codec)->name);
    }
    t->convert = true;
    return mq_codec_tensor_bytes(t->codec, &t->params, t->numel, t->row_len, &t->bytes, err);
}

/* The rule context from the plan's (output) names and the config. */
static void rule_context(const struct mq_plan *p, struct mq_rule_context *rc)
{
    mq_rule_context_init(rc, p->model);
    rc->has_output = false;
    for (size_t i = 0; i < p->n; i++)
        if (mq_tensor_role(p->t[i].name) == MQ_ROLE_OUTPUT) rc->has_output = true;
}

/* llama_ftype for `auto`: the type most parameters end up in among the converted matrices. */
static int auto_file_type(const struct mq_plan *p)
{
    uint64_t n[3] = {0, 0, 0};
    for (size_t i = 0; i < p->n; i++) {
        const struct mq_plan_tensor *t = &p->t[i];
        if (!t->convert || t->ndim < 2) continue;
        if (t->codec == MQ_CODEC_F32) n[0] += t->numel;
        else if (t->codec == MQ_CODEC_F16) n[1] += t->numel;
        else if (t->codec == MQ_CODEC_BF16) n[2] += t->numel;
    }
    if (n[2] >= n[1] && n[2] >= n[0] && n[2]) return 32;
    if (n[1] >= n[0] && n[1]) return 1;
    return 0;
}

enum mq_status mq_plan_build(struct mq_plan *p, const struct mq_model *m, const struct mq_convert_options *o,
                             enum mq_target target, const struct mq_writer_ops *writer, struct mq_error *err)
{
    memset(p, 0, sizeof *p);
    p->model = m;
    p->opt = o;
    p->target = target;
    p->writer = writer;
    p->file_type = mq_target_info(target)->llama_ftype;
    MQ_TRY(add_inputs(p, m, err));
    MQ_TRY(mq_lora_merge_plan(p, err)); /* --lora: the update first, in the input's row order */
    if (writer) MQ_TRY(writer->prepare(p, err));
    MQ_TRY(mq_lora_merge_finish(p, err));
    struct mq_rule_context rc;
    rule_context(p, &rc);
    struct patterns pt;
    enum mq_status s = patterns_compile(&pt, o, err);
    for (size_t i = 0; s == MQ_OK && i < p->n; i++) {
        s = choose_type(p, &rc, &pt, &p->t[i], err);
        if (s != MQ_OK) mq_error_prefix(err, "%s", m->input_path);
    }
    if (s == MQ_OK) warn_unused_patterns(p, &pt);
    patterns_free(&pt);
    MQ_TRY(s);
    if (target == MQ_TARGET_AUTO && p->file_type != -2) p->file_type = auto_file_type(p); /* -2: keep the input's */
    MQ_TRY(mq_plan_attach_imatrix(p, err));
    if (writer) return writer->layout(p, err);
    /* dry run without a container: tensors back to back */
    uint64_t off = 0;
    for (size_t i = 0; i < p->n; i++) {
        p->t[i].offset = off;
        if (mq_ckd_add_u64(&off, off, p->t[i].bytes))
            return MQ_FAIL(err, MQ_E_OVERFLOW, "size", "%s: total size overflows", m->input_path);
    }
    p->file_size = off;
    return MQ_OK;
}
