/* The re-ID and distillation losses of MDKT (papers.md §1), on host arrays.
 *
 * Embeddings and logits are small (a batch of 16..64 rows), so the losses run
 * in plain C on the host, accumulating in double; the trainer downloads the
 * network outputs, calls these, and uploads the gradients.
 *
 * Conventions:
 *  - every loss returns its value (unweighted) in *loss;
 *  - gradients ACCUMULATE: grad += scale * dL/d(input), where scale is the
 *    loss's weight in the total; a NULL gradient pointer is skipped;
 *  - distance matrices are [n, n] row-major, dist[i * n + j];
 *  - a distillation direction "target -> learner" treats the target as a
 *    constant (detached): only the learner's input gets a gradient. */
#pragma once

#include <stdint.h>

#include "backend.h"
#include "status.h"

#define REID_LOSS_EUCLIDEAN_EPS 1e-12 /* dist = sqrt(sum diff^2 + eps) */

/* ---- pairwise distances between the rows of x[n, d] ---------------------
 *   squared = 0: dist[i, j] = sqrt(sum_k (x[i, k] - x[j, k])^2 + 1e-12)
 *   squared = 1: dist[i, j] = sum_k (x[i, k] - x[j, k])^2 */
reid_status reid_pairwise_distances(const float *x, int n, int d, int squared, float *dist);
/* dx[i] += sum_j (ddist[i, j] + ddist[j, i]) * dd(i, j) / dx[i], with
 *   dd/dx[i] = (x[i] - x[j]) / dist[i, j]   (Euclidean; dist from the forward)
 *   dd/dx[i] = 2 (x[i] - x[j])              (squared; dist unused) */
reid_status reid_pairwise_distances_backward(const float *x, const float *dist, const float *ddist,
                                             int n, int d, int squared, float *dx);

/* ---- batch-hard mining ----------------------------------------------------
 * For every anchor i:
 *   pos[i] = argmax over j != i with labels[j] == labels[i] of dist[i, j]
 *   neg[i] = argmin over j with labels[j] != labels[i] of dist[i, j]
 * -1 where the batch has no such j (the triplet losses then skip anchor i).
 * Ties go to the lowest index. */
reid_status reid_mine_batch_hard(const float *dist, const int32_t *labels, int n, int *pos,
                                 int *neg);

/* ---- soft-margin batch-hard triplet ---------------------------------------
 *   L = (1/A) sum over anchors a with pos and neg: log(1 + exp(d[a,p] - d[a,n]))
 * A = the number of such anchors (L = 0 when A = 0); *anchors gets A (may be NULL). */
reid_status reid_triplet_soft_margin(const float *dist, int n, const int *pos, const int *neg,
                                     double *loss, int *anchors, float scale, float *ddist);

/* ---- logit distillation (one direction of MKD) ----------------------------
 *   y = softmax(z / tau) per row of z[b, k]
 *   L = tau^2 (1/b) sum_rows KL(y_target || y_learner)
 *     = tau^2 (1/b) sum_rows sum_j y_t,j (log y_t,j - log y_l,j)
 *   dL/dz_learner = tau (1/b) (y_learner - y_target)
 * MKD = this with (teacher -> student) + this with (student -> teacher);
 * t2s trains the student, s2t the teacher. */
reid_status reid_kd_logits(const float *z_target, const float *z_learner, int b, int k, float tau,
                           double *loss, float scale, float *dz_learner);

/* ---- pairwise distance distillation ---------------------------------------
 *   L = 0.5 (1/n^2) sum_{i,j} (D_t[i, j] - D_s[i, j])^2
 * over all n^2 entries; for symmetric matrices with a zero diagonal (the
 * squared Euclidean distances the trainer passes) this is
 *   (1/n^2) sum_{i<j} (D_t[i, j] - D_s[i, j])^2,
 * the poster's sum divided by n^2 (VKD's "0.5 mean of squared differences";
 * VKD weighs it 1e-4). Gradients: dD_s = -(D_t - D_s)/n^2, dD_t = -dD_s.
 * Symmetric: the teacher gets dd_t only where it learns from the student. */
reid_status reid_pd_loss(const float *d_teacher, const float *d_student, int n, double *loss,
                         float scale, float *dd_teacher, float *dd_student);

/* ---- triplet contrast (one direction of TCL) -------------------------------
 * For each anchor a with pos[a] >= 0 and neg[a] >= 0 (the teacher's mined
 * triplets, shared by both networks), on each network's distances:
 *   p = sigmoid((d[a, n] - d[a, p]) / tau),  P = [p, 1 - p]
 *   L = sum over triplets KL(P_target || P_learner)
 *   dL/d(d_learner[a, n]) = (p_learner - p_target) / tau = -dL/d(d_learner[a, p])
 * Summed, not averaged, over triplets (papers.md §1). *triplets may be NULL. */
reid_status reid_tcl_loss(const float *d_target, const float *d_learner, int n, const int *pos,
                          const int *neg, float tau, double *loss, int *triplets, float scale,
                          float *dd_learner);

/* ---- identity cross-entropy with label smoothing eps -----------------------
 * The backend op softmax_xent (PyTorch's label_smoothing) on host memory,
 * averaged over the batch:
 *   L = (1/b) sum_i -sum_j t_ij log softmax(z_i)_j,  t = (1 - eps) onehot + eps / k
 *   dL/dz_i = (softmax(z_i) - t_i) / b
 * `cpu` must be a host-memory (CPU) backend. */
reid_status reid_ce_loss(reid_backend *cpu, const float *z, const int32_t *labels, int b, int k,
                         float smoothing, double *loss, float scale, float *dz);
