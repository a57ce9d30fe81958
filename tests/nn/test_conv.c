/* Convolution: the backend (oneDNN) against the direct-loop reference on
 * random shapes, and the backward against central finite differences. */
#include "backend.h"
#include "cpu_ops.h"
#include "test_util.h"

typedef struct shape {
  int n, c_in, h, w, c_out, k, stride, pad, bias, groups; /* groups 0 means 1 */
} shape;

static void compare_with_reference(reid_backend *be, const shape *s, test_rng *rng) {
  reid_conv2d_desc d;
  const int groups = s->groups ? s->groups : 1;
  CHECK_OK(reid_conv2d_desc_init_grouped(&d, s->n, s->c_in, s->h, s->w, s->c_out, s->k, s->stride,
                                         s->pad, groups));
  size_t nx = (size_t)d.n * d.c_in * d.h_in * d.w_in,
         nw = (size_t)d.c_out * (d.c_in / groups) * d.k * d.k,
         ny = (size_t)d.n * d.c_out * d.h_out * d.w_out;
  float *x = test_alloc(nx), *w = test_alloc(nw), *b = test_alloc(d.c_out), *dy = test_alloc(ny);
  float *y = test_alloc(ny), *y_ref = test_alloc(ny);
  float *dx = test_alloc(nx), *dx_ref = test_alloc(nx), *dw = test_alloc(nw),
        *dw_ref = test_alloc(nw), *db = test_alloc(d.c_out), *db_ref = test_alloc(d.c_out);
  test_fill_uniform(rng, x, nx, -1, 1);
  test_fill_uniform(rng, w, nw, -0.5f, 0.5f);
  test_fill_uniform(rng, b, d.c_out, -1, 1);
  test_fill_uniform(rng, dy, ny, -1, 1);
  /* poison outputs so unwritten elements show up */
  for (size_t i = 0; i < ny; i++) y[i] = NAN;
  for (size_t i = 0; i < nx; i++) dx[i] = NAN;
  for (size_t i = 0; i < nw; i++) dw[i] = NAN;
  const float *bias = s->bias ? b : NULL;
  CHECK_OK(be->ops->conv2d_forward(be, &d, x, w, bias, y));
  conv2d_forward_reference(&d, x, w, bias, y_ref);
  char what[160];
  snprintf(what, sizeof what, "forward n%d c%d %dx%d -> c%d k%d s%d p%d bias%d groups%d", s->n,
           s->c_in, s->h, s->w, s->c_out, s->k, s->stride, s->pad, s->bias, groups);
  double scale = sqrt((double)d.c_in * d.k * d.k);
  CHECK_CLOSE(y, y_ref, ny, 1e-5 * scale, 1e-4, what);
  CHECK_OK(be->ops->conv2d_backward(be, &d, x, w, dy, dx, dw, s->bias ? db : NULL));
  conv2d_backward_reference(&d, x, w, dy, dx_ref, dw_ref, s->bias ? db_ref : NULL);
  snprintf(what, sizeof what, "backward dx k%d s%d p%d", s->k, s->stride, s->pad);
  CHECK_CLOSE(dx, dx_ref, nx, 1e-5 * sqrt((double)d.c_out * d.k * d.k), 1e-4, what);
  double count = (double)d.n * d.h_out * d.w_out;
  snprintf(what, sizeof what, "backward dw k%d s%d p%d", s->k, s->stride, s->pad);
  CHECK_CLOSE(dw, dw_ref, nw, 1e-5 * sqrt(count), 1e-4, what);
  if (s->bias) CHECK_CLOSE(db, db_ref, d.c_out, 1e-5 * sqrt(count), 1e-4, "backward dbias");
  /* dx = NULL and dw = NULL are allowed */
  CHECK_OK(be->ops->conv2d_backward(be, &d, x, w, dy, NULL, dw, NULL));
  CHECK_OK(be->ops->conv2d_backward(be, &d, x, w, dy, dx, NULL, NULL));
  CHECK_CLOSE(dx, dx_ref, nx, 1e-5 * sqrt((double)d.c_out * d.k * d.k), 1e-4, "dx with dw NULL");
  free(x), free(w), free(b), free(dy), free(y), free(y_ref), free(dx), free(dx_ref);
  free(dw), free(dw_ref), free(db), free(db_ref);
}

