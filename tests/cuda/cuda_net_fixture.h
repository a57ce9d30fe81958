/* The fixture of the CUDA network tests (test_cuda_resnet, test_cuda_archs):
 * one architecture with random weights and randomised batch norm on the CPU
 * and the GPU, random images, the CPU graph's embeddings as the reference,
 * and the checks of the training graph (eval) and of the CUDA engine against
 * them. */
#pragma once

#include "cuda_test.h"
#include "engine.h"
#include "quantize.h"
#include "resnet.h"

/* The last BN of each residual branch of a ResNet (NULL: other architectures) */
static const char *last_branch_bn(reid_arch arch) {
  switch (arch) {
  case REID_ARCH_RESNET50:
  case REID_ARCH_FASTREID_RESNET50:
  case REID_ARCH_FASTREID_RESNET50_IBN_A: return ".bn3.";
  case REID_ARCH_RESNET18:
  case REID_ARCH_RESNET34: return ".bn2.";
  default: return NULL;
  }
}

/* BN statistics and affine parameters away from the identity; the last BN of
 * each residual branch small so that activations stay O(1) through 16 blocks
 * (as trained networks keep them) */
static void randomise_bn(reid_net *net, test_rng *rng) {
  const char *last_bn = last_branch_bn(reid_net_config(net)->arch);
  for (int i = 0; i < reid_net_tensor_count(net); i++) {
    const reid_tensor_view *t = reid_net_tensor(net, i);
    float *v = reid_net_tensor_data(net, t);
    const int last = last_bn && strstr(t->name, last_bn) != NULL;
    if (strstr(t->name, "running_var"))
      test_fill_uniform(rng, v, t->numel, 0.5f, 1.5f);
    else if (strstr(t->name, "running_mean"))
      test_fill_uniform(rng, v, t->numel, -0.1f, 0.1f);
    else if (t->ndim == 1 && strstr(t->name, ".weight"))
      test_fill_uniform(rng, v, t->numel, last ? 0.1f : 0.5f, last ? 0.3f : 1.5f);
    else if (t->ndim == 1 && strstr(t->name, ".bias"))
      test_fill_uniform(rng, v, t->numel, -0.1f, 0.1f);
  }
}

/* the CPU net's weights onto the GPU net (same layout) */
static void copy_weights(reid_net *from_cpu, reid_net *to_gpu) {
  size_t np, nb;
  float *p = reid_net_params(from_cpu, &np), *b = reid_net_buffers(from_cpu, &nb);
  CHECK_OK(gpu->ops->upload(gpu, reid_net_params(to_gpu, NULL), p, sizeof(float) * np));
  CHECK_OK(gpu->ops->upload(gpu, reid_net_buffers(to_gpu, NULL), b, sizeof(float) * nb));
}

/* smooth random colour fields plus noise, normalised: [n, 3, h, w] */
static void random_images(test_rng *rng, float *x, int n, int h, int w) {
  for (int i = 0; i < n; i++)
    for (int c = 0; c < 3; c++) {
      const float a = test_rng_uniform(rng, -1, 1), fx = test_rng_uniform(rng, 0.02f, 0.2f),
                  fy = test_rng_uniform(rng, 0.02f, 0.2f);
      for (int r = 0; r < h; r++)
        for (int q = 0; q < w; q++)
          x[(((size_t)i * 3 + c) * h + r) * w + q] =
              a * sinf(fx * q + fy * r) + test_rng_uniform(rng, -0.5f, 0.5f);
    }
}

typedef struct fixture {
  reid_model_config cfg;
  reid_net *cnet, *gnet;
  int n, d;
  size_t image;
  float *x, *ref;    /* [n, 3, H, W] input, [n, d] CPU embeddings (graph, eval) */
  double row_cosine; /* min cosine of ref's row 0 with the others: how different the images are */
  /* > 0: also check centered_cosine (fp32 / tf32, and fp16 / bf16) */
  double min_centered, min_centered_16;
} fixture;

/* min over rows of cos(got_i - m, ref_i - m), m the mean row of ref: what differs between the
 * images, which a plain cosine hides when the rows are nearly parallel */
