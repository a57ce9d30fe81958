/* One RGB picture converted into every reid_pixel_format (rows padded with
 * garbage, alpha/x bytes random) must preprocess like the RGB original:
 * bit-identical for the packed formats, within 4:2:0 + 8-bit quantisation
 * error for NV12 / I420 under each YUV matrix and range. */
#include "preprocess.h"
#include "test_util.h"

/* ---------------------------------------------------------------- source picture */

/* Smooth content, so that 4:2:0 subsampling itself costs little and what
 * remains is 8-bit rounding. (A sharp colour edge costs up to ~1.0 in
 * normalised units next to it under any correct decoder.) Chroma sited
 * half a luma pixel off raises the mean error ~4x, above the bound below. */
static void make_picture(uint8_t *rgb, int w, int h) {
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double r = 128 + 90 * sin(x / 11.0 + y / 23.0);
      double g = 120 + 80 * cos(x / 17.0 - y / 13.0);
      double b = 40 + 200.0 * x / w;
      uint8_t *p = rgb + ((size_t)y * w + x) * 3;
      p[0] = (uint8_t)lrint(r), p[1] = (uint8_t)lrint(g), p[2] = (uint8_t)lrint(b);
    }
}

/* ---------------------------------------------------------------- converters */

typedef struct {
  reid_frame f;
  uint8_t *mem[3]; /* owned planes (the frame may point into them at an offset) */
} test_frame;

static void test_frame_free(test_frame *t) {
  for (int i = 0; i < 3; i++) free(t->mem[i]);
}

static uint8_t *alloc_plane(test_rng *rng, int stride, int rows) {
  size_t n = (size_t)stride * rows;
  uint8_t *p = malloc(n);
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)test_rng_u64(rng); /* garbage in padding */
  return p;
}

/* RGB -> a packed format, rows padded by `pad` bytes. Exact. */
static test_frame to_packed(const uint8_t *rgb, int w, int h, reid_pixel_format fmt, int pad,
                            test_rng *rng) {
  int bytes = (fmt == REID_PIX_RGB || fmt == REID_PIX_BGR) ? 3 : 4;
  int bgr = fmt == REID_PIX_BGR || fmt == REID_PIX_BGRA || fmt == REID_PIX_BGRX;
  int stride = w * bytes + pad;
  test_frame t = {.f = {.format = fmt, .width = w, .height = h}};
  t.mem[0] = alloc_plane(rng, stride, h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const uint8_t *s = rgb + ((size_t)y * w + x) * 3;
      uint8_t *d = t.mem[0] + (size_t)y * stride + (size_t)x * bytes;
      d[0] = s[bgr ? 2 : 0], d[1] = s[1], d[2] = s[bgr ? 0 : 2]; /* d[3]: random */
    }
  t.f.planes[0] = t.mem[0];
  t.f.strides[0] = stride;
  return t;
}

/* The same picture stored bottom-up: last row first, negative stride. */
static test_frame to_bottom_up_rgb(const uint8_t *rgb, int w, int h, test_rng *rng) {
  int stride = 3 * w + 5;
  test_frame t = {.f = {.format = REID_PIX_RGB, .width = w, .height = h}};
  t.mem[0] = alloc_plane(rng, stride, h);
  for (int y = 0; y < h; y++)
    memcpy(t.mem[0] + (size_t)(h - 1 - y) * stride, rgb + (size_t)y * w * 3, (size_t)w * 3);
  t.f.planes[0] = t.mem[0] + (size_t)(h - 1) * stride;
  t.f.strides[0] = -stride;
  return t;
}

static uint8_t q8(double v) {
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lrint(v));
}

/* Forward conversion from the textbook definition (not the library's
 * inverse): Y = Kr R + Kg G + Kb B, U = (B - Y) / (2 (1 - Kb)),
 * V = (R - Y) / (2 (1 - Kr)); limited range squeezes Y to 16..235 and U, V
 * to 16..240. Chroma of each 2x2 block is the block's mean colour, i.e. it
 * sits at the block centre. */
static void rgb_to_yuv(double r, double g, double b, reid_yuv_matrix m, int full, double *Y,
                       double *U, double *V) {
  double kr = m == REID_YUV_BT709 ? 0.2126 : 0.299, kb = m == REID_YUV_BT709 ? 0.0722 : 0.114;
  double y = kr * r + (1 - kr - kb) * g + kb * b;
  double u = (b - y) / (2 * (1 - kb)), v = (r - y) / (2 * (1 - kr));
  *Y = full ? y : 16 + y * 219 / 255;
  *U = 128 + (full ? u : u * 224 / 255);
  *V = 128 + (full ? v : v * 224 / 255);
}

