/* The batch loader: a ring of prefetch + 1 batch slots. The consumer plans each slot (the
 * sampler: which frames, which augmentation) in batch order when it frees it; worker
 * threads decode and augment the planned frames, oldest batch first; next() waits for the
 * oldest batch, hands it out and keeps it until the following call.
 *
 *   consumer:  next() ─ free the held slot ─ plan batch next_plan into it ─ wait for batch
 *              next_return ─ hand it out
 *   workers:   take (slot, frame) tasks from the lowest planned batch ─ decode (FFmpeg) ─
 *              crop/resize/normalise/flip/erase into the slot's images
 *
 * A batch depends only on (seed, batch index) (see sampler.h), so the output is the same for
 * any thread count, and the resume state is the index of the next batch. */
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "sampler.h"

typedef struct worker_arg {
  struct reid_loader *l;
  int index;
} worker_arg;

typedef struct slot {
  long batch; /* batch index held, -1: free */
  int n;      /* samples */
  int *samples;
  reid_frame_job *jobs; /* [max_batch * T] */
  float *images;        /* [max_batch * T, 3, H, W] */
  int32_t *labels;
  int *pids, *camids;
  int next_task, done_tasks, total_tasks;
  reid_status status;
  char message[1024];
} slot;

struct reid_loader {
  reid_sampler sampler;
  int T, max_batch, pad, bicubic;
  size_t image_floats; /* 3 * H * W */
  reid_preprocess_params pp;
  int n_slots;
  slot *slots;
  long next_plan, next_return;
  int held; /* slot handed out by the last next(), -1: none */
  pthread_mutex_t mu;
  pthread_cond_t work, done;
  int stop, paused, in_flight;
  int n_threads, n_started;
  pthread_t *threads;
  worker_arg *args;
  float **scratch; /* one per worker */
  reid_status failed;
  char failed_message[1024];
};

/* Assigns batch next_plan to slot s (under the lock). */
static void plan_slot(reid_loader *l, slot *s) {
  s->batch = -1;
  s->n = s->next_task = s->done_tasks = s->total_tasks = 0;
  s->status = REID_OK;
  s->message[0] = '\0';
  if (l->next_plan >= l->sampler.total_batches) return;
  int n = reid_sampler_plan(&l->sampler, l->next_plan, s->samples, s->jobs);
  if (n <= 0) return;
  const reid_split *split = l->sampler.split;
  for (int i = 0; i < n; i++) {
    const reid_sample *x = &split->samples[s->samples[i]];
    s->labels[i] = l->sampler.train ? x->label : -1;
    s->pids[i] = x->pid;
    s->camids[i] = x->camid;
  }
  s->batch = l->next_plan++;
  s->n = n;
  s->total_tasks = n * l->T;
}

/* The planned slot with the lowest batch index that still has undone tasks. */
static slot *find_task(reid_loader *l) {
  slot *best = NULL;
  for (int i = 0; i < l->n_slots; i++) {
    slot *s = &l->slots[i];
    if (s->batch >= 0 && s->next_task < s->total_tasks && (!best || s->batch < best->batch))
      best = s;
  }
  return best;
}

static reid_status run_task(reid_loader *l, slot *s, int task, float *scratch) {
  const reid_frame_job *job = &s->jobs[task];
  const char *path = l->sampler.d->frames[job->frame];
  reid_image img;
  REID_TRY(reid_image_load_rgb(path, &img)); /* the message names the path */
  if (l->bicubic && (img.width != l->pp.width || img.height != l->pp.height)) {
    reid_image resized;
    reid_status rs = reid_image_resize_bicubic(&img, l->pp.width, l->pp.height, &resized);
    reid_image_free(&img);
    if (rs != REID_OK) return reid_fail_context(rs, "%s", path);
    img = resized;
  }
  reid_status st = reid_augment_apply(&img, &job->aug, l->pad, &l->pp, scratch,
                                      s->images + (size_t)task * l->image_floats);
  reid_image_free(&img);
  if (st != REID_OK) return reid_fail_context(st, "%s", path);
  return REID_OK;
}

