/* Linear layer of the CPU backend: forward and backward against a double
 * reference on shapes that cut through every blocking edge, gradients by
 * finite differences, argument errors. */
#include "backend.h"
#include "test_util.h"

typedef double (*gc_loss_fn)(void *ctx);
int gradcheck(const char *what, float *p, size_t n, const float *analytic, gc_loss_fn loss,
              void *ctx, float h, double atol, double rtol);
double gc_dot(const float *a, const float *b, size_t n);

static reid_backend *be;

typedef struct {
  int b, in, out;
  float *x, *w, *bias, *y, *r;
} lin_ctx;

static lin_ctx lin_make(test_rng *rng, int b, int in, int out) {
  lin_ctx c = {b,
               in,
               out,
               test_alloc((size_t)b * in),
               test_alloc((size_t)out * in),
               test_alloc(out),
               test_alloc((size_t)b * out),
               test_alloc((size_t)b * out)};
  test_fill_uniform(rng, c.x, (size_t)b * in, -1, 1);
  test_fill_uniform(rng, c.w, (size_t)out * in, -1, 1);
  test_fill_uniform(rng, c.bias, out, -1, 1);
  test_fill_uniform(rng, c.r, (size_t)b * out, -1, 1);
  return c;
}

static void lin_free(lin_ctx *c) {
  free(c->x), free(c->w), free(c->bias), free(c->y), free(c->r);
}

static double lin_loss(void *p) {
  lin_ctx *c = p;
  CHECK_OK(be->ops->linear_forward(be, c->b, c->in, c->out, c->x, c->w, c->bias, c->y));
  return gc_dot(c->y, c->r, (size_t)c->b * c->out);
}

static void check_reference(test_rng *rng, int b, int in, int out) {
  lin_ctx c = lin_make(rng, b, in, out);
  float *yref = test_alloc((size_t)b * out), *dx = test_alloc((size_t)b * in);
  float *dw = test_alloc((size_t)out * in), *db = test_alloc(out);
  float *dxref = test_alloc((size_t)b * in), *dwref = test_alloc((size_t)out * in);
  float *dbref = test_alloc(out);
  char what[80];
  /* entries of a product are sums of `k` terms of size ~1/3; float error grows ~sqrt(k) */
  const double tol_fwd = 1e-5 * sqrt(in), tol_dx = 1e-5 * sqrt(out), tol_dw = 1e-5 * sqrt(b);

  for (int with_bias = 0; with_bias < 2; with_bias++) {
    CHECK_OK(be->ops->linear_forward(be, b, in, out, c.x, c.w, with_bias ? c.bias : NULL, c.y));
    for (int i = 0; i < b; i++)
      for (int j = 0; j < out; j++) {
        double s = with_bias ? c.bias[j] : 0.0;
        for (int k = 0; k < in; k++) s += (double)c.x[(size_t)i * in + k] * c.w[(size_t)j * in + k];
        yref[(size_t)i * out + j] = (float)s;
      }
    snprintf(what, sizeof what, "linear forward b=%d in=%d out=%d bias=%d", b, in, out, with_bias);
    CHECK_CLOSE(c.y, yref, (size_t)b * out, tol_fwd, 1e-5, what);
  }

  const float *dy = c.r;
  CHECK_OK(be->ops->linear_backward(be, b, in, out, c.x, c.w, dy, dx, dw, db));
  for (int i = 0; i < b; i++)
    for (int k = 0; k < in; k++) {
      double s = 0;
      for (int j = 0; j < out; j++) s += (double)dy[(size_t)i * out + j] * c.w[(size_t)j * in + k];
      dxref[(size_t)i * in + k] = (float)s;
    }
  for (int j = 0; j < out; j++) {
    double sb = 0;
    for (int i = 0; i < b; i++) sb += dy[(size_t)i * out + j];
    dbref[j] = (float)sb;
    for (int k = 0; k < in; k++) {
      double s = 0;
      for (int i = 0; i < b; i++) s += (double)dy[(size_t)i * out + j] * c.x[(size_t)i * in + k];
      dwref[(size_t)j * in + k] = (float)s;
    }
  }
  snprintf(what, sizeof what, "linear dx b=%d in=%d out=%d", b, in, out);
  CHECK_CLOSE(dx, dxref, (size_t)b * in, tol_dx, 1e-5, what);
  snprintf(what, sizeof what, "linear dw b=%d in=%d out=%d", b, in, out);
  CHECK_CLOSE(dw, dwref, (size_t)out * in, tol_dw, 1e-5, what);
  snprintf(what, sizeof what, "linear dbias b=%d in=%d out=%d", b, in, out);
  CHECK_CLOSE(db, dbref, out, tol_dw, 1e-5, what);

  /* NULL gradients are skipped, the others unchanged */
  float *dx2 = test_alloc((size_t)b * in);
  CHECK_OK(be->ops->linear_backward(be, b, in, out, NULL, c.w, dy, dx2, NULL, NULL));
  snprintf(what, sizeof what, "linear dx alone b=%d in=%d out=%d", b, in, out);
  CHECK_CLOSE(dx2, dx, (size_t)b * in, 1e-30, 0, what);
  free(dx2);

  free(yref), free(dx), free(dw), free(db), free(dxref), free(dwref), free(dbref);
  lin_free(&c);
}

