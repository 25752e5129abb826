/* logprob.c - log-softmax and KL divergence of logit rows (see logprob.h). */
#include "logprob.h"

#include <math.h>
#include <stdlib.h>

void logprob_log_softmax(const float *x, int n, double *out)
{
    double mx = -INFINITY, z = 0.0;
    for (int i = 0; i < n; i++) mx = fmax(mx, (double)x[i]);
    for (int i = 0; i < n; i++) z += exp((double)x[i] - mx);
    const double lz = mx + log(z);
    for (int i = 0; i < n; i++) out[i] = (double)x[i] - lz;
}

double logprob_kl(const float *p, const float *q, int n)
{
    double *lp = malloc((size_t)n * sizeof *lp), *lq = malloc((size_t)n * sizeof *lq);
    if (!lp || !lq) {
        free(lp);
        free(lq);
        return NAN;
    }
    logprob_log_softmax(p, n, lp);
    logprob_log_softmax(q, n, lq);
    double kl = 0.0;
    for (int i = 0; i < n; i++) kl += exp(lp[i]) * (lp[i] - lq[i]);
    free(lp);
    free(lq);
    return kl;
}
