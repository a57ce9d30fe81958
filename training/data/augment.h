/* Internal: train-time augmentation of one frame, split in two so that every random
 * number is drawn in batch order (sampler, consumer side) and the pixel work can run
 * on any worker thread:
 *   draw:  crop offset in the zero-padded image, flip, erased rectangle;
 *   apply: decode-side math on one image, into [3, H, W].
 * The order is torchvision's: Resize(H, W) -> Pad(pad, fill 0) -> RandomCrop(H, W) ->
 * RandomHorizontalFlip -> ToTensor + Normalize -> RandomErasing (value 0, i.e. the mean). */
#pragma once

#include "image.h"
#include "loader.h"
#include "preprocess.h"
#include "rng.h"

typedef struct reid_aug_draw {
  int crop_x, crop_y; /* top-left of the H x W crop in the (H + 2 pad) x (W + 2 pad) padded image */
  int flip;           /* mirror left-right */
  int erase_x, erase_y, erase_w, erase_h; /* output pixels; erase_w == 0: nothing erased */
} reid_aug_draw;

/* The identity draw: no crop offset (pad 0), no flip, no erasing. */
static inline reid_aug_draw reid_aug_none(void) {
  return (reid_aug_draw){0, 0, 0, 0, 0, 0, 0};
}

/* Draws one frame's augmentation for an H x W output. a->enabled == 0 gives reid_aug_none(). */
void reid_augment_draw(const reid_augment *a, int height, int width, reid_rng *rng,
                       reid_aug_draw *out);

/* Checks the probabilities and ranges of an augmentation config for an H x W output. */
reid_status reid_augment_check(const reid_augment *a, int height, int width);

/* img -> out [3, pp->height, pp->width], normalised with pp. pad: the padding the draw was
 * made for (0 without augmentation). scratch: 3 * height * width floats. The box handed to
 * reid_preprocess_cpu is the crop's visible part in source pixels, so resize + crop follow
 * kernels/media/preprocess.h's bilinear math; padding is the normalised value of black. */
reid_status reid_augment_apply(const reid_image *img, const reid_aug_draw *a, int pad,
                               const reid_preprocess_params *pp, float *scratch, float *out);
