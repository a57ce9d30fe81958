/* Out of GPU memory at every allocation of the CUDA inference path, one at a
 * time (fault injection of the CUDA emulator): backend and network; the
 * engine with its plans and graphs, the host-input path and the GPU
 * preprocessing path; a training step on a fresh backend (every one of its
 * first 24 allocations, then every 13th).
 * Each run must end cleanly: either a failure with a message, or success
 * where the code has a fallback; never a crash, and every emulated allocation
 * given back (LeakSanitizer checks the host side in CI's sanitizer build). */
#include <math.h>
#include <string.h>

#include "backend.h"
#include "emu_control.h"
#include "engine.h"
#include "preprocess.h"
#include "reid_cuda.h"
#include "resnet.h"
#include "test_util.h"

#define BATCH 3

static reid_model_config small_resnet18(void) {
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  cfg.arch = REID_ARCH_RESNET18;
  cfg.input_height = 32, cfg.input_width = 32;
  return cfg;
}

/* Phase 1: a backend and a network on it. */
static reid_status make_net(void) {
  reid_backend *be = NULL;
  reid_net *net = NULL;
  const reid_model_config cfg = small_resnet18();
  reid_status st = reid_backend_create("cuda", 0, &be);
  if (st == REID_OK) st = reid_net_create_empty(&cfg, be, &net);
  reid_net_destroy(net);
  reid_backend_destroy(be);
  return st;
}

/* Phase 2, on a network made once: an engine with its plans and graphs, the
 * host-input path and the GPU preprocessing path. */
static reid_status use_engine(reid_net *net, const float *x, const reid_frame *frame,
                              const reid_box *boxes, float *out) {
  reid_engine *e = NULL;
  reid_status st = reid_engine_create(net, REID_PRECISION_FP16, 4, &e);
  if (st == REID_OK) st = reid_engine_embed(e, x, BATCH, out);
  if (st == REID_OK) {
    void *input;
    reid_tensor_format fmt;
    reid_preprocess_params p = reid_preprocess_params_imagenet(32, 32);
    st = reid_cuda_engine_input(e, &input, &fmt);
    if (st == REID_OK)
      st = reid_preprocess_cuda(reid_net_backend(net), frame, REID_MEMORY_HOST, boxes, BATCH, &p,
                                &fmt, input);
    if (st == REID_OK) st = reid_cuda_engine_run(e, BATCH, out);
  }
  reid_engine_destroy(e);
  return st;
}

/* Phase 3: one training step (forward in training mode, cross-entropy,
 * backward, Adam) on a fresh backend, whose convolution plans, workspace and
 * scratch are made on the way. */
static reid_status train_step(const float *x) {
  enum { CLASSES = 8 };
  reid_backend *be = NULL;
  reid_net *net = NULL;
  reid_model_config cfg = small_resnet18();
  cfg.bnneck = 1, cfg.num_classes = CLASSES;
  float *dev[7] = {0}; /* x, m, v, loss, probs, dloss, dlogits */
  int32_t *labels = NULL;
  const int32_t host_labels[BATCH] = {1, 5, 7};
  size_t np = 0;
  reid_status st = reid_backend_create("cuda", 0, &be);
  if (st == REID_OK) st = reid_net_create_empty(&cfg, be, &net);
  if (st == REID_OK) {
    reid_net_params(net, &np);
    const size_t n[7] = {
        (size_t)BATCH * 3 * 32 * 32, np, np, BATCH, BATCH * CLASSES, BATCH, BATCH * CLASSES};
    for (int i = 0; i < 7 && st == REID_OK; i++) {
      dev[i] = be->ops->alloc(be, sizeof(float) * n[i]);
      if (!dev[i])
        st = REID_EDEVICE;
      else if (i > 0)
        st = be->ops->fill(be, dev[i], n[i], i == 5 ? 1.0f / BATCH : 0.0f);
    }
    if (st == REID_OK && !(labels = be->ops->alloc(be, sizeof host_labels))) st = REID_EDEVICE;
  }
  if (st == REID_OK) st = be->ops->upload(be, dev[0], x, sizeof(float) * BATCH * 3 * 32 * 32);
  if (st == REID_OK) st = be->ops->upload(be, labels, host_labels, sizeof host_labels);
  if (st == REID_OK) st = reid_net_forward(net, dev[0], BATCH, 1, 1);
  if (st == REID_OK)
    st = be->ops->softmax_xent_forward(be, BATCH, CLASSES, reid_net_logits(net), labels, 0.1f,
                                       dev[3], dev[4]);
  if (st == REID_OK)
    st = be->ops->softmax_xent_backward(be, BATCH, CLASSES, dev[4], labels, 0.1f, dev[5], dev[6]);
  if (st == REID_OK) st = reid_net_backward(net, NULL, dev[6]);
  if (st == REID_OK)
    st = be->ops->adam_update(be, np, reid_net_params(net, NULL), reid_net_grads(net, NULL), dev[1],
                              dev[2], 3.5e-4f, 0.9f, 0.999f, 1e-8f, 5e-4f, 0, 1);
  if (st == REID_OK) st = be->ops->synchronize(be);
  for (int i = 0; i < 7; i++)
    if (dev[i]) be->ops->free(be, dev[i]);
  if (labels) be->ops->free(be, labels);
  reid_net_destroy(net);
  reid_backend_destroy(be);
  return st;
}

