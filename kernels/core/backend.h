/* The dispatch seam: one table of function pointers per compute backend.
 *
 * Layer code (kernels/nn, training/) calls ops only through this table, with
 * pointers that live in the backend's memory (host memory for "cpu", device
 * memory for "cuda"). All tensors are fp32, dense, C order; images are NCHW.
 *
 * Conventions for every op:
 *  - forward ops write (overwrite) their outputs;
 *  - backward ops OVERWRITE the input gradient (dx) and the parameter
 *    gradients (dw, dbias, dgamma, dbeta); callers that need accumulation
 *    (a tensor read by two layers) add with `accumulate`;
 *  - a NULL gradient pointer means "not needed";
 *  - every op returns REID_OK or a status with reid_last_error() set.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct reid_backend reid_backend;

/* 2-D convolution, square kernel, symmetric padding, `groups` channel groups
 * (1: dense; c_in: depthwise). Input channels c_in / groups of group g feed
 * output channels c_out / groups of group g.
 *   x: [n, c_in, h_in, w_in]   w: [c_out, c_in / groups, k, k]   bias: [c_out]
 *   y: [n, c_out, h_out, w_out], h_out = (h_in + 2 pad - k) / stride + 1 */
typedef struct reid_conv2d_desc {
  int n, c_in, h_in, w_in;
  int c_out, k, stride, pad;
  int h_out, w_out;
  int groups;
} reid_conv2d_desc;

/* Fills h_out/w_out (groups = 1); fails on non-positive sizes or an empty output. */
reid_status reid_conv2d_desc_init(reid_conv2d_desc *d, int n, int c_in, int h_in, int w_in,
                                  int c_out, int k, int stride, int pad);
/* The same with channel groups; groups must divide c_in and c_out. */
reid_status reid_conv2d_desc_init_grouped(reid_conv2d_desc *d, int n, int c_in, int h_in, int w_in,
                                          int c_out, int k, int stride, int pad, int groups);

/* Max pooling (k x k, stride, pad), PyTorch's floor mode.
 *   x: [n, c, h, w] -> y: [n, c, h_out, w_out] */
typedef struct reid_pool2d_desc {
  int n, c, h, w;
  int k, stride, pad;
  int h_out, w_out;
  int ceil_mode; /* PyTorch's ceil_mode: h_out = ceil((h + 2 pad - k) / stride) + 1, less one
                    when the last window would start in the right padding; max pooling only
                    (fast-reid's ResNet stem) */
} reid_pool2d_desc;

reid_status reid_pool2d_desc_init(reid_pool2d_desc *d, int n, int c, int h, int w, int k,
                                  int stride, int pad);
/* The same in ceil mode. */
reid_status reid_pool2d_desc_init_ceil(reid_pool2d_desc *d, int n, int c, int h, int w, int k,
                                       int stride, int pad);

typedef enum reid_distance_kind {
  REID_DIST_SQEUCLIDEAN = 0, /* sum (a - b)^2 */
  REID_DIST_EUCLIDEAN = 1,   /* sqrt(sum (a - b)^2 + 1e-12) */
  REID_DIST_COSINE = 2,      /* 1 - a.b / (max(|a|,1e-12) max(|b|,1e-12)) */
} reid_distance_kind;

#define REID_L2NORM_EPS    1e-12f
#define REID_EUCLIDEAN_EPS 1e-12f

