/* The CPU inference engine on oneDNN.
 *
 * The network description (net_graph.h) is rewritten into fused operations
 * (see rewrite_graph): every convolution takes the batch norm after it folded
 * into its weights and bias and its activation (ReLU, ReLU6, sigmoid) as a
 * post-op; a residual add becomes a sum post-op of the branch's last
 * convolution, written in place over the shortcut; other adds and channel
 * gates are oneDNN binary ops; pooling is oneDNN pooling. Activations stay in
 * the layout the convolutions choose (nChw16c for fp32 on AVX-512) from the
 * input reorder to the feature. Buffers are reused as soon as a tensor is
 * dead. One plan (primitives + buffers) per batch size. */
#include "engine_impl.h"

#if HAVE_DNNL
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "dnnl_util.h"
#include "engine_dnnl_norm.h"
#include "half.h"
#include "net_graph.h"
#include "engine_dnnl.h"

/* ---- graph rewriting ---- */

static int is_activation(net_node_kind k) {
  return k == NODE_RELU || k == NODE_RELU6 || k == NODE_SIGMOID;
}

/* readers of activation `act` among nodes [from, n_nodes) */
static int count_readers_from(const reid_net *net, int from, int act) {
  int n = 0;
  for (int j = from; j < net->n_nodes; j++)
    n += (net->nodes[j].in == act) + (net->nodes[j].in2 == act);
  return n;
}

static int count_readers(const reid_net *net, int act) {
  return count_readers_from(net, 0, act);
}

/* conv (+ BN folded in): w' = w g / sqrt(v + eps), b' = (b - m) g / sqrt(v + eps) + beta */
static reid_status fold_conv_bn(fop *op, const reid_net *net, const net_node *conv,
                                const net_node *bn, const float *params, const float *buffers) {
  const reid_tensor_view *tw = &net->tensors[conv->weight];
  int co = conv->conv.c_out;
  size_t per_out = tw->numel / co;
  op->w = malloc(sizeof(float) * tw->numel);
  op->b = malloc(sizeof(float) * co);
  if (!op->w || !op->b) return reid_fail(REID_ENOMEM, "engine: out of memory");
  for (int o = 0; o < co; o++) {
    float bias = conv->bias >= 0 ? params[net->tensors[conv->bias].offset + o] : 0.0f;
    float s = 1.0f, shift = bias;
    if (bn) {
      float g = params[net->tensors[bn->weight].offset + o];
      float beta = params[net->tensors[bn->bias].offset + o];
      float m = buffers[net->tensors[bn->mean].offset + o];
      float v = buffers[net->tensors[bn->var].offset + o];
      s = g / sqrtf(v + 1e-5f);
      shift = (bias - m) * s + beta;
    }
    for (size_t j = 0; j < per_out; j++)
      op->w[o * per_out + j] = params[tw->offset + o * per_out + j] * s;
    op->b[o] = shift;
  }
  op->kind = FOP_CONV;
  op->conv = conv->conv;
  op->act = NODE_CONV;
  return REID_OK;
}

/* The node list -> fused ops:
 *   conv [+ BN] [+ ReLU / ReLU6 / sigmoid]           one convolution with an eltwise post-op
 *   conv [+ BN] whose only reader is add(., shortcut) [+ ReLU]
 *                                                    one convolution with post-ops sum [+ ReLU],
 *                                                    written in place over the shortcut
 *   other adds, channel gates (mul)                  oneDNN binary
 *   max / average / global average pooling           oneDNN pooling */
/* Places op f, made by node i with output activation y: with the activation after it fused
 * (any activation, or ReLU only; returns 1, the node it consumed), else deferred into the
 * residual add that reads y when the shortcut is dead after it (the op then runs when the
 * shortcut is ready and sums in place over it; returns 0), else as is (a shortcut, a plain
 * convolution or norm; returns 0). */
static int place_op(dnnl_state *s, const reid_net *net, int i, int y, fop f, int any_activation,
                    fop *pending, int *deferred, int *n_pending) {
  const net_node *next = i + 1 < net->n_nodes ? &net->nodes[i + 1] : NULL;
  if (next && (any_activation ? is_activation(next->kind) : next->kind == NODE_RELU) &&
      next->in == y && count_readers(net, y) == 1) {
    f.act = next->kind;
    f.dst = f.a_dst = next->out;
    s->ops[s->n_ops++] = f;
    return 1;
  }
  int add = -1;
  for (int j = i + 1; j < net->n_nodes && add < 0; j++)
    if (net->nodes[j].kind == NODE_ADD && net->nodes[j].in == y) add = j;
  if (add >= 0 && count_readers(net, y) == 1 &&
      count_readers_from(net, add + 1, net->nodes[add].in2) == 0) {
    pending[*n_pending] = f;
    deferred[add] = (*n_pending)++;
    return 0;
  }
  f.dst = f.a_dst = y;
  s->ops[s->n_ops++] = f;
  return 0;
}

