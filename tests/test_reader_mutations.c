/*
** test_reader_mutations.c - the safetensors reader on mutated headers (a deterministic fuzz).
**
** Valid fixtures get bytes flipped, inserted, deleted or overwritten with JSON-significant
** characters, mostly inside the header; every mutant is written to a file and opened. The reader
** must either load it (then every tensor lies inside the file and tiles the data section) or
** refuse it with a one-line message naming the file and a named check. Run under ASan/UBSan by
** tools/test.sh, this catches out-of-bounds reads and overflow. The seed is printed.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model_impl.h"
#include "devutil.h"
#include "modelq/model.h"
#include "mutants.h"

static uint64_t rng_state;
static uint64_t rng(void) { return dev_splitmix64(&rng_state); }

static size_t mutate(unsigned char *b, size_t n, size_t cap)
{
    static const char special[] = "{}[]\",:-.0123456789eE \t\n\\u\x00\xff";
    size_t hdr = n > 8 ? n - 8 : 1;
    /* mostly the header: its first bytes hold the JSON for small fixtures */
    size_t at = 8 + (size_t)(rng() % (hdr < 256 ? hdr : 256));
    if (rng() % 16 == 0) at = (size_t)(rng() % n);
    if (at >= n) at = n - 1;
    switch (rng() % 5) {
    case 0: b[at] ^= (unsigned char)(1u << (rng() % 8)); break;
    case 1: b[at] = (unsigned char)special[rng() % (sizeof special - 1)]; break;
    case 2: /* delete a byte */
        memmove(b + at, b + at + 1, n - at - 1);
        n--;
        break;
    case 3: /* insert a byte */
        if (n < cap) {
            memmove(b + at + 1, b + at, n - at);
            b[at] = (unsigned char)special[rng() % (sizeof special - 1)];
            n++;
        }
        break;
    default: /* the length field */
        b[rng() % 8] = (unsigned char)rng();
        break;
    }
    return n;
}

Test(reader_mutations, mutants_load_consistently_or_fail_cleanly)
{
    const char *seeds[] = {"testdata/safetensors/ok/all-dtypes.safetensors", "testdata/safetensors/ok/zero-size.safetensors",
                           "testdata/safetensors/ok/scalar.safetensors", "testdata/sharded/ok/model-00001-of-00002.safetensors"};
    const char *env = getenv("MODELQ_MUTATION_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : 20261127;
    rng_state = seed;
    char path[] = "/tmp/modelq-mutant-XXXXXX.safetensors";
    int fd = mkstemps(path, 12);
    cr_assert_geq(fd, 0);
    close(fd);
    int loaded = 0, refused = 0;
    for (int it = 0; it < 4000; it++) {
        size_t n;
        unsigned char *b = mutant_load(seeds[it % 4], &n, 64);
        int rounds = 1 + (int)(rng() % 3);
        for (int r = 0; r < rounds && n > 1; r++) n = mutate(b, n, n + 32);
        mutant_write(path, b, n);
        struct mq_model *m = NULL;
        struct mq_error err;
        mq_error_clear(&err);
        enum mq_status s = mq_model_open(path, &m, &err);
        if (s == MQ_OK) {
            uint64_t data = 0;
            for (size_t i = 0; i < m->n_tensors; i++) {
                const struct mq_tensor *t = &m->tensors[i];
                uint64_t stored = t->fp8 ? t->fp8->stored_bytes : t->nbytes; /* FP8: codes + scales, read as F32 */
                cr_assert_leq(t->offset + (t->fp8 ? t->fp8->data.nbytes : t->nbytes), m->files[0].size,
                              "seed %llu iteration %d: tensor past EOF", (unsigned long long)seed, it);
                data += stored;
            }
            cr_assert_eq(m->files[0].data_start + data, m->files[0].size, "seed %llu iteration %d: data not tiled",
                         (unsigned long long)seed, it);
            mq_model_free(m);
            loaded++;
        } else {
            cr_assert_null(m);
            cr_assert(err.check != NULL && strstr(err.msg, path) != NULL && !strchr(err.msg, '\n'),
                      "seed %llu iteration %d: bad error '%s'", (unsigned long long)seed, it, err.msg);
            refused++;
        }
        free(b);
    }
    unlink(path);
    cr_log_info("mutation seed %llu: %d loaded, %d refused", (unsigned long long)seed, loaded, refused);
    cr_expect_gt(refused, 1000);
    cr_expect_gt(loaded, 10);
}
