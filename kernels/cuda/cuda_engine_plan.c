/* Plans of the CUDA inference engine: one per batch-size bucket.
 *
 * A plan holds the NHWC tensor descriptors of every convolution at its batch
 * size, the algorithm cudnnFindConvolutionForwardAlgorithmEx timed fastest
 * within the engine's one workspace, and how the epilogue runs. Creating it
 * runs the network once eagerly ("trial"): a fused call cuDNN refuses falls
 * back to a float bias, then to cudnnConvolutionForward + engine_epilogue.
 * The same op sequence is then captured into a CUDA graph, so a later batch
 * is one cudaGraphLaunch; if capture fails the plan runs eagerly. int8:
 * INT8 x and w, INT32 compute, FLOAT y (cuDNN's INT8_EXT_CONFIG, always
 * IMPLICIT_PRECOMP_GEMM) into the engine's acc buffer, then engine_i8_epilogue. */
#include <stdlib.h>
#include <string.h>

#include "cuda_engine.h"

static const float ONE = 1.0f, ZERO = 0.0f;

void engine_plan_destroy(cuda_engine *g, eplan *p) {
  if (!p) return;
  for (int i = 0; i < g->n_ops; i++) {
    if (p->x && p->x[i]) cudnnDestroyTensorDescriptor(p->x[i]);
    if (p->y && p->y[i]) cudnnDestroyTensorDescriptor(p->y[i]);
    if (p->conv && p->conv[i]) cudnnDestroyConvolutionDescriptor(p->conv[i]);
  }
  if (p->graph) cudaGraphExecDestroy(p->graph);
  free(p->x);
  free(p->y);
  free(p->conv);
  free(p->algo);
  free(p->ws);
  free(p->mode);
  free(p);
}

static reid_status conv_descriptors(cuda_engine *g, eplan *p, int i) {
  const reid_conv2d_desc *d = &g->ops[i].conv;
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x[i]));
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y[i]));
  CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv[i]));
  const int i8 = g->dtype == ENGINE_INT8;
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x[i], CUDNN_TENSOR_NHWC, g->dt, p->n, d->c_in, d->h_in,
                                         d->w_in));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y[i], CUDNN_TENSOR_NHWC, i8 ? CUDNN_DATA_FLOAT : g->dt,
                                         p->n, d->c_out, d->h_out, d->w_out));
  CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv[i], d->pad, d->pad, d->stride, d->stride, 1,
                                              1, CUDNN_CROSS_CORRELATION,
                                              i8 ? CUDNN_DATA_INT32 : CUDNN_DATA_FLOAT));
  CUDNN_CHECK(cudnnSetConvolutionGroupCount(p->conv[i], d->groups > 1 ? d->groups : 1));
  CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv[i], g->math));
  int n, c, h, w;
  CUDNN_CHECK(
      cudnnGetConvolution2dForwardOutputDim(p->conv[i], p->x[i], g->ops[i].w_desc, &n, &c, &h, &w));
  if (n != p->n || c != d->c_out || h != d->h_out || w != d->w_out)
    return reid_fail(REID_EINVAL, "engine: cuDNN output shape %dx%dx%dx%d, expected %dx%dx%dx%d", n,
                     c, h, w, p->n, d->c_out, d->h_out, d->w_out);
  return REID_OK;
}

/* The fastest algorithm that fits the workspace. cuDNN fuses ReLU and
 * identity epilogues; an identity one only with IMPLICIT_PRECOMP_GEMM. Other
 * activations (ReLU6, sigmoid), and identity without that algorithm, run
 * unfused (engine_epilogue after the convolution). */
