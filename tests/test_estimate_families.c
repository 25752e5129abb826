/*
** test_estimate_families.c - estimate and inspect on Hugging Face folders of the new families:
** Qwen3 (head_dim 8 while hidden / heads is 4), Qwen3-MoE (mlp.experts.N.*, num_experts,
** num_experts_per_tok), Gemma 2 (every other layer slides), Gemma 3 (five of six, or layer_types,
** or nested in text_config), Phi-3 (its sliding_window is not used by llama.cpp), Granite, OLMo 2
** and SmolLM3 (plain dense counts). Each checkpoint carries the family's real tensor names (header
** only: the data is a hole, estimate reads no tensor data); parameter counts and KV bytes are
** counted by hand in the comments.
*/
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_cmd.h"
#include "stwrite.h"

/* The checkpoint under construction: a safetensors header of F32 tensors. */
struct ckpt {
    char header[16384];
    size_t len;
    uint64_t off;
};

static void tensor(struct ckpt *c, unsigned rows, unsigned cols, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* rows = 0: a 1-D tensor of `cols` values */
static void tensor(struct ckpt *c, unsigned rows, unsigned cols, const char *fmt, ...)
{
    char name[160], shape[48];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (rows) snprintf(shape, sizeof shape, "[%u,%u]", rows, cols);
    else snprintf(shape, sizeof shape, "[%u]", cols);
    uint64_t bytes = (uint64_t)(rows ? rows : 1) * cols * 4;
    c->len += (size_t)snprintf(c->header + c->len, sizeof c->header - c->len,
                               "%s\"%s\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":[%llu,%llu]}",
                               c->len > 1 ? "," : "", name, shape, (unsigned long long)c->off,
                               (unsigned long long)(c->off + bytes));
    cr_assert_lt(c->len, sizeof c->header - 8);
    c->off += bytes;
}

static char *write_model(const char *tag, struct ckpt *c, const char *config)
{
    char *dir = make_temp_dir(tag);
    char path[600];
    c->len += (size_t)snprintf(c->header + c->len, sizeof c->header - c->len, "}");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    cr_assert_eq(stw_write_sparse(path, c->header, c->off), 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(config, f);
    fclose(f);
    return dir;
}

static struct ckpt *ckpt_new(void)
{
    struct ckpt *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    c->header[0] = '{';
    c->len = 1;
    return c;
}

static cJSON *estimate_json(const char *dir, const char *extra)
{
    struct cmd_result r = run_modelq("estimate %s --json%s", dir, extra);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cJSON *j = cJSON_Parse(r.out);
    cr_assert_not_null(j, "%s", r.out);
    cmd_result_free(&r);
    return j;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    cr_assert(cJSON_IsNumber(v), "no number \"%s\"", key);
    return v->valuedouble;
}

static double kv_bytes(const cJSON *j)
{
    return num(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "inference"), "kv_cache"), "bytes");
}

static const cJSON *swa_of(const cJSON *j)
{
    return cJSON_GetObjectItem(cJSON_GetObjectItem(j, "inference"), "sliding_window");
}

static void expect_inspect(const char *dir, const char *want)
{
    struct cmd_result r = run_modelq("inspect %s", dir);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_expect(strstr(r.out, want) != NULL, "inspect %s lacks '%s':\n%s", dir, want, r.out);
    cmd_result_free(&r);
}

static void done(char *dir, struct ckpt *c)
{
    remove_tree(dir);
    free(dir);
    free(c);
}

/* A Llama-style attention block (q/k/v/o) with rows = heads x head_dim. */
static void attention(struct ckpt *c, int l, unsigned hidden, unsigned q_rows, unsigned kv_rows)
{
    tensor(c, q_rows, hidden, "model.layers.%d.self_attn.q_proj.weight", l);
    tensor(c, kv_rows, hidden, "model.layers.%d.self_attn.k_proj.weight", l);
    tensor(c, kv_rows, hidden, "model.layers.%d.self_attn.v_proj.weight", l);
    tensor(c, hidden, q_rows, "model.layers.%d.self_attn.o_proj.weight", l);
}

