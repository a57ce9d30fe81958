/**
 * SECTION:element-reidoverlay
 * @title: reidoverlay
 *
 * Draws, for people to watch, what the plugin knows about each object of a
 * frame: the box of every #GstVideoRegionOfInterestMeta, a label with its
 * track id, and for a track that reidembed matched with a watchlist query
 * (the `reid-match` param structure on its ROI meta: `query`, `score`,
 * `query-index`) the query's name (without the file extension) and the
 * cosine, box and label in a colour of that query's own. Unmatched tracks
 * are drawn in `unmatched-color`.
 *
 * The track id is read as reidembed reads it: the `id` of the `object_id`
 * param structure, else the meta's id (no id is drawn when it is negative).
 * Boxes are clipped to the frame; the outline is drawn inside the box,
 * `line-width` pixels wide. A label sits on top of the box's top edge (inside
 * the box when there is no room above), moved left or down to stay in the
 * frame.
 *
 * Labels are laid out with Pango (font `font-desc`), drawn with Cairo and
 * blended into the frame with gst_video_overlay_composition_blend(), which
 * handles every format the element takes: NV12, I420, RGB, BGR, RGBA, BGRA,
 * BGRx and RGBx, the formats of reidembed. Box outlines are painted straight
 * into the frame's components (the colour converted with the frame's
 * colorimetry; in 4:2:0 formats an edge at an odd coordinate also tints the
 * chroma of its 2x2 block), which costs only the outline's pixels.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 filesrc location=cam1.mp4 ! decodebin ! videoconvert ! \
 *     reidattachroi location=cam1.mot ! \
 *     reidembed model=m.safetensors query-location=queries/ ! \
 *     reidoverlay ! videoconvert ! x264enc ! mp4mux ! filesink location=annotated.mp4
 * ]|
 */
#include "gstreidoverlay.h"

#include <string.h>

#include "roimeta.h"

GST_DEBUG_CATEGORY_STATIC(gst_reid_overlay_debug);
#define GST_CAT_DEFAULT gst_reid_overlay_debug

#define DEFAULT_PROP_DRAW_IDS        TRUE
#define DEFAULT_PROP_DRAW_UNMATCHED  TRUE
#define DEFAULT_PROP_LINE_WIDTH      2
#define DEFAULT_PROP_FONT_DESC       "Sans Bold 10"
#define DEFAULT_PROP_UNMATCHED_COLOR 0xffe0e0e0u

enum {
  PROP_0,
  PROP_DRAW_IDS,
  PROP_DRAW_UNMATCHED,
  PROP_LINE_WIDTH,
  PROP_FONT_DESC,
  PROP_UNMATCHED_COLOR,
};

#define REID_OVERLAY_CAPS GST_VIDEO_CAPS_MAKE("{ NV12, I420, RGB, BGR, RGBA, BGRA, BGRx, RGBx }")

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(REID_OVERLAY_CAPS));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(REID_OVERLAY_CAPS));

G_DEFINE_TYPE(GstReidOverlay, gst_reid_overlay, GST_TYPE_VIDEO_FILTER);
GST_ELEMENT_REGISTER_DEFINE(reidoverlay, "reidoverlay", GST_RANK_NONE, GST_TYPE_REID_OVERLAY);

/* Colours of the watchlist identities (ARGB), by query index: Tableau's
 * palette without its grey, which unmatched tracks resemble. */
static const guint32 identity_colors[] = {0xff1f77b4, 0xffff7f0e, 0xff2ca02c, 0xffd62728,
                                          0xff9467bd, 0xff8c564b, 0xffe377c2, 0xffbcbd22,
                                          0xff17becf, 0xffffd92f};

static guint32 identity_color(const gchar *query, gint query_index) {
  guint i = query_index >= 0 ? (guint)query_index : g_str_hash(query);
  return identity_colors[i % G_N_ELEMENTS(identity_colors)];
}

/* ------------------------------------------------------------ properties */

