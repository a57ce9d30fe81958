/* Collecting tracklet crops on site: the `collected` dataset layout that
 * reid-train reads (README "Collected tracklets").
 *
 *   DIR/<stream>/index.jsonl            one JSON line per finished tracklet, collected or dropped
 *   DIR/<stream>/<serial>/<frame>.jpg   up to `frames` evenly spaced crops of one tracklet
 *
 * Streaming side (one thread, the caller's; never touches the disk):
 *   reid_collector_observe  per frame: which objects need a crop now; who was seen with whom
 *   reid_collector_copy     copies those crops out of the mapped frame (raw pixels)
 *   reid_collector_end      a track ended: picks its crops and queues it for the writer
 * Writer side (a thread of its own): converts the crops to RGB, encodes JPEGs with FFmpeg,
 * writes the tracklet folder as .<serial>.part, renames it, appends the index line.
 *
 * Evenly spaced crops of a track of unknown length: a track keeps the crops of the frames
 * it was seen in whose position k (0, 1, 2, ... among its frames) is a multiple of a stride
 * s (first 1). When it holds 2 * frames crops, every other one is dropped and s doubles, so
 * it never holds more than 2 * frames crops and the kept ones are always s apart. At the
 * end, `frames` of them are picked: for each of `frames` targets spread evenly from the
 * track's first frame to its last, the nearest crop.
 *
 * Memory: the crops held by live tracks and queued tracklets (raw pixels, as many bytes as
 * the boxes cover) never exceed `memory` bytes: a crop that would go over drops its
 * track ("memory"). A finished tracklet that finds the queue (`queue_size` tracklets) full
 * is dropped ("queue-full"); one whose JPEGs would take the collection over `max_bytes`
 * (this stream's folder, existing files included) is dropped ("max-bytes"); one that
 * cannot be written (disk full, I/O error) is removed again and dropped ("write-error"),
 * with a warning. Every drop is counted, reported through `notify` and written to the
 * index (a "dropped" line). Who was seen with whom: at most 1024 other tracklets per
 * tracklet are kept. */
#pragma once

#include <stdint.h>

#include "crop.h"
#include "status.h"

typedef enum reid_collect_drop {
  REID_DROP_QUEUE_FULL,
  REID_DROP_MAX_BYTES,
  REID_DROP_MEMORY,
  REID_DROP_WRITE_ERROR,
  REID_DROP_REASONS
} reid_collect_drop;
const char *reid_collect_drop_name(reid_collect_drop r); /* "queue-full", ... */

typedef enum reid_collect_event_type {
  REID_COLLECT_DROPPED, /* a tracklet was dropped (reason, track_id, frames, dropped_total) */
  REID_COLLECT_WARNING, /* writing failed (message); the collection goes on */
  REID_COLLECT_WRITTEN, /* a tracklet was written (track_id, dir, frames, crops) */
} reid_collect_event_type;

typedef struct reid_collect_event {
  reid_collect_event_type type;
  const char *stream;
  int64_t track_id;
  const char *dir; /* WRITTEN: the tracklet folder's name */
  reid_collect_drop reason;
  int frames, crops;
  int64_t dropped_total; /* drops so far, every reason */
  const char *message;   /* WARNING */
} reid_collect_event;

typedef struct reid_collector_options {
  const char *location; /* DIR, created if missing */
  const char *stream;   /* the stream's name; the folder is its sanitised form */
  int min_frames;       /* tracks seen in fewer frames are not collected (>= 1) */
  int frames;           /* crops per tracklet at most (>= 1) */
  uint64_t max_bytes;   /* the stream folder's size limit; 0: none */
  int queue_size;       /* finished tracklets waiting for the writer (>= 1) */
  uint64_t memory;      /* crop bytes held in memory at most (>= 1) */
  int jpeg_quality;     /* 1..100 */
  /* Called from the streaming thread (drops at the queue or memory limit) and the writer
   * thread (everything else); must not call back into the collector. May be NULL. */
  void (*notify)(void *user, const reid_collect_event *e);
  void *user;
} reid_collector_options;

typedef struct reid_collector_stats {
  int64_t collected; /* tracklets written */
  int64_t too_short; /* tracks with fewer than min_frames frames */
  int64_t dropped[REID_DROP_REASONS];
  uint64_t bytes; /* the stream folder's size as the writer counts it */
  uint64_t held;  /* crop bytes in memory now */
} reid_collector_stats;

typedef struct reid_collector reid_collector;

/* Creates DIR/<stream>, checks that files can be created there and starts the writer.
 * Fails (REID_EIO / REID_EINVAL) naming the folder and the reason. */
reid_status reid_collector_open(const reid_collector_options *o, reid_collector **out);
/* Writes what is queued (waits for the writer: the disk's pace) and stops the writer;
 * stats stay readable; later tracks are not written. */
void reid_collector_finish(reid_collector *c);
/* finish(), then frees everything. Live tracks not ended are discarded. */
void reid_collector_close(reid_collector *c);

/* The objects of frame `frame` (n track ids and boxes in frame pixels). want[i] = 1 for
 * the objects whose crop must be copied now (a repeated id in one frame counts once).
 * Returns how many want one; -1 with reid_last_error() when out of memory. */
int reid_collector_observe(reid_collector *c, int64_t frame, uint64_t pts, const int64_t *ids,
                           const reid_box *boxes, int n, uint8_t *want);
/* Copies the wanted crops out of the frame (which may then be unmapped). */
reid_status reid_collector_copy(reid_collector *c, const reid_frame *f, const int64_t *ids,
                                const reid_box *boxes, const uint8_t *want, int n);
/* Track `track_id` ended: its crops are queued for the writer, or it is dropped or, when
 * too short, forgotten. pts in ns (UINT64_MAX: unknown). */
void reid_collector_end(reid_collector *c, int64_t track_id, uint64_t first_pts, uint64_t last_pts);
void reid_collector_stats_get(reid_collector *c, reid_collector_stats *out);
/* The stream's folder (DIR/<sanitised stream>). */
const char *reid_collector_folder(const reid_collector *c);
