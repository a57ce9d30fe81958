/* A CPU fake of the cuDNN 9 legacy convolution API: the subset the CUDA
 * backend calls (kernels/cuda/cuda_conv.c, cuda_engine.c, cuda_engine_plan.c).
 *
 * Emulated: handles (cudnnCreate/Destroy/SetStream), 4-d tensor descriptors
 * (NCHW / NHWC; FLOAT, HALF, BFLOAT16 data), 4-d filter descriptors (NCHW =
 * KCRS, NHWC = KRSC), 2-d convolution descriptors (padding, stride, dilation,
 * cross-correlation or convolution, compute type, math type), activation
 * descriptors (RELU, IDENTITY), channel groups (cudnnSetConvolutionGroupCount:
 * the filter holds c / groups input channels; group g reads input channels
 * [g C/G, (g+1) C/G) and writes output channels [g K/G, (g+1) K/G)),
 * cudnnGetConvolution2dForwardOutputDim,
 * forward / backward-data / backward-filter convolutions, the fused
 * convolution + z + bias + activation, cudnnAddTensor, the workspace-size
 * queries and cudnnFind*AlgorithmEx.
 *
 * Semantics: every data pointer must be emulated device memory covering its
 * whole tensor; alpha / beta are host floats read at call time; beta = 0 (and
 * alpha2 = 0 in the fused call) never reads the output (z), so NaN there is
 * harmless. Elements are read through the descriptor into canonical float
 * NCHW / KCRS arrays, the convolutions run as im2col + a blocked float GEMM
 * (split across a few threads; the result does not depend on the split), and
 * results are rounded once to the output type.
 * FLOAT data with a math type other than CUDNN_FMA_MATH rounds the operands
 * to TF32 (10 mantissa bits, round to nearest, ties away: cvt.rna.tf32.f32),
 * as cuDNN does on Ampere / Hopper. The work runs through emu::enqueue on the
 * handle's stream, with every argument copied by value, so it is recorded
 * while the stream is captured into a CUDA graph.
 *
 * Algorithms: FWD IMPLICIT_GEMM / IMPLICIT_PRECOMP_GEMM / GEMM, BWD_DATA
 * ALGO_0 / ALGO_1, BWD_FILTER ALGO_0 / ALGO_1 / ALGO_3 are emulated (all with
 * the same math); FFT, Winograd and DIRECT are CUDNN_STATUS_NOT_SUPPORTED.
 * Workspace sizes and Find timings are made up but deterministic. Find
 * overwrites its output buffer with NaN (the real one leaves the result of
 * whichever candidate ran last there) and is refused during stream capture.
 *
 * int8 (INT8_EXT_CONFIG of cudnnConvolutionForward): x and w INT8 in NHWC
 * with feature maps a multiple of 4, an INT32 compute type, y FLOAT, algorithm
 * IMPLICIT_PRECOMP_GEMM, one group; the products are summed exactly in int32
 * and y = alpha * sum + beta * y in float. Padding reads 0.
 *
 * Not emulated (CUDNN_STATUS_NOT_SUPPORTED with a diagnostic): DOUBLE data,
 * INT8 anywhere else (int8 y, grouped, the backward directions, the fused
 * call, vectorised INT8x4 / INT8x32 types), TRUE_HALF_CONFIG (HALF compute
 * type), N-d / strided-by-hand descriptors, other activation modes, the
 * backend (graph) API, and any function the project does not call (those are
 * simply not defined). */
#include <cudnn.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "emu.h"

/* ---- opaque structs behind the descriptor pointers ---- */

struct cudnnContext {
  cudaStream_t stream; /* NULL: the legacy default stream */
};

struct cudnnTensorStruct {
  int set;
  cudnnDataType_t dt;
  cudnnTensorFormat_t fmt;
  int n, c, h, w;
};

struct cudnnFilterStruct {
  int set;
  cudnnDataType_t dt;
  cudnnTensorFormat_t fmt;
  int k, c, h, w;
};

struct cudnnConvolutionStruct {
  int set;
  int pad_h, pad_w, u, v, dil_h, dil_w;
  int groups; /* 1 unless cudnnSetConvolutionGroupCount said otherwise */
  cudnnConvolutionMode_t mode;
  cudnnDataType_t compute;
  cudnnMathType_t math;
};

struct cudnnActivationStruct {
  int set;
  cudnnActivationMode_t mode;
  cudnnNanPropagation_t nan;
  double coef;
};

