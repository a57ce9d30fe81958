/* Sampler properties on a hand-made dataset (no images needed): P distinct identities with K
 * samples each, frames inside the sample's tracklet, one frame per chunk and every frame of a
 * chunk reachable, evenly spaced evaluation frames, multi-view frames across the identity's
 * tracklets and cameras, epochs that visit every identity, batches that depend only on
 * (seed, index), evaluation batches in order, identities seen together kept together
 * (group_distinct), and bad configurations refused. */
#include "sampler.h"
#include "test_util.h"

enum { IDS = 7 };

/* Identity g (pid 100 + g, label g) has 2 + g % 3 tracklets; tracklet t is camera t % 3 and
 * 1 + (5 g + 3 t) % 17 frames long. Samples are listed round-robin over identities. */
static reid_dataset make_dataset(void) {
  static char *frames[4096];
  static char name[] = "unused.jpg";
  static reid_sample samples[64];
  reid_dataset d = {0};
  d.layout = REID_LAYOUT_MARS;
  d.video = 1;
  d.frames = frames;
  int n = 0, next_frame = 0;
  for (int t = 0; t < 4; t++)
    for (int g = 0; g < IDS; g++) {
      if (t >= 2 + g % 3) continue;
      int len = 1 + (5 * g + 3 * t) % 17;
      samples[n++] = (reid_sample){100 + g, g, t % 3, next_frame, len};
      next_frame += len;
    }
  for (int f = 0; f < next_frame; f++) frames[f] = name;
  d.n_frames = next_frame;
  d.train = (reid_split){samples, n};
  d.gallery = (reid_split){samples, n};
  d.n_train_ids = IDS;
  return d;
}

static reid_loader_config config(int P, int K, int T, reid_frame_sampling mode) {
  reid_loader_config c = {0};
  c.batch_p = P, c.batch_k = K, c.batch = 5, c.frames = T, c.sampling = mode;
  c.height = 32, c.width = 16;
  for (int i = 0; i < 3; i++) c.mean[i] = 0.5f, c.std[i] = 0.25f;
  c.augment = (reid_augment){1, 0.5f, 4, 0.5f, 0.02f, 0.4f, 0.3f, 0, 0, 0};
  c.threads = 1, c.prefetch = 1, c.seed = 42;
  return c;
}

static int sample_of_frame(const reid_dataset *d, int frame) {
  for (int i = 0; i < d->train.count; i++)
    if (frame >= d->train.samples[i].first_frame &&
        frame < d->train.samples[i].first_frame + d->train.samples[i].n_frames)
      return i;
  return -1;
}

