/*
** test_json_limits.c - the JSON inputs cap memory, not only bytes (issue 18).
**
** cJSON allocates a 64-byte node per value plus copies of keys and strings, so a file of tiny
** values ("", 0) costs ~40x its size as a tree: a 99 MB safetensors header took 3.7 GB. The
** strict scan (src/json_strict.c) counts values before any tree is built and each reader refuses
** above its cap: safetensors header and index 2^21, tokenizer.json 2^22, tokenizer_config.json
** and generation_config.json 2^20, config.json 2^19 (test_config_checks.c). Here: the scan's
** counting and duplicate-key rules, ~20 MB files of tiny values refused quickly with a small RSS
** (measured with wait4), and files shaped like the largest real ones accepted.
*/
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json_strict.h"
#include "run_cmd.h"
#include "stwrite.h"

/* ---- the scan ---- */

static bool check(const char *text, size_t max_nodes, bool unique, struct json_strict_result *r)
{
    const struct json_strict_rules rules = {.unique_keys = unique, .max_depth = 64, .max_nodes = max_nodes};
    return json_strict_check(text, strlen(text), &rules, r);
}

Test(json_strict, counts_every_value)
{
    struct json_strict_result r;
    /* root, "a"'s array, 1, 2, {}, "b"'s "" */
    cr_assert(check("{\"a\": [1, 2, {}], \"b\": \"\"}", 0, false, &r));
    cr_expect_eq(r.nodes, 6);
    cr_expect(check("{\"a\": [1, 2, {}], \"b\": \"\"}", 6, false, &r));
    cr_expect(!check("{\"a\": [1, 2, {}], \"b\": \"\"}", 5, false, &r));
    cr_expect_str_eq(r.check, "json-nodes");
    cr_expect(check("{}", 1, false, &r));
    cr_expect(!check("{\"a\": 1}", 1, false, &r));
}

