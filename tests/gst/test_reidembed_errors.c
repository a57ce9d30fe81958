/* Start-up errors and properties: missing, corrupt, truncated and
 * wrong-architecture checkpoints fail the change to PAUSED with an error that
 * names the file; so do no model, device=cuda without CUDA, an unsupported
 * precision (int8 with a float model, or a quantized model at fp32), an unwritable
 * tracklet-location, a bad query-location or query image, and (reidattachroi) a malformed MOT file
 * (file and line). The element starts once the property is fixed. Properties read back; invalid
 * values are rejected and the old value kept. */
#include "gst_test_util.h"

static int warnings;

/* The element must refuse PAUSED; returns the error text (g_free it). */
static gchar *start_error(GstElement *e, GstBus *bus, const char *what) {
  GstStateChangeReturn r = gst_element_set_state(e, GST_STATE_PAUSED);
  CHECK(r == GST_STATE_CHANGE_FAILURE, "%s: the state change must fail", what);
  gst_element_set_state(e, GST_STATE_NULL);
  gchar *text = gtu_error_text(bus);
  CHECK(text != NULL, "%s: no error message", what);
  if (text) fprintf(stderr, "%s -> %s\n", what, text);
  return text ? text : g_strdup("");
}

/* reidembed with `model` and properties; the error must contain each needle. */
static void expect_failure(const char *what, const char *model, const char *props[][2],
                           const char *needle1, const char *needle2) {
  GstBus *bus;
  GstElement *e = gtu_reidembed(model, &bus);
  for (int i = 0; props && props[i][0]; i++)
    gst_util_set_object_arg(G_OBJECT(e), props[i][0], props[i][1]);
  gchar *text = start_error(e, bus, what);
  CHECK(!needle1 || strstr(text, needle1), "%s: error '%s' does not name '%s'", what, text,
        needle1);
  CHECK(!needle2 || strcasestr(text, needle2), "%s: error '%s' does not say '%s'", what, text,
        needle2);
  g_free(text);
  gst_object_unref(e);
  gst_object_unref(bus);
}

/* Copies `src` to `dst` with the first `from` in the header replaced by `to` (same length). */
static void patch_header(const char *src, const char *dst, const char *from, const char *to) {
  gchar *bytes;
  gsize size;
  if (!g_file_get_contents(src, &bytes, &size, NULL)) gtu_fatal("cannot read %s", src);
  gchar *hit =
      memmem(bytes, MIN(size, 100000), from, strlen(from)); /* the size prefix holds NULs */
  if (!hit || strlen(from) != strlen(to)) gtu_fatal("%s: '%s' not in the header", src, from);
  memcpy(hit, to, strlen(to));
  if (!g_file_set_contents(dst, bytes, (gssize)size, NULL)) gtu_fatal("cannot write %s", dst);
  g_free(bytes);
}

static void test_checkpoints(const char *model) {
  expect_failure("no model", NULL, NULL, "model", NULL);
  expect_failure("missing file", "/nonexistent/folder/model.safetensors", NULL,
                 "/nonexistent/folder/model.safetensors", NULL);

  gchar *garbage = gtu_path("garbage.safetensors");
  g_file_set_contents(garbage, "this is not a safetensors file at all, just text\n", -1, NULL);
  expect_failure("corrupt file", garbage, NULL, garbage, NULL);

  gchar *bytes;
  gsize size;
  g_file_get_contents(model, &bytes, &size, NULL);
  gchar *truncated = gtu_path("truncated.safetensors");
  g_file_set_contents(truncated, bytes, (gssize)(size / 2), NULL);
  expect_failure("truncated file", truncated, NULL, truncated, NULL);
  g_free(bytes);

  /* a ResNet-18's tensors labelled as a ResNet-50; and an architecture we do not know */
  gchar *wrong = gtu_path("wrong-arch.safetensors"),
        *unknown = gtu_path("unknown-arch.safetensors");
  patch_header(model, wrong, "\"arch\":\"resnet18\"", "\"arch\":\"resnet50\"");
  patch_header(model, unknown, "\"arch\":\"resnet18\"", "\"arch\":\"vgg16_bn\"");
  expect_failure("wrong architecture", wrong, NULL, wrong, NULL);
  expect_failure("unknown architecture", unknown, NULL, unknown, "vgg16_bn");
  g_free(garbage);
  g_free(truncated);
  g_free(wrong);
  g_free(unknown);
}

