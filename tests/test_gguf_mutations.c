/*
** test_gguf_mutations.c - the GGUF reader on mutated headers (a deterministic fuzz).
**
** Valid fixtures from testdata/gguf/ok get bits flipped, 4- and 8-byte fields overwritten with
** values that matter to GGUF (type ids, -1, 2^63, huge counts and lengths), bytes inserted or
** deleted, or the file cut short, mostly inside the header. Every mutant is written to a file
** and opened. The reader must either load it - then every tensor lies inside the file, the data
** section starts aligned and offsets follow gguf.cpp's contiguity rule - or refuse it with a
** one-line message naming the file and a named check. Under ASan/UBSan this catches
** out-of-bounds reads, leaks and overflow. MODELQ_GGUF_MUTATION_SEED=<n> replays a run; the
** seed is printed.
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

#define MUTANTS 3000

static uint64_t rng_state;
static uint64_t rng(void) { return dev_splitmix64(&rng_state); }

static void put_le(unsigned char *b, size_t n, size_t at, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes && at + (size_t)i < n; i++) b[at + (size_t)i] = (unsigned char)(v >> (8 * i));
}

/* One mutation of b[0, n) (capacity cap); returns the new length. `hdr` bytes hold the header. */
static size_t mutate(unsigned char *b, size_t n, size_t cap, size_t hdr)
{
    static const uint64_t wide[] = {0, 1, 2, 3, 31, 32, 33, 63, 64, 65, 0xFFFFFFFFull, 1ull << 32, 1ull << 24,
                                    (1ull << 24) + 1, 1ull << 62, 1ull << 63, UINT64_MAX, UINT64_MAX - 1,
                                    (64ull << 20) + 1, 262145};
    static const uint32_t narrow[] = {0, 1, 2, 4, 5, 7, 8, 9, 12, 13, 31, 41, 42, 43, 100, 0xFFFFFFFFu, 0x80000000u};
    size_t at = (size_t)(rng() % (hdr ? hdr : 1));
    if (rng() % 16 == 0) at = (size_t)(rng() % n);
    if (at >= n) at = n - 1;
    switch (rng() % 7) {
    case 0: b[at] ^= (unsigned char)(1u << (rng() % 8)); break;
    case 1: put_le(b, n, at, wide[rng() % (sizeof wide / sizeof wide[0])], 8); break;
    case 2: put_le(b, n, at, narrow[rng() % (sizeof narrow / sizeof narrow[0])], 4); break;
    case 3: b[at] = (unsigned char)rng(); break;
    case 4: /* delete a byte */
        memmove(b + at, b + at + 1, n - at - 1);
        n--;
        break;
    case 5: /* insert a byte */
        if (n < cap) {
            memmove(b + at + 1, b + at, n - at);
            b[at] = (unsigned char)rng();
            n++;
        }
        break;
    default: /* cut the file */
        n = 1 + (size_t)(rng() % n);
        break;
    }
    return n;
}

/* What a loaded GGUF must satisfy, whatever its bytes were. */
static void check_loaded(const struct mq_model *m, uint64_t seed, int it)
{
    cr_assert_eq(m->n_files, 1);
    const struct mq_file *f = &m->files[0];
    uint32_t align = f->gguf_alignment;
    cr_assert(align && (align & (align - 1)) == 0, "seed %llu iteration %d: alignment %u", (unsigned long long)seed,
              it, align);
    cr_assert_leq(f->data_start, f->size, "seed %llu iteration %d: data section past EOF", (unsigned long long)seed, it);
    cr_assert_eq(m->n_metadata, m->meta.n);
    uint64_t expect = f->data_start;
    if (m->n_tensors) cr_assert_eq(f->data_start % align, 0, "seed %llu iteration %d", (unsigned long long)seed, it);
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct mq_tensor *t = &m->tensors[i];
        cr_assert(t->from_gguf && mq_ggml_type_name(t->ggml_type) != NULL);
        cr_assert_leq(t->ndim, 4);
        cr_assert_eq(t->offset, expect, "seed %llu iteration %d: tensor %zu not contiguous", (unsigned long long)seed,
                     it, i);
        cr_assert(t->nbytes <= f->size && t->offset <= f->size - t->nbytes,
                  "seed %llu iteration %d: tensor %zu past EOF", (unsigned long long)seed, it, i);
        expect = t->offset + (t->nbytes + align - 1) / align * align;
    }
}

Test(gguf_mutations, mutants_load_consistently_or_fail_cleanly)
{
    static const char *const seeds[] = {"testdata/gguf/ok/tiny-llama.gguf", "testdata/gguf/ok/all-types.gguf",
                                        "testdata/gguf/ok/q8_0.gguf",       "testdata/gguf/ok/align-1.gguf",
                                        "testdata/gguf/ok/zero-size.gguf",  "testdata/gguf/ok/dims.gguf"};
    /* header bytes of each seed (data_start), so most mutations land in the header */
    size_t hdr[sizeof seeds / sizeof seeds[0]];
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
        struct mq_model *m = NULL;
        struct mq_error err;
        cr_assert_eq(mq_model_open(seeds[s], &m, &err), MQ_OK, "%s", err.msg);
        hdr[s] = (size_t)m->files[0].data_start;
        mq_model_free(m);
    }
    const char *env = getenv("MODELQ_GGUF_MUTATION_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : 20261128;
    rng_state = seed;
    fprintf(stderr, "gguf mutation seed %llu (MODELQ_GGUF_MUTATION_SEED replays it)\n", (unsigned long long)seed);
    char path[] = "/tmp/modelq-gguf-mutant-XXXXXX.gguf";
    int fd = mkstemps(path, 5);
    cr_assert_geq(fd, 0);
    close(fd);
    int loaded = 0, refused = 0;
    for (int it = 0; it < MUTANTS; it++) {
        size_t s = (size_t)it % (sizeof seeds / sizeof seeds[0]), n;
        unsigned char *b = mutant_load(seeds[s], &n, 32);
        size_t cap = n + 32;
        int rounds = 1 + (int)(rng() % 3);
        for (int r = 0; r < rounds && n > 1; r++) n = mutate(b, n, cap, hdr[s]);
        mutant_write(path, b, n);
        free(b);
        struct mq_model *m = NULL;
        struct mq_error err;
        mq_error_clear(&err);
        enum mq_status st = mq_model_open(path, &m, &err);
        if (st == MQ_OK) {
            /* a broken magic can make the bytes look like safetensors: that reader has its own test */
            if (strcmp(m->format, "gguf") == 0) check_loaded(m, seed, it);
            mq_model_free(m);
            loaded++;
        } else {
            cr_assert_null(m);
            cr_assert(err.check != NULL && strstr(err.msg, path) != NULL && !strchr(err.msg, '\n'),
                      "seed %llu iteration %d: bad error '%s'", (unsigned long long)seed, it, err.msg);
            cr_assert(st == MQ_E_CORRUPT || st == MQ_E_LIMIT || st == MQ_E_OVERFLOW || st == MQ_E_UNSUPPORTED,
                      "seed %llu iteration %d: status %s (%s)", (unsigned long long)seed, it, mq_status_name(st),
                      err.msg);
            refused++;
        }
    }
    unlink(path);
    fprintf(stderr, "gguf mutation seed %llu: %d loaded, %d refused\n", (unsigned long long)seed, loaded, refused);
    cr_expect_gt(refused, 1000);
    cr_expect_gt(loaded, 100);
}