namespace {

/* ---- errors ---- */

__attribute__((format(printf, 3, 4))) cudnnStatus_t fail(cudnnStatus_t st, const char *call,
                                                         const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  emu::diagnose("%s: %s -> %s", call, msg, cudnnGetErrorString(st));
  return st;
}

#define TRY(x)                                                                                     \
  do {                                                                                             \
    cudnnStatus_t st_ = (x);                                                                       \
    if (st_ != CUDNN_STATUS_SUCCESS) return st_;                                                   \
  } while (0)

/* ---- data types ---- */

const char *dt_name(cudnnDataType_t dt) {
  switch (dt) {
  case CUDNN_DATA_FLOAT: return "FLOAT";
  case CUDNN_DATA_DOUBLE: return "DOUBLE";
  case CUDNN_DATA_HALF: return "HALF";
  case CUDNN_DATA_BFLOAT16: return "BFLOAT16";
  case CUDNN_DATA_INT8: return "INT8";
  case CUDNN_DATA_INT32: return "INT32";
  case CUDNN_DATA_UINT8: return "UINT8";
  case CUDNN_DATA_INT64: return "INT64";
  default: return "?";
  }
}

/* Bytes per element of the types a descriptor may hold; 0: refused at Set. */
size_t dt_size(cudnnDataType_t dt) {
  switch (dt) {
  case CUDNN_DATA_FLOAT:
  case CUDNN_DATA_INT32: return 4;
  case CUDNN_DATA_DOUBLE:
  case CUDNN_DATA_INT64: return 8;
  case CUDNN_DATA_HALF:
  case CUDNN_DATA_BFLOAT16: return 2;
  case CUDNN_DATA_INT8:
  case CUDNN_DATA_UINT8: return 1;
  default: return 0;
  }
}

/* The storage types the math is emulated for. */
bool dt_emulated(cudnnDataType_t dt) {
  return dt == CUDNN_DATA_FLOAT || dt == CUDNN_DATA_HALF || dt == CUDNN_DATA_BFLOAT16;
}

inline float load(cudnnDataType_t dt, const void *p, size_t i) {
  if (dt == CUDNN_DATA_FLOAT) return ((const float *)p)[i];
  if (dt == CUDNN_DATA_HALF) return __half2float(((const __half *)p)[i]);
  return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
}

/* Rounds to nearest even into the storage type. */
inline void store(cudnnDataType_t dt, void *p, size_t i, float v) {
  if (dt == CUDNN_DATA_FLOAT)
    ((float *)p)[i] = v;
  else if (dt == CUDNN_DATA_HALF)
    ((__half *)p)[i] = __float2half_rn(v);
  else
    ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
}

/* ---- descriptors by value ---- */

/* A 4-d array [n][c][h][w] with element strides (a filter: n = k). */
struct tens {
  cudnnDataType_t dt;
  int n, c, h, w;
  long long ns, cs, hs, ws;
};

size_t tens_count(const tens &t) {
  return (size_t)t.n * t.c * t.h * t.w;
}

/* Bytes from the first to one past the last element. */
size_t tens_bytes(const tens &t) {
  long long last = (t.n - 1) * t.ns + (t.c - 1) * t.cs + (t.h - 1) * t.hs + (t.w - 1) * t.ws;
  return (size_t)(last + 1) * dt_size(t.dt);
}

tens make_tens(cudnnDataType_t dt, cudnnTensorFormat_t fmt, int n, int c, int h, int w) {
  tens t = {dt, n, c, h, w, 0, 0, 0, 0};
  if (fmt == CUDNN_TENSOR_NHWC) { /* [n][h][w][c] */
    t.cs = 1, t.ws = c, t.hs = (long long)w * c, t.ns = (long long)h * w * c;
  } else { /* [n][c][h][w] */
    t.ws = 1, t.hs = w, t.cs = (long long)h * w, t.ns = (long long)c * h * w;
  }
  return t;
}

struct conv {
  int pad_h, pad_w, u, v, dil_h, dil_w;
  int flip; /* CUDNN_CONVOLUTION: the filter is flipped spatially */
  int groups;
  cudnnDataType_t compute;
  cudnnMathType_t math;
};

cudnnStatus_t get_tensor(const char *call, const char *what, cudnnTensorDescriptor_t d, tens *t) {
  if (!d) return fail(CUDNN_STATUS_BAD_PARAM, call, "%s is NULL", what);
  if (!d->set) return fail(CUDNN_STATUS_BAD_PARAM, call, "%s was never set", what);
  *t = make_tens(d->dt, d->fmt, d->n, d->c, d->h, d->w);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t get_filter(const char *call, cudnnFilterDescriptor_t d, tens *t) {
  if (!d) return fail(CUDNN_STATUS_BAD_PARAM, call, "wDesc is NULL");
  if (!d->set) return fail(CUDNN_STATUS_BAD_PARAM, call, "wDesc was never set");
  *t = make_tens(d->dt, d->fmt, d->k, d->c, d->h, d->w);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t get_conv(const char *call, cudnnConvolutionDescriptor_t d, conv *cv) {
  if (!d) return fail(CUDNN_STATUS_BAD_PARAM, call, "convDesc is NULL");
  if (!d->set) return fail(CUDNN_STATUS_BAD_PARAM, call, "convDesc was never set");
  *cv = conv{d->pad_h,  d->pad_w,   d->u,   d->v, d->dil_h, d->dil_w, d->mode == CUDNN_CONVOLUTION,
             d->groups, d->compute, d->math};
  return CUDNN_STATUS_SUCCESS;
}

/* ---- pointers and scalars ---- */

cudnnStatus_t need_device(const char *call, const char *what, const void *p, size_t bytes) {
  const emu::memory m = emu::lookup(p, bytes);
  if (m == emu::memory::device) return CUDNN_STATUS_SUCCESS;
  return fail(CUDNN_STATUS_BAD_PARAM, call, "%s = %p is not device memory holding %zu bytes (%s)",
              what, p, bytes,
              !p                         ? "NULL"
              : m == emu::memory::pinned ? "pinned host memory"
                                         : "host memory, or past the end of its allocation");
}

/* alpha / beta: host floats for FLOAT / HALF / BFLOAT16 data, read now. */
cudnnStatus_t read_scalar(const char *call, const char *what, const void *p, float *out) {
  if (!p) return fail(CUDNN_STATUS_BAD_PARAM, call, "%s is NULL", what);
  if (emu::lookup(p, sizeof(float)) == emu::memory::device)
    return fail(CUDNN_STATUS_BAD_PARAM, call,
                "%s = %p is device memory; cuDNN reads scaling factors from the host", what, p);
  memcpy(out, p, sizeof(float));
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t run(const char *call, cudnnHandle_t h, std::function<void()> work) {
  const cudaError_t e = emu::enqueue(h->stream, std::move(work));
  if (e == cudaSuccess) return CUDNN_STATUS_SUCCESS;
  return fail(CUDNN_STATUS_EXECUTION_FAILED_CUDART, call, "the stream refused the work: %s",
              cudaGetErrorName(e));
}

cudnnStatus_t check_handle(const char *call, cudnnHandle_t h) {
  if (!h) return fail(CUDNN_STATUS_BAD_PARAM, call, "handle is NULL");
  return CUDNN_STATUS_SUCCESS;
}

/* ---- the convolution problem ---- */

enum dir { FWD, BWD_DATA, BWD_FILTER };

/* x [N][G C][H][W] * w [K][C][R][S] -> y [N][K][P][Q] in G channel groups:
 * C is the input channels of one group, K all output channels (K / G a group) */
struct geom {
  int N, C, H, W, K, R, S, P, Q;
  int u, v, ph, pw, dh, dw;
  int G;
};

struct problem {
  tens x, w, y; /* x / y: dx / dy in the backward directions */
  conv cv;
  geom g;
  int tf32; /* FLOAT data, math type other than FMA */
  int int8; /* INT8_EXT_CONFIG: x, w INT8 (NHWC), INT32 compute, y FLOAT (forward only) */
};

int out_dim(int in, int pad, int filt, int dil, int stride) {
  return 1 + (in + 2 * pad - ((filt - 1) * dil + 1)) / stride;
}

/* Validates x / w / conv / y of one convolution as cudnnConvolutionForward
 * documents it (the backward directions share the rules). */
cudnnStatus_t get_problem(const char *call, cudnnTensorDescriptor_t xd, const char *xname,
                          cudnnFilterDescriptor_t wd, cudnnConvolutionDescriptor_t cd,
                          cudnnTensorDescriptor_t yd, const char *yname, problem *p) {
  TRY(get_tensor(call, xname, xd, &p->x));
  TRY(get_filter(call, wd, &p->w));
  TRY(get_conv(call, cd, &p->cv));
  TRY(get_tensor(call, yname, yd, &p->y));
  const tens &x = p->x, &w = p->w, &y = p->y;
  const conv &cv = p->cv;
  p->int8 = x.dt == CUDNN_DATA_INT8 || w.dt == CUDNN_DATA_INT8;
  if (p->int8) {
    if (x.dt != CUDNN_DATA_INT8 || w.dt != CUDNN_DATA_INT8)
      return fail(CUDNN_STATUS_NOT_SUPPORTED, call, "%s %s with w %s: int8 needs both INT8", xname,
                  dt_name(x.dt), dt_name(w.dt));
    if (y.dt != CUDNN_DATA_FLOAT)
      return fail(CUDNN_STATUS_NOT_SUPPORTED, call,
                  "INT8 %s with %s %s: only INT8_EXT_CONFIG (FLOAT output) is emulated", xname,
                  yname, dt_name(y.dt));
    if (cv.compute != CUDNN_DATA_INT32)
      return fail(CUDNN_STATUS_BAD_PARAM, call,
                  "INT8 data needs a CUDNN_DATA_INT32 compute type, not %s", dt_name(cv.compute));
    if (x.cs != 1 || w.cs != 1)
      return fail(CUDNN_STATUS_NOT_SUPPORTED, call, "INT8 %s and w must be NHWC", xname);
    if (x.c % 4 || w.n % 4)
      return fail(CUDNN_STATUS_NOT_SUPPORTED, call,
                  "INT8 needs input and output feature maps in multiples of 4 (%d -> %d)", x.c,
                  w.n);
    if (cv.groups != 1)
      return fail(CUDNN_STATUS_NOT_SUPPORTED, call, "INT8 with %d groups is not emulated",
                  cv.groups);
  } else if (x.dt != w.dt || x.dt != y.dt)
    return fail(CUDNN_STATUS_BAD_PARAM, call, "non-matching data types: %s %s, w %s, %s %s", xname,
                dt_name(x.dt), dt_name(w.dt), yname, dt_name(y.dt));
  if (!p->int8 && !dt_emulated(x.dt))
    return fail(CUDNN_STATUS_NOT_SUPPORTED, call, "%s data is not emulated", dt_name(x.dt));
  if (!p->int8 && cv.compute != CUDNN_DATA_FLOAT)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, call,
                "%s data with a %s compute type is not a supported (emulated) configuration; use "
                "CUDNN_DATA_FLOAT",
                dt_name(x.dt), dt_name(cv.compute));
  if (x.c != w.c * cv.groups)
    return fail(CUDNN_STATUS_BAD_PARAM, call,
                "%s has %d feature maps, the filter expects %d (%d per group x %d groups)", xname,
                x.c, w.c * cv.groups, w.c, cv.groups);
  if (w.n % cv.groups)
    return fail(CUDNN_STATUS_BAD_PARAM, call, "the filter's %d outputs do not split into %d groups",
                w.n, cv.groups);
  if ((w.h - 1) * cv.dil_h + 1 > x.h + 2 * cv.pad_h ||
      (w.w - 1) * cv.dil_w + 1 > x.w + 2 * cv.pad_w)
    return fail(CUDNN_STATUS_BAD_PARAM, call,
                "the dilated %dx%d filter is larger than the padded %dx%d input", w.h, w.w, x.h,
                x.w);
  const int P = out_dim(x.h, cv.pad_h, w.h, cv.dil_h, cv.u);
  const int Q = out_dim(x.w, cv.pad_w, w.w, cv.dil_w, cv.v);
  if (y.n != x.n || y.c != w.n)
    return fail(CUDNN_STATUS_BAD_PARAM, call, "%s is %dx%dx%dx%d, expected %dx%dx%dx%d", yname, y.n,
                y.c, y.h, y.w, x.n, w.n, P, Q);
  if (y.h != P || y.w != Q) /* documented as NOT_SUPPORTED, not BAD_PARAM */
    return fail(CUDNN_STATUS_NOT_SUPPORTED, call,
                "%s spatial size %dx%d differs from the output size %dx%d of the convolution",
                yname, y.h, y.w, P, Q);
  p->g = geom{x.n, w.c,  x.h,  x.w,      w.n,      w.h,      w.w,      P,
              Q,   cv.u, cv.v, cv.pad_h, cv.pad_w, cv.dil_h, cv.dil_w, cv.groups};
  p->tf32 = x.dt == CUDNN_DATA_FLOAT && cv.math != CUDNN_FMA_MATH;
  return CUDNN_STATUS_SUCCESS;
}

double macs(const geom &g) {
  return (double)g.N * g.K * g.P * g.Q * g.C * g.R * g.S;
}

/* ---- algorithms: which are emulated, their workspace, made-up speed ---- */

struct algo_info {
  const char *name;
  int emulated;
  cudnnDeterminism_t det;
};

const algo_info FWD_ALGOS[CUDNN_CONVOLUTION_FWD_ALGO_COUNT] = {
    {"FWD_ALGO_IMPLICIT_GEMM", 1, CUDNN_DETERMINISTIC},
    {"FWD_ALGO_IMPLICIT_PRECOMP_GEMM", 1, CUDNN_DETERMINISTIC},
    {"FWD_ALGO_GEMM", 1, CUDNN_DETERMINISTIC},
    {"FWD_ALGO_DIRECT", 0, CUDNN_DETERMINISTIC},
    {"FWD_ALGO_FFT", 0, CUDNN_DETERMINISTIC},
    {"FWD_ALGO_FFT_TILING", 0, CUDNN_DETERMINISTIC},
    {"FWD_ALGO_WINOGRAD", 0, CUDNN_DETERMINISTIC},
    {"FWD_ALGO_WINOGRAD_NONFUSED", 0, CUDNN_DETERMINISTIC},
};
const algo_info BWD_DATA_ALGOS[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT] = {
    {"BWD_DATA_ALGO_0", 1, CUDNN_NON_DETERMINISTIC},
    {"BWD_DATA_ALGO_1", 1, CUDNN_DETERMINISTIC},
    {"BWD_DATA_ALGO_FFT", 0, CUDNN_DETERMINISTIC},
    {"BWD_DATA_ALGO_FFT_TILING", 0, CUDNN_DETERMINISTIC},
    {"BWD_DATA_ALGO_WINOGRAD", 0, CUDNN_DETERMINISTIC},
    {"BWD_DATA_ALGO_WINOGRAD_NONFUSED", 0, CUDNN_DETERMINISTIC},
};
const algo_info BWD_FILTER_ALGOS[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT] = {
    {"BWD_FILTER_ALGO_0", 1, CUDNN_NON_DETERMINISTIC},
    {"BWD_FILTER_ALGO_1", 1, CUDNN_DETERMINISTIC},
    {"BWD_FILTER_ALGO_FFT", 0, CUDNN_DETERMINISTIC},
    {"BWD_FILTER_ALGO_3", 1, CUDNN_NON_DETERMINISTIC},
    {"BWD_FILTER_ALGO_WINOGRAD", 0, CUDNN_DETERMINISTIC},
    {"BWD_FILTER_ALGO_WINOGRAD_NONFUSED", 0, CUDNN_DETERMINISTIC},
    {"BWD_FILTER_ALGO_FFT_TILING", 0, CUDNN_DETERMINISTIC},
};

int algo_count(dir d) {
  return d == FWD        ? (int)CUDNN_CONVOLUTION_FWD_ALGO_COUNT
         : d == BWD_DATA ? (int)CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT
                         : (int)CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
}

const algo_info &algo(dir d, int a) {
  return d == FWD ? FWD_ALGOS[a] : d == BWD_DATA ? BWD_DATA_ALGOS[a] : BWD_FILTER_ALGOS[a];
}

size_t round256(size_t b) {
  return (b + 255) / 256 * 256;
}

/* Workspace of an emulated algorithm: 0 for the implicit ones, index tables
 * or one image's im2col buffer (fp32) for the others. */
size_t workspace_of(dir d, int a, const geom &g) {
  const size_t crs = (size_t)g.C * g.R * g.S, kcrs = crs * g.K;
  if (d == FWD) {
    if (a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) return round256(1024 + 8 * crs);
    if (a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM) return round256(4 * crs * g.P * g.Q);
    return 0;
  }
  if (d == BWD_DATA) return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1 ? round256(1024 + 4 * kcrs) : 0;
  if (a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1) return round256(1024 + 4 * kcrs);
  if (a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3) return round256(1024 + 8 * kcrs);
  return 0;
}

/* Made-up milliseconds: 1 GMAC per ms scaled per algorithm. GEMM wins on
 * 1x1 stride-1 convolutions, PRECOMP elsewhere. */
float fake_time(dir d, int a, const geom &g) {
  double f = 1.0;
  const int pointwise = g.R == 1 && g.S == 1 && g.u == 1 && g.v == 1;
  if (d == FWD)
    f = a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ? 1.0
        : a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM                ? (pointwise ? 0.9 : 1.4)
                                                              : 1.15;
  else if (d == BWD_DATA)
    f = a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1 ? 1.0 : 1.1;
  else
    f = a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1   ? 1.0
        : a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3 ? 1.1
                                                   : 1.2;
  return (float)(macs(g) * 1e-9 * f + 0.005);
}

/* Workspace the algorithm needs, or an error for one out of range or not
 * emulated. */
cudnnStatus_t algo_workspace(const char *call, dir d, int a, const geom &g, size_t *bytes) {
  if (a < 0 || a >= algo_count(d))
    return fail(CUDNN_STATUS_BAD_PARAM, call, "algorithm %d is out of range", a);
  if (!algo(d, a).emulated)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, call, "CUDNN_CONVOLUTION_%s is not emulated",
                algo(d, a).name);
  *bytes = workspace_of(d, a, g);
  return CUDNN_STATUS_SUCCESS;
}

/* The workspace argument of a compute call: large enough for the algorithm,
 * device memory as large as claimed. */
cudnnStatus_t check_workspace(const char *call, dir d, int a, const geom &g, const void *ws,
                              size_t ws_bytes, size_t *need) {
  TRY(algo_workspace(call, d, a, g, need));
  if (ws_bytes < *need)
    return fail(CUDNN_STATUS_BAD_PARAM, call,
                "workSpaceSizeInBytes %zu is less than the %zu bytes CUDNN_CONVOLUTION_%s needs",
                ws_bytes, *need, algo(d, a).name);
  if (ws_bytes > 0 && (ws || *need)) TRY(need_device(call, "workSpace", ws, ws_bytes));
  return CUDNN_STATUS_SUCCESS;
}

/* ---- canonical arrays ---- */

/* Reads t (at p) into out [n][c][h][w] as floats; flip mirrors h and w (a
 * CUDNN_CONVOLUTION filter), tf32 rounds the operands. */
inline float to_float(float v) {
  return v;
}
inline float to_float(__half v) {
  return __half2float(v);
}
inline float to_float(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

/* One row of w elements at a time, the element type known at compile time. */
template <typename T> void gather_as(const tens &t, const T *p, float *out, int flip, int tf32) {
  size_t i = 0;
  for (int n = 0; n < t.n; n++)
    for (int c = 0; c < t.c; c++)
      for (int h = 0; h < t.h; h++) {
        const T *row = p + n * t.ns + c * t.cs + (flip ? t.h - 1 - h : h) * t.hs;
        for (int w = 0; w < t.w; w++) {
          const float v = to_float(row[(flip ? t.w - 1 - w : w) * t.ws]);
          out[i++] = tf32 ? emu::tf32_round(v) : v;
        }
      }
}

void gather(const tens &t, const void *p, float *out, int flip, int tf32) {
  if (t.dt == CUDNN_DATA_FLOAT)
    gather_as(t, (const float *)p, out, flip, tf32);
  else if (t.dt == CUDNN_DATA_HALF)
    gather_as(t, (const __half *)p, out, flip, tf32);
  else
    gather_as(t, (const __nv_bfloat16 *)p, out, flip, tf32);
}

/* t = alpha * acc + beta * t, acc [n][c][h][w]; beta = 0 does not read t. */
void scatter(const tens &t, void *p, const float *acc, float alpha, float beta, int flip) {
  size_t i = 0;
  for (int n = 0; n < t.n; n++)
    for (int c = 0; c < t.c; c++)
      for (int h = 0; h < t.h; h++)
        for (int w = 0; w < t.w; w++) {
          const int hh = flip ? t.h - 1 - h : h, ww = flip ? t.w - 1 - w : w;
          const size_t off = n * t.ns + c * t.cs + hh * t.hs + ww * t.ws;
          float v = alpha * acc[i++];
          if (beta != 0.0f) v += beta * load(t.dt, p, off);
          store(t.dt, p, off, v);
        }
}

void fill_nan(const tens &t, void *p) {
  for (size_t i = 0; i < tens_bytes(t) / dt_size(t.dt); i++) store(t.dt, p, i, NAN);
}

/* ---- the math on canonical float arrays ---- */

/* Runs fn(lo, hi) over [0, n) split into contiguous chunks on a few threads
 * (each chunk writes its own outputs, so the result does not depend on the
 * split). */
template <class F> void parallel_chunks(int n, double work, F fn) {
  int t = (int)std::thread::hardware_concurrency();
  t = std::min(std::max(t, 1), 8);
  if (work < 1e6) t = 1;
  t = std::min(t, n);
  if (t <= 1) {
    fn(0, n);
    return;
  }
  std::vector<std::thread> pool;
  for (int k = 1; k < t; k++) pool.emplace_back([=, &fn] { fn(n * k / t, n * (k + 1) / t); });
  fn(0, n / t);
  for (auto &th : pool) th.join();
}

const int GEMM_KB = 256; /* reduction block: a packed B block of 8 columns is 8 KiB */

/* B [k][n] (or B^T [n][k] when trans) -> panels [n / 8][k][8], zero-padded. */
void pack_b(int k, int n, const float *b, int ldb, int trans, float *out) {
  const int np = (n + 7) / 8;
  for (int jp = 0; jp < np; jp++) {
    float *o = out + (size_t)jp * k * 8;
    const int cols = std::min(8, n - jp * 8);
    if (cols < 8) memset(o, 0, sizeof(float) * 8 * k);
    if (trans) {
      for (int j = 0; j < cols; j++) {
        const float *row = b + (size_t)(jp * 8 + j) * ldb;
        for (int l = 0; l < k; l++) o[(size_t)l * 8 + j] = row[l];
      }
    } else if (cols == 8) {
      for (int l = 0; l < k; l++) memcpy(o + (size_t)l * 8, b + (size_t)l * ldb + jp * 8, 32);
    } else {
      for (int l = 0; l < k; l++)
        for (int j = 0; j < cols; j++) o[(size_t)l * 8 + j] = b[(size_t)l * ldb + jp * 8 + j];
    }
  }
}

typedef float v4 __attribute__((vector_size(16))); /* one SSE / NEON register */

/* c[0..rows)[0..cols) += the 4 x 8 tile a [rows][kl] * packed b [kl][8]
 * (8 accumulator registers: 4 rows x 2 halves) */
inline void micro_tile(int rows, int cols, int kl, const float *a, int lda, const float *bp,
                       float *c, int ldc) {
  const float *a0 = a, *a1 = rows > 1 ? a + lda : a, *a2 = rows > 2 ? a + 2 * (size_t)lda : a,
              *a3 = rows > 3 ? a + 3 * (size_t)lda : a;
  v4 c0 = {0, 0, 0, 0}, d0 = c0, c1 = c0, d1 = c0, c2 = c0, d2 = c0, c3 = c0, d3 = c0;
  for (int l = 0; l < kl; l++) {
    v4 b0, b1;
    memcpy(&b0, bp + (size_t)l * 8, sizeof b0);
    memcpy(&b1, bp + (size_t)l * 8 + 4, sizeof b1);
    c0 += a0[l] * b0, d0 += a0[l] * b1;
    c1 += a1[l] * b0, d1 += a1[l] * b1;
    c2 += a2[l] * b0, d2 += a2[l] * b1;
    c3 += a3[l] * b0, d3 += a3[l] * b1;
  }
  const v4 acc[8] = {c0, d0, c1, d1, c2, d2, c3, d3};
  for (int r = 0; r < rows; r++) {
    float *cr = c + (size_t)r * ldc;
    for (int j = 0; j < cols; j++) cr[j] += acc[2 * r + j / 4][j % 4];
  }
}

/* Row-major C [m][n] = A [m][k] B [k][n] (B^T given as [n][k] when trans_b),
 * or C += A B with accumulate. Float sums, blocked over k; rows of C are
 * split across threads. */
void sgemm_rm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, int trans_b,
              float *c, int ldc, int accumulate) {
  if (!accumulate)
    for (int i = 0; i < m; i++) memset(c + (size_t)i * ldc, 0, sizeof(float) * n);
  if (k == 0 || m == 0 || n == 0) return;
  const int np = (n + 7) / 8;
  std::vector<float> packed((size_t)np * k * 8);
  pack_b(k, n, b, ldb, trans_b, packed.data());
  const float *bp = packed.data();
  parallel_chunks((m + 3) / 4, (double)m * n * k, [&](int lo, int hi) {
    for (int kb = 0; kb < k; kb += GEMM_KB) {
      const int kl = std::min(GEMM_KB, k - kb);
      for (int jp = 0; jp < np; jp++) {
        const int cols = std::min(8, n - jp * 8);
        const float *panel = bp + ((size_t)jp * k + kb) * 8;
        for (int ib = lo; ib < hi; ib++) {
          const int i0 = ib * 4, rows = std::min(4, m - i0);
          micro_tile(rows, cols, kl, a + (size_t)i0 * lda + kb, lda, panel,
                     c + (size_t)i0 * ldc + jp * 8, ldc);
        }
      }
    }
  });
}

/* The input column q*v - pw + s*dw of output column q, or -1 when padding. */
inline int in_col(const geom &g, int q, int s) {
  const int iw = q * g.v - g.pw + s * g.dw;
  return iw >= 0 && iw < g.W ? iw : -1;
}

/* col [c][r][s][p][q] = x [c][p*u - ph + r*dh][q*v - pw + s*dw] (0 in the padding), one image */
void im2col(const geom &g, const float *x, float *col) {
  const size_t PQ = (size_t)g.P * g.Q;
  for (int c = 0; c < g.C; c++)
    for (int r = 0; r < g.R; r++)
      for (int s = 0; s < g.S; s++) {
        float *out = col + (((size_t)c * g.R + r) * g.S + s) * PQ;
        for (int p = 0; p < g.P; p++) {
          const int ih = p * g.u - g.ph + r * g.dh;
          float *o = out + (size_t)p * g.Q;
          if (ih < 0 || ih >= g.H) {
            memset(o, 0, sizeof(float) * g.Q);
            continue;
          }
          const float *xr = x + ((size_t)c * g.H + ih) * g.W;
          for (int q = 0; q < g.Q; q++) {
            const int iw = in_col(g, q, s);
            o[q] = iw >= 0 ? xr[iw] : 0.0f;
          }
        }
      }
}

/* dx [c][ih][iw] = sum of the col entries that im2col took from there, one image */
void col2im(const geom &g, const float *col, float *dx) {
  const size_t PQ = (size_t)g.P * g.Q;
  memset(dx, 0, sizeof(float) * g.C * g.H * g.W);
  for (int c = 0; c < g.C; c++)
    for (int r = 0; r < g.R; r++)
      for (int s = 0; s < g.S; s++) {
        const float *in = col + (((size_t)c * g.R + r) * g.S + s) * PQ;
        for (int p = 0; p < g.P; p++) {
          const int ih = p * g.u - g.ph + r * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          float *dr = dx + ((size_t)c * g.H + ih) * g.W;
          const float *i = in + (size_t)p * g.Q;
          for (int q = 0; q < g.Q; q++) {
            const int iw = in_col(g, q, s);
            if (iw >= 0) dr[iw] += i[q];
          }
        }
      }
}

/* A 1x1 stride-1 unpadded convolution needs no im2col: col = x. */
int pointwise(const geom &g) {
  return g.R == 1 && g.S == 1 && g.u == 1 && g.v == 1 && g.ph == 0 && g.pw == 0;
}

/* Offsets of group gi within one image of x / y and within w (groups are
 * contiguous channel ranges in the canonical NCHW / KCRS arrays). */
inline size_t group_x(const geom &g, int gi) {
  return (size_t)gi * g.C * g.H * g.W;
}
inline size_t group_y(const geom &g, int gi) {
  return (size_t)gi * (g.K / g.G) * g.P * g.Q;
}
inline size_t group_w(const geom &g, int gi) {
  return (size_t)gi * (g.K / g.G) * g.C * g.R * g.S;
}

/* y [n][k][p][q] = sum over c, r, s of x [n][c][p*u - ph + r*dh][q*v - pw + s*dw] w [k][c][r][s]
 * (c within k's group): per image and group y_ng [K/G][PQ] = w_g [K/G][CRS] col [CRS][PQ] */
void conv_forward(const geom &g, const float *x, const float *w, float *y) {
  const int PQ = g.P * g.Q, CRS = g.C * g.R * g.S, KG = g.K / g.G;
  std::vector<float> col(pointwise(g) ? 0 : (size_t)CRS * PQ);
  for (int n = 0; n < g.N; n++)
    for (int gi = 0; gi < g.G; gi++) {
      const float *xn = x + (size_t)n * g.G * g.C * g.H * g.W + group_x(g, gi);
      if (!pointwise(g)) im2col(g, xn, col.data());
      sgemm_rm(KG, PQ, CRS, w + group_w(g, gi), CRS, pointwise(g) ? xn : col.data(), PQ, 0,
               y + (size_t)n * g.K * PQ + group_y(g, gi), PQ, 0);
    }
}

/* dx = the transpose of conv_forward applied to dy:
 * per image and group dcol [CRS][PQ] = w_g^T [CRS][K/G] dy_ng [K/G][PQ], then col2im */
void conv_backward_data(const geom &g, const float *dy, const float *w, float *dx) {
  const int PQ = g.P * g.Q, CRS = g.C * g.R * g.S, KG = g.K / g.G;
  std::vector<float> wt((size_t)CRS * g.K), col((size_t)CRS * PQ);
  for (int gi = 0; gi < g.G; gi++) /* wt_g [CRS][K/G], one after the other */
    for (int k = 0; k < KG; k++)
      for (int i = 0; i < CRS; i++)
        wt[group_w(g, gi) + (size_t)i * KG + k] = w[group_w(g, gi) + (size_t)k * CRS + i];
  for (int n = 0; n < g.N; n++)
    for (int gi = 0; gi < g.G; gi++) {
      float *dxn = dx + (size_t)n * g.G * g.C * g.H * g.W + group_x(g, gi);
      float *out = pointwise(g) ? dxn : col.data();
      sgemm_rm(CRS, PQ, KG, wt.data() + group_w(g, gi), KG,
               dy + (size_t)n * g.K * PQ + group_y(g, gi), PQ, 0, out, PQ, 0);
      if (!pointwise(g)) col2im(g, col.data(), dxn);
    }
}

/* dw [k][c][r][s] = sum over n, p, q of x [n][c][p*u - ph + r*dh][q*v - pw + s*dw] dy [n][k][p][q]
 * (c within k's group): dw_g [K/G][CRS] = sum over images of dy_ng [K/G][PQ] col^T [PQ][CRS] */
void conv_backward_filter(const geom &g, const float *x, const float *dy, float *dw) {
  const int PQ = g.P * g.Q, CRS = g.C * g.R * g.S, KG = g.K / g.G;
  std::vector<float> col(pointwise(g) ? 0 : (size_t)CRS * PQ);
  for (int n = 0; n < g.N; n++)
    for (int gi = 0; gi < g.G; gi++) {
      const float *xn = x + (size_t)n * g.G * g.C * g.H * g.W + group_x(g, gi);
      if (!pointwise(g)) im2col(g, xn, col.data());
      sgemm_rm(KG, CRS, PQ, dy + (size_t)n * g.K * PQ + group_y(g, gi), PQ,
               pointwise(g) ? xn : col.data(), PQ, 1, dw + group_w(g, gi), CRS, n > 0);
    }
}

/* INT8 x [N][H][W][C] (NHWC) * w [K][R][S][C] -> acc [N][K][P][Q], summed exactly in int32
 * (padding reads 0). Output channels are split across threads. */
void conv_forward_i8(const geom &g, const tens &xt, const int8_t *x, const tens &wt,
                     const int8_t *w, std::vector<int32_t> &acc) {
  const int PQ = g.P * g.Q, CRS = g.C * g.R * g.S;
  acc.assign((size_t)g.N * g.K * PQ, 0);
  std::vector<int16_t> wk((size_t)g.K * CRS); /* [k][c][r][s] */
  for (int k = 0; k < g.K; k++)
    for (int c = 0; c < g.C; c++)
      for (int r = 0; r < g.R; r++)
        for (int s = 0; s < g.S; s++)
          wk[(((size_t)k * g.C + c) * g.R + r) * g.S + s] =
              w[k * wt.ns + c * wt.cs + r * wt.hs + s * wt.ws];
  std::vector<int16_t> col((size_t)CRS * PQ); /* [c][r][s][p][q] */
  for (int n = 0; n < g.N; n++) {
    for (int c = 0; c < g.C; c++)
      for (int r = 0; r < g.R; r++)
        for (int s = 0; s < g.S; s++) {
          int16_t *o = col.data() + (((size_t)c * g.R + r) * g.S + s) * PQ;
          for (int p = 0; p < g.P; p++) {
            const int ih = p * g.u - g.ph + r * g.dh;
            for (int q = 0; q < g.Q; q++) {
              const int iw = in_col(g, q, s);
              o[(size_t)p * g.Q + q] = ih >= 0 && ih < g.H && iw >= 0
                                           ? x[n * xt.ns + c * xt.cs + ih * xt.hs + iw * xt.ws]
                                           : 0;
            }
          }
        }
    int32_t *yn = acc.data() + (size_t)n * g.K * PQ;
    parallel_chunks(g.K, (double)g.K * CRS * PQ, [&](int lo, int hi) {
      for (int k = lo; k < hi; k++) {
        int32_t *yr = yn + (size_t)k * PQ;
        for (int i = 0; i < CRS; i++) {
          const int32_t wv = wk[(size_t)k * CRS + i];
          if (!wv) continue;
          const int16_t *cr = col.data() + (size_t)i * PQ;
          for (int j = 0; j < PQ; j++) yr[j] += wv * cr[j];
        }
      }
    });
  }
}

/* Only IMPLICIT_PRECOMP_GEMM runs int8, and only forward. */
cudnnStatus_t int8_algo(const char *call, dir d, const problem &p, int a) {
  if (!p.int8) return CUDNN_STATUS_SUCCESS;
  if (d != FWD)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, call, "INT8 data runs forward convolutions only");
  if (a != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)
    return fail(
        CUDNN_STATUS_NOT_SUPPORTED, call,
        "INT8 data runs CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM only, not algorithm %d",
        a);
  return CUDNN_STATUS_SUCCESS;
}

/* ---- Find ---- */

template <class Perf>
void fill_perf(dir d, const problem &p, size_t ws_bytes, int requested, int *returned, Perf *perf) {
  std::vector<Perf> all;
  for (int a = 0; a < algo_count(d); a++) {
    Perf r;
    memset(&r, 0, sizeof r);
    r.algo = (decltype(r.algo))a;
    r.determinism = algo(d, a).det;
    r.mathType = p.cv.math;
    r.time = -1.0f;
    if (!algo(d, a).emulated ||
        (p.int8 && (d != FWD || a != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM))) {
      r.status = CUDNN_STATUS_NOT_SUPPORTED;
    } else {
      r.memory = workspace_of(d, a, p.g);
      r.status = r.memory <= ws_bytes ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_ALLOC_FAILED;
      if (r.status == CUDNN_STATUS_SUCCESS) r.time = fake_time(d, a, p.g);
    }
    all.push_back(r);
  }
  /* successes fastest first, then the failures in algorithm order */
  std::stable_sort(all.begin(), all.end(), [](const Perf &a, const Perf &b) {
    const int sa = a.status == CUDNN_STATUS_SUCCESS, sb = b.status == CUDNN_STATUS_SUCCESS;
    if (sa != sb) return sa > sb;
    return sa && a.time < b.time;
  });
  const int n = std::min(requested, (int)all.size());
  for (int i = 0; i < n; i++) perf[i] = all[i];
  *returned = n;
}

/* The common part of the three Find*Ex: refuse during capture, check the
 * arguments, fill perfResults, clobber the output (and the workspace the
 * candidates used) as the timing runs would. */
template <class Perf>
cudnnStatus_t find(const char *call, dir d, cudnnHandle_t h, const problem &p, const void *a,
                   const char *aname, const tens &at, const void *b, const char *bname,
                   const tens &bt, void *out, const char *outname, const tens &out_t, int requested,
                   int *returned, Perf *perf, void *ws, size_t ws_bytes) {
  if (emu::thread_capturing() || emu::capturing(h->stream)) {
    emu::refuse_during_capture(call);
    return fail(CUDNN_STATUS_EXECUTION_FAILED_CUDART, call,
                "it synchronises and allocates, which a stream capture does not allow");
  }
  if (requested < 1)
    return fail(CUDNN_STATUS_BAD_PARAM, call, "requestedAlgoCount %d < 1", requested);
  if (!returned || !perf)
    return fail(CUDNN_STATUS_BAD_PARAM, call, "returnedAlgoCount or perfResults is NULL");
  TRY(need_device(call, aname, a, tens_bytes(at)));
  TRY(need_device(call, bname, b, tens_bytes(bt)));
  TRY(need_device(call, outname, out, tens_bytes(out_t)));
  if (ws_bytes > 0) TRY(need_device(call, "workSpace", ws, ws_bytes));
  fill_perf(d, p, ws_bytes, requested, returned, perf);
  size_t used = 0;
  for (int i = 0; i < *returned; i++)
    if (perf[i].status == CUDNN_STATUS_SUCCESS) used = std::max(used, perf[i].memory);
  const tens t = out_t;
  TRY(run(call, h, [=] {
    fill_nan(t, out);
    if (used) memset(ws, 0xff, used);
  }));
  return CUDNN_STATUS_SUCCESS;
}

const char *status_name(cudnnStatus_t s) {
  switch (s) {
#define NAME(x)                                                                                    \
  case x: return #x;
    NAME(CUDNN_STATUS_SUCCESS)
    NAME(CUDNN_STATUS_NOT_INITIALIZED)
    NAME(CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH)
    NAME(CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH)
    NAME(CUDNN_STATUS_DEPRECATED)
    NAME(CUDNN_STATUS_LICENSE_ERROR)
    NAME(CUDNN_STATUS_RUNTIME_IN_PROGRESS)
    NAME(CUDNN_STATUS_RUNTIME_FP_OVERFLOW)
    NAME(CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED)
    NAME(CUDNN_STATUS_BAD_PARAM)
    NAME(CUDNN_STATUS_INVALID_VALUE)
    NAME(CUDNN_STATUS_BAD_PARAM_NULL_POINTER)
    NAME(CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER)
    NAME(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED)
    NAME(CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND)
    NAME(CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT)
    NAME(CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH)
    NAME(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH)
    NAME(CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES)
    NAME(CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE)
    NAME(CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH)
    NAME(CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE)
    NAME(CUDNN_STATUS_NOT_SUPPORTED)
    NAME(CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN)
    NAME(CUDNN_STATUS_NOT_SUPPORTED_SHAPE)
    NAME(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE)
    NAME(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT)
    NAME(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER)
    NAME(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART)
    NAME(CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH)
    NAME(CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING)
    NAME(CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE)
    NAME(CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT)
    NAME(CUDNN_STATUS_NOT_SUPPORTED_PADDING)
    NAME(CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM)
    NAME(CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API)
    NAME(CUDNN_STATUS_NOT_SUPPORTED_INVALID_DYNAMIC_SHAPE)
    NAME(CUDNN_STATUS_INTERNAL_ERROR)
    NAME(CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED)
    NAME(CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE)
    NAME(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED)
    NAME(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
    NAME(CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM)
    NAME(CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED)
    NAME(CUDNN_STATUS_EXECUTION_FAILED)
    NAME(CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER)
    NAME(CUDNN_STATUS_EXECUTION_FAILED_CUBLAS)
    NAME(CUDNN_STATUS_EXECUTION_FAILED_CUDART)
    NAME(CUDNN_STATUS_EXECUTION_FAILED_CURAND)
#undef NAME
  default: return "CUDNN_UNKNOWN_STATUS_FOUND";
  }
}

} // namespace

/* ---- handle ---- */

const char *cudnnGetErrorString(cudnnStatus_t status) {
  return status_name(status);
}

cudnnStatus_t cudnnCreate(cudnnHandle_t *handle) {
  if (!handle) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreate", "handle is NULL");
  *handle = new cudnnContext{nullptr};
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
  TRY(check_handle("cudnnDestroy", handle));
  delete handle;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId) {
  TRY(check_handle("cudnnSetStream", handle));
  handle->stream = streamId;
  return CUDNN_STATUS_SUCCESS;
}

/* ---- descriptors ---- */

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *tensorDesc) {
  if (!tensorDesc)
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreateTensorDescriptor", "tensorDesc is NULL");
  *tensorDesc = new cudnnTensorStruct{};
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t tensorDesc) {
  delete tensorDesc;
  return CUDNN_STATUS_SUCCESS;
}