/* L = sum(conv(x, w, b) * r); dL/dtheta by central differences vs the backward. */
static void finite_differences(reid_backend *be, test_rng *rng) {
  reid_conv2d_desc d;
  CHECK_OK(reid_conv2d_desc_init(&d, 2, 3, 7, 6, 4, 3, 2, 1));
  size_t nx = (size_t)d.n * d.c_in * d.h_in * d.w_in, nw = (size_t)d.c_out * d.c_in * 9,
         ny = (size_t)d.n * d.c_out * d.h_out * d.w_out;
  float *x = test_alloc(nx), *w = test_alloc(nw), *b = test_alloc(d.c_out), *r = test_alloc(ny),
        *y = test_alloc(ny), *dx = test_alloc(nx), *dw = test_alloc(nw), *db = test_alloc(d.c_out);
  test_fill_uniform(rng, x, nx, -1, 1);
  test_fill_uniform(rng, w, nw, -1, 1);
  test_fill_uniform(rng, b, d.c_out, -1, 1);
  test_fill_uniform(rng, r, ny, -1, 1);
  CHECK_OK(be->ops->conv2d_backward(be, &d, x, w, r, dx, dw, db));
  float *params[3] = {x, w, b}, *grads[3] = {dx, dw, db};
  size_t sizes[3] = {nx, nw, (size_t)d.c_out};
  const char *names[3] = {"dx", "dw", "dbias"};
  for (int p = 0; p < 3; p++) {
    double worst = 0;
    for (size_t i = 0; i < sizes[p]; i++) {
      float keep = params[p][i], h = 1e-2f;
      double loss[2];
      for (int side = 0; side < 2; side++) {
        params[p][i] = keep + (side ? -h : h);
        CHECK_OK(be->ops->conv2d_forward(be, &d, x, w, b, y));
        loss[side] = 0;
        for (size_t j = 0; j < ny; j++) loss[side] += (double)y[j] * r[j];
      }
      params[p][i] = keep;
      double numeric = (loss[0] - loss[1]) / (2 * h);
      double err = fabs(numeric - grads[p][i]) / (1e-2 + fabs(numeric));
      if (err > worst) worst = err;
    }
    CHECK(worst < 1e-2, "conv %s vs finite differences: worst relative error %.3g", names[p],
          worst);
  }
  free(x), free(w), free(b), free(r), free(y), free(dx), free(dw), free(db);
}

int main(void) {
  reid_backend *be;
  CHECK_OK(reid_backend_create("cpu", 0, &be));
  if (!be) return test_finish("conv");
  test_rng rng = test_rng_make(7);
  const shape shapes[] = {
      {2, 3, 17, 13, 8, 7, 2, 3, 0, 1},  /* the ResNet stem on odd sizes */
      {1, 16, 9, 11, 16, 3, 1, 1, 0, 1}, /* 3x3 same */
      {3, 8, 10, 7, 12, 3, 2, 1, 1, 1},  /* 3x3 stride 2 with bias */
      {2, 32, 8, 8, 64, 1, 1, 0, 0, 1},  /* 1x1 */
      {2, 24, 9, 5, 40, 1, 2, 0, 1, 1},  /* 1x1 stride 2 (downsample) */
      {1, 5, 6, 6, 3, 5, 1, 0, 1, 1},    /* 5x5 valid */
      {1, 1, 1, 1, 1, 1, 1, 0, 0, 1},    /* smallest */
      {2, 16, 9, 7, 16, 3, 1, 1, 0, 16}, /* depthwise 3x3 (MobileNetV2, OSNet) */
      {2, 12, 8, 8, 12, 3, 2, 1, 1, 12}, /* depthwise 3x3 stride 2 with bias */
      {1, 12, 6, 5, 18, 3, 1, 1, 1, 3},  /* 3 groups, 4 -> 6 channels each */
  };
  for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
    compare_with_reference(be, &shapes[i], &rng);
  for (int i = 0; i < 6; i++) { /* random shapes */
    shape s = {test_rng_int(&rng, 1, 3),  test_rng_int(&rng, 1, 20),
               test_rng_int(&rng, 3, 15), test_rng_int(&rng, 3, 15),
               test_rng_int(&rng, 1, 20), 1 + 2 * test_rng_int(&rng, 0, 1),
               test_rng_int(&rng, 1, 2),  0,
               test_rng_int(&rng, 0, 1),  1};
    s.pad = s.k / 2;
    compare_with_reference(be, &s, &rng);
  }
  finite_differences(be, &rng);
  reid_conv2d_desc d;
  CHECK(reid_conv2d_desc_init(&d, 1, 3, 2, 2, 4, 7, 1, 0) == REID_EINVAL,
        "kernel larger than input");
  CHECK(reid_conv2d_desc_init(&d, 0, 3, 8, 8, 4, 3, 1, 1) == REID_EINVAL, "empty batch");
  CHECK(reid_conv2d_desc_init_grouped(&d, 1, 6, 8, 8, 4, 3, 1, 1, 4) == REID_EINVAL,
        "groups that do not divide the channels");
  reid_backend_destroy(be);
  return test_finish("conv");
}
