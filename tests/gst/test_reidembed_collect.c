/* reidembed collect-location: two streams (RGB and NV12) collected into one folder that
 * the dataset loader reads (layout `collected`: two cameras, one identity per tracklet,
 * the tracklets seen together as distinct pairs, crops of the box's own size and pixels),
 * which `reid-train continual --stream collected` trains on and whose model reidembed loads;
 * a short track is not collected; the summary message; a writer stuck on the disk (the
 * index is a FIFO nobody reads) never stalls the stream, drops are counted in messages and
 * in the index; writes refused by the file system (RLIMIT_FSIZE) give a warning, not an
 * error, and the stream goes on; an unwritable collect-location fails the start. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gst_test_util.h"

#define W 96
#define H 72

static gchar *model, *summary_tool;
static const char *reid_train;
static guint8 *picture;

static GstHarness *make(GstBus **bus, const char *props[][2], GstElement **out,
                        GstVideoFormat format) {
  GstElement *e = gtu_reidembed(model, bus);
  for (int i = 0; props[i][0]; i++) gst_util_set_object_arg(G_OBJECT(e), props[i][0], props[i][1]);
  *out = e;
  return gtu_harness(e, format, W, H);
}

static void done(GstHarness *h, GstElement *e, GstBus *bus) {
  gst_harness_teardown(h);
  gst_object_unref(e);
  gst_object_unref(bus);
}

/* Pushes frame `frame` with boxes {track, x, y, w, h}; returns the push time in s. */
static double push(GstHarness *h, GstVideoFormat format, int frame, const int (*boxes)[5], int n) {
  GstBuffer *in = gtu_buffer(format, W, H, picture, frame);
  for (int i = 0; i < n; i++)
    gtu_add_box(in, "person", boxes[i][1], boxes[i][2], boxes[i][3], boxes[i][4], boxes[i][0]);
  gint64 t0 = g_get_monotonic_time();
  CHECK(gst_harness_push(h, in) == GST_FLOW_OK, "frame %d: push", frame);
  double dt = (double)(g_get_monotonic_time() - t0) * 1e-6;
  GstBuffer *out = gst_harness_pull(h);
  if (out) gst_buffer_unref(out);
  return dt;
}

static const GstStructure *find_message(GPtrArray *all, const char *name) {
  for (guint i = 0; i < all->len; i++)
    if (gst_structure_has_name(g_ptr_array_index(all, i), name)) return g_ptr_array_index(all, i);
  return NULL;
}

static int count_messages(GPtrArray *all, const char *name, const char *reason) {
  int n = 0;
  for (guint i = 0; i < all->len; i++) {
    const GstStructure *s = g_ptr_array_index(all, i);
    if (gst_structure_has_name(s, name) &&
        (!reason || !g_strcmp0(gst_structure_get_string(s, "reason"), reason)))
      n++;
  }
  return n;
}

/* One stream: track 1 in frames 0..29, track 2 with it in 0..19, track 3 in 25..27 only. */
static void collect_stream(const char *dir, const char *stream, GstVideoFormat format) {
  GstBus *bus;
  GstElement *e;
  const char *props[][2] = {{"collect-location", dir}, {"stream-name", stream},
                            {"collect-frames", "4"},   {"collect-min-frames", "5"},
                            {"track-timeout", "3"},    {NULL, NULL}};
  GstHarness *h = make(&bus, props, &e, format);
  for (int f = 0; f < 30; f++) {
    int boxes[3][5], n = 0;
    boxes[n][0] = 1, boxes[n][1] = 10 + f, boxes[n][2] = 8, boxes[n][3] = 21, boxes[n][4] = 41, n++;
    if (f < 20)
      boxes[n][0] = 2, boxes[n][1] = 60, boxes[n][2] = 20, boxes[n][3] = 16, boxes[n][4] = 30, n++;
    if (f >= 25 && f < 28)
      boxes[n][0] = 3, boxes[n][1] = 0, boxes[n][2] = 50, boxes[n][3] = 10, boxes[n][4] = 20, n++;
    push(h, format, f, (const int(*)[5])boxes, n);
  }
  gst_harness_push_event(h, gst_event_new_eos());
  gst_element_set_state(e, GST_STATE_NULL); /* stop: the writer finishes */
  GPtrArray *all = gtu_messages(bus);
  const GstStructure *sum = find_message(all, "reid-collect-summary");
  gint64 collected = -1, too_short = -1, dropped = -1;
  if (sum) {
    gst_structure_get_int64(sum, "collected", &collected);
    gst_structure_get_int64(sum, "too-short", &too_short);
    gst_structure_get_int64(sum, "dropped", &dropped);
  }
  CHECK(sum && collected == 2 && too_short == 1 && dropped == 0,
        "%s summary: %" G_GINT64_FORMAT " collected, %" G_GINT64_FORMAT " short, %" G_GINT64_FORMAT
        " dropped",
        stream, collected, too_short, dropped);
  g_ptr_array_free(all, TRUE);
  done(h, e, bus);
}

