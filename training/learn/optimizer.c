#include "optimizer.h"

#include "checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADAM_BETA1 0.9f
#define ADAM_BETA2 0.999f
#define ADAM_EPS   1e-8f

reid_status reid_optimizer_init(reid_optimizer *o, reid_net *net, float weight_decay,
                                int decoupled) {
  memset(o, 0, sizeof *o);
  reid_backend *be = reid_net_backend(net);
  reid_net_params(net, &o->n);
  o->net = net;
  o->weight_decay = weight_decay;
  o->decoupled = decoupled;
  o->m = be->ops->alloc(be, sizeof(float) * (o->n ? o->n : 1));
  o->v = be->ops->alloc(be, sizeof(float) * (o->n ? o->n : 1));
  if (!o->m || !o->v) {
    reid_optimizer_free(o);
    return reid_fail(REID_ENOMEM, "optimizer: out of %s memory for %zu moments", be->name, o->n);
  }
  REID_TRY(be->ops->fill(be, o->m, o->n, 0.0f));
  return be->ops->fill(be, o->v, o->n, 0.0f);
}

reid_status reid_optimizer_step(reid_optimizer *o, float lr) {
  reid_backend *be = reid_net_backend(o->net);
  float *params = reid_net_params(o->net, NULL);
  const float *grads = reid_net_grads(o->net, NULL);
  REID_TRY(be->ops->adam_update(be, o->n, params, grads, o->m, o->v, lr, ADAM_BETA1, ADAM_BETA2,
                                ADAM_EPS, o->weight_decay, o->decoupled, o->step + 1));
  o->step++;
  return REID_OK;
}

void reid_optimizer_free(reid_optimizer *o) {
  if (!o->net) return;
  reid_backend *be = reid_net_backend(o->net);
  if (o->m) be->ops->free(be, o->m);
  if (o->v) be->ops->free(be, o->v);
  memset(o, 0, sizeof *o);
}

reid_status reid_optimizer_add(st_writer *w, reid_optimizer *o, const char *name) {
  reid_backend *be = reid_net_backend(o->net);
  float *host = malloc(sizeof(float) * (o->n ? o->n : 1));
  if (!host) return reid_fail(REID_ENOMEM, "optimizer: out of memory");
  const float *moments[2] = {o->m, o->v};
  const char *suffix[2] = {"m", "v"};
  reid_status st = REID_OK;
  for (int i = 0; i < 2 && st == REID_OK; i++) {
    char key[96];
    snprintf(key, sizeof key, "adam.%s.%s", name, suffix[i]);
    int64_t shape[1] = {(int64_t)o->n};
    st = be->ops->download(be, host, moments[i], sizeof(float) * o->n);
    if (st == REID_OK) st = st_writer_add_f32(w, key, ST_F32, 1, shape, host);
  }
  char key[96], value[32];
  snprintf(key, sizeof key, "adam.%s.step", name);
  snprintf(value, sizeof value, "%d", o->step);
  if (st == REID_OK) st = st_writer_add_meta(w, key, value);
  free(host);
  return st;
}

reid_status reid_optimizer_load(reid_optimizer *o, const st_file *f, const char *name) {
  reid_backend *be = reid_net_backend(o->net);
  char key[96];
  snprintf(key, sizeof key, "adam.%s.step", name);
  const char *step = st_meta(f, key);
  char *end = NULL;
  long value = step ? strtol(step, &end, 10) : -1;
  if (!step || *end || value < 0 || value > 1000000000)
    return reid_fail(REID_EFORMAT, "%s: metadata %s is missing or not a step count", st_path(f),
                     key);
  float *host = malloc(sizeof(float) * (o->n ? o->n : 1));
  if (!host) return reid_fail(REID_ENOMEM, "optimizer: out of memory");
  float *moments[2] = {o->m, o->v};
  const char *suffix[2] = {"m", "v"};
  reid_status st = REID_OK;
  for (int i = 0; i < 2 && st == REID_OK; i++) {
    snprintf(key, sizeof key, "adam.%s.%s", name, suffix[i]);
    const st_tensor *t = st_find(f, key);
    if (!t || t->numel != (int64_t)o->n)
      st = reid_fail(REID_EFORMAT, "%s: tensor %s is missing or does not hold %zu values",
                     st_path(f), key, o->n);
    if (st == REID_OK) st = st_read_f32(f, t, host, o->n);
    if (st == REID_OK) st = be->ops->upload(be, moments[i], host, sizeof(float) * o->n);
  }
  if (st == REID_OK) o->step = (int)value;
  free(host);
  return st;
}

reid_status reid_net_all_finite(reid_net *net, int *finite, const char **first_bad) {
  float *params, *buffers;
  REID_TRY(reid_net_download(net, &params, &buffers));
  *finite = 1;
  if (first_bad) *first_bad = NULL;
  for (int i = 0; i < reid_net_tensor_count(net) && *finite; i++) {
    const reid_tensor_view *t = reid_net_tensor(net, i);
    const float *data = (t->trainable ? params : buffers) + t->offset;
    for (size_t j = 0; j < t->numel; j++)
      if (!isfinite(data[j])) {
        *finite = 0;
        if (first_bad) *first_bad = t->name;
        break;
      }
  }
  free(params);
  free(buffers);
  return REID_OK;
}
