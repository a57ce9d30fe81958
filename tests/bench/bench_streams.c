/* Many camera streams through reidembed in one process: total crops/s and
 * peak memory with one shared model instance (model-instance-id) against an
 * engine per element, next to the bare engine at the batch size.
 *
 * Each configuration runs in a child process of its own (so that its peak
 * resident memory, getrusage's ru_maxrss, is its own):
 *     N x ( appsrc ! reidembed batch-size=B [model-instance-id=all] ! fakesink )
 * in one pipeline, 1280x720 NV12 frames with --boxes people each, one pushing
 * thread per stream. Crops/s are counted over --min-time seconds after every
 * stream has passed its warm-up frames. The bare engine (a child too) runs
 * batches of B preprocessed crops.
 *
 *   bench_streams [--arch resnet50] [--precision fp32|bf16] [--streams 1,4,16] [--boxes 8]
 *                 [--batch 16] [--latency MS] [--threads 2] [--min-time 10] [--workdir DIR]
 *                 [--plugin-dir DIR] [--modes shared,separate] */
#include <getopt.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
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

typedef struct options {
  const char *arch, *precision, *streams, *workdir, *plugin_dir, *modes;
  int boxes, batch, latency, threads;
  double min_time;
} options;

static long peak_rss_kib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

static guint8 *frame_pixels(int seed, gsize *size) {
  *size = (gsize)FRAME_W * FRAME_H * 3 / 2;
  guint8 *p = g_malloc(*size);
  for (gsize i = 0; i < *size; i++) p[i] = (guint8)(16 + (i * 7 + i / FRAME_W * 3 + seed) % 220);
  return p;
}

/* Box b of frame n: rows of 8 people, drifting right. */
static reid_box box_of(int b, int n) {
  int row = b / 8, col = b % 8;
  return (reid_box){(float)(10 + 155 * col + n % 20), (float)(40 + 340 * (row % 2)), 120, 300};
}

/* ------------------------------------------------------------ children */

static double child_engine(const char *path, const options *o) {
  reid_backend *be = NULL;
  reid_net *net = NULL;
  reid_engine *engine = NULL;
  reid_precision precision;
  reid_status st = reid_precision_parse(o->precision, &precision);
  if (st == REID_OK) st = reid_backend_create("cpu", 0, &be);
  if (st == REID_OK) st = reid_checkpoint_load(path, NULL, be, &net);
  if (st == REID_OK) st = reid_engine_create(net, precision, o->batch, &engine);
  double rate = -1;
  if (st == REID_OK) {
    const reid_model_config *c = reid_net_config(net);
    size_t image = (size_t)3 * c->input_height * c->input_width;
    float *x = calloc(image * o->batch, sizeof(float)),
          *y = malloc(sizeof(float) * 2048 * o->batch);
    for (int w = 0; w < 2 && st == REID_OK; w++) st = reid_engine_embed(engine, x, o->batch, y);
    int iters = 0;
    double t0 = bench_now(), t = t0;
    while (st == REID_OK && t - t0 < o->min_time) {
      st = reid_engine_embed(engine, x, o->batch, y);
      iters++;
      t = bench_now();
    }
    if (st == REID_OK) rate = (double)o->batch * iters / (t - t0);
    free(x);
    free(y);
  }
  if (st != REID_OK) fprintf(stderr, "bench_streams: engine: %s\n", reid_last_error());
  reid_engine_destroy(engine);
  reid_net_destroy(net);
  reid_backend_destroy(be);
  return rate;
}

typedef struct stream {
  GstElement *src;
  GstBuffer *base;
  int index, boxes;
  volatile gint *stop;
  gint frames_out; /* atomic */
  GThread *thread;
} stream;

