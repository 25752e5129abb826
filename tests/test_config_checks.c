/*
** test_config_checks.c - config.json against the tensors before a GGUF is written (issue 18).
**
** Every case is a copy of testdata/tiny-llama (2 layers, hidden 256, 4 heads of 64, 2 KV heads,
** ffn 512, vocab 384) with one change to config.json. A bad value must stop `modelq convert`
** with exit 3 and exactly one line naming config.json and the key, write nothing (the output
** folder stays empty) and change nothing (every input file byte-identical afterwards). The
** controls (same folder, valid values) must convert, so the checks are not refusing everything.
** Where the shape relations come from: llama.cpp's loader creates token_embd {n_embd, n_vocab},
** attn_q {n_embd, n_head * head_dim}, attn_k/v {n_embd, n_head_kv * head_dim}, ffn_* with n_ff,
** and every blk.N up to block_count (formats/gguf_arch.c, shape_rules).
*/
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"
#include "modelq/meta.h"
#include "modelq/model.h"
#include "modelq/convert.h"
#include "run_cmd.h"

#define T "testdata/tiny-llama"

static const char *const files[] = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                                    "tokenizer_config.json"};
#define N_FILES (sizeof files / sizeof files[0])

struct snapshot {
    uint8_t *data[N_FILES];
    size_t len[N_FILES];
};

static void copy_file(const char *from, const char *to)
{
    size_t n;
    uint8_t *d = read_file_all(from, &n);
    cr_assert_not_null(d, "%s", from);
    FILE *f = fopen(to, "wb");
    cr_assert(f && fwrite(d, 1, n, f) == n && fclose(f) == 0, "%s", to);
    free(d);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f && fputs(text, f) >= 0 && fclose(f) == 0, "%s", path);
}

