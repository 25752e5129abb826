/* cmd_verify.c - `modelq verify FILE`: recompute the per-tensor checksums modelq wrote. */
#include <inttypes.h>
#include <string.h>

#include "cli.h"
#include "modelq/convert.h"

static const char *const verify_help =
    "usage: modelq verify FILE.gguf|FOLDER [--quiet]\n"
    "\n"
    "Recomputes the XXH3-64 checksums modelq stored and compares them. GGUF: the header (every key,\n"
    "tensor info and the padding: modelq.header_xxh3) and every tensor's bytes (modelq.tensor_xxh3),\n"
    "plus zero padding and the file size. A bitsandbytes folder: in every safetensors shard the\n"
    "header and every stored tensor (the same keys in __metadata__), and config.json, the index and\n"
    "the tokenizer files (modelq.files_xxh3). Prints each mismatch. Files of older modelq versions\n"
    "carry tensor checksums only: their tensors are checked and a note says the header is not covered.\n"
    "Exit codes: 0 everything matches, 6 at least one mismatch, 7 the file carries no checksums\n"
    "(nothing verified), 2 usage, 3 bad input data (also a damaged or missing checksum record, a\n"
    "tensor without a checksum, nonzero padding, bytes appended or cut), 4 I/O, 5 out of memory.\n";

struct verify_ctx {
    bool quiet;
};

static void on_item(void *ctx, enum mq_verify_kind kind, const char *name, uint64_t stored, uint64_t actual)
{
    struct verify_ctx *v = ctx;
    const char *what = kind == MQ_VERIFY_HEADER ? "header of " : kind == MQ_VERIFY_FILE ? "file " : "";
    if (stored != actual)
        printf("MISMATCH %s%s: stored %016" PRIx64 ", data %016" PRIx64 "\n", what, name, stored, actual);
    else if (!v->quiet)
        printf("ok       %s%s %016" PRIx64 "\n", what, name, actual);
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
    if (mq_verify(path, on_item, &ctx, &r, &err) != MQ_OK) return cli_fail(&err);
    if (!r.has_checksums) {
        fprintf(stderr, "modelq: %s carries no checksums (no modelq.tensor_xxh3 key): nothing was verified\n", path);
        return EXIT_NO_CHECKSUMS;
    }
    if (r.n_bad || r.n_parts_bad) {
        if (r.n_parts_bad)
            printf("%s: %zu of %zu headers and files do not match their checksums\n", path, r.n_parts_bad, r.n_parts);
        printf("%s: %zu of %zu tensors do not match their checksums\n", path, r.n_bad, r.n_checked);
        return EXIT_MISMATCH;
    }
    if (r.header_covered) {
        if (r.n_parts == 1) printf("%s: all %zu tensors match their checksums, and so does the header\n", path, r.n_checked);
        else
            printf("%s: all %zu tensors match their checksums, and so do the %zu headers and other files\n", path,
                   r.n_checked, r.n_parts);
    } else {
        printf("%s: all %zu tensors match their checksums\n", path, r.n_checked);
        fprintf(stderr, "modelq: note: %s: header not covered (written by an older modelq): only tensor data was "
                "verified\n", path);
    }
    return EXIT_OK;
}
