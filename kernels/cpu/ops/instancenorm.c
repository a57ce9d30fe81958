/* Instance norm (InstanceNorm2d(affine=True), IBN-Net / OSNet-IBN / OSNet-AIN)
 * and the channel block copy behind concat and channel slices, CPU backend.
 *
 * Instance norm over x[n, c, hw]: every plane p = (i, ch) is one run of hw
 * floats normalised with its own statistics (biased variance, as PyTorch):
 *   y = xhat gamma[ch] + beta[ch],  xhat = (x - mean_p) invstd_p
 * Backward per plane, with sdy = sum dy, sdyx = sum dy (x - mean_p):
 *   dx     = gamma invstd (dy - sdy / hw - xhat invstd sdyx / hw)
 *   dgamma = sum over the channel's planes of invstd sdyx,  dbeta = sum of sdy
 * The plane statistics use batchnorm.c's chunked sums (norm_stats.h). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_ops.h"
#include "norm_stats.h"
#include "op_checks.h"

#define PARALLEL_MIN ((size_t)1 << 15)

#define REQUIRE(op, ptr)                                                                           \
  do {                                                                                             \
    if (!(ptr)) return reid_fail(REID_EINVAL, "%s: %s is NULL", op, #ptr);                         \
  } while (0)

static reid_status cpu_instancenorm_forward(reid_backend *be, int n, int c, int hw, const float *x,
                                            const float *gamma, const float *beta, float eps,
                                            float *y, float *save_mean, float *save_invstd) {
  (void)be;
  const char *op = "instancenorm_forward";
  REID_TRY(reid_check_instancenorm(op, n, c, hw, eps));
  REQUIRE(op, x);
  REQUIRE(op, gamma);
  REQUIRE(op, beta);
  REQUIRE(op, y);
  REQUIRE(op, save_mean);
  REQUIRE(op, save_invstd);
  const int planes = n * c;
#pragma omp parallel for schedule(static) if ((size_t)planes * hw >= PARALLEL_MIN)
  for (int p = 0; p < planes; p++) {
    const int ch = p % c;
    const float *xr = x + (size_t)p * hw;
    float *yr = y + (size_t)p * hw;
    const moments st = moments_of_run(xr, hw);
    const double invstd = 1.0 / sqrt(st.m2 / hw + (double)eps);
    const float m = (float)st.mean, k = (float)(invstd * gamma[ch]), b = beta[ch];
    save_mean[p] = m;
    save_invstd[p] = (float)invstd;
#pragma omp simd
    for (int j = 0; j < hw; j++) yr[j] = (xr[j] - m) * k + b;
  }
  return REID_OK;
}

static reid_status cpu_instancenorm_backward(reid_backend *be, int n, int c, int hw, const float *x,
                                             const float *gamma, const float *save_mean,
                                             const float *save_invstd, const float *dy, float *dx,
                                             float *dgamma, float *dbeta) {
  (void)be;
  const char *op = "instancenorm_backward";
  REID_TRY(reid_check_instancenorm(op, n, c, hw, 0.0f));
  REQUIRE(op, x);
  REQUIRE(op, gamma);
  REQUIRE(op, save_mean);
  REQUIRE(op, save_invstd);
  REQUIRE(op, dy);
  if (!dx && !dgamma && !dbeta) return REID_OK;
  const int planes = n * c;
  double *part = malloc(sizeof(double) * 2 * (size_t)planes); /* [planes][sdy, sdyx] */
  if (!part) return reid_fail(REID_ENOMEM, "%s: out of memory", op);
#pragma omp parallel for schedule(static) if ((size_t)planes * hw >= PARALLEL_MIN)
  for (int p = 0; p < planes; p++) {
    const size_t off = (size_t)p * hw;
    double sdy, sdyx;
    dy_sums_of_run(x + off, dy + off, hw, save_mean[p], &sdy, &sdyx);
    part[2 * (size_t)p] = sdy;
    part[2 * (size_t)p + 1] = sdyx;
    if (!dx) continue;
    const double invstd = save_invstd[p], g = (double)gamma[p % c] * invstd;
    const float k = (float)g, kx = (float)(-g * invstd * invstd * sdyx / hw),
                k0 = (float)(-g * sdy / hw), m = save_mean[p];
    const float *xr = x + off, *dyr = dy + off;
    float *dxr = dx + off;
#pragma omp simd
    for (int j = 0; j < hw; j++) dxr[j] = k * dyr[j] + kx * (xr[j] - m) + k0;
  }
  for (int ch = 0; ch < c; ch++) { /* plane order: independent of the thread count */
    double sdy = 0.0, sgx = 0.0;
    for (int i = 0; i < n; i++) {
      const size_t p = (size_t)i * c + ch;
      sdy += part[2 * p];
      sgx += part[2 * p + 1] * save_invstd[p];
    }
    if (dbeta) dbeta[ch] = (float)sdy;
    if (dgamma) dgamma[ch] = (float)sgx;
  }
  free(part);
  return REID_OK;
}

static reid_status cpu_channel_copy(reid_backend *be, int n, int hw, int c, const float *src,
                                    int src_c, int src_c0, float *dst, int dst_c, int dst_c0) {
  (void)be;
  const char *op = "channel_copy";
  REID_TRY(reid_check_channel_copy(op, n, hw, c, src_c, src_c0, dst_c, dst_c0));
  REQUIRE(op, src);
  REQUIRE(op, dst);
  const size_t block = (size_t)c * hw;
#pragma omp parallel for schedule(static) if ((size_t)n * block >= PARALLEL_MIN)
  for (int i = 0; i < n; i++)
    memcpy(dst + ((size_t)i * dst_c + dst_c0) * hw, src + ((size_t)i * src_c + src_c0) * hw,
           block * sizeof(float));
  return REID_OK;
}

void cpu_register_instancenorm_ops(reid_backend_ops *ops) {
  ops->instancenorm_forward = cpu_instancenorm_forward;
  ops->instancenorm_backward = cpu_instancenorm_backward;
  ops->channel_copy = cpu_channel_copy;
}
