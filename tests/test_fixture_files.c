/*
** test_fixture_files.c - the committed testdata/tiny-llama/ is exactly what tools/mkfixture.c
** writes today: same file set, same bytes (so the fixture is reproducible on this toolchain and
** nobody edited it by hand), plus the safetensors layout rules the fixture promises.
**
** Runs "$MODELQ_BUILD_DIR/mkfixture" into a fresh temporary directory.
*/
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run_cmd.h"

#define FIXTURE "testdata/tiny-llama"

static char tmpdir[] = "/tmp/modelq-fixture-XXXXXX";

/* Sorted names in a directory (without . and ..); returns the count. */
static size_t list_dir(const char *path, char names[][256], size_t cap)
{
    DIR *d = opendir(path);
    cr_assert_not_null(d, "cannot open %s", path);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        cr_assert_lt(n, cap, "too many entries in %s", path);
        snprintf(names[n++], 256, "%s", e->d_name);
    }
    closedir(d);
    qsort(names, n, 256, (int (*)(const void *, const void *))strcmp);
    return n;
}

/* Recursively asserts that `want` (committed) and `got` (regenerated) hold the same tree. */
static void compare_trees(const char *want, const char *got, int *files)
{
    char wa[64][256], gb[64][256];
    size_t na = list_dir(want, wa, 64), nb = list_dir(got, gb, 64);
    for (size_t i = 0; i < na || i < nb; i++) {
        cr_assert(i < na && i < nb && strcmp(wa[i], gb[i]) == 0,
                  "file sets differ in %s: committed has \"%s\", regenerated has \"%s\"", want, i < na ? wa[i] : "(none)",
                  i < nb ? gb[i] : "(none)");
        char *pw, *pg;
        cr_assert(asprintf(&pw, "%s/%s", want, wa[i]) > 0 && asprintf(&pg, "%s/%s", got, gb[i]) > 0);
        struct stat sw, sg;
        cr_assert(stat(pw, &sw) == 0 && stat(pg, &sg) == 0);
        if (S_ISDIR(sw.st_mode)) {
            cr_assert(S_ISDIR(sg.st_mode), "%s is a directory, %s is not", pw, pg);
            compare_trees(pw, pg, files);
            free(pw);
            free(pg);
            continue;
        }
        size_t lw, lg;
        char *cw = (char *)read_file_all(pw, &lw), *cg = (char *)read_file_all(pg, &lg);
        cr_assert(cw && cg, "cannot read %s or %s", pw, pg);
        size_t first = 0;
        while (first < lw && first < lg && cw[first] == cg[first]) first++;
        cr_assert(lw == lg && first == lw, "%s differs from the regenerated file (sizes %zu vs %zu, first difference at byte %zu); "
                  "rerun mkfixture into " FIXTURE " if the change is intended", pw, lw, lg, first);
        free(cw);
        free(cg);
        free(pw);
        free(pg);
        (*files)++;
    }
}

Test(fixture_files, regenerated_tree_is_byte_identical)
{
    const char *bdir = getenv("MODELQ_BUILD_DIR");
    cr_assert_not_null(bdir, "MODELQ_BUILD_DIR is not set (run through ctest)");
    cr_assert_not_null(mkdtemp(tmpdir));
    char out[4096], cmd[8192];
    snprintf(out, sizeof out, "%s/tiny-llama", tmpdir);
    snprintf(cmd, sizeof cmd, "'%s/mkfixture' '%s' > '%s/log' 2>&1", bdir, out, tmpdir);
    int rc = system(cmd);
    char logpath[4096];
    snprintf(logpath, sizeof logpath, "%s/log", tmpdir);
    size_t loglen = 0;
    char *log = (char *)read_file_all(logpath, &loglen);
    cr_assert(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "mkfixture failed:\n%s", log ? log : "");
    /* the tool's self-check printed its statistics (thresholds are enforced by its exit code) */
    cr_assert(log && strstr(log, "attention-logit std"), "mkfixture printed no statistics:\n%s", log ? log : "");
    free(log);
    int files = 0;
    compare_trees(FIXTURE, out, &files);
    cr_assert_eq(files, 13, "expected 13 files (5 top-level + 8 in sharded/), compared %d", files);
    remove_tree(tmpdir);
}