static void mlp(struct ckpt *c, int l, unsigned hidden, unsigned inter)
{
    tensor(c, inter, hidden, "model.layers.%d.mlp.gate_proj.weight", l);
    tensor(c, inter, hidden, "model.layers.%d.mlp.up_proj.weight", l);
    tensor(c, hidden, inter, "model.layers.%d.mlp.down_proj.weight", l);
}

Test(estimate_families, qwen3_head_dim_is_not_hidden_over_heads)
{
    struct ckpt *c = ckpt_new();
    tensor(c, 16, 8, "model.embed_tokens.weight");
    for (int l = 0; l < 2; l++) {
        tensor(c, 0, 8, "model.layers.%d.input_layernorm.weight", l);
        attention(c, l, 8, 16, 8); /* 2 heads x 8, 1 kv head x 8 */
        tensor(c, 0, 8, "model.layers.%d.self_attn.q_norm.weight", l);
        tensor(c, 0, 8, "model.layers.%d.self_attn.k_norm.weight", l);
        tensor(c, 0, 8, "model.layers.%d.post_attention_layernorm.weight", l);
        mlp(c, l, 8, 16);
    }
    tensor(c, 0, 8, "model.norm.weight");
    tensor(c, 16, 8, "lm_head.weight");
    char *dir = write_model("famqwen3", c, "{\"architectures\": [\"Qwen3ForCausalLM\"], \"model_type\": \"qwen3\", "
                            "\"hidden_size\": 8, \"intermediate_size\": 16, \"num_hidden_layers\": 2, "
                            "\"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"head_dim\": 8, \"vocab_size\": 16, "
                            "\"sliding_window\": 32, \"use_sliding_window\": false, \"max_position_embeddings\": 8192}");
    /* by hand: embed 128; per layer 8 + q 128 + k 64 + v 64 + o 128 + q_norm 8 + k_norm 8 + 8 + 3 x 128 = 800;
     * norm 8, lm_head 128: 128 + 1600 + 136 = 1864. KV f16 at 4096: 2 layers x 4096 cells x (K 1 x 8 x 2 +
     * V 16) = 262144 bytes (with hidden / heads = 4 it would be half); llama.cpp does not slide Qwen3 */
    cJSON *j = estimate_json(dir, "");
    cr_expect_eq(num(j, "parameters"), 1864);
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(j, "moe")));
    cr_expect_eq(kv_bytes(j), 262144);
    cr_expect_eq(num(cJSON_GetObjectItem(j, "inference"), "kv_bytes_per_token"), 64);
    cr_expect(cJSON_IsNull(swa_of(j)));
    cJSON_Delete(j);
    expect_inspect(dir, "heads 2 (kv 1), head_dim 8, ffn 16");
    done(dir, c);
}

Test(estimate_families, qwen3_moe_total_and_active)
{
    struct ckpt *c = ckpt_new();
    tensor(c, 16, 8, "model.embed_tokens.weight");
    tensor(c, 0, 8, "model.layers.0.input_layernorm.weight");
    attention(c, 0, 8, 16, 8);
    tensor(c, 0, 8, "model.layers.0.self_attn.q_norm.weight");
    tensor(c, 0, 8, "model.layers.0.self_attn.k_norm.weight");
    tensor(c, 0, 8, "model.layers.0.post_attention_layernorm.weight");
    tensor(c, 4, 8, "model.layers.0.mlp.gate.weight"); /* the router: not an expert */
    for (int e = 0; e < 4; e++) {
        tensor(c, 4, 8, "model.layers.0.mlp.experts.%d.gate_proj.weight", e);
        tensor(c, 4, 8, "model.layers.0.mlp.experts.%d.up_proj.weight", e);
        tensor(c, 8, 4, "model.layers.0.mlp.experts.%d.down_proj.weight", e);
    }
    tensor(c, 0, 8, "model.norm.weight");
    tensor(c, 16, 8, "lm_head.weight");
    char *dir = write_model("famqwen3moe", c, "{\"architectures\": [\"Qwen3MoeForCausalLM\"], \"model_type\": "
                            "\"qwen3_moe\", \"hidden_size\": 8, \"intermediate_size\": 16, \"moe_intermediate_size\": 4, "
                            "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, "
                            "\"head_dim\": 8, \"vocab_size\": 16, \"num_experts\": 4, \"num_experts_per_tok\": 2}");
    /* by hand: 128 + (8 + 128 + 64 + 64 + 128 + 8 + 8 + 8 + router 32 + experts 4 x 96) + 8 + 128 = 1096;
     * experts 384, of which 2 of 4 per token: 1096 - 384 + 192 = 904 */
    cJSON *j = estimate_json(dir, "");
    cr_expect_eq(num(j, "parameters"), 1096);
    cJSON *moe = cJSON_GetObjectItem(j, "moe");
    cr_assert(cJSON_IsObject(moe));
    cr_expect_eq(num(moe, "experts"), 4);
    cr_expect_eq(num(moe, "experts_used"), 2);
    cr_expect_eq(num(moe, "expert_parameters"), 384);
    cr_expect_eq(num(moe, "active_parameters"), 904);
    cJSON_Delete(j);
    expect_inspect(dir, "experts 4, 2 used per token");
    done(dir, c);
}

