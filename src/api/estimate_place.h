/*
** estimate_place.h - private: the pieces of estimate that placement (estimate_place.c) shares
** with the whole-model estimate (estimate.c).
*/
#ifndef MODELQ_ESTIMATE_PLACE_H
#define MODELQ_ESTIMATE_PLACE_H

#include "modelq/estimate.h"

/* The KV cache and compute buffer at one context size (estimate.h states the formulas). */
struct mq_kv_compute {
    uint64_t per_layer;      /* K + V bytes of one cell of one layer */
    uint64_t kv_per_token;   /* per_layer x layers */
    uint64_t cells, swa_cells; /* of a full / a sliding layer (0 without sliding layers) */
    uint64_t kv_bytes;
    uint64_t ub;             /* tokens of the micro-batch */
    uint64_t st_out, st_ffn, st_att; /* compute stages, f32 values per token */
    uint64_t mask;           /* the mask(s), f32 values per token (f16 with flash attention: halved) */
    uint64_t cast_stage;     /* bytes of flash attention's F16 copy of an F32 cache stage, 0 none */
    uint64_t compute;        /* the whole graph's buffer: 4 x ub x the widest stage (or cast_stage) */
};

enum mq_status mq_estimate_kv_compute(const struct mq_model *m, const struct mq_estimate_options *opt, uint64_t ctx,
                                      struct mq_kv_compute *r, struct mq_error *err);

/*
** Weight bytes per placement bucket of one row: [0, n_layer) the repeating layers, [n_layer] the
** output layer, [n_layer + 1] the input layer (host). Filled by estimate.c while it plans each
** tensor (mq_estimate_bucket says where a tensor goes).
*/
#define MQ_BUCKET_OUTPUT(n_layer) (n_layer)
#define MQ_BUCKET_INPUT(n_layer) ((n_layer) + 1)
uint64_t mq_estimate_bucket(const struct mq_tensor *t, uint64_t n_layer);

/* Fills out->placed and each row's place (and --fit) from the buckets (MQ_ESTIMATE_ROWS x
** (n_layer + 2) values, row-major); out's KV/compute fields are those of opt->ctx. */
enum mq_status mq_estimate_place(const struct mq_model *m, const struct mq_estimate_options *opt,
                                 const uint64_t *buckets, bool tied_output, struct mq_estimate *out,
                                 struct mq_error *err);

#endif /* MODELQ_ESTIMATE_PLACE_H */