static double centered_cosine(const float *got, const float *ref, int n, int d) {
  double *m = calloc((size_t)d, sizeof(double)), worst = 1;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++) m[j] += ref[(size_t)i * d + j] / n;
  for (int i = 0; i < n; i++) {
    double gr = 0, gg = 0, rr = 0;
    for (int j = 0; j < d; j++) {
      const double a = got[(size_t)i * d + j] - m[j], b = ref[(size_t)i * d + j] - m[j];
      gr += a * b, gg += a * a, rr += b * b;
    }
    const double c = gr / (sqrt(gg * rr) + 1e-300);
    worst = c < worst ? c : worst;
  }
  free(m);
  return worst;
}

static void check_centered(const fixture *f, const float *got, const char *what, int half) {
  const double want = half ? f->min_centered_16 : f->min_centered;
  if (want <= 0) return;
  const double c = centered_cosine(got, f->ref, f->n, f->d);
  fprintf(stderr, "%s: min centered cosine %.9f\n", what, c);
  CHECK(c >= want, "%s: centered cosine %.9f < %g", what, c, want);
}

static int fixture_make(fixture *f, reid_model_config cfg, int n, uint64_t seed) {
  memset(f, 0, sizeof *f);
  f->cfg = cfg;
  f->n = n;
  CHECK_OK(reid_net_create(&cfg, cpu, &f->cnet));
  CHECK_OK(reid_net_create(&cfg, gpu, &f->gnet));
  if (!f->cnet || !f->gnet) return 0;
  test_rng rng = test_rng_make(seed);
  CHECK_OK(reid_net_init_weights(f->cnet, seed));
  randomise_bn(f->cnet, &rng);
  copy_weights(f->cnet, f->gnet);
  f->d = reid_net_feature_dim(f->cnet);
  f->image = (size_t)3 * cfg.input_height * cfg.input_width;
  f->x = test_alloc(f->image * n);
  f->ref = test_alloc((size_t)n * f->d);
  random_images(&rng, f->x, n, cfg.input_height, cfg.input_width);
  if (!last_branch_bn(cfg.arch)) {
    /* Deep random networks without residual BN scaling (MobileNetV2, OSNet) saturate in eval
     * mode with made-up statistics and give every image the same embedding. Running statistics
     * measured on the images (20 training-mode passes, momentum 0.1) keep them input-sensitive. */
    for (int pass = 0; pass < 20; pass++) CHECK_OK(reid_net_forward(f->cnet, f->x, n, 1, 1));
    copy_weights(f->cnet, f->gnet);
  }
  CHECK_OK(reid_net_forward(f->cnet, f->x, n, 1, 0));
  memcpy(f->ref, reid_net_embedding(f->cnet), sizeof(float) * n * f->d);
  const double m = max_abs(f->ref, (size_t)n * f->d);
  CHECK(m > 1e-3 && m < 1e4, "fixture: CPU embedding magnitude %g out of the useful range", m);
  /* how different the rows are: a cosine check is only as strong as this */
  double rows = 1;
  for (int i = 1; i < n; i++) {
    const double c = test_min_row_cosine(f->ref, f->ref + (size_t)i * f->d, 1, f->d);
    rows = c < rows ? c : rows;
  }
  f->row_cosine = rows;
  fprintf(stderr, "fixture %s: max |embedding| %.4g, row 0 vs others: min cosine %.6f\n",
          reid_arch_name(cfg.arch), m, rows);
  return 1;
}

/* int8 with every range 1: only the refusal, which names the layer */
static inline void check_int8_refused(reid_net *gnet, const char *layer) {
  const int n_act = reid_net_activation_count(gnet);
  float *range = test_alloc((size_t)n_act);
  for (int i = 0; i < n_act; i++) range[i] = 1.0f;
  CHECK_OK(reid_net_set_activation_ranges(gnet, range, n_act));
  reid_engine *e = NULL;
  const reid_status st = reid_engine_create(gnet, REID_PRECISION_INT8, 4, &e);
  CHECK(st == REID_EUNSUPPORTED && strstr(reid_last_error(), layer),
        "%s int8 on CUDA: status %d, %s", reid_arch_name(reid_net_config(gnet)->arch), (int)st,
        reid_last_error());
  reid_engine_destroy(e);
  free(range);
}

