/* The ONNX importer's name table: values, constants decoded from
 * TensorProtos (validated against their dims), attributes, and messages that
 * name the node being mapped. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "onnx_internal.h"

static const char *str(const char *s) {
  return s ? s : "";
}

reid_status onnx_node_fail(onnx_ctx *c, reid_status code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return reid_fail(code, "%s: node '%s' (#%d, %s): %s", c->path, str(c->node->name), c->node_index,
                   str(c->node->op_type), msg);
}

int onnx_find(const onnx_ctx *c, const char *name) {
  for (int i = c->n_values - 1; i >= 0; i--)
    if (!strcmp(c->values[i].name, name)) return i;
  return -1;
}

int onnx_bind(onnx_ctx *c, const char *name, onnx_value v) {
  if (c->n_values == c->cap_values) {
    int cap = c->cap_values ? 2 * c->cap_values : 256;
    onnx_value *grown = realloc(c->values, sizeof *grown * (size_t)cap);
    if (!grown) return -1;
    c->values = grown;
    c->cap_values = cap;
  }
  v.name = name;
  c->values[c->n_values] = v;
  return c->n_values++;
}

static const char *dtype_name(int32_t t) {
  switch (t) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return "float";
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: return "float16";
  case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: return "bfloat16";
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return "double";
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return "int64";
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return "int32";
  default: return NULL;
  }
}

static int is_float_type(int32_t t) {
  return t == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || t == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 ||
         t == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16 || t == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
}

/* bytes per element in raw_data, and the count the typed field holds */
static size_t elem_size(int32_t t) {
  switch (t) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
  case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: return 2;
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return 4;
  default: return 8;
  }
}

static size_t typed_count(const Onnx__TensorProto *t) {
  switch (t->data_type) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return t->n_float_data;
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return t->n_double_data;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return t->n_int64_data;
  default: return t->n_int32_data; /* int32, float16, bfloat16 */
  }
}

static uint64_t raw_u(const uint8_t *p, size_t size) {
  uint64_t v = 0;
  for (size_t b = 0; b < size; b++) v |= (uint64_t)p[b] << (8 * b); /* little-endian */
  return v;
}

/* element i of a validated tensor as double (integers exactly up to 2^53; as int64 below) */
static double elem_f(const Onnx__TensorProto *t, size_t i) {
  size_t es = elem_size(t->data_type);
  int raw = t->has_raw_data && t->raw_data.len;
  uint64_t u = raw ? raw_u(t->raw_data.data + i * es, es) : 0;
  switch (t->data_type) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    return raw ? half_f32_from_bits((uint32_t)u) : t->float_data[i];
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
    double d;
    if (!raw) return t->double_data[i];
    memcpy(&d, &u, sizeof d);
    return d;
  }
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
    return half_to_float((uint16_t)(raw ? u : (uint32_t)t->int32_data[i]));
  case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
    return half_f32_from_bits((uint32_t)(raw ? u : (uint32_t)t->int32_data[i]) << 16);
  default: return 0;
  }
}

static int64_t elem_i(const Onnx__TensorProto *t, size_t i) {
  int raw = t->has_raw_data && t->raw_data.len;
  if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
    return raw ? (int64_t)raw_u(t->raw_data.data + 8 * i, 8) : t->int64_data[i];
  return raw ? (int32_t)(uint32_t)raw_u(t->raw_data.data + 4 * i, 4) : t->int32_data[i];
}

