/* The collected layout (reidembed collect-location=) on hand-made folders: streams are
 * cameras, tracklet folders identities, crops in frame order, "together_with" becomes
 * sorted unique distinct pairs, deleted / empty / unfinished (.part) tracklets are left
 * out, a malformed index line is skipped and counted, detection, a batch of the train
 * loader, and the errors of a folder with no stream. */
#include "data_fixture.h"
#include "image.h"
#include "loader.h"

static char tmp[512];

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(2);
  }
}

static void make_dir(const char *path) {
  if (mkdir(path, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "mkdir %s: %s\n", path, strerror(errno));
    exit(2);
  }
}

/* A tracklet folder with `n` crops named by frame index first_frame, first_frame + 3, ... */
static void make_tracklet(const char *stream_dir, const char *name, int first_frame, int n) {
  char dir[800];
  snprintf(dir, sizeof dir, "%s/%s", stream_dir, name);
  make_dir(dir);
  reid_image img;
  CHECK_OK(reid_image_alloc(16, 32, &img));
  for (int i = 0; i < n; i++) {
    memset(img.data, 40 * i, (size_t)img.stride * img.height);
    CHECK_OK(
        reid_image_save_jpeg(fixture_path("%s/%010d.jpg", dir, first_frame + 3 * i), &img, 90));
  }
  reid_image_free(&img);
}

static void test_layout(void) {
  char root[600], a[700], b[700]; /* fixture_path's buffers rotate: keep our own copies */
  snprintf(root, sizeof root, "%s/site", tmp);
  make_dir(root);
  /* cam-b sorts after cam-a: camera 1 */
  snprintf(a, sizeof a, "%s/cam-a", root);
  make_dir(a);
  make_tracklet(a, "000001", 5, 3);
  make_tracklet(a, "000002", 7, 2);
  make_tracklet(a, "000004", 100, 1);
  make_dir(fixture_path("%s/000003", a));           /* no crops: ignored */
  make_tracklet(a, ".000005.part", 200, 2);         /* unfinished: hidden, ignored */
  write_text(fixture_path("%s/notes.txt", a), "x"); /* not a folder: ignored */
  write_text(fixture_path("%s/index.jsonl", a),
             "{\"event\":\"collected\",\"dir\":\"000001\",\"track_id\":7,"
             "\"together_with\":[\"000002\",\"000009\",\"000001\"]}\n"
             "{\"event\":\"collected\",\"dir\":\"000002\",\"track_id\":8,"
             "\"together_with\":[\"000001\",\"000004\"]}\n"
             "{\"event\":\"dropped\",\"track_id\":9,\"reason\":\"queue-full\"}\n"
             "{\"event\":\"collected\",\"dir\":\"000004\",\"together_with\":[\"000003\"]}\n"
             "{\"event\":\"collected\",\"dir\":\"0000");
  snprintf(b, sizeof b, "%s/cam-b", root);
  make_dir(b);
  make_tracklet(b, "000001", 0, 4);
  write_text(fixture_path("%s/index.jsonl", b),
             "{\"event\":\"collected\",\"dir\":\"000001\",\"together_with\":[]}\n");
  snprintf(b, sizeof b, "%s/not-a-stream", root); /* no index.jsonl: not a camera */
  make_dir(b);
  make_tracklet(b, "000001", 0, 1);

  reid_layout detected;
  reid_dataset *d = NULL;
  CHECK_OK(reid_dataset_load(root, REID_LAYOUT_AUTO, &d));
  if (!d) return;
  detected = d->layout;
  CHECK(detected == REID_LAYOUT_COLLECTED, "detected %s", reid_layout_name(detected));
  CHECK(d->video == 1, "video %d", d->video);
  CHECK(d->train.count == 4 && d->query.count == 0 && d->gallery.count == 0, "splits %d/%d/%d",
        d->train.count, d->query.count, d->gallery.count);
  CHECK(d->n_train_ids == 4, "%d ids", d->n_train_ids);
  CHECK(d->n_frames == 10, "%d frames", d->n_frames);
  CHECK(d->skipped == 1, "%d skipped (the cut index line)", d->skipped);
  const int cams[4] = {0, 0, 0, 1}, lens[4] = {3, 2, 1, 4};
  for (int i = 0; i < d->train.count && i < 4; i++) {
    const reid_sample *s = &d->train.samples[i];
    CHECK(s->pid == i + 1 && s->label == i && s->camid == cams[i] && s->n_frames == lens[i],
          "sample %d: pid %d label %d cam %d frames %d", i, s->pid, s->label, s->camid,
          s->n_frames);
  }
  const reid_sample *s0 = &d->train.samples[0];
  CHECK(strstr(d->frames[s0->first_frame], "cam-a/000001/0000000005.jpg") &&
            strstr(d->frames[s0->first_frame + 2], "cam-a/000001/0000000011.jpg"),
        "frame order: %s .. %s", d->frames[s0->first_frame], d->frames[s0->first_frame + 2]);
  /* 000001-000002 (listed twice), 000002-000004; 000009 unknown, self and empty ignored */
  CHECK(d->n_distinct_pairs == 2, "%d distinct pairs", d->n_distinct_pairs);
  if (d->n_distinct_pairs == 2)
    CHECK(d->distinct_pairs[0][0] == 0 && d->distinct_pairs[0][1] == 1 &&
              d->distinct_pairs[1][0] == 1 && d->distinct_pairs[1][1] == 2,
          "pairs (%d,%d) (%d,%d)", d->distinct_pairs[0][0], d->distinct_pairs[0][1],
          d->distinct_pairs[1][0], d->distinct_pairs[1][1]);

  /* the train loader draws batches from it (one tracklet per identity) */
  reid_loader_config c = {.batch_p = 2,
                          .batch_k = 2,
                          .frames = 2,
                          .sampling = REID_FRAMES_RANDOM_CHUNKS,
                          .height = 32,
                          .width = 16,
                          .mean = {0.5f, 0.5f, 0.5f},
                          .std = {0.25f, 0.25f, 0.25f},
                          .threads = 1,
                          .prefetch = 1,
                          .seed = 3};
  reid_loader *l = NULL;
  CHECK_OK(reid_loader_train(d, &c, &l));
  reid_batch batch;
  if (l) {
    CHECK_OK(reid_loader_next(l, &batch));
    CHECK(batch.batch == 4 && batch.frames == 2, "batch %d x %d", batch.batch, batch.frames);
    reid_loader_destroy(l);
  }
  reid_dataset_free(d);

  /* explicit layout; a user deleting a tracklet folder just loses that identity */
  fixture_rm_tree(fixture_path("%s/cam-a/000002", root));
  CHECK_OK(reid_dataset_load(root, REID_LAYOUT_COLLECTED, &d));
  if (d) {
    CHECK(d->train.count == 3 && d->n_distinct_pairs == 0, "after deletion: %d samples, %d pairs",
          d->train.count, d->n_distinct_pairs);
    reid_dataset_free(d);
  }
}

