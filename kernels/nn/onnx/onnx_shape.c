/* The ONNX importer's constants and shape arithmetic: Constant, Shape, Gather,
 * Unsqueeze, Squeeze, Concat (of integers), Cast, Identity, Dropout, and the
 * reshapes of a [N, C, 1, 1] feature (Flatten, Reshape, Squeeze, Unsqueeze),
 * which cost nothing: the activation is the same memory at rank 2 or 4.
 *
 * Exporters compute a dynamic reshape from the input's own shape
 * (x.view(x.size(0), -1) exports as Shape -> Gather -> Unsqueeze -> Concat ->
 * Reshape): integer constants carry the symbolic batch as ONNX_BATCH so that
 * the Reshape sees [batch, -1]. */
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

static const char *out_name(onnx_ctx *c, int i) {
  return i < (int)c->node->n_output && c->node->output[i] ? c->node->output[i] : "";
}

/* binds output 0 to a copy of `v` (integer constants duplicated) */
static reid_status bind_copy(onnx_ctx *c, onnx_value v) {
  if (v.kind == VAL_CONST && v.ints)
    return onnx_bind_ints(c, out_name(c, 0), v.ndim, v.dims, v.ints);
  if (onnx_bind(c, out_name(c, 0), v) < 0)
    return reid_fail(REID_ENOMEM, "%s: out of memory", c->path);
  return REID_OK;
}

static reid_status bind_act(onnx_ctx *c, onnx_value v, int rank) {
  v.rank = rank;
  return bind_copy(c, v);
}

/* axes of Squeeze / Unsqueeze: the attribute (opset < 13) or input 1 */
static reid_status read_axes(onnx_ctx *c, int64_t *axes, int *n, int rank) {
  *n = 0;
  const Onnx__AttributeProto *a = onnx_attr(c->node, "axes");
  const int64_t *src = NULL;
  size_t count = 0;
  if (a) {
    src = a->ints;
    count = a->n_ints;
  } else if (c->node->n_input > 1 && c->node->input[1] && c->node->input[1][0]) {
    const onnx_value *v;
    REID_TRY(onnx_input_ints(c, 1, 0, &v));
    src = v->ints;
    count = (size_t)v->numel;
  }
  if (count > ONNX_MAX_DIMS) return onnx_node_fail(c, REID_EUNSUPPORTED, "too many axes");
  for (size_t i = 0; i < count; i++) {
    int64_t x = src[i] < 0 ? src[i] + rank : src[i];
    if (x < 0 || x >= rank)
      return onnx_node_fail(c, REID_EFORMAT, "axis %lld out of range", (long long)src[i]);
    axes[(*n)++] = x;
  }
  return REID_OK;
}

static int axes_are_hw(const int64_t *axes, int n) {
  return n == 2 && ((axes[0] == 2 && axes[1] == 3) || (axes[0] == 3 && axes[1] == 2));
}

static reid_status map_constant(onnx_ctx *c) {
  static const char *const known[] = {"value",     "value_float", "value_floats",
                                      "value_int", "value_ints",  NULL};
  REID_TRY(onnx_check_attrs(c, known));
  const Onnx__AttributeProto *a;
  if ((a = onnx_attr(c->node, "value")) && a->t) return onnx_bind_const(c, out_name(c, 0), a->t);
  if ((a = onnx_attr(c->node, "value_int")) && a->has_i) {
    return onnx_bind_ints(c, out_name(c, 0), 0, NULL, &a->i);
  }
  if ((a = onnx_attr(c->node, "value_ints"))) {
    int64_t dims[1] = {(int64_t)a->n_ints};
    return onnx_bind_ints(c, out_name(c, 0), 1, dims, a->ints);
  }
  return onnx_node_fail(c, REID_EUNSUPPORTED,
                        "only tensor and integer constants are supported (value, value_int, "
                        "value_ints)");
}

