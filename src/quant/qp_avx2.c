/*
** qp_avx2.c - make_qp_quants' eight trial scales (weighted.c) side by side, trial k in lane k:
** each lane runs the scalar trial loop's operations in its order (0.1f * is + nmax, a true
** division, ggml's nearest_int bit trick, the clamp to nmax, x - scale * l, qw * diff * diff as
** (qw * diff) * diff, the sum from 0 left to right), so every lane's iscale and mse equal the
** scalar loop's for any input; the caller keeps the first trial, in order, that lowers the error.
*/
#include "qcommon.h"

#include "qp_lanes.h"

#if defined(__x86_64__) || defined(__i386__)
#include "avx2_lanes.h"

__attribute__((target("avx2,f16c"))) static void qp_trials(int n, int nmax, const float *x, const float *qw, float max,
                                                          float iscale[8], float mse[8])
{
    const __m256 is = _mm256_setr_ps(-4.f, -3.f, -2.f, -1.f, 1.f, 2.f, 3.f, 4.f);
    const __m256 isc = _mm256_div_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(0.1f), is), _mm256_set1_ps((float)nmax)),
                                     _mm256_set1_ps(max));
    const __m256 sc = _mm256_div_ps(_mm256_set1_ps(1.f), isc);
    const __m256i vnmax = _mm256_set1_epi32(nmax);
    __m256 e = _mm256_setzero_ps();
    for (int i = 0; i < n; i++) {
        const __m256 xi = _mm256_set1_ps(x[i]);
        const __m256 l = _mm256_cvtepi32_ps(_mm256_min_epi32(vnmax, mq_avx2_nearest_int(_mm256_mul_ps(isc, xi))));
        const __m256 diff = _mm256_sub_ps(xi, _mm256_mul_ps(sc, l));
        e = _mm256_add_ps(e, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(qw[i]), diff), diff));
    }
    _mm256_storeu_ps(iscale, isc);
    _mm256_storeu_ps(mse, e);
}
#define MQ_QP_AVX2 1
#endif

bool mq_qp_trials_avx2(int n, int nmax, const float *x, const float *qw, float max, float iscale[8], float mse[8])
{
#ifdef MQ_QP_AVX2
    if (mq_cpu_avx2()) {
        qp_trials(n, nmax, x, qw, max, iscale, mse);
        return true;
    }
#endif
    (void)n, (void)nmax, (void)x, (void)qw, (void)max, (void)iscale, (void)mse;
    return false;
}
