/*
** mkbigmodel.c - writes a random Llama-shaped BF16 Hugging Face checkpoint for benchmarks and
** memory tests: OUTDIR/config.json + OUTDIR/model.safetensors (or shards + index), real data
** (not a sparse file), identical bytes for identical options.
**
** Usage: mkbigmodel OUTDIR [--preset issue|256m] [--hidden N] [--ffn N] [--layers N] [--heads N]
**                          [--kv-heads N] [--vocab N] [--shards N] [--tied] [--seed N] [--dry-run]
**
**   --preset issue (default)  hidden 4096, intermediate 14336, 4 layers, 32 heads / 8 KV heads,
**                             vocab 512 (the issue's ~1.75 GB), untied: 876,646,400 parameters, 1,753,292,800 bytes
**                             of BF16 data (1.75 GB, 1.63 GiB).
**   --preset 256m             hidden 1024, intermediate 4096, 4 layers, 16 heads / 4 KV heads,
**                             vocab 32000, untied: 126,362,624 parameters, 252,725,248 bytes of
**                             data (253 MB, 241 MiB); what tests/test_convert_rss.c converts.
**   Flags after the preset override single dimensions. --dry-run prints the sizes only.
**
** Tensors have Hugging Face Llama names (model.embed_tokens.weight, model.layers.N.self_attn.
** q_proj.weight, ..., model.norm.weight, lm_head.weight) and shapes; config.json has model_type
** llama, architectures [LlamaForCausalLM], torch_dtype bfloat16, rms_norm_eps, rope_theta,
** max_position_embeddings, vocab_size, head counts (tools/common/stwrite.c writes both).
**
** Values: element i of a tensor comes from a counter-based generator, splitmix64's finalizer
** applied to (seed of the tensor's name) + i, so any chunk can be produced on its own. The four
** 16-bit lanes of that 64-bit word are summed (Irwin-Hall: nearly normal, bounded at 3.46 sigma)
** and scaled to a standard deviation of 0.02, like initialised linear weights; norm weights are
** 1 + that. Each float is rounded to BF16 (round to nearest even) with integer operations.
** Data is streamed through a 4 MiB buffer (stw_write_llama_dense), so memory stays small.
**
** On success OUTDIR/.mkbigmodel holds the option line, so a caller (tools/bench_convert.c) can
** reuse a folder made with the same options.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "devutil.h"
#include "stwrite.h"

#define DEFAULT_SEED 0x6269676d6f64656cull /* "bigmodel" */
#define WEIGHT_STD 0.02
/* standard deviation of the sum of four uniform 16-bit integers: 65536 / sqrt(3) */
#define LANE_SUM_STD 37837.226657
#define LANE_SUM_MEAN 131070.0

static uint64_t name_seed(const char *name, uint64_t seed) { return dev_mix64(dev_fnv1a64(name) ^ seed); }

/* float -> bf16 bits, round to nearest even (no NaN can occur here). */
static uint16_t bf16_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

struct fill_state {
    uint64_t seed;
};

static void fill_bf16(void *user, const char *name, uint64_t n_elems, uint64_t first, uint64_t n, void *out)
{
    (void)n_elems;
    const struct fill_state *st = user;
    uint64_t base = name_seed(name, st->seed);
    float offset = strstr(name, "norm") ? 1.0f : 0.0f;
    const float scale = (float)(WEIGHT_STD / LANE_SUM_STD);
    uint8_t *o = out;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t r = dev_mix64(base + (first + i) * 0x9e3779b97f4a7c15ull);
        uint32_t sum = (uint32_t)(r & 0xffff) + (uint32_t)((r >> 16) & 0xffff) + (uint32_t)((r >> 32) & 0xffff) +
                       (uint32_t)(r >> 48);
        float v = offset + ((float)sum - (float)LANE_SUM_MEAN) * scale;
        uint16_t b = bf16_bits(v);
        o[2 * i] = (uint8_t)b;
        o[2 * i + 1] = (uint8_t)(b >> 8);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: mkbigmodel OUTDIR [--preset issue|256m] [--hidden N] [--ffn N] [--layers N] [--heads N]\n"
                    "                  [--kv-heads N] [--vocab N] [--shards N] [--tied] [--seed N] [--dry-run]\n");
    exit(2);
}

