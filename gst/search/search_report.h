/* reid-search's outputs: a text table, JSON, and one self-contained HTML
 * page (query photos and result thumbnails inlined as data: URIs; the page
 * is well-formed XHTML, so any XML parser reads it). */
#pragma once

#include <stdio.h>

#include "gallery.h"

typedef struct search_report {
  const char *gallery; /* redacted location */
  const char *model;
  const char *const *queries; /* photo paths */
  int n_queries;
  const reid_gallery_hit *hits;
  int n_hits;
  const char *method; /* "exact" or "faiss ivf..." */
  double seconds;     /* search time */
} search_report;

/* "2026-12-03T10:00:01.200Z" */
void search_format_time(int64_t unix_us, char *buf, size_t cap);

void search_write_text(FILE *out, const search_report *r);
void search_write_json(FILE *out, const search_report *r);
/* Reads each result's thumbnail from the gallery and each query photo from disk. */
reid_status search_write_html(const char *path, const search_report *r, reid_gallery *g);
