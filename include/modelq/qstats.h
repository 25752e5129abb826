/*
** modelq/qstats.h - error statistics between original and dequantized values.
**
** Streaming: mq_qstats_init(), then mq_qstats_add() per chunk (any chunking gives the same
** result up to the order of double additions), then mq_qstats_result(). Accumulators are
** doubles; NaN/Inf pairs are counted apart and excluded from the sums.
*/
#ifndef MODELQ_QSTATS_H
#define MODELQ_QSTATS_H

#include <stddef.h>
#include <stdint.h>

#include "modelq/export.h"

struct mq_qstats_acc {
    uint64_t n;           /* finite pairs accumulated */
    uint64_t nonfinite;   /* pairs with a NaN/Inf on either side (skipped) */
    double sum_sq_err;    /* sum (x - y)^2 */
    double sum_abs_err;   /* sum |x - y| */
    double max_abs_err;
    double sum_sq_x;      /* sum x^2   (signal power, SNR and cosine) */
    double sum_sq_y;      /* sum y^2 */
    double sum_xy;        /* sum x*y */
};

struct mq_qstats {
    uint64_t n;
    uint64_t nonfinite;
    double rmse;          /* sqrt(mean (x-y)^2) */
    double max_abs_err;
    double mean_abs_err;
    double snr_db;        /* 10 log10(sum x^2 / sum (x-y)^2); +inf when exact, -inf when x is all 0 but y is not */
    double cosine;        /* sum xy / sqrt(sum x^2 sum y^2); 1 when both are all zero, 0 when only one is */
    double rel_rmse;      /* sqrt(sum (x-y)^2 / sum x^2) = rmse / rms(x) = 10^(-snr_db/20); 0 when exact,
                             +inf when x is all 0 but y is not */
};

MQ_API void mq_qstats_init(struct mq_qstats_acc *acc);
/* Adds n pairs (orig[i], deq[i]). */
MQ_API void mq_qstats_add(struct mq_qstats_acc *acc, const float *orig, const float *deq, size_t n);
/* Merges b into a (for per-thread accumulators). */
MQ_API void mq_qstats_merge(struct mq_qstats_acc *a, const struct mq_qstats_acc *b);
/* Final statistics; all zero (cosine 1, snr +inf) for an empty accumulator. */
MQ_API void mq_qstats_result(const struct mq_qstats_acc *acc, struct mq_qstats *out);

#endif /* MODELQ_QSTATS_H */
