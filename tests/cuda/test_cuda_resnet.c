/* The whole ResNet-50 (last stride 1, 256x128) forward on the GPU against
 * the CPU, on the same weights with randomised batch norm:
 *   - the training graph in eval mode on the CUDA backend (every op through
 *     the backend table): cosine >= 0.9999 per row;
 *   - the CUDA engine (BN folded, fused epilogues, NHWC, CUDA graphs) in
 *     fp32 and tf32 (cosine >= 0.9999) and fp16 / bf16 (>= 0.999);
 *   - batch buckets: 3 images run in the bucket of 4, a repeated call
 *     replays the captured graph and must give the same result;
 *   - the device path: GPU preprocessing straight into the engine's input;
 *   - ResNet-18 with the embedding after the BNNeck (the affine map fused
 *     into the global pooling).
 * Outputs are poisoned with NaN before every call. */
#include "cuda_net_fixture.h"
#include "preprocess.h"

/* frame -> reid_preprocess_cuda -> engine input -> embeddings, against the CPU path */
static void test_device_path(fixture *f, reid_precision prec, double min_cos) {
  reid_engine *e = NULL;
  CHECK_OK(reid_engine_create(f->gnet, prec, 4, &e));
  if (!e) return;
  test_rng rng = test_rng_make(5);
  const int fw = 400, fh = 300;
  uint8_t *px = malloc((size_t)fw * fh * 3);
  for (int r = 0; r < fh; r++)
    for (int q = 0; q < fw; q++)
      for (int c = 0; c < 3; c++)
        px[((size_t)r * fw + q) * 3 + c] =
            (uint8_t)(127 + 100 * sinf(0.05f * q * (c + 1) + 0.03f * r) +
                      test_rng_int(&rng, -20, 20));
  reid_frame frame = {
      .format = REID_PIX_RGB, .width = fw, .height = fh, .planes = {px}, .strides = {fw * 3}};
  reid_box boxes[3] = {{10, 20, 90, 200}, {200.5f, 50.25f, 120, 260}, {350, 100, 80, 250}};
  reid_preprocess_params p =
      reid_preprocess_params_imagenet(f->cfg.input_height, f->cfg.input_width);
  float *x = test_alloc(f->image * 3), *ref = host_poisoned((size_t)3 * f->d),
        *got = host_poisoned((size_t)3 * f->d);
  CHECK_OK(reid_preprocess_cpu(&frame, boxes, 3, &p, x));
  CHECK_OK(reid_net_forward(f->cnet, x, 3, 1, 0));
  memcpy(ref, reid_net_embedding(f->cnet), sizeof(float) * 3 * f->d);
  void *input;
  reid_tensor_format fmt;
  CHECK_OK(reid_cuda_engine_input(e, &input, &fmt));
  CHECK(fmt.layout == REID_LAYOUT_NHWC && fmt.channels == 8, "engine input is NHWC8");
  CHECK_OK(reid_preprocess_cuda(gpu, &frame, REID_MEMORY_HOST, boxes, 3, &p, &fmt, input));
  CHECK_OK(reid_cuda_engine_run(e, 3, got));
  const double cos = test_min_row_cosine(got, ref, 3, f->d);
  fprintf(stderr, "device path %s: min cosine %.9f\n", reid_precision_name(prec), cos);
  CHECK(cos >= min_cos, "device path %s: cosine %.9f < %g", reid_precision_name(prec), cos,
        min_cos);
  reid_engine_destroy(e);
  free(px), free(x), free(ref), free(got);
}

int main(void) {
  const int skip = cuda_test_setup("test_cuda_resnet");
  if (skip) return skip;
  reid_model_config cfg;
  reid_model_config_default(&cfg); /* resnet50, last stride 1, 256x128 */
#if REID_CUDA_EMULATED
  /* the emulator's convolutions are plain CPU loops: the same network at a quarter of the
   * pixels keeps every layer and code path */
  cfg.input_height = 128, cfg.input_width = 64;
#endif
  fixture f;
  if (fixture_make(&f, cfg, 3, 7)) {
    test_graph(&f);
    test_engine(&f, REID_PRECISION_FP32, 0.9999);
    test_engine(&f, REID_PRECISION_TF32, 0.9999);
    test_engine(&f, REID_PRECISION_FP16, 0.999);
    test_engine(&f, REID_PRECISION_BF16, 0.999);
    test_device_path(&f, REID_PRECISION_FP16, 0.999);
    test_device_path(&f, REID_PRECISION_FP32, 0.9999);
  }
  fixture_free(&f);

  /* ResNet-18, BNNeck, embedding after the BN, 128x64 */
  reid_model_config small;
  reid_model_config_default(&small);
  small.arch = REID_ARCH_RESNET18;
  small.input_height = 128, small.input_width = 64;
  small.bnneck = 1, small.embed_after_bn = 1, small.num_classes = 10;
  if (fixture_make(&f, small, 3, 11)) {
    test_graph(&f);
    test_engine(&f, REID_PRECISION_FP32, 0.9999);
    test_engine(&f, REID_PRECISION_FP16, 0.999);
  }
  fixture_free(&f);
  cuda_test_teardown();
  return test_finish("test_cuda_resnet");
}
