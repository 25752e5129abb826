/*
** test_output_safety.c - issue 18's output rules end to end: modelq never replaces an input file,
** a folder holding the input, a non-regular file or a user's folder; every refusal is one line,
** exit 2/4, before any data is read, and leaves every file around exactly as it was (a snapshot
** of the whole scratch tree - names, types, sizes, link targets, content hashes - before and
** after). Also: FIFO inputs fail at once, signals clean up (and ignored ones stay ignored), the
** reader's warnings reach convert, option values may be attached (-j2, --type=q8_0).
*/
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run_cmd.h"

#define MODEL "testdata/tiny-llama"

/* ---- scratch trees and their snapshots ---- */



/* A scratch folder holding a copy of the tiny model as T/ (with T/sharded/). */
static char *scratch(const char *tag)
{
    char *dir = make_temp_dir(tag);
    run_shell("cp -r " MODEL " '%s/T'", dir);
    return dir;
}

/* The run must fail with `code` and exactly the one line `line` ("modelq: error: ..."), and leave
** the scratch tree as it was. */
static void expect_refused(const char *dir, int code, const char *line, const char *args_fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void expect_refused(const char *dir, int code, const char *line, const char *args_fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, args_fmt);
    vsnprintf(args, sizeof args, args_fmt, ap);
    va_end(ap);
    char *before = tree_snapshot(dir);
    struct cmd_result r = run_modelq("%s", args);
    char *after = tree_snapshot(dir);
    cr_expect_eq(r.code, code, "%s: exit %d, want %d: %s", args, r.code, code, r.err);
    char want[4200];
    snprintf(want, sizeof want, "modelq: error: %s\n", line);
    cr_expect_str_eq(r.err, want, "%s", args);
    cr_expect_str_eq(after, before, "nothing changed on disk: %s", args);
    cmd_result_free(&r);
    free(before);
    free(after);
}

static void write_text(const char *path, const char *s)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(s, f);
    fclose(f);
}

static char line_buf[8][4200];
/* printf into one of a few rotating buffers (several messages per test) */
static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...)
{
    static int k;
    char *b = line_buf[k++ % 8];
    va_list ap;
    va_start(ap, f);
    vsnprintf(b, sizeof line_buf[0], f, ap);
    va_end(ap);
    return b;
}

/* ---- 1. --report ---- */

Test(output_safety, report_never_replaces_an_input_or_the_output)
{
    char *d = scratch("rep");
    const char *inputs[] = {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json",
                            "generation_config.json"};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        expect_refused(d, 2, fmt("%s/T/%s: the report would replace the input file %s/T/%s", d, inputs[i], d, inputs[i]),
                       "convert %s/T -o %s/out.gguf --type q8_0 --report %s/T/%s", d, d, d, inputs[i]);
    /* the output, spelled the same or otherwise */
    expect_refused(d, 2, fmt("%s/out.gguf: the report would replace the output %s/out.gguf", d, d),
                   "convert %s/T -o %s/out.gguf --type q8_0 --report %s/out.gguf", d, d, d);
    expect_refused(d, 2, fmt("%s/T/../out.gguf: the report would replace the output %s/out.gguf", d, d),
                   "convert %s/T -o %s/out.gguf --type q8_0 --report %s/T/../out.gguf", d, d, d);
    /* a shard of a sharded input, and the index */
    expect_refused(d, 2,
                   fmt("%s/T/sharded/model.safetensors.index.json: the report would replace the input file "
                       "%s/T/sharded/model.safetensors.index.json", d, d),
                   "convert %s/T/sharded -o %s/out.gguf --report %s/T/sharded/model.safetensors.index.json", d, d, d);
    /* inside a bitsandbytes output folder (it is moved into place after the report is planned) */
    run_shell("mkdir '%s/bnb'", d);
    expect_refused(d, 2, fmt("%s/bnb/r.json: the report cannot go inside the output folder %s/bnb", d, d),
                   "convert %s/T -o %s/bnb --type nf4 --report %s/bnb/r.json", d, d, d);
    /* a folder, a FIFO */
    run_shell("mkdir '%s/r.json' && mkfifo '%s/fifo.json'", d, d);
    expect_refused(d, 2, fmt("%s/r.json: the report is an existing folder, not a file name", d),
                   "convert %s/T -o %s/out.gguf --type q8_0 --report %s/r.json", d, d, d);
    expect_refused(d, 2, fmt("%s/fifo.json: the report is a FIFO; modelq only replaces regular files", d),
                   "convert %s/T -o %s/out.gguf --type q8_0 --report %s/fifo.json", d, d, d);
    /* control: a report beside the output is written, and an existing report is replaced */
    write_text(fmt("%s/ok.json", d), "old\n");
    struct cmd_result r = run_modelq("convert %s/T -o %s/out.gguf --type q8_0 --quiet --report %s/ok.json", d, d, d);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cJSON *j = load_json(fmt("%s/ok.json", d));
    cr_expect(cJSON_IsObject(cJSON_GetObjectItem(j, "stats")) || cJSON_GetObjectItem(j, "tensors"));
    cJSON_Delete(j);
    cr_expect_eq(count_entries_containing(d, "modelq-tmp"), 0);
    cmd_result_free(&r);
    remove_tree(d);
    free(d);
}

