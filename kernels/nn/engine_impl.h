/* Internal: the engine object and the implementations behind it. */
#pragma once

#include "engine.h"

struct reid_engine {
  reid_net *net; /* borrowed: outlives the engine */
  reid_precision precision;
  int max_batch, dim;
  char description[96];
  reid_status (*embed)(reid_engine *e, const float *x, int n, float *out);
  void (*destroy)(reid_engine *e);
  /* optional: zero-copy input (reid_engine_input / reid_engine_run) */
  reid_status (*input)(reid_engine *e, int n, void **input, reid_tensor_format *fmt);
  reid_status (*run)(reid_engine *e, int n, float *out);
  void *device_input; /* graph engine on a device backend */
  void *impl;         /* implementation state */
};

#if HAVE_DNNL
reid_status engine_dnnl_init(reid_engine *e);
#endif
reid_status engine_cuda_init(reid_engine *e); /* kernels/cuda, HAVE_CUDA builds */
