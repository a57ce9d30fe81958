/* reid-train synth --scene: renders a scene (synth_scene.c) into a folder:
 *
 *   scene.txt          what is where (read by `reid-train scene-eval` and pipelines/demo.sh)
 *   camK.mp4           camera K's video (H.264; .avi MJPEG or .mkv FFV1 without libx264)
 *   camK.gt.txt        MOTChallenge ground truth: frame, person, x, y, w, h, 1, 1, visibility
 *                      (person = the global identity, the same in every camera)
 *   camK.tracker.txt   what a tracker would give: frame, track, x, y, w, h, conf, -1, -1, -1
 *   queries/person-NNNN.png   photos of some people by a camera of their own
 *
 * The tracker-like file is the ground truth degraded as real trackers degrade it: people
 * under 35% visible or under 24 pixels tall are not detected, 5% of the other detections
 * are missed, boxes jitter (3% of the size in position, 4% in size), a track lost for more
 * than 8 frames comes back under a new id, a track breaks into a new id now and then (0.4%
 * a frame), and when two people overlap (IoU > 0.3) their ids swap with probability 0.35
 * (once per encounter). Track ids are the tracker's own (1, 2, ... per camera), not people.
 *
 * With crops (training and calibration data in the scene's own look), DIR/crops/ holds the
 * people in the DukeMTMC-VideoReID layout, 128x64 JPEGs: each person's walk through camera K
 * is tracklet K (its ground-truth boxes at least half visible and 32 pixels tall), and photos
 * by third cameras are tracklet C + 1 (camera C + 1): four photos, each by another camera, on
 * the train side (crops 1: everything in train/); one photo on the test side (crops 2: the
 * photos are query/, the walks gallery/), as the watchlist compares them. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth.h"
#include "video.h"

#define BATCH_FRAMES 8
#define CROP_H       128
#define CROP_W       64

/* crops/<split>/PPPP/TTTT/PPPP_C<cam>_F<frame>.jpg of one 128x64 crop of img. */
static reid_status write_crop(const synth_scene_options *o, const char *split, int person,
                              int camera, int frame, const reid_image *img, float x, float y,
                              float w, float h) {
  char dir[4096], path[4200];
  snprintf(dir, sizeof dir, "%s/crops/%s/%04d/%04d", o->output, split, person, camera);
  reid_status st = synth_make_dirs(dir, "x");
  if (st != REID_OK) return st;
  snprintf(path, sizeof path, "%s/%04d_C%d_F%04d.jpg", dir, person, camera, frame);
  reid_image crop = {0};
  REID_TRY(reid_image_alloc(CROP_W, CROP_H, &crop));
  reid_image_resize_into(img, x, y, w, h, &crop, 0, 0, CROP_W, CROP_H);
  st = reid_image_save_jpeg(path, &crop, 92);
  reid_image_free(&crop);
  return st;
}

/* The crops of frame t of camera c (gt: that frame's boxes). */
static reid_status write_frame_crops(const synth_scene_options *o, int N, int c, int t,
                                     const synth_scene_box *gt, const reid_image *img) {
  const char *split = o->crops == 1 ? "train" : "gallery";
  for (int i = 0; i < N; i++) {
    const synth_scene_box *b = &gt[i];
    if (!b->pixels || b->visibility < 0.5f || b->y1 - b->y0 < 32) continue;
    REID_TRY(write_crop(o, split, i + 1, c + 1, t + 1, img, (float)b->x0, (float)b->y0,
                        (float)(b->x1 - b->x0), (float)(b->y1 - b->y0)));
  }
  return REID_OK;
}

static float box_iou(const synth_scene_box *a, const synth_scene_box *b) {
  int ix = (a->x1 < b->x1 ? a->x1 : b->x1) - (a->x0 > b->x0 ? a->x0 : b->x0);
  int iy = (a->y1 < b->y1 ? a->y1 : b->y1) - (a->y0 > b->y0 ? a->y0 : b->y0);
  if (ix <= 0 || iy <= 0) return 0;
  float inter = (float)ix * iy, ua = (float)(a->x1 - a->x0) * (a->y1 - a->y0),
        ub = (float)(b->x1 - b->x0) * (b->y1 - b->y0);
  return inter / (ua + ub - inter);
}

