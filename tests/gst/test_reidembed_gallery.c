/* reidembed gallery-location: finished tracklets land in a real gallery
 * (SQLite file; PostgreSQL when with_postgres.sh started a server), the same
 * cases on both:
 *  - every reid-tracklet message becomes one row with the same embedding,
 *    times (reference-timestamp meta), frames, box and a JPEG thumbnail of
 *    the track's largest crop;
 *  - 4 elements in 4 threads write one gallery: no row lost or duplicated;
 *  - kill -9 of a writing process: the store is consistent, every row is a
 *    reported tracklet, and the missing ones (at most the unflushed queue) are
 *    counted;
 *  - another model's gallery, a corrupt SQLite file, a wrong password: clear
 *    errors at start;
 *  - PostgreSQL stopped mid-run: frames keep flowing, warnings name the
 *    location (password hidden), drops are counted when the queue overflows,
 *    and rows are written again once the server is back. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gallery.h"
#include "gst_test_util.h"
#include "image.h"

#define W   160
#define H   120
#define DIM 512

static gchar *model, *other_model;
static guint8 *picture;

/* Frame f shows one box of track f / 3 (each track lives 3 frames; with
 * track-timeout=1 one tracklet ends every 3 frames); the box grows over the
 * track's frames, so the thumbnail must come from its last frame. */
static void track_box(int f, int *id, int *x, int *y, int *w, int *h) {
  *id = f / 3;
  int k = f % 3;
  *x = 10 + (*id * 13) % 90;
  *y = 8 + (*id * 7) % 30;
  *w = 20 + 10 * k;
  *h = 40 + 20 * k;
}

static GstBuffer *make_frame(int f, guint64 unix_ns) {
  GstBuffer *b = gtu_buffer(GST_VIDEO_FORMAT_RGB, W, H, picture, f);
  int id, x, y, w, h;
  track_box(f, &id, &x, &y, &w, &h);
  gtu_add_box(b, "person", x, y, w, h, id);
  if (unix_ns) {
    GstCaps *caps = gst_caps_new_empty_simple("timestamp/x-unix");
    gst_buffer_add_reference_timestamp_meta(b, caps, unix_ns, GST_CLOCK_TIME_NONE);
    gst_caps_unref(caps);
  }
  return b;
}

static GstElement *make_element(const char *uri, const char *stream, GstBus **bus) {
  GstElement *e = gtu_reidembed(model, bus);
  g_object_set(e, "gallery-location", uri, "stream-name", stream, "track-timeout", 1, NULL);
  return e;
}

/* Pushes frames [from, to); returns the number that came out. */
static int push_frames(GstHarness *h, int from, int to, guint64 unix_base) {
  int out = 0;
  for (int f = from; f < to; f++) {
    guint64 ts = unix_base ? unix_base + (guint64)f * GST_SECOND / 30 : 0;
    if (gst_harness_push(h, make_frame(f, ts)) != GST_FLOW_OK) break;
    GstBuffer *b = gst_harness_pull(h);
    if (b) out++, gst_buffer_unref(b);
  }
  return out;
}

static const GstStructure *find_stats(GPtrArray *msgs) {
  GPtrArray *s = gtu_select(msgs, "reid-gallery");
  const GstStructure *r = s->len == 1 ? g_ptr_array_index(s, 0) : NULL;
  g_ptr_array_free(s, TRUE);
  return r;
}

static gint64 stat_of(const GstStructure *s, const char *field) {
  gint64 v = -1;
  if (s) gst_structure_get_int64(s, field, &v);
  return v;
}

/* Every row of `stream`, best-first for a query (all rows: top-k is large). */
static int rows_of(const char *uri, const char *stream, const float *query,
                   reid_gallery_hit **hits) {
  reid_gallery *g = NULL;
  *hits = NULL;
  CHECK_OK(reid_gallery_open(uri, &g));
  if (!g) return 0;
  reid_backend *be = NULL;
  CHECK_OK(reid_backend_create("cpu", 0, &be));
  reid_gallery_filter f;
  reid_gallery_filter_init(&f);
  f.streams = &stream;
  f.n_streams = 1;
  float q[DIM];
  if (!query) {
    for (int i = 0; i < DIM; i++) q[i] = 1.0f / sqrtf(DIM);
    query = q;
  }
  int n = 0;
  CHECK_OK(reid_gallery_search(g, be, query, &f, 100000, -2.0f, 0, hits, &n));
  reid_backend_destroy(be);
  reid_gallery_close(g);
  return n;
}

