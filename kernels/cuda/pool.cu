/* Pooling ops of the CUDA backend, with the CPU backend's semantics
 * (kernels/cpu/ops/pool.c):
 *  - max pooling: padded positions never win, the window is scanned
 *    row-major, a value replaces the running max when greater or NaN (ties
 *    keep the first position); argmax holds the flat index within the plane;
 *  - its backward gathers: each input position adds, in output order, the
 *    gradients of the windows whose argmax it is (no atomics, deterministic,
 *    the CPU's summation order);
 *  - global average pooling (double sums) and the temporal mean. */
#include "cuda_kernels.cuh"
#include "op_checks.h"

static const int THREADS = 256;

__global__ void k_maxpool_forward(size_t total, int h, int w, int k, int stride, int pad, int ho,
                                  int wo, const float *x, float *y, int32_t *argmax) {
  GRID_STRIDE(o, total) {
    const int ow = (int)(o % wo), oh = (int)((o / wo) % ho);
    const size_t plane = o / ((size_t)wo * ho);
    const float *xp = x + plane * h * w;
    const int ih0 = oh * stride - pad, iw0 = ow * stride - pad;
    const int ih_lo = ih0 < 0 ? 0 : ih0, ih_hi = ih0 + k < h ? ih0 + k : h;
    const int iw_lo = iw0 < 0 ? 0 : iw0, iw_hi = iw0 + k < w ? iw0 + k : w;
    float m = -INFINITY;
    int32_t idx = ih_lo * w + iw_lo;
    for (int ih = ih_lo; ih < ih_hi; ih++)
      for (int iw = iw_lo; iw < iw_hi; iw++) {
        const float v = xp[ih * w + iw];
        if (v > m || isnan(v)) m = v, idx = ih * w + iw;
      }
    y[o] = m;
    argmax[o] = idx;
  }
}

/* flag = 1 when any argmax lies outside [0, hw) */
__global__ void k_argmax_check(size_t total, int hw, const int32_t *argmax, int *flag) {
  GRID_STRIDE(o, total) {
    const int32_t a = argmax[o];
    if (a < 0 || a >= hw) *flag = 1;
  }
}

/* dx[p, ih, iw] = sum over windows (oh, ow) containing it, in output order,
 * of dy[p, oh, ow] where argmax[p, oh, ow] == ih w + iw */
__global__ void k_maxpool_backward(size_t total, int h, int w, int k, int stride, int pad, int ho,
                                   int wo, const int32_t *argmax, const float *dy, float *dx) {
  GRID_STRIDE(i, total) {
    const int iw = (int)(i % w), ih = (int)((i / w) % h);
    const size_t plane = i / ((size_t)w * h);
    const int32_t me = ih * w + iw;
    /* windows with oh stride - pad <= ih <= oh stride - pad + k - 1 */
    const int ah = ih + pad - k + 1, aw = iw + pad - k + 1;
    const int oh_lo = ah <= 0 ? 0 : (ah + stride - 1) / stride;
    const int ow_lo = aw <= 0 ? 0 : (aw + stride - 1) / stride;
    int oh_hi = (ih + pad) / stride, ow_hi = (iw + pad) / stride;
    if (oh_hi > ho - 1) oh_hi = ho - 1;
    if (ow_hi > wo - 1) ow_hi = wo - 1;
    const int32_t *ap = argmax + plane * ho * wo;
    const float *dyp = dy + plane * ho * wo;
    float g = 0.0f;
    for (int oh = oh_lo; oh <= oh_hi; oh++)
      for (int ow = ow_lo; ow <= ow_hi; ow++)
        if (ap[oh * wo + ow] == me) g += dyp[oh * wo + ow];
    dx[i] = g;
  }
}

