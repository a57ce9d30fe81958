/* CPU benchmark: ResNet-50 (last stride 1) inference at 256x128, batch 1 and
 * 16, with the fused oneDNN engine (fp32, bf16, and int8 with --calibration:
 * the network quantized as reid-train quantize does, on those crops), and one ResNet-18 training
 * step (forward, cross-entropy on a 100-class fc, backward, Adam) at 128x64,
 * batch 32. Prints crops/s (median of repetitions after warm-up). With
 * --peer, runs tests/bench/torch_peer.py on the same machine and prints the
 * ratios.
 *
 *   bench_cpu [--threads 2] [--min-time 3] [--reps 5] [--peer PATH/torch_peer.py]
 *             [--json OUT] [--no-train] [--calibration CROPS.npy]
 *
 * tests/bench/peers.sh runs it next to PyTorch, ONNX Runtime and OpenVINO. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "npy.h"
#include "quantize.h"
#include "preprocess.h"
#include "bench_util.h"
#include "resnet.h"

/* quantizes net in place on crops [n, 3, 256, 128] (a .npy), as reid-train quantize does */
static reid_status quantize_on(reid_net *net, const char *path) {
  int ndim;
  int64_t shape[8];
  float *x, *range = malloc(sizeof(float) * reid_net_activation_count(net));
  if (!range) return REID_ENOMEM;
  reid_status st = npy_read_f32(path, &ndim, shape, &x);
  if (st != REID_OK) {
    free(range);
    return st;
  }
  if (ndim != 4 || shape[1] != 3 || shape[2] != 256 || shape[3] != 128)
    st = reid_fail(REID_EINVAL, "%s: expected N x 3 x 256 x 128 crops", path);
  reid_calibrator *c = NULL;
  if (st == REID_OK) st = reid_calibrator_create(net, &c);
  for (int64_t i = 0; st == REID_OK && i < shape[0]; i += 8)
    st = reid_calibrator_add(c, x + (size_t)i * 3 * 256 * 128,
                             (int)(shape[0] - i < 8 ? shape[0] - i : 8));
  if (st == REID_OK) st = reid_calibrator_ranges(c, 99.99, range);
  if (st == REID_OK) st = reid_net_quantize(net, range);
  reid_calibrator_destroy(c);
  free(x);
  free(range);
  return st;
}

/* Crops of a 1280x720 NV12 frame to embeddings: preprocessing to NCHW then
 * the engine (with its input reorder), or straight into the engine's input. */
typedef struct frame_ctx {
  reid_engine *engine;
  reid_frame frame;
  reid_box boxes[16];
  reid_preprocess_params pp;
  float *x, *out;
  int n, direct;
} frame_ctx;

static reid_status frame_once(void *p) {
  frame_ctx *c = p;
  if (!c->direct) {
    REID_TRY(reid_preprocess_cpu(&c->frame, c->boxes, c->n, &c->pp, c->x));
    return reid_engine_embed(c->engine, c->x, c->n, c->out);
  }
  void *input;
  reid_tensor_format fmt;
  REID_TRY(reid_engine_input(c->engine, c->n, &input, &fmt));
  REID_TRY(reid_preprocess_cpu_format(&c->frame, c->boxes, c->n, &c->pp, &fmt, input));
  return reid_engine_run(c->engine, c->n, c->out);
}

static float *random_input(size_t n, unsigned seed) {
  float *x = malloc(sizeof(float) * n);
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = (float)((seed >> 8) & 0xFFFF) / 32768.0f - 1.0f;
  }
  return x;
}

