/*
** bench_header - times the GGUF header work that grows with the number of tensors and keys, at
** the reader's caps: planning and writing the header of 262,144 tensors (the duplicate-name check
** was quadratic: 106 s), setting 16,384 metadata keys one by one, and an end-to-end `convert` +
** `verify` of a safetensors file of 262,144 one-element tensors. Not a test: run it by hand,
** `build/bench_header [TENSORS]`.
*/
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gguf.h"
#include "gguf_write.h"
#include "modelq/convert.h"
#include "stwrite.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fail(const char *what, const struct mq_error *err)
{
    fprintf(stderr, "bench_header: %s: %s\n", what, err->msg);
    return 1;
}

/* A safetensors file of n F32 [1] tensors "t.<i>" (data i as float). */
static int write_many(const char *path, size_t n)
{
    size_t cap = 64 + n * 80, len = 0;
    char *h = malloc(cap);
    float *data = malloc(n * sizeof *data);
    if (!h || !data) return 1;
    len += (size_t)snprintf(h + len, cap - len, "{");
    for (size_t i = 0; i < n; i++) {
        data[i] = (float)i;
        len += (size_t)snprintf(h + len, cap - len, "%s\"t.%zu\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%zu,%zu]}",
                                i ? "," : "", i, i * 4, i * 4 + 4);
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8) h[len++] = ' ';
    int r = stw_write_raw(path, len, h, len, data, n * sizeof *data);
    free(h);
    free(data);
    return r;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : MQ_GGUF_MAX_TENSORS;
    if (n == 0 || n > MQ_GGUF_MAX_TENSORS) n = MQ_GGUF_MAX_TENSORS;
    struct mq_error err;
    mq_error_clear(&err);

    /* 1. plan + write + seal a header of n tensors */
    struct mq_meta meta;
    mq_meta_init(&meta);
    struct mq_gguf_tensor_info *t = calloc(n, sizeof *t);
    char (*names)[24] = calloc(n, sizeof *names);
    uint64_t *zeros = calloc(n, sizeof *zeros);
    if (!t || !names || !zeros) return 1;
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "blk.%zu.w", i);
        t[i] = (struct mq_gguf_tensor_info){.name = names[i], .n_dims = 1, .ne = {32, 1, 1, 1}, .type = 0, .nbytes = 128};
    }
    if (mq_meta_set_str(&meta, "general.architecture", "raw", SIZE_MAX, &err) ||
        mq_meta_set_array(&meta, MQ_CHECKSUM_TENSORS_KEY, MQ_META_U64, zeros, n, &err) ||
        mq_meta_set_uint(&meta, MQ_CHECKSUM_HEADER_KEY, MQ_META_U64, 0, &err))
        return fail("metadata", &err);
    double t0 = now();
    uint64_t start, size, sum;
    if (mq_gguf_layout(&meta, t, n, &start, &size, &err) != MQ_OK) return fail("layout", &err);
    double t1 = now();
    uint8_t *buf = malloc((size_t)start);
    if (!buf) return 1;
    if (mq_gguf_header_write(&meta, t, n, buf, start, &err) != MQ_OK ||
        mq_gguf_header_seal(&meta, t, n, buf, start, &sum, &err) != MQ_OK)
        return fail("header", &err);
    double t2 = now();
    printf("header of %zu tensors (%" PRIu64 " bytes): layout + checks %.3f s, write + seal %.3f s\n", n, start, t1 - t0,
           t2 - t1);
    free(buf);
    mq_meta_free(&meta);

    /* 2. 16,384 keys set one by one (each set looks the key up first) */
    mq_meta_init(&meta);
    t0 = now();
    for (unsigned i = 0; i < MQ_GGUF_MAX_KV; i++) {
        char key[32];
        snprintf(key, sizeof key, "bench.key.%u", i);
        if (mq_meta_set_u32(&meta, key, i, &err) != MQ_OK) return fail("keys", &err);
    }
    struct mq_meta copy;
    mq_meta_init(&copy);
    if (mq_meta_copy(&copy, &meta, &err) != MQ_OK) return fail("copy", &err);
    t1 = now();
    printf("%u metadata keys set and copied: %.3f s\n", MQ_GGUF_MAX_KV, t1 - t0);
    mq_meta_free(&meta);
    mq_meta_free(&copy);

    /* 3. convert + verify a safetensors file of n one-element tensors */
    char dir[] = "/tmp/modelq-bench-header-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char in[128], out[128];
    snprintf(in, sizeof in, "%s/many.safetensors", dir);
    snprintf(out, sizeof out, "%s/many.gguf", dir);
    if (write_many(in, n) != 0) return 1;
    struct mq_convert_options o;
    mq_convert_options_default(&o);
    o.input = in;
    o.output = out;
    struct mq_convert_report rep;
    t0 = now();
    enum mq_status s = mq_convert(&o, &rep, &err);
    mq_convert_report_free(&rep);
    if (s != MQ_OK) return fail("convert", &err);
    t1 = now();
    struct mq_verify_result vr;
    if (mq_verify(out, NULL, NULL, &vr, &err) != MQ_OK) return fail("verify", &err);
    t2 = now();
    printf("convert of %zu tensors %.3f s, verify %.3f s (%zu tensors, %zu bad)\n", n, t1 - t0, t2 - t1, vr.n_checked,
           vr.n_bad);
    unlink(in);
    unlink(out);
    rmdir(dir);
    free(t);
    free(names);
    free(zeros);
    return 0;
}
