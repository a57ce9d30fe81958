/* JSON-line formatting (open_memstream) and an O_APPEND line writer. */
#include "jsonl.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"

struct reid_jsonl {
  int fd;
  char *path;
};

static void put_string(FILE *f, const char *s) {
  if (!s) {
    fputs("null", f);
    return;
  }
  size_t len = strlen(s);
  size_t need = json_escape(NULL, 0, s, len);
  char small[256];
  char *buf = need < sizeof small ? small : malloc(need + 1);
  if (!buf) { /* out of memory: keep the line valid JSON */
    fputs("\"\"", f);
    return;
  }
  json_escape(buf, need + 1, s, len);
  fwrite(buf, 1, need, f);
  if (buf != small) free(buf);
}

static void put_pts(FILE *f, uint64_t pts) {
  if (pts == UINT64_MAX)
    fputs("null", f);
  else
    fprintf(f, "%llu", (unsigned long long)pts);
}

static void put_float(FILE *f, float v) {
  if (isfinite(v))
    fprintf(f, "%.9g", (double)v);
  else
    fputs("null", f); /* JSON has no NaN / Inf */
}

static void put_head(FILE *f, const reid_tracklet_record *r) {
  fputs("{\"stream\":", f);
  put_string(f, r->stream);
  fprintf(f, ",\"track_id\":%lld,\"first_pts\":", (long long)r->track_id);
  put_pts(f, r->first_pts);
  fputs(",\"last_pts\":", f);
  put_pts(f, r->last_pts);
  fprintf(f, ",\"frames\":%d", r->frames);
}

/* Closes the memstream and returns its text (*buf is only final after
 * fclose), or NULL on failure. */
static char *finish(FILE *f, char **buf) {
  int bad = ferror(f);
  if (fclose(f) != 0 || bad || !*buf) {
    free(*buf);
    reid_fail(REID_ENOMEM, "json line: out of memory");
    return NULL;
  }
  return *buf;
}

char *reid_json_tracklet_line(const reid_tracklet_record *r) {
  char *buf = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&buf, &size);
  if (!f) {
    reid_fail(REID_ENOMEM, "json line: out of memory");
    return NULL;
  }
  put_head(f, r);
  fprintf(f, ",\"embedded_frames\":%d,\"reason\":", r->embedded_frames);
  put_string(f, r->reason);
  fputs(",\"model\":", f);
  put_string(f, r->model);
  fputs(",\"bbox\":[", f);
  for (int i = 0; i < 4; i++) {
    if (i) fputc(',', f);
    put_float(f, r->bbox[i]);
  }
  fputs("],\"embedding\":[", f);
  for (int i = 0; i < r->dim; i++) {
    if (i) fputc(',', f);
    put_float(f, r->embedding[i]);
  }
  fputs("]}\n", f);
  return finish(f, &buf);
}

char *reid_json_match_line(const reid_tracklet_record *r, const char *query, double score) {
  char *buf = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&buf, &size);
  if (!f) {
    reid_fail(REID_ENOMEM, "json line: out of memory");
    return NULL;
  }
  put_head(f, r);
  fputs(",\"match\":{\"query\":", f);
  put_string(f, query);
  fputs(",\"score\":", f);
  put_float(f, (float)score);
  fputs("}}\n", f);
  return finish(f, &buf);
}

reid_status reid_jsonl_open(const char *path, reid_jsonl **out) {
  *out = NULL;
  if (!path || !*path) return reid_fail(REID_EINVAL, "json lines: empty file name");
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
  if (fd < 0)
    return reid_fail(REID_EIO, "%s: cannot open for appending: %s", path, strerror(errno));
  reid_jsonl *w = calloc(1, sizeof *w);
  char *copy = strdup(path);
  if (!w || !copy) {
    close(fd);
    free(w);
    free(copy);
    return reid_fail(REID_ENOMEM, "json lines: out of memory");
  }
  w->fd = fd;
  w->path = copy;
  *out = w;
  return REID_OK;
}

/* After a failed write of which `written` bytes reached the file: cuts them
 * off again, so that the file keeps whole lines and the next line does not
 * continue a broken one. Only when nobody appended after them (the file ends
 * where this descriptor's offset is); a full disk still allows shrinking. */
static void drop_partial_line(int fd, size_t written) {
  struct stat sb;
  off_t end = lseek(fd, 0, SEEK_CUR);
  if (written == 0 || end < (off_t)written || fstat(fd, &sb) != 0 || sb.st_size != end) return;
  if (ftruncate(fd, end - (off_t)written) != 0) return;
}

reid_status reid_jsonl_write(reid_jsonl *w, const char *line) {
  size_t len = strlen(line);
  ssize_t done = write(w->fd, line, len);
  while (done < 0 && errno == EINTR) done = write(w->fd, line, len);
  if (done < 0) return reid_fail(REID_EIO, "%s: write failed: %s", w->path, strerror(errno));
  /* a short write (disk full, signal) continues where it stopped */
  for (size_t pos = (size_t)done; pos < len;) {
    ssize_t n = write(w->fd, line + pos, len - pos);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : 0;
      drop_partial_line(w->fd, pos);
      return reid_fail(REID_EIO, "%s: write failed (line dropped, the file keeps whole lines): %s",
                       w->path, e ? strerror(e) : "no progress");
    }
    pos += (size_t)n;
  }
  return REID_OK;
}

void reid_jsonl_close(reid_jsonl *w) {
  if (!w) return;
  close(w->fd);
  free(w->path);
  free(w);
}
