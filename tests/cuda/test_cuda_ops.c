/* CUDA backend vs CPU backend, op by op, on fresh random inputs, forward
 * and backward: memory, elementwise, pooling, batch norm, instance norm, channel
 * copies and optimisers.
 * Device outputs are poisoned with NaN before every call, so an element the
 * kernel fails to write fails the comparison.
 *
 * Tolerances (|gpu - cpu| <= atol + rtol |cpu|):
 *   relu, add, scale, fill, copy, max pooling, argmax   exact (same single roundings)
 *   accumulate, temporal mean, optimisers, avg pool     rtol 1e-6 (same order of operations)
 *   batch norm, instance norm                           rtol 1e-5, atol 1e-5 max|ref|
 *     (statistics in double on both sides; float sums in different orders)
 *   channel copy (concat, slices)                       exact */
#include "cuda_test.h"

/* exact equality, NaN equal to NaN */
static void check_exact(const char *what, const float *got, const float *ref, size_t n) {
  size_t bad = n;
  for (size_t i = 0; i < n && bad == n; i++)
    if (!(got[i] == ref[i] || (isnan(got[i]) && isnan(ref[i])))) bad = i;
  CHECK(bad == n, "%s: element %zu: %.9g vs %.9g", what, bad, bad < n ? (double)got[bad] : 0.0,
        bad < n ? (double)ref[bad] : 0.0);
}

static void check_dev_exact(const char *what, const float *d, const float *ref, size_t n) {
  float *h = host_from(d, n);
  check_exact(what, h, ref, n);
  free(h);
}

/* ---- memory ---- */

static void test_memory(test_rng *rng) {
  const size_t n = 10007;
  float *h = test_alloc(n);
  test_fill_uniform(rng, h, n, -5, 5);
  float *d = dev_from(h, n);
  check_dev_exact("upload/download round trip", d, h, n);
  float *e = dev_poisoned(n);
  CHECK_OK(gpu->ops->copy(gpu, e, d, sizeof(float) * n));
  check_dev_exact("device copy", e, h, n);
  /* overlapping copy keeps memmove semantics: shift right by 3 */
  float *ref = host_copy(h, n);
  memmove(ref + 3, ref, sizeof(float) * (n - 3));
  CHECK_OK(gpu->ops->copy(gpu, d + 3, d, sizeof(float) * (n - 3)));
  check_dev_exact("overlapping copy", d, ref, n);
  for (size_t i = 0; i < n; i++) ref[i] = 0.375f;
  CHECK_OK(gpu->ops->fill(gpu, e, n, 0.375f));
  check_dev_exact("fill", e, ref, n);
  CHECK_OK(gpu->ops->synchronize(gpu));
  void *zero = gpu->ops->alloc(gpu, 0);
  CHECK(zero != NULL, "alloc(0) gives a pointer");
  dev_free(zero);
  CHECK(gpu->ops->upload(gpu, NULL, h, 4) == REID_EINVAL, "upload to NULL");
  CHECK(gpu->ops->download(gpu, h, NULL, 4) == REID_EINVAL, "download from NULL");
  dev_free(d), dev_free(e), free(h), free(ref);
}

/* ---- elementwise ---- */

