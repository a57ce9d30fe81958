/* DMML, the feature-norm penalty and the prototype distillation of DwoPP
 * (dmml.h). Plain C on the host, accumulating in double: an episode is 192
 * rows, the matrices are 32 x 32. */
#include "dmml.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double sqdist(const float *a, const float *b, int d) {
  double s = 0;
  for (int k = 0; k < d; k++) {
    double t = (double)a[k] - b[k];
    s += t * t;
  }
  return s;
}

/* dst += g * (a - b) */
static void axpy_diff(float *dst, double g, const float *a, const float *b, int d) {
  for (int k = 0; k < d; k++) dst[k] += (float)(g * ((double)a[k] - b[k]));
}

static reid_status check_shape(const reid_episode_shape *e) {
  if (!e || e->classes < 2 || e->support < 1 || e->query < 1 || e->dim < 1)
    return reid_fail(REID_EINVAL,
                     "an episode needs C >= 2 classes x (S >= 1 support + Q >= 1 query) rows "
                     "of dimension >= 1");
  return REID_OK;
}

/* Row of class c's support s / query q. */
static inline int support_row(const reid_episode_shape *e, int c, int s) {
  return c * (e->support + e->query) + s;
}
static inline int query_row(const reid_episode_shape *e, int c, int q) {
  return c * (e->support + e->query) + e->support + q;
}

/* Softmax of v[n] in place, in double. */
static void softmax(double *v, int n) {
  double mx = -DBL_MAX, sum = 0;
  for (int j = 0; j < n; j++) mx = v[j] > mx ? v[j] : mx;
  for (int j = 0; j < n; j++) sum += (v[j] = exp(v[j] - mx));
  for (int j = 0; j < n; j++) v[j] /= sum;
}

reid_status reid_dmml_loss(const float *x, const reid_episode_shape *e, float margin, double *loss,
                           float scale, float *dx) {
  return reid_dmml_loss_masked(x, e, margin, NULL, loss, scale, dx);
}

reid_status reid_dmml_loss_masked(const float *x, const reid_episode_shape *e, float margin,
                                  const unsigned char *negatives, double *loss, float scale,
                                  float *dx) {
  REID_TRY(check_shape(e));
  const int C = e->classes, S = e->support, Q = e->query, d = e->dim, N = C * Q;
  double *D = malloc(sizeof(double) * 2 * C);
  int *pick = malloc(sizeof(int) * C); /* support chosen by the max / min per class */
  if (!D || !pick) {
    free(D);
    free(pick);
    return reid_fail(REID_ENOMEM, "out of memory");
  }
  double total = 0;
  for (int i = 0; i < C; i++)
    for (int q = 0; q < Q; q++) {
      const float *xq = x + (size_t)query_row(e, i, q) * d;
      for (int j = 0; j < C; j++) {
        double best = j == i ? -DBL_MAX : DBL_MAX;
        int arg = 0;
        for (int s = 0; s < S; s++) {
          double v = sqdist(xq, x + (size_t)support_row(e, j, s) * d, d);
          if (j == i ? v > best : v < best) best = v, arg = s;
        }
        pick[j] = arg;
        D[j] = j == i ? best : fmax(best - margin, 0.0);
      }
      double *p = D + C; /* softmax(-D) over class i and its negatives */
      for (int j = 0; j < C; j++) p[j] = -D[j];
      const unsigned char *neg = negatives ? negatives + (size_t)i * C : NULL;
      if (neg)
        for (int j = 0; j < C; j++)
          if (j != i && !neg[j]) p[j] = -HUGE_VAL; /* exp -> 0: out of the softmax */
      softmax(p, C);
      total += -log(fmax(p[i], DBL_MIN));
      if (!dx) continue;
      /* dL/dD[j] = (1[j = i] - p_j) / N; dd(q, s)/dq = 2 (q - s) = -dd/ds */
      for (int j = 0; j < C; j++) {
        if (neg && j != i && !neg[j]) continue; /* not a negative of class i */
        double g = ((j == i) - p[j]) / N * scale;
        if (j != i && D[j] <= 0) continue; /* the hinge */
        if (g == 0) continue;
        const int srow = support_row(e, j, pick[j]);
        const float *xs = x + (size_t)srow * d;
        float *gq = dx + (size_t)query_row(e, i, q) * d, *gs = dx + (size_t)srow * d;
        axpy_diff(gq, 2 * g, xq, xs, d);
        axpy_diff(gs, -2 * g, xq, xs, d);
      }
    }
  *loss = total / N;
  free(D);
  free(pick);
  return REID_OK;
}

