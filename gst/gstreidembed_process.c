/* reidembed's per-frame work: collect the frame's objects, embed them in
 * batches, attach the embeddings, pool them per track, and report tracks that
 * end (bus messages, JSON lines, watchlist matches). Called with proc_lock held. */
#include "gstreidembed.h"
#include "roimeta.h"

#include <string.h>

#if HAVE_GST_ANALYTICS
#include <gst/analytics/analytics.h>
#endif

GST_DEBUG_CATEGORY_EXTERN(gst_reid_embed_debug);
#define GST_CAT_DEFAULT gst_reid_embed_debug

static gboolean format_of(GstVideoFormat f, reid_pixel_format *out) {
  switch (f) {
  case GST_VIDEO_FORMAT_NV12: *out = REID_PIX_NV12; return TRUE;
  case GST_VIDEO_FORMAT_I420: *out = REID_PIX_I420; return TRUE;
  case GST_VIDEO_FORMAT_RGB: *out = REID_PIX_RGB; return TRUE;
  case GST_VIDEO_FORMAT_BGR: *out = REID_PIX_BGR; return TRUE;
  case GST_VIDEO_FORMAT_RGBA: *out = REID_PIX_RGBA; return TRUE;
  case GST_VIDEO_FORMAT_BGRA: *out = REID_PIX_BGRA; return TRUE;
  case GST_VIDEO_FORMAT_RGBx: *out = REID_PIX_RGBX; return TRUE;
  case GST_VIDEO_FORMAT_BGRx: *out = REID_PIX_BGRX; return TRUE;
  default: return FALSE;
  }
}

static gboolean class_wanted(const ReidFrameSettings *s, GQuark type) {
  if (s->n_classes == 0) return TRUE;
  for (gint i = 0; i < s->n_classes; i++)
    if (s->classes[i] == type) return TRUE;
  return FALSE;
}

/* Makes room for n objects in the box and embedding scratch buffers. */
static void reserve(GstReidEmbed *self, gint n) {
  if (n <= self->boxes_cap) return;
  gint cap = MAX(n, 2 * self->boxes_cap);
  self->boxes = g_renew(reid_box, self->boxes, cap);
  self->embeddings = g_renew(gfloat, self->embeddings, (gsize)cap * self->dim);
  self->boxes_cap = cap;
}

/* Clips the box, applies min-size, observes its track and queues it for
 * embedding when the track wants one in this frame. */
static GstFlowReturn add_object(GstReidEmbed *self, const ReidFrameSettings *s,
                                GstVideoRegionOfInterestMeta *roi, gint64 track_id, gint x, gint y,
                                gint w, gint h, GstClockTime pts, gint *n_embed) {
  const reid_box raw = {(float)x, (float)y, (float)w, (float)h};
  reid_box box;
  if (reid_box_clip(&raw, GST_VIDEO_INFO_WIDTH(&self->info), GST_VIDEO_INFO_HEIGHT(&self->info),
                    &box) != REID_OK) {
    GST_DEBUG_OBJECT(self, "frame %" G_GINT64_FORMAT ", track %" G_GINT64_FORMAT ": skipped: %s",
                     self->frame_index, track_id, reid_last_error());
    return GST_FLOW_OK;
  }
  if (box.w < s->min_size || box.h < s->min_size) {
    GST_DEBUG_OBJECT(self, "track %" G_GINT64_FORMAT ": box %gx%g below min-size %d", track_id,
                     (double)box.w, (double)box.h, s->min_size);
    return GST_FLOW_OK;
  }
  const float bbox[4] = {box.x, box.y, box.w, box.h};
  ReidObject obj = {.meta = roi, .box = box, .embed_row = -1};
  if (reid_tracklet_pool_observe(self->pool, track_id, self->frame_index, pts, bbox, &obj.track) !=
      REID_OK) {
    GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("%s", reid_last_error()), (NULL));
    return GST_FLOW_ERROR;
  }
  if (reid_tracklet_wants_embedding(obj.track, self->frame_index, s->inference_interval)) {
    reserve(self, *n_embed + 1);
    self->boxes[*n_embed] = box;
    obj.embed_row = (*n_embed)++;
  }
  g_array_append_val(self->objects, obj);
  return GST_FLOW_OK;
}