static void test_elementwise(test_rng *rng) {
  const size_t n = 100003;
  float *x = test_alloc(n), *y = test_alloc(n), *r = test_alloc(n);
  test_fill_uniform(rng, x, n, -3, 3);
  test_fill_uniform(rng, y, n, -3, 3);
  x[5] = NAN, x[6] = -0.0f, x[7] = 0.0f; /* relu keeps NaN as PyTorch does */
  float *dx = dev_from(x, n), *dy = dev_from(y, n), *out = dev_poisoned(n);

  CHECK_OK(cpu->ops->relu_forward(cpu, n, x, r));
  CHECK_OK(gpu->ops->relu_forward(gpu, n, dx, out));
  check_dev_exact("relu_forward", out, r, n);
  float *fwd = host_copy(r, n); /* y of the relu */
  float *dfwd = dev_from(fwd, n);
  gpu->ops->fill(gpu, out, n, NAN);
  CHECK_OK(cpu->ops->relu_backward(cpu, n, fwd, y, r));
  CHECK_OK(gpu->ops->relu_backward(gpu, n, dfwd, dy, out));
  check_dev_exact("relu_backward", out, r, n);

  x[5] = 1.0f;
  gpu->ops->upload(gpu, dx, x, sizeof(float) * n);
  gpu->ops->fill(gpu, out, n, NAN);
  CHECK_OK(cpu->ops->add(cpu, n, x, y, r));
  CHECK_OK(gpu->ops->add(gpu, n, dx, dy, out));
  check_dev_exact("add", out, r, n);
  CHECK_OK(gpu->ops->add(gpu, n, dx, dy, dx)); /* y may alias a */
  check_dev_exact("add in place", dx, r, n);

  gpu->ops->upload(gpu, dx, x, sizeof(float) * n);
  memcpy(r, y, sizeof(float) * n);
  CHECK_OK(cpu->ops->accumulate(cpu, n, -0.7f, x, r));
  CHECK_OK(gpu->ops->accumulate(gpu, n, -0.7f, dx, dy));
  check_dev("accumulate", dy, r, n, 0, 1e-6);

  memcpy(r, x, sizeof(float) * n);
  CHECK_OK(cpu->ops->scale(cpu, n, 1.7f, r));
  CHECK_OK(gpu->ops->scale(gpu, n, 1.7f, dx));
  check_dev_exact("scale", dx, r, n);
  CHECK(gpu->ops->add(gpu, n, NULL, dy, out) == REID_EINVAL, "add with NULL input");
  CHECK_OK(gpu->ops->relu_forward(gpu, 0, NULL, NULL)); /* n = 0 is a no-op */
  dev_free(dx), dev_free(dy), dev_free(out), dev_free(dfwd);
  free(x), free(y), free(r), free(fwd);
}

/* ---- pooling ---- */

static void test_maxpool_mode(test_rng *rng, int n, int c, int h, int w, int k, int s, int pad,
                              int with_nan, int ceil_mode) {
  reid_pool2d_desc d;
  if (ceil_mode)
    CHECK_OK(reid_pool2d_desc_init_ceil(&d, n, c, h, w, k, s, pad));
  else
    CHECK_OK(reid_pool2d_desc_init(&d, n, c, h, w, k, s, pad));
  const size_t in = (size_t)n * c * h * w, out = (size_t)n * c * d.h_out * d.w_out;
  float *x = test_alloc(in), *y = test_alloc(out), *g = test_alloc(out), *dx = test_alloc(in);
  int32_t *am = malloc(sizeof(int32_t) * out), *am_gpu = malloc(sizeof(int32_t) * out);
  for (size_t i = 0; i < in; i++) x[i] = (float)test_rng_int(rng, -8, 8) * 0.25f; /* ties */
  if (with_nan) x[in / 3] = NAN;
  test_fill_uniform(rng, g, out, -1, 1);
  CHECK_OK(cpu->ops->maxpool2d_forward(cpu, &d, x, y, am));
  CHECK_OK(cpu->ops->maxpool2d_backward(cpu, &d, am, g, dx));

  float *gx = dev_from(x, in), *gy = dev_poisoned(out), *gg = dev_from(g, out),
        *gdx = dev_poisoned(in);
  int32_t *gam = dev_alloc(sizeof(int32_t) * out);
  for (size_t i = 0; i < out; i++) am_gpu[i] = -7;
  gpu->ops->upload(gpu, gam, am_gpu, sizeof(int32_t) * out);
  CHECK_OK(gpu->ops->maxpool2d_forward(gpu, &d, gx, gy, gam));
  CHECK_OK(gpu->ops->maxpool2d_backward(gpu, &d, gam, gg, gdx));
  char what[128];
  snprintf(what, sizeof what, "maxpool [%d,%d,%d,%d] k%d s%d p%d%s%s", n, c, h, w, k, s, pad,
           ceil_mode ? " ceil" : "", with_nan ? " NaN" : "");
  check_dev_exact(what, gy, y, out);
  gpu->ops->download(gpu, am_gpu, gam, sizeof(int32_t) * out);
  size_t bad = out;
  for (size_t i = 0; i < out && bad == out; i++)
    if (am_gpu[i] != am[i]) bad = i;
  CHECK(bad == out, "%s: argmax %zu: %d vs %d", what, bad, bad < out ? am_gpu[bad] : 0,
        bad < out ? am[bad] : 0);
  strncat(what, " backward", sizeof what - strlen(what) - 1);
  check_dev(what, gdx, dx, in, 0, 1e-6);
  /* a corrupted argmax is refused, as on the CPU */
  am[out / 2] = h * w;
  gpu->ops->upload(gpu, gam, am, sizeof(int32_t) * out);
  CHECK(gpu->ops->maxpool2d_backward(gpu, &d, gam, gg, gdx) == REID_EINVAL, "bad argmax refused");
  dev_free(gx), dev_free(gy), dev_free(gg), dev_free(gdx), dev_free(gam);
  free(x), free(y), free(g), free(dx), free(am), free(am_gpu);
}

