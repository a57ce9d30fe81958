/* The losses of DwoPP (papers.md §2) on host arrays, in the conventions of
 * losses.h (values returned unweighted, gradients ACCUMULATED as
 * grad += scale * dL/dx, a NULL gradient skipped).
 *
 * An episode is C identities x (S support + Q query) rows of x[C * (S + Q), d],
 * identity c's rows consecutive: c (S + Q) .. c (S + Q) + S - 1 are its
 * supports, the next Q its queries (the loader's P x K order with P = C,
 * K = S + Q). All distances are squared Euclidean: d(a, b) = sum (a - b)^2. */
#pragma once

#include "status.h"

typedef struct reid_episode_shape {
  int classes; /* C */
  int support; /* S */
  int query;   /* Q */
  int dim;     /* d */
} reid_episode_shape;

/* ---- DMML with hard mining, margin m --------------------------------------
 * For every query q of class i (N = C Q queries), against the supports of each class j:
 *   D[q, i] = max over supports s of class i of d(q, s)
 *   D[q, j] = max(min over supports s of class j of d(q, s) - m, 0),  j != i
 *   L = (1/N) sum_q -log softmax_j(-D[q, .])_i
 * Ties in the max/min go to the lowest support; the hinge passes no gradient at 0. */
reid_status reid_dmml_loss(const float *x, const reid_episode_shape *e, float margin, double *loss,
                           float scale, float *dx);
/* The same with only some classes as negatives: a query of class i is compared with class
 * j != i where negatives[i * C + j] != 0 (NULL: all of them). Pseudo-identities that may be
 * one person (two tracklets of different cameras, not known to be distinct) are left out of
 * each other's softmax instead of being pushed apart. A query with no negative left has
 * loss 0 (its softmax is its own class alone). */
reid_status reid_dmml_loss_masked(const float *x, const reid_episode_shape *e, float margin,
                                  const unsigned char *negatives, double *loss, float scale,
                                  float *dx);

/* ---- feature-norm penalty ---------------------------------------------------
 *   L = (1/n) sum_i ||x_i||^2   over the n rows of x[n, d] (the caller weighs it, 5e-4) */
reid_status reid_norm_penalty(const float *x, int n, int d, double *loss, float scale, float *dx);

/* ---- prototype distillation (DwoPP / DwPP) -----------------------------------
 * For each network: prototypes p_c = mean of class c's S supports; for every query q
 * (of class i), logits z[q, j] = -d(q, p_j) over the C classes;
 *   positive = 0 (DwoPP): the j = i entry is deleted, the row keeps C - 1 negatives;
 *   positive = 1 (DwPP):  all C entries are kept;
 *   P = softmax(z / T) per row;  t = max(P_old, clamp), s = max(P_new, clamp)
 *   L = (1/N) sum_q sum_j t[q, j] log(t[q, j] / s[q, j])      (KL(old || new), N = C Q)
 * x_old is a constant (the frozen previous model): only dx_new gets a gradient;
 * the clamp passes no gradient where P_new < clamp. */
reid_status reid_proto_distill_loss(const float *x_old, const float *x_new,
                                    const reid_episode_shape *e, int positive, float temperature,
                                    float clamp, double *loss, float scale, float *dx_new);
