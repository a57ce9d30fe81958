/* SVG line charts (see plot.h), and the choice between SVG and PNG. The SVG
 * document is built in memory from the layout of plot_layout.h, then
 * written with reid_write_file_atomic. */
#include "plot.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fileio.h"
#include "plot_layout.h"

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

reid_status reid_plot_svg(const char *path, const reid_plot *p, const reid_plot_series *s,
                          int count) {
  plot_layout l;
  REID_TRY(plot_layout_make(path, p, s, count, &l));
  text t = {0};
  put(&t, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  put(&t,
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n",
      l.width, l.height, l.width, l.height);
  put(&t, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
  put(&t, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\" font-size=\"15\">", l.title_x, l.title_y);
  put_escaped(&t, p->title);
  put(&t, "</text>\n");

  /* grid and tick labels */
  char label[32];
  for (int k = 0; k < l.x.ticks; k++) {
    double x = plot_tick(&l.x, k, label, sizeof label);
    put(&t, "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#%06x\"/>\n", x, l.top, x,
        l.bottom, PLOT_GRID_COLOUR);
    put(&t, "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%s</text>\n", x, l.x_tick_y, label);
  }
  for (int k = 0; k < l.y.ticks; k++) {
    double y = plot_tick(&l.y, k, label, sizeof label);
    put(&t, "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#%06x\"/>\n", l.left, y,
        l.right, y, PLOT_GRID_COLOUR);
    put(&t, "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", l.y_tick_x, y + l.text_dy,
        label);
  }
  put(&t, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"black\"/>\n",
      l.left, l.top, l.right - l.left, l.bottom - l.top);
  put(&t, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">", l.x_label_x, l.x_label_y);
  put_escaped(&t, p->x_label);
  put(&t,
      "</text>\n<text x=\"%g\" y=\"%g\" text-anchor=\"middle\" transform=\"rotate(-90 %g %g)\">",
      l.y_label_x, l.y_label_y, l.y_label_x, l.y_label_y);
  put_escaped(&t, p->y_label);
  put(&t, "%s</text>\n", p->log_y ? " (log scale)" : "");

  /* series: polylines broken at unusable points, clipped to the plot box */
  put(&t, "<clipPath id=\"box\"><rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\"/></clipPath>\n",
      l.left, l.top, l.right - l.left, l.bottom - l.top);
  for (int i = 0; i < count; i++) {
    uint32_t colour = plot_colour(i);
    int open = 0;
    for (int j = 0; j < s[i].n; j++) {
      double x, y;
      if (!plot_point(&l, &s[i], j, &x, &y)) {
        if (open) put(&t, "\"/>\n");
        open = 0;
        continue;
      }
      if (!open)
        put(&t,
            "<polyline clip-path=\"url(#box)\" fill=\"none\" stroke=\"#%06x\" stroke-width=\"1.5\" "
            "points=\"",
            colour);
      put(&t, "%.1f,%.1f ", x, y);
      open = 1;
    }
    if (open) put(&t, "\"/>\n");
    double ly = plot_legend_y(&l, i);
    put(&t, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#%06x\" stroke-width=\"3\"/>\n",
        l.legend_x0, ly, l.legend_x1, ly, colour);
    put(&t, "<text x=\"%g\" y=\"%g\">", l.legend_text_x, ly + l.text_dy);
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

reid_plot_format reid_plot_format_of(const char *path) {
  size_t len = path ? strlen(path) : 0;
  if (len < 4) return REID_PLOT_UNKNOWN;
  if (!strcasecmp(path + len - 4, ".svg")) return REID_PLOT_SVG;
  if (!strcasecmp(path + len - 4, ".png")) return REID_PLOT_PNG;
  return REID_PLOT_UNKNOWN;
}

reid_status reid_plot_write(const char *path, const reid_plot *plot, const reid_plot_series *series,
                            int count) {
  switch (reid_plot_format_of(path)) {
  case REID_PLOT_SVG: return reid_plot_svg(path, plot, series, count);
  case REID_PLOT_PNG: return reid_plot_png(path, plot, series, count);
  default:
    return reid_fail(REID_EINVAL, "%s: not a chart file name (it must end in .svg or .png)",
                     path ? path : "(no file name)");
  }
}
