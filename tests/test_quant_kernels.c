/*
** test_quant_kernels.c - properties of every codec kernel:
**   - fast == reference, byte for byte, on random and adversarial rows, with SIMD and with the
**     portable fallback, for any n (partial last blocks, odd counts) and any chunking;
**   - round trips and error bounds (Q8_0/INT8 within half a step, Q4_0 within one step), the
**     Q4_K layout on a hand-built block;
**   - NF4/FP4 mean absolute error on N(0,1) at block 64 (bitsandbytes' own figures);
**   - partial blocks, odd counts, constant blocks, geometry errors;
**   - the "values that do not fit" check and the error statistics.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelq/codec.h"
#include "modelq/half.h"
#include "modelq/qstats.h"
#include "modelq/quant.h"
#include "quant_testdata.h"

struct qout {
    uint8_t *data;
    float *scales;
    int8_t *zeros;
    size_t nbytes, nside;
};

static void qout_alloc(struct qout *o, enum mq_codec c, const struct mq_codec_params *p, size_t n, size_t row_len)
{
    o->nbytes = (size_t)mq_codec_data_bytes(c, p, n);
    o->nside = (size_t)mq_codec_side_count(c, p, n, row_len);
    o->data = calloc(1, o->nbytes + 1);
    o->scales = calloc(o->nside + 1, sizeof(float));
    o->zeros = calloc(o->nside + 1, 1);
}
static void qout_free(struct qout *o)
{
    free(o->data);
    free(o->scales);
    free(o->zeros);
}

static void run(enum mq_codec c, const struct mq_codec_params *p, const float *x, size_t n, size_t row_len,
                struct qout *o, bool fast)
{
    struct mq_qbuf b = {o->data, o->scales, o->zeros};
    struct mq_error err;
    cr_assert_eq(mq_quantize(c, p, x, n, row_len, &b, fast, &err), MQ_OK, "%s n=%zu: %s", mq_codec_info(c)->name, n,
                 err.msg);
}

static void dequant(enum mq_codec c, const struct mq_codec_params *p, const struct qout *o, size_t n, size_t row_len,
                    float *y)
{
    struct mq_qbuf b = {o->data, o->scales, o->zeros};
    struct mq_error err;
    cr_assert_eq(mq_dequantize(c, p, &b, n, row_len, y, &err), MQ_OK, "%s", err.msg);
}

static bool same(const struct qout *a, const struct qout *b)
{
    return memcmp(a->data, b->data, a->nbytes) == 0 && memcmp(a->scales, b->scales, a->nside * sizeof(float)) == 0 &&
           memcmp(a->zeros, b->zeros, a->nside) == 0;
}

static bool is_flat(enum mq_codec c) { return mq_codec_info(c)->flat_blocks; }

Test(kernels, fast_equals_reference_all_codecs)
{
    enum { ROWS = 4, ROW = 512 };
    static float x[ROWS * ROW];
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 99);
    long checked = 0;
    for (int mode = 0; mode < 2; mode++) {
        mq_quant_set_simd(mode ? -1 : 0);
        for (int kind = 0; kind < MQ_TEST_ROW_KINDS; kind++) {
            for (int rep = 0; rep < 6; rep++) {
                for (int row = 0; row < ROWS; row++) mq_test_fill_row(&r, kind, x + row * ROW, ROW);
                for (int c = 0; c < MQ_CODEC_COUNT; c++) {
                    /* flat codecs: also an odd count with a partial last block */
                    size_t n = is_flat((enum mq_codec)c) && rep % 2 ? ROWS * ROW - 1 - (size_t)rep * 7 : ROWS * ROW;
                    struct qout a, b;
                    qout_alloc(&a, (enum mq_codec)c, NULL, n, ROW);
                    qout_alloc(&b, (enum mq_codec)c, NULL, n, ROW);
                    run((enum mq_codec)c, NULL, x, n, ROW, &a, false);
                    run((enum mq_codec)c, NULL, x, n, ROW, &b, true);
                    cr_expect(same(&a, &b), "%s: fast != ref on %s rows (rep %d, n %zu, simd %s)",
                              mq_codec_info((enum mq_codec)c)->name, mq_test_row_kind_name(kind), rep, n,
                              mq_quant_simd_name());
                    checked++;
                    qout_free(&a);
                    qout_free(&b);
                }
            }
        }
    }
    mq_quant_set_simd(-1);
    fprintf(stderr, "kernels: %ld fast-vs-reference comparisons\n", checked);
}