/* ---- 2. -o onto any input file ---- */

Test(output_safety, output_never_replaces_an_input_file)
{
    char *d = scratch("inp");
    const char *names[] = {"config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
                           "model.safetensors"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        expect_refused(d, 2, fmt("%s/T/%s: the output would replace the input file %s/T/%s", d, names[i], d, names[i]),
                       "convert %s/T -o %s/T/%s --format gguf --type q8_0", d, d, names[i]);
    const char *sharded[] = {"model.safetensors.index.json", "model-00002-of-00003.safetensors", "config.json",
                             "tokenizer.json"};
    for (size_t i = 0; i < sizeof sharded / sizeof sharded[0]; i++)
        expect_refused(d, 2,
                       fmt("%s/T/sharded/%s: the output would replace the input file %s/T/sharded/%s", d, sharded[i],
                           d, sharded[i]),
                       "convert %s/T/sharded -o %s/T/sharded/%s --format gguf", d, d, sharded[i]);
    /* through a symbolic link and a hard link: identity, not spelling */
    run_shell("ln -s T/config.json '%s/cfg-link.gguf' && ln '%s/T/tokenizer.json' '%s/tok-hard.gguf'", d, d, d);
    expect_refused(d, 2, fmt("%s/cfg-link.gguf: the output would replace the input file %s/T/config.json", d, d),
                   "convert %s/T -o %s/cfg-link.gguf --type q8_0", d, d);
    expect_refused(d, 2, fmt("%s/tok-hard.gguf: the output would replace the input file %s/T/tokenizer.json", d, d),
                   "convert %s/T -o %s/tok-hard.gguf --type q8_0", d, d);
    /* control: an earlier output inside the input folder may be replaced */
    struct cmd_result r = run_modelq("convert %s/T -o %s/T/model-q8_0.gguf --type q8_0 --quiet", d, d);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    r = run_modelq("convert %s/T -o %s/T/model-q8_0.gguf --type q4_0 --quiet", d, d);
    cr_expect_eq(r.code, 0, "an earlier output is replaced: %s", r.err);
    cmd_result_free(&r);
    remove_tree(d);
    free(d);
}

/* ---- 3.-5. bitsandbytes folders: links, ancestors, foreign files ---- */

Test(output_safety, folder_output_through_a_symlink_is_refused)
{
    char *d = scratch("lnk");
    /* v1 is a real earlier output (only modelq's files) plus the user's notes */
    struct cmd_result r = run_modelq("convert %s/T -o %s/v1 --type nf4 --quiet", d, d);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    run_shell("ln -s v1 '%s/latest'", d);
    expect_refused(d, 2,
                   fmt("%s/latest is a symbolic link (to v1): name the folder itself, or another path, as the output",
                       d),
                   "convert %s/T -o %s/latest --type nf4", d, d);
    write_text(fmt("%s/v1/NOTES.md", d), "mine\n");
    expect_refused(d, 2,
                   fmt("%s/latest is a symbolic link (to v1): name the folder itself, or another path, as the output",
                       d),
                   "convert %s/T -o %s/latest --type nf4 --force", d, d);
    remove_tree(d);
    free(d);
}

Test(output_safety, folder_output_holding_the_input_is_refused)
{
    char *d = scratch("anc");
    run_shell("mkdir -p '%s/a/b' && cp -r '%s/T' '%s/a/b/in'", d, d, d);
    expect_refused(d, 2, fmt("%s/a: the output would replace the folder holding the input (%s/a/b/in)", d, d),
                   "convert %s/a/b/in -o %s/a --type nf4", d, d);
    expect_refused(d, 2, fmt("%s/a/b/in: the output would replace the folder holding the input (%s/a/b/in)", d, d),
                   "convert %s/a/b/in -o %s/a/b/in --type nf4", d, d);
    expect_refused(d, 2, fmt("%s/a/b/in/..: the output cannot be '.', '..' or '/': name a new folder", d),
                   "convert %s/a/b/in -o %s/a/b/in/.. --type nf4", d, d);
    expect_refused(d, 2, fmt("%s/a/./: the output cannot be '.', '..' or '/': name a new folder", d),
                   "convert %s/a/b/in -o %s/a/./ --type nf4", d, d);
    /* by identity: a link to an ancestor is a link (refused as such), a bind-free other spelling is caught */
    expect_refused(d, 2, fmt("%s/a/b/../../a: the output would replace the folder holding the input (%s/a/b/in)", d, d),
                   "convert %s/a/b/in -o %s/a/b/../../a --type nf4 --force", d, d);
    remove_tree(d);
    free(d);
}

Test(output_safety, existing_folder_is_replaced_only_when_it_holds_modelq_files)
{
    char *d = scratch("rpl");
    struct cmd_result r = run_modelq("convert %s/T -o %s/out --type nf4 --quiet", d, d);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    /* only modelq's files: replaced (a different type, so the bytes change) */
    char *first = tree_snapshot(fmt("%s/out", d));
    r = run_modelq("convert %s/T -o %s/out --type fp4 --quiet", d, d);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    char *second = tree_snapshot(fmt("%s/out", d));
    cr_expect_str_neq(first, second, "the folder was replaced");
    free(first);
    free(second);
    /* the user's files: refused, naming them */
    write_text(fmt("%s/out/NOTES.md", d), "mine\n");
    write_text(fmt("%s/out/.env", d), "x\n");
    run_shell("mkdir '%s/out/sub' && touch '%s/out/sub/keep' '%s/out/a' '%s/out/b'", d, d, d, d);
    char *line = strdup(fmt("%s/out exists and holds what modelq did not write (", d));
    r = run_modelq("convert %s/T -o %s/out --type nf4", d, d);
    cr_expect_eq(r.code, 2, "%s", r.err);
    cr_expect(strncmp(r.err, "modelq: error: ", 15) == 0 && strncmp(r.err + 15, line, strlen(line)) == 0, "%s",
              r.err);
    cr_expect(strstr(r.err, " and 2 more): refusing to replace it; move those away, choose another output, or add "
                            "--force to replace the folder and everything in it\n") != NULL, "%s", r.err);
    cr_expect(file_exists(fmt("%s/out/NOTES.md", d)) && file_exists(fmt("%s/out/sub/keep", d)));
    cmd_result_free(&r);
    free(line);
    /* one foreign entry is named exactly */
    run_shell("rm -rf '%s/out/sub' '%s/out/a' '%s/out/b' '%s/out/.env'", d, d, d, d);
    expect_refused(d, 2,
                   fmt("%s/out exists and holds what modelq did not write (NOTES.md): refusing to replace it; move "
                       "those away, choose another output, or add --force to replace the folder and everything in it",
                       d),
                   "convert %s/T -o %s/out --type nf4", d, d);
    /* a downloaded checkpoint holds only names modelq writes too: its safetensors files, without
     * modelq's checksum record, mark it as the user's */
    run_shell("mkdir '%s/hf' && cp %s/model.safetensors %s/config.json %s/tokenizer.json '%s/hf/'", d, MODEL, MODEL, MODEL, d);
    expect_refused(d, 2,
                   fmt("%s/hf exists and holds what modelq did not write (model.safetensors (not written by modelq)): "
                       "refusing to replace it; move those away, choose another output, or add --force to replace "
                       "the folder and everything in it", d),
                   "convert %s/T -o %s/hf --type nf4", d, d);
    run_shell("cp -r %s/sharded '%s/hfs'", MODEL, d);
    r = run_modelq("convert %s/T -o %s/hfs --type nf4", d, d);
    cr_expect_eq(r.code, 2, "a sharded download is refused: %s", r.err);
    cr_expect(strstr(r.err, "model-00001-of-00003.safetensors (not written by modelq)") != NULL, "%s", r.err);
    cmd_result_free(&r);
    /* a file where the folder would go */
    write_text(fmt("%s/plain", d), "x\n");
    expect_refused(d, 2, fmt("%s/plain exists and is a regular file, not a folder", d),
                   "convert %s/T -o %s/plain --format bnb --type nf4", d, d);
    /* --force: replaced, the user's files and subfolders gone, no hidden leftovers */
    run_shell("mkdir -p '%s/out/sub/deeper' && touch '%s/out/sub/deeper/x' && ln -s /etc '%s/out/etc-link'", d, d, d);
    r = run_modelq("convert %s/T -o %s/out --type nf4 --force --quiet", d, d);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    cr_expect(!file_exists(fmt("%s/out/NOTES.md", d)) && !file_exists(fmt("%s/out/sub", d)));
    cr_expect(file_exists("/etc/hostname") || file_exists("/etc/passwd"), "a link inside is removed, not followed");
    cr_expect_eq(count_entries_containing(d, "modelq-tmp"), 0, "no hidden folder left");
    cr_expect(file_exists(fmt("%s/out/model.safetensors", d)) && file_exists(fmt("%s/out/config.json", d)));
    remove_tree(d);
    free(d);
}

/* ---- 6. non-regular outputs ---- */

Test(output_safety, non_regular_outputs_are_refused)
{
    char *d = scratch("nreg");
    run_shell("mkfifo '%s/fifo.gguf' && ln -s fifo.gguf '%s/link.gguf' && mkdir '%s/dir.gguf'", d, d, d);
    expect_refused(d, 2, fmt("%s/fifo.gguf: the output is a FIFO; modelq only replaces regular files", d),
                   "convert %s/T -o %s/fifo.gguf --type q8_0", d, d);
    expect_refused(d, 2,
                   fmt("%s/link.gguf: the output is a FIFO (through a symbolic link); modelq only replaces regular "
                       "files", d),
                   "convert %s/T -o %s/link.gguf --type q8_0", d, d);
    expect_refused(d, 2, fmt("%s/dir.gguf: the output is an existing folder, not a file name", d),
                   "convert %s/T -o %s/dir.gguf --type q8_0", d, d);
    struct stat before, after;
    cr_assert_eq(stat("/dev/null", &before), 0);
    struct cmd_result r = run_modelq("convert %s/T -o /dev/null --format gguf --type q8_0", d);
    cr_expect_eq(r.code, 2);
    cr_expect_str_eq(r.err, "modelq: error: /dev/null: the output is a character device; modelq only replaces "
                            "regular files\n");
    cmd_result_free(&r);
    cr_assert_eq(stat("/dev/null", &after), 0);
    cr_expect(S_ISCHR(after.st_mode) && after.st_rdev == before.st_rdev && after.st_ino == before.st_ino);
    remove_tree(d);
    free(d);
}

/* ---- 21. refused before the data pass ---- */

Test(output_safety, bad_output_paths_fail_before_any_data_is_read)
{
    char *d = scratch("early");
    expect_refused(d, 2, fmt("%s/x/: the output names a folder; give a file name", d),
                   "convert %s/T -o %s/x/ --format gguf --type q8_0", d, d);
    expect_refused(d, 4, fmt("%s/nope/x.gguf: cannot write the output there: folder %s/nope: No such file or directory",
                             d, d),
                   "convert %s/T -o %s/nope/x.gguf --type q8_0", d, d);
    char name[256];
    memset(name, 'a', sizeof name);
    /* NAME_MAX 255 - 32 for the temporary name: 223 is the longest accepted */
    snprintf(name + 218, 6, ".gguf");
    struct cmd_result r = run_modelq("convert %s/T -o %s/%s --type q8_0 --quiet", d, d, name);
    cr_expect_eq(r.code, 0, "223-byte names are accepted: %s", r.err);
    cmd_result_free(&r);
    memset(name, 'a', sizeof name);
    snprintf(name + 220, 6, ".gguf");
    expect_refused(d, 2,
                   fmt("%s/%s: the name of the output is 225 bytes; at most 223 leave room for the temporary name "
                       "beside it", d, name),
                   "convert %s/T -o %s/%s --type q8_0", d, d, name);
    remove_tree(d);
    free(d);
}

/* Mounts a tmpfs (root only; else the test says "skipped"). */
static bool mount_tmpfs(const char *dir, const char *opts)
{
    if (mount("tmpfs", dir, "tmpfs", 0, opts) == 0) return true;
    return false;
}

Test(output_safety, read_only_and_full_filesystems_fail_before_the_data_pass)
{
    char *d = scratch("fs");
    char ro[600], small[600];
    snprintf(ro, sizeof ro, "%s/ro", d);
    snprintf(small, sizeof small, "%s/small", d);
    run_shell("mkdir '%s' '%s'", ro, small);
    if (!mount_tmpfs(ro, "size=1m")) {
        int e = errno;
        remove_tree(d);
        free(d);
        cr_skip_test("skipped: cannot mount a tmpfs here (%s)", strerror(e));
    }
    cr_assert_eq(mount("tmpfs", ro, "tmpfs", MS_REMOUNT | MS_RDONLY, "size=1m"), 0);
    expect_refused(d, 4,
                   fmt("%s/x.gguf: cannot write the output into %s: the folder is on a read-only filesystem", ro, ro),
                   "convert %s/T -o %s/x.gguf --type q8_0", d, ro);
    expect_refused(d, 4,
                   fmt("%s/out: cannot write the output into %s: the folder is on a read-only filesystem", ro, ro),
                   "convert %s/T -o %s/out --type nf4", d, ro);
    umount(ro);
    /* nf4 data files of the tiny model are 1,072,496 bytes with 64-byte blocks; the side files
     * (tokenizer, config) add more: a filesystem that holds the data but not the side files is refused
     * up front (before: the failure came after the data pass) */
    cr_assert(mount_tmpfs(small, "size=1100k"));
    struct cmd_result r = run_modelq("convert %s/T -o %s/out --type nf4", d, small);
    cr_expect_eq(r.code, 4, "%s", r.err);
    cr_expect(strstr(r.err, "not enough free space") != NULL, "%s", r.err);
    cmd_result_free(&r);
    char *left = tree_snapshot(small);
    cr_expect_str_eq(left, "", "nothing left on the small filesystem: %s", left);
    free(left);
    umount(small);
    remove_tree(d);
    free(d);
}

/* ---- 18. FIFOs as inputs ---- */

/* Runs modelq under `timeout 20` (a FIFO that blocks would hang the suite otherwise). */
static struct cmd_result run_bounded(const char *args)
{
    char a[4200];
    snprintf(a, sizeof a, "%s", args);
    return run_modelq("%s", a);
}

Test(output_safety, fifo_inputs_fail_at_once)
{
    char *d = scratch("fifo");
    run_shell("mkfifo '%s/in.safetensors' && mkdir '%s/F' '%s/C' '%s/K' && cp %s/config.json '%s/F/' && mkfifo "
       "'%s/F/model.safetensors'", d, d, d, d, MODEL, d, d);
    run_shell("cp %s/model.safetensors '%s/C/' && mkfifo '%s/C/config.json'", MODEL, d, d);
    run_shell("cp -r %s/sharded '%s/S' && rm '%s/S/model-00002-of-00003.safetensors' && mkfifo "
       "'%s/S/model-00002-of-00003.safetensors'", MODEL, d, d, d);
    run_shell("cp %s/model.safetensors %s/config.json '%s/K/' && mkfifo '%s/K/tokenizer.json'", MODEL, MODEL, d, d);
    struct {
        const char *args, *err;
    } cases[] = {
        {"convert %s/in.safetensors -o %s/o.gguf", "%s/in.safetensors: not a regular file (a FIFO)"},
        {"inspect %s/in.safetensors", "%s/in.safetensors: not a regular file (a FIFO)"},
        {"convert %s/F -o %s/o.gguf", "%s/F/model.safetensors: not a regular file (a FIFO)"},
        {"estimate %s/C", "%s/C/config.json: not a regular file (a FIFO)"},
        {"convert %s/S -o %s/o.gguf", "%s/S/model-00002-of-00003.safetensors: not a regular file (a FIFO)"},
        {"convert %s/K -o %s/o.gguf", "%s/K/tokenizer.json: not a regular file (a FIFO)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[1024], want[1024], line[1100];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(args, sizeof args, cases[i].args, d, d); /* the table's formats take the folder (twice) */
        snprintf(want, sizeof want, cases[i].err, d);
#pragma GCC diagnostic pop
        snprintf(line, sizeof line, "modelq: error: %s\n", want);
        alarm(60); /* a blocking open would hang: the alarm ends the test instead */
        struct cmd_result r = run_bounded(args);
        alarm(0);
        cr_expect(r.code == 3 || r.code == 4, "%s: exit %d %s", args, r.code, r.err);
        cr_expect_str_eq(r.err, line, "%s", args);
        cmd_result_free(&r);
    }
    cr_expect(!file_exists(fmt("%s/o.gguf", d)));
    remove_tree(d);
    free(d);
}

/* ---- 19. the reader's warnings ---- */

Test(output_safety, convert_prints_the_readers_warnings)
{
    char *d = scratch("warn");
    char idx[600];
    snprintf(idx, sizeof idx, "%s/T/sharded/model.safetensors.index.json", d);
    cJSON *j = load_json(idx);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "metadata"), "total_size", cJSON_CreateNumber(12345));
    char *text = cJSON_Print(j);
    write_text(idx, text);
    free(text);
    cJSON_Delete(j);
    struct cmd_result r = run_modelq("convert %s/T/sharded -o %s/o.gguf --type q8_0 --quiet", d, d);
    cr_expect_eq(r.code, 0, "%s", r.err);
    char want[1024];
    snprintf(want, sizeof want,
             "modelq: warning: %s: metadata.total_size is 12345 but the shards hold 2755072 tensor bytes\n", idx);
    cr_expect_str_eq(r.err, want);
    cmd_result_free(&r);
    struct cmd_result ins = run_modelq("inspect %s/T/sharded", d);
    cr_expect(strstr(ins.err, want) != NULL, "inspect says the same: %s", ins.err);
    cmd_result_free(&ins);
    remove_tree(d);
    free(d);
}