/* fixture_make for `arch` at 64x32 with 3 images: the emulator's convolutions are CPU loops,
 * and 64x32 keeps every layer (OSNet's last plane is 4x2, MobileNetV2's 2x1) */
static inline int fixture_make_small(fixture *f, reid_arch arch, uint64_t seed) {
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  cfg.arch = arch;
  cfg.input_height = 64, cfg.input_width = 32;
  return fixture_make(f, cfg, 3, seed);
}

static void fixture_free(fixture *f) {
  reid_net_destroy(f->cnet);
  reid_net_destroy(f->gnet);
  free(f->x);
  free(f->ref);
}

/* the training graph, eval mode, through the backend table */
static void test_graph(fixture *f) {
  float *gx = dev_from(f->x, f->image * f->n);
  CHECK_OK(reid_net_forward(f->gnet, gx, f->n, 1, 0));
  float *got = host_from(reid_net_embedding(f->gnet), (size_t)f->n * f->d);
  const double cos = test_min_row_cosine(got, f->ref, f->n, f->d);
  fprintf(stderr, "graph (backend table) fp32: min cosine %.9f\n", cos);
  CHECK(cos >= 0.9999, "graph eval on CUDA: cosine %.9f < 0.9999", cos);
  check_centered(f, got, "graph (backend table) fp32", 0);
  free(got);
  dev_free(gx);
}

static void test_engine(fixture *f, reid_precision prec, double min_cos) {
  reid_engine *e = NULL;
  CHECK_OK(reid_engine_create(f->gnet, prec, 4, &e));
  if (!e) return;
  CHECK(reid_engine_is_cuda(e), "the CUDA engine serves a CUDA net");
  fprintf(stderr, "engine: %s\n", reid_engine_describe(e));
  const size_t len = (size_t)f->n * f->d;
  float *out = host_poisoned(len), *again = host_poisoned(len), *one = host_poisoned(f->d);
  CHECK_OK(reid_engine_embed(e, f->x, f->n, out)); /* bucket 4, eager at plan creation */
  const double cos = test_min_row_cosine(out, f->ref, f->n, f->d);
  fprintf(stderr, "engine %s: min cosine %.9f\n", reid_precision_name(prec), cos);
  CHECK(cos >= min_cos, "engine %s: cosine %.9f < %g", reid_precision_name(prec), cos, min_cos);
  check_centered(f, out, reid_precision_name(prec),
                 prec == REID_PRECISION_FP16 || prec == REID_PRECISION_BF16);
  CHECK_OK(reid_engine_embed(e, f->x, f->n, again)); /* the captured graph */
  const double rep = test_min_row_cosine(again, out, f->n, f->d);
  CHECK(rep >= 0.999999, "engine %s: graph replay differs from the eager run (cosine %.9f)",
        reid_precision_name(prec), rep);
  CHECK_OK(reid_engine_embed(e, f->x + f->image, 1, one)); /* bucket 1 */
  const double single = test_min_row_cosine(one, f->ref + f->d, 1, f->d);
  CHECK(single >= min_cos, "engine %s batch 1: cosine %.9f", reid_precision_name(prec), single);
  float *seven = host_poisoned((size_t)7 * f->d), *x7 = test_alloc(f->image * 7);
  for (int i = 0; i < 7; i++)
    memcpy(x7 + f->image * i, f->x + f->image * (i % f->n), sizeof(float) * f->image);
  CHECK_OK(reid_engine_embed(e, x7, 7, seven)); /* more than max_batch: chunks of 4 and 3 */
  for (int i = 0; i < 7; i++) {
    const double c =
        test_min_row_cosine(seven + (size_t)i * f->d, f->ref + (size_t)(i % f->n) * f->d, 1, f->d);
    CHECK(c >= min_cos, "engine %s, 7 images, row %d: cosine %.9f", reid_precision_name(prec), i,
          c);
  }
  CHECK(reid_cuda_engine_run(e, 0, out) == REID_EINVAL, "batch 0 refused");
  CHECK(reid_cuda_engine_run(e, 5, out) == REID_EINVAL, "batch above max_batch refused");
  reid_engine_destroy(e);
  free(out), free(again), free(one), free(seven), free(x7);
}
