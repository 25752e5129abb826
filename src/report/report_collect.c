/*
** report_collect.c - the HTML report's measurements: the tap that samples the plotted tensor and
** histograms its errors during each dry run, the per-type rows, and mq_report_html().
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelq/estimate.h"
#include "modelq/quant.h"
#include "modelq/target.h"
#include "report_impl.h"
#include "tensor_role.h"

void mq_report_options_default(struct mq_report_options *o)
{
    memset(o, 0, sizeof *o);
    o->sample = MQ_REPORT_DEFAULT_SAMPLE;
    o->seed = MQ_REPORT_DEFAULT_SEED;
    o->ctx = MQ_ESTIMATE_DEFAULT_CTX;
}

void mq_rep_type_release(struct rep_type *t)
{
    for (size_t i = 0; i < t->n; i++) free(t->t[i].name);
    free(t->t);
    free(t->plot_name);
    free(t->pts);
    memset(t, 0, sizeof *t);
}

/* splitmix64: the sample key of flat index i (a fixed-seed hash: the same elements every run). */
static uint64_t sample_key(uint64_t seed, uint64_t i)
{
    uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void heap_down(struct rep_point *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l].key > h[m].key) m = l;
        if (r < n && h[r].key > h[m].key) m = r;
        if (m == i) return;
        struct rep_point t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_up(struct rep_point *h, size_t i)
{
    while (i > 0 && h[(i - 1) / 2].key < h[i].key) {
        struct rep_point t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

/* The default staircase tensor: the first attention matrix (query, or a fused QKV). */
static bool tap_pick(void *ctx, const char *name, const char *src_name, enum mq_codec codec, uint64_t row_len)
{
    struct mq_report *r = ctx;
    bool ok;
    if (r->plot_tensor) {
        ok = strcmp(name, r->plot_tensor) == 0 || strcmp(src_name, r->plot_tensor) == 0;
    } else {
        enum mq_role role = mq_tensor_role(name);
        ok = role == MQ_ROLE_ATTN_Q || role == MQ_ROLE_ATTN_QKV;
    }
    if (!ok) return false;
    struct rep_type *c = &r->cur;
    free(c->plot_name);
    c->plot_name = strdup(name);
    c->plot_codec = codec;
    /* the scale a value is divided by: its block's absmax (LLM.int8: its row's) */
    uint64_t blk = codec == MQ_CODEC_INT8_ROW ? row_len : mq_codec_block(codec, NULL);
    if (!mq_codec_is_quantized(codec)) blk = 0; /* plain floats: no scale */
    c->plot_block = blk > UINT32_MAX ? 0 : (uint32_t)blk;
    r->picked = c->plot_name != NULL;
    return r->picked;
}

/* Halves the histogram's resolution (doubles its range): bin j goes to j/2 + HIST_BINS/4. */
static void hist_widen(struct rep_type *c)
{
    uint64_t h[HIST_BINS] = {0};
    for (int j = 0; j < HIST_BINS; j++) h[j / 2 + HIST_BINS / 4] += c->hist[j];
    memcpy(c->hist, h, sizeof h);
    c->hist_exp++;
}

static void hist_add(struct rep_type *c, double e)
{
    while (e >= ldexp(1.0, c->hist_exp) || e < -ldexp(1.0, c->hist_exp)) hist_widen(c);
    /* floor(e / w) with w a power of two: exact, so merging later gives the same bins */
    double u = floor(ldexp(e, HIST_HALF_LOG2 - c->hist_exp));
    int j = (int)u + HIST_BINS / 2;
    if (j < 0) j = 0;
    if (j >= HIST_BINS) j = HIST_BINS - 1;
    c->hist[j]++;
}

static void tap_chunk(void *ctx, uint64_t first, size_t n, const float *orig, const float *deq)
{
    struct mq_report *r = ctx;
    struct rep_type *c = &r->cur;
    uint32_t cap = r->opt.sample;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < n; i++) {
        double x = orig[i], y = deq[i];
        if (!isfinite(x) || !isfinite(y)) {
            c->hist_nonfinite++;
            continue;
        }
        c->hist_n++;
        hist_add(c, y - x);
        uint64_t idx = first + i, key = sample_key(r->opt.seed, idx);
        if (r->heap_n == cap && key >= c->pts[0].key) continue;
        float scale = 1.0f;
        if (c->plot_block) {
            /* the chunk holds whole blocks (whole rows for per-row scales): see convert.h */
            uint64_t b0 = idx - idx % c->plot_block, b1 = b0 + c->plot_block;
            if (b0 < first) b0 = first;
            if (b1 > first + n) b1 = first + n;
            float m = 0.0f;
            for (uint64_t k = b0; k < b1; k++) m = fabsf(orig[k - first]) > m ? fabsf(orig[k - first]) : m;
            if (m > 0) scale = m;
        }
        struct rep_point p = {key, idx, orig[i], deq[i], scale};
        if (r->heap_n < cap) {
            c->pts[r->heap_n] = p;
            heap_up(c->pts, r->heap_n++);
        } else {
            c->pts[0] = p;
            heap_down(c->pts, r->heap_n, 0);
        }
    }
    pthread_mutex_unlock(&r->mu);
}

static enum mq_status start_type(struct mq_report *r, struct mq_error *err)
{
    mq_rep_type_release(&r->cur);
    r->cur.pts = malloc((size_t)r->opt.sample * sizeof *r->cur.pts);
    if (!r->cur.pts) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory for the report's sample");
    r->cur.hist_exp = HIST_START_EXP;
    r->heap_n = 0;
    r->picked = false;
    return MQ_OK;
}

enum mq_status mq_report_new(const struct mq_report_options *o, struct mq_report **out, struct mq_error *err)
{
    *out = NULL;
    if (!o->input) return MQ_FAIL(err, MQ_E_USAGE, "input", "no input given");
    if (o->sample > MQ_REPORT_MAX_SAMPLE)
        return MQ_FAIL(err, MQ_E_USAGE, "sample", "a sample of %u points is more than %u", o->sample,
                       MQ_REPORT_MAX_SAMPLE);
    struct mq_report *r = calloc(1, sizeof *r);
    if (!r) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory for the report");
    r->opt = *o;
    if (!r->opt.sample) r->opt.sample = MQ_REPORT_DEFAULT_SAMPLE;
    if (!r->opt.seed) r->opt.seed = MQ_REPORT_DEFAULT_SEED;
    if (!r->opt.ctx) r->opt.ctx = MQ_ESTIMATE_DEFAULT_CTX;
    r->input = strdup(o->input);
    r->plot_tensor = o->plot_tensor ? strdup(o->plot_tensor) : NULL;
    pthread_mutex_init(&r->mu, NULL);
    if (o->plot_tensor)
        snprintf(r->missing, sizeof r->missing,
                 "--plot-tensor '%.200s': no tensor of %.200s that the type converts has this name (use a name "
                 "`convert --dry-run` lists, or the input's name)", o->plot_tensor, o->input);
    else
        snprintf(r->missing, sizeof r->missing,
                 "%.200s: no attention matrix (attn_q, q_proj or a fused qkv) that the type converts: choose the "
                 "staircase's tensor with --plot-tensor NAME", o->input);
    r->tap = (struct mq_convert_tap){tap_pick, tap_chunk, r, r->missing};
    enum mq_status s = (!r->input || (o->plot_tensor && !r->plot_tensor))
                           ? MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory for the report")
                           : start_type(r, err);
    if (s != MQ_OK) {
        mq_report_free(r);
        return s;
    }
    *out = r;
    return MQ_OK;
}

void mq_report_free(struct mq_report *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_types; i++) mq_rep_type_release(&r->types[i]);
    mq_rep_type_release(&r->cur);
    pthread_mutex_destroy(&r->mu);
    free(r->input);
    free(r->plot_tensor);
    free(r);
}

