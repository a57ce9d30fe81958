/* What the CUDA build offers beyond the backend table: the backend's math
 * mode and stream, GPU preprocessing straight into the engine's input, and
 * the engine's device-side entry points.
 *
 * These functions exist only in a build with the CUDA backend (HAVE_CUDA);
 * callers guard their use with `#if HAVE_CUDA` and pass a backend created
 * with reid_backend_create("cuda", ...). */
#pragma once

#include "backend.h"
#include "engine.h"
#include "preprocess.h"

/* ---- the backend ---- */

/* Convolutions and matrix products of the CUDA backend run in strict fp32
 * (FMA only, no lossy FFT / Winograd algorithms) by default; allow_tf32 = 1
 * lets cuDNN and cuBLAS use TF32 tensor cores (~1e-3 relative error) and
 * every convolution algorithm. Cached algorithm choices are kept per mode. */
reid_status reid_cuda_set_tf32(reid_backend *be, int allow_tf32);
/* The cudaStream_t every op of the backend runs on (for events, interop). */
void *reid_cuda_stream(reid_backend *be);
/* "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)" */
reid_status reid_cuda_device_name(reid_backend *be, char *buf, int size);

/* ---- tensors in device memory ---- */

/* reid_tensor_format: engine.h */

/* ---- GPU preprocessing ---- */

typedef enum reid_memory { REID_MEMORY_HOST = 0, REID_MEMORY_DEVICE = 1 } reid_memory;

/* reid_preprocess_cpu's math (preprocess.h) on the GPU, one launch for all
 * boxes: frame planes in host or device memory (any stride, negative too),
 * boxes in host memory, clipped to the frame; a box that is empty after
 * clipping fails with REID_EINVAL naming its index before anything runs.
 * out: device memory, [n_boxes, ...] in `fmt` with p->height x p->width
 * pixels per box. Asynchronous on the backend's stream; a host frame may be
 * reused as soon as the call returns. */
reid_status reid_preprocess_cuda(reid_backend *be, const reid_frame *frame, reid_memory memory,
                                 const reid_box *boxes, int n_boxes,
                                 const reid_preprocess_params *p, const reid_tensor_format *fmt,
                                 void *out);

/* ---- the CUDA inference engine (reid_engine_create on a CUDA backend) ---- */

/* 1 when `e` is the CUDA engine (the functions below need it). */
int reid_engine_is_cuda(const reid_engine *e);
/* The engine's device input buffer: max_batch images of the net's input size
 * in *fmt (NHWC, 8 channels, the engine's precision). Write it (for instance
 * with reid_preprocess_cuda on the same backend), then call
 * reid_cuda_engine_run. */
reid_status reid_cuda_engine_input(reid_engine *e, void **input, reid_tensor_format *fmt);
/* Embeds the first n (1..max_batch) images of the input buffer into
 * embedding [n, dim] (host memory); returns when they are there. */
reid_status reid_cuda_engine_run(reid_engine *e, int n, float *embedding);