/* A temporary copy of T (without the sharded/ subfolder). */
static char *copy_model(void)
{
    char *dir = make_temp_dir("cfgcheck");
    for (size_t i = 0; i < N_FILES; i++) {
        char a[512], b[512];
        snprintf(a, sizeof a, "%s/%s", T, files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        copy_file(a, b);
    }
    return dir;
}

static void snap(const char *dir, struct snapshot *s)
{
    for (size_t i = 0; i < N_FILES; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        s->data[i] = read_file_all(p, &s->len[i]);
        cr_assert_not_null(s->data[i], "%s", p);
    }
}

/* The folder holds exactly `files`, each byte-identical to the snapshot. */
static void expect_unchanged(const char *dir, struct snapshot *s, const char *label)
{
    for (size_t i = 0; i < N_FILES; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        size_t n;
        uint8_t *d = read_file_all(p, &n);
        cr_expect(d && n == s->len[i] && memcmp(d, s->data[i], n) == 0, "%s: %s changed", label, files[i]);
        free(d);
        free(s->data[i]);
    }
    cr_expect_eq(count_entries_containing(dir, ""), (int)N_FILES + 2, "%s: files appeared in the input folder", label);
}

/*
** config.json = T's with `key` set to the JSON text `raw` (NULL: key removed), then `insert`
** (when not NULL) placed right after the opening brace. Returns the text written (caller frees).
*/
static char *write_variant(const char *dir, const char *key, const char *raw, const char *insert)
{
    cJSON *j = load_json(T "/config.json");
    if (key) {
        cJSON_DeleteItemFromObjectCaseSensitive(j, key);
        if (raw) cJSON_AddItemToObject(j, key, cJSON_CreateRaw(raw));
    }
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    cr_assert_not_null(text);
    if (insert) {
        size_t n = strlen(text), k = strlen(insert);
        char *t2 = malloc(n + k + 1);
        cr_assert_not_null(t2);
        t2[0] = '{';
        memcpy(t2 + 1, insert, k);
        memcpy(t2 + 1 + k, text + 1, n); /* with the NUL */
        free(text);
        text = t2;
    }
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_text(p, text);
    return text;
}

struct config_case {
    const char *key;    /* replaced (NULL: none) */
    const char *raw;    /* its JSON text (NULL: removed) */
    const char *insert; /* text placed after the opening brace, or NULL */
    const char *msg;    /* the message after "<folder>/config.json: "; "@" = the JSON byte offset of `at` */
    const char *at;     /* for "@": the text whose offset the strict scan reports */
};

/*
** Converts the variant to q8_0; `c->msg` NULL = must convert (exit 0), else exit 3 with exactly
** "modelq: error: <dir>/config.json: <msg>\n" on stderr, nothing in the output folder and the input
** unchanged.
*/
static void run_case(const struct config_case *c, const char *label)
{
    char *dir = copy_model(), *out = make_temp_dir("cfgcheck-out");
    char *text = write_variant(dir, c->key, c->raw, c->insert);
    struct snapshot s;
    snap(dir, &s);
    struct cmd_result r = run_modelq("convert '%s' -o '%s/x.gguf' --type q8_0", dir, out);
    if (!c->msg) {
        cr_expect_eq(r.code, 0, "%s: exit %d: %s", label, r.code, r.err);
    } else {
        char msg[1024], want[1400];
        const char *at = strstr(c->msg, "@");
        if (at) {
            const char *where = strstr(text, c->at);
            cr_assert_not_null(where, "%s", label);
            snprintf(msg, sizeof msg, "%.*s%zu%s", (int)(at - c->msg), c->msg, (size_t)(where - text), at + 1);
        } else {
            snprintf(msg, sizeof msg, "%s", c->msg);
        }
        snprintf(want, sizeof want, "modelq: error: %s/config.json: %s\n", dir, msg);
        cr_expect_eq(r.code, 3, "%s: exit %d (%s)", label, r.code, r.err);
        cr_expect_str_eq(r.err, want, "%s", label);
        cr_expect_eq(count_entries_containing(out, ""), 2, "%s: something was written to the output folder", label);
    }
    expect_unchanged(dir, &s, label);
    cmd_result_free(&r);
    free(text);
    remove_tree(dir);
    remove_tree(out);
    free(dir);
    free(out);
}

#define COUNT_RANGE "it must be an integer from 1 to 4294967295"
/* what every reader of config.json (src/config.c) refuses before the GGUF checks */
#define INT53 "it must be an integer from 0 to 2^53"
#define CTX_RANGE "it must be an integer from 1 to 2147483647"
#define F32_RANGE "it must be a number from 1.17549435e-38 to 3.40282347e+38 (a normal FLOAT32)"
#define EPS_RANGE "it must be a number from 1.17549435e-38 to 1 (a normal FLOAT32)"

/* Each hyper-parameter: range, type, and its relation to the tensor shapes. */
Test(config_checks, hyper_parameters)
{
    static const struct config_case cases[] = {
        /* layers: the count of model.layers.N */
        {"num_hidden_layers", "1000", NULL,
         "\"num_hidden_layers\" is 1000 but the tensors have 2 layers (model.layers.0 to model.layers.1)", NULL},
        {"num_hidden_layers", "1", NULL,
         "\"num_hidden_layers\" is 1 but the tensors have 2 layers (model.layers.0 to model.layers.1)", NULL},
        {"num_hidden_layers", "0", NULL, "\"num_hidden_layers\" is 0; " COUNT_RANGE, NULL},
        {"num_hidden_layers", "-1", NULL, "\"num_hidden_layers\" is -1; " INT53, NULL},
        {"num_hidden_layers", "2.5", NULL, "\"num_hidden_layers\" is 2.5; " INT53, NULL},
        {"num_hidden_layers", "\"2\"", NULL, "\"num_hidden_layers\" is a string; " INT53, NULL},
        {"num_hidden_layers", "4294967298", NULL, "\"num_hidden_layers\" is 4294967298; " COUNT_RANGE, NULL},
        {"num_hidden_layers", "1e300", NULL, "\"num_hidden_layers\" is 1e+300; " INT53, NULL},
        {"num_hidden_layers", "true", NULL, "\"num_hidden_layers\" is true; " INT53, NULL},
        {"num_hidden_layers", NULL, NULL, "missing \"num_hidden_layers\"", NULL},
        /* widths */
        {"hidden_size", "257", NULL,
         "\"hidden_size\" is 257 but tensor model.embed_tokens.weight has shape [384, 256] (dim 1 should be 257)", NULL},
        {"hidden_size", "[256]", NULL, "\"hidden_size\" is an array; " INT53, NULL},
        {"intermediate_size", "513", NULL,
         "\"intermediate_size\" is 513 but tensor model.layers.0.mlp.gate_proj.weight has shape [512, 256] (dim 0 "
         "should be 513)", NULL},
        {"vocab_size", "1000000", NULL,
         "\"vocab_size\" is 1000000 but tensor model.embed_tokens.weight has shape [384, 256] (dim 0 should be "
         "1000000)", NULL},
        {"vocab_size", "383", NULL,
         "\"vocab_size\" is 383 but tensor model.embed_tokens.weight has shape [384, 256] (dim 0 should be 383)", NULL},
        /* heads */
        {"head_dim", "0", NULL, "\"head_dim\" is 0; " COUNT_RANGE, NULL},
        {"head_dim", "1e8", NULL,
         "\"num_attention_heads\" x \"head_dim\" is 4 x 100000000 but tensor model.layers.0.self_attn.q_proj.weight "
         "has shape [256, 256] (dim 0 should be 400000000)", NULL},
        {"head_dim", "32", NULL,
         "\"num_attention_heads\" x \"head_dim\" is 4 x 32 but tensor model.layers.0.self_attn.q_proj.weight has "
         "shape [256, 256] (dim 0 should be 128)", NULL},
        {"head_dim", "63", NULL, "\"head_dim\" is 63; RoPE rotates pairs, so it must be even", NULL},
        {"num_attention_heads", "8", NULL,
         "\"num_attention_heads\" x \"head_dim\" is 8 x 64 but tensor model.layers.0.self_attn.q_proj.weight has "
         "shape [256, 256] (dim 0 should be 512)", NULL},
        {"num_attention_heads", "3", NULL, "num_attention_heads 3 is not a multiple of num_key_value_heads 2", NULL},
        {"num_key_value_heads", "4", NULL,
         "\"num_key_value_heads\" x \"head_dim\" is 4 x 64 but tensor model.layers.0.self_attn.k_proj.weight has "
         "shape [128, 256] (dim 0 should be 256)", NULL},
        {"num_key_value_heads", "0", NULL, "\"num_key_value_heads\" is 0; " COUNT_RANGE, NULL},
        /* positions */
        {"max_position_embeddings", "0", NULL, "\"max_position_embeddings\" is 0; " CTX_RANGE, NULL},
        {"max_position_embeddings", "-1", NULL, "\"max_position_embeddings\" is -1; " INT53, NULL},
        {"max_position_embeddings", "4294967296", NULL, "\"max_position_embeddings\" is 4294967296; " CTX_RANGE, NULL},
        /* floats written as FLOAT32 */
        {"rope_theta", "1e39", NULL, "\"rope_theta\" is 1e+39; " F32_RANGE, NULL},
        {"rope_theta", "-10000", NULL, "\"rope_theta\" is -10000; " F32_RANGE, NULL},
        {"rope_theta", "0", NULL, "\"rope_theta\" is 0; " F32_RANGE, NULL},
        {"rope_theta", "\"10000\"", NULL, "\"rope_theta\" is a string; " F32_RANGE, NULL},
        {"rope_theta", "1e400", NULL, "\"rope_theta\" is inf; " F32_RANGE, NULL},
        {"rms_norm_eps", "1e-50", NULL, "\"rms_norm_eps\" is 1e-50; " EPS_RANGE, NULL},
        {"rms_norm_eps", "0", NULL, "\"rms_norm_eps\" is 0; " EPS_RANGE, NULL},
        {"rms_norm_eps", "-1e-05", NULL, "\"rms_norm_eps\" is -1e-05; " EPS_RANGE, NULL},
        {"rms_norm_eps", "2", NULL, "\"rms_norm_eps\" is 2; " EPS_RANGE, NULL},
        {"rms_norm_eps", "null", NULL, "missing \"rms_norm_eps\"", NULL},
        /* NaN-like text is not JSON (Python writes it; json.loads would accept it, transformers too) */
        {"rope_theta", "NaN", NULL, "not valid JSON: unexpected character at byte @ (in \"rope_theta\")", "NaN"},
        {"rms_norm_eps", "-Infinity", NULL, "not valid JSON: bad number at byte @ (in \"rms_norm_eps\")", "Infinity"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char label[160];
        snprintf(label, sizeof label, "%s = %s", cases[i].key, cases[i].raw ? cases[i].raw : "(removed)");
        run_case(&cases[i], label);
    }
}

/* rope_scaling: every number range-checked (the float -> uint32 cast of -1 was undefined behaviour). */
Test(config_checks, rope_scaling)
{
    static const struct config_case cases[] = {
        {"rope_scaling", "{\"rope_type\": \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": -1}", NULL,
         "\"rope_scaling.original_max_position_embeddings\" is -1; " CTX_RANGE, NULL},
        {"rope_scaling", "{\"rope_type\": \"linear\", \"factor\": 2.0, \"original_max_position_embeddings\": 1e39}",
         NULL, "\"rope_scaling.original_max_position_embeddings\" is 1e+39; " CTX_RANGE, NULL},
        {"rope_scaling", "{\"rope_type\": \"linear\", \"factor\": -2}", NULL,
         "\"rope_scaling.factor\" is -2; " F32_RANGE, NULL},
        {"rope_scaling", "{\"rope_type\": \"linear\", \"factor\": 1e39}", NULL,
         "\"rope_scaling.factor\" is 1e+39; " F32_RANGE, NULL},
        {"rope_scaling", "{\"rope_type\": \"linear\", \"factor\": \"4\"}", NULL,
         "\"rope_scaling.factor\" is a string; " F32_RANGE, NULL},
        {"rope_scaling", "{\"rope_type\": \"linear\"}", NULL, "missing \"rope_scaling.factor\"", NULL},
        {"rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": \"8\"}", NULL,
         "\"rope_scaling.factor\" is a string; " F32_RANGE, NULL},
        {"rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 4, \"high_freq_factor\": 1}",
         NULL, "\"rope_scaling.high_freq_factor\" 1 must be above \"rope_scaling.low_freq_factor\" 4", NULL},
        {"rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": 8, \"original_max_position_embeddings\": 0}", NULL,
         "\"rope_scaling.original_max_position_embeddings\" is 0; " CTX_RANGE, NULL},
        {"rope_scaling", "{\"rope_type\": \"yarn\", \"factor\": 4, \"beta_fast\": \"32\"}", NULL,
         "\"rope_scaling.beta_fast\" is a string; it must be a number", NULL},
        {"rope_scaling", "\"linear\"", NULL, "\"rope_scaling\" must be an object or null", NULL},
        {"rope_scaling", "{\"factor\": 2.0}", NULL, "\"rope_scaling\" has no \"rope_type\" (or \"type\")", NULL},
        {"rope_scaling", "{\"rope_type\": 5, \"factor\": 2.0}", NULL, "\"rope_scaling.rope_type\" must be a string",
         NULL},
        /* controls: valid scaling converts */
        {"rope_scaling", "{\"rope_type\": \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": 512}", NULL,
         NULL, NULL},
        {"rope_scaling", "{\"type\": \"linear\", \"factor\": 2.0}", NULL, NULL, NULL},
        {"rope_scaling", "{}", NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], cases[i].raw);
}