/* Gemma's layer: pre/post norms around attention and feed-forward; q_norm/k_norm from Gemma 3. */
static void gemma_layer(struct ckpt *c, int l, unsigned q_rows, unsigned kv_rows, unsigned head_dim, bool qk_norm)
{
    tensor(c, 0, 8, "model.layers.%d.input_layernorm.weight", l);
    attention(c, l, 8, q_rows, kv_rows);
    if (qk_norm) {
        tensor(c, 0, head_dim, "model.layers.%d.self_attn.q_norm.weight", l);
        tensor(c, 0, head_dim, "model.layers.%d.self_attn.k_norm.weight", l);
    }
    tensor(c, 0, 8, "model.layers.%d.post_attention_layernorm.weight", l);
    tensor(c, 0, 8, "model.layers.%d.pre_feedforward_layernorm.weight", l);
    mlp(c, l, 8, 16);
    tensor(c, 0, 8, "model.layers.%d.post_feedforward_layernorm.weight", l);
}

Test(estimate_families, gemma2_every_other_layer_slides)
{
    struct ckpt *c = ckpt_new();
    tensor(c, 16, 8, "model.embed_tokens.weight");
    for (int l = 0; l < 3; l++) gemma_layer(c, l, 8, 4, 4, false);
    tensor(c, 0, 8, "model.norm.weight"); /* tied: no lm_head */
    char *dir = write_model("famgemma2", c, "{\"architectures\": [\"Gemma2ForCausalLM\"], \"model_type\": \"gemma2\", "
                            "\"hidden_size\": 8, \"intermediate_size\": 16, \"num_hidden_layers\": 3, "
                            "\"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"head_dim\": 4, \"vocab_size\": 16, "
                            "\"sliding_window\": 100, \"tie_word_embeddings\": true}");
    /* by hand: 128 + 3 x (8 + 64 + 32 + 32 + 64 + 8 + 8 + 3 x 128 + 8 = 608) + 8 = 1960.
     * Layers 0 and 2 slide. K+V row per layer and cell: 2 x (1 x 4 x 2) = 16 bytes.
     * ctx 4096, ubatch 512: 1 x 4096 + 2 x pad256(100 + 512) = 768 cells -> 16 x 5632 = 90112 */
    cJSON *j = estimate_json(dir, "");
    cr_expect_eq(num(j, "parameters"), 1960);
    cr_expect_eq(kv_bytes(j), 90112);
    const cJSON *sw = swa_of(j);
    cr_assert(cJSON_IsObject(sw));
    cr_expect_eq(num(sw, "window"), 100);
    cr_expect_eq(num(sw, "layers"), 2);
    cr_expect_eq(num(sw, "full_layers"), 1);
    cr_expect_eq(num(sw, "cells"), 768);
    cJSON_Delete(j);
    /* --ubatch 32: pad256(132) = 256 -> 16 x (4096 + 512) = 73728; --swa-full: 16 x 3 x 4096 = 196608;
     * --batch 2: 16 x (8192 + 2 x 1536) = 180224 */
    j = estimate_json(dir, " --ubatch 32");
    cr_expect_eq(kv_bytes(j), 73728);
    cJSON_Delete(j);
    j = estimate_json(dir, " --swa-full");
    cr_expect_eq(kv_bytes(j), 196608);
    cr_expect_eq(num(swa_of(j), "cells"), 4096);
    cJSON_Delete(j);
    j = estimate_json(dir, " --batch 2");
    cr_expect_eq(kv_bytes(j), 180224);
    cJSON_Delete(j);
    /* ctx 300: the full cache (256 x 2 = 512 cells) is smaller than window + ubatch: both 512 */
    j = estimate_json(dir, " --ctx 300");
    cr_expect_eq(kv_bytes(j), 16.0 * 3 * 512);
    cJSON_Delete(j);
    struct cmd_result r = run_modelq("estimate %s", dir);
    cr_expect(strstr(r.out, "KV cache: 1 full layers x 4,096 cells + 2 sliding-window layers (window 100) x 768 cells")
              != NULL, "%s", r.out);
    cmd_result_free(&r);
    expect_inspect(dir, "sliding window 100 tokens on 2 of 3 layers (all but the last of every 2), as llama.cpp runs it");
    done(dir, c);
}

