/* Softmax cross-entropy (label smoothing 0 and 0.1) and L2 normalisation of
 * the CPU backend: forward against double references (including logits that
 * would overflow a naive exp), gradients by finite differences, the zero
 * vector, argument errors. */
#include "backend.h"
#include "test_util.h"

typedef double (*gc_loss_fn)(void *ctx);
int gradcheck(const char *what, float *p, size_t n, const float *analytic, gc_loss_fn loss,
              void *ctx, float h, double atol, double rtol);
double gc_dot(const float *a, const float *b, size_t n);

static reid_backend *be;

typedef struct {
  int b, classes;
  float smoothing;
  float *logits, *loss, *probs, *r;
  int32_t *labels;
} xent_ctx;

static double xent_loss(void *p) {
  xent_ctx *c = p;
  CHECK_OK(be->ops->softmax_xent_forward(be, c->b, c->classes, c->logits, c->labels, c->smoothing,
                                         c->loss, c->probs));
  return gc_dot(c->loss, c->r, c->b);
}

static void check_xent(test_rng *rng, int b, int classes, float smoothing, float offset,
                       float spread) {
  const size_t len = (size_t)b * classes;
  xent_ctx c = {b,
                classes,
                smoothing,
                test_alloc(len),
                test_alloc(b),
                test_alloc(len),
                test_alloc(b),
                calloc(b, sizeof(int32_t))};
  float *lref = test_alloc(b), *pref = test_alloc(len), *dz = test_alloc(len);
  test_fill_uniform(rng, c.logits, len, offset - spread, offset + spread);
  test_fill_uniform(rng, c.r, b, 0.2f, 1.5f);
  for (int i = 0; i < b; i++) c.labels[i] = test_rng_int(rng, 0, classes - 1);

  xent_loss(&c);
  for (int i = 0; i < b; i++) {
    const float *z = c.logits + (size_t)i * classes;
    double zmax = z[0], s = 0, loss = 0;
    for (int j = 1; j < classes; j++) zmax = fmax(zmax, z[j]);
    for (int j = 0; j < classes; j++) s += exp(z[j] - zmax);
    const double lse = zmax + log(s);
    for (int j = 0; j < classes; j++) {
      const double t = (j == c.labels[i] ? 1.0 - smoothing : 0.0) + smoothing / classes;
      loss -= t * (z[j] - lse);
      pref[(size_t)i * classes + j] = (float)exp(z[j] - lse);
    }
    lref[i] = (float)loss;
  }
  char what[96];
  snprintf(what, sizeof what, "xent loss b=%d C=%d eps=%g offset=%g", b, classes, smoothing,
           offset);
  CHECK_CLOSE(c.loss, lref, b, 1e-5, 1e-5, what);
  snprintf(what, sizeof what, "xent probs b=%d C=%d eps=%g offset=%g", b, classes, smoothing,
           offset);
  CHECK_CLOSE(c.probs, pref, len, 1e-7, 1e-5, what);

  CHECK_OK(be->ops->softmax_xent_backward(be, b, classes, c.probs, c.labels, smoothing, c.r, dz));
  if (spread <= 3.0f) { /* finite differences of a loss ~ offset need a small offset */
    snprintf(what, sizeof what, "xent dlogits b=%d C=%d eps=%g", b, classes, smoothing);
    CHECK(gradcheck(what, c.logits, len, dz, xent_loss, &c, 1e-3f, 1e-3, 1e-2) == 0, "%s", what);
  }
  free(c.logits), free(c.loss), free(c.probs), free(c.r), free(c.labels);
  free(lref), free(pref), free(dz);
}

typedef struct {
  int b, d;
  float *x, *y, *norm, *r;
} l2_ctx;

static double l2_loss(void *p) {
  l2_ctx *c = p;
  CHECK_OK(be->ops->l2norm_forward(be, c->b, c->d, c->x, c->y, c->norm));
  return gc_dot(c->y, c->r, (size_t)c->b * c->d);
}

