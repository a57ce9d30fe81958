/* Optimiser steps of the CPU backend against PyTorch's update formulas
 * evaluated in double here (torch.optim.Adam / AdamW / SGD, single-tensor
 * path): three steps each, then the threaded path on a long buffer, then
 * argument errors. */
#include "backend.h"
#include "test_util.h"

static reid_backend *be;

#define N     6
#define STEPS 3

/* fixed parameters and per-step gradients (mixed signs, one zero gradient) */
static const float p0[N] = {1.0f, -0.5f, 0.25f, 2.0f, -1.5f, 0.0f};
static const float grads[STEPS][N] = {
    {0.1f, -0.2f, 0.3f, 0.0f, 1.5f, -0.05f},
    {0.05f, 0.4f, -0.3f, 0.2f, 1.0f, 0.0f},
    {-0.3f, 0.1f, 0.2f, -0.1f, 0.5f, 0.01f},
};

/* PyTorch Adam (decoupled = 0) / AdamW (decoupled = 1), in double */
static void adam_expected(double lr, double b1, double b2, double eps, double wd, int decoupled,
                          double out[STEPS][N]) {
  double p[N], m[N] = {0}, v[N] = {0};
  for (int i = 0; i < N; i++) p[i] = p0[i];
  for (int t = 1; t <= STEPS; t++) {
    for (int i = 0; i < N; i++) {
      double g = grads[t - 1][i];
      if (decoupled)
        p[i] *= 1 - lr * wd;
      else
        g += wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      const double step_size = lr / (1 - pow(b1, t));
      const double denom = sqrt(v[i]) / sqrt(1 - pow(b2, t)) + eps;
      p[i] -= step_size * m[i] / denom;
      out[t - 1][i] = p[i];
    }
  }
}

/* PyTorch SGD with momentum mu, dampening 0 */
static void sgd_expected(double lr, double mu, double wd, int nesterov, double out[STEPS][N]) {
  double p[N], buf[N] = {0};
  for (int i = 0; i < N; i++) p[i] = p0[i];
  for (int t = 1; t <= STEPS; t++) {
    for (int i = 0; i < N; i++) {
      double g = grads[t - 1][i] + wd * p[i];
      if (mu != 0) {
        buf[i] = t == 1 ? g : mu * buf[i] + g;
        g = nesterov ? g + mu * buf[i] : buf[i];
      }
      p[i] -= lr * g;
      out[t - 1][i] = p[i];
    }
  }
}

static void check_adam(int decoupled) {
  const float lr = 0.01f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.1f;
  double expect[STEPS][N];
  adam_expected(lr, b1, b2, eps, wd, decoupled, expect);
  float p[N], m[N] = {0}, v[N] = {0}, e[N];
  memcpy(p, p0, sizeof p);
  for (int t = 1; t <= STEPS; t++) {
    CHECK_OK(be->ops->adam_update(be, N, p, grads[t - 1], m, v, lr, b1, b2, eps, wd, decoupled, t));
    for (int i = 0; i < N; i++) e[i] = (float)expect[t - 1][i];
    char what[48];
    snprintf(what, sizeof what, "%s step %d", decoupled ? "AdamW" : "Adam", t);
    CHECK_CLOSE(p, e, N, 1e-6, 1e-6, what);
  }
}

static void check_sgd(float momentum, int nesterov, int with_buffer) {
  const float lr = 0.1f, wd = 0.01f;
  double expect[STEPS][N];
  sgd_expected(lr, momentum, wd, nesterov, expect);
  float p[N], buf[N], e[N];
  memcpy(p, p0, sizeof p);
  for (int i = 0; i < N; i++) buf[i] = 1e6f; /* garbage: step 1 must overwrite, not read */
  for (int t = 1; t <= STEPS; t++) {
    CHECK_OK(be->ops->sgd_update(be, N, p, grads[t - 1], with_buffer ? buf : NULL, lr, momentum, wd,
                                 nesterov, t));
    for (int i = 0; i < N; i++) e[i] = (float)expect[t - 1][i];
    char what[64];
    snprintf(what, sizeof what, "SGD momentum %g nesterov %d step %d", momentum, nesterov, t);
    CHECK_CLOSE(p, e, N, 1e-6, 1e-6, what);
  }
}

