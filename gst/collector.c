/* The collector's streaming side: per live track a decimating buffer of crops, who was seen
 * with whom, and the bounded hand-over to the writer thread (collect_writer.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collect_internal.h"

typedef struct collect_track {
  int64_t track_id;
  int serial;
  int64_t last_frame;
  int frames;  /* distinct frames seen */
  int stride;  /* crops are taken at positions k % stride == 0 */
  int dropped; /* -1, or the reason its crops were given up */
  int64_t want_frame;
  uint64_t want_pts;
  int want_k;
  collect_crop *crops; /* [2 * frames] */
  int n_crops;
  int *partners; /* serials, sorted, unique */
  int n_partners, cap_partners;
} collect_track;

static const char *const drop_names[REID_DROP_REASONS] = {"queue-full", "max-bytes", "memory",
                                                          "write-error"};

const char *reid_collect_drop_name(reid_collect_drop r) {
  return (unsigned)r < REID_DROP_REASONS ? drop_names[r] : "unknown";
}

/* ------------------------------------------------------------ drops and jobs */

uint64_t collect_job_free(collect_job *j) {
  uint64_t bytes = 0;
  for (int i = 0; i < j->n_crops; i++) {
    bytes += j->crops[i].crop.bytes;
    reid_crop_free(&j->crops[i].crop);
  }
  free(j->crops);
  free(j->partners);
  free(j);
  return bytes;
}

static void push_job(reid_collector *c, collect_job *j) { /* mu held */
  j->next = NULL;
  if (c->tail)
    c->tail->next = j;
  else
    c->head = j;
  c->tail = j;
  pthread_cond_signal(&c->wake);
}

int64_t collect_count_drop(reid_collector *c, reid_collect_drop reason, int64_t track_id,
                           int serial, int frames, uint64_t first_pts, uint64_t last_pts,
                           int queue_line) {
  collect_job *line = queue_line ? calloc(1, sizeof *line) : NULL;
  pthread_mutex_lock(&c->mu);
  c->stats.dropped[reason]++;
  int64_t total = 0;
  for (int r = 0; r < REID_DROP_REASONS; r++) total += c->stats.dropped[r];
  if (line && c->queued_drops < COLLECT_MAX_DROP_LINES) {
    *line = (collect_job){.is_drop = 1,
                          .reason = reason,
                          .track_id = track_id,
                          .serial = serial,
                          .frames = frames,
                          .first_pts = first_pts,
                          .last_pts = last_pts,
                          .dropped_total = total};
    c->queued_drops++;
    push_job(c, line);
    line = NULL;
  }
  pthread_mutex_unlock(&c->mu);
  free(line); /* too many drop lines waiting: counted only (dropped_total of later lines) */
  if (c->o.notify) {
    reid_collect_event e = {.type = REID_COLLECT_DROPPED,
                            .stream = c->stream,
                            .track_id = track_id,
                            .reason = reason,
                            .frames = frames,
                            .dropped_total = total};
    c->o.notify(c->o.user, &e);
  }
  return total;
}

