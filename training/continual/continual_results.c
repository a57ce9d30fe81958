/* The results of a continual run (continual_impl.h): the matrix after each task x test
 * set, its encoding in the resumable state, and the files M.results.csv,
 * M.results.json and M.map.svg / .png. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "continual_impl.h"
#include "fileio.h"
#include "json.h"
#include "plot.h"

reid_status continual_results_init(continual_results *r, int rows_cap, int cols) {
  memset(r, 0, sizeof *r);
  size_t n = (size_t)(rows_cap > 0 ? rows_cap : 1) * (size_t)(cols > 0 ? cols : 1);
  r->map = malloc(sizeof(double) * 2 * n);
  if (!r->map) return reid_fail(REID_ENOMEM, "out of memory");
  r->r1 = r->map + n;
  for (size_t i = 0; i < 2 * n; i++) r->map[i] = NAN;
  r->rows_cap = rows_cap;
  r->cols = cols;
  return REID_OK;
}

void continual_results_free(continual_results *r) {
  free(r->map);
  memset(r, 0, sizeof *r);
}

char *continual_results_encode(const continual_results *r) {
  size_t cap = 16 + (size_t)r->rows * r->cols * 2 * 28;
  char *s = malloc(cap), *p = s;
  if (!s) return NULL;
  p += snprintf(p, cap, "%d", r->rows);
  for (int i = 0; i < r->rows * r->cols; i++)
    p += snprintf(p, cap - (size_t)(p - s), ",%.17g,%.17g", r->map[i], r->r1[i]);
  return s;
}

reid_status continual_results_decode(continual_results *r, const char *text) {
  char *end;
  long rows = strtol(text, &end, 10);
  if (end == text || rows < 0 || rows > r->rows_cap)
    return reid_fail(REID_EFORMAT, "saved results: %ld rows (at most %d)", rows, r->rows_cap);
  for (long i = 0; i < rows * r->cols; i++)
    for (int k = 0; k < 2; k++) {
      const char *p = end;
      if (*p != ',') return reid_fail(REID_EFORMAT, "saved results: too few values");
      double v = strtod(p + 1, &end);
      if (end == p + 1) return reid_fail(REID_EFORMAT, "saved results: a value is not a number");
      (k ? r->r1 : r->map)[i] = v;
    }
  if (*end) return reid_fail(REID_EFORMAT, "saved results: trailing text");
  r->rows = (int)rows;
  return REID_OK;
}

/* ---- a growing text buffer ---- */

typedef struct text {
  char *s;
  size_t n, cap;
  int failed;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = t->failed ? 0 : vsnprintf(t->s ? t->s + t->n : NULL, t->s ? t->cap - t->n : 0, fmt, ap);
    va_end(ap);
    if (t->failed || k < 0) return;
    if (t->s && t->n + (size_t)k < t->cap) {
      t->n += (size_t)k;
      return;
    }
    size_t cap = (t->cap + (size_t)k + 1) * 2;
    char *s = realloc(t->s, cap);
    if (!s) {
      t->failed = 1;
      return;
    }
    t->s = s, t->cap = cap;
  }
}

static void put_num(text *t, double v) {
  if (isfinite(v))
    put(t, "%.6f", v);
  else
    put(t, "null");
}

static void put_str(text *t, const char *s) {
  char buf[512];
  json_escape(buf, sizeof buf, s, strlen(s)); /* quotes included */
  put(t, "%s", buf);
}

static reid_status save_text(const char *path, text *t) {
  if (t->failed) return reid_fail(REID_ENOMEM, "out of memory writing %s", path);
  const void *parts[1] = {t->s};
  size_t sizes[1] = {t->n};
  reid_status st = reid_write_file_atomic(path, parts, sizes, 1, 1);
  free(t->s);
  memset(t, 0, sizeof *t);
  return st;
}

/* Forgetting of column j: the best score of an earlier row minus the last row's (NaN
 * without an earlier score). */
static double forgetting(const double *m, int rows, int cols, int j) {
  double best = NAN;
  for (int i = 0; i + 1 < rows; i++)
    if (isfinite(m[i * cols + j]) && !(best >= m[i * cols + j])) best = m[i * cols + j];
  return isfinite(best) && isfinite(m[(rows - 1) * cols + j]) ? best - m[(rows - 1) * cols + j]
                                                              : NAN;
}

/* The mean of the last row over the seen (want_seen) or unseen sets, and of the forgetting
 * of the seen sets. */
static double mean_of(const continual_results *r, const task_stream *s, const double *m,
                      int want_seen, int forget) {
  double sum = 0;
  int n = 0;
  for (int j = 0; j < r->cols; j++) {
    if ((s->tests[j].seen_after >= 0) != want_seen) continue;
    double v = forget ? forgetting(m, r->rows, r->cols, j) : m[(r->rows - 1) * r->cols + j];
    if (isfinite(v)) sum += v, n++;
  }
  return n ? sum / n : NAN;
}