/* A key twice (Python keeps the last, cJSON the first): refused at any depth, escapes decoded. */
Test(config_checks, duplicate_keys)
{
    static const struct config_case cases[] = {
        {NULL, NULL, "\"rope_theta\": 500000.0,",
         "key \"rope_theta\" appears twice (Python's json keeps the last, cJSON the first)", NULL},
        {NULL, NULL, "\"rope_th\\u0065ta\": 500000.0,",
         "key \"rope_theta\" appears twice (Python's json keeps the last, cJSON the first)", NULL},
        {NULL, NULL, "\"vocab_size\": 384,",
         "key \"vocab_size\" appears twice (Python's json keeps the last, cJSON the first)", NULL},
        {"rope_scaling", "{\"rope_type\": \"linear\", \"factor\": 2.0, \"factor\": 4.0}", NULL,
         "key \"factor\" appears twice in \"rope_scaling\" (Python's json keeps the last, cJSON the first)", NULL},
        {NULL, NULL, "\"x\": {\"a\": {\"b\": 1, \"c\": 2, \"b\": 3}},",
         "key \"b\" appears twice in \"x\" (Python's json keeps the last, cJSON the first)", NULL},
        /* controls: the same key in different objects, and keys differing only by normalization */
        {NULL, NULL, "\"x\": {\"a\": {\"a\": 1}, \"b\": {\"a\": 2}},", NULL, NULL},
        {NULL, NULL, "\"\\u00e9\": 1, \"e\\u0301\": 2,", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], cases[i].insert ? cases[i].insert
                                                                                               : cases[i].raw);
}

