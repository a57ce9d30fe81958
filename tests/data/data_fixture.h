/* Fixtures of the data tests: temporary folders, synthetic datasets written by the
 * generator behind `reid-train synth`, and small file surgery to break copies of them. */
#pragma once

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset.h"
#include "synth.h"
#include "test_util.h"

/* A fresh folder under $TMPDIR (or /tmp). */
static inline void fixture_tmpdir(char *out, size_t n) {
  const char *base = getenv("TMPDIR");
  snprintf(out, n, "%s/reid-data-XXXXXX", base && base[0] ? base : "/tmp");
  if (!mkdtemp(out)) {
    fprintf(stderr, "fixture: mkdtemp %s: %s\n", out, strerror(errno));
    exit(2);
  }
}

static inline int fixture_rm_entry(const char *path, const struct stat *sb, int flag,
                                   struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static inline void fixture_rm_tree(const char *path) {
  nftw(path, fixture_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A printf-formatted path in a static rotating buffer (valid for the next 7 calls). */
static inline const char *fixture_path(const char *fmt, ...) {
  static char bufs[8][1024];
  static int next;
  char *b = bufs[next++ & 7];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b, 1024, fmt, ap);
  va_end(ap);
  return b;
}

typedef struct fixture_spec {
  reid_layout layout;
  int identities, test_identities, cameras, tracklets, frames, height, width;
  int distractors, junk;
  uint64_t seed;
} fixture_spec;

/* The small dataset of the tests: 6 identities (3 test) x 2 cameras x 2 tracklets x 4 frames. */
static inline fixture_spec fixture_small(reid_layout layout) {
  fixture_spec s = {layout, 6, 3, 2, 2, 4, 64, 32, 0, 0, 7};
  return s;
}

#ifndef FIXTURE_SYNTH_THREADS /* 1 for ThreadSanitizer runs: libgomp is not instrumented */
#define FIXTURE_SYNTH_THREADS 2
#endif

static inline void fixture_synth(const char *root, const fixture_spec *s) {
  synth_options o = {.layout = s->layout,
                     .kind = s->layout == REID_LAYOUT_VERI ? SYNTH_VEHICLE : SYNTH_PERSON,
                     .output = root,
                     .identities = s->identities,
                     .test_identities = s->test_identities,
                     .cameras = s->cameras,
                     .tracklets = s->tracklets,
                     .frames = s->frames,
                     .height = s->height,
                     .width = s->width,
                     .distractors = s->distractors,
                     .junk = s->junk,
                     .quality = 90,
                     .threads = FIXTURE_SYNTH_THREADS,
                     .seed = s->seed};
  reid_status st = synth_generate(&o, NULL);
  if (st != REID_OK) {
    fprintf(stderr, "fixture: synth %s: %s\n", root, reid_last_error());
    exit(2);
  }
}

static inline void fixture_write(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
    fprintf(stderr, "fixture: cannot write %s\n", path);
    exit(2);
  }
}

static inline char *fixture_read(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  rewind(f);
  char *b = malloc((size_t)size + 1);
  size_t got = fread(b, 1, (size_t)size, f);
  fclose(f);
  b[got] = '\0';
  if (n) *n = got;
  return b;
}

/* Replaces line `lineno` (1-based) of a text file. */
static inline void fixture_replace_line(const char *path, int lineno, const char *text) {
  char *s = fixture_read(path, NULL);
  if (!s) {
    fprintf(stderr, "fixture: cannot read %s\n", path);
    exit(2);
  }
  FILE *f = fopen(path, "w");
  int line = 1;
  for (char *p = s; *p;) {
    char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    if (line == lineno)
      fprintf(f, "%s\n", text);
    else
      fprintf(f, "%.*s\n", (int)len, p);
    line++;
    p += len + (nl != NULL);
  }
  fclose(f);
  free(s);
}

/* Loads root expecting failure `want` with `needle` in the message. */
#define CHECK_LOAD_FAILS(root, layout, want, needle)                                               \
  do {                                                                                             \
    reid_dataset *d_ = NULL;                                                                       \
    reid_status st_ = reid_dataset_load((root), (layout), &d_);                                    \
    CHECK(st_ == (want), "%s: expected %s, got %s: %s", (root), reid_status_name(want),            \
          reid_status_name(st_), reid_last_error());                                               \
    CHECK(strstr(reid_last_error(), (needle)) != NULL, "message '%s' lacks '%s'",                  \
          reid_last_error(), (needle));                                                            \
    CHECK(d_ == NULL, "dataset returned on failure");                                              \
    reid_dataset_free(d_);                                                                         \
  } while (0)