/* ---- 20, 23. signals ---- */

/* Starts a slow conversion (test hooks), with `ignored` set to SIG_IGN and a file-size limit
** `fsize` (0 = none) in the child; waits for its temporary file unless `no_wait`. */
static pid_t start_slow(const char *dir, const char *out, int ignored, rlim_t fsize, int err_fd)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        setenv("MODELQ_TEST_CHUNK_DELAY_MS", "20", 1);
        setenv("MODELQ_CHUNK_ELEMS", "2048", 1);
        if (ignored) signal(ignored, SIG_IGN);
        if (fsize) {
            struct rlimit rl = {fsize, fsize};
            setrlimit(RLIMIT_FSIZE, &rl);
        }
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1);
        dup2(err_fd >= 0 ? err_fd : nul, 2);
        execl(getenv("MODELQ_BIN"), "modelq", "convert", MODEL, "-o", out, "--type", "q4_0", "-j", "1", (char *)NULL);
        _exit(127);
    }
    (void)dir;
    return pid;
}

static void wait_for_tmp(const char *dir)
{
    for (int i = 0; i < 1000 && count_entries_containing(dir, "modelq-tmp") == 0; i++) usleep(5000);
    cr_assert_eq(count_entries_containing(dir, "modelq-tmp"), 1, "the temporary file appears while running");
    usleep(50000);
}

