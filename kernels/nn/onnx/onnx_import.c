/* ONNX import: the model file (protobuf-c), its opset, input, output and
 * metadata_props; the graph's nodes mapped in order (onnx_ops.c,
 * onnx_shape.c) by a network builder; then the weights filled from the
 * initializers. See onnx_import.h for what is read. */
#include "onnx_import.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fileio.h"
#include "onnx_internal.h"

#define OPSET_MIN 11
#define OPSET_MAX 21

static const char *str(const char *s) {
  return s ? s : "";
}

static reid_status parse_rgb(const char *what, const char *text, float *out) {
  const char *p = text;
  for (int i = 0; i < 3; i++) {
    char *end;
    out[i] = strtof(p, &end);
    if (end == p || !isfinite(out[i]) || (i < 2 && *end != ',') || (i == 2 && *end))
      return reid_fail(REID_EINVAL, "%s '%s' is not three numbers \"r,g,b\"", what, text);
    p = end + 1;
  }
  return REID_OK;
}

reid_status reid_onnx_options_parse(reid_onnx_options *o, const char *size, const char *mean,
                                    const char *std) {
  memset(o, 0, sizeof *o);
  if (size && *size) {
    int h, w, n = 0;
    if (sscanf(size, "%dx%d%n", &h, &w, &n) != 2 || size[n] || h < 32 || w < 32 || h > 4096 ||
        w > 4096)
      return reid_fail(REID_EINVAL, "input size '%s' is not HxW (32..4096), e.g. 256x128", size);
    o->input_height = h;
    o->input_width = w;
  }
  if (mean && *mean) {
    REID_TRY(parse_rgb("mean", mean, o->mean));
    o->has_mean = 1;
  }
  if (std && *std) {
    REID_TRY(parse_rgb("std", std, o->std));
    for (int i = 0; i < 3; i++)
      if (!(o->std[i] > 0)) return reid_fail(REID_EINVAL, "std '%s' must be > 0", std);
    o->has_std = 1;
  }
  return REID_OK;
}

void reid_onnx_options_apply(const reid_onnx_options *o, reid_model_config *cfg) {
  if (o->input_height) cfg->input_height = o->input_height;
  if (o->input_width) cfg->input_width = o->input_width;
  if (o->has_mean) memcpy(cfg->mean, o->mean, sizeof cfg->mean);
  if (o->has_std) memcpy(cfg->std, o->std, sizeof cfg->std);
}

int reid_onnx_is_path(const char *path) {
  size_t n = path ? strlen(path) : 0;
  return n >= 5 && !strcasecmp(path + n - 5, ".onnx");
}

static const char *meta(const Onnx__ModelProto *m, const char *key) {
  for (size_t i = 0; i < m->n_metadata_props; i++)
    if (m->metadata_props[i] && !strcmp(str(m->metadata_props[i]->key), key))
      return str(m->metadata_props[i]->value);
  return NULL;
}

static reid_status meta_int(onnx_ctx *c, const char *key, int *out) {
  const char *v = meta(c->model, key);
  if (!v) return REID_OK;
  char *end;
  long x = strtol(v, &end, 10);
  if (end == v || *end || x < 32 || x > 4096)
    return reid_fail(REID_EFORMAT, "%s: metadata %s='%s' is not a size in 32..4096", c->path, key,
                     v);
  *out = (int)x;
  return REID_OK;
}

static reid_status meta_rgb(onnx_ctx *c, const char *key, float *out) {
  const char *v = meta(c->model, key);
  if (v && parse_rgb(key, v, out) != REID_OK)
    return reid_fail_context(REID_EFORMAT, "%s: metadata", c->path);
  return REID_OK;
}

static reid_status read_opset(onnx_ctx *c) {
  const Onnx__ModelProto *m = c->model;
  for (size_t i = 0; i < m->n_opset_import; i++) {
    const Onnx__OperatorSetIdProto *o = m->opset_import[i];
    if (o && (!o->domain || !o->domain[0] || !strcmp(o->domain, "ai.onnx")))
      c->opset = o->has_version ? (int)o->version : 0;
  }
  if (c->opset < OPSET_MIN || c->opset > OPSET_MAX)
    return reid_fail(REID_EUNSUPPORTED, "%s: opset %d of the default domain (reid reads %d to %d)",
                     c->path, c->opset, OPSET_MIN, OPSET_MAX);
  return REID_OK;
}

