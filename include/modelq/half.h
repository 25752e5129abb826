/*
** modelq/half.h - F16 and BF16 <-> F32 conversions, bit-exact with ggml.
**
** f32 -> f16: IEEE binary16 round-to-nearest-even; subnormal halves are kept; |x| >= 65520 becomes
**             +-inf (0x7C00); NaN becomes sign|0x7E00 (payload dropped), as ggml's
**             ggml_compute_fp32_to_fp16 does.
** f32 -> bf16: round-to-nearest-even on the top 16 bits (no flush of subnormals, overflow to inf);
**             NaN becomes (bits >> 16) | 0x40 (quiet), as ggml_compute_fp32_to_bf16 does.
** f16/bf16 -> f32: exact (an f16 signalling NaN comes back quiet, as in ggml).
**
** Values are host-order uint16_t bit patterns; callers that write files store them little-endian.
** The _row functions pick an F16C kernel at run time when the CPU has one; their output is
** identical to the scalar functions for every input (tests/test_half.c: every f16 pattern, an
** RNE oracle on a stride through all f32 patterns; tests/test_ggml_diff.c: ggml's own functions).
*/
#ifndef MODELQ_HALF_H
#define MODELQ_HALF_H

#include <stddef.h>
#include <stdint.h>

#include "modelq/export.h"

MQ_API uint16_t mq_f32_to_f16(float f);
MQ_API float mq_f16_to_f32(uint16_t h);
MQ_API uint16_t mq_f32_to_bf16(float f);
MQ_API float mq_bf16_to_f32(uint16_t h);

/* Largest finite f16 value; an f32 rounds to a finite f16 iff |x| < 65520 (MQ_F16_OVERFLOW). */
#define MQ_F16_MAX 65504.0f
#define MQ_F16_OVERFLOW 65520.0f

MQ_API void mq_f32_to_f16_row(const float *src, uint16_t *dst, size_t n);
MQ_API void mq_f16_to_f32_row(const uint16_t *src, float *dst, size_t n);
MQ_API void mq_f32_to_bf16_row(const float *src, uint16_t *dst, size_t n);
MQ_API void mq_bf16_to_f32_row(const uint16_t *src, float *dst, size_t n);

/* Scalar (reference) row versions: the fast ones must equal these. */
MQ_API void mq_f32_to_f16_row_ref(const float *src, uint16_t *dst, size_t n);
MQ_API void mq_f16_to_f32_row_ref(const uint16_t *src, float *dst, size_t n);

#endif /* MODELQ_HALF_H */
