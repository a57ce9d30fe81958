/* Internal: what each batch holds. Every batch is a pure function of (seed, batch index):
 * batch b draws from its own RNG stream, and training epoch e's identity order from another,
 * so batches can be planned in any order, by any thread, and a resumed run only needs the
 * index of the next batch.
 *
 * Training (P x K): epoch e visits the train identities in a random order, P per batch
 * (batches_per_epoch = ceil(ids / P); the last batch of an epoch is filled up with other
 * identities drawn at random); each identity gives K distinct samples (with repeats only when
 * it has fewer than K). With group_distinct, the epoch's order is the shuffle walked
 * breadth-first over the known distinct pairs: each identity not yet placed is followed by
 * its partners, theirs, and so on, so that consecutive batches hold people seen together.
 * Evaluation: the split's samples in order, `batch` at a time. */
#pragma once

#include "augment.h"
#include "loader.h"

/* Positions (0-based, within a tracklet of n >= 1 frames) of T frames:
 *   RANDOM_CHUNKS  chunk i = [floor(i n / T), floor((i + 1) n / T)), a uniform frame from
 *                  each; a chunk is empty when n < T, then frame floor(i n / T) repeats
 *   EVEN           the chunks' centres: floor((2 i + 1) n / (2 T))
 *   FIRST          frame 0
 *   MULTIVIEW      (one tracklet alone) as RANDOM_CHUNKS */
void reid_frames_pick(reid_frame_sampling mode, int n, int T, reid_rng *rng, int *pos);

/* Samples grouped by identity (train: label; other splits: pid), each group ordered by
 * camera then sample index. Group g's samples: members[offset[g] .. offset[g + 1]). */
typedef struct reid_groups {
  int n_groups;
  int *offset;   /* [n_groups + 1] */
  int *members;  /* [count] split indices */
  int *group_of; /* [count] */
} reid_groups;

typedef struct reid_frame_job {
  int frame; /* index into dataset->frames */
  reid_aug_draw aug;
} reid_frame_job;

typedef struct reid_sampler {
  const reid_dataset *d;
  const reid_split *split;
  int train;
  reid_loader_config c;
  reid_groups groups;
  long batches_per_epoch, total_batches; /* total: LONG_MAX for training */
  int *perm;                             /* identity order of epoch perm_epoch */
  long perm_epoch;
  int *ids;     /* [n_groups] identities of the batch being planned */
  char *chosen; /* [n_groups] */
  int *pool;    /* [count] a group's members being drawn from */
  int *cams;    /* [count + 1] start of each camera run of a group */
  /* group_distinct: groups known distinct from group g: adj[adj_offset[g] .. adj_offset[g+1]) */
  int *adj_offset, *adj, *queue;
} reid_sampler;

/* Validates the config against the split and builds the groups. */
reid_status reid_sampler_init(reid_sampler *s, const reid_dataset *d, const reid_split *split,
                              int train, const reid_loader_config *c);
void reid_sampler_free(reid_sampler *s);
/* Plans batch b: samples[n] (split indices) and jobs[n * T] (frames of a sample consecutive);
 * returns n, 0 past the last evaluation batch. */
int reid_sampler_plan(reid_sampler *s, long b, int *samples, reid_frame_job *jobs);
/* A fingerprint of the configuration and split, stored with the loader state. */
uint64_t reid_sampler_fingerprint(const reid_sampler *s);
