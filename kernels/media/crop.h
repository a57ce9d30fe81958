/* A box of a video frame copied out with its exact pixels, so the frame can be
 * unmapped and the pixels converted later, on another thread.
 *
 * The box is widened to whole pixels (floor of its left/top edge, ceil of its
 * right/bottom edge) and clipped to the frame. For NV12 and I420 the copied
 * region starts at an even row and column so that its chroma samples are the
 * frame's own, and it reaches one chroma sample beyond the box on each side
 * (the conversion interpolates chroma), so its RGB equals what the whole frame
 * gives; `box` says where the object sits inside the copy. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "preprocess.h"
#include "status.h"

typedef struct reid_crop {
  reid_frame frame; /* the copied region, a frame of its own; planes point into data */
  reid_box box;     /* the object's pixels inside `frame` (whole pixels) */
  uint8_t *data;    /* owned */
  size_t bytes;     /* bytes in data */
} reid_crop;

/* The box of a frame resized to width x height as RGB24 (out allocated; reid_image_free):
 * reid_preprocess_cpu with mean 0 and std 1/255, i.e. its 0..255 values, rounded. At the
 * box's own size (whole pixels) these are the frame's pixels. */
reid_status reid_frame_box_rgb(const reid_frame *f, const reid_box *box, int width, int height,
                               reid_image *out);
/* Copies box (pixels of `f`) out of f. REID_EINVAL when nothing of it is inside the frame. */
reid_status reid_crop_copy(const reid_frame *f, const reid_box *box, reid_crop *out);
/* The object's pixels as RGB24 (out allocated; reid_image_free). YUV is converted as
 * reid_preprocess_cpu does (its matrix and range, chroma sited as documented there). */
reid_status reid_crop_to_rgb(const reid_crop *c, reid_image *out);
void reid_crop_free(reid_crop *c);