static void *worker(void *arg) {
  reid_loader *l = ((worker_arg *)arg)->l;
  float *scratch = l->scratch[((worker_arg *)arg)->index];
  omp_set_num_threads(1); /* this thread's preprocessing stays on this thread */
  pthread_mutex_lock(&l->mu);
  while (!l->stop) {
    slot *s = l->paused ? NULL : find_task(l);
    if (!s) {
      pthread_cond_wait(&l->work, &l->mu);
      continue;
    }
    int task = s->next_task++;
    int skip = s->status != REID_OK;
    l->in_flight++;
    pthread_mutex_unlock(&l->mu);
    reid_status st = skip ? REID_OK : run_task(l, s, task, scratch);
    pthread_mutex_lock(&l->mu);
    if (st != REID_OK && s->status == REID_OK) {
      s->status = st;
      snprintf(s->message, sizeof s->message, "%s", reid_last_error());
    }
    s->done_tasks++;
    l->in_flight--;
    if (s->done_tasks == s->total_tasks || l->in_flight == 0) pthread_cond_broadcast(&l->done);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

void reid_loader_destroy(reid_loader *l) {
  if (!l) return;
  pthread_mutex_lock(&l->mu);
  l->stop = 1;
  pthread_cond_broadcast(&l->work);
  pthread_mutex_unlock(&l->mu);
  for (int i = 0; i < l->n_started; i++) pthread_join(l->threads[i], NULL);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->work);
  pthread_cond_destroy(&l->done);
  for (int i = 0; l->slots && i < l->n_slots; i++) {
    slot *s = &l->slots[i];
    free(s->samples);
    free(s->jobs);
    free(s->images);
    free(s->labels);
    free(s->pids);
    free(s->camids);
  }
  for (int i = 0; l->scratch && i < l->n_threads; i++) free(l->scratch[i]);
  free(l->scratch);
  free(l->slots);
  free(l->threads);
  free(l->args);
  reid_sampler_free(&l->sampler);
  free(l);
}

static reid_status create(const reid_dataset *d, const reid_split *split, int train,
                          const reid_loader_config *c, reid_loader **out) {
  if (!d || !split || !c || !out) return reid_fail(REID_EINVAL, "loader: NULL argument");
  *out = NULL;
  reid_loader *l = calloc(1, sizeof *l);
  if (!l) return reid_fail(REID_ENOMEM, "loader: out of memory");
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->work, NULL);
  pthread_cond_init(&l->done, NULL);
  l->held = -1;
  reid_status st = reid_sampler_init(&l->sampler, d, split, train, c);
  if (st != REID_OK) goto fail;
  l->T = c->frames;
  l->max_batch = train ? c->batch_p * c->batch_k : c->batch;
  if (!train && l->max_batch > split->count) l->max_batch = split->count > 0 ? split->count : 1;
  l->pad = c->augment.enabled ? c->augment.pad : 0;
  l->bicubic = c->bicubic;
  l->pp.height = c->height;
  l->pp.width = c->width;
  memcpy(l->pp.mean, c->mean, sizeof l->pp.mean);
  memcpy(l->pp.std, c->std, sizeof l->pp.std);
  l->image_floats = (size_t)3 * c->height * c->width;
  l->n_slots = c->prefetch + 1;
  l->n_threads = c->threads;
  l->slots = calloc((size_t)l->n_slots, sizeof *l->slots);
  l->scratch = calloc((size_t)l->n_threads, sizeof *l->scratch);
  l->threads = calloc((size_t)l->n_threads, sizeof *l->threads);
  l->args = calloc((size_t)l->n_threads, sizeof *l->args);
  if (!l->slots || !l->scratch || !l->threads || !l->args) goto oom;
  const size_t frames = (size_t)l->max_batch * l->T;
  for (int i = 0; i < l->n_slots; i++) {
    slot *s = &l->slots[i];
    s->batch = -1;
    s->samples = malloc(sizeof *s->samples * (size_t)l->max_batch);
    s->jobs = malloc(sizeof *s->jobs * frames);
    s->images = malloc(sizeof *s->images * frames * l->image_floats);
    s->labels = malloc(sizeof *s->labels * (size_t)l->max_batch);
    s->pids = malloc(sizeof *s->pids * (size_t)l->max_batch);
    s->camids = malloc(sizeof *s->camids * (size_t)l->max_batch);
    if (!s->samples || !s->jobs || !s->images || !s->labels || !s->pids || !s->camids) goto oom;
  }
  for (int i = 0; i < l->n_threads; i++)
    if (!(l->scratch[i] = malloc(sizeof(float) * l->image_floats))) goto oom;
  for (int i = 0; i < l->n_slots; i++) plan_slot(l, &l->slots[i]);
  for (; l->n_started < l->n_threads; l->n_started++) {
    l->args[l->n_started] = (worker_arg){l, l->n_started};
    if (pthread_create(&l->threads[l->n_started], NULL, worker, &l->args[l->n_started]) != 0) {
      st = reid_fail(REID_EUNSUPPORTED, "loader: cannot start decoding thread %d of %d",
                     l->n_started + 1, l->n_threads);
      goto fail;
    }
  }
  *out = l;
  return REID_OK;
oom:
  st = reid_fail(REID_ENOMEM, "loader: out of memory for %d batches of %d x %d frames of %dx%d",
                 l->n_slots, l->max_batch, l->T, c->height, c->width);
fail:
  reid_loader_destroy(l);
  return st;
}

