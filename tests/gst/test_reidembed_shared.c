/* reidembed model-instance-id: four streams (harnesses in four threads) share
 * one model instance, and their crops are batched together.
 *  - every frame of every stream gets, on each of its ROI metas in order, the
 *    embedding that an element with an engine of its own gives it;
 *  - one of the four streams goes through 100 start/stop cycles (a frame
 *    each time) while the other three keep streaming;
 *  - a frame waiting for a batch that cannot fill (huge max-batch-latency)
 *    returns at once when its element is stopped or flushed, and another
 *    stream's EOS does not wait for it;
 *  - elements that name the same instance with another model or precision
 *    fail at start with a message that says so. */
#include "gst_test_util.h"

#define W       160
#define H       120
#define DIM     512
#define BOXES   3
#define FRAMES  6
#define STREAMS 4
#define CYCLES  100

static gchar *model;
static guint8 *pictures[STREAMS];
static float expected[STREAMS][FRAMES][BOXES][DIM];

static GstBuffer *frame_of(int stream, int f) {
  GstBuffer *b = gtu_buffer(GST_VIDEO_FORMAT_NV12, W, H, pictures[stream], f);
  for (int i = 0; i < BOXES; i++)
    gtu_add_box(b, "person", 5 + 45 * i + f, 10 + 7 * i, 30 + 4 * i, 60 + 5 * stream, i);
  return b;
}

static GstElement *shared_element(GstBus **bus, const char *instance, int latency_ms) {
  GstElement *e = gtu_reidembed(model, bus);
  g_object_set(e, "model-instance-id", instance, "batch-size", 8, "max-batch-latency", latency_ms,
               NULL);
  return e;
}

/* Pushes frame f of `stream` and checks each ROI's embedding; returns the failures. */
static int push_and_check(GstHarness *h, int stream, int f) {
  if (gst_harness_push(h, frame_of(stream, f)) != GST_FLOW_OK) return 1;
  GstBuffer *out = gst_harness_pull(h);
  int bad = !out || gtu_roi_count(out) != BOXES;
  for (int i = 0; i < BOXES && !bad; i++) {
    float v[DIM];
    bad = gtu_embedding(out, i, "reid-embedding", v, DIM) != DIM ||
          gtu_cosine(v, expected[stream][f][i], DIM) < 0.99999;
  }
  if (out) gst_buffer_unref(out);
  return bad;
}

typedef struct streamer {
  int stream, frames_done, failures;
  volatile gint *stop; /* NULL: FRAMES frames, then EOS */
} streamer;

static gpointer run_stream(gpointer data) {
  streamer *s = data;
  GstBus *bus;
  GstElement *e = shared_element(&bus, "cams", 20);
  GstHarness *h = gtu_harness(e, GST_VIDEO_FORMAT_NV12, W, H);
  for (int f = 0; s->stop ? !g_atomic_int_get(s->stop) : f < FRAMES; f++) {
    s->failures += push_and_check(h, s->stream, f % FRAMES);
    s->frames_done++;
  }
  gst_harness_push_event(h, gst_event_new_eos());
  gst_harness_teardown(h);
  gst_object_unref(e);
  gst_object_unref(bus);
  return NULL;
}

static void reference(void) {
  GstBus *bus;
  GstElement *e = gtu_reidembed(model, &bus);
  GstHarness *h = gtu_harness(e, GST_VIDEO_FORMAT_NV12, W, H);
  for (int s = 0; s < STREAMS; s++)
    for (int f = 0; f < FRAMES; f++) {
      gst_harness_push(h, frame_of(s, f));
      GstBuffer *out = gst_harness_pull(h);
      for (int i = 0; i < BOXES; i++)
        if (gtu_embedding(out, i, "reid-embedding", expected[s][f][i], DIM) != DIM)
          gtu_fatal("reference embedding %d/%d/%d missing", s, f, i);
      gst_buffer_unref(out);
    }
  gst_harness_teardown(h);
  gst_object_unref(e);
  gst_object_unref(bus);
}

static void test_streams_together(void) {
  streamer s[STREAMS];
  GThread *threads[STREAMS];
  for (int i = 0; i < STREAMS; i++) {
    s[i] = (streamer){.stream = i};
    threads[i] = g_thread_new("stream", run_stream, &s[i]);
  }
  for (int i = 0; i < STREAMS; i++) {
    g_thread_join(threads[i]);
    CHECK(s[i].frames_done == FRAMES && s[i].failures == 0,
          "stream %d: %d frames, %d differ from an engine of its own", i, s[i].frames_done,
          s[i].failures);
  }
}

/* Stream 0 starts and stops CYCLES times while streams 1-3 keep running. */
static void test_cycles_while_others_run(void) {
  volatile gint stop = 0;
  streamer s[STREAMS];
  GThread *threads[STREAMS];
  for (int i = 1; i < STREAMS; i++) {
    s[i] = (streamer){.stream = i, .stop = &stop};
    threads[i] = g_thread_new("stream", run_stream, &s[i]);
  }
  int failures = 0;
  gint64 t0 = g_get_monotonic_time();
  for (int cycle = 0; cycle < CYCLES; cycle++) {
    GstBus *bus;
    GstElement *e = shared_element(&bus, "cams", 20);
    GstHarness *h = gtu_harness(e, GST_VIDEO_FORMAT_NV12, W, H);
    failures += push_and_check(h, 0, cycle % FRAMES);
    if (cycle % 2) gst_harness_push_event(h, gst_event_new_eos());
    gst_harness_teardown(h);
    gst_object_unref(e);
    gst_object_unref(bus);
  }
  double seconds = (g_get_monotonic_time() - t0) / 1e6;
  g_atomic_int_set(&stop, 1);
  for (int i = 1; i < STREAMS; i++) {
    g_thread_join(threads[i]);
    CHECK(s[i].failures == 0 && s[i].frames_done > 0, "stream %d: %d of %d frames differ", i,
          s[i].failures, s[i].frames_done);
  }
  CHECK(failures == 0, "cycling stream: %d of %d frames differ", failures, CYCLES);
  printf("# %d start/stop cycles in %.2f s while 3 streams ran %d, %d, %d frames\n", CYCLES,
         seconds, s[1].frames_done, s[2].frames_done, s[3].frames_done);
}

