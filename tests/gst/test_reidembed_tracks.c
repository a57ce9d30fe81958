/* reidembed tracklets: tracks that end by timeout (exactly after
 * track-timeout frames without them), at EOS and at a flush; the pooled
 * embedding is the normalised mean of the per-frame ones; message fields;
 * JSON lines parse (json-glib) and agree with the messages; inference-interval;
 * message=false still writes JSON lines. */
#include <json-glib/json-glib.h>

#include "gst_test_util.h"

#define W   160
#define H   120
#define DIM 512

static GstHarness *make(const char *model, GstBus **bus, const char *props[][2], GstElement **out) {
  GstElement *e = gtu_reidembed(model, bus);
  for (int i = 0; props && props[i][0]; i++)
    gst_util_set_object_arg(G_OBJECT(e), props[i][0], props[i][1]);
  *out = e;
  return gtu_harness(e, GST_VIDEO_FORMAT_RGB, W, H);
}

static void done(GstHarness *h, GstElement *e, GstBus *bus) {
  gst_harness_teardown(h);
  gst_object_unref(e);
  gst_object_unref(bus);
}

static GstBuffer *push_frame(GstHarness *h, const guint8 *rgb, int frame, const int (*boxes)[5],
                             int n) {
  GstBuffer *in = gtu_buffer(GST_VIDEO_FORMAT_RGB, W, H, rgb, frame);
  for (int i = 0; i < n; i++)
    gtu_add_box(in, "person", boxes[i][1], boxes[i][2], boxes[i][3], boxes[i][4], boxes[i][0]);
  CHECK(gst_harness_push(h, in) == GST_FLOW_OK, "frame %d: push", frame);
  return gst_harness_pull(h);
}

static gint64 msg_int64(const GstStructure *s, const char *f) {
  gint64 v = -1;
  gst_structure_get_int64(s, f, &v);
  return v;
}
static guint64 msg_uint64(const GstStructure *s, const char *f) {
  guint64 v = 0;
  gst_structure_get_uint64(s, f, &v);
  return v;
}
static int msg_int(const GstStructure *s, const char *f) {
  gint v = -1;
  gst_structure_get_int(s, f, &v);
  return v;
}
static int bbox_at(const GstStructure *s, int i) {
  const GValue *a = gst_structure_get_value(s, "bbox");
  if (!a || !GST_VALUE_HOLDS_ARRAY(a) || gst_value_array_get_size(a) != 4) return -1;
  return g_value_get_int(gst_value_array_get_value(a, i));
}

/* Every JSON line agrees with the message of the same track. */
static void check_json_agrees(const char *path, GPtrArray *tracklets, const char *stream) {
  gchar *text = gtu_read_file(path);
  CHECK(text != NULL, "cannot read %s", path);
  if (!text) return;
  gchar **lines = g_strsplit(text, "\n", -1);
  guint n_lines = 0;
  for (gchar **l = lines; *l && **l; l++, n_lines++) {
    JsonParser *parser = json_parser_new();
    GError *error = NULL;
    if (!json_parser_load_from_data(parser, *l, -1, &error)) {
      CHECK(0, "%s: line %u does not parse: %s", path, n_lines + 1, error->message);
      g_error_free(error);
      g_object_unref(parser);
      continue;
    }
    JsonObject *o = json_node_get_object(json_parser_get_root(parser));
    gint64 id = json_object_get_int_member(o, "track_id");
    const GstStructure *m = NULL;
    for (guint i = 0; i < tracklets->len; i++)
      if (msg_int64(g_ptr_array_index(tracklets, i), "track-id") == id)
        m = g_ptr_array_index(tracklets, i);
    CHECK(m != NULL, "JSON track %" G_GINT64_FORMAT " has no message", id);
    if (m) {
      CHECK(!strcmp(json_object_get_string_member(o, "stream"), stream), "stream");
      CHECK(json_object_get_int_member(o, "frames") == msg_int(m, "frames"), "frames");
      CHECK(json_object_get_int_member(o, "embedded_frames") == msg_int(m, "embedded-frames"),
            "embedded_frames");
      CHECK((guint64)json_object_get_int_member(o, "first_pts") == msg_uint64(m, "first-pts"),
            "first_pts");
      CHECK((guint64)json_object_get_int_member(o, "last_pts") == msg_uint64(m, "last-pts"),
            "last_pts");
      CHECK(!strcmp(json_object_get_string_member(o, "reason"),
                    gst_structure_get_string(m, "reason")),
            "reason");
      JsonArray *bbox = json_object_get_array_member(o, "bbox");
      for (int i = 0; i < 4; i++)
        CHECK(json_array_get_double_element(bbox, i) == bbox_at(m, i), "bbox[%d]", i);
      JsonArray *emb = json_object_get_array_member(o, "embedding");
      float me[DIM];
      int d = gtu_message_embedding(m, me, DIM);
      CHECK(d == DIM && json_array_get_length(emb) == (guint)d, "embedding length %u",
            json_array_get_length(emb));
      double worst = 0;
      for (int i = 0; i < d && i < (int)json_array_get_length(emb); i++)
        worst = fmax(worst, fabs((float)json_array_get_double_element(emb, i) - me[i]));
      CHECK(worst == 0, "JSON embedding differs from the message as float32 by %g", worst);
    }
    g_object_unref(parser);
  }
  CHECK(n_lines == tracklets->len, "%u JSON lines for %u tracklet messages", n_lines,
        tracklets->len);
  g_strfreev(lines);
  g_free(text);
}

