/*
** llama_ref.c - reference Llama forward pass (see llama_ref.h for the exact math).
**
** Straightforward, unoptimised double-precision loops: this code is the yardstick other
** implementations (llama.cpp on a converted GGUF) are measured against, so clarity wins.
** tools/mkfixture.c includes this file directly, so it must stay free of test-framework code.
*/
#include "llama_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define REF_PI 3.14159265358979323846

void llama_ref_stats_init(struct llama_ref_stats *s) { memset(s, 0, sizeof *s); }

static double std_of(uint64_t n, double sum, double sum_sq)
{
    if (n == 0) return 0.0;
    double mean = sum / (double)n;
    double var = sum_sq / (double)n - mean * mean;
    return var > 0.0 ? sqrt(var) : 0.0;
}

double llama_ref_stats_std(const struct llama_ref_stats *s) { return std_of(s->count, s->sum, s->sum_sq); }

double llama_ref_stats_min_layer_std(const struct llama_ref_stats *s)
{
    double best = 0.0;
    for (int l = 0; l < s->n_layer; l++) {
        double v = std_of(s->layer_count[l], s->layer_sum[l], s->layer_sum_sq[l]);
        if (l == 0 || v < best) best = v;
    }
    return best;
}

/* out[r] = sum_c w[r*cols + c] * x[c]   (w row-major [rows, cols], a Linear without bias) */
static void matvec(const float *w, const double *x, int rows, int cols, double *out)
{
    for (int r = 0; r < rows; r++) {
        const float *row = w + (size_t)r * (size_t)cols;
        double acc = 0.0;
        for (int c = 0; c < cols; c++) acc += (double)row[c] * x[c];
        out[r] = acc;
    }
}

/* out[r] += bias[r], when there is a bias */
static void add_bias(double *out, const float *bias, int rows)
{
    if (!bias) return;
    for (int r = 0; r < rows; r++) out[r] += (double)bias[r];
}

/* transformers LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * weight */
static void rmsnorm(const double *x, const float *weight, int n, double eps, double *out)
{
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double scale = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * (double)weight[i];
}

/* In-place rotate-half RoPE on one head vector at position `pos`, with cos and sin scaled by
** `mag` (transformers' attention_scaling; 1 unless YaRN). */
static void rope_rotate_half(double *v, int head_dim, int pos, const double *inv_freq, double mag)
{
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        double a = (double)pos * inv_freq[i];
        double c = cos(a) * mag, s = sin(a) * mag;
        double x1 = v[i], x2 = v[i + half];
        v[i] = x1 * c - x2 * s;
        v[i + half] = x2 * c + x1 * s;
    }
}

static double clamp01(double x) { return x < 0.0 ? 0.0 : x > 1.0 ? 1.0 : x; }

/* YaRN: the (fractional) pair index whose wavelength fits `rotations` times into `ctx` positions. */
static double yarn_dim(double rotations, int head_dim, double theta, double ctx)
{
    return (double)head_dim * log(ctx / (rotations * 2.0 * REF_PI)) / (2.0 * log(theta));
}

int llama_ref_rope_freqs(const struct llama_ref_rope *rope, int head_dim, double rope_theta, double *inv_freq,
                         double *attention_factor)
{
    if (head_dim <= 0 || head_dim % 2 != 0 || !(rope_theta > 1.0)) return -1;
    const int half = head_dim / 2;
    const enum llama_ref_rope_type type = rope ? rope->type : LLAMA_REF_ROPE_DEFAULT;
    /* the unscaled frequencies, computed exactly as before scaling existed (fixtures depend on it) */
    for (int i = 0; i < half; i++) inv_freq[i] = pow(rope_theta, -(double)(2 * i) / (double)head_dim);
    *attention_factor = 1.0;
    if (type == LLAMA_REF_ROPE_DEFAULT) return 0;
    const double f = rope->factor;
    if (!(f > 0.0)) return -1;
    switch (type) {
    case LLAMA_REF_ROPE_LINEAR:
        for (int i = 0; i < half; i++) inv_freq[i] /= f;
        return 0;
    case LLAMA_REF_ROPE_LLAMA3: {
        const double lo_f = rope->low_freq_factor, hi_f = rope->high_freq_factor, old = rope->original_max_pos;
        if (!(lo_f > 0.0) || !(hi_f > lo_f) || !(old > 0.0)) return -1;
        const double lo_wavelen = old / lo_f, hi_wavelen = old / hi_f; /* lo_wavelen > hi_wavelen */
        for (int i = 0; i < half; i++) {
            const double wavelen = 2.0 * REF_PI / inv_freq[i];
            if (wavelen < hi_wavelen) continue;
            if (wavelen > lo_wavelen) {
                inv_freq[i] /= f;
            } else {
                const double s = (old / wavelen - lo_f) / (hi_f - lo_f);
                inv_freq[i] = (1.0 - s) * inv_freq[i] / f + s * inv_freq[i];
            }
        }
        return 0;
    }
    case LLAMA_REF_ROPE_YARN: {
        const double old = rope->original_max_pos;
        const double fast = rope->beta_fast > 0.0 ? rope->beta_fast : 32.0;
        const double slow = rope->beta_slow > 0.0 ? rope->beta_slow : 1.0;
        if (!(old > 0.0)) return -1;
        double low = floor(yarn_dim(fast, head_dim, rope_theta, old));
        double high = ceil(yarn_dim(slow, head_dim, rope_theta, old));
        if (low < 0.0) low = 0.0;
        if (high > head_dim - 1) high = head_dim - 1;
        const double span = high == low ? 0.001 : high - low;
        for (int i = 0; i < half; i++) {
            /* ramp 0: pair i keeps its frequency (extrapolation); 1: divided by factor */
            const double ramp = clamp01(((double)i - low) / span);
            inv_freq[i] = inv_freq[i] / f * ramp + inv_freq[i] * (1.0 - ramp);
        }
        *attention_factor = rope->attention_factor > 0.0 ? rope->attention_factor
                            : f > 1.0                    ? 0.1 * log(f) + 1.0
                                                         : 1.0;
        return 0;
    }
    default:
        return -1;
    }
}

