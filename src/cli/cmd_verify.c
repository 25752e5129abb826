/* cmd_verify.c - `modelq verify FILE`: recompute the per-tensor checksums modelq wrote. */
#include <inttypes.h>
#include <string.h>

#include "cli.h"
#include "modelq/convert.h"

static const char *const verify_help =
    "usage: modelq verify FILE.gguf|FOLDER [--quiet]\n"
    "\n"
    "Recomputes the XXH3-64 checksum of every tensor's bytes and compares it with the one modelq stored\n"
    "(GGUF: metadata key modelq.tensor_xxh3; a bitsandbytes folder: the same key in every safetensors\n"
    "shard's __metadata__, one entry per stored tensor). Prints each mismatch.\n"
    "Exit codes: 0 all tensors match, 6 at least one mismatch, 7 the file carries no checksums\n"
    "(nothing verified), 2 usage, 3 bad input data, 4 I/O, 5 out of memory.\n";

struct verify_ctx {
    bool quiet;
};

static void on_tensor(void *ctx, const char *name, uint64_t stored, uint64_t actual)
{
    struct verify_ctx *v = ctx;
    if (stored != actual)
        printf("MISMATCH %s: stored %016" PRIx64 ", data %016" PRIx64 "\n", name, stored, actual);
    else if (!v->quiet)
        printf("ok       %s %016" PRIx64 "\n", name, actual);
}

int cmd_verify(int argc, char **argv)
{
    const char *path = NULL;
    struct verify_ctx ctx = {false};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(verify_help, stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
            ctx.quiet = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("verify", "unknown option '%s'", argv[i]);
        } else if (path) {
            return cli_usage_error("verify", "one FILE only");
        } else {
            path = argv[i];
        }
    }
    if (!path) return cli_usage_error("verify", "missing FILE");
    struct mq_error err;
    mq_error_clear(&err);
    struct mq_verify_result r;
    if (mq_verify(path, on_tensor, &ctx, &r, &err) != MQ_OK) return cli_fail(&err);
    if (!r.has_checksums) {
        fprintf(stderr, "modelq: %s carries no checksums (no modelq.tensor_xxh3 key): nothing was verified\n", path);
        return EXIT_NO_CHECKSUMS;
    }
    if (r.n_bad) {
        printf("%s: %zu of %zu tensors do not match their checksums\n", path, r.n_bad, r.n_checked);
        return EXIT_MISMATCH;
    }
    printf("%s: all %zu tensors match their checksums\n", path, r.n_checked);
    return EXIT_OK;
}
