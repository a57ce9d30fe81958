/* Internals of `reid-train continual` shared by its training step (continual_step.c),
 * its loop over tasks (continual.c) and its results (continual_results.c). */
#pragma once

#include "continual.h"
#include "trainer_impl.h"

/* What the step needs beyond the trainer's run (train_run.task_state). Member 0 of the
 * run is the model being trained, member 1 (when n_members == 2) the frozen old model. */
typedef struct continual_state {
  const reid_continual_config *cfg;
  int task;                     /* index of the task being trained */
  const char *datasets;         /* the stream's folders, ';'-separated (checkpoint metadata) */
  float *emb, *emb_old, *d_emb; /* host [B, D] each */
  int cap, batch;
  const reid_dataset *view; /* the task's training view (its distinct pairs) */
  unsigned char *negatives; /* [C * C] DMML negatives of the episode, NULL: all */
} continual_state;

extern const train_task continual_train_task;

/* The results matrix: after each task (rows) on each test set (columns); NaN where a
 * set was not evaluated (not yet seen). */
typedef struct continual_results {
  int rows, cols;
  double *map, *r1; /* [rows_cap * cols] */
  int rows_cap;
} continual_results;

reid_status continual_results_init(continual_results *r, int rows_cap, int cols);
void continual_results_free(continual_results *r);
/* "row;row;..." of "map,r1,map,r1,..." with %.17g (the state's extra metadata) and back. */
char *continual_results_encode(const continual_results *r);
reid_status continual_results_decode(continual_results *r, const char *text);
/* Writes M.results.csv, M.results.json and M.map.svg / .png (stem = M). */
reid_status continual_results_write(const continual_results *r, const task_stream *s,
                                    const reid_continual_config *c, const char *stem,
                                    const int *row_task);