static void test_maxpool_case(test_rng *rng, int n, int c, int h, int w, int k, int s, int pad,
                              int with_nan) {
  test_maxpool_mode(rng, n, c, h, w, k, s, pad, with_nan, 0);
}

static void test_pooling(test_rng *rng) {
  test_maxpool_case(rng, 2, 3, 17, 13, 3, 2, 1, 0);
  test_maxpool_case(rng, 1, 2, 8, 8, 2, 2, 0, 1);
  test_maxpool_case(rng, 4, 64, 64, 32, 3, 2, 1, 0); /* the ResNet stem at 256x128 / 2 */
  test_maxpool_case(rng, 1, 1, 5, 7, 3, 1, 1, 1);
  /* ceil mode (fast-reid's stem, MaxPool2d(3, 2, ceil_mode=True)): clipped last windows */
  test_maxpool_mode(rng, 2, 8, 32, 16, 3, 2, 0, 0, 1);
  test_maxpool_mode(rng, 1, 3, 9, 10, 3, 2, 0, 1, 1);
  reid_pool2d_desc bad = {1, 1, 4, 4, 3, 2, 1, 9, 9, 0};
  float *p = dev_poisoned(16);
  CHECK(gpu->ops->maxpool2d_forward(gpu, &bad, p, p, (int32_t *)p) == REID_EINVAL,
        "bad descriptor refused");
  dev_free(p);

  /* global average pooling [n, c, hw] and the temporal mean [b, t, d] */
  const int n = 6, c = 37, hw = 129, b = 3, t = 4, dd = 2048;
  float *x = test_alloc((size_t)n * c * hw), *y = test_alloc((size_t)n * c);
  float *dx = test_alloc((size_t)n * c * hw), *dy = test_alloc((size_t)n * c);
  test_fill_uniform(rng, x, (size_t)n * c * hw, -2, 2);
  test_fill_uniform(rng, dy, (size_t)n * c, -2, 2);
  float *gx = dev_from(x, (size_t)n * c * hw), *gy = dev_poisoned((size_t)n * c);
  float *gdy = dev_from(dy, (size_t)n * c), *gdx = dev_poisoned((size_t)n * c * hw);
  CHECK_OK(cpu->ops->avgpool_global_forward(cpu, n, c, hw, x, y));
  CHECK_OK(gpu->ops->avgpool_global_forward(gpu, n, c, hw, gx, gy));
  check_dev("avgpool_global_forward", gy, y, (size_t)n * c, 0, 1e-6);
  CHECK_OK(cpu->ops->avgpool_global_backward(cpu, n, c, hw, dy, dx));
  CHECK_OK(gpu->ops->avgpool_global_backward(gpu, n, c, hw, gdy, gdx));
  check_dev_exact("avgpool_global_backward", gdx, dx, (size_t)n * c * hw);
  dev_free(gx), dev_free(gy), dev_free(gdy), dev_free(gdx);
  free(x), free(y), free(dx), free(dy);

  const size_t big = (size_t)b * t * dd, small = (size_t)b * dd;
  x = test_alloc(big), y = test_alloc(small), dx = test_alloc(big), dy = test_alloc(small);
  test_fill_uniform(rng, x, big, -2, 2);
  test_fill_uniform(rng, dy, small, -2, 2);
  gx = dev_from(x, big), gy = dev_poisoned(small), gdy = dev_from(dy, small),
  gdx = dev_poisoned(big);
  CHECK_OK(cpu->ops->temporal_mean_forward(cpu, b, t, dd, x, y));
  CHECK_OK(gpu->ops->temporal_mean_forward(gpu, b, t, dd, gx, gy));
  check_dev("temporal_mean_forward", gy, y, small, 0, 1e-6);
  CHECK_OK(cpu->ops->temporal_mean_backward(cpu, b, t, dd, dy, dx));
  CHECK_OK(gpu->ops->temporal_mean_backward(gpu, b, t, dd, gdy, gdx));
  check_dev("temporal_mean_backward", gdx, dx, big, 0, 1e-6);
  dev_free(gx), dev_free(gy), dev_free(gdy), dev_free(gdx);
  free(x), free(y), free(dx), free(dy);
}

