/* Convolutions of the CUDA backend through cuDNN (NCHW, fp32 data):
 * forward, backward-data and backward-filter, bias through cudnnAddTensor and
 * dbias through a channel reduction. Channel groups (depthwise included) go
 * to cuDNN as the convolution's group count, the filter [c_out, c_in / groups,
 * k, k].
 *
 * Each (direction, shape, math mode, pointer alignment) gets its descriptors
 * and algorithm once: cudnnFind*AlgorithmEx times the candidates on the
 * caller's buffers, the fastest acceptable one is cached. In strict fp32 mode
 * (the default) the math is CUDNN_FMA_MATH and the FFT / Winograd algorithms
 * are excluded, so results stay within ~1e-6 of a float dot product; with
 * reid_cuda_set_tf32(be, 1) every algorithm and TF32 tensor cores are
 * allowed. */
#include <stdlib.h>
#include <string.h>

#include "cuda_common.h"

#define WORKSPACE_LIMIT ((size_t)512 << 20)

typedef enum conv_dir { DIR_FWD, DIR_BWD_DATA, DIR_BWD_FILTER } conv_dir;

typedef struct conv_entry {
  /* key */
  reid_conv2d_desc d;
  conv_dir dir;
  int tf32, align;
  /* value */
  cudnnTensorDescriptor_t x, y, bias;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t conv;
  int algo;
  size_t ws;
} conv_entry;

struct cuda_conv_cache {
  conv_entry *e;
  int n, cap;
};

/* Candidate slots: one per algorithm of any direction. */
#define MAX_CANDIDATES 16
_Static_assert((int)CUDNN_CONVOLUTION_FWD_ALGO_COUNT <= MAX_CANDIDATES &&
                   (int)CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT <= MAX_CANDIDATES &&
                   (int)CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT <= MAX_CANDIDATES,
               "more cuDNN algorithms than candidate slots");

/* One candidate of any direction. */
typedef struct candidate {
  int algo;
  cudnnStatus_t status;
  size_t memory;
  cudnnMathType_t math;
} candidate;

static const char *dir_name[] = {"forward", "backward-data", "backward-filter"};

static void entry_destroy(conv_entry *e) {
  if (e->x) cudnnDestroyTensorDescriptor(e->x);
  if (e->y) cudnnDestroyTensorDescriptor(e->y);
  if (e->bias) cudnnDestroyTensorDescriptor(e->bias);
  if (e->w) cudnnDestroyFilterDescriptor(e->w);
  if (e->conv) cudnnDestroyConvolutionDescriptor(e->conv);
  memset(e, 0, sizeof *e);
}

void cuda_conv_cache_destroy(cuda_conv_cache *c) {
  if (!c) return;
  for (int i = 0; i < c->n; i++) entry_destroy(&c->e[i]);
  free(c->e);
  free(c);
}

/* Lossy algorithms (transform domain) are off in strict fp32 mode. */
static int algo_allowed(conv_dir dir, int algo, int tf32) {
  if (tf32) return 1;
  switch (dir) {
  case DIR_FWD:
    return algo != CUDNN_CONVOLUTION_FWD_ALGO_FFT &&
           algo != CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING &&
           algo != CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD &&
           algo != CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
  case DIR_BWD_DATA:
    return algo != CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT &&
           algo != CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING &&
           algo != CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD &&
           algo != CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
  case DIR_BWD_FILTER:
    return algo != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT &&
           algo != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING &&
           algo != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
  }
  return 0;
}

static int algo_count(conv_dir dir) {
  return dir == DIR_FWD        ? CUDNN_CONVOLUTION_FWD_ALGO_COUNT
         : dir == DIR_BWD_DATA ? CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT
                               : CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
}

