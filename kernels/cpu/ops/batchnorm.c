/* Batch normalisation of the CPU backend over x[n, c, hw] (hw = 1 for
 * BatchNorm1d). Channel ch owns the n * hw values x[i, ch, :].
 *
 * Memory order: every pass walks the planes x[i, ch, :] in storage order
 * (OpenMP splits the flat plane index), so each thread streams one long
 * contiguous range; visiting a channel's n short runs 2 MB apart instead is
 * ~3x slower on [64, 256, 64, 32]. Reductions therefore run in two steps:
 * per-plane partials into a scratch array, then a per-channel merge in plane
 * order (i = 0 .. n-1), which also makes results independent of the thread
 * count.
 *
 * Accuracy of the batch statistics (~100k values per channel): a plane is cut
 * into chunks of CHUNK floats; a chunk's mean and sum of squared deviations
 * come from two float passes over the chunk while it sits in L1 (short sums,
 * no cancellation), and chunks and planes are merged in double with Chan's
 * parallel update. No E[x^2] - E[x]^2 anywhere. The backward sums
 * accumulate float chunks in double.
 *
 * Normalisation follows PyTorch: biased variance in the output, unbiased
 * variance (N / (N - 1)) in running_var. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cpu_ops.h"
#include "norm_stats.h"
#include "op_checks.h"

#define PARALLEL_MIN ((size_t)1 << 15) /* elements worth waking the thread team for */

#define REQUIRE(op, ptr)                                                                           \
  do {                                                                                             \
    if (!(ptr)) return reid_fail(REID_EINVAL, "%s: %s is NULL", op, #ptr);                         \
  } while (0)

/* out[p] = (x[p, :] - mean[ch]) k[ch] + b[ch] for every plane p = (i, ch) */
static void affine_planes(int planes, int c, int hw, const float *x, const float *mean,
                          const float *k, const float *b, float *y) {
#pragma omp parallel for schedule(static) if ((size_t)planes * hw >= PARALLEL_MIN)
  for (int p = 0; p < planes; p++) {
    const int ch = p % c;
    const float m = mean[ch], kc = k[ch], bc = b[ch];
    const float *xr = x + (size_t)p * hw;
    float *yr = y + (size_t)p * hw;
#pragma omp simd
    for (int j = 0; j < hw; j++) yr[j] = (xr[j] - m) * kc + bc;
  }
}

/* dx[p] = k[ch] dy[p] + kx[ch] (x[p] - mean[ch]) + k0[ch] for every plane p = (i, ch) */
static void dx_planes(int planes, int c, int hw, const float *x, const float *dy, const float *mean,
                      const float *k, const float *kx, const float *k0, float *dx) {
#pragma omp parallel for schedule(static) if ((size_t)planes * hw >= PARALLEL_MIN)
  for (int p = 0; p < planes; p++) {
    const int ch = p % c;
    const float m = mean[ch], kc = k[ch], kxc = kx[ch], k0c = k0[ch];
    const float *xr = x + (size_t)p * hw;
    const float *dyr = dy + (size_t)p * hw;
    float *dxr = dx + (size_t)p * hw;
#pragma omp simd
    for (int j = 0; j < hw; j++) dxr[j] = kc * dyr[j] + kxc * (xr[j] - m) + k0c;
  }
}

static reid_status cpu_batchnorm_forward_train(reid_backend *be, int n, int c, int hw,
                                               const float *x, const float *gamma,
                                               const float *beta, float momentum, float eps,
                                               float *running_mean, float *running_var, float *y,
                                               float *save_mean, float *save_invstd) {
  (void)be;
  const char *op = "batchnorm_forward_train";
  REID_TRY(reid_check_batchnorm_train(op, n, c, hw, eps, momentum));
  REQUIRE(op, x);
  REQUIRE(op, gamma);
  REQUIRE(op, beta);
  REQUIRE(op, running_mean);
  REQUIRE(op, running_var);
  REQUIRE(op, y);
  REQUIRE(op, save_mean);
  REQUIRE(op, save_invstd);

  const int planes = n * c;
  const size_t len = (size_t)planes * hw;
  double *part = malloc(sizeof(double) * 2 * (size_t)planes); /* [planes][mean, m2] */
  float *scale = malloc(sizeof(float) * (size_t)c);           /* gamma invstd [c] */
  if (!part || !scale) {
    free(part), free(scale);
    return reid_fail(REID_ENOMEM, "%s: out of memory", op);
  }

  /* plane moments, in storage order */
#pragma omp parallel for schedule(static) if (len >= PARALLEL_MIN)
  for (int p = 0; p < planes; p++) {
    const moments st = moments_of_run(x + (size_t)p * hw, hw);
    part[2 * (size_t)p] = st.mean;
    part[2 * (size_t)p + 1] = st.m2;
  }

  /* per channel: merge its n planes, then the statistics */
  const double count = (double)n * hw; /* N values per channel */
#pragma omp parallel for schedule(static) if ((size_t)planes >= 4096)
  for (int ch = 0; ch < c; ch++) {
    moments st = {0.0, 0.0, 0.0};
    for (int i = 0; i < n; i++) {
      const size_t p = (size_t)i * c + ch;
      moments_merge(&st, hw, part[2 * p], part[2 * p + 1]);
    }
    const double mean = st.mean;
    const double var = st.m2 / count; /* biased */
    const double invstd = 1.0 / sqrt(var + (double)eps);
    save_mean[ch] = (float)mean;
    save_invstd[ch] = (float)invstd;
    scale[ch] = (float)(invstd * gamma[ch]);
    running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean);
    running_var[ch] =
        (float)((1.0 - momentum) * running_var[ch] + momentum * var * count / (count - 1.0));
  }

  /* y = (x - mean) invstd gamma + beta */
  affine_planes(planes, c, hw, x, save_mean, scale, beta, y);
  free(part);
  free(scale);
  return REID_OK;
}

