/* reidembed's collect-* properties and the calls that feed the collector (gst/collector.h)
 * from the streaming thread: which objects need a crop, the copies while the frame is
 * mapped, ended tracks; drops and write failures come back as bus messages. */
#include "gstreidembed.h"

#include <string.h>

GST_DEBUG_CATEGORY_EXTERN(gst_reid_embed_debug);
#define GST_CAT_DEFAULT gst_reid_embed_debug

#define DEFAULT_COLLECT_LOCATION     NULL
#define DEFAULT_COLLECT_MIN_FRAMES   8
#define DEFAULT_COLLECT_FRAMES       16
#define DEFAULT_COLLECT_MAX_BYTES    0
#define DEFAULT_COLLECT_QUEUE_SIZE   16
#define DEFAULT_COLLECT_MEMORY       (G_GUINT64_CONSTANT(256) << 20)
#define DEFAULT_COLLECT_JPEG_QUALITY 90

enum {
  PROP_COLLECT_LOCATION = GST_REID_EMBED_PROP_COLLECT_FIRST,
  PROP_COLLECT_MIN_FRAMES,
  PROP_COLLECT_FRAMES,
  PROP_COLLECT_MAX_BYTES,
  PROP_COLLECT_QUEUE_SIZE,
  PROP_COLLECT_MEMORY,
  PROP_COLLECT_JPEG_QUALITY,
};

struct ReidCollect {
  reid_collector *collector;
  GstReidEmbed *element; /* for the messages */
  gint64 *ids;           /* [cap] scratch: the frame's objects */
  reid_box *boxes;
  guint8 *want;
  gint n, cap;
};

void gst_reid_embed_collect_props_init(ReidCollectProps *p) {
  p->location = g_strdup(DEFAULT_COLLECT_LOCATION);
  p->min_frames = DEFAULT_COLLECT_MIN_FRAMES;
  p->frames = DEFAULT_COLLECT_FRAMES;
  p->max_bytes = DEFAULT_COLLECT_MAX_BYTES;
  p->queue_size = DEFAULT_COLLECT_QUEUE_SIZE;
  p->memory = DEFAULT_COLLECT_MEMORY;
  p->jpeg_quality = DEFAULT_COLLECT_JPEG_QUALITY;
}

void gst_reid_embed_collect_props_clear(ReidCollectProps *p) {
  g_clear_pointer(&p->location, g_free);
}

gboolean gst_reid_embed_collect_set_property(ReidCollectProps *p, guint prop_id,
                                             const GValue *value) {
  switch (prop_id) {
  case PROP_COLLECT_LOCATION: g_free(p->location), p->location = g_value_dup_string(value); break;
  case PROP_COLLECT_MIN_FRAMES: p->min_frames = g_value_get_int(value); break;
  case PROP_COLLECT_FRAMES: p->frames = g_value_get_int(value); break;
  case PROP_COLLECT_MAX_BYTES: p->max_bytes = g_value_get_uint64(value); break;
  case PROP_COLLECT_QUEUE_SIZE: p->queue_size = g_value_get_int(value); break;
  case PROP_COLLECT_MEMORY: p->memory = g_value_get_uint64(value); break;
  case PROP_COLLECT_JPEG_QUALITY: p->jpeg_quality = g_value_get_int(value); break;
  default: return FALSE;
  }
  return TRUE;
}

gboolean gst_reid_embed_collect_get_property(const ReidCollectProps *p, guint prop_id,
                                             GValue *value) {
  switch (prop_id) {
  case PROP_COLLECT_LOCATION: g_value_set_string(value, p->location); break;
  case PROP_COLLECT_MIN_FRAMES: g_value_set_int(value, p->min_frames); break;
  case PROP_COLLECT_FRAMES: g_value_set_int(value, p->frames); break;
  case PROP_COLLECT_MAX_BYTES: g_value_set_uint64(value, p->max_bytes); break;
  case PROP_COLLECT_QUEUE_SIZE: g_value_set_int(value, p->queue_size); break;
  case PROP_COLLECT_MEMORY: g_value_set_uint64(value, p->memory); break;
  case PROP_COLLECT_JPEG_QUALITY: g_value_set_int(value, p->jpeg_quality); break;
  default: return FALSE;
  }
  return TRUE;
}

