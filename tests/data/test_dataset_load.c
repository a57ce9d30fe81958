/* Every loader on generated fixtures: counts of identities, cameras, tracklets, query and
 * gallery sizes, contiguous train labels in pid order, frames in temporal order, distractors
 * and junk where the layout has them, layout detection. */
#include "data_fixture.h"

/* Invariants every loaded dataset must satisfy. */
static void check_consistency(const reid_dataset *d, const char *what) {
  const reid_split *splits[3] = {&d->train, &d->query, &d->gallery};
  for (int s = 0; s < 3; s++)
    for (int i = 0; i < splits[s]->count; i++) {
      const reid_sample *x = &splits[s]->samples[i];
      CHECK(x->n_frames >= 1 && x->first_frame >= 0 && x->first_frame + x->n_frames <= d->n_frames,
            "%s split %d sample %d frames [%d, +%d) of %d", what, s, i, x->first_frame, x->n_frames,
            d->n_frames);
      CHECK(x->camid >= 0, "%s: camid %d", what, x->camid);
      if (s == 0)
        CHECK(x->label >= 0 && x->label < d->n_train_ids, "%s: label %d", what, x->label);
      else
        CHECK(x->label == -1, "%s: split %d label %d", what, s, x->label);
      if (!d->video) CHECK(x->n_frames == 1, "%s: image sample with %d frames", what, x->n_frames);
    }
  /* labels contiguous and ordered like the pids */
  int *seen = calloc((size_t)d->n_train_ids + 1, sizeof(int));
  for (int i = 0; i < d->train.count; i++) {
    const reid_sample *a = &d->train.samples[i];
    seen[a->label] = 1;
    CHECK(a->pid > 0, "%s: train pid %d", what, a->pid);
    for (int j = 0; j < d->train.count; j++) {
      const reid_sample *b = &d->train.samples[j];
      CHECK((a->pid < b->pid) == (a->label < b->label) &&
                (a->pid == b->pid) == (a->label == b->label),
            "%s: labels not in pid order (%d->%d, %d->%d)", what, a->pid, a->label, b->pid,
            b->label);
    }
  }
  for (int l = 0; l < d->n_train_ids; l++) CHECK(seen[l], "%s: label %d unused", what, l);
  free(seen);
  for (int f = 0; f < d->n_frames; f++) {
    struct stat sb;
    CHECK(stat(d->frames[f], &sb) == 0 && S_ISREG(sb.st_mode), "%s: frame %s missing", what,
          d->frames[f]);
  }
  CHECK(d->skipped == 0, "%s: %d skipped", what, d->skipped);
}

static int count_pid(const reid_split *s, int pid) {
  int n = 0;
  for (int i = 0; i < s->count; i++) n += s->samples[i].pid == pid;
  return n;
}

static int distinct_cameras(const reid_split *s) {
  int seen[64] = {0}, n = 0;
  for (int i = 0; i < s->count; i++)
    if (s->samples[i].camid < 64 && !seen[s->samples[i].camid]++) n++;
  return n;
}

static reid_dataset *load(const char *root, reid_layout layout) {
  reid_dataset *d = NULL;
  reid_status st = reid_dataset_load(root, layout, &d);
  CHECK(st == REID_OK, "load %s: %s", root, reid_last_error());
  return d;
}

static void test_mars(const char *tmp) {
  const char *root = fixture_path("%s/mars", tmp);
  fixture_spec spec = fixture_small(REID_LAYOUT_MARS);
  spec.distractors = 2;
  spec.junk = 1;
  fixture_synth(root, &spec);
  reid_dataset *d = load(root, REID_LAYOUT_MARS);
  if (!d) return;
  check_consistency(d, "mars");
  CHECK(d->video == 1 && d->layout == REID_LAYOUT_MARS, "video %d", d->video);
  CHECK(d->n_train_ids == 3, "train ids %d", d->n_train_ids);
  CHECK(d->train.count == 6, "train tracklets %d", d->train.count);
  CHECK(d->query.count == 6, "queries %d (3 ids x 2 cameras)", d->query.count);
  CHECK(d->gallery.count == 9, "gallery %d (6 + 2 distractors + 1 junk)", d->gallery.count);
  CHECK(count_pid(&d->gallery, 0) == 2 && count_pid(&d->gallery, -1) == 1, "distractors/junk");
  CHECK(distinct_cameras(&d->train) == 2 && distinct_cameras(&d->query) == 2, "cameras");
  CHECK(d->n_frames == (6 + 9) * 4, "frames %d", d->n_frames);
  for (int i = 0; i < d->train.count; i++) CHECK(d->train.samples[i].n_frames == 4, "len");
  /* each query is a gallery tracklet (the standard protocol keeps it there) */
  for (int q = 0; q < d->query.count; q++) {
    int found = 0;
    for (int g = 0; g < d->gallery.count; g++)
      found |= d->gallery.samples[g].first_frame == d->query.samples[q].first_frame;
    CHECK(found, "query %d not in the gallery", q);
  }
  /* temporal order: F001 .. F004 */
  const reid_sample *t = &d->train.samples[1];
  for (int f = 0; f < t->n_frames; f++)
    CHECK(strstr(d->frames[t->first_frame + f], fixture_path("F%03d.jpg", f + 1)) != NULL,
          "frame %d is %s", f, d->frames[t->first_frame + f]);
  reid_dataset_free(d);
  d = load(root, REID_LAYOUT_AUTO);
  CHECK(d && d->layout == REID_LAYOUT_MARS, "auto-detected mars");
  reid_dataset_free(d);
}