reid_status reid_loader_train(const reid_dataset *d, const reid_loader_config *c,
                              reid_loader **out) {
  return create(d, d ? &d->train : NULL, 1, c, out);
}

reid_status reid_loader_eval(const reid_dataset *d, const reid_split *split,
                             const reid_loader_config *c, reid_loader **out) {
  return create(d, split, 0, c, out);
}

int reid_loader_batches_per_epoch(const reid_loader *l) {
  return l ? (int)l->sampler.batches_per_epoch : 0;
}

reid_status reid_loader_next(reid_loader *l, reid_batch *out) {
  if (!l || !out) return reid_fail(REID_EINVAL, "reid_loader_next: NULL argument");
  memset(out, 0, sizeof *out);
  out->frames = l->T;
  pthread_mutex_lock(&l->mu);
  if (l->held >= 0) { /* the previous batch is no longer needed: plan the next one into it */
    plan_slot(l, &l->slots[l->held]);
    l->held = -1;
    pthread_cond_broadcast(&l->work);
  }
  reid_status st = REID_OK;
  slot *s = NULL;
  for (int i = 0; i < l->n_slots && l->failed == REID_OK; i++)
    if (l->slots[i].batch == l->next_return) s = &l->slots[i];
  if (l->failed == REID_OK && s) {
    while (s->done_tasks < s->total_tasks) pthread_cond_wait(&l->done, &l->mu);
    if (s->status != REID_OK) {
      l->failed = s->status;
      snprintf(l->failed_message, sizeof l->failed_message, "%s", s->message);
    }
  }
  if (l->failed != REID_OK) {
    st = reid_fail(l->failed, "%s", l->failed_message);
  } else if (s) { /* else: past the last evaluation batch, out->batch = 0 */
    out->images = s->images;
    out->labels = s->labels;
    out->pids = s->pids;
    out->camids = s->camids;
    out->sample_index = s->samples;
    out->batch = s->n;
    l->held = (int)(s - l->slots);
    l->next_return++;
  }
  pthread_mutex_unlock(&l->mu);
  return st;
}

/* ------------------------------------------------------------ resume */

#define STATE_MAGIC   "REIDLDR1"
#define STATE_VERSION 1
enum { STATE_BYTES = 8 + 4 * 8 };

static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

size_t reid_loader_state_size(const reid_loader *l) {
  (void)l;
  return STATE_BYTES;
}

/* magic | version | fingerprint of config + split | seed | next batch index (little-endian) */
reid_status reid_loader_state_save(const reid_loader *l, void *buf) {
  if (!l || !buf) return reid_fail(REID_EINVAL, "reid_loader_state_save: NULL argument");
  unsigned char *p = buf;
  memcpy(p, STATE_MAGIC, 8);
  put_u64(p + 8, STATE_VERSION);
  put_u64(p + 16, reid_sampler_fingerprint(&l->sampler));
  put_u64(p + 24, l->sampler.c.seed);
  pthread_mutex_lock((pthread_mutex_t *)&l->mu);
  put_u64(p + 32, (uint64_t)l->next_return);
  pthread_mutex_unlock((pthread_mutex_t *)&l->mu);
  return REID_OK;
}

reid_status reid_loader_state_load(reid_loader *l, const void *buf) {
  if (!l || !buf) return reid_fail(REID_EINVAL, "reid_loader_state_load: NULL argument");
  const unsigned char *p = buf;
  if (memcmp(p, STATE_MAGIC, 8) || get_u64(p + 8) != STATE_VERSION)
    return reid_fail(REID_EFORMAT, "loader state: not a version %d loader state", STATE_VERSION);
  if (get_u64(p + 24) != l->sampler.c.seed)
    return reid_fail(REID_EINVAL, "loader state: saved with seed %llu, this loader has seed %llu",
                     (unsigned long long)get_u64(p + 24), (unsigned long long)l->sampler.c.seed);
  if (get_u64(p + 16) != reid_sampler_fingerprint(&l->sampler))
    return reid_fail(REID_EINVAL, "loader state: saved for another batch configuration or dataset");
  uint64_t next = get_u64(p + 32);
  if (next > (uint64_t)l->sampler.total_batches)
    return reid_fail(REID_EFORMAT, "loader state: batch %llu past the last (%ld)",
                     (unsigned long long)next, l->sampler.total_batches);
  pthread_mutex_lock(&l->mu);
  l->paused = 1; /* let the tasks in flight finish, then replan every slot */
  while (l->in_flight > 0) pthread_cond_wait(&l->done, &l->mu);
  l->held = -1;
  l->failed = REID_OK;
  l->next_return = l->next_plan = (long)next;
  for (int i = 0; i < l->n_slots; i++) plan_slot(l, &l->slots[i]);
  l->paused = 0;
  pthread_cond_broadcast(&l->work);
  pthread_mutex_unlock(&l->mu);
  return REID_OK;
}