static reid_status map_shape(onnx_ctx *c, const reid_net *net) {
  static const char *const known[] = {"start", "end", NULL};
  REID_TRY(onnx_check_attrs(c, known));
  int v = onnx_input(c, 0, 0);
  if (v < 0) return REID_EFORMAT;
  const onnx_value *x = &c->values[v];
  int64_t dims[ONNX_MAX_DIMS];
  int rank;
  if (x->kind == VAL_ACT) {
    const net_act *a = &net->acts[x->act];
    rank = x->rank;
    int64_t d4[4] = {ONNX_BATCH, a->c, a->h, a->w};
    memcpy(dims, d4, sizeof d4);
  } else if (x->kind == VAL_CONST) {
    rank = x->ndim;
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)rank);
  } else {
    return onnx_node_fail(c, REID_EUNSUPPORTED, "the shape of '%s' is not known", x->name);
  }
  int64_t start = onnx_attr_int(c->node, "start", 0), end = onnx_attr_int(c->node, "end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = start < 0 ? 0 : start > rank ? rank : start;
  end = end < start ? start : end > rank ? rank : end;
  int64_t n[1] = {end - start};
  return onnx_bind_ints(c, out_name(c, 0), 1, n, dims + start);
}

/* x[..., 0] of a pooled feature [N, C, 1, 1] (fast-reid's head: neck_feat[..., 0, 0]): a
 * scalar index 0 on a spatial axis of size 1 drops that axis (rank 4 -> 3 -> 2) */
static reid_status gather_pooled(onnx_ctx *c, const reid_net *net, onnx_value x) {
  const onnx_value *idx;
  REID_TRY(onnx_input_ints(c, 1, 0, &idx));
  int64_t axis = onnx_attr_int(c->node, "axis", 0);
  axis += axis < 0 ? x.rank : 0;
  const net_act *a = &net->acts[x.act];
  if (x.rank < 3 || axis < 2 || axis >= x.rank || idx->ndim != 0 || idx->ints[0] != 0 ||
      a->h != 1 || a->w != 1)
    return onnx_node_fail(c, REID_EUNSUPPORTED,
                          "only index 0 of a size-1 axis of a pooled feature [N, C, 1, 1] (the "
                          "map is [N, %d, %d, %d], axis %lld)",
                          a->c, a->h, a->w, (long long)axis);
  x.rank--;
  return bind_copy(c, x);
}

static reid_status map_gather(onnx_ctx *c, const reid_net *net) {
  static const char *const known[] = {"axis", NULL};
  REID_TRY(onnx_check_attrs(c, known));
  int v = onnx_input(c, 0, 0);
  if (v < 0) return REID_EFORMAT;
  if (c->values[v].kind == VAL_ACT) return gather_pooled(c, net, c->values[v]);
  const onnx_value *data, *idx;
  REID_TRY(onnx_input_ints(c, 0, 1, &data));
  REID_TRY(onnx_input_ints(c, 1, 0, &idx));
  if (data->ndim != 1 || onnx_attr_int(c->node, "axis", 0) != 0 || idx->ndim > 1 ||
      idx->numel > ONNX_MAX_DIMS)
    return onnx_node_fail(c, REID_EUNSUPPORTED,
                          "only gathers from a 1-D integer constant (a shape) are supported");
  int64_t out[ONNX_MAX_DIMS];
  for (int64_t i = 0; i < idx->numel; i++) {
    int64_t k = idx->ints[i] < 0 ? idx->ints[i] + data->numel : idx->ints[i];
    if (k < 0 || k >= data->numel)
      return onnx_node_fail(c, REID_EFORMAT, "index %lld out of range", (long long)idx->ints[i]);
    out[i] = data->ints[k];
  }
  return onnx_bind_ints(c, out_name(c, 0), idx->ndim, idx->dims, out);
}

static reid_status map_unsqueeze(onnx_ctx *c) {
  static const char *const known[] = {"axes", NULL};
  REID_TRY(onnx_check_attrs(c, known));
  int v = onnx_input(c, 0, 0);
  if (v < 0) return REID_EFORMAT;
  onnx_value x = c->values[v];
  int64_t axes[ONNX_MAX_DIMS];
  int n;
  if (x.kind == VAL_ACT) {
    REID_TRY(read_axes(c, axes, &n, x.rank + 2));
    if (x.rank == 2 && axes_are_hw(axes, n)) return bind_act(c, x, 4);
    return onnx_node_fail(c, REID_EUNSUPPORTED, "only [N, C] -> [N, C, 1, 1] is supported");
  }
  if (x.kind != VAL_CONST || !x.ints || x.ndim > 1)
    return onnx_node_fail(c, REID_EUNSUPPORTED, "only integer scalars and vectors unsqueeze");
  REID_TRY(read_axes(c, axes, &n, x.ndim + 1));
  if (n != 1) return onnx_node_fail(c, REID_EUNSUPPORTED, "only one axis is supported");
  int64_t dims[2] = {x.numel, 1};
  if (x.ndim == 0)
    dims[0] = 1;
  else if (axes[0] == 0)
    dims[0] = 1, dims[1] = x.numel;
  return onnx_bind_ints(c, out_name(c, 0), x.ndim + 1, dims, x.ints);
}

