/* reid_image load / save through FFmpeg: PNG round trip is exact, JPEG is
 * close, broken inputs fail with a message naming the path, savers leave no
 * temp files, and concurrent loads agree. Files live in a mkdtemp dir. */
#include "image.h"
#include "test_util.h"

#include <dirent.h>
#include <unistd.h>

static char dir[256];

static void path_of(char *buf, size_t n, const char *name) {
  snprintf(buf, n, "%s/%s", dir, name);
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || (n && fwrite(data, 1, n, f) != n)) {
    fprintf(stderr, "test: cannot write %s\n", path);
    exit(2);
  }
  fclose(f);
}

static uint8_t *read_bytes(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  rewind(f);
  uint8_t *b = malloc(*n ? *n : 1);
  if (fread(b, 1, *n, f) != *n) *n = 0;
  fclose(f);
  return b;
}

/* Number of files in dir. */
static int count_files(void) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
  if (d) closedir(d);
  return n;
}

static void remove_dir(void) {
  DIR *d = opendir(dir);
  char path[512];
  for (struct dirent *e; d && (e = readdir(d));) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    path_of(path, sizeof path, e->d_name);
    unlink(path);
  }
  if (d) closedir(d);
  rmdir(dir);
}

/* A gradient with some texture, odd sizes, padded rows. */
static reid_image make_gradient(int w, int h, int pad) {
  reid_image im = {.width = w, .height = h, .stride = 3 * w + pad};
  im.data = calloc((size_t)im.stride * h, 1);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t *p = im.data + (size_t)y * im.stride + 3 * x;
      p[0] = (uint8_t)(255 * x / (w - 1));
      p[1] = (uint8_t)(255 * y / (h - 1));
      p[2] = (uint8_t)(128 + 100 * sin((x + y) / 15.0));
    }
  return im;
}

/* mean |a - b| over all channels; -1 when sizes differ */
static double mean_abs_diff(const reid_image *a, const reid_image *b) {
  if (a->width != b->width || a->height != b->height) return -1;
  double s = 0;
  for (int y = 0; y < a->height; y++)
    for (int x = 0; x < 3 * a->width; x++)
      s += abs(a->data[(size_t)y * a->stride + x] - b->data[(size_t)y * b->stride + x]);
  return s / (3.0 * a->width * a->height);
}

static void expect_error(const char *path, const char *what) {
  reid_image im = {.width = 7, .height = 7, .data = (uint8_t *)1};
  reid_status st = reid_image_load_rgb(path, &im);
  CHECK(st != REID_OK, "%s: loaded", what);
  CHECK(strstr(reid_last_error(), path) != NULL, "%s: message lacks the path: %s", what,
        reid_last_error());
  CHECK(im.data == NULL && im.width == 0 && im.height == 0, "%s: output not cleared", what);
  fprintf(stderr, "  %s -> %s: %s\n", what, reid_status_name(st), reid_last_error());
}

