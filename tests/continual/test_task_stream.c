/* Task splits and episodes of `reid-train continual`: the intra-domain split on hand-made
 * id lists (Market-1501's 76 + 9 x 75 of 751 ids, in any input order), refused splits,
 * episodes of C x (S + Q) from identities with fewer images than that (repeats only then),
 * and the growing random erasing (none at the first batch of p 0 -> 1, all at the last). */
#include "sampler.h"
#include "task_stream.h"
#include "test_util.h"

static void test_split(void) {
  enum { N = 751 };
  int ids[N], task_of[N];
  test_rng r = test_rng_make(7);
  for (int i = 0; i < N; i++) ids[i] = 2 * i + 3; /* ids need not be contiguous */
  for (int i = N - 1; i > 0; i--) {               /* any order */
    int j = test_rng_int(&r, 0, i), t = ids[i];
    ids[i] = ids[j], ids[j] = t;
  }
  CHECK_OK(reid_split_intra(ids, N, 76, 10, task_of));
  int count[10] = {0};
  for (int i = 0; i < N; i++) {
    int rank = (ids[i] - 3) / 2, want = rank < 76 ? 0 : 1 + (rank - 76) / 75;
    CHECK(task_of[i] == want, "id %d (rank %d): task %d, want %d", ids[i], rank, task_of[i], want);
    if (task_of[i] >= 0 && task_of[i] < 10) count[task_of[i]]++;
  }
  CHECK(count[0] == 76, "task 0 has %d ids", count[0]);
  for (int t = 1; t < 10; t++) CHECK(count[t] == 75, "task %d has %d ids", t, count[t]);
  /* tiny hand-made list: 5 ids, 1 + 2 x 2 */
  int small[5] = {40, 10, 30, 20, 50}, to[5];
  CHECK_OK(reid_split_intra(small, 5, 1, 3, to));
  int want[5] = {2, 0, 1, 1, 2};
  for (int i = 0; i < 5; i++)
    CHECK(to[i] == want[i], "id %d: task %d, want %d", small[i], to[i], want[i]);
  /* refused */
  CHECK(reid_split_intra(ids, N, 75, 10, task_of) == REID_EINVAL, "751 - 75 is not 9 equal tasks");
  CHECK(reid_split_intra(ids, N, 0, 10, task_of) == REID_EINVAL, "an empty first task");
  CHECK(reid_split_intra(ids, N, 751, 10, task_of) == REID_EINVAL, "nothing left for 9 tasks");
  CHECK_OK(reid_split_intra(ids, N, 751, 1, task_of));
  int dup[4] = {1, 2, 2, 3};
  CHECK(reid_split_intra(dup, 4, 2, 3, to) == REID_EINVAL, "a repeated id");
}

/* Identity g has g % 3 + 1 images (1, 2 or 3): all fewer than the episode's S + Q = 6. */
static reid_dataset small_ids(reid_sample *samples, char **frames) {
  static char name[] = "unused.jpg";
  reid_dataset d = {0};
  d.layout = REID_LAYOUT_MARKET;
  d.frames = frames;
  int n = 0;
  for (int g = 0; g < 9; g++)
    for (int k = 0; k <= g % 3; k++, n++) {
      samples[n] = (reid_sample){10 + g, g, k, n, 1};
      frames[n] = name;
    }
  d.n_frames = n;
  d.train = (reid_split){samples, n};
  d.n_train_ids = 9;
  return d;
}

static void test_episodes(void) {
  reid_sample samples[32];
  char *frames[32];
  reid_dataset d = small_ids(samples, frames);
  enum { P = 4, K = 6, BATCHES = 20 };
  reid_loader_config c = {.batch_p = P,
                          .batch_k = K,
                          .frames = 1,
                          .sampling = REID_FRAMES_RANDOM_CHUNKS,
                          .height = 32,
                          .width = 16,
                          .threads = 1,
                          .prefetch = 1,
                          .seed = 9};
  c.augment = (reid_augment){.enabled = 1,
                             .flip_p = 0.5f,
                             .pad = 0,
                             .erase_p = 0,
                             .erase_area_min = 0.02f,
                             .erase_area_max = 0.1f,
                             .erase_aspect_min = 0.3f,
                             .grow_batches = BATCHES,
                             .erase_p_end = 1,
                             .erase_area_max_end = 0.34f};
  for (int i = 0; i < 3; i++) c.mean[i] = 0.5f, c.std[i] = 0.25f;
  reid_sampler s;
  CHECK_OK(reid_sampler_init(&s, &d, &d.train, 1, &c));
  int idx[P * K];
  reid_frame_job jobs[P * K];
  for (long b = 0; b < BATCHES; b++) {
    CHECK(reid_sampler_plan(&s, b, idx, jobs) == P * K, "batch %ld: a full episode", b);
    int erased = 0;
    for (int p = 0; p < P; p++) {
      int label = samples[idx[p * K]].label, have = label % 3 + 1;
      char used[32] = {0};
      for (int k = 0; k < K; k++) {
        const reid_sample *x = &samples[idx[p * K + k]];
        CHECK(x->label == label, "batch %ld: identity %d mixed with %d", b, label, x->label);
        if (k < have)
          CHECK(!used[idx[p * K + k]], "batch %ld: a repeat before all %d images", b, have);
        used[idx[p * K + k]] = 1;
      }
      int distinct = 0;
      for (int i = 0; i < 32; i++) distinct += used[i];
      CHECK(distinct == have, "batch %ld: identity %d shows %d of its %d images", b, label,
            distinct, have);
    }
    for (int i = 0; i < P * K; i++) {
      erased += jobs[i].aug.erase_w > 0;
      if (jobs[i].aug.erase_w > 0)
        CHECK(jobs[i].aug.erase_w * jobs[i].aug.erase_h <=
                  0.1 * 32 * 16 + 1e-9 + (0.34 - 0.1) * b / (BATCHES - 1) * 32 * 16 + 32,
              "batch %ld: erased %d x %d beyond the grown area", b, jobs[i].aug.erase_w,
              jobs[i].aug.erase_h);
    }
    if (b == 0) CHECK(erased == 0, "the first batch (p = 0) erased %d images", erased);
    if (b == BATCHES - 1)
      CHECK(erased == P * K, "the last batch (p = 1) erased %d of %d", erased, P * K);
  }
  reid_sampler_free(&s);
  /* an identity needs at least one image; C larger than the task is refused by the run */
  c.augment.erase_p_end = 2;
  CHECK(reid_sampler_init(&s, &d, &d.train, 1, &c) == REID_EINVAL, "erasing probability 2 refused");
}

int main(void) {
  test_split();
  test_episodes();
  return test_finish("test_task_stream");
}
