/* The ONNX importer's network ops: each node becomes nodes of the network
 * description (net_graph.h) through its builder, and its initializers become
 * fills of the network's tensors (done once the network is allocated). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "onnx_internal.h"

static const char *out_name(onnx_ctx *c) {
  return c->node->n_output && c->node->output[0] ? c->node->output[0] : "";
}

static reid_status bind_out(onnx_ctx *c, int act, int rank) {
  onnx_value v = {.kind = VAL_ACT, .act = act, .rank = rank};
  if (onnx_bind(c, out_name(c), v) < 0) return reid_fail(REID_ENOMEM, "%s: out of memory", c->path);
  return REID_OK;
}

/* a builder call's result: the output activation, or a failure that names the node */
static reid_status built(onnx_ctx *c, reid_net *net, int act, int rank) {
  if (act < 0 || net->build_failed)
    return onnx_node_fail(c, REID_EUNSUPPORTED, "cannot build it (%s)", reid_last_error());
  return bind_out(c, act, rank);
}

/* an activation that more layers may read (not after the L2 normalisation or the BNNeck) */
static reid_status input_plain(onnx_ctx *c, int i, int rank, onnx_value *x) {
  REID_TRY(onnx_input_act(c, i, rank, x));
  if (x->pad)
    return onnx_node_fail(c, REID_EUNSUPPORTED,
                          "reads a zero-padded map (Pad): only Conv and AveragePool take one");
  if (x->normalised || x->neck)
    return onnx_node_fail(c, REID_EUNSUPPORTED, "layers after the %s are not supported",
                          x->normalised ? "L2 normalisation" : "batch norm of the output");
  return REID_OK;
}

/* the tensor-name prefix of a layer: its weight's name without ".weight" */
static void layer_prefix(const onnx_value *w, char *prefix, size_t size) {
  snprintf(prefix, size, "%s", w->name);
  size_t n = strlen(prefix);
  if (n > 7 && !strcmp(prefix + n - 7, ".weight")) prefix[n - 7] = '\0';
}

static reid_status fill(onnx_ctx *c, int tensor, const onnx_value *v, onnx_fill_kind kind,
                        float scale, float shift) {
  if (onnx_add_fill(c, tensor, (int)(v - c->values), kind, scale, shift) < 0)
    return reid_fail(REID_ENOMEM, "%s: out of memory", c->path);
  return REID_OK;
}

/* ints attribute `name` with 2 (or, for pads, 4) equal entries -> *out; absent: dflt */
static reid_status equal_ints(onnx_ctx *c, const char *name, size_t count, int dflt, int *out) {
  const Onnx__AttributeProto *a = onnx_attr(c->node, name);
  *out = dflt;
  if (!a) return REID_OK;
  if (a->n_ints != count)
    return onnx_node_fail(c, REID_EUNSUPPORTED, "attribute %s has %zu values, expected %zu", name,
                          a->n_ints, count);
  for (size_t i = 1; i < count; i++)
    if (a->ints[i] != a->ints[0])
      return onnx_node_fail(c, REID_EUNSUPPORTED,
                            "attribute %s must be the same on every side (square windows, "
                            "symmetric padding)",
                            name);
  if (count && (a->ints[0] < 0 || a->ints[0] > 4096))
    return onnx_node_fail(c, REID_EUNSUPPORTED, "attribute %s = %lld", name, (long long)a->ints[0]);
  if (count) *out = (int)a->ints[0];
  return REID_OK;
}

/* stride, pad, dilation and auto_pad of a window op with kernel k */
static reid_status window(onnx_ctx *c, int k, int *stride, int *pad) {
  int dilation;
  REID_TRY(equal_ints(c, "strides", 2, 1, stride));
  REID_TRY(equal_ints(c, "pads", 4, 0, pad));
  REID_TRY(equal_ints(c, "dilations", 2, 1, &dilation));
  if (dilation != 1) return onnx_node_fail(c, REID_EUNSUPPORTED, "dilation %d", dilation);
  if (*stride < 1) return onnx_node_fail(c, REID_EFORMAT, "stride %d", *stride);
  const Onnx__AttributeProto *a = onnx_attr(c->node, "auto_pad");
  if (a && a->has_s && a->s.len) {
    if (a->s.len == 5 && !memcmp(a->s.data, "VALID", 5)) {
      *pad = 0;
    } else if (a->s.len == 4 && !memcmp(a->s.data, "SAME", 4)) {
      if (*stride != 1 || k % 2 == 0)
        return onnx_node_fail(c, REID_EUNSUPPORTED, "auto_pad SAME with stride %d, kernel %d",
                              *stride, k);
      *pad = (k - 1) / 2;
    } else if (!(a->s.len == 6 && !memcmp(a->s.data, "NOTSET", 6)) &&
               !(a->s.len >= 5 && !memcmp(a->s.data, "SAME_", 5) && *stride == 1 && k % 2)) {
      return onnx_node_fail(c, REID_EUNSUPPORTED, "auto_pad '%.*s'", (int)a->s.len, a->s.data);
    } else if (a->s.len >= 5 && !memcmp(a->s.data, "SAME_", 5)) {
      *pad = (k - 1) / 2; /* SAME_UPPER / SAME_LOWER with stride 1 and an odd kernel */
    }
  }
  return REID_OK;
}

