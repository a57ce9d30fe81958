/* MDKT losses on host arrays (see losses.h for the math). Sums run in double;
 * inputs are validated (shapes, NULLs, index ranges) and never asserted. */
#include "losses.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#define REQUIRE(fn, ptr)                                                                           \
  do {                                                                                             \
    if (!(ptr)) return reid_fail(REID_EINVAL, "%s: %s is NULL", fn, #ptr);                         \
  } while (0)

/* log(1 + exp(x)) without overflow */
static double softplus(double x) {
  return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}
static double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}

reid_status reid_pairwise_distances(const float *x, int n, int d, int squared, float *dist) {
  const char *fn = "pairwise_distances";
  if (n < 1 || d < 1) return reid_fail(REID_EINVAL, "%s: invalid shape n=%d d=%d", fn, n, d);
  REQUIRE(fn, x);
  REQUIRE(fn, dist);
  for (int i = 0; i < n; i++) {
    dist[(size_t)i * n + i] = squared ? 0.0f : (float)sqrt(REID_LOSS_EUCLIDEAN_EPS);
    for (int j = i + 1; j < n; j++) {
      const float *a = x + (size_t)i * d, *b = x + (size_t)j * d;
      double s = 0.0;
      for (int k = 0; k < d; k++) {
        double diff = (double)a[k] - b[k];
        s += diff * diff;
      }
      float v = squared ? (float)s : (float)sqrt(s + REID_LOSS_EUCLIDEAN_EPS);
      dist[(size_t)i * n + j] = dist[(size_t)j * n + i] = v;
    }
  }
  return REID_OK;
}

/* dx[i] += sum_j c[i, j] (x[i] - x[j]), c[i, j] = (g[i, j] + g[j, i]) * factor(i, j) */
reid_status reid_pairwise_distances_backward(const float *x, const float *dist, const float *ddist,
                                             int n, int d, int squared, float *dx) {
  const char *fn = "pairwise_distances_backward";
  if (n < 1 || d < 1) return reid_fail(REID_EINVAL, "%s: invalid shape n=%d d=%d", fn, n, d);
  if (!dx) return REID_OK;
  REQUIRE(fn, x);
  REQUIRE(fn, ddist);
  if (!squared) REQUIRE(fn, dist);
  for (int i = 0; i < n; i++) {
    float *gi = dx + (size_t)i * d;
    const float *xi = x + (size_t)i * d;
    for (int j = 0; j < n; j++) {
      if (j == i) continue;
      double c = (double)ddist[(size_t)i * n + j] + ddist[(size_t)j * n + i];
      if (c == 0.0) continue;
      c *= squared ? 2.0 : 1.0 / dist[(size_t)i * n + j];
      const float *xj = x + (size_t)j * d;
      for (int k = 0; k < d; k++) gi[k] += (float)(c * ((double)xi[k] - xj[k]));
    }
  }
  return REID_OK;
}

reid_status reid_mine_batch_hard(const float *dist, const int32_t *labels, int n, int *pos,
                                 int *neg) {
  const char *fn = "mine_batch_hard";
  if (n < 1) return reid_fail(REID_EINVAL, "%s: invalid batch n=%d", fn, n);
  REQUIRE(fn, dist);
  REQUIRE(fn, labels);
  REQUIRE(fn, pos);
  REQUIRE(fn, neg);
  for (int i = 0; i < n; i++) {
    const float *row = dist + (size_t)i * n;
    int p = -1, q = -1;
    for (int j = 0; j < n; j++) {
      if (isnan(row[j])) return reid_fail(REID_ENUMERIC, "%s: distance [%d, %d] is NaN", fn, i, j);
      if (labels[j] == labels[i]) {
        if (j != i && (p < 0 || row[j] > row[p])) p = j;
      } else if (q < 0 || row[j] < row[q]) {
        q = j;
      }
    }
    pos[i] = p;
    neg[i] = q;
  }
  return REID_OK;
}