static void test_errors(void) {
  reid_layout l;
  CHECK_OK(reid_layout_parse("collected", &l));
  CHECK(l == REID_LAYOUT_COLLECTED && !strcmp(reid_layout_name(l), "collected"), "parse");
  const char *empty = fixture_path("%s/empty", tmp);
  make_dir(empty);
  make_dir(fixture_path("%s/cam", empty));
  reid_dataset *d = NULL;
  CHECK(reid_dataset_load(empty, REID_LAYOUT_COLLECTED, &d) == REID_EFORMAT && !d,
        "no stream accepted");
  CHECK(strstr(reid_last_error(), "no collected stream"), "message: %s", reid_last_error());
  CHECK(reid_dataset_load(empty, REID_LAYOUT_AUTO, &d) == REID_EFORMAT &&
            strstr(reid_last_error(), "STREAM/index.jsonl"),
        "detection message: %s", reid_last_error());
  /* a stream whose tracklets hold no crops at all: an empty dataset */
  write_text(fixture_path("%s/cam/index.jsonl", empty), "");
  CHECK(reid_dataset_load(empty, REID_LAYOUT_AUTO, &d) == REID_EFORMAT &&
            strstr(reid_last_error(), "holds no samples"),
        "empty: %s", reid_last_error());
  CHECK(reid_dataset_load(fixture_path("%s/missing", tmp), REID_LAYOUT_COLLECTED, &d) == REID_EIO,
        "missing folder");
}

int main(void) {
  fixture_tmpdir(tmp, sizeof tmp);
  test_layout();
  test_errors();
  fixture_rm_tree(tmp);
  return test_finish("test_dataset_collected");
}
