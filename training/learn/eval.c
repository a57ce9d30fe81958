/* Evaluation (see eval.h): the loader decodes a split's frames in order, the
 * inference engine embeds them (fused oneDNN on the CPU), frames are averaged
 * per sample and normalised, and the query x gallery cosine distances go to
 * the devkit metrics. */
#include "eval.h"

#include <stdlib.h>
#include <string.h>

static const char *const protocol_names[] = {"i2v", "v2v", "i2i"};

reid_status reid_protocol_parse(const char *name, reid_protocol *out) {
  for (int i = 0; i < 3; i++)
    if (name && !strcmp(name, protocol_names[i])) {
      *out = (reid_protocol)i;
      return REID_OK;
    }
  return reid_fail(REID_EINVAL, "unknown protocol '%s' (expected i2v, v2v or i2i)",
                   name ? name : "(null)");
}

const char *reid_protocol_name(reid_protocol p) {
  return p >= REID_PROTOCOL_I2V && p <= REID_PROTOCOL_I2I ? protocol_names[p] : "unknown";
}

void reid_eval_config_default(reid_eval_config *c) {
  memset(c, 0, sizeof *c);
  c->protocol = REID_PROTOCOL_I2V;
  c->frames = 8;
  c->batch = 16;
  c->workers = 2;
  c->max_rank = 50;
  c->precision = REID_PRECISION_FP32;
}

/* Mirrors every row of x[n, 3, h, w] into y (left-right). */
static void mirror_images(const float *x, int n, int h, int w, float *y) {
  for (size_t row = 0; row < (size_t)n * 3 * h; row++) {
    const float *src = x + row * w;
    float *dst = y + row * w;
    for (int c = 0; c < w; c++) dst[c] = src[w - 1 - c];
  }
}

reid_status reid_eval_features(reid_net *net, const reid_dataset *d, const reid_split *split,
                               reid_frame_sampling sampling, int frames, const reid_eval_config *c,
                               float **out) {
  *out = NULL;
  if (split->count < 1) return reid_fail(REID_EINVAL, "evaluation: the split has no samples");
  if (frames < 1 || c->batch < 1)
    return reid_fail(REID_EINVAL, "evaluation: invalid frames %d or batch %d", frames, c->batch);
  const reid_model_config *m = reid_net_config(net);
  reid_loader_config lc = {.batch = c->batch,
                           .frames = frames,
                           .sampling = sampling,
                           .height = m->input_height,
                           .width = m->input_width,
                           .bicubic = c->bicubic,
                           .threads = c->workers > 0 ? c->workers : 1,
                           .prefetch = 2};
  memcpy(lc.mean, m->mean, sizeof lc.mean);
  memcpy(lc.std, m->std, sizeof lc.std);
  const int dim = reid_net_feature_dim(net), max_images = c->batch * frames;
  const size_t image = (size_t)3 * m->input_height * m->input_width;
  reid_loader *loader = NULL;
  reid_engine *engine = NULL;
  float *features = calloc((size_t)split->count * dim, sizeof(float));
  float *emb = malloc(sizeof(float) * (size_t)max_images * dim * (c->flip ? 2 : 1));
  float *mirrored = c->flip ? malloc(sizeof(float) * image * max_images) : NULL;
  reid_status st = REID_OK;
  if (!features || !emb || (c->flip && !mirrored))
    st = reid_fail(REID_ENOMEM, "evaluation: out of memory for %d features", split->count);
  if (st == REID_OK) st = reid_engine_create(net, c->precision, max_images, &engine);
  if (st == REID_OK) st = reid_loader_eval(d, split, &lc, &loader);
  int done = 0;
  while (st == REID_OK) {
    reid_batch b;
    st = reid_loader_next(loader, &b);
    if (st != REID_OK || b.batch == 0) break;
    int n = b.batch * b.frames;
    if (b.frames != frames || b.batch > c->batch || done + b.batch > split->count) {
      st = reid_fail(REID_EINVAL,
                     "evaluation: the loader returned %d x %d frames, expected <= %d x %d", b.batch,
                     b.frames, c->batch, frames);
      break;
    }
    st = reid_engine_embed(engine, b.images, n, emb);
    if (st == REID_OK && c->flip) {
      mirror_images(b.images, n, m->input_height, m->input_width, mirrored);
      st = reid_engine_embed(engine, mirrored, n, emb + (size_t)n * dim);
    }
    /* feature[i] = sum over the sample's frames (and mirrors) of the embedding; the mean's
     * 1/T does not survive normalisation */
    for (int i = 0; st == REID_OK && i < b.batch; i++) {
      if (b.sample_index[i] != done + i) {
        st = reid_fail(REID_EINVAL, "evaluation: the loader returned sample %d where %d was due",
                       b.sample_index[i], done + i);
        break;
      }
      float *f = features + (size_t)(done + i) * dim;
      for (int copy = 0; copy < (c->flip ? 2 : 1); copy++)
        for (int t = 0; t < b.frames; t++) {
          const float *e = emb + ((size_t)copy * n + (size_t)i * b.frames + t) * dim;
          for (int k = 0; k < dim; k++) f[k] += e[k];
        }
    }
    done += b.batch;
  }
  if (st == REID_OK && done != split->count)
    st = reid_fail(REID_EINVAL, "evaluation: the loader delivered %d of %d samples", done,
                   split->count);
  reid_loader_destroy(loader);
  reid_engine_destroy(engine);
  free(emb);
  free(mirrored);
  if (st != REID_OK) {
    free(features);
    return st;
  }
  reid_l2_normalize_rows(features, split->count, dim);
  *out = features;
  return REID_OK;
}

