/* The student task: MDKT distillation from a trained teacher (trainer.h).
 *
 * Per batch of B samples x T frames:
 *   teacher forward on all T frames (eval mode when frozen);
 *   student forward on M of them (a random subset in temporal order, drawn
 *   per sample with the trainer's RNG, so both networks see the same samples);
 *   D_t, D_s = Euclidean distances of the pooled embeddings (TR, TCL), and
 *   squared Euclidean ones (PD); TCL's triplets are mined on D_t;
 *   student: w_tr TR_s + w_mkd KD(t -> s) + w_pd PD + w_tcl TCL(t -> s)
 *   teacher: independent: TR_t;  mutual: TR_t + w_mkd KD(s -> t) + w_pd PD + w_tcl TCL(s -> t).
 * The two networks may differ in depth (e.g. a ResNet-18 student of a
 * ResNet-50 teacher): the distillation terms compare B x B distance matrices
 * and K logits, never the embeddings themselves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "losses.h"
#include "trainer_impl.h"

enum { STUDENT = 0, TEACHER = 1 };

typedef struct student_state {
  int cap, batch;
  float *emb[2], *logits[2], *d_emb[2], *d_logits[2]; /* host [B, D] / [B, K] per network */
  float *dist[2], *sq[2], *g_dist[2], *g_sq[2];       /* host [B, B] per network */
  int *pos, *neg;                                     /* [B] triplets mined on D_t */
  float *x_student;                                   /* host [B * M, 3, H, W] */
  size_t x_cap;
} student_state;

static reid_status load_teacher(train_run *r, reid_net **out) {
  const char *path = r->cfg->teacher;
  st_file *f;
  REID_TRY(st_open(path, &f));
  reid_model_roles roles;
  reid_model_config cfg;
  reid_net *net = NULL;
  reid_status st = reid_checkpoint_roles(f, &roles);
  const char *prefix = roles.is_pair ? roles.video_prefix : NULL;
  if (st == REID_OK) st = reid_checkpoint_read_config(f, prefix, &cfg);
  if (st == REID_OK && (!cfg.bnneck || cfg.num_classes != r->data->n_train_ids))
    st = reid_fail(REID_EINVAL,
                   "%s: the teacher has %s%d classes but %s has %d training "
                   "identities: train the teacher on the same data",
                   path, cfg.bnneck ? "" : "no BNNeck and ", cfg.num_classes, r->cfg->data,
                   r->data->n_train_ids);
  if (st == REID_OK && cfg.embed_after_bn)
    st = reid_fail(REID_EINVAL,
                   "%s: the teacher embeds after the BNNeck; MDKT distils the pooled "
                   "feature",
                   path);
  if (st == REID_OK) st = reid_net_create(&cfg, r->be, &net);
  if (st == REID_OK) st = reid_checkpoint_load_weights(net, f, prefix);
  st_close(f);
  if (st != REID_OK) {
    reid_net_destroy(net);
    return st;
  }
  *out = net;
  return REID_OK;
}

static reid_status init_student(train_run *r, reid_net *student, reid_net *teacher) {
  const char *init = r->cfg->student_init;
  if (!strcmp(init, "scratch")) return reid_net_init_weights(student, r->cfg->seed + 1);
  if (!strcmp(init, "teacher")) {
    if (reid_net_config(student)->arch != reid_net_config(teacher)->arch)
      return reid_fail(REID_EINVAL,
                       "--student-init teacher needs the teacher's architecture (%s), "
                       "not %s",
                       reid_arch_name(reid_net_config(teacher)->arch),
                       reid_arch_name(reid_net_config(student)->arch));
    return train_copy_weights(student, teacher, r->cfg->teacher);
  }
  st_file *f;
  REID_TRY(st_open(init, &f));
  reid_model_roles roles;
  reid_model_config cfg;
  reid_net *src = NULL;
  reid_status st = reid_checkpoint_roles(f, &roles);
  const char *prefix = roles.is_pair ? roles.image_prefix : NULL;
  if (st == REID_OK) st = reid_checkpoint_read_config(f, prefix, &cfg);
  if (st == REID_OK) st = reid_net_create(&cfg, r->be, &src);
  if (st == REID_OK) st = reid_checkpoint_load_weights(src, f, prefix);
  if (st == REID_OK) st = reid_net_init_weights(student, r->cfg->seed + 1);
  if (st == REID_OK) st = train_copy_weights(student, src, init);
  reid_net_destroy(src);
  st_close(f);
  return st;
}

