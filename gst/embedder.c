/* Checkpoint -> networks -> engines; crops and images -> normalised embeddings. */
#include "embedder.h"

#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "image.h"
#include "onnx_import.h"
#include "safetensors.h"
#if HAVE_CUDA
#include "reid_cuda.h"
#endif

typedef struct role_model {
  reid_net *net;
  reid_engine *engine;
  reid_preprocess_params pp;
  int dim;
} role_model;

struct reid_embedder {
  reid_backend *be;
  role_model video, image; /* image.net == NULL: the video model serves both roles */
  int batch;
  float *x; /* [batch, 3, H, W] preprocessed crops, the larger of the two inputs */
  char model_name[256];
  char description[320];
  double match_threshold; /* NAN: the file has none */
};

static const role_model *role_of(const reid_embedder *e, reid_embed_role role) {
  return role == REID_ROLE_IMAGE && e->image.net ? &e->image : &e->video;
}

int reid_embedder_dim(const reid_embedder *e, reid_embed_role role) {
  return role_of(e, role)->dim;
}
int reid_embedder_networks(const reid_embedder *e) {
  return e->image.net ? 2 : 1;
}
const char *reid_embedder_model_name(const reid_embedder *e) {
  return e->model_name;
}
const char *reid_embedder_describe(const reid_embedder *e) {
  return e->description;
}
double reid_embedder_match_threshold(const reid_embedder *e) {
  return e->match_threshold;
}

/* metadata match_threshold (written by reid-train eval --calibrate): a cosine in [-1, 1] */
static reid_status read_threshold(const st_file *f, double *out) {
  *out = NAN;
  const char *text = st_meta(f, "match_threshold");
  if (!text) return REID_OK;
  char *end;
  double t = strtod(text, &end);
  if (end == text || *end || !(t >= -1 && t <= 1))
    return reid_fail(REID_EFORMAT, "%s: metadata match_threshold='%s' is not a cosine in [-1, 1]",
                     st_path(f), text);
  *out = t;
  return REID_OK;
}

void reid_embedder_input_size(const reid_embedder *e, reid_embed_role role, int *height,
                              int *width) {
  *height = role_of(e, role)->pp.height;
  *width = role_of(e, role)->pp.width;
}

int reid_embedder_next_chunk(int left, int batch) {
  if (left >= batch) return batch;
  int p = 1;
  while (2 * p <= left) p *= 2;
  return p;
}

/* The engine of a loaded network and its preprocessing. */
static reid_status make_engine(reid_embedder *e, const char *path, const char *prefix,
                               reid_precision precision, role_model *m) {
  const reid_model_config cfg = *reid_net_config(m->net);
  reid_status st = reid_engine_create(m->net, precision, e->batch, &m->engine);
  if (st != REID_OK)
    return reid_fail_context(st, "%s: %s network on %s", path, *prefix ? prefix : "the",
                             e->be->name);
  m->dim = reid_engine_dim(m->engine);
  m->pp.height = cfg.input_height;
  m->pp.width = cfg.input_width;
  memcpy(m->pp.mean, cfg.mean, sizeof m->pp.mean);
  memcpy(m->pp.std, cfg.std, sizeof m->pp.std);
  return REID_OK;
}

/* Reads one network of a checkpoint (prefix "" for a single model) and makes its engine. */
static reid_status load_role(reid_embedder *e, const st_file *f, const char *prefix,
                             const reid_onnx_options *o, reid_precision precision, role_model *m) {
  reid_model_config cfg;
  REID_TRY(reid_checkpoint_read_config(f, prefix, &cfg));
  reid_onnx_options_apply(o, &cfg);
  REID_TRY(reid_net_create_empty(&cfg, e->be, &m->net));
  REID_TRY(reid_checkpoint_load_weights(m->net, f, prefix));
  return make_engine(e, st_path(f), prefix, precision, m);
}

/* An ONNX file: one network for both roles; its metadata match_threshold. */
static reid_status load_onnx(reid_embedder *e, const reid_embedder_options *opt,
                             const reid_onnx_options *o) {
  reid_onnx_info info;
  REID_TRY(reid_onnx_load(opt->model_path, o, e->be, &e->video.net, &info));
  e->match_threshold = info.match_threshold;
  return make_engine(e, opt->model_path, "", opt->precision, &e->video);
}