typedef struct pusher {
  GstHarness *h;
  GstFlowReturn ret;
} pusher;

static gpointer push_one(gpointer data) {
  pusher *p = data;
  p->ret = gst_harness_push(p->h, frame_of(0, 0));
  return NULL;
}

/* A frame that waits for a batch (batch-size 8, latency 10 s, the other
 * client idle) must not hold up its element's stop or flush, nor the other's EOS. */
static void test_no_waiting_on_others(gboolean by_flush) {
  GstBus *bus_a, *bus_b;
  GstElement *a = shared_element(&bus_a, "waiting", 10000);
  GstElement *b = shared_element(&bus_b, "waiting", 10000);
  GstHarness *ha = gtu_harness(a, GST_VIDEO_FORMAT_NV12, W, H);
  GstHarness *hb = gtu_harness(b, GST_VIDEO_FORMAT_NV12, W, H);
  pusher p = {ha, GST_FLOW_OK};
  GThread *t = g_thread_new("push", push_one, &p);
  g_usleep(300 * 1000); /* the frame is queued and waits */
  gint64 t0 = g_get_monotonic_time();
  CHECK(gst_harness_push_event(hb, gst_event_new_eos()), "the other stream's EOS");
  double eos_s = (g_get_monotonic_time() - t0) / 1e6;
  if (by_flush)
    gst_harness_push_event(ha, gst_event_new_flush_start());
  else
    gst_element_set_state(a, GST_STATE_READY);
  g_thread_join(t);
  double s = (g_get_monotonic_time() - t0) / 1e6;
  CHECK(eos_s < 1.0 && s < 2.0 && p.ret == GST_FLOW_FLUSHING,
        "%s: waiting frame returned %s after %.2f s (EOS of the other after %.2f s)",
        by_flush ? "flush" : "stop", gst_flow_get_name(p.ret), s, eos_s);
  if (by_flush) { /* the element streams again after the flush */
    gst_harness_push_event(ha, gst_event_new_flush_stop(TRUE));
    gst_harness_set_src_caps(ha, gtu_caps(GST_VIDEO_FORMAT_NV12, W, H));
    gst_harness_teardown(hb); /* a is the only client left: its frames run at once */
    gst_object_unref(b);
    hb = NULL;
    CHECK(push_and_check(ha, 0, 0) == 0, "after flush-stop the stream is embedded again");
  }
  gst_harness_teardown(ha);
  if (hb) {
    gst_harness_teardown(hb);
    gst_object_unref(b);
  }
  gst_object_unref(a);
  gst_object_unref(bus_a);
  gst_object_unref(bus_b);
}

static void test_mismatch(void) {
  gchar *other = gtu_model("resnet18", 64, 32, 2);
  GstBus *bus_a, *bus_b;
  GstElement *a = shared_element(&bus_a, "strict", 10);
  GstElement *b = shared_element(&bus_b, "strict", 10);
  g_object_set(b, "model", other, NULL);
  CHECK(gst_element_set_state(a, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE, "first starts");
  CHECK(gst_element_set_state(b, GST_STATE_PAUSED) == GST_STATE_CHANGE_FAILURE,
        "another model under the same id fails");
  gchar *text = gtu_error_text(bus_b);
  CHECK(text && strstr(text, "model-instance-id 'strict' is open with model"), "error: %s",
        text ? text : "(none)");
  g_free(text);
  gst_element_set_state(b, GST_STATE_NULL);
  g_object_set(b, "model", model, "batch-size", 4, NULL);
  CHECK(gst_element_set_state(b, GST_STATE_PAUSED) == GST_STATE_CHANGE_FAILURE,
        "another batch-size fails");
  text = gtu_error_text(bus_b);
  CHECK(text && strstr(text, "batch-size 8, not 4"), "error: %s", text ? text : "(none)");
  g_free(text);
  gst_element_set_state(b, GST_STATE_NULL);
  gst_element_set_state(a, GST_STATE_NULL);
  gst_object_unref(a);
  gst_object_unref(b);
  gst_object_unref(bus_a);
  gst_object_unref(bus_b);
  g_free(other);
}

int main(int argc, char **argv) {
  gtu_init(argc, argv, "shared");
  model = gtu_model("resnet18", 64, 32, 1);
  for (int s = 0; s < STREAMS; s++) pictures[s] = gtu_picture(W, H, 11 + s);
  reference();
  test_streams_together();
  test_cycles_while_others_run();
  test_no_waiting_on_others(FALSE);
  test_no_waiting_on_others(TRUE);
  test_mismatch();
  for (int s = 0; s < STREAMS; s++) g_free(pictures[s]);
  g_free(model);
  return gtu_finish("test_reidembed_shared");
}
