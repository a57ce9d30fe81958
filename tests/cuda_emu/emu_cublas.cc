/* A CPU fake of the cuBLAS v2 subset the CUDA backend calls
 * (kernels/cuda/linear.cu, cuda_backend.c): cublasCreate / Destroy /
 * SetStream / SetMathMode, cublasSgemm, cublasGetStatusName / String.
 *
 * cublasSgemm is column-major C = alpha op(A) op(B) + beta C with the BLAS
 * argument rules (CUBLAS_STATUS_INVALID_VALUE for a negative size, a bad
 * transpose or a leading dimension below its minimum), alpha / beta host
 * floats read at call time (the default host pointer mode), beta = 0 never
 * reading C, and every matrix checked to be emulated device memory covering
 * it. CUBLAS_TF32_TENSOR_OP_MATH rounds A and B to TF32 (round to nearest,
 * ties away, as cvt.rna.tf32.f32), the deprecated CUBLAS_TENSOR_OP_MATH to
 * fp16; other modes are full fp32. Dot products run in float lanes. The work
 * runs through emu::enqueue on the handle's stream with its arguments copied
 * by value, so it is recorded while the stream is captured into a graph.
 *
 * Not emulated: the device pointer mode, workspaces, atomics mode, every
 * other cuBLAS function (not defined). */
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "emu.h"

struct cublasContext {
  cudaStream_t stream; /* NULL: the legacy default stream */
  cublasMath_t math;
};

namespace {

__attribute__((format(printf, 3, 4))) cublasStatus_t fail(cublasStatus_t st, const char *call,
                                                          const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  emu::diagnose("%s: %s -> %s", call, msg, cublasGetStatusName(st));
  return st;
}

enum rounding { ROUND_NONE, ROUND_TF32, ROUND_HALF };

inline float round_operand(float v, rounding r) {
  if (r == ROUND_TF32) return emu::tf32_round(v);
  if (r == ROUND_HALF) return __half2float(__float2half_rn(v));
  return v;
}

typedef float v4 __attribute__((vector_size(16))); /* one SSE / NEON register */

/* sum of x[i] * y[i], i < n, in 8 float lanes (two registers) */
float dot(const float *x, const float *y, int n) {
  v4 s0 = {0, 0, 0, 0}, s1 = s0;
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    v4 x0, x1, y0, y1;
    memcpy(&x0, x + i, sizeof x0);
    memcpy(&x1, x + i + 4, sizeof x1);
    memcpy(&y0, y + i, sizeof y0);
    memcpy(&y1, y + i + 4, sizeof y1);
    s0 += x0 * y0;
    s1 += x1 * y1;
  }
  float s = ((s0[0] + s1[0]) + (s0[1] + s1[1])) + ((s0[2] + s1[2]) + (s0[3] + s1[3]));
  for (; i < n; i++) s += x[i] * y[i];
  return s;
}

/* Bytes of a column-major rows x cols matrix with leading dimension ld. */
size_t matrix_bytes(int rows, int cols, int ld) {
  if (rows == 0 || cols == 0) return 0;
  return ((size_t)ld * (cols - 1) + rows) * sizeof(float);
}

cublasStatus_t need_device(const char *call, const char *what, const void *p, size_t bytes) {
  const emu::memory m = emu::lookup(p, bytes);
  if (m == emu::memory::device) return CUBLAS_STATUS_SUCCESS;
  return fail(CUBLAS_STATUS_INVALID_VALUE, call,
              "%s = %p is not device memory holding %zu bytes (%s)", what, p, bytes,
              !p                         ? "NULL"
              : m == emu::memory::pinned ? "pinned host memory"
                                         : "host memory, or past the end of its allocation");
}

cublasStatus_t read_scalar(const char *call, const char *what, const float *p, float *out) {
  if (!p) return fail(CUBLAS_STATUS_INVALID_VALUE, call, "%s is NULL", what);
  if (emu::lookup(p, sizeof(float)) == emu::memory::device)
    return fail(CUBLAS_STATUS_INVALID_VALUE, call,
                "%s = %p is device memory but the pointer mode is CUBLAS_POINTER_MODE_HOST", what,
                (const void *)p);
  *out = *p;
  return CUBLAS_STATUS_SUCCESS;
}

/* The gemm itself. Arguments by value: it may run later, from a graph. */
struct gemm_args {
  int ta, tb, m, n, k, lda, ldb, ldc;
  float alpha, beta;
  const float *A, *B;
  float *C;
  rounding round;
};

/* C[i + j ldc] = alpha sum_l op(A)[i, l] op(B)[l, j] + beta C[i + j ldc]
 * with op(A)[i, l] = ta ? A[l + i lda] : A[i + l lda] and
 *      op(B)[l, j] = tb ? B[j + l ldb] : B[l + j ldb]. */
void gemm(const gemm_args &g) {
  if (g.m == 0 || g.n == 0) return;
  std::vector<float> a, b;
  if (g.k > 0 && g.alpha != 0.0f) {
    /* rows of op(A) and columns of op(B), contiguous over l */
    a.resize((size_t)g.m * g.k);
    b.resize((size_t)g.k * g.n);
    for (int i = 0; i < g.m; i++)
      for (int l = 0; l < g.k; l++)
        a[(size_t)i * g.k + l] =
            round_operand(g.ta ? g.A[l + (size_t)i * g.lda] : g.A[i + (size_t)l * g.lda], g.round);
    for (int j = 0; j < g.n; j++)
      for (int l = 0; l < g.k; l++)
        b[(size_t)j * g.k + l] =
            round_operand(g.tb ? g.B[j + (size_t)l * g.ldb] : g.B[l + (size_t)j * g.ldb], g.round);
  }
  for (int j = 0; j < g.n; j++)
    for (int i = 0; i < g.m; i++) {
      float *c = &g.C[i + (size_t)j * g.ldc];
      float v = a.empty() ? 0.0f : g.alpha * dot(&a[(size_t)i * g.k], &b[(size_t)j * g.k], g.k);
      if (g.beta != 0.0f) v += g.beta * *c;
      *c = v;
    }
}

} // namespace