static unsigned parse_uint(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s ? s : "", &end, 0);
    if (!s || !*s || *end || errno || v == 0 || v > 1000000000ul) {
        fprintf(stderr, "mkbigmodel: %s needs a positive integer, got '%s'\n", opt, s ? s : "");
        exit(2);
    }
    return (unsigned)v;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    static const struct stw_llama issue = {4, 4096, 14336, 512, 32, 8, "BF16", 1, 0};
    static const struct stw_llama small = {4, 1024, 4096, 32000, 16, 4, "BF16", 1, 0};
    struct stw_llama s = issue;
    const char *dir = NULL;
    uint64_t seed = DEFAULT_SEED;
    int dry = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--preset") == 0 && v) {
            if (strcmp(v, "issue") == 0) s = issue;
            else if (strcmp(v, "256m") == 0) s = small;
            else usage();
            i++;
        } else if (strcmp(a, "--hidden") == 0) s.hidden = parse_uint(a, v), i++;
        else if (strcmp(a, "--ffn") == 0) s.ffn = parse_uint(a, v), i++;
        else if (strcmp(a, "--layers") == 0) s.layers = parse_uint(a, v), i++;
        else if (strcmp(a, "--heads") == 0) s.heads = parse_uint(a, v), i++;
        else if (strcmp(a, "--kv-heads") == 0) s.kv_heads = parse_uint(a, v), i++;
        else if (strcmp(a, "--vocab") == 0) s.vocab = parse_uint(a, v), i++;
        else if (strcmp(a, "--shards") == 0) s.shards = parse_uint(a, v), i++;
        else if (strcmp(a, "--seed") == 0) seed = parse_uint(a, v), i++;
        else if (strcmp(a, "--tied") == 0) s.tied = 1;
        else if (strcmp(a, "--dry-run") == 0) dry = 1;
        else if (a[0] == '-' || dir) usage();
        else dir = a;
    }
    if (!dir) usage();
    if (s.hidden % s.heads || s.heads % s.kv_heads) {
        fprintf(stderr, "mkbigmodel: hidden (%u) must divide by heads (%u), heads by kv-heads (%u)\n", s.hidden,
                s.heads, s.kv_heads);
        return 2;
    }
    uint64_t params = stw_llama_params(&s), bytes = params * 2;
    char line[256];
    snprintf(line, sizeof line,
             "hidden=%u ffn=%u layers=%u heads=%u kv_heads=%u vocab=%u shards=%u tied=%d seed=%" PRIu64 " dtype=BF16",
             s.hidden, s.ffn, s.layers, s.heads, s.kv_heads, s.vocab, s.shards, s.tied, seed);
    printf("mkbigmodel: %s\nmkbigmodel: %" PRIu64 " parameters, %" PRIu64 " bytes of data (%.3f GB, %.3f GiB)\n", line,
           params, bytes, (double)bytes / 1e9, (double)bytes / 1073741824.0);
    if (dry) return 0;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "mkbigmodel: cannot create %s: %s\n", dir, strerror(errno));
        return 4;
    }
    char marker[4096];
    snprintf(marker, sizeof marker, "%s/.mkbigmodel", dir);
    remove(marker);
    double t0 = now();
    struct fill_state st = {seed};
    if (stw_write_llama_dense(dir, &s, fill_bf16, &st) != 0) {
        fprintf(stderr, "mkbigmodel: writing %s failed: %s\n", dir, strerror(errno));
        return 4;
    }
    FILE *f = fopen(marker, "w");
    if (!f || fprintf(f, "%s\n", line) < 0 || fclose(f) != 0) {
        fprintf(stderr, "mkbigmodel: cannot write %s\n", marker);
        return 4;
    }
    double dt = now() - t0;
    printf("mkbigmodel: wrote %s in %.1f s (%.2f GB/s)\n", dir, dt, (double)bytes / 1e9 / dt);
    return 0;
}
