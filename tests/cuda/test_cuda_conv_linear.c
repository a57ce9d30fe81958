/* CUDA convolutions (cuDNN) and linear layers (cuBLAS) against the CPU
 * backend, forward and backward, in strict fp32 and in TF32 mode.
 *
 * A sum of products can only be compared relative to the sum of the
 * products' magnitudes: each element must satisfy
 *   |gpu - cpu| <= tol * S + 1e-7,   S = the same op on |x|, |w| (|dy|)
 * with tol = 1e-5 in fp32 and 1e-3 in TF32 (10-bit mantissa inputs).
 * Outputs are poisoned with NaN before every call. */
#include "cuda_test.h"

#define TOL_FP32 1e-5
#define TOL_TF32 1e-3

static float *abs_copy(const float *x, size_t n) {
  float *a = test_alloc(n);
  for (size_t i = 0; i < n; i++) a[i] = fabsf(x[i]);
  return a;
}

typedef struct conv_case {
  int n, c_in, h, w, c_out, k, stride, pad, groups; /* groups 1: dense */
} conv_case;

static void test_conv_case(test_rng *rng, conv_case cc, int tf32) {
  reid_conv2d_desc d;
  CHECK_OK(reid_conv2d_desc_init_grouped(&d, cc.n, cc.c_in, cc.h, cc.w, cc.c_out, cc.k, cc.stride,
                                         cc.pad, cc.groups ? cc.groups : 1));
  CHECK_OK(reid_cuda_set_tf32(gpu, tf32));
  const size_t nx = (size_t)d.n * d.c_in * d.h_in * d.w_in,
               nw = (size_t)d.c_out * (d.c_in / d.groups) * d.k * d.k;
  const size_t ny = (size_t)d.n * d.c_out * d.h_out * d.w_out, nb = (size_t)d.c_out;
  float *x = test_alloc(nx), *w = test_alloc(nw), *b = test_alloc(nb), *dy = test_alloc(ny);
  test_fill_uniform(rng, x, nx, -1, 1);
  test_fill_uniform(rng, w, nw, -0.5f, 0.5f);
  test_fill_uniform(rng, b, nb, -1, 1);
  test_fill_uniform(rng, dy, ny, -1, 1);
  float *ax = abs_copy(x, nx), *aw = abs_copy(w, nw), *ab = abs_copy(b, nb),
        *ady = abs_copy(dy, ny);

  /* CPU reference and scales */
  float *y = test_alloc(ny), *dx = test_alloc(nx), *dw = test_alloc(nw), *db = test_alloc(nb);
  float *sy = test_alloc(ny), *sdx = test_alloc(nx), *sdw = test_alloc(nw), *sdb = test_alloc(nb);
  CHECK_OK(cpu->ops->conv2d_forward(cpu, &d, x, w, b, y));
  CHECK_OK(cpu->ops->conv2d_backward(cpu, &d, x, w, dy, dx, dw, db));
  CHECK_OK(cpu->ops->conv2d_forward(cpu, &d, ax, aw, ab, sy));
  CHECK_OK(cpu->ops->conv2d_backward(cpu, &d, ax, aw, ady, sdx, sdw, sdb));

  float *gx = dev_from(x, nx), *gw = dev_from(w, nw), *gb = dev_from(b, nb),
        *gdy = dev_from(dy, ny);
  float *gy = dev_poisoned(ny), *gdx = dev_poisoned(nx), *gdw = dev_poisoned(nw),
        *gdb = dev_poisoned(nb);
  const double tol = tf32 ? TOL_TF32 : TOL_FP32;
  char what[160];
  const char *mode = tf32 ? "tf32" : "fp32";
  /* twice: the second call uses the cached algorithm */
  for (int rep = 0; rep < 2; rep++) {
    gpu->ops->fill(gpu, gy, ny, NAN);
    CHECK_OK(gpu->ops->conv2d_forward(gpu, &d, gx, gw, gb, gy));
    float *hy = host_from(gy, ny);
    snprintf(what, sizeof what, "conv %s n%d c%d %dx%d -> c%d k%d s%d p%d g%d: y (call %d)", mode,
             d.n, d.c_in, d.h_in, d.w_in, d.c_out, d.k, d.stride, d.pad, d.groups, rep + 1);
    check_scaled(what, hy, y, sy, ny, tol, 1e-7);
    free(hy);
  }
  gpu->ops->fill(gpu, gy, ny, NAN);
  CHECK_OK(gpu->ops->conv2d_forward(gpu, &d, gx, gw, NULL, gy)); /* no bias */
  float *hy = host_from(gy, ny), *ynb = test_alloc(ny);
  CHECK_OK(cpu->ops->conv2d_forward(cpu, &d, x, w, NULL, ynb));
  snprintf(what, sizeof what, "conv %s c%d->c%d k%d: y without bias", mode, d.c_in, d.c_out, d.k);
  check_scaled(what, hy, ynb, sy, ny, tol, 1e-7);

  CHECK_OK(gpu->ops->conv2d_backward(gpu, &d, gx, gw, gdy, gdx, gdw, gdb));
  float *hdx = host_from(gdx, nx), *hdw = host_from(gdw, nw), *hdb = host_from(gdb, nb);
  snprintf(what, sizeof what, "conv %s c%d->c%d k%d s%d: dx", mode, d.c_in, d.c_out, d.k, d.stride);
  check_scaled(what, hdx, dx, sdx, nx, tol, 1e-7);
  snprintf(what, sizeof what, "conv %s c%d->c%d k%d s%d: dw", mode, d.c_in, d.c_out, d.k, d.stride);
  check_scaled(what, hdw, dw, sdw, nw, tol, 1e-7);
  snprintf(what, sizeof what, "conv %s c%d->c%d k%d s%d: dbias", mode, d.c_in, d.c_out, d.k,
           d.stride);
  check_scaled(what, hdb, db, sdb, nb, 1e-5, 1e-7); /* own reduction, double sums */
  free(hdx), free(hdw), free(hdb);

  /* only dw (frozen input), then only dx */
  gpu->ops->fill(gpu, gdw, nw, NAN);
  CHECK_OK(gpu->ops->conv2d_backward(gpu, &d, gx, gw, gdy, NULL, gdw, NULL));
  hdw = host_from(gdw, nw);
  check_scaled("conv: dw alone", hdw, dw, sdw, nw, tol, 1e-7);
  gpu->ops->fill(gpu, gdx, nx, NAN);
  CHECK_OK(gpu->ops->conv2d_backward(gpu, &d, gx, gw, gdy, gdx, NULL, NULL));
  hdx = host_from(gdx, nx);
  check_scaled("conv: dx alone", hdx, dx, sdx, nx, tol, 1e-7);
  free(hdx), free(hdw), free(hy), free(ynb);

  float *dev[] = {gx, gw, gb, gdy, gy, gdx, gdw, gdb};
  for (int i = 0; i < 8; i++) dev_free(dev[i]);
  float *host[] = {x, w, b, dy, ax, aw, ab, ady, y, dx, dw, db, sy, sdx, sdw, sdb};
  for (int i = 0; i < 16; i++) free(host[i]);
  CHECK_OK(reid_cuda_set_tf32(gpu, 0));
}

