/* The tracklet pool: one running pooled embedding per track id.
 *
 * A track is created the first time its id is observed. Each observation
 * updates its last frame, timestamp and box; embeddings (L2-normalised,
 * [dim]) are summed, and the pooled embedding is that sum re-normalised:
 *     pooled = normalise(sum_t e_t),  |e_t| = 1
 * i.e. the mean of the per-frame embeddings, re-normalised.
 *
 * A track ends when it has not been observed for `timeout` frames
 * (reid_tracklet_pool_take_expired) or when the caller ends them all (EOS,
 * flush: reid_tracklet_pool_take_all). Ended tracklets are handed over to
 * the caller, who frees them with reid_tracklet_free.
 *
 * Frame indices are the caller's (monotonic, e.g. buffers seen since
 * start). Timestamps are opaque uint64 values (GStreamer PTS in ns, or
 * REID_PTS_NONE). Pure C, not thread-safe: one pool per stream. */
#pragma once

#include <stdint.h>

#include "status.h"

#define REID_PTS_NONE UINT64_MAX

typedef struct reid_tracklet {
  int64_t track_id;
  uint64_t first_pts, last_pts; /* REID_PTS_NONE when unknown */
  int64_t first_frame, last_frame;
  int64_t last_embedded_frame; /* -1 before the first embedding */
  int frames;                  /* distinct frames the track was observed in */
  int embedded;                /* embeddings summed into the pool */
  float bbox[4];               /* last box: x, y, w, h (pixels) */
  int best_query;              /* live watchlist match of the pooled embedding when last
                                  scored: the closest query, -1 before scoring */
  float best_score;            /* its cosine */
  int dim;
  float *sum; /* [dim] sum of the per-frame embeddings */
} reid_tracklet;

typedef struct reid_tracklet_pool reid_tracklet_pool;

reid_status reid_tracklet_pool_create(int dim, reid_tracklet_pool **out);
void reid_tracklet_pool_destroy(reid_tracklet_pool *pool);
int reid_tracklet_pool_size(const reid_tracklet_pool *pool);
/* The live track with this id, or NULL. */
reid_tracklet *reid_tracklet_pool_find(reid_tracklet_pool *pool, int64_t track_id);

/* Records that track_id was seen in `frame` at `pts` with `bbox` (x, y, w, h);
 * creates the track if it is new. Returns it in *out (owned by the pool). */
reid_status reid_tracklet_pool_observe(reid_tracklet_pool *pool, int64_t track_id, int64_t frame,
                                       uint64_t pts, const float bbox[4], reid_tracklet **out);

/* Whether the track should get a new embedding in `frame`: it has none yet,
 * or at least `interval` frames have passed since the last one (interval 1:
 * every frame). */
int reid_tracklet_wants_embedding(const reid_tracklet *t, int64_t frame, int interval);

/* Adds one L2-normalised embedding [t->dim] computed in `frame`. */
void reid_tracklet_add_embedding(reid_tracklet *t, int64_t frame, const float *embedding);

/* The pooled embedding [t->dim], L2-normalised (zeros if nothing was added). */
void reid_tracklet_pooled(const reid_tracklet *t, float *out);

/* Removes the tracks not observed for `timeout` frames, i.e. with
 * now - last_frame >= timeout, and hands them over in first-seen order:
 * *out is a new array of *count tracklets (NULL when none). */
reid_status reid_tracklet_pool_take_expired(reid_tracklet_pool *pool, int64_t now, int64_t timeout,
                                            reid_tracklet ***out, int *count);
/* Removes and hands over every track (first-seen order). */
reid_status reid_tracklet_pool_take_all(reid_tracklet_pool *pool, reid_tracklet ***out, int *count);

void reid_tracklet_free(reid_tracklet *t);
/* Frees an array from take_* together with its tracklets. */
void reid_tracklet_free_array(reid_tracklet **list, int count);
