/* The line charts (training/learn/plot.h).
 * SVG: a log-scale chart with a series broken by non-finite and non-positive
 * values, a linear chart with a fixed range, XML escaping of names, the
 * atomic write, and errors.
 * PNG, decoded back: the size, a white background, each series' colour where
 * the shared layout (plot_layout.h) puts its points and nowhere off its line,
 * clipping to the plot box, breaks on a log axis, the legend, dark text in the
 * title band and in the column of the turned y label, and errors.
 * The choice of format by file name (any case) and its error. */
#include <unistd.h>

#include "fileio.h"
#include "image.h"
#include "plot.h"
#include "plot_layout.h"
#include "test_util.h"

static char dir[] = "/tmp/reid-test-plot-XXXXXX";

/* dir/name in a static buffer (one at a time) */
static const char *in_dir(const char *name) {
  static char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return path;
}

static char *read_text(const char *path) {
  unsigned char *bytes = NULL;
  size_t size = 0;
  if (reid_read_file(path, &bytes, &size) != REID_OK) return NULL;
  char *text = realloc(bytes, size + 1);
  if (text) text[size] = 0;
  return text;
}

static int count(const char *text, const char *needle) {
  int n = 0;
  for (const char *p = text; (p = strstr(p, needle)); p++) n++;
  return n;
}

static int starts_with_file(const char *path, const char *prefix, size_t n) {
  char *text = read_text(path);
  int ok = text && !memcmp(text, prefix, n);
  free(text);
  return ok;
}

static const uint8_t *pixel(const reid_image *im, int x, int y) {
  return im->data + (size_t)y * im->stride + 3 * (size_t)x;
}

static int is_colour(const uint8_t *px, uint32_t rgb, int tolerance) {
  for (int c = 0; c < 3; c++)
    if (abs(px[c] - (int)((rgb >> (16 - 8 * c)) & 0xff)) > tolerance) return 0;
  return 1;
}

/* Whether a pixel of colour rgb lies within `radius` pixels of (x, y). */
static int colour_near(const reid_image *im, double x, double y, int radius, uint32_t rgb) {
  for (int j = (int)floor(y) - radius; j <= (int)floor(y) + radius; j++)
    for (int i = (int)floor(x) - radius; i <= (int)floor(x) + radius; i++)
      if (i >= 0 && j >= 0 && i < im->width && j < im->height && is_colour(pixel(im, i, j), rgb, 2))
        return 1;
  return 0;
}

/* Pixels in [x0, x1) x [y0, y1) of colour rgb, or dark (every channel < 100) when dark. */
static int count_pixels(const reid_image *im, int x0, int y0, int x1, int y1, uint32_t rgb,
                        int dark) {
  int n = 0;
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) {
      const uint8_t *px = pixel(im, x, y);
      n += dark ? px[0] < 100 && px[1] < 100 && px[2] < 100 : is_colour(px, rgb, 2);
    }
  return n;
}

/* Where the layout of a chart puts the data point (x, y). */
static void map_point(const plot_layout *l, double x, double y, double *px, double *py) {
  reid_plot_series one = {"", &x, &y, 1};
  CHECK(plot_point(l, &one, 0, px, py), "(%g, %g) is not drawable", x, y);
}

static void test_svg(void) {
  const char *path = in_dir("chart");
  double x[6] = {0, 1, 2, 3, 4, 5}, loss[6] = {2.0, 1.0, NAN, 0.5, -1, 0.25};
  double other[6] = {1e-3, 2e-3, 1e-2, 0.1, 1, 10};
  reid_plot_series s[2] = {{"loss <a&b>", x, loss, 6}, {"kd", x, other, 6}};
  reid_plot p = {.title = "losses", .x_label = "epoch", .y_label = "loss", .log_y = 1};
  CHECK_OK(reid_plot_svg(path, &p, s, 2));
  char *svg = read_text(path);
  CHECK(svg != NULL, "cannot read %s", path);
  if (svg) {
    CHECK(!strncmp(svg, "<?xml", 5) && strstr(svg, "</svg>\n"), "not a whole SVG document");
    /* the first series breaks at NaN and at -1 (log scale): 3 pieces; the second is whole */
    CHECK(count(svg, "<polyline") == 4, "%d polylines, want 4", count(svg, "<polyline"));
    CHECK(strstr(svg, "loss &lt;a&amp;b&gt;") != NULL, "series name not escaped");
    CHECK(strstr(svg, ">0.001<") != NULL && strstr(svg, ">10<") != NULL,
          "log ticks 0.001 .. 10 missing");
    free(svg);
  }
  /* linear, fixed range [0, 1] as for a CMC curve */
  double cmc[3] = {0.5, 0.75, 1.0}, ranks[3] = {1, 2, 3};
  reid_plot_series c = {"i2v", ranks, cmc, 3};
  reid_plot lin = {.title = "CMC", .x_label = "rank", .y_label = "rate", .y_min = 0, .y_max = 1};
  CHECK_OK(reid_plot_svg(path, &lin, &c, 1));
  svg = read_text(path);
  CHECK(svg && strstr(svg, ">0.2<") && strstr(svg, ">1<"), "linear ticks 0.2 and 1 missing");
  free(svg);
  /* nothing plottable (zero series, or no usable point), a folder that does not exist */
  double bad[2] = {-1, NAN};
  reid_plot_series empty = {"none", x, bad, 2};
  CHECK(reid_plot_svg(path, &p, &empty, 1) == REID_EINVAL, "an empty log chart was accepted");
  CHECK(strstr(reid_last_error(), "nothing to plot") != NULL, "message '%s'", reid_last_error());
  CHECK(reid_plot_svg(path, &lin, NULL, 0) == REID_EINVAL, "a chart of no series was accepted");
  CHECK(reid_plot_svg("/nonexistent-dir/x.svg", &lin, &c, 1) == REID_EIO,
        "writing into a missing folder succeeded");
  unlink(path);
}

