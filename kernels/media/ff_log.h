/* Internal to kernels/media: FFmpeg's log routed into our error messages (image.c). */
#pragma once

#include "status.h"

/* Installs the log callback once and clears this thread's last FFmpeg error line. */
void ff_log_begin(void);
/* "path: what: <av_strerror(err)> (ffmpeg: <last log line>)" */
reid_status ff_fail(reid_status code, const char *path, const char *what, int err);
