/*
** test_lowbit_targets.c - modelq's low-bit GGUF targets equal llama.cpp's own llama-quantize,
** tensor for tensor (ggml type, shape and bytes), on several model shapes.
**
** For each checkpoint modelq writes the float GGUF (f32, or f16 for an F16 checkpoint: exact
** either way) that llama_model_quantize (tests/helpers/llama_quantize.h: the pinned libllama,
** in-process) quantizes to the file type; modelq converts the checkpoint directly to the same
** target. Both files are read with ggml's GGUF reader (data hashed) and must hold the same
** tensors with the same type, dims and bytes, and the same general.file_type.
**
** Shapes (the rules depend on the layer count, GQA ratio, experts and row lengths):
**   tiny-llama     2 layers, GQA 2, hidden 256 (testdata/tiny-llama)
**   mixtral        2 layers, 8 experts (mkfamily mixtral): the 8-expert attention rules
**   gqa16          16 layers, GQA 4, ffn 384 (ffn_down rows of 384: Q2_K/Q3_K/IQ4_XS fallbacks),
**                  untied, n_layer/8 and n_layer/16 boundaries
**   llama70b       80 layers, GQA 8 (llama.cpp's LLM_TYPE_70B, whatever the width), tied
** q2_K_S: both refuse without an importance matrix.
*/
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml_ref.h"
#include "gguf_dump.h"
#include "llama_need.h"
#include "llama_quantize.h"
#include "quantize_compare.h"
#include "run_cmd.h"
#include "modelq/half.h"
#include "stwrite.h"

static const struct mq_ggml *G; /* set by llama_quantize_or_skip() at the start of each test */
static char why[4096];
static char *tmp;

static void setup(void) { tmp = make_temp_dir("lowbit-targets"); }
static void teardown(void)
{
    if (tmp) remove_tree(tmp);
    free(tmp);
}

/* F16 values from a hash of (tensor name, index): roughly N(0, 0.02) with a few outliers. */
static void fill_f16(void *user, const char *name, uint64_t n_elems, uint64_t first, uint64_t n, void *out)
{
    (void)user, (void)n_elems;
    uint64_t h = 1469598103934665603ull;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    bool norm = strstr(name, "norm") != NULL;
    uint8_t *o = out;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t z = h + (first + i) * 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        /* sum of 4 uniforms ~ normal */
        double s = 0;
        for (int k = 0; k < 4; k++) s += (double)((z >> (16 * k)) & 0xffff) / 65536.0;
        double v = norm ? 1.0 + (s - 2.0) * 0.1 : (s - 2.0) * 0.035;
        if ((z & 0x3ff) == 7) v *= 12; /* outliers */
        uint16_t hb = mq_f32_to_f16((float)v);
        o[2 * i] = (uint8_t)hb;
        o[2 * i + 1] = (uint8_t)(hb >> 8);
    }
}

static void write_dense(const char *dir, const struct stw_llama *spec)
{
    run_shell("mkdir -p '%s' && cp testdata/tiny-llama/tokenizer.json testdata/tiny-llama/tokenizer_config.json '%s'/",
              dir, dir);
    cr_assert_eq(stw_write_llama_dense(dir, spec, fill_f16, NULL), 0, "writing %s", dir);
}

struct target {
    const char *type; /* modelq --type */
    int ftype;        /* llama_ftype */
};
static const struct target targets[] = {
    {"q2_K", 10}, {"q3_K_S", 11}, {"q3_K_M", 12}, {"q3_K_L", 13}, {"iq4_xs", 30},
    /* the older types' mixtures against the same oracle */
    {"q4_K_M", 15}, {"q4_K_S", 14}, {"q5_K_M", 17}, {"q5_K_S", 16}, {"q6_K", 18}, {"iq4_nl", 25},
    {"q4_0", 2}, {"q4_1", 3}, {"q5_0", 8}, {"q5_1", 9}, {"q8_0", 7},
};

