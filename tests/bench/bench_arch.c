/* CPU benchmark of the architectures of the network graph: crops/s of the
 * fused oneDNN engine at batch 1 and 16, fp32 and bf16, for each --arch
 * (default: osnet_x0_25, osnet_x1_0, mobilenet_v2, resnet50), at 256x128.
 * Random weights: the speed does not depend on them.
 * With --peer, each architecture is followed by tests/bench/torch_peer.py on
 * the same architecture (PyTorch's fp32 variants: eager NCHW, eager
 * channels_last, frozen TorchScript; its bf16 ones: autocast, bf16 model,
 * frozen bf16 TorchScript), and the table ends with reid / PyTorch's fastest
 * fp32 variant (reid fp32) and fastest bf16 variant (reid bf16). --rounds N
 * repeats the whole sequence (reid, PyTorch, next architecture) N times and
 * reports medians over the rounds, so that load from other processes hits
 * both sides alike. The load average is printed at the start and the end.
 * With REID_BENCH_CLOCK=cpu (bench_util.h; the peer inherits it) both sides
 * count the process's CPU time instead of wall time: crops per CPU-second.
 *
 *   bench_arch [--arch A,B,...] [--threads 2] [--min-time 3] [--reps 5] [--size 256x128]
 *              [--peer tests/bench/torch_peer.py] [--workdir DIR] [--rounds 1] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "engine.h"
#include "resnet.h"

#define MAX_ARCHS  16
#define MAX_ROUNDS 9

/* crops/s of one architecture in one round: [precision fp32/bf16][batch 1/16]; -1 not measured */
typedef struct arch_round {
  double reid[2][2], torch[2][2];
  char variant[2][2][32];
} arch_round;

static void print_load(const char *when) {
  double l[3] = {0, 0, 0};
  if (getloadavg(l, 3) == 3) printf("load average %s: %.2f %.2f %.2f\n", when, l[0], l[1], l[2]);
}

/* reid's four configurations of one architecture; 0 when one fails (bf16 engines that this CPU
 * cannot create are n/a, not failures) */
static int measure_reid(reid_backend *be, const char *name, int h, int w, const float *x,
                        float *out, double min_time, int reps, arch_round *r) {
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  cfg.input_height = h;
  cfg.input_width = w;
  reid_net *net;
  if (reid_arch_parse(name, &cfg.arch) != REID_OK || reid_net_create(&cfg, be, &net) != REID_OK) {
    fprintf(stderr, "bench_arch: %s: %s\n", name, reid_last_error());
    return 0;
  }
  printf("%-16s", name);
  int ok = 1;
  const reid_precision precisions[2] = {REID_PRECISION_FP32, REID_PRECISION_BF16};
  for (int p = 0; p < 2; p++)
    for (int b = 0; b < 2; b++) {
      reid_engine *engine;
      double rate = -1;
      if (reid_engine_create(net, precisions[p], b ? 16 : 1, &engine) == REID_OK) {
        bench_infer ctx = {engine, x, out, b ? 16 : 1};
        rate = bench_measure(bench_infer_once, &ctx, ctx.n, min_time, reps);
        if (rate < 0) ok = 0; /* a running engine failed */
        reid_engine_destroy(engine);
      } else {
        ok &= p == 1; /* bf16 may be missing on this CPU; fp32 may not */
      }
      if (rate < 0) fprintf(stderr, "bench_arch: %s: %s\n", name, reid_last_error());
      r->reid[p][b] = rate;
      if (rate < 0)
        printf(" %10s", "n/a");
      else
        printf(" %10.1f", rate);
      fflush(stdout);
    }
  printf("\n");
  reid_net_destroy(net);
  return ok;
}

/* torch_peer.py on one architecture: its "best ARCH fp32|bf16 BATCH RATE VARIANT" lines; its
 * other output goes to stderr */
static void measure_peer(const char *peer, const char *workdir, const char *name, int threads,
                         double min_time, int reps, arch_round *r) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 '%s' --arch '%s' --workdir '%s' --threads %d --min-time %g --reps %d "
           "--skip-train --variants "
           "nograd,inference_cl,jit_freeze,autocast_bf16_cl,bf16_cl,jit_freeze_bf16",
           peer, name, workdir, threads, min_time, reps);
  fflush(stdout);
  FILE *f = popen(cmd, "r");
  if (!f) {
    fprintf(stderr, "bench_arch: cannot run %s\n", peer);
    return;
  }
  char line[512];
  while (fgets(line, sizeof line, f)) {
    char arch[64], kind[8], variant[32];
    int batch;
    double rate;
    if (sscanf(line, "best %63s %7s %d %lf %31s", arch, kind, &batch, &rate, variant) == 5 &&
        (batch == 1 || batch == 16)) {
      const int p = strcmp(kind, "bf16") == 0, b = batch == 16;
      r->torch[p][b] = rate;
      snprintf(r->variant[p][b], sizeof r->variant[p][b], "%s", variant);
    } else {
      fputs(line, stderr);
    }
  }
  const int rc = pclose(f);
  if (rc != 0) fprintf(stderr, "bench_arch: PyTorch peer on %s exited with %d\n", name, rc);
}

static double median_of(double *v, int n) {
  int k = 0;
  for (int i = 0; i < n; i++)
    if (v[i] > 0) v[k++] = v[i];
  if (k == 0) return -1;
  qsort(v, k, sizeof *v, bench_cmp_double);
  return k % 2 ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
}

