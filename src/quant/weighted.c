/*
** weighted.c - the importance-matrix ("imatrix") quantizers: what ggml_quantize_chunk(type, src,
** dst, start, nrows, n_per_row, imatrix) runs when imatrix is not NULL, byte for byte.
**
** With weights ggml does not call the *_ref kernels (those are what ggml runs without, and what
** q4.c ... kquants.c reproduce); it runs quantize_row_<type>_impl, a different search:
**   Q4_0 / Q5_0   per row: sigma2 = sum(x^2) / n_per_row; per block of 32:
**                 w_j = qw_j * sqrtf(sigma2 + x_j^2), d = make_qx_quants(32, 8|16, x, L, w),
**                 codes L (0..15 | 0..31) straight from the search, d stored fp16.
**   Q4_1 / Q5_1   the same weights; d, min = make_qkx3_quants (with weights given it computes what
**                 make_qkx2_quants does: mq_make_qkx2_quants) (32, 15|31, x, w, rmin -0.9,
**                 rdelta 0.05, 36 steps); d and -min stored fp16, codes from the search.
**   Q4_K / Q5_K   per super-block of 256: sigma2 = 2 * sum(x^2) / 256; per sub-block of 32:
**                 w_j = qw_j * sqrtf(sigma2 + x_j^2), scale/min = make_qkx3_quants(32, 15|31, ...);
**                 the 8 scales and 8 mins each quantized to 6 bits by make_qp_quants(8, 63, ...,
**                 sub-block weight sums); codes recomputed from the fp16 d, dmin (as the ref).
**   Q6_K          make_qx_quants(16, 32, x, L, qw) per 16 (the raw importances as weights, no
**                 sigma2); the rest as quantize_row_q6_K_ref.
**   IQ4_NL        per block of 32: sigma2 = sum(x^2) * (2/32); w_j = qw_j * sqrtf(sigma2 + x_j^2);
**                 then the same search as without weights (iq4_nl.c) with these w.
**   Q2_K          per super-block of 256: sigma2 = sum(x^2) / 256; per sub-block of 16:
**                 w_j = qw_j * sqrtf(sigma2 + x_j^2), scale/min = make_qkx3_quants (as for Q4_1:
**                 mq_make_qkx2_quants) (16, 3, x, w, rmin -0.9, rdelta 0.05, 36 steps, squared
**                 error); the 16 scales and 16 mins
**                 each coded in 4 bits by make_qp_quants(16, 15, ..., sub-block weight sums)
**                 (d, dmin = their fp16 scales); codes recomputed from the fp16 d, dmin.
**   Q3_K          per super-block: sigma2 = 2 * sum(x^2) / 256; per sub-block of 16: the same
**                 w_j, scale = make_qx_quants(16, 4, x, L, w); the 16 scales coded in signed 6
**                 bits by make_qx_quants(16, 32, scales, Ls, sub-block weight sums) (d = its
**                 scale, fp16); codes recomputed from the fp16 d.
**   Q8_0          ignores the importances (quantize_q8_0 drops them).
** qw is the importance vector of the row's columns (n_per_row floats); every row of a matrix
** uses the same one. Sums run left to right in float32 as in ggml-quants.c (the project builds
** with -ffp-contract=off, so a*b+c is never fused). The plain C loops here are the reference;
** the searches also run on AVX2 lane kernels with the same bytes where the CPU has them: Q4_0,
** Q5_0, Q3_K and Q6_K on the make_qx_quants lanes (qx_lanes.c), Q4_1/Q5_1 (legacy1_weighted.c)
** and Q4_K/Q5_K (kquants_weighted.c) on the make_qkx2_quants lanes, Q2_K on its own
** pool of lanes (q2_k_pool.c, 16 super-blocks a call; codes in q2_k_avx2.c), make_qp_quants' trials side by side (qp_avx2.c), IQ4_NL/IQ4_XS (iq4_avx2.c).
** Each falls back to the C loop where the lanes refuse (no AVX2, MODELQ_NO_SIMD, NaN/Inf).
*/
#include "iq4_lanes.h"
#include "legacy1_lanes.h"
#include "q2_k_lanes.h"
#include "qp_lanes.h"
#include "qcommon.h"
#include "qx_lanes.h"

