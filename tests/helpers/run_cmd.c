/* run_cmd.c - see run_cmd.h. */
#include "run_cmd.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

uint8_t *read_file_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return buf;
}

bool files_equal(const char *a, const char *b)
{
    size_t la, lb;
    uint8_t *x = read_file_all(a, &la), *y = read_file_all(b, &lb);
    bool eq = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return eq;
}

cJSON *load_json(const char *path)
{
    char *text = (char *)read_file_all(path, NULL);
    cr_assert_not_null(text, "cannot read %s", path);
    cJSON *j = cJSON_Parse(text);
    free(text);
    cr_assert(cJSON_IsObject(j), "%s is not a JSON object", path);
    return j;
}

bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

struct cmd_result run_modelq(const char *fmt, ...)
{
    const char *bin = getenv("MODELQ_BIN");
    cr_assert_not_null(bin, "MODELQ_BIN not set (run through ctest)");
    char args[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    char out[] = "/tmp/modelq-run-out-XXXXXX", err[] = "/tmp/modelq-run-err-XXXXXX";
    close(mkstemp(out));
    close(mkstemp(err));
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "exec '%s' %s >'%s' 2>'%s' </dev/null", bin, args, out, err);
    int st = system(cmd);
    struct cmd_result r;
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? -WTERMSIG(st) : -1000;
    r.out = (char *)read_file_all(out, NULL);
    r.err = (char *)read_file_all(err, NULL);
    unlink(out);
    unlink(err);
    return r;
}

void cmd_result_free(struct cmd_result *r)
{
    free(r->out);
    free(r->err);
}

char *make_temp_dir(const char *tag)
{
    char *p = malloc(256);
    snprintf(p, 256, "/tmp/modelq-%s-XXXXXX", tag);
    cr_assert_not_null(mkdtemp(p));
    return p;
}

void remove_tree(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    cr_assert_eq(system(cmd), 0);
}

int count_entries_containing(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, needle)) n++;
    closedir(d);
    return n;
}

void run_shell(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

char *tree_snapshot(const char *dir)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && { find . -printf '%%p %%y %%s %%l\\n' | grep -v '^\\. ' | sort; "
             "find . -type f -exec sha256sum {} + | sort; }",
             dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 16, n = 0, k;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    while ((k = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (n + 1 == cap) {
            buf = realloc(buf, cap *= 2);
            cr_assert_not_null(buf);
        }
    }
    buf[n] = '\0';
    pclose(p);
    return buf;
}
