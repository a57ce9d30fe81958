/* oneDNN convolutions for the training path: NCHW fp32 in and out, the
 * primitive's preferred (blocked) layouts inside, one cached set of
 * primitives per shape. Not thread-safe: one cache per backend. */
#pragma once

#include "backend.h"

#if HAVE_DNNL
#include "dnnl_util.h"

typedef struct conv2d_dnnl_cache conv2d_dnnl_cache;

reid_status conv2d_dnnl_cache_create(conv2d_dnnl_cache **out);
void conv2d_dnnl_cache_destroy(conv2d_dnnl_cache *cache);
dnnl_engine_t conv2d_dnnl_engine(conv2d_dnnl_cache *cache);
dnnl_stream_t conv2d_dnnl_stream(conv2d_dnnl_cache *cache);

reid_status conv2d_dnnl_forward(conv2d_dnnl_cache *cache, const reid_conv2d_desc *d, const float *x,
                                const float *w, const float *bias, float *y);
reid_status conv2d_dnnl_backward(conv2d_dnnl_cache *cache, const reid_conv2d_desc *d,
                                 const float *x, const float *w, const float *dy, float *dx,
                                 float *dw, float *dbias);
#endif
