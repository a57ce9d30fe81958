/* Self-test of the emulator's fake cuDNN and cuBLAS (emu_cudnn.cc,
 * emu_cublas.cc) through their public API and the CUDA runtime, against
 * naive double-precision loops written here:
 *   - forward convolution for odd shapes (stride, padding, dilation, 1x1, 7x7,
 *     non-square, CUDNN_CONVOLUTION) and cudnnGetConvolution2dForwardOutputDim
 *   - backward data / filter against the naive loops and the adjoint identity
 *     <conv(x, w), dy> = <x, conv^T(dy, w)> = <w, corr(x, dy)>
 *   - NCHW fp32 vs NHWC fp16 vs NHWC bf16 agreement within the output rounding
 *   - TF32 (default math) vs FMA math on fp32 data
 *   - alpha / beta (beta = 0 ignores NaN), cudnnAddTensor broadcasting
 *   - the fused bias + z + ReLU / identity call, its refusals
 *   - workspace sizes and a too small workspace, bad arguments
 *   - Find*Ex: results, NaN-clobbered output, refusal during capture
 *   - work recorded during stream capture runs at graph launch, by value
 *   - int8 (INT8_EXT_CONFIG): exact int32 sums against a naive integer loop,
 *     sums beyond 2^24, alpha / beta, and the int8 configurations refused
 *   - cublasSgemm for the four transpose combinations, beta = 0 with NaN C,
 *     TF32 math mode, argument checks.
 * Diagnostics of deliberately refused calls ("cuda-emu: ...") are expected on
 * stderr. Returns 0 when every check passes. */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vector>

static int failures, checks;

#define EXPECT(cond, ...)                                                                          \
  do {                                                                                             \
    checks++;                                                                                      \
    if (!(cond)) {                                                                                 \
      failures++;                                                                                  \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                         \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
    }                                                                                              \
  } while (0)

#define OK(call) EXPECT((call) == CUDNN_STATUS_SUCCESS, "%s", #call)

/* ---- host data ---- */

static uint32_t rng = 12345;

static float uniform(void) { /* [-1, 1) */
  rng = rng * 1664525u + 1013904223u;
  return (float)((rng >> 8) * (1.0 / 8388608.0)) - 1.0f;
}

static std::vector<float> random_vec(size_t n) {
  std::vector<float> v(n);
  for (auto &x : v) x = uniform();
  return v;
}

static float tf32(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  b = (b + 0x1000u) & 0xffffe000u;
  memcpy(&f, &b, 4);
  return f;
}

static float to_half(float f) {
  return __half2float(__float2half_rn(f));
}
static float to_bf16(float f) {
  return __bfloat162float(__float2bfloat16_rn(f));
}

/* max |a - ref| / max |ref| */
static double rel_err(const float *a, const double *ref, size_t n) {
  double e = 0, m = 1e-30;
  for (size_t i = 0; i < n; i++) {
    e = fmax(e, fabs(a[i] - ref[i]));
    m = fmax(m, fabs(ref[i]));
  }
  return e / m;
}

static double dotd(const float *a, const float *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

/* ---- device memory ---- */

static void *dev(size_t bytes) {
  void *p = NULL;
  EXPECT(cudaMalloc(&p, bytes) == cudaSuccess, "cudaMalloc %zu", bytes);
  return p;
}

static void *upload(const void *h, size_t bytes) {
  void *d = dev(bytes);
  cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice);
  return d;
}

static std::vector<float> download(const void *d, size_t n) {
  std::vector<float> h(n);
  cudaMemcpy(h.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost);
  return h;
}

/* ---- the convolution problem and its naive reference ---- */

struct shape {
  int n, c, h, w, k, r, s, ph, pw, u, v, dh, dw;
  cudnnConvolutionMode_t mode;
  int p() const { return 1 + (h + 2 * ph - ((r - 1) * dh + 1)) / u; }
  int q() const { return 1 + (w + 2 * pw - ((s - 1) * dw + 1)) / v; }
  size_t nx() const { return (size_t)n * c * h * w; }
  size_t nw() const { return (size_t)k * c * r * s; }
  size_t ny() const { return (size_t)n * k * p() * q(); }
};

/* Calls f(x index, w index, y index) for every multiply of the convolution
 * (x NCHW, w KCRS, y NKPQ). */
template <class F> static void each_mac(const shape &sh, F f) {
  const int P = sh.p(), Q = sh.q();
  const int flip = sh.mode == CUDNN_CONVOLUTION;
  for (int n = 0; n < sh.n; n++)
    for (int k = 0; k < sh.k; k++)
      for (int p = 0; p < P; p++)
        for (int q = 0; q < Q; q++)
          for (int c = 0; c < sh.c; c++)
            for (int r = 0; r < sh.r; r++)
              for (int s = 0; s < sh.s; s++) {
                const int ih = p * sh.u - sh.ph + r * sh.dh, iw = q * sh.v - sh.pw + s * sh.dw;
                if (ih < 0 || ih >= sh.h || iw < 0 || iw >= sh.w) continue;
                const int rr = flip ? sh.r - 1 - r : r, ss = flip ? sh.s - 1 - s : s;
                f((((size_t)n * sh.c + c) * sh.h + ih) * sh.w + iw,
                  (((size_t)k * sh.c + c) * sh.r + rr) * sh.s + ss,
                  (((size_t)n * sh.k + k) * P + p) * Q + q);
              }
}

static std::vector<double> ref_forward(const shape &sh, const float *x, const float *w) {
  std::vector<double> y(sh.ny(), 0.0);
  each_mac(sh, [&](size_t xi, size_t wi, size_t yi) { y[yi] += (double)x[xi] * w[wi]; });
  return y;
}

static std::vector<double> ref_backward_data(const shape &sh, const float *dy, const float *w) {
  std::vector<double> dx(sh.nx(), 0.0);
  each_mac(sh, [&](size_t xi, size_t wi, size_t yi) { dx[xi] += (double)dy[yi] * w[wi]; });
  return dx;
}

static std::vector<double> ref_backward_filter(const shape &sh, const float *x, const float *dy) {
  std::vector<double> dw(sh.nw(), 0.0);
  each_mac(sh, [&](size_t xi, size_t wi, size_t yi) { dw[wi] += (double)x[xi] * dy[yi]; });
  return dw;
}

/* ---- descriptors ---- */

struct descs {
  cudnnTensorDescriptor_t x, y;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t cv;
};

static descs make_descs(const shape &sh, cudnnDataType_t dt, cudnnTensorFormat_t fmt,
                        cudnnMathType_t math) {
  descs d;
  OK(cudnnCreateTensorDescriptor(&d.x));
  OK(cudnnCreateTensorDescriptor(&d.y));
  OK(cudnnCreateFilterDescriptor(&d.w));
  OK(cudnnCreateConvolutionDescriptor(&d.cv));
  OK(cudnnSetTensor4dDescriptor(d.x, fmt, dt, sh.n, sh.c, sh.h, sh.w));
  OK(cudnnSetTensor4dDescriptor(d.y, fmt, dt, sh.n, sh.k, sh.p(), sh.q()));
  OK(cudnnSetFilter4dDescriptor(d.w, dt, fmt, sh.k, sh.c, sh.r, sh.s));
  OK(cudnnSetConvolution2dDescriptor(d.cv, sh.ph, sh.pw, sh.u, sh.v, sh.dh, sh.dw, sh.mode,
                                     CUDNN_DATA_FLOAT));
  OK(cudnnSetConvolutionMathType(d.cv, math));
  return d;
}

static void free_descs(descs &d) {
  cudnnDestroyTensorDescriptor(d.x);
  cudnnDestroyTensorDescriptor(d.y);
  cudnnDestroyFilterDescriptor(d.w);
  cudnnDestroyConvolutionDescriptor(d.cv);
}

