/* The training loop shared by the teacher and the student (see trainer.h):
 * setup, epochs of steps (load -> compute -> guard -> apply -> log),
 * checkpoints and resumption. The tasks' math is in train_teacher.c and
 * train_student.c. */
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "losses.h"
#include "trainer_impl.h"
#if HAVE_CUDA
#include "reid_cuda.h"
#endif

/* ---- names ---- */

static const char *const mode_names[] = {"frozen", "independent", "mutual"};

reid_status reid_teacher_mode_parse(const char *name, reid_teacher_mode *out) {
  for (int i = 0; i < 3; i++)
    if (name && !strcmp(name, mode_names[i])) {
      *out = (reid_teacher_mode)i;
      return REID_OK;
    }
  return reid_fail(REID_EINVAL,
                   "unknown teacher mode '%s' (expected frozen, independent or mutual)",
                   name ? name : "(null)");
}

const char *reid_teacher_mode_name(reid_teacher_mode m) {
  return m >= REID_TEACHER_FROZEN && m <= REID_TEACHER_MUTUAL ? mode_names[m] : "unknown";
}

static const char *const loss_names[] = {"tr", "mkd", "pd", "tcl"};

reid_status reid_losses_parse(const char *text, unsigned *out) {
  unsigned set = 0;
  const char *p = text ? text : "";
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    int found = -1;
    for (int i = 0; i < 4; i++)
      if (len == strlen(loss_names[i]) && !strncmp(p, loss_names[i], len)) found = i;
    if (found < 0)
      return reid_fail(REID_EINVAL, "unknown loss '%.*s' in '%s' (expected tr, mkd, pd, tcl)",
                       (int)len, p, text);
    set |= 1u << found;
    if (!end) break;
    p = end + 1;
    if (!*p) return reid_fail(REID_EINVAL, "empty loss name at the end of '%s'", text);
  }
  if (!set) return reid_fail(REID_EINVAL, "no loss selected (expected a list of tr, mkd, pd, tcl)");
  *out = set;
  return REID_OK;
}

void reid_losses_format(unsigned losses, char *buf, size_t size) {
  size_t used = 0;
  buf[0] = 0;
  for (int i = 0; i < 4 && used < size; i++)
    if (losses & (1u << i))
      used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? "," : "", loss_names[i]);
}

void reid_train_config_default(reid_train_config *c, int student) {
  memset(c, 0, sizeof *c);
  c->student = student;
  c->layout = REID_LAYOUT_AUTO;
  c->progress = stderr;
  c->device = "auto";
  c->workers = 2;
  c->arch = REID_ARCH_RESNET50;
  c->last_stride = 1;
  c->height = 256;
  c->width = 128;
  c->epochs = student ? 500 : 300;
  c->save_every = 10;
  c->batch_p = student ? 12 : 8;
  c->batch_k = 4;
  c->frames = 8;
  c->sampling = REID_FRAMES_RANDOM_CHUNKS;
  c->augment = (reid_augment){1, 0.5f, 10, 0.5f, 0.02f, 0.4f, 0.3f, 0, 0, 0};
  c->lr = 1e-4f;
  c->weight_decay = 1e-5f;
  snprintf(c->schedule_text, sizeof c->schedule_text, "%s",
           student ? "multistep:300,450:0.1" : "multistep:100,200:0.1");
  reid_lr_schedule_parse(c->schedule_text, c->lr, &c->schedule);
  c->seed = 1;
  c->student_init = "teacher";
  c->student_frames = 2;
  c->losses = REID_LOSS_TR | REID_LOSS_MKD | REID_LOSS_PD | REID_LOSS_TCL;
  c->mode = REID_TEACHER_MUTUAL;
  c->tau1 = 10.0f;
  c->tau2 = 1.0f;
  c->w_tr = 1.0f;
  c->w_mkd = 0.1f;
  c->w_pd = 1e-4f;
  c->w_tcl = 1.0f;
}

/* ---- helpers for the tasks ---- */

reid_status train_device_buffer(reid_backend *be, float **buf, size_t *cap, size_t floats) {
  if (*buf && *cap >= floats) return REID_OK;
  if (*buf) be->ops->free(be, *buf);
  *buf = be->ops->alloc(be, sizeof(float) * (floats ? floats : 1));
  *cap = *buf ? floats : 0;
  if (!*buf) return reid_fail(REID_ENOMEM, "out of %s memory for %zu floats", be->name, floats);
  return REID_OK;
}

