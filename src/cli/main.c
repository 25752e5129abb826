/* main.c - modelq's command table and global flags. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "modelq/version.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"inspect", cmd_inspect, "list a checkpoint's metadata, tensors and totals by dtype"},
    {"estimate", cmd_estimate, "memory table for this model: FP32/FP16/INT8/NF4/GGUF, VRAM, training"},
    {"convert", cmd_convert, "convert a checkpoint into a (quantized) GGUF file in one streaming pass"},
    {"report", cmd_report, "a self-contained HTML report: staircases, error by tensor, memory vs GPUs"},
    {"verify", cmd_verify, "recompute the per-tensor checksums of a file modelq wrote"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: modelq [--verbose] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'modelq COMMAND --help' describes a command. Exit codes: 0 ok, 1 internal error, 2 usage,\n"
               "3 bad input data, 4 I/O error, 5 out of memory; verify: 6 checksum mismatch, 7 no checksums.\n");
}

int main(int argc, char **argv)
{
    cli_apply_test_hooks();
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "-v") == 0) {
            cli_verbose = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("modelq %s\n", mq_version_string());
            return EXIT_OK;
        } else {
            fprintf(stderr, "modelq: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (strcmp(argv[i], commands[k].name) == 0) return commands[k].run(argc - i, argv + i);
    fprintf(stderr, "modelq: unknown command '%s'\n", argv[i]);
    usage(stderr);
    return EXIT_USAGE;
}
