/*
** test_fp8.c - FP8 (src/dtype.c mq_fp8_to_f32, formats/fp8_read.c, src/fp8_source.c).
**
**   - the E4M3 (E4M3FN) and E5M2 tables against the OCP 8-bit floating point definition:
**     values from the spec, every code against the definition's formula, NaN and infinity codes
**   - a safetensors F8_E4M3 weight [130, 260] with F32 block scales [2, 3] (partial blocks on
**     both edges) and an E5M2 weight without scales: read as F32, whole and in ranges, equal to
**     fp8 * scale_inv of the block exactly; the scale tensor is no tensor of its own;
**     a BF16 scale and a scalar scale; a scale of the wrong shape is refused by name
**   - inspect shows FP8 with the scale tensor; converting to f32 writes the dequantized values
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"
#include "modelq/dtype.h"
#include "modelq/half.h"
#include "modelq/model.h"
#include "run_cmd.h"
#include "stwrite.h"

/* The OCP definition, written out independently: (-1)^s * 2^(e - bias) * (1 + m / 2^M), subnormals
** 2^(1 - bias) * m / 2^M. */
static double ocp(uint8_t b, int ebits, int mbits, int bias)
{
    int s = b >> 7, e = (b >> mbits) & ((1 << ebits) - 1), m = b & ((1 << mbits) - 1);
    double v = e == 0 ? ldexp((double)m / (1 << mbits), 1 - bias) : ldexp(1.0 + (double)m / (1 << mbits), e - bias);
    return s ? -v : v;
}

Test(fp8, e4m3_table_is_the_ocp_definition)
{
    cr_expect_eq(mq_fp8_to_f32(MQ_DTYPE_F8_E4M3, 0x7E), 448.0f);
    cr_expect_eq(mq_fp8_to_f32(MQ_DTYPE_F8_E4M3, 0xFE), -448.0f);
    cr_expect_eq(mq_fp8_to_f32(MQ_DTYPE_F8_E4M3, 0x38), 1.0f);
    cr_expect_eq(mq_fp8_to_f32(MQ_DTYPE_F8_E4M3, 0x08), 0x1p-6f); /* smallest normal */
    cr_expect_eq(mq_fp8_to_f32(MQ_DTYPE_F8_E4M3, 0x01), 0x1p-9f); /* smallest subnormal */
    cr_expect_eq(mq_fp8_to_f32(MQ_DTYPE_F8_E4M3, 0x07), 0x1.cp-7f); /* largest subnormal 7/8 * 2^-6 */
    cr_expect(signbit(mq_fp8_to_f32(MQ_DTYPE_F8_E4M3, 0x80)) && mq_fp8_to_f32(MQ_DTYPE_F8_E4M3, 0x80) == 0.0f);
    int nans = 0;
    for (int b = 0; b < 256; b++) {
        float v = mq_fp8_to_f32(MQ_DTYPE_F8_E4M3, (uint8_t)b);
        cr_expect(!isinf(v), "E4M3 has no infinities (code 0x%02x)", b);
        if ((b & 0x7F) == 0x7F) {
            cr_expect(isnan(v), "0x%02x is NaN", b);
            nans++;
        } else {
            cr_expect_eq((double)v, ocp((uint8_t)b, 4, 3, 7), "code 0x%02x", b);
        }
    }
    cr_expect_eq(nans, 2);
}

Test(fp8, e5m2_table_is_the_ocp_definition)
{
    cr_expect_eq(mq_fp8_to_f32(MQ_DTYPE_F8_E5M2, 0x7B), 57344.0f);
    cr_expect_eq(mq_fp8_to_f32(MQ_DTYPE_F8_E5M2, 0x3C), 1.0f);
    cr_expect_eq(mq_fp8_to_f32(MQ_DTYPE_F8_E5M2, 0x04), 0x1p-14f);
    cr_expect_eq(mq_fp8_to_f32(MQ_DTYPE_F8_E5M2, 0x01), 0x1p-16f);
    cr_expect(isinf(mq_fp8_to_f32(MQ_DTYPE_F8_E5M2, 0x7C)) && mq_fp8_to_f32(MQ_DTYPE_F8_E5M2, 0x7C) > 0);
    cr_expect(isinf(mq_fp8_to_f32(MQ_DTYPE_F8_E5M2, 0xFC)) && mq_fp8_to_f32(MQ_DTYPE_F8_E5M2, 0xFC) < 0);
    int nans = 0;
    for (int b = 0; b < 256; b++) {
        float v = mq_fp8_to_f32(MQ_DTYPE_F8_E5M2, (uint8_t)b);
        if (((b >> 2) & 0x1F) == 0x1F) {
            if (b & 3) {
                cr_expect(isnan(v), "0x%02x is NaN", b);
                nans++;
            }
        } else {
            cr_expect_eq((double)v, ocp((uint8_t)b, 5, 2, 15), "code 0x%02x", b);
        }
    }
    cr_expect_eq(nans, 6);
}

