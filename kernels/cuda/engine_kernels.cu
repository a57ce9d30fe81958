/* Kernels of the CUDA inference engine, on NHWC tensors in the engine's
 * storage type T (float, __half or __nv_bfloat16; arithmetic in float):
 * weight conversion, NCHW float input -> NHWC T (channels padded with 0),
 * max and average pooling, global average pooling (+ the BNNeck affine map)
 * into float embeddings or into T, the bias + residual + activation epilogue
 * used when cuDNN cannot fuse it into the convolution, and the elementwise
 * ops (add, channel gate, activation) of the graphs that are not ResNets,
 * instance norm (each plane's statistics, then a per-plane affine map) and
 * the channel-range map behind standalone batch norm, channel slices and
 * concatenation.
 * int8 (cuda_engine_int8.c): max pooling on the codes, the input's
 * quantization, the epilogue of the int8 convolutions and the global average
 * pooling of codes. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda_engine.h"
#include "cuda_kernels.cuh"

template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) {
  return v;
}
template <> __device__ __forceinline__ __half from_f<__half>(float v) {
  return __float2half_rn(v);
}
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
/* int8 codes through max pooling: the max of codes is a code (exact in float) */
template <> __device__ __forceinline__ int8_t from_f<int8_t>(float v) {
  return (int8_t)v;
}
__device__ __forceinline__ float to_f(int8_t v) {
  return (float)v;
}
__device__ __forceinline__ float to_f(float v) {
  return v;
}
__device__ __forceinline__ float to_f(__half v) {
  return __half2float(v);
}
__device__ __forceinline__ float to_f(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

static const int THREADS = 256;

template <typename T> __global__ void k_convert(size_t n, const float *src, T *dst) {
  GRID_STRIDE(i, n) dst[i] = from_f<T>(src[i]);
}

/* y[i, r, col, ch] = ch < c ? x[i, ch, r, col] : 0 */
template <typename T>
__global__ void k_nchw_to_nhwc(size_t total, int c, int h, int w, int cpad, const float *x, T *y) {
  GRID_STRIDE(o, total) {
    const int ch = (int)(o % cpad);
    const size_t pix = o / cpad; /* (i h + r) w + col */
    const int col = (int)(pix % w), r = (int)((pix / w) % h);
    const size_t i = pix / ((size_t)w * h);
    y[o] = from_f<T>(ch < c ? x[((i * c + ch) * h + r) * w + col] : 0.0f);
  }
}

/* PyTorch's pooling on NHWC: max (padding never wins, first max, NaN propagates) or average
 * (padded positions counted: the sum over the window / k^2) */
template <typename T>
__global__ void k_pool_nhwc(size_t total, int c, int h, int w, int k, int stride, int pad, int ho,
                            int wo, int avg, const T *x, T *y) {
  GRID_STRIDE(o, total) {
    const int ch = (int)(o % c);
    const size_t pix = o / c;
    const int ow = (int)(pix % wo), oh = (int)((pix / wo) % ho);
    const size_t i = pix / ((size_t)wo * ho);
    const int ih0 = oh * stride - pad, iw0 = ow * stride - pad;
    const int ih_lo = ih0 < 0 ? 0 : ih0, ih_hi = ih0 + k < h ? ih0 + k : h;
    const int iw_lo = iw0 < 0 ? 0 : iw0, iw_hi = iw0 + k < w ? iw0 + k : w;
    float m = -INFINITY, sum = 0.0f;
    for (int ih = ih_lo; ih < ih_hi; ih++)
      for (int iw = iw_lo; iw < iw_hi; iw++) {
        const float v = to_f(x[((i * h + ih) * w + iw) * c + ch]);
        sum += v;
        if (v > m || isnan(v)) m = v;
      }
    y[o] = from_f<T>(avg ? sum * (1.0f / (float)(k * k)) : m);
  }
}

/* out[i, ch] = mean over hw of x[i, :, ch], then * scale[ch] + shift[ch] when given */
template <typename T>
__global__ void k_gap_nhwc(size_t total, int hw, int c, const T *x, const float *scale,
                           const float *shift, float *out) {
  GRID_STRIDE(o, total) {
    const int ch = (int)(o % c);
    const size_t i = o / c;
    const T *xp = x + i * hw * c + ch;
    float acc = 0.0f;
    for (int j = 0; j < hw; j++) acc += to_f(xp[(size_t)j * c]);
    float v = acc / (float)hw;
    if (scale) v = v * scale[ch] + shift[ch];
    out[o] = v;
  }
}

/* the activations of the engine (ENGINE_ACT_*), as the CPU ops compute them */
__device__ __forceinline__ float activate(float v, int act) {
  switch (act) {
  case ENGINE_ACT_RELU: return v < 0.0f ? 0.0f : v;
  case ENGINE_ACT_RELU6: return v < 0.0f ? 0.0f : v > 6.0f ? 6.0f : v;
  case ENGINE_ACT_SIGMOID: return 1.0f / (1.0f + expf(-v));
  default: return v;
  }
}

/* y = act(y + bias[ch] + res) */
template <typename T>
__global__ void k_epilogue(size_t total, int c, const float *bias, const T *res, int act, T *y) {
  GRID_STRIDE(o, total) {
    float v = to_f(y[o]) + bias[o % c];
    if (res) v += to_f(res[o]);
    y[o] = from_f<T>(activate(v, act));
  }
}

/* y = act(a + b) (op ADD), act(a * b[i, ch]) (op MUL: b is [n, c], a gate per
 * image and channel) or act(a) (op NONE); a is [n, hw, c] */
template <typename T>
__global__ void k_eltwise(size_t total, int hw, int c, int op, const T *a, const T *b, int act,
                          T *y) {
  GRID_STRIDE(o, total) {
    float v = to_f(a[o]);
    if (op == ENGINE_ELT_ADD)
      v += to_f(b[o]);
    else if (op == ENGINE_ELT_MUL)
      v *= to_f(b[o / ((size_t)hw * c) * c + o % c]);
    y[o] = from_f<T>(activate(v, act));
  }
}

/* y[i, ch] = mean over hw of x[i, :, ch], in the storage type */
template <typename T> __global__ void k_gap_store(size_t total, int hw, int c, const T *x, T *y) {
  GRID_STRIDE(o, total) {
    const int ch = (int)(o % c);
    const T *xp = x + o / c * hw * c + ch;
    float acc = 0.0f;
    for (int j = 0; j < hw; j++) acc += to_f(xp[(size_t)j * c]);
    y[o] = from_f<T>(acc / (float)hw);
  }
}

/* Instance norm statistics over a channel range (see engine_instance_coef). A block holds 32
 * adjacent channels (lane) of one image and `rows` rows of pixels, so that a warp reads 32
 * consecutive channels of a pixel; the rows' partial sums meet in shared memory. Grid: one
 * block per (image, tile of 32 channels). */
template <typename T>
__global__ void k_instance_coef(int hw, int x_c, int x_c0, int nc, const T *x,
                                const float *gamma_beta, float eps, float *coef) {
  __shared__ double part[THREADS / 32][32];
  const int lane = threadIdx.x & 31, row = threadIdx.x >> 5, rows = blockDim.x >> 5;
  const int tiles = (nc + 31) / 32;
  const int i = blockIdx.x / tiles, ch = (int)(blockIdx.x % tiles) * 32 + lane;
  const T *xp = x + (size_t)i * hw * x_c + x_c0 + ch;
  double s = 0.0;
  if (ch < nc)
    for (int j = row; j < hw; j += rows) s += to_f(xp[(size_t)j * x_c]);
  part[row][lane] = s;
  __syncthreads();
  if (row == 0) {
    for (int r = 1; r < rows; r++) s += part[r][lane];
    part[0][lane] = s / hw;
  }
  __syncthreads();
  const double mean = part[0][lane];
  __syncthreads(); /* every row has the mean before part is reused */
  double q = 0.0;
  if (ch < nc)
    for (int j = row; j < hw; j += rows) {
      const double d = to_f(xp[(size_t)j * x_c]) - mean;
      q += d * d;
    }
  part[row][lane] = q;
  __syncthreads();
  if (row == 0 && ch < nc) {
    for (int r = 1; r < rows; r++) q += part[r][lane];
    const double k = gamma_beta[2 * ch] / sqrt(q / hw + (double)eps);
    float *kb = coef + 2 * ((size_t)i * nc + ch);
    kb[0] = (float)k;
    kb[1] = (float)(gamma_beta[2 * ch + 1] - mean * k);
  }
}

/* One element of engine_channels: o = (image i, pixel p, channel ch < nc) */
template <typename T> __global__ void k_channels(size_t total, engine_channel_map m) {
  const T *x = (const T *)m.x, *res = (const T *)m.res;
  T *y = (T *)m.y;
  GRID_STRIDE(o, total) {
    const int ch = (int)(o % m.nc);
    const size_t pix = o / m.nc; /* i hw + p */
    float v = to_f(x[pix * m.x_c + m.x_c0 + ch]);
    if (m.coef) {
      const float *kb = m.coef + 2 * (m.per_sample ? pix / m.hw * m.nc + ch : (size_t)ch);
      v = v * kb[0] + kb[1];
    }
    const size_t d = pix * m.y_c + m.y_c0 + ch;
    if (res) v += to_f(res[d]);
    y[d] = from_f<T>(activate(v, m.act));
  }
}

extern "C" reid_status engine_convert_weights(cuda_state *s, const float *src, void *dst, size_t n,
                                              int dtype) {
  const int grid = cuda_grid_for(s, n, THREADS);
  if (dtype == ENGINE_FP16)
    k_convert<__half><<<grid, THREADS, 0, s->stream>>>(n, src, (__half *)dst);
  else if (dtype == ENGINE_BF16)
    k_convert<__nv_bfloat16><<<grid, THREADS, 0, s->stream>>>(n, src, (__nv_bfloat16 *)dst);
  else
    k_convert<float><<<grid, THREADS, 0, s->stream>>>(n, src, (float *)dst);
  CUDA_LAUNCH_CHECK("k_convert");
  return REID_OK;
}

extern "C" reid_status engine_input_from_nchw(cuda_state *s, const float *x, int n, int c, int h,
                                              int w, int cpad, void *dst, int dtype) {
  const size_t total = (size_t)n * h * w * cpad;
  const int grid = cuda_grid_for(s, total, THREADS);
  if (dtype == ENGINE_FP16)
    k_nchw_to_nhwc<__half><<<grid, THREADS, 0, s->stream>>>(total, c, h, w, cpad, x, (__half *)dst);
  else if (dtype == ENGINE_BF16)
    k_nchw_to_nhwc<__nv_bfloat16>
        <<<grid, THREADS, 0, s->stream>>>(total, c, h, w, cpad, x, (__nv_bfloat16 *)dst);
  else
    k_nchw_to_nhwc<float><<<grid, THREADS, 0, s->stream>>>(total, c, h, w, cpad, x, (float *)dst);
  CUDA_LAUNCH_CHECK("k_nchw_to_nhwc");
  return REID_OK;
}

extern "C" reid_status engine_gap(cuda_state *s, const void *x, int n, int hw, int c,
                                  const float *scale, const float *shift, float *out, int dtype) {
  const size_t total = (size_t)n * c;
  const int grid = cuda_grid_for(s, total, THREADS);
  if (dtype == ENGINE_FP16)
    k_gap_nhwc<__half>
        <<<grid, THREADS, 0, s->stream>>>(total, hw, c, (const __half *)x, scale, shift, out);
  else if (dtype == ENGINE_BF16)
    k_gap_nhwc<__nv_bfloat16><<<grid, THREADS, 0, s->stream>>>(
        total, hw, c, (const __nv_bfloat16 *)x, scale, shift, out);
  else
    k_gap_nhwc<float>
        <<<grid, THREADS, 0, s->stream>>>(total, hw, c, (const float *)x, scale, shift, out);
  CUDA_LAUNCH_CHECK("k_gap_nhwc");
  return REID_OK;
}

extern "C" reid_status engine_epilogue(cuda_state *s, void *y, const float *bias, const void *res,
                                       size_t pixels, int c, int act, int dtype) {
  const size_t total = pixels * c;
  const int grid = cuda_grid_for(s, total, THREADS);
  if (dtype == ENGINE_FP16)
    k_epilogue<__half>
        <<<grid, THREADS, 0, s->stream>>>(total, c, bias, (const __half *)res, act, (__half *)y);
  else if (dtype == ENGINE_BF16)
    k_epilogue<__nv_bfloat16><<<grid, THREADS, 0, s->stream>>>(
        total, c, bias, (const __nv_bfloat16 *)res, act, (__nv_bfloat16 *)y);
  else
    k_epilogue<float>
        <<<grid, THREADS, 0, s->stream>>>(total, c, bias, (const float *)res, act, (float *)y);
  CUDA_LAUNCH_CHECK("k_epilogue");
  return REID_OK;
}

/* The launches below, once per storage type */
template <typename T>
static reid_status eltwise_t(cuda_state *s, size_t total, int hw, int c, int op, const void *a,
                             const void *b, int act, void *y) {
  k_eltwise<T><<<cuda_grid_for(s, total, THREADS), THREADS, 0, s->stream>>>(
      total, hw, c, op, (const T *)a, (const T *)b, act, (T *)y);
  CUDA_LAUNCH_CHECK("k_eltwise");
  return REID_OK;
}

template <typename T>
static reid_status pool_t(cuda_state *s, size_t total, int c, const reid_pool2d_desc *d, int avg,
                          const void *x, void *y) {
  k_pool_nhwc<T><<<cuda_grid_for(s, total, THREADS), THREADS, 0, s->stream>>>(
      total, c, d->h, d->w, d->k, d->stride, d->pad, d->h_out, d->w_out, avg, (const T *)x, (T *)y);
  CUDA_LAUNCH_CHECK("k_pool_nhwc");
  return REID_OK;
}

template <typename T>
static reid_status gap_store_t(cuda_state *s, size_t total, int hw, int c, const void *x, void *y) {
  k_gap_store<T><<<cuda_grid_for(s, total, THREADS), THREADS, 0, s->stream>>>(total, hw, c,
                                                                              (const T *)x, (T *)y);
  CUDA_LAUNCH_CHECK("k_gap_store");
  return REID_OK;
}

extern "C" reid_status engine_eltwise(cuda_state *s, int op, const void *a, const void *b, void *y,
                                      int n, int hw, int c, int act, int dtype) {
  const size_t total = (size_t)n * hw * c;
  if (dtype == ENGINE_FP16) return eltwise_t<__half>(s, total, hw, c, op, a, b, act, y);
  if (dtype == ENGINE_BF16) return eltwise_t<__nv_bfloat16>(s, total, hw, c, op, a, b, act, y);
  return eltwise_t<float>(s, total, hw, c, op, a, b, act, y);
}

extern "C" reid_status engine_pool(cuda_state *s, const void *x, void *y, int n, int c,
                                   const reid_pool2d_desc *d, int avg, int dtype) {
  const size_t total = (size_t)n * d->h_out * d->w_out * c;
  if (dtype == ENGINE_FP16) return pool_t<__half>(s, total, c, d, avg, x, y);
  if (dtype == ENGINE_BF16) return pool_t<__nv_bfloat16>(s, total, c, d, avg, x, y);
  if (dtype == ENGINE_INT8) { /* max of codes is a code; an average would need rounding */
    if (avg) return reid_fail(REID_EUNSUPPORTED, "engine: int8 average pooling is not implemented");
    return pool_t<int8_t>(s, total, c, d, 0, x, y);
  }
  return pool_t<float>(s, total, c, d, avg, x, y);
}

extern "C" reid_status engine_gap_store(cuda_state *s, const void *x, void *y, int n, int hw, int c,
                                        int dtype) {
  const size_t total = (size_t)n * c;
  if (dtype == ENGINE_FP16) return gap_store_t<__half>(s, total, hw, c, x, y);
  if (dtype == ENGINE_BF16) return gap_store_t<__nv_bfloat16>(s, total, hw, c, x, y);
  return gap_store_t<float>(s, total, hw, c, x, y);
}

template <typename T>
static reid_status instance_coef_t(cuda_state *s, const void *x, int n, int hw, int x_c, int x_c0,
                                   int nc, const float *gamma_beta, float eps, float *coef) {
  const int blocks = n * ((nc + 31) / 32);
  k_instance_coef<T>
      <<<blocks, THREADS, 0, s->stream>>>(hw, x_c, x_c0, nc, (const T *)x, gamma_beta, eps, coef);
  CUDA_LAUNCH_CHECK("k_instance_coef");
  return REID_OK;
}

template <typename T> static reid_status channels_t(cuda_state *s, const engine_channel_map *m) {
  const size_t total = (size_t)m->n * m->hw * m->nc;
  k_channels<T><<<cuda_grid_for(s, total, THREADS), THREADS, 0, s->stream>>>(total, *m);
  CUDA_LAUNCH_CHECK("k_channels");
  return REID_OK;
}

extern "C" reid_status engine_instance_coef(cuda_state *s, const void *x, int n, int hw, int x_c,
                                            int x_c0, int nc, const float *gamma_beta, float eps,
                                            float *coef, int dtype) {
  if (dtype == ENGINE_FP16)
    return instance_coef_t<__half>(s, x, n, hw, x_c, x_c0, nc, gamma_beta, eps, coef);
  if (dtype == ENGINE_BF16)
    return instance_coef_t<__nv_bfloat16>(s, x, n, hw, x_c, x_c0, nc, gamma_beta, eps, coef);
  if (dtype == ENGINE_INT8)
    return reid_fail(REID_EUNSUPPORTED, "engine: int8 instance norm is not implemented");
  return instance_coef_t<float>(s, x, n, hw, x_c, x_c0, nc, gamma_beta, eps, coef);
}

extern "C" reid_status engine_channels(cuda_state *s, const engine_channel_map *m, int dtype) {
  if (dtype == ENGINE_FP16) return channels_t<__half>(s, m);
  if (dtype == ENGINE_BF16) return channels_t<__nv_bfloat16>(s, m);
  if (dtype == ENGINE_INT8)
    return reid_fail(REID_EUNSUPPORTED, "engine: int8 channel maps are not implemented");
  return channels_t<float>(s, m);
}

/* ---- int8 ---- */

__global__ void k_i8_quantize(size_t n, const float *x, int8_t *y, float inv_step) {
  GRID_STRIDE(i, n) {
    const float q = rintf(x[i] * inv_step);
    y[i] = (int8_t)(q < -128.0f ? -128.0f : q > 127.0f ? 127.0f : q);
  }
}

/* One output element of an int8 convolution (see engine_i8_conv). */
__global__ void k_i8_epilogue(size_t total, engine_i8_conv a) {
  const int taps = a.k * a.k;
  const float lo = a.out_zp ? 0.0f : -128.0f, hi = a.out_zp ? 255.0f : 127.0f;
  const float inv = 1.0f / a.out_step;
  GRID_STRIDE(o, total) {
    const int ch = (int)(o % a.c);
    float acc = a.acc[o];
    if (a.wsum) { /* zero point of the input: the taps inside the image */
      const size_t pix = o / a.c;
      const int ow = (int)(pix % a.wo), oh = (int)((pix / a.wo) % a.ho);
      const int h0 = oh * a.stride - a.pad, w0 = ow * a.stride - a.pad;
      const int r_lo = h0 < 0 ? -h0 : 0, r_hi = h0 + a.k > a.h_in ? a.h_in - h0 : a.k;
      const int q_lo = w0 < 0 ? -w0 : 0, q_hi = w0 + a.k > a.w_in ? a.w_in - w0 : a.k;
      const float *ws = a.wsum + (size_t)ch * (taps + 1);
      float sum = 0.0f;
      if (r_lo == 0 && q_lo == 0 && r_hi == a.k && q_hi == a.k)
        sum = ws[taps];
      else
        for (int r = r_lo; r < r_hi; r++)
          for (int q = q_lo; q < q_hi; q++) sum += ws[r * a.k + q];
      acc += (float)a.in_zp * sum;
    }
    float v = a.scale[ch] * acc + a.bias[ch];
    if (a.res) v += a.res_step * ((float)a.res[o] + (float)a.res_zp);
    if (a.relu) v = v < 0.0f ? 0.0f : v;
    float q = rintf(v * inv);
    q = q < lo ? lo : q > hi ? hi : q;
    a.y[o] = (int8_t)(q - (float)a.out_zp);
  }
}

/* out[i, ch] = step * (mean over hw of x[i, :, ch] + zp), then * scale + shift */
__global__ void k_i8_gap(size_t total, int hw, int c, const int8_t *x, float step, int zp,
                         const float *scale, const float *shift, float *out) {
  GRID_STRIDE(o, total) {
    const int ch = (int)(o % c);
    const size_t i = o / c;
    const int8_t *xp = x + i * hw * c + ch;
    int acc = 0;
    for (int j = 0; j < hw; j++) acc += xp[(size_t)j * c];
    float v = step * ((float)acc / (float)hw + (float)zp);
    if (scale) v = v * scale[ch] + shift[ch];
    out[o] = v;
  }
}

extern "C" reid_status engine_i8_quantize(cuda_state *s, const float *x, int8_t *y, size_t count,
                                          float step) {
  const int grid = cuda_grid_for(s, count, THREADS);
  k_i8_quantize<<<grid, THREADS, 0, s->stream>>>(count, x, y, 1.0f / step);
  CUDA_LAUNCH_CHECK("k_i8_quantize");
  return REID_OK;
}

extern "C" reid_status engine_i8_epilogue(cuda_state *s, const engine_i8_conv *a) {
  const size_t total = (size_t)a->n * a->ho * a->wo * a->c;
  const int grid = cuda_grid_for(s, total, THREADS);
  k_i8_epilogue<<<grid, THREADS, 0, s->stream>>>(total, *a);
  CUDA_LAUNCH_CHECK("k_i8_epilogue");
  return REID_OK;
}

extern "C" reid_status engine_i8_gap(cuda_state *s, const int8_t *x, int n, int hw, int c,
                                     float step, int zp, const float *scale, const float *shift,
                                     float *out) {
  const size_t total = (size_t)n * c;
  const int grid = cuda_grid_for(s, total, THREADS);
  k_i8_gap<<<grid, THREADS, 0, s->stream>>>(total, hw, c, x, step, zp, scale, shift, out);
  CUDA_LAUNCH_CHECK("k_i8_gap");
  return REID_OK;
}