/* input 0 of a Conv or AveragePool: a map, possibly with a pending zero Pad */
static reid_status input_padded(onnx_ctx *c, onnx_value *x) {
  REID_TRY(onnx_input_act(c, 0, 4, x));
  if (x->normalised || x->neck)
    return onnx_node_fail(c, REID_EUNSUPPORTED, "layers after the output are not supported");
  return REID_OK;
}

/* Pad (constant zeros on H and W, the same on every side): kept for the Conv or
 * AveragePool that reads it (torch exports AvgPool2d as Pad + AveragePool) */
static reid_status map_pad(onnx_ctx *c) {
  static const char *const known[] = {"mode", "pads", "value", NULL};
  REID_TRY(onnx_check_attrs(c, known));
  onnx_value x;
  REID_TRY(input_plain(c, 0, 4, &x));
  const Onnx__AttributeProto *mode = onnx_attr(c->node, "mode");
  if (mode && mode->has_s && !(mode->s.len == 8 && !memcmp(mode->s.data, "constant", 8)))
    return onnx_node_fail(c, REID_EUNSUPPORTED, "mode '%.*s' (only constant zeros)",
                          (int)mode->s.len, mode->s.data);
  const int64_t *pads = NULL;
  size_t n = 0;
  const Onnx__AttributeProto *a = onnx_attr(c->node, "pads");
  if (a) {
    pads = a->ints;
    n = a->n_ints;
  } else {
    const onnx_value *v;
    REID_TRY(onnx_input_ints(c, 1, 0, &v));
    pads = v->ints;
    n = (size_t)v->numel;
  }
  float value = onnx_attr_float(c->node, "value", 0);
  int vi = onnx_input(c, 2, 1);
  if (vi >= 0) REID_TRY(onnx_scalar(c, &c->values[vi], &value));
  if (c->node->n_input > 3 && c->node->input[3][0])
    return onnx_node_fail(c, REID_EUNSUPPORTED, "the axes input");
  if (n != 8 || pads[0] || pads[1] || pads[4] || pads[5] || pads[2] != pads[3] ||
      pads[2] != pads[6] || pads[2] != pads[7] || pads[2] < 0 || pads[2] > 64 || value != 0)
    return onnx_node_fail(c, REID_EUNSUPPORTED,
                          "only zero padding of H and W, the same on every side");
  x.pad = (int)pads[2];
  if (onnx_bind(c, out_name(c), x) < 0) return reid_fail(REID_ENOMEM, "%s: out of memory", c->path);
  return REID_OK;
}

static reid_status map_conv(onnx_ctx *c, reid_net *net) {
  static const char *const known[] = {"auto_pad", "dilations", "group", "kernel_shape",
                                      "pads",     "strides",   NULL};
  REID_TRY(onnx_check_attrs(c, known));
  onnx_value x;
  const onnx_value *w, *b = NULL;
  REID_TRY(input_padded(c, &x));
  REID_TRY(onnx_input_floats(c, 1, 0, &w));
  const net_act a = net->acts[x.act];
  int64_t groups = onnx_attr_int(c->node, "group", 1);
  if (w->ndim != 4 || groups < 1 || groups > a.c || a.c % groups || w->dims[1] * groups != a.c ||
      w->dims[0] % groups || w->dims[0] > 65536)
    return onnx_node_fail(c, REID_EFORMAT,
                          "weight '%s' does not fit a %d-channel input in %lld groups", w->name,
                          a.c, (long long)groups);
  if (w->dims[2] != w->dims[3])
    return onnx_node_fail(c, REID_EUNSUPPORTED, "kernel %lldx%lld (square kernels only)",
                          (long long)w->dims[2], (long long)w->dims[3]);
  int k = (int)w->dims[2], kshape, stride, pad;
  REID_TRY(equal_ints(c, "kernel_shape", 2, k, &kshape));
  if (kshape != k) return onnx_node_fail(c, REID_EFORMAT, "kernel_shape disagrees with the weight");
  REID_TRY(window(c, k, &stride, &pad));
  pad += x.pad;
  int co = (int)w->dims[0];
  if (c->node->n_input > 2 && c->node->input[2][0]) REID_TRY(onnx_input_floats(c, 2, co, &b));
  char prefix[64];
  layer_prefix(w, prefix, sizeof prefix);
  int out = net_conv(net, prefix, x.act, co, k, stride, pad, (int)groups, b != NULL);
  if (out >= 0) {
    const net_node *n = &net->nodes[net->n_nodes - 1];
    REID_TRY(fill(c, n->weight, w, FILL_COPY, 1, 0));
    if (b) REID_TRY(fill(c, n->bias, b, FILL_COPY, 1, 0));
  }
  return built(c, net, out, 4);
}