const struct mq_convert_tap *mq_report_tap(struct mq_report *r) { return &r->tap; }

static int by_index(const void *a, const void *b)
{
    const struct rep_point *p = a, *q = b;
    return p->idx < q->idx ? -1 : p->idx > q->idx;
}

enum mq_status mq_report_add(struct mq_report *r, const struct mq_convert_report *rep, struct mq_error *err)
{
    if (r->n_types == MQ_REPORT_MAX_TYPES)
        return MQ_FAIL(err, MQ_E_USAGE, "report-types", "a report holds at most %d types", MQ_REPORT_MAX_TYPES);
    if (!rep->have_stats || !r->picked)
        return MQ_FAIL(err, MQ_E_USAGE, "report-stats",
                       "type %s: the report needs a run with stats and the report's tap", rep->target);
    for (size_t i = 0; i < r->n_types; i++)
        if (strcmp(r->types[i].target, rep->target) == 0)
            return MQ_FAIL(err, MQ_E_USAGE, "report-types", "type %s is in the report twice", rep->target);
    struct rep_type *c = &r->cur;
    enum mq_target tg;
    c->target = mq_target_for_convert(rep->target, &tg) ? mq_target_info(tg)->name : rep->target;
    c->codec = mq_target_for_convert(rep->target, &tg) ? mq_target_info(tg)->codec : MQ_CODEC_F32;
    c->t = calloc(rep->n_tensors ? rep->n_tensors : 1, sizeof *c->t);
    if (!c->t) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory for the report");
    for (size_t i = 0; i < rep->n_tensors; i++) {
        const struct mq_convert_tensor *s = &rep->tensors[i];
        struct rep_tensor *t = &c->t[i];
        if (!(t->name = strdup(s->name))) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory for the report");
        c->n = i + 1;
        t->out_type = s->out_type;
        t->numel = s->numel;
        t->bytes = s->bytes;
        t->bpw = s->bpw;
        t->have_stats = s->have_stats;
        t->stats = s->stats;
    }
    c->params = rep->params;
    c->quantized_params = rep->quantized_params;
    c->tensor_bytes = rep->tensor_bytes;
    c->file_bytes = rep->file_bytes;
    c->bpw = rep->params ? (double)rep->tensor_bytes * 8.0 / (double)rep->params : 0.0; /* as the JSON's bpw */
    c->have_total = rep->have_stats;
    c->total = rep->total_stats;
    c->npts = r->heap_n;
    qsort(c->pts, c->npts, sizeof *c->pts, by_index);
    r->types[r->n_types++] = *c;
    memset(c, 0, sizeof *c);
    return start_type(r, err);
}