static void release(reid_collector *c, uint64_t bytes) {
  pthread_mutex_lock(&c->mu);
  c->stats.held -= bytes;
  pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------ tracks */

static uint64_t free_crops(collect_crop *crops, int n) {
  uint64_t bytes = 0;
  for (int i = 0; i < n; i++) {
    bytes += crops[i].crop.bytes;
    reid_crop_free(&crops[i].crop);
  }
  return bytes;
}

static void track_free(reid_collector *c, collect_track *t) {
  release(c, free_crops(t->crops, t->n_crops));
  free(t->crops);
  free(t->partners);
  free(t);
}

/* Position of track_id in the sorted live list, or where it would go (*found = 0). */
static int track_position(const reid_collector *c, int64_t id, int *found) {
  int lo = 0, hi = c->n_tracks;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (c->tracks[mid]->track_id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = lo < c->n_tracks && c->tracks[lo]->track_id == id;
  return lo;
}

static collect_track *track_get(reid_collector *c, int64_t id, int create) {
  int found, at = track_position(c, id, &found);
  if (found) return c->tracks[at];
  if (!create) return NULL;
  if (c->n_tracks == c->cap_tracks) {
    int cap = c->cap_tracks ? 2 * c->cap_tracks : 64;
    collect_track **grown = realloc(c->tracks, sizeof *grown * (size_t)cap);
    if (!grown) return NULL;
    c->tracks = grown;
    c->cap_tracks = cap;
  }
  collect_track *t = calloc(1, sizeof *t);
  if (t) t->crops = calloc(2 * (size_t)c->o.frames, sizeof *t->crops);
  if (!t || !t->crops) {
    if (t) free(t);
    return NULL;
  }
  t->track_id = id;
  t->serial = c->next_serial++;
  t->last_frame = INT64_MIN;
  t->stride = 1;
  t->dropped = -1;
  memmove(c->tracks + at + 1, c->tracks + at, sizeof *c->tracks * (size_t)(c->n_tracks - at));
  c->tracks[at] = t;
  c->n_tracks++;
  return t;
}

static collect_track *track_take(reid_collector *c, int64_t id) {
  int found, at = track_position(c, id, &found);
  if (!found) return NULL;
  collect_track *t = c->tracks[at];
  memmove(c->tracks + at, c->tracks + at + 1, sizeof *c->tracks * (size_t)(c->n_tracks - at - 1));
  c->n_tracks--;
  return t;
}

/* Adds `serial` to the sorted partner set of t (at most COLLECT_MAX_PARTNERS). */
static int add_partner(collect_track *t, int serial) {
  int lo = 0, hi = t->n_partners;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (t->partners[mid] < serial)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < t->n_partners && t->partners[lo] == serial) return 0;
  if (t->n_partners == COLLECT_MAX_PARTNERS) return 0;
  if (t->n_partners == t->cap_partners) {
    int cap = t->cap_partners ? 2 * t->cap_partners : 8;
    int *grown = realloc(t->partners, sizeof *grown * (size_t)cap);
    if (!grown) return -1;
    t->partners = grown;
    t->cap_partners = cap;
  }
  memmove(t->partners + lo + 1, t->partners + lo,
          sizeof *t->partners * (size_t)(t->n_partners - lo));
  t->partners[lo] = serial;
  t->n_partners++;
  return 0;
}

/* Every other crop goes (keeping positions that are multiples of 2 * stride). */
static uint64_t thin(collect_track *t) {
  uint64_t freed = 0;
  t->stride *= 2;
  int kept = 0;
  for (int i = 0; i < t->n_crops; i++) {
    if (t->crops[i].k % t->stride == 0) {
      t->crops[kept++] = t->crops[i];
    } else {
      freed += t->crops[i].crop.bytes;
      reid_crop_free(&t->crops[i].crop);
    }
  }
  t->n_crops = kept;
  return freed;
}

/* Gives up the crops of t (memory limit); the track is reported as dropped when it ends. */
static void give_up(reid_collector *c, collect_track *t, reid_collect_drop reason) {
  release(c, free_crops(t->crops, t->n_crops));
  t->n_crops = 0;
  t->dropped = (int)reason;
}

/* ------------------------------------------------------------ streaming side */

int reid_collector_observe(reid_collector *c, int64_t frame, uint64_t pts, const int64_t *ids,
                           const reid_box *boxes, int n, uint8_t *want) {
  (void)boxes;
  if (n > c->cap_seen) {
    collect_track **grown = realloc(c->seen, sizeof *grown * (size_t)n);
    if (!grown) {
      reid_fail(REID_ENOMEM, "collector: out of memory for %d objects", n);
      return -1;
    }
    c->seen = grown;
    c->cap_seen = n;
  }
  memset(want, 0, (size_t)n);
  int m = 0, wanted = 0;
  for (int i = 0; i < n; i++) {
    collect_track *t = track_get(c, ids[i], 1);
    if (!t) {
      reid_fail(REID_ENOMEM, "collector: out of memory for track %lld", (long long)ids[i]);
      return -1;
    }
    if (t->last_frame == frame) continue; /* the same id twice in one frame */
    t->last_frame = frame;
    int k = t->frames++;
    c->seen[m++] = t;
    if (t->dropped < 0 && k % t->stride == 0) {
      want[i] = 1;
      wanted++;
      t->want_frame = frame;
      t->want_pts = pts;
      t->want_k = k;
    }
  }
  for (int a = 0; a < m; a++)
    for (int b = a + 1; b < m; b++)
      if (add_partner(c->seen[a], c->seen[b]->serial) ||
          add_partner(c->seen[b], c->seen[a]->serial)) {
        reid_fail(REID_ENOMEM, "collector: out of memory");
        return -1;
      }
  return wanted;
}

reid_status reid_collector_copy(reid_collector *c, const reid_frame *f, const int64_t *ids,
                                const reid_box *boxes, const uint8_t *want, int n) {
  for (int i = 0; i < n; i++) {
    if (!want[i]) continue;
    collect_track *t = track_get(c, ids[i], 0);
    if (!t || t->dropped >= 0 || t->want_frame != t->last_frame) continue;
    collect_crop cc = {.frame = t->want_frame, .pts = t->want_pts, .box = boxes[i], .k = t->want_k};
    reid_status st = reid_crop_copy(f, &boxes[i], &cc.crop);
    if (st == REID_EINVAL) continue; /* nothing of the box inside the frame */
    if (st != REID_OK) return st;
    pthread_mutex_lock(&c->mu);
    int fits = c->stats.held + cc.crop.bytes <= c->o.memory;
    if (fits) c->stats.held += cc.crop.bytes;
    pthread_mutex_unlock(&c->mu);
    if (!fits) {
      reid_crop_free(&cc.crop);
      give_up(c, t, REID_DROP_MEMORY);
      continue;
    }
    t->crops[t->n_crops++] = cc;
    while (t->n_crops >= 2 * c->o.frames) release(c, thin(t));
  }
  return REID_OK;
}

/* Keeps o.frames of t's crops: for target positions spread evenly over the whole track,
 * 0, (frames - 1) / (n - 1), ..., frames - 1, the nearest crop not taken yet (positions
 * rise with the index, so one forward scan finds each). */
static void pick_even(reid_collector *c, collect_track *t) {
  int m = t->n_crops, n = c->o.frames;
  if (m <= n) return;
  double last = t->frames - 1;
  uint64_t freed = 0;
  int kept = 0, i = 0;
  for (int j = 0; j < n; j++) {
    double target = n == 1 ? last / 2 : j * last / (n - 1);
    int hi = m - (n - j); /* leave one crop for each later target */
    while (i < hi && fabs(t->crops[i + 1].k - target) <= fabs(t->crops[i].k - target)) {
      freed += t->crops[i].crop.bytes;
      reid_crop_free(&t->crops[i++].crop);
    }
    t->crops[kept++] = t->crops[i++];
  }
  for (; i < m; i++) {
    freed += t->crops[i].crop.bytes;
    reid_crop_free(&t->crops[i].crop);
  }
  t->n_crops = kept;
  release(c, freed);
}

void reid_collector_end(reid_collector *c, int64_t track_id, uint64_t first_pts,
                        uint64_t last_pts) {
  collect_track *t = track_take(c, track_id);
  if (!t) return;
  if (t->frames < c->o.min_frames || (t->dropped < 0 && t->n_crops == 0)) {
    pthread_mutex_lock(&c->mu);
    c->stats.too_short++;
    pthread_mutex_unlock(&c->mu);
    track_free(c, t);
    return;
  }
  if (t->dropped >= 0) {
    collect_count_drop(c, (reid_collect_drop)t->dropped, track_id, t->serial, t->frames, first_pts,
                       last_pts, 1);
    track_free(c, t);
    return;
  }
  pick_even(c, t);
  collect_job *j = calloc(1, sizeof *j);
  if (j) {
    *j = (collect_job){.track_id = track_id,
                       .serial = t->serial,
                       .frames = t->frames,
                       .first_pts = first_pts,
                       .last_pts = last_pts,
                       .crops = t->crops,
                       .n_crops = t->n_crops,
                       .partners = t->partners,
                       .n_partners = t->n_partners};
    pthread_mutex_lock(&c->mu);
    int room = c->queued < c->o.queue_size;
    if (room) {
      c->queued++;
      push_job(c, j);
    }
    pthread_mutex_unlock(&c->mu);
    if (room) {
      free(t); /* its crops and partners now belong to the job */
      return;
    }
    free(j);
  }
  collect_count_drop(c, REID_DROP_QUEUE_FULL, track_id, t->serial, t->frames, first_pts, last_pts,
                     1);
  track_free(c, t);
}

void reid_collector_stats_get(reid_collector *c, reid_collector_stats *out) {
  pthread_mutex_lock(&c->mu);
  *out = c->stats;
  pthread_mutex_unlock(&c->mu);
}

const char *reid_collector_folder(const reid_collector *c) {
  return c->folder;
}

/* ------------------------------------------------------------ open / close */

/* The stream's folder name: characters outside [A-Za-z0-9._-] become '_', and so does a
 * leading '.' (hidden, or "." / ".."). */
static char *sanitise(const char *stream) {
  char *s = strdup(stream && *stream ? stream : "stream");
  if (!s) return NULL;
  for (char *p = s; *p; p++) {
    unsigned char ch = (unsigned char)*p;
    int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '.' || ch == '_' || ch == '-';
    if (!ok || (p == s && ch == '.')) *p = '_';
  }
  return s;
}

static reid_status make_folder(const char *path) {
  if (mkdir(path, 0777) == 0 || errno == EEXIST) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return REID_OK;
    return reid_fail(REID_EIO, "collect-location %s: exists and is not a folder", path);
  }
  return reid_fail(REID_EIO, "collect-location %s: cannot create the folder (%s)", path,
                   strerror(errno));
}