Test(kernels, fast_equals_reference_odd_geometry)
{
    /* INT8_ROW rows that are not a multiple of the vector width; NF4/FP4/INT8_ASYM block sizes
     * other than the default with partial last blocks */
    enum { N = 4096 + 333 };
    static float x[N];
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 5);
    for (int kind = 0; kind < MQ_TEST_ROW_KINDS; kind++) {
        for (size_t i = 0; i < N; i += 32) mq_test_fill_row(&r, kind, x + i, N - i < 32 ? 0 : 32);
        static const size_t rows[] = {1, 7, 37, 1000, 4429};
        for (size_t k = 0; k < 5; k++) {
            size_t n = N / rows[k] * rows[k];
            struct qout a, b;
            qout_alloc(&a, MQ_CODEC_INT8_ROW, NULL, n, rows[k]);
            qout_alloc(&b, MQ_CODEC_INT8_ROW, NULL, n, rows[k]);
            run(MQ_CODEC_INT8_ROW, NULL, x, n, rows[k], &a, false);
            run(MQ_CODEC_INT8_ROW, NULL, x, n, rows[k], &b, true);
            cr_expect(same(&a, &b), "int8_row row %zu, %s", rows[k], mq_test_row_kind_name(kind));
            qout_free(&a);
            qout_free(&b);
        }
        static const uint32_t blocks[] = {2, 32, 48, 128, 4096};
        static const enum mq_codec flat[] = {MQ_CODEC_NF4, MQ_CODEC_FP4, MQ_CODEC_INT8_ASYM};
        for (size_t k = 0; k < 5; k++) {
            for (size_t f = 0; f < 3; f++) {
                struct mq_codec_params p = {.block_elems = blocks[k]};
                struct qout a, b;
                qout_alloc(&a, flat[f], &p, N, 0);
                qout_alloc(&b, flat[f], &p, N, 0);
                run(flat[f], &p, x, N, 0, &a, false);
                run(flat[f], &p, x, N, 0, &b, true);
                cr_expect(same(&a, &b), "%s block %u, %s", mq_codec_info(flat[f])->name, blocks[k],
                          mq_test_row_kind_name(kind));
                qout_free(&a);
                qout_free(&b);
            }
        }
    }
}

/*
** Sub-block shapes (32 values) that steer Q4_K/Q5_K's make_qkx2_quants search down each of its
** branches: a positive minimum clamped to 0, max == min (codes 0), fits whose min comes out > 0,
** steps with D <= 0 (two-valued data), rounding ties, a sub-block small enough beside the others
** that its 6-bit scale is 0 (ggml then keeps the search's codes), and scales/mins near a 6-bit
** rounding boundary (a copy of the previous sub-block times (k + 1/2) / 63).
*/
enum { KSHAPES = 15 };
static const char *const kshape_names[KSHAPES] = {
    "normal",       "positive-only", "equal-positive", "equal-negative", "zeros",
    "signed-zeros", "far-offset",    "two-valued",     "one-spike",      "6-bit-boundary",
    "tiny-beside",  "small-ints",    "negative-only",  "denormal",       "ramp",
};

static void fill_kquant_subblock(struct mq_test_rng *r, int shape, float *x, const float *prev)
{
    const float s = (float)pow(10.0, 4 * mq_test_rng_unit(r) - 2);
    const float c = (float)mq_test_rng_normal(r) * s;
    for (int i = 0; i < 32; i++) {
        const float v = (float)mq_test_rng_normal(r), u = (float)mq_test_rng_unit(r);
        switch (shape) {
        case 0: x[i] = v * s; break;
        case 1: x[i] = s * (0.25f + u); break;
        case 2: x[i] = fabsf(c); break;
        case 3: x[i] = -fabsf(c); break;
        case 4: x[i] = 0.0f; break;
        case 5: x[i] = u < 0.5f ? 0.0f : -0.0f; break;
        case 6: x[i] = 100 * s + v * s * 0.01f; break;
        case 7: x[i] = u < 0.5f ? c : -0.5f * c; break;
        case 8: x[i] = i == 7 ? c : 0.0f; break;
        case 9: break; /* below */
        case 10: x[i] = v * 1e-4f; break;
        case 11: x[i] = (float)((int)(mq_test_rng_u64(r) % 32) - 8); break;
        case 12: x[i] = -s * (0.1f + u); break;
        case 13: x[i] = v * 1e-39f; break;
        default: x[i] = (float)i * s - 7 * s; break;
        }
    }
    if (shape == 9) { /* one factor for the whole sub-block */
        const float f = ((float)(mq_test_rng_u64(r) % 63) + 0.5f) / 63;
        for (int i = 0; i < 32; i++) x[i] = prev[i] * f;
    }
}

/* Number of sub-blocks in Q4_K/Q5_K super-blocks whose 6-bit scale is 0 although d is not. */
static int kquant_zero_scales(const uint8_t *data, size_t nblocks, size_t block_bytes)
{
    int zero = 0;
    for (size_t b = 0; b < nblocks; b++) {
        const uint8_t *y = data + b * block_bytes, *sc = y + 4;
        if (mq_f16_to_f32((uint16_t)(y[0] | y[1] << 8)) == 0) continue;
        for (int j = 0; j < 8; j++) {
            int ls = j < 4 ? sc[j] & 63 : (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4);
            zero += ls == 0;
        }
    }
    return zero;
}

