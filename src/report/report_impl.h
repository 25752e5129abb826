/*
** report_impl.h - private: what the HTML report collects per type (report_collect.c) and
** renders (report_html.c). See modelq/report.h for the outline.
*/
#ifndef MODELQ_REPORT_IMPL_H
#define MODELQ_REPORT_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "modelq/report.h"

/* Error histogram: HIST_BINS bins of width 2^(hist_exp - HIST_HALF_LOG2) over [-2^hist_exp, 2^hist_exp). */
#define HIST_BINS 64
#define HIST_HALF_LOG2 5 /* HIST_BINS / 2 = 2^5 bins on each side of 0 */
#define HIST_START_EXP (-140)

/* One sampled element: its flat index, sample key, value, dequantized value and block absmax. */
struct rep_point {
    uint64_t key, idx;
    float x, y, scale;
};

/* One output tensor of one type (a row of convert's report). */
struct rep_tensor {
    char *name;
    const char *out_type;          /* static codec / dtype name */
    uint64_t numel, bytes;
    double bpw;
    bool have_stats;
    struct mq_qstats stats;
};

struct rep_type {
    const char *target;            /* convert --type name (static) */
    enum mq_codec codec;           /* the target's default codec */
    struct rep_tensor *t;
    size_t n;
    uint64_t params, quantized_params, tensor_bytes, file_bytes;
    double bpw;
    bool have_total;
    struct mq_qstats total;
    /* the staircase tensor */
    char *plot_name;
    enum mq_codec plot_codec;
    uint32_t plot_block;           /* elements per absmax used to normalise (row for INT8_ROW) */
    struct rep_point *pts;         /* by flat index */
    size_t npts;
    int hist_exp;
    uint64_t hist[HIST_BINS];
    uint64_t hist_n, hist_nonfinite;
};

struct mq_report {
    struct mq_report_options opt;
    char *input, *plot_tensor;
    struct mq_convert_tap tap;
    char missing[600];
    pthread_mutex_t mu;
    /* the type being measured (filled by the tap, moved into types[] by mq_report_add) */
    bool picked;
    struct rep_type cur;
    size_t heap_n;                 /* cur.pts as a max-heap on key while sampling */
    struct rep_type types[MQ_REPORT_MAX_TYPES];
    size_t n_types;
};

void mq_rep_type_release(struct rep_type *t);
/* Renders the whole HTML document of r into b (estimate from the open model m, may be NULL
** when unavailable); false when out of memory. */
struct mq_sbuf;
struct mq_model;
struct mq_estimate;
bool mq_report_render(const struct mq_report *r, const struct mq_estimate *e, struct mq_sbuf *b);

#endif