#if HAVE_GST_ANALYTICS
/* GStreamer >= 1.24: object-detection mtds of the analytics relation meta, with
 * the track id of a related tracking mtd (else the OD mtd's id). */
static GstFlowReturn collect_analytics(GstReidEmbed *self, const ReidFrameSettings *s,
                                       GstBuffer *buf, gint *n_embed) {
  GstAnalyticsRelationMeta *rmeta = gst_buffer_get_analytics_relation_meta(buf);
  if (!rmeta) return GST_FLOW_OK;
  gpointer state = NULL;
  GstAnalyticsMtd mtd;
  while (gst_analytics_relation_meta_iterate(rmeta, &state, gst_analytics_od_mtd_get_mtd_type(),
                                             &mtd)) {
    GstAnalyticsODMtd *od = &mtd;
    if (!class_wanted(s, gst_analytics_od_mtd_get_obj_type(od))) continue;
    gint x, y, w, h;
    gfloat confidence;
    if (!gst_analytics_od_mtd_get_location(od, &x, &y, &w, &h, &confidence)) continue;
    gint64 track_id = od->id;
    GstAnalyticsTrackingMtd trk;
    if (gst_analytics_relation_meta_get_direct_related(rmeta, od->id, GST_ANALYTICS_REL_TYPE_ANY,
                                                       gst_analytics_tracking_mtd_get_mtd_type(),
                                                       NULL, &trk)) {
      guint64 tracking_id;
      GstClockTime first_seen, last_seen;
      gboolean lost;
      if (gst_analytics_tracking_mtd_get_info(&trk, &tracking_id, &first_seen, &last_seen, &lost))
        track_id = (gint64)tracking_id;
    }
    GstFlowReturn ret =
        add_object(self, s, NULL, track_id, x, y, w, h, GST_BUFFER_PTS(buf), n_embed);
    if (ret != GST_FLOW_OK) return ret;
  }
  return GST_FLOW_OK;
}
#endif

/* Maps the buffer read-only and describes it as a reid_frame. */
static gboolean map_frame(GstReidEmbed *self, GstBuffer *buf, GstVideoFrame *vf,
                          reid_frame *frame) {
  if (!gst_video_frame_map(vf, &self->info, buf, GST_MAP_READ)) {
    GST_ELEMENT_ERROR(self, STREAM, FAILED, ("cannot map the video frame for reading"), (NULL));
    return FALSE;
  }
  memset(frame, 0, sizeof *frame);
  format_of(GST_VIDEO_FRAME_FORMAT(vf), &frame->format); /* caps allow only mapped formats */
  frame->width = GST_VIDEO_FRAME_WIDTH(vf);
  frame->height = GST_VIDEO_FRAME_HEIGHT(vf);
  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES(vf) && p < 3; p++) {
    frame->planes[p] = GST_VIDEO_FRAME_PLANE_DATA(vf, p);
    frame->strides[p] = GST_VIDEO_FRAME_PLANE_STRIDE(vf, p);
  }
  const GstVideoColorimetry *c = &GST_VIDEO_INFO_COLORIMETRY(&self->info);
  frame->yuv_matrix = c->matrix == GST_VIDEO_COLOR_MATRIX_BT709 ? REID_YUV_BT709 : REID_YUV_BT601;
  frame->yuv_full_range = c->range == GST_VIDEO_COLOR_RANGE_0_255;
  return TRUE;
}

/* Maps the frame once: runs the network on the n queued boxes (embeddings [n, dim],
 * L2-normalised), copies the crops the collector wants (collect > 0)
 * and takes the gallery's thumbnails. */
