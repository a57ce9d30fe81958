/* Shared by the benchmark programs: a monotonic clock, medians, the timing
 * loop (bench_measure) with its engine inference step, and one
 * classification training step (forward, cross-entropy, backward, Adam). */
#pragma once

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <stdio.h>
#include <unistd.h>

#include "backend.h"
#include "checkpoint.h"
#include "engine.h"
#include "resnet.h"

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The clock of bench_measure: wall time, or with REID_BENCH_CLOCK=cpu the process's CPU time
 * (all its threads), so that rates are items per CPU-second: on a machine shared with other
 * processes, what a program does with the CPU it gets, not the share the scheduler gives it */
static inline double bench_clock(void) {
  static int cpu = -1;
  if (cpu < 0) {
    const char *e = getenv("REID_BENCH_CLOCK");
    cpu = e && strcmp(e, "cpu") == 0;
  }
  struct timespec ts;
  clock_gettime(cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef reid_status (*bench_fn)(void *ctx);

/* items per second (of bench_clock): median over reps, each rep at least
 * min_time / reps seconds, after two warm-up calls; -1 when fn fails */
static inline double bench_measure(bench_fn fn, void *ctx, int items, double min_time, int reps) {
  for (int i = 0; i < 2; i++)
    if (fn(ctx) != REID_OK) return -1;
  double *rates = calloc(reps, sizeof *rates);
  if (!rates) return -1;
  for (int r = 0; r < reps; r++) {
    int iters = 0;
    double t0 = bench_clock(), t;
    do {
      if (fn(ctx) != REID_OK) {
        free(rates);
        return -1;
      }
      iters++;
      t = bench_clock();
    } while (t - t0 < min_time / reps);
    rates[r] = items * iters / (t - t0);
  }
  qsort(rates, reps, sizeof *rates, bench_cmp_double);
  double median = rates[reps / 2];
  free(rates);
  return median;
}

/* One engine call on n crops (for bench_measure) */
typedef struct bench_infer {
  reid_engine *engine;
  const float *x;
  float *out;
  int n;
} bench_infer;

static inline reid_status bench_infer_once(void *p) {
  bench_infer *c = p;
  return reid_engine_embed(c->engine, c->x, c->n, c->out);
}

/* Backend memory for one step: x [batch, 3, H, W], labels [batch], the
 * cross-entropy buffers and the Adam moments of the flat parameter buffer. */
typedef struct bench_train_step {
  reid_backend *be;
  reid_net *net;
  float *x, *loss, *probs, *dloss, *dlogits, *m, *v;
  int32_t *labels;
  int batch, classes, step;
  float lr;
} bench_train_step;

static inline reid_status bench_train_once(void *p) {
  bench_train_step *c = p;
  const reid_backend_ops *ops = c->be->ops;
  REID_TRY(reid_net_forward(c->net, c->x, c->batch, 1, 1));
  REID_TRY(ops->softmax_xent_forward(c->be, c->batch, c->classes, reid_net_logits(c->net),
                                     c->labels, 0.0f, c->loss, c->probs));
  REID_TRY(ops->softmax_xent_backward(c->be, c->batch, c->classes, c->probs, c->labels, 0.0f,
                                      c->dloss, c->dlogits));
  REID_TRY(reid_net_backward(c->net, NULL, c->dlogits));
  size_t n;
  float *params = reid_net_params(c->net, &n);
  return ops->adam_update(c->be, n, params, reid_net_grads(c->net, NULL), c->m, c->v, c->lr, 0.9f,
                          0.999f, 1e-8f, 0.0f, 0, ++c->step);
}

/* Writes a randomly initialised ResNet `arch_name` (last stride 1, 256x128)
 * to path unless the file exists (speed does not depend on the weights). */
static inline int bench_make_model(const char *arch_name, const char *path) {
  if (access(path, R_OK) == 0) return 0;
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  reid_backend *be = NULL;
  reid_net *net = NULL;
  reid_status st = reid_arch_parse(arch_name, &cfg.arch);
  if (st == REID_OK) st = reid_backend_create("cpu", 0, &be);
  if (st == REID_OK) st = reid_net_create(&cfg, be, &net);
  if (st == REID_OK) st = reid_net_init_weights(net, 1);
  if (st == REID_OK) st = reid_checkpoint_save(net, path, ST_F32);
  reid_net_destroy(net);
  reid_backend_destroy(be);
  if (st != REID_OK) fprintf(stderr, "bench: %s\n", reid_last_error());
  return st == REID_OK ? 0 : -1;
}
