/*
** bench_quant - single-threaded quantizer throughput, f32 input already in memory.
**
** Usage: bench_quant [MiB of input, default 64] [seconds per measurement, default 0.5] [codecs]
** codecs: a comma-separated list of codec names (default: all), e.g. iq4_nl,iq4_xs,q2_K.
** Prints, per codec: reference GB/s, fast GB/s (GB = 1e9 bytes of f32 input), their ratio,
** bits per weight of the output (data + side data), the GB/s with importance weights
** (mq_quantize_weighted, whose kernels pick the fast path themselves; "-" for a codec that does
** not take them), and an xxh64 of the fast output so that builds with different compilers can be
** compared for identical bytes. Each figure is the best of several timed runs over the same
** buffer, timed in the thread's CPU time. Fast kernels use: mq_quant_simd_name().
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "modelq/codec.h"
#include "modelq/imatrix.h"
#include "modelq/quant.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: a loaded (shared) machine does not skew it */
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* qw != NULL: mq_quantize_weighted with the row_len importance weights qw (fast ignored) */
static double measure(enum mq_codec c, const float *x, size_t n, size_t row, const struct mq_qbuf *out, bool fast,
                      const float *qw, double budget)
{
    double best = 1e30, start = now();
    int runs = 0;
    do {
        double t0 = now();
        struct mq_error err;
        enum mq_status st = qw ? mq_quantize_weighted(c, x, n, row, qw, out->data, &err)
                               : mq_quantize(c, NULL, x, n, row, out, fast, &err);
        if (st != MQ_OK) {
            fprintf(stderr, "bench_quant: %s\n", err.msg);
            exit(1);
        }
        double t = now() - t0;
        if (t < best) best = t;
        runs++;
    } while (now() - start < budget || runs < 2);
    return (double)n * 4 / best / 1e9;
}

int main(int argc, char **argv)
{
    double mib = argc > 1 ? atof(argv[1]) : 64;
    double budget = argc > 2 ? atof(argv[2]) : 0.5;
    const char *only = argc > 3 ? argv[3] : NULL;
    const size_t row = 4096;
    size_t n = (size_t)(mib * 1048576 / 4) / row * row;
    if (n == 0) n = row;
    float *x = malloc(n * sizeof *x);
    if (!x) return 1;
    uint64_t s = 42;
    for (size_t i = 0; i < n; i += 2) { /* N(0,1) by Box-Muller from a 64-bit LCG */
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double u1 = ((double)(s >> 11) + 1) * 0x1p-53;
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double u2 = (double)(s >> 11) * 0x1p-53;
        double r = sqrt(-2 * log(u1));
        x[i] = (float)(r * cos(6.283185307179586 * u2));
        if (i + 1 < n) x[i + 1] = (float)(r * sin(6.283185307179586 * u2));
    }
    printf("bench_quant: %zu f32 values (%.1f MiB), rows of %zu, single thread, fast kernels: %s\n", n,
           (double)n * 4 / 1048576, row, mq_quant_simd_name());
    /* importance weights: positive, spread over two orders of magnitude, per column */
    float *qw = malloc(row * sizeof *qw);
    if (!qw) return 1;
    for (size_t i = 0; i < row; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        qw[i] = (float)exp(4.6 * (double)(s >> 11) * 0x1p-53 - 2.3);
    }
    printf("%-10s %10s %10s %7s %8s %10s  %s\n", "codec", "ref GB/s", "fast GB/s", "ratio", "bits/w", "imat GB/s",
           "xxh64(fast output)");
    for (int ci = 0; ci < MQ_CODEC_COUNT; ci++) {
        enum mq_codec c = (enum mq_codec)ci;
        if (c == MQ_CODEC_F32) continue;
        if (only) { /* whole names in the comma-separated list */
            const char *name = mq_codec_info(c)->name, *p = only;
            size_t len = strlen(name);
            bool hit = false;
            while (!hit && (p = strstr(p, name)) != NULL) {
                hit = (p == only || p[-1] == ',') && (p[len] == ',' || p[len] == 0);
                p += len;
            }
            if (!hit) continue;
        }
        size_t nb = (size_t)mq_codec_data_bytes(c, NULL, n), ns = (size_t)mq_codec_side_count(c, NULL, n, row);
        struct mq_qbuf out = {malloc(nb), malloc((ns + 1) * sizeof(float)), malloc(ns + 1)};
        /* slow reference kernels get a smaller slice so a run stays short */
        size_t nref = n;
        if (c == MQ_CODEC_IQ4_NL || c == MQ_CODEC_Q4_K || c == MQ_CODEC_Q5_K || c == MQ_CODEC_Q6_K ||
            c == MQ_CODEC_IQ4_XS || c == MQ_CODEC_Q2_K)
            nref = n / 16 / row * row;
        if (nref == 0) nref = row;
        double ref = measure(c, x, nref, row, &out, false, NULL, budget);
        double imat = mq_codec_takes_imatrix(c) ? measure(c, x, n, row, &out, true, qw, budget) : -1;
        double fast = measure(c, x, n, row, &out, true, NULL, budget);
        uint64_t total;
        struct mq_codec_params p = {0};
        mq_codec_tensor_bytes(c, &p, n, row, &total, NULL);
        char imat_s[32] = "-";
        if (imat >= 0) snprintf(imat_s, sizeof imat_s, "%.3f", imat);
        printf("%-10s %10.3f %10.3f %7.2f %8.3f %10s  %016llx\n", mq_codec_info(c)->name, ref, fast, fast / ref,
               (double)total * 8 / (double)n, imat_s, (unsigned long long)XXH64(out.data, nb, 0));
        free(out.data);
        free(out.scales);
        free(out.zeros);
    }
    free(qw);
    free(x);
    return 0;
}
