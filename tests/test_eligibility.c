/*
** test_eligibility.c - which tensors a GGUF target quantizes (issue 18, item 14).
**
** llama-quantize (llama.cpp src/llama-quant.cpp, tensor_allows_quantization) quantizes a tensor
** of two or more dimensions whose name ends in "weight" unless the name contains "_norm.weight",
** "ffn_gate_inp.weight", ... or is "position_embd.weight" / "token_types.weight". A name that
** merely contains "norm" (normalizer.weight) is quantized. --tensor-type patterns that retype
** nothing get one warning each (a pattern matching nothing, or only tensors the target keeps);
** the conversion still succeeds, as llama-quantize ignores such patterns.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelq/convert.h"
#include "run_cmd.h"
#include "stwrite.h"
#include "tensor_role.h"

Test(eligibility, llama_quantize_name_rules)
{
    static const struct {
        const char *name;
        bool quantized;
    } cases[] = {
        {"blk.0.normalizer.weight", true},      {"blk.0.norm_proj.weight", true},
        {"blk.0.attn_norm.weight", false},      {"output_norm.weight", false},
        {"blk.3.attn_q_norm.weight", false},    {"blk.0.ffn_gate_inp.weight", false},
        {"position_embd.weight", false},        {"token_types.weight", false},
        {"blk.0.position_embd.weight", false},  {"v.blk.0.attn_rel_b.weight", false},
        {"blk.0.ssm_conv1d.weight", false},     {"blk.0.attn_q.bias", false},
        {"blk.0.ffn_up.weight", true},          {"output.weight", true},
        {"token_embd.weight", true},            {"blk.0.time_mix_w1.weight", false},
        {"v.patch_embd.weight", false},         {"my_position_embd.weight", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *why = mq_tensor_gguf_unquantized(cases[i].name);
        cr_expect_eq(why == NULL, cases[i].quantized, "%s: %s", cases[i].name, why ? why : "quantized");
    }
}

/* Every tensor [4,256] F32 with the given names, values (i % 13 - 6) / 8. */
static void write_names(const char *path, const char *const *names, size_t n)
{
    char hdr[4096];
    size_t len = 0;
    len += (size_t)snprintf(hdr + len, sizeof hdr - len, "{");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(hdr + len, sizeof hdr - len, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[4,256],"
                                "\"data_offsets\":[%zu,%zu]}", i ? "," : "", names[i], i * 4096, (i + 1) * 4096);
    snprintf(hdr + len, sizeof hdr - len, "}");
    float *v = malloc(n * 1024 * sizeof *v);
    for (size_t i = 0; i < n * 1024; i++) v[i] = (float)((int)(i % 13) - 6) / 8.0f;
    cr_assert_eq(stw_write_raw(path, strlen(hdr), hdr, strlen(hdr), v, n * 4096), 0);
    free(v);
}

struct warnings {
    char text[2048];
    int n;
};

static void collect(void *ctx, const char *msg)
{
    struct warnings *w = ctx;
    size_t len = strlen(w->text);
    snprintf(w->text + len, sizeof w->text - len, "%s\n", msg);
    w->n++;
}

static const char *out_type(const struct mq_convert_report *rep, const char *name)
{
    for (size_t i = 0; i < rep->n_tensors; i++)
        if (strcmp(rep->tensors[i].name, name) == 0) return rep->tensors[i].out_type;
    return "(missing)";
}

static const char *const names[] = {"blk.0.normalizer.weight", "blk.0.attn_norm.weight", "blk.0.ffn_gate_inp.weight",
                                    "position_embd.weight", "blk.0.ffn_up.weight"};