/* ---- batch norm ---- */

#define BN_EPS      1e-5f
#define BN_MOMENTUM 0.1f

static void test_bn_case(test_rng *rng, int n, int c, int hw, float offset, float spread) {
  const size_t len = (size_t)n * c * hw;
  float *x = test_alloc(len), *dy = test_alloc(len), *gamma = test_alloc(c), *beta = test_alloc(c);
  float *rm = test_alloc(c), *rv = test_alloc(c);
  test_fill_uniform(rng, x, len, offset - spread, offset + spread);
  test_fill_uniform(rng, dy, len, -1, 1);
  test_fill_uniform(rng, gamma, c, 0.5f, 1.5f);
  test_fill_uniform(rng, beta, c, -0.5f, 0.5f);
  test_fill_uniform(rng, rm, c, -0.2f, 0.2f);
  test_fill_uniform(rng, rv, c, 0.5f, 2.0f);
  char what[160];
  const char *names[] = {"y",           "save_mean", "save_invstd", "running_mean",
                         "running_var", "dx",        "dgamma",      "dbeta"};
  /* CPU reference */
  float *y = test_alloc(len), *sm = test_alloc(c), *si = test_alloc(c), *rm1 = host_copy(rm, c),
        *rv1 = host_copy(rv, c), *dx = test_alloc(len), *dg = test_alloc(c), *db = test_alloc(c);
  CHECK_OK(cpu->ops->batchnorm_forward_train(cpu, n, c, hw, x, gamma, beta, BN_MOMENTUM, BN_EPS,
                                             rm1, rv1, y, sm, si));
  CHECK_OK(cpu->ops->batchnorm_backward(cpu, n, c, hw, x, gamma, sm, si, dy, dx, dg, db));
  /* GPU */
  float *gx = dev_from(x, len), *gdy = dev_from(dy, len), *gg = dev_from(gamma, c),
        *gb = dev_from(beta, c), *grm = dev_from(rm, c), *grv = dev_from(rv, c);
  float *gy = dev_poisoned(len), *gsm = dev_poisoned(c), *gsi = dev_poisoned(c),
        *gdx = dev_poisoned(len), *gdg = dev_poisoned(c), *gdb = dev_poisoned(c);
  CHECK_OK(gpu->ops->batchnorm_forward_train(gpu, n, c, hw, gx, gg, gb, BN_MOMENTUM, BN_EPS, grm,
                                             grv, gy, gsm, gsi));
  CHECK_OK(gpu->ops->batchnorm_backward(gpu, n, c, hw, gx, gg, gsm, gsi, gdy, gdx, gdg, gdb));
  const float *refs[] = {y, sm, si, rm1, rv1, dx, dg, db};
  const float *gots[] = {gy, gsm, gsi, grm, grv, gdx, gdg, gdb};
  for (int i = 0; i < 8; i++) {
    const size_t m = i == 0 || i == 5 ? len : (size_t)c;
    snprintf(what, sizeof what, "bn train [%d,%d,%d] offset %g: %s", n, c, hw, (double)offset,
             names[i]);
    check_dev(what, gots[i], refs[i], m, 1e-5 * max_abs(refs[i], m), 1e-5);
  }
  /* backward with only some gradients: dx alone, then dgamma/dbeta alone */
  gpu->ops->fill(gpu, gdx, len, NAN);
  CHECK_OK(gpu->ops->batchnorm_backward(gpu, n, c, hw, gx, gg, gsm, gsi, gdy, gdx, NULL, NULL));
  snprintf(what, sizeof what, "bn train [%d,%d,%d]: dx alone", n, c, hw);
  check_dev(what, gdx, dx, len, 1e-5 * max_abs(dx, len), 1e-5);

  /* eval mode with the (updated) running statistics */
  float *ye = test_alloc(len), *dxe = test_alloc(len), *dge = test_alloc(c), *dbe = test_alloc(c);
  CHECK_OK(cpu->ops->batchnorm_forward_eval(cpu, n, c, hw, x, gamma, beta, rm1, rv1, BN_EPS, ye));
  CHECK_OK(cpu->ops->batchnorm_backward_eval(cpu, n, c, hw, x, gamma, rm1, rv1, BN_EPS, dy, dxe,
                                             dge, dbe));
  gpu->ops->upload(gpu, grm, rm1, sizeof(float) * c);
  gpu->ops->upload(gpu, grv, rv1, sizeof(float) * c);
  gpu->ops->fill(gpu, gy, len, NAN), gpu->ops->fill(gpu, gdx, len, NAN);
  gpu->ops->fill(gpu, gdg, c, NAN), gpu->ops->fill(gpu, gdb, c, NAN);
  CHECK_OK(gpu->ops->batchnorm_forward_eval(gpu, n, c, hw, gx, gg, gb, grm, grv, BN_EPS, gy));
  CHECK_OK(gpu->ops->batchnorm_backward_eval(gpu, n, c, hw, gx, gg, grm, grv, BN_EPS, gdy, gdx, gdg,
                                             gdb));
  snprintf(what, sizeof what, "bn eval [%d,%d,%d]: y", n, c, hw);
  check_dev(what, gy, ye, len, 1e-6 * max_abs(ye, len), 1e-6);
  snprintf(what, sizeof what, "bn eval [%d,%d,%d]: dx", n, c, hw);
  check_dev(what, gdx, dxe, len, 1e-6 * max_abs(dxe, len), 1e-6);
  snprintf(what, sizeof what, "bn eval [%d,%d,%d]: dgamma", n, c, hw);
  check_dev(what, gdg, dge, c, 1e-5 * max_abs(dge, c), 1e-5);
  snprintf(what, sizeof what, "bn eval [%d,%d,%d]: dbeta", n, c, hw);
  check_dev(what, gdb, dbe, c, 1e-5 * max_abs(dbe, c), 1e-5);
  /* dbeta without dgamma: x may be NULL */
  gpu->ops->fill(gpu, gdb, c, NAN);
  CHECK_OK(gpu->ops->batchnorm_backward_eval(gpu, n, c, hw, NULL, gg, NULL, grv, BN_EPS, gdy, NULL,
                                             NULL, gdb));
  check_dev("bn eval: dbeta alone", gdb, dbe, c, 1e-5 * max_abs(dbe, c), 1e-5);

  float *p[] = {gx, gdy, gg, gb, grm, grv, gy, gsm, gsi, gdx, gdg, gdb};
  for (int i = 0; i < 12; i++) dev_free(p[i]);
  float *h[] = {x, dy, gamma, beta, rm, rv, y, sm, si, rm1, rv1, dx, dg, db, ye, dxe, dge, dbe};
  for (int i = 0; i < 18; i++) free(h[i]);
}