reid_status reid_norm_penalty(const float *x, int n, int d, double *loss, float scale, float *dx) {
  if (n < 1 || d < 1) return reid_fail(REID_EINVAL, "norm penalty of %d x %d rows", n, d);
  double total = 0;
  for (size_t i = 0; i < (size_t)n * d; i++) {
    total += (double)x[i] * x[i];
    if (dx) dx[i] += (float)(2.0 * scale * x[i] / n);
  }
  *loss = total / n;
  return REID_OK;
}

/* Prototypes p[C, d] (means of the supports) of x. */
static void prototypes(const float *x, const reid_episode_shape *e, double *p) {
  const int d = e->dim;
  memset(p, 0, sizeof(double) * e->classes * d);
  for (int c = 0; c < e->classes; c++)
    for (int s = 0; s < e->support; s++) {
      const float *xs = x + (size_t)support_row(e, c, s) * d;
      for (int k = 0; k < d; k++) p[(size_t)c * d + k] += xs[k];
    }
  for (size_t k = 0; k < (size_t)e->classes * d; k++) p[k] /= e->support;
}

/* The kept columns of query q's row (class i): all C, or C - 1 without i. */
static int row_columns(int C, int i, int positive, int *cols) {
  int n = 0;
  for (int j = 0; j < C; j++)
    if (positive || j != i) cols[n++] = j;
  return n;
}

/* P[q, .] = softmax(-d(x_q, p_cols) / T); also returns the distances' inputs */
static void row_probs(const float *xq, const double *p, const int *cols, int n, int d, float T,
                      double *P) {
  for (int a = 0; a < n; a++) {
    const double *pj = p + (size_t)cols[a] * d;
    double s = 0;
    for (int k = 0; k < d; k++) {
      double t = xq[k] - pj[k];
      s += t * t;
    }
    P[a] = -s / T;
  }
  softmax(P, n);
}

reid_status reid_proto_distill_loss(const float *x_old, const float *x_new,
                                    const reid_episode_shape *e, int positive, float temperature,
                                    float clamp, double *loss, float scale, float *dx_new) {
  REID_TRY(check_shape(e));
  if (!(temperature > 0) || !(clamp >= 0 && clamp < 1))
    return reid_fail(REID_EINVAL, "distillation temperature %g / clamp %g", (double)temperature,
                     (double)clamp);
  const int C = e->classes, S = e->support, Q = e->query, d = e->dim, N = C * Q;
  double *p_old = malloc(sizeof(double) * 2 * (size_t)C * d), *p_new = p_old + (size_t)C * d;
  double *dp = calloc((size_t)C * d, sizeof(double)); /* dL/d prototype (new) */
  double *row = malloc(sizeof(double) * 3 * C), *Po = row, *Pn = row + C, *g = row + 2 * C;
  int *cols = malloc(sizeof(int) * C);
  reid_status st = p_old && dp && row && cols ? REID_OK : reid_fail(REID_ENOMEM, "out of memory");
  double total = 0;
  if (st == REID_OK) {
    prototypes(x_old, e, p_old);
    prototypes(x_new, e, p_new);
  }
  for (int i = 0; i < C && st == REID_OK; i++)
    for (int q = 0; q < Q; q++) {
      const int qr = query_row(e, i, q), n = row_columns(C, i, positive, cols);
      row_probs(x_old + (size_t)qr * d, p_old, cols, n, d, temperature, Po);
      row_probs(x_new + (size_t)qr * d, p_new, cols, n, d, temperature, Pn);
      double gdot = 0;
      for (int a = 0; a < n; a++) {
        double t = fmax(Po[a], clamp), s = fmax(Pn[a], clamp);
        total += t * log(t / s);
        g[a] = Pn[a] >= clamp ? -t / s : 0; /* dL_row / dP_new[a] */
        gdot += g[a] * Pn[a];
      }
      if (!dx_new) continue;
      /* softmax backward: dz[a] = P[a] (g[a] - sum P g) / T, z = -d(q, p) */
      const float *xq = x_new + (size_t)qr * d;
      float *gq = dx_new + (size_t)qr * d;
      for (int a = 0; a < n; a++) {
        double dz = Pn[a] * (g[a] - gdot) / temperature * scale / N;
        const double *pj = p_new + (size_t)cols[a] * d;
        double *dpj = dp + (size_t)cols[a] * d;
        for (int k = 0; k < d; k++) {
          double diff = xq[k] - pj[k];
          gq[k] += (float)(-2 * dz * diff);
          dpj[k] += 2 * dz * diff;
        }
      }
    }
  if (st == REID_OK && dx_new) /* each support gets 1/S of its prototype's gradient */
    for (int c = 0; c < C; c++)
      for (int s = 0; s < S; s++) {
        float *gs = dx_new + (size_t)support_row(e, c, s) * d;
        for (int k = 0; k < d; k++) gs[k] += (float)(dp[(size_t)c * d + k] / S);
      }
  if (st == REID_OK) *loss = total / N;
  free(p_old);
  free(dp);
  free(row);
  free(cols);
  return st;
}
