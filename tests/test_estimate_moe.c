/*
** test_estimate_moe.c - estimate counts a Mixture-of-Experts model's total and active parameters:
** a Mixtral-shaped safetensors folder (4 experts, 2 used per token) written here, counted by hand.
*/
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_cmd.h"
#include "stwrite.h"

struct spec {
    char name[96];
    unsigned rows, cols;
};

/* F32 zeros for every tensor, one safetensors file. */
static void write_checkpoint(const char *dir, const struct spec *t, size_t n)
{
    char header[8192];
    size_t k = 0, off = 0;
    k += (size_t)snprintf(header + k, sizeof header - k, "{");
    for (size_t i = 0; i < n; i++) {
        size_t bytes = (size_t)t[i].rows * t[i].cols * 4;
        k += (size_t)snprintf(header + k, sizeof header - k, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%u,%u],"
                              "\"data_offsets\":[%zu,%zu]}", i ? "," : "", t[i].name, t[i].rows, t[i].cols, off,
                              off + bytes);
        off += bytes;
    }
    k += (size_t)snprintf(header + k, sizeof header - k, "}");
    cr_assert_lt(k, sizeof header);
    void *zeros = calloc(1, off);
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    cr_assert_eq(stw_write_raw(path, k, header, k, zeros, off), 0);
    free(zeros);
}

static void write_config(const char *dir, const char *extra)
{
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"architectures\": [\"MixtralForCausalLM\"], \"hidden_size\": 8, \"intermediate_size\": 16, "
               "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 2, \"vocab_size\": 16, "
               "\"max_position_embeddings\": 256%s}\n", extra);
    fclose(f);
}

static cJSON *estimate_json(const char *dir)
{
    struct cmd_result r = run_modelq("estimate %s --json", dir);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cJSON *j = cJSON_Parse(r.out);
    cr_assert_not_null(j);
    cmd_result_free(&r);
    return j;
}

Test(estimate_moe, total_and_active_parameters)
{
    char *dir = make_temp_dir("moe");
    struct spec t[32];
    size_t n = 0;
    t[n++] = (struct spec){"model.embed_tokens.weight", 16, 8};
    t[n++] = (struct spec){"model.layers.0.self_attn.q_proj.weight", 8, 8};
    t[n++] = (struct spec){"model.layers.0.block_sparse_moe.gate.weight", 4, 8}; /* the router: not an expert */
    for (int e = 0; e < 4; e++) {
        snprintf(t[n].name, sizeof t[n].name, "model.layers.0.block_sparse_moe.experts.%d.w1.weight", e);
        t[n].rows = 16, t[n].cols = 8, n++;
        snprintf(t[n].name, sizeof t[n].name, "model.layers.0.block_sparse_moe.experts.%d.w2.weight", e);
        t[n].rows = 8, t[n].cols = 16, n++;
        snprintf(t[n].name, sizeof t[n].name, "model.layers.0.block_sparse_moe.experts.%d.w3.weight", e);
        t[n].rows = 16, t[n].cols = 8, n++;
    }
    t[n++] = (struct spec){"lm_head.weight", 16, 8};
    write_checkpoint(dir, t, n);
    write_config(dir, ", \"num_local_experts\": 4, \"num_experts_per_tok\": 2");
    /* by hand: 128 + 64 + 32 + 4 x 384 + 128 = 1888; experts 1536, of which 2/4 active: 352 + 768 */
    cJSON *j = estimate_json(dir);
    cr_expect_eq(cJSON_GetObjectItem(j, "parameters")->valuedouble, 1888);
    cJSON *moe = cJSON_GetObjectItem(j, "moe");
    cr_assert(cJSON_IsObject(moe));
    cr_expect_eq(cJSON_GetObjectItem(moe, "experts")->valuedouble, 4);
    cr_expect_eq(cJSON_GetObjectItem(moe, "experts_used")->valuedouble, 2);
    cr_expect_eq(cJSON_GetObjectItem(moe, "expert_parameters")->valuedouble, 1536);
    cr_expect_eq(cJSON_GetObjectItem(moe, "active_parameters")->valuedouble, 1120);
    cJSON_Delete(j);
    struct cmd_result r = run_modelq("estimate %s", dir);
    cr_expect(strstr(r.out, "MoE:         4 experts, 2 used per token: 1,536 parameters in experts; 1,120 active per "
                            "token") != NULL, "%s", r.out);
    cmd_result_free(&r);
    /* without num_experts_per_tok the active count is unknown: every parameter counts */
    write_config(dir, ", \"num_local_experts\": 4");
    j = estimate_json(dir);
    moe = cJSON_GetObjectItem(j, "moe");
    cr_expect_eq(cJSON_GetObjectItem(moe, "active_parameters")->valuedouble, 1888);
    cJSON_Delete(j);
    remove_tree(dir);
    free(dir);
}

Test(estimate_moe, a_dense_model_has_no_moe_figures)
{
    cJSON *j = estimate_json("testdata/tiny-llama");
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(j, "moe")));
    cJSON_Delete(j);
}
