/* Pairwise distances of the CPU backend between the rows of a[m, d] and
 * b[n, d] (registered through cpu_register_loss_ops, see loss.c):
 *   sqeuclidean  s_ij = sum_k (a_ik - b_jk)^2
 *   euclidean    e_ij = sqrt(s_ij + 1e-12)
 *   cosine       c_ij = 1 - a_i . b_j / (max(|a_i|, 1e-12) max(|b_j|, 1e-12))
 *
 * The forward works on (IB x JB) row blocks small enough for L2, split over
 * threads, with 2 x 4 register tiles whose inner loop over d gcc vectorises;
 * differences are formed before squaring, so close rows lose no precision to
 * cancellation. The backward forms every row gradient directly as
 *   da_i = sum_j w_ij (a_i - b_j)          (sq: w = 2 g, euclidean: w = g / e)
 *   da_i = -1/na_i sum_j g_ij / nb_j b_j + [|a_i| >= eps] sum_j g_ij cos_ij / na_i^2 a_i
 * and the same with a and b swapped for db. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cpu_ops.h"
#include "op_checks.h"

#define IB 32 /* rows of a per block */
#define JB 64 /* rows of b per block */

#define REQUIRE(op, ptr)                                                                           \
  do {                                                                                             \
    if (!(ptr)) return reid_fail(REID_EINVAL, "%s: %s is NULL", op, #ptr);                         \
  } while (0)

/* out[r][s] = sum_k (a_r[k] - b_s[k])^2 for 2 rows of a and 4 rows of b */
static void tile_sqdiff(int d, const float *restrict a0, const float *restrict a1,
                        const float *restrict b0, const float *restrict b1,
                        const float *restrict b2, const float *restrict b3, float out[2][4]) {
  float s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
#pragma omp simd reduction(+ : s00, s01, s02, s03, s10, s11, s12, s13)
  for (int k = 0; k < d; k++) {
    const float e00 = a0[k] - b0[k], e01 = a0[k] - b1[k], e02 = a0[k] - b2[k], e03 = a0[k] - b3[k];
    const float e10 = a1[k] - b0[k], e11 = a1[k] - b1[k], e12 = a1[k] - b2[k], e13 = a1[k] - b3[k];
    s00 += e00 * e00, s01 += e01 * e01, s02 += e02 * e02, s03 += e03 * e03;
    s10 += e10 * e10, s11 += e11 * e11, s12 += e12 * e12, s13 += e13 * e13;
  }
  out[0][0] = s00, out[0][1] = s01, out[0][2] = s02, out[0][3] = s03;
  out[1][0] = s10, out[1][1] = s11, out[1][2] = s12, out[1][3] = s13;
}

/* out[r][s] = a_r . b_s for 2 rows of a and 4 rows of b */
static void tile_dot(int d, const float *restrict a0, const float *restrict a1,
                     const float *restrict b0, const float *restrict b1, const float *restrict b2,
                     const float *restrict b3, float out[2][4]) {
  float s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
#pragma omp simd reduction(+ : s00, s01, s02, s03, s10, s11, s12, s13)
  for (int k = 0; k < d; k++) {
    s00 += a0[k] * b0[k], s01 += a0[k] * b1[k], s02 += a0[k] * b2[k], s03 += a0[k] * b3[k];
    s10 += a1[k] * b0[k], s11 += a1[k] * b1[k], s12 += a1[k] * b2[k], s13 += a1[k] * b3[k];
  }
  out[0][0] = s00, out[0][1] = s01, out[0][2] = s02, out[0][3] = s03;
  out[1][0] = s10, out[1][1] = s11, out[1][2] = s12, out[1][3] = s13;
}

/* out[i] = |x_i| (unclamped) in double for the rows of x[rows, d] */
static void row_norms(int rows, int d, const float *x, double *out) {
#pragma omp parallel for schedule(static) if ((size_t)rows * d >= (1u << 15))
  for (int i = 0; i < rows; i++) {
    const float *xr = x + (size_t)i * d;
    double ss = 0.0;
#pragma omp simd reduction(+ : ss)
    for (int k = 0; k < d; k++) ss += (double)xr[k] * xr[k];
    out[i] = sqrt(ss);
  }
}

static reid_status cpu_distance_forward(reid_backend *be, reid_distance_kind kind, int m, int n,
                                        int d, const float *a, const float *b, float *dist) {
  (void)be;
  const char *op = "distance_forward";
  REID_TRY(reid_check_distance(op, kind, m, n, d));
  REQUIRE(op, a);
  REQUIRE(op, b);
  REQUIRE(op, dist);

  double *na = NULL, *nb = NULL; /* row norms for cosine */
  if (kind == REID_DIST_COSINE) {
    na = malloc(sizeof(double) * ((size_t)m + n));
    if (!na) return reid_fail(REID_ENOMEM, "%s: out of memory", op);
    nb = na + m;
    row_norms(m, d, a, na);
    row_norms(n, d, b, nb);
  }

  const int iblocks = (m + IB - 1) / IB, jblocks = (n + JB - 1) / JB;
#pragma omp parallel for collapse(2) schedule(dynamic) if ((double)m * n * d >= 1e6)
  for (int jb = 0; jb < jblocks; jb++) {
    for (int ib = 0; ib < iblocks; ib++) {
      const int i_end = (ib + 1) * IB < m ? (ib + 1) * IB : m;
      const int j_end = (jb + 1) * JB < n ? (jb + 1) * JB : n;
      for (int i = ib * IB; i < i_end; i += 2) {
        /* a tile past the last row repeats it and drops the result */
        const int i1 = i + 1 < i_end ? i + 1 : i;
        for (int j = jb * JB; j < j_end; j += 4) {
          int jj[4];
          for (int s = 0; s < 4; s++) jj[s] = j + s < j_end ? j + s : j;
          const float *ar[2] = {a + (size_t)i * d, a + (size_t)i1 * d};
          const float *br[4] = {b + (size_t)jj[0] * d, b + (size_t)jj[1] * d, b + (size_t)jj[2] * d,
                                b + (size_t)jj[3] * d};
          float t[2][4];
          if (kind == REID_DIST_COSINE)
            tile_dot(d, ar[0], ar[1], br[0], br[1], br[2], br[3], t);
          else
            tile_sqdiff(d, ar[0], ar[1], br[0], br[1], br[2], br[3], t);
          for (int r = 0; r < 2 && i + r < i_end; r++) {
            for (int s = 0; s < 4 && j + s < j_end; s++) {
              const int ii = i + r, jx = j + s;
              double v = t[r][s];
              if (kind == REID_DIST_EUCLIDEAN) v = sqrt(v + (double)REID_EUCLIDEAN_EPS);
              if (kind == REID_DIST_COSINE)
                v = 1.0 - v / (fmax(na[ii], (double)REID_L2NORM_EPS) *
                               fmax(nb[jx], (double)REID_L2NORM_EPS));
              dist[(size_t)ii * n + jx] = (float)v;
            }
          }
        }
      }
    }
  }
  free(na);
  return REID_OK;
}

/* Gradient for the rows of x[rows, d] against the rows of y[cols, d], with
 * g(r, c) = ddist[r * g_rs + c * g_cs] (a transpose for db):
 *   sq / euclidean: dx_r = sum_c w_rc (x_r - y_c),  w = 2 g  or  g / dist
 *   cosine:         dx_r = -1/nx_r sum_c g_rc / ny_c y_c + [|x_r| >= eps] sum_c g_rc cos_rc /
 * nx_r^2 x_r nx, ny hold the unclamped norms (cosine only). */
static void rows_backward(reid_distance_kind kind, int rows, int cols, int d, const float *x,
                          const float *y, const float *dist, const float *ddist, ptrdiff_t g_rs,
                          ptrdiff_t g_cs, const double *nx, const double *ny, float *dx) {
  const double eps = REID_L2NORM_EPS;
#pragma omp parallel for schedule(static) if ((double)rows * cols * d >= 1e6)
  for (int r = 0; r < rows; r++) {
    const float *xr = x + (size_t)r * d;
    float *dxr = dx + (size_t)r * d;
#pragma omp simd
    for (int k = 0; k < d; k++) dxr[k] = 0.0f;
    if (kind == REID_DIST_COSINE) {
      const double nxr = fmax(nx[r], eps);
      double self = 0.0; /* sum_c g_rc cos_rc */
      for (int c = 0; c < cols; c++) {
        const ptrdiff_t gi = r * g_rs + c * g_cs;
        const double g = ddist[gi];
        if (g == 0.0) continue;
        self += g * (1.0 - dist[gi]);
        const float w = (float)(-g / (nxr * fmax(ny[c], eps)));
        const float *yc = y + (size_t)c * d;
#pragma omp simd
        for (int k = 0; k < d; k++) dxr[k] += w * yc[k];
      }
      if (nx[r] >= eps) {
        const float w = (float)(self / (nxr * nxr));
#pragma omp simd
        for (int k = 0; k < d; k++) dxr[k] += w * xr[k];
      }
    } else {
      for (int c = 0; c < cols; c++) {
        const ptrdiff_t gi = r * g_rs + c * g_cs;
        const float g = ddist[gi];
        if (g == 0.0f) continue;
        const float w = kind == REID_DIST_SQEUCLIDEAN ? 2.0f * g : g / dist[gi];
        const float *yc = y + (size_t)c * d;
#pragma omp simd
        for (int k = 0; k < d; k++) dxr[k] += w * (xr[k] - yc[k]);
      }
    }
  }
}

static reid_status cpu_distance_backward(reid_backend *be, reid_distance_kind kind, int m, int n,
                                         int d, const float *a, const float *b, const float *dist,
                                         const float *ddist, float *da, float *db) {
  (void)be;
  const char *op = "distance_backward";
  REID_TRY(reid_check_distance(op, kind, m, n, d));
  if (!da && !db) return REID_OK;
  REQUIRE(op, a);
  REQUIRE(op, b);
  REQUIRE(op, ddist);
  if (kind != REID_DIST_SQEUCLIDEAN) REQUIRE(op, dist);

  double *na = NULL, *nb = NULL;
  if (kind == REID_DIST_COSINE) {
    na = malloc(sizeof(double) * ((size_t)m + n));
    if (!na) return reid_fail(REID_ENOMEM, "%s: out of memory", op);
    nb = na + m;
    row_norms(m, d, a, na);
    row_norms(n, d, b, nb);
  }
  /* da: rows of a against b, g(i, j) = ddist[i n + j] */
  if (da) rows_backward(kind, m, n, d, a, b, dist, ddist, n, 1, na, nb, da);
  /* db: rows of b against a, g(j, i) = ddist[i n + j]; every formula is symmetric in a, b */
  if (db) rows_backward(kind, n, m, d, b, a, dist, ddist, 1, n, nb, na, db);
  free(na);
  return REID_OK;
}

void cpu_register_distance_ops(reid_backend_ops *ops) {
  ops->distance_forward = cpu_distance_forward;
  ops->distance_backward = cpu_distance_backward;
}
