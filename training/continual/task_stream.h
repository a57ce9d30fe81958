/* The task streams of `reid-train continual` (papers.md §2, issue 9): which
 * identities each task trains on and which test sets are evaluated after it.
 *
 *   intra  one dataset split by identity: the train identities sorted by id,
 *          the first `base_ids` form task 0, the rest `tasks - 1` equal tasks
 *          (Market-1501: 76 + 9 x 75 = 751). Test sets: "task t" = retrieval among
 *          task t's own training identities (query = each identity's first sample in
 *          each of its cameras, gallery = its other samples; measures forgetting),
 *          and the dataset's test split (identities never trained on: unseen).
 *   inter  one dataset per task (the LReID order), the first `ids_per_task`
 *          identities (sorted by id) of each, all of them when it has fewer; test
 *          set t = dataset t's own query/gallery split (seen once task t is trained).
 *   collected  one folder written by `reidembed collect-location=` per task (the layout
 *          `collected`: stream = camera, each tracklet a pseudo-identity); all of its
 *          tracklets train; it has no labelled test split, so only the --unseen sets
 *          measure the update.
 * Every --unseen dataset adds its query/gallery split as an unseen test set (read with
 * --layout, or detected for a collected stream).
 * Joint training (the upper bound) trains one task made of all the tasks' identities.
 *
 * A task's training set is a view (reid_dataset) whose train split holds the
 * chosen samples relabelled 0..n-1 in task order; it borrows the sources'
 * frame paths and is freed with task_view_free, never reid_dataset_free. */
#pragma once

#include "dataset.h"

typedef enum reid_stream_kind {
  REID_STREAM_INTRA,
  REID_STREAM_INTER,
  REID_STREAM_COLLECTED,
} reid_stream_kind;

reid_status reid_stream_kind_parse(const char *name,
                                   reid_stream_kind *out); /* intra|inter|collected */
const char *reid_stream_kind_name(reid_stream_kind k);

/* Task of each identity for the intra-domain split: ids[n] distinct identities in any
 * order; task_of[k] gets the task of ids[k] once they are sorted ascending. Fails
 * (naming the numbers) unless 1 <= base < n and (n - base) splits into tasks - 1 equal
 * non-empty parts (tasks >= 1; tasks = 1 needs base = n). */
reid_status reid_split_intra(const int *ids, int n, int base, int tasks, int *task_of);

/* A run of train labels [first, first + count) of one source dataset. */
typedef struct task_part {
  const reid_dataset *src;
  int first, count;
} task_part;

typedef struct test_set {
  char name[96];
  const reid_dataset *data; /* its query and gallery splits */
  int seen_after;           /* the task after which it counts as seen; -1: unseen */
  reid_dataset *own;        /* a view this stream built (freed with it), or NULL */
} test_set;

typedef struct task_stream {
  reid_stream_kind kind;
  int n_sources;
  reid_dataset **sources; /* loaded datasets (owned) */
  char **source_names;    /* their paths */
  int n_tasks;
  task_part *parts; /* [n_tasks] for intra/inter: one part per task */
  int n_tests;
  test_set *tests;
} task_stream;

typedef struct task_stream_config {
  reid_stream_kind kind;
  const char *const *data; /* intra: 1 folder; inter: one per task */
  int n_data;
  reid_layout layout;
  int base_ids, tasks, ids_per_task;
  const char *const *unseen;
  int n_unseen;
} task_stream_config;

reid_status task_stream_load(const task_stream_config *c, task_stream **out);
void task_stream_free(task_stream *s);

/* The training set of tasks [first, first + count) merged (joint: all of them). */
reid_status task_view_build(const task_stream *s, int first, int count, reid_dataset **out);
void task_view_free(reid_dataset *v);
