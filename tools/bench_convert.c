/*
** bench_convert - end-to-end `modelq convert` on a big random checkpoint: wall time, input GB/s,
** CPU time and peak RSS of the child, compared with copying the same bytes (`cat IN > OUT && sync`)
** in the same run.
**
** Usage: bench_convert [--dir DIR] [--preset issue|256m] [--modelq PATH] [--types T1,T2,...]
**                      [-j N] [--repeat N] [--keep] [--lora-rank N] [--imatrix]
**   DIR       work folder (default /tmp/modelq-bench). The model goes to DIR/model-PRESET and is
**             made by mkbigmodel (next to this tool) unless DIR/model-PRESET/.mkbigmodel shows it
**             was already made with the same options. Outputs go to DIR/out-TYPE.gguf and are
**             deleted after measuring unless --keep.
**   preset    issue (default: hidden 4096, ffn 14336, 4 layers, 32/8 heads, vocab 512,
**             1.75 GB) or 256m (253 MB); see tools/mkbigmodel.c.
**   modelq    the CLI to run (default: modelq next to this tool).
**   types     default q8_0,q4_0,iq4_nl,f16,q4_K; -j N is passed to convert (default 2).
**   repeat    runs of each row (default 1); the fastest is shown, with the largest peak RSS.
**   --lora-rank N  also run every type with a random rank-N F32 adapter on every *_proj weight merged
**             in (`convert --lora`; made by mklora into DIR/lora-rN): rows "TYPE+lora", whose
**             "x copy" column is then the ratio to the same type without the adapter.
**   --imatrix also run every type with an importance matrix (`convert --imatrix`): rows
**             "TYPE+imx", "x copy" again the ratio to the same type without it. The imatrix
**             (DIR/imatrix-PRESET.gguf, random log-normal importances for every matrix) is written
**             by mkimatrix from a q8_0 conversion of the model (llama-imatrix names entries by
**             the GGUF tensor names), made once and reused.
**
** Method: the input is read once before every run so it is in the page cache (the first read's
** speed is printed); the copy baseline runs `sh -c 'cat IN... > OUT && sync'`; each conversion runs
** `modelq convert MODEL -o OUT --type T -j N --no-vocab` (the random model has no tokenizer; stdout to /dev/null, stderr shown) and is followed
** by a timed sync(2), because the baseline includes one. A second copy row, "cat", runs the copy
** without sync and times the sync apart, as for the conversions: it shows how much of the
** baseline is write-back to disk. Children are started with fork/exec and
** reaped with wait4, whose rusage gives CPU time and ru_maxrss (peak RSS of the child and of
** its own waited-for children). Columns:
**   wall s      child's wall time          sync s    the sync after it (convert rows)
**   in GB/s     input bytes (all *.safetensors) / wall, GB = 1e9 bytes
**   cpu s       user + system time          peak MiB  ru_maxrss
**   out MB      output file size            x copy    (wall + sync) / (cat + sync wall)
** Exit status: 0 when every conversion succeeded, 1 otherwise (each failure is reported).
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "devutil.h"

#define MAX_INPUTS 64
#define MAX_TYPES 16




static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Reads a file to the end (page-cache warm-up); returns bytes read. */
static uint64_t read_all(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    static char buf[1 << 20];
    uint64_t total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) total += (uint64_t)n;
    close(fd);
    return total;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The *.safetensors files of dir, sorted; returns their count. */
static int list_inputs(const char *dir, char *paths[MAX_INPUTS])
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < MAX_INPUTS) {
        size_t len = strlen(e->d_name);
        if (len > 12 && strcmp(e->d_name + len - 12, ".safetensors") == 0) {
            size_t need = strlen(dir) + 1 + len + 1;
            paths[n] = malloc(need);
            if (!paths[n]) abort();
            memcpy(paths[n], dir, strlen(dir));
            paths[n][strlen(dir)] = '/';
            memcpy(paths[n] + strlen(dir) + 1, e->d_name, len + 1);
            n++;
        }
    }
    closedir(d);
    qsort(paths, (size_t)n, sizeof paths[0], cmp_str);
    return n;
}

/* First line that `mkbigmodel DIR --preset P --dry-run` prints: the option line of the marker. */
static int spec_line(const char *mkbig, const char *dir, const char *preset, char *line, size_t len)
{
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "'%s' '%s' --preset '%s' --dry-run", mkbig, dir, preset);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char buf[512] = "";
    int ok = fgets(buf, sizeof buf, p) != NULL;
    int st = pclose(p);
    if (!ok || st != 0 || strncmp(buf, "mkbigmodel: ", 12) != 0) return -1;
    snprintf(line, len, "%s", buf + 12);
    return 0;
}