reid_status train_upload_images(train_run *r, const float *images, int n, const float **x_dev) {
  const reid_model_config *m = reid_net_config(r->members[0].net);
  size_t floats = (size_t)n * 3 * m->input_height * m->input_width;
  REID_TRY(train_device_buffer(r->be, &r->x_dev, &r->x_cap, floats));
  REID_TRY(r->be->ops->upload(r->be, r->x_dev, images, sizeof(float) * floats));
  *x_dev = r->x_dev;
  return REID_OK;
}

static int all_finite(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

reid_status train_download_outputs(reid_net *net, const char *name, int batch, float *emb,
                                   float *logits) {
  reid_backend *be = reid_net_backend(net);
  int d = reid_net_feature_dim(net), k = reid_net_config(net)->num_classes;
  REID_TRY(be->ops->download(be, emb, reid_net_embedding(net), sizeof(float) * batch * d));
  if (!all_finite(emb, (size_t)batch * d))
    return reid_fail(REID_ENUMERIC, "the %s's embeddings are not finite", name);
  if (logits && k > 0) {
    REID_TRY(be->ops->download(be, logits, reid_net_logits(net), sizeof(float) * batch * k));
    if (!all_finite(logits, (size_t)batch * k))
      return reid_fail(REID_ENUMERIC, "the %s's logits are not finite", name);
  }
  return REID_OK;
}

reid_status train_tr_loss(train_run *r, const float *emb, const float *logits,
                          const int32_t *labels, int batch, int dim, int classes, float scale,
                          float *d_emb, float *d_logits, double *triplet, double *ce) {
  float *dist = malloc(sizeof(float) * 2 * batch * batch), *ddist = dist + batch * batch;
  int *pos = malloc(sizeof(int) * 2 * batch), *neg = pos + batch;
  reid_status st = dist && pos ? REID_OK : reid_fail(REID_ENOMEM, "out of memory");
  if (st == REID_OK) {
    memset(ddist, 0, sizeof(float) * batch * batch);
    st = reid_pairwise_distances(emb, batch, dim, 0, dist);
  }
  if (st == REID_OK) st = reid_mine_batch_hard(dist, labels, batch, pos, neg);
  if (st == REID_OK)
    st = reid_triplet_soft_margin(dist, batch, pos, neg, triplet, NULL, scale, ddist);
  if (st == REID_OK) st = reid_pairwise_distances_backward(emb, dist, ddist, batch, dim, 0, d_emb);
  if (st == REID_OK)
    st = reid_ce_loss(r->cpu, logits, labels, batch, classes, r->cfg->label_smoothing, ce, scale,
                      d_logits);
  free(dist);
  free(pos);
  return st;
}

reid_status train_backward(train_run *r, reid_net *net, const float *d_emb, const float *d_logits,
                           int batch) {
  reid_backend *be = r->be;
  size_t de = (size_t)batch * reid_net_feature_dim(net),
         dl = (size_t)batch * reid_net_config(net)->num_classes;
  REID_TRY(train_device_buffer(be, &r->d_emb_dev, &r->d_emb_cap, de));
  REID_TRY(be->ops->upload(be, r->d_emb_dev, d_emb, sizeof(float) * de));
  if (dl) {
    REID_TRY(train_device_buffer(be, &r->d_logits_dev, &r->d_logits_cap, dl));
    REID_TRY(be->ops->upload(be, r->d_logits_dev, d_logits, sizeof(float) * dl));
  }
  return reid_net_backward(net, r->d_emb_dev, dl ? r->d_logits_dev : NULL);
}

static int is_head(const char *name) {
  return !strncmp(name, "bottleneck.", 11) || !strncmp(name, "classifier.", 11) ||
         !strncmp(name, "fc.", 3);
}

reid_status train_copy_weights(reid_net *dst, reid_net *src, const char *what) {
  reid_backend *be = reid_net_backend(dst);
  reid_arch want = reid_net_config(dst)->arch, have = reid_net_config(src)->arch;
  if (want != have)
    return reid_fail(REID_EINVAL, "%s: a %s cannot initialise a %s", what, reid_arch_name(have),
                     reid_arch_name(want));
  float *params, *buffers;
  REID_TRY(reid_net_download(src, &params, &buffers));
  reid_status st = REID_OK;
  for (int i = 0; i < reid_net_tensor_count(dst) && st == REID_OK; i++) {
    const reid_tensor_view *t = reid_net_tensor(dst, i);
    const reid_tensor_view *s = reid_net_find(src, t->name);
    int same = s && s->ndim == t->ndim;
    for (int k = 0; same && k < t->ndim; k++) same = s->shape[k] == t->shape[k];
    if (!same) {
      if (!is_head(t->name))
        st = reid_fail(REID_EFORMAT, "%s: %s tensor '%s' for a %s", what,
                       s ? "a differently shaped" : "no", t->name,
                       reid_arch_name(reid_net_config(dst)->arch));
      continue;
    }
    const float *data = (s->trainable ? params : buffers) + s->offset;
    st = be->ops->upload(be, reid_net_tensor_data(dst, t), data, sizeof(float) * t->numel);
  }
  free(params);
  free(buffers);
  return st;
}

/* Loads a checkpoint's weights (the video model of a pair) into `net` by name. */
reid_status train_init_from(reid_net *net, const char *path) {
  st_file *f;
  REID_TRY(st_open(path, &f));
  reid_model_roles roles;
  reid_model_config cfg;
  reid_net *src = NULL;
  reid_status st = reid_checkpoint_roles(f, &roles);
  const char *prefix = roles.is_pair ? roles.video_prefix : NULL;
  if (st == REID_OK) st = reid_checkpoint_read_config(f, prefix, &cfg);
  if (st == REID_OK) st = reid_net_create(&cfg, reid_net_backend(net), &src);
  if (st == REID_OK) st = reid_checkpoint_load_weights(src, f, prefix);
  if (st == REID_OK) st = train_copy_weights(net, src, path);
  reid_net_destroy(src);
  st_close(f);
  return st;
}

/* ---- the loop ---- */

/* "M.safetensors" -> "M" + suffix */
static char *sibling_path(const char *output, const char *suffix) {
  size_t len = strlen(output);
  const char *ext = ".safetensors";
  if (len > strlen(ext) && !strcmp(output + len - strlen(ext), ext)) len -= strlen(ext);
  char *p = malloc(len + strlen(suffix) + 1);
  if (p) {
    memcpy(p, output, len);
    strcpy(p + len, suffix);
  }
  return p;
}

static void describe_common(const train_run *r, char *buf, size_t size) {
  const reid_train_config *c = r->cfg;
  const reid_model_config *m = reid_net_config(r->members[0].net);
  const reid_augment *a = &c->augment;
  snprintf(buf, size,
           "train=%d samples/%d ids;layout=%s;arch=%s;last_stride=%d;input=%dx%d;batch=%dx%dx%d;"
           "sampling=%d;augment=%d,%g,%d,%g,%g,%g,%g;lr=%g;weight_decay=%g;optimizer=%s;"
           "schedule=%s;label_smoothing=%g;seed=%llu;steps_per_epoch=%d;init=%s;",
           r->data->train.count, r->data->n_train_ids, reid_layout_name(r->data->layout),
           reid_arch_name(m->arch), m->last_stride, m->input_height, m->input_width, c->batch_p,
           c->batch_k, c->frames, (int)c->sampling, a->enabled, (double)a->flip_p, a->pad,
           (double)a->erase_p, (double)a->erase_area_min, (double)a->erase_area_max,
           (double)a->erase_aspect_min, (double)c->lr, (double)c->weight_decay,
           c->adamw ? "adamw" : "adam", c->schedule_text, (double)c->label_smoothing,
           (unsigned long long)c->seed, r->steps_per_epoch, c->init ? c->init : "");
}

static reid_status validate(const reid_train_config *c) {
  if (!c->data || !c->output) return reid_fail(REID_EINVAL, "training needs data and an output");
  if (c->epochs < 1 || c->save_every < 1 || c->steps_per_epoch < 0)
    return reid_fail(REID_EINVAL, "epochs %d, save_every %d, steps_per_epoch %d", c->epochs,
                     c->save_every, c->steps_per_epoch);
  if (c->batch_p < 2 || c->batch_k < 2 || c->frames < 1)
    return reid_fail(REID_EINVAL,
                     "batches need P >= 2 identities x K >= 2 samples x T >= 1 "
                     "frames (got %d x %d x %d)",
                     c->batch_p, c->batch_k, c->frames);
  if (c->student && (c->student_frames < 1 || c->student_frames > c->frames))
    return reid_fail(REID_EINVAL, "the student's %d frames must be 1..%d (the teacher's)",
                     c->student_frames, c->frames);
  if (c->student && !c->teacher) return reid_fail(REID_EINVAL, "a student run needs a teacher");
  char *copy = strdup(c->output);
  if (!copy) return reid_fail(REID_ENOMEM, "out of memory");
  int writable = access(dirname(copy), W_OK) == 0;
  free(copy);
  if (!writable)
    return reid_fail(REID_EIO, "%s: its folder does not exist or is not writable", c->output);
  return reid_lr_schedule_validate(&c->schedule);
}

/* "the last good checkpoint M (epoch 3) is kept" or "no checkpoint had been written yet" */
static void kept_text(char *buf, size_t size, int saved_epoch, const char *output) {
  if (saved_epoch > 0)
    snprintf(buf, size, "the last good checkpoint %s (epoch %d) is kept", output, saved_epoch);
  else
    snprintf(buf, size, "no checkpoint had been written yet");
}

/* The guard's message: what went non-finite, where, and which checkpoint is kept. */
static reid_status stop_nonfinite(const train_run *r, int step, float lr, const char *what,
                                  int saved_epoch, const char *output) {
  char kept[512];
  kept_text(kept, sizeof kept, saved_epoch, output);
  return reid_fail(REID_ENUMERIC,
                   "non-finite values at epoch %d step %d (iteration %ld, lr %g): %s; "
                   "training stopped, %s",
                   r->epoch + 1, step + 1, r->iter + 1, (double)lr, what, kept);
}

static reid_status checkpoint(train_run *r, const char *state_path, const char *config,
                              train_log *log, int saved_epoch) {
  const reid_train_config *c = r->cfg;
  for (int i = 0; i < r->n_members; i++) {
    int finite;
    const char *bad;
    REID_TRY(reid_net_all_finite(r->members[i].net, &finite, &bad));
    if (!finite) {
      char kept[512];
      kept_text(kept, sizeof kept, saved_epoch, c->output);
      return reid_fail(REID_ENUMERIC,
                       "the %s's tensor '%s' became non-finite in epoch %d; "
                       "training stopped, %s",
                       r->members[i].name, bad, r->epoch, kept);
    }
  }
  REID_TRY(train_state_save(r, state_path, config));
  REID_TRY(r->task->save_model(r, c->output));
  if (c->plot) {
    char title[128];
    snprintf(title, sizeof title, "reid-train %s: loss terms per step", r->task->command);
    REID_TRY(train_log_plot(log, c->plot, title));
  }
  return REID_OK;
}

reid_status train_run_epochs(train_run *r, const char *state_path, const char *config,
                             train_log *log) {
  const reid_train_config *c = r->cfg;
  int saved_epoch = c->resume ? r->epoch : 0;
  loss_terms terms = {0};
  while (r->epoch < c->epochs) {
    const float lr = reid_lr_at(&c->schedule, r->epoch);
    for (int step = 0; step < r->steps_per_epoch; step++) {
      double t0 = train_now();
      reid_batch b;
      memset(&terms, 0, sizeof terms);
      REID_TRY(reid_loader_next(r->loader, &b));
      if (b.batch < 2)
        return reid_fail(REID_EINVAL, "the training loader returned %d samples", b.batch);
      reid_status st = r->task->compute(r, &b, &terms);
      if (st == REID_ENUMERIC) { /* the networks' outputs are no longer finite */
        char what[512];
        snprintf(what, sizeof what, "%s", reid_last_error());
        if (log->tty) fputc('\n', log->progress);
        return stop_nonfinite(r, step, lr, what, saved_epoch, c->output);
      }
      REID_TRY(st);
      int bad = 0;
      while (bad < terms.count && isfinite(terms.value[bad])) bad++;
      if (bad < terms.count) {
        char what[128];
        snprintf(what, sizeof what, "loss term %s = %g", terms.name[bad], terms.value[bad]);
        r->iter++;
        train_log_step(log, r, step, lr, train_now() - t0, (long)b.batch * b.frames, &terms);
        r->iter--;
        if (log->tty) fputc('\n', log->progress);
        return stop_nonfinite(r, step, lr, what, saved_epoch, c->output);
      }
      REID_TRY(r->task->apply(r, lr));
      r->iter++;
      REID_TRY(
          train_log_step(log, r, step, lr, train_now() - t0, (long)b.batch * b.frames, &terms));
    }
    r->epoch++;
    train_log_epoch_end(log, r, &terms);
    if (r->epoch % c->save_every == 0 || r->epoch == c->epochs) {
      REID_TRY(checkpoint(r, state_path, config, log, saved_epoch));
      saved_epoch = r->epoch;
    }
  }
  return REID_OK;
}

reid_status reid_train(const reid_train_config *c) {
  REID_TRY(validate(c));
  train_run r = {.cfg = c, .task = c->student ? &train_student_task : &train_teacher_task};
  reid_rng_seed(&r.rng, c->seed ^ 0x7261696e6572ull); /* independent of the loader's stream */
  if (c->threads > 0) reid_set_num_threads(c->threads);
  char *state_path = sibling_path(c->output, ".state.safetensors");
  char *log_path = sibling_path(c->output, ".log.jsonl");
  char config[2048] = "";
  train_log log = {0};
  reid_status st = state_path && log_path ? REID_OK : reid_fail(REID_ENOMEM, "out of memory");
  if (st == REID_OK) st = reid_backend_create(c->device, c->gpu_id, &r.be);
#if HAVE_CUDA
  if (st == REID_OK && c->tf32 && r.be->device == REID_DEVICE_CUDA)
    st = reid_cuda_set_tf32(r.be, 1);
#endif
  if (st == REID_OK && r.be->device == REID_DEVICE_CPU)
    r.cpu = r.be;
  else if (st == REID_OK)
    st = reid_backend_create("cpu", 0, &r.cpu), r.own_cpu = 1;
  if (st == REID_OK) st = reid_dataset_load(c->data, c->layout, &r.data);
  if (st == REID_OK && (r.data->train.count < 2 || r.data->n_train_ids < 2))
    st = reid_fail(REID_EINVAL,
                   "%s: the training split has %d samples of %d identities; "
                   "triplets need at least 2 identities",
                   c->data, r.data->train.count, r.data->n_train_ids);
  if (st == REID_OK) st = r.task->setup(&r);
  if (st == REID_OK) {
    const reid_model_config *m = reid_net_config(r.members[0].net);
    reid_loader_config lc = {.batch_p = c->batch_p,
                             .batch_k = c->batch_k,
                             .frames = c->frames,
                             .sampling = c->sampling,
                             .height = m->input_height,
                             .width = m->input_width,
                             .augment = c->augment,
                             .threads = c->workers > 0 ? c->workers : 1,
                             .prefetch = 2,
                             .seed = c->seed};
    memcpy(lc.mean, m->mean, sizeof lc.mean);
    memcpy(lc.std, m->std, sizeof lc.std);
    st = reid_loader_train(r.data, &lc, &r.loader);
  }
  if (st == REID_OK) {
    r.steps_per_epoch =
        c->steps_per_epoch > 0 ? c->steps_per_epoch : reid_loader_batches_per_epoch(r.loader);
    if (r.steps_per_epoch < 1) st = reid_fail(REID_EINVAL, "the loader has no batches per epoch");
  }
  if (st == REID_OK) {
    describe_common(&r, config, sizeof config);
    size_t used = strlen(config);
    if (r.task->describe) r.task->describe(&r, config + used, sizeof config - used);
  }
  if (st == REID_OK && c->resume) st = train_state_load(&r, state_path, config);
  if (st == REID_OK)
    st = train_log_open(&log, log_path, c->resume ? r.iter : -1, c->progress, r.task->command,
                        r.steps_per_epoch);
  if (st == REID_OK && c->progress && r.epoch >= c->epochs) {
    fprintf(c->progress, "reid-train %s: the saved run already completed %d of %d epochs\n",
            r.task->command, r.epoch, c->epochs);
  } else if (st == REID_OK && c->progress) {
    const reid_model_config *m = reid_net_config(r.members[0].net);
    fprintf(c->progress,
            "reid-train %s: %s %dx%d on %s, %d training samples of %d ids, %d steps of "
            "%d x %d x %d frames per epoch, epochs %d..%d\n",
            r.task->command, reid_arch_name(m->arch), m->input_height, m->input_width, r.be->name,
            r.data->train.count, r.data->n_train_ids, r.steps_per_epoch, c->batch_p, c->batch_k,
            c->frames, r.epoch + 1, c->epochs);
    if (r.data->skipped)
      fprintf(c->progress, "reid-train %s: %d unreadable dataset entries were skipped\n",
              r.task->command, r.data->skipped);
  }
  if (st == REID_OK) st = train_run_epochs(&r, state_path, config, &log);
  train_log_close(&log);
  if (r.task->destroy) r.task->destroy(&r);
  for (int i = 0; i < r.n_members; i++) {
    reid_optimizer_free(&r.members[i].opt);
    reid_net_destroy(r.members[i].net);
  }
  reid_loader_destroy(r.loader);
  reid_dataset_free(r.data);
  if (r.be) {
    if (r.x_dev) r.be->ops->free(r.be, r.x_dev);
    if (r.d_emb_dev) r.be->ops->free(r.be, r.d_emb_dev);
    if (r.d_logits_dev) r.be->ops->free(r.be, r.d_logits_dev);
  }
  if (r.own_cpu) reid_backend_destroy(r.cpu);
  reid_backend_destroy(r.be);
  free(state_path);
  free(log_path);
  return st;
}