static void test_round_trip(void) {
  char png[512], jpg[512];
  path_of(png, sizeof png, "gradient.png");
  path_of(jpg, sizeof jpg, "gradient.jpg");
  reid_image src = make_gradient(203, 151, 5);

  CHECK_OK(reid_image_save_png(png, &src));
  CHECK_OK(reid_image_save_png(png, &src)); /* overwrite in place */
  reid_image back = {0};
  CHECK_OK(reid_image_load_rgb(png, &back));
  CHECK(back.width == 203 && back.height == 151 && back.stride == 3 * 203, "png size %dx%d/%d",
        back.width, back.height, back.stride);
  CHECK(mean_abs_diff(&src, &back) == 0.0, "png not exact: %g", mean_abs_diff(&src, &back));
  reid_image_free(&back);
  reid_image_free(&back); /* idempotent */

  CHECK_OK(reid_image_save_jpeg(jpg, &src, 95));
  CHECK_OK(reid_image_load_rgb(jpg, &back));
  double mad = mean_abs_diff(&src, &back);
  CHECK(mad >= 0 && mad < 3, "jpeg q95 mean abs diff %g", mad);
  reid_image_free(&back);

  /* lower quality: smaller file, still the same picture */
  size_t n95 = 0, n20 = 0;
  free(read_bytes(jpg, &n95));
  CHECK_OK(reid_image_save_jpeg(jpg, &src, 20));
  free(read_bytes(jpg, &n20));
  CHECK(n20 > 0 && n20 < n95, "q20 %zu bytes vs q95 %zu bytes", n20, n95);
  CHECK_OK(reid_image_load_rgb(jpg, &back));
  mad = mean_abs_diff(&src, &back);
  CHECK(mad >= 0 && mad < 12, "jpeg q20 mean abs diff %g", mad);
  reid_image_free(&back);
  CHECK_OK(reid_image_save_jpeg(jpg, &src, 95));

  /* 1x1 and 2x2 edge sizes */
  reid_image tiny = make_gradient(2, 2, 0);
  CHECK_OK(reid_image_save_png(png, &tiny));
  CHECK_OK(reid_image_load_rgb(png, &back));
  CHECK(mean_abs_diff(&tiny, &back) == 0.0, "2x2 png");
  reid_image_free(&back);
  free(tiny.data);
  reid_image one;
  CHECK_OK(reid_image_alloc(1, 1, &one));
  one.data[0] = 10, one.data[1] = 200, one.data[2] = 30;
  CHECK_OK(reid_image_save_jpeg(jpg, &one, 100));
  CHECK_OK(reid_image_load_rgb(jpg, &back));
  CHECK(back.width == 1 && back.height == 1, "1x1 jpeg: %dx%d", back.width, back.height);
  reid_image_free(&back);
  reid_image_free(&one);

  CHECK(count_files() == 2, "%d files in the temp dir (temp files left behind?)", count_files());
  CHECK_OK(reid_image_save_jpeg(jpg, &src, 95));
  free(src.data);
}

static void test_broken_inputs(void) {
  char path[512], jpg[512];
  path_of(jpg, sizeof jpg, "gradient.jpg");

  path_of(path, sizeof path, "missing.jpg");
  expect_error(path, "missing file");

  size_t n = 0;
  uint8_t *bytes = read_bytes(jpg, &n);
  CHECK(bytes && n > 100, "no jpeg to cut");
  path_of(path, sizeof path, "half.jpg");
  write_bytes(path, bytes, n / 2);
  expect_error(path, "JPEG cut in half");
  path_of(path, sizeof path, "almost.jpg");
  write_bytes(path, bytes, n - 8); /* FFmpeg alone decodes this one "fine" */
  expect_error(path, "JPEG missing its last 8 bytes");
  path_of(path, sizeof path, "headers.jpg");
  write_bytes(path, bytes, 300);
  expect_error(path, "JPEG headers only");
  free(bytes);

  path_of(path, sizeof path, "text.jpg");
  const char *text = "this is not an image, just some text\nsecond line\n";
  write_bytes(path, text, strlen(text));
  expect_error(path, "text named .jpg");

  path_of(path, sizeof path, "empty.jpg");
  write_bytes(path, "", 0);
  expect_error(path, "empty file");

  expect_error(dir, "a directory");

  /* saving into a missing directory fails without leaving anything */
  reid_image im = make_gradient(8, 8, 0);
  path_of(path, sizeof path, "no/such/dir.png");
  reid_status st = reid_image_save_png(path, &im);
  CHECK(st == REID_EIO && strstr(reid_last_error(), path), "save to missing dir: %s %s",
        reid_status_name(st), reid_last_error());
  path_of(path, sizeof path, "q.jpg");
  CHECK(reid_image_save_jpeg(path, &im, 0) == REID_EINVAL, "quality 0");
  CHECK(reid_image_save_jpeg(path, &im, 101) == REID_EINVAL, "quality 101");
  reid_image bad = im;
  bad.stride = 3 * 8 - 1;
  CHECK(reid_image_save_png(path, &bad) == REID_EINVAL, "short stride");
  CHECK(reid_image_load_rgb(NULL, &bad) == REID_EINVAL, "NULL path");
  CHECK(reid_image_alloc(0, 5, &bad) == REID_EINVAL && bad.data == NULL, "alloc 0 wide");
  free(im.data);
}

