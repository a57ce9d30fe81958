/* Pooling ops of the CPU backend: max pooling against a naive PyTorch-style
 * reference (values and argmax, padding never chosen, ties, NaN), gradients
 * of max/average/temporal pooling by finite differences, argument errors. */
#include "backend.h"
#include "test_util.h"

typedef double (*gc_loss_fn)(void *ctx);
int gradcheck(const char *what, float *p, size_t n, const float *analytic, gc_loss_fn loss,
              void *ctx, float h, double atol, double rtol);
double gc_dot(const float *a, const float *b, size_t n);

static reid_backend *be;

/* PyTorch's CPU loop: -inf start at the first valid position, row-major, take when > or NaN. */
static void maxpool_reference(const reid_pool2d_desc *d, const float *x, float *y, int32_t *arg) {
  for (int p = 0; p < d->n * d->c; p++) {
    const float *xp = x + (size_t)p * d->h * d->w;
    for (int oh = 0; oh < d->h_out; oh++)
      for (int ow = 0; ow < d->w_out; ow++) {
        int ih0 = oh * d->stride - d->pad, iw0 = ow * d->stride - d->pad;
        const int ih1 = ih0 + d->k < d->h ? ih0 + d->k : d->h;
        const int iw1 = iw0 + d->k < d->w ? iw0 + d->k : d->w;
        if (ih0 < 0) ih0 = 0;
        if (iw0 < 0) iw0 = 0;
        float m = -INFINITY;
        int32_t idx = ih0 * d->w + iw0;
        for (int ih = ih0; ih < ih1; ih++)
          for (int iw = iw0; iw < iw1; iw++) {
            const float v = xp[ih * d->w + iw];
            if (v > m || isnan(v)) m = v, idx = ih * d->w + iw;
          }
        const size_t o = ((size_t)p * d->h_out + oh) * d->w_out + ow;
        y[o] = m;
        arg[o] = idx;
      }
  }
}

/* distinct values spaced 0.01 apart, shuffled, so +-1e-3 never changes a max */
static void fill_distinct(test_rng *rng, float *x, size_t n, float base) {
  for (size_t i = 0; i < n; i++) x[i] = base + 0.01f * (float)i;
  for (size_t i = n - 1; i > 0; i--) {
    const size_t j = test_rng_u64(rng) % (i + 1);
    const float t = x[i];
    x[i] = x[j], x[j] = t;
  }
}

typedef struct {
  reid_pool2d_desc d;
  float *x, *y, *r;
  int32_t *arg;
} mp_ctx;

static double maxpool_loss(void *p) {
  mp_ctx *c = p;
  CHECK_OK(be->ops->maxpool2d_forward(be, &c->d, c->x, c->y, c->arg));
  return gc_dot(c->y, c->r, (size_t)c->d.n * c->d.c * c->d.h_out * c->d.w_out);
}

static void check_maxpool_mode(test_rng *rng, int n, int c, int h, int w, int k, int s, int pad,
                               float base, int ceil_mode) {
  mp_ctx ctx;
  if (ceil_mode)
    CHECK_OK(reid_pool2d_desc_init_ceil(&ctx.d, n, c, h, w, k, s, pad));
  else
    CHECK_OK(reid_pool2d_desc_init(&ctx.d, n, c, h, w, k, s, pad));
  const reid_pool2d_desc *d = &ctx.d;
  const size_t in = (size_t)n * c * h * w, out = (size_t)n * c * d->h_out * d->w_out;
  ctx.x = test_alloc(in), ctx.y = test_alloc(out), ctx.r = test_alloc(out);
  ctx.arg = calloc(out, sizeof(int32_t));
  float *yref = test_alloc(out), *dx = test_alloc(in);
  int32_t *aref = calloc(out, sizeof(int32_t));
  char what[96];
  snprintf(what, sizeof what, "maxpool [%d,%d,%d,%d] k%d s%d p%d%s base %g", n, c, h, w, k, s, pad,
           ceil_mode ? " ceil" : "", base);

  /* distinct values (all negative when base < 0: padding must never win) */
  fill_distinct(rng, ctx.x, in, base);
  CHECK_OK(be->ops->maxpool2d_forward(be, d, ctx.x, ctx.y, ctx.arg));
  maxpool_reference(d, ctx.x, yref, aref);
  CHECK_CLOSE(ctx.y, yref, out, 1e-30, 0, what);
  CHECK(!memcmp(ctx.arg, aref, out * sizeof(int32_t)), "%s: argmax", what);

  /* ties (few distinct values) and a NaN: first max wins, NaN propagates */
  for (size_t i = 0; i < in; i++) ctx.x[i] = base + (float)test_rng_int(rng, 0, 2);
  for (int i = 0; i < 4; i++) ctx.x[test_rng_u64(rng) % in] = NAN; /* interior and border */
  ctx.x[(size_t)(h / 2) * w + w / 2] = NAN;
  CHECK_OK(be->ops->maxpool2d_forward(be, d, ctx.x, ctx.y, ctx.arg));
  maxpool_reference(d, ctx.x, yref, aref);
  int same = 1;
  for (size_t i = 0; i < out; i++)
    same &= (ctx.y[i] == yref[i] || (isnan(ctx.y[i]) && isnan(yref[i]))) && ctx.arg[i] == aref[i];
  CHECK(same, "%s: ties / NaN", what);

  /* gradient */
  fill_distinct(rng, ctx.x, in, base);
  test_fill_uniform(rng, ctx.r, out, -1, 1);
  maxpool_loss(&ctx);
  CHECK_OK(be->ops->maxpool2d_backward(be, d, ctx.arg, ctx.r, dx));
  CHECK(gradcheck(what, ctx.x, in, dx, maxpool_loss, &ctx, 1e-3f, 1e-3, 1e-2) == 0, "%s gradient",
        what);

  free(ctx.x), free(ctx.y), free(ctx.r), free(ctx.arg), free(yref), free(dx), free(aref);
}

