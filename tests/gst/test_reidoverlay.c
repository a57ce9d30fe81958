/* reidoverlay: on each of the eight formats the pixels change on the box
 * outlines and in the labels above them and nowhere else (in 4:2:0 formats:
 * nowhere outside the 2x2 chroma blocks they touch); a box without an id has
 * no label; the matched label (query name and score) appears only on tracks
 * with a `reid-match` param, in one colour per identity, unmatched tracks in
 * unmatched-color; draw-ids / draw-unmatched; bad property values are
 * refused; state cycles; and chained after reidembed with a watchlist, a
 * track matches its query while it is still live (`reid-match` on its ROI
 * metas from the first frame) and is drawn in the identity's colour.
 * REIDOVERLAY_DUMP=out.ppm writes the RGB drawing, to look at. */
#include "gst_test_util.h"

#define W  320
#define H  240
#define LW 2 /* line-width */

/* label zones: a label sits on the box's top edge, at most this high and wide */
#define LABEL_MAX_H 40
#define LABEL_MAX_W 120

typedef struct box_spec {
  int x, y, w, h, track; /* track < 0: no object_id and meta id -1 */
  const char *query;     /* reid-match query or NULL */
  int query_index;
  double score;
} box_spec;

/* A: unmatched; B, G: alice; D: bob; C: no id; E: partly outside; F: odd
 * coordinates, no id. Label zones (LABEL_MAX_W x LABEL_MAX_H above a box)
 * hold nothing but their label. */
static const box_spec boxes[] = {
    {10, 40, 30, 60, 3, NULL, -1, 0},             /* A */
    {140, 40, 40, 60, 7, "alice.jpg", 0, 0.87},   /* B */
    {270, 40, 30, 60, -1, NULL, -1, 0},           /* C */
    {10, 150, 50, 60, 9, "bob.jpg", 1, 0.91},     /* D */
    {290, 150, 60, 60, 5, NULL, -1, 0},           /* E */
    {221, 171, 31, 41, -1, NULL, -1, 0},          /* F */
    {140, 150, 40, 60, 11, "alice.jpg", 0, 0.80}, /* G */
};
#define N_BOXES ((int)G_N_ELEMENTS(boxes))
enum { A, B, C, D, E, F, G };

static const GstVideoFormat formats[] = {
    GST_VIDEO_FORMAT_NV12, GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_RGB,  GST_VIDEO_FORMAT_BGR,
    GST_VIDEO_FORMAT_RGBA, GST_VIDEO_FORMAT_BGRA, GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_RGBx};

static GstBuffer *frame_with_boxes(GstVideoFormat format, const guint8 *rgb, const box_spec *b,
                                   int n) {
  GstBuffer *buf = gtu_buffer(format, W, H, rgb, 0);
  for (int i = 0; i < n; i++) {
    GstVideoRegionOfInterestMeta *roi =
        gtu_add_box(buf, "person", b[i].x, b[i].y, b[i].w, b[i].h, b[i].track);
    roi->id = b[i].track;
    if (b[i].query)
      gst_video_region_of_interest_meta_add_param(
          roi, gst_structure_new("reid-match", "query", G_TYPE_STRING, b[i].query, "query-index",
                                 G_TYPE_INT, b[i].query_index, "score", G_TYPE_DOUBLE, b[i].score,
                                 "threshold", G_TYPE_DOUBLE, 0.5, NULL));
  }
  return buf;
}

/* changed[y * W + x]: whether any byte of pixel (x, y) differs between the two
 * buffers; a changed chroma sample of a 4:2:0 format marks its 2x2 block. */