typedef struct reid_backend_ops {
  /* ---- memory ---- */
  void *(*alloc)(reid_backend *be, size_t bytes); /* 64-byte aligned, NULL on failure */
  void (*free)(reid_backend *be, void *ptr);
  reid_status (*upload)(reid_backend *be, void *dst, const void *host_src, size_t bytes);
  reid_status (*download)(reid_backend *be, void *host_dst, const void *src, size_t bytes);
  reid_status (*copy)(reid_backend *be, void *dst, const void *src, size_t bytes);
  reid_status (*fill)(reid_backend *be, float *x, size_t n, float value);
  reid_status (*synchronize)(reid_backend *be);

  /* ---- elementwise ---- */
  /* y = max(x, 0); y may alias x */
  reid_status (*relu_forward)(reid_backend *be, size_t n, const float *x, float *y);
  /* dx = dy * (y > 0); dx may alias dy */
  reid_status (*relu_backward)(reid_backend *be, size_t n, const float *y, const float *dy,
                               float *dx);
  /* y = a + b; y may alias a or b */
  reid_status (*add)(reid_backend *be, size_t n, const float *a, const float *b, float *y);
  /* y = min(max(x, 0), 6); y may alias x */
  reid_status (*relu6_forward)(reid_backend *be, size_t n, const float *x, float *y);
  /* dx = dy * (0 < y < 6); dx may alias dy */
  reid_status (*relu6_backward)(reid_backend *be, size_t n, const float *y, const float *dy,
                                float *dx);
  /* y = 1 / (1 + exp(-x)) */
  reid_status (*sigmoid_forward)(reid_backend *be, size_t n, const float *x, float *y);
  /* dx = dy * y (1 - y) */
  reid_status (*sigmoid_backward)(reid_backend *be, size_t n, const float *y, const float *dy,
                                  float *dx);
  /* Channel gate: y[n, c, hw] = x[n, c, hw] * g[n, c] */
  reid_status (*channel_mul_forward)(reid_backend *be, int n, int c, int hw, const float *x,
                                     const float *g, float *y);
  /* dx = dy * g; dg[n, c] = sum over hw of dy x (either may be NULL) */
  reid_status (*channel_mul_backward)(reid_backend *be, int n, int c, int hw, const float *x,
                                      const float *g, const float *dy, float *dx, float *dg);
  /* Channel block copy (concat, its backward, channel slices), planes of hw floats:
   *   dst[i, dst_c0 + j, :] = src[i, src_c0 + j, :]   for i < n, j < c
   * src has src_c channels per sample, dst dst_c. */
  reid_status (*channel_copy)(reid_backend *be, int n, int hw, int c, const float *src, int src_c,
                              int src_c0, float *dst, int dst_c, int dst_c0);
  /* y += alpha * x */
  reid_status (*accumulate)(reid_backend *be, size_t n, float alpha, const float *x, float *y);
  /* x *= alpha */
  reid_status (*scale)(reid_backend *be, size_t n, float alpha, float *x);

  /* ---- convolution ---- */
  /* bias may be NULL */
  reid_status (*conv2d_forward)(reid_backend *be, const reid_conv2d_desc *d, const float *x,
                                const float *w, const float *bias, float *y);
  /* dx, dbias may be NULL; dw may be NULL (frozen weights) */
  reid_status (*conv2d_backward)(reid_backend *be, const reid_conv2d_desc *d, const float *x,
                                 const float *w, const float *dy, float *dx, float *dw,
                                 float *dbias);

  /* ---- batch norm over [n, c, hw] (hw = 1 for BatchNorm1d on [n, c]) ---- */
  /* Training mode: normalise with batch statistics (biased variance), update
   *   running = (1 - momentum) running + momentum batch  (unbiased variance),
   * and keep save_mean[c], save_invstd[c] = 1/sqrt(var + eps) for backward. */
  reid_status (*batchnorm_forward_train)(reid_backend *be, int n, int c, int hw, const float *x,
                                         const float *gamma, const float *beta, float momentum,
                                         float eps, float *running_mean, float *running_var,
                                         float *y, float *save_mean, float *save_invstd);
  /* Eval mode: normalise with running statistics. */
  reid_status (*batchnorm_forward_eval)(reid_backend *be, int n, int c, int hw, const float *x,
                                        const float *gamma, const float *beta,
                                        const float *running_mean, const float *running_var,
                                        float eps, float *y);
  /* Backward of training mode. dgamma/dbeta may be NULL. */
  reid_status (*batchnorm_backward)(reid_backend *be, int n, int c, int hw, const float *x,
                                    const float *gamma, const float *save_mean,
                                    const float *save_invstd, const float *dy, float *dx,
                                    float *dgamma, float *dbeta);
  /* Backward of eval mode (frozen statistics): dx = dy * gamma * invstd. */
  reid_status (*batchnorm_backward_eval)(reid_backend *be, int n, int c, int hw, const float *x,
                                         const float *gamma, const float *running_mean,
                                         const float *running_var, float eps, const float *dy,
                                         float *dx, float *dgamma, float *dbeta);

  /* ---- instance norm over [n, c, hw] (InstanceNorm2d(affine=True), no running stats) ----
   * Every plane (i, ch) is normalised with its own mean and biased variance:
   *   y = (x - mean) / sqrt(var + eps) gamma[ch] + beta[ch];
   * save_mean, save_invstd [n, c] keep the statistics for backward. */
  reid_status (*instancenorm_forward)(reid_backend *be, int n, int c, int hw, const float *x,
                                      const float *gamma, const float *beta, float eps, float *y,
                                      float *save_mean, float *save_invstd);
  /* dx, dgamma, dbeta may be NULL */
  reid_status (*instancenorm_backward)(reid_backend *be, int n, int c, int hw, const float *x,
                                       const float *gamma, const float *save_mean,
                                       const float *save_invstd, const float *dy, float *dx,
                                       float *dgamma, float *dbeta);

  /* ---- pooling ---- */
  /* argmax[n*c*h_out*w_out] holds the flat input index (within the plane) of each max */
  reid_status (*maxpool2d_forward)(reid_backend *be, const reid_pool2d_desc *d, const float *x,
                                   float *y, int32_t *argmax);
  reid_status (*maxpool2d_backward)(reid_backend *be, const reid_pool2d_desc *d,
                                    const int32_t *argmax, const float *dy, float *dx);
  /* Average pooling (k x k, stride, pad), padded positions counted (PyTorch's
   * count_include_pad = True) */
  reid_status (*avgpool2d_forward)(reid_backend *be, const reid_pool2d_desc *d, const float *x,
                                   float *y);
  reid_status (*avgpool2d_backward)(reid_backend *be, const reid_pool2d_desc *d, const float *dy,
                                    float *dx);
  /* y[n, c] = mean over hw of x[n, c, hw] */
  reid_status (*avgpool_global_forward)(reid_backend *be, int n, int c, int hw, const float *x,
                                        float *y);
  reid_status (*avgpool_global_backward)(reid_backend *be, int n, int c, int hw, const float *dy,
                                         float *dx);
  /* Temporal average pooling: y[b, d] = mean over t of x[b, t, d] */
  reid_status (*temporal_mean_forward)(reid_backend *be, int b, int t, int d, const float *x,
                                       float *y);
  reid_status (*temporal_mean_backward)(reid_backend *be, int b, int t, int d, const float *dy,
                                        float *dx);

  /* ---- linear: y[b, out] = x[b, in] w[out, in]^T + bias[out] (bias may be NULL) ---- */
  reid_status (*linear_forward)(reid_backend *be, int b, int in, int out, const float *x,
                                const float *w, const float *bias, float *y);
  reid_status (*linear_backward)(reid_backend *be, int b, int in, int out, const float *x,
                                 const float *w, const float *dy, float *dx, float *dw,
                                 float *dbias);

  /* ---- losses and normalisation ---- */
  /* Cross-entropy with label smoothing eps (PyTorch's label_smoothing):
   *   target = (1 - eps) onehot(label) + eps / classes
   *   loss[i] = -sum_j target_j log softmax(logits_i)_j
   * probs[b, classes] keeps the softmax for backward. */
  reid_status (*softmax_xent_forward)(reid_backend *be, int b, int classes, const float *logits,
                                      const int32_t *labels, float smoothing, float *loss,
                                      float *probs);
  /* dlogits[i] = dloss[i] * (probs[i] - target[i]) */
  reid_status (*softmax_xent_backward)(reid_backend *be, int b, int classes, const float *probs,
                                       const int32_t *labels, float smoothing, const float *dloss,
                                       float *dlogits);
  /* y[i] = x[i] / max(|x[i]|, 1e-12); norm[i] = |x[i]| */
  reid_status (*l2norm_forward)(reid_backend *be, int b, int d, const float *x, float *y,
                                float *norm);
  reid_status (*l2norm_backward)(reid_backend *be, int b, int d, const float *x, const float *norm,
                                 const float *dy, float *dx);
  /* dist[m, n] between rows of a[m, d] and b[n, d] */
  reid_status (*distance_forward)(reid_backend *be, reid_distance_kind kind, int m, int n, int d,
                                  const float *a, const float *b, float *dist);
  /* da, db may be NULL. When a and b are the same tensor the caller adds da + db. */
  reid_status (*distance_backward)(reid_backend *be, reid_distance_kind kind, int m, int n, int d,
                                   const float *a, const float *b, const float *dist,
                                   const float *ddist, float *da, float *db);

  /* ---- optimisers (one flat parameter buffer) ---- */
  /* Adam, bias-corrected, `step` counts from 1.
   *   decoupled = 0: g += wd * p (PyTorch Adam weight_decay)
   *   decoupled = 1: p -= lr * wd * p before the update (AdamW) */
  reid_status (*adam_update)(reid_backend *be, size_t n, float *params, const float *grads,
                             float *m, float *v, float lr, float beta1, float beta2, float eps,
                             float weight_decay, int decoupled, int step);
  /* SGD with momentum (PyTorch semantics, dampening 0):
   *   g += wd p; buf = momentum buf + g (buf = g at step 1); p -= lr (nesterov ? g + momentum buf :
   * buf) */
  reid_status (*sgd_update)(reid_backend *be, size_t n, float *params, const float *grads,
                            float *momentum_buf, float lr, float momentum, float weight_decay,
                            int nesterov, int step);
} reid_backend_ops;

typedef enum reid_device_kind { REID_DEVICE_CPU = 0, REID_DEVICE_CUDA = 1 } reid_device_kind;

struct reid_backend {
  const reid_backend_ops *ops;
  const char *name; /* "cpu" or "cuda" */
  reid_device_kind device;
  int device_id;
  void *impl; /* backend-private state (primitive caches, handles) */
};

/* device: "cpu", "cuda" or "auto" (CUDA when a GPU is usable, else CPU). */
reid_status reid_backend_create(const char *device, int device_id, reid_backend **out);
void reid_backend_destroy(reid_backend *be);

/* Whether this build has CUDA support and a usable GPU. */
int reid_cuda_available(void);

/* Threads used by the CPU backend (OpenMP and oneDNN); <= 0 means all cores. */
void reid_set_num_threads(int threads);
int reid_get_num_threads(void);
