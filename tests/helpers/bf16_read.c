/* bf16_read.c - see bf16_read.h. */
#include "bf16_read.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

float *bf16_read_f32(const struct mq_model *m, size_t t, uint64_t numel)
{
    uint8_t *raw = malloc(numel * 2);
    float *out = malloc(numel * sizeof *out);
    cr_assert(raw && out);
    struct mq_error err;
    mq_error_clear(&err);
    cr_assert_eq(mq_model_read(m, t, 0, raw, numel * 2, &err), MQ_OK, "%s", err.msg);
    for (uint64_t i = 0; i < numel; i++) {
        uint32_t bits = ((uint32_t)raw[2 * i] | ((uint32_t)raw[2 * i + 1] << 8)) << 16;
        memcpy(&out[i], &bits, sizeof bits);
    }
    free(raw);
    return out;
}