#include "modelq/imatrix.h"
#include "modelq/quant.h"

enum { QK = 32, QK_K = 256 };

#define GROUP_MAX_EPS 1e-15f
/*
** ggml make_qp_quants: non-negative x (the sub-block scales or mins) to codes 0..nmax with one
** scale, weighted by qw; a short search over the inverse scale, then up to 5 rounds of moving
** single codes while that improves the weighted fit. L is uint8_t as in ggml (the first pass
** stores nearest_int unclamped, wrapping like the C conversion).
*/
static float make_qp_quants(int n, int nmax, const float *x, uint8_t *L, const float *qw)
{
    float max = 0;
    for (int i = 0; i < n; i++) max = max > x[i] ? max : x[i]; /* ggml MAX(max, x[i]) */
    if (max < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    float iscale = nmax / max;
    for (int i = 0; i < n; i++) L[i] = (uint8_t)mq_nearest_int(iscale * x[i]);
    float scale = 1 / iscale;
    float best_mse = 0;
    for (int i = 0; i < n; i++) {
        float diff = x[i] - scale * L[i];
        best_mse += qw[i] * diff * diff;
    }
    float trial_iscale[8], trial_mse[8];
    if (mq_qp_trials_avx2(n, nmax, x, qw, max, trial_iscale, trial_mse)) { /* qp_avx2.c: the same trials */
        for (int k = 0; k < 8; k++)
            if (trial_mse[k] < best_mse) {
                best_mse = trial_mse[k];
                iscale = trial_iscale[k];
            }
    } else
    for (int is = -4; is <= 4; is++) {
        if (is == 0) continue;
        float iscale_is = (0.1f * is + nmax) / max;
        float scale_is = 1 / iscale_is;
        float mse = 0;
        for (int i = 0; i < n; i++) {
            int l = mq_imin(nmax, mq_nearest_int(iscale_is * x[i]));
            float diff = x[i] - scale_is * l;
            mse += qw[i] * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = mq_imin(nmax, mq_nearest_int(iscale * x[i]));
        L[i] = (uint8_t)l;
        sumlx += qw[i] * x[i] * l;
        suml2 += qw[i] * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = qw[i];
            float slx = sumlx - w * x[i] * L[i];
            float sl2 = suml2 - w * L[i] * L[i];
            if (slx > 0 && sl2 > 0) {
                int new_l = mq_imin(nmax, mq_nearest_int(x[i] * sl2 / slx));
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (uint8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* sum of x[0..n)^2 left to right, as ggml's sum_x2 / sigma2 loops */
static float sum_sq(const float *x, size_t n)
{
    float s = 0;
    for (size_t j = 0; j < n; j++) s += x[j] * x[j];
    return s;
}

/* 32 five-bit codes -> qh (u32 LE, bit j = bit 4 of code j) and qs[16] (low nibbles j | j+16). */
static void pack_q5(const uint8_t *L, uint8_t *qh_le, uint8_t *qs)
{
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; j++) {
        qs[j] = (uint8_t)((L[j] & 0x0f) | ((L[j + QK / 2] & 0x0f) << 4));
        qh |= ((L[j] & 0x10u) >> 4) << j;
        qh |= ((L[j + QK / 2] & 0x10u) >> 4) << (j + QK / 2);
    }
    for (int i = 0; i < 4; i++) qh_le[i] = (uint8_t)(qh >> (8 * i));
}

/* ---- Q4_0, Q5_0 (and below Q4_1, Q5_1): one row; sigma2 over the whole row ---- */

/* One Q4_0 (nmax 8) or Q5_0 (nmax 16) block from its fit: d as fp16, the codes (0..2*nmax-1) packed. */
static void q0_pack(int nmax, float d, const int8_t *L, uint8_t *y)
{
    mq_put_f16(y, d);
    if (nmax == 8) {
        for (int j = 0; j < 16; j++) y[2 + j] = (uint8_t)(L[j] | (L[j + 16] << 4));
        return;
    }
    uint8_t U[QK];
    for (int j = 0; j < QK; j++) U[j] = (uint8_t)L[j];
    pack_q5(U, y + 2, y + 6);
}

static void legacy_row(enum mq_codec c, const float *x, size_t n_per_row, const float *qw, uint8_t *y)
{
    const int nmax = c == MQ_CODEC_Q4_0 ? 8 : 16;
    const float sigma2 = sum_sq(x, n_per_row) / (float)n_per_row;
    float weight[QK];
    int8_t L[QK];
    const size_t bytes = mq_codec_info(c)->block_bytes;
    for (size_t ib = 0; ib < n_per_row / QK; ib++, y += bytes) {
        const float *xb = x + QK * ib, *wb = qw + QK * ib;
        for (int j = 0; j < QK; j++) weight[j] = wb[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        q0_pack(nmax, mq_make_qx_quants(QK, nmax, xb, L, weight), L, y);
    }
}

/*
** Q4_0 / Q5_0 (nmax 8 / 16): legacy_row's search, sixteen blocks at a time on the make_qx_quants
** lanes (qx_lanes.c computes the weights qw * sqrtf(sigma2 + x^2) itself), same bytes. false
** when the lanes refuse a batch (no AVX2, NaN/Inf in it): the caller then runs legacy_row over
** the whole row, which rewrites every block.
*/
static bool q4_0_q5_0_row_fast(enum mq_codec c, const float *x, size_t n_per_row, const float *qw, uint8_t *y)
{
    enum { BATCH = 16 };
    const int nmax = c == MQ_CODEC_Q4_0 ? 8 : 16;
    const float sigma2 = sum_sq(x, n_per_row) / (float)n_per_row;
    const size_t nb = n_per_row / QK, bytes = mq_codec_info(c)->block_bytes;
    float scales[BATCH];
    int8_t L[BATCH * QK];
    for (size_t b = 0; b < nb; b += BATCH) {
        const int ng = (int)(nb - b < BATCH ? nb - b : BATCH);
        if (!mq_qx_fit_lanes(QK, nmax, MQ_QX_W_SIGMA, x + QK * b, qw + QK * b, sigma2, ng, scales, L, NULL))
            return false;
        for (int k = 0; k < ng; k++) q0_pack(nmax, scales[k], L + QK * k, y + (b + (size_t)k) * bytes);
    }
    return true;
}

/* One Q4_1 (nmax 15) or Q5_1 (nmax 31) block from its fit: d, -min as fp16, the codes packed. */
static void q1_pack(int nmax, const struct mq_l1_fit *f, uint8_t *y)
{
    mq_put_f16(y, f->d);
    mq_put_f16(y + 2, -f->the_min);
    if (nmax == 15)
        for (int j = 0; j < 16; j++) y[4 + j] = (uint8_t)(f->L[j] | (f->L[j + 16] << 4));
    else
        pack_q5(f->L, y + 4, y + 8);
}

/* One Q4_1/Q5_1 row: blocks in runs of 8 or 16 on the AVX2 lanes (legacy1_weighted.c), the
 * rest (a tail of fewer than 8, or everything without AVX2) one at a time, same bytes. */
static void q1_row(int nmax, const float *x, size_t n_per_row, const float *qw, uint8_t *y, size_t bytes)
{
    const float sigma2 = sum_sq(x, n_per_row) / (float)n_per_row;
    const size_t nb = n_per_row / QK;
    struct mq_l1_fit fit[MQ_L1_BATCH];
    size_t ib = 0;
    while (ib + 8 <= nb) {
        const int n = nb - ib >= MQ_L1_BATCH ? MQ_L1_BATCH : 8;
        if (!mq_l1_fit_weighted_fast(nmax, x + QK * ib, qw + QK * ib, sigma2, n, fit)) break;
        for (int k = 0; k < n; k++) q1_pack(nmax, &fit[k], y + (ib + (size_t)k) * bytes);
        ib += (size_t)n;
    }
    float weight[QK];
    uint8_t Laux[QK];
    for (; ib < nb; ib++) {
        const float *xb = x + QK * ib, *wb = qw + QK * ib;
        for (int j = 0; j < QK; j++) weight[j] = wb[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        fit[0].d = mq_make_qkx2_quants(QK, nmax, xb, weight, fit[0].L, &fit[0].the_min, Laux, -0.9f, 0.05f, 36, false);
        q1_pack(nmax, &fit[0], y + ib * bytes);
    }
}

/* ---- Q4_K, Q5_K ---- */


/* One super-block (quantize_row_q4_K_impl / q5_K_impl). nmax 15: Q4_K, 31: Q5_K. fit: the
 * sub-block fits already done by kquants_weighted.c, or NULL. */
static void kquant_block(int nmax, const float *x, const float *qw, uint8_t *y, const struct mq_kquant_wfit *fit)
{
    uint8_t L[QK_K], Laux[32], Ls[8], Lm[8];
    float weights[32], sw[8], mins[8], scales[8];
    const float sigma2 = 2 * sum_sq(x, QK_K) / QK_K;
    if (fit) {
        memcpy(L, fit->L, sizeof L);
        memcpy(sw, fit->sw, sizeof sw);
        memcpy(mins, fit->mins, sizeof mins);
        memcpy(scales, fit->scales, sizeof scales);
    } else
    for (int j = 0; j < QK_K / 32; j++) {
        for (int l = 0; l < 32; l++) weights[l] = qw[32 * j + l] * sqrtf(sigma2 + x[32 * j + l] * x[32 * j + l]);
        float sumw = 0;
        for (int l = 0; l < 32; l++) sumw += weights[l];
        sw[j] = sumw;
        scales[j] = mq_make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.9f, 0.05f, 36,
                                        false);
    }
    const float d_block = make_qp_quants(QK_K / 32, 63, scales, Ls, sw);
    const float m_block = make_qp_quants(QK_K / 32, 63, mins, Lm, sw);
    uint8_t *sc = y + 4;
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t ls = Ls[j], lm = Lm[j];
        if (nmax == 31) { /* quantize_row_q5_K_impl clamps (the Q4_K one does not) */
            ls = ls < 63 ? ls : 63;
            lm = lm < 63 ? lm : 63;
        }
        mq_k4_pack_scale_min(sc, j, ls, lm);
    }
    mq_put_f16(y, d_block);
    mq_put_f16(y + 2, m_block);
    mq_k4_codes(x, y, nmax, L);
    if (nmax == 15) {
        uint8_t *q = y + 16;
        for (int c = 0; c < QK_K; c += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[c + l] | (L[c + l + 32] << 4));
    } else {
        uint8_t *qh = y + 16, *ql = y + 48;
        memset(qh, 0, QK_K / 8);
        for (int c = 0; c < QK_K / 64; c++) {
            for (int j = 0; j < 32; j++) {
                const int l1 = L[64 * c + j], l2 = L[64 * c + j + 32];
                qh[j] |= (uint8_t)(((l1 >> 4) << (2 * c)) | ((l2 >> 4) << (2 * c + 1)));
                ql[32 * c + j] = (uint8_t)((l1 & 15) | ((l2 & 15) << 4));
            }
        }
    }
}

/* One row of Q4_K/Q5_K, the sub-block fits batched on the fast kernels where they run. */
static void kquant_row(int nmax, const float *x, size_t row_len, const float *qw, uint8_t *y, size_t bytes)
{
    struct mq_kquant_wfit fit[MQ_KQ_WBATCH];
    const size_t nb = row_len / QK_K;
    for (size_t b = 0; b < nb; b += MQ_KQ_WBATCH) {
        const int n = (int)(nb - b < MQ_KQ_WBATCH ? nb - b : MQ_KQ_WBATCH);
        const bool fast = mq_kquant_fit_weighted_fast(nmax, x + b * QK_K, qw + b * QK_K, n, fit);
        for (int k = 0; k < n; k++)
            kquant_block(nmax, x + (b + k) * QK_K, qw + (b + k) * QK_K, y + (b + k) * bytes, fast ? &fit[k] : NULL);
    }
}

/* ---- Q6_K ---- */

static void q6_k_block(const float *x, const float *qw, uint8_t *y)
{
    int8_t L[QK_K];
    float scales[QK_K / 16], iscales[QK_K / 16];
    float max_scale = 0, max_abs_scale = 0;
    /* the lanes give each group's winning iscale instead of codes (qx_lanes.h: lazy) */
    const bool lazy = mq_qx_fit16_lazy(16, 32, MQ_QX_W_RAW, x, qw, 0.f, scales, iscales, NULL);
    if (!lazy)
        for (int ib = 0; ib < QK_K / 16; ib++) scales[ib] = mq_make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, qw + 16 * ib);
    for (int ib = 0; ib < QK_K / 16; ib++) {
        const float scale = scales[ib];
        const float abs_scale = fabsf(scale);
        if (abs_scale > max_abs_scale) {
            max_abs_scale = abs_scale;
            max_scale = scale;
        }
    }
    if (max_abs_scale < GROUP_MAX_EPS) {
        memset(y, 0, 210);
        mq_put_f16(y + 208, 0.f);
        return;
    }
    int8_t *sc = (int8_t *)(y + 192);
    const float iscale = -128.f / max_scale;
    mq_put_f16(y + 208, 1 / iscale);
    for (int ib = 0; ib < QK_K / 16; ib++) sc[ib] = (int8_t)mq_imin(127, mq_nearest_int(iscale * scales[ib]));
    const float dd = mq_get_f16(y + 208);
    for (int j = 0; j < QK_K / 16; j++) {
        const float d = dd * sc[j];
        if (!d) { /* keeps the fit's codes, as ggml */
            if (lazy) mq_qx_codes(16, 32, x + 16 * j, iscales[j], L + 16 * j);
            continue;
        }
        for (int ii = 0; ii < 16; ii++) {
            int l = mq_imax(-32, mq_imin(31, mq_nearest_int(x[16 * j + ii] / d)));
            L[16 * j + ii] = (int8_t)(l + 32);
        }
    }
    uint8_t *ql = y, *qh = y + 128;
    for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; l++) {
            const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
            const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
            ql[l] = (uint8_t)(q1 | (q3 << 4));
            ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
            qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                              ((L[j + l + 96] >> 4) << 6));
        }
    }
}

/* ---- Q2_K, Q3_K ---- */

/* sub-block j's weights w[16] = qw_j * sqrtf(sigma2 + x^2) and their left-to-right sum */
static float k16_weights(const float *x, const float *qw, float sigma2, float *w)
{
    float sum = 0;
    for (int l = 0; l < 16; l++) {
        w[l] = qw[l] * sqrtf(sigma2 + x[l] * x[l]);
        sum += w[l];
    }
    return sum;
}

/* One Q2_K super-block (quantize_row_q2_K_impl); layout in q2_k.c. fit: the sub-block fits
 * (and the codes) done by q2_k_avx2.c, or NULL. */
static void q2_k_block(const float *x, const float *qw, uint8_t *y, const struct mq_q2_k_fit *fit)
{
    uint8_t L[QK_K], Laux[16], Ls[16], Lm[16];
    float w[16], sw[16], scales[16], mins[16];
    if (fit) {
        memcpy(sw, fit->sw, sizeof sw);
        memcpy(scales, fit->scale, sizeof scales);
        memcpy(mins, fit->the_min, sizeof mins);
    } else {
        const float sigma2 = sum_sq(x, QK_K) / QK_K;
        for (int j = 0; j < 16; j++) {
            sw[j] = k16_weights(x + 16 * j, qw + 16 * j, sigma2, w);
            /* make_qkx3_quants with weights: in the pinned release the search of make_qkx2_quants */
            scales[j] = mq_make_qkx2_quants(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], Laux, -0.9f, 0.05f, 36, false);
        }
    }
    uint8_t *sc = y, *qs = y + 16;
    mq_put_f16(y + 80, make_qp_quants(16, 15, scales, Ls, sw));
    mq_put_f16(y + 82, make_qp_quants(16, 15, mins, Lm, sw));
    for (int j = 0; j < 16; j++) sc[j] = (uint8_t)(Ls[j] | (Lm[j] << 4));
    if (fit) {
        mq_q2_k_codes_avx2(x, fit, y);
        return;
    }
    const float dd = mq_get_f16(y + 80), dmin = mq_get_f16(y + 82);
    for (int j = 0; j < 16; j++) {
        const float d = dd * (sc[j] & 0xF);
        if (!d) continue; /* keeps the fit's codes, as ggml */
        const float m = dmin * (sc[j] >> 4);
        for (int i = 0; i < 16; i++)
            L[16 * j + i] = (uint8_t)mq_imax(0, mq_imin(3, mq_nearest_int((x[16 * j + i] + m) / d)));
    }
    mq_k2_pack_codes(L, qs);
}

