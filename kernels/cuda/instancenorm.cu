/* Instance norm (InstanceNorm2d(affine=True)) and the channel block copy
 * behind concat and channel slices, CUDA backend, with the CPU backend's
 * semantics (kernels/cpu/ops/instancenorm.c).
 *
 * One block per plane p = (i, ch) of x[n, c, hw]: its statistics are two-pass
 * sums in double (mean, then sum of squared deviations; the CPU merges
 * chunked float sums in double), the per-element maps run in float in the
 * CPU's order of operations (built with -fmad=false). The per-channel
 * parameter gradients add the planes' double sums in sample order, as the
 * CPU does, so they do not depend on the launch shape. */
#include "cuda_kernels.cuh"
#include "op_checks.h"

static const int THREADS = 256;

/* y = (x - mean_p) k + beta[ch], k = invstd_p gamma[ch] */
__global__ void k_in_forward(int c, int hw, float eps, const float *x, const float *gamma,
                             const float *beta, float *y, float *save_mean, float *save_invstd) {
  const size_t p = blockIdx.x;
  const int ch = (int)(p % (size_t)c);
  const float *xr = x + p * hw;
  float *yr = y + p * hw;
  __shared__ double shared[32];
  double s = 0.0;
  for (int j = threadIdx.x; j < hw; j += blockDim.x) s += xr[j];
  const double mean = block_sum(s, shared) / hw;
  double q = 0.0;
  for (int j = threadIdx.x; j < hw; j += blockDim.x) {
    const double d = (double)xr[j] - mean;
    q += d * d;
  }
  const double invstd = 1.0 / sqrt(block_sum(q, shared) / hw + (double)eps);
  const float m = (float)mean, k = (float)(invstd * gamma[ch]), b = beta[ch];
  if (threadIdx.x == 0) {
    save_mean[p] = m;
    save_invstd[p] = (float)invstd;
  }
  for (int j = threadIdx.x; j < hw; j += blockDim.x) yr[j] = (xr[j] - m) * k + b;
}

/* part[p] = {sum dy, sum dy (x - mean_p)};
 * dx = k dy + kx (x - mean_p) + k0 with k = gamma invstd, kx = -k invstd^2 sdyx / hw,
 * k0 = -k sdy / hw (dx may be NULL) */
__global__ void k_in_backward(int c, int hw, const float *x, const float *gamma,
                              const float *save_mean, const float *save_invstd, const float *dy,
                              float *dx, double *part) {
  const size_t p = blockIdx.x;
  const int ch = (int)(p % (size_t)c);
  const float *xr = x + p * hw, *dyr = dy + p * hw;
  const float m = save_mean[p];
  __shared__ double shared[32];
  double a = 0.0, b = 0.0;
  for (int j = threadIdx.x; j < hw; j += blockDim.x) {
    const double g = dyr[j];
    a += g;
    b += g * (double)(xr[j] - m);
  }
  const double sdy = block_sum(a, shared), sdyx = block_sum(b, shared);
  if (threadIdx.x == 0) {
    part[2 * p] = sdy;
    part[2 * p + 1] = sdyx;
  }
  if (!dx) return;
  const double invstd = save_invstd[p], g = (double)gamma[ch] * invstd;
  const float k = (float)g, kx = (float)(-g * invstd * invstd * sdyx / hw),
              k0 = (float)(-g * sdy / hw);
  float *dxr = dx + p * hw;
  for (int j = threadIdx.x; j < hw; j += blockDim.x) dxr[j] = k * dyr[j] + kx * (xr[j] - m) + k0;
}

/* dbeta[ch] = sum over samples of sdy, dgamma[ch] = sum of invstd_p sdyx (either may be NULL) */
__global__ void k_in_param_grads(int n, int c, const double *part, const float *save_invstd,
                                 float *dgamma, float *dbeta) {
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  double sdy = 0.0, sgx = 0.0;
  for (int i = 0; i < n; i++) {
    const size_t p = (size_t)i * c + ch;
    sdy += part[2 * p];
    sgx += part[2 * p + 1] * save_invstd[p];
  }
  if (dbeta) dbeta[ch] = (float)sdy;
  if (dgamma) dgamma[ch] = (float)sgx;
}

