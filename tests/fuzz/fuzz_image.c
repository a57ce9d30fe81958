/* libFuzzer harness: query photos and dataset frames through the FFmpeg
 * decoding path (reid_image_load_rgb: probe by content, decode the first
 * frame, convert to RGB24). Seeds are PNG, JPEG and PPM files written by the
 * project's own encoders and GStreamer. A broken image must fail with an
 * error naming the file, never crash, read out of bounds or leak; a decoded
 * image has its whole pixel buffer readable. */
#include "fuzz.h"
#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_path("input.img");
  fuzz_write(path, data, size);
  reid_image img;
  if (reid_image_load_rgb(path, &img) == REID_OK) {
    volatile unsigned sink = 0;
    for (int y = 0; y < img.height; y++)
      sink += img.data[(size_t)y * img.stride + 3 * (size_t)img.width - 1];
    reid_image_free(&img);
  }
  return 0;
}
