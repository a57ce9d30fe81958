/* Temporary-directory fixtures for the io tests: a private folder under
 * $TMPDIR (or /tmp), helpers to write raw bytes, and cleanup of every file
 * made through fx_path. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FX_MAX_FILES 256

typedef struct fixture {
  char dir[512];
  char *files[FX_MAX_FILES];
  int nfiles;
} fixture;

static inline void fx_init(fixture *fx) {
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !*tmp) tmp = "/tmp";
  snprintf(fx->dir, sizeof fx->dir, "%s/reid-io-test-XXXXXX", tmp);
  fx->nfiles = 0;
  if (!mkdtemp(fx->dir)) {
    perror("mkdtemp");
    exit(2);
  }
}

/* "<dir>/<name>", remembered for cleanup (same name -> same path). */
static inline const char *fx_path(fixture *fx, const char *name) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s/%s", fx->dir, name);
  for (int i = 0; i < fx->nfiles; i++)
    if (strcmp(fx->files[i], buf) == 0) return fx->files[i];
  if (fx->nfiles == FX_MAX_FILES) {
    fprintf(stderr, "fixture: too many files\n");
    exit(2);
  }
  fx->files[fx->nfiles] = strdup(buf);
  return fx->files[fx->nfiles++];
}

/* Writes a fresh file (unlinking first: ext4 flushes a file truncated and
 * rewritten in place on close, which makes thousands of rewrites slow). */
static inline void fx_write(const char *path, const void *bytes, size_t n) {
  unlink(path);
  FILE *fp = fopen(path, "wb");
  if (!fp || (n && fwrite(bytes, 1, n, fp) != n) || fclose(fp) != 0) {
    perror(path);
    exit(2);
  }
}

/* Reads a whole file into a malloc'd buffer (exits on failure). */
static inline unsigned char *fx_read(const char *path, size_t *n) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    perror(path);
    exit(2);
  }
  fseek(fp, 0, SEEK_END);
  long sz = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  unsigned char *b = malloc(sz > 0 ? (size_t)sz : 1);
  if (!b || (sz > 0 && fread(b, 1, (size_t)sz, fp) != (size_t)sz)) {
    perror(path);
    exit(2);
  }
  fclose(fp);
  *n = (size_t)sz;
  return b;
}

/* Removes every file made through fx_path, then the folder (which must then be empty). */
static inline int fx_cleanup(fixture *fx) {
  for (int i = 0; i < fx->nfiles; i++) {
    unlink(fx->files[i]);
    free(fx->files[i]);
  }
  fx->nfiles = 0;
  return rmdir(fx->dir);
}
