/* GPU benchmark (issue 3): ResNet-50 (last stride 1) at 256x128 through the
 * CUDA engine in each precision and batch size, timed with CUDA events after
 * warm-up (median, 10th and 90th percentile of --iters runs); the host path
 * (pinned upload of float NCHW input) as well; GPU preprocessing of a 1080p
 * NV12 frame; and one training step (forward, cross-entropy on a 751-class
 * fc, backward, Adam) of ResNet-50 at batch 64 on the CUDA backend, strict
 * fp32 and TF32.
 *
 *   bench_gpu [--model M.safetensors] [--precision fp32,tf32,fp16,bf16] [--batch 1,128]
 *             [--iters 100] [--train-batch 64] [--skip-train] [--skip-infer] [--json OUT]
 *             [--train-iters 20] [--arch resnet50] [--input 256x128]
 *
 * Without --model the weights are torchvision's random initialisation (the
 * speed does not depend on them) of --arch at --input (the CUDA emulator's
 * smoke run uses a small ResNet-18). Prints a table; --json writes the
 * numbers. Exits 77 without a GPU, 1 when any measurement failed. */
#include <cuda_runtime_api.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "checkpoint.h"
#include "engine.h"
#include "reid_cuda.h"
#include "resnet.h"

#define MAX_RESULTS 64

typedef struct result {
  char name[64];
  int batch;
  double ms, p10, p90, items_per_s;
} result;

static result results[MAX_RESULTS];
static int n_results;
static int failures; /* measurements that could not be taken */

typedef reid_status (*bench_fn)(void *ctx);

/* Median (p10, p90) milliseconds of one call of fn, between CUDA events on
 * the backend's stream; fn must have finished its GPU work when it returns
 * or leave it on that stream. */
static int time_events(reid_backend *be, bench_fn fn, void *ctx, int warmup, int iters, double *ms,
                       double *p10, double *p90) {
  cudaStream_t stream = (cudaStream_t)reid_cuda_stream(be);
  cudaEvent_t start, stop;
  if (cudaEventCreate(&start) != cudaSuccess || cudaEventCreate(&stop) != cudaSuccess) return -1;
  double *t = calloc((size_t)iters, sizeof *t);
  int ok = t != NULL;
  for (int i = 0; ok && i < warmup; i++) ok = fn(ctx) == REID_OK;
  for (int i = 0; ok && i < iters; i++) {
    float e = 0;
    ok = cudaEventRecord(start, stream) == cudaSuccess && fn(ctx) == REID_OK &&
         cudaEventRecord(stop, stream) == cudaSuccess &&
         cudaEventSynchronize(stop) == cudaSuccess &&
         cudaEventElapsedTime(&e, start, stop) == cudaSuccess;
    t[i] = e;
  }
  if (ok) {
    qsort(t, (size_t)iters, sizeof *t, bench_cmp_double);
    *ms = t[iters / 2], *p10 = t[iters / 10], *p90 = t[iters * 9 / 10];
  } else {
    fprintf(stderr, "bench_gpu: %s\n", reid_last_error());
    failures++;
  }
  free(t);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ok ? 0 : -1;
}

static void add_result(const char *name, int batch, double ms, double p10, double p90, int items) {
  if (n_results == MAX_RESULTS) return;
  result *r = &results[n_results++];
  snprintf(r->name, sizeof r->name, "%s", name);
  r->batch = batch, r->ms = ms, r->p10 = p10, r->p90 = p90;
  r->items_per_s = items * 1000.0 / ms;
  printf("%-34s batch %4d  %9.3f ms  (p10 %.3f, p90 %.3f)  %10.1f /s\n", name, batch, ms, p10, p90,
         r->items_per_s);
  fflush(stdout);
}

/* ---- inference ---- */

typedef struct infer_ctx {
  reid_engine *e;
  const float *x;
  float *out;
  int n;
} infer_ctx;

static reid_status run_device(void *p) { /* input already in the engine's buffer */
  infer_ctx *c = p;
  return reid_cuda_engine_run(c->e, c->n, c->out);
}

static reid_status run_host(void *p) { /* float NCHW host input, pinned upload */
  infer_ctx *c = p;
  return reid_engine_embed(c->e, c->x, c->n, c->out);
}