static int same_marker(const char *dir, const char *line)
{
    char path[PATH_MAX + 16], buf[512] = "";
    snprintf(path, sizeof path, "%s/.mkbigmodel", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int ok = fgets(buf, sizeof buf, f) != NULL;
    fclose(f);
    return ok && strcmp(buf, line) == 0;
}

struct measured {
    struct dev_child r; /* the fastest run (wall + sync); maxrss is the largest of all runs */
    double sync_s;         /* the timed sync after that run, -1 when not timed */
    uint64_t out_bytes;
};

/* Runs argv `repeats` times, each time with no file `out` left from before, dirty pages flushed
** and the inputs re-read into the page cache; times a sync(2) after the child when time_sync.
** Stops at the first failure. Deletes `out` afterwards unless keep. */
static struct measured measure(char *const argv[], const char *out, int keep, int time_sync, int repeats,
                               char *const inputs[], int n_in)
{
    struct measured best = {{-1, 0, 0, 0}, -1, 0};
    long maxrss = 0;
    for (int rep = 0; rep < repeats; rep++) {
        unlink(out);
        sync();
        for (int i = 0; i < n_in; i++) read_all(inputs[i]);
        struct dev_child r = dev_run_child(argv, 1, "bench_convert");
        double sync_s = -1;
        if (time_sync) {
            double s0 = dev_now();
            sync();
            sync_s = dev_now() - s0;
        }
        if (r.maxrss_kib > maxrss) maxrss = r.maxrss_kib;
        double total = r.wall + (sync_s > 0 ? sync_s : 0);
        if (rep == 0 || r.status != 0 || total < best.r.wall + (best.sync_s > 0 ? best.sync_s : 0)) {
            best.r = r;
            best.sync_s = sync_s;
            best.out_bytes = file_size(out);
        }
        if (r.status != 0) break;
    }
    best.r.maxrss_kib = maxrss;
    if (!keep) unlink(out);
    return best;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_convert [--dir DIR] [--preset issue|256m] [--modelq PATH] [--types T1,T2,...] "
                    "[-j N] [--repeat N] [--keep] [--lora-rank N] [--imatrix]\n");
    exit(2);
}

static void print_row(const char *name, const struct dev_child *r, double sync_s, uint64_t in_bytes,
                      uint64_t out_bytes, double copy_wall)
{
    char sync_col[16] = "-", ratio[16] = "-", gbs[16] = "-";
    if (sync_s >= 0) snprintf(sync_col, sizeof sync_col, "%.2f", sync_s);
    if (r->status == 0) { /* a failed run's speed means nothing */
        snprintf(gbs, sizeof gbs, "%.2f", (double)in_bytes / 1e9 / r->wall);
        if (copy_wall > 0) snprintf(ratio, sizeof ratio, "%.2f", (r->wall + (sync_s > 0 ? sync_s : 0)) / copy_wall);
    }
    printf("%-10s %5d %8.2f %7s %8s %7.2f %9.1f %9.1f %7s\n", name, r->status, r->wall, sync_col, gbs, r->cpu,
           (double)r->maxrss_kib / 1024.0, (double)out_bytes / 1e6, ratio);
    fflush(stdout);
}

/* what every conversion row shares */
struct bench_ctx {
    const char *modelq, *model, *dir, *jobs;
    int keep, repeats;
    char *const *inputs;
    int n_in;
    uint64_t in_bytes;
};

/*
** One conversion row: `modelq convert MODEL [FLAG VALUE] -o DIR/out-TYPE[-TAG].gguf --type TYPE -j N
** --no-vocab`, printed as "TYPE" or "TYPE+TAG" with "x copy" relative to `baseline` (wall + sync).
** Returns the child's status; *wall_sync (may be NULL) gets this run's wall + sync (0 on failure).
*/
static int convert_row(const struct bench_ctx *b, const char *type, const char *flag, const char *value,
                       const char *tag, double baseline, double *wall_sync)
{
    char out[PATH_MAX + 64], name[64];
    snprintf(out, sizeof out, "%s/out-%s%s%s.gguf", b->dir, type, tag ? "-" : "", tag ? tag : "");
    snprintf(name, sizeof name, "%s%s%s", type, tag ? "+" : "", tag ? tag : "");
    char *argv[16];
    int k = 0;
    argv[k++] = (char *)b->modelq;
    argv[k++] = "convert";
    argv[k++] = (char *)b->model;
    if (flag) {
        argv[k++] = (char *)flag;
        argv[k++] = (char *)value;
    }
    char *rest[] = {"-o", out, "--type", (char *)type, "-j", (char *)b->jobs, "--no-vocab", NULL};
    for (int i = 0; rest[i]; i++) argv[k++] = rest[i];
    argv[k] = NULL;
    struct measured m = measure(argv, out, b->keep, 1, b->repeats, b->inputs, b->n_in);
    print_row(name, &m.r, m.sync_s, b->in_bytes, m.out_bytes, baseline);
    if (wall_sync) *wall_sync = m.r.status == 0 ? m.r.wall + (m.sync_s > 0 ? m.sync_s : 0) : 0;
    return m.r.status;
}