static reid_status rewrite_graph(dnnl_state *s, const reid_net *net) {
  float *params, *buffers;
  REID_TRY(reid_net_download((reid_net *)net, &params, &buffers));
  s->ops = calloc((size_t)net->n_nodes, sizeof *s->ops);
  int *alias = malloc(sizeof(int) * net->n_acts);
  int *deferred = malloc(sizeof(int) * net->n_nodes); /* ADD node -> pending fop */
  fop *pending = calloc((size_t)net->n_nodes, sizeof *pending);
  reid_status st = s->ops && alias && deferred && pending
                       ? REID_OK
                       : reid_fail(REID_ENOMEM, "engine: out of memory");
  for (int i = 0; i < net->n_acts && alias; i++) alias[i] = i;
  for (int i = 0; i < net->n_nodes && deferred; i++) deferred[i] = -1;
  int n_pending = 0;
  for (int i = 0; i < net->n_nodes && st == REID_OK; i++) {
    const net_node *node = &net->nodes[i];
    const net_node *next = i + 1 < net->n_nodes ? &net->nodes[i + 1] : NULL;
    fop *op = &s->ops[s->n_ops];
    switch (node->kind) {
    case NODE_CONV: {
      const net_node *bn = next && next->kind == NODE_BN && next->in == node->out &&
                                   count_readers(net, node->out) == 1
                               ? next
                               : NULL;
      fop folded = {0};
      st = fold_conv_bn(&folded, net, node, bn, params, buffers);
      if (st != REID_OK) {
        free(folded.w);
        free(folded.b);
        break;
      }
      folded.src = alias[node->in];
      folded.src1 = -1;
      folded.a_src = node->in;
      folded.a_old = -1;
      i += bn != NULL;
      i += place_op(s, net, i, bn ? bn->out : node->out, folded, 1, pending, deferred, &n_pending);
      break;
    }
    case NODE_ADD: {
      if (deferred[i] < 0) { /* e.g. OSNet's sum of gated streams */
        *op = (fop){.kind = FOP_ADD,
                    .src = alias[node->in],
                    .src1 = alias[node->in2],
                    .dst = node->out,
                    .act = NODE_CONV,
                    .a_src = node->in,
                    .a_dst = node->out,
                    .a_old = -1};
        s->n_ops++;
        break;
      }
      *op = pending[deferred[i]];
      pending[deferred[i]].w = pending[deferred[i]].b = NULL; /* owned by the op now */
      op->sum = 1;
      op->dst = alias[node->in2]; /* in place over the shortcut */
      op->a_old = node->in2;
      op->a_dst = node->out;
      alias[node->out] = op->dst;
      if (next && next->kind == NODE_RELU && next->in == node->out) {
        op->act = NODE_RELU;
        op->a_dst = next->out;
        alias[next->out] = op->dst;
        i++;
      }
      s->n_ops++;
      break;
    }
    case NODE_MUL:
      *op = (fop){.kind = FOP_MUL,
                  .src = alias[node->in],
                  .src1 = alias[node->in2],
                  .dst = node->out,
                  .act = NODE_CONV,
                  .a_src = node->in,
                  .a_dst = node->out,
                  .a_old = -1};
      s->n_ops++;
      break;
    case NODE_MAXPOOL:
    case NODE_AVGPOOL:
    case NODE_GAP:
      *op = (fop){.kind = node->kind == NODE_MAXPOOL   ? FOP_MAXPOOL
                          : node->kind == NODE_AVGPOOL ? FOP_AVGPOOL
                                                       : FOP_GAP,
                  .pool = node->pool,
                  .src = alias[node->in],
                  .src1 = -1,
                  .dst = node->out,
                  .act = NODE_CONV,
                  .a_src = node->in,
                  .a_dst = node->out,
                  .a_old = -1};
      s->n_ops++;
      break;
    case NODE_IN:
    case NODE_BN: { /* a batch norm that no convolution took (IBN-a's half) */
      const int c = net->acts[node->in].c;
      fop f = {.kind = FOP_NORM,
               .src = alias[node->in],
               .src1 = -1,
               .dst = node->out,
               .act = NODE_CONV,
               .instance = node->kind == NODE_IN,
               .a_src = node->in,
               .a_dst = node->out,
               .a_old = -1};
      f.w = malloc(sizeof(float) * c);
      f.b = malloc(sizeof(float) * c);
      if (!f.w || !f.b) {
        free(f.w);
        free(f.b);
        st = reid_fail(REID_ENOMEM, "engine: out of memory");
        break;
      }
      for (int ch = 0; ch < c; ch++) {
        const float g = params[net->tensors[node->weight].offset + ch];
        const float beta = params[net->tensors[node->bias].offset + ch];
        if (f.instance) {
          f.w[ch] = g, f.b[ch] = beta;
        } else {
          const float m = buffers[net->tensors[node->mean].offset + ch];
          const float v = buffers[net->tensors[node->var].offset + ch];
          f.w[ch] = g / sqrtf(v + 1e-5f);
          f.b[ch] = beta - m * f.w[ch];
        }
      }
      /* only ReLU fuses; OSNet-AIN's IN inside the residual is added over the shortcut */
      i += place_op(s, net, i, node->out, f, 0, pending, deferred, &n_pending);
      break;
    }
    case NODE_CONCAT:
      *op = (fop){.kind = FOP_CONCAT,
                  .src = alias[node->in],
                  .src1 = alias[node->in2],
                  .dst = node->out,
                  .act = NODE_CONV,
                  .a_src = node->in,
                  .a_dst = node->out,
                  .a_old = -1};
      s->n_ops++;
      break;
    case NODE_SLICE:
      *op = (fop){.kind = FOP_SLICE,
                  .src = alias[node->in],
                  .src1 = -1,
                  .dst = node->out,
                  .act = NODE_CONV,
                  .c0 = node->c0,
                  .c = net->acts[node->out].c,
                  .a_src = node->in,
                  .a_dst = node->out,
                  .a_old = -1};
      s->n_ops++;
      break;
    case NODE_RELU:
    case NODE_RELU6:
    case NODE_SIGMOID:
      *op = (fop){.kind = FOP_ELTWISE,
                  .src = alias[node->in],
                  .src1 = -1,
                  .dst = node->out,
                  .act = node->kind,
                  .a_src = node->in,
                  .a_dst = node->out,
                  .a_old = -1};
      s->n_ops++;
      break;
    default:
      st = reid_fail(REID_EUNSUPPORTED, "engine: no fused form for node %d (%s) of %s", i,
                     net_node_kind_name(node->kind), reid_arch_name(net->cfg.arch));
      break;
    }
  }
  s->n_tensors = net->n_acts;
  s->input = 0;
  if (st == REID_OK) {
    s->feature = alias[net->feature_act];
    s->feature_c = net->feature_dim;
    if (s->n_ops == 0 || s->ops[0].kind != FOP_CONV || s->ops[s->n_ops - 1].dst != s->feature)
      st = reid_fail(REID_EUNSUPPORTED,
                     "engine: %s must start with a convolution and end with "
                     "its feature",
                     reid_arch_name(net->cfg.arch));
  }
  /* the BNNeck as an affine map when the embedding is taken after it */
  if (st == REID_OK && net->cfg.embed_after_bn) {
    int d = s->feature_c;
    s->neck_scale = malloc(sizeof(float) * d);
    s->neck_shift = malloc(sizeof(float) * d);
    if (!s->neck_scale || !s->neck_shift) st = reid_fail(REID_ENOMEM, "engine: out of memory");
    for (int c = 0; st == REID_OK && c < d; c++) {
      float g = params[net->tensors[net->neck_weight].offset + c];
      float beta = buffers[net->tensors[net->neck_bias].offset + c];
      float m = buffers[net->tensors[net->neck_mean].offset + c];
      float v = buffers[net->tensors[net->neck_var].offset + c];
      s->neck_scale[c] = g / sqrtf(v + 1e-5f);
      s->neck_shift[c] = beta - m * s->neck_scale[c];
    }
  }
  if (st == REID_OK) {
    s->last_use = malloc(sizeof(int) * s->n_tensors);
    if (!s->last_use) st = reid_fail(REID_ENOMEM, "engine: out of memory");
    for (int t = 0; st == REID_OK && t < s->n_tensors; t++) s->last_use[t] = -1;
    for (int i = 0; st == REID_OK && i < s->n_ops; i++) {
      s->last_use[s->ops[i].src] = i;
      if (s->ops[i].src1 >= 0) s->last_use[s->ops[i].src1] = i;
      if (s->ops[i].sum) s->last_use[s->ops[i].dst] = i;
    }
  }
  for (int i = 0; pending && i < n_pending; i++) { /* folded weights no op took */
    free(pending[i].w);
    free(pending[i].b);
  }
  free(pending);
  free(alias);
  free(deferred);
  free(params);
  free(buffers);
  return st;
}

