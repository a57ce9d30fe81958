/* One DwoPP training step (continual.h): forward of the old model (eval mode) and the
 * new one on the same episode, DMML + norm penalty + distillation, backward and Adam. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "continual_impl.h"
#include "dmml.h"

static reid_status ensure_host(continual_state *s, int batch, int dim) {
  if (batch <= s->cap) return REID_OK;
  free(s->emb);
  s->emb = malloc(sizeof(float) * 3 * (size_t)batch * dim);
  if (!s->emb) {
    s->cap = 0;
    return reid_fail(REID_ENOMEM, "out of memory for a batch of %d", batch);
  }
  s->emb_old = s->emb + (size_t)batch * dim;
  s->d_emb = s->emb_old + (size_t)batch * dim;
  s->cap = batch;
  return REID_OK;
}

/* The DMML negatives of a collected episode (continual.h, known_negatives): class j is a
 * negative of class i when both tracklets come from one camera (a tracker splits a person
 * there rarely) or were seen together in one frame (different people by construction);
 * a tracklet of another camera not known distinct may be the same person and is left out.
 * Class c's tracklet is the sample of its first row (a pseudo-identity is one tracklet).
 * Returns NULL (every class a negative) for labelled streams. */
static reid_status episode_negatives(continual_state *s, const reid_batch *b,
                                     const reid_episode_shape *e, const unsigned char **out) {
  *out = NULL;
  const reid_continual_config *c = s->cfg;
  if (c->stream.kind != REID_STREAM_COLLECTED || !c->known_negatives) return REID_OK;
  const int C = e->classes, K = e->support + e->query;
  if (!s->negatives && !(s->negatives = malloc((size_t)C * C)))
    return reid_fail(REID_ENOMEM, "out of memory");
  for (int i = 0; i < C; i++)
    for (int j = 0; j < C; j++)
      s->negatives[i * C + j] = i != j && (b->camids[i * K] == b->camids[j * K] ||
                                           reid_dataset_distinct(s->view, b->sample_index[i * K],
                                                                 b->sample_index[j * K]));
  *out = s->negatives;
  return REID_OK;
}

static reid_status step_compute(train_run *r, const reid_batch *b, loss_terms *t) {
  continual_state *s = r->task_state;
  const reid_continual_config *c = s->cfg;
  reid_net *net = r->members[0].net;
  const int B = b->batch, D = reid_net_feature_dim(net);
  const reid_episode_shape e = {c->episode_ids, c->support, c->query, D};
  if (B != e.classes * (e.support + e.query) || b->frames != 1)
    return reid_fail(REID_EINVAL, "an episode of %d x (%d + %d) images got a batch of %d x %d",
                     e.classes, e.support, e.query, B, b->frames);
  REID_TRY(ensure_host(s, B, D));
  const float *x;
  REID_TRY(train_upload_images(r, b->images, B, &x));
  const int distil = r->n_members == 2 && c->kd_weight > 0;
  if (distil) {
    REID_TRY(reid_net_forward(r->members[1].net, x, B, 1, 0));
    REID_TRY(train_download_outputs(r->members[1].net, "old model", B, s->emb_old, NULL));
  }
  REID_TRY(reid_net_forward(net, x, B, 1, 1));
  REID_TRY(train_download_outputs(net, "model", B, s->emb, NULL));
  memset(s->d_emb, 0, sizeof(float) * (size_t)B * D);
  double dmml, norm, kd = 0;
  const unsigned char *negatives;
  REID_TRY(episode_negatives(s, b, &e, &negatives));
  REID_TRY(reid_dmml_loss_masked(s->emb, &e, c->margin, negatives, &dmml, 1.0f, s->d_emb));
  REID_TRY(reid_norm_penalty(s->emb, B, D, &norm, c->norm_weight, s->d_emb));
  if (distil)
    REID_TRY(reid_proto_distill_loss(s->emb_old, s->emb, &e, c->method == REID_CL_DWPP,
                                     reid_continual_temperature(c), c->clamp, &kd, c->kd_weight,
                                     s->d_emb));
  s->batch = B;
  terms_add(t, "loss", dmml + (double)c->norm_weight * norm + (double)c->kd_weight * kd);
  terms_add(t, "dmml", dmml);
  terms_add(t, "norm", norm);
  terms_add(t, "kd", kd);
  return REID_OK;
}

static reid_status step_apply(train_run *r, float lr) {
  continual_state *s = r->task_state;
  train_member *m = &r->members[0];
  REID_TRY(train_backward(r, m->net, s->d_emb, NULL, s->batch));
  return reid_optimizer_step(&m->opt, lr);
}

/* The model with metadata continual_task, continual_method, continual_datasets. */
static reid_status step_save(train_run *r, const char *path) {
  continual_state *s = r->task_state;
  st_writer *w = st_writer_new();
  if (!w) return REID_ENOMEM;
  char task[16];
  snprintf(task, sizeof task, "%d", s->task);
  reid_status st = reid_checkpoint_add(w, r->members[0].net, "", ST_F32);
  if (st == REID_OK) st = st_writer_add_meta(w, "continual_task", task);
  if (st == REID_OK)
    st = st_writer_add_meta(w, "continual_method", reid_cl_method_name(s->cfg->method));
  if (st == REID_OK)
    st = st_writer_add_meta(w, "continual_stream", reid_stream_kind_name(s->cfg->stream.kind));
  if (st == REID_OK) st = st_writer_add_meta(w, "continual_datasets", s->datasets);
  if (st == REID_OK) st = st_writer_save(w, path);
  st_writer_free(w);
  return st;
}

static void step_destroy(train_run *r) {
  continual_state *s = r->task_state;
  if (!s) return;
  free(s->emb);
  free(s->negatives);
  s->emb = NULL;
  s->negatives = NULL;
  s->cap = 0;
}

const train_task continual_train_task = {
    .command = "continual",
    .compute = step_compute,
    .apply = step_apply,
    .save_model = step_save,
    .destroy = step_destroy,
};
