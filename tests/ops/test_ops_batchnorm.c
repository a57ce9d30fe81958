/* Batch norm of the CPU backend: forward (train and eval) against a double
 * reference, running-statistics update, every gradient by finite differences
 * (BatchNorm2d on an odd shape and BatchNorm1d, hw = 1), argument errors. */
#include "backend.h"
#include "test_util.h"

typedef double (*gc_loss_fn)(void *ctx);
int gradcheck(const char *what, float *p, size_t n, const float *analytic, gc_loss_fn loss,
              void *ctx, float h, double atol, double rtol);
double gc_dot(const float *a, const float *b, size_t n);

static reid_backend *be;

#define EPS      1e-5f
#define MOMENTUM 0.1f

typedef struct {
  int n, c, hw;
  float *x, *gamma, *beta, *rmean, *rvar; /* inputs; running stats [c] */
  float *y, *smean, *sinvstd, *r;         /* outputs, loss weights [n c hw] */
} bn_case;

static bn_case bn_make(test_rng *rng, int n, int c, int hw, float offset, float spread) {
  bn_case b = {.n = n, .c = c, .hw = hw};
  const size_t len = (size_t)n * c * hw;
  b.x = test_alloc(len), b.y = test_alloc(len), b.r = test_alloc(len);
  b.gamma = test_alloc(c), b.beta = test_alloc(c), b.rmean = test_alloc(c), b.rvar = test_alloc(c);
  b.smean = test_alloc(c), b.sinvstd = test_alloc(c);
  test_fill_uniform(rng, b.x, len, offset - spread, offset + spread);
  test_fill_uniform(rng, b.r, len, -1, 1);
  test_fill_uniform(rng, b.gamma, c, 0.5f, 1.5f);
  test_fill_uniform(rng, b.beta, c, -0.5f, 0.5f);
  test_fill_uniform(rng, b.rmean, c, -0.2f, 0.2f);
  test_fill_uniform(rng, b.rvar, c, 0.5f, 2.0f);
  return b;
}

static void bn_free(bn_case *b) {
  free(b->x), free(b->y), free(b->r), free(b->gamma), free(b->beta), free(b->rmean);
  free(b->rvar), free(b->smean), free(b->sinvstd);
}

static size_t at(const bn_case *b, int i, int ch, int j) {
  return ((size_t)i * b->c + ch) * b->hw + j;
}

/* ---- forward against double references ---- */

static void check_forward_train(test_rng *rng, int n, int c, int hw, float offset, float spread) {
  bn_case b = bn_make(rng, n, c, hw, offset, spread);
  float *rm0 = test_alloc(c), *rv0 = test_alloc(c);
  memcpy(rm0, b.rmean, c * sizeof(float));
  memcpy(rv0, b.rvar, c * sizeof(float));
  CHECK_OK(be->ops->batchnorm_forward_train(be, n, c, hw, b.x, b.gamma, b.beta, MOMENTUM, EPS,
                                            b.rmean, b.rvar, b.y, b.smean, b.sinvstd));

  const size_t len = (size_t)n * c * hw;
  float *yref = test_alloc(len), *mref = test_alloc(c), *iref = test_alloc(c);
  float *rmref = test_alloc(c), *rvref = test_alloc(c);
  const double count = (double)n * hw;
  for (int ch = 0; ch < c; ch++) {
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < hw; j++) mean += b.x[at(&b, i, ch, j)];
    mean /= count;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < hw; j++) var += pow(b.x[at(&b, i, ch, j)] - mean, 2);
    var /= count;
    const double invstd = 1 / sqrt(var + EPS);
    mref[ch] = (float)mean, iref[ch] = (float)invstd;
    rmref[ch] = (float)((1 - MOMENTUM) * rm0[ch] + MOMENTUM * mean);
    rvref[ch] = (float)((1 - MOMENTUM) * rv0[ch] + MOMENTUM * var * count / (count - 1));
    for (int i = 0; i < n; i++)
      for (int j = 0; j < hw; j++) {
        const size_t k = at(&b, i, ch, j);
        yref[k] = (float)((b.x[k] - mean) * invstd * b.gamma[ch] + b.beta[ch]);
      }
  }
  char what[96];
  snprintf(what, sizeof what, "train y [%d,%d,%d] offset %g", n, c, hw, offset);
  CHECK_CLOSE(b.y, yref, len, 2e-5, 1e-4, what);
  snprintf(what, sizeof what, "save_mean [%d,%d,%d]", n, c, hw);
  CHECK_CLOSE(b.smean, mref, c, 1e-6, 1e-6, what);
  snprintf(what, sizeof what, "save_invstd [%d,%d,%d]", n, c, hw);
  CHECK_CLOSE(b.sinvstd, iref, c, 1e-6, 1e-5, what);
  snprintf(what, sizeof what, "running_mean [%d,%d,%d]", n, c, hw);
  CHECK_CLOSE(b.rmean, rmref, c, 1e-6, 1e-6, what);
  snprintf(what, sizeof what, "running_var (unbiased) [%d,%d,%d]", n, c, hw);
  CHECK_CLOSE(b.rvar, rvref, c, 1e-6, 1e-5, what);
  free(rm0), free(rv0), free(yref), free(mref), free(iref), free(rmref), free(rvref);
  bn_free(&b);
}