static reid_status cpu_batchnorm_forward_eval(reid_backend *be, int n, int c, int hw,
                                              const float *x, const float *gamma, const float *beta,
                                              const float *running_mean, const float *running_var,
                                              float eps, float *y) {
  (void)be;
  const char *op = "batchnorm_forward_eval";
  REID_TRY(reid_check_batchnorm(op, n, c, hw, eps));
  REQUIRE(op, x);
  REQUIRE(op, gamma);
  REQUIRE(op, beta);
  REQUIRE(op, running_mean);
  REQUIRE(op, running_var);
  REQUIRE(op, y);
  float *scale = malloc(sizeof(float) * (size_t)c); /* gamma / sqrt(running_var + eps) */
  if (!scale) return reid_fail(REID_ENOMEM, "%s: out of memory", op);
  for (int ch = 0; ch < c; ch++)
    scale[ch] = (float)(gamma[ch] / sqrt((double)running_var[ch] + (double)eps));
  /* y = (x - running_mean) gamma / sqrt(running_var + eps) + beta */
  affine_planes(n * c, c, hw, x, running_mean, scale, beta, y);
  free(scale);
  return REID_OK;
}

/* Per-plane sdy, sdyx into part[planes][2], then per channel dbeta = sum sdy,
 * dgamma = invstd sum sdyx (plane order). Returns the channel sums in
 * sums[c][2] (may alias part: the merge reads plane (i, ch) only for ch). */
static void dy_channel_sums(int n, int c, int hw, const float *x, const float *dy,
                            const float *mean, double *part, double *sums) {
  const int planes = n * c;
#pragma omp parallel for schedule(static) if ((size_t)planes * hw >= PARALLEL_MIN)
  for (int p = 0; p < planes; p++) {
    const size_t off = (size_t)p * hw;
    dy_sums_of_run(x + off, dy + off, hw, mean[p % c], &part[2 * (size_t)p],
                   &part[2 * (size_t)p + 1]);
  }
  for (int ch = 0; ch < c; ch++) {
    double sdy = 0.0, sdyx = 0.0;
    for (int i = 0; i < n; i++) {
      const size_t p = (size_t)i * c + ch;
      sdy += part[2 * p];
      sdyx += part[2 * p + 1];
    }
    sums[2 * (size_t)ch] = sdy;
    sums[2 * (size_t)ch + 1] = sdyx;
  }
}

/* Training-mode backward with xhat = (x - mean) invstd:
 *   dbeta  = sum dy
 *   dgamma = sum dy xhat
 *   dx     = gamma invstd (dy - dbeta / N - xhat dgamma / N)
 *          = k dy + kx (x - mean) + k0 per channel */
