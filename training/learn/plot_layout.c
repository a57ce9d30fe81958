/* Chart geometry shared by the SVG and PNG writers (see plot_layout.h). */
#include "plot_layout.h"

#include <math.h>
#include <stdio.h>

static const uint32_t palette[] = {0x1f77b4, 0xd62728, 0x2ca02c, 0xff7f0e, 0x9467bd,
                                   0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};

uint32_t plot_colour(int i) {
  return palette[i % (int)(sizeof palette / sizeof *palette)];
}

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

static double to_px(const plot_axis *a, double u) {
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

/* Linear ticks: the multiples of a nice step inside [lo, hi] (with a little
 * slack at hi for rounding). Log ticks: every power of ten, the axis having
 * been widened to whole decades. A range too wide for doubles has none. */
static void place_ticks(plot_axis *a, int about) {
  if (a->log_scale) {
    a->first = a->lo;
    a->step = 1;
  } else {
    a->step = nice_step(a->hi - a->lo, about);
    a->first = ceil(a->lo / a->step) * a->step;
  }
  double n = floor((a->hi + 1e-9 * a->step - a->first) / a->step) + 1;
  a->ticks = n >= 0 && n <= 1000 ? (int)n : 0;
}

reid_status plot_layout_make(const char *path, const reid_plot *p, const reid_plot_series *s,
                             int count, plot_layout *l) {
  if (!path || !p || !l || (count > 0 && !s) || count < 0)
    return reid_fail(REID_EINVAL, "plot: invalid arguments");
  const int width = p->width > 0 ? p->width : 800, height = p->height > 0 ? p->height : 480;
  double xlo = 0, xhi = 1, ylo = 0, yhi = 1;
  if (!data_range(s, count, 0, p->log_y, &xlo, &xhi) ||
      !data_range(s, count, 1, p->log_y, &ylo, &yhi))
    return reid_fail(REID_EINVAL, "%s: nothing to plot (no finite%s points)", path,
                     p->log_y ? " positive" : "");
  if (p->y_min < p->y_max) ylo = p->y_min, yhi = p->y_max;
  if (xhi <= xlo) xhi = xlo + 1;
  /* 80 px left of the box for the y labels, 170 right for the legend, 40 above
   * for the title, 60 below for the x labels */
  *l = (plot_layout){.width = width,
                     .height = height,
                     .left = 80,
                     .right = width - 170,
                     .top = 40,
                     .bottom = height - 60};
  l->x = (plot_axis){xlo, xhi, 0, l->left, l->right, 0, 0, 0};
  l->y = (plot_axis){ylo, yhi, p->log_y, l->bottom, l->top, 0, 0, 0};
  if (p->log_y) {
    l->y.lo = floor(log10(ylo));
    l->y.hi = ceil(log10(yhi));
  }
  if (l->y.hi <= l->y.lo) l->y.hi = l->y.lo + 1;
  place_ticks(&l->x, 8);
  place_ticks(&l->y, 6);
  l->title_x = (l->left + l->right) / 2;
  l->title_y = 24;
  l->x_tick_y = l->bottom + 16;
  l->y_tick_x = l->left - 6;
  l->text_dy = 4;
  l->x_label_x = (l->left + l->right) / 2;
  l->x_label_y = l->bottom + 40;
  l->y_label_x = 20;
  l->y_label_y = (l->top + l->bottom) / 2;
  l->legend_x0 = l->right + 12;
  l->legend_x1 = l->right + 32;
  l->legend_text_x = l->right + 38;
  return REID_OK;
}

/* Labels in %g style, in exponent form when very large or small. */
static void format_tick(char *buf, size_t size, double v) {
  if (v != 0 && (fabs(v) >= 1e5 || fabs(v) < 1e-3))
    snprintf(buf, size, "%.0e", v);
  else
    snprintf(buf, size, "%.4g", v);
}

double plot_tick(const plot_axis *a, int k, char *label, size_t size) {
  double u = a->first + k * a->step;
  if (a->log_scale)
    format_tick(label, size, pow(10.0, u));
  else
    format_tick(label, size, fabs(u) < 1e-12 * a->step ? 0.0 : u); /* no "-1e-17" for 0 */
  return to_px(a, u);
}

int plot_point(const plot_layout *l, const reid_plot_series *s, int j, double *px, double *py) {
  double x = s->x[j], y = s->y[j];
  if (!isfinite(x) || !usable(y, l->y.log_scale)) return 0;
  *px = to_px(&l->x, x);
  *py = to_px(&l->y, l->y.log_scale ? log10(y) : y);
  return 1;
}

double plot_legend_y(const plot_layout *l, int i) {
  return l->top + 10 + 18 * i;
}
