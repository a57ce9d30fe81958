/* The SVG line charts (training/learn/plot.h): a log-scale chart with a
 * series broken by non-finite and non-positive values, a linear chart with a
 * fixed range, XML escaping of names, the atomic write, and errors. */
#include <unistd.h>

#include "fileio.h"
#include "plot.h"
#include "safetensors.h"
#include "test_util.h"

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

int main(void) {
  char path[] = "/tmp/reid-test-plot-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0, "mkstemp failed");
  close(fd);
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
  /* nothing plottable, a folder that does not exist */
  double bad[2] = {-1, NAN};
  reid_plot_series empty = {"none", x, bad, 2};
  CHECK(reid_plot_svg(path, &p, &empty, 1) == REID_EINVAL, "an empty log chart was accepted");
  CHECK(strstr(reid_last_error(), "nothing to plot") != NULL, "message '%s'", reid_last_error());
  CHECK(reid_plot_svg("/nonexistent-dir/x.svg", &lin, &c, 1) == REID_EIO,
        "writing into a missing folder succeeded");
  unlink(path);
  return test_finish("test_plot");
}
