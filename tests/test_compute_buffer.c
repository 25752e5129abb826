/*
** test_compute_buffer.c - estimate's compute buffer against the one llama.cpp reserves.
**
** Three Llama shapes with realistic proportions (hidden 2048 / 32 heads / 8 KV heads / ffn 8192 /
** vocab 32000; hidden 1024 / 16 / 4 / 5632 / 8000; hidden 1024 / 16 / 16 / 2048 / 4000), two layers
** each (the buffer is one layer's peak, but with one layer the attention mask is freed before the
** FFN, which never happens in a real model), written as sparse checkpoints
** (tools/common/stwrite.c), converted by modelq and loaded by the pinned libllama. For contexts 512,
** 4096 and 16384, micro-batches 128 and 512, with and without flash attention (f16 cache), and a
** few other cache types, the CPU compute buffer llama.cpp reports (ggml-alloc's reservation for a
** full micro-batch) is compared with `modelq estimate --json` inference.compute_buffer on the same
** GGUF: within 10%. The formula (src/api/estimate.c) was fitted on these shapes; the measured
** deviations are printed.
*/
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "llama_need.h"
#include "run_cmd.h"
#include "stwrite.h"

#define TOL 0.10

struct shape {
    const char *tag;
    unsigned hidden, ffn, vocab, heads, kv_heads;
};

static const struct shape SHAPES[] = {
    {"cb-gqa4", 2048, 8192, 32000, 32, 8},
    {"cb-ffn", 1024, 5632, 8000, 16, 4},
    {"cb-mha", 1024, 2048, 4000, 16, 16},
};

static double estimate_compute(const char *gguf, unsigned ctx, unsigned ub, const char *k, const char *v, bool fa)
{
    struct cmd_result r = run_modelq("estimate %s --json --ctx %u --ubatch %u -ctk %s -ctv %s%s", gguf, ctx, ub, k, v,
                                     fa ? " -fa" : "");
    cr_assert_eq(r.code, 0, "%s", r.err);
    cJSON *j = cJSON_Parse(r.out);
    cr_assert_not_null(j);
    double b = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "inference"), "compute_buffer"),
                                   "bytes")->valuedouble;
    cJSON_Delete(j);
    cmd_result_free(&r);
    return b;
}

Test(compute_buffer, estimate_within_ten_percent_of_llama_cpp)
{
    struct mq_llama_cpp *lc = llama_cpp_or_skip();
    char *tmp = make_temp_dir("compute-buffer");
    static const unsigned ctxs[] = {512, 4096, 16384}, ubs[] = {128, 512};
    /* cache types: the default f16 pair everywhere, then a few others (ggml ids: f32 0, f16 1, q8_0 8) */
    static const struct {
        const char *k, *v;
        int gk, gv;
        bool fa_only;
    } kinds[] = {{"f16", "f16", 1, 1, false}, {"q8_0", "q8_0", 8, 8, true}, {"f32", "f16", 0, 1, false}};
    double worst = 0;
    int n = 0;
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++) {
        const struct shape *sh = &SHAPES[s];
        char dir[600], gguf[700], why[2048];
        snprintf(dir, sizeof dir, "%s/%s", tmp, sh->tag);
        cr_assert_eq(mkdir(dir, 0755), 0);
        const struct stw_llama spec = {2, sh->hidden, sh->ffn, sh->vocab, sh->heads, sh->kv_heads, "BF16", 1, 0};
        cr_assert_eq(stw_write_llama_sparse(dir, &spec), 0);
        snprintf(gguf, sizeof gguf, "%s/%s.gguf", tmp, sh->tag);
        struct cmd_result r = run_modelq("convert %s -o %s --no-vocab --quiet", dir, gguf); /* BF16 kept */
        cr_assert_eq(r.code, 0, "%s", r.err);
        cmd_result_free(&r);
        struct mq_llama_cpp_model *m = mq_llama_cpp_load(lc, gguf, NULL, why, sizeof why);
        cr_assert_not_null(m, "%s: %s", sh->tag, why);
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            for (int fa = 0; fa <= 1; fa++) {
                if (kinds[k].fa_only && !fa) continue;
                for (size_t c = 0; c < 3; c++)
                    for (size_t u = 0; u < 2; u++) {
                        if (k > 0 && (c != 1 || u != 1)) continue; /* other types: one setting each */
                        struct mq_llama_cpp_kv_opts o = {.n_ctx = ctxs[c], .n_seq = 1, .type_k = kinds[k].gk,
                                                         .type_v = kinds[k].gv, .flash_attn = fa, .n_ubatch = ubs[u]};
                        struct mq_llama_cpp_kv kv;
                        cr_assert_eq(mq_llama_cpp_kv(m, &o, &kv, why, sizeof why), 0, "%s: %s", sh->tag, why);
                        cr_assert_gt(kv.compute_mib, 0, "%s: no compute buffer in llama.cpp's log", sh->tag);
                        const double est = estimate_compute(gguf, ctxs[c], ubs[u], kinds[k].k, kinds[k].v, fa);
                        const double dev = est / (kv.compute_mib * 1048576.0) - 1.0;
                        cr_expect_leq(fabs(dev), TOL, "%s ctx %u ub %u K %s V %s%s: estimate %.2f MiB, llama.cpp %.2f MiB",
                                      sh->tag, ctxs[c], ubs[u], kinds[k].k, kinds[k].v, fa ? " -fa" : "",
                                      est / 1048576.0, kv.compute_mib);
                        if (fabs(dev) > fabs(worst)) worst = dev;
                        n++;
                    }
            }
        mq_llama_cpp_free(m);
    }
    fprintf(stderr, "compute buffer: estimate vs llama.cpp over %d settings, largest deviation %+.1f%%\n", n,
            100 * worst);
    remove_tree(tmp);
    free(tmp);
}
