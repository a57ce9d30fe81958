/* Running a network description (net_graph.h) on a backend: lifetime,
 * accessors, the training forward and backward of every node kind, and the
 * re-ID head (temporal mean, BNNeck, classifier). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_graph.h"

#define BN_EPS      1e-5f
#define BN_MOMENTUM 0.1f

/* ---- lifetime ---- */

#define BE_ALLOC(ptr, count)                                                                       \
  do {                                                                                             \
    (ptr) = be->ops->alloc(be, sizeof(*(ptr)) * (size_t)(count));                                  \
    if (!(ptr)) return reid_fail(REID_ENOMEM, "network: out of %s memory", be->name);              \
  } while (0)
#define BE_FREE(ptr)                                                                               \
  do {                                                                                             \
    if (ptr) be->ops->free(be, (ptr));                                                             \
    (ptr) = NULL;                                                                                  \
  } while (0)

const char *net_node_kind_name(net_node_kind kind) {
  static const char *const names[] = {[NODE_CONV] = "convolution",
                                      [NODE_BN] = "batch norm",
                                      [NODE_RELU] = "ReLU",
                                      [NODE_RELU6] = "ReLU6",
                                      [NODE_SIGMOID] = "sigmoid",
                                      [NODE_ADD] = "add",
                                      [NODE_MUL] = "channel gate",
                                      [NODE_MAXPOOL] = "max pooling",
                                      [NODE_AVGPOOL] = "average pooling",
                                      [NODE_GAP] = "global average pooling",
                                      [NODE_IN] = "instance norm",
                                      [NODE_CONCAT] = "channel concat",
                                      [NODE_SLICE] = "channel slice"};
  return (unsigned)kind < sizeof names / sizeof names[0] && names[kind] ? names[kind] : "unknown";
}

static void free_activations(reid_net *net) {
  reid_backend *be = net->be;
  for (int i = 0; i < net->n_acts; i++) {
    BE_FREE(net->acts[i].data);
    BE_FREE(net->acts[i].grad);
  }
  for (int i = 0; i < net->n_nodes; i++) {
    net_node *n = &net->nodes[i];
    BE_FREE(n->argmax);
    if (n->kind == NODE_IN) { /* per-call statistics; BN's live with the parameters */
      BE_FREE(n->save_mean);
      BE_FREE(n->save_invstd);
    }
  }
  BE_FREE(net->scratch);
  BE_FREE(net->param_scratch);
  BE_FREE(net->pooled);
  BE_FREE(net->bnfeat);
  BE_FREE(net->embedding);
  BE_FREE(net->logits_frame);
  BE_FREE(net->logits);
  BE_FREE(net->d_bnfeat);
  BE_FREE(net->d_logits_frame);
  BE_FREE(net->d_head_tmp);
  net->capacity = net->grad_capacity = 0;
}

void reid_net_destroy(reid_net *net) {
  if (!net) return;
  reid_backend *be = net->be;
  free_activations(net);
  for (int i = 0; i < net->n_nodes; i++) {
    BE_FREE(net->nodes[i].save_mean);
    BE_FREE(net->nodes[i].save_invstd);
  }
  BE_FREE(net->neck_save_mean);
  BE_FREE(net->neck_save_invstd);
  BE_FREE(net->params);
  BE_FREE(net->grads);
  BE_FREE(net->buffers);
  free(net->tensors);
  free(net->tensor_init);
  free(net->nodes);
  free(net->acts);
  free(net->act_range);
  free(net);
}

static reid_status alloc_params(reid_net *net) {
  reid_backend *be = net->be;
  BE_ALLOC(net->params, net->n_params);
  BE_ALLOC(net->grads, net->n_params);
  BE_ALLOC(net->buffers, net->n_buffers ? net->n_buffers : 1);
  REID_TRY(be->ops->fill(be, net->grads, net->n_params, 0.0f));
  for (int i = 0; i < net->n_nodes; i++) {
    net_node *n = &net->nodes[i];
    if (n->kind != NODE_BN) continue;
    int c = net->acts[n->in].c;
    BE_ALLOC(n->save_mean, c);
    BE_ALLOC(n->save_invstd, c);
  }
  if (net->cfg.bnneck) {
    int d = net->feature_dim;
    BE_ALLOC(net->neck_save_mean, d);
    BE_ALLOC(net->neck_save_invstd, d);
  }
  return REID_OK;
}