/* Loads on several threads at once (the dataset loader does this). */
static void test_concurrent_loads(void) {
  char png[512], jpg[512], bad[512];
  path_of(png, sizeof png, "gradient.png");
  path_of(jpg, sizeof jpg, "gradient.jpg");
  path_of(bad, sizeof bad, "half.jpg");
  reid_image src = make_gradient(203, 151, 0);
  CHECK_OK(reid_image_save_png(png, &src));
  int failures = 0;
#pragma omp parallel for num_threads(4) reduction(+ : failures)
  for (int i = 0; i < 48; i++) {
    reid_image im;
    const char *p = i % 3 == 0 ? png : i % 3 == 1 ? jpg : bad;
    reid_status st = reid_image_load_rgb(p, &im);
    if (i % 3 == 0) failures += st != REID_OK || mean_abs_diff(&src, &im) != 0.0;
    if (i % 3 == 1) failures += st != REID_OK || mean_abs_diff(&src, &im) > 3;
    if (i % 3 == 2) failures += st == REID_OK || !strstr(reid_last_error(), bad);
    reid_image_free(&im);
  }
  CHECK(failures == 0, "%d of 48 concurrent loads went wrong", failures);
  free(src.data);
}

/* reid_image_resize_bicubic: the same size is a copy; shrinking a ramp by 2 averages
 * neighbours; enlarging a step overshoots on both sides (bicubic, not bilinear, whose
 * values stay within the step); a zero size is refused. */
static void test_bicubic_resize(void) {
  reid_image src, out;
  CHECK_OK(reid_image_alloc(64, 32, &src));
  for (int y = 0; y < 32; y++)
    for (int x = 0; x < 64; x++)
      for (int c = 0; c < 3; c++) src.data[y * src.stride + 3 * x + c] = (uint8_t)(4 * x + c);
  CHECK_OK(reid_image_resize_bicubic(&src, 64, 32, &out));
  CHECK(!memcmp(out.data, src.data, (size_t)64 * 32 * 3), "bicubic: the same size is a copy");
  reid_image_free(&out);
  CHECK_OK(reid_image_resize_bicubic(&src, 32, 16, &out));
  int worst = 0;
  for (int y = 0; y < 16; y++)
    for (int x = 2; x < 30; x++) /* output x covers input 2x, 2x + 1: mean 8x + 2 */
      for (int c = 0; c < 3; c++) {
        int err = abs(out.data[y * out.stride + 3 * x + c] - (8 * x + 2 + c));
        worst = err > worst ? err : worst;
      }
  CHECK(worst <= 2, "bicubic: a halved ramp is off by %d", worst);
  reid_image_free(&out);
  for (int y = 0; y < 32; y++) /* a step 64 | 192 at x = 32 */
    for (int x = 0; x < 64; x++) memset(src.data + y * src.stride + 3 * x, x < 32 ? 64 : 192, 3);
  CHECK_OK(reid_image_resize_bicubic(&src, 256, 128, &out));
  int lo = 255, hi = 0;
  for (int x = 0; x < 256; x++) {
    int v = out.data[64 * out.stride + 3 * x];
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  CHECK(lo < 64 && hi > 192, "bicubic: an enlarged step spans [%d, %d], no overshoot", lo, hi);
  reid_image_free(&out);
  CHECK(reid_image_resize_bicubic(&src, 0, 16, &out) == REID_EINVAL && !out.data,
        "bicubic: a zero width is refused");
  reid_image_free(&src);
}

int main(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/reid-image-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 2;
  }
  test_round_trip();
  test_broken_inputs();
  test_concurrent_loads();
  test_bicubic_resize();
  remove_dir();
  return test_finish("test_image_io");
}