static reid_status student_setup(train_run *r) {
  const reid_train_config *c = r->cfg;
  reid_net *teacher = NULL;
  REID_TRY(load_teacher(r, &teacher));
  const reid_model_config *tc = reid_net_config(teacher);
  r->members[TEACHER] =
      (train_member){.name = "teacher", .net = teacher, .trained = c->mode != REID_TEACHER_FROZEN};
  r->n_members = 2; /* from here on the trainer frees both */
  reid_model_config cfg = *tc;
  cfg.arch = c->arch_set ? c->arch : tc->arch;
  cfg.last_stride = c->last_stride;
  cfg.bnneck = 1;
  cfg.embed_after_bn = 0;
  snprintf(cfg.task, sizeof cfg.task, "mdkt-student");
  char losses[32];
  reid_losses_format(c->losses, losses, sizeof losses);
  snprintf(cfg.description, sizeof cfg.description,
           "reid-train student: MDKT %s, teacher %s, M=%d of T=%d frames, %d epochs on %s", losses,
           reid_teacher_mode_name(c->mode), c->student_frames, c->frames, c->epochs, c->data);
  train_member *s = &r->members[STUDENT];
  s->name = "student";
  s->trained = 1;
  REID_TRY(reid_net_create(&cfg, r->be, &s->net));
  REID_TRY(init_student(r, s->net, teacher));
  REID_TRY(reid_optimizer_init(&s->opt, s->net, c->weight_decay, c->adamw));
  if (r->members[TEACHER].trained)
    REID_TRY(reid_optimizer_init(&r->members[TEACHER].opt, teacher, c->weight_decay, c->adamw));
  student_state *st = calloc(1, sizeof *st);
  if (!st) return reid_fail(REID_ENOMEM, "out of memory");
  r->task_state = st;
  return REID_OK;
}

static void free_host(student_state *s) {
  for (int n = 0; n < 2; n++) {
    free(s->emb[n]);
    free(s->dist[n]);
  }
  free(s->pos);
  free(s->x_student);
  memset(s, 0, sizeof *s);
}

static reid_status ensure_host(student_state *s, train_run *r, int batch) {
  if (batch <= s->cap) return REID_OK;
  free_host(s);
  int k = r->data->n_train_ids;
  size_t bb = (size_t)batch * batch;
  for (int n = 0; n < 2; n++) {
    int d = reid_net_feature_dim(r->members[n].net);
    s->emb[n] = malloc(sizeof(float) * 2 * ((size_t)d + k) * batch);
    s->dist[n] = malloc(sizeof(float) * 4 * bb);
    if (!s->emb[n] || !s->dist[n]) return reid_fail(REID_ENOMEM, "out of memory");
    s->d_emb[n] = s->emb[n] + (size_t)d * batch;
    s->logits[n] = s->d_emb[n] + (size_t)d * batch;
    s->d_logits[n] = s->logits[n] + (size_t)k * batch;
    s->sq[n] = s->dist[n] + bb;
    s->g_dist[n] = s->sq[n] + bb;
    s->g_sq[n] = s->g_dist[n] + bb;
  }
  s->pos = malloc(sizeof(int) * 2 * batch);
  if (!s->pos) return reid_fail(REID_ENOMEM, "out of memory");
  s->neg = s->pos + batch;
  s->cap = batch;
  return REID_OK;
}

