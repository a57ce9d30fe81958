/* CUDA losses, L2 normalisation and pairwise distances against the CPU
 * backend, forward and backward, plus the label check.
 *
 * Tolerances: cross-entropy and L2 norm reduce in double on both sides
 * (rtol 1e-6, atol 1e-7); distances sum d float terms in different orders
 * (|gpu - cpu| <= 1e-5 S + 1e-7, S the sum of the terms' magnitudes); their
 * gradients follow the CPU's per-element order (rtol 1e-5). Outputs are
 * poisoned with NaN first. */
#include "cuda_test.h"

static void test_xent_case(test_rng *rng, int b, int classes, float smoothing) {
  const size_t n = (size_t)b * classes;
  float *z = test_alloc(n), *loss = test_alloc(b), *probs = test_alloc(n), *dl = test_alloc(b);
  float *dz = test_alloc(n);
  int32_t *labels = malloc(sizeof(int32_t) * b);
  test_fill_uniform(rng, z, n, -8, 8);
  test_fill_uniform(rng, dl, b, 0.1f, 1.0f);
  for (int i = 0; i < b; i++) labels[i] = test_rng_int(rng, 0, classes - 1);
  CHECK_OK(cpu->ops->softmax_xent_forward(cpu, b, classes, z, labels, smoothing, loss, probs));
  CHECK_OK(cpu->ops->softmax_xent_backward(cpu, b, classes, probs, labels, smoothing, dl, dz));

  float *gz = dev_from(z, n), *gloss = dev_poisoned(b), *gprobs = dev_poisoned(n),
        *gdl = dev_from(dl, b), *gdz = dev_poisoned(n);
  int32_t *glabels = dev_from_i32(labels, b);
  CHECK_OK(gpu->ops->softmax_xent_forward(gpu, b, classes, gz, glabels, smoothing, gloss, gprobs));
  CHECK_OK(gpu->ops->softmax_xent_backward(gpu, b, classes, gprobs, glabels, smoothing, gdl, gdz));
  char what[96];
  snprintf(what, sizeof what, "xent b%d C%d eps %g: loss", b, classes, (double)smoothing);
  check_dev(what, gloss, loss, b, 1e-7, 1e-6);
  snprintf(what, sizeof what, "xent b%d C%d eps %g: probs", b, classes, (double)smoothing);
  check_dev(what, gprobs, probs, n, 1e-9, 1e-6);
  snprintf(what, sizeof what, "xent b%d C%d eps %g: dlogits", b, classes, (double)smoothing);
  check_dev(what, gdz, dz, n, 1e-8, 1e-6);

  /* a label out of range fails before anything is written, naming the row */
  labels[b / 2] = classes;
  gpu->ops->upload(gpu, glabels, labels, sizeof(int32_t) * b);
  gpu->ops->fill(gpu, gloss, b, 5.0f);
  CHECK(gpu->ops->softmax_xent_forward(gpu, b, classes, gz, glabels, smoothing, gloss, gprobs) ==
            REID_EINVAL,
        "label %d refused", classes);
  char row[32];
  snprintf(row, sizeof row, "row %d", b / 2);
  CHECK(strstr(reid_last_error(), row) != NULL, "message names %s: %s", row, reid_last_error());
  float *h = host_from(gloss, b);
  int kept = 1;
  for (int i = 0; i < b; i++) kept &= h[i] == 5.0f;
  CHECK(kept, "loss untouched after a refused call");
  CHECK(gpu->ops->softmax_xent_backward(gpu, b, classes, gprobs, glabels, smoothing, gdl, gdz) ==
            REID_EINVAL,
        "backward refuses the label too");
  labels[0] = -1;
  gpu->ops->upload(gpu, glabels, labels, sizeof(int32_t) * b);
  CHECK(gpu->ops->softmax_xent_forward(gpu, b, classes, gz, glabels, smoothing, gloss, gprobs) ==
            REID_EINVAL,
        "label -1 refused");
  CHECK(strstr(reid_last_error(), "row 0") != NULL, "first bad row named: %s", reid_last_error());
  free(h);
  dev_free(gz), dev_free(gloss), dev_free(gprobs), dev_free(gdl), dev_free(gdz), dev_free(glabels);
  free(z), free(loss), free(probs), free(dl), free(dz), free(labels);
}

static void test_l2norm(test_rng *rng, int b, int d) {
  const size_t n = (size_t)b * d;
  float *x = test_alloc(n), *y = test_alloc(n), *norm = test_alloc(b), *dy = test_alloc(n),
        *dx = test_alloc(n);
  test_fill_uniform(rng, x, n, -1, 1);
  test_fill_uniform(rng, dy, n, -1, 1);
  for (int j = 0; j < d; j++) x[j] = 0.0f; /* a zero row: below the eps */
  CHECK_OK(cpu->ops->l2norm_forward(cpu, b, d, x, y, norm));
  CHECK_OK(cpu->ops->l2norm_backward(cpu, b, d, x, norm, dy, dx));
  float *gx = dev_from(x, n), *gy = dev_poisoned(n), *gn = dev_poisoned(b), *gdy = dev_from(dy, n),
        *gdx = dev_poisoned(n);
  CHECK_OK(gpu->ops->l2norm_forward(gpu, b, d, gx, gy, gn));
  CHECK_OK(gpu->ops->l2norm_backward(gpu, b, d, gx, gn, gdy, gdx));
  char what[64];
  snprintf(what, sizeof what, "l2norm b%d d%d: y", b, d);
  check_dev(what, gy, y, n, 1e-7, 1e-6);
  snprintf(what, sizeof what, "l2norm b%d d%d: norm", b, d);
  check_dev(what, gn, norm, b, 1e-7, 1e-6);
  snprintf(what, sizeof what, "l2norm b%d d%d: dx", b, d);
  check_dev(what, gdx, dx, n, 1e-6 * max_abs(dx, n), 1e-6);
  dev_free(gx), dev_free(gy), dev_free(gn), dev_free(gdy), dev_free(gdx);
  free(x), free(y), free(norm), free(dy), free(dx);
}

