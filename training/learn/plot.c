/* SVG line charts (see plot.h). The document is built in memory, then
 * written with reid_write_file_atomic. */
#include "plot.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "safetensors.h"

typedef struct text {
  char *data;
  size_t len, cap;
  int failed;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
  if (t->failed) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->data + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      t->failed = 1;
      return;
    }
    if ((size_t)n < t->cap - t->len) {
      t->len += (size_t)n;
      return;
    }
    size_t cap = t->cap * 2 + (size_t)n + 256;
    char *grown = realloc(t->data, cap);
    if (!grown) {
      t->failed = 1;
      return;
    }
    t->data = grown;
    t->cap = cap;
  }
}

/* Writes s with &, <, >, " escaped. */
static void put_escaped(text *t, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
    case '&': put(t, "&amp;"); break;
    case '<': put(t, "&lt;"); break;
    case '>': put(t, "&gt;"); break;
    case '"': put(t, "&quot;"); break;
    default: put(t, "%c", *s);
    }
  }
}

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

/* A "nice" tick step (1, 2 or 5 times a power of ten) for about `ticks` ticks. */
static double nice_step(double range, int ticks) {
  double raw = range / ticks;
  double mag = pow(10.0, floor(log10(raw)));
  double norm = raw / mag;
  return (norm < 1.5 ? 1.0 : norm < 3.0 ? 2.0 : norm < 7.0 ? 5.0 : 10.0) * mag;
}

static int usable(double v, int log_scale) {
  return isfinite(v) && (!log_scale || v > 0);
}

typedef struct axis {
  double lo, hi; /* in axis units (log10 of the value on a log axis) */
  int log_scale;
  double px0, px1; /* pixel positions of lo and hi */
} axis;

static double to_px(const axis *a, double v) {
  double u = a->log_scale ? log10(v) : v;
  return a->px0 + (u - a->lo) / (a->hi - a->lo) * (a->px1 - a->px0);
}

/* Data range of x or y over every usable point; returns 0 when there is none. */
static int data_range(const reid_plot_series *s, int count, int use_y, int log_scale, double *lo,
                      double *hi) {
  int any = 0;
  for (int i = 0; i < count; i++)
    for (int j = 0; j < s[i].n; j++) {
      double x = s[i].x[j], y = s[i].y[j];
      if (!isfinite(x) || !usable(y, log_scale)) continue;
      double v = use_y ? y : x;
      if (!any || v < *lo) *lo = v;
      if (!any || v > *hi) *hi = v;
      any = 1;
    }
  return any;
}

static void format_tick(char *buf, size_t size, double v) {
  if (v != 0 && (fabs(v) >= 1e5 || fabs(v) < 1e-3))
    snprintf(buf, size, "%.0e", v);
  else
    snprintf(buf, size, "%.4g", v);
}

