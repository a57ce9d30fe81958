/* The tracklet pool: observing, pooling (normalised mean), embedding
 * intervals, expiry after exactly `timeout` frames, take-all, first-seen
 * order, many ids (hash index growth and rebuild) and bad arguments. */
#include "test_util.h"
#include "tracklets.h"

#define D 8

static void unit(float *v, test_rng *r) {
  double ss = 0;
  for (int j = 0; j < D; j++) v[j] = test_rng_uniform(r, -1, 1), ss += (double)v[j] * v[j];
  for (int j = 0; j < D; j++) v[j] /= (float)sqrt(ss);
}

static void test_pooling(void) {
  reid_tracklet_pool *p;
  CHECK_OK(reid_tracklet_pool_create(D, &p));
  test_rng r = test_rng_make(1);
  float e[3][D], want[D] = {0}, got[D];
  const float box[4] = {1, 2, 3, 4};
  reid_tracklet *t = NULL;
  for (int f = 0; f < 3; f++) {
    CHECK_OK(reid_tracklet_pool_observe(p, 42, f, 1000 * (uint64_t)f, box, &t));
    unit(e[f], &r);
    CHECK(reid_tracklet_wants_embedding(t, f, 1), "interval 1 embeds every frame");
    reid_tracklet_add_embedding(t, f, e[f]);
    for (int j = 0; j < D; j++) want[j] += e[f][j];
  }
  double ss = 0;
  for (int j = 0; j < D; j++) ss += (double)want[j] * want[j];
  for (int j = 0; j < D; j++) want[j] /= (float)sqrt(ss);
  reid_tracklet_pooled(t, got);
  CHECK_CLOSE(got, want, D, 1e-6, 1e-5, "pooled = normalise(sum)");
  CHECK(t->frames == 3 && t->embedded == 3 && t->first_pts == 0 && t->last_pts == 2000, "counters");
  /* a second box of the same id in the same frame is not a new frame */
  CHECK_OK(reid_tracklet_pool_observe(p, 42, 2, 2000, box, &t));
  CHECK(t->frames == 3, "same frame counted once (%d)", t->frames);
  /* nothing pooled: zeros, not NaN */
  reid_tracklet *fresh;
  CHECK_OK(reid_tracklet_pool_observe(p, 7, 3, REID_PTS_NONE, box, &fresh));
  reid_tracklet_pooled(fresh, got);
  for (int j = 0; j < D; j++) CHECK(got[j] == 0, "empty pool is zero");
  CHECK(fresh->first_pts == REID_PTS_NONE, "unknown pts stays unknown");
  CHECK_OK(reid_tracklet_pool_observe(p, 7, 4, 500, box, &fresh));
  CHECK(fresh->first_pts == 500 && fresh->last_pts == 500, "first known pts is taken");
  reid_tracklet_pool_destroy(p);
}

static void test_interval(void) {
  reid_tracklet_pool *p;
  CHECK_OK(reid_tracklet_pool_create(D, &p));
  const float box[4] = {0, 0, 1, 1}, e[D] = {1};
  reid_tracklet *t;
  int embedded = 0;
  for (int f = 10; f < 20; f++) {
    CHECK_OK(reid_tracklet_pool_observe(p, 1, f, REID_PTS_NONE, box, &t));
    if (reid_tracklet_wants_embedding(t, f, 4)) {
      CHECK((f - 10) % 4 == 0, "frame %d embedded with interval 4", f);
      reid_tracklet_add_embedding(t, f, e);
      embedded++;
    }
  }
  CHECK(embedded == 3 && t->embedded == 3 && t->frames == 10, "frames 10, 14, 18: %d", embedded);
  reid_tracklet_pool_destroy(p);
}

static void test_expiry(void) {
  reid_tracklet_pool *p;
  CHECK_OK(reid_tracklet_pool_create(D, &p));
  const float box[4] = {0, 0, 1, 1};
  reid_tracklet *t, **ended;
  int n;
  /* track 5 seen in frames 0..4, track 6 in 0..9, track 3 first seen in frame 2 */
  for (int f = 0; f < 10; f++) {
    if (f <= 4) CHECK_OK(reid_tracklet_pool_observe(p, 5, f, REID_PTS_NONE, box, &t));
    CHECK_OK(reid_tracklet_pool_observe(p, 6, f, REID_PTS_NONE, box, &t));
    if (f >= 2 && f <= 4) CHECK_OK(reid_tracklet_pool_observe(p, 3, f, REID_PTS_NONE, box, &t));
    CHECK_OK(reid_tracklet_pool_take_expired(p, f, 3, &ended, &n));
    CHECK(n == (f == 7 ? 2 : 0), "frame %d: %d ended (timeout 3, last seen 4: ends at 7)", f, n);
    if (n == 2) CHECK(ended[0]->track_id == 5 && ended[1]->track_id == 3, "first-seen order");
    reid_tracklet_free_array(ended, n);
  }
  CHECK(reid_tracklet_pool_size(p) == 1 && reid_tracklet_pool_find(p, 6) &&
            !reid_tracklet_pool_find(p, 5),
        "the live track stays findable after removals");
  CHECK_OK(reid_tracklet_pool_take_all(p, &ended, &n));
  CHECK(n == 1 && ended[0]->track_id == 6 && ended[0]->frames == 10, "take_all");
  reid_tracklet_free_array(ended, n);
  CHECK(reid_tracklet_pool_size(p) == 0, "empty after take_all");
  CHECK_OK(reid_tracklet_pool_take_all(p, &ended, &n));
  CHECK(n == 0 && ended == NULL, "take_all on an empty pool");
  reid_tracklet_pool_destroy(p);
}

static void test_many_ids(void) {
  reid_tracklet_pool *p;
  CHECK_OK(reid_tracklet_pool_create(D, &p));
  const float box[4] = {0, 0, 1, 1};
  reid_tracklet *t;
  enum { N = 20000 };
  for (int i = 0; i < N; i++) /* negative, huge and clustered ids */
    CHECK_OK(reid_tracklet_pool_observe(
        p, (i % 3 == 0 ? -1 : 1) * (int64_t)i * 1000003 + (i % 7 ? 0 : INT64_C(1) << 40), i % 100,
        REID_PTS_NONE, box, &t));
  CHECK(reid_tracklet_pool_size(p) == N, "%d tracks", reid_tracklet_pool_size(p));
  int found = 0;
  for (int i = 0; i < N; i++)
    found += reid_tracklet_pool_find(p, (i % 3 == 0 ? -1 : 1) * (int64_t)i * 1000003 +
                                            (i % 7 ? 0 : INT64_C(1) << 40)) != NULL;
  CHECK(found == N, "all %d found", found);
  reid_tracklet **ended;
  int n;
  CHECK_OK(reid_tracklet_pool_take_expired(p, 99, 50, &ended, &n)); /* frames 0..49 */
  CHECK(n == N / 2, "%d expired", n);
  reid_tracklet_free_array(ended, n);
  found = 0;
  for (int i = 0; i < N; i++)
    found += reid_tracklet_pool_find(p, (i % 3 == 0 ? -1 : 1) * (int64_t)i * 1000003 +
                                            (i % 7 ? 0 : INT64_C(1) << 40)) != NULL;
  CHECK(found == N / 2, "%d still found", found);
  reid_tracklet_pool_destroy(p);
  CHECK(reid_tracklet_pool_create(0, &p) == REID_EINVAL && p == NULL, "dimension 0 refused");
  reid_tracklet_pool_destroy(NULL);
}

int main(void) {
  test_pooling();
  test_interval();
  test_expiry();
  test_many_ids();
  return test_finish("test_tracklets");
}
