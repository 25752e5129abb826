/*
** iq4_xs.c - ggml IQ4_XS (super-blocks of 256), byte-identical to quantize_iq4_xs, which
** ggml_quantize_chunk runs with or without an importance matrix (quantize_row_iq4_nl_impl with
** super_block 256, block 32, ntry 7).
**
** Block (136 bytes): d fp16 @0 | scales_h u16 LE @2 | scales_l[4] @4 | qs[128] @8.
**   Eight blocks of 32 with a signed 6-bit scale ls_b (stored ls_b + 32): its low nibble in
**   scales_l[b/2] (b even: low nibble, odd: high), its top two bits in scales_h at bit 2b.
**   Codes: IQ4_NL's grid (mq_iq4nl_values); in block b, qs[16b + j] = L[j] | L[j+16] << 4.
**   value = d * (ls_b - 32) * grid[code].
** Reference, per super-block: sigma2 = 2*sum(x^2)/256; per block the IQ4_NL fit (weights x^2, or
** qw * sqrt(sigma2 + x^2) with importance weights qw): d0 = -max/grid[0], a least-squares refit,
** then 15 trial inverse scales (itry + grid[0])/max kept when they improve sumqx^2/sumq2. The
** block scales are coded against d = -max_scale/32 (max_scale = the one of largest |.|) and every
** code is chosen again from the coded scale d*l.
*/
#include "iq4_lanes.h"

enum { QK_K = 256, QB = 32, NB = QK_K / QB, NTRY = 7 };

#define GROUP_MAX_EPS 1e-15f