typedef struct {
  int a, b, c; /* avgpool: n, c, hw; temporal: b, t, d */
  float *x, *y, *r;
} mean_ctx;

static void check_maxpool(test_rng *rng, int n, int c, int h, int w, int k, int s, int pad,
                          float base) {
  check_maxpool_mode(rng, n, c, h, w, k, s, pad, base, 0);
}

static double avgpool_loss(void *p) {
  mean_ctx *m = p;
  CHECK_OK(be->ops->avgpool_global_forward(be, m->a, m->b, m->c, m->x, m->y));
  return gc_dot(m->y, m->r, (size_t)m->a * m->b);
}

static double temporal_loss(void *p) {
  mean_ctx *m = p;
  CHECK_OK(be->ops->temporal_mean_forward(be, m->a, m->b, m->c, m->x, m->y));
  return gc_dot(m->y, m->r, (size_t)m->a * m->c);
}

static void check_means(test_rng *rng) {
  /* global average pooling [3, 5, 11] -> [3, 5] */
  {
    mean_ctx m = {3, 5, 11, test_alloc(165), test_alloc(15), test_alloc(15)};
    float *ref = test_alloc(15), *dx = test_alloc(165);
    test_fill_uniform(rng, m.x, 165, -1, 1);
    test_fill_uniform(rng, m.r, 15, -1, 1);
    CHECK_OK(be->ops->avgpool_global_forward(be, 3, 5, 11, m.x, m.y));
    for (int p = 0; p < 15; p++) {
      double s = 0;
      for (int j = 0; j < 11; j++) s += m.x[p * 11 + j];
      ref[p] = (float)(s / 11);
    }
    CHECK_CLOSE(m.y, ref, 15, 1e-6, 1e-6, "avgpool_global forward");
    CHECK_OK(be->ops->avgpool_global_backward(be, 3, 5, 11, m.r, dx));
    CHECK(gradcheck("avgpool_global dx", m.x, 165, dx, avgpool_loss, &m, 1e-3f, 1e-3, 1e-2) == 0,
          "avgpool gradient");
    free(m.x), free(m.y), free(m.r), free(ref), free(dx);
  }
  /* temporal mean [3, 4, 7] -> [3, 7] */
  {
    mean_ctx m = {3, 4, 7, test_alloc(84), test_alloc(21), test_alloc(21)};
    float *ref = test_alloc(21), *dx = test_alloc(84);
    test_fill_uniform(rng, m.x, 84, -1, 1);
    test_fill_uniform(rng, m.r, 21, -1, 1);
    CHECK_OK(be->ops->temporal_mean_forward(be, 3, 4, 7, m.x, m.y));
    for (int b = 0; b < 3; b++)
      for (int j = 0; j < 7; j++) {
        double s = 0;
        for (int t = 0; t < 4; t++) s += m.x[(b * 4 + t) * 7 + j];
        ref[b * 7 + j] = (float)(s / 4);
      }
    CHECK_CLOSE(m.y, ref, 21, 1e-6, 1e-6, "temporal_mean forward");
    CHECK_OK(be->ops->temporal_mean_backward(be, 3, 4, 7, m.r, dx));
    CHECK(gradcheck("temporal_mean dx", m.x, 84, dx, temporal_loss, &m, 1e-3f, 1e-3, 1e-2) == 0,
          "temporal mean gradient");
    free(m.x), free(m.y), free(m.r), free(ref), free(dx);
  }
}