/* Removes an SQLite file and its WAL files. */
static void remove_sqlite(const char *path) {
  const char *suffixes[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    gchar *p = g_strconcat(path, suffixes[i], NULL);
    g_unlink(p);
    g_free(p);
  }
}

/* gallery-fp16: a new gallery stores float16; each tracklet's message
 * embedding still finds its own row first, at cosine ~1. */
static void test_fp16(void) {
  gchar *path = gtu_path("gallery-f16.sqlite");
  remove_sqlite(path);
  GstBus *bus;
  GstElement *e = make_element(path, "fp16", &bus);
  g_object_set(e, "gallery-fp16", TRUE, NULL);
  GstHarness *h = gtu_harness(e, GST_VIDEO_FORMAT_RGB, W, H);
  int out = push_frames(h, 0, 12, 0);
  CHECK(out == 12, "fp16: %d frames out", out);
  gst_harness_teardown(h);
  GPtrArray *msgs = gtu_messages(bus);
  GPtrArray *tracklets = gtu_select(msgs, "reid-tracklet");
  CHECK(tracklets->len == 4 && stat_of(find_stats(msgs), "written") == 4, "fp16: %u tracklets",
        tracklets->len);
  reid_gallery *g = NULL;
  reid_gallery_model m;
  reid_gallery_dtype dtype = REID_GALLERY_F32;
  CHECK_OK(reid_gallery_open(path, &g));
  if (g) CHECK_OK(reid_gallery_get_model(g, &m, &dtype));
  reid_gallery_close(g);
  CHECK(dtype == REID_GALLERY_F16, "fp16: the gallery stores dtype %d", (int)dtype);
  for (guint i = 0; i < tracklets->len; i++) {
    float emb[DIM];
    CHECK(gtu_message_embedding(g_ptr_array_index(tracklets, i), emb, DIM) == DIM, "embedding");
    gint64 track = -1;
    gst_structure_get_int64(g_ptr_array_index(tracklets, i), "track-id", &track);
    reid_gallery_hit *hits;
    int n = rows_of(path, "fp16", emb, &hits);
    CHECK(n == 4 && hits[0].track_id == track && hits[0].score > 0.999f,
          "fp16: %d rows, track %" G_GINT64_FORMAT " found %lld at %g", n, track,
          n ? (long long)hits[0].track_id : -1LL, n ? (double)hits[0].score : 0.0);
    reid_gallery_hits_free(hits, n);
  }
  g_ptr_array_free(tracklets, TRUE);
  g_ptr_array_free(msgs, TRUE);
  gst_object_unref(e);
  gst_object_unref(bus);
  g_free(path);
}

/* ------------------------------------------------------------ one element */