/* The control: T itself, and T with defaults left out, convert. */
Test(config_checks, valid_configs_convert)
{
    static const struct config_case cases[] = {
        {NULL, NULL, NULL, NULL, NULL},
        {"head_dim", NULL, NULL, NULL, NULL},
        {"num_key_value_heads", NULL, NULL, NULL, NULL}, /* = 4 heads: k_proj [128, 256] then disagrees */
        {"rope_theta", NULL, NULL, NULL, NULL},
    };
    run_case(&cases[0], "T");
    run_case(&cases[1], "no head_dim");
    run_case(&cases[3], "no rope_theta");
    const struct config_case kv = {"num_key_value_heads", NULL, NULL,
                                   "\"num_key_value_heads\" x \"head_dim\" is 4 x 64 but tensor "
                                   "model.layers.0.self_attn.k_proj.weight has shape [128, 256] (dim 0 should be 256)",
                                   NULL};
    run_case(&kv, "no num_key_value_heads (defaults to the 4 heads)");
}

/* config.json's own limits: one reader, 16 MiB and 2^19 JSON values, for convert, inspect and estimate. */
Test(config_checks, config_limits)
{
    char *dir = copy_model();
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", dir);
    /* 600 000 values in 1.2 MB: under the byte limit, over the value limit */
    size_t n = 600000;
    char *big = malloc(2 * n + 64);
    cr_assert_not_null(big);
    size_t o = (size_t)sprintf(big, "{\"x\": [");
    for (size_t i = 0; i < n; i++) o += (size_t)sprintf(big + o, i ? ",0" : "0");
    sprintf(big + o, "]}");
    write_text(p, big);
    free(big);
    static const char *const cmds[] = {"convert", "inspect", "estimate"};
    char want[700];
    snprintf(want, sizeof want,
             "modelq: error: %s: more than 524288 JSON values (the limit bounds the memory of the parsed file)\n", p);
    char *out = make_temp_dir("cfgcheck-out");
    for (size_t i = 0; i < 3; i++) {
        struct cmd_result r = run_modelq("%s '%s'%s%s%s", cmds[i], dir, i ? "" : " -o '", i ? "" : out, i ? "" : "/x.gguf'");
        cr_expect_eq(r.code, 3, "%s: exit %d", cmds[i], r.code);
        cr_expect_str_eq(r.err, want, "%s", cmds[i]);
        cmd_result_free(&r);
    }
    cr_expect_eq(count_entries_containing(out, ""), 2, "convert wrote something");
    remove_tree(out);
    free(out);
    /* one byte over 16 MiB */
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    fputs("{\"x\": \"", f);
    for (size_t i = 0; i < 16u * 1024 * 1024 - 8; i++) fputc('a', f); /* 7 + this + 2 bytes */
    fputs("\"}", f);
    cr_assert_eq(fclose(f), 0);
    snprintf(want, sizeof want, "modelq: error: %s: 16777217 bytes is over the 16777216-byte limit\n", p);
    for (size_t i = 1; i < 3; i++) {
        struct cmd_result r = run_modelq("%s '%s'", cmds[i], dir);
        cr_expect_eq(r.code, 3, "%s: exit %d", cmds[i], r.code);
        cr_expect_str_eq(r.err, want, "%s", cmds[i]);
        cmd_result_free(&r);
    }
    /* a duplicate key stops inspect too (the one reader) */
    write_text(p, "{\"architectures\": [\"LlamaForCausalLM\"], \"architectures\": [\"Qwen2ForCausalLM\"]}");
    snprintf(want, sizeof want,
             "modelq: error: %s: key \"architectures\" appears twice (Python's json keeps the last, cJSON the first)\n",
             p);
    struct cmd_result r = run_modelq("inspect '%s'", dir);
    cr_expect_eq(r.code, 3);
    cr_expect_str_eq(r.err, want);
    cmd_result_free(&r);
    remove_tree(dir);
    free(dir);
}