static int is_initializer(const Onnx__GraphProto *g, const char *name) {
  for (size_t i = 0; i < g->n_initializer; i++)
    if (g->initializer[i] && !strcmp(str(g->initializer[i]->name), name)) return 1;
  return 0;
}

/* the single float [N, 3, H, W] input; *h, *w = its fixed size or 0 */
static reid_status read_input(onnx_ctx *c, const char **name, int *h, int *w) {
  const Onnx__GraphProto *g = c->graph;
  const Onnx__ValueInfoProto *in = NULL;
  int count = 0;
  for (size_t i = 0; i < g->n_input; i++)
    if (g->input[i] && !is_initializer(g, str(g->input[i]->name))) {
      in = g->input[i];
      count++;
    }
  if (count != 1)
    return reid_fail(REID_EUNSUPPORTED, "%s: the graph has %d inputs (reid feeds one image batch)",
                     c->path, count);
  *name = str(in->name);
  const Onnx__TypeProto *t = in->type;
  const Onnx__TypeProto__Tensor *tt =
      t && t->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ? t->tensor_type : NULL;
  if (!tt || tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || !tt->shape ||
      tt->shape->n_dim != 4)
    return reid_fail(REID_EUNSUPPORTED, "%s: input '%s' must be a float32 tensor [N, 3, H, W]",
                     c->path, *name);
  int64_t d[4];
  for (int i = 0; i < 4; i++) {
    const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[i];
    d[i] = dim && dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
               ? dim->dim_value
               : 0;
  }
  if (d[1] != 3)
    return reid_fail(REID_EUNSUPPORTED, "%s: input '%s' has %lld channels, not 3 (RGB)", c->path,
                     *name, (long long)d[1]);
  for (int i = 2; i < 4; i++)
    if (d[i] != 0 && (d[i] < 32 || d[i] > 4096))
      return reid_fail(REID_EUNSUPPORTED, "%s: input '%s' is %lldx%lld (reid runs 32..4096)",
                       c->path, *name, (long long)d[2], (long long)d[3]);
  *h = (int)d[2];
  *w = (int)d[3];
  return REID_OK;
}

/* input size and normalisation: fixed dims, else options, else metadata, else 256x128 */
static reid_status read_config(onnx_ctx *c, const reid_onnx_options *o, reid_model_config *cfg,
                               const char **input) {
  reid_model_config_default(cfg);
  cfg->arch = REID_ARCH_ONNX;
  int fh = 0, fw = 0, mh = 0, mw = 0;
  REID_TRY(read_input(c, input, &fh, &fw));
  REID_TRY(meta_int(c, "input_height", &mh));
  REID_TRY(meta_int(c, "input_width", &mw));
  REID_TRY(meta_rgb(c, "mean", cfg->mean));
  REID_TRY(meta_rgb(c, "std", cfg->std));
  int oh = o ? o->input_height : 0, ow = o ? o->input_width : 0;
  cfg->input_height = fh ? fh : oh ? oh : mh ? mh : cfg->input_height;
  cfg->input_width = fw ? fw : ow ? ow : mw ? mw : cfg->input_width;
  if ((fh && oh && oh != fh) || (fw && ow && ow != fw))
    return reid_fail(REID_EINVAL, "%s: the graph's input is fixed at %dx%d; it cannot run %dx%d",
                     c->path, fh, fw, oh ? oh : fh, ow ? ow : fw);
  if (o && o->has_mean) memcpy(cfg->mean, o->mean, sizeof cfg->mean);
  if (o && o->has_std) memcpy(cfg->std, o->std, sizeof cfg->std);
  const char *g = str(c->graph->name);
  snprintf(cfg->description, sizeof cfg->description, "ONNX graph '%s' (%s %s, opset %d)", g,
           str(c->model->producer_name), str(c->model->producer_version), c->opset);
  return reid_model_config_validate(cfg);
}