static reid_status conv_algorithm(cuda_engine *g, eplan *p, int i) {
  const eop *op = &g->ops[i];
  if (g->dtype == ENGINE_INT8) { /* the one algorithm cuDNN runs int8 with */
    p->algo[i] = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
    p->mode[i] = MODE_UNFUSED;
    CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(
        g->s->cudnn, p->x[i], op->w_desc, p->conv[i], p->y[i],
        CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, &p->ws[i]));
    if (p->ws[i] > g->workspace_bytes)
      return reid_fail(REID_EDEVICE,
                       "engine: int8 conv %d needs %zu B of cuDNN workspace, the engine has %zu", i,
                       p->ws[i], g->workspace_bytes);
    return REID_OK;
  }
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int found = 0;
  CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(
      g->s->cudnn, p->x[i], engine_act_ptr(g, op->src), op->w_desc, op->w, p->conv[i], p->y[i],
      engine_act_ptr(g, op->dst), CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found, perf, g->workspace,
      g->workspace_bytes));
  const int fusable = op->act == ENGINE_ACT_NONE || op->act == ENGINE_ACT_RELU;
  const int need_precomp = op->act == ENGINE_ACT_NONE;
  int best = -1, any = -1;
  for (int k = 0; k < found; k++) {
    if (perf[k].status != CUDNN_STATUS_SUCCESS || perf[k].memory > g->workspace_bytes) continue;
    if (g->math == CUDNN_FMA_MATH && (perf[k].mathType == CUDNN_TENSOR_OP_MATH ||
                                      perf[k].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
      continue; /* fp32: no tensor cores */
    if (any < 0) any = k;
    if (fusable &&
        (!need_precomp || perf[k].algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)) {
      best = k;
      break;
    }
  }
  if (any < 0 && g->math == CUDNN_FMA_MATH) { /* nothing timed as FMA-only: the plain GEMM */
    p->algo[i] = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
    p->mode[i] = fusable ? MODE_FUSED : MODE_UNFUSED;
    CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv[i], CUDNN_FMA_MATH));
    CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(
        g->s->cudnn, p->x[i], op->w_desc, p->conv[i], p->y[i],
        CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, &p->ws[i]));
    if (p->ws[i] > g->workspace_bytes)
      return reid_fail(REID_EDEVICE,
                       "engine: conv %d needs %zu B of cuDNN workspace, the engine has %zu", i,
                       p->ws[i], g->workspace_bytes);
    return REID_OK;
  }
  if (any < 0)
    return reid_fail(REID_EDEVICE,
                     "engine: cuDNN has no forward algorithm for conv %d (n=%d c_in=%d %dx%d -> "
                     "c_out=%d k=%d stride=%d)",
                     i, p->n, op->conv.c_in, op->conv.h_in, op->conv.w_in, op->conv.c_out,
                     op->conv.k, op->conv.stride);
  const int k = best >= 0 ? best : any;
  p->algo[i] = perf[k].algo;
  p->ws[i] = perf[k].memory;
  p->mode[i] = best >= 0 ? MODE_FUSED : MODE_UNFUSED;
  /* fp32 runs FMA-only kernels whatever math type the search reported */
  CUDNN_CHECK(cudnnSetConvolutionMathType(
      p->conv[i], g->math == CUDNN_FMA_MATH ? CUDNN_FMA_MATH : perf[k].mathType));
  return REID_OK;
}

/* One convolution with its epilogue. probe = 1 (trial run): a refused fused
 * call moves the op to the next mode and tries again. */
/* int8: cuDNN's int32 sums into acc, then scales, bias, shortcut, ReLU and the output codes */
static reid_status run_conv_i8(cuda_engine *g, eplan *p, int i) {
  const eop *op = &g->ops[i];
  const eact *in = &g->acts[op->src], *out = &g->acts[op->dst];
  const eact *res = op->res >= 0 ? &g->acts[op->res] : NULL;
  CUDNN_CHECK(cudnnConvolutionForward(g->s->cudnn, &ONE, p->x[i], engine_act_ptr(g, op->src),
                                      op->w_desc, op->w, p->conv[i],
                                      (cudnnConvolutionFwdAlgo_t)p->algo[i], g->workspace,
                                      g->workspace_bytes, &ZERO, p->y[i], g->acc));
  const engine_i8_conv a = {.n = p->n,
                            .c = op->conv.c_out,
                            .ho = op->conv.h_out,
                            .wo = op->conv.w_out,
                            .h_in = op->conv.h_in,
                            .w_in = op->conv.w_in,
                            .k = op->conv.k,
                            .stride = op->conv.stride,
                            .pad = op->conv.pad,
                            .acc = g->acc,
                            .scale = op->q_scale,
                            .bias = op->bias_f32,
                            .wsum = in->zp ? op->q_wsum : NULL,
                            .in_zp = in->zp,
                            .res = res ? engine_act_ptr(g, op->res) : NULL,
                            .res_step = res ? res->step : 0.0f,
                            .res_zp = res ? res->zp : 0,
                            .relu = op->act == ENGINE_ACT_RELU,
                            .out_step = out->step,
                            .out_zp = out->zp,
                            .y = engine_act_ptr(g, op->dst)};
  return engine_i8_epilogue(g->s, &a);
}

