/* Building a network description: tensors with upstream names, activations
 * and typed nodes (see net_graph.h), and the upstream weight initialisations. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_graph.h"
#include "rng.h"

static int failed(reid_net *net) {
  net->build_failed = 1;
  return -1;
}

int net_tensor(reid_net *net, const char *name, int ndim, const int64_t *shape, int trainable,
               net_init init) {
  if (net->build_failed) return -1;
  if (net->n_tensors == net->cap_tensors) {
    int cap = net->cap_tensors ? 2 * net->cap_tensors : 128;
    reid_tensor_view *t = realloc(net->tensors, sizeof *t * cap);
    if (t) net->tensors = t;
    net_init *k = t ? realloc(net->tensor_init, sizeof *k * cap) : NULL;
    if (!t || !k) return failed(net);
    net->tensor_init = k;
    net->cap_tensors = cap;
  }
  reid_tensor_view *t = &net->tensors[net->n_tensors];
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s", name);
  t->ndim = ndim;
  t->numel = 1;
  for (int i = 0; i < ndim; i++) {
    t->shape[i] = shape[i];
    t->numel *= (size_t)shape[i];
  }
  t->trainable = trainable;
  size_t *counter = trainable ? &net->n_params : &net->n_buffers;
  t->offset = *counter;
  *counter += t->numel;
  if (t->numel > net->largest_param) net->largest_param = t->numel;
  net->tensor_init[net->n_tensors] = init;
  return net->n_tensors++;
}

static int add_act(reid_net *net, int c, int h, int w) {
  if (net->build_failed) return -1;
  if (net->n_acts == net->cap_acts) {
    int cap = net->cap_acts ? 2 * net->cap_acts : 128;
    net_act *a = realloc(net->acts, sizeof *a * cap);
    if (!a) return failed(net);
    net->acts = a;
    net->cap_acts = cap;
  }
  net->acts[net->n_acts] = (net_act){c, h, w, NULL, NULL};
  return net->n_acts++;
}

/* Appends a node reading `in` (and in2) with a new output activation c x h x w. */
static net_node *add_node(reid_net *net, net_node_kind kind, int in, int in2, int c, int h, int w) {
  if (net->build_failed || in < 0) return failed(net), NULL;
  if (net->n_nodes == net->cap_nodes) {
    int cap = net->cap_nodes ? 2 * net->cap_nodes : 256;
    net_node *n = realloc(net->nodes, sizeof *n * cap);
    if (!n) return failed(net), NULL;
    net->nodes = n;
    net->cap_nodes = cap;
  }
  int out = add_act(net, c, h, w);
  if (out < 0) return NULL;
  net_node *node = &net->nodes[net->n_nodes++];
  memset(node, 0, sizeof *node);
  node->kind = kind;
  node->in = in;
  node->in2 = in2;
  node->out = out;
  node->weight = node->bias = node->mean = node->var = -1;
  return node;
}

int net_input(reid_net *net, int c, int h, int w) {
  return add_act(net, c, h, w);
}

static int conv_node(reid_net *net, const char *prefix, int in, int c_out, int k, int stride,
                     int pad, int groups, int bias, int weight_ndim, net_init init) {
  if (net->build_failed || in < 0) return failed(net);
  const net_act a = net->acts[in];
  reid_conv2d_desc d;
  if (reid_conv2d_desc_init_grouped(&d, 1, a.c, a.h, a.w, c_out, k, stride, pad, groups) != REID_OK)
    return failed(net);
  char name[64];
  int64_t wshape[4] = {c_out, a.c / groups, k, k}, bshape[1] = {c_out};
  snprintf(name, sizeof name, "%s.weight", prefix);
  int w = net_tensor(net, name, weight_ndim, wshape, 1, init);
  int b = -1;
  if (bias) {
    snprintf(name, sizeof name, "%s.bias", prefix);
    b = net_tensor(net, name, 1, bshape, 1, init == INIT_LINEAR ? INIT_LINEAR : INIT_ZERO);
  }
  net_node *node = add_node(net, NODE_CONV, in, -1, c_out, d.h_out, d.w_out);
  if (!node || w < 0) return failed(net);
  node->weight = w;
  node->bias = b;
  node->conv = d;
  return node->out;
}

int net_conv(reid_net *net, const char *prefix, int in, int c_out, int k, int stride, int pad,
             int groups, int bias) {
  return conv_node(net, prefix, in, c_out, k, stride, pad, groups, bias, 4, INIT_KAIMING_OUT);
}

int net_conv_shared(reid_net *net, int node, int in) {
  if (net->build_failed || in < 0 || node < 0 || net->nodes[node].kind != NODE_CONV)
    return failed(net);
  const net_node t = net->nodes[node];
  const net_act a = net->acts[in];
  reid_conv2d_desc d;
  if (a.c != t.conv.c_in ||
      reid_conv2d_desc_init_grouped(&d, 1, a.c, a.h, a.w, t.conv.c_out, t.conv.k, t.conv.stride,
                                    t.conv.pad, t.conv.groups) != REID_OK)
    return failed(net);
  net_node *n = add_node(net, NODE_CONV, in, -1, d.c_out, d.h_out, d.w_out);
  if (!n) return -1;
  n->weight = t.weight;
  n->bias = t.bias;
  n->conv = d;
  return n->out;
}

