/* Internal: a network as a flat list of typed nodes over activation buffers.
 *
 * An architecture (resnet.c, mobilenet_v2.c, osnet.c) is a function that
 * appends tensors (with their upstream state_dict names) and nodes through
 * the builder below; graph.c runs any such description forward and backward
 * on a backend (training), and the inference engines (engine_dnnl.c,
 * cuda_engine.c) rewrite the same node list into fused operations.
 *
 * Activations are per sample: act.c x act.h x act.w floats per frame, with
 * the batch as the outer dimension ([N, c, h, w]). Activation 0 is the input. */
#pragma once

#include "resnet.h"

typedef enum net_node_kind {
  NODE_CONV,    /* out = conv(in, weight, groups) + bias (bias optional); a Linear layer is a
                   1x1 conv on a 1x1 plane whose weight tensor is 2-D [out, in] */
  NODE_BN,      /* out = batchnorm(in; weight, bias, mean, var) */
  NODE_RELU,    /* out = max(in, 0) */
  NODE_RELU6,   /* out = min(max(in, 0), 6) */
  NODE_SIGMOID, /* out = 1 / (1 + exp(-in)) */
  NODE_ADD,     /* out = in + in2 */
  NODE_MUL,     /* channel gate: out[c, h, w] = in[c, h, w] * in2[c] (in2 is [c, 1, 1]) */
  NODE_MAXPOOL, /* out = maxpool k/stride/pad (in) */
  NODE_AVGPOOL, /* out = avgpool k/stride/pad (in), padding counted */
  NODE_GAP,     /* out[n, c] = mean over h, w of in */
  NODE_IN,      /* out = instance norm(in; weight, bias): InstanceNorm2d(affine=True) */
  NODE_CONCAT,  /* out = cat(in, in2) over channels */
  NODE_SLICE,   /* out = in[:, c0 : c0 + out.c] (channels) */
} net_node_kind;

/* "convolution", "instance norm", ... for error messages */
const char *net_node_kind_name(net_node_kind kind);

typedef struct net_node {
  net_node_kind kind;
  int in, in2, out;      /* activation indices */
  int weight, bias;      /* tensor indices (conv weight/bias; BN gamma, beta), -1 if none */
  int mean, var;         /* BN running statistics (tensor indices) */
  int c0;                /* slice: first channel */
  reid_conv2d_desc conv; /* per-sample (n = 1); n is set per call */
  reid_pool2d_desc pool;
  float *save_mean, *save_invstd; /* BN [c] (training); IN [N, c] (per call) */
  int32_t *argmax;                /* max pool, training */
} net_node;

typedef struct net_act {
  int c, h, w; /* per sample */
  float *data, *grad;
} net_act;

/* How reid_net_init_weights fills a tensor (the upstream defaults). */
typedef enum net_init {
  INIT_ZERO,
  INIT_ONE,
  INIT_KAIMING_OUT,  /* conv: N(0, sqrt(2 / (c_out k k))) (kaiming_normal_, fan_out, relu) */
  INIT_LINEAR,       /* nn.Linear default: U(+-1/sqrt(fan_in)) */
  INIT_NORMAL_0_001, /* N(0, 0.001): BNNeck classifier */
  INIT_NORMAL_0_01,  /* N(0, 0.01): torchreid / torchvision MobileNetV2 Linear */
} net_init;

struct reid_net {
  reid_model_config cfg;
  reid_backend *be;
  reid_tensor_view *tensors;
  net_init *tensor_init;
  int n_tensors, cap_tensors;
  size_t n_params, n_buffers;
  float *params, *grads, *buffers;

  net_node *nodes;
  int n_nodes, cap_nodes;
  net_act *acts;
  int n_acts, cap_acts;
  int feature_act; /* the backbone's output [N, D, 1, 1] that the head reads */
  int feature_dim;
  int build_failed;     /* a builder call ran out of memory or got a bad shape */
  size_t largest_param; /* floats: the scratch for a weight shared by several nodes */

