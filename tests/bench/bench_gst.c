/* GStreamer benchmark: 1280x720 NV12 frames with 16 boxes (16 tracks) each
 * through a real pipeline,
 *     appsrc ! reidembed batch-size=16 ! fakesink sync=false
 * reporting frames/s and crops/s of the element, next to the bare engine's
 * crops/s at batch 16 for the same model, device and precision (the element
 * should keep >= 80% of it). Models are ResNets with last stride 1 at 256x128
 * and random weights (speed does not depend on them), written to --workdir.
 * Engine and element are measured alternately for --rounds rounds and the best
 * round of each is reported (robust against other load on a shared machine).
 *
 *   bench_gst [--arch resnet18,resnet50] [--device cpu|cuda] [--precision fp32|bf16|fp16|tf32]
 *             [--threads 2] [--min-time 3] [--rounds 3] [--plugin-dir DIR] [--workdir DIR]
 *
 * --threads sets OMP_NUM_THREADS for both the engine and the element. */
#include <getopt.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "checkpoint.h"
#include "engine.h"
#include "preprocess.h"

#ifndef REID_GST_PLUGIN_DIR
#define REID_GST_PLUGIN_DIR "gst"
#endif

#define FRAME_W 1280
#define FRAME_H 720
#define BOXES   16
#define BATCH   16

typedef struct options {
  const char *archs, *device, *precision, *plugin_dir, *workdir;
  int threads, rounds;
  double min_time;
} options;

/* The benchmark frame: NV12 bytes (Y plane, then interleaved UV), tight strides,
 * the same for the bare engine and the element. */
static guint8 *frame_pixels(gsize *size) {
  *size = (gsize)FRAME_W * FRAME_H * 3 / 2;
  guint8 *p = g_malloc(*size);
  for (gsize i = 0; i < *size; i++) p[i] = (guint8)(16 + (i * 7 + i / FRAME_W * 3) % 220);
  return p;
}

/* Box b of frame n: 2 rows of 8 people, drifting right. */
static reid_box box_of(int b, int n) {
  int row = b / 8, col = b % 8;
  return (reid_box){(float)(10 + 155 * col + n % 20), (float)(40 + 340 * row), 120, 300};
}

/* The bare engine at batch 16 on the frame's 16 crops (preprocessed once):
 * median crops/s of 5 repetitions after warm-up. */
static double bench_engine(const char *path, const options *o) {
  reid_backend *be = NULL;
  reid_net *net = NULL;
  reid_engine *engine = NULL;
  reid_precision precision;
  reid_status st = reid_precision_parse(o->precision, &precision);
  if (st == REID_OK) st = reid_backend_create(o->device, 0, &be);
  if (st == REID_OK) st = reid_checkpoint_load(path, NULL, be, &net);
  if (st == REID_OK) st = reid_engine_create(net, precision, BATCH, &engine);
  double rate = -1;
  if (st == REID_OK) {
    const reid_model_config *c = reid_net_config(net);
    size_t image = (size_t)3 * c->input_height * c->input_width;
    float *x = malloc(sizeof(float) * image * BATCH), *y = malloc(sizeof(float) * 2048 * BATCH);
    gsize size;
    guint8 *pixels = frame_pixels(&size);
    reid_frame frame = {.format = REID_PIX_NV12,
                        .width = FRAME_W,
                        .height = FRAME_H,
                        .planes = {pixels, pixels + (gsize)FRAME_W * FRAME_H},
                        .strides = {FRAME_W, FRAME_W}};
    reid_box boxes[BATCH];
    for (int b = 0; b < BATCH; b++) boxes[b] = box_of(b, 0);
    reid_preprocess_params pp = {c->input_height, c->input_width, {0}, {0}};
    memcpy(pp.mean, c->mean, sizeof pp.mean);
    memcpy(pp.std, c->std, sizeof pp.std);
    st = reid_preprocess_cpu(&frame, boxes, BATCH, &pp, x);
    g_free(pixels);
    double rates[5];
    for (int w = 0; w < 2 && st == REID_OK; w++) st = reid_engine_embed(engine, x, BATCH, y);
    for (int r = 0; r < 5 && st == REID_OK; r++) {
      int iters = 0;
      double t0 = bench_now(), t;
      do {
        st = reid_engine_embed(engine, x, BATCH, y);
        iters++;
        t = bench_now();
      } while (st == REID_OK && t - t0 < o->min_time / 5);
      rates[r] = BATCH * iters / (t - t0);
    }
    if (st == REID_OK) {
      qsort(rates, 5, sizeof rates[0], bench_cmp_double);
      rate = rates[2];
      fprintf(stderr, "  engine: %s\n", reid_engine_describe(engine));
    }
    free(x);
    free(y);
  }
  if (st != REID_OK) fprintf(stderr, "bench_gst: engine: %s\n", reid_last_error());
  reid_engine_destroy(engine);
  reid_net_destroy(net);
  reid_backend_destroy(be);
  return rate;
}