/* A Gemma 3 text model of 7 layers, head_dim 16 (hidden / heads = 4). */
static struct ckpt *gemma3_ckpt(void)
{
    struct ckpt *c = ckpt_new();
    tensor(c, 16, 8, "model.embed_tokens.weight");
    for (int l = 0; l < 7; l++) gemma_layer(c, l, 32, 16, 16, true);
    tensor(c, 0, 8, "model.norm.weight");
    return c;
}

#define GEMMA3_TEXT "\"hidden_size\": 8, \"intermediate_size\": 16, \"num_hidden_layers\": 7, " \
                    "\"num_attention_heads\": 2, " \
                    "\"num_key_value_heads\": 1, \"head_dim\": 16, \"vocab_size\": 16, \"sliding_window\": 64"

Test(estimate_families, gemma3_five_of_six_slide)
{
    struct ckpt *c = gemma3_ckpt();
    char *dir = write_model("famgemma3", c, "{\"architectures\": [\"Gemma3ForCausalLM\"], \"model_type\": "
                            "\"gemma3_text\", " GEMMA3_TEXT ", \"sliding_window_pattern\": 6}");
    /* by hand: 128 + 7 x (8 + q 256 + k 128 + v 128 + o 256 + 16 + 16 + 8 + 8 + 3 x 128 + 8 = 1216) + 8 = 8648.
     * Layers 0-4 and 6 slide, 5 is full. Row: 2 x (1 x 16 x 2) = 64 bytes.
     * 64 x (1 x 4096 + 6 x pad256(64 + 512) = 768) = 64 x 8704 = 557056 */
    cJSON *j = estimate_json(dir, "");
    cr_expect_eq(num(j, "parameters"), 8648);
    cr_expect_eq(kv_bytes(j), 557056);
    cr_expect_eq(num(swa_of(j), "layers"), 6);
    cJSON_Delete(j);
    expect_inspect(dir, "sliding window 64 tokens on 6 of 7 layers (all but the last of every 6), as llama.cpp runs it");
    remove_tree(dir);
    free(dir);

    /* transformers v5 configs list each layer instead: 4 sliding of 7 -> 64 x (3 x 4096 + 4 x 768) = 983040 */
    c->len = (size_t)(strrchr(c->header, '}') - c->header); /* write_model closes the header again */
    dir = write_model("famgemma3lt", c, "{\"architectures\": [\"Gemma3ForCausalLM\"], \"model_type\": \"gemma3_text\", "
                      GEMMA3_TEXT ", \"layer_types\": [\"sliding_attention\", \"full_attention\", \"sliding_attention\", "
                      "\"sliding_attention\", \"full_attention\", \"sliding_attention\", \"full_attention\"]}");
    j = estimate_json(dir, "");
    cr_expect_eq(kv_bytes(j), 983040);
    cr_expect_eq(num(swa_of(j), "layers"), 4);
    cJSON_Delete(j);
    expect_inspect(dir, "sliding window 64 tokens on 4 of 7 layers (listed per layer), as llama.cpp runs it");
    remove_tree(dir);
    free(dir);

    /* sliding_window_pattern 1: no layer slides (llama.cpp's converter then writes no window) */
    c->len = (size_t)(strrchr(c->header, '}') - c->header);
    dir = write_model("famgemma3p1", c, "{\"architectures\": [\"Gemma3ForCausalLM\"], " GEMMA3_TEXT
                      ", \"sliding_window_pattern\": 1}");
    j = estimate_json(dir, "");
    cr_expect_eq(kv_bytes(j), 64.0 * 7 * 4096);
    cr_expect(cJSON_IsNull(swa_of(j)));
    cJSON_Delete(j);
    remove_tree(dir);
    free(dir);

    /* a bad layer_types is refused in one line naming the file and the key */
    c->len = (size_t)(strrchr(c->header, '}') - c->header);
    dir = write_model("famgemma3bad", c, "{\"architectures\": [\"Gemma3ForCausalLM\"], " GEMMA3_TEXT
                      ", \"layer_types\": \"sliding_attention\"}");
    struct cmd_result r = run_modelq("estimate %s", dir);
    cr_expect_eq(r.code, 3);
    char want[800];
    snprintf(want, sizeof want, "modelq: error: %s/config.json: \"layer_types\" must be a list of strings "
             "(\"sliding_attention\", \"full_attention\" per layer)\n", dir);
    cr_expect_str_eq(r.err, want);
    cmd_result_free(&r);
    done(dir, c);
}

