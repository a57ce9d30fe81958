/* The CUDA inference engine (reid_engine_create on a CUDA backend).
 *
 * The network description is rewritten into fused convolutions, as the CPU
 * engine does (see rewrite()):
 *   conv [+ BN] [+ act]              -> one convolution (grouped / depthwise through cuDNN's
 *                                       group count), BN folded into w and b:
 *                                       w' = w g / sqrt(v + eps), b' = beta - m g / sqrt(v + eps)
 *   conv + BN, add(shortcut) [+ act] -> one convolution with the residual z:
 *                                       y = act(conv(x, w') + b' + z)
 *   pools, other adds, channel gates -> engine kernels (the BNNeck affine map fused into the
 *                                       pooling that gives the embedding)
 *   instance norm [+ add] [+ act],   -> one channel map y = act(x k + b [+ z]): k, b from each
 *   batch norm without a conv           (image, channel) plane's mean and variance (IN), or
 *                                       the folded BN; it reads a slice's channels and writes
 *                                       its channels of a concatenation in place
 *   other slices, concatenations     -> channel-range copies
 * act: ReLU (fused by cuDNN), ReLU6 or sigmoid (engine epilogue).
 * Weights and activations are NHWC in the selected storage type (fp32, tf32 =
 * fp32 storage with TF32 math, fp16, bf16), the image's 3 channels padded to
 * 8. Activation buffers are reused as soon as a tensor is dead; one cuDNN
 * workspace serves every convolution. Batch sizes are served by buckets
 * (powers of two up to max_batch, plus max_batch), each with its own plan and
 * CUDA graph (cuda_engine_plan.c); host input and output go through pinned
 * buffers on the backend's stream. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "cuda_engine.h"
#include "engine_impl.h"
#include "reid_cuda.h"
#include "net_graph.h"
#include "quantize.h"

#define WORKSPACE_BYTES ((size_t)256 << 20)
#define BN_EPS          1e-5

/* ---- graph rewriting ---- */

static const float *tensor_host(const reid_net *net, int index, const float *params,
                                const float *buffers) {
  const reid_tensor_view *t = &net->tensors[index];
  return (t->trainable ? params : buffers) + t->offset;
}

/* int8: the folded weights hw [co][k][k][c_pad] quantized per output channel
 * (steps kept on the host for engine_int8_prepare) and their per-tap sums over the
 * input channels. */
static reid_status upload_int8_weights(cuda_engine *g, eop *op, const float *hw, int co, int k,
                                       int c_pad) {
  const size_t per = (size_t)k * k * c_pad, taps = (size_t)k * k;
  int8_t *q = malloc((size_t)co * per);
  float *wsum = calloc((size_t)co * (taps + 1), sizeof(float));
  op->w_step = malloc(sizeof(float) * (size_t)co);
  reid_status st =
      q && wsum && op->w_step ? REID_OK : reid_fail(REID_ENOMEM, "engine: out of memory");
  if (st == REID_OK) {
    reid_quantize_per_channel(hw, co, per, q, op->w_step);
    for (int o = 0; o < co; o++)
      for (size_t t = 0; t < taps; t++)
        for (int c = 0; c < c_pad; c++) {
          const float v = q[(size_t)o * per + t * c_pad + c];
          wsum[(size_t)o * (taps + 1) + t] += v;
          wsum[(size_t)o * (taps + 1) + taps] += v;
        }
  }
  if (st == REID_OK) st = CUDA_ST(cudaMalloc(&op->w, (size_t)co * per));
  if (st == REID_OK)
    st = CUDA_ST(cudaMalloc((void **)&op->q_wsum, sizeof(float) * (size_t)co * (taps + 1)));
  if (st == REID_OK)
    st = CUDA_ST(cudaMemcpyAsync(op->w, q, (size_t)co * per, cudaMemcpyHostToDevice, g->s->stream));
  if (st == REID_OK)
    st = CUDA_ST(cudaMemcpyAsync(op->q_wsum, wsum, sizeof(float) * (size_t)co * (taps + 1),
                                 cudaMemcpyHostToDevice, g->s->stream));
  if (st == REID_OK) st = CUDA_ST(cudaStreamSynchronize(g->s->stream));
  free(q);
  free(wsum);
  return st;
}

/* Folds BN (when given) into the convolution, reorders OIHW -> KRSC (input
 * channels padded to c_pad; a group's c_in / groups otherwise) and uploads
 * weights and bias in the storage type:
 *   w' = w g / sqrt(v + eps),  b' = (b - m) g / sqrt(v + eps) + beta  (b: the conv's bias or 0)
 * (int8: the weights quantized per output channel, the bias in float). */
