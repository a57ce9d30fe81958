#include "checkpoint.h"

#include "quantize.h"

#include <errno.h>
#include <math.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *meta_get(const st_file *f, const char *prefix, const char *key) {
  if (prefix && *prefix) {
    char full[128];
    snprintf(full, sizeof full, "%s%s", prefix, key);
    const char *v = st_meta(f, full);
    if (v) return v;
  }
  return st_meta(f, key);
}

static const st_tensor *find_prefixed(const st_file *f, const char *prefix, const char *name) {
  char full[160];
  snprintf(full, sizeof full, "%s%s", prefix ? prefix : "", name);
  return st_find(f, full);
}

static reid_status parse_int(const st_file *f, const char *key, const char *text, int lo, int hi,
                             int *out) {
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno || end == text || *end || v < lo || v > hi)
    return reid_fail(REID_EFORMAT, "%s: metadata %s='%s' is not an integer in [%d, %d]", st_path(f),
                     key, text, lo, hi);
  *out = (int)v;
  return REID_OK;
}

static reid_status parse_triple(const st_file *f, const char *key, const char *text, float out[3]) {
  const char *p = text;
  for (int i = 0; i < 3; i++) {
    char *end;
    errno = 0;
    out[i] = strtof(p, &end);
    if (errno || end == p) break;
    p = end;
    while (*p == ' ') p++;
    if (i < 2 && *p++ != ',') break;
    if (i == 2 && *p == '\0') return REID_OK;
  }
  return reid_fail(REID_EFORMAT, "%s: metadata %s='%s' is not three comma-separated numbers",
                   st_path(f), key, text);
}

