/*
** test_convert.c - `modelq convert` end to end on real bytes: the GGUF header against the
** worked example of the spec, reproducible bytes (threads, chunking, kernels), estimate == convert,
** refusals that name the tensor, value errors, and the atomic-output guarantees (injected disk
** full, SIGINT/SIGTERM/SIGKILL, output == input).
*/
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "model_impl.h"
#include "gguf_write.h"
#include "modelq/convert.h"
#include "modelq/estimate.h"
#include "modelq/model.h"
#include "run_cmd.h"
#include "stwrite.h"

#define MODEL "testdata/tiny-llama"

/* ---- GGUF header: the worked example of gguf-and-ggml.md section 1.9 ---- */

Test(gguf_write, worked_example_bytes)
{
    struct mq_meta meta;
    mq_meta_init(&meta);
    struct mq_error err;
    cr_assert_eq(mq_meta_set_str(&meta, "general.architecture", "llama", SIZE_MAX, &err), MQ_OK);
    struct mq_gguf_tensor_info t = {.name = "token_embd.weight", .n_dims = 1, .ne = {3, 1, 1, 1}, .type = 0, .nbytes = 12};
    uint64_t start, size;
    cr_assert_eq(mq_gguf_layout(&meta, &t, 1, &start, &size, &err), MQ_OK, "%s", err.msg);
    cr_expect_eq(start, 128);
    cr_expect_eq(size, 160);
    cr_expect_eq(t.offset, 0);
    uint8_t buf[128];
    cr_assert_eq(mq_gguf_header_write(&meta, &t, 1, buf, start, &err), MQ_OK);
    static const uint8_t expect[] = {
        'G', 'G', 'U', 'F', 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
        20, 0, 0, 0, 0, 0, 0, 0, 'g', 'e', 'n', 'e', 'r', 'a', 'l', '.', 'a', 'r', 'c', 'h', 'i', 't', 'e', 'c',
        't', 'u', 'r', 'e', 8, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 'l', 'l', 'a', 'm', 'a',
        17, 0, 0, 0, 0, 0, 0, 0, 't', 'o', 'k', 'e', 'n', '_', 'e', 'm', 'b', 'd', '.', 'w', 'e', 'i', 'g', 'h', 't',
        1, 0, 0, 0, /* n_dims */ 3, 0, 0, 0, 0, 0, 0, 0, /* ne[0] */ 0, 0, 0, 0, /* F32 */ 0, 0, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(sizeof expect, 118);
    cr_expect_eq(memcmp(buf, expect, sizeof expect), 0, "header bytes differ from the spec's example");
    for (size_t i = 118; i < 128; i++) cr_expect_eq(buf[i], 0, "padding byte %zu", i);
    mq_meta_free(&meta);
}

Test(gguf_write, refuses_what_ggml_rejects)
{
    struct mq_meta meta;
    mq_meta_init(&meta);
    struct mq_error err;
    uint64_t a, b;
    char longname[80];
    memset(longname, 'x', 64);
    longname[64] = 0;
    struct mq_gguf_tensor_info t = {.name = longname, .n_dims = 1, .ne = {32}, .type = 0, .nbytes = 128};
    cr_expect_eq(mq_gguf_layout(&meta, &t, 1, &a, &b, &err), MQ_E_USAGE);
    cr_expect_str_eq(err.check, "gguf-name-length");
    struct mq_gguf_tensor_info q = {.name = "w", .n_dims = 2, .ne = {48, 2}, .type = 8, .nbytes = 0};
    cr_expect_eq(mq_gguf_layout(&meta, &q, 1, &a, &b, &err), MQ_E_USAGE);
    cr_expect_str_eq(err.check, "gguf-block");
    struct mq_gguf_tensor_info r = {.name = "w", .n_dims = 1, .ne = {32}, .type = 4, .nbytes = 0};
    cr_expect_eq(mq_gguf_layout(&meta, &r, 1, &a, &b, &err), MQ_E_USAGE);
    cr_expect_str_eq(err.check, "gguf-type", "removed type id 4 (Q4_2)");
    mq_meta_free(&meta);
}

/* ---- reproducible bytes ---- */

static void convert_ok(const char *env, const char *in, const char *out, const char *args)
{
    struct cmd_result r = run_modelq("convert %s -o %s --quiet %s", in, out, args);
    (void)env;
    cr_assert_eq(r.code, 0, "convert %s %s failed (%d): %s", in, args, r.code, r.err);
    cmd_result_free(&r);
}

Test(convert, identical_bytes_for_threads_chunks_and_kernels)
{
    static const char *types[] = {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl",
                                  "q4_K", "q5_K", "q6_K", "f16",  "bf16", "f32"};
    char *dir = make_temp_dir("repro");
    char a[512], b[512];
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        snprintf(a, sizeof a, "%s/ref-%s.gguf", dir, types[k]);
        unsetenv("MODELQ_CHUNK_ELEMS");
        char args[128];
        snprintf(args, sizeof args, "--type %s -j 1 --reference-kernels", types[k]);
        convert_ok(NULL, MODEL, a, args);
        static const char *variants[][2] = {{"-j 2", NULL}, {"-j 8", "3000"}, {"-j 3", "512"}, {"-j 1", "100000"}};
        for (size_t v = 0; v < 4; v++) {
            if (variants[v][1]) setenv("MODELQ_CHUNK_ELEMS", variants[v][1], 1);
            else unsetenv("MODELQ_CHUNK_ELEMS");
            snprintf(b, sizeof b, "%s/v%zu-%s.gguf", dir, v, types[k]);
            snprintf(args, sizeof args, "--type %s %s", types[k], variants[v][0]);
            convert_ok(NULL, MODEL, b, args);
            cr_expect(files_equal(a, b), "%s: %s (chunk %s) differs from -j1 reference kernels", types[k],
                      variants[v][0], variants[v][1] ? variants[v][1] : "default");
        }
        /* repeated run: same bytes (no timestamps, no paths) */
        snprintf(b, sizeof b, "%s/again/x.gguf", dir);
        char sub[600];
        snprintf(sub, sizeof sub, "%s/again", dir);
        mkdir(sub, 0755);
        convert_ok(NULL, MODEL, b, args);
        cr_expect(files_equal(a, b), "%s: a second run elsewhere differs", types[k]);
    }
    unsetenv("MODELQ_CHUNK_ELEMS");
    remove_tree(dir);
    free(dir);
}

