/* The CPU engine's channel normalisation (see engine_dnnl_norm.h): instance
 * norm and standalone batch norm with a fused residual add and ReLU, on
 * oneDNN's activation layouts. One plane (sample, channel) per task: its
 * elements are addressed through the descriptor's strides (the channel block,
 * if any, is the innermost dimension), summed in double for the statistics. */
#if HAVE_DNNL
#include "engine_dnnl_norm.h"

#include <math.h>
#include <stdint.h>

#include "half.h"

/* element offsets: off(n, c, h, w) = base + n s0 + (c / B) s1 + h s2 + w s3 + c % B */
typedef struct plane_addr {
  int64_t s[4];
  int64_t base;
  int block;
  int bf16;
} plane_addr;

int dnnl_norm_layout_ok(const dnnl_memory_desc_t *md) {
  if (md->ndims != 4 || md->format_kind != dnnl_blocked) return 0;
  if (md->data_type != dnnl_f32 && md->data_type != dnnl_bf16) return 0;
  const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
  if (b->inner_nblks > 1) return 0;
  if (b->inner_nblks == 1 && b->inner_idxs[0] != 1) return 0;
  for (int d = 0; d < 4; d++)
    if (d != 1 && md->padded_dims[d] != md->dims[d]) return 0;
  return 1;
}

static plane_addr addr_of(const dnnl_memory_desc_t *md) {
  const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
  plane_addr a = {{b->strides[0], b->strides[1], b->strides[2], b->strides[3]},
                  md->offset0,
                  b->inner_nblks ? (int)b->inner_blks[0] : 1,
                  md->data_type == dnnl_bf16};
  return a;
}

static inline int64_t offset(const plane_addr *a, int64_t n, int64_t c, int64_t h, int64_t w) {
  return a->base + n * a->s[0] + (c / a->block) * a->s[1] + h * a->s[2] + w * a->s[3] +
         c % a->block;
}

static inline float load(const plane_addr *a, const void *p, int64_t off) {
  return a->bf16 ? bf16_to_float(((const uint16_t *)p)[off]) : ((const float *)p)[off];
}

static inline void store(const plane_addr *a, void *p, int64_t off, float v) {
  if (a->bf16)
    ((uint16_t *)p)[off] = float_to_bf16(v);
  else
    ((float *)p)[off] = v;
}

reid_status dnnl_norm_run(const dnnl_memory_desc_t *src_md, const void *src,
                          const dnnl_memory_desc_t *dst_md, void *dst, int instance,
                          const float *scale, const float *shift, float eps, int sum, int relu) {
  if (!dnnl_norm_layout_ok(src_md) || !dnnl_norm_layout_ok(dst_md))
    return reid_fail(REID_EUNSUPPORTED, "engine: normalisation on an unsupported layout");
  const plane_addr sa = addr_of(src_md), da = addr_of(dst_md);
  const int N = (int)src_md->dims[0], C = (int)src_md->dims[1], H = (int)src_md->dims[2],
            W = (int)src_md->dims[3], C_pad = (int)dst_md->padded_dims[1];
  const double count = (double)H * W;
#pragma omp parallel for schedule(static) collapse(2)
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C_pad; c++) {
      if (c >= C) { /* keep the destination's channel padding zero */
        for (int h = 0; h < H; h++)
          for (int w = 0; w < W; w++) store(&da, dst, offset(&da, n, c, h, w), 0.0f);
        continue;
      }
      float k = scale[c], b = shift[c];
      if (instance) {
        double s = 0.0, m2 = 0.0;
        for (int h = 0; h < H; h++)
          for (int w = 0; w < W; w++) s += load(&sa, src, offset(&sa, n, c, h, w));
        const double mean = s / count;
        for (int h = 0; h < H; h++)
          for (int w = 0; w < W; w++) {
            const double d = load(&sa, src, offset(&sa, n, c, h, w)) - mean;
            m2 += d * d;
          }
        const double ks = scale[c] / sqrt(m2 / count + (double)eps);
        k = (float)ks;
        b = (float)(shift[c] - mean * ks);
      }
      for (int h = 0; h < H; h++)
        for (int w = 0; w < W; w++) {
          const int64_t od = offset(&da, n, c, h, w);
          float v = load(&sa, src, offset(&sa, n, c, h, w)) * k + b;
          if (sum) v += load(&da, dst, od);
          if (relu) v = v > 0.0f ? v : 0.0f;
          store(&da, dst, od, v);
        }
    }
  return REID_OK;
}
#endif