/* NCHW floats -> bytes of layout fmt / type dt ([n][c][h][w] or [n][h][w][c]). */
static std::vector<char> pack(const float *a, int n, int c, int h, int w, cudnnTensorFormat_t fmt,
                              cudnnDataType_t dt) {
  const size_t es = dt == CUDNN_DATA_FLOAT ? 4 : 2;
  std::vector<char> out((size_t)n * c * h * w * es);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < c; j++)
      for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
          const float v = a[(((size_t)i * c + j) * h + y) * w + x];
          const size_t o = fmt == CUDNN_TENSOR_NHWC ? (((size_t)i * h + y) * w + x) * c + j
                                                    : (((size_t)i * c + j) * h + y) * w + x;
          if (dt == CUDNN_DATA_FLOAT)
            memcpy(&out[o * 4], &v, 4);
          else if (dt == CUDNN_DATA_HALF) {
            __half hv = __float2half_rn(v);
            memcpy(&out[o * 2], &hv, 2);
          } else {
            __nv_bfloat16 bv = __float2bfloat16_rn(v);
            memcpy(&out[o * 2], &bv, 2);
          }
        }
  return out;
}

static std::vector<float> unpack(const void *d, int n, int c, int h, int w, cudnnTensorFormat_t fmt,
                                 cudnnDataType_t dt) {
  const size_t es = dt == CUDNN_DATA_FLOAT ? 4 : 2, count = (size_t)n * c * h * w;
  std::vector<char> raw(count * es);
  cudaMemcpy(raw.data(), d, raw.size(), cudaMemcpyDeviceToHost);
  std::vector<float> out(count);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < c; j++)
      for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
          const size_t o = fmt == CUDNN_TENSOR_NHWC ? (((size_t)i * h + y) * w + x) * c + j
                                                    : (((size_t)i * c + j) * h + y) * w + x;
          float v;
          if (dt == CUDNN_DATA_FLOAT)
            memcpy(&v, &raw[o * 4], 4);
          else if (dt == CUDNN_DATA_HALF) {
            __half hv;
            memcpy(&hv, &raw[o * 2], 2);
            v = __half2float(hv);
          } else {
            __nv_bfloat16 bv;
            memcpy(&bv, &raw[o * 2], 2);
            v = __bfloat162float(bv);
          }
          out[(((size_t)i * c + j) * h + y) * w + x] = v;
        }
  return out;
}

static const float ONE = 1.0f, ZERO = 0.0f;

static const shape SHAPES[] = {
    {2, 3, 9, 11, 4, 3, 3, 1, 1, 2, 2, 1, 1, CUDNN_CROSS_CORRELATION},    /* stride 2, padding */
    {1, 5, 10, 9, 3, 3, 3, 2, 1, 1, 1, 2, 2, CUDNN_CROSS_CORRELATION},    /* dilation 2 */
    {2, 8, 6, 5, 6, 1, 1, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION},     /* 1x1 */
    {1, 3, 16, 13, 4, 7, 7, 3, 3, 2, 2, 1, 1, CUDNN_CROSS_CORRELATION},   /* 7x7 stride 2 (stem) */
    {2, 4, 7, 9, 3, 3, 2, 0, 1, 1, 3, 1, 1, CUDNN_CONVOLUTION},           /* flipped, 3x2, v=3 */
    {1, 2, 5, 5, 2, 1, 1, 0, 0, 2, 2, 1, 1, CUDNN_CROSS_CORRELATION},     /* 1x1 stride 2 */
    {2, 16, 16, 16, 32, 3, 3, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION}, /* large: threaded */
};

/* ---- tests ---- */

static void test_forward(cudnnHandle_t h) {
  for (const shape &sh : SHAPES) {
    descs d = make_descs(sh, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, CUDNN_FMA_MATH);
    int n, c, p, q;
    OK(cudnnGetConvolution2dForwardOutputDim(d.cv, d.x, d.w, &n, &c, &p, &q));
    EXPECT(n == sh.n && c == sh.k && p == sh.p() && q == sh.q(), "output dim %dx%dx%dx%d", n, c, p,
           q);
    std::vector<float> x = random_vec(sh.nx()), w = random_vec(sh.nw());
    void *dx = upload(x.data(), 4 * sh.nx()), *dw = upload(w.data(), 4 * sh.nw());
    void *dy = dev(4 * sh.ny()); /* NaN-poisoned: beta = 0 must not read it */
    OK(cudnnConvolutionForward(h, &ONE, d.x, dx, d.w, dw, d.cv,
                               CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &ZERO, d.y, dy));
    std::vector<double> ref = ref_forward(sh, x.data(), w.data());
    double e = rel_err(download(dy, sh.ny()).data(), ref.data(), sh.ny());
    EXPECT(e < 1e-5, "forward %dx%d k=%dx%d: error %g", sh.h, sh.w, sh.r, sh.s, e);

    /* alpha / beta: y = 2 conv + 0.5 y */
    const float two = 2.0f, half = 0.5f;
    OK(cudnnConvolutionForward(h, &two, d.x, dx, d.w, dw, d.cv,
                               CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &half, d.y, dy));
    for (auto &v : ref) v *= 2.5;
    e = rel_err(download(dy, sh.ny()).data(), ref.data(), sh.ny());
    EXPECT(e < 1e-5, "forward alpha/beta: error %g", e);
    cudaFree(dx), cudaFree(dw), cudaFree(dy);
    free_descs(d);
  }
}

static void test_backward(cudnnHandle_t h) {
  for (const shape &sh : SHAPES) {
    descs d = make_descs(sh, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, CUDNN_FMA_MATH);
    std::vector<float> x = random_vec(sh.nx()), w = random_vec(sh.nw()), g = random_vec(sh.ny());
    void *px = upload(x.data(), 4 * sh.nx()), *pw = upload(w.data(), 4 * sh.nw());
    void *pg = upload(g.data(), 4 * sh.ny());
    void *py = dev(4 * sh.ny()), *pdx = dev(4 * sh.nx()), *pdw = dev(4 * sh.nw());
    size_t ws_bytes = 0;
    OK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
        h, d.x, d.y, d.cv, d.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, &ws_bytes));
    void *ws = dev(ws_bytes);
    OK(cudnnConvolutionForward(h, &ONE, d.x, px, d.w, pw, d.cv,
                               CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &ZERO, d.y, py));
    OK(cudnnConvolutionBackwardData(h, &ONE, d.w, pw, d.y, pg, d.cv,
                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, NULL, 0, &ZERO, d.x, pdx));
    OK(cudnnConvolutionBackwardFilter(h, &ONE, d.x, px, d.y, pg, d.cv,
                                      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, ws, ws_bytes, &ZERO, d.w,
                                      pdw));
    std::vector<float> y = download(py, sh.ny()), gx = download(pdx, sh.nx()),
                       gw = download(pdw, sh.nw());
    std::vector<double> rdx = ref_backward_data(sh, g.data(), w.data());
    std::vector<double> rdw = ref_backward_filter(sh, x.data(), g.data());
    double e1 = rel_err(gx.data(), rdx.data(), sh.nx()),
           e2 = rel_err(gw.data(), rdw.data(), sh.nw());
    EXPECT(e1 < 1e-5, "backward data %dx%d: error %g", sh.h, sh.w, e1);
    EXPECT(e2 < 1e-5, "backward filter %dx%d: error %g", sh.h, sh.w, e2);
    /* <conv(x, w), dy> = <x, conv^T(dy, w)> = <w, corr(x, dy)> */
    const double a = dotd(y.data(), g.data(), sh.ny()), b = dotd(x.data(), gx.data(), sh.nx()),
                 c = dotd(w.data(), gw.data(), sh.nw());
    const double scale = sqrt((double)sh.ny() * sh.c * sh.r * sh.s);
    EXPECT(fabs(a - b) < 1e-5 * scale && fabs(a - c) < 1e-5 * scale,
           "adjoint identity %dx%d: %.9g %.9g %.9g", sh.h, sh.w, a, b, c);
    /* dw += corr(x, dy): beta = 1 accumulates */
    OK(cudnnConvolutionBackwardFilter(h, &ONE, d.x, px, d.y, pg, d.cv,
                                      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, NULL, 0, &ONE, d.w,
                                      pdw));
    for (auto &v : rdw) v *= 2;
    e2 = rel_err(download(pdw, sh.nw()).data(), rdw.data(), sh.nw());
    EXPECT(e2 < 1e-5, "backward filter beta = 1: error %g", e2);
    cudaFree(px), cudaFree(pw), cudaFree(pg), cudaFree(py), cudaFree(pdx), cudaFree(pdw);
    cudaFree(ws);
    free_descs(d);
  }
}

