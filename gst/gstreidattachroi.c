/**
 * SECTION:element-reidattachroi
 * @title: reidattachroi
 *
 * Reads a MOTChallenge text file (`frame, id, x, y, w, h, conf, class,
 * visibility`; frames 1-based; `-1` allowed for unknown values) and attaches
 * one #GstVideoRegionOfInterestMeta per row to the buffer of that frame, so
 * that annotated or pre-computed tracks can drive reidembed without a
 * detector.
 *
 * Each ROI meta gets the type `roi-type`, the box rounded to whole pixels and
 * clipped to the frame (rows with nothing left are skipped, with a debug
 * log), its `id` set to the row's id, and the param structures
 * `object_id` (field `id`, DL Streamer's convention; only when id >= 0) and
 * `detection` (normalised x_min/x_max/y_min/y_max, confidence, label_id).
 *
 * The frame number of a buffer is round(stream time x framerate) + 1 +
 * frame-offset when the buffer has a timestamp and the caps a framerate
 * (so seeks keep the file in step), else the number of buffers since start
 * + frame-offset (the first buffer is frame 1 + frame-offset).
 *
 * A malformed line fails the start with the file name and line number.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 filesrc location=MOT17-04.mp4 ! decodebin ! videoconvert ! \
 *     reidattachroi location=MOT17-04/gt/gt.txt ! reidembed model=m.safetensors ! fakesink
 * ]|
 */
#include "gstreidattachroi.h"

#include <math.h>

GST_DEBUG_CATEGORY_STATIC(gst_reid_attach_roi_debug);
#define GST_CAT_DEFAULT gst_reid_attach_roi_debug

#define DEFAULT_PROP_LOCATION     NULL
#define DEFAULT_PROP_ROI_TYPE     "person"
#define DEFAULT_PROP_FRAME_OFFSET 0

enum { PROP_0, PROP_LOCATION, PROP_ROI_TYPE, PROP_FRAME_OFFSET };

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw(ANY)"));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw(ANY)"));

G_DEFINE_TYPE(GstReidAttachRoi, gst_reid_attach_roi, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE(reidattachroi, "reidattachroi", GST_RANK_NONE,
                            GST_TYPE_REID_ATTACH_ROI);

static void gst_reid_attach_roi_set_property(GObject *object, guint prop_id, const GValue *value,
                                             GParamSpec *pspec) {
  GstReidAttachRoi *self = GST_REID_ATTACH_ROI(object);
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
  case PROP_LOCATION: g_free(self->location), self->location = g_value_dup_string(value); break;
  case PROP_ROI_TYPE: g_free(self->roi_type), self->roi_type = g_value_dup_string(value); break;
  case PROP_FRAME_OFFSET: self->frame_offset = g_value_get_int(value); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_reid_attach_roi_get_property(GObject *object, guint prop_id, GValue *value,
                                             GParamSpec *pspec) {
  GstReidAttachRoi *self = GST_REID_ATTACH_ROI(object);
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
  case PROP_LOCATION: g_value_set_string(value, self->location); break;
  case PROP_ROI_TYPE: g_value_set_string(value, self->roi_type); break;
  case PROP_FRAME_OFFSET: g_value_set_int(value, self->frame_offset); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static gboolean gst_reid_attach_roi_start(GstBaseTransform *trans) {
  GstReidAttachRoi *self = GST_REID_ATTACH_ROI(trans);
  GST_OBJECT_LOCK(self);
  gchar *location = g_strdup(self->location);
  self->roi_quark =
      g_quark_from_string(self->roi_type && *self->roi_type ? self->roi_type : "object");
  GST_OBJECT_UNLOCK(self);
  gboolean ok = FALSE;
  if (!location || !*location) {
    GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND,
                      ("no MOT file given (set the 'location' property)"), (NULL));
  } else if (reid_mot_load(location, &self->mot) != REID_OK) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("%s", reid_last_error()), (NULL));
  } else {
    GST_INFO_OBJECT(self, "%s: %d rows, frames up to %d", location, self->mot->count,
                    self->mot->max_frame);
    ok = TRUE;
  }
  self->buffers = 0;
  g_free(location);
  return ok;
}

static gboolean gst_reid_attach_roi_stop(GstBaseTransform *trans) {
  GstReidAttachRoi *self = GST_REID_ATTACH_ROI(trans);
  reid_mot_free(self->mot);
  self->mot = NULL;
  self->have_info = FALSE;
  return TRUE;
}