static test_frame to_yuv(const uint8_t *rgb, int w, int h, reid_pixel_format fmt, reid_yuv_matrix m,
                         int full, int pad, test_rng *rng) {
  int cw = (w + 1) / 2, ch = (h + 1) / 2, nv12 = fmt == REID_PIX_NV12;
  test_frame t = {
      .f = {.format = fmt, .width = w, .height = h, .yuv_matrix = m, .yuv_full_range = full}};
  int ys = w + pad, cs = (nv12 ? 2 * cw : cw) + pad;
  t.mem[0] = alloc_plane(rng, ys, h);
  t.mem[1] = alloc_plane(rng, cs, ch);
  if (!nv12) t.mem[2] = alloc_plane(rng, cs, ch);
  double Y, U, V;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const uint8_t *s = rgb + ((size_t)y * w + x) * 3;
      rgb_to_yuv(s[0], s[1], s[2], m, full, &Y, &U, &V);
      t.mem[0][(size_t)y * ys + x] = q8(Y);
    }
  for (int cy = 0; cy < ch; cy++)
    for (int cx = 0; cx < cw; cx++) {
      double sum[3] = {0, 0, 0};
      int count = 0;
      for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
          int x = 2 * cx + dx, y = 2 * cy + dy;
          if (x >= w || y >= h) continue; /* odd sizes: the edge block is partial */
          for (int k = 0; k < 3; k++) sum[k] += rgb[((size_t)y * w + x) * 3 + k];
          count++;
        }
      rgb_to_yuv(sum[0] / count, sum[1] / count, sum[2] / count, m, full, &Y, &U, &V);
      if (nv12) {
        t.mem[1][(size_t)cy * cs + 2 * cx] = q8(U);
        t.mem[1][(size_t)cy * cs + 2 * cx + 1] = q8(V);
      } else {
        t.mem[1][(size_t)cy * cs + cx] = q8(U);
        t.mem[2][(size_t)cy * cs + cx] = q8(V);
      }
    }
  for (int i = 0; i < 3; i++) {
    t.f.planes[i] = t.mem[i];
    t.f.strides[i] = i == 0 ? ys : cs;
  }
  if (nv12) t.f.planes[2] = NULL, t.f.strides[2] = 0;
  return t;
}

/* ---------------------------------------------------------------- tests */

static const char *fmt_name(reid_pixel_format f) {
  static const char *names[] = {"RGB", "BGR", "RGBA", "BGRA", "RGBX", "BGRX", "NV12", "I420"};
  return names[f];
}