static double silu(double x) { return x / (1.0 + exp(-x)); }

int llama_ref_forward(const struct llama_ref_config *cfg, const struct llama_ref_weights *w,
                      const int32_t *tokens, size_t n_tokens, float *logits,
                      struct llama_ref_stats *stats)
{
    return llama_ref_forward_bias(cfg, w, NULL, tokens, n_tokens, logits, stats);
}

int llama_ref_forward_bias(const struct llama_ref_config *cfg, const struct llama_ref_weights *w,
                           const struct llama_ref_bias *bias, const int32_t *tokens, size_t n_tokens,
                           float *logits, struct llama_ref_stats *stats)
{
    return llama_ref_forward_rope(cfg, NULL, w, bias, tokens, n_tokens, logits, stats);
}

int llama_ref_forward_rope(const struct llama_ref_config *cfg, const struct llama_ref_rope *rope,
                           const struct llama_ref_weights *w, const struct llama_ref_bias *bias,
                           const int32_t *tokens, size_t n_tokens, float *logits, struct llama_ref_stats *stats)
{
    const int E = cfg->n_embd, F = cfg->n_ff, H = cfg->n_head, KV = cfg->n_kv_head, D = cfg->head_dim;
    if (n_tokens == 0 || E <= 0 || F <= 0 || H <= 0 || KV <= 0 || D <= 0 || D % 2 != 0 ||
        H % KV != 0 || cfg->n_vocab <= 0 || cfg->n_layer < 0 || n_tokens > 1u << 20)
        return -1;
    for (size_t t = 0; t < n_tokens; t++)
        if (tokens[t] < 0 || tokens[t] >= cfg->n_vocab) return -1;
    const int T = (int)n_tokens, QD = H * D, KD = KV * D, rep = H / KV;

    /* Activations for all positions: the whole sequence is processed layer by layer, as a
    ** transformers forward over the full prompt does. */
    double *x = calloc((size_t)T * E, sizeof *x);      /* residual stream */
    double *n = calloc((size_t)T * E, sizeof *n);      /* normed input of a sublayer */
    double *q = calloc((size_t)T * QD, sizeof *q);
    double *k = calloc((size_t)T * KD, sizeof *k);
    double *v = calloc((size_t)T * KD, sizeof *v);
    double *att = calloc((size_t)T * QD, sizeof *att); /* attention output before o_proj */
    double *tmp = calloc((size_t)(E > F ? E : F) * 2, sizeof *tmp);
    double *score = calloc((size_t)T, sizeof *score);
    double *g = calloc((size_t)F, sizeof *g), *u = calloc((size_t)F, sizeof *u);
    double *inv_freq = calloc((size_t)D / 2, sizeof *inv_freq), mag = 1.0;
    int rc = -1;
    if (!x || !n || !q || !k || !v || !att || !tmp || !score || !g || !u || !inv_freq) goto done;
    if (llama_ref_rope_freqs(rope, D, cfg->rope_theta, inv_freq, &mag) != 0) goto done;

    for (int t = 0; t < T; t++)
        for (int i = 0; i < E; i++) x[(size_t)t * E + i] = w->embed[(size_t)tokens[t] * E + i];

    for (int l = 0; l < cfg->n_layer; l++) {
        const struct llama_ref_layer *L = &w->layers[l];
        for (int t = 0; t < T; t++) {
            rmsnorm(x + (size_t)t * E, L->attn_norm, E, cfg->rms_eps, n + (size_t)t * E);
            matvec(L->wq, n + (size_t)t * E, QD, E, q + (size_t)t * QD);
            matvec(L->wk, n + (size_t)t * E, KD, E, k + (size_t)t * KD);
            matvec(L->wv, n + (size_t)t * E, KD, E, v + (size_t)t * KD);
            if (bias) {
                add_bias(q + (size_t)t * QD, bias[l].bq, QD);
                add_bias(k + (size_t)t * KD, bias[l].bk, KD);
                add_bias(v + (size_t)t * KD, bias[l].bv, KD);
            }
            for (int h = 0; h < H; h++) rope_rotate_half(q + (size_t)t * QD + h * D, D, t, inv_freq, mag);
            for (int h = 0; h < KV; h++) rope_rotate_half(k + (size_t)t * KD + h * D, D, t, inv_freq, mag);
        }
        const double inv_sqrt_d = 1.0 / sqrt((double)D);
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < H; h++) {
                const int kvh = h / rep;
                const double *qh = q + (size_t)t * QD + h * D;
                double mx = -INFINITY;
                for (int s = 0; s <= t; s++) {
                    const double *kh = k + (size_t)s * KD + kvh * D;
                    double dot = 0.0;
                    for (int i = 0; i < D; i++) dot += qh[i] * kh[i];
                    score[s] = dot * inv_sqrt_d;
                    if (score[s] > mx) mx = score[s];
                    if (stats) {
                        stats->count++;
                        stats->sum += score[s];
                        stats->sum_sq += score[s] * score[s];
                        if (l < 16) {
                            stats->layer_count[l]++;
                            stats->layer_sum[l] += score[s];
                            stats->layer_sum_sq[l] += score[s] * score[s];
                        }
                    }
                }
                double z = 0.0;
                for (int s = 0; s <= t; s++) {
                    score[s] = exp(score[s] - mx);
                    z += score[s];
                }
                double *out = att + (size_t)t * QD + h * D;
                for (int i = 0; i < D; i++) out[i] = 0.0;
                for (int s = 0; s <= t; s++) {
                    const double *vh = v + (size_t)s * KD + kvh * D;
                    double p = score[s] / z;
                    for (int i = 0; i < D; i++) out[i] += p * vh[i];
                }
            }
        }
        for (int t = 0; t < T; t++) {
            matvec(L->wo, att + (size_t)t * QD, E, QD, tmp);
            for (int i = 0; i < E; i++) x[(size_t)t * E + i] += tmp[i];
        }
        for (int t = 0; t < T; t++) {
            double *xt = x + (size_t)t * E;
            rmsnorm(xt, L->ffn_norm, E, cfg->rms_eps, n + (size_t)t * E);
            matvec(L->w_gate, n + (size_t)t * E, F, E, g);
            matvec(L->w_up, n + (size_t)t * E, F, E, u);
            for (int i = 0; i < F; i++) g[i] = silu(g[i]) * u[i];
            matvec(L->w_down, g, E, F, tmp);
            for (int i = 0; i < E; i++) xt[i] += tmp[i];
        }
    }
    if (stats && cfg->n_layer > stats->n_layer) stats->n_layer = cfg->n_layer < 16 ? cfg->n_layer : 16;

    for (int t = 0; t < T; t++) {
        rmsnorm(x + (size_t)t * E, w->final_norm, E, cfg->rms_eps, n + (size_t)t * E);
        const double *nt = n + (size_t)t * E;
        for (int r = 0; r < cfg->n_vocab; r++) {
            const float *row = w->lm_head + (size_t)r * E;
            double acc = 0.0;
            for (int c = 0; c < E; c++) acc += (double)row[c] * nt[c];
            logits[(size_t)t * cfg->n_vocab + r] = (float)acc;
        }
    }
    rc = 0;