reid_status reid_checkpoint_read_config(const st_file *f, const char *prefix,
                                        reid_model_config *cfg) {
  reid_model_config_default(cfg);
  const char *v;
  const st_tensor *osnet_stem = find_prefixed(f, prefix, "conv1.conv.weight");
  if ((v = meta_get(f, prefix, "arch"))) {
    if (reid_arch_parse(v, &cfg->arch) != REID_OK)
      return reid_fail(REID_EFORMAT, "%s: metadata arch='%s' is not one of %s", st_path(f), v,
                       reid_arch_list());
  } else if (find_prefixed(f, prefix, "layer1.0.conv3.weight")) {
    cfg->arch = REID_ARCH_RESNET50;
  } else if (find_prefixed(f, prefix, "layer3.5.conv1.weight")) {
    cfg->arch = REID_ARCH_RESNET34;
  } else if (find_prefixed(f, prefix, "layer1.0.conv1.weight")) {
    cfg->arch = REID_ARCH_RESNET18;
  } else if (find_prefixed(f, prefix, "features.18.0.weight")) {
    cfg->arch = REID_ARCH_MOBILENET_V2;
  } else if (osnet_stem && osnet_stem->ndim == 4 && osnet_stem->shape[0] % 16 == 0 &&
             osnet_stem->shape[0] >= 16 && osnet_stem->shape[0] <= 64) {
    /* the stem width tells the OSNet: 16, 32, 48, 64 channels for x0.25 ... x1.0 */
    cfg->arch = (reid_arch)(REID_ARCH_OSNET_X0_25 + osnet_stem->shape[0] / 16 - 1);
  } else {
    return reid_fail(REID_EFORMAT,
                     "%s: no 'arch' metadata and no tensor that tells the architecture "
                     "(%slayer1.0.conv1.weight, features.18.0.weight, conv1.conv.weight)",
                     st_path(f), prefix ? prefix : "");
  }
  if ((v = meta_get(f, prefix, "last_stride")))
    REID_TRY(parse_int(f, "last_stride", v, 1, 2, &cfg->last_stride));
  if ((v = meta_get(f, prefix, "input_height")))
    REID_TRY(parse_int(f, "input_height", v, 32, 4096, &cfg->input_height));
  if ((v = meta_get(f, prefix, "input_width")))
    REID_TRY(parse_int(f, "input_width", v, 32, 4096, &cfg->input_width));
  if ((v = meta_get(f, prefix, "embed_dim"))) {
    int dim = 0;
    REID_TRY(parse_int(f, "embed_dim", v, 1, INT_MAX, &dim));
    if (dim != reid_arch_feature_dim(cfg->arch))
      return reid_fail(REID_EFORMAT, "%s: metadata embed_dim=%d disagrees with %s (%d)", st_path(f),
                       dim, reid_arch_name(cfg->arch), reid_arch_feature_dim(cfg->arch));
  }
  if ((v = meta_get(f, prefix, "bnneck")))
    REID_TRY(parse_int(f, "bnneck", v, 0, 1, &cfg->bnneck));
  else
    cfg->bnneck = find_prefixed(f, prefix, "bottleneck.weight") != NULL;
  if ((v = meta_get(f, prefix, "embed_after_bn")))
    REID_TRY(parse_int(f, "embed_after_bn", v, 0, 1, &cfg->embed_after_bn));
  if ((v = meta_get(f, prefix, "mean"))) REID_TRY(parse_triple(f, "mean", v, cfg->mean));
  if ((v = meta_get(f, prefix, "std"))) REID_TRY(parse_triple(f, "std", v, cfg->std));
  const st_tensor *cls = find_prefixed(f, prefix, cfg->bnneck ? "classifier.weight" : "fc.weight");
  if ((v = meta_get(f, prefix, "num_classes")))
    REID_TRY(parse_int(f, "num_classes", v, 0, 1000000, &cfg->num_classes));
  else if (cls && cls->ndim == 2)
    cfg->num_classes = (int)cls->shape[0];
  if ((v = meta_get(f, prefix, "precision"))) {
    if (strcmp(v, "int8") && strcmp(v, "fp32"))
      return reid_fail(REID_EFORMAT, "%s: metadata precision='%s' is neither int8 nor fp32",
                       st_path(f), v);
    cfg->int8 = !strcmp(v, "int8");
  }
  if ((v = meta_get(f, prefix, "task"))) snprintf(cfg->task, sizeof cfg->task, "%s", v);
  if ((v = meta_get(f, prefix, "description")))
    snprintf(cfg->description, sizeof cfg->description, "%s", v);
  reid_status st = reid_model_config_validate(cfg);
  if (st != REID_OK) return reid_fail_context(REID_EFORMAT, "%s", st_path(f));
  return REID_OK;
}

static void format_shape(char *buf, size_t size, int ndim, const int64_t *shape) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < ndim && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, i ? ",%lld" : "%lld", (long long)shape[i]);
  if (used < size) snprintf(buf + used, size - used, "]");
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

/* an I8 weight [c_out, ...] and its `_scale` [c_out]: w = q * scale[o] */
static reid_status read_int8(const st_file *f, const reid_model_config *cfg, const st_tensor *t,
                             float *dst, size_t count) {
  if (!cfg->int8)
    return reid_fail(REID_EFORMAT, "%s: tensor '%s' is int8 but the metadata lacks precision=int8",
                     st_path(f), t->name);
  char name[160];
  snprintf(name, sizeof name, "%s_scale", t->name);
  const st_tensor *s = st_find(f, name);
  if (!s || s->dtype != ST_F32 || s->ndim != 1 || t->ndim < 1 || s->shape[0] != t->shape[0])
    return reid_fail(REID_EFORMAT, "%s: int8 tensor '%s' needs '%s', F32 [%lld]", st_path(f),
                     t->name, name, (long long)(t->ndim ? t->shape[0] : 0));
  if ((size_t)t->numel != count) return reid_fail(REID_EFORMAT, "%s: '%s' size", st_path(f), name);
  const int8_t *q = st_data(f, t);
  const unsigned char *sb = st_data(f, s);
  size_t per_out = count / (size_t)t->shape[0];
  for (int64_t o = 0; o < t->shape[0]; o++) {
    float step;
    memcpy(&step, sb + 4 * o, 4);
    if (!(step > 0) || !isfinite(step))
      return reid_fail(REID_EFORMAT, "%s: '%s'[%lld] = %g is not a positive step", st_path(f), name,
                       (long long)o, step);
    for (size_t j = 0; j < per_out; j++) dst[o * per_out + j] = q[o * per_out + j] * step;
  }
  return REID_OK;
}