static reid_status net_create(const reid_model_config *cfg, reid_backend *be, int init,
                              net_build_fn build, void *ctx, reid_net **out) {
  *out = NULL;
  REID_TRY(reid_model_config_validate(cfg));
  reid_net *net = calloc(1, sizeof *net);
  if (!net) return reid_fail(REID_ENOMEM, "network: out of memory");
  net->cfg = *cfg;
  net->be = be;
  reid_status st = build ? build(net, ctx) : reid_arch_build(net);
  if (st == REID_OK) st = alloc_params(net);
  if (st == REID_OK && init) st = reid_net_init_weights(net, 0);
  if (st == REID_OK && !init) st = be->ops->fill(be, net->params, net->n_params, 0.0f);
  if (st == REID_OK && !init) st = be->ops->fill(be, net->buffers, net->n_buffers, 0.0f);
  if (st != REID_OK) {
    reid_net_destroy(net);
    return st;
  }
  *out = net;
  return REID_OK;
}

reid_status reid_net_create(const reid_model_config *cfg, reid_backend *be, reid_net **out) {
  return net_create(cfg, be, 1, NULL, NULL, out);
}

reid_status reid_net_create_empty(const reid_model_config *cfg, reid_backend *be, reid_net **out) {
  return net_create(cfg, be, 0, NULL, NULL, out);
}

reid_status net_create_built(const reid_model_config *cfg, reid_backend *be, net_build_fn build,
                             void *ctx, reid_net **out) {
  return net_create(cfg, be, 0, build, ctx, out);
}

/* ---- accessors ---- */

const reid_model_config *reid_net_config(const reid_net *net) {
  return &net->cfg;
}
reid_backend *reid_net_backend(const reid_net *net) {
  return net->be;
}
int reid_net_feature_dim(const reid_net *net) {
  return net->feature_dim;
}
int reid_net_tensor_count(const reid_net *net) {
  return net->n_tensors;
}

const reid_tensor_view *reid_net_tensor(const reid_net *net, int index) {
  return index >= 0 && index < net->n_tensors ? &net->tensors[index] : NULL;
}

const reid_tensor_view *reid_net_find(const reid_net *net, const char *name) {
  for (int i = 0; i < net->n_tensors; i++)
    if (!strcmp(net->tensors[i].name, name)) return &net->tensors[i];
  return NULL;
}

float *reid_net_tensor_data(reid_net *net, const reid_tensor_view *t) {
  return (t->trainable ? net->params : net->buffers) + t->offset;
}

float *reid_net_tensor_grad(reid_net *net, const reid_tensor_view *t) {
  return t->trainable ? net->grads + t->offset : NULL;
}

float *reid_net_params(reid_net *net, size_t *count) {
  if (count) *count = net->n_params;
  return net->params;
}

float *reid_net_buffers(reid_net *net, size_t *count) {
  if (count) *count = net->n_buffers;
  return net->buffers;
}

float *reid_net_grads(reid_net *net, size_t *count) {
  if (count) *count = net->n_params;
  return net->grads;
}

const float *reid_net_embedding(const reid_net *net) {
  return net->embedding;
}
const float *reid_net_pooled(const reid_net *net) {
  return net->pooled;
}
const float *reid_net_logits(const reid_net *net) {
  return net->cls_weight >= 0 ? net->logits : NULL;
}

static float *tdata(reid_net *net, int index) {
  return index < 0 ? NULL : reid_net_tensor_data(net, &net->tensors[index]);
}
static float *tgrad(reid_net *net, int index) {
  return index < 0 ? NULL : reid_net_tensor_grad(net, &net->tensors[index]);
}

/* ---- forward ---- */

