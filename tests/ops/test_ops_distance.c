/* Pairwise distances of the CPU backend (sqeuclidean, euclidean, cosine):
 * forward against a double reference on shapes that cut through the block
 * and tile edges, da and db by finite differences for every kind, zero rows,
 * argument errors. */
#include "backend.h"
#include "test_util.h"

typedef double (*gc_loss_fn)(void *ctx);
int gradcheck(const char *what, float *p, size_t n, const float *analytic, gc_loss_fn loss,
              void *ctx, float h, double atol, double rtol);
double gc_dot(const float *a, const float *b, size_t n);

static reid_backend *be;
static const char *kind_name[] = {"sqeuclidean", "euclidean", "cosine"};

static double reference(reid_distance_kind kind, int d, const float *a, const float *b) {
  double sq = 0, ab = 0, aa = 0, bb = 0;
  for (int k = 0; k < d; k++) {
    sq += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
    ab += (double)a[k] * b[k], aa += (double)a[k] * a[k], bb += (double)b[k] * b[k];
  }
  switch (kind) {
  case REID_DIST_SQEUCLIDEAN: return sq;
  case REID_DIST_EUCLIDEAN: return sqrt(sq + 1e-12);
  case REID_DIST_COSINE: return 1 - ab / (fmax(sqrt(aa), 1e-12) * fmax(sqrt(bb), 1e-12));
  }
  return NAN;
}

static void check_forward(test_rng *rng, reid_distance_kind kind, int m, int n, int d) {
  float *a = test_alloc((size_t)m * d), *b = test_alloc((size_t)n * d);
  float *dist = test_alloc((size_t)m * n), *ref = test_alloc((size_t)m * n);
  test_fill_uniform(rng, a, (size_t)m * d, -1, 1);
  test_fill_uniform(rng, b, (size_t)n * d, -1, 1);
  if (m > 2) memcpy(a + d, b, d * sizeof(float));     /* a pair at distance 0 */
  if (m > 3) memset(a + 2 * d, 0, d * sizeof(float)); /* a zero row */
  CHECK_OK(be->ops->distance_forward(be, kind, m, n, d, a, b, dist));
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++)
      ref[(size_t)i * n + j] = (float)reference(kind, d, a + (size_t)i * d, b + (size_t)j * d);
  char what[80];
  snprintf(what, sizeof what, "%s forward m=%d n=%d d=%d", kind_name[kind], m, n, d);
  /* sums of d terms of size ~1: float error ~ 1e-7 sqrt(d) relative to the terms */
  CHECK_CLOSE(dist, ref, (size_t)m * n, 2e-6 * sqrt(d), 1e-5, what);
  free(a), free(b), free(dist), free(ref);
}

typedef struct {
  reid_distance_kind kind;
  int m, n, d;
  float *a, *b, *dist, *r;
} dist_ctx;

static double dist_loss(void *p) {
  dist_ctx *c = p;
  CHECK_OK(be->ops->distance_forward(be, c->kind, c->m, c->n, c->d, c->a, c->b, c->dist));
  return gc_dot(c->dist, c->r, (size_t)c->m * c->n);
}

static void check_gradients(test_rng *rng, reid_distance_kind kind, int m, int n, int d) {
  dist_ctx c = {kind,
                m,
                n,
                d,
                test_alloc((size_t)m * d),
                test_alloc((size_t)n * d),
                test_alloc((size_t)m * n),
                test_alloc((size_t)m * n)};
  float *da = test_alloc((size_t)m * d), *db = test_alloc((size_t)n * d);
  float *da2 = test_alloc((size_t)m * d);
  test_fill_uniform(rng, c.a, (size_t)m * d, -1, 1);
  test_fill_uniform(rng, c.b, (size_t)n * d, -1, 1);
  test_fill_uniform(rng, c.r, (size_t)m * n, -1, 1);
  dist_loss(&c);
  CHECK_OK(be->ops->distance_backward(be, kind, m, n, d, c.a, c.b, c.dist, c.r, da, db));
  char what[80];
  snprintf(what, sizeof what, "%s da m=%d n=%d d=%d", kind_name[kind], m, n, d);
  CHECK(gradcheck(what, c.a, (size_t)m * d, da, dist_loss, &c, 1e-3f, 1e-3, 1e-2) == 0, "%s", what);
  snprintf(what, sizeof what, "%s db m=%d n=%d d=%d", kind_name[kind], m, n, d);
  CHECK(gradcheck(what, c.b, (size_t)n * d, db, dist_loss, &c, 1e-3f, 1e-3, 1e-2) == 0, "%s", what);
  /* db = NULL computes da alone, unchanged */
  dist_loss(&c);
  CHECK_OK(be->ops->distance_backward(be, kind, m, n, d, c.a, c.b, c.dist, c.r, da2, NULL));
  snprintf(what, sizeof what, "%s da alone", kind_name[kind]);
  CHECK_CLOSE(da2, da, (size_t)m * d, 1e-30, 0, what);
  free(c.a), free(c.b), free(c.dist), free(c.r), free(da), free(db), free(da2);
}