static reid_status upload_folded(cuda_engine *g, eop *op, const reid_net *net, const net_node *conv,
                                 const net_node *bn, int c_pad, const float *params,
                                 const float *buffers) {
  const int groups = conv->conv.groups > 1 ? conv->conv.groups : 1;
  const int co = conv->conv.c_out, ci = conv->conv.c_in / groups, k = conv->conv.k;
  const float *w = tensor_host(net, conv->weight, params, buffers);
  const float *cb = conv->bias >= 0 ? tensor_host(net, conv->bias, params, buffers) : NULL;
  const size_t wn = (size_t)co * k * k * c_pad;
  float *hw = calloc(wn, sizeof(float)), *hb = malloc(sizeof(float) * (size_t)co);
  void *tmp = NULL;
  reid_status st = hw && hb ? REID_OK : reid_fail(REID_ENOMEM, "engine: out of memory");
  for (int o = 0; st == REID_OK && o < co; o++) {
    double scale = 1.0, shift = cb ? cb[o] : 0.0;
    if (bn) {
      const float *gamma = tensor_host(net, bn->weight, params, buffers);
      const float *beta = tensor_host(net, bn->bias, params, buffers);
      const float *mean = tensor_host(net, bn->mean, params, buffers);
      const float *var = tensor_host(net, bn->var, params, buffers);
      scale = gamma[o] / sqrt((double)var[o] + BN_EPS);
      shift = (shift - mean[o]) * scale + beta[o];
    }
    hb[o] = (float)shift;
    for (int c = 0; c < ci; c++)
      for (int r = 0; r < k; r++)
        for (int q = 0; q < k; q++)
          hw[(((size_t)o * k + r) * k + q) * c_pad + c] =
              (float)(w[(((size_t)o * ci + c) * k + r) * k + q] * scale);
  }
  const int i8 = g->dtype == ENGINE_INT8;
  if (st == REID_OK && i8) st = upload_int8_weights(g, op, hw, co, k, c_pad);
  if (st == REID_OK && !i8) st = CUDA_ST(cudaMalloc(&op->w, wn * (size_t)g->elem));
  if (st == REID_OK && !i8) st = CUDA_ST(cudaMalloc(&op->bias, (size_t)co * (size_t)g->elem));
  if (st == REID_OK) st = CUDA_ST(cudaMalloc((void **)&op->bias_f32, sizeof(float) * (size_t)co));
  if (st == REID_OK && !i8) st = CUDA_ST(cudaMalloc(&tmp, sizeof(float) * wn));
  /* stream-ordered copies: a plain cudaMemcpy from pageable memory may still be in flight
   * when a kernel on the (non-blocking) backend stream starts */
  if (st == REID_OK)
    st = CUDA_ST(cudaMemcpyAsync(op->bias_f32, hb, sizeof(float) * (size_t)co,
                                 cudaMemcpyHostToDevice, g->s->stream));
  if (st == REID_OK && !i8)
    st =
        CUDA_ST(cudaMemcpyAsync(tmp, hw, sizeof(float) * wn, cudaMemcpyHostToDevice, g->s->stream));
  if (st == REID_OK && !i8) st = engine_convert_weights(g->s, tmp, op->w, wn, g->dtype);
  if (st == REID_OK && !i8)
    st = engine_convert_weights(g->s, op->bias_f32, op->bias, (size_t)co, g->dtype);
  if (st == REID_OK) st = CUDA_ST(cudaStreamSynchronize(g->s->stream));
  if (tmp) cudaFree(tmp);
  free(hw);
  free(hb);
  REID_TRY(st);

  op->kind = EOP_CONV;
  op->conv = conv->conv;
  op->conv.groups = groups;
  if (groups == 1) op->conv.c_in = c_pad;
  op->src = conv->in;
  op->res = -1;
  CUDNN_CHECK(cudnnCreateFilterDescriptor(&op->w_desc));
  CUDNN_CHECK(cudnnSetFilter4dDescriptor(op->w_desc, g->dt, CUDNN_TENSOR_NHWC, co, c_pad, k, k));
  if (i8) return REID_OK; /* no bias descriptors: the epilogue adds bias_f32 */
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&op->bias_desc));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(op->bias_desc, CUDNN_TENSOR_NCHW, g->dt, 1, co, 1, 1));
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&op->bias_desc_f32));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(op->bias_desc_f32, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1,
                                         co, 1, 1));
  return REID_OK;
}

/* readers of activation `act` among the nodes */
static int count_readers(const reid_net *net, int act) {
  int n = 0;
  for (int j = 0; j < net->n_nodes; j++)
    n += (net->nodes[j].in == act) + (net->nodes[j].in2 == act);
  return n;
}

static int engine_act_of(net_node_kind kind) {
  switch (kind) {
  case NODE_RELU: return ENGINE_ACT_RELU;
  case NODE_RELU6: return ENGINE_ACT_RELU6;
  case NODE_SIGMOID: return ENGINE_ACT_SIGMOID;
  default: return -1;
  }
}

/* the activation node right after node i, when it is the only reader of `act` (else -1) */
static int act_after(const reid_net *net, int i, int act) {
  if (i + 1 >= net->n_nodes || net->nodes[i + 1].in != act || count_readers(net, act) != 1)
    return -1;
  return engine_act_of(net->nodes[i + 1].kind);
}

/* the ADD after node `from` that is the only reader of `act` (-1: none) */
static int sole_add(const reid_net *net, int from, int act) {
  if (count_readers(net, act) != 1) return -1;
  for (int j = from; j < net->n_nodes; j++)
    if (net->nodes[j].kind == NODE_ADD && (net->nodes[j].in == act || net->nodes[j].in2 == act))
      return j;
  return -1;
}

