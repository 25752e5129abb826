/* convert.c - mq_convert(): open, plan, run, commit, report (outline in modelq/convert.h). */
#include "modelq/convert.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "modelq/imatrix.h"
#include "model_impl.h"
#include "outfile.h"
#include "outpath.h"
#include "format.h" /* the writer registry */
#include "lora_merge.h"
#include "plan.h"
#include "options.h"

static void convert_defaults(struct mq_convert_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->type = "auto";
}

/* The struct as of the release that introduced struct_size: every caller's is at least this. */
#define CONVERT_OPTIONS_MIN_SIZE (offsetof(struct mq_convert_options, progress_ctx) + sizeof(void *))

void mq_convert_options_init_sized(struct mq_convert_options *o, size_t struct_size)
{
    struct mq_convert_options d;
    convert_defaults(&d);
    d.struct_size = struct_size;
    mq_options_give(o, struct_size, &d, sizeof d);
}

void mq_convert_report_free(struct mq_convert_report *rep)
{
    if (!rep) return;
    for (size_t i = 0; i < rep->n_tensors; i++) {
        free(rep->tensors[i].name);
        free(rep->tensors[i].src_name);
    }
    free(rep->tensors);
    free(rep->input);
    free(rep->output);
    free(rep->format);
    free(rep->first_part);
    memset(rep, 0, sizeof *rep);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
** Every path this run will write (-o, and --report, which the caller writes after success) is
** checked against outpath.h's rules before any tensor data is read: none replaces an input file, a
** folder holding the input, a non-regular file or a folder of the user's; the report is not the
** output and does not lie inside an output folder.
*/
static bool wants_split(const struct mq_convert_options *o, const struct mq_writer_ops *writer)
{
    return writer && !writer->folder && (o->split_max_size || o->split_max_tensors || o->max_shard_size);
}

static enum mq_status check_outputs(const struct mq_model *m, const struct mq_convert_options *o,
                                    const struct mq_writer_ops *writer, struct mq_error *err)
{
    struct mq_input_set in;
    MQ_TRY(mq_input_set_build(m, &in, err));
    enum mq_status s = MQ_OK;
    /* a split output's names are known once it is planned: check_parts */
    if (o->output && !o->dry_run && !wants_split(o, writer))
        s = mq_outpath_check(o->output, writer && writer->folder ? MQ_OUT_FOLDER : MQ_OUT_FILE, &in, o->force,
                             "the output", err);
    /* the JSON report, then the HTML report: the same rules; they are not each other */
    const char *reports[2] = {o->report_path, o->report_html_path};
    for (int k = 0; k < 2; k++) {
        const char *rp = reports[k];
        if (s != MQ_OK || !rp) continue;
        s = mq_outpath_check(rp, MQ_OUT_FILE, &in, false, k ? "the HTML report" : "the report", err);
        bool inside = false;
        if (s == MQ_OK && o->output && !o->dry_run && mq_outpath_same(rp, o->output, &inside))
            s = MQ_FAIL(err, MQ_E_USAGE, "report-is-output", "%s: the report would replace the output %s", rp,
                        o->output);
        if (s == MQ_OK && inside && !o->dry_run)
            s = MQ_FAIL(err, MQ_E_USAGE, "report-in-output", "%s: the report cannot go inside the output folder %s",
                        rp, o->output);
        if (s == MQ_OK && k == 1 && o->report_path && mq_outpath_same(rp, o->report_path, &inside))
            s = MQ_FAIL(err, MQ_E_USAGE, "report-is-report", "%s: the HTML report would replace the JSON report",
                        rp);
    }
    mq_input_set_free(&in);
    return s;
}

/*
** A split output (or the one file the split options made): every part's path under the same rules
** as -o, once the plan has named them; none may be the report. Still before any tensor data.
*/
static enum mq_status check_parts(const struct mq_model *m, const struct mq_convert_options *o,
                                  const struct mq_plan *p, struct mq_error *err)
{
    struct mq_input_set in;
    MQ_TRY(mq_input_set_build(m, &in, err));
    size_t n = p->split_set ? p->n_files : 1;
    enum mq_status s = MQ_OK;
    for (size_t k = 0; s == MQ_OK && k < n; k++) {
        const char *path = p->split_set ? p->file_names[k] : o->output;
        s = mq_outpath_check(path, MQ_OUT_FILE, &in, o->force, p->split_set ? "a part of the output" : "the output", err);
        bool inside = false;
        if (s == MQ_OK && o->report_path && mq_outpath_same(o->report_path, path, &inside))
            s = MQ_FAIL(err, MQ_E_USAGE, "report-is-output", "%s: the report would replace the output %s",
                        o->report_path, path);
        if (s == MQ_OK && o->report_html_path && mq_outpath_same(o->report_html_path, path, &inside))
            s = MQ_FAIL(err, MQ_E_USAGE, "report-is-output", "%s: the report would replace the output %s",
                        o->report_html_path, path);
    }
    mq_input_set_free(&in);
    return s;
}

static const char *type_name_of(const struct mq_plan *p, const struct mq_plan_tensor *t, bool out)
{
    if (out && t->convert) return mq_codec_info(t->codec)->name;
    return mq_plan_src_type_name(p, t);
}

static enum mq_status fill_report(const struct mq_plan *p, struct mq_convert_report *rep, struct mq_error *err)
{
    rep->tensors = calloc(p->n ? p->n : 1, sizeof *rep->tensors);
    if (!rep->tensors) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory for the report");
    rep->n_tensors = p->n;
    rep->file_type = p->file_type;
    for (size_t i = 0; i < p->n; i++) {
        const struct mq_plan_tensor *t = &p->t[i];
        struct mq_convert_tensor *r = &rep->tensors[i];
        r->name = strdup(t->name);
        r->src_name = strdup(t->nseg ? mq_plan_src_tensor(p, t)->name : "(generated)");
        if (!r->name || !r->src_name) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory for the report");
        r->src_type = type_name_of(p, t, false);
        r->out_type = type_name_of(p, t, true);
        r->numel = t->numel;
        r->bytes = t->bytes;
        r->bpw = t->numel ? (double)t->bytes * 8.0 / (double)t->numel : 0.0;
        r->why = t->why;
        r->fell_back = t->fell_back;
        r->overridden = t->overridden;
        for (size_t k = 0; k < t->nxf; k++)
            if (t->xf[k].kind == MQ_XFORM_ADD_LORA) r->lora_terms += (uint32_t)t->xf[k].lora->n;
        r->have_stats = t->have_stats;
        r->stats = t->stats;
        rep->params += t->numel;
        if (t->convert && t->quantized) rep->quantized_params += t->numel;
        rep->tensor_bytes += t->bytes;
        if (t->fell_back) rep->n_fallback++;
        rep->input_bytes += mq_plan_src_bytes(p, t);
    }
    rep->have_stats = p->have_stats;
    rep->total_stats = p->total_stats;
    return MQ_OK;
}

static enum mq_status pick_writer(const struct mq_convert_options *o, enum mq_target target,
                                  const struct mq_writer_ops **out, struct mq_error *err)
{
    *out = NULL;
    const struct mq_writer_ops *w = NULL;
    if (o->format) {
        w = mq_writer_by_name(o->format);
        if (!w)
            return MQ_FAIL(err, MQ_E_USAGE, "format", "unknown output format '%s' (known: %s)", o->format,
                           mq_writer_names());
    } else if (o->output) {
        w = mq_writer_for_path(o->output);
        if (!w && !o->dry_run)
            return MQ_FAIL(err, MQ_E_USAGE, "format",
                           "%s: cannot tell the output format from the name; use a .gguf name or --format (%s)",
                           o->output, mq_writer_names());
    }
    if (!w && o->dry_run) {
        /* A dry run without -o plans for the container the type belongs to, so the plan shows the
         * names and types that file would hold (and GGUF-name --tensor-type/--keep patterns match). */
        enum mq_container c = mq_target_info(target)->container;
        if (c == MQ_CONTAINER_GGUF) w = mq_writer_by_name("gguf");
        else if (c == MQ_CONTAINER_BNB) w = mq_writer_by_name("bnb");
    }
    if (w && w->folder && (o->split_max_size || o->split_max_tensors))
        return MQ_FAIL(err, MQ_E_USAGE, "split-format",
                       "%s: --split-max-size and --split-max-tensors split a GGUF output; a bitsandbytes folder "
                       "takes --max-shard-size", o->output ? o->output : "output");
    if (w && w->folder && mq_target_info(target)->container != MQ_CONTAINER_BNB)
        return MQ_FAIL(err, MQ_E_USAGE, "type-format",
                       "%s: a bitsandbytes folder holds --type nf4, nf4-dq, fp4 or int8_row, not %s (use a .gguf "
                       "output for llama.cpp types)", o->output ? o->output : "output", mq_target_info(target)->name);
    if (w && strcmp(w->name, "gguf") == 0 && !mq_target_is_gguf(target)) {
        if (o->dry_run) return MQ_OK; /* plan and measure in memory, no container */
        return MQ_FAIL(err, MQ_E_USAGE, "type-format",
                       "--type %s has no GGUF type (GGUF stores ggml types only): use --type iq4_nl for 4-bit "
                       "or q8_0 for 8-bit, or --dry-run --stats to measure %s without writing",
                       mq_target_info(target)->name, mq_target_info(target)->name);
    }
    *out = w;
    return MQ_OK;
}

/* The tensor the tap watches (convert.h): the first converted one it accepts, before any data. */
static enum mq_status pick_tap(struct mq_plan *p, const struct mq_convert_tap *tap, struct mq_error *err)
{
    for (size_t i = 0; i < p->n; i++) {
        const struct mq_plan_tensor *t = &p->t[i];
        if (!t->convert || t->kind == MQ_SRC_GENERATED) continue;
        if (tap->pick(tap->ctx, t->name, mq_plan_src_tensor(p, t)->name, t->codec, t->row_len)) {
            p->tap = tap;
            p->tap_tensor = i;
            return MQ_OK;
        }
    }
    return MQ_FAIL(err, MQ_E_USAGE, "tap-tensor", "%s", tap->missing ? tap->missing : "no tensor to watch");
}

const char *mq_convert_architectures(void) { return mq_gguf_architecture_list(); }

static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

enum mq_status mq_convert(const struct mq_convert_options *o, struct mq_convert_report *rep, struct mq_error *err)
{
    memset(rep, 0, sizeof *rep);
    /* the caller's options as this library's struct (an older or newer header: options.h) */
    struct mq_convert_options full;
    convert_defaults(&full);
    MQ_TRY(mq_options_take(&full, sizeof full, o, CONVERT_OPTIONS_MIN_SIZE, "mq_convert_options", err));
    o = &full;
    double t0 = now_seconds();
    enum mq_target target;
    const char *tname = o->type ? o->type : "auto";
    if (!mq_target_for_convert(tname, &target))
        return MQ_FAIL(err, MQ_E_USAGE, "type", "unknown --type '%s' (known: %s)", tname, mq_target_convert_names());
    if (!o->input) return MQ_FAIL(err, MQ_E_USAGE, "input", "no input given");
    if (!o->output && !o->dry_run) return MQ_FAIL(err, MQ_E_USAGE, "output", "no output given (-o FILE)");
    const struct mq_writer_ops *writer;
    MQ_TRY(pick_writer(o, target, &writer, err));

    struct mq_model *m = NULL;
    MQ_TRY(mq_model_open(o->input, &m, err));
    /* the reader's non-fatal findings (index, shards, quantization_config), as inspect shows them */
    for (size_t i = 0; o->warn && i < m->n_warnings; i++) o->warn(o->warn_ctx, m->warnings[i]);
    struct mq_plan plan;
    struct mq_outfile *out = NULL;
    enum mq_status s = MQ_OK;
    if (m->lora || o->base) s = mq_model_load_base_config(m, o->base, err); /* an adapter's base model */
    if (s == MQ_OK && m->lora && writer && strcmp(writer->name, "gguf") != 0)
        s = MQ_FAIL(err, MQ_E_USAGE, "adapter-format", "%s: a LoRA adapter is written as a GGUF adapter (a .gguf "
                    "output)", o->input);
    if (s == MQ_OK) s = check_outputs(m, o, writer, err);
    /* --imatrix: read before any tensor data (its errors name the file); the plan attaches it */
    struct mq_convert_options oi = *o;
    struct mq_imatrix *im = NULL;
    if (s == MQ_OK && (o->imatrix || o->imatrix_path) && mq_target_info(target)->container == MQ_CONTAINER_BNB)
        s = MQ_FAIL(err, MQ_E_USAGE, "imatrix-type", "--imatrix: --type %s is a bitsandbytes type and takes no "
                    "importance matrix", mq_target_info(target)->name);
    if (s == MQ_OK && !o->imatrix && o->imatrix_path) {
        s = mq_imatrix_load(o->imatrix_path, &im, err);
        oi.imatrix = im;
    }
    o = &oi;
    if (s == MQ_OK) s = mq_plan_build(&plan, m, o, target, writer, err);
    else memset(&plan, 0, sizeof plan);
    unsigned threads = o->threads ? o->threads : default_threads();
    rep->threads = threads;
    rep->dry_run = o->dry_run;
    rep->target = mq_target_info(target)->name;
    rep->input = strdup(o->input);
    rep->output = o->output ? strdup(o->output) : NULL;
    rep->format = strdup(writer ? writer->name : "none");
    if (s == MQ_OK && !o->dry_run && wants_split(o, writer)) s = check_parts(m, o, &plan, err);
    if (s == MQ_OK && !o->dry_run) {
        if (plan.split_set)
            s = mq_outfile_create_set(plan.file_names, plan.file_sizes, plan.n_files, &out, err);
        else if (writer->folder)
            s = mq_outfile_create_in_dir(o->output, plan.file_names, plan.file_sizes, plan.n_files, plan.side_bytes,
                                         o->force, &out, err);
        else
            s = mq_outfile_create(o->output, plan.file_size, &out, err);
    }
    if (s == MQ_OK && o->tap) s = pick_tap(&plan, o->tap, err);
    bool stats = o->stats || o->tap;
    if (s == MQ_OK && (!o->dry_run || stats)) s = mq_plan_run(&plan, out, threads, stats, err);
    if (s == MQ_OK && out) {
        s = writer->finish(&plan, out, err);
        if (s == MQ_OK) {
            s = mq_outfile_commit(out, err);
            out = NULL;
        }
    }
    if (out) mq_outfile_abort(out);
    if (s == MQ_OK) {
        s = fill_report(&plan, rep, err);
        rep->file_bytes = plan.file_size;
        rep->n_parts = plan.split_set ? plan.n_files : 0;
        if (plan.split_set && !(rep->first_part = strdup(plan.file_names[0])))
            s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory for the report");
    }
    rep->seconds = now_seconds() - t0;
    mq_plan_free(&plan);
    mq_model_free(m);
    mq_imatrix_free(im);
    return s;
}
