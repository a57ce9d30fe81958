/* reid-search's options and its commands' seams (reid_search.c: argument
 * parsing, info, prune, exact search; search_index.c: the FAISS index). */
#pragma once

#include <stdint.h>

#include "gallery.h"

#define MAX_LIST 64

typedef struct options {
  const char *command; /* "search", "index", "prune", "info" */
  const char *gallery, *model, *html, *index, *index_file, *device, *older_than;
  const char *kind; /* index kind: "binary", "hnsw" or "ivf"; NULL: binary for a new index */
  const char *queries[MAX_LIST];
  int n_queries;
  const char *streams[MAX_LIST];
  int n_streams;
  int top_k, nlist, nprobe, hnsw_m, ef_search, k_factor, chunk, json, rebuild;
  double threshold;
  int64_t since, until; /* microseconds since the epoch */
} options;

/* Prints "reid-search: WHAT: <library message>" and returns 1. */
int search_fail(const char *what);

/* `reid-search index`: builds the index at `path` (or adds the rows it lacks
 * to the one there), tunes its breadth (efSearch, nprobe) for recall@10
 * >= 0.95 against exact search on sampled queries, reports it, saves. */
int search_index_command(const options *o, reid_gallery *g, const char *path);
/* --index faiss: the filtered top-k through the index at `path`. */
int search_with_index(const options *o, reid_gallery *g, const char *path, const float *query,
                      const reid_gallery_filter *f, reid_gallery_hit **hits, int *n);
