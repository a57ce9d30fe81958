/* Re-ID datasets in their public layouts (papers.md §3): MARS, DukeMTMC-VideoReID,
 * Market-1501, VeRi-776; and the tracklets reidembed collects on site (collected.c). A dataset is a
 * flat list of frame paths plus three splits (train, query, gallery) of samples; a sample is a
 * tracklet (a run of consecutive entries in `frames`) or, for image datasets, a single image.
 *
 * Train labels are the train identities relabelled 0 .. n_train_ids-1 in
 * ascending pid order. Query and gallery samples keep the dataset's pid
 * (-1 junk, 0 distractor) and label -1. camid is 0-based (camera 1 -> 0).
 *
 * Errors name the path at fault: a missing folder or info file, a file name
 * that does not follow the layout, a .mat of the wrong shape or with rows out
 * of range. A few unreadable entries are skipped and counted in `skipped`. */
#pragma once

#include "status.h"

typedef enum reid_layout {
  REID_LAYOUT_AUTO,
  REID_LAYOUT_MARS,
  REID_LAYOUT_DUKE,
  REID_LAYOUT_MARKET,
  REID_LAYOUT_VERI,
  REID_LAYOUT_COLLECTED /* reidembed collect-location=: stream = camera, tracklet = identity */
} reid_layout;
reid_status reid_layout_parse(const char *name,
                              reid_layout *out); /* "auto|mars|duke|market|veri|collected" */
const char *reid_layout_name(reid_layout l);

typedef struct reid_sample { /* a tracklet (MARS, Duke) or a single image (Market, VeRi: n_frames =
                                1) */
  int pid;   /* identity as named by the dataset; -1 = junk, 0 = distractor (Market) */
  int label; /* train split: 0 .. n_train_ids-1; other splits: -1 */
  int camid; /* 0-based camera */
  int first_frame, n_frames; /* frames[first_frame .. first_frame + n_frames), in temporal order */
} reid_sample;

typedef struct reid_split {
  reid_sample *samples;
  int count;
} reid_split;

typedef struct reid_dataset {
  reid_layout layout;
  int video;     /* 1: samples are tracklets */
  char **frames; /* image paths */
  int n_frames;
  reid_split train, query, gallery;
  int n_train_ids;
  int skipped; /* unreadable entries skipped with a warning (counted, not fatal) */
  /* Pairs of train samples known to show different people, (a, b) with a < b, sorted, no
   * duplicates: for the collected layout, tracklets seen together in one frame. NULL / 0
   * for the other layouts. */
  int (*distinct_pairs)[2];
  int n_distinct_pairs;
} reid_dataset;

/* Reads the dataset under `root`. REID_LAYOUT_AUTO picks the layout from the
 * folders present (info/ + bbox_train/: MARS; train/ + query/ + gallery/:
 * Duke; bounding_box_train/: Market; image_train/: VeRi; a folder holding index.jsonl:
 * collected). */
reid_status reid_dataset_load(const char *root, reid_layout layout, reid_dataset **out);
void reid_dataset_free(reid_dataset *d);
/* 1 when train samples a and b are a known distinct pair (either order), else 0. */
int reid_dataset_distinct(const reid_dataset *d, int a, int b);
/* The first skipped entry's path (for the caller's warning), NULL when none was skipped. */
const char *reid_dataset_skipped_example(const reid_dataset *d);
