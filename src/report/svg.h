/*
** svg.h - private: the small SVG/HTML writer of the HTML report (no plotting dependency).
**
** Text goes into a growable buffer (struct mq_sbuf); an allocation failure is remembered and
** reported once at the end (mq_sbuf.oom), so drawing code need not check every call.
** Coordinates are printed with two decimals (%.2f), values in data-v attributes with %.17g (they
** read back as the same doubles the JSON report holds). Everything that comes from the model
** (tensor names, paths) is escaped for XML text and attributes (& < > " ').
*/
#ifndef MODELQ_SVG_H
#define MODELQ_SVG_H

#include <stdbool.h>
#include <stddef.h>

struct mq_sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

void mq_sbuf_free(struct mq_sbuf *b);
void mq_sbuf_puts(struct mq_sbuf *b, const char *s);
void mq_sbuf_printf(struct mq_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s escaped for XML text and attribute values */
void mq_sbuf_esc(struct mq_sbuf *b, const char *s);

/* A linear axis: value lo..hi onto pixels p0..p1 (p1 < p0 for an upward y axis). */
struct mq_axis {
    double lo, hi, p0, p1;
};
double mq_axis_px(const struct mq_axis *a, double v);

/* "Nice" tick values (1, 2, 5 x 10^k steps) covering [lo, hi]: at most max_n, returns the count. */
int mq_nice_ticks(double lo, double hi, int max_n, double *out);

/* <svg> with the xmlns, a viewBox of w x h, a class, and a <title> (escaped) for screen readers. */
void mq_svg_open(struct mq_sbuf *b, double w, double h, const char *cls, const char *title);
void mq_svg_close(struct mq_sbuf *b);
/* Text at (x, y); anchor "start" | "middle" | "end"; rotate degrees (0 = none); escaped. */
void mq_svg_text(struct mq_sbuf *b, double x, double y, const char *anchor, double rotate, const char *cls,
                 const char *text);
void mq_svg_line(struct mq_sbuf *b, double x1, double y1, double x2, double y2, const char *cls);
/* Bottom axis at pixel y over a (ticks, labels with fmt such as "%g"), with a title below. */
void mq_svg_axis_x(struct mq_sbuf *b, const struct mq_axis *a, double y, int max_ticks, const char *fmt,
                   const char *title);
/* Left axis at pixel x over a, title rotated along it. */
void mq_svg_axis_y(struct mq_sbuf *b, const struct mq_axis *a, double x, int max_ticks, const char *fmt,
                   const char *title);
/* A legend: n swatches with names, one row from (x, y), each entry `step` pixels wide. */
void mq_svg_legend(struct mq_sbuf *b, double x, double y, double step, const char *const *names,
                   const char *const *colours, int n);

/* Okabe-Ito colour-blind-safe categorical palette (8 colours, black last). */
extern const char *const mq_okabe_ito[8];
/* Viridis (perceptually uniform, colour-blind safe) at t in [0, 1] as "#rrggbb" into out[8]. */
void mq_viridis(double t, char out[8]);

#endif