static void test_rows(const char *uri, const char *label) {
  GstBus *bus;
  gchar *stream = g_strdup_printf("single-%s", label);
  GstElement *e = make_element(uri, stream, &bus);
  GstHarness *h = gtu_harness(e, GST_VIDEO_FORMAT_RGB, W, H);
  const guint64 unix_base = G_GUINT64_CONSTANT(1700000000) * GST_SECOND;
  int out = push_frames(h, 0, 30, unix_base);
  CHECK(out == 30, "%s: %d frames out", label, out);
  gst_harness_teardown(h);
  GPtrArray *msgs = gtu_messages(bus);
  GPtrArray *tracklets = gtu_select(msgs, "reid-tracklet");
  const GstStructure *stats = find_stats(msgs);
  CHECK(tracklets->len == 10, "%s: %u tracklets", label, tracklets->len);
  CHECK(stat_of(stats, "written") == 10 && stat_of(stats, "dropped") == 0,
        "%s: written %" G_GINT64_FORMAT ", dropped %" G_GINT64_FORMAT, label,
        stat_of(stats, "written"), stat_of(stats, "dropped"));
  for (guint i = 0; i < tracklets->len; i++) {
    const GstStructure *s = g_ptr_array_index(tracklets, i);
    float e_msg[DIM];
    CHECK(gtu_message_embedding(s, e_msg, DIM) == DIM, "embedding");
    gint64 track = -1;
    gst_structure_get_int64(s, "track-id", &track);
    reid_gallery_hit *hits;
    int n = rows_of(uri, stream, e_msg, &hits);
    CHECK(n == 10, "%s: %d rows", label, n);
    if (n < 1) continue;
    /* the message's embedding finds its own row first, at cosine 1 */
    CHECK(hits[0].track_id == track && hits[0].score > 0.9999f,
          "%s: track %" G_GINT64_FORMAT " found track %lld at %g", label, track,
          (long long)hits[0].track_id, (double)hits[0].score);
    int id, x, y, w, hh;
    track_box((int)track * 3 + 2, &id, &x, &y, &w, &hh);
    CHECK(hits[0].frames == 3 && hits[0].bbox[0] == x && hits[0].bbox[3] == hh, "%s: row columns",
          label);
    /* times: the reference timestamp meta of the first and last frames */
    gint64 first_us = (gint64)((unix_base + (guint64)track * 3 * GST_SECOND / 30) / 1000);
    gint64 last_us = (gint64)((unix_base + (guint64)(track * 3 + 2) * GST_SECOND / 30) / 1000);
    CHECK(llabs(hits[0].first_time - first_us) <= 1 && llabs(hits[0].last_time - last_us) <= 1,
          "%s: times %lld..%lld, want %lld..%lld", label, (long long)hits[0].first_time,
          (long long)hits[0].last_time, (long long)first_us, (long long)last_us);
    CHECK(hits[0].first_pts == (gint64)gst_util_uint64_scale(track * 3, GST_SECOND, 30),
          "%s: first pts", label);
    /* the thumbnail is a JPEG of the largest (last) crop */
    if (i == 3) {
      reid_gallery *g = NULL;
      CHECK_OK(reid_gallery_open(uri, &g));
      uint8_t *jpeg = NULL;
      size_t size = 0;
      if (g) CHECK_OK(reid_gallery_thumbnail(g, hits[0].id, &jpeg, &size));
      reid_gallery_close(g);
      gchar *path = gtu_path("thumb.jpg");
      CHECK(jpeg && g_file_set_contents(path, (const char *)jpeg, (gssize)size, NULL),
            "thumbnail stored");
      reid_image img = {0};
      CHECK_OK(reid_image_load_rgb(path, &img));
      CHECK(img.width == w && img.height == hh, "%s: thumbnail %dx%d, want %dx%d", label, img.width,
            img.height, w, hh);
      double diff = 0;
      for (int r = 0; r < img.height && img.data; r++)
        for (int c = 0; c < img.width * 3; c++)
          diff += fabs((double)img.data[r * img.stride + c] - picture[((y + r) * W + x) * 3 + c]);
      diff /= (double)img.width * img.height * 3;
      CHECK(diff < 10, "%s: thumbnail differs from the crop by %.1f on average", label, diff);
      reid_image_free(&img);
      g_free(path);
      free(jpeg);
    }
    reid_gallery_hits_free(hits, n);
  }
  g_ptr_array_free(tracklets, TRUE);
  g_ptr_array_free(msgs, TRUE);
  gst_object_unref(e);
  gst_object_unref(bus);
  g_free(stream);
}

/* ------------------------------------------------------------ 4 writers */

typedef struct writer_job {
  const char *uri;
  gchar *stream;
  int frames, tracklets, written, out;
} writer_job;

static gpointer run_writer(gpointer data) {
  writer_job *j = data;
  GstBus *bus;
  GstElement *e = make_element(j->uri, j->stream, &bus);
  GstHarness *h = gtu_harness(e, GST_VIDEO_FORMAT_RGB, W, H);
  j->out = push_frames(h, 0, j->frames, 0);
  gst_harness_teardown(h);
  GPtrArray *msgs = gtu_messages(bus);
  GPtrArray *t = gtu_select(msgs, "reid-tracklet");
  j->tracklets = (int)t->len;
  j->written = (int)stat_of(find_stats(msgs), "written");
  g_ptr_array_free(t, TRUE);
  g_ptr_array_free(msgs, TRUE);
  gst_object_unref(e);
  gst_object_unref(bus);
  return NULL;
}

