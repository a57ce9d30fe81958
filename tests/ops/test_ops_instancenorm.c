/* Instance norm and the channel block copy (concat / slice) of the CPU
 * backend: forward against a double reference, every gradient by finite
 * differences (an odd plane, planes of one sample and of several), the
 * concat/split round trip, argument errors. */
#include "backend.h"
#include "test_util.h"

typedef double (*gc_loss_fn)(void *ctx);
int gradcheck(const char *what, float *p, size_t n, const float *analytic, gc_loss_fn loss,
              void *ctx, float h, double atol, double rtol);
double gc_dot(const float *a, const float *b, size_t n);

static reid_backend *be;

#define EPS 1e-5f

typedef struct {
  int n, c, hw;
  float *x, *gamma, *beta, *y, *smean, *sinvstd, *r;
} in_case;

static double in_loss(void *p) {
  in_case *b = p;
  if (be->ops->instancenorm_forward(be, b->n, b->c, b->hw, b->x, b->gamma, b->beta, EPS, b->y,
                                    b->smean, b->sinvstd) != REID_OK)
    return NAN;
  return gc_dot(b->y, b->r, (size_t)b->n * b->c * b->hw);
}

static void check_instancenorm(test_rng *rng, int n, int c, int hw, float offset) {
  in_case b = {.n = n, .c = c, .hw = hw};
  const size_t len = (size_t)n * c * hw, planes = (size_t)n * c;
  b.x = test_alloc(len), b.y = test_alloc(len), b.r = test_alloc(len);
  b.gamma = test_alloc(c), b.beta = test_alloc(c);
  b.smean = test_alloc(planes), b.sinvstd = test_alloc(planes);
  test_fill_uniform(rng, b.x, len, offset - 1.5f, offset + 1.5f);
  test_fill_uniform(rng, b.r, len, -1, 1);
  test_fill_uniform(rng, b.gamma, c, 0.5f, 1.5f);
  test_fill_uniform(rng, b.beta, c, -0.5f, 0.5f);

  /* forward against double statistics per plane */
  in_loss(&b);
  double worst = 0;
  for (size_t p = 0; p < planes; p++) {
    const float *xp = b.x + p * hw;
    double m = 0, v = 0;
    for (int j = 0; j < hw; j++) m += xp[j];
    m /= hw;
    for (int j = 0; j < hw; j++) v += (xp[j] - m) * (xp[j] - m);
    v /= hw;
    const int ch = (int)(p % c);
    for (int j = 0; j < hw; j++) {
      double ref = (xp[j] - m) / sqrt(v + EPS) * b.gamma[ch] + b.beta[ch];
      worst = fmax(worst, fabs(ref - b.y[p * hw + j]));
    }
    CHECK(fabs(b.smean[p] - m) < 1e-5 * (1 + fabs(m)), "saved mean of plane %zu", p);
  }
  CHECK(worst < 1e-4, "instance norm forward %dx%dx%d: max error %.3g", n, c, hw, worst);

  float *dx = test_alloc(len), *dg = test_alloc(c), *db = test_alloc(c);
  CHECK_OK(be->ops->instancenorm_backward(be, n, c, hw, b.x, b.gamma, b.smean, b.sinvstd, b.r, dx,
                                          dg, db));
  char what[96];
  /* the loss sums len float outputs, each rounded (~6e-8 relative): over 1800 of them that
   * noise divided by a 2e-3 step reaches 2e-3 in the numeric dx (it failed the sanitizer
   * build's different rounding once); a 1e-2 step cuts it tenfold, and the normalisation's
   * curvature over a 300-wide plane keeps the truncation error below that */
  const float step = hw > 100 ? 1e-2f : 1e-3f;
  snprintf(what, sizeof what, "instancenorm dx %dx%dx%d", n, c, hw);
  CHECK(gradcheck(what, b.x, len, dx, in_loss, &b, step, 1e-3, 1e-2) == 0, "%s", what);
  snprintf(what, sizeof what, "instancenorm dgamma %dx%dx%d", n, c, hw);
  CHECK(gradcheck(what, b.gamma, c, dg, in_loss, &b, 1e-3f, 1e-3, 1e-2) == 0, "%s", what);
  snprintf(what, sizeof what, "instancenorm dbeta %dx%dx%d", n, c, hw);
  CHECK(gradcheck(what, b.beta, c, db, in_loss, &b, 1e-3f, 1e-3, 1e-2) == 0, "%s", what);
  /* parts on request only */
  float *dx2 = test_alloc(len);
  CHECK_OK(be->ops->instancenorm_backward(be, n, c, hw, b.x, b.gamma, b.smean, b.sinvstd, b.r, dx2,
                                          NULL, NULL));
  CHECK_CLOSE(dx2, dx, len, 1e-12, 0, "dx alone");
  free(dx2), free(dx), free(dg), free(db);
  free(b.x), free(b.y), free(b.r), free(b.gamma), free(b.beta), free(b.smean), free(b.sinvstd);
}