static void test_timeout_and_eos(const char *model, const guint8 *rgb) {
  gchar *jsonl = gtu_path("tracks.jsonl");
  g_unlink(jsonl);
  const char *props[][2] = {{"track-timeout", "3"},
                            {"tracklet-location", jsonl},
                            {"stream-name", "cam \"A\""},
                            {NULL, NULL}};
  GstBus *bus;
  GstElement *e;
  GstHarness *h = make(model, &bus, props, &e);
  float sum[DIM] = {0}, last_pooled[DIM];
  GPtrArray *all = g_ptr_array_new_with_free_func((GDestroyNotify)gst_structure_free);
  for (int f = 0; f < 10; f++) {
    int boxes[2][5] = {{1, 10 + 2 * f, 10, 40, 80}, {2, 90, 20 + f, 40, 80}};
    int n = f <= 4 ? 2 : 1;
    GstBuffer *out = push_frame(h, rgb, f, n == 2 ? boxes : boxes + 1, n);
    if (out && f <= 4) { /* track 1 is the first box */
      float e1[DIM];
      CHECK(gtu_embedding(out, 0, "reid-embedding", e1, DIM) == DIM, "frame %d: track 1 embedding",
            f);
      for (int j = 0; j < DIM; j++) sum[j] += e1[j];
      gtu_embedding(out, 0, "reid-track-embedding", last_pooled, DIM);
    }
    if (out) gst_buffer_unref(out);
    GPtrArray *got = gtu_messages(bus);
    GPtrArray *ended = gtu_select(got, "reid-tracklet");
    /* last seen in frame 4, timeout 3: ends after frame 7, not before */
    CHECK(ended->len == (f == 7 ? 1u : 0u), "frame %d: %u tracklets ended", f, ended->len);
    g_ptr_array_unref(ended);
    while (got->len) g_ptr_array_add(all, g_ptr_array_steal_index(got, 0));
    g_ptr_array_unref(got);
  }
  gst_harness_push_event(h, gst_event_new_eos());
  GPtrArray *got = gtu_messages(bus);
  while (got->len) g_ptr_array_add(all, g_ptr_array_steal_index(got, 0));
  g_ptr_array_unref(got);
  GPtrArray *tracklets = gtu_select(all, "reid-tracklet");
  CHECK(tracklets->len == 2, "%u tracklets", tracklets->len);
  if (tracklets->len == 2) {
    const GstStructure *t1 = g_ptr_array_index(tracklets, 0), *t2 = g_ptr_array_index(tracklets, 1);
    CHECK(msg_int64(t1, "track-id") == 1 && msg_int64(t2, "track-id") == 2, "track ids");
    CHECK(!g_strcmp0(gst_structure_get_string(t1, "reason"), "timeout"), "track 1 ends by timeout");
    CHECK(!g_strcmp0(gst_structure_get_string(t2, "reason"), "eos"), "track 2 ends at EOS");
    CHECK(msg_int(t1, "frames") == 5 && msg_int(t2, "frames") == 10, "frames %d %d",
          msg_int(t1, "frames"), msg_int(t2, "frames"));
    CHECK(msg_int(t1, "embedded-frames") == 5, "embedded-frames");
    CHECK(msg_uint64(t1, "first-pts") == 0, "first-pts");
    CHECK(msg_uint64(t1, "last-pts") == gst_util_uint64_scale(4, GST_SECOND, 30),
          "last-pts %" G_GUINT64_FORMAT, msg_uint64(t1, "last-pts"));
    CHECK(msg_uint64(t2, "last-pts") == gst_util_uint64_scale(9, GST_SECOND, 30),
          "track 2 last-pts");
    CHECK(bbox_at(t1, 0) == 18 && bbox_at(t1, 1) == 10 && bbox_at(t1, 2) == 40 &&
              bbox_at(t1, 3) == 80,
          "bbox of the last box");
    CHECK(msg_int(t1, "dims") == DIM, "dims");
    CHECK(!g_strcmp0(gst_structure_get_string(t1, "stream"), "cam \"A\""), "stream");
    float pooled[DIM];
    CHECK(gtu_message_embedding(t1, pooled, DIM) == DIM, "message embedding");
    double c_mean = gtu_cosine(pooled, sum, DIM), c_last = gtu_cosine(pooled, last_pooled, DIM);
    double ss = 0;
    for (int j = 0; j < DIM; j++) ss += (double)pooled[j] * pooled[j];
    CHECK(c_mean > 0.99999, "pooled = normalised mean of the frames: cosine %.7f", c_mean);
    CHECK(c_last > 0.99999, "the last reid-track-embedding is the pooled one: %.7f", c_last);
    CHECK(fabs(ss - 1) < 1e-5, "pooled embedding is L2-normalised (%.7f)", ss);
  }
  done(h, e, bus);
  check_json_agrees(jsonl, tracklets, "cam \"A\"");
  g_ptr_array_unref(tracklets);
  g_ptr_array_unref(all);
  g_free(jsonl);
}

