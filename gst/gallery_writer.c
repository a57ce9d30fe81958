/* The gallery writer thread: a ring buffer of items, batches written in one
 * transaction each, reconnection with exponential backoff. */
#include "gallery_writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_START_MS 100
#define THUMB_QUALITY    85

struct reid_gallery_writer {
  reid_gallery_writer_options o;
  char uri[1024];  /* the real location (with password) */
  reid_gallery *g; /* NULL while disconnected */
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  reid_gallery_item **ring; /* [queue_size] */
  int head, count;
  int stopping;
  int64_t deadline_ms; /* stopping: give up after this (monotonic) */
  reid_gallery_writer_stats stats;
};

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void reid_gallery_item_free(reid_gallery_item *item) {
  if (!item) return;
  free(item->stream);
  free(item->embedding);
  reid_image_free(&item->thumb);
  memset(item, 0, sizeof *item);
}

static void notify(reid_gallery_writer *w, reid_gallery_event ev, const char *text) {
  reid_gallery_writer_stats s = w->stats;
  s.pending = w->count;
  if (w->o.notify) w->o.notify(w->o.user, ev, text, &s);
}

/* (Re)connects: open and bind the model. */
static reid_status connect_gallery(reid_gallery_writer *w) {
  reid_gallery *g = NULL;
  REID_TRY(reid_gallery_open(w->uri, &g));
  reid_status st = reid_gallery_bind_model(g, &w->o.model, w->o.dtype);
  if (st != REID_OK) {
    reid_gallery_close(g);
    return st;
  }
  w->g = g;
  return REID_OK;
}

/* Writes the first n queued items (the lock is not held: only this thread
 * removes items, and push only appends behind them). */
static reid_status write_batch(reid_gallery_writer *w, reid_gallery_item **items, int n,
                               int *skipped) {
  reid_gallery_row rows[n];
  uint8_t *jpegs[n];
  size_t sizes[n];
  for (int i = 0; i < n; i++) {
    const reid_gallery_item *it = items[i];
    jpegs[i] = NULL, sizes[i] = 0;
    /* a thumbnail that cannot be encoded is left out, not the tracklet */
    if (it->thumb.data &&
        reid_image_encode_jpeg(&it->thumb, THUMB_QUALITY, &jpegs[i], &sizes[i]) != REID_OK)
      jpegs[i] = NULL;
    rows[i] = (reid_gallery_row){.stream = it->stream,
                                 .track_id = it->track_id,
                                 .first_pts = it->first_pts,
                                 .last_pts = it->last_pts,
                                 .first_time = it->first_time,
                                 .last_time = it->last_time,
                                 .frames = it->frames,
                                 .embedding = it->embedding,
                                 .jpeg = jpegs[i],
                                 .jpeg_size = sizes[i]};
    memcpy(rows[i].bbox, it->bbox, sizeof rows[i].bbox);
  }
  reid_status st = w->g ? REID_OK : connect_gallery(w);
  if (st == REID_OK) st = reid_gallery_insert(w->g, rows, n, skipped);
  for (int i = 0; i < n; i++) free(jpegs[i]);
  return st;
}

