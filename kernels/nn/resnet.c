#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resnet_graph.h"
#include "rng.h"

#define BN_EPS      1e-5f
#define BN_MOMENTUM 0.1f

void reid_model_config_default(reid_model_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->arch = REID_ARCH_RESNET50;
  cfg->last_stride = 1;
  cfg->input_height = 256;
  cfg->input_width = 128;
  const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
  memcpy(cfg->mean, mean, sizeof mean);
  memcpy(cfg->std, std, sizeof std);
}

const char *reid_arch_name(reid_arch arch) {
  switch (arch) {
  case REID_ARCH_RESNET18: return "resnet18";
  case REID_ARCH_RESNET34: return "resnet34";
  case REID_ARCH_RESNET50: return "resnet50";
  }
  return "unknown";
}

reid_status reid_arch_parse(const char *name, reid_arch *arch) {
  for (int a = REID_ARCH_RESNET18; a <= REID_ARCH_RESNET50; a++)
    if (name && !strcmp(name, reid_arch_name(a))) {
      *arch = a;
      return REID_OK;
    }
  return reid_fail(REID_EINVAL,
                   "unknown architecture '%s' (expected resnet18, resnet34 or resnet50)",
                   name ? name : "(null)");
}

int reid_arch_feature_dim(reid_arch arch) {
  return arch == REID_ARCH_RESNET50 ? 2048 : 512;
}

reid_status reid_model_config_validate(const reid_model_config *c) {
  if (c->arch < REID_ARCH_RESNET18 || c->arch > REID_ARCH_RESNET50)
    return reid_fail(REID_EINVAL, "unknown architecture %d", (int)c->arch);
  if (c->last_stride != 1 && c->last_stride != 2)
    return reid_fail(REID_EINVAL, "last_stride must be 1 or 2, not %d", c->last_stride);
  if (c->input_height < 32 || c->input_width < 32 || c->input_height > 4096 ||
      c->input_width > 4096)
    return reid_fail(REID_EINVAL, "input size %dx%d out of range (32..4096)", c->input_height,
                     c->input_width);
  if (c->num_classes < 0 || c->num_classes > 1000000)
    return reid_fail(REID_EINVAL, "num_classes %d out of range", c->num_classes);
  if (c->embed_after_bn && !c->bnneck)
    return reid_fail(REID_EINVAL, "embed_after_bn needs a BNNeck");
  for (int i = 0; i < 3; i++)
    if (!(c->std[i] > 0) || !isfinite(c->mean[i]))
      return reid_fail(REID_EINVAL, "normalisation mean/std invalid (std must be > 0)");
  return REID_OK;
}

/* ---- building the graph ---- */

