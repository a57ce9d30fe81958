/* int8 quantization and the int8 CPU engine, without the command line:
 * per-channel rounding (steps, clamping, an all-zero channel); a ResNet-18 and
 * a MobileNetV2 with non-trivial batch norm, calibrated on crops of a smooth
 * picture, embed held-out crops in int8 within cosine 0.99 of fp32; the int8
 * file reloads to the same embeddings and keeps its metadata; a file with an
 * int8 weight but no steps, or ranges of the wrong length, is refused by name;
 * the engine refuses int8 on a float model and fp32 on an int8 model. */
#include <unistd.h>

#include "backend.h"
#include "checkpoint.h"
#include "engine.h"
#include "nn_fixtures.h"
#include "quantize.h"

#define H 64
#define W 32

static void test_per_channel(void) {
  const float w[2][4] = {{0.5f, -1.0f, 0.25f, 0.0f}, {0, 0, 0, 0}};
  int8_t q[8];
  float step[2];
  reid_quantize_per_channel(&w[0][0], 2, 4, q, step);
  CHECK(fabsf(step[0] - 1.0f / 127) < 1e-9f && step[1] == 1.0f, "steps %g %g", step[0], step[1]);
  CHECK(q[0] == 64 && q[1] == -127 && q[2] == 32 && q[3] == 0 && q[4] == 0, "q = %d %d %d %d %d",
        q[0], q[1], q[2], q[3], q[4]);
}

/* n crops [n, 3, H, W]: smooth patterns with a per-crop phase, roughly normalised */
static void crops(float *x, int n, int seed) {
  for (int i = 0; i < n; i++)
    for (int c = 0; c < 3; c++)
      for (int y = 0; y < H; y++)
        for (int u = 0; u < W; u++)
          x[(((size_t)i * 3 + c) * H + y) * W + u] =
              1.5f * sinf(0.21f * y * (1 + c) + 0.37f * u + 0.9f * (i + seed)) +
              0.5f * cosf(0.13f * (y + u) * (i % 3 + 1));
}

static void embed(reid_net *net, reid_precision p, const float *x, int n, float *out) {
  reid_engine *e = NULL;
  CHECK_OK(reid_engine_create(net, p, 4, &e));
  if (!e) return;
  CHECK_OK(reid_engine_embed(e, x, n, out));
  reid_engine_destroy(e);
  reid_l2_normalize_rows(out, n, reid_net_feature_dim(net));
}

static void test_arch(reid_arch arch) {
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  cfg.arch = arch;
  cfg.input_height = H;
  cfg.input_width = W;
  reid_backend *be;
  reid_net *net = NULL;
  CHECK_OK(reid_backend_create("cpu", 0, &be));
  CHECK_OK(reid_net_create(&cfg, be, &net));
  if (!net) return;
  test_rng rng = test_rng_make(11);
  randomise_batchnorm(net, &rng, 0.2f);
  const int n_cal = 12, n = 6, d = reid_net_feature_dim(net);
  float *cal = test_alloc((size_t)n_cal * 3 * H * W), *x = test_alloc((size_t)n * 3 * H * W);
  float *ref = test_alloc((size_t)n * d), *got = test_alloc((size_t)n * d),
        *back = test_alloc((size_t)n * d);
  crops(cal, n_cal, 0);
  crops(x, n, 100); /* held out */
  embed(net, REID_PRECISION_FP32, x, n, ref);
  CHECK(reid_engine_create(net, REID_PRECISION_INT8, 1, &(reid_engine *){0}) == REID_EINVAL &&
            strstr(reid_last_error(), "reid-train quantize"),
        "int8 on a float model: %s", reid_last_error());

  reid_calibrator *c = NULL;
  float *range = test_alloc((size_t)reid_net_activation_count(net));
  CHECK_OK(reid_calibrator_create(net, &c));
  CHECK(reid_calibrator_ranges(c, 99.99, range) == REID_EINVAL, "ranges before any crop");
  CHECK_OK(reid_calibrator_add(c, cal, 8));
  CHECK_OK(reid_calibrator_add(c, cal + (size_t)8 * 3 * H * W, n_cal - 8));
  CHECK_OK(reid_calibrator_ranges(c, 99.99, range));
  CHECK(range[0] > 1.0f && range[0] <= 2.01f, "%s: input range %g (|x| <= 2)", reid_arch_name(arch),
        range[0]);
  reid_calibrator_destroy(c);
  CHECK_OK(reid_net_quantize(net, range));
  embed(net, REID_PRECISION_INT8, x, n, got);
  double cos_min = test_min_row_cosine(ref, got, n, d);
  fprintf(stderr, "%s: int8 vs fp32 min cosine %.5f\n", reid_arch_name(arch), cos_min);
  CHECK(cos_min >= 0.99, "%s: int8 vs fp32 min cosine %.5f < 0.99", reid_arch_name(arch), cos_min);
  CHECK(reid_engine_create(net, REID_PRECISION_FP32, 1, &(reid_engine *){0}) == REID_EINVAL &&
            strstr(reid_last_error(), "quantized to int8"),
        "fp32 on an int8 model: %s", reid_last_error());

  /* the file: reloads to the same embeddings */
  char path[] = "/tmp/reid-test-quantize-XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0) close(fd);
  CHECK_OK(reid_checkpoint_save_int8(net, NULL, path, "test"));
  reid_net *loaded = NULL;
  CHECK_OK(reid_checkpoint_load(path, NULL, be, &loaded));
  if (loaded) {
    CHECK(reid_net_config(loaded)->int8, "precision=int8 read back");
    embed(loaded, REID_PRECISION_INT8, x, n, back);
    CHECK_CLOSE(back, got, (size_t)n * d, 1e-6, 1e-5, "reloaded int8 model");
    reid_net_destroy(loaded);
  }
  st_file *f = NULL;
  CHECK_OK(st_open(path, &f));
  if (f) {
    CHECK(f && st_meta(f, "quantization") && !strcmp(st_meta(f, "precision"), "int8"), "metadata");
    st_close(f);
  }
  unlink(path);
  free(cal), free(x), free(ref), free(got), free(back), free(range);
  reid_net_destroy(net);
  reid_backend_destroy(be);
}

