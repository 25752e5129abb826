/*
** legacy1_lanes.h - the importance-weighted Q4_1 / Q5_1 fits on the AVX2 make_qkx2_quants lanes
** (legacy1_weighted.c), for weighted.c, byte-identical to its scalar loop
** (ggml's quantize_row_q4_1_impl / q5_1_impl with quant_weights).
*/
#ifndef MODELQ_LEGACY1_LANES_H
#define MODELQ_LEGACY1_LANES_H

#include <stdbool.h>
#include <stdint.h>

/* blocks of 32 per call: the lanes fit eight blocks (one "super-block" of 256) per set, and two
 * sets side by side */
enum { MQ_L1_BATCH = 16 };

/* one block of 32: make_qkx2_quants' result d (the scale), *the_min, and the codes L */
struct mq_l1_fit {
    float d, the_min;
    uint8_t L[32];
};

/*
** nb (8 or 16) consecutive blocks of 32 of one row: x[0..32nb), their importances qw[0..32nb)
** and the row's sigma2 = sum(x^2) / n_per_row; per block the weights qw * sqrtf(sigma2 + x^2) and
** make_qkx2_quants(32, nmax, x, weights, L, &the_min, Laux, -0.9, 0.05, 36, false) (nmax 15: Q4_1,
** 31: Q5_1). Returns false (nothing written) without AVX2 (or with MODELQ_NO_SIMD / simd off):
** the caller then runs the scalar loop.
*/
bool mq_l1_fit_weighted_fast(int nmax, const float *x, const float *qw, float sigma2, int nb, struct mq_l1_fit *out);

/* 32-blocks fitted by mq_l1_fit_weighted_fast's lanes since the process started (all threads): the
 * tests read it to show which path mq_quantize_weighted took. */
uint64_t mq_l1_fast_blocks(void);

#endif /* MODELQ_LEGACY1_LANES_H */
