/* Optimiser steps of the CPU backend on one flat parameter buffer, following
 * PyTorch's single-tensor torch.optim.Adam / AdamW / SGD (amsgrad off,
 * dampening 0, maximize off). Per-step constants are formed in double; the
 * per-element update is float, in PyTorch's order of operations. */
#include <math.h>
#include <stddef.h>

#include "cpu_ops.h"
#include "op_checks.h"

#define PARALLEL_MIN ((size_t)1 << 15)

#define REQUIRE(op, ptr)                                                                           \
  do {                                                                                             \
    if (!(ptr)) return reid_fail(REID_EINVAL, "%s: %s is NULL", op, #ptr);                         \
  } while (0)

/* Adam (decoupled = 0) / AdamW (decoupled = 1), step t >= 1:
 *   Adam:  g = g + wd p               AdamW: p = p (1 - lr wd)
 *   m = m + (1 - beta1) (g - m)              (m.lerp_(g, 1 - beta1))
 *   v = beta2 v + (1 - beta2) g^2
 *   p = p - lr / (1 - beta1^t) m / (sqrt(v) / sqrt(1 - beta2^t) + eps) */
static reid_status cpu_adam_update(reid_backend *be, size_t n, float *params, const float *grads,
                                   float *m, float *v, float lr, float beta1, float beta2,
                                   float eps, float weight_decay, int decoupled, int step) {
  (void)be;
  const char *op = "adam_update";
  REID_TRY(reid_check_adam(op, lr, beta1, beta2, eps, weight_decay, step));
  if (n == 0) return REID_OK;
  REQUIRE(op, params);
  REQUIRE(op, grads);
  REQUIRE(op, m);
  REQUIRE(op, v);

  const reid_adam_scalars sc = reid_adam_scalars_at(lr, beta1, beta2, weight_decay, step);
  const float step_size = sc.step_size, bc2_sqrt = sc.bc2_sqrt, shrink = sc.shrink;
  const float one_minus_b1 = 1.0f - beta1, one_minus_b2 = 1.0f - beta2;
  const float wd = weight_decay;
  const int coupled = !decoupled && weight_decay != 0.0f;
  const int adamw = decoupled && weight_decay != 0.0f;
#pragma omp parallel for simd if (n >= PARALLEL_MIN) schedule(static)
  for (size_t i = 0; i < n; i++) {
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
  return REID_OK;
}

/* SGD with momentum mu (dampening 0):
 *   g = g + wd p
 *   buf = g (step 1),  buf = mu buf + g (later steps)
 *   p = p - lr (nesterov ? g + mu buf : buf)
 * momentum 0 is plain SGD and needs no buffer. */
static reid_status cpu_sgd_update(reid_backend *be, size_t n, float *params, const float *grads,
                                  float *momentum_buf, float lr, float momentum, float weight_decay,
                                  int nesterov, int step) {
  (void)be;
  const char *op = "sgd_update";
  REID_TRY(reid_check_sgd(op, lr, momentum, weight_decay, nesterov, step));
  if (n == 0) return REID_OK;
  REQUIRE(op, params);
  REQUIRE(op, grads);
  if (momentum != 0.0f) REQUIRE(op, momentum_buf);

  const float wd = weight_decay, mu = momentum;
  const int first = step == 1;
  if (mu == 0.0f) {
#pragma omp parallel for simd if (n >= PARALLEL_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) params[i] -= lr * (grads[i] + wd * params[i]);
    return REID_OK;
  }
#pragma omp parallel for simd if (n >= PARALLEL_MIN) schedule(static)
  for (size_t i = 0; i < n; i++) {
    const float g = grads[i] + wd * params[i];
    const float buf = first ? g : mu * momentum_buf[i] + g;
    momentum_buf[i] = buf;
    params[i] -= lr * (nesterov ? g + mu * buf : buf);
  }
  return REID_OK;
}

void cpu_register_optim_ops(reid_backend_ops *ops) {
  ops->adam_update = cpu_adam_update;
  ops->sgd_update = cpu_sgd_update;
}
