/*
** modelq/report.h - a self-contained HTML report of what quantization does to this model.
**
** One HTML file, inline SVG and CSS only (no script, no external resource; printable):
**   1. the staircase: a sample of one tensor's real weights, x against its dequantized value per
**      type, both divided by the absmax of the codec block (row for LLM.int8) holding x, with the
**      codec's levels drawn where they are fixed multiples of that absmax (INT8's k/127, Q4_0's
**      16 steps k/8, Q5_0's k/16, NF4's 16 normal quantiles, FP4's 16 values);
**   2. the histogram of dequantized - x over every element of that tensor, per type;
**   3. per-tensor relative RMSE (sqrt(sum (x-y)^2 / sum x^2)) as a heat map, layers x tensors,
**      one panel per type, a cell whose codec is not the type's own outlined and labelled (the
**      mixture: output Q6_K, attn_v Q5_K ...);
**   4. bytes per tensor role as stacked bars with bits per weight, and `estimate`'s inference
**      memory (weights + KV cache at ctx + overhead) as bars against 8/12/16/24/48/80 GB GPUs;
**   5. under each picture a table of its numbers: the numbers of `convert --report` JSON and
**      `estimate --json` (every plotted mark carries its value in a data-v attribute).
**
** Streaming: each type is one dry run of mq_convert() with stats; the sample is a bottom-k
** sample (every element's key is a fixed-seed hash of its index; the `sample` smallest keys are
** kept), so it is uniform, the same elements for every type, and independent of the thread
** count and chunk order; the histogram's bins are powers of two wide, merged pairwise when the
** range doubles, so it too does not depend on the order. Memory: the sample, 64 bins and one
** row per tensor per type, whatever the model size.
**
** Use: mq_report_new(); for each type: set convert options .tap = mq_report_tap(r),
** .report_html_path = the output, run mq_convert(), then mq_report_add(r, &report); finally
** mq_report_write(r, path). mq_report_html() does all of it for a list of types.
*/
#ifndef MODELQ_REPORT_H
#define MODELQ_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "modelq/convert.h"
#include "modelq/error.h"
#include "modelq/export.h"

#define MQ_REPORT_DEFAULT_SAMPLE 2000
#define MQ_REPORT_DEFAULT_SEED 0x6d6f64656c71ull /* "modelq" */
#define MQ_REPORT_MAX_SAMPLE 100000
#define MQ_REPORT_MAX_TYPES 16

struct mq_report_options {
    const char *input;           /* the checkpoint (title; the estimate reads its headers) */
    const char *plot_tensor;     /* output or input name of the staircase's tensor; NULL = the first
                                    attention matrix (attn_q / q_proj / fused qkv) */
    uint32_t sample;             /* staircase points per type; 0 = MQ_REPORT_DEFAULT_SAMPLE */
    uint64_t seed;               /* 0 = MQ_REPORT_DEFAULT_SEED */
    uint64_t ctx;                /* KV cache context of the memory bars; 0 = MQ_ESTIMATE_DEFAULT_CTX */
    unsigned threads;            /* mq_report_html: convert threads, 0 = all cores */
    /* mq_report_html: the convert warnings and progress (see mq_convert_options); may be NULL */
    void (*warn)(void *ctx, const char *msg);
    void *warn_ctx;
    void (*progress)(void *ctx, uint64_t done_bytes, uint64_t total_bytes);
    void *progress_ctx;
};

struct mq_report;

MQ_API void mq_report_options_default(struct mq_report_options *o);
/* A report collector (free with mq_report_free). MQ_E_USAGE for a sample over MQ_REPORT_MAX_SAMPLE. */
MQ_API enum mq_status mq_report_new(const struct mq_report_options *o, struct mq_report **out, struct mq_error *err);
MQ_API void mq_report_free(struct mq_report *r);
/* The tap for the next mq_convert() (owned by r; valid until mq_report_free). */
MQ_API const struct mq_convert_tap *mq_report_tap(struct mq_report *r);
/* Records the type mq_convert() just measured with that tap (the report needs its stats:
** MQ_E_USAGE without them). At most MQ_REPORT_MAX_TYPES types. */
MQ_API enum mq_status mq_report_add(struct mq_report *r, const struct mq_convert_report *rep, struct mq_error *err);
/* Renders the report (opening the input's headers for the estimate) and writes it to `path`
** through a temporary file renamed over it: complete or not at all. The path follows the output
** rules of convert's --report (never an input file, a folder, a device). */
MQ_API enum mq_status mq_report_write(struct mq_report *r, const char *path, struct mq_error *err);

/* All in one: a dry run with stats per type (convert --type names), then mq_report_write. */
MQ_API enum mq_status mq_report_html(const struct mq_report_options *o, const char *const *types, size_t n_types,
                                     const char *path, struct mq_error *err);

#endif /* MODELQ_REPORT_H */
