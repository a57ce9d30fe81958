/* P x K identity sampling, tracklet frame sampling and augmentation draws (see sampler.h). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"

/* An independent stream per (seed, purpose, index). */
static void stream_seed(reid_rng *r, uint64_t seed, uint64_t purpose, uint64_t index) {
  uint64_t x = seed ^ (purpose * 0xD1B54A32D192ED03ull);
  uint64_t k = reid_splitmix64(&x) ^ (index * 0x9E3779B97F4A7C15ull);
  reid_rng_seed(r, reid_splitmix64(&k));
}

void reid_frames_pick(reid_frame_sampling mode, int n, int T, reid_rng *rng, int *pos) {
  for (int i = 0; i < T; i++) {
    long lo = (long)i * n / T, hi = (long)(i + 1) * n / T;
    switch (mode) {
    case REID_FRAMES_EVEN: pos[i] = (int)(((long)2 * i + 1) * n / (2L * T)); break;
    case REID_FRAMES_FIRST: pos[i] = 0; break;
    default: pos[i] = (int)(hi > lo ? lo + reid_rng_below(rng, (uint32_t)(hi - lo)) : lo); break;
    }
  }
}

/* ------------------------------------------------------------ groups */

typedef struct member_key {
  int key, camid, index;
} member_key;

static int compare_members(const void *a, const void *b) {
  const member_key *x = a, *y = b;
  if (x->key != y->key) return (x->key > y->key) - (x->key < y->key);
  if (x->camid != y->camid) return (x->camid > y->camid) - (x->camid < y->camid);
  return (x->index > y->index) - (x->index < y->index);
}

static reid_status groups_build(reid_groups *g, const reid_split *split, int train) {
  int n = split->count;
  g->members = malloc(sizeof(int) * (size_t)(n + 1));
  g->group_of = malloc(sizeof(int) * (size_t)(n + 1));
  g->offset = malloc(sizeof(int) * (size_t)(n + 2));
  if (!g->members || !g->group_of || !g->offset)
    return reid_fail(REID_ENOMEM, "loader: out of memory grouping %d samples", n);
  member_key *keys = malloc(sizeof *keys * (size_t)(n + 1));
  if (!keys) return reid_fail(REID_ENOMEM, "loader: out of memory grouping %d samples", n);
  for (int i = 0; i < n; i++) {
    const reid_sample *x = &split->samples[i];
    keys[i] = (member_key){train ? x->label : x->pid, x->camid, i};
  }
  qsort(keys, (size_t)n, sizeof *keys, compare_members);
  for (int i = 0; i < n; i++) g->members[i] = keys[i].index;
  free(keys);
  g->n_groups = 0;
  for (int k = 0; k < n; k++) {
    const reid_sample *s = &split->samples[g->members[k]];
    const reid_sample *prev = k ? &split->samples[g->members[k - 1]] : NULL;
    int key = train ? s->label : s->pid;
    if (!prev || key != (train ? prev->label : prev->pid)) g->offset[g->n_groups++] = k;
    g->group_of[g->members[k]] = g->n_groups - 1;
  }
  g->offset[g->n_groups] = n;
  return REID_OK;
}

/* ------------------------------------------------------------ sampler */

/* The groups known distinct from each group (CSR), from the dataset's distinct pairs of
 * train samples; pairs inside one group (a labelling contradiction) are ignored. */
static reid_status adjacency_build(reid_sampler *s) {
  const reid_dataset *d = s->d;
  const int G = s->groups.n_groups, n = d->n_distinct_pairs;
  s->adj_offset = calloc((size_t)G + 1, sizeof(int));
  s->adj = malloc(sizeof(int) * (2 * (size_t)n + 1));
  s->queue = malloc(sizeof(int) * ((size_t)G + 1));
  if (!s->adj_offset || !s->adj || !s->queue)
    return reid_fail(REID_ENOMEM, "train loader: out of memory for %d distinct pairs", n);
  for (int pass = 0; pass < 2; pass++) { /* count, then fill */
    for (int i = 0; i < n; i++) {
      const int a = d->distinct_pairs[i][0], b = d->distinct_pairs[i][1];
      if (a < 0 || b < 0 || a >= s->split->count || b >= s->split->count) continue;
      const int ga = s->groups.group_of[a], gb = s->groups.group_of[b];
      if (ga == gb) continue;
      if (pass == 0) {
        s->adj_offset[ga + 1]++, s->adj_offset[gb + 1]++;
      } else {
        s->adj[s->queue[ga]++] = gb, s->adj[s->queue[gb]++] = ga;
      }
    }
    if (pass == 0) {
      for (int g = 0; g < G; g++) s->adj_offset[g + 1] += s->adj_offset[g];
      memcpy(s->queue, s->adj_offset, sizeof(int) * (size_t)G); /* fill cursors */
    }
  }
  return REID_OK;
}