static void check_forward_eval(test_rng *rng, int n, int c, int hw) {
  bn_case b = bn_make(rng, n, c, hw, 0.3f, 1.0f);
  CHECK_OK(be->ops->batchnorm_forward_eval(be, n, c, hw, b.x, b.gamma, b.beta, b.rmean, b.rvar, EPS,
                                           b.y));
  const size_t len = (size_t)n * c * hw;
  float *yref = test_alloc(len);
  for (int i = 0; i < n; i++)
    for (int ch = 0; ch < c; ch++)
      for (int j = 0; j < hw; j++) {
        const size_t k = at(&b, i, ch, j);
        yref[k] =
            (float)((b.x[k] - (double)b.rmean[ch]) / sqrt((double)b.rvar[ch] + EPS) * b.gamma[ch] +
                    b.beta[ch]);
      }
  char what[64];
  snprintf(what, sizeof what, "eval y [%d,%d,%d]", n, c, hw);
  CHECK_CLOSE(b.y, yref, len, 1e-5, 1e-5, what);
  free(yref);
  bn_free(&b);
}

/* ---- gradients ---- */

static double train_loss(void *p) {
  bn_case *b = p;
  CHECK_OK(be->ops->batchnorm_forward_train(be, b->n, b->c, b->hw, b->x, b->gamma, b->beta,
                                            MOMENTUM, EPS, b->rmean, b->rvar, b->y, b->smean,
                                            b->sinvstd));
  return gc_dot(b->y, b->r, (size_t)b->n * b->c * b->hw);
}

static double eval_loss(void *p) {
  bn_case *b = p;
  CHECK_OK(be->ops->batchnorm_forward_eval(be, b->n, b->c, b->hw, b->x, b->gamma, b->beta, b->rmean,
                                           b->rvar, EPS, b->y));
  return gc_dot(b->y, b->r, (size_t)b->n * b->c * b->hw);
}

static void check_gradients(test_rng *rng, int n, int c, int hw) {
  bn_case b = bn_make(rng, n, c, hw, 0.2f, 1.0f);
  const size_t len = (size_t)n * c * hw;
  float *dx = test_alloc(len), *dg = test_alloc(c), *db = test_alloc(c), *dx2 = test_alloc(len);
  char what[64];

  /* training mode */
  train_loss(&b); /* fills save_mean / save_invstd for x */
  CHECK_OK(
      be->ops->batchnorm_backward(be, n, c, hw, b.x, b.gamma, b.smean, b.sinvstd, b.r, dx, dg, db));
  snprintf(what, sizeof what, "bn train dx [%d,%d,%d]", n, c, hw);
  CHECK(gradcheck(what, b.x, len, dx, train_loss, &b, 1e-3f, 1e-3, 1e-2) == 0, "%s", what);
  snprintf(what, sizeof what, "bn train dgamma [%d,%d,%d]", n, c, hw);
  CHECK(gradcheck(what, b.gamma, c, dg, train_loss, &b, 1e-3f, 1e-3, 1e-2) == 0, "%s", what);
  snprintf(what, sizeof what, "bn train dbeta [%d,%d,%d]", n, c, hw);
  CHECK(gradcheck(what, b.beta, c, db, train_loss, &b, 1e-3f, 1e-3, 1e-2) == 0, "%s", what);

  /* NULL parameter gradients leave dx unchanged */
  train_loss(&b);
  CHECK_OK(be->ops->batchnorm_backward(be, n, c, hw, b.x, b.gamma, b.smean, b.sinvstd, b.r, dx2,
                                       NULL, NULL));
  CHECK_CLOSE(dx2, dx, len, 1e-30, 0, "bn train dx without dgamma/dbeta");

  /* eval mode */
  CHECK_OK(be->ops->batchnorm_backward_eval(be, n, c, hw, b.x, b.gamma, b.rmean, b.rvar, EPS, b.r,
                                            dx, dg, db));
  snprintf(what, sizeof what, "bn eval dx [%d,%d,%d]", n, c, hw);
  CHECK(gradcheck(what, b.x, len, dx, eval_loss, &b, 1e-3f, 1e-3, 1e-2) == 0, "%s", what);
  snprintf(what, sizeof what, "bn eval dgamma [%d,%d,%d]", n, c, hw);
  CHECK(gradcheck(what, b.gamma, c, dg, eval_loss, &b, 1e-3f, 1e-3, 1e-2) == 0, "%s", what);
  snprintf(what, sizeof what, "bn eval dbeta [%d,%d,%d]", n, c, hw);
  CHECK(gradcheck(what, b.beta, c, db, eval_loss, &b, 1e-3f, 1e-3, 1e-2) == 0, "%s", what);
  CHECK_OK(be->ops->batchnorm_backward_eval(be, n, c, hw, NULL, b.gamma, NULL, b.rvar, EPS, b.r,
                                            dx2, NULL, NULL));
  CHECK_CLOSE(dx2, dx, len, 1e-30, 0, "bn eval dx without x / dgamma");

  free(dx), free(dg), free(db), free(dx2);
  bn_free(&b);
}