/* Workspace the algorithm needs; 0 with *ok = 0 when it does not apply. */
static size_t algo_workspace(cuda_state *s, const conv_entry *e, int algo, int *ok) {
  size_t bytes = 0;
  cudnnStatus_t st;
  if (e->dir == DIR_FWD)
    st = cudnnGetConvolutionForwardWorkspaceSize(s->cudnn, e->x, e->w, e->conv, e->y,
                                                 (cudnnConvolutionFwdAlgo_t)algo, &bytes);
  else if (e->dir == DIR_BWD_DATA)
    st = cudnnGetConvolutionBackwardDataWorkspaceSize(s->cudnn, e->w, e->y, e->conv, e->x,
                                                      (cudnnConvolutionBwdDataAlgo_t)algo, &bytes);
  else
    st = cudnnGetConvolutionBackwardFilterWorkspaceSize(
        s->cudnn, e->x, e->y, e->conv, e->w, (cudnnConvolutionBwdFilterAlgo_t)algo, &bytes);
  *ok = st == CUDNN_STATUS_SUCCESS;
  return *ok ? bytes : 0;
}

/* Times every candidate on the real buffers (a = x or dy, b = w or dy, out = y,
 * dx or dw) and returns them fastest first. */
static reid_status find_candidates(cuda_state *s, conv_entry *e, const void *a, const void *b,
                                   void *out, void *ws, size_t ws_bytes, candidate *c, int *n) {
  const int want = algo_count(e->dir);
  *n = 0;
  if (e->dir == DIR_FWD) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(s->cudnn, e->x, a, e->w, b, e->conv, e->y,
                                                       out, want, n, perf, ws, ws_bytes));
    for (int i = 0; i < *n; i++)
      c[i] = (candidate){perf[i].algo, perf[i].status, perf[i].memory, perf[i].mathType};
  } else if (e->dir == DIR_BWD_DATA) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
        s->cudnn, e->w, b, e->y, a, e->conv, e->x, out, want, n, perf, ws, ws_bytes));
    for (int i = 0; i < *n; i++)
      c[i] = (candidate){perf[i].algo, perf[i].status, perf[i].memory, perf[i].mathType};
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
        s->cudnn, e->x, a, e->y, b, e->conv, e->w, out, want, n, perf, ws, ws_bytes));
    for (int i = 0; i < *n; i++)
      c[i] = (candidate){perf[i].algo, perf[i].status, perf[i].memory, perf[i].mathType};
  }
  return REID_OK;
}

