/* The element's CUDA path (embedder with device=cuda): each frame goes to the
 * GPU once, is cropped, resized and normalised there straight into the CUDA
 * engine's input (reid_preprocess_cuda + reid_cuda_engine_run), for every
 * pixel format the element accepts, padded strides (one frame bottom-up),
 * fractional and edge
 * boxes, chunks of 8, 4, 2, 1. The embeddings must match device=cpu on the
 * same checkpoint: cosine >= 0.9999 per box in fp32, >= 0.999 in fp16, and
 * for a quantized checkpoint (reid-train quantize's file) device=cuda
 * precision=int8 against device=cpu precision=int8: >= 0.999.
 * Exits 77 without a usable GPU (the real CUDA build on a machine without
 * one); the emulated build (tests/cuda_emu) runs it everywhere. */
#include <math.h>

#include "checkpoint.h"
#include "embedder.h"
#include "quantize.h"
#include "test_frames.h"
#include "test_util.h"
#include "unit_workdir.h"
#if HAVE_CUDA
#include "reid_cuda.h"
#endif

#define FW   161
#define FH   123
#define NBOX 15

static reid_embedder *open_embedder(const char *path, const char *device, reid_precision prec) {
  reid_embedder_options o = {
      .model_path = path, .device = device, .batch_size = 8, .precision = prec};
  reid_embedder *e = NULL;
  CHECK_OK(reid_embedder_open(&o, &e));
  return e;
}

static void test_precision(const char *path, reid_precision prec, double min_cos) {
  /* a quantized model runs in int8 on both devices */
  reid_embedder *cpu = open_embedder(
      path, "cpu", prec == REID_PRECISION_INT8 ? REID_PRECISION_INT8 : REID_PRECISION_FP32);
  reid_embedder *gpu = open_embedder(path, "cuda", prec);
  if (!cpu || !gpu) goto done;
  CHECK(strstr(reid_embedder_describe(gpu), "cuda") != NULL, "describe: %s",
        reid_embedder_describe(gpu));
  const int d = reid_embedder_dim(cpu, REID_ROLE_VIDEO);
  float *want = test_alloc((size_t)NBOX * d), *got = test_alloc((size_t)NBOX * d);
  test_rng rng = test_rng_make(5);
  for (int fi = 0; fi < TEST_FORMAT_COUNT; fi++) {
    test_frame t = test_frame_make(&rng, test_formats[fi], FW, FH, 13, fi == 2);
    reid_box boxes[NBOX];
    for (int i = 0; i < NBOX; i++) {
      const reid_box raw = {test_rng_uniform(&rng, -20, FW - 10),
                            test_rng_uniform(&rng, -20, FH - 10), test_rng_uniform(&rng, 25, 90),
                            test_rng_uniform(&rng, 25, 110)};
      CHECK_OK(reid_box_clip(&raw, FW, FH, &boxes[i]));
    }
    boxes[0] = (reid_box){0, 0, FW, FH}; /* the whole frame */
    CHECK_OK(reid_embedder_embed_boxes(cpu, &t.f, boxes, NBOX, want));
    for (size_t i = 0; i < (size_t)NBOX * d; i++) got[i] = NAN;
    CHECK_OK(reid_embedder_embed_boxes(gpu, &t.f, boxes, NBOX, got));
    const double c = test_min_row_cosine(got, want, NBOX, d);
    fprintf(stderr, "%s %s: min cosine to the CPU %.9f\n", reid_precision_name(prec),
            test_format_names[fi], c);
    CHECK(c >= min_cos, "%s %s: cosine %.9f < %g", reid_precision_name(prec), test_format_names[fi],
          c, min_cos);
    test_frame_free(&t);
  }
  free(want);
  free(got);
done:
  reid_embedder_close(gpu);
  reid_embedder_close(cpu);
}

/* The shared engine's batches (reid_embedder_embed_crops) on the GPU: 5 boxes of one frame and 4
 * of another, batch 8, so the first chunk holds both frames' crops, each preprocessed on the
 * GPU into its rows of the engine's input; against device=cpu frame by frame. */