reid_status onnx_bind_const(onnx_ctx *c, const char *name, const Onnx__TensorProto *t) {
  const char *tn = str(name);
  if (t->n_external_data ||
      (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)) {
    const char *loc = "?";
    for (size_t i = 0; i < t->n_external_data; i++)
      if (t->external_data[i] && !strcmp(str(t->external_data[i]->key), "location"))
        loc = str(t->external_data[i]->value);
    return reid_fail(REID_EUNSUPPORTED,
                     "%s: tensor '%s' keeps its data in an external file ('%s'); reid reads "
                     "weights stored inside the .onnx only (save with "
                     "save_as_external_data=False)",
                     c->path, tn, loc);
  }
  if (!t->has_data_type || !dtype_name(t->data_type))
    return reid_fail(REID_EUNSUPPORTED,
                     "%s: tensor '%s' has data type %d (reid reads float, float16, bfloat16, "
                     "double, int64 and int32)",
                     c->path, tn, (int)t->data_type);
  if (t->n_dims > ONNX_MAX_DIMS)
    return reid_fail(REID_EUNSUPPORTED, "%s: tensor '%s' has %zu dims (at most %d)", c->path, tn,
                     t->n_dims, ONNX_MAX_DIMS);
  onnx_value v = {.kind = VAL_CONST, .dtype = t->data_type, .ndim = (int)t->n_dims, .numel = 1};
  for (size_t d = 0; d < t->n_dims; d++) {
    if (t->dims[d] < 0 || (t->dims[d] > 0 && v.numel > (INT64_C(1) << 34) / t->dims[d]))
      return reid_fail(REID_EFORMAT, "%s: tensor '%s' has dim %zu = %lld", c->path, tn, d,
                       (long long)t->dims[d]);
    v.dims[d] = t->dims[d];
    v.numel *= t->dims[d];
  }
  size_t es = elem_size(t->data_type);
  int raw = t->has_raw_data && t->raw_data.len;
  size_t have = raw ? t->raw_data.len : typed_count(t) * es;
  if ((raw && t->raw_data.len % es) || have != (size_t)v.numel * es)
    return reid_fail(REID_EFORMAT,
                     "%s: tensor '%s' holds %zu bytes of %s for dims of %lld elements (%lld "
                     "bytes): truncated or corrupt",
                     c->path, tn, have, dtype_name(t->data_type), (long long)v.numel,
                     (long long)v.numel * (long long)es);
  if (is_float_type(t->data_type)) {
    v.tensor = t;
  } else {
    v.ints = malloc(sizeof(int64_t) * (size_t)(v.numel ? v.numel : 1));
    if (!v.ints) return reid_fail(REID_ENOMEM, "%s: out of memory", c->path);
    for (int64_t i = 0; i < v.numel; i++) v.ints[i] = elem_i(t, (size_t)i);
  }
  if (onnx_bind(c, tn, v) < 0) {
    free(v.ints);
    return reid_fail(REID_ENOMEM, "%s: out of memory", c->path);
  }
  return REID_OK;
}

reid_status onnx_bind_ints(onnx_ctx *c, const char *name, int ndim, const int64_t *dims,
                           const int64_t *ints) {
  onnx_value v = {.kind = VAL_CONST, .dtype = ONNX__TENSOR_PROTO__DATA_TYPE__INT64, .ndim = ndim};
  v.numel = 1;
  for (int d = 0; d < ndim; d++) v.numel *= (v.dims[d] = dims[d]);
  v.ints = malloc(sizeof(int64_t) * (size_t)(v.numel ? v.numel : 1));
  if (!v.ints) return reid_fail(REID_ENOMEM, "%s: out of memory", c->path);
  memcpy(v.ints, ints, sizeof(int64_t) * (size_t)v.numel);
  if (onnx_bind(c, name, v) < 0) {
    free(v.ints);
    return reid_fail(REID_ENOMEM, "%s: out of memory", c->path);
  }
  return REID_OK;
}

int onnx_input(onnx_ctx *c, int i, int optional) {
  const Onnx__NodeProto *n = c->node;
  if (i >= (int)n->n_input || !n->input[i] || !n->input[i][0]) {
    if (!optional) onnx_node_fail(c, REID_EFORMAT, "input %d is missing", i);
    return -1;
  }
  int v = onnx_find(c, n->input[i]);
  if (v < 0) onnx_node_fail(c, REID_EFORMAT, "input '%s' is not defined before it", n->input[i]);
  return v;
}

reid_status onnx_input_act(onnx_ctx *c, int i, int rank, onnx_value *out) {
  int v = onnx_input(c, i, 0);
  if (v < 0) return REID_EFORMAT;
  if (c->values[v].kind != VAL_ACT)
    return onnx_node_fail(c, REID_EUNSUPPORTED, "input '%s' must be a feature map, not a %s",
                          c->values[v].name, c->values[v].kind == VAL_CONST ? "constant" : "norm");
  if (rank && c->values[v].rank != rank)
    return onnx_node_fail(c, REID_EUNSUPPORTED, "input '%s' has rank %d, expected %d",
                          c->values[v].name, c->values[v].rank, rank);
  *out = c->values[v];
  return REID_OK;
}

