/* The CUDA engine on the layers beyond convolutions, pooling and gates:
 * instance norm, batch norm without a convolution, channel slices and
 * concatenation (see cuda_engine.c, rewrite_norm), against the CPU graph
 * (eval mode) on the same weights with randomised batch norm:
 *   - a small built graph that takes every path of the rewrite: a slice
 *     read in place and one copied (a convolution reads it), an instance
 *     norm writing its channels of a concatenation in place next to a
 *     copied input, the ReLU after a concatenation applied by its writers,
 *     a standalone batch norm with the residual add and ReLU in its
 *     epilogue, a plain instance norm before a max pool;
 *   - torchreid's osnet_ibn_x1_0 (IN in the stem and after the residual
 *     sums of conv2), osnet_ain_x1_0 (IN in the stem and inside residuals)
 *     and fast-reid's ResNet-50-IBN-a (slice -> IN / BN halves -> concat ->
 *     ReLU), each through the training graph on the CUDA backend and the
 *     engine in fp32 (cosine >= 0.9999) and fp16 (>= 0.999), with the
 *     centered cosine (what differs between the images); int8 is refused
 *     naming the layer;
 *   - an ONNX file written by reid_onnx_save and read back on the CUDA
 *     backend (ResNet-50-IBN-a with a BNNeck: the importer's slices and
 *     concatenation) on the engine.
 * The fixture's rows must differ (min cosine between images < 0.9999), so
 * that per-row cosines can tell the images apart.
 * The input is 64x32 and the batch 3: the emulator's convolutions are CPU
 * loops. */
#include <unistd.h>

#include "cuda_net_fixture.h"
#include "net_graph.h"
#include "onnx_import.h"
#include "quantize.h"

static void check_rows_differ(const fixture *f) {
  CHECK(f->row_cosine < 0.9999, "%s: the reference rows are nearly parallel (cosine %.7f)",
        reid_arch_name(f->cfg.arch), f->row_cosine);
}

static void test_arch(reid_arch arch, uint64_t seed) {
  fixture f;
  if (fixture_make_small(&f, arch, seed)) {
    f.min_centered = 0.9999, f.min_centered_16 = 0.999;
    check_rows_differ(&f);
    test_graph(&f);
    test_engine(&f, REID_PRECISION_FP32, 0.9999);
    test_engine(&f, REID_PRECISION_FP16, 0.999);
    check_int8_refused(f.gnet, "instance norm");
  }
  fixture_free(&f);
}

/* The graph of the header (channels in brackets; the input 3 x 64 x 32):
 *   x  = relu(bn(conv3x3/2(input)))             [16]
 *   s1 = x[0:6]   (read by a conv and an IN: copied)
 *   s2 = x[6:16]  (read by an IN only: in place)
 *   r  = relu(cat(conv1x1(s1) [8], IN(s2) [10]))  [18]
 *   c2 = cat(r, IN(s1))                           [24]
 *   e  = relu(bn(c2) + c2)
 *   y  = gap(maxpool3x3/2(IN(e)))                 the feature [24] */
static reid_status build_mixed(reid_net *net, void *ctx) {
  (void)ctx;
  int x = net_input(net, 3, net->cfg.input_height, net->cfg.input_width);
  x = net_conv_bn(net, "stem.conv", "stem.bn", x, 16, 3, 2, 1, 1, NODE_RELU);
  const int s1 = net_slice(net, x, 0, 6);
  const int a = net_conv(net, "a.conv", s1, 8, 1, 1, 0, 1, 1);
  const int c = net_instance_norm(net, "c.in", s1);
  const int b = net_instance_norm(net, "b.in", net_slice(net, x, 6, 10));
  const int r = net_unary(net, NODE_RELU, net_concat(net, a, b));
  const int c2 = net_concat(net, r, c);
  int e = net_binary(net, NODE_ADD, net_bn(net, "d.bn", c2), c2);
  e = net_unary(net, NODE_RELU, e);
  const int p = net_pool(net, NODE_MAXPOOL, net_instance_norm(net, "f.in", e), 3, 2, 1);
  return net_finish(net, net_unary(net, NODE_GAP, p));
}

