/* The batch loader on a generated MARS-layout dataset: batches identical for any number of
 * threads and prefetch depth; frames decoded exactly as reid_preprocess_image does; evaluation
 * batches in order with a short last batch, then empty; the saved state resumes with the same
 * batches (also into a loader that already moved on); a state of another seed or garbage is
 * refused; an undecodable frame fails next() with its path, again on later calls; a loader
 * destroyed while decoding shuts down cleanly. */
#include "data_fixture.h"
#include "loader.h"
#include "preprocess.h"

enum { P = 3, K = 2, T = 4, HH = 32, WW = 16, NB = 6 };

static reid_loader_config config(int threads, int prefetch) {
  reid_loader_config c = {0};
  c.batch_p = P, c.batch_k = K, c.batch = 4, c.frames = T;
  c.sampling = REID_FRAMES_RANDOM_CHUNKS;
  c.height = HH, c.width = WW;
  reid_preprocess_params pp = reid_preprocess_params_imagenet(HH, WW);
  memcpy(c.mean, pp.mean, sizeof c.mean);
  memcpy(c.std, pp.std, sizeof c.std);
  c.augment = (reid_augment){1, 0.5f, 3, 0.5f, 0.02f, 0.4f, 0.3f, 0, 0, 0};
  c.threads = threads, c.prefetch = prefetch, c.seed = 1234;
  return c;
}

typedef struct copy {
  float *images;
  int labels[P * K], pids[P * K], camids[P * K], index[P * K], batch;
} copy;

static const size_t batch_floats = (size_t)P * K * T * 3 * HH * WW;

static void take(reid_loader *l, copy *out, int n) {
  for (int b = 0; b < n; b++) {
    reid_batch batch;
    reid_status st = reid_loader_next(l, &batch);
    CHECK(st == REID_OK, "next: %s", reid_last_error());
    out[b].batch = batch.batch;
    if (st != REID_OK || batch.batch != P * K) continue;
    CHECK(batch.frames == T, "frames %d", batch.frames);
    out[b].images = malloc(sizeof(float) * batch_floats);
    memcpy(out[b].images, batch.images, sizeof(float) * batch_floats);
    for (int i = 0; i < P * K; i++) {
      out[b].labels[i] = batch.labels[i];
      out[b].pids[i] = batch.pids[i];
      out[b].camids[i] = batch.camids[i];
      out[b].index[i] = batch.sample_index[i];
    }
  }
}

static int same(const copy *a, const copy *b) {
  return a->batch == b->batch && a->images && b->images &&
         !memcmp(a->images, b->images, sizeof(float) * batch_floats) &&
         !memcmp(a->labels, b->labels, sizeof a->labels) &&
         !memcmp(a->pids, b->pids, sizeof a->pids) &&
         !memcmp(a->camids, b->camids, sizeof a->camids) &&
         !memcmp(a->index, b->index, sizeof a->index);
}

static void release(copy *c, int n) {
  for (int i = 0; i < n; i++) free(c[i].images), c[i].images = NULL;
}

static void test_train(const reid_dataset *d) {
  copy a[NB], b[NB];
  reid_loader *l1 = NULL, *l3 = NULL;
  reid_loader_config c1 = config(1, 1), c3 = config(3, 4);
  CHECK_OK(reid_loader_train(d, &c1, &l1));
  CHECK_OK(reid_loader_train(d, &c3, &l3));
  if (!l1 || !l3) return;
  CHECK(reid_loader_batches_per_epoch(l1) == 1, "batches per epoch %d",
        reid_loader_batches_per_epoch(l1));
  take(l1, a, NB);
  take(l3, b, NB);
  for (int i = 0; i < NB; i++) {
    CHECK(same(&a[i], &b[i]), "batch %d differs between 1 and 3 threads", i);
    for (int s = 0; s < P * K; s++) {
      const reid_sample *x = &d->train.samples[a[i].index[s]];
      CHECK(a[i].labels[s] == x->label && a[i].pids[s] == x->pid && a[i].camids[s] == x->camid,
            "batch %d sample %d metadata", i, s);
      CHECK(a[i].labels[s] == a[i].labels[s - s % K], "K samples of one identity");
    }
    int finite = 1;
    for (size_t k = 0; a[i].images && k < batch_floats; k++) finite &= isfinite(a[i].images[k]);
    CHECK(finite, "batch %d has non-finite pixels", i);
  }
  /* resume: state after 2 batches; a fresh loader and one that moved on both continue alike */
  reid_loader *r = NULL, *moved = NULL;
  reid_loader_config c2 = config(2, 2);
  CHECK_OK(reid_loader_train(d, &c2, &r));
  CHECK_OK(reid_loader_train(d, &c2, &moved));
  copy skip[3], c_first[2], again[NB];
  take(r, c_first, 2);
  size_t size = reid_loader_state_size(r);
  unsigned char *state = malloc(size);
  CHECK_OK(reid_loader_state_save(r, state));
  take(r, again, NB - 2);
  for (int i = 2; i < NB; i++) CHECK(same(&a[i], &again[i - 2]), "batch %d before the resume", i);
  release(again, NB - 2);
  reid_loader_destroy(r);
  CHECK_OK(reid_loader_train(d, &c2, &r));
  CHECK_OK(reid_loader_state_load(r, state));
  take(r, again, NB - 2);
  for (int i = 2; i < NB; i++) CHECK(same(&a[i], &again[i - 2]), "resumed batch %d differs", i);
  release(again, NB - 2);
  take(moved, skip, 3);
  CHECK_OK(reid_loader_state_load(moved, state));
  take(moved, again, NB - 2);
  for (int i = 2; i < NB; i++) CHECK(same(&a[i], &again[i - 2]), "rewound batch %d differs", i);
  release(again, NB - 2);
  release(skip, 3);
  release(c_first, 2);
  /* states of another seed, or not states at all, are refused */
  reid_loader *other = NULL;
  reid_loader_config c4 = config(1, 1);
  c4.seed = 99;
  CHECK_OK(reid_loader_train(d, &c4, &other));
  CHECK(reid_loader_state_load(other, state) == REID_EINVAL &&
            strstr(reid_last_error(), "seed 1234"),
        "other seed: %s", reid_last_error());
  memset(state, 0x5A, size);
  CHECK(reid_loader_state_load(other, state) == REID_EFORMAT, "garbage state accepted");
  free(state);
  reid_loader_destroy(other);
  reid_loader_destroy(moved);
  reid_loader_destroy(r);
  release(a, NB);
  release(b, NB);
  reid_loader_destroy(l1);
  reid_loader_destroy(l3);
  /* too many identities per batch */
  reid_loader_config bad = config(1, 1);
  bad.batch_p = 4;
  reid_loader *none = NULL;
  CHECK(reid_loader_train(d, &bad, &none) == REID_EINVAL && !none, "P > identities accepted");
}