const char *cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
  case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
  case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
  case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
  case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
  case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
  case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
  case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
  case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
  case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char *cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
  case CUBLAS_STATUS_SUCCESS: return "success";
  case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
  case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
  case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
  case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
  case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
  case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
  case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
  case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
  case CUBLAS_STATUS_LICENSE_ERROR:
    return "an error was detected when checking the current licensing";
  }
  return "unknown error";
}

cublasStatus_t cublasCreate(cublasHandle_t *handle) {
  if (!handle) return fail(CUBLAS_STATUS_INVALID_VALUE, "cublasCreate", "handle is NULL");
  *handle = new cublasContext{nullptr, CUBLAS_DEFAULT_MATH};
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  if (!handle) return fail(CUBLAS_STATUS_NOT_INITIALIZED, "cublasDestroy", "handle is NULL");
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t streamId) {
  if (!handle) return fail(CUBLAS_STATUS_NOT_INITIALIZED, "cublasSetStream", "handle is NULL");
  handle->stream = streamId;
  return CUBLAS_STATUS_SUCCESS;
}

/* mode: CUBLAS_DEFAULT_MATH, CUBLAS_TENSOR_OP_MATH (deprecated), CUBLAS_PEDANTIC_MATH,
 * CUBLAS_TF32_TENSOR_OP_MATH, CUBLAS_FP32_EMULATED_BF16X9_MATH, each optionally
 * | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION */
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  const char *call = "cublasSetMathMode";
  if (!handle) return fail(CUBLAS_STATUS_NOT_INITIALIZED, call, "handle is NULL");
  const unsigned base =
      (unsigned)mode & ~(unsigned)CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
  if (base > (unsigned)CUBLAS_FP32_EMULATED_BF16X9_MATH)
    return fail(CUBLAS_STATUS_INVALID_VALUE, call, "math mode %d is invalid", (int)mode);
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa,
                           cublasOperation_t transb, int m, int n, int k, const float *alpha,
                           const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc) {
  const char *call = "cublasSgemm";
  if (!handle) return fail(CUBLAS_STATUS_NOT_INITIALIZED, call, "handle is NULL");
  const int ta = transa == CUBLAS_OP_T || transa == CUBLAS_OP_C;
  const int tb = transb == CUBLAS_OP_T || transb == CUBLAS_OP_C;
  if (!ta && transa != CUBLAS_OP_N)
    return fail(CUBLAS_STATUS_INVALID_VALUE, call, "transa %d is invalid", (int)transa);
  if (!tb && transb != CUBLAS_OP_N)
    return fail(CUBLAS_STATUS_INVALID_VALUE, call, "transb %d is invalid", (int)transb);
  if (m < 0 || n < 0 || k < 0)
    return fail(CUBLAS_STATUS_INVALID_VALUE, call, "negative size m=%d n=%d k=%d", m, n, k);
  /* A is m x k (k x m transposed), B k x n (n x k), C m x n */
  const int a_rows = ta ? k : m, a_cols = ta ? m : k;
  const int b_rows = tb ? n : k, b_cols = tb ? k : n;
  if (lda < (a_rows > 1 ? a_rows : 1))
    return fail(CUBLAS_STATUS_INVALID_VALUE, call, "lda %d < max(1, %d)", lda, a_rows);
  if (ldb < (b_rows > 1 ? b_rows : 1))
    return fail(CUBLAS_STATUS_INVALID_VALUE, call, "ldb %d < max(1, %d)", ldb, b_rows);
  if (ldc < (m > 1 ? m : 1))
    return fail(CUBLAS_STATUS_INVALID_VALUE, call, "ldc %d < max(1, %d)", ldc, m);
  float a = 0, b = 0;
  cublasStatus_t st = read_scalar(call, "alpha", alpha, &a);
  if (st == CUBLAS_STATUS_SUCCESS) st = read_scalar(call, "beta", beta, &b);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  if (k > 0 && a != 0.0f) {
    st = need_device(call, "A", A, matrix_bytes(a_rows, a_cols, lda));
    if (st == CUBLAS_STATUS_SUCCESS)
      st = need_device(call, "B", B, matrix_bytes(b_rows, b_cols, ldb));
  }
  if (st == CUBLAS_STATUS_SUCCESS) st = need_device(call, "C", C, matrix_bytes(m, n, ldc));
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  const unsigned base =
      (unsigned)handle->math & ~(unsigned)CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
  const rounding r = base == CUBLAS_TF32_TENSOR_OP_MATH ? ROUND_TF32
                     : base == CUBLAS_TENSOR_OP_MATH    ? ROUND_HALF
                                                        : ROUND_NONE;
  const gemm_args g = {ta, tb, m, n, k, lda, ldb, ldc, a, b, A, B, C, r};
  const cudaError_t e = emu::enqueue(handle->stream, [g] { gemm(g); });
  if (e != cudaSuccess)
    return fail(CUBLAS_STATUS_EXECUTION_FAILED, call, "the stream refused the work: %s",
                cudaGetErrorName(e));
  return CUBLAS_STATUS_SUCCESS;
}
