#include "conv2d_dnnl.h"

#if HAVE_DNNL
#include <stdlib.h>
#include <string.h>

/* All primitives for one convolution shape. The forward descriptor doubles as
 * the hint that oneDNN's backward primitives require. */
typedef struct conv_plan {
  reid_conv2d_desc d;
  int has_bias;
  dnnl_primitive_desc_t fwd_pd;
  dnnl_primitive_t fwd;
  dnnl_port f_src, f_wei, f_dst;
  dnnl_memory_t f_bias;
  int bwd_ready;
  dnnl_primitive_t bwd_data;
  dnnl_port bd_diff_dst, bd_wei, bd_diff_src;
  dnnl_primitive_t bwd_weights;
  dnnl_port bw_src, bw_diff_dst, bw_diff_wei;
  dnnl_memory_t bw_diff_bias;
  float *bias_scratch; /* receives dbias when the caller does not want it */
} conv_plan;

struct conv2d_dnnl_cache {
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  conv_plan **plans;
  int n_plans, cap_plans;
};

reid_status conv2d_dnnl_cache_create(conv2d_dnnl_cache **out) {
  conv2d_dnnl_cache *c = calloc(1, sizeof *c);
  if (!c) return reid_fail(REID_ENOMEM, "conv2d: out of memory");
  dnnl_status_t s = dnnl_engine_create(&c->engine, dnnl_cpu, 0);
  if (s == dnnl_success) s = dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags);
  if (s != dnnl_success) {
    if (c->engine) dnnl_engine_destroy(c->engine);
    free(c);
    return reid_fail(REID_EDEVICE, "oneDNN: cannot create the CPU engine (%s)",
                     dnnl_status_text(s));
  }
  *out = c;
  return REID_OK;
}

dnnl_engine_t conv2d_dnnl_engine(conv2d_dnnl_cache *c) {
  return c->engine;
}
dnnl_stream_t conv2d_dnnl_stream(conv2d_dnnl_cache *c) {
  return c->stream;
}

static void plan_destroy(conv_plan *p) {
  if (!p) return;
  if (p->fwd) dnnl_primitive_destroy(p->fwd);
  if (p->fwd_pd) dnnl_primitive_desc_destroy(p->fwd_pd);
  if (p->bwd_data) dnnl_primitive_destroy(p->bwd_data);
  if (p->bwd_weights) dnnl_primitive_destroy(p->bwd_weights);
  if (p->f_bias) dnnl_memory_destroy(p->f_bias);
  if (p->bw_diff_bias) dnnl_memory_destroy(p->bw_diff_bias);
  dnnl_port *ports[] = {&p->f_src,       &p->f_wei,  &p->f_dst,       &p->bd_diff_dst, &p->bd_wei,
                        &p->bd_diff_src, &p->bw_src, &p->bw_diff_dst, &p->bw_diff_wei};
  for (size_t i = 0; i < sizeof ports / sizeof *ports; i++) dnnl_port_destroy(ports[i]);
  free(p->bias_scratch);
  free(p);
}

void conv2d_dnnl_cache_destroy(conv2d_dnnl_cache *c) {
  if (!c) return;
  for (int i = 0; i < c->n_plans; i++) plan_destroy(c->plans[i]);
  free(c->plans);
  dnnl_stream_destroy(c->stream);
  dnnl_engine_destroy(c->engine);
  free(c);
}

typedef struct conv_mds {
  dnnl_memory_desc_t src, wei, dst, bias;       /* plain layouts */
  dnnl_memory_desc_t src_any, wei_any, dst_any; /* "let the primitive choose" */
  dnnl_dims_t strides, pad_l, pad_r;
} conv_mds;

