/* Optimiser steps of the CUDA backend on one flat parameter buffer, the CPU
 * backend's PyTorch semantics (kernels/cpu/ops/optim.c): per-step constants
 * in double on the host, the per-element update in float in the same order
 * of operations (built with -fmad=false, so results match bit for bit). */
#include <math.h>

#include "cuda_kernels.cuh"
#include "op_checks.h"

static const int THREADS = 256;

/*   Adam:  g = g + wd p               AdamW: p = p (1 - lr wd)
 *   m = m + (1 - beta1) (g - m);  v = beta2 v + (1 - beta2) g^2
 *   p = p - step_size m / (sqrt(v) / sqrt(1 - beta2^t) + eps) */
__global__ void k_adam(size_t n, float *params, const float *grads, float *m, float *v,
                       float step_size, float bc2_sqrt, float beta2, float one_minus_b1,
                       float one_minus_b2, float eps, float wd, float shrink, int coupled,
                       int adamw) {
  GRID_STRIDE(i, n) {
    float g = grads[i];
    float p = params[i];
    if (coupled) g += wd * p;
    if (adamw) p *= shrink;
    const float mi = m[i] + one_minus_b1 * (g - m[i]);
    const float vi = beta2 * v[i] + one_minus_b2 * g * g;
    m[i] = mi;
    v[i] = vi;
    params[i] = p - step_size * (mi / (sqrtf(vi) / bc2_sqrt + eps));
  }
}

__global__ void k_sgd_plain(size_t n, float *params, const float *grads, float lr, float wd) {
  GRID_STRIDE(i, n) params[i] -= lr * (grads[i] + wd * params[i]);
}

__global__ void k_sgd_momentum(size_t n, float *params, const float *grads, float *buf_, float lr,
                               float mu, float wd, int nesterov, int first) {
  GRID_STRIDE(i, n) {
    const float g = grads[i] + wd * params[i];
    const float buf = first ? g : mu * buf_[i] + g;
    buf_[i] = buf;
    params[i] -= lr * (nesterov ? g + mu * buf : buf);
  }
}

static reid_status cuda_adam_update(reid_backend *be, size_t n, float *params, const float *grads,
                                    float *m, float *v, float lr, float beta1, float beta2,
                                    float eps, float weight_decay, int decoupled, int step) {
  const char *op = "adam_update";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(reid_check_adam(op, lr, beta1, beta2, eps, weight_decay, step));
  if (n == 0) return REID_OK;
  CUDA_REQUIRE(op, params);
  CUDA_REQUIRE(op, grads);
  CUDA_REQUIRE(op, m);
  CUDA_REQUIRE(op, v);
  const reid_adam_scalars sc = reid_adam_scalars_at(lr, beta1, beta2, weight_decay, step);
  const float step_size = sc.step_size, bc2_sqrt = sc.bc2_sqrt, shrink = sc.shrink;
  const int coupled = !decoupled && weight_decay != 0.0f;
  const int adamw = decoupled && weight_decay != 0.0f;
  k_adam<<<cuda_grid_for(s, n, THREADS), THREADS, 0, s->stream>>>(
      n, params, grads, m, v, step_size, bc2_sqrt, beta2, 1.0f - beta1, 1.0f - beta2, eps,
      weight_decay, shrink, coupled, adamw);
  CUDA_LAUNCH_CHECK("k_adam");
  return REID_OK;
}

static reid_status cuda_sgd_update(reid_backend *be, size_t n, float *params, const float *grads,
                                   float *momentum_buf, float lr, float momentum,
                                   float weight_decay, int nesterov, int step) {
  const char *op = "sgd_update";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(reid_check_sgd(op, lr, momentum, weight_decay, nesterov, step));
  if (n == 0) return REID_OK;
  CUDA_REQUIRE(op, params);
  CUDA_REQUIRE(op, grads);
  if (momentum != 0.0f) CUDA_REQUIRE(op, momentum_buf);
  const int grid = cuda_grid_for(s, n, THREADS);
  if (momentum == 0.0f) {
    k_sgd_plain<<<grid, THREADS, 0, s->stream>>>(n, params, grads, lr, weight_decay);
    CUDA_LAUNCH_CHECK("k_sgd_plain");
    return REID_OK;
  }
  k_sgd_momentum<<<grid, THREADS, 0, s->stream>>>(n, params, grads, momentum_buf, lr, momentum,
                                                  weight_decay, nesterov, step == 1);
  CUDA_LAUNCH_CHECK("k_sgd_momentum");
  return REID_OK;
}

extern "C" void cuda_register_optim_ops(reid_backend_ops *ops) {
  ops->adam_update = cuda_adam_update;
  ops->sgd_update = cuda_sgd_update;
}