static GstFlowReturn embed_boxes(GstReidEmbed *self, GstBuffer *buf, gint n, gint collect) {
  GstVideoFrame vf;
  reid_frame frame;
  if (!map_frame(self, buf, &vf, &frame)) return GST_FLOW_ERROR;
  GstFlowReturn ret = gst_reid_embed_run(self, &frame, n);
  if (ret == GST_FLOW_OK) gst_reid_embed_gallery_thumbnails(self, &frame);
  if (ret == GST_FLOW_OK && collect > 0 && !gst_reid_embed_collect_copy(self, &frame))
    ret = GST_FLOW_ERROR;
  gst_video_frame_unmap(&vf);
  return ret;
}

/* Replaces the ROI meta's param structure of the same name. */
static void set_param(GstVideoRegionOfInterestMeta *roi, GstStructure *s) {
  const gchar *name = gst_structure_get_name(s);
  for (GList *l = roi->params; l;) {
    GList *next = l->next;
    if (gst_structure_has_name(l->data, name)) {
      gst_structure_free(l->data);
      roi->params = g_list_delete_link(roi->params, l);
    }
    l = next;
  }
  gst_video_region_of_interest_meta_add_param(roi, s);
}

static GstStructure *embedding_structure(const gchar *name, const gchar *model, const gfloat *e,
                                         gint dim, gint frames) {
  GBytes *bytes = g_bytes_new(e, sizeof(gfloat) * (gsize)dim);
  GstStructure *s =
      gst_structure_new(name, "model", G_TYPE_STRING, model, "dims", G_TYPE_INT, dim, "data",
                        G_TYPE_BYTES, bytes, "frame-count", G_TYPE_INT, frames, NULL);
  g_bytes_unref(bytes);
  return s;
}

/* The live watchlist match of a track: its pooled embedding is scored again
 * whenever it changes (frames where the track is embedded, i.e. at most every
 * inference-interval frames), and while the closest query's cosine reaches
 * match-threshold the track's ROI metas carry `reid-match`. */
static void attach_live_match(GstReidEmbed *self, const ReidFrameSettings *s, ReidObject *o) {
  if (!self->watchlist) return;
  reid_tracklet *t = o->track;
  if (o->embed_row >= 0)
    t->best_query =
        reid_watchlist_best(self->watchlist, self->pooled, self->scores, &t->best_score);
  if (t->best_query < 0 || !(t->best_score >= s->match_threshold)) return;
  set_param(o->meta,
            gst_structure_new("reid-match", "query", G_TYPE_STRING,
                              self->watchlist->names[t->best_query], "query-index", G_TYPE_INT,
                              t->best_query, "score", G_TYPE_DOUBLE, (gdouble)t->best_score,
                              "threshold", G_TYPE_DOUBLE, s->match_threshold, NULL));
}

static void attach(GstReidEmbed *self, const ReidFrameSettings *s) {
  const gchar *model = reid_embedder_model_name(self->embedder);
  for (guint i = 0; i < self->objects->len; i++) {
    ReidObject *o = &g_array_index(self->objects, ReidObject, i);
    if (o->embed_row >= 0)
      reid_tracklet_add_embedding(o->track, self->frame_index,
                                  self->embeddings + (gsize)o->embed_row * self->dim);
  }
  for (guint i = 0; i < self->objects->len; i++) {
    ReidObject *o = &g_array_index(self->objects, ReidObject, i);
    if (!o->meta) continue;
    if (o->embed_row >= 0)
      set_param(o->meta, embedding_structure("reid-embedding", model,
                                             self->embeddings + (gsize)o->embed_row * self->dim,
                                             self->dim, 1));
    reid_tracklet_pooled(o->track, self->pooled);
    GstStructure *pooled = embedding_structure("reid-track-embedding", model, self->pooled,
                                               self->dim, o->track->embedded);
    gst_structure_set(pooled, "track-id", G_TYPE_INT64, o->track->track_id, NULL);
    set_param(o->meta, pooled);
    attach_live_match(self, s, o);
  }
}