/* Grouped convolutions (cudnnSetConvolutionGroupCount): depthwise and 2 / 4
 * groups, forward (NCHW and NHWC), backward data and filter, against a naive
 * loop in double. */
struct gshape {
  int n, c, h, w, k, r, pad, stride, groups;
  int p() const { return (h + 2 * pad - r) / stride + 1; }
  int q() const { return (w + 2 * pad - r) / stride + 1; }
};

template <class F> static void each_grouped_mac(const gshape &g, F f) {
  const int cg = g.c / g.groups, kg = g.k / g.groups, P = g.p(), Q = g.q();
  for (int n = 0; n < g.n; n++)
    for (int k = 0; k < g.k; k++)
      for (int p = 0; p < P; p++)
        for (int q = 0; q < Q; q++)
          for (int j = 0; j < cg; j++)
            for (int r = 0; r < g.r; r++)
              for (int s = 0; s < g.r; s++) {
                const int ih = p * g.stride - g.pad + r, iw = q * g.stride - g.pad + s;
                if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                const int c = k / kg * cg + j;
                f((((size_t)n * g.c + c) * g.h + ih) * g.w + iw,
                  (((size_t)k * cg + j) * g.r + r) * g.r + s, (((size_t)n * g.k + k) * P + p) * Q + q);
              }
}