static reid_status read_ranges(reid_net *net, const st_file *f, const char *prefix) {
  const st_tensor *t = find_prefixed(f, prefix, REID_INT8_RANGE_TENSOR);
  int n = reid_net_activation_count(net);
  if (!t || t->ndim != 1 || t->shape[0] != n)
    return reid_fail(
        REID_EFORMAT, "%s: an int8 model needs '%s' F32 [%d] (one range per activation of %s)",
        st_path(f), REID_INT8_RANGE_TENSOR, n, reid_arch_name(reid_net_config(net)->arch));
  float *range = malloc(sizeof(float) * n);
  if (!range) return reid_fail(REID_ENOMEM, "%s: out of memory", st_path(f));
  reid_status st = st_read_f32(f, t, range, (size_t)n);
  for (int i = 0; st == REID_OK && i < n; i++)
    if (!(range[i] >= 0) || !isfinite(range[i]))
      st = reid_fail(REID_EFORMAT, "%s: activation range %d is %g", st_path(f), i, range[i]);
  if (st == REID_OK) st = reid_net_set_activation_ranges(net, range, n);
  free(range);
  return st;
}

reid_status reid_checkpoint_load_weights(reid_net *net, const st_file *f, const char *prefix) {
  const reid_model_config *cfg = reid_net_config(net);
  size_t plen = prefix ? strlen(prefix) : 0;
  /* tensors the network does not know are an error: a checkpoint of another model */
  for (size_t i = 0; i < st_count(f); i++) {
    const char *name = st_tensor_at(f, i)->name;
    if (plen && strncmp(name, prefix, plen)) continue;
    const char *local = name + plen;
    if (ends_with(local, "num_batches_tracked")) continue;
    if (!strncmp(local, "fc.", 3) && !reid_net_find(net, "fc.weight")) continue;
    if (cfg->int8 && !strcmp(local, REID_INT8_RANGE_TENSOR)) continue;
    if (cfg->int8 && ends_with(local, "_scale")) { /* the steps of an int8 weight */
      char base[160];
      snprintf(base, sizeof base, "%.*s", (int)(strlen(name) - 6), name);
      const st_tensor *w = st_find(f, base);
      if (w && w->dtype == ST_I8) continue;
    }
    if (!reid_net_find(net, local))
      return reid_fail(REID_EFORMAT, "%s: unexpected tensor '%s' (not part of a %s%s)", st_path(f),
                       name, reid_arch_name(cfg->arch), cfg->bnneck ? " with BNNeck" : "");
  }
  reid_backend *be = reid_net_backend(net);
  size_t largest = 0;
  for (int i = 0; i < reid_net_tensor_count(net); i++)
    if (reid_net_tensor(net, i)->numel > largest) largest = reid_net_tensor(net, i)->numel;
  float *host = malloc(sizeof(float) * largest);
  if (!host) return reid_fail(REID_ENOMEM, "%s: out of memory", st_path(f));
  reid_status st = REID_OK;
  for (int i = 0; i < reid_net_tensor_count(net) && st == REID_OK; i++) {
    const reid_tensor_view *view = reid_net_tensor(net, i);
    const st_tensor *t = find_prefixed(f, prefix, view->name);
    if (!t) {
      st = reid_fail(REID_EFORMAT, "%s: missing tensor '%s%s' (%s%s)", st_path(f),
                     prefix ? prefix : "", view->name, reid_arch_name(cfg->arch),
                     cfg->bnneck ? " with BNNeck" : "");
      break;
    }
    int same = t->ndim == view->ndim;
    for (int d = 0; same && d < view->ndim; d++) same = t->shape[d] == view->shape[d];
    if (!same) {
      char got[96], want[96];
      format_shape(got, sizeof got, t->ndim, t->shape);
      format_shape(want, sizeof want, view->ndim, view->shape);
      st = reid_fail(REID_EFORMAT, "%s: tensor '%s' has shape %s but %s expects %s", st_path(f),
                     t->name, got, reid_arch_name(cfg->arch), want);
      break;
    }
    st = t->dtype == ST_I8 ? read_int8(f, cfg, t, host, view->numel)
                           : st_read_f32(f, t, host, view->numel);
    if (st == REID_OK)
      st = be->ops->upload(be, reid_net_tensor_data(net, view), host, sizeof(float) * view->numel);
  }
  free(host);
  if (st == REID_OK && cfg->int8) st = read_ranges(net, f, prefix);
  return st;
}