static void test_batchnorm(test_rng *rng) {
  test_bn_case(rng, 8, 16, 35, 3.0f, 1.0f); /* offset: the mean must not cancel */
  test_bn_case(rng, 64, 32, 1, 0.0f, 2.0f); /* BatchNorm1d */
  test_bn_case(rng, 3, 5, 1000, -1.0f, 0.5f);
  test_bn_case(rng, 16, 64, 64 * 32, 0.5f, 1.0f); /* the ResNet stem at 128x64 */
  float *p = dev_poisoned(4);
  CHECK(gpu->ops->batchnorm_forward_train(gpu, 1, 2, 1, p, p, p, 0.1f, 1e-5f, p, p, p, p, p) ==
            REID_EINVAL,
        "training with one value per channel is refused");
  CHECK(strstr(reid_last_error(), "more than 1 value") != NULL, "message: %s", reid_last_error());
  CHECK(gpu->ops->batchnorm_forward_eval(gpu, 0, 2, 1, p, p, p, p, p, 1e-5f, p) == REID_EINVAL,
        "n = 0 refused");
  dev_free(p);
}

/* ---- instance norm, channel copy ---- */

static void test_in_case(test_rng *rng, int n, int c, int hw, float offset, float spread) {
  const size_t len = (size_t)n * c * hw, planes = (size_t)n * c;
  float *x = test_alloc(len), *dy = test_alloc(len), *gamma = test_alloc(c), *beta = test_alloc(c);
  test_fill_uniform(rng, x, len, offset - spread, offset + spread);
  test_fill_uniform(rng, dy, len, -1, 1);
  test_fill_uniform(rng, gamma, c, 0.5f, 1.5f);
  test_fill_uniform(rng, beta, c, -0.5f, 0.5f);
  float *y = test_alloc(len), *sm = test_alloc(planes), *si = test_alloc(planes),
        *dx = test_alloc(len), *dg = test_alloc(c), *db = test_alloc(c);
  CHECK_OK(cpu->ops->instancenorm_forward(cpu, n, c, hw, x, gamma, beta, BN_EPS, y, sm, si));
  CHECK_OK(cpu->ops->instancenorm_backward(cpu, n, c, hw, x, gamma, sm, si, dy, dx, dg, db));
  float *gx = dev_from(x, len), *gdy = dev_from(dy, len), *gg = dev_from(gamma, c),
        *gb = dev_from(beta, c);
  float *gy = dev_poisoned(len), *gsm = dev_poisoned(planes), *gsi = dev_poisoned(planes),
        *gdx = dev_poisoned(len), *gdg = dev_poisoned(c), *gdb = dev_poisoned(c);
  CHECK_OK(gpu->ops->instancenorm_forward(gpu, n, c, hw, gx, gg, gb, BN_EPS, gy, gsm, gsi));
  CHECK_OK(gpu->ops->instancenorm_backward(gpu, n, c, hw, gx, gg, gsm, gsi, gdy, gdx, gdg, gdb));
  const char *names[] = {"y", "save_mean", "save_invstd", "dx", "dgamma", "dbeta"};
  const float *refs[] = {y, sm, si, dx, dg, db};
  const float *gots[] = {gy, gsm, gsi, gdx, gdg, gdb};
  const size_t sizes[] = {len, planes, planes, len, (size_t)c, (size_t)c};
  char what[160];
  for (int i = 0; i < 6; i++) {
    snprintf(what, sizeof what, "instance norm [%d,%d,%d] offset %g: %s", n, c, hw, (double)offset,
             names[i]);
    check_dev(what, gots[i], refs[i], sizes[i], 1e-5 * max_abs(refs[i], sizes[i]), 1e-5);
  }
  /* dx alone, then dgamma / dbeta alone */
  gpu->ops->fill(gpu, gdx, len, NAN);
  CHECK_OK(gpu->ops->instancenorm_backward(gpu, n, c, hw, gx, gg, gsm, gsi, gdy, gdx, NULL, NULL));
  snprintf(what, sizeof what, "instance norm [%d,%d,%d]: dx alone", n, c, hw);
  check_dev(what, gdx, dx, len, 1e-5 * max_abs(dx, len), 1e-5);
  gpu->ops->fill(gpu, gdg, c, NAN), gpu->ops->fill(gpu, gdb, c, NAN);
  CHECK_OK(gpu->ops->instancenorm_backward(gpu, n, c, hw, gx, gg, gsm, gsi, gdy, NULL, gdg, gdb));
  snprintf(what, sizeof what, "instance norm [%d,%d,%d]: dgamma alone", n, c, hw);
  check_dev(what, gdg, dg, c, 1e-5 * max_abs(dg, c), 1e-5);
  float *p[] = {gx, gdy, gg, gb, gy, gsm, gsi, gdx, gdg, gdb};
  for (int i = 0; i < 10; i++) dev_free(p[i]);
  float *h[] = {x, dy, gamma, beta, y, sm, si, dx, dg, db};
  for (int i = 0; i < 10; i++) free(h[i]);
}