enum mq_status mq_report_html(const struct mq_report_options *o, const char *const *types, size_t n_types,
                              const char *path, struct mq_error *err)
{
    if (n_types == 0) return MQ_FAIL(err, MQ_E_USAGE, "report-types", "no --type given");
    if (n_types > MQ_REPORT_MAX_TYPES)
        return MQ_FAIL(err, MQ_E_USAGE, "report-types", "at most %d types in one report, got %zu",
                       MQ_REPORT_MAX_TYPES, n_types);
    struct mq_report *r;
    MQ_TRY(mq_report_new(o, &r, err));
    enum mq_status s = MQ_OK;
    for (size_t k = 0; s == MQ_OK && k < n_types; k++) {
        struct mq_convert_options co;
        mq_convert_options_default(&co);
        co.input = o->input;
        co.type = types[k];
        co.dry_run = true;
        co.stats = true;
        co.no_vocab = true; /* measures the weights: no file whose tokenizer could be missing */
        co.threads = o->threads;
        co.tap = mq_report_tap(r);
        co.report_html_path = path; /* checked before any data is read */
        co.warn = k == 0 ? o->warn : NULL; /* the reader's findings once */
        co.warn_ctx = o->warn_ctx;
        co.progress = o->progress;
        co.progress_ctx = o->progress_ctx;
        struct mq_convert_report rep;
        s = mq_convert(&co, &rep, err);
        if (s == MQ_OK) s = mq_report_add(r, &rep, err);
        mq_convert_report_free(&rep);
    }
    if (s == MQ_OK) s = mq_report_write(r, path, err);
    mq_report_free(r);
    return s;
}