static void compare_formats(int w, int h) {
  test_rng rng = test_rng_make((uint64_t)w * 1000 + h);
  uint8_t *rgb = malloc((size_t)w * h * 3);
  make_picture(rgb, w, h);
  const reid_box boxes[] = {
      {0, 0, (float)w, (float)h},
      {w * 0.2f + 0.37f, h * 0.1f + 0.61f, w * 0.35f, h * 0.7f},
      {-w * 0.1f, h * 0.5f, w * 0.3f, h * 0.8f}, /* partly outside */
      {w * 0.5f, h * 0.25f, 9.5f, 13.25f},       /* upscaled */
  };
  const int nb = 4;
  reid_preprocess_params p = reid_preprocess_params_imagenet(64, 32);
  size_t n = (size_t)nb * 3 * 64 * 32;
  float *want = test_alloc(n), *got = test_alloc(n);

  test_frame base = to_packed(rgb, w, h, REID_PIX_RGB, 0, &rng);
  CHECK_OK(reid_preprocess_cpu(&base.f, boxes, nb, &p, want));
  test_frame_free(&base);

  for (reid_pixel_format fmt = REID_PIX_RGB; fmt <= REID_PIX_BGRX; fmt++) {
    test_frame t = to_packed(rgb, w, h, fmt, 7, &rng);
    CHECK_OK(reid_preprocess_cpu(&t.f, boxes, nb, &p, got));
    CHECK(memcmp(want, got, n * sizeof(float)) == 0, "%s %dx%d differs from RGB", fmt_name(fmt), w,
          h);
    test_frame_free(&t);
  }
  test_frame flipped = to_bottom_up_rgb(rgb, w, h, &rng);
  CHECK_OK(reid_preprocess_cpu(&flipped.f, boxes, nb, &p, got));
  CHECK(memcmp(want, got, n * sizeof(float)) == 0, "bottom-up RGB %dx%d differs", w, h);
  test_frame_free(&flipped);

  for (reid_pixel_format fmt = REID_PIX_NV12; fmt <= REID_PIX_I420; fmt++)
    for (int m = REID_YUV_BT601; m <= REID_YUV_BT709; m++)
      for (int full = 0; full <= 1; full++) {
        test_frame t = to_yuv(rgb, w, h, fmt, (reid_yuv_matrix)m, full, 11, &rng);
        CHECK_OK(reid_preprocess_cpu(&t.f, boxes, nb, &p, got));
        double mad = 0, dot = 0, na = 0, nb2 = 0, worst = 0;
        for (size_t i = 0; i < n; i++) {
          double d = fabs((double)got[i] - want[i]);
          mad += d;
          worst = d > worst ? d : worst;
          dot += (double)got[i] * want[i];
          na += (double)got[i] * got[i];
          nb2 += (double)want[i] * want[i];
        }
        mad /= n;
        double cosine = dot / sqrt(na * nb2);
        /* one 8-bit code is 1 / (255 * 0.225) = 0.017 after normalisation;
         * measured: ~0.006 */
        CHECK(mad < 0.012 && cosine >= 0.9995, "%s %s %s %dx%d: mean |diff| %.4f, cosine %.6f",
              fmt_name(fmt), m ? "BT.709" : "BT.601", full ? "full" : "limited", w, h, mad, cosine);
        if (getenv("REID_TEST_VERBOSE"))
          fprintf(stderr, "%s %s %s %dx%d: mad %.4f max %.3f cos %.6f\n", fmt_name(fmt),
                  m ? "709" : "601", full ? "full" : "lim", w, h, mad, worst, cosine);
        test_frame_free(&t);
      }
  free(want);
  free(got);
  free(rgb);
}

/* The coefficients the library documents for BT.601 limited range. */
static void test_coefficients(void) {
  reid_yuv_coeffs c = reid_yuv_coefficients(REID_YUV_BT601, 0);
  CHECK(fabsf(c.y_scale - 1.164384f) < 1e-5f && c.y_offset == 16.0f, "Y: %g %g", (double)c.y_scale,
        (double)c.y_offset);
  CHECK(fabsf(c.r_v - 1.596027f) < 1e-5f && fabsf(c.g_u + 0.391762f) < 1e-5f &&
            fabsf(c.g_v + 0.812968f) < 1e-5f && fabsf(c.b_u - 2.017232f) < 1e-5f,
        "BT.601 chroma: %g %g %g %g", (double)c.r_v, (double)c.g_u, (double)c.g_v, (double)c.b_u);
  c = reid_yuv_coefficients(REID_YUV_BT709, 1);
  CHECK(c.y_scale == 1.0f && c.y_offset == 0.0f && fabsf(c.r_v - 1.5748f) < 1e-5f &&
            fabsf(c.b_u - 1.8556f) < 1e-5f,
        "BT.709 full: %g %g", (double)c.r_v, (double)c.b_u);

  /* limited range: black / white / grey decode to 0 / 255 / (Y - 16) * 255 / 219,
   * super-white and sub-black clamp to 255 / 0 */
  uint8_t y[6] = {16, 235, 126, 126, 255, 0}, uv[6] = {128, 128, 128, 128, 128, 128};
  const float want[6] = {0, 1, 110.0f / 219.0f, 110.0f / 219.0f, 1, 0};
  reid_frame f = {.format = REID_PIX_NV12, .width = 6, .height = 1};
  f.planes[0] = y, f.planes[1] = uv, f.strides[0] = 6, f.strides[1] = 6;
  reid_preprocess_params p = {.height = 1, .width = 6, .mean = {0, 0, 0}, .std = {1, 1, 1}};
  float out[18];
  CHECK_OK(reid_preprocess_cpu(&f, &(reid_box){0, 0, 6, 1}, 1, &p, out));
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < 6; i++)
      CHECK(fabsf(out[k * 6 + i] - want[i]) < 1e-6f, "Y=%d channel %d: %g, want %g", y[i], k,
            (double)out[k * 6 + i], (double)want[i]);
}

int main(void) {
  test_coefficients();
  compare_formats(160, 94);  /* even */
  compare_formats(75, 51);   /* odd: partial chroma blocks at the edges */
  compare_formats(640, 360); /* camera-like */
  return test_finish("test_pixel_formats");
}
