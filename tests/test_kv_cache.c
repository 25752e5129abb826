/*
** test_kv_cache.c - estimate's KV cache equals what llama.cpp allocates: the pinned libllama
** (tests/helpers/llama_cpp.h) creates a context for modelq's GGUF of the tiny Llama and Qwen2
** models at several contexts, sequence counts and K/V types (flash attention on where a quantized V
** needs it), and reports its cells and layers; modelq's cells must be equal, and its bytes equal
** cells x layers x (ggml_row_size(type_k, n) + ggml_row_size(type_v, n)) computed by ggml itself
** (libggml-base), and llama.cpp's printed MiB. Without the libraries the test skips (CI fails).
*/
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml_ref.h"
#include "llama_cpp.h"
#include "run_cmd.h"

static struct mq_llama_cpp *lc;
static struct mq_ggml ggml_lib;
static const struct mq_ggml *gg;

static void need_libraries(void)
{
    char why[1024] = "";
    if (!lc) lc = mq_llama_cpp_open(why, sizeof why);
    if (!gg && mq_ggml_open(&ggml_lib, why, sizeof why)) gg = &ggml_lib;
    if (lc && gg) return;
    if (getenv("CI")) cr_assert_fail("llama.cpp / ggml libraries missing in CI: %s", why);
    cr_skip_test("skipped: llama.cpp / ggml libraries not installed (%s)", why);
}

struct kv_type {
    const char *name;
    int ggml;
};
static const struct kv_type TYPES[] = {{"f32", 0}, {"f16", 1}, {"bf16", 30}, {"q8_0", 8}, {"q4_0", 2},
                                       {"q4_1", 3}, {"iq4_nl", 20}, {"q5_0", 6}, {"q5_1", 7}};

/* modelq estimate's KV figures for one setting. */
static void estimate(const char *gguf, unsigned ctx, unsigned batch, const struct kv_type *k, const struct kv_type *v,
                     bool fa, double *cells, double *bytes)
{
    struct cmd_result r = run_modelq("estimate %s --json --ctx %u --batch %u -ctk %s -ctv %s%s", gguf, ctx, batch,
                                     k->name, v->name, fa ? " -fa" : "");
    cr_assert_eq(r.code, 0, "%s", r.err);
    cJSON *j = cJSON_Parse(r.out);
    cr_assert_not_null(j);
    cJSON *inf = cJSON_GetObjectItem(j, "inference");
    *cells = cJSON_GetObjectItem(inf, "kv_cells")->valuedouble;
    *bytes = cJSON_GetObjectItem(cJSON_GetObjectItem(inf, "kv_cache"), "bytes")->valuedouble;
    cJSON_Delete(j);
    cmd_result_free(&r);
}

static void check_model(const char *folder, const char *tag)
{
    need_libraries();
    char *dir = make_temp_dir(tag);
    char gguf[600];
    snprintf(gguf, sizeof gguf, "%s/m.gguf", dir);
    struct cmd_result r = run_modelq("convert %s -o %s --type f16 --quiet", folder, gguf);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    char why[2048];
    struct mq_llama_cpp_info info;
    struct mq_llama_cpp_model *m = mq_llama_cpp_load(lc, gguf, &info, why, sizeof why);
    cr_assert_not_null(m, "%s", why);
    int64_t width = (int64_t)info.n_head_kv * (info.n_embd / info.n_head); /* kv heads x head_dim */
    static const unsigned ctxs[] = {100, 1000, 4096, 5000};
    int checked = 0;
    for (size_t t = 0; t < sizeof TYPES / sizeof TYPES[0]; t++) {
        const struct kv_type *k = &TYPES[t], *v = &TYPES[(t * 5 + 1) % (sizeof TYPES / sizeof TYPES[0])];
        bool fa = v->ggml != 0 && v->ggml != 1 && v->ggml != 30; /* a quantized V needs flash attention */
        for (size_t c = 0; c < sizeof ctxs / sizeof ctxs[0]; c++) {
            for (unsigned seqs = 1; seqs <= 2; seqs++) {
                /* modelq's ctx is per sequence; llama.cpp's n_ctx is the total over n_seq sequences */
                struct mq_llama_cpp_kv_opts o = {.n_ctx = ctxs[c] * seqs, .n_seq = (int)seqs, .type_k = k->ggml,
                                                 .type_v = v->ggml, .flash_attn = fa};
                struct mq_llama_cpp_kv kv;
                cr_assert_eq(mq_llama_cpp_kv(m, &o, &kv, why, sizeof why), 0, "%s", why);
                double cells, bytes;
                estimate(gguf, ctxs[c], seqs, k, v, fa, &cells, &bytes);
                double want_cells = (double)kv.cells * seqs; /* llama.cpp prints cells per sequence stream */
                double want_bytes = want_cells * kv.layers *
                                    (double)(gg->ggml_row_size(k->ggml, width) + gg->ggml_row_size(v->ggml, width));
                cr_expect_eq(cells, want_cells, "%s K %s V %s ctx %u x %u: cells %.0f, llama.cpp %.0f", tag, k->name,
                             v->name, ctxs[c], seqs, cells, want_cells);
                cr_expect_eq(bytes, want_bytes, "%s K %s V %s ctx %u x %u: bytes %.0f, ggml says %.0f", tag, k->name,
                             v->name, ctxs[c], seqs, bytes, want_bytes);
                cr_expect(fabs(bytes / 1048576.0 - kv.mib) <= 0.005 + 1e-9, "%s: %.4f MiB vs llama.cpp's %.2f", tag,
                          bytes / 1048576.0, kv.mib);
                checked++;
            }
        }
    }
    cr_expect_eq(checked, 72);
    /* negative control: without flash attention llama.cpp refuses a quantized V, and so does modelq */
    struct mq_llama_cpp_kv_opts bad = {.n_ctx = 1000, .n_seq = 1, .type_k = 8, .type_v = 8, .flash_attn = false};
    struct mq_llama_cpp_kv kv;
    cr_expect_neq(mq_llama_cpp_kv(m, &bad, &kv, why, sizeof why), 0);
    r = run_modelq("estimate %s -ctk q8_0 -ctv q8_0", gguf);
    cr_expect_eq(r.code, 2);
    cr_expect_str_eq(r.err, "modelq: error: --cache-type-v q8_0 needs --flash-attn (llama.cpp: a quantized V cache "
                            "requires flash attention)\n");
    cmd_result_free(&r);
    mq_llama_cpp_free(m);
    remove_tree(dir);
    free(dir);
}

Test(kv_cache, llama_equals_llama_cpp) { check_model("testdata/tiny-llama", "kvllama"); }
Test(kv_cache, qwen2_equals_llama_cpp) { check_model("testdata/tiny-qwen2", "kvqwen"); }
