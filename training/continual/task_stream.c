/* Task streams: identity splits, task training views and test sets (task_stream.h). */
#include "task_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"intra", "inter", "collected"};

reid_status reid_stream_kind_parse(const char *name, reid_stream_kind *out) {
  for (int i = 0; i < 3; i++)
    if (name && !strcmp(name, kind_names[i])) {
      *out = (reid_stream_kind)i;
      return REID_OK;
    }
  return reid_fail(REID_EINVAL, "unknown stream '%s' (expected intra, inter or collected)",
                   name ? name : "(null)");
}

const char *reid_stream_kind_name(reid_stream_kind k) {
  return k >= REID_STREAM_INTRA && k <= REID_STREAM_COLLECTED ? kind_names[k] : "unknown";
}

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

reid_status reid_split_intra(const int *ids, int n, int base, int tasks, int *task_of) {
  if (tasks < 1 || base < 1 || base > n || (tasks == 1) != (base == n) ||
      (tasks > 1 && (n - base) % (tasks - 1)))
    return reid_fail(REID_EINVAL,
                     "%d identities do not split into a first task of %d and %d equal tasks "
                     "(need %d - %d to be a positive multiple of %d)",
                     n, base, tasks - 1, n, base, tasks > 1 ? tasks - 1 : 1);
  int *sorted = malloc(sizeof(int) * (size_t)n);
  if (!sorted) return reid_fail(REID_ENOMEM, "out of memory");
  memcpy(sorted, ids, sizeof(int) * (size_t)n);
  qsort(sorted, (size_t)n, sizeof(int), cmp_int);
  reid_status st = REID_OK;
  for (int k = 1; k < n && st == REID_OK; k++)
    if (sorted[k] == sorted[k - 1])
      st = reid_fail(REID_EINVAL, "identity %d is listed twice", sorted[k]);
  const int per = tasks > 1 ? (n - base) / (tasks - 1) : 0;
  for (int k = 0; k < n && st == REID_OK; k++) {
    int *at = bsearch(&ids[k], sorted, (size_t)n, sizeof(int), cmp_int);
    int rank = (int)(at - sorted);
    task_of[k] = rank < base ? 0 : 1 + (rank - base) / per;
  }
  free(sorted);
  return st;
}

/* ---- views ---- */

void task_view_free(reid_dataset *v) {
  if (!v) return;
  free(v->distinct_pairs);
  free(v->frames);
  free(v->train.samples);
  free(v->query.samples);
  free(v->gallery.samples);
  free(v);
}

/* An empty view over the frames of `parts` sources (pointers borrowed, concatenated);
 * frame_base[i] gets where part i's source frames start. */
static reid_status view_new(const task_part *parts, int n_parts, int *frame_base,
                            reid_dataset **out) {
  reid_dataset *v = calloc(1, sizeof *v);
  if (!v) return reid_fail(REID_ENOMEM, "out of memory");
  v->layout = parts[0].src->layout;
  v->video = parts[0].src->video;
  for (int i = 0; i < n_parts; i++) { /* a source shared by several parts counts once */
    frame_base[i] = v->n_frames;
    for (int j = 0; j < i; j++)
      if (parts[j].src == parts[i].src) frame_base[i] = frame_base[j];
    if (frame_base[i] == v->n_frames) v->n_frames += parts[i].src->n_frames;
    v->video |= parts[i].src->video;
  }
  v->frames = malloc(sizeof(char *) * (size_t)(v->n_frames ? v->n_frames : 1));
  if (!v->frames) {
    free(v);
    return reid_fail(REID_ENOMEM, "out of memory");
  }
  for (int i = 0; i < n_parts; i++)
    memcpy(v->frames + frame_base[i], parts[i].src->frames,
           sizeof(char *) * (size_t)parts[i].src->n_frames);
  *out = v;
  return REID_OK;
}

static int cmp_pair(const void *a, const void *b) {
  const int *x = a, *y = b;
  return x[0] != y[0] ? (x[0] > y[0]) - (x[0] < y[0]) : (x[1] > y[1]) - (x[1] < y[1]);
}

/* The distinct pairs of src whose samples are both in the part, renumbered as the view's
 * train samples (the part's were appended from view index first_sample on, in src order). */
static reid_status view_distinct_pairs(reid_dataset *v, const reid_dataset *src,
                                       const task_part *part, int first_sample) {
  if (src->n_distinct_pairs < 1) return REID_OK;
  int *at = malloc(sizeof(int) * (size_t)(src->train.count + 1)); /* src sample -> view */
  int(*grown)[2] = realloc(v->distinct_pairs,
                           sizeof *grown * (size_t)(v->n_distinct_pairs + src->n_distinct_pairs));
  if (grown) v->distinct_pairs = grown;
  if (!at || !grown) {
    free(at);
    return reid_fail(REID_ENOMEM, "out of memory");
  }
  for (int k = 0, n = first_sample; k < src->train.count; k++) {
    int l = src->train.samples[k].label;
    at[k] = l >= part->first && l < part->first + part->count ? n++ : -1;
  }
  for (int i = 0; i < src->n_distinct_pairs; i++) {
    int a = at[src->distinct_pairs[i][0]], b = at[src->distinct_pairs[i][1]];
    if (a < 0 || b < 0) continue;
    v->distinct_pairs[v->n_distinct_pairs][0] = a < b ? a : b;
    v->distinct_pairs[v->n_distinct_pairs][1] = a < b ? b : a;
    v->n_distinct_pairs++;
  }
  qsort(v->distinct_pairs, (size_t)v->n_distinct_pairs, sizeof *v->distinct_pairs, cmp_pair);
  free(at);
  return REID_OK;
}