/* The scale of one block of 32 (0 for an all-zero block); qw = its 32 importance weights or NULL. */
static float fit_block(const float *xb, const float *qw, float sigma2)
{
    const int8_t *values = mq_iq4nl_values;
    float weight[QB];
    if (qw)
        for (int j = 0; j < QB; j++) weight[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
    else
        for (int j = 0; j < QB; j++) weight[j] = xb[j] * xb[j];
    float amax = 0, max = 0;
    for (int j = 0; j < QB; j++) {
        float ax = fabsf(xb[j]);
        if (ax > amax) {
            amax = ax;
            max = xb[j];
        }
    }
    if (amax < GROUP_MAX_EPS) return 0;
    float d = -max / values[0];
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < QB; j++) {
        float q = values[mq_iq4_grid_index(id * xb[j])];
        float w = weight[j];
        sumqx += w * q * xb[j];
        sumq2 += w * q * q;
    }
    d = sumqx / sumq2;
    float best = d * sumqx;
    for (int itry = -NTRY; itry <= NTRY; itry++) {
        id = (itry + values[0]) / max;
        sumqx = sumq2 = 0;
        for (int j = 0; j < QB; j++) {
            float q = values[mq_iq4_grid_index(id * xb[j])];
            float w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

/* One super-block x[256] (qw: its 256 importance weights or NULL) into the 136 bytes at y. */
static void iq4_xs_block(const float *x, const float *qw, uint8_t *y)
{
    float scales[NB];
    float sigma2 = 0;
    for (int j = 0; j < QK_K; j++) sigma2 += x[j] * x[j];
    sigma2 *= 2.f / QK_K;
    for (int ib = 0; ib < NB; ib++) scales[ib] = fit_block(x + QB * ib, qw ? qw + QB * ib : NULL, sigma2);
    float idl[NB];
    mq_iq4_xs_put_scales(y, scales, idl);
    uint8_t *qs = y + 8;
    for (int ib = 0; ib < NB; ib++) {
        const float *xb = x + QB * ib;
        uint8_t L[QB];
        for (int j = 0; j < QB; j++) L[j] = (uint8_t)mq_iq4_grid_index(idl[ib] * xb[j]);
        for (int j = 0; j < QB / 2; j++) qs[16 * ib + j] = (uint8_t)(L[j] | (L[j + 16] << 4));
    }
}

/*
** The super-block header: d = -max_scale / 32 as fp16 at y[0..1] (max_scale: the block scale of
** largest magnitude, the first of equals), then each block's scale coded
** against it, l = clamp(nearest(scale / d), -32, 31) + 32, six bits split into scales_l (y[4..7],
** low nibbles, two blocks a byte) and scales_h (y[2..3], two bits a block). idl[ib] gets the
** inverse of the block's coded scale d * (l - 32) (0 for 0), which its codes are fitted with.
*/
void mq_iq4_xs_put_scales(uint8_t *y, const float scales[8], float idl[8])
{
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < NB; ib++) {
        const float a = fabsf(scales[ib]);
        if (a > amax_scale) {
            amax_scale = a;
            max_scale = scales[ib];
        }
    }
    const float d = -max_scale / 32;
    mq_put_f16(y, d);
    const float id = d ? 1 / d : 0.f;
    uint16_t scales_h = 0;
    uint8_t *scales_l = y + 4;
    for (int ib = 0; ib < NB; ib++) {
        int l = mq_imax(-32, mq_imin(31, mq_nearest_int(id * scales[ib])));
        const float dl = d * l;
        idl[ib] = dl ? 1 / dl : 0.f;
        l += 32;
        if (ib % 2 == 0) scales_l[ib / 2] = (uint8_t)(l & 0xF);
        else scales_l[ib / 2] |= (uint8_t)((l & 0xF) << 4);
        scales_h |= (uint16_t)((l >> 4) << (2 * ib));
    }
    y[2] = (uint8_t)scales_h;
    y[3] = (uint8_t)(scales_h >> 8);
}

void mq_iq4_xs_quantize_rows(const float *src, size_t n, size_t row_len, const float *qw, uint8_t *data)
{
    /* importance weights are per column: the same row_len weights for every row */
    for (size_t b = 0; b < n / QK_K; b++) {
        const float *w = qw ? qw + (b * QK_K) % row_len : NULL;
        iq4_xs_block(src + b * QK_K, w, data + b * sizeof(struct mq_block_iq4_xs));
    }
}

void mq_quantize_iq4_xs_ref(const float *src, size_t n, size_t row_len, uint32_t block,
                            uint8_t *data, float *scales, int8_t *zeros)
{
    (void)block, (void)scales, (void)zeros;
    mq_iq4_xs_quantize_rows(src, n, row_len, NULL, data);
}

void mq_quantize_iq4_xs_fast(const float *src, size_t n, size_t row_len, uint32_t block,
                             uint8_t *data, float *scales, int8_t *zeros)
{
    (void)block, (void)scales, (void)zeros;
    mq_iq4_xs_quantize_rows_fast(src, n, row_len, NULL, data);
}

/* dequantize_row_iq4_xs */
void mq_dequantize_iq4_xs(const uint8_t *data, const float *scales, const int8_t *zeros, size_t n,
                          size_t row_len, uint32_t block, float *dst)
{
    (void)scales, (void)zeros, (void)row_len, (void)block;
    for (size_t b = 0; b < n / QK_K; b++) {
        const uint8_t *blk = data + b * sizeof(struct mq_block_iq4_xs);
        const float d = mq_get_f16(blk);
        const uint16_t scales_h = mq_get_u16(blk + 2);
        const uint8_t *scales_l = blk + 4, *qs = blk + 8;
        float *y = dst + b * QK_K;
        for (int ib = 0; ib < NB; ib++) {
            const int ls = ((scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) | (((scales_h >> 2 * ib) & 3) << 4);
            const float dl = d * (ls - 32);
            for (int j = 0; j < 16; j++) {
                y[j] = dl * mq_iq4nl_values[qs[j] & 0xF];
                y[j + 16] = dl * mq_iq4nl_values[qs[j] >> 4];
            }
            y += 32;
            qs += 16;
        }
    }
}