static void test_grouped(cudnnHandle_t h) {
  const gshape shapes[] = {
      {2, 6, 7, 5, 6, 3, 1, 1, 6},   /* depthwise 3x3 */
      {1, 8, 9, 8, 8, 3, 1, 2, 8},   /* depthwise stride 2 */
      {2, 8, 5, 6, 12, 1, 0, 1, 4},  /* 4 groups, 1x1 */
      {1, 4, 6, 6, 6, 3, 1, 1, 2},   /* 2 groups, 3x3 */
  };
  for (const gshape &g : shapes) {
    const int cg = g.c / g.groups, P = g.p(), Q = g.q();
    const size_t nx = (size_t)g.n * g.c * g.h * g.w, nw = (size_t)g.k * cg * g.r * g.r,
                 ny = (size_t)g.n * g.k * P * Q;
    std::vector<float> x = random_vec(nx), w = random_vec(nw), dy = random_vec(ny);
    std::vector<double> ry(ny, 0.0), rdx(nx, 0.0), rdw(nw, 0.0);
    each_grouped_mac(g, [&](size_t xi, size_t wi, size_t yi) {
      ry[yi] += (double)x[xi] * w[wi];
      rdx[xi] += (double)dy[yi] * w[wi];
      rdw[wi] += (double)x[xi] * dy[yi];
    });
    for (int layout = 0; layout < 2; layout++) {
      const cudnnTensorFormat_t fmt = layout ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
      cudnnTensorDescriptor_t xd, yd;
      cudnnFilterDescriptor_t wd;
      cudnnConvolutionDescriptor_t cd;
      OK(cudnnCreateTensorDescriptor(&xd));
      OK(cudnnCreateTensorDescriptor(&yd));
      OK(cudnnCreateFilterDescriptor(&wd));
      OK(cudnnCreateConvolutionDescriptor(&cd));
      OK(cudnnSetTensor4dDescriptor(xd, fmt, CUDNN_DATA_FLOAT, g.n, g.c, g.h, g.w));
      OK(cudnnSetTensor4dDescriptor(yd, fmt, CUDNN_DATA_FLOAT, g.n, g.k, P, Q));
      OK(cudnnSetFilter4dDescriptor(wd, CUDNN_DATA_FLOAT, fmt, g.k, cg, g.r, g.r));
      OK(cudnnSetConvolution2dDescriptor(cd, g.pad, g.pad, g.stride, g.stride, 1, 1,
                                         CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
      OK(cudnnSetConvolutionMathType(cd, CUDNN_FMA_MATH));
      /* without the group count the filter's channels do not match the input */
      int on, oc, op, oq;
      EXPECT(cg == g.c ||
                 cudnnGetConvolution2dForwardOutputDim(cd, xd, wd, &on, &oc, &op, &oq) ==
                     CUDNN_STATUS_BAD_PARAM,
             "%d groups: refused before cudnnSetConvolutionGroupCount", g.groups);
      EXPECT(cudnnSetConvolutionGroupCount(cd, 0) == CUDNN_STATUS_BAD_PARAM, "0 groups refused");
      OK(cudnnSetConvolutionGroupCount(cd, g.groups));
      int got_groups = 0;
      OK(cudnnGetConvolutionGroupCount(cd, &got_groups));
      EXPECT(got_groups == g.groups, "group count %d read back as %d", g.groups, got_groups);
      OK(cudnnGetConvolution2dForwardOutputDim(cd, xd, wd, &on, &oc, &op, &oq));
      EXPECT(on == g.n && oc == g.k && op == P && oq == Q, "grouped output dim %dx%dx%dx%d", on,
             oc, op, oq);
      std::vector<char> xb = pack(x.data(), g.n, g.c, g.h, g.w, fmt, CUDNN_DATA_FLOAT),
                        wb = pack(w.data(), g.k, cg, g.r, g.r, fmt, CUDNN_DATA_FLOAT),
                        gb = pack(dy.data(), g.n, g.k, P, Q, fmt, CUDNN_DATA_FLOAT);
      void *px = upload(xb.data(), xb.size()), *pw = upload(wb.data(), wb.size()),
           *pg = upload(gb.data(), gb.size());
      void *py = dev(4 * ny), *pdx = dev(4 * nx), *pdw = dev(4 * nw);
      OK(cudnnConvolutionForward(h, &ONE, xd, px, wd, pw, cd,
                                 CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &ZERO, yd, py));
      OK(cudnnConvolutionBackwardData(h, &ONE, wd, pw, yd, pg, cd,
                                      CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, NULL, 0, &ZERO, xd, pdx));
      OK(cudnnConvolutionBackwardFilter(h, &ONE, xd, px, yd, pg, cd,
                                        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, NULL, 0, &ZERO, wd,
                                        pdw));
      const double ey =
          rel_err(unpack(py, g.n, g.k, P, Q, fmt, CUDNN_DATA_FLOAT).data(), ry.data(), ny);
      const double edx =
          rel_err(unpack(pdx, g.n, g.c, g.h, g.w, fmt, CUDNN_DATA_FLOAT).data(), rdx.data(), nx);
      const double edw =
          rel_err(unpack(pdw, g.k, cg, g.r, g.r, fmt, CUDNN_DATA_FLOAT).data(), rdw.data(), nw);
      EXPECT(ey < 1e-5 && edx < 1e-5 && edw < 1e-5,
             "%d groups %s: forward %g, backward data %g, filter %g", g.groups,
             layout ? "NHWC" : "NCHW", ey, edx, edw);
      cudaFree(px), cudaFree(pw), cudaFree(pg), cudaFree(py), cudaFree(pdx), cudaFree(pdw);
      cudnnDestroyTensorDescriptor(xd), cudnnDestroyTensorDescriptor(yd);
      cudnnDestroyFilterDescriptor(wd), cudnnDestroyConvolutionDescriptor(cd);
    }
  }
}

/* fp32 NCHW vs fp16 / bf16 NHWC on the same (representable) inputs: the
 * 16-bit results are the fp32 ones rounded once. */
static void test_types(cudnnHandle_t h) {
  const shape sh = {2, 8, 7, 6, 5, 3, 3, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION};
  const cudnnDataType_t types[2] = {CUDNN_DATA_HALF, CUDNN_DATA_BFLOAT16};
  const double ulp[2] = {1.0 / 2048, 1.0 / 256};
  for (int t = 0; t < 2; t++) {
    std::vector<float> x = random_vec(sh.nx()), w = random_vec(sh.nw());
    for (auto &v : x) v = t ? to_bf16(v) : to_half(v);
    for (auto &v : w) v = t ? to_bf16(v) : to_half(v);
    descs d32 = make_descs(sh, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, CUDNN_FMA_MATH);
    descs d16 = make_descs(sh, types[t], CUDNN_TENSOR_NHWC, CUDNN_TENSOR_OP_MATH);
    void *x32 = upload(x.data(), 4 * sh.nx()), *w32 = upload(w.data(), 4 * sh.nw());
    std::vector<char> xb = pack(x.data(), sh.n, sh.c, sh.h, sh.w, CUDNN_TENSOR_NHWC, types[t]);
    std::vector<char> wb = pack(w.data(), sh.k, sh.c, sh.r, sh.s, CUDNN_TENSOR_NHWC, types[t]);
    void *x16 = upload(xb.data(), xb.size()), *w16 = upload(wb.data(), wb.size());
    void *y32 = dev(4 * sh.ny()), *y16 = dev(2 * sh.ny());
    OK(cudnnConvolutionForward(h, &ONE, d32.x, x32, d32.w, w32, d32.cv,
                               CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &ZERO, d32.y,
                               y32));
    OK(cudnnConvolutionForward(h, &ONE, d16.x, x16, d16.w, w16, d16.cv,
                               CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &ZERO, d16.y,
                               y16));
    std::vector<float> a = download(y32, sh.ny());
    std::vector<float> b = unpack(y16, sh.n, sh.k, sh.p(), sh.q(), CUDNN_TENSOR_NHWC, types[t]);
    int bad = 0;
    for (size_t i = 0; i < sh.ny(); i++)
      if (fabs(a[i] - b[i]) > ulp[t] * fabs(a[i]) + 1e-5) bad++;
    EXPECT(bad == 0, "%s NHWC differs from fp32 NCHW beyond rounding at %d points",
           t ? "bf16" : "fp16", bad);
    /* the math type does not matter for 16-bit data */
    OK(cudnnSetConvolutionMathType(d16.cv, CUDNN_FMA_MATH));
    void *y16b = dev(2 * sh.ny());
    OK(cudnnConvolutionForward(h, &ONE, d16.x, x16, d16.w, w16, d16.cv,
                               CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &ZERO, d16.y,
                               y16b));
    std::vector<char> r1(2 * sh.ny()), r2(2 * sh.ny());
    cudaMemcpy(r1.data(), y16, r1.size(), cudaMemcpyDeviceToHost);
    cudaMemcpy(r2.data(), y16b, r2.size(), cudaMemcpyDeviceToHost);
    EXPECT(r1 == r2, "16-bit result depends on the math type");
    /* a 16-bit backward pass runs too (dy = y) */
    void *dx16 = dev(2 * sh.nx());
    OK(cudnnConvolutionBackwardData(h, &ONE, d16.w, w16, d16.y, y16, d16.cv,
                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, NULL, 0, &ZERO, d16.x,
                                    dx16));
    cudaFree(x32), cudaFree(w32), cudaFree(x16), cudaFree(w16), cudaFree(y32), cudaFree(y16);
    cudaFree(y16b), cudaFree(dx16);
    free_descs(d32);
    free_descs(d16);
  }
}

/* FLOAT data: default math rounds x and w to TF32, FMA math does not. */
static void test_tf32(cudnnHandle_t h) {
  const shape sh = {1, 16, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION};
  std::vector<float> x = random_vec(sh.nx()), w = random_vec(sh.nw());
  std::vector<float> xt = x, wt = w;
  for (auto &v : xt) v = tf32(v);
  for (auto &v : wt) v = tf32(v);
  std::vector<double> ref = ref_forward(sh, x.data(), w.data());
  std::vector<double> ref_t = ref_forward(sh, xt.data(), wt.data());
  void *px = upload(x.data(), 4 * sh.nx()), *pw = upload(w.data(), 4 * sh.nw());
  void *py = dev(4 * sh.ny());
  const cudnnMathType_t maths[3] = {CUDNN_FMA_MATH, CUDNN_DEFAULT_MATH, CUDNN_TENSOR_OP_MATH};
  for (int m = 0; m < 3; m++) {
    descs d = make_descs(sh, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, maths[m]);
    OK(cudnnConvolutionForward(h, &ONE, d.x, px, d.w, pw, d.cv,
                               CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &ZERO, d.y, py));
    std::vector<float> y = download(py, sh.ny());
    const double e = rel_err(y.data(), ref.data(), sh.ny());
    const double et = rel_err(y.data(), ref_t.data(), sh.ny());
    if (maths[m] == CUDNN_FMA_MATH)
      EXPECT(e < 1e-6 && et > 1e-5, "FMA math: error %g vs fp32, %g vs tf32", e, et);
    else
      EXPECT(et < 1e-6 && e > 1e-5, "math %d: error %g vs tf32, %g vs fp32", (int)maths[m], et, e);
    free_descs(d);
  }
  cudaFree(px), cudaFree(pw), cudaFree(py);
}

/* y = act(alpha1 conv + alpha2 z + bias) */
static void test_fused(cudnnHandle_t h) {
  const shape sh = {2, 4, 6, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION};
  descs d = make_descs(sh, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, CUDNN_FMA_MATH);
  cudnnTensorDescriptor_t bd;
  cudnnActivationDescriptor_t relu, ident;
  OK(cudnnCreateTensorDescriptor(&bd));
  OK(cudnnSetTensor4dDescriptor(bd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, sh.k, 1, 1));
  OK(cudnnCreateActivationDescriptor(&relu));
  OK(cudnnSetActivationDescriptor(relu, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
  OK(cudnnCreateActivationDescriptor(&ident));
  OK(cudnnSetActivationDescriptor(ident, CUDNN_ACTIVATION_IDENTITY, CUDNN_NOT_PROPAGATE_NAN, 0.0));
  std::vector<float> x = random_vec(sh.nx()), w = random_vec(sh.nw()), z = random_vec(sh.ny()),
                     b = random_vec(sh.k);
  void *px = upload(x.data(), 4 * sh.nx()), *pw = upload(w.data(), 4 * sh.nw());
  void *pz = upload(z.data(), 4 * sh.ny()), *pb = upload(b.data(), 4 * sh.k);
  void *py = dev(4 * sh.ny());
  const cudnnConvolutionFwdAlgo_t precomp = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
  size_t ws_bytes = 0;
  OK(cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.cv, d.y, precomp, &ws_bytes));
  void *ws = dev(ws_bytes);
  std::vector<double> conv = ref_forward(sh, x.data(), w.data());
  const int PQ = sh.p() * sh.q();
  const float a1 = 0.75f, a2 = -1.5f;

  /* ReLU, separate z */
  OK(cudnnConvolutionBiasActivationForward(h, &a1, d.x, px, d.w, pw, d.cv, precomp, ws, ws_bytes,
                                           &a2, d.y, pz, bd, pb, relu, d.y, py));
  std::vector<double> ref(sh.ny());
  int negatives = 0;
  for (size_t i = 0; i < sh.ny(); i++) {
    const double v = a1 * conv[i] + a2 * z[i] + b[(i / PQ) % sh.k];
    negatives += v < 0;
    ref[i] = v > 0 ? v : 0;
  }
  EXPECT(negatives > 0, "test data has no negative pre-activations");
  double e = rel_err(download(py, sh.ny()).data(), ref.data(), sh.ny());
  EXPECT(e < 1e-5, "bias + z + relu: error %g", e);

  /* identity, z aliasing y (y holds z), a non-PRECOMP algorithm refused */
  cudaMemcpy(py, z.data(), 4 * sh.ny(), cudaMemcpyHostToDevice);
  OK(cudnnConvolutionBiasActivationForward(h, &a1, d.x, px, d.w, pw, d.cv, precomp, ws, ws_bytes,
                                           &a2, d.y, py, bd, pb, ident, d.y, py));
  for (size_t i = 0; i < sh.ny(); i++) ref[i] = a1 * conv[i] + a2 * z[i] + b[(i / PQ) % sh.k];
  e = rel_err(download(py, sh.ny()).data(), ref.data(), sh.ny());
  EXPECT(e < 1e-5, "bias + z (aliasing y) + identity: error %g", e);
  EXPECT(cudnnConvolutionBiasActivationForward(
             h, &a1, d.x, px, d.w, pw, d.cv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, ws, ws_bytes,
             &a2, d.y, pz, bd, pb, ident, d.y, py) == CUDNN_STATUS_NOT_SUPPORTED,
         "identity with IMPLICIT_GEMM accepted");

  /* alpha2 = 0 with z = y full of NaN: z is not read */
  void *pn = dev(4 * sh.ny());
  const float zero = 0.0f;
  OK(cudnnConvolutionBiasActivationForward(h, &ONE, d.x, px, d.w, pw, d.cv,
                                           CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, ws, ws_bytes,
                                           &zero, d.y, pn, bd, pb, relu, d.y, pn));
  for (size_t i = 0; i < sh.ny(); i++) {
    const double v = conv[i] + b[(i / PQ) % sh.k];
    ref[i] = v > 0 ? v : 0;
  }
  e = rel_err(download(pn, sh.ny()).data(), ref.data(), sh.ny());
  EXPECT(e < 1e-5, "alpha2 = 0 over NaN z: error %g", e);

  /* cudnnAddTensor: y = conv + bias through beta = 1, then beta = 0 over NaN */
  OK(cudnnConvolutionForward(h, &ONE, d.x, px, d.w, pw, d.cv,
                             CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &ZERO, d.y, py));
  OK(cudnnAddTensor(h, &ONE, bd, pb, &ONE, d.y, py));
  for (size_t i = 0; i < sh.ny(); i++) ref[i] = conv[i] + b[(i / PQ) % sh.k];
  e = rel_err(download(py, sh.ny()).data(), ref.data(), sh.ny());
  EXPECT(e < 1e-5, "cudnnAddTensor broadcast: error %g", e);
  void *pn2 = dev(4 * sh.ny());
  const float three = 3.0f;
  OK(cudnnAddTensor(h, &three, bd, pb, &ZERO, d.y, pn2));
  std::vector<float> yb = download(pn2, sh.ny());
  int bad = 0;
  for (size_t i = 0; i < sh.ny(); i++) bad += yb[i] != 3.0f * b[(i / PQ) % sh.k];
  EXPECT(bad == 0, "cudnnAddTensor beta = 0 read C (%d bad)", bad);

  /* HALF: bias in HALF accepted, a FLOAT bias refused */
  descs h16 = make_descs(sh, CUDNN_DATA_HALF, CUDNN_TENSOR_NHWC, CUDNN_TENSOR_OP_MATH);
  cudnnTensorDescriptor_t bd16;
  OK(cudnnCreateTensorDescriptor(&bd16));
  OK(cudnnSetTensor4dDescriptor(bd16, CUDNN_TENSOR_NCHW, CUDNN_DATA_HALF, 1, sh.k, 1, 1));
  void *x16 = dev(2 * sh.nx()), *w16 = dev(2 * sh.nw()), *y16 = dev(2 * sh.ny()),
       *b16 = dev(2 * sh.k);
  EXPECT(cudnnConvolutionBiasActivationForward(h, &ONE, h16.x, x16, h16.w, w16, h16.cv, precomp, ws,
                                               ws_bytes, &zero, h16.y, y16, bd16, b16, relu, h16.y,
                                               y16) == CUDNN_STATUS_SUCCESS,
         "fp16 fused with an fp16 bias refused");
  EXPECT(cudnnConvolutionBiasActivationForward(h, &ONE, h16.x, x16, h16.w, w16, h16.cv, precomp, ws,
                                               ws_bytes, &zero, h16.y, y16, bd, pb, relu, h16.y,
                                               y16) == CUDNN_STATUS_NOT_SUPPORTED,
         "fp16 fused with an fp32 bias accepted");
  cudaFree(x16), cudaFree(w16), cudaFree(y16), cudaFree(b16);
  cudnnDestroyTensorDescriptor(bd16);
  free_descs(h16);

  cudaFree(px), cudaFree(pw), cudaFree(pz), cudaFree(pb), cudaFree(py), cudaFree(ws);
  cudaFree(pn), cudaFree(pn2);
  cudnnDestroyTensorDescriptor(bd);
  cudnnDestroyActivationDescriptor(relu);
  cudnnDestroyActivationDescriptor(ident);
  free_descs(d);
}

static void test_refusals(cudnnHandle_t h) {
  const shape sh = {1, 4, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION};
  descs d = make_descs(sh, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, CUDNN_FMA_MATH);
  void *px = dev(4 * sh.nx()), *pw = dev(4 * sh.nw()), *py = dev(4 * sh.ny());
  const cudnnConvolutionFwdAlgo_t precomp = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
  size_t need = 0;
  OK(cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.cv, d.y, precomp, &need));
  EXPECT(need > 0, "PRECOMP_GEMM needs no workspace");
  void *ws = dev(need);
  EXPECT(cudnnConvolutionForward(h, &ONE, d.x, px, d.w, pw, d.cv, precomp, ws, need - 1, &ZERO, d.y,
                                 py) == CUDNN_STATUS_BAD_PARAM,
         "too small workspace accepted");
  EXPECT(cudnnConvolutionForward(h, &ONE, d.x, px, d.w, pw, d.cv, precomp, NULL, need, &ZERO, d.y,
                                 py) == CUDNN_STATUS_BAD_PARAM,
         "NULL workspace accepted");
  OK(cudnnConvolutionForward(h, &ONE, d.x, px, d.w, pw, d.cv, precomp, ws, need, &ZERO, d.y, py));
  size_t fft = 0;
  EXPECT(cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.cv, d.y,
                                                 CUDNN_CONVOLUTION_FWD_ALGO_FFT,
                                                 &fft) == CUDNN_STATUS_NOT_SUPPORTED,
         "FFT workspace size given");

  /* host pointers, short buffers, device scalars */
  std::vector<float> host(sh.nx());
  EXPECT(cudnnConvolutionForward(h, &ONE, d.x, host.data(), d.w, pw, d.cv,
                                 CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &ZERO, d.y,
                                 py) == CUDNN_STATUS_BAD_PARAM,
         "host x accepted");
  EXPECT(cudnnConvolutionForward(h, &ONE, d.x, (char *)px + 4, d.w, pw, d.cv,
                                 CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &ZERO, d.y,
                                 py) == CUDNN_STATUS_BAD_PARAM,
         "x running past its allocation accepted");
  EXPECT(cudnnConvolutionForward(h, px, d.x, px, d.w, pw, d.cv,
                                 CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &ZERO, d.y,
                                 py) == CUDNN_STATUS_BAD_PARAM,
         "device alpha accepted");

  /* shapes */
  cudnnTensorDescriptor_t t;
  OK(cudnnCreateTensorDescriptor(&t));
  EXPECT(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 0, 4, 4) ==
             CUDNN_STATUS_BAD_PARAM,
         "zero dimension accepted");
  EXPECT(cudnnConvolutionForward(h, &ONE, d.x, px, d.w, pw, d.cv,
                                 CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &ZERO, t,
                                 py) == CUDNN_STATUS_BAD_PARAM,
         "unset y descriptor accepted");
  OK(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 3, 8, 8));
  EXPECT(cudnnConvolutionForward(h, &ONE, d.x, px, d.w, pw, d.cv,
                                 CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &ZERO, t,
                                 py) == CUDNN_STATUS_BAD_PARAM,
         "y with the wrong channel count accepted");
  OK(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 4, 7, 8));
  EXPECT(cudnnConvolutionForward(h, &ONE, d.x, px, d.w, pw, d.cv,
                                 CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &ZERO, t,
                                 py) == CUDNN_STATUS_NOT_SUPPORTED,
         "y with the wrong height accepted");
  OK(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, CUDNN_DATA_HALF, 1, 4, 8, 8));
  EXPECT(cudnnConvolutionForward(h, &ONE, d.x, px, d.w, pw, d.cv,
                                 CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &ZERO, t,
                                 py) == CUDNN_STATUS_BAD_PARAM,
         "y of another data type accepted");
  OK(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 5, 8, 8));
  int n, c, p, q;
  EXPECT(cudnnGetConvolution2dForwardOutputDim(d.cv, t, d.w, &n, &c, &p, &q) ==
             CUDNN_STATUS_BAD_PARAM,
         "input with the wrong channel count accepted");
  EXPECT(cudnnGetConvolution2dForwardOutputDim(d.cv, NULL, d.w, &n, &c, &p, &q) ==
             CUDNN_STATUS_BAD_PARAM,
         "NULL descriptor accepted");
  cudnnConvolutionDescriptor_t cv;
  OK(cudnnCreateConvolutionDescriptor(&cv));
  EXPECT(cudnnSetConvolution2dDescriptor(cv, -1, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                         CUDNN_DATA_FLOAT) == CUDNN_STATUS_BAD_PARAM,
         "negative padding accepted");
  EXPECT(cudnnSetConvolution2dDescriptor(cv, 0, 0, 0, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                         CUDNN_DATA_FLOAT) == CUDNN_STATUS_BAD_PARAM,
         "zero stride accepted");
  /* HALF compute type on FLOAT data: not a supported configuration */
  OK(cudnnSetConvolution2dDescriptor(cv, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                     CUDNN_DATA_HALF));
  EXPECT(cudnnConvolutionForward(h, &ONE, d.x, px, d.w, pw, cv,
                                 CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &ZERO, d.y,
                                 py) == CUDNN_STATUS_NOT_SUPPORTED,
         "FLOAT data with a HALF compute type accepted");
  cudnnDestroyConvolutionDescriptor(cv);
  cudnnDestroyTensorDescriptor(t);
  EXPECT(strcmp(cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM), "CUDNN_STATUS_BAD_PARAM") == 0,
         "error string %s", cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM));
  cudaFree(px), cudaFree(pw), cudaFree(py), cudaFree(ws);
  free_descs(d);
}

