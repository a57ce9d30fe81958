/* CMC and mAP with the Market devkit's AP (see metrics.h). Queries run in
 * parallel (OpenMP), each with its own sort buffer; the per-query results are
 * summed in query order afterwards so the figures do not depend on threads. */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double reid_devkit_ap(const int *good_ranks, int ngood) {
  double ap = 0.0;
  for (int i = 0; i < ngood; i++) {
    int r = good_ranks[i];
    double prec_before = r == 0 ? 1.0 : (double)i / r;
    double prec = (double)(i + 1) / (r + 1);
    ap += (prec_before + prec) / 2.0 / ngood;
  }
  return ap;
}

typedef struct ranked {
  float dist;
  int index;
} ranked;

static int compare_ranked(const void *pa, const void *pb) {
  const ranked *a = pa, *b = pb;
  if (a->dist < b->dist) return -1;
  if (a->dist > b->dist) return 1;
  return (a->index > b->index) - (a->index < b->index);
}

/* One query: sorts its row, walks it skipping junk; returns the first good
 * rank (-1 if none) and the AP. good_ranks has room for ng entries. */
static int rank_query(const float *row, int ng, int pid, int cam, const int *g_pid,
                      const int *g_cam, ranked *order, int *good_ranks, double *ap) {
  for (int j = 0; j < ng; j++) order[j] = (ranked){row[j], j};
  qsort(order, (size_t)ng, sizeof *order, compare_ranked);
  int rank = 0, ngood = 0;
  for (int j = 0; j < ng; j++) {
    int g = order[j].index;
    int same_id = g_pid[g] == pid;
    if (g_pid[g] == -1 || (same_id && g_cam[g] == cam)) continue; /* junk */
    if (same_id) good_ranks[ngood++] = rank;
    rank++;
  }
  *ap = ngood ? reid_devkit_ap(good_ranks, ngood) : 0.0;
  return ngood ? good_ranks[0] : -1;
}

reid_status reid_rank_evaluate(const float *dist, int nq, int ng, const int *q_pid,
                               const int *q_cam, const int *g_pid, const int *g_cam, int max_rank,
                               reid_rank_result *out) {
  memset(out, 0, sizeof *out);
  if (nq < 1 || ng < 1 || max_rank < 1)
    return reid_fail(REID_EINVAL,
                     "rank_evaluate: invalid sizes: %d queries, %d gallery, max rank %d", nq, ng,
                     max_rank);
  if (!dist || !q_pid || !q_cam || !g_pid || !g_cam)
    return reid_fail(REID_EINVAL, "rank_evaluate: NULL argument");
  for (size_t i = 0; i < (size_t)nq * ng; i++)
    if (isnan(dist[i]))
      return reid_fail(REID_ENUMERIC, "rank_evaluate: distance of query %zu to gallery %zu is NaN",
                       i / ng, i % ng);
  int *first = malloc(sizeof(int) * nq);
  double *ap = malloc(sizeof(double) * nq);
  double *cmc = calloc((size_t)max_rank, sizeof(double));
  int failed = !first || !ap || !cmc;
  if (!failed) {
#pragma omp parallel if (nq >= 64) reduction(| : failed)
    {
      ranked *order = malloc(sizeof(ranked) * ng);
      int *good = malloc(sizeof(int) * ng);
      int ok = order && good;
      failed |= !ok;
#pragma omp for schedule(dynamic, 16)
      for (int q = 0; q < nq; q++)
        if (ok)
          first[q] = rank_query(dist + (size_t)q * ng, ng, q_pid[q], q_cam[q], g_pid, g_cam, order,
                                good, &ap[q]);
      free(order);
      free(good);
    }
  }
  if (failed) {
    free(first);
    free(ap);
    free(cmc);
    return reid_fail(REID_ENOMEM, "rank_evaluate: out of memory for %d x %d", nq, ng);
  }
  double ap_sum = 0.0;
  int evaluated = 0;
  for (int q = 0; q < nq; q++) {
    if (first[q] < 0) continue;
    evaluated++;
    ap_sum += ap[q];
    for (int k = first[q]; k < max_rank; k++) cmc[k] += 1.0;
  }
  if (evaluated)
    for (int k = 0; k < max_rank; k++) cmc[k] /= evaluated;
  free(first);
  free(ap);
  out->map = evaluated ? ap_sum / evaluated : 0.0;
  out->cmc = cmc;
  out->max_rank = max_rank;
  out->queries = evaluated;
  out->skipped = nq - evaluated;
  return REID_OK;
}

void reid_rank_result_free(reid_rank_result *r) {
  if (!r) return;
  free(r->cmc);
  r->cmc = NULL;
}