static void gst_reid_overlay_set_property(GObject *object, guint prop_id, const GValue *value,
                                          GParamSpec *pspec) {
  GstReidOverlay *self = GST_REID_OVERLAY(object);
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
  case PROP_DRAW_IDS: self->draw_ids = g_value_get_boolean(value); break;
  case PROP_DRAW_UNMATCHED: self->draw_unmatched = g_value_get_boolean(value); break;
  case PROP_LINE_WIDTH: self->line_width = g_value_get_int(value); break;
  case PROP_FONT_DESC: {
    const gchar *desc = g_value_get_string(value);
    if (reid_font_desc_valid(desc)) {
      g_free(self->font_desc);
      self->font_desc = g_strdup(desc);
    } else {
      g_warning("reidoverlay: font-desc '%s' is not a font description with a size in (0, 500] "
                "(e.g. \"Sans Bold 12\"); keeping '%s'",
                desc ? desc : "(null)", self->font_desc);
    }
    break;
  }
  case PROP_UNMATCHED_COLOR: self->unmatched_color = g_value_get_uint(value); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_reid_overlay_get_property(GObject *object, guint prop_id, GValue *value,
                                          GParamSpec *pspec) {
  GstReidOverlay *self = GST_REID_OVERLAY(object);
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
  case PROP_DRAW_IDS: g_value_set_boolean(value, self->draw_ids); break;
  case PROP_DRAW_UNMATCHED: g_value_set_boolean(value, self->draw_unmatched); break;
  case PROP_LINE_WIDTH: g_value_set_int(value, self->line_width); break;
  case PROP_FONT_DESC: g_value_set_string(value, self->font_desc); break;
  case PROP_UNMATCHED_COLOR: g_value_set_uint(value, self->unmatched_color); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
  }
  GST_OBJECT_UNLOCK(self);
}

/* ------------------------------------------------------------ drawing */

typedef struct OverlaySettings {
  gboolean draw_ids, draw_unmatched;
  gint line_width;
  guint32 unmatched_color;
} OverlaySettings;

/* A colour as the frame's component values (R, G, B or Y, U, V; alpha last). */
typedef struct FrameColor {
  guint8 comp[GST_VIDEO_MAX_COMPONENTS];
  guint alpha;
} FrameColor;

static FrameColor frame_color(const GstVideoFrame *f, guint32 argb) {
  FrameColor c = {.alpha = argb >> 24};
  const guint8 r = (argb >> 16) & 0xff, g = (argb >> 8) & 0xff, b = argb & 0xff;
  if (GST_VIDEO_INFO_IS_YUV(&f->info)) {
    /* Y = Kr R + (1 - Kr - Kb) G + Kb B, U = (B - Y) / 2(1 - Kb), V = (R - Y) / 2(1 - Kr),
     * then the range's offsets and scales (16 + 219 Y, 128 + 224 U for limited range) */
    gdouble kr = 0.299, kb = 0.114;
    gst_video_color_matrix_get_Kr_Kb(f->info.colorimetry.matrix, &kr, &kb);
    gint offset[GST_VIDEO_MAX_COMPONENTS], scale[GST_VIDEO_MAX_COMPONENTS];
    gst_video_color_range_offsets(f->info.colorimetry.range, f->info.finfo, offset, scale);
    const gdouble y = (kr * r + (1 - kr - kb) * g + kb * b) / 255.0;
    const gdouble u = (b / 255.0 - y) / (2 * (1 - kb)), v = (r / 255.0 - y) / (2 * (1 - kr));
    c.comp[0] = (guint8)CLAMP(offset[0] + y * scale[0] + 0.5, 0, 255);
    c.comp[1] = (guint8)CLAMP(offset[1] + u * scale[1] + 0.5, 0, 255);
    c.comp[2] = (guint8)CLAMP(offset[2] + v * scale[2] + 0.5, 0, 255);
  } else {
    c.comp[GST_VIDEO_COMP_R] = r, c.comp[GST_VIDEO_COMP_G] = g, c.comp[GST_VIDEO_COMP_B] = b;
  }
  c.comp[GST_VIDEO_COMP_A] = 255;
  return c;
}