/* Shared checks of the 4-d Set calls. */
static cudnnStatus_t check_4d(const char *call, cudnnTensorFormat_t format,
                              cudnnDataType_t dataType, int n, int c, int h, int w) {
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0)
    return fail(CUDNN_STATUS_BAD_PARAM, call, "dimensions %dx%dx%dx%d are not all positive", n, c,
                h, w);
  if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC)
    return fail(CUDNN_STATUS_BAD_PARAM, call,
                "format %d is not NCHW or NHWC (NCHW_VECT_C is "
                "for int8 data and is not emulated)",
                (int)format);
  if (!dt_size(dataType))
    return fail(CUDNN_STATUS_BAD_PARAM, call, "data type %d is not emulated", (int)dataType);
  if ((long long)n * c * h * w > INT_MAX)
    return fail(CUDNN_STATUS_BAD_PARAM, call, "%dx%dx%dx%d exceeds 2^31 elements", n, c, h, w);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t tensorDesc,
                                         cudnnTensorFormat_t format, cudnnDataType_t dataType,
                                         int n, int c, int h, int w) {
  const char *call = "cudnnSetTensor4dDescriptor";
  if (!tensorDesc) return fail(CUDNN_STATUS_BAD_PARAM, call, "tensorDesc is NULL");
  TRY(check_4d(call, format, dataType, n, c, h, w));
  *tensorDesc = cudnnTensorStruct{1, dataType, format, n, c, h, w};
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *filterDesc) {
  if (!filterDesc)
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreateFilterDescriptor", "filterDesc is NULL");
  *filterDesc = new cudnnFilterStruct{};
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t filterDesc) {
  delete filterDesc;
  return CUDNN_STATUS_SUCCESS;
}

