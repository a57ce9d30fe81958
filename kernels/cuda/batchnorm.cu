/* Batch normalisation of the CUDA backend over x[n, c, hw] (hw = 1 for
 * BatchNorm1d), with the CPU backend's semantics (kernels/cpu/ops/batchnorm.c):
 * biased variance in the output, unbiased in running_var, PyTorch momentum.
 *
 * Per-channel reductions run in two steps: a grid of (channel, split) blocks
 * sums its share of the channel's N = n * hw values in double into
 * part[c][splits][2], then one thread per channel adds the splits in order.
 * Statistics are two-pass (mean, then sum of squared deviations), so there is
 * no E[x^2] - E[x]^2 cancellation; the per-element maps then run in float in
 * the CPU's order of operations (built with -fmad=false). */
#include "cuda_kernels.cuh"
#include "op_checks.h"

enum { SUM_X, SUM_SQDEV, SUM_DY_DYX, SUM_DY };

static const int THREADS = 256;

/* part[ch, s] = sums over values [N s / S, N (s + 1) / S) of channel ch:
 *   SUM_X: x;  SUM_SQDEV: (x - mean_d)^2;  SUM_DY_DYX: dy, dy (x - mean_f);  SUM_DY: x */
template <int MODE>
__global__ void k_channel_partials(int n, int c, int hw, int splits, const float *x,
                                   const float *dy, const double *mean_d, const float *mean_f,
                                   double *part) {
  const int ch = blockIdx.x, sp = blockIdx.y;
  /* N = n hw <= INT32_MAX (checked), so 32-bit indices cannot wrap */
  const unsigned N = (unsigned)n * (unsigned)hw;
  const unsigned lo = (unsigned)((unsigned long long)N * sp / splits);
  const unsigned hi = (unsigned)((unsigned long long)N * (sp + 1) / splits);
  const double m = MODE == SUM_SQDEV ? mean_d[ch] : MODE == SUM_DY_DYX ? (double)mean_f[ch] : 0.0;
  double a = 0.0, b = 0.0;
  for (unsigned t = lo + threadIdx.x; t < hi; t += blockDim.x) {
    const unsigned i = t / (unsigned)hw;
    const size_t idx = ((size_t)i * c + ch) * hw + (t - i * (unsigned)hw);
    if (MODE == SUM_X || MODE == SUM_DY) {
      a += x[idx];
    } else if (MODE == SUM_SQDEV) {
      const double d = (double)x[idx] - m;
      a += d * d;
    } else {
      const double g = dy[idx];
      a += g;
      b += g * ((double)x[idx] - m);
    }
  }
  __shared__ double shared[32];
  a = block_sum(a, shared);
  if (MODE == SUM_DY_DYX) b = block_sum(b, shared);
  if (threadIdx.x == 0) {
    part[((size_t)ch * splits + sp) * 2] = a;
    part[((size_t)ch * splits + sp) * 2 + 1] = b;
  }
}

__device__ __forceinline__ double split_total(const double *part, int ch, int splits, int k) {
  double s = 0.0;
  for (int i = 0; i < splits; i++) s += part[((size_t)ch * splits + i) * 2 + k];
  return s;
}

__global__ void k_mean(int c, int splits, double count, const double *part, double *mean) {
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch < c) mean[ch] = split_total(part, ch, splits, 0) / count;
}

__global__ void k_channel_total(int c, int splits, const double *part, float *out) {
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch < c) out[ch] = (float)split_total(part, ch, splits, 0);
}

/* batch statistics -> save_mean, save_invstd, scale = gamma invstd, running stats */
__global__ void k_train_stats(int c, int splits, double count, float momentum, float eps,
                              const double *part, const double *mean_d, const float *gamma,
                              float *running_mean, float *running_var, float *save_mean,
                              float *save_invstd, float *scale) {
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  const double mean = mean_d[ch];
  const double var = split_total(part, ch, splits, 0) / count; /* biased */
  const double invstd = 1.0 / sqrt(var + (double)eps);
  save_mean[ch] = (float)mean;
  save_invstd[ch] = (float)invstd;
  scale[ch] = (float)(invstd * gamma[ch]);
  running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean);
  running_var[ch] =
      (float)((1.0 - momentum) * running_var[ch] + momentum * var * count / (count - 1.0));
}

/* scale = gamma / sqrt(running_var + eps); `reciprocal` forms it as gamma * (1 / sqrt(..)),
 * the CPU backward's rounding */
