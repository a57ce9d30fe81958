/* Inference engine: the fused CPU engine against the training graph in eval
 * mode (fp32 and bf16), batching, plan reuse and bad arguments. */
#include "backend.h"
#include "engine.h"
#include "resnet.h"
#include "nn_fixtures.h"

static void check_against_graph(const char *name, reid_model_config cfg, int n, int max_batch) {
  reid_backend *be;
  reid_net *net = NULL;
  CHECK_OK(reid_backend_create("cpu", 0, &be));
  CHECK_OK(reid_net_create(&cfg, be, &net));
  if (!net) return;
  test_rng rng = test_rng_make(11);
  CHECK_OK(reid_net_init_weights(net, 5));
  randomise_batchnorm(net, &rng, 0.1f);
  int d = reid_net_feature_dim(net);
  size_t image = (size_t)3 * cfg.input_height * cfg.input_width;
  float *x = test_alloc(image * n), *ref = test_alloc((size_t)n * d),
        *out = test_alloc((size_t)n * d);
  test_fill_uniform(&rng, x, image * n, -2, 2);
  CHECK_OK(reid_net_forward(net, x, n, 1, 0));
  memcpy(ref, reid_net_embedding(net), sizeof(float) * n * d);

  reid_engine *e = NULL;
  CHECK_OK(reid_engine_create(net, REID_PRECISION_FP32, max_batch, &e));
  if (e) {
    for (int i = 0; i < n * d; i++) out[i] = NAN;
    CHECK_OK(reid_engine_embed(e, x, n, out));
    char what[128];
    snprintf(what, sizeof what, "%s fp32 (%s)", name, reid_engine_describe(e));
    CHECK_CLOSE(out, ref, (size_t)n * d, 1e-4, 1e-3, what);
    /* a second call with a smaller batch uses another plan; the first is kept */
    CHECK_OK(reid_engine_embed(e, x, 1, out));
    CHECK_CLOSE(out, ref, (size_t)d, 1e-4, 1e-3, "batch of one");
    CHECK_OK(reid_engine_embed(e, x, n, out));
    CHECK_CLOSE(out, ref, (size_t)n * d, 1e-4, 1e-3, "plan reuse");
    CHECK(reid_engine_embed(e, x, -1, out) == REID_EINVAL, "negative batch");
    CHECK(reid_engine_embed(e, NULL, 2, out) == REID_EINVAL, "NULL input");
    CHECK(reid_engine_dim(e) == d, "dim");
    reid_engine_destroy(e);
  }
  e = NULL;
  reid_status st = reid_engine_create(net, REID_PRECISION_BF16, max_batch, &e);
  if (st == REID_OK) {
    for (int i = 0; i < n * d; i++) out[i] = NAN;
    CHECK_OK(reid_engine_embed(e, x, n, out));
    double c = test_min_row_cosine(out, ref, n, d);
    CHECK(c >= 0.99, "%s bf16: min cosine to fp32 graph %.5f", name, c);
    fprintf(stderr, "%s: bf16 min cosine %.5f\n", name, c);
    reid_engine_destroy(e);
  } else {
    fprintf(stderr, "%s: bf16 engine not available here: %s\n", name, reid_last_error());
  }
  CHECK(reid_engine_create(net, REID_PRECISION_FP16, max_batch, &e) == REID_EUNSUPPORTED,
        "fp16 on the CPU is refused");
  CHECK(reid_engine_create(net, REID_PRECISION_FP32, 0, &e) == REID_EINVAL, "max batch 0");
  free(x), free(ref), free(out);
  reid_net_destroy(net);
  reid_backend_destroy(be);
}

int main(void) {
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  cfg.input_height = 64;
  cfg.input_width = 32;
  check_against_graph("resnet50 ls1 64x32", cfg, 5, 2); /* 5 images in chunks of 2 */
  cfg.arch = REID_ARCH_RESNET18;
  cfg.last_stride = 2;
  cfg.bnneck = 1;
  cfg.embed_after_bn = 1;
  cfg.num_classes = 7;
  cfg.input_height = 96;
  cfg.input_width = 48;
  check_against_graph("resnet18 ls2 bnneck-after 96x48", cfg, 3, 4);
  cfg.arch = REID_ARCH_RESNET34;
  cfg.bnneck = cfg.embed_after_bn = cfg.num_classes = 0;
  check_against_graph("resnet34 96x48", cfg, 2, 2);
  /* the other architectures of the graph: depthwise convolutions, ReLU6, channel gates,
   * average pooling, the Linear + BatchNorm1d feature */
  cfg.input_height = 64;
  cfg.input_width = 32;
  cfg.arch = REID_ARCH_MOBILENET_V2;
  check_against_graph("mobilenet_v2 64x32", cfg, 3, 2);
  cfg.arch = REID_ARCH_OSNET_X0_25;
  check_against_graph("osnet_x0_25 64x32", cfg, 3, 2);
  cfg.arch = REID_ARCH_OSNET_X1_0;
  cfg.bnneck = cfg.embed_after_bn = 1;
  check_against_graph("osnet_x1_0 bnneck-after 64x32", cfg, 2, 2);
  /* instance norm (after a conv, after a residual sum, inside the residual), channel slices,
   * concat, a standalone batch norm and ReLU, ceil-mode max pooling */
  cfg.bnneck = cfg.embed_after_bn = 0;
  cfg.arch = REID_ARCH_OSNET_IBN_X1_0;
  check_against_graph("osnet_ibn_x1_0 64x32", cfg, 2, 2);
  cfg.arch = REID_ARCH_OSNET_AIN_X1_0;
  check_against_graph("osnet_ain_x1_0 64x32", cfg, 3, 2);
  cfg.arch = REID_ARCH_FASTREID_RESNET50_IBN_A;
  cfg.bnneck = cfg.embed_after_bn = 1;
  check_against_graph("fastreid_resnet50_ibn_a bnneck-after 64x32", cfg, 2, 2);
  float rows[6] = {3, 4, 0, 0, 0, 0};
  reid_l2_normalize_rows(rows, 2, 3);
  CHECK(fabsf(rows[0] - 0.6f) < 1e-6f && fabsf(rows[1] - 0.8f) < 1e-6f && rows[3] == 0.0f,
        "l2 normalise (zero row stays zero)");
  return test_finish("engine");
}