static reid_status check_triplets(const char *fn, int n, const int *pos, const int *neg) {
  REQUIRE(fn, pos);
  REQUIRE(fn, neg);
  for (int a = 0; a < n; a++)
    if (pos[a] < -1 || pos[a] >= n || neg[a] < -1 || neg[a] >= n)
      return reid_fail(REID_EINVAL, "%s: triplet of anchor %d has index %d/%d outside [-1, %d)", fn,
                       a, pos[a], neg[a], n);
  return REID_OK;
}

reid_status reid_triplet_soft_margin(const float *dist, int n, const int *pos, const int *neg,
                                     double *loss, int *anchors, float scale, float *ddist) {
  const char *fn = "triplet_soft_margin";
  if (n < 1) return reid_fail(REID_EINVAL, "%s: invalid batch n=%d", fn, n);
  REQUIRE(fn, dist);
  REQUIRE(fn, loss);
  REID_TRY(check_triplets(fn, n, pos, neg));
  int count = 0;
  for (int a = 0; a < n; a++) count += pos[a] >= 0 && neg[a] >= 0;
  double sum = 0.0;
  for (int a = 0; a < n; a++) {
    if (pos[a] < 0 || neg[a] < 0) continue;
    size_t ap = (size_t)a * n + pos[a], an = (size_t)a * n + neg[a];
    double margin = (double)dist[ap] - dist[an];
    sum += softplus(margin);
    if (ddist) { /* d/dmargin softplus = sigmoid */
      double g = scale * sigmoid(margin) / count;
      ddist[ap] += (float)g;
      ddist[an] -= (float)g;
    }
  }
  *loss = count ? sum / count : 0.0;
  if (anchors) *anchors = count;
  return REID_OK;
}

/* log softmax(z / tau) of one row into out[k] (double) */
static void log_softmax_row(const float *z, int k, double tau, double *out) {
  double zmax = z[0];
  for (int j = 1; j < k; j++) zmax = fmax(zmax, z[j]);
  double s = 0.0;
  for (int j = 0; j < k; j++) s += exp((z[j] - zmax) / tau);
  double lse = log(s);
  for (int j = 0; j < k; j++) out[j] = (z[j] - zmax) / tau - lse;
}

reid_status reid_kd_logits(const float *z_target, const float *z_learner, int b, int k, float tau,
                           double *loss, float scale, float *dz_learner) {
  const char *fn = "kd_logits";
  if (b < 1 || k < 1 || k > (1 << 20))
    return reid_fail(REID_EINVAL, "%s: invalid shape b=%d k=%d", fn, b, k);
  if (!(tau > 0)) return reid_fail(REID_EINVAL, "%s: temperature %g must be > 0", fn, (double)tau);
  REQUIRE(fn, z_target);
  REQUIRE(fn, z_learner);
  REQUIRE(fn, loss);
  double *lt = malloc(sizeof(double) * 2 * (size_t)k), *ll = lt + k; /* [k] each */
  if (!lt) return reid_fail(REID_ENOMEM, "%s: out of memory for %d classes", fn, k);
  double sum = 0.0;
  for (int i = 0; i < b; i++) {
    log_softmax_row(z_target + (size_t)i * k, k, tau, lt);
    log_softmax_row(z_learner + (size_t)i * k, k, tau, ll);
    for (int j = 0; j < k; j++) {
      double yt = exp(lt[j]);
      sum += yt * (lt[j] - ll[j]);
      if (dz_learner)
        dz_learner[(size_t)i * k + j] += (float)(scale * (double)tau * (exp(ll[j]) - yt) / b);
    }
  }
  free(lt);
  *loss = (double)tau * tau * sum / b;
  return REID_OK;
}

