/* Elementwise ops of the CUDA backend: relu, add, accumulate, scale, fill.
 * Grid-stride loops; outputs may alias inputs element for element. Built
 * with -fmad=false, so y += alpha x rounds like the CPU build. */
#include "cuda_kernels.cuh"

__global__ void k_relu_forward(size_t n, const float *x, float *y) {
  GRID_STRIDE(i, n) {
    const float v = x[i];
    y[i] = v < 0.0f ? 0.0f : v; /* NaN stays NaN, as in PyTorch */
  }
}

__global__ void k_relu_backward(size_t n, const float *y, const float *dy, float *dx) {
  GRID_STRIDE(i, n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

__global__ void k_add(size_t n, const float *a, const float *b, float *y) {
  GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}

__global__ void k_accumulate(size_t n, float alpha, const float *x, float *y) {
  GRID_STRIDE(i, n) y[i] += alpha * x[i];
}

__global__ void k_scale(size_t n, float alpha, float *x) {
  GRID_STRIDE(i, n) x[i] *= alpha;
}

__global__ void k_fill(size_t n, float value, float *x) {
  GRID_STRIDE(i, n) x[i] = value;
}

static const int THREADS = 256;

extern "C" reid_status cuda_fill_floats(cuda_state *s, float *x, size_t n, float value) {
  if (!n) return REID_OK;
  k_fill<<<cuda_grid_for(s, n, THREADS), THREADS, 0, s->stream>>>(n, value, x);
  CUDA_LAUNCH_CHECK("k_fill");
  return REID_OK;
}

static reid_status cuda_relu_forward(reid_backend *be, size_t n, const float *x, float *y) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (n == 0) return REID_OK;
  CUDA_REQUIRE("relu_forward", x);
  CUDA_REQUIRE("relu_forward", y);
  k_relu_forward<<<cuda_grid_for(s, n, THREADS), THREADS, 0, s->stream>>>(n, x, y);
  CUDA_LAUNCH_CHECK("k_relu_forward");
  return REID_OK;
}

static reid_status cuda_relu_backward(reid_backend *be, size_t n, const float *y, const float *dy,
                                      float *dx) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (n == 0 || !dx) return REID_OK;
  CUDA_REQUIRE("relu_backward", y);
  CUDA_REQUIRE("relu_backward", dy);
  k_relu_backward<<<cuda_grid_for(s, n, THREADS), THREADS, 0, s->stream>>>(n, y, dy, dx);
  CUDA_LAUNCH_CHECK("k_relu_backward");
  return REID_OK;
}

static reid_status cuda_add(reid_backend *be, size_t n, const float *a, const float *b, float *y) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (n == 0) return REID_OK;
  CUDA_REQUIRE("add", a);
  CUDA_REQUIRE("add", b);
  CUDA_REQUIRE("add", y);
  k_add<<<cuda_grid_for(s, n, THREADS), THREADS, 0, s->stream>>>(n, a, b, y);
  CUDA_LAUNCH_CHECK("k_add");
  return REID_OK;
}

static reid_status cuda_accumulate(reid_backend *be, size_t n, float alpha, const float *x,
                                   float *y) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (n == 0) return REID_OK;
  CUDA_REQUIRE("accumulate", x);
  CUDA_REQUIRE("accumulate", y);
  k_accumulate<<<cuda_grid_for(s, n, THREADS), THREADS, 0, s->stream>>>(n, alpha, x, y);
  CUDA_LAUNCH_CHECK("k_accumulate");
  return REID_OK;
}

static reid_status cuda_scale(reid_backend *be, size_t n, float alpha, float *x) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (n == 0) return REID_OK;
  CUDA_REQUIRE("scale", x);
  k_scale<<<cuda_grid_for(s, n, THREADS), THREADS, 0, s->stream>>>(n, alpha, x);
  CUDA_LAUNCH_CHECK("k_scale");
  return REID_OK;
}

extern "C" void cuda_register_elementwise_ops(reid_backend_ops *ops) {
  ops->relu_forward = cuda_relu_forward;
  ops->relu_backward = cuda_relu_backward;
  ops->add = cuda_add;
  ops->accumulate = cuda_accumulate;
  ops->scale = cuda_scale;
}
