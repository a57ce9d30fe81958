/* The loop over the tasks of `reid-train continual` (continual.h): per task a
 * training view, a loader of episodes, a fresh Adam, the frozen old model, the
 * trainer's epochs (train_run_epochs: log, checkpoints, guard, resumption), then the
 * evaluation on every test set seen so far and every unseen set. */
#include "continual.h"

#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "continual_impl.h"
#if HAVE_CUDA
#include "reid_cuda.h"
#endif

static const char *const method_names[] = {"dwopp", "dwpp", "ft", "joint"};

reid_status reid_cl_method_parse(const char *name, reid_cl_method *out) {
  for (int i = 0; i < 4; i++)
    if (name && !strcmp(name, method_names[i])) {
      *out = (reid_cl_method)i;
      return REID_OK;
    }
  return reid_fail(REID_EINVAL, "unknown method '%s' (expected dwopp, dwpp, ft or joint)",
                   name ? name : "(null)");
}

const char *reid_cl_method_name(reid_cl_method m) {
  return m >= REID_CL_DWOPP && m <= REID_CL_JOINT ? method_names[m] : "unknown";
}

void reid_continual_config_default(reid_continual_config *c) {
  memset(c, 0, sizeof *c);
  c->stream.kind = REID_STREAM_INTRA;
  c->stream.layout = REID_LAYOUT_AUTO;
  c->stream.base_ids = 76;
  c->stream.tasks = 10;
  c->stream.ids_per_task = 500;
  c->method = REID_CL_DWOPP;
  c->progress = stderr;
  c->device = "auto";
  c->workers = 2;
  c->arch = REID_ARCH_RESNET50;
  c->last_stride = 1;
  c->height = 256;
  c->width = 128;
  c->episode_ids = 32;
  c->support = 5;
  c->query = 1;
  c->margin = 0.4f;
  c->norm_weight = 5e-4f;
  c->kd_weight = 1.0f;
  c->temperature = -1;
  c->clamp = 1e-4f;
  c->known_negatives = 1;
  c->lr = 2e-4f;
  c->weight_decay = 1e-4f;
  c->lr_end = 1e-6f;
  c->epochs = 600;
  c->flip_p = 0.5f;
  c->erase_p_start = 0.3f;
  c->erase_p_end = 0.7f;
  c->erase_area_start = 0.1f;
  c->erase_area_end = 0.34f;
  c->erase_area_min = 0.02f;
  c->erase_aspect_min = 0.3f;
  c->save_every = 50;
  c->stop_task = -1;
  c->seed = 1;
  c->eval_batch = 64;
}

float reid_continual_temperature(const reid_continual_config *c) {
  if (c->temperature >= 0) return c->temperature;
  return c->method == REID_CL_DWPP ? 10.0f : 1.0f;
}

/* "M.safetensors" -> "M" */
static char *stem_of(const char *output) {
  size_t len = strlen(output);
  const char *ext = ".safetensors";
  if (len > strlen(ext) && !strcmp(output + len - strlen(ext), ext)) len -= strlen(ext);
  return strndup(output, len);
}

/* Everything that ties a state to this run, plus the task index. */
static void describe(const reid_continual_config *c, const char *datasets, int task, int steps,
                     char *buf, size_t size) {
  snprintf(buf, size,
           "task=%d;method=%s;stream=%s;data=%s;base_ids=%d;tasks=%d;ids_per_task=%d;arch=%s;"
           "last_stride=%d;input=%dx%d;init=%s;episode=%dx(%d+%d);margin=%g;norm=%g;kd=%g;"
           "temperature=%g;clamp=%g;lr=%g;weight_decay=%g;lr_end=%g;epochs=%d;steps=%d;"
           "flip=%g;erase=%g-%g,%g-%g,%g,%g;seed=%llu;negatives=%s;",
           task, reid_cl_method_name(c->method), reid_stream_kind_name(c->stream.kind), datasets,
           c->stream.base_ids, c->stream.tasks, c->stream.ids_per_task, reid_arch_name(c->arch),
           c->last_stride, c->height, c->width, c->init ? c->init : "", c->episode_ids, c->support,
           c->query, (double)c->margin, (double)c->norm_weight, (double)c->kd_weight,
           (double)reid_continual_temperature(c), (double)c->clamp, (double)c->lr,
           (double)c->weight_decay, (double)c->lr_end, c->epochs, steps, (double)c->flip_p,
           (double)c->erase_p_start, (double)c->erase_p_end, (double)c->erase_area_start,
           (double)c->erase_area_end, (double)c->erase_area_min, (double)c->erase_aspect_min,
           (unsigned long long)c->seed, c->known_negatives ? "known" : "all");
}