/* Frames that have left reidembed (fakesink handoffs) and when. */
typedef struct progress {
  GMutex lock;
  int frames;
  double t_warm, t_last;
  int warmup;
} progress;

static void on_handoff(GstElement *sink, GstBuffer *buf, GstPad *pad, gpointer data) {
  (void)sink, (void)buf, (void)pad;
  progress *p = data;
  double t = bench_now();
  g_mutex_lock(&p->lock);
  p->frames++;
  if (p->frames == p->warmup) p->t_warm = t;
  p->t_last = t;
  g_mutex_unlock(&p->lock);
}

static GstBuffer *base_frame(void) {
  gsize size;
  guint8 *pixels = frame_pixels(&size);
  return gst_buffer_new_wrapped(pixels, size); /* NV12 1280x720: GStreamer's default layout */
}

/* Frame n: the pixels of `base` (shared) and 16 boxes drifting right. */
static GstBuffer *frame_with_boxes(GstBuffer *base, int n) {
  GstBuffer *buf = gst_buffer_copy(base);
  for (int b = 0; b < BOXES; b++) {
    reid_box box = box_of(b, n);
    GstVideoRegionOfInterestMeta *roi = gst_buffer_add_video_region_of_interest_meta(
        buf, "person", (guint)box.x, (guint)box.y, (guint)box.w, (guint)box.h);
    gst_video_region_of_interest_meta_add_param(
        roi, gst_structure_new("object_id", "id", G_TYPE_INT, b, NULL));
  }
  GST_BUFFER_PTS(buf) = gst_util_uint64_scale(n, GST_SECOND, 30);
  GST_BUFFER_DURATION(buf) = gst_util_uint64_scale(1, GST_SECOND, 30);
  return buf;
}

/* Runs the pipeline until min_time has passed after warm-up; returns frames/s. */
static double bench_element(const char *path, const options *o) {
  gchar *desc = g_strdup_printf("appsrc name=src format=time block=true max-buffers=3 ! "
                                "reidembed model=\"%s\" device=%s precision=%s batch-size=%d ! "
                                "fakesink name=sink sync=false signal-handoffs=true",
                                path, o->device, o->precision, BATCH);
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch(desc, &error);
  g_free(desc);
  if (!pipeline) {
    fprintf(stderr, "bench_gst: %s\n", error->message);
    g_error_free(error);
    return -1;
  }
  progress p = {.warmup = 5};
  g_mutex_init(&p.lock);
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "src"),
             *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  g_signal_connect(sink, "handoff", G_CALLBACK(on_handoff), &p);
  GstCaps *caps = gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, "NV12", "width",
                                      G_TYPE_INT, FRAME_W, "height", G_TYPE_INT, FRAME_H,
                                      "framerate", GST_TYPE_FRACTION, 30, 1, NULL);
  g_object_set(src, "caps", caps, NULL);
  gst_caps_unref(caps);
  GstBus *bus = gst_element_get_bus(pipeline);
  GstBuffer *base = base_frame();
  double rate = -1;
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) goto done;
  for (int n = 0;; n++) {
    g_mutex_lock(&p.lock);
    int frames = p.frames;
    double elapsed = frames >= p.warmup ? p.t_last - p.t_warm : 0;
    g_mutex_unlock(&p.lock);
    if (frames >= p.warmup + 3 && elapsed >= o->min_time) break;
    if (gst_app_src_push_buffer(GST_APP_SRC(src), frame_with_boxes(base, n)) != GST_FLOW_OK) break;
    GstMessage *err = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    if (err) {
      gst_message_unref(err);
      break;
    }
  }
  gst_app_src_end_of_stream(GST_APP_SRC(src));
  GstMessage *m =
      gst_bus_timed_pop_filtered(bus, 600 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  if (m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
    GError *e = NULL;
    gst_message_parse_error(m, &e, NULL);
    fprintf(stderr, "bench_gst: pipeline: %s\n", e->message);
    g_error_free(e);
  } else if (m) {
    rate = (p.frames - p.warmup) / (p.t_last - p.t_warm);
    fprintf(stderr, "  element: %d frames timed\n", p.frames - p.warmup);
  }
  if (m) gst_message_unref(m);
done:
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_buffer_unref(base);
  gst_object_unref(bus);
  gst_object_unref(src);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
  g_mutex_clear(&p.lock);
  return rate;
}

