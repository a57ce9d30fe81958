/* The training log: one JSON object per step in M.log.jsonl,
 *   {"epoch":E,"step":S,"iter":I,"lr":..,"seconds":..,"images_per_s":..,"<term>":..,...}
 * (epoch and step 1-based, iter the global step count, a non-finite term as
 * null), progress on the terminal, and the loss history for the plot. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "json.h"
#include "plot.h"
#include "safetensors.h"
#include "trainer_impl.h"

static const char *const fixed_keys[] = {"epoch", "step", "iter", "lr", "seconds", "images_per_s"};

double train_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static train_series *series_for(train_log *l, const char *name) {
  for (int i = 0; i < l->n_series; i++)
    if (!strcmp(l->series[i].name, name)) return &l->series[i];
  if (l->n_series == TRAIN_MAX_TERMS) return NULL;
  train_series *s = &l->series[l->n_series++];
  memset(s, 0, sizeof *s);
  snprintf(s->name, sizeof s->name, "%s", name);
  return s;
}

static reid_status series_push(train_log *l, const char *name, double x, double y) {
  train_series *s = series_for(l, name);
  if (!s) return REID_OK; /* more terms than a chart shows: the log still has them */
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 1024;
    double *nx = realloc(s->x, sizeof(double) * cap);
    if (nx) s->x = nx;
    double *ny = nx ? realloc(s->y, sizeof(double) * cap) : NULL;
    if (ny) s->y = ny;
    if (!nx || !ny) return reid_fail(REID_ENOMEM, "training log: out of memory");
    s->cap = cap;
  }
  s->x[s->n] = x;
  s->y[s->n++] = y;
  return REID_OK;
}

static int is_fixed_key(const char *key) {
  for (size_t i = 0; i < sizeof fixed_keys / sizeof *fixed_keys; i++)
    if (!strcmp(key, fixed_keys[i])) return 1;
  return 0;
}

/* Keeps the lines of steps 1..keep_iter of an existing log, reloading their terms. */
static reid_status reload(train_log *l, long keep_iter, int steps_per_epoch, char **kept,
                          size_t *kept_len) {
  unsigned char *bytes = NULL;
  size_t size = 0;
  *kept = NULL;
  *kept_len = 0;
  if (access(l->path, F_OK) != 0) return REID_OK; /* no log yet: start one */
  REID_TRY(reid_read_file(l->path, &bytes, &size));
  char *out = malloc(size + 1);
  if (!out) {
    free(bytes);
    return reid_fail(REID_ENOMEM, "%s: out of memory", l->path);
  }
  size_t used = 0, start = 0;
  int lineno = 0;
  reid_status st = REID_OK;
  while (st == REID_OK && start < size) {
    size_t end = start;
    while (end < size && bytes[end] != '\n') end++;
    lineno++;
    json_value *v = NULL;
    int64_t iter = 0;
    if (end > start) {
      st = json_parse((const char *)bytes + start, end - start, &v);
      if (st == REID_OK && (v->type != JSON_OBJECT || !json_get_int64(json_get(v, "iter"), &iter)))
        st = reid_fail(REID_EFORMAT, "%s:%d: not a training log line (no \"iter\")", l->path,
                       lineno);
      else if (st != REID_OK)
        st = reid_fail_context(REID_EFORMAT, "%s:%d", l->path, lineno);
    }
    if (st == REID_OK && v && iter <= keep_iter) {
      memcpy(out + used, bytes + start, end - start);
      used += end - start;
      out[used++] = '\n';
      for (size_t i = 0; i < v->count && st == REID_OK; i++) {
        const json_value *item = &v->items[i];
        if (is_fixed_key(v->keys[i]) || (item->type != JSON_NUMBER && item->type != JSON_NULL))
          continue;
        st = series_push(l, v->keys[i], (double)iter / steps_per_epoch,
                         item->type == JSON_NUMBER ? item->num : NAN);
      }
    }
    json_free(v);
    start = end + 1;
  }
  free(bytes);
  if (st != REID_OK) {
    free(out);
    return st;
  }
  *kept = out;
  *kept_len = used;
  return REID_OK;
}

reid_status train_log_open(train_log *l, const char *path, long resume_iter, FILE *progress,
                           const char *command, int steps_per_epoch) {
  memset(l, 0, sizeof *l);
  l->path = strdup(path);
  if (!l->path) return reid_fail(REID_ENOMEM, "out of memory");
  l->progress = progress;
  l->tty = progress && isatty(fileno(progress));
  l->command = command;
  l->steps_per_epoch = steps_per_epoch;
  l->started = train_now();
  if (resume_iter >= 0) {
    char *kept;
    size_t len;
    REID_TRY(reload(l, resume_iter, steps_per_epoch, &kept, &len));
    const void *parts[1] = {kept ? kept : ""};
    size_t sizes[1] = {len};
    reid_status st = reid_write_file_atomic(path, parts, sizes, 1, 1);
    free(kept);
    REID_TRY(st);
    l->file = fopen(path, "a");
  } else {
    l->file = fopen(path, "w");
  }
  if (!l->file) return reid_fail(REID_EIO, "%s: cannot open the training log for writing", path);
  return REID_OK;
}