static gpointer push_frames(gpointer data) {
  stream *s = data;
  for (int n = 0; !g_atomic_int_get(s->stop); n++) {
    GstBuffer *buf = gst_buffer_copy(s->base);
    for (int b = 0; b < s->boxes; b++) {
      reid_box box = box_of(b, n + s->index);
      GstVideoRegionOfInterestMeta *roi = gst_buffer_add_video_region_of_interest_meta(
          buf, "person", (guint)box.x, (guint)box.y, (guint)box.w, (guint)box.h);
      gst_video_region_of_interest_meta_add_param(
          roi, gst_structure_new("object_id", "id", G_TYPE_INT, b, NULL));
    }
    GST_BUFFER_PTS(buf) = gst_util_uint64_scale(n, GST_SECOND, 30);
    GST_BUFFER_DURATION(buf) = gst_util_uint64_scale(1, GST_SECOND, 30);
    if (gst_app_src_push_buffer(GST_APP_SRC(s->src), buf) != GST_FLOW_OK) break;
  }
  gst_app_src_end_of_stream(GST_APP_SRC(s->src));
  return NULL;
}

static void on_handoff(GstElement *sink, GstBuffer *buf, GstPad *pad, gpointer data) {
  (void)sink, (void)buf, (void)pad;
  g_atomic_int_inc(&((stream *)data)->frames_out);
}

static int total_frames(stream *s, int n, int *min_out) {
  int total = 0, lo = G_MAXINT;
  for (int i = 0; i < n; i++) {
    int f = g_atomic_int_get(&s[i].frames_out);
    total += f;
    lo = MIN(lo, f);
  }
  *min_out = lo;
  return total;
}

static double child_element(const char *path, const options *o, int n, gboolean shared) {
  GString *desc = g_string_new(NULL);
  for (int i = 0; i < n; i++)
    g_string_append_printf(desc,
                           "appsrc name=src%d format=time block=true max-buffers=2 ! "
                           "reidembed model=\"%s\" precision=%s batch-size=%d %s%s "
                           "max-batch-latency=%d ! "
                           "fakesink name=sink%d sync=false signal-handoffs=true ",
                           i, path, o->precision, o->batch, shared ? "model-instance-id=" : "",
                           shared ? "all" : "", o->latency, i);
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch(desc->str, &error);
  g_string_free(desc, TRUE);
  if (!pipeline) {
    fprintf(stderr, "bench_streams: %s\n", error->message);
    g_error_free(error);
    return -1;
  }
  volatile gint stop = 0;
  stream *s = g_new0(stream, n);
  GstCaps *caps = gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, "NV12", "width",
                                      G_TYPE_INT, FRAME_W, "height", G_TYPE_INT, FRAME_H,
                                      "framerate", GST_TYPE_FRACTION, 30, 1, NULL);
  for (int i = 0; i < n; i++) {
    gchar name[32];
    snprintf(name, sizeof name, "src%d", i);
    s[i].src = gst_bin_get_by_name(GST_BIN(pipeline), name);
    g_object_set(s[i].src, "caps", caps, NULL);
    snprintf(name, sizeof name, "sink%d", i);
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), name);
    g_signal_connect(sink, "handoff", G_CALLBACK(on_handoff), &s[i]);
    gst_object_unref(sink);
    gsize size;
    guint8 *pixels = frame_pixels(i, &size);
    s[i].base = gst_buffer_new_wrapped(pixels, size);
    s[i].index = i;
    s[i].boxes = o->boxes;
    s[i].stop = &stop;
  }
  gst_caps_unref(caps);
  GstBus *bus = gst_element_get_bus(pipeline);
  double rate = -1;
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) goto done;
  for (int i = 0; i < n; i++) s[i].thread = g_thread_new("push", push_frames, &s[i]);
  /* warm-up: every stream has had 2 frames through */
  int lo, f0 = 0, f1;
  double t0 = 0, t1;
  gboolean failed = FALSE;
  for (;;) {
    GstMessage *err = gst_bus_timed_pop_filtered(bus, 20 * GST_MSECOND, GST_MESSAGE_ERROR);
    if (err) {
      GError *e = NULL;
      gst_message_parse_error(err, &e, NULL);
      fprintf(stderr, "bench_streams: pipeline: %s\n", e->message);
      g_error_free(e);
      gst_message_unref(err);
      failed = TRUE;
      break;
    }
    int total = total_frames(s, n, &lo);
    double t = bench_now();
    if (t0 == 0 && lo >= 2) f0 = total, t0 = t;
    if (t0 > 0 && t - t0 >= o->min_time) break;
  }
  f1 = total_frames(s, n, &lo);
  t1 = bench_now();
  if (!failed) rate = (double)(f1 - f0) * o->boxes / (t1 - t0);
