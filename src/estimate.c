/* estimate.c - weights per target, KV cache, inference and training memory (see estimate.h). */
#include "modelq/estimate.h"

#include <string.h>

#include "ckd.h"

void mq_estimate_options_default(struct mq_estimate_options *o)
{
    memset(o, 0, sizeof *o);
    o->ctx = MQ_ESTIMATE_DEFAULT_CTX;
    o->batch = 1;
    o->kv_bytes = 2;
    o->lora_rank = MQ_ESTIMATE_DEFAULT_LORA_RANK;
    o->reserve_bytes = MQ_ESTIMATE_DEFAULT_RESERVE;
}

/* a*b*c... with overflow reported; all inputs come from files or the command line. */
static int mul_all(uint64_t *r, const uint64_t *v, int n)
{
    uint64_t acc = 1;
    for (int i = 0; i < n; i++)
        if (mq_ckd_mul_u64(&acc, acc, v[i])) return 1;
    *r = acc;
    return 0;
}

enum mq_status mq_estimate_model(const struct mq_model *m, const struct mq_estimate_options *opt,
                                 struct mq_estimate *out, struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    out->opt = *opt;
    struct mq_rule_context rc;
    mq_rule_context_init(&rc, m);
    int ovf = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct mq_tensor *t = &m->tensors[i];
        ovf |= mq_ckd_add_u64(&out->params, out->params, t->numel);
        /* a bitsandbytes weight (formats/bnb_read.c) is stored as its codes plus side entries */
        ovf |= mq_ckd_add_u64(&out->source_bytes, out->source_bytes, t->bnb ? t->bnb->stored_bytes : t->fp8 ? t->fp8->stored_bytes : t->nbytes);
    }
    out->n_tensors = m->n_tensors;
    for (int k = 0; k < MQ_ESTIMATE_ROWS; k++) {
        struct mq_estimate_row *row = &out->rows[k];
        row->target = mq_target_of_estimate_row(k);
        for (size_t i = 0; i < m->n_tensors; i++) {
            const struct mq_tensor *t = &m->tensors[i];
            struct mq_tensor_plan p;
            enum mq_status s = mq_target_plan_tensor(row->target, &rc, t, &p, err);
            if (s != MQ_OK) {
                mq_error_prefix(err, "%s: tensor '%s'", m->input_path, t->name);
                return s;
            }
            ovf |= mq_ckd_add_u64(&row->bytes, row->bytes, p.bytes);
            if (p.quantized) row->quantized_params += t->numel;
            else row->kept_params += t->numel;
            if (p.fell_back) row->n_fallback++;
            /* LoRA adapters go where bitsandbytes would quantize: the linear layers */
            if (row->target == MQ_TARGET_NF4 && p.quantized) {
                out->linear_params += t->numel;
                out->linear_layers++;
                uint64_t io = t->shape[0] + t->shape[1], a;
                ovf |= mq_ckd_mul_u64(&a, io, opt->lora_rank);
                ovf |= mq_ckd_add_u64(&out->lora_params, out->lora_params, a);
            }
        }
        row->bpw = out->params ? (double)row->bytes * 8.0 / (double)out->params : 0.0;
    }
    const struct mq_config *c = &m->config;
    out->have_config = c->present && c->num_layers && c->num_kv_heads && c->head_dim;
    if (out->have_config) {
        uint64_t per_tok[] = {2, c->num_layers, c->num_kv_heads, c->head_dim, opt->kv_bytes};
        ovf |= mul_all(&out->kv_per_token, per_tok, 5);
        uint64_t kv[] = {out->kv_per_token, opt->ctx, opt->batch};
        ovf |= mul_all(&out->kv_bytes, kv, 3);
        uint64_t ub, tokens;
        ovf |= mq_ckd_mul_u64(&tokens, opt->ctx, opt->batch);
        ub = tokens < MQ_ESTIMATE_UBATCH ? tokens : MQ_ESTIMATE_UBATCH;
        uint64_t scores, width;
        ovf |= mq_ckd_mul_u64(&scores, c->num_heads, opt->ctx);
        ovf |= mq_ckd_add_u64(&width, c->vocab_size, scores);
        uint64_t cb[] = {4, ub, width};
        ovf |= mul_all(&out->compute_bytes, cb, 3);
        ovf |= mq_ckd_add_u64(&out->overhead_bytes, opt->reserve_bytes, out->compute_bytes);
        for (int k = 0; k < MQ_ESTIMATE_ROWS; k++) {
            struct mq_estimate_row *row = &out->rows[k];
            ovf |= mq_ckd_add_u64(&row->inference_bytes, row->bytes, out->kv_bytes);
            ovf |= mq_ckd_add_u64(&row->inference_bytes, row->inference_bytes, out->overhead_bytes);
        }
    }
    uint64_t adapters;
    ovf |= mq_ckd_mul_u64(&out->train_full_bytes, out->params, MQ_TRAIN_BYTES_PER_PARAM);
    ovf |= mq_ckd_mul_u64(&adapters, out->lora_params, MQ_TRAIN_BYTES_PER_PARAM);
    ovf |= mq_ckd_add_u64(&out->train_lora_bytes, mq_estimate_row_of(out, MQ_TARGET_F16)->bytes, adapters);
    ovf |= mq_ckd_add_u64(&out->train_qlora_bytes, mq_estimate_row_of(out, MQ_TARGET_NF4_DQ)->bytes, adapters);
    if (ovf)
        return MQ_FAIL(err, MQ_E_OVERFLOW, "size-overflow", "%s: estimate overflows 64 bits (check --ctx/--batch)",
                       m->input_path);
    return MQ_OK;
}

const struct mq_estimate_row *mq_estimate_row_of(const struct mq_estimate *e, enum mq_target t)
{
    for (int k = 0; k < MQ_ESTIMATE_ROWS; k++)
        if (e->rows[k].target == t) return &e->rows[k];
    return NULL;
}
