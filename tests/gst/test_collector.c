/* The tracklet collector (gst/collector.h) without GStreamer: evenly spaced crops of tracks
 * of any length with at most 2 x frames crops held, crops that are the frame's own pixels,
 * the folder layout and index lines, who was seen with whom, min-frames, serials that go
 * on across runs, sanitised stream names; and the limits: a writer stuck on the disk (the
 * index is a FIFO nobody reads) never blocks the streaming side, which drops at the queue
 * and counts; max-bytes; the memory bound; a disk that refuses writes (RLIMIT_FSIZE: EFBIG,
 * as a full disk gives ENOSPC) warns once, leaves no half tracklet and recovers; bad
 * locations fail at open naming the folder. */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "collector.h"
#include "json.h"
#include "test_util.h"
#include "unit_workdir.h"

#define W 64
#define H 48

static char work[1024];
static uint8_t pixels[W * H * 3];
static reid_frame frame;

/* Frame f: every pixel of box column band x in [8 * t, 8 * t + 8) is 10 * (f % 20) + 5 * t. */
static void paint(int64_t f) {
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      for (int k = 0; k < 3; k++)
        pixels[(y * W + x) * 3 + k] = (uint8_t)(10 * (f % 20) + 5 * (x / 8));
}

typedef struct events {
  pthread_mutex_t mu;
  int dropped[REID_DROP_REASONS], warnings, written;
  char last_warning[512];
} events;

static void on_event(void *user, const reid_collect_event *e) {
  events *ev = user;
  pthread_mutex_lock(&ev->mu);
  if (e->type == REID_COLLECT_DROPPED) ev->dropped[e->reason]++;
  if (e->type == REID_COLLECT_WARNING) {
    ev->warnings++;
    snprintf(ev->last_warning, sizeof ev->last_warning, "%s", e->message);
  }
  if (e->type == REID_COLLECT_WRITTEN) ev->written++;
  pthread_mutex_unlock(&ev->mu);
}

static reid_collector_options options(const char *location, events *ev) {
  reid_collector_options o = {.location = location,
                              .stream = "cam",
                              .min_frames = 1,
                              .frames = 4,
                              .queue_size = 8,
                              .memory = 64 << 20,
                              .jpeg_quality = 90,
                              .notify = on_event,
                              .user = ev};
  return o;
}

/* Tracks ids[0..n) are seen together in frames [from, to), box of track i in band i. */
static void run_frames(reid_collector *c, const int64_t *ids, int n, int64_t from, int64_t to) {
  reid_box boxes[8];
  uint8_t want[8];
  for (int i = 0; i < n; i++) boxes[i] = (reid_box){(float)(8 * (ids[i] % 8)), 4, 8, 20};
  for (int64_t f = from; f < to; f++) {
    int wanted = reid_collector_observe(c, f, (uint64_t)f * 40000000u, ids, boxes, n, want);
    CHECK(wanted >= 0, "observe: %s", reid_last_error());
    if (wanted > 0) {
      paint(f);
      CHECK_OK(reid_collector_copy(c, &frame, ids, boxes, want, n));
    }
  }
}

static json_value *read_index(const char *folder, int *lines) {
  char path[1200], *text = NULL;
  snprintf(path, sizeof path, "%s/index.jsonl", folder);
  FILE *f = fopen(path, "r");
  size_t len = 0;
  *lines = 0;
  if (!f) return NULL;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
    text = realloc(text, len + n + 3);
    memcpy(text + len, buf, n);
    len += n;
  }
  fclose(f);
  if (!text) return NULL;
  /* lines -> one JSON array */
  char *arr = malloc(2 * len + 3);
  size_t k = 0;
  arr[k++] = '[';
  for (size_t i = 0; i < len; i++) {
    if (text[i] == '\n') {
      (*lines)++;
      if (i + 1 < len) arr[k++] = ',';
    } else {
      arr[k++] = text[i];
    }
  }
  arr[k++] = ']';
  json_value *v = NULL;
  CHECK_OK(json_parse(arr, k, &v));
  free(arr);
  free(text);
  return v;
}

