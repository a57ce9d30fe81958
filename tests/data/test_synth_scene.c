/* Multi-camera scenes (reid-train synth --scene): the ground truth agrees with the pixels.
 * Each frame is rendered twice without sensor noise, with the people and without them; every
 * pixel that the people change lies inside a ground-truth box (give or take the camera's
 * blur), every box is filled by changed pixels and, for a person in full view, touched by
 * them on all four sides (the box is tight); people hidden by nearer ones have visibility
 * below 1 and boxes that overlap a nearer one. The scene has what it promises: several
 * people at once, occlusions, people seen by two cameras. Then the written files: videos
 * that decode to the rendered frame count, MOT files that parse, query photos. */
#include <math.h>

#include "data_fixture.h"
#include "motfile.h"
#include "video.h"

#define MARGIN 5 /* pixels: the blur and anti-aliasing reach this far past a box */

static int changed(const reid_image *a, const reid_image *b, int x, int y) {
  const uint8_t *p = a->data + (size_t)y * a->stride + 3 * x,
                *q = b->data + (size_t)y * b->stride + 3 * x;
  return abs(p[0] - q[0]) + abs(p[1] - q[1]) + abs(p[2] - q[2]) > 3;
}

static void check_pixels(void) {
  synth_scene_options o = {.cameras = 3,
                           .people = 8,
                           .queries = 2,
                           .seconds = 20,
                           .fps = 3,
                           .width = 320,
                           .height = 180,
                           .threads = 1,
                           .first_identity = 100000,
                           .seed = 3};
  synth_scene *s = NULL;
  CHECK(synth_scene_plan(&o, &s) == REID_OK, "plan: %s", reid_last_error());
  if (!s) return;
  const int N = o.people, frames = o.seconds * o.fps;
  reid_image with = {0}, without = {0};
  reid_image_alloc(o.width, o.height, &with);
  reid_image_alloc(o.width, o.height, &without);
  synth_scene_box boxes[8];
  int busy_frames = 0, occluded = 0, full_view = 0, strays = 0, loose = 0, empty = 0;
  int cams_of[8] = {0};
  for (int c = 0; c < o.cameras; c++) {
    int seen[8] = {0};
    for (int t = 0; t < frames; t++) {
      CHECK(synth_scene_render(s, c, t, 1, 0, &with, boxes) == REID_OK, "render");
      CHECK(synth_scene_render(s, c, t, 0, 0, &without, NULL) == REID_OK, "render empty");
      int in_view = 0;
      for (int i = 0; i < N; i++) in_view += boxes[i].pixels > 0, seen[i] |= boxes[i].pixels > 0;
      busy_frames += in_view >= 2;
      /* every changed pixel is near a box */
      for (int y = 0; y < o.height; y++)
        for (int x = 0; x < o.width; x++) {
          if (!changed(&with, &without, x, y)) continue;
          int inside = 0;
          for (int i = 0; i < N && !inside; i++)
            inside = boxes[i].pixels && x >= boxes[i].x0 - MARGIN && x < boxes[i].x1 + MARGIN &&
                     y >= boxes[i].y0 - MARGIN && y < boxes[i].y1 + MARGIN;
          strays += !inside;
        }
      for (int i = 0; i < N; i++) {
        const synth_scene_box *b = &boxes[i];
        if (!b->pixels) continue;
        CHECK(b->x0 >= 0 && b->y0 >= 0 && b->x1 <= o.width && b->y1 <= o.height && b->x0 < b->x1 &&
                  b->y0 < b->y1,
              "camera %d frame %d person %d: box inside the frame", c, t, i);
        CHECK(b->visibility >= 0 && b->visibility <= 1.0001f, "visibility in [0, 1]");
        int n = 0, area = (b->x1 - b->x0) * (b->y1 - b->y0);
        for (int y = b->y0; y < b->y1; y++)
          for (int x = b->x0; x < b->x1; x++) n += changed(&with, &without, x, y);
        /* a person fills a good part of its box (limbs leave gaps) */
        if (b->visibility > 0.99f && b->pixels >= 100) empty += n < 0.2 * area;
        if (b->visibility < 0.9f) {
          occluded++;
          int overlaps = 0;
          for (int j = 0; j < N; j++)
            overlaps |= j != i && boxes[j].pixels && boxes[j].x0 < b->x1 && b->x0 < boxes[j].x1 &&
                        boxes[j].y0 < b->y1 && b->y0 < boxes[j].y1;
          CHECK(overlaps, "camera %d frame %d: person %d is %.0f%% hidden by nobody", c, t, i,
                100 * b->visibility);
        }
        if (b->visibility > 0.99f && b->pixels >= 100) { /* tight: changes on all four sides */
          full_view++;
          int side[4] = {0};
          for (int y = b->y0; y < b->y1; y++)
            for (int d = 0; d < 2; d++) {
              side[0] |= b->x0 + d < b->x1 && changed(&with, &without, b->x0 + d, y);
              side[1] |= b->x1 - 1 - d >= b->x0 && changed(&with, &without, b->x1 - 1 - d, y);
            }
          for (int x = b->x0; x < b->x1; x++)
            for (int d = 0; d < 2; d++) {
              side[2] |= b->y0 + d < b->y1 && changed(&with, &without, x, b->y0 + d);
              side[3] |= b->y1 - 1 - d >= b->y0 && changed(&with, &without, x, b->y1 - 1 - d);
            }
          loose += !(side[0] && side[1] && side[2] && side[3]);
        }
      }
    }
    for (int i = 0; i < N; i++) cams_of[i] += seen[i];
  }
  int twice = 0;
  for (int i = 0; i < N; i++) twice += cams_of[i] >= 2;
  fprintf(stderr,
          "frames with >= 2 people %d, occluded boxes %d, full-view boxes %d; stray changed "
          "pixels %d, loose boxes %d, sparse boxes %d; people in two cameras %d of %d\n",
          busy_frames, occluded, full_view, strays, loose, empty, twice, N);
  CHECK(strays == 0, "%d changed pixels lie outside every box", strays);
  CHECK(loose <= full_view / 50, "%d of %d full-view boxes are not tight", loose, full_view);
  CHECK(empty == 0, "%d full-view boxes are mostly background", empty);
  CHECK(busy_frames >= 10 && occluded >= 3 && full_view >= 50, "the scene is too empty");
  CHECK(twice >= 2, "only %d people are seen by two cameras", twice);
  reid_image_free(&with);
  reid_image_free(&without);
  synth_scene_free(s);
}

