/* Shared set-up of the network tests. */
#pragma once

#include "resnet.h"
#include "test_util.h"

/* Gives every batch norm non-trivial parameters and statistics (host memory,
 * CPU backend), so that every path through the network carries signal:
 * weight U(0.5, 1.5), bias U(-shift, shift), running mean U(-shift, shift),
 * running var U(0.5, 1.5). Frozen (non-trainable) biases stay as they are. */
static inline void randomise_batchnorm(reid_net *net, test_rng *rng, float shift) {
  for (int i = 0; i < reid_net_tensor_count(net); i++) {
    const reid_tensor_view *t = reid_net_tensor(net, i);
    float *v = reid_net_tensor_data(net, t);
    if (strstr(t->name, "running_var"))
      test_fill_uniform(rng, v, t->numel, 0.5f, 1.5f);
    else if (strstr(t->name, "running_mean"))
      test_fill_uniform(rng, v, t->numel, -shift, shift);
    else if (t->ndim == 1 && strstr(t->name, ".weight"))
      test_fill_uniform(rng, v, t->numel, 0.5f, 1.5f);
    else if (t->ndim == 1 && t->trainable && strstr(t->name, ".bias"))
      test_fill_uniform(rng, v, t->numel, -shift, shift);
  }
}