int main(int argc, char **argv)
{
    const char *dir = "/tmp/modelq-bench", *preset = "issue", *modelq = NULL, *types_arg = "q8_0,q4_0,iq4_nl,f16,q4_K";
    const char *jobs = "2";
    int keep = 0, repeats = 1, lora_rank = 0, with_imatrix = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--dir") == 0 && v) dir = v, i++;
        else if (strcmp(a, "--preset") == 0 && v) preset = v, i++;
        else if (strcmp(a, "--modelq") == 0 && v) modelq = v, i++;
        else if (strcmp(a, "--types") == 0 && v) types_arg = v, i++;
        else if (strcmp(a, "-j") == 0 && v) jobs = v, i++;
        else if (strcmp(a, "--keep") == 0) keep = 1;
        else if (strcmp(a, "--repeat") == 0 && v && atoi(v) > 0) repeats = atoi(v), i++;
        else if (strcmp(a, "--lora-rank") == 0 && v && atoi(v) > 0) lora_rank = atoi(v), i++;
        else if (strcmp(a, "--imatrix") == 0) with_imatrix = 1;
        else usage();
    }
    char self[PATH_MAX], tooldir[PATH_MAX], mkbig[PATH_MAX + 16], modelq_buf[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        perror("bench_convert: /proc/self/exe");
        return 1;
    }
    self[n] = 0;
    snprintf(tooldir, sizeof tooldir, "%s", self);
    char *slash = strrchr(tooldir, '/');
    if (slash) *slash = 0;
    snprintf(mkbig, sizeof mkbig, "%s/mkbigmodel", tooldir);
    if (!modelq) {
        snprintf(modelq_buf, sizeof modelq_buf, "%s/modelq", tooldir);
        modelq = modelq_buf;
    }
    if (access(modelq, X_OK) != 0) {
        fprintf(stderr, "bench_convert: no modelq binary at %s (use --modelq PATH)\n", modelq);
        return 1;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench_convert: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }

    /* 1. the model, made once per option set */
    char model[PATH_MAX], line[512];
    snprintf(model, sizeof model, "%s/model-%s", dir, preset);
    if (spec_line(mkbig, model, preset, line, sizeof line) != 0) {
        fprintf(stderr, "bench_convert: %s --preset %s --dry-run failed (unknown preset?)\n", mkbig, preset);
        return 1;
    }
    const int model_reused = same_marker(model, line);
    if (model_reused) {
        printf("bench_convert: reusing %s\n", model);
    } else {
        char *mk_argv[] = {mkbig, model, "--preset", (char *)preset, NULL};
        struct dev_child r = dev_run_child(mk_argv, 0, "bench_convert");
        if (r.status != 0) {
            fprintf(stderr, "bench_convert: mkbigmodel failed (status %d)\n", r.status);
            return 1;
        }
    }
    char *inputs[MAX_INPUTS];
    int n_in = list_inputs(model, inputs);
    uint64_t in_bytes = 0;
    for (int i = 0; i < n_in; i++) in_bytes += file_size(inputs[i]);
    if (n_in == 0 || in_bytes == 0) {
        fprintf(stderr, "bench_convert: no .safetensors in %s\n", model);
        return 1;
    }
    double t0 = dev_now();
    for (int i = 0; i < n_in; i++) read_all(inputs[i]);
    double warm = dev_now() - t0;
    printf("bench_convert: input %s: %d file(s), %" PRIu64 " bytes (%.3f GB); first read %.2f GB/s\n", model, n_in,
           in_bytes, (double)in_bytes / 1e9, (double)in_bytes / 1e9 / warm);
    printf("bench_convert: %s, convert -j %s, %ld online CPUs\n\n", modelq, jobs, sysconf(_SC_NPROCESSORS_ONLN));
    printf("%-10s %5s %8s %7s %8s %7s %9s %9s %7s\n", "run", "exit", "wall s", "sync s", "in GB/s", "cpu s",
           "peak MiB", "out MB", "x copy");

    /* 2. the copy baseline: with the sync inside the child (the reference), then with the sync
    ** timed apart like the conversions, which shows how much of it is write-back to disk */
    char out[PATH_MAX + 32];
    snprintf(out, sizeof out, "%s/out-copy.bin", dir);
    char *cat_argv[MAX_INPUTS + 8];
    int k = 0;
    cat_argv[k++] = "/bin/sh";
    cat_argv[k++] = "-c";
    cat_argv[k++] = "out=$1; shift; cat \"$@\" > \"$out\" && sync";
    cat_argv[k++] = "sh";
    cat_argv[k++] = out;
    for (int i = 0; i < n_in; i++) cat_argv[k++] = inputs[i];
    cat_argv[k] = NULL;
    struct measured copy = measure(cat_argv, out, 0, 0, repeats, inputs, n_in);
    double copy_wall = copy.r.status == 0 ? copy.r.wall : 0;
    print_row("cat+sync", &copy.r, -1, in_bytes, copy.out_bytes, copy_wall);
    cat_argv[2] = "out=$1; shift; cat \"$@\" > \"$out\"";
    struct measured plain = measure(cat_argv, out, 0, 1, repeats, inputs, n_in);
    print_row("cat", &plain.r, plain.sync_s, in_bytes, plain.out_bytes, copy_wall);

    /* the adapter for the +lora rows */
    char lora_dir[PATH_MAX + 32] = "";
    if (lora_rank) {
        char mklora[PATH_MAX + 16], rank_s[16];
        snprintf(mklora, sizeof mklora, "%s/mklora", tooldir);
        snprintf(lora_dir, sizeof lora_dir, "%s/lora-r%d", dir, lora_rank);
        snprintf(rank_s, sizeof rank_s, "%d", lora_rank);
        char *ml_argv[] = {mklora, model, lora_dir, "--rank", rank_s, NULL};
        struct dev_child r = dev_run_child(ml_argv, 0, "bench_convert");
        if (r.status != 0) {
            fprintf(stderr, "bench_convert: mklora failed (status %d)\n", r.status);
            return 1;
        }
    }

    /* the importance matrix for the +imx rows: mkimatrix reads the GGUF names off a q8_0 conversion */
    char imatrix[PATH_MAX + 32] = "";
    if (with_imatrix) {
        snprintf(imatrix, sizeof imatrix, "%s/imatrix-%s.gguf", dir, preset);
        if (!model_reused || access(imatrix, R_OK) != 0) {
            char mkim[PATH_MAX + 16], q8[PATH_MAX + 32], dat[PATH_MAX + 32];
            snprintf(mkim, sizeof mkim, "%s/mkimatrix", tooldir);
            snprintf(q8, sizeof q8, "%s/imatrix-src.gguf", dir);
            snprintf(dat, sizeof dat, "%s/imatrix-%s.dat", dir, preset);
            char *q8_argv[] = {(char *)modelq, "convert", model, "-o", q8, "--type", "q8_0", "--no-vocab", NULL};
            char *mi_argv[] = {mkim, q8, imatrix, dat, NULL};
            struct dev_child r = dev_run_child(q8_argv, 1, "bench_convert");
            if (r.status == 0) r = dev_run_child(mi_argv, 0, "bench_convert");
            unlink(q8);
            unlink(dat);
            if (r.status != 0) {
                fprintf(stderr, "bench_convert: making the imatrix %s failed (status %d)\n", imatrix, r.status);
                return 1;
            }
        }
    }

    /* 3. one conversion per type */
    char types[256];
    snprintf(types, sizeof types, "%s", types_arg);
    int failures = 0;
    char *save = NULL;
    const struct bench_ctx bc = {modelq, model, dir, jobs, keep, repeats, inputs, n_in, in_bytes};
    for (char *t = strtok_r(types, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        double plain_wall = 0;
        if (convert_row(&bc, t, NULL, NULL, NULL, copy_wall, &plain_wall) != 0) {
            fprintf(stderr, "bench_convert: `%s convert ... --type %s` failed (see its message above)\n", modelq, t);
            failures++;
        }
        if (with_imatrix && convert_row(&bc, t, "--imatrix", imatrix, "imx", plain_wall, NULL) != 0) failures++;
        if (lora_rank && convert_row(&bc, t, "--lora", lora_dir, "lora", plain_wall, NULL) != 0) failures++;
    }
    for (int i = 0; i < n_in; i++) free(inputs[i]);
    if (failures) fprintf(stderr, "bench_convert: %d conversion(s) failed\n", failures);
    return failures ? 1 : 0;
}