reid_status onnx_input_ints(onnx_ctx *c, int i, int allow_batch, const onnx_value **out) {
  int v = onnx_input(c, i, 0);
  if (v < 0) return REID_EFORMAT;
  const onnx_value *x = &c->values[v];
  if (x->kind != VAL_CONST || !x->ints)
    return onnx_node_fail(c, REID_EUNSUPPORTED,
                          "input '%s' must be an integer constant (a shape this importer can "
                          "resolve)",
                          x->name);
  for (int64_t k = 0; !allow_batch && k < x->numel; k++)
    if (x->ints[k] == ONNX_BATCH)
      return onnx_node_fail(c, REID_EUNSUPPORTED, "input '%s' depends on the dynamic batch",
                            x->name);
  *out = x;
  return REID_OK;
}

reid_status onnx_input_floats(onnx_ctx *c, int i, int64_t numel, const onnx_value **out) {
  int v = onnx_input(c, i, 0);
  if (v < 0) return REID_EFORMAT;
  const onnx_value *x = &c->values[v];
  if (x->kind != VAL_CONST || !x->tensor)
    return onnx_node_fail(c, REID_EUNSUPPORTED, "input '%s' must be a float initializer", x->name);
  if (numel && x->numel != numel)
    return onnx_node_fail(c, REID_EFORMAT, "input '%s' has %lld elements, expected %lld", x->name,
                          (long long)x->numel, (long long)numel);
  *out = x;
  return REID_OK;
}

reid_status onnx_read_floats(const onnx_ctx *c, const onnx_value *v, float *dst) {
  (void)c;
  for (int64_t i = 0; i < v->numel; i++) dst[i] = (float)elem_f(v->tensor, (size_t)i);
  return REID_OK;
}

reid_status onnx_scalar(const onnx_ctx *c, const onnx_value *v, float *out) {
  if (v->kind != VAL_CONST || v->numel != 1)
    return reid_fail(REID_EUNSUPPORTED, "%s: '%s' is not a scalar constant", c->path, v->name);
  *out = v->tensor ? (float)elem_f(v->tensor, 0) : (float)v->ints[0];
  return REID_OK;
}

int onnx_add_fill(onnx_ctx *c, int tensor, int value, onnx_fill_kind kind, float scale,
                  float shift) {
  if (tensor < 0) return -1;
  if (c->n_fills == c->cap_fills) {
    int cap = c->cap_fills ? 2 * c->cap_fills : 256;
    onnx_fill *grown = realloc(c->fills, sizeof *grown * (size_t)cap);
    if (!grown) return -1;
    c->fills = grown;
    c->cap_fills = cap;
  }
  c->fills[c->n_fills++] = (onnx_fill){tensor, value, kind, scale, shift};
  return 0;
}

const Onnx__AttributeProto *onnx_attr(const Onnx__NodeProto *n, const char *name) {
  for (size_t i = 0; i < n->n_attribute; i++)
    if (n->attribute[i] && !strcmp(str(n->attribute[i]->name), name)) return n->attribute[i];
  return NULL;
}

int64_t onnx_attr_int(const Onnx__NodeProto *n, const char *name, int64_t dflt) {
  const Onnx__AttributeProto *a = onnx_attr(n, name);
  return a && a->has_i ? a->i : dflt;
}

float onnx_attr_float(const Onnx__NodeProto *n, const char *name, float dflt) {
  const Onnx__AttributeProto *a = onnx_attr(n, name);
  return a && a->has_f ? a->f : dflt;
}

reid_status onnx_check_attrs(onnx_ctx *c, const char *const *known) {
  for (size_t i = 0; i < c->node->n_attribute; i++) {
    const char *name = c->node->attribute[i] ? str(c->node->attribute[i]->name) : "";
    int ok = 0;
    for (int k = 0; known && known[k] && !ok; k++) ok = !strcmp(name, known[k]);
    if (!ok) return onnx_node_fail(c, REID_EUNSUPPORTED, "attribute '%s' is not supported", name);
  }
  return REID_OK;
}