reid_status task_view_build(const task_stream *s, int first, int count, reid_dataset **out) {
  if (first < 0 || count < 1 || first + count > s->n_tasks)
    return reid_fail(REID_EINVAL, "tasks %d..%d of a stream of %d", first, first + count - 1,
                     s->n_tasks);
  const task_part *parts = s->parts + first;
  int *base = malloc(sizeof(int) * (size_t)count);
  if (!base) return reid_fail(REID_ENOMEM, "out of memory");
  reid_dataset *v = NULL;
  reid_status st = view_new(parts, count, base, &v);
  int n = 0;
  for (int p = 0; p < count && st == REID_OK; p++)
    for (int k = 0; k < parts[p].src->train.count; k++) {
      int l = parts[p].src->train.samples[k].label;
      n += l >= parts[p].first && l < parts[p].first + parts[p].count;
    }
  if (st == REID_OK && !(v->train.samples = malloc(sizeof(reid_sample) * (size_t)(n ? n : 1))))
    st = reid_fail(REID_ENOMEM, "out of memory");
  int label0 = 0;
  for (int p = 0; p < count && st == REID_OK; p++) {
    const reid_split *tr = &parts[p].src->train;
    const int first_sample = v->train.count;
    for (int k = 0; k < tr->count; k++) {
      reid_sample x = tr->samples[k];
      if (x.label < parts[p].first || x.label >= parts[p].first + parts[p].count) continue;
      x.label = label0 + x.label - parts[p].first;
      x.first_frame += base[p];
      v->train.samples[v->train.count++] = x;
    }
    label0 += parts[p].count;
    st = view_distinct_pairs(v, parts[p].src, &parts[p], first_sample);
  }
  free(base);
  if (st != REID_OK) {
    task_view_free(v);
    return st;
  }
  v->n_train_ids = label0;
  *out = v;
  return REID_OK;
}

/* Retrieval among the training identities of `part`: per identity, its first sample
 * in each camera is a query, the others the gallery. */
static reid_status seen_ids_view(const task_part *part, reid_dataset **out) {
  int base;
  reid_dataset *v = NULL;
  REID_TRY(view_new(part, 1, &base, &v));
  const reid_split *tr = &part->src->train;
  v->query.samples = malloc(sizeof(reid_sample) * (size_t)(tr->count + 1));
  v->gallery.samples = malloc(sizeof(reid_sample) * (size_t)(tr->count + 1));
  char *first = calloc((size_t)part->count * 1024, 1); /* (identity, camera) seen */
  if (!v->query.samples || !v->gallery.samples || !first) {
    free(first);
    task_view_free(v);
    return reid_fail(REID_ENOMEM, "out of memory");
  }
  for (int k = 0; k < tr->count; k++) {
    reid_sample x = tr->samples[k];
    if (x.label < part->first || x.label >= part->first + part->count) continue;
    int cam = x.camid >= 0 && x.camid < 1024 ? x.camid : 1023;
    char *seen = &first[(size_t)(x.label - part->first) * 1024 + cam];
    x.label = -1;
    if (!*seen)
      *seen = 1, v->query.samples[v->query.count++] = x;
    else
      v->gallery.samples[v->gallery.count++] = x;
  }
  free(first);
  *out = v;
  return REID_OK;
}

void task_stream_free(task_stream *s) {
  if (!s) return;
  for (int i = 0; i < s->n_tests; i++) task_view_free(s->tests[i].own);
  for (int i = 0; i < s->n_sources; i++) reid_dataset_free(s->sources[i]);
  free(s->sources);
  free(s->source_names);
  free(s->parts);
  free(s->tests);
  free(s);
}

static reid_status add_source(task_stream *s, const char *path, reid_layout layout,
                              reid_dataset **out) {
  REID_TRY(reid_dataset_load(path, layout, out));
  s->sources[s->n_sources] = *out;
  s->source_names[s->n_sources++] = (char *)path;
  return REID_OK;
}

static test_set *add_test(task_stream *s, const char *name, const reid_dataset *d, int seen_after) {
  test_set *t = &s->tests[s->n_tests++];
  snprintf(t->name, sizeof t->name, "%s", name);
  t->data = d;
  t->seen_after = seen_after;
  return t;
}