template <class Perf> static void check_perf(const char *what, const Perf *perf, int n, int want) {
  EXPECT(n == want, "%s: %d results, expected %d", what, n, want);
  int seen_fail = 0;
  for (int i = 0; i < n; i++) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) {
      seen_fail = 1;
      continue;
    }
    EXPECT(!seen_fail, "%s: a success after a failure", what);
    EXPECT(i == 0 || perf[i - 1].time <= perf[i].time, "%s: not sorted by time", what);
  }
  EXPECT(n > 0 && perf[0].status == CUDNN_STATUS_SUCCESS, "%s: no algorithm succeeded", what);
}

static int all_nan(const void *d, size_t n) {
  std::vector<float> v = download(d, n);
  for (float f : v)
    if (f == f) return 0;
  return 1;
}

static void test_find(cudnnHandle_t h) {
  const shape sh = {2, 4, 8, 8, 6, 3, 3, 1, 1, 2, 2, 1, 1, CUDNN_CROSS_CORRELATION};
  descs d = make_descs(sh, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, CUDNN_FMA_MATH);
  std::vector<float> ones(sh.nx() + sh.ny() + sh.nw(), 1.0f);
  void *px = upload(ones.data(), 4 * sh.nx()), *pw = upload(ones.data(), 4 * sh.nw());
  void *py = upload(ones.data(), 4 * sh.ny()), *pdx = upload(ones.data(), 4 * sh.nx());
  void *pdw = upload(ones.data(), 4 * sh.nw());
  const size_t ws_bytes = 1 << 20;
  void *ws = dev(ws_bytes);
  int n = 0;
  cudnnConvolutionFwdAlgoPerf_t fp[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  OK(cudnnFindConvolutionForwardAlgorithmEx(
      h, d.x, px, d.w, pw, d.cv, d.y, py, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, fp, ws, ws_bytes));
  check_perf("forward", fp, n, CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
  EXPECT(all_nan(py, sh.ny()), "forward Find left y readable");
  /* every successful candidate runs, with its reported workspace */
  for (int i = 0; i < n; i++)
    if (fp[i].status == CUDNN_STATUS_SUCCESS)
      OK(cudnnConvolutionForward(h, &ONE, d.x, px, d.w, pw, d.cv, fp[i].algo, ws, fp[i].memory,
                                 &ZERO, d.y, py));
  /* no workspace: algorithms needing one fail */
  OK(cudnnFindConvolutionForwardAlgorithmEx(h, d.x, px, d.w, pw, d.cv, d.y, py, 3, &n, fp, NULL,
                                            0));
  EXPECT(n == 3, "requestedAlgoCount 3 gave %d", n);
  for (int i = 0; i < n; i++)
    EXPECT(fp[i].status != CUDNN_STATUS_SUCCESS || fp[i].memory == 0,
           "algorithm %d succeeded without its %zu-byte workspace", (int)fp[i].algo, fp[i].memory);

  cudnnConvolutionBwdDataAlgoPerf_t dp[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  OK(cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w, pw, d.y, py, d.cv, d.x, pdx,
                                                 CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, dp, ws,
                                                 ws_bytes));
  check_perf("backward data", dp, n, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
  EXPECT(all_nan(pdx, sh.nx()), "backward-data Find left dx readable");
  cudnnConvolutionBwdFilterAlgoPerf_t wp[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  OK(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.x, px, d.y, py, d.cv, d.w, pdw,
                                                   CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, wp,
                                                   ws, ws_bytes));
  check_perf("backward filter", wp, n, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
  EXPECT(all_nan(pdw, sh.nw()), "backward-filter Find left dw readable");

  /* refused during capture; the capture is invalidated */
  cudaStream_t s;
  cudaStreamCreate(&s);
  OK(cudnnSetStream(h, s));
  EXPECT(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess,
         "begin capture");
  EXPECT(cudnnFindConvolutionForwardAlgorithmEx(h, d.x, px, d.w, pw, d.cv, d.y, py, 1, &n, fp, ws,
                                                ws_bytes) != CUDNN_STATUS_SUCCESS,
         "Find accepted during capture");
  cudaGraph_t g = NULL;
  EXPECT(cudaStreamEndCapture(s, &g) != cudaSuccess, "capture survived a Find");
  if (g) cudaGraphDestroy(g);
  OK(cudnnSetStream(h, NULL));
  cudaStreamDestroy(s);
  cudaFree(px), cudaFree(pw), cudaFree(py), cudaFree(pdx), cudaFree(pdw), cudaFree(ws);
  free_descs(d);
}

/* A convolution captured into a graph runs at launch, with alpha as it was
 * when captured. */
static void test_capture(cudnnHandle_t h) {
  const shape sh = {1, 3, 6, 6, 2, 3, 3, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION};
  descs d = make_descs(sh, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, CUDNN_FMA_MATH);
  std::vector<float> x = random_vec(sh.nx()), w = random_vec(sh.nw());
  std::vector<float> zeros(sh.ny(), 0.0f);
  void *px = upload(x.data(), 4 * sh.nx()), *pw = upload(w.data(), 4 * sh.nw());
  void *py = upload(zeros.data(), 4 * sh.ny());
  cudaStream_t s;
  cudaStreamCreate(&s);
  OK(cudnnSetStream(h, s));
  float alpha = 3.0f;
  cudaGraph_t g = NULL;
  cudaGraphExec_t ge = NULL;
  EXPECT(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess, "begin");
  OK(cudnnConvolutionForward(h, &alpha, d.x, px, d.w, pw, d.cv,
                             CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &ZERO, d.y, py));
  EXPECT(cudaStreamEndCapture(s, &g) == cudaSuccess && g, "end capture");
  alpha = 100.0f;
  std::vector<float> before = download(py, sh.ny());
  EXPECT(before == zeros, "captured work ran before the launch");
  if (g && cudaGraphInstantiate(&ge, g, 0) == cudaSuccess) {
    cudaGraphLaunch(ge, s);
    cudaStreamSynchronize(s);
    std::vector<double> ref = ref_forward(sh, x.data(), w.data());
    for (auto &v : ref) v *= 3.0;
    const double e = rel_err(download(py, sh.ny()).data(), ref.data(), sh.ny());
    EXPECT(e < 1e-5, "graph launch: error %g (alpha must be the captured 3)", e);
    cudaGraphExecDestroy(ge);
  }
  if (g) cudaGraphDestroy(g);
  OK(cudnnSetStream(h, NULL));
  cudaStreamDestroy(s);
  cudaFree(px), cudaFree(pw), cudaFree(py);
  free_descs(d);
}

/* ---- cuBLAS ---- */

static void test_sgemm(void) {
  cublasHandle_t b;
  EXPECT(cublasCreate(&b) == CUBLAS_STATUS_SUCCESS, "cublasCreate");
  EXPECT(cublasSetMathMode(b, CUBLAS_DEFAULT_MATH) == CUBLAS_STATUS_SUCCESS, "math mode");
  const int m = 13, n = 9, k = 21;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      /* A stored (ta ? k x m : m x k), B (tb ? n x k : k x n), column-major, padded lds */
      const int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
      const int lda = ar + 3, ldb = br + 1, ldc = m + 2;
      std::vector<float> A = random_vec((size_t)lda * ac), B = random_vec((size_t)ldb * bc);
      std::vector<float> C0 = random_vec((size_t)ldc * n);
      float *pa = (float *)upload(A.data(), 4 * A.size()),
            *pb = (float *)upload(B.data(), 4 * B.size());
      float *pc = (float *)dev(4 * C0.size()); /* NaN: beta = 0 must not read it */
      const cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                              ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
      std::vector<double> ref((size_t)ldc * n, 0.0), ref_t((size_t)ldc * n, 0.0);
      for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++)
          for (int l = 0; l < k; l++) {
            const float av = ta ? A[l + (size_t)i * lda] : A[i + (size_t)l * lda];
            const float bv = tb ? B[j + (size_t)l * ldb] : B[l + (size_t)j * ldb];
            ref[i + (size_t)j * ldc] += (double)av * bv;
            ref_t[i + (size_t)j * ldc] += (double)tf32(av) * tf32(bv);
          }
      const float one = 1.0f, zero = 0.0f, half = 0.5f;
      EXPECT(cublasSgemm(b, oa, ob, m, n, k, &one, pa, lda, pb, ldb, &zero, pc, ldc) ==
                 CUBLAS_STATUS_SUCCESS,
             "sgemm %d%d", ta, tb);
      std::vector<float> C = download(pc, C0.size());
      double e = 0, mx = 1e-30;
      for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
          e = fmax(e, fabs(C[i + (size_t)j * ldc] - ref[i + (size_t)j * ldc]));
          mx = fmax(mx, fabs(ref[i + (size_t)j * ldc]));
        }
      EXPECT(e / mx < 1e-6, "sgemm trans %d%d: error %g", ta, tb, e / mx);
      /* padding rows of C untouched (still NaN) */
      EXPECT(C[m] != C[m], "sgemm wrote C's padding");
      /* C = 1 * op(A) op(B) + 0.5 C */
      cudaMemcpy(pc, C0.data(), 4 * C0.size(), cudaMemcpyHostToDevice);
      cublasSgemm(b, oa, ob, m, n, k, &one, pa, lda, pb, ldb, &half, pc, ldc);
      C = download(pc, C0.size());
      e = 0;
      for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
          const size_t o = i + (size_t)j * ldc;
          e = fmax(e, fabs(C[o] - (ref[o] + 0.5 * C0[o])));
        }
      EXPECT(e / mx < 1e-6, "sgemm beta: error %g", e / mx);
      /* TF32 */
      EXPECT(cublasSetMathMode(b, CUBLAS_TF32_TENSOR_OP_MATH) == CUBLAS_STATUS_SUCCESS, "tf32");
      cublasSgemm(b, oa, ob, m, n, k, &one, pa, lda, pb, ldb, &zero, pc, ldc);
      C = download(pc, C0.size());
      double et = 0, ef = 0;
      for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
          const size_t o = i + (size_t)j * ldc;
          et = fmax(et, fabs(C[o] - ref_t[o]));
          ef = fmax(ef, fabs(C[o] - ref[o]));
        }
      EXPECT(et / mx < 1e-6 && ef / mx > 1e-5, "sgemm TF32: %g vs tf32, %g vs fp32", et / mx,
             ef / mx);
      cublasSetMathMode(b, CUBLAS_DEFAULT_MATH);
      cudaFree(pa), cudaFree(pb), cudaFree(pc);
    }
  /* argument checks */
  float *pa = (float *)dev(4 * 64), *pc = (float *)dev(4 * 64);
  const float one = 1.0f;
  std::vector<float> host(64);
  EXPECT(cublasSgemm(b, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, pa, 3, pa, 4, &one, pc, 4) ==
             CUBLAS_STATUS_INVALID_VALUE,
         "lda < m accepted");
  EXPECT(cublasSgemm(b, CUBLAS_OP_T, CUBLAS_OP_N, 8, 4, 4, &one, pa, 4, pa, 4, &one, pc, 8) ==
             CUBLAS_STATUS_SUCCESS,
         "lda = k with transa rejected");
  EXPECT(cublasSgemm(b, CUBLAS_OP_N, CUBLAS_OP_T, 4, 4, 4, &one, pa, 4, pa, 3, &one, pc, 4) ==
             CUBLAS_STATUS_INVALID_VALUE,
         "ldb < n with transb accepted");
  EXPECT(cublasSgemm(b, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, pa, 4, pa, 4, &one, pc, 3) ==
             CUBLAS_STATUS_INVALID_VALUE,
         "ldc < m accepted");
  EXPECT(cublasSgemm(b, CUBLAS_OP_N, CUBLAS_OP_N, -1, 4, 4, &one, pa, 4, pa, 4, &one, pc, 4) ==
             CUBLAS_STATUS_INVALID_VALUE,
         "negative m accepted");
  EXPECT(cublasSgemm(b, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, host.data(), 4, pa, 4, &one, pc,
                     4) == CUBLAS_STATUS_INVALID_VALUE,
         "host A accepted");
  EXPECT(cublasSgemm(b, CUBLAS_OP_N, CUBLAS_OP_N, 9, 4, 5, &one, pa, 16, pa, 5, &one, pc, 9) ==
             CUBLAS_STATUS_INVALID_VALUE,
         "A past its allocation accepted"); /* A needs 16 * 4 + 9 = 73 of the 64 floats */
  EXPECT(cublasSgemm(b, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, pa, pa, 4, pa, 4, &one, pc, 4) ==
             CUBLAS_STATUS_INVALID_VALUE,
         "device alpha accepted in host pointer mode");
  EXPECT(strcmp(cublasGetStatusName(CUBLAS_STATUS_INVALID_VALUE), "CUBLAS_STATUS_INVALID_VALUE") ==
             0,
         "status name");
  cudaFree(pa), cudaFree(pc);
  EXPECT(cublasDestroy(b) == CUBLAS_STATUS_SUCCESS, "cublasDestroy");
}

