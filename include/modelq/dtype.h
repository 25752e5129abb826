/*
** modelq/dtype.h - element types of tensors as they are stored in input files.
**
** The safetensors set (22 dtypes of the current format, names exact-case as in the header JSON)
** with their bit widths. Sub-byte types (F4, F6_*) count logical elements; a tensor's bit count
** must be a whole number of bytes.
*/
#ifndef MODELQ_DTYPE_H
#define MODELQ_DTYPE_H

#include <stdbool.h>
#include <stdint.h>

#include "modelq/export.h"

enum mq_dtype {
    MQ_DTYPE_BOOL,
    MQ_DTYPE_F4,
    MQ_DTYPE_F6_E2M3,
    MQ_DTYPE_F6_E3M2,
    MQ_DTYPE_U8,
    MQ_DTYPE_I8,
    MQ_DTYPE_F8_E5M2,
    MQ_DTYPE_F8_E4M3,
    MQ_DTYPE_F8_E8M0,
    MQ_DTYPE_F8_E4M3FNUZ,
    MQ_DTYPE_F8_E5M2FNUZ,
    MQ_DTYPE_I16,
    MQ_DTYPE_U16,
    MQ_DTYPE_F16,
    MQ_DTYPE_BF16,
    MQ_DTYPE_I32,
    MQ_DTYPE_U32,
    MQ_DTYPE_F32,
    MQ_DTYPE_C64,
    MQ_DTYPE_F64,
    MQ_DTYPE_I64,
    MQ_DTYPE_U64,
    MQ_DTYPE_COUNT
};

/* Safetensors name ("BF16"), NULL for an out-of-range value. */
MQ_API const char *mq_dtype_name(enum mq_dtype t);
/* Bits per element (4, 6, 8, 16, 32, 64); 0 for an out-of-range value. */
MQ_API unsigned mq_dtype_bits(enum mq_dtype t);
/* Exact-case lookup of a safetensors dtype name; false when unknown. */
MQ_API bool mq_dtype_from_name(const char *name, enum mq_dtype *out);
/* F32, F16 or BF16: the dtypes modelq quantizes. */
MQ_API bool mq_dtype_is_quantizable_float(enum mq_dtype t);
/* Any floating-point dtype (including FP8/FP6/FP4 and F64). */
MQ_API bool mq_dtype_is_float(enum mq_dtype t);

/*
** The value of one FP8 byte as float32 (exact: every FP8 value is a float32), per the OCP 8-bit
** floating point specification (OFP8, v1.0, 2023):
**   F8_E4M3 (torch.float8_e4m3fn): 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities,
**     S.1111.111 is NaN, the largest finite value is 448; subnormals m/8 * 2^-6.
**   F8_E5M2 (torch.float8_e5m2): 1 sign, 5 exponent (bias 15), 2 mantissa bits, IEEE-like:
**     S.11111.00 is +/-infinity, S.11111.{01,10,11} NaN, the largest finite value is 57344;
**     subnormals m/4 * 2^-14.
** Any other dtype gives NaN.
*/
MQ_API float mq_fp8_to_f32(enum mq_dtype t, uint8_t b);

#endif /* MODELQ_DTYPE_H */