/* IBN-a's split and merge: channels [c0, c0 + c) of a [n, sc, hw] tensor into another */
static void test_channel_copy_case(test_rng *rng, int n, int hw, int c, int sc, int s0, int dc,
                                   int d0) {
  const size_t slen = (size_t)n * sc * hw, dlen = (size_t)n * dc * hw;
  float *src = test_alloc(slen), *dst = test_alloc(dlen);
  test_fill_uniform(rng, src, slen, -3, 3);
  test_fill_uniform(rng, dst, dlen, -3, 3);
  float *gs = dev_from(src, slen), *gd = dev_from(dst, dlen); /* untouched channels must stay */
  CHECK_OK(cpu->ops->channel_copy(cpu, n, hw, c, src, sc, s0, dst, dc, d0));
  CHECK_OK(gpu->ops->channel_copy(gpu, n, hw, c, gs, sc, s0, gd, dc, d0));
  char what[128];
  snprintf(what, sizeof what, "channel_copy n%d hw%d: %d of %d from %d to %d of %d from %d", n, hw,
           c, sc, s0, dc, d0, 0);
  check_dev_exact(what, gd, dst, dlen);
  dev_free(gs), dev_free(gd), free(src), free(dst);
}

static void test_instancenorm(test_rng *rng) {
  test_in_case(rng, 4, 6, 35, 3.0f, 1.0f); /* offset: the mean must not cancel */
  test_in_case(rng, 3, 32, 16 * 8, 0.0f, 2.0f);
  test_in_case(rng, 2, 5, 1000, -1.0f, 0.5f);
  test_in_case(rng, 8, 32, 64 * 32, 0.5f, 1.0f); /* IBN-a's layer1 half at 256x128 */
  test_channel_copy_case(rng, 3, 35, 4, 10, 6, 7, 2);
  test_channel_copy_case(rng, 2, 64, 32, 32, 0, 64, 32); /* concat's second half */
  float *p = dev_poisoned(8);
  CHECK(gpu->ops->instancenorm_forward(gpu, 0, 2, 4, p, p, p, BN_EPS, p, p, p) == REID_EINVAL,
        "instance norm: n = 0 refused");
  CHECK(gpu->ops->channel_copy(gpu, 1, 2, 3, p, 3, 1, p, 4, 0) == REID_EINVAL,
        "channel_copy: a block past the source's channels refused");
  CHECK(strstr(reid_last_error(), "channel_copy") != NULL, "message: %s", reid_last_error());
  dev_free(p);
}