/* Deferred branches: the conv [+ BN] feeding an ADD runs when the ADD is reached. */
typedef struct deferred {
  eop op;
  int add_node, branch; /* the ADD, and which of its inputs the branch is */
} deferred;

/* whether a deferred branch already goes into ADD node `add` (a second one, e.g. a downsample
 * shortcut, runs as its own op and becomes the residual) */
static int add_has_branch(const deferred *pend, int n_pend, int add) {
  for (int k = 0; k < n_pend; k++)
    if (pend[k].add_node == add) return 1;
  return 0;
}

/* whether conv node i takes the BN after it (folded into its weights) */
static int conv_takes_bn(const reid_net *net, int i) {
  return i + 1 < net->n_nodes && net->nodes[i + 1].kind == NODE_BN &&
         net->nodes[i + 1].in == net->nodes[i].out && count_readers(net, net->nodes[i].out) == 1;
}

/* the node writing activation `act` (-1: the input) */
static int producer(const reid_net *net, int act) {
  for (int j = 0; j < net->n_nodes; j++)
    if (net->nodes[j].out == act) return j;
  return -1;
}

/* an instance norm, or a batch norm that no convolution takes */
static int standalone_norm(const reid_net *net, int i) {
  const net_node_kind k = net->nodes[i].kind;
  return k == NODE_IN || (k == NODE_BN && !(i > 0 && net->nodes[i - 1].kind == NODE_CONV &&
                                            conv_takes_bn(net, i - 1)));
}

/* A slice whose readers are all standalone normalisations: they read its channel range of the
 * sliced tensor, and the slice itself runs no op. */
static int slice_read_in_place(const reid_net *net, int slice) {
  const int a = net->nodes[slice].out;
  if (a == net->feature_act || count_readers(net, a) == 0) return 0;
  for (int j = 0; j < net->n_nodes; j++)
    if ((net->nodes[j].in == a || net->nodes[j].in2 == a) && !standalone_norm(net, j)) return 0;
  return 1;
}

/* The concatenation that is the only reader of normalisation node i's output, which the
 * normalisation then writes into directly (-1: none). */
static int concat_in_place(const reid_net *net, int i) {
  const int y = net->nodes[i].out;
  if (!standalone_norm(net, i) || count_readers(net, y) != 1 || y == net->feature_act) return -1;
  for (int j = i + 1; j < net->n_nodes; j++)
    if (net->nodes[j].kind == NODE_CONCAT && (net->nodes[j].in == y || net->nodes[j].in2 == y))
      return j;
  return -1;
}

/* where concatenation node j is written: its output, or that of the activation right after it,
 * which its writers then apply (*act) */
static int concat_target(const reid_net *net, int j, int *act) {
  const int a = act_after(net, j, net->nodes[j].out);
  *act = a >= 0 ? a : ENGINE_ACT_NONE;
  return a >= 0 ? net->nodes[j + 1].out : net->nodes[j].out;
}

/* The last op when it is a normalisation whose output only ADD node `add` reads, with no
 * activation and a whole tensor as its destination: the sum then runs in its epilogue
 * (OSNet-AIN's IN inside the residual). NULL otherwise. */
static eop *norm_before_add(cuda_engine *g, const reid_net *net, const net_node *add) {
  eop *last = g->n_ops > 0 ? &g->ops[g->n_ops - 1] : NULL;
  if (!last || last->kind != EOP_NORM || last->res >= 0 || last->act != ENGINE_ACT_NONE ||
      last->dst_c0 != 0 || last->nc != g->acts[last->dst].c || add->in == add->in2)
    return NULL;
  if ((last->dst != add->in && last->dst != add->in2) || last->dst == net->feature_act) return NULL;
  return count_readers(net, last->dst) == 1 ? last : NULL;
}

/* The parameters of a normalisation as {k, b} pairs on the device: instance norm's
 * {gamma, beta}, or a batch norm folded: k = g / sqrt(v + eps), b = beta - m k. */
static reid_status upload_norm(cuda_engine *g, eop *op, const reid_net *net, const net_node *node,
                               const float *params, const float *buffers) {
  const int nc = op->nc;
  float *h = malloc(sizeof(float) * 2 * (size_t)nc);
  if (!h) return reid_fail(REID_ENOMEM, "engine: out of memory");
  const float *gm = tensor_host(net, node->weight, params, buffers);
  const float *bt = tensor_host(net, node->bias, params, buffers);
  const float *mn = op->instance ? NULL : tensor_host(net, node->mean, params, buffers);
  const float *vr = op->instance ? NULL : tensor_host(net, node->var, params, buffers);
  for (int c = 0; c < nc; c++) {
    const double k = op->instance ? gm[c] : gm[c] / sqrt((double)vr[c] + BN_EPS);
    h[2 * c] = (float)k;
    h[2 * c + 1] = (float)(op->instance ? bt[c] : bt[c] - mn[c] * k);
  }
  reid_status st = CUDA_ST(cudaMalloc((void **)&op->norm, sizeof(float) * 2 * (size_t)nc));
  if (st == REID_OK)
    st = CUDA_ST(cudaMemcpyAsync(op->norm, h, sizeof(float) * 2 * (size_t)nc,
                                 cudaMemcpyHostToDevice, g->s->stream));
  if (st == REID_OK) st = CUDA_ST(cudaStreamSynchronize(g->s->stream));
  free(h);
  return st;
}