/* The loader's view of the folder (collected_summary, run in a process of its own). */
static void check_loaded(const char *dir) {
  gchar *ppm = gtu_path("crop.ppm");
  gchar *argv[] = {summary_tool, (gchar *)dir, ppm, NULL}, *out = NULL, *err = NULL;
  gint status = -1;
  GError *error = NULL;
  gboolean ran =
      g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error);
  CHECK(ran && g_spawn_check_wait_status(status, NULL), "collected_summary %s: %s%s", dir,
        error ? error->message : "", err ? err : "");
  g_clear_error(&error);
  if (!out) return;
  int tracklets = -1, ids = -1, skipped = -1, samples = 0, pairs = 0, cam, n, a, b;
  char layout[64] = "", path[2048];
  gchar **lines = g_strsplit(out, "\n", -1);
  for (gchar **p = lines; *p; p++) {
    int i;
    if (sscanf(*p, "layout %63s", layout) == 1 || sscanf(*p, "tracklets %d", &tracklets) == 1 ||
        sscanf(*p, "ids %d", &ids) == 1 || sscanf(*p, "skipped %d", &skipped) == 1)
      continue;
    if (sscanf(*p, "sample %d %d %d %2047s", &i, &cam, &n, path) == 4) {
      samples++;
      CHECK(cam == i / 2 && n == 4, "sample %d: camera %d, %d crops", i, cam, n);
      if (i == 1) { /* track 2's crops are the picture's pixels in its box (60, 20, 16 x 30) */
        CHECK(strstr(path, "/cam_A/000002/0000000000.jpg"), "path %s", path);
        gchar *data = NULL;
        gsize len = 0;
        const char header[] = "P6\n16 30\n255\n";
        const gsize want = strlen(header) + 16 * 30 * 3;
        g_file_get_contents(ppm, &data, &len, NULL);
        CHECK(data && len == want && !memcmp(data, header, strlen(header)),
              "decoded crop: %zu bytes", (size_t)len);
        double e = 0;
        const guint8 *rgb = data && len == want ? (const guint8 *)data + strlen(header) : NULL;
        for (int y = 0; rgb && y < 30; y++)
          for (int x = 0; x < 16; x++)
            for (int k = 0; k < 3; k++)
              e += fabs((double)rgb[(y * 16 + x) * 3 + k] -
                        picture[((20 + y) * W + 60 + x) * 3 + k]);
        CHECK(e / (16 * 30 * 3) < 4, "crop differs from the box: mean abs %.2f", e / (16 * 30 * 3));
        g_free(data);
      }
    } else if (sscanf(*p, "pair %d %d", &a, &b) == 2) {
      CHECK((a == 0 && b == 1) || (a == 2 && b == 3), "pair %d %d", a, b);
      pairs++;
    }
  }
  g_strfreev(lines);
  CHECK(!strcmp(layout, "collected") && tracklets == 4 && ids == 4 && skipped == 0 &&
            samples == 4 && pairs == 2,
        "loaded %s: %d tracklets, %d ids, %d skipped, %d pairs", layout, tracklets, ids, skipped,
        pairs);
  g_free(out);
  g_free(err);
  g_free(ppm);
}