__global__ void k_eval_scale(int c, float eps, int reciprocal, const float *gamma,
                             const float *running_var, float *scale) {
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  const double root = sqrt((double)running_var[ch] + (double)eps);
  scale[ch] = reciprocal ? (float)(gamma[ch] * (1.0 / root)) : (float)(gamma[ch] / root);
}

/* for (I i = first; i < total; i += grid size): I is uint32_t when total < 2^31
 * (the divisions by hw and c are then 32-bit), size_t otherwise */
#define INDEX_LOOP(I, i, total)                                                                    \
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < (total); i += (I)gridDim.x * blockDim.x)

/* y = (x - mean[ch]) k[ch] + b[ch] */
template <typename I>
__global__ void k_affine(I total, int c, int hw, const float *x, const float *mean, const float *k,
                         const float *b, float *y) {
  INDEX_LOOP(I, i, total) {
    const int ch = (int)((i / (I)hw) % (I)c);
    y[i] = (x[i] - mean[ch]) * k[ch] + b[ch];
  }
}

/* dx = dy k[ch] */
template <typename I>
__global__ void k_scale_channels(I total, int c, int hw, const float *dy, const float *k,
                                 float *dx) {
  INDEX_LOOP(I, i, total) {
    const int ch = (int)((i / (I)hw) % (I)c);
    dx[i] = dy[i] * k[ch];
  }
}

/* dbeta = sum dy, dgamma = invstd sum dy (x - mean); dx coefficients k, kx, k0 */
__global__ void k_backward_coef(int c, int splits, double count, const double *part,
                                const float *gamma, const float *save_invstd, float *dgamma,
                                float *dbeta, float *k, float *kx, float *k0) {
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  const double sdy = split_total(part, ch, splits, 0), sdyx = split_total(part, ch, splits, 1);
  const double invstd = save_invstd[ch];
  if (dbeta) dbeta[ch] = (float)sdy;
  if (dgamma) dgamma[ch] = (float)(sdyx * invstd);
  const double g = (double)gamma[ch] * invstd;
  k[ch] = (float)g;
  kx[ch] = (float)(-g * invstd * invstd * sdyx / count);
  k0[ch] = (float)(-g * sdy / count);
}

/* dx = k dy + kx (x - mean) + k0 */
template <typename I>
__global__ void k_dx(I total, int c, int hw, const float *x, const float *dy, const float *mean,
                     const float *k, const float *kx, const float *k0, float *dx) {
  INDEX_LOOP(I, i, total) {
    const int ch = (int)((i / (I)hw) % (I)c);
    dx[i] = k[ch] * dy[i] + kx[ch] * (x[i] - mean[ch]) + k0[ch];
  }
}

__global__ void k_eval_param_grads(int c, int splits, float eps, const double *part,
                                   const float *running_var, float *dgamma, float *dbeta) {
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  if (dbeta) dbeta[ch] = (float)split_total(part, ch, splits, 0);
  if (dgamma)
    dgamma[ch] = (float)(split_total(part, ch, splits, 1) / sqrt((double)running_var[ch] + eps));
}

/* ---- host side ---- */

static int choose_splits(const cuda_state *s, int c, long long N) {
  long long target = 4LL * (s->sm_count > 0 ? s->sm_count : 16);
  long long splits = (target + c - 1) / c;
  long long most = N / 2048;
  if (splits > most) splits = most;
  if (splits > 1024) splits = 1024;
  return splits < 1 ? 1 : (int)splits;
}

static inline int chan_blocks(int c) {
  return (c + THREADS - 1) / THREADS;
}

