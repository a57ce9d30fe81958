/* Two pipelines, each `appsrc ! reidattachroi ! reidembed ! fakesink` with
 * its own element (own engine), run at the same time in two threads: each
 * gives the tracklets it gives when run alone, and each writes its own JSON
 * lines. */
#include <gst/app/gstappsrc.h>

#include "gst_test_util.h"

#define W          160
#define H          120
#define FRAMES     20
#define DIM        512
#define MAX_TRACKS 8

typedef struct job {
  const char *model, *mot;
  gchar *jsonl;
  const guint8 *rgb;
  const char *name;
  /* results */
  int n_tracks, ok;
  gint64 ids[MAX_TRACKS];
  float emb[MAX_TRACKS][DIM];
} job;

static gpointer run_pipeline(gpointer data) {
  job *j = data;
  gchar *desc = g_strdup_printf(
      "appsrc name=src format=time ! reidattachroi location=\"%s\" ! "
      "reidembed model=\"%s\" stream-name=%s tracklet-location=\"%s\" track-timeout=5 ! "
      "fakesink sync=false",
      j->mot, j->model, j->name, j->jsonl);
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch(desc, &error);
  g_free(desc);
  if (!pipeline) {
    fprintf(stderr, "%s: %s\n", j->name, error->message);
    g_error_free(error);
    return NULL;
  }
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
  GstCaps *caps = gtu_caps(GST_VIDEO_FORMAT_NV12, W, H);
  g_object_set(src, "caps", caps, NULL);
  gst_caps_unref(caps);
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  for (int f = 0; f < FRAMES; f++)
    gst_app_src_push_buffer(GST_APP_SRC(src), gtu_buffer(GST_VIDEO_FORMAT_NV12, W, H, j->rgb, f));
  gst_app_src_end_of_stream(GST_APP_SRC(src));
  j->ok = 0;
  for (;;) {
    GstMessage *m = gst_bus_timed_pop_filtered(
        bus, 120 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_ELEMENT);
    if (!m) break; /* timeout */
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ELEMENT) {
      const GstStructure *s = gst_message_get_structure(m);
      if (gst_structure_has_name(s, "reid-tracklet") && j->n_tracks < MAX_TRACKS) {
        gst_structure_get_int64(s, "track-id", &j->ids[j->n_tracks]);
        if (gtu_message_embedding(s, j->emb[j->n_tracks], DIM) == DIM) j->n_tracks++;
      }
      gst_message_unref(m);
      continue;
    }
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
      GError *err = NULL;
      gst_message_parse_error(m, &err, NULL);
      fprintf(stderr, "%s: error: %s\n", j->name, err->message);
      g_error_free(err);
    } else {
      j->ok = 1;
    }
    gst_message_unref(m);
    break;
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(src);
  gst_object_unref(pipeline);
  return NULL;
}

static void compare(const job *alone, const job *together) {
  CHECK(together->ok && alone->ok, "%s: both runs reach EOS", together->name);
  CHECK(together->n_tracks == alone->n_tracks && alone->n_tracks == 3, "%s: %d vs %d tracklets",
        together->name, together->n_tracks, alone->n_tracks);
  for (int i = 0; i < together->n_tracks && i < alone->n_tracks; i++) {
    CHECK(together->ids[i] == alone->ids[i], "%s: track order", together->name);
    double c = gtu_cosine(together->emb[i], alone->emb[i], DIM);
    CHECK(c > 0.99999, "%s: track %" G_GINT64_FORMAT ": cosine %.7f to the lone run",
          together->name, together->ids[i], c);
  }
}

static int count_lines(const char *path) {
  gchar *text = gtu_read_file(path);
  int n = 0;
  for (const char *p = text; p && *p; p++) n += *p == '\n';
  g_free(text);
  return n;
}

int main(int argc, char **argv) {
  gtu_init(argc, argv, "threads");
  gchar *model = gtu_model("resnet18", 64, 32, 1);
  gchar *mot = gtu_path("three.mot");
  /* track 1 in frames 1-8, track 2 in 1-20 (moving), track 3 in 10-20 */
  GString *rows = g_string_new("# frame, id, x, y, w, h, conf, class, visibility\n");
  for (int f = 1; f <= FRAMES; f++) {
    if (f <= 8) g_string_append_printf(rows, "%d,1,10,10,40,80,1,1,1\n", f);
    g_string_append_printf(rows, "%d,2,%d,20,40,80,1,1,1\n", f, 50 + 2 * f);
    if (f >= 10) g_string_append_printf(rows, "%d,3,100,30,50,85,1,1,1\n", f);
  }
  g_file_set_contents(mot, rows->str, -1, NULL);
  g_string_free(rows, TRUE);
  guint8 *rgb_a = gtu_picture(W, H, 3), *rgb_b = gtu_picture(W, H, 9);
  job alone[2] = {
      {.model = model, .mot = mot, .rgb = rgb_a, .name = "a", .jsonl = gtu_path("alone-a.jsonl")},
      {.model = model, .mot = mot, .rgb = rgb_b, .name = "b", .jsonl = gtu_path("alone-b.jsonl")}};
  job together[2] = {alone[0], alone[1]};
  together[0].jsonl = gtu_path("together-a.jsonl");
  together[1].jsonl = gtu_path("together-b.jsonl");
  for (int i = 0; i < 2; i++) {
    g_unlink(alone[i].jsonl);
    g_unlink(together[i].jsonl);
    run_pipeline(&alone[i]);
  }
  GThread *threads[2];
  for (int i = 0; i < 2; i++) threads[i] = g_thread_new("pipeline", run_pipeline, &together[i]);
  for (int i = 0; i < 2; i++) g_thread_join(threads[i]);
  for (int i = 0; i < 2; i++) {
    compare(&alone[i], &together[i]);
    CHECK(count_lines(together[i].jsonl) == 3, "%s: 3 JSON lines", together[i].name);
  }
  /* the two pictures differ, and so do their tracklets */
  CHECK(gtu_cosine(together[0].emb[0], together[1].emb[0], DIM) < 0.99999,
        "no cross-talk between the pipelines");
  for (int i = 0; i < 2; i++) {
    g_free(alone[i].jsonl);
    g_free(together[i].jsonl);
  }
  g_free(rgb_a);
  g_free(rgb_b);
  g_free(mot);
  g_free(model);
  return gtu_finish("test_reidembed_threads");
}