static void test_pk(const reid_dataset *d) {
  const int P = 3, K = 3, T = 4;
  reid_loader_config c = config(P, K, T, REID_FRAMES_RANDOM_CHUNKS);
  reid_sampler s;
  CHECK_OK(reid_sampler_init(&s, d, &d->train, 1, &c));
  CHECK(s.batches_per_epoch == 3, "batches per epoch %ld (ceil(7 / 3))", s.batches_per_epoch);
  int samples[64];
  reid_frame_job jobs[256];
  for (long b = 0; b < 30; b++) {
    int n = reid_sampler_plan(&s, b, samples, jobs);
    CHECK(n == P * K, "batch %ld: %d samples", b, n);
    int labels[3];
    for (int p = 0; p < P; p++) {
      labels[p] = d->train.samples[samples[p * K]].label;
      for (int q = 0; q < p; q++) CHECK(labels[q] != labels[p], "batch %ld: identity twice", b);
      int group = 2 + labels[p] % 3;
      for (int k = 0; k < K; k++) {
        int si = samples[p * K + k];
        CHECK(d->train.samples[si].label == labels[p], "batch %ld: mixed identity", b);
        for (int j = 0; j < k && k < group; j++)
          CHECK(samples[p * K + j] != si, "batch %ld: a repeat although %d samples exist", b,
                group);
        const reid_sample *x = &d->train.samples[si];
        for (int t = 0; t < T; t++) {
          int f = jobs[(p * K + k) * T + t].frame;
          CHECK(f >= x->first_frame && f < x->first_frame + x->n_frames,
                "batch %ld: frame %d outside its tracklet", b, f);
        }
      }
    }
  }
  /* an epoch visits every identity */
  for (long e = 0; e < 3; e++) {
    int seen[IDS] = {0};
    for (long j = 0; j < s.batches_per_epoch; j++) {
      reid_sampler_plan(&s, e * s.batches_per_epoch + j, samples, jobs);
      for (int i = 0; i < P * K; i++) seen[d->train.samples[samples[i]].label] = 1;
    }
    for (int g = 0; g < IDS; g++) CHECK(seen[g], "epoch %ld misses identity %d", e, g);
  }
  /* a batch is a function of (seed, index): the same after planning others, different seed
   * gives different batches */
  int again[64];
  reid_frame_job jobs2[256];
  reid_sampler_plan(&s, 17, samples, jobs);
  reid_sampler_plan(&s, 3, again, jobs2);
  reid_sampler_plan(&s, 17, again, jobs2);
  CHECK(!memcmp(samples, again, sizeof(int) * P * K) &&
            !memcmp(jobs, jobs2, sizeof(reid_frame_job) * P * K * T),
        "batch 17 changed");
  reid_sampler other;
  c.seed = 43;
  CHECK_OK(reid_sampler_init(&other, d, &d->train, 1, &c));
  int differ = 0;
  for (long b = 0; b < 5; b++) {
    reid_sampler_plan(&s, b, samples, jobs);
    reid_sampler_plan(&other, b, again, jobs2);
    differ += memcmp(samples, again, sizeof(int) * P * K) != 0;
  }
  CHECK(differ >= 3, "seeds 42 and 43 agree on %d of 5 batches", 5 - differ);
  CHECK(reid_sampler_fingerprint(&s) == reid_sampler_fingerprint(&s) &&
            reid_sampler_fingerprint(&s) != reid_sampler_fingerprint(&other),
        "fingerprint");
  reid_sampler_free(&other);
  reid_sampler_free(&s);
}

static void test_frame_picks(void) {
  reid_rng rng;
  reid_rng_seed(&rng, 5);
  int pos[16];
  /* chunks: n = 12, T = 4: frame i in [3i, 3i + 3), every frame reachable */
  int hits[12] = {0};
  for (int trial = 0; trial < 400; trial++) {
    reid_frames_pick(REID_FRAMES_RANDOM_CHUNKS, 12, 4, &rng, pos);
    for (int i = 0; i < 4; i++) {
      CHECK(pos[i] >= 3 * i && pos[i] < 3 * i + 3, "chunk %d: %d", i, pos[i]);
      hits[pos[i]]++;
    }
  }
  for (int f = 0; f < 12; f++) CHECK(hits[f] > 50, "frame %d drawn %d times of ~133", f, hits[f]);
  /* uneven chunks (n = 10, T = 4: [0,2) [2,5) [5,7) [7,10)) and short tracklets (n < T) */
  static const int lo[4] = {0, 2, 5, 7}, hi[4] = {2, 5, 7, 10};
  for (int trial = 0; trial < 100; trial++) {
    reid_frames_pick(REID_FRAMES_RANDOM_CHUNKS, 10, 4, &rng, pos);
    for (int i = 0; i < 4; i++) CHECK(pos[i] >= lo[i] && pos[i] < hi[i], "uneven chunk %d", i);
    reid_frames_pick(REID_FRAMES_RANDOM_CHUNKS, 3, 8, &rng, pos);
    for (int i = 0; i < 8; i++)
      CHECK(pos[i] >= 0 && pos[i] < 3 && (i == 0 || pos[i] >= pos[i - 1]), "short %d: %d", i,
            pos[i]);
  }
  reid_frames_pick(REID_FRAMES_EVEN, 8, 4, &rng, pos);
  CHECK(pos[0] == 1 && pos[1] == 3 && pos[2] == 5 && pos[3] == 7, "even 8/4: %d %d %d %d", pos[0],
        pos[1], pos[2], pos[3]);
  reid_frames_pick(REID_FRAMES_EVEN, 100, 8, &rng, pos);
  for (int i = 0; i < 8; i++)
    CHECK(pos[i] == (2 * i + 1) * 100 / 16, "even 100/8 [%d] = %d", i, pos[i]);
  reid_frames_pick(REID_FRAMES_EVEN, 1, 8, &rng, pos);
  for (int i = 0; i < 8; i++) CHECK(pos[i] == 0, "even 1/8");
  reid_frames_pick(REID_FRAMES_FIRST, 9, 1, &rng, pos);
  CHECK(pos[0] == 0, "first");
}

