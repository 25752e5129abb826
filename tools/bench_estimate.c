/*
** bench_estimate - times `estimate` (open + plan every target) on a sparse Llama-70B-shaped
** checkpoint of 15 shards (80 layers, hidden 8192, ffn 28672, vocab 128256, GQA 64/8, BF16),
** and reports the bytes read; then the same with placement on two 24 GiB GPUs and --fit (the
** largest -ngl and context per target). Not a test: run it by hand, `build/bench_estimate [REPEATS]`.
*/
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "modelq/estimate.h"
#include "stwrite.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rchar(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    uint64_t v = 0;
    char line[128];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "rchar: %" SCNu64, &v) == 1) break;
    if (f) fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    int repeats = argc > 1 ? atoi(argv[1]) : 20;
    if (repeats < 1) repeats = 1;
    char dir[] = "/tmp/modelq-bench-70b-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    struct stw_llama spec = {80, 8192, 28672, 128256, 64, 8, "BF16", 15, 0};
    if (stw_write_llama_sparse(dir, &spec) != 0) {
        fprintf(stderr, "bench_estimate: cannot write the sparse checkpoint in %s\n", dir);
        return 1;
    }
    for (int placed = 0; placed <= 1; placed++) {
    double best = 1e9, total = 0;
    uint64_t read_bytes = 0, params = 0, nf4dq = 0;
    for (int i = 0; i < repeats; i++) {
        uint64_t r0 = rchar();
        double t0 = now();
        struct mq_model *m;
        struct mq_error err;
        mq_error_clear(&err);
        if (mq_model_open(dir, &m, &err) != MQ_OK) {
            fprintf(stderr, "bench_estimate: %s\n", err.msg);
            return 1;
        }
        struct mq_estimate_options opt;
        mq_estimate_options_default(&opt);
        if (placed) {
            opt.place = opt.fit = true;
            opt.n_gpus = 2;
            opt.gpu_bytes[0] = opt.gpu_bytes[1] = 24ull << 30;
        }
        struct mq_estimate e;
        if (mq_estimate_model(m, &opt, &e, &err) != MQ_OK) {
            fprintf(stderr, "bench_estimate: %s\n", err.msg);
            return 1;
        }
        double dt = now() - t0;
        read_bytes = rchar() - r0;
        params = e.params;
        nf4dq = mq_estimate_row_of(&e, MQ_TARGET_NF4_DQ)->bytes;
        mq_model_free(m);
        if (dt < best) best = dt;
        total += dt;
    }
    printf("estimate%s on a sparse Llama-70B-shaped checkpoint (15 shards, %" PRIu64 " parameters)\n",
           placed ? " --gpu 24GiB,24GiB --fit" : "", params);
    printf("  best %.2f ms, mean %.2f ms over %d runs; %" PRIu64 " bytes read per run; NF4+DQ %.2f GB\n",
           best * 1e3, total / repeats * 1e3, repeats, read_bytes, (double)nf4dq / 1e9);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "bench_estimate: could not remove %s\n", dir);
    return 0;
}
