/* The CUDA backend: device discovery, the backend's state (stream, cuDNN and
 * cuBLAS handles, workspace, scratch), the memory ops, and the error
 * reporting behind CUDA_CHECK / CUDNN_CHECK / CUBLAS_CHECK. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_common.h"
#include "reid_cuda.h"

/* Compiled for sm_80 and sm_90 (+ PTX for later chips): older GPUs can't run it. */
#define MIN_MAJOR 8

/* ---- errors ---- */

reid_status cuda_error(cudaError_t e, const char *call, const char *file, int line) {
  if (e == cudaSuccess) return REID_OK;
  return reid_fail(REID_EDEVICE, "CUDA: %s failed at %s:%d: %s (%s)", call, file, line,
                   cudaGetErrorName(e), cudaGetErrorString(e));
}

reid_status cudnn_error(cudnnStatus_t e, const char *call, const char *file, int line) {
  if (e == CUDNN_STATUS_SUCCESS) return REID_OK;
  return reid_fail(REID_EDEVICE, "cuDNN: %s failed at %s:%d: %s", call, file, line,
                   cudnnGetErrorString(e));
}

reid_status cublas_error(cublasStatus_t e, const char *call, const char *file, int line) {
  if (e == CUBLAS_STATUS_SUCCESS) return REID_OK;
  return reid_fail(REID_EDEVICE, "cuBLAS: %s failed at %s:%d: %s (%s)", call, file, line,
                   cublasGetStatusName(e), cublasGetStatusString(e));
}

/* ---- discovery ---- */

int cuda_backend_available(void) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count < 1) {
    cudaGetLastError(); /* no driver / no device: clear the error, say "no" */
    return 0;
  }
  for (int d = 0; d < count; d++) {
    int major = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, d) == cudaSuccess &&
        major >= MIN_MAJOR)
      return 1;
  }
  cudaGetLastError();
  return 0;
}

/* ---- state helpers ---- */

reid_status cuda_enter(reid_backend *be, cuda_state **s) {
  if (!be || be->device != REID_DEVICE_CUDA || !be->impl)
    return reid_fail(REID_EINVAL, "CUDA op called on a %s backend", be ? be->name : "NULL");
  *s = be->impl;
  CUDA_CHECK(cudaSetDevice((*s)->device));
  return REID_OK;
}

/* Grows a device buffer; the old one may still be read by queued work, so the
 * stream drains first (cudaFree would synchronise anyway). */
reid_status cuda_grow(cuda_state *s, void **buf, size_t *have, size_t want, const char *what) {
  if (want <= *have && *buf) return REID_OK;
  size_t size = want < 4096 ? 4096 : want + want / 4;
  CUDA_CHECK(cudaStreamSynchronize(s->stream));
  if (*buf) CUDA_CHECK(cudaFree(*buf));
  *buf = NULL;
  *have = 0;
  if (cudaMalloc(buf, size) != cudaSuccess) {
    cudaGetLastError();
    *buf = NULL;
    return reid_fail(REID_ENOMEM, "CUDA: out of device memory for %zu bytes of %s", size, what);
  }
  *have = size;
  return REID_OK;
}

reid_status cuda_scratch(cuda_state *s, size_t bytes, void **out) {
  REID_TRY(cuda_grow(s, &s->scratch, &s->scratch_bytes, bytes, "op scratch"));
  *out = s->scratch;
  return REID_OK;
}

reid_status cuda_workspace(cuda_state *s, size_t bytes, void **out) {
  REID_TRY(cuda_grow(s, &s->workspace, &s->workspace_bytes, bytes, "cuDNN workspace"));
  *out = s->workspace;
  return REID_OK;
}

reid_status cuda_flag_reset(cuda_state *s) {
  CUDA_CHECK(cudaMemsetAsync(s->flag, 0, sizeof(int), s->stream));
  return REID_OK;
}

reid_status cuda_flag_read(cuda_state *s, int *value) {
  CUDA_CHECK(
      cudaMemcpyAsync(s->flag_host, s->flag, sizeof(int), cudaMemcpyDeviceToHost, s->stream));
  CUDA_CHECK(cudaStreamSynchronize(s->stream));
  *value = *s->flag_host;
  return REID_OK;
}