/* reid-train continual trains on the collected folder (one task, every tracklet a
 * pseudo-identity; a tiny synthetic Market set as the unseen test set), and reidembed loads
 * the model it writes. */
static void test_continual(const char *dir) {
  gchar *unseen = gtu_path("unseen"), *out = gtu_path("continual/m.safetensors");
  gchar *out_dir = g_path_get_dirname(out);
  g_mkdir_with_parents(out_dir, 0755);
  gchar *synth[] = {(gchar *)reid_train,
                    "synth",
                    "--layout",
                    "market",
                    "--output",
                    unseen,
                    "--identities",
                    "6",
                    "--test-identities",
                    "3",
                    "--cameras",
                    "2",
                    "--tracklets-per-identity",
                    "2",
                    "--frames",
                    "2",
                    "--size",
                    "64x32",
                    "--seed",
                    "3",
                    NULL};
  gchar *train[] = {(gchar *)reid_train,
                    "continual",
                    "--stream",
                    "collected",
                    "--data",
                    (gchar *)dir,
                    "--unseen",
                    unseen,
                    "--init",
                    model,
                    "--arch",
                    "resnet18",
                    "--input-size",
                    "64x32",
                    "--epochs",
                    "1",
                    "--steps-per-epoch",
                    "2",
                    "--episode-ids",
                    "4",
                    "--support",
                    "2",
                    "--query",
                    "1",
                    "--device",
                    "cpu",
                    "--threads",
                    "1",
                    "--quiet",
                    "--output",
                    out,
                    NULL};
  gchar **commands[2] = {synth, train};
  for (int c = 0; c < 2; c++) {
    gchar *err = NULL;
    gint status = -1;
    gboolean ran = g_spawn_sync(NULL, commands[c], NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                                NULL, &err, &status, NULL);
    CHECK(ran && g_spawn_check_wait_status(status, NULL), "reid-train %s failed: %s",
          commands[c][1], err ? err : "");
    g_free(err);
  }
  gchar *log = g_strconcat(out_dir, "/m.task00.log.jsonl", NULL);
  gchar *text = gtu_read_file(log);
  int steps = 0;
  for (const char *p = text; p && *p; p++) steps += *p == '\n';
  CHECK(steps == 2, "%s: %d steps logged", log, steps);
  GstBus *bus;
  GstElement *e = gtu_reidembed(out, &bus);
  CHECK(gst_element_set_state(e, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE,
        "reidembed does not load the updated model %s", out);
  gst_element_set_state(e, GST_STATE_NULL);
  gst_object_unref(e);
  gst_object_unref(bus);
  g_free(text);
  g_free(log);
  g_free(out_dir);
  g_free(out);
  g_free(unseen);
}

static void test_collect_and_load(void) {
  gchar *dir = gtu_path("collected");
  collect_stream(dir, "cam A", GST_VIDEO_FORMAT_RGB);
  collect_stream(dir, "cam_b", GST_VIDEO_FORMAT_NV12);
  check_loaded(dir);
  test_continual(dir);
  gchar *index = g_build_filename(dir, "cam_A", "index.jsonl", NULL);
  gchar *text = gtu_read_file(index);
  CHECK(text && strstr(text, "\"stream\":\"cam_A\",\"track_id\":1,") &&
            strstr(text, "\"together_with\":[\"000002\",\"000003\"]") &&
            strstr(text, "\"box\":[10,8,21,41]"),
        "index: %s", text ? text : "(none)");
  g_free(text);
  g_free(index);
  g_free(dir);
}

/* ------------------------------------------------------------ slow and full disks */

typedef struct drain_arg {
  gchar *path;
  GString *text;
} drain_arg;

static void *drain(void *p) {
  drain_arg *d = p;
  int fd = open(d->path, O_RDONLY);
  char buf[4096];
  ssize_t n;
  while (fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0) g_string_append_len(d->text, buf, n);
  if (fd >= 0) close(fd);
  return NULL;
}

/* A new track every 4 frames, each ending 1 frame later (track-timeout 1). */
static double push_tracks(GstHarness *h, int from, int to) {
  double slowest = 0;
  for (int f = from; f < to; f++) {
    const int box[1][5] = {{1000 + f / 4, 8 + (f % 4), 8, 24, 48}};
    double dt = push(h, GST_VIDEO_FORMAT_I420, f, box, 1);
    slowest = dt > slowest ? dt : slowest;
  }
  return slowest;
}

static void test_stuck_disk(void) {
  gchar *dir = gtu_path("stuck");
  gchar *stream_dir = g_build_filename(dir, "cam", NULL);
  g_mkdir_with_parents(stream_dir, 0755);
  drain_arg d = {g_build_filename(stream_dir, "index.jsonl", NULL), g_string_new(NULL)};
  g_unlink(d.path);
  CHECK(mkfifo(d.path, 0644) == 0, "mkfifo %s", d.path);
  GstBus *bus;
  GstElement *e;
  const char *props[][2] = {{"collect-location", dir},
                            {"stream-name", "cam"},
                            {"collect-frames", "2"},
                            {"collect-min-frames", "2"},
                            {"collect-queue-size", "2"},
                            {"track-timeout", "1"},
                            {NULL, NULL}};
  GstHarness *h = make(&bus, props, &e, GST_VIDEO_FORMAT_I420);
  double slowest = push_tracks(h, 0, 160); /* 40 tracks end while the writer is stuck */
  GPtrArray *all = gtu_messages(bus);
  int drops = count_messages(all, "reid-collect-drop", "queue-full");
  CHECK(drops >= 40 - 4, "%d queue-full drops while the disk is stuck", drops);
  /* the writer never wrote a line (nobody reads the FIFO yet): had a frame waited for it,
   * the stream would have stopped here for good; how long frames took is CPU time only */
  fprintf(stderr, "slowest frame while the disk was stuck: %.3f s\n", slowest);
  const GstStructure *last = NULL;
  for (guint i = 0; i < all->len; i++)
    if (gst_structure_has_name(g_ptr_array_index(all, i), "reid-collect-drop"))
      last = g_ptr_array_index(all, i);
  gint64 total = -1;
  if (last) gst_structure_get_int64(last, "dropped", &total);
  CHECK(total == drops, "last drop message counts %" G_GINT64_FORMAT " of %d", total, drops);
  g_ptr_array_free(all, TRUE);
  pthread_t reader;
  pthread_create(&reader, NULL, drain, &d);
  gst_element_set_state(e, GST_STATE_NULL); /* the writer catches up */
  pthread_join(reader, NULL);
  int dropped_lines = 0;
  for (const char *p = d.text->str; (p = strstr(p, "\"event\":\"dropped\"")); p++) dropped_lines++;
  CHECK(dropped_lines >= drops && strstr(d.text->str, "\"reason\":\"queue-full\""),
        "%d dropped lines in the index for %d drops", dropped_lines, drops);
  g_string_free(d.text, TRUE);
  g_free(d.path);
  done(h, e, bus);
  g_free(stream_dir);
  g_free(dir);
}

static void test_refused_writes(void) {
  gchar *dir = gtu_path("refused");
  GstBus *bus;
  GstElement *e;
  const char *props[][2] = {{"collect-location", dir}, {"stream-name", "cam"},
                            {"collect-frames", "2"},   {"collect-min-frames", "2"},
                            {"track-timeout", "1"},    {NULL, NULL}};
  GstHarness *h = make(&bus, props, &e, GST_VIDEO_FORMAT_I420);
  struct rlimit old, tiny;
  getrlimit(RLIMIT_FSIZE, &old);
  tiny = old;
  tiny.rlim_cur = 64; /* every JPEG is larger: write() fails with EFBIG, as a full disk's ENOSPC */
  signal(SIGXFSZ, SIG_IGN);
  setrlimit(RLIMIT_FSIZE, &tiny);
  push_tracks(h, 0, 40);
  g_usleep(300000); /* the writer fails on its own thread */
  setrlimit(RLIMIT_FSIZE, &old);
  push_tracks(h, 40, 60);
  gst_element_set_state(e, GST_STATE_NULL);
  GstMessage *m;
  int warnings = 0, errors = 0;
  gchar *text = NULL;
  GPtrArray *all = g_ptr_array_new_with_free_func((GDestroyNotify)gst_structure_free);
  while ((m = gst_bus_pop(bus))) { /* pop_filtered would discard the others */
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ELEMENT)
      g_ptr_array_add(all, gst_structure_copy(gst_message_get_structure(m)));
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) errors++;
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING) {
      GError *err = NULL;
      gst_message_parse_warning(m, &err, NULL);
      if (!text) text = g_strdup(err->message);
      g_error_free(err);
      warnings++;
    }
    gst_message_unref(m);
  }
  CHECK(errors == 0 && warnings >= 1, "%d errors, %d warnings", errors, warnings);
  CHECK(text && strstr(text, "collect-location") && strstr(text, "too large"), "warning: %s",
        text ? text : "(none)");
  const GstStructure *sum = find_message(all, "reid-collect-summary");
  CHECK(sum != NULL, "no summary among %u messages", all->len);
  gint64 collected = 0, write_errors = 0;
  if (sum) {
    gst_structure_get_int64(sum, "collected", &collected);
    gst_structure_get_int64(sum, "dropped-write-error", &write_errors);
  }
  CHECK(write_errors >= 5 && collected >= 3,
        "%" G_GINT64_FORMAT " write errors, %" G_GINT64_FORMAT
        " collected after the disk recovered",
        write_errors, collected);
  CHECK(count_messages(all, "reid-collect-drop", "write-error") == write_errors, "drop messages");
  g_ptr_array_free(all, TRUE);
  g_free(text);
  done(h, e, bus);
  g_free(dir);
}