/* Normalisation node *at -> one NORM op: it reads a slice's channels in place, writes its
 * channels of a concatenation in place (with the activation after the concatenation), or
 * takes the activation after it (*at then moves past it). */
static reid_status rewrite_norm(cuda_engine *g, const reid_net *net, int *at, const float *params,
                                const float *buffers) {
  const int i = *at;
  const net_node *node = &net->nodes[i];
  eop *op = &g->ops[g->n_ops++];
  *op = (eop){.kind = EOP_NORM,
              .src = node->in,
              .dst = node->out,
              .res = -1,
              .nc = net->acts[node->in].c,
              .instance = node->kind == NODE_IN};
  const int from = producer(net, node->in);
  if (from >= 0 && net->nodes[from].kind == NODE_SLICE && slice_read_in_place(net, from)) {
    op->src = net->nodes[from].in;
    op->src_c0 = net->nodes[from].c0;
  }
  const int cat = concat_in_place(net, i);
  int act;
  if (cat >= 0) {
    op->dst = concat_target(net, cat, &op->act);
    op->dst_c0 = net->nodes[cat].in == node->out ? 0 : net->acts[net->nodes[cat].in].c;
  } else if ((act = act_after(net, i, node->out)) >= 0) {
    op->act = act;
    op->dst = net->nodes[++*at].out;
  }
  if (op->instance && op->nc > g->max_instance_c) g->max_instance_c = op->nc;
  return upload_norm(g, op, net, node, params, buffers);
}

/* The node list -> fused ops:
 *   conv [+ BN] [+ ReLU / ReLU6 / sigmoid]         one convolution with its epilogue
 *   conv [+ BN] whose only reader is add(., z) [+ activation]
 *                                                  one convolution with residual z
 *   other adds, channel gates, activations         elementwise ops
 *   max / average pooling, global average pooling  pooling ops; the GAP that gives the
 *                                                  feature writes the embedding (OUTPUT)
 *   instance norm, batch norm without a conv       NORM (rewrite_norm), with the add after it
 *                                                  when it is the last op before the add
 *   channel slice, concatenation                   nothing when the normalisations read /
 *                                                  write the channel ranges in place (IBN-a:
 *                                                  slice -> IN / BN -> concat -> ReLU is two
 *                                                  NORM ops with ReLU), else COPY ops */