static void test_multiview(const reid_dataset *d) {
  const int P = 2, K = 2, T = 6;
  reid_loader_config c = config(P, K, T, REID_FRAMES_MULTIVIEW);
  reid_sampler s;
  CHECK_OK(reid_sampler_init(&s, d, &d->train, 1, &c));
  int samples[16];
  reid_frame_job jobs[64];
  int multi_tracklet = 0;
  for (long b = 0; b < 40; b++) {
    reid_sampler_plan(&s, b, samples, jobs);
    for (int i = 0; i < P * K; i++) {
      const reid_sample *anchor = &d->train.samples[samples[i]];
      int cams = 2 + anchor->label % 3 >= 3 ? 3 : 2, seen_cam[3] = {0}, tracklets = 0, last = -1;
      for (int t = 0; t < T; t++) {
        int si = sample_of_frame(d, jobs[i * T + t].frame);
        CHECK(si >= 0 && d->train.samples[si].label == anchor->label,
              "batch %ld: view %d from another identity", b, t);
        if (si < 0) continue;
        seen_cam[d->train.samples[si].camid] = 1;
        if (t == 0) CHECK(si == samples[i], "view 0 is not the anchor tracklet");
        tracklets += si != last, last = si;
      }
      for (int k = 0; k < cams; k++) CHECK(seen_cam[k], "batch %ld: camera %d never seen", b, k);
      multi_tracklet += tracklets > 1;
    }
  }
  CHECK(multi_tracklet > 100, "views from several tracklets in %d of 160 samples", multi_tracklet);
  reid_sampler_free(&s);
}

static void test_eval(const reid_dataset *d) {
  reid_loader_config c = config(1, 1, 3, REID_FRAMES_EVEN);
  c.augment.enabled = 0;
  reid_sampler s;
  CHECK_OK(reid_sampler_init(&s, d, &d->gallery, 0, &c));
  int count = d->gallery.count, expect = 0, samples[8];
  reid_frame_job jobs[32];
  CHECK(s.total_batches == (count + 4) / 5, "eval batches %ld", s.total_batches);
  for (long b = 0; b < s.total_batches; b++) {
    int n = reid_sampler_plan(&s, b, samples, jobs);
    CHECK(n == (b + 1 < s.total_batches ? 5 : count - 5 * b), "batch %ld has %d", b, n);
    for (int i = 0; i < n; i++) {
      CHECK(samples[i] == expect++, "order");
      const reid_sample *x = &d->gallery.samples[samples[i]];
      for (int t = 0; t < 3; t++) {
        CHECK(jobs[i * 3 + t].frame == x->first_frame + (2 * t + 1) * x->n_frames / 6,
              "even frame");
        CHECK(jobs[i * 3 + t].aug.crop_x == 0 && !jobs[i * 3 + t].aug.flip &&
                  jobs[i * 3 + t].aug.erase_w == 0,
              "augmentation while disabled");
      }
    }
  }
  CHECK(reid_sampler_plan(&s, s.total_batches, samples, jobs) == 0, "past the end");
  reid_sampler_free(&s);
}