static void bench_inference(reid_net *net, reid_precision prec, const int *batches, int n_batches,
                            int iters) {
  int max_batch = 1;
  for (int i = 0; i < n_batches; i++) max_batch = batches[i] > max_batch ? batches[i] : max_batch;
  reid_engine *e = NULL;
  double t0 = bench_now();
  if (reid_engine_create(net, prec, max_batch, &e) != REID_OK) {
    fprintf(stderr, "bench_gpu: engine %s: %s\n", reid_precision_name(prec), reid_last_error());
    failures++;
    return;
  }
  printf("# %s (created in %.1f s)\n", reid_engine_describe(e), bench_now() - t0);
  const reid_model_config *cfg = reid_net_config(net);
  const size_t image = (size_t)3 * cfg->input_height * cfg->input_width;
  float *x = malloc(sizeof(float) * image * max_batch);
  float *out = malloc(sizeof(float) * (size_t)reid_engine_dim(e) * max_batch);
  for (size_t i = 0; i < image * max_batch; i++) x[i] = (float)sin(0.001 * i);
  infer_ctx c = {e, x, out, max_batch};
  if (reid_engine_embed(e, x, max_batch, out) != REID_OK) { /* fills the input buffer */
    fprintf(stderr, "bench_gpu: %s\n", reid_last_error());
    failures++;
  }
  char name[64];
  for (int i = 0; i < n_batches; i++) {
    c.n = batches[i];
    const int it = c.n >= 64 ? (iters + 2) / 3 : iters;
    double ms, p10, p90;
    snprintf(name, sizeof name, "engine %s (device input)", reid_precision_name(prec));
    if (time_events(reid_net_backend(net), run_device, &c, 10, it, &ms, &p10, &p90) == 0)
      add_result(name, c.n, ms, p10, p90, c.n);
    snprintf(name, sizeof name, "engine %s (host input)", reid_precision_name(prec));
    if (time_events(reid_net_backend(net), run_host, &c, 3, it, &ms, &p10, &p90) == 0)
      add_result(name, c.n, ms, p10, p90, c.n);
  }
  reid_engine_destroy(e);
  free(x);
  free(out);
}

/* ---- preprocessing ---- */

typedef struct pre_ctx {
  reid_backend *be;
  reid_frame frame;
  reid_box boxes[32];
  reid_preprocess_params p;
  reid_tensor_format fmt;
  void *out;
} pre_ctx;

static reid_status run_pre(void *p) {
  pre_ctx *c = p;
  return reid_preprocess_cuda(c->be, &c->frame, REID_MEMORY_DEVICE, c->boxes, 32, &c->p, &c->fmt,
                              c->out);
}

static void bench_preprocess(reid_backend *be, int iters) {
  const int w = 1920, h = 1080;
  const size_t bytes = (size_t)w * h * 3 / 2;
  uint8_t *host = malloc(bytes), *dev = be->ops->alloc(be, bytes);
  for (size_t i = 0; i < bytes; i++) host[i] = (uint8_t)(i * 2654435761u >> 24);
  pre_ctx c = {.be = be,
               .p = reid_preprocess_params_imagenet(256, 128),
               .fmt = {REID_LAYOUT_NHWC, 8, REID_PRECISION_FP16}};
  c.out = be->ops->alloc(be, (size_t)32 * 256 * 128 * 8 * 2);
  if (!dev || !c.out || be->ops->upload(be, dev, host, bytes) != REID_OK) {
    fprintf(stderr, "bench_gpu: preprocessing setup: %s\n", reid_last_error());
    failures++;
    return;
  }
  c.frame = (reid_frame){.format = REID_PIX_NV12,
                         .width = w,
                         .height = h,
                         .planes = {dev, dev + (size_t)w * h},
                         .strides = {w, w}};
  for (int i = 0; i < 32; i++)
    c.boxes[i] = (reid_box){(float)(i * 57 % 1700), (float)(i * 31 % 700), 120.0f + i, 300.0f - i};
  double ms, p10, p90;
  if (time_events(be, run_pre, &c, 10, iters, &ms, &p10, &p90) == 0)
    add_result("preprocess NV12 1080p -> fp16 NHWC8", 32, ms, p10, p90, 32);
  be->ops->free(be, dev);
  be->ops->free(be, c.out);
  free(host);
}

/* ---- training step ---- */

