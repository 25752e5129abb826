/*
** lowbit_rules.h - llama-quantize's mixtures of the low-bit GGUF file types (Q2_K, Q2_K_S,
** Q3_K_S, Q3_K_M, Q3_K_L, IQ4_XS): the per-tensor type changes of llama_tensor_get_type that
** depend on the file type (lowbit_rules.c holds one row per file type).
*/
#ifndef MODELQ_LOWBIT_RULES_H
#define MODELQ_LOWBIT_RULES_H

#include <stdbool.h>

#include "modelq/target.h"
#include "tensor_role.h"

/* Target t has a row here. */
bool mq_lowbit_is_mixture(enum mq_target t);

/*
** The type llama-quantize gives a tensor of `role` in `layer` (-1: none) of a target-t file whose
** default type is c (the role-independent rules already applied by the caller come after: the
** 70B and 8-expert attention bumps, the fallback). Returns c when the mixture leaves it alone;
** otherwise sets *why (a static string).
*/
enum mq_codec mq_lowbit_choose(enum mq_target t, const struct mq_rule_context *rc, enum mq_role role, long layer,
                               enum mq_codec c, const char **why);

#endif