done:
  g_atomic_int_set(&stop, 1);
  gst_element_set_state(pipeline, GST_STATE_NULL); /* unblocks the pushing threads */
  for (int i = 0; i < n; i++)
    if (s[i].thread) g_thread_join(s[i].thread);
  for (int i = 0; i < n; i++) {
    gst_object_unref(s[i].src);
    gst_buffer_unref(s[i].base);
  }
  g_free(s);
  gst_object_unref(bus);
  gst_object_unref(pipeline);
  return rate;
}

/* ------------------------------------------------------------ parent */

/* Runs this program again with `args`; reads "rate rss" from its stdout. */
static int run_child(const char *self, const options *o, const char *what, double *rate,
                     long *rss) {
  char batch[16], boxes[16], latency[16], threads[16], min_time[32];
  snprintf(batch, sizeof batch, "%d", o->batch);
  snprintf(boxes, sizeof boxes, "%d", o->boxes);
  snprintf(latency, sizeof latency, "%d", o->latency);
  snprintf(threads, sizeof threads, "%d", o->threads);
  snprintf(min_time, sizeof min_time, "%g", o->min_time);
  const char *argv[] = {self,          "--child",    what,        "--arch",    o->arch,
                        "--precision", o->precision, "--batch",   batch,       "--boxes",
                        boxes,         "--latency",  latency,     "--threads", threads,
                        "--min-time",  min_time,     "--workdir", o->workdir,  "--plugin-dir",
                        o->plugin_dir, NULL};
  gchar *out = NULL;
  gint status = 0;
  GError *error = NULL;
  if (!g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, &out,
                    NULL, &status, &error)) {
    fprintf(stderr, "bench_streams: %s\n", error->message);
    g_error_free(error);
    return -1;
  }
  int ok = status == 0 && out && sscanf(out, "%lf %ld", rate, rss) == 2 && *rate > 0;
  g_free(out);
  return ok ? 0 : -1;
}

