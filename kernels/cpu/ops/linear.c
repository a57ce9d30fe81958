/* Fully connected layer of the CPU backend:
 *   y[b, out] = x[b, in] w[out, in]^T + bias[out]
 * and its backward
 *   dx[b, in]   = dy[b, out] w[out, in]
 *   dw[out, in] = dy[b, out]^T x[b, in]
 *   dbias[out]  = sum_b dy[b, out]
 *
 * The three products run through one blocked kernel on row-major operands
 * that are both contiguous along the summed dimension,
 *   C[m, n] = C0[n] + A[m, k] B[n, k]^T      (every entry a dot product),
 * after transposing into scratch where needed: dx uses w^T [in, out], dw uses
 * dy^T [out, b] and x^T [in, b]. Transposes cost O(size), the products
 * O(b in out). OpenMP threads take (IB x JB) blocks of C, sized so that the A
 * and B rows of one depth slice stay in L2; inside a block, 2 x 4 register
 * tiles accumulate eight dot products in one simd loop over k. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cpu_ops.h"
#include "op_checks.h"

#define IB 32   /* rows of A per block */
#define JB 64   /* rows of B per block */
#define KC 2048 /* depth of one slice: (IB + JB) KC floats = 768 KB */

#define REQUIRE(op, ptr)                                                                           \
  do {                                                                                             \
    if (!(ptr)) return reid_fail(REID_EINVAL, "%s: %s is NULL", op, #ptr);                         \
  } while (0)

/* out[r][s] = a_r . b_s over k for 2 rows of A and 4 rows of B */
static void tile_dot(int k, const float *restrict a0, const float *restrict a1,
                     const float *restrict b0, const float *restrict b1, const float *restrict b2,
                     const float *restrict b3, float out[2][4]) {
  float s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
#pragma omp simd reduction(+ : s00, s01, s02, s03, s10, s11, s12, s13)
  for (int p = 0; p < k; p++) {
    s00 += a0[p] * b0[p], s01 += a0[p] * b1[p], s02 += a0[p] * b2[p], s03 += a0[p] * b3[p];
    s10 += a1[p] * b0[p], s11 += a1[p] * b1[p], s12 += a1[p] * b2[p], s13 += a1[p] * b3[p];
  }
  out[0][0] = s00, out[0][1] = s01, out[0][2] = s02, out[0][3] = s03;
  out[1][0] = s10, out[1][1] = s11, out[1][2] = s12, out[1][3] = s13;
}

/* C[m, n] = C0[n] (0 when C0 is NULL) + A[m, k] B[n, k]^T, all row-major and dense */
static void gemm_abt(int m, int n, int k, const float *a, const float *b, const float *c0,
                     float *c) {
  const int iblocks = (m + IB - 1) / IB, jblocks = (n + JB - 1) / JB;
#pragma omp parallel for collapse(2) schedule(dynamic) if (2.0 * m * n * k >= 4e6)
  for (int ib = 0; ib < iblocks; ib++) {
    for (int jb = 0; jb < jblocks; jb++) {
      const int i_end = (ib + 1) * IB < m ? (ib + 1) * IB : m;
      const int j_end = (jb + 1) * JB < n ? (jb + 1) * JB : n;
      for (int i = ib * IB; i < i_end; i++)
        for (int j = jb * JB; j < j_end; j++) c[(size_t)i * n + j] = c0 ? c0[j] : 0.0f;
      for (int p0 = 0; p0 < k; p0 += KC) {
        const int kc = k - p0 < KC ? k - p0 : KC;
        for (int i = ib * IB; i < i_end; i += 2) {
          /* a tile past the last row repeats that row and drops the result */
          const int i1 = i + 1 < i_end ? i + 1 : i;
          const float *a0 = a + (size_t)i * k + p0, *a1 = a + (size_t)i1 * k + p0;
          for (int j = jb * JB; j < j_end; j += 4) {
            const float *br[4];
            for (int s = 0; s < 4; s++) br[s] = b + (size_t)(j + s < j_end ? j + s : j) * k + p0;
            float t[2][4];
            tile_dot(kc, a0, a1, br[0], br[1], br[2], br[3], t);
            for (int r = 0; r < 2 && i + r < i_end; r++)
              for (int s = 0; s < 4 && j + s < j_end; s++)
                c[(size_t)(i + r) * n + j + s] += t[r][s];
          }
        }
      }
    }
  }
}

/* t[cols, rows] = x[rows, cols]^T, in 32 x 32 blocks */
static void transpose(int rows, int cols, const float *restrict x, float *restrict t) {
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)rows * cols >= (1u << 16))
  for (int r0 = 0; r0 < rows; r0 += 32) {
    for (int c0 = 0; c0 < cols; c0 += 32) {
      const int r1 = r0 + 32 < rows ? r0 + 32 : rows, c1 = c0 + 32 < cols ? c0 + 32 : cols;
      for (int cc = c0; cc < c1; cc++)
        for (int r = r0; r < r1; r++) t[(size_t)cc * rows + r] = x[(size_t)r * cols + cc];
    }
  }
}