/* ---- plans ---- */

static void plan_destroy(dnnl_state *s, dnnl_plan *p) {
  if (!p) return;
  for (int i = 0; i < s->n_ops; i++) {
    if (p->prims && p->prims[i]) dnnl_primitive_destroy(p->prims[i]);
    if (p->weights && p->weights[i]) dnnl_memory_destroy(p->weights[i]);
    if (p->bias && p->bias[i]) dnnl_memory_destroy(p->bias[i]);
  }
  for (int t = 0; p->mem && t < s->n_tensors; t++)
    if (p->mem[t]) dnnl_memory_destroy(p->mem[t]);
  for (int b = 0; b < p->n_buffers; b++) free(p->buffers[b]);
  if (p->in_reorder) dnnl_primitive_destroy(p->in_reorder);
  if (p->gap_reorder) dnnl_primitive_destroy(p->gap_reorder);
  if (p->gap_mem) dnnl_memory_destroy(p->gap_mem);
  free(p->gap_buf);
  if (p->out_reorder) dnnl_primitive_destroy(p->out_reorder);
  if (p->in_user) dnnl_memory_destroy(p->in_user);
  if (p->out_user) dnnl_memory_destroy(p->out_user);
  free(p->prims);
  free(p->weights);
  free(p->bias);
  free(p->md);
  free(p->mem);
  free(p->buffers);
  free(p);
}

static reid_status make_primitive(dnnl_state *s, const void *op_desc, dnnl_primitive_attr_t attr,
                                  dnnl_primitive_desc_t *pd, dnnl_primitive_t *prim) {
  DNNL_CHECK(dnnl_primitive_desc_create(pd, op_desc, attr, s->engine, NULL));
  dnnl_status_t st = dnnl_primitive_create(prim, *pd);
  if (st != dnnl_success) {
    dnnl_primitive_desc_destroy(*pd);
    *pd = NULL;
  }
  DNNL_CHECK(st);
  return REID_OK;
}

static reid_status plan_conv(dnnl_state *s, dnnl_plan *p, int i) {
  const fop *op = &s->ops[i];
  const reid_conv2d_desc *d = &op->conv;
  /* grouped weights: [groups, c_out / groups, c_in / groups, k, k] (goihw), PyTorch's memory */
  const int G = d->groups > 1 ? d->groups : 1, wnd = G > 1 ? 5 : 4;
  dnnl_dims_t wd = {d->c_out, d->c_in, d->k, d->k}, od = {p->n, d->c_out, d->h_out, d->w_out},
              bd = {d->c_out};
  if (G > 1) {
    dnnl_dims_t gd = {G, d->c_out / G, d->c_in / G, d->k, d->k};
    memcpy(wd, gd, sizeof gd);
  }
  dnnl_dims_t strides = {d->stride, d->stride}, pl = {d->pad, d->pad},
              pr = {(d->h_out - 1) * d->stride + d->k - d->h_in - d->pad,
                    (d->w_out - 1) * d->stride + d->k - d->w_in - d->pad};
  const int q = s->int8; /* s8 weights, per-channel output scales (engine_dnnl_int8.c) */
  dnnl_memory_desc_t w_any, b_md, dst_md, w_user;
  DNNL_CHECK(
      dnnl_memory_desc_init_by_tag(&w_any, wnd, wd, q ? dnnl_s8 : s->dt, dnnl_format_tag_any));
  DNNL_CHECK(dnnl_memory_desc_init_by_tag(&w_user, wnd, wd, q ? dnnl_s8 : dnnl_f32,
                                          G > 1 ? dnnl_goihw : dnnl_oihw));
  DNNL_CHECK(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_a));
  if (op->sum)
    dst_md = p->md[op->dst];
  else
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&dst_md, 4, od, s->tdt[op->dst], dnnl_format_tag_any));
  dnnl_convolution_desc_t cd;
  DNNL_CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                dnnl_convolution_direct, &p->md[op->src], &w_any,
                                                &b_md, &dst_md, strides, pl, pr));
  dnnl_primitive_attr_t attr;
  dnnl_post_ops_t po;
  DNNL_CHECK(dnnl_primitive_attr_create(&attr));
  DNNL_CHECK(dnnl_post_ops_create(&po));
  if (q) dnnl_primitive_attr_set_output_scales(attr, d->c_out, 1 << 1, op->oscale);
  if (op->sum) dnnl_post_ops_append_sum(po, q ? op->sum_scale : 1.0f);
  if (op->act == NODE_RELU) dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
  if (op->act == NODE_RELU6) dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip, 0.0f, 6.0f);
  if (op->act == NODE_SIGMOID)
    dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_logistic, 0.0f, 0.0f);
  if (q && op->post_scale > 0)
    dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_linear, op->post_scale, 0.0f);
  dnnl_primitive_attr_set_post_ops(attr, po);
  dnnl_post_ops_destroy(po);
  dnnl_primitive_desc_t pd;
  reid_status st = make_primitive(s, &cd, attr, &pd, &p->prims[i]);
  dnnl_primitive_attr_destroy(attr);
  REID_TRY(st);
  if (!op->sum) p->md[op->dst] = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
  const dnnl_memory_desc_t *w_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
  dnnl_status_t ds = dnnl_memory_create(&p->weights[i], w_md, s->engine, DNNL_MEMORY_ALLOCATE);
  dnnl_primitive_desc_destroy(pd);
  DNNL_CHECK(ds);
  DNNL_CHECK(dnnl_memory_create(&p->bias[i], &b_md, s->engine, op->b));
  dnnl_memory_t user;
  DNNL_CHECK(dnnl_memory_create(&user, &w_user, s->engine, q ? (void *)op->wq : op->w));
  st = dnnl_reorder_run(s->engine, s->stream, user, p->weights[i]);
  dnnl_memory_destroy(user);
  return st;
}