static const json_value *line_of_track(const json_value *all, int64_t track, const char *event) {
  for (size_t i = 0; all && i < all->count; i++) {
    const json_value *l = &all->items[i], *t = json_get(l, "track_id"), *e = json_get(l, "event");
    int64_t id;
    if (t && json_get_int64(t, &id) && id == track && e && !strcmp(e->str, event)) return l;
  }
  return NULL;
}

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* The crop files of a collected line: their frames, and each decoded crop's mean value. */
static int crop_frames(const char *folder, const json_value *line, int64_t *frames, int max,
                       int band) {
  const json_value *dir = json_get(line, "dir"), *crops = json_get(line, "crops");
  if (!dir || !crops || crops->type != JSON_ARRAY) return -1;
  int n = 0;
  for (size_t i = 0; i < crops->count && n < max; i++) {
    const json_value *file = json_get(&crops->items[i], "file");
    int64_t f = -1;
    json_get_int64(json_get(&crops->items[i], "frame"), &f);
    frames[n++] = f;
    char path[1400];
    snprintf(path, sizeof path, "%s/%s/%s", folder, dir->str, file ? file->str : "?");
    reid_image img = {0};
    CHECK_OK(reid_image_load_rgb(path, &img));
    if (!img.data) continue;
    CHECK(img.width == 8 && img.height == 20, "%s: %dx%d", path, img.width, img.height);
    double sum = 0;
    for (int k = 0; k < img.width * img.height * 3; k++) sum += img.data[k];
    double mean = sum / (img.width * img.height * 3), want = 10 * (f % 20) + 5 * band;
    CHECK(fabs(mean - want) < 3, "%s: mean %.1f, frame %lld painted %.0f", path, mean, (long long)f,
          want);
    reid_image_free(&img);
  }
  return n;
}

/* Until the writer has written everything queued. */
static void wait_idle(reid_collector *c) {
  reid_collector_stats s;
  for (int i = 0; i < 1000; i++) {
    reid_collector_stats_get(c, &s);
    if (s.held == 0) return;
    usleep(5000);
  }
  CHECK(0, "the writer did not finish in 5 s");
}

static void test_even_crops(void) {
  char loc[1100], folder[1200];
  snprintf(loc, sizeof loc, "%s/even", work);
  events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
  reid_collector_options o = options(loc, &ev);
  o.stream = "cam 1/../x";
  reid_collector *c = NULL;
  CHECK_OK(reid_collector_open(&o, &c));
  if (!c) return;
  snprintf(folder, sizeof folder, "%s", reid_collector_folder(c));
  CHECK(strstr(folder, "/even/cam_1_.._x"), "folder %s", folder);
  const int lengths[] = {1, 3, 4, 5, 7, 8, 9, 16, 17, 100, 1000};
  enum { N_LENGTHS = sizeof lengths / sizeof *lengths };
  int64_t start[N_LENGTHS], frame_no = 0;
  const uint64_t crop_bytes = 8 * 20 * 3;
  for (int i = 0; i < N_LENGTHS; i++) {
    int64_t id = 100 + i;
    start[i] = frame_no;
    for (int64_t f = 0; f < lengths[i]; f++) {
      run_frames(c, &id, 1, frame_no + f, frame_no + f + 1);
      reid_collector_stats s;
      reid_collector_stats_get(c, &s);
      CHECK(s.held <= 2 * 4 * crop_bytes, "length %d frame %lld: %llu bytes held", lengths[i],
            (long long)f, (unsigned long long)s.held);
    }
    reid_collector_end(c, id, (uint64_t)frame_no * 40000000u, UINT64_MAX);
    frame_no += lengths[i];
    wait_idle(c);
  }
  reid_collector_close(c);
  CHECK(ev.written == N_LENGTHS, "%d written", ev.written);
  int lines;
  json_value *all = read_index(folder, &lines);
  CHECK(lines == N_LENGTHS, "%d index lines", lines);
  for (int i = 0; all && i < N_LENGTHS; i++) {
    const json_value *l = line_of_track(all, 100 + i, "collected");
    CHECK(l != NULL, "no line for length %d", lengths[i]);
    if (!l) continue;
    int64_t fr[8], frames = -1;
    int n = crop_frames(folder, l, fr, 8, (100 + i) % 8);
    json_get_int64(json_get(l, "frames"), &frames);
    int want = lengths[i] < 4 ? lengths[i] : 4;
    CHECK(n == want && frames == lengths[i], "length %d: %d crops, frames %lld", lengths[i], n,
          (long long)frames);
    if (n < 1) continue;
    CHECK(fr[0] == start[i], "length %d: first crop at %lld", lengths[i], (long long)fr[0]);
    CHECK(fr[n - 1] - start[i] >= (lengths[i] - 1) / 2, "length %d: last crop at +%lld", lengths[i],
          (long long)(fr[n - 1] - start[i]));
    int64_t lo = INT64_MAX, hi = 0;
    for (int k = 1; k < n; k++) {
      int64_t g = fr[k] - fr[k - 1];
      lo = g < lo ? g : lo, hi = g > hi ? g : hi;
    }
    CHECK(n < 2 || (lo >= 1 && hi <= 2 * lo), "length %d: gaps %lld..%lld", lengths[i],
          (long long)lo, (long long)hi);
    const json_value *first = json_get(l, "first_pts"), *last = json_get(l, "last_pts");
    CHECK(first && first->type == JSON_NUMBER && last && last->type == JSON_NULL, "pts");
  }
  json_free(all);

  /* a second run goes on numbering after the first: "000012" */
  o.frames = 2;
  CHECK_OK(reid_collector_open(&o, &c));
  if (!c) return;
  int64_t id = 7;
  run_frames(c, &id, 1, 0, 3);
  reid_collector_end(c, id, 0, 0);
  reid_collector_close(c);
  char path[1300];
  snprintf(path, sizeof path, "%s/%06d/0000000002.jpg", folder, N_LENGTHS + 1);
  CHECK(file_exists(path), "second run: %s missing", path);
}