/* NCHW: [k][c][h][w]; NHWC: [k][h][w][c] */
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t filterDesc,
                                         cudnnDataType_t dataType, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w) {
  const char *call = "cudnnSetFilter4dDescriptor";
  if (!filterDesc) return fail(CUDNN_STATUS_BAD_PARAM, call, "filterDesc is NULL");
  TRY(check_4d(call, format, dataType, k, c, h, w));
  *filterDesc = cudnnFilterStruct{1, dataType, format, k, c, h, w};
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *convDesc) {
  if (!convDesc)
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreateConvolutionDescriptor", "convDesc is NULL");
  *convDesc = new cudnnConvolutionStruct{};
  (*convDesc)->math = CUDNN_DEFAULT_MATH;
  (*convDesc)->groups = 1;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t convDesc) {
  delete convDesc;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t convDesc, int pad_h,
                                              int pad_w, int u, int v, int dilation_h,
                                              int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType) {
  const char *call = "cudnnSetConvolution2dDescriptor";
  if (!convDesc) return fail(CUDNN_STATUS_BAD_PARAM, call, "convDesc is NULL");
  if (pad_h < 0 || pad_w < 0)
    return fail(CUDNN_STATUS_BAD_PARAM, call, "negative padding %d, %d", pad_h, pad_w);
  if (u <= 0 || v <= 0)
    return fail(CUDNN_STATUS_BAD_PARAM, call, "stride %d, %d is not positive", u, v);
  if (dilation_h <= 0 || dilation_w <= 0)
    return fail(CUDNN_STATUS_BAD_PARAM, call, "dilation %d, %d is not positive", dilation_h,
                dilation_w);
  if (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION)
    return fail(CUDNN_STATUS_BAD_PARAM, call, "mode %d is invalid", (int)mode);
  if (!dt_size(computeType))
    return fail(CUDNN_STATUS_BAD_PARAM, call, "compute type %d is invalid", (int)computeType);
  convDesc->set = 1;
  convDesc->pad_h = pad_h, convDesc->pad_w = pad_w;
  convDesc->u = u, convDesc->v = v;
  convDesc->dil_h = dilation_h, convDesc->dil_w = dilation_w;
  convDesc->mode = mode;
  convDesc->compute = computeType;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t convDesc, int groupCount) {
  const char *call = "cudnnSetConvolutionGroupCount";
  if (!convDesc) return fail(CUDNN_STATUS_BAD_PARAM, call, "convDesc is NULL");
  if (groupCount < 1) return fail(CUDNN_STATUS_BAD_PARAM, call, "groupCount %d < 1", groupCount);
  convDesc->groups = groupCount;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionGroupCount(cudnnConvolutionDescriptor_t convDesc,
                                            int *groupCount) {
  const char *call = "cudnnGetConvolutionGroupCount";
  if (!convDesc || !groupCount)
    return fail(CUDNN_STATUS_BAD_PARAM, call, "convDesc or groupCount is NULL");
  *groupCount = convDesc->groups;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc,
                                          cudnnMathType_t mathType) {
  const char *call = "cudnnSetConvolutionMathType";
  if (!convDesc) return fail(CUDNN_STATUS_BAD_PARAM, call, "convDesc is NULL");
  if (mathType != CUDNN_DEFAULT_MATH && mathType != CUDNN_TENSOR_OP_MATH &&
      mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION && mathType != CUDNN_FMA_MATH)
    return fail(CUDNN_STATUS_BAD_PARAM, call, "math type %d is invalid", (int)mathType);
  convDesc->math = mathType;
  return CUDNN_STATUS_SUCCESS;
}

/* outputDim = 1 + (inputDim + 2 * pad - ((filterDim - 1) * dilation + 1)) / stride */
cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t convDesc,
                                                    const cudnnTensorDescriptor_t inputTensorDesc,
                                                    const cudnnFilterDescriptor_t filterDesc,
                                                    int *n, int *c, int *h, int *w) {
  const char *call = "cudnnGetConvolution2dForwardOutputDim";
  tens x = {}, f = {};
  conv cv = {};
  TRY(get_conv(call, convDesc, &cv));
  TRY(get_tensor(call, "inputTensorDesc", inputTensorDesc, &x));
  TRY(get_filter(call, filterDesc, &f));
  if (!n || !c || !h || !w) return fail(CUDNN_STATUS_BAD_PARAM, call, "an output pointer is NULL");
  if (x.c != f.c * cv.groups)
    return fail(CUDNN_STATUS_BAD_PARAM, call,
                "the input has %d feature maps, the filter %d per group x %d groups", x.c, f.c,
                cv.groups);
  if ((f.h - 1) * cv.dil_h + 1 > x.h + 2 * cv.pad_h ||
      (f.w - 1) * cv.dil_w + 1 > x.w + 2 * cv.pad_w)
    return fail(CUDNN_STATUS_BAD_PARAM, call,
                "the dilated %dx%d filter is larger than the padded %dx%d input", f.h, f.w, x.h,
                x.w);
  *n = x.n;
  *c = f.n;
  *h = out_dim(x.h, cv.pad_h, f.h, cv.dil_h, cv.u);
  *w = out_dim(x.w, cv.pad_w, f.w, cv.dil_w, cv.v);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateActivationDescriptor(cudnnActivationDescriptor_t *activationDesc) {
  if (!activationDesc)
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreateActivationDescriptor",
                "activationDesc is NULL");
  *activationDesc = new cudnnActivationStruct{};
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyActivationDescriptor(cudnnActivationDescriptor_t activationDesc) {
  delete activationDesc;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetActivationDescriptor(cudnnActivationDescriptor_t activationDesc,
                                           cudnnActivationMode_t mode,
                                           cudnnNanPropagation_t reluNanOpt, double coef) {
  const char *call = "cudnnSetActivationDescriptor";
  if (!activationDesc) return fail(CUDNN_STATUS_BAD_PARAM, call, "activationDesc is NULL");
  if ((int)mode < CUDNN_ACTIVATION_SIGMOID || (int)mode > CUDNN_ACTIVATION_SWISH)
    return fail(CUDNN_STATUS_BAD_PARAM, call, "mode %d is invalid", (int)mode);
  if (reluNanOpt != CUDNN_NOT_PROPAGATE_NAN && reluNanOpt != CUDNN_PROPAGATE_NAN)
    return fail(CUDNN_STATUS_BAD_PARAM, call, "reluNanOpt %d is invalid", (int)reluNanOpt);
  *activationDesc = cudnnActivationStruct{1, mode, reluNanOpt, coef};
  return CUDNN_STATUS_SUCCESS;
}

/* ---- workspace sizes ---- */

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnFilterDescriptor_t wDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t yDesc,
    cudnnConvolutionFwdAlgo_t algo, size_t *sizeInBytes) {
  const char *call = "cudnnGetConvolutionForwardWorkspaceSize";
  problem p = {};
  TRY(check_handle(call, handle));
  if (!sizeInBytes) return fail(CUDNN_STATUS_BAD_PARAM, call, "sizeInBytes is NULL");
  TRY(get_problem(call, xDesc, "xDesc", wDesc, convDesc, yDesc, "yDesc", &p));
  TRY(int8_algo(call, FWD, p, algo));
  return algo_workspace(call, FWD, algo, p.g, sizeInBytes);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc,
    cudnnConvolutionBwdDataAlgo_t algo, size_t *sizeInBytes) {
  const char *call = "cudnnGetConvolutionBackwardDataWorkspaceSize";
  problem p = {};
  TRY(check_handle(call, handle));
  if (!sizeInBytes) return fail(CUDNN_STATUS_BAD_PARAM, call, "sizeInBytes is NULL");
  TRY(get_problem(call, dxDesc, "dxDesc", wDesc, convDesc, dyDesc, "dyDesc", &p));
  TRY(int8_algo(call, BWD_DATA, p, algo));
  return algo_workspace(call, BWD_DATA, algo, p.g, sizeInBytes);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t gradDesc,
    cudnnConvolutionBwdFilterAlgo_t algo, size_t *sizeInBytes) {
  const char *call = "cudnnGetConvolutionBackwardFilterWorkspaceSize";
  problem p = {};
  TRY(check_handle(call, handle));
  if (!sizeInBytes) return fail(CUDNN_STATUS_BAD_PARAM, call, "sizeInBytes is NULL");
  TRY(get_problem(call, xDesc, "xDesc", gradDesc, convDesc, dyDesc, "dyDesc", &p));
  TRY(int8_algo(call, BWD_FILTER, p, algo));
  return algo_workspace(call, BWD_FILTER, algo, p.g, sizeInBytes);
}

/* ---- Find ---- */

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnFilterDescriptor_t wDesc, const void *w, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t yDesc, void *y, const int requestedAlgoCount,
    int *returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t *perfResults, void *workSpace,
    size_t workSpaceSizeInBytes) {
  const char *call = "cudnnFindConvolutionForwardAlgorithmEx";
  problem p = {};
  TRY(check_handle(call, handle));
  TRY(get_problem(call, xDesc, "xDesc", wDesc, convDesc, yDesc, "yDesc", &p));
  return find(call, FWD, handle, p, x, "x", p.x, w, "w", p.w, y, "y", p.y, requestedAlgoCount,
              returnedAlgoCount, perfResults, workSpace, workSpaceSizeInBytes);
}

cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const void *w,
    const cudnnTensorDescriptor_t dyDesc, const void *dy,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc, void *dx,
    const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionBwdDataAlgoPerf_t *perfResults, void *workSpace, size_t workSpaceSizeInBytes) {
  const char *call = "cudnnFindConvolutionBackwardDataAlgorithmEx";
  problem p = {};
  TRY(check_handle(call, handle));
  TRY(get_problem(call, dxDesc, "dxDesc", wDesc, convDesc, dyDesc, "dyDesc", &p));
  return find(call, BWD_DATA, handle, p, w, "w", p.w, dy, "dy", p.y, dx, "dx", p.x,
              requestedAlgoCount, returnedAlgoCount, perfResults, workSpace, workSpaceSizeInBytes);
}

cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnTensorDescriptor_t dyDesc, const void *y,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t dwDesc, void *dw,
    const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionBwdFilterAlgoPerf_t *perfResults, void *workSpace,
    size_t workSpaceSizeInBytes) {
  const char *call = "cudnnFindConvolutionBackwardFilterAlgorithmEx";
  problem p = {};
  TRY(check_handle(call, handle));
  TRY(get_problem(call, xDesc, "xDesc", dwDesc, convDesc, dyDesc, "dyDesc", &p));
  return find(call, BWD_FILTER, handle, p, x, "x", p.x, y, "dy", p.y, dw, "dw", p.w,
              requestedAlgoCount, returnedAlgoCount, perfResults, workSpace, workSpaceSizeInBytes);
}

