/* Pairwise distances of the CUDA backend between the rows of a[m, d] and
 * b[n, d], with the CPU backend's semantics (kernels/cpu/ops/distance.c):
 *   sqeuclidean  s_ij = sum_k (a_ik - b_jk)^2   (differences before squaring)
 *   euclidean    e_ij = sqrt(s_ij + 1e-12)
 *   cosine       c_ij = 1 - a_i . b_j / (max(|a_i|, 1e-12) max(|b_j|, 1e-12))
 * Forward: 16 x 16 output tiles with the rows of a and b staged through
 * shared memory 16 columns at a time; norms in double. Backward: one block
 * per row of the gradient, threads over the columns k, each accumulating
 *   dx_r[k] = sum_c w_rc (x_r[k] - y_c[k])                         (sq, euclidean)
 *   dx_r[k] = sum_c -g_rc / (nx_r ny_c) y_c[k] + self_r / nx_r^2 x_r[k]   (cosine)
 * in the CPU's order. */
#include "cuda_kernels.cuh"
#include "op_checks.h"

#define TILE 16

template <int COSINE>
__global__ void k_pair_sums(int m, int n, int d, const float *a, const float *b, float *out) {
  __shared__ float as[TILE][TILE + 1], bs[TILE][TILE + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int i = blockIdx.y * TILE + ty, j = blockIdx.x * TILE + tx;
  float acc = 0.0f;
  for (int k0 = 0; k0 < d; k0 += TILE) {
    const int ar = blockIdx.y * TILE + ty, br = blockIdx.x * TILE + ty, kk = k0 + tx;
    as[ty][tx] = ar < m && kk < d ? a[(size_t)ar * d + kk] : 0.0f;
    bs[ty][tx] = br < n && kk < d ? b[(size_t)br * d + kk] : 0.0f;
    __syncthreads();
    const int kmax = d - k0 < TILE ? d - k0 : TILE;
    for (int k = 0; k < kmax; k++) {
      if (COSINE) {
        acc += as[ty][k] * bs[tx][k];
      } else {
        const float e = as[ty][k] - bs[tx][k];
        acc += e * e;
      }
    }
    __syncthreads();
  }
  if (i < m && j < n) out[(size_t)i * n + j] = acc;
}

/* one warp per row: out[i] = |x_i| in double */
__global__ void k_row_norms(int rows, int d, const float *x, double *out) {
  const int row = (int)((blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const float *xr = x + (size_t)row * d;
  double ss = 0.0;
  for (int k = lane; k < d; k += 32) ss += (double)xr[k] * xr[k];
  ss = warp_sum(ss);
  if (lane == 0) out[row] = sqrt(ss);
}

__global__ void k_distance_finalize(size_t total, int n, int kind, const double *na,
                                    const double *nb, float *dist) {
  GRID_STRIDE(o, total) {
    double v = dist[o];
    if (kind == REID_DIST_EUCLIDEAN) v = sqrt(v + (double)REID_EUCLIDEAN_EPS);
    if (kind == REID_DIST_COSINE)
      v = 1.0 -
          v / (fmax(na[o / n], (double)REID_L2NORM_EPS) * fmax(nb[o % n], (double)REID_L2NORM_EPS));
    dist[o] = (float)v;
  }
}

/* gradient rows of x[rows, d] against y[cols, d]; g(r, c) = ddist[r g_rs + c g_cs] */
__global__ void k_rows_backward(int kind, int cols, int d, const float *x, const float *y,
                                const float *dist, const float *ddist, long long g_rs,
                                long long g_cs, const double *nx, const double *ny, float *dx) {
  const int r = blockIdx.x;
  const float *xr = x + (size_t)r * d;
  float *dxr = dx + (size_t)r * d;
  const double eps = REID_L2NORM_EPS;
  for (int k = threadIdx.x; k < d; k += blockDim.x) {
    float acc = 0.0f;
    if (kind == REID_DIST_COSINE) {
      const double nxr = fmax(nx[r], eps);
      double self = 0.0; /* sum_c g_rc cos_rc */
      for (int c = 0; c < cols; c++) {
        const long long gi = r * g_rs + c * g_cs;
        const double g = ddist[gi];
        if (g == 0.0) continue;
        self += g * (1.0 - dist[gi]);
        const float w = (float)(-g / (nxr * fmax(ny[c], eps)));
        acc += w * y[(size_t)c * d + k];
      }
      if (nx[r] >= eps) acc += (float)(self / (nxr * nxr)) * xr[k];
    } else {
      for (int c = 0; c < cols; c++) {
        const long long gi = r * g_rs + c * g_cs;
        const float g = ddist[gi];
        if (g == 0.0f) continue;
        const float w = kind == REID_DIST_SQEUCLIDEAN ? 2.0f * g : g / dist[gi];
        acc += w * (xr[k] - y[(size_t)c * d + k]);
      }
    }
    dxr[k] = acc;
  }
}

/* ---- host side ---- */

static reid_status row_norms(cuda_state *s, int m, int n, int d, const float *a, const float *b,
                             double **na, double **nb) {
  void *p;
  REID_TRY(cuda_scratch(s, sizeof(double) * ((size_t)m + n), &p));
  *na = (double *)p;
  *nb = *na + m;
  k_row_norms<<<(int)(((size_t)m * 32 + 255) / 256), 256, 0, s->stream>>>(m, d, a, *na);
  CUDA_LAUNCH_CHECK("k_row_norms");
  k_row_norms<<<(int)(((size_t)n * 32 + 255) / 256), 256, 0, s->stream>>>(n, d, b, *nb);
  CUDA_LAUNCH_CHECK("k_row_norms");
  return REID_OK;
}

static reid_status cuda_distance_forward(reid_backend *be, reid_distance_kind kind, int m, int n,
                                         int d, const float *a, const float *b, float *dist) {
  const char *op = "distance_forward";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(reid_check_distance(op, kind, m, n, d));
  CUDA_REQUIRE(op, a);
  CUDA_REQUIRE(op, b);
  CUDA_REQUIRE(op, dist);
  double *na = NULL, *nb = NULL;
  if (kind == REID_DIST_COSINE) REID_TRY(row_norms(s, m, n, d, a, b, &na, &nb));
  dim3 block(TILE, TILE),
      grid((unsigned)((n + TILE - 1) / TILE), (unsigned)((m + TILE - 1) / TILE));
  if (grid.y > 65535) return reid_fail(REID_EINVAL, "%s: m=%d too large for one launch", op, m);
  if (kind == REID_DIST_COSINE)
    k_pair_sums<1><<<grid, block, 0, s->stream>>>(m, n, d, a, b, dist);
  else
    k_pair_sums<0><<<grid, block, 0, s->stream>>>(m, n, d, a, b, dist);
  CUDA_LAUNCH_CHECK("k_pair_sums");
  if (kind != REID_DIST_SQEUCLIDEAN) {
    const size_t total = (size_t)m * n;
    k_distance_finalize<<<cuda_grid_for(s, total, 256), 256, 0, s->stream>>>(total, n, (int)kind,
                                                                             na, nb, dist);
    CUDA_LAUNCH_CHECK("k_distance_finalize");
  }
  return REID_OK;
}

static reid_status cuda_distance_backward(reid_backend *be, reid_distance_kind kind, int m, int n,
                                          int d, const float *a, const float *b, const float *dist,
                                          const float *ddist, float *da, float *db) {
  const char *op = "distance_backward";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(reid_check_distance(op, kind, m, n, d));
  if (!da && !db) return REID_OK;
  CUDA_REQUIRE(op, a);
  CUDA_REQUIRE(op, b);
  CUDA_REQUIRE(op, ddist);
  if (kind != REID_DIST_SQEUCLIDEAN) CUDA_REQUIRE(op, dist);
  double *na = NULL, *nb = NULL;
  if (kind == REID_DIST_COSINE) REID_TRY(row_norms(s, m, n, d, a, b, &na, &nb));
  const int threads = d >= 256 ? 256 : (d + 31) / 32 * 32;
  if (da) {
    k_rows_backward<<<m, threads, 0, s->stream>>>((int)kind, n, d, a, b, dist, ddist, n, 1, na, nb,
                                                  da);
    CUDA_LAUNCH_CHECK("k_rows_backward");
  }
  if (db) {
    k_rows_backward<<<n, threads, 0, s->stream>>>((int)kind, m, d, b, a, dist, ddist, 1, n, nb, na,
                                                  db);
    CUDA_LAUNCH_CHECK("k_rows_backward");
  }
  return REID_OK;
}

extern "C" void cuda_register_distance_ops(reid_backend_ops *ops) {
  ops->distance_forward = cuda_distance_forward;
  ops->distance_backward = cuda_distance_backward;
}
