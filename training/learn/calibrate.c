/* Threshold calibration (calibrate.h). */
#include "calibrate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

static int ascending(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return x < y ? -1 : x > y;
}

/* Count of v[0, n) (sorted ascending) below t. */
static long below(const float *v, long n, float t) {
  long lo = 0, hi = n;
  while (lo < hi) {
    long mid = lo + (hi - lo) / 2;
    if (v[mid] < t)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

reid_status reid_threshold_from_scores(float *gen, long ng, float *imp, long ni, double fmr_target,
                                       reid_threshold_result *out) {
  memset(out, 0, sizeof *out);
  out->fmr_target = fmr_target;
  out->genuine = ng, out->impostor = ni;
  if (ng < 1 || ni < 1)
    return reid_fail(REID_EINVAL,
                     "calibration: %ld same-identity and %ld different-identity pairs; "
                     "both are needed",
                     ng, ni);
  qsort(gen, (size_t)ng, sizeof *gen, ascending);
  qsort(imp, (size_t)ni, sizeof *imp, ascending);
  /* at most floor(target * ni) impostors may reach t: t just above the next one down */
  long allowed = (long)floor(fmr_target * (double)ni);
  if (allowed >= ni) allowed = ni - 1;
  float t = nextafterf(imp[ni - 1 - allowed], INFINITY);
  out->at_fmr = t;
  out->fmr = (double)(ni - below(imp, ni, t)) / (double)ni;
  out->fnmr_at_fmr = (double)below(gen, ng, t) / (double)ng;
  /* equal error: scan every score as a candidate threshold */
  double best = INFINITY;
  for (int which = 0; which < 2; which++) {
    const float *v = which ? imp : gen;
    long n = which ? ni : ng;
    for (long i = 0; i < n; i++) {
      float c = v[i];
      double fmr = (double)(ni - below(imp, ni, c)) / (double)ni,
             fnmr = (double)below(gen, ng, c) / (double)ng;
      if (fabs(fmr - fnmr) < best) {
        best = fabs(fmr - fnmr);
        out->at_eer = c;
        out->eer = 0.5 * (fmr + fnmr);
      }
    }
  }
  return REID_OK;
}

reid_status reid_threshold_calibrate(const float *q, const reid_split *query, const float *g,
                                     const reid_split *gallery, int dim, double fmr_target,
                                     reid_threshold_result *out) {
  const long nq = query->count, ng = gallery->count;
  float *gen = malloc(sizeof(float) * (size_t)(nq * ng)),
        *imp = malloc(sizeof(float) * (size_t)(nq * ng));
  if (!gen || !imp) {
    free(gen);
    free(imp);
    return reid_fail(REID_ENOMEM, "calibration: out of memory for %ld x %ld pairs", nq, ng);
  }
  long n_gen = 0, n_imp = 0;
  for (long i = 0; i < nq; i++) {
    const reid_sample *a = &query->samples[i];
    if (a->pid < 0) continue;
    for (long j = 0; j < ng; j++) {
      const reid_sample *b = &gallery->samples[j];
      if (b->pid == -1 || (b->pid == a->pid && b->camid == a->camid)) continue; /* junk */
      float s = 0;
      for (int k = 0; k < dim; k++) s += q[i * dim + k] * g[j * dim + k];
      if (b->pid == a->pid)
        gen[n_gen++] = s;
      else
        imp[n_imp++] = s;
    }
  }
  reid_status st = reid_threshold_from_scores(gen, n_gen, imp, n_imp, fmr_target, out);
  free(gen);
  free(imp);
  return st;
}

reid_status reid_checkpoint_set_threshold(const char *path, double t) {
  if (!(t >= -1 && t <= 1))
    return reid_fail(REID_EINVAL, "%s: match threshold %g is not a cosine in [-1, 1]", path, t);
  st_file *f = NULL;
  REID_TRY(st_open(path, &f));
  st_writer *w = st_writer_new();
  reid_status st = w ? REID_OK : reid_fail(REID_ENOMEM, "%s: out of memory", path);
  const char *key, *value;
  for (size_t i = 0; st == REID_OK && st_meta_at(f, i, &key, &value) == 0; i++)
    if (strcmp(key, "match_threshold")) st = st_writer_add_meta(w, key, value);
  char text[32];
  snprintf(text, sizeof text, "%.6f", t);
  if (st == REID_OK) st = st_writer_add_meta(w, "match_threshold", text);
  for (size_t i = 0; st == REID_OK && i < st_count(f); i++) {
    const st_tensor *x = st_tensor_at(f, i);
    st = st_writer_add_raw(w, x->name, x->dtype, x->ndim, x->shape, st_data(f, x));
  }
  if (st == REID_OK) st = st_writer_save(w, path);
  st_writer_free(w);
  st_close(f);
  return st;
}
