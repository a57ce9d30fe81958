#include "engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_impl.h"

static const char *precision_names[] = {"fp32", "tf32", "fp16", "bf16", "int8"};

reid_status reid_precision_parse(const char *name, reid_precision *out) {
  for (int i = 0; i <= REID_PRECISION_INT8; i++)
    if (name && !strcmp(name, precision_names[i])) {
      *out = (reid_precision)i;
      return REID_OK;
    }
  return reid_fail(REID_EINVAL, "unknown precision '%s' (expected fp32, tf32, fp16, bf16 or int8)",
                   name ? name : "(null)");
}

const char *reid_precision_name(reid_precision p) {
  return p >= REID_PRECISION_FP32 && p <= REID_PRECISION_INT8 ? precision_names[p] : "unknown";
}

void reid_l2_normalize_rows(float *x, int n, int d) {
  for (int i = 0; i < n; i++) {
    float *row = x + (size_t)i * d;
    double ss = 0;
    for (int j = 0; j < d; j++) ss += (double)row[j] * row[j];
    float inv = 1.0f / fmaxf((float)sqrt(ss), 1e-12f);
    for (int j = 0; j < d; j++) row[j] *= inv;
  }
}

/* ---- the generic engine: the training graph in eval mode ---- */

static reid_status graph_embed(reid_engine *e, const float *x, int n, float *out) {
  reid_backend *be = reid_net_backend(e->net);
  const reid_model_config *c = reid_net_config(e->net);
  size_t image = (size_t)3 * c->input_height * c->input_width;
  int d = e->dim;
  for (int done = 0; done < n; done += e->max_batch) {
    int chunk = n - done < e->max_batch ? n - done : e->max_batch;
    const float *src = x + image * done;
    if (be->device != REID_DEVICE_CPU) {
      REID_TRY(be->ops->upload(be, e->device_input, src, sizeof(float) * image * chunk));
      src = e->device_input;
    }
    REID_TRY(reid_net_forward(e->net, src, chunk, 1, 0));
    REID_TRY(be->ops->download(be, out + (size_t)d * done, reid_net_embedding(e->net),
                               sizeof(float) * d * chunk));
  }
  return REID_OK;
}

static void graph_destroy(reid_engine *e) {
  reid_backend *be = reid_net_backend(e->net);
  if (e->device_input) be->ops->free(be, e->device_input);
}

static reid_status graph_engine_init(reid_engine *e) {
  reid_backend *be = reid_net_backend(e->net);
  const reid_model_config *c = reid_net_config(e->net);
  if (e->precision != REID_PRECISION_FP32)
    return reid_fail(REID_EUNSUPPORTED, "precision %s is not available on the %s graph engine",
                     reid_precision_name(e->precision), be->name);
  if (be->device != REID_DEVICE_CPU) {
    e->device_input = be->ops->alloc(be, sizeof(float) * 3 * c->input_height * c->input_width *
                                             (size_t)e->max_batch);
    if (!e->device_input) return reid_fail(REID_ENOMEM, "engine: out of %s memory", be->name);
  }
  e->embed = graph_embed;
  e->destroy = graph_destroy;
  snprintf(e->description, sizeof e->description, "%s/graph fp32", be->name);
  return REID_OK;
}

reid_status reid_engine_create(reid_net *net, reid_precision precision, int max_batch,
                               reid_engine **out) {
  *out = NULL;
  if (max_batch < 1 || max_batch > 65536)
    return reid_fail(REID_EINVAL, "engine: max batch %d out of range (1..65536)", max_batch);
  const reid_model_config *cfg = reid_net_config(net);
  if (precision == REID_PRECISION_INT8 && !cfg->int8)
    return reid_fail(REID_EINVAL,
                     "precision int8 needs a quantized model, and this %s model is not one "
                     "(make one with 'reid-train quantize --model M --calibration LIST --output "
                     "M-int8.safetensors')",
                     reid_arch_name(cfg->arch));
  if (precision != REID_PRECISION_INT8 && cfg->int8)
    return reid_fail(REID_EINVAL,
                     "the model is quantized to int8 (checkpoint precision=int8): run it with "
                     "precision int8, not %s, or use the float model it was quantized from",
                     reid_precision_name(precision));
  reid_engine *e = calloc(1, sizeof *e);
  if (!e) return reid_fail(REID_ENOMEM, "engine: out of memory");
  e->net = net;
  e->precision = precision;
  e->max_batch = max_batch;
  e->dim = reid_net_feature_dim(net);
  reid_backend *be = reid_net_backend(net);
  reid_status st;
#if HAVE_CUDA
  if (be->device == REID_DEVICE_CUDA)
    st = engine_cuda_init(e);
  else
#endif
#if HAVE_DNNL
      if (be->device == REID_DEVICE_CPU)
    st = engine_dnnl_init(e);
  else
#endif
    st = graph_engine_init(e);
  if (st != REID_OK) {
    if (e->destroy) e->destroy(e);
    free(e);
    return st;
  }
  *out = e;
  return REID_OK;
}

reid_status reid_engine_embed(reid_engine *e, const float *x, int n, float *embedding) {
  if (n < 0 || (n > 0 && (!x || !embedding)))
    return reid_fail(REID_EINVAL, "engine: invalid batch of %d", n);
  if (n == 0) return REID_OK;
  return e->embed(e, x, n, embedding);
}

size_t reid_tensor_format_element_size(const reid_tensor_format *f) {
  return f->dtype == REID_PRECISION_FP16 || f->dtype == REID_PRECISION_BF16 ? 2 : 4;
}

reid_status reid_engine_input(reid_engine *e, int n, void **input, reid_tensor_format *fmt) {
  if (n < 1 || n > e->max_batch)
    return reid_fail(REID_EINVAL, "engine: batch %d out of range (1..%d)", n, e->max_batch);
  if (!e->input)
    return reid_fail(REID_EUNSUPPORTED, "engine %s: no zero-copy input", e->description);
  return e->input(e, n, input, fmt);
}

reid_status reid_engine_run(reid_engine *e, int n, float *embedding) {
  if (!e->run) return reid_fail(REID_EUNSUPPORTED, "engine %s: no zero-copy input", e->description);
  if (n < 1 || n > e->max_batch || !embedding)
    return reid_fail(REID_EINVAL, "engine: invalid batch of %d", n);
  return e->run(e, n, embedding);
}

int reid_engine_dim(const reid_engine *e) {
  return e->dim;
}
int reid_engine_max_batch(const reid_engine *e) {
  return e->max_batch;
}
const char *reid_engine_describe(const reid_engine *e) {
  return e->description;
}

void reid_engine_destroy(reid_engine *e) {
  if (!e) return;
  if (e->destroy) e->destroy(e);
  free(e);
}