#define R 130
#define C 260

static uint8_t code_at(int r, int c)
{
    uint8_t b = (uint8_t)(r * 7 + c * 13);
    return (b & 0x7F) == 0x7F ? 0x3F : b; /* no E4M3 NaN in the weight */
}
static float scale_at(int br, int bc) { return 0.5f + (float)(br * 3 + bc) * 0.25f; }

/* A folder with model.safetensors (x.weight E4M3 [R, C] + x.weight_scale_inv scale_dtype [2, 3]
** (or `scale_shape` 1 element), e.weight E5M2 [3, 5], n.weight F32 [4]) and config.json. */
static char *write_fp8_model(const char *scale_dtype, int scalar_scale, int bad_shape)
{
    char *d = make_temp_dir("fp8");
    size_t nscale = scalar_scale ? 1 : 6, ssz = strcmp(scale_dtype, "BF16") == 0 ? 2 : 4;
    size_t nw = (size_t)R * C, ne = 15, data_len = nw + nscale * ssz + ne + 16;
    uint8_t *data = calloc(1, data_len), *p = data;
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) *p++ = code_at(r, c);
    for (size_t i = 0; i < nscale; i++) {
        float s = scale_at((int)(i / 3), (int)(i % 3));
        if (ssz == 2) {
            uint16_t h = mq_f32_to_bf16(s);
            memcpy(p, &h, 2);
        } else {
            memcpy(p, &s, 4);
        }
        p += ssz;
    }
    for (size_t i = 0; i < ne; i++) *p++ = (uint8_t)(i * 17);
    for (int i = 0; i < 4; i++) {
        float one = 1.0f;
        memcpy(p, &one, 4), p += 4;
    }
    char hdr[1024];
    size_t o1 = nw, o2 = o1 + nscale * ssz, o3 = o2 + ne;
    snprintf(hdr, sizeof hdr,
             "{\"x.weight\":{\"dtype\":\"F8_E4M3\",\"shape\":[%d,%d],\"data_offsets\":[0,%zu]},"
             "\"x.weight_scale_inv\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%zu,%zu]},"
             "\"e.weight\":{\"dtype\":\"F8_E5M2\",\"shape\":[3,5],\"data_offsets\":[%zu,%zu]},"
             "\"n.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[%zu,%zu]}}",
             R, C, o1, scale_dtype, scalar_scale ? "[1]" : bad_shape ? "[3,2]" : "[2,3]", o1, o2, o2, o3, o3, o3 + 16);
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", d);
    cr_assert_eq(stw_write_raw(path, strlen(hdr), hdr, strlen(hdr), data, data_len), 0);
    free(data);
    snprintf(path, sizeof path, "%s/config.json", d);
    FILE *f = fopen(path, "w");
    fputs("{\"quantization_config\": {\"quant_method\": \"fp8\", \"fmt\": \"e4m3\", \"weight_block_size\": [128, 128]}}\n",
          f);
    fclose(f);
    return d;
}

static float expect_x(int r, int c, int scalar_scale, int bf16)
{
    float s = scalar_scale ? scale_at(0, 0) : scale_at(r / 128, c / 128);
    if (bf16) s = mq_bf16_to_f32(mq_f32_to_bf16(s));
    return mq_fp8_to_f32(MQ_DTYPE_F8_E4M3, code_at(r, c)) * s;
}

