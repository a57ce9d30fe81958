/* Crop + resize + normalise: boxes of a video frame or image -> network input.
 *
 * Shared by the GStreamer element (video frames), `reid-train embed` (images)
 * and, later, a CUDA kernel that must reproduce this exact math:
 *
 * 1. Clip. A box [x, x+w) x [y, y+h) in continuous pixel coordinates (pixel
 *    (i, j) covers [j, j+1) x [i, i+1)) is intersected with the frame:
 *    x0 = max(x, 0), x1 = min(x + w, W), likewise y. It must keep positive
 *    area; fractional edges are kept as they are.
 * 2. Sample. Output pixel (r, c) of an H x W output reads the source at
 *    pixel-centre coordinates (half-pixel centres, align_corners=False):
 *        sx = x0 + (c + 0.5) * (x1 - x0) / W - 0.5
 *        sy = y0 + (r + 0.5) * (y1 - y0) / H - 0.5
 *    clamped to the box's pixel range [floor(x0), ceil(x1) - 1] (same for y).
 *    Bilinear, no antialiasing: xl = floor(sx), xh = min(xl + 1, ceil(x1) - 1),
 *    ax = sx - xl; v = (1-ay)((1-ax) P[yl][xl] + ax P[yl][xh])
 *                    + ay ((1-ax) P[yh][xl] + ax P[yh][xh]).
 *    For an integer box this equals torch F.interpolate(crop, mode='bilinear',
 *    align_corners=False, antialias=False).
 * 3. YUV (NV12, I420): Y is sampled as above. Chroma is 4:2:0 with
 *    centre-aligned samples (chroma (i, j) sits at luma (2i + 0.5, 2j + 0.5),
 *    JPEG/MPEG-1 siting), so U and V are sampled bilinearly at
 *    ((sx + 0.5) / 2 - 0.5, (sy + 0.5) / 2 - 0.5) clamped to the chroma plane.
 *    The interpolated (Y, U, V) is then converted with reid_yuv_coefficients()
 *    (default BT.601 limited range) and clamped to [0, 255].
 * 4. Normalise: out = (v / 255 - mean[c]) / std[c], RGB channel order.
 *
 * Alpha / X bytes of 4-byte formats are ignored (no compositing). */
#pragma once

#include <stdint.h>

#include "engine.h" /* reid_tensor_format */
#include "image.h"
#include "status.h"

typedef enum reid_pixel_format {
  REID_PIX_RGB,  /* packed, 3 bytes: R G B */
  REID_PIX_BGR,  /* packed, 3 bytes: B G R */
  REID_PIX_RGBA, /* packed, 4 bytes: R G B A */
  REID_PIX_BGRA, /* packed, 4 bytes: B G R A */
  REID_PIX_RGBX, /* packed, 4 bytes: R G B x */
  REID_PIX_BGRX, /* packed, 4 bytes: B G R x */
  REID_PIX_NV12, /* planes[0] Y (W x H), planes[1] interleaved U V (ceil(W/2) pairs x ceil(H/2)) */
  REID_PIX_I420, /* planes[0] Y, planes[1] U, planes[2] V (each ceil(W/2) x ceil(H/2)) */
} reid_pixel_format;

typedef enum reid_yuv_matrix {
  REID_YUV_BT601 = 0, /* SD / most webcams and IP cameras' JPEG paths */
  REID_YUV_BT709 = 1, /* HD broadcast */
} reid_yuv_matrix;

/* A view of pixels owned by someone else. Zero-initialise, then fill in.
 * strides are bytes per row of each plane (may be negative for bottom-up
 * rows, |stride| >= the row's bytes); unused planes are ignored. */
typedef struct reid_frame {
  reid_pixel_format format;
  int width, height;
  const uint8_t *planes[3];
  int strides[3];
  reid_yuv_matrix yuv_matrix; /* NV12 / I420 only; default BT.601 */
  int yuv_full_range;         /* NV12 / I420 only; 0: Y 16..235, UV 16..240; 1: 0..255 */
} reid_frame;

typedef struct reid_box {
  float x, y, w, h; /* pixels, top-left origin, may be fractional */
} reid_box;

typedef struct reid_preprocess_params {
  int height, width;     /* output size per box */
  float mean[3], std[3]; /* RGB order, applied to v / 255: (v / 255 - mean) / std */
} reid_preprocess_params;

/* RGB (0..255) from YUV code values:
 *   R = y_scale (Y - y_offset)                 + r_v (V - 128)
 *   G = y_scale (Y - y_offset) + g_u (U - 128) + g_v (V - 128)
 *   B = y_scale (Y - y_offset) + b_u (U - 128)
 * BT.601 limited: y_scale 255/219, y_offset 16, r_v 1.596, g_u -0.392,
 * g_v -0.813, b_u 2.017. */
typedef struct reid_yuv_coeffs {
  float y_scale, y_offset, r_v, g_u, g_v, b_u;
} reid_yuv_coeffs;
reid_yuv_coeffs reid_yuv_coefficients(reid_yuv_matrix matrix, int full_range);

/* mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225) */
reid_preprocess_params reid_preprocess_params_imagenet(int height, int width);

/* Describes a packed RGB24 reid_image as a REID_PIX_RGB frame (no copy). */
reid_frame reid_frame_from_image(const reid_image *rgb);

/* Checks format, size, plane pointers and strides. */
reid_status reid_frame_check(const reid_frame *frame);

/* Clips a box to [0, frame_w) x [0, frame_h). REID_EINVAL when any field is
 * not finite, w or h is negative, or nothing is left. out may alias in. */
reid_status reid_box_clip(const reid_box *in, int frame_w, int frame_h, reid_box *out);

/* out: [n_boxes, 3, p->height, p->width] float32 NCHW, RGB channel order.
 * Every argument and box is validated before anything is written; a bad box
 * fails with REID_EINVAL naming its index. n_boxes == 0 is a no-op.
 * OpenMP-parallel over boxes and output rows. */
reid_status reid_preprocess_cpu(const reid_frame *frame, const reid_box *boxes, int n_boxes,
                                const reid_preprocess_params *p, float *out);

/* The same crops written in an engine's input format (reid_engine_input):
 * NCHW float32, or NHWC with 3 channels in float32 or bfloat16, so that the
 * engine needs no input reorder. */
reid_status reid_preprocess_cpu_format(const reid_frame *frame, const reid_box *boxes, int n_boxes,
                                       const reid_preprocess_params *p,
                                       const reid_tensor_format *fmt, void *out);

/* The whole image as one box. out: [1, 3, p->height, p->width]. */
reid_status reid_preprocess_image(const reid_image *rgb, const reid_preprocess_params *p,
                                  float *out);