Test(kernels, kquant_fast_equals_reference_on_search_edge_cases)
{
    enum { MAXB = 7 };
    static float x[MAXB * 256];
    static const enum mq_codec kc[2] = {MQ_CODEC_Q4_K, MQ_CODEC_Q5_K};
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 4242);
    long checked = 0;
    int zero_scales = 0;
    for (int mode = 0; mode < 2; mode++) {
        mq_quant_set_simd(mode ? -1 : 0);
        for (int rep = 0; rep < 400; rep++) {
            /* 1..7 super-blocks of one row each: odd counts take the kernel's single-block tail */
            const size_t nb = 1 + (size_t)rep % MAXB, n = nb * 256;
            const int one_shape = (int)(mq_test_rng_u64(&r) % KSHAPES), mixed = rep % 3 != 0;
            for (size_t k = 0; k < nb * 8; k++) {
                int shape = mixed ? (int)(mq_test_rng_u64(&r) % KSHAPES) : one_shape;
                fill_kquant_subblock(&r, shape, x + 32 * k, k ? x + 32 * (k - 1) : x);
            }
            if (rep % 5 == 4) { /* the whole input scaled from ~1e-30 to ~1e5 */
                const float f = (float)pow(10.0, 35 * mq_test_rng_unit(&r) - 30);
                for (size_t i = 0; i < n; i++) x[i] *= f;
            }
            for (int c = 0; c < 2; c++) {
                struct qout a, b;
                qout_alloc(&a, kc[c], NULL, n, 256);
                qout_alloc(&b, kc[c], NULL, n, 256);
                run(kc[c], NULL, x, n, 256, &a, false);
                run(kc[c], NULL, x, n, 256, &b, true);
                cr_expect(same(&a, &b), "%s: fast != ref (rep %d, %zu super-blocks, %s, simd %s)",
                          mq_codec_info(kc[c])->name, rep, nb, mixed ? "mixed shapes" : kshape_names[one_shape],
                          mq_quant_simd_name());
                zero_scales += mode ? kquant_zero_scales(b.data, nb, b.nbytes / nb) : 0;
                checked++;
                qout_free(&a);
                qout_free(&b);
            }
        }
    }
    mq_quant_set_simd(-1);
    fprintf(stderr, "kernels: %ld Q4_K/Q5_K search edge-case comparisons, %d sub-blocks with 6-bit scale 0\n",
            checked, zero_scales);
    cr_expect_gt(zero_scales, 0, "no sub-block took the 6-bit-scale-0 path");
}

Test(kernels, chunked_equals_one_shot)
{
    enum { N = 64 * 40 };
    static float x[N];
    struct mq_test_rng r;
    mq_test_rng_seed(&r, 3);
    for (int i = 0; i < N; i++) x[i] = (float)mq_test_rng_normal(&r);
    for (int c = 0; c < MQ_CODEC_COUNT; c++) {
        const enum mq_codec cc = (enum mq_codec)c;
        const size_t row = 256;
        struct qout whole, part;
        qout_alloc(&whole, cc, NULL, N - 5 * is_flat(cc), row);
        qout_alloc(&part, cc, NULL, N - 5 * is_flat(cc), row);
        size_t n = N - 5 * is_flat(cc);
        run(cc, NULL, x, n, row, &whole, true);
        /* chunks of 3 rows (per-row codecs) or 7 blocks (flat), last one short */
        size_t step = is_flat(cc) ? 7 * mq_codec_block(cc, NULL) : 3 * row;
        for (size_t lo = 0; lo < n; lo += step) {
            size_t len = n - lo < step ? n - lo : step;
            struct qout at = part;
            at.data = part.data + mq_codec_data_bytes(cc, NULL, lo);
            at.scales = part.scales + mq_codec_side_count(cc, NULL, lo, row);
            at.zeros = part.zeros + mq_codec_side_count(cc, NULL, lo, row);
            run(cc, NULL, x + lo, len, row, &at, false);
        }
        cr_expect(same(&whole, &part), "%s: chunked output differs", mq_codec_info(cc)->name);
        qout_free(&whole);
        qout_free(&part);
    }
}

static void normal_data(float *x, size_t n, uint64_t seed)
{
    struct mq_test_rng r;
    mq_test_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)mq_test_rng_normal(&r);
}

Test(kernels, q8_0_within_half_a_step)
{
    enum { N = 32 * 2048 };
    static float x[N], y[N];
    normal_data(x, N, 11);
    struct qout o;
    qout_alloc(&o, MQ_CODEC_Q8_0, NULL, N, N);
    run(MQ_CODEC_Q8_0, NULL, x, N, N, &o, true);
    dequant(MQ_CODEC_Q8_0, NULL, &o, N, N, y);
    for (size_t b = 0; b < N / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        float d32 = amax / 127;
        float d16 = mq_f16_to_f32((uint16_t)(o.data[b * 34] | o.data[b * 34 + 1] << 8));
        double bound = 0.5 * d32 + 127.0 * fabs((double)d32 - d16) + 1e-6 * d32;
        for (int j = 0; j < 32; j++)
            cr_assert_leq(fabs((double)x[b * 32 + j] - y[b * 32 + j]), bound, "block %zu elem %d", b, j);
    }
    qout_free(&o);
}

Test(kernels, q4_0_within_one_step)
{
    enum { N = 32 * 2048 };
    static float x[N], y[N];
    normal_data(x, N, 12);
    struct qout o;
    qout_alloc(&o, MQ_CODEC_Q4_0, NULL, N, N);
    run(MQ_CODEC_Q4_0, NULL, x, N, N, &o, true);
    dequant(MQ_CODEC_Q4_0, NULL, &o, N, N, y);
    for (size_t b = 0; b < N / 32; b++) {
        double d = fabs(mq_f16_to_f32((uint16_t)(o.data[b * 18] | o.data[b * 18 + 1] << 8)));
        for (int j = 0; j < 32; j++)
            /* one step; the max-|x| element's opposite (-max) clamps at +7: 8 fp16-rounded steps */
            cr_assert_leq(fabs((double)x[b * 32 + j] - y[b * 32 + j]), d * (1 + 8 * 0x1p-11) + 1e-7, "block %zu elem %d", b, j);
    }
    qout_free(&o);
}