static reid_status choose_algorithm(cuda_state *s, conv_entry *e, const void *a, const void *b,
                                    void *out) {
  /* workspace: the most any allowed candidate needs, up to the limit */
  size_t need = 0;
  for (int algo = 0; algo < algo_count(e->dir); algo++) {
    int ok;
    size_t bytes = algo_workspace(s, e, algo, &ok);
    if (ok && algo_allowed(e->dir, algo, e->tf32) && bytes <= WORKSPACE_LIMIT && bytes > need)
      need = bytes;
  }
  void *ws = NULL;
  if (need) REID_TRY(cuda_workspace(s, need, &ws));
  candidate c[MAX_CANDIDATES];
  int n = 0;
  REID_TRY(find_candidates(s, e, a, b, out, ws, need, c, &n));
  for (int i = 0; i < n; i++) {
    const int tensor_op =
        c[i].math == CUDNN_TENSOR_OP_MATH || c[i].math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
    if (c[i].status != CUDNN_STATUS_SUCCESS || c[i].memory > need ||
        !algo_allowed(e->dir, c[i].algo, e->tf32) || (!e->tf32 && tensor_op))
      continue;
    e->algo = c[i].algo;
    e->ws = c[i].memory;
    /* strict fp32 runs FMA-only kernels whatever math type the search reported (cuDNN 8+
     * may report CUDNN_DEFAULT_MATH there; PyTorch forces FMA the same way) */
    CUDNN_CHECK(cudnnSetConvolutionMathType(e->conv, e->tf32 ? c[i].math : CUDNN_FMA_MATH));
    return REID_OK;
  }
  /* nothing timed acceptably: the plain GEMM-based algorithm of each direction */
  CUDNN_CHECK(cudnnSetConvolutionMathType(e->conv, e->tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
  e->algo = e->dir == DIR_FWD        ? CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM
            : e->dir == DIR_BWD_DATA ? CUDNN_CONVOLUTION_BWD_DATA_ALGO_1
                                     : CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
  int ok;
  e->ws = algo_workspace(s, e, e->algo, &ok);
  if (!ok)
    return reid_fail(
        REID_EDEVICE, "cuDNN: no %s algorithm for conv n=%d c_in=%d %dx%d -> c_out=%d k=%d s=%d",
        dir_name[e->dir], e->d.n, e->d.c_in, e->d.h_in, e->d.w_in, e->d.c_out, e->d.k, e->d.stride);
  return REID_OK;
}

static reid_status entry_init(cuda_state *s, conv_entry *e) {
  const reid_conv2d_desc *d = &e->d;
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&e->x));
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&e->y));
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&e->bias));
  CUDNN_CHECK(cudnnCreateFilterDescriptor(&e->w));
  CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&e->conv));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(e->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n, d->c_in,
                                         d->h_in, d->w_in));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(e->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n, d->c_out,
                                         d->h_out, d->w_out));
  CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(e->bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, d->c_out, 1, 1));
  const int groups = d->groups > 1 ? d->groups : 1;
  CUDNN_CHECK(cudnnSetFilter4dDescriptor(e->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, d->c_out,
                                         d->c_in / groups, d->k, d->k));
  CUDNN_CHECK(cudnnSetConvolution2dDescriptor(e->conv, d->pad, d->pad, d->stride, d->stride, 1, 1,
                                              CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CUDNN_CHECK(cudnnSetConvolutionGroupCount(e->conv, groups));
  CUDNN_CHECK(cudnnSetConvolutionMathType(e->conv, e->tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
  int n, c, h, w;
  CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(e->conv, e->x, e->w, &n, &c, &h, &w));
  if (n != d->n || c != d->c_out || h != d->h_out || w != d->w_out)
    return reid_fail(REID_EINVAL, "conv2d: cuDNN output %dx%dx%dx%d differs from %dx%dx%dx%d", n, c,
                     h, w, d->n, d->c_out, d->h_out, d->w_out);
  (void)s;
  return REID_OK;
}

static int align_class(const void *a, const void *b, const void *c) {
  return ((uintptr_t)a % 16 == 0) | ((uintptr_t)b % 16 == 0) << 1 | ((uintptr_t)c % 16 == 0) << 2;
}

/* The cached entry for this call, created (and its algorithm timed) on first use. */
static reid_status get_entry(cuda_state *s, const reid_conv2d_desc *d, conv_dir dir, const void *a,
                             const void *b, void *out, conv_entry **found) {
  if (!s->conv) {
    s->conv = calloc(1, sizeof *s->conv);
    if (!s->conv) return reid_fail(REID_ENOMEM, "conv2d: out of memory");
  }
  cuda_conv_cache *c = s->conv;
  const int align = align_class(a, b, out);
  for (int i = 0; i < c->n; i++) {
    conv_entry *e = &c->e[i];
    if (e->dir == dir && e->tf32 == s->allow_tf32 && e->align == align &&
        !memcmp(&e->d, d, sizeof *d)) {
      *found = e;
      return REID_OK;
    }
  }
  if (c->n == c->cap) {
    int cap = c->cap ? 2 * c->cap : 32;
    conv_entry *grown = realloc(c->e, sizeof *grown * (size_t)cap);
    if (!grown) return reid_fail(REID_ENOMEM, "conv2d: out of memory");
    c->e = grown;
    c->cap = cap;
  }
  conv_entry *e = &c->e[c->n];
  memset(e, 0, sizeof *e);
  e->d = *d;
  e->dir = dir;
  e->tf32 = s->allow_tf32;
  e->align = align;
  reid_status st = entry_init(s, e);
  if (st == REID_OK) st = choose_algorithm(s, e, a, b, out);
  if (st != REID_OK) {
    entry_destroy(e);
    return st;
  }
  c->n++;
  *found = e;
  return REID_OK;
}

static reid_status check_conv_args(const char *op, const reid_conv2d_desc *d, const void *x,
                                   const void *w, const void *out) {
  if (!d || !x || !w || !out) return reid_fail(REID_EINVAL, "%s: NULL argument", op);
  if (d->n < 1 || d->c_in < 1 || d->c_out < 1 || d->k < 1 || d->stride < 1 || d->pad < 0 ||
      d->h_out != (d->h_in + 2 * d->pad - d->k) / d->stride + 1 ||
      d->w_out != (d->w_in + 2 * d->pad - d->k) / d->stride + 1 || d->h_out < 1 || d->w_out < 1)
    return reid_fail(REID_EINVAL, "%s: descriptor not initialised (use reid_conv2d_desc_init)", op);
  if (d->groups > 1 && (d->c_in % d->groups || d->c_out % d->groups))
    return reid_fail(REID_EINVAL, "%s: %d groups do not divide %d input and %d output channels", op,
                     d->groups, d->c_in, d->c_out);
  return REID_OK;
}

static reid_status cuda_conv2d_forward(reid_backend *be, const reid_conv2d_desc *d, const float *x,
                                       const float *w, const float *bias, float *y) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(check_conv_args("conv2d_forward", d, x, w, y));
  conv_entry *e;
  REID_TRY(get_entry(s, d, DIR_FWD, x, w, y, &e));
  void *ws = NULL;
  if (e->ws) REID_TRY(cuda_workspace(s, e->ws, &ws));
  const float one = 1.0f, zero = 0.0f;
  CUDNN_CHECK(cudnnConvolutionForward(s->cudnn, &one, e->x, x, e->w, w, e->conv,
                                      (cudnnConvolutionFwdAlgo_t)e->algo, ws, e->ws, &zero, e->y,
                                      y));
  if (bias) CUDNN_CHECK(cudnnAddTensor(s->cudnn, &one, e->bias, bias, &one, e->y, y));
  return REID_OK;
}

static reid_status cuda_conv2d_backward(reid_backend *be, const reid_conv2d_desc *d, const float *x,
                                        const float *w, const float *dy, float *dx, float *dw,
                                        float *dbias) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(check_conv_args("conv2d_backward", d, x, w, dy));
  const float one = 1.0f, zero = 0.0f;
  conv_entry *e;
  void *ws = NULL;
  if (dx) {
    REID_TRY(get_entry(s, d, DIR_BWD_DATA, dy, w, dx, &e));
    if (e->ws) REID_TRY(cuda_workspace(s, e->ws, &ws));
    CUDNN_CHECK(cudnnConvolutionBackwardData(s->cudnn, &one, e->w, w, e->y, dy, e->conv,
                                             (cudnnConvolutionBwdDataAlgo_t)e->algo, ws, e->ws,
                                             &zero, e->x, dx));
  }
  if (dw) {
    REID_TRY(get_entry(s, d, DIR_BWD_FILTER, x, dy, dw, &e));
    if (e->ws) REID_TRY(cuda_workspace(s, e->ws, &ws));
    CUDNN_CHECK(cudnnConvolutionBackwardFilter(s->cudnn, &one, e->x, x, e->y, dy, e->conv,
                                               (cudnnConvolutionBwdFilterAlgo_t)e->algo, ws, e->ws,
                                               &zero, e->w, dw));
  }
  if (dbias) REID_TRY(cuda_channel_sum(s, d->n, d->c_out, d->h_out * d->w_out, dy, dbias));
  return REID_OK;
}

void cuda_register_conv_ops(reid_backend_ops *ops) {
  ops->conv2d_forward = cuda_conv2d_forward;
  ops->conv2d_backward = cuda_conv2d_backward;
}
