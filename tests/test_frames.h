/* Video frames for tests: every pixel format the preprocessing (CPU and
 * CUDA) and the element accept, random pixels in host memory, rows padded
 * by `pad` bytes, optionally bottom-up (planes point at the last row, negative
 * strides). */
#pragma once

#include <stdlib.h>
#include <string.h>

#include "preprocess.h"
#include "test_util.h"

#define TEST_FORMAT_COUNT 8
static const reid_pixel_format test_formats[TEST_FORMAT_COUNT] = {
    REID_PIX_RGB,  REID_PIX_BGR,  REID_PIX_RGBA, REID_PIX_BGRA,
    REID_PIX_RGBX, REID_PIX_BGRX, REID_PIX_NV12, REID_PIX_I420};
static const char *const test_format_names[TEST_FORMAT_COUNT] = {"RGB",  "BGR",  "RGBA", "BGRA",
                                                                 "RGBX", "BGRX", "NV12", "I420"};

typedef struct test_frame {
  reid_frame f;
  uint8_t *mem[3];
  size_t bytes[3];
} test_frame;

static inline test_frame test_frame_make(test_rng *rng, reid_pixel_format fmt, int w, int h,
                                         int pad, int bottom_up) {
  test_frame t;
  memset(&t, 0, sizeof t);
  t.f.format = fmt;
  t.f.width = w;
  t.f.height = h;
  const int cw = (w + 1) / 2, chh = (h + 1) / 2;
  int rows[3] = {h, chh, chh}, row_bytes[3] = {0, 0, 0}, planes = 1;
  switch (fmt) {
  case REID_PIX_RGB:
  case REID_PIX_BGR: row_bytes[0] = 3 * w; break;
  case REID_PIX_NV12: row_bytes[0] = w, row_bytes[1] = 2 * cw, planes = 2; break;
  case REID_PIX_I420: row_bytes[0] = w, row_bytes[1] = row_bytes[2] = cw, planes = 3; break;
  default: row_bytes[0] = 4 * w; break;
  }
  for (int i = 0; i < planes; i++) {
    const int stride = row_bytes[i] + pad;
    t.bytes[i] = (size_t)stride * rows[i];
    t.mem[i] = malloc(t.bytes[i]);
    for (size_t k = 0; k < t.bytes[i]; k++) t.mem[i][k] = (uint8_t)(test_rng_u64(rng) >> 56);
    t.f.planes[i] = bottom_up ? t.mem[i] + (size_t)stride * (rows[i] - 1) : t.mem[i];
    t.f.strides[i] = bottom_up ? -stride : stride;
  }
  return t;
}

static inline void test_frame_free(test_frame *t) {
  for (int i = 0; i < 3; i++) free(t->mem[i]);
}
