/* Elementwise ops of the CPU backend: values, aliasing, the parallel path,
 * relu/add gradients by finite differences, argument errors. */
#include "backend.h"
#include "test_util.h"

typedef double (*gc_loss_fn)(void *ctx);
int gradcheck(const char *what, float *p, size_t n, const float *analytic, gc_loss_fn loss,
              void *ctx, float h, double atol, double rtol);
double gc_dot(const float *a, const float *b, size_t n);

static reid_backend *be;

typedef struct {
  size_t n;
  float *a, *b, *y, *r;
} ew_ctx;

static double relu_loss(void *p) {
  ew_ctx *c = p;
  CHECK_OK(be->ops->relu_forward(be, c->n, c->a, c->y));
  return gc_dot(c->y, c->r, c->n);
}

static double add_loss(void *p) {
  ew_ctx *c = p;
  CHECK_OK(be->ops->add(be, c->n, c->a, c->b, c->y));
  return gc_dot(c->y, c->r, c->n);
}

static void test_values(test_rng *rng) {
  const size_t n = ((size_t)1 << 16) + 3; /* crosses the parallel threshold */
  float *x = test_alloc(n), *y = test_alloc(n), *dy = test_alloc(n), *dx = test_alloc(n);
  float *ref = test_alloc(n), *b = test_alloc(n);
  test_fill_uniform(rng, x, n, -1, 1);
  test_fill_uniform(rng, dy, n, -1, 1);
  test_fill_uniform(rng, b, n, -2, 2);

  CHECK_OK(be->ops->relu_forward(be, n, x, y));
  for (size_t i = 0; i < n; i++) ref[i] = x[i] > 0 ? x[i] : 0;
  CHECK_CLOSE(y, ref, n, 1e-30, 0, "relu_forward");

  CHECK_OK(be->ops->relu_backward(be, n, y, dy, dx));
  for (size_t i = 0; i < n; i++) ref[i] = y[i] > 0 ? dy[i] : 0;
  CHECK_CLOSE(dx, ref, n, 1e-30, 0, "relu_backward");

  /* in place: dx aliases dy, y aliases x */
  memcpy(dx, dy, n * sizeof *dx);
  CHECK_OK(be->ops->relu_backward(be, n, y, dx, dx));
  CHECK_CLOSE(dx, ref, n, 1e-30, 0, "relu_backward in place");
  memcpy(y, x, n * sizeof *y);
  CHECK_OK(be->ops->relu_forward(be, n, y, y));
  for (size_t i = 0; i < n; i++) ref[i] = x[i] > 0 ? x[i] : 0;
  CHECK_CLOSE(y, ref, n, 1e-30, 0, "relu_forward in place");

  float special[3] = {NAN, -0.5f, 0.0f}, out[3];
  CHECK_OK(be->ops->relu_forward(be, 3, special, out));
  CHECK(isnan(out[0]) && out[1] == 0.0f && out[2] == 0.0f, "relu(NaN, -0.5, 0) = %g %g %g", out[0],
        out[1], out[2]);

  CHECK_OK(be->ops->add(be, n, x, b, y));
  for (size_t i = 0; i < n; i++) ref[i] = x[i] + b[i];
  CHECK_CLOSE(y, ref, n, 1e-30, 0, "add");
  memcpy(y, x, n * sizeof *y);
  CHECK_OK(be->ops->add(be, n, y, b, y));
  CHECK_CLOSE(y, ref, n, 1e-30, 0, "add in place");

  memcpy(y, b, n * sizeof *y);
  CHECK_OK(be->ops->accumulate(be, n, -0.75f, x, y));
  for (size_t i = 0; i < n; i++) ref[i] = b[i] + -0.75f * x[i];
  CHECK_CLOSE(y, ref, n, 1e-7, 1e-6, "accumulate");

  memcpy(y, x, n * sizeof *y);
  CHECK_OK(be->ops->scale(be, n, 3.0f, y));
  for (size_t i = 0; i < n; i++) ref[i] = 3.0f * x[i];
  CHECK_CLOSE(y, ref, n, 1e-30, 0, "scale");

  free(x), free(y), free(dy), free(dx), free(ref), free(b);
}

static void test_gradients(test_rng *rng) {
  const size_t n = 37;
  ew_ctx c = {n, test_alloc(n), test_alloc(n), test_alloc(n), test_alloc(n)};
  float *da = test_alloc(n);
  for (size_t i = 0; i < n; i++) { /* keep |x| >= 0.05 so +-h never crosses the kink */
    const float v = test_rng_uniform(rng, 0.05f, 1.0f);
    c.a[i] = test_rng_u64(rng) & 1 ? v : -v;
  }
  test_fill_uniform(rng, c.b, n, -1, 1);
  test_fill_uniform(rng, c.r, n, -1, 1);

  CHECK_OK(be->ops->relu_forward(be, n, c.a, c.y));
  CHECK_OK(be->ops->relu_backward(be, n, c.y, c.r, da));
  CHECK(gradcheck("relu dx", c.a, n, da, relu_loss, &c, 1e-3f, 1e-3, 1e-2) == 0, "relu gradient");

  /* add: dy flows unchanged to both inputs */
  CHECK(gradcheck("add da", c.a, n, c.r, add_loss, &c, 1e-3f, 1e-3, 1e-2) == 0, "add gradient a");
  CHECK(gradcheck("add db", c.b, n, c.r, add_loss, &c, 1e-3f, 1e-3, 1e-2) == 0, "add gradient b");
  free(c.a), free(c.b), free(c.y), free(c.r), free(da);
}

static void test_errors(void) {
  float x[4] = {0};
  reid_clear_error();
  CHECK(be->ops->relu_forward(be, 4, NULL, x) == REID_EINVAL, "relu_forward NULL x");
  CHECK(strstr(reid_last_error(), "relu_forward") != NULL, "message names the op: %s",
        reid_last_error());
  CHECK(be->ops->relu_backward(be, 4, x, NULL, x) == REID_EINVAL, "relu_backward NULL dy");
  CHECK(be->ops->add(be, 4, x, NULL, x) == REID_EINVAL, "add NULL b");
  CHECK(strstr(reid_last_error(), "add") != NULL, "message names the op: %s", reid_last_error());
  CHECK(be->ops->accumulate(be, 4, 1.0f, x, NULL) == REID_EINVAL, "accumulate NULL y");
  CHECK(be->ops->scale(be, 4, 1.0f, NULL) == REID_EINVAL, "scale NULL x");
  CHECK_OK(be->ops->add(be, 0, NULL, NULL, NULL)); /* empty is fine */
}

int main(void) {
  if (reid_backend_create("cpu", 0, &be) != REID_OK) {
    fprintf(stderr, "cpu backend: %s\n", reid_last_error());
    return 1;
  }
  test_rng rng = test_rng_make(11);
  test_values(&rng);
  test_gradients(&rng);
  test_errors();
  reid_backend_destroy(be);
  return test_finish("test_ops_elementwise");
}