static void test_conv(test_rng *rng) {
  const conv_case cases[] = {
      {2, 3, 32, 16, 16, 7, 2, 3, 1},  /* the stem */
      {3, 16, 15, 9, 24, 3, 1, 1, 1},  /* odd sizes */
      {2, 32, 16, 8, 64, 1, 2, 0, 1},  /* a strided downsample */
      {4, 64, 16, 8, 64, 3, 2, 1, 1},  /* a strided 3x3 */
      {2, 256, 8, 4, 64, 1, 1, 0, 1},  /* a bottleneck reduction */
      {1, 5, 7, 7, 3, 5, 1, 0, 1},     /* no padding */
      {2, 24, 16, 8, 24, 3, 1, 1, 24}, /* depthwise (MobileNetV2, OSNet) */
      {3, 32, 9, 7, 32, 3, 2, 1, 32},  /* depthwise, strided */
      {2, 16, 6, 5, 24, 3, 1, 1, 4},   /* 4 groups */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    test_conv_case(rng, cases[i], 0);
    test_conv_case(rng, cases[i], 1);
  }
  /* bad arguments */
  reid_conv2d_desc d;
  CHECK_OK(reid_conv2d_desc_init(&d, 1, 2, 5, 5, 3, 3, 1, 1));
  float *p = dev_poisoned(256);
  reid_conv2d_desc broken = d;
  broken.h_out = 7;
  CHECK(gpu->ops->conv2d_forward(gpu, &broken, p, p, NULL, p) == REID_EINVAL, "bad descriptor");
  CHECK(gpu->ops->conv2d_forward(gpu, &d, NULL, p, NULL, p) == REID_EINVAL, "NULL input");
  dev_free(p);
}

