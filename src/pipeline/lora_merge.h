/*
** lora_merge.h - private: LoRA adapters merged into the base weights while converting.
**
** `convert BASE --lora DIR[:SCALE] ...` adds, to each base weight W an adapter adapts,
**     W' = W + sum over adapters of  s * B A,   s = SCALE * alpha / r  (rsLoRA: alpha / sqrt(r))
** with PEFT's shapes A [r, in], B [out, r] and W [out, in] (fan_in_fan_out: W stored [in, out],
** so W' = W + s (B A)^T). It is the transform MQ_XFORM_ADD_LORA, first in the tensor's list: it
** acts on the values in the base's own row order, before the Q/K permutation or anything a writer
** adds, on each chunk independently (the bytes do not depend on chunks or threads).
**
** Arithmetic (f32, fixed order): for each output element, the adapters in the order given and
** within one the rank terms q = 0 .. r-1 are added one by one, v = fma(s * B[o][q], A[q][i], v)
** (the product s * B[o][q] rounded to f32 first; one rounding per term). The order of the
** columns, rows and tiles a chunk is visited in does not change any element's chain. Memory: every adapter's A and B as f32 (about
** the adapter's size when it is stored in F32, as PEFT saves QLoRA adapters), nothing per chunk.
*/
#ifndef MODELQ_LORA_MERGE_H
#define MODELQ_LORA_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modelq/error.h"

struct mq_plan;
struct mq_plan_tensor;

/* One adapter's update of one base weight. */
struct mq_lora_term {
    uint32_t r;
    float scale;          /* SCALE x alpha / r (or / sqrt(r)) */
    float *a;             /* [r, in] (owned by the plan's LoRA state) */
    float *b;             /* [out, r] (owned by the plan's LoRA state) */
    bool fan_in_fan_out;  /* the base stores W as [in, out] */
    /* Set by mq_lora_merge_finish, in the orientation of the rows the run sees:
     * rows are W's outputs:  coef = s B (B scaled in place), vec = A;
     * rows are W's inputs:   coef = s A^T, vec = B^T (made then; A and B are freed). */
    const float *coef;    /* [rows, r]: row j's factor of rank term q, e.g. s x B[j][q] rounded to f32 */
    const float *vec;     /* rank term q's values along the row, in column tiles (lora_merge.c) */
    float *made[2];       /* what finish allocated for this term (freed with the plan) */
};

/* Every term of one base weight (what an MQ_XFORM_ADD_LORA points to). */
struct mq_lora_delta {
    size_t n;
    struct mq_lora_term *terms;
    uint64_t out, in;     /* W's [out, in] in PEFT's orientation */
};

/* Opens the adapters of the options, matches their pairs with p->model's tensors (by the base
 * module name), checks shapes, and adds an ADD_LORA transform to every adapted input tensor. Runs
 * before the writer names anything. Errors name the adapter and the tensor. */
enum mq_status mq_lora_merge_plan(struct mq_plan *p, struct mq_error *err);

/* After the writer's transforms: every delta must still be on a tensor of its own (an adapted
 * tensor stacked with others, as MoE experts are, is refused), and the orientation is fixed. */
enum mq_status mq_lora_merge_finish(struct mq_plan *p, struct mq_error *err);

/* Adds the delta to a chunk: elements [first, first + n) of tensor t in the base's row order. */
void mq_lora_merge_apply(const struct mq_plan_tensor *t, const struct mq_lora_delta *d, uint64_t first, size_t n,
                         float *v);

/* Frees what mq_lora_merge_plan kept in the plan. */
void mq_lora_merge_free(struct mq_plan *p);

#endif /* MODELQ_LORA_MERGE_H */