static int child_main(const char *what, const options *o, const char *path) {
  double rate;
  if (!strcmp(what, "engine"))
    rate = child_engine(path, o);
  else {
    int n = atoi(what);
    gboolean shared = strstr(what, "shared") != NULL;
    gst_init(NULL, NULL);
    rate = child_element(path, o, n, shared);
  }
  printf("%.3f %ld\n", rate, peak_rss_kib());
  return rate > 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  options o = {"resnet50", "fp32", "1,4,16", "/tmp", REID_GST_PLUGIN_DIR, "shared,separate", 8,
               16,         10,     2,        10.0};
  const char *child = NULL;
  static const struct option long_options[] = {
      {"arch", required_argument, 0, 'a'},    {"precision", required_argument, 0, 'p'},
      {"streams", required_argument, 0, 's'}, {"boxes", required_argument, 0, 'b'},
      {"batch", required_argument, 0, 'B'},   {"latency", required_argument, 0, 'l'},
      {"threads", required_argument, 0, 't'}, {"min-time", required_argument, 0, 'm'},
      {"workdir", required_argument, 0, 'w'}, {"plugin-dir", required_argument, 0, 'g'},
      {"modes", required_argument, 0, 'M'},   {"child", required_argument, 0, 'c'},
      {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
    switch (c) {
    case 'a': o.arch = optarg; break;
    case 'p': o.precision = optarg; break;
    case 's': o.streams = optarg; break;
    case 'b': o.boxes = atoi(optarg); break;
    case 'B': o.batch = atoi(optarg); break;
    case 'l': o.latency = atoi(optarg); break;
    case 't': o.threads = atoi(optarg); break;
    case 'm': o.min_time = atof(optarg); break;
    case 'w': o.workdir = optarg; break;
    case 'g': o.plugin_dir = optarg; break;
    case 'M': o.modes = optarg; break;
    case 'c': child = optarg; break;
    default:
      fprintf(stderr,
              "usage: %s [--arch A] [--precision P] [--streams 1,4,16] [--boxes 8] [--batch 16] "
              "[--latency MS] [--threads N] [--min-time S] [--modes shared,separate] "
              "[--workdir DIR] [--plugin-dir DIR]\n",
              argv[0]);
      return c == 'h' ? 0 : 2;
    }
  }
  if (o.threads < 1 || o.min_time <= 0 || o.boxes < 1 || o.batch < 1 || o.latency < 0) {
    fprintf(stderr, "bench_streams: --threads, --min-time, --boxes, --batch must be positive\n");
    return 2;
  }
  char threads[16];
  snprintf(threads, sizeof threads, "%d", o.threads);
  setenv("OMP_NUM_THREADS", threads, 1);
  setenv("GST_PLUGIN_PATH", o.plugin_dir, 1);
  gchar *registry = g_build_filename(o.workdir, "bench_streams-registry.bin", NULL);
  setenv("GST_REGISTRY", registry, 1);
  g_free(registry);
  gchar *path = g_strdup_printf("%s/bench-%s-256x128.safetensors", o.workdir, o.arch);
  if (bench_make_model(o.arch, path) != 0) return 1;
  if (child) return child_main(child, &o, path);

  double load[3] = {0};
  if (getloadavg(load, 3) < 0) load[0] = -1;
  printf("reidembed streams: %s %s 256x128, %dx%d NV12, %d people/frame, batch-size %d, "
         "max-batch-latency %d ms, %d threads; load average before: %.2f\n",
         o.arch, o.precision, FRAME_W, FRAME_H, o.boxes, o.batch, o.latency, o.threads, load[0]);
  double engine_rate;
  long engine_rss;
  if (run_child(argv[0], &o, "engine", &engine_rate, &engine_rss) != 0) {
    fprintf(stderr, "bench_streams: the bare engine failed\n");
    return 1;
  }
  printf("bare engine, batch %d: %.1f crops/s, peak RSS %.0f MiB\n", o.batch, engine_rate,
         engine_rss / 1024.0);
  printf("%-8s %-9s %10s %9s %12s %14s\n", "streams", "engines", "crops/s", "vs engine", "peak MiB",
         "vs 1 stream");
  int failed = 0;
  gchar **counts = g_strsplit(o.streams, ",", -1), **modes = g_strsplit(o.modes, ",", -1);
  for (gchar **m = modes; *m; m++) {
    long rss_one = 0;
    for (gchar **n = counts; *n; n++) {
      gchar *what = g_strdup_printf("%d%s", atoi(*n), !strcmp(*m, "shared") ? "-shared" : "");
      double rate;
      long rss;
      if (run_child(argv[0], &o, what, &rate, &rss) != 0) {
        printf("%-8s %-9s failed\n", *n, *m);
        failed = 1;
      } else {
        if (!rss_one) rss_one = rss;
        printf("%-8s %-9s %10.1f %8.0f%% %12.0f %13.2fx\n", *n, *m, rate,
               100.0 * rate / engine_rate, rss / 1024.0, (double)rss / rss_one);
      }
      fflush(stdout);
      g_free(what);
    }
  }
  if (getloadavg(load, 3) < 0) load[0] = -1;
  printf("load average after: %.2f\n", load[0]);
  g_strfreev(counts);
  g_strfreev(modes);
  g_free(path);
  return failed;
}
