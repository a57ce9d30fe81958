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
 *     into the global pooling);
 *   - int8 (last, as quantizing rounds the CPU net's weights): the network
 *     quantized as reid-train quantize does, the CUDA engine's int8 (cuDNN
 *     int8 convolutions) against the CPU engine's int8 (oneDNN) on the same
 *     quantized model: cosine >= 0.9999 per row, through the same checks
 *     (buckets, replay, chunks, the device path).
 * Outputs are poisoned with NaN before every call. */
#include "cuda_net_fixture.h"
#include "preprocess.h"
#include "quantize.h"

/* the CPU engine's embeddings of x (int8: the oneDNN int8 engine) */
static int cpu_engine_embed(fixture *f, reid_precision prec, const float *x, int n, float *out) {
  reid_engine *e = NULL;
  CHECK_OK(reid_engine_create(f->cnet, prec, 4, &e));
  if (!e) return 0;
  CHECK_OK(reid_engine_embed(e, x, n, out));
  reid_engine_destroy(e);
  return 1;
}

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
  if (prec == REID_PRECISION_INT8) {
    cpu_engine_embed(f, prec, x, 3, ref);
  } else {
    CHECK_OK(reid_net_forward(f->cnet, x, 3, 1, 0));
    memcpy(ref, reid_net_embedding(f->cnet), sizeof(float) * 3 * f->d);
  }
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

/* Quantizes the CPU net on its fixture images plus 5 more (percentile 99.99, as reid-train
 * quantize), gives the GPU net the same weights and ranges, then runs the engine checks with
 * the CPU int8 engine's embeddings as the reference. */
static void test_int8(fixture *f, uint64_t seed) {
  const int extra = 5, n_cal = f->n + extra;
  float *cal = test_alloc(f->image * n_cal);
  memcpy(cal, f->x, sizeof(float) * f->image * f->n);
  test_rng rng = test_rng_make(seed);
  random_images(&rng, cal + f->image * f->n, extra, f->cfg.input_height, f->cfg.input_width);
  const int n_act = reid_net_activation_count(f->cnet);
  float *range = test_alloc((size_t)n_act);
  reid_calibrator *c = NULL;
  CHECK_OK(reid_calibrator_create(f->cnet, &c));
  if (!c) return;
  CHECK_OK(reid_calibrator_add(c, cal, n_cal));
  CHECK_OK(reid_calibrator_ranges(c, 99.99, range));
  reid_calibrator_destroy(c);
  CHECK_OK(reid_net_quantize(f->cnet, range));
  copy_weights(f->cnet, f->gnet);
  CHECK_OK(reid_net_set_activation_ranges(f->gnet, range, n_act));
  float *fp32 = f->ref, *ref8 = host_poisoned((size_t)f->n * f->d);
  if (cpu_engine_embed(f, REID_PRECISION_INT8, f->x, f->n, ref8)) {
    fprintf(stderr, "CPU int8 engine vs fp32 graph: min cosine %.6f\n",
            test_min_row_cosine(ref8, fp32, f->n, f->d));
    f->ref = ref8;
    /* 0.9999, stricter than the floor of 0.999: the fixture's rows are closer than 0.999
     * to each other (printed above), so 0.999 would not catch rows swapped. The centered
     * cosine (what differs between the images) only to 0.9: two int8 engines round a few
     * values near a code boundary differently (float order of the scales), and 16 blocks of
     * requantization amplify that; measured on a ResNet-50 at 128x64, the CPU's int8 against
     * itself with the input moved by 1e-6 (relative) gives a centered cosine of 0.994, the
     * CUDA engine against the CPU 0.997, and this fixture (rows parallel to 0.9993) 0.946.
     * ResNet-18 matches exactly. */
    const double centered = f->min_centered;
    f->min_centered = 0.9;
    test_engine(f, REID_PRECISION_INT8, 0.9999);
    test_device_path(f, REID_PRECISION_INT8, 0.9999);
    f->min_centered = centered;
    f->ref = fp32;
  }
  free(ref8), free(range), free(cal);
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
    test_int8(&f, 21);
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
    test_int8(&f, 23);
  }
  fixture_free(&f);
  cuda_test_teardown();
  return test_finish("test_cuda_resnet");
}
