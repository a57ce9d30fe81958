/* Activation and gating ops of the CUDA backend (MobileNetV2, OSNet): ReLU6,
 * sigmoid, the channel gate and k x k average pooling, forward and backward.
 * Same math and order of operations as kernels/cpu/ops/activation.c; every
 * output element is written by one thread (no atomics: reproducible). */
#include "cuda_kernels.cuh"

static const int THREADS = 256;

__global__ void k_relu6_forward(size_t n, const float *x, float *y) {
  GRID_STRIDE(i, n) {
    const float v = x[i];
    y[i] = v < 0.0f ? 0.0f : v > 6.0f ? 6.0f : v;
  }
}

__global__ void k_relu6_backward(size_t n, const float *y, const float *dy, float *dx) {
  GRID_STRIDE(i, n) dx[i] = y[i] > 0.0f && y[i] < 6.0f ? dy[i] : 0.0f;
}

__global__ void k_sigmoid_forward(size_t n, const float *x, float *y) {
  GRID_STRIDE(i, n) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

__global__ void k_sigmoid_backward(size_t n, const float *y, const float *dy, float *dx) {
  GRID_STRIDE(i, n) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

/* y[p, j] = x[p, j] g[p] over planes p of hw */
__global__ void k_channel_mul_forward(size_t n, int hw, const float *x, const float *g, float *y) {
  GRID_STRIDE(i, n) y[i] = x[i] * g[i / hw];
}

__global__ void k_channel_mul_dx(size_t n, int hw, const float *g, const float *dy, float *dx) {
  GRID_STRIDE(i, n) dx[i] = dy[i] * g[i / hw];
}

/* dg[p] = sum_j dy[p, j] x[p, j], one thread per plane, in double as the CPU */
__global__ void k_channel_mul_dg(size_t planes, int hw, const float *x, const float *dy,
                                 float *dg) {
  GRID_STRIDE(p, planes) {
    double acc = 0.0;
    for (int j = 0; j < hw; j++) acc += (double)dy[p * hw + j] * x[p * hw + j];
    dg[p] = (float)acc;
  }
}

__global__ void k_avgpool2d_forward(size_t n, reid_pool2d_desc d, const float *x, float *y) {
  const float inv = 1.0f / (float)(d.k * d.k);
  GRID_STRIDE(i, n) {
    const int ow = (int)(i % d.w_out), oh = (int)(i / d.w_out % d.h_out);
    const size_t plane = i / ((size_t)d.w_out * d.h_out);
    const float *xp = x + plane * d.h * d.w;
    float sum = 0.0f;
    for (int a = 0; a < d.k; a++) {
      const int ih = oh * d.stride - d.pad + a;
      if (ih < 0 || ih >= d.h) continue;
      for (int b = 0; b < d.k; b++) {
        const int iw = ow * d.stride - d.pad + b;
        if (iw >= 0 && iw < d.w) sum += xp[ih * d.w + iw];
      }
    }
    y[i] = sum * inv;
  }
}

/* dx[ih, iw] = sum over the outputs whose window holds it of dy / k^2 (gathered) */
__global__ void k_avgpool2d_backward(size_t n, reid_pool2d_desc d, const float *dy, float *dx) {
  const float inv = 1.0f / (float)(d.k * d.k);
  GRID_STRIDE(i, n) {
    const int iw = (int)(i % d.w), ih = (int)(i / d.w % d.h);
    const size_t plane = i / ((size_t)d.w * d.h);
    const float *dyp = dy + plane * d.h_out * d.w_out;
    float sum = 0.0f;
    for (int oh = 0; oh < d.h_out; oh++) {
      const int a = ih - (oh * d.stride - d.pad);
      if (a < 0 || a >= d.k) continue;
      for (int ow = 0; ow < d.w_out; ow++) {
        const int b = iw - (ow * d.stride - d.pad);
        if (b >= 0 && b < d.k) sum += dyp[oh * d.w_out + ow] * inv;
      }
    }
    dx[i] = sum;
  }
}

#define LAUNCH(kernel, count, ...)                                                                 \
  do {                                                                                             \
    kernel<<<cuda_grid_for(s, (count), THREADS), THREADS, 0, s->stream>>>(__VA_ARGS__);            \
    CUDA_LAUNCH_CHECK(#kernel);                                                                    \
  } while (0)

static reid_status cuda_relu6_forward(reid_backend *be, size_t n, const float *x, float *y) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (n == 0) return REID_OK;
  CUDA_REQUIRE("relu6_forward", x);
  CUDA_REQUIRE("relu6_forward", y);
  LAUNCH(k_relu6_forward, n, n, x, y);
  return REID_OK;
}

static reid_status cuda_relu6_backward(reid_backend *be, size_t n, const float *y,
                                       const float *dy, float *dx) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (n == 0 || !dx) return REID_OK;
  CUDA_REQUIRE("relu6_backward", y);
  CUDA_REQUIRE("relu6_backward", dy);
  LAUNCH(k_relu6_backward, n, n, y, dy, dx);
  return REID_OK;
}

static reid_status cuda_sigmoid_forward(reid_backend *be, size_t n, const float *x, float *y) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (n == 0) return REID_OK;
  CUDA_REQUIRE("sigmoid_forward", x);
  CUDA_REQUIRE("sigmoid_forward", y);
  LAUNCH(k_sigmoid_forward, n, n, x, y);
  return REID_OK;
}

