/*
** convert_checked.h - mq_convert from a test: the options the tests vary, 2 threads, and a failed
** conversion fails the test with the input, type and the library's message.
*/
#ifndef MODELQ_TEST_CONVERT_CHECKED_H
#define MODELQ_TEST_CONVERT_CHECKED_H

#include <stddef.h>
#include <stdint.h>

#include "modelq/convert.h"

struct tc_convert {
    const char *input, *output, *type;
    const char *base;                  /* LoRA adapter input: the base model (NULL: none) */
    int debug_qk;                      /* mq_convert_options.debug_qk_permute */
    const struct mq_lora_merge *loras; /* --lora adapters merged while converting */
    size_t n_loras;
};

/* Converts; `rep` (may be NULL) receives the report, which the caller then frees. */
void tc_convert(const struct tc_convert *c, struct mq_convert_report *rep);

/* The data bytes of every tensor of a model file (a GGUF: its tensor data), concatenated in tensor
 * order; *len gets their count. Caller frees. */
uint8_t *tc_tensor_data(const char *path, size_t *len);

#endif
