/*
** kquants_simd.h - private to src/quant/: the AVX2 K-quant search kernels of kquants.c, shared
** with the importance-weighted fast path (kquants_weighted.c). x86 only; callers check
** mq_cpu_avx2() first.
*/
#ifndef MODELQ_KQUANTS_SIMD_H
#define MODELQ_KQUANTS_SIMD_H

#include "qcommon.h"

#if defined(__x86_64__) || defined(__i386__)
#define MQ_KQ_SIMD 1

/* super-blocks fitted side by side by mq_qkx2_fit_blocks (see kquants.c for why) */
enum { MQ_KQ_BATCH = 2 };

/* make_qkx2_quants' search settings, and where the weights come from */
struct mq_qkx2_params {
    int nmax;
    float rmin, rdelta;
    int nstep;
    const float *const *qw; /* NULL: kquants.c's av_x + |x|; else qw[b]: the 256 weights of block b */
};

/* make_qkx2_quants' results for the eight sub-blocks of one super-block */
struct mq_qkx2_fit8 {
    float scale[8], the_min[8];  /* make_qkx2_quants' result and *the_min */
    float l_iscale[8], l_min[8]; /* codes of the winning step: clamp(nearest(l_iscale * (x - l_min))) */
    int flat;                    /* bit j: sub-block j had max == min, codes all 0 */
};

/*
** make_qkx2_quants(32, nmax, x, weights, ...) for the eight 32-value sub-blocks of each of the n
** super-blocks xs[0..n), byte-identical in every lane (kquants.c); out[b] for xs[b].
*/
void mq_qkx2_fit_blocks(const float *const *xs, int n, const struct mq_qkx2_params *p, struct mq_qkx2_fit8 *out);

#endif

#endif /* MODELQ_KQUANTS_SIMD_H */
