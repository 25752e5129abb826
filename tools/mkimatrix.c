/*
** mkimatrix.c - writes an importance matrix for a GGUF model in both of llama-imatrix's formats,
** with random but valid statistics, for the --imatrix tests.
**
**   mkimatrix MODEL.gguf OUT.gguf OUT.dat [SEED] [--shuffle]
**
** Every 2-D or 3-D tensor of MODEL gets an entry (llama-imatrix records every matrix
** multiplication's weight): n_per_row = the row length, n_mat = experts (3-D) or 1.
**   OUT.gguf  "<name>.in_sum2" F32 [n_per_row, n_mat] and "<name>.counts" F32 [1, n_mat]; keys
**             imatrix.datasets ["mkimatrix-seed-N"], imatrix.chunk_count 7, imatrix.chunk_size 512.
**   OUT.dat   the legacy form: per entry name, ncall, nval, values; trailer last_call 7 and the
**             dataset name. Dense entries hold the same sums with ncall = the GGUF count, so both
**             files give the same importances (sum / count in float32).
** Sums are count x importance with importances drawn log-normally (a few exact zeros and one
** tiny, one huge column per entry); counts are whole numbers 1..4096. --shuffle writes the same
** statistics with every entry's columns rotated (a wrong imatrix of the right shape).
*/
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"
#include "modelq/model.h"

static uint64_t rng = 88172645463325252ull;
static double unit(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static void put(FILE *f, const void *p, size_t n) { fwrite(p, 1, n, f); }
static void put_u32(FILE *f, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(f, b, 4);
}
static void put_u64(FILE *f, uint64_t v)
{
    put_u32(f, (uint32_t)v);
    put_u32(f, (uint32_t)(v >> 32));
}
static void put_f32(FILE *f, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    put_u32(f, u);
}
static void put_gstr(FILE *f, const char *s)
{
    put_u64(f, strlen(s));
    put(f, s, strlen(s));
}

struct ent {
    char name[128];
    uint64_t n_per_row, n_mat;
    float *sums, *counts;
};

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: mkimatrix MODEL.gguf OUT.gguf OUT.dat [SEED] [--shuffle]\n");
        return 2;
    }
    unsigned long seed = argc > 4 && argv[4][0] != '-' ? strtoul(argv[4], NULL, 0) : 1;
    bool shuffle = strcmp(argv[argc - 1], "--shuffle") == 0;
    rng ^= seed * 0x9e3779b97f4a7c15ull;
    struct mq_model *m = NULL;
    struct mq_error err = {0};
    if (mq_model_open(argv[1], &m, &err) != MQ_OK) {
        fprintf(stderr, "mkimatrix: %s\n", err.msg);
        return 3;
    }
    struct ent *e = calloc(m->n_tensors, sizeof *e);
    size_t n = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct mq_tensor *t = &m->tensors[i];
        if (t->ndim < 2 || t->ndim > 3) continue;
        struct ent *x = &e[n++];
        snprintf(x->name, sizeof x->name, "%s", t->name);
        x->n_per_row = t->shape[t->ndim - 1];
        x->n_mat = t->ndim == 3 ? t->shape[0] : 1;
        x->sums = malloc(x->n_per_row * x->n_mat * sizeof(float));
        x->counts = malloc(x->n_mat * sizeof(float));
        for (uint64_t k = 0; k < x->n_mat; k++) {
            x->counts[k] = (float)(1 + (int)(unit() * 4096));
            for (uint64_t c = 0; c < x->n_per_row; c++) {
                double imp = exp((unit() - 0.5) * 8.0);
                if (unit() < 0.02) imp = 0;
                if (c == 3) imp = 1e-20;
                if (c == 5) imp = 1e6;
                x->sums[k * x->n_per_row + (shuffle ? (c + 1) % x->n_per_row : c)] = (float)(imp * x->counts[k]);
            }
        }
    }
    char dataset[64];
    snprintf(dataset, sizeof dataset, "mkimatrix-seed-%lu", seed);
    /* GGUF */
    FILE *f = fopen(argv[2], "wb");
    if (!f) return 4;
    put(f, "GGUF", 4);
    put_u32(f, 3);
    put_u64(f, 2 * n);
    put_u64(f, 3);
    put_gstr(f, "imatrix.datasets");
    put_u32(f, 9); /* ARRAY */
    put_u32(f, 8); /* of STRING */
    put_u64(f, 1);
    put_gstr(f, dataset);
    put_gstr(f, "imatrix.chunk_count");
    put_u32(f, 4);
    put_u32(f, 7);
    put_gstr(f, "imatrix.chunk_size");
    put_u32(f, 4);
    put_u32(f, 512);
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        char name[160];
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "%s%s", e[i].name, k ? ".counts" : ".in_sum2");
            put_gstr(f, name);
            put_u32(f, 2);
            put_u64(f, k ? 1 : e[i].n_per_row);
            put_u64(f, e[i].n_mat);
            put_u32(f, 0); /* F32 */
            put_u64(f, off);
            uint64_t bytes = (k ? 1 : e[i].n_per_row) * e[i].n_mat * 4;
            off += (bytes + 31) / 32 * 32;
        }
    }
    long pos = ftell(f);
    for (; pos % 32; pos++) fputc(0, f);
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 2; k++) {
            uint64_t cnt = (k ? 1 : e[i].n_per_row) * e[i].n_mat;
            for (uint64_t j = 0; j < cnt; j++) put_f32(f, k ? e[i].counts[j] : e[i].sums[j]);
            for (uint64_t b = cnt * 4; b % 32; b++) fputc(0, f);
        }
    }
    fclose(f);
    /* legacy .dat */
    f = fopen(argv[3], "wb");
    if (!f) return 4;
    put_u32(f, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        put_u32(f, (uint32_t)strlen(e[i].name));
        put(f, e[i].name, strlen(e[i].name));
        put_u32(f, (uint32_t)e[i].counts[0]); /* ncall (dense: the one count) */
        put_u32(f, (uint32_t)(e[i].n_per_row * e[i].n_mat));
        for (uint64_t j = 0; j < e[i].n_per_row * e[i].n_mat; j++) put_f32(f, e[i].sums[j]);
    }
    put_u32(f, 7);
    put_u32(f, (uint32_t)strlen(dataset));
    put(f, dataset, strlen(dataset));
    fclose(f);
    for (size_t i = 0; i < n; i++) {
        free(e[i].sums);
        free(e[i].counts);
    }
    free(e);
    mq_model_free(m);
    return 0;
}
