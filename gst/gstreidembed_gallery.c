/* reidembed's gallery output (gallery-location): each finished tracklet,
 * with its wall-clock times and a thumbnail of its largest crop, goes to the
 * gallery writer (gallery_writer.h), whose thread writes the database.
 *
 * Wall-clock time of a pts: from a GstReferenceTimestampMeta
 * (timestamp/x-unix or timestamp/x-ntp) when upstream attaches one, else
 * from the pipeline's clock and base time (running time + base time, as
 * the clock's time now maps to the system's real time now), else (no clock,
 * e.g. a harness) the real time at which the frame is processed. */
#include "gstreidembed.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crop.h"
#include "gallery_writer.h"

GST_DEBUG_CATEGORY_EXTERN(gst_reid_embed_debug);
#define GST_CAT_DEFAULT gst_reid_embed_debug

#define THUMB_MAX_HEIGHT 128
#define BATCH_ROWS       64
#define NTP_UNIX_OFFSET  G_GUINT64_CONSTANT(2208988800) /* seconds from 1900 to 1970 */

struct ReidGalleryOutput {
  reid_gallery_writer *writer;
  GHashTable *thumbs; /* track id (gint64 *) -> Thumb */
  gint64 wall_offset; /* ns: wall clock (Unix epoch) = pts + wall_offset */
  gboolean have_offset;
};

typedef struct Thumb {
  gfloat area;
  reid_image image;
} Thumb;

static void thumb_free(gpointer p) {
  Thumb *t = p;
  reid_image_free(&t->image);
  g_free(t);
}

static void on_writer_event(void *user, reid_gallery_event event, const char *text,
                            const reid_gallery_writer_stats *s) {
  GstReidEmbed *self = user;
  (void)s;
  switch (event) {
  case REID_GALLERY_EVENT_OUTAGE:
    GST_ELEMENT_WARNING(self, RESOURCE, WRITE, ("%s", text), (NULL));
    break;
  case REID_GALLERY_EVENT_DROPPED:
    GST_ELEMENT_WARNING(self, RESOURCE, NO_SPACE_LEFT, ("%s", text), (NULL));
    break;
  case REID_GALLERY_EVENT_RECOVERED:
    GST_ELEMENT_INFO(self, RESOURCE, WRITE, ("%s", text), (NULL));
    break;
  }
}

gboolean gst_reid_embed_gallery_start(GstReidEmbed *self, const gchar *uri, const gchar *model,
                                      gint queue, gint flush_timeout_ms) {
  reid_gallery_writer_options o = {.uri = uri,
                                   .queue_size = queue,
                                   .batch_size = BATCH_ROWS,
                                   .flush_timeout_ms = flush_timeout_ms,
                                   .backoff_max_ms = 5000,
                                   .notify = on_writer_event,
                                   .user = self};
  GST_OBJECT_LOCK(self);
  o.dtype = self->gallery_fp16 ? REID_GALLERY_F16 : REID_GALLERY_F32;
  GST_OBJECT_UNLOCK(self);
  reid_status st = reid_gallery_model_identify(model, self->dim, &o.model);
  ReidGalleryOutput *out = g_new0(ReidGalleryOutput, 1);
  if (st == REID_OK) st = reid_gallery_writer_start(&o, &out->writer);
  if (st != REID_OK) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_WRITE, ("gallery-location: %s", reid_last_error()),
                      ("reid status %s", reid_status_name(st)));
    g_free(out);
    return FALSE;
  }
  out->thumbs = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, thumb_free);
  self->gallery = out;
  GST_INFO_OBJECT(self, "gallery %s (model %s, sha256 %.12s)", uri, o.model.name, o.model.hash);
  return TRUE;
}

void gst_reid_embed_gallery_stop(GstReidEmbed *self) {
  ReidGalleryOutput *out = self->gallery;
  if (!out) return;
  self->gallery = NULL;
  reid_gallery_writer_stats s;
  reid_gallery_writer_stop(out->writer, &s);
  g_hash_table_destroy(out->thumbs);
  g_free(out);
  GST_INFO_OBJECT(self, "gallery: %" G_GINT64_FORMAT " written, %" G_GINT64_FORMAT " dropped",
                  s.written, s.dropped);
  GstStructure *msg =
      gst_structure_new("reid-gallery", "queued", G_TYPE_INT64, s.queued, "written", G_TYPE_INT64,
                        s.written, "skipped", G_TYPE_INT64, s.skipped, "dropped", G_TYPE_INT64,
                        s.dropped, "failures", G_TYPE_INT64, s.failures, NULL);
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), msg));
}

/* ------------------------------------------------------------ wall clock */

static gboolean offset_from_meta(GstBuffer *buf, gint64 *offset) {
  static GstCaps *unix_caps, *ntp_caps;
  if (g_once_init_enter(&unix_caps)) {
    ntp_caps = gst_caps_new_empty_simple("timestamp/x-ntp");
    g_once_init_leave(&unix_caps, gst_caps_new_empty_simple("timestamp/x-unix"));
  }
  GstReferenceTimestampMeta *m = gst_buffer_get_reference_timestamp_meta(buf, unix_caps);
  gint64 wall;
  if (m) {
    wall = (gint64)m->timestamp;
  } else if ((m = gst_buffer_get_reference_timestamp_meta(buf, ntp_caps))) {
    wall = (gint64)m->timestamp - (gint64)(NTP_UNIX_OFFSET * GST_SECOND);
  } else {
    return FALSE;
  }
  *offset = wall - (gint64)GST_BUFFER_PTS(buf);
  return TRUE;
}