/* One Q2_K row, the fits MQ_Q2K_FIT_MAX super-blocks at a time on the AVX2 lanes where they run. */
static void q2_k_row(const float *x, size_t row_len, const float *qw, uint8_t *y, size_t bytes)
{
    struct mq_q2_k_fit fit[MQ_Q2K_FIT_MAX];
    const size_t nb = row_len / QK_K;
    for (size_t b = 0; b < nb; b += MQ_Q2K_FIT_MAX) {
        const int n = nb - b >= MQ_Q2K_FIT_MAX ? MQ_Q2K_FIT_MAX : (int)(nb - b);
        const bool fast = mq_q2_k_fit_weighted_avx2(x + b * QK_K, qw + b * QK_K, n, fit);
        for (int k = 0; k < n; k++)
            q2_k_block(x + (b + k) * QK_K, qw + (b + k) * QK_K, y + (b + k) * bytes, fast ? &fit[k] : NULL);
    }
}

/* One Q3_K super-block (quantize_row_q3_K_impl); layout in q3_k.c. */
static void q3_k_block(const float *x, const float *qw, uint8_t *y)
{
    int8_t L[QK_K], Ls[16];
    float w[16], sw[16], scales[16], iscales[16], d[16];
    const float sigma2 = 2 * sum_sq(x, QK_K) / QK_K;
    /* the sixteen fits on the lanes (qx_lanes.c) where they run, else here; the lanes give each
     * group's winning iscale: its codes are made below only if its scale codes to 0 */
    const bool fast = mq_qx_fit16_lazy(16, 4, MQ_QX_W_SIGMA, x, qw, sigma2, scales, iscales, sw);
    if (!fast)
        for (int j = 0; j < 16; j++) {
            sw[j] = k16_weights(x + 16 * j, qw + 16 * j, sigma2, w);
            scales[j] = mq_make_qx_quants(16, 4, x + 16 * j, L + 16 * j, w); /* codes 0..7 = q + 4 */
        }
    uint8_t *hmask = y, *qs = y + 32, *sc = y + 96;
    float d_block; /* Ls 0..63 = s + 32 */
    if (!fast || !mq_qx_fit_group(16, 32, scales, sw, Ls, &d_block))
        d_block = mq_make_qx_quants(16, 32, scales, Ls, sw);
    memset(sc, 0, 12);
    for (int j = 0; j < 16; j++) mq_q3_k_put_scale(sc, j, (uint8_t)Ls[j]);
    mq_put_f16(y + 108, d_block);
    const float dd = mq_get_f16(y + 108);
    for (int j = 0; j < 16; j++) {
        d[j] = dd * mq_q3_k_scale(sc, j);
        if (fast && !d[j]) mq_qx_codes(16, 4, x + 16 * j, iscales[j], L + 16 * j);
    }
    if (fast && mq_q3_k_codes_avx2(x, d, L, y)) return; /* q3_k_avx2.c: the loops below, same bytes */
    for (int j = 0; j < 16; j++) {
        if (!d[j]) continue; /* keeps the fit's codes, as ggml */
        for (int i = 0; i < 16; i++)
            L[16 * j + i] = (int8_t)(mq_imax(-4, mq_imin(3, mq_nearest_int(x[16 * j + i] / d[j]))) + 4);
    }
    /* bit 2 of code e goes to hmask[e % 32] at bit e / 32; the low two bits to qs */
    uint8_t low[QK_K];
    memset(hmask, 0, 32);
    for (int e = 0; e < QK_K; e++) {
        if (L[e] > 3) hmask[e % 32] |= (uint8_t)(1u << (e / 32));
        low[e] = (uint8_t)(L[e] & 3);
    }
    mq_k2_pack_codes(low, qs);
}