int cuda_grid_for(const cuda_state *s, size_t n, int threads) {
  size_t blocks = (n + (size_t)threads - 1) / (size_t)threads;
  size_t cap = (size_t)(s->sm_count > 0 ? s->sm_count : 16) * 32;
  if (blocks > cap) blocks = cap;
  return blocks < 1 ? 1 : (int)blocks;
}

/* ---- lifetime ---- */

static void state_destroy(cuda_state *s) {
  if (!s) return;
  cudaSetDevice(s->device);
  if (s->stream) cudaStreamSynchronize(s->stream);
  cuda_conv_cache_destroy(s->conv);
  cuda_preprocess_state_destroy(s->pre);
  if (s->cublas) cublasDestroy(s->cublas);
  if (s->cudnn) cudnnDestroy(s->cudnn);
  if (s->workspace) cudaFree(s->workspace);
  if (s->scratch) cudaFree(s->scratch);
  if (s->flag) cudaFree(s->flag);
  if (s->flag_host) cudaFreeHost(s->flag_host);
  if (s->stream) cudaStreamDestroy(s->stream);
  cudaGetLastError();
  free(s);
}

static reid_status state_create(int device, cuda_state **out) {
  *out = NULL;
  int count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  if (device < 0 || device >= count)
    return reid_fail(REID_EINVAL, "CUDA device %d does not exist (%d found)", device, count);
  int major = 0, minor = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  if (major < MIN_MAJOR)
    return reid_fail(REID_EUNSUPPORTED,
                     "CUDA device %d has compute capability %d.%d; this build needs >= %d.0",
                     device, major, minor, MIN_MAJOR);
  cuda_state *s = calloc(1, sizeof *s);
  if (!s) return reid_fail(REID_ENOMEM, "cuda backend: out of memory");
  s->device = device;
  reid_status st = CUDA_ST(cudaSetDevice(device));
  if (st == REID_OK)
    st = CUDA_ST(cudaDeviceGetAttribute(&s->sm_count, cudaDevAttrMultiProcessorCount, device));
  if (st == REID_OK) st = CUDA_ST(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
  if (st == REID_OK) st = CUDNN_ST(cudnnCreate(&s->cudnn));
  if (st == REID_OK) st = CUDNN_ST(cudnnSetStream(s->cudnn, s->stream));
  if (st == REID_OK) st = CUBLAS_ST(cublasCreate(&s->cublas));
  if (st == REID_OK) st = CUBLAS_ST(cublasSetStream(s->cublas, s->stream));
  /* strict fp32 until reid_cuda_set_tf32 says otherwise */
  if (st == REID_OK) st = CUBLAS_ST(cublasSetMathMode(s->cublas, CUBLAS_DEFAULT_MATH));
  if (st == REID_OK) st = CUDA_ST(cudaMalloc((void **)&s->flag, sizeof(int)));
  if (st == REID_OK) st = CUDA_ST(cudaMallocHost((void **)&s->flag_host, sizeof(int)));
  if (st != REID_OK) {
    state_destroy(s);
    return st;
  }
  *out = s;
  return REID_OK;
}

static reid_backend_ops cuda_backend_ops;

static const reid_backend_ops *cuda_ops_table(void) {
  static int ready;
#pragma omp critical(reid_cuda_ops_table)
  if (!ready) {
    cuda_register_memory_ops(&cuda_backend_ops);
    cuda_register_conv_ops(&cuda_backend_ops);
    cuda_register_elementwise_ops(&cuda_backend_ops);
    cuda_register_activation_ops(&cuda_backend_ops);
    cuda_register_batchnorm_ops(&cuda_backend_ops);
    cuda_register_instancenorm_ops(&cuda_backend_ops);
    cuda_register_pool_ops(&cuda_backend_ops);
    cuda_register_linear_ops(&cuda_backend_ops);
    cuda_register_loss_ops(&cuda_backend_ops);
    cuda_register_distance_ops(&cuda_backend_ops);
    cuda_register_optim_ops(&cuda_backend_ops);
    ready = 1;
  }
  return &cuda_backend_ops;
}

reid_status cuda_backend_create(int device_id, reid_backend **out) {
  *out = NULL;
  reid_backend *be = calloc(1, sizeof *be);
  if (!be) return reid_fail(REID_ENOMEM, "cuda backend: out of memory");
  cuda_state *s = NULL;
  reid_status st = state_create(device_id, &s);
  if (st != REID_OK) {
    free(be);
    return st;
  }
  be->ops = cuda_ops_table();
  be->name = "cuda";
  be->device = REID_DEVICE_CUDA;
  be->device_id = device_id;
  be->impl = s;
  *out = be;
  return REID_OK;
}

void cuda_backend_destroy(reid_backend *be) {
  if (!be) return;
  state_destroy(be->impl);
  free(be);
}

/* ---- public extras (reid_cuda.h) ---- */

reid_status reid_cuda_set_tf32(reid_backend *be, int allow_tf32) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  s->allow_tf32 = allow_tf32 ? 1 : 0;
  CUBLAS_CHECK(cublasSetMathMode(s->cublas,
                                 s->allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  return REID_OK;
}

void *reid_cuda_stream(reid_backend *be) {
  if (!be || be->device != REID_DEVICE_CUDA || !be->impl) return NULL;
  return ((cuda_state *)be->impl)->stream;
}

reid_status reid_cuda_device_name(reid_backend *be, char *buf, int size) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  struct cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, s->device));
  snprintf(buf, (size_t)size, "%s (sm_%d%d, %d SMs)", prop.name, prop.major, prop.minor,
           prop.multiProcessorCount);
  return REID_OK;
}

