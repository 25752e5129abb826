/*
** test_quant_vectors.c - published, independent vectors (../shared/docs):
**   gguf-and-ggml.md 3.12: sha256 of ggml_quantize_chunk output for the LCG input, 16 rows x 256,
**     for every ggml type modelq writes (F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q4_K,
**     Q5_K, Q6_K) plus the zero-block bytes; bitsandbytes.md 8: NF4 packing vectors V1-V3 and the
**     double quant of V3; issue 3: the INT8_ASYM worked example.
** Each codec is checked with both the reference and the fast kernel.
*/
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelq/codec.h"
#include "modelq/half.h"
#include "modelq/quant.h"
#include "sha256.h"

static float *lcg_input(void)
{
    float *x = malloc(4096 * sizeof *x);
    uint32_t s = 12345u;
    for (int i = 0; i < 4096; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(int32_t)s * (1.0f / 2147483648.0f);
        if (i % 97 == 0) x[i] *= 8.0f;
    }
    return x;
}

static void hash_codec(enum mq_codec c, const float *x, size_t n, size_t row_len, bool fast, char hex[65],
                       uint8_t **bytes_out)
{
    uint64_t nbytes = mq_codec_data_bytes(c, NULL, n);
    uint8_t *buf = malloc(nbytes);
    struct mq_qbuf out = {buf, NULL, NULL};
    struct mq_error err;
    cr_assert_eq(mq_quantize(c, NULL, x, n, row_len, &out, fast, &err), MQ_OK, "%s", err.msg);
    mq_sha256_hex(buf, nbytes, hex);
    if (bytes_out) *bytes_out = buf;
    else free(buf);
}