/* A linear chart with a fixed range: a diagonal, a series that leaves the
 * range upwards (clipped), at 640 x 400. */
static void test_png_linear(void) {
  const char *path = in_dir("lin.png");
  double x[2] = {0, 1}, diag[2] = {0, 1}, x3[3] = {0, 0.5, 1}, high[3] = {0.25, 0.25, 3};
  reid_plot_series s[2] = {{"diagonal", x, diag, 2}, {"high", x3, high, 3}};
  reid_plot p = {.title = "TITLE",
                 .x_label = "x",
                 .y_label = "rate",
                 .y_min = 0,
                 .y_max = 1,
                 .width = 640,
                 .height = 400};
  CHECK_OK(reid_plot_png(path, &p, s, 2));
  plot_layout l;
  CHECK_OK(plot_layout_make(path, &p, s, 2, &l));
  reid_image im = {0};
  CHECK_OK(reid_image_load_rgb(path, &im));
  if (!im.data) return;
  CHECK(im.width == 640 && im.height == 400, "%dx%d, want 640x400", im.width, im.height);
  CHECK(is_colour(pixel(&im, 1, 1), 0xffffff, 0) && is_colour(pixel(&im, 638, 398), 0xffffff, 0),
        "the background is not white");
  const uint32_t c0 = plot_colour(0), c1 = plot_colour(1);
  double px, py;
  /* on the diagonal and on the flat part of the second series, and off both */
  for (double t = 0.1; t < 0.95; t += 0.2) {
    map_point(&l, t, t, &px, &py);
    CHECK(colour_near(&im, px, py, 1, c0), "no diagonal colour near (%g, %g) -> (%g, %g)", t, t, px,
          py);
  }
  map_point(&l, 0.3, 0.25, &px, &py);
  CHECK(colour_near(&im, px, py, 1, c1), "no second colour near (%g, %g)", px, py);
  map_point(&l, 0.25, 0.75, &px, &py);
  CHECK(!colour_near(&im, px, py, 4, c0) && !colour_near(&im, px, py, 4, c1),
        "a series colour off its line at (%g, %g)", px, py);
  /* the climb to y = 3 is clipped at the top of the box; the legend shows both */
  int top = (int)l.top;
  CHECK(count_pixels(&im, 0, 0, im.width, top, c1, 0) == 0, "the second series leaves the box");
  CHECK(colour_near(&im, l.legend_x0 + 10, plot_legend_y(&l, 0), 1, c0) &&
            colour_near(&im, l.legend_x0 + 10, plot_legend_y(&l, 1), 1, c1),
        "legend lines missing");
  /* dark text: the title above the box, the turned y label left of the tick labels */
  CHECK(count_pixels(&im, (int)l.left, 0, (int)l.right, top, 0, 1) > 20,
        "no title in the band above the box");
  CHECK(count_pixels(&im, 0, top, (int)l.y_label_x + 2, (int)l.bottom, 0, 1) > 20,
        "no y label left of the box");
  CHECK(count_pixels(&im, (int)l.left, (int)l.bottom + 2, (int)l.right, im.height, 0, 1) > 20,
        "no tick labels or x label below the box");
  reid_image_free(&im);
  unlink(path);
}