static reid_status open_text(const char *dir, const char *name, FILE **f, char *path, size_t cap) {
  snprintf(path, cap, "%s/%s", dir, name);
  *f = fopen(path, "w");
  return *f ? REID_OK : reid_fail(REID_EIO, "%s: cannot create the file", path);
}

static reid_status close_text(FILE *f, const char *path) {
  int bad = ferror(f);
  bad |= fclose(f) != 0;
  return bad ? reid_fail(REID_EIO, "%s: write failed", path) : REID_OK;
}

/* Renders camera c: the video, and gt[t * N + i] for every frame t and person i. */
static reid_status render_camera(const synth_scene *s, const synth_scene_options *o, int c,
                                 int frames, synth_scene_box *gt, const char **codec) {
  char base[4096];
  snprintf(base, sizeof base, "%s/cam%d", o->output, c + 1);
  reid_video_writer *w = NULL;
  REID_TRY(reid_video_writer_open(base, o->width, o->height, o->fps, &w));
  *codec = reid_video_writer_codec(w);
  reid_image imgs[BATCH_FRAMES] = {0};
  reid_status st = REID_OK;
  for (int b = 0; b < BATCH_FRAMES && st == REID_OK; b++)
    st = reid_image_alloc(o->width, o->height, &imgs[b]);
  const int N = synth_scene_people(s);
  for (int t0 = 0; t0 < frames && st == REID_OK; t0 += BATCH_FRAMES) {
    int n = frames - t0 < BATCH_FRAMES ? frames - t0 : BATCH_FRAMES;
    reid_status part[BATCH_FRAMES];
    char message[BATCH_FRAMES][256];
#pragma omp parallel for num_threads(o->threads) schedule(dynamic)
    for (int b = 0; b < n; b++) {
      part[b] = synth_scene_render(s, c, t0 + b, 1, 1, &imgs[b], gt + (size_t)(t0 + b) * N);
      if (part[b] != REID_OK) snprintf(message[b], sizeof message[b], "%s", reid_last_error());
    }
    for (int b = 0; b < n && st == REID_OK; b++) {
      if (part[b] != REID_OK) st = reid_fail(part[b], "%s", message[b]);
      if (st == REID_OK) st = reid_video_writer_add(w, &imgs[b]);
      if (st == REID_OK && o->crops)
        st = write_frame_crops(o, N, c, t0 + b, gt + (size_t)(t0 + b) * N, &imgs[b]);
    }
  }
  for (int b = 0; b < BATCH_FRAMES; b++) reid_image_free(&imgs[b]);
  if (st == REID_OK) return reid_video_writer_close(w);
  reid_video_writer_abort(w);
  return st;
}

static reid_status write_gt(const synth_scene_options *o, int c, int frames, int N,
                            const synth_scene_box *gt, int *boxes) {
  char name[64], path[4096];
  snprintf(name, sizeof name, "cam%d.gt.txt", c + 1);
  FILE *f;
  REID_TRY(open_text(o->output, name, &f, path, sizeof path));
  for (int t = 0; t < frames; t++)
    for (int i = 0; i < N; i++) {
      const synth_scene_box *b = &gt[(size_t)t * N + i];
      if (!b->pixels) continue;
      fprintf(f, "%d,%d,%d,%d,%d,%d,1,1,%.3f\n", t + 1, i + 1, b->x0, b->y0, b->x1 - b->x0,
              b->y1 - b->y0, b->visibility);
      (*boxes)++;
    }
  return close_text(f, path);
}