static void test_mixed(uint64_t seed) {
  fixture f;
  memset(&f, 0, sizeof f);
  reid_model_config_default(&f.cfg);
  f.cfg.arch = REID_ARCH_ONNX;
  f.cfg.input_height = 64, f.cfg.input_width = 32;
  f.n = 3;
  CHECK_OK(net_create_built(&f.cfg, cpu, build_mixed, NULL, &f.cnet));
  CHECK_OK(net_create_built(&f.cfg, gpu, build_mixed, NULL, &f.gnet));
  if (f.cnet && f.gnet) {
    test_rng rng = test_rng_make(seed);
    CHECK_OK(reid_net_init_weights(f.cnet, seed));
    randomise_bn(f.cnet, &rng);
    copy_weights(f.cnet, f.gnet);
    f.d = reid_net_feature_dim(f.cnet);
    f.image = (size_t)3 * f.cfg.input_height * f.cfg.input_width;
    f.x = test_alloc(f.image * f.n);
    f.ref = test_alloc((size_t)f.n * f.d);
    random_images(&rng, f.x, f.n, f.cfg.input_height, f.cfg.input_width);
    CHECK_OK(reid_net_forward(f.cnet, f.x, f.n, 1, 0));
    memcpy(f.ref, reid_net_embedding(f.cnet), sizeof(float) * f.n * f.d);
    f.row_cosine = test_min_row_cosine(f.ref, f.ref + f.d, 1, f.d);
    fprintf(stderr, "mixed graph: feature %d, row 0 vs 1: cosine %.6f\n", f.d, f.row_cosine);
    f.min_centered = 0.9999, f.min_centered_16 = 0.999;
    check_rows_differ(&f);
    test_engine(&f, REID_PRECISION_FP32, 0.9999);
    test_engine(&f, REID_PRECISION_FP16, 0.999);
    f.min_centered_16 = 0.99; /* bf16: 8 significant bits */
    test_engine(&f, REID_PRECISION_BF16, 0.99);
  }
  fixture_free(&f);
}

/* reid_onnx_save of the CPU net, reid_onnx_load onto the CUDA backend, the engine on it */
static void test_onnx(reid_arch arch, uint64_t seed) {
  char dir[256], path[300];
  snprintf(dir, sizeof dir, "%s/reid-cuda-onnx-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  CHECK(mkdtemp(dir) != NULL, "mkdtemp %s", dir);
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  fixture f;
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  cfg.arch = arch;
  cfg.input_height = 64, cfg.input_width = 32;
  cfg.bnneck = cfg.embed_after_bn = 1;
  if (fixture_make(&f, cfg, 3, seed)) {
    f.min_centered = 0.9999, f.min_centered_16 = 0.999;
    check_rows_differ(&f);
    CHECK_OK(reid_onnx_save(f.cnet, path, NAN));
    reid_net *imported = NULL;
    CHECK_OK(reid_onnx_load(path, NULL, gpu, &imported, NULL));
    if (imported) {
      CHECK(reid_net_config(imported)->arch == REID_ARCH_ONNX &&
                reid_net_config(imported)->embed_after_bn,
            "the import is an ONNX network with the BNNeck");
      reid_net_destroy(f.gnet);
      f.gnet = imported;
      test_engine(&f, REID_PRECISION_FP32, 0.9999);
    }
  }
  fixture_free(&f);
  unlink(path);
  rmdir(dir);
}

int main(void) {
  const int skip = cuda_test_setup("test_cuda_engine_norm");
  if (skip) return skip;
  test_mixed(30);
  test_arch(REID_ARCH_OSNET_IBN_X1_0, 31);
  test_arch(REID_ARCH_OSNET_AIN_X1_0, 32);
  test_arch(REID_ARCH_FASTREID_RESNET50_IBN_A, 33);
  test_onnx(REID_ARCH_FASTREID_RESNET50_IBN_A, 34);
  cuda_test_teardown();
  return test_finish("test_cuda_engine_norm");
}