void gst_reid_embed_collect_install_properties(GObjectClass *klass) {
  const GParamFlags rw_ready = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;
  /**
   * GstReidEmbed:collect-location:
   * Folder that receives the crops of finished tracklets as a dataset reid-train reads
   * (layout `collected`: LOCATION/<stream-name>/<serial>/<frame>.jpg plus
   * LOCATION/<stream-name>/index.jsonl). Created at start, which fails if files cannot
   * be created there. Writing happens on a thread of its own; a full or slow disk drops
   * tracklets (counted, reported) and never stalls the stream.
   */
  g_object_class_install_property(
      klass, PROP_COLLECT_LOCATION,
      g_param_spec_string("collect-location", "Collect location",
                          "Folder for the crops of finished tracklets (a reid-train dataset); "
                          "empty: no collection",
                          DEFAULT_COLLECT_LOCATION, rw_ready));
  g_object_class_install_property(
      klass, PROP_COLLECT_MIN_FRAMES,
      g_param_spec_int("collect-min-frames", "Collect minimum frames",
                       "Tracklets seen in fewer frames are not collected", 1, G_MAXINT,
                       DEFAULT_COLLECT_MIN_FRAMES, rw_ready));
  g_object_class_install_property(
      klass, PROP_COLLECT_FRAMES,
      g_param_spec_int("collect-frames", "Collect frames",
                       "Crops per collected tracklet at most, evenly spaced over the track "
                       "(each live track holds at most twice as many in memory)",
                       1, 10000, DEFAULT_COLLECT_FRAMES, rw_ready));
  g_object_class_install_property(
      klass, PROP_COLLECT_MAX_BYTES,
      g_param_spec_uint64("collect-max-bytes", "Collect maximum bytes",
                          "Size limit of this stream's collection folder (earlier runs "
                          "included); tracklets beyond it are dropped; 0: no limit",
                          0, G_MAXUINT64, DEFAULT_COLLECT_MAX_BYTES, rw_ready));
  g_object_class_install_property(
      klass, PROP_COLLECT_QUEUE_SIZE,
      g_param_spec_int("collect-queue-size", "Collect queue size",
                       "Finished tracklets waiting for the writer thread; when full, "
                       "tracklets are dropped",
                       1, 100000, DEFAULT_COLLECT_QUEUE_SIZE, rw_ready));
  g_object_class_install_property(
      klass, PROP_COLLECT_MEMORY,
      g_param_spec_uint64("collect-memory", "Collect memory",
                          "Bytes of crops held for live and queued tracklets at most; a crop "
                          "beyond it drops its tracklet",
                          1, G_MAXUINT64, DEFAULT_COLLECT_MEMORY, rw_ready));
  g_object_class_install_property(
      klass, PROP_COLLECT_JPEG_QUALITY,
      g_param_spec_int("collect-jpeg-quality", "Collect JPEG quality",
                       "Quality of the collected JPEGs (FFmpeg's encoder)", 1, 100,
                       DEFAULT_COLLECT_JPEG_QUALITY, rw_ready));
}

/* ------------------------------------------------------------ messages */

/* From the streaming thread (drops at the queue) or the writer thread. */
static void on_collect_event(void *user, const reid_collect_event *e) {
  GstReidEmbed *self = user;
  if (e->type == REID_COLLECT_DROPPED) {
    GST_INFO_OBJECT(self, "collect: track %" G_GINT64_FORMAT " dropped (%s)", e->track_id,
                    reid_collect_drop_name(e->reason));
    GstStructure *s = gst_structure_new(
        "reid-collect-drop", "stream", G_TYPE_STRING, e->stream, "track-id", G_TYPE_INT64,
        e->track_id, "reason", G_TYPE_STRING, reid_collect_drop_name(e->reason), "frames",
        G_TYPE_INT, e->frames, "dropped", G_TYPE_INT64, e->dropped_total, NULL);
    gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), s));
  } else if (e->type == REID_COLLECT_WARNING) {
    GST_ELEMENT_WARNING(
        self, RESOURCE, WRITE,
        ("collect-location: %s; tracklets are dropped until writing works again", e->message),
        (NULL));
  } else {
    GST_DEBUG_OBJECT(self, "collect: track %" G_GINT64_FORMAT " written to %s (%d crops)",
                     e->track_id, e->dir, e->crops);
  }
}