static void check_errors(void) {
  float v[8] = {1, 2, 3, 4, 5, 6, 7, 8}, s[8], t[8];
  float g[2] = {1, 1}, bt[2] = {0, 0}, rm[2] = {0, 0}, rv[2] = {1, 1};
  reid_status st =
      be->ops->batchnorm_forward_train(be, 1, 2, 1, v, g, bt, 0.1f, EPS, rm, rv, s, t, t + 2);
  CHECK(st == REID_EINVAL, "n * hw == 1 in training must fail");
  CHECK(strstr(reid_last_error(), "Expected more than 1 value per channel when training"),
        "message: %s", reid_last_error());
  CHECK_OK(be->ops->batchnorm_forward_eval(be, 1, 2, 1, v, g, bt, rm, rv, EPS, s));
  CHECK(be->ops->batchnorm_forward_train(be, -1, 2, 1, v, g, bt, 0.1f, EPS, rm, rv, s, t, t + 2) ==
            REID_EINVAL,
        "negative n");
  CHECK(be->ops->batchnorm_forward_train(be, 2, 2, 2, v, NULL, bt, 0.1f, EPS, rm, rv, s, t,
                                         t + 2) == REID_EINVAL,
        "NULL gamma");
  CHECK(strstr(reid_last_error(), "batchnorm_forward_train") != NULL, "message: %s",
        reid_last_error());
  CHECK(be->ops->batchnorm_forward_eval(be, 2, 0, 2, v, g, bt, rm, rv, EPS, s) == REID_EINVAL,
        "zero channels");
  CHECK(be->ops->batchnorm_backward(be, 2, 2, 2, v, g, rm, rv, NULL, s, NULL, NULL) == REID_EINVAL,
        "NULL dy");
  CHECK(strstr(reid_last_error(), "batchnorm_backward") != NULL, "message: %s", reid_last_error());
  CHECK(be->ops->batchnorm_backward_eval(be, 2, 2, -2, v, g, rm, rv, EPS, v, s, NULL, NULL) ==
            REID_EINVAL,
        "negative hw");
}

int main(void) {
  if (reid_backend_create("cpu", 0, &be) != REID_OK) {
    fprintf(stderr, "cpu backend: %s\n", reid_last_error());
    return 1;
  }
  test_rng rng = test_rng_make(5);
  check_forward_train(&rng, 3, 5, 7, 0.0f, 1.0f);
  check_forward_train(&rng, 7, 5, 1, 0.5f, 2.0f); /* BatchNorm1d */
  check_forward_train(&rng, 2, 3, 33, -1.0f, 0.1f);
  check_forward_train(&rng, 4, 3, 25000, 100.0f, 1.0f); /* 100k values, |mean| >> std */
  check_forward_train(&rng, 2, 67, 129, 0.0f, 3.0f);    /* more channels than threads */
  check_forward_eval(&rng, 3, 5, 7);
  check_forward_eval(&rng, 9, 4, 1);
  check_gradients(&rng, 3, 5, 7);
  check_gradients(&rng, 7, 5, 1); /* BatchNorm1d */
  check_gradients(&rng, 1, 3, 2); /* two values per channel */
  check_errors();
  reid_backend_destroy(be);
  return test_finish("test_ops_batchnorm");
}
