/* Re-ID evaluation: features of a dataset's query and gallery samples,
 * cosine ranking and the devkit's CMC / mAP (metrics.h).
 *
 * A sample's feature is the mean, over its frames, of the network's
 * embedding of each frame (plus the embedding of the mirrored frame with
 * flip), L2-normalised; distances are 1 - cosine. Frames per protocol
 * (papers.md §1):
 *   v2v  query: T evenly spaced frames (video model)  gallery: the same
 *   i2v  query: the first frame (image model)         gallery: T evenly spaced (video model)
 *   i2i  query: the first frame (image model)         gallery: the first frame (image model)
 * Image datasets (Market, VeRi) have one frame per sample, so T is 1 there. */
#pragma once

#include "calibrate.h"
#include "dataset.h"
#include "engine.h"
#include "loader.h"
#include "metrics.h"
#include "resnet.h"

typedef enum reid_protocol {
  REID_PROTOCOL_I2V,
  REID_PROTOCOL_V2V,
  REID_PROTOCOL_I2I
} reid_protocol;

reid_status reid_protocol_parse(const char *name, reid_protocol *out); /* "i2v|v2v|i2i" */
const char *reid_protocol_name(reid_protocol p);

typedef struct reid_eval_config {
  reid_protocol protocol;
  int frames;   /* T for video samples (default 8) */
  int batch;    /* samples per batch (default 16) */
  int flip;     /* add the embedding of each mirrored frame */
  int workers;  /* decoding threads (default 2) */
  int max_rank; /* CMC length (default 50) */
  reid_precision precision;
  int bicubic; /* resize with bicubic (reid_loader_config.bicubic), as the model was trained */
} reid_eval_config;

void reid_eval_config_default(reid_eval_config *c);

/* Features of every sample of `split` ([split->count, D] host floats,
 * L2-normalised; free() them). sampling is REID_FRAMES_EVEN (T = frames) or
 * REID_FRAMES_FIRST (frames must be 1). */
reid_status reid_eval_features(reid_net *net, const reid_dataset *d, const reid_split *split,
                               reid_frame_sampling sampling, int frames, const reid_eval_config *c,
                               float **out);

/* Ranks L2-normalised query features q[nq, dim] against gallery g[ng, dim]
 * by 1 - cosine, with the splits' pids and cameras. */
reid_status reid_eval_rank(const float *q, const reid_split *query, const float *g,
                           const reid_split *gallery, int dim, int max_rank, reid_rank_result *out);

/* The protocol of c->protocol on d's query and gallery splits. image_net
 * embeds image queries (and the i2i gallery), video_net video samples; they
 * may be the same network. */
reid_status reid_evaluate(reid_net *image_net, reid_net *video_net, const reid_dataset *d,
                          const reid_eval_config *c, reid_rank_result *out);
/* reid_evaluate, and the match threshold at a false-match rate and at equal error on the
 * same query x gallery pairs (calibrate.h). */
reid_status reid_evaluate_calibrated(reid_net *image_net, reid_net *video_net,
                                     const reid_dataset *d, const reid_eval_config *c,
                                     reid_rank_result *out, double fmr_target,
                                     reid_threshold_result *threshold);
