/* libFuzzer harness: the index.jsonl of a collected-tracklets stream
 * (reidembed collect-location=, read by `reid-train --layout collected`)
 * through the dataset loader. A small collected tree (two streams of four
 * tracklet folders) is made once; each input replaces the index of the first
 * stream and the whole dataset is loaded. A malformed
 * line must be skipped and counted (or the load fail with an error), never
 * crash, read out of bounds or leak. */
#include <sys/stat.h>

#include "dataset.h"
#include "fuzz.h"
#include "image.h"

static char index_path[512];

/* DIR/cam1/00000N/000000000K.jpg, N = 1..4, two 16x8 crops each; DIR/cam2 likewise. */
static const char *root(void) {
  static char path[256];
  if (!path[0]) {
    snprintf(path, sizeof path, "%s/collected", fuzz_dir());
    reid_image img;
    if (reid_image_alloc(8, 16, &img) != REID_OK) abort();
    for (int i = 0; i < 8 * 16 * 3; i++) img.data[i] = (uint8_t)(i * 37);
    char p[512];
    mkdir(path, 0700);
    for (int cam = 1; cam <= 2; cam++) {
      snprintf(p, sizeof p, "%s/cam%d", path, cam);
      mkdir(p, 0700);
      for (int t = 1; t <= 4; t++) {
        snprintf(p, sizeof p, "%s/cam%d/%06d", path, cam, t);
        mkdir(p, 0700);
        for (int f = 1; f <= 2; f++) {
          snprintf(p, sizeof p, "%s/cam%d/%06d/%010d.jpg", path, cam, t, 10 * t + f);
          if (reid_image_save_jpeg(p, &img, 90) != REID_OK) abort();
        }
      }
    }
    reid_image_free(&img);
    snprintf(index_path, sizeof index_path, "%s/cam1/index.jsonl", path);
  }
  return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *r = root();
  fuzz_write(index_path, data, size);
  reid_dataset *d = NULL;
  if (reid_dataset_load(r, REID_LAYOUT_COLLECTED, &d) == REID_OK) reid_dataset_free(d);
  return 0;
}
