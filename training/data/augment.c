/* Pad + random crop, flip and random erasing of one frame (see augment.h). */
#include <math.h>
#include <string.h>

#include "augment.h"

reid_status reid_augment_check(const reid_augment *a, int height, int width) {
  if (!a->enabled) return REID_OK;
  if (!(a->flip_p >= 0 && a->flip_p <= 1))
    return reid_fail(REID_EINVAL, "augment: flip probability %g outside [0, 1]", a->flip_p);
  if (a->pad < 0 || a->pad >= height || a->pad >= width)
    return reid_fail(REID_EINVAL, "augment: pad %d must be in [0, %d) for %dx%d inputs", a->pad,
                     height < width ? height : width, height, width);
  if (!(a->erase_p >= 0 && a->erase_p <= 1))
    return reid_fail(REID_EINVAL, "augment: erasing probability %g outside [0, 1]", a->erase_p);
  if ((a->erase_p > 0 || a->grow_batches > 0) &&
      !(a->erase_area_min > 0 && a->erase_area_min <= a->erase_area_max && a->erase_area_max < 1))
    return reid_fail(REID_EINVAL, "augment: erasing area range [%g, %g] must lie in (0, 1)",
                     a->erase_area_min, a->erase_area_max);
  if (a->grow_batches > 0 &&
      !(a->erase_p_end >= 0 && a->erase_p_end <= 1 && a->erase_area_max_end >= a->erase_area_min &&
        a->erase_area_max_end < 1))
    return reid_fail(REID_EINVAL,
                     "augment: growing erasing to probability %g and area %g: the probability "
                     "must be in [0, 1], the area in [%g, 1)",
                     a->erase_p_end, a->erase_area_max_end, a->erase_area_min);
  if ((a->erase_p > 0 || a->grow_batches > 0) &&
      !(a->erase_aspect_min > 0 && a->erase_aspect_min <= 1))
    return reid_fail(REID_EINVAL, "augment: erasing aspect minimum %g must be in (0, 1]",
                     a->erase_aspect_min);
  return REID_OK;
}

void reid_augment_draw(const reid_augment *a, int height, int width, reid_rng *rng,
                       reid_aug_draw *out) {
  *out = reid_aug_none();
  if (!a->enabled) return;
  if (a->pad > 0) {
    out->crop_x = (int)reid_rng_below(rng, (uint32_t)(2 * a->pad + 1));
    out->crop_y = (int)reid_rng_below(rng, (uint32_t)(2 * a->pad + 1));
  }
  out->flip = reid_rng_uniform(rng) < a->flip_p;
  if (!(reid_rng_uniform(rng) < a->erase_p)) return;
  /* torchvision RandomErasing: area fraction uniform, aspect log-uniform, 10 attempts */
  const float area = (float)height * (float)width;
  const float log_lo = logf(a->erase_aspect_min), log_hi = -log_lo;
  for (int attempt = 0; attempt < 10; attempt++) {
    float target = area * (a->erase_area_min +
                           (a->erase_area_max - a->erase_area_min) * reid_rng_uniform(rng));
    float aspect = expf(log_lo + (log_hi - log_lo) * reid_rng_uniform(rng));
    int h = (int)lrintf(sqrtf(target * aspect)), w = (int)lrintf(sqrtf(target / aspect));
    if (h < 1 || w < 1 || h >= height || w >= width) continue;
    out->erase_y = (int)reid_rng_below(rng, (uint32_t)(height - h + 1));
    out->erase_x = (int)reid_rng_below(rng, (uint32_t)(width - w + 1));
    out->erase_h = h;
    out->erase_w = w;
    return;
  }
}

reid_status reid_augment_apply(const reid_image *img, const reid_aug_draw *a, int pad,
                               const reid_preprocess_params *pp, float *scratch, float *out) {
  const int H = pp->height, W = pp->width;
  const size_t plane = (size_t)H * W;
  /* output column c shows resized column c + crop_x - pad, visible where that is in [0, W) */
  int c0 = pad - a->crop_x > 0 ? pad - a->crop_x : 0;
  int c1 = W + pad - a->crop_x < W ? W + pad - a->crop_x : W;
  int r0 = pad - a->crop_y > 0 ? pad - a->crop_y : 0;
  int r1 = H + pad - a->crop_y < H ? H + pad - a->crop_y : H;
  if (c1 <= c0 || r1 <= r0)
    return reid_fail(REID_EINVAL, "augment: crop (%d, %d) with pad %d leaves nothing of %dx%d",
                     a->crop_x, a->crop_y, pad, H, W);
  const float sx = (float)img->width / (float)W, sy = (float)img->height / (float)H;
  reid_box box = {(float)(c0 + a->crop_x - pad) * sx, (float)(r0 + a->crop_y - pad) * sy,
                  (float)(c1 - c0) * sx, (float)(r1 - r0) * sy};
  reid_frame frame = reid_frame_from_image(img);
  if (c0 == 0 && r0 == 0 && c1 == W && r1 == H) {
    REID_TRY(reid_preprocess_cpu(&frame, &box, 1, pp, out));
  } else {
    reid_preprocess_params sub = *pp;
    sub.height = r1 - r0;
    sub.width = c1 - c0;
    REID_TRY(reid_preprocess_cpu(&frame, &box, 1, &sub, scratch));
    for (int c = 0; c < 3; c++) {
      const float black = -pp->mean[c] / pp->std[c];
      float *o = out + c * plane;
      for (size_t i = 0; i < plane; i++) o[i] = black;
      const float *s = scratch + (size_t)c * sub.height * sub.width;
      for (int r = r0; r < r1; r++)
        memcpy(o + (size_t)r * W + c0, s + (size_t)(r - r0) * sub.width, sizeof *o * sub.width);
    }
  }
  if (a->flip)
    for (int c = 0; c < 3; c++)
      for (int r = 0; r < H; r++) {
        float *row = out + c * plane + (size_t)r * W;
        for (int i = 0, j = W - 1; i < j; i++, j--) {
          float t = row[i];
          row[i] = row[j];
          row[j] = t;
        }
      }
  if (a->erase_w > 0)
    for (int c = 0; c < 3; c++)
      for (int r = a->erase_y; r < a->erase_y + a->erase_h; r++)
        memset(out + c * plane + (size_t)r * W + a->erase_x, 0, sizeof(float) * a->erase_w);
  return REID_OK;
}
