/* Losses and normalisation of the CPU backend: softmax cross-entropy with
 * label smoothing, and row-wise L2 normalisation (F.normalize). Registering
 * this family also registers the pairwise distances of distance.c.
 *
 * Both work row by row (one OpenMP iteration per row) and accumulate the row
 * reductions in double. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu_ops.h"

#define PARALLEL_MIN ((size_t)1 << 14)

#define REQUIRE(op, ptr)                                                                           \
  do {                                                                                             \
    if (!(ptr)) return reid_fail(REID_EINVAL, "%s: %s is NULL", op, #ptr);                         \
  } while (0)

static reid_status check_xent(const char *op, int b, int classes, const int32_t *labels,
                              float smoothing) {
  if (b < 1 || classes < 1)
    return reid_fail(REID_EINVAL, "%s: invalid shape b=%d classes=%d", op, b, classes);
  if (!(smoothing >= 0.0f && smoothing <= 1.0f))
    return reid_fail(REID_EINVAL, "%s: label smoothing %g outside [0, 1]", op, (double)smoothing);
  REQUIRE(op, labels);
  for (int i = 0; i < b; i++)
    if (labels[i] < 0 || labels[i] >= classes)
      return reid_fail(REID_EINVAL, "%s: label %d of row %d outside [0, %d)", op, (int)labels[i], i,
                       classes);
  return REID_OK;
}

/* With t = (1 - eps) onehot(label) + eps / C and lse = log sum_j exp(z_j):
 *   probs[j] = exp(z_j - lse)
 *   loss     = sum_j t_j (lse - z_j) = lse - (1 - eps) z_label - eps / C sum_j z_j */
static reid_status cpu_softmax_xent_forward(reid_backend *be, int b, int classes,
                                            const float *logits, const int32_t *labels,
                                            float smoothing, float *loss, float *probs) {
  (void)be;
  const char *op = "softmax_xent_forward";
  REID_TRY(check_xent(op, b, classes, labels, smoothing));
  REQUIRE(op, logits);
  REQUIRE(op, loss);
  REQUIRE(op, probs);
  const double eps = smoothing;
#pragma omp parallel for schedule(static) if ((size_t)b * classes >= PARALLEL_MIN)
  for (int i = 0; i < b; i++) {
    const float *z = logits + (size_t)i * classes; /* [classes] */
    float *p = probs + (size_t)i * classes;
    float zmax = z[0];
    for (int j = 1; j < classes; j++) zmax = z[j] > zmax ? z[j] : zmax;
    double sumexp = 0.0, sumz = 0.0;
    for (int j = 0; j < classes; j++) {
      sumexp += exp((double)z[j] - zmax);
      sumz += z[j];
    }
    const double lse = zmax + log(sumexp);
    for (int j = 0; j < classes; j++) p[j] = (float)exp((double)z[j] - lse);
    loss[i] = (float)(lse - (1.0 - eps) * z[labels[i]] - eps / classes * sumz);
  }
  return REID_OK;
}

/* dlogits[i, j] = dloss[i] (probs[i, j] - t_j) */
static reid_status cpu_softmax_xent_backward(reid_backend *be, int b, int classes,
                                             const float *probs, const int32_t *labels,
                                             float smoothing, const float *dloss, float *dlogits) {
  (void)be;
  const char *op = "softmax_xent_backward";
  REID_TRY(check_xent(op, b, classes, labels, smoothing));
  if (!dlogits) return REID_OK;
  REQUIRE(op, probs);
  REQUIRE(op, dloss);
  const float off = smoothing / (float)classes; /* target of every class */
  const float on = 1.0f - smoothing + off;      /* target of the label */
#pragma omp parallel for schedule(static) if ((size_t)b * classes >= PARALLEL_MIN)
  for (int i = 0; i < b; i++) {
    const float *p = probs + (size_t)i * classes;
    float *dz = dlogits + (size_t)i * classes;
    const float g = dloss[i];
#pragma omp simd
    for (int j = 0; j < classes; j++) dz[j] = g * (p[j] - off);
    dz[labels[i]] = g * (p[labels[i]] - on);
  }
  return REID_OK;
}

/* norm[i] = |x_i|,  y_i = x_i / max(norm[i], 1e-12) */
static reid_status cpu_l2norm_forward(reid_backend *be, int b, int d, const float *x, float *y,
                                      float *norm) {
  (void)be;
  const char *op = "l2norm_forward";
  if (b < 1 || d < 1) return reid_fail(REID_EINVAL, "%s: invalid shape b=%d d=%d", op, b, d);
  REQUIRE(op, x);
  REQUIRE(op, y);
  REQUIRE(op, norm);
#pragma omp parallel for schedule(static) if ((size_t)b * d >= PARALLEL_MIN)
  for (int i = 0; i < b; i++) {
    const float *xr = x + (size_t)i * d;
    float *yr = y + (size_t)i * d;
    double ss = 0.0;
#pragma omp simd reduction(+ : ss)
    for (int j = 0; j < d; j++) ss += (double)xr[j] * xr[j];
    const double nrm = sqrt(ss);
    const float inv = (float)(1.0 / fmax(nrm, (double)REID_L2NORM_EPS));
    norm[i] = (float)nrm;
#pragma omp simd
    for (int j = 0; j < d; j++) yr[j] = xr[j] * inv;
  }
  return REID_OK;
}

/* With n = |x| >= eps: dx = dy / n - x (x . dy) / n^3 (the usual projection).
 * Below eps the divisor is the constant eps:  dx = dy / eps. */
static reid_status cpu_l2norm_backward(reid_backend *be, int b, int d, const float *x,
                                       const float *norm, const float *dy, float *dx) {
  (void)be;
  const char *op = "l2norm_backward";
  if (b < 1 || d < 1) return reid_fail(REID_EINVAL, "%s: invalid shape b=%d d=%d", op, b, d);
  if (!dx) return REID_OK;
  REQUIRE(op, x);
  REQUIRE(op, norm);
  REQUIRE(op, dy);
#pragma omp parallel for schedule(static) if ((size_t)b * d >= PARALLEL_MIN)
  for (int i = 0; i < b; i++) {
    const float *xr = x + (size_t)i * d;
    const float *dyr = dy + (size_t)i * d;
    float *dxr = dx + (size_t)i * d;
    const double nrm = norm[i];
    if (nrm >= (double)REID_L2NORM_EPS) {
      double xdy = 0.0;
#pragma omp simd reduction(+ : xdy)
      for (int j = 0; j < d; j++) xdy += (double)xr[j] * dyr[j];
      const float a = (float)(1.0 / nrm);
      const float k = (float)(xdy / (nrm * nrm * nrm));
#pragma omp simd
      for (int j = 0; j < d; j++) dxr[j] = a * dyr[j] - k * xr[j];
    } else {
      const float a = 1.0f / REID_L2NORM_EPS;
#pragma omp simd
      for (int j = 0; j < d; j++) dxr[j] = a * dyr[j];
    }
  }
  return REID_OK;
}

void cpu_register_loss_ops(reid_backend_ops *ops) {
  ops->softmax_xent_forward = cpu_softmax_xent_forward;
  ops->softmax_xent_backward = cpu_softmax_xent_backward;
  ops->l2norm_forward = cpu_l2norm_forward;
  ops->l2norm_backward = cpu_l2norm_backward;
}
