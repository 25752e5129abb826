/*
** report_html.c - renders the HTML report (modelq/report.h) with svg.h and writes it atomically.
**
** Every plotted mark carries its value: staircase points data-x/data-y (the values, before and
** after quantization) and data-s (the block absmax they are divided by), histogram bars data-v
** (count) with data-lo/data-hi, heat-map cells data-v (relative RMSE) with data-tensor,
** data-type and data-codec, role bars data-v (bytes), memory bars data-v (bytes) with data-part.
** Table cells that repeat a JSON number carry it in data-v too. Values print with %.17g: they
** read back as the JSON's doubles.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelq/estimate.h"
#include "modelq/quant.h"
#include "modelq/target.h"
#include "outfile.h"
#include "outpath.h"
#include "report_impl.h"
#include "svg.h"
#include "tensor_role.h"

#define GIB 1073741824.0

static const double gpu_gib[] = {8, 12, 16, 24, 48, 80};

/* Type colours: Okabe-Ito, most distinct first (yellow last: weak on white). */
static const char *type_colour(size_t k)
{
    static const int order[] = {4, 5, 2, 6, 0, 1, 7, 3};
    return mq_okabe_ito[order[k % 8]];
}

static const char *const css =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#111;background:#fff;"
    "margin:24px auto;max-width:1280px;padding:0 16px}\n"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;border-bottom:1px solid #bbb;padding-bottom:2px;"
    "margin-top:32px}\n"
    "p.note{color:#333;font-size:13px;max-width:70em}\n"
    ".panels{display:flex;flex-wrap:wrap;gap:12px 20px;align-items:flex-start}\n"
    "table{border-collapse:collapse;font-size:12px;margin:10px 0 18px}th,td{border:1px solid #bbb;"
    "padding:2px 6px;text-align:right;font-variant-numeric:tabular-nums}th{background:#eee}"
    ".l{text-align:left}\n"
    "svg{background:#fff;overflow:visible}svg text{font-family:inherit;fill:#111}.tick{font-size:11px}"
    ".atitle{font-size:12px}.ptitle{font-size:13px;font-weight:600}.legend{font-size:12px}"
    ".clabel{font-size:10px}.cval{font-size:9px}\n"
    ".axis{stroke:#333;stroke-width:1}.diag{stroke:#999;stroke-dasharray:3 3}.lvl{stroke:#777;"
    "stroke-width:.7;stroke-dasharray:4 2}.gpu{stroke:#333;stroke-width:1;stroke-dasharray:5 3}"
    ".mix{stroke:#000;stroke-width:2}.cell{stroke:#fff;stroke-width:1}\n"
    "@media print{body{margin:0;max-width:none}h2{break-after:avoid}figure,table,.panels{break-inside:avoid}"
    "}\n";

static void esc(struct mq_sbuf *b, const char *s) { mq_sbuf_esc(b, s); }

/* Human bytes: "1.23 GB", "804.6 kB" (decimal units, as Hugging Face counts). */
static void fmt_bytes(char *out, size_t cap, double v)
{
    if (v >= 1e9) snprintf(out, cap, "%.2f GB", v / 1e9);
    else if (v >= 1e6) snprintf(out, cap, "%.2f MB", v / 1e6);
    else if (v >= 1e3) snprintf(out, cap, "%.1f kB", v / 1e3);
    else snprintf(out, cap, "%.0f B", v);
}

/* A table cell holding a number: its value in data-v, shown with fmt. */
static void td_num(struct mq_sbuf *b, double v, const char *fmt)
{
    if (!isfinite(v)) {
        mq_sbuf_printf(b, "<td data-v=\"%s\">%s</td>", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf",
                       v > 0 ? "&#8734;" : "&#8722;&#8734;");
        return;
    }
    char s[64];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(s, sizeof s, fmt, v);
#pragma GCC diagnostic pop
    mq_sbuf_printf(b, "<td data-v=\"%.17g\">%s</td>", v, s);
}

static void td_text(struct mq_sbuf *b, const char *s)
{
    mq_sbuf_puts(b, "<td class=\"l\">");
    esc(b, s);
    mq_sbuf_puts(b, "</td>");
}

/* ---- 1. staircase ---- */

/* Levels fixed relative to the block absmax: n values into lv (at most 256); 0 = none fixed. */
static int codec_levels(enum mq_codec c, double *lv)
{
    int n = 0;
    switch (c) {
    case MQ_CODEC_Q8_0:
    case MQ_CODEC_INT8_ROW: /* round(x / (absmax / 127)) */
        for (int k = -127; k <= 127; k++) lv[n++] = k / 127.0;
        break;
    case MQ_CODEC_Q4_0: /* d = max / -8: (q - 8) d is k/8 of the absmax, k = -8..8 (either sign of max) */
        for (int k = -8; k <= 8; k++) lv[n++] = k / 8.0;
        break;
    case MQ_CODEC_Q5_0:
        for (int k = -16; k <= 16; k++) lv[n++] = k / 16.0;
        break;
    case MQ_CODEC_NF4:
        for (unsigned k = 0; k < 16; k++) lv[n++] = mq_nf4_value(k);
        break;
    case MQ_CODEC_FP4:
        for (unsigned k = 0; k < 16; k++) lv[n++] = mq_fp4_value(k);
        break;
    default:
        break;
    }
    return n;
}

/* Two title lines: the type and codec, then the tensor's name; the plot starts 14 px lower. */
static void panel_title(struct mq_sbuf *b, double w, const struct rep_type *t, const char *what)
{
    char line[256];
    snprintf(line, sizeof line, "%s (%s %s)", t->target, what, mq_codec_info(t->plot_codec)->name);
    mq_svg_text(b, w / 2, 13, "middle", 0, "ptitle", line);
    mq_svg_text(b, w / 2, 27, "middle", 0, "legend", t->plot_name ? t->plot_name : "?");
    mq_sbuf_puts(b, "<g transform=\"translate(0 14)\">\n");
}