/* ---- IQ4_NL ---- */

/* quantize_row_iq4_nl_impl(32, 32, ..., quant_weights, ntry 7) for one block. */
static void iq4_nl_block(const float *x, const float *qw, uint8_t *y)
{
    float weight[QK];
    float sigma2 = sum_sq(x, QK);
    sigma2 *= 2.f / QK;
    for (int j = 0; j < QK; j++) weight[j] = qw[j] * sqrtf(sigma2 + x[j] * x[j]);
    mq_iq4_nl_fit_block(x, weight, y);
}

/* ---- dispatch ---- */

bool mq_codec_takes_imatrix(enum mq_codec c)
{
    switch (c) {
    case MQ_CODEC_Q4_0:
    case MQ_CODEC_Q4_1:
    case MQ_CODEC_Q5_0:
    case MQ_CODEC_Q5_1:
    case MQ_CODEC_IQ4_NL:
    case MQ_CODEC_Q4_K:
    case MQ_CODEC_Q5_K:
    case MQ_CODEC_Q6_K:
    case MQ_CODEC_Q2_K:
    case MQ_CODEC_Q3_K:
    case MQ_CODEC_IQ4_XS:
        return true;
    default:
        return false;
    }
}

enum mq_status mq_quantize_weighted(enum mq_codec c, const float *src, size_t n, size_t row_len,
                                    const float *imatrix, uint8_t *data, struct mq_error *err)
{
    const struct mq_codec_info *ci = mq_codec_info(c);
    if (!ci || ci->kind != MQ_CODEC_KIND_GGML)
        return MQ_FAIL(err, MQ_E_USAGE, "codec", "importance weights need a ggml block type");
    if (!src || !data || !imatrix || row_len == 0 || row_len % ci->block_elems || n % row_len)
        return MQ_FAIL(err, MQ_E_USAGE, "geometry", "%s: %zu values do not split into rows of %zu (blocks of %u)",
                       ci->name, n, row_len, ci->block_elems);
    if (!mq_codec_takes_imatrix(c)) {
        /* Q8_0 (and the float types): ggml ignores the importances */
        struct mq_qbuf q = {data, NULL, NULL};
        return mq_quantize(c, NULL, src, n, row_len, &q, false, err);
    }
    const size_t row_bytes = row_len / ci->block_elems * ci->block_bytes;
    for (size_t r = 0; r < n / row_len; r++, src += row_len, data += row_bytes) {
        switch (c) {
        case MQ_CODEC_Q4_K:
        case MQ_CODEC_Q5_K:
            kquant_row(c == MQ_CODEC_Q4_K ? 15 : 31, src, row_len, imatrix, data, ci->block_bytes);
            break;
        case MQ_CODEC_Q6_K:
            for (size_t b = 0; b < row_len / QK_K; b++)
                q6_k_block(src + b * QK_K, imatrix + b * QK_K, data + b * ci->block_bytes);
            break;
        case MQ_CODEC_Q2_K:
            q2_k_row(src, row_len, imatrix, data, ci->block_bytes);
            break;
        case MQ_CODEC_Q3_K:
            for (size_t b = 0; b < row_len / QK_K; b++)
                q3_k_block(src + b * QK_K, imatrix + b * QK_K, data + b * ci->block_bytes);
            break;
        case MQ_CODEC_IQ4_NL:
            if (mq_iq4_nl_quantize_avx2(src, row_len / QK, imatrix, data)) break; /* iq4_avx2.c, same bytes */
            for (size_t b = 0; b < row_len / QK; b++)
                iq4_nl_block(src + b * QK, imatrix + b * QK, data + b * ci->block_bytes);
            break;
        case MQ_CODEC_Q4_0:
        case MQ_CODEC_Q5_0:
            if (!q4_0_q5_0_row_fast(c, src, row_len, imatrix, data)) legacy_row(c, src, row_len, imatrix, data);
            break;
        case MQ_CODEC_IQ4_XS: /* its kernel takes the row's importances itself (ggml always weighs IQ4_XS) */
            mq_iq4_xs_quantize_rows_fast(src, row_len, row_len, imatrix, data);
            break;
        case MQ_CODEC_Q4_1:
        case MQ_CODEC_Q5_1:
            q1_row(c == MQ_CODEC_Q4_1 ? 15 : 31, src, row_len, imatrix, data, ci->block_bytes);
            break;
        default: /* mq_codec_takes_imatrix and this switch disagree: a bug, never a wrong block */
            return MQ_FAIL(err, MQ_E_INTERNAL, "codec", "%s: no weighted kernel", ci->name);
        }
    }
    return MQ_OK;
}