reid_status reid_checkpoint_load(const char *path, const char *prefix, reid_backend *be,
                                 reid_net **out) {
  *out = NULL;
  st_file *f;
  REID_TRY(st_open(path, &f));
  reid_model_config cfg;
  reid_net *net = NULL;
  reid_status st = reid_checkpoint_read_config(f, prefix, &cfg);
  if (st == REID_OK) st = reid_net_create_empty(&cfg, be, &net);
  if (st == REID_OK) st = reid_checkpoint_load_weights(net, f, prefix);
  st_close(f);
  if (st != REID_OK) {
    reid_net_destroy(net);
    return st;
  }
  *out = net;
  return REID_OK;
}

reid_status reid_net_download(reid_net *net, float **params_out, float **buffers_out) {
  reid_backend *be = reid_net_backend(net);
  size_t np, nb;
  const float *params = reid_net_params(net, &np), *buffers = reid_net_buffers(net, &nb);
  float *p = malloc(sizeof(float) * (np ? np : 1)), *b = malloc(sizeof(float) * (nb ? nb : 1));
  reid_status st = p && b ? REID_OK : reid_fail(REID_ENOMEM, "out of memory");
  if (st == REID_OK) st = be->ops->download(be, p, params, sizeof(float) * np);
  if (st == REID_OK) st = be->ops->download(be, b, buffers, sizeof(float) * nb);
  if (st != REID_OK) {
    free(p);
    free(b);
    return st;
  }
  *params_out = p;
  *buffers_out = b;
  return REID_OK;
}

static reid_status add_int8(st_writer *w, const char *name, const reid_tensor_view *t,
                            const float *data) {
  int c_out = (int)t->shape[0];
  size_t per_out = t->numel / c_out;
  int8_t *q = malloc(t->numel);
  float *step = malloc(sizeof(float) * c_out);
  reid_status st = q && step ? REID_OK : reid_fail(REID_ENOMEM, "out of memory");
  if (st == REID_OK) {
    reid_quantize_per_channel(data, c_out, per_out, q, step);
    st = st_writer_add_raw(w, name, ST_I8, t->ndim, t->shape, q);
  }
  char sname[180];
  int64_t shape = c_out;
  snprintf(sname, sizeof sname, "%s_scale", name);
  if (st == REID_OK) st = st_writer_add_f32(w, sname, ST_F32, 1, &shape, step);
  free(q);
  free(step);
  return st;
}

