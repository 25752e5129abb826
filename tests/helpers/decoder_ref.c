/*
** decoder_ref.c - the generic reference decoder forward pass (see decoder_ref.h for the math).
**
** Unoptimised double-precision loops over the whole sequence, layer by layer, as a transformers
** forward over a prompt does: this code is the yardstick llama.cpp running modelq's GGUF is
** measured against, so clarity wins. tools/mkfamily.c includes this file (and llama_ref.c)
** directly, so it stays free of test-framework code and its static names do not collide with
** llama_ref.c's (prefix dr_).
*/
#include "decoder_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DR_PI 3.14159265358979323846

/* out[r] = sum_c w[r*cols + c] * x[c] (+ bias[r]) */
static void dr_matvec(const float *w, const float *bias, const double *x, int rows, int cols, double *out)
{
    for (int r = 0; r < rows; r++) {
        const float *row = w + (size_t)r * (size_t)cols;
        double acc = 0.0;
        for (int c = 0; c < cols; c++) acc += (double)row[c] * x[c];
        out[r] = acc + (bias ? (double)bias[r] : 0.0);
    }
}

/* RMSNorm of n values (in place allowed): Llama's v * rsqrt(mean(v^2) + eps) * w, Gemma's * (1 + w) */
static void dr_norm(const double *x, const float *w, int n, double eps, enum dref_norm kind, double *out)
{
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    const double scale = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) {
        const double g = kind == DREF_NORM_RMS_GEMMA ? 1.0 + (double)w[i] : (double)w[i];
        out[i] = x[i] * scale * g;
    }
}

double dref_gelu_tanh(double x)
{
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / DR_PI) * (x + 0.044715 * x * x * x)));
}

double dref_round_f16(double x)
{
    if (x == 0.0 || !isfinite(x)) return x;
    int e;
    (void)frexp(x, &e); /* |x| = m * 2^e, m in [0.5, 1) */
    /* 11 significant bits for normal halves (e - 1 >= -14); a fixed quantum 2^-24 below */
    const int q = e - 1 >= -14 ? e - 11 : -24;
    return ldexp(nearbyint(ldexp(x, -q)), q);
}

static double dr_act(enum dref_act a, double x)
{
    switch (a) {
    case DREF_ACT_GELU_TANH:
        return dref_gelu_tanh(x);
    case DREF_ACT_GELU_TANH_GGML_F16:
        if (x <= -10.0) return 0.0;
        if (x >= 10.0) return x;
        /* the table holds gelu computed in float from the F16 input, stored as F16 */
        return dref_round_f16((double)(float)dref_gelu_tanh(dref_round_f16(x)));
    case DREF_ACT_SILU:
        break;
    }
    return x / (1.0 + exp(-x));
}

/* out += scale * W_down (act(W_gate h) * W_up h); g, u are scratch of `ff` values, tmp of `E` */
static void dr_glu(const float *w_gate, const float *w_up, const float *w_down, enum dref_act act, const double *h,
                   int E, int ff, double scale, double *g, double *u, double *tmp, double *out)
{
    dr_matvec(w_gate, NULL, h, ff, E, g);
    dr_matvec(w_up, NULL, h, ff, E, u);
    for (int i = 0; i < ff; i++) g[i] = dr_act(act, g[i]) * u[i];
    dr_matvec(w_down, NULL, g, E, ff, tmp);
    for (int i = 0; i < E; i++) out[i] += scale * tmp[i];
}

/* Rotate-half RoPE on the first `rot` dims of one head vector (the rest pass through). */
static void dr_rope(double *v, int rot, int pos, const double *inv_freq, double mag)
{
    const int half = rot / 2;
    for (int i = 0; i < half; i++) {
        const double a = (double)pos * inv_freq[i];
        const double c = cos(a) * mag, s = sin(a) * mag;
        const double x1 = v[i], x2 = v[i + half];
        v[i] = x1 * c - x2 * s;
        v[i + half] = x2 * c + x1 * s;
    }
}