/* ---- compute ---- */

/* One direction of a convolution: out = alpha * op(a, b) + beta * out, with
 *   FWD         a = x,  b = w,  out = y,  op = conv
 *   BWD_DATA    a = dy, b = w,  out = dx, op = conv^T
 *   BWD_FILTER  a = x,  b = dy, out = dw, op = corr
 * The filter is flipped on the way in (or out, for dw) in CONVOLUTION mode. */
struct operand {
  const char *name;
  const void *data;
  tens t;
};

cudnnStatus_t conv_direction(const char *call, dir d, cudnnHandle_t handle, const problem &p,
                             const void *alpha, const void *beta, operand a, operand b,
                             const char *out_name, void *out, const tens &out_t, int algo,
                             void *workSpace, size_t workSpaceSizeInBytes) {
  float al = 0, be = 0;
  size_t need = 0;
  TRY(int8_algo(call, d, p, algo));
  TRY(read_scalar(call, "alpha", alpha, &al));
  TRY(read_scalar(call, "beta", beta, &be));
  TRY(need_device(call, a.name, a.data, tens_bytes(a.t)));
  TRY(need_device(call, b.name, b.data, tens_bytes(b.t)));
  TRY(need_device(call, out_name, out, tens_bytes(out_t)));
  TRY(check_workspace(call, d, algo, p.g, workSpace, workSpaceSizeInBytes, &need));
  const int flip_b = d != BWD_FILTER && p.cv.flip, flip_out = d == BWD_FILTER && p.cv.flip;
  if (p.int8) {
    if (p.cv.flip)
      return fail(CUDNN_STATUS_NOT_SUPPORTED, call,
                  "INT8 data in CUDNN_CONVOLUTION mode is not emulated");
    return run(call, handle, [=] {
      std::vector<int32_t> acc;
      if (need) memset(workSpace, 0xff, need);
      conv_forward_i8(p.g, a.t, (const int8_t *)a.data, b.t, (const int8_t *)b.data, acc);
      std::vector<float> of(acc.begin(), acc.end()); /* |sum| < 2^24 is exact, larger rounds once */
      scatter(out_t, out, of.data(), al, be, 0);
    });
  }
  return run(call, handle, [=] {
    std::vector<float> af(tens_count(a.t)), bf(tens_count(b.t)), of(tens_count(out_t));
    gather(a.t, a.data, af.data(), 0, p.tf32);
    gather(b.t, b.data, bf.data(), flip_b, p.tf32);
    if (need) memset(workSpace, 0xff, need);
    if (d == FWD)
      conv_forward(p.g, af.data(), bf.data(), of.data());
    else if (d == BWD_DATA)
      conv_backward_data(p.g, af.data(), bf.data(), of.data());
    else
      conv_backward_filter(p.g, af.data(), bf.data(), of.data());
    scatter(out_t, out, of.data(), al, be, flip_out);
  });
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void *alpha,
                                      const cudnnTensorDescriptor_t xDesc, const void *x,
                                      const cudnnFilterDescriptor_t wDesc, const void *w,
                                      const cudnnConvolutionDescriptor_t convDesc,
                                      cudnnConvolutionFwdAlgo_t algo, void *workSpace,
                                      size_t workSpaceSizeInBytes, const void *beta,
                                      const cudnnTensorDescriptor_t yDesc, void *y) {
  const char *call = "cudnnConvolutionForward";
  problem p = {};
  TRY(check_handle(call, handle));
  TRY(get_problem(call, xDesc, "xDesc", wDesc, convDesc, yDesc, "yDesc", &p));
  return conv_direction(call, FWD, handle, p, alpha, beta, {"x", x, p.x}, {"w", w, p.w}, "y", y,
                        p.y, algo, workSpace, workSpaceSizeInBytes);
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void *alpha,
                                           const cudnnFilterDescriptor_t wDesc, const void *w,
                                           const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                           const cudnnConvolutionDescriptor_t convDesc,
                                           cudnnConvolutionBwdDataAlgo_t algo, void *workSpace,
                                           size_t workSpaceSizeInBytes, const void *beta,
                                           const cudnnTensorDescriptor_t dxDesc, void *dx) {
  const char *call = "cudnnConvolutionBackwardData";
  problem p = {};
  TRY(check_handle(call, handle));
  TRY(get_problem(call, dxDesc, "dxDesc", wDesc, convDesc, dyDesc, "dyDesc", &p));
  return conv_direction(call, BWD_DATA, handle, p, alpha, beta, {"dy", dy, p.y}, {"w", w, p.w},
                        "dx", dx, p.x, algo, workSpace, workSpaceSizeInBytes);
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void *alpha,
                                             const cudnnTensorDescriptor_t xDesc, const void *x,
                                             const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                             const cudnnConvolutionDescriptor_t convDesc,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void *workSpace,
                                             size_t workSpaceSizeInBytes, const void *beta,
                                             const cudnnFilterDescriptor_t dwDesc, void *dw) {
  const char *call = "cudnnConvolutionBackwardFilter";
  problem p = {};
  TRY(check_handle(call, handle));
  TRY(get_problem(call, xDesc, "xDesc", dwDesc, convDesc, dyDesc, "dyDesc", &p));
  return conv_direction(call, BWD_FILTER, handle, p, alpha, beta, {"x", x, p.x}, {"dy", dy, p.y},
                        "dw", dw, p.w, algo, workSpace, workSpaceSizeInBytes);
}

