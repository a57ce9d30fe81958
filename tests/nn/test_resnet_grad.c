/* Whole-network gradient check: network forward + backward against central
 * finite differences of L = sum(embedding * r_e) + sum(logits * r_l), on tiny
 * inputs, for the heads and modes the training code uses. */
#include "backend.h"
#include "resnet.h"
#include "nn_fixtures.h"

static double loss_of(reid_net *net, const float *x, int batch, int frames, int train,
                      const float *r_e, const float *r_l) {
  if (reid_net_forward(net, x, batch, frames, train) != REID_OK) return NAN;
  int d = reid_net_feature_dim(net), k = reid_net_config(net)->num_classes;
  const float *e = reid_net_embedding(net), *z = reid_net_logits(net);
  double loss = 0;
  for (int i = 0; i < batch * d; i++) loss += (double)e[i] * r_e[i];
  for (int i = 0; z && i < batch * k; i++) loss += (double)z[i] * r_l[i];
  return loss;
}

/* only: check only tensors whose names start with it (NULL: every tensor) */
static void check_config_only(const char *name, reid_model_config cfg, int batch, int frames,
                              int train, uint64_t seed, int per_tensor, const char *only) {
  reid_backend *be;
  reid_net *net = NULL;
  CHECK_OK(reid_backend_create("cpu", 0, &be));
  CHECK_OK(reid_net_create(&cfg, be, &net));
  if (!net) return;
  CHECK_OK(reid_net_init_weights(net, seed));
  test_rng rng = test_rng_make(seed);
  randomise_batchnorm(net, &rng, 0.2f);
  int n = batch * frames, d = reid_net_feature_dim(net), k = cfg.num_classes;
  size_t nx = (size_t)n * 3 * cfg.input_height * cfg.input_width;
  float *x = test_alloc(nx), *r_e = test_alloc((size_t)batch * d),
        *r_l = test_alloc((size_t)batch * (k ? k : 1));
  test_fill_uniform(&rng, x, nx, -2, 2);
  test_fill_uniform(&rng, r_e, (size_t)batch * d, -1, 1);
  test_fill_uniform(&rng, r_l, (size_t)batch * (k ? k : 1), -1, 1);

  loss_of(net, x, batch, frames, train, r_e, r_l);
  CHECK_OK(reid_net_backward(net, r_e, k ? r_l : NULL));
  size_t np;
  float *params = reid_net_params(net, &np), *grads = reid_net_grads(net, NULL);
  float *analytic = test_alloc(np);
  memcpy(analytic, grads, sizeof(float) * np);

  /* float forward passes leave ~1e-4 of noise in L, so small gradients cannot
   * be resolved: coordinates count as significant above 5% of the largest */
  double largest = 0;
  for (size_t j = 0; j < np; j++) largest = fmax(largest, fabs(analytic[j]));
  double threshold = 0.05 * largest;
  /* coordinates: a few from every trainable tensor */
  double dot = 0, na = 0, nn = 0;
  int checked = 0, significant = 0, bad = 0;
  for (int i = 0; i < reid_net_tensor_count(net); i++) {
    const reid_tensor_view *t = reid_net_tensor(net, i);
    if (!t->trainable || (i % 3 && t->ndim == 1 && !only)) continue;
    if (only && strncmp(t->name, only, strlen(only))) continue;
    for (int s = 0; s < per_tensor; s++) {
      size_t j = t->offset + test_rng_u64(&rng) % t->numel;
      float keep = params[j];
      double a = analytic[j], numeric = NAN;
      /* two step sizes, the closer one counts: a wrong gradient matches neither */
      for (int k = 0; k < 2; k++) {
        float h = (k ? 1e-3f : 1e-2f) * fmaxf(fabsf(keep), 0.1f);
        params[j] = keep + h;
        double lp = loss_of(net, x, batch, frames, train, r_e, r_l);
        params[j] = keep - h;
        double lm = loss_of(net, x, batch, frames, train, r_e, r_l);
        params[j] = keep;
        double estimate = (lp - lm) / (2 * h);
        if (isnan(numeric) || fabs(estimate - a) < fabs(numeric - a)) numeric = estimate;
      }
      dot += numeric * a, na += a * a, nn += numeric * numeric;
      if (fabs(numeric) > threshold || fabs(a) > threshold) {
        double err = fabs(numeric - a) / fmax(fabs(numeric), fabs(a));
        significant++;
        bad += err > 0.1;
        if (err > 0.1)
          fprintf(stderr, "%s: %s[%zu]: analytic %.6g numeric %.6g\n", name, t->name, j - t->offset,
                  a, numeric);
      }
      checked++;
    }
  }
  double cosine = dot / sqrt(na * nn + 1e-30);
  /* a coordinate next to a ReLU kink or a max-pool tie may disagree; the
   * direction of the whole gradient and nearly every coordinate may not */
  CHECK(cosine > 0.99, "%s: cosine(analytic, numeric) = %.5f over %d coordinates", name, cosine,
        checked);
  CHECK(bad * 10 <= significant, "%s: %d of %d coordinates off by > 10%%", name, bad, significant);
  fprintf(stderr, "%s: %d coordinates, cosine %.6f, %d of %d significant off by > 10%%\n", name,
          checked, cosine, bad, significant);
  free(x), free(r_e), free(r_l), free(analytic);
  reid_net_destroy(net);
  reid_backend_destroy(be);
}

