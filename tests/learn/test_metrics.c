/* CMC and mAP (training/learn/metrics.h) on hand-computed cases: junk by
 * pid -1 and by same identity + same camera, distractors (pid 0) as wrong
 * matches, several good matches, a query without any good match, ties, the
 * devkit's trapezoid AP; the parallel path against one query at a time;
 * argument errors. */
#include "metrics.h"
#include "test_util.h"

#define CLOSE(a, b) (fabs((a) - (b)) < 1e-9)

static void test_devkit_ap(void) {
  const int top3[3] = {0, 1, 2}, second[1] = {1}, spread[2] = {1, 3};
  CHECK(CLOSE(reid_devkit_ap(top3, 3), 1.0), "AP of goods at ranks 0,1,2 = %g",
        reid_devkit_ap(top3, 3));
  /* one good at rank 1: (0/1 + 1/2) / 2 = 0.25 (the devkit's trapezoid, not 0.5) */
  CHECK(CLOSE(reid_devkit_ap(second, 1), 0.25), "AP of one good at rank 1 = %g",
        reid_devkit_ap(second, 1));
  /* goods at 1 and 3: (0 + 1/2)/4 + (1/3 + 2/4)/4 = 1/3 */
  CHECK(CLOSE(reid_devkit_ap(spread, 2), 1.0 / 3), "AP of goods at 1,3 = %g",
        reid_devkit_ap(spread, 2));
}

/* Gallery (pid, cam): g0 (1,0) g1 (2,1) g2 (1,1) g3 (-1,1) g4 (1,2) g5 (0,1) g6 (3,0) g7 (3,2) */
static const int g_pid[8] = {1, 2, 1, -1, 1, 0, 3, 3}, g_cam[8] = {0, 1, 1, 1, 2, 1, 0, 2};

static void test_hand_cases(void) {
  const int q_pid[5] = {1, 3, 2, 5, 1}, q_cam[5] = {0, 1, 1, 0, 2};
  const float dist[5 * 8] = {
      /* q0 (1, cam 0): sorted g3 junk(-1), g0 junk(same cam), g1, g2 G, g5, g4 G, g6, g7
       * -> goods at 1 and 3: AP = 1/3, first good rank 1 */
      .1f,
      .2f,
      .3f,
      .05f,
      .5f,
      .4f,
      .6f,
      .7f,
      /* q1 (3, cam 1): g6 G, g3 junk, g0, g1, g2, g4, g5, g7 G -> goods at 0 and 6:
       * AP = (1+1)/4 + (1/6 + 2/7)/4 = 0.5 + 19/168 */
      .2f,
      .3f,
      .4f,
      .1f,
      .5f,
      .6f,
      .0f,
      .9f,
      /* q2 (2, cam 1): its only gallery match g1 is in its own camera -> junk -> skipped */
      .5f,
      .1f,
      .5f,
      .5f,
      .5f,
      .5f,
      .5f,
      .5f,
      /* q3 (5): not in the gallery -> skipped */
      .1f,
      .2f,
      .3f,
      .4f,
      .5f,
      .6f,
      .7f,
      .8f,
      /* q4 (1, cam 2): all tied, index order: g0 G, g1, g2 G, g3 j, g4 j, g5, g6, g7
       * -> goods at 0 and 2: AP = 0.5 + (1/2 + 2/3)/4 = 0.5 + 7/24 */
      .5f,
      .5f,
      .5f,
      .5f,
      .5f,
      .5f,
      .5f,
      .5f,
  };
  reid_rank_result r;
  CHECK_OK(reid_rank_evaluate(dist, 5, 8, q_pid, q_cam, g_pid, g_cam, 10, &r));
  double ap[3] = {1.0 / 3, 0.5 + 19.0 / 168, 0.5 + 7.0 / 24};
  double want_map = (ap[0] + ap[1] + ap[2]) / 3;
  CHECK(r.queries == 3 && r.skipped == 2, "%d evaluated, %d skipped; want 3 and 2", r.queries,
        r.skipped);
  CHECK(CLOSE(r.map, want_map), "mAP %.9f, want %.9f", r.map, want_map);
  CHECK(r.max_rank == 10 && CLOSE(r.cmc[0], 2.0 / 3) && CLOSE(r.cmc[1], 1.0) &&
            CLOSE(r.cmc[9], 1.0),
        "CMC %g %g .. %g, want 2/3 1 .. 1", r.cmc[0], r.cmc[1], r.cmc[9]);
  reid_rank_result_free(&r);

  /* a distractor (pid 0) ahead of the good match counts as a wrong match */
  const int q2_pid[1] = {3}, q2_cam[1] = {0};
  const float d2[8] = {.9f, .9f, .9f, .9f, .9f, .0f, .9f, .5f}; /* g5 (pid 0) first, g7 good */
  CHECK_OK(reid_rank_evaluate(d2, 1, 8, q2_pid, q2_cam, g_pid, g_cam, 3, &r));
  /* junk g6 (same id, same cam); list: g5, g7 G ... -> first good rank 1, AP 0.25 */
  CHECK(r.queries == 1 && CLOSE(r.map, 0.25) && r.cmc[0] == 0 && r.cmc[1] == 1,
        "distractor case: mAP %g CMC %g %g", r.map, r.cmc[0], r.cmc[1]);
  reid_rank_result_free(&r);

  /* no query has a good match: zeros, all skipped */
  const int q3_pid[2] = {9, 2}, q3_cam[2] = {0, 1};
  CHECK_OK(reid_rank_evaluate(dist, 2, 8, q3_pid, q3_cam, g_pid, g_cam, 5, &r));
  CHECK(r.queries == 0 && r.skipped == 2 && r.map == 0 && r.cmc[4] == 0,
        "no good matches: %d evaluated, mAP %g", r.queries, r.map);
  reid_rank_result_free(&r);
}

