/* qstats.c - streaming quantization error statistics (see modelq/qstats.h). */
#include "modelq/qstats.h"

#include <math.h>
#include <string.h>

void mq_qstats_init(struct mq_qstats_acc *acc) { memset(acc, 0, sizeof *acc); }

void mq_qstats_add(struct mq_qstats_acc *acc, const float *orig, const float *deq, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double x = orig[i], y = deq[i];
        if (!isfinite(x) || !isfinite(y)) {
            acc->nonfinite++;
            continue;
        }
        double e = x - y, ae = fabs(e);
        acc->n++;
        acc->sum_sq_err += e * e;
        acc->sum_abs_err += ae;
        if (ae > acc->max_abs_err) acc->max_abs_err = ae;
        acc->sum_sq_x += x * x;
        acc->sum_sq_y += y * y;
        acc->sum_xy += x * y;
    }
}

void mq_qstats_merge(struct mq_qstats_acc *a, const struct mq_qstats_acc *b)
{
    a->n += b->n;
    a->nonfinite += b->nonfinite;
    a->sum_sq_err += b->sum_sq_err;
    a->sum_abs_err += b->sum_abs_err;
    if (b->max_abs_err > a->max_abs_err) a->max_abs_err = b->max_abs_err;
    a->sum_sq_x += b->sum_sq_x;
    a->sum_sq_y += b->sum_sq_y;
    a->sum_xy += b->sum_xy;
}

void mq_qstats_result(const struct mq_qstats_acc *acc, struct mq_qstats *out)
{
    memset(out, 0, sizeof *out);
    out->n = acc->n;
    out->nonfinite = acc->nonfinite;
    out->cosine = 1.0;
    out->snr_db = INFINITY;
    if (acc->n == 0) return;
    out->rmse = sqrt(acc->sum_sq_err / (double)acc->n);
    out->mean_abs_err = acc->sum_abs_err / (double)acc->n;
    out->max_abs_err = acc->max_abs_err;
    if (acc->sum_sq_err > 0) {
        out->snr_db = acc->sum_sq_x > 0 ? 10.0 * log10(acc->sum_sq_x / acc->sum_sq_err) : -INFINITY;
        out->rel_rmse = acc->sum_sq_x > 0 ? sqrt(acc->sum_sq_err / acc->sum_sq_x) : INFINITY;
    }
    if (acc->sum_sq_x > 0 && acc->sum_sq_y > 0) out->cosine = acc->sum_xy / sqrt(acc->sum_sq_x * acc->sum_sq_y);
    else if (acc->sum_sq_x > 0 || acc->sum_sq_y > 0) out->cosine = 0.0;
}