/*
** Q4_K block layout, built by hand from gguf-and-ggml.md 2.2/2.3 and 3.8: d and dmin fp16 at 0
** and 2, sub-block j's 6-bit scale s and min m in scales[12] at 4 (j < 4: low 6 bits of bytes j
** and j+4; j >= 4: low/high nibble of byte j+4 plus the top two bits of bytes j-4 and j), and in
** 64-chunk c byte 16+32c+l holding element 64c+l (low) and 64c+32+l (high). value = d*s*q - dmin*m.
*/
Test(kernels, q4_k_dequantizes_a_hand_built_block)
{
    static const uint8_t s[8] = {1, 2, 3, 4, 17, 33, 49, 63}, m[8] = {0, 5, 10, 15, 20, 40, 60, 63};
    uint8_t blk[144] = {0};
    blk[0] = 0x00, blk[1] = 0x3c; /* d = 1.0 */
    blk[2] = 0x00, blk[3] = 0x38; /* dmin = 0.5 */
    uint8_t *sc = blk + 4;
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            sc[j] |= s[j];
            sc[j + 4] |= m[j];
        } else {
            sc[j + 4] = (uint8_t)((s[j] & 15) | (m[j] & 15) << 4);
            sc[j - 4] |= (uint8_t)((s[j] >> 4) << 6);
            sc[j] |= (uint8_t)((m[j] >> 4) << 6);
        }
    }
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) blk[16 + 32 * c + l] = (uint8_t)((l & 15) | (15 - (l + c) % 16) << 4);
    float y[256];
    struct mq_qbuf b = {blk, NULL, NULL};
    cr_assert_eq(mq_dequantize(MQ_CODEC_Q4_K, NULL, &b, 256, 256, y, NULL), MQ_OK);
    for (int c = 0; c < 4; c++) {
        for (int l = 0; l < 32; l++) {
            int lo = 2 * c, hi = 2 * c + 1;
            cr_expect_eq(y[64 * c + l], (float)(s[lo] * (l & 15)) - 0.5f * m[lo], "element %d", 64 * c + l);
            cr_expect_eq(y[64 * c + 32 + l], (float)(s[hi] * (15 - (l + c) % 16)) - 0.5f * m[hi], "element %d",
                         64 * c + 32 + l);
        }
    }
}

Test(kernels, int8_row_within_half_a_step)
{
    enum { ROWS = 64, ROW = 1000 };
    static float x[ROWS * ROW], y[ROWS * ROW];
    normal_data(x, ROWS * ROW, 13);
    x[5] = 0.0f;
    for (int j = 0; j < ROW; j++) x[7 * ROW + j] = 0.0f; /* a zero row */
    struct qout o;
    qout_alloc(&o, MQ_CODEC_INT8_ROW, NULL, ROWS * ROW, ROW);
    cr_assert_eq(o.nside, ROWS);
    run(MQ_CODEC_INT8_ROW, NULL, x, ROWS * ROW, ROW, &o, true);
    dequant(MQ_CODEC_INT8_ROW, NULL, &o, ROWS * ROW, ROW, y);
    cr_expect_eq(o.scales[7], 0.0f);
    for (int r = 0; r < ROWS; r++) {
        float scb = 0;
        for (int j = 0; j < ROW; j++) scb = fmaxf(scb, fabsf(mq_f16_to_f32(mq_f32_to_f16(x[r * ROW + j]))));
        cr_expect_eq(o.scales[r], scb, "SCB of row %d", r);
        for (int j = 0; j < ROW; j++) {
            float h = mq_f16_to_f32(mq_f32_to_f16(x[r * ROW + j]));
            int8_t q = (int8_t)o.data[r * ROW + j];
            cr_assert(q != -128);
            double step = scb / 127.0;
            cr_assert_leq(fabs((double)h - y[r * ROW + j]), 0.5 * step * (1 + 1e-5) + 1e-12, "row %d col %d", r, j);
            cr_assert_leq(fabs((double)x[r * ROW + j] - y[r * ROW + j]),
                          0.5 * step * (1 + 1e-5) + fabs((double)x[r * ROW + j] - h) + 1e-12);
        }
    }
    /* LLM.int8 rounding is half to even: h*127/SCB = 0.5 and 1.5 -> 0 and 2 */
    float t[4] = {127.0f, 0.5f, 1.5f, -2.5f};
    struct qout o2;
    qout_alloc(&o2, MQ_CODEC_INT8_ROW, NULL, 4, 4);
    for (int fast = 0; fast < 2; fast++) {
        run(MQ_CODEC_INT8_ROW, NULL, t, 4, 4, &o2, fast);
        cr_expect_eq((int8_t)o2.data[0], 127);
        cr_expect_eq((int8_t)o2.data[1], 0);
        cr_expect_eq((int8_t)o2.data[2], 2);
        cr_expect_eq((int8_t)o2.data[3], -2);
    }
    qout_free(&o2);
    qout_free(&o);
}

