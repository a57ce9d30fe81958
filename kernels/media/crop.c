/* Copying a box out of a frame (raw planes) and turning it into RGB24 later. */
#include "crop.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Bytes per pixel of the packed formats, 0 for the planar ones. */
static int packed_bytes(reid_pixel_format f) {
  switch (f) {
  case REID_PIX_RGB:
  case REID_PIX_BGR: return 3;
  case REID_PIX_RGBA:
  case REID_PIX_BGRA:
  case REID_PIX_RGBX:
  case REID_PIX_BGRX: return 4;
  default: return 0;
  }
}

/* rows x row_bytes from src (stride may be negative) into dst, packed. */
static void copy_rows(uint8_t *dst, const uint8_t *src, int stride, int rows, size_t row_bytes) {
  for (int r = 0; r < rows; r++)
    memcpy(dst + (size_t)r * row_bytes, src + (ptrdiff_t)r * stride, row_bytes);
}

reid_status reid_crop_copy(const reid_frame *f, const reid_box *box, reid_crop *out) {
  memset(out, 0, sizeof *out);
  REID_TRY(reid_frame_check(f));
  reid_box b;
  REID_TRY(reid_box_clip(box, f->width, f->height, &b));
  int x0 = (int)floorf(b.x), y0 = (int)floorf(b.y);
  int x1 = (int)ceilf(b.x + b.w), y1 = (int)ceilf(b.y + b.h);
  if (x1 > f->width) x1 = f->width;
  if (y1 > f->height) y1 = f->height;
  int bpp = packed_bytes(f->format);
  /* YUV: an even origin, and one chroma sample more on each side than the box covers, which
   * the bilinear chroma interpolation reads */
  int ox = x0, oy = y0, ex = x1, ey = y1;
  if (!bpp) {
    ox = x0 > 0 ? (x0 - 1) & ~1 : 0, oy = y0 > 0 ? (y0 - 1) & ~1 : 0;
    ex = x1 + 2 < f->width ? x1 + 2 : f->width, ey = y1 + 2 < f->height ? y1 + 2 : f->height;
  }
  int w = ex - ox, h = ey - oy, cw = (w + 1) / 2, ch = (h + 1) / 2;
  size_t bytes = bpp ? (size_t)w * h * bpp : (size_t)w * h + 2 * (size_t)cw * ch;
  if (!(out->data = malloc(bytes)))
    return reid_fail(REID_ENOMEM, "crop: out of memory for %dx%d pixels", w, h);
  out->bytes = bytes;
  reid_frame *c = &out->frame;
  c->format = f->format;
  c->width = w;
  c->height = h;
  c->yuv_matrix = f->yuv_matrix;
  c->yuv_full_range = f->yuv_full_range;
  if (bpp) {
    c->planes[0] = out->data;
    c->strides[0] = w * bpp;
    copy_rows(out->data, f->planes[0] + (ptrdiff_t)oy * f->strides[0] + (ptrdiff_t)ox * bpp,
              f->strides[0], h, (size_t)w * bpp);
  } else {
    uint8_t *y = out->data, *uv = out->data + (size_t)w * h;
    copy_rows(y, f->planes[0] + (ptrdiff_t)oy * f->strides[0] + ox, f->strides[0], h, (size_t)w);
    c->planes[0] = y;
    c->strides[0] = w;
    if (f->format == REID_PIX_NV12) { /* interleaved U V: 2 bytes per chroma sample */
      copy_rows(uv, f->planes[1] + (ptrdiff_t)(oy / 2) * f->strides[1] + ox, f->strides[1], ch,
                2 * (size_t)cw);
      c->planes[1] = uv;
      c->strides[1] = 2 * cw;
    } else {
      for (int p = 1; p <= 2; p++) {
        uint8_t *dst = uv + (size_t)(p - 1) * cw * ch;
        copy_rows(dst, f->planes[p] + (ptrdiff_t)(oy / 2) * f->strides[p] + ox / 2, f->strides[p],
                  ch, (size_t)cw);
        c->planes[p] = dst;
        c->strides[p] = cw;
      }
    }
  }
  out->box = (reid_box){(float)(x0 - ox), (float)(y0 - oy), (float)(x1 - x0), (float)(y1 - y0)};
  return REID_OK;
}

reid_status reid_frame_box_rgb(const reid_frame *f, const reid_box *box, int width, int height,
                               reid_image *out) {
  memset(out, 0, sizeof *out);
  if (width < 1 || height < 1)
    return reid_fail(REID_EINVAL, "box to RGB: bad size %dx%d", width, height);
  reid_preprocess_params p = {.height = height, .width = width};
  for (int k = 0; k < 3; k++) p.std[k] = 1.0f / 255.0f;
  float *planar = malloc(sizeof *planar * 3 * (size_t)width * height);
  if (!planar) return reid_fail(REID_ENOMEM, "box to RGB: out of memory (%dx%d)", width, height);
  reid_status st = reid_preprocess_cpu(f, box, 1, &p, planar);
  if (st == REID_OK) st = reid_image_alloc(width, height, out);
  if (st == REID_OK) {
    size_t plane = (size_t)width * height;
    for (size_t i = 0; i < plane; i++)
      for (int k = 0; k < 3; k++) {
        long v = lrintf(planar[k * plane + i]);
        out->data[3 * i + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
  }
  free(planar);
  return st;
}

reid_status reid_crop_to_rgb(const reid_crop *c, reid_image *out) {
  memset(out, 0, sizeof *out);
  if (!c || !c->data) return reid_fail(REID_EINVAL, "crop: empty");
  /* at the box's own size the preprocessing samples every pixel at its centre */
  return reid_frame_box_rgb(&c->frame, &c->box, (int)c->box.w, (int)c->box.h, out);
}

void reid_crop_free(reid_crop *c) {
  if (!c) return;
  free(c->data);
  memset(c, 0, sizeof *c);
}