static reid_status map_batchnorm(onnx_ctx *c, reid_net *net) {
  static const char *const known[] = {"epsilon", "momentum", "training_mode", "spatial", NULL};
  REID_TRY(onnx_check_attrs(c, known));
  if (onnx_attr_int(c->node, "training_mode", 0) != 0 || onnx_attr_int(c->node, "spatial", 1) != 1)
    return onnx_node_fail(c, REID_EUNSUPPORTED, "only inference-mode batch norm is supported");
  for (size_t i = 1; i < c->node->n_output; i++)
    if (c->node->output[i] && c->node->output[i][0])
      return onnx_node_fail(c, REID_EUNSUPPORTED, "training outputs (running statistics)");
  onnx_value x;
  REID_TRY(input_plain(c, 0, 0, &x));
  const net_act a = net->acts[x.act];
  const onnx_value *p[4];
  for (int i = 0; i < 4; i++) REID_TRY(onnx_input_floats(c, i + 1, a.c, &p[i]));
  float eps = onnx_attr_float(c->node, "epsilon", 1e-5f);
  if (!(eps > 0) || !isfinite(eps)) return onnx_node_fail(c, REID_EFORMAT, "epsilon %g", eps);
  const net_node *last = net->n_nodes ? &net->nodes[net->n_nodes - 1] : NULL;
  int after_conv = last && last->out == x.act && last->kind == NODE_CONV;
  if (!strcmp(out_name(c), c->output) && a.h == 1 && a.w == 1 && !after_conv) {
    /* the output's batch norm on a pooled feature: the BNNeck (embedding after it) */
    for (int i = 0; i < 4; i++) c->neck[i] = (int)(p[i] - c->values);
    c->neck_eps = eps;
    x.neck = 1;
    if (onnx_bind(c, out_name(c), x) < 0)
      return reid_fail(REID_ENOMEM, "%s: out of memory", c->path);
    return REID_OK;
  }
  char prefix[64];
  layer_prefix(p[0], prefix, sizeof prefix);
  int out = net_bn(net, prefix, x.act);
  if (out >= 0) {
    const net_node *n = &net->nodes[net->n_nodes - 1];
    REID_TRY(fill(c, n->weight, p[0], FILL_COPY, 1, 0));
    REID_TRY(fill(c, n->bias, p[1], FILL_COPY, 1, 0));
    REID_TRY(fill(c, n->mean, p[2], FILL_COPY, 1, 0));
    REID_TRY(fill(c, n->var, p[3], FILL_VAR_EPS, 1, eps - 1e-5f));
  }
  return built(c, net, out, x.rank);
}

static reid_status map_unary(onnx_ctx *c, reid_net *net, net_node_kind kind) {
  REID_TRY(onnx_check_attrs(c, NULL));
  onnx_value x;
  REID_TRY(input_plain(c, 0, 0, &x));
  return built(c, net, net_unary(net, kind, x.act), x.rank);
}