static void test_concurrent(const char *uri, const char *label) {
  writer_job jobs[4];
  GThread *threads[4];
  for (int i = 0; i < 4; i++) {
    jobs[i] = (writer_job){
        .uri = uri, .stream = g_strdup_printf("cc-%s-%d", label, i), .frames = 30 + 3 * i};
    threads[i] = g_thread_new("writer", run_writer, &jobs[i]);
  }
  for (int i = 0; i < 4; i++) g_thread_join(threads[i]);
  for (int i = 0; i < 4; i++) {
    writer_job *j = &jobs[i];
    reid_gallery_hit *hits;
    int n = rows_of(uri, j->stream, NULL, &hits);
    int seen[64] = {0}, dup = 0;
    for (int k = 0; k < n; k++)
      if (hits[k].track_id >= 0 && hits[k].track_id < 64 && seen[hits[k].track_id]++) dup++;
    CHECK(j->out == j->frames && j->tracklets == j->frames / 3 && j->written == j->tracklets &&
              n == j->tracklets && dup == 0,
          "%s writer %d: %d frames out, %d tracklets, %d written, %d rows, %d duplicates", label, i,
          j->out, j->tracklets, j->written, n, dup);
    reid_gallery_hits_free(hits, n);
    g_free(j->stream);
  }
}

/* ------------------------------------------------------------ kill -9 */

/* The child: writes tracklets (JSON lines first, then the gallery) until killed. */
static int child_main(const char *uri, const char *jsonl) {
  GstBus *bus;
  GstElement *e = make_element(uri, "killed", &bus);
  g_object_set(e, "tracklet-location", jsonl, NULL);
  GstHarness *h = gtu_harness(e, GST_VIDEO_FORMAT_RGB, W, H);
  for (int f = 0;; f++) {
    if (gst_harness_push(h, make_frame(f, 0)) != GST_FLOW_OK) return 1;
    gst_buffer_unref(gst_harness_pull(h));
  }
}

static void test_kill(const char *uri, const char *label, char **argv) {
  gchar *jsonl = gtu_path("killed.jsonl");
  g_unlink(jsonl);
  pid_t pid = fork();
  if (pid == 0) {
    /* a fresh process image: no GStreamer threads inherited */
    char *args[16];
    int n = 0;
    args[n++] = "/proc/self/exe";
    for (int i = 1; argv[i] && n < 11; i++) args[n++] = argv[i];
    args[n++] = "--child";
    args[n++] = (char *)uri;
    args[n++] = jsonl;
    args[n] = NULL;
    execv("/proc/self/exe", args);
    _exit(127);
  }
  /* wait until a good number of rows are in */
  reid_gallery_hit *hits = NULL;
  int n = 0;
  for (int tries = 0; tries < 600 && n < 20; tries++) {
    g_usleep(100000);
    reid_gallery_hits_free(hits, n);
    n = rows_of(uri, "killed", NULL, &hits);
  }
  kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "%s: the child was killed", label);
  reid_gallery_hits_free(hits, n);
  n = rows_of(uri, "killed", NULL, &hits);
  gchar *text = gtu_read_file(jsonl);
  gchar **lines = g_strsplit(text ? text : "", "\n", -1);
  int reported = 0, unknown = 0;
  gint64 *ids = g_new0(gint64, g_strv_length(lines) + 1);
  for (gchar **l = lines; *l; l++) {
    const char *p = strstr(*l, "\"track_id\":");
    if (!p || strstr(*l, "\"match\"")) continue;
    ids[reported++] = g_ascii_strtoll(p + 11, NULL, 10);
  }
  int dup = 0;
  for (int k = 0; k < n; k++) {
    int found = 0;
    for (int r = 0; r < reported; r++) found |= ids[r] == hits[k].track_id;
    unknown += !found;
    for (int m = 0; m < k; m++) dup += hits[m].track_id == hits[k].track_id;
  }
  int missing = reported - n;
  fprintf(stderr,
          "%s: kill -9 after %d reported tracklets: %d rows stored, %d missing "
          "(queued, not yet committed)\n",
          label, reported, n, missing);
  CHECK(n >= 20 && unknown == 0 && dup == 0 && missing >= 0 && missing <= 64,
        "%s: %d rows, %d unknown, %d duplicated, %d missing of %d", label, n, unknown, dup, missing,
        reported);
  /* the store is consistent: it opens, counts, and takes new rows */
  reid_gallery *g = NULL;
  CHECK_OK(reid_gallery_open(uri, &g));
  int64_t count = -1;
  if (g) CHECK_OK(reid_gallery_count(g, &count));
  CHECK(count >= n, "%s: count %lld", label, (long long)count);
  reid_gallery_close(g);
  reid_gallery_hits_free(hits, n);
  g_strfreev(lines);
  g_free(ids);
  g_free(text);
  g_free(jsonl);
}