/* ---- memory ops ---- */

static void *cuda_alloc(reid_backend *be, size_t bytes) {
  cuda_state *s;
  if (cuda_enter(be, &s) != REID_OK) return NULL;
  void *p = NULL;
  cudaError_t e = cudaMalloc(&p, bytes ? bytes : 64); /* 256-byte aligned */
  if (e != cudaSuccess) {
    cudaGetLastError();
    reid_fail(REID_ENOMEM, "CUDA: cudaMalloc of %zu bytes failed: %s", bytes,
              cudaGetErrorString(e));
    return NULL;
  }
  return p;
}

static void cuda_free(reid_backend *be, void *ptr) {
  cuda_state *s;
  if (!ptr || cuda_enter(be, &s) != REID_OK) return;
  cudaFree(ptr); /* synchronises the device: nothing queued can still use ptr */
}

static reid_status cuda_upload(reid_backend *be, void *dst, const void *host_src, size_t bytes) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (!bytes) return REID_OK;
  if (!dst || !host_src) return reid_fail(REID_EINVAL, "upload: NULL pointer");
  CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, s->stream));
  CUDA_CHECK(cudaStreamSynchronize(s->stream)); /* the caller may free host_src next */
  return REID_OK;
}

static reid_status cuda_download(reid_backend *be, void *host_dst, const void *src, size_t bytes) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (!bytes) return REID_OK;
  if (!host_dst || !src) return reid_fail(REID_EINVAL, "download: NULL pointer");
  CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, s->stream));
  CUDA_CHECK(cudaStreamSynchronize(s->stream));
  return REID_OK;
}

/* memmove semantics: overlapping ranges go through scratch */
static reid_status cuda_copy(reid_backend *be, void *dst, const void *src, size_t bytes) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (!bytes || dst == src) return REID_OK;
  if (!dst || !src) return reid_fail(REID_EINVAL, "copy: NULL pointer");
  const char *d = dst, *c = src;
  if (d < c + bytes && c < d + bytes) {
    void *tmp;
    REID_TRY(cuda_scratch(s, bytes, &tmp));
    CUDA_CHECK(cudaMemcpyAsync(tmp, src, bytes, cudaMemcpyDeviceToDevice, s->stream));
    src = tmp;
  }
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s->stream));
  return REID_OK;
}

static reid_status cuda_fill(reid_backend *be, float *x, size_t n, float value) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  if (!n) return REID_OK;
  if (!x) return reid_fail(REID_EINVAL, "fill: NULL pointer");
  return cuda_fill_floats(s, x, n, value);
}

static reid_status cuda_synchronize(reid_backend *be) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  CUDA_CHECK(cudaStreamSynchronize(s->stream));
  return REID_OK;
}

void cuda_register_memory_ops(reid_backend_ops *ops) {
  ops->alloc = cuda_alloc;
  ops->free = cuda_free;
  ops->upload = cuda_upload;
  ops->download = cuda_download;
  ops->copy = cuda_copy;
  ops->fill = cuda_fill;
  ops->synchronize = cuda_synchronize;
}