/* ---- optimisers ---- */

static void test_optim_case(test_rng *rng, int adam, float wd, int variant) {
  const size_t n = 50001;
  float *p = test_alloc(n), *m = test_alloc(n), *v = test_alloc(n), *g = test_alloc(n);
  test_fill_uniform(rng, p, n, -1, 1);
  float *gp = dev_from(p, n), *gm = dev_from(m, n), *gv = dev_from(v, n), *gg = dev_alloc(4 * n);
  for (int step = 1; step <= 3; step++) {
    test_fill_uniform(rng, g, n, -0.1f, 0.1f);
    g[step] = 0.0f;
    gpu->ops->upload(gpu, gg, g, sizeof(float) * n);
    if (adam) {
      CHECK_OK(
          cpu->ops->adam_update(cpu, n, p, g, m, v, 1e-3f, 0.9f, 0.999f, 1e-8f, wd, variant, step));
      CHECK_OK(gpu->ops->adam_update(gpu, n, gp, gg, gm, gv, 1e-3f, 0.9f, 0.999f, 1e-8f, wd,
                                     variant, step));
    } else {
      const float mu = variant ? 0.9f : 0.0f;
      CHECK_OK(cpu->ops->sgd_update(cpu, n, p, g, m, 0.05f, mu, wd, variant == 2, step));
      CHECK_OK(gpu->ops->sgd_update(gpu, n, gp, gg, gm, 0.05f, mu, wd, variant == 2, step));
    }
  }
  char what[96];
  snprintf(what, sizeof what, "%s wd %g variant %d: params", adam ? "adam" : "sgd", (double)wd,
           variant);
  check_dev(what, gp, p, n, 0, 1e-6);
  if (adam || variant) {
    snprintf(what, sizeof what, "%s wd %g variant %d: state", adam ? "adam" : "sgd", (double)wd,
             variant);
    check_dev(what, gm, m, n, 1e-12, 1e-6);
  }
  if (adam) check_dev("adam: v", gv, v, n, 1e-15, 1e-6);
  dev_free(gp), dev_free(gm), dev_free(gv), dev_free(gg);
  free(p), free(m), free(v), free(g);
}

static void test_optim(test_rng *rng) {
  test_optim_case(rng, 1, 0.0f, 0);
  test_optim_case(rng, 1, 5e-4f, 0); /* Adam, coupled weight decay */
  test_optim_case(rng, 1, 5e-4f, 1); /* AdamW */
  test_optim_case(rng, 0, 0.0f, 0);  /* plain SGD */
  test_optim_case(rng, 0, 1e-4f, 1); /* momentum */
  test_optim_case(rng, 0, 1e-4f, 2); /* Nesterov */
  float *p = dev_poisoned(4);
  CHECK(gpu->ops->adam_update(gpu, 4, p, p, p, p, 1e-3f, 0.9f, 0.999f, 1e-8f, 0, 0, 0) ==
            REID_EINVAL,
        "adam step 0 refused");
  CHECK(gpu->ops->sgd_update(gpu, 4, p, p, p, 0.1f, 0.0f, 0.0f, 1, 1) == REID_EINVAL,
        "nesterov without momentum refused");
  dev_free(p);
}

/* ---- the ops MobileNetV2 and OSNet add: ReLU6, sigmoid, channel gate, average pooling ---- */