static void test_distance_case(test_rng *rng, reid_distance_kind kind, int m, int n, int d) {
  const size_t na = (size_t)m * d, nb = (size_t)n * d, nd = (size_t)m * n;
  float *a = test_alloc(na), *b = test_alloc(nb), *dist = test_alloc(nd), *g = test_alloc(nd);
  float *da = test_alloc(na), *db = test_alloc(nb), *scale = test_alloc(nd);
  test_fill_uniform(rng, a, na, -1, 1);
  test_fill_uniform(rng, b, nb, -1, 1);
  memcpy(b, a, sizeof(float) * d); /* a zero distance */
  test_fill_uniform(rng, g, nd, -1, 1);
  g[1] = 0.0f;
  CHECK_OK(cpu->ops->distance_forward(cpu, kind, m, n, d, a, b, dist));
  CHECK_OK(cpu->ops->distance_backward(cpu, kind, m, n, d, a, b, dist, g, da, db));
  /* S: sum of |terms|: sq / euclidean sum (a - b)^2 >= 0 is its own scale (after the sqrt,
   * half its relative error); cosine: 1 - cos has scale |a||b| / (|a||b|) = 1 */
  for (size_t i = 0; i < nd; i++)
    scale[i] = kind == REID_DIST_SQEUCLIDEAN ? dist[i]
               : kind == REID_DIST_EUCLIDEAN ? dist[i]
                                             : 1.0f;

  float *ga = dev_from(a, na), *gb = dev_from(b, nb), *gdist = dev_poisoned(nd),
        *gg = dev_from(g, nd), *gda = dev_poisoned(na), *gdb = dev_poisoned(nb);
  CHECK_OK(gpu->ops->distance_forward(gpu, kind, m, n, d, ga, gb, gdist));
  char what[96];
  const char *names[] = {"sqeuclidean", "euclidean", "cosine"};
  snprintf(what, sizeof what, "distance %s %dx%d d%d", names[kind], m, n, d);
  float *h = host_from(gdist, nd);
  check_scaled(what, h, dist, scale, nd, 1e-5, 1e-6);
  /* backward on the CPU's distances, so that only the backward is compared */
  gpu->ops->upload(gpu, gdist, dist, sizeof(float) * nd);
  CHECK_OK(gpu->ops->distance_backward(gpu, kind, m, n, d, ga, gb, gdist, gg, gda, gdb));
  snprintf(what, sizeof what, "distance %s %dx%d d%d: da", names[kind], m, n, d);
  check_dev(what, gda, da, na, 1e-5 * max_abs(da, na), 1e-5);
  snprintf(what, sizeof what, "distance %s %dx%d d%d: db", names[kind], m, n, d);
  check_dev(what, gdb, db, nb, 1e-5 * max_abs(db, nb), 1e-5);
  gpu->ops->fill(gpu, gdb, nb, 3.0f);
  CHECK_OK(gpu->ops->distance_backward(gpu, kind, m, n, d, ga, gb, gdist, gg, gda, NULL));
  check_dev("distance: da alone", gda, da, na, 1e-5 * max_abs(da, na), 1e-5);
  free(h);
  dev_free(ga), dev_free(gb), dev_free(gdist), dev_free(gg), dev_free(gda), dev_free(gdb);
  free(a), free(b), free(dist), free(g), free(da), free(db), free(scale);
}

int main(void) {
  const int skip = cuda_test_setup("test_cuda_loss");
  if (skip) return skip;
  test_rng rng = test_rng_make(73);
  test_xent_case(&rng, 16, 751, 0.1f);
  test_xent_case(&rng, 5, 3, 0.0f);
  test_xent_case(&rng, 64, 1000, 1.0f);
  test_l2norm(&rng, 9, 2048);
  test_l2norm(&rng, 3, 5);
  for (int kind = 0; kind < 3; kind++) {
    test_distance_case(&rng, (reid_distance_kind)kind, 37, 53, 2048);
    test_distance_case(&rng, (reid_distance_kind)kind, 5, 3, 7);
    test_distance_case(&rng, (reid_distance_kind)kind, 64, 64, 512);
  }
  float *p = dev_poisoned(16);
  CHECK(gpu->ops->distance_forward(gpu, (reid_distance_kind)7, 2, 2, 2, p, p, p) == REID_EINVAL,
        "unknown distance kind refused");
  dev_free(p);
  cuda_test_teardown();
  return test_finish("test_cuda_loss");
}