static void test_eval(const reid_dataset *d) {
  reid_loader_config c = config(2, 2);
  c.frames = 1;
  c.sampling = REID_FRAMES_FIRST;
  c.augment.enabled = 0;
  reid_loader *l = NULL;
  CHECK_OK(reid_loader_eval(d, &d->query, &c, &l));
  if (!l) return;
  reid_preprocess_params pp = reid_preprocess_params_imagenet(HH, WW);
  float *ref = malloc(sizeof(float) * 3 * HH * WW);
  int seen = 0, sizes[4] = {0}, calls = 0;
  for (;;) {
    reid_batch b;
    CHECK_OK(reid_loader_next(l, &b));
    if (b.batch == 0 || calls >= 4) break;
    sizes[calls++] = b.batch;
    for (int i = 0; i < b.batch; i++, seen++) {
      CHECK(b.sample_index[i] == seen && b.labels[i] == -1, "order / label");
      const reid_sample *x = &d->query.samples[b.sample_index[i]];
      reid_image im;
      CHECK_OK(reid_image_load_rgb(d->frames[x->first_frame], &im));
      CHECK_OK(reid_preprocess_image(&im, &pp, ref));
      reid_image_free(&im);
      CHECK(!memcmp(ref, b.images + (size_t)i * 3 * HH * WW, sizeof(float) * 3 * HH * WW),
            "query %d is not the preprocessed first frame", seen);
    }
  }
  CHECK(calls == 2 && sizes[0] == 4 && sizes[1] == 2 && seen == 6, "eval batches %d: %d %d", calls,
        sizes[0], sizes[1]);
  reid_batch b;
  CHECK_OK(reid_loader_next(l, &b));
  CHECK(b.batch == 0, "still empty after the end");
  free(ref);
  reid_loader_destroy(l);
}

static void test_broken_frame(const char *root) {
  reid_dataset *d = NULL;
  CHECK_OK(reid_dataset_load(root, REID_LAYOUT_MARS, &d));
  if (!d) return;
  const char *victim = d->frames[d->gallery.samples[4].first_frame + 1];
  fixture_write(victim, "this is not a JPEG");
  reid_loader_config c = config(3, 2);
  c.sampling = REID_FRAMES_EVEN;
  c.batch = 2;
  reid_loader *l = NULL;
  CHECK_OK(reid_loader_eval(d, &d->gallery, &c, &l));
  reid_status st = REID_OK;
  int batches = 0;
  for (; l && batches < 5; batches++) {
    reid_batch b;
    st = reid_loader_next(l, &b);
    if (st != REID_OK || b.batch == 0) break;
  }
  CHECK(st != REID_OK && batches == 2, "broken frame: status %s after %d batches",
        reid_status_name(st), batches);
  CHECK(strstr(reid_last_error(), victim) != NULL, "message '%s' does not name %s",
        reid_last_error(), victim);
  reid_batch b;
  CHECK(l && reid_loader_next(l, &b) != REID_OK && strstr(reid_last_error(), victim),
        "the error is not sticky");
  reid_loader_destroy(l);
  /* destroyed while its workers are busy */
  reid_loader_config busy = config(3, 16);
  CHECK_OK(reid_loader_train(d, &busy, &l));
  reid_loader_destroy(l);
  reid_dataset_free(d);
}

int main(void) {
  char tmp[512];
  fixture_tmpdir(tmp, sizeof tmp);
  const char *root = fixture_path("%s/mars", tmp);
  fixture_spec spec = fixture_small(REID_LAYOUT_MARS);
  fixture_synth(root, &spec);
  reid_dataset *d = NULL;
  CHECK_OK(reid_dataset_load(root, REID_LAYOUT_MARS, &d));
  if (d) {
    test_train(d);
    test_eval(d);
    reid_dataset_free(d);
  }
  test_broken_frame(root);
  fixture_rm_tree(tmp);
  return test_finish("test_loader");
}
