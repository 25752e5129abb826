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
** The lazy form for callers that recompute most codes anyway (Q6_K, Q3_K: only a group whose
** quantized scale comes out 0 keeps the search's codes): sixteen groups exactly as
** mq_qx_fit_lanes(..., 16, scales, L, wsum) but instead of L the winning inverse scale of each
** group, iscales[g] (0 for a group below GROUP_MAX_EPS, whose codes are all 0); mq_qx_codes turns
** one into that group's codes. The codes pass and its transposition were ~17% of Q6_K's fit.
*/
bool mq_qx_fit16_lazy(int n, int nmax, enum mq_qx_weights wk, const float *x, const float *qw, float sigma2,
                      float scales[16], float iscales[16], float *wsum);

/* make_qx_quants' codes of one group from its winning iscale (from mq_qx_fit16_lazy), stored + nmax:
 * nmax + clamp(nearest_int(iscale * x), -nmax, nmax - 1) with ggml's rounding; all 0 for iscale 0. */
void mq_qx_codes(int n, int nmax, const float *x, float iscale, int8_t *L);

/*
** One group of n values with weights qw (make_qx_quants(n, nmax, x, L, 1, qw), e.g. Q3_K's sixteen
** sub-block scales): *scale and L (stored + nmax), the 19 candidate scales side by side in the
** lanes. false - nothing usable written - without AVX2, on a non-x86 build, or for a NaN/Inf x.
*/
bool mq_qx_fit_group(int n, int nmax, const float *x, const float *qw, int8_t *L, float *scale);

#endif /* MODELQ_QX_LANES_H */
