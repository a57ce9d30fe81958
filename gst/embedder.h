/* The element's model: a checkpoint turned into inference engines, and the
 * two ways it is used.
 *
 * A checkpoint holds one network or an MDKT pair (kernels/nn/checkpoint.h);
 * an ONNX file (kernels/nn/onnx/onnx_import.h) holds one network,
 * whose metadata names the network of each role:
 *   video role  embeds the objects of video frames (pooled into tracklets):
 *               the pair's video_model, or the single network;
 *   image role  embeds still query images (the watchlist): the pair's
 *               image_model, or the single network.
 * reid-train's pairs name the student for both roles (one network is built);
 * a file may name the teacher for tracklets and the student for queries (two
 * networks, two engines). Each network has its own input size and mean/std.
 *
 * Embeddings are L2-normalised rows of float32. Calls are not thread-safe:
 * one embedder per element, used from one thread at a time. */
#pragma once

#include "engine.h"
#include "preprocess.h"

typedef enum reid_embed_role { REID_ROLE_VIDEO = 0, REID_ROLE_IMAGE = 1 } reid_embed_role;

typedef struct reid_embedder_options {
  const char *model_path;
  const char *device; /* "auto", "cpu" or "cuda" */
  int gpu_id;
  int batch_size; /* >= 1: crops per network call */
  reid_precision precision;
  /* overrides of the model's input size ("HxW"), mean and std ("r,g,b"); NULL or "": the
   * model's (an ONNX file without them in metadata_props: 256x128, ImageNet's) */
  const char *input_size, *mean, *std;
} reid_embedder_options;

typedef struct reid_embedder reid_embedder;

/* Loads the checkpoint and builds one engine per distinct network. Errors
 * name the model file (a missing, corrupt or foreign checkpoint) or the
 * device (no CUDA). */
reid_status reid_embedder_open(const reid_embedder_options *o, reid_embedder **out);
void reid_embedder_close(reid_embedder *e);

int reid_embedder_dim(const reid_embedder *e, reid_embed_role role);
/* 2 when different networks serve the two roles, else 1. */
int reid_embedder_networks(const reid_embedder *e);
/* The input size of a role's network. */
void reid_embedder_input_size(const reid_embedder *e, reid_embed_role role, int *height,
                              int *width);
/* The model file's base name, e.g. "resnet50.safetensors". */
const char *reid_embedder_model_name(const reid_embedder *e);
/* e.g. "resnet18 64x32 on cpu/onednn fp32 (fused)" (video role; "; images: ..." when a
 * second network embeds the queries). */
const char *reid_embedder_describe(const reid_embedder *e);
/* The checkpoint's calibrated match threshold (metadata match_threshold, written by
 * `reid-train eval --calibrate`), or NAN when it has none. A value that is not a cosine in
 * [-1, 1] fails reid_embedder_open, naming the file. */
double reid_embedder_match_threshold(const reid_embedder *e);

/* Embeds n boxes of a frame with the video network: out [n, dim].
 * Boxes must already be clipped (reid_box_clip); n may be 0. Runs in chunks
 * of batch_size; a smaller remainder is split into powers of two so that the
 * engine keeps a handful of batch plans whatever the number of boxes. */
reid_status reid_embedder_embed_boxes(reid_embedder *e, const reid_frame *frame,
                                      const reid_box *boxes, int n, float *out);

/* Boxes of one frame, for batches gathered from several frames. */
typedef struct reid_embedder_crops {
  const reid_frame *frame;
  const reid_box *boxes; /* clipped */
  int n;
} reid_embedder_crops;

/* reid_embedder_embed_boxes over the crops of several frames as one sequence
 * (gst/shared_engine.c): out [sum of n, dim], L2-normalised, in chunks as
 * above; each chunk is preprocessed straight into the engine's input (on the
 * GPU for the CUDA engine), whichever frames its crops come from. */
reid_status reid_embedder_embed_crops(reid_embedder *e, const reid_embedder_crops *crops,
                                      int n_crops, float *out);
int reid_embedder_batch_size(const reid_embedder *e);

/* Decodes image files (FFmpeg) and embeds each whole image with the image
 * network: out [n, dim]. A file that cannot be decoded fails, naming it. */
reid_status reid_embedder_embed_images(reid_embedder *e, const char *const *paths, int n,
                                       float *out);

/* The next chunk for `left` remaining crops: batch when left >= batch, else
 * the largest power of two <= left. Exposed for tests. */
int reid_embedder_next_chunk(int left, int batch);