static void changed_pixels(GstVideoFormat format, GstBuffer *a, GstBuffer *b, guint8 *changed) {
  GstVideoInfo info;
  gst_video_info_set_format(&info, format, W, H);
  GstVideoFrame fa, fb;
  gst_video_frame_map(&fa, &info, a, GST_MAP_READ);
  gst_video_frame_map(&fb, &info, b, GST_MAP_READ);
  memset(changed, 0, W * H);
  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES(&fa); p++) {
    const guint8 *pa = GST_VIDEO_FRAME_PLANE_DATA(&fa, p), *pb = GST_VIDEO_FRAME_PLANE_DATA(&fb, p);
    const int sa = GST_VIDEO_FRAME_PLANE_STRIDE(&fa, p), sb = GST_VIDEO_FRAME_PLANE_STRIDE(&fb, p);
    const int pw = GST_VIDEO_FRAME_COMP_WIDTH(&fa, p == 0 ? 0 : 1),
              ph = GST_VIDEO_FRAME_COMP_HEIGHT(&fa, p == 0 ? 0 : 1);
    const int bytes_per_px = GST_VIDEO_FRAME_COMP_PSTRIDE(&fa, p == 0 ? 0 : 1);
    const int sub = GST_VIDEO_INFO_IS_YUV(&info) && p > 0 ? 2 : 1;
    for (int y = 0; y < ph; y++)
      for (int x = 0; x < pw * bytes_per_px; x++) {
        if (pa[(gsize)y * sa + x] == pb[(gsize)y * sb + x]) continue;
        const int px = x / bytes_per_px;
        for (int dy = 0; dy < sub; dy++)
          for (int dx = 0; dx < sub; dx++)
            if (px * sub + dx < W && y * sub + dy < H)
              changed[(y * sub + dy) * W + px * sub + dx] = 1;
      }
  }
  gst_video_frame_unmap(&fa);
  gst_video_frame_unmap(&fb);
}

typedef struct rect {
  int x0, y0, x1, y1; /* [x0, x1) x [y0, y1) */
} rect;

static rect clipped(const box_spec *b) {
  rect r = {MAX(b->x, 0), MAX(b->y, 0), MIN(b->x + b->w, W), MIN(b->y + b->h, H)};
  return r;
}

static gboolean in_outline(rect r, int x, int y) {
  if (x < r.x0 || x >= r.x1 || y < r.y0 || y >= r.y1) return FALSE;
  return x < r.x0 + LW || x >= r.x1 - LW || y < r.y0 + LW || y >= r.y1 - LW;
}

static gboolean drawn(const box_spec *b, gboolean draw_unmatched) {
  return b->query || draw_unmatched;
}

static gboolean labelled(const box_spec *b, gboolean draw_ids, gboolean draw_unmatched) {
  return drawn(b, draw_unmatched) && (b->query || (draw_ids && b->track >= 0));
}

/* The zone above a labelled box where its label may be. */
static rect label_zone(const box_spec *b) {
  rect r = clipped(b);
  rect z = {r.x0, MAX(r.y0 - LABEL_MAX_H, 0), MIN(r.x0 + LABEL_MAX_W, W), r.y0};
  return z;
}

static gboolean allowed(int x, int y, gboolean draw_ids, gboolean draw_unmatched) {
  for (int i = 0; i < N_BOXES; i++) {
    if (!drawn(&boxes[i], draw_unmatched)) continue;
    if (in_outline(clipped(&boxes[i]), x, y)) return TRUE;
    rect z = label_zone(&boxes[i]);
    if (labelled(&boxes[i], draw_ids, draw_unmatched) && x >= z.x0 && x < z.x1 && y >= z.y0 &&
        y < z.y1)
      return TRUE;
  }
  return FALSE;
}

/* Width of the label above box b (its changed pixels' extent that touches
 * the box), 0 when nothing changed above it. Checks that the label is a
 * solid block sitting on the box's top edge. */
static int label_width(const guint8 *changed, const box_spec *b, const char *what) {
  rect z = label_zone(b);
  int x0 = W, x1 = -1, y0 = H, y1 = -1, n = 0;
  for (int y = z.y0; y < z.y1; y++)
    for (int x = z.x0; x < z.x1; x++)
      if (changed[y * W + x]) {
        x0 = MIN(x0, x), x1 = MAX(x1, x), y0 = MIN(y0, y), y1 = MAX(y1, y), n++;
      }
  if (n == 0) return 0;
  const int area = (x1 - x0 + 1) * (y1 - y0 + 1);
  CHECK(y1 == z.y1 - 1 && x0 == z.x0,
        "%s: the label's corner is at %d,%d, not on the box's top-left corner %d,%d", what, x0, y1,
        z.x0, z.y1 - 1);
  CHECK(y1 - y0 + 1 >= 8 && y1 - y0 + 1 < LABEL_MAX_H, "%s: label height %d", what, y1 - y0 + 1);
  CHECK(n >= area * 9 / 10, "%s: only %d of the label's %d pixels changed", what, n, area);
  return x1 - x0 + 1;
}

