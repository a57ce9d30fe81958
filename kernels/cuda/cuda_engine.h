/* Internal to the CUDA inference engine: the rewritten network (BN folded
 * into the convolutions, activations and the residual add fused into them), its
 * buffers, and the per-batch-size plans (cuDNN descriptors, algorithms, a
 * captured CUDA graph). cuda_engine.c builds the engine, cuda_engine_plan.c
 * the plans, engine_kernels.cu holds the kernels. */
#pragma once

#include "cuda_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* storage types of the engine (arithmetic is float everywhere but in int8's convolutions) */
enum { ENGINE_FP32 = 0, ENGINE_FP16 = 1, ENGINE_BF16 = 2, ENGINE_INT8 = 3 };

#define ENGINE_INPUT_CHANNELS 8 /* the 3 image channels padded for tensor cores */
#define ENGINE_MAX_BUCKETS    20
#define ENGINE_NORM_EPS       1e-5f /* instance norm (InstanceNorm2d's default) */

/* activations of the epilogues and elementwise kernels */
enum { ENGINE_ACT_NONE = 0, ENGINE_ACT_RELU, ENGINE_ACT_RELU6, ENGINE_ACT_SIGMOID };
/* elementwise ops (engine_eltwise) */
enum { ENGINE_ELT_NONE = 0, ENGINE_ELT_ADD, ENGINE_ELT_MUL };

typedef enum eop_kind {
  EOP_CONV,    /* dst = act(conv(src) + bias [+ res]) */
  EOP_MAXPOOL, /* dst = maxpool(src) */
  EOP_AVGPOOL, /* dst = avgpool(src), padding counted */
  EOP_GAP,     /* dst [n, 1, 1, c] = mean over h, w of src, in the storage type */
  EOP_ADD,     /* dst = act(src + res) */
  EOP_MUL,     /* dst = act(src * res[n, c]): a channel gate */
  EOP_ACT,     /* dst = act(src) */
  EOP_NORM,    /* dst[.., dst_c0 + c] = act(src[.., src_c0 + c] k + b [+ res]), c < nc: instance
                  norm (k, b from each plane's statistics) or a batch norm no convolution took */
  EOP_COPY,    /* dst[.., dst_c0 + c] = act(src[.., src_c0 + c]), c < nc: a channel slice or
                  one input of a concatenation */
  EOP_OUTPUT,  /* the embedding: mean over h, w of src (the feature), BNNeck map, float */
} eop_kind;

/* How a convolution's epilogue runs, decided by a trial run at plan creation:
 * fused by cuDNN with the bias in the storage type, fused with a float bias,
 * or cudnnConvolutionForward + engine_epilogue. */
typedef enum conv_mode { MODE_FUSED, MODE_FUSED_F32_BIAS, MODE_UNFUSED } conv_mode;

typedef struct eop {
  eop_kind kind;
  int src, dst, res;     /* activation ids; res: the residual added before the activation (conv),
                            the second operand (ADD, MUL), -1: none */
  int act;               /* ENGINE_ACT_* */
  reid_conv2d_desc conv; /* per sample; c_in padded for the stem */
  reid_pool2d_desc pool; /* per sample */
  void *w;         /* device: folded weights [c_out, k, k, c_in / groups] (KRSC), storage type */
  void *bias;      /* device: folded bias [c_out], storage type */
  float *bias_f32; /* device: the same in float */
  cudnnFilterDescriptor_t w_desc;
  cudnnTensorDescriptor_t bias_desc, bias_desc_f32;
  /* int8 (cuda_engine_int8.c): w holds int8 weights quantized per output channel; the
   * epilogue turns cuDNN's int32 sums (as float) into the output's int8 code:
   *   y = q_scale[o] (acc + in_zp wsum(o, pixel)) + bias_f32[o] + res_step (res + res_zp)
   * (wsum: the int8 weights of channel o summed over the taps inside the image) */
  float *w_step;  /* host [c_out]: the weights' per-channel steps, until the scales are set */
  float *q_scale; /* device [c_out]: s_in * s_w[o] */
  float *q_wsum;  /* device [c_out][k * k + 1] (the last: all taps), or NULL when in_zp = 0 */
  /* NORM, COPY: a channel range of src into a channel range of dst (slices are read and
   * concatenations written in place, see cuda_engine.c); res (NORM) is laid out as dst */
  int src_c0, dst_c0, nc;
  int instance; /* NORM: k, b from the statistics of each (image, channel) plane */
  float *norm;  /* NORM, device [nc][2]: {gamma, beta} (instance) or the folded batch norm's
                   {scale, shift} */
} eop;