/* dst[i, dst_c0 + j, :] = src[i, src_c0 + j, :] over block = c hw floats per sample */
__global__ void k_channel_copy(size_t total, size_t block, int src_c, int src_c0, int dst_c,
                               int dst_c0, int hw, const float *src, float *dst) {
  GRID_STRIDE(t, total) {
    const size_t i = t / block, r = t - i * block;
    dst[(i * dst_c + dst_c0) * hw + r] = src[(i * src_c + src_c0) * hw + r];
  }
}

static reid_status cuda_instancenorm_forward(reid_backend *be, int n, int c, int hw, const float *x,
                                             const float *gamma, const float *beta, float eps,
                                             float *y, float *save_mean, float *save_invstd) {
  const char *op = "instancenorm_forward";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(reid_check_instancenorm(op, n, c, hw, eps));
  CUDA_REQUIRE(op, x);
  CUDA_REQUIRE(op, gamma);
  CUDA_REQUIRE(op, beta);
  CUDA_REQUIRE(op, y);
  CUDA_REQUIRE(op, save_mean);
  CUDA_REQUIRE(op, save_invstd);
  k_in_forward<<<(unsigned)(n * c), THREADS, 0, s->stream>>>(c, hw, eps, x, gamma, beta, y,
                                                             save_mean, save_invstd);
  CUDA_LAUNCH_CHECK("k_in_forward");
  return REID_OK;
}

static reid_status cuda_instancenorm_backward(reid_backend *be, int n, int c, int hw,
                                              const float *x, const float *gamma,
                                              const float *save_mean, const float *save_invstd,
                                              const float *dy, float *dx, float *dgamma,
                                              float *dbeta) {
  const char *op = "instancenorm_backward";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(reid_check_instancenorm(op, n, c, hw, 0.0f));
  CUDA_REQUIRE(op, x);
  CUDA_REQUIRE(op, gamma);
  CUDA_REQUIRE(op, save_mean);
  CUDA_REQUIRE(op, save_invstd);
  CUDA_REQUIRE(op, dy);
  if (!dx && !dgamma && !dbeta) return REID_OK;
  void *scratch;
  REID_TRY(cuda_scratch(s, sizeof(double) * 2 * (size_t)n * c, &scratch));
  double *part = (double *)scratch;
  k_in_backward<<<(unsigned)(n * c), THREADS, 0, s->stream>>>(c, hw, x, gamma, save_mean,
                                                              save_invstd, dy, dx, part);
  CUDA_LAUNCH_CHECK("k_in_backward");
  if (dgamma || dbeta) {
    k_in_param_grads<<<(c + THREADS - 1) / THREADS, THREADS, 0, s->stream>>>(
        n, c, part, save_invstd, dgamma, dbeta);
    CUDA_LAUNCH_CHECK("k_in_param_grads");
  }
  return REID_OK;
}

static reid_status cuda_channel_copy(reid_backend *be, int n, int hw, int c, const float *src,
                                     int src_c, int src_c0, float *dst, int dst_c, int dst_c0) {
  const char *op = "channel_copy";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(reid_check_channel_copy(op, n, hw, c, src_c, src_c0, dst_c, dst_c0));
  CUDA_REQUIRE(op, src);
  CUDA_REQUIRE(op, dst);
  const size_t block = (size_t)c * hw, total = block * n;
  k_channel_copy<<<cuda_grid_for(s, total, THREADS), THREADS, 0, s->stream>>>(
      total, block, src_c, src_c0, dst_c, dst_c0, hw, src, dst);
  CUDA_LAUNCH_CHECK("k_channel_copy");
  return REID_OK;
}

extern "C" void cuda_register_instancenorm_ops(reid_backend_ops *ops) {
  ops->instancenorm_forward = cuda_instancenorm_forward;
  ops->instancenorm_backward = cuda_instancenorm_backward;
  ops->channel_copy = cuda_channel_copy;
}