/* x_student[i, m] = images[i, frame_m] for a random M-subset of the T frames, in order. */
static reid_status gather_student_frames(train_run *r, student_state *s, const reid_batch *b,
                                         int m) {
  const reid_model_config *cfg = reid_net_config(r->members[STUDENT].net);
  const size_t image = (size_t)3 * cfg->input_height * cfg->input_width;
  const int T = b->frames;
  size_t need = image * b->batch * m;
  if (need > s->x_cap) {
    free(s->x_student);
    s->x_student = malloc(sizeof(float) * need);
    s->x_cap = s->x_student ? need : 0;
    if (!s->x_student) return reid_fail(REID_ENOMEM, "out of memory for the student's frames");
  }
  int order[T];
  for (int i = 0; i < b->batch; i++) {
    for (int t = 0; t < T; t++) order[t] = t;
    if (m < T) {
      for (int j = 0; j < m; j++) { /* partial Fisher-Yates, then sort the chosen */
        int k = j + (int)reid_rng_below(&r->rng, (uint32_t)(T - j));
        int tmp = order[j];
        order[j] = order[k];
        order[k] = tmp;
      }
      for (int j = 1; j < m; j++)
        for (int k = j; k > 0 && order[k - 1] > order[k]; k--) {
          int tmp = order[k];
          order[k] = order[k - 1];
          order[k - 1] = tmp;
        }
    }
    for (int j = 0; j < m; j++)
      memcpy(s->x_student + image * ((size_t)i * m + j),
             b->images + image * ((size_t)i * T + order[j]), sizeof(float) * image);
  }
  return REID_OK;
}

static reid_status student_compute(train_run *r, const reid_batch *b, loss_terms *t) {
  const reid_train_config *c = r->cfg;
  student_state *s = r->task_state;
  reid_net *net[2] = {r->members[STUDENT].net, r->members[TEACHER].net};
  const int B = b->batch, M = c->student_frames, K = r->data->n_train_ids;
  const int trained_teacher = r->members[TEACHER].trained, mutual = c->mode == REID_TEACHER_MUTUAL;
  const float *x;
  REID_TRY(ensure_host(s, r, B));
  s->batch = B;
  REID_TRY(train_upload_images(r, b->images, B * b->frames, &x));
  REID_TRY(reid_net_forward(net[TEACHER], x, B, b->frames, trained_teacher));
  REID_TRY(gather_student_frames(r, s, b, M));
  REID_TRY(train_upload_images(r, s->x_student, B * M, &x));
  REID_TRY(reid_net_forward(net[STUDENT], x, B, M, 1));
  int dim[2];
  for (int n = 0; n < 2; n++) {
    dim[n] = reid_net_feature_dim(net[n]);
    REID_TRY(train_download_outputs(net[n], r->members[n].name, B, s->emb[n], s->logits[n]));
    memset(s->d_emb[n], 0, sizeof(float) * B * dim[n]);
    memset(s->d_logits[n], 0, sizeof(float) * B * K);
    memset(s->g_dist[n], 0, sizeof(float) * 2 * B * B); /* g_dist and g_sq */
    REID_TRY(reid_pairwise_distances(s->emb[n], B, dim[n], 0, s->dist[n]));
    REID_TRY(reid_pairwise_distances(s->emb[n], B, dim[n], 1, s->sq[n]));
  }
  REID_TRY(reid_mine_batch_hard(s->dist[TEACHER], b->labels, B, s->pos, s->neg));

  double tri = 0, ce = 0, kd = 0, pd = 0, tcl = 0, student_total = 0;
  terms_add(t, "student", 0); /* filled in below */
  if (c->losses & REID_LOSS_TR) {
    REID_TRY(train_tr_loss(r, s->emb[STUDENT], s->logits[STUDENT], b->labels, B, dim[STUDENT], K,
                           c->w_tr, s->d_emb[STUDENT], s->d_logits[STUDENT], &tri, &ce));
    student_total += c->w_tr * (tri + ce);
    terms_add(t, "s_triplet", tri);
    terms_add(t, "s_ce", ce);
  }
  if (c->losses & REID_LOSS_MKD) {
    REID_TRY(reid_kd_logits(s->logits[TEACHER], s->logits[STUDENT], B, K, c->tau1, &kd, c->w_mkd,
                            s->d_logits[STUDENT]));
    student_total += c->w_mkd * kd;
    terms_add(t, "mkd_t2s", kd);
  }
  if (c->losses & REID_LOSS_PD) {
    REID_TRY(reid_pd_loss(s->sq[TEACHER], s->sq[STUDENT], B, &pd, c->w_pd,
                          mutual ? s->g_sq[TEACHER] : NULL, s->g_sq[STUDENT]));
    student_total += c->w_pd * pd;
    terms_add(t, "pd", pd);
  }
  if (c->losses & REID_LOSS_TCL) {
    REID_TRY(reid_tcl_loss(s->dist[TEACHER], s->dist[STUDENT], B, s->pos, s->neg, c->tau2, &tcl,
                           NULL, c->w_tcl, s->g_dist[STUDENT]));
    student_total += c->w_tcl * tcl;
    terms_add(t, "tcl_t2s", tcl);
  }
  t->value[0] = student_total;

  if (trained_teacher) {
    double t_tri, t_ce, teacher_total;
    REID_TRY(train_tr_loss(r, s->emb[TEACHER], s->logits[TEACHER], b->labels, B, dim[TEACHER], K,
                           1.0f, s->d_emb[TEACHER], s->d_logits[TEACHER], &t_tri, &t_ce));
    teacher_total = t_tri + t_ce;
    int total_index = t->count;
    terms_add(t, "teacher", 0);
    terms_add(t, "t_triplet", t_tri);
    terms_add(t, "t_ce", t_ce);
    if (mutual && (c->losses & REID_LOSS_MKD)) {
      REID_TRY(reid_kd_logits(s->logits[STUDENT], s->logits[TEACHER], B, K, c->tau1, &kd, c->w_mkd,
                              s->d_logits[TEACHER]));
      teacher_total += c->w_mkd * kd;
      terms_add(t, "mkd_s2t", kd);
    }
    if (mutual && (c->losses & REID_LOSS_PD)) teacher_total += c->w_pd * pd;
    if (mutual && (c->losses & REID_LOSS_TCL)) {
      REID_TRY(reid_tcl_loss(s->dist[STUDENT], s->dist[TEACHER], B, s->pos, s->neg, c->tau2, &tcl,
                             NULL, c->w_tcl, s->g_dist[TEACHER]));
      teacher_total += c->w_tcl * tcl;
      terms_add(t, "tcl_s2t", tcl);
    }
    t->value[total_index] = teacher_total;
  }
  /* distance gradients -> embedding gradients */
  for (int n = 0; n < (trained_teacher ? 2 : 1); n++) {
    REID_TRY(reid_pairwise_distances_backward(s->emb[n], s->dist[n], s->g_dist[n], B, dim[n], 0,
                                              s->d_emb[n]));
    REID_TRY(reid_pairwise_distances_backward(s->emb[n], s->sq[n], s->g_sq[n], B, dim[n], 1,
                                              s->d_emb[n]));
  }
  return REID_OK;
}

