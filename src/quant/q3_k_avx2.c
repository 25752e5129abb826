/*
** q3_k_avx2.c - the sixteen make_q3_quants fits of one Q3_K super-block (q3_k.c fit_sub_block,
** ggml's make_q3_quants(16, 4, x, L, do_rmse = true)) eight sub-blocks at a time: sub-block
** 8s + g in lane g of set s, the two sets run side by side (two independent chains of dependent
** operations keep the vector unit busy).
**
** Every float operation is the scalar one, lane-wise and in the scalar order (w*x[i]*L[i] is
** (w*x)*L, so w*x is computed once; x*sl2/slx is (x*sl2)/slx, a true division; no fused
** multiply-add), and every `if` is a per-lane blend, so each lane's scale and codes equal the
** scalar kernel's. Rounding is ggml's nearest_int (the 1.5*2^23 trick on integer lanes) since
** x*sl2/slx is not bounded.
**
** The refinement rounds: the scalar code stops a sub-block after a round that changed no code.
** Here a round runs while any lane changed in the previous one; a lane that did not change enters
** the next round in the same state, so that round changes nothing for it either (the round is a
** function of L, sumlx and suml2 alone), and its result is the scalar one.
*/
#include "qcommon.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

enum { QK_K = 256, SUB = 16, SETS = 2, NMAX = 4 };

#define GROUP_MAX_EPS 1e-15f
#define FOR_SET _Pragma("GCC unroll 2") for (int s = 0; s < SETS; s++)

/* clamp(nearest_int(f), -NMAX, NMAX - 1) as a float, exactly ggml's for every f */
__attribute__((target("avx2,f16c"))) static inline __m256 code8(__m256 f)
{
    const __m256i v = _mm256_castps_si256(_mm256_add_ps(f, _mm256_set1_ps(12582912.f)));
    const __m256i l = _mm256_sub_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x00400000));
    return _mm256_cvtepi32_ps(
        _mm256_max_epi32(_mm256_set1_epi32(-NMAX), _mm256_min_epi32(_mm256_set1_epi32(NMAX - 1), l)));
}

__attribute__((target("avx2,f16c"))) bool mq_q3_k_fit_avx2(const float *x, float scales[16], int8_t L[256])
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i lane_off = _mm256_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112);
    const __m256 zero = _mm256_setzero_ps();
    __m256 X[SUB][SETS], W[SUB][SETS], WX[SUB][SETS], Lf[SUB][SETS];
    __m256 active[SETS], sumlx[SETS], suml2[SETS];
    __m256 finite = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    FOR_SET {
        __m256 amax = zero, max = zero;
        for (int i = 0; i < SUB; i++) {
            X[i][s] = _mm256_i32gather_ps(x + 128 * s + i, lane_off, 4);
            W[i][s] = _mm256_mul_ps(X[i][s], X[i][s]);
            WX[i][s] = _mm256_mul_ps(W[i][s], X[i][s]);
            const __m256 ax = _mm256_and_ps(X[i][s], absmask);
            finite = _mm256_and_ps(finite, _mm256_cmp_ps(ax, _mm256_set1_ps(3.4028235e38f), _CMP_LE_OQ));
            const __m256 gt = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
            amax = _mm256_blendv_ps(amax, ax, gt);
            max = _mm256_blendv_ps(max, X[i][s], gt);
        }
        active[s] = _mm256_cmp_ps(amax, _mm256_set1_ps(GROUP_MAX_EPS), _CMP_GE_OQ);
        const __m256 iscale = _mm256_div_ps(_mm256_set1_ps((float)-NMAX), max);
        __m256 slx = zero, sl2 = zero;
        for (int i = 0; i < SUB; i++) {
            Lf[i][s] = code8(_mm256_mul_ps(iscale, X[i][s]));
            slx = _mm256_add_ps(slx, _mm256_mul_ps(WX[i][s], Lf[i][s]));
            sl2 = _mm256_add_ps(sl2, _mm256_mul_ps(_mm256_mul_ps(W[i][s], Lf[i][s]), Lf[i][s]));
        }
        sumlx[s] = slx;
        suml2[s] = sl2;
    }
    /* NaN/Inf: the scalar kernel (no claim is made about how these lanes would round) */
    if (_mm256_movemask_ps(finite) != 0xff) return false;

    for (int itry = 0; itry < 5; itry++) {
        __m256 changed = zero;
        for (int i = 0; i < SUB; i++) {
            FOR_SET {
                const __m256 l = Lf[i][s];
                __m256 slx = _mm256_sub_ps(sumlx[s], _mm256_mul_ps(WX[i][s], l));
                __m256 sl2 = _mm256_sub_ps(suml2[s], _mm256_mul_ps(_mm256_mul_ps(W[i][s], l), l));
                const __m256 nl = code8(_mm256_div_ps(_mm256_mul_ps(X[i][s], sl2), slx));
                /* if (slx > 0) ... if (new_l != L[i]) */
                __m256 take = _mm256_and_ps(_mm256_cmp_ps(slx, zero, _CMP_GT_OQ), _mm256_cmp_ps(nl, l, _CMP_NEQ_OQ));
                slx = _mm256_add_ps(slx, _mm256_mul_ps(WX[i][s], nl));
                sl2 = _mm256_add_ps(sl2, _mm256_mul_ps(_mm256_mul_ps(W[i][s], nl), nl));
                /* if (sl2 > 0 && slx*slx*suml2 > sumlx*sumlx*sl2) */
                take = _mm256_and_ps(take, _mm256_cmp_ps(sl2, zero, _CMP_GT_OQ));
                take = _mm256_and_ps(take, _mm256_cmp_ps(_mm256_mul_ps(_mm256_mul_ps(slx, slx), suml2[s]),
                                                         _mm256_mul_ps(_mm256_mul_ps(sumlx[s], sumlx[s]), sl2),
                                                         _CMP_GT_OQ));
                Lf[i][s] = _mm256_blendv_ps(l, nl, take);
                sumlx[s] = _mm256_blendv_ps(sumlx[s], slx, take);
                suml2[s] = _mm256_blendv_ps(suml2[s], sl2, take);
                changed = _mm256_or_ps(changed, _mm256_and_ps(take, active[s]));
            }
        }
        if (_mm256_testz_ps(changed, changed)) break;
    }

    int32_t tmp[SUB][8];
    FOR_SET {
        /* suml2 > 0 ? sumlx / suml2 : 0; groups below GROUP_MAX_EPS: scale 0, L 0 (not + NMAX) */
        const __m256 pos = _mm256_and_ps(_mm256_cmp_ps(suml2[s], zero, _CMP_GT_OQ), active[s]);
        _mm256_storeu_ps(scales + 8 * s, _mm256_and_ps(pos, _mm256_div_ps(sumlx[s], suml2[s])));
        for (int i = 0; i < SUB; i++) {
            __m256i l = _mm256_add_epi32(_mm256_cvtps_epi32(Lf[i][s]), _mm256_set1_epi32(NMAX));
            _mm256_storeu_si256((__m256i *)tmp[i], _mm256_and_si256(l, _mm256_castps_si256(active[s])));
        }
        for (int g = 0; g < 8; g++)
            for (int i = 0; i < SUB; i++) L[128 * s + SUB * g + i] = (int8_t)tmp[i][g];
    }
    return true;
}