/* The inverse frequencies and magnitude of one layer kind (sliding or not) for a sequence of T. */
static int dr_freqs(const struct dref_config *c, bool sliding, int T, double *inv_freq, double *mag)
{
    const int rot = c->rot_dim ? c->rot_dim : c->head_dim;
    const struct dref_longrope *lr = &c->longrope;
    if (lr->short_factor) {
        if (!lr->long_factor || !(lr->original_max_pos > 1.0) || !(c->rope_theta > 1.0)) return -1;
        const double *ext = (double)T > lr->original_max_pos ? lr->long_factor : lr->short_factor;
        for (int i = 0; i < rot / 2; i++)
            inv_freq[i] = 1.0 / (ext[i] * pow(c->rope_theta, (double)(2 * i) / (double)rot));
        const double s = lr->max_pos / lr->original_max_pos;
        *mag = lr->attention_factor > 0.0 ? lr->attention_factor
               : s <= 1.0                 ? 1.0
                                          : sqrt(1.0 + log(s) / log(lr->original_max_pos));
        return 0;
    }
    if (sliding && c->rope_theta_swa > 0.0) return llama_ref_rope_freqs(NULL, rot, c->rope_theta_swa, inv_freq, mag);
    return llama_ref_rope_freqs(&c->rope, rot, c->rope_theta, inv_freq, mag);
}

static void dr_stat(struct llama_ref_stats *st, int l, double s)
{
    if (!st) return;
    st->count++;
    st->sum += s;
    st->sum_sq += s * s;
    if (l < 16) {
        st->layer_count[l]++;
        st->layer_sum[l] += s;
        st->layer_sum_sq[l] += s * s;
    }
}

/* The top-k experts of one router probability row, highest first (ties: lower index first). */
static void dr_topk(const double *p, int n, int k, int *idx)
{
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int e = 0; e < n; e++) {
            bool used = false;
            for (int i = 0; i < j; i++) used |= idx[i] == e;
            if (!used && (best < 0 || p[e] > p[best])) best = e;
        }
        idx[j] = best;
    }
}

static bool dr_config_ok(const struct dref_config *c, const struct dref_weights *w)
{
    const int rot = c->rot_dim ? c->rot_dim : c->head_dim;
    if (c->n_vocab <= 0 || c->n_embd <= 0 || c->n_layer < 0 || c->n_layer > DREF_MAX_LAYERS || c->n_head <= 0 ||
        c->n_kv_head <= 0 || c->n_head % c->n_kv_head != 0 || c->head_dim <= 0 || rot <= 0 || rot % 2 != 0 ||
        rot > c->head_dim || c->n_expert < 0 || c->n_expert > DREF_MAX_EXPERTS || c->n_expert_used < 0 ||
        c->n_expert_used > c->n_expert)
        return false;
    if (!w->embed || !w->final_norm || !w->lm_head) return false;
    for (int l = 0; l < c->n_layer; l++) {
        const struct dref_layer *L = &w->layers[l];
        if (!L->wq || !L->wk || !L->wv || !L->wo) return false;
        if (c->qk_norm != DREF_QK_NORM_NONE && (!L->q_norm || !L->k_norm)) return false;
        if (L->router) {
            if (c->n_expert < 1 || c->n_expert_used < 1 || c->n_ff_exp <= 0) return false;
            for (int e = 0; e < c->n_expert; e++)
                if (!L->experts[e].w_gate || !L->experts[e].w_up || !L->experts[e].w_down) return false;
        } else if (c->n_ff <= 0 || !L->w_gate || !L->w_up || !L->w_down) {
            return false;
        }
    }
    return true;
}