static reid_status conv_mds_init(conv_mds *m, const reid_conv2d_desc *d) {
  /* grouped weights are 5-D: [groups, c_out / groups, c_in / groups, k, k] (goihw),
   * which is the same memory as PyTorch's [c_out, c_in / groups, k, k] */
  const int G = d->groups > 1 ? d->groups : 1, wnd = G > 1 ? 5 : 4;
  int64_t src[4] = {d->n, d->c_in, d->h_in, d->w_in};
  int64_t wei[5] = {d->c_out, d->c_in, d->k, d->k, 0};
  if (G > 1) {
    int64_t g[5] = {G, d->c_out / G, d->c_in / G, d->k, d->k};
    memcpy(wei, g, sizeof g);
  }
  int64_t dst[4] = {d->n, d->c_out, d->h_out, d->w_out};
  int64_t bias[1] = {d->c_out};
  REID_TRY(dnnl_md_plain(&m->src, 4, src, dnnl_f32));
  REID_TRY(dnnl_md_plain(&m->wei, wnd, wei, dnnl_f32));
  REID_TRY(dnnl_md_plain(&m->dst, 4, dst, dnnl_f32));
  REID_TRY(dnnl_md_plain(&m->bias, 1, bias, dnnl_f32));
  dnnl_dims_t s = {d->n, d->c_in, d->h_in, d->w_in}, o = {d->n, d->c_out, d->h_out, d->w_out};
  dnnl_dims_t w;
  memcpy(w, wei, sizeof wei);
  DNNL_CHECK(dnnl_memory_desc_init_by_tag(&m->src_any, 4, s, dnnl_f32, dnnl_format_tag_any));
  DNNL_CHECK(dnnl_memory_desc_init_by_tag(&m->wei_any, wnd, w, dnnl_f32, dnnl_format_tag_any));
  DNNL_CHECK(dnnl_memory_desc_init_by_tag(&m->dst_any, 4, o, dnnl_f32, dnnl_format_tag_any));
  m->strides[0] = m->strides[1] = d->stride;
  m->pad_l[0] = m->pad_l[1] = d->pad;
  /* right padding that reproduces PyTorch's floor-mode output size */
  m->pad_r[0] = (int64_t)(d->h_out - 1) * d->stride + d->k - d->h_in - d->pad;
  m->pad_r[1] = (int64_t)(d->w_out - 1) * d->stride + d->k - d->w_in - d->pad;
  return REID_OK;
}

static const dnnl_memory_desc_t *query(dnnl_primitive_desc_t pd, dnnl_query_t what) {
  return dnnl_primitive_desc_query_md(pd, what, 0);
}

static reid_status plan_build_forward(conv2d_dnnl_cache *c, conv_plan *p) {
  conv_mds m;
  REID_TRY(conv_mds_init(&m, &p->d));
  dnnl_convolution_desc_t cd;
  DNNL_CHECK(dnnl_convolution_forward_desc_init(
      &cd, dnnl_forward_training, dnnl_convolution_direct, &m.src_any, &m.wei_any,
      p->has_bias ? &m.bias : NULL, &m.dst_any, m.strides, m.pad_l, m.pad_r));
  DNNL_CHECK(dnnl_primitive_desc_create(&p->fwd_pd, &cd, NULL, c->engine, NULL));
  DNNL_CHECK(dnnl_primitive_create(&p->fwd, p->fwd_pd));
  REID_TRY(dnnl_port_init(&p->f_src, c->engine, &m.src, query(p->fwd_pd, dnnl_query_src_md), 0));
  REID_TRY(
      dnnl_port_init(&p->f_wei, c->engine, &m.wei, query(p->fwd_pd, dnnl_query_weights_md), 0));
  REID_TRY(dnnl_port_init(&p->f_dst, c->engine, &m.dst, query(p->fwd_pd, dnnl_query_dst_md), 1));
  if (p->has_bias) DNNL_CHECK(dnnl_memory_create(&p->f_bias, &m.bias, c->engine, DNNL_MEMORY_NONE));
  return REID_OK;
}