reid_status continual_results_write(const continual_results *r, const task_stream *s,
                                    const reid_continual_config *c, const char *stem,
                                    const int *row_task) {
  if (r->rows < 1) return REID_OK;
  size_t plen = strlen(stem) + 32;
  char *path = malloc(plen);
  if (!path) return reid_fail(REID_ENOMEM, "out of memory");
  text t = {0};
  /* CSV: one line per (task, test set) */
  put(&t, "after_task,test_set,kind,mAP,R1\n");
  for (int i = 0; i < r->rows; i++)
    for (int j = 0; j < r->cols; j++) {
      put(&t, "%d,%s,%s,", row_task[i], s->tests[j].name,
          s->tests[j].seen_after >= 0 ? "seen" : "unseen");
      if (isfinite(r->map[i * r->cols + j]))
        put(&t, "%.6f,%.6f\n", r->map[i * r->cols + j], r->r1[i * r->cols + j]);
      else
        put(&t, ",\n");
    }
  snprintf(path, plen, "%s.results.csv", stem);
  reid_status st = save_text(path, &t);
  /* JSON */
  put(&t, "{\"method\":\"%s\",\"stream\":\"%s\",\"tasks_trained\":[",
      reid_cl_method_name(c->method), reid_stream_kind_name(c->stream.kind));
  for (int i = 0; i < r->rows; i++) put(&t, "%s%d", i ? "," : "", row_task[i]);
  put(&t, "],\"test_sets\":[");
  for (int j = 0; j < r->cols; j++) {
    put(&t, "%s{\"name\":", j ? "," : "");
    put_str(&t, s->tests[j].name);
    put(&t, ",\"seen_after_task\":%d}", s->tests[j].seen_after);
  }
  const double *mats[2] = {r->map, r->r1};
  const char *names[2] = {"mAP", "R1"};
  for (int k = 0; k < 2; k++) {
    put(&t, "],\"%s\":[", names[k]);
    for (int i = 0; i < r->rows; i++) {
      put(&t, "%s[", i ? "," : "");
      for (int j = 0; j < r->cols; j++) {
        if (j) put(&t, ",");
        put_num(&t, mats[k][i * r->cols + j]);
      }
      put(&t, "]");
    }
  }
  put(&t, "],\"forgetting\":{");
  for (int k = 0; k < 2; k++) {
    put(&t, "%s\"%s\":[", k ? "," : "", names[k]);
    for (int j = 0; j < r->cols; j++) {
      if (j) put(&t, ",");
      put_num(&t, forgetting(mats[k], r->rows, r->cols, j));
    }
    put(&t, "]");
  }
  put(&t, "},\"summary\":{");
  const char *keys[6] = {
      "seen_mAP",          "seen_R1", "unseen_mAP", "unseen_R1", "seen_forgetting_mAP",
      "seen_forgetting_R1"};
  for (int k = 0; k < 6; k++) {
    put(&t, "%s\"%s\":", k ? "," : "", keys[k]);
    put_num(&t, mean_of(r, s, mats[k % 2], k < 2 || k >= 4, k >= 4));
  }
  put(&t, "}}\n");
  snprintf(path, plen, "%s.results.json", stem);
  if (st == REID_OK) st = save_text(path, &t);
  free(t.s);
  /* the plot: mAP (%) of each test set after each task */
  double *x = malloc(sizeof(double) * (size_t)r->rows * (r->cols + 1)), *y = x + r->rows;
  reid_plot_series *series = calloc((size_t)r->cols + 1, sizeof *series);
  if (st == REID_OK && (!x || !series)) st = reid_fail(REID_ENOMEM, "out of memory");
  if (st == REID_OK) {
    for (int i = 0; i < r->rows; i++) x[i] = row_task[i];
    for (int j = 0; j < r->cols; j++) {
      for (int i = 0; i < r->rows; i++) y[j * r->rows + i] = 100 * r->map[i * r->cols + j];
      series[j] = (reid_plot_series){s->tests[j].name, x, y + (size_t)j * r->rows, r->rows};
    }
    char title[128];
    snprintf(title, sizeof title, "reid-train continual --method %s: mAP after each task",
             reid_cl_method_name(c->method));
    reid_plot plot = {
        .title = title, .x_label = "task trained", .y_label = "mAP (%)", .y_min = 0, .y_max = 100};
    const char *ext[2] = {"svg", "png"};
    for (int k = 0; k < 2 && st == REID_OK; k++) {
      snprintf(path, plen, "%s.map.%s", stem, ext[k]);
      st = reid_plot_write(path, &plot, series, r->cols);
    }
  }
  free(x);
  free(series);
  free(path);
  return st;
}
