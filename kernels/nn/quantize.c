/* Post-training int8 quantization: per-channel weights, percentile
 * calibration of activation ranges, the int8 checkpoint (quantize.h). */
#include "quantize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "net_graph.h"

#define HIST_BINS 2048

void reid_quantize_per_channel(const float *w, int c_out, size_t per_out, int8_t *q, float *step) {
  for (int o = 0; o < c_out; o++) {
    const float *row = w + (size_t)o * per_out;
    float m = 0;
    for (size_t j = 0; j < per_out; j++) m = fmaxf(m, fabsf(row[j]));
    step[o] = m > 0 ? m / 127.0f : 1.0f;
    for (size_t j = 0; j < per_out; j++) {
      float v = roundf(row[j] / step[o]);
      q[(size_t)o * per_out + j] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
    }
  }
}

int reid_net_activation_count(const reid_net *net) {
  return net->n_acts;
}

const float *reid_net_activation_ranges(const reid_net *net) {
  return net->act_range;
}

int reid_net_tensor_is_quantized(const reid_net *net, int index) {
  for (int i = 0; i < net->n_nodes; i++)
    if (net->nodes[i].kind == NODE_CONV && net->nodes[i].weight == index) return 1;
  return 0;
}

reid_status reid_net_set_activation_ranges(reid_net *net, const float *range, int n) {
  if (n != net->n_acts)
    return reid_fail(REID_EINVAL, "quantize: %d activation ranges for a graph of %d activations", n,
                     net->n_acts);
  float *copy = malloc(sizeof(float) * n);
  if (!copy) return reid_fail(REID_ENOMEM, "quantize: out of memory");
  memcpy(copy, range, sizeof(float) * n);
  free(net->act_range);
  net->act_range = copy;
  net->cfg.int8 = 1;
  return REID_OK;
}

reid_status reid_net_quantize(reid_net *net, const float *range) {
  float *params, *buffers;
  REID_TRY(reid_net_download(net, &params, &buffers));
  reid_status st = REID_OK;
  for (int i = 0; i < net->n_tensors && st == REID_OK; i++) {
    const reid_tensor_view *t = &net->tensors[i];
    if (!reid_net_tensor_is_quantized(net, i)) continue;
    if (!t->trainable) {
      st = reid_fail(REID_EINVAL, "quantize: weight '%s' is not a parameter", t->name);
      break;
    }
    int c_out = (int)t->shape[0];
    size_t per_out = t->numel / c_out;
    int8_t *q = malloc(t->numel);
    float *step = malloc(sizeof(float) * c_out);
    if (!q || !step) st = reid_fail(REID_ENOMEM, "quantize: out of memory");
    if (st == REID_OK) {
      float *w = params + t->offset;
      reid_quantize_per_channel(w, c_out, per_out, q, step);
      for (size_t j = 0; j < t->numel; j++) w[j] = q[j] * step[j / per_out];
      st = net->be->ops->upload(net->be, reid_net_tensor_data(net, t), w, sizeof(float) * t->numel);
    }
    free(q);
    free(step);
  }
  free(params);
  free(buffers);
  if (st == REID_OK) st = reid_net_set_activation_ranges(net, range, net->n_acts);
  return st;
}

/* metadata reid_checkpoint_add writes itself */
static int written_by_checkpoint(const char *key) {
  static const char *const keys[] = {"arch",        "last_stride", "input_height",   "input_width",
                                     "embed_dim",   "bnneck",      "embed_after_bn", "mean",
                                     "std",         "num_classes", "precision",      "task",
                                     "description", "quantization"};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
    if (!strcmp(key, keys[i])) return 1;
  return 0;
}

reid_status reid_checkpoint_save_int8(reid_net *net, const st_file *source, const char *path,
                                      const char *method) {
  if (!net->cfg.int8 || !net->act_range)
    return reid_fail(REID_EINVAL, "quantize: %s: the network is not quantized", path);
  st_writer *w = st_writer_new();
  if (!w) return REID_ENOMEM;
  reid_status st = st_writer_add_meta(w, "quantization", method);
  for (size_t i = 0; source && st == REID_OK && i < st_meta_count(source); i++) {
    const char *key, *value; /* match_threshold and anything else the element reads */
    st_meta_at(source, i, &key, &value);
    if (!written_by_checkpoint(key)) st = st_writer_add_meta(w, key, value);
  }
  if (st == REID_OK) st = reid_checkpoint_add(w, net, NULL, ST_F32);
  if (st == REID_OK) st = st_writer_save(w, path);
  st_writer_free(w);
  return st;
}

