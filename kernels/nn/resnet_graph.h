/* Internal: the backbone as a flat list of nodes over activation buffers.
 * Shared by resnet.c (build, forward, backward) and the inference engines. */
#pragma once

#include "resnet.h"

typedef enum net_node_kind {
  NODE_CONV,    /* out = conv(in, weight) (no bias) */
  NODE_BN,      /* out = batchnorm(in; weight, bias, mean, var) */
  NODE_RELU,    /* out = max(in, 0) */
  NODE_ADD,     /* out = in + in2 */
  NODE_MAXPOOL, /* out = maxpool3x3/2 pad 1 (in) */
  NODE_GAP,     /* out[n, c] = mean over h, w of in */
} net_node_kind;

typedef struct net_node {
  net_node_kind kind;
  int in, in2, out;      /* activation indices */
  int weight, bias;      /* tensor indices (conv weight; BN gamma, beta), -1 if none */
  int mean, var;         /* BN running statistics (tensor indices) */
  reid_conv2d_desc conv; /* per-sample (n = 1); n is set per call */
  reid_pool2d_desc pool;
  float *save_mean, *save_invstd; /* BN, training */
  int32_t *argmax;                /* max pool, training */
} net_node;

typedef struct net_act {
  int c, h, w; /* per sample */
  float *data, *grad;
} net_act;

struct reid_net {
  reid_model_config cfg;
  reid_backend *be;
  reid_tensor_view *tensors;
  int n_tensors, cap_tensors;
  size_t n_params, n_buffers;
  float *params, *grads, *buffers;

  net_node *nodes;
  int n_nodes, cap_nodes;
  net_act *acts;
  int n_acts, cap_acts;
  int feature_act; /* the GAP output [N, D] */

  /* head tensors (indices, -1 if absent) */
  int neck_weight, neck_bias, neck_mean, neck_var, cls_weight, cls_bias;

  /* per-call state */
  int capacity;      /* frames the activation buffers hold */
  int grad_capacity; /* frames the gradient buffers hold */
  int batch, frames, trained_forward;
  float *scratch; /* largest activation, for gradient accumulation */
  float *pooled, *bnfeat, *embedding, *logits_frame, *logits;
  float *neck_save_mean, *neck_save_invstd;
  float *d_bnfeat, *d_logits_frame, *d_head_tmp;
};

static inline size_t net_act_size(const net_act *a) {
  return (size_t)a->c * a->h * a->w;
}
