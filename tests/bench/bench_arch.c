/* CPU benchmark of the architectures of the network graph: crops/s of the
 * fused oneDNN engine at batch 1 and 16, fp32 and bf16, for each --arch
 * (default: osnet_x0_25, osnet_x1_0, mobilenet_v2, resnet50), at 256x128.
 * Random weights: the speed does not depend on them.
 *
 *   bench_arch [--arch A,B,...] [--threads 2] [--min-time 3] [--reps 5] [--size 256x128] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "engine.h"
#include "resnet.h"

int main(int argc, char **argv) {
  int threads = 2, reps = 5, h = 256, w = 128;
  double min_time = 3.0;
  char archs[256] = "osnet_x0_25,osnet_x1_0,mobilenet_v2,resnet50";
  static const struct option options[] = {
      {"threads", required_argument, 0, 't'}, {"min-time", required_argument, 0, 'm'},
      {"reps", required_argument, 0, 'r'},    {"arch", required_argument, 0, 'a'},
      {"size", required_argument, 0, 's'},    {0, 0, 0, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
    switch (opt) {
    case 't': threads = atoi(optarg); break;
    case 'm': min_time = atof(optarg); break;
    case 'r': reps = atoi(optarg) < 1 ? 1 : atoi(optarg) > 64 ? 64 : atoi(optarg); break;
    case 'a': snprintf(archs, sizeof archs, "%s", optarg); break;
    case 's':
      if (sscanf(optarg, "%dx%d", &h, &w) != 2) h = -1;
      break;
    default: h = -1;
    }
  }
  if (h < 32 || w < 32) {
    fprintf(stderr, "usage: bench_arch [--arch A,B,...] [--threads N] [--min-time S] [--reps N] "
                    "[--size HxW]\n");
    return 2;
  }
  reid_set_num_threads(threads);
  reid_backend *be;
  if (reid_backend_create("cpu", 0, &be) != REID_OK) {
    fprintf(stderr, "bench_arch: %s\n", reid_last_error());
    return 1;
  }
  printf("reid CPU benchmark of the architectures, %dx%d, %d threads (crops/s)\n\n", h, w, threads);
  printf("%-16s %10s %10s %10s %10s\n", "arch", "fp32 b1", "fp32 b16", "bf16 b1", "bf16 b16");
  float *x = malloc(sizeof(float) * 16 * 3 * h * w), *out = malloc(sizeof(float) * 16 * 2048);
  unsigned seed = 1;
  for (size_t i = 0; i < (size_t)16 * 3 * h * w; i++) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = (float)((seed >> 8) & 0xFFFF) / 32768.0f - 1.0f;
  }
  int failed = 0;
  for (char *save, *name = strtok_r(archs, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
    reid_model_config cfg;
    reid_model_config_default(&cfg);
    cfg.input_height = h;
    cfg.input_width = w;
    reid_net *net;
    if (reid_arch_parse(name, &cfg.arch) != REID_OK || reid_net_create(&cfg, be, &net) != REID_OK) {
      fprintf(stderr, "bench_arch: %s\n", reid_last_error());
      failed = 1;
      continue;
    }
    printf("%-16s", name);
    const reid_precision precisions[2] = {REID_PRECISION_FP32, REID_PRECISION_BF16};
    for (int p = 0; p < 2; p++)
      for (int b = 0; b < 2; b++) {
        reid_engine *engine;
        double rate = -1;
        if (reid_engine_create(net, precisions[p], b ? 16 : 1, &engine) == REID_OK) {
          bench_infer ctx = {engine, x, out, b ? 16 : 1};
          rate = bench_measure(bench_infer_once, &ctx, ctx.n, min_time, reps);
          reid_engine_destroy(engine);
        }
        if (rate < 0)
          printf(" %10s", "n/a");
        else
          printf(" %10.1f", rate);
        fflush(stdout);
      }
    printf("\n");
    reid_net_destroy(net);
  }
  free(x);
  free(out);
  reid_backend_destroy(be);
  return failed;
}