static reid_status ensure_activations(reid_net *net, int frames_total, int batch) {
  reid_backend *be = net->be;
  if (frames_total > net->capacity) {
    free_activations(net);
    int cap = frames_total;
    size_t largest = 0;
    for (int i = 0; i < net->n_acts; i++) {
      size_t sz = net_act_size(&net->acts[i]);
      BE_ALLOC(net->acts[i].data, sz * cap);
      if (sz > largest) largest = sz;
    }
    for (int i = 0; i < net->n_nodes; i++) {
      net_node *n = &net->nodes[i];
      if (n->kind == NODE_MAXPOOL) BE_ALLOC(n->argmax, net_act_size(&net->acts[n->out]) * cap);
      if (n->kind == NODE_IN) {
        BE_ALLOC(n->save_mean, (size_t)net->acts[n->in].c * cap);
        BE_ALLOC(n->save_invstd, (size_t)net->acts[n->in].c * cap);
      }
    }
    int d = reid_net_feature_dim(net), k = net->cfg.num_classes;
    BE_ALLOC(net->scratch, largest * cap);
    BE_ALLOC(net->param_scratch, 2 * net->largest_param + 1);
    BE_ALLOC(net->pooled, (size_t)d * cap);
    BE_ALLOC(net->embedding, (size_t)d * cap);
    BE_ALLOC(net->bnfeat, (size_t)d * cap);
    if (k > 0) {
      BE_ALLOC(net->logits_frame, (size_t)k * cap);
      BE_ALLOC(net->logits, (size_t)k * cap);
    }
    net->capacity = cap;
  }
  (void)batch;
  return REID_OK;
}

