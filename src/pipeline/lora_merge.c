/* lora_merge.c - --lora adapters merged into the base weights while converting (lora_merge.h). */
#include "lora_merge.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelq/half.h"
#include "plan.h"
#include "qcommon.h"

#define LORA_TILE 64  /* columns per tile: 64 ranks x 64 columns of A (16 KiB) stay in L1 */
#define LORA_K 8      /* rank terms per pass over a row piece */
#define LORA_MR 6     /* rows per register tile (6 rows x 16 columns: 12 of the 16 AVX registers) */

/* What the plan keeps: the opened adapters and one delta per adapted base tensor. */
struct mq_lora_state {
    struct mq_model **adapters;
    size_t n_adapters;
    struct mq_lora_delta **deltas; /* by base tensor index (NULL: not adapted) */
    size_t n_base;
    size_t n_deltas;
    float **owned;                 /* A and B arrays */
    size_t n_owned, cap_owned;
};

void mq_lora_merge_free(struct mq_plan *p)
{
    struct mq_lora_state *st = p->lora;
    if (!st) return;
    for (size_t i = 0; i < st->n_adapters; i++) mq_model_free(st->adapters[i]);
    free(st->adapters);
    for (size_t i = 0; st->deltas && i < st->n_base; i++) {
        struct mq_lora_delta *d = st->deltas[i];
        if (!d) continue;
        for (size_t k = 0; k < d->n; k++) {
            free(d->terms[k].made[0]);
            free(d->terms[k].made[1]);
        }
        free(d->terms);
        free(d);
    }
    free(st->deltas);
    for (size_t i = 0; i < st->n_owned; i++) free(st->owned[i]);
    free(st->owned);
    free(st);
    p->lora = NULL;
}

/* The state keeps (and frees) v; -1 when out of memory (v is not kept). */
static int own(struct mq_lora_state *st, float *v)
{
    if (st->n_owned == st->cap_owned) {
        size_t nc = st->cap_owned ? 2 * st->cap_owned : 64;
        float **g = realloc(st->owned, nc * sizeof *g);
        if (!g) return -1;
        st->owned = g;
        st->cap_owned = nc;
    }
    st->owned[st->n_owned++] = v;
    return 0;
}

/* Frees v, which the state owns (it forgets it). */
static void release(struct mq_lora_state *st, float *v)
{
    for (size_t i = 0; i < st->n_owned; i++)
        if (st->owned[i] == v) {
            free(v);
            st->owned[i] = st->owned[--st->n_owned];
            return;
        }
}

/* Tensor t of adapter m as f32 (F32, F16 or BF16), kept by the state. */
static enum mq_status read_f32(struct mq_lora_state *st, const struct mq_model *m, size_t t, float **out,
                               struct mq_error *err)
{
    const struct mq_tensor *ts = &m->tensors[t];
    const size_t es = ts->dtype == MQ_DTYPE_F32 ? 4 : 2;
    if (ts->dtype != MQ_DTYPE_F32 && ts->dtype != MQ_DTYPE_F16 && ts->dtype != MQ_DTYPE_BF16)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "lora-dtype", "%s: tensor %s is %s; LoRA matrices are F32, F16 or BF16",
                       m->input_path, ts->name, mq_dtype_name(ts->dtype));
    if (ts->numel > (SIZE_MAX / 4) || ts->nbytes != ts->numel * es)
        return MQ_FAIL(err, MQ_E_CORRUPT, "lora-size", "%s: tensor %s: %" PRIu64 " bytes for %" PRIu64 " elements",
                       m->input_path, ts->name, ts->nbytes, ts->numel);
    float *v = malloc((size_t)ts->numel * sizeof *v + 1);
    if (!v || own(st, v) != 0) {
        free(v);
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory reading tensor %s of %s", ts->name, m->input_path);
    }
    /* 16-bit values are read into the upper half of the same buffer, then widened in place, front to back */
    void *raw = es == 4 ? (void *)v : (void *)((uint16_t *)(void *)v + ts->numel);
    MQ_TRY(mq_model_read(m, t, 0, raw, (size_t)ts->nbytes, err));
    if (ts->dtype == MQ_DTYPE_F16) mq_f16_to_f32_row(raw, v, (size_t)ts->numel);
    else if (ts->dtype == MQ_DTYPE_BF16) mq_bf16_to_f32_row(raw, v, (size_t)ts->numel);
    for (uint64_t i = 0; i < ts->numel; i++)
        if (!isfinite(v[i]))
            return MQ_FAIL(err, MQ_E_RANGE, "lora-value", "%s: tensor %s holds a NaN or infinity at element %" PRIu64,
                           m->input_path, ts->name, i);
    *out = v;
    return MQ_OK;
}