typedef struct cl_run {
  const reid_continual_config *c;
  task_stream *stream;
  char *stem, *state_path, *datasets;
  reid_backend *be, *cpu;
  reid_net *model, *old;
  continual_results results;
  int *row_task;
  int n_run_tasks; /* 1 for joint */
} cl_run;

static reid_status create_model(cl_run *cr) {
  const reid_continual_config *c = cr->c;
  reid_model_config m;
  reid_model_config_default(&m);
  m.arch = c->arch;
  m.last_stride = c->last_stride;
  m.input_height = c->height;
  m.input_width = c->width;
  m.bnneck = 0;
  m.num_classes = 0;
  snprintf(m.task, sizeof m.task, "continual-%s", reid_cl_method_name(c->method));
  snprintf(m.description, sizeof m.description,
           "reid-train continual --method %s: DMML episodes of %dx(%d+%d), %s stream of %d tasks",
           reid_cl_method_name(c->method), c->episode_ids, c->support, c->query,
           reid_stream_kind_name(c->stream.kind), cr->stream->n_tasks);
  REID_TRY(reid_net_create(&m, cr->be, &cr->model));
  REID_TRY(reid_net_init_weights(cr->model, c->seed));
  if (c->init) REID_TRY(train_init_from(cr->model, c->init));
  return REID_OK;
}

/* Evaluates the model after run-task t (training task `task`) into results row t. */
static reid_status evaluate(cl_run *cr, int t, int task) {
  const reid_continual_config *c = cr->c;
  reid_eval_config ec;
  reid_eval_config_default(&ec);
  ec.protocol = REID_PROTOCOL_I2I;
  ec.flip = 1;
  ec.bicubic = 1; /* papers.md §2: the input is resized with bicubic */
  ec.batch = c->eval_batch;
  ec.workers = c->workers > 0 ? c->workers : 1;
  const int joint = c->method == REID_CL_JOINT;
  for (int j = 0; j < cr->stream->n_tests; j++) {
    const test_set *ts = &cr->stream->tests[j];
    double *map = &cr->results.map[t * cr->results.cols + j],
           *r1 = &cr->results.r1[t * cr->results.cols + j];
    *map = *r1 = NAN;
    if (!joint && ts->seen_after > task) continue;
    reid_rank_result rr;
    reid_status st = reid_evaluate(cr->model, cr->model, ts->data, &ec, &rr);
    if (st != REID_OK) return reid_fail(st, "evaluating on %s: %s", ts->name, reid_last_error());
    *map = rr.map;
    *r1 = rr.cmc ? rr.cmc[0] : NAN;
    reid_rank_result_free(&rr);
    if (c->progress)
      fprintf(c->progress, "reid-train continual: after task %d: %-24s mAP %5.1f%%  R1 %5.1f%%\n",
              task, ts->name, 100 * *map, 100 * *r1);
  }
  cr->row_task[t] = task;
  if (cr->results.rows < t + 1) cr->results.rows = t + 1;
  return REID_OK;
}

static reid_status state_extra(cl_run *cr, int t, char **out) {
  char *enc = continual_results_encode(&cr->results);
  if (!enc) return reid_fail(REID_ENOMEM, "out of memory");
  size_t n = strlen(enc) + 32;
  *out = malloc(n);
  if (*out) snprintf(*out, n, "%d|%s", t, enc);
  free(enc);
  return *out ? REID_OK : reid_fail(REID_ENOMEM, "out of memory");
}

