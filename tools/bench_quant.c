/*
** bench_quant - single-threaded quantizer throughput, f32 input already in memory.
**
** Usage: bench_quant [MiB of input, default 64] [seconds per measurement, default 0.5] [codecs]
** codecs: a comma-separated list of codec names to run (default all).
** Prints, per codec: reference GB/s, fast GB/s (GB = 1e9 bytes of f32 input), their ratio,
** bits per weight of the output (data + side data), and an xxh64 of the fast output so that
** builds with different compilers can be compared for identical bytes. Each figure is the
** best of several timed runs over the same buffer, timed by the thread's CPU clock (the machine
** may be shared; wall time would also count time the thread waited for a core); the "wall"
** column repeats the fast figure by the wall clock. For each codec ggml quantizes differently
** with an importance matrix (mq_codec_takes_imatrix), a second line "<codec>+imx" times
** mq_quantize_weighted over the same input with a fixed positive importance vector: its GB/s in
** the fast column and, as ratio, its speed over the unweighted fast kernel's.
** Fast kernels use: mq_quant_simd_name().
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

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* What one timed run quantizes: imatrix NULL = mq_quantize, else mq_quantize_weighted. */
struct run {
    enum mq_codec c;
    const float *x;
    size_t n, row;
    const struct mq_qbuf *out;
    bool fast;
    const float *imatrix;
};

/* Best GB/s over runs by the thread CPU clock; *wall gets the best by the wall clock. */
static double measure(const struct run *r, double budget, double *wall)
{
    double best = 1e30, best_wall = 1e30, start = clock_s(CLOCK_MONOTONIC);
    int runs = 0;
    do {
        double t0 = clock_s(CLOCK_THREAD_CPUTIME_ID), w0 = clock_s(CLOCK_MONOTONIC);
        struct mq_error err;
        enum mq_status st = r->imatrix
                                ? mq_quantize_weighted(r->c, r->x, r->n, r->row, r->imatrix, r->out->data, &err)
                                : mq_quantize(r->c, NULL, r->x, r->n, r->row, r->out, r->fast, &err);
        if (st != MQ_OK) {
            fprintf(stderr, "bench_quant: %s\n", err.msg);
            exit(1);
        }
        double t = clock_s(CLOCK_THREAD_CPUTIME_ID) - t0, w = clock_s(CLOCK_MONOTONIC) - w0;
        if (t < best) best = t;
        if (w < best_wall) best_wall = w;
        runs++;
    } while (clock_s(CLOCK_MONOTONIC) - start < budget || runs < 2);
    if (wall) *wall = (double)r->n * 4 / best_wall / 1e9;
    return (double)r->n * 4 / best / 1e9;
}

/* codec name in the comma-separated list (NULL = every codec) */
static bool selected(const char *list, const char *name)
{
    if (!list) return true;
    size_t len = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == len && strncmp(p, name, l) == 0) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
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
    /* importances: positive, spread over two decades like llama-imatrix's, one per column */
    float *imx = malloc(row * sizeof *imx);
    if (!imx) return 1;
    for (size_t i = 0; i < row; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        imx[i] = (float)(0.01 + (double)(s >> 11) * 0x1p-53);
    }
    printf("bench_quant: %zu f32 values (%.1f MiB), rows of %zu, single thread, fast kernels: %s\n", n,
           (double)n * 4 / 1048576, row, mq_quant_simd_name());
    printf("GB/s by thread CPU time (wall: fast kernel by wall clock)\n");
    printf("%-10s %10s %10s %7s %8s %8s  %s\n", "codec", "ref GB/s", "fast GB/s", "ratio", "wall", "bits/w",
           "xxh64(fast output)");
    for (int ci = 0; ci < MQ_CODEC_COUNT; ci++) {
        enum mq_codec c = (enum mq_codec)ci;
        if (c == MQ_CODEC_F32 || !selected(only, mq_codec_info(c)->name)) continue;
        size_t nb = (size_t)mq_codec_data_bytes(c, NULL, n), ns = (size_t)mq_codec_side_count(c, NULL, n, row);
        struct mq_qbuf out = {malloc(nb), malloc((ns + 1) * sizeof(float)), malloc(ns + 1)};
        /* slow reference kernels get a smaller slice so a run stays short */
        size_t nref = n;
        if (c == MQ_CODEC_IQ4_NL || c == MQ_CODEC_Q4_K || c == MQ_CODEC_Q5_K || c == MQ_CODEC_Q6_K ||
            c == MQ_CODEC_IQ4_XS || c == MQ_CODEC_Q2_K)
            nref = n / 16 / row * row;
        if (nref == 0) nref = row;
        double wall;
        double ref = measure(&(struct run){c, x, nref, row, &out, false, NULL}, budget, NULL);
        double fast = measure(&(struct run){c, x, n, row, &out, true, NULL}, budget, &wall);
        uint64_t total;
        struct mq_codec_params p = {0};
        mq_codec_tensor_bytes(c, &p, n, row, &total, NULL);
        printf("%-10s %10.3f %10.3f %7.2f %8.3f %8.3f  %016llx\n", mq_codec_info(c)->name, ref, fast, fast / ref,
               wall, (double)total * 8 / (double)n, (unsigned long long)XXH64(out.data, nb, 0));
        if (mq_codec_takes_imatrix(c)) {
            char name[32];
            snprintf(name, sizeof name, "%s+imx", mq_codec_info(c)->name);
            double wgt = measure(&(struct run){c, x, n, row, &out, true, imx}, budget, &wall);
            printf("%-10s %10s %10.3f %7.2f %8.3f %8s  %016llx\n", name, "-", wgt, wgt / fast, wall, "",
                   (unsigned long long)XXH64(out.data, nb, 0));
        }
        free(out.data);
        free(out.scales);
        free(out.zeros);
    }
    free(imx);
    free(x);
    return 0;
}
