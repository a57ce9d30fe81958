/* The collector's writer thread: takes finished tracklets from the queue, converts their
 * crops to RGB and encodes them as JPEGs (FFmpeg), checks the size limit, writes the
 * tracklet folder as .<serial>.part and renames it, then appends the index line. Nothing
 * here runs on the streaming thread. A failed write removes what it wrote, drops the
 * tracklet and warns (once per run of failures); the next tracklet tries again. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collect_internal.h"
#include "json.h"

/* ------------------------------------------------------------ index lines */

static void put_pts(FILE *f, const char *key, uint64_t pts) {
  if (pts == UINT64_MAX)
    fprintf(f, ",\"%s\":null", key);
  else
    fprintf(f, ",\"%s\":%" PRIu64, key, pts);
}

static void put_head(FILE *f, const reid_collector *c, const char *event, const collect_job *j) {
  size_t need = json_escape(NULL, 0, c->stream, strlen(c->stream));
  char *stream = malloc(need + 1);
  if (stream) json_escape(stream, need + 1, c->stream, strlen(c->stream));
  fprintf(f, "{\"event\":\"%s\",\"stream\":%s,\"track_id\":%" PRId64, event,
          stream ? stream : "\"\"", j->track_id);
  free(stream);
  put_pts(f, "first_pts", j->first_pts);
  put_pts(f, "last_pts", j->last_pts);
  fprintf(f, ",\"frames\":%d", j->frames);
}

static void put_float(FILE *f, float v) {
  fprintf(f, isfinite(v) ? "%.9g" : "null", (double)v);
}

/* The malloc'd line (with '\n'), NULL when out of memory. */
static char *job_line(const reid_collector *c, const collect_job *j, int64_t dropped_total) {
  char *buf = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&buf, &size);
  if (!f) return NULL;
  if (j->is_drop) {
    put_head(f, c, "dropped", j);
    fprintf(f, ",\"reason\":\"%s\"", reid_collect_drop_name(j->reason));
  } else {
    put_head(f, c, "collected", j);
    fprintf(f, ",\"dir\":\"%06d\",\"crops\":[", j->serial);
    for (int i = 0; i < j->n_crops; i++) {
      const collect_crop *k = &j->crops[i];
      fprintf(f, "%s{\"file\":\"%010" PRId64 ".jpg\",\"frame\":%" PRId64, i ? "," : "", k->frame,
              k->frame);
      put_pts(f, "pts", k->pts);
      fputs(",\"box\":[", f);
      const float b[4] = {k->box.x, k->box.y, k->box.w, k->box.h};
      for (int q = 0; q < 4; q++) {
        if (q) fputc(',', f);
        put_float(f, b[q]);
      }
      fputs("]}", f);
    }
    fputs("],\"together_with\":[", f);
    for (int i = 0; i < j->n_partners; i++) fprintf(f, "%s\"%06d\"", i ? "," : "", j->partners[i]);
    fputc(']', f);
  }
  fprintf(f, ",\"dropped_total\":%" PRId64 "}\n", dropped_total);
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) {
    free(buf);
    return NULL;
  }
  return buf;
}

/* ------------------------------------------------------------ files */

static void warn(reid_collector *c, const char *message) {
  if (c->failing) return; /* one warning per run of failures */
  c->failing = 1;
  if (c->o.notify) {
    reid_collect_event e = {.type = REID_COLLECT_WARNING, .stream = c->stream, .message = message};
    c->o.notify(c->o.user, &e);
  }
}

static int write_all(int fd, const void *data, size_t size) {
  const uint8_t *p = data;
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return -1;
    }
    p += n, size -= (size_t)n;
  }
  return 0;
}