/* "base_model.model.<module>.lora_A.weight" -> "<module>.weight" and A or B; false for other names. */
static bool base_name(const char *name, char *out, size_t cap, bool *is_a)
{
    static const char pre[] = "base_model.model.";
    const char *p = strncmp(name, pre, sizeof pre - 1) == 0 ? name + sizeof pre - 1 : name;
    static const char *const suf[2] = {".lora_A.weight", ".lora_B.weight"};
    size_t n = strlen(p);
    for (int k = 0; k < 2; k++) {
        size_t s = strlen(suf[k]);
        if (n <= s || strcmp(p + n - s, suf[k]) != 0 || n - s + sizeof ".weight" > cap) continue;
        snprintf(out, cap, "%.*s.weight", (int)(n - s), p);
        *is_a = k == 0;
        return true;
    }
    return false;
}

static enum mq_status add_term(struct mq_lora_state *st, size_t base_t, const struct mq_tensor *w,
                               struct mq_lora_term term, uint64_t out, uint64_t in, struct mq_error *err)
{
    struct mq_lora_delta *d = st->deltas[base_t];
    if (!d) {
        d = calloc(1, sizeof *d);
        if (!d) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
        d->out = out;
        d->in = in;
        st->deltas[base_t] = d;
        st->n_deltas++;
    }
    (void)w;
    struct mq_lora_term *g = realloc(d->terms, (d->n + 1) * sizeof *g);
    if (!g) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    d->terms = g;
    d->terms[d->n++] = term;
    return MQ_OK;
}

/* One adapter: pair its A/B tensors, match the base's, check shapes, add the terms. */
/* B's rows in the GGUF base's order: within each head of hd rows, row 2i + j is HF row j hd/2 + i
 * (convert_hf_to_gguf's Q/K permutation, which W's rows already had). */
static enum mq_status permute_b(struct mq_lora_state *st, const float *b, uint64_t out, uint64_t r, uint64_t heads,
                                float **res, const char *path, const char *name, struct mq_error *err)
{
    if (heads == 0 || out % heads || (out / heads) % 2)
        return MQ_FAIL(err, MQ_E_CORRUPT, "lora-shape", "%s: tensor %s: %" PRIu64 " rows do not split into %" PRIu64
                       " heads of even size", path, name, out, heads);
    float *pb = malloc((size_t)(out * r) * sizeof *pb + 1);
    if (!pb || own(st, pb) != 0) {
        free(pb);
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    }
    const uint64_t hd = out / heads;
    for (uint64_t h = 0; h < heads; h++)
        for (uint64_t i = 0; i < hd / 2; i++)
            for (uint64_t j = 0; j < 2; j++)
                memcpy(pb + (h * hd + 2 * i + j) * r, b + (h * hd + j * (hd / 2) + i) * r, (size_t)r * sizeof *pb);
    *res = pb;
    return MQ_OK;
}