/* Clip(min 0, max 6) is ReLU6, Clip(min 0) ReLU; on a norm (F.normalize's eps), nothing */
static reid_status map_clip(onnx_ctx *c, reid_net *net) {
  static const char *const known[] = {"min", "max", NULL};
  REID_TRY(onnx_check_attrs(c, known));
  int v = onnx_input(c, 0, 0);
  if (v < 0) return REID_EFORMAT;
  if (c->values[v].kind == VAL_NORM) {
    if (onnx_bind(c, out_name(c), c->values[v]) < 0)
      return reid_fail(REID_ENOMEM, "%s: out of memory", c->path);
    return REID_OK;
  }
  float lo = onnx_attr_float(c->node, "min", -INFINITY),
        hi = onnx_attr_float(c->node, "max", INFINITY);
  for (int i = 1; i <= 2; i++) {
    int b = onnx_input(c, i, 1);
    if (b < 0 && i < (int)c->node->n_input && c->node->input[i][0]) return REID_EFORMAT;
    if (b >= 0) REID_TRY(onnx_scalar(c, &c->values[b], i == 1 ? &lo : &hi));
  }
  net_node_kind kind;
  if (lo == 0 && hi == 6)
    kind = NODE_RELU6;
  else if (lo == 0 && isinf(hi) && hi > 0)
    kind = NODE_RELU;
  else
    return onnx_node_fail(c, REID_EUNSUPPORTED, "clip to [%g, %g] (only [0, 6] and [0, inf))", lo,
                          hi);
  onnx_value x;
  REID_TRY(input_plain(c, 0, 0, &x));
  return built(c, net, net_unary(net, kind, x.act), x.rank);
}

/* Add: of two maps (residual), or of a bias to a bias-free linear / conv just before */
static reid_status map_add(onnx_ctx *c, reid_net *net) {
  REID_TRY(onnx_check_attrs(c, NULL));
  int i0 = onnx_input(c, 0, 0), i1 = onnx_input(c, 1, 0);
  if (i0 < 0 || i1 < 0) return REID_EFORMAT;
  const onnx_value *va = &c->values[i0], *vb = &c->values[i1];
  if (va->kind == VAL_NORM || vb->kind == VAL_NORM) { /* F.normalize's eps */
    if (onnx_bind(c, out_name(c), va->kind == VAL_NORM ? *va : *vb) < 0)
      return reid_fail(REID_ENOMEM, "%s: out of memory", c->path);
    return REID_OK;
  }
  if (va->kind == VAL_ACT && vb->kind == VAL_ACT) {
    onnx_value a, b;
    REID_TRY(input_plain(c, 0, 0, &a));
    REID_TRY(input_plain(c, 1, 0, &b));
    const net_act *x = &net->acts[a.act], *y = &net->acts[b.act];
    if (x->c != y->c || x->h != y->h || x->w != y->w)
      return onnx_node_fail(c, REID_EUNSUPPORTED,
                            "adds [N, %d, %d, %d] and [N, %d, %d, %d] (no broadcasting)", x->c,
                            x->h, x->w, y->c, y->h, y->w);
    return built(c, net, net_binary(net, NODE_ADD, a.act, b.act), a.rank);
  }
  onnx_value x;
  const onnx_value *bias;
  int ai = va->kind == VAL_ACT ? 0 : 1;
  REID_TRY(input_plain(c, ai, 0, &x));
  REID_TRY(onnx_input_floats(c, 1 - ai, net->acts[x.act].c, &bias));
  net_node *last = net->n_nodes ? &net->nodes[net->n_nodes - 1] : NULL;
  if (!last || last->out != x.act || last->kind != NODE_CONV || last->bias >= 0)
    return onnx_node_fail(c, REID_EUNSUPPORTED,
                          "adding a constant is supported only as the bias of the linear or "
                          "convolution just before");
  char name[64];
  snprintf(name, sizeof name, "%s", bias->name);
  int64_t shape[1] = {net->acts[x.act].c};
  last->bias = net_tensor(net, name, 1, shape, 1, INIT_ZERO);
  if (last->bias < 0) return onnx_node_fail(c, REID_ENOMEM, "out of memory");
  REID_TRY(fill(c, last->bias, bias, FILL_COPY, 1, 0));
  return bind_out(c, x.act, x.rank);
}

/* Mul: a channel gate, [N, C, h, w] x [N, C, 1, 1] */
static reid_status map_mul(onnx_ctx *c, reid_net *net) {
  REID_TRY(onnx_check_attrs(c, NULL));
  onnx_value a, b;
  REID_TRY(input_plain(c, 0, 4, &a));
  REID_TRY(input_plain(c, 1, 4, &b));
  const net_act *x = &net->acts[a.act], *y = &net->acts[b.act];
  if (y->h == 1 && y->w == 1 && x->c == y->c)
    return built(c, net, net_binary(net, NODE_MUL, a.act, b.act), 4);
  if (x->h == 1 && x->w == 1 && x->c == y->c)
    return built(c, net, net_binary(net, NODE_MUL, b.act, a.act), 4);
  return onnx_node_fail(c, REID_EUNSUPPORTED,
                        "only channel gates ([N, C, h, w] x [N, C, 1, 1]) multiply");
}

