/* Post-training int8 quantization (reid-train quantize).
 *
 * Weights: every convolution (and Linear) weight the network runs is
 * quantized per output channel, symmetric: s[o] = max_j |w[o, j]| / 127,
 * q = round(w / s) in [-127, 127]. Batch norm stays float; the engine folds it
 * into the weights, which scales each output channel and so keeps the grid.
 *
 * Activations: per graph activation (net_graph.h), a clipping range r with
 * |x| <= r, calibrated on crops: the `percentile` (e.g. 99.99) of |x| over
 * every element of every calibration crop, read from a 2048-bin histogram whose
 * range doubles (pairs of bins merged) whenever a larger value arrives. The
 * engine stores a non-negative activation as u8 with step r / 255 and a signed
 * one as s8 with step r / 127 (engine_dnnl_int8.c).
 *
 * File: the model's usual metadata plus precision=int8 and quantization=<the
 * method>; each quantized weight as an I8 tensor with `<name>_scale` F32
 * [c_out] beside it; `int8.activation_range` F32 [activations]. Loading
 * dequantizes the weights (w = q s), so the float graph runs the same model the
 * int8 engine does, up to activation rounding. */
#pragma once

#include "resnet.h"
#include "safetensors.h"

#define REID_INT8_RANGE_TENSOR "int8.activation_range"

typedef struct reid_calibrator reid_calibrator;

reid_status reid_calibrator_create(reid_net *net, reid_calibrator **out);
/* Runs the float network (eval mode) on n normalised crops x [n, 3, H, W] and
 * adds every activation's |x| to its histogram. */
reid_status reid_calibrator_add(reid_calibrator *c, const float *x, int n);
/* range [reid_net_activation_count(net)]: each activation's percentile of |x|. */
reid_status reid_calibrator_ranges(const reid_calibrator *c, double percentile, float *range);
void reid_calibrator_destroy(reid_calibrator *c);

int reid_net_activation_count(const reid_net *net);
/* 1 when tensor `index` is a convolution or Linear weight of the backbone (what quantize rounds) */
int reid_net_tensor_is_quantized(const reid_net *net, int index);

/* Rounds the quantized weights to their per-channel int8 grid in place,
 * attaches the ranges (copied) and marks the model int8. */
reid_status reid_net_quantize(reid_net *net, const float *range);
/* Attaches ranges (copied) read from a checkpoint; n must equal the activation count. */
reid_status reid_net_set_activation_ranges(reid_net *net, const float *range, int n);
const float *reid_net_activation_ranges(const reid_net *net); /* NULL for a float model */

/* w [c_out, per_out] -> q (round(w / step[o]), in [-127, 127]) and step[o] = max |w[o]| / 127
 * (1 for an all-zero channel). */
void reid_quantize_per_channel(const float *w, int c_out, size_t per_out, int8_t *q, float *step);

/* Writes an int8 model (reid_net_quantize'd) to `path` atomically; `method`
 * describes the calibration (metadata quantization=...). Metadata of `source`
 * (the float model's file, may be NULL) that the checkpoint writer does not
 * write itself, e.g. match_threshold, is copied. */
reid_status reid_checkpoint_save_int8(reid_net *net, const st_file *source, const char *path,
                                      const char *method);
