/* ONNX models (.onnx) as networks, and networks as ONNX.
 *
 * Import maps an ONNX graph of the ops the network graph knows (net_graph.h)
 * onto a network description, with the weights from the graph's initializers
 * (float32, float16, bfloat16 or float64; inside the file). What it reads:
 *   Conv (groups, square kernels, equal strides and pads, no dilation), BatchNormalization
 *   (inference), InstanceNormalization (epsilon 1e-5), Relu, Clip(0, 6) (ReLU6), Sigmoid,
 *   Add, Mul (channel gates), Concat / Split / Slice of channels, MaxPool (ceil_mode too),
 *   AveragePool, GlobalAveragePool, ReduceMean over H and W, Flatten / Reshape / Squeeze /
 *   Unsqueeze of a [N, C, 1, 1] feature, Gemm / MatMul (+ Add of a bias) on it, Identity and
 *   Dropout (inference: nothing), and the shape arithmetic exporters emit around a dynamic
 *   batch (Shape, Gather, Unsqueeze, Concat, Constant, Cast). A BatchNormalization on the
 *   [N, D] output becomes the BNNeck (embed after BN); an L2 normalisation at the end
 *   (LpNormalization, or x / ReduceL2(x) as torch's F.normalize exports it) is dropped:
 *   reid L2-normalises every embedding itself (`--raw` writes the vector before it).
 * Opsets 11 to 21 of the default domain; one float input [N, 3, H, W] (N may be
 * symbolic: every batch size runs); one output [N, D] or [N, D, 1, 1].
 *
 * Input size and normalisation: the graph's input dims when they are fixed;
 * else the options; else metadata_props input_height / input_width; else
 * 256 x 128. mean / std: options, else metadata_props "mean" / "std" ("r,g,b"),
 * else ImageNet's. A metadata match_threshold (a cosine) is read as reidembed's
 * default threshold. reid-train export writes all of these keys.
 *
 * Every refusal names its cause: the file (unreadable, truncated or not an
 * ONNX model), the opset, an initializer (external data, wrong size, dtype),
 * or the node (its name, index and op type) and the attribute or input it
 * cannot map. */
#pragma once

#include "resnet.h"

typedef struct reid_onnx_options {
  int input_height, input_width; /* > 0: the size to run (must agree with a fixed input) */
  int has_mean, has_std;         /* 1: mean / std below replace the file's */
  float mean[3], std[3];
} reid_onnx_options;

typedef struct reid_onnx_info {
  double match_threshold; /* metadata match_threshold, NAN when absent */
  int opset;              /* the default domain's opset */
  int output_normalised;  /* the graph ended in an L2 normalisation (dropped) */
  char producer[64];      /* producer_name producer_version */
} reid_onnx_info;

/* Parses the overrides as users give them: size "HxW", mean and std "r,g,b"
 * (each NULL or "" for none). */
reid_status reid_onnx_options_parse(reid_onnx_options *o, const char *size, const char *mean,
                                    const char *std);
/* The same overrides on a checkpoint's configuration (input size, mean, std). */
void reid_onnx_options_apply(const reid_onnx_options *o, reid_model_config *cfg);

/* 1 when `path` names an ONNX file (ends in .onnx, any case). */
int reid_onnx_is_path(const char *path);

/* Reads an ONNX file into a new network on `be` (options may be NULL; info may be NULL). */
reid_status reid_onnx_load(const char *path, const reid_onnx_options *o, reid_backend *be,
                           reid_net **out, reid_onnx_info *info);
/* The same from bytes in memory; `name` is used in messages. */
reid_status reid_onnx_load_bytes(const unsigned char *bytes, size_t size, const char *name,
                                 const reid_onnx_options *o, reid_backend *be, reid_net **out,
                                 reid_onnx_info *info);

/* Writes `net` as ONNX (opset 13, IR 7, float32 weights, input "input" [batch, 3, H, W],
 * output "embedding" [batch, D] before L2 normalisation, dynamic batch), with
 * metadata_props arch, input_height, input_width, mean, std, embed_dim and, when
 * match_threshold is finite, match_threshold. Atomic (temporary file, then rename). An int8
 * model (cfg.int8, reid-train quantize) is refused: its ONNX form would be a float graph. */
reid_status reid_onnx_save(reid_net *net, const char *path, double match_threshold);