/* 300 random queries (the OpenMP path) give what 300 single-query calls give. */
static void test_parallel_matches_serial(void) {
  enum { NQ = 300, NG = 120, R = 20 };
  test_rng rng = test_rng_make(3);
  int q_pid[NQ], q_cam[NQ], gp[NG], gc[NG];
  float *dist = test_alloc((size_t)NQ * NG);
  for (int i = 0; i < NQ; i++)
    q_pid[i] = test_rng_int(&rng, 1, 30), q_cam[i] = test_rng_int(&rng, 0, 3);
  for (int j = 0; j < NG; j++) gp[j] = test_rng_int(&rng, -1, 30), gc[j] = test_rng_int(&rng, 0, 3);
  test_fill_uniform(&rng, dist, (size_t)NQ * NG, 0, 2);
  reid_rank_result all, one;
  CHECK_OK(reid_rank_evaluate(dist, NQ, NG, q_pid, q_cam, gp, gc, R, &all));
  double ap_sum = 0, cmc[R] = {0};
  int evaluated = 0;
  for (int q = 0; q < NQ; q++) {
    CHECK_OK(
        reid_rank_evaluate(dist + (size_t)q * NG, 1, NG, q_pid + q, q_cam + q, gp, gc, R, &one));
    if (one.queries) {
      evaluated++;
      ap_sum += one.map;
      for (int k = 0; k < R; k++) cmc[k] += one.cmc[k];
    }
    reid_rank_result_free(&one);
  }
  CHECK(all.queries == evaluated && all.skipped == NQ - evaluated, "%d vs %d evaluated",
        all.queries, evaluated);
  CHECK(evaluated > 0 && CLOSE(all.map, ap_sum / evaluated), "mAP %g vs %g", all.map,
        ap_sum / evaluated);
  for (int k = 0; k < R && evaluated; k++)
    CHECK(CLOSE(all.cmc[k], cmc[k] / evaluated), "CMC[%d] %g vs %g", k, all.cmc[k],
          cmc[k] / evaluated);
  reid_rank_result_free(&all);
  free(dist);
}

static void test_errors(void) {
  const int p[1] = {1}, c[1] = {0};
  float d[1] = {NAN};
  reid_rank_result r;
  CHECK(reid_rank_evaluate(d, 0, 1, p, c, p, c, 5, &r) == REID_EINVAL, "0 queries accepted");
  CHECK(reid_rank_evaluate(d, 1, 1, p, c, p, c, 0, &r) == REID_EINVAL, "max rank 0 accepted");
  CHECK(reid_rank_evaluate(d, 1, 1, NULL, c, p, c, 5, &r) == REID_EINVAL, "NULL pids accepted");
  CHECK(reid_rank_evaluate(d, 1, 1, p, c, p, c, 5, &r) == REID_ENUMERIC, "NaN distance accepted");
  CHECK(r.cmc == NULL, "a failed call left a CMC allocated");
}

int main(void) {
  test_devkit_ap();
  test_hand_cases();
  test_parallel_matches_serial();
  test_errors();
  return test_finish("test_metrics");
}