static reid_status plan_build_backward(conv2d_dnnl_cache *c, conv_plan *p) {
  conv_mds m;
  REID_TRY(conv_mds_init(&m, &p->d));
  dnnl_convolution_desc_t cd;
  dnnl_primitive_desc_t pd;

  DNNL_CHECK(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &m.src_any,
                                                      &m.wei_any, &m.dst_any, m.strides, m.pad_l,
                                                      m.pad_r));
  DNNL_CHECK(dnnl_primitive_desc_create(&pd, &cd, NULL, c->engine, p->fwd_pd));
  dnnl_status_t s = dnnl_primitive_create(&p->bwd_data, pd);
  reid_status st = REID_OK;
  if (s == dnnl_success)
    st = dnnl_port_init(&p->bd_diff_dst, c->engine, &m.dst, query(pd, dnnl_query_diff_dst_md), 0);
  if (s == dnnl_success && st == REID_OK)
    st = dnnl_port_init(&p->bd_wei, c->engine, &m.wei, query(pd, dnnl_query_weights_md), 0);
  if (s == dnnl_success && st == REID_OK)
    st = dnnl_port_init(&p->bd_diff_src, c->engine, &m.src, query(pd, dnnl_query_diff_src_md), 1);
  dnnl_primitive_desc_destroy(pd);
  DNNL_CHECK(s);
  REID_TRY(st);

  DNNL_CHECK(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &m.src_any,
                                                         &m.wei_any, p->has_bias ? &m.bias : NULL,
                                                         &m.dst_any, m.strides, m.pad_l, m.pad_r));
  DNNL_CHECK(dnnl_primitive_desc_create(&pd, &cd, NULL, c->engine, p->fwd_pd));
  s = dnnl_primitive_create(&p->bwd_weights, pd);
  if (s == dnnl_success)
    st = dnnl_port_init(&p->bw_src, c->engine, &m.src, query(pd, dnnl_query_src_md), 0);
  if (s == dnnl_success && st == REID_OK)
    st = dnnl_port_init(&p->bw_diff_dst, c->engine, &m.dst, query(pd, dnnl_query_diff_dst_md), 0);
  if (s == dnnl_success && st == REID_OK)
    st = dnnl_port_init(&p->bw_diff_wei, c->engine, &m.wei, query(pd, dnnl_query_diff_weights_md),
                        1);
  dnnl_primitive_desc_destroy(pd);
  DNNL_CHECK(s);
  REID_TRY(st);
  if (p->has_bias) {
    DNNL_CHECK(dnnl_memory_create(&p->bw_diff_bias, &m.bias, c->engine, DNNL_MEMORY_NONE));
    p->bias_scratch = malloc(sizeof(float) * p->d.c_out);
    if (!p->bias_scratch) return reid_fail(REID_ENOMEM, "conv2d: out of memory");
  }
  p->bwd_ready = 1;
  return REID_OK;
}

static reid_status find_plan(conv2d_dnnl_cache *c, const reid_conv2d_desc *d, int has_bias,
                             conv_plan **out) {
  for (int i = 0; i < c->n_plans; i++) {
    conv_plan *p = c->plans[i];
    if (p->has_bias == has_bias && !memcmp(&p->d, d, sizeof *d)) {
      *out = p;
      return REID_OK;
    }
  }
  if (c->n_plans == c->cap_plans) {
    int cap = c->cap_plans ? 2 * c->cap_plans : 16;
    conv_plan **plans = realloc(c->plans, sizeof *plans * cap);
    if (!plans) return reid_fail(REID_ENOMEM, "conv2d: out of memory");
    c->plans = plans;
    c->cap_plans = cap;
  }
  conv_plan *p = calloc(1, sizeof *p);
  if (!p) return reid_fail(REID_ENOMEM, "conv2d: out of memory");
  p->d = *d;
  p->has_bias = has_bias;
  reid_status st = plan_build_forward(c, p);
  if (st != REID_OK) {
    plan_destroy(p);
    return st;
  }
  c->plans[c->n_plans++] = p;
  *out = p;
  return REID_OK;
}