Test(output_safety, terminating_signals_remove_the_temporary_output)
{
    int sigs[] = {SIGQUIT, SIGUSR1, SIGALRM, SIGXFSZ, SIGHUP};
    for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++) {
        char *dir = make_temp_dir("sigs");
        char out[512], errp[600];
        snprintf(out, sizeof out, "%s/model.gguf", dir);
        snprintf(errp, sizeof errp, "%s/../%s.err", dir, strrchr(dir, '/') + 1);
        write_text(out, "previous\n");
        int efd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        pid_t pid = start_slow(dir, out, 0, 0, efd);
        close(efd);
        wait_for_tmp(dir);
        kill(pid, sigs[k]);
        int st;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == sigs[k], "signal %d: dies of it (re-raised)", sigs[k]);
        cr_expect_eq(count_entries_containing(dir, "modelq-tmp"), 0, "signal %d: temporary file removed", sigs[k]);
        char *text = (char *)read_file_all(out, NULL);
        cr_expect_str_eq(text, "previous\n");
        free(text);
        char *e = (char *)read_file_all(errp, NULL);
        if (sigs[k] == SIGXFSZ)
            cr_expect_str_eq(e, "modelq: error: the output exceeds the file size limit (ulimit -f); the temporary "
                                "output was removed\n");
        free(e);
        unlink(errp);
        remove_tree(dir);
        free(dir);
    }
}

