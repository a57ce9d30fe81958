/* Re-ID ranking metrics: CMC and mAP as the Market-1501 devkit computes them
 * (papers.md §2), for any query x gallery distance matrix.
 *
 * For a query q, the gallery is sorted by distance (ascending; ties by gallery
 * index), then
 *   junk = gallery samples with pid -1, or with q's pid AND q's camera
 *          (removed from the ranking before anything is counted);
 *   good = q's pid in another camera;
 * everything else (other ids, distractors pid 0) is a wrong match.
 * A query without any good match is skipped (counted, not averaged).
 *
 * With the good matches at 0-based ranks r_0 < r_1 < ... of the junk-free list:
 *   AP  = sum_i (1/ngood) (prec_{i-1} + prec_i) / 2,
 *         prec_{i-1} = i / r_i (1 when r_i = 0),  prec_i = (i + 1) / (r_i + 1)
 *   CMC[k] = 1 if r_0 <= k, else 0   (k = 0 is rank-1)
 * and mAP / CMC are the means over the evaluated queries. */
#pragma once

#include "status.h"

typedef struct reid_rank_result {
  double map;  /* mean AP over evaluated queries */
  double *cmc; /* [max_rank]: cmc[k] = fraction with the first good match at rank <= k */
  int max_rank;
  int queries; /* evaluated: at least one good match */
  int skipped; /* no good match in the gallery */
} reid_rank_result;

/* The devkit's AP of one query from the 0-based ranks (junk removed, ascending)
 * of its ngood good matches. */
double reid_devkit_ap(const int *good_ranks, int ngood);

/* dist[nq, ng] (smaller = closer); fills *out (free with reid_rank_result_free). */
reid_status reid_rank_evaluate(const float *dist, int nq, int ng, const int *q_pid,
                               const int *q_cam, const int *g_pid, const int *g_cam, int max_rank,
                               reid_rank_result *out);
void reid_rank_result_free(reid_rank_result *r);
