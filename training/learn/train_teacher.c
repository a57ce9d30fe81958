/* The teacher task: a ResNet with BNNeck trained video-to-video on
 *   L = triplet(pooled embedding) + CE(logits averaged over the T frames)
 * (see trainer.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "trainer_impl.h"

typedef struct teacher_state {
  float *emb, *logits, *d_emb, *d_logits; /* host [B, D], [B, K] */
  int cap;                                /* samples the host arrays hold */
  int batch;                              /* samples of the last compute() */
} teacher_state;

static reid_status teacher_setup(train_run *r) {
  const reid_train_config *c = r->cfg;
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  cfg.arch = c->arch;
  cfg.last_stride = c->last_stride;
  cfg.input_height = c->height;
  cfg.input_width = c->width;
  cfg.bnneck = 1;
  cfg.num_classes = r->data->n_train_ids;
  snprintf(cfg.task, sizeof cfg.task, "mdkt-teacher");
  snprintf(cfg.description, sizeof cfg.description,
           "reid-train teacher: triplet + CE, %d epochs of %d x %d x %d frames on %s (%s, %d ids)",
           c->epochs, c->batch_p, c->batch_k, c->frames, c->data, reid_layout_name(r->data->layout),
           r->data->n_train_ids);
  train_member *m = &r->members[0];
  m->name = "teacher";
  m->trained = 1;
  r->n_members = 1;
  REID_TRY(reid_net_create(&cfg, r->be, &m->net));
  REID_TRY(reid_net_init_weights(m->net, c->seed));
  if (c->init) REID_TRY(train_init_from(m->net, c->init));
  REID_TRY(reid_optimizer_init(&m->opt, m->net, c->weight_decay, c->adamw));
  teacher_state *s = calloc(1, sizeof *s);
  if (!s) return reid_fail(REID_ENOMEM, "out of memory");
  r->task_state = s;
  return REID_OK;
}

static reid_status ensure_host(teacher_state *s, int batch, int dim, int classes) {
  if (batch <= s->cap) return REID_OK;
  free(s->emb);
  size_t per = 2 * ((size_t)dim + classes);
  s->emb = malloc(sizeof(float) * per * batch);
  if (!s->emb) {
    s->cap = 0;
    return reid_fail(REID_ENOMEM, "out of memory for a batch of %d", batch);
  }
  s->d_emb = s->emb + (size_t)batch * dim;
  s->logits = s->d_emb + (size_t)batch * dim;
  s->d_logits = s->logits + (size_t)batch * classes;
  s->cap = batch;
  return REID_OK;
}

static reid_status teacher_compute(train_run *r, const reid_batch *b, loss_terms *t) {
  teacher_state *s = r->task_state;
  reid_net *net = r->members[0].net;
  const int B = b->batch, D = reid_net_feature_dim(net), K = reid_net_config(net)->num_classes;
  const float *x;
  REID_TRY(ensure_host(s, B, D, K));
  REID_TRY(train_upload_images(r, b->images, B * b->frames, &x));
  REID_TRY(reid_net_forward(net, x, B, b->frames, 1));
  REID_TRY(train_download_outputs(net, "teacher", B, s->emb, s->logits));
  memset(s->d_emb, 0, sizeof(float) * B * D);
  memset(s->d_logits, 0, sizeof(float) * B * K);
  double triplet, ce;
  REID_TRY(train_tr_loss(r, s->emb, s->logits, b->labels, B, D, K, 1.0f, s->d_emb, s->d_logits,
                         &triplet, &ce));
  s->batch = B; /* the gradients stay for apply() */
  terms_add(t, "loss", triplet + ce);
  terms_add(t, "triplet", triplet);
  terms_add(t, "ce", ce);
  return REID_OK;
}

static reid_status teacher_apply(train_run *r, float lr) {
  teacher_state *s = r->task_state;
  train_member *m = &r->members[0];
  REID_TRY(train_backward(r, m->net, s->d_emb, s->d_logits, s->batch));
  return reid_optimizer_step(&m->opt, lr);
}

static reid_status teacher_save(train_run *r, const char *path) {
  return reid_checkpoint_save(r->members[0].net, path, ST_F32);
}

static void teacher_destroy(train_run *r) {
  teacher_state *s = r->task_state;
  if (s) free(s->emb);
  free(s);
  r->task_state = NULL;
}

const train_task train_teacher_task = {
    .command = "teacher",
    .setup = teacher_setup,
    .compute = teacher_compute,
    .apply = teacher_apply,
    .save_model = teacher_save,
    .describe = NULL,
    .destroy = teacher_destroy,
};