static void check_config(const char *name, reid_model_config cfg, int batch, int frames, int train,
                         uint64_t seed, int per_tensor) {
  check_config_only(name, cfg, batch, frames, train, seed, per_tensor, NULL);
}

int main(void) {
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  cfg.arch = REID_ARCH_RESNET18;
  cfg.input_height = 40;
  cfg.input_width = 32;
  cfg.bnneck = 1;
  cfg.num_classes = 5;
  check_config("resnet18 bnneck train T=2", cfg, 2, 2, 1, 1, 2);

  cfg.bnneck = 0;
  cfg.last_stride = 2;
  cfg.input_height = cfg.input_width = 32;
  check_config("resnet18 fc eval", cfg, 3, 1, 0, 2, 2);

  reid_model_config_default(&cfg);
  cfg.arch = REID_ARCH_RESNET50;
  cfg.input_height = 32;
  cfg.input_width = 32;
  cfg.bnneck = 1;
  cfg.embed_after_bn = 1;
  cfg.num_classes = 4;
  /* eval mode: training-mode BN over the few values a 32x32 input leaves in
   * layer4 is too curved for finite differences; ResNet-18 covers training mode */
  check_config("resnet50 bnneck embed-after-bn eval", cfg, 2, 1, 0, 3, 1);

  /* the other node kinds: depthwise convolutions, ReLU6, the shared channel gate (sigmoid,
   * channel multiply, conv bias), average pooling, Linear + BatchNorm1d */
  reid_model_config_default(&cfg);
  cfg.input_height = 32;
  cfg.input_width = 32;
  cfg.arch = REID_ARCH_OSNET_X0_25;
  cfg.num_classes = 3;
  check_config("osnet_x0_25 fc eval", cfg, 2, 1, 0, 4, 1);
  cfg.num_classes = 0;
  check_config("osnet_x0_25 train T=2", cfg, 4, 2, 1, 5, 1);
  cfg.arch = REID_ARCH_MOBILENET_V2;
  check_config("mobilenet_v2 eval", cfg, 2, 1, 0, 6, 1);
  /* instance norm (inside the residual), channel slices and concat (IBN-a)
   * (the tensors of the first blocks: a whole-network check of these takes minutes) */
  cfg.arch = REID_ARCH_OSNET_AIN_X1_0;
  check_config_only("osnet_ain_x1_0 train, conv2.0", cfg, 3, 1, 1, 7, 2, "conv2.0.");
  cfg.arch = REID_ARCH_FASTREID_RESNET50_IBN_A;
  cfg.bnneck = 1;
  cfg.num_classes = 3;
  check_config_only("fastreid_resnet50_ibn_a bnneck eval, layer1.0", cfg, 2, 1, 0, 8, 3,
                    "layer1.0.");
  return test_finish("resnet_grad");
}
