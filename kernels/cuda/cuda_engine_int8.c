/* int8 for the CUDA engine: the codes and steps of the activations, the
 * same as the CPU engine's (kernels/nn/engine_dnnl_int8.c), so that both run
 * one quantized model alike.
 *
 * A graph activation a with calibrated range r[a] (|x| <= r) is stored as
 * int8 codes of step r / 255 with zero point 128 when every op writing its
 * tensor ends in ReLU (the CPU engine's u8: code q in 0..255 is stored as
 * q - 128), else with step r / 127 and zero point 0 (s8). As on the CPU, the
 * output of a convolution with a residual sum belongs to the tensor of its
 * shortcut (the CPU writes it in place), max pooling keeps its input's step,
 * and the global average pooling writes float.
 *
 * cuDNN's legacy int8 convolution (INT8_EXT_CONFIG: INT8 NHWC x and w, INT32
 * compute, FLOAT y) has only a scalar alpha, so the per-channel scales, the
 * bias, the shortcut, ReLU and the rounding to the output's codes run in one
 * epilogue kernel (engine_i8_epilogue). cuDNN pads with code 0; for an input
 * with zero point 128 the epilogue adds 128 times the weights of the taps
 * inside the image, which makes the padding real zeros. */
#include <stdlib.h>

#include "cuda_engine.h"
#include "net_graph.h"

static float range_step(const reid_net *net, int a, int zp) {
  const float r = net->act_range[a];
  return r > 0 ? r / (zp ? 255.0f : 127.0f) : 1.0f;
}

/* what an op that int8 does not run is, for the refusal */
static const char *int8_missing(const eop *op) {
  switch (op->kind) {
  case EOP_CONV:
    return op->conv.groups > 1 ? "a grouped convolution"
                               : "a ReLU6 or sigmoid convolution epilogue";
  case EOP_AVGPOOL: return "average pooling";
  case EOP_GAP: return "an inner global pooling";
  case EOP_NORM: return op->instance ? "instance norm" : "a batch norm outside a convolution";
  case EOP_COPY: return "a channel slice or concatenation";
  default: return "an elementwise op outside a convolution";
  }
}

reid_status engine_int8_prepare(cuda_engine *g, const reid_net *net) {
  if (!net->act_range)
    return reid_fail(REID_EINVAL, "engine: the model has no int8 activation ranges");
  if (net->n_acts != g->n_acts)
    return reid_fail(REID_EINVAL, "engine: %d activation ranges for %d activations", net->n_acts,
                     g->n_acts);
  for (int i = 0; i < g->n_ops; i++) { /* what int8 runs: the ops of a ResNet */
    const eop *op = &g->ops[i];
    const int ok = (op->kind == EOP_CONV && op->conv.groups <= 1 &&
                    (op->act == ENGINE_ACT_NONE || op->act == ENGINE_ACT_RELU)) ||
                   op->kind == EOP_MAXPOOL || op->kind == EOP_OUTPUT;
    if (!ok)
      return reid_fail(REID_EUNSUPPORTED,
                       "engine: int8 on the CUDA engine runs ResNets; %s has %s, which it does not "
                       "run in int8 yet (device=cpu runs MobileNetV2 in int8)",
                       reid_arch_name(net->cfg.arch), int8_missing(op));
  }
  const int n = g->n_acts;
  int *tensor = malloc(sizeof(int) * (size_t)n), *neg = calloc((size_t)n, sizeof(int));
  int *known = calloc((size_t)n, sizeof(int));
  if (!tensor || !neg || !known) {
    free(tensor), free(neg), free(known);
    return reid_fail(REID_ENOMEM, "engine: out of memory");
  }
  for (int a = 0; a < n; a++) tensor[a] = a;
  for (int i = 0; i < g->n_ops; i++)
    if (g->ops[i].kind == EOP_CONV && g->ops[i].res >= 0)
      tensor[g->ops[i].dst] = tensor[g->ops[i].res];
  neg[tensor[g->input_act]] = 1;
  for (int changed = 1; changed;) {
    changed = 0;
    for (int i = 0; i < g->n_ops; i++) {
      const eop *op = &g->ops[i];
      if (op->kind == EOP_OUTPUT) continue;
      const int w = op->kind == EOP_CONV ? op->act != ENGINE_ACT_RELU : neg[tensor[op->src]];
      if (w && !neg[tensor[op->dst]]) neg[tensor[op->dst]] = changed = 1;
    }
  }
  reid_status st = REID_OK;
#define SET_STEP(a)                                                                                \
  do {                                                                                             \
    if (!known[a]) {                                                                               \
      g->acts[a].zp = neg[tensor[a]] ? 0 : 128;                                                    \
      g->acts[a].step = range_step(net, a, g->acts[a].zp);                                         \
      known[a] = 1;                                                                                \
    }                                                                                              \
  } while (0)
  SET_STEP(g->input_act);
  for (int i = 0; i < g->n_ops && st == REID_OK; i++) {
    eop *op = &g->ops[i];
    SET_STEP(op->src);
    if (op->kind == EOP_MAXPOOL) { /* keeps its input's step (and codes) */
      eact *in = &g->acts[op->src], *out = &g->acts[op->dst];
      out->step = in->step;
      out->zp = neg[tensor[op->dst]] ? 0 : 128;
      known[op->dst] = 1;
      if (out->zp != in->zp)
        st = reid_fail(REID_EUNSUPPORTED,
                       "engine: int8 max pooling from %s into %s codes is not implemented",
                       in->zp ? "unsigned" : "signed", out->zp ? "unsigned" : "signed");
      continue;
    }
    if (op->kind != EOP_CONV) continue;
    SET_STEP(op->dst);
    if (op->res >= 0) SET_STEP(op->res);
    const int co = op->conv.c_out;
    float *scale = malloc(sizeof(float) * (size_t)co);
    if (!scale) {
      st = reid_fail(REID_ENOMEM, "engine: out of memory");
      break;
    }
    for (int o = 0; o < co; o++) scale[o] = g->acts[op->src].step * op->w_step[o];
    st = CUDA_ST(cudaMalloc((void **)&op->q_scale, sizeof(float) * (size_t)co));
    if (st == REID_OK)
      st = CUDA_ST(cudaMemcpyAsync(op->q_scale, scale, sizeof(float) * (size_t)co,
                                   cudaMemcpyHostToDevice, g->s->stream));
    if (st == REID_OK) st = CUDA_ST(cudaStreamSynchronize(g->s->stream));
    free(scale);
  }
#undef SET_STEP
  free(tensor), free(neg), free(known);
  return st;
}
