/* Shared model instances: a registry by name, and per instance a queue of
 * waiting frames and a worker thread that batches their crops. */
#include "shared_engine.h"

#include <string.h>

/* A frame waiting to be embedded. Lives on its client's stack while the
 * client waits in reid_shared_client_embed. */
typedef struct SharedJob {
  const reid_frame *frame;
  const reid_box *boxes;
  float *out;
  int n;
  int next;     /* crops handed to batches so far; < n: the job is in the queue */
  int finished; /* crops embedded (or failed) so far */
  gint64 deadline_us;
  gboolean cancelled; /* taken out of the queue by set_flushing */
  reid_status status; /* first failure of one of its batches */
  char error[512];
} SharedJob;

/* A run of one job's crops inside a batch. */
typedef struct SharedSlice {
  SharedJob *job;
  int first, count, row;
} SharedSlice;

typedef struct SharedInstance {
  gchar *name, *model, *device;
  gchar *overrides; /* input-size, mean, std as given */
  int gpu_id, batch;
  reid_precision precision;
  int clients; /* under registry_lock */

  reid_embedder *embedder;
  GMutex embedder_lock; /* the worker's batches vs query images of start() */
  float *y;             /* [batch, dim] embeddings */
  int dim;
  SharedSlice *slices;        /* [batch] */
  reid_embedder_crops *parts; /* [batch]: the slices' boxes, for the embedder */

  GMutex lock; /* the rest */
  GCond work, done;
  GQueue queue; /* SharedJob *, arrival order */
  int queued_crops, waiting_clients, open_clients;
  gboolean quit;
  guint64 batches, crops;
  GThread *worker;
} SharedInstance;

struct ReidSharedClient {
  SharedInstance *inst;
  gint64 latency_us;
  gboolean flushing; /* under inst->lock */
  SharedJob *job;    /* the waiting frame, under inst->lock */
};

static GMutex registry_lock;
static GHashTable *registry; /* name -> SharedInstance */

/* ---------------------------------------------------------------- worker */

/* Takes up to `batch` crops from the queue head (lock held). */
static int take_batch(SharedInstance *s, int *n_slices) {
  int rows = 0, k = 0;
  while (rows < s->batch && !g_queue_is_empty(&s->queue)) {
    SharedJob *j = g_queue_peek_head(&s->queue);
    int count = MIN(j->n - j->next, s->batch - rows);
    s->slices[k++] = (SharedSlice){j, j->next, count, rows};
    j->next += count;
    rows += count;
    s->queued_crops -= count;
    if (j->next == j->n) g_queue_pop_head(&s->queue);
  }
  *n_slices = k;
  return rows;
}

/* Embeds the slices, each preprocessed straight into the engine's input (lock not held; their
 * clients wait). */
static void run_batch(SharedInstance *s, int rows, int n_slices) {
  for (int i = 0; i < n_slices; i++) {
    const SharedSlice *sl = &s->slices[i];
    s->parts[i] = (reid_embedder_crops){sl->job->frame, sl->job->boxes + sl->first, sl->count};
  }
  (void)rows; /* the slices' counts add up to it */
  g_mutex_lock(&s->embedder_lock);
  reid_status st = reid_embedder_embed_crops(s->embedder, s->parts, n_slices, s->y);
  g_mutex_unlock(&s->embedder_lock);
  for (int i = 0; i < n_slices; i++) {
    const SharedSlice *sl = &s->slices[i];
    SharedJob *j = sl->job;
    if (st == REID_OK)
      memcpy(j->out + (size_t)s->dim * sl->first, s->y + (size_t)s->dim * sl->row,
             sizeof(float) * (size_t)s->dim * sl->count);
    else if (j->status == REID_OK) { /* the job's own fields: only this batch writes them now */
      j->status = st;
      g_strlcpy(j->error, reid_last_error(), sizeof j->error);
    }
  }
}

static gpointer worker_main(gpointer data) {
  SharedInstance *s = data;
  g_mutex_lock(&s->lock);
  while (!s->quit) {
    if (g_queue_is_empty(&s->queue)) {
      g_cond_wait(&s->work, &s->lock);
      continue;
    }
    /* wait for a full batch, for every client, or for the oldest frame's deadline */
    SharedJob *head = g_queue_peek_head(&s->queue);
    if (s->queued_crops < s->batch && s->waiting_clients < s->open_clients &&
        g_get_monotonic_time() < head->deadline_us) {
      g_cond_wait_until(&s->work, &s->lock, head->deadline_us);
      continue; /* re-check: new frames, a cancelled head, quit */
    }
    int n_slices, rows = take_batch(s, &n_slices);
    g_mutex_unlock(&s->lock);
    run_batch(s, rows, n_slices);
    g_mutex_lock(&s->lock);
    for (int i = 0; i < n_slices; i++) s->slices[i].job->finished += s->slices[i].count;
    s->batches++;
    s->crops += (guint64)rows;
    g_cond_broadcast(&s->done);
  }
  g_mutex_unlock(&s->lock);
  return NULL;
}

