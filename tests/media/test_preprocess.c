/* reid_preprocess_cpu on RGB frames against a naive double-precision
 * reference of the math in preprocess.h, plus exact special cases that do not
 * depend on that math (identity, 2x2 averaging, constants), box clipping and
 * argument validation. */
#include "preprocess.h"
#include "test_util.h"

#include <omp.h>

/* ---------------------------------------------------------------- reference */

/* Straight from the spec: clip, half-pixel-centre bilinear, normalise. */
static void reference(const uint8_t *rgb, int fw, int fh, int stride, reid_box box,
                      const reid_preprocess_params *p, double *out /* [3, H, W] */) {
  double x0 = box.x > 0 ? box.x : 0, y0 = box.y > 0 ? box.y : 0;
  double x1 = (double)box.x + box.w, y1 = (double)box.y + box.h;
  if (x1 > fw) x1 = fw;
  if (y1 > fh) y1 = fh;
  int xfirst = (int)floor(x0), xlast = (int)ceil(x1) - 1;
  int yfirst = (int)floor(y0), ylast = (int)ceil(y1) - 1;
  for (int r = 0; r < p->height; r++) {
    for (int c = 0; c < p->width; c++) {
      double sx = x0 + (c + 0.5) * (x1 - x0) / p->width - 0.5;
      double sy = y0 + (r + 0.5) * (y1 - y0) / p->height - 0.5;
      sx = fmin(fmax(sx, xfirst), xlast);
      sy = fmin(fmax(sy, yfirst), ylast);
      int xl = (int)floor(sx), yl = (int)floor(sy);
      int xh = xl + 1 <= xlast ? xl + 1 : xlast, yh = yl + 1 <= ylast ? yl + 1 : ylast;
      double ax = sx - xl, ay = sy - yl;
      for (int k = 0; k < 3; k++) {
        double tl = rgb[yl * stride + 3 * xl + k], tr = rgb[yl * stride + 3 * xh + k];
        double bl = rgb[yh * stride + 3 * xl + k], br = rgb[yh * stride + 3 * xh + k];
        double v = (1 - ay) * ((1 - ax) * tl + ax * tr) + ay * ((1 - ax) * bl + ax * br);
        out[((size_t)k * p->height + r) * p->width + c] = (v / 255.0 - p->mean[k]) / p->std[k];
      }
    }
  }
}

static void fill_random(test_rng *rng, uint8_t *px, size_t n) {
  for (size_t i = 0; i < n; i++) px[i] = (uint8_t)test_rng_u64(rng);
}

/* ---------------------------------------------------------------- tests */

static void test_against_reference(void) {
  test_rng rng = test_rng_make(1);
  const int fw = 321, fh = 187, stride = 3 * fw + 13; /* padded rows */
  uint8_t *px = malloc((size_t)stride * fh);
  fill_random(&rng, px, (size_t)stride * fh);
  reid_frame f = {.format = REID_PIX_RGB, .width = fw, .height = fh};
  f.planes[0] = px;
  f.strides[0] = stride;

  const reid_box boxes[] = {
      {0, 0, fw, fh},                   /* whole frame, downscale */
      {10, 20, 64, 128},                /* integer box, identity size */
      {33.25f, 41.5f, 17.75f, 29.125f}, /* fractional, upscale */
      {-20.5f, -10.25f, 60.0f, 90.0f},  /* partly outside top-left */
      {fw - 30.3f, fh - 50.7f, 80, 90}, /* partly outside bottom-right */
      {100.4f, 50.6f, 0.3f, 0.2f},      /* inside a single pixel */
      {-5, 30, fw + 10, 3.5f},          /* wider than the frame, thin */
      {200.9f, 3.1f, 97.3f, 170.2f},    /* fractional downscale */
  };
  const int nb = (int)(sizeof boxes / sizeof boxes[0]);
  const int sizes[][2] = {{128, 64}, {256, 128}, {7, 5}, {1, 1}};
  for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
    reid_preprocess_params p = reid_preprocess_params_imagenet(sizes[si][0], sizes[si][1]);
    size_t per = (size_t)3 * p.height * p.width;
    float *out = test_alloc(per * nb);
    double *ref = malloc(per * sizeof *ref);
    float *reff = test_alloc(per);
    CHECK_OK(reid_preprocess_cpu(&f, boxes, nb, &p, out));
    for (int b = 0; b < nb; b++) {
      reference(px, fw, fh, stride, boxes[b], &p, ref);
      for (size_t i = 0; i < per; i++) reff[i] = (float)ref[i];
      char what[64];
      snprintf(what, sizeof what, "box %d at %dx%d", b, p.height, p.width);
      CHECK_CLOSE(out + b * per, reff, per, 1e-5, 1e-6, what);
    }
    free(out);
    free(ref);
    free(reff);
  }
  free(px);
}

