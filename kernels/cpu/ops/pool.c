/* Pooling ops of the CPU backend: 2-D max pooling with argmax, global
 * average pooling over [n, c, hw], temporal mean over [b, t, d].
 *
 * Max pooling follows PyTorch's CPU kernel exactly: padded positions are never
 * candidates (they act as -inf), the window is scanned row-major and a value
 * replaces the running max when it is greater or NaN, so ties keep the first
 * position and NaN propagates. 3 x 3 windows wholly inside the plane (the
 * ResNet stem) run a simd loop over output columns with the nine taps
 * unrolled, and the border columns of those rows a scalar window loop; other
 * rows are computed as k * k passes of a simd loop over the output columns,
 * which visits each window in the same row-major order. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpu_ops.h"
#include "op_checks.h"

#define PARALLEL_MIN ((size_t)1 << 15)

#define REQUIRE(op, ptr)                                                                           \
  do {                                                                                             \
    if (!(ptr)) return reid_fail(REID_EINVAL, "%s: %s is NULL", op, #ptr);                         \
  } while (0)

/* One input row against window column kw for output columns [ow_lo, ow_hi):
 * iw = ow * stride + off. Inlined with constant strides. */
static inline __attribute__((always_inline)) void
maxpool_row_pass(int ow_lo, int ow_hi, int stride, int off, int row_base, const float *restrict xr,
                 float *restrict yr, int32_t *restrict ar) {
#pragma omp simd
  for (int ow = ow_lo; ow < ow_hi; ow++) {
    const int iw = ow * stride + off;
    const float v = xr[iw];
    const int take = v > yr[ow] || isnan(v);
    yr[ow] = take ? v : yr[ow];
    ar[ow] = take ? row_base + iw : ar[ow];
  }
}