static reid_status run_conv(cuda_engine *g, eplan *p, int i, int probe) {
  const eop *op = &g->ops[i];
  cuda_state *s = g->s;
  if (g->dtype == ENGINE_INT8) return run_conv_i8(g, p, i);
  const void *x = engine_act_ptr(g, op->src);
  void *y = engine_act_ptr(g, op->dst);
  const void *res = op->res >= 0 ? engine_act_ptr(g, op->res) : NULL;
  const float alpha2 = res ? 1.0f : 0.0f;
  const cudnnConvolutionFwdAlgo_t algo = (cudnnConvolutionFwdAlgo_t)p->algo[i];
  while (p->mode[i] != MODE_UNFUSED) {
    const int f32 = p->mode[i] == MODE_FUSED_F32_BIAS;
    cudnnStatus_t cs = cudnnConvolutionBiasActivationForward(
        s->cudnn, &ONE, p->x[i], x, op->w_desc, op->w, p->conv[i], algo, g->workspace,
        g->workspace_bytes, &alpha2, p->y[i], res ? res : y,
        f32 ? op->bias_desc_f32 : op->bias_desc, f32 ? (const void *)op->bias_f32 : op->bias,
        op->act == ENGINE_ACT_RELU ? g->relu : g->identity, p->y[i], y);
    if (cs == CUDNN_STATUS_SUCCESS) return REID_OK;
    if (!probe) return cudnn_error(cs, "cudnnConvolutionBiasActivationForward", __FILE__, __LINE__);
    p->mode[i] = (conv_mode)(p->mode[i] + 1);
  }
  CUDNN_CHECK(cudnnConvolutionForward(s->cudnn, &ONE, p->x[i], x, op->w_desc, op->w, p->conv[i],
                                      algo, g->workspace, g->workspace_bytes, &ZERO, p->y[i], y));
  const size_t pixels = (size_t)p->n * op->conv.h_out * op->conv.w_out;
  return engine_epilogue(s, y, op->bias_f32, res, pixels, op->conv.c_out, op->act, g->dtype);
}

/* The whole network on p->n images, then the embeddings to host_out. */
static reid_status enqueue(cuda_engine *g, eplan *p, int probe) {
  cuda_state *s = g->s;
  if (g->dtype == ENGINE_INT8) /* the float input to codes */
    REID_TRY(engine_i8_quantize(s, g->input_f, g->input,
                                (size_t)p->n * g->in_h * g->in_w * ENGINE_INPUT_CHANNELS,
                                g->acts[g->input_act].step));
  for (int i = 0; i < g->n_ops; i++) {
    const eop *op = &g->ops[i];
    const eact *in = &g->acts[op->src];
    const void *x = engine_act_ptr(g, op->src);
    void *y = op->kind == EOP_OUTPUT ? NULL : engine_act_ptr(g, op->dst);
    const void *b = op->res >= 0 ? engine_act_ptr(g, op->res) : NULL;
    const int hw = in->h * in->w;
    switch (op->kind) {
    case EOP_CONV: REID_TRY(run_conv(g, p, i, probe)); break;
    case EOP_MAXPOOL:
    case EOP_AVGPOOL:
      REID_TRY(engine_pool(s, x, y, p->n, in->c, &op->pool, op->kind == EOP_AVGPOOL, g->dtype));
      break;
    case EOP_GAP: REID_TRY(engine_gap_store(s, x, y, p->n, hw, in->c, g->dtype)); break;
    case EOP_ADD:
      REID_TRY(engine_eltwise(s, ENGINE_ELT_ADD, x, b, y, p->n, hw, in->c, op->act, g->dtype));
      break;
    case EOP_MUL:
      REID_TRY(engine_eltwise(s, ENGINE_ELT_MUL, x, b, y, p->n, hw, in->c, op->act, g->dtype));
      break;
    case EOP_ACT:
      REID_TRY(engine_eltwise(s, ENGINE_ELT_NONE, x, NULL, y, p->n, hw, in->c, op->act, g->dtype));
      break;
    case EOP_NORM:
    case EOP_COPY: {
      engine_channel_map m = {.n = p->n,
                              .hw = hw,
                              .nc = op->nc,
                              .x = x,
                              .x_c = in->c,
                              .x_c0 = op->src_c0,
                              .y = y,
                              .y_c = g->acts[op->dst].c,
                              .y_c0 = op->dst_c0,
                              .res = b,
                              .coef = op->norm,
                              .act = op->act};
      if (op->instance) { /* this batch's statistics first */
        REID_TRY(engine_instance_coef(s, x, p->n, hw, in->c, op->src_c0, op->nc, op->norm,
                                      ENGINE_NORM_EPS, g->norm_coef, g->dtype));
        m.coef = g->norm_coef, m.per_sample = 1;
      }
      REID_TRY(engine_channels(s, &m, g->dtype));
      break;
    }
    case EOP_OUTPUT:
      if (g->dtype == ENGINE_INT8)
        REID_TRY(engine_i8_gap(s, x, p->n, hw, in->c, in->step, in->zp, g->neck_scale,
                               g->neck_shift, g->out_dev));
      else
        REID_TRY(
            engine_gap(s, x, p->n, hw, in->c, g->neck_scale, g->neck_shift, g->out_dev, g->dtype));
      break;
    }
  }
  CUDA_CHECK(cudaMemcpyAsync(g->host_out, g->out_dev, sizeof(float) * (size_t)p->n * g->dim,
                             cudaMemcpyDeviceToHost, s->stream));
  return REID_OK;
}