reid_status reid_eval_rank(const float *q, const reid_split *query, const float *g,
                           const reid_split *gallery, int dim, int max_rank,
                           reid_rank_result *out) {
  memset(out, 0, sizeof *out);
  const int nq = query->count, ng = gallery->count;
  if (nq < 1 || ng < 1)
    return reid_fail(REID_EINVAL, "evaluation: %d queries and %d gallery samples", nq, ng);
  reid_backend *cpu = NULL;
  float *dist = malloc(sizeof(float) * (size_t)nq * ng);
  int *ids = malloc(sizeof(int) * 2 * ((size_t)nq + ng));
  reid_status st = dist && ids ? REID_OK
                               : reid_fail(REID_ENOMEM,
                                           "evaluation: out of memory for %d x %d "
                                           "distances",
                                           nq, ng);
  /* cosine similarity q g^T through the CPU backend's blocked matmul, then 1 - s */
  if (st == REID_OK) st = reid_backend_create("cpu", 0, &cpu);
  if (st == REID_OK) st = cpu->ops->linear_forward(cpu, nq, dim, ng, q, g, NULL, dist);
  if (st == REID_OK) {
    for (size_t i = 0; i < (size_t)nq * ng; i++) dist[i] = 1.0f - dist[i];
    int *q_pid = ids, *q_cam = q_pid + nq, *g_pid = q_cam + nq, *g_cam = g_pid + ng;
    for (int i = 0; i < nq; i++)
      q_pid[i] = query->samples[i].pid, q_cam[i] = query->samples[i].camid;
    for (int j = 0; j < ng; j++)
      g_pid[j] = gallery->samples[j].pid, g_cam[j] = gallery->samples[j].camid;
    st = reid_rank_evaluate(dist, nq, ng, q_pid, q_cam, g_pid, g_cam, max_rank, out);
  }
  reid_backend_destroy(cpu);
  free(dist);
  free(ids);
  return st;
}

reid_status reid_evaluate(reid_net *image_net, reid_net *video_net, const reid_dataset *d,
                          const reid_eval_config *c, reid_rank_result *out) {
  return reid_evaluate_calibrated(image_net, video_net, d, c, out, 0, NULL);
}

reid_status reid_evaluate_calibrated(reid_net *image_net, reid_net *video_net,
                                     const reid_dataset *d, const reid_eval_config *c,
                                     reid_rank_result *out, double fmr_target,
                                     reid_threshold_result *threshold) {
  memset(out, 0, sizeof *out);
  if (reid_net_feature_dim(image_net) != reid_net_feature_dim(video_net))
    return reid_fail(REID_EINVAL,
                     "evaluation: the image model embeds in %d dimensions, the video "
                     "model in %d",
                     reid_net_feature_dim(image_net), reid_net_feature_dim(video_net));
  const int video_frames = d->video ? c->frames : 1;
  const reid_frame_sampling video_sampling = d->video ? REID_FRAMES_EVEN : REID_FRAMES_FIRST;
  reid_net *q_net = c->protocol == REID_PROTOCOL_V2V ? video_net : image_net;
  reid_net *g_net = c->protocol == REID_PROTOCOL_I2I ? image_net : video_net;
  int q_video = c->protocol == REID_PROTOCOL_V2V, g_video = c->protocol != REID_PROTOCOL_I2I;
  float *qf = NULL, *gf = NULL;
  reid_status st =
      reid_eval_features(q_net, d, &d->query, q_video ? video_sampling : REID_FRAMES_FIRST,
                         q_video ? video_frames : 1, c, &qf);
  if (st == REID_OK)
    st = reid_eval_features(g_net, d, &d->gallery, g_video ? video_sampling : REID_FRAMES_FIRST,
                            g_video ? video_frames : 1, c, &gf);
  if (st == REID_OK)
    st = reid_eval_rank(qf, &d->query, gf, &d->gallery, reid_net_feature_dim(q_net), c->max_rank,
                        out);
  if (st == REID_OK && threshold)
    st = reid_threshold_calibrate(qf, &d->query, gf, &d->gallery, reid_net_feature_dim(q_net),
                                  fmr_target, threshold);
  free(qf);
  free(gf);
  return st;
}