static void test_activations(test_rng *rng) {
  const int N = 3, C = 5, H = 7, W = 6, HW = H * W;
  const size_t n = (size_t)N * C * HW;
  float *x = test_alloc(n), *dy = test_alloc(n), *g = test_alloc(N * C), *r = test_alloc(n);
  float *rg = test_alloc(N * C);
  test_fill_uniform(rng, x, n, -8, 8);
  test_fill_uniform(rng, dy, n, -1, 1);
  test_fill_uniform(rng, g, N * C, 0, 1);
  float *dx = dev_from(x, n), *ddy = dev_from(dy, n), *dg = dev_from(g, N * C),
        *out = dev_poisoned(n), *out_g = dev_poisoned(N * C);
  CHECK_OK(cpu->ops->relu6_forward(cpu, n, x, r));
  CHECK_OK(gpu->ops->relu6_forward(gpu, n, dx, out));
  check_dev_exact("relu6_forward", out, r, n);
  float *y6 = host_copy(r, n), *dy6 = dev_from(y6, n);
  CHECK_OK(cpu->ops->relu6_backward(cpu, n, y6, dy, r));
  CHECK_OK(gpu->ops->relu6_backward(gpu, n, dy6, ddy, out));
  check_dev_exact("relu6_backward", out, r, n);
  CHECK_OK(cpu->ops->sigmoid_forward(cpu, n, x, r));
  CHECK_OK(gpu->ops->sigmoid_forward(gpu, n, dx, out));
  check_dev("sigmoid_forward", out, r, n, 1e-7, 1e-6);
  float *ys = host_copy(r, n), *dys = dev_from(ys, n);
  CHECK_OK(cpu->ops->sigmoid_backward(cpu, n, ys, dy, r));
  CHECK_OK(gpu->ops->sigmoid_backward(gpu, n, dys, ddy, out));
  check_dev("sigmoid_backward", out, r, n, 1e-7, 1e-6);
  CHECK_OK(cpu->ops->channel_mul_forward(cpu, N, C, HW, x, g, r));
  CHECK_OK(gpu->ops->channel_mul_forward(gpu, N, C, HW, dx, dg, out));
  check_dev_exact("channel_mul_forward", out, r, n);
  CHECK_OK(cpu->ops->channel_mul_backward(cpu, N, C, HW, x, g, dy, r, rg));
  CHECK_OK(gpu->ops->channel_mul_backward(gpu, N, C, HW, dx, dg, ddy, out, out_g));
  check_dev_exact("channel_mul_backward dx", out, r, n);
  check_dev("channel_mul_backward dg", out_g, rg, N * C, 0, 1e-6);
  const int shapes[3][3] = {{2, 2, 0}, {3, 2, 1}, {3, 1, 1}}; /* k, stride, pad */
  for (int i = 0; i < 3; i++) {
    reid_pool2d_desc d;
    CHECK_OK(reid_pool2d_desc_init(&d, N, C, H, W, shapes[i][0], shapes[i][1], shapes[i][2]));
    const size_t no = (size_t)N * C * d.h_out * d.w_out;
    gpu->ops->fill(gpu, out, n, NAN);
    CHECK_OK(cpu->ops->avgpool2d_forward(cpu, &d, x, r));
    CHECK_OK(gpu->ops->avgpool2d_forward(gpu, &d, dx, out));
    check_dev("avgpool2d_forward", out, r, no, 1e-6, 1e-6);
    gpu->ops->fill(gpu, out, n, NAN);
    CHECK_OK(cpu->ops->avgpool2d_backward(cpu, &d, dy, r)); /* dy's first no values */
    CHECK_OK(gpu->ops->avgpool2d_backward(gpu, &d, ddy, out));
    check_dev("avgpool2d_backward", out, r, n, 1e-6, 1e-6);
  }
  dev_free(dx), dev_free(ddy), dev_free(dg), dev_free(out), dev_free(out_g), dev_free(dy6);
  dev_free(dys);
  free(x), free(dy), free(g), free(r), free(rg), free(y6), free(ys);
}

int main(void) {
  const int skip = cuda_test_setup("test_cuda_ops");
  if (skip) return skip;
  test_rng rng = test_rng_make(31);
  test_memory(&rng);
  test_elementwise(&rng);
  test_activations(&rng);
  test_pooling(&rng);
  test_batchnorm(&rng);
  test_instancenorm(&rng);
  test_optim(&rng);
  cuda_test_teardown();
  return test_finish("test_cuda_ops");
}
