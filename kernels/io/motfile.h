/* MOTChallenge text files (gt.txt, det.txt, tracker output):
 *
 *   frame, id, x, y, w, h[, conf[, class[, visibility[, ...]]]]
 *
 * one object per line, frames 1-based, boxes in pixels (top-left x, y, then
 * width, height; may be fractional or negative). Separators are commas,
 * optionally with spaces or tabs around them (some tools write spaces only,
 * also accepted). `-1` is allowed anywhere it means "unknown" (id, conf,
 * class, visibility; MOT16 det files end in three -1 world coordinates).
 * Blank lines and lines starting with '#' are skipped. Missing optional
 * fields read as conf 1, class -1, visibility -1; fields after the ninth are
 * ignored. frame must be an integer >= 1, id an integer >= -1; a line with
 * fewer than six fields, a field that is not a number or an out-of-range
 * value fails with "path:line: reason". */
#pragma once

#include <stddef.h>

#include "status.h"

typedef struct reid_mot_row {
  int frame; /* 1-based */
  int id;    /* -1: no identity (detections) */
  float x, y, w, h;
  float conf;
  int cls;
  float visibility;
  int line; /* 1-based line in the file */
} reid_mot_row;

typedef struct reid_mot {
  reid_mot_row *rows; /* sorted by frame, file order within a frame */
  int count;
  int max_frame;
} reid_mot;

/* Parses a whole file. On failure *out is NULL and the message names the
 * file and line. */
reid_status reid_mot_load(const char *path, reid_mot **out);
/* Parses text[0, len) (need not be NUL-terminated); `name` is used in messages. */
reid_status reid_mot_parse(const char *text, size_t len, const char *name, reid_mot **out);
void reid_mot_free(reid_mot *m);

/* The rows of `frame`: returns their count and sets *first (NULL when none). */
int reid_mot_frame_rows(const reid_mot *m, int frame, const reid_mot_row **first);
