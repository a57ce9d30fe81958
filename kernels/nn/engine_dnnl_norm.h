/* Internal: the CPU engine's channel-normalisation kernel, run on activations
 * in the layouts oneDNN's convolutions choose (oneDNN 2.x has no instance or
 * group normalisation primitive). */
#pragma once

#include <oneapi/dnnl/dnnl.h>

#include "status.h"

/* Over [n, c, h, w] tensors (f32 or bf16; nchw, nhwc or channel-blocked nChw8c / nChw16c):
 *   instance = 1:  t = (x - mean_nc) / sqrt(var_nc + eps) scale[c] + shift[c]
 *                  (statistics of each plane, biased variance: InstanceNorm2d(affine=True))
 *   instance = 0:  t = x scale[c] + shift[c]   (an eval-mode batch norm, folded)
 *   y = act(t [+ y])  with sum = 1 adding the destination's previous value (a residual)
 *   and relu = 1 applying max(., 0).
 * src and dst may have different layouts; dst's padded channels are written as zeros. */
reid_status dnnl_norm_run(const dnnl_memory_desc_t *src_md, const void *src,
                          const dnnl_memory_desc_t *dst_md, void *dst, int instance,
                          const float *scale, const float *shift, float eps, int sum, int relu);
/* Whether dnnl_norm_run can address this layout. */
int dnnl_norm_layout_ok(const dnnl_memory_desc_t *md);