static reid_status rewrite(cuda_engine *g, const reid_net *net, const float *params,
                           const float *buffers) {
  /* at most two ops per node (a concatenation copying both inputs), and the output */
  g->ops = calloc(2 * (size_t)net->n_nodes + 1, sizeof *g->ops);
  deferred *pend = calloc((size_t)net->n_nodes, sizeof *pend);
  if (!g->ops || !pend) {
    free(pend);
    return reid_fail(REID_ENOMEM, "engine: out of memory");
  }
  int n_pend = 0, have_output = 0;
  reid_status st = REID_OK;
  g->feature_act = net->feature_act;
  for (int i = 0; i < net->n_nodes && st == REID_OK; i++) {
    const net_node *node = &net->nodes[i];
    eop *op = &g->ops[g->n_ops];
    int act;
    switch (node->kind) {
    case NODE_CONV: {
      const net_node *bn = conv_takes_bn(net, i) ? &net->nodes[i + 1] : NULL;
      const int c_pad = node->in == g->input_act
                            ? ENGINE_INPUT_CHANNELS
                            : node->conv.c_in / (node->conv.groups > 1 ? node->conv.groups : 1);
      eop folded = {0};
      st = upload_folded(g, &folded, net, node, bn, c_pad, params, buffers);
      const int y = bn ? bn->out : node->out;
      i += bn != NULL;
      if (st != REID_OK) {
        *op = folded; /* its buffers are freed with the ops */
        g->n_ops++;
        break;
      }
      const int add = sole_add(net, i + 1, y);
      if ((act = act_after(net, i, y)) >= 0) {
        folded.act = act;
        folded.dst = net->nodes[++i].out;
        *op = folded;
        g->n_ops++;
      } else if (add >= 0 && !add_has_branch(pend, n_pend, add)) {
        pend[n_pend].op = folded;
        pend[n_pend].branch = y;
        pend[n_pend++].add_node = add;
      } else { /* a downsample shortcut or a plain conv [+ BN] */
        folded.dst = y;
        *op = folded;
        g->n_ops++;
      }
      break;
    }
    case NODE_ADD: {
      int k = 0;
      while (k < n_pend && pend[k].add_node != i) k++;
      eop *norm = k < n_pend ? NULL : norm_before_add(g, net, node);
      if (k < n_pend) { /* the deferred branch with the other input as its residual */
        *op = pend[k].op;
        pend[k].add_node = -1;
        op->res = pend[k].branch == node->in ? node->in2 : node->in;
      } else if (norm) { /* the normalisation just emitted adds the other input */
        g->n_ops--;      /* counted again below */
        op = norm;
        op->res = norm->dst == node->in ? node->in2 : node->in;
      } else { /* e.g. OSNet's sum of gated streams */
        *op = (eop){.kind = EOP_ADD, .src = node->in, .res = node->in2};
      }
      if ((act = act_after(net, i, node->out)) >= 0) {
        op->act = act;
        op->dst = net->nodes[++i].out;
      } else {
        op->dst = node->out;
      }
      g->n_ops++;
      break;
    }
    case NODE_MUL:
    case NODE_RELU:
    case NODE_RELU6:
    case NODE_SIGMOID:
      *op = (eop){.kind = node->kind == NODE_MUL ? EOP_MUL : EOP_ACT,
                  .src = node->in,
                  .res = node->kind == NODE_MUL ? node->in2 : -1,
                  .dst = node->out,
                  .act = node->kind == NODE_MUL ? ENGINE_ACT_NONE : engine_act_of(node->kind)};
      g->n_ops++;
      break;
    case NODE_MAXPOOL:
    case NODE_AVGPOOL:
      *op = (eop){.kind = node->kind == NODE_MAXPOOL ? EOP_MAXPOOL : EOP_AVGPOOL,
                  .src = node->in,
                  .dst = node->out,
                  .res = -1,
                  .pool = node->pool};
      g->n_ops++;
      break;
    case NODE_GAP:
      *op = (eop){.kind = EOP_GAP, .src = node->in, .dst = node->out, .res = -1};
      if (node->out == net->feature_act) { /* pooled straight into the embedding */
        op->kind = EOP_OUTPUT;
        have_output = 1;
      }
      g->n_ops++;
      break;
    case NODE_IN:
    case NODE_BN: /* instance norm, or a batch norm no convolution took (IBN-a's half) */
      st = rewrite_norm(g, net, &i, params, buffers);
      break;
    case NODE_SLICE:
      if (slice_read_in_place(net, i)) break; /* its readers take the channel range */
      *op = (eop){.kind = EOP_COPY,
                  .src = node->in,
                  .dst = node->out,
                  .res = -1,
                  .src_c0 = node->c0,
                  .nc = net->acts[node->out].c};
      g->n_ops++;
      break;
    case NODE_CONCAT: { /* copies of the inputs no normalisation wrote in place */
      int cat_act;
      const int target = concat_target(net, i, &cat_act);
      const int parts[2] = {node->in, node->in2};
      for (int k = 0; k < 2; k++) {
        const int from = producer(net, parts[k]);
        if (from >= 0 && concat_in_place(net, from) == i) continue;
        g->ops[g->n_ops++] = (eop){.kind = EOP_COPY,
                                   .src = parts[k],
                                   .dst = target,
                                   .res = -1,
                                   .act = cat_act,
                                   .dst_c0 = k ? net->acts[node->in].c : 0,
                                   .nc = net->acts[parts[k]].c};
      }
      i += target != node->out; /* the activation it took */
      break;
    }
    default:
      st = reid_fail(REID_EUNSUPPORTED,
                     "CUDA engine: %s has a node kind (%d, node %d) it does not run yet",
                     reid_arch_name(net->cfg.arch), node->kind, i);
      break;
    }
  }
  for (int k = 0; k < n_pend; k++)
    if (pend[k].add_node >= 0 && st == REID_OK)
      st = reid_fail(REID_EUNSUPPORTED, "engine: a residual branch has no add");
  /* folded buffers of branches that never reached the op list: freed with the ops (the build
   * has failed, nothing runs) */
  for (int k = 0; k < n_pend; k++)
    if (pend[k].add_node >= 0) g->ops[g->n_ops++] = pend[k].op;
  free(pend);
  if (st == REID_OK && g->feature_act < 0)
    st = reid_fail(REID_EUNSUPPORTED, "engine: network has no feature");
  if (st == REID_OK && !have_output) /* e.g. OSNet's fc: the feature is [n, 512, 1, 1] */
    g->ops[g->n_ops++] = (eop){.kind = EOP_OUTPUT, .src = g->feature_act, .dst = -1, .res = -1};
  return st;
}

/* ---- buffers ---- */

/* Assigns activation slots: a slot is free again after its tensor's last
 * reader; an output never shares a slot with that op's inputs. */
