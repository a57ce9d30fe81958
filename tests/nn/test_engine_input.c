/* Zero-copy engine input: crops preprocessed straight into the CPU engine's
 * input layout (reid_engine_input + reid_preprocess_cpu_format +
 * reid_engine_run) give the embeddings of the NCHW path (preprocess, then
 * reid_engine_embed with its input reorder), for fp32 and bf16, at several
 * batch sizes; NHWC output equals NCHW output transposed; bad formats and
 * batch sizes are refused. */
#include "backend.h"
#include "engine.h"
#include "half.h"
#include "nn_fixtures.h"
#include "preprocess.h"
#include "resnet.h"

#define FW 96
#define FH 80

static void frame_and_boxes(uint8_t *rgb, reid_frame *f, reid_box *boxes, int n) {
  for (int i = 0; i < FW * FH * 3; i++) rgb[i] = (uint8_t)((i * 7 + i / (3 * FW) * 13) % 251);
  *f = (reid_frame){
      .format = REID_PIX_RGB, .width = FW, .height = FH, .planes = {rgb}, .strides = {3 * FW}};
  for (int b = 0; b < n; b++) boxes[b] = (reid_box){2.0f + 5 * b, 3.0f + 2 * b, 30.5f, 60.0f};
}

static void test_layouts(void) {
  uint8_t rgb[FW * FH * 3];
  reid_frame f;
  reid_box boxes[3];
  frame_and_boxes(rgb, &f, boxes, 3);
  reid_preprocess_params p = reid_preprocess_params_imagenet(16, 8);
  float nchw[3 * 3 * 16 * 8], nhwc[3 * 3 * 16 * 8];
  uint16_t half[3 * 3 * 16 * 8];
  reid_tensor_format fmt = {REID_LAYOUT_NHWC, 3, REID_PRECISION_FP32};
  CHECK_OK(reid_preprocess_cpu(&f, boxes, 3, &p, nchw));
  CHECK_OK(reid_preprocess_cpu_format(&f, boxes, 3, &p, &fmt, nhwc));
  fmt.dtype = REID_PRECISION_BF16;
  CHECK_OK(reid_preprocess_cpu_format(&f, boxes, 3, &p, &fmt, half));
  int bad = 0, bad_half = 0;
  for (int b = 0; b < 3; b++)
    for (int c = 0; c < 3; c++)
      for (int y = 0; y < 16; y++)
        for (int x = 0; x < 8; x++) {
          float v = nchw[((b * 3 + c) * 16 + y) * 8 + x];
          size_t i = ((size_t)(b * 16 + y) * 8 + x) * 3 + c;
          bad += nhwc[i] != v;
          bad_half += half[i] != float_to_bf16(v);
        }
  CHECK(bad == 0 && bad_half == 0, "NHWC = NCHW transposed (%d, bf16 %d differ)", bad, bad_half);
  fmt = (reid_tensor_format){REID_LAYOUT_NCHW, 3, REID_PRECISION_BF16};
  CHECK(reid_preprocess_cpu_format(&f, boxes, 3, &p, &fmt, half) == REID_EUNSUPPORTED,
        "NCHW bf16 refused");
  fmt = (reid_tensor_format){REID_LAYOUT_NHWC, 8, REID_PRECISION_FP32};
  CHECK(reid_preprocess_cpu_format(&f, boxes, 3, &p, &fmt, nhwc) == REID_EUNSUPPORTED,
        "8 channels refused on the CPU");
}

static void test_engine(reid_precision precision) {
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  cfg.arch = REID_ARCH_RESNET18;
  cfg.input_height = 64;
  cfg.input_width = 32;
  reid_backend *be;
  reid_net *net = NULL;
  CHECK_OK(reid_backend_create("cpu", 0, &be));
  CHECK_OK(reid_net_create(&cfg, be, &net));
  if (!net) return;
  CHECK_OK(reid_net_init_weights(net, 3));
  reid_engine *e = NULL;
  reid_status st = reid_engine_create(net, precision, 4, &e);
  if (st == REID_EUNSUPPORTED) {
    fprintf(stderr, "%s engine not available here: %s\n", reid_precision_name(precision),
            reid_last_error());
    reid_net_destroy(net);
    reid_backend_destroy(be);
    return;
  }
  CHECK_OK(st);
  uint8_t rgb[FW * FH * 3];
  reid_frame f;
  reid_box boxes[4];
  frame_and_boxes(rgb, &f, boxes, 4);
  reid_preprocess_params p = reid_preprocess_params_imagenet(64, 32);
  int d = reid_engine_dim(e);
  float *x = test_alloc((size_t)4 * 3 * 64 * 32), *ref = test_alloc((size_t)4 * d),
        *out = test_alloc((size_t)4 * d);
  for (int n = 1; n <= 4 && e; n++) {
    CHECK_OK(reid_preprocess_cpu(&f, boxes, n, &p, x));
    CHECK_OK(reid_engine_embed(e, x, n, ref));
    void *input = NULL;
    reid_tensor_format fmt;
    st = reid_engine_input(e, n, &input, &fmt);
    if (st == REID_EUNSUPPORTED) { /* a blocked first layer: the reorder path stays */
      fprintf(stderr, "no zero-copy input: %s\n", reid_last_error());
      break;
    }
    CHECK_OK(st);
    CHECK_OK(reid_preprocess_cpu_format(&f, boxes, n, &p, &fmt, input));
    for (int i = 0; i < n * d; i++) out[i] = NAN;
    CHECK_OK(reid_engine_run(e, n, out));
    /* bf16: the reorder rounds to nearest even as float_to_bf16 does */
    CHECK_CLOSE(out, ref, (size_t)n * d, 1e-5, 1e-4, "zero-copy vs reorder path");
  }
  void *input;
  reid_tensor_format fmt;
  CHECK(reid_engine_input(e, 5, &input, &fmt) == REID_EINVAL, "batch above the maximum");
  CHECK(reid_engine_run(e, 0, out) == REID_EINVAL, "batch 0");
  free(x), free(ref), free(out);
  reid_engine_destroy(e);
  reid_net_destroy(net);
  reid_backend_destroy(be);
}

int main(void) {
  test_layouts();
  test_engine(REID_PRECISION_FP32);
  test_engine(REID_PRECISION_BF16);
  return test_finish("test_engine_input");
}