static reid_status map_squeeze(onnx_ctx *c, const reid_net *net) {
  static const char *const known[] = {"axes", NULL};
  REID_TRY(onnx_check_attrs(c, known));
  onnx_value x;
  REID_TRY(onnx_input_act(c, 0, 4, &x));
  int64_t axes[ONNX_MAX_DIMS] = {2, 3};
  int n = 2;
  if (onnx_attr(c->node, "axes") || (c->node->n_input > 1 && c->node->input[1][0]))
    REID_TRY(read_axes(c, axes, &n, 4));
  const net_act *a = &net->acts[x.act];
  if (a->h == 1 && a->w == 1 && axes_are_hw(axes, n)) return bind_act(c, x, 2);
  return onnx_node_fail(c, REID_EUNSUPPORTED, "only [N, C, 1, 1] -> [N, C] is supported");
}

static reid_status map_concat_ints(onnx_ctx *c) {
  int64_t out[ONNX_MAX_DIMS];
  int64_t n = 0;
  if (onnx_attr_int(c->node, "axis", 0) != 0)
    return onnx_node_fail(c, REID_EUNSUPPORTED, "integer concat on an axis other than 0");
  for (int i = 0; i < (int)c->node->n_input; i++) {
    const onnx_value *v;
    REID_TRY(onnx_input_ints(c, i, 1, &v));
    if (v->ndim != 1 || n + v->numel > ONNX_MAX_DIMS)
      return onnx_node_fail(c, REID_EUNSUPPORTED, "only short 1-D integer vectors concatenate");
    memcpy(out + n, v->ints, sizeof(int64_t) * (size_t)v->numel);
    n += v->numel;
  }
  return onnx_bind_ints(c, out_name(c, 0), 1, &n, out);
}

static reid_status map_cast(onnx_ctx *c) {
  static const char *const known[] = {"to", "saturate", NULL};
  REID_TRY(onnx_check_attrs(c, known));
  int64_t to = onnx_attr_int(c->node, "to", 0);
  int v = onnx_input(c, 0, 0);
  if (v < 0) return REID_EFORMAT;
  onnx_value x = c->values[v];
  int is_int =
      to == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || to == ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
  int is_float = to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  if ((x.kind == VAL_CONST && x.ints && is_int) || (x.kind == VAL_ACT && is_float))
    return bind_copy(c, x);
  return onnx_node_fail(c, REID_EUNSUPPORTED, "cast of '%s' to type %lld", x.name, (long long)to);
}

