/* Activation and gating ops of the CPU backend, used by MobileNetV2 and
 * OSNet: ReLU6, sigmoid, the channel gate (x * g broadcast over the plane) and
 * k x k average pooling (OSNet's transition layers).
 *
 * Flat loops like elementwise.c; outputs may alias inputs element for element. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu_ops.h"

#define PARALLEL_MIN ((size_t)1 << 15)

#define REQUIRE(op, ptr)                                                                           \
  do {                                                                                             \
    if (!(ptr)) return reid_fail(REID_EINVAL, "%s: %s is NULL", op, #ptr);                         \
  } while (0)

/* y = min(max(x, 0), 6) (NaN stays NaN as in PyTorch's hardtanh) */
static reid_status cpu_relu6_forward(reid_backend *be, size_t n, const float *x, float *y) {
  (void)be;
  if (n == 0) return REID_OK;
  REQUIRE("relu6_forward", x);
  REQUIRE("relu6_forward", y);
#pragma omp parallel for simd if (n >= PARALLEL_MIN) schedule(static)
  for (size_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i] > 6.0f ? 6.0f : x[i];
  return REID_OK;
}

/* dx = dy * (0 < y < 6) */
static reid_status cpu_relu6_backward(reid_backend *be, size_t n, const float *y, const float *dy,
                                      float *dx) {
  (void)be;
  if (n == 0 || !dx) return REID_OK;
  REQUIRE("relu6_backward", y);
  REQUIRE("relu6_backward", dy);
#pragma omp parallel for simd if (n >= PARALLEL_MIN) schedule(static)
  for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f && y[i] < 6.0f ? dy[i] : 0.0f;
  return REID_OK;
}

/* y = 1 / (1 + exp(-x)) */
static reid_status cpu_sigmoid_forward(reid_backend *be, size_t n, const float *x, float *y) {
  (void)be;
  if (n == 0) return REID_OK;
  REQUIRE("sigmoid_forward", x);
  REQUIRE("sigmoid_forward", y);
#pragma omp parallel for if (n >= PARALLEL_MIN) schedule(static)
  for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
  return REID_OK;
}

