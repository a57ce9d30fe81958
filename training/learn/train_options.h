/* The command-line options that the trainers (`reid-train teacher`, `student` and
 * `continual`) share: one getopt entry and one parser each. A command lists
 * TRAIN_OPTIONS in its option table, points a train_options at the fields of its own
 * configuration, and hands every code in [TRAIN_OPT_FIRST, TRAIN_OPT_LAST) to
 * train_option_parse. Each command's --help documents its own defaults. */
#pragma once

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include "dataset.h"
#include "resnet.h"

enum {
  TRAIN_OPT_FIRST = 512, /* above the commands' own codes (256 and up) */
  TRAIN_OPT_OUTPUT = TRAIN_OPT_FIRST,
  TRAIN_OPT_LAYOUT,
  TRAIN_OPT_SAVE_EVERY,
  TRAIN_OPT_RESUME,
  TRAIN_OPT_QUIET,
  TRAIN_OPT_DEVICE,
  TRAIN_OPT_GPU_ID,
  TRAIN_OPT_TF32,
  TRAIN_OPT_THREADS,
  TRAIN_OPT_WORKERS,
  TRAIN_OPT_ARCH,
  TRAIN_OPT_LAST_STRIDE,
  TRAIN_OPT_INPUT_SIZE,
  TRAIN_OPT_INIT,
  TRAIN_OPT_STEPS,
  TRAIN_OPT_EPOCHS,
  TRAIN_OPT_LR,
  TRAIN_OPT_WD,
  TRAIN_OPT_FLIP_P,
  TRAIN_OPT_SEED,
  TRAIN_OPT_LAST,
};

#define TRAIN_OPTIONS                                                                              \
  {"output", required_argument, 0, TRAIN_OPT_OUTPUT},                                              \
      {"layout", required_argument, 0, TRAIN_OPT_LAYOUT},                                          \
      {"save-every", required_argument, 0, TRAIN_OPT_SAVE_EVERY},                                  \
      {"resume", no_argument, 0, TRAIN_OPT_RESUME}, {"quiet", no_argument, 0, TRAIN_OPT_QUIET},    \
      {"device", required_argument, 0, TRAIN_OPT_DEVICE},                                          \
      {"gpu-id", required_argument, 0, TRAIN_OPT_GPU_ID},                                          \
      {"tf32", no_argument, 0, TRAIN_OPT_TF32},                                                    \
      {"threads", required_argument, 0, TRAIN_OPT_THREADS},                                        \
      {"workers", required_argument, 0, TRAIN_OPT_WORKERS},                                        \
      {"arch", required_argument, 0, TRAIN_OPT_ARCH},                                              \
      {"last-stride", required_argument, 0, TRAIN_OPT_LAST_STRIDE},                                \
      {"input-size", required_argument, 0, TRAIN_OPT_INPUT_SIZE},                                  \
      {"init", required_argument, 0, TRAIN_OPT_INIT},                                              \
      {"steps-per-epoch", required_argument, 0, TRAIN_OPT_STEPS},                                  \
      {"epochs", required_argument, 0, TRAIN_OPT_EPOCHS},                                          \
      {"lr", required_argument, 0, TRAIN_OPT_LR},                                                  \
      {"weight-decay", required_argument, 0, TRAIN_OPT_WD},                                        \
      {"flip-p", required_argument, 0, TRAIN_OPT_FLIP_P}, {                                        \
    "seed", required_argument, 0, TRAIN_OPT_SEED                                                   \
  }

/* Where each shared option goes; arch_set may be NULL. */
typedef struct train_options {
  const char **output;
  reid_layout *layout;
  int *save_every, *resume;
  FILE **progress; /* --quiet: NULL */
  const char **device;
  int *gpu_id, *tf32, *threads, *workers;
  reid_arch *arch;
  int *arch_set; /* 1 once --arch is given */
  int *last_stride, *height, *width;
  const char **init;
  int *steps_per_epoch, *epochs;
  float *lr, *weight_decay, *flip_p;
  uint64_t *seed;
} train_options;

/* The fields a trainer config names alike, for a train_options initialiser:
 *   train_options o = {TRAIN_OPTIONS_OF(c), .layout = ..., .flip_p = ...}; */
#define TRAIN_OPTIONS_OF(c)                                                                        \
  .output = &(c)->output, .save_every = &(c)->save_every, .resume = &(c)->resume,                  \
  .progress = &(c)->progress, .device = &(c)->device, .gpu_id = &(c)->gpu_id, .tf32 = &(c)->tf32,  \
  .threads = &(c)->threads, .workers = &(c)->workers, .arch = &(c)->arch,                          \
  .last_stride = &(c)->last_stride, .height = &(c)->height, .width = &(c)->width,                  \
  .init = &(c)->init, .steps_per_epoch = &(c)->steps_per_epoch, .epochs = &(c)->epochs,            \
  .lr = &(c)->lr, .weight_decay = &(c)->weight_decay, .seed = &(c)->seed

/* Parses option `code` (a TRAIN_OPT_*) with its argument into *o; 0 on success, else the
 * usage error is printed. */
int train_option_parse(const char *cmd, int code, const char *arg, const train_options *o);