static void check_l2norm(test_rng *rng) {
  const int b = 4, d = 9;
  l2_ctx c = {b, d, test_alloc(b * d), test_alloc(b * d), test_alloc(b), test_alloc(b * d)};
  float *yref = test_alloc(b * d), *nref = test_alloc(b), *dx = test_alloc(b * d);
  test_fill_uniform(rng, c.x, b * d, -1, 1);
  test_fill_uniform(rng, c.r, b * d, -1, 1);
  l2_loss(&c);
  for (int i = 0; i < b; i++) {
    double s = 0;
    for (int j = 0; j < d; j++) s += (double)c.x[i * d + j] * c.x[i * d + j];
    nref[i] = (float)sqrt(s);
    for (int j = 0; j < d; j++) yref[i * d + j] = (float)(c.x[i * d + j] / sqrt(s));
  }
  CHECK_CLOSE(c.y, yref, b * d, 1e-7, 1e-6, "l2norm y");
  CHECK_CLOSE(c.norm, nref, b, 1e-7, 1e-6, "l2norm norm");
  CHECK_OK(be->ops->l2norm_backward(be, b, d, c.x, c.norm, c.r, dx));
  CHECK(gradcheck("l2norm dx", c.x, b * d, dx, l2_loss, &c, 1e-3f, 1e-3, 1e-2) == 0, "l2norm dx");

  /* a zero row: y = 0, norm = 0, the divisor is the constant eps: dx = dy / eps */
  for (int j = 0; j < d; j++) c.x[j] = 0.0f;
  l2_loss(&c);
  int zero = c.norm[0] == 0.0f;
  for (int j = 0; j < d; j++) zero &= c.y[j] == 0.0f;
  CHECK(zero, "l2norm of a zero row");
  CHECK_OK(be->ops->l2norm_backward(be, b, d, c.x, c.norm, c.r, dx));
  int ok = 1;
  for (int j = 0; j < d; j++) ok &= fabs(dx[j] - c.r[j] / 1e-12) <= 1e-6 * fabs(c.r[j] / 1e-12);
  CHECK(ok, "l2norm backward of a zero row is dy / eps");
  free(c.x), free(c.y), free(c.norm), free(c.r), free(yref), free(nref), free(dx);
}

static void check_errors(void) {
  float z[6] = {0}, loss[2], probs[6], dz[6];
  int32_t labels[2] = {0, 3};
  CHECK(be->ops->softmax_xent_forward(be, 2, 3, z, labels, 0.0f, loss, probs) == REID_EINVAL,
        "label out of range");
  CHECK(strstr(reid_last_error(), "softmax_xent_forward") != NULL, "message: %s",
        reid_last_error());
  labels[1] = -1;
  CHECK(be->ops->softmax_xent_backward(be, 2, 3, probs, labels, 0.0f, loss, dz) == REID_EINVAL,
        "negative label");
  CHECK(strstr(reid_last_error(), "softmax_xent_backward") != NULL, "message: %s",
        reid_last_error());
  labels[1] = 2;
  CHECK(be->ops->softmax_xent_forward(be, 2, 3, z, labels, 1.5f, loss, probs) == REID_EINVAL,
        "smoothing > 1");
  CHECK(be->ops->softmax_xent_forward(be, 2, 3, z, labels, 0.1f, loss, NULL) == REID_EINVAL,
        "NULL probs");
  CHECK(be->ops->softmax_xent_forward(be, 0, 3, z, labels, 0.1f, loss, probs) == REID_EINVAL,
        "zero batch");
  CHECK(be->ops->l2norm_forward(be, 2, -3, z, probs, loss) == REID_EINVAL, "negative d");
  CHECK(strstr(reid_last_error(), "l2norm_forward") != NULL, "message: %s", reid_last_error());
  CHECK(be->ops->l2norm_backward(be, 2, 3, z, NULL, probs, dz) == REID_EINVAL, "NULL norm");
}

int main(void) {
  if (reid_backend_create("cpu", 0, &be) != REID_OK) {
    fprintf(stderr, "cpu backend: %s\n", reid_last_error());
    return 1;
  }
  test_rng rng = test_rng_make(13);
  check_xent(&rng, 5, 7, 0.0f, 0.0f, 2.0f);
  check_xent(&rng, 5, 7, 0.1f, 0.0f, 2.0f);
  check_xent(&rng, 3, 1, 0.1f, 0.0f, 1.0f);      /* one class */
  check_xent(&rng, 9, 751, 0.1f, 0.0f, 8.0f);    /* Market-1501 identities */
  check_xent(&rng, 4, 13, 0.1f, 1000.0f, 60.0f); /* exp(1000) would overflow */
  check_xent(&rng, 4, 13, 0.0f, -1000.0f, 60.0f);
  check_l2norm(&rng);
  check_errors();
  reid_backend_destroy(be);
  return test_finish("test_ops_loss");
}