typedef struct build_args {
  onnx_ctx *c;
  const char *input;
} build_args;

/* the output value -> the feature (and the BNNeck) */
static reid_status finish(onnx_ctx *c, reid_net *net) {
  int v = onnx_find(c, c->output);
  if (v < 0)
    return reid_fail(REID_EFORMAT, "%s: the output '%s' is not computed by any node", c->path,
                     c->output);
  const onnx_value *x = &c->values[v];
  if (x->kind != VAL_ACT || net->acts[x->act].h != 1 || net->acts[x->act].w != 1 || x->act == 0)
    return reid_fail(REID_EUNSUPPORTED,
                     "%s: the output '%s' is not an embedding [N, D] or [N, D, 1, 1]%s", c->path,
                     c->output, x->kind == VAL_ACT ? "" : " (it is a constant)");
  if (c->neck[0] >= 0) {
    net->cfg.bnneck = 1;
    net->cfg.embed_after_bn = 1;
  }
  REID_TRY(net_finish(net, x->act));
  if (c->neck[0] >= 0) {
    const int t[4] = {net->neck_weight, net->neck_bias, net->neck_mean, net->neck_var};
    for (int i = 0; i < 4; i++)
      if (onnx_add_fill(c, t[i], c->neck[i], i == 3 ? FILL_VAR_EPS : FILL_COPY, 1,
                        i == 3 ? c->neck_eps - 1e-5f : 0) < 0)
        return reid_fail(REID_ENOMEM, "%s: out of memory", c->path);
  }
  return REID_OK;
}

static reid_status build(reid_net *net, void *ctx) {
  build_args *b = ctx;
  onnx_ctx *c = b->c;
  int in = net_input(net, 3, net->cfg.input_height, net->cfg.input_width);
  onnx_value x = {.kind = VAL_ACT, .act = in, .rank = 4};
  if (in < 0 || onnx_bind(c, b->input, x) < 0)
    return reid_fail(REID_ENOMEM, "%s: out of memory", c->path);
  for (size_t i = 0; i < c->graph->n_node; i++) {
    c->node_index = (int)i;
    c->node = c->graph->node[i];
    if (!c->node) return reid_fail(REID_EFORMAT, "%s: node #%zu is empty", c->path, i);
    REID_TRY(onnx_map_node(c, net));
  }
  return finish(c, net);
}

/* one tensor from its constant: decode, transform, upload */
static reid_status fill_tensor(onnx_ctx *c, reid_net *net, const onnx_fill *f, float *host,
                               float *tmp) {
  const reid_tensor_view *t = reid_net_tensor(net, f->tensor);
  const onnx_value *v = &c->values[f->value];
  if ((size_t)v->numel != t->numel)
    return reid_fail(REID_EFORMAT, "%s: '%s' has %lld elements for %s (%zu)", c->path, v->name,
                     (long long)v->numel, t->name, t->numel);
  if (f->kind == FILL_TRANSPOSE) { /* stored [rows = in, cols = out] -> [out, in] */
    REID_TRY(onnx_read_floats(c, v, tmp));
    int64_t rows = v->dims[0], cols = v->dims[1];
    for (int64_t r = 0; r < rows; r++)
      for (int64_t col = 0; col < cols; col++) host[col * rows + r] = tmp[r * cols + col];
  } else {
    REID_TRY(onnx_read_floats(c, v, host));
  }
  for (size_t i = 0; i < t->numel; i++) {
    host[i] = host[i] * f->scale + f->shift;
    if (!isfinite(host[i]))
      return reid_fail(REID_ENUMERIC, "%s: tensor '%s' holds a non-finite value", c->path, v->name);
    if (f->kind == FILL_VAR_EPS && !(host[i] + 1e-5f > 0))
      return reid_fail(REID_EFORMAT, "%s: variance '%s' is negative", c->path, v->name);
  }
  reid_backend *be = reid_net_backend(net);
  return be->ops->upload(be, reid_net_tensor_data(net, t), host, sizeof(float) * t->numel);
}