/* The first serial after every tracklet folder already there ("000012", ".000013.part"). */
static int next_serial(const char *folder) {
  int next = 1;
  DIR *d = opendir(folder);
  if (!d) return next;
  struct dirent *e;
  while ((e = readdir(d))) {
    const char *p = e->d_name + (e->d_name[0] == '.');
    char *end;
    long v = strtol(p, &end, 10);
    if (end != p && *p >= '0' && *p <= '9' && (!*end || !strcmp(end, ".part")) && v >= next &&
        v < 1000000000)
      next = (int)v + 1;
  }
  closedir(d);
  return next;
}

reid_status reid_collector_open(const reid_collector_options *o, reid_collector **out) {
  *out = NULL;
  if (!o || !o->location || !*o->location)
    return reid_fail(REID_EINVAL, "collect-location: no folder given");
  if (o->min_frames < 1 || o->frames < 1 || o->queue_size < 1 || o->memory < 1 ||
      o->jpeg_quality < 1 || o->jpeg_quality > 100)
    return reid_fail(REID_EINVAL,
                     "collector: bad settings (min-frames %d, frames %d, queue %d, memory %llu, "
                     "quality %d)",
                     o->min_frames, o->frames, o->queue_size, (unsigned long long)o->memory,
                     o->jpeg_quality);
  reid_collector *c = calloc(1, sizeof *c);
  if (!c) return reid_fail(REID_ENOMEM, "collector: out of memory");
  c->o = *o;
  c->index_fd = -1;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->wake, NULL);
  c->location = strdup(o->location);
  c->stream = sanitise(o->stream);
  c->o.location = c->location;
  c->o.stream = c->stream;
  reid_status st = REID_OK;
  if (!c->location || !c->stream || asprintf(&c->folder, "%s/%s", c->location, c->stream) < 0) {
    c->folder = NULL;
    st = reid_fail(REID_ENOMEM, "collector: out of memory");
  }
  if (st == REID_OK) st = make_folder(c->location);
  if (st == REID_OK) st = make_folder(c->folder);
  if (st == REID_OK) { /* can files be created there? (root ignores permission bits: try) */
    char *probe = NULL;
    int fd = asprintf(&probe, "%s/.probe-XXXXXX", c->folder) < 0 ? -1 : mkstemp(probe);
    if (fd < 0)
      st = reid_fail(REID_EIO, "collect-location %s: cannot create files there (%s)", c->folder,
                     strerror(errno));
    else
      close(fd), unlink(probe);
    free(probe);
  }
  if (st == REID_OK) {
    c->next_serial = next_serial(c->folder);
    if (pthread_create(&c->thread, NULL, collect_writer_main, c) != 0)
      st = reid_fail(REID_ENOMEM, "collector: cannot start the writer thread");
    else
      c->thread_started = 1;
  }
  if (st != REID_OK) {
    reid_collector_close(c);
    return st;
  }
  *out = c;
  return REID_OK;
}

void reid_collector_finish(reid_collector *c) {
  if (!c || !c->thread_started) return;
  pthread_mutex_lock(&c->mu);
  c->closing = 1;
  pthread_cond_signal(&c->wake);
  pthread_mutex_unlock(&c->mu);
  pthread_join(c->thread, NULL);
  c->thread_started = 0;
}

void reid_collector_close(reid_collector *c) {
  if (!c) return;
  reid_collector_finish(c);
  for (collect_job *j = c->head, *next; j; j = next) { /* queued after finish() */
    next = j->next;
    collect_job_free(j);
  }
  for (int i = 0; i < c->n_tracks; i++) track_free(c, c->tracks[i]);
  if (c->index_fd >= 0) close(c->index_fd);
  free(c->tracks);
  free(c->seen);
  free(c->location);
  free(c->stream);
  free(c->folder);
  pthread_cond_destroy(&c->wake);
  pthread_mutex_destroy(&c->mu);
  free(c);
}