int main(int argc, char **argv) {
  options o = {"resnet18,resnet50", "cpu", "fp32", REID_GST_PLUGIN_DIR, "/tmp", 2, 3, 3.0};
  static const struct option long_options[] = {{"arch", required_argument, 0, 'a'},
                                               {"device", required_argument, 0, 'd'},
                                               {"precision", required_argument, 0, 'p'},
                                               {"threads", required_argument, 0, 't'},
                                               {"min-time", required_argument, 0, 'm'},
                                               {"plugin-dir", required_argument, 0, 'g'},
                                               {"workdir", required_argument, 0, 'w'},
                                               {"rounds", required_argument, 0, 'r'},
                                               {"help", no_argument, 0, 'h'},
                                               {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
    switch (c) {
    case 'a': o.archs = optarg; break;
    case 'd': o.device = optarg; break;
    case 'p': o.precision = optarg; break;
    case 't': o.threads = atoi(optarg); break;
    case 'm': o.min_time = atof(optarg); break;
    case 'g': o.plugin_dir = optarg; break;
    case 'w': o.workdir = optarg; break;
    case 'r': o.rounds = atoi(optarg); break;
    default:
      fprintf(stderr,
              "usage: %s [--arch resnet18,resnet50] [--device cpu|cuda] [--precision P] "
              "[--threads N] [--min-time S] [--rounds N] [--plugin-dir DIR] [--workdir DIR]\n",
              argv[0]);
      return c == 'h' ? 0 : 2;
    }
  }
  if (o.threads < 1 || o.min_time <= 0 || o.rounds < 1) {
    fprintf(stderr, "bench_gst: --threads, --min-time and --rounds must be positive\n");
    return 2;
  }
  /* before any OpenMP use: the engine here and the plugin's copy both read it */
  char threads[16];
  snprintf(threads, sizeof threads, "%d", o.threads);
  setenv("OMP_NUM_THREADS", threads, 1);
  setenv("GST_PLUGIN_PATH", o.plugin_dir, 1);
  gchar *registry = g_build_filename(o.workdir, "bench_gst-registry.bin", NULL);
  setenv("GST_REGISTRY", registry, 1);
  g_free(registry);
  gst_init(NULL, NULL);

  printf("reidembed: %dx%d NV12, %d boxes/frame, batch %d, %s %s, %d threads\n", FRAME_W, FRAME_H,
         BOXES, BATCH, o.device, o.precision, o.threads);
  printf("%-10s %14s %14s %14s %8s\n", "model", "engine crop/s", "element fps", "element crop/s",
         "kept");
  int failed = 0;
  gchar **archs = g_strsplit(o.archs, ",", -1);
  for (gchar **a = archs; *a; a++) {
    gchar *path = g_strdup_printf("%s/bench-%s-256x128.safetensors", o.workdir, *a);
    if (bench_make_model(*a, path) != 0) {
      failed = 1;
      g_free(path);
      continue;
    }
    fprintf(stderr, "%s:\n", *a);
    double engine = -1, fps = -1;
    for (int r = 0; r < o.rounds; r++) {
      double e = bench_engine(path, &o), f = bench_element(path, &o);
      fprintf(stderr, "  round %d: engine %.1f crops/s, element %.2f frames/s\n", r + 1, e, f);
      engine = e > engine ? e : engine;
      fps = f > fps ? f : fps;
    }
    if (engine <= 0 || fps <= 0) failed = 1;
    printf("%-10s %14.1f %14.2f %14.1f %7.1f%%\n", *a, engine, fps, fps * BOXES,
           engine > 0 ? 100.0 * fps * BOXES / engine : 0.0);
    fflush(stdout);
    g_free(path);
  }
  g_strfreev(archs);
  gst_deinit();
  return failed;
}
