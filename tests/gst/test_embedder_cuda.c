/* The element's CUDA path (embedder with device=cuda): each frame goes to the
 * GPU once, is cropped, resized and normalised there straight into the CUDA
 * engine's input (reid_preprocess_cuda + reid_cuda_engine_run), for every
 * pixel format the element accepts, padded strides, fractional and edge
 * boxes, chunks of 8, 4, 2, 1. The embeddings must match device=cpu on the
 * same checkpoint: cosine >= 0.9999 per box in fp32, >= 0.999 in fp16.
 * Exits 77 without a usable GPU (the real CUDA build on a machine without
 * one); the emulated build (tests/cuda_emu) runs it everywhere. */
#include <math.h>

#include "checkpoint.h"
#include "embedder.h"
#include "test_util.h"
#include "unit_workdir.h"
#if HAVE_CUDA
#include "reid_cuda.h"
#endif

#define FW   161
#define FH   123
#define NBOX 15

static const reid_pixel_format formats[] = {REID_PIX_RGB,  REID_PIX_BGR,  REID_PIX_RGBA,
                                            REID_PIX_BGRA, REID_PIX_RGBX, REID_PIX_BGRX,
                                            REID_PIX_NV12, REID_PIX_I420};
static const char *format_names[] = {"RGB", "BGR", "RGBA", "BGRA", "RGBX", "BGRX", "NV12", "I420"};

/* A frame of smooth colour fields plus noise in format `fmt`, rows padded by
 * 13 bytes. */
typedef struct test_frame {
  reid_frame f;
  uint8_t *mem[3];
} test_frame;

static test_frame make_frame(test_rng *rng, reid_pixel_format fmt) {
  test_frame t = {0};
  t.f.format = fmt;
  t.f.width = FW, t.f.height = FH;
  const int cw = (FW + 1) / 2, ch = (FH + 1) / 2;
  int bytes[3] = {0}, rows[3] = {FH, 0, 0};
  if (fmt == REID_PIX_NV12) {
    bytes[0] = FW, bytes[1] = 2 * cw, rows[1] = ch;
  } else if (fmt == REID_PIX_I420) {
    bytes[0] = FW, bytes[1] = bytes[2] = cw, rows[1] = rows[2] = ch;
  } else {
    bytes[0] = FW * (fmt == REID_PIX_RGB || fmt == REID_PIX_BGR ? 3 : 4);
  }
  for (int p = 0; p < 3 && bytes[p]; p++) {
    t.f.strides[p] = bytes[p] + 13;
    t.mem[p] = malloc((size_t)t.f.strides[p] * rows[p]);
    for (int y = 0; y < rows[p]; y++)
      for (int x = 0; x < t.f.strides[p]; x++)
        t.mem[p][(size_t)y * t.f.strides[p] + x] =
            (uint8_t)(120 + 90 * sin(x / (5.0 + p) + y / 7.0) + test_rng_int(rng, -20, 20));
    t.f.planes[p] = t.mem[p];
  }
  return t;
}

static void free_frame(test_frame *t) {
  for (int p = 0; p < 3; p++) free(t->mem[p]);
}

static reid_embedder *open_embedder(const char *path, const char *device, reid_precision prec) {
  reid_embedder_options o = {
      .model_path = path, .device = device, .batch_size = 8, .precision = prec};
  reid_embedder *e = NULL;
  CHECK_OK(reid_embedder_open(&o, &e));
  return e;
}

static double min_cosine(const float *a, const float *b, int n, int d) {
  double worst = 1;
  for (int i = 0; i < n; i++) {
    double ab = 0, aa = 0, bb = 0;
    for (int k = 0; k < d; k++) {
      const double x = a[(size_t)i * d + k], y = b[(size_t)i * d + k];
      ab += x * y, aa += x * x, bb += y * y;
    }
    const double c = ab / sqrt(aa * bb + 1e-30);
    if (!(c >= worst)) worst = c; /* NaN counts as the worst */
  }
  return worst;
}

static void test_precision(const char *path, reid_precision prec, double min_cos) {
  reid_embedder *cpu = open_embedder(path, "cpu", REID_PRECISION_FP32);
  reid_embedder *gpu = open_embedder(path, "cuda", prec);
  if (!cpu || !gpu) goto done;
  CHECK(strstr(reid_embedder_describe(gpu), "cuda") != NULL, "describe: %s",
        reid_embedder_describe(gpu));
  const int d = reid_embedder_dim(cpu, REID_ROLE_VIDEO);
  float *want = test_alloc((size_t)NBOX * d), *got = test_alloc((size_t)NBOX * d);
  test_rng rng = test_rng_make(5);
  for (int fi = 0; fi < 8; fi++) {
    test_frame t = make_frame(&rng, formats[fi]);
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
    const double c = min_cosine(got, want, NBOX, d);
    fprintf(stderr, "%s %s: min cosine to the CPU %.9f\n", reid_precision_name(prec),
            format_names[fi], c);
    CHECK(c >= min_cos, "%s %s: cosine %.9f < %g", reid_precision_name(prec), format_names[fi], c,
          min_cos);
    free_frame(&t);
  }
  free(want);
  free(got);
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
  }
  reid_net_destroy(net);
  reid_backend_destroy(be);
  return test_finish("test_embedder_cuda");
}