/* int8: an f32 copy of the global average pooling's input */
static reid_status plan_gap_input(dnnl_state *s, dnnl_plan *p, int i, dnnl_memory_desc_t *f32) {
  const dnnl_memory_desc_t *src = &p->md[s->ops[i].src];
  DNNL_CHECK(dnnl_memory_desc_init_by_tag(f32, 4, src->dims, dnnl_f32, dnnl_nhwc));
  p->gap_buf = aligned_alloc(64, (dnnl_memory_desc_get_size(f32) + 63) & ~(size_t)63);
  if (!p->gap_buf) return reid_fail(REID_ENOMEM, "engine: out of memory");
  DNNL_CHECK(dnnl_memory_create(&p->gap_mem, f32, s->engine, p->gap_buf));
  dnnl_primitive_desc_t pd;
  DNNL_CHECK(dnnl_reorder_primitive_desc_create(&pd, src, s->engine, f32, s->engine, NULL));
  dnnl_status_t ds = dnnl_primitive_create(&p->gap_reorder, pd);
  dnnl_primitive_desc_destroy(pd);
  DNNL_CHECK(ds);
  p->gap_op = i;
  return REID_OK;
}

static reid_status plan_pool(dnnl_state *s, dnnl_plan *p, int i) {
  const fop *op = &s->ops[i];
  const dnnl_memory_desc_t *src = &p->md[op->src];
  dnnl_memory_desc_t src_f32;
  if (op->kind == FOP_GAP && src->data_type != dnnl_f32 && s->tdt[op->dst] == dnnl_f32) {
    REID_TRY(plan_gap_input(s, p, i, &src_f32));
    src = &src_f32;
  }
  int64_t c = src->dims[1], h = src->dims[2], w = src->dims[3];
  dnnl_dims_t strides, kernel, pl, pr, od;
  dnnl_alg_kind_t alg;
  if (op->kind == FOP_MAXPOOL || op->kind == FOP_AVGPOOL) {
    const reid_pool2d_desc *d = &op->pool;
    alg = op->kind == FOP_MAXPOOL ? dnnl_pooling_max : dnnl_pooling_avg_include_padding;
    strides[0] = strides[1] = d->stride;
    kernel[0] = kernel[1] = d->k;
    pl[0] = pl[1] = d->pad;
    pr[0] = (d->h_out - 1) * d->stride + d->k - d->h - d->pad;
    pr[1] = (d->w_out - 1) * d->stride + d->k - d->w - d->pad;
    od[0] = p->n, od[1] = c, od[2] = d->h_out, od[3] = d->w_out;
  } else {
    alg = dnnl_pooling_avg_exclude_padding;
    strides[0] = strides[1] = 1;
    kernel[0] = h, kernel[1] = w;
    pl[0] = pl[1] = pr[0] = pr[1] = 0;
    od[0] = p->n, od[1] = c, od[2] = 1, od[3] = 1;
  }
  dnnl_memory_desc_t dst_md;
  DNNL_CHECK(dnnl_memory_desc_init_by_tag(&dst_md, 4, od, s->tdt[op->dst], dnnl_format_tag_any));
  dnnl_pooling_desc_t pdsc;
  DNNL_CHECK(dnnl_pooling_forward_desc_init(&pdsc, dnnl_forward_inference, alg, src, &dst_md,
                                            strides, kernel, pl, pr));
  dnnl_primitive_desc_t pd;
  REID_TRY(make_primitive(s, &pdsc, NULL, &pd, &p->prims[i]));
  p->md[op->dst] = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
  dnnl_primitive_desc_destroy(pd);
  return REID_OK;
}

/* add or channel gate: dst = src (+|*) src1, src1 [n, c, 1, 1] broadcast for the gate;
 * dst takes src's layout */
static reid_status plan_binary(dnnl_state *s, dnnl_plan *p, int i) {
  const fop *op = &s->ops[i];
  dnnl_binary_desc_t bd;
  DNNL_CHECK(dnnl_binary_desc_init(&bd, op->kind == FOP_ADD ? dnnl_binary_add : dnnl_binary_mul,
                                   &p->md[op->src], &p->md[op->src1], &p->md[op->src]));
  dnnl_primitive_desc_t pd;
  REID_TRY(make_primitive(s, &bd, NULL, &pd, &p->prims[i]));
  p->md[op->dst] = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
  dnnl_primitive_desc_destroy(pd);
  return REID_OK;
}

