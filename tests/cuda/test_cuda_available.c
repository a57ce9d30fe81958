/* CUDA backend discovery and its guard rails. Runs on every machine:
 *  - without a usable GPU: reid_cuda_available() is 0 (no crash, nothing
 *    printed), "cuda" fails with a clear message, "auto" gives the CPU;
 *  - the CUDA-only entry points reject a CPU backend with REID_EINVAL;
 *  - with a GPU: the backend's table is complete, a bad device id fails,
 *    the device is named. */
#include "backend.h"
#include "engine.h"
#include "reid_cuda.h"
#include "test_util.h"

static void check_without_gpu(void) {
  reid_backend *be = NULL;
  CHECK(reid_backend_create("cuda", 0, &be) == REID_EUNSUPPORTED && !be,
        "cuda without GPU must fail with EUNSUPPORTED");
  CHECK(strstr(reid_last_error(), "GPU") || strstr(reid_last_error(), "cuda"),
        "message names the cause: %s", reid_last_error());
  CHECK_OK(reid_backend_create("auto", 0, &be));
  CHECK(be && be->device == REID_DEVICE_CPU, "auto falls back to the CPU");
  reid_backend_destroy(be);
}

static void check_with_gpu(void) {
  reid_backend *be = NULL;
  CHECK_OK(reid_backend_create("cuda", 0, &be));
  if (!be) return;
  CHECK(be->device == REID_DEVICE_CUDA && !strcmp(be->name, "cuda"), "a CUDA backend");
  /* every op of the table is implemented */
  typedef void (*any_fn)(void);
  const any_fn *fns = (const any_fn *)be->ops;
  const size_t count = sizeof(reid_backend_ops) / sizeof(any_fn);
  for (size_t i = 0; i < count; i++) CHECK(fns[i] != NULL, "op %zu of the CUDA table is NULL", i);
  char name[256] = "";
  CHECK_OK(reid_cuda_device_name(be, name, sizeof name));
  fprintf(stderr, "device: %s\n", name);
  CHECK(reid_cuda_stream(be) != NULL, "the backend has a stream");
  CHECK_OK(reid_cuda_set_tf32(be, 1));
  CHECK_OK(reid_cuda_set_tf32(be, 0));
  reid_backend *auto_be = NULL;
  CHECK_OK(reid_backend_create("auto", 0, &auto_be));
  CHECK(auto_be && auto_be->device == REID_DEVICE_CUDA, "auto picks the GPU");
  reid_backend_destroy(auto_be);
  reid_backend *bad = NULL;
  CHECK(reid_backend_create("cuda", 999, &bad) == REID_EINVAL && !bad, "device 999 rejected");
  CHECK(strstr(reid_last_error(), "999") != NULL, "message names the device: %s",
        reid_last_error());
  reid_backend_destroy(be);
}

/* The CUDA-only API on a CPU backend: refused, never dereferenced as CUDA state. */
static void check_cpu_backend_rejected(void) {
  reid_backend *be = NULL;
  CHECK_OK(reid_backend_create("cpu", 0, &be));
  if (!be) return;
  CHECK(reid_cuda_set_tf32(be, 1) == REID_EINVAL, "set_tf32 on cpu");
  CHECK(reid_cuda_stream(be) == NULL, "no stream on cpu");
  char name[64];
  CHECK(reid_cuda_device_name(be, name, sizeof name) == REID_EINVAL, "device name on cpu");
  uint8_t px[3 * 4 * 4] = {0};
  reid_frame f = {.format = REID_PIX_RGB, .width = 4, .height = 4, .planes = {px}, .strides = {12}};
  reid_box box = {0, 0, 4, 4};
  reid_preprocess_params p = reid_preprocess_params_imagenet(8, 4);
  reid_tensor_format fmt = {REID_LAYOUT_NCHW, 3, REID_PRECISION_FP32};
  float out[3 * 8 * 4];
  CHECK(reid_preprocess_cuda(be, &f, REID_MEMORY_HOST, &box, 1, &p, &fmt, out) == REID_EINVAL,
        "GPU preprocessing on a CPU backend");
  CHECK(strstr(reid_last_error(), "cpu") != NULL, "message names the backend: %s",
        reid_last_error());
  CHECK(!reid_engine_is_cuda(NULL), "NULL engine is not CUDA");
  reid_backend_destroy(be);
}

int main(void) {
  const int available = reid_cuda_available();
  CHECK(available == 0 || available == 1, "reid_cuda_available() = %d", available);
  CHECK(reid_cuda_available() == available, "stable answer");
  fprintf(stderr, "CUDA available: %d\n", available);
  if (available)
    check_with_gpu();
  else
    check_without_gpu();
  check_cpu_backend_rejected();
  return test_finish("test_cuda_available");
}
