/*
** fuzz_common.h - shared by the libFuzzer targets in tools/fuzz/ (built with -DMODELQ_FUZZ=ON and
** clang). Each input is written to a private temporary file, because the readers take paths and
** read with pread exactly as they do on real checkpoints.
*/
#ifndef MODELQ_FUZZ_COMMON_H
#define MODELQ_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "modelq/convert.h"
#include "modelq/model.h"

/* Writes data to a fresh temporary file with the given suffix; returns its path (static buffer). */
static const char *fuzz_write_input(const uint8_t *data, size_t size, const char *suffix)
{
    static char path[256];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/modelq-fuzz-%ld%s", dir && *dir ? dir : "/tmp", (long)getpid(), suffix);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f) != 0) abort();
    return path;
}

/*
** Opens the file; when it loads and is small, plans and runs a dry-run conversion with error
** statistics (the pipeline reads every tensor), so the planner and the codecs see hostile shapes
** and values too. Errors are expected; crashes, leaks and undefined behaviour are what the
** sanitizers look for.
*/
static void fuzz_open_and_convert(const char *path)
{
    struct mq_model *m = NULL;
    struct mq_error err;
    if (mq_model_open(path, &m, &err) != MQ_OK) return;
    uint64_t elems = 0;
    for (size_t i = 0; i < mq_model_n_tensors(m); i++) elems += mq_tensor_numel(mq_model_tensor(m, i));
    mq_model_free(m);
    if (elems > (1u << 20)) return;
    static const char *const types[] = {"q8_0", "auto", "nf4"};
    for (size_t k = 0; k < 3; k++) {
        struct mq_convert_options o;
        mq_convert_options_default(&o);
        o.input = path;
        o.type = types[k];
        o.dry_run = true;
        o.stats = true;
        o.threads = 1;
        o.allow_requantize = true;
        struct mq_convert_report rep;
        mq_convert(&o, &rep, &err);
        mq_convert_report_free(&rep);
    }
}

#endif
