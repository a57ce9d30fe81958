/* Line charts, drawn by hand as SVG or PNG: the loss curves of a training run
 * (--plot) and the CMC curve of an evaluation. One chart, several series,
 * a legend, axes with "nice" ticks; a log-scale y axis optional (values
 * <= 0 or non-finite then break the line). Both formats draw the same layout
 * (plot_layout.h). The file is written atomically. */
#pragma once

#include "status.h"

typedef struct reid_plot_series {
  const char *name;
  const double *x, *y; /* [n] */
  int n;
} reid_plot_series;

typedef struct reid_plot {
  const char *title, *x_label, *y_label;
  int log_y;
  double y_min, y_max; /* fixed y range when y_min < y_max, else from the data */
  int width, height;   /* pixels; 0 = 800 x 480 */
} reid_plot;

/* Both fail with REID_EINVAL ("nothing to plot") when no series has a point
 * to draw, zero series included. */
reid_status reid_plot_svg(const char *path, const reid_plot *plot, const reid_plot_series *series,
                          int count);
/* An 8-bit RGB PNG: anti-aliased lines, text in a built-in 5x7 pixel font
 * (ASCII; other characters show as '?'). */
reid_status reid_plot_png(const char *path, const reid_plot *plot, const reid_plot_series *series,
                          int count);

typedef enum reid_plot_format { REID_PLOT_UNKNOWN, REID_PLOT_SVG, REID_PLOT_PNG } reid_plot_format;

/* The format a file name asks for: it ends in .svg or .png (any case). */
reid_plot_format reid_plot_format_of(const char *path);
/* reid_plot_svg or reid_plot_png by the file name; REID_EINVAL naming the
 * path for any other name. */
reid_status reid_plot_write(const char *path, const reid_plot *plot, const reid_plot_series *series,
                            int count);
