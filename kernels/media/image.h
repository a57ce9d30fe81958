/* Still images in memory and on disk, via FFmpeg.
 *
 * A reid_image is packed RGB24: pixel (x, y) channel c (0=R, 1=G, 2=B) is
 * data[y * stride + 3 * x + c]. Images this module allocates are tightly
 * packed (stride == 3 * width); images from elsewhere may have any
 * stride >= 3 * width.
 *
 * All functions are thread-safe. FFmpeg's own log output is routed away from
 * stderr (see image.c); its last error line is appended to our message. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct reid_image {
  int width, height, stride; /* stride in bytes */
  uint8_t *data;             /* owned; release with reid_image_free */
} reid_image;

/* Allocates a zeroed width x height RGB24 image (stride = 3 * width). */
reid_status reid_image_alloc(int width, int height, reid_image *out);
/* Frees the pixels and zeroes *img; safe on a zeroed or already-freed image. */
void reid_image_free(reid_image *img);

/* Bilinear resize of src's box (x, y, w, h; pixels, may reach outside: edges repeat) into
 * the rectangle (dx, dy, dw, dh) of dst, which must lie inside dst. */
void reid_image_resize_into(const reid_image *src, float x, float y, float w, float h,
                            reid_image *dst, int dx, int dy, int dw, int dh);

/* Bicubic resize of the whole of src to a new width x height image (*out, allocated here;
 * zeroed on failure): FFmpeg swscale's SWS_BICUBIC (its default bicubic, B = 0, C = 0.6,
 * filter support widened when shrinking, as PIL's resize), with accurate rounding. */
reid_status reid_image_resize_bicubic(const reid_image *src, int width, int height,
                                      reid_image *out);

/* Decodes the first frame of the first video stream of any file FFmpeg can
 * read by content (JPEG, PNG, BMP, PPM, WebP, TIFF, GIF, ...) into RGB24.
 * Alpha is dropped (not composited). Truncated JPEGs (no EOI marker after
 * the scan data) are rejected rather than returned half grey.
 * On failure *out is zeroed and the message names the path and the reason. */
reid_status reid_image_load_rgb(const char *path, reid_image *out);

/* Encodes as baseline JPEG (4:2:0, full-range YCbCr). quality in [1, 100]
 * maps linearly onto the mjpeg quantiser scale 31..1 (100 = finest). */
reid_status reid_image_save_jpeg(const char *path, const reid_image *rgb, int quality);
/* The same JPEG in memory: *data (malloc'd, free it) of *size bytes. */
reid_status reid_image_encode_jpeg(const reid_image *rgb, int quality, uint8_t **data,
                                   size_t *size);
/* Encodes as lossless 8-bit RGB PNG. */
reid_status reid_image_save_png(const char *path, const reid_image *rgb);
/* Both savers write "<path>.tmpXXXXXX" next to path, then rename() it over
 * path, so readers never see a partial file (no fsync: not power-loss safe). */