/* normalisation (engine_dnnl_norm.c): dst in src's layout, or the shortcut's when summing */
static reid_status plan_norm(dnnl_state *s, dnnl_plan *p, int i) {
  const fop *op = &s->ops[i];
  if (!op->sum) p->md[op->dst] = p->md[op->src];
  if (!dnnl_norm_layout_ok(&p->md[op->src]) || !dnnl_norm_layout_ok(&p->md[op->dst]))
    return reid_fail(REID_EUNSUPPORTED, "engine: no normalisation kernel for this layout");
  return REID_OK;
}

static reid_status plan_eltwise(dnnl_state *s, dnnl_plan *p, int i) {
  const fop *op = &s->ops[i];
  dnnl_alg_kind_t alg = op->act == NODE_RELU    ? dnnl_eltwise_relu
                        : op->act == NODE_RELU6 ? dnnl_eltwise_clip
                                                : dnnl_eltwise_logistic;
  float alpha = 0.0f, beta = op->act == NODE_RELU6 ? 6.0f : 0.0f;
  dnnl_eltwise_desc_t ed;
  DNNL_CHECK(dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, alg, &p->md[op->src],
                                            alpha, beta));
  dnnl_primitive_desc_t pd;
  REID_TRY(make_primitive(s, &ed, NULL, &pd, &p->prims[i]));
  p->md[op->dst] = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
  dnnl_primitive_desc_destroy(pd);
  return REID_OK;
}

static reid_status plan_concat(dnnl_state *s, dnnl_plan *p, int i) {
  const fop *op = &s->ops[i];
  dnnl_memory_desc_t srcs[2] = {p->md[op->src], p->md[op->src1]};
  dnnl_primitive_desc_t pd;
  DNNL_CHECK(dnnl_concat_primitive_desc_create(&pd, NULL, 2, 1, srcs, NULL, s->engine));
  dnnl_status_t ds = dnnl_primitive_create(&p->prims[i], pd);
  if (ds == dnnl_success) p->md[op->dst] = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
  dnnl_primitive_desc_destroy(pd);
  DNNL_CHECK(ds);
  return REID_OK;
}

/* the channels [c0, c0 + c) of src as a sub-memory descriptor of src's buffer */
static reid_status slice_md(const dnnl_plan *p, const fop *op, dnnl_memory_desc_t *sub) {
  const dnnl_memory_desc_t *src = &p->md[op->src];
  dnnl_dims_t dims = {src->dims[0], op->c, src->dims[2], src->dims[3]}, offs = {0, op->c0, 0, 0};
  if (dnnl_memory_desc_init_submemory(sub, src, dims, offs) != dnnl_success)
    return reid_fail(REID_EUNSUPPORTED,
                     "engine: channels %d..%d of a %d-channel tensor in this "
                     "layout",
                     op->c0, op->c0 + op->c, (int)src->dims[1]);
  return REID_OK;
}

/* a slice: a reorder from the sub-memory into a tensor in src's format */
static reid_status plan_slice(dnnl_state *s, dnnl_plan *p, int i) {
  const fop *op = &s->ops[i];
  const dnnl_memory_desc_t *src = &p->md[op->src];
  static const dnnl_format_tag_t tags[4] = {dnnl_nChw16c, dnnl_nChw8c, dnnl_nhwc, dnnl_nchw};
  dnnl_format_tag_t tag = dnnl_nchw;
  for (int t = 0; t < 4; t++) {
    dnnl_memory_desc_t cand;
    if (dnnl_memory_desc_init_by_tag(&cand, 4, src->dims, src->data_type, tags[t]) ==
            dnnl_success &&
        dnnl_memory_desc_equal(&cand, src)) {
      tag = tags[t];
      break;
    }
  }
  dnnl_memory_desc_t sub;
  REID_TRY(slice_md(p, op, &sub));
  dnnl_dims_t dims = {src->dims[0], op->c, src->dims[2], src->dims[3]};
  DNNL_CHECK(dnnl_memory_desc_init_by_tag(&p->md[op->dst], 4, dims, src->data_type, tag));
  dnnl_primitive_desc_t pd;
  DNNL_CHECK(
      dnnl_reorder_primitive_desc_create(&pd, &sub, s->engine, &p->md[op->dst], s->engine, NULL));
  dnnl_status_t ds = dnnl_primitive_create(&p->prims[i], pd);
  dnnl_primitive_desc_destroy(pd);
  DNNL_CHECK(ds);
  return REID_OK;
}

/* Assigns each tensor a buffer slot: a slot is free again after its tensor's last reader. */
static reid_status plan_buffers(dnnl_state *s, dnnl_plan *p) {
  size_t largest = 0;
  for (int t = 0; t < s->n_tensors; t++)
    if (p->md[t].ndims) {
      size_t sz = dnnl_memory_desc_get_size(&p->md[t]);
      if (sz > largest) largest = sz;
    }
  int *slot_of = malloc(sizeof(int) * s->n_tensors);
  int *slot_owner = malloc(sizeof(int) * (s->n_ops + 2));
  p->buffers = calloc((size_t)s->n_ops + 2, sizeof(void *));
  if (!slot_of || !slot_owner || !p->buffers) {
    free(slot_of);
    free(slot_owner);
    return reid_fail(REID_ENOMEM, "engine: out of memory");
  }
  for (int t = 0; t < s->n_tensors; t++) slot_of[t] = -1;
  int n_slots = 0;
#define TAKE_SLOT(tensor)                                                                          \
  do {                                                                                             \
    int free_slot = -1;                                                                            \
    for (int k = 0; k < n_slots && free_slot < 0; k++)                                             \
      if (slot_owner[k] < 0) free_slot = k;                                                        \
    if (free_slot < 0) free_slot = n_slots++;                                                      \
    slot_owner[free_slot] = (tensor);                                                              \
    slot_of[tensor] = free_slot;                                                                   \
  } while (0)
  TAKE_SLOT(s->input);
  for (int i = 0; i < s->n_ops; i++) {
    const fop *op = &s->ops[i];
    if (op->dst != s->feature && slot_of[op->dst] < 0) TAKE_SLOT(op->dst);
    int reads[3] = {op->src, op->src1, op->sum ? op->dst : -1};
    for (int r = 0; r < 3; r++)
      if (reads[r] >= 0 && s->last_use[reads[r]] == i && slot_of[reads[r]] >= 0 &&
          reads[r] != op->dst)
        slot_owner[slot_of[reads[r]]] = -1;
  }
#undef TAKE_SLOT
  reid_status st = REID_OK;
  for (int k = 0; k < n_slots && st == REID_OK; k++) {
    p->buffers[k] = aligned_alloc(64, (largest + 63) & ~(size_t)63);
    if (!p->buffers[k]) st = reid_fail(REID_ENOMEM, "engine: out of memory for activations");
  }
  p->n_buffers = n_slots;
  for (int t = 0; t < s->n_tensors && st == REID_OK; t++) {
    if (slot_of[t] < 0 || !p->md[t].ndims) continue;
    if (dnnl_memory_create(&p->mem[t], &p->md[t], s->engine, p->buffers[slot_of[t]]) !=
        dnnl_success)
      st = reid_fail(REID_EDEVICE, "oneDNN: cannot create activation memory");
  }
  free(slot_of);
  free(slot_owner);
  return st;
}