Test(estimate_families, gemma3_multimodal_config_nests_the_text_model)
{
    struct ckpt *c = gemma3_ckpt();
    char *dir = write_model("famgemma3mm", c, "{\"architectures\": [\"Gemma3ForConditionalGeneration\"], "
                            "\"model_type\": \"gemma3\", \"text_config\": {\"model_type\": \"gemma3_text\", " GEMMA3_TEXT
                            "}}");
    /* text_config holds the text model: the default period 6, as above */
    cJSON *j = estimate_json(dir, "");
    cr_expect_eq(kv_bytes(j), 557056);
    cJSON_Delete(j);
    done(dir, c);
}

Test(estimate_families, phi3_sliding_window_is_not_used_by_llama_cpp)
{
    struct ckpt *c = ckpt_new();
    tensor(c, 16, 8, "model.embed_tokens.weight");
    tensor(c, 0, 8, "model.layers.0.input_layernorm.weight");
    tensor(c, 24, 8, "model.layers.0.self_attn.qkv_proj.weight"); /* q 8 + k 8 + v 8 rows */
    tensor(c, 8, 8, "model.layers.0.self_attn.o_proj.weight");
    tensor(c, 0, 8, "model.layers.0.post_attention_layernorm.weight");
    tensor(c, 32, 8, "model.layers.0.mlp.gate_up_proj.weight");
    tensor(c, 8, 16, "model.layers.0.mlp.down_proj.weight");
    tensor(c, 0, 8, "model.norm.weight");
    tensor(c, 16, 8, "lm_head.weight");
    char *dir = write_model("famphi3", c, "{\"architectures\": [\"Phi3ForCausalLM\"], \"model_type\": \"phi3\", "
                            "\"hidden_size\": 8, \"intermediate_size\": 16, \"num_hidden_layers\": 1, "
                            "\"num_attention_heads\": 2, \"num_key_value_heads\": 2, \"vocab_size\": 16, "
                            "\"sliding_window\": 48}");
    /* by hand: 128 + 8 + 192 + 64 + 8 + 256 + 128 + 8 + 128 = 920; KV: 1 layer x 4096 x 2 x (2 x 4 x 2) = 131072
     * (llama.cpp: "Phi SWA is currently disabled": every layer keeps the full context) */
    cJSON *j = estimate_json(dir, "");
    cr_expect_eq(num(j, "parameters"), 920);
    cr_expect_eq(kv_bytes(j), 131072);
    cr_expect(cJSON_IsNull(swa_of(j)));
    cJSON_Delete(j);
    done(dir, c);
}