typedef struct fault_run {
  const float *x;
  const reid_frame *frame;
  const reid_box *boxes;
  float *out;
  int phase;     /* 1, 2, 3 */
  reid_net *net; /* phase 2 */
} fault_run;

static reid_status run_phase(const fault_run *r) {
  if (r->phase == 2) return use_engine(r->net, r->x, r->frame, r->boxes, r->out);
  return r->phase == 3 ? train_step(r->x) : make_net();
}

/* Fails each allocation of a phase in turn; returns how many it makes. */
/* Fails allocation k of a phase, for every k below `all`, then every
 * `stride`-th (a training step on a fresh backend costs about a second on
 * the emulator and makes ~200 allocations); returns how many the phase makes. */
static int fail_allocations(const char *phase, const fault_run *r, int all, int stride) {
  emu_fail_allocation_after(-1);
  CHECK_OK(run_phase(r));
  /* after a first clean run: the backend keeps what it grew (workspace, staging) */
  const size_t baseline = emu_live_allocations();
  int k = 0, failed = 0, recovered = 0, tried = 0;
  for (;; k += k < all ? 1 : stride, tried++) {
    emu_fail_allocation_after(k);
    reid_clear_error();
    const reid_status st = run_phase(r);
    const size_t live = emu_live_allocations();
    CHECK(live == baseline, "%s: allocation %d %s: %zu emulated allocations left behind", phase, k,
          emu_allocation_failed() ? "failed" : "(none failed)", live - baseline);
    if (!emu_allocation_failed()) {
      CHECK(st == REID_OK, "%s: no allocation failed at %d, yet: %s", phase, k, reid_last_error());
      break;
    }
    if (st == REID_OK) {
      recovered++; /* a fallback took over */
    } else {
      failed++;
      CHECK(reid_last_error()[0] != 0, "%s: allocation %d failed without a message", phase, k);
    }
    if (k > 10000) {
      CHECK(0, "%s: more than 10000 allocations", phase);
      break;
    }
  }
  emu_fail_allocation_after(-1);
  fprintf(stderr, "%s: %s%d allocations, a failure at %d of them: %d clean errors, %d recovered\n",
          phase, stride > 1 ? "up to " : "", k, tried, failed, recovered);
  return k;
}

int main(void) {
  if (!reid_cuda_available()) {
    fprintf(stderr, "test_emu_faults: the emulated device is missing\n");
    return 1;
  }
  test_rng rng = test_rng_make(3);
  float *x = test_alloc((size_t)BATCH * 3 * 32 * 32), *out = test_alloc((size_t)BATCH * 512);
  test_fill_uniform(&rng, x, (size_t)BATCH * 3 * 32 * 32, -1, 1);
  enum { FW = 96, FH = 80 };
  uint8_t *rgb = malloc((size_t)FW * FH * 3);
  for (int i = 0; i < FW * FH * 3; i++) rgb[i] = (uint8_t)(i * 37 % 251);
  reid_frame frame = {.format = REID_PIX_RGB, .width = FW, .height = FH};
  frame.planes[0] = rgb;
  frame.strides[0] = FW * 3;
  const reid_box boxes[BATCH] = {{0, 0, 40, 70}, {30, 5, 50, 60}, {70, 40, 26, 40}};

  fault_run r = {x, &frame, boxes, out, 1, NULL};
  const int n_net = fail_allocations("backend + network", &r, 1 << 30, 1);
  CHECK(n_net >= 3, "backend + network: only %d allocations counted", n_net);

  reid_backend *be = NULL;
  const reid_model_config cfg = small_resnet18();
  CHECK_OK(reid_backend_create("cuda", 0, &be));
  if (be) CHECK_OK(reid_net_create(&cfg, be, &r.net));
  if (r.net) {
    r.phase = 2;
    const int n_engine = fail_allocations("engine + runs", &r, 1 << 30, 1);
    CHECK(n_engine >= 10, "engine + runs: only %d allocations counted", n_engine);
  }
  reid_net_destroy(r.net);
  reid_backend_destroy(be);
  r.net = NULL, r.phase = 3;
  const int n_train = fail_allocations("training step", &r, 24, 13);
  CHECK(n_train >= 10, "training step: only %d allocations counted", n_train);
  free(x);
  free(out);
  free(rgb);
  return test_finish("test_emu_faults");
}