/* The run-task and the results a saved state holds. */
static reid_status read_saved(cl_run *cr, int *t) {
  st_file *f;
  REID_TRY(st_open(cr->state_path, &f));
  const char *extra = st_meta(f, "extra");
  char *bar = extra ? strchr(extra, '|') : NULL;
  reid_status st = REID_OK;
  if (!extra || !bar || sscanf(extra, "%d|", t) != 1 || *t < 0 || *t >= cr->n_run_tasks)
    st = reid_fail(REID_EFORMAT, "%s: not the state of a continual run of %d tasks", cr->state_path,
                   cr->n_run_tasks);
  if (st == REID_OK) st = continual_results_decode(&cr->results, bar + 1);
  if (st == REID_OK && cr->results.rows != *t)
    st = reid_fail(REID_EFORMAT, "%s: task %d with %d rows of results", cr->state_path, *t,
                   cr->results.rows);
  for (int i = 0; i < cr->results.rows && st == REID_OK; i++)
    cr->row_task[i] = cr->c->method == REID_CL_JOINT ? cr->stream->n_tasks - 1 : i;
  st_close(f);
  return st;
}

/* Trains run-task t (resumed from the state when `resume`), then evaluates it. */
static reid_status run_task(cl_run *cr, int t, int resume) {
  const reid_continual_config *c = cr->c;
  const int joint = c->method == REID_CL_JOINT;
  const int task = joint ? cr->stream->n_tasks - 1 : t;
  reid_dataset *view = NULL;
  REID_TRY(joint ? task_view_build(cr->stream, 0, cr->stream->n_tasks, &view)
                 : task_view_build(cr->stream, t, 1, &view));
  const int P = c->episode_ids, K = c->support + c->query;
  int steps = (view->n_train_ids + P - 1) / P;
  if (c->steps_per_epoch > 0) steps = c->steps_per_epoch * (joint ? cr->stream->n_tasks : 1);
  reid_train_config tc;
  reid_train_config_default(&tc, 0);
  char *task_path = malloc(strlen(cr->stem) + 64), *log_path = malloc(strlen(cr->stem) + 64);
  continual_state cs = {.cfg = c, .task = task, .datasets = cr->datasets, .view = view};
  train_run r = {.cfg = &tc,
                 .task = &continual_train_task,
                 .be = cr->be,
                 .cpu = cr->cpu,
                 .data = view,
                 .steps_per_epoch = steps,
                 .task_state = &cs};
  train_log log = {0};
  char config[4096];
  reid_status st = task_path && log_path ? REID_OK : reid_fail(REID_ENOMEM, "out of memory");
  if (st == REID_OK) {
    snprintf(task_path, strlen(cr->stem) + 64, "%s.task%02d.safetensors", cr->stem, task);
    snprintf(log_path, strlen(cr->stem) + 64, "%s.task%02d.log.jsonl", cr->stem, task);
    tc.output = task_path;
    tc.progress = c->progress;
    tc.epochs = c->epochs;
    if (t == c->stop_task && c->stop_epoch > 0 && c->stop_epoch < c->epochs)
      tc.epochs = c->stop_epoch; /* the schedules still span c->epochs (describe, augment) */
    tc.save_every = c->save_every;
    tc.resume = resume;
    tc.lr = c->lr;
    snprintf(tc.schedule_text, sizeof tc.schedule_text, "exp-tail:%d:%g", c->epochs,
             (double)c->lr_end);
    st = reid_lr_schedule_parse(tc.schedule_text, c->lr, &tc.schedule);
    describe(c, cr->datasets, t, steps, config, sizeof config);
  }
  if (st == REID_OK && view->n_train_ids < 2)
    st = reid_fail(REID_EINVAL, "task %d has %d identities (an episode needs 2)", task,
                   view->n_train_ids);
  if (st == REID_OK && P > view->n_train_ids)
    st = reid_fail(REID_EINVAL,
                   "task %d has %d identities, fewer than the %d of an episode (--episode-ids)",
                   task, view->n_train_ids, P);
  if (st == REID_OK) {
    const reid_model_config *m = reid_net_config(cr->model);
    reid_loader_config lc = {.batch_p = P,
                             .batch_k = K,
                             .frames = 1,
                             .sampling = REID_FRAMES_RANDOM_CHUNKS,
                             .height = m->input_height,
                             .width = m->input_width,
                             .augment = {.enabled = 1,
                                         .flip_p = c->flip_p,
                                         .pad = 0,
                                         .erase_p = c->erase_p_start,
                                         .erase_area_min = c->erase_area_min,
                                         .erase_area_max = c->erase_area_start,
                                         .erase_aspect_min = c->erase_aspect_min,
                                         .grow_batches = (long)c->epochs * steps,
                                         .erase_p_end = c->erase_p_end,
                                         .erase_area_max_end = c->erase_area_end},
                             .bicubic = 1, /* papers.md §2: "256x128 (bicubic)" */
                             .group_distinct =
                                 c->stream.kind == REID_STREAM_COLLECTED && c->known_negatives,
                             .threads = c->workers > 0 ? c->workers : 1,
                             .prefetch = 2,
                             .seed = c->seed * 1000003ull + (uint64_t)t};
    memcpy(lc.mean, m->mean, sizeof lc.mean);
    memcpy(lc.std, m->std, sizeof lc.std);
    st = reid_loader_train(view, &lc, &r.loader);
  }
  /* members: the model (fresh Adam), and the frozen previous model when distilling */
  if (st == REID_OK) {
    r.members[0] = (train_member){.name = "model", .net = cr->model, .trained = 1};
    r.n_members = 1;
    st = reid_optimizer_init(&r.members[0].opt, cr->model, c->weight_decay, 0);
  }
  /* the previous model: the last task's, or for task 0 the --init checkpoint (a deployed
   * model updated on site must not forget what it knew either) */
  const int distil =
      (t > 0 || c->init) && (c->method == REID_CL_DWOPP || c->method == REID_CL_DWPP);
  if (st == REID_OK && distil) {
    if (!cr->old) st = reid_net_create(reid_net_config(cr->model), cr->be, &cr->old);
    if (st == REID_OK) st = train_copy_weights(cr->old, cr->model, "the old model");
    r.members[1] = (train_member){.name = "old", .net = cr->old, .trained = 0};
    r.n_members = 2;
  }
  reid_rng_seed(&r.rng, c->seed ^ 0x636f6e74ull);
  if (st == REID_OK) st = state_extra(cr, t, &r.state_extra);
  if (st == REID_OK && resume) st = train_state_load(&r, cr->state_path, config);
  if (st == REID_OK && !resume) st = train_state_save(&r, cr->state_path, config);
  if (st == REID_OK)
    st = train_log_open(&log, log_path, resume ? r.iter : -1, c->progress, "continual", steps);
  if (st == REID_OK && c->progress)
    fprintf(c->progress,
            "reid-train continual: task %d of %d (%s): %d identities, %d images, %d steps of "
            "%d x (%d + %d) per epoch, epochs %d..%d%s\n",
            task, cr->stream->n_tasks, reid_cl_method_name(c->method), view->n_train_ids,
            view->train.count, steps, P, c->support, c->query, r.epoch + 1, c->epochs,
            distil ? ", distilling from the previous model" : "");
  if (st == REID_OK) st = train_run_epochs(&r, cr->state_path, config, &log);
  train_log_close(&log);
  const int partial = r.epoch < c->epochs;
  if (st == REID_OK && !partial) st = evaluate(cr, t, task);
  if (st == REID_OK)
    st = continual_results_write(&cr->results, cr->stream, c, cr->stem, cr->row_task);
  continual_train_task.destroy(&r);
  reid_optimizer_free(&r.members[0].opt);
  reid_loader_destroy(r.loader);
  if (r.x_dev) cr->be->ops->free(cr->be, r.x_dev);
  if (r.d_emb_dev) cr->be->ops->free(cr->be, r.d_emb_dev);
  free(r.state_extra);
  free(task_path);
  free(log_path);
  task_view_free(view);
  return st;
}