/* Appends one line with a single write(); a partial line (disk full) is cut off again. */
static reid_status append_line(reid_collector *c, const char *line, size_t len) {
  if (c->index_fd < 0) {
    char *path = NULL;
    if (asprintf(&path, "%s/index.jsonl", c->folder) < 0) return REID_ENOMEM;
    c->index_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (c->index_fd < 0) {
      reid_status st = reid_fail(REID_EIO, "%s: cannot open (%s)", path, strerror(errno));
      free(path);
      return st;
    }
    free(path);
  }
  struct stat before;
  int have_size = fstat(c->index_fd, &before) == 0;
  ssize_t n = write(c->index_fd, line, len);
  if (n == (ssize_t)len) return REID_OK;
  int err = n < 0 ? errno : ENOSPC;
  if (n > 0 && have_size && ftruncate(c->index_fd, before.st_size) != 0) { /* best effort */
  }
  return reid_fail(REID_EIO, "%s/index.jsonl: cannot append a line (%s)", c->folder, strerror(err));
}

/* Writes the encoded crops into folder/.<serial>.part, then renames it to <serial>. On
 * failure removes what it wrote. */
static reid_status write_folder(reid_collector *c, const collect_job *j, uint8_t **jpeg,
                                const size_t *size) {
  char part[4096], done[4096], file[4200];
  snprintf(part, sizeof part, "%s/.%06d.part", c->folder, j->serial);
  snprintf(done, sizeof done, "%s/%06d", c->folder, j->serial);
  if (mkdir(part, 0777) != 0)
    return reid_fail(REID_EIO, "%s: cannot create the folder (%s)", part, strerror(errno));
  reid_status st = REID_OK;
  int written = 0;
  for (; st == REID_OK && written < j->n_crops; written++) {
    snprintf(file, sizeof file, "%s/%010" PRId64 ".jpg", part, j->crops[written].frame);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    int err = fd < 0 ? errno : write_all(fd, jpeg[written], size[written]) != 0 ? errno : 0;
    if (fd >= 0 && close(fd) != 0 && !err) err = errno;
    if (err) st = reid_fail(REID_EIO, "%s: cannot write (%s)", file, strerror(err));
  }
  if (st == REID_OK && rename(part, done) != 0)
    st = reid_fail(REID_EIO, "%s: cannot rename to %s (%s)", part, done, strerror(errno));
  if (st != REID_OK) {
    for (int i = 0; i < written; i++) {
      snprintf(file, sizeof file, "%s/%010" PRId64 ".jpg", part, j->crops[i].frame);
      unlink(file);
    }
    rmdir(part);
  }
  return st;
}

/* Bytes of the files in the stream's folder and its tracklet folders (the size limit
 * counts what earlier runs left). */
static uint64_t folder_bytes(const char *folder, int depth) {
  uint64_t total = 0;
  DIR *d = opendir(folder);
  if (!d) return 0;
  struct dirent *e;
  char path[4200];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(path, sizeof path, "%s/%s", folder, e->d_name);
    struct stat st;
    if (lstat(path, &st) != 0) continue;
    if (S_ISREG(st.st_mode))
      total += (uint64_t)st.st_size;
    else if (S_ISDIR(st.st_mode) && depth > 0)
      total += folder_bytes(path, depth - 1);
  }
  closedir(d);
  return total;
}

/* ------------------------------------------------------------ jobs */

static int64_t dropped_total(reid_collector *c) {
  pthread_mutex_lock(&c->mu);
  int64_t total = 0;
  for (int r = 0; r < REID_DROP_REASONS; r++) total += c->stats.dropped[r];
  pthread_mutex_unlock(&c->mu);
  return total;
}

static void add_bytes(reid_collector *c, uint64_t bytes) {
  pthread_mutex_lock(&c->mu);
  c->stats.bytes += bytes;
  pthread_mutex_unlock(&c->mu);
}

/* A drop line the streaming side queued. */
static void write_drop_line(reid_collector *c, const collect_job *j) {
  char *line = job_line(c, j, j->dropped_total);
  if (!line) return;
  size_t len = strlen(line);
  if (append_line(c, line, len) == REID_OK)
    add_bytes(c, len);
  else
    warn(c, reid_last_error());
  free(line);
}