static reid_status fill_all(onnx_ctx *c, reid_net *net) {
  float *host = malloc(sizeof(float) * (net->largest_param + 1));
  float *tmp = malloc(sizeof(float) * (net->largest_param + 1));
  reid_status st = host && tmp ? REID_OK : reid_fail(REID_ENOMEM, "%s: out of memory", c->path);
  for (int i = 0; st == REID_OK && i < c->n_fills; i++)
    st = fill_tensor(c, net, &c->fills[i], host, tmp);
  free(host);
  free(tmp);
  return st;
}

static reid_status load_model(onnx_ctx *c, const reid_onnx_options *o, reid_backend *be,
                              reid_net **out, reid_onnx_info *info) {
  if (!c->graph) return reid_fail(REID_EFORMAT, "%s: the model has no graph", c->path);
  REID_TRY(read_opset(c));
  if (c->graph->n_node > ONNX_MAX_NODES || c->graph->n_initializer > ONNX_MAX_NODES)
    return reid_fail(REID_EUNSUPPORTED, "%s: %zu nodes and %zu initializers (at most %d each)",
                     c->path, c->graph->n_node, c->graph->n_initializer, ONNX_MAX_NODES);
  if (c->graph->n_output != 1 || !c->graph->output[0])
    return reid_fail(REID_EUNSUPPORTED, "%s: the graph has %zu outputs (reid reads one embedding)",
                     c->path, c->graph->n_output);
  c->output = str(c->graph->output[0]->name);
  if (info) {
    info->opset = c->opset;
    snprintf(info->producer, sizeof info->producer, "%s %s", str(c->model->producer_name),
             str(c->model->producer_version));
    const char *t = meta(c->model, "match_threshold");
    info->match_threshold = NAN;
    if (t) {
      char *end;
      double v = strtod(t, &end);
      if (end == t || *end || !(v >= -1 && v <= 1))
        return reid_fail(REID_EFORMAT,
                         "%s: metadata match_threshold='%s' is not a cosine in [-1, 1]", c->path,
                         t);
      info->match_threshold = v;
    }
  }
  reid_model_config cfg;
  const char *input = "";
  REID_TRY(read_config(c, o, &cfg, &input));
  for (size_t i = 0; i < c->graph->n_initializer; i++) {
    const Onnx__TensorProto *t = c->graph->initializer[i];
    if (!t) return reid_fail(REID_EFORMAT, "%s: initializer #%zu is empty", c->path, i);
    REID_TRY(onnx_bind_const(c, str(t->name), t));
  }
  build_args b = {c, input};
  reid_net *net = NULL;
  REID_TRY(net_create_built(&cfg, be, build, &b, &net));
  reid_status st = fill_all(c, net);
  if (st != REID_OK) {
    reid_net_destroy(net);
    return st;
  }
  if (info) info->output_normalised = c->output_normalised;
  *out = net;
  return REID_OK;
}

reid_status reid_onnx_load_bytes(const unsigned char *bytes, size_t size, const char *name,
                                 const reid_onnx_options *o, reid_backend *be, reid_net **out,
                                 reid_onnx_info *info) {
  *out = NULL;
  onnx_ctx c = {.path = name ? name : "(onnx)", .neck = {-1, -1, -1, -1}};
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, bytes);
  if (!m)
    return reid_fail(REID_EFORMAT,
                     "%s: not an ONNX model (the protobuf does not parse: truncated or corrupt)",
                     c.path);
  c.model = m;
  c.graph = m->graph;
  reid_status st = load_model(&c, o, be, out, info);
  for (int i = 0; i < c.n_values; i++) free(c.values[i].ints);
  free(c.values);
  free(c.fills);
  onnx__model_proto__free_unpacked(m, NULL);
  return st;
}

reid_status reid_onnx_load(const char *path, const reid_onnx_options *o, reid_backend *be,
                           reid_net **out, reid_onnx_info *info) {
  *out = NULL;
  unsigned char *bytes;
  size_t size;
  REID_TRY(reid_read_file(path, &bytes, &size));
  reid_status st = reid_onnx_load_bytes(bytes, size, path, o, be, out, info);
  free(bytes);
  return st;
}
