/*
** test_convert_rss.c - `modelq convert` streams: converting a 253 MB BF16 checkpoint to Q8_0 must
** keep the process's peak RSS under RSS_CAP_MIB. Not a timing test (benchmarks live in
** tools/bench_convert.c).
**
** The model is made by the built tool $MODELQ_BUILD_DIR/mkbigmodel --preset 256m (hidden 1024,
** ffn 4096, 4 layers, 16/4 heads, vocab 32000: 126,362,624 BF16 parameters, real random data)
** in a temporary folder, converted with
**     $MODELQ_BIN convert MODEL -o OUT.gguf --type q8_0 -j 2
** started with fork/exec and reaped with wait4, whose ru_maxrss is the child's peak RSS. Asserted:
** exit 0, peak RSS < RSS_CAP_MIB, output larger than MIN_OUTPUT_BYTES (Q8_0 is 8.5 bits per
** weight: about 134 MB here). The folder is deleted afterwards (MODELQ_KEEP_TMP=1 keeps it).
**
** Under AddressSanitizer the shadow memory and allocator quarantine inflate RSS, so the RSS
** assertion is skipped there (the conversion and the size checks still run). The test binary
** and the modelq binary come from the same build, so the test's own build flags tell.
*/
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sanitizer.h"

/* Peak RSS allowed for the whole convert process. */
#define RSS_CAP_MIB 64
/* Smallest plausible Q8_0 output for the 256m preset (about 134 MB expected). */
#define MIN_OUTPUT_BYTES (60ull * 1000 * 1000)


struct child {
    int status; /* exit code, 128 + signal, or -1 */
    long maxrss_kib;
};

/* Runs argv (execv) with stdout and stderr sent to err_path, reaped with wait4. */
static struct child run(char *const argv[], const char *err_path)
{
    struct child c = {-1, 0};
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execv(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int st;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0) cr_assert_eq(errno, EINTR, "wait4: %s", strerror(errno));
    c.status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
    c.maxrss_kib = ru.ru_maxrss;
    return c;
}

/* The first 2000 bytes of a file, for failure messages. */
static const char *head_of(const char *path)
{
    static char buf[2001];
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
    }
    return buf;
}

static char tmpdir[] = "/tmp/modelq-rss-XXXXXX";

static void cleanup(void)
{
    if (strchr(tmpdir, 'X') || getenv("MODELQ_KEEP_TMP")) return;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "convert_rss: could not remove %s\n", tmpdir);
}

TestSuite(convert_rss, .fini = cleanup);

Test(convert_rss, q8_0_of_a_253_mb_model_stays_under_the_rss_cap)
{
    const char *bin = getenv("MODELQ_BIN"), *build = getenv("MODELQ_BUILD_DIR");
    cr_assert(bin && *bin && build && *build, "MODELQ_BIN and MODELQ_BUILD_DIR must be set (run through ctest)");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
    char mk[4096], model[256], out[256], log[256];
    snprintf(mk, sizeof mk, "%s/mkbigmodel", build);
    snprintf(model, sizeof model, "%s/model", tmpdir);
    snprintf(out, sizeof out, "%s/out.gguf", tmpdir);
    snprintf(log, sizeof log, "%s/log.txt", tmpdir);

    char *mk_argv[] = {mk, model, "--preset", "256m", NULL};
    struct child m = run(mk_argv, log);
    cr_assert_eq(m.status, 0, "mkbigmodel failed (%d): %s", m.status, head_of(log));

    char *cv_argv[] = {(char *)bin, "convert", model, "-o", out, "--type", "q8_0", "-j", "2", "--no-vocab", NULL};
    struct child c = run(cv_argv, log);
    fprintf(stderr, "convert_rss: %s convert --type q8_0 -j 2: exit %d, peak RSS %.1f MiB (cap %d MiB%s)\n", bin,
            c.status, (double)c.maxrss_kib / 1024.0, RSS_CAP_MIB, BUILT_WITH_ASAN ? ", not checked under ASan" : "");
    cr_assert_eq(c.status, 0, "modelq convert exited with %d: %s", c.status, head_of(log));

    struct stat st;
    cr_assert_eq(stat(out, &st), 0, "no output %s", out);
    cr_expect_gt((unsigned long long)st.st_size, MIN_OUTPUT_BYTES, "output is only %lld bytes", (long long)st.st_size);
    if (!BUILT_WITH_ASAN)
        cr_expect_lt(c.maxrss_kib, RSS_CAP_MIB * 1024L, "peak RSS %.1f MiB >= cap %d MiB",
                     (double)c.maxrss_kib / 1024.0, RSS_CAP_MIB);
}
