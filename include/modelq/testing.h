/*
** modelq/testing.h - switches for modelq's own tests. Not a stable API.
**
** The library reads no environment variables. Tests that need small chunks (many chunks from a
** tiny model), slow runs (to interrupt them) or a write failure after N bytes (a full disk) set
** these hooks; the modelq CLI sets them from MODELQ_CHUNK_ELEMS, MODELQ_TEST_CHUNK_DELAY_MS and
** MODELQ_FAULT_WRITE_AFTER (and calls mq_quant_set_simd(0) for MODELQ_NO_SIMD), so end-to-end
** tests can drive the real binary. All zero = off (the defaults).
*/
#ifndef MODELQ_TESTING_H
#define MODELQ_TESTING_H

#include <stdbool.h>
#include <stdint.h>

#include "modelq/export.h"

struct mq_test_hooks {
    uint64_t chunk_elems;        /* elements per chunk instead of the default (about 256K) */
    unsigned chunk_delay_ms;     /* sleep before every chunk */
    bool fault_write;            /* output writes fail with ENOSPC once more than ... */
    uint64_t fault_write_after;  /* ... this many bytes would have been written */
};

/* Copies *h into the process-wide hooks (NULL: all off). Call before a conversion starts. */
MQ_API void mq_testing_set_hooks(const struct mq_test_hooks *h);
/* The hooks in force. */
MQ_API const struct mq_test_hooks *mq_testing_hooks(void);

#endif /* MODELQ_TESTING_H */