static void put_number(FILE *f, const char *key, double v) {
  if (isfinite(v))
    fprintf(f, ",\"%s\":%.9g", key, v);
  else
    fprintf(f, ",\"%s\":null", key);
}

static void format_duration(char *buf, size_t size, double seconds) {
  if (!isfinite(seconds) || seconds < 0) seconds = 0;
  long s = (long)(seconds + 0.5);
  snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

/* "loss 1.234 (triplet 0.69 ce 0.54)" */
static void format_terms(char *buf, size_t size, const loss_terms *t, const double *values) {
  size_t used = 0;
  buf[0] = 0;
  for (int i = 0; i < t->count && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%s %.4g%s", i == 1 ? "(" : "", t->name[i],
                             values[i], i == t->count - 1 ? (i ? ")" : "") : " ");
}

reid_status train_log_step(train_log *l, const train_run *r, int step_in_epoch, float lr,
                           double seconds, long images, const loss_terms *t) {
  const reid_train_config *c = r->cfg;
  fprintf(l->file, "{\"epoch\":%d,\"step\":%d,\"iter\":%ld,\"lr\":%.9g", r->epoch + 1,
          step_in_epoch + 1, r->iter, (double)lr);
  put_number(l->file, "seconds", seconds);
  put_number(l->file, "images_per_s", seconds > 0 ? images / seconds : 0);
  for (int i = 0; i < t->count; i++) put_number(l->file, t->name[i], t->value[i]);
  fputs("}\n", l->file);
  if (fflush(l->file) != 0 || ferror(l->file))
    return reid_fail(REID_EIO, "%s: cannot write the training log", l->path);
  for (int i = 0; i < t->count; i++) {
    REID_TRY(series_push(l, t->name[i], (double)r->iter / r->steps_per_epoch, t->value[i]));
    l->epoch_sum[i] += t->value[i];
  }
  l->steps_timed++;
  l->epoch_steps++;
  l->epoch_time += seconds;
  l->epoch_images += images;
  if (l->tty) {
    char terms[512], eta[32];
    format_terms(terms, sizeof terms, t, t->value);
    long remaining = (long)c->epochs * r->steps_per_epoch - r->iter;
    format_duration(eta, sizeof eta, (train_now() - l->started) / l->steps_timed * remaining);
    fprintf(l->progress, "\r%s epoch %d/%d step %d/%d  %s  %.1f img/s  ETA %s\033[K", l->command,
            r->epoch + 1, c->epochs, step_in_epoch + 1, r->steps_per_epoch, terms,
            seconds > 0 ? images / seconds : 0.0, eta);
    fflush(l->progress);
  }
  return REID_OK;
}

void train_log_epoch_end(train_log *l, const train_run *r, const loss_terms *names) {
  if (l->progress && l->epoch_steps) {
    double mean[TRAIN_MAX_TERMS];
    for (int i = 0; i < names->count; i++) mean[i] = l->epoch_sum[i] / l->epoch_steps;
    char terms[512], eta[32];
    format_terms(terms, sizeof terms, names, mean);
    long remaining = (long)r->cfg->epochs * r->steps_per_epoch - r->iter;
    format_duration(eta, sizeof eta, (train_now() - l->started) / l->steps_timed * remaining);
    fprintf(l->progress, "%s%s epoch %d/%d  %d steps  mean %s  %.1f img/s  ETA %s%s\n",
            l->tty ? "\r" : "", l->command, r->epoch, r->cfg->epochs, l->epoch_steps, terms,
            l->epoch_time > 0 ? l->epoch_images / l->epoch_time : 0.0, eta, l->tty ? "\033[K" : "");
    fflush(l->progress);
  }
  memset(l->epoch_sum, 0, sizeof l->epoch_sum);
  l->epoch_steps = 0;
  l->epoch_time = 0;
  l->epoch_images = 0;
}

reid_status train_log_plot(const train_log *l, const char *path, const char *title) {
  reid_plot_series s[TRAIN_MAX_TERMS];
  for (int i = 0; i < l->n_series; i++)
    s[i] =
        (reid_plot_series){l->series[i].name, l->series[i].x, l->series[i].y, (int)l->series[i].n};
  reid_plot p = {.title = title, .x_label = "epoch", .y_label = "loss", .log_y = 1};
  return reid_plot_write(path, &p, s, l->n_series);
}

void train_log_close(train_log *l) {
  if (l->file) fclose(l->file);
  for (int i = 0; i < l->n_series; i++) {
    free(l->series[i].x);
    free(l->series[i].y);
  }
  free(l->path);
  memset(l, 0, sizeof *l);
}