reid_status reid_pd_loss(const float *d_teacher, const float *d_student, int n, double *loss,
                         float scale, float *dd_teacher, float *dd_student) {
  const char *fn = "pd_loss";
  if (n < 1) return reid_fail(REID_EINVAL, "%s: invalid batch n=%d", fn, n);
  REQUIRE(fn, d_teacher);
  REQUIRE(fn, d_student);
  REQUIRE(fn, loss);
  const double inv = 1.0 / ((double)n * n);
  double sum = 0.0;
  for (size_t i = 0; i < (size_t)n * n; i++) {
    double diff = (double)d_teacher[i] - d_student[i];
    sum += diff * diff;
    if (dd_teacher) dd_teacher[i] += (float)(scale * diff * inv);
    if (dd_student) dd_student[i] -= (float)(scale * diff * inv);
  }
  *loss = 0.5 * sum * inv;
  return REID_OK;
}

reid_status reid_tcl_loss(const float *d_target, const float *d_learner, int n, const int *pos,
                          const int *neg, float tau, double *loss, int *triplets, float scale,
                          float *dd_learner) {
  const char *fn = "tcl_loss";
  if (n < 1) return reid_fail(REID_EINVAL, "%s: invalid batch n=%d", fn, n);
  if (!(tau > 0)) return reid_fail(REID_EINVAL, "%s: temperature %g must be > 0", fn, (double)tau);
  REQUIRE(fn, d_target);
  REQUIRE(fn, d_learner);
  REQUIRE(fn, loss);
  REID_TRY(check_triplets(fn, n, pos, neg));
  double sum = 0.0;
  int count = 0;
  for (int a = 0; a < n; a++) {
    if (pos[a] < 0 || neg[a] < 0) continue;
    size_t ap = (size_t)a * n + pos[a], an = (size_t)a * n + neg[a];
    double ut = ((double)d_target[an] - d_target[ap]) / tau;
    double ul = ((double)d_learner[an] - d_learner[ap]) / tau;
    /* log p = -softplus(-u), log(1 - p) = -softplus(u) */
    double pt = sigmoid(ut), pl = sigmoid(ul);
    sum += pt * (softplus(-ul) - softplus(-ut)) + (1.0 - pt) * (softplus(ul) - softplus(ut));
    if (dd_learner) {
      double g = scale * (pl - pt) / tau;
      dd_learner[an] += (float)g;
      dd_learner[ap] -= (float)g;
    }
    count++;
  }
  *loss = sum;
  if (triplets) *triplets = count;
  return REID_OK;
}

reid_status reid_ce_loss(reid_backend *cpu, const float *z, const int32_t *labels, int b, int k,
                         float smoothing, double *loss, float scale, float *dz) {
  const char *fn = "ce_loss";
  REQUIRE(fn, cpu);
  REQUIRE(fn, loss);
  if (cpu->device != REID_DEVICE_CPU)
    return reid_fail(REID_EINVAL, "%s: needs a host (cpu) backend, got %s", fn, cpu->name);
  if (b < 1 || k < 1) return reid_fail(REID_EINVAL, "%s: invalid shape b=%d k=%d", fn, b, k);
  float *per_row =
      malloc(sizeof(float) * (size_t)b * (2 + 2 * (size_t)k)); /* loss, dloss, probs, dz */
  if (!per_row) return reid_fail(REID_ENOMEM, "%s: out of memory", fn);
  float *dloss = per_row + b, *probs = dloss + b, *grad = probs + (size_t)b * k;
  reid_status st = cpu->ops->softmax_xent_forward(cpu, b, k, z, labels, smoothing, per_row, probs);
  if (st == REID_OK && dz) {
    for (int i = 0; i < b; i++) dloss[i] = scale / (float)b;
    st = cpu->ops->softmax_xent_backward(cpu, b, k, probs, labels, smoothing, dloss, grad);
    if (st == REID_OK)
      for (size_t i = 0; i < (size_t)b * k; i++) dz[i] += grad[i];
  }
  if (st == REID_OK) {
    double sum = 0.0;
    for (int i = 0; i < b; i++) sum += per_row[i];
    *loss = sum / b;
  }
  free(per_row);
  return st;
}