static reid_status cpu_batchnorm_backward(reid_backend *be, int n, int c, int hw, const float *x,
                                          const float *gamma, const float *save_mean,
                                          const float *save_invstd, const float *dy, float *dx,
                                          float *dgamma, float *dbeta) {
  (void)be;
  const char *op = "batchnorm_backward";
  REID_TRY(reid_check_batchnorm(op, n, c, hw, 0.0f));
  REQUIRE(op, x);
  REQUIRE(op, gamma);
  REQUIRE(op, save_mean);
  REQUIRE(op, save_invstd);
  REQUIRE(op, dy);
  if (!dx && !dgamma && !dbeta) return REID_OK;

  const int planes = n * c;
  double *part = malloc(sizeof(double) * 2 * ((size_t)planes + c)); /* planes, then channels */
  float *coef = malloc(sizeof(float) * 3 * (size_t)c);              /* k, kx, k0 [c] each */
  if (!part || !coef) {
    free(part), free(coef);
    return reid_fail(REID_ENOMEM, "%s: out of memory", op);
  }
  double *sums = part + 2 * (size_t)planes;
  dy_channel_sums(n, c, hw, x, dy, save_mean, part, sums);

  const double count = (double)n * hw;
  float *k = coef, *kx = coef + c, *k0 = coef + 2 * c;
  for (int ch = 0; ch < c; ch++) {
    const double sdy = sums[2 * ch], sdyx = sums[2 * ch + 1];
    const double invstd = save_invstd[ch];
    if (dbeta) dbeta[ch] = (float)sdy;
    if (dgamma) dgamma[ch] = (float)(sdyx * invstd);
    const double g = (double)gamma[ch] * invstd;
    k[ch] = (float)g;
    kx[ch] = (float)(-g * invstd * invstd * sdyx / count);
    k0[ch] = (float)(-g * sdy / count);
  }
  if (dx) dx_planes(planes, c, hw, x, dy, save_mean, k, kx, k0, dx);
  free(part);
  free(coef);
  return REID_OK;
}

/* Eval-mode backward (statistics are constants), invstd = 1 / sqrt(running_var + eps):
 *   dx = dy gamma invstd,  dgamma = sum dy (x - running_mean) invstd,  dbeta = sum dy
 * x and running_mean are read only for dgamma. */
static reid_status cpu_batchnorm_backward_eval(reid_backend *be, int n, int c, int hw,
                                               const float *x, const float *gamma,
                                               const float *running_mean, const float *running_var,
                                               float eps, const float *dy, float *dx, float *dgamma,
                                               float *dbeta) {
  (void)be;
  const char *op = "batchnorm_backward_eval";
  REID_TRY(reid_check_batchnorm(op, n, c, hw, eps));
  REQUIRE(op, gamma);
  REQUIRE(op, running_var);
  REQUIRE(op, dy);
  if (dgamma) {
    REQUIRE(op, x);
    REQUIRE(op, running_mean);
  }
  if (!dx && !dgamma && !dbeta) return REID_OK;

  const int planes = n * c;
  double *part = NULL;
  if (dgamma || dbeta) part = malloc(sizeof(double) * 2 * ((size_t)planes + c));
  float *coef = malloc(sizeof(float) * 2 * (size_t)c); /* k [c], zeros [c] */
  if ((!part && (dgamma || dbeta)) || !coef) {
    free(part), free(coef);
    return reid_fail(REID_ENOMEM, "%s: out of memory", op);
  }
  float *k = coef, *zero = coef + c;
  for (int ch = 0; ch < c; ch++) {
    const double invstd = 1.0 / sqrt((double)running_var[ch] + (double)eps);
    k[ch] = (float)(gamma[ch] * invstd);
    zero[ch] = 0.0f;
  }
  if (part) {
    double *sums = part + 2 * (size_t)planes;
    /* without dgamma x may be NULL: pass dy with mean 0 and ignore the second sum */
    dy_channel_sums(n, c, hw, dgamma ? x : dy, dy, dgamma ? running_mean : zero, part, sums);
    for (int ch = 0; ch < c; ch++) {
      if (dbeta) dbeta[ch] = (float)sums[2 * ch];
      if (dgamma) dgamma[ch] = (float)(sums[2 * ch + 1] / sqrt((double)running_var[ch] + eps));
    }
  }
  /* dx = (dy - 0) k + 0 */
  if (dx) affine_planes(planes, c, hw, dy, zero, k, zero, dx);
  free(part);
  free(coef);
  return REID_OK;
}

void cpu_register_batchnorm_ops(reid_backend_ops *ops) {
  ops->batchnorm_forward_train = cpu_batchnorm_forward_train;
  ops->batchnorm_forward_eval = cpu_batchnorm_forward_eval;
  ops->batchnorm_backward = cpu_batchnorm_backward;
  ops->batchnorm_backward_eval = cpu_batchnorm_backward_eval;
}