static void test_crops(const char *path) {
  reid_embedder *cpu = open_embedder(path, "cpu", REID_PRECISION_FP32);
  reid_embedder *gpu = open_embedder(path, "cuda", REID_PRECISION_FP32);
  if (!cpu || !gpu) goto done;
  const int d = reid_embedder_dim(cpu, REID_ROLE_VIDEO);
  test_rng rng = test_rng_make(8);
  test_frame a = test_frame_make(&rng, test_formats[0], FW, FH, 13, 0);
  test_frame b = test_frame_make(&rng, test_formats[6], FW, FH, 13, 0);
  reid_box boxes[9];
  for (int i = 0; i < 9; i++) {
    const reid_box raw = {test_rng_uniform(&rng, 0, FW - 30), test_rng_uniform(&rng, 0, FH - 30),
                          test_rng_uniform(&rng, 25, 90), test_rng_uniform(&rng, 25, 110)};
    CHECK_OK(reid_box_clip(&raw, FW, FH, &boxes[i]));
  }
  float *want = test_alloc((size_t)9 * d), *got = test_alloc((size_t)9 * d);
  CHECK_OK(reid_embedder_embed_boxes(cpu, &a.f, boxes, 5, want));
  CHECK_OK(reid_embedder_embed_boxes(cpu, &b.f, boxes + 5, 4, want + (size_t)5 * d));
  for (size_t i = 0; i < (size_t)9 * d; i++) got[i] = NAN;
  const reid_embedder_crops crops[2] = {{&a.f, boxes, 5}, {&b.f, boxes + 5, 4}};
  CHECK_OK(reid_embedder_embed_crops(gpu, crops, 2, got));
  const double c = test_min_row_cosine(got, want, 9, d);
  fprintf(stderr, "crops of two frames on the GPU: min cosine to the CPU %.9f\n", c);
  CHECK(c >= 0.9999, "crops of two frames on the GPU: cosine %.9f < 0.9999", c);
  free(want), free(got);
  test_frame_free(&a), test_frame_free(&b);
done:
  reid_embedder_close(gpu);
  reid_embedder_close(cpu);
}

int main(int argc, char **argv) {
#if HAVE_CUDA
  if (!reid_cuda_available()) {
    fprintf(stderr, "test_embedder_cuda: no usable CUDA GPU, skipping\n");
    return 77;
  }
#else
  (void)argc, (void)argv;
  fprintf(stderr, "test_embedder_cuda: built without CUDA, skipping\n");
  return 77;
#endif
  const char *dir = unit_workdir(argc, argv);
  if (!dir) return 1;
  char path[1100];
  snprintf(path, sizeof path, "%s/cuda.safetensors", dir);
  reid_backend *be = NULL;
  CHECK_OK(reid_backend_create("cpu", 0, &be));
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  cfg.arch = REID_ARCH_RESNET18;
  cfg.input_height = 64, cfg.input_width = 32;
  reid_net *net = NULL;
  CHECK_OK(reid_net_create(&cfg, be, &net));
  if (net) {
    CHECK_OK(reid_net_init_weights(net, 3));
    CHECK_OK(reid_checkpoint_save(net, path, ST_F32));
    test_precision(path, REID_PRECISION_FP32, 0.9999);
    test_precision(path, REID_PRECISION_FP16, 0.999);
    test_crops(path);
    /* the same model quantized on 8 random crops, written as reid-train quantize writes it */
    const int n_cal = 8, n_act = reid_net_activation_count(net);
    const size_t image = (size_t)3 * cfg.input_height * cfg.input_width;
    float *cal = test_alloc(image * n_cal), *range = test_alloc((size_t)n_act);
    test_rng rng = test_rng_make(9);
    for (size_t i = 0; i < image * n_cal; i++) cal[i] = test_rng_uniform(&rng, -2.0f, 2.0f);
    reid_calibrator *c = NULL;
    CHECK_OK(reid_calibrator_create(net, &c));
    if (c) {
      CHECK_OK(reid_calibrator_add(c, cal, n_cal));
      CHECK_OK(reid_calibrator_ranges(c, 99.99, range));
      reid_calibrator_destroy(c);
      CHECK_OK(reid_net_quantize(net, range));
      snprintf(path, sizeof path, "%s/cuda-int8.safetensors", dir);
      CHECK_OK(reid_checkpoint_save_int8(net, NULL, path, "test: percentile 99.99"));
      test_precision(path, REID_PRECISION_INT8, 0.999);
    }
    free(cal), free(range);
  }
  reid_net_destroy(net);
  reid_backend_destroy(be);
  return test_finish("test_embedder_cuda");
}