/* y[b, out] = bias + x[b, in] w[out, in]^T */
static reid_status cpu_linear_forward(reid_backend *be, int b, int in, int out, const float *x,
                                      const float *w, const float *bias, float *y) {
  (void)be;
  const char *op = "linear_forward";
  REID_TRY(reid_check_linear(op, b, in, out));
  REQUIRE(op, x);
  REQUIRE(op, w);
  REQUIRE(op, y);
  gemm_abt(b, out, in, x, w, bias, y);
  return REID_OK;
}

static reid_status cpu_linear_backward(reid_backend *be, int b, int in, int out, const float *x,
                                       const float *w, const float *dy, float *dx, float *dw,
                                       float *dbias) {
  (void)be;
  const char *op = "linear_backward";
  REID_TRY(reid_check_linear(op, b, in, out));
  REQUIRE(op, dy);
  if (dx) REQUIRE(op, w);
  if (dw) REQUIRE(op, x);

  /* scratch: w^T [in, out] for dx; dy^T [out, b] and x^T [in, b] for dw */
  const size_t wt_len = dx ? (size_t)in * out : 0;
  const size_t dyt_len = dw ? (size_t)out * b : 0, xt_len = dw ? (size_t)in * b : 0;
  float *scratch = NULL;
  if (dx || dw) {
    scratch = malloc(sizeof(float) * (wt_len + dyt_len + xt_len));
    if (!scratch) return reid_fail(REID_ENOMEM, "%s: out of memory", op);
  }
  if (dx) {
    /* dx[b, in] = dy[b, out] (w^T)[in, out]^T */
    float *wt = scratch;
    transpose(out, in, w, wt);
    gemm_abt(b, in, out, dy, wt, NULL, dx);
  }
  if (dw) {
    /* dw[out, in] = (dy^T)[out, b] (x^T)[in, b]^T */
    float *dyt = scratch + wt_len, *xt = dyt + dyt_len;
    transpose(b, out, dy, dyt);
    transpose(b, in, x, xt);
    gemm_abt(out, in, b, dyt, xt, NULL, dw);
  }
  free(scratch);
  if (dbias) {
    /* dbias[out] = sum_i dy[i, out], rows added in order */
#pragma omp simd
    for (int j = 0; j < out; j++) dbias[j] = 0.0f;
    for (int i = 0; i < b; i++) {
      const float *dyr = dy + (size_t)i * out;
#pragma omp simd
      for (int j = 0; j < out; j++) dbias[j] += dyr[j];
    }
  }
  return REID_OK;
}

void cpu_register_linear_ops(reid_backend_ops *ops) {
  ops->linear_forward = cpu_linear_forward;
  ops->linear_backward = cpu_linear_backward;
}