static reid_status run(cl_run *cr) {
  const reid_continual_config *c = cr->c;
  task_stream_config sc = c->stream;
  REID_TRY(task_stream_load(&sc, &cr->stream));
  size_t len = 1;
  for (int i = 0; i < cr->stream->n_sources; i++) len += strlen(cr->stream->source_names[i]) + 1;
  if (!(cr->datasets = calloc(len, 1))) return reid_fail(REID_ENOMEM, "out of memory");
  for (int i = 0; i < cr->stream->n_sources; i++) {
    if (i) strcat(cr->datasets, ",");
    strcat(cr->datasets, cr->stream->source_names[i]);
  }
  cr->n_run_tasks = c->method == REID_CL_JOINT ? 1 : cr->stream->n_tasks;
  REID_TRY(continual_results_init(&cr->results, cr->n_run_tasks, cr->stream->n_tests));
  if (!(cr->row_task = calloc((size_t)cr->n_run_tasks, sizeof(int))))
    return reid_fail(REID_ENOMEM, "out of memory");
  REID_TRY(reid_backend_create(c->device, c->gpu_id, &cr->be));
#if HAVE_CUDA
  if (c->tf32 && cr->be->device == REID_DEVICE_CUDA) REID_TRY(reid_cuda_set_tf32(cr->be, 1));
#endif
  if (cr->be->device == REID_DEVICE_CPU)
    cr->cpu = cr->be;
  else
    REID_TRY(reid_backend_create("cpu", 0, &cr->cpu));
  REID_TRY(create_model(cr));
  int first = 0;
  if (c->resume) REID_TRY(read_saved(cr, &first));
  for (int t = first; t < cr->n_run_tasks; t++) {
    REID_TRY(run_task(cr, t, c->resume && t == first));
    if (t == c->stop_task) {
      if (c->progress)
        fprintf(c->progress,
                "reid-train continual: stopped after task %d as asked; --resume "
                "continues from %s\n",
                t, cr->state_path);
      return REID_OK;
    }
  }
  continual_state cs = {
      .cfg = c, .task = cr->row_task[cr->n_run_tasks - 1], .datasets = cr->datasets};
  train_run r = {.task_state = &cs, .members = {{.net = cr->model}}, .n_members = 1};
  return continual_train_task.save_model(&r, c->output);
}

