/* reidembed under faults (README "Reliability"), with GST_DEBUG=*:2 (so every
 * warning and error the element or GStreamer logs is formatted and printed):
 *
 *   extremes   frames of 1x1 and 8192x8192; 500 boxes a frame whose coordinates
 *              include INT32_MIN/MAX, -1 (0xffffffff: the "NaN" of unsigned ROI
 *              fields), zero and enormous sizes; reidattachroi reading a MOT file
 *              with 1e30 and -1e30 boxes: nothing crashes, every frame comes out,
 *              every embedding that is made has unit norm.
 *   errors     every start error of reidembed (no model, missing, corrupt,
 *              truncated checkpoint, fp16 on the CPU, unwritable tracklet, gallery
 *              and collect locations, missing or image-less watchlist, broken
 *              query image, corrupt or unwritable gallery), each in 3 x 2 state
 *              cycles (twice on one element, on 3 fresh ones): open file descriptors and heap in
 * use do not grow (LeakSanitizer checks the rest in the ASan build). swap       the model file
 * replaced (atomically, by reid-train's writer) between starts while a pipeline restarts 20 times:
 * every start loads one of the two whole models, never a mix or a failure.
 *
 *   test_reidembed_faults --reid-train ... (tests/faults/meson.build) */
#include <limits.h>

#include "checkpoint.h"
#include "fileio.h"
#include "gst_test_util.h"

#define DIM    512
#define ROUNDS 3

/* Pushes `frames` frames of w x h (format) with the boxes made by `boxes`; checks that every
 * frame comes out and every embedding is unit length; returns the embeddings seen. */
typedef int (*box_fn)(GstBuffer *buf, int frame, int w, int h);

static int run_frames(const char *model, GstVideoFormat format, int w, int h, int frames,
                      box_fn boxes, const char *what) {
  GstBus *bus;
  GstElement *e = gtu_reidembed(model, &bus);
  g_object_set(e, "batch-size", 32, NULL);
  GstHarness *hr = gtu_harness(e, format, w, h);
  guint8 *rgb = gtu_picture(w, h, 3);
  int embedded = 0;
  float emb[DIM];
  for (int f = 0; f < frames; f++) {
    GstBuffer *in = gtu_buffer(format, w, h, rgb, f);
    int n = boxes(in, f, w, h);
    GstFlowReturn ret = gst_harness_push(hr, in);
    CHECK(ret == GST_FLOW_OK, "%s: frame %d: %s", what, f, gst_flow_get_name(ret));
    GstBuffer *out = gst_harness_try_pull(hr);
    CHECK(out != NULL, "%s: frame %d did not come out", what, f);
    for (int i = 0; out && i < n; i++) {
      if (gtu_embedding(out, i, "reid-embedding", emb, DIM) != DIM) continue;
      double ss = 0;
      for (int j = 0; j < DIM; j++) ss += (double)emb[j] * emb[j];
      CHECK(fabs(ss - 1) < 1e-3, "%s: frame %d box %d: |e|^2 = %g", what, f, i, ss);
      embedded++;
    }
    if (out) gst_buffer_unref(out);
  }
  gst_harness_teardown(hr);
  gst_object_unref(e);
  gchar *err = gtu_error_text(bus);
  CHECK(err == NULL, "%s: error %s", what, err);
  g_free(err);
  gst_object_unref(bus);
  g_free(rgb);
  fprintf(stderr, "%s: %d frames, %d embeddings\n", what, frames, embedded);
  return embedded;
}

static int tiny_boxes(GstBuffer *b, int f, int w, int h) {
  (void)f, (void)w, (void)h;
  gtu_add_box(b, "person", 0, 0, 1, 1, 1);
  gtu_add_box(b, "person", -1, -1, 3, 3, 2);
  gtu_add_box(b, "person", 0, 0, 0, 0, 3);
  gtu_add_box(b, "person", INT_MAX, INT_MAX, INT_MAX, INT_MAX, 4);
  return 4;
}