/* Log scale: breaks at NaN and at values <= 0, no crash; errors as for SVG. */
static void test_png_log(void) {
  const char *path = in_dir("log.png");
  double x[6] = {0, 1, 2, 3, 4, 5}, loss[6] = {2.0, 1.0, NAN, 0.5, -1, 0.25};
  double other[6] = {1e-3, 2e-3, 1e-2, 0.1, 1, 10};
  reid_plot_series s[2] = {{"loss", x, loss, 6}, {"kd", x, other, 6}};
  reid_plot p = {.title = "losses", .x_label = "epoch", .y_label = "loss", .log_y = 1};
  CHECK_OK(reid_plot_png(path, &p, s, 2));
  plot_layout l;
  CHECK_OK(plot_layout_make(path, &p, s, 2, &l));
  reid_image im = {0};
  CHECK_OK(reid_image_load_rgb(path, &im));
  if (im.data) {
    CHECK(im.width == 800 && im.height == 480, "%dx%d, want the default 800x480", im.width,
          im.height);
    double ax, ay, bx, by;
    /* drawn: the segment from x = 0 to 1; not drawn: 3 to 5 across the -1 at 4 */
    map_point(&l, 0, 2.0, &ax, &ay);
    map_point(&l, 1, 1.0, &bx, &by);
    CHECK(colour_near(&im, (ax + bx) / 2, (ay + by) / 2, 1, plot_colour(0)),
          "the first segment is missing");
    map_point(&l, 3, 0.5, &ax, &ay);
    map_point(&l, 5, 0.25, &bx, &by);
    CHECK(!colour_near(&im, (ax + bx) / 2, (ay + by) / 2, 3, plot_colour(0)),
          "the line is not broken at the value -1");
    reid_image_free(&im);
  }
  /* the same errors as the SVG writer */
  double bad[2] = {-1, NAN};
  reid_plot_series empty = {"none", x, bad, 2};
  CHECK(reid_plot_png(path, &p, &empty, 1) == REID_EINVAL, "an empty log chart was accepted");
  CHECK(strstr(reid_last_error(), "nothing to plot") && strstr(reid_last_error(), path),
        "message '%s'", reid_last_error());
  CHECK(reid_plot_png(path, &p, NULL, 0) == REID_EINVAL, "a chart of no series was accepted");
  CHECK(reid_plot_png("/nonexistent-dir/x.png", &p, s, 2) != REID_OK,
        "writing into a missing folder succeeded");
  CHECK(strstr(reid_last_error(), "/nonexistent-dir/x.png") != NULL, "message '%s'",
        reid_last_error());
  unlink(path);
}

/* reid_plot_write picks the format by the file name, in any case. */
static void test_write(void) {
  CHECK(reid_plot_format_of("a.svg") == REID_PLOT_SVG &&
            reid_plot_format_of("b.PNG") == REID_PLOT_PNG &&
            reid_plot_format_of("c.Svg") == REID_PLOT_SVG,
        "a .svg or .png name was not recognised");
  CHECK(reid_plot_format_of("png") == REID_PLOT_UNKNOWN &&
            reid_plot_format_of("d.svgz") == REID_PLOT_UNKNOWN &&
            reid_plot_format_of(NULL) == REID_PLOT_UNKNOWN,
        "a name without .svg or .png was recognised");
  double x[2] = {1, 2}, y[2] = {0.5, 1};
  reid_plot_series s = {"s", x, y, 2};
  reid_plot p = {.title = "t", .x_label = "x", .y_label = "y"};
  char png[256], svg[256], pdf[256];
  snprintf(png, sizeof png, "%s", in_dir("w.PNG"));
  snprintf(svg, sizeof svg, "%s", in_dir("w.svg"));
  snprintf(pdf, sizeof pdf, "%s", in_dir("w.pdf"));
  CHECK_OK(reid_plot_write(png, &p, &s, 1));
  CHECK(starts_with_file(png, "\x89PNG\r\n\x1a\n", 8), "%s is not a PNG", png);
  CHECK_OK(reid_plot_write(svg, &p, &s, 1));
  CHECK(starts_with_file(svg, "<?xml", 5), "%s is not an SVG", svg);
  CHECK(reid_plot_write(pdf, &p, &s, 1) == REID_EINVAL, "a .pdf chart was accepted");
  CHECK(strstr(reid_last_error(), pdf) && strstr(reid_last_error(), ".svg or .png"), "message '%s'",
        reid_last_error());
  CHECK(access(pdf, F_OK) != 0, "%s was written", pdf);
  unlink(png);
  unlink(svg);
}

int main(void) {
  CHECK(mkdtemp(dir) != NULL, "mkdtemp failed");
  test_svg();
  test_png_linear();
  test_png_log();
  test_write();
  rmdir(dir);
  return test_finish("test_plot");
}
