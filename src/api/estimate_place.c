/*
** estimate_place.c - where llama.cpp puts a model's weights, KV cache and compute buffers over
** GPUs and the host (estimate --ngl / --gpu / --tensor-split / --fit; formulas in estimate.h).
**
** The layer split follows the pinned llama.cpp's llama_model::load_tensors (split mode "layer"):
**   i0  = max(n_layer + 1 - ngl, 0)          the first offloaded layer (n_layer = the output layer)
**   act = min(ngl, n_layer + 1)              (0 without devices)
**   layer il is on the host when il < i0 or il - i0 >= act, else on device
**   upper_bound(points, (float)(il - i0) / act), points[k] = sum(ratios[0..k]) / sum(ratios) in float
** the ratios being --tensor-split, or when those are all zero, each device's memory (llama.cpp
** reads the free memory; here the --gpu size, or equal shares when no size is given).
*/
#include "estimate_place.h"

#include <string.h>

#include "ckd.h"
#include "model_impl.h"
#include "tensor_role.h"

/* ggml pads every tensor of a buffer to the buffer type's alignment (32 on the CPU). */
#define TENSOR_ALIGN 32u

uint64_t mq_estimate_bucket(const struct mq_tensor *t, uint64_t n_layer)
{
    long il = mq_tensor_layer(t->name);
    if (il >= 0 && (uint64_t)il < n_layer) return (uint64_t)il;
    enum mq_role r = mq_tensor_role(t->name);
    if (r == MQ_ROLE_TOKEN_EMBD || r == MQ_ROLE_POS_EMBD) return MQ_BUCKET_INPUT(n_layer);
    return MQ_BUCKET_OUTPUT(n_layer); /* output_norm, output and any other model-level tensor */
}

/* llama.cpp's split points: running sums of the ratios over their total, in float. */
static uint32_t split_points(const struct mq_estimate_options *opt, float *points)
{
    uint32_t n = opt->n_gpus ? opt->n_gpus : 1;
    if (n > MQ_ESTIMATE_MAX_GPUS) n = MQ_ESTIMATE_MAX_GPUS;
    float sum = 0.0f;
    bool all_zero = true;
    for (uint32_t k = 0; k < n; k++)
        if (opt->tensor_split[k] != 0.0f) all_zero = false;
    for (uint32_t k = 0; k < n; k++) {
        float v = !all_zero ? opt->tensor_split[k] : opt->gpu_bytes[k] ? (float)opt->gpu_bytes[k] : 1.0f;
        sum += v;
        points[k] = sum;
    }
    for (uint32_t k = 0; k < n; k++) points[k] /= sum;
    return n;
}

static int layer_gpu(const float *points, uint32_t n, uint64_t n_layer, int64_t ngl, uint64_t il)
{
    if (ngl <= 0 || n_layer > INT32_MAX) return -1;
    const int64_t L = (int64_t)n_layer;
    const int64_t i0 = L + 1 - ngl > 0 ? L + 1 - ngl : 0;
    const int64_t act = ngl < L + 1 ? ngl : L + 1;
    if ((int64_t)il < i0 || (int64_t)il - i0 >= act) return -1;
    const float x = (float)((int64_t)il - i0) / (float)act;
    uint32_t k = 0;
    while (k < n && !(x < points[k])) k++; /* upper_bound: the first point above x */
    return (int)(k < n ? k : n - 1);
}

int mq_estimate_layer_gpu(const struct mq_estimate_options *opt, uint64_t n_layer, int64_t ngl, uint64_t il)
{
    float points[MQ_ESTIMATE_MAX_GPUS];
    uint32_t n = split_points(opt, points);
    return layer_gpu(points, n, n_layer, ngl, il);
}

/* Does layer il slide (a sliding-window layer with the smaller cache)? */
static bool layer_slides(const struct mq_config *c, uint64_t il)
{
    if (!c->sliding_window || !c->swa_layers) return false;
    if (c->swa_layers >= c->num_layers) return true;
    if (c->swa_period) return il % c->swa_period < c->swa_period - 1u;
    /* listed per layer and not kept: spread evenly (an approximation for such files) */
    return (il + 1) * c->swa_layers / c->num_layers > il * c->swa_layers / c->num_layers;
}

/* What one device (or the host) holds, beside the weights. */
struct holds {
    bool layer, output;
};

/* The compute buffer of a device holding these (see estimate.h). */
static uint64_t device_compute(const struct mq_config *c, const struct mq_kv_compute *kc, struct holds h, bool host,
                               int *ovf)
{
    uint64_t w = 0, b = 0;
    if (h.layer) {
        w = kc->st_ffn > kc->st_att ? kc->st_ffn : kc->st_att;
        if (h.output && kc->st_out > w) w = kc->st_out;
    } else if (h.output) {
        *ovf |= mq_ckd_add_u64(&w, c->vocab_size, c->hidden_size);
    }
    if (host && !h.layer) {
        /* the input stage: token rows, the logits copied back, the mask(s) built on the host */
        uint64_t in;
        *ovf |= mq_ckd_add_u64(&in, c->vocab_size, c->hidden_size);
        *ovf |= mq_ckd_add_u64(&in, in, kc->mask);
        if (in > w) w = in;
    }
    *ovf |= mq_ckd_mul_u64(&b, kc->ub, w);
    *ovf |= mq_ckd_mul_u64(&b, b, 4);
    if (h.layer && kc->cast_stage > b) b = kc->cast_stage;
    return b;
}