/* The tracker-like file of camera c (see the header comment). */
static reid_status write_tracker(const synth_scene_options *o, int c, int frames, int N,
                                 const synth_scene_box *gt, int *boxes, int *tracks) {
  char name[64], path[4096];
  snprintf(name, sizeof name, "cam%d.tracker.txt", c + 1);
  int *tid = calloc((size_t)N, sizeof(int)), *last = calloc((size_t)N, sizeof(int));
  unsigned char *met = calloc((size_t)N * N, 1), *det = calloc((size_t)N, 1);
  FILE *f = NULL;
  reid_status st =
      tid && last && met && det ? REID_OK : reid_fail(REID_ENOMEM, "synth: out of memory");
  if (st == REID_OK) st = open_text(o->output, name, &f, path, sizeof path);
  if (st != REID_OK) goto done;
  reid_rng r;
  synth_stream(&r, o->seed, 34, (uint64_t)c);
  int next = 1;
  for (int t = 0; t < frames; t++) {
    const synth_scene_box *row = gt + (size_t)t * N;
    for (int i = 0; i < N; i++) {
      const synth_scene_box *b = &row[i];
      det[i] = b->pixels && b->visibility >= 0.35f && b->y1 - b->y0 >= 24 &&
               reid_rng_uniform(&r) >= 0.05f;
      if (!det[i]) continue;
      if (!tid[i] || t - last[i] > 8 || reid_rng_uniform(&r) < 0.004f) tid[i] = next++;
      last[i] = t;
    }
    for (int i = 0; i < N; i++) /* id switches where two people overlap */
      for (int j = i + 1; j < N; j++) {
        unsigned char *m = &met[(size_t)i * N + j];
        float iou = row[i].pixels && row[j].pixels ? box_iou(&row[i], &row[j]) : 0;
        if (iou <= 0.05f) *m = 0; /* apart again: the next encounter decides anew */
        if (iou <= 0.3f || *m || !det[i] || !det[j]) continue;
        *m = 1;
        if (reid_rng_uniform(&r) < 0.35f) {
          int x = tid[i];
          tid[i] = tid[j], tid[j] = x;
        }
      }
    for (int i = 0; i < N; i++) {
      if (!det[i]) continue;
      const synth_scene_box *b = &row[i];
      float w = (float)(b->x1 - b->x0), h = (float)(b->y1 - b->y0);
      float x = b->x0 + 0.03f * w * reid_rng_normal(&r),
            y = b->y0 + 0.03f * h * reid_rng_normal(&r);
      w *= 1 + 0.04f * reid_rng_normal(&r);
      h *= 1 + 0.04f * reid_rng_normal(&r);
      float x1 = fminf(x + w, (float)o->width), y1 = fminf(y + h, (float)o->height);
      x = fmaxf(x, 0), y = fmaxf(y, 0);
      if (x1 - x < 4 || y1 - y < 4) continue;
      fprintf(f, "%d,%d,%.1f,%.1f,%.1f,%.1f,%.2f,-1,-1,-1\n", t + 1, tid[i], x, y, x1 - x, y1 - y,
              0.5f + 0.5f * b->visibility);
      (*boxes)++;
    }
  }
  *tracks += next - 1;
  st = close_text(f, path);
done:
  free(tid);
  free(last);
  free(met);
  free(det);
  return st;
}

/* Photo k of a person by a camera of its own (colour, light, background, viewpoint drawn per
 * photo), width x height. k = 0 is the query photo. */
static reid_status render_photo(const synth_scene_options *o, int person, int k, int width,
                                int height, reid_image *img) {
  synth_identity id;
  synth_identity_make(SYNTH_PERSON, o->seed, o->first_identity + person, &id);
  synth_camera cam;
  synth_camera_make(o->seed ^ 0x9E57ull, 1000 + person + 100003 * k, &cam);
  cam.blur *= 0.5f; /* a photo taken to show the person */
  reid_rng r;
  synth_stream(&r, o->seed, 35, (uint64_t)person + 100003u * (uint64_t)k);
  synth_clip_look look;
  synth_clip_make(&cam, SYNTH_PERSON, &r, &look);
  look.occluder = 0;
  float *canvas = malloc(sizeof(float) * 6 * (size_t)width * height);
  reid_status st = canvas ? reid_image_alloc(width, height, img)
                          : reid_fail(REID_ENOMEM, "synth: out of memory");
  if (st == REID_OK) synth_render(&id, &cam, &look, 0, &r, canvas, img);
  free(canvas);
  return st;
}

/* Query photos: 256x128, like a person crop. */
static reid_status write_query(const synth_scene_options *o, int person, const char *rel) {
  reid_image img = {0};
  reid_status st = render_photo(o, person, 0, 128, 256, &img);
  if (st == REID_OK) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", o->output, rel);
    st = reid_image_save_png(path, &img);
  }
  reid_image_free(&img);
  return st;
}