int dref_forward(const struct dref_config *cfg, const struct dref_weights *w, const int32_t *tokens,
                 size_t n_tokens, float *logits, struct llama_ref_stats *stats)
{
    if (n_tokens == 0 || n_tokens > 1u << 16 || !dr_config_ok(cfg, w)) return -1;
    for (size_t t = 0; t < n_tokens; t++)
        if (tokens[t] < 0 || tokens[t] >= cfg->n_vocab) return -1;
    const int T = (int)n_tokens, E = cfg->n_embd, H = cfg->n_head, KV = cfg->n_kv_head, D = cfg->head_dim;
    const int QD = H * D, KD = KV * D, rep = H / KV, rot = cfg->rot_dim ? cfg->rot_dim : D;
    const int FF = cfg->n_ff > cfg->n_ff_exp ? cfg->n_ff : cfg->n_ff_exp;
    const double eps = cfg->rms_eps, rs = cfg->residual_scale > 0.0 ? cfg->residual_scale : 1.0;
    const double scale = cfg->attn_scale > 0.0 ? cfg->attn_scale : 1.0 / sqrt((double)D);
    const int big = E > QD ? E : QD;

    double *x = calloc((size_t)T * E, sizeof *x);   /* residual stream */
    double *h = calloc((size_t)T * E, sizeof *h);   /* a sublayer's input */
    double *q = calloc((size_t)T * QD, sizeof *q), *k = calloc((size_t)T * KD, sizeof *k);
    double *v = calloc((size_t)T * KD, sizeof *v), *att = calloc((size_t)T * QD, sizeof *att);
    double *tmp = calloc((size_t)big, sizeof *tmp), *acc = calloc((size_t)big, sizeof *acc);
    double *score = calloc((size_t)T, sizeof *score);
    double *g = calloc((size_t)FF + 1, sizeof *g), *u = calloc((size_t)FF + 1, sizeof *u);
    double *freq_full = calloc((size_t)rot / 2, sizeof *freq_full), *freq_swa = calloc((size_t)rot / 2, sizeof *freq_swa);
    double *prob = calloc((size_t)cfg->n_expert + 1, sizeof *prob);
    int *top = calloc((size_t)cfg->n_expert + 1, sizeof *top);
    double mag_full = 1.0, mag_swa = 1.0;
    int rc = -1;
    if (!x || !h || !q || !k || !v || !att || !tmp || !acc || !score || !g || !u || !freq_full || !freq_swa || !prob ||
        !top)
        goto done;
    if (dr_freqs(cfg, false, T, freq_full, &mag_full) != 0 || dr_freqs(cfg, true, T, freq_swa, &mag_swa) != 0) goto done;

    const double es = cfg->embed_scale > 0.0 ? cfg->embed_scale : 1.0;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < E; i++) x[(size_t)t * E + i] = (double)w->embed[(size_t)tokens[t] * E + i] * es;

    for (int l = 0; l < cfg->n_layer; l++) {
        const struct dref_layer *L = &w->layers[l];
        const bool sliding = cfg->sliding_window > 0 && cfg->layer_sliding[l];
        const double *inv_freq = sliding ? freq_swa : freq_full, mag = sliding ? mag_swa : mag_full;
        /* projections, q/k norms, RoPE */
        for (int t = 0; t < T; t++) {
            double *ht = h + (size_t)t * E, *qt = q + (size_t)t * QD, *kt = k + (size_t)t * KD;
            if (L->attn_norm) dr_norm(x + (size_t)t * E, L->attn_norm, E, eps, cfg->norm, ht);
            else memcpy(ht, x + (size_t)t * E, (size_t)E * sizeof *ht);
            dr_matvec(L->wq, L->bq, ht, QD, E, qt);
            dr_matvec(L->wk, L->bk, ht, KD, E, kt);
            dr_matvec(L->wv, L->bv, ht, KD, E, v + (size_t)t * KD);
            if (cfg->qk_norm == DREF_QK_NORM_FULL) {
                dr_norm(qt, L->q_norm, QD, eps, cfg->norm, qt);
                dr_norm(kt, L->k_norm, KD, eps, cfg->norm, kt);
            } else if (cfg->qk_norm == DREF_QK_NORM_HEAD) {
                for (int i = 0; i < H; i++) dr_norm(qt + i * D, L->q_norm, D, eps, cfg->norm, qt + i * D);
                for (int i = 0; i < KV; i++) dr_norm(kt + i * D, L->k_norm, D, eps, cfg->norm, kt + i * D);
            }
            if (!cfg->layer_nope[l]) {
                for (int i = 0; i < H; i++) dr_rope(qt + i * D, rot, t, inv_freq, mag);
                for (int i = 0; i < KV; i++) dr_rope(kt + i * D, rot, t, inv_freq, mag);
            }
        }
        /* causal (and sliding-window) softmax attention */
        for (int t = 0; t < T; t++) {
            const int first = sliding && t - cfg->sliding_window + 1 > 0 ? t - cfg->sliding_window + 1 : 0;
            for (int hh = 0; hh < H; hh++) {
                const int kvh = hh / rep;
                const double *qh = q + (size_t)t * QD + hh * D;
                double mx = -INFINITY;
                for (int s = first; s <= t; s++) {
                    const double *kh = k + (size_t)s * KD + kvh * D;
                    double dot = 0.0;
                    for (int i = 0; i < D; i++) dot += qh[i] * kh[i];
                    double sc = dot * scale;
                    if (cfg->attn_softcap > 0.0) sc = cfg->attn_softcap * tanh(sc / cfg->attn_softcap);
                    score[s] = sc;
                    mx = fmax(mx, sc);
                    dr_stat(stats, l, sc);
                }
                double z = 0.0;
                for (int s = first; s <= t; s++) {
                    score[s] = exp(score[s] - mx);
                    z += score[s];
                }
                double *out = att + (size_t)t * QD + hh * D;
                for (int i = 0; i < D; i++) out[i] = 0.0;
                for (int s = first; s <= t; s++) {
                    const double *vh = v + (size_t)s * KD + kvh * D, p = score[s] / z;
                    for (int i = 0; i < D; i++) out[i] += p * vh[i];
                }
            }
        }
        for (int t = 0; t < T; t++) {
            dr_matvec(L->wo, NULL, att + (size_t)t * QD, E, QD, tmp);
            if (L->post_attn_norm) dr_norm(tmp, L->post_attn_norm, E, eps, cfg->norm, tmp);
            for (int i = 0; i < E; i++) x[(size_t)t * E + i] += rs * tmp[i];
        }
        /* feed-forward: dense or mixture of experts */
        for (int t = 0; t < T; t++) {
            double *xt = x + (size_t)t * E, *ht = h + (size_t)t * E;
            if (L->ffn_norm) dr_norm(xt, L->ffn_norm, E, eps, cfg->norm, ht);
            else memcpy(ht, xt, (size_t)E * sizeof *ht);
            memset(acc, 0, (size_t)E * sizeof *acc);
            if (L->router) {
                dr_matvec(L->router, NULL, ht, cfg->n_expert, E, prob);
                double mx = -INFINITY, z = 0.0;
                for (int e = 0; e < cfg->n_expert; e++) mx = fmax(mx, prob[e]);
                for (int e = 0; e < cfg->n_expert; e++) z += prob[e] = exp(prob[e] - mx);
                for (int e = 0; e < cfg->n_expert; e++) prob[e] /= z;
                dr_topk(prob, cfg->n_expert, cfg->n_expert_used, top);
                double wsum = 0.0;
                for (int j = 0; j < cfg->n_expert_used; j++) wsum += prob[top[j]];
                for (int j = 0; j < cfg->n_expert_used; j++) {
                    const struct dref_expert *X = &L->experts[top[j]];
                    const double wj = cfg->norm_topk ? prob[top[j]] / wsum : prob[top[j]];
                    dr_glu(X->w_gate, X->w_up, X->w_down, DREF_ACT_SILU, ht, E, cfg->n_ff_exp, wj, g, u, tmp, acc);
                }
            } else {
                dr_glu(L->w_gate, L->w_up, L->w_down, cfg->act, ht, E, cfg->n_ff, 1.0, g, u, tmp, acc);
            }
            if (L->post_ffn_norm) dr_norm(acc, L->post_ffn_norm, E, eps, cfg->norm, acc);
            for (int i = 0; i < E; i++) xt[i] += rs * acc[i];
        }
    }
    if (stats && cfg->n_layer > stats->n_layer) stats->n_layer = cfg->n_layer < 16 ? cfg->n_layer : 16;

    const double ls = cfg->logit_scale > 0.0 ? cfg->logit_scale : 1.0;
    for (int t = 0; t < T; t++) {
        double *ht = h + (size_t)t * E;
        dr_norm(x + (size_t)t * E, w->final_norm, E, eps, cfg->norm, ht);
        for (int r = 0; r < cfg->n_vocab; r++) {
            const float *row = w->lm_head + (size_t)r * E;
            double a = 0.0;
            for (int c = 0; c < E; c++) a += (double)row[c] * ht[c];
            a *= ls;
            if (cfg->final_softcap > 0.0) a = cfg->final_softcap * tanh(a / cfg->final_softcap);
            logits[(size_t)t * cfg->n_vocab + r] = (float)a;
        }
    }
    rc = 0;
done:
    free(x); free(h); free(q); free(k); free(v); free(att); free(tmp); free(acc); free(score); free(g); free(u);
    free(freq_full); free(freq_swa); free(prob); free(top);
    return rc;
}
