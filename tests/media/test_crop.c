/* reid_crop: a box copied out of a frame of each of the 8 formats (padded rows, bottom-up,
 * odd and fractional box edges, boxes at the frame's edges) gives, once converted, the same
 * RGB as the preprocessing run on the whole frame at the box's own size; packed RGB crops
 * are the source pixels themselves; bad boxes fail; the JPEG of a crop decodes back. */
#include <math.h>
#include <unistd.h>

#include "crop.h"
#include "test_frames.h"

/* What reid_preprocess_cpu gives for the whole-pixel box on the full frame, as RGB24. */
static void reference(const reid_frame *f, const reid_box *b, uint8_t *rgb) {
  int w = (int)b->w, h = (int)b->h;
  reid_preprocess_params p = {.height = h, .width = w};
  for (int k = 0; k < 3; k++) p.std[k] = 1.0f / 255.0f;
  float *planar = malloc(sizeof *planar * 3 * (size_t)w * h);
  CHECK_OK(reid_preprocess_cpu(f, b, 1, &p, planar));
  for (size_t i = 0; i < (size_t)w * h; i++)
    for (int k = 0; k < 3; k++) {
      float v = roundf(planar[k * (size_t)w * h + i]);
      rgb[3 * i + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  free(planar);
}

static void test_formats_and_boxes(void) {
  test_rng rng = test_rng_make(11);
  const reid_box boxes[] = {{3, 5, 7, 9},       {0, 0, 37, 29}, {30.5f, 20.25f, 20, 20},
                            {-4, -3, 10.5f, 8}, {36, 28, 1, 1}, {1, 1, 1, 1}};
  const reid_box whole[] = {{3, 5, 7, 9}, {0, 0, 37, 29}, {30, 20, 7, 9},
                            {0, 0, 7, 5}, {36, 28, 1, 1}, {1, 1, 1, 1}};
  for (int fi = 0; fi < TEST_FORMAT_COUNT; fi++)
    for (int bottom_up = 0; bottom_up <= 1; bottom_up++) {
      test_frame t = test_frame_make(&rng, test_formats[fi], 37, 29, 5, bottom_up);
      for (size_t bi = 0; bi < sizeof boxes / sizeof *boxes; bi++) {
        reid_crop c;
        CHECK_OK(reid_crop_copy(&t.f, &boxes[bi], &c));
        reid_image img = {0};
        CHECK_OK(reid_crop_to_rgb(&c, &img));
        const reid_box *wb = &whole[bi];
        CHECK(img.width == (int)wb->w && img.height == (int)wb->h, "%s box %zu: %dx%d",
              test_format_names[fi], bi, img.width, img.height);
        if (img.width == (int)wb->w && img.height == (int)wb->h) {
          uint8_t *want = malloc(3 * (size_t)img.width * img.height);
          reference(&t.f, wb, want);
          CHECK(!memcmp(want, img.data, 3 * (size_t)img.width * img.height),
                "%s box %zu bottom-up %d: pixels differ from the preprocessing's",
                test_format_names[fi], bi, bottom_up);
          free(want);
        }
        if (test_formats[fi] == REID_PIX_RGB && img.data) { /* exact source pixels */
          const uint8_t *src = t.f.planes[0] + (ptrdiff_t)wb->y * t.f.strides[0] + 3 * (int)wb->x;
          CHECK(!memcmp(src, img.data, 3 * (size_t)img.width), "RGB box %zu row 0", bi);
        }
        reid_image_free(&img);
        reid_crop_free(&c);
      }
      test_frame_free(&t);
    }
}

static void test_errors_and_jpeg(void) {
  test_rng rng = test_rng_make(5);
  test_frame t = test_frame_make(&rng, REID_PIX_NV12, 40, 30, 0, 0);
  reid_crop c;
  CHECK(reid_crop_copy(&t.f, &(reid_box){50, 5, 4, 4}, &c) == REID_EINVAL && !c.data,
        "box outside the frame");
  CHECK(reid_crop_copy(&t.f, &(reid_box){NAN, 5, 4, 4}, &c) == REID_EINVAL, "NaN box");
  CHECK_OK(reid_crop_copy(&t.f, &(reid_box){4, 4, 16, 24}, &c));
  reid_image img = {0}, back = {0};
  CHECK_OK(reid_crop_to_rgb(&c, &img));
  uint8_t *jpeg = NULL;
  size_t size = 0;
  CHECK_OK(reid_image_encode_jpeg(&img, 95, &jpeg, &size));
  CHECK(size > 100 && jpeg && jpeg[0] == 0xFF && jpeg[1] == 0xD8, "JPEG of %zu bytes", size);
  char path[] = "/tmp/reid-crop-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0 && write(fd, jpeg, size) == (ssize_t)size, "write %s", path);
  close(fd);
  CHECK_OK(reid_image_load_rgb(path, &back));
  CHECK(back.width == 16 && back.height == 24, "decoded %dx%d", back.width, back.height);
  double err = 0;
  for (int i = 0; back.data && i < 16 * 24 * 3; i++)
    err += fabs((double)back.data[i] - img.data[i]);
  /* random pixels are the JPEG's worst case: only a loose bound */
  CHECK(err / (16 * 24 * 3) < 40, "mean abs error %g", err / (16 * 24 * 3));
  unlink(path);
  free(jpeg);
  reid_image_free(&img);
  reid_image_free(&back);
  reid_crop_free(&c);
  test_frame_free(&t);
}

int main(void) {
  test_formats_and_boxes();
  test_errors_and_jpeg();
  return test_finish("test_crop");
}