static reid_status student_apply(train_run *r, float lr) {
  student_state *s = r->task_state;
  for (int n = 0; n < 2; n++) {
    train_member *m = &r->members[n];
    if (!m->trained) continue;
    REID_TRY(train_backward(r, m->net, s->d_emb[n], s->d_logits[n], s->batch));
    REID_TRY(reid_optimizer_step(&m->opt, lr));
  }
  return REID_OK;
}

static reid_status student_save(train_run *r, const char *path) {
  return reid_checkpoint_save_pair(r->members[TEACHER].net, r->members[STUDENT].net, path, ST_F32);
}

static void student_describe(const train_run *r, char *buf, size_t size) {
  const reid_train_config *c = r->cfg;
  char losses[32];
  reid_losses_format(c->losses, losses, sizeof losses);
  snprintf(buf, size,
           "teacher=%s;teacher_mode=%s;losses=%s;student_frames=%d;student_init=%s;tau1=%g;"
           "tau2=%g;w_tr=%g;w_mkd=%g;w_pd=%g;w_tcl=%g;",
           c->teacher, reid_teacher_mode_name(c->mode), losses, c->student_frames, c->student_init,
           (double)c->tau1, (double)c->tau2, (double)c->w_tr, (double)c->w_mkd, (double)c->w_pd,
           (double)c->w_tcl);
}

static void student_destroy(train_run *r) {
  student_state *s = r->task_state;
  if (s) free_host(s);
  free(s);
  r->task_state = NULL;
}

const train_task train_student_task = {
    .command = "student",
    .setup = student_setup,
    .compute = student_compute,
    .apply = student_apply,
    .save_model = student_save,
    .describe = student_describe,
    .destroy = student_destroy,
};
