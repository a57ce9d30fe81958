/* The CPU backend: host memory, its private state and the convolution ops
 * (oneDNN when built with it, the direct loops otherwise). */
#include <stdlib.h>
#include <string.h>

#include "conv2d_dnnl.h"
#include "cpu_ops.h"

struct cpu_backend_state {
#if HAVE_DNNL
  conv2d_dnnl_cache *conv_cache;
#else
  int unused;
#endif
};

reid_status cpu_backend_state_create(cpu_backend_state **out) {
  cpu_backend_state *s = calloc(1, sizeof *s);
  if (!s) return reid_fail(REID_ENOMEM, "cpu backend: out of memory");
#if HAVE_DNNL
  reid_status st = conv2d_dnnl_cache_create(&s->conv_cache);
  if (st != REID_OK) {
    free(s);
    return st;
  }
#endif
  *out = s;
  return REID_OK;
}

void cpu_backend_state_destroy(cpu_backend_state *s) {
  if (!s) return;
#if HAVE_DNNL
  conv2d_dnnl_cache_destroy(s->conv_cache);
#endif
  free(s);
}

/* ---- memory ---- */

static void *cpu_alloc(reid_backend *be, size_t bytes) {
  (void)be;
  size_t rounded = (bytes + 63) & ~(size_t)63;
  return aligned_alloc(64, rounded ? rounded : 64);
}

static void cpu_free(reid_backend *be, void *ptr) {
  (void)be;
  free(ptr);
}

static reid_status cpu_copy(reid_backend *be, void *dst, const void *src, size_t bytes) {
  (void)be;
  if (bytes && (!dst || !src)) return reid_fail(REID_EINVAL, "copy: NULL pointer");
  if (dst != src && bytes) memmove(dst, src, bytes);
  return REID_OK;
}

static reid_status cpu_fill(reid_backend *be, float *x, size_t n, float value) {
  (void)be;
  if (n && !x) return reid_fail(REID_EINVAL, "fill: NULL pointer");
#pragma omp parallel for schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; i++) x[i] = value;
  return REID_OK;
}

static reid_status cpu_synchronize(reid_backend *be) {
  (void)be;
  return REID_OK;
}

void cpu_register_memory_ops(reid_backend_ops *ops) {
  ops->alloc = cpu_alloc;
  ops->free = cpu_free;
  ops->upload = cpu_copy;
  ops->download = cpu_copy;
  ops->copy = cpu_copy;
  ops->fill = cpu_fill;
  ops->synchronize = cpu_synchronize;
}

/* ---- convolution ---- */

static reid_status check_conv_args(const reid_conv2d_desc *d, const void *x, const void *w,
                                   const void *out) {
  if (!d || !x || !w || !out) return reid_fail(REID_EINVAL, "conv2d: NULL argument");
  if (d->n < 1 || d->c_in < 1 || d->c_out < 1 || d->h_out < 1 || d->w_out < 1)
    return reid_fail(REID_EINVAL, "conv2d: descriptor not initialised");
  return REID_OK;
}

static reid_status cpu_conv2d_forward(reid_backend *be, const reid_conv2d_desc *d, const float *x,
                                      const float *w, const float *bias, float *y) {
  REID_TRY(check_conv_args(d, x, w, y));
#if HAVE_DNNL
  cpu_backend_state *s = be->impl;
  return conv2d_dnnl_forward(s->conv_cache, d, x, w, bias, y);
#else
  (void)be;
  conv2d_forward_reference(d, x, w, bias, y);
  return REID_OK;
#endif
}

static reid_status cpu_conv2d_backward(reid_backend *be, const reid_conv2d_desc *d, const float *x,
                                       const float *w, const float *dy, float *dx, float *dw,
                                       float *dbias) {
  REID_TRY(check_conv_args(d, x, w, dy));
#if HAVE_DNNL
  cpu_backend_state *s = be->impl;
  return conv2d_dnnl_backward(s->conv_cache, d, x, w, dy, dx, dw, dbias);
#else
  (void)be;
  conv2d_backward_reference(d, x, w, dy, dx, dw, dbias);
  return REID_OK;
#endif
}

void cpu_register_conv_ops(reid_backend_ops *ops) {
  ops->conv2d_forward = cpu_conv2d_forward;
  ops->conv2d_backward = cpu_conv2d_backward;
}
