/* Inference engines: checkpoint weights in, embeddings out, as fast as the
 * device allows. The CPU engine (oneDNN) folds batch norm into the
 * convolutions, fuses ReLU and the residual add, and keeps activations in the
 * blocked layout end to end; without oneDNN (or on another backend) the
 * engine runs the training graph in eval mode.
 *
 *   input  x [n, 3, H, W] float32, normalised, host memory
 *   output e [n, D] float32 host memory: the network's embedding, not normalised */
#pragma once

#include "resnet.h"

typedef enum reid_precision {
  REID_PRECISION_FP32,
  REID_PRECISION_TF32,
  REID_PRECISION_FP16,
  REID_PRECISION_BF16,
  REID_PRECISION_INT8, /* models written by reid-train quantize (checkpoint precision=int8) */
} reid_precision;

reid_status reid_precision_parse(const char *name, reid_precision *out);

/* The layout of an engine's input tensor (preprocessing can write it directly). */
typedef enum reid_tensor_layout {
  REID_LAYOUT_NCHW, /* [n, channels, h, w] */
  REID_LAYOUT_NHWC, /* [n, h, w, channels] */
} reid_tensor_layout;

typedef struct reid_tensor_format {
  reid_tensor_layout layout;
  int channels;         /* 3 for NCHW; >= 3 for NHWC, channels 3.. are written as 0 */
  reid_precision dtype; /* FP32 (TF32 means FP32 storage), FP16 or BF16 */
} reid_tensor_format;

size_t reid_tensor_format_element_size(const reid_tensor_format *f);

const char *reid_precision_name(reid_precision p);

typedef struct reid_engine reid_engine;

/* Reads the weights of `net` (which must outlive the engine) and prepares to
 * run batches of up to max_batch images of the net's input size. */
reid_status reid_engine_create(reid_net *net, reid_precision precision, int max_batch,
                               reid_engine **out);
reid_status reid_engine_embed(reid_engine *e, const float *x, int n, float *embedding);
int reid_engine_dim(const reid_engine *e);
int reid_engine_max_batch(const reid_engine *e);
/* e.g. "cpu/onednn fp32 (fused)" */
const char *reid_engine_describe(const reid_engine *e);
void reid_engine_destroy(reid_engine *e);

/* Zero-copy input (the CPU analogue of reid_cuda_engine_input): the engine's
 * own input buffer for a batch of n (1 <= n <= max batch) and its format;
 * crops written there (reid_preprocess_cpu_format) and run with
 * reid_engine_run skip the engine's input reorder. REID_EUNSUPPORTED when the
 * engine has no such buffer (then use reid_engine_embed). The buffer is valid
 * until the next call on the engine. */
reid_status reid_engine_input(reid_engine *e, int n, void **input, reid_tensor_format *fmt);
reid_status reid_engine_run(reid_engine *e, int n, float *embedding);

/* L2-normalises rows in place: x[i] /= max(|x[i]|, 1e-12). */
void reid_l2_normalize_rows(float *x, int n, int d);
