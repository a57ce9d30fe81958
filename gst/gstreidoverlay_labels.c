/* reidoverlay's labels: text laid out with Pango, drawn with Cairo into an
 * ARGB32 image (opaque background, so premultiplied = straight alpha), which
 * becomes a GstVideoOverlayRectangle. Rendered labels are cached by colour
 * and text until the font changes (a track's label text changes only with
 * its match score, so most frames reuse every label). */
#include <pango/pangocairo.h>
#include <string.h>

#include "gstreidoverlay.h"

#define LABEL_PAD       2   /* pixels around the text */
#define LABEL_CACHE_MAX 512 /* entries; the cache is emptied when it grows past this */

struct ReidLabelRenderer {
  PangoFontMap *font_map;
  PangoContext *context;
  PangoLayout *layout;
  GHashTable *cache; /* "AARRGGBB text" -> GstBuffer (ARGB with a GstVideoMeta) */
};

ReidLabelRenderer *reid_label_renderer_new(void) {
  ReidLabelRenderer *r = g_new0(ReidLabelRenderer, 1);
  /* a font map of our own: pango_cairo_font_map_get_default() is per thread */
  r->font_map = pango_cairo_font_map_new();
  r->context = pango_font_map_create_context(r->font_map);
  r->layout = pango_layout_new(r->context);
  r->cache =
      g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)gst_buffer_unref);
  return r;
}

void reid_label_renderer_free(ReidLabelRenderer *r) {
  if (!r) return;
  g_hash_table_destroy(r->cache);
  g_object_unref(r->layout);
  g_object_unref(r->context);
  g_object_unref(r->font_map);
  g_free(r);
}

gboolean reid_font_desc_valid(const gchar *font_desc) {
  if (!font_desc || !*font_desc) return FALSE;
  PangoFontDescription *d = pango_font_description_from_string(font_desc);
  gboolean ok = TRUE;
  if (pango_font_description_get_set_fields(d) & PANGO_FONT_MASK_SIZE) {
    gint size = pango_font_description_get_size(d); /* points or pixels, x PANGO_SCALE */
    ok = size > 0 && size <= 500 * PANGO_SCALE;
  }
  pango_font_description_free(d);
  return ok;
}

/* Generic names that fontconfig resolves to an installed family. */
static gboolean generic_family(const gchar *family) {
  static const gchar *const generic[] = {"sans",      "sans-serif", "serif",   "monospace", "mono",
                                         "system-ui", "cursive",    "fantasy", "emoji",     "math"};
  for (gsize i = 0; i < G_N_ELEMENTS(generic); i++)
    if (!g_ascii_strcasecmp(family, generic[i])) return TRUE;
  return FALSE;
}

gchar *reid_label_renderer_set_font(ReidLabelRenderer *r, const gchar *font_desc) {
  PangoFontDescription *d = pango_font_description_from_string(font_desc);
  pango_layout_set_font_description(r->layout, d);
  g_hash_table_remove_all(r->cache);
  /* Pango never fails on an unknown family: it picks a fallback. Say so. */
  gchar *warning = NULL;
  const gchar *families = pango_font_description_get_family(d);
  PangoFont *font = pango_font_map_load_font(r->font_map, r->context, d);
  if (families && font) {
    PangoFontDescription *got = pango_font_describe(font);
    const gchar *used = pango_font_description_get_family(got);
    gboolean found = FALSE;
    gchar **names = g_strsplit(families, ",", -1);
    for (gchar **n = names; *n && !found; n++) {
      const gchar *name = g_strstrip(*n);
      found = generic_family(name) || (used && !g_ascii_strcasecmp(name, used));
    }
    g_strfreev(names);
    if (!found)
      warning = g_strdup_printf("font-desc '%s': font family '%s' is not installed, using '%s'",
                                font_desc, families, used ? used : "?");
    pango_font_description_free(got);
  }
  if (font) g_object_unref(font);
  pango_font_description_free(d);
  return warning;
}

