/*
** mklora - a random PEFT LoRA adapter for a Hugging Face checkpoint, for benchmarks and manual tests.
**
** Usage: mklora MODEL OUTDIR [--rank N] [--alpha A] [--dtype F32|BF16] [--seed S]
**   For every 2-D tensor of MODEL whose name ends in "_proj.weight" (Llama-style attention and MLP
**   projections), writes base_model.model.<module>.lora_A.weight [r, in] and ...lora_B.weight
**   [out, r] into OUTDIR/adapter_model.safetensors, and OUTDIR/adapter_config.json (peft_type LORA,
**   r, lora_alpha, target_modules). Values: uniform in +-0.02 from a fixed generator. The data is
**   written as it is made (one row at a time), so memory stays small whatever the rank.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model_impl.h"
#include "modelq/model.h"

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static float next_value(uint64_t *x)
{
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return ((float)(*x >> 40) / 16777216.0f - 0.5f) * 0.04f;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: mklora MODEL OUTDIR [--rank N] [--alpha A] [--dtype F32|BF16] [--seed S]\n");
        return 2;
    }
    const char *model = argv[1], *outdir = argv[2], *dtype = "F32";
    unsigned rank = 16;
    double alpha = 32;
    uint64_t seed = 1;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rank") == 0) rank = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--alpha") == 0) alpha = strtod(argv[i + 1], NULL);
        else if (strcmp(argv[i], "--dtype") == 0) dtype = argv[i + 1];
        else if (strcmp(argv[i], "--seed") == 0) seed = strtoull(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "mklora: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    const bool bf16 = strcmp(dtype, "BF16") == 0;
    if (rank == 0 || rank > 4096 || (!bf16 && strcmp(dtype, "F32") != 0)) {
        fprintf(stderr, "mklora: rank 1..4096 and --dtype F32 or BF16\n");
        return 2;
    }
    struct mq_model *m;
    struct mq_error err;
    if (mq_model_open(model, &m, &err) != MQ_OK) {
        fprintf(stderr, "mklora: %s\n", err.msg);
        return 1;
    }
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "mklora: cannot create %s: %s\n", outdir, strerror(errno));
        return 1;
    }
    /* header: every pair, data offsets in order */
    size_t cap = 1 << 20, hl = 0;
    char *hdr = malloc(cap);
    if (!hdr) return 1;
    const size_t es = bf16 ? 2 : 4;
    uint64_t off = 0, params = 0;
    int pairs = 0;
    hl += (size_t)snprintf(hdr + hl, cap - hl, "{");
    for (size_t t = 0; t < m->n_tensors; t++) {
        const struct mq_tensor *ts = &m->tensors[t];
        if (ts->ndim != 2 || !ends_with(ts->name, "_proj.weight")) continue;
        const size_t stem = strlen(ts->name) - strlen(".weight");
        const uint64_t out = ts->shape[0], in = ts->shape[1];
        for (int ab = 0; ab < 2; ab++) {
            const uint64_t rows = ab ? out : rank, cols = ab ? rank : in, bytes = rows * cols * es;
            hl += (size_t)snprintf(hdr + hl, cap - hl,
                                   "%s\"base_model.model.%.*s.lora_%c.weight\":{\"dtype\":\"%s\",\"shape\":[%" PRIu64
                                   ",%" PRIu64 "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}",
                                   off ? "," : "", (int)stem, ts->name, ab ? 'B' : 'A', dtype, rows, cols, off,
                                   off + bytes);
            off += bytes;
            params += rows * cols;
        }
        pairs++;
        if (hl + 1024 > cap) {
            fprintf(stderr, "mklora: header too large\n");
            return 1;
        }
    }
    hl += (size_t)snprintf(hdr + hl, cap - hl, "}");
    while (hl % 8) hdr[hl++] = ' ';
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", outdir);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "mklora: cannot write %s\n", path);
        return 1;
    }
    uint64_t hlen = hl;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(hlen >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(hdr, 1, hl, f);
    uint64_t x = seed;
    unsigned char buf[4];
    for (uint64_t i = 0; i < params; i++) {
        float v = next_value(&x);
        uint32_t u;
        memcpy(&u, &v, 4);
        if (bf16) {
            buf[0] = (unsigned char)(u >> 16);
            buf[1] = (unsigned char)(u >> 24);
        } else {
            for (int k = 0; k < 4; k++) buf[k] = (unsigned char)(u >> (8 * k));
        }
        fwrite(buf, 1, es, f);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "mklora: write error on %s\n", path);
        return 1;
    }
    snprintf(path, sizeof path, "%s/adapter_config.json", outdir);
    f = fopen(path, "w");
    if (!f) return 1;
    fprintf(f, "{\"peft_type\": \"LORA\", \"r\": %u, \"lora_alpha\": %g, \"target_modules\": [\"q_proj\", \"k_proj\", "
               "\"v_proj\", \"o_proj\", \"gate_proj\", \"up_proj\", \"down_proj\"], \"bias\": \"none\"}\n",
            rank, alpha);
    fclose(f);
    printf("mklora: %s: %d pairs, rank %u, %" PRIu64 " parameters, %" PRIu64 " bytes of %s\n", outdir, pairs, rank,
           params, off, dtype);
    free(hdr);
    mq_model_free(m);
    return 0;
}