/* ---------------------------------------------------------------- instances */

static void instance_free(SharedInstance *s) {
  if (s->worker) {
    g_mutex_lock(&s->lock);
    s->quit = TRUE;
    g_cond_signal(&s->work);
    g_mutex_unlock(&s->lock);
    g_thread_join(s->worker);
  }
  reid_embedder_close(s->embedder);
  g_free(s->y);
  g_free(s->slices);
  g_free(s->parts);
  g_mutex_clear(&s->embedder_lock);
  g_mutex_clear(&s->lock);
  g_cond_clear(&s->work);
  g_cond_clear(&s->done);
  g_free(s->name);
  g_free(s->model);
  g_free(s->device);
  g_free(s->overrides);
  g_free(s);
}

static gchar *overrides_text(const reid_embedder_options *o) {
  return g_strdup_printf("input-size '%s', mean '%s', std '%s'", o->input_size ? o->input_size : "",
                         o->mean ? o->mean : "", o->std ? o->std : "");
}

static reid_status instance_open(const char *name, const reid_embedder_options *o,
                                 SharedInstance **out) {
  SharedInstance *s = g_new0(SharedInstance, 1);
  s->name = g_strdup(name);
  s->model = g_canonicalize_filename(o->model_path ? o->model_path : "", NULL);
  s->device = g_strdup(o->device ? o->device : "auto");
  s->overrides = overrides_text(o);
  s->gpu_id = o->gpu_id;
  s->batch = o->batch_size;
  s->precision = o->precision;
  g_mutex_init(&s->embedder_lock);
  g_mutex_init(&s->lock);
  g_cond_init(&s->work);
  g_cond_init(&s->done);
  g_queue_init(&s->queue);
  reid_status st = reid_embedder_open(o, &s->embedder);
  if (st == REID_OK) {
    s->dim = reid_embedder_dim(s->embedder, REID_ROLE_VIDEO);
    s->y = g_try_malloc(sizeof(float) * (size_t)s->dim * (size_t)s->batch);
    s->slices = g_try_new(SharedSlice, s->batch);
    s->parts = g_try_new(reid_embedder_crops, s->batch);
    if (!s->y || !s->slices || !s->parts)
      st =
          reid_fail(REID_ENOMEM, "model instance '%s': out of memory for batch %d", name, s->batch);
  }
  if (st == REID_OK) {
    GError *error = NULL;
    s->worker = g_thread_try_new("reid-shared", worker_main, s, &error);
    if (!s->worker) {
      st =
          reid_fail(REID_ENOMEM, "model instance '%s': no worker thread: %s", name, error->message);
      g_error_free(error);
    }
  }
  if (st != REID_OK) {
    instance_free(s);
    return st;
  }
  *out = s;
  return REID_OK;
}

/* The first difference between an open instance and what a new client asks. */
static reid_status check_same(const SharedInstance *s, const reid_embedder_options *o) {
  gchar *model = g_canonicalize_filename(o->model_path ? o->model_path : "", NULL);
  const char *device = o->device ? o->device : "auto";
  reid_status st = REID_OK;
  if (strcmp(model, s->model) != 0)
    st = reid_fail(REID_EINVAL, "model-instance-id '%s' is open with model '%s', not '%s'", s->name,
                   s->model, model);
  else if (strcmp(device, s->device) != 0 || o->gpu_id != s->gpu_id)
    st = reid_fail(REID_EINVAL,
                   "model-instance-id '%s' is open on device %s (gpu-id %d), not %s (gpu-id %d)",
                   s->name, s->device, s->gpu_id, device, o->gpu_id);
  else if (o->precision != s->precision)
    st = reid_fail(REID_EINVAL, "model-instance-id '%s' is open with precision %s, not %s", s->name,
                   reid_precision_name(s->precision), reid_precision_name(o->precision));
  else if (o->batch_size != s->batch)
    st = reid_fail(REID_EINVAL, "model-instance-id '%s' is open with batch-size %d, not %d",
                   s->name, s->batch, o->batch_size);
  gchar *overrides = overrides_text(o);
  if (st == REID_OK && strcmp(overrides, s->overrides) != 0)
    st = reid_fail(REID_EINVAL, "model-instance-id '%s' is open with %s, not %s", s->name,
                   s->overrides, overrides);
  g_free(overrides);
  g_free(model);
  return st;
}

