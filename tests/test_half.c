/*
** test_half.c - F16/BF16 <-> F32 conversions: the published edge cases of
** gguf-and-ggml.md 3.1, every f16 pattern round trip, an independent RNE oracle (double
** arithmetic) on a stride through all f32 patterns, and fast rows == scalar.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "modelq/half.h"
#include "modelq/quant.h"
#include "quant_testdata.h"

static float fbits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t bitsf(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

Test(half, doc_edge_cases)
{
    cr_expect_eq(mq_f32_to_f16(65519.0f), 0x7bff);
    cr_expect_eq(mq_f32_to_f16(65520.0f), 0x7c00);
    cr_expect_eq(mq_f32_to_f16(0x1p-24f), 0x0001);
    cr_expect_eq(mq_f32_to_f16(0x1p-25f), 0x0000); /* tie -> even */
    cr_expect_eq(mq_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);
    cr_expect_eq(mq_f32_to_f16(NAN), 0x7e00);
    cr_expect_eq(mq_f32_to_f16(-NAN), 0xfe00);
    cr_expect_eq(mq_f32_to_f16(-0.0f), 0x8000);
    cr_expect_eq(mq_f32_to_f16(INFINITY), 0x7c00);
    cr_expect_eq(mq_f32_to_f16(-INFINITY), 0xfc00);
    cr_expect_eq(mq_f32_to_f16(65504.0f), 0x7bff);
    cr_expect_eq(mq_f32_to_f16(0x1.8p-25f), 0x0001); /* above the tie */
    cr_expect_eq(mq_f32_to_f16(0x1.ffcp-15f), 0x0400); /* subnormal rounding up to the smallest normal */
    /* bf16: RNE, NaN quiet, overflow to Inf */
    cr_expect_eq(mq_f32_to_bf16(1.0f), 0x3f80);
    cr_expect_eq(mq_f32_to_bf16(fbits(0x3f808000)), 0x3f80); /* tie -> even */
    cr_expect_eq(mq_f32_to_bf16(fbits(0x3f818000)), 0x3f82); /* tie -> even (up) */
    cr_expect_eq(mq_f32_to_bf16(fbits(0x7f7fffff)), 0x7f80);
    cr_expect_eq(mq_f32_to_bf16(fbits(0x7f800001)), 0x7fc0);
    cr_expect_eq(mq_f32_to_bf16(fbits(0x00000001)), 0x0000);
    cr_expect_eq(mq_f32_to_bf16(fbits(0x00008000)), 0x0000);
    cr_expect_eq(mq_f32_to_bf16(fbits(0x00018000)), 0x0002);
    cr_expect_eq(bitsf(mq_bf16_to_f32(0x3f80)), 0x3f800000u);
}

Test(half, every_f16_pattern_round_trips)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = mq_f16_to_f32((uint16_t)h);
        uint16_t back = mq_f32_to_f16(f);
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) {
            cr_assert(isnan(f));
            cr_assert_eq(back, (h & 0x8000) | 0x7e00);
        } else {
            cr_assert_eq(back, h, "f16 %04x -> %a -> %04x", h, (double)f, back);
        }
    }
}

/* Oracle: nearest f16 by exhaustive comparison in double over the two candidates. */
static uint16_t oracle_f16(float f)
{
    if (isnan(f)) return (uint16_t)((bitsf(f) >> 16 & 0x8000) | 0x7e00);
    double a = fabs((double)f);
    uint16_t sign = (uint16_t)(signbit(f) ? 0x8000 : 0);
    if (a >= 65520.0) return sign | 0x7c00;
    /* the largest pattern whose value <= a */
    uint16_t lo = 0, hi = 0x7bff;
    while (lo < hi) {
        uint16_t mid = (uint16_t)((lo + hi + 1) / 2);
        if ((double)mq_f16_to_f32(mid) <= a) lo = mid;
        else hi = mid - 1;
    }
    double vlo = mq_f16_to_f32(lo);
    if (vlo == a || lo == 0x7bff) return sign | lo;
    double vhi = mq_f16_to_f32((uint16_t)(lo + 1));
    if (a - vlo < vhi - a) return sign | lo;
    if (a - vlo > vhi - a) return sign | (uint16_t)(lo + 1);
    return sign | ((lo & 1) ? (uint16_t)(lo + 1) : lo);
}

Test(half, f32_to_f16_matches_rne_oracle)
{
    for (uint64_t u = 0; u <= 0xffffffffull; u += 65521) {
        float f = fbits((uint32_t)u);
        cr_assert_eq(mq_f32_to_f16(f), oracle_f16(f), "f32 %08x", (uint32_t)u);
    }
}

Test(half, fast_rows_equal_scalar)
{
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 7);
    enum { N = 4099 };
    static float x[N], back_fast[N], back_ref[N];
    static uint16_t h_fast[N], h_ref[N];
    for (int i = 0; i < N; i++) x[i] = fbits((uint32_t)mq_test_rng_u64(&r));
    x[5] = NAN, x[6] = -INFINITY, x[7] = 65520.0f, x[8] = 0x1p-25f;
    for (int mode = 0; mode < 2; mode++) {
        mq_quant_set_simd(mode);
        mq_f32_to_f16_row(x, h_fast, N);
        mq_f32_to_f16_row_ref(x, h_ref, N);
        cr_expect_arr_eq(h_fast, h_ref, sizeof h_ref, "mode %d", mode);
        for (int i = 0; i < N; i++) h_ref[i] = (uint16_t)i * 16u + (uint16_t)(i >> 12);
        mq_f16_to_f32_row(h_ref, back_fast, N);
        mq_f16_to_f32_row_ref(h_ref, back_ref, N);
        cr_expect_arr_eq(back_fast, back_ref, sizeof back_ref, "mode %d", mode);
    }
    mq_quant_set_simd(-1);
}