static int add_tensor(reid_net *net, const char *name, int ndim, const int64_t *shape,
                      int trainable) {
  if (net->n_tensors == net->cap_tensors) {
    int cap = net->cap_tensors ? 2 * net->cap_tensors : 128;
    reid_tensor_view *t = realloc(net->tensors, sizeof *t * cap);
    if (!t) return -1;
    net->tensors = t;
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
  return net->n_tensors++;
}

static int add_act(reid_net *net, int c, int h, int w) {
  if (net->n_acts == net->cap_acts) {
    int cap = net->cap_acts ? 2 * net->cap_acts : 128;
    net_act *a = realloc(net->acts, sizeof *a * cap);
    if (!a) return -1;
    net->acts = a;
    net->cap_acts = cap;
  }
  net->acts[net->n_acts] = (net_act){c, h, w, NULL, NULL};
  return net->n_acts++;
}

static net_node *add_node(reid_net *net, net_node_kind kind, int in) {
  if (net->n_nodes == net->cap_nodes) {
    int cap = net->cap_nodes ? 2 * net->cap_nodes : 256;
    net_node *n = realloc(net->nodes, sizeof *n * cap);
    if (!n) return NULL;
    net->nodes = n;
    net->cap_nodes = cap;
  }
  net_node *node = &net->nodes[net->n_nodes++];
  memset(node, 0, sizeof *node);
  node->kind = kind;
  node->in = in;
  node->in2 = node->out = node->weight = node->bias = node->mean = node->var = -1;
  return node;
}

/* Appends conv (named conv_name) + batch norm (named bn_name) [+ ReLU]; returns the output act. */
static int conv_bn(reid_net *net, const char *conv_name, const char *bn_name, int in, int c_out,
                   int k, int stride, int relu) {
  char name[64];
  const net_act a = net->acts[in];
  int64_t wshape[4] = {c_out, a.c, k, k};
  snprintf(name, sizeof name, "%s.weight", conv_name);
  int w = add_tensor(net, name, 4, wshape, 1);
  net_node *conv = add_node(net, NODE_CONV, in);
  if (w < 0 || !conv) return -1;
  conv->weight = w;
  if (reid_conv2d_desc_init(&conv->conv, 1, a.c, a.h, a.w, c_out, k, stride, k / 2) != REID_OK)
    return -1;
  const int h_out = conv->conv.h_out, w_out = conv->conv.w_out; /* add_node may move `conv` */
  int conv_out = add_act(net, c_out, h_out, w_out);
  net->nodes[net->n_nodes - 1].out = conv_out;

  int64_t cshape[1] = {c_out};
  int idx[4];
  const char *suffix[4] = {"weight", "bias", "running_mean", "running_var"};
  for (int i = 0; i < 4; i++) {
    snprintf(name, sizeof name, "%s.%s", bn_name, suffix[i]);
    idx[i] = add_tensor(net, name, 1, cshape, i < 2);
    if (idx[i] < 0) return -1;
  }
  net_node *bn = add_node(net, NODE_BN, conv_out);
  if (!bn || conv_out < 0) return -1;
  bn->weight = idx[0];
  bn->bias = idx[1];
  bn->mean = idx[2];
  bn->var = idx[3];
  int out = add_act(net, c_out, h_out, w_out);
  net->nodes[net->n_nodes - 1].out = out;
  if (!relu) return out;
  net_node *r = add_node(net, NODE_RELU, out);
  int rout = add_act(net, c_out, net->acts[out].h, net->acts[out].w);
  if (!r) return -1;
  net->nodes[net->n_nodes - 1].out = rout;
  return rout;
}

static int add_relu_add(reid_net *net, int a, int b) {
  net_node *add = add_node(net, NODE_ADD, a);
  int sum = add_act(net, net->acts[a].c, net->acts[a].h, net->acts[a].w);
  if (!add || sum < 0) return -1;
  net->nodes[net->n_nodes - 1].in2 = b;
  net->nodes[net->n_nodes - 1].out = sum;
  net_node *r = add_node(net, NODE_RELU, sum);
  int out = add_act(net, net->acts[a].c, net->acts[a].h, net->acts[a].w);
  if (!r || out < 0) return -1;
  net->nodes[net->n_nodes - 1].out = out;
  return out;
}

static int add_block(reid_net *net, int bottleneck, const char *prefix, int in, int planes,
                     int stride) {
  char n1[64], n2[64];
  int expansion = bottleneck ? 4 : 1;
  int out_c = planes * expansion;
  int x = in, h;
#define NAME2(a, b)                                                                                \
  (snprintf(n1, sizeof n1, "%s.%s", prefix, a), snprintf(n2, sizeof n2, "%s.%s", prefix, b))
  if (bottleneck) { /* torchvision v1.5: the stride sits on the 3x3 conv */
    NAME2("conv1", "bn1");
    h = conv_bn(net, n1, n2, x, planes, 1, 1, 1);
    NAME2("conv2", "bn2");
    if (h >= 0) h = conv_bn(net, n1, n2, h, planes, 3, stride, 1);
    NAME2("conv3", "bn3");
    if (h >= 0) h = conv_bn(net, n1, n2, h, out_c, 1, 1, 0);
  } else {
    NAME2("conv1", "bn1");
    h = conv_bn(net, n1, n2, x, planes, 3, stride, 1);
    NAME2("conv2", "bn2");
    if (h >= 0) h = conv_bn(net, n1, n2, h, planes, 3, 1, 0);
  }
  if (h < 0) return -1;
  int shortcut = x;
  if (stride != 1 || net->acts[x].c != out_c) {
    NAME2("downsample.0", "downsample.1");
    shortcut = conv_bn(net, n1, n2, x, out_c, 1, stride, 0);
    if (shortcut < 0) return -1;
  }
#undef NAME2
  return add_relu_add(net, h, shortcut);
}

static reid_status build_graph(reid_net *net) {
  const reid_model_config *c = &net->cfg;
  static const int blocks[3][4] = {{2, 2, 2, 2}, {3, 4, 6, 3}, {3, 4, 6, 3}};
  int bottleneck = c->arch == REID_ARCH_RESNET50;
  int x = add_act(net, 3, c->input_height, c->input_width);
  x = conv_bn(net, "conv1", "bn1", x, 64, 7, 2, 1);
  if (x < 0)
    return reid_fail(REID_EINVAL, "resnet: input %dx%d too small", c->input_height, c->input_width);
  net_node *pool = add_node(net, NODE_MAXPOOL, x);
  if (!pool) return reid_fail(REID_ENOMEM, "resnet: out of memory");
  REID_TRY(reid_pool2d_desc_init(&pool->pool, 1, net->acts[x].c, net->acts[x].h, net->acts[x].w, 3,
                                 2, 1));
  int pooled = add_act(net, net->acts[x].c, pool->pool.h_out, pool->pool.w_out);
  net->nodes[net->n_nodes - 1].out = pooled;
  x = pooled;
  for (int layer = 0; layer < 4; layer++) {
    int planes = 64 << layer;
    int stride = layer == 0 ? 1 : layer == 3 ? c->last_stride : 2;
    for (int b = 0; b < blocks[c->arch][layer] && x >= 0; b++) {
      char prefix[32];
      snprintf(prefix, sizeof prefix, "layer%d.%d", layer + 1, b);
      x = add_block(net, bottleneck, prefix, x, planes, b == 0 ? stride : 1);
    }
  }
  if (x < 0)
    return reid_fail(REID_EINVAL, "resnet: input %dx%d too small", c->input_height, c->input_width);
  net_node *gap = add_node(net, NODE_GAP, x);
  int feat = add_act(net, net->acts[x].c, 1, 1);
  if (!gap || feat < 0) return reid_fail(REID_ENOMEM, "resnet: out of memory");
  net->nodes[net->n_nodes - 1].out = feat;
  net->feature_act = feat;

  int64_t d = reid_arch_feature_dim(c->arch), k = c->num_classes;
  net->neck_weight = net->neck_bias = net->neck_mean = net->neck_var = -1;
  net->cls_weight = net->cls_bias = -1;
  if (c->bnneck) {
    net->neck_weight = add_tensor(net, "bottleneck.weight", 1, &d, 1);
    net->neck_bias = add_tensor(net, "bottleneck.bias", 1, &d, 0); /* frozen at 0 */
    net->neck_mean = add_tensor(net, "bottleneck.running_mean", 1, &d, 0);
    net->neck_var = add_tensor(net, "bottleneck.running_var", 1, &d, 0);
    if (k > 0) {
      int64_t s[2] = {k, d};
      net->cls_weight = add_tensor(net, "classifier.weight", 2, s, 1);
    }
  } else if (k > 0) {
    int64_t s[2] = {k, d};
    net->cls_weight = add_tensor(net, "fc.weight", 2, s, 1);
    net->cls_bias = add_tensor(net, "fc.bias", 1, &k, 1);
  }
  if (net->neck_var < -1 || (c->bnneck && net->neck_var < 0) || (k > 0 && net->cls_weight < 0))
    return reid_fail(REID_ENOMEM, "resnet: out of memory");
  return REID_OK;
}

/* ---- lifetime ---- */

#define BE_ALLOC(ptr, count)                                                                       \
  do {                                                                                             \
    (ptr) = be->ops->alloc(be, sizeof(*(ptr)) * (size_t)(count));                                  \
    if (!(ptr)) return reid_fail(REID_ENOMEM, "resnet: out of %s memory", be->name);               \
  } while (0)
#define BE_FREE(ptr)                                                                               \
  do {                                                                                             \
    if (ptr) be->ops->free(be, (ptr));                                                             \
    (ptr) = NULL;                                                                                  \
  } while (0)

static void free_activations(reid_net *net) {
  reid_backend *be = net->be;
  for (int i = 0; i < net->n_acts; i++) {
    BE_FREE(net->acts[i].data);
    BE_FREE(net->acts[i].grad);
  }
  for (int i = 0; i < net->n_nodes; i++) BE_FREE(net->nodes[i].argmax);
  BE_FREE(net->scratch);
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
  free(net->nodes);
  free(net->acts);
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
    int d = reid_arch_feature_dim(net->cfg.arch);
    BE_ALLOC(net->neck_save_mean, d);
    BE_ALLOC(net->neck_save_invstd, d);
  }
  return REID_OK;
}