/* u64 LE at the file start = header length N; checks of the reference writer's layout. */
static void check_layout(const char *path, uint64_t *data_bytes)
{
    size_t len;
    char *p = (char *)read_file_all(path, &len);
    cr_assert_not_null(p, "cannot read %s", path);
    cr_assert_geq(len, 8);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)(unsigned char)p[i] << (8 * i);
    cr_assert_leq(n, len - 8, "%s: header length beyond the file", path);
    cr_assert_eq((8 + n) % 8, 0, "%s: data section does not start at a multiple of 8", path);
    const char *meta = "{\"__metadata__\":{\"format\":\"pt\"},\"";
    cr_assert(strncmp(p + 8, meta, strlen(meta)) == 0, "%s: header does not open with __metadata__ {\"format\":\"pt\"}", path);
    /* compact JSON closed by '}' then only spaces up to N */
    size_t end = 8 + (size_t)n;
    while (end > 8 && p[end - 1] == ' ') end--;
    cr_assert(end > 8 && p[end - 1] == '}' && (8 + n) - end < 8, "%s: header must end in '}' plus < 8 spaces", path);
    cr_assert_null(memchr(p + 8, '\n', end - 8), "%s: header JSON is not compact", path);
    /* tensor names appear in strictly increasing order and offsets are contiguous from 0 */
    char *hdr = strndup(p + 8, end - 8);
    cr_assert_not_null(hdr);
    char prev[256] = "";
    uint64_t expect = 0;
    for (const char *q = hdr + strlen(meta) - 1; q;) { /* q: the opening quote of a tensor name */
        const char *close = strchr(q + 1, '"');
        cr_assert_not_null(close);
        char name[256];
        size_t nl = (size_t)(close - q - 1);
        cr_assert_lt(nl, sizeof name);
        memcpy(name, q + 1, nl);
        name[nl] = '\0';
        cr_assert_gt(strcmp(name, prev), 0, "%s: tensors not sorted by name (\"%s\" after \"%s\")", path, name, prev);
        snprintf(prev, sizeof prev, "%s", name);
        const char *offs = strstr(close, "\"data_offsets\":[");
        cr_assert_not_null(offs);
        unsigned long long b, e;
        cr_assert_eq(sscanf(offs, "\"data_offsets\":[%llu,%llu]", &b, &e), 2);
        cr_assert_eq(b, expect, "%s: tensor %s starts at %llu, expected %llu", path, name, b, (unsigned long long)expect);
        expect = e;
        q = strstr(offs, "]},\"");
        if (q) q += 3;
    }
    cr_assert_eq(8 + n + expect, len, "%s: data section is not exactly covered", path);
    *data_bytes = expect;
    free(hdr);
    free(p);
}

Test(fixture_files, safetensors_follow_reference_writer_layout)
{
    uint64_t single = 0, sharded = 0, part;
    check_layout(FIXTURE "/model.safetensors", &single);
    for (int s = 1; s <= 3; s++) {
        char path[256];
        snprintf(path, sizeof path, FIXTURE "/sharded/model-%05d-of-00003.safetensors", s);
        check_layout(path, &part);
        sharded += part;
    }
    cr_assert_eq(single, sharded, "shards hold %llu bytes, the single file %llu", (unsigned long long)sharded,
                 (unsigned long long)single);
    size_t len;
    char *idx = (char *)read_file_all(FIXTURE "/sharded/model.safetensors.index.json", &len);
    cr_assert_not_null(idx);
    char want[64];
    snprintf(want, sizeof want, "\"total_size\": %llu\n", (unsigned long long)single);
    cr_assert_not_null(strstr(idx, want), "index total_size is not the tensor byte sum %llu", (unsigned long long)single);
    free(idx);
}
