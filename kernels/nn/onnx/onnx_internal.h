/* Internal to the ONNX importer: the values a graph's names stand for while
 * its nodes are mapped onto a network description (net_graph.h).
 *
 * A name is bound to one of:
 *   an activation  a network activation, seen by ONNX as [N, c, h, w] (rank 4) or,
 *                  when h = w = 1, [N, c] (rank 2); reshapes between the two are free
 *   a constant     an initializer or a Constant node's tensor; floats are decoded when a
 *                  tensor is filled, integers (shapes, axes) at once, where "the batch"
 *                  (the symbolic N) is the value ONNX_BATCH
 *   a norm         ReduceL2 of an activation over channels, and what an L2
 *                  normalisation does with it before dividing (Clip, Max, Add, Expand) */
#pragma once

#include <stdint.h>

#include "net_graph.h"
#include "onnx.pb-c.h"
#include "onnx_import.h"

#define ONNX_MAX_DIMS  8
#define ONNX_MAX_NODES 100000
#define ONNX_BATCH     INT64_MIN /* the symbolic batch in integer constants */

typedef enum onnx_value_kind { VAL_ACT, VAL_CONST, VAL_NORM } onnx_value_kind;

typedef struct onnx_value {
  const char *name; /* borrowed from the model */
  onnx_value_kind kind;
  int act;        /* VAL_ACT: activation index; VAL_NORM: the activation normalised */
  int rank;       /* VAL_ACT: 4 or 2 */
  int normalised; /* VAL_ACT: the result of an L2 normalisation of `act` */
  int neck;       /* VAL_ACT: the output batch norm (the BNNeck) applied to `act` */
  int pad;        /* VAL_ACT: zero padding of H and W still to apply (a Pad node), taken by
                     the Conv or AveragePool that reads it */
  int ndim;       /* VAL_CONST */
  int64_t dims[ONNX_MAX_DIMS];
  int64_t numel;
  int32_t dtype;                   /* ONNX TensorProto data type */
  const Onnx__TensorProto *tensor; /* float source */
  int64_t *ints;                   /* integer constants (owned), numel entries */
} onnx_value;

/* A network tensor to fill from a constant once the network is allocated. */
typedef enum onnx_fill_kind {
  FILL_COPY,      /* as stored */
  FILL_TRANSPOSE, /* a [rows, cols] matrix stored transposed ([cols, rows]) */
  FILL_VAR_EPS,   /* batch norm variance: + (eps - 1e-5) for the network's fixed epsilon */
} onnx_fill_kind;

typedef struct onnx_fill {
  int tensor, value;
  onnx_fill_kind kind;
  float scale; /* multiplies every element */
  float shift; /* FILL_VAR_EPS: added */
} onnx_fill;

typedef struct onnx_ctx {
  const char *path;
  const Onnx__ModelProto *model;
  const Onnx__GraphProto *graph;
  int opset;
  onnx_value *values;
  int n_values, cap_values;
  onnx_fill *fills;
  int n_fills, cap_fills;
  const char *output; /* the graph's output name */
  int neck[4];        /* values of the output BatchNormalization mapped to the BNNeck, or -1 */
  float neck_eps;
  int output_normalised;
  /* the node being mapped (messages) */
  int node_index;
  const Onnx__NodeProto *node;
} onnx_ctx;

/* ---- onnx_values.c ---- */
/* "node 'name' (#index, OpType): " + message; REID_EUNSUPPORTED or REID_EFORMAT */
reid_status onnx_node_fail(onnx_ctx *c, reid_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int onnx_find(const onnx_ctx *c, const char *name);
int onnx_bind(onnx_ctx *c, const char *name, onnx_value v); /* -1: out of memory */
reid_status onnx_bind_const(onnx_ctx *c, const char *name, const Onnx__TensorProto *t);
reid_status onnx_bind_ints(onnx_ctx *c, const char *name, int ndim, const int64_t *dims,
                           const int64_t *ints);
/* the value of node input i: -1 with an error when absent or unknown */
int onnx_input(onnx_ctx *c, int i, int optional);
/* input i as an activation (rank checked when rank != 0) */
reid_status onnx_input_act(onnx_ctx *c, int i, int rank, onnx_value *out);
/* input i as integer constants (all of them; the batch allowed when allow_batch) */
reid_status onnx_input_ints(onnx_ctx *c, int i, int allow_batch, const onnx_value **out);
/* input i as a float constant with `numel` elements (0: any) */
reid_status onnx_input_floats(onnx_ctx *c, int i, int64_t numel, const onnx_value **out);
/* a float constant's elements as float32 (dst holds v->numel) */
reid_status onnx_read_floats(const onnx_ctx *c, const onnx_value *v, float *dst);
/* the single scalar of a float constant */
reid_status onnx_scalar(const onnx_ctx *c, const onnx_value *v, float *out);
int onnx_add_fill(onnx_ctx *c, int tensor, int value, onnx_fill_kind kind, float scale,
                  float shift);

/* attributes */
const Onnx__AttributeProto *onnx_attr(const Onnx__NodeProto *n, const char *name);
int64_t onnx_attr_int(const Onnx__NodeProto *n, const char *name, int64_t dflt);
float onnx_attr_float(const Onnx__NodeProto *n, const char *name, float dflt);
/* a node whose attributes are not all in `known` (NULL-terminated) fails, naming it */
reid_status onnx_check_attrs(onnx_ctx *c, const char *const *known);

/* ---- onnx_shape.c: constants and shape arithmetic ---- */
/* 1 and *st set when op is one of them (handled or failed), 0 when it is not */
int onnx_map_shape_op(onnx_ctx *c, reid_net *net, reid_status *st);

/* ---- onnx_ops.c: the network ops ---- */
reid_status onnx_map_node(onnx_ctx *c, reid_net *net);