/* Llama-shaped dense layers (Granite, SmolLM3): 8 + q 64 + k 32 + v 32 + o 64 + 8 + 3 x 128 = 592 each. */
static void llama_layer(struct ckpt *c, int l)
{
    tensor(c, 0, 8, "model.layers.%d.input_layernorm.weight", l);
    attention(c, l, 8, 8, 4);
    tensor(c, 0, 8, "model.layers.%d.post_attention_layernorm.weight", l);
    mlp(c, l, 8, 16);
}

#define DENSE_CONFIG "\"hidden_size\": 8, \"intermediate_size\": 16, \"num_attention_heads\": 2, " \
                     "\"num_key_value_heads\": 1, \"vocab_size\": 16, \"tie_word_embeddings\": true"

Test(estimate_families, granite_and_smollm3_dense_counts)
{
    struct ckpt *c = ckpt_new();
    tensor(c, 16, 8, "model.embed_tokens.weight");
    llama_layer(c, 0);
    tensor(c, 0, 8, "model.norm.weight");
    char *dir = write_model("famgranite", c, "{\"architectures\": [\"GraniteForCausalLM\"], \"model_type\": \"granite\", "
                            DENSE_CONFIG ", \"num_hidden_layers\": 1, \"embedding_multiplier\": 12.0, "
                            "\"residual_multiplier\": 0.22, \"attention_multiplier\": 0.0078125, \"logits_scaling\": 8.0}");
    /* by hand: 128 + 592 + 8 = 728; KV 1 x 4096 x 2 x (1 x 4 x 2) = 65536 */
    cJSON *j = estimate_json(dir, "");
    cr_expect_eq(num(j, "parameters"), 728);
    cr_expect_eq(kv_bytes(j), 65536);
    cJSON_Delete(j);
    done(dir, c);

    c = ckpt_new();
    tensor(c, 16, 8, "model.embed_tokens.weight");
    llama_layer(c, 0);
    llama_layer(c, 1);
    tensor(c, 0, 8, "model.norm.weight");
    dir = write_model("famsmollm3", c, "{\"architectures\": [\"SmolLM3ForCausalLM\"], \"model_type\": \"smollm3\", "
                      DENSE_CONFIG ", \"num_hidden_layers\": 2, \"no_rope_layers\": [1, 0], \"sliding_window\": null}");
    /* by hand: 128 + 2 x 592 + 8 = 1320; KV 2 x 4096 x 16 = 131072 */
    j = estimate_json(dir, "");
    cr_expect_eq(num(j, "parameters"), 1320);
    cr_expect_eq(kv_bytes(j), 131072);
    cr_expect(cJSON_IsNull(swa_of(j)));
    cJSON_Delete(j);
    done(dir, c);
}

Test(estimate_families, olmo2_post_norms_and_full_width_qk_norms)
{
    struct ckpt *c = ckpt_new();
    tensor(c, 16, 8, "model.embed_tokens.weight");
    attention(c, 0, 8, 8, 8);
    tensor(c, 0, 8, "model.layers.0.self_attn.q_norm.weight"); /* heads x head_dim wide */
    tensor(c, 0, 8, "model.layers.0.self_attn.k_norm.weight"); /* kv heads x head_dim wide */
    tensor(c, 0, 8, "model.layers.0.post_attention_layernorm.weight");
    mlp(c, 0, 8, 16);
    tensor(c, 0, 8, "model.layers.0.post_feedforward_layernorm.weight");
    tensor(c, 0, 8, "model.norm.weight");
    tensor(c, 16, 8, "lm_head.weight");
    char *dir = write_model("famolmo2", c, "{\"architectures\": [\"Olmo2ForCausalLM\"], \"model_type\": \"olmo2\", "
                            "\"hidden_size\": 8, \"intermediate_size\": 16, \"num_hidden_layers\": 1, "
                            "\"num_attention_heads\": 2, \"num_key_value_heads\": 2, \"vocab_size\": 16}");
    /* by hand: 128 + 4 x 64 + 8 + 8 + 8 + 3 x 128 + 8 + 8 + 128 = 936; KV 4096 x 2 x (2 x 4 x 2) = 131072 */
    cJSON *j = estimate_json(dir, "");
    cr_expect_eq(num(j, "parameters"), 936);
    cr_expect_eq(kv_bytes(j), 131072);
    cJSON_Delete(j);
    done(dir, c);
}