int main(int argc, char **argv) {
  int threads = 2, reps = 5, train = 1;
  double min_time = 3.0;
  const char *peer = NULL, *json = NULL, *calibration = NULL;
  static const struct option options[] = {
      {"threads", required_argument, 0, 't'},     {"min-time", required_argument, 0, 'm'},
      {"reps", required_argument, 0, 'r'},        {"peer", required_argument, 0, 'p'},
      {"json", required_argument, 0, 'j'},        {"no-train", no_argument, 0, 'n'},
      {"calibration", required_argument, 0, 'c'}, {0, 0, 0, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
    switch (opt) {
    case 't': threads = atoi(optarg); break;
    case 'm': min_time = atof(optarg); break;
    case 'r': reps = atoi(optarg) > 0 ? atoi(optarg) : 1; break;
    case 'p': peer = optarg; break;
    case 'j': json = optarg; break;
    case 'n': train = 0; break;
    case 'c': calibration = optarg; break;
    default:
      fprintf(stderr, "usage: bench_cpu [--threads N] [--min-time S] [--reps N] [--peer "
                      "torch_peer.py] [--json OUT] [--no-train] [--calibration CROPS.npy]\n");
      return 2;
    }
  }
  reid_set_num_threads(threads);
  reid_backend *be;
  if (reid_backend_create("cpu", 0, &be) != REID_OK) {
    fprintf(stderr, "bench: %s\n", reid_last_error());
    return 1;
  }
  printf("reid CPU benchmark, %d threads\n\n", threads);
  printf("%-44s %12s\n", "configuration", "crops/s");

  reid_model_config cfg;
  reid_model_config_default(&cfg); /* resnet50, last stride 1, 256x128 */
  reid_net *net;
  if (reid_net_create(&cfg, be, &net) != REID_OK) {
    fprintf(stderr, "bench: %s\n", reid_last_error());
    return 1;
  }
  float *x = random_input((size_t)16 * 3 * 256 * 128, 1);
  float *out = malloc(sizeof(float) * 16 * 2048);
  double r50[3][2] = {{0}};             /* [precision fp32/bf16/int8][batch 1/16] */
  double from_frame[3][2][2] = {{{0}}}; /* [precision][batch][reorder / direct] */
  uint8_t *nv12 = malloc((size_t)1280 * 720 * 3 / 2);
  for (size_t i = 0; i < (size_t)1280 * 720 * 3 / 2; i++) nv12[i] = (uint8_t)(16 + i * 7 % 220);
  frame_ctx fc = {.frame = {.format = REID_PIX_NV12,
                            .width = 1280,
                            .height = 720,
                            .planes = {nv12, nv12 + 1280 * 720},
                            .strides = {1280, 1280}},
                  .pp = reid_preprocess_params_imagenet(256, 128),
                  .x = malloc(sizeof(float) * 16 * 3 * 256 * 128),
                  .out = out};
  for (int b = 0; b < 16; b++)
    fc.boxes[b] = (reid_box){(float)(10 + 155 * (b % 8)), (float)(40 + 340 * (b / 8)), 120, 300};
  const reid_precision precisions[3] = {REID_PRECISION_FP32, REID_PRECISION_BF16,
                                        REID_PRECISION_INT8};
  for (int p = 0; p < 3; p++)
    for (int b = 0; b < 2; b++) {
      if (p == 2 && b == 0) { /* int8 last: quantizing rounds the weights in place */
        double t0 = bench_now();
        reid_status qs = calibration ? quantize_on(net, calibration)
                                     : reid_fail(REID_EINVAL, "int8 needs --calibration CROPS.npy");
        if (qs != REID_OK) {
          printf("%-44s %12s  (%s)\n", "resnet50 ls1 256x128 int8", "n/a", reid_last_error());
          break;
        }
        printf("(quantized on %s in %.1f s)\n", calibration, bench_now() - t0);
      }
      int batch = b ? 16 : 1;
      reid_engine *engine;
      if (reid_engine_create(net, precisions[p], batch, &engine) != REID_OK) {
        printf("%-44s %12s  (%s)\n", "resnet50 ls1 256x128", "n/a", reid_last_error());
        continue;
      }
      bench_infer ctx = {engine, x, out, batch};
      r50[p][b] = bench_measure(bench_infer_once, &ctx, batch, min_time, reps);
      char name[96];
      snprintf(name, sizeof name, "resnet50 ls1 256x128 %s batch %d",
               reid_precision_name(precisions[p]), batch);
      printf("%-44s %12.1f\n", name, r50[p][b]);
      fc.engine = engine;
      fc.n = batch;
      for (int direct = 0; direct < 2; direct++) {
        fc.direct = direct;
        if (direct && reid_engine_input(engine, batch, &(void *){0}, &(reid_tensor_format){0}))
          continue; /* int8 quantizes its input itself */
        from_frame[p][b][direct] = bench_measure(frame_once, &fc, batch, min_time, reps);
        snprintf(name, sizeof name, "  from NV12 frame, %s",
                 direct ? "straight into input" : "NCHW + reorder");
        printf("%-44s %12.1f\n", name, from_frame[p][b][direct]);
      }
      reid_engine_destroy(engine);
    }
  reid_net_destroy(net);
  free(nv12);
  free(fc.x);

  /* ResNet-18 training step at 128x64, batch 32 (torchvision strides, as the peer) */
  reid_model_config tcfg;
  reid_model_config_default(&tcfg);
  tcfg.arch = REID_ARCH_RESNET18;
  tcfg.last_stride = 2;
  tcfg.input_height = 128;
  tcfg.input_width = 64;
  tcfg.num_classes = 100;
  bench_train_step t = {.be = be, .batch = 32, .classes = 100, .lr = 1e-4f};
  double train_rate = -1;
  if (train && reid_net_create(&tcfg, be, &t.net) == REID_OK) {
    size_t n;
    reid_net_params(t.net, &n);
    t.x = random_input((size_t)32 * 3 * 128 * 64, 2);
    t.loss = calloc(32, sizeof(float));
    t.dloss = malloc(32 * sizeof(float));
    for (int i = 0; i < 32; i++) t.dloss[i] = 1.0f / 32;
    t.probs = calloc(32 * 100, sizeof(float));
    t.dlogits = calloc(32 * 100, sizeof(float));
    t.m = calloc(n, sizeof(float));
    t.v = calloc(n, sizeof(float));
    t.labels = malloc(32 * sizeof(int32_t));
    for (int i = 0; i < 32; i++) t.labels[i] = (i * 37) % 100;
    train_rate = bench_measure(bench_train_once, &t, 32, min_time, reps);
    if (train_rate < 0) fprintf(stderr, "bench: training step failed: %s\n", reid_last_error());
    printf("%-44s %12.1f\n", "resnet18 128x64 train step batch 32 (img/s)", train_rate);
    reid_net_destroy(t.net);
  }

  double peer_b1 = 0, peer_b16 = 0, peer_train = 0;
  if (peer) {
    char cmd[1024], tmp[] = "/tmp/reid-bench-peer-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd >= 0) {
      snprintf(cmd, sizeof cmd,
               "/usr/bin/python3 '%s' --threads %d --min-time %g --reps %d --json '%s' >&2", peer,
               threads, min_time, reps, tmp);
      int rc = system(cmd);
      FILE *f = fopen(tmp, "r");
      if (rc == 0 && f) {
        char buf[8192];
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        buf[len] = 0;
        const char *k;
        if ((k = strstr(buf, "\"batch1_crops_per_s\""))) peer_b1 = atof(strchr(k, ':') + 1);
        if ((k = strstr(buf, "\"batch16_crops_per_s\""))) peer_b16 = atof(strchr(k, ':') + 1);
        if ((k = strstr(buf, "\"images_per_s\""))) peer_train = atof(strchr(k, ':') + 1);
      } else {
        printf("\nPyTorch peer not run (exit %d): python3-torch missing?\n", rc);
      }
      if (f) fclose(f);
      close(fd);
      unlink(tmp);
    }
    if (peer_b16 > 0) {
      printf("\n%-44s %12s %12s %8s\n", "vs PyTorch (same machine, same run)", "reid", "torch",
             "ratio");
      printf("%-44s %12.1f %12.1f %7.2fx\n", "resnet50 fp32 batch 1", r50[0][0], peer_b1,
             r50[0][0] / peer_b1);
      printf("%-44s %12.1f %12.1f %7.2fx\n", "resnet50 fp32 batch 16", r50[0][1], peer_b16,
             r50[0][1] / peer_b16);
      printf("%-44s %12.1f %12.1f %7.2fx\n", "resnet50 bf16 batch 16", r50[1][1], peer_b16,
             r50[1][1] / peer_b16);
      printf("%-44s %12.1f %12.1f %7.2fx\n", "resnet18 train step", train_rate, peer_train,
             train_rate / peer_train);
    }
  }
  if (json) {
    FILE *f = fopen(json, "w");
    if (f) {
      fprintf(f,
              "{\"threads\": %d, \"resnet50_ls1_256x128\": {\"fp32_batch1\": %.2f, "
              "\"fp32_batch16\": %.2f, "
              "\"bf16_batch1\": %.2f, \"bf16_batch16\": %.2f, "
              "\"int8_batch1\": %.2f, \"int8_batch16\": %.2f, "
              "\"frame_reorder\": [%.2f, %.2f, %.2f, %.2f], "
              "\"frame_direct\": [%.2f, %.2f, %.2f, %.2f]}, "
              "\"resnet18_train_128x64_b32_img_per_s\": %.2f, "
              "\"torch\": {\"batch1\": %.2f, \"batch16\": %.2f, \"train\": %.2f}}\n",
              threads, r50[0][0], r50[0][1], r50[1][0], r50[1][1], r50[2][0], r50[2][1],
              from_frame[0][0][0], from_frame[0][1][0], from_frame[1][0][0], from_frame[1][1][0],
              from_frame[0][0][1], from_frame[0][1][1], from_frame[1][0][1], from_frame[1][1][1],
              train_rate, peer_b1, peer_b16, peer_train);
      fclose(f);
    }
  }
  free(x);
  free(out);
  reid_backend_destroy(be);
  return 0;
}
