/* Internal to the CUDA backend: its state, one check macro per API, and the
 * registration functions of the op families. Included by the C files
 * (memory, convolutions, engine) and the CUDA C++ files (kernels) alike.
 *
 * Every op runs on the backend's one stream, in order; functions return after
 * enqueueing unless they must read a result back (download, label checks).
 * Device memory comes from plain cudaMalloc, never managed memory. */
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "backend.h"

/* ---- check macros: each names the call, the file and the line ---- */

reid_status cuda_error(cudaError_t e, const char *call, const char *file, int line);
reid_status cudnn_error(cudnnStatus_t e, const char *call, const char *file, int line);
reid_status cublas_error(cublasStatus_t e, const char *call, const char *file, int line);

/* *_ST evaluate to a reid_status (REID_OK on success) for cleanup paths;
 * *_CHECK return from the calling function on failure. */
#define CUDA_ST(call)      cuda_error((call), #call, __FILE__, __LINE__)
#define CUDNN_ST(call)     cudnn_error((call), #call, __FILE__, __LINE__)
#define CUBLAS_ST(call)    cublas_error((call), #call, __FILE__, __LINE__)
#define CUDA_CHECK(call)   REID_TRY(CUDA_ST(call))
#define CUDNN_CHECK(call)  REID_TRY(CUDNN_ST(call))
#define CUBLAS_CHECK(call) REID_TRY(CUBLAS_ST(call))
/* After a kernel launch: a bad configuration shows up here. */
#define CUDA_LAUNCH_CHECK(kernel)                                                                  \
  REID_TRY(cuda_error(cudaGetLastError(), kernel " launch", __FILE__, __LINE__))

#define CUDA_REQUIRE(op, ptr)                                                                      \
  do {                                                                                             \
    if (!(ptr)) return reid_fail(REID_EINVAL, "%s: %s is NULL", op, #ptr);                         \
  } while (0)

/* ---- state (be->impl) ---- */

typedef struct cuda_conv_cache cuda_conv_cache;
typedef struct cuda_preprocess_state cuda_preprocess_state;

typedef struct cuda_state {
  int device;
  int sm_count;
  int allow_tf32;      /* 0: strict fp32 (FMA only); 1: TF32 tensor cores in conv / GEMM */
  cudaStream_t stream; /* every op of this backend runs here */
  cudnnHandle_t cudnn;
  cublasHandle_t cublas;
  void *workspace; /* cuDNN workspace, grown on demand */
  size_t workspace_bytes;
  void *scratch; /* temporaries of the op kernels (reduction partials) */
  size_t scratch_bytes;
  int *flag;      /* device int that validating kernels set on bad input */
  int *flag_host; /* pinned mirror */
  cuda_conv_cache *conv;
  cuda_preprocess_state *pre;
} cuda_state;

/* Makes the backend's device current; every op starts with it. */
reid_status cuda_enter(reid_backend *be, cuda_state **s);
/* Grows a device buffer to >= want bytes (draining the stream first); the
 * contents are not kept. */
reid_status cuda_grow(cuda_state *s, void **buf, size_t *have, size_t want, const char *what);
/* Device temporaries valid until the next call (stream-ordered reuse). */
reid_status cuda_scratch(cuda_state *s, size_t bytes, void **out);
reid_status cuda_workspace(cuda_state *s, size_t bytes, void **out);
/* Validation flag: reset (async), then read back (synchronises the stream). */
reid_status cuda_flag_reset(cuda_state *s);
reid_status cuda_flag_read(cuda_state *s, int *value);
/* A grid-stride launch size for n elements with `threads` per block. */
int cuda_grid_for(const cuda_state *s, size_t n, int threads);

/* ---- op families (one file each) ---- */

void cuda_register_memory_ops(reid_backend_ops *ops);
void cuda_register_conv_ops(reid_backend_ops *ops);
void cuda_register_elementwise_ops(reid_backend_ops *ops);
void cuda_register_activation_ops(reid_backend_ops *ops);
void cuda_register_batchnorm_ops(reid_backend_ops *ops);
void cuda_register_instancenorm_ops(reid_backend_ops *ops); /* and channel_copy */
void cuda_register_pool_ops(reid_backend_ops *ops);
void cuda_register_linear_ops(reid_backend_ops *ops);
void cuda_register_loss_ops(reid_backend_ops *ops);
void cuda_register_distance_ops(reid_backend_ops *ops);
void cuda_register_optim_ops(reid_backend_ops *ops);

/* Helpers shared across families. */
/* out[ch] = sum over (i, j) of x[i, ch, j] for x [n, c, hw]; overwrites out (conv dbias). */
reid_status cuda_channel_sum(cuda_state *s, int n, int c, int hw, const float *x, float *out);
/* x[i] = value for n floats (memory family). */
reid_status cuda_fill_floats(cuda_state *s, float *x, size_t n, float value);

void cuda_conv_cache_destroy(cuda_conv_cache *c);
void cuda_preprocess_state_destroy(cuda_preprocess_state *p);

#ifdef __cplusplus
}
#endif
