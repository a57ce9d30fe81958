/* 100 state cycles of one reidembed (model and JSON-lines file loaded and
 * released each time; every tenth cycle also loads a watchlist, streams a
 * frame through a harness and ends its track, which posts a tracklet and a
 * match): no file descriptor and no heap memory may be left behind. Under
 * ASan (CI) LeakSanitizer checks the rest. Most of the time goes into
 * loading the model 100 times. */

#include "gst_test_util.h"

#define W      96
#define H      96
#define CYCLES 100

int main(int argc, char **argv) {
  gtu_init(argc, argv, "cycles");
  gchar *model = gtu_model("resnet18", 64, 32, 1);
  guint8 *rgb = gtu_picture(W, H, 2);
  gchar *queries = gtu_path("queries"), *jsonl = gtu_path("cycles.jsonl");
  g_mkdir_with_parents(queries, 0755);
  gchar *query = g_build_filename(queries, "q.ppm", NULL);
  gtu_write_ppm(query, rgb, W, 10, 10, 30, 60);
  g_unlink(jsonl);

  GstBus *bus;
  GstElement *e = gtu_reidembed(model, &bus);
  g_object_set(e, "tracklet-location", jsonl, "match-threshold", -1.0, NULL);
  int fds0 = 0, tracklets = 0;
  size_t heap0 = 0;
  gint64 t0 = g_get_monotonic_time();
  for (int cycle = 0; cycle < CYCLES; cycle++) {
    const gboolean stream = cycle % 10 == 9;
    g_object_set(e, "query-location", stream ? queries : NULL, NULL);
    if (stream) { /* watchlist, engine plans, tracks, messages, JSON lines */
      GstHarness *h = gtu_harness(e, GST_VIDEO_FORMAT_NV12, W, H);
      GstBuffer *in = gtu_buffer(GST_VIDEO_FORMAT_NV12, W, H, rgb, 0);
      gtu_add_box(in, "person", 10, 10, 30, 60, cycle);
      CHECK(gst_harness_push(h, in) == GST_FLOW_OK, "cycle %d: push", cycle);
      GstBuffer *out = gst_harness_pull(h);
      float v[512];
      CHECK(out && gtu_embedding(out, 0, "reid-embedding", v, 512) == 512, "cycle %d: embedding",
            cycle);
      if (out) gst_buffer_unref(out);
      gst_harness_push_event(h, gst_event_new_eos());
      gst_harness_teardown(h);
    } else {
      CHECK(gst_element_set_state(e, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE,
            "cycle %d: start", cycle);
      CHECK(gst_element_set_state(e, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS, "cycle %d: stop",
            cycle);
    }
    GPtrArray *all = gtu_messages(bus), *t = gtu_select(all, "reid-tracklet");
    tracklets += (int)t->len;
    g_ptr_array_unref(t);
    g_ptr_array_unref(all);
    gst_bus_set_flushing(bus, TRUE); /* drop state-change messages */
    gst_bus_set_flushing(bus, FALSE);
    if (cycle == 19) { /* after warm-up: GStreamer's and oneDNN's one-time caches are filled */
      fds0 = gtu_open_fds();
      heap0 = gtu_heap_in_use();
    }
  }
  double seconds = (g_get_monotonic_time() - t0) / 1e6;
  int fds1 = gtu_open_fds();
  size_t heap1 = gtu_heap_in_use();
  fprintf(stderr, "%d cycles in %.1f s; fds %d -> %d; heap in use %.2f -> %.2f MB\n", CYCLES,
          seconds, fds0, fds1, heap0 / 1e6, heap1 / 1e6);
  CHECK(fds1 == fds0, "file descriptors leaked: %d -> %d", fds0, fds1);
  CHECK(heap1 < heap0 + (1 << 20), "heap grew by %.2f MB over 80 cycles",
        ((double)heap1 - (double)heap0) / 1e6);
  CHECK(tracklets == CYCLES / 10, "%d tracklets for %d streamed cycles", tracklets, CYCLES / 10);
  gchar *text = gtu_read_file(jsonl);
  int lines = 0;
  for (const char *p = text; p && *p; p++) lines += *p == '\n';
  CHECK(lines == 2 * CYCLES / 10, "%d JSON lines (a tracklet and a match per streamed cycle)",
        lines);
  g_free(text);
  gst_object_unref(e);
  gst_object_unref(bus);
  g_free(query);
  g_free(queries);
  g_free(jsonl);
  g_free(rgb);
  g_free(model);
  return gtu_finish("test_reidembed_cycles");
}