/* perm (a shuffle) walked breadth-first over the adjacency into s->queue, copied back. */
static void order_by_distinct(reid_sampler *s, int *perm) {
  const int G = s->groups.n_groups;
  if (G < 1) return;
  memset(s->chosen, 0, (size_t)G);
  int head = 0, tail = 0;
  for (int k = 0; k < G; k++) {
    if (s->chosen[perm[k]]) continue;
    s->chosen[perm[k]] = 1;
    s->queue[tail++] = perm[k];
    while (head < tail) {
      const int g = s->queue[head++];
      for (int a = s->adj_offset[g]; a < s->adj_offset[g + 1]; a++)
        if (!s->chosen[s->adj[a]]) s->chosen[s->adj[a]] = 1, s->queue[tail++] = s->adj[a];
    }
  }
  memcpy(perm, s->queue, sizeof(int) * (size_t)G);
}

reid_status reid_sampler_init(reid_sampler *s, const reid_dataset *d, const reid_split *split,
                              int train, const reid_loader_config *c) {
  memset(s, 0, sizeof *s);
  s->d = d;
  s->split = split;
  s->train = train;
  s->c = *c;
  s->perm_epoch = -1;
  const char *who = train ? "train loader" : "eval loader";
  if (c->frames < 1 || c->frames > 1024)
    return reid_fail(REID_EINVAL, "%s: frames per sample %d outside [1, 1024]", who, c->frames);
  if (c->sampling < REID_FRAMES_RANDOM_CHUNKS || c->sampling > REID_FRAMES_MULTIVIEW)
    return reid_fail(REID_EINVAL, "%s: unknown frame sampling %d", who, (int)c->sampling);
  if (c->sampling == REID_FRAMES_FIRST && c->frames != 1)
    return reid_fail(REID_EINVAL, "%s: first-frame sampling needs frames = 1, got %d", who,
                     c->frames);
  if (c->height < 8 || c->width < 8 || c->height > 4096 || c->width > 4096)
    return reid_fail(REID_EINVAL, "%s: input size %dx%d outside 8..4096", who, c->height, c->width);
  for (int i = 0; i < 3; i++)
    if (!(c->std[i] > 0) || c->mean[i] != c->mean[i])
      return reid_fail(REID_EINVAL, "%s: mean/std of channel %d: %g/%g", who, i, c->mean[i],
                       c->std[i]);
  if (c->threads < 1 || c->threads > 256)
    return reid_fail(REID_EINVAL, "%s: threads %d outside [1, 256]", who, c->threads);
  if (c->prefetch < 1 || c->prefetch > 64)
    return reid_fail(REID_EINVAL, "%s: prefetch %d outside [1, 64]", who, c->prefetch);
  REID_TRY(reid_augment_check(&c->augment, c->height, c->width));
  for (int i = 0; i < split->count; i++) {
    const reid_sample *x = &split->samples[i];
    if (x->n_frames < 1 || x->first_frame < 0 || x->first_frame + x->n_frames > d->n_frames)
      return reid_fail(REID_EINVAL, "%s: sample %d has frames [%d, %d) outside the %d frames", who,
                       i, x->first_frame, x->first_frame + x->n_frames, d->n_frames);
    if (train && (x->label < 0 || x->label >= d->n_train_ids))
      return reid_fail(REID_EINVAL, "%s: sample %d has label %d outside [0, %d)", who, i, x->label,
                       d->n_train_ids);
  }
  if (train) {
    if (split->count == 0) return reid_fail(REID_EINVAL, "train loader: the train split is empty");
    if (c->batch_k < 1 || c->batch_k > 1024)
      return reid_fail(REID_EINVAL, "train loader: K = %d outside [1, 1024]", c->batch_k);
  } else if (c->batch < 1 || c->batch > 65536) {
    return reid_fail(REID_EINVAL, "eval loader: batch %d outside [1, 65536]", c->batch);
  }
  REID_TRY(groups_build(&s->groups, split, train));
  if (train && (c->batch_p < 1 || c->batch_p > s->groups.n_groups))
    return reid_fail(REID_EINVAL,
                     "train loader: P = %d identities per batch, the train split has %d",
                     c->batch_p, s->groups.n_groups);
  const size_t G = (size_t)s->groups.n_groups + 1, N = (size_t)split->count + 2;
  s->perm = malloc(sizeof(int) * G);
  s->ids = malloc(sizeof(int) * G);
  s->chosen = calloc(G, 1);
  s->pool = malloc(sizeof(int) * N);
  s->cams = malloc(sizeof(int) * N);
  if (!s->perm || !s->ids || !s->chosen || !s->pool || !s->cams)
    return reid_fail(REID_ENOMEM, "%s: out of memory", who);
  if (train && c->group_distinct) REID_TRY(adjacency_build(s));
  if (train) {
    s->batches_per_epoch = (s->groups.n_groups + c->batch_p - 1) / c->batch_p;
    s->total_batches = LONG_MAX;
  } else {
    s->batches_per_epoch = s->total_batches = (split->count + c->batch - 1) / c->batch;
  }
  return REID_OK;
}