static gboolean gst_reid_attach_roi_set_caps(GstBaseTransform *trans, GstCaps *incaps,
                                             GstCaps *outcaps) {
  GstReidAttachRoi *self = GST_REID_ATTACH_ROI(trans);
  (void)outcaps;
  if (!gst_video_info_from_caps(&self->info, incaps)) {
    GST_ERROR_OBJECT(self, "cannot parse caps %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }
  self->have_info = TRUE;
  return TRUE;
}

/* The MOT frame number of this buffer (see the element documentation). */
static gint64 frame_number(GstReidAttachRoi *self, GstBuffer *buf, gint offset) {
  GstClockTime pts = GST_BUFFER_PTS(buf);
  const gint fps_n = GST_VIDEO_INFO_FPS_N(&self->info), fps_d = GST_VIDEO_INFO_FPS_D(&self->info);
  GstBaseTransform *trans = GST_BASE_TRANSFORM(self);
  if (GST_CLOCK_TIME_IS_VALID(pts) && fps_n > 0 && fps_d > 0 &&
      trans->segment.format == GST_FORMAT_TIME) {
    guint64 t = gst_segment_to_stream_time(&trans->segment, GST_FORMAT_TIME, pts);
    if (GST_CLOCK_TIME_IS_VALID(t))
      return (gint64)gst_util_uint64_scale_round(t, (guint64)fps_n, (guint64)fps_d * GST_SECOND) +
             1 + offset;
  }
  return (gint64)self->buffers + offset; /* buffers was already counted: first buffer = 1 */
}

static GstFlowReturn gst_reid_attach_roi_transform_ip(GstBaseTransform *trans, GstBuffer *buf) {
  GstReidAttachRoi *self = GST_REID_ATTACH_ROI(trans);
  GST_OBJECT_LOCK(self);
  gint offset = self->frame_offset;
  GST_OBJECT_UNLOCK(self);
  if (!self->have_info || !self->mot) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("buffer before caps or start"), (NULL));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  self->buffers++;
  gint64 frame = frame_number(self, buf, offset);
  if (frame < 1 || frame > G_MAXINT) return GST_FLOW_OK;
  const reid_mot_row *rows;
  int n = reid_mot_frame_rows(self->mot, (int)frame, &rows);
  const int W = GST_VIDEO_INFO_WIDTH(&self->info), H = GST_VIDEO_INFO_HEIGHT(&self->info);
  for (int i = 0; i < n; i++) {
    const reid_mot_row *r = &rows[i];
    double x0 = CLAMP(round(r->x), 0, W), y0 = CLAMP(round(r->y), 0, H);
    double x1 = CLAMP(round((double)r->x + r->w), 0, W),
           y1 = CLAMP(round((double)r->y + r->h), 0, H);
    if (x1 <= x0 || y1 <= y0) {
      GST_DEBUG_OBJECT(self, "line %d (frame %d, id %d): box outside the %dx%d frame, skipped",
                       r->line, r->frame, r->id, W, H);
      continue;
    }
    GstVideoRegionOfInterestMeta *roi = gst_buffer_add_video_region_of_interest_meta_id(
        buf, self->roi_quark, (guint)x0, (guint)y0, (guint)(x1 - x0), (guint)(y1 - y0));
    roi->id = r->id;
    if (r->id >= 0)
      gst_video_region_of_interest_meta_add_param(
          roi, gst_structure_new("object_id", "id", G_TYPE_INT, r->id, NULL));
    GstStructure *det = gst_structure_new(
        "detection", "x_min", G_TYPE_DOUBLE, x0 / W, "x_max", G_TYPE_DOUBLE, x1 / W, "y_min",
        G_TYPE_DOUBLE, y0 / H, "y_max", G_TYPE_DOUBLE, y1 / H, "confidence", G_TYPE_DOUBLE,
        (double)r->conf, "label_id", G_TYPE_INT, r->cls, NULL);
    gst_video_region_of_interest_meta_add_param(roi, det);
  }
  return GST_FLOW_OK;
}

static void gst_reid_attach_roi_finalize(GObject *object) {
  GstReidAttachRoi *self = GST_REID_ATTACH_ROI(object);
  reid_mot_free(self->mot);
  g_free(self->location);
  g_free(self->roi_type);
  G_OBJECT_CLASS(gst_reid_attach_roi_parent_class)->finalize(object);
}

static void gst_reid_attach_roi_init(GstReidAttachRoi *self) {
  self->location = g_strdup(DEFAULT_PROP_LOCATION);
  self->roi_type = g_strdup(DEFAULT_PROP_ROI_TYPE);
  self->frame_offset = DEFAULT_PROP_FRAME_OFFSET;
  gst_base_transform_set_in_place(GST_BASE_TRANSFORM(self), TRUE);
  gst_base_transform_set_passthrough(GST_BASE_TRANSFORM(self), FALSE);
}

static void gst_reid_attach_roi_class_init(GstReidAttachRoiClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS(klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;

  gobject_class->set_property = gst_reid_attach_roi_set_property;
  gobject_class->get_property = gst_reid_attach_roi_get_property;
  gobject_class->finalize = gst_reid_attach_roi_finalize;

  g_object_class_install_property(
      gobject_class, PROP_LOCATION,
      g_param_spec_string("location", "Location", "MOTChallenge text file (read at start)",
                          DEFAULT_PROP_LOCATION, rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property(
      gobject_class, PROP_ROI_TYPE,
      g_param_spec_string("roi-type", "ROI type", "Type of the attached ROI metas",
                          DEFAULT_PROP_ROI_TYPE, rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property(
      gobject_class, PROP_FRAME_OFFSET,
      g_param_spec_int("frame-offset", "Frame offset",
                       "Added to the frame number of each buffer before looking it up in the file",
                       G_MININT / 2, G_MAXINT / 2, DEFAULT_PROP_FRAME_OFFSET,
                       rw | GST_PARAM_MUTABLE_PLAYING));

  gst_element_class_set_static_metadata(
      element_class, "Attach ROIs from a MOT file", "Filter/Video",
      "Attaches the boxes of a MOTChallenge text file to video frames as ROI metas",
      "reid project");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);

  trans_class->start = GST_DEBUG_FUNCPTR(gst_reid_attach_roi_start);
  trans_class->stop = GST_DEBUG_FUNCPTR(gst_reid_attach_roi_stop);
  trans_class->set_caps = GST_DEBUG_FUNCPTR(gst_reid_attach_roi_set_caps);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR(gst_reid_attach_roi_transform_ip);
  GST_DEBUG_CATEGORY_INIT(gst_reid_attach_roi_debug, "reidattachroi", 0,
                          "ROI metas from MOT files");
}