static void bench_train(reid_backend *be, const reid_model_config *net_cfg, int batch, int iters) {
  reid_model_config cfg = *net_cfg;
  cfg.num_classes = 751; /* a torchvision fc, as the PyTorch peer */
  bench_train_step c = {.be = be, .batch = batch, .classes = cfg.num_classes, .lr = 3.5e-4f};
  if (reid_net_create(&cfg, be, &c.net) != REID_OK) {
    fprintf(stderr, "bench_gpu: training net: %s\n", reid_last_error());
    failures++;
    return;
  }
  size_t np;
  reid_net_params(c.net, &np);
  const size_t image = (size_t)3 * cfg.input_height * cfg.input_width;
  c.x = be->ops->alloc(be, sizeof(float) * image * batch);
  c.m = be->ops->alloc(be, sizeof(float) * np);
  c.v = be->ops->alloc(be, sizeof(float) * np);
  c.loss = be->ops->alloc(be, sizeof(float) * batch);
  c.dloss = be->ops->alloc(be, sizeof(float) * batch);
  c.probs = be->ops->alloc(be, sizeof(float) * batch * c.classes);
  c.dlogits = be->ops->alloc(be, sizeof(float) * batch * c.classes);
  c.labels = be->ops->alloc(be, sizeof(int32_t) * batch);
  int32_t *labels = malloc(sizeof(int32_t) * batch);
  for (int i = 0; i < batch; i++) labels[i] = i * 7 % c.classes;
  if (!c.x || !c.m || !c.v || !c.loss || !c.dloss || !c.probs || !c.dlogits || !c.labels ||
      be->ops->fill(be, c.x, image * batch, 0.5f) != REID_OK ||
      be->ops->fill(be, c.m, np, 0.0f) != REID_OK || be->ops->fill(be, c.v, np, 0.0f) != REID_OK ||
      be->ops->fill(be, c.dloss, batch, 1.0f / batch) != REID_OK ||
      be->ops->upload(be, c.labels, labels, sizeof(int32_t) * batch) != REID_OK) {
    fprintf(stderr, "bench_gpu: training setup: %s\n", reid_last_error());
    failures++;
  } else {
    for (int tf32 = 0; tf32 < 2; tf32++) {
      reid_cuda_set_tf32(be, tf32);
      double ms, p10, p90;
      if (time_events(be, bench_train_once, &c, iters < 3 ? iters : 3, iters, &ms, &p10, &p90) ==
          0) {
        char name[64];
        snprintf(name, sizeof name, "train step %s (backend %s)", reid_arch_name(cfg.arch),
                 tf32 ? "tf32" : "fp32");
        add_result(name, batch, ms, p10, p90, batch);
      }
    }
    reid_cuda_set_tf32(be, 0);
  }
  void *bufs[] = {c.x, c.m, c.v, c.loss, c.dloss, c.probs, c.dlogits, c.labels};
  for (int i = 0; i < 8; i++)
    if (bufs[i]) be->ops->free(be, bufs[i]);
  free(labels);
  reid_net_destroy(c.net);
}

/* ---- main ---- */

static int parse_list(const char *s, int *out, int max) {
  int n = 0;
  for (const char *p = s; *p && n < max;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 1 || v > 4096) return -1;
    out[n++] = (int)v;
    p = *end == ',' ? end + 1 : end;
    if (*end && *end != ',') return -1;
  }
  return n;
}

static void write_json(const char *path, const char *device) {
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "bench_gpu: cannot write %s\n", path);
    return;
  }
  fprintf(f, "{\"device\": \"%s\", \"results\": [\n", device);
  for (int i = 0; i < n_results; i++)
    fprintf(f,
            "  {\"name\": \"%s\", \"batch\": %d, \"ms\": %.4f, \"p10\": %.4f, \"p90\": %.4f, "
            "\"per_s\": %.2f}%s\n",
            results[i].name, results[i].batch, results[i].ms, results[i].p10, results[i].p90,
            results[i].items_per_s, i + 1 < n_results ? "," : "");
  fprintf(f, "]}\n");
  fclose(f);
}