static reid_status assign_slots(cuda_engine *g) {
  int *last = malloc(sizeof(int) * (size_t)g->n_acts);
  int *owner = malloc(sizeof(int) * ((size_t)g->n_ops + 1));
  if (!last || !owner) {
    free(last);
    free(owner);
    return reid_fail(REID_ENOMEM, "engine: out of memory");
  }
  for (int a = 0; a < g->n_acts; a++) last[a] = -1, g->acts[a].slot = -1;
  for (int i = 0; i < g->n_ops; i++) {
    last[g->ops[i].src] = i;
    if (g->ops[i].res >= 0) last[g->ops[i].res] = i;
  }
  g->n_slots = 0;
  size_t largest = 0;
  for (int i = 0; i < g->n_ops; i++) {
    const eop *op = &g->ops[i];
    /* a concatenation's second writer finds its tensor placed */
    if (op->kind != EOP_OUTPUT && g->acts[op->dst].slot < 0) {
      int slot = 0;
      while (slot < g->n_slots && owner[slot] >= 0) slot++;
      if (slot == g->n_slots) g->n_slots++;
      owner[slot] = op->dst;
      g->acts[op->dst].slot = slot;
      const eact *a = &g->acts[op->dst];
      const size_t bytes = (size_t)a->c * a->h * a->w * (size_t)g->elem;
      if (bytes > largest) largest = bytes;
      if (op->kind == EOP_CONV && g->dtype == ENGINE_INT8 &&
          sizeof(float) * a->c * a->h * a->w * (size_t)g->max_batch > g->acc_bytes)
        g->acc_bytes = sizeof(float) * a->c * a->h * a->w * (size_t)g->max_batch;
    }
    const int reads[2] = {op->src, op->res};
    for (int r = 0; r < 2; r++)
      if (reads[r] >= 0 && reads[r] != g->input_act && last[reads[r]] == i)
        owner[g->acts[reads[r]].slot] = -1;
  }
  free(last);
  free(owner);
  g->slot_bytes = largest * (size_t)g->max_batch;
  g->slots = calloc((size_t)g->n_slots, sizeof(void *));
  if (!g->slots) return reid_fail(REID_ENOMEM, "engine: out of memory");
  for (int k = 0; k < g->n_slots; k++) {
    CUDA_CHECK(cudaMalloc(&g->slots[k], g->slot_bytes));
    /* finite contents: a fused epilogue with alpha2 = 0 may still read z */
    CUDA_CHECK(cudaMemsetAsync(g->slots[k], 0, g->slot_bytes, g->s->stream));
  }
  return REID_OK;
}

