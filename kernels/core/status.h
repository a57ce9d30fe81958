/* Error reporting for the compute library.
 *
 * Every fallible library function returns a reid_status. On failure it also
 * leaves a human-readable message in a thread-local buffer, read back with
 * reid_last_error(). Library code never prints and never exits. */
#pragma once

#include <stdarg.h>

typedef enum reid_status {
  REID_OK = 0,
  REID_EINVAL,       /* bad argument or shape */
  REID_ENOMEM,       /* allocation failed */
  REID_EIO,          /* file could not be opened, read or written */
  REID_EFORMAT,      /* file content is malformed */
  REID_EUNSUPPORTED, /* valid request this build or device cannot serve */
  REID_EDEVICE,      /* CUDA / cuDNN / cuBLAS / oneDNN call failed */
  REID_ENUMERIC,     /* NaN or Inf where a finite value was required */
} reid_status;

/* Records the message (printf-style) for this thread and returns `code`,
 * so call sites read: return reid_fail(REID_EINVAL, "batch %d < 1", n); */
reid_status reid_fail(reid_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
reid_status reid_vfail(reid_status code, const char *fmt, va_list ap);

/* Prefixes the current message with more context ("file.safetensors: ..."). */
reid_status reid_fail_context(reid_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

const char *reid_last_error(void);
void reid_clear_error(void);
const char *reid_status_name(reid_status code);

/* Propagates a failing status unchanged. */
#define REID_TRY(expr)                                                                             \
  do {                                                                                             \
    reid_status reid_try_status_ = (expr);                                                         \
    if (reid_try_status_ != REID_OK) return reid_try_status_;                                      \
  } while (0)
