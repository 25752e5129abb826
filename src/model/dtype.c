/* dtype.c - the table of safetensors element types (names and widths). */
#include "modelq/dtype.h"

#include <math.h>
#include <string.h>

static const struct {
    const char *name;
    unsigned bits;
    bool is_float;
} dtype_table[MQ_DTYPE_COUNT] = {
    [MQ_DTYPE_BOOL] = {"BOOL", 8, false},
    [MQ_DTYPE_F4] = {"F4", 4, true},
    [MQ_DTYPE_F6_E2M3] = {"F6_E2M3", 6, true},
    [MQ_DTYPE_F6_E3M2] = {"F6_E3M2", 6, true},
    [MQ_DTYPE_U8] = {"U8", 8, false},
    [MQ_DTYPE_I8] = {"I8", 8, false},
    [MQ_DTYPE_F8_E5M2] = {"F8_E5M2", 8, true},
    [MQ_DTYPE_F8_E4M3] = {"F8_E4M3", 8, true},
    [MQ_DTYPE_F8_E8M0] = {"F8_E8M0", 8, true},
    [MQ_DTYPE_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8, true},
    [MQ_DTYPE_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8, true},
    [MQ_DTYPE_I16] = {"I16", 16, false},
    [MQ_DTYPE_U16] = {"U16", 16, false},
    [MQ_DTYPE_F16] = {"F16", 16, true},
    [MQ_DTYPE_BF16] = {"BF16", 16, true},
    [MQ_DTYPE_I32] = {"I32", 32, false},
    [MQ_DTYPE_U32] = {"U32", 32, false},
    [MQ_DTYPE_F32] = {"F32", 32, true},
    [MQ_DTYPE_C64] = {"C64", 64, true},
    [MQ_DTYPE_F64] = {"F64", 64, true},
    [MQ_DTYPE_I64] = {"I64", 64, false},
    [MQ_DTYPE_U64] = {"U64", 64, false},
};

const char *mq_dtype_name(enum mq_dtype t)
{
    return (unsigned)t < MQ_DTYPE_COUNT ? dtype_table[t].name : NULL;
}

unsigned mq_dtype_bits(enum mq_dtype t)
{
    return (unsigned)t < MQ_DTYPE_COUNT ? dtype_table[t].bits : 0;
}

bool mq_dtype_from_name(const char *name, enum mq_dtype *out)
{
    for (int i = 0; i < MQ_DTYPE_COUNT; i++) {
        if (strcmp(dtype_table[i].name, name) == 0) {
            *out = (enum mq_dtype)i;
            return true;
        }
    }
    return false;
}

bool mq_dtype_is_quantizable_float(enum mq_dtype t)
{
    return t == MQ_DTYPE_F32 || t == MQ_DTYPE_F16 || t == MQ_DTYPE_BF16;
}

bool mq_dtype_is_float(enum mq_dtype t)
{
    return (unsigned)t < MQ_DTYPE_COUNT && dtype_table[t].is_float;
}

float mq_fp8_to_f32(enum mq_dtype t, uint8_t b)
{
    float sign = (b & 0x80) ? -1.0f : 1.0f;
    unsigned e, mant;
    if (t == MQ_DTYPE_F8_E4M3) {
        e = (b >> 3) & 0xF, mant = b & 0x7;
        if (e == 0xF && mant == 0x7) return NAN;
        if (e == 0) return sign * ldexpf((float)mant, -9);         /* m/8 * 2^-6 */
        return sign * ldexpf((float)(8 + mant), (int)e - 7 - 3); /* (1 + m/8) * 2^(e-7) */
    }
    if (t == MQ_DTYPE_F8_E5M2) {
        e = (b >> 2) & 0x1F, mant = b & 0x3;
        if (e == 0x1F) return mant ? NAN : sign * INFINITY;
        if (e == 0) return sign * ldexpf((float)mant, -16);          /* m/4 * 2^-14 */
        return sign * ldexpf((float)(4 + mant), (int)e - 15 - 2); /* (1 + m/4) * 2^(e-15) */
    }
    return NAN;
}
