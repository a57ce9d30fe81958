/* The network: a backbone described as a graph of typed layers (net_graph.h)
 * with its upstream parameter names (torchvision's ResNet-18/34/50 and
 * MobileNetV2, torchreid's OSNet), plus the re-ID head: temporal average pooling over T frames,
 * optional BNNeck (BatchNorm1d with a frozen zero bias, then a bias-free linear classifier) or a
 * plain torchvision `fc` classifier.
 *
 * Shapes: input x [B*T, 3, H, W] (frames of a sample are consecutive);
 *   feature   f [B*T, D]  the backbone's output: global-average-pooled last stage
 *                         (ResNet 512 / 2048, MobileNetV2 1280), or OSNet's fc (512)
 *   pooled    p [B, D]    mean of f over T
 *   embedding e [B, D]    p, or the mean over T of BNNeck(f) (embed_after_bn)
 *   logits    z [B, K]    classifier of each frame, averaged over T
 *
 * All trainable parameters live in one buffer (params), their gradients in a
 * mirror (grads); running statistics and frozen tensors live in `buffers`.
 * Every tensor has a named view with its torchvision name. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

typedef enum reid_arch {
  REID_ARCH_RESNET18,
  REID_ARCH_RESNET34,
  REID_ARCH_RESNET50,
  REID_ARCH_MOBILENET_V2, /* torchvision mobilenet_v2 (width 1.0) */
  REID_ARCH_OSNET_X0_25,  /* torchreid osnet_x0_25 ... osnet_x1_0 */
  REID_ARCH_OSNET_X0_5,
  REID_ARCH_OSNET_X0_75,
  REID_ARCH_OSNET_X1_0,
  REID_ARCH_OSNET_IBN_X1_0,          /* torchreid osnet_ibn_x1_0: IN in conv1 and conv2's blocks */
  REID_ARCH_OSNET_AIN_X1_0,          /* torchreid osnet_ain_x1_0 (osnet_ain.py) */
  REID_ARCH_FASTREID_RESNET50,       /* fast-reid's ResNet-50 backbone (ceil-mode max pool) */
  REID_ARCH_FASTREID_RESNET50_IBN_A, /* the same with IBN-a in layer1..3 (bn1.IN / bn1.BN) */
  REID_ARCH_ONNX, /* a graph read from an ONNX file (onnx_import.h): not buildable by name */
  REID_ARCH_COUNT
} reid_arch;

typedef struct reid_model_config {
  reid_arch arch;
  int last_stride;    /* ResNet: 1 (re-ID convention) or 2 (torchvision); others: 2 */
  int input_height;   /* default 256 */
  int input_width;    /* default 128 */
  int bnneck;         /* 1: bottleneck.* BatchNorm1d + classifier.weight */
  int num_classes;    /* 0: no classifier */
  int embed_after_bn; /* embedding after the BNNeck BN instead of the pooled feature */
  float mean[3], std[3];
  int int8; /* quantized by reid-train quantize: int8 weights, activation ranges (quantize.h) */
  char task[64];
  char description[256];
} reid_model_config;

/* resnet50, last stride 1, 256x128, no head, ImageNet mean/std */
void reid_model_config_default(reid_model_config *cfg);
/* The upstream name ("resnet50", "mobilenet_v2", "osnet_x1_0", ...). */
const char *reid_arch_name(reid_arch arch);
reid_status reid_arch_parse(const char *name, reid_arch *arch);
/* "resnet18, resnet34, ..." (for messages) */
const char *reid_arch_list(void);
int reid_arch_feature_dim(reid_arch arch);
reid_status reid_model_config_validate(const reid_model_config *cfg);

typedef struct reid_tensor_view {
  char name[64];
  int ndim;
  int64_t shape[4];
  size_t numel;
  size_t offset; /* in floats, within params or buffers */
  int trainable; /* 1: params/grads, 0: buffers */
} reid_tensor_view;

typedef struct reid_net reid_net;

/* A network with torchvision's initialisation (seed 0). */
reid_status reid_net_create(const reid_model_config *cfg, reid_backend *be, reid_net **out);
/* The same with every tensor zero: for loaders, which overwrite all of them
 * (random initialisation is most of the time of loading a small model). */
reid_status reid_net_create_empty(const reid_model_config *cfg, reid_backend *be, reid_net **out);
void reid_net_destroy(reid_net *net);

const reid_model_config *reid_net_config(const reid_net *net);
reid_backend *reid_net_backend(const reid_net *net);
int reid_net_feature_dim(const reid_net *net);
int reid_net_tensor_count(const reid_net *net);
const reid_tensor_view *reid_net_tensor(const reid_net *net, int index);
const reid_tensor_view *reid_net_find(const reid_net *net, const char *name);
/* Backend pointers to a tensor's data and (trainable only, else NULL) gradient. */
float *reid_net_tensor_data(reid_net *net, const reid_tensor_view *t);
float *reid_net_tensor_grad(reid_net *net, const reid_tensor_view *t);
float *reid_net_params(reid_net *net, size_t *count);
float *reid_net_grads(reid_net *net, size_t *count);
float *reid_net_buffers(reid_net *net, size_t *count);

/* torchvision's initialisation: Kaiming-normal (fan_out, ReLU) convolutions,
 * BN weight 1 / bias 0, Linear U(+-1/sqrt(fan_in)), BNNeck classifier N(0, 0.001). */
reid_status reid_net_init_weights(reid_net *net, uint64_t seed);

/* Forward of `batch` samples of `frames` frames each. train = 1 uses batch
 * statistics (and updates the running ones) and keeps what backward needs. */
reid_status reid_net_forward(reid_net *net, const float *x, int batch, int frames, int train);
/* Outputs of the last forward (backend memory): [B, D] and [B, K] (NULL without classifier). */
const float *reid_net_embedding(const reid_net *net);
const float *reid_net_pooled(const reid_net *net);
const float *reid_net_logits(const reid_net *net);

/* Backward of the last training forward. d_embedding [B, D] and d_logits [B, K]
 * are dL/d(embedding) and dL/d(logits); either may be NULL. Writes net grads. */
reid_status reid_net_backward(reid_net *net, const float *d_embedding, const float *d_logits);
