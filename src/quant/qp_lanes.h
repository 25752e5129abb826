/*
** qp_lanes.h - the AVX2 part of ggml's make_qp_quants (weighted.c, for the sub-block scales and
** mins of the importance-weighted Q2_K, Q4_K and Q5_K): its eight trial scales, one per lane.
*/
#ifndef MODELQ_QP_LANES_H
#define MODELQ_QP_LANES_H

#include <stdbool.h>

/*
** make_qp_quants' trials is = -4..-1, 1..4 for n values x (n <= 16) with weights qw, codes 0..nmax
** and max = the largest x: lane k (is = k - 4, or k - 3 from k = 4) gets iscale[k] =
** (0.1 * is + nmax) / max and mse[k] = the sum over i, left to right, of
** qw * (x - scale * l) * (x - scale * l) with scale = 1 / iscale[k], l = min(nmax, nearest(iscale[k] * x)).
** Returns false (nothing written) without AVX2: the caller runs its scalar loop.
*/
bool mq_qp_trials_avx2(int n, int nmax, const float *x, const float *qw, float max, float iscale[8], float mse[8]);

#endif /* MODELQ_QP_LANES_H */