void reid_sampler_free(reid_sampler *s) {
  free(s->groups.members);
  free(s->groups.group_of);
  free(s->groups.offset);
  free(s->perm);
  free(s->ids);
  free(s->pool);
  free(s->cams);
  free(s->chosen);
  free(s->adj_offset);
  free(s->adj);
  free(s->queue);
  memset(s, 0, sizeof *s);
}

uint64_t reid_sampler_fingerprint(const reid_sampler *s) {
  const reid_loader_config *c = &s->c;
  int64_t v[] = {s->train,           c->batch_p,     c->batch_k,      c->batch,
                 c->frames,          c->sampling,    c->height,       c->width,
                 c->augment.enabled, c->augment.pad, s->split->count, s->d->n_frames,
                 s->groups.n_groups};
  uint64_t h = 0x243F6A8885A308D3ull ^ c->seed;
  for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
    uint64_t x = h ^ (uint64_t)v[i];
    h = reid_splitmix64(&x);
  }
  if (c->bicubic) { /* only then, so that the states of earlier runs stay valid */
    uint64_t x = h ^ 0xB1C0B1Cull;
    h = reid_splitmix64(&x);
  }
  if (s->adj_offset) {
    uint64_t x = h ^ 0xD157ull ^ (uint64_t)s->d->n_distinct_pairs;
    h = reid_splitmix64(&x);
  }
  return h;
}