static enum mq_status plan_adapter(struct mq_plan *p, struct mq_lora_state *st, const struct mq_model *ad, double scale,
                                   struct mq_error *err)
{
    const struct mq_model *m = p->model;
    const bool gguf = strcmp(m->format, "gguf") == 0;
    const struct mq_lora_config *lc = ad->lora;
    if (lc->alpha_pattern)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "lora-scale", "%s: \"alpha_pattern\" (per-module alphas) is not "
                       "supported for merging", lc->path);
    for (size_t i = 0; i < ad->n_tensors; i++) {
        char base[512], other[600];
        bool is_a;
        const char *name = ad->tensors[i].name;
        if (!base_name(name, base, sizeof base, &is_a))
            return MQ_FAIL(err, MQ_E_UNSUPPORTED, "lora-tensor", "%s: tensor %s is not a LoRA pair member (lora_A / "
                           "lora_B): full tensors (modules_to_save, biases) and DoRA vectors are not merged",
                           ad->input_path, name);
        if (!is_a) continue; /* each pair once, from its A */
        size_t bl = strlen(name);
        snprintf(other, sizeof other, "%.*sB.weight", (int)(bl - strlen("A.weight")), name);
        long bi = mq_model_find(ad, other);
        if (bi < 0)
            return MQ_FAIL(err, MQ_E_CORRUPT, "lora-tensor", "%s: tensor %s has no %s beside it", ad->input_path, name,
                           other);
        /* a GGUF base has the GGUF names and Q/K rows already permuted (the writer's mapping) */
        uint64_t heads = 0;
        char gname[512];
        const char *wname = base;
        if (gguf) {
            MQ_TRY(p->writer->input_name_of_hf(m, base, gname, sizeof gname, &heads, err));
            wname = gname;
        }
        long wi = mq_model_find(m, wname);
        if (wi < 0)
            return MQ_FAIL(err, MQ_E_CORRUPT, "lora-base", "%s: tensor %s adapts %s, which %s does not have (another "
                           "base model?)", ad->input_path, name, wname, m->input_path);
        const struct mq_tensor *A = &ad->tensors[i], *B = &ad->tensors[bi], *W = &m->tensors[wi];
        if (A->ndim != 2 || B->ndim != 2 || W->ndim != 2 || A->shape[0] != B->shape[1])
            return MQ_FAIL(err, MQ_E_CORRUPT, "lora-shape", "%s: tensors %s and %s are not a LoRA pair of 2-D matrices "
                           "with one rank", ad->input_path, name, other);
        const uint64_t r = A->shape[0];
        /* W [out, in] (fan_in_fan_out: stored [in, out]); A [r, in], B [out, r] */
        const uint64_t out = lc->fan_in_fan_out ? W->shape[1] : W->shape[0];
        const uint64_t in = lc->fan_in_fan_out ? W->shape[0] : W->shape[1];
        if (A->shape[1] != in || B->shape[0] != out)
            return MQ_FAIL(err, MQ_E_CORRUPT, "lora-shape", "%s: tensors %s [%" PRIu64 ", %" PRIu64 "] and %s [%" PRIu64
                           ", %" PRIu64 "] do not fit %s [%" PRIu64 ", %" PRIu64 "] of %s%s", ad->input_path, name,
                           A->shape[0], A->shape[1], other, B->shape[0], B->shape[1], base, W->shape[0], W->shape[1],
                           m->input_path, lc->fan_in_fan_out ? " (fan_in_fan_out: stored [in, out])" : "");
        if (r != lc->r && !lc->rank_pattern)
            return MQ_FAIL(err, MQ_E_CORRUPT, "lora-shape", "%s: tensor %s has rank %" PRIu64 " but \"r\" is %" PRIu64
                           " (and there is no rank_pattern)", ad->input_path, name, r, lc->r);
        struct mq_lora_term term = {.r = (uint32_t)r, .fan_in_fan_out = lc->fan_in_fan_out};
        /* PEFT's scaling: alpha / r, rsLoRA alpha / sqrt(r), with the module's own rank */
        const double s = scale * (lc->use_rslora ? lc->alpha / sqrt((double)r) : lc->alpha / (double)r);
        if (!isfinite(s) || fabs(s) > 3.0e38)
            return MQ_FAIL(err, MQ_E_RANGE, "lora-scale", "%s: scale %g is out of range", ad->input_path, s);
        term.scale = (float)s;
        float *a, *b;
        MQ_TRY(read_f32(st, ad, i, &a, err));
        MQ_TRY(read_f32(st, ad, (size_t)bi, &b, err));
        if (heads) {
            float *pb = NULL;
            MQ_TRY(permute_b(st, b, out, r, heads, &pb, ad->input_path, name, err));
            release(st, b);
            b = pb;
        }
        term.a = a;
        term.b = b;
        MQ_TRY(add_term(st, (size_t)wi, W, term, out, in, err));
    }
    return MQ_OK;
}

