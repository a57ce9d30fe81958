#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "reid-train %s: error: ", cmd);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (see 'reid-train %s --help')\n", cmd);
  va_end(ap);
  return CLI_USAGE;
}

int cli_library_error(const char *cmd, reid_status st) {
  fprintf(stderr, "reid-train %s: error: %s\n", cmd,
          reid_last_error()[0] ? reid_last_error() : reid_status_name(st));
  return CLI_FAILED;
}

int cli_parse_seed(const char *cmd, const char *text, unsigned long long *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno || end == text || *end || text[0] == '-') {
    cli_usage_error(cmd, "--seed expects a non-negative integer, got '%s'", text);
    return -1;
  }
  *out = v;
  return 0;
}

int cli_parse_int(const char *cmd, const char *option, const char *text, int lo, int hi, int *out) {
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno || end == text || *end || v < lo || v > hi) {
    cli_usage_error(cmd, "%s expects an integer in [%d, %d], got '%s'", option, lo, hi, text);
    return -1;
  }
  *out = (int)v;
  return 0;
}

int cli_parse_float(const char *cmd, const char *option, const char *text, double lo, int lo_open,
                    double hi, float *out) {
  char *end;
  errno = 0;
  double v = strtod(text, &end);
  if (errno || end == text || *end || !isfinite(v) || v < lo || v > hi || (lo_open && v == lo)) {
    cli_usage_error(cmd, "%s expects a number in %s%g, %g], got '%s'", option, lo_open ? "(" : "[",
                    lo, hi, text);
    return -1;
  }
  *out = (float)v;
  return 0;
}

int cli_parse_device(const char *cmd, const char *option, const char *text, const char **out) {
  if (strcmp(text, "cpu") && strcmp(text, "cuda") && strcmp(text, "auto")) {
    cli_usage_error(cmd, "%s expects cpu, cuda or auto, got '%s'", option, text);
    return -1;
  }
  *out = text;
  return 0;
}

int cli_parse_size(const char *cmd, const char *option, const char *text, int *h, int *w) {
  int a, b;
  char tail;
  if (sscanf(text, "%dx%d%c", &a, &b, &tail) != 2 || a < 32 || b < 32 || a > 4096 || b > 4096) {
    cli_usage_error(cmd, "%s expects HEIGHTxWIDTH between 32 and 4096 (e.g. 256x128), got '%s'",
                    option, text);
    return -1;
  }
  *h = a;
  *w = b;
  return 0;
}

int cli_bad_option(const char *cmd, char **argv) {
  if (optopt) return cli_usage_error(cmd, "option -%c is unknown or misses its value", optopt);
  return cli_usage_error(cmd, "option '%s' is unknown or misses its value", argv[optind - 1]);
}