reid_status reid_shared_client_open(const char *name, const reid_embedder_options *o,
                                    int max_latency_ms, ReidSharedClient **out) {
  *out = NULL;
  if (!name || !*name) return reid_fail(REID_EINVAL, "empty model-instance-id");
  if (max_latency_ms < 0)
    return reid_fail(REID_EINVAL, "max-batch-latency %d ms < 0", max_latency_ms);
  g_mutex_lock(&registry_lock);
  if (!registry) registry = g_hash_table_new(g_str_hash, g_str_equal);
  SharedInstance *s = g_hash_table_lookup(registry, name);
  /* a model is loaded under the registry lock: a second client of the same
   * name waits for it instead of loading it twice */
  reid_status st = s ? check_same(s, o) : instance_open(name, o, &s);
  if (st == REID_OK) {
    if (s->clients++ == 0) g_hash_table_insert(registry, s->name, s);
    g_mutex_lock(&s->lock);
    s->open_clients++;
    g_mutex_unlock(&s->lock);
  }
  g_mutex_unlock(&registry_lock);
  if (st != REID_OK) return st;
  ReidSharedClient *c = g_new0(ReidSharedClient, 1);
  c->inst = s;
  c->latency_us = (gint64)max_latency_ms * 1000;
  *out = c;
  return REID_OK;
}

void reid_shared_client_close(ReidSharedClient *c) {
  if (!c) return;
  SharedInstance *s = c->inst;
  g_mutex_lock(&registry_lock);
  g_mutex_lock(&s->lock);
  s->open_clients--;
  g_cond_signal(&s->work); /* the others may now be all the clients there are */
  g_mutex_unlock(&s->lock);
  gboolean last = --s->clients == 0;
  if (last) g_hash_table_remove(registry, s->name);
  g_mutex_unlock(&registry_lock);
  if (last) instance_free(s);
  g_free(c);
}

reid_embedder *reid_shared_client_embedder(ReidSharedClient *c) {
  return c->inst->embedder;
}
void reid_shared_client_lock(ReidSharedClient *c) {
  g_mutex_lock(&c->inst->embedder_lock);
}
void reid_shared_client_unlock(ReidSharedClient *c) {
  g_mutex_unlock(&c->inst->embedder_lock);
}

ReidSharedResult reid_shared_client_embed(ReidSharedClient *c, const reid_frame *frame,
                                          const reid_box *boxes, int n, float *out) {
  if (n <= 0) return REID_SHARED_OK;
  SharedInstance *s = c->inst;
  SharedJob job = {.frame = frame,
                   .boxes = boxes,
                   .out = out,
                   .n = n,
                   .deadline_us = g_get_monotonic_time() + c->latency_us};
  g_mutex_lock(&s->lock);
  if (c->flushing) {
    g_mutex_unlock(&s->lock);
    return REID_SHARED_FLUSHING;
  }
  c->job = &job;
  g_queue_push_tail(&s->queue, &job);
  s->queued_crops += n;
  s->waiting_clients++;
  g_cond_signal(&s->work);
  /* done when every crop handed out came back and none is left in the queue */
  while (job.finished < job.next || (job.next < job.n && !job.cancelled))
    g_cond_wait(&s->done, &s->lock);
  gboolean cancelled = job.cancelled;
  s->waiting_clients--;
  c->job = NULL;
  g_mutex_unlock(&s->lock);
  if (cancelled) return REID_SHARED_FLUSHING;
  if (job.status != REID_OK) {
    reid_fail(job.status, "%s", job.error);
    return REID_SHARED_ERROR;
  }
  return REID_SHARED_OK;
}

void reid_shared_client_set_flushing(ReidSharedClient *c, gboolean flushing) {
  SharedInstance *s = c->inst;
  g_mutex_lock(&s->lock);
  c->flushing = flushing;
  SharedJob *j = c->job;
  if (flushing && j && j->next < j->n) {
    /* out of the queue: the worker never sees the rest of this frame */
    g_queue_remove(&s->queue, j);
    s->queued_crops -= j->n - j->next;
    j->cancelled = TRUE;
    g_cond_broadcast(&s->done);
    g_cond_signal(&s->work);
  }
  g_mutex_unlock(&s->lock);
}

void reid_shared_client_stats(ReidSharedClient *c, guint64 *batches, guint64 *crops) {
  SharedInstance *s = c->inst;
  g_mutex_lock(&s->lock);
  *batches = s->batches;
  *crops = s->crops;
  g_mutex_unlock(&s->lock);
}

int reid_shared_instances(void) {
  g_mutex_lock(&registry_lock);
  int n = registry ? (int)g_hash_table_size(registry) : 0;
  g_mutex_unlock(&registry_lock);
  return n;
}