/* y = act(alpha1 * conv(x, w) + alpha2 * z + bias), bias [1][K][1][1], z
 * shaped like y (it may be y itself). Supported (x / w, y / z, bias) types
 * with a FLOAT compute type: FLOAT / FLOAT / FLOAT, HALF / HALF / HALF,
 * BFLOAT16 / BFLOAT16 / BFLOAT16. alpha2 = 0 does not read z. */
cudnnStatus_t cudnnConvolutionBiasActivationForward(
    cudnnHandle_t handle, const void *alpha1, const cudnnTensorDescriptor_t xDesc, const void *x,
    const cudnnFilterDescriptor_t wDesc, const void *w, const cudnnConvolutionDescriptor_t convDesc,
    cudnnConvolutionFwdAlgo_t algo, void *workSpace, size_t workSpaceSizeInBytes,
    const void *alpha2, const cudnnTensorDescriptor_t zDesc, const void *z,
    const cudnnTensorDescriptor_t biasDesc, const void *bias,
    const cudnnActivationDescriptor_t activationDesc, const cudnnTensorDescriptor_t yDesc,
    void *y) {
  const char *call = "cudnnConvolutionBiasActivationForward";
  problem p = {};
  tens zt = {}, bt = {};
  float a1 = 0, a2 = 0;
  size_t need = 0;
  TRY(check_handle(call, handle));
  TRY(get_problem(call, xDesc, "xDesc", wDesc, convDesc, yDesc, "yDesc", &p));
  if (p.int8)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, call,
                "INT8 data in the fused call is not emulated (cudnnConvolutionForward runs "
                "INT8_EXT_CONFIG)");
  TRY(get_tensor(call, "zDesc", zDesc, &zt));
  TRY(get_tensor(call, "biasDesc", biasDesc, &bt));
  if (!activationDesc) return fail(CUDNN_STATUS_BAD_PARAM, call, "activationDesc is NULL");
  if (!activationDesc->set) return fail(CUDNN_STATUS_BAD_PARAM, call, "activationDesc never set");
  if (zt.n != p.y.n || zt.c != p.y.c || zt.h != p.y.h || zt.w != p.y.w || zt.dt != p.y.dt)
    return fail(CUDNN_STATUS_BAD_PARAM, call, "z (%dx%dx%dx%d %s) differs from y (%dx%dx%dx%d %s)",
                zt.n, zt.c, zt.h, zt.w, dt_name(zt.dt), p.y.n, p.y.c, p.y.h, p.y.w,
                dt_name(p.y.dt));
  if (bt.n != 1 || bt.c != p.y.c || bt.h != 1 || bt.w != 1)
    return fail(CUDNN_STATUS_BAD_PARAM, call, "bias is %dx%dx%dx%d, expected 1x%dx1x1", bt.n, bt.c,
                bt.h, bt.w, p.y.c);
  if (bt.dt != p.y.dt)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, call,
                "a %s bias with %s y is not a supported configuration (the bias type must be y's)",
                dt_name(bt.dt), dt_name(p.y.dt));
  const cudnnActivationMode_t mode = activationDesc->mode;
  if (mode != CUDNN_ACTIVATION_RELU && mode != CUDNN_ACTIVATION_IDENTITY)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, call,
                "activation mode %d is not emulated (RELU and "
                "IDENTITY are)",
                (int)mode);
  if (mode == CUDNN_ACTIVATION_IDENTITY && algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, call,
                "CUDNN_ACTIVATION_IDENTITY needs CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, "
                "not algorithm %d",
                (int)algo);
  TRY(read_scalar(call, "alpha1", alpha1, &a1));
  TRY(read_scalar(call, "alpha2", alpha2, &a2));
  TRY(need_device(call, "x", x, tens_bytes(p.x)));
  TRY(need_device(call, "w", w, tens_bytes(p.w)));
  if (a2 != 0.0f) TRY(need_device(call, "z", z, tens_bytes(zt)));
  TRY(need_device(call, "bias", bias, tens_bytes(bt)));
  TRY(need_device(call, "y", y, tens_bytes(p.y)));
  TRY(check_workspace(call, FWD, algo, p.g, workSpace, workSpaceSizeInBytes, &need));
  const int relu = mode == CUDNN_ACTIVATION_RELU;
  const int propagate = activationDesc->nan == CUDNN_PROPAGATE_NAN;
  return run(call, handle, [=] {
    std::vector<float> xf(tens_count(p.x)), wf(tens_count(p.w)), yf(tens_count(p.y));
    gather(p.x, x, xf.data(), 0, p.tf32);
    gather(p.w, w, wf.data(), p.cv.flip, p.tf32);
    if (need) memset(workSpace, 0xff, need);
    conv_forward(p.g, xf.data(), wf.data(), yf.data());
    const tens &yt = p.y;
    size_t i = 0;
    for (int n = 0; n < yt.n; n++)
      for (int c = 0; c < yt.c; c++) {
        const float bc = load(bt.dt, bias, c * bt.cs);
        for (int h = 0; h < yt.h; h++)
          for (int q = 0; q < yt.w; q++) {
            float v = a1 * yf[i++];
            if (a2 != 0.0f) v += a2 * load(zt.dt, z, n * zt.ns + c * zt.cs + h * zt.hs + q * zt.ws);
            v += bc;
            if (relu) v = v != v ? (propagate ? v : 0.0f) : std::max(v, 0.0f);
            store(yt.dt, y, n * yt.ns + c * yt.cs + h * yt.hs + q * yt.ws, v);
          }
      }
  });
}