static reid_status plan_create(dnnl_state *s, const reid_net *net, int n, dnnl_plan **out) {
  dnnl_plan *p = calloc(1, sizeof *p);
  if (!p) return reid_fail(REID_ENOMEM, "engine: out of memory");
  p->n = n;
  p->gap_op = -1;
  p->prims = calloc((size_t)s->n_ops, sizeof *p->prims);
  p->weights = calloc((size_t)s->n_ops, sizeof *p->weights);
  p->bias = calloc((size_t)s->n_ops, sizeof *p->bias);
  p->md = calloc((size_t)s->n_tensors, sizeof *p->md);
  p->mem = calloc((size_t)s->n_tensors, sizeof *p->mem);
  reid_status st = p->prims && p->weights && p->bias && p->md && p->mem
                       ? REID_OK
                       : reid_fail(REID_ENOMEM, "engine: out of memory");
  /* the input: whatever layout the first convolution wants */
  const net_act *in = &net->acts[s->input];
  dnnl_dims_t id = {n, in->c, in->h, in->w};
  dnnl_memory_desc_t user_md;
  if (st == REID_OK &&
      dnnl_memory_desc_init_by_tag(&user_md, 4, id, dnnl_f32, dnnl_nchw) != dnnl_success)
    st = reid_fail(REID_EDEVICE, "oneDNN: input descriptor");
  if (st == REID_OK) {
    const fop *first = &s->ops[0];
    dnnl_memory_desc_t src_any, w_any, dst_any;
    const reid_conv2d_desc *d = &first->conv;
    dnnl_dims_t wd = {d->c_out, d->c_in, d->k, d->k}, od = {n, d->c_out, d->h_out, d->w_out};
    dnnl_dims_t strides = {d->stride, d->stride}, pad = {d->pad, d->pad};
    dnnl_memory_desc_init_by_tag(&src_any, 4, id, s->tdt[s->input], dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&w_any, 4, wd, s->int8 ? dnnl_s8 : s->dt, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&dst_any, 4, od, s->tdt[first->dst], dnnl_format_tag_any);
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
                                           &src_any, &w_any, NULL, &dst_any, strides, pad,
                                           pad) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &cd, NULL, s->engine, NULL) != dnnl_success)
      st = reid_fail(REID_EDEVICE, "oneDNN: no convolution for the input layer");
    else
      p->md[s->input] = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    if (pd) dnnl_primitive_desc_destroy(pd);
  }
  for (int i = 0; i < s->n_ops && st == REID_OK; i++) {
    switch (s->ops[i].kind) {
    case FOP_CONV: st = plan_conv(s, p, i); break;
    case FOP_ADD:
    case FOP_MUL: st = plan_binary(s, p, i); break;
    case FOP_NORM: st = plan_norm(s, p, i); break;
    case FOP_CONCAT: st = plan_concat(s, p, i); break;
    case FOP_SLICE: st = plan_slice(s, p, i); break;
    case FOP_ELTWISE: st = plan_eltwise(s, p, i); break;
    default: st = plan_pool(s, p, i); break;
    }
  }
  if (st == REID_OK) st = plan_buffers(s, p);
  /* a slice reads its source's buffer through a sub-memory (kept in the op's weights slot) */
  for (int i = 0; i < s->n_ops && st == REID_OK; i++) {
    const fop *op = &s->ops[i];
    if (op->kind != FOP_SLICE) continue;
    dnnl_memory_desc_t sub;
    void *buf = NULL;
    st = slice_md(p, op, &sub);
    if (st == REID_OK && (dnnl_memory_get_data_handle(p->mem[op->src], &buf) != dnnl_success ||
                          dnnl_memory_create(&p->weights[i], &sub, s->engine, buf) != dnnl_success))
      st = reid_fail(REID_EDEVICE, "oneDNN: cannot create a slice's source memory");
  }
  /* the feature tensor is written straight into a plain [n, C] f32 buffer when possible */
  if (st == REID_OK) {
    dnnl_dims_t fd = {n, s->feature_c, 1, 1};
    dnnl_memory_desc_t plain;
    dnnl_memory_desc_init_by_tag(&plain, 4, fd, dnnl_f32, dnnl_nchw);
    dnnl_primitive_desc_t pd;
    if (dnnl_memory_create(&p->mem[s->feature], &p->md[s->feature], s->engine,
                           DNNL_MEMORY_ALLOCATE) != dnnl_success ||
        dnnl_memory_create(&p->out_user, &plain, s->engine, DNNL_MEMORY_NONE) != dnnl_success ||
        dnnl_reorder_primitive_desc_create(&pd, &p->md[s->feature], s->engine, &plain, s->engine,
                                           NULL) != dnnl_success)
      st = reid_fail(REID_EDEVICE, "oneDNN: cannot create the output reorder");
    else {
      if (dnnl_primitive_create(&p->out_reorder, pd) != dnnl_success)
        st = reid_fail(REID_EDEVICE, "oneDNN: cannot create the output reorder");
      dnnl_primitive_desc_destroy(pd);
    }
  }
  if (st == REID_OK) { /* [n, C, 1, 1] in nhwc or nchw is [n, C] dense */
    dnnl_dims_t fd = {n, s->feature_c, 1, 1};
    dnnl_memory_desc_t dense;
    dnnl_memory_desc_init_by_tag(&dense, 4, fd, s->tdt[s->feature], dnnl_nhwc);
    p->feature_dense = dnnl_memory_desc_equal(&dense, &p->md[s->feature]);
  }
  if (st == REID_OK) {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_attr_t attr = NULL; /* int8: x / input_scale, rounded and saturated */
    float inv = 1.0f / s->input_scale;
    if (s->int8 && (dnnl_primitive_attr_create(&attr) != dnnl_success ||
                    dnnl_primitive_attr_set_output_scales(attr, 1, 0, &inv) != dnnl_success))
      st = reid_fail(REID_EDEVICE, "oneDNN: cannot set the input's scale");
    if (st != REID_OK) {
    } else if (dnnl_memory_create(&p->in_user, &user_md, s->engine, DNNL_MEMORY_NONE) !=
                   dnnl_success ||
               dnnl_reorder_primitive_desc_create(&pd, &user_md, s->engine, &p->md[s->input],
                                                  s->engine, attr) != dnnl_success)
      st = reid_fail(REID_EDEVICE, "oneDNN: cannot create the input reorder");
    else {
      if (dnnl_primitive_create(&p->in_reorder, pd) != dnnl_success)
        st = reid_fail(REID_EDEVICE, "oneDNN: cannot create the input reorder");
      dnnl_primitive_desc_destroy(pd);
    }
    if (attr) dnnl_primitive_attr_destroy(attr);
  }
  if (st != REID_OK) {
    plan_destroy(s, p);
    return st;
  }
  *out = p;
  return REID_OK;
}