/* Paints [x, x + w) x [y, y + h) (inside the frame) straight into the frame's
 * 8-bit components, blending by the colour's alpha; a subsampled component
 * gets every sample whose block the rectangle touches. */
static void fill_rect(GstVideoFrame *f, const FrameColor *c, gint x, gint y, gint w, gint h) {
  if (w <= 0 || h <= 0) return;
  const GstVideoFormatInfo *fi = f->info.finfo;
  for (guint k = 0; k < GST_VIDEO_FRAME_N_COMPONENTS(f); k++) {
    const gint x0 = x >> GST_VIDEO_FORMAT_INFO_W_SUB(fi, k),
               x1 = GST_VIDEO_FORMAT_INFO_SCALE_WIDTH(fi, k, x + w),
               y0 = y >> GST_VIDEO_FORMAT_INFO_H_SUB(fi, k),
               y1 = GST_VIDEO_FORMAT_INFO_SCALE_HEIGHT(fi, k, y + h);
    const gint pstride = GST_VIDEO_FRAME_COMP_PSTRIDE(f, k),
               stride = GST_VIDEO_FRAME_COMP_STRIDE(f, k);
    guint8 *data = GST_VIDEO_FRAME_COMP_DATA(f, k);
    const guint value = c->comp[k]; /* component k: R, G, B, A or Y, U, V */
    for (gint row = y0; row < y1; row++) {
      guint8 *p = data + (gsize)row * stride + (gsize)x0 * pstride;
      for (gint col = x0; col < x1; col++, p += pstride)
        *p = c->alpha == 255 ? (guint8)value
                             : (guint8)((value * c->alpha + *p * (255 - c->alpha) + 127) / 255);
    }
  }
}

/* The box outline, inside [x0, x1) x [y0, y1); no pixel is painted twice. */
static void draw_outline(GstVideoFrame *f, const FrameColor *c, gint x0, gint y0, gint x1, gint y1,
                         gint lw) {
  const gint w = x1 - x0, h = y1 - y0;
  const gint top = MIN(lw, h), bottom = MIN(lw, h - top);
  const gint left = MIN(lw, w), right = MIN(lw, w - left);
  fill_rect(f, c, x0, y0, w, top);
  fill_rect(f, c, x0, y1 - bottom, w, bottom);
  fill_rect(f, c, x0, y0 + top, left, h - top - bottom);
  fill_rect(f, c, x1 - right, y0 + top, right, h - top - bottom);
}

/* "alice.jpg" -> "alice" (a leading dot is kept: ".jpg" stays). */
static gchar *display_name(const gchar *query) {
  const gchar *dot = strrchr(query, '.');
  return dot && dot != query ? g_strndup(query, (gsize)(dot - query)) : g_strdup(query);
}

static gchar *label_text(const OverlaySettings *s, gint64 track_id, const gchar *query,
                         gdouble score) {
  const gboolean id = s->draw_ids && track_id >= 0;
  if (!query) return id ? g_strdup_printf("%" G_GINT64_FORMAT, track_id) : NULL;
  gchar *name = display_name(query);
  gchar *text = id ? g_strdup_printf("%" G_GINT64_FORMAT " %s %.2f", track_id, name, score)
                   : g_strdup_printf("%s %.2f", name, score);
  g_free(name);
  return text;
}