static reid_status map_pool(onnx_ctx *c, reid_net *net, net_node_kind kind) {
  static const char *const known[] = {"auto_pad", "ceil_mode", "dilations",     "kernel_shape",
                                      "pads",     "strides",   "storage_order", "count_include_pad",
                                      NULL};
  REID_TRY(onnx_check_attrs(c, known));
  if (c->node->n_output > 1 && c->node->output[1] && c->node->output[1][0])
    return onnx_node_fail(c, REID_EUNSUPPORTED, "the indices output of MaxPool");
  onnx_value x;
  if (kind == NODE_AVGPOOL)
    REID_TRY(input_padded(c, &x));
  else
    REID_TRY(input_plain(c, 0, 4, &x));
  int k, stride, pad;
  REID_TRY(equal_ints(c, "kernel_shape", 2, 0, &k));
  if (k < 1) return onnx_node_fail(c, REID_EFORMAT, "kernel_shape is missing");
  REID_TRY(window(c, k, &stride, &pad));
  if (x.pad && pad) /* explicit zeros are counted: count_include_pad's meaning */
    return onnx_node_fail(c, REID_EUNSUPPORTED, "a Pad before a padded AveragePool");
  int zeros_counted = x.pad > 0; /* the Pad's zeros are elements: always counted */
  if (x.pad) pad = x.pad;
  const net_act a = net->acts[x.act];
  int ceil_mode = 0;
  if (onnx_attr_int(c->node, "ceil_mode", 0)) { /* only where ceil and floor differ */
    for (int d = 0; d < 2; d++) {
      int in = d ? a.w : a.h, span = in + 2 * pad - k;
      if (span >= 0 && span % stride) ceil_mode = 1;
    }
    if (ceil_mode && kind != NODE_MAXPOOL)
      return onnx_node_fail(c, REID_EUNSUPPORTED,
                            "ceil_mode on a %dx%d input changes the output size (max pooling "
                            "only)",
                            a.h, a.w);
  }
  if (kind == NODE_AVGPOOL && pad && !zeros_counted &&
      !onnx_attr_int(c->node, "count_include_pad", 0))
    return onnx_node_fail(c, REID_EUNSUPPORTED,
                          "average pooling with padding excluded from the count");
  if (ceil_mode) return built(c, net, net_maxpool_ceil(net, x.act, k, stride, pad), 4);
  return built(c, net, net_pool(net, kind, x.act, k, stride, pad), 4);
}

/* ReduceMean over H and W: global average pooling; ReduceL2 over C: a norm */
static reid_status map_reduce(onnx_ctx *c, reid_net *net, int l2) {
  static const char *const known[] = {"axes", "keepdims", "noop_with_empty_axes", NULL};
  REID_TRY(onnx_check_attrs(c, known));
  onnx_value x;
  REID_TRY(input_plain(c, 0, 0, &x));
  int64_t axes[ONNX_MAX_DIMS];
  size_t n = 0;
  const Onnx__AttributeProto *a = onnx_attr(c->node, "axes");
  if (a && a->n_ints <= ONNX_MAX_DIMS) {
    n = a->n_ints;
    memcpy(axes, a->ints, sizeof(int64_t) * n);
  } else if (c->node->n_input > 1 && c->node->input[1][0]) {
    const onnx_value *v;
    REID_TRY(onnx_input_ints(c, 1, 0, &v));
    n = v->numel <= ONNX_MAX_DIMS ? (size_t)v->numel : 0;
    memcpy(axes, v->ints, sizeof(int64_t) * n);
  }
  for (size_t i = 0; i < n; i++) axes[i] += axes[i] < 0 ? x.rank : 0;
  int keep = (int)onnx_attr_int(c->node, "keepdims", 1);
  if (l2) {
    if (n != 1 || axes[0] != 1)
      return onnx_node_fail(c, REID_EUNSUPPORTED, "ReduceL2 over other axes than the channels");
    onnx_value v = {.kind = VAL_NORM, .act = x.act};
    if (onnx_bind(c, out_name(c), v) < 0)
      return reid_fail(REID_ENOMEM, "%s: out of memory", c->path);
    return REID_OK;
  }
  if (x.rank != 4 || n != 2 || !((axes[0] == 2 && axes[1] == 3) || (axes[0] == 3 && axes[1] == 2)))
    return onnx_node_fail(c, REID_EUNSUPPORTED, "ReduceMean over other axes than H and W");
  return built(c, net, net_unary(net, NODE_GAP, x.act), keep ? 4 : 2);
}

