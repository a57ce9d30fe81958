/* Adam / AdamW state of one network: first and second moments mirroring the
 * flat parameter buffer (backend memory) and the step count; saved into and
 * restored from a safetensors file as "adam.NAME.m" and "adam.NAME.v". */
#pragma once

#include "resnet.h"
#include "safetensors.h"

typedef struct reid_optimizer {
  reid_net *net;
  float *m, *v; /* [n] backend memory */
  size_t n;
  int step; /* updates done */
  float weight_decay;
  int decoupled; /* 0 Adam (coupled L2, as VKD), 1 AdamW */
} reid_optimizer;

reid_status reid_optimizer_init(reid_optimizer *o, reid_net *net, float weight_decay,
                                int decoupled);
/* One update with the gradients in reid_net_grads(net): beta 0.9/0.999, eps 1e-8. */
reid_status reid_optimizer_step(reid_optimizer *o, float lr);
void reid_optimizer_free(reid_optimizer *o);

reid_status reid_optimizer_add(st_writer *w, reid_optimizer *o, const char *name);
reid_status reid_optimizer_load(reid_optimizer *o, const st_file *f, const char *name);

/* 1 if every parameter and buffer of the network is finite (downloads them). */
reid_status reid_net_all_finite(reid_net *net, int *finite, const char **first_bad);