/* Fisher-Yates shuffle of a[0..n). */
static void shuffle(int *a, int n, reid_rng *rng) {
  for (int i = n - 1; i > 0; i--) {
    int j = (int)reid_rng_below(rng, (uint32_t)(i + 1));
    int t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

/* The identity order of epoch e (cached). */
static const int *epoch_order(reid_sampler *s, long e) {
  if (s->perm_epoch != e) {
    reid_rng rng;
    stream_seed(&rng, s->c.seed, 1, (uint64_t)e);
    for (int g = 0; g < s->groups.n_groups; g++) s->perm[g] = g;
    shuffle(s->perm, s->groups.n_groups, &rng);
    if (s->adj_offset) order_by_distinct(s, s->perm);
    s->perm_epoch = e;
  }
  return s->perm;
}

/* T frames of sample `index` (split index) into jobs[0..T). */
static void plan_frames(reid_sampler *s, const reid_augment *aug, int index, reid_rng *rng,
                        reid_frame_job *jobs) {
  const int T = s->c.frames;
  const reid_sample *x = &s->split->samples[index];
  int pos[1024];
  if (s->c.sampling != REID_FRAMES_MULTIVIEW) {
    reid_frames_pick(s->c.sampling, x->n_frames, T, rng, pos);
    for (int t = 0; t < T; t++) jobs[t].frame = x->first_frame + pos[t];
  } else {
    /* views cycle through the identity's cameras, the anchor's first, the others in random
     * order; each view is a random tracklet of that camera and a random frame of it */
    const reid_groups *g = &s->groups;
    int grp = g->group_of[index], lo = g->offset[grp], hi = g->offset[grp + 1];
    int *cam_start = s->cams, n_cams = 0, anchor = 0; /* first member of each camera run */
    for (int k = lo; k < hi; k++)
      if (k == lo ||
          s->split->samples[g->members[k]].camid != s->split->samples[g->members[k - 1]].camid) {
        if (s->split->samples[g->members[k]].camid == x->camid) anchor = n_cams;
        cam_start[n_cams++] = k;
      }
    cam_start[n_cams] = hi;
    int order[1024], n_order = n_cams < 1024 ? n_cams : 1024;
    for (int i = 0; i < n_order; i++) order[i] = i;
    order[0] = anchor, order[anchor] = 0;
    shuffle(order + 1, n_order - 1, rng);
    for (int t = 0; t < T; t++) {
      int cam = order[t % n_order];
      int a = cam_start[cam], b = cam_start[cam + 1];
      int member = t == 0 ? index : g->members[a + (int)reid_rng_below(rng, (uint32_t)(b - a))];
      const reid_sample *y = &s->split->samples[member];
      jobs[t].frame = y->first_frame + (int)reid_rng_below(rng, (uint32_t)y->n_frames);
    }
  }
  for (int t = 0; t < T; t++) reid_augment_draw(aug, s->c.height, s->c.width, rng, &jobs[t].aug);
}

/* K samples of group g into out[0..K): distinct while the group has enough. */
static void pick_samples(reid_sampler *s, int g, reid_rng *rng, int *out) {
  const int K = s->c.batch_k, lo = s->groups.offset[g], m = s->groups.offset[g + 1] - lo;
  int *pool = s->pool;
  memcpy(pool, s->groups.members + lo, sizeof(int) * (size_t)m);
  for (int k = 0; k < K; k++) {
    if (k < m) { /* partial Fisher-Yates */
      int j = k + (int)reid_rng_below(rng, (uint32_t)(m - k));
      int t = pool[k];
      pool[k] = pool[j];
      pool[j] = t;
      out[k] = pool[k];
    } else {
      out[k] = pool[reid_rng_below(rng, (uint32_t)m)];
    }
  }
}

int reid_sampler_plan(reid_sampler *s, long b, int *samples, reid_frame_job *jobs) {
  if (b < 0 || b >= s->total_batches) return 0;
  reid_rng rng;
  stream_seed(&rng, s->c.seed, 2, (uint64_t)b);
  const int T = s->c.frames;
  int n;
  if (s->train) {
    const int P = s->c.batch_p, K = s->c.batch_k, G = s->groups.n_groups;
    long e = b / s->batches_per_epoch, j = b % s->batches_per_epoch;
    const int *order = epoch_order(s, e);
    int *ids = s->ids, n_ids = 0;
    for (long i = j * P; i < (j + 1) * P && i < G; i++) ids[n_ids++] = order[i];
    memset(s->chosen, 0, (size_t)G);
    for (int i = 0; i < n_ids; i++) s->chosen[ids[i]] = 1;
    while (n_ids < P) { /* the epoch's last batch: other identities at random */
      int g = (int)reid_rng_below(&rng, (uint32_t)G);
      if (!s->chosen[g]) s->chosen[g] = 1, ids[n_ids++] = g;
    }
    for (int i = 0; i < P; i++) pick_samples(s, ids[i], &rng, samples + i * K);
    n = P * K;
  } else {
    long lo = b * s->c.batch, hi = lo + s->c.batch;
    if (hi > s->split->count) hi = s->split->count;
    n = (int)(hi - lo);
    for (int i = 0; i < n; i++) samples[i] = (int)(lo + i);
  }
  reid_augment aug = s->c.augment;
  if (s->train && aug.grow_batches > 0) { /* the erasing of batch b (loader.h) */
    double t = aug.grow_batches > 1 ? (double)b / (double)(aug.grow_batches - 1) : 1;
    t = t < 1 ? t : 1;
    aug.erase_p = (float)(aug.erase_p + t * (aug.erase_p_end - aug.erase_p));
    aug.erase_area_max =
        (float)(aug.erase_area_max + t * (aug.erase_area_max_end - aug.erase_area_max));
  }
  for (int i = 0; i < n; i++) plan_frames(s, &aug, samples[i], &rng, jobs + (size_t)i * T);
  return n;
}