Test(kernels, int8_asym_within_half_a_step_and_constant_blocks)
{
    enum { N = 64 * 500 + 37 };
    static float x[N], y[N];
    normal_data(x, N, 14);
    struct qout o;
    qout_alloc(&o, MQ_CODEC_INT8_ASYM, NULL, N, 0);
    run(MQ_CODEC_INT8_ASYM, NULL, x, N, 0, &o, true);
    dequant(MQ_CODEC_INT8_ASYM, NULL, &o, N, 0, y);
    long checked = 0;
    for (size_t b = 0; b < o.nside; b++) {
        size_t lo = b * 64, len = N - lo < 64 ? N - lo : 64;
        float mn = x[lo], mx = x[lo];
        for (size_t i = lo; i < lo + len; i++) mn = fminf(mn, x[i]), mx = fmaxf(mx, x[i]);
        if (!(mn <= 0 && mx >= 0)) continue; /* the zero point would clamp */
        double s = o.scales[b];
        for (size_t i = lo; i < lo + len; i++, checked++)
            cr_assert_leq(fabs((double)x[i] - y[i]), 0.5 * s * (1 + 1e-4) + 1e-30, "block %zu elem %zu", b, i);
    }
    cr_expect_gt(checked, N / 2);
    qout_free(&o);
    /* constant blocks of every tail length reconstruct exactly, with scale 0 when >= 3 long */
    for (size_t n = 1; n <= 70; n++) {
        float c[70], z[70];
        for (size_t i = 0; i < n; i++) c[i] = i < 64 ? -3.14159e-3f : 12345.678f;
        struct qout oc;
        qout_alloc(&oc, MQ_CODEC_INT8_ASYM, NULL, n, 0);
        run(MQ_CODEC_INT8_ASYM, NULL, c, n, 0, &oc, false);
        dequant(MQ_CODEC_INT8_ASYM, NULL, &oc, n, 0, z);
        cr_expect_arr_eq(z, c, n * sizeof(float), "constant block, n = %zu", n);
        size_t tail = n % 64 ? n % 64 : 64;
        if (tail >= 3) cr_expect_eq(oc.scales[oc.nside - 1], 0.0f, "n = %zu", n);
        qout_free(&oc);
    }
}

static double bnb4_mae(enum mq_codec c, uint64_t seed)
{
    enum { N = 1 << 20 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    normal_data(x, N, seed);
    struct qout o;
    qout_alloc(&o, c, NULL, N, 0);
    run(c, NULL, x, N, 0, &o, true);
    dequant(c, NULL, &o, N, 0, y);
    struct mq_qstats_acc acc;
    struct mq_qstats st;
    mq_qstats_init(&acc);
    mq_qstats_add(&acc, x, y, N);
    mq_qstats_result(&acc, &st);
    qout_free(&o);
    free(x);
    free(y);
    return st.mean_abs_err;
}

Test(kernels, nf4_mean_abs_error_matches_bitsandbytes)
{
    double mae = bnb4_mae(MQ_CODEC_NF4, 21);
    fprintf(stderr, "kernels: NF4 MAE on N(0,1), block 64, 2^20 values: %.6f (bitsandbytes: 0.072798)\n", mae);
    cr_expect(fabs(mae - 0.072798) < 0.0006, "NF4 MAE %f", mae);
    double fmae = bnb4_mae(MQ_CODEC_FP4, 22);
    fprintf(stderr, "kernels: FP4 MAE: %.6f (bitsandbytes: 0.096543)\n", fmae);
    cr_expect(fabs(fmae - 0.096543) < 0.0008, "FP4 MAE %f", fmae);
}

Test(kernels, nf4_partial_blocks_and_odd_counts)
{
    static const size_t counts[] = {1, 2, 3, 63, 64, 65, 127, 129, 191};
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        size_t n = counts[k];
        float x[192], y[192];
        normal_data(x, n, 30 + n);
        for (int fast = 0; fast < 2; fast++) {
            struct qout o;
            qout_alloc(&o, MQ_CODEC_NF4, NULL, n, 0);
            cr_assert_eq(o.nbytes, (n + 1) / 2);
            cr_assert_eq(o.nside, (n + 63) / 64);
            run(MQ_CODEC_NF4, NULL, x, n, 0, &o, fast);
            if (n & 1) cr_expect_eq(o.data[n / 2] & 15, 7, "pad code, n = %zu", n);
            dequant(MQ_CODEC_NF4, NULL, &o, n, 0, y);
            for (size_t i = 0; i < n; i++) {
                /* the decoded value is the code-book entry nearest to x/absmax */
                float am = o.scales[i / 64], s = x[i] / am;
                float best = 9;
                for (unsigned c = 0; c < 16; c++) best = fminf(best, fabsf(mq_nf4_value(c) - s));
                cr_assert_leq(fabsf(y[i] / am - s), best + 1e-6f, "n=%zu i=%zu", n, i);
            }
            float am = 0;
            for (size_t i = (o.nside - 1) * 64; i < n; i++) am = fmaxf(am, fabsf(x[i]));
            cr_expect_eq(o.scales[o.nside - 1], am, "partial block absmax counts valid items only");
            qout_free(&o);
        }
    }
    /* an all-zero block: codes 0, absmax 0, decodes to zeros */
    float z[64] = {0}, y[64];
    struct qout o;
    qout_alloc(&o, MQ_CODEC_NF4, NULL, 64, 0);
    for (int fast = 0; fast < 2; fast++) {
        run(MQ_CODEC_NF4, NULL, z, 64, 0, &o, fast);
        for (int i = 0; i < 32; i++) cr_expect_eq(o.data[i], 0);
        cr_expect_eq(o.scales[0], 0.0f);
        dequant(MQ_CODEC_NF4, NULL, &o, 64, 0, y);
        for (int i = 0; i < 64; i++) cr_expect_eq(y[i], 0.0f);
    }
    qout_free(&o);
}