Test(eligibility, plan_quantizes_normalizer_keeps_norm_and_router)
{
    char *dir = make_temp_dir("elig");
    char in[512];
    snprintf(in, sizeof in, "%s/in.safetensors", dir);
    write_names(in, names, 5);
    static const char *targets[] = {"q8_0", "q4_K", "q6_K", "iq4_nl"};
    for (size_t k = 0; k < 4; k++) {
        struct mq_convert_options o;
        mq_convert_options_default(&o);
        o.input = in;
        o.dry_run = true;
        o.type = targets[k];
        struct mq_convert_report rep;
        struct mq_error err;
        cr_assert_eq(mq_convert(&o, &rep, &err), MQ_OK, "%s", err.msg);
        cr_expect_str_neq(out_type(&rep, "blk.0.normalizer.weight"), "f32", "%s: normalizer.weight quantized", targets[k]);
        cr_expect_str_eq(out_type(&rep, "blk.0.attn_norm.weight"), "f32");
        cr_expect_str_eq(out_type(&rep, "blk.0.ffn_gate_inp.weight"), "f32");
        cr_expect_str_eq(out_type(&rep, "position_embd.weight"), "f32");
        cr_expect_str_neq(out_type(&rep, "blk.0.ffn_up.weight"), "f32");
        mq_convert_report_free(&rep);
    }
    /* GGUF f16: convert_hf_to_gguf keeps "_norm.weight" in F32, not "normalizer"; the MoE router and
     * position embeddings are F32 too (prepare_tensors' always-F32 kinds), other matrices F16 */
    struct mq_convert_options o;
    mq_convert_options_default(&o);
    o.input = in;
    o.dry_run = true;
    o.type = "f16";
    struct mq_convert_report rep;
    struct mq_error err;
    cr_assert_eq(mq_convert(&o, &rep, &err), MQ_OK, "%s", err.msg);
    cr_expect_str_eq(out_type(&rep, "blk.0.normalizer.weight"), "f16");
    cr_expect_str_eq(out_type(&rep, "blk.0.attn_norm.weight"), "f32");
    cr_expect_str_eq(out_type(&rep, "blk.0.ffn_gate_inp.weight"), "f32");
    cr_expect_str_eq(out_type(&rep, "position_embd.weight"), "f32");
    cr_expect_str_eq(out_type(&rep, "blk.0.ffn_up.weight"), "f16");
    mq_convert_report_free(&rep);
    remove_tree(dir);
    free(dir);
}

Test(eligibility, tensor_type_patterns_that_retype_nothing_warn)
{
    char *dir = make_temp_dir("eligwarn");
    char in[512];
    snprintf(in, sizeof in, "%s/in.safetensors", dir);
    write_names(in, names, 5);
    struct mq_type_override ov[] = {{"attn_norm|gate_inp", "q8_0"}, {"nothing_here", "q4_0"}, {"normalizer", "q5_0"},
                                    {"ffn_", "q4_1"}};
    struct mq_convert_options o;
    mq_convert_options_default(&o);
    o.input = in;
    o.dry_run = true;
    o.type = "q8_0";
    o.overrides = ov;
    o.n_overrides = 4;
    struct warnings w = {{0}, 0};
    o.warn = collect;
    o.warn_ctx = &w;
    struct mq_convert_report rep;
    struct mq_error err;
    cr_assert_eq(mq_convert(&o, &rep, &err), MQ_OK, "%s", err.msg);
    cr_expect_eq(w.n, 2, "two warnings: %s", w.text);
    cr_expect(strstr(w.text, "--tensor-type attn_norm|gate_inp=q8_0 matches only tensors that are not quantized (2, "
                             "e.g. blk.0.attn_norm.weight: norm: F32): nothing retyped\n") != NULL,
              "%s", w.text);
    cr_expect(strstr(w.text, "--tensor-type nothing_here=q4_0 matches no tensor: nothing retyped\n") != NULL, "%s",
              w.text);
    /* "ffn_" also matches ffn_gate_inp (kept) but retypes ffn_up: no warning */
    cr_expect_str_eq(out_type(&rep, "blk.0.normalizer.weight"), "q5_0");
    cr_expect_str_eq(out_type(&rep, "blk.0.ffn_up.weight"), "q4_1");
    cr_expect_str_eq(out_type(&rep, "blk.0.ffn_gate_inp.weight"), "f32");
    mq_convert_report_free(&rep);
    /* the CLI prints them, one line each, and exits 0 */
    struct cmd_result r = run_modelq("convert %s --dry-run --quiet --type q4_K --tensor-type 'attn_norm=q8_0' "
                                     "--tensor-type zzz=q6_K",
                                     in);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cr_expect_str_eq(r.err,
                     "modelq: warning: --tensor-type attn_norm=q8_0 matches only tensors that are not quantized (1, "
                     "e.g. blk.0.attn_norm.weight: norm: F32): nothing retyped\n"
                     "modelq: warning: --tensor-type zzz=q6_K matches no tensor: nothing retyped\n");
    cmd_result_free(&r);
    remove_tree(dir);
    free(dir);
}
