/* ONNX export: a network description (net_graph.h) written as an ONNX model
 * through protobuf-c, one ONNX node per network node:
 *   conv (4-D weight)  Conv        linear (2-D weight)  Flatten (once) + Gemm(transB = 1)
 *   BN                 BatchNormalization (epsilon 1e-5)
 *   ReLU / ReLU6 / sigmoid   Relu / Clip(0, 6) / Sigmoid
 *   add / channel gate       Add / Mul (broadcast over H, W; a [N, C] gate Unsqueezed)
 *   max / avg / global pool  MaxPool (ceil_mode as built) / AveragePool(count_include_pad = 1) /
 *                            GlobalAveragePool
 *   instance norm            InstanceNormalization (epsilon 1e-5)
 *   concat / slice           Concat(axis 1) / Slice(starts, ends, axes = [1]) of channels
 * then the head: Flatten of the feature, and the BNNeck's BatchNormalization when the
 * embedding is taken after it. Activation i is named "input" (i = 0) or "x<i>";
 * initializers keep the network's tensor names. Every message lives in one arena. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "fileio.h"
#include "onnx_internal.h"

#define EXPORT_OPSET 13
#define EXPORT_IR    7

typedef struct arena {
  void **blocks;
  size_t n, cap;
  int failed;
} arena;

static void *arena_alloc(arena *a, size_t size) {
  if (a->failed) return NULL;
  if (a->n == a->cap) {
    size_t cap = a->cap ? 2 * a->cap : 1024;
    void **grown = realloc(a->blocks, sizeof *grown * cap);
    if (!grown) return a->failed = 1, NULL;
    a->blocks = grown;
    a->cap = cap;
  }
  void *p = calloc(1, size ? size : 1);
  if (!p) return a->failed = 1, NULL;
  return a->blocks[a->n++] = p;
}

static char *arena_printf(arena *a, const char *fmt, const char *s, int i) {
  char buf[160];
  snprintf(buf, sizeof buf, fmt, s, i);
  char *p = arena_alloc(a, strlen(buf) + 1);
  if (p) memcpy(p, buf, strlen(buf) + 1);
  return p;
}

typedef struct exporter {
  arena a;
  reid_net *net;
  float *params, *buffers;
  Onnx__NodeProto **nodes;
  size_t n_nodes;
  Onnx__TensorProto **inits;
  size_t n_inits;
  char *clip_min, *clip_max; /* ReLU6's bounds, added once */
  char *axes_hw;             /* Unsqueeze's axes [2, 3], added once */
  int *rank;                 /* per activation: 4 or 2 (after Gemm / Flatten) */
  char **flat;               /* per activation: the name of its rank-2 view, once made */
} exporter;

static char *act_name(exporter *x, int act) {
  return act == 0 ? "input" : arena_printf(&x->a, "%s%d", "x", act);
}

static Onnx__TensorProto *tensor_proto(exporter *x, const char *name, int ndim, const int64_t *dims,
                                       const float *data) {
  Onnx__TensorProto *t = arena_alloc(&x->a, sizeof *t);
  int64_t *d = arena_alloc(&x->a, sizeof(int64_t) * (size_t)(ndim ? ndim : 1));
  if (!t || !d) return NULL;
  onnx__tensor_proto__init(t);
  size_t numel = 1;
  for (int i = 0; i < ndim; i++) numel *= (size_t)(d[i] = dims[i]);
  t->n_dims = (size_t)ndim;
  t->dims = d;
  t->has_data_type = 1;
  t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  t->name = (char *)name;
  t->has_raw_data = 1;
  t->raw_data.len = numel * sizeof(float); /* little-endian hosts: the floats as they are */
  t->raw_data.data = (uint8_t *)data;
  return t;
}

static int add_init(exporter *x, Onnx__TensorProto *t) {
  if (!t) return -1;
  x->inits[x->n_inits++] = t;
  return 0;
}