/* Gemm (A [N, in] x B + C) and MatMul (A [N, in] x B [in, out]): a linear layer */
static reid_status map_linear(onnx_ctx *c, reid_net *net, int gemm) {
  static const char *const known[] = {"alpha", "beta", "transA", "transB", NULL};
  REID_TRY(onnx_check_attrs(c, gemm ? known : NULL));
  onnx_value x;
  const onnx_value *w, *b = NULL;
  REID_TRY(input_plain(c, 0, 2, &x));
  REID_TRY(onnx_input_floats(c, 1, 0, &w));
  int trans_b = gemm && onnx_attr_int(c->node, "transB", 0);
  if (gemm && onnx_attr_int(c->node, "transA", 0))
    return onnx_node_fail(c, REID_EUNSUPPORTED, "transA = 1");
  int in = net->acts[x.act].c;
  if (w->ndim != 2 || w->dims[trans_b ? 1 : 0] != in || w->dims[trans_b ? 0 : 1] > (1 << 20))
    return onnx_node_fail(c, REID_EFORMAT, "weight '%s' does not take a %d-wide input", w->name,
                          in);
  int out = (int)w->dims[trans_b ? 0 : 1];
  if (gemm && c->node->n_input > 2 && c->node->input[2][0])
    REID_TRY(onnx_input_floats(c, 2, out, &b));
  float alpha = gemm ? onnx_attr_float(c->node, "alpha", 1) : 1;
  float beta = gemm ? onnx_attr_float(c->node, "beta", 1) : 1;
  char prefix[64];
  layer_prefix(w, prefix, sizeof prefix);
  int y = net_linear(net, prefix, x.act, out, b != NULL, INIT_LINEAR);
  if (y >= 0) {
    const net_node *n = &net->nodes[net->n_nodes - 1];
    REID_TRY(fill(c, n->weight, w, trans_b ? FILL_COPY : FILL_TRANSPOSE, alpha, 0));
    if (b) REID_TRY(fill(c, n->bias, b, FILL_COPY, beta, 0));
  }
  return built(c, net, y, 2);
}

/* InstanceNormalization(x, scale, B): InstanceNorm2d(affine=True), epsilon 1e-5 (the graph's) */
static reid_status map_instance_norm(onnx_ctx *c, reid_net *net) {
  static const char *const known[] = {"epsilon", NULL};
  REID_TRY(onnx_check_attrs(c, known));
  onnx_value x;
  REID_TRY(input_plain(c, 0, 4, &x));
  const net_act a = net->acts[x.act];
  const onnx_value *scale, *bias;
  REID_TRY(onnx_input_floats(c, 1, a.c, &scale));
  REID_TRY(onnx_input_floats(c, 2, a.c, &bias));
  float eps = onnx_attr_float(c->node, "epsilon", 1e-5f);
  if (eps != 1e-5f)
    return onnx_node_fail(c, REID_EUNSUPPORTED, "epsilon %g (instance norm runs with 1e-5)", eps);
  char prefix[64];
  layer_prefix(scale, prefix, sizeof prefix);
  int out = net_instance_norm(net, prefix, x.act);
  if (out >= 0) {
    const net_node *n = &net->nodes[net->n_nodes - 1];
    REID_TRY(fill(c, n->weight, scale, FILL_COPY, 1, 0));
    REID_TRY(fill(c, n->bias, bias, FILL_COPY, 1, 0));
  }
  return built(c, net, out, 4);
}

/* the channel axis of an activation's rank (1, or 1 - rank) */
static int is_channel_axis(int64_t axis, int rank) {
  return axis == 1 || axis == 1 - rank;
}

/* Concat of maps over channels (IBN-a's IN and BN halves); more inputs chain */
static reid_status map_concat(onnx_ctx *c, reid_net *net) {
  static const char *const known[] = {"axis", NULL};
  REID_TRY(onnx_check_attrs(c, known));
  if (c->node->n_input < 1) return onnx_node_fail(c, REID_EFORMAT, "no inputs");
  onnx_value first;
  REID_TRY(input_plain(c, 0, 0, &first));
  if (!is_channel_axis(onnx_attr_int(c->node, "axis", 0), first.rank))
    return onnx_node_fail(c, REID_EUNSUPPORTED, "concatenation over another axis than channels");
  int y = first.act;
  for (int i = 1; i < (int)c->node->n_input; i++) {
    onnx_value x;
    REID_TRY(input_plain(c, i, first.rank, &x));
    const net_act *p = &net->acts[y], *q = &net->acts[x.act];
    if (p->h != q->h || p->w != q->w)
      return onnx_node_fail(c, REID_EUNSUPPORTED, "concatenates %dx%d and %dx%d maps", p->h, p->w,
                            q->h, q->w);
    y = net_concat(net, y, x.act);
    if (y < 0) break;
  }
  return built(c, net, y, first.rank);
}