Test(kernels, fp4_codes_and_nondefault_block)
{
    /* codebook points map to their own codes (bit 3 = sign); -0.0 has sign 0 */
    float x[16];
    for (unsigned c = 0; c < 16; c++) x[c] = mq_fp4_value(c);
    x[8] = -0.0f;
    struct qout o;
    qout_alloc(&o, MQ_CODEC_FP4, NULL, 16, 0);
    run(MQ_CODEC_FP4, NULL, x, 16, 0, &o, false);
    static const uint8_t want[8] = {0x01, 0x23, 0x45, 0x67, 0x09, 0xab, 0xcd, 0xef};
    cr_expect_arr_eq(o.data, want, 8);
    qout_free(&o);
    /* block 128 with double quant over many blocks: dequantized absmax stays close */
    enum { N = 128 * 700 };
    static float big[N];
    normal_data(big, N, 40);
    struct mq_codec_params p = {.block_elems = 128, .double_quant = true};
    qout_alloc(&o, MQ_CODEC_NF4, &p, N, 0);
    cr_assert_eq(o.nside, 700);
    run(MQ_CODEC_NF4, &p, big, N, 0, &o, true);
    uint8_t q[700];
    float nested[3], off, back[700];
    mq_bnb_double_quant(o.scales, 700, q, nested, &off);
    mq_bnb_double_dequant(q, nested, off, 700, back);
    for (int b = 0; b < 700; b++) cr_expect_leq(fabsf(back[b] - o.scales[b]), 0.02f * nested[b / 256] + 1e-6f);
    uint64_t bytes;
    cr_assert_eq(mq_codec_tensor_bytes(MQ_CODEC_NF4, &p, N, 128, &bytes, NULL), MQ_OK);
    cr_expect_eq(bytes, N / 2 + 700 + 3 * 4 + 1024 + 64);
    qout_free(&o);
}

Test(kernels, round_trip_accuracy_every_codec)
{
    enum { N = 256 * 64 };
    static float x[N], y[N];
    normal_data(x, N, 50);
    static const struct {
        enum mq_codec c;
        double max_rel_rmse; /* rmse / rms(x) */
    } lim[] = {
        {MQ_CODEC_F32, 0.0},      {MQ_CODEC_F16, 0.0004},   {MQ_CODEC_BF16, 0.003},  {MQ_CODEC_Q8_0, 0.01},
        {MQ_CODEC_Q4_0, 0.12},    {MQ_CODEC_Q4_1, 0.11},    {MQ_CODEC_IQ4_NL, 0.10}, {MQ_CODEC_Q5_K, 0.05},
        {MQ_CODEC_Q6_K, 0.025},   {MQ_CODEC_NF4, 0.11},     {MQ_CODEC_FP4, 0.15},    {MQ_CODEC_INT8_ROW, 0.01},
        {MQ_CODEC_INT8_ASYM, 0.012}, {MQ_CODEC_Q5_0, 0.06},    {MQ_CODEC_Q5_1, 0.055},  {MQ_CODEC_Q4_K, 0.085},
        {MQ_CODEC_Q2_K, 0.31},    {MQ_CODEC_Q3_K, 0.16},    {MQ_CODEC_IQ4_XS, 0.085},
    };
    cr_assert_eq(sizeof lim / sizeof lim[0], MQ_CODEC_COUNT);
    for (size_t k = 0; k < MQ_CODEC_COUNT; k++) {
        struct qout o;
        qout_alloc(&o, lim[k].c, NULL, N, 256);
        run(lim[k].c, NULL, x, N, 256, &o, true);
        dequant(lim[k].c, NULL, &o, N, 256, y);
        struct mq_qstats_acc acc;
        struct mq_qstats st;
        mq_qstats_init(&acc);
        mq_qstats_add(&acc, x, y, N);
        mq_qstats_result(&acc, &st);
        double rms = sqrt(acc.sum_sq_x / N);
        cr_expect_leq(st.rmse / rms, lim[k].max_rel_rmse, "%s: relative rmse %g", mq_codec_info(lim[k].c)->name,
                      st.rmse / rms);
        cr_expect_geq(st.cosine, 1 - lim[k].max_rel_rmse * lim[k].max_rel_rmse, "%s cosine %f",
                      mq_codec_info(lim[k].c)->name, st.cosine);
        qout_free(&o);
    }
}

Test(kernels, geometry_errors)
{
    float x[64] = {0};
    uint8_t buf[256];
    float sc[4];
    struct mq_qbuf b = {buf, sc, NULL};
    struct mq_error err;
    cr_expect_eq(mq_quantize(MQ_CODEC_Q8_0, NULL, x, 33, 33, &b, true, &err), MQ_E_USAGE);
    cr_expect_str_eq(err.check, "row-block");
    cr_expect_eq(mq_quantize(MQ_CODEC_Q8_0, NULL, x, 48, 32, &b, true, &err), MQ_E_USAGE);
    cr_expect_str_eq(err.check, "whole-rows");
    cr_expect_eq(mq_quantize(MQ_CODEC_Q6_K, NULL, x, 64, 64, &b, true, &err), MQ_E_USAGE);
    struct mq_codec_params odd = {.block_elems = 63};
    cr_expect_eq(mq_quantize(MQ_CODEC_NF4, &odd, x, 64, 0, &b, true, &err), MQ_E_USAGE);
    struct mq_qbuf nos = {buf, NULL, NULL};
    cr_expect_eq(mq_quantize(MQ_CODEC_NF4, NULL, x, 64, 0, &nos, true, &err), MQ_E_USAGE);
    cr_expect_eq(mq_quantize(MQ_CODEC_INT8_ASYM, NULL, x, 64, 0, &b, true, &err), MQ_E_USAGE);
    cr_expect_eq(mq_quantize(MQ_CODEC_COUNT, NULL, x, 64, 0, &b, true, &err), MQ_E_USAGE);
    cr_expect_eq(mq_dequantize(MQ_CODEC_Q4_0, NULL, &b, 40, 40, x, &err), MQ_E_USAGE);
}