/* The RGB colour (0xRRGGBB) of pixel (x, y); YUV is BT.601 limited range
 * (gtu_caps), converted back with its rounding, so YUV colours are close, not exact. */
static guint32 edge_color(GstVideoFormat format, GstBuffer *buf, int x, int y) {
  GstVideoInfo info;
  gst_video_info_set_format(&info, format, W, H);
  GstVideoFrame f;
  gst_video_frame_map(&f, &info, buf, GST_MAP_READ);
  int v[3];
  for (int c = 0; c < 3; c++) {
    const int sub = GST_VIDEO_INFO_IS_YUV(&info) && c > 0 ? 1 : 0;
    const guint8 *p = (const guint8 *)GST_VIDEO_FRAME_COMP_DATA(&f, c) +
                      (gsize)(y >> sub) * GST_VIDEO_FRAME_COMP_STRIDE(&f, c) +
                      (gsize)(x >> sub) * GST_VIDEO_FRAME_COMP_PSTRIDE(&f, c);
    v[c] = *p;
  }
  gst_video_frame_unmap(&f);
  if (GST_VIDEO_INFO_IS_YUV(&info)) {
    const double Y = 1.164 * (v[0] - 16), U = v[1] - 128, V = v[2] - 128;
    const double rgb[3] = {Y + 1.596 * V, Y - 0.392 * U - 0.813 * V, Y + 2.017 * U};
    for (int c = 0; c < 3; c++) v[c] = (int)CLAMP(rgb[c] + 0.5, 0, 255);
  }
  return (guint32)v[0] << 16 | (guint32)v[1] << 8 | (guint32)v[2];
}

/* Colours within tol in every channel. */
static gboolean close_color(guint32 a, guint32 b, int tol) {
  for (int shift = 0; shift < 24; shift += 8)
    if (abs((int)((a >> shift) & 0xff) - (int)((b >> shift) & 0xff)) > tol) return FALSE;
  return TRUE;
}

typedef struct drawing {
  int label_w[N_BOXES];
  guint32 edge_rgb[N_BOXES]; /* packed RGB formats: colour of the left edge's middle pixel */
} drawing;