static void test_bad_location(void) {
  gchar *file = gtu_path("not-a-folder");
  g_file_set_contents(file, "x", 1, NULL);
  gchar *loc = g_build_filename(file, "sub", NULL);
  GstBus *bus;
  GstElement *e = gtu_reidembed(model, &bus);
  g_object_set(e, "collect-location", loc, NULL);
  CHECK(gst_element_set_state(e, GST_STATE_PAUSED) == GST_STATE_CHANGE_FAILURE,
        "start with collect-location under a file");
  gst_element_set_state(e, GST_STATE_NULL);
  gchar *text = gtu_error_text(bus);
  CHECK(text && strstr(text, loc) && strstr(text, "cannot create the folder"), "error: %s",
        text ? text : "(none)");
  g_free(text);
  gst_object_unref(e);
  gst_object_unref(bus);
  g_free(loc);
  g_free(file);
}

int main(int argc, char **argv) {
  if (argc < 3 || strcmp(argv[1], "--summary")) {
    fprintf(stderr, "usage: %s --summary COLLECTED_SUMMARY [element test arguments]\n", argv[0]);
    return 2;
  }
  summary_tool = argv[2];
  for (int i = 3; i + 1 < argc; i++)
    if (!strcmp(argv[i], "--reid-train")) reid_train = argv[i + 1];
  argv[2] = argv[0];
  gtu_init(argc - 2, argv + 2, "reidembed_collect");
  model = gtu_model("resnet18", 64, 32, 1);
  picture = gtu_picture(W, H, 3);
  gchar *cmd =
      g_strdup_printf("rm -rf '%s'/collected '%s'/stuck '%s'/refused '%s'/unseen '%s'/continual",
                      gtu_workdir(), gtu_workdir(), gtu_workdir(), gtu_workdir(), gtu_workdir());
  if (system(cmd) != 0) gtu_fatal("cannot clean %s", gtu_workdir());
  g_free(cmd);
  test_collect_and_load();
  test_stuck_disk();
  test_refused_writes();
  test_bad_location();
  g_free(picture);
  g_free(model);
  return gtu_finish("test_reidembed_collect");
}