/* C = alpha * A + beta * C, each dimension of A equal to C's or 1 (broadcast). */
cudnnStatus_t cudnnAddTensor(cudnnHandle_t handle, const void *alpha,
                             const cudnnTensorDescriptor_t aDesc, const void *A, const void *beta,
                             const cudnnTensorDescriptor_t cDesc, void *C) {
  const char *call = "cudnnAddTensor";
  tens at = {}, ct = {};
  float a = 0, b = 0;
  TRY(check_handle(call, handle));
  TRY(get_tensor(call, "aDesc", aDesc, &at));
  TRY(get_tensor(call, "cDesc", cDesc, &ct));
  if ((at.n != ct.n && at.n != 1) || (at.c != ct.c && at.c != 1) || (at.h != ct.h && at.h != 1) ||
      (at.w != ct.w && at.w != 1))
    return fail(CUDNN_STATUS_BAD_PARAM, call,
                "A (%dx%dx%dx%d) does not broadcast to C (%dx%dx%dx%d)", at.n, at.c, at.h, at.w,
                ct.n, ct.c, ct.h, ct.w);
  if (at.dt != ct.dt || !dt_emulated(at.dt))
    return fail(CUDNN_STATUS_NOT_SUPPORTED, call, "A %s, C %s is not emulated", dt_name(at.dt),
                dt_name(ct.dt));
  TRY(read_scalar(call, "alpha", alpha, &a));
  TRY(read_scalar(call, "beta", beta, &b));
  TRY(need_device(call, "A", A, tens_bytes(at)));
  TRY(need_device(call, "C", C, tens_bytes(ct)));
  return run(call, handle, [=] {
    for (int n = 0; n < ct.n; n++)
      for (int c = 0; c < ct.c; c++)
        for (int h = 0; h < ct.h; h++)
          for (int w = 0; w < ct.w; w++) {
            const size_t ao = (at.n == 1 ? 0 : n) * at.ns + (at.c == 1 ? 0 : c) * at.cs +
                              (at.h == 1 ? 0 : h) * at.hs + (at.w == 1 ? 0 : w) * at.ws;
            const size_t co = n * ct.ns + c * ct.cs + h * ct.hs + w * ct.ws;
            float v = a * load(at.dt, A, ao);
            if (b != 0.0f) v += b * load(ct.dt, C, co);
            store(ct.dt, C, co, v);
          }
  });
}
