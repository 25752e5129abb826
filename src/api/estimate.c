/* estimate.c - weights per target, KV cache, inference and training memory (see estimate.h). */
#include "model_impl.h"
#include "modelq/estimate.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckd.h"
#include "estimate_place.h"
#include "options.h"
#include "tensor_role.h"

static void estimate_defaults(struct mq_estimate_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->ctx = MQ_ESTIMATE_DEFAULT_CTX;
    o->batch = 1;
    o->kv_type_k = o->kv_type_v = MQ_CODEC_F16;
    o->ubatch = MQ_ESTIMATE_UBATCH;
    o->lora_rank = MQ_ESTIMATE_DEFAULT_LORA_RANK;
    o->reserve_bytes = MQ_ESTIMATE_DEFAULT_RESERVE;
    o->n_gpu_layers = -1; /* all, as llama.cpp's -1 */
}

/* The struct as of the release that introduced struct_size: every caller's is at least this. */
#define ESTIMATE_OPTIONS_MIN_SIZE (offsetof(struct mq_estimate_options, reserve_bytes) + sizeof(uint64_t))

void mq_estimate_options_init_sized(struct mq_estimate_options *o, size_t struct_size)
{
    struct mq_estimate_options d;
    estimate_defaults(&d);
    d.struct_size = struct_size;
    mq_options_give(o, struct_size, &d, sizeof d);
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

/* A MoE expert tensor: Hugging Face "...experts.N..." (Mixtral's block_sparse_moe.experts, Qwen3-MoE's
** mlp.experts) or llama.cpp's stacked "..._exps..." (shared experts are not experts here). */
static bool is_expert(const char *name)
{
    if (strstr(name, "_exps.")) return true;
    const char *e = strstr(name, ".experts.");
    return e && e[9] >= '0' && e[9] <= '9';
}

/* llama.cpp pads each sequence's context to a multiple of 256 cells (measured on the pinned
** libllama: n_ctx_seq = pad(ceil(n_ctx / n_seq), 256), cells = n_seq x n_ctx_seq). */
#define KV_PAD 256u

/* The KV cache types llama.cpp accepts (common/arg.cpp's kv_cache_types). */
static bool is_kv_type(enum mq_codec c)
{
    switch (c) {
    case MQ_CODEC_F32: case MQ_CODEC_F16: case MQ_CODEC_BF16: case MQ_CODEC_Q8_0: case MQ_CODEC_Q4_0:
    case MQ_CODEC_Q4_1: case MQ_CODEC_IQ4_NL: case MQ_CODEC_Q5_0: case MQ_CODEC_Q5_1: return true;
    default: return false;
    }
}

/*
** Bytes of one cell of one layer's K (or V): ggml_row_size(type, kv_heads x head_dim), which must
** fill the type's blocks. With flash attention llama.cpp also wants each head to fill them
** (llama_init_from_model: "K cache type q4_0 with block size 32 does not divide n_embd_head_k=16").
*/
static enum mq_status kv_row_bytes(enum mq_codec c, uint64_t kv_heads, uint64_t head_dim, bool flash_attn,
                                   const char *flag, uint64_t *out, struct mq_error *err)
{
    const struct mq_codec_info *ci = mq_codec_info(c);
    if (!ci || !is_kv_type(c))
        return MQ_FAIL(err, MQ_E_USAGE, "kv-type", "%s %s: not a KV cache type (f32 f16 bf16 q8_0 q4_0 q4_1 iq4_nl "
                       "q5_0 q5_1)", flag, ci ? ci->name : "?");
    if (flash_attn && head_dim % ci->block_elems)
        return MQ_FAIL(err, MQ_E_USAGE, "kv-type", "%s %s: the model's %s of %llu is not a multiple of the type's "
                       "%u-value blocks (llama.cpp refuses it with flash attention)", flag, ci->name,
                       strcmp(flag, "--cache-type-k") == 0 ? "head_dim" : "V head_dim", (unsigned long long)head_dim,
                       ci->block_elems);
    uint64_t width;
    if (mq_ckd_mul_u64(&width, kv_heads, head_dim))
        return MQ_FAIL(err, MQ_E_OVERFLOW, "size-overflow", "%s: a K/V row overflows 64 bits", flag);
    if (width % ci->block_elems)
        return MQ_FAIL(err, MQ_E_USAGE, "kv-type", "%s %s: a K/V row of %llu values (kv_heads x head_dim) does not "
                       "fill %u-value blocks", flag, ci->name, (unsigned long long)width, ci->block_elems);
    *out = width / ci->block_elems * ci->block_bytes;
    return MQ_OK;
}

/* llama.cpp's cells for ctx tokens: pad256, checked. */
static int pad_cells(uint64_t *r, uint64_t ctx)
{
    if (ctx > UINT64_MAX - (KV_PAD - 1)) return 1;
    *r = (ctx + (KV_PAD - 1)) / KV_PAD * KV_PAD;
    return 0;
}

/* A linear projection of a GGUF (its llama.cpp name; the NF4 rule sees Hugging Face names). */
static bool gguf_linear(const struct mq_tensor *t)
{
    if (!t->from_gguf || t->ndim < 2) return false;
    size_t n = strlen(t->name);
    if (n < 6 || strcmp(t->name + n - 6, "weight") != 0) return false;
    switch (mq_tensor_role(t->name)) {
    case MQ_ROLE_ATTN_Q:
    case MQ_ROLE_ATTN_K:
    case MQ_ROLE_ATTN_V:
    case MQ_ROLE_ATTN_QKV:
    case MQ_ROLE_ATTN_OUT:
    case MQ_ROLE_FFN_GATE:
    case MQ_ROLE_FFN_UP:
    case MQ_ROLE_FFN_DOWN: return true;
    default: return false;
    }
}

/* The RoPE scaling the model is configured with: config.json's rope_scaling (type, factor), or a
** GGUF's {arch}.rope.scaling.type / .factor. Nothing when absent or "default". */
static void rope_scaling_of(const struct mq_model *m, struct mq_estimate *out)
{
    out->rope_scaling[0] = '\0';
    out->rope_factor = 0;
    const cJSON *rs = m->config.json ? cJSON_GetObjectItemCaseSensitive(m->config.json, "rope_scaling") : NULL;
    if (cJSON_IsObject(rs)) {
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
        if (!cJSON_IsString(ty)) ty = cJSON_GetObjectItemCaseSensitive(rs, "type");
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(rs, "factor");
        if (cJSON_IsString(ty) && strcmp(ty->valuestring, "default") != 0)
            snprintf(out->rope_scaling, sizeof out->rope_scaling, "%s", ty->valuestring);
        if (cJSON_IsNumber(f) && isfinite(f->valuedouble)) out->rope_factor = f->valuedouble;
        return;
    }
    const char *arch = mq_meta_get_str(&m->meta, "general.architecture");
    if (!arch) return;
    char key[160];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    const char *ty = mq_meta_get_str(&m->meta, key);
    if (ty && strcmp(ty, "none") != 0) snprintf(out->rope_scaling, sizeof out->rope_scaling, "%s", ty);
    snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
    const struct mq_meta_value *f = mq_meta_get(&m->meta, key);
    if (f && (f->type == MQ_META_F32 || f->type == MQ_META_F64)) out->rope_factor = f->num.f;
}

/*
** The KV cache and the compute buffer at `ctx` tokens (see estimate.h), with the pieces placement
** needs: the bytes of one cell of one layer, the cells of a full and of a sliding layer, and the
** compute buffer's stages (f32 values per token of the micro-batch).
*/
enum mq_status mq_estimate_kv_compute(const struct mq_model *m, const struct mq_estimate_options *opt, uint64_t ctx,
                                      struct mq_kv_compute *r, struct mq_error *err)
{
    const struct mq_config *c = &m->config;
    memset(r, 0, sizeof *r);
    int ovf = 0;
    uint64_t row_k, row_v, per_layer, full_layers, a, b, swa_seq = 0;
    /* in llama.cpp's order of checks */
    if (mq_codec_is_quantized(opt->kv_type_v) && !opt->flash_attn && is_kv_type(opt->kv_type_v))
        return MQ_FAIL(err, MQ_E_USAGE, "kv-type", "--cache-type-v %s needs --flash-attn (llama.cpp: a quantized "
                       "V cache requires flash attention)", mq_codec_info(opt->kv_type_v)->name);
    MQ_TRY(kv_row_bytes(opt->kv_type_k, c->num_kv_heads, c->head_dim, opt->flash_attn, "--cache-type-k", &row_k, err));
    MQ_TRY(kv_row_bytes(opt->kv_type_v, c->num_kv_heads, c->head_dim_v ? c->head_dim_v : c->head_dim,
                        opt->flash_attn, "--cache-type-v", &row_v, err));
    ovf |= mq_ckd_add_u64(&per_layer, row_k, row_v);
    r->per_layer = per_layer;
    ovf |= mq_ckd_mul_u64(&r->kv_per_token, per_layer, c->num_layers);
    /* per sequence: the full layers' cells, then the sliding layers' (llama_kv_cache_iswa, whose
     * SWA cache is always padded to 256 too) */
    uint64_t padded = 0, swa_layers = c->sliding_window ? c->swa_layers : 0;
    uint64_t ubatch = opt->ubatch ? opt->ubatch : MQ_ESTIMATE_UBATCH; /* 0: a caller's zeroed options */
    ovf |= pad_cells(&padded, ctx);
    ovf |= mq_ckd_add_u64(&swa_seq, c->sliding_window, ubatch);
    ovf |= pad_cells(&swa_seq, swa_seq < padded ? swa_seq : padded);
    if (opt->swa_full) swa_seq = padded;
    full_layers = swa_layers < c->num_layers ? c->num_layers - swa_layers : 0;
    ovf |= mq_ckd_mul_u64(&r->cells, padded, opt->batch);
    if (swa_layers) ovf |= mq_ckd_mul_u64(&r->swa_cells, swa_seq, opt->batch);
    ovf |= mq_ckd_mul_u64(&a, full_layers, r->cells);
    ovf |= mq_ckd_mul_u64(&b, swa_layers, r->swa_cells);
    ovf |= mq_ckd_add_u64(&a, a, b);
    ovf |= mq_ckd_mul_u64(&r->kv_bytes, per_layer, a);
    uint64_t tokens;
    ovf |= mq_ckd_mul_u64(&tokens, ctx, opt->batch);
    r->ub = tokens < ubatch ? tokens : ubatch;
    /* llama.cpp's CPU compute buffer (ggml-alloc's peak over the graph, reserved for ub tokens
     * that all output logits), f32 values per token: the largest of the output stage, the FFN
     * stage and the attention stage, n_kv = the cache's cells and the mask n_kv f32 values per
     * token (f16 with flash attention, which never forms the heads x n_kv scores); the mask is
     * an input every layer reads, so it stays allocated through the FFN stages between them.
     * Fitted to the buffers llama.cpp reports (tests/test_compute_buffer.c: within 10%). */
    /* per sequence stream (llama.cpp keeps one per sequence: the scores span one stream's cells);
     * a model with sliding layers has a second mask, over the SWA cache's cells */
    uint64_t E = c->hidden_size, kvd = 0, n_kv = padded, mask = padded, t1, t2;
    if (swa_layers) ovf |= mq_ckd_add_u64(&mask, mask, swa_seq);
    r->mask = opt->flash_attn ? mask / 2 : mask;
    ovf |= mq_ckd_mul_u64(&kvd, c->num_kv_heads, c->head_dim);
    ovf |= mq_ckd_mul_u64(&t1, 2, E);
    ovf |= mq_ckd_add_u64(&r->st_out, c->vocab_size, t1);                 /* vocab + 2E */
    ovf |= mq_ckd_mul_u64(&t1, 3, c->intermediate_size);
    ovf |= mq_ckd_mul_u64(&t2, 3, E);
    ovf |= mq_ckd_add_u64(&r->st_ffn, t1, t2);                            /* 3 ff + 3E */
    ovf |= mq_ckd_mul_u64(&t1, 5, E);
    if (opt->flash_attn) {
        ovf |= mq_ckd_add_u64(&r->st_ffn, r->st_ffn, mask / 2);           /* + the f16 mask(s) */
        ovf |= mq_ckd_mul_u64(&t2, 4, kvd);
        ovf |= mq_ckd_add_u64(&r->st_att, t1, t2);                        /* 5E + 4 kv_dim + mask */
        ovf |= mq_ckd_add_u64(&r->st_att, r->st_att, mask / 2);
    } else {
        ovf |= mq_ckd_add_u64(&r->st_ffn, r->st_ffn, mask);               /* + the f32 mask(s) */
        ovf |= mq_ckd_mul_u64(&t2, 2, kvd);
        ovf |= mq_ckd_add_u64(&r->st_att, t1, t2);                        /* 5E + 2 kv_dim */
        ovf |= mq_ckd_mul_u64(&t2, c->num_heads, n_kv);                   /* + scores + f32 mask(s) */
        ovf |= mq_ckd_add_u64(&r->st_att, r->st_att, t2);
        ovf |= mq_ckd_add_u64(&r->st_att, r->st_att, mask);
    }
    uint64_t width = r->st_out > r->st_ffn ? r->st_out : r->st_ffn;
    if (r->st_att > width) width = r->st_att;
    uint64_t cb[] = {4, r->ub, width};
    ovf |= mul_all(&r->compute, cb, 3);
    if (opt->flash_attn && (opt->kv_type_k == MQ_CODEC_F32 || opt->kv_type_v == MQ_CODEC_F32)) {
        /* flash attention takes an F32 K or V cache as an F16 copy of all its cells (quantized
         * types it reads as they are): a stage of its own, kv_cells x kv_dim x 2 bytes per copy
         * beside the mask and two hidden-size rows per token; it counts when it is the widest */
        uint64_t cast = 0, stage = 0;
        ovf |= mq_ckd_mul_u64(&t1, r->cells, kvd);
        ovf |= mq_ckd_mul_u64(&t1, t1, 2);
        if (opt->kv_type_k == MQ_CODEC_F32) ovf |= mq_ckd_add_u64(&cast, cast, t1);
        if (opt->kv_type_v == MQ_CODEC_F32) ovf |= mq_ckd_add_u64(&cast, cast, t1);
        ovf |= mq_ckd_mul_u64(&t2, 2, E);
        ovf |= mq_ckd_add_u64(&t2, t2, mask / 2);
        uint64_t cs[] = {4, r->ub, t2};
        ovf |= mul_all(&stage, cs, 3);
        ovf |= mq_ckd_add_u64(&stage, stage, cast);
        r->cast_stage = stage;
        if (stage > r->compute) r->compute = stage;
    }
    if (ovf)
        return MQ_FAIL(err, MQ_E_OVERFLOW, "size-overflow", "%s: estimate overflows 64 bits (check --ctx/--batch)",
                       m->input_path);
    return MQ_OK;
}

enum mq_status mq_estimate_model(const struct mq_model *m, const struct mq_estimate_options *opt,
                                 struct mq_estimate *out, struct mq_error *err)
{
    memset(out, 0, sizeof *out);
    /* the caller's options as this library's struct (an older or newer header: options.h) */
    struct mq_estimate_options full;
    estimate_defaults(&full);
    MQ_TRY(mq_options_take(&full, sizeof full, opt, ESTIMATE_OPTIONS_MIN_SIZE, "mq_estimate_options", err));
    opt = &full;
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
    /* MoE: total vs active parameters per token */
    for (size_t i = 0; i < m->n_tensors; i++)
        if (is_expert(m->tensors[i].name)) ovf |= mq_ckd_add_u64(&out->expert_params, out->expert_params, m->tensors[i].numel);
    out->active_params = out->params;
    const struct mq_config *mc = &m->config;
    if (mc->num_experts && mc->experts_used && mc->experts_used <= mc->num_experts && out->expert_params) {
        /* expert tensors hold num_experts equal shares; a token uses experts_used of them */
        out->active_params = out->params - out->expert_params +
                             (uint64_t)((double)out->expert_params * (double)mc->experts_used / (double)mc->num_experts);
    }
    /* placement: each row's weight bytes per layer bucket (estimate_place.h) */
    const struct mq_config *cfg = &m->config;
    const bool place = opt->place;
    uint64_t *buckets = NULL, nb = cfg->num_layers + 2;
    bool tied = true;
    if (place) {
        if (!(cfg->present && cfg->num_layers && cfg->num_kv_heads && cfg->head_dim))
            return MQ_FAIL(err, MQ_E_USAGE, "placement", "%s: --ngl/--gpu need the model's layers and heads "
                           "(config.json, or a GGUF's metadata)", m->input_path);
        if (cfg->num_layers > (1u << 20) || !(buckets = calloc((size_t)nb * MQ_ESTIMATE_ROWS, sizeof *buckets)))
            return MQ_FAIL(err, MQ_E_NOMEM, "out-of-memory", "%s: placement of %llu layers", m->input_path,
                           (unsigned long long)cfg->num_layers);
        for (size_t i = 0; i < m->n_tensors; i++)
            if (mq_tensor_role(m->tensors[i].name) == MQ_ROLE_OUTPUT) tied = false;
    }
    for (int k = 0; k < MQ_ESTIMATE_ROWS; k++) {
        struct mq_estimate_row *row = &out->rows[k];
        row->target = mq_target_of_estimate_row(k);
        for (size_t i = 0; i < m->n_tensors; i++) {
            const struct mq_tensor *t = &m->tensors[i];
            struct mq_tensor_plan p;
            enum mq_status s = mq_target_plan_tensor(row->target, &rc, t, &p, err);
            if (s != MQ_OK) {
                mq_error_prefix(err, "%s: tensor '%s'", m->input_path, t->name);
                free(buckets);
                return s;
            }
            ovf |= mq_ckd_add_u64(&row->bytes, row->bytes, p.bytes);
            if (buckets) {
                /* in a device buffer each tensor is padded to ggml's 32-byte alignment */
                uint64_t *b = &buckets[(size_t)k * nb + mq_estimate_bucket(t, cfg->num_layers)];
                ovf |= p.bytes > UINT64_MAX - 31 || mq_ckd_add_u64(b, *b, (p.bytes + 31) / 32 * 32);
            }
            if (p.quantized) row->quantized_params += t->numel;
            else row->kept_params += t->numel;
            if (p.fell_back) row->n_fallback++;
            /* LoRA adapters go where bitsandbytes would quantize: the linear layers (in a GGUF,
             * recognised by their llama.cpp names; a 3-D expert tensor is one linear per expert) */
            if (row->target == MQ_TARGET_NF4 && (p.quantized || gguf_linear(t))) {
                uint64_t in = t->shape[t->ndim - 1], outf = t->shape[t->ndim - 2];
                uint64_t count = in && outf ? t->numel / in / outf : 0, a;
                out->linear_params += t->numel;
                out->linear_layers += count;
                ovf |= mq_ckd_mul_u64(&a, in + outf, opt->lora_rank);
                ovf |= mq_ckd_mul_u64(&a, a, count);
                ovf |= mq_ckd_add_u64(&out->lora_params, out->lora_params, a);
            }
        }
        row->bpw = out->params ? (double)row->bytes * 8.0 / (double)out->params : 0.0;
    }
    const struct mq_config *c = &m->config;
    out->trained_ctx = c->max_position;
    rope_scaling_of(m, out);
    out->have_config = c->present && c->num_layers && c->num_kv_heads && c->head_dim;
    if (out->have_config) {
        struct mq_kv_compute kc;
        enum mq_status s = mq_estimate_kv_compute(m, opt, opt->ctx, &kc, err);
        if (s == MQ_OK && buckets && !ovf) s = mq_estimate_place(m, opt, buckets, tied, out, err);
        free(buckets);
        buckets = NULL;
        if (s != MQ_OK) return s;
        out->kv_per_token = kc.kv_per_token;
        out->kv_cells = kc.cells;
        out->kv_swa_cells = kc.swa_cells;
        out->kv_bytes = kc.kv_bytes;
        out->compute_bytes = kc.compute;
        ovf |= mq_ckd_add_u64(&out->overhead_bytes, opt->reserve_bytes, out->compute_bytes);
        for (int k = 0; k < MQ_ESTIMATE_ROWS; k++) {
            struct mq_estimate_row *row = &out->rows[k];
            ovf |= mq_ckd_add_u64(&row->inference_bytes, row->bytes, out->kv_bytes);
            ovf |= mq_ckd_add_u64(&row->inference_bytes, row->inference_bytes, out->overhead_bytes);
        }
    }
    uint64_t adapters;
    ovf |= mq_ckd_mul_u64(&out->train_full_bytes, out->params, MQ_TRAIN_BYTES_PER_PARAM);
    if (opt->lora_params) out->lora_params = opt->lora_params; /* the adapter's own count */
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