static void test_bad_configs(const reid_dataset *d) {
  struct {
    reid_loader_config c;
    const char *needle;
  } bad[8];
  int n = 0;
  bad[n].c = config(8, 2, 4, REID_FRAMES_RANDOM_CHUNKS), bad[n++].needle = "P = 8";
  bad[n].c = config(2, 0, 4, REID_FRAMES_RANDOM_CHUNKS), bad[n++].needle = "K = 0";
  bad[n].c = config(2, 2, 2, REID_FRAMES_FIRST), bad[n++].needle = "frames = 1";
  bad[n].c = config(2, 2, 0, REID_FRAMES_EVEN), bad[n++].needle = "frames per sample 0";
  bad[n].c = config(2, 2, 4, REID_FRAMES_EVEN), bad[n].c.threads = 0, bad[n++].needle = "threads 0";
  bad[n].c = config(2, 2, 4, REID_FRAMES_EVEN), bad[n].c.augment.flip_p = 2,
  bad[n++].needle = "flip probability 2";
  bad[n].c = config(2, 2, 4, REID_FRAMES_EVEN), bad[n].c.augment.pad = 16,
  bad[n++].needle = "pad 16";
  bad[n].c = config(2, 2, 4, REID_FRAMES_EVEN), bad[n].c.std[1] = 0, bad[n++].needle = "channel 1";
  for (int i = 0; i < n; i++) {
    reid_sampler s;
    reid_status st = reid_sampler_init(&s, d, &d->train, 1, &bad[i].c);
    CHECK(st == REID_EINVAL && strstr(reid_last_error(), bad[i].needle),
          "config %d: %s: '%s' lacks '%s'", i, reid_status_name(st), reid_last_error(),
          bad[i].needle);
    reid_sampler_free(&s);
  }
}

/* group_distinct: identities with known distinct pairs ({0, 2, 4} as a chain, {1, 5},
 * {3, 6}; one pair inside identity 0, ignored) stand next to each other in every epoch's
 * order, which still visits every identity once; a plain shuffle does not keep them so. */
static void test_group_distinct(const reid_dataset *base) {
  static int pairs[][2] = {{0, 2}, {1, 5}, {2, 4}, {3, 6}, {0, 7}}; /* sample 7: identity 0 */
  reid_dataset d = *base;
  d.distinct_pairs = pairs;
  d.n_distinct_pairs = 5;
  static const int cluster[IDS] = {0, 1, 0, 2, 0, 1, 2};
  const int P = IDS, K = 2, T = 1;
  int broken[2] = {0, 0};
  for (int grouped = 0; grouped < 2; grouped++) {
    reid_loader_config c = config(P, K, T, REID_FRAMES_RANDOM_CHUNKS);
    c.group_distinct = grouped;
    reid_sampler s;
    CHECK_OK(reid_sampler_init(&s, &d, &d.train, 1, &c));
    int samples[IDS * K];
    reid_frame_job jobs[IDS * K];
    for (long e = 0; e < 12; e++) {
      CHECK(reid_sampler_plan(&s, e, samples, jobs) == P * K, "one batch per epoch");
      int seen[IDS] = {0}, runs = 0;
      for (int i = 0; i < P; i++) {
        int g = d.train.samples[samples[i * K]].label;
        seen[g]++;
        runs += i == 0 || cluster[g] != cluster[d.train.samples[samples[(i - 1) * K]].label];
      }
      for (int g = 0; g < IDS; g++)
        CHECK(seen[g] == 1, "epoch %ld: identity %d %d times", e, g, seen[g]);
      broken[grouped] += runs != 3; /* 3 clusters, each contiguous: 3 runs */
    }
    reid_sampler_free(&s);
  }
  CHECK(broken[1] == 0, "grouped: %d of 12 epochs split a cluster", broken[1]);
  CHECK(broken[0] > 0, "plain shuffles kept every cluster together (the test cannot fail)");
}

int main(void) {
  reid_dataset d = make_dataset();
  test_group_distinct(&d);
  test_pk(&d);
  test_frame_picks();
  test_multiview(&d);
  test_eval(&d);
  test_bad_configs(&d);
  return test_finish("test_sampler");
}