/* Tracks 1 and 2 together, then 2 and 3; track 4 alone; track 5 too short. */
static void test_together_and_short(void) {
  char loc[1100], folder[1200];
  snprintf(loc, sizeof loc, "%s/together", work);
  events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
  reid_collector_options o = options(loc, &ev);
  o.min_frames = 5;
  reid_collector *c = NULL;
  CHECK_OK(reid_collector_open(&o, &c));
  if (!c) return;
  snprintf(folder, sizeof folder, "%s", reid_collector_folder(c));
  const int64_t a[2] = {1, 2}, b[3] = {2, 3, 3}, alone = 4, brief = 5;
  run_frames(c, a, 2, 0, 10);
  reid_collector_end(c, 1, 0, 0);
  run_frames(c, b, 3, 10, 20); /* id 3 twice in each frame: one crop, one frame */
  reid_collector_end(c, 2, 0, 0);
  reid_collector_end(c, 3, 0, 0);
  run_frames(c, &alone, 1, 20, 30);
  run_frames(c, &brief, 1, 20, 24);
  reid_collector_end(c, 4, 0, 0);
  reid_collector_end(c, 5, 0, 0);
  reid_collector_end(c, 99, 0, 0); /* never seen: nothing */
  reid_collector_stats s;
  reid_collector_close(c);
  CHECK(ev.written == 4, "%d written", ev.written);
  int lines;
  json_value *all = read_index(folder, &lines);
  const char *want[4][3] = {{"000002"}, {"000001", "000003"}, {"000002"}, {NULL}};
  for (int t = 1; all && t <= 4; t++) {
    const json_value *l = line_of_track(all, t, "collected");
    const json_value *with = l ? json_get(l, "together_with") : NULL;
    CHECK(with && with->type == JSON_ARRAY, "track %d: together_with", t);
    if (!with) continue;
    size_t n = 0;
    while (n < 3 && want[t - 1][n]) n++;
    CHECK(with->count == n, "track %d: %zu together", t, with->count);
    for (size_t k = 0; k < n && k < with->count; k++)
      CHECK(!strcmp(with->items[k].str, want[t - 1][k]), "track %d: %s", t, with->items[k].str);
    int64_t frames = 0;
    json_get_int64(json_get(l, "frames"), &frames);
    CHECK(frames == (t == 2 ? 20 : 10), "track %d: %lld frames", t, (long long)frames);
  }
  CHECK(!line_of_track(all, 5, "collected") && !line_of_track(all, 5, "dropped"), "short track");
  json_free(all);
  (void)s;
}

/* The writer blocks on the disk (index.jsonl is a FIFO nobody reads yet): ending tracks
 * never waits; past the queue they are dropped and counted; once the FIFO is read the
 * writer catches up and the drops are in the index. */
typedef struct drain_arg {
  char path[1300];
  char *text;
  size_t len;
} drain_arg;

