/* Shared by the libFuzzer harnesses of tests/fuzz: each parser here reads a
 * file by path, so the input is written to a scratch file first.
 *
 * A harness defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize); it is linked either with libFuzzer (clang
 * -fsanitize=fuzzer, scripts/fuzz.sh) or with replay_main.c, which runs the
 * committed seeds and regression inputs through it in the ordinary test suite.
 * A harness must not leak: each input's parse result is freed. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A private scratch folder (made once, removed at exit). */
static inline const char *fuzz_dir(void) {
  static char dir[64];
  if (!dir[0]) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/reid-fuzz-XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
      perror("fuzz: mkdtemp");
      abort();
    }
  }
  return dir;
}

/* Writes bytes to `path`; aborts when the scratch folder is unusable (not a finding). */
static inline void fuzz_write(const char *path, const uint8_t *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
    perror(path);
    abort();
  }
}

/* `name` inside the scratch folder (a static buffer). */
static inline const char *fuzz_path(const char *name) {
  static char path[256];
  snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
  return path;
}

/* The whole file at `path` (malloc'd, *n bytes); aborts when unreadable. */
static inline unsigned char *fuzz_slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    abort();
  }
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  rewind(f);
  unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
  if (len < 0 || !b || fread(b, 1, (size_t)len, f) != (size_t)len) abort();
  fclose(f);
  *n = (size_t)len;
  return b;
}
