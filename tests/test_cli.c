/*
** test_cli.c - the modelq binary end to end: output, JSON documents and exit codes
** (0 ok, 2 usage, 3 bad input data, 4 I/O), one-line errors on stderr naming the file.
*/
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelq/target.h"
#include "run_cmd.h"

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += (*s == '\n');
    return n;
}

Test(cli, inspect_lists_every_tensor)
{
    struct cmd_result r = run_modelq("inspect testdata/tiny-llama");
    cr_assert_eq(r.code, 0, "stderr: %s", r.err);
    cr_expect(strstr(r.out, "model.layers.1.self_attn.k_proj.weight") != NULL);
    cr_expect(strstr(r.out, "totals by dtype") != NULL);
    cr_expect(strstr(r.out, "format = pt") != NULL);
    cmd_result_free(&r);
}

Test(cli, inspect_json_is_one_document_with_schema_version)
{
    struct cmd_result r = run_modelq("inspect --json testdata/tiny-llama/sharded");
    cr_assert_eq(r.code, 0, "stderr: %s", r.err);
    cJSON *doc = cJSON_Parse(r.out);
    cr_assert_not_null(doc, "not JSON: %.200s", r.out);
    cr_expect_eq(cJSON_GetObjectItem(doc, "schema_version")->valuedouble, 1);
    cJSON *tensors = cJSON_GetObjectItem(doc, "tensors");
    cr_assert(cJSON_IsArray(tensors));
    cr_expect_eq(cJSON_GetArraySize(tensors), 21);
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "files")), 3);
    cJSON *t0 = cJSON_GetArrayItem(tensors, 0);
    cr_expect(cJSON_IsString(cJSON_GetObjectItem(t0, "shard")));
    cJSON_Delete(doc);
    cmd_result_free(&r);
}

Test(cli, estimate_prints_the_table_and_json)
{
    struct cmd_result r = run_modelq("estimate testdata/tiny-llama --ctx 2048");
    cr_assert_eq(r.code, 0, "stderr: %s", r.err);
    const char *rows[] = {"FP32", "FP16 / BF16", "GGUF Q8_0", "bnb LLM.int8", "bnb NF4 (block 64)", "bnb NF4 + double quant",
                          "GGUF Q4_0", "GGUF IQ4_NL", "GGUF Q4_K_M", "GGUF Q3_K_M", "GGUF Q2_K", "GGUF IQ4_XS",
                          "KV cache", "QLoRA"};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        cr_expect(strstr(r.out, rows[i]) != NULL, "missing '%s'", rows[i]);
    cmd_result_free(&r);
    r = run_modelq("estimate --json --batch 2 testdata/tiny-llama");
    cr_assert_eq(r.code, 0);
    cJSON *doc = cJSON_Parse(r.out);
    cr_assert_not_null(doc);
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "targets")), MQ_ESTIMATE_ROWS);
    cJSON *inf = cJSON_GetObjectItem(doc, "inference");
    cr_expect_eq(cJSON_GetObjectItem(inf, "batch")->valuedouble, 2);
    cr_expect_eq(cJSON_GetObjectItem(inf, "ctx")->valuedouble, 4096);
    cJSON_Delete(doc);
    cmd_result_free(&r);
}

Test(cli, bad_input_is_exit_3_with_one_line_naming_the_file)
{
    struct cmd_result r = run_modelq("inspect testdata/safetensors/bad/span-size.safetensors");
    cr_expect_eq(r.code, 3);
    cr_expect_eq(count_lines(r.err), 1, "stderr: %s", r.err);
    cr_expect(strstr(r.err, "span-size.safetensors") && strstr(r.err, "tensor 'w'"), "%s", r.err);
    cr_expect_str_eq(r.out, "");
    cmd_result_free(&r);
    r = run_modelq("estimate testdata/pickle-only");
    cr_expect_eq(r.code, 3);
    cr_expect(strstr(r.err, "pickle") != NULL);
    cmd_result_free(&r);
}

Test(cli, usage_and_io_errors_have_their_codes)
{
    struct cmd_result r = run_modelq("inspect");
    cr_expect_eq(r.code, 2);
    cmd_result_free(&r);
    r = run_modelq("estimate --ctx -5 testdata/tiny-llama");
    cr_expect_eq(r.code, 2);
    cmd_result_free(&r);
    r = run_modelq("frobnicate");
    cr_expect_eq(r.code, 2);
    cmd_result_free(&r);
    r = run_modelq("inspect testdata/does-not-exist");
    cr_expect_eq(r.code, 4);
    cr_expect(strstr(r.err, "does-not-exist") != NULL);
    cmd_result_free(&r);
    r = run_modelq("estimate --help");
    cr_expect_eq(r.code, 0);
    cr_expect(strstr(r.out, "--ctx N") && strstr(r.out, "default 4096"));
    cmd_result_free(&r);
}