/* The photo tracklets of the crops (see the header comment). */
static reid_status write_photo_crops(const synth_scene_options *o, int N) {
  const int photos = o->crops == 1 ? 4 : 1;
  const char *split = o->crops == 1 ? "train" : "query";
  reid_status st = REID_OK;
  for (int i = 0; i < N && st == REID_OK; i++)
    for (int k = 0; k < photos && st == REID_OK; k++) {
      reid_image img = {0};
      st = render_photo(o, i, k, 128, 256, &img);
      if (st == REID_OK)
        st = write_crop(o, split, i + 1, o->cameras + 1, k + 1, &img, 0, 0, 128, 256);
      reid_image_free(&img);
    }
  return st;
}

reid_status synth_scene_generate(const synth_scene_options *o, synth_scene_stats *stats) {
  memset(stats, 0, sizeof *stats);
  synth_scene *s = NULL;
  REID_TRY(synth_scene_plan(o, &s));
  const int N = synth_scene_people(s), frames = o->seconds * o->fps;
  stats->frames = frames;
  synth_scene_box *gt = malloc(sizeof *gt * (size_t)frames * N);
  int *cams_seen = calloc((size_t)N, sizeof(int));
  reid_status st = gt && cams_seen ? REID_OK : reid_fail(REID_ENOMEM, "synth: out of memory");
  if (st == REID_OK) st = synth_prepare_output(o->output);
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/queries", o->output);
  if (st == REID_OK) st = synth_prepare_output(dir);
  FILE *f = NULL;
  char path[4096];
  if (st == REID_OK) st = open_text(o->output, "scene.txt", &f, path, sizeof path);
  if (st == REID_OK)
    fprintf(f,
            "# reid-train synth --scene: cameras, people (global ids 1..N), query photos\n"
            "seed %llu\nfps %d\nframes %d\nsize %dx%d\npeople %d\nfirst_identity %d\n",
            (unsigned long long)o->seed, o->fps, frames, o->width, o->height, N, o->first_identity);
  for (int c = 0; c < o->cameras && st == REID_OK; c++) {
    st = render_camera(s, o, c, frames, gt, &stats->codec);
    if (st == REID_OK) st = write_gt(o, c, frames, N, gt, &stats->gt_boxes);
    if (st == REID_OK)
      st = write_tracker(o, c, frames, N, gt, &stats->tracker_boxes, &stats->tracker_tracks);
    for (int i = 0; i < N; i++) {
      int seen = 0;
      for (int t = 0; t < frames && !seen; t++) seen = gt[(size_t)t * N + i].pixels > 0;
      cams_seen[i] += seen;
    }
    const char *ext = !stats->codec                      ? "mp4"
                      : !strcmp(stats->codec, "libx264") ? "mp4"
                      : !strcmp(stats->codec, "mjpeg")   ? "avi"
                                                         : "mkv";
    if (st == REID_OK)
      fprintf(f, "camera %d cam%d.%s cam%d.gt.txt cam%d.tracker.txt %s\n", c + 1, c + 1, ext, c + 1,
              c + 1, c % 2 == 0 ? "lateral" : "depth");
  }
  /* queries: people seen by two cameras first, then the others */
  for (int pass = 0; pass < 2 && st == REID_OK; pass++)
    for (int i = 0; i < N && stats->queries < o->queries && st == REID_OK; i++) {
      if ((cams_seen[i] >= 2) != (pass == 0) || cams_seen[i] == 0) continue;
      char rel[64];
      snprintf(rel, sizeof rel, "queries/person-%04d.png", i + 1);
      st = write_query(o, i, rel);
      if (st == REID_OK) fprintf(f, "query %s %d\n", rel, i + 1);
      stats->queries++;
    }
  if (st == REID_OK && o->crops) st = write_photo_crops(o, N);
  /* the layout's other folders, empty: the loader wants all three */
  static const char *const splits[3] = {"train/x", "query/x", "gallery/x"};
  for (int k = 0; k < 3 && st == REID_OK && o->crops; k++) {
    char root[4096];
    snprintf(root, sizeof root, "%s/crops", o->output);
    st = synth_make_dirs(root, splits[k]);
  }
  for (int i = 0; i < N; i++) stats->people_seen_twice += cams_seen[i] >= 2;
  if (f) {
    reid_status cs = close_text(f, path);
    if (st == REID_OK) st = cs;
  }
  free(gt);
  free(cams_seen);
  synth_scene_free(s);
  return st;
}