/* Captures the op sequence into a CUDA graph; on any failure the plan stays
 * eager (graph_state -1) and the stream leaves capture mode. */
static void capture(cuda_engine *g, eplan *p) {
  cudaStream_t stream = g->s->stream;
  cudaGraph_t graph = NULL;
  int ok = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess;
  if (ok) ok = enqueue(g, p, 0) == REID_OK;
  enum cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &cs) == cudaSuccess && cs != cudaStreamCaptureStatusNone) {
    if (cudaStreamEndCapture(stream, &graph) != cudaSuccess) ok = 0;
  } else {
    ok = 0;
  }
  if (ok && graph) ok = cudaGraphInstantiate(&p->graph, graph, 0) == cudaSuccess;
  if (graph) cudaGraphDestroy(graph);
  if (!ok && p->graph) {
    cudaGraphExecDestroy(p->graph);
    p->graph = NULL;
  }
  p->graph_state = ok ? 1 : -1;
  cudaGetLastError(); /* a failed capture is not an error of the engine */
}

reid_status engine_plan_create(cuda_engine *g, int n, eplan **out) {
  *out = NULL;
  eplan *p = calloc(1, sizeof *p);
  if (!p) return reid_fail(REID_ENOMEM, "engine: out of memory");
  p->n = n;
  const size_t k = (size_t)g->n_ops;
  p->x = calloc(k, sizeof *p->x);
  p->y = calloc(k, sizeof *p->y);
  p->conv = calloc(k, sizeof *p->conv);
  p->algo = calloc(k, sizeof *p->algo);
  p->ws = calloc(k, sizeof *p->ws);
  p->mode = calloc(k, sizeof *p->mode);
  reid_status st = p->x && p->y && p->conv && p->algo && p->ws && p->mode
                       ? REID_OK
                       : reid_fail(REID_ENOMEM, "engine: out of memory");
  for (int i = 0; i < g->n_ops && st == REID_OK; i++) {
    if (g->ops[i].kind != EOP_CONV) continue;
    st = conv_descriptors(g, p, i);
    if (st == REID_OK) st = conv_algorithm(g, p, i);
  }
  if (st == REID_OK) st = enqueue(g, p, 1);
  if (st == REID_OK) st = CUDA_ST(cudaStreamSynchronize(g->s->stream));
  if (st != REID_OK) {
    engine_plan_destroy(g, p);
    return st;
  }
  capture(g, p);
  *out = p;
  return REID_OK;
}

reid_status engine_plan_run(cuda_engine *g, eplan *p) {
  if (p->graph_state == 1) {
    CUDA_CHECK(cudaGraphLaunch(p->graph, g->s->stream));
    return REID_OK;
  }
  return enqueue(g, p, 0);
}