int net_linear(reid_net *net, const char *prefix, int in, int out, int bias, net_init init) {
  if (net->build_failed || in < 0) return failed(net);
  if (net->acts[in].h != 1 || net->acts[in].w != 1) return failed(net);
  return conv_node(net, prefix, in, out, 1, 1, 0, 1, bias, 2, init);
}

int net_bn(reid_net *net, const char *prefix, int in) {
  if (net->build_failed || in < 0) return failed(net);
  const net_act a = net->acts[in];
  int64_t cshape[1] = {a.c};
  int idx[4];
  static const char *suffix[4] = {"weight", "bias", "running_mean", "running_var"};
  static const net_init init[4] = {INIT_ONE, INIT_ZERO, INIT_ZERO, INIT_ONE};
  for (int i = 0; i < 4; i++) {
    char name[64];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix[i]);
    idx[i] = net_tensor(net, name, 1, cshape, i < 2, init[i]);
  }
  net_node *bn = add_node(net, NODE_BN, in, -1, a.c, a.h, a.w);
  if (!bn) return -1;
  bn->weight = idx[0];
  bn->bias = idx[1];
  bn->mean = idx[2];
  bn->var = idx[3];
  return bn->out;
}

int net_unary(reid_net *net, net_node_kind kind, int in) {
  if (net->build_failed || in < 0) return failed(net);
  const net_act a = net->acts[in];
  net_node *n = kind == NODE_GAP ? add_node(net, kind, in, -1, a.c, 1, 1)
                                 : add_node(net, kind, in, -1, a.c, a.h, a.w);
  return n ? n->out : -1;
}

int net_binary(reid_net *net, net_node_kind kind, int in, int in2) {
  if (net->build_failed || in < 0 || in2 < 0) return failed(net);
  const net_act a = net->acts[in], b = net->acts[in2];
  int ok = kind == NODE_ADD ? a.c == b.c && a.h == b.h && a.w == b.w
                            : a.c == b.c && b.h == 1 && b.w == 1;
  if (!ok) return failed(net);
  net_node *n = add_node(net, kind, in, in2, a.c, a.h, a.w);
  return n ? n->out : -1;
}

static int pool_node(reid_net *net, net_node_kind kind, int in, int k, int stride, int pad,
                     int ceil_mode) {
  if (net->build_failed || in < 0) return failed(net);
  const net_act a = net->acts[in];
  reid_pool2d_desc d;
  reid_status st = ceil_mode ? reid_pool2d_desc_init_ceil(&d, 1, a.c, a.h, a.w, k, stride, pad)
                             : reid_pool2d_desc_init(&d, 1, a.c, a.h, a.w, k, stride, pad);
  if (st != REID_OK) return failed(net);
  net_node *n = add_node(net, kind, in, -1, a.c, d.h_out, d.w_out);
  if (!n) return -1;
  n->pool = d;
  return n->out;
}

int net_pool(reid_net *net, net_node_kind kind, int in, int k, int stride, int pad) {
  return pool_node(net, kind, in, k, stride, pad, 0);
}

int net_maxpool_ceil(reid_net *net, int in, int k, int stride, int pad) {
  return pool_node(net, NODE_MAXPOOL, in, k, stride, pad, 1);
}

int net_instance_norm(reid_net *net, const char *prefix, int in) {
  if (net->build_failed || in < 0) return failed(net);
  const net_act a = net->acts[in];
  int64_t cshape[1] = {a.c};
  char name[64];
  snprintf(name, sizeof name, "%s.weight", prefix);
  int w = net_tensor(net, name, 1, cshape, 1, INIT_ONE);
  snprintf(name, sizeof name, "%s.bias", prefix);
  int b = net_tensor(net, name, 1, cshape, 1, INIT_ZERO);
  net_node *n = add_node(net, NODE_IN, in, -1, a.c, a.h, a.w);
  if (!n) return -1;
  n->weight = w;
  n->bias = b;
  return n->out;
}

int net_concat(reid_net *net, int a, int b) {
  if (net->build_failed || a < 0 || b < 0) return failed(net);
  const net_act x = net->acts[a], y = net->acts[b];
  if (x.h != y.h || x.w != y.w) return failed(net);
  net_node *n = add_node(net, NODE_CONCAT, a, b, x.c + y.c, x.h, x.w);
  return n ? n->out : -1;
}

int net_slice(reid_net *net, int in, int c0, int c) {
  if (net->build_failed || in < 0) return failed(net);
  const net_act a = net->acts[in];
  if (c0 < 0 || c < 1 || c0 + c > a.c) return failed(net);
  net_node *n = add_node(net, NODE_SLICE, in, -1, c, a.h, a.w);
  if (!n) return -1;
  n->c0 = c0;
  return n->out;
}