static void layout_text(ReidLabelRenderer *r, const gchar *text, gint *width, gint *height) {
  pango_layout_set_text(r->layout, text, -1);
  PangoRectangle logical;
  pango_layout_get_pixel_extents(r->layout, NULL, &logical);
  *width = MAX(logical.width, 1) + 2 * LABEL_PAD;
  *height = MAX(logical.height, 1) + 2 * LABEL_PAD;
}

void reid_label_renderer_size(ReidLabelRenderer *r, const gchar *text, gint *width, gint *height) {
  layout_text(r, text, width, height);
}

/* Draws the label into a new ARGB buffer with a GstVideoMeta. */
static GstBuffer *render(ReidLabelRenderer *r, const gchar *text, guint32 argb) {
  gint w, h;
  layout_text(r, text, &w, &h);
  const gint stride = cairo_format_stride_for_width(CAIRO_FORMAT_ARGB32, w);
  GstBuffer *buf = gst_buffer_new_allocate(NULL, (gsize)stride * h, NULL);
  GstMapInfo map;
  gst_buffer_map(buf, &map, GST_MAP_WRITE);
  cairo_surface_t *surface =
      cairo_image_surface_create_for_data(map.data, CAIRO_FORMAT_ARGB32, w, h, stride);
  cairo_t *cr = cairo_create(surface);
  const double red = ((argb >> 16) & 0xff) / 255.0, green = ((argb >> 8) & 0xff) / 255.0,
               blue = (argb & 0xff) / 255.0;
  cairo_set_operator(cr, CAIRO_OPERATOR_SOURCE);
  cairo_set_source_rgb(cr, red, green, blue);
  cairo_paint(cr);
  cairo_set_operator(cr, CAIRO_OPERATOR_OVER);
  /* Rec. 601 luma of the background picks the text colour */
  const double luma = 0.299 * red + 0.587 * green + 0.114 * blue;
  const double ink = luma > 0.55 ? 0.0 : 1.0;
  cairo_set_source_rgb(cr, ink, ink, ink);
  cairo_move_to(cr, LABEL_PAD, LABEL_PAD);
  pango_cairo_update_context(cr, r->context);
  pango_layout_context_changed(r->layout);
  pango_cairo_show_layout(cr, r->layout);
  cairo_destroy(cr);
  cairo_surface_flush(surface);
  cairo_surface_destroy(surface);
  gst_buffer_unmap(buf, &map);
  gsize offset[GST_VIDEO_MAX_PLANES] = {0};
  gint strides[GST_VIDEO_MAX_PLANES] = {stride};
  gst_buffer_add_video_meta_full(buf, GST_VIDEO_FRAME_FLAG_NONE,
                                 GST_VIDEO_OVERLAY_COMPOSITION_FORMAT_RGB, (guint)w, (guint)h, 1,
                                 offset, strides);
  return buf;
}

GstVideoOverlayRectangle *reid_label_renderer_label(ReidLabelRenderer *r, const gchar *text,
                                                    guint32 argb, gint x, gint y) {
  argb |= 0xff000000u; /* labels are opaque */
  gchar *key = g_strdup_printf("%08x %s", argb, text);
  GstBuffer *buf = g_hash_table_lookup(r->cache, key);
  if (!buf) {
    if (g_hash_table_size(r->cache) >= LABEL_CACHE_MAX) g_hash_table_remove_all(r->cache);
    buf = render(r, text, argb);
    g_hash_table_insert(r->cache, key, buf);
  } else {
    g_free(key);
  }
  GstVideoMeta *vmeta = gst_buffer_get_video_meta(buf);
  return gst_video_overlay_rectangle_new_raw(buf, x, y, vmeta->width, vmeta->height,
                                             GST_VIDEO_OVERLAY_FORMAT_FLAG_NONE);
}