/* concat of [n, 3, hw] and [n, 5, hw], split back, and a slice */
static void check_channel_copy(test_rng *rng) {
  const int n = 3, hw = 7, ca = 3, cb = 5, cy = ca + cb;
  float *a = test_alloc((size_t)n * ca * hw), *b = test_alloc((size_t)n * cb * hw);
  float *y = test_alloc((size_t)n * cy * hw), *a2 = test_alloc((size_t)n * ca * hw);
  float *b2 = test_alloc((size_t)n * cb * hw), *s = test_alloc((size_t)n * 2 * hw);
  test_fill_uniform(rng, a, (size_t)n * ca * hw, -1, 1);
  test_fill_uniform(rng, b, (size_t)n * cb * hw, -1, 1);
  CHECK_OK(be->ops->channel_copy(be, n, hw, ca, a, ca, 0, y, cy, 0));
  CHECK_OK(be->ops->channel_copy(be, n, hw, cb, b, cb, 0, y, cy, ca));
  int ok = 1;
  for (int i = 0; i < n; i++)
    for (int ch = 0; ch < cy; ch++)
      for (int j = 0; j < hw; j++) {
        float want =
            ch < ca ? a[((size_t)i * ca + ch) * hw + j] : b[((size_t)i * cb + ch - ca) * hw + j];
        ok &= y[((size_t)i * cy + ch) * hw + j] == want;
      }
  CHECK(ok, "concat layout [n, a | b, hw]");
  CHECK_OK(be->ops->channel_copy(be, n, hw, ca, y, cy, 0, a2, ca, 0));
  CHECK_OK(be->ops->channel_copy(be, n, hw, cb, y, cy, ca, b2, cb, 0));
  CHECK_CLOSE(a2, a, (size_t)n * ca * hw, 1e-12, 0, "split: first block");
  CHECK_CLOSE(b2, b, (size_t)n * cb * hw, 1e-12, 0, "split: second block");
  CHECK_OK(be->ops->channel_copy(be, n, hw, 2, y, cy, 4, s, 2, 0)); /* channels 4, 5 = b's 1, 2 */
  ok = 1;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < 2 * hw; j++)
      ok &= s[(size_t)i * 2 * hw + j] == b[((size_t)i * cb + 1) * hw + j];
  CHECK(ok, "slice of channels 4..5");
  CHECK(be->ops->channel_copy(be, n, hw, 4, y, cy, 5, s, 4, 0) == REID_EINVAL,
        "a block past the source's channels");
  CHECK(be->ops->channel_copy(be, n, hw, 2, y, cy, 0, s, 2, 1) == REID_EINVAL,
        "a block past the destination's channels");
  CHECK(be->ops->channel_copy(be, n, hw, 2, NULL, cy, 0, s, 2, 0) == REID_EINVAL, "NULL source");
  free(a), free(b), free(y), free(a2), free(b2), free(s);
}

int main(void) {
  CHECK_OK(reid_backend_create("cpu", 0, &be));
  test_rng rng = test_rng_make(3);
  check_instancenorm(&rng, 1, 2, 13, 0.0f);  /* one sample, an odd plane */
  check_instancenorm(&rng, 3, 4, 10, 2.0f);  /* several samples, shifted values */
  check_instancenorm(&rng, 2, 3, 300, 0.5f); /* planes longer than a chunk */
  check_channel_copy(&rng);
  float x[4] = {0}, y[4], m[2], v[2], g[2] = {1, 1}, bb[2] = {0, 0};
  CHECK(be->ops->instancenorm_forward(be, 1, 2, 0, x, g, bb, EPS, y, m, v) == REID_EINVAL,
        "empty plane refused");
  CHECK(be->ops->instancenorm_forward(be, 1, 2, 2, x, g, bb, -1.0f, y, m, v) == REID_EINVAL,
        "negative eps refused");
  CHECK(be->ops->instancenorm_forward(be, 1, 2, 2, x, NULL, bb, EPS, y, m, v) == REID_EINVAL,
        "NULL gamma refused");
  /* a constant plane: var 0, y = beta */
  CHECK_OK(be->ops->instancenorm_forward(be, 1, 2, 2, x, g, bb, EPS, y, m, v));
  CHECK(y[0] == 0.0f && y[3] == 0.0f, "constant plane normalises to beta");
  reid_backend_destroy(be);
  return test_finish("ops_instancenorm");
}