enum mq_status mq_lora_merge_plan(struct mq_plan *p, struct mq_error *err)
{
    const struct mq_convert_options *o = p->opt;
    if (!o->n_loras) return MQ_OK;
    const struct mq_model *m = p->model;
    if (m->lora)
        return MQ_FAIL(err, MQ_E_USAGE, "lora", "%s is itself a LoRA adapter: --lora merges adapters into a base "
                       "model", m->input_path);
    if (strcmp(m->format, "gguf") == 0 && (!p->writer || !p->writer->input_name_of_hf))
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "lora", "%s: --lora into a GGUF base needs a GGUF output (its names and "
                       "layouts)", m->input_path);
    struct mq_lora_state *st = calloc(1, sizeof *st);
    if (!st) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    p->lora = st;
    st->n_base = m->n_tensors;
    st->deltas = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *st->deltas);
    st->adapters = calloc(o->n_loras, sizeof *st->adapters);
    if (!st->deltas || !st->adapters) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    for (size_t k = 0; k < o->n_loras; k++) {
        const struct mq_lora_merge *lm = &o->loras[k];
        MQ_TRY(mq_model_open(lm->path, &st->adapters[k], err));
        st->n_adapters++;
        if (!st->adapters[k]->lora)
            return MQ_FAIL(err, MQ_E_USAGE, "lora", "%s: not a LoRA adapter folder (no adapter_config.json)", lm->path);
        MQ_TRY(plan_adapter(p, st, st->adapters[k], lm->scale, err));
    }
    /* the transform goes first on each adapted input (the plan's tensors are still the inputs) */
    for (size_t i = 0; i < p->n; i++) {
        const struct mq_plan_tensor *t = &p->t[i];
        if (t->nseg != 1) continue;
        const struct mq_lora_delta *d = st->deltas[mq_plan_seg(t, 0)->tensor];
        if (!d) continue;
        struct mq_xform x = {.kind = MQ_XFORM_ADD_LORA, .lora = d};
        enum mq_status s = mq_plan_add_xform(&p->t[i], x, err);
        if (s != MQ_OK) {
            mq_error_prefix(err, "--lora");
            return s;
        }
    }
    return MQ_OK;
}

/*
** The rank vectors in column tiles: element (q, c) of the r x cols matrix src (at src[q sq + c sc])
** goes to t0 r + q tw + (c - t0), t0 = c rounded down to LORA_TILE, tw = the tile's width. A tile
** (r x 64 floats) is then contiguous: with rows of 2^k floats, the r rows of one tile would
** otherwise share a handful of L1 sets and evict each other on every pass.
*/
static float *pack_tiles(const float *src, size_t r, size_t cols, size_t sq, size_t sc)
{
    float *v = malloc(r * cols * sizeof *v + 1);
    if (!v) return NULL;
    for (size_t t0 = 0; t0 < cols; t0 += LORA_TILE) {
        const size_t tw = cols - t0 < LORA_TILE ? cols - t0 : LORA_TILE;
        float *dst = v + t0 * r;
        for (size_t q = 0; q < r; q++)
            for (size_t c = 0; c < tw; c++) dst[q * tw + c] = src[q * sq + (t0 + c) * sc];
    }
    return v;
}