int main(int argc, char **argv) {
  int threads = 2, reps = 5, h = 256, w = 128, rounds = 1;
  double min_time = 3.0;
  const char *peer = NULL, *workdir = "/tmp/reid-torch-peer";
  char archs[256] = "osnet_x0_25,osnet_x1_0,mobilenet_v2,resnet50";
  static const struct option options[] = {{"threads", required_argument, 0, 't'},
                                          {"min-time", required_argument, 0, 'm'},
                                          {"reps", required_argument, 0, 'r'},
                                          {"arch", required_argument, 0, 'a'},
                                          {"size", required_argument, 0, 's'},
                                          {"peer", required_argument, 0, 'p'},
                                          {"workdir", required_argument, 0, 'w'},
                                          {"rounds", required_argument, 0, 'n'},
                                          {0, 0, 0, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
    switch (opt) {
    case 't': threads = atoi(optarg); break;
    case 'm': min_time = atof(optarg); break;
    case 'r': reps = atoi(optarg) < 1 ? 1 : atoi(optarg) > 64 ? 64 : atoi(optarg); break;
    case 'a': snprintf(archs, sizeof archs, "%s", optarg); break;
    case 'p': peer = optarg; break;
    case 'w': workdir = optarg; break;
    case 'n': rounds = atoi(optarg); break;
    case 's':
      if (sscanf(optarg, "%dx%d", &h, &w) != 2) h = -1;
      break;
    default: h = -1;
    }
  }
  if (h < 32 || w < 32 || rounds < 1 || rounds > MAX_ROUNDS) {
    fprintf(stderr,
            "usage: bench_arch [--arch A,B,...] [--threads N] [--min-time S] [--reps N] "
            "[--size HxW] [--peer torch_peer.py] [--workdir DIR] [--rounds 1..%d]\n",
            MAX_ROUNDS);
    return 2;
  }
  if (peer && (h != 256 || w != 128)) {
    fprintf(stderr, "bench_arch: the PyTorch peer measures 256x128 only\n");
    return 2;
  }
  char *names[MAX_ARCHS];
  int n_arch = 0;
  for (char *save, *name = strtok_r(archs, ",", &save); name && n_arch < MAX_ARCHS;
       name = strtok_r(NULL, ",", &save))
    names[n_arch++] = name;
  reid_set_num_threads(threads);
  reid_backend *be;
  if (reid_backend_create("cpu", 0, &be) != REID_OK) {
    fprintf(stderr, "bench_arch: %s\n", reid_last_error());
    return 1;
  }
  const char *clk = getenv("REID_BENCH_CLOCK");
  const char *unit = clk && strcmp(clk, "cpu") == 0 ? "crops per CPU-second" : "crops/s";
  printf("reid CPU benchmark of the architectures, %dx%d, %d threads (%s)\n", h, w, threads, unit);
  print_load("at start");
  float *x = malloc(sizeof(float) * 16 * 3 * h * w), *out = malloc(sizeof(float) * 16 * 2048);
  static arch_round res[MAX_ROUNDS][MAX_ARCHS];
  for (int r = 0; r < rounds; r++)
    for (int a = 0; a < n_arch; a++)
      for (int i = 0; i < 4; i++) res[r][a].reid[i / 2][i % 2] = res[r][a].torch[i / 2][i % 2] = -1;
  unsigned seed = 1;
  for (size_t i = 0; i < (size_t)16 * 3 * h * w; i++) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = (float)((seed >> 8) & 0xFFFF) / 32768.0f - 1.0f;
  }
  int failed = 0;
  for (int r = 0; r < rounds; r++) {
    printf("\nround %d of %d, ", r + 1, rounds);
    print_load("now");
    printf("%-16s %10s %10s %10s %10s\n", "reid", "fp32 b1", "fp32 b16", "bf16 b1", "bf16 b16");
    for (int a = 0; a < n_arch; a++) {
      if (!measure_reid(be, names[a], h, w, x, out, min_time, reps, &res[r][a])) {
        failed = 1;
        continue;
      }
      if (peer) measure_peer(peer, workdir, names[a], threads, min_time, reps, &res[r][a]);
    }
  }
  printf("\n%d round%s, median over rounds (%s)\n", rounds, rounds > 1 ? "s" : "", unit);
  printf("%-16s %-5s %5s %10s %10s  %-18s %7s\n", "arch", "prec", "batch", "reid",
         peer ? "PyTorch" : "", peer ? "(its fastest)" : "", peer ? "ratio" : "");
  for (int a = 0; a < n_arch; a++)
    for (int p = 0; p < 2; p++)
      for (int b = 0; b < 2; b++) {
        double rv[MAX_ROUNDS], tv[MAX_ROUNDS];
        for (int r = 0; r < rounds; r++)
          rv[r] = res[r][a].reid[p][b], tv[r] = res[r][a].torch[p][b];
        const double reid = median_of(rv, rounds), torch = median_of(tv, rounds);
        printf("%-16s %-5s %5d %10.1f", names[a], p ? "bf16" : "fp32", b ? 16 : 1, reid);
        if (peer && torch > 0 && reid > 0)
          printf(" %10.1f  %-18s %6.2fx", torch, res[rounds - 1][a].variant[p][b], reid / torch);
        else if (peer)
          printf(" %10s", "n/a");
        printf("\n");
      }
  print_load("at end");
  free(x);
  free(out);
  reid_backend_destroy(be);
  return failed;
}