/* ---- architecture missing or not mapped: names unchanged and general.architecture "raw" ---- */

/* Converts the variant (extra CLI options `opt`) and returns general.architecture of the output,
** checking that the tensor names are the checkpoint's; NULL (and *code) when it failed. */
static char *convert_arch(const char *key, const char *raw, const char *opt, int *code, char **err_out)
{
    char *dir = copy_model(), *out = make_temp_dir("cfgcheck-out");
    free(write_variant(dir, key, raw, NULL));
    struct cmd_result r = run_modelq("convert '%s' -o '%s/x.gguf' --type f16 %s", dir, out, opt);
    *code = r.code;
    *err_out = strdup(r.err ? r.err : "");
    char *arch = NULL;
    if (r.code == 0) {
        char path[512];
        snprintf(path, sizeof path, "%s/x.gguf", out);
        struct mq_model *m;
        struct mq_error e;
        cr_assert_eq(mq_model_open(path, &m, &e), MQ_OK, "%s", e.msg);
        const char *a = mq_meta_get_str(&m->meta, "general.architecture");
        arch = strdup(a ? a : "(none)");
        bool raw_names = mq_model_find(m, "model.embed_tokens.weight") >= 0 && mq_model_find(m, "token_embd.weight") < 0;
        bool hparams = mq_meta_get(&m->meta, "llama.block_count") != NULL;
        if (strcmp(arch, "raw") == 0) {
            cr_expect(raw_names, "%s = %s: raw file with GGUF names", key, raw);
            cr_expect(!hparams, "%s = %s: raw file with llama hyper-parameters", key, raw);
        } else {
            cr_expect(!raw_names && hparams, "%s = %s: %s file with raw names", key, raw, arch);
        }
        mq_model_free(m);
    }
    cmd_result_free(&r);
    remove_tree(dir);
    remove_tree(out);
    free(dir);
    free(out);
    return arch;
}

