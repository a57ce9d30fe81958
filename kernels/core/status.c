#include "status.h"

#include <stdio.h>
#include <string.h>

#define REID_ERROR_CAPACITY 1024

static _Thread_local char error_message[REID_ERROR_CAPACITY];

reid_status reid_vfail(reid_status code, const char *fmt, va_list ap) {
  vsnprintf(error_message, sizeof error_message, fmt, ap);
  return code;
}

reid_status reid_fail(reid_status code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  reid_vfail(code, fmt, ap);
  va_end(ap);
  return code;
}

reid_status reid_fail_context(reid_status code, const char *fmt, ...) {
  char previous[REID_ERROR_CAPACITY];
  char prefix[REID_ERROR_CAPACITY];
  memcpy(previous, error_message, sizeof previous);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  size_t used = strlen(prefix);
  memcpy(error_message, prefix, used + 1);
  if (previous[0] && used + 2 < sizeof error_message) {
    memcpy(error_message + used, ": ", 3);
    used += 2;
    size_t rest = strlen(previous);
    if (rest > sizeof error_message - 1 - used) rest = sizeof error_message - 1 - used;
    memcpy(error_message + used, previous, rest);
    error_message[used + rest] = '\0';
  }
  return code;
}

const char *reid_last_error(void) {
  return error_message;
}

void reid_clear_error(void) {
  error_message[0] = '\0';
}

const char *reid_status_name(reid_status code) {
  switch (code) {
  case REID_OK: return "ok";
  case REID_EINVAL: return "invalid argument";
  case REID_ENOMEM: return "out of memory";
  case REID_EIO: return "I/O error";
  case REID_EFORMAT: return "malformed data";
  case REID_EUNSUPPORTED: return "unsupported";
  case REID_EDEVICE: return "device error";
  case REID_ENUMERIC: return "non-finite value";
  }
  return "unknown status";
}
