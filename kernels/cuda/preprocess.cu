/* The GPU preprocessing kernel: one thread per output pixel of every box.
 * Reads the frame through the taps planned on the host, interpolates in the
 * CPU's float order (built with -fmad=false: the same roundings), converts
 * YUV, normalises and writes NCHW or NHWC in fp32, fp16 or bf16. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda_kernels.cuh"
#include "cuda_preprocess.h"

__device__ __forceinline__ float lerp_f(float a, float b, float t) {
  return a + t * (b - a);
}

/* (v + |v|) / 2 == max(v, 0) exactly for finite v, then min(., 255): the CPU's clamp */
__device__ __forceinline__ float clamp255(float v) {
  v = 0.5f * (v + fabsf(v));
  return v < 255.0f ? v : 255.0f;
}

__device__ __forceinline__ float bilerp(const uint8_t *top, const uint8_t *bot, int lo, int hi,
                                        float a, float ay) {
  return lerp_f(lerp_f((float)top[lo], (float)top[hi], a),
                lerp_f((float)bot[lo], (float)bot[hi], a), ay);
}

template <typename T> __device__ __forceinline__ T to_out(float v);
template <> __device__ __forceinline__ float to_out<float>(float v) {
  return v;
}
template <> __device__ __forceinline__ __half to_out<__half>(float v) {
  return __float2half_rn(v);
}
template <> __device__ __forceinline__ __nv_bfloat16 to_out<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

template <typename T> __global__ void k_preprocess(pre_launch L) {
  const size_t total = (size_t)L.n_boxes * L.out_h * L.out_w;
  GRID_STRIDE(o, total) {
    const int c = (int)(o % L.out_w), r = (int)((o / L.out_w) % L.out_h);
    const int b = (int)(o / ((size_t)L.out_w * L.out_h));
    const pre_tap ct = L.cols[(size_t)b * L.out_w + c], rt = L.rows[(size_t)b * L.out_h + r];
    float R, G, B;
    if (L.format == REID_PIX_NV12 || L.format == REID_PIX_I420) {
      const int nv12 = L.format == REID_PIX_NV12, cstep = nv12 ? 2 : 1;
      const uint8_t *y_top = L.planes[0] + (ptrdiff_t)rt.lo * L.strides[0];
      const uint8_t *y_bot = L.planes[0] + (ptrdiff_t)rt.hi * L.strides[0];
      const uint8_t *u_top = L.planes[1] + (ptrdiff_t)rt.clo * L.strides[1];
      const uint8_t *u_bot = L.planes[1] + (ptrdiff_t)rt.chi * L.strides[1];
      const uint8_t *v_top = nv12 ? u_top + 1 : L.planes[2] + (ptrdiff_t)rt.clo * L.strides[2];
      const uint8_t *v_bot = nv12 ? u_bot + 1 : L.planes[2] + (ptrdiff_t)rt.chi * L.strides[2];
      const float Y = bilerp(y_top, y_bot, ct.lo, ct.hi, ct.a, rt.a);
      const float U = bilerp(u_top, u_bot, ct.clo * cstep, ct.chi * cstep, ct.ca, rt.ca) - 128.0f;
      const float V = bilerp(v_top, v_bot, ct.clo * cstep, ct.chi * cstep, ct.ca, rt.ca) - 128.0f;
      const float lum = L.yuv.y_scale * (Y - L.yuv.y_offset);
      R = clamp255(lum + L.yuv.r_v * V);
      G = clamp255(lum + L.yuv.g_u * U + L.yuv.g_v * V);
      B = clamp255(lum + L.yuv.b_u * U);
    } else {
      int bytes = 4, ro = 0, go = 1, bo = 2;
      if (L.format == REID_PIX_RGB || L.format == REID_PIX_BGR) bytes = 3;
      if (L.format == REID_PIX_BGR || L.format == REID_PIX_BGRA || L.format == REID_PIX_BGRX)
        ro = 2, bo = 0;
      const uint8_t *top = L.planes[0] + (ptrdiff_t)rt.lo * L.strides[0];
      const uint8_t *bot = L.planes[0] + (ptrdiff_t)rt.hi * L.strides[0];
      const int lo = ct.lo * bytes, hi = ct.hi * bytes;
      R = bilerp(top + ro, bot + ro, lo, hi, ct.a, rt.a);
      G = bilerp(top + go, bot + go, lo, hi, ct.a, rt.a);
      B = bilerp(top + bo, bot + bo, lo, hi, ct.a, rt.a);
    }
    const float v[3] = {R * L.scale[0] + L.bias[0], G * L.scale[1] + L.bias[1],
                        B * L.scale[2] + L.bias[2]};
    T *out = (T *)L.out;
    if (L.nhwc) {
      T *px = out + o * L.channels; /* o = (b H + r) W + c */
      for (int ch = 0; ch < L.channels; ch++) px[ch] = to_out<T>(ch < 3 ? v[ch] : 0.0f);
    } else {
      const size_t plane = (size_t)L.out_h * L.out_w;
      T *base = out + (size_t)b * 3 * plane + (size_t)r * L.out_w + c;
      for (int ch = 0; ch < 3; ch++) base[ch * plane] = to_out<T>(v[ch]);
    }
  }
}

extern "C" reid_status cuda_preprocess_launch(cuda_state *s, const pre_launch *l) {
  const size_t total = (size_t)l->n_boxes * l->out_h * l->out_w;
  const int grid = cuda_grid_for(s, total, 256);
  if (l->dtype == 1)
    k_preprocess<__half><<<grid, 256, 0, s->stream>>>(*l);
  else if (l->dtype == 2)
    k_preprocess<__nv_bfloat16><<<grid, 256, 0, s->stream>>>(*l);
  else
    k_preprocess<float><<<grid, 256, 0, s->stream>>>(*l);
  CUDA_LAUNCH_CHECK("k_preprocess");
  return REID_OK;
}