static void check_gradients(test_rng *rng, int b, int in, int out) {
  lin_ctx c = lin_make(rng, b, in, out);
  float *dx = test_alloc((size_t)b * in), *dw = test_alloc((size_t)out * in);
  float *db = test_alloc(out);
  CHECK_OK(be->ops->linear_backward(be, b, in, out, c.x, c.w, c.r, dx, dw, db));
  CHECK(gradcheck("linear dx", c.x, (size_t)b * in, dx, lin_loss, &c, 1e-3f, 1e-3, 1e-2) == 0,
        "linear dx");
  CHECK(gradcheck("linear dw", c.w, (size_t)out * in, dw, lin_loss, &c, 1e-3f, 1e-3, 1e-2) == 0,
        "linear dw");
  CHECK(gradcheck("linear dbias", c.bias, out, db, lin_loss, &c, 1e-3f, 1e-3, 1e-2) == 0,
        "linear dbias");
  free(dx), free(dw), free(db);
  lin_free(&c);
}

static void check_errors(void) {
  float x[6] = {0}, w[6] = {0}, y[4];
  CHECK(be->ops->linear_forward(be, 2, 3, 0, x, w, NULL, y) == REID_EINVAL, "zero out");
  CHECK(strstr(reid_last_error(), "linear_forward") != NULL, "message: %s", reid_last_error());
  CHECK(be->ops->linear_forward(be, 2, 3, 2, x, NULL, NULL, y) == REID_EINVAL, "NULL w");
  CHECK(be->ops->linear_backward(be, -2, 3, 2, x, w, y, x, w, NULL) == REID_EINVAL, "negative b");
  CHECK(strstr(reid_last_error(), "linear_backward") != NULL, "message: %s", reid_last_error());
  CHECK(be->ops->linear_backward(be, 2, 3, 2, x, NULL, y, x, NULL, NULL) == REID_EINVAL,
        "dx needs w");
  CHECK(be->ops->linear_backward(be, 2, 3, 2, x, w, NULL, x, NULL, NULL) == REID_EINVAL, "NULL dy");
}

int main(void) {
  if (reid_backend_create("cpu", 0, &be) != REID_OK) {
    fprintf(stderr, "cpu backend: %s\n", reid_last_error());
    return 1;
  }
  test_rng rng = test_rng_make(7);
  check_reference(&rng, 1, 1, 1);
  check_reference(&rng, 3, 5, 4);
  check_reference(&rng, 37, 53, 29);
  check_reference(&rng, 7, 600, 131);   /* several depth slices */
  check_reference(&rng, 200, 300, 141); /* several row and column blocks */
  check_reference(&rng, 64, 2048, 75);  /* the embedding-head shape, fewer classes */
  check_gradients(&rng, 3, 5, 4);
  check_gradients(&rng, 7, 9, 11);
  check_errors();
  reid_backend_destroy(be);
  return test_finish("test_ops_linear");
}