static void test_flush(const char *model, const guint8 *rgb) {
  GstBus *bus;
  GstElement *e;
  GstHarness *h = make(model, &bus, NULL, &e);
  int box[1][5] = {{5, 30, 20, 40, 80}};
  for (int f = 0; f < 3; f++) {
    GstBuffer *out = push_frame(h, rgb, f, box, 1);
    if (out) gst_buffer_unref(out);
  }
  gst_harness_push_event(h, gst_event_new_flush_start());
  gst_harness_push_event(h, gst_event_new_flush_stop(TRUE));
  GPtrArray *all = gtu_messages(bus), *ended = gtu_select(all, "reid-tracklet");
  CHECK(ended->len == 1, "flush ends the track (%u)", ended->len);
  if (ended->len == 1) {
    const GstStructure *s = g_ptr_array_index(ended, 0);
    CHECK(!g_strcmp0(gst_structure_get_string(s, "reason"), "flush"), "reason flush");
    CHECK(msg_int(s, "frames") == 3, "frames before the flush");
  }
  g_ptr_array_unref(ended);
  g_ptr_array_unref(all);
  /* the same id after the flush is a new track */
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  gst_harness_push_event(h, gst_event_new_segment(&seg));
  for (int f = 0; f < 2; f++) {
    GstBuffer *out = push_frame(h, rgb, f, box, 1);
    if (out) gst_buffer_unref(out);
  }
  gst_harness_push_event(h, gst_event_new_eos());
  all = gtu_messages(bus);
  ended = gtu_select(all, "reid-tracklet");
  CHECK(ended->len == 1 && msg_int(g_ptr_array_index(ended, 0), "frames") == 2,
        "a new track after the flush");
  g_ptr_array_unref(ended);
  g_ptr_array_unref(all);
  done(h, e, bus);
}

static void test_interval_and_no_message(const char *model, const guint8 *rgb) {
  gchar *jsonl = gtu_path("interval.jsonl");
  g_unlink(jsonl);
  const char *props[][2] = {{"inference-interval", "3"},
                            {"message", "false"},
                            {"tracklet-location", jsonl},
                            {NULL, NULL}};
  GstBus *bus;
  GstElement *e;
  GstHarness *h = make(model, &bus, props, &e);
  int box[1][5] = {{9, 30, 20, 40, 80}};
  for (int f = 0; f < 7; f++) {
    GstBuffer *out = push_frame(h, rgb, f, box, 1);
    float v[DIM];
    int has = out && gtu_embedding(out, 0, "reid-embedding", v, DIM) == DIM;
    CHECK(has == (f % 3 == 0), "frame %d: reid-embedding present %d", f, has);
    CHECK(out && gtu_embedding(out, 0, "reid-track-embedding", v, DIM) == DIM,
          "frame %d: pooled present", f);
    if (out) gst_buffer_unref(out);
  }
  gst_harness_push_event(h, gst_event_new_eos());
  GPtrArray *all = gtu_messages(bus);
  CHECK(all->len == 0, "message=false: %u messages", all->len);
  g_ptr_array_unref(all);
  done(h, e, bus);
  gchar *text = gtu_read_file(jsonl);
  CHECK(text && strstr(text, "\"track_id\":9,") && strstr(text, "\"frames\":7,") &&
            strstr(text, "\"embedded_frames\":3,"),
        "JSON line with 7 frames, 3 embedded: %s", text ? text : "(none)");
  g_free(text);
  g_free(jsonl);
}

int main(int argc, char **argv) {
  gtu_init(argc, argv, "tracks");
  gchar *model = gtu_model("resnet18", 64, 32, 1);
  guint8 *rgb = gtu_picture(W, H, 7);
  test_timeout_and_eos(model, rgb);
  test_flush(model, rgb);
  test_interval_and_no_message(model, rgb);
  g_free(rgb);
  g_free(model);
  return gtu_finish("test_reidembed_tracks");
}
