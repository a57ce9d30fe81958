/* Losses and normalisation of the CUDA backend, with the CPU backend's
 * semantics (kernels/cpu/ops/loss.c): softmax cross-entropy with label
 * smoothing and row-wise L2 normalisation. One block per row; row reductions
 * in double, as on the CPU. Labels live in device memory: a first kernel
 * checks them and the result is read back before anything is written, so a
 * bad label fails with REID_EINVAL like the CPU op. */
#include "cuda_kernels.cuh"

static const int ROW_THREADS = 256;

__global__ void k_label_check(int b, int classes, const int32_t *labels, int *flag) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  /* flag = b - (first bad row): the largest value marks the first row */
  if (i < b && (labels[i] < 0 || labels[i] >= classes)) atomicMax(flag, b - i);
}

/* lse = zmax + log sum exp(z - zmax);  p = exp(z - lse);
 * loss = lse - (1 - eps) z[label] - eps / C sum z */
__global__ void k_xent_forward(int classes, const float *logits, const int32_t *labels, double eps,
                               float *loss, float *probs) {
  __shared__ float fshared[32];
  __shared__ double dshared[32];
  const int i = blockIdx.x;
  const float *z = logits + (size_t)i * classes;
  float *p = probs + (size_t)i * classes;
  float zmax = -INFINITY;
  for (int j = threadIdx.x; j < classes; j += blockDim.x) zmax = z[j] > zmax ? z[j] : zmax;
  zmax = block_max(zmax, fshared);
  double sumexp = 0.0, sumz = 0.0;
  for (int j = threadIdx.x; j < classes; j += blockDim.x) {
    sumexp += exp((double)z[j] - zmax);
    sumz += z[j];
  }
  sumexp = block_sum(sumexp, dshared);
  sumz = block_sum(sumz, dshared);
  const double lse = zmax + log(sumexp);
  for (int j = threadIdx.x; j < classes; j += blockDim.x) p[j] = (float)exp((double)z[j] - lse);
  if (threadIdx.x == 0) loss[i] = (float)(lse - (1.0 - eps) * z[labels[i]] - eps / classes * sumz);
}

/* dz = dloss (p - off), at the label dloss (p - on) */
__global__ void k_xent_backward(int classes, const float *probs, const int32_t *labels, float off,
                                float on, const float *dloss, float *dlogits) {
  const int i = blockIdx.x;
  const float *p = probs + (size_t)i * classes;
  float *dz = dlogits + (size_t)i * classes;
  const float g = dloss[i];
  const int label = labels[i];
  for (int j = threadIdx.x; j < classes; j += blockDim.x)
    dz[j] = g * (p[j] - (j == label ? on : off));
}

__global__ void k_l2norm_forward(int d, const float *x, float *y, float *norm) {
  __shared__ double shared[32];
  const int i = blockIdx.x;
  const float *xr = x + (size_t)i * d;
  float *yr = y + (size_t)i * d;
  double ss = 0.0;
  for (int j = threadIdx.x; j < d; j += blockDim.x) ss += (double)xr[j] * xr[j];
  ss = block_sum(ss, shared);
  const double nrm = sqrt(ss);
  const float inv = (float)(1.0 / fmax(nrm, (double)REID_L2NORM_EPS));
  if (threadIdx.x == 0) norm[i] = (float)nrm;
  for (int j = threadIdx.x; j < d; j += blockDim.x) yr[j] = xr[j] * inv;
}

/* n = |x| >= eps: dx = dy / n - x (x . dy) / n^3;  below eps: dx = dy / eps */
__global__ void k_l2norm_backward(int d, const float *x, const float *norm, const float *dy,
                                  float *dx) {
  __shared__ double shared[32];
  const int i = blockIdx.x;
  const float *xr = x + (size_t)i * d, *dyr = dy + (size_t)i * d;
  float *dxr = dx + (size_t)i * d;
  const double nrm = norm[i];
  if (nrm >= (double)REID_L2NORM_EPS) {
    double xdy = 0.0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) xdy += (double)xr[j] * dyr[j];
    xdy = block_sum(xdy, shared);
    const float a = (float)(1.0 / nrm);
    const float k = (float)(xdy / (nrm * nrm * nrm));
    for (int j = threadIdx.x; j < d; j += blockDim.x) dxr[j] = a * dyr[j] - k * xr[j];
  } else {
    const float a = 1.0f / REID_L2NORM_EPS;
    for (int j = threadIdx.x; j < d; j += blockDim.x) dxr[j] = a * dyr[j];
  }
}

