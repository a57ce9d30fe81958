/* reidembed's match-threshold: unset, the model's calibrated match_threshold metadata
 * (written by `reid-train eval --calibrate`) applies; a set property wins; a model without
 * one keeps the default 0.7; a match_threshold that is not a cosine fails the start, naming
 * the file. The threshold in force is the `threshold` field of every reid-match message. */
#include "gst_test_util.h"

#define W 160
#define H 120

static const int box[4] = {20, 10, 40, 80};

/* A copy of `model` with "match_threshold": value added to its metadata. */
static gchar *with_threshold(const char *model, const char *value, const char *name) {
  gchar *bytes = NULL;
  gsize size = 0;
  if (!g_file_get_contents(model, &bytes, &size, NULL) || size < 8)
    gtu_fatal("cannot read %s", model);
  guint64 n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | (guint8)bytes[i];
  gchar *header = g_strndup(bytes + 8, n);
  const char *key = "\"__metadata__\":{";
  gchar *at = strstr(header, key);
  if (!at) gtu_fatal("%s: no __metadata__", model);
  at += strlen(key);
  GString *h = g_string_new_len(header, at - header);
  g_string_append_printf(h, "\"match_threshold\":\"%s\",%s", value, at);
  while (h->len % 8) g_string_append_c(h, ' ');
  gchar *path = gtu_path(name);
  GString *file = g_string_new(NULL);
  for (int i = 0; i < 8; i++) g_string_append_c(file, (char)((guint64)h->len >> (8 * i) & 0xff));
  g_string_append_len(file, h->str, (gssize)h->len);
  g_string_append_len(file, bytes + 8 + n, (gssize)(size - 8 - n));
  if (!g_file_set_contents(path, file->str, (gssize)file->len, NULL))
    gtu_fatal("cannot write %s", path);
  g_string_free(file, TRUE);
  g_string_free(h, TRUE);
  g_free(header);
  g_free(bytes);
  return path;
}

/* Runs 3 frames of a track whose crop is the query; returns the match's threshold field
 * (-2 without a match) and the property's value while playing. */
static double run(const char *model, const char *queries, const char *set, double *property) {
  GstBus *bus;
  GstElement *e = gtu_reidembed(model, &bus);
  g_object_set(e, "query-location", queries, NULL);
  if (set) gst_util_set_object_arg(G_OBJECT(e), "match-threshold", set);
  guint8 *rgb = gtu_picture(W, H, 3);
  GstHarness *h = gtu_harness(e, GST_VIDEO_FORMAT_RGB, W, H);
  for (int f = 0; f < 3; f++) {
    GstBuffer *in = gtu_buffer(GST_VIDEO_FORMAT_RGB, W, H, rgb, f);
    gtu_add_box(in, "person", box[0], box[1], box[2], box[3], 4);
    CHECK(gst_harness_push(h, in) == GST_FLOW_OK, "push");
    gst_buffer_unref(gst_harness_pull(h));
  }
  g_object_get(e, "match-threshold", property, NULL);
  gst_harness_push_event(h, gst_event_new_eos());
  GPtrArray *all = gtu_messages(bus), *m = gtu_select(all, "reid-match");
  double threshold = -2;
  if (m->len) gst_structure_get_double(g_ptr_array_index(m, 0), "threshold", &threshold);
  g_ptr_array_unref(m);
  g_ptr_array_unref(all);
  gst_harness_teardown(h);
  gst_object_unref(e);
  gst_object_unref(bus);
  g_free(rgb);
  return threshold;
}

int main(int argc, char **argv) {
  gtu_init(argc, argv, "threshold");
  gchar *model = gtu_model("resnet18", 64, 32, 1);
  gchar *calibrated = with_threshold(model, "0.420000", "calibrated.safetensors");
  gchar *folder = gtu_path("queries");
  g_mkdir_with_parents(folder, 0755);
  gchar *alice = g_build_filename(folder, "alice.ppm", NULL);
  guint8 *rgb = gtu_picture(W, H, 3);
  gtu_write_ppm(alice, rgb, W, box[0], box[1], box[2], box[3]);

  double property = 0, t;
  /* before start: the element's default */
  GstBus *bus;
  GstElement *e = gtu_reidembed(calibrated, &bus);
  g_object_get(e, "match-threshold", &property, NULL);
  CHECK(fabs(property - 0.7) < 1e-9, "before start the property reads the default (%g)", property);
  gst_object_unref(e);
  gst_object_unref(bus);

  t = run(calibrated, folder, NULL, &property);
  CHECK(fabs(t - 0.42) < 1e-9, "unset: the model's 0.42 applies (match threshold %g)", t);
  CHECK(fabs(property - 0.42) < 1e-9, "unset: the property reads the model's (%g)", property);
  t = run(calibrated, folder, "0.9", &property);
  CHECK(fabs(t - 0.9) < 1e-9, "set to 0.9: the property wins (match threshold %g)", t);
  CHECK(fabs(property - 0.9) < 1e-9, "set: the property reads 0.9 (%g)", property);
  t = run(calibrated, folder, "0.7", &property);
  CHECK(fabs(t - 0.7) < 1e-9, "set to the default value: still wins (%g)", t);
  t = run(model, folder, NULL, &property);
  CHECK(fabs(t - 0.7) < 1e-9, "no calibration in the model: 0.7 (%g)", t);

  /* not a cosine: the start fails and names the file and the key */
  gchar *bad = with_threshold(model, "1.5", "bad-threshold.safetensors");
  e = gtu_reidembed(bad, &bus);
  CHECK(gst_element_set_state(e, GST_STATE_PAUSED) == GST_STATE_CHANGE_FAILURE,
        "a model with match_threshold 1.5 must not start");
  gchar *text = gtu_error_text(bus);
  CHECK(text && strstr(text, "bad-threshold.safetensors") && strstr(text, "match_threshold"),
        "the error names the file and match_threshold: %s", text ? text : "(none)");
  g_free(text);
  gst_element_set_state(e, GST_STATE_NULL);
  gst_object_unref(e);
  gst_object_unref(bus);

  g_free(bad);
  g_free(rgb);
  g_free(alice);
  g_free(folder);
  g_free(calibrated);
  g_free(model);
  return gtu_finish("test_reidembed_threshold");
}