/* INT8 NHWC x and w, INT32 compute, FLOAT y: exact sums (a naive int64 loop), then alpha / beta */
static void test_int8(cudnnHandle_t h) {
  const int N = 2, C = 8, H = 7, W = 5, K = 12, R = 3, S = 3, pad = 1, stride = 2;
  const int P = (H + 2 * pad - R) / stride + 1, Q = (W + 2 * pad - S) / stride + 1;
  std::vector<int8_t> x((size_t)N * H * W * C), w((size_t)K * R * S * C);
  for (auto &v : x) v = (int8_t)(int)(uniform() * 128.0f);
  for (auto &v : w) v = (int8_t)(int)(uniform() * 127.0f);
  x[0] = -128, w[0] = -127, w[1] = 127;
  cudnnTensorDescriptor_t xd, yd;
  cudnnFilterDescriptor_t wd;
  cudnnConvolutionDescriptor_t cv;
  OK(cudnnCreateTensorDescriptor(&xd));
  OK(cudnnCreateTensorDescriptor(&yd));
  OK(cudnnCreateFilterDescriptor(&wd));
  OK(cudnnCreateConvolutionDescriptor(&cv));
  OK(cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NHWC, CUDNN_DATA_INT8, N, C, H, W));
  OK(cudnnSetFilter4dDescriptor(wd, CUDNN_DATA_INT8, CUDNN_TENSOR_NHWC, K, C, R, S));
  OK(cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, N, K, P, Q));
  OK(cudnnSetConvolution2dDescriptor(cv, pad, pad, stride, stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                     CUDNN_DATA_INT32));
  void *px = upload(x.data(), x.size()), *pw = upload(w.data(), w.size());
  std::vector<float> y0((size_t)N * P * Q * K, 3.0f);
  void *py = upload(y0.data(), 4 * y0.size());
  const cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
  size_t ws_bytes = 0;
  OK(cudnnGetConvolutionForwardWorkspaceSize(h, xd, wd, cv, yd, algo, &ws_bytes));
  void *ws = ws_bytes ? dev(ws_bytes) : NULL;
  const float alpha = 0.5f, beta = 2.0f;
  OK(cudnnConvolutionForward(h, &alpha, xd, px, wd, pw, cv, algo, ws, ws_bytes, &beta, yd, py));
  std::vector<float> got = download(py, y0.size());
  int bad = 0;
  for (int n = 0; n < N; n++)
    for (int p = 0; p < P; p++)
      for (int q = 0; q < Q; q++)
        for (int k = 0; k < K; k++) {
          long long acc = 0;
          for (int r = 0; r < R; r++)
            for (int s2 = 0; s2 < S; s2++) {
              const int ih = p * stride - pad + r, iw = q * stride - pad + s2;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              for (int c = 0; c < C; c++)
                acc += (long long)x[(((size_t)n * H + ih) * W + iw) * C + c] *
                       w[(((size_t)k * R + r) * S + s2) * C + c];
            }
          const float want = alpha * (float)acc + beta * 3.0f;
          if (got[(((size_t)n * P + p) * Q + q) * K + k] != want) bad++;
        }
  EXPECT(bad == 0, "int8 forward: %d of %zu outputs differ from the exact sums", bad, got.size());

  /* a sum beyond 2^24 (a float GEMM would round it): 1 x 1 convolution over 1100 channels of
   * 127 * 127 */
  {
    const int CC = 1100;
    std::vector<int8_t> xb(CC, 127), wb((size_t)4 * CC, 127);
    cudnnTensorDescriptor_t xbd, ybd;
    cudnnFilterDescriptor_t wbd;
    cudnnConvolutionDescriptor_t cb;
    OK(cudnnCreateTensorDescriptor(&xbd));
    OK(cudnnCreateTensorDescriptor(&ybd));
    OK(cudnnCreateFilterDescriptor(&wbd));
    OK(cudnnCreateConvolutionDescriptor(&cb));
    OK(cudnnSetTensor4dDescriptor(xbd, CUDNN_TENSOR_NHWC, CUDNN_DATA_INT8, 1, CC, 1, 1));
    OK(cudnnSetFilter4dDescriptor(wbd, CUDNN_DATA_INT8, CUDNN_TENSOR_NHWC, 4, CC, 1, 1));
    OK(cudnnSetTensor4dDescriptor(ybd, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 4, 1, 1));
    OK(cudnnSetConvolution2dDescriptor(cb, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                       CUDNN_DATA_INT32));
    void *pxb = upload(xb.data(), xb.size()), *pwb = upload(wb.data(), wb.size());
    void *pyb = dev(16);
    size_t wsb = 0;
    OK(cudnnGetConvolutionForwardWorkspaceSize(h, xbd, wbd, cb, ybd, algo, &wsb));
    void *wsp = wsb ? dev(wsb) : NULL;
    OK(cudnnConvolutionForward(h, &ONE, xbd, pxb, wbd, pwb, cb, algo, wsp, wsb, &ZERO, ybd, pyb));
    std::vector<float> yb = download(pyb, 4);
    EXPECT(yb[0] == (float)(127LL * 127 * CC), "int8 large sum: %.1f, expected %lld", yb[0],
           127LL * 127 * CC);
    cudaFree(pxb), cudaFree(pwb), cudaFree(pyb), cudaFree(wsp);
    cudnnDestroyTensorDescriptor(xbd), cudnnDestroyTensorDescriptor(ybd);
    cudnnDestroyFilterDescriptor(wbd), cudnnDestroyConvolutionDescriptor(cb);
  }

  /* refused: another algorithm, a FLOAT compute type, int8 y, NCHW, channels not a multiple of
   * 4, the backward directions, the fused call */
  EXPECT(cudnnConvolutionForward(h, &ONE, xd, px, wd, pw, cv, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, ws,
                                 1 << 20, &ZERO, yd, py) == CUDNN_STATUS_NOT_SUPPORTED,
         "int8 with FWD_ALGO_GEMM accepted");
  cudnnConvolutionDescriptor_t cf;
  OK(cudnnCreateConvolutionDescriptor(&cf));
  OK(cudnnSetConvolution2dDescriptor(cf, pad, pad, stride, stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                     CUDNN_DATA_FLOAT));
  EXPECT(cudnnConvolutionForward(h, &ONE, xd, px, wd, pw, cf, algo, ws, ws_bytes, &ZERO, yd, py) ==
             CUDNN_STATUS_BAD_PARAM,
         "int8 with a FLOAT compute type accepted");
  cudnnTensorDescriptor_t t;
  OK(cudnnCreateTensorDescriptor(&t));
  OK(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NHWC, CUDNN_DATA_INT8, N, K, P, Q));
  EXPECT(cudnnConvolutionForward(h, &ONE, xd, px, wd, pw, cv, algo, ws, ws_bytes, &ZERO, t, py) ==
             CUDNN_STATUS_NOT_SUPPORTED,
         "int8 y accepted");
  OK(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, CUDNN_DATA_INT8, N, C, H, W));
  EXPECT(cudnnConvolutionForward(h, &ONE, t, px, wd, pw, cv, algo, ws, ws_bytes, &ZERO, yd, py) ==
             CUDNN_STATUS_NOT_SUPPORTED,
         "int8 NCHW x accepted");
  cudnnFilterDescriptor_t w6;
  OK(cudnnCreateFilterDescriptor(&w6));
  OK(cudnnSetFilter4dDescriptor(w6, CUDNN_DATA_INT8, CUDNN_TENSOR_NHWC, K, 6, R, S));
  OK(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NHWC, CUDNN_DATA_INT8, N, 6, H, W));
  EXPECT(cudnnConvolutionForward(h, &ONE, t, px, w6, pw, cv, algo, ws, ws_bytes, &ZERO, yd, py) ==
             CUDNN_STATUS_NOT_SUPPORTED,
         "int8 with 6 input channels accepted");
  EXPECT(cudnnConvolutionBackwardData(h, &ONE, wd, pw, yd, py, cv,
                                      CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, ws, 1 << 20, &ZERO, xd,
                                      px) != CUDNN_STATUS_SUCCESS,
         "int8 backward data accepted");
  cudnnActivationDescriptor_t act;
  OK(cudnnCreateActivationDescriptor(&act));
  OK(cudnnSetActivationDescriptor(act, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
  cudnnTensorDescriptor_t bd;
  OK(cudnnCreateTensorDescriptor(&bd));
  OK(cudnnSetTensor4dDescriptor(bd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, K, 1, 1));
  EXPECT(cudnnConvolutionBiasActivationForward(h, &ONE, xd, px, wd, pw, cv, algo, ws, ws_bytes,
                                               &ZERO, yd, py, bd, py, act, yd,
                                               py) == CUDNN_STATUS_NOT_SUPPORTED,
         "int8 in the fused call accepted");
  cudnnDestroyActivationDescriptor(act);
  cudnnDestroyTensorDescriptor(bd);
  cudnnDestroyFilterDescriptor(w6);
  cudnnDestroyTensorDescriptor(t);
  cudnnDestroyConvolutionDescriptor(cf);
  cudaFree(px), cudaFree(pw), cudaFree(py);
  if (ws) cudaFree(ws);
  cudnnDestroyTensorDescriptor(xd), cudnnDestroyTensorDescriptor(yd);
  cudnnDestroyFilterDescriptor(wd), cudnnDestroyConvolutionDescriptor(cv);
}

int main(void) {
  cudnnHandle_t h;
  OK(cudnnCreate(&h));
  test_forward(h);
  test_backward(h);
  test_grouped(h);
  test_types(h);
  test_tf32(h);
  test_fused(h);
  test_refusals(h);
  test_find(h);
  test_capture(h);
  test_sgemm();
  test_int8(h);
  OK(cudnnDestroy(h));
  printf("test_emu_cudnn: %d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