static void test_device_and_outputs(const char *model) {
  /* device=cuda: fails with the library's message where there is no CUDA */
  GstBus *bus;
  GstElement *e = gtu_reidembed(model, &bus);
  gst_util_set_object_arg(G_OBJECT(e), "device", "cuda");
  GstStateChangeReturn r = gst_element_set_state(e, GST_STATE_PAUSED);
  if (r == GST_STATE_CHANGE_FAILURE) {
    gchar *text = gtu_error_text(bus);
    fprintf(stderr, "device=cuda -> %s\n", text);
    CHECK(text && strcasestr(text, "cuda"), "device=cuda: the error must say CUDA: %s", text);
    g_free(text);
  } else {
    fprintf(stderr, "device=cuda started: this machine has a usable GPU\n");
  }
  gst_element_set_state(e, GST_STATE_NULL);
  gst_object_unref(e);
  gst_object_unref(bus);

  const char *fp16[][2] = {{"device", "cpu"}, {"precision", "fp16"}, {NULL, NULL}};
  expect_failure("fp16 on the CPU", model, fp16, NULL, "fp16");
  /* int8: the model and the precision must agree */
  const char *int8[][2] = {{"device", "cpu"}, {"precision", "int8"}, {NULL, NULL}};
  expect_failure("int8 with a float model", model, int8, "reid-train quantize", "not one");
  gchar *quantized = gtu_model_int8(model, "int8.safetensors");
  expect_failure("an int8 model at fp32", quantized, NULL, "quantized to int8", "fp32");
  GstElement *q8 = gtu_reidembed(quantized, &bus);
  gst_util_set_object_arg(G_OBJECT(q8), "device", "cpu");
  gst_util_set_object_arg(G_OBJECT(q8), "precision", "int8");
  CHECK(gst_element_set_state(q8, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE,
        "precision=int8 with a quantized model starts");
  gst_element_set_state(q8, GST_STATE_NULL);
  gst_object_unref(q8);
  gst_object_unref(bus);
  g_free(quantized);
  const char *jsonl[][2] = {{"tracklet-location", "/nonexistent/dir/t.jsonl"}, {NULL, NULL}};
  expect_failure("unwritable tracklet-location", model, jsonl, "/nonexistent/dir/t.jsonl", NULL);
  const char *queries[][2] = {{"query-location", "/nonexistent/queries"}, {NULL, NULL}};
  expect_failure("missing query-location", model, queries, "/nonexistent/queries", NULL);

  gchar *empty = gtu_path("empty-queries");
  g_mkdir_with_parents(empty, 0755);
  const char *empty_q[][2] = {{"query-location", empty}, {NULL, NULL}};
  expect_failure("query folder without images", model, empty_q, empty, "no image");
  gchar *bad = gtu_path("bad-queries"), *bad_jpg = NULL;
  g_mkdir_with_parents(bad, 0755);
  bad_jpg = g_build_filename(bad, "broken.jpg", NULL);
  g_file_set_contents(bad_jpg, "\xff\xd8\xff\xe0 not really a jpeg", -1, NULL);
  const char *bad_q[][2] = {{"query-location", bad}, {NULL, NULL}};
  expect_failure("undecodable query image", model, bad_q, "broken.jpg", NULL);
  g_free(empty);
  g_free(bad);
  g_free(bad_jpg);
}

static void test_recovers(const char *model) {
  GstBus *bus;
  GstElement *e = gtu_reidembed("/nonexistent.safetensors", &bus);
  g_free(start_error(e, bus, "before the fix"));
  g_object_set(e, "model", model, NULL);
  CHECK(gst_element_set_state(e, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE,
        "starts after the fix");
  gst_element_set_state(e, GST_STATE_NULL);
  gst_object_unref(e);
  gst_object_unref(bus);
}

static void test_attachroi_errors(void) {
  gchar *mot = gtu_path("bad.mot");
  g_file_set_contents(mot, "1,1,10,10,20,40,1,1,1\n2,1,12,10,20,40,1,1,1\n3,1,abc,10,20,40,1,1,1\n",
                      -1, NULL);
  gchar *line = g_strdup_printf("%s:3:", mot);
  const struct {
    const char *location, *needle;
  } cases[] = {{mot, line}, {"/nonexistent/gt.txt", "/nonexistent/gt.txt"}, {NULL, "location"}};
  for (int i = 0; i < 3; i++) {
    GstElement *e = gst_element_factory_make("reidattachroi", NULL);
    GstBus *bus = gst_bus_new();
    gst_element_set_bus(e, bus);
    if (cases[i].location) g_object_set(e, "location", cases[i].location, NULL);
    gchar *text = start_error(e, bus, "reidattachroi");
    CHECK(strstr(text, cases[i].needle), "reidattachroi: '%s' does not name '%s'", text,
          cases[i].needle);
    g_free(text);
    gst_object_unref(e);
    gst_object_unref(bus);
  }
  g_free(line);
  g_free(mot);
}

static void test_properties(void) {
  GstBus *bus;
  GstElement *e = gtu_reidembed(NULL, &bus);
  /* defaults */
  gchar *model = NULL, *classes = NULL;
  gint batch = 0, timeout = 0, interval = 0, min_size = -1, gpu = -1;
  gdouble threshold = 0;
  gboolean message = FALSE;
  g_object_get(e, "model", &model, "batch-size", &batch, "track-timeout", &timeout,
               "inference-interval", &interval, "min-size", &min_size, "gpu-id", &gpu,
               "match-threshold", &threshold, "message", &message, "object-class", &classes, NULL);
  CHECK(model == NULL && batch == 16 && timeout == 30 && interval == 1 && min_size == 0 &&
            gpu == 0 && fabs(threshold - 0.7) < 1e-12 && message && classes && !*classes,
        "defaults");
  g_free(model);
  g_free(classes);
  /* every property reads back what was set */
  const char *set[][2] = {{"model", "/x/m.safetensors"},
                          {"device", "cpu"},
                          {"gpu-id", "3"},
                          {"batch-size", "7"},
                          {"precision", "bf16"},
                          {"inference-interval", "4"},
                          {"object-class", "person,car"},
                          {"min-size", "12"},
                          {"track-timeout", "9"},
                          {"tracklet-location", "/tmp/t.jsonl"},
                          {"query-location", "/tmp/q"},
                          {"match-threshold", "0.25"},
                          {"message", "false"},
                          {"stream-name", "cam1"}};
  for (size_t i = 0; i < sizeof set / sizeof set[0]; i++) {
    gst_util_set_object_arg(G_OBJECT(e), set[i][0], set[i][1]);
    GValue v = G_VALUE_INIT;
    GParamSpec *spec = g_object_class_find_property(G_OBJECT_GET_CLASS(e), set[i][0]);
    g_value_init(&v, spec->value_type);
    g_object_get_property(G_OBJECT(e), set[i][0], &v);
    gchar *back = G_VALUE_HOLDS_STRING(&v) ? g_value_dup_string(&v) : gst_value_serialize(&v);
    GValue want = G_VALUE_INIT;
    g_value_init(&want, spec->value_type);
    gst_value_deserialize(&want, set[i][1]);
    CHECK(gst_value_compare(&v, &want) == GST_VALUE_EQUAL, "%s: set %s, read back %s", set[i][0],
          set[i][1], back);
    g_value_unset(&want);
    g_value_unset(&v);
    g_free(back);
  }
  /* invalid values: rejected with a warning, the old value kept */
  guint handler = g_log_set_handler("GLib-GObject", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL,
                                    gtu_count_warning, &warnings);
  gst_util_set_object_arg(G_OBJECT(e), "device",
                          "gpu"); /* not an enum nick: GStreamer refuses it */
  gst_util_set_object_arg(G_OBJECT(e), "precision", "int4");
  g_object_set(e, "batch-size", 0, NULL); /* out of range: GLib warns */
  g_object_set(e, "match-threshold", 1.5, NULL);
  g_log_remove_handler("GLib-GObject", handler);
  gchar *device = NULL, *precision = NULL;
  GValue v = G_VALUE_INIT;
  g_value_init(&v, g_object_class_find_property(G_OBJECT_GET_CLASS(e), "device")->value_type);
  g_object_get_property(G_OBJECT(e), "device", &v);
  device = gst_value_serialize(&v);
  g_value_unset(&v);
  g_value_init(&v, g_object_class_find_property(G_OBJECT_GET_CLASS(e), "precision")->value_type);
  g_object_get_property(G_OBJECT(e), "precision", &v);
  precision = gst_value_serialize(&v);
  g_value_unset(&v);
  g_object_get(e, "batch-size", &batch, "match-threshold", &threshold, NULL);
  CHECK(!g_strcmp0(device, "cpu") && !g_strcmp0(precision, "bf16"), "bad enums keep %s / %s",
        device, precision);
  CHECK(batch == 7 && fabs(threshold - 0.25) < 1e-12, "out-of-range values keep %d / %g", batch,
        threshold);
  CHECK(warnings == 2, "%d GLib warnings for the two out-of-range values", warnings);
  g_free(device);
  g_free(precision);
  gst_object_unref(e);
  gst_object_unref(bus);
}

int main(int argc, char **argv) {
  gtu_init(argc, argv, "errors");
  gchar *model = gtu_model("resnet18", 64, 32, 1);
  test_checkpoints(model);
  test_device_and_outputs(model);
  test_recovers(model);
  test_attachroi_errors();
  test_properties();
  g_free(model);
  return gtu_finish("test_reidembed_errors");
}