/* Compares modelq's file with llama-quantize's; returns the number of differing tensors. */
/* Every target on one checkpoint folder; `flt` is the float type of the intermediate GGUF. */
static void check_model(const char *model, const char *src, const char *flt)
{
    char base[1024], ours[1024], ref[1024];
    snprintf(base, sizeof base, "%s/%s-%s.gguf", tmp, model, flt);
    struct cmd_result r = run_modelq("convert '%s' -o '%s' --type %s", src, base, flt);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    int bad = 0;
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        snprintf(ours, sizeof ours, "%s/%s-%s.gguf", tmp, model, targets[i].type);
        snprintf(ref, sizeof ref, "%s/%s-%s-ref.gguf", tmp, model, targets[i].type);
        r = run_modelq("convert '%s' -o '%s' --type %s", src, ours, targets[i].type);
        cr_assert_eq(r.code, 0, "%s %s: %s", model, targets[i].type, r.err);
        cmd_result_free(&r);
        cr_assert_eq(mq_llama_quantize_run(base, ref, targets[i].ftype, 2, why, sizeof why), 0, "%s", why);
        char label[128];
        snprintf(label, sizeof label, "lowbit_targets: %s %s", model, targets[i].type);
        bad += quantize_compare_files(G, label, ours, ref, false, NULL);
        remove(ours);
        remove(ref);
    }
    /* Q2_K_S without an importance matrix: llama-quantize refuses, and so does modelq */
    snprintf(ours, sizeof ours, "%s/%s-q2_K_S.gguf", tmp, model);
    snprintf(ref, sizeof ref, "%s/%s-q2_K_S-ref.gguf", tmp, model);
    cr_expect_neq(mq_llama_quantize_run(base, ref, 21, 2, why, sizeof why), 0, "llama-quantize wrote Q2_K_S");
    cr_expect(strstr(why, "requires an im"), "llama-quantize's reason: %s", why);
    r = run_modelq("convert '%s' -o '%s' --type q2_K_S", src, ours);
    cr_expect_eq(r.code, 2, "q2_K_S exit %d: %s", r.code, r.err);
    cr_expect(strstr(r.err, "importance matrix") != NULL, "%s", r.err);
    cr_expect(!file_exists(ours), "no output file on refusal");
    cmd_result_free(&r);
    remove(base);
    cr_expect_eq(bad, 0, "%s: %d tensors differ from llama-quantize", model, bad);
}

TestSuite(lowbit_targets, .init = setup, .fini = teardown, .timeout = 900);

Test(lowbit_targets, tiny_llama) { G = llama_quantize_or_skip(); check_model("tiny-llama", "testdata/tiny-llama", "f32"); }

Test(lowbit_targets, mixtral_8_experts)
{
    G = llama_quantize_or_skip();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/mixtral", tmp);
    run_shell("mkdir -p '%s' && '%s/mkfamily' mixtral '%s' > '%s.log' 2>&1 || { cat '%s.log' >&2; exit 1; }", dir,
              getenv("MODELQ_BUILD_DIR"), dir, dir, dir);
    check_model("mixtral", dir, "f32");
}

Test(lowbit_targets, gqa4_16_layers_fallback_rows)
{
    G = llama_quantize_or_skip();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/gqa16", tmp);
    struct stw_llama s = {.layers = 16, .hidden = 256, .ffn = 384, .vocab = 384, .heads = 8, .kv_heads = 2,
                          .dtype = "F16", .shards = 1, .tied = 0};
    write_dense(dir, &s);
    check_model("gqa16", dir, "f16");
}

Test(lowbit_targets, llama70b_shape_80_layers)
{
    G = llama_quantize_or_skip();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/l70b", tmp);
    struct stw_llama s = {.layers = 80, .hidden = 256, .ffn = 256, .vocab = 384, .heads = 8, .kv_heads = 1,
                          .dtype = "F16", .shards = 1, .tied = 1};
    write_dense(dir, &s);
    check_model("llama70b", dir, "f16");
}

/* Phi-3: a fused attn_qkv (llama-quantize's attn_qkv rules) and fused gate_up. */
Test(lowbit_targets, phi3_fused_qkv)
{
    G = llama_quantize_or_skip();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/phi3", tmp);
    run_shell("mkdir -p '%s' && '%s/mkfamily' phi3 '%s' > '%s.log' 2>&1 || { cat '%s.log' >&2; exit 1; }", dir,
              getenv("MODELQ_BUILD_DIR"), dir, dir, dir);
    check_model("phi3", dir, "f32");
}
