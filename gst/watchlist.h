/* The image-to-video watchlist: query images, embedded once, compared with
 * finished tracklets by cosine similarity.
 *
 * `location` is either
 *   - a folder: every file in it (not recursive, no hidden files) whose
 *     extension is an image's (jpg, jpeg, png, bmp, ppm, pgm, pnm, webp,
 *     tif, tiff, gif; any case), in name order; or
 *   - a text file: one image path per line (blank lines and '#' comments
 *     skipped; relative paths are relative to the list's folder).
 * Each query's name is its file name without the folder. */
#pragma once

#include "embedder.h"

typedef struct reid_watchlist {
  int count, dim;
  char **names;      /* [count] file names */
  char **paths;      /* [count] full paths */
  float *embeddings; /* [count, dim] L2-normalised; NULL until embedded */
} reid_watchlist;

/* Lists the queries of `location` (no decoding). Fails when the location is
 * missing or unreadable, when a folder holds no image file or a list is
 * empty, naming the location. */
reid_status reid_watchlist_list(const char *location, reid_watchlist **out);

/* Lists, decodes and embeds (image role). A query image that cannot be
 * decoded fails the whole load, naming the file. */
reid_status reid_watchlist_load(const char *location, reid_embedder *embedder,
                                reid_watchlist **out);

/* scores[count] = cosine(embedding, query i); embedding is L2-normalised [dim]. */
void reid_watchlist_scores(const reid_watchlist *w, const float *embedding, float *scores);

/* Scores the embedding like reid_watchlist_scores and returns the closest
 * query (-1 for an empty watchlist) with its cosine in *best_score. */
int reid_watchlist_best(const reid_watchlist *w, const float *embedding, float *scores,
                        float *best_score);

void reid_watchlist_free(reid_watchlist *w);