/* The short name of a folder (its last component) for test-set names. */
static const char *base_name(const char *path) {
  const char *end = path + strlen(path);
  while (end > path && end[-1] == '/') end--;
  const char *b = end;
  while (b > path && b[-1] != '/') b--;
  return b;
}

static reid_status load_tasks(task_stream *s, const task_stream_config *c) {
  reid_dataset *d;
  char name[96];
  if (c->kind == REID_STREAM_INTRA) {
    if (c->n_data != 1)
      return reid_fail(REID_EINVAL, "an intra-domain stream splits one dataset (got %d)",
                       c->n_data);
    REID_TRY(add_source(s, c->data[0], c->layout, &d));
    int n = d->n_train_ids, *ids = malloc(sizeof(int) * (size_t)(n + 1)),
        *task_of = malloc(sizeof(int) * (size_t)(n + 1));
    reid_status st = ids && task_of ? REID_OK : reid_fail(REID_ENOMEM, "out of memory");
    for (int i = 0; i < n && st == REID_OK; i++) ids[i] = i; /* labels are the ids' order */
    if (st == REID_OK) st = reid_split_intra(ids, n, c->base_ids, c->tasks, task_of);
    if (st != REID_OK) {
      char why[512];
      snprintf(why, sizeof why, "%s", reid_last_error());
      reid_fail(st, "%s: %s", c->data[0], why);
    }
    if (st == REID_OK) {
      s->n_tasks = c->tasks;
      for (int t = 0; t < c->tasks; t++) s->parts[t] = (task_part){d, 0, 0};
      for (int i = 0; i < n; i++) {
        task_part *p = &s->parts[task_of[i]];
        if (!p->count) p->first = i;
        p->count++;
      }
    }
    free(ids);
    free(task_of);
    REID_TRY(st);
    for (int t = 0; t < s->n_tasks; t++) {
      snprintf(name, sizeof name, "task%d-ids", t);
      test_set *ts = add_test(s, name, NULL, t);
      REID_TRY(seen_ids_view(&s->parts[t], &ts->own));
      ts->data = ts->own;
    }
    snprintf(name, sizeof name, "%s-test", base_name(c->data[0]));
    add_test(s, name, d, -1);
    return REID_OK;
  }
  if (c->n_data < 1)
    return reid_fail(REID_EINVAL, "a %s stream needs datasets", reid_stream_kind_name(c->kind));
  const int collected = c->kind == REID_STREAM_COLLECTED;
  for (int t = 0; t < c->n_data; t++) {
    REID_TRY(add_source(s, c->data[t], collected ? REID_LAYOUT_COLLECTED : c->layout, &d));
    if (d->n_train_ids < 2)
      return reid_fail(REID_EINVAL, "%s: %d training identities (a task needs 2)", c->data[t],
                       d->n_train_ids);
    int n = d->n_train_ids < c->ids_per_task || collected ? d->n_train_ids : c->ids_per_task;
    s->parts[s->n_tasks++] = (task_part){d, 0, n};
    snprintf(name, sizeof name, "%s", base_name(c->data[t]));
    if (d->query.count > 0 && d->gallery.count > 0) add_test(s, name, d, t);
  }
  return REID_OK;
}

reid_status task_stream_load(const task_stream_config *c, task_stream **out) {
  task_stream *s = calloc(1, sizeof *s);
  int max_tasks = c->kind == REID_STREAM_INTRA ? c->tasks : c->n_data;
  int max_sources = c->n_data + c->n_unseen;
  if (s) {
    s->kind = c->kind;
    s->sources = calloc((size_t)max_sources + 1, sizeof *s->sources);
    s->source_names = calloc((size_t)max_sources + 1, sizeof *s->source_names);
    s->parts = calloc((size_t)(max_tasks > 0 ? max_tasks : 1), sizeof *s->parts);
    s->tests = calloc((size_t)(max_tasks + c->n_unseen + 1), sizeof *s->tests);
  }
  if (!s || !s->sources || !s->source_names || !s->parts || !s->tests) {
    task_stream_free(s);
    return reid_fail(REID_ENOMEM, "out of memory");
  }
  reid_status st = max_tasks >= 1 ? load_tasks(s, c)
                                  : reid_fail(REID_EINVAL, "a stream needs at least one task");
  for (int u = 0; u < c->n_unseen && st == REID_OK; u++) {
    reid_dataset *d;
    st = add_source(s, c->unseen[u],
                    c->kind == REID_STREAM_COLLECTED ? REID_LAYOUT_AUTO : c->layout, &d);
    if (st == REID_OK && (d->query.count < 1 || d->gallery.count < 1))
      st =
          reid_fail(REID_EINVAL, "%s: an unseen set needs query and gallery samples", c->unseen[u]);
    if (st == REID_OK) add_test(s, base_name(c->unseen[u]), d, -1);
  }
  if (st != REID_OK) {
    task_stream_free(s);
    return st;
  }
  *out = s;
  return REID_OK;
}