/* an int8 file without a weight's steps, and one with too few activation ranges */
static void test_bad_files(void) {
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  cfg.arch = REID_ARCH_RESNET18;
  cfg.input_height = H;
  cfg.input_width = W;
  reid_backend *be;
  reid_net *net = NULL;
  CHECK_OK(reid_backend_create("cpu", 0, &be));
  CHECK_OK(reid_net_create(&cfg, be, &net));
  if (!net) return;
  float *params, *buffers;
  CHECK_OK(reid_net_download(net, &params, &buffers));
  char path[] = "/tmp/reid-test-quantize-bad-XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0) close(fd);
  for (int bad = 0; bad < 2; bad++) {
    st_writer *w = st_writer_new();
    CHECK_OK(st_writer_add_meta(w, "arch", "resnet18"));
    CHECK_OK(st_writer_add_meta(w, "input_height", "64"));
    CHECK_OK(st_writer_add_meta(w, "input_width", "32"));
    CHECK_OK(st_writer_add_meta(w, "precision", "int8"));
    for (int i = 0; i < reid_net_tensor_count(net); i++) {
      const reid_tensor_view *t = reid_net_tensor(net, i);
      const float *data = (t->trainable ? params : buffers) + t->offset;
      if (reid_net_tensor_is_quantized(net, i) && bad == 0) { /* I8, no `_scale` */
        int8_t *q = calloc(t->numel, 1);
        CHECK_OK(st_writer_add_raw(w, t->name, ST_I8, t->ndim, t->shape, q));
        free(q);
      } else {
        CHECK_OK(st_writer_add_f32(w, t->name, ST_F32, t->ndim, t->shape, data));
      }
    }
    int64_t few = 3;
    const float r[3] = {1, 1, 1};
    CHECK_OK(st_writer_add_f32(w, REID_INT8_RANGE_TENSOR, ST_F32, 1, &few, r));
    CHECK_OK(st_writer_save(w, path));
    st_writer_free(w);
    reid_net *loaded = NULL;
    reid_status st = reid_checkpoint_load(path, NULL, be, &loaded);
    const char *want = bad == 0 ? "conv1.weight_scale" : REID_INT8_RANGE_TENSOR;
    CHECK(st == REID_EFORMAT && strstr(reid_last_error(), want), "bad file %d: %s", bad,
          reid_last_error());
    reid_net_destroy(loaded);
  }
  unlink(path);
  free(params);
  free(buffers);
  reid_net_destroy(net);
  reid_backend_destroy(be);
}

int main(void) {
  test_per_channel();
  test_arch(REID_ARCH_RESNET18);
  test_arch(REID_ARCH_MOBILENET_V2);
  test_bad_files();
  return test_finish("test_quantize");
}