static void describe(reid_embedder *e) {
  const reid_model_config *v = reid_net_config(e->video.net);
  int n = snprintf(e->description, sizeof e->description, "%s %dx%d on %s", reid_arch_name(v->arch),
                   v->input_height, v->input_width, reid_engine_describe(e->video.engine));
  if (e->image.net && n > 0 && (size_t)n < sizeof e->description) {
    const reid_model_config *i = reid_net_config(e->image.net);
    snprintf(e->description + n, sizeof e->description - (size_t)n, "; images: %s %dx%d",
             reid_arch_name(i->arch), i->input_height, i->input_width);
  }
}

reid_status reid_embedder_open(const reid_embedder_options *o, reid_embedder **out) {
  *out = NULL;
  if (!o->model_path || !*o->model_path)
    return reid_fail(REID_EINVAL, "no model file given (set the 'model' property)");
  if (o->batch_size < 1) return reid_fail(REID_EINVAL, "batch size %d < 1", o->batch_size);
  reid_embedder *e = calloc(1, sizeof *e);
  if (!e) return reid_fail(REID_ENOMEM, "embedder: out of memory");
  e->batch = o->batch_size;
  const char *base = strrchr(o->model_path, '/');
  snprintf(e->model_name, sizeof e->model_name, "%s", base ? base + 1 : o->model_path);

  st_file *f = NULL;
  reid_model_roles roles;
  reid_onnx_options over;
  int onnx = reid_onnx_is_path(o->model_path);
  e->match_threshold = NAN;
  reid_status st = reid_onnx_options_parse(&over, o->input_size, o->mean, o->std);
  if (st == REID_OK && !onnx) st = st_open(o->model_path, &f);
  if (st == REID_OK && !onnx) st = reid_checkpoint_roles(f, &roles);
  if (st == REID_OK && !onnx) st = read_threshold(f, &e->match_threshold);
  /* the device is checked after the file so that a bad file is named first */
  if (st == REID_OK) st = reid_backend_create(o->device ? o->device : "auto", o->gpu_id, &e->be);
  if (st == REID_OK && onnx) st = load_onnx(e, o, &over);
  if (st == REID_OK && !onnx)
    st = load_role(e, f, roles.video_prefix, &over, o->precision, &e->video);
  if (st == REID_OK && !onnx && strcmp(roles.image_prefix, roles.video_prefix) != 0)
    st = load_role(e, f, roles.image_prefix, &over, o->precision, &e->image);
  if (f) st_close(f);
  if (st == REID_OK) {
    const role_model *big = &e->video;
    if (e->image.net && e->image.pp.height * e->image.pp.width > big->pp.height * big->pp.width)
      big = &e->image;
    e->x = malloc(sizeof(float) * 3 * (size_t)big->pp.height * big->pp.width * (size_t)e->batch);
    if (!e->x) st = reid_fail(REID_ENOMEM, "embedder: out of memory for batch %d", e->batch);
  }
  if (st != REID_OK) {
    reid_embedder_close(e);
    return st;
  }
  describe(e);
  *out = e;
  return REID_OK;
}

void reid_embedder_close(reid_embedder *e) {
  if (!e) return;
  reid_engine_destroy(e->image.engine);
  reid_net_destroy(e->image.net);
  reid_engine_destroy(e->video.engine);
  reid_net_destroy(e->video.net);
  reid_backend_destroy(e->be);
  free(e->x);
  free(e);
}

/* One chunk of crops: on a CUDA engine the frame goes to the GPU once and is
 * cropped, resized and normalised there straight into the engine's input;
 * on the CPU engine straight into its input too; elsewhere into e->x. */
static reid_status embed_chunk(reid_embedder *e, const role_model *m, const reid_frame *frame,
                               const reid_box *boxes, int n, float *out) {
#if HAVE_CUDA
  if (reid_engine_is_cuda(m->engine)) {
    void *input;
    reid_tensor_format fmt;
    REID_TRY(reid_cuda_engine_input(m->engine, &input, &fmt));
    REID_TRY(reid_preprocess_cuda(e->be, frame, REID_MEMORY_HOST, boxes, n, &m->pp, &fmt, input));
    return reid_cuda_engine_run(m->engine, n, out);
  }
#endif
  /* straight into the engine's input layout when it has one (no input reorder) */
  void *input;
  reid_tensor_format fmt;
  if (reid_engine_input(m->engine, n, &input, &fmt) == REID_OK) {
    REID_TRY(reid_preprocess_cpu_format(frame, boxes, n, &m->pp, &fmt, input));
    return reid_engine_run(m->engine, n, out);
  }
  reid_clear_error();
  REID_TRY(reid_preprocess_cpu(frame, boxes, n, &m->pp, e->x));
  return reid_engine_embed(m->engine, e->x, n, out);
}