/* 500 boxes: a third ordinary, the rest with extreme fields. */
static int extreme_boxes(GstBuffer *b, int f, int w, int h) {
  static const int odd[] = {INT_MIN, INT_MIN + 1, -1, 0, 1, INT_MAX - 1, INT_MAX};
  test_rng rng = test_rng_make(100 + (uint64_t)f);
  for (int i = 0; i < 500; i++) {
    int x, y, bw, bh;
    if (i % 3 == 0) {
      x = test_rng_int(&rng, -20, w - 1), y = test_rng_int(&rng, -20, h - 1);
      bw = test_rng_int(&rng, 1, w / 4 + 2), bh = test_rng_int(&rng, 1, h / 3 + 2);
    } else {
      x = odd[test_rng_int(&rng, 0, 6)], y = odd[test_rng_int(&rng, 0, 6)];
      bw = odd[test_rng_int(&rng, 0, 6)], bh = odd[test_rng_int(&rng, 0, 6)];
      if (i % 3 == 2) x = test_rng_int(&rng, 0, w - 1), bw = INT_MAX; /* huge, inside */
    }
    gtu_add_box(b, "person", x, y, bw, bh, i % 7 == 0 ? -1 : i);
  }
  return 500;
}

static int full_frame_box(GstBuffer *b, int f, int w, int h) {
  (void)f;
  gtu_add_box(b, "person", 0, 0, w, h, 1);
  gtu_add_box(b, "person", w - 1, h - 1, 1, 1, 2);
  gtu_add_box(b, "person", w / 2, h / 2, INT_MAX, INT_MAX, 3);
  return 3;
}

static void test_extremes(const char *model) {
  run_frames(model, GST_VIDEO_FORMAT_RGB, 1, 1, 3, tiny_boxes, "1x1 RGB");
  run_frames(model, GST_VIDEO_FORMAT_NV12, 2, 2, 3, tiny_boxes, "2x2 NV12");
  int n = run_frames(model, GST_VIDEO_FORMAT_RGBA, 320, 240, 3, extreme_boxes, "500 extreme boxes");
  CHECK(n > 300, "500 extreme boxes: only %d embeddings in 3 frames", n);
  n = run_frames(model, GST_VIDEO_FORMAT_NV12, 8192, 8192, 1, full_frame_box, "8192x8192 NV12");
  CHECK(n >= 2, "8192x8192: %d embeddings", n);

  /* reidattachroi with enormous MOT boxes, then reidembed */
  gchar *mot = gtu_path("extreme.mot");
  g_file_set_contents(mot,
                      "1,1,1e30,1e30,1e30,1e30,1,1,1\n1,2,-1e30,-1e30,2e30,2e30,1,1,1\n"
                      "1,3,-3.4e38,0,3.4e38,3.4e38,1,1,1\n1,4,0.4,0.4,0.2,0.2,1,1,1\n"
                      "2,5,2147483647,2147483647,-2147483648,5,1,1,1\n2,6,10,10,20,20,1,1,1\n",
                      -1, NULL);
  gchar *launch = g_strdup_printf("reidattachroi location=%s ! reidembed model=%s", mot, model);
  GstHarness *hr = gst_harness_new_parse(launch);
  GstCaps *caps = gtu_caps(GST_VIDEO_FORMAT_RGB, 64, 48);
  gst_harness_set_src_caps(hr, caps);
  guint8 *rgb = gtu_picture(64, 48, 1);
  for (int f = 0; f < 2; f++) {
    GstFlowReturn ret = gst_harness_push(hr, gtu_buffer(GST_VIDEO_FORMAT_RGB, 64, 48, rgb, f));
    CHECK(ret == GST_FLOW_OK, "MOT extremes: frame %d: %s", f, gst_flow_get_name(ret));
    GstBuffer *out = gst_harness_try_pull(hr);
    CHECK(out != NULL, "MOT extremes: frame %d did not come out", f);
    if (out) gst_buffer_unref(out);
  }
  gst_harness_teardown(hr);
  g_free(rgb);
  g_free(launch);
  g_free(mot);
}

/* ---- every start error in state cycles ---------------------------------- */

typedef struct start_error {
  const char *what, *model_kind; /* "good", "none", or a path */
  const char *prop, *value;
} start_error;

