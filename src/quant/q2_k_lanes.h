/*
** q2_k_lanes.h - the AVX2 Q2_K kernels (q2_k_avx2.c): the quantizer without importance weights,
** byte-identical to q2_k.c's reference (ggml's quantize_row_q2_K_ref), and the sub-block fits and
** codes of the importance-weighted one, byte-identical to weighted.c's scalar loops (ggml's
** quantize_row_q2_K_impl).
*/
#ifndef MODELQ_Q2_K_LANES_H
#define MODELQ_Q2_K_LANES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* nb super-blocks of src (256 floats each) into data (84 bytes each). Returns false (and writes
 * nothing) when the CPU lacks AVX2 (or MODELQ_NO_SIMD is set): the caller then runs the scalar kernel. */
bool mq_q2_k_quantize_avx2(const float *src, size_t nb, uint8_t *data);

/* make_qkx2_quants' results for the 16 sub-blocks of 16 of one super-block */
struct mq_q2_k_fit {
    float scale[16], the_min[16];   /* the result and *the_min */
    float sw[16];                   /* weighted only: each sub-block's weight sum, from 0 left to right */
    float l_iscale[16], l_min[16];  /* codes of the winning step: clamp(nearest(l_iscale * (x - l_min))) */
    int flat;                       /* bit j: sub-block j had max == min (codes all 0) */
};

/* super-blocks one call of mq_q2_k_fit_weighted_avx2 takes at most */
#define MQ_Q2K_FIT_MAX 16

/*
** quantize_row_q2_K_impl's fits for n (1..MQ_Q2K_FIT_MAX) consecutive super-blocks x[0..256n) of
** one row with their importances qw[0..256n): per block sigma2 = sum(x^2) / 256, weights
** w = qw * sqrtf(sigma2 + x^2), their sums sw per sub-block, and make_qkx2_quants(16, 3, x, w, L,
** &min, Laux, -0.9, 0.05, 36, false) per sub-block into out[0..n) (q2_k_pool.c's pool of lanes;
** the lockstep lanes of q2_k_avx2.c when a test asks). false (nothing written) when the CPU lacks
** AVX2 (or simd is off): the caller then runs its scalar loop.
*/
bool mq_q2_k_fit_weighted_avx2(const float *x, const float *qw, int n, struct mq_q2_k_fit *out);

/* q2_k_pool.c: the pool itself (same contract; false without AVX2) */
bool mq_q2_k_fit_weighted_pool(const float *x, const float *qw, int n, struct mq_q2_k_fit *out);

/*
** Tests only (not thread-safe against a running quantizer): the pool's skip margin
** 1 - 2^-margin_exp (20 is the proven one) and update_rule 0 (drops "the step after an update is
** always computed") make the skip unsound on purpose, to show the tests catch it; lockstep 1 makes
** mq_q2_k_fit_weighted_avx2 run q2_k_avx2.c's lockstep lanes; verify 1 recomputes the codes of
** every skipped step in scalar and counts those that differ from the last computed step's in
** mq_q2_k_pool_wrong_skips. (20, 1, 0, 0) restores the defaults.
*/
void mq_q2_k_pool_test_knobs(int margin_exp, int update_rule, int lockstep, int verify);
uint64_t mq_q2_k_pool_wrong_skips(void);
bool mq_q2_k_pool_lockstep(void);

/* super-blocks fitted by mq_q2_k_fit_weighted_avx2 since the process started (all threads): the
 * tests read it to show which path mq_quantize_weighted took. */
uint64_t mq_q2_k_weighted_fast_blocks(void);

/*
** The rest of one super-block once y holds its scales (sc[16] @0, d @80, dmin @82 as fp16): the
** codes of x[256] (nearest((x + dmin * m) / (d * s)) clamped to 0..3; a sub-block with a 0 scale
** keeps the winning step's codes from f), packed into qs[64] @16. Only after
** mq_q2_k_fit_weighted_avx2 returned true (it needs AVX2).
*/
void mq_q2_k_codes_avx2(const float *x, const struct mq_q2_k_fit *f, uint8_t *y);

#endif /* MODELQ_Q2_K_LANES_H */