/* ---- estimate == convert ---- */

static uint64_t convert_tensor_bytes(const char *in, const char *type, bool dry, const char *out)
{
    struct mq_convert_options o;
    mq_convert_options_default(&o);
    o.input = in;
    o.output = out;
    o.type = type;
    o.dry_run = dry;
    o.threads = 2;
    o.no_vocab = true; /* the sparse checkpoints have no tokenizer; tensor bytes do not depend on it */
    struct mq_convert_report rep;
    struct mq_error err;
    cr_assert_eq(mq_convert(&o, &rep, &err), MQ_OK, "%s: %s", type, err.msg);
    uint64_t n = rep.tensor_bytes;
    if (!dry) {
        struct stat st;
        cr_assert_eq(stat(out, &st), 0);
        cr_expect_eq((uint64_t)st.st_size, rep.file_bytes, "file size is the planned size");
        cr_expect_gt(rep.file_bytes, rep.tensor_bytes);
    }
    mq_convert_report_free(&rep);
    return n;
}

Test(convert, estimate_bytes_equal_written_bytes)
{
    struct mq_model *m;
    struct mq_error err;
    cr_assert_eq(mq_model_open(MODEL, &m, &err), MQ_OK);
    struct mq_estimate_options eo;
    mq_estimate_options_default(&eo);
    struct mq_estimate e;
    cr_assert_eq(mq_estimate_model(m, &eo, &e, &err), MQ_OK);
    mq_model_free(m);
    char *dir = make_temp_dir("est");
    static const struct { enum mq_target t; const char *name; } rows[] = {
        {MQ_TARGET_F32, "f32"},       {MQ_TARGET_Q8_0, "q8_0"},   {MQ_TARGET_Q4_0, "q4_0"},
        {MQ_TARGET_IQ4_NL, "iq4_nl"}, {MQ_TARGET_Q4_K_M, "q4_K"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char out[512];
        snprintf(out, sizeof out, "%s/%s.gguf", dir, rows[i].name);
        uint64_t written = convert_tensor_bytes(MODEL, rows[i].name, false, out);
        cr_expect_eq(written, mq_estimate_row_of(&e, rows[i].t)->bytes, "%s: convert wrote %llu tensor bytes, estimate said %llu",
                     rows[i].name, (unsigned long long)written, (unsigned long long)mq_estimate_row_of(&e, rows[i].t)->bytes);
    }
    remove_tree(dir);
    free(dir);
}

/* The same on a sparse Llama-2-7B-shaped checkpoint (dry run: the plan, no data read). */
Test(convert, estimate_equals_plan_on_llama2_7b_shape)
{
    char *dir = make_temp_dir("est7b");
    struct stw_llama spec = {32, 4096, 11008, 32000, 32, 32, "F16", 2, 0};
    cr_assert_eq(stw_write_llama_sparse(dir, &spec), 0);
    struct mq_model *m;
    struct mq_error err;
    cr_assert_eq(mq_model_open(dir, &m, &err), MQ_OK, "%s", err.msg);
    struct mq_estimate_options eo;
    mq_estimate_options_default(&eo);
    struct mq_estimate e;
    cr_assert_eq(mq_estimate_model(m, &eo, &e, &err), MQ_OK);
    mq_model_free(m);
    static const struct { enum mq_target t; const char *name; } rows[] = {
        {MQ_TARGET_F32, "f32"}, {MQ_TARGET_Q8_0, "q8_0"}, {MQ_TARGET_Q4_0, "q4_0"}, {MQ_TARGET_IQ4_NL, "iq4_nl"},
        {MQ_TARGET_NF4, "nf4"}, {MQ_TARGET_NF4_DQ, "nf4-dq"}, {MQ_TARGET_INT8_ROW, "int8_row"},
        {MQ_TARGET_INT8_ASYM, "int8_asym"}, {MQ_TARGET_Q4_K_M, "q4_K"}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        uint64_t planned = convert_tensor_bytes(dir, rows[i].name, true, NULL);
        cr_expect_eq(planned, mq_estimate_row_of(&e, rows[i].t)->bytes, "%s", rows[i].name);
    }
    cr_expect_eq(convert_tensor_bytes(dir, "q8_0", true, NULL), 7160348672ull, "hand-computed Q8_0 size");
    remove_tree(dir);
    free(dir);
}

/* --report FILE.json: the report as a document */
Test(convert, json_report)
{
    char *dir = make_temp_dir("report");
    struct cmd_result r = run_modelq("convert " MODEL " -o %s/m.gguf --type q4_0 --stats --quiet --report %s/r.json",
                                     dir, dir);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    char path[512];
    snprintf(path, sizeof path, "%s/r.json", dir);
    char *text = (char *)read_file_all(path, NULL);
    cJSON *doc = cJSON_Parse(text);
    cr_assert_not_null(doc, "report is JSON");
    cr_expect_eq(cJSON_GetObjectItem(doc, "schema_version")->valueint, 1);
    cr_expect_str_eq(cJSON_GetObjectItem(doc, "type")->valuestring, "q4_0");
    cr_expect_eq(cJSON_GetObjectItem(doc, "file_type")->valueint, 2);
    cJSON *ts = cJSON_GetObjectItem(doc, "tensors");
    cr_expect_eq(cJSON_GetArraySize(ts), 21);
    double sum = 0;
    int with_stats = 0;
    cJSON *t;
    cJSON_ArrayForEach(t, ts)
    {
        sum += cJSON_GetObjectItem(t, "bytes")->valuedouble;
        with_stats += cJSON_GetObjectItem(t, "stats") != NULL;
        if (!strcmp(cJSON_GetObjectItem(t, "name")->valuestring, "output.weight"))
            cr_expect_str_eq(cJSON_GetObjectItem(t, "type")->valuestring, "q6_K", "llama-quantize: output Q6_K");
    }
    cr_expect_eq(sum, cJSON_GetObjectItem(doc, "tensor_bytes")->valuedouble);
    cr_expect_eq(with_stats, 16, "every quantized tensor has error statistics");
    cr_expect_not_null(cJSON_GetObjectItem(doc, "stats"));
    cJSON_Delete(doc);
    free(text);
    remove_tree(dir);
    free(dir);
}

/* ---- per-tensor choices: --tensor-type, --keep, --pure ---- */

/* The "to" and "why" columns of NAME's row in a printed plan; false when there is no such row. */
static bool plan_row(const char *out, const char *name, char *to, size_t to_size, char *why, size_t why_size)
{
    size_t n = strlen(name);
    for (const char *line = out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, name, n) != 0 || line[n] != ' ') continue;
        char from[32], t[32];
        if (sscanf(line + n, " %31s %31s", from, t) != 2) return false;
        snprintf(to, to_size, "%s", t);
        const char *w = line + n;
        /* bytes print with thousands separators; the why column starts after the bpw's 3 decimals */
        const char *dot = strchr(w, '.');
        w = dot ? dot + 4 : w;
        while (*w == ' ') w++;
        size_t len = strcspn(w, "\n");
        snprintf(why, why_size, "%.*s", (int)len, w);
        return true;
    }
    return false;
}