Test(kernels, codec_table_sizes)
{
    enum mq_codec c;
    cr_assert(mq_codec_from_name("Q6_K", &c));
    cr_expect_eq(c, MQ_CODEC_Q6_K);
    cr_assert(mq_codec_from_name("iq4_nl", &c));
    cr_expect_eq(mq_codec_info(c)->ggml_type, 20);
    cr_assert(mq_codec_from_name("q3_k", &c)); /* case-insensitive */
    cr_expect_eq(mq_codec_info(c)->ggml_type, 11);
    cr_expect_not(mq_codec_from_name("q3_K_M", &c)); /* a target (mixture), not a codec */
    cr_expect_null(mq_codec_info(MQ_CODEC_COUNT));
    for (int i = 0; i < MQ_CODEC_COUNT; i++) {
        const struct mq_codec_info *ci = mq_codec_info((enum mq_codec)i);
        cr_expect(ci->quantize_ref && ci->quantize_fast && ci->dequantize, "%s has kernels", ci->name);
    }
    uint64_t bytes;
    struct mq_codec_params dq = {.double_quant = true};
    cr_assert_eq(mq_codec_tensor_bytes(MQ_CODEC_NF4, &dq, 4096ull * 4096, 4096, &bytes, NULL), MQ_OK);
    cr_expect_eq(bytes, 8388608ull + 262144 + 1024 * 4 + 1024 + 64);
    cr_assert_eq(mq_codec_tensor_bytes(MQ_CODEC_Q8_0, NULL, 4096, 256, &bytes, NULL), MQ_OK);
    cr_expect_eq(bytes, 128 * 34);
    cr_expect_eq(mq_codec_data_bytes(MQ_CODEC_Q8_0, NULL, 4096), 128 * 34);
    cr_expect_eq(mq_codec_data_bytes(MQ_CODEC_NF4, NULL, 129), 65);
    cr_expect_eq(mq_codec_side_count(MQ_CODEC_NF4, NULL, 129, 0), 3);
    cr_expect_eq(mq_codec_side_count(MQ_CODEC_INT8_ROW, NULL, 4096, 256), 16);
    cr_expect_eq(mq_codec_side_count(MQ_CODEC_Q6_K, NULL, 4096, 256), 0);
}

/* ---- values that do not fit ---- */

static enum mq_status scan(enum mq_codec c, const float *x, size_t n, size_t row_len, size_t chunk,
                           struct mq_range_check *rc, struct mq_error *err)
{
    mq_range_init(rc);
    for (size_t lo = 0; lo < n; lo += chunk) mq_range_scan(rc, c, NULL, x + lo, n - lo < chunk ? n - lo : chunk, row_len);
    return mq_range_finish(rc, "blk.0.attn_q.weight", c, err);
}

Test(range, nan_inf_reported_with_name_index_count)
{
    float x[512];
    normal_data(x, 512, 60);
    x[77] = NAN;
    x[300] = -INFINITY;
    x[301] = INFINITY;
    struct mq_range_check rc;
    struct mq_error err;
    for (int c = 0; c < MQ_CODEC_COUNT; c++) {
        mq_error_clear(&err);
        cr_assert_eq(scan((enum mq_codec)c, x, 512, 256, 256, &rc, &err), MQ_E_RANGE, "%s", mq_codec_info((enum mq_codec)c)->name);
        cr_expect_eq(rc.first_bad, 77);
        cr_expect_eq(rc.bad, 3);
        cr_expect_str_eq(err.check, "value-range");
        cr_expect(strstr(err.msg, "blk.0.attn_q.weight") && strstr(err.msg, "index 77") && strstr(err.msg, "3 value"),
                  "%s", err.msg);
    }
    normal_data(x, 512, 61);
    for (int c = 0; c < MQ_CODEC_COUNT; c++)
        cr_expect_eq(scan((enum mq_codec)c, x, 512, 256, 256, &rc, &err), MQ_OK);
}

Test(range, f16_outputs_refuse_values_above_65504_after_rounding)
{
    float x[64] = {0};
    x[10] = 65504.0f;
    x[11] = -65519.0f; /* rounds to -65504: fits */
    struct mq_range_check rc;
    struct mq_error err;
    cr_expect_eq(scan(MQ_CODEC_F16, x, 64, 64, 64, &rc, &err), MQ_OK);
    cr_expect_eq(scan(MQ_CODEC_INT8_ROW, x, 64, 64, 64, &rc, &err), MQ_OK);
    x[40] = 65520.0f;
    x[41] = -1e6f;
    cr_expect_eq(scan(MQ_CODEC_F16, x, 64, 64, 32, &rc, &err), MQ_E_RANGE);
    cr_expect_eq(rc.first_bad, 40);
    cr_expect_eq(rc.bad, 2);
    cr_expect_eq(scan(MQ_CODEC_INT8_ROW, x, 64, 64, 64, &rc, &err), MQ_E_RANGE);
    /* bf16, f32 and the bitsandbytes 4-bit codecs have float32 scales: 1e6 fits */
    cr_expect_eq(scan(MQ_CODEC_BF16, x, 64, 64, 64, &rc, &err), MQ_OK);
    cr_expect_eq(scan(MQ_CODEC_NF4, x, 64, 64, 64, &rc, &err), MQ_OK);
}