/* The term's coefficients and vectors for the rows the run sees: they are W's outputs when the
 * stored layout and the loader's transpose agree (coef = s B, scaled in place; vec = A in tiles),
 * else its inputs (coef = s A^T, vec = B^T in tiles). A and B are freed once repacked, so memory
 * stays the adapter's. */
static enum mq_status orient(struct mq_lora_state *st, const struct mq_lora_delta *d, struct mq_lora_term *tm,
                             bool transposed, const char *name, struct mq_error *err)
{
    if (tm->coef) return MQ_OK;
    const size_t r = tm->r, in = (size_t)d->in, out = (size_t)d->out;
    float *coef = NULL, *vec = NULL;
    if (tm->fan_in_fan_out == transposed) {
        vec = pack_tiles(tm->a, r, in, in, 1);
        if (!vec) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory for tensor %s", name);
        for (size_t i = 0; i < out * r; i++) tm->b[i] = tm->scale * tm->b[i];
        coef = tm->b; /* stays owned by the state */
        release(st, tm->a);
    } else {
        coef = malloc(in * r * sizeof *coef + 1);
        vec = pack_tiles(tm->b, r, out, 1, r);
        if (!coef || !vec) {
            free(coef);
            free(vec);
            return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory for tensor %s", name);
        }
        for (size_t q = 0; q < r; q++)
            for (size_t i = 0; i < in; i++) coef[i * r + q] = tm->scale * tm->a[q * in + i];
        release(st, tm->a);
        release(st, tm->b);
        tm->made[1] = coef;
    }
    tm->a = tm->b = NULL;
    tm->made[0] = vec;
    tm->coef = coef;
    tm->vec = vec;
    return MQ_OK;
}

enum mq_status mq_lora_merge_finish(struct mq_plan *p, struct mq_error *err)
{
    struct mq_lora_state *st = p->lora;
    if (!st) return MQ_OK;
    size_t seen = 0;
    for (size_t i = 0; i < p->n; i++) {
        struct mq_plan_tensor *t = &p->t[i];
        for (size_t k = 0; k < t->nxf; k++) {
            if (t->xf[k].kind != MQ_XFORM_ADD_LORA) continue;
            struct mq_lora_delta *d = (struct mq_lora_delta *)t->xf[k].lora;
            seen++;
            const bool transposed = mq_xform_transposed(t);
            for (size_t j = 0; j < d->n; j++) MQ_TRY(orient(st, d, &d->terms[j], transposed, t->name, err));
        }
    }
    if (seen != st->n_deltas)
        return MQ_FAIL(err, MQ_E_UNSUPPORTED, "lora", "%s: %zu of the %zu adapted tensors are stacked into others or "
                       "dropped by the output format (MoE experts, a tied lm_head): merging into them is not supported",
                       p->model->input_path, st->n_deltas - seen, st->n_deltas);
    return MQ_OK;
}

/*
** dst[c] = fma(coef[0], vec[0][c], dst[c]), then with coef[1], vec[1] ... for c < len: the rank
** terms one after another, each a fused multiply-add (one rounding, C's fmaf), as the arithmetic in
** lora_merge.h says. The AVX2+FMA version does the same operations eight columns at a time, so its
** results are the same bits.
*/
typedef void (*axpy_fn)(float *dst, size_t len, const float *coef, const float *const *vec, int k);