/* Independent of the interpolation formula: exact results a correct
 * half-pixel-centre bilinear resize must give. */
static void test_special_cases(void) {
  test_rng rng = test_rng_make(2);
  const int fw = 64, fh = 48;
  uint8_t *px = malloc((size_t)3 * fw * fh);
  fill_random(&rng, px, (size_t)3 * fw * fh);
  reid_image img = {.width = fw, .height = fh, .stride = 3 * fw, .data = px};
  reid_preprocess_params p = {.height = fh, .width = fw, .mean = {0, 0, 0}, .std = {1, 1, 1}};

  /* identity: every output is its pixel / 255 */
  float *out = test_alloc((size_t)3 * fw * fh);
  CHECK_OK(reid_preprocess_image(&img, &p, out));
  int bad = 0;
  for (int k = 0; k < 3; k++)
    for (int y = 0; y < fh; y++)
      for (int x = 0; x < fw; x++)
        bad += fabsf(out[(k * fh + y) * fw + x] - px[y * 3 * fw + 3 * x + k] / 255.0f) > 1e-6f;
  CHECK(bad == 0, "identity resize: %d values differ", bad);

  /* 2x downscale of an integer box = mean of each 2x2 block */
  reid_frame f = reid_frame_from_image(&img);
  reid_box box = {8, 6, 32, 24};
  p.height = 12;
  p.width = 16;
  CHECK_OK(reid_preprocess_cpu(&f, &box, 1, &p, out));
  bad = 0;
  for (int k = 0; k < 3; k++)
    for (int r = 0; r < 12; r++)
      for (int c = 0; c < 16; c++) {
        int y = 6 + 2 * r, x = 8 + 2 * c;
        double m = (px[y * 3 * fw + 3 * x + k] + px[y * 3 * fw + 3 * (x + 1) + k] +
                    px[(y + 1) * 3 * fw + 3 * x + k] + px[(y + 1) * 3 * fw + 3 * (x + 1) + k]) /
                   4.0 / 255.0;
        bad += fabs(out[(k * 12 + r) * 16 + c] - m) > 1e-6;
      }
  CHECK(bad == 0, "2x2 average: %d values differ", bad);

  /* constant frame -> constant, normalised output; mean/std per channel */
  for (int i = 0; i < 3 * fw * fh; i += 3) px[i] = 200, px[i + 1] = 100, px[i + 2] = 0;
  reid_preprocess_params q = reid_preprocess_params_imagenet(33, 17);
  reid_box frac = {3.3f, -4.4f, 50.5f, 30.25f};
  CHECK_OK(reid_preprocess_cpu(&f, &frac, 1, &q, out));
  const double v[3] = {200, 100, 0};
  bad = 0;
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < 33 * 17; i++)
      bad += fabs(out[k * 33 * 17 + i] - (v[k] / 255.0 - q.mean[k]) / q.std[k]) > 1e-5;
  CHECK(bad == 0, "constant frame: %d values off", bad);
  free(out);
  free(px);
}