/* one warp per plane: y[p] = mean of x[p, :] (double sum) */
__global__ void k_avgpool_forward(int planes, int hw, const float *x, float *y) {
  const int warp = (int)((blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5);
  const int lane = threadIdx.x & 31;
  if (warp >= planes) return;
  const float *xp = x + (size_t)warp * hw;
  double sum = 0.0;
  for (int j = lane; j < hw; j += 32) sum += xp[j];
  sum = warp_sum(sum);
  if (lane == 0) y[warp] = (float)(sum / hw);
}

__global__ void k_avgpool_backward(size_t total, int hw, const float *dy, float *dx) {
  GRID_STRIDE(i, total) dx[i] = dy[i / hw] / (float)hw;
}

/* y[i, j] = (x[i, 0, j] + ... + x[i, t-1, j]) / t, summed in order */
__global__ void k_temporal_mean_forward(size_t total, int t, int d, const float *x, float *y) {
  GRID_STRIDE(o, total) {
    const size_t i = o / d, j = o % d;
    const float *xb = x + i * t * d + j;
    float acc = xb[0];
    for (int s = 1; s < t; s++) acc += xb[(size_t)s * d];
    y[o] = acc / (float)t;
  }
}

__global__ void k_temporal_mean_backward(size_t total, int t, int d, const float *dy, float *dx) {
  GRID_STRIDE(o, total) {
    const size_t i = o / ((size_t)t * d), j = o % d;
    dx[o] = dy[i * d + j] / (float)t;
  }
}

/* ---- host side ---- */

static reid_status cuda_maxpool2d_forward(reid_backend *be, const reid_pool2d_desc *d,
                                          const float *x, float *y, int32_t *argmax) {
  const char *op = "maxpool2d_forward";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(reid_check_pool_desc(op, d));
  CUDA_REQUIRE(op, x);
  CUDA_REQUIRE(op, y);
  CUDA_REQUIRE(op, argmax);
  const size_t total = (size_t)d->n * d->c * d->h_out * d->w_out;
  k_maxpool_forward<<<cuda_grid_for(s, total, THREADS), THREADS, 0, s->stream>>>(
      total, d->h, d->w, d->k, d->stride, d->pad, d->h_out, d->w_out, x, y, argmax);
  CUDA_LAUNCH_CHECK("k_maxpool_forward");
  return REID_OK;
}

/* The argmax indices are checked first (one read back), as the CPU does. */
static reid_status cuda_maxpool2d_backward(reid_backend *be, const reid_pool2d_desc *d,
                                           const int32_t *argmax, const float *dy, float *dx) {
  const char *op = "maxpool2d_backward";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(reid_check_pool_desc(op, d));
  if (!dx) return REID_OK;
  CUDA_REQUIRE(op, argmax);
  CUDA_REQUIRE(op, dy);
  const size_t outs = (size_t)d->n * d->c * d->h_out * d->w_out;
  REID_TRY(cuda_flag_reset(s));
  k_argmax_check<<<cuda_grid_for(s, outs, THREADS), THREADS, 0, s->stream>>>(outs, d->h * d->w,
                                                                             argmax, s->flag);
  CUDA_LAUNCH_CHECK("k_argmax_check");
  int bad = 0;
  REID_TRY(cuda_flag_read(s, &bad));
  if (bad)
    return reid_fail(REID_EINVAL, "%s: argmax index outside the %dx%d plane", op, d->h, d->w);
  const size_t total = (size_t)d->n * d->c * d->h * d->w;
  k_maxpool_backward<<<cuda_grid_for(s, total, THREADS), THREADS, 0, s->stream>>>(
      total, d->h, d->w, d->k, d->stride, d->pad, d->h_out, d->w_out, argmax, dy, dx);
  CUDA_LAUNCH_CHECK("k_maxpool_backward");
  return REID_OK;
}

static reid_status cuda_avgpool_global_forward(reid_backend *be, int n, int c, int hw,
                                               const float *x, float *y) {
  const char *op = "avgpool_global_forward";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (n < 1 || c < 1 || hw < 1 || (int64_t)n * c > INT32_MAX / 32)
    return reid_fail(REID_EINVAL, "%s: invalid shape n=%d c=%d hw=%d", op, n, c, hw);
  CUDA_REQUIRE(op, x);
  CUDA_REQUIRE(op, y);
  const int planes = n * c;
  const int blocks = (int)(((size_t)planes * 32 + THREADS - 1) / THREADS);
  k_avgpool_forward<<<blocks, THREADS, 0, s->stream>>>(planes, hw, x, y);
  CUDA_LAUNCH_CHECK("k_avgpool_forward");
  return REID_OK;
}

static reid_status cuda_avgpool_global_backward(reid_backend *be, int n, int c, int hw,
                                                const float *dy, float *dx) {
  const char *op = "avgpool_global_backward";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (n < 1 || c < 1 || hw < 1 || (int64_t)n * c > INT32_MAX)
    return reid_fail(REID_EINVAL, "%s: invalid shape n=%d c=%d hw=%d", op, n, c, hw);
  if (!dx) return REID_OK;
  CUDA_REQUIRE(op, dy);
  const size_t total = (size_t)n * c * hw;
  k_avgpool_backward<<<cuda_grid_for(s, total, THREADS), THREADS, 0, s->stream>>>(total, hw, dy,
                                                                                  dx);
  CUDA_LAUNCH_CHECK("k_avgpool_backward");
  return REID_OK;
}

static reid_status cuda_temporal_mean_forward(reid_backend *be, int b, int t, int d, const float *x,
                                              float *y) {
  const char *op = "temporal_mean_forward";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (b < 1 || t < 1 || d < 1)
    return reid_fail(REID_EINVAL, "%s: invalid shape b=%d t=%d d=%d", op, b, t, d);
  CUDA_REQUIRE(op, x);
  CUDA_REQUIRE(op, y);
  const size_t total = (size_t)b * d;
  k_temporal_mean_forward<<<cuda_grid_for(s, total, THREADS), THREADS, 0, s->stream>>>(total, t, d,
                                                                                       x, y);
  CUDA_LAUNCH_CHECK("k_temporal_mean_forward");
  return REID_OK;
}

static reid_status cuda_temporal_mean_backward(reid_backend *be, int b, int t, int d,
                                               const float *dy, float *dx) {
  const char *op = "temporal_mean_backward";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (b < 1 || t < 1 || d < 1)
    return reid_fail(REID_EINVAL, "%s: invalid shape b=%d t=%d d=%d", op, b, t, d);
  if (!dx) return REID_OK;
  CUDA_REQUIRE(op, dy);
  const size_t total = (size_t)b * t * d;
  k_temporal_mean_backward<<<cuda_grid_for(s, total, THREADS), THREADS, 0, s->stream>>>(total, t, d,
                                                                                        dy, dx);
  CUDA_LAUNCH_CHECK("k_temporal_mean_backward");
  return REID_OK;
}

extern "C" void cuda_register_pool_ops(reid_backend_ops *ops) {
  ops->maxpool2d_forward = cuda_maxpool2d_forward;
  ops->maxpool2d_backward = cuda_maxpool2d_backward;
  ops->avgpool_global_forward = cuda_avgpool_global_forward;
  ops->avgpool_global_backward = cuda_avgpool_global_backward;
  ops->temporal_mean_forward = cuda_temporal_mean_forward;
  ops->temporal_mean_backward = cuda_temporal_mean_backward;
}