static void test_duke(const char *tmp) {
  const char *root = fixture_path("%s/duke", tmp);
  fixture_spec spec = fixture_small(REID_LAYOUT_DUKE);
  spec.distractors = 2;
  spec.frames = 11; /* F0001 .. F0011: sorted by number, not by name */
  fixture_synth(root, &spec);
  reid_dataset *d = load(root, REID_LAYOUT_AUTO);
  if (!d) return;
  check_consistency(d, "duke");
  CHECK(d->layout == REID_LAYOUT_DUKE && d->video == 1, "layout %d", d->layout);
  CHECK(d->n_train_ids == 3 && d->train.count == 6, "train %d ids %d tracklets", d->n_train_ids,
        d->train.count);
  CHECK(d->query.count == 3, "queries %d (one per test identity)", d->query.count);
  CHECK(d->gallery.count == 5, "gallery %d (3 + 2 distractors)", d->gallery.count);
  CHECK(count_pid(&d->gallery, 7) == 1 && count_pid(&d->gallery, 8) == 1, "distractor ids 7, 8");
  for (int q = 0; q < d->query.count; q++) { /* every query has a match in another camera */
    const reid_sample *x = &d->query.samples[q];
    int match = 0;
    for (int g = 0; g < d->gallery.count; g++)
      match |= d->gallery.samples[g].pid == x->pid && d->gallery.samples[g].camid != x->camid;
    CHECK(match, "query %d (pid %d) has no cross-camera match", q, x->pid);
  }
  const reid_sample *t = &d->train.samples[0];
  CHECK(t->n_frames == 11, "tracklet length %d", t->n_frames);
  for (int f = 0; f < t->n_frames; f++)
    CHECK(strstr(d->frames[t->first_frame + f], fixture_path("_F%04d_", f + 1)) != NULL,
          "frame %d is %s", f, d->frames[t->first_frame + f]);
  reid_dataset_free(d);
}

static void test_market(const char *tmp) {
  const char *root = fixture_path("%s/market", tmp);
  fixture_spec spec = fixture_small(REID_LAYOUT_MARKET);
  spec.distractors = 2;
  spec.junk = 1;
  fixture_synth(root, &spec);
  reid_dataset *d = load(root, REID_LAYOUT_AUTO);
  if (!d) return;
  check_consistency(d, "market");
  CHECK(d->layout == REID_LAYOUT_MARKET && d->video == 0, "layout %d", d->layout);
  CHECK(d->n_train_ids == 3 && d->train.count == 24, "train %d ids %d images", d->n_train_ids,
        d->train.count);
  CHECK(d->query.count == 6, "queries %d (3 ids x 2 cameras)", d->query.count);
  CHECK(d->gallery.count == 18 + 8 + 4, "gallery %d", d->gallery.count);
  CHECK(count_pid(&d->gallery, 0) == 8 && count_pid(&d->gallery, -1) == 4, "distractors/junk");
  CHECK(count_pid(&d->train, 0) == 0 && count_pid(&d->train, -1) == 0, "no junk in train");
  reid_dataset_free(d);
}

static void test_veri(const char *tmp) {
  const char *root = fixture_path("%s/veri", tmp);
  fixture_spec spec = fixture_small(REID_LAYOUT_VERI);
  spec.cameras = 12; /* three-digit camera names, c001 .. c012 */
  spec.distractors = 1;
  fixture_synth(root, &spec);
  reid_dataset *d = load(root, REID_LAYOUT_AUTO);
  if (!d) return;
  check_consistency(d, "veri");
  CHECK(d->layout == REID_LAYOUT_VERI && d->video == 0, "layout %d", d->layout);
  CHECK(d->n_train_ids == 3 && d->train.count == 24, "train %d ids %d images", d->n_train_ids,
        d->train.count);
  CHECK(d->query.count == 6, "queries %d", d->query.count);
  CHECK(d->gallery.count == 24 + 4, "gallery %d (queries stay in image_test)", d->gallery.count);
  int max_cam = 0;
  for (int i = 0; i < d->gallery.count; i++)
    if (d->gallery.samples[i].camid > max_cam) max_cam = d->gallery.samples[i].camid;
  CHECK(max_cam >= 3, "cameras up to %d", max_cam);
  reid_dataset_free(d);
}

static void test_layout_names(const char *tmp) {
  const char *names[] = {"auto", "mars", "duke", "market", "veri"};
  for (int i = 0; i < 5; i++) {
    reid_layout l;
    CHECK_OK(reid_layout_parse(names[i], &l));
    CHECK((int)l == i && !strcmp(reid_layout_name(l), names[i]), "%s", names[i]);
  }
  reid_layout l;
  CHECK(reid_layout_parse("cuhk03", &l) == REID_EINVAL && strstr(reid_last_error(), "cuhk03"),
        "unknown layout");
  CHECK_LOAD_FAILS(fixture_path("%s/does-not-exist", tmp), REID_LAYOUT_AUTO, REID_EIO,
                   "does-not-exist");
  const char *empty = fixture_path("%s/empty", tmp);
  mkdir(empty, 0755);
  CHECK_LOAD_FAILS(empty, REID_LAYOUT_AUTO, REID_EFORMAT, "no known dataset layout");
  CHECK_LOAD_FAILS(empty, REID_LAYOUT_MARKET, REID_EIO, "bounding_box_train");
}

int main(void) {
  char tmp[512];
  fixture_tmpdir(tmp, sizeof tmp);
  test_mars(tmp);
  test_duke(tmp);
  test_market(tmp);
  test_veri(tmp);
  test_layout_names(tmp);
  fixture_rm_tree(tmp);
  return test_finish("test_dataset_load");
}