static void *drain(void *p) {
  drain_arg *d = p;
  int fd = open(d->path, O_RDONLY);
  char buf[4096];
  ssize_t n;
  while (fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0) {
    d->text = realloc(d->text, d->len + (size_t)n + 1);
    memcpy(d->text + d->len, buf, (size_t)n);
    d->len += (size_t)n;
    d->text[d->len] = 0;
  }
  if (fd >= 0) close(fd);
  return NULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_stuck_disk(void) {
  char loc[1100];
  snprintf(loc, sizeof loc, "%s/stuck", work);
  mkdir(loc, 0755);
  drain_arg d = {0};
  snprintf(d.path, sizeof d.path, "%s/cam/", loc);
  mkdir(d.path, 0755);
  strcat(d.path, "index.jsonl");
  unlink(d.path);
  CHECK(mkfifo(d.path, 0644) == 0, "mkfifo %s", d.path);
  events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
  reid_collector_options o = options(loc, &ev);
  o.queue_size = 2;
  reid_collector *c = NULL;
  CHECK_OK(reid_collector_open(&o, &c));
  if (!c) return;
  double slowest = 0;
  for (int t = 0; t < 40; t++) {
    int64_t id = 1000 + t;
    double t0 = now_s();
    run_frames(c, &id, 1, 10 * t, 10 * t + 10);
    reid_collector_end(c, id, 0, 0);
    double dt = now_s() - t0;
    slowest = dt > slowest ? dt : slowest;
  }
  usleep(100000);
  reid_collector_stats s;
  reid_collector_stats_get(c, &s);
  /* the writer holds one tracklet (stuck on the index), the queue two: the rest dropped */
  CHECK(s.dropped[REID_DROP_QUEUE_FULL] >= 40 - 3 && s.collected == 0,
        "stuck disk: %lld queue-full drops, %lld collected",
        (long long)s.dropped[REID_DROP_QUEUE_FULL], (long long)s.collected);
  CHECK(ev.dropped[REID_DROP_QUEUE_FULL] == s.dropped[REID_DROP_QUEUE_FULL], "%d drop events",
        ev.dropped[REID_DROP_QUEUE_FULL]);
  /* nobody reads the FIFO yet: had ending a track waited for the writer, we would not be
   * here; the time is CPU time only (printed, not checked: the machine may be busy) */
  fprintf(stderr, "slowest track on the streaming side: %.3f s\n", slowest);
  pthread_t reader;
  pthread_create(&reader, NULL, drain, &d);
  reid_collector_close(c); /* the writer catches up, then the FIFO closes */
  pthread_join(reader, NULL);
  int collected = 0, dropped = 0;
  for (char *p = d.text; p && (p = strstr(p, "\"event\":\"")); p++)
    collected += !strncmp(p, "\"event\":\"collected\"", 19),
        dropped += !strncmp(p, "\"event\":\"dropped\"", 17);
  CHECK(collected + dropped == 40 && dropped == s.dropped[REID_DROP_QUEUE_FULL],
        "index: %d collected, %d dropped lines", collected, dropped);
  CHECK(d.text && strstr(d.text, "\"reason\":\"queue-full\""), "drop reason in the index");
  free(d.text);
}

/* max-bytes counts what is already in the folder; the memory bound drops a track. */
static void test_limits(void) {
  char loc[1100], path[1300];
  snprintf(loc, sizeof loc, "%s/limits", work);
  mkdir(loc, 0755);
  snprintf(path, sizeof path, "%s/cam", loc);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/cam/old.bin", loc);
  FILE *f = fopen(path, "w");
  for (int i = 0; f && i < 1000; i++) fputc('x', f);
  if (f) fclose(f);
  events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
  reid_collector_options o = options(loc, &ev);
  o.max_bytes = 1200;
  reid_collector *c = NULL;
  CHECK_OK(reid_collector_open(&o, &c));
  if (!c) return;
  int64_t id = 1;
  run_frames(c, &id, 1, 0, 10);
  reid_collector_end(c, id, 0, 0);
  reid_collector_stats s;
  reid_collector_close(c);
  snprintf(path, sizeof path, "%s/cam/000001", loc);
  CHECK(ev.dropped[REID_DROP_MAX_BYTES] == 1 && ev.written == 0 && !file_exists(path),
        "max-bytes: %d drops, %d written", ev.dropped[REID_DROP_MAX_BYTES], ev.written);

  memset(&ev.dropped, 0, sizeof ev.dropped);
  o.max_bytes = 0;
  o.memory = 3 * 8 * 20 * 3; /* three crops */
  CHECK_OK(reid_collector_open(&o, &c));
  if (!c) return;
  const int64_t two[2] = {1, 2};
  run_frames(c, two, 2, 0, 3); /* crops of 1 and 2 at frames 0, 1: the fourth crop is over */
  reid_collector_stats_get(c, &s);
  CHECK(s.held <= o.memory, "%llu bytes held", (unsigned long long)s.held);
  reid_collector_end(c, 1, 0, 0);
  reid_collector_end(c, 2, 0, 0);
  reid_collector_close(c);
  CHECK(ev.dropped[REID_DROP_MEMORY] == 1 && ev.written == 1, "memory: %d drops, %d written",
        ev.dropped[REID_DROP_MEMORY], ev.written);
}

/* Writes fail (RLIMIT_FSIZE: EFBIG, the errno a full disk's ENOSPC stands for): one warning,
 * drops counted, no half tracklet left; writing works again afterwards. */
static void test_refused_writes(void) {
  char loc[1100], folder[1200];
  snprintf(loc, sizeof loc, "%s/refused", work);
  events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
  reid_collector_options o = options(loc, &ev);
  reid_collector *c = NULL;
  CHECK_OK(reid_collector_open(&o, &c));
  if (!c) return;
  snprintf(folder, sizeof folder, "%s", reid_collector_folder(c));
  struct rlimit old, tiny;
  getrlimit(RLIMIT_FSIZE, &old);
  tiny = old;
  tiny.rlim_cur = 64;
  signal(SIGXFSZ, SIG_IGN);
  CHECK(setrlimit(RLIMIT_FSIZE, &tiny) == 0, "setrlimit");
  for (int t = 0; t < 5; t++) {
    int64_t id = t + 1;
    run_frames(c, &id, 1, 10 * t, 10 * t + 10);
    reid_collector_end(c, id, 0, 0);
  }
  reid_collector_stats s;
  for (int i = 0; i < 500; i++) { /* wait for the writer */
    reid_collector_stats_get(c, &s);
    if (s.dropped[REID_DROP_WRITE_ERROR] == 5) break;
    usleep(10000);
  }
  setrlimit(RLIMIT_FSIZE, &old);
  CHECK(s.dropped[REID_DROP_WRITE_ERROR] == 5 && ev.warnings == 1,
        "refused: %lld drops, %d warnings", (long long)s.dropped[REID_DROP_WRITE_ERROR],
        ev.warnings);
  CHECK(strstr(ev.last_warning, "cannot write") && strstr(ev.last_warning, "too large"),
        "warning: %s", ev.last_warning);
  char path[1300];
  for (int t = 1; t <= 5; t++) {
    snprintf(path, sizeof path, "%s/.%06d.part", folder, t);
    CHECK(!file_exists(path), "%s left behind", path);
  }
  int64_t id = 6;
  run_frames(c, &id, 1, 100, 110);
  reid_collector_end(c, id, 0, 0);
  reid_collector_close(c);
  snprintf(path, sizeof path, "%s/000006", folder);
  CHECK(ev.written == 1 && file_exists(path), "after the disk recovered: %d written", ev.written);
}

static void test_bad_location(void) {
  char file[1100], loc[1200];
  snprintf(file, sizeof file, "%s/a-file", work);
  FILE *f = fopen(file, "w");
  if (f) fclose(f);
  events ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
  snprintf(loc, sizeof loc, "%s/sub", file);
  reid_collector_options o = options(loc, &ev);
  reid_collector *c = NULL;
  CHECK(reid_collector_open(&o, &c) == REID_EIO && !c, "under a file");
  CHECK(strstr(reid_last_error(), loc) && strstr(reid_last_error(), "cannot create the folder"),
        "message: %s", reid_last_error());
  o.location = work;
  o.stream = "a-file"; /* the stream's folder is a file */
  CHECK(reid_collector_open(&o, &c) == REID_EIO && strstr(reid_last_error(), "not a folder"),
        "stream folder is a file: %s", reid_last_error());
  o.location = "";
  CHECK(reid_collector_open(&o, &c) == REID_EINVAL, "empty location");
  o.location = work;
  o.stream = "ok";
  o.frames = 0;
  CHECK(reid_collector_open(&o, &c) == REID_EINVAL, "frames 0");
}

int main(int argc, char **argv) {
  const char *w = unit_workdir(argc, argv);
  if (!w) return 1;
  snprintf(work, sizeof work, "%s", w);
  char cmd[6000];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'/even '%s'/together '%s'/stuck '%s'/limits '%s'/refused",
           work, work, work, work, work);
  if (system(cmd) != 0) return 1;
  frame = (reid_frame){
      .format = REID_PIX_RGB, .width = W, .height = H, .planes = {pixels}, .strides = {3 * W}};
  test_even_crops();
  test_together_and_short();
  test_stuck_disk();
  test_limits();
  test_refused_writes();
  test_bad_location();
  return test_finish("test_collector");
}
