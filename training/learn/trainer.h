/* The training loops of `reid-train teacher` and `reid-train student`.
 *
 * Teacher (video-to-video, VKD's recipe): a ResNet with BNNeck and one
 * identity per training id; each sample is T frames; the loss is
 *   batch-hard soft-margin triplet on the pooled (pre-BN) embedding
 *   + cross-entropy (optional label smoothing) on the logits averaged over frames.
 *
 * Student (MDKT, papers.md §1): the same identities and tracklets as the
 * teacher; the teacher sees the sample's T frames, the student M of them
 * (a random subset, in temporal order, drawn per sample). Student loss
 *   w_tr (triplet + CE on its own distances/logits)
 *   + w_mkd tau1^2 KL(y_t || y_s) + w_pd PD(D_t, D_s) + w_tcl sum KL(P_t || P_s)
 * with TCL's triplets mined on the teacher's distances. Teacher modes:
 *   frozen       the teacher is not updated and runs in eval mode (BN running statistics);
 *   independent  the teacher keeps training on its own TR loss, with no term from the student;
 *   mutual       the teacher trains on TR + w_mkd tau1^2 KL(y_s || y_t) + w_pd PD
 *                + w_tcl sum KL(P_s || P_t) (the s2t directions of the selected losses).
 *
 * Every run: Adam (or AdamW) on the flat parameter buffer, a learning-rate
 * schedule in epochs, a JSON-lines log of every loss term per step, progress
 * on a terminal, checkpoints (model + resumable state) written atomically every
 * save_every epochs and at the end, a guard that stops at the first non-finite
 * loss and keeps the last good checkpoint, and bit-identical resumption on the
 * CPU. Files, for output = M.safetensors:
 *   M.safetensors         the model (teacher: one network; student: an MDKT pair)
 *   M.state.safetensors   the resumable state (networks, Adam moments, counters, RNGs)
 *   M.log.jsonl           one JSON object per step: every loss term, lr, seconds and
 *                         images_per_s = the frames the step loaded (P K T) per second of
 *                         the whole step, data loading included */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include "dataset.h"
#include "loader.h"
#include "resnet.h"
#include "schedule.h"

typedef enum reid_teacher_mode {
  REID_TEACHER_FROZEN,
  REID_TEACHER_INDEPENDENT,
  REID_TEACHER_MUTUAL,
} reid_teacher_mode;

reid_status reid_teacher_mode_parse(const char *name, reid_teacher_mode *out);
const char *reid_teacher_mode_name(reid_teacher_mode m);

enum { REID_LOSS_TR = 1, REID_LOSS_MKD = 2, REID_LOSS_PD = 4, REID_LOSS_TCL = 8 };
/* "tr,mkd,pd,tcl" (any non-empty subset, any order) -> bit set */
reid_status reid_losses_parse(const char *text, unsigned *out);
void reid_losses_format(unsigned losses, char *buf, size_t size);

typedef struct reid_train_config {
  int student; /* 0: teacher run, 1: student run */

  /* data and outputs */
  const char *data;
  reid_layout layout;
  const char *output; /* model path; the state and the log sit next to it */
  const char *plot;   /* SVG or PNG of the loss curves (updated at each checkpoint), or NULL */
  FILE *progress;     /* progress lines (stderr), NULL for none */

  /* device */
  const char *device; /* cpu | cuda | auto */
  int gpu_id, threads, workers;
  int tf32; /* CUDA: TF32 tensor cores in convolutions and matrix products */

  /* the network trained from scratch (teacher) or the student's */
  reid_arch arch;
  int arch_set; /* student: 0 = the teacher's architecture */
  int last_stride, height, width;
  const char *init; /* teacher: backbone weights to start from, or NULL */

  /* optimisation */
  int epochs, steps_per_epoch, save_every, resume;
  int batch_p, batch_k, frames;
  reid_frame_sampling sampling;
  reid_augment augment;
  float lr, weight_decay, label_smoothing;
  int adamw;
  reid_lr_schedule schedule;
  char schedule_text[128];
  uint64_t seed;

  /* student */
  const char *teacher;      /* checkpoint of the trained teacher */
  const char *student_init; /* "teacher", "scratch" or a checkpoint path */
  int student_frames;       /* M */
  unsigned losses;
  reid_teacher_mode mode;
  float tau1, tau2, w_tr, w_mkd, w_pd, w_tcl;
} reid_train_config;

/* VKD's defaults (papers.md §1) for a teacher (student = 0) or student run. */
void reid_train_config_default(reid_train_config *c, int student);

/* Runs the whole training. On a non-finite loss: REID_ENUMERIC with a message
 * that names the step, the term and the checkpoint kept. */
reid_status reid_train(const reid_train_config *c);