/* ---- host side ---- */

static reid_status check_xent(cuda_state *s, const char *op, int b, int classes,
                              const int32_t *labels, float smoothing) {
  if (b < 1 || classes < 1)
    return reid_fail(REID_EINVAL, "%s: invalid shape b=%d classes=%d", op, b, classes);
  if (!(smoothing >= 0.0f && smoothing <= 1.0f))
    return reid_fail(REID_EINVAL, "%s: label smoothing %g outside [0, 1]", op, (double)smoothing);
  CUDA_REQUIRE(op, labels);
  REID_TRY(cuda_flag_reset(s));
  k_label_check<<<(b + 255) / 256, 256, 0, s->stream>>>(b, classes, labels, s->flag);
  CUDA_LAUNCH_CHECK("k_label_check");
  int bad = 0;
  REID_TRY(cuda_flag_read(s, &bad));
  if (bad) {
    const int row = b - bad;
    int32_t label = 0;
    CUDA_CHECK(cudaMemcpy(&label, labels + row, sizeof label, cudaMemcpyDeviceToHost));
    return reid_fail(REID_EINVAL, "%s: label %d of row %d outside [0, %d)", op, (int)label, row,
                     classes);
  }
  return REID_OK;
}

static reid_status cuda_softmax_xent_forward(reid_backend *be, int b, int classes,
                                             const float *logits, const int32_t *labels,
                                             float smoothing, float *loss, float *probs) {
  const char *op = "softmax_xent_forward";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  CUDA_REQUIRE(op, logits);
  CUDA_REQUIRE(op, loss);
  CUDA_REQUIRE(op, probs);
  REID_TRY(check_xent(s, op, b, classes, labels, smoothing));
  k_xent_forward<<<b, ROW_THREADS, 0, s->stream>>>(classes, logits, labels, (double)smoothing, loss,
                                                   probs);
  CUDA_LAUNCH_CHECK("k_xent_forward");
  return REID_OK;
}

static reid_status cuda_softmax_xent_backward(reid_backend *be, int b, int classes,
                                              const float *probs, const int32_t *labels,
                                              float smoothing, const float *dloss, float *dlogits) {
  const char *op = "softmax_xent_backward";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (dlogits) {
    CUDA_REQUIRE(op, probs);
    CUDA_REQUIRE(op, dloss);
  }
  REID_TRY(check_xent(s, op, b, classes, labels, smoothing));
  if (!dlogits) return REID_OK;
  const float off = smoothing / (float)classes; /* target of every class */
  const float on = 1.0f - smoothing + off;      /* target of the label */
  k_xent_backward<<<b, ROW_THREADS, 0, s->stream>>>(classes, probs, labels, off, on, dloss,
                                                    dlogits);
  CUDA_LAUNCH_CHECK("k_xent_backward");
  return REID_OK;
}

static reid_status cuda_l2norm_forward(reid_backend *be, int b, int d, const float *x, float *y,
                                       float *norm) {
  const char *op = "l2norm_forward";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (b < 1 || d < 1) return reid_fail(REID_EINVAL, "%s: invalid shape b=%d d=%d", op, b, d);
  CUDA_REQUIRE(op, x);
  CUDA_REQUIRE(op, y);
  CUDA_REQUIRE(op, norm);
  k_l2norm_forward<<<b, ROW_THREADS, 0, s->stream>>>(d, x, y, norm);
  CUDA_LAUNCH_CHECK("k_l2norm_forward");
  return REID_OK;
}

static reid_status cuda_l2norm_backward(reid_backend *be, int b, int d, const float *x,
                                        const float *norm, const float *dy, float *dx) {
  const char *op = "l2norm_backward";
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (b < 1 || d < 1) return reid_fail(REID_EINVAL, "%s: invalid shape b=%d d=%d", op, b, d);
  if (!dx) return REID_OK;
  CUDA_REQUIRE(op, x);
  CUDA_REQUIRE(op, norm);
  CUDA_REQUIRE(op, dy);
  k_l2norm_backward<<<b, ROW_THREADS, 0, s->stream>>>(d, x, norm, dy, dx);
  CUDA_LAUNCH_CHECK("k_l2norm_backward");
  return REID_OK;
}

extern "C" void cuda_register_loss_ops(reid_backend_ops *ops) {
  ops->softmax_xent_forward = cuda_softmax_xent_forward;
  ops->softmax_xent_backward = cuda_softmax_xent_backward;
  ops->l2norm_forward = cuda_l2norm_forward;
  ops->l2norm_backward = cuda_l2norm_backward;
}
