/* Line charts as SVG, written by hand: the loss curves of a training run
 * (--plot) and the CMC curve of an evaluation. One chart, several series,
 * a legend, axes with "nice" ticks; a log-scale y axis optional (values
 * <= 0 or non-finite then break the line). The file is written atomically. */
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

reid_status reid_plot_svg(const char *path, const reid_plot *plot, const reid_plot_series *series,
                          int count);
