/* quant_testdata.c - seeded inputs for the quantizer tests (see quant_testdata.h). */
#include "quant_testdata.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void mq_test_rng_seed(struct mq_test_rng *r, uint64_t seed) { r->s = seed ^ 0x9e3779b97f4a7c15ull; }

/* splitmix64 */
uint64_t mq_test_rng_u64(struct mq_test_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double mq_test_rng_unit(struct mq_test_rng *r) { return (double)(mq_test_rng_u64(r) >> 11) * 0x1p-53; }

double mq_test_rng_normal(struct mq_test_rng *r)
{
    double u1 = mq_test_rng_unit(r), u2 = mq_test_rng_unit(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static const char *kind_names[MQ_TEST_ROW_KINDS] = {
    "normal", "uniform", "heavy-tailed", "zeros", "constant", "q8-ties", "q4-ties", "huge",
    "tiny", "denormal", "repeated-max", "signed-zeros", "one-spike", "sparse", "ramp", "mixed-scale",
};

const char *mq_test_row_kind_name(int kind)
{
    return kind >= 0 && kind < MQ_TEST_ROW_KINDS ? kind_names[kind] : "?";
}

void mq_test_fill_row(struct mq_test_rng *r, int kind, float *x, size_t n)
{
    switch (kind) {
    case 0: for (size_t i = 0; i < n; i++) x[i] = (float)mq_test_rng_normal(r); break;
    case 1: for (size_t i = 0; i < n; i++) x[i] = (float)(2 * mq_test_rng_unit(r) - 1); break;
    case 2:
        for (size_t i = 0; i < n; i++) {
            double v = mq_test_rng_normal(r) * 0.02;
            if (mq_test_rng_u64(r) % 61 == 0) v *= 300;
            x[i] = (float)v;
        }
        break;
    case 3: memset(x, 0, n * sizeof *x); break;
    case 4: {
        float c = (float)mq_test_rng_normal(r);
        for (size_t i = 0; i < n; i++) x[i] = c;
        break;
    }
    case 5: /* each 32-block has max 127 (d = 1) and values k + 0.5: roundf ties */
        for (size_t i = 0; i < n; i++) {
            long k = (long)(mq_test_rng_u64(r) % 253) - 126;
            x[i] = (i % 32 == 0) ? 127.0f : (float)k + ((mq_test_rng_u64(r) & 1) ? 0.5f : -0.5f);
        }
        break;
    case 6: /* each 32-block has max -8 (Q4_0 d = 1) and half-integers: + 8.5 lands on integers */
        for (size_t i = 0; i < n; i++) {
            long k = (long)(mq_test_rng_u64(r) % 15) - 7;
            x[i] = (i % 32 == 0) ? -8.0f : (float)k + 0.5f * (float)(mq_test_rng_u64(r) & 1);
        }
        break;
    case 7: for (size_t i = 0; i < n; i++) x[i] = (float)(mq_test_rng_normal(r) * 3e5); break;
    case 8: for (size_t i = 0; i < n; i++) x[i] = (float)(mq_test_rng_normal(r) * 1e-20); break;
    case 9: /* denormals and values whose inverse scales overflow to Inf */
        for (size_t i = 0; i < n; i++) {
            double v = mq_test_rng_normal(r);
            x[i] = (i / 32) % 2 ? (float)(v * 1e-39) : (float)(v * 1e-37);
        }
        break;
    case 10: /* the max |x| appears several times with both signs */
        for (size_t i = 0; i < n; i++) {
            float v = (float)mq_test_rng_normal(r);
            uint64_t k = mq_test_rng_u64(r) % 8;
            x[i] = k == 0 ? 3.0f : k == 1 ? -3.0f : v > 2.9f ? 2.9f : v < -2.9f ? -2.9f : v;
        }
        break;
    case 11: for (size_t i = 0; i < n; i++) x[i] = (mq_test_rng_u64(r) & 1) ? 0.0f : -0.0f; break;
    case 12:
        memset(x, 0, n * sizeof *x);
        for (size_t b = 0; b < n; b += 32) x[b + mq_test_rng_u64(r) % 32] = (float)mq_test_rng_normal(r) * 10;
        break;
    case 13:
        for (size_t i = 0; i < n; i++) x[i] = mq_test_rng_u64(r) % 5 == 0 ? (float)mq_test_rng_normal(r) : 0.0f;
        break;
    case 14: for (size_t i = 0; i < n; i++) x[i] = (float)i / (float)n - 0.5f; break;
    default: /* blocks of very different magnitude */
        for (size_t i = 0; i < n; i++) {
            double scale = pow(10.0, (double)((i / 32) % 9) - 4.0);
            x[i] = (float)(mq_test_rng_normal(r) * scale);
        }
        break;
    }
}

uint64_t mq_test_pick_seed(void)
{
    const char *env = getenv("MODELQ_DIFF_SEED");
    if (env && *env) return strtoull(env, NULL, 0);
    return (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
}

uint64_t mq_test_diff_seed(const char *what)
{
    const uint64_t seed = mq_test_pick_seed();
    fprintf(stderr, "%s: random rows with seed %" PRIu64 " (replay: MODELQ_DIFF_SEED=%" PRIu64 ")\n", what, seed, seed);
    return seed;
}

int mq_test_row_diffs(const char *label, const uint8_t *want, const uint8_t *got, size_t nrows, size_t row_bytes,
                      int shown)
{
    int bad = 0;
    for (size_t r = 0; r < nrows; r++) {
        const uint8_t *a = want + r * row_bytes, *b = got + r * row_bytes;
        if (memcmp(a, b, row_bytes) == 0) continue;
        if (shown + bad < 3) {
            size_t k = 0;
            while (a[k] == b[k]) k++;
            fprintf(stderr, "%s row %zu differs from ggml at byte %zu (ggml %02x, ours %02x)\n", label, r, k, a[k], b[k]);
        }
        bad++;
    }
    return bad;
}