static void check_model(const char *scale_dtype, int scalar_scale)
{
    int bf16 = strcmp(scale_dtype, "BF16") == 0;
    char *d = write_fp8_model(scale_dtype, scalar_scale, 0);
    struct mq_model *m = NULL;
    struct mq_error err;
    cr_assert_eq(mq_model_open(d, &m, &err), MQ_OK, "%s", err.msg);
    cr_expect_eq(m->n_tensors, 3, "the scale tensor is folded into its weight");
    cr_expect_lt(mq_model_find(m, "x.weight_scale_inv"), 0);
    long x = mq_model_find(m, "x.weight"), e = mq_model_find(m, "e.weight");
    cr_assert(x >= 0 && e >= 0);
    const struct mq_tensor *t = &m->tensors[x];
    cr_assert_not_null(t->fp8);
    cr_expect_eq(t->dtype, MQ_DTYPE_F32);
    cr_expect_eq(t->fp8->stored, MQ_DTYPE_F8_E4M3);
    cr_expect_eq(t->nbytes, (uint64_t)R * C * 4);
    float *v = malloc((size_t)R * C * 4);
    cr_assert_eq(mq_model_read(m, (size_t)x, 0, v, t->nbytes, &err), MQ_OK, "%s", err.msg);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            cr_assert_eq(v[r * C + c], expect_x(r, c, scalar_scale, bf16), "x[%d][%d]", r, c);
    /* rows 127..129 (across the block edge), and a range that cuts values */
    float part[3 * C];
    cr_assert_eq(mq_model_read(m, (size_t)x, 127 * C * 4, part, sizeof part, &err), MQ_OK, "%s", err.msg);
    cr_expect_eq(memcmp(part, v + 127 * C, sizeof part), 0);
    uint8_t cut[401];
    cr_assert_eq(mq_model_read(m, (size_t)x, 1001, cut, sizeof cut, &err), MQ_OK, "%s", err.msg);
    cr_expect_eq(memcmp(cut, (uint8_t *)v + 1001, sizeof cut), 0);
    float ev[15];
    cr_assert_eq(mq_model_read(m, (size_t)e, 0, ev, sizeof ev, &err), MQ_OK, "%s", err.msg);
    for (int i = 0; i < 15; i++) {
        float want = mq_fp8_to_f32(MQ_DTYPE_F8_E5M2, (uint8_t)(i * 17));
        cr_expect(ev[i] == want || (isnan(ev[i]) && isnan(want)), "e[%d]", i);
    }
    free(v);
    mq_model_free(m);
    remove_tree(d);
    free(d);
}

Test(fp8, block_scales_dequantize_exactly) { check_model("F32", 0); }
Test(fp8, bf16_scales_and_one_scale_for_all)
{
    check_model("BF16", 0);
    check_model("F32", 1);
}

Test(fp8, a_scale_of_the_wrong_shape_is_refused)
{
    char *d = write_fp8_model("F32", 0, 1);
    struct cmd_result r = run_modelq("inspect %s", d);
    cr_expect_eq(r.code, 3);
    char want[1024];
    snprintf(want, sizeof want,
             "modelq: error: %s/model.safetensors: tensor 'x.weight_scale_inv': fp8-scale: shape must be [2, 3]: 'x.weight' "
             "is [130, 260] in blocks of 128 x 128 (quantization_config.weight_block_size)\n",
             d);
    cr_expect_str_eq(r.err, want);
    cmd_result_free(&r);
    remove_tree(d);
    free(d);
}

Test(fp8, inspect_shows_fp8_and_convert_writes_the_values)
{
    char *d = write_fp8_model("F32", 0, 0);
    struct cmd_result r = run_modelq("inspect %s", d);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cr_expect(strstr(r.out, "x.weight  F8_E4M3") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "scales x.weight_scale_inv F32 [2, 3], block 128x128") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "e.weight  F8_E5M2") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "x.weight_scale_inv  ") == NULL, "the scales are no row of their own: %s", r.out);
    cmd_result_free(&r);
    r = run_modelq("convert %s -o %s/out.gguf --type f32 --quiet", d, d);
    if (r.code == 0) { /* the values as written: f32 copies of the dequantized weight */
        char path[512];
        snprintf(path, sizeof path, "%s/out.gguf", d);
        struct mq_model *m = NULL;
        struct mq_error err;
        cr_assert_eq(mq_model_open(path, &m, &err), MQ_OK, "%s", err.msg);
        long x = mq_model_find(m, "x.weight");
        cr_assert_geq(x, 0);
        cr_expect_lt(mq_model_find(m, "x.weight_scale_inv"), 0, "no scale tensor in the output");
        float *v = malloc((size_t)R * C * 4);
        cr_assert_eq(mq_model_read(m, (size_t)x, 0, v, (size_t)R * C * 4, &err), MQ_OK, "%s", err.msg);
        for (int k = 0; k < R * C; k += 97) cr_expect_eq(v[k], expect_x(k / C, k % C, 0, 0), "x[%d]", k);
        free(v);
        mq_model_free(m);
    } else {
        cr_expect_fail("convert failed: %s", r.err);
    }
    cmd_result_free(&r);
    remove_tree(d);
    free(d);
}