/* ------------------------------------------------------------ errors */

static gchar *start_error(GstElement *e, GstBus *bus, const char *what) {
  GstStateChangeReturn r = gst_element_set_state(e, GST_STATE_PAUSED);
  CHECK(r == GST_STATE_CHANGE_FAILURE, "%s: the state change must fail", what);
  gst_element_set_state(e, GST_STATE_NULL);
  gchar *text = gtu_error_text(bus);
  CHECK(text != NULL, "%s: no error message", what);
  if (text) fprintf(stderr, "%s -> %s\n", what, text);
  return text ? text : g_strdup("");
}

static void test_other_model(const char *uri, const char *label) {
  GstBus *bus;
  GstElement *e = make_element(uri, "other", &bus);
  g_object_set(e, "model", other_model, NULL);
  gchar *text = start_error(e, bus, label);
  CHECK(strstr(text, "resnet18-64x32-s1.safetensors") && strstr(text, "resnet18-64x32-s2"),
        "%s: the error names both models: %s", label, text);
  g_free(text);
  gst_object_unref(e);
  gst_object_unref(bus);
}

static void test_sqlite_errors(void) {
  gchar *path = gtu_path("corrupt.sqlite");
  gchar junk[4096];
  for (int i = 0; i < (int)sizeof junk; i++) junk[i] = (gchar)(i * 37 + 11);
  g_file_set_contents(path, junk, sizeof junk, NULL);
  GstBus *bus;
  GstElement *e = make_element(path, "x", &bus);
  gchar *text = start_error(e, bus, "corrupt sqlite");
  CHECK(strstr(text, "gallery-location") && strstr(text, path) &&
            strstr(text, "not an SQLite gallery"),
        "corrupt: %s", text);
  g_free(text);
  gst_object_unref(e);
  gst_object_unref(bus);
  g_free(path);
}

static void test_wrong_password(const char *uri) {
  const char *colon = strchr(uri + strlen("postgresql://"), ':'), *at = strchr(uri, '@');
  gchar *bad = g_strdup_printf("%.*s:not-the-password%s", (int)(colon - uri), uri, at);
  GstBus *bus;
  GstElement *e = make_element(bad, "x", &bus);
  gchar *text = start_error(e, bus, "wrong password");
  CHECK(strstr(text, "password authentication failed") && strstr(text, ":***@") &&
            !strstr(text, "not-the-password"),
        "wrong password: %s", text);
  g_free(text);
  g_free(bad);
  gst_object_unref(e);
  gst_object_unref(bus);
}

/* ------------------------------------------------------------ server outage */