static void test_linear_case(test_rng *rng, int b, int in, int out, int with_bias, int tf32) {
  CHECK_OK(reid_cuda_set_tf32(gpu, tf32));
  const size_t nx = (size_t)b * in, nw = (size_t)out * in, ny = (size_t)b * out;
  float *x = test_alloc(nx), *w = test_alloc(nw), *bias = test_alloc(out), *dy = test_alloc(ny);
  test_fill_uniform(rng, x, nx, -1, 1);
  test_fill_uniform(rng, w, nw, -0.1f, 0.1f);
  test_fill_uniform(rng, bias, out, -1, 1);
  test_fill_uniform(rng, dy, ny, -1, 1);
  float *ax = abs_copy(x, nx), *aw = abs_copy(w, nw), *ab = abs_copy(bias, out),
        *ady = abs_copy(dy, ny);
  float *y = test_alloc(ny), *dx = test_alloc(nx), *dw = test_alloc(nw), *db = test_alloc(out);
  float *sy = test_alloc(ny), *sdx = test_alloc(nx), *sdw = test_alloc(nw), *sdb = test_alloc(out);
  const float *bp = with_bias ? bias : NULL;
  CHECK_OK(cpu->ops->linear_forward(cpu, b, in, out, x, w, bp, y));
  CHECK_OK(cpu->ops->linear_backward(cpu, b, in, out, x, w, dy, dx, dw, db));
  CHECK_OK(cpu->ops->linear_forward(cpu, b, in, out, ax, aw, with_bias ? ab : NULL, sy));
  CHECK_OK(cpu->ops->linear_backward(cpu, b, in, out, ax, aw, ady, sdx, sdw, sdb));

  float *gx = dev_from(x, nx), *gw = dev_from(w, nw), *gbias = dev_from(bias, out),
        *gdy = dev_from(dy, ny);
  float *gy = dev_poisoned(ny), *gdx = dev_poisoned(nx), *gdw = dev_poisoned(nw),
        *gdb = dev_poisoned(out);
  CHECK_OK(gpu->ops->linear_forward(gpu, b, in, out, gx, gw, with_bias ? gbias : NULL, gy));
  CHECK_OK(gpu->ops->linear_backward(gpu, b, in, out, gx, gw, gdy, gdx, gdw, gdb));
  const double tol = tf32 ? TOL_TF32 : TOL_FP32;
  char what[128];
  float *h[4] = {host_from(gy, ny), host_from(gdx, nx), host_from(gdw, nw), host_from(gdb, out)};
  const float *ref[4] = {y, dx, dw, db}, *scale[4] = {sy, sdx, sdw, sdb};
  const size_t len[4] = {ny, nx, nw, (size_t)out};
  const char *names[4] = {"y", "dx", "dw", "dbias"};
  for (int i = 0; i < 4; i++) {
    snprintf(what, sizeof what, "linear %s b%d %d->%d%s: %s", tf32 ? "tf32" : "fp32", b, in, out,
             with_bias ? " +bias" : "", names[i]);
    check_scaled(what, h[i], ref[i], scale[i], len[i], i == 3 ? 1e-6 : tol, 1e-7);
    free(h[i]);
  }
  /* gradients on request only: dx alone must leave dw untouched */
  gpu->ops->fill(gpu, gdx, nx, NAN);
  gpu->ops->fill(gpu, gdw, nw, 7.0f);
  CHECK_OK(gpu->ops->linear_backward(gpu, b, in, out, gx, gw, gdy, gdx, NULL, NULL));
  float *hdx = host_from(gdx, nx), *hdw = host_from(gdw, nw);
  check_scaled("linear: dx alone", hdx, dx, sdx, nx, tol, 1e-7);
  size_t touched = 0;
  for (size_t i = 0; i < nw; i++) touched += hdw[i] != 7.0f;
  CHECK(touched == 0, "linear: dw written although NULL was passed (%zu elements)", touched);
  free(hdx), free(hdw);
  float *dev[] = {gx, gw, gbias, gdy, gy, gdx, gdw, gdb};
  for (int i = 0; i < 8; i++) dev_free(dev[i]);
  float *host[] = {x, w, bias, dy, ax, aw, ab, ady, y, dx, dw, db, sy, sdx, sdw, sdb};
  for (int i = 0; i < 16; i++) free(host[i]);
  CHECK_OK(reid_cuda_set_tf32(gpu, 0));
}

static void test_linear(test_rng *rng) {
  const int cases[][3] = {{7, 2048, 751}, {64, 512, 10}, {1, 3, 5}, {33, 100, 257}};
  for (int i = 0; i < 4; i++)
    for (int tf32 = 0; tf32 < 2; tf32++) {
      test_linear_case(rng, cases[i][0], cases[i][1], cases[i][2], 1, tf32);
      test_linear_case(rng, cases[i][0], cases[i][1], cases[i][2], 0, tf32);
    }
  float *p = dev_poisoned(16);
  CHECK(gpu->ops->linear_forward(gpu, 0, 4, 4, p, p, NULL, p) == REID_EINVAL, "b = 0 refused");
  CHECK(gpu->ops->linear_forward(gpu, 2, 2, 2, p, NULL, NULL, p) == REID_EINVAL, "NULL weights");
  dev_free(p);
}

int main(void) {
  const int skip = cuda_test_setup("test_cuda_conv_linear");
  if (skip) return skip;
  test_rng rng = test_rng_make(57);
  test_conv(&rng);
  test_linear(&rng);
  cuda_test_teardown();
  return test_finish("test_cuda_conv_linear");
}