reid_status reid_embedder_embed_boxes(reid_embedder *e, const reid_frame *frame,
                                      const reid_box *boxes, int n, float *out) {
  if (n <= 0) return REID_OK;
  const role_model *m = &e->video;
  for (int done = 0; done < n;) {
    int chunk = reid_embedder_next_chunk(n - done, e->batch);
    REID_TRY(embed_chunk(e, m, frame, boxes + done, chunk, out + (size_t)m->dim * done));
    done += chunk;
  }
  reid_l2_normalize_rows(out, n, m->dim);
  return REID_OK;
}

int reid_embedder_batch_size(const reid_embedder *e) {
  return e->batch;
}

/* Rows [first, first + count) of the crop sequence written at `input` (row 0 = `first`), in
 * `fmt`: the parts of every frame's boxes that fall there. cuda: on the GPU. */
static reid_status preprocess_rows(reid_embedder *e, const role_model *m,
                                   const reid_embedder_crops *crops, int n_crops, int first,
                                   int count, const reid_tensor_format *fmt, void *input,
                                   int cuda) {
  const size_t row_bytes = reid_tensor_format_element_size(fmt) * (size_t)fmt->channels *
                           (size_t)m->pp.height * m->pp.width;
  for (int c = 0, start = 0; c < n_crops && start < first + count; start += crops[c++].n) {
    const int lo = first > start ? first : start;
    const int hi = first + count < start + crops[c].n ? first + count : start + crops[c].n;
    if (hi <= lo) continue;
    char *dst = (char *)input + row_bytes * (size_t)(lo - first);
    const reid_box *boxes = crops[c].boxes + (lo - start);
#if HAVE_CUDA
    if (cuda) {
      REID_TRY(reid_preprocess_cuda(e->be, crops[c].frame, REID_MEMORY_HOST, boxes, hi - lo, &m->pp,
                                    fmt, dst));
      continue;
    }
#endif
    (void)e, (void)cuda;
    REID_TRY(reid_preprocess_cpu_format(crops[c].frame, boxes, hi - lo, &m->pp, fmt, dst));
  }
  return REID_OK;
}

reid_status reid_embedder_embed_crops(reid_embedder *e, const reid_embedder_crops *crops,
                                      int n_crops, float *out) {
  const role_model *m = &e->video;
  int n = 0;
  for (int c = 0; c < n_crops; c++) n += crops[c].n;
  const reid_tensor_format nchw = {REID_LAYOUT_NCHW, 3, REID_PRECISION_FP32};
  for (int done = 0; done < n;) {
    const int chunk = reid_embedder_next_chunk(n - done, e->batch);
    float *o = out + (size_t)m->dim * done;
    void *input;
    reid_tensor_format fmt;
#if HAVE_CUDA
    if (reid_engine_is_cuda(m->engine)) {
      REID_TRY(reid_cuda_engine_input(m->engine, &input, &fmt));
      REID_TRY(preprocess_rows(e, m, crops, n_crops, done, chunk, &fmt, input, 1));
      REID_TRY(reid_cuda_engine_run(m->engine, chunk, o));
      done += chunk;
      continue;
    }
#endif
    if (reid_engine_input(m->engine, chunk, &input, &fmt) == REID_OK) {
      REID_TRY(preprocess_rows(e, m, crops, n_crops, done, chunk, &fmt, input, 0));
      REID_TRY(reid_engine_run(m->engine, chunk, o));
    } else { /* an engine without an input layout of its own (int8 quantizes its input) */
      reid_clear_error();
      REID_TRY(preprocess_rows(e, m, crops, n_crops, done, chunk, &nchw, e->x, 0));
      REID_TRY(reid_engine_embed(m->engine, e->x, chunk, o));
    }
    done += chunk;
  }
  reid_l2_normalize_rows(out, n, m->dim);
  return REID_OK;
}

reid_status reid_embedder_embed_images(reid_embedder *e, const char *const *paths, int n,
                                       float *out) {
  const role_model *m = role_of(e, REID_ROLE_IMAGE);
  size_t image = (size_t)3 * m->pp.height * m->pp.width;
  for (int done = 0; done < n;) {
    int chunk = n - done < e->batch ? n - done : e->batch;
    for (int i = 0; i < chunk; i++) {
      reid_image img = {0};
      reid_status st = reid_image_load_rgb(paths[done + i], &img);
      if (st == REID_OK) st = reid_preprocess_image(&img, &m->pp, e->x + image * i);
      reid_image_free(&img);
      if (st != REID_OK) return st;
    }
    REID_TRY(reid_engine_embed(m->engine, e->x, chunk, out + (size_t)m->dim * done));
    done += chunk;
  }
  reid_l2_normalize_rows(out, n, m->dim);
  return REID_OK;
}