typedef struct eact {
  int c, h, w; /* per sample; c padded for the input */
  int slot;    /* activation buffer, -1 for the input and the feature */
  /* int8: real value = step * (code + zp); zp = 128 for a non-negative tensor (a u8 code
   * q in 0..255 stored as q - 128), 0 for a signed one */
  float step;
  int zp;
} eact;

typedef struct eplan {
  int n;                          /* batch size of the bucket */
  cudnnTensorDescriptor_t *x, *y; /* per op; NULL for non-conv ops */
  cudnnConvolutionDescriptor_t *conv;
  int *algo;
  size_t *ws;
  conv_mode *mode;
  cudaGraphExec_t graph;
  int graph_state; /* 1: captured, -1: capture failed (run eagerly) */
} eplan;

typedef struct cuda_engine {
  reid_backend *be;
  cuda_state *s;
  int dtype, elem; /* ENGINE_*, bytes per element */
  cudnnDataType_t dt;
  cudnnMathType_t math; /* FMA for fp32, default (TF32) for tf32, tensor ops for 16-bit */
  int max_batch, dim;
  int in_c, in_h, in_w; /* image: 3 channels, NCHW float on the host */

  eop *ops;
  int n_ops;
  eact *acts;
  int n_acts, input_act, feature_act;

  void **slots; /* activation buffers, slot_bytes each */
  int n_slots;
  size_t slot_bytes;
  void *input;                    /* device [max_batch, H, W, 8], storage type */
  float *input_f32;               /* device [max_batch, 3, H, W] for the host path */
  float *host_in;                 /* pinned [max_batch, 3, H, W] */
  float *out_dev;                 /* device [max_batch, dim] */
  float *host_out;                /* pinned [max_batch, dim] */
  float *neck_scale, *neck_shift; /* device [dim] (embedding after the BNNeck), or NULL */
  void *workspace;                /* one cuDNN workspace for every convolution, fixed size */
  size_t workspace_bytes;
  cudnnActivationDescriptor_t relu, identity;
  float *norm_coef;   /* device [max_batch, max_instance_c][2]: an instance norm's k, b */
  int max_instance_c; /* the most channels an instance norm has */

  /* int8: the input arrives as float NHWC8 (input_f, what reid_cuda_engine_input hands
   * out) and is quantized into input; each convolution's int32 sums land in acc */
  float *input_f;
  float *acc;
  size_t acc_bytes;

  int n_buckets;
  int bucket_n[ENGINE_MAX_BUCKETS];
  eplan *plans[ENGINE_MAX_BUCKETS];
} cuda_engine;

static inline void *engine_act_ptr(const cuda_engine *g, int act) {
  return act == g->input_act ? g->input : g->slots[g->acts[act].slot];
}

/* plans (cuda_engine_plan.c) */
reid_status engine_plan_create(cuda_engine *g, int n, eplan **out);
void engine_plan_destroy(cuda_engine *g, eplan *p);
/* Runs the network on the first p->n images of the input buffer and copies
 * the embeddings to host_out (asynchronously, on the backend's stream). */
reid_status engine_plan_run(cuda_engine *g, eplan *p);

/* kernels (engine_kernels.cu) */
reid_status engine_convert_weights(cuda_state *s, const float *src, void *dst, size_t n, int dtype);
reid_status engine_input_from_nchw(cuda_state *s, const float *x, int n, int c, int h, int w,
                                   int cpad, void *dst, int dtype);
