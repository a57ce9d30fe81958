/* Internal: the oneDNN engine's fused operations and state, shared by
 * engine_dnnl.c (rewriting, plans, running) and engine_dnnl_int8.c (int8
 * data types and scales). */
#pragma once

#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>

#include "engine_impl.h"
#include "net_graph.h"

#define MAX_PLANS 8

typedef enum fop_kind {
  FOP_CONV,
  FOP_MAXPOOL,
  FOP_AVGPOOL,
  FOP_GAP,
  FOP_ADD,
  FOP_MUL,
  FOP_NORM,    /* instance norm or a standalone batch norm (engine_dnnl_norm.c) */
  FOP_CONCAT,  /* oneDNN concat over channels */
  FOP_SLICE,   /* channels [c0, c0 + c): a reorder from a sub-memory */
  FOP_ELTWISE, /* a standalone activation */
} fop_kind;

typedef struct fop {
  fop_kind kind;
  int src, src1, dst;    /* tensor ids (graph activation indices after aliasing); src1: ADD/MUL */
  int sum;               /* conv: dst += result (in place over the shortcut) */
  net_node_kind act;     /* conv: NODE_RELU, NODE_RELU6 or NODE_SIGMOID post-op; NODE_CONV: none */
  reid_conv2d_desc conv; /* per sample */
  reid_pool2d_desc pool; /* per sample */
  float *w, *b;          /* folded weights [c_out, c_in, k, k], bias [c_out]; NORM: scale, shift */
  int instance;          /* NORM: instance statistics (else w, b are a folded batch norm) */
  int c0, c;             /* SLICE: channels */
  /* int8 (engine_dnnl_int8.c) */
  int a_src, a_dst, a_old;     /* graph activations read, written, and summed over (-1: none) */
  int8_t *wq;                  /* weights rounded per output channel: w = wq * w_scale[o] */
  float *oscale;               /* per output channel: output scales of the convolution */
  float sum_scale, post_scale; /* sum post-op scale; 1 / dst scale after the activation (0: none) */
} fop;

typedef struct dnnl_plan {
  int n;
  unsigned long last_used;
  dnnl_primitive_t *prims;
  dnnl_memory_t *weights, *bias;
  dnnl_memory_desc_t *md; /* per tensor */
  dnnl_memory_t *mem;     /* per tensor */
  void **buffers;
  int n_buffers;
  dnnl_memory_t in_user, out_user;
  dnnl_primitive_t in_reorder, out_reorder;
  int feature_dense; /* the feature tensor is [n, C] dense (h = w = 1): copied, not reordered */
  /* int8: the global average pooling reads an f32 copy of its u8/s8 input (oneDNN 2.x pools
     int8 only into int8) */
  int gap_op;
  dnnl_primitive_t gap_reorder;
  dnnl_memory_t gap_mem;
  void *gap_buf;
} dnnl_plan;

typedef struct dnnl_state {
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  dnnl_data_type_t dt;
  dnnl_data_type_t *tdt; /* per tensor: its data type (dt, or u8/s8/f32 in int8) */
  int int8;
  float input_scale;   /* int8: the input's quantization step (x = q * input_scale) */
  float feature_scale; /* int8: the feature's step (1 otherwise) */
  fop *ops;
  int n_ops;
  int n_tensors, input, feature, feature_c;
  int *last_use; /* per tensor: index of the last fop reading it */
  float *neck_scale, *neck_shift;
  dnnl_plan *plans[MAX_PLANS];
  unsigned long tick;
  float *out_tmp;
} dnnl_state;

/* int8: checks that every op has an int8 form, chooses u8/s8 per tensor from
 * the signs its writers can produce, and turns the folded f32 weights and bias
 * of each convolution into per-channel int8 weights, output scales and a bias
 * in accumulator units, from the model's calibrated activation ranges. */
reid_status engine_dnnl_int8_prepare(dnnl_state *s, const reid_net *net);