static void post_summary(GstReidEmbed *self, reid_collector *c) {
  reid_collector_stats s;
  reid_collector_stats_get(c, &s);
  gint64 dropped = 0;
  for (int r = 0; r < REID_DROP_REASONS; r++) dropped += s.dropped[r];
  GstStructure *m = gst_structure_new(
      "reid-collect-summary", "stream", G_TYPE_STRING, self->stream_label, "folder", G_TYPE_STRING,
      reid_collector_folder(c), "collected", G_TYPE_INT64, s.collected, "too-short", G_TYPE_INT64,
      s.too_short, "dropped", G_TYPE_INT64, dropped, "bytes", G_TYPE_UINT64, s.bytes, NULL);
  for (int r = 0; r < REID_DROP_REASONS; r++) {
    gchar *key = g_strdup_printf("dropped-%s", reid_collect_drop_name((reid_collect_drop)r));
    gst_structure_set(m, key, G_TYPE_INT64, s.dropped[r], NULL);
    g_free(key);
  }
  GST_INFO_OBJECT(self,
                  "collect: %" G_GINT64_FORMAT " tracklets written, %" G_GINT64_FORMAT " dropped",
                  s.collected, dropped);
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), m));
}

/* ------------------------------------------------------------ start / stop */

gboolean gst_reid_embed_collect_start(GstReidEmbed *self) {
  GST_OBJECT_LOCK(self);
  ReidCollectProps p = self->collect_props;
  gchar *location = g_strdup(p.location);
  GST_OBJECT_UNLOCK(self);
  if (!location || !*location) {
    g_free(location);
    return TRUE;
  }
  ReidCollect *rc = g_new0(ReidCollect, 1);
  rc->element = self;
  reid_collector_options o = {.location = location,
                              .stream = self->stream_label,
                              .min_frames = p.min_frames,
                              .frames = p.frames,
                              .max_bytes = p.max_bytes,
                              .queue_size = p.queue_size,
                              .memory = p.memory,
                              .jpeg_quality = p.jpeg_quality,
                              .notify = on_collect_event,
                              .user = self};
  reid_status st = reid_collector_open(&o, &rc->collector);
  g_free(location);
  if (st != REID_OK) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_WRITE, ("%s", reid_last_error()), (NULL));
    g_free(rc);
    return FALSE;
  }
  GST_INFO_OBJECT(self, "collecting tracklets into %s", reid_collector_folder(rc->collector));
  self->collect = rc;
  return TRUE;
}

void gst_reid_embed_collect_stop(GstReidEmbed *self) {
  ReidCollect *rc = self->collect;
  if (!rc) return;
  self->collect = NULL;
  reid_collector_finish(rc->collector); /* the queue is written first */
  post_summary(self, rc->collector);
  reid_collector_close(rc->collector);
  rc->collector = NULL;
  g_free(rc->ids);
  g_free(rc->boxes);
  g_free(rc->want);
  g_free(rc);
}

/* ------------------------------------------------------------ per frame */

gint gst_reid_embed_collect_observe(GstReidEmbed *self, GstClockTime pts) {
  ReidCollect *rc = self->collect;
  gint n = (gint)self->objects->len;
  if (n > rc->cap) {
    rc->cap = MAX(n, 2 * rc->cap);
    rc->ids = g_renew(gint64, rc->ids, rc->cap);
    rc->boxes = g_renew(reid_box, rc->boxes, rc->cap);
    rc->want = g_renew(guint8, rc->want, rc->cap);
  }
  for (gint i = 0; i < n; i++) {
    const ReidObject *o = &g_array_index(self->objects, ReidObject, i);
    rc->ids[i] = o->track->track_id;
    rc->boxes[i] = o->box;
  }
  rc->n = n;
  gint wanted = reid_collector_observe(rc->collector, self->frame_index,
                                       GST_CLOCK_TIME_IS_VALID(pts) ? pts : UINT64_MAX, rc->ids,
                                       rc->boxes, n, rc->want);
  if (wanted < 0)
    GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("collect: %s", reid_last_error()), (NULL));
  return wanted;
}

gboolean gst_reid_embed_collect_copy(GstReidEmbed *self, const reid_frame *frame) {
  ReidCollect *rc = self->collect;
  if (reid_collector_copy(rc->collector, frame, rc->ids, rc->boxes, rc->want, rc->n) != REID_OK) {
    GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("collect: %s", reid_last_error()), (NULL));
    return FALSE;
  }
  return TRUE;
}

void gst_reid_embed_collect_end(GstReidEmbed *self, const reid_tracklet *t) {
  if (self->collect)
    reid_collector_end(self->collect->collector, t->track_id, t->first_pts, t->last_pts);
}