/* max (avg = 0) or average pooling (avg = 1, padding counted) on NHWC */
reid_status engine_pool(cuda_state *s, const void *x, void *y, int n, int c,
                        const reid_pool2d_desc *d, int avg, int dtype);
reid_status engine_gap(cuda_state *s, const void *x, int n, int hw, int c, const float *scale,
                       const float *shift, float *out, int dtype);
reid_status engine_epilogue(cuda_state *s, void *y, const float *bias, const void *res,
                            size_t pixels, int c, int act, int dtype);
/* y = act(a op b) over [n, hw, c] (b: [n, hw, c] for ADD, [n, c] for MUL, unused for NONE) */
reid_status engine_eltwise(cuda_state *s, int op, const void *a, const void *b, void *y, int n,
                           int hw, int c, int act, int dtype);
/* y [n, c] = mean over hw of x [n, hw, c], storage type */
reid_status engine_gap_store(cuda_state *s, const void *x, void *y, int n, int hw, int c,
                             int dtype);
/* Instance norm coefficients of channels x_c0 .. x_c0 + nc of x [n, hw, x_c]: per plane (i, ch)
 * mean m and biased variance v over hw (two passes, double sums, as the CPU engine), then
 *   coef[i, ch] = {k, b},  k = gamma[ch] / sqrt(v + eps),  b = beta[ch] - m k
 * (gamma_beta: device [nc][2]; coef: device [n, nc][2]). */
reid_status engine_instance_coef(cuda_state *s, const void *x, int n, int hw, int x_c, int x_c0,
                                 int nc, const float *gamma_beta, float eps, float *coef,
                                 int dtype);
/* y[i, p, y_c0 + ch] = act(x[i, p, x_c0 + ch] k + b [+ res[i, p, y_c0 + ch]]) for ch < nc, over
 * n images of hw pixels, x with x_c channels per pixel, y and res with y_c. {k, b}: coef[ch]
 * (a folded batch norm), coef[i, ch] (per_sample: instance norm) or {1, 0} (coef NULL: a copy,
 * for channel slices and concatenation). */
typedef struct engine_channel_map {
  int n, hw, nc;
  const void *x;
  int x_c, x_c0;
  void *y;
  int y_c, y_c0;
  const void *res; /* or NULL */
  const float *coef;
  int per_sample, act;
} engine_channel_map;
reid_status engine_channels(cuda_state *s, const engine_channel_map *m, int dtype);

/* int8 (engine_kernels.cu, cuda_engine_int8.c) */
struct reid_net;
typedef struct engine_i8_conv {
  int n, c, ho, wo;               /* output */
  int h_in, w_in, k, stride, pad; /* for the taps inside the image */
  const float *acc;               /* [n, ho, wo, c] int32 sums as float */
  const float *scale, *bias;      /* [c] */
  const float *wsum;              /* [c][k * k + 1] or NULL */
  int in_zp;
  const int8_t *res; /* or NULL */
  float res_step;
  int res_zp, relu;
  float out_step;
  int out_zp; /* 128: codes 0..255 stored minus 128; 0: codes -128..127 */
  int8_t *y;
} engine_i8_conv;
reid_status engine_i8_epilogue(cuda_state *s, const engine_i8_conv *a);
/* x float NHWC [n * pixels * c] -> round(x / step) saturated to -128..127 */
reid_status engine_i8_quantize(cuda_state *s, const float *x, int8_t *y, size_t count, float step);
/* out[i, ch] = step * (mean over hw of x[i, :, ch] + zp), then * scale + shift when given */
reid_status engine_i8_gap(cuda_state *s, const int8_t *x, int n, int hw, int c, float step, int zp,
                          const float *scale, const float *shift, float *out);
/* rewrites the folded float weights of op (uploaded by cuda_engine.c) as int8 and sets the
 * steps and codes of every activation (cuda_engine_int8.c) */
reid_status engine_int8_prepare(cuda_engine *g, const struct reid_net *net);

#ifdef __cplusplus
}
#endif