  /* int8 models (cfg.int8): per activation, the calibrated clipping range |x| <= act_range[i]
     (n_acts entries, host memory; quantize.h) */
  float *act_range;

  /* head tensors (indices, -1 if absent) */
  int neck_weight, neck_bias, neck_mean, neck_var, cls_weight, cls_bias;

  /* per-call state */
  int capacity;      /* frames the activation buffers hold */
  int grad_capacity; /* frames the gradient buffers hold */
  int batch, frames, trained_forward;
  float *scratch;       /* largest activation, for gradient accumulation */
  float *param_scratch; /* largest parameter, for shared-weight gradient accumulation */
  float *pooled, *bnfeat, *embedding, *logits_frame, *logits;
  float *neck_save_mean, *neck_save_invstd;
  float *d_bnfeat, *d_logits_frame, *d_head_tmp;
};

static inline size_t net_act_size(const net_act *a) {
  return (size_t)a->c * a->h * a->w;
}

/* ---- the builder (graph_build.c) ----
 * Each call appends and returns the output activation index, or -1 once any
 * call has failed (net->build_failed is then set; later calls do nothing). */
int net_input(reid_net *net, int c, int h, int w);
int net_tensor(reid_net *net, const char *name, int ndim, const int64_t *shape, int trainable,
               net_init init);
/* conv `prefix`.weight [c_out, c_in / groups, k, k] (+ `prefix`.bias when bias) */
int net_conv(reid_net *net, const char *prefix, int in, int c_out, int k, int stride, int pad,
             int groups, int bias);
/* another node over the weights (and bias) of conv node `node` (shared weights) */
int net_conv_shared(reid_net *net, int node, int in);
/* BatchNorm over channels: `prefix`.weight/.bias/.running_mean/.running_var */
int net_bn(reid_net *net, const char *prefix, int in);
/* nn.Linear `prefix`.weight [out, in] (+ .bias) on a [c, 1, 1] activation */
int net_linear(reid_net *net, const char *prefix, int in, int out, int bias, net_init init);
int net_unary(reid_net *net, net_node_kind kind, int in);           /* RELU, RELU6, SIGMOID, GAP */
int net_binary(reid_net *net, net_node_kind kind, int in, int in2); /* ADD, MUL */
int net_pool(reid_net *net, net_node_kind kind, int in, int k, int stride, int pad);
/* max pooling in PyTorch's ceil mode (fast-reid's ResNet stem) */
int net_maxpool_ceil(reid_net *net, int in, int k, int stride, int pad);
/* InstanceNorm2d(affine=True): `prefix`.weight/.bias */
int net_instance_norm(reid_net *net, const char *prefix, int in);
int net_concat(reid_net *net, int a, int b);         /* channels of a, then of b */
int net_slice(reid_net *net, int in, int c0, int c); /* channels [c0, c0 + c) */
/* conv (no bias) + BN [+ activation kind, or -1 for none] */
int net_conv_bn(reid_net *net, const char *conv_name, const char *bn_name, int in, int c_out, int k,
                int stride, int pad, int groups, int act);
/* the head (BNNeck / classifier) over the feature activation; sets feature_act */
reid_status net_finish(reid_net *net, int feature);

/* A network whose description `build` appends (an importer: onnx/), with every
 * tensor zero; build may change net->cfg (the head) before it calls net_finish. */
typedef reid_status (*net_build_fn)(reid_net *net, void *ctx);
reid_status net_create_built(const reid_model_config *cfg, reid_backend *be, net_build_fn build,
                             void *ctx, reid_net **out);

/* Architectures: append the backbone and head for net->cfg (arch.c dispatches). */
reid_status reid_arch_build(reid_net *net);
reid_status resnet_build(reid_net *net);
reid_status mobilenet_v2_build(reid_net *net);
reid_status osnet_build(reid_net *net);
reid_status osnet_ain_build(reid_net *net);
