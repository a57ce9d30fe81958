/* What the dataset loader reads from a folder, one fact a line, for the element test of
 * collect-location (which runs this in a process of its own, so that the training library
 * and the plugin are not loaded into one process):
 *   layout NAME / tracklets N / ids N / skipped N
 *   sample INDEX CAMID NFRAMES FIRST_FRAME_PATH
 *   pair A B
 * With OUT.ppm as a second argument, the first crop of sample 1 decoded (FFmpeg) into it. */
#include <stdio.h>

#include "dataset.h"
#include "image.h"

int main(int argc, char **argv) {
  if (argc != 2 && argc != 3) {
    fprintf(stderr, "usage: %s DATASET_FOLDER [OUT.ppm]\n", argv[0]);
    return 2;
  }
  reid_dataset *d = NULL;
  if (reid_dataset_load(argv[1], REID_LAYOUT_AUTO, &d) != REID_OK) {
    fprintf(stderr, "%s\n", reid_last_error());
    return 1;
  }
  printf("layout %s\ntracklets %d\nids %d\nskipped %d\n", reid_layout_name(d->layout),
         d->train.count, d->n_train_ids, d->skipped);
  for (int i = 0; i < d->train.count; i++) {
    const reid_sample *s = &d->train.samples[i];
    printf("sample %d %d %d %s\n", i, s->camid, s->n_frames, d->frames[s->first_frame]);
  }
  for (int i = 0; i < d->n_distinct_pairs; i++)
    printf("pair %d %d\n", d->distinct_pairs[i][0], d->distinct_pairs[i][1]);
  int rc = 0;
  if (argc == 3 && d->train.count > 1) {
    reid_image img = {0};
    FILE *f = NULL;
    if (reid_image_load_rgb(d->frames[d->train.samples[1].first_frame], &img) != REID_OK ||
        !(f = fopen(argv[2], "wb")) || fprintf(f, "P6\n%d %d\n255\n", img.width, img.height) < 0 ||
        fwrite(img.data, 3, (size_t)img.width * img.height, f) != (size_t)img.width * img.height)
      rc = 1, fprintf(stderr, "cannot decode or write the crop: %s\n", reid_last_error());
    if (f && fclose(f) != 0) rc = 1;
    reid_image_free(&img);
  }
  reid_dataset_free(d);
  return rc;
}
