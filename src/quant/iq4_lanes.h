/*
** iq4_lanes.h - the AVX2 IQ4_NL and IQ4_XS quantizers (iq4_avx2.c), byte-identical to the scalar
** kernels in iq4_nl.c and iq4_xs.c (which are ggml's quantize_row_iq4_nl_impl). Both fit eight
** blocks of 32 at once, block k in lane k: for IQ4_NL eight consecutive blocks, for IQ4_XS the
** eight blocks of one super-block.
**
** The nearest grid value: ggml's best_index_int8 on the IQ4_NL grid equals "the number of
** midpoints m_i = (v_i + v_i+1)/2 that are <= y" (a NaN y gives 15), because near every midpoint
** both differences y - v_i and v_i+1 - y are exact in float, so its compare is the exact one. The
** kernels count them with a binary search (mq_iq4_mid_index is its scalar form, for the tests).
*/
#ifndef MODELQ_IQ4_LANES_H
#define MODELQ_IQ4_LANES_H

#include "qcommon.h"

/* The lanes' grid search for one value: the number of midpoints <= y (NaN -> 15). */
int mq_iq4_mid_index(float y);

/* The later trials' pick for one value: the grid index of y from trial 1's index k (valid when y
 * has trial 1's sign and lies at most two midpoints nearer to 0, as in iq4_avx2.c). */
int mq_iq4_step_index(int k, float y);

/*
** nb IQ4_NL blocks of src into data (18 bytes each); qw = NULL for ggml's unweighted path
** (weights x^2), else nb*32 importance weights aligned with src (weighted.c's path: sigma2 per
** block of 32, weights qw * sqrtf(sigma2 + x^2)). Returns false (and writes nothing) when the
** CPU lacks AVX2 (or MODELQ_NO_SIMD is set): the caller then runs the scalar kernel.
*/
bool mq_iq4_nl_quantize_avx2(const float *src, size_t nb, const float *qw, uint8_t *data);

/* mq_iq4_xs_quantize_rows (same contract), with the AVX2 kernel when the CPU has it. */
void mq_iq4_xs_quantize_rows_fast(const float *src, size_t n, size_t row_len, const float *qw, uint8_t *data);

#endif /* MODELQ_IQ4_LANES_H */