Test(vectors, sha256_helper_known_answers)
{
    char hex[65];
    mq_sha256_hex("abc", 3, hex);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    mq_sha256_hex("", 0, hex);
    cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    mq_sha256_hex(m, strlen(m), hex);
    cr_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

Test(vectors, lcg_input_matches_doc)
{
    float *x = lcg_input();
    uint8_t le[16384];
    for (int i = 0; i < 4096; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        for (int k = 0; k < 4; k++) le[4 * i + k] = (uint8_t)(u >> (8 * k));
    }
    char hex[65];
    mq_sha256_hex(le, sizeof le, hex);
    cr_assert_str_eq(hex, "099063153ff94474cad62143cd79b5c2335e42855a55614065942ef0c0ea8773");
    cr_assert_float_eq(x[0], 0.32644296f, 1e-8);
    cr_assert_float_eq(x[1], 0.033095695f, 1e-9);
    free(x);
}

struct ggml_vec {
    enum mq_codec c;
    const char *sha;    /* full digest, or prefix...suffix when the doc abbreviates it */
    const char *first;  /* hex of the first bytes, or NULL */
};

static const struct ggml_vec ggml_vectors[] = {
    {MQ_CODEC_F16, "d48ccc3a1f079c9e2b4d3e8afab24a38a447f212c9a5dc18ede1bf49084b65a7", "39353c284fbbd7b9"},
    {MQ_CODEC_BF16, "6e8f20c9ffdccdae8c7761fdc1ec99d886461b5a9a1aa1d11cb10af7aefae76c", "a73e083d6abf3bbf"},
    {MQ_CODEC_Q8_0, "0bf0a1c5f03c406f72212278ae57cbae64b8dcd1c9254938f3f7cd241897baae", "08202904"},
    {MQ_CODEC_Q4_0, "543947fa7c97d22838f7724ee24f6fd1b54d0ff32543c6acb2d114017d4fd17c",
     "00b025982f9e89d6100f3e1bd76c79a73d81"},
    {MQ_CODEC_Q4_1, "d76e0828afdbd54eaab511cfc43edb9a66d936d852ce1b82c73c81496bc319e5", NULL},
    {MQ_CODEC_Q5_0, "578113d72005be68d5a6a2c04b67034e7f0fca6d870045666d3e7b537825cea3", NULL},
    {MQ_CODEC_Q5_1, "013b047dcac12a8f147de4e7b969e2b11a72f8fa9b2ae4b4a970eb5799bc6939", NULL},
    {MQ_CODEC_IQ4_NL, "eeb9e30aa98cfa81376ba9b93ab95dbd316adc45ad838d38bfd6c3671f6d661a",
     "fa9f15981f9e8ae5100f3f1ce75d69b62d80"},
    {MQ_CODEC_Q6_K, "093f6f1ce579a293e967fbc6db86b93d6a71f741dad86e716a417235276406f1", NULL},
    {MQ_CODEC_Q5_K, "cbc98dbe...7b2f", NULL},
    {MQ_CODEC_Q4_K, "d0d59e07564619cc5689fb51c3a6f7cbba8ad769b9c839ada75db6c30aec4a6a", NULL},
};

Test(vectors, ggml_sha256_every_type)
{
    float *x = lcg_input();
    for (size_t v = 0; v < sizeof ggml_vectors / sizeof ggml_vectors[0]; v++) {
        const struct ggml_vec *g = &ggml_vectors[v];
        for (int fast = 0; fast < 2; fast++) {
            char hex[65];
            uint8_t *bytes;
            hash_codec(g->c, x, 4096, 256, fast, hex, &bytes);
            const char *dots = strstr(g->sha, "...");
            if (dots) {
                size_t pre = (size_t)(dots - g->sha), suf = strlen(dots + 3);
                cr_expect(strncmp(hex, g->sha, pre) == 0 && strcmp(hex + 64 - suf, dots + 3) == 0,
                          "%s (%s): sha256 %s, doc %s", mq_codec_info(g->c)->name, fast ? "fast" : "ref", hex, g->sha);
            } else {
                cr_expect_str_eq(hex, g->sha, "%s (%s)", mq_codec_info(g->c)->name, fast ? "fast" : "ref");
            }
            if (g->first) {
                char got[64] = {0};
                size_t nb = strlen(g->first) / 2;
                for (size_t i = 0; i < nb; i++) snprintf(got + 2 * i, 3, "%02x", bytes[i]);
                cr_expect_str_eq(got, g->first, "%s first bytes", mq_codec_info(g->c)->name);
            }
            free(bytes);
        }
    }
    free(x);
}

Test(vectors, ggml_zero_blocks)
{
    float zero[256] = {0};
    static const struct {
        enum mq_codec c;
        const char *hex;
    } zb[] = {
        {MQ_CODEC_Q8_0, "0000000000000000000000000000000000000000000000000000000000000000" "0000"},
        {MQ_CODEC_Q4_0, "0080" "88888888888888888888888888888888"},
        {MQ_CODEC_Q4_1, "0000000000000000000000000000000000000000"},
        {MQ_CODEC_Q5_0, "0080" "ffffffff" "00000000000000000000000000000000"},
        {MQ_CODEC_IQ4_NL, "0000" "88888888888888888888888888888888"},
    };
    for (size_t k = 0; k < sizeof zb / sizeof zb[0]; k++) {
        for (int fast = 0; fast < 2; fast++) {
            uint8_t buf[64];
            struct mq_qbuf out = {buf, NULL, NULL};
            cr_assert_eq(mq_quantize(zb[k].c, NULL, zero, 32, 32, &out, fast, NULL), MQ_OK);
            char got[130] = {0};
            for (size_t i = 0; i < strlen(zb[k].hex) / 2; i++) snprintf(got + 2 * i, 3, "%02x", buf[i]);
            cr_expect_str_eq(got, zb[k].hex, "%s zero block (%s)", mq_codec_info(zb[k].c)->name, fast ? "fast" : "ref");
        }
    }
    /* Q6_K, Q5_K and Q4_K: an all-zero super-block is all zero bytes */
    for (int fast = 0; fast < 2; fast++) {
        uint8_t buf[256];
        struct mq_qbuf out = {buf, NULL, NULL};
        memset(buf, 0xee, sizeof buf);
        cr_assert_eq(mq_quantize(MQ_CODEC_Q6_K, NULL, zero, 256, 256, &out, fast, NULL), MQ_OK);
        for (int i = 0; i < 210; i++) cr_expect_eq(buf[i], 0, "q6_K zero byte %d", i);
        memset(buf, 0xee, sizeof buf);
        cr_assert_eq(mq_quantize(MQ_CODEC_Q5_K, NULL, zero, 256, 256, &out, fast, NULL), MQ_OK);
        for (int i = 0; i < 176; i++) cr_expect_eq(buf[i], 0, "q5_K zero byte %d", i);
        memset(buf, 0xee, sizeof buf);
        cr_assert_eq(mq_quantize(MQ_CODEC_Q4_K, NULL, zero, 256, 256, &out, fast, NULL), MQ_OK);
        for (int i = 0; i < 144; i++) cr_expect_eq(buf[i], 0, "q4_K zero byte %d", i);
    }
}

/* ---- bitsandbytes.md section 8 ---- */

static void nf4_run(const float *x, size_t n, uint8_t *packed, float *absmax, bool fast)
{
    struct mq_qbuf out = {packed, absmax, NULL};
    struct mq_error err;
    cr_assert_eq(mq_quantize(MQ_CODEC_NF4, NULL, x, n, 0, &out, fast, &err), MQ_OK, "%s", err.msg);
}

Test(vectors, bnb_v1_codebook_points)
{
    float x[16];
    for (int i = 0; i < 16; i++) x[i] = 2.0f * mq_nf4_value((unsigned)i);
    static const uint8_t want[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
    for (int fast = 0; fast < 2; fast++) {
        uint8_t p[8];
        float am[1];
        nf4_run(x, 16, p, am, fast);
        cr_expect_eq(am[0], 2.0f);
        cr_expect_arr_eq(p, want, 8);
    }
    /* the code book is the exact float32 table of the doc */
    cr_expect_eq(mq_nf4_value(1), -0.6961928009986877f);
    cr_expect_eq(mq_nf4_value(8), 0.07958029955625534f);
    cr_expect_eq(mq_nf4_value(14), 0.7229568362236023f);
}

Test(vectors, bnb_v2_ties_take_lower_code)
{
    float x[16];
    x[0] = 1.0f;
    for (int i = 0; i < 14; i++) x[1 + i] = mq_nf4_threshold((unsigned)i);
    x[15] = mq_nf4_threshold(14);
    static const uint8_t want[8] = {0xf0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde};
    for (int fast = 0; fast < 2; fast++) {
        uint8_t p[8];
        float am[1];
        nf4_run(x, 15, p, am, fast); /* the doc's V2 is 15 values: 1.0 and T0..T13 */
        cr_expect_eq(am[0], 1.0f);
        /* 15 values: the last byte holds T13 (code 13) and the pad code 7 */
        cr_expect_arr_eq(p, want, 7);
        cr_expect_eq(p[7], 0xd7);
        nf4_run(x, 16, p, am, fast); /* with T14 appended: code 14 */
        cr_expect_arr_eq(p, want, 8);
    }
}

static void v3_input(float *x)
{
    for (int i = 0; i < 130; i++) x[i] = (float)(sin(0.37 * i) * (1 + i % 7));
}

Test(vectors, bnb_v3_partial_block_and_double_quant)
{
    float x[130];
    v3_input(x);
    static const uint8_t head[16] = {0x78, 0xad, 0xee, 0xe8, 0x86, 0x42, 0x10, 0x65,
                                     0x57, 0xad, 0xf9, 0xab, 0xb9, 0x52, 0x64, 0x32};
    for (int fast = 0; fast < 2; fast++) {
        uint8_t p[65];
        float am[3];
        nf4_run(x, 130, p, am, fast);
        cr_expect_eq(am[0], 6.982684135437012f);
        cr_expect_eq(am[1], 6.802158832550049f);
        cr_expect_eq(am[2], 2.2786993980407715f);
        cr_expect_arr_eq(p, head, 16);
        cr_expect_eq(p[63], 0x87);
        cr_expect_eq(p[64], 0x40);
        uint8_t q[3];
        float nested[1], off;
        mq_bnb_double_quant(am, 3, q, nested, &off);
        cr_expect_eq(off, 5.354514122009277f);
        cr_expect_eq(nested[0], 3.075814723968506f);
        cr_expect_eq(q[0], 221);
        cr_expect_eq(q[1], 217);
        cr_expect_eq(q[2], 0);
        float back[3];
        mq_bnb_double_dequant(q, nested, off, 3, back);
        cr_expect_float_eq(back[0], 6.9813318f, 1e-6);
        cr_expect_float_eq(back[1], 6.8083172f, 1e-6);
        cr_expect_float_eq(back[2], 2.3003263f, 1e-6);
    }
}

Test(vectors, bnb_dynamic_map_properties)
{
    float m[256];
    mq_bnb_dynamic_map(m);
    cr_expect_eq(m[127], 0.0f);
    cr_expect_eq(m[255], 1.0f);
    cr_expect_eq(m[0], -0.992968738079071f);
    for (int k = 0; k < 127; k++) cr_expect_eq(m[k], -m[254 - k]);
    for (int k = 0; k < 255; k++) cr_expect_lt(m[k], m[k + 1], "map sorted at %d", k);
    cr_expect_eq(m[128], 5.5000004e-07f);
}

/* issue 3: x = linspace(-1, 1, 100), one block */
Test(vectors, int8_asym_seed_worked_example)
{
    float x[100];
    for (int i = 0; i < 100; i++) x[i] = (float)(-1.0 + 2.0 * i / 99.0);
    struct mq_codec_params p = {.block_elems = 100};
    int8_t q[100], zp[1];
    float sc[1];
    struct mq_qbuf out = {(uint8_t *)q, sc, zp};
    for (int fast = 0; fast < 2; fast++) {
        cr_assert_eq(mq_quantize(MQ_CODEC_INT8_ASYM, &p, x, 100, 0, &out, fast, NULL), MQ_OK);
        static const int8_t want[5] = {-128, -125, -122, -120, -117};
        cr_expect_arr_eq(q, want, 5);
        cr_expect_eq(q[99], 127);
        cr_expect_eq(zp[0], 0);
        cr_expect_eq(sc[0], (float)(2.0 / 255.0));
    }
}
