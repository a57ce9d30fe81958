/* Minimal test helpers shared by the C tests: checks that count failures,
 * a deterministic RNG, and tensor comparison. A test's main returns
 * test_finish(), which is non-zero when any check failed. */
#pragma once

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures_;
static int test_checks_;

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    test_checks_++;                                                                                \
    if (!(cond)) {                                                                                 \
      test_failures_++;                                                                            \
      fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);                     \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
    }                                                                                              \
  } while (0)

/* Checks a reid_status-returning call for success and prints the library's message. */
#define CHECK_OK(expr)                                                                             \
  do {                                                                                             \
    reid_status check_ok_status_ = (expr);                                                         \
    CHECK(check_ok_status_ == REID_OK, "%s -> %s: %s", #expr, reid_status_name(check_ok_status_),  \
          reid_last_error());                                                                      \
  } while (0)

static inline int test_finish(const char *name) {
  fprintf(stderr, "%s: %d checks, %d failed\n", name, test_checks_, test_failures_);
  return test_failures_ ? 1 : 0;
}

/* xorshift64*: deterministic across platforms */
typedef struct {
  uint64_t s;
} test_rng;
static inline test_rng test_rng_make(uint64_t seed) {
  test_rng r = {seed * 2654435761u + 0x9E3779B97F4A7C15ull};
  return r;
}
static inline uint64_t test_rng_u64(test_rng *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 2685821657736338717ull;
}
/* uniform in [lo, hi) */
static inline float test_rng_uniform(test_rng *r, float lo, float hi) {
  return lo + (hi - lo) * (float)((test_rng_u64(r) >> 40) / 16777216.0);
}
static inline void test_fill_uniform(test_rng *r, float *x, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++) x[i] = test_rng_uniform(r, lo, hi);
}
static inline int test_rng_int(test_rng *r, int lo, int hi_inclusive) {
  return lo + (int)(test_rng_u64(r) % (uint64_t)(hi_inclusive - lo + 1));
}

/* max |a - b| / (atol + rtol |b|) over elements; <= 1 means "close". */
static inline double test_close_ratio(const float *a, const float *b, size_t n, double atol,
                                      double rtol, size_t *worst) {
  double ratio = 0;
  for (size_t i = 0; i < n; i++) {
    double r = fabs((double)a[i] - (double)b[i]) / (atol + rtol * fabs((double)b[i]));
    if (!(r <= ratio)) { /* also catches NaN */
      ratio = isnan(r) ? INFINITY : r;
      if (worst) *worst = i;
    }
  }
  return ratio;
}

#define CHECK_CLOSE(a, b, n, atol, rtol, what)                                                     \
  do {                                                                                             \
    size_t close_worst_ = 0;                                                                       \
    double close_ratio_ = test_close_ratio((a), (b), (n), (atol), (rtol), &close_worst_);          \
    CHECK(close_ratio_ <= 1.0, "%s: element %zu: %.8g vs %.8g (ratio %.3g)", (what), close_worst_, \
          (double)(a)[close_worst_], (double)(b)[close_worst_], close_ratio_);                     \
  } while (0)

/* The smallest cosine between rows i of a and b ([n, d] each); NaN counts as
 * the worst. */
static inline double test_min_row_cosine(const float *a, const float *b, int n, int d) {
  double worst = 1;
  for (int i = 0; i < n; i++) {
    double dot = 0, na = 0, nb = 0;
    for (int j = 0; j < d; j++) {
      const double x = a[(size_t)i * d + j], y = b[(size_t)i * d + j];
      dot += x * y, na += x * x, nb += y * y;
    }
    const double c = dot / sqrt(na * nb + 1e-300);
    if (!(c >= worst)) worst = c;
  }
  return worst;
}

static inline float *test_alloc(size_t n) {
  float *p = calloc(n ? n : 1, sizeof(float));
  if (!p) {
    fprintf(stderr, "test: out of memory\n");
    exit(2);
  }
  return p;
}