/* The layers, from the input tensor (already in the first convolution's
 * layout) to features [n, C] f32. */
static reid_status plan_run_layers(dnnl_state *s, dnnl_plan *p, float *features) {
  for (int i = 0; i < s->n_ops; i++) {
    const fop *op = &s->ops[i];
    if (op->kind == FOP_NORM) {
      void *src, *dst;
      DNNL_CHECK(dnnl_memory_get_data_handle(p->mem[op->src], &src));
      DNNL_CHECK(dnnl_memory_get_data_handle(p->mem[op->dst], &dst));
      REID_TRY(dnnl_norm_run(&p->md[op->src], src, &p->md[op->dst], dst, op->instance, op->w, op->b,
                             1e-5f, op->sum, op->act == NODE_RELU));
      continue;
    }
    if (op->kind == FOP_CONCAT) {
      dnnl_exec_arg_t args[3] = {{DNNL_ARG_MULTIPLE_SRC, p->mem[op->src]},
                                 {DNNL_ARG_MULTIPLE_SRC + 1, p->mem[op->src1]},
                                 {DNNL_ARG_DST, p->mem[op->dst]}};
      DNNL_CHECK(dnnl_primitive_execute(p->prims[i], s->stream, 3, args));
      continue;
    }
    if (op->kind == FOP_SLICE) {
      dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, p->weights[i]}, {DNNL_ARG_TO, p->mem[op->dst]}};
      DNNL_CHECK(dnnl_primitive_execute(p->prims[i], s->stream, 2, args));
      continue;
    }
    if (op->kind == FOP_ADD || op->kind == FOP_MUL) {
      dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC_0, p->mem[op->src]},
                                 {DNNL_ARG_SRC_1, p->mem[op->src1]},
                                 {DNNL_ARG_DST, p->mem[op->dst]}};
      DNNL_CHECK(dnnl_primitive_execute(p->prims[i], s->stream, 3, args));
      continue;
    }
    dnnl_memory_t src = p->mem[op->src];
    if (i == p->gap_op) {
      dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, p->gap_mem}};
      DNNL_CHECK(dnnl_primitive_execute(p->gap_reorder, s->stream, 2, r));
      src = p->gap_mem;
    }
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, src},
                               {DNNL_ARG_DST, p->mem[op->dst]},
                               {DNNL_ARG_WEIGHTS, p->weights[i]},
                               {DNNL_ARG_BIAS, p->bias[i]}};
    DNNL_CHECK(dnnl_primitive_execute(p->prims[i], s->stream, op->kind == FOP_CONV ? 4 : 2, args));
  }
  if (!p->feature_dense) {
    DNNL_CHECK(dnnl_memory_set_data_handle(p->out_user, features));
    dnnl_exec_arg_t oo[2] = {{DNNL_ARG_FROM, p->mem[s->feature]}, {DNNL_ARG_TO, p->out_user}};
    DNNL_CHECK(dnnl_primitive_execute(p->out_reorder, s->stream, 2, oo));
  }
  DNNL_CHECK(dnnl_stream_wait(s->stream));
  if (p->feature_dense) { /* a copy, not a parallel reorder: no thread barrier for 8 KiB */
    void *f;
    DNNL_CHECK(dnnl_memory_get_data_handle(p->mem[s->feature], &f));
    size_t count = (size_t)p->n * s->feature_c;
    if (s->tdt[s->feature] == dnnl_bf16)
      bf16_to_float_array(features, f, count);
    else
      memcpy(features, f, count * sizeof(float));
  }
  if (s->feature_scale != 1.0f) /* int8: the pooled u8 steps to real values */
    for (size_t j = 0; j < (size_t)p->n * s->feature_c; j++) features[j] *= s->feature_scale;
  return REID_OK;
}

static reid_status plan_run(dnnl_state *s, dnnl_plan *p, const float *x, float *features) {
  DNNL_CHECK(dnnl_memory_set_data_handle(p->in_user, (void *)x));
  dnnl_exec_arg_t io[2] = {{DNNL_ARG_FROM, p->in_user}, {DNNL_ARG_TO, p->mem[s->input]}};
  DNNL_CHECK(dnnl_primitive_execute(p->in_reorder, s->stream, 2, io));
  return plan_run_layers(s, p, features);
}