/* Draws every box on `format` and checks where pixels changed. */
static void draw_and_check(GstVideoFormat format, const guint8 *rgb, const char *props[][2],
                           gboolean draw_ids, gboolean draw_unmatched, drawing *d) {
  const char *fmt = gst_video_format_to_string(format);
  GstElement *e = gst_element_factory_make("reidoverlay", NULL);
  g_object_set(e, "line-width", LW, NULL);
  for (int i = 0; props && props[i][0]; i++)
    gst_util_set_object_arg(G_OBJECT(e), props[i][0], props[i][1]);
  GstHarness *h = gtu_harness(e, format, W, H);
  GstBuffer *ref = frame_with_boxes(format, rgb, boxes, N_BOXES);
  CHECK(gst_harness_push(h, frame_with_boxes(format, rgb, boxes, N_BOXES)) == GST_FLOW_OK,
        "%s: push", fmt);
  GstBuffer *out = gst_harness_pull(h);
  guint8 *changed = g_malloc(W * H);
  changed_pixels(format, ref, out, changed);
  if (g_getenv("REIDOVERLAY_DUMP") && format == GST_VIDEO_FORMAT_RGB) {
    GstMapInfo m;
    gst_buffer_map(out, &m, GST_MAP_READ);
    FILE *fp = fopen(g_getenv("REIDOVERLAY_DUMP"), "wb");
    fprintf(fp, "P6\n%d %d\n255\n", W, H);
    fwrite(m.data, 1, W * H * 3, fp);
    fclose(fp);
    gst_buffer_unmap(out, &m);
  }

  /* nothing changes outside outlines and label zones (4:2:0: their 2x2 blocks) */
  const gboolean yuv420 = format == GST_VIDEO_FORMAT_NV12 || format == GST_VIDEO_FORMAT_I420;
  int stray = 0;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      if (!changed[y * W + x]) continue;
      gboolean ok = allowed(x, y, draw_ids, draw_unmatched);
      for (int dy = 0; yuv420 && !ok && dy < 2; dy++)
        for (int dx = 0; !ok && dx < 2; dx++)
          ok = allowed((x & ~1) + dx, (y & ~1) + dy, draw_ids, draw_unmatched);
      if (!ok && stray++ < 5) fprintf(stderr, "%s: pixel %d,%d changed\n", fmt, x, y);
    }
  CHECK(stray == 0, "%s: %d pixels changed outside the boxes and labels", fmt, stray);

  for (int i = 0; i < N_BOXES; i++) {
    gchar *what = g_strdup_printf("%s box %c", fmt, 'A' + i);
    rect r = clipped(&boxes[i]);
    int outline = 0, hit = 0;
    for (int y = r.y0; y < r.y1; y++)
      for (int x = r.x0; x < r.x1; x++)
        if (in_outline(r, x, y)) outline++, hit += changed[y * W + x];
    if (drawn(&boxes[i], draw_unmatched))
      CHECK(hit >= outline * 95 / 100, "%s: %d of %d outline pixels changed", what, hit, outline);
    else
      CHECK(hit == 0, "%s: not drawn, yet %d outline pixels changed", what, hit);
    if (labelled(&boxes[i], draw_ids, draw_unmatched)) {
      d->label_w[i] = label_width(changed, &boxes[i], what);
      CHECK(d->label_w[i] > 0, "%s: no label", what);
    } else { /* nothing right above the box */
      d->label_w[i] = 0;
      int above = 0;
      const int end = yuv420 ? r.y0 & ~1 : r.y0; /* 4:2:0: the edge's chroma block */
      for (int y = MAX(r.y0 - 12, 0); y < end; y++)
        for (int x = r.x0; x < r.x1; x++) above += changed[y * W + x];
      CHECK(above == 0, "%s: no label expected, yet %d pixels above it changed", what, above);
    }
    /* inside the outline nothing changes (but under the labels of boxes below) */
    int inner = 0;
    for (int y = r.y0 + LW + 1; y < r.y1 - LW - 1; y++)
      for (int x = r.x0 + LW + 1; x < r.x1 - LW - 1; x++)
        inner += changed[y * W + x] && !allowed(x, y, draw_ids, draw_unmatched);
    CHECK(inner == 0, "%s: %d pixels inside the box changed", what, inner);
    d->edge_rgb[i] = edge_color(format, out, r.x0, (r.y0 + r.y1) / 2);
    g_free(what);
  }
  g_free(changed);
  gst_buffer_unref(out);
  gst_buffer_unref(ref);
  gst_harness_teardown(h);
  gst_object_unref(e);
}

static void test_formats(const guint8 *rgb) {
  for (gsize f = 0; f < G_N_ELEMENTS(formats); f++) {
    const char *fmt = gst_video_format_to_string(formats[f]);
    drawing d;
    draw_and_check(formats[f], rgb, NULL, TRUE, TRUE, &d);
    /* the matched label holds the query's name and score: wider than an id */
    CHECK(d.label_w[B] > d.label_w[A] + 20, "%s: matched label %d px, unmatched %d px", fmt,
          d.label_w[B], d.label_w[A]);
    /* one colour per identity; unmatched tracks in unmatched-color (0xe0e0e0 by default) */
    const int tol = GST_VIDEO_FORMAT_INFO_IS_YUV(gst_video_format_get_info(formats[f])) ? 3 : 0;
    CHECK(close_color(d.edge_rgb[A], 0xe0e0e0, tol) && close_color(d.edge_rgb[E], 0xe0e0e0, tol) &&
              close_color(d.edge_rgb[C], 0xe0e0e0, tol),
          "%s: unmatched colours %06x %06x %06x", fmt, d.edge_rgb[A], d.edge_rgb[E], d.edge_rgb[C]);
    CHECK(d.edge_rgb[B] == d.edge_rgb[G], "%s: alice twice: %06x vs %06x", fmt, d.edge_rgb[B],
          d.edge_rgb[G]);
    /* alice is query 0, bob query 1: the palette's first two colours */
    CHECK(close_color(d.edge_rgb[B], 0x1f77b4, tol) && close_color(d.edge_rgb[D], 0xff7f0e, tol),
          "%s: alice %06x, bob %06x", fmt, d.edge_rgb[B], d.edge_rgb[D]);
  }
}

