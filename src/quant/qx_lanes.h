/*
** qx_lanes.h - private to src/quant/: ggml's make_qx_quants(n, nmax, x, L, rmse_type 1, weights)
** for up to sixteen groups at once on AVX2 (qx_lanes.c), byte-identical in every group to
** mq_make_qx_quants (kquants.c). Used by Q6_K (with and without importances), and by the
** importance-weighted Q4_0, Q5_0 and Q3_K of weighted.c.
*/
#ifndef MODELQ_QX_LANES_H
#define MODELQ_QX_LANES_H

#include "qcommon.h"

/* Where the weights of the fit come from (ggml's rmse_type 1 with or without quant_weights). */
enum mq_qx_weights {
    MQ_QX_W_X2,    /* x^2 (make_qx_quants with qw = NULL: Q6_K without importances) */
    MQ_QX_W_RAW,   /* qw as given (Q6_K with importances) */
    MQ_QX_W_SIGMA, /* qw * sqrtf(sigma2 + x^2) (Q4_0, Q5_0, Q3_K with importances) */
};

/*
** The ng (1..16) groups of n (16 or 32) consecutive values x[n*g .. n*g+n) with their
** importances qw[n*g ..] (unused for MQ_QX_W_X2): for each group g, scales[g] and the codes
** L[n*g + i] (stored + nmax, 0..2*nmax-1) exactly as mq_make_qx_quants(n, nmax, x + n*g,
** L + n*g, w) gives them, nmax one of 4, 8, 16, 32; wsum (may be NULL) gets each group's weight
** sum, added from 0 left to right. Returns false - nothing usable written - when the CPU lacks
** AVX2 (or MODELQ_NO_SIMD is set), on a non-x86 build, or when an x of the groups is NaN or
** Inf: the caller then runs the scalar kernel.
*/
bool mq_qx_fit_lanes(int n, int nmax, enum mq_qx_weights wk, const float *x, const float *qw, float sigma2, int ng,
                     float *scales, int8_t *L, float *wsum);

/*
** One group of n values with weights qw (make_qx_quants(n, nmax, x, L, 1, qw), e.g. Q3_K's sixteen
** sub-block scales): *scale and L (stored + nmax), the 19 candidate scales side by side in the
** lanes. false - nothing usable written - without AVX2, on a non-x86 build, or for a NaN/Inf x.
*/
bool mq_qx_fit_group(int n, int nmax, const float *x, const float *qw, int8_t *L, float *scale);

#endif /* MODELQ_QX_LANES_H */