/* Ops beyond ResNet's may be missing on a backend (NULL in its table). */
#define NEED_OP(op)                                                                                \
  do {                                                                                             \
    if (!ops->op)                                                                                  \
      return reid_fail(REID_EUNSUPPORTED, "%s: op %s is not available on the %s backend",          \
                       reid_arch_name(net->cfg.arch), #op, be->name);                              \
  } while (0)

static reid_status forward_node(reid_net *net, net_node *n, int frames_total, int train) {
  reid_backend *be = net->be;
  const reid_backend_ops *ops = be->ops;
  net_act *in = &net->acts[n->in], *out = &net->acts[n->out];
  int N = frames_total;
  switch (n->kind) {
  case NODE_CONV: {
    reid_conv2d_desc d = n->conv;
    d.n = N;
    return ops->conv2d_forward(be, &d, in->data, tdata(net, n->weight), tdata(net, n->bias),
                               out->data);
  }
  case NODE_BN:
    if (train)
      return ops->batchnorm_forward_train(be, N, in->c, in->h * in->w, in->data,
                                          tdata(net, n->weight), tdata(net, n->bias), BN_MOMENTUM,
                                          BN_EPS, tdata(net, n->mean), tdata(net, n->var),
                                          out->data, n->save_mean, n->save_invstd);
    return ops->batchnorm_forward_eval(be, N, in->c, in->h * in->w, in->data, tdata(net, n->weight),
                                       tdata(net, n->bias), tdata(net, n->mean), tdata(net, n->var),
                                       BN_EPS, out->data);
  case NODE_RELU: return ops->relu_forward(be, net_act_size(in) * N, in->data, out->data);
  case NODE_RELU6:
    NEED_OP(relu6_forward);
    return ops->relu6_forward(be, net_act_size(in) * N, in->data, out->data);
  case NODE_SIGMOID:
    NEED_OP(sigmoid_forward);
    return ops->sigmoid_forward(be, net_act_size(in) * N, in->data, out->data);
  case NODE_ADD:
    return ops->add(be, net_act_size(in) * N, in->data, net->acts[n->in2].data, out->data);
  case NODE_MUL:
    NEED_OP(channel_mul_forward);
    return ops->channel_mul_forward(be, N, in->c, in->h * in->w, in->data, net->acts[n->in2].data,
                                    out->data);
  case NODE_AVGPOOL: {
    NEED_OP(avgpool2d_forward);
    reid_pool2d_desc d = n->pool;
    d.n = N;
    return ops->avgpool2d_forward(be, &d, in->data, out->data);
  }
  case NODE_MAXPOOL: {
    reid_pool2d_desc d = n->pool;
    d.n = N;
    return ops->maxpool2d_forward(be, &d, in->data, out->data, n->argmax);
  }
  case NODE_GAP:
    return ops->avgpool_global_forward(be, N, in->c, in->h * in->w, in->data, out->data);
  case NODE_IN: /* per-sample statistics in training and in eval alike */
    NEED_OP(instancenorm_forward);
    return ops->instancenorm_forward(be, N, in->c, in->h * in->w, in->data, tdata(net, n->weight),
                                     tdata(net, n->bias), BN_EPS, out->data, n->save_mean,
                                     n->save_invstd);
  case NODE_CONCAT: {
    NEED_OP(channel_copy);
    const net_act *in2 = &net->acts[n->in2];
    const int hw = in->h * in->w;
    REID_TRY(ops->channel_copy(be, N, hw, in->c, in->data, in->c, 0, out->data, out->c, 0));
    return ops->channel_copy(be, N, hw, in2->c, in2->data, in2->c, 0, out->data, out->c, in->c);
  }
  case NODE_SLICE:
    NEED_OP(channel_copy);
    return ops->channel_copy(be, N, in->h * in->w, out->c, in->data, in->c, n->c0, out->data,
                             out->c, 0);
  }
  return reid_fail(REID_EINVAL, "network: unknown node kind %d", (int)n->kind);
}

static reid_status forward_head(reid_net *net, int B, int T, int train) {
  reid_backend *be = net->be;
  const reid_backend_ops *ops = be->ops;
  int N = B * T, D = reid_net_feature_dim(net), K = net->cfg.num_classes;
  const float *feat = net->acts[net->feature_act].data;
  REID_TRY(ops->temporal_mean_forward(be, B, T, D, feat, net->pooled));
  const float *cls_in = feat;
  if (net->cfg.bnneck) {
    if (train && N < 2)
      return reid_fail(REID_EINVAL, "BNNeck in training mode needs more than one frame per batch");
    if (train)
      REID_TRY(ops->batchnorm_forward_train(
          be, N, D, 1, feat, tdata(net, net->neck_weight), tdata(net, net->neck_bias), BN_MOMENTUM,
          BN_EPS, tdata(net, net->neck_mean), tdata(net, net->neck_var), net->bnfeat,
          net->neck_save_mean, net->neck_save_invstd));
    else
      REID_TRY(ops->batchnorm_forward_eval(be, N, D, 1, feat, tdata(net, net->neck_weight),
                                           tdata(net, net->neck_bias), tdata(net, net->neck_mean),
                                           tdata(net, net->neck_var), BN_EPS, net->bnfeat));
    cls_in = net->bnfeat;
  }
  if (net->cfg.embed_after_bn)
    REID_TRY(ops->temporal_mean_forward(be, B, T, D, net->bnfeat, net->embedding));
  else
    REID_TRY(ops->copy(be, net->embedding, net->pooled, sizeof(float) * B * D));
  if (K > 0) {
    REID_TRY(ops->linear_forward(be, N, D, K, cls_in, tdata(net, net->cls_weight),
                                 tdata(net, net->cls_bias), net->logits_frame));
    REID_TRY(ops->temporal_mean_forward(be, B, T, K, net->logits_frame, net->logits));
  }
  return REID_OK;
}

reid_status reid_net_forward(reid_net *net, const float *x, int batch, int frames, int train) {
  if (batch < 1 || frames < 1 || batch > (1 << 20) / frames)
    return reid_fail(REID_EINVAL, "network: invalid batch %d x %d frames", batch, frames);
  if (!x) return reid_fail(REID_EINVAL, "network: NULL input");
  int N = batch * frames;
  REID_TRY(ensure_activations(net, N, batch));
  reid_backend *be = net->be;
  REID_TRY(
      be->ops->copy(be, net->acts[0].data, x, sizeof(float) * net_act_size(&net->acts[0]) * N));
  for (int i = 0; i < net->n_nodes; i++) {
    reid_status st = forward_node(net, &net->nodes[i], N, train);
    if (st != REID_OK) return st;
  }
  REID_TRY(forward_head(net, batch, frames, train));
  net->batch = batch;
  net->frames = frames;
  net->trained_forward = train;
  return REID_OK;
}

/* ---- backward ---- */

/* Gradients flow with "overwrite" ops; an activation read by two nodes gets
 * the second contribution through the scratch buffer and `accumulate`. */
typedef struct grad_state {
  unsigned char *written;       /* per activation */
  unsigned char *param_written; /* per tensor: a weight shared by several nodes (OSNet's gate) */
} grad_state;

/* Where a backward op should write a parameter's gradient: the gradient
 * itself the first time, the parameter scratch afterwards. */
static float *param_target(reid_net *net, grad_state *g, int tensor, int slot) {
  if (tensor < 0) return NULL;
  return g->param_written[tensor] ? net->param_scratch + slot * net->largest_param
                                  : tgrad(net, tensor);
}

static reid_status finish_param(reid_net *net, grad_state *g, int tensor, int slot) {
  if (tensor < 0) return REID_OK;
  if (g->param_written[tensor]) {
    reid_backend *be = net->be;
    REID_TRY(be->ops->accumulate(be, net->tensors[tensor].numel, 1.0f,
                                 net->param_scratch + slot * net->largest_param,
                                 tgrad(net, tensor)));
  }
  g->param_written[tensor] = 1;
  return REID_OK;
}

static reid_status ensure_gradients(reid_net *net) {
  reid_backend *be = net->be;
  if (net->grad_capacity >= net->capacity) return REID_OK;
  int cap = net->capacity, d = reid_net_feature_dim(net), k = net->cfg.num_classes;
  for (int i = 1; i < net->n_acts; i++) {
    BE_FREE(net->acts[i].grad);
    BE_ALLOC(net->acts[i].grad, net_act_size(&net->acts[i]) * cap);
  }
  BE_FREE(net->d_bnfeat);
  BE_FREE(net->d_head_tmp);
  BE_FREE(net->d_logits_frame);
  BE_ALLOC(net->d_bnfeat, (size_t)d * cap);
  BE_ALLOC(net->d_head_tmp, (size_t)d * cap);
  if (k > 0) BE_ALLOC(net->d_logits_frame, (size_t)k * cap);
  net->grad_capacity = cap;
  return REID_OK;
}

/* Where a backward op should write d(act): the gradient itself the first
 * time, the scratch buffer afterwards (then `finish_grad` adds it in). */
static float *grad_target(reid_net *net, grad_state *g, int act) {
  if (act == 0) return NULL; /* no gradient for the input image */
  return g->written[act] ? net->scratch : net->acts[act].grad;
}

static reid_status finish_grad(reid_net *net, grad_state *g, int act, int N) {
  if (act == 0) return REID_OK;
  if (g->written[act]) {
    reid_backend *be = net->be;
    REID_TRY(be->ops->accumulate(be, net_act_size(&net->acts[act]) * N, 1.0f, net->scratch,
                                 net->acts[act].grad));
  }
  g->written[act] = 1;
  return REID_OK;
}

static reid_status backward_node(reid_net *net, grad_state *g, net_node *n, int N) {
  reid_backend *be = net->be;
  const reid_backend_ops *ops = be->ops;
  net_act *in = &net->acts[n->in], *out = &net->acts[n->out];
  if (!g->written[n->out]) return REID_OK; /* nothing flowed here */
  const float *dy = out->grad;
  float *dx = grad_target(net, g, n->in);
  switch (n->kind) {
  case NODE_CONV: {
    reid_conv2d_desc d = n->conv;
    d.n = N;
    /* a weight shared by several nodes (OSNet's gate) accumulates through the scratch */
    float *dw = param_target(net, g, n->weight, 0), *db = param_target(net, g, n->bias, 1);
    REID_TRY(ops->conv2d_backward(be, &d, in->data, tdata(net, n->weight), dy, dx, dw, db));
    REID_TRY(finish_param(net, g, n->weight, 0));
    REID_TRY(finish_param(net, g, n->bias, 1));
    break;
  }
  case NODE_BN: {
    if (g->param_written[n->weight])
      return reid_fail(REID_EUNSUPPORTED, "network: a batch norm shared by two nodes");
    float *dgamma = tgrad(net, n->weight), *dbeta = tgrad(net, n->bias);
    if (net->trained_forward)
      REID_TRY(ops->batchnorm_backward(be, N, in->c, in->h * in->w, in->data, tdata(net, n->weight),
                                       n->save_mean, n->save_invstd, dy, dx, dgamma, dbeta));
    else
      REID_TRY(ops->batchnorm_backward_eval(be, N, in->c, in->h * in->w, in->data,
                                            tdata(net, n->weight), tdata(net, n->mean),
                                            tdata(net, n->var), BN_EPS, dy, dx, dgamma, dbeta));
    g->param_written[n->weight] = g->param_written[n->bias] = 1;
    break;
  }
  case NODE_RELU:
    if (dx) REID_TRY(ops->relu_backward(be, net_act_size(in) * N, out->data, dy, dx));
    break;
  case NODE_RELU6:
    NEED_OP(relu6_backward);
    if (dx) REID_TRY(ops->relu6_backward(be, net_act_size(in) * N, out->data, dy, dx));
    break;
  case NODE_SIGMOID:
    NEED_OP(sigmoid_backward);
    if (dx) REID_TRY(ops->sigmoid_backward(be, net_act_size(in) * N, out->data, dy, dx));
    break;
  case NODE_MUL: {
    NEED_OP(channel_mul_backward);
    const net_act *gate = &net->acts[n->in2];
    const int C = in->c, HW = in->h * in->w;
    if (dx) {
      REID_TRY(ops->channel_mul_backward(be, N, C, HW, in->data, gate->data, dy, dx, NULL));
      REID_TRY(finish_grad(net, g, n->in, N));
    }
    float *dg = grad_target(net, g, n->in2);
    if (dg) {
      REID_TRY(ops->channel_mul_backward(be, N, C, HW, in->data, gate->data, dy, NULL, dg));
      REID_TRY(finish_grad(net, g, n->in2, N));
    }
    return REID_OK;
  }
  case NODE_AVGPOOL: {
    NEED_OP(avgpool2d_backward);
    reid_pool2d_desc d = n->pool;
    d.n = N;
    if (dx) REID_TRY(ops->avgpool2d_backward(be, &d, dy, dx));
    break;
  }
  case NODE_ADD: {
    size_t count = net_act_size(in) * N;
    int inputs[2] = {n->in, n->in2};
    for (int i = 0; i < 2; i++) {
      int a = inputs[i];
      if (a == 0) continue;
      if (g->written[a])
        REID_TRY(ops->accumulate(be, count, 1.0f, dy, net->acts[a].grad));
      else
        REID_TRY(ops->copy(be, net->acts[a].grad, dy, sizeof(float) * count));
      g->written[a] = 1;
    }
    return REID_OK;
  }
  case NODE_MAXPOOL: {
    reid_pool2d_desc d = n->pool;
    d.n = N;
    if (dx) REID_TRY(ops->maxpool2d_backward(be, &d, n->argmax, dy, dx));
    break;
  }
  case NODE_GAP:
    if (dx) REID_TRY(ops->avgpool_global_backward(be, N, in->c, in->h * in->w, dy, dx));
    break;
  case NODE_IN:
    NEED_OP(instancenorm_backward);
    if (g->param_written[n->weight])
      return reid_fail(REID_EUNSUPPORTED, "network: an instance norm shared by two nodes");
    REID_TRY(ops->instancenorm_backward(be, N, in->c, in->h * in->w, in->data,
                                        tdata(net, n->weight), n->save_mean, n->save_invstd, dy, dx,
                                        tgrad(net, n->weight), tgrad(net, n->bias)));
    g->param_written[n->weight] = g->param_written[n->bias] = 1;
    break;
  case NODE_CONCAT: { /* the two channel blocks of dy go back to their inputs */
    NEED_OP(channel_copy);
    const int hw = in->h * in->w, inputs[2] = {n->in, n->in2};
    for (int i = 0, c0 = 0; i < 2; c0 += net->acts[inputs[i]].c, i++) {
      float *d = grad_target(net, g, inputs[i]);
      if (!d) continue;
      const int c = net->acts[inputs[i]].c;
      REID_TRY(ops->channel_copy(be, N, hw, c, dy, out->c, c0, d, c, 0));
      REID_TRY(finish_grad(net, g, inputs[i], N));
    }
    return REID_OK;
  }
  case NODE_SLICE: /* dy into its channels, zero elsewhere */
    NEED_OP(channel_copy);
    if (dx) {
      REID_TRY(ops->fill(be, dx, net_act_size(in) * N, 0.0f));
      REID_TRY(ops->channel_copy(be, N, in->h * in->w, out->c, dy, out->c, 0, dx, in->c, n->c0));
    }
    break;
  }
  return dx ? finish_grad(net, g, n->in, N) : REID_OK;
}

static reid_status backward_head(reid_net *net, grad_state *g, const float *d_embedding,
                                 const float *d_logits) {
  reid_backend *be = net->be;
  const reid_backend_ops *ops = be->ops;
  int B = net->batch, T = net->frames, N = B * T, D = reid_net_feature_dim(net);
  int K = net->cfg.num_classes;
  int feat = net->feature_act;
  float *d_feat = net->acts[feat].grad;
  const float *feat_data = net->acts[feat].data;
  REID_TRY(ops->fill(be, d_feat, (size_t)N * D, 0.0f));
  int d_bn_live = 0;
  if (d_logits && K > 0) {
    REID_TRY(ops->temporal_mean_backward(be, B, T, K, d_logits, net->d_logits_frame));
    const float *cls_in = net->cfg.bnneck ? net->bnfeat : feat_data;
    float *d_cls_in = net->cfg.bnneck ? net->d_bnfeat : net->d_head_tmp;
    REID_TRY(ops->linear_backward(be, N, D, K, cls_in, tdata(net, net->cls_weight),
                                  net->d_logits_frame, d_cls_in, tgrad(net, net->cls_weight),
                                  tgrad(net, net->cls_bias)));
    if (net->cfg.bnneck)
      d_bn_live = 1;
    else
      REID_TRY(ops->accumulate(be, (size_t)N * D, 1.0f, net->d_head_tmp, d_feat));
  }
  if (d_embedding) {
    REID_TRY(ops->temporal_mean_backward(be, B, T, D, d_embedding, net->d_head_tmp));
    if (net->cfg.embed_after_bn) {
      if (d_bn_live)
        REID_TRY(ops->accumulate(be, (size_t)N * D, 1.0f, net->d_head_tmp, net->d_bnfeat));
      else
        REID_TRY(ops->copy(be, net->d_bnfeat, net->d_head_tmp, sizeof(float) * N * D));
      d_bn_live = 1;
    } else {
      REID_TRY(ops->accumulate(be, (size_t)N * D, 1.0f, net->d_head_tmp, d_feat));
    }
  }
  if (d_bn_live) { /* BNNeck: the bias is frozen, so no dbeta */
    if (net->trained_forward)
      REID_TRY(ops->batchnorm_backward(be, N, D, 1, feat_data, tdata(net, net->neck_weight),
                                       net->neck_save_mean, net->neck_save_invstd, net->d_bnfeat,
                                       net->d_head_tmp, tgrad(net, net->neck_weight), NULL));
    else
      REID_TRY(ops->batchnorm_backward_eval(be, N, D, 1, feat_data, tdata(net, net->neck_weight),
                                            tdata(net, net->neck_mean), tdata(net, net->neck_var),
                                            BN_EPS, net->d_bnfeat, net->d_head_tmp,
                                            tgrad(net, net->neck_weight), NULL));
    REID_TRY(ops->accumulate(be, (size_t)N * D, 1.0f, net->d_head_tmp, d_feat));
  }
  g->written[feat] = 1;
  return REID_OK;
}

reid_status reid_net_backward(reid_net *net, const float *d_embedding, const float *d_logits) {
  if (!net->batch) return reid_fail(REID_EINVAL, "network: backward before forward");
  reid_backend *be = net->be;
  REID_TRY(ensure_gradients(net));
  /* parameters that receive no gradient this step (e.g. an unused head) read as 0 */
  REID_TRY(be->ops->fill(be, net->grads, net->n_params, 0.0f));
  grad_state g = {calloc((size_t)net->n_acts, 1), calloc((size_t)net->n_tensors, 1)};
  if (!g.written || !g.param_written) {
    free(g.written);
    free(g.param_written);
    return reid_fail(REID_ENOMEM, "network: out of memory");
  }
  int N = net->batch * net->frames;
  reid_status st = backward_head(net, &g, d_embedding, d_logits);
  for (int i = net->n_nodes - 1; i >= 0 && st == REID_OK; i--)
    st = backward_node(net, &g, &net->nodes[i], N);
  free(g.written);
  free(g.param_written);
  return st;
}
