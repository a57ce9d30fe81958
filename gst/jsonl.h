/* JSON lines for finished tracklets and watchlist matches.
 *
 * Tracklet line (one per finished track):
 *   {"stream":"cam1","track_id":7,"first_pts":0,"last_pts":1200000000,
 *    "frames":37,"embedded_frames":37,"reason":"timeout","model":"m.safetensors",
 *    "bbox":[x,y,w,h],"embedding":[...dim floats...]}
 * Match line (one per query whose score reaches the threshold, after the
 * tracklet's line):
 *   {"stream":"cam1","track_id":7,"first_pts":0,"last_pts":1200000000,
 *    "frames":37,"match":{"query":"alice.jpg","score":0.8123}}
 * Timestamps are nanoseconds, null when unknown. Floats use %.9g (they read
 * back as the same float32). Each line ends in '\n'.
 *
 * A writer appends lines to a file opened with O_APPEND and writes each line
 * with one write() call, so several writers (elements, processes) can share
 * one file without interleaving inside a line. */
#pragma once

#include <stdint.h>

#include "status.h"

typedef struct reid_tracklet_record {
  const char *stream, *reason, *model;
  int64_t track_id;
  uint64_t first_pts, last_pts; /* UINT64_MAX: unknown (null) */
  int frames, embedded_frames;
  float bbox[4];
  const float *embedding;
  int dim;
} reid_tracklet_record;

/* malloc'd line (with '\n'); NULL with reid_last_error() on failure. */
char *reid_json_tracklet_line(const reid_tracklet_record *r);
char *reid_json_match_line(const reid_tracklet_record *r, const char *query, double score);

typedef struct reid_jsonl reid_jsonl;

/* Opens (creates) path for appending; REID_EIO naming the path and reason. */
reid_status reid_jsonl_open(const char *path, reid_jsonl **out);
/* Appends one line with a single write(). */
reid_status reid_jsonl_write(reid_jsonl *w, const char *line);
void reid_jsonl_close(reid_jsonl *w);
