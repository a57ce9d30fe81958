/* Internals shared by the training loop (trainer.c), its two tasks
 * (train_teacher.c, train_student.c), the log (train_log.c) and the
 * resumable state (train_state.c). Not part of the library's interface. */
#pragma once

#include "optimizer.h"
#include "rng.h"
#include "trainer.h"

#define TRAIN_MAX_TERMS 16

/* The loss terms of one step; term 0 is the total that is optimised. */
typedef struct loss_terms {
  int count;
  const char *name[TRAIN_MAX_TERMS];
  double value[TRAIN_MAX_TERMS];
} loss_terms;

static inline void terms_add(loss_terms *t, const char *name, double value) {
  if (t->count < TRAIN_MAX_TERMS) {
    t->name[t->count] = name;
    t->value[t->count++] = value;
  }
}

/* A network of the run: its name in files ("teacher", "student"), whether the
 * optimiser updates it, and its Adam state. */
typedef struct train_member {
  const char *name;
  reid_net *net;
  int trained;
  reid_optimizer opt;
} train_member;

typedef struct train_run train_run;

typedef struct train_task {
  const char *command; /* "teacher" | "student" */
  /* creates the members (networks) once the dataset is loaded */
  reid_status (*setup)(train_run *r);
  /* forward passes and losses of a batch; fills terms and the host gradients */
  reid_status (*compute)(train_run *r, const reid_batch *b, loss_terms *terms);
  /* backward passes and optimiser updates with the gradients of compute() */
  reid_status (*apply)(train_run *r, float lr);
  /* writes the model checkpoint */
  reid_status (*save_model)(train_run *r, const char *path);
  /* task-specific settings that a resumed run must share ("key=value;...") */
  void (*describe)(const train_run *r, char *buf, size_t size);
  void (*destroy)(train_run *r);
} train_task;

struct train_run {
  const reid_train_config *cfg;
  const train_task *task;
  reid_backend *be;  /* the device */
  reid_backend *cpu; /* host backend for the losses (== be on the CPU) */
  int own_cpu;
  reid_dataset *data;
  reid_loader *loader;
  int steps_per_epoch;
  train_member members[2];
  int n_members;
  reid_rng rng; /* the trainer's own draws (the student's frame subsets) */
  float *x_dev, *d_emb_dev, *d_logits_dev; /* device scratch */
  size_t x_cap, d_emb_cap, d_logits_cap;
  int epoch; /* completed epochs */
  long iter; /* completed steps */
  void *task_state;
  char *state_extra; /* the caller's text saved in the state as metadata "extra" (or NULL);
                        train_state_load replaces it with the saved one (free()) */
};

extern const train_task train_teacher_task, train_student_task;

/* Device buffer of at least `floats` floats, grown as needed. */
reid_status train_device_buffer(reid_backend *be, float **buf, size_t *cap, size_t floats);

/* Embedding and logits of the last forward, downloaded to host arrays;
 * REID_ENUMERIC when a value is not finite (`name` says whose). */
reid_status train_download_outputs(reid_net *net, const char *name, int batch, float *emb,
                                   float *logits);

/* Triplet + CE on a network's own embedding and logits (the TR loss):
 * adds scale * gradients into d_emb / d_logits; returns the two terms. */
reid_status train_tr_loss(train_run *r, const float *emb, const float *logits,
                          const int32_t *labels, int batch, int dim, int classes, float scale,
                          float *d_emb, float *d_logits, double *triplet, double *ce);

/* Uploads host images [n, 3, H, W] into the run's device scratch; returns it. */
reid_status train_upload_images(train_run *r, const float *images, int n, const float **x_dev);

/* Uploads host gradients and runs the network's backward. */
reid_status train_backward(train_run *r, reid_net *net, const float *d_emb, const float *d_logits,
                           int batch);

/* Copies every tensor of dst that src holds with the same shape; tensors of
 * the backbone (not bottleneck.* / classifier.* / fc.*) must all be there. */
reid_status train_copy_weights(reid_net *dst, reid_net *src, const char *what);

/* Loads a checkpoint's weights (the video model of a pair) into `net` by name
 * (train_copy_weights: the backbone must all be there). */
reid_status train_init_from(reid_net *net, const char *path);

/* ---- the step log (train_log.c) ---- */

typedef struct train_series {
  char name[32];
  double *x, *y;
  size_t n, cap;
} train_series;

typedef struct train_log {
  char *path;
  FILE *file;
  FILE *progress;
  int tty;
  const char *command;
  int steps_per_epoch;
  train_series series[TRAIN_MAX_TERMS];
  int n_series;
  double started;    /* monotonic seconds when this process began training */
  long steps_timed;  /* steps this process ran */
  double epoch_time; /* seconds in the current epoch */
  long epoch_images;
  double epoch_sum[TRAIN_MAX_TERMS];
  int epoch_steps;
} train_log;

double train_now(void);
/* Opens (resume_iter < 0: truncates) the log; on resume keeps the lines of
 * the first resume_iter steps (dropping any logged after the saved state)
 * and reloads them for the plot. */
reid_status train_log_open(train_log *l, const char *path, long resume_iter, FILE *progress,
                           const char *command, int steps_per_epoch);
reid_status train_log_step(train_log *l, const train_run *r, int step_in_epoch, float lr,
                           double seconds, long images, const loss_terms *t);
/* The epoch's summary line (mean of each term named in `names`). */
void train_log_epoch_end(train_log *l, const train_run *r, const loss_terms *names);
reid_status train_log_plot(const train_log *l, const char *path, const char *title);
void train_log_close(train_log *l);

/* ---- the resumable state (train_state.c) ---- */

reid_status train_state_save(train_run *r, const char *path, const char *config);
reid_status train_state_load(train_run *r, const char *path, const char *config);

/* ---- the loop (trainer.c) ---- */

/* The epochs of r->cfg (r->epoch .. cfg->epochs): steps of load -> compute -> guard ->
 * apply -> log, a checkpoint (state + model + plot) every save_every epochs and at the end. */
reid_status train_run_epochs(train_run *r, const char *state_path, const char *config,
                             train_log *log);
