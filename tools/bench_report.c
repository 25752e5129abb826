/*
** bench_report - `modelq report` on a big random checkpoint: wall time, CPU time and peak RSS of
** the child, beside the same types measured by `modelq convert --dry-run --stats` (what the
** report runs once per type), to show the report streams: its peak RSS stays that of a dry run
** plus the sample and the HTML text, whatever the model size.
**
** Usage: bench_report [--dir DIR] [--preset issue|256m] [--modelq PATH] [--types T1,T2,...] [-j N]
**   DIR     work folder (default /tmp/modelq-bench); the model is DIR/model-PRESET, made by
**           mkbigmodel (next to this tool) unless DIR/model-PRESET/.mkbigmodel exists (as
**           bench_convert makes it). The report goes to DIR/report.html.
**   preset  256m (default, 253 MB) or issue (1.75 GB); see tools/mkbigmodel.c.
**   types   default q8_0,q4_0,nf4; -j N is passed on (default 2).
** Children are started with fork/exec and reaped with wait4 (ru_maxrss: the child's peak RSS).
** Exit status: 0 when every run succeeded.
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "devutil.h"




/* A tool next to this one (argv0's folder). */
static void sibling(const char *argv0, const char *name, char *out, size_t cap)
{
    const char *slash = strrchr(argv0, '/');
    snprintf(out, cap, "%.*s%s", slash ? (int)(slash - argv0 + 1) : 0, argv0, name);
}

static void row(const char *what, const struct dev_child *r)
{
    printf("%-40s %8.2f %8.2f %10.1f %s\n", what, r->wall, r->cpu, (double)r->maxrss_kib / 1024.0,
           r->status == 0 ? "ok" : "FAILED");
}

int main(int argc, char **argv)
{
    const char *dir = "/tmp/modelq-bench", *preset = "256m", *types = "q8_0,q4_0,nf4", *jobs = "2";
    char modelq[PATH_MAX] = "", mk[PATH_MAX];
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--dir") == 0 && v) dir = argv[++i];
        else if (strcmp(argv[i], "--preset") == 0 && v) preset = argv[++i];
        else if (strcmp(argv[i], "--types") == 0 && v) types = argv[++i];
        else if (strcmp(argv[i], "-j") == 0 && v) jobs = argv[++i];
        else if (strcmp(argv[i], "--modelq") == 0 && v) snprintf(modelq, sizeof modelq, "%s", argv[++i]);
        else {
            fprintf(stderr, "usage: bench_report [--dir DIR] [--preset issue|256m] [--modelq PATH] [--types T,...] "
                            "[-j N]\n");
            return 2;
        }
    }
    if (!modelq[0]) sibling(argv[0], "modelq", modelq, sizeof modelq);
    sibling(argv[0], "mkbigmodel", mk, sizeof mk);
    char model[PATH_MAX], marker[PATH_MAX + 16], html[PATH_MAX];
    snprintf(model, sizeof model, "%s/model-%s", dir, preset);
    snprintf(marker, sizeof marker, "%s/.mkbigmodel", model);
    snprintf(html, sizeof html, "%s/report.html", dir);
    mkdir(dir, 0755);
    if (access(marker, R_OK) != 0) {
        char *mkargv[] = {mk, model, "--preset", (char *)preset, NULL};
        struct dev_child r = dev_run_child(mkargv, 1, "bench_report");
        if (r.status != 0) {
            fprintf(stderr, "bench_report: mkbigmodel failed\n");
            return 1;
        }
    }
    printf("model %s, types %s, -j %s\n", model, types, jobs);
    printf("%-40s %8s %8s %10s\n", "run", "wall s", "cpu s", "peak MiB");
    int bad = 0;
    char list[256];
    snprintf(list, sizeof list, "%s", types);
    for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
        char *cargv[] = {modelq, "convert", model, "--dry-run", "--stats", "-q", "--type", t, "-j", (char *)jobs,
                          "--no-vocab", NULL};
        struct dev_child r = dev_run_child(cargv, 1, "bench_report");
        char what[96];
        snprintf(what, sizeof what, "convert --dry-run --stats --type %s", t);
        row(what, &r);
        bad |= r.status != 0;
    }
    char *rargv[] = {modelq, "report", model, "--type", (char *)types, "-j", (char *)jobs, "-o", html, "--quiet", NULL};
    struct dev_child r = dev_run_child(rargv, 1, "bench_report");
    row("report (all types)", &r);
    bad |= r.status != 0;
    struct stat st;
    if (stat(html, &st) == 0) printf("report: %s, %lld bytes\n", html, (long long)st.st_size);
    return bad;
}