int net_conv_bn(reid_net *net, const char *conv_name, const char *bn_name, int in, int c_out, int k,
                int stride, int pad, int groups, int act) {
  int x = net_conv(net, conv_name, in, c_out, k, stride, pad, groups, 0);
  x = net_bn(net, bn_name, x);
  return act < 0 ? x : net_unary(net, (net_node_kind)act, x);
}

reid_status net_finish(reid_net *net, int feature) {
  const reid_model_config *c = &net->cfg;
  if (net->build_failed || feature < 0)
    return reid_fail(REID_EINVAL, "%s: cannot build for input %dx%d (too small, or out of memory)",
                     reid_arch_name(c->arch), c->input_height, c->input_width);
  if (net->acts[feature].h != 1 || net->acts[feature].w != 1 ||
      (c->arch != REID_ARCH_ONNX && net->acts[feature].c != reid_arch_feature_dim(c->arch)))
    return reid_fail(REID_EINVAL, "%s: feature is %dx%dx%d, not %d", reid_arch_name(c->arch),
                     net->acts[feature].c, net->acts[feature].h, net->acts[feature].w,
                     reid_arch_feature_dim(c->arch));
  net->feature_act = feature;
  net->feature_dim = net->acts[feature].c;
  int64_t d = net->feature_dim, k = c->num_classes;
  net->neck_weight = net->neck_bias = net->neck_mean = net->neck_var = -1;
  net->cls_weight = net->cls_bias = -1;
  if (c->bnneck) {
    net->neck_weight = net_tensor(net, "bottleneck.weight", 1, &d, 1, INIT_ONE);
    net->neck_bias = net_tensor(net, "bottleneck.bias", 1, &d, 0, INIT_ZERO); /* frozen at 0 */
    net->neck_mean = net_tensor(net, "bottleneck.running_mean", 1, &d, 0, INIT_ZERO);
    net->neck_var = net_tensor(net, "bottleneck.running_var", 1, &d, 0, INIT_ONE);
    if (k > 0) {
      int64_t s[2] = {k, d};
      net->cls_weight = net_tensor(net, "classifier.weight", 2, s, 1, INIT_NORMAL_0_001);
    }
  } else if (k > 0) {
    int64_t s[2] = {k, d};
    net->cls_weight = net_tensor(net, "fc.weight", 2, s, 1, INIT_LINEAR);
    net->cls_bias = net_tensor(net, "fc.bias", 1, &k, 1, INIT_LINEAR);
  }
  if (net->build_failed) return reid_fail(REID_ENOMEM, "network: out of memory");
  return REID_OK;
}

/* ---- initialisation ---- */

reid_status reid_net_init_weights(reid_net *net, uint64_t seed) {
  reid_backend *be = net->be;
  float *host_p = malloc(sizeof(float) * (net->n_params ? net->n_params : 1));
  float *host_b = malloc(sizeof(float) * (net->n_buffers ? net->n_buffers : 1));
  if (!host_p || !host_b) {
    free(host_p);
    free(host_b);
    return reid_fail(REID_ENOMEM, "network: out of memory");
  }
  reid_rng rng;
  reid_rng_seed(&rng, seed);
  for (int i = 0; i < net->n_tensors; i++) {
    const reid_tensor_view *t = &net->tensors[i];
    float *dst = (t->trainable ? host_p : host_b) + t->offset;
    /* fan_in of a Linear is its weight's second dimension (the bias shares it) */
    int64_t fan_in = t->ndim == 2 ? t->shape[1] : i > 0 ? net->tensors[i - 1].shape[1] : 1;
    float std = 0.0f, bound = 1.0f / sqrtf((float)(fan_in > 0 ? fan_in : 1));
    switch (net->tensor_init[i]) {
    case INIT_ZERO:
    case INIT_ONE:
      for (size_t j = 0; j < t->numel; j++) dst[j] = net->tensor_init[i] == INIT_ONE;
      continue;
    case INIT_LINEAR:
      for (size_t j = 0; j < t->numel; j++) dst[j] = bound * (2.0f * reid_rng_uniform(&rng) - 1.0f);
      continue;
    case INIT_KAIMING_OUT:
      std = sqrtf(2.0f / (float)(t->shape[0] * (t->ndim == 4 ? t->shape[2] * t->shape[3] : 1)));
      break;
    case INIT_NORMAL_0_001: std = 0.001f; break;
    case INIT_NORMAL_0_01: std = 0.01f; break;
    }
    for (size_t j = 0; j < t->numel; j++) dst[j] = std * reid_rng_normal(&rng);
  }
  reid_status st = be->ops->upload(be, net->params, host_p, sizeof(float) * net->n_params);
  if (st == REID_OK) st = be->ops->upload(be, net->buffers, host_b, sizeof(float) * net->n_buffers);
  free(host_p);
  free(host_b);
  return st;
}
