/* Shared helpers of the CUDA tests: the CPU and CUDA backends side by side
 * (exit 77, meson's "skipped", without a usable GPU), device buffers filled
 * from host arrays or poisoned with NaN so that unwritten elements fail the
 * comparison, and a scale-aware comparison for sums of products. */
#pragma once

#include "backend.h"
#include "reid_cuda.h"
#include "test_util.h"

static reid_backend *cpu, *gpu;

/* 0: both backends ready; 77: no GPU (the test skips). Exits 1 on a broken setup. */
static inline int cuda_test_setup(const char *name) {
  if (!reid_cuda_available()) {
    fprintf(stderr, "%s: no usable CUDA GPU, skipping\n", name);
    return 77;
  }
  if (reid_backend_create("cpu", 0, &cpu) != REID_OK ||
      reid_backend_create("cuda", 0, &gpu) != REID_OK) {
    fprintf(stderr, "%s: cannot create the backends: %s\n", name, reid_last_error());
    exit(1);
  }
  char dev[256];
  if (reid_cuda_device_name(gpu, dev, sizeof dev) == REID_OK)
    fprintf(stderr, "%s: %s\n", name, dev);
  return 0;
}

static inline void cuda_test_teardown(void) {
  reid_backend_destroy(gpu);
  reid_backend_destroy(cpu);
}

static inline void *dev_alloc(size_t bytes) {
  void *p = gpu->ops->alloc(gpu, bytes);
  if (!p) {
    fprintf(stderr, "test: device allocation of %zu bytes failed: %s\n", bytes, reid_last_error());
    exit(1);
  }
  return p;
}

static inline void dev_free(void *p) {
  if (p) gpu->ops->free(gpu, p);
}

/* device copy of host floats */
static inline float *dev_from(const float *h, size_t n) {
  float *d = dev_alloc(sizeof(float) * (n ? n : 1));
  if (n && gpu->ops->upload(gpu, d, h, sizeof(float) * n) != REID_OK) {
    fprintf(stderr, "test: upload failed: %s\n", reid_last_error());
    exit(1);
  }
  return d;
}

static inline int32_t *dev_from_i32(const int32_t *h, size_t n) {
  int32_t *d = dev_alloc(sizeof(int32_t) * (n ? n : 1));
  if (n && gpu->ops->upload(gpu, d, h, sizeof(int32_t) * n) != REID_OK) {
    fprintf(stderr, "test: upload failed: %s\n", reid_last_error());
    exit(1);
  }
  return d;
}

/* device floats, every one NaN */
static inline float *dev_poisoned(size_t n) {
  float *d = dev_alloc(sizeof(float) * (n ? n : 1));
  if (gpu->ops->fill(gpu, d, n ? n : 1, NAN) != REID_OK) {
    fprintf(stderr, "test: fill failed: %s\n", reid_last_error());
    exit(1);
  }
  return d;
}

/* host floats, every one NaN */
static inline float *host_poisoned(size_t n) {
  float *h = test_alloc(n);
  for (size_t i = 0; i < n; i++) h[i] = NAN;
  return h;
}

/* host copy of device floats (the caller frees) */
static inline float *host_from(const float *d, size_t n) {
  float *h = test_alloc(n);
  if (n && gpu->ops->download(gpu, h, d, sizeof(float) * n) != REID_OK) {
    fprintf(stderr, "test: download failed: %s\n", reid_last_error());
    exit(1);
  }
  return h;
}

static inline float *host_copy(const float *h, size_t n) {
  float *c = test_alloc(n);
  memcpy(c, h, sizeof(float) * n);
  return c;
}

/* |got - ref| <= tol * scale + atol elementwise, scale >= 0 (e.g. sum |x_k w_k|);
 * NaN in got fails. */
static inline void check_scaled(const char *what, const float *got, const float *ref,
                                const float *scale, size_t n, double tol, double atol) {
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    const double r = fabs((double)got[i] - ref[i]) / (tol * fabs((double)scale[i]) + atol);
    if (!(r <= worst)) worst = isnan(r) ? INFINITY : r, at = i;
  }
  CHECK(worst <= 1.0, "%s: element %zu: %.9g vs %.9g (scale %.3g, ratio %.3g)", what, at,
        (double)got[at], (double)ref[at], (double)scale[at], worst);
}

/* max |x| over n floats */
static inline double max_abs(const float *x, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fabs((double)x[i]) > m ? fabs((double)x[i]) : m;
  return m;
}

/* |got - ref| <= atol + rtol |ref| elementwise (equal values always pass, so
 * atol may be 0); NaN in got fails unless ref is NaN too. */
static inline void check_close(const char *what, const float *got, const float *ref, size_t n,
                               double atol, double rtol) {
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    if (got[i] == ref[i] || (isnan(got[i]) && isnan(ref[i]))) continue;
    const double r = fabs((double)got[i] - ref[i]) / (atol + rtol * fabs((double)ref[i]));
    if (!(r <= worst)) worst = isnan(r) ? INFINITY : r, at = i;
  }
  CHECK(worst <= 1.0, "%s: element %zu: %.9g vs %.9g (ratio %.3g)", what, at, (double)got[at],
        (double)ref[at], worst);
}

/* Downloads d and compares with the host reference (check_close). */
static inline void check_dev(const char *what, const float *d, const float *ref, size_t n,
                             double atol, double rtol) {
  float *h = host_from(d, n);
  check_close(what, h, ref, n, atol, rtol);
  free(h);
}