reid_status conv2d_dnnl_forward(conv2d_dnnl_cache *c, const reid_conv2d_desc *d, const float *x,
                                const float *w, const float *bias, float *y) {
  conv_plan *p;
  REID_TRY(find_plan(c, d, bias != NULL, &p));
  REID_TRY(dnnl_port_bind(&p->f_src, c->stream, x));
  REID_TRY(dnnl_port_bind(&p->f_wei, c->stream, w));
  REID_TRY(dnnl_port_bind(&p->f_dst, c->stream, y));
  dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, dnnl_port_memory(&p->f_src)},
                             {DNNL_ARG_WEIGHTS, dnnl_port_memory(&p->f_wei)},
                             {DNNL_ARG_DST, dnnl_port_memory(&p->f_dst)},
                             {DNNL_ARG_BIAS, p->f_bias}};
  if (bias) DNNL_CHECK(dnnl_memory_set_data_handle(p->f_bias, (void *)bias));
  DNNL_CHECK(dnnl_primitive_execute(p->fwd, c->stream, bias ? 4 : 3, args));
  REID_TRY(dnnl_port_flush(&p->f_dst, c->stream));
  DNNL_CHECK(dnnl_stream_wait(c->stream));
  return REID_OK;
}

reid_status conv2d_dnnl_backward(conv2d_dnnl_cache *c, const reid_conv2d_desc *d, const float *x,
                                 const float *w, const float *dy, float *dx, float *dw,
                                 float *dbias) {
  /* the plan is keyed by the forward's bias; a caller asking for dbias had one */
  conv_plan *p;
  REID_TRY(find_plan(c, d, dbias != NULL, &p));
  if (!p->bwd_ready) REID_TRY(plan_build_backward(c, p));
  if (dx) {
    REID_TRY(dnnl_port_bind(&p->bd_diff_dst, c->stream, dy));
    REID_TRY(dnnl_port_bind(&p->bd_wei, c->stream, w));
    REID_TRY(dnnl_port_bind(&p->bd_diff_src, c->stream, dx));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_DST, dnnl_port_memory(&p->bd_diff_dst)},
                               {DNNL_ARG_WEIGHTS, dnnl_port_memory(&p->bd_wei)},
                               {DNNL_ARG_DIFF_SRC, dnnl_port_memory(&p->bd_diff_src)}};
    DNNL_CHECK(dnnl_primitive_execute(p->bwd_data, c->stream, 3, args));
    REID_TRY(dnnl_port_flush(&p->bd_diff_src, c->stream));
  }
  if (dw || dbias) {
    float *dw_target = dw;
    float *scratch_w = NULL;
    if (!dw_target) { /* dbias alone: oneDNN computes both */
      scratch_w = malloc(sizeof(float) * d->c_out * (d->c_in / (d->groups > 1 ? d->groups : 1)) *
                         d->k * d->k);
      if (!scratch_w) return reid_fail(REID_ENOMEM, "conv2d: out of memory");
      dw_target = scratch_w;
    }
    reid_status st = dnnl_port_bind(&p->bw_src, c->stream, x);
    if (st == REID_OK) st = dnnl_port_bind(&p->bw_diff_dst, c->stream, dy);
    if (st == REID_OK) st = dnnl_port_bind(&p->bw_diff_wei, c->stream, dw_target);
    if (st == REID_OK) {
      dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, dnnl_port_memory(&p->bw_src)},
                                 {DNNL_ARG_DIFF_DST, dnnl_port_memory(&p->bw_diff_dst)},
                                 {DNNL_ARG_DIFF_WEIGHTS, dnnl_port_memory(&p->bw_diff_wei)},
                                 {DNNL_ARG_DIFF_BIAS, p->bw_diff_bias}};
      if (p->has_bias) dnnl_memory_set_data_handle(p->bw_diff_bias, dbias);
      dnnl_status_t s =
          dnnl_primitive_execute(p->bwd_weights, c->stream, p->has_bias ? 4 : 3, args);
      if (s != dnnl_success)
        st = reid_fail(REID_EDEVICE, "oneDNN: convolution backward weights failed (%s)",
                       dnnl_status_text(s));
      if (st == REID_OK) st = dnnl_port_flush(&p->bw_diff_wei, c->stream);
      if (st == REID_OK && dnnl_stream_wait(c->stream) != dnnl_success)
        st = reid_fail(REID_EDEVICE, "oneDNN: stream wait failed");
    }
    free(scratch_w);
    REID_TRY(st);
  }
  DNNL_CHECK(dnnl_stream_wait(c->stream));
  return REID_OK;
}
#endif