/* Split over channels: one channel slice per output */
static reid_status map_split(onnx_ctx *c, reid_net *net) {
  static const char *const known[] = {"axis", "split", "num_outputs", NULL};
  REID_TRY(onnx_check_attrs(c, known));
  onnx_value x;
  REID_TRY(input_plain(c, 0, 0, &x));
  if (!is_channel_axis(onnx_attr_int(c->node, "axis", 0), x.rank))
    return onnx_node_fail(c, REID_EUNSUPPORTED, "split over another axis than channels");
  const int channels = net->acts[x.act].c, n_out = (int)c->node->n_output;
  const int64_t *sizes = NULL;
  size_t n_sizes = 0;
  const Onnx__AttributeProto *a = onnx_attr(c->node, "split");
  if (a) {
    sizes = a->ints;
    n_sizes = a->n_ints;
  } else if (c->node->n_input > 1 && c->node->input[1][0]) {
    const onnx_value *v;
    REID_TRY(onnx_input_ints(c, 1, 0, &v));
    sizes = v->ints;
    n_sizes = (size_t)v->numel;
  }
  if (n_out < 1 || n_out > channels || (sizes && n_sizes != (size_t)n_out) ||
      (!sizes && channels % n_out))
    return onnx_node_fail(c, REID_EUNSUPPORTED, "%d outputs from %d channels (split sizes: %zu)",
                          n_out, channels, n_sizes);
  int c0 = 0;
  for (int i = 0; i < n_out; i++) {
    int64_t size = sizes ? sizes[i] : channels / n_out;
    if (size < 1 || c0 + size > channels)
      return onnx_node_fail(c, REID_EFORMAT, "split size %lld at channel %d of %d", (long long)size,
                            c0, channels);
    int y = net_slice(net, x.act, c0, (int)size);
    if (y < 0 || net->build_failed)
      return onnx_node_fail(c, REID_EUNSUPPORTED, "cannot build it (%s)", reid_last_error());
    onnx_value v = {.kind = VAL_ACT, .act = y, .rank = x.rank};
    const char *name = c->node->output[i] ? c->node->output[i] : "";
    if (name[0] && onnx_bind(c, name, v) < 0)
      return reid_fail(REID_ENOMEM, "%s: out of memory", c->path);
    c0 += (int)size;
  }
  if (c0 != channels)
    return onnx_node_fail(c, REID_EFORMAT, "split sizes add up to %d of %d channels", c0, channels);
  return REID_OK;
}

/* Slice(data, starts, ends, axes[, steps]) of channels with step 1 */
static reid_status map_slice(onnx_ctx *c, reid_net *net) {
  REID_TRY(onnx_check_attrs(c, NULL));
  onnx_value x;
  REID_TRY(input_plain(c, 0, 0, &x));
  const onnx_value *starts, *ends, *axes = NULL, *steps = NULL;
  REID_TRY(onnx_input_ints(c, 1, 0, &starts));
  REID_TRY(onnx_input_ints(c, 2, 0, &ends));
  if (c->node->n_input > 3 && c->node->input[3][0]) REID_TRY(onnx_input_ints(c, 3, 0, &axes));
  if (c->node->n_input > 4 && c->node->input[4][0]) REID_TRY(onnx_input_ints(c, 4, 0, &steps));
  if (starts->numel != 1 || ends->numel != 1 || !axes || axes->numel != 1 ||
      !is_channel_axis(axes->ints[0], x.rank) ||
      (steps && (steps->numel != 1 || steps->ints[0] != 1)))
    return onnx_node_fail(c, REID_EUNSUPPORTED, "only a slice of channels with step 1");
  const int64_t channels = net->acts[x.act].c;
  int64_t b = starts->ints[0], e = ends->ints[0];
  b = b < 0 ? b + channels : b;
  e = e < 0 ? e + channels : e;
  b = b < 0 ? 0 : b > channels ? channels : b;
  e = e < b ? b : e > channels ? channels : e;
  if (e == b) return onnx_node_fail(c, REID_EUNSUPPORTED, "an empty slice");
  return built(c, net, net_slice(net, x.act, (int)b, (int)(e - b)), x.rank);
}

