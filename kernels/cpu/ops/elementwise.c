/* Elementwise ops of the CPU backend: relu, add, accumulate, scale.
 *
 * All are flat loops over n elements; `omp parallel for simd` splits them
 * across threads once n is large enough to pay for the fork. Outputs may
 * alias inputs element for element (y == x), which the simd loops allow since
 * iteration i touches only element i. */
#include <stddef.h>

#include "cpu_ops.h"

/* Below this many elements one thread is faster than waking the team. */
#define PARALLEL_MIN ((size_t)1 << 15)

#define REQUIRE(op, ptr)                                                                           \
  do {                                                                                             \
    if (!(ptr)) return reid_fail(REID_EINVAL, "%s: %s is NULL", op, #ptr);                         \
  } while (0)

/* y = max(x, 0); NaN stays NaN as in PyTorch */
static reid_status cpu_relu_forward(reid_backend *be, size_t n, const float *x, float *y) {
  (void)be;
  if (n == 0) return REID_OK;
  REQUIRE("relu_forward", x);
  REQUIRE("relu_forward", y);
#pragma omp parallel for simd if (n >= PARALLEL_MIN) schedule(static)
  for (size_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
  return REID_OK;
}

/* dx = dy * (y > 0) */
static reid_status cpu_relu_backward(reid_backend *be, size_t n, const float *y, const float *dy,
                                     float *dx) {
  (void)be;
  if (n == 0 || !dx) return REID_OK;
  REQUIRE("relu_backward", y);
  REQUIRE("relu_backward", dy);
#pragma omp parallel for simd if (n >= PARALLEL_MIN) schedule(static)
  for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
  return REID_OK;
}

/* y = a + b */
static reid_status cpu_add(reid_backend *be, size_t n, const float *a, const float *b, float *y) {
  (void)be;
  if (n == 0) return REID_OK;
  REQUIRE("add", a);
  REQUIRE("add", b);
  REQUIRE("add", y);
#pragma omp parallel for simd if (n >= PARALLEL_MIN) schedule(static)
  for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
  return REID_OK;
}

/* y += alpha x */
static reid_status cpu_accumulate(reid_backend *be, size_t n, float alpha, const float *x,
                                  float *y) {
  (void)be;
  if (n == 0) return REID_OK;
  REQUIRE("accumulate", x);
  REQUIRE("accumulate", y);
#pragma omp parallel for simd if (n >= PARALLEL_MIN) schedule(static)
  for (size_t i = 0; i < n; i++) y[i] += alpha * x[i];
  return REID_OK;
}

/* x *= alpha */
static reid_status cpu_scale(reid_backend *be, size_t n, float alpha, float *x) {
  (void)be;
  if (n == 0) return REID_OK;
  REQUIRE("scale", x);
#pragma omp parallel for simd if (n >= PARALLEL_MIN) schedule(static)
  for (size_t i = 0; i < n; i++) x[i] *= alpha;
  return REID_OK;
}

void cpu_register_elementwise_ops(reid_backend_ops *ops) {
  ops->relu_forward = cpu_relu_forward;
  ops->relu_backward = cpu_relu_backward;
  ops->add = cpu_add;
  ops->accumulate = cpu_accumulate;
  ops->scale = cpu_scale;
}