/* ---- calibration ---- */

struct reid_calibrator {
  reid_net *net;
  double *hist;  /* [n_acts, HIST_BINS] counts of |x| over [0, top) */
  float *top;    /* per activation: the histogram's upper edge (0: nothing seen) */
  float *host;   /* one activation's values for a batch */
  size_t host_n; /* floats host holds */
};

reid_status reid_calibrator_create(reid_net *net, reid_calibrator **out) {
  *out = NULL;
  reid_calibrator *c = calloc(1, sizeof *c);
  if (!c) return reid_fail(REID_ENOMEM, "quantize: out of memory");
  c->net = net;
  c->hist = calloc((size_t)net->n_acts * HIST_BINS, sizeof *c->hist);
  c->top = calloc((size_t)net->n_acts, sizeof *c->top);
  if (!c->hist || !c->top) {
    reid_calibrator_destroy(c);
    return reid_fail(REID_ENOMEM, "quantize: out of memory");
  }
  *out = c;
  return REID_OK;
}

void reid_calibrator_destroy(reid_calibrator *c) {
  if (!c) return;
  free(c->hist);
  free(c->top);
  free(c->host);
  free(c);
}

/* adds |x[0..n)| to one activation's histogram, doubling its range as needed */
static void hist_add(double *h, float *top, const float *x, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
  if (m == 0 && *top == 0) {
    h[0] += (double)n;
    return;
  }
  if (*top == 0) *top = m;
  while (m > *top) { /* merge bin pairs into the lower half: same counts, twice the range */
    for (int b = 0; b < HIST_BINS / 2; b++) h[b] = h[2 * b] + h[2 * b + 1];
    memset(h + HIST_BINS / 2, 0, sizeof(double) * HIST_BINS / 2);
    *top *= 2;
  }
  const float per_bin = HIST_BINS / *top;
  for (size_t i = 0; i < n; i++) {
    int b = (int)(fabsf(x[i]) * per_bin);
    h[b < HIST_BINS ? b : HIST_BINS - 1] += 1;
  }
}

reid_status reid_calibrator_add(reid_calibrator *c, const float *x, int n) {
  reid_net *net = c->net;
  REID_TRY(reid_net_forward(net, x, n, 1, 0));
  for (int a = 0; a < net->n_acts; a++) {
    size_t count = net_act_size(&net->acts[a]) * (size_t)n;
    if (count > c->host_n) {
      float *grown = realloc(c->host, sizeof(float) * count);
      if (!grown) return reid_fail(REID_ENOMEM, "quantize: out of memory");
      c->host = grown;
      c->host_n = count;
    }
    REID_TRY(net->be->ops->download(net->be, c->host, net->acts[a].data, sizeof(float) * count));
    hist_add(c->hist + (size_t)a * HIST_BINS, &c->top[a], c->host, count);
  }
  return REID_OK;
}

reid_status reid_calibrator_ranges(const reid_calibrator *c, double percentile, float *range) {
  if (!(percentile > 0 && percentile <= 100))
    return reid_fail(REID_EINVAL, "quantize: percentile %g is not in (0, 100]", percentile);
  for (int a = 0; a < c->net->n_acts; a++) {
    const double *h = c->hist + (size_t)a * HIST_BINS;
    double total = 0;
    for (int b = 0; b < HIST_BINS; b++) total += h[b];
    if (total == 0) return reid_fail(REID_EINVAL, "quantize: no calibration crop was added");
    double want = total * percentile / 100.0, seen = 0;
    int b = 0;
    while (b < HIST_BINS - 1 && (seen += h[b]) < want) b++;
    range[a] = c->top[a] * (b + 1) / HIST_BINS; /* the bin's upper edge */
  }
  return REID_OK;
}