static void check_errors(void) {
  reid_pool2d_desc d;
  CHECK_OK(reid_pool2d_desc_init(&d, 1, 1, 5, 5, 3, 2, 1));
  float x[25] = {0}, y[9], dx[25];
  int32_t arg[9] = {0};
  reid_pool2d_desc bad = d;
  bad.h_out = 4;
  CHECK(be->ops->maxpool2d_forward(be, &bad, x, y, arg) == REID_EINVAL, "inconsistent descriptor");
  CHECK(strstr(reid_last_error(), "maxpool2d_forward") != NULL, "message: %s", reid_last_error());
  CHECK(be->ops->maxpool2d_forward(be, NULL, x, y, arg) == REID_EINVAL, "NULL descriptor");
  CHECK(be->ops->maxpool2d_forward(be, &d, x, y, NULL) == REID_EINVAL, "NULL argmax");
  arg[4] = 25;
  CHECK(be->ops->maxpool2d_backward(be, &d, arg, y, dx) == REID_EINVAL, "argmax out of range");
  CHECK(strstr(reid_last_error(), "maxpool2d_backward") != NULL, "message: %s", reid_last_error());
  CHECK(be->ops->avgpool_global_forward(be, 1, -1, 4, x, y) == REID_EINVAL, "negative c");
  CHECK(be->ops->avgpool_global_backward(be, 1, 1, 4, NULL, dx) == REID_EINVAL, "NULL dy");
  CHECK(be->ops->temporal_mean_forward(be, 1, 0, 4, x, y) == REID_EINVAL, "zero t");
  CHECK(strstr(reid_last_error(), "temporal_mean_forward") != NULL, "message: %s",
        reid_last_error());
  CHECK(be->ops->temporal_mean_backward(be, 1, 2, 4, NULL, dx) == REID_EINVAL, "NULL dy");
}

int main(void) {
  if (reid_backend_create("cpu", 0, &be) != REID_OK) {
    fprintf(stderr, "cpu backend: %s\n", reid_last_error());
    return 1;
  }
  test_rng rng = test_rng_make(3);
  check_maxpool(&rng, 2, 3, 9, 7, 3, 2, 1, -50.0f); /* ResNet stem window, odd sizes, all < 0 */
  check_maxpool(&rng, 1, 2, 10, 11, 3, 2, 1, 0.5f);
  check_maxpool(&rng, 1, 2, 6, 13, 3, 1, 1, -9.0f);  /* stride 1 */
  check_maxpool(&rng, 2, 1, 8, 9, 2, 2, 0, 0.0f);    /* 2x2/2 */
  check_maxpool(&rng, 1, 1, 11, 13, 5, 3, 2, -7.0f); /* generic stride */
  check_maxpool(&rng, 1, 3, 3, 2, 3, 2, 1, -1.0f);   /* tiny plane, no interior */
  check_maxpool(&rng, 2, 8, 33, 37, 3, 2, 1, -1.0f); /* large enough to run threaded */
  /* ceil mode (fast-reid's stem, MaxPool2d(3, 2, ceil_mode=True)): the last window is clipped */
  check_maxpool_mode(&rng, 2, 3, 16, 12, 3, 2, 0, -5.0f, 1);
  check_maxpool_mode(&rng, 1, 2, 9, 10, 3, 2, 0, 0.5f, 1);
  check_maxpool_mode(&rng, 1, 2, 10, 7, 3, 2, 1, -2.0f, 1);
  reid_pool2d_desc dc;
  CHECK_OK(reid_pool2d_desc_init_ceil(&dc, 1, 1, 16, 12, 3, 2, 0));
  CHECK(dc.h_out == 8 && dc.w_out == 6, "ceil mode 16x12 -> %dx%d, PyTorch 8x6", dc.h_out,
        dc.w_out);
  CHECK_OK(reid_pool2d_desc_init_ceil(&dc, 1, 1, 5, 5, 2, 2, 1));
  CHECK(dc.h_out == 3,
        "ceil mode: no window starting in the padding (5, k2 s2 p1 -> %d, PyTorch 3)", dc.h_out);
  check_means(&rng);
  check_errors();
  reid_backend_destroy(be);
  return test_finish("test_ops_pool");
}
