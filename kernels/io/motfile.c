/* MOTChallenge text file parser: strict numbers (strtod / strtol on a
 * NUL-terminated copy of each field), stable sort by frame, binary search. */
#include "motfile.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

#define MOT_MAX_FIELDS 16
#define MOT_MAX_FIELD  63

static int is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

/* Splits one line (without '\n') into at most MOT_MAX_FIELDS fields: at commas
 * (blanks around a field are trimmed) or, in a line without commas, at runs of
 * blanks. Returns the count, or -1 for an over-long field. */
static int split_fields(const char *s, size_t len, char fields[][MOT_MAX_FIELD + 1]) {
  int commas = memchr(s, ',', len) != NULL;
  int n = 0;
  size_t i = 0;
  while (n < MOT_MAX_FIELDS) {
    while (i < len && is_blank(s[i])) i++;
    if (!commas && i == len) break;
    size_t start = i;
    while (i < len && (commas ? s[i] != ',' : !is_blank(s[i]))) i++;
    size_t end = i;
    while (end > start && is_blank(s[end - 1])) end--;
    if (end - start > MOT_MAX_FIELD) return -1;
    memcpy(fields[n], s + start, end - start);
    fields[n++][end - start] = 0;
    if (commas && i == len) break; /* the field after the last comma */
    if (commas) i++;               /* skip the comma */
  }
  return n;
}

static int parse_double(const char *f, double *out) {
  if (!*f) return 0;
  char *end;
  errno = 0;
  double v = strtod(f, &end);
  if (*end || errno == ERANGE || !isfinite(v)) return 0;
  *out = v;
  return 1;
}

/* Integers may be written as "3" or "3.0" (some tools print floats). */
static int parse_int(const char *f, int *out) {
  double v;
  if (!parse_double(f, &v) || v != floor(v) || v < INT_MIN || v > INT_MAX) return 0;
  *out = (int)v;
  return 1;
}

static int row_cmp(const void *a, const void *b) {
  const reid_mot_row *x = a, *y = b;
  if (x->frame != y->frame) return x->frame < y->frame ? -1 : 1;
  return x->line < y->line ? -1 : (x->line > y->line);
}

static reid_status parse_line(const char *s, size_t len, const char *name, int lineno,
                              reid_mot_row *row) {
  char fields[MOT_MAX_FIELDS][MOT_MAX_FIELD + 1];
  int n = split_fields(s, len, fields);
  if (n < 0)
    return reid_fail(REID_EFORMAT, "%s:%d: a field is longer than %d characters", name, lineno,
                     MOT_MAX_FIELD);
  if (n < 6)
    return reid_fail(REID_EFORMAT, "%s:%d: %d fields, expected at least 6 (frame, id, x, y, w, h)",
                     name, lineno, n);
  static const char *const names[] = {"frame", "id",   "x",     "y",         "w",
                                      "h",     "conf", "class", "visibility"};
  double v[9] = {0, 0, 0, 0, 0, 0, 1, -1, -1};
  int ints[9] = {1, 1, 0, 0, 0, 0, 0, 1, 0};
  for (int k = 0; k < 9 && k < n; k++) {
    int iv;
    if (ints[k] ? !parse_int(fields[k], &iv) : !parse_double(fields[k], &v[k]))
      return reid_fail(REID_EFORMAT, "%s:%d: field %d (%s) '%s' is not %s", name, lineno, k + 1,
                       names[k], fields[k], ints[k] ? "an integer" : "a number");
    if (ints[k]) v[k] = iv;
  }
  if (v[0] < 1)
    return reid_fail(REID_EFORMAT, "%s:%d: frame %d < 1 (MOT frames are 1-based)", name, lineno,
                     (int)v[0]);
  if (v[1] < -1) return reid_fail(REID_EFORMAT, "%s:%d: id %d < -1", name, lineno, (int)v[1]);
  *row = (reid_mot_row){.frame = (int)v[0],
                        .id = (int)v[1],
                        .x = (float)v[2],
                        .y = (float)v[3],
                        .w = (float)v[4],
                        .h = (float)v[5],
                        .conf = (float)v[6],
                        .cls = (int)v[7],
                        .visibility = (float)v[8],
                        .line = lineno};
  return REID_OK;
}

reid_status reid_mot_parse(const char *text, size_t len, const char *name, reid_mot **out) {
  *out = NULL;
  reid_mot *m = calloc(1, sizeof *m);
  if (!m) return reid_fail(REID_ENOMEM, "%s: out of memory", name);
  int cap = 0, lineno = 0;
  reid_status st = REID_OK;
  for (size_t pos = 0; pos < len && st == REID_OK;) {
    const char *s = text + pos;
    const char *nl = memchr(s, '\n', len - pos);
    size_t line_len = nl ? (size_t)(nl - s) : len - pos;
    pos += line_len + 1;
    lineno++;
    size_t i = 0;
    while (i < line_len && is_blank(s[i])) i++;
    if (i == line_len || s[i] == '#') continue;
    if (memchr(s, 0, line_len)) {
      st = reid_fail(REID_EFORMAT, "%s:%d: NUL byte (not a text file?)", name, lineno);
      break;
    }
    if (m->count == cap) {
      cap = cap ? 2 * cap : 256;
      reid_mot_row *grown = realloc(m->rows, sizeof *grown * (size_t)cap);
      if (!grown) {
        st = reid_fail(REID_ENOMEM, "%s: out of memory", name);
        break;
      }
      m->rows = grown;
    }
    st = parse_line(s, line_len, name, lineno, &m->rows[m->count]);
    if (st == REID_OK) {
      if (m->rows[m->count].frame > m->max_frame) m->max_frame = m->rows[m->count].frame;
      m->count++;
    }
  }
  if (st != REID_OK) {
    reid_mot_free(m);
    return st;
  }
  if (m->count) qsort(m->rows, (size_t)m->count, sizeof *m->rows, row_cmp);
  *out = m;
  return REID_OK;
}

reid_status reid_mot_load(const char *path, reid_mot **out) {
  *out = NULL;
  unsigned char *bytes = NULL;
  size_t size = 0;
  REID_TRY(reid_read_file(path, &bytes, &size));
  reid_status st = reid_mot_parse((const char *)bytes, size, path, out);
  free(bytes);
  return st;
}

void reid_mot_free(reid_mot *m) {
  if (!m) return;
  free(m->rows);
  free(m);
}

int reid_mot_frame_rows(const reid_mot *m, int frame, const reid_mot_row **first) {
  *first = NULL;
  int lo = 0, hi = m->count; /* first row with rows[i].frame >= frame */
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (m->rows[mid].frame < frame)
      lo = mid + 1;
    else
      hi = mid;
  }
  int end = lo;
  while (end < m->count && m->rows[end].frame == frame) end++;
  if (end > lo) *first = &m->rows[lo];
  return end - lo;
}