/* One row placed at ngl with the KV/compute of kc: per-device totals into p (and, when e is given,
** the layer ranges, KV and compute per device into e). */
static void place_row(const struct mq_model *m, const struct mq_estimate_options *opt, const uint64_t *bk,
                      bool tied, int64_t ngl, const struct mq_kv_compute *kc, struct mq_estimate_place *p,
                      struct mq_estimate *e, int *ovf)
{
    const struct mq_config *c = &m->config;
    const uint64_t L = c->num_layers;
    float points[MQ_ESTIMATE_MAX_GPUS];
    const uint32_t n = split_points(opt, points);
    uint64_t kv[MQ_ESTIMATE_MAX_GPUS] = {0}, host_kv = 0;
    struct holds hd[MQ_ESTIMATE_MAX_GPUS] = {{false, false}}, hh = {false, false};
    memset(p->gpu_weights, 0, sizeof p->gpu_weights);
    p->host_weights = bk[MQ_BUCKET_INPUT(L)];
    if (e) {
        for (uint32_t k = 0; k < MQ_ESTIMATE_MAX_GPUS; k++) e->gpu_first[k] = e->gpu_layers[k] = 0;
        e->output_gpu = -1;
    }
    for (uint64_t il = 0; il <= L; il++) {
        int d = layer_gpu(points, n, L, ngl, il);
        uint64_t w = bk[il], cells = il < L ? (layer_slides(c, il) ? kc->swa_cells : kc->cells) : 0, lkv = 0;
        if (il == L && tied) *ovf |= mq_ckd_add_u64(&w, w, d >= 0 ? bk[MQ_BUCKET_INPUT(L)] : 0);
        *ovf |= mq_ckd_mul_u64(&lkv, kc->per_layer, cells);
        uint64_t *wd = d >= 0 ? &p->gpu_weights[d] : &p->host_weights, *kd = d >= 0 ? &kv[d] : &host_kv;
        struct holds *h = d >= 0 ? &hd[d] : &hh;
        *ovf |= mq_ckd_add_u64(wd, *wd, w);
        *ovf |= mq_ckd_add_u64(kd, *kd, lkv);
        if (il < L) h->layer = true;
        else h->output = true;
        if (e && d >= 0 && il < L) {
            if (!e->gpu_layers[d]) e->gpu_first[d] = (int64_t)il;
            e->gpu_layers[d]++;
        }
        if (e && d >= 0 && il == L) e->output_gpu = d;
    }
    p->fits = true;
    for (uint32_t k = 0; k < n; k++) {
        uint64_t cb = device_compute(c, kc, hd[k], false, ovf), t = 0;
        *ovf |= mq_ckd_add_u64(&t, p->gpu_weights[k], kv[k]);
        *ovf |= mq_ckd_add_u64(&t, t, cb);
        *ovf |= mq_ckd_add_u64(&t, t, opt->reserve_bytes);
        p->gpu_total[k] = t;
        if (opt->gpu_bytes[k] && t > opt->gpu_bytes[k]) p->fits = false;
        if (e) e->gpu_kv[k] = kv[k], e->gpu_compute[k] = cb;
    }
    uint64_t hcb = device_compute(c, kc, hh, true, ovf);
    *ovf |= mq_ckd_add_u64(&p->host_total, p->host_weights, host_kv);
    *ovf |= mq_ckd_add_u64(&p->host_total, p->host_total, hcb);
    if (e) e->host_kv = host_kv, e->host_compute = hcb;
}

enum mq_status mq_estimate_place(const struct mq_model *m, const struct mq_estimate_options *opt,
                                 const uint64_t *buckets, bool tied_output, struct mq_estimate *out,
                                 struct mq_error *err)
{
    const uint64_t L = m->config.num_layers;
    const int64_t ngl = opt->n_gpu_layers < 0 || opt->n_gpu_layers > (int64_t)L + 1 ? (int64_t)L + 1 : opt->n_gpu_layers;
    struct mq_kv_compute kc;
    int ovf = 0;
    MQ_TRY(mq_estimate_kv_compute(m, opt, opt->ctx, &kc, err));
    out->placed = true;
    out->ngl = ngl;
    out->tied_output = tied_output;
    for (int k = 0; k < MQ_ESTIMATE_ROWS; k++)
        place_row(m, opt, buckets + (size_t)k * (L + 2), tied_output, ngl, &kc, &out->rows[k].place,
                  k == 0 ? out : NULL, &ovf);
    if (opt->fit) {
        /* the largest context: a multiple of 256 up to max(trained context, --ctx) */
        uint64_t cap = out->trained_ctx > opt->ctx ? out->trained_ctx : opt->ctx;
        cap = cap < 256 ? 256 : cap / 256 * 256;
        for (int k = 0; k < MQ_ESTIMATE_ROWS && !ovf; k++) {
            const uint64_t *bk = buckets + (size_t)k * (L + 2);
            struct mq_estimate_place *p = &out->rows[k].place, t;
            p->fit_ngl = -1;
            for (int64_t g = (int64_t)L + 1; g >= 0 && p->fit_ngl < 0; g--) {
                place_row(m, opt, bk, tied_output, g, &kc, &t, NULL, &ovf);
                if (t.fits) p->fit_ngl = g;
            }
            uint64_t lo = 0, hi = cap / 256; /* in units of 256 tokens: lo fits (0 = none), hi is the cap */
            while (lo < hi) {
                uint64_t mid = lo + (hi - lo + 1) / 2;
                struct mq_kv_compute kx;
                MQ_TRY(mq_estimate_kv_compute(m, opt, mid * 256, &kx, err));
                place_row(m, opt, bk, tied_output, ngl, &kx, &t, NULL, &ovf);
                if (ovf) break;
                if (t.fits) lo = mid;
                else hi = mid - 1;
            }
            p->fit_ctx = lo * 256;
        }
    }
    if (ovf)
        return MQ_FAIL(err, MQ_E_OVERFLOW, "size-overflow", "%s: placement overflows 64 bits", m->input_path);
    return MQ_OK;
}