done:
    free(x); free(n); free(q); free(k); free(v); free(att); free(tmp); free(score); free(g); free(u);
    free(inv_freq);
    return rc;
}

int llama_ref_permute_rows(const float *in, int rows, int cols, int n_head, int to_gguf, float *out)
{
    if (n_head <= 0 || rows <= 0 || cols <= 0 || rows % n_head != 0 || (rows / n_head) % 2 != 0) return -1;
    const int hd = rows / n_head;
    for (int h = 0; h < n_head; h++)
        for (int i = 0; i < hd / 2; i++)
            for (int j = 0; j < 2; j++) {
                size_t gguf_row = (size_t)(h * hd + 2 * i + j), hf_row = (size_t)(h * hd + j * (hd / 2) + i);
                size_t dst = to_gguf ? gguf_row : hf_row, src = to_gguf ? hf_row : gguf_row;
                memcpy(out + dst * (size_t)cols, in + src * (size_t)cols, (size_t)cols * sizeof *out);
            }
    return 0;
}

double llama_ref_top_prob(const float *logits, int n_vocab, int *argmax)
{
    int best = 0;
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > logits[best]) best = i;
    double z = 0.0;
    for (int i = 0; i < n_vocab; i++) z += exp((double)logits[i] - (double)logits[best]);
    if (argmax) *argmax = best;
    return 1.0 / z;
}
