/*
** cli_test_hooks.c - the environment variables modelq's end-to-end tests set, turned into the
** library's test hooks (modelq/testing.h). The library itself reads no environment.
**   MODELQ_CHUNK_ELEMS=N           elements per chunk
**   MODELQ_TEST_CHUNK_DELAY_MS=N   sleep before every chunk (signal tests)
**   MODELQ_FAULT_WRITE_AFTER=N     writes fail with ENOSPC after N bytes (full-disk tests)
**   MODELQ_NO_SIMD                 the portable kernels (same bytes)
*/
#include <stdlib.h>

#include "cli.h"
#include "modelq/quant.h"
#include "modelq/testing.h"

static uint64_t env_u64(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 10) : 0;
}

void cli_apply_test_hooks(void)
{
    struct mq_test_hooks h = {0};
    h.chunk_elems = env_u64("MODELQ_CHUNK_ELEMS");
    h.chunk_delay_ms = (unsigned)env_u64("MODELQ_TEST_CHUNK_DELAY_MS");
    const char *fault = getenv("MODELQ_FAULT_WRITE_AFTER");
    if (fault && *fault) {
        h.fault_write = true;
        h.fault_write_after = strtoull(fault, NULL, 10);
    }
    mq_testing_set_hooks(&h);
    if (getenv("MODELQ_NO_SIMD")) mq_quant_set_simd(0);
}