/* floor(a / b) for b > 0 */
static inline int floor_div(int a, int b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* Any window, output row oh, columns [a, b): start from -inf at the first
 * valid position, then one row pass per (input row, window column). */
static void maxpool_row_generic(const reid_pool2d_desc *d, int oh, int a, int b, const float *xp,
                                float *yr, int32_t *ar) {
  const int h = d->h, w = d->w, k = d->k, s = d->stride, pad = d->pad;
  const int ih0 = oh * s - pad;
  const int ih_lo = ih0 < 0 ? 0 : ih0;
  const int ih_hi = ih0 + k < h ? ih0 + k : h;
  for (int ow = a; ow < b; ow++) {
    const int iw0 = ow * s - pad;
    yr[ow] = -INFINITY;
    ar[ow] = ih_lo * w + (iw0 < 0 ? 0 : iw0);
  }
  for (int ih = ih_lo; ih < ih_hi; ih++) {
    const float *xr = xp + (size_t)ih * w;
    for (int kw = 0; kw < k; kw++) {
      /* output columns whose tap kw lands inside the row: 0 <= ow s + off < w */
      const int off = kw - pad;
      int ow_lo = off >= 0 ? 0 : (-off + s - 1) / s;
      int ow_hi = floor_div(w - 1 - off, s) + 1;
      if (ow_lo < a) ow_lo = a;
      if (ow_hi > b) ow_hi = b;
      if (s == 1)
        maxpool_row_pass(ow_lo, ow_hi, 1, off, ih * w, xr, yr, ar);
      else if (s == 2)
        maxpool_row_pass(ow_lo, ow_hi, 2, off, ih * w, xr, yr, ar);
      else
        maxpool_row_pass(ow_lo, ow_hi, s, off, ih * w, xr, yr, ar);
    }
  }
}

/* One window (oh, ow) scanned row-major, as PyTorch's loop does. */
static void maxpool_window(const reid_pool2d_desc *d, int oh, int ow, const float *xp, float *y,
                           int32_t *a) {
  const int h = d->h, w = d->w, k = d->k, s = d->stride, pad = d->pad;
  const int ih0 = oh * s - pad, iw0 = ow * s - pad;
  const int ih_lo = ih0 < 0 ? 0 : ih0, ih_hi = ih0 + k < h ? ih0 + k : h;
  const int iw_lo = iw0 < 0 ? 0 : iw0, iw_hi = iw0 + k < w ? iw0 + k : w;
  float m = -INFINITY;
  int32_t idx = ih_lo * w + iw_lo;
  for (int ih = ih_lo; ih < ih_hi; ih++) {
    for (int iw = iw_lo; iw < iw_hi; iw++) {
      const float v = xp[ih * w + iw];
      if (v > m || isnan(v)) m = v, idx = ih * w + iw;
    }
  }
  *y = m;
  *a = idx;
}

/* 3 x 3 windows wholly inside the plane (rows ih0 .. ih0 + 2), output
 * columns [a, b): the nine taps in row-major order with the running max in
 * registers. Inlined with constant strides. */
static inline __attribute__((always_inline)) void
maxpool3_row_interior(int a, int b, int stride, int pad, int ih0, int w, const float *restrict xp,
                      float *restrict yr, int32_t *restrict ar) {
  const float *restrict r0 = xp + (size_t)ih0 * w;
#pragma omp simd
  for (int ow = a; ow < b; ow++) {
    const int iw0 = ow * stride - pad;
    float m = r0[iw0];
    int32_t idx = ih0 * w + iw0;
    for (int kh = 0; kh < 3; kh++) {
      for (int kw = 0; kw < 3; kw++) {
        const int off = kh * w + iw0 + kw; /* within rows r0 .. r0 + 2w */
        const float v = r0[off];
        const int take = v > m || isnan(v);
        m = take ? v : m;
        idx = take ? ih0 * w + off : idx;
      }
    }
    yr[ow] = m;
    ar[ow] = idx;
  }
}

static reid_status cpu_maxpool2d_forward(reid_backend *be, const reid_pool2d_desc *d,
                                         const float *x, float *y, int32_t *argmax) {
  (void)be;
  const char *op = "maxpool2d_forward";
  REID_TRY(reid_check_pool_desc(op, d));
  REQUIRE(op, x);
  REQUIRE(op, y);
  REQUIRE(op, argmax);

  const int h = d->h, w = d->w, k = d->k, s = d->stride, pad = d->pad;
  const int ho = d->h_out, wo = d->w_out;
  const int planes = d->n * d->c;
  /* output columns whose window lies inside the row: 0 <= ow s - pad and ow s - pad + k <= w */
  const int col_a = (pad + s - 1) / s;
  int col_b = w - k + pad >= 0 ? (w - k + pad) / s + 1 : 0;
  if (col_b > wo) col_b = wo;
  if (col_b < col_a) col_b = col_a;
#pragma omp parallel for schedule(static) if ((size_t)planes * h * w >= PARALLEL_MIN)
  for (int p = 0; p < planes; p++) {
    const float *xp = x + (size_t)p * h * w; /* [h, w] */
    float *yp = y + (size_t)p * ho * wo;     /* [ho, wo] */
    int32_t *ap = argmax + (size_t)p * ho * wo;
    for (int oh = 0; oh < ho; oh++) {
      const int ih0 = oh * s - pad;
      float *yr = yp + (size_t)oh * wo;
      int32_t *ar = ap + (size_t)oh * wo;
      if (k != 3 || ih0 < 0 || ih0 + k > h || col_a >= col_b) {
        maxpool_row_generic(d, oh, 0, wo, xp, yr, ar);
        continue;
      }
      for (int ow = 0; ow < col_a; ow++) maxpool_window(d, oh, ow, xp, yr + ow, ar + ow);
      if (s == 1)
        maxpool3_row_interior(col_a, col_b, 1, pad, ih0, w, xp, yr, ar);
      else if (s == 2)
        maxpool3_row_interior(col_a, col_b, 2, pad, ih0, w, xp, yr, ar);
      else
        maxpool3_row_interior(col_a, col_b, s, pad, ih0, w, xp, yr, ar);
      for (int ow = col_b; ow < wo; ow++) maxpool_window(d, oh, ow, xp, yr + ow, ar + ow);
    }
  }
  return REID_OK;
}

/* dx[plane, argmax] += dy: every input position collects the gradients of the
 * windows it won. */
static reid_status cpu_maxpool2d_backward(reid_backend *be, const reid_pool2d_desc *d,
                                          const int32_t *argmax, const float *dy, float *dx) {
  (void)be;
  const char *op = "maxpool2d_backward";
  REID_TRY(reid_check_pool_desc(op, d));
  if (!dx) return REID_OK;
  REQUIRE(op, argmax);
  REQUIRE(op, dy);

  const int hw = d->h * d->w;
  const int out = d->h_out * d->w_out;
  const int planes = d->n * d->c;
  int bad = 0;
#pragma omp parallel for schedule(static)                                                          \
    reduction(|                                                                                    \
              : bad) if ((size_t)planes * hw >= PARALLEL_MIN)
  for (int p = 0; p < planes; p++) {
    float *dxp = dx + (size_t)p * hw;
    const float *dyp = dy + (size_t)p * out;
    const int32_t *ap = argmax + (size_t)p * out;
    memset(dxp, 0, (size_t)hw * sizeof *dxp);
    for (int o = 0; o < out; o++) {
      const int32_t a = ap[o];
      if (a < 0 || a >= hw) {
        bad = 1;
        continue;
      }
      dxp[a] += dyp[o];
    }
  }
  if (bad)
    return reid_fail(REID_EINVAL, "%s: argmax index outside the %dx%d plane", op, d->h, d->w);
  return REID_OK;
}

/* y[n, c] = mean over hw of x[n, c, hw] */
static reid_status cpu_avgpool_global_forward(reid_backend *be, int n, int c, int hw,
                                              const float *x, float *y) {
  (void)be;
  const char *op = "avgpool_global_forward";
  if (n < 1 || c < 1 || hw < 1 || (int64_t)n * c > INT32_MAX)
    return reid_fail(REID_EINVAL, "%s: invalid shape n=%d c=%d hw=%d", op, n, c, hw);
  REQUIRE(op, x);
  REQUIRE(op, y);
  const int planes = n * c;
#pragma omp parallel for schedule(static) if ((size_t)planes * hw >= PARALLEL_MIN)
  for (int p = 0; p < planes; p++) {
    const float *xp = x + (size_t)p * hw;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < hw; j++) sum += xp[j];
    y[p] = (float)(sum / hw);
  }
  return REID_OK;
}

