/* int8 for the oneDNN engine: data types and scales of the fused ops.
 *
 * A graph activation a with calibrated range r[a] (|x| <= r, net->act_range)
 * lives in its tensor as u8 (x = q * r / 255) when every op writing that
 * tensor ends in ReLU, ReLU6 or a sigmoid, else as s8 (x = q * r / 127). Max
 * and average pooling keep their input's step; the global average pooling
 * that makes the feature writes f32 (the step is applied when the feature is
 * read out).
 *
 * A convolution with input step s_in, folded weights w quantized per output
 * channel (w[o] = wq[o] * s_w[o], s_w[o] = max |w[o]| / 127), bias b and
 * output step s_out computes, in oneDNN 2.x's int8 semantics
 * (dst = post_ops(oscale * (acc + bias))):
 *   acc  = sum wq * q_in                                    int32, VNNI
 *   y    = s_in s_w[o] (acc + b[o] / (s_in s_w[o]))          real units
 *   ReLU or none:     oscale[o] = s_in s_w[o] / s_out, sum scale = s_old / s_out
 *   ReLU6 / sigmoid:  oscale[o] = s_in s_w[o], sum scale = s_old, then the
 *                     activation in real units and a linear post-op 1 / s_out
 * where s_old is the step of the shortcut the residual sum reads (in place). */
#include "engine_dnnl.h"
#include "quantize.h"

#if HAVE_DNNL
#include <stdlib.h>
#include <string.h>

static int nonnegative(net_node_kind act) {
  return act == NODE_RELU || act == NODE_RELU6 || act == NODE_SIGMOID;
}

/* the quantization step of graph activation a stored in tensor t */
static float act_step(const dnnl_state *s, const reid_net *net, float *step, int a, int t) {
  if (s->tdt[t] == dnnl_f32) return 1.0f;
  if (step[a] > 0) return step[a];
  float r = net->act_range[a];
  step[a] = r > 0 ? r / (s->tdt[t] == dnnl_u8 ? 255.0f : 127.0f) : 1.0f;
  return step[a];
}

/* w [c_out, per_out] -> wq and per-channel steps (max |w| / 127) */
static reid_status quantize_weights(fop *op, float *w_step) {
  int co = op->conv.c_out;
  size_t per_out =
      (size_t)op->conv.c_in / (op->conv.groups > 1 ? op->conv.groups : 1) * op->conv.k * op->conv.k;
  op->wq = malloc((size_t)co * per_out);
  if (!op->wq) return reid_fail(REID_ENOMEM, "engine: out of memory");
  reid_quantize_per_channel(op->w, co, per_out, op->wq, w_step);
  return REID_OK;
}

reid_status engine_dnnl_int8_prepare(dnnl_state *s, const reid_net *net) {
  if (!net->act_range)
    return reid_fail(REID_EINVAL, "engine: the model has no int8 activation ranges");
  for (int i = 0; i < s->n_ops; i++) {
    static const char *const names[] = {[FOP_NORM] = "instance norm or standalone batch norm",
                                        [FOP_CONCAT] = "channel concat",
                                        [FOP_SLICE] = "channel slice",
                                        [FOP_ELTWISE] = "standalone activation"};
    const fop_kind k = s->ops[i].kind;
    if (k == FOP_NORM || k == FOP_CONCAT || k == FOP_SLICE || k == FOP_ELTWISE)
      return reid_fail(REID_EUNSUPPORTED,
                       "engine: %s has a %s, which the int8 engine does not run yet (ResNet and "
                       "MobileNetV2 do run in int8)",
                       reid_arch_name(net->cfg.arch), names[k]);
  }
  for (int i = 0; i < s->n_ops; i++)
    if (s->ops[i].kind == FOP_ADD || s->ops[i].kind == FOP_MUL)
      return reid_fail(REID_EUNSUPPORTED,
                       "engine: %s has an elementwise %s outside a residual convolution, which "
                       "the int8 engine does not run yet (ResNet and MobileNetV2 do run in int8)",
                       reid_arch_name(net->cfg.arch),
                       s->ops[i].kind == FOP_ADD ? "sum" : "channel gate");
  /* signs: a tensor is signed when any writer can produce a negative value */
  int *sign = calloc((size_t)s->n_tensors, sizeof *sign);
  float *step = calloc((size_t)net->n_acts, sizeof *step);
  s->tdt = malloc(sizeof *s->tdt * s->n_tensors);
  if (!sign || !step || !s->tdt) {
    free(sign);
    free(step);
    return reid_fail(REID_ENOMEM, "engine: out of memory");
  }
  sign[s->input] = 1;
  for (int changed = 1; changed;) {
    changed = 0;
    for (int i = 0; i < s->n_ops; i++) {
      const fop *op = &s->ops[i];
      int neg = op->kind == FOP_CONV ? !nonnegative(op->act) : sign[op->src];
      if (neg && !sign[op->dst]) sign[op->dst] = changed = 1;
    }
  }
  for (int t = 0; t < s->n_tensors; t++) s->tdt[t] = sign[t] ? dnnl_s8 : dnnl_u8;
  s->tdt[s->feature] = dnnl_f32;
  s->input_scale = act_step(s, net, step, 0, s->input);
  reid_status st = REID_OK;
  for (int i = 0; i < s->n_ops && st == REID_OK; i++) {
    fop *op = &s->ops[i];
    float s_in = act_step(s, net, step, op->a_src, op->src);
    if (op->kind != FOP_CONV) { /* pooling keeps its input's step */
      if (op->dst == s->feature)
        s->feature_scale = s_in;
      else
        step[op->a_dst] = s_in;
      continue;
    }
    float s_out = act_step(s, net, step, op->a_dst, op->dst);
    float s_old = op->sum ? act_step(s, net, step, op->a_old, op->dst) : 0.0f;
    int co = op->conv.c_out;
    op->oscale = malloc(sizeof(float) * co);
    if (!op->oscale) {
      st = reid_fail(REID_ENOMEM, "engine: out of memory");
      break;
    }
    st = quantize_weights(op, op->oscale); /* oscale holds s_w for now */
    int fold = op->act == NODE_CONV || op->act == NODE_RELU;
    for (int o = 0; st == REID_OK && o < co; o++) {
      float acc_step = s_in * op->oscale[o];
      op->b[o] /= acc_step;
      op->oscale[o] = fold ? acc_step / s_out : acc_step;
    }
    op->sum_scale = fold ? s_old / s_out : s_old;
    op->post_scale = fold || s->tdt[op->dst] == dnnl_f32 ? 0.0f : 1.0f / s_out;
    if (op->dst == s->feature) s->feature_scale = 1.0f;
  }
  free(sign);
  free(step);
  return st;
}
#endif
