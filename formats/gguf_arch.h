/* gguf_arch.h - Hugging Face architecture modules for GGUF output (gguf_arch.c). */
#ifndef MODELQ_FORMATS_GGUF_ARCH_H
#define MODELQ_FORMATS_GGUF_ARCH_H

#include <stdbool.h>
#include <stddef.h>

#include "modelq/error.h"

struct mq_plan;

/*
** When config.json names a supported architecture: general.architecture/name, the hyper-parameter
** keys, GGUF tensor names, Q/K permutation and generated tensors; *applied = true. Without a
** config (or an architectures list), nothing (*applied = false). An unsupported architecture is
** an error naming it and the supported list, unless the options ask for raw names.
*/
enum mq_status mq_gguf_arch_apply(struct mq_plan *p, bool *applied, struct mq_error *err);

/* general.name from the input path: the folder's name (no paths, no timestamps). */
void mq_gguf_model_name(const char *input, char *out, size_t cap);

#endif