/* Long buffers take the threaded path; every element must follow the same formula. */
static void check_long(void) {
  const size_t n = ((size_t)1 << 17) + 5;
  float *p = test_alloc(n), *g = test_alloc(n), *m = test_alloc(n), *v = test_alloc(n);
  float *e = test_alloc(n);
  for (size_t i = 0; i < n; i++) p[i] = p0[i % N], g[i] = grads[0][i % N];
  CHECK_OK(be->ops->adam_update(be, n, p, g, m, v, 0.01f, 0.9f, 0.999f, 1e-8f, 0.1f, 1, 1));
  double expect[STEPS][N];
  adam_expected(0.01, 0.9, 0.999, 1e-8, 0.1, 1, expect);
  for (size_t i = 0; i < n; i++) e[i] = (float)expect[0][i % N];
  CHECK_CLOSE(p, e, n, 1e-6, 1e-6, "AdamW on a long buffer");
  for (size_t i = 0; i < n; i++) p[i] = p0[i % N];
  CHECK_OK(be->ops->sgd_update(be, n, p, g, m, 0.1f, 0.9f, 0.01f, 1, 1));
  sgd_expected(0.1, 0.9, 0.01, 1, expect);
  for (size_t i = 0; i < n; i++) e[i] = (float)expect[0][i % N];
  CHECK_CLOSE(p, e, n, 1e-6, 1e-6, "SGD nesterov on a long buffer");
  free(p), free(g), free(m), free(v), free(e);
}

static void check_errors(void) {
  float p[2] = {0}, g[2] = {0}, m[2] = {0}, v[2] = {0};
  CHECK(be->ops->adam_update(be, 2, p, g, m, v, 0.01f, 0.9f, 0.999f, 1e-8f, 0, 0, 0) == REID_EINVAL,
        "Adam step 0");
  CHECK(strstr(reid_last_error(), "adam_update") != NULL, "message: %s", reid_last_error());
  CHECK(be->ops->adam_update(be, 2, p, g, NULL, v, 0.01f, 0.9f, 0.999f, 1e-8f, 0, 0, 1) ==
            REID_EINVAL,
        "Adam NULL m");
  CHECK(be->ops->adam_update(be, 2, p, g, m, v, 0.01f, 1.0f, 0.999f, 1e-8f, 0, 0, 1) == REID_EINVAL,
        "Adam beta1 = 1");
  CHECK(be->ops->adam_update(be, 2, p, g, m, v, -0.01f, 0.9f, 0.999f, 1e-8f, 0, 0, 1) ==
            REID_EINVAL,
        "Adam negative lr");
  CHECK(be->ops->sgd_update(be, 2, p, g, NULL, 0.1f, 0.9f, 0, 0, 1) == REID_EINVAL,
        "SGD momentum without a buffer");
  CHECK(strstr(reid_last_error(), "sgd_update") != NULL, "message: %s", reid_last_error());
  CHECK(be->ops->sgd_update(be, 2, p, g, m, 0.1f, 0.0f, 0, 1, 1) == REID_EINVAL,
        "Nesterov without momentum");
  CHECK(be->ops->sgd_update(be, 2, p, NULL, m, 0.1f, 0.9f, 0, 0, 1) == REID_EINVAL, "NULL grads");
  CHECK(be->ops->sgd_update(be, 2, p, g, m, 0.1f, 0.9f, 0, 0, -3) == REID_EINVAL, "SGD step < 1");
}

int main(void) {
  if (reid_backend_create("cpu", 0, &be) != REID_OK) {
    fprintf(stderr, "cpu backend: %s\n", reid_last_error());
    return 1;
  }
  check_adam(0);
  check_adam(1);
  check_sgd(0.9f, 0, 1);
  check_sgd(0.9f, 1, 1);
  check_sgd(0.0f, 0, 0); /* plain SGD with weight decay, no buffer */
  check_long();
  check_errors();
  reid_backend_destroy(be);
  return test_finish("test_ops_optim");
}