static void check_files(void) {
  char dir[512];
  fixture_tmpdir(dir, sizeof dir);
  char out[600];
  snprintf(out, sizeof out, "%s/scene", dir);
  synth_scene_options o = {.output = out,
                           .cameras = 2,
                           .people = 4,
                           .queries = 2,
                           .seconds = 4,
                           .fps = 5,
                           .width = 160,
                           .height = 96,
                           .threads = 2,
                           .first_identity = 100000,
                           .seed = 5};
  synth_scene_stats st;
  CHECK(synth_scene_generate(&o, &st) == REID_OK, "generate: %s", reid_last_error());
  CHECK(st.frames == 20 && st.queries == 2, "%d frames, %d queries", st.frames, st.queries);
  for (int c = 1; c <= 2; c++) {
    reid_mot *gt = NULL, *tr = NULL;
    CHECK(reid_mot_load(fixture_path("%s/cam%d.gt.txt", out, c), &gt) == REID_OK, "gt: %s",
          reid_last_error());
    CHECK(reid_mot_load(fixture_path("%s/cam%d.tracker.txt", out, c), &tr) == REID_OK,
          "tracker: %s", reid_last_error());
    for (int i = 0; gt && i < gt->count; i++)
      CHECK(gt->rows[i].id >= 1 && gt->rows[i].id <= 4 && gt->rows[i].frame <= 20, "gt row");
    reid_mot_free(gt);
    reid_mot_free(tr);
    const char *exts[3] = {"mp4", "avi", "mkv"};
    int frames = 0;
    for (int e = 0; e < 3; e++) {
      reid_video_reader *r = NULL;
      if (reid_video_reader_open(fixture_path("%s/cam%d.%s", out, c, exts[e]), &r) != REID_OK)
        continue;
      const reid_image *img;
      int got = 1;
      while (got && reid_video_reader_next(r, &img, &got) == REID_OK && got) frames++;
      reid_video_reader_close(r);
    }
    CHECK(frames == 20, "camera %d: the video decodes to %d frames, not 20", c, frames);
  }
  reid_image q = {0};
  int photos = 0;
  for (int i = 1; i <= 4; i++)
    if (reid_image_load_rgb(fixture_path("%s/queries/person-%04d.png", out, i), &q) == REID_OK)
      photos++, reid_image_free(&q);
  CHECK(photos == 2, "%d query photos, not 2", photos);
  /* the crops for calibration: the photos are the queries, the walks the gallery */
  char crops_out[700];
  snprintf(crops_out, sizeof crops_out, "%s/crops-scene", dir);
  o.output = crops_out;
  o.crops = 2;
  CHECK(synth_scene_generate(&o, &st) == REID_OK, "generate with crops: %s", reid_last_error());
  reid_dataset *d = NULL;
  CHECK(reid_dataset_load(fixture_path("%s/crops", crops_out), REID_LAYOUT_DUKE, &d) == REID_OK,
        "the crops load as a Duke dataset: %s", reid_last_error());
  if (d) {
    CHECK(d->query.count == 4 && d->gallery.count >= 2 && d->train.count == 0,
          "crops: %d query, %d gallery, %d train tracklets", d->query.count, d->gallery.count,
          d->train.count);
    for (int i = 0; i < d->query.count; i++)
      CHECK(d->query.samples[i].camid == 2, "the photos are the third camera's");
    reid_dataset_free(d);
  }
  o.people = 0;
  CHECK(synth_scene_generate(&o, &st) == REID_EINVAL, "no people is refused");
  fixture_rm_tree(dir);
}

int main(void) {
  check_pixels();
  check_files();
  return test_finish("test_synth_scene");
}