static void test_outage(const char *uri) {
  GstBus *bus;
  GstElement *e = make_element(uri, "outage", &bus);
  g_object_set(e, "gallery-queue", 8, "gallery-flush-timeout", 30000, NULL);
  GstHarness *h = gtu_harness(e, GST_VIDEO_FORMAT_RGB, W, H);
  int out = push_frames(h, 0, 15, 0); /* 4 tracklets end (the 5th at frame 15) */
  reid_gallery_hit *hits = NULL;
  int n = 0;
  for (int tries = 0; tries < 100 && n < 4; tries++) {
    reid_gallery_hits_free(hits, n);
    n = rows_of(uri, "outage", NULL, &hits);
    if (n < 4) g_usleep(50000);
  }
  reid_gallery_hits_free(hits, n);
  CHECK(n == 4, "outage: %d rows before the stop", n);
  CHECK(system(getenv("REID_TEST_PG_STOP")) == 0, "pg_ctl stop");
  /* 20 tracklets end while the server is down: 8 wait, 12 are dropped; frames flow */
  gint64 t0 = g_get_monotonic_time();
  out += push_frames(h, 15, 75, 0);
  double seconds = (double)(g_get_monotonic_time() - t0) / 1e6;
  CHECK(system(getenv("REID_TEST_PG_START")) == 0, "pg_ctl start");
  /* the 8 queued tracklets are written once the writer reconnects (backoff <= 5 s) */
  for (int tries = 0; tries < 200 && n < 12; tries++) {
    g_usleep(50000);
    n = rows_of(uri, "outage", NULL, &hits);
    reid_gallery_hits_free(hits, n);
  }
  CHECK(n == 12, "outage: %d rows once the server is back, want 4 + 8", n);
  out += push_frames(h, 75, 90, 0); /* 6 more end after the restart (the last one at stop) */
  gst_harness_teardown(h);
  /* one pass over the bus (a filtered pop discards the other types): the counts,
   * and the warnings of the outage (naming the location, password hidden) and drops */
  GPtrArray *msgs = g_ptr_array_new_with_free_func((GDestroyNotify)gst_structure_free);
  int outage_warned = 0, drop_warned = 0;
  GstMessage *m;
  while ((m = gst_bus_pop(bus))) {
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ELEMENT)
      g_ptr_array_add(msgs, gst_structure_copy(gst_message_get_structure(m)));
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING) {
      GError *err = NULL;
      gst_message_parse_warning(m, &err, NULL);
      fprintf(stderr, "outage warning: %s\n", err->message);
      if (strstr(err->message, ":***@") && !strstr(err->message, "reid-test-")) {
        outage_warned |= strstr(err->message, "retrying") != NULL;
        drop_warned |= strstr(err->message, "dropped") != NULL;
      }
      g_error_free(err);
    }
    gst_message_unref(m);
  }
  const GstStructure *stats = find_stats(msgs);
  fprintf(stderr,
          "outage: 60 frames in %.2f s with the server down; written %" G_GINT64_FORMAT
          ", dropped %" G_GINT64_FORMAT ", failures %" G_GINT64_FORMAT "\n",
          seconds, stat_of(stats, "written"), stat_of(stats, "dropped"),
          stat_of(stats, "failures"));
  CHECK(out == 90, "outage: %d of 90 frames came out", out);
  CHECK(seconds < 20, "outage: the streaming thread waited (%.1f s for 60 frames)", seconds);
  CHECK(stat_of(stats, "dropped") == 12 && stat_of(stats, "written") == 4 + 8 + 6 &&
            stat_of(stats, "failures") >= 1,
        "outage: written %" G_GINT64_FORMAT ", dropped %" G_GINT64_FORMAT,
        stat_of(stats, "written"), stat_of(stats, "dropped"));
  n = rows_of(uri, "outage", NULL, &hits);
  CHECK(n == 18, "outage: %d rows after the restart, want 18", n);
  reid_gallery_hits_free(hits, n);
  CHECK(outage_warned && drop_warned, "outage: warnings (outage %d, drops %d)", outage_warned,
        drop_warned);
  g_ptr_array_free(msgs, TRUE);
  gst_object_unref(e);
  gst_object_unref(bus);
}

int main(int argc, char **argv) {
  /* `--child URI JSONL` (last): the kill -9 test's writer process */
  const char *child_uri = NULL, *child_jsonl = NULL;
  if (argc >= 4 && !strcmp(argv[argc - 3], "--child")) {
    child_uri = argv[argc - 2];
    child_jsonl = argv[argc - 1];
    argc -= 3;
  }
  gtu_init(argc, argv, child_uri ? "test_reidembed_gallery_child" : "test_reidembed_gallery");
  model = gtu_model("resnet18", 64, 32, 1);
  other_model = gtu_model("resnet18", 64, 32, 2);
  picture = gtu_picture(W, H, 3);
  if (child_uri) return child_main(child_uri, child_jsonl);

  gchar *sqlite = gtu_path("gallery.sqlite");
  remove_sqlite(sqlite);
  gchar *sqlite_uri = g_strconcat("sqlite:", sqlite, NULL);
  const char *pg = getenv("REID_TEST_PG");
  const char *uris[2] = {sqlite_uri, pg && *pg ? pg : NULL};
  const char *labels[2] = {"sqlite", "postgresql"};
  for (int b = 0; b < 2; b++) {
    if (!uris[b]) {
      fprintf(stderr, "REID_TEST_PG not set: PostgreSQL cases skipped\n");
      continue;
    }
    fprintf(stderr, "== %s\n", labels[b]);
    test_rows(uris[b], labels[b]);
    test_concurrent(uris[b], labels[b]);
    test_kill(uris[b], labels[b], argv);
    test_other_model(uris[b], labels[b]);
  }
  test_sqlite_errors();
  test_fp16();
  if (uris[1]) {
    test_wrong_password(uris[1]);
    test_outage(uris[1]);
  }
  g_free(sqlite_uri);
  g_free(sqlite);
  g_free(picture);
  g_free(model);
  g_free(other_model);
  return gtu_finish("test_reidembed_gallery");
}
