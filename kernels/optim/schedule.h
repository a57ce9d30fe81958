/* Learning-rate schedules: pure host functions of a step counter t >= 0.
 * Whether t counts iterations or epochs is up to the caller; every length
 * below (milestones, warm-up, total) is in the same unit.
 *
 * A schedule is a main curve times an optional linear warm-up factor:
 *   lr(t) = main(t) * warmup(t)
 *
 * main(t), with lr0 the base learning rate:
 *   constant   lr0
 *   multistep  lr0 * gamma^(number of milestones <= t)   (torch MultiStepLR)
 *   exp-tail   lr0                                       for t <  T/2
 *              lr0 * (lr_end / lr0)^((t - T/2) / (T - T/2))  for T/2 <= t <= T
 *              lr_end                                    for t >  T
 *              where T/2 is integer division (DwoPP's constant half, then
 *              exponential decay to lr_end at the last step).
 *
 * warmup(t) over N steps from factor f (fast-reid's linear warm-up):
 *   f + (1 - f) t / N   for t < N,   1 for t >= N
 * so the rate rises linearly from f * main(0) at t = 0 to main(N) at t = N.
 *
 * Text form (no whitespace), parsed by reid_lr_schedule_parse:
 *   schedule := term { '+' term }
 *   term     := "constant"
 *             | "multistep:" INT { ',' INT } ':' FLOAT   milestones (strictly
 *                                                        increasing, >= 0), gamma > 0
 *             | "exp-tail:" INT ':' FLOAT                total T >= 1, lr_end > 0
 *             | "warmup:" INT ':' FLOAT                  N >= 0 steps, factor f in [0, 1]
 *   At most one warm-up term and at most one main term (constant when none).
 * Examples:
 *   "multistep:40,70:0.1"
 *   "warmup:10:0.01+multistep:40,70:0.1"
 *   "exp-tail:600:1e-6"
 *   "warmup:2000:0.1+exp-tail:120000:1e-6" */
#pragma once

#include "status.h"

typedef enum reid_lr_kind {
  REID_LR_CONSTANT = 0,
  REID_LR_MULTISTEP = 1,
  REID_LR_EXP_TAIL = 2,
} reid_lr_kind;

#define REID_LR_MAX_MILESTONES 32

typedef struct reid_lr_schedule {
  reid_lr_kind kind;
  float base_lr; /* lr0 */

  /* REID_LR_MULTISTEP */
  int n_milestones;
  int milestones[REID_LR_MAX_MILESTONES];
  float gamma;

  /* REID_LR_EXP_TAIL */
  int total;      /* T */
  float final_lr; /* lr_end */

  /* linear warm-up, composable with every kind; warmup_steps = 0 disables it */
  int warmup_steps;
  float warmup_factor;
} reid_lr_schedule;

/* A constant schedule at base_lr without warm-up. */
void reid_lr_schedule_constant(reid_lr_schedule *s, float base_lr);

/* Parses `text` (grammar above) with base learning rate base_lr into *out.
 * On REID_EINVAL *out is left unchanged and reid_last_error() names the
 * offending term. */
reid_status reid_lr_schedule_parse(const char *text, float base_lr, reid_lr_schedule *out);

/* Checks the parameters of a schedule built by hand (parse already does). */
reid_status reid_lr_schedule_validate(const reid_lr_schedule *s);

/* lr(t) for a valid schedule; t < 0 counts as 0. */
float reid_lr_at(const reid_lr_schedule *s, int step);