/* ------------------------------------------------------------ reporting */

static void post_tracklet(GstReidEmbed *self, const reid_tracklet_record *r) {
  GValue bbox = G_VALUE_INIT;
  gst_value_array_init(&bbox, 4);
  for (gint i = 0; i < 4; i++) {
    GValue v = G_VALUE_INIT;
    g_value_init(&v, G_TYPE_INT);
    g_value_set_int(&v, (gint)r->bbox[i]);
    gst_value_array_append_and_take_value(&bbox, &v);
  }
  GBytes *bytes = g_bytes_new(r->embedding, sizeof(gfloat) * (gsize)r->dim);
  GstStructure *s = gst_structure_new(
      "reid-tracklet", "stream", G_TYPE_STRING, r->stream, "track-id", G_TYPE_INT64, r->track_id,
      "first-pts", G_TYPE_UINT64, r->first_pts, "last-pts", G_TYPE_UINT64, r->last_pts, "frames",
      G_TYPE_INT, r->frames, "embedded-frames", G_TYPE_INT, r->embedded_frames, "reason",
      G_TYPE_STRING, r->reason, "model", G_TYPE_STRING, r->model, "dims", G_TYPE_INT, r->dim,
      "embedding", G_TYPE_BYTES, bytes, NULL);
  gst_structure_take_value(s, "bbox", &bbox);
  g_bytes_unref(bytes);
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), s));
}

static void post_match(GstReidEmbed *self, const reid_tracklet_record *r, const gchar *query,
                       gdouble score, gdouble threshold) {
  GstStructure *s = gst_structure_new(
      "reid-match", "stream", G_TYPE_STRING, r->stream, "query", G_TYPE_STRING, query, "track-id",
      G_TYPE_INT64, r->track_id, "score", G_TYPE_DOUBLE, score, "threshold", G_TYPE_DOUBLE,
      threshold, "first-pts", G_TYPE_UINT64, r->first_pts, "last-pts", G_TYPE_UINT64, r->last_pts,
      "frames", G_TYPE_INT, r->frames, NULL);
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), s));
}

static gboolean write_line(GstReidEmbed *self, char *line) {
  reid_status st = line ? reid_jsonl_write(self->jsonl, line) : REID_ENOMEM;
  free(line);
  if (st != REID_OK) {
    GST_ELEMENT_ERROR(self, RESOURCE, WRITE, ("tracklet-location: %s", reid_last_error()), (NULL));
    return FALSE;
  }
  return TRUE;
}

/* Reports one finished track: message, JSON line, watchlist matches. */
static gboolean report(GstReidEmbed *self, const ReidFrameSettings *s, const reid_tracklet *t,
                       const gchar *reason) {
  gst_reid_embed_collect_end(self, t);
  if (t->embedded == 0) return TRUE; /* its first frame was flushed before being embedded */
  reid_tracklet_pooled(t, self->pooled);
  reid_tracklet_record r = {.stream = self->stream_label,
                            .reason = reason,
                            .model = reid_embedder_model_name(self->embedder),
                            .track_id = t->track_id,
                            .first_pts = t->first_pts,
                            .last_pts = t->last_pts,
                            .frames = t->frames,
                            .embedded_frames = t->embedded,
                            .embedding = self->pooled,
                            .dim = self->dim};
  memcpy(r.bbox, t->bbox, sizeof r.bbox);
  GST_DEBUG_OBJECT(self, "track %" G_GINT64_FORMAT " ended (%s) after %d frames", t->track_id,
                   reason, t->frames);
  if (s->message) post_tracklet(self, &r);
  if (self->jsonl && !write_line(self, reid_json_tracklet_line(&r))) return FALSE;
  gst_reid_embed_gallery_add(self, t, self->pooled);
  if (!self->watchlist) return TRUE;
  reid_watchlist_scores(self->watchlist, self->pooled, self->scores);
  for (gint q = 0; q < self->watchlist->count; q++) {
    if (!(self->scores[q] >= s->match_threshold)) continue;
    const gchar *query = self->watchlist->names[q];
    GST_INFO_OBJECT(self, "track %" G_GINT64_FORMAT " matches %s (%.4f)", t->track_id, query,
                    (double)self->scores[q]);
    if (s->message) post_match(self, &r, query, self->scores[q], s->match_threshold);
    if (self->jsonl && !write_line(self, reid_json_match_line(&r, query, self->scores[q])))
      return FALSE;
  }
  return TRUE;
}