static void expect_row(const char *out, const char *name, const char *to, const char *why_prefix)
{
    char got[32] = "", why[160] = "";
    cr_assert(plan_row(out, name, got, sizeof got, why, sizeof why), "no row for %s in:\n%s", name, out);
    cr_expect_str_eq(got, to, "%s", name);
    if (why_prefix) cr_expect(strncmp(why, why_prefix, strlen(why_prefix)) == 0, "%s: why '%s'", name, why);
}

/* The plan's table: everything before the "dry run:"/"wrote" summary line. */
static char *plan_table(const char *out)
{
    const char *end = strstr(out, "\ntensors: ");
    cr_assert_not_null(end, "%s", out);
    return strndup(out, (size_t)(end - out));
}

Test(convert, tensor_type_keep_and_pure_choose_per_tensor)
{
    char *dir = make_temp_dir("over");
    const char *args = "--type q4_0 --tensor-type 'blk\\.0\\.attn_q\\.weight=q8_0' --tensor-type 'attn_q=iq4_nl' "
                       "--keep ffn_down";
    /* without -o the plan is GGUF's (GGUF names, so GGUF-name patterns match) */
    struct cmd_result r = run_modelq("convert " MODEL " --dry-run %s", args);
    cr_assert_eq(r.code, 0, "%s", r.err);
    expect_row(r.out, "blk.0.attn_q.weight", "q8_0", "--tensor-type");
    expect_row(r.out, "blk.1.attn_q.weight", "iq4_nl", "--tensor-type"); /* first match wins */
    expect_row(r.out, "blk.0.ffn_down.weight", "bf16", "--keep");
    expect_row(r.out, "blk.1.ffn_down.weight", "bf16", "--keep");
    expect_row(r.out, "blk.0.attn_k.weight", "q4_0", "quantized");
    expect_row(r.out, "output.weight", "q6_K", "output tensor");
    expect_row(r.out, "blk.0.attn_norm.weight", "f32", "1-D");
    char *dry = plan_table(r.out);
    cmd_result_free(&r);

    /* the same plan with -o, and the written file holds exactly those types */
    r = run_modelq("convert " MODEL " -o %s/o.gguf %s", dir, args);
    cr_assert_eq(r.code, 0, "%s", r.err);
    char *wet = plan_table(r.out);
    cr_expect_str_eq(wet, dry, "the dry run shows the plan the conversion writes");
    free(wet);
    free(dry);
    cmd_result_free(&r);
    char path[512];
    snprintf(path, sizeof path, "%s/o.gguf", dir);
    struct mq_model *m = NULL;
    struct mq_error err;
    cr_assert_eq(mq_model_open(path, &m, &err), MQ_OK, "%s", err.msg);
    static const struct { const char *name, *type; } want[] = {
        {"blk.0.attn_q.weight", "Q8_0"}, {"blk.1.attn_q.weight", "IQ4_NL"}, {"blk.0.ffn_down.weight", "BF16"},
        {"blk.0.attn_k.weight", "Q4_0"}, {"output.weight", "Q6_K"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        long k = mq_model_find(m, want[i].name);
        cr_assert(k >= 0, "%s missing", want[i].name);
        cr_expect_str_eq(mq_ggml_type_name(m->tensors[k].ggml_type), want[i].type, "%s", want[i].name);
    }
    mq_model_free(m);

    /* patterns retype weight matrices only: "ffn_" does not turn ffn_norm into q8_0 or bf16 */
    r = run_modelq("convert " MODEL " --dry-run --type q4_0 --tensor-type 'ffn_=q8_0' --keep 'norm'");
    cr_assert_eq(r.code, 0, "%s", r.err);
    expect_row(r.out, "blk.0.ffn_down.weight", "q8_0", "--tensor-type");
    expect_row(r.out, "blk.0.ffn_norm.weight", "f32", "1-D");
    expect_row(r.out, "output_norm.weight", "f32", "1-D");
    cmd_result_free(&r);

    /* --pure: one type everywhere eligible, output.weight included; 1-D tensors stay F32 */
    r = run_modelq("convert " MODEL " --dry-run --type q4_0 --pure");
    cr_assert_eq(r.code, 0, "%s", r.err);
    expect_row(r.out, "output.weight", "q4_0", "--pure");
    expect_row(r.out, "token_embd.weight", "q4_0", "--pure");
    expect_row(r.out, "blk.1.ffn_norm.weight", "f32", "1-D");
    cmd_result_free(&r);

    /* refusals, each before anything is written */
    static const struct { const char *args, *needle; } bad[] = {
        {"--type q4_0 --tensor-type 'no_such_tensor=q9_9'", "unknown type 'q9_9'"},
        {"--type q4_0 --tensor-type 'attn_q=nf4'", "nf4 has no gguf type"},
        {"--type q4_0 --keep '('", "--keep '('"},
        {"--type q4_0 --tensor-type '[=q8_0'", "--tensor-type '['"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = run_modelq("convert " MODEL " --dry-run %s", bad[i].args);
        cr_expect_eq(r.code, 2, "%s: exit %d", bad[i].args, r.code);
        cr_expect_not_null(strstr(r.err, bad[i].needle), "%s: %s", bad[i].args, r.err);
        cmd_result_free(&r);
        r = run_modelq("convert " MODEL " -o %s/bad.gguf %s", dir, bad[i].args);
        cr_expect_eq(r.code, 2, "%s: exit %d", bad[i].args, r.code);
        cr_expect_eq(count_entries_containing(dir, "bad.gguf"), 0, "nothing written");
        cmd_result_free(&r);
    }
    remove_tree(dir);
    free(dir);
}

/*
** K-quant file types on a sparse Llama-2-7B shape, as llama-quantize mixes them. q4_K / q5_K are its
** aliases of Q4_K_M / Q5_K_M: attn_v and ffn_down are Q6_K in the 16 layers where use_more_bits
** holds (n = 32, n/8 = 4, 7n/8 = 28, (i - 4) % 3 == 2 at 6, 9, ..., 27), everything else eligible
** in the base type, output Q6_K. Q4_K_S: attn_v of layers 0-3 and ffn_down of the first n/8 layers
** Q5_K. Q5_K_S: no mixture. Q5_K_M tensor bytes by hand: token_embd 512000 Q5_K blocks x 176 =
** 90,112,000; output 512000 x 210 = 107,520,000; per layer q/k/o 3 x 11,534,336, gate/up
** 2 x 30,998,528, norms 32,768; v and down 13,762,560 and 36,986,880 in Q6_K layers, 11,534,336
** and 30,998,528 otherwise; output_norm 16,384: 4,782,415,872 (TheBloke's llama-2-7b.Q5_K_M.gguf:
** 4.78 GB with its metadata).
*/
Test(convert, k_quant_mixtures_follow_llama_quantize)
{
    char *dir = make_temp_dir("kmix");
    struct stw_llama spec = {32, 4096, 11008, 32000, 32, 32, "F16", 2, 0};
    cr_assert_eq(stw_write_llama_sparse(dir, &spec), 0);
    static const int q6[] = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
    static const struct { const char *type, *base; } m_types[] = {{"q5_K", "q5_K"}, {"q4_K", "q4_K"}};
    for (size_t t = 0; t < 2; t++) {
        struct cmd_result r = run_modelq("convert %s --dry-run --no-vocab --type %s", dir, m_types[t].type);
        cr_assert_eq(r.code, 0, "%s", r.err);
        for (int l = 0, k = 0; l < 32; l++) {
            bool more = k < 16 && q6[k] == l;
            k += more;
            char name[64];
            snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
            expect_row(r.out, name, more ? "q6_K" : m_types[t].base, more ? "attn_v: more bits" : "quantized");
            snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
            expect_row(r.out, name, more ? "q6_K" : m_types[t].base, more ? "ffn_down: more bits" : "quantized");
            snprintf(name, sizeof name, "blk.%d.attn_q.weight", l);
            expect_row(r.out, name, m_types[t].base, "quantized");
        }
        expect_row(r.out, "output.weight", "q6_K", "output tensor");
        expect_row(r.out, "token_embd.weight", m_types[t].base, "quantized");
        cmd_result_free(&r);
    }
    cr_expect_eq(convert_tensor_bytes(dir, "q5_K", true, NULL), 4782415872ull, "hand-computed Q5_K_M size");
    static const char *const spellings[] = {"Q5_K_M", "Q4_K_M", "q4_k_m"};
    for (size_t i = 0; i < 3; i++) {
        struct cmd_result r = run_modelq("convert %s --dry-run --no-vocab --type %s", dir, spellings[i]);
        cr_expect_eq(r.code, 0, "%s is accepted as llama-quantize spells it: %s", spellings[i], r.err);
        cmd_result_free(&r);
    }
    struct cmd_result r = run_modelq("convert %s --dry-run --no-vocab --type q4_K_S", dir);
    cr_assert_eq(r.code, 0, "%s", r.err);
    for (int l = 0; l < 32; l++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        expect_row(r.out, name, l < 4 ? "q5_K" : "q4_K", NULL);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        expect_row(r.out, name, l < 4 ? "q5_K" : "q4_K", NULL);
    }
    expect_row(r.out, "output.weight", "q6_K", "output tensor");
    cmd_result_free(&r);
    r = run_modelq("convert %s --dry-run --no-vocab --type q5_K_S", dir);
    cr_assert_eq(r.code, 0, "%s", r.err);
    expect_row(r.out, "blk.0.attn_v.weight", "q5_K", "quantized");
    expect_row(r.out, "blk.31.ffn_down.weight", "q5_K", "quantized");
    expect_row(r.out, "output.weight", "q6_K", "output tensor");
    cmd_result_free(&r);
    remove_tree(dir);
    free(dir);

    /* LLM_TYPE_70B (80 layers, grouped-query attention): Q4_K attn_v becomes Q5_K; the use_more_bits
     * layers keep Q6_K. Rows of 4160 (not a multiple of 256) fall back from Q4_K to Q5_0. */
    dir = make_temp_dir("k70b");
    struct stw_llama big = {80, 256, 512, 1000, 8, 2, "F16", 1, 0};
    cr_assert_eq(stw_write_llama_sparse(dir, &big), 0);
    r = run_modelq("convert %s --dry-run --no-vocab --type q4_K", dir);
    cr_assert_eq(r.code, 0, "%s", r.err);
    expect_row(r.out, "blk.0.attn_v.weight", "q6_K", "attn_v: more bits");  /* 0 < 80/8 */
    expect_row(r.out, "blk.10.attn_v.weight", "q5_K", "attn_v of a 70B model"); /* (10 - 10) % 3 = 0 */
    expect_row(r.out, "blk.12.attn_v.weight", "q6_K", "attn_v: more bits");     /* (12 - 10) % 3 = 2 */
    expect_row(r.out, "blk.10.ffn_down.weight", "q4_K", "quantized");
    cmd_result_free(&r);
    remove_tree(dir);
    free(dir);
    dir = make_temp_dir("kodd");
    struct stw_llama odd = {1, 4160, 512, 1000, 4, 4, "F16", 1, 0};
    cr_assert_eq(stw_write_llama_sparse(dir, &odd), 0);
    r = run_modelq("convert %s --dry-run --no-vocab --type q4_K", dir);
    cr_assert_eq(r.code, 0, "%s", r.err);
    expect_row(r.out, "blk.0.attn_q.weight", "q5_0", "row length does not fit");
    expect_row(r.out, "blk.0.ffn_gate.weight", "q5_0", "row length does not fit");
    expect_row(r.out, "blk.0.ffn_down.weight", "q6_K", "ffn_down: more bits"); /* rows of 512 fit */
    cmd_result_free(&r);
    r = run_modelq("convert %s --dry-run --no-vocab --type q4_K --no-fallback", dir);
    cr_expect_eq(r.code, 2, "--no-fallback: %s", r.err);
    cmd_result_free(&r);
    remove_tree(dir);
    free(dir);
}

/* ---- refusals ---- */

Test(convert, nf4_has_no_gguf_type_but_dry_run_measures_it)
{
    char *dir = make_temp_dir("nf4");
    struct cmd_result r = run_modelq("convert " MODEL " -o %s/x.gguf --type nf4", dir);
    cr_expect_eq(r.code, 2);
    cr_expect(strstr(r.err, "iq4_nl") != NULL, "suggests iq4_nl: %s", r.err);
    cr_expect_eq(count_entries_containing(dir, "x.gguf"), 0, "nothing written");
    cmd_result_free(&r);
    r = run_modelq("convert " MODEL " -o %s/x.gguf --type nf4 --dry-run --stats", dir);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cr_expect(strstr(r.out, "dry run") != NULL);
    cr_expect(strstr(r.out, "rmse") != NULL, "per-tensor error printed");
    cr_expect(strstr(r.out, "model.layers.0.self_attn.q_proj.weight") != NULL);
    cr_expect_eq(count_entries_containing(dir, "x.gguf"), 0, "dry run writes nothing");
    cmd_result_free(&r);
    remove_tree(dir);
    free(dir);
}

/* NF4 at block 64 on the bundled model: the mean absolute error must be about 0.0728 x absmax-scale. */
Test(convert, dry_run_stats_nf4_numbers)
{
    struct mq_convert_options o;
    mq_convert_options_default(&o);
    o.input = MODEL;
    o.type = "nf4";
    o.dry_run = o.stats = true;
    struct mq_convert_report rep;
    struct mq_error err;
    cr_assert_eq(mq_convert(&o, &rep, &err), MQ_OK, "%s", err.msg);
    cr_assert(rep.have_stats);
    size_t quantized = 0;
    for (size_t i = 0; i < rep.n_tensors; i++) {
        if (!rep.tensors[i].have_stats) continue;
        quantized++;
        cr_expect(rep.tensors[i].stats.snr_db > 15 && rep.tensors[i].stats.snr_db < 25, "%s: NF4 SNR %.2f dB",
                  rep.tensors[i].name, rep.tensors[i].stats.snr_db);
    }
    cr_expect_eq(quantized, 14, "7 linear layers x 2 blocks; embeddings and lm_head stay BF16");
    mq_convert_report_free(&rep);
}

static void write_st(const char *path, const char *hdr, const void *data, size_t len)
{
    cr_assert_eq(stw_write_raw(path, strlen(hdr), hdr, strlen(hdr), data, len), 0);
}

Test(convert, refuses_what_gguf_cannot_hold_naming_the_tensor)
{
    char *dir = make_temp_dir("refuse");
    char in[512];
    static const uint8_t zeros[4096];
    static const struct { const char *hdr; size_t len; const char *needle; } cases[] = {
        {"{\"flags\":{\"dtype\":\"BOOL\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, "flags"},
        {"{\"counts\":{\"dtype\":\"U16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "counts"},
        {"{\"e8m0\":{\"dtype\":\"F8_E8M0\",\"shape\":[32],\"data_offsets\":[0,32]}}", 32, "e8m0"}, /* F8_E4M3/E5M2 convert (test_fp8.c) */
        {"{\"five\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, "five"},
        {"{\"model.layers.0.a_very_long_module_name_that_goes_past_the_limit.weight\":{\"dtype\":\"F32\","
         "\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "a_very_long_module_name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(in, sizeof in, "%s/in%zu.safetensors", dir, i);
        write_st(in, cases[i].hdr, zeros, cases[i].len);
        struct cmd_result r = run_modelq("convert %s -o %s/out.gguf --type f16", in, dir);
        cr_expect_eq(r.code, 3, "case %zu: exit %d: %s", i, r.code, r.err);
        cr_expect(strstr(r.err, cases[i].needle) != NULL, "case %zu names the tensor: %s", i, r.err);
        cr_expect_eq(count_entries_containing(dir, "out.gguf"), 0, "no output, no temporary file");
        cmd_result_free(&r);
    }
    /* integers and F64 pass through as their ggml types */
    snprintf(in, sizeof in, "%s/ints.safetensors", dir);
    write_st(in, "{\"ids\":{\"dtype\":\"I64\",\"shape\":[4],\"data_offsets\":[0,32]},"
                 "\"w\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[32,48]}}", zeros, 48);
    struct cmd_result r = run_modelq("convert %s -o %s/ints.gguf --type q8_0", in, dir);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    /* zero-sized tensors (a 0 in the shape) convert to empty tensors (found by fuzz_safetensors) */
    snprintf(in, sizeof in, "%s/zero.safetensors", dir);
    write_st(in, "{\"b.weight\":{\"dtype\":\"F32\",\"shape\":[2,32],\"data_offsets\":[0,256]},"
                 "\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,0],\"data_offsets\":[256,256]},"
                 "\"c.weight\":{\"dtype\":\"BF16\",\"shape\":[0,64],\"data_offsets\":[256,256]}}", zeros, 256);
    static const char *types[] = {"q8_0", "f16", "auto", "iq4_nl"};
    for (size_t k = 0; k < 4; k++) {
        r = run_modelq("convert %s -o %s/zero-%s.gguf --type %s", in, dir, types[k], types[k]);
        cr_expect_eq(r.code, 0, "%s: %s", types[k], r.err);
        cmd_result_free(&r);
    }
    r = run_modelq("convert %s --dry-run --stats --type nf4", in);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    remove_tree(dir);
    free(dir);
}

Test(convert, nan_is_reported_at_the_same_index_for_any_thread_count)
{
    char *dir = make_temp_dir("nan");
    char in[512];
    snprintf(in, sizeof in, "%s/nan.safetensors", dir);
    static float data[64 * 256];
    for (size_t i = 0; i < 64 * 256; i++) data[i] = (float)((int)(i % 97) - 48) / 64.0f;
    data[5000] = NAN;
    data[9000] = INFINITY;
    data[9001] = -INFINITY;
    write_st(in, "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[64,256],\"data_offsets\":[0,65536]}}", data, sizeof data);
    char *first = NULL;
    static const char *chunks[] = {"256", "1024", "100000"};
    for (int j = 1; j <= 8; j *= 2) {
        for (size_t c = 0; c < 3; c++) {
            setenv("MODELQ_CHUNK_ELEMS", chunks[c], 1);
            struct cmd_result r = run_modelq("convert %s -o %s/o.gguf --type q8_0 -j %d", in, dir, j);
            cr_expect_eq(r.code, 3);
            cr_expect(strstr(r.err, "a.weight") && strstr(r.err, "5000"), "names tensor and index: %s", r.err);
            cr_expect(strstr(r.err, "3 ") != NULL, "counts 3 bad values: %s", r.err);
            if (!first) first = strdup(r.err);
            else cr_expect_str_eq(r.err, first, "same message for -j %d chunk %s", j, chunks[c]);
            cmd_result_free(&r);
        }
    }
    unsetenv("MODELQ_CHUNK_ELEMS");
    cr_expect_eq(count_entries_containing(dir, "o.gguf"), 0);
    free(first);
    remove_tree(dir);
    free(dir);
}

/* ---- atomic output ---- */

static void write_text(const char *path, const char *s)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(s, f);
    fclose(f);
}

Test(convert, disk_full_leaves_previous_output_and_no_temp)
{
    char *dir = make_temp_dir("full");
    char out[512];
    snprintf(out, sizeof out, "%s/model.gguf", dir);
    write_text(out, "previous file\n");
    setenv("MODELQ_FAULT_WRITE_AFTER", "200000", 1);
    struct cmd_result r = run_modelq("convert " MODEL " -o %s --type q8_0", out);
    unsetenv("MODELQ_FAULT_WRITE_AFTER");
    cr_expect_eq(r.code, 4, "I/O exit code: %d %s", r.code, r.err);
    cr_expect(strstr(r.err, "No space left") != NULL, "%s", r.err);
    cr_expect(strchr(r.err, '\n') == r.err + strlen(r.err) - 1, "one line: %s", r.err);
    size_t n;
    char *text = (char *)read_file_all(out, &n);
    cr_expect_str_eq(text, "previous file\n", "the existing output is untouched");
    free(text);
    cr_expect_eq(count_entries_containing(dir, "modelq-tmp"), 0, "temporary file removed");
    cmd_result_free(&r);
    remove_tree(dir);
    free(dir);
}

Test(convert, output_equal_to_input_is_refused)
{
    char *dir = make_temp_dir("same");
    char in[512], link_path[512];
    snprintf(in, sizeof in, "%s/m.safetensors", dir);
    size_t n;
    uint8_t *bytes = read_file_all(MODEL "/model.safetensors", &n);
    FILE *f = fopen(in, "wb");
    fwrite(bytes, 1, n, f);
    fclose(f);
    free(bytes);
    snprintf(link_path, sizeof link_path, "%s/m.gguf", dir);
    cr_assert_eq(link(in, link_path), 0);
    struct cmd_result r = run_modelq("convert %s -o %s --type q8_0", in, link_path);
    cr_expect_eq(r.code, 2, "%s", r.err);
    cr_expect(strstr(r.err, "would replace the input file") != NULL, "%s", r.err);
    cmd_result_free(&r);
    cr_expect(files_equal(in, link_path));
    remove_tree(dir);
    free(dir);
}

/* Starts a slow conversion, waits for its temporary file, sends `sig`, returns the wait status. */
static int interrupt_run(const char *dir, const char *out, int sig)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        setenv("MODELQ_TEST_CHUNK_DELAY_MS", "20", 1);
        setenv("MODELQ_CHUNK_ELEMS", "2048", 1);
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1);
        dup2(nul, 2);
        execl(getenv("MODELQ_BIN"), "modelq", "convert", MODEL, "-o", out, "--type", "q4_0", "-j", "1", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000 && count_entries_containing(dir, "modelq-tmp") == 0; i++) usleep(5000);
    cr_assert_eq(count_entries_containing(dir, "modelq-tmp"), 1, "the temporary file appears while running");
    usleep(100000);
    kill(pid, sig);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return st;
}

Test(convert, sigint_and_sigterm_remove_the_temporary_file)
{
    int sigs[] = {SIGINT, SIGTERM};
    for (int k = 0; k < 2; k++) {
        char *dir = make_temp_dir("sig");
        char out[512];
        snprintf(out, sizeof out, "%s/model.gguf", dir);
        write_text(out, "previous\n");
        int st = interrupt_run(dir, out, sigs[k]);
        cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == sigs[k], "dies of the signal (re-raised)");
        cr_expect_eq(count_entries_containing(dir, "modelq-tmp"), 0, "signal %d: temporary file removed", sigs[k]);
        char *text = (char *)read_file_all(out, NULL);
        cr_expect_str_eq(text, "previous\n");
        free(text);
        remove_tree(dir);
        free(dir);
    }
}

Test(convert, sigkill_leaves_destination_absent_or_intact)
{
    for (int prev = 0; prev < 2; prev++) {
        char *dir = make_temp_dir("kill");
        char out[512];
        snprintf(out, sizeof out, "%s/model.gguf", dir);
        if (prev) write_text(out, "previous\n");
        int st = interrupt_run(dir, out, SIGKILL);
        cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        if (prev) {
            char *text = (char *)read_file_all(out, NULL);
            cr_expect_str_eq(text, "previous\n", "previous output intact");
            free(text);
        } else {
            cr_expect(!file_exists(out), "no half-written output under the final name");
        }
        /* the stray temporary file is recognisable by name */
        cr_expect_eq(count_entries_containing(dir, ".model.gguf.modelq-tmp-"), 1);
        /* A temporary of a live process (this test's own PID, "1") must survive the next run; the
         * dead run's is removed by it. */
        char live[600], init[600];
        snprintf(live, sizeof live, "%s/.model.gguf.modelq-tmp-%ld", dir, (long)getpid());
        snprintf(init, sizeof init, "%s/.model.gguf.modelq-tmp-1", dir);
        write_text(live, "live\n");
        write_text(init, "init\n");
        struct cmd_result r = run_modelq("convert " MODEL " -o %s --type q8_0", out);
        cr_expect_eq(r.code, 0, "%s", r.err);
        cmd_result_free(&r);
        cr_expect_eq(count_entries_containing(dir, ".model.gguf.modelq-tmp-"), 2, "only the dead run's is gone");
        cr_expect(file_exists(live) && file_exists(init), "live processes' temporaries kept");
        remove_tree(dir);
        free(dir);
    }
}
