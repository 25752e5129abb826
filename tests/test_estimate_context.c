/*
** test_estimate_context.c - estimate's trained-context warning (with and without RoPE scaling, from
** config.json and from a GGUF's own keys) and LoRA rows on GGUF tensor names (the same adapters
** as the Hugging Face folder the GGUF came from).
*/
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_cmd.h"

#define MODEL "testdata/tiny-llama"

static void write_json(const char *path, cJSON *j)
{
    char *text = cJSON_Print(j);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    free(text);
}

/* A copy of the tiny model whose config.json gets `rope_scaling` (NULL: none). */
static char *variant(const char *tag, const char *rope_json)
{
    char *d = make_temp_dir(tag);
    char cmd[1024], cfg[600];
    snprintf(cmd, sizeof cmd, "cp %s/model.safetensors %s/config.json %s/tokenizer.json '%s/'", MODEL, MODEL, MODEL, d);
    cr_assert_eq(system(cmd), 0);
    snprintf(cfg, sizeof cfg, "%s/config.json", d);
    if (rope_json) {
        cJSON *j = load_json(cfg);
        cJSON_DeleteItemFromObject(j, "rope_scaling");
        cJSON_AddItemToObject(j, "rope_scaling", cJSON_Parse(rope_json));
        write_json(cfg, j);
        cJSON_Delete(j);
    }
    return d;
}

Test(estimate_context, ctx_above_the_trained_context_warns)
{
    char *d = variant("ctx0", NULL);
    struct cmd_result r = run_modelq("estimate %s --ctx 100000", d);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cr_expect_str_eq(r.err, "modelq: warning: --ctx 100000 is above the 2048 tokens the model was trained for, and "
                            "its configuration sets no RoPE scaling: quality past that is not to be expected\n");
    cmd_result_free(&r);
    /* at the trained context: no warning (negative control) */
    r = run_modelq("estimate %s --ctx 2048", d);
    cr_expect_str_eq(r.err, "");
    cmd_result_free(&r);
    /* the GGUF converted from it says the same from its own context_length */
    char out[600];
    snprintf(out, sizeof out, "%s/m.gguf", d);
    r = run_modelq("convert %s -o %s --type q8_0 --quiet", d, out);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    r = run_modelq("estimate %s --ctx 4096", out);
    cr_expect(strstr(r.err, "--ctx 4096 is above the 2048 tokens") != NULL, "%s", r.err);
    cmd_result_free(&r);
    remove_tree(d);
    free(d);
}

Test(estimate_context, rope_scaling_is_named_in_the_warning_and_the_json)
{
    char *d = variant("ctx1", "{\"rope_type\": \"linear\", \"factor\": 4.0}");
    struct cmd_result r = run_modelq("estimate %s --ctx 8192", d);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cr_expect_str_eq(r.err, "modelq: warning: --ctx 8192 is above the 2048 tokens the model was trained for; its "
                            "configuration sets RoPE scaling (linear, factor 4), which is how it is meant to go "
                            "further\n");
    cmd_result_free(&r);
    r = run_modelq("estimate %s --ctx 8192 --json", d);
    cJSON *j = cJSON_Parse(r.out);
    cr_assert_not_null(j);
    cJSON *inf = cJSON_GetObjectItem(j, "inference");
    cr_expect_eq(cJSON_GetObjectItem(inf, "trained_ctx")->valuedouble, 2048);
    cJSON *rs = cJSON_GetObjectItem(inf, "rope_scaling");
    cr_expect_str_eq(cJSON_GetObjectItem(rs, "type")->valuestring, "linear");
    cr_expect_eq(cJSON_GetObjectItem(rs, "factor")->valuedouble, 4.0);
    cJSON_Delete(j);
    cmd_result_free(&r);
    /* the GGUF keeps the scaling in its own keys */
    char out[600];
    snprintf(out, sizeof out, "%s/m.gguf", d);
    r = run_modelq("convert %s -o %s --type f16 --quiet", d, out);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    r = run_modelq("estimate %s --ctx 8192", out);
    cr_expect(strstr(r.err, "RoPE scaling (linear, factor 4)") != NULL, "%s", r.err);
    cmd_result_free(&r);
    remove_tree(d);
    free(d);
}

static double lora_params(const char *path)
{
    struct cmd_result r = run_modelq("estimate %s --json", path);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cJSON *j = cJSON_Parse(r.out);
    cr_assert_not_null(j);
    double v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "training"), "lora_parameters")->valuedouble;
    cJSON_Delete(j);
    cmd_result_free(&r);
    return v;
}

Test(estimate_context, lora_rows_recognise_gguf_names)
{
    char *d = make_temp_dir("lora");
    double hf = lora_params(MODEL);
    cr_assert_gt(hf, 0);
    const char *types[] = {"q8_0", "f16", "q4_K"};
    for (size_t i = 0; i < 3; i++) {
        char out[600];
        snprintf(out, sizeof out, "%s/%s.gguf", d, types[i]);
        struct cmd_result r = run_modelq("convert " MODEL " -o %s --type %s --quiet", out, types[i]);
        cr_assert_eq(r.code, 0, "%s", r.err);
        cmd_result_free(&r);
        cr_expect_eq(lora_params(out), hf, "%s: the same adapters as the Hugging Face folder", types[i]);
    }
    remove_tree(d);
    free(d);
}