static void test_switches(const guint8 *rgb) {
  drawing all, no_ids, matched_only;
  draw_and_check(GST_VIDEO_FORMAT_RGBA, rgb, NULL, TRUE, TRUE, &all);
  const char *p_ids[][2] = {{"draw-ids", "false"}, {NULL, NULL}};
  draw_and_check(GST_VIDEO_FORMAT_RGBA, rgb, p_ids, FALSE, TRUE, &no_ids);
  CHECK(no_ids.label_w[B] > 0 && no_ids.label_w[B] < all.label_w[B],
        "draw-ids=false: matched label %d px (with the id: %d px)", no_ids.label_w[B],
        all.label_w[B]);
  const char *p_unmatched[][2] = {{"draw-unmatched", "false"}, {NULL, NULL}};
  draw_and_check(GST_VIDEO_FORMAT_I420, rgb, p_unmatched, TRUE, FALSE, &matched_only);
  const char *p_color[][2] = {{"unmatched-color", "0xff102030"}, {NULL, NULL}};
  drawing colored;
  draw_and_check(GST_VIDEO_FORMAT_BGRx, rgb, p_color, TRUE, TRUE, &colored);
  CHECK(colored.edge_rgb[A] == 0x102030, "unmatched-color: edge %06x", colored.edge_rgb[A]);
  const char *p_font[][2] = {{"font-desc", "DejaVu Sans 7"}, {NULL, NULL}};
  drawing small;
  draw_and_check(GST_VIDEO_FORMAT_RGB, rgb, p_font, TRUE, TRUE, &small);
  CHECK(small.label_w[B] < all.label_w[B], "font-desc: 7 pt label %d px, default %d px",
        small.label_w[B], all.label_w[B]);
}

static void test_bad_properties(const guint8 *rgb) {
  int warnings = 0;
  GstElement *e = gst_element_factory_make("reidoverlay", NULL);
  guint glib = g_log_set_handler("GLib-GObject", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL,
                                 gtu_count_warning, &warnings);
  guint ours = g_log_set_handler(NULL, G_LOG_LEVEL_WARNING, gtu_count_warning, &warnings);
  const char *bad[][2] = {{"line-width", "0"},
                          {"line-width", "65"},
                          {"font-desc", ""},
                          {"font-desc", "Sans 0"},
                          {"font-desc", "Sans 900"}};
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    warnings = 0;
    gst_util_set_object_arg(G_OBJECT(e), bad[i][0], bad[i][1]);
    CHECK(warnings >= 1, "%s=%s: no warning", bad[i][0], bad[i][1]);
  }
  gst_util_set_object_arg(G_OBJECT(e), "draw-ids", "maybe"); /* not a boolean: ignored */
  g_log_remove_handler("GLib-GObject", glib);
  g_log_remove_handler(NULL, ours);
  gint lw;
  gchar *font;
  gboolean ids;
  g_object_get(e, "line-width", &lw, "font-desc", &font, "draw-ids", &ids, NULL);
  CHECK(lw == 2 && !g_strcmp0(font, "Sans Bold 10") && ids, "kept: line-width %d, font-desc '%s'",
        lw, font);
  g_free(font);

  /* a family that is not installed: a warning on the bus naming it, and labels all the same */
  g_object_set(e, "font-desc", "NoSuchFamilyReid 12", NULL);
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(e, bus);
  GstHarness *h = gtu_harness(e, GST_VIDEO_FORMAT_RGB, W, H);
  GstBuffer *ref = frame_with_boxes(GST_VIDEO_FORMAT_RGB, rgb, boxes, 1);
  CHECK(gst_harness_push(h, frame_with_boxes(GST_VIDEO_FORMAT_RGB, rgb, boxes, 1)) == GST_FLOW_OK,
        "push with an unknown font");
  GstBuffer *out = gst_harness_pull(h);
  guint8 *changed = g_malloc(W * H);
  changed_pixels(GST_VIDEO_FORMAT_RGB, ref, out, changed);
  CHECK(label_width(changed, &boxes[A], "fallback font") > 0, "no label with a fallback font");
  GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING);
  gchar *text = NULL;
  GError *err = NULL;
  if (m) gst_message_parse_warning(m, &err, NULL);
  if (err) text = g_strdup(err->message);
  g_clear_error(&err);
  CHECK(text && strstr(text, "NoSuchFamilyReid") && strstr(text, "not installed"),
        "warning for an unknown font family: '%s'", text ? text : "(none)");
  if (text) fprintf(stderr, "unknown family -> %s\n", text);
  g_free(text);
  if (m) gst_message_unref(m);
  g_free(changed);
  gst_buffer_unref(out);
  gst_buffer_unref(ref);
  gst_harness_teardown(h);
  gst_object_unref(e);
  gst_object_unref(bus);
}

