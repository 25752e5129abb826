/*
** q2_k_lanes.h - the AVX2 Q2_K quantizer without importance weights (q2_k_avx2.c), byte-identical
** to q2_k.c's reference (ggml's quantize_row_q2_K_ref).
*/
#ifndef MODELQ_Q2_K_LANES_H
#define MODELQ_Q2_K_LANES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* nb super-blocks of src (256 floats each) into data (84 bytes each). Returns false (and writes
 * nothing) when the CPU lacks AVX2 (or MODELQ_NO_SIMD is set): the caller then runs the scalar kernel. */
bool mq_q2_k_quantize_avx2(const float *src, size_t nb, uint8_t *data);

#endif /* MODELQ_Q2_K_LANES_H */