reid_status reid_plot_svg(const char *path, const reid_plot *p, const reid_plot_series *s,
                          int count) {
  if (!path || !p || (count > 0 && !s) || count < 0)
    return reid_fail(REID_EINVAL, "plot: invalid arguments");
  const int width = p->width > 0 ? p->width : 800, height = p->height > 0 ? p->height : 480;
  const double left = 80, right = width - 170, top = 40, bottom = height - 60;
  double xlo = 0, xhi = 1, ylo = 0, yhi = 1;
  if (!data_range(s, count, 0, p->log_y, &xlo, &xhi) ||
      !data_range(s, count, 1, p->log_y, &ylo, &yhi))
    return reid_fail(REID_EINVAL, "%s: nothing to plot (no finite%s points)", path,
                     p->log_y ? " positive" : "");
  if (p->y_min < p->y_max) ylo = p->y_min, yhi = p->y_max;
  if (xhi <= xlo) xhi = xlo + 1;
  axis ax = {xlo, xhi, 0, left, right};
  axis ay = {ylo, yhi, p->log_y, bottom, top};
  if (p->log_y) {
    ay.lo = floor(log10(ylo));
    ay.hi = ceil(log10(yhi));
    if (ay.hi <= ay.lo) ay.hi = ay.lo + 1;
  } else if (ay.hi <= ay.lo) {
    ay.hi = ay.lo + 1;
  }

  text t = {0};
  put(&t, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  put(&t,
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n",
      width, height, width, height);
  put(&t, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
  put(&t, "<text x=\"%g\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">", (left + right) / 2);
  put_escaped(&t, p->title);
  put(&t, "</text>\n");

  /* grid and tick labels */
  char label[32];
  double xstep = nice_step(ax.hi - ax.lo, 8);
  for (double v = ceil(ax.lo / xstep) * xstep; v <= ax.hi + 1e-9 * xstep; v += xstep) {
    double x = to_px(&ax, v);
    format_tick(label, sizeof label, fabs(v) < 1e-12 * xstep ? 0.0 : v);
    put(&t, "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#ddd\"/>\n", x, top, x,
        bottom);
    put(&t, "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%s</text>\n", x, bottom + 16, label);
  }
  if (p->log_y) {
    for (int e = (int)ay.lo; e <= (int)ay.hi; e++) {
      double y = to_px(&ay, pow(10.0, e));
      format_tick(label, sizeof label, pow(10.0, e));
      put(&t, "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, y,
          right, y);
      put(&t, "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", left - 6, y + 4, label);
    }
  } else {
    double ystep = nice_step(ay.hi - ay.lo, 6);
    for (double v = ceil(ay.lo / ystep) * ystep; v <= ay.hi + 1e-9 * ystep; v += ystep) {
      double y = to_px(&ay, v);
      format_tick(label, sizeof label, fabs(v) < 1e-12 * ystep ? 0.0 : v);
      put(&t, "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, y,
          right, y);
      put(&t, "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", left - 6, y + 4, label);
    }
  }
  put(&t, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"black\"/>\n",
      left, top, right - left, bottom - top);
  put(&t, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">", (left + right) / 2, bottom + 40);
  put_escaped(&t, p->x_label);
  put(&t,
      "</text>\n<text x=\"20\" y=\"%g\" text-anchor=\"middle\" transform=\"rotate(-90 20 %g)\">",
      (top + bottom) / 2, (top + bottom) / 2);
  put_escaped(&t, p->y_label);
  put(&t, "%s</text>\n", p->log_y ? " (log scale)" : "");

  /* series: polylines broken at unusable points, clipped to the plot box */
  put(&t, "<clipPath id=\"box\"><rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\"/></clipPath>\n",
      left, top, right - left, bottom - top);
  for (int i = 0; i < count; i++) {
    const char *colour = palette[i % (int)(sizeof palette / sizeof *palette)];
    int open = 0;
    for (int j = 0; j < s[i].n; j++) {
      double x = s[i].x[j], y = s[i].y[j];
      if (!isfinite(x) || !usable(y, p->log_y)) {
        if (open) put(&t, "\"/>\n");
        open = 0;
        continue;
      }
      if (!open)
        put(&t,
            "<polyline clip-path=\"url(#box)\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" "
            "points=\"",
            colour);
      put(&t, "%.1f,%.1f ", to_px(&ax, x), to_px(&ay, y));
      open = 1;
    }
    if (open) put(&t, "\"/>\n");
    double ly = top + 10 + 18 * i;
    put(&t, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" stroke-width=\"3\"/>\n",
        right + 12, ly, right + 32, ly, colour);
    put(&t, "<text x=\"%g\" y=\"%g\">", right + 38, ly + 4);
    put_escaped(&t, s[i].name);
    put(&t, "</text>\n");
  }
  put(&t, "</svg>\n");
  if (t.failed) {
    free(t.data);
    return reid_fail(REID_ENOMEM, "%s: out of memory while drawing the chart", path);
  }
  const void *parts[1] = {t.data};
  size_t sizes[1] = {t.len};
  reid_status st = reid_write_file_atomic(path, parts, sizes, 1, 1);
  free(t.data);
  return st;
}