/* the L2 normalisation at the end: LpNormalization, or x / (a norm of x) */
static reid_status map_l2(onnx_ctx *c, int lp) {
  static const char *const known[] = {"axis", "p", NULL};
  REID_TRY(onnx_check_attrs(c, lp ? known : NULL));
  onnx_value x;
  REID_TRY(onnx_input_act(c, 0, 0, &x));
  if (lp) {
    int64_t axis = onnx_attr_int(c->node, "axis", -1);
    if (onnx_attr_int(c->node, "p", 2) != 2 || x.rank != 2 || (axis != 1 && axis != -1))
      return onnx_node_fail(c, REID_EUNSUPPORTED, "only the L2 norm of an [N, D] output");
  } else {
    int d = onnx_input(c, 1, 0);
    if (d < 0) return REID_EFORMAT;
    if (c->values[d].kind != VAL_NORM || c->values[d].act != x.act)
      return onnx_node_fail(c, REID_EUNSUPPORTED,
                            "only the division of a feature by its own L2 norm is supported");
  }
  x.normalised = 1;
  c->output_normalised = 1;
  if (onnx_bind(c, out_name(c), x) < 0) return reid_fail(REID_ENOMEM, "%s: out of memory", c->path);
  return REID_OK;
}

/* Max(norm, eps) and Expand(norm, shape) in F.normalize's export */
static reid_status map_norm_passthrough(onnx_ctx *c) {
  int v = onnx_input(c, 0, 0);
  if (v < 0) return REID_EFORMAT;
  if (c->values[v].kind != VAL_NORM)
    return onnx_node_fail(c, REID_EUNSUPPORTED, "supported only inside an L2 normalisation");
  if (onnx_bind(c, out_name(c), c->values[v]) < 0)
    return reid_fail(REID_ENOMEM, "%s: out of memory", c->path);
  return REID_OK;
}

reid_status onnx_map_node(onnx_ctx *c, reid_net *net) {
  const Onnx__NodeProto *n = c->node;
  const char *op = n->op_type ? n->op_type : "";
  if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx"))
    return onnx_node_fail(c, REID_EUNSUPPORTED, "operator domain '%s' is not supported", n->domain);
  if (!n->n_output || !n->output[0] || !n->output[0][0])
    return onnx_node_fail(c, REID_EFORMAT, "no output name");
  reid_status st = REID_OK;
  if (onnx_map_shape_op(c, net, &st)) return st;
  if (!strcmp(op, "Conv")) return map_conv(c, net);
  if (!strcmp(op, "BatchNormalization")) return map_batchnorm(c, net);
  if (!strcmp(op, "Relu")) return map_unary(c, net, NODE_RELU);
  if (!strcmp(op, "Sigmoid")) return map_unary(c, net, NODE_SIGMOID);
  if (!strcmp(op, "Clip")) return map_clip(c, net);
  if (!strcmp(op, "Add")) return map_add(c, net);
  if (!strcmp(op, "Mul")) return map_mul(c, net);
  if (!strcmp(op, "Pad")) return map_pad(c);
  if (!strcmp(op, "MaxPool")) return map_pool(c, net, NODE_MAXPOOL);
  if (!strcmp(op, "AveragePool")) return map_pool(c, net, NODE_AVGPOOL);
  if (!strcmp(op, "GlobalAveragePool")) {
    REID_TRY(onnx_check_attrs(c, NULL));
    return map_unary(c, net, NODE_GAP);
  }
  if (!strcmp(op, "ReduceMean")) return map_reduce(c, net, 0);
  if (!strcmp(op, "ReduceL2")) return map_reduce(c, net, 1);
  if (!strcmp(op, "Gemm")) return map_linear(c, net, 1);
  if (!strcmp(op, "MatMul")) return map_linear(c, net, 0);
  if (!strcmp(op, "InstanceNormalization")) return map_instance_norm(c, net);
  if (!strcmp(op, "Concat")) return map_concat(c, net);
  if (!strcmp(op, "Split")) return map_split(c, net);
  if (!strcmp(op, "Slice")) return map_slice(c, net);
  if (!strcmp(op, "LpNormalization")) return map_l2(c, 1);
  if (!strcmp(op, "Div")) return map_l2(c, 0);
  if (!strcmp(op, "Max") || !strcmp(op, "Expand")) return map_norm_passthrough(c);
  return onnx_node_fail(c, REID_EUNSUPPORTED,
                        "operator %s is not supported (see README: ONNX import)", op);
}
