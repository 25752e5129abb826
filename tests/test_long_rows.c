/*
** test_long_rows.c - rows longer than a chunk are converted in block-aligned pieces (issue 18,
** item 17): the bytes equal the whole-row path for every type, and one enormous row keeps the
** memory bounded.
**
**   - identical bytes: tiny-llama and a file with odd row lengths (1000: not a multiple of the
**     bitsandbytes block, so pieces cross rows) and long rows, converted with
**     MODELQ_CHUNK_ELEMS=40 / 300 (every row cut into pieces) and with the default chunk, to
**     every GGUF type and every bitsandbytes type; a Q4_K GGUF requantized (pieces whole Q4_K
**     blocks of the source) likewise.
**   - bounded memory: a 1 x 64M F32 tensor (256 MiB, a sparse file) converted to q8_0 with -j 2
**     must peak under RSS_CAP_MIB (the whole-row path needed about 600 MiB per thread).
*/
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run_cmd.h"
#include "sanitizer.h"
#include "stwrite.h"

#define MODEL "testdata/tiny-llama"
#define RSS_CAP_MIB 64
#define LONG_ROW (64ull * 1024 * 1024)


static void convert_with_chunk(const char *chunk, const char *in, const char *out, const char *args)
{
    if (chunk) setenv("MODELQ_CHUNK_ELEMS", chunk, 1);
    else unsetenv("MODELQ_CHUNK_ELEMS");
    struct cmd_result r = run_modelq("convert %s -o %s --quiet %s", in, out, args);
    unsetenv("MODELQ_CHUNK_ELEMS");
    cr_assert_eq(r.code, 0, "convert %s %s (chunk %s): %s", in, args, chunk ? chunk : "default", r.err);
    cmd_result_free(&r);
}

/* Same bytes: a file, or every file of a (bitsandbytes) folder. */
static bool outputs_equal(const char *a, const char *b)
{
    struct stat st;
    if (stat(a, &st) != 0) return false;
    if (!S_ISDIR(st.st_mode)) return files_equal(a, b);
    static const char *names[] = {"model.safetensors", "config.json"};
    for (size_t i = 0; i < 2; i++) {
        char pa[1024], pb[1024];
        snprintf(pa, sizeof pa, "%s/%s", a, names[i]);
        snprintf(pb, sizeof pb, "%s/%s", b, names[i]);
        if (!files_equal(pa, pb)) return false;
    }
    return true;
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Odd shapes: rows of 1000 (pieces cross rows for the 64-blocks) and of 4096. */
static void write_odd(const char *path)
{
    static float v[3 * 1000 + 2 * 4096];
    uint32_t s = 1;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) v[i] = (float)((int)(lcg(&s) % 2001) - 1000) / 997.0f;
    const char *hdr = "{\"model.layers.0.mlp.down_proj.weight\":{\"dtype\":\"F32\",\"shape\":[3,1000],"
                      "\"data_offsets\":[0,12000]},"
                      "\"model.layers.0.mlp.up_proj.weight\":{\"dtype\":\"F32\",\"shape\":[2,4096],"
                      "\"data_offsets\":[12000,44768]}}";
    cr_assert_eq(stw_write_raw(path, strlen(hdr), hdr, strlen(hdr), v, sizeof v), 0);
}