void gst_reid_embed_gallery_frame_time(GstReidEmbed *self, GstBuffer *buf) {
  ReidGalleryOutput *out = self->gallery;
  GstClockTime pts = GST_BUFFER_PTS(buf);
  if (!out || !GST_CLOCK_TIME_IS_VALID(pts)) return;
  gint64 offset;
  if (offset_from_meta(buf, &offset)) {
    out->wall_offset = offset;
    out->have_offset = TRUE;
    return;
  }
  gint64 real_now = g_get_real_time() * 1000;
  GstClock *clock = gst_element_get_clock(GST_ELEMENT(self));
  GstSegment *seg = &GST_BASE_TRANSFORM(self)->segment;
  guint64 running = seg->format == GST_FORMAT_TIME
                        ? gst_segment_to_running_time(seg, GST_FORMAT_TIME, pts)
                        : GST_CLOCK_TIME_NONE;
  if (clock && GST_CLOCK_TIME_IS_VALID(running)) {
    GstClockTime clock_now = gst_clock_get_time(clock);
    GstClockTime at = gst_element_get_base_time(GST_ELEMENT(self)) + running;
    out->wall_offset = real_now - ((gint64)clock_now - (gint64)at) - (gint64)pts;
  } else {
    out->wall_offset = real_now - (gint64)pts;
  }
  out->have_offset = TRUE;
  if (clock) gst_object_unref(clock);
}

/* microseconds since the Unix epoch */
static gint64 wall_time_us(ReidGalleryOutput *out, guint64 pts) {
  if (pts == REID_PTS_NONE || !out->have_offset) return g_get_real_time();
  return ((gint64)pts + out->wall_offset) / 1000;
}

/* ------------------------------------------------------------ thumbnails */

/* The box's pixels as RGB, at most THUMB_MAX_HEIGHT high: the element's own
 * crop-and-resize with mean 0 and std 1/255, i.e. plain 0..255 values. */
static gboolean crop_rgb(const reid_frame *frame, const reid_box *box, reid_image *img) {
  int h = (int)lrintf(MIN(box->h, (float)THUMB_MAX_HEIGHT));
  int w = (int)lrintf(box->w * (float)MAX(h, 1) / box->h);
  return reid_frame_box_rgb(frame, box, MAX(w, 1), MAX(h, 1), img) == REID_OK;
}

void gst_reid_embed_gallery_thumbnails(GstReidEmbed *self, const reid_frame *frame) {
  ReidGalleryOutput *out = self->gallery;
  if (!out) return;
  for (guint i = 0; i < self->objects->len; i++) {
    const ReidObject *o = &g_array_index(self->objects, ReidObject, i);
    gint64 id = o->track->track_id;
    Thumb *t = g_hash_table_lookup(out->thumbs, &id);
    gfloat area = o->box.w * o->box.h;
    if (t && t->area >= area) continue;
    reid_image img = {0};
    if (!crop_rgb(frame, &o->box, &img)) continue; /* no thumbnail is no error */
    if (!t) {
      t = g_new0(Thumb, 1);
      g_hash_table_insert(out->thumbs, g_memdup2(&id, sizeof id), t);
    }
    reid_image_free(&t->image);
    t->image = img;
    t->area = area;
  }
}

gboolean gst_reid_embed_gallery_wants_frame(GstReidEmbed *self) {
  ReidGalleryOutput *out = self->gallery;
  if (!out) return FALSE;
  for (guint i = 0; i < self->objects->len; i++) {
    const ReidObject *o = &g_array_index(self->objects, ReidObject, i);
    Thumb *t = g_hash_table_lookup(out->thumbs, &o->track->track_id);
    if (!t || t->area < o->box.w * o->box.h) return TRUE;
  }
  return FALSE;
}

/* ------------------------------------------------------------ tracklets */

void gst_reid_embed_gallery_add(GstReidEmbed *self, const reid_tracklet *t, const gfloat *pooled) {
  ReidGalleryOutput *out = self->gallery;
  if (!out) return;
  reid_gallery_item item = {
      .stream = strdup(self->stream_label),
      .track_id = t->track_id,
      .first_pts = t->first_pts == REID_PTS_NONE ? REID_GALLERY_TIME_NONE : (int64_t)t->first_pts,
      .last_pts = t->last_pts == REID_PTS_NONE ? REID_GALLERY_TIME_NONE : (int64_t)t->last_pts,
      .first_time = wall_time_us(out, t->first_pts),
      .last_time = wall_time_us(out, t->last_pts),
      .frames = t->frames,
      .embedding = malloc(sizeof(float) * (size_t)self->dim),
  };
  memcpy(item.bbox, t->bbox, sizeof item.bbox);
  if (!item.stream || !item.embedding) { /* out of memory: counted as a drop by the writer */
    reid_gallery_item_free(&item);
    return;
  }
  memcpy(item.embedding, pooled, sizeof(float) * (size_t)self->dim);
  gpointer key, value;
  if (g_hash_table_steal_extended(out->thumbs, &t->track_id, &key, &value)) {
    Thumb *thumb = value;
    item.thumb = thumb->image;
    g_free(thumb);
    g_free(key);
  }
  reid_gallery_writer_push(out->writer, &item); /* a drop is counted and reported there */
}