Test(output_safety, an_ignored_sighup_stays_ignored)
{
    char *dir = make_temp_dir("nohup");
    char out[512];
    snprintf(out, sizeof out, "%s/model.gguf", dir);
    pid_t pid = start_slow(dir, out, SIGHUP, 0, -1);
    wait_for_tmp(dir);
    kill(pid, SIGHUP);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "nohup: the run goes on and finishes (status %d)", st);
    cr_expect(file_exists(out));
    struct cmd_result r = run_modelq("verify %s --quiet", out);
    cr_expect_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    remove_tree(dir);
    free(dir);
}

Test(output_safety, a_file_size_limit_is_reported_before_the_data_pass)
{
    char *dir = make_temp_dir("fsize");
    char out[512];
    snprintf(out, sizeof out, "%s/model.gguf", dir);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = start_slow(dir, out, 0, 100000, p[1]);
    close(p[1]);
    char buf[1024] = {0};
    size_t n = 0;
    ssize_t k;
    while (n < sizeof buf - 1 && (k = read(p[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)k;
    close(p[0]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 4, "exit 4, status %d: %s", st, buf);
    cr_expect(strstr(buf, "over this process's file size limit of 100000 bytes (ulimit -f)") != NULL, "%s", buf);
    cr_expect_eq(count_entries_containing(dir, "modelq-tmp"), 0);
    cr_expect(!file_exists(out));
    remove_tree(dir);
    free(dir);
}

/* ---- 24. attached option values ---- */

Test(output_safety, attached_option_values)
{
    char *d = make_temp_dir("opts");
    struct cmd_result a = run_modelq("convert " MODEL " -o %s/a.gguf --type q8_0 -j 2 --quiet", d);
    struct cmd_result b = run_modelq("convert " MODEL " -o%s/b.gguf -tq8_0 -j2 --quiet", d);
    struct cmd_result c = run_modelq("convert " MODEL " --output=%s/c.gguf --type=q8_0 --threads=2 --quiet", d);
    cr_expect(a.code == 0 && b.code == 0 && c.code == 0, "%s %s %s", a.err, b.err, c.err);
    cr_expect(files_equal(fmt("%s/a.gguf", d), fmt("%s/b.gguf", d)));
    cr_expect(files_equal(fmt("%s/a.gguf", d), fmt("%s/c.gguf", d)));
    cmd_result_free(&a);
    cmd_result_free(&b);
    cmd_result_free(&c);
    struct cmd_result e = run_modelq("convert " MODEL " -o %s/e.gguf --pure=yes", d);
    cr_expect_eq(e.code, 2);
    cr_expect_str_eq(e.err, "modelq convert: --pure takes no value ('--pure=yes') (see 'modelq convert --help')\n");
    cmd_result_free(&e);
    struct cmd_result f = run_modelq("convert " MODEL " -o %s/f.gguf -j0", d);
    cr_expect_eq(f.code, 2, "%s", f.err);
    cmd_result_free(&f);
    cr_expect(!file_exists(fmt("%s/e.gguf", d)) && !file_exists(fmt("%s/f.gguf", d)));
    remove_tree(d);
    free(d);
}
