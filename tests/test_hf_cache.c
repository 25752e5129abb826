/*
** test_hf_cache.c - `estimate`/`inspect`/`convert` take `org/name[@revision]` and find it in a
** local Hugging Face cache tree (refs, snapshots of symbolic links into blobs), offline; each way it
** can be missing is one line naming where modelq looked.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run_cmd.h"

#define MODEL "testdata/tiny-llama"
#define COMMIT "0123456789abcdef0123456789abcdef01234567"
#define COMMIT2 "fedcba9876543210fedcba9876543210fedcba98"

static void sh(const char *cmd)
{
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* A cache under root/hub with acme/tiny: refs/main -> COMMIT, refs/v2 -> COMMIT2 (not present),
** the snapshot's files symbolic links into blobs/. */
static void make_cache(const char *root)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "r='%s/hub/models--acme--tiny' && mkdir -p \"$r/refs\" \"$r/blobs\" \"$r/snapshots/" COMMIT "\" && "
             "for f in config.json model.safetensors tokenizer.json; do cp " MODEL "/$f \"$r/blobs/sha-$f\" && "
             "ln -s ../../blobs/sha-$f \"$r/snapshots/" COMMIT "/$f\"; done && "
             "printf '" COMMIT "' > \"$r/refs/main\" && printf '" COMMIT2 "\\n' > \"$r/refs/v2\" && "
             "printf 'not-a-hash' > \"$r/refs/bad\"",
             root);
    sh(cmd);
}

Test(hf_cache, repo_ids_resolve_offline_in_the_cache)
{
    char *root = make_temp_dir("hfc");
    make_cache(root);
    setenv("HF_HOME", root, 1);
    unsetenv("HF_HUB_CACHE");
    struct cmd_result a = run_modelq("estimate acme/tiny --json");
    struct cmd_result b = run_modelq("estimate " MODEL " --json");
    cr_expect_eq(a.code, 0, "%s", a.err);
    /* the same numbers as the folder itself (the documents differ only in the path) */
    cr_expect(strstr(a.out, "\"params\":\t1377536") || strstr(a.out, "1377536"), "%s", a.out);
    cr_expect(strstr(a.out, "models--acme--tiny/snapshots/" COMMIT) != NULL, "%s", a.out);
    cmd_result_free(&a);
    cmd_result_free(&b);
    struct cmd_result c = run_modelq("estimate acme/tiny@" COMMIT);
    cr_expect_eq(c.code, 0, "a commit names a snapshot: %s", c.err);
    cmd_result_free(&c);
    /* convert: the same bytes as from the folder, named after the repository */
    char out1[600], out2[600];
    snprintf(out1, sizeof out1, "%s/a.gguf", root);
    snprintf(out2, sizeof out2, "%s/b.gguf", root);
    struct cmd_result d = run_modelq("convert acme/tiny -o %s --type q8_0 --quiet", out1);
    cr_expect_eq(d.code, 0, "%s", d.err);
    cmd_result_free(&d);
    struct cmd_result i = run_modelq("inspect %s", out1);
    cr_expect(strstr(i.out, "general.name") && strstr(i.out, "\"tiny\""), "named after the repository");
    cmd_result_free(&i);
    /* HF_HUB_CACHE wins over HF_HOME */
    char hub[600];
    snprintf(hub, sizeof hub, "%s/hub", root);
    setenv("HF_HUB_CACHE", hub, 1);
    setenv("HF_HOME", "/nonexistent", 1);
    struct cmd_result e = run_modelq("inspect acme/tiny");
    cr_expect_eq(e.code, 0, "%s", e.err);
    cmd_result_free(&e);
    unsetenv("HF_HUB_CACHE");
    unsetenv("HF_HOME");
    (void)out2;
    remove_tree(root);
    free(root);
}

Test(hf_cache, each_missing_piece_is_one_line_naming_where_it_looked)
{
    char *root = make_temp_dir("hfc2");
    make_cache(root);
    setenv("HF_HOME", root, 1);
    unsetenv("HF_HUB_CACHE");
    struct {
        const char *spec, *fmt;
        int code;
    } cases[] = {
        {"acme/other", "modelq: error: acme/other: not a path, and not in the Hugging Face cache (looked for "
                       "%s/hub/models--acme--other, the cache from $HF_HOME/hub); modelq never downloads: fetch it "
                       "with huggingface-cli first\n", 4},
        {"acme/tiny@v3", "modelq: error: acme/tiny@v3: revision 'v3' is not in the cache (no "
                         "%s/hub/models--acme--tiny/refs/v3)\n", 4},
        {"acme/tiny@v2", "modelq: error: acme/tiny@v2: revision 'v2' points at snapshot "
                         "%s/hub/models--acme--tiny/snapshots/" COMMIT2 ", which is not in the cache\n", 4},
        {"acme/tiny@bad", "modelq: error: acme/tiny@bad: %s/hub/models--acme--tiny/refs/bad does not hold a "
                          "commit hash\n", 3},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char want[2048];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(want, sizeof want, cases[k].fmt, root); /* each format takes the cache root once */
#pragma GCC diagnostic pop
        struct cmd_result r = run_modelq("estimate %s", cases[k].spec);
        cr_expect_eq(r.code, cases[k].code, "%s: %d %s", cases[k].spec, r.code, r.err);
        cr_expect_str_eq(r.err, want, "%s", cases[k].spec);
        cmd_result_free(&r);
    }
    /* not a repository id: the plain missing-path error */
    struct cmd_result r = run_modelq("estimate no/such/path");
    cr_expect_eq(r.code, 4);
    cr_expect_str_eq(r.err, "modelq: error: no/such/path: cannot open: No such file or directory\n");
    cmd_result_free(&r);
    unsetenv("HF_HOME");
    remove_tree(root);
    free(root);
}