static void test_box_clip(void) {
  const int W = 100, H = 50;
  reid_box o;
  CHECK_OK(reid_box_clip(&(reid_box){10, 5, 20, 30}, W, H, &o));
  CHECK(o.x == 10 && o.y == 5 && o.w == 20 && o.h == 30, "inside: %g %g %g %g", o.x, o.y, o.w, o.h);
  CHECK_OK(reid_box_clip(&(reid_box){-5.5f, 5, 20, 30}, W, H, &o));
  CHECK(o.x == 0 && o.w == 14.5f && o.y == 5 && o.h == 30, "left: %g %g", o.x, o.w);
  CHECK_OK(reid_box_clip(&(reid_box){90, 5, 20, 30}, W, H, &o));
  CHECK(o.x == 90 && o.w == 10, "right: %g %g", o.x, o.w);
  CHECK_OK(reid_box_clip(&(reid_box){10, -7, 20, 30}, W, H, &o));
  CHECK(o.y == 0 && o.h == 23, "top: %g %g", o.y, o.h);
  CHECK_OK(reid_box_clip(&(reid_box){10, 40.25f, 20, 30}, W, H, &o));
  CHECK(o.y == 40.25f && o.h == 9.75f, "bottom: %g %g", o.y, o.h);
  CHECK_OK(reid_box_clip(&(reid_box){-10, -10, 200, 200}, W, H, &o));
  CHECK(o.x == 0 && o.y == 0 && o.w == W && o.h == H, "cover: %g %g %g %g", o.x, o.y, o.w, o.h);
  reid_box alias = {95, 45, 10, 10};
  CHECK_OK(reid_box_clip(&alias, W, H, &alias));
  CHECK(alias.w == 5 && alias.h == 5, "aliasing: %g %g", alias.w, alias.h);

  const reid_box bad[] = {
      {200, 10, 20, 20}, /* fully right */
      {-50, 10, 20, 20}, /* fully left */
      {10, 60, 20, 20},  /* fully below */
      {10, -30, 20, 20}, /* fully above */
      {100, 10, 5, 5},   /* starts exactly at the right edge */
      {10, 10, 0, 20},   /* zero width */
      {10, 10, 20, 0},   /* zero height */
      {10, 10, -5, 20},  /* negative width */
      {10, 10, 20, -1},  /* negative height */
      {NAN, 10, 20, 20}, {10, NAN, 20, 20},      {10, 10, NAN, 20},
      {10, 10, 20, NAN}, {10, 10, INFINITY, 20}, {-INFINITY, 10, INFINITY, 20},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    reid_box out = {-1, -1, -1, -1};
    reid_status st = reid_box_clip(&bad[i], W, H, &out);
    CHECK(st == REID_EINVAL, "bad box %zu: status %s", i, reid_status_name(st));
    CHECK(out.x == -1 && out.w == -1, "bad box %zu: output written", i);
  }
  CHECK(reid_box_clip(&(reid_box){1, 1, 1, 1}, 0, 10, &o) == REID_EINVAL, "zero frame");
}

