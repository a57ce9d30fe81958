/* What reidembed found in a set of camera streams, against ground truth when there is one
 * (reid-train scene-eval, pipelines/demo.sh).
 *
 * Inputs: the JSON lines of the elements (one per finished tracklet with its pooled embedding,
 * one per watchlist match), each camera's tracker MOT file (the boxes reidattachroi fed in)
 * and, for generated scenes, its ground-truth MOT file; the query photos and their embeddings.
 *
 * A tracklet (stream, track_id, first_pts .. last_pts) is the tracker rows of that id in those
 * frames; its person is the ground-truth id that most of its boxes overlap best (IoU >= 0.5),
 * 0 when none. A query's person comes from the scene (queries/person-NNNN.png), 0 unknown. */
#pragma once

#include <stdint.h>

#include "motfile.h"
#include "status.h"

typedef struct scene_camera_in {
  char *name;                    /* the stream name in the JSON lines (camK for scenes) */
  char *video, *tracker, *truth; /* truth may be NULL */
  reid_mot *tracker_rows, *truth_rows;
} scene_camera_in;

typedef struct scene_query {
  char *path, *name; /* name: the file name, as the match lines give it */
  int person;        /* 0: unknown */
  float *embedding;  /* [dim] */
} scene_query;

typedef struct scene_tracklet {
  int camera;
  int64_t track;
  uint64_t first_pts, last_pts;
  int frames, person;
  int mid_frame; /* 1-based frame of the box shown on the contact sheet */
  float box[4];  /* x, y, w, h there */
  float *embedding;
} scene_tracklet;

typedef struct scene_match {
  int tracklet, query;
  double score;
} scene_match;

typedef struct scene_eval {
  double fps;
  int dim;
  scene_camera_in *cameras;
  int n_cameras;
  scene_query *queries;
  int n_queries;
  scene_tracklet *tracklets;
  int n_tracklets;
  scene_match *matches;
  int n_matches;
  int has_truth;
} scene_eval;

typedef struct scene_scores {
  int matches, right, positives,
      found; /* watchlist: precision right/matches, recall found/positives */
  int i2v_queries;
  double rank1, map; /* I2V of the queries against every tracklet */
} scene_scores;

/* Reads scene.txt of `dir` (cameras, fps, query persons); opens the MOT files. */
reid_status scene_eval_read_scene(scene_eval *e, const char *dir);
/* Adds a camera of a user's recording: NAME=VIDEO,TRACKER_MOT[,TRUTH_MOT]. */
reid_status scene_eval_add_camera(scene_eval *e, const char *spec);
/* The query photos (list file: one path a line, relative to the list) and their embeddings
 * ([n, dim] .npy, the same order, from reid-train embed). */
reid_status scene_eval_read_queries(scene_eval *e, const char *list, const char *npy);
/* The JSON lines; every tracklet gets its person from the ground truth. */
reid_status scene_eval_read_jsonl(scene_eval *e, const char *path);
reid_status scene_eval_score(const scene_eval *e, scene_scores *out);
/* Prints per query the tracklets it matched in each camera (score, times, right or wrong). */
void scene_eval_print(const scene_eval *e, const scene_scores *s);
/* PNG: per query, its photo, then its best `top` tracklets by cosine (a frame's crop each),
 * framed green (right person) or red (wrong), thick when the watchlist matched them. */
reid_status scene_eval_contact_sheet(const scene_eval *e, const char *path, int top);
void scene_eval_free(scene_eval *e);