static void cycle_errors(const char *model) {
  gchar *garbage = gtu_path("garbage.safetensors"), *truncated = gtu_path("truncated.safetensors");
  g_file_set_contents(garbage, "not a checkpoint\n", -1, NULL);
  gchar *bytes;
  gsize size;
  g_file_get_contents(model, &bytes, &size, NULL);
  g_file_set_contents(truncated, bytes, (gssize)(size / 3), NULL);
  g_free(bytes);
  gchar *empty = gtu_path("no-images"), *bad = gtu_path("bad-images");
  g_mkdir_with_parents(empty, 0755);
  g_mkdir_with_parents(bad, 0755);
  gchar *bad_jpg = g_build_filename(bad, "broken.jpg", NULL);
  g_file_set_contents(bad_jpg, "\xff\xd8\xff\xe0 not a jpeg", -1, NULL);
  gchar *not_db = gtu_path("not-a-gallery.sqlite");
  g_file_set_contents(not_db, "this is not an SQLite database, not at all, no\n", -1, NULL);
  const start_error cases[] = {
      {"no model", "none", NULL, NULL},
      {"missing model", "/nonexistent/m.safetensors", NULL, NULL},
      {"corrupt model", garbage, NULL, NULL},
      {"truncated model", truncated, NULL, NULL},
      {"fp16 on the CPU", "good", "precision", "fp16"},
      {"unwritable tracklet-location", "good", "tracklet-location", "/nonexistent/d/t.jsonl"},
      {"missing query-location", "good", "query-location", "/nonexistent/queries"},
      {"image-less query folder", "good", "query-location", empty},
      {"broken query image", "good", "query-location", bad},
      {"corrupt gallery", "good", "gallery-location", not_db},
      {"unwritable gallery", "good", "gallery-location", "/nonexistent/d/g.sqlite"},
      {"unwritable collect-location", "good", "collect-location", "/proc/version/x"},
  };
  const int n_cases = (int)G_N_ELEMENTS(cases);
  size_t heap0 = 0;
  int fds0 = 0;
  for (int round = 0; round < ROUNDS; round++) { /* round 0 warms caches up */
    for (int c = 0; c < n_cases; c++) {
      const start_error *k = &cases[c];
      const char *m = !strcmp(k->model_kind, "good")   ? model
                      : !strcmp(k->model_kind, "none") ? NULL
                                                       : k->model_kind;
      GstBus *bus;
      GstElement *e = gtu_reidembed(m, &bus);
      if (k->prop) gst_util_set_object_arg(G_OBJECT(e), k->prop, k->value);
      gst_util_set_object_arg(G_OBJECT(e), "device", "cpu");
      for (int i = 0; i < 2; i++) { /* two cycles on one element, then a fresh one */
        GstStateChangeReturn r = gst_element_set_state(e, GST_STATE_PAUSED);
        CHECK(r == GST_STATE_CHANGE_FAILURE, "%s: the start must fail", k->what);
        gst_element_set_state(e, GST_STATE_NULL);
        gchar *text = gtu_error_text(bus);
        CHECK(text != NULL, "%s: no error message", k->what);
        if (round == 0 && i == 0) fprintf(stderr, "%s -> %s\n", k->what, text);
        g_free(text);
        gst_bus_set_flushing(bus, TRUE), gst_bus_set_flushing(bus, FALSE);
      }
      gst_object_unref(e);
      gst_object_unref(bus);
    }
    if (round == 0) heap0 = gtu_heap_in_use(), fds0 = gtu_open_fds();
  }
  size_t heap1 = gtu_heap_in_use();
  int fds1 = gtu_open_fds();
  fprintf(stderr, "errors: %d start errors x %d failed starts: fds %d -> %d, heap %zu -> %zu\n",
          n_cases, 2 * ROUNDS, fds0, fds1, heap0, heap1);
  CHECK(fds1 <= fds0, "file descriptors grew from %d to %d", fds0, fds1);
  CHECK(heap1 <= heap0 + 256 * 1024, "heap grew by %zd bytes over the failed starts",
        (ssize_t)(heap1 - heap0));
  g_free(garbage), g_free(truncated), g_free(empty), g_free(bad), g_free(bad_jpg), g_free(not_db);
}

/* ---- the model replaced between starts ---------------------------------- */

