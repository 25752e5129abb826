/*
** iq4_nl.c - ggml IQ4_NL: blocks of 32, 18 bytes: d (fp16 LE) @0 | qs[16] @2, element j in the
** low nibble of qs[j] and element j+16 in the high nibble; value = kvalues_iq4nl[nibble] * d.
**
** The quantizer is the one ggml_quantize_chunk and llama-quantize run (quantize_iq4_nl ->
** quantize_row_iq4_nl_impl with super_block = block = 32, no importance matrix, ntry = 7):
**   w_j = x_j^2; (amax, max) = first element of largest |x|; amax < 1e-15 -> d = 0, all codes 8
**   d0 = -max/values[0]; L = mq_iq4_grid_index(x/d0 scaled by id = 1/d0); d = sumqx/sumq2 (weighted
**   least squares), best = d*sumqx; then for itry = -7..7: id = (itry + values[0])/max, refit,
**   keep when sumqx^2 > best*sumq2. Finally L is recomputed from id = 1/d (fp32 d), d stored fp16.
** Sums run left to right in float32; the fast kernel (iq4_avx2.c) keeps that order per block
** (one block per AVX2 lane) so the bytes are the same.
*/
#include "iq4_lanes.h"

enum { QK = 32, QBYTES = 18, NTRY = 7 };

const int8_t mq_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

#define GROUP_MAX_EPS 1e-15f


void mq_iq4_nl_fit_block(const float *x, const float *weight, uint8_t *y)
{
    const int8_t *values = mq_iq4nl_values;
    uint8_t L[QK];
    float amax = 0, max = 0;
    for (int j = 0; j < QK; j++) {
        float ax = fabsf(x[j]);
        if (ax > amax) {
            amax = ax;
            max = x[j];
        }
    }
    float scale = 0;
    if (amax >= GROUP_MAX_EPS) {
        float d = -max / values[0];
        float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < QK; j++) {
            int l = mq_iq4_grid_index(id * x[j]);
            float q = values[l];
            float w = weight[j];
            sumqx += w * q * x[j];
            sumq2 += w * q * q;
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
        float best = d * sumqx;
        for (int itry = -NTRY; itry <= NTRY; itry++) {
            id = (itry + values[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < QK; j++) {
                int l = mq_iq4_grid_index(id * x[j]);
                float q = values[l];
                float w = weight[j];
                sumqx += w * q * x[j];
                sumq2 += w * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scale = d;
    }
    mq_put_f16(y, scale);
    float id = scale ? 1 / scale : 0;
    for (int j = 0; j < QK; j++) L[j] = (uint8_t)mq_iq4_grid_index(id * x[j]);
    for (int j = 0; j < QK / 2; j++) y[2 + j] = (uint8_t)(L[j] | (L[j + QK / 2] << 4));
}

/* The reference: ggml's weights x^2 without an importance matrix. */
static void iq4_nl_block_ref(const float *x, uint8_t *y)
{
    float weight[QK];
    for (int j = 0; j < QK; j++) weight[j] = x[j] * x[j];
    mq_iq4_nl_fit_block(x, weight, y);
}

void mq_quantize_iq4_nl_ref(const float *src, size_t n, size_t row_len, uint32_t block,
                            uint8_t *data, float *scales, int8_t *zeros)
{
    (void)row_len, (void)block, (void)scales, (void)zeros;
    for (size_t b = 0; b < n / QK; b++) iq4_nl_block_ref(src + b * QK, data + b * QBYTES);
}

void mq_quantize_iq4_nl_fast(const float *src, size_t n, size_t row_len, uint32_t block,
                             uint8_t *data, float *scales, int8_t *zeros)
{
    if (!mq_iq4_nl_quantize_avx2(src, n / QK, NULL, data)) mq_quantize_iq4_nl_ref(src, n, row_len, block, data, scales, zeros);
}

void mq_dequantize_iq4_nl(const uint8_t *data, const float *scales, const int8_t *zeros, size_t n,
                          size_t row_len, uint32_t block, float *dst)
{
    (void)scales, (void)zeros, (void)row_len, (void)block;
    for (size_t b = 0; b < n / QK; b++) {
        const uint8_t *y = data + b * QBYTES;
        const float d = mq_get_f16(y);
        for (int j = 0; j < QK / 2; j++) {
            dst[b * QK + j] = d * mq_iq4nl_values[y[2 + j] & 0x0f];
            dst[b * QK + j + QK / 2] = d * mq_iq4nl_values[y[2 + j] >> 4];
        }
    }
}