static reid_status validate(const reid_continual_config *c) {
  if (!c->output) return reid_fail(REID_EINVAL, "continual training needs an output");
  char *copy = strdup(c->output);
  if (!copy) return reid_fail(REID_ENOMEM, "out of memory");
  int writable = access(dirname(copy), W_OK) == 0;
  free(copy);
  if (!writable)
    return reid_fail(REID_EIO, "%s: its folder does not exist or is not writable", c->output);
  if (c->episode_ids < 2 || c->support < 1 || c->query < 1)
    return reid_fail(REID_EINVAL, "episodes need >= 2 identities x (>= 1 support + >= 1 query)");
  if (c->epochs < 1 || c->save_every < 1)
    return reid_fail(REID_EINVAL, "epochs %d, save_every %d", c->epochs, c->save_every);
  return REID_OK;
}

reid_status reid_continual(const reid_continual_config *c) {
  REID_TRY(validate(c));
  if (c->threads > 0) reid_set_num_threads(c->threads);
  cl_run cr = {.c = c};
  reid_status st =
      (cr.stem = stem_of(c->output)) ? REID_OK : reid_fail(REID_ENOMEM, "out of memory");
  if (st == REID_OK) {
    size_t n = strlen(cr.stem) + 32;
    if ((cr.state_path = malloc(n)))
      snprintf(cr.state_path, n, "%s.state.safetensors", cr.stem);
    else
      st = reid_fail(REID_ENOMEM, "out of memory");
  }
  if (st == REID_OK) st = run(&cr);
  reid_net_destroy(cr.old);
  reid_net_destroy(cr.model);
  if (cr.cpu && cr.cpu != cr.be) reid_backend_destroy(cr.cpu);
  reid_backend_destroy(cr.be);
  continual_results_free(&cr.results);
  free(cr.row_task);
  task_stream_free(cr.stream);
  free(cr.datasets);
  free(cr.state_path);
  free(cr.stem);
  return st;
}
