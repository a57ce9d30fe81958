/* reidoverlay: draws the ROIs of a frame, their track ids and the watchlist
 * matches reidembed attaches. See gstreidoverlay.c. */
#pragma once

#include <gst/gst.h>
#include <gst/video/gstvideofilter.h>
#include <gst/video/video.h>

G_BEGIN_DECLS

#define GST_TYPE_REID_OVERLAY (gst_reid_overlay_get_type())
G_DECLARE_FINAL_TYPE(GstReidOverlay, gst_reid_overlay, GST, REID_OVERLAY, GstVideoFilter)

typedef struct ReidLabelRenderer ReidLabelRenderer;

struct _GstReidOverlay {
  GstVideoFilter parent;
  /* properties, under the object lock */
  gboolean draw_ids;
  gboolean draw_unmatched;
  gint line_width;
  gchar *font_desc;
  guint unmatched_color; /* ARGB */
  /* streaming state (streaming thread; created at start, freed at stop) */
  ReidLabelRenderer *labels;
  gchar *font_applied; /* the font-desc the labels use */
};

GST_ELEMENT_REGISTER_DECLARE(reidoverlay);

/* gstreidoverlay_labels.c: text labels rendered with Pango + Cairo into ARGB
 * overlay rectangles, cached by text, colour and font. */
ReidLabelRenderer *reid_label_renderer_new(void);
void reid_label_renderer_free(ReidLabelRenderer *r);
/* Sets the Pango font description; returns a warning text (g_free it) when
 * the font's family is not installed and Pango falls back to another one. */
gchar *reid_label_renderer_set_font(ReidLabelRenderer *r, const gchar *font_desc);
/* The label `text` in `argb` (background; black or white text, whichever
 * reads better), its top-left corner at (x, y). A new reference. */
GstVideoOverlayRectangle *reid_label_renderer_label(ReidLabelRenderer *r, const gchar *text,
                                                    guint32 argb, gint x, gint y);
/* The size the label of `text` will have. */
void reid_label_renderer_size(ReidLabelRenderer *r, const gchar *text, gint *width, gint *height);

/* Whether a font description string is acceptable for the font-desc
 * property: non-empty and with a size, when given, in (0, 500] points. */
gboolean reid_font_desc_valid(const gchar *font_desc);

G_END_DECLS
