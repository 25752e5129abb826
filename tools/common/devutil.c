/* devutil.c - see devutil.h. */
#include "devutil.h"

#include <errno.h>
#include <unistd.h>
#include <time.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

static const char *prog = "devtool";
static int failures;

void dev_set_prog(const char *name) { prog = name; }

void dev_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void *dev_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) dev_die("out of memory");
    return p;
}

void dev_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failures++;
}

int dev_failures_report(void)
{
    if (!failures) return 0;
    fprintf(stderr, "%s: %d file(s) could not be written\n", prog, failures);
    return 1;
}

void dev_buf_put(struct dev_buf *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) dev_die("out of memory");
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void dev_buf_puts(struct dev_buf *b, const char *s) { dev_buf_put(b, s, strlen(s)); }

void dev_buf_printf(struct dev_buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) dev_die("internal: formatted text too long");
    dev_buf_put(b, tmp, (size_t)n);
}

void dev_make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) dev_die("%s: %s", path, strerror(errno));
}

void dev_mkdirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

void dev_write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) dev_die("path too long: %s", dir);
    FILE *f = fopen(path, "wb");
    if (!f) dev_die("%s: %s", path, strerror(errno));
    if (len && fwrite(data, 1, len, f) != len) dev_die("%s: write failed: %s", path, strerror(errno));
    if (fclose(f) != 0) dev_die("%s: close failed: %s", path, strerror(errno));
}

char *dev_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *p = dev_xcalloc(cap, 1);
    for (size_t got; (got = fread(p + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (n + 1 == cap) {
            char *q = realloc(p, cap *= 2);
            if (!q) dev_die("out of memory");
            p = q;
        }
    }
    if (ferror(f)) dev_die("%s: read failed", path);
    fclose(f);
    p[n] = '\0';
    if (len) *len = n;
    return p;
}

uint64_t dev_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t dev_splitmix64(uint64_t *state) { return dev_mix64(*state += 0x9e3779b97f4a7c15ull); }

uint64_t dev_fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

void dev_copy_file(const char *from_dir, const char *to_dir, const char *name)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", from_dir, name) >= sizeof path) dev_die("path too long");
    size_t len;
    char *p = dev_read_file(path, &len);
    if (!p) dev_die("%s: %s", path, strerror(errno));
    dev_write_file(to_dir, name, p, len);
    free(p);
}

size_t dev_utf8_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

uint32_t dev_utf8_cp(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = dev_utf8_len(u[0]);
    uint32_t cp = n == 1 ? u[0] : n == 2 ? u[0] & 0x1Fu : n == 3 ? u[0] & 0x0Fu : u[0] & 0x07u;
    for (size_t k = 1; k < n; k++) cp = (cp << 6) | (u[k] & 0x3Fu);
    return cp;
}

double dev_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct dev_child dev_run_child(char *const argv[], int quiet, const char *tag)
{
    struct dev_child r = {-1, 0, 0, 0};
    double t0 = dev_now();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "%s: fork: %s\n", tag, strerror(errno));
        return r;
    }
    if (pid == 0) {
        if (quiet) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd >= 0) dup2(fd, STDOUT_FILENO);
        }
        execv(argv[0], argv);
        fprintf(stderr, "%s: cannot run %s: %s\n", tag, argv[0], strerror(errno));
        _exit(127);
    }
    int st;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "%s: wait4: %s\n", tag, strerror(errno));
            return r;
        }
    r.wall = dev_now() - t0;
    r.cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
            (double)ru.ru_stime.tv_usec * 1e-6;
    r.maxrss_kib = ru.ru_maxrss;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
    return r;
}