Test(config_checks, architecture)
{
    static const struct {
        const char *raw;  /* "architectures" (NULL: removed) */
        const char *opt;
        const char *arch; /* general.architecture, NULL = refused */
        const char *msg;  /* refusal, after "<folder>/config.json: " */
    } cases[] = {
        {"[\"LlamaForCausalLM\"]", "", "llama", NULL},
        {NULL, "", "raw", NULL},                /* model_type "llama" alone does not map names */
        {"null", "", "raw", NULL},
        {"[]", "", "raw", NULL},
        {"[\"GPT2LMHeadModel\"]", "--raw-names", "raw", NULL},
        {"[\"GPT2LMHeadModel\"]", "", NULL,
         "architecture GPT2LMHeadModel is not supported for GGUF (supported: LlamaForCausalLM, MistralForCausalLM, "
         "MixtralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM, Gemma2ForCausalLM, "
         "Gemma3ForCausalLM, Phi3ForCausalLM, SmolLM3ForCausalLM, GraniteForCausalLM, Olmo2ForCausalLM); --raw-names writes the tensors unchanged (a GGUF llama.cpp cannot run)"},
        {"\"LlamaForCausalLM\"", "", NULL, "\"architectures\" must be a list of class names (strings)"},
        {"[5]", "", NULL, "\"architectures\" must be a list of class names (strings)"},
        {"[\"LlamaForCausalLM\", 5]", "", NULL, "\"architectures\" must be a list of class names (strings)"},
        {"[\"\"]", "", NULL, "\"architectures\" must be a list of class names (strings)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int code;
        char *err;
        char *arch = convert_arch("architectures", cases[i].raw, cases[i].opt, &code, &err);
        const char *label = cases[i].raw ? cases[i].raw : "(removed)";
        if (cases[i].arch) {
            cr_expect_eq(code, 0, "%s: exit %d: %s", label, code, err);
            cr_expect(arch && strcmp(arch, cases[i].arch) == 0, "%s: general.architecture %s, expected %s", label,
                      arch ? arch : "-", cases[i].arch);
        } else {
            cr_expect_eq(code, 3, "%s: exit %d", label, code);
            cr_expect(strstr(err, cases[i].msg) && strstr(err, "/config.json: ") && strchr(err, '\n') == err + strlen(err) - 1,
                      "%s: %s", label, err);
        }
        free(arch);
        free(err);
    }
    /* convert --help names the same list */
    struct cmd_result r = run_modelq("convert --help");
    cr_expect_eq(r.code, 0);
    cr_expect(strstr(r.out, mq_convert_architectures()) != NULL, "convert --help lacks the architectures:\n%s", r.out);
    cr_expect(strstr(mq_convert_architectures(), "Olmo2ForCausalLM") != NULL);
    cmd_result_free(&r);
}
