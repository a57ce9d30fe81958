/* The element's gallery writer: finished tracklets go into a bounded queue
 * that a thread of its own writes to the gallery (kernels/gallery) in
 * batched transactions, so the streaming thread never waits for the
 * database.
 *
 * - push() never blocks: when `queue_size` tracklets are waiting (the
 *   database is slow or unreachable), the new one is dropped and counted.
 * - A failed batch stays queued; the thread reconnects and retries with
 *   exponential backoff (100 ms doubling to backoff_max_ms), reporting the
 *   outage (location with the password hidden) and the recovery.
 * - stop() writes what is queued, waiting at most flush_timeout_ms for the
 *   database; what is still queued then is dropped and counted.
 * - Thumbnails (RGB crops) are JPEG-encoded on the writer thread.
 *
 * Pure C (pthreads); events reach the caller through `notify`, called from
 * the writer thread (outage, recovery) or the pushing thread (drops). */
#pragma once

#include <stdint.h>

#include "gallery.h"
#include "image.h"

/* One finished tracklet, owned by the queue once pushed. */
typedef struct reid_gallery_item {
  char *stream;
  int64_t track_id, first_pts, last_pts, first_time, last_time;
  int frames;
  float bbox[4];
  float *embedding; /* [dims] */
  reid_image thumb; /* RGB crop, data NULL: none */
} reid_gallery_item;
void reid_gallery_item_free(reid_gallery_item *item);

typedef struct reid_gallery_writer_stats {
  int64_t queued;   /* accepted by push */
  int64_t written;  /* committed rows */
  int64_t skipped;  /* already stored (a retried batch) */
  int64_t dropped;  /* lost: queue full, or still queued when stop gave up */
  int64_t failures; /* failed attempts (connect or write) */
  int pending;      /* in the queue now */
} reid_gallery_writer_stats;

typedef enum reid_gallery_event {
  REID_GALLERY_EVENT_OUTAGE,    /* a write or connection failed; will retry */
  REID_GALLERY_EVENT_RECOVERED, /* writing again after an outage */
  REID_GALLERY_EVENT_DROPPED,   /* tracklets were dropped */
} reid_gallery_event;

typedef void (*reid_gallery_writer_notify)(void *user, reid_gallery_event event, const char *text,
                                           const reid_gallery_writer_stats *stats);

typedef struct reid_gallery_writer_options {
  const char *uri;
  reid_gallery_model model;
  reid_gallery_dtype dtype; /* a new gallery's; an existing one keeps its own */
  int queue_size;           /* >= 1 */
  int batch_size;           /* rows per transaction, >= 1 */
  int flush_timeout_ms;     /* how long stop() keeps trying */
  int backoff_max_ms;
  reid_gallery_writer_notify notify;
  void *user;
} reid_gallery_writer_options;

typedef struct reid_gallery_writer reid_gallery_writer;

/* Opens the gallery and binds the model (so that a wrong location, a corrupt
 * file, a wrong password or another model's gallery fail here, clearly),
 * then starts the thread. */
reid_status reid_gallery_writer_start(const reid_gallery_writer_options *o,
                                      reid_gallery_writer **out);
/* Queues the item (taking it; *item is zeroed). Returns 1 when queued, 0
 * when dropped because the queue is full. */
int reid_gallery_writer_push(reid_gallery_writer *w, reid_gallery_item *item);
void reid_gallery_writer_get_stats(reid_gallery_writer *w, reid_gallery_writer_stats *out);
/* Flushes (see above), joins the thread and frees; final counts in *stats (may be NULL). */
void reid_gallery_writer_stop(reid_gallery_writer *w, reid_gallery_writer_stats *stats);
