/* Internal: what the host side of GPU preprocessing (cuda_preprocess.c)
 * hands the kernel (preprocess.cu). The sampling taps are planned on the
 * host in double exactly as reid_preprocess_cpu plans them; the kernel then
 * does the CPU's float arithmetic per output pixel. */
#pragma once

#include "cuda_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#include "preprocess.h"

/* One bilinear tap along an axis, in pixel (not byte) units:
 * v = (1 - a) P[lo] + a P[hi]; clo / chi / ca: the same for 4:2:0 chroma. */
typedef struct pre_tap {
  int lo, hi;
  float a;
  int clo, chi;
  float ca;
} pre_tap;

typedef struct pre_launch {
  /* frame, planes in device memory */
  int format, width, height;
  const uint8_t *planes[3];
  int strides[3];
  reid_yuv_coeffs yuv;
  /* boxes: taps of output column c and row r of box b at [b W + c], [b H + r] */
  int n_boxes, out_h, out_w;
  const pre_tap *cols, *rows;
  /* normalisation folded into v * scale + bias */
  float scale[3], bias[3];
  /* output */
  int nhwc, channels, dtype; /* dtype: 0 fp32, 1 fp16, 2 bf16 */
  void *out;
} pre_launch;

reid_status cuda_preprocess_launch(cuda_state *s, const pre_launch *l);

#ifdef __cplusplus
}
#endif
