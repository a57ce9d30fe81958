/* Fully connected layer of the CUDA backend through cuBLAS (column-major):
 *   y[b, out] = x[b, in] w[out, in]^T + bias[out]
 *   dx[b, in] = dy[b, out] w[out, in],  dw[out, in] = dy^T x,  dbias = sum_b dy
 * A row-major [r, c] matrix is a column-major [c, r] one, so with
 * X = x^T [in, b], W = w^T [in, out], Y = y^T [out, b]:
 *   Y  = W^T X     gemm(T, N, m=out, n=b,   k=in)
 *   DX = W DY      gemm(N, N, m=in,  n=b,   k=out)
 *   DW = X DY^T    gemm(N, T, m=in,  n=out, k=b)     (DW = dw^T [in, out])
 * Math mode: strict fp32 unless reid_cuda_set_tf32 enabled TF32. dbias sums
 * the rows in order, as the CPU does. */
#include "cuda_kernels.cuh"
#include "op_checks.h"

static const int THREADS = 256;

/* y[i, j] = bias[j] */
__global__ void k_bias_rows(size_t total, int out, const float *bias, float *y) {
  GRID_STRIDE(i, total) y[i] = bias[i % out];
}

/* dbias[j] = dy[0, j] + dy[1, j] + ... in row order */
__global__ void k_column_sum(int b, int out, const float *dy, float *dbias) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= out) return;
  float acc = 0.0f;
  for (int i = 0; i < b; i++) acc += dy[(size_t)i * out + j];
  dbias[j] = acc;
}

static reid_status cuda_linear_forward(reid_backend *be, int b, int in, int out, const float *x,
                                       const float *w, const float *bias, float *y) {
  const char *op = "linear_forward";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(reid_check_linear(op, b, in, out));
  CUDA_REQUIRE(op, x);
  CUDA_REQUIRE(op, w);
  CUDA_REQUIRE(op, y);
  float beta = 0.0f;
  if (bias) {
    const size_t total = (size_t)b * out;
    k_bias_rows<<<cuda_grid_for(s, total, THREADS), THREADS, 0, s->stream>>>(total, out, bias, y);
    CUDA_LAUNCH_CHECK("k_bias_rows");
    beta = 1.0f;
  }
  const float one = 1.0f;
  CUBLAS_CHECK(cublasSgemm(s->cublas, CUBLAS_OP_T, CUBLAS_OP_N, out, b, in, &one, w, in, x, in,
                           &beta, y, out));
  return REID_OK;
}

static reid_status cuda_linear_backward(reid_backend *be, int b, int in, int out, const float *x,
                                        const float *w, const float *dy, float *dx, float *dw,
                                        float *dbias) {
  const char *op = "linear_backward";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(reid_check_linear(op, b, in, out));
  CUDA_REQUIRE(op, dy);
  if (dx) CUDA_REQUIRE(op, w);
  if (dw) CUDA_REQUIRE(op, x);
  const float one = 1.0f, zero = 0.0f;
  if (dx)
    CUBLAS_CHECK(cublasSgemm(s->cublas, CUBLAS_OP_N, CUBLAS_OP_N, in, b, out, &one, w, in, dy, out,
                             &zero, dx, in));
  if (dw)
    CUBLAS_CHECK(cublasSgemm(s->cublas, CUBLAS_OP_N, CUBLAS_OP_T, in, out, b, &one, x, in, dy, out,
                             &zero, dw, in));
  if (dbias) {
    k_column_sum<<<(out + THREADS - 1) / THREADS, THREADS, 0, s->stream>>>(b, out, dy, dbias);
    CUDA_LAUNCH_CHECK("k_column_sum");
  }
  return REID_OK;
}

extern "C" void cuda_register_linear_ops(reid_backend_ops *ops) {
  ops->linear_forward = cuda_linear_forward;
  ops->linear_backward = cuda_linear_backward;
}