/* cosine against a zero row: distance 1, and the clamp makes the zero row's
 * gradient b / (eps |b|) ... while the other side gets none */
static void check_cosine_zero_row(void) {
  float a[3] = {0, 0, 0}, b[3] = {3, 0, 4}, dist, g = 1.0f, da[3], db[3];
  CHECK_OK(be->ops->distance_forward(be, REID_DIST_COSINE, 1, 1, 3, a, b, &dist));
  CHECK(dist == 1.0f, "cosine to a zero row is 1, got %g", dist);
  CHECK_OK(be->ops->distance_backward(be, REID_DIST_COSINE, 1, 1, 3, a, b, &dist, &g, da, db));
  /* d/da [1 - a.b / (eps |b|)] = -b / (eps |b|) = -b / (5 eps) */
  const float expect_da[3] = {-3.0f / 5e-12f, 0.0f, -4.0f / 5e-12f}, zero[3] = {0, 0, 0};
  CHECK_CLOSE(da, expect_da, 3, 1e-30, 1e-5, "cosine da at a zero row");
  CHECK_CLOSE(db, zero, 3, 1e-30, 0, "cosine db against a zero row");
}

/* identical rows: sqeuclidean 0, euclidean sqrt(1e-12) = 1e-6, cosine 0 */
static void check_identical_rows(void) {
  const float a[4] = {0.5f, -2.0f, 1.0f, 3.0f};
  float dist;
  CHECK_OK(be->ops->distance_forward(be, REID_DIST_SQEUCLIDEAN, 1, 1, 4, a, a, &dist));
  CHECK(dist == 0.0f, "sqeuclidean(a, a) = %g", dist);
  CHECK_OK(be->ops->distance_forward(be, REID_DIST_EUCLIDEAN, 1, 1, 4, a, a, &dist));
  CHECK(fabs(dist - 1e-6) <= 1e-9, "euclidean(a, a) = %g, expected sqrt(1e-12)", dist);
  CHECK_OK(be->ops->distance_forward(be, REID_DIST_COSINE, 1, 1, 4, a, a, &dist));
  CHECK(fabs(dist) <= 1e-6, "cosine(a, a) = %g", dist);
}

static void check_errors(void) {
  float a[4] = {0}, d[4];
  CHECK(be->ops->distance_forward(be, (reid_distance_kind)7, 2, 2, 2, a, a, d) == REID_EINVAL,
        "unknown kind");
  CHECK(strstr(reid_last_error(), "distance_forward") != NULL, "message: %s", reid_last_error());
  CHECK(be->ops->distance_forward(be, REID_DIST_COSINE, 2, 0, 2, a, a, d) == REID_EINVAL, "zero n");
  CHECK(be->ops->distance_forward(be, REID_DIST_COSINE, 2, 2, 2, a, NULL, d) == REID_EINVAL,
        "NULL b");
  CHECK(be->ops->distance_backward(be, REID_DIST_EUCLIDEAN, 2, 2, 2, a, a, NULL, d, a, NULL) ==
            REID_EINVAL,
        "euclidean backward needs dist");
  CHECK(strstr(reid_last_error(), "distance_backward") != NULL, "message: %s", reid_last_error());
  CHECK(be->ops->distance_backward(be, REID_DIST_SQEUCLIDEAN, -1, 2, 2, a, a, d, d, a, a) ==
            REID_EINVAL,
        "negative m");
}

int main(void) {
  if (reid_backend_create("cpu", 0, &be) != REID_OK) {
    fprintf(stderr, "cpu backend: %s\n", reid_last_error());
    return 1;
  }
  test_rng rng = test_rng_make(17);
  for (int k = 0; k < 3; k++) {
    const reid_distance_kind kind = (reid_distance_kind)k;
    check_forward(&rng, kind, 1, 1, 1);
    check_forward(&rng, kind, 5, 7, 9);
    check_forward(&rng, kind, 37, 66, 130);  /* partial tiles and blocks */
    check_forward(&rng, kind, 70, 131, 257); /* several blocks, threaded */
    check_gradients(&rng, kind, 3, 4, 5);
    check_gradients(&rng, kind, 5, 3, 7);
  }
  check_cosine_zero_row();
  check_identical_rows();
  check_errors();
  reid_backend_destroy(be);
  return test_finish("test_ops_distance");
}