/* The embedding of one crop with `model` (a fresh element). */
static int embed_once(const char *model, GstElement *e, float *out) {
  (void)model;
  GstHarness *hr = gtu_harness(e, GST_VIDEO_FORMAT_RGB, 64, 64);
  guint8 *rgb = gtu_picture(64, 64, 5);
  GstBuffer *in = gtu_buffer(GST_VIDEO_FORMAT_RGB, 64, 64, rgb, 0);
  gtu_add_box(in, "person", 8, 4, 32, 56, 1);
  int dims = -1;
  if (gst_harness_push(hr, in) == GST_FLOW_OK) {
    GstBuffer *o = gst_harness_try_pull(hr);
    if (o) dims = gtu_embedding(o, 0, "reid-embedding", out, DIM), gst_buffer_unref(o);
  }
  gst_harness_teardown(hr);
  g_free(rgb);
  return dims;
}

typedef struct swapper {
  const char *a, *b, *target;
  volatile gint stop;
  int swaps;
} swapper;

/* Replaces target with a copy of a, then of b, ... written the way reid-train writes
 * checkpoints (reid_write_file_atomic: temporary file, fsync, rename). */
static gpointer swap_loop(gpointer p) {
  swapper *s = p;
  gchar *ba, *bb;
  gsize na, nb;
  g_file_get_contents(s->a, &ba, &na, NULL);
  g_file_get_contents(s->b, &bb, &nb, NULL);
  while (!g_atomic_int_get(&s->stop)) {
    const void *part = s->swaps % 2 ? ba : bb;
    size_t len = s->swaps % 2 ? na : nb;
    if (reid_write_file_atomic(s->target, &part, &len, 1, 0) != REID_OK) break;
    s->swaps++;
  }
  g_free(ba), g_free(bb);
  return NULL;
}

static void test_swap(const char *model_a, const char *model_b) {
  float ea[DIM], eb[DIM], e[DIM];
  GstBus *bus;
  GstElement *x = gtu_reidembed(model_a, &bus);
  CHECK(embed_once(model_a, x, ea) == DIM, "model a embeds");
  gst_object_unref(x), gst_object_unref(bus);
  x = gtu_reidembed(model_b, &bus);
  CHECK(embed_once(model_b, x, eb) == DIM, "model b embeds");
  gst_object_unref(x), gst_object_unref(bus);
  CHECK(gtu_cosine(ea, eb, DIM) < 0.999, "the two models must embed differently");

  gchar *target = gtu_path("live.safetensors");
  GError *err = NULL;
  gchar *bytes;
  gsize n;
  g_file_get_contents(model_a, &bytes, &n, NULL);
  g_file_set_contents(target, bytes, (gssize)n, &err);
  g_free(bytes);
  swapper s = {model_a, model_b, target, 0, 0};
  GThread *t = g_thread_new("swap", swap_loop, &s);
  int as = 0, bs = 0;
  for (int i = 0; i < 20; i++) {
    GstElement *el = gtu_reidembed(target, &bus);
    int dims = embed_once(target, el, e);
    gchar *text = dims == DIM ? NULL : gtu_error_text(bus);
    gst_object_unref(el), gst_object_unref(bus);
    if (dims != DIM) {
      CHECK(0, "start %d with the model being replaced: no embedding (%s)", i, text);
      g_free(text);
      continue;
    }
    double ca = gtu_cosine(e, ea, DIM), cb = gtu_cosine(e, eb, DIM);
    as += ca > 0.99999, bs += cb > 0.99999;
    CHECK(ca > 0.99999 || cb > 0.99999, "start %d: the embedding is neither model's (%f, %f)", i,
          ca, cb);
  }
  g_atomic_int_set(&s.stop, 1);
  g_thread_join(t);
  fprintf(stderr, "swap: 20 starts while the file was replaced %d times: %d loaded a, %d b\n",
          s.swaps, as, bs);
  g_free(target);
}

int main(int argc, char **argv) {
  g_setenv("GST_DEBUG", "*:2", TRUE);
  gtu_init(argc, argv, "reidembed_faults");
  gchar *model = gtu_model("resnet18", 64, 32, 1), *model_b = gtu_model("resnet18", 64, 32, 2);
  test_extremes(model);
  cycle_errors(model);
  test_swap(model, model_b);
  g_free(model), g_free(model_b);
  return gtu_finish("test_reidembed_faults");
}