static reid_status cuda_sigmoid_backward(reid_backend *be, size_t n, const float *y,
                                         const float *dy, float *dx) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (n == 0 || !dx) return REID_OK;
  CUDA_REQUIRE("sigmoid_backward", y);
  CUDA_REQUIRE("sigmoid_backward", dy);
  LAUNCH(k_sigmoid_backward, n, n, y, dy, dx);
  return REID_OK;
}

static reid_status check_gate(const char *op, int n, int c, int hw) {
  if (n < 1 || c < 1 || hw < 1 || (int64_t)n * c > INT32_MAX)
    return reid_fail(REID_EINVAL, "%s: invalid shape n=%d c=%d hw=%d", op, n, c, hw);
  return REID_OK;
}

static reid_status cuda_channel_mul_forward(reid_backend *be, int n, int c, int hw,
                                            const float *x, const float *g, float *y) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(check_gate("channel_mul_forward", n, c, hw));
  CUDA_REQUIRE("channel_mul_forward", x);
  CUDA_REQUIRE("channel_mul_forward", g);
  CUDA_REQUIRE("channel_mul_forward", y);
  const size_t count = (size_t)n * c * hw;
  LAUNCH(k_channel_mul_forward, count, count, hw, x, g, y);
  return REID_OK;
}

static reid_status cuda_channel_mul_backward(reid_backend *be, int n, int c, int hw,
                                             const float *x, const float *g, const float *dy,
                                             float *dx, float *dg) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(check_gate("channel_mul_backward", n, c, hw));
  CUDA_REQUIRE("channel_mul_backward", dy);
  const size_t planes = (size_t)n * c, count = planes * hw;
  if (dx) {
    CUDA_REQUIRE("channel_mul_backward", g);
    LAUNCH(k_channel_mul_dx, count, count, hw, g, dy, dx);
  }
  if (dg) {
    CUDA_REQUIRE("channel_mul_backward", x);
    LAUNCH(k_channel_mul_dg, planes, planes, hw, x, dy, dg);
  }
  return REID_OK;
}

static reid_status cuda_avgpool2d_forward(reid_backend *be, const reid_pool2d_desc *d,
                                          const float *x, float *y) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  CUDA_REQUIRE("avgpool2d_forward", d);
  CUDA_REQUIRE("avgpool2d_forward", x);
  CUDA_REQUIRE("avgpool2d_forward", y);
  const size_t count = (size_t)d->n * d->c * d->h_out * d->w_out;
  LAUNCH(k_avgpool2d_forward, count, count, *d, x, y);
  return REID_OK;
}

static reid_status cuda_avgpool2d_backward(reid_backend *be, const reid_pool2d_desc *d,
                                           const float *dy, float *dx) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  CUDA_REQUIRE("avgpool2d_backward", d);
  if (!dx) return REID_OK;
  CUDA_REQUIRE("avgpool2d_backward", dy);
  const size_t count = (size_t)d->n * d->c * d->h * d->w;
  LAUNCH(k_avgpool2d_backward, count, count, *d, dy, dx);
  return REID_OK;
}

extern "C" void cuda_register_activation_ops(reid_backend_ops *ops) {
  ops->relu6_forward = cuda_relu6_forward;
  ops->relu6_backward = cuda_relu6_backward;
  ops->sigmoid_forward = cuda_sigmoid_forward;
  ops->sigmoid_backward = cuda_sigmoid_backward;
  ops->channel_mul_forward = cuda_channel_mul_forward;
  ops->channel_mul_backward = cuda_channel_mul_backward;
  ops->avgpool2d_forward = cuda_avgpool2d_forward;
  ops->avgpool2d_backward = cuda_avgpool2d_backward;
}
