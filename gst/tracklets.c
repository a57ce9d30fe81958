/* Tracklet pool: live tracks in creation order plus an open-addressing hash
 * index (track id -> position), rebuilt whenever tracks are removed. */
#include "tracklets.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct reid_tracklet_pool {
  int dim;
  reid_tracklet **tracks; /* live tracks, first-seen order */
  int count, cap;
  int *index; /* [index_cap] position in tracks, -1 = empty; index_cap a power of 2 */
  int index_cap;
};

static uint32_t hash_id(int64_t id) {
  uint64_t x = (uint64_t)id * 0x9E3779B97F4A7C15ull;
  return (uint32_t)(x >> 32);
}

static reid_status rebuild_index(reid_tracklet_pool *p, int min_cap) {
  int cap = p->index_cap ? p->index_cap : 64;
  while (cap < 2 * min_cap) cap *= 2;
  if (cap != p->index_cap) {
    int *grown = malloc(sizeof *grown * (size_t)cap);
    if (!grown) return reid_fail(REID_ENOMEM, "tracklet pool: out of memory");
    free(p->index);
    p->index = grown;
    p->index_cap = cap;
  }
  for (int i = 0; i < cap; i++) p->index[i] = -1;
  for (int i = 0; i < p->count; i++) {
    uint32_t h = hash_id(p->tracks[i]->track_id) & (uint32_t)(cap - 1);
    while (p->index[h] >= 0) h = (h + 1) & (uint32_t)(cap - 1);
    p->index[h] = i;
  }
  return REID_OK;
}

reid_status reid_tracklet_pool_create(int dim, reid_tracklet_pool **out) {
  *out = NULL;
  if (dim < 1) return reid_fail(REID_EINVAL, "tracklet pool: embedding dimension %d < 1", dim);
  reid_tracklet_pool *p = calloc(1, sizeof *p);
  if (!p) return reid_fail(REID_ENOMEM, "tracklet pool: out of memory");
  p->dim = dim;
  reid_status st = rebuild_index(p, 0);
  if (st != REID_OK) {
    free(p);
    return st;
  }
  *out = p;
  return REID_OK;
}

void reid_tracklet_free(reid_tracklet *t) {
  if (!t) return;
  free(t->sum);
  free(t);
}

void reid_tracklet_free_array(reid_tracklet **list, int count) {
  for (int i = 0; list && i < count; i++) reid_tracklet_free(list[i]);
  free(list);
}

void reid_tracklet_pool_destroy(reid_tracklet_pool *p) {
  if (!p) return;
  for (int i = 0; i < p->count; i++) reid_tracklet_free(p->tracks[i]);
  free(p->tracks);
  free(p->index);
  free(p);
}

int reid_tracklet_pool_size(const reid_tracklet_pool *p) {
  return p->count;
}

reid_tracklet *reid_tracklet_pool_find(reid_tracklet_pool *p, int64_t id) {
  uint32_t mask = (uint32_t)(p->index_cap - 1);
  for (uint32_t h = hash_id(id) & mask; p->index[h] >= 0; h = (h + 1) & mask)
    if (p->tracks[p->index[h]]->track_id == id) return p->tracks[p->index[h]];
  return NULL;
}

static reid_status add_track(reid_tracklet_pool *p, int64_t id, reid_tracklet **out) {
  if (p->count == p->cap) {
    int cap = p->cap ? 2 * p->cap : 32;
    reid_tracklet **grown = realloc(p->tracks, sizeof *grown * (size_t)cap);
    if (!grown) return reid_fail(REID_ENOMEM, "tracklet pool: out of memory");
    p->tracks = grown;
    p->cap = cap;
  }
  reid_tracklet *t = calloc(1, sizeof *t);
  float *sum = calloc((size_t)p->dim, sizeof *sum);
  if (!t || !sum) {
    free(t);
    free(sum);
    return reid_fail(REID_ENOMEM, "tracklet pool: out of memory");
  }
  t->track_id = id;
  t->dim = p->dim;
  t->sum = sum;
  t->last_embedded_frame = -1;
  t->best_query = -1;
  p->tracks[p->count++] = t;
  if (2 * p->count > p->index_cap) {
    reid_status st = rebuild_index(p, p->count);
    if (st != REID_OK) {
      reid_tracklet_free(p->tracks[--p->count]);
      return st;
    }
  } else {
    uint32_t mask = (uint32_t)(p->index_cap - 1), h = hash_id(id) & mask;
    while (p->index[h] >= 0) h = (h + 1) & mask;
    p->index[h] = p->count - 1;
  }
  *out = t;
  return REID_OK;
}

