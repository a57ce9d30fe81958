/* The match threshold of a model: the cosine that separates same-identity pairs (genuine)
 * from different-identity pairs (impostors) on an evaluation set's query x gallery features.
 *
 * Pairs follow the ranking protocol (metrics.h): genuine = the query's pid in another camera;
 * impostor = any other pid (distractors, pid 0, included); junk (pid -1, or the query's pid
 * in the query's camera) is left out. For a cosine threshold t:
 *   FMR(t)  = impostor pairs scoring >= t / impostor pairs  (false matches)
 *   FNMR(t) = genuine pairs scoring < t / genuine pairs      (missed matches)
 * at_fmr is the lowest threshold whose FMR <= the target; at_eer the one where FMR and FNMR
 * are closest (eer = their mean there). */
#pragma once

#include "dataset.h"
#include "status.h"

typedef struct reid_threshold_result {
  double fmr_target;
  double at_fmr, fmr, fnmr_at_fmr; /* threshold, its FMR and FNMR */
  double at_eer, eer;
  long genuine, impostor; /* pair counts */
} reid_threshold_result;

/* From per-pair cosines: genuine[ng], impostor[ni] (both sorted in place). */
reid_status reid_threshold_from_scores(float *genuine, long ng, float *impostor, long ni,
                                       double fmr_target, reid_threshold_result *out);

/* From L2-normalised features q[nq, dim] and g[ng, dim] with their splits' pids/cameras. */
reid_status reid_threshold_calibrate(const float *q, const reid_split *query, const float *g,
                                     const reid_split *gallery, int dim, double fmr_target,
                                     reid_threshold_result *out);

/* Rewrites the checkpoint at path with metadata match_threshold = t ("%.6f"); tensors and the
 * other metadata are kept as they are (the file is replaced atomically). */
reid_status reid_checkpoint_set_threshold(const char *path, double t);