/* Launches an INDEX_LOOP kernel over `total` elements with 32-bit indices when they fit. */
#define LAUNCH_INDEXED(kernel, total, ...)                                                         \
  do {                                                                                             \
    const int grid_ = cuda_grid_for(s, (total), THREADS);                                          \
    if ((total) < ((size_t)1 << 31))                                                               \
      kernel<uint32_t><<<grid_, THREADS, 0, s->stream>>>((uint32_t)(total), __VA_ARGS__);          \
    else                                                                                           \
      kernel<size_t><<<grid_, THREADS, 0, s->stream>>>((total), __VA_ARGS__);                      \
    CUDA_LAUNCH_CHECK(#kernel);                                                                    \
  } while (0)

/* Scratch: part [c][splits][2] doubles, mean [c] doubles, floats [3c]. */
typedef struct bn_scratch {
  double *part, *mean;
  float *f;
} bn_scratch;

static reid_status bn_scratch_get(cuda_state *s, int c, int splits, bn_scratch *out) {
  size_t part = (size_t)c * splits * 2, doubles = part + (size_t)c;
  void *p;
  REID_TRY(cuda_scratch(s, doubles * sizeof(double) + 3 * (size_t)c * sizeof(float), &p));
  out->part = (double *)p;
  out->mean = out->part + part;
  out->f = (float *)(out->part + doubles);
  return REID_OK;
}

template <int MODE>
static reid_status launch_partials(cuda_state *s, int n, int c, int hw, int splits, const float *x,
                                   const float *dy, const double *mean_d, const float *mean_f,
                                   double *part) {
  dim3 grid((unsigned)c, (unsigned)splits);
  k_channel_partials<MODE>
      <<<grid, THREADS, 0, s->stream>>>(n, c, hw, splits, x, dy, mean_d, mean_f, part);
  CUDA_LAUNCH_CHECK("k_channel_partials");
  return REID_OK;
}

extern "C" reid_status cuda_channel_sum(cuda_state *s, int n, int c, int hw, const float *x,
                                        float *out) {
  REID_TRY(reid_check_batchnorm("channel_sum", n, c, hw, 0.0f));
  const int splits = choose_splits(s, c, (long long)n * hw);
  bn_scratch sc;
  REID_TRY(bn_scratch_get(s, c, splits, &sc));
  REID_TRY(launch_partials<SUM_DY>(s, n, c, hw, splits, x, NULL, NULL, NULL, sc.part));
  k_channel_total<<<chan_blocks(c), THREADS, 0, s->stream>>>(c, splits, sc.part, out);
  CUDA_LAUNCH_CHECK("k_channel_total");
  return REID_OK;
}

static reid_status cuda_batchnorm_forward_train(reid_backend *be, int n, int c, int hw,
                                                const float *x, const float *gamma,
                                                const float *beta, float momentum, float eps,
                                                float *running_mean, float *running_var, float *y,
                                                float *save_mean, float *save_invstd) {
  const char *op = "batchnorm_forward_train";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(reid_check_batchnorm_train(op, n, c, hw, eps, momentum));
  CUDA_REQUIRE(op, x);
  CUDA_REQUIRE(op, gamma);
  CUDA_REQUIRE(op, beta);
  CUDA_REQUIRE(op, running_mean);
  CUDA_REQUIRE(op, running_var);
  CUDA_REQUIRE(op, y);
  CUDA_REQUIRE(op, save_mean);
  CUDA_REQUIRE(op, save_invstd);

  const long long N = (long long)n * hw;
  const int splits = choose_splits(s, c, N);
  bn_scratch sc;
  REID_TRY(bn_scratch_get(s, c, splits, &sc));
  float *scale = sc.f;
  REID_TRY(launch_partials<SUM_X>(s, n, c, hw, splits, x, NULL, NULL, NULL, sc.part));
  k_mean<<<chan_blocks(c), THREADS, 0, s->stream>>>(c, splits, (double)N, sc.part, sc.mean);
  CUDA_LAUNCH_CHECK("k_mean");
  REID_TRY(launch_partials<SUM_SQDEV>(s, n, c, hw, splits, x, NULL, sc.mean, NULL, sc.part));
  k_train_stats<<<chan_blocks(c), THREADS, 0, s->stream>>>(
      c, splits, (double)N, momentum, eps, sc.part, sc.mean, gamma, running_mean, running_var,
      save_mean, save_invstd, scale);
  CUDA_LAUNCH_CHECK("k_train_stats");
  const size_t total = (size_t)N * c;
  LAUNCH_INDEXED(k_affine, total, c, hw, x, save_mean, scale, beta, y);
  return REID_OK;
}

static reid_status cuda_batchnorm_forward_eval(reid_backend *be, int n, int c, int hw,
                                               const float *x, const float *gamma,
                                               const float *beta, const float *running_mean,
                                               const float *running_var, float eps, float *y) {
  const char *op = "batchnorm_forward_eval";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(reid_check_batchnorm(op, n, c, hw, eps));
  CUDA_REQUIRE(op, x);
  CUDA_REQUIRE(op, gamma);
  CUDA_REQUIRE(op, beta);
  CUDA_REQUIRE(op, running_mean);
  CUDA_REQUIRE(op, running_var);
  CUDA_REQUIRE(op, y);
  bn_scratch sc;
  REID_TRY(bn_scratch_get(s, c, 1, &sc));
  k_eval_scale<<<chan_blocks(c), THREADS, 0, s->stream>>>(c, eps, 0, gamma, running_var, sc.f);
  CUDA_LAUNCH_CHECK("k_eval_scale");
  const size_t total = (size_t)n * c * hw;
  LAUNCH_INDEXED(k_affine, total, c, hw, x, running_mean, sc.f, beta, y);
  return REID_OK;
}

static reid_status cuda_batchnorm_backward(reid_backend *be, int n, int c, int hw, const float *x,
                                           const float *gamma, const float *save_mean,
                                           const float *save_invstd, const float *dy, float *dx,
                                           float *dgamma, float *dbeta) {
  const char *op = "batchnorm_backward";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(reid_check_batchnorm(op, n, c, hw, 0.0f));
  CUDA_REQUIRE(op, x);
  CUDA_REQUIRE(op, gamma);
  CUDA_REQUIRE(op, save_mean);
  CUDA_REQUIRE(op, save_invstd);
  CUDA_REQUIRE(op, dy);
  if (!dx && !dgamma && !dbeta) return REID_OK;
  const long long N = (long long)n * hw;
  const int splits = choose_splits(s, c, N);
  bn_scratch sc;
  REID_TRY(bn_scratch_get(s, c, splits, &sc));
  float *k = sc.f, *kx = sc.f + c, *k0 = sc.f + 2 * c;
  REID_TRY(launch_partials<SUM_DY_DYX>(s, n, c, hw, splits, x, dy, NULL, save_mean, sc.part));
  k_backward_coef<<<chan_blocks(c), THREADS, 0, s->stream>>>(c, splits, (double)N, sc.part, gamma,
                                                             save_invstd, dgamma, dbeta, k, kx, k0);
  CUDA_LAUNCH_CHECK("k_backward_coef");
  if (dx) {
    const size_t total = (size_t)N * c;
    LAUNCH_INDEXED(k_dx, total, c, hw, x, dy, save_mean, k, kx, k0, dx);
  }
  return REID_OK;
}

static reid_status cuda_batchnorm_backward_eval(reid_backend *be, int n, int c, int hw,
                                                const float *x, const float *gamma,
                                                const float *running_mean, const float *running_var,
                                                float eps, const float *dy, float *dx,
                                                float *dgamma, float *dbeta) {
  const char *op = "batchnorm_backward_eval";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(reid_check_batchnorm(op, n, c, hw, eps));
  CUDA_REQUIRE(op, gamma);
  CUDA_REQUIRE(op, running_var);
  CUDA_REQUIRE(op, dy);
  if (dgamma) {
    CUDA_REQUIRE(op, x);
    CUDA_REQUIRE(op, running_mean);
  }
  if (!dx && !dgamma && !dbeta) return REID_OK;
  const long long N = (long long)n * hw;
  const int splits = choose_splits(s, c, N);
  bn_scratch sc;
  REID_TRY(bn_scratch_get(s, c, splits, &sc));
  if (dgamma || dbeta) {
    if (dgamma)
      REID_TRY(
          launch_partials<SUM_DY_DYX>(s, n, c, hw, splits, x, dy, NULL, running_mean, sc.part));
    else
      REID_TRY(launch_partials<SUM_DY>(s, n, c, hw, splits, dy, NULL, NULL, NULL, sc.part));
    k_eval_param_grads<<<chan_blocks(c), THREADS, 0, s->stream>>>(c, splits, eps, sc.part,
                                                                  running_var, dgamma, dbeta);
    CUDA_LAUNCH_CHECK("k_eval_param_grads");
  }
  if (dx) {
    k_eval_scale<<<chan_blocks(c), THREADS, 0, s->stream>>>(c, eps, 1, gamma, running_var, sc.f);
    CUDA_LAUNCH_CHECK("k_eval_scale");
    const size_t total = (size_t)N * c;
    LAUNCH_INDEXED(k_scale_channels, total, c, hw, dy, sc.f, dx);
  }
  return REID_OK;
}

extern "C" void cuda_register_batchnorm_ops(reid_backend_ops *ops) {
  ops->batchnorm_forward_train = cuda_batchnorm_forward_train;
  ops->batchnorm_forward_eval = cuda_batchnorm_forward_eval;
  ops->batchnorm_backward = cuda_batchnorm_backward;
  ops->batchnorm_backward_eval = cuda_batchnorm_backward_eval;
}