Test(range, fp16_block_scales)
{
    float x[256];
    normal_data(x, 256, 62);
    struct mq_range_check rc;
    struct mq_error err;
    /* Q8_0: d = amax/127 -> fp16 overflow once amax/127 >= 65520 */
    x[100] = 8.0e6f; /* d = 62992: fits */
    cr_expect_eq(scan(MQ_CODEC_Q8_0, x, 256, 256, 256, &rc, &err), MQ_OK);
    x[100] = 9.0e6f; /* d = 70866: overflows */
    cr_expect_eq(scan(MQ_CODEC_Q8_0, x, 256, 256, 256, &rc, &err), MQ_E_RANGE);
    cr_expect_eq(rc.first_bad, 100);
    cr_expect_eq(rc.bad, 1);
    cr_expect(strstr(err.msg, "block scale"), "%s", err.msg);
    /* Q4_0: d = max/-8 */
    x[100] = 5.0e5f;
    cr_expect_eq(scan(MQ_CODEC_Q4_0, x, 256, 256, 256, &rc, &err), MQ_OK);
    x[100] = 6.0e5f;
    cr_expect_eq(scan(MQ_CODEC_Q4_0, x, 256, 256, 256, &rc, &err), MQ_E_RANGE);
    /* Q4_1: m = fp16(min) overflows when every value is large and positive */
    for (int i = 0; i < 32; i++) x[i] = 70000.0f + (float)i;
    cr_expect_eq(scan(MQ_CODEC_Q4_1, x, 256, 256, 256, &rc, &err), MQ_E_RANGE);
    cr_expect_eq(rc.first_bad, 0);
    cr_expect_eq(rc.bad, 32); /* the block of large values (6e5 alone keeps d = 40000) */
    /* the same values fit Q8_0 and the K-quants (their scales are far smaller) */
    x[100] = 1.0f;
    cr_expect_eq(scan(MQ_CODEC_Q8_0, x, 256, 256, 256, &rc, &err), MQ_OK);
    cr_expect_eq(scan(MQ_CODEC_Q6_K, x, 256, 256, 256, &rc, &err), MQ_OK);
    cr_expect_eq(scan(MQ_CODEC_Q5_K, x, 256, 256, 256, &rc, &err), MQ_OK);
    cr_expect_eq(scan(MQ_CODEC_Q4_K, x, 256, 256, 256, &rc, &err), MQ_OK);
    cr_expect_eq(scan(MQ_CODEC_IQ4_NL, x, 256, 256, 256, &rc, &err), MQ_OK);
    /* Q4_K: d = largest sub-block scale / 63, a scale about a sub-block's range / 15 */
    normal_data(x, 256, 62);
    x[100] = 1.0e7f; /* d ~ 1.1e4: fits */
    cr_expect_eq(scan(MQ_CODEC_Q4_K, x, 256, 256, 256, &rc, &err), MQ_OK);
    x[100] = 1.0e8f; /* d ~ 1.1e5: overflows */
    cr_expect_eq(scan(MQ_CODEC_Q4_K, x, 256, 256, 256, &rc, &err), MQ_E_RANGE);
    cr_expect_eq(rc.first_bad, 100);
    cr_expect_eq(rc.bad, 1);
    /* streaming: the flat index counts across chunks */
    normal_data(x, 256, 63);
    x[200] = 1e7f;
    cr_expect_eq(scan(MQ_CODEC_Q8_0, x, 256, 64, 64, &rc, &err), MQ_E_RANGE);
    cr_expect_eq(rc.first_bad, 200);
}

/* ---- error statistics ---- */

Test(qstats, known_values_and_streaming)
{
    const float x[4] = {1, 2, 3, 4}, y[4] = {1, 2, 3, 5};
    struct mq_qstats_acc acc, a2, b2;
    struct mq_qstats st, st2;
    mq_qstats_init(&acc);
    mq_qstats_add(&acc, x, y, 4);
    mq_qstats_result(&acc, &st);
    cr_expect_float_eq(st.rmse, 0.5, 1e-12);
    cr_expect_float_eq(st.max_abs_err, 1.0, 1e-12);
    cr_expect_float_eq(st.mean_abs_err, 0.25, 1e-12);
    cr_expect_float_eq(st.snr_db, 10 * log10(30.0), 1e-9);
    cr_expect_float_eq(st.cosine, 34.0 / sqrt(30.0 * 39.0), 1e-12);
    mq_qstats_init(&a2);
    mq_qstats_init(&b2);
    mq_qstats_add(&a2, x, y, 3);
    mq_qstats_add(&b2, x + 3, y + 3, 1);
    mq_qstats_merge(&a2, &b2);
    mq_qstats_result(&a2, &st2);
    cr_expect_float_eq(st2.rmse, st.rmse, 1e-12);
    cr_expect_float_eq(st2.cosine, st.cosine, 1e-12);
    /* exact and degenerate cases */
    mq_qstats_init(&acc);
    mq_qstats_add(&acc, x, x, 4);
    mq_qstats_result(&acc, &st);
    cr_expect(isinf(st.snr_db) && st.snr_db > 0);
    cr_expect_float_eq(st.cosine, 1.0, 1e-12);
    const float z[2] = {0, 0}, nz[2] = {0, NAN};
    mq_qstats_init(&acc);
    mq_qstats_add(&acc, z, nz, 2);
    mq_qstats_result(&acc, &st);
    cr_expect_eq(st.n, 1);
    cr_expect_eq(st.nonfinite, 1);
    cr_expect_eq(st.rmse, 0.0);
}