/* 30 start/stop cycles, each with a frame drawn, on one element. */
static void test_cycles(const guint8 *rgb) {
  GstElement *e = gst_element_factory_make("reidoverlay", NULL);
  for (int i = 0; i < 30; i++) {
    CHECK(gst_element_set_state(e, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE, "cycle %d", i);
    CHECK(gst_element_set_state(e, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS, "cycle %d", i);
  }
  for (int i = 0; i < 3; i++) {
    GstHarness *h = gtu_harness(e, GST_VIDEO_FORMAT_NV12, W, H);
    GstBuffer *ref = frame_with_boxes(GST_VIDEO_FORMAT_NV12, rgb, boxes, N_BOXES);
    gst_harness_push(h, frame_with_boxes(GST_VIDEO_FORMAT_NV12, rgb, boxes, N_BOXES));
    GstBuffer *out = gst_harness_pull(h);
    guint8 *changed = g_malloc(W * H);
    changed_pixels(GST_VIDEO_FORMAT_NV12, ref, out, changed);
    CHECK(label_width(changed, &boxes[B], "after cycles") > 0, "harness %d: no label", i);
    g_free(changed);
    gst_buffer_unref(out);
    gst_buffer_unref(ref);
    gst_harness_teardown(h);
  }
  gst_object_unref(e);
}

/* reidembed with a watchlist, then reidoverlay: the track whose crop is
 * alice's photo carries reid-match from its first frame (also in frames it is
 * not embedded in), with the score the final reid-match message reports, and is drawn in alice's
 * colour; the other track has no reid-match and is drawn in unmatched-color. */
static void test_live_match(const guint8 *rgb, const char *model) {
  const int a[4] = {20, 60, 40, 80}, b[4] = {200, 60, 40, 80};
  gchar *folder = gtu_path("queries");
  g_mkdir_with_parents(folder, 0755);
  gchar *alice = g_build_filename(folder, "alice.ppm", NULL);
  gtu_write_ppm(alice, rgb, W, a[0], a[1], a[2], a[3]);
  GstBus *bus;
  GstElement *embed = gtu_reidembed(model, &bus);
  /* inference-interval 2: frames 0 and 2 are embedded (and scored), frame 1 keeps the match */
  g_object_set(embed, "query-location", folder, "match-threshold", 0.999, "inference-interval", 2,
               NULL);
  GstHarness *he = gtu_harness(embed, GST_VIDEO_FORMAT_RGBx, W, H);
  GstElement *overlay = gst_element_factory_make("reidoverlay", NULL);
  GstHarness *ho = gtu_harness(overlay, GST_VIDEO_FORMAT_RGBx, W, H);
  double live = -2;
  for (int f = 0; f < 3; f++) {
    GstBuffer *in = gtu_buffer(GST_VIDEO_FORMAT_RGBx, W, H, rgb, f);
    gtu_add_box(in, "person", a[0], a[1], a[2], a[3], 1);
    gtu_add_box(in, "person", b[0], b[1], b[2], b[3], 2);
    CHECK(gst_harness_push(he, in) == GST_FLOW_OK, "reidembed push");
    GstBuffer *mid = gst_harness_pull(he);
    gpointer state = NULL;
    GstMeta *m;
    while ((m = gst_buffer_iterate_meta_filtered(mid, &state,
                                                 GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
      GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *)m;
      GstStructure *s = gst_video_region_of_interest_meta_get_param(roi, "reid-match");
      const gboolean is_a = roi->x == (guint)a[0];
      CHECK(is_a == (s != NULL), "frame %d, track %d: reid-match %s", f, is_a ? 1 : 2,
            s ? "present" : "absent");
      gint index = -1;
      if (s && is_a) {
        CHECK(!g_strcmp0(gst_structure_get_string(s, "query"), "alice.ppm") &&
                  gst_structure_get_int(s, "query-index", &index) && index == 0 &&
                  gst_structure_get_double(s, "score", &live) && live >= 0.999,
              "frame %d: reid-match query %s, index %d, score %g", f,
              gst_structure_get_string(s, "query"), index, live);
      }
    }
    GstBuffer *ref = gst_buffer_copy_deep(mid);
    CHECK(gst_harness_push(ho, mid) == GST_FLOW_OK, "reidoverlay push");
    GstBuffer *out = gst_harness_pull(ho);
    GstMapInfo mo, mr;
    gst_buffer_map(out, &mo, GST_MAP_READ);
    gst_buffer_map(ref, &mr, GST_MAP_READ);
    const int stride = W * 4, y = a[1] + a[3] / 2;
    const guint8 *pa = mo.data + (gsize)y * stride + (gsize)a[0] * 4,
                 *pb = mo.data + (gsize)y * stride + (gsize)b[0] * 4;
    /* alice is query 0: the palette's first colour, 0x1f77b4 */
    CHECK(pa[0] == 0x1f && pa[1] == 0x77 && pa[2] == 0xb4, "frame %d: track 1 edge %02x%02x%02x", f,
          pa[0], pa[1], pa[2]);
    CHECK(pb[0] == 0xe0 && pb[1] == 0xe0 && pb[2] == 0xe0, "frame %d: track 2 edge %02x%02x%02x", f,
          pb[0], pb[1], pb[2]);
    CHECK(memcmp(mo.data, mr.data, mo.size) != 0, "frame %d: nothing drawn", f);
    gst_buffer_unmap(out, &mo);
    gst_buffer_unmap(ref, &mr);
    gst_buffer_unref(out);
    gst_buffer_unref(ref);
  }
  gst_harness_push_event(he, gst_event_new_eos());
  GPtrArray *all = gtu_messages(bus), *matches = gtu_select(all, "reid-match");
  CHECK(matches->len == 1, "%u reid-match messages", matches->len);
  gdouble final = -3;
  if (matches->len) gst_structure_get_double(g_ptr_array_index(matches, 0), "score", &final);
  /* the last frame was embedded: the last live score is the final tracklet's */
  CHECK(fabs(final - live) < 1e-6, "final score %.7f, live %.7f", final, live);
  g_ptr_array_unref(matches);
  g_ptr_array_unref(all);
  gst_harness_teardown(ho);
  gst_harness_teardown(he);
  gst_object_unref(overlay);
  gst_object_unref(embed);
  gst_object_unref(bus);
  g_free(alice);
  g_free(folder);
}

int main(int argc, char **argv) {
  gtu_init(argc, argv, "reidoverlay");
  guint8 *rgb = gtu_picture(W, H, 5);
  test_formats(rgb);
  test_switches(rgb);
  test_bad_properties(rgb);
  test_cycles(rgb);
  gchar *model = gtu_model("resnet18", 64, 32, 1);
  test_live_match(rgb, model);
  g_free(model);
  g_free(rgb);
  return gtu_finish("reidoverlay");
}