reid_status reid_checkpoint_add(st_writer *w, reid_net *net, const char *prefix, st_dtype dtype) {
  const reid_model_config *c = reid_net_config(net);
  const char *pre = prefix ? prefix : "";
  char key[128], value[256];
  if (c->arch == REID_ARCH_ONNX)
    return reid_fail(REID_EUNSUPPORTED,
                     "a network imported from ONNX is not one of the "
                     "architectures a checkpoint names (%s)",
                     reid_arch_list());
#define PUT(k, ...)                                                                                \
  do {                                                                                             \
    snprintf(key, sizeof key, "%s%s", pre, k);                                                     \
    snprintf(value, sizeof value, __VA_ARGS__);                                                    \
    REID_TRY(st_writer_add_meta(w, key, value));                                                   \
  } while (0)
  PUT("arch", "%s", reid_arch_name(c->arch));
  PUT("last_stride", "%d", c->last_stride);
  PUT("input_height", "%d", c->input_height);
  PUT("input_width", "%d", c->input_width);
  PUT("embed_dim", "%d", reid_arch_feature_dim(c->arch));
  PUT("bnneck", "%d", c->bnneck);
  PUT("embed_after_bn", "%d", c->embed_after_bn);
  PUT("mean", "%.7g,%.7g,%.7g", c->mean[0], c->mean[1], c->mean[2]);
  PUT("std", "%.7g,%.7g,%.7g", c->std[0], c->std[1], c->std[2]);
  PUT("num_classes", "%d", c->num_classes);
  if (c->int8) PUT("precision", "%s", "int8");
  PUT("task", "%s", c->task);
  PUT("description", "%s", c->description);
#undef PUT
  float *params, *buffers;
  REID_TRY(reid_net_download(net, &params, &buffers));
  reid_status st = REID_OK;
  for (int i = 0; i < reid_net_tensor_count(net) && st == REID_OK; i++) {
    const reid_tensor_view *t = reid_net_tensor(net, i);
    char name[160];
    snprintf(name, sizeof name, "%s%s", pre, t->name);
    const float *data = (t->trainable ? params : buffers) + t->offset;
    if (c->int8 && reid_net_tensor_is_quantized(net, i))
      st = add_int8(w, name, t, data);
    else
      st = st_writer_add_f32(w, name, dtype, t->ndim, t->shape, data);
  }
  if (st == REID_OK && c->int8) {
    char name[160];
    int64_t n = reid_net_activation_count(net);
    snprintf(name, sizeof name, "%s%s", pre, REID_INT8_RANGE_TENSOR);
    st = st_writer_add_f32(w, name, ST_F32, 1, &n, reid_net_activation_ranges(net));
  }
  free(params);
  free(buffers);
  return st;
}

reid_status reid_checkpoint_save(reid_net *net, const char *path, st_dtype dtype) {
  st_writer *w = st_writer_new();
  if (!w) return REID_ENOMEM;
  reid_status st = reid_checkpoint_add(w, net, NULL, dtype);
  if (st == REID_OK) st = st_writer_save(w, path);
  st_writer_free(w);
  return st;
}

reid_status reid_checkpoint_roles(const st_file *f, reid_model_roles *roles) {
  memset(roles, 0, sizeof *roles);
  const char *format = st_meta(f, "format");
  if (!format || strcmp(format, "mdkt-pair")) return REID_OK;
  const char *image = st_meta(f, "image_model"), *video = st_meta(f, "video_model");
  if (!image || !video || strlen(image) >= sizeof roles->image_prefix ||
      strlen(video) >= sizeof roles->video_prefix)
    return reid_fail(REID_EFORMAT,
                     "%s: format=mdkt-pair needs image_model and video_model metadata", st_path(f));
  snprintf(roles->image_prefix, sizeof roles->image_prefix, "%s", image);
  snprintf(roles->video_prefix, sizeof roles->video_prefix, "%s", video);
  roles->is_pair = 1;
  return REID_OK;
}

reid_status reid_checkpoint_save_pair(reid_net *teacher, reid_net *student, const char *path,
                                      st_dtype dtype) {
  st_writer *w = st_writer_new();
  if (!w) return REID_ENOMEM;
  reid_status st = st_writer_add_meta(w, "format", "mdkt-pair");
  if (st == REID_OK) st = st_writer_add_meta(w, "image_model", "student.");
  if (st == REID_OK) st = st_writer_add_meta(w, "video_model", "student.");
  if (st == REID_OK) st = reid_checkpoint_add(w, teacher, "teacher.", dtype);
  if (st == REID_OK) st = reid_checkpoint_add(w, student, "student.", dtype);
  if (st == REID_OK) st = st_writer_save(w, path);
  st_writer_free(w);
  return st;
}
