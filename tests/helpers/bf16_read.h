/*
** bf16_read.h - a BF16 tensor of an opened model as floats (BF16 bits << 16 is exact), for the
** tests that run the reference forward pass on a fixture's weights.
*/
#ifndef MODELQ_TEST_BF16_READ_H
#define MODELQ_TEST_BF16_READ_H

#include <stddef.h>
#include <stdint.h>

#include "modelq/model.h"

/* The numel BF16 values of tensor t of m as floats; asserts that they can be read. The caller
** checks dtype and shape first, and frees the result. */
float *bf16_read_f32(const struct mq_model *m, size_t t, uint64_t numel);

#endif
