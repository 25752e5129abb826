/* svg.c - the HTML report's SVG writer (see svg.h). */
#include "svg.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const mq_okabe_ito[8] = {"#E69F00", "#56B4E9", "#009E73", "#F0E442",
                                     "#0072B2", "#D55E00", "#CC79A7", "#000000"};

void mq_sbuf_free(struct mq_sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Room for `more` bytes and the terminating NUL; false (and oom set) when out of memory. */
static bool sbuf_reserve(struct mq_sbuf *b, size_t more)
{
    if (b->oom) return false;
    if (more >= SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return false;
    }
    size_t need = b->len + more + 1;
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void mq_sbuf_puts(struct mq_sbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (!sbuf_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

void mq_sbuf_printf(struct mq_sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n >= 0 && sbuf_reserve(b, (size_t)n)) {
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    } else if (n < 0) {
        b->oom = true;
    }
    va_end(ap2);
}

void mq_sbuf_esc(struct mq_sbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': mq_sbuf_puts(b, "&amp;"); break;
        case '<': mq_sbuf_puts(b, "&lt;"); break;
        case '>': mq_sbuf_puts(b, "&gt;"); break;
        case '"': mq_sbuf_puts(b, "&quot;"); break;
        case '\'': mq_sbuf_puts(b, "&#39;"); break;
        default: {
            /* control characters are not allowed in XML 1.0: shown as U+FFFD */
            unsigned char c = (unsigned char)*s;
            if (c < 0x20 && c != '\t' && c != '\n') {
                mq_sbuf_puts(b, "&#xFFFD;");
            } else if (sbuf_reserve(b, 1)) {
                b->p[b->len++] = *s;
                b->p[b->len] = '\0';
            }
        }
        }
    }
}

double mq_axis_px(const struct mq_axis *a, double v)
{
    if (!(a->hi > a->lo)) return (a->p0 + a->p1) / 2;
    return a->p0 + (v - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0);
}

int mq_nice_ticks(double lo, double hi, int max_n, double *out)
{
    if (!(hi > lo) || !isfinite(lo) || !isfinite(hi) || max_n < 2) {
        out[0] = lo;
        return 1;
    }
    double raw = (hi - lo) / (max_n - 1), mag = pow(10, floor(log10(raw))), step = mag;
    static const double mult[] = {1, 2, 5, 10};
    for (int i = 0; i < 4; i++) {
        step = mult[i] * mag;
        if (step >= raw) break;
    }
    int n = 0;
    for (double v = ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9 && n < max_n; v += step)
        out[n++] = fabs(v) < step * 1e-9 ? 0.0 : v;
    return n;
}

void mq_svg_open(struct mq_sbuf *b, double w, double h, const char *cls, const char *title)
{
    mq_sbuf_printf(b,
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"%s\" width=\"%.0f\" height=\"%.0f\" "
                   "viewBox=\"0 0 %.0f %.0f\" role=\"img\"><title>",
                   cls, w, h, w, h);
    mq_sbuf_esc(b, title);
    mq_sbuf_puts(b, "</title>\n");
}

void mq_svg_close(struct mq_sbuf *b) { mq_sbuf_puts(b, "</svg>\n"); }

void mq_svg_text(struct mq_sbuf *b, double x, double y, const char *anchor, double rotate, const char *cls,
                 const char *text)
{
    mq_sbuf_printf(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"%s\"", x, y, anchor);
    if (rotate != 0) mq_sbuf_printf(b, " transform=\"rotate(%.1f %.2f %.2f)\"", rotate, x, y);
    if (cls) mq_sbuf_printf(b, " class=\"%s\"", cls);
    mq_sbuf_puts(b, ">");
    mq_sbuf_esc(b, text);
    mq_sbuf_puts(b, "</text>\n");
}

void mq_svg_line(struct mq_sbuf *b, double x1, double y1, double x2, double y2, const char *cls)
{
    mq_sbuf_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" class=\"%s\"/>\n", x1, y1, x2, y2, cls);
}

#define MAX_TICKS 16

void mq_svg_axis_x(struct mq_sbuf *b, const struct mq_axis *a, double y, int max_ticks, const char *fmt,
                   const char *title)
{
    double t[MAX_TICKS];
    int n = mq_nice_ticks(a->lo, a->hi, max_ticks < MAX_TICKS ? max_ticks : MAX_TICKS, t);
    mq_svg_line(b, a->p0, y, a->p1, y, "axis");
    for (int i = 0; i < n; i++) {
        double x = mq_axis_px(a, t[i]);
        char lab[64];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(lab, sizeof lab, fmt, t[i]);
#pragma GCC diagnostic pop
        mq_svg_line(b, x, y, x, y + 4, "axis");
        mq_svg_text(b, x, y + 15, "middle", 0, "tick", lab);
    }
    if (title) mq_svg_text(b, (a->p0 + a->p1) / 2, y + 32, "middle", 0, "atitle", title);
}

void mq_svg_axis_y(struct mq_sbuf *b, const struct mq_axis *a, double x, int max_ticks, const char *fmt,
                   const char *title)
{
    double t[MAX_TICKS];
    int n = mq_nice_ticks(a->lo, a->hi, max_ticks < MAX_TICKS ? max_ticks : MAX_TICKS, t);
    mq_svg_line(b, x, a->p0, x, a->p1, "axis");
    for (int i = 0; i < n; i++) {
        double y = mq_axis_px(a, t[i]);
        char lab[64];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(lab, sizeof lab, fmt, t[i]);
#pragma GCC diagnostic pop
        mq_svg_line(b, x - 4, y, x, y, "axis");
        mq_svg_text(b, x - 6, y + 4, "end", 0, "tick", lab);
    }
    if (title) {
        double y = (a->p0 + a->p1) / 2;
        mq_svg_text(b, x - 44, y, "middle", -90, "atitle", title);
    }
}

void mq_svg_legend(struct mq_sbuf *b, double x, double y, double step, const char *const *names,
                   const char *const *colours, int n)
{
    for (int i = 0; i < n; i++) {
        double x0 = x + step * i;
        mq_sbuf_printf(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"12\" height=\"12\" fill=\"%s\" class=\"swatch\"/>\n", x0,
                       y - 10, colours[i]);
        mq_svg_text(b, x0 + 16, y, "start", 0, "legend", names[i]);
    }
}

void mq_viridis(double t, char out[8])
{
    /* nine stops of matplotlib's viridis, linearly interpolated */
    static const unsigned char stops[9][3] = {{0x44, 0x01, 0x54}, {0x47, 0x2c, 0x7a}, {0x3b, 0x51, 0x8b},
                                              {0x2c, 0x71, 0x8e}, {0x21, 0x90, 0x8d}, {0x27, 0xad, 0x81},
                                              {0x5c, 0xc8, 0x63}, {0xaa, 0xdc, 0x32}, {0xfd, 0xe7, 0x25}};
    if (!(t >= 0)) t = 0;
    if (t > 1) t = 1;
    double f = t * 8;
    int i = (int)f;
    if (i > 7) i = 7;
    double u = f - i;
    int c[3];
    for (int k = 0; k < 3; k++) c[k] = (int)lround(stops[i][k] + (stops[i + 1][k] - stops[i][k]) * u);
    snprintf(out, 8, "#%02x%02x%02x", c[0], c[1], c[2]);
}
