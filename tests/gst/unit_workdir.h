/* The helper tests' scratch folder: `--workdir DIR` (created, with parents). */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static inline const char *unit_workdir(int argc, char **argv) {
  static char dir[1024];
  snprintf(dir, sizeof dir, "%s", argc >= 3 && !strcmp(argv[1], "--workdir") ? argv[2] : ".");
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    mkdir(dir, 0755);
    *p = '/';
  }
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "FATAL: cannot create %s\n", dir);
    return NULL;
  }
  return dir;
}
