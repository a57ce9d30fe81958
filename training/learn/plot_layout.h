/* The geometry of a chart of plot.h, shared by its SVG and PNG writers so
 * that both draw the same thing: the plot box, the axes (ranges, "nice"
 * ticks and their labels), where each text goes, the legend, the series
 * colours and the mapping of a data point to a pixel.
 *
 * Coordinates are pixels from the top-left corner of the image (pixel (i, j)
 * covers [i, i + 1) x [j, j + 1)). Text positions are SVG text anchors: the
 * baseline, and the left end, centre or right end of the text. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "plot.h"

typedef struct plot_axis {
  double lo, hi; /* in axis units (log10 of the value on a log axis) */
  int log_scale;
  double px0, px1;    /* pixel positions of lo and hi */
  double first, step; /* tick k is at first + k * step axis units, k < ticks */
  int ticks;
} plot_axis;

typedef struct plot_layout {
  int width, height;
  double left, right, top, bottom; /* the plot box; series are clipped to it */
  plot_axis x, y;
  double title_x, title_y;     /* centre of the title (15 px text) */
  double x_tick_y;             /* baseline of the x tick labels, centred on their tick */
  double y_tick_x;             /* right end of the y tick labels */
  double text_dy;              /* baseline of 12 px text centred on a y: y + text_dy */
  double x_label_x, x_label_y; /* centre of the x axis label */
  double y_label_x, y_label_y; /* centre of the y axis label, turned -90 degrees about it */
  double legend_x0, legend_x1; /* each legend entry: a line of the series' colour ... */
  double legend_text_x;        /* ... then its name */
} plot_layout;

/* Validates the arguments and lays the chart out; fails (naming path) when
 * no series has a usable point. */
reid_status plot_layout_make(const char *path, const reid_plot *plot,
                             const reid_plot_series *series, int count, plot_layout *out);

/* Tick k (< a->ticks): its pixel position and its label. */
double plot_tick(const plot_axis *a, int k, char *label, size_t size);

/* Point j of a series in pixels; returns 0 when the point is not drawn
 * (non-finite, or <= 0 on a log axis), which breaks the line there. */
int plot_point(const plot_layout *l, const reid_plot_series *s, int j, double *px, double *py);

/* The y of legend entry i (the middle of its line). */
double plot_legend_y(const plot_layout *l, int i);

/* The colour of series i as 0xRRGGBB. */
uint32_t plot_colour(int i);

#define PLOT_GRID_COLOUR 0xdddddd