/* [N, C, h, w] -> target: only reshapes that keep the memory and end as [N, C] or [N, C, 1, 1] */
static reid_status map_reshape(onnx_ctx *c, const reid_net *net) {
  static const char *const known[] = {"allowzero", NULL};
  REID_TRY(onnx_check_attrs(c, known));
  onnx_value x;
  const onnx_value *shape;
  REID_TRY(onnx_input_act(c, 0, 0, &x));
  REID_TRY(onnx_input_ints(c, 1, 1, &shape));
  const net_act *a = &net->acts[x.act];
  int64_t in[4] = {ONNX_BATCH, a->c, a->h, a->w}, t[ONNX_MAX_DIMS];
  int64_t per_sample = (int64_t)a->c * a->h * a->w, known_prod = 1;
  int rank = (int)shape->numel, minus = -1;
  if (shape->ndim != 1 || rank < 2 || rank > 4)
    return onnx_node_fail(c, REID_EUNSUPPORTED, "reshape to rank %d", rank);
  int allowzero = (int)onnx_attr_int(c->node, "allowzero", 0);
  for (int i = 0; i < rank; i++) {
    t[i] = shape->ints[i];
    if (t[i] == 0 && !allowzero && i < x.rank) t[i] = in[i];
    if (i == 0 && (t[i] == ONNX_BATCH || t[i] == -1 || t[i] == 1)) continue; /* the batch */
    if (t[i] == -1 && minus < 0)
      minus = i;
    else if (t[i] < 1 || t[i] > (1 << 24))
      return onnx_node_fail(c, REID_EUNSUPPORTED, "target dim %d is %lld", i, (long long)t[i]);
    else
      known_prod *= t[i];
  }
  if (t[0] == -1 && minus >= 0)
    return onnx_node_fail(c, REID_EUNSUPPORTED, "two unknown dims in the target shape");
  if (minus >= 0)
    t[minus] = known_prod > 0 && per_sample % known_prod == 0 ? per_sample / known_prod : 0;
  else if (known_prod != per_sample)
    return onnx_node_fail(c, REID_EFORMAT, "%lld elements per sample cannot take the target shape",
                          (long long)per_sample);
  if (rank == 2 && a->h == 1 && a->w == 1 && t[1] == a->c) return bind_act(c, x, 2);
  if (rank == 4 && t[1] == a->c && t[2] == a->h && t[3] == a->w) return bind_act(c, x, 4);
  return onnx_node_fail(c, REID_EUNSUPPORTED,
                        "reshape of a [N, %d, %d, %d] map: only [N, C, 1, 1] <-> [N, C] is "
                        "supported",
                        a->c, a->h, a->w);
}

static reid_status map_flatten(onnx_ctx *c, const reid_net *net) {
  static const char *const known[] = {"axis", NULL};
  REID_TRY(onnx_check_attrs(c, known));
  onnx_value x;
  REID_TRY(onnx_input_act(c, 0, 0, &x));
  const net_act *a = &net->acts[x.act];
  if (onnx_attr_int(c->node, "axis", 1) == 1 && a->h == 1 && a->w == 1) return bind_act(c, x, 2);
  return onnx_node_fail(c, REID_EUNSUPPORTED,
                        "only flattening a [N, C, 1, 1] feature at axis 1 is supported (input "
                        "[N, %d, %d, %d])",
                        a->c, a->h, a->w);
}

static reid_status map_identity(onnx_ctx *c) {
  static const char *const known[] = {"ratio", "seed", "is_test", NULL};
  REID_TRY(onnx_check_attrs(c, known));
  int v = onnx_input(c, 0, 0);
  if (v < 0) return REID_EFORMAT;
  return bind_copy(c, c->values[v]); /* Dropout's mask output, if any, is never read by us */
}

static int all_inputs_const(onnx_ctx *c) {
  for (size_t i = 0; i < c->node->n_input; i++) {
    int v = c->node->input[i] ? onnx_find(c, c->node->input[i]) : -1;
    if (v < 0 || c->values[v].kind != VAL_CONST) return 0;
  }
  return 1;
}

int onnx_map_shape_op(onnx_ctx *c, reid_net *net, reid_status *st) {
  const char *op = c->node->op_type ? c->node->op_type : "";
  if (!strcmp(op, "Constant"))
    *st = map_constant(c);
  else if (!strcmp(op, "Shape"))
    *st = map_shape(c, net);
  else if (!strcmp(op, "Gather"))
    *st = map_gather(c, net);
  else if (!strcmp(op, "Unsqueeze"))
    *st = map_unsqueeze(c);
  else if (!strcmp(op, "Squeeze"))
    *st = map_squeeze(c, net);
  else if (!strcmp(op, "Concat") && all_inputs_const(c))
    *st = map_concat_ints(c);
  else if (!strcmp(op, "Cast"))
    *st = map_cast(c);
  else if (!strcmp(op, "Reshape"))
    *st = map_reshape(c, net);
  else if (!strcmp(op, "Flatten"))
    *st = map_flatten(c, net);
  else if (!strcmp(op, "Identity") || !strcmp(op, "Dropout"))
    *st = map_identity(c);
  else
    return 0;
  return 1;
}