static void draw_roi(GstReidOverlay *self, const OverlaySettings *s, GstVideoFrame *frame,
                     GstVideoOverlayComposition **comp, GstVideoRegionOfInterestMeta *roi) {
  const gint width = GST_VIDEO_FRAME_WIDTH(frame), height = GST_VIDEO_FRAME_HEIGHT(frame);
  /* producers that store negative coordinates in the unsigned fields get them back */
  const gint64 x = (gint)roi->x, y = (gint)roi->y;
  const gint x0 = (gint)CLAMP(x, 0, width), y0 = (gint)CLAMP(y, 0, height);
  const gint x1 = (gint)CLAMP(x + (gint64)roi->w, 0, width),
             y1 = (gint)CLAMP(y + (gint64)roi->h, 0, height);
  if (x1 <= x0 || y1 <= y0) return;
  const gchar *query = NULL;
  gdouble score = 0;
  gint query_index = -1;
  GstStructure *match = gst_video_region_of_interest_meta_get_param(roi, "reid-match");
  if (match) {
    query = gst_structure_get_string(match, "query");
    if (!query || !gst_structure_get_double(match, "score", &score)) {
      GST_DEBUG_OBJECT(self, "reid-match without query or score, ignored");
      query = NULL;
    } else if (!gst_structure_get_int(match, "query-index", &query_index)) {
      query_index = -1;
    }
  }
  if (!query && !s->draw_unmatched) return;
  const guint32 color = query ? identity_color(query, query_index) : s->unmatched_color;
  const FrameColor fc = frame_color(frame, color);
  draw_outline(frame, &fc, x0, y0, x1, y1, s->line_width);
  gchar *text = label_text(s, gst_reid_roi_track_id(roi), query, score);
  if (!text) return;
  gint lw, lh;
  reid_label_renderer_size(self->labels, text, &lw, &lh);
  gint lx = MIN(x0, width - lw), ly = y0 - lh >= 0 ? y0 - lh : MIN(y0, height - lh);
  GstVideoOverlayRectangle *rect =
      reid_label_renderer_label(self->labels, text, color, MAX(lx, 0), MAX(ly, 0));
  if (*comp)
    gst_video_overlay_composition_add_rectangle(*comp, rect);
  else
    *comp = gst_video_overlay_composition_new(rect);
  gst_video_overlay_rectangle_unref(rect);
  g_free(text);
}

static GstFlowReturn gst_reid_overlay_transform_frame_ip(GstVideoFilter *filter,
                                                         GstVideoFrame *frame) {
  GstReidOverlay *self = GST_REID_OVERLAY(filter);
  OverlaySettings s;
  GST_OBJECT_LOCK(self);
  s.draw_ids = self->draw_ids;
  s.draw_unmatched = self->draw_unmatched;
  s.line_width = self->line_width;
  s.unmatched_color = self->unmatched_color;
  gchar *font = g_strcmp0(self->font_desc, self->font_applied) ? g_strdup(self->font_desc) : NULL;
  GST_OBJECT_UNLOCK(self);
  if (font) {
    gchar *warning = reid_label_renderer_set_font(self->labels, font);
    if (warning) {
      GST_ELEMENT_WARNING(self, RESOURCE, NOT_FOUND, ("%s", warning), (NULL));
      g_free(warning);
    }
    g_free(self->font_applied);
    self->font_applied = font;
  }
  GstVideoOverlayComposition *comp = NULL;
  gpointer state = NULL;
  GstMeta *meta;
  while ((meta = gst_buffer_iterate_meta_filtered(frame->buffer, &state,
                                                  GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)))
    draw_roi(self, &s, frame, &comp, (GstVideoRegionOfInterestMeta *)meta);
  if (comp) {
    gboolean ok = gst_video_overlay_composition_blend(comp, frame);
    gst_video_overlay_composition_unref(comp);
    if (!ok) {
      GST_ELEMENT_ERROR(self, STREAM, FAILED,
                        ("cannot blend the overlay into a %s frame",
                         gst_video_format_to_string(GST_VIDEO_FRAME_FORMAT(frame))),
                        (NULL));
      return GST_FLOW_ERROR;
    }
  }
  return GST_FLOW_OK;
}

static gboolean gst_reid_overlay_start(GstBaseTransform *trans) {
  GstReidOverlay *self = GST_REID_OVERLAY(trans);
  self->labels = reid_label_renderer_new();
  g_clear_pointer(&self->font_applied, g_free);
  return TRUE;
}

static gboolean gst_reid_overlay_stop(GstBaseTransform *trans) {
  GstReidOverlay *self = GST_REID_OVERLAY(trans);
  g_clear_pointer(&self->labels, reid_label_renderer_free);
  g_clear_pointer(&self->font_applied, g_free);
  return TRUE;
}