int main(int argc, char **argv) {
  const char *model = NULL, *json = NULL, *precisions = "fp32,tf32,fp16,bf16";
  int batches[16] = {1, 128}, n_batches = 2, iters = 100, train_batch = 64, train_iters = 20;
  int skip_train = 0, skip_infer = 0;
  reid_model_config cfg;
  reid_model_config_default(&cfg); /* resnet50, last stride 1, 256x128 */
  static struct option options[] = {
      {"model", required_argument, 0, 'm'},       {"precision", required_argument, 0, 'p'},
      {"batch", required_argument, 0, 'b'},       {"iters", required_argument, 0, 'i'},
      {"train-batch", required_argument, 0, 't'}, {"skip-train", no_argument, 0, 'T'},
      {"skip-infer", no_argument, 0, 'I'},        {"json", required_argument, 0, 'j'},
      {"train-iters", required_argument, 0, 'r'}, {"arch", required_argument, 0, 'a'},
      {"input", required_argument, 0, 's'},       {0, 0, 0, 0}};
  int opt;
  while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
    switch (opt) {
    case 'm': model = optarg; break;
    case 'p': precisions = optarg; break;
    case 'b': n_batches = parse_list(optarg, batches, 16); break;
    case 'i': iters = atoi(optarg); break;
    case 't': train_batch = atoi(optarg); break;
    case 'r': train_iters = atoi(optarg); break;
    case 'T': skip_train = 1; break;
    case 'I': skip_infer = 1; break;
    case 'j': json = optarg; break;
    case 'a':
      if (reid_arch_parse(optarg, &cfg.arch) != REID_OK) {
        fprintf(stderr, "bench_gpu: %s\n", reid_last_error());
        return 2;
      }
      break;
    case 's':
      if (sscanf(optarg, "%dx%d", &cfg.input_height, &cfg.input_width) != 2 ||
          cfg.input_height < 32 || cfg.input_width < 32 || cfg.input_height > 1024 ||
          cfg.input_width > 1024) {
        fprintf(stderr, "bench_gpu: --input wants HxW, 32..1024 each, got '%s'\n", optarg);
        return 2;
      }
      break;
    default:
      fprintf(stderr, "usage: bench_gpu [--model M] [--precision LIST] [--batch LIST] [--iters N] "
                      "[--train-batch N] [--skip-train] [--skip-infer] [--json OUT] "
                      "[--train-iters N] [--arch A] [--input HxW]\n");
      return 2;
    }
  }
  if (n_batches < 1 || iters < 10 || train_batch < 2 || train_iters < 1) {
    fprintf(stderr, "bench_gpu: bad --batch, --iters (>= 10), --train-batch (>= 2) or "
                    "--train-iters (>= 1)\n");
    return 2;
  }
  if (!reid_cuda_available()) {
    fprintf(stderr, "bench_gpu: no usable CUDA GPU\n");
    return 77;
  }
  reid_backend *be = NULL;
  if (reid_backend_create("cuda", 0, &be) != REID_OK) {
    fprintf(stderr, "bench_gpu: %s\n", reid_last_error());
    return 1;
  }
  char device[256] = "unknown";
  reid_cuda_device_name(be, device, sizeof device);
  printf("# device: %s\n", device);
  if (!skip_infer) {
    reid_net *net = NULL;
    reid_status st;
    if (model) {
      st = reid_checkpoint_load(model, "", be, &net);
    } else {
      st = reid_net_create(&cfg, be, &net);
    }
    if (st != REID_OK) {
      fprintf(stderr, "bench_gpu: %s\n", reid_last_error());
      reid_backend_destroy(be);
      return 1;
    }
    printf("# model: %s, %s, last stride %d, %dx%d\n", model ? model : "random init",
           reid_arch_name(reid_net_config(net)->arch), reid_net_config(net)->last_stride,
           reid_net_config(net)->input_height, reid_net_config(net)->input_width);
    char list[64];
    snprintf(list, sizeof list, "%s", precisions);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
      reid_precision prec;
      if (reid_precision_parse(tok, &prec) != REID_OK) {
        fprintf(stderr, "bench_gpu: %s\n", reid_last_error());
        continue;
      }
      bench_inference(net, prec, batches, n_batches, iters);
    }
    reid_net_destroy(net);
    bench_preprocess(be, iters);
  }
  if (!skip_train) bench_train(be, &cfg, train_batch, train_iters);
  if (json) write_json(json, device);
  reid_backend_destroy(be);
  if (failures) fprintf(stderr, "bench_gpu: %d measurements failed\n", failures);
  return failures ? 1 : 0;
}