/*
** The codes eight at a time (a true division and ggml's rounding, as q3_k_block's loop), then the
** bit planes: bit 2 of code e goes to bit e / 32 of hmask[e % 32] (32 codes of one plane row
** per vector, compared with 3), the low two bits to qs as in q3_k_block; every byte holds at
** most 2 bits before its shift, so the 16-bit shifts never carry into the neighbouring byte.
*/
__attribute__((target("avx2,f16c"))) bool mq_q3_k_codes_avx2(const float *x, const float d[16], int8_t L[256],
                                                            uint8_t *y)
{
    int32_t tmp[8];
    for (int j = 0; j < QK_K / SUB; j++) {
        if (!d[j]) continue;
        const __m256 vd = _mm256_set1_ps(d[j]);
        for (int k = 0; k < 2; k++) {
            const __m256 q = _mm256_div_ps(_mm256_loadu_ps(x + SUB * j + 8 * k), vd);
            const __m256i l = _mm256_add_epi32(_mm256_cvtps_epi32(code8(q)), _mm256_set1_epi32(NMAX));
            _mm256_storeu_si256((__m256i *)tmp, l);
            for (int i = 0; i < 8; i++) L[SUB * j + 8 * k + i] = (int8_t)tmp[i];
        }
    }
    const __m256i three = _mm256_set1_epi8(3);
    __m256i hmask = _mm256_setzero_si256(), qs[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int k = 0; k < QK_K / 32; k++) {
        const __m256i l = _mm256_loadu_si256((const __m256i *)(L + 32 * k));
        hmask = _mm256_or_si256(hmask, _mm256_and_si256(_mm256_cmpgt_epi8(l, three), _mm256_set1_epi8((char)(1 << k))));
        const __m128i sh = _mm_cvtsi32_si128(2 * (k % 4));
        qs[k / 4] = _mm256_or_si256(qs[k / 4], _mm256_sll_epi16(_mm256_and_si256(l, three), sh));
    }
    _mm256_storeu_si256((__m256i *)y, hmask);
    _mm256_storeu_si256((__m256i *)(y + 32), qs[0]);
    _mm256_storeu_si256((__m256i *)(y + 64), qs[1]);
    return true;
}
#else
bool mq_q3_k_fit_avx2(const float *x, float scales[16], int8_t L[256])
{
    (void)x, (void)scales, (void)L;
    return false;
}
bool mq_q3_k_codes_avx2(const float *x, const float d[16], int8_t L[256], uint8_t *y)
{
    (void)x, (void)d, (void)L, (void)y;
    return false;
}
#endif