/* The writer decides to drop j: counted, reported, and a line of its own. */
static void drop_here(reid_collector *c, collect_job *j, reid_collect_drop reason) {
  int64_t total = collect_count_drop(c, reason, j->track_id, j->serial, j->frames, j->first_pts,
                                     j->last_pts, 0);
  collect_job line = *j;
  line.is_drop = 1;
  line.reason = reason;
  line.dropped_total = total;
  write_drop_line(c, &line);
}

static void write_tracklet(reid_collector *c, collect_job *j) {
  uint8_t **jpeg = calloc((size_t)j->n_crops, sizeof *jpeg);
  size_t *size = calloc((size_t)j->n_crops, sizeof *size);
  reid_status st = jpeg && size ? REID_OK : reid_fail(REID_ENOMEM, "collector: out of memory");
  uint64_t total = 0;
  for (int i = 0; st == REID_OK && i < j->n_crops; i++) {
    reid_image rgb = {0};
    st = reid_crop_to_rgb(&j->crops[i].crop, &rgb);
    if (st == REID_OK) st = reid_image_encode_jpeg(&rgb, c->o.jpeg_quality, &jpeg[i], &size[i]);
    reid_image_free(&rgb);
    total += size[i];
  }
  if (st != REID_OK) {
    warn(c, reid_last_error());
    drop_here(c, j, REID_DROP_WRITE_ERROR);
  } else {
    pthread_mutex_lock(&c->mu);
    int over = c->o.max_bytes && c->stats.bytes + total > c->o.max_bytes;
    pthread_mutex_unlock(&c->mu);
    if (over) {
      drop_here(c, j, REID_DROP_MAX_BYTES);
    } else if ((st = write_folder(c, j, jpeg, size)) != REID_OK) {
      warn(c, reid_last_error());
      drop_here(c, j, REID_DROP_WRITE_ERROR);
    } else {
      char *line = job_line(c, j, dropped_total(c));
      reid_status ls = line ? append_line(c, line, strlen(line))
                            : reid_fail(REID_ENOMEM, "collector: out of memory");
      if (ls != REID_OK) /* the folder stands without its line: the loader needs none */
        warn(c, reid_last_error());
      else
        c->failing = 0;
      pthread_mutex_lock(&c->mu);
      c->stats.collected++;
      c->stats.bytes += total + (ls == REID_OK ? strlen(line) : 0);
      pthread_mutex_unlock(&c->mu);
      free(line);
      if (c->o.notify) {
        char dir[16];
        snprintf(dir, sizeof dir, "%06d", j->serial);
        reid_collect_event e = {.type = REID_COLLECT_WRITTEN,
                                .stream = c->stream,
                                .track_id = j->track_id,
                                .dir = dir,
                                .frames = j->frames,
                                .crops = j->n_crops};
        c->o.notify(c->o.user, &e);
      }
    }
  }
  for (int i = 0; jpeg && i < j->n_crops; i++) free(jpeg[i]);
  free(jpeg);
  free(size);
}

void *collect_writer_main(void *arg) {
  reid_collector *c = arg;
  omp_set_num_threads(1); /* the colour conversion: one core, the streaming thread has the rest */
  uint64_t existing = folder_bytes(c->folder, 1);
  add_bytes(c, existing);
  for (;;) {
    pthread_mutex_lock(&c->mu);
    while (!c->head && !c->closing) pthread_cond_wait(&c->wake, &c->mu);
    collect_job *j = c->head;
    if (j) {
      c->head = j->next;
      if (!c->head) c->tail = NULL;
      if (j->is_drop)
        c->queued_drops--;
      else
        c->queued--; /* room for the next tracklet while this one is written */
    }
    pthread_mutex_unlock(&c->mu);
    if (!j) break; /* closing and nothing left */
    if (j->is_drop)
      write_drop_line(c, j);
    else
      write_tracklet(c, j);
    uint64_t held = collect_job_free(j);
    pthread_mutex_lock(&c->mu);
    c->stats.held -= held;
    pthread_mutex_unlock(&c->mu);
  }
  return NULL;
}