static void test_validation(void) {
  const int fw = 40, fh = 30;
  uint8_t *px = calloc((size_t)3 * fw * fh, 1);
  reid_image img = {.width = fw, .height = fh, .stride = 3 * fw, .data = px};
  reid_frame f = reid_frame_from_image(&img);
  reid_preprocess_params p = reid_preprocess_params_imagenet(8, 4);
  const size_t per = 3 * 8 * 4;
  float *out = test_alloc(per * 4);
  for (size_t i = 0; i < per * 4; i++) out[i] = 12345.0f;

  /* a bad box anywhere: EINVAL naming its index, nothing written */
  reid_box boxes[4] = {{0, 0, 10, 10}, {5, 5, 10, 10}, {50, 0, 10, 10}, {1, 1, 2, 2}};
  reid_status st = reid_preprocess_cpu(&f, boxes, 4, &p, out);
  CHECK(st == REID_EINVAL, "box outside: %s", reid_status_name(st));
  CHECK(strstr(reid_last_error(), "box 2") != NULL, "message lacks the index: %s",
        reid_last_error());
  boxes[2] = (reid_box){1, 1, NAN, 3};
  CHECK(reid_preprocess_cpu(&f, boxes, 4, &p, out) == REID_EINVAL, "NaN box");
  boxes[2] = (reid_box){1, 1, -3, 3};
  CHECK(reid_preprocess_cpu(&f, boxes, 4, &p, out) == REID_EINVAL, "negative box");
  int touched = 0;
  for (size_t i = 0; i < per * 4; i++) touched += out[i] != 12345.0f;
  CHECK(touched == 0, "%d outputs written before the error", touched);

  /* bad arguments */
  CHECK(reid_preprocess_cpu(&f, boxes, -1, &p, out) == REID_EINVAL, "n_boxes < 0");
  CHECK_OK(reid_preprocess_cpu(&f, NULL, 0, &p, NULL)); /* nothing to do */
  CHECK(reid_preprocess_cpu(NULL, boxes, 1, &p, out) == REID_EINVAL, "NULL frame");
  CHECK(reid_preprocess_cpu(&f, boxes, 1, NULL, out) == REID_EINVAL, "NULL params");
  CHECK(reid_preprocess_cpu(&f, boxes, 1, &p, NULL) == REID_EINVAL, "NULL out");
  reid_preprocess_params q = p;
  q.std[1] = 0;
  CHECK(reid_preprocess_cpu(&f, boxes, 1, &q, out) == REID_EINVAL, "std 0");
  q = p;
  q.mean[2] = NAN;
  CHECK(reid_preprocess_cpu(&f, boxes, 1, &q, out) == REID_EINVAL, "mean NaN");
  q = p;
  q.width = 0;
  CHECK(reid_preprocess_cpu(&f, boxes, 1, &q, out) == REID_EINVAL, "width 0");
  reid_frame g = f;
  g.strides[0] = 3 * fw - 1;
  CHECK(reid_preprocess_cpu(&g, boxes, 1, &p, out) == REID_EINVAL, "short stride");
  g = f;
  g.planes[0] = NULL;
  CHECK(reid_preprocess_cpu(&g, boxes, 1, &p, out) == REID_EINVAL, "NULL plane");
  g = f;
  g.format = (reid_pixel_format)99;
  CHECK(reid_preprocess_cpu(&g, boxes, 1, &p, out) == REID_EINVAL, "unknown format");
  g = f;
  g.format = REID_PIX_NV12; /* plane 1 missing */
  CHECK(reid_preprocess_cpu(&g, boxes, 1, &p, out) == REID_EINVAL, "NV12 without UV");
  g = f;
  g.height = 0;
  CHECK(reid_preprocess_cpu(&g, boxes, 1, &p, out) == REID_EINVAL, "zero-height frame");
  touched = 0;
  for (size_t i = 0; i < per * 4; i++) touched += out[i] != 12345.0f;
  CHECK(touched == 0, "%d outputs written by failing calls", touched);
  free(out);
  free(px);
}

/* The workload of the GStreamer element: 16 boxes at 256x128 from 720p.
 * Reported, not checked: sanitizer builds are far slower. */
static void report_speed(void) {
  test_rng rng = test_rng_make(3);
  const int fw = 1280, fh = 720, n = 16;
  uint8_t *px = malloc((size_t)3 * fw * fh);
  fill_random(&rng, px, (size_t)3 * fw * fh);
  reid_image img = {.width = fw, .height = fh, .stride = 3 * fw, .data = px};
  reid_frame f = reid_frame_from_image(&img);
  reid_box boxes[16];
  for (int i = 0; i < n; i++)
    boxes[i] = (reid_box){test_rng_uniform(&rng, -20, 1100), test_rng_uniform(&rng, -20, 400),
                          test_rng_uniform(&rng, 40, 200), test_rng_uniform(&rng, 100, 400)};
  reid_preprocess_params p = reid_preprocess_params_imagenet(256, 128);
  float *out = test_alloc((size_t)n * 3 * 256 * 128);
  CHECK_OK(reid_preprocess_cpu(&f, boxes, n, &p, out)); /* warm up */
  const int reps = 20;
  double t0 = omp_get_wtime();
  for (int i = 0; i < reps; i++) reid_preprocess_cpu(&f, boxes, n, &p, out);
  double dt = (omp_get_wtime() - t0) / reps;
  fprintf(stderr,
          "preprocess: 16 boxes 256x128 from 1280x720 RGB: %.3f ms (%.1f us/box, %d threads)\n",
          dt * 1e3, dt * 1e6 / n, omp_get_max_threads());
  free(out);
  free(px);
}

int main(void) {
  test_against_reference();
  test_special_cases();
  test_box_clip();
  test_validation();
  report_speed();
  return test_finish("test_preprocess");
}
