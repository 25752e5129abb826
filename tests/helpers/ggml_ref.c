/* ggml_ref.c - dlopen of libggml-base.so for the differential tests (see ggml_ref.h). */
#include "ggml_ref.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GGML_DEFAULT_PATH "tools/interop/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so"

bool mq_ggml_open(struct mq_ggml *g, char *why, size_t why_len)
{
    memset(g, 0, sizeof *g);
    const char *env = getenv("MODELQ_GGML_LIB");
    snprintf(g->path, sizeof g->path, "%s", env && *env ? env : GGML_DEFAULT_PATH);
    g->handle = dlopen(g->path, RTLD_NOW | RTLD_LOCAL);
    if (!g->handle) {
        snprintf(why, why_len, "cannot load %s (%s); run tools/setup.sh (npm ci in tools/interop)", g->path,
                 dlerror());
        return false;
    }
    struct {
        const char *name;
        void **slot;
    } syms[] = {
        {"ggml_quantize_chunk", (void **)&g->quantize_chunk},
        {"ggml_quantize_init", (void **)&g->quantize_init},
        {"ggml_fp32_to_fp16", (void **)&g->fp32_to_fp16},
        {"ggml_fp16_to_fp32", (void **)&g->fp16_to_fp32},
        {"ggml_fp32_to_bf16", (void **)&g->fp32_to_bf16},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *p = dlsym(g->handle, syms[i].name);
        if (!p) {
            snprintf(why, why_len, "%s: missing symbol %s", g->path, syms[i].name);
            dlclose(g->handle);
            g->handle = NULL;
            return false;
        }
        memcpy(syms[i].slot, &p, sizeof p);
    }
    return true;
}

void mq_ggml_close(struct mq_ggml *g)
{
    if (g->handle) dlclose(g->handle);
    g->handle = NULL;
}