/* ------------------------------------------------------------ GObject */

static void gst_reid_overlay_finalize(GObject *object) {
  GstReidOverlay *self = GST_REID_OVERLAY(object);
  g_clear_pointer(&self->labels, reid_label_renderer_free);
  g_free(self->font_applied);
  g_free(self->font_desc);
  G_OBJECT_CLASS(gst_reid_overlay_parent_class)->finalize(object);
}

static void gst_reid_overlay_init(GstReidOverlay *self) {
  self->draw_ids = DEFAULT_PROP_DRAW_IDS;
  self->draw_unmatched = DEFAULT_PROP_DRAW_UNMATCHED;
  self->line_width = DEFAULT_PROP_LINE_WIDTH;
  self->font_desc = g_strdup(DEFAULT_PROP_FONT_DESC);
  self->unmatched_color = DEFAULT_PROP_UNMATCHED_COLOR;
}

static void gst_reid_overlay_class_init(GstReidOverlayClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS(klass);
  GstVideoFilterClass *filter_class = GST_VIDEO_FILTER_CLASS(klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING;

  gobject_class->set_property = gst_reid_overlay_set_property;
  gobject_class->get_property = gst_reid_overlay_get_property;
  gobject_class->finalize = gst_reid_overlay_finalize;

  /**
   * GstReidOverlay:draw-ids:
   *
   * Label each box with its track id (matched tracks: "ID name score";
   * unmatched ones: "ID"). Without it, matched tracks get "name score" and
   * unmatched ones no label.
   */
  g_object_class_install_property(gobject_class, PROP_DRAW_IDS,
                                  g_param_spec_boolean("draw-ids", "Draw ids",
                                                       "Label each box with its track id",
                                                       DEFAULT_PROP_DRAW_IDS, rw));
  g_object_class_install_property(
      gobject_class, PROP_DRAW_UNMATCHED,
      g_param_spec_boolean("draw-unmatched", "Draw unmatched",
                           "Also draw the objects whose track matched no watchlist query",
                           DEFAULT_PROP_DRAW_UNMATCHED, rw));
  g_object_class_install_property(
      gobject_class, PROP_LINE_WIDTH,
      g_param_spec_int("line-width", "Line width",
                       "Width of the box outlines in pixels (drawn inside the box)", 1, 64,
                       DEFAULT_PROP_LINE_WIDTH, rw));
  /**
   * GstReidOverlay:font-desc:
   *
   * Pango font description of the labels, e.g. "Sans Bold 10" or
   * "DejaVu Sans Mono 14px". An empty string or a size outside (0, 500] is
   * refused with a warning (the old value is kept); a family that is not
   * installed gets an element warning on the bus and Pango's fallback.
   */
  g_object_class_install_property(gobject_class, PROP_FONT_DESC,
                                  g_param_spec_string("font-desc", "Font description",
                                                      "Pango font description of the labels",
                                                      DEFAULT_PROP_FONT_DESC, rw));
  g_object_class_install_property(
      gobject_class, PROP_UNMATCHED_COLOR,
      g_param_spec_uint("unmatched-color", "Unmatched colour",
                        "Colour (0xAARRGGBB) of the tracks that matched no query; labels are "
                        "drawn opaque",
                        0, G_MAXUINT32, DEFAULT_PROP_UNMATCHED_COLOR, rw));

  gst_element_class_set_static_metadata(
      element_class, "Re-ID overlay", "Filter/Editor/Video",
      "Draws object boxes, track ids and watchlist matches (query name, score) into the video",
      "reid project");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);

  trans_class->start = GST_DEBUG_FUNCPTR(gst_reid_overlay_start);
  trans_class->stop = GST_DEBUG_FUNCPTR(gst_reid_overlay_stop);
  filter_class->transform_frame_ip = GST_DEBUG_FUNCPTR(gst_reid_overlay_transform_frame_ip);
  GST_DEBUG_CATEGORY_INIT(gst_reid_overlay_debug, "reidoverlay", 0, "re-ID overlay");
}