static reid_status get_plan(reid_engine *e, int n, dnnl_plan **out) {
  dnnl_state *s = e->impl;
  int oldest = 0;
  for (int i = 0; i < MAX_PLANS; i++) {
    if (s->plans[i] && s->plans[i]->n == n) {
      s->plans[i]->last_used = ++s->tick;
      *out = s->plans[i];
      return REID_OK;
    }
    if (!s->plans[i] || (s->plans[oldest] && s->plans[i]->last_used < s->plans[oldest]->last_used))
      oldest = i;
  }
  plan_destroy(s, s->plans[oldest]);
  s->plans[oldest] = NULL;
  REID_TRY(plan_create(s, e->net, n, &s->plans[oldest]));
  s->plans[oldest]->last_used = ++s->tick;
  *out = s->plans[oldest];
  return REID_OK;
}

static void apply_neck(const dnnl_state *s, const reid_engine *e, float *dst, int n) {
  if (!s->neck_scale) return;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < e->dim; j++)
      dst[(size_t)i * e->dim + j] =
          dst[(size_t)i * e->dim + j] * s->neck_scale[j] + s->neck_shift[j];
}

static reid_status dnnl_embed(reid_engine *e, const float *x, int n, float *out) {
  dnnl_state *s = e->impl;
  const reid_model_config *c = reid_net_config(e->net);
  size_t image = (size_t)3 * c->input_height * c->input_width;
  for (int done = 0; done < n; done += e->max_batch) {
    int chunk = n - done < e->max_batch ? n - done : e->max_batch;
    dnnl_plan *p;
    REID_TRY(get_plan(e, chunk, &p));
    float *dst = out + (size_t)e->dim * done;
    REID_TRY(plan_run(s, p, x + image * done, dst));
    apply_neck(s, e, dst, chunk);
  }
  return REID_OK;
}

/* Zero-copy input: the plan's input tensor when it is plain NHWC or NCHW. */
static reid_status dnnl_input(reid_engine *e, int n, void **input, reid_tensor_format *fmt) {
  dnnl_state *s = e->impl;
  if (s->int8)
    return reid_fail(REID_EUNSUPPORTED, "engine: the int8 engine quantizes its input itself");
  dnnl_plan *p;
  REID_TRY(get_plan(e, n, &p));
  const dnnl_memory_desc_t *md = &p->md[s->input];
  dnnl_memory_desc_t plain;
  const dnnl_format_tag_t tags[2] = {dnnl_nhwc, dnnl_nchw};
  for (int t = 0; t < 2; t++) {
    dnnl_memory_desc_init_by_tag(&plain, 4, md->dims, s->dt, tags[t]);
    if (dnnl_memory_desc_equal(&plain, md)) {
      *fmt = (reid_tensor_format){t == 0 ? REID_LAYOUT_NHWC : REID_LAYOUT_NCHW, (int)md->dims[1],
                                  s->dt == dnnl_bf16 ? REID_PRECISION_BF16 : REID_PRECISION_FP32};
      DNNL_CHECK(dnnl_memory_get_data_handle(p->mem[s->input], input));
      return REID_OK;
    }
  }
  return reid_fail(REID_EUNSUPPORTED, "engine: the first convolution reads a blocked layout");
}

static reid_status dnnl_run(reid_engine *e, int n, float *out) {
  dnnl_state *s = e->impl;
  dnnl_plan *p;
  REID_TRY(get_plan(e, n, &p));
  REID_TRY(plan_run_layers(s, p, out));
  apply_neck(s, e, out, n);
  return REID_OK;
}

static void dnnl_destroy(reid_engine *e) {
  dnnl_state *s = e->impl;
  if (!s) return;
  for (int i = 0; i < MAX_PLANS; i++) plan_destroy(s, s->plans[i]);
  for (int i = 0; i < s->n_ops; i++) {
    free(s->ops[i].w);
    free(s->ops[i].b);
    free(s->ops[i].wq);
    free(s->ops[i].oscale);
  }
  free(s->ops);
  free(s->tdt);
  free(s->last_use);
  free(s->neck_scale);
  free(s->neck_shift);
  if (s->stream) dnnl_stream_destroy(s->stream);
  if (s->engine) dnnl_engine_destroy(s->engine);
  free(s);
  e->impl = NULL;
}

reid_status engine_dnnl_init(reid_engine *e) {
  if (e->precision != REID_PRECISION_FP32 && e->precision != REID_PRECISION_BF16 &&
      e->precision != REID_PRECISION_INT8)
    return reid_fail(REID_EUNSUPPORTED,
                     "precision %s is not available on the CPU (use fp32, bf16 or int8)",
                     reid_precision_name(e->precision));
  dnnl_state *s = calloc(1, sizeof *s);
  if (!s) return reid_fail(REID_ENOMEM, "engine: out of memory");
  e->impl = s;
  e->embed = dnnl_embed;
  e->destroy = dnnl_destroy;
  e->input = dnnl_input;
  e->run = dnnl_run;
  s->dt = e->precision == REID_PRECISION_BF16 ? dnnl_bf16 : dnnl_f32;
  s->int8 = e->precision == REID_PRECISION_INT8;
  s->input_scale = s->feature_scale = 1.0f;
  DNNL_CHECK(dnnl_engine_create(&s->engine, dnnl_cpu, 0));
  DNNL_CHECK(dnnl_stream_create(&s->stream, s->engine, dnnl_stream_default_flags));
  REID_TRY(rewrite_graph(s, e->net));
  if (s->int8) {
    REID_TRY(engine_dnnl_int8_prepare(s, e->net));
  } else {
    s->tdt = malloc(sizeof *s->tdt * s->n_tensors);
    if (!s->tdt) return reid_fail(REID_ENOMEM, "engine: out of memory");
    for (int t = 0; t < s->n_tensors; t++) s->tdt[t] = s->dt;
  }
  snprintf(e->description, sizeof e->description, "cpu/onednn %s (fused)",
           reid_precision_name(e->precision));
  /* build the largest plan now so that a bad configuration fails at creation */
  dnnl_plan *p;
  return get_plan(e, e->max_batch, &p);
}
#endif
