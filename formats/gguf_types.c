/* gguf_types.c - the ggml type table (ggml.h enum ggml_type, ggml.c type_traits). */
#include "gguf.h"
#include "model_impl.h"

#include <stddef.h>

#define Q(n, b, s) {n, b, s, true, MQ_DTYPE_COUNT}
#define P(n, s, d) {n, 1, s, false, d}

static const struct mq_ggml_type types[MQ_GGML_TYPE_COUNT] = {
    [0] = P("F32", 4, MQ_DTYPE_F32),  [1] = P("F16", 2, MQ_DTYPE_F16),
    [2] = Q("Q4_0", 32, 18),          [3] = Q("Q4_1", 32, 20),
    [6] = Q("Q5_0", 32, 22),          [7] = Q("Q5_1", 32, 24),
    [8] = Q("Q8_0", 32, 34),          [9] = Q("Q8_1", 32, 36),
    [10] = Q("Q2_K", 256, 84),        [11] = Q("Q3_K", 256, 110),
    [12] = Q("Q4_K", 256, 144),       [13] = Q("Q5_K", 256, 176),
    [14] = Q("Q6_K", 256, 210),       [15] = Q("Q8_K", 256, 292),
    [16] = Q("IQ2_XXS", 256, 66),     [17] = Q("IQ2_XS", 256, 74),
    [18] = Q("IQ3_XXS", 256, 98),     [19] = Q("IQ1_S", 256, 50),
    [20] = Q("IQ4_NL", 32, 18),       [21] = Q("IQ3_S", 256, 110),
    [22] = Q("IQ2_S", 256, 82),       [23] = Q("IQ4_XS", 256, 136),
    [24] = P("I8", 1, MQ_DTYPE_I8),   [25] = P("I16", 2, MQ_DTYPE_I16),
    [26] = P("I32", 4, MQ_DTYPE_I32), [27] = P("I64", 8, MQ_DTYPE_I64),
    [28] = P("F64", 8, MQ_DTYPE_F64), [29] = Q("IQ1_M", 256, 56),
    [30] = P("BF16", 2, MQ_DTYPE_BF16),
    [34] = Q("TQ1_0", 256, 54),       [35] = Q("TQ2_0", 256, 66),
    [39] = Q("MXFP4", 32, 17),        [40] = Q("NVFP4", 64, 36),
    [41] = Q("Q1_0", 128, 18),
};

const struct mq_ggml_type *mq_ggml_type(int32_t id)
{
    if (id < 0 || (uint32_t)id >= MQ_GGML_TYPE_COUNT || types[id].blck == 0) return NULL;
    return &types[id];
}

const char *mq_ggml_type_name(int32_t id)
{
    const struct mq_ggml_type *t = mq_ggml_type(id);
    return t ? t->name : NULL;
}

int32_t mq_ggml_type_of_dtype(enum mq_dtype d)
{
    for (uint32_t id = 0; id < MQ_GGML_TYPE_COUNT; id++)
        if (types[id].blck && !types[id].quantized && types[id].plain == d) return (int32_t)id;
    return -1;
}

/*
** gguf.cpp's representability test, on ne[0..3] >= 0 (missing dims are 1): skipped for a
** zero-element tensor; otherwise each running product must stay below INT64_MAX. The products
** are evaluated only after the previous test passed, so they cannot overflow here.
*/
bool mq_gguf_elements_overflow(const int64_t ne[4])
{
    if (ne[0] == 0 || ne[1] == 0 || ne[2] == 0 || ne[3] == 0) return false;
    return INT64_MAX / ne[1] <= ne[0] || INT64_MAX / ne[2] <= ne[0] * ne[1] ||
           INT64_MAX / ne[3] <= ne[0] * ne[1] * ne[2];
}