Test(json_strict, duplicate_keys)
{
    static const struct {
        const char *text;
        const char *dup; /* NULL: valid */
    } cases[] = {
        {"{\"a\": 1, \"a\": 2}", "a"},
        {"{\"a\": 1, \"\\u0061\": 2}", "\\u0061"},                       /* the later one, as written */
        {"{\"\\ud83d\\ude00\": 1, \"\xf0\x9f\x98\x80\": 2}", "\xf0\x9f\x98\x80"}, /* pair == raw UTF-8 */
        {"{\"a\\/b\": 1, \"a/b\": 2}", "a/b"},
        {"{\"x\": {\"k\": [{\"q\": 1, \"q\": 2}]}}", "q"},
        {"{\"a\": 1, \"b\": {\"a\": 2}, \"a\": 3}", "a"},
        {"{\"a\": {\"a\": 1}, \"b\": {\"a\": 1}}", NULL},
        {"{\"\\u00e9\": 1, \"e\\u0301\": 2}", NULL}, /* no normalization, as in Python */
        {"{\"ab\": 1, \"a\": 2, \"abc\": 3, \"\": 4}", NULL},
        {"{\"\\n\": 1, \"\\u000a\\u000A\": 2, \"\\u000a\": 3}", "\\u000a"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct json_strict_result r;
        bool ok = check(cases[i].text, 0, true, &r);
        if (!cases[i].dup) {
            cr_expect(ok, "%s: %s", cases[i].text, r.detail);
            continue;
        }
        cr_expect(!ok, "%s: accepted", cases[i].text);
        if (ok) continue;
        cr_expect_str_eq(r.check, "json-duplicate-key", "%s", cases[i].text);
        cr_expect_str_eq(r.key, cases[i].dup, "%s", cases[i].text);
        cr_expect(check(cases[i].text, 0, false, &r), "%s: refused without unique_keys", cases[i].text);
    }
}

/* ---- the CLI on big files ---- */

struct run {
    int code;
    long max_rss_kb;
    double seconds;
    char err[2048];
};

/* Runs $MODELQ_BIN with `args` (NULL-terminated, without argv[0]); stderr captured, RSS of that child. */
static struct run run_measured(const char *const *args)
{
    const char *bin = getenv("MODELQ_BIN");
    cr_assert_not_null(bin);
    char errpath[] = "/tmp/modelq-jl-err-XXXXXX";
    int efd = mkstemp(errpath);
    cr_assert(efd >= 0);
    const char *argv[16] = {bin};
    size_t n = 1;
    for (; args[n - 1] && n < 15; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(efd, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st;
    struct rusage ru;
    cr_assert_eq(wait4(pid, &st, 0, &ru), pid);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct run r = {WIFEXITED(st) ? WEXITSTATUS(st) : -1, ru.ru_maxrss,
                    (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec), ""};
    ssize_t k = pread(efd, r.err, sizeof r.err - 1, 0);
    r.err[k > 0 ? k : 0] = '\0';
    close(efd);
    unlink(errpath);
    return r;
}

/* Writes `head`, then `count` copies of `item` separated by commas, then `tail`. */
static void write_repeated(const char *path, const char *head, const char *item, size_t count, const char *tail)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    fputs(head, f);
    for (size_t i = 0; i < count; i++) {
        if (i) fputc(',', f);
        fputs(item, f);
    }
    fputs(tail, f);
    cr_assert_eq(fclose(f), 0);
}

static void copy_file(const char *from, const char *to)
{
    size_t n;
    uint8_t *d = read_file_all(from, &n);
    cr_assert_not_null(d, "%s", from);
    FILE *f = fopen(to, "wb");
    cr_assert(f && fwrite(d, 1, n, f) == n && fclose(f) == 0, "%s", to);
    free(d);
}

/* tiny-llama in a temporary folder. */
static char *copy_tiny(void)
{
    static const char *const names[] = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                                        "tokenizer_config.json"};
    char *dir = make_temp_dir("jsonlim");
    for (size_t i = 0; i < 5; i++) {
        char a[512], b[512];
        snprintf(a, sizeof a, "testdata/tiny-llama/%s", names[i]);
        snprintf(b, sizeof b, "%s/%s", dir, names[i]);
        copy_file(a, b);
    }
    return dir;
}

/*
** The bound asserted: the text itself (~20 MB, read whole) plus the program, well under what
** the tree would take (~7 million values x 64+ bytes = 450 MB to 800 MB, measured 3.7 GB for a
** 99 MB header before the caps). ASan builds add their shadow memory, hence the slack.
*/
#define RSS_BOUND_KB (200 * 1024)

Test(json_limits, tokenizer_of_tiny_values_is_refused, .timeout = 120)
{
    char *dir = copy_tiny(), path[512], out[600];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    /* 20 MB: 7 million "" values */
    write_repeated(path, "{\"model\": {\"type\": \"BPE\"}, \"x\": [", "\"\"", 7u * 1000 * 1000, "]}");
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    const char *args[] = {"convert", dir, "-o", out, NULL};
    struct run r = run_measured(args);
    char want[700];
    snprintf(want, sizeof want,
             "modelq: error: %s: more than 4194304 JSON values (the limit bounds the memory of the parsed file)\n", path);
    cr_expect_eq(r.code, 3, "exit %d: %s", r.code, r.err);
    cr_expect_str_eq(r.err, want);
    cr_expect_lt(r.max_rss_kb, RSS_BOUND_KB, "max RSS %ld kB", r.max_rss_kb);
    cr_expect(!file_exists(out));
    cr_log_info("tokenizer.json of 7M \"\": refused in %.2f s, max RSS %ld kB", r.seconds, r.max_rss_kb);
    /* the same in tokenizer_config.json (2^20) */
    copy_file("testdata/tiny-llama/tokenizer.json", path);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    write_repeated(path, "{\"x\": [", "0", 2u * 1000 * 1000, "]}");
    r = run_measured(args);
    snprintf(want, sizeof want,
             "modelq: error: %s: more than 1048576 JSON values (the limit bounds the memory of the parsed file)\n", path);
    cr_expect_eq(r.code, 3, "exit %d: %s", r.code, r.err);
    cr_expect_str_eq(r.err, want);
    remove_tree(dir);
    free(dir);
}

Test(json_limits, safetensors_header_of_tiny_values_is_refused, .timeout = 120)
{
    char *dir = make_temp_dir("jsonlim-st"), path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    /* a 20 MB header: one tensor whose shape lists 10 million zeros */
    size_t n = 10u * 1000 * 1000, cap = 2 * n + 128;
    char *hdr = malloc(cap);
    cr_assert_not_null(hdr);
    size_t o = (size_t)snprintf(hdr, cap, "{\"t\": {\"dtype\": \"F32\", \"shape\": [0");
    for (size_t i = 1; i < n; i++) {
        hdr[o++] = ',';
        hdr[o++] = '0';
    }
    o += (size_t)snprintf(hdr + o, cap - o, "], \"data_offsets\": [0, 0]}}");
    cr_assert_eq(stw_write_raw(path, o, hdr, o, NULL, 0), 0);
    free(hdr);
    const char *args[] = {"inspect", path, NULL};
    struct run r = run_measured(args);
    char want[700];
    snprintf(want, sizeof want,
             "modelq: error: %s: header-nodes-limit: more than 2097152 JSON values in the header (the limit bounds the "
             "memory of the parsed header)\n", path);
    cr_expect_eq(r.code, 3, "exit %d: %s", r.code, r.err);
    cr_expect_str_eq(r.err, want);
    cr_expect_lt(r.max_rss_kb, RSS_BOUND_KB, "max RSS %ld kB", r.max_rss_kb);
    cr_log_info("safetensors header of 10M values: refused in %.2f s, max RSS %ld kB", r.seconds, r.max_rss_kb);

    /* the index of a sharded checkpoint: the same cap */
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    write_repeated(path, "{\"metadata\": {\"x\": [", "0", 10u * 1000 * 1000,
                   "]}, \"weight_map\": {\"t\": \"model.safetensors\"}}");
    const char *args2[] = {"inspect", path, NULL};
    r = run_measured(args2);
    snprintf(want, sizeof want,
             "modelq: error: %s: index-nodes-limit: more than 2097152 JSON values (the limit bounds the memory of the "
             "parsed index)\n", path);
    cr_expect_eq(r.code, 3, "exit %d: %s", r.code, r.err);
    cr_expect_str_eq(r.err, want);
    cr_expect_lt(r.max_rss_kb, RSS_BOUND_KB, "max RSS %ld kB", r.max_rss_kb);
    remove_tree(dir);
    free(dir);
}

/* Real shapes pass: a header of 100 000 tensors (~900 000 values, more than any real single file). */
Test(json_limits, big_real_shaped_header_passes, .timeout = 120)
{
    char *dir = make_temp_dir("jsonlim-ok"), path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    size_t n = 100000, cap = n * 96 + 64;
    char *hdr = malloc(cap);
    cr_assert_not_null(hdr);
    size_t o = (size_t)snprintf(hdr, cap, "{");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(hdr + o, cap - o, "%s\"model.layers.%zu.w\": {\"dtype\": \"F32\", \"shape\": [0, 4], "
                              "\"data_offsets\": [0, 0]}", i ? ", " : "", i);
    o += (size_t)snprintf(hdr + o, cap - o, "}");
    cr_assert_eq(stw_write_raw(path, o, hdr, o, NULL, 0), 0);
    free(hdr);
    const char *args[] = {"inspect", "--json", path, NULL};
    struct run r = run_measured(args);
    cr_expect_eq(r.code, 0, "exit %d: %s", r.code, r.err);
    cr_log_info("header of 100 000 tensors (%zu bytes): read in %.2f s, max RSS %ld kB", o, r.seconds, r.max_rss_kb);
    remove_tree(dir);
    free(dir);
}

/*
** A tokenizer.json shaped like Gemma 3's (262 144 tokens, 600 000 merges as pairs: ~2.1 million
** values, twice Llama 3's count) gets past the value cap: the conversion then stops at the
** vocabulary check against tiny-llama's vocab_size 384, a later rule, not at the cap.
*/
Test(json_limits, big_real_shaped_tokenizer_passes_the_cap, .timeout = 300)
{
    char *dir = copy_tiny(), path[512], out[600];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs("{\"version\": \"1.0\", \"added_tokens\": [], \"model\": {\"type\": \"BPE\", \"vocab\": {", f);
    for (unsigned i = 0; i < 262144; i++) fprintf(f, "%s\"t%u\": %u", i ? ", " : "", i, i);
    fputs("}, \"merges\": [", f);
    for (unsigned i = 0; i < 600000; i++) fprintf(f, "%s[\"t%u\", \"t%u\"]", i ? ", " : "", i % 1000, i / 1000);
    fputs("]}}", f);
    cr_assert_eq(fclose(f), 0);
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    const char *args[] = {"convert", dir, "-o", out, NULL};
    struct run r = run_measured(args);
    cr_expect_eq(r.code, 3, "exit %d: %s", r.code, r.err);
    cr_expect(strstr(r.err, "is outside the model's vocab_size 384") != NULL, "%s", r.err);
    cr_expect(strstr(r.err, "JSON values") == NULL, "%s", r.err);
    cr_log_info("Gemma-3-shaped tokenizer.json: parsed in %.2f s, max RSS %ld kB", r.seconds, r.max_rss_kb);
    remove_tree(dir);
    free(dir);
}