static reid_status net_create(const reid_model_config *cfg, reid_backend *be, int init,
                              reid_net **out) {
  *out = NULL;
  REID_TRY(reid_model_config_validate(cfg));
  reid_net *net = calloc(1, sizeof *net);
  if (!net) return reid_fail(REID_ENOMEM, "resnet: out of memory");
  net->cfg = *cfg;
  net->be = be;
  reid_status st = build_graph(net);
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
  return net_create(cfg, be, 1, out);
}

reid_status reid_net_create_empty(const reid_model_config *cfg, reid_backend *be, reid_net **out) {
  return net_create(cfg, be, 0, out);
}

/* ---- accessors ---- */

const reid_model_config *reid_net_config(const reid_net *net) {
  return &net->cfg;
}
reid_backend *reid_net_backend(const reid_net *net) {
  return net->be;
}
int reid_net_feature_dim(const reid_net *net) {
  return reid_arch_feature_dim(net->cfg.arch);
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

/* ---- initialisation ---- */

static int is_suffix(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

reid_status reid_net_init_weights(reid_net *net, uint64_t seed) {
  reid_backend *be = net->be;
  float *host_p = malloc(sizeof(float) * (net->n_params ? net->n_params : 1));
  float *host_b = malloc(sizeof(float) * (net->n_buffers ? net->n_buffers : 1));
  if (!host_p || !host_b) {
    free(host_p);
    free(host_b);
    return reid_fail(REID_ENOMEM, "resnet: out of memory");
  }
  reid_rng rng;
  reid_rng_seed(&rng, seed);
  for (int i = 0; i < net->n_tensors; i++) {
    const reid_tensor_view *t = &net->tensors[i];
    float *dst = (t->trainable ? host_p : host_b) + t->offset;
    float fill = 0.0f;
    if (t->ndim == 4) { /* conv: kaiming_normal_(mode='fan_out', nonlinearity='relu') */
      float std = sqrtf(2.0f / (float)(t->shape[0] * t->shape[2] * t->shape[3]));
      for (size_t j = 0; j < t->numel; j++) dst[j] = std * reid_rng_normal(&rng);
      continue;
    }
    if (!strcmp(t->name, "classifier.weight")) { /* BNNeck classifier: N(0, 0.001) */
      for (size_t j = 0; j < t->numel; j++) dst[j] = 0.001f * reid_rng_normal(&rng);
      continue;
    }
    if (!strncmp(t->name, "fc.", 3)) { /* nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
      float bound = 1.0f / sqrtf((float)reid_arch_feature_dim(net->cfg.arch));
      for (size_t j = 0; j < t->numel; j++) dst[j] = bound * (2.0f * reid_rng_uniform(&rng) - 1.0f);
      continue;
    }
    if (is_suffix(t->name, ".weight") || is_suffix(t->name, ".running_var")) fill = 1.0f;
    for (size_t j = 0; j < t->numel; j++) dst[j] = fill;
  }
  reid_status st = be->ops->upload(be, net->params, host_p, sizeof(float) * net->n_params);
  if (st == REID_OK) st = be->ops->upload(be, net->buffers, host_b, sizeof(float) * net->n_buffers);
  free(host_p);
  free(host_b);
  return st;
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
    for (int i = 0; i < net->n_nodes; i++)
      if (net->nodes[i].kind == NODE_MAXPOOL)
        BE_ALLOC(net->nodes[i].argmax, net_act_size(&net->acts[net->nodes[i].out]) * cap);
    int d = reid_net_feature_dim(net), k = net->cfg.num_classes;
    BE_ALLOC(net->scratch, largest * cap);
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

static reid_status forward_node(reid_net *net, net_node *n, int frames_total, int train) {
  reid_backend *be = net->be;
  const reid_backend_ops *ops = be->ops;
  net_act *in = &net->acts[n->in], *out = &net->acts[n->out];
  int N = frames_total;
  switch (n->kind) {
  case NODE_CONV: {
    reid_conv2d_desc d = n->conv;
    d.n = N;
    return ops->conv2d_forward(be, &d, in->data, tdata(net, n->weight), NULL, out->data);
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
  case NODE_ADD:
    return ops->add(be, net_act_size(in) * N, in->data, net->acts[n->in2].data, out->data);
  case NODE_MAXPOOL: {
    reid_pool2d_desc d = n->pool;
    d.n = N;
    return ops->maxpool2d_forward(be, &d, in->data, out->data, n->argmax);
  }
  case NODE_GAP:
    return ops->avgpool_global_forward(be, N, in->c, in->h * in->w, in->data, out->data);
  }
  return reid_fail(REID_EINVAL, "resnet: unknown node kind");
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
    return reid_fail(REID_EINVAL, "resnet: invalid batch %d x %d frames", batch, frames);
  if (!x) return reid_fail(REID_EINVAL, "resnet: NULL input");
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
  unsigned char *written;
} grad_state;

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
    REID_TRY(ops->conv2d_backward(be, &d, in->data, tdata(net, n->weight), dy, dx,
                                  tgrad(net, n->weight), NULL));
    break;
  }
  case NODE_BN:
    if (net->trained_forward)
      REID_TRY(ops->batchnorm_backward(be, N, in->c, in->h * in->w, in->data, tdata(net, n->weight),
                                       n->save_mean, n->save_invstd, dy, dx, tgrad(net, n->weight),
                                       tgrad(net, n->bias)));
    else
      REID_TRY(ops->batchnorm_backward_eval(
          be, N, in->c, in->h * in->w, in->data, tdata(net, n->weight), tdata(net, n->mean),
          tdata(net, n->var), BN_EPS, dy, dx, tgrad(net, n->weight), tgrad(net, n->bias)));
    break;
  case NODE_RELU:
    if (dx) REID_TRY(ops->relu_backward(be, net_act_size(in) * N, out->data, dy, dx));
    break;
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
  if (!net->batch) return reid_fail(REID_EINVAL, "resnet: backward before forward");
  reid_backend *be = net->be;
  REID_TRY(ensure_gradients(net));
  /* parameters that receive no gradient this step (e.g. an unused head) read as 0 */
  REID_TRY(be->ops->fill(be, net->grads, net->n_params, 0.0f));
  grad_state g = {calloc((size_t)net->n_acts, 1)};
  if (!g.written) return reid_fail(REID_ENOMEM, "resnet: out of memory");
  int N = net->batch * net->frames;
  reid_status st = backward_head(net, &g, d_embedding, d_logits);
  for (int i = net->n_nodes - 1; i >= 0 && st == REID_OK; i--)
    st = backward_node(net, &g, &net->nodes[i], N);
  free(g.written);
  return st;
}