static reid_status alloc_buffers(cuda_engine *g) {
  const size_t image = (size_t)g->in_c * g->in_h * g->in_w, mb = (size_t)g->max_batch;
  const size_t input_bytes = mb * g->in_h * g->in_w * ENGINE_INPUT_CHANNELS * (size_t)g->elem;
  CUDA_CHECK(cudaMalloc(&g->input, input_bytes));
  CUDA_CHECK(cudaMemsetAsync(g->input, 0, input_bytes, g->s->stream));
  if (g->dtype == ENGINE_INT8) { /* float staging of the input, int32 sums of a convolution */
    const size_t f_bytes = mb * g->in_h * g->in_w * ENGINE_INPUT_CHANNELS * sizeof(float);
    CUDA_CHECK(cudaMalloc((void **)&g->input_f, f_bytes));
    CUDA_CHECK(cudaMemsetAsync(g->input_f, 0, f_bytes, g->s->stream));
    CUDA_CHECK(cudaMalloc((void **)&g->acc, g->acc_bytes));
  }
  CUDA_CHECK(cudaMalloc((void **)&g->input_f32, sizeof(float) * image * mb));
  CUDA_CHECK(cudaMallocHost((void **)&g->host_in, sizeof(float) * image * mb));
  CUDA_CHECK(cudaMalloc((void **)&g->out_dev, sizeof(float) * (size_t)g->dim * mb));
  CUDA_CHECK(cudaMallocHost((void **)&g->host_out, sizeof(float) * (size_t)g->dim * mb));
  if (g->max_instance_c > 0)
    CUDA_CHECK(
        cudaMalloc((void **)&g->norm_coef, sizeof(float) * 2 * (size_t)g->max_instance_c * mb));
  g->workspace_bytes = WORKSPACE_BYTES;
  CUDA_CHECK(cudaMalloc(&g->workspace, g->workspace_bytes));
  CUDNN_CHECK(cudnnCreateActivationDescriptor(&g->relu));
  CUDNN_CHECK(
      cudnnSetActivationDescriptor(g->relu, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
  CUDNN_CHECK(cudnnCreateActivationDescriptor(&g->identity));
  CUDNN_CHECK(cudnnSetActivationDescriptor(g->identity, CUDNN_ACTIVATION_IDENTITY,
                                           CUDNN_NOT_PROPAGATE_NAN, 0.0));
  return REID_OK;
}

/* The BNNeck as an affine map on the pooled feature: x * scale + shift. */
static reid_status neck(cuda_engine *g, const reid_net *net, const float *params,
                        const float *buffers) {
  if (!net->cfg.embed_after_bn) return REID_OK;
  const int d = g->dim;
  float *h = malloc(sizeof(float) * 2 * (size_t)d);
  if (!h) return reid_fail(REID_ENOMEM, "engine: out of memory");
  const float *gm = tensor_host(net, net->neck_weight, params, buffers);
  const float *bt = tensor_host(net, net->neck_bias, params, buffers);
  const float *mn = tensor_host(net, net->neck_mean, params, buffers);
  const float *vr = tensor_host(net, net->neck_var, params, buffers);
  for (int c = 0; c < d; c++) {
    const double scale = gm[c] / sqrt((double)vr[c] + BN_EPS);
    h[c] = (float)scale;
    h[d + c] = (float)(bt[c] - mn[c] * scale);
  }
  reid_status st = CUDA_ST(cudaMalloc((void **)&g->neck_scale, sizeof(float) * 2 * (size_t)d));
  if (st == REID_OK) {
    g->neck_shift = g->neck_scale + d;
    st = CUDA_ST(cudaMemcpyAsync(g->neck_scale, h, sizeof(float) * 2 * (size_t)d,
                                 cudaMemcpyHostToDevice, g->s->stream));
  }
  if (st == REID_OK) st = CUDA_ST(cudaStreamSynchronize(g->s->stream));
  free(h);
  return st;
}

/* ---- lifetime ---- */

static void cuda_engine_free(cuda_engine *g) {
  if (!g) return;
  cudaSetDevice(g->s->device);
  cudaStreamSynchronize(g->s->stream);
  for (int b = 0; b < g->n_buckets; b++) engine_plan_destroy(g, g->plans[b]);
  for (int i = 0; g->ops && i < g->n_ops; i++) {
    eop *op = &g->ops[i];
    if (op->w) cudaFree(op->w);
    if (op->bias) cudaFree(op->bias);
    if (op->bias_f32) cudaFree(op->bias_f32);
    if (op->w_desc) cudnnDestroyFilterDescriptor(op->w_desc);
    if (op->bias_desc) cudnnDestroyTensorDescriptor(op->bias_desc);
    if (op->bias_desc_f32) cudnnDestroyTensorDescriptor(op->bias_desc_f32);
    if (op->q_scale) cudaFree(op->q_scale);
    if (op->q_wsum) cudaFree(op->q_wsum);
    if (op->norm) cudaFree(op->norm);
    free(op->w_step);
  }
  for (int k = 0; g->slots && k < g->n_slots; k++)
    if (g->slots[k]) cudaFree(g->slots[k]);
  if (g->input) cudaFree(g->input);
  if (g->input_f) cudaFree(g->input_f);
  if (g->acc) cudaFree(g->acc);
  if (g->input_f32) cudaFree(g->input_f32);
  if (g->host_in) cudaFreeHost(g->host_in);
  if (g->out_dev) cudaFree(g->out_dev);
  if (g->host_out) cudaFreeHost(g->host_out);
  if (g->neck_scale) cudaFree(g->neck_scale);
  if (g->workspace) cudaFree(g->workspace);
  if (g->norm_coef) cudaFree(g->norm_coef);
  if (g->relu) cudnnDestroyActivationDescriptor(g->relu);
  if (g->identity) cudnnDestroyActivationDescriptor(g->identity);
  cudaGetLastError();
  free(g->ops);
  free(g->acts);
  free(g->slots);
  free(g);
}

static void cuda_engine_destroy(reid_engine *e) {
  cuda_engine_free(e->impl);
  e->impl = NULL;
}

/* The plan of the smallest bucket holding n images. */
static reid_status plan_for(cuda_engine *g, int n, eplan **out) {
  int b = 0;
  while (b < g->n_buckets - 1 && g->bucket_n[b] < n) b++;
  if (!g->plans[b]) REID_TRY(engine_plan_create(g, g->bucket_n[b], &g->plans[b]));
  *out = g->plans[b];
  return REID_OK;
}

static reid_status run_n(cuda_engine *g, int n, float *out) {
  eplan *p;
  REID_TRY(plan_for(g, n, &p));
  REID_TRY(engine_plan_run(g, p));
  CUDA_CHECK(cudaStreamSynchronize(g->s->stream));
  memcpy(out, g->host_out, sizeof(float) * (size_t)n * g->dim);
  return REID_OK;
}

/* host NCHW float -> pinned -> device -> NHWC storage type -> network */
static reid_status cuda_embed(reid_engine *e, const float *x, int n, float *out) {
  cuda_engine *g = e->impl;
  cuda_state *s;
  REID_TRY(cuda_enter(g->be, &s));
  const size_t image = (size_t)g->in_c * g->in_h * g->in_w;
  for (int done = 0; done < n; done += g->max_batch) {
    const int chunk = n - done < g->max_batch ? n - done : g->max_batch;
    memcpy(g->host_in, x + image * done, sizeof(float) * image * chunk);
    CUDA_CHECK(cudaMemcpyAsync(g->input_f32, g->host_in, sizeof(float) * image * chunk,
                               cudaMemcpyHostToDevice, s->stream));
    if (g->dtype == ENGINE_INT8) /* quantized by the plan */
      REID_TRY(engine_input_from_nchw(s, g->input_f32, chunk, g->in_c, g->in_h, g->in_w,
                                      ENGINE_INPUT_CHANNELS, g->input_f, ENGINE_FP32));
    else
      REID_TRY(engine_input_from_nchw(s, g->input_f32, chunk, g->in_c, g->in_h, g->in_w,
                                      ENGINE_INPUT_CHANNELS, g->input, g->dtype));
    REID_TRY(run_n(g, chunk, out + (size_t)g->dim * done));
  }
  return REID_OK;
}

int reid_engine_is_cuda(const reid_engine *e) {
  return e && e->embed == cuda_embed;
}

reid_status reid_cuda_engine_input(reid_engine *e, void **input, reid_tensor_format *fmt) {
  if (!reid_engine_is_cuda(e)) return reid_fail(REID_EINVAL, "engine: not a CUDA engine");
  cuda_engine *g = e->impl;
  *input =
      g->dtype == ENGINE_INT8 ? (void *)g->input_f : g->input; /* int8: float, quantized by run */
  fmt->layout = REID_LAYOUT_NHWC;
  fmt->channels = ENGINE_INPUT_CHANNELS;
  fmt->dtype = g->dtype == ENGINE_FP16   ? REID_PRECISION_FP16
               : g->dtype == ENGINE_BF16 ? REID_PRECISION_BF16
                                         : REID_PRECISION_FP32;
  return REID_OK;
}

reid_status reid_cuda_engine_run(reid_engine *e, int n, float *embedding) {
  if (!reid_engine_is_cuda(e)) return reid_fail(REID_EINVAL, "engine: not a CUDA engine");
  cuda_engine *g = e->impl;
  if (n < 1 || n > g->max_batch || !embedding)
    return reid_fail(REID_EINVAL, "engine: batch %d outside 1..%d (or no output)", n, g->max_batch);
  cuda_state *s;
  REID_TRY(cuda_enter(g->be, &s));
  return run_n(g, n, embedding);
}

reid_status engine_cuda_init(reid_engine *e) {
  reid_net *net = e->net;
  reid_backend *be = reid_net_backend(net);
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  cuda_engine *g = calloc(1, sizeof *g);
  if (!g) return reid_fail(REID_ENOMEM, "engine: out of memory");
  e->impl = g;
  e->embed = cuda_embed;
  e->destroy = cuda_engine_destroy;
  g->be = be;
  g->s = s;
  g->max_batch = e->max_batch;
  g->dim = e->dim;
  switch (e->precision) {
  case REID_PRECISION_FP32:
    g->dtype = ENGINE_FP32, g->dt = CUDNN_DATA_FLOAT, g->math = CUDNN_FMA_MATH;
    break;
  case REID_PRECISION_TF32:
    g->dtype = ENGINE_FP32, g->dt = CUDNN_DATA_FLOAT, g->math = CUDNN_DEFAULT_MATH;
    break;
  case REID_PRECISION_FP16:
    g->dtype = ENGINE_FP16, g->dt = CUDNN_DATA_HALF, g->math = CUDNN_TENSOR_OP_MATH;
    break;
  case REID_PRECISION_BF16:
    g->dtype = ENGINE_BF16, g->dt = CUDNN_DATA_BFLOAT16, g->math = CUDNN_TENSOR_OP_MATH;
    break;
  case REID_PRECISION_INT8:
    g->dtype = ENGINE_INT8, g->dt = CUDNN_DATA_INT8, g->math = CUDNN_DEFAULT_MATH;
    break;
  default: return reid_fail(REID_EINVAL, "engine: unknown precision %d", (int)e->precision);
  }
  g->elem = g->dtype == ENGINE_FP32 ? 4 : g->dtype == ENGINE_INT8 ? 1 : 2;
  const reid_model_config *cfg = reid_net_config(net);
  g->in_c = 3, g->in_h = cfg->input_height, g->in_w = cfg->input_width;

  g->n_acts = net->n_acts;
  g->acts = calloc((size_t)g->n_acts, sizeof *g->acts);
  if (!g->acts) return reid_fail(REID_ENOMEM, "engine: out of memory");
  for (int a = 0; a < g->n_acts; a++)
    g->acts[a] = (eact){net->acts[a].c, net->acts[a].h, net->acts[a].w, -1, 1.0f, 0};
  g->input_act = 0;
  g->acts[0].c = ENGINE_INPUT_CHANNELS;

  float *params = NULL, *buffers = NULL;
  REID_TRY(reid_net_download(net, &params, &buffers));
  reid_status st = rewrite(g, net, params, buffers);
  if (st == REID_OK) st = neck(g, net, params, buffers);
  if (st == REID_OK && g->dtype == ENGINE_INT8) st = engine_int8_prepare(g, net);
  free(params);
  free(buffers);
  REID_TRY(st);
  REID_TRY(assign_slots(g));
  REID_TRY(alloc_buffers(g));

  for (int n = 1; n < g->max_batch && g->n_buckets < ENGINE_MAX_BUCKETS - 1; n *= 2)
    g->bucket_n[g->n_buckets++] = n;
  g->bucket_n[g->n_buckets++] = g->max_batch;

  snprintf(e->description, sizeof e->description, "cuda/cudnn %s NHWC (BN folded, %s, graphs)",
           reid_precision_name(e->precision),
           g->dtype == ENGINE_INT8 ? "int32 sums, per-channel scales" : "fused");
  /* the largest plan now, so that a configuration cuDNN cannot run fails here */
  eplan *p;
  return plan_for(g, g->max_batch, &p);
}