static void *writer_main(void *arg) {
  reid_gallery_writer *w = arg;
  int backoff = BACKOFF_START_MS, in_outage = 0;
  pthread_mutex_lock(&w->lock);
  for (;;) {
    while (w->count == 0 && !w->stopping) pthread_cond_wait(&w->wake, &w->lock);
    if (w->count == 0) break; /* stopping, all written */
    int n = w->count < w->o.batch_size ? w->count : w->o.batch_size;
    reid_gallery_item *batch[n];
    for (int i = 0; i < n; i++) batch[i] = w->ring[(w->head + i) % w->o.queue_size];
    pthread_mutex_unlock(&w->lock);
    int skipped = 0;
    reid_status st = write_batch(w, batch, n, &skipped);
    char message[1024];
    if (st != REID_OK) {
      snprintf(message, sizeof message, "%s", reid_last_error());
      reid_gallery_close(w->g); /* the connection may be broken: start over */
      w->g = NULL;
    }
    pthread_mutex_lock(&w->lock);
    if (st == REID_OK) {
      for (int i = 0; i < n; i++) {
        reid_gallery_item_free(batch[i]);
        free(batch[i]);
      }
      w->head = (w->head + n) % w->o.queue_size;
      w->count -= n;
      w->stats.written += n - skipped;
      w->stats.skipped += skipped;
      if (in_outage) {
        char text[1200];
        snprintf(text, sizeof text, "gallery %s: writing again after %lld failed attempts",
                 reid_gallery_uri(w->g), (long long)w->stats.failures);
        notify(w, REID_GALLERY_EVENT_RECOVERED, text);
      }
      in_outage = 0;
      backoff = BACKOFF_START_MS;
      continue;
    }
    w->stats.failures++;
    /* one report when an outage starts, then one every 10 attempts */
    if (!in_outage || w->stats.failures % 10 == 0) {
      char text[1400];
      snprintf(text, sizeof text, "%s (%d tracklets queued; retrying in %d ms)", message, w->count,
               backoff);
      notify(w, REID_GALLERY_EVENT_OUTAGE, text);
    }
    in_outage = 1;
    if (w->stopping && now_ms() >= w->deadline_ms) break;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    int64_t wait_ms = backoff;
    if (w->stopping && w->deadline_ms - now_ms() < wait_ms) wait_ms = w->deadline_ms - now_ms();
    if (wait_ms < 0) wait_ms = 0;
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (wait_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
    int rc = 0;
    int was_stopping = w->stopping;
    while (rc != ETIMEDOUT && w->stopping == was_stopping)
      rc = pthread_cond_timedwait(&w->wake, &w->lock, &until);
    backoff = backoff * 2 > w->o.backoff_max_ms ? w->o.backoff_max_ms : backoff * 2;
  }
  /* given up (stopping past the deadline): what is left is lost, and counted */
  if (w->count > 0) {
    int lost = w->count;
    for (; w->count > 0; w->count--, w->head = (w->head + 1) % w->o.queue_size) {
      reid_gallery_item_free(w->ring[w->head]);
      free(w->ring[w->head]);
    }
    w->stats.dropped += lost;
    char text[1400], uri[1024];
    snprintf(text, sizeof text,
             "gallery %s: %d tracklets dropped at stop (the database did not answer within %d "
             "ms); %lld dropped in all",
             reid_gallery_redact(w->uri, uri, sizeof uri), lost, w->o.flush_timeout_ms,
             (long long)w->stats.dropped);
    notify(w, REID_GALLERY_EVENT_DROPPED, text);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

reid_status reid_gallery_writer_start(const reid_gallery_writer_options *o,
                                      reid_gallery_writer **out) {
  *out = NULL;
  if (o->queue_size < 1 || o->batch_size < 1)
    return reid_fail(REID_EINVAL, "gallery writer: queue %d and batch %d must be >= 1",
                     o->queue_size, o->batch_size);
  reid_gallery_writer *w = calloc(1, sizeof *w);
  if (!w) return reid_fail(REID_ENOMEM, "gallery writer: out of memory");
  w->o = *o;
  snprintf(w->uri, sizeof w->uri, "%s", o->uri);
  w->o.uri = w->uri;
  if (w->o.backoff_max_ms < BACKOFF_START_MS) w->o.backoff_max_ms = BACKOFF_START_MS;
  w->ring = calloc((size_t)o->queue_size, sizeof *w->ring);
  reid_status st = w->ring ? connect_gallery(w) : reid_fail(REID_ENOMEM, "gallery: out of memory");
  if (st != REID_OK) {
    free(w->ring);
    free(w);
    return st;
  }
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&w->wake, &attr);
  pthread_condattr_destroy(&attr);
  pthread_mutex_init(&w->lock, NULL);
  if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
    reid_gallery_close(w->g);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w->ring);
    free(w);
    return reid_fail(REID_ENOMEM, "gallery writer: cannot start a thread");
  }
  *out = w;
  return REID_OK;
}

int reid_gallery_writer_push(reid_gallery_writer *w, reid_gallery_item *item) {
  pthread_mutex_lock(&w->lock);
  if (w->count == w->o.queue_size) {
    w->stats.dropped++;
    /* one report when drops start, then one every 100 */
    if (w->stats.dropped == 1 || w->stats.dropped % 100 == 0) {
      char text[1400], uri[1024];
      snprintf(text, sizeof text,
               "gallery %s: queue full (%d tracklets): %lld tracklets dropped so far",
               reid_gallery_redact(w->uri, uri, sizeof uri), w->o.queue_size,
               (long long)w->stats.dropped);
      notify(w, REID_GALLERY_EVENT_DROPPED, text);
    }
    pthread_mutex_unlock(&w->lock);
    reid_gallery_item_free(item);
    return 0;
  }
  reid_gallery_item *copy = malloc(sizeof *copy);
  if (!copy) {
    w->stats.dropped++;
    pthread_mutex_unlock(&w->lock);
    reid_gallery_item_free(item);
    return 0;
  }
  *copy = *item;
  memset(item, 0, sizeof *item);
  w->ring[(w->head + w->count) % w->o.queue_size] = copy;
  w->count++;
  w->stats.queued++;
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->lock);
  return 1;
}

void reid_gallery_writer_get_stats(reid_gallery_writer *w, reid_gallery_writer_stats *out) {
  pthread_mutex_lock(&w->lock);
  *out = w->stats;
  out->pending = w->count;
  pthread_mutex_unlock(&w->lock);
}

void reid_gallery_writer_stop(reid_gallery_writer *w, reid_gallery_writer_stats *stats) {
  if (!w) return;
  pthread_mutex_lock(&w->lock);
  w->stopping = 1;
  w->deadline_ms = now_ms() + (w->o.flush_timeout_ms > 0 ? w->o.flush_timeout_ms : 0);
  pthread_cond_broadcast(&w->wake);
  pthread_mutex_unlock(&w->lock);
  pthread_join(w->thread, NULL);
  if (stats) {
    *stats = w->stats;
    stats->pending = 0;
  }
  reid_gallery_close(w->g);
  pthread_cond_destroy(&w->wake);
  pthread_mutex_destroy(&w->lock);
  free(w->ring);
  free(w);
}