/* dx = dy * y (1 - y) */
static reid_status cpu_sigmoid_backward(reid_backend *be, size_t n, const float *y, const float *dy,
                                        float *dx) {
  (void)be;
  if (n == 0 || !dx) return REID_OK;
  REQUIRE("sigmoid_backward", y);
  REQUIRE("sigmoid_backward", dy);
#pragma omp parallel for simd if (n >= PARALLEL_MIN) schedule(static)
  for (size_t i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
  return REID_OK;
}

static reid_status check_gate(const char *op, int n, int c, int hw) {
  if (n < 1 || c < 1 || hw < 1 || (int64_t)n * c > INT32_MAX)
    return reid_fail(REID_EINVAL, "%s: invalid shape n=%d c=%d hw=%d", op, n, c, hw);
  return REID_OK;
}

/* y[n, c, hw] = x[n, c, hw] * g[n, c] */
static reid_status cpu_channel_mul_forward(reid_backend *be, int n, int c, int hw, const float *x,
                                           const float *g, float *y) {
  (void)be;
  REID_TRY(check_gate("channel_mul_forward", n, c, hw));
  REQUIRE("channel_mul_forward", x);
  REQUIRE("channel_mul_forward", g);
  REQUIRE("channel_mul_forward", y);
  const int planes = n * c;
#pragma omp parallel for schedule(static) if ((size_t)planes * hw >= PARALLEL_MIN)
  for (int p = 0; p < planes; p++) {
    const float s = g[p], *xp = x + (size_t)p * hw;
    float *yp = y + (size_t)p * hw;
#pragma omp simd
    for (int j = 0; j < hw; j++) yp[j] = xp[j] * s;
  }
  return REID_OK;
}

/* dx[n, c, hw] = dy g[n, c];  dg[n, c] = sum over hw of dy x */
static reid_status cpu_channel_mul_backward(reid_backend *be, int n, int c, int hw, const float *x,
                                            const float *g, const float *dy, float *dx, float *dg) {
  (void)be;
  REID_TRY(check_gate("channel_mul_backward", n, c, hw));
  REQUIRE("channel_mul_backward", dy);
  if (dg) REQUIRE("channel_mul_backward", x);
  if (dx) REQUIRE("channel_mul_backward", g);
  const int planes = n * c;
#pragma omp parallel for schedule(static) if ((size_t)planes * hw >= PARALLEL_MIN)
  for (int p = 0; p < planes; p++) {
    const float *dyp = dy + (size_t)p * hw;
    if (dg) {
      const float *xp = x + (size_t)p * hw;
      double acc = 0.0;
#pragma omp simd reduction(+ : acc)
      for (int j = 0; j < hw; j++) acc += (double)dyp[j] * xp[j];
      dg[p] = (float)acc;
    }
    if (dx) {
      const float s = g[p];
      float *dxp = dx + (size_t)p * hw;
#pragma omp simd
      for (int j = 0; j < hw; j++) dxp[j] = dyp[j] * s;
    }
  }
  return REID_OK;
}

/* y[n, c, i, j] = (1 / k^2) sum over the window (zero padding counted) */
static reid_status cpu_avgpool2d_forward(reid_backend *be, const reid_pool2d_desc *d,
                                         const float *x, float *y) {
  (void)be;
  REQUIRE("avgpool2d_forward", d);
  REQUIRE("avgpool2d_forward", x);
  REQUIRE("avgpool2d_forward", y);
  const int planes = d->n * d->c, k = d->k, s = d->stride, pad = d->pad;
  const float inv = 1.0f / (float)(k * k);
#pragma omp parallel for schedule(static) if ((size_t)planes * d->h * d->w >= PARALLEL_MIN)
  for (int p = 0; p < planes; p++) {
    const float *xp = x + (size_t)p * d->h * d->w;
    float *yp = y + (size_t)p * d->h_out * d->w_out;
    for (int oh = 0; oh < d->h_out; oh++)
      for (int ow = 0; ow < d->w_out; ow++) {
        float sum = 0.0f;
        for (int a = 0; a < k; a++) {
          int ih = oh * s - pad + a;
          if (ih < 0 || ih >= d->h) continue;
          for (int b = 0; b < k; b++) {
            int iw = ow * s - pad + b;
            if (iw >= 0 && iw < d->w) sum += xp[ih * d->w + iw];
          }
        }
        yp[oh * d->w_out + ow] = sum * inv;
      }
  }
  return REID_OK;
}

/* dx[window of (i, j)] += dy[i, j] / k^2 */
static reid_status cpu_avgpool2d_backward(reid_backend *be, const reid_pool2d_desc *d,
                                          const float *dy, float *dx) {
  (void)be;
  REQUIRE("avgpool2d_backward", d);
  if (!dx) return REID_OK;
  REQUIRE("avgpool2d_backward", dy);
  const int planes = d->n * d->c, k = d->k, s = d->stride, pad = d->pad;
  const float inv = 1.0f / (float)(k * k);
#pragma omp parallel for schedule(static) if ((size_t)planes * d->h * d->w >= PARALLEL_MIN)
  for (int p = 0; p < planes; p++) {
    float *dxp = dx + (size_t)p * d->h * d->w;
    const float *dyp = dy + (size_t)p * d->h_out * d->w_out;
    for (int i = 0; i < d->h * d->w; i++) dxp[i] = 0.0f;
    for (int oh = 0; oh < d->h_out; oh++)
      for (int ow = 0; ow < d->w_out; ow++) {
        const float gv = dyp[oh * d->w_out + ow] * inv;
        for (int a = 0; a < k; a++) {
          int ih = oh * s - pad + a;
          if (ih < 0 || ih >= d->h) continue;
          for (int b = 0; b < k; b++) {
            int iw = ow * s - pad + b;
            if (iw >= 0 && iw < d->w) dxp[ih * d->w + iw] += gv;
          }
        }
      }
  }
  return REID_OK;
}

void cpu_register_activation_ops(reid_backend_ops *ops) {
  ops->relu6_forward = cpu_relu6_forward;
  ops->relu6_backward = cpu_relu6_backward;
  ops->sigmoid_forward = cpu_sigmoid_forward;
  ops->sigmoid_backward = cpu_sigmoid_backward;
  ops->channel_mul_forward = cpu_channel_mul_forward;
  ops->channel_mul_backward = cpu_channel_mul_backward;
  ops->avgpool2d_forward = cpu_avgpool2d_forward;
  ops->avgpool2d_backward = cpu_avgpool2d_backward;
}