static gboolean report_all(GstReidEmbed *self, const ReidFrameSettings *s, reid_tracklet **ended,
                           int count, const gchar *reason) {
  gboolean ok = TRUE;
  for (int i = 0; i < count && ok; i++) ok = report(self, s, ended[i], reason);
  reid_tracklet_free_array(ended, count);
  return ok;
}

gboolean gst_reid_embed_end_all(GstReidEmbed *self, const ReidFrameSettings *s,
                                const gchar *reason) {
  reid_tracklet **ended;
  int count;
  if (reid_tracklet_pool_take_all(self->pool, &ended, &count) != REID_OK) {
    GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("%s", reid_last_error()), (NULL));
    return FALSE;
  }
  return report_all(self, s, ended, count, reason);
}

GstFlowReturn gst_reid_embed_process(GstReidEmbed *self, GstBuffer *buf,
                                     const ReidFrameSettings *s) {
  GstFlowReturn ret = GST_FLOW_OK;
  gint n_embed = 0;
  g_array_set_size(self->objects, 0);
  gst_reid_embed_gallery_frame_time(self, buf);
  gpointer state = NULL;
  GstMeta *meta;
  while (ret == GST_FLOW_OK && (meta = gst_buffer_iterate_meta_filtered(
                                    buf, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *)meta;
    if (!class_wanted(s, roi->roi_type)) continue;
    /* producers that store negative coordinates in the unsigned fields get them back */
    ret = add_object(self, s, roi, gst_reid_roi_track_id(roi), (gint)roi->x, (gint)roi->y,
                     (gint)roi->w, (gint)roi->h, GST_BUFFER_PTS(buf), &n_embed);
  }
#if HAVE_GST_ANALYTICS
  /* analytics objects only when there are no ROI metas, which may describe the same objects */
  if (ret == GST_FLOW_OK && self->objects->len == 0)
    ret = collect_analytics(self, s, buf, &n_embed);
#endif
  gint n_collect = 0;
  if (ret == GST_FLOW_OK && self->collect &&
      (n_collect = gst_reid_embed_collect_observe(self, GST_BUFFER_PTS(buf))) < 0)
    ret = GST_FLOW_ERROR;
  if (ret == GST_FLOW_OK &&
      (n_embed > 0 || n_collect > 0 || gst_reid_embed_gallery_wants_frame(self)))
    ret = embed_boxes(self, buf, n_embed, n_collect);
  if (ret == GST_FLOW_OK) attach(self, s);
  g_array_set_size(self->objects, 0);

  reid_tracklet **ended = NULL;
  int count = 0;
  if (ret == GST_FLOW_OK &&
      reid_tracklet_pool_take_expired(self->pool, self->frame_index, s->track_timeout, &ended,
                                      &count) != REID_OK) {
    GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("%s", reid_last_error()), (NULL));
    ret = GST_FLOW_ERROR;
  }
  if (ret == GST_FLOW_OK && !report_all(self, s, ended, count, "timeout")) ret = GST_FLOW_ERROR;
  self->frame_index++;
  return ret;
}