reid_status reid_tracklet_pool_observe(reid_tracklet_pool *p, int64_t id, int64_t frame,
                                       uint64_t pts, const float bbox[4], reid_tracklet **out) {
  reid_tracklet *t = reid_tracklet_pool_find(p, id);
  if (!t) {
    REID_TRY(add_track(p, id, &t));
    t->first_frame = frame;
    t->first_pts = t->last_pts = pts;
    t->last_frame = frame - 1; /* so the first observation counts as a new frame */
  }
  if (frame != t->last_frame) t->frames++;
  t->last_frame = frame;
  if (pts != REID_PTS_NONE) {
    t->last_pts = pts;
    if (t->first_pts == REID_PTS_NONE) t->first_pts = pts;
  }
  memcpy(t->bbox, bbox, sizeof t->bbox);
  *out = t;
  return REID_OK;
}

int reid_tracklet_wants_embedding(const reid_tracklet *t, int64_t frame, int interval) {
  if (t->last_embedded_frame < 0) return 1;
  if (frame == t->last_embedded_frame) return interval <= 1; /* a second box of the same id */
  return frame - t->last_embedded_frame >= (interval < 1 ? 1 : interval);
}

void reid_tracklet_add_embedding(reid_tracklet *t, int64_t frame, const float *e) {
  for (int j = 0; j < t->dim; j++) t->sum[j] += e[j];
  t->embedded++;
  t->last_embedded_frame = frame;
}

void reid_tracklet_pooled(const reid_tracklet *t, float *out) {
  double ss = 0;
  for (int j = 0; j < t->dim; j++) ss += (double)t->sum[j] * t->sum[j];
  float inv = ss > 0 ? (float)(1.0 / fmax(sqrt(ss), 1e-12)) : 0.0f;
  for (int j = 0; j < t->dim; j++) out[j] = t->sum[j] * inv;
}

/* Moves the tracks for which take(track) holds into a new array. */
static reid_status take_where(reid_tracklet_pool *p, int64_t now, int64_t timeout, int all,
                              reid_tracklet ***out, int *count) {
  *out = NULL;
  *count = 0;
  int n = 0;
  for (int i = 0; i < p->count; i++)
    if (all || now - p->tracks[i]->last_frame >= timeout) n++;
  if (n == 0) return REID_OK;
  reid_tracklet **taken = malloc(sizeof *taken * (size_t)n);
  if (!taken) return reid_fail(REID_ENOMEM, "tracklet pool: out of memory");
  int kept = 0, k = 0;
  for (int i = 0; i < p->count; i++) {
    reid_tracklet *t = p->tracks[i];
    if (all || now - t->last_frame >= timeout)
      taken[k++] = t;
    else
      p->tracks[kept++] = t;
  }
  p->count = kept;
  reid_status st = rebuild_index(p, kept);
  if (st != REID_OK) { /* cannot happen: the index only shrinks; keep the pool consistent anyway */
    for (int i = 0; i < k; i++) p->tracks[p->count++] = taken[i];
    free(taken);
    return st;
  }
  *out = taken;
  *count = n;
  return REID_OK;
}

reid_status reid_tracklet_pool_take_expired(reid_tracklet_pool *p, int64_t now, int64_t timeout,
                                            reid_tracklet ***out, int *count) {
  return take_where(p, now, timeout, 0, out, count);
}

reid_status reid_tracklet_pool_take_all(reid_tracklet_pool *p, reid_tracklet ***out, int *count) {
  return take_where(p, 0, 0, 1, out, count);
}