static void axpy_portable(float *dst, size_t len, const float *coef, const float *const *vec, int k)
{
    for (size_t c = 0; c < len; c++) {
        float x = dst[c];
        for (int j = 0; j < k; j++) x = fmaf(coef[j], vec[j][c], x);
        dst[c] = x;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2,fma"))) static void axpy_avx2(float *dst, size_t len, const float *coef,
                                                            const float *const *vec, int k)
{
    /* four column groups at once: each keeps its own chain of adds (the terms stay in order within
     * a column), so the adds' latency overlaps */
    __m256 cf[LORA_K];
    for (int j = 0; j < k; j++) cf[j] = _mm256_set1_ps(coef[j]);
    size_t c = 0;
    for (; c + 32 <= len; c += 32) {
        __m256 x0 = _mm256_loadu_ps(dst + c), x1 = _mm256_loadu_ps(dst + c + 8);
        __m256 x2 = _mm256_loadu_ps(dst + c + 16), x3 = _mm256_loadu_ps(dst + c + 24);
        for (int j = 0; j < k; j++) {
            const float *a = vec[j] + c;
            x0 = _mm256_fmadd_ps(cf[j], _mm256_loadu_ps(a), x0);
            x1 = _mm256_fmadd_ps(cf[j], _mm256_loadu_ps(a + 8), x1);
            x2 = _mm256_fmadd_ps(cf[j], _mm256_loadu_ps(a + 16), x2);
            x3 = _mm256_fmadd_ps(cf[j], _mm256_loadu_ps(a + 24), x3);
        }
        _mm256_storeu_ps(dst + c, x0);
        _mm256_storeu_ps(dst + c + 8, x1);
        _mm256_storeu_ps(dst + c + 16, x2);
        _mm256_storeu_ps(dst + c + 24, x3);
    }
    for (; c + 8 <= len; c += 8) {
        __m256 x = _mm256_loadu_ps(dst + c);
        for (int j = 0; j < k; j++) x = _mm256_fmadd_ps(cf[j], _mm256_loadu_ps(vec[j] + c), x);
        _mm256_storeu_ps(dst + c, x);
    }
    if (c < len) {
        const float *tail[LORA_K];
        for (int j = 0; j < k; j++) tail[j] = vec[j] + c;
        axpy_portable(dst + c, len - c, coef, tail, k);
    }
}
#endif

/*
** LORA_MR rows at once (a register tile of 6 rows x 16 columns): dst[i][c] = fma(coef[i][q],
** vec(q)[c], dst[i][c]) for q = 0 .. r-1 in order, coef[i] = coef0 + i * r, vec(q) = vec0 + q * vstride.
** Per element these are the same operations in the same order as axpy_*, so the bits are the same;
** the tile loads each vector once for six rows and keeps twelve independent accumulator chains
** (enough to cover the FMA latency on two FMA ports).
*/
typedef void (*tile_fn)(float *const dst[LORA_MR], size_t len, const float *coef0, const float *vec0, size_t vstride,
                        uint32_t r);

static void tile_portable(float *const dst[LORA_MR], size_t len, const float *coef0, const float *vec0,
                          size_t vstride, uint32_t r)
{
    for (int i = 0; i < LORA_MR; i++)
        for (size_t c = 0; c < len; c++) {
            float x = dst[i][c];
            for (uint32_t q = 0; q < r; q++) x = fmaf(coef0[(size_t)i * r + q], vec0[(size_t)q * vstride + c], x);
            dst[i][c] = x;
        }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void tile_avx2(float *const dst[LORA_MR], size_t len, const float *coef0,
                                                           const float *vec0, size_t vstride, uint32_t r)
{
    size_t c = 0;
    for (; c + 16 <= len; c += 16) {
        __m256 acc[LORA_MR][2];
        for (int i = 0; i < LORA_MR; i++) {
            acc[i][0] = _mm256_loadu_ps(dst[i] + c);
            acc[i][1] = _mm256_loadu_ps(dst[i] + c + 8);
        }
        const float *vq = vec0 + c;
        for (uint32_t q = 0; q < r; q++, vq += vstride) {
            const __m256 v0 = _mm256_loadu_ps(vq), v1 = _mm256_loadu_ps(vq + 8);
            for (int i = 0; i < LORA_MR; i++) {
                const __m256 b = _mm256_broadcast_ss(coef0 + (size_t)i * r + q);
                acc[i][0] = _mm256_fmadd_ps(b, v0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(b, v1, acc[i][1]);
            }
        }
        for (int i = 0; i < LORA_MR; i++) {
            _mm256_storeu_ps(dst[i] + c, acc[i][0]);
            _mm256_storeu_ps(dst[i] + c + 8, acc[i][1]);
        }
    }
    if (c < len) {
        float *rest[LORA_MR];
        for (int i = 0; i < LORA_MR; i++) rest[i] = dst[i] + c;
        tile_portable(rest, len - c, coef0, vec0 + c, vstride, r);
    }
}
#endif

void mq_lora_merge_apply(const struct mq_plan_tensor *t, const struct mq_lora_delta *d, uint64_t first, size_t n,
                         float *v)
{
    const uint64_t row_len = t->row_len;
    axpy_fn axpy = axpy_portable;
    tile_fn tile = tile_portable;
#if defined(__x86_64__)
    if (mq_cpu_avx2() && __builtin_cpu_supports("fma")) {
        axpy = axpy_avx2;
        tile = tile_avx2;
    }
#endif
    const uint64_t row_first = first / row_len, row_end = (first + n - 1) / row_len + 1;
    /* the chunk's whole rows, in groups of LORA_MR, go through the register tile */
    const uint64_t whole0 = (first + row_len - 1) / row_len, whole1 = (first + n) / row_len;
    const uint64_t tiled_end = whole1 > whole0 ? whole0 + (whole1 - whole0) / LORA_MR * LORA_MR : whole0;
    for (size_t k = 0; k < d->n; k++) {
        const struct mq_lora_term *tm = &d->terms[k];
        const size_t r = tm->r;
        /* Column tiles outermost: LORA_TILE columns of every rank vector (r x 64 floats, 16 KiB at
         * rank 64) stay in L1 while all the chunk's rows pass over them. */
        for (uint64_t t0 = 0; t0 < row_len; t0 += LORA_TILE) {
            const uint64_t t1 = t0 + LORA_TILE < row_len ? t0 + LORA_TILE : row_len;
            const float *tile_vec = tm->vec + (size_t)t0 * r; /* [r][t1 - t0] (pack_tiles) */
            for (uint64_t r0 = whole0; r0 < tiled_end; r0 += LORA_MR) {
                float *dst[LORA_MR];
                for (int i = 0; i < LORA_MR; i++) dst[i] = v + ((r0 + (uint64_t)i) * row_len - first) + t0;
                tile(dst, (size_t)(t1 - t0), tm->coef + (size_t)r0 * r, tile_vec, (size_t)(t1 - t0), tm->r);
            }
            for (uint64_t row = row_first; row < row_end; row++) {
                if (row >= whole0 && row < tiled_end) continue; /* done by the tile */
                /* this row's part of the chunk, within the tile */
                const uint64_t e0 = row * row_len + t0 > first ? row * row_len + t0 : first;
                const uint64_t e1 = row * row_len + t1 < first + n ? row * row_len + t1 : first + n;
                if (e0 >= e1) continue;
                const uint64_t c0 = e0 - row * row_len;
                float *dst = v + (e0 - first);
                for (size_t q = 0; q < r; q += LORA_K) {
                    const int kk = r - q < LORA_K ? (int)(r - q) : LORA_K;
                    const float *vec[LORA_K];
                    for (int j = 0; j < kk; j++) vec[j] = tile_vec + (q + (size_t)j) * (size_t)(t1 - t0) + (c0 - t0);
                    axpy(dst, (size_t)(e1 - e0), tm->coef + (size_t)row * r + q, vec, kk);
                }
            }
        }
    }
}
