/* Internal: what the streaming side (collector.c) and the writer thread (collect_writer.c)
 * of the collector share. */
#pragma once

#include <pthread.h>

#include "collector.h"

#define COLLECT_MAX_PARTNERS   1024 /* tracklets remembered as seen with one tracklet */
#define COLLECT_MAX_DROP_LINES 4096 /* drop lines waiting for the writer; more are only counted */

typedef struct collect_crop {
  reid_crop crop;
  int64_t frame;
  uint64_t pts;
  reid_box box; /* in frame pixels, clipped */
  int k;        /* the frame's position among the track's frames */
} collect_crop;

/* A finished tracklet for the writer (crops != NULL) or a drop line (is_drop). */
typedef struct collect_job {
  struct collect_job *next;
  int is_drop;
  reid_collect_drop reason;
  int64_t track_id;
  int serial, frames;
  uint64_t first_pts, last_pts;
  collect_crop *crops;
  int n_crops;
  int *partners; /* serials of the tracklets seen with it, sorted */
  int n_partners;
  int64_t dropped_total;
} collect_job;

struct reid_collector {
  reid_collector_options o;
  char *location, *stream, *folder;

  /* streaming side only */
  struct collect_track **tracks; /* live tracks, sorted by track id */
  int n_tracks, cap_tracks;
  struct collect_track **seen; /* scratch: the tracks of one frame */
  int cap_seen;
  int next_serial;

  /* shared, under mu */
  pthread_mutex_t mu;
  pthread_cond_t wake;
  collect_job *head, *tail;
  int queued, queued_drops; /* tracklets / drop lines in the queue */
  int closing;
  reid_collector_stats stats;
  pthread_t thread;
  int thread_started;

  /* writer only */
  int index_fd; /* -1 until the first line */
  int failing;  /* the last write failed (one warning per run of failures) */
};

void *collect_writer_main(void *arg);
/* Frees a job and its crops; returns the crop bytes it held. */
uint64_t collect_job_free(collect_job *j);
/* Counts a drop and sends the event (call without mu held); queues the drop's index line
 * unless queue_line is 0 (the writer writes it itself). Returns the drops so far. */
int64_t collect_count_drop(reid_collector *c, reid_collect_drop reason, int64_t track_id,
                           int serial, int frames, uint64_t first_pts, uint64_t last_pts,
                           int queue_line);