/* a network tensor as an initializer (once; its name) */
static char *init_of(exporter *x, int index) {
  const reid_tensor_view *v = &x->net->tensors[index];
  for (size_t i = 0; i < x->n_inits; i++)
    if (!strcmp(x->inits[i]->name, v->name)) return x->inits[i]->name;
  const float *data = (v->trainable ? x->params : x->buffers) + v->offset;
  return add_init(x, tensor_proto(x, v->name, v->ndim, v->shape, data)) ? NULL : (char *)v->name;
}

/* a new attribute `name` of `type` */
static Onnx__AttributeProto *attr_new(exporter *x, const char *name,
                                      Onnx__AttributeProto__AttributeType type) {
  Onnx__AttributeProto *a = arena_alloc(&x->a, sizeof *a);
  if (!a) return NULL;
  onnx__attribute_proto__init(a);
  a->name = (char *)name;
  a->has_type = 1;
  a->type = type;
  return a;
}

/* n copies of v */
static Onnx__AttributeProto *attr_ints(exporter *x, const char *name, int n, int v) {
  Onnx__AttributeProto *a = attr_new(x, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  int64_t *ints = arena_alloc(&x->a, sizeof(int64_t) * (size_t)n);
  if (!a || !ints) return NULL;
  for (int i = 0; i < n; i++) ints[i] = v;
  a->n_ints = (size_t)n;
  a->ints = ints;
  return a;
}

static Onnx__AttributeProto *attr_int(exporter *x, const char *name, int64_t v) {
  Onnx__AttributeProto *a = attr_new(x, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  if (a) a->has_i = 1, a->i = v;
  return a;
}

static Onnx__AttributeProto *attr_float(exporter *x, const char *name, float v) {
  Onnx__AttributeProto *a = attr_new(x, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  if (a) a->has_f = 1, a->f = v;
  return a;
}

/* appends op(inputs) -> output; attributes after (NULL-terminated) */
static Onnx__NodeProto *add_node(exporter *x, const char *op, const char *output, int n_in,
                                 char *const *inputs, Onnx__AttributeProto *const *attrs) {
  Onnx__NodeProto *n = arena_alloc(&x->a, sizeof *n);
  char **in = arena_alloc(&x->a, sizeof(char *) * (size_t)n_in);
  char **out = arena_alloc(&x->a, sizeof(char *));
  int n_attr = 0;
  while (attrs && attrs[n_attr]) n_attr++;
  Onnx__AttributeProto **at = arena_alloc(&x->a, sizeof *at * (size_t)(n_attr ? n_attr : 1));
  if (!n || !in || !out || !at) return NULL;
  onnx__node_proto__init(n);
  for (int i = 0; i < n_in; i++)
    if (!(in[i] = inputs[i])) return NULL;
  out[0] = (char *)output;
  if (n_attr) memcpy(at, attrs, sizeof *at * (size_t)n_attr);
  n->op_type = (char *)op;
  n->name = arena_printf(&x->a, "%s_%d", op, (int)x->n_nodes);
  n->n_input = (size_t)n_in;
  n->input = in;
  n->n_output = 1;
  n->output = out;
  n->n_attribute = (size_t)n_attr;
  n->attribute = at;
  if (!output || !n->name) return NULL;
  return x->nodes[x->n_nodes++] = n;
}

/* activation `act` as [N, C] (a Flatten made once) */
static char *flat_of(exporter *x, int act) {
  if (x->rank[act] == 2) return act_name(x, act);
  if (x->flat[act]) return x->flat[act];
  char *name = arena_printf(&x->a, "%s%d_flat", "x", act);
  char *in[1] = {act_name(x, act)};
  Onnx__AttributeProto *attrs[] = {attr_int(x, "axis", 1), NULL};
  if (!attrs[0] || !add_node(x, "Flatten", name, 1, in, attrs)) return NULL;
  return x->flat[act] = name;
}

/* activation `act` (rank 2, [N, C]) as [N, C, 1, 1] (an Unsqueeze) */
static char *unflat_of(exporter *x, int act) {
  if (x->rank[act] == 4) return act_name(x, act);
  if (!x->axes_hw) {
    static const int64_t two = 2;
    Onnx__TensorProto *t = tensor_proto(x, "axes_hw", 1, &two, NULL);
    int64_t *v = arena_alloc(&x->a, 2 * sizeof *v);
    if (!t || !v || add_init(x, t)) return NULL;
    v[0] = 2, v[1] = 3;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    t->raw_data.len = 2 * sizeof *v;
    t->raw_data.data = (uint8_t *)v; /* little-endian hosts */
    x->axes_hw = "axes_hw";
  }
  char *name = arena_printf(&x->a, "%s%d_4d", "x", act);
  char *in[2] = {act_name(x, act), x->axes_hw};
  return add_node(x, "Unsqueeze", name, 2, in, NULL) ? name : NULL;
}

static reid_status export_node(exporter *x, const net_node *n) {
  char *out = act_name(x, n->out), *in[5] = {0};
  x->rank[n->out] = x->rank[n->in];
  Onnx__NodeProto *made = NULL;
  switch (n->kind) {
  case NODE_CONV: {
    const reid_tensor_view *w = &x->net->tensors[n->weight];
    int k = n->conv.k, nin = n->bias >= 0 ? 3 : 2;
    in[1] = init_of(x, n->weight);
    if (n->bias >= 0) in[2] = init_of(x, n->bias);
    if (w->ndim == 2) { /* Linear */
      in[0] = flat_of(x, n->in);
      Onnx__AttributeProto *attrs[] = {attr_int(x, "transB", 1), NULL};
      x->rank[n->out] = 2;
      made = attrs[0] ? add_node(x, "Gemm", out, nin, in, attrs) : NULL;
      break;
    }
    in[0] = act_name(x, n->in);
    Onnx__AttributeProto *attrs[] = {
        attr_ints(x, "kernel_shape", 2, k),   attr_ints(x, "strides", 2, n->conv.stride),
        attr_ints(x, "pads", 4, n->conv.pad), attr_ints(x, "dilations", 2, 1),
        attr_int(x, "group", n->conv.groups), NULL};
    for (int i = 0; i < 5; i++)
      if (!attrs[i]) return reid_fail(REID_ENOMEM, "onnx export: out of memory");
    made = add_node(x, "Conv", out, nin, in, attrs);
    break;
  }
  case NODE_BN: {
    in[0] = act_name(x, n->in);
    in[1] = init_of(x, n->weight);
    in[2] = init_of(x, n->bias);
    in[3] = init_of(x, n->mean);
    in[4] = init_of(x, n->var);
    Onnx__AttributeProto *attrs[] = {attr_float(x, "epsilon", 1e-5f), NULL};
    made = attrs[0] ? add_node(x, "BatchNormalization", out, 5, in, attrs) : NULL;
    break;
  }
  case NODE_RELU:
  case NODE_SIGMOID:
  case NODE_GAP:
    in[0] = act_name(x, n->in);
    made = add_node(x,
                    n->kind == NODE_RELU      ? "Relu"
                    : n->kind == NODE_SIGMOID ? "Sigmoid"
                                              : "GlobalAveragePool",
                    out, 1, in, NULL);
    if (n->kind == NODE_GAP) x->rank[n->out] = 4;
    break;
  case NODE_RELU6:
    if (!x->clip_min) {
      static const float lo = 0.0f, hi = 6.0f;
      if (add_init(x, tensor_proto(x, "relu6_min", 0, NULL, &lo)) ||
          add_init(x, tensor_proto(x, "relu6_max", 0, NULL, &hi)))
        return reid_fail(REID_ENOMEM, "onnx export: out of memory");
      x->clip_min = "relu6_min";
      x->clip_max = "relu6_max";
    }
    in[0] = act_name(x, n->in);
    in[1] = x->clip_min;
    in[2] = x->clip_max;
    made = add_node(x, "Clip", out, 3, in, NULL);
    break;
  case NODE_ADD:
  case NODE_MUL:
    in[0] = act_name(x, n->in);
    in[1] = act_name(x, n->in2);
    if (x->rank[n->in] != x->rank[n->in2]) { /* a [N, C] operand: both 2-D, or both 4-D */
      const net_act *a = &x->net->acts[n->in];
      int flat = a->h == 1 && a->w == 1;
      in[0] = flat ? flat_of(x, n->in) : unflat_of(x, n->in);
      in[1] = flat ? flat_of(x, n->in2) : unflat_of(x, n->in2);
      x->rank[n->out] = flat ? 2 : 4;
    }
    made = add_node(x, n->kind == NODE_ADD ? "Add" : "Mul", out, 2, in, NULL);
    break;
  case NODE_MAXPOOL:
  case NODE_AVGPOOL: {
    in[0] = act_name(x, n->in);
    Onnx__AttributeProto *attrs[] = {
        attr_ints(x, "kernel_shape", 2, n->pool.k), attr_ints(x, "strides", 2, n->pool.stride),
        attr_ints(x, "pads", 4, n->pool.pad),
        n->kind == NODE_AVGPOOL ? attr_int(x, "count_include_pad", 1)
                                : attr_int(x, "ceil_mode", n->pool.ceil_mode),
        NULL};
    for (int i = 0; i < 4; i++)
      if (!attrs[i]) return reid_fail(REID_ENOMEM, "onnx export: out of memory");
    made = add_node(x, n->kind == NODE_MAXPOOL ? "MaxPool" : "AveragePool", out, 1, in, attrs);
    break;
  }
  case NODE_IN: {
    in[0] = act_name(x, n->in);
    in[1] = init_of(x, n->weight);
    in[2] = init_of(x, n->bias);
    Onnx__AttributeProto *attrs[] = {attr_float(x, "epsilon", 1e-5f), NULL};
    made = attrs[0] ? add_node(x, "InstanceNormalization", out, 3, in, attrs) : NULL;
    break;
  }
  case NODE_CONCAT: {
    in[0] = act_name(x, n->in);
    in[1] = act_name(x, n->in2);
    if (x->rank[n->in] != x->rank[n->in2]) { /* [N, C] and [N, C, 1, 1]: both 4-D */
      in[0] = unflat_of(x, n->in);
      in[1] = unflat_of(x, n->in2);
      x->rank[n->out] = 4;
    }
    Onnx__AttributeProto *attrs[] = {attr_int(x, "axis", 1), NULL};
    made = attrs[0] ? add_node(x, "Concat", out, 2, in, attrs) : NULL;
    break;
  }
  case NODE_SLICE: {
    const int64_t one = 1, v[3] = {n->c0, n->c0 + x->net->acts[n->out].c, 1};
    static const char *const what[3] = {"starts", "ends", "axes"};
    in[0] = act_name(x, n->in);
    for (int i = 0; i < 3; i++) {
      char *name = arena_printf(&x->a, "%s_%d", what[i], n->out);
      int64_t *data = arena_alloc(&x->a, sizeof *data);
      Onnx__TensorProto *t = name ? tensor_proto(x, name, 1, &one, NULL) : NULL;
      if (!data || !t || add_init(x, t))
        return reid_fail(REID_ENOMEM, "onnx export: out of memory");
      *data = v[i];
      t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
      t->raw_data.len = sizeof *data;
      t->raw_data.data = (uint8_t *)data; /* little-endian hosts */
      in[1 + i] = name;
    }
    made = add_node(x, "Slice", out, 4, in, NULL);
    break;
  }
  default:
    return reid_fail(REID_EUNSUPPORTED, "onnx export: %s (node kind %d) has no ONNX form here yet",
                     net_node_kind_name(n->kind), (int)n->kind);
  }
  return made ? REID_OK : reid_fail(REID_ENOMEM, "onnx export: out of memory");
}

/* the network's input or output as a float tensor [batch, dims...] */
static Onnx__ValueInfoProto *value_info(exporter *x, const char *name, int ndim,
                                        const int64_t *dims) {
  Onnx__ValueInfoProto *v = arena_alloc(&x->a, sizeof *v);
  Onnx__TypeProto *t = arena_alloc(&x->a, sizeof *t);
  Onnx__TypeProto__Tensor *tt = arena_alloc(&x->a, sizeof *tt);
  Onnx__TensorShapeProto *s = arena_alloc(&x->a, sizeof *s);
  Onnx__TensorShapeProto__Dimension **d = arena_alloc(&x->a, sizeof *d * (size_t)(ndim + 1));
  if (!v || !t || !tt || !s || !d) return NULL;
  onnx__value_info_proto__init(v);
  onnx__type_proto__init(t);
  onnx__type_proto__tensor__init(tt);
  onnx__tensor_shape_proto__init(s);
  for (int i = 0; i <= ndim; i++) {
    if (!(d[i] = arena_alloc(&x->a, sizeof **d))) return NULL;
    onnx__tensor_shape_proto__dimension__init(d[i]);
    if (i == 0) {
      d[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      d[i]->dim_param = "batch";
    } else {
      d[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      d[i]->dim_value = dims[i - 1];
    }
  }
  s->n_dim = (size_t)ndim + 1;
  s->dim = d;
  tt->has_elem_type = 1;
  tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  tt->shape = s;
  t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  t->tensor_type = tt;
  v->name = (char *)name;
  v->type = t;
  return v;
}

static Onnx__StringStringEntryProto *entry(exporter *x, const char *key, const char *value) {
  Onnx__StringStringEntryProto *e = arena_alloc(&x->a, sizeof *e);
  char *v = arena_printf(&x->a, "%s", value, 0);
  if (!e || !v) return NULL;
  onnx__string_string_entry_proto__init(e);
  e->key = (char *)key;
  e->value = v;
  return e;
}

/* the head: [N, D] feature, then the BNNeck when the embedding is taken after it */
static char *export_head(exporter *x) {
  reid_net *net = x->net;
  char *feature = flat_of(x, net->feature_act);
  if (!feature || !net->cfg.embed_after_bn) return feature;
  char *in[5] = {feature, init_of(x, net->neck_weight), init_of(x, net->neck_bias),
                 init_of(x, net->neck_mean), init_of(x, net->neck_var)};
  Onnx__AttributeProto *attrs[] = {attr_float(x, "epsilon", 1e-5f), NULL};
  if (!attrs[0] || !add_node(x, "BatchNormalization", "embedding", 5, in, attrs)) return NULL;
  return "embedding";
}

static reid_status build_model(exporter *x, double match_threshold, Onnx__ModelProto *m,
                               Onnx__GraphProto *g) {
  reid_net *net = x->net;
  const reid_model_config *cfg = &net->cfg;
  x->nodes = arena_alloc(&x->a, sizeof *x->nodes * (size_t)(2 * net->n_nodes + 8));
  x->inits = arena_alloc(&x->a, sizeof *x->inits * (size_t)(net->n_tensors + 3 * net->n_nodes + 8));
  x->rank = arena_alloc(&x->a, sizeof *x->rank * (size_t)net->n_acts);
  x->flat = arena_alloc(&x->a, sizeof *x->flat * (size_t)net->n_acts);
  if (!x->nodes || !x->inits || !x->rank || !x->flat)
    return reid_fail(REID_ENOMEM, "onnx export: out of memory");
  x->rank[0] = 4;
  for (int i = 0; i < net->n_nodes; i++) REID_TRY(export_node(x, &net->nodes[i]));
  char *last = export_head(x);
  char *in[1] = {last};
  if (!last || (strcmp(last, "embedding") && !add_node(x, "Identity", "embedding", 1, in, NULL)))
    return reid_fail(REID_ENOMEM, "onnx export: out of memory");
  int64_t in_dims[3] = {3, cfg->input_height, cfg->input_width}, out_dims[1] = {net->feature_dim};
  Onnx__ValueInfoProto **inputs = arena_alloc(&x->a, sizeof *inputs);
  Onnx__ValueInfoProto **outputs = arena_alloc(&x->a, sizeof *outputs);
  Onnx__OperatorSetIdProto *opset = arena_alloc(&x->a, sizeof *opset);
  Onnx__OperatorSetIdProto **opsets = arena_alloc(&x->a, sizeof *opsets);
  Onnx__StringStringEntryProto **meta = arena_alloc(&x->a, sizeof *meta * 8);
  if (!inputs || !outputs || !opset || !opsets || !meta ||
      !(inputs[0] = value_info(x, "input", 3, in_dims)) ||
      !(outputs[0] = value_info(x, "embedding", 1, out_dims)))
    return reid_fail(REID_ENOMEM, "onnx export: out of memory");
  char text[96];
  size_t n_meta = 0;
#define META(key, ...)                                                                             \
  (snprintf(text, sizeof text, __VA_ARGS__), meta[n_meta++] = entry(x, key, text))
  META("arch", "%s", reid_arch_name(cfg->arch));
  META("input_height", "%d", cfg->input_height);
  META("input_width", "%d", cfg->input_width);
  META("mean", "%.7g,%.7g,%.7g", cfg->mean[0], cfg->mean[1], cfg->mean[2]);
  META("std", "%.7g,%.7g,%.7g", cfg->std[0], cfg->std[1], cfg->std[2]);
  META("embed_dim", "%d", net->feature_dim);
  if (isfinite(match_threshold)) META("match_threshold", "%.9g", match_threshold);
#undef META
  for (size_t i = 0; i < n_meta; i++)
    if (!meta[i]) return reid_fail(REID_ENOMEM, "onnx export: out of memory");
  onnx__operator_set_id_proto__init(opset);
  opset->domain = "";
  opset->has_version = 1;
  opset->version = EXPORT_OPSET;
  opsets[0] = opset;
  g->name = "reid";
  g->n_node = x->n_nodes;
  g->node = x->nodes;
  g->n_initializer = x->n_inits;
  g->initializer = x->inits;
  g->n_input = 1;
  g->input = inputs;
  g->n_output = 1;
  g->output = outputs;
  m->has_ir_version = 1;
  m->ir_version = EXPORT_IR;
  m->n_opset_import = 1;
  m->opset_import = opsets;
  m->producer_name = "reid";
  m->producer_version = "reid-train export";
  m->graph = g;
  m->n_metadata_props = n_meta;
  m->metadata_props = meta;
  return x->a.failed ? reid_fail(REID_ENOMEM, "onnx export: out of memory") : REID_OK;
}

reid_status reid_onnx_save(reid_net *net, const char *path, double match_threshold) {
  if (net->cfg.int8)
    return reid_fail(REID_EUNSUPPORTED,
                     "onnx export: an int8 model (reid-train quantize) is not exported as ONNX: "
                     "export the float model it was quantized from");
  exporter x = {.net = net};
  Onnx__ModelProto m;
  Onnx__GraphProto g;
  onnx__model_proto__init(&m);
  onnx__graph_proto__init(&g);
  reid_status st = reid_net_download(net, &x.params, &x.buffers);
  if (st == REID_OK) st = build_model(&x, match_threshold, &m, &g);
  uint8_t *bytes = NULL;
  if (st == REID_OK) {
    size_t size = onnx__model_proto__get_packed_size(&m);
    bytes = malloc(size ? size : 1);
    if (!bytes) st = reid_fail(REID_ENOMEM, "onnx export: out of memory for %zu bytes", size);
    if (st == REID_OK && onnx__model_proto__pack(&m, bytes) != size)
      st = reid_fail(REID_EINVAL, "onnx export: the model did not pack");
    const void *parts[1] = {bytes};
    if (st == REID_OK) st = reid_write_file_atomic(path, parts, &size, 1, 1);
  }
  free(bytes);
  for (size_t i = 0; i < x.a.n; i++) free(x.a.blocks[i]);
  free(x.a.blocks);
  free(x.params);
  free(x.buffers);
  return st;
}