/* dx[n, c, hw] = dy[n, c] / hw */
static reid_status cpu_avgpool_global_backward(reid_backend *be, int n, int c, int hw,
                                               const float *dy, float *dx) {
  (void)be;
  const char *op = "avgpool_global_backward";
  if (n < 1 || c < 1 || hw < 1 || (int64_t)n * c > INT32_MAX)
    return reid_fail(REID_EINVAL, "%s: invalid shape n=%d c=%d hw=%d", op, n, c, hw);
  if (!dx) return REID_OK;
  REQUIRE(op, dy);
  const int planes = n * c;
#pragma omp parallel for schedule(static) if ((size_t)planes * hw >= PARALLEL_MIN)
  for (int p = 0; p < planes; p++) {
    float *dxp = dx + (size_t)p * hw;
    const float g = dy[p] / (float)hw;
#pragma omp simd
    for (int j = 0; j < hw; j++) dxp[j] = g;
  }
  return REID_OK;
}

/* y[b, d] = mean over t of x[b, t, d] */
static reid_status cpu_temporal_mean_forward(reid_backend *be, int b, int t, int d, const float *x,
                                             float *y) {
  (void)be;
  const char *op = "temporal_mean_forward";
  if (b < 1 || t < 1 || d < 1)
    return reid_fail(REID_EINVAL, "%s: invalid shape b=%d t=%d d=%d", op, b, t, d);
  REQUIRE(op, x);
  REQUIRE(op, y);
#pragma omp parallel for schedule(static) if ((size_t)b * t * d >= PARALLEL_MIN)
  for (int i = 0; i < b; i++) {
    const float *xb = x + (size_t)i * t * d; /* [t, d] */
    float *yb = y + (size_t)i * d;           /* [d] */
#pragma omp simd
    for (int j = 0; j < d; j++) yb[j] = xb[j];
    for (int s = 1; s < t; s++) {
      const float *xs = xb + (size_t)s * d;
#pragma omp simd
      for (int j = 0; j < d; j++) yb[j] += xs[j];
    }
#pragma omp simd
    for (int j = 0; j < d; j++) yb[j] /= (float)t;
  }
  return REID_OK;
}

/* dx[b, t, d] = dy[b, d] / t */
static reid_status cpu_temporal_mean_backward(reid_backend *be, int b, int t, int d,
                                              const float *dy, float *dx) {
  (void)be;
  const char *op = "temporal_mean_backward";
  if (b < 1 || t < 1 || d < 1)
    return reid_fail(REID_EINVAL, "%s: invalid shape b=%d t=%d d=%d", op, b, t, d);
  if (!dx) return REID_OK;
  REQUIRE(op, dy);
#pragma omp parallel for schedule(static) if ((size_t)b * t * d >= PARALLEL_MIN)
  for (int i = 0; i < b; i++) {
    const float *dyb = dy + (size_t)i * d;
    for (int s = 0; s < t; s++) {
      float *dxs = dx + ((size_t)i * t + s) * d;
#pragma omp simd
      for (int j = 0; j < d; j++) dxs[j] = dyb[j] / (float)t;
    }
  }
  return REID_OK;
}

void cpu_register_pool_ops(reid_backend_ops *ops) {
  ops->maxpool2d_forward = cpu_maxpool2d_forward;
  ops->maxpool2d_backward = cpu_maxpool2d_backward;
  ops->avgpool_global_forward = cpu_avgpool_global_forward;
  ops->avgpool_global_backward = cpu_avgpool_global_backward;
  ops->temporal_mean_forward = cpu_temporal_mean_forward;
  ops->temporal_mean_backward = cpu_temporal_mean_backward;
}