Test(long_rows, pieces_give_the_bytes_of_whole_rows)
{
    static const char *gguf[] = {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl", "q4_K",
                                 "q5_K", "q6_K", "f16",  "bf16", "f32"};
    static const char *bnb[] = {"nf4", "nf4-dq", "fp4", "int8_row", "nf4 --blocksize 128", "nf4-dq --blocksize 256"};
    char *dir = make_temp_dir("longrows");
    char odd[512], a[512], b[512], args[128];
    snprintf(odd, sizeof odd, "%s/odd.safetensors", dir);
    write_odd(odd);
    const char *inputs[] = {MODEL, odd};
    for (int in = 0; in < 2; in++) {
        for (size_t k = 0; k < sizeof gguf / sizeof gguf[0] + sizeof bnb / sizeof bnb[0]; k++) {
            bool is_bnb = k >= sizeof gguf / sizeof gguf[0];
            const char *type = is_bnb ? bnb[k - sizeof gguf / sizeof gguf[0]] : gguf[k];
            snprintf(args, sizeof args, "--type %s", type);
            snprintf(a, sizeof a, "%s/whole-%d-%zu%s", dir, in, k, is_bnb ? "" : ".gguf");
            snprintf(b, sizeof b, "%s/piece-%d-%zu%s", dir, in, k, is_bnb ? "" : ".gguf");
            convert_with_chunk(NULL, inputs[in], a, args);
            static const char *chunks[] = {"40", "300"};
            for (int c = 0; c < 2; c++) {
                char a2[600];
                snprintf(a2, sizeof a2, "%s -j %d", args, c + 2);
                convert_with_chunk(chunks[c], inputs[in], b, a2);
                cr_expect(outputs_equal(a, b), "%s: %s with chunk %s differs from whole rows", inputs[in], type,
                          chunks[c]);
                if (is_bnb) remove_tree(b);
                else remove(b);
            }
        }
    }
    /* a block-quantized source: pieces are whole Q4_K (256) blocks of the source too */
    char q4k[512];
    snprintf(q4k, sizeof q4k, "%s/src-q4_K.gguf", dir);
    convert_with_chunk(NULL, MODEL, q4k, "--type q4_K --pure");
    static const char *re[] = {"q8_0", "q5_1", "f32", "iq4_nl"};
    for (size_t k = 0; k < 4; k++) {
        snprintf(args, sizeof args, "--type %s --allow-requantize", re[k]);
        snprintf(a, sizeof a, "%s/req-whole-%zu.gguf", dir, k);
        snprintf(b, sizeof b, "%s/req-piece-%zu.gguf", dir, k);
        convert_with_chunk(NULL, q4k, a, args);
        convert_with_chunk("40", q4k, b, args);
        cr_expect(files_equal(a, b), "q4_K -> %s with pieces differs", re[k]);
    }
    remove_tree(dir);
    free(dir);
}

/* Runs argv with output to err_path; returns the exit status and the child's peak RSS (KiB). */
static int run_measured(char *const argv[], const char *err_path, long *maxrss_kib)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0) cr_assert_eq(errno, EINTR, "wait4: %s", strerror(errno));
    *maxrss_kib = ru.ru_maxrss;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

Test(long_rows, one_enormous_row_keeps_memory_bounded, .timeout = 300)
{
    const char *bin = getenv("MODELQ_BIN");
    cr_assert_not_null(bin, "MODELQ_BIN not set (run through ctest)");
    char *dir = make_temp_dir("longrow");
    char in[512], out[512], log[512], hdr[256];
    snprintf(in, sizeof in, "%s/long.safetensors", dir);
    snprintf(out, sizeof out, "%s/long.gguf", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    snprintf(hdr, sizeof hdr,
             "{\"blk.0.ffn_down.weight\":{\"dtype\":\"F32\",\"shape\":[1,%llu],\"data_offsets\":[0,%llu]}}",
             (unsigned long long)LONG_ROW, (unsigned long long)(LONG_ROW * 4));
    cr_assert_eq(stw_write_sparse(in, hdr, LONG_ROW * 4), 0);
    char *argv[] = {(char *)bin, "convert", in, "-o", out, "--type", "q8_0", "-j", "2", "--quiet", NULL};
    long kib = 0;
    int code = run_measured(argv, log, &kib);
    size_t len;
    char *text = (char *)read_file_all(log, &len);
    cr_assert_eq(code, 0, "convert failed (%d): %s", code, text ? text : "");
    free(text);
    struct stat st;
    cr_assert_eq(stat(out, &st), 0);
    cr_expect_geq((uint64_t)st.st_size, LONG_ROW / 32 * 34, "the whole Q8_0 row was written");
    if (!BUILT_WITH_ASAN)
        cr_expect_lt(kib, RSS_CAP_MIB * 1024L, "peak RSS %ld KiB for a %llu-element row", kib,
                     (unsigned long long)LONG_ROW);
    fprintf(stderr, "test_long_rows: 1 x %llu F32 -> q8_0, -j 2: peak RSS %ld KiB\n", (unsigned long long)LONG_ROW, kib);
    remove_tree(dir);
    free(dir);
}