static void staircase_panel(struct mq_sbuf *b, const struct rep_type *t, size_t k)
{
    const double W = 330, H = 320;
    const struct mq_axis ax = {-1.05, 1.05, 64, W - 12}, ay = {-1.05, 1.05, H - 54, 26};
    char title[512];
    snprintf(title, sizeof title, "%s: %s (%s)", t->target, t->plot_name ? t->plot_name : "?",
             mq_codec_info(t->plot_codec)->name);
    mq_svg_open(b, W, H + 14, "plot staircase", title);
    panel_title(b, W, t, "codec");
    double lv[256];
    int nl = t->plot_block ? codec_levels(t->plot_codec, lv) : 0;
    /* at most 64 lines: every step-th level of INT8's 255 */
    int step = nl > 64 ? (nl + 63) / 64 : 1;
    for (int i = 0; i < nl; i += step) {
        double y = mq_axis_px(&ay, lv[i]);
        mq_sbuf_printf(b, "<line class=\"lvl\" data-v=\"%.17g\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                       lv[i], ax.p0, y, ax.p1, y);
    }
    mq_svg_line(b, mq_axis_px(&ax, -1), mq_axis_px(&ay, -1), mq_axis_px(&ax, 1), mq_axis_px(&ay, 1), "diag");
    mq_svg_axis_x(b, &ax, ay.p0, 5, "%g", t->plot_block ? "x / block absmax" : "x");
    mq_svg_axis_y(b, &ay, ax.p0, 5, "%g", t->plot_block ? "dequantized / block absmax" : "stored value");
    mq_sbuf_printf(b, "<g fill=\"%s\" fill-opacity=\"0.75\">\n", type_colour(k));
    for (size_t i = 0; i < t->npts; i++) {
        const struct rep_point *p = &t->pts[i];
        double s = p->scale;
        mq_sbuf_printf(b,
                       "<circle class=\"pt\" r=\"1.7\" cx=\"%.2f\" cy=\"%.2f\" data-i=\"%llu\" data-x=\"%.9g\" "
                       "data-y=\"%.9g\" data-s=\"%.9g\"/>\n",
                       mq_axis_px(&ax, p->x / s), mq_axis_px(&ay, p->y / s), (unsigned long long)p->idx, (double)p->x,
                       (double)p->y, s);
    }
    mq_sbuf_puts(b, "</g>\n");
    mq_sbuf_puts(b, "</g>\n");
    mq_svg_close(b);
}

static const struct rep_tensor *find_tensor(const struct rep_type *t, const char *name)
{
    for (size_t i = 0; name && i < t->n; i++)
        if (strcmp(t->t[i].name, name) == 0) return &t->t[i];
    return NULL;
}

static void stats_cells(struct mq_sbuf *b, const struct rep_tensor *rt)
{
    if (!rt || !rt->have_stats) {
        mq_sbuf_puts(b, "<td>-</td><td>-</td><td>-</td><td>-</td><td>-</td>");
        return;
    }
    td_num(b, rt->stats.rmse, "%.3e");
    td_num(b, rt->stats.rel_rmse, "%.3e");
    td_num(b, rt->stats.max_abs_err, "%.3e");
    td_num(b, rt->stats.mean_abs_err, "%.3e");
    td_num(b, rt->stats.snr_db, "%.2f");
}

static void section_staircase(struct mq_sbuf *b, const struct mq_report *r)
{
    mq_sbuf_puts(b, "<section id=\"staircase\"><h2>1. The staircase: weights against their dequantized values</h2>\n");
    mq_sbuf_printf(b,
                   "<p class=\"note\">A fixed-seed sample of %u real weights of the tensor (the same elements for "
                   "every type), each divided by the absmax of the codec block that holds it (LLM.int8: its row), "
                   "so every block's levels fall on one staircase. Dashed lines: the codec's levels where they are "
                   "fixed multiples of the absmax (INT8: k/127, every few drawn; Q4_0: 16 steps k/8; Q5_0: k/16; "
                   "NF4: its 16 normal quantiles; FP4: its 16 values). K-quants, IQ4_NL and the Q*_1 types choose "
                   "scales (and minimums) per block or sub-block, so their levels move from block to block.</p>\n",
                   r->opt.sample);
    mq_sbuf_puts(b, "<div class=\"panels\">\n");
    for (size_t k = 0; k < r->n_types; k++) staircase_panel(b, &r->types[k], k);
    mq_sbuf_puts(b, "</div>\n<table class=\"t-staircase\"><tr><th class=\"l\">type</th><th class=\"l\">tensor</th>"
                    "<th class=\"l\">codec</th><th>block</th><th>points</th><th>levels drawn</th><th>rmse</th>"
                    "<th>rel. RMSE</th><th>max |err|</th><th>mean |err|</th><th>SNR dB</th></tr>\n");
    for (size_t k = 0; k < r->n_types; k++) {
        const struct rep_type *t = &r->types[k];
        double lv[256];
        int nl = t->plot_block ? codec_levels(t->plot_codec, lv) : 0;
        int step = nl > 64 ? (nl + 63) / 64 : 1;
        mq_sbuf_printf(b, "<tr data-type=\"%s\">", t->target);
        td_text(b, t->target);
        td_text(b, t->plot_name ? t->plot_name : "");
        td_text(b, mq_codec_info(t->plot_codec)->name);
        td_num(b, t->plot_block, "%.0f");
        td_num(b, (double)t->npts, "%.0f");
        td_num(b, nl ? (nl + step - 1) / step : 0, "%.0f");
        stats_cells(b, find_tensor(t, t->plot_name));
        mq_sbuf_puts(b, "</tr>\n");
    }
    mq_sbuf_puts(b, "</table></section>\n");
}

/* ---- 2. error histogram ---- */

/* The bins holding counts: [HIST_BINS/2 - h, HIST_BINS/2 + h), h >= 1. */
static int hist_half(const struct rep_type *t)
{
    int h = 1;
    for (int j = 0; j < HIST_BINS; j++)
        if (t->hist[j]) {
            int d = j < HIST_BINS / 2 ? HIST_BINS / 2 - j : j - HIST_BINS / 2 + 1;
            if (d > h) h = d;
        }
    return h;
}

static void hist_panel(struct mq_sbuf *b, const struct rep_type *t, size_t k)
{
    const double W = 330, H = 260;
    int h = hist_half(t);
    double w = ldexp(1.0, t->hist_exp - HIST_HALF_LOG2), lo = -h * w, hi = h * w;
    uint64_t top = 1;
    for (int j = HIST_BINS / 2 - h; j < HIST_BINS / 2 + h; j++) top = t->hist[j] > top ? t->hist[j] : top;
    const struct mq_axis ax = {lo, hi, 64, W - 14}, ay = {0, (double)top * 1.05, H - 54, 26};
    char title[512];
    snprintf(title, sizeof title, "%s: dequantized - x, %s", t->target, t->plot_name ? t->plot_name : "?");
    mq_svg_open(b, W, H + 14, "plot histogram", title);
    panel_title(b, W, t, "error of");
    for (int j = HIST_BINS / 2 - h; j < HIST_BINS / 2 + h; j++) {
        double b0 = (j - HIST_BINS / 2) * w, b1 = b0 + w;
        double x0 = mq_axis_px(&ax, b0), x1 = mq_axis_px(&ax, b1), y = mq_axis_px(&ay, (double)t->hist[j]);
        mq_sbuf_printf(b,
                       "<rect class=\"hbar\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\" "
                       "data-v=\"%llu\" data-lo=\"%.17g\" data-hi=\"%.17g\"/>\n",
                       x0, y, x1 - x0 > 0.6 ? x1 - x0 - 0.4 : x1 - x0, ay.p0 - y, type_colour(k),
                       (unsigned long long)t->hist[j], b0, b1);
    }
    mq_svg_axis_x(b, &ax, ay.p0, 5, "%.2g", "dequantized - x");
    mq_svg_axis_y(b, &ay, ax.p0, 5, "%g", "elements");
    mq_sbuf_puts(b, "</g>\n");
    mq_svg_close(b);
}

static void section_histogram(struct mq_sbuf *b, const struct mq_report *r)
{
    mq_sbuf_puts(b, "<section id=\"histogram\"><h2>2. Where the error goes: histogram of the error</h2>\n"
                    "<p class=\"note\">Every element of the staircase's tensor (not only the sample): dequantized "
                    "value minus the original. Bins are powers of two wide, so the picture does not depend on how "
                    "the run was chunked or threaded.</p>\n<div class=\"panels\">\n");
    for (size_t k = 0; k < r->n_types; k++) hist_panel(b, &r->types[k], k);
    mq_sbuf_puts(b, "</div>\n<table class=\"t-histogram\"><tr><th class=\"l\">type</th><th>elements</th>"
                    "<th>NaN/Inf</th><th>bin width</th><th>bins</th><th>rmse</th><th>rel. RMSE</th>"
                    "<th>max |err|</th><th>mean |err|</th><th>SNR dB</th></tr>\n");
    for (size_t k = 0; k < r->n_types; k++) {
        const struct rep_type *t = &r->types[k];
        mq_sbuf_printf(b, "<tr data-type=\"%s\">", t->target);
        td_text(b, t->target);
        td_num(b, (double)t->hist_n, "%.0f");
        td_num(b, (double)t->hist_nonfinite, "%.0f");
        td_num(b, ldexp(1.0, t->hist_exp - HIST_HALF_LOG2), "%.3g");
        td_num(b, 2 * hist_half(t), "%.0f");
        stats_cells(b, find_tensor(t, t->plot_name));
        mq_sbuf_puts(b, "</tr>\n");
    }
    mq_sbuf_puts(b, "</table></section>\n");
}

/* ---- 3. heat map ---- */

static const char *role_key(enum mq_role r)
{
    switch (r) {
    case MQ_ROLE_ATTN_Q: return "attn_q";
    case MQ_ROLE_ATTN_K: return "attn_k";
    case MQ_ROLE_ATTN_V: return "attn_v";
    case MQ_ROLE_ATTN_QKV: return "attn_qkv";
    case MQ_ROLE_ATTN_OUT: return "attn_out";
    case MQ_ROLE_FFN_GATE: return "ffn_gate";
    case MQ_ROLE_FFN_UP: return "ffn_up";
    case MQ_ROLE_FFN_DOWN: return "ffn_down";
    case MQ_ROLE_ROUTER: return "router";
    case MQ_ROLE_TOKEN_EMBD: return "token_embd";
    case MQ_ROLE_OUTPUT: return "output";
    default: return NULL;
    }
}

/* The column of a tensor: its role (the same for GGUF and Hugging Face names), or, for a tensor of
 * no known role or a second one of the same role in its layer (MoE shared experts), its name
 * without "blk.N." / "layers.N." and ".weight". */
static void column_key(const char *name, bool by_name, char *out, size_t cap)
{
    const char *rk = role_key(mq_tensor_role(name));
    if (rk && !by_name) {
        snprintf(out, cap, "%s", rk);
        return;
    }
    long layer = mq_tensor_layer(name);
    const char *p = name;
    if (layer >= 0) {
        char pat[32];
        snprintf(pat, sizeof pat, ".%ld.", layer);
        const char *q = strstr(name, pat);
        if (q) p = q + strlen(pat);
    }
    snprintf(out, cap, "%s", p);
    size_t n = strlen(out);
    if (n > 7 && strcmp(out + n - 7, ".weight") == 0) out[n - 7] = '\0';
}

struct hm_col {
    char key[128];
    int role;
    size_t first;
};

static int col_cmp(const void *a, const void *b)
{
    const struct hm_col *x = a, *y = b;
    if (x->role != y->role) return x->role < y->role ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* Role order of the columns: attention, then the MLP, then the rest. */
static int role_rank(const char *name)
{
    switch (mq_tensor_role(name)) {
    case MQ_ROLE_ATTN_Q: return 0;
    case MQ_ROLE_ATTN_K: return 1;
    case MQ_ROLE_ATTN_V: return 2;
    case MQ_ROLE_ATTN_QKV: return 3;
    case MQ_ROLE_ATTN_OUT: return 4;
    case MQ_ROLE_FFN_GATE: return 5;
    case MQ_ROLE_FFN_UP: return 6;
    case MQ_ROLE_FFN_DOWN: return 7;
    case MQ_ROLE_ROUTER: return 8;
    case MQ_ROLE_TOKEN_EMBD: return 10;
    case MQ_ROLE_OUTPUT: return 11;
    default: return 9;
    }
}

struct heat {
    struct hm_col *cols;
    size_t ncol;
    size_t *col_of[MQ_REPORT_MAX_TYPES]; /* column of each tensor of each type (-1: no stats) */
    long nlayer;           /* rows 0..nlayer-1, plus one row for tensors outside layers */
    bool global_row;
    double lmin, lmax;     /* log10 rel RMSE over every cell of every type */
};

static size_t col_find(const struct heat *h, const char *key)
{
    for (size_t c = 0; c < h->ncol; c++)
        if (strcmp(h->cols[c].key, key) == 0) return c;
    return (size_t)-1;
}

static void heat_free(struct heat *h)
{
    free(h->cols);
    for (size_t k = 0; k < MQ_REPORT_MAX_TYPES; k++) free(h->col_of[k]);
}

/* The column key of tensor i of type t: by role unless an earlier tensor of its layer has that role. */
static void tensor_key(const struct rep_type *t, size_t i, char *key, size_t cap)
{
    column_key(t->t[i].name, false, key, cap);
    long layer = mq_tensor_layer(t->t[i].name);
    for (size_t j = 0; j < i; j++) {
        char other[128];
        if (!t->t[j].have_stats || mq_tensor_layer(t->t[j].name) != layer) continue;
        column_key(t->t[j].name, false, other, sizeof other);
        if (strcmp(other, key) == 0) {
            column_key(t->t[i].name, true, key, cap);
            return;
        }
    }
}

static bool heat_build(const struct mq_report *r, struct heat *h)
{
    memset(h, 0, sizeof *h);
    h->lmin = INFINITY;
    h->lmax = -INFINITY;
    size_t cap = 0;
    for (size_t k = 0; k < r->n_types; k++) cap += r->types[k].n;
    h->cols = calloc(cap ? cap : 1, sizeof *h->cols);
    if (!h->cols) return false;
    size_t seq = 0;
    for (size_t k = 0; k < r->n_types; k++) {
        const struct rep_type *t = &r->types[k];
        h->col_of[k] = malloc((t->n ? t->n : 1) * sizeof(size_t));
        if (!h->col_of[k]) return false;
        for (size_t i = 0; i < t->n; i++, seq++) {
            const struct rep_tensor *rt = &t->t[i];
            h->col_of[k][i] = (size_t)-1;
            if (!rt->have_stats) continue;
            long layer = mq_tensor_layer(rt->name);
            if (layer >= 0 && layer + 1 > h->nlayer) h->nlayer = layer + 1;
            if (layer < 0) h->global_row = true;
            if (isfinite(rt->stats.rel_rmse) && rt->stats.rel_rmse > 0) {
                double l = log10(rt->stats.rel_rmse);
                if (l < h->lmin) h->lmin = l;
                if (l > h->lmax) h->lmax = l;
            }
            char key[128];
            tensor_key(t, i, key, sizeof key);
            if (col_find(h, key) != (size_t)-1) continue;
            struct hm_col *c = &h->cols[h->ncol++];
            snprintf(c->key, sizeof c->key, "%s", key);
            c->role = role_rank(rt->name);
            c->first = seq;
        }
    }
    qsort(h->cols, h->ncol, sizeof *h->cols, col_cmp);
    for (size_t k = 0; k < r->n_types; k++)
        for (size_t i = 0; i < r->types[k].n; i++) {
            if (!r->types[k].t[i].have_stats) continue;
            char key[128];
            tensor_key(&r->types[k], i, key, sizeof key);
            h->col_of[k][i] = col_find(h, key);
        }
    if (!(h->lmax >= h->lmin)) h->lmin = h->lmax = -2;
    if (h->lmax - h->lmin < 0.1) {
        h->lmin -= 0.05;
        h->lmax += 0.05;
    }
    return true;
}

/* Position 0..1 on the colour scale: 1 (dark) = the largest error. */
static double heat_t(const struct heat *h, double rel)
{
    if (!(rel > 0)) return 0;
    if (!isfinite(rel)) return 1;
    return (log10(rel) - h->lmin) / (h->lmax - h->lmin);
}

static void heat_panel(struct mq_sbuf *b, const struct heat *h, const struct rep_type *t, size_t k)
{
    size_t nrow = (size_t)h->nlayer + (h->global_row ? 1 : 0);
    double cw = h->ncol > 12 ? 30 : 44, ch = nrow > 40 ? 10 : nrow > 20 ? 14 : 20;
    double left = 70, top = 96;
    double W = left + cw * (double)h->ncol + 16, H = top + ch * (double)nrow + 12;
    char title[256];
    snprintf(title, sizeof title, "%s (outlined: another codec)", t->target);
    mq_svg_open(b, W, H, "plot heatmap", title);
    mq_svg_text(b, 4, 14, "start", 0, "ptitle", title);
    for (size_t c = 0; c < h->ncol; c++)
        mq_svg_text(b, left + cw * ((double)c + 0.5) + 3, top - 6, "start", -55, "clabel", h->cols[c].key);
    for (size_t rr = 0; rr < nrow; rr++) {
        char lab[32];
        if ((long)rr < h->nlayer) snprintf(lab, sizeof lab, "layer %zu", rr);
        else snprintf(lab, sizeof lab, "not in a layer");
        if (ch >= 10) mq_svg_text(b, left - 4, top + ch * ((double)rr + 0.5) + 3.5, "end", 0, "tick", lab);
    }
    const char *own = mq_codec_info(t->codec)->name;
    for (size_t i = 0; i < t->n; i++) {
        const struct rep_tensor *rt = &t->t[i];
        if (!rt->have_stats) continue;
        long layer = mq_tensor_layer(rt->name);
        size_t row = layer >= 0 ? (size_t)layer : (size_t)h->nlayer, col = h->col_of[k][i];
        double x = left + cw * (double)col, y = top + ch * (double)row, tt = heat_t(h, rt->stats.rel_rmse);
        char fill[8];
        mq_viridis(1 - tt, fill);
        bool mixed = strcmp(rt->out_type, own) != 0;
        mq_sbuf_printf(b, "<rect class=\"cell%s\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\" "
                          "data-type=\"%s\" data-codec=\"%s\" data-tensor=\"",
                       mixed ? " mix" : "", x, y, cw, ch, fill, t->target, rt->out_type);
        esc(b, rt->name);
        mq_sbuf_printf(b, "\" data-v=\"%.17g\"><title>", rt->stats.rel_rmse);
        esc(b, rt->name);
        mq_sbuf_printf(b, ": %s, relative RMSE %.3g%%</title></rect>\n", rt->out_type, 100 * rt->stats.rel_rmse);
        if (mixed && ch >= 12)
            mq_sbuf_printf(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" class=\"cval\" style=\"fill:%s\">%s"
                              "</text>\n",
                           x + cw / 2, y + ch / 2 + 3, tt > 0.5 ? "#fff" : "#000", rt->out_type);
    }
    mq_svg_close(b);
}

/* The colour scale: relative RMSE from the smallest to the largest of any cell. */
static void heat_legend(struct mq_sbuf *b, const struct heat *h)
{
    const double W = 420, H = 58;
    mq_svg_open(b, W, H, "plot heatlegend", "colour scale: relative RMSE");
    const int steps = 40;
    for (int i = 0; i < steps; i++) {
        char fill[8];
        mq_viridis(1 - (i + 0.5) / steps, fill);
        mq_sbuf_printf(b, "<rect x=\"%.2f\" y=\"8\" width=\"%.2f\" height=\"14\" fill=\"%s\"/>\n",
                       20 + (W - 40) * i / steps, (W - 40) / steps + 0.3, fill);
    }
    struct mq_axis ax = {h->lmin, h->lmax, 20, W - 20};
    double t[16];
    int n = mq_nice_ticks(h->lmin, h->lmax, 6, t);
    mq_svg_line(b, ax.p0, 22, ax.p1, 22, "axis");
    for (int i = 0; i < n; i++) {
        char lab[32];
        snprintf(lab, sizeof lab, "%.3g%%", 100 * pow(10, t[i]));
        double x = mq_axis_px(&ax, t[i]);
        mq_svg_line(b, x, 22, x, 26, "axis");
        mq_svg_text(b, x, 38, "middle", 0, "tick", lab);
    }
    mq_svg_text(b, W / 2, 54, "middle", 0, "atitle", "relative RMSE = rmse / rms(x) (log scale; darker = larger)");
    mq_svg_close(b);
}

static void section_heatmap(struct mq_sbuf *b, const struct mq_report *r)
{
    struct heat h;
    if (!heat_build(r, &h)) {
        heat_free(&h);
        b->oom = true;
        return;
    }
    mq_sbuf_puts(b, "<section id=\"heatmap\"><h2>3. Error by layer and tensor</h2>\n"
                    "<p class=\"note\">Relative RMSE of every quantized tensor, sqrt(sum (x - y)&#178; / sum x&#178;) "
                    "= 10^(-SNR/20), one panel per type. An outlined cell, labelled with its codec, got another "
                    "codec than the type's own (llama-quantize's mixture: output Q6_K, attn_v / ffn_down Q5_K or "
                    "Q6_K, fallbacks).</p>\n");
    heat_legend(b, &h);
    mq_sbuf_puts(b, "<div class=\"panels\">\n");
    for (size_t k = 0; k < r->n_types; k++) heat_panel(b, &h, &r->types[k], k);
    mq_sbuf_puts(b, "</div>\n<table class=\"t-heatmap\"><tr><th class=\"l\">layer</th><th class=\"l\">tensor</th>");
    for (size_t k = 0; k < r->n_types; k++)
        mq_sbuf_printf(b, "<th class=\"l\">%s codec</th><th>%s rel. RMSE</th><th>%s SNR dB</th>", r->types[k].target,
                       r->types[k].target, r->types[k].target);
    mq_sbuf_puts(b, "</tr>\n");
    /* one row per cell (layer, column); the tensor's name in each type (GGUF and bitsandbytes names
     * differ) is the codec cell's title */
    size_t nrow = (size_t)h.nlayer + (h.global_row ? 1 : 0);
    for (size_t row = 0; row < nrow; row++) {
        for (size_t c = 0; c < h.ncol; c++) {
            const struct rep_tensor *cell[MQ_REPORT_MAX_TYPES] = {0};
            const char *label = NULL;
            for (size_t k = 0; k < r->n_types; k++)
                for (size_t i = 0; i < r->types[k].n; i++) {
                    long layer = mq_tensor_layer(r->types[k].t[i].name);
                    size_t tr = layer >= 0 ? (size_t)layer : (size_t)h.nlayer;
                    if (h.col_of[k][i] == c && tr == row) {
                        cell[k] = &r->types[k].t[i];
                        if (!label) label = cell[k]->name;
                    }
                }
            if (!label) continue;
            char lab[32];
            if ((long)row < h.nlayer) snprintf(lab, sizeof lab, "%zu", row);
            else snprintf(lab, sizeof lab, "-");
            mq_sbuf_puts(b, "<tr>");
            td_text(b, lab);
            td_text(b, label);
            for (size_t k = 0; k < r->n_types; k++) {
                if (!cell[k]) {
                    mq_sbuf_puts(b, "<td>-</td><td>-</td><td>-</td>");
                    continue;
                }
                mq_sbuf_printf(b, "<td class=\"l\" data-type=\"%s\" title=\"", r->types[k].target);
                esc(b, cell[k]->name);
                mq_sbuf_printf(b, "\">%s</td>", cell[k]->out_type);
                td_num(b, cell[k]->stats.rel_rmse, "%.3e");
                td_num(b, cell[k]->stats.snr_db, "%.2f");
            }
            mq_sbuf_puts(b, "</tr>\n");
        }
    }
    mq_sbuf_puts(b, "</table></section>\n");
    heat_free(&h);
}

/* ---- 4. bytes and memory ---- */

#define N_GROUPS 7
static const char *const group_names[N_GROUPS] = {"attention q/k/v", "attention out", "MLP gate/up", "MLP down",
                                                  "token embedding", "output", "norms, router, other"};

static int group_of(const char *name)
{
    switch (mq_tensor_role(name)) {
    case MQ_ROLE_ATTN_Q:
    case MQ_ROLE_ATTN_K:
    case MQ_ROLE_ATTN_V:
    case MQ_ROLE_ATTN_QKV: return 0;
    case MQ_ROLE_ATTN_OUT: return 1;
    case MQ_ROLE_FFN_GATE:
    case MQ_ROLE_FFN_UP: return 2;
    case MQ_ROLE_FFN_DOWN: return 3;
    case MQ_ROLE_TOKEN_EMBD: return 4;
    case MQ_ROLE_OUTPUT: return 5;
    default: return 6;
    }
}

static void section_bytes(struct mq_sbuf *b, const struct mq_report *r)
{
    uint64_t gb[MQ_REPORT_MAX_TYPES][N_GROUPS];
    memset(gb, 0, sizeof gb);
    double top = 1;
    for (size_t k = 0; k < r->n_types; k++) {
        for (size_t i = 0; i < r->types[k].n; i++) gb[k][group_of(r->types[k].t[i].name)] += r->types[k].t[i].bytes;
        if ((double)r->types[k].tensor_bytes > top) top = (double)r->types[k].tensor_bytes;
    }
    double unit = top >= 1e9 ? 1e9 : top >= 1e6 ? 1e6 : 1e3;
    const char *uname = top >= 1e9 ? "GB" : top >= 1e6 ? "MB" : "kB";
    mq_sbuf_puts(b, "<section id=\"bytes\"><h2>4. Bytes per tensor role and memory against GPU sizes</h2>\n"
                    "<p class=\"note\">Tensor bytes of each type by role (scales, zero points and the tensors "
                    "a type keeps in F32/16-bit included), with bits per weight = bytes &#215; 8 / parameters.</p>\n");
    const double rowh = 30, left = 90, W = 820;
    double H = 40 + rowh * (double)r->n_types + 88;
    const struct mq_axis ax = {0, top / unit * 1.08, left, W - 90};
    mq_svg_open(b, W, H, "plot bytes", "bytes per tensor role");
    for (size_t k = 0; k < r->n_types; k++) {
        const struct rep_type *t = &r->types[k];
        double y = 20 + rowh * (double)k, x = ax.p0;
        mq_svg_text(b, left - 6, y + rowh / 2 + 1, "end", 0, "tick", t->target);
        for (int g = 0; g < N_GROUPS; g++) {
            double w = mq_axis_px(&ax, (double)gb[k][g] / unit) - ax.p0;
            mq_sbuf_printf(b,
                           "<rect class=\"seg\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\" "
                           "data-type=\"%s\" data-role=\"%s\" data-v=\"%llu\"/>\n",
                           x, y + 4, w, rowh - 8, mq_okabe_ito[g], t->target, group_names[g],
                           (unsigned long long)gb[k][g]);
            x += w;
        }
        char lab[64];
        snprintf(lab, sizeof lab, "%.3f bpw", t->bpw);
        mq_svg_text(b, x + 6, y + rowh / 2 + 4, "start", 0, "tick", lab);
    }
    char at[32];
    snprintf(at, sizeof at, "tensor bytes (%s)", uname);
    double ybase = 20 + rowh * (double)r->n_types;
    mq_svg_axis_x(b, &ax, ybase, 8, "%g", at);
    /* the legend in two rows of four and three (readable at 100%) */
    mq_svg_legend(b, left, ybase + 56, 150, group_names, (const char *const *)mq_okabe_ito, 4);
    mq_svg_legend(b, left, ybase + 76, 150, group_names + 4, (const char *const *)mq_okabe_ito + 4, 3);
    mq_svg_close(b);
    mq_sbuf_puts(b, "<table class=\"t-bytes\"><tr><th class=\"l\">type</th>");
    for (int g = 0; g < N_GROUPS; g++) mq_sbuf_printf(b, "<th>%s</th>", group_names[g]);
    mq_sbuf_puts(b, "<th>tensor bytes</th><th>file bytes</th><th>parameters</th><th>quantized</th><th>bpw</th>"
                    "<th>rel. RMSE (all quantized)</th><th>SNR dB</th></tr>\n");
    for (size_t k = 0; k < r->n_types; k++) {
        const struct rep_type *t = &r->types[k];
        mq_sbuf_printf(b, "<tr data-type=\"%s\">", t->target);
        td_text(b, t->target);
        for (int g = 0; g < N_GROUPS; g++) td_num(b, (double)gb[k][g], "%.0f");
        td_num(b, (double)t->tensor_bytes, "%.0f");
        td_num(b, (double)t->file_bytes, "%.0f");
        td_num(b, (double)t->params, "%.0f");
        td_num(b, (double)t->quantized_params, "%.0f");
        td_num(b, t->bpw, "%.3f");
        td_num(b, t->total.rel_rmse, "%.3e");
        td_num(b, t->total.snr_db, "%.2f");
        mq_sbuf_puts(b, "</tr>\n");
    }
    mq_sbuf_puts(b, "</table>\n");
}

/* One bar of the memory chart. */
struct mem_row {
    char label[96];
    bool chosen;
    uint64_t weights, kv, overhead;
};

static void section_memory(struct mq_sbuf *b, const struct mq_report *r, const struct mq_estimate *e)
{
    struct mem_row rows[MQ_ESTIMATE_ROWS + MQ_REPORT_MAX_TYPES];
    size_t n = 0;
    bool cfg = e && e->have_config;
    for (int k = 0; e && k < MQ_ESTIMATE_ROWS; k++) {
        const struct mq_estimate_row *er = &e->rows[k];
        struct mem_row *m = &rows[n++];
        snprintf(m->label, sizeof m->label, "%s", mq_target_info(er->target)->label);
        m->chosen = false;
        for (size_t t = 0; t < r->n_types; t++)
            if (strcmp(r->types[t].target, mq_target_info(er->target)->name) == 0) m->chosen = true;
        m->weights = er->bytes;
        m->kv = cfg ? e->kv_bytes : 0;
        m->overhead = cfg ? e->overhead_bytes : 0;
    }
    for (size_t t = 0; t < r->n_types; t++) {
        enum mq_target tg;
        bool row = false;
        if (mq_target_for_convert(r->types[t].target, &tg)) row = mq_target_info(tg)->estimate_row != 0;
        if (row && e) continue;
        struct mem_row *m = &rows[n++];
        snprintf(m->label, sizeof m->label, "%s (this report)", r->types[t].target);
        m->chosen = true;
        m->weights = r->types[t].tensor_bytes;
        m->kv = cfg ? e->kv_bytes : 0;
        m->overhead = cfg ? e->overhead_bytes : 0;
    }
    double top = gpu_gib[5] * 1.1;
    for (size_t i = 0; i < n; i++) {
        double tot = (double)(rows[i].weights + rows[i].kv + rows[i].overhead) / GIB;
        if (tot * 1.05 > top) top = tot * 1.05;
    }
    if (cfg)
        mq_sbuf_printf(b,
                       "<p class=\"note\">Inference memory as <code>modelq estimate --ctx %llu</code> computes it: "
                       "weights + KV cache (%llu tokens, batch %llu, K/V %s/%s) + overhead (runtime reserve and "
                       "compute buffer). Dashed lines: GPUs of 8, 12, 16, 24, 48 and 80 GiB. Bold: the types of "
                       "this report.</p>\n",
                       (unsigned long long)e->opt.ctx, (unsigned long long)e->opt.ctx,
                       (unsigned long long)e->opt.batch, mq_codec_info(e->opt.kv_type_k)->name,
                       mq_codec_info(e->opt.kv_type_v)->name);
    else
        mq_sbuf_puts(b, "<p class=\"note\">No config.json beside the weights: the KV cache and the runtime overhead "
                        "are unknown, only the weights are drawn. Dashed lines: GPUs of 8 to 80 GiB.</p>\n");
    const double rowh = 24, left = 200, W = 820;
    double H = 20 + rowh * (double)n + 70;
    const struct mq_axis ax = {0, top, left, W - 20};
    mq_svg_open(b, W, H, "plot memory", "inference memory against GPU sizes");
    static const char *const parts[3] = {"weights", "kv", "overhead"};
    static const char *const part_names[3] = {"weights", "KV cache", "overhead"};
    const char *part_col[3] = {mq_okabe_ito[4], mq_okabe_ito[0], mq_okabe_ito[1]};
    for (size_t i = 0; i < n; i++) {
        double y = 10 + rowh * (double)i, x = ax.p0;
        mq_sbuf_printf(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\" class=\"tick\"%s>", left - 6,
                       y + rowh / 2 + 4, rows[i].chosen ? " font-weight=\"bold\"" : "");
        esc(b, rows[i].label);
        mq_sbuf_puts(b, "</text>\n");
        uint64_t v[3] = {rows[i].weights, rows[i].kv, rows[i].overhead};
        for (int p = 0; p < 3; p++) {
            double w = mq_axis_px(&ax, (double)v[p] / GIB) - ax.p0;
            mq_sbuf_printf(b,
                           "<rect class=\"est\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\" "
                           "data-row=\"",
                           x, y + 4, w, rowh - 8, part_col[p]);
            esc(b, rows[i].label);
            mq_sbuf_printf(b, "\" data-part=\"%s\" data-v=\"%llu\"/>\n", parts[p], (unsigned long long)v[p]);
            x += w;
        }
    }
    double ybase = 10 + rowh * (double)n;
    for (int g = 0; g < 6; g++) {
        double x = mq_axis_px(&ax, gpu_gib[g]);
        mq_sbuf_printf(b, "<line class=\"gpu\" data-v=\"%g\" x1=\"%.2f\" y1=\"6\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                       gpu_gib[g], x, x, ybase);
        char lab[16];
        snprintf(lab, sizeof lab, "%g", gpu_gib[g]);
        mq_svg_text(b, x, 4, "middle", 0, "tick", lab);
    }
    mq_svg_axis_x(b, &ax, ybase, 10, "%g", "GiB");
    mq_svg_legend(b, left, ybase + 58, 110, part_names, part_col, cfg ? 3 : 1);
    mq_svg_close(b);
    mq_sbuf_puts(b, "<table class=\"t-memory\"><tr><th class=\"l\">target</th><th>weights bytes</th>"
                    "<th>KV cache bytes</th><th>overhead bytes</th><th>total bytes</th><th>total GiB</th>"
                    "<th>smallest GPU that holds it</th></tr>\n");
    for (size_t i = 0; i < n; i++) {
        uint64_t tot = rows[i].weights + rows[i].kv + rows[i].overhead;
        mq_sbuf_puts(b, "<tr>");
        td_text(b, rows[i].label);
        td_num(b, (double)rows[i].weights, "%.0f");
        td_num(b, (double)rows[i].kv, "%.0f");
        td_num(b, (double)rows[i].overhead, "%.0f");
        td_num(b, (double)tot, "%.0f");
        td_num(b, (double)tot / GIB, "%.3f");
        const char *fit = "none of these";
        static const char *const names[6] = {"8 GiB", "12 GiB", "16 GiB", "24 GiB", "48 GiB", "80 GiB"};
        for (int g = 5; g >= 0; g--)
            if ((double)tot <= gpu_gib[g] * GIB) fit = names[g];
        td_text(b, fit);
        mq_sbuf_puts(b, "</tr>\n");
    }
    mq_sbuf_puts(b, "</table></section>\n");
}

bool mq_report_render(const struct mq_report *r, const struct mq_estimate *e, struct mq_sbuf *b)
{
    mq_sbuf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>modelq report: ");
    esc(b, r->input);
    mq_sbuf_printf(b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header><h1>Quantization report: ", css);
    esc(b, r->input);
    mq_sbuf_puts(b, "</h1>\n<p class=\"note\">Written by <code>modelq</code> from the model's own weights: each type "
                    "quantized in memory (a dry run with statistics, as <code>modelq convert --dry-run --stats "
                    "--report</code>), nothing else read or fetched. Types: ");
    for (size_t k = 0; k < r->n_types; k++) {
        mq_sbuf_printf(b, "%s<b style=\"color:%s\">%s</b>", k ? ", " : "", type_colour(k), r->types[k].target);
    }
    if (r->n_types) {
        char buf[64];
        fmt_bytes(buf, sizeof buf, (double)r->types[0].tensor_bytes);
        mq_sbuf_printf(b, ". Parameters: %llu; the first type's tensors: %s.", (unsigned long long)r->types[0].params,
                       buf);
    }
    mq_sbuf_puts(b, "</p></header>\n");
    section_staircase(b, r);
    section_histogram(b, r);
    section_heatmap(b, r);
    section_bytes(b, r);
    section_memory(b, r, e);
    mq_sbuf_puts(b, "</body></html>\n");
    return !b->oom;
}

enum mq_status mq_report_write(struct mq_report *r, const char *path, struct mq_error *err)
{
    if (!path) return MQ_FAIL(err, MQ_E_USAGE, "output", "no output given for the HTML report");
    if (r->n_types == 0) return MQ_FAIL(err, MQ_E_USAGE, "report-types", "the report has no type measured");
    struct mq_model *m = NULL;
    MQ_TRY(mq_model_open(r->input, &m, err));
    struct mq_input_set in;
    enum mq_status s = mq_input_set_build(m, &in, err);
    if (s == MQ_OK) {
        s = mq_outpath_check(path, MQ_OUT_FILE, &in, false, "the HTML report", err);
        mq_input_set_free(&in);
    }
    struct mq_estimate est;
    struct mq_estimate_options eo;
    mq_estimate_options_default(&eo);
    eo.ctx = r->opt.ctx;
    if (s == MQ_OK) s = mq_estimate_model(m, &eo, &est, err);
    mq_model_free(m);
    struct mq_sbuf b = {0};
    if (s == MQ_OK && !mq_report_render(r, &est, &b))
        s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory rendering the HTML report");
    struct mq_outfile *f = NULL;
    if (s == MQ_OK) s = mq_outfile_create(path, b.len, &f, err);
    if (s == MQ_OK) s = mq_outfile_pwrite(f, b.p, b.len, 0, err);
    if (s == MQ_OK) {
        s = mq_outfile_commit(f, err);
        f = NULL;
    }
    mq_outfile_abort(f);
    mq_sbuf_free(&b);
    return s;
}
