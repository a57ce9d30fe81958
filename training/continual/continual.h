/* `reid-train continual`: lifelong re-ID with continual meta metric learning and
 * distillation without positive pairs (DwoPP, papers.md §2), its baselines, and the
 * evaluation after every task.
 *
 * Per task t of the stream (task_stream.h): a fresh Adam; episodes of C identities x
 * (S support + Q query) images from the task's identities (the loader's P x K sampler:
 * each identity's images without replacement, repeated when it has fewer); the loss
 *   L = DMML(new) + w_norm mean ||f||^2 + lambda KD(old -> new)
 * where `old` is a frozen copy of the model after task t - 1 in eval mode, fed the same
 * batch (dmml.h). Methods:
 *   dwopp  KD on the negatives only (32 x 31), T = 1
 *   dwpp   KD with the positive pairs (32 x 32), T = 10
 *   ft     lambda = 0 (fine-tuning)
 *   joint  one task of all the tasks' identities (the upper bound)
 * The model: ResNet, global average pooling after the last ReLU, no BNNeck and no
 * classifier (the embedding is the pooled feature).
 *
 * Files, for output = M.safetensors:
 *   M.taskNN.safetensors   the model after task NN (metadata task, method, datasets)
 *   M.safetensors          the final model
 *   M.state.safetensors    the resumable state (within a task and at task boundaries)
 *   M.taskNN.log.jsonl     the loss terms of every step of task NN
 *   M.results.csv / .json  the results matrix (task trained x test set, mAP and R1), the
 *                          LReID summary and the forgetting of each set
 *   M.map.svg / .png       mAP of each test set after each task */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include "eval.h"
#include "resnet.h"
#include "task_stream.h"

typedef enum reid_cl_method {
  REID_CL_DWOPP,
  REID_CL_DWPP,
  REID_CL_FT,
  REID_CL_JOINT,
} reid_cl_method;

reid_status reid_cl_method_parse(const char *name, reid_cl_method *out);
const char *reid_cl_method_name(reid_cl_method m);

typedef struct reid_continual_config {
  task_stream_config stream;
  reid_cl_method method;
  const char *output;
  FILE *progress;

  const char *device;
  int gpu_id, threads, workers, tf32;

  reid_arch arch;
  int last_stride, height, width;
  const char *init; /* a checkpoint to start from (single network or MDKT pair), or NULL */

  int episode_ids, support, query; /* C, S, Q: 32, 5, 1 */
  float margin, norm_weight;       /* 0.4, 5e-4 */
  float kd_weight, temperature;    /* lambda 1; T: 1 (dwopp), 10 (dwpp); < 0 = the method's */
  float clamp;                     /* 1e-4 */
  /* collected streams: 1 (default) = a tracklet's DMML negatives are the tracklets of its own
   * camera and those seen with it in one frame (known distinct), and episodes gather the
   * tracklets seen together; 0 = every other tracklet, episodes at random (labelled data) */
  int known_negatives;

  float lr, weight_decay, lr_end;   /* 2e-4, 1e-4, 1e-6 */
  int epochs, steps_per_epoch;      /* per task: 600, 0 = the loader's epoch */
  float flip_p;                     /* 0.5 */
  float erase_p_start, erase_p_end; /* 0.3 -> 0.7 */
  float erase_area_start, erase_area_end, erase_area_min; /* 0.1 -> 0.34, 0.02 */
  float erase_aspect_min;                                 /* 0.3 */
  int save_every, resume;
  int stop_task, stop_epoch; /* stop (state kept) once task stop_task has trained stop_epoch
                                epochs (0: all of them); stop_task < 0: run to the end */
  uint64_t seed;
  int eval_batch;
} reid_continual_config;

void reid_continual_config_default(reid_continual_config *c);

/* The temperature the method uses (c->temperature when >= 0). */
float reid_continual_temperature(const reid_continual_config *c);

reid_status reid_continual(const reid_continual_config *c);
