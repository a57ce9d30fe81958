/* The CUDA emulator's internal interface (C++17). The emulator implements the
 * CUDA runtime, cuDNN and cuBLAS calls the CUDA backend makes, on the CPU, so
 * that the backend and its tests run where no GPU is: in CI and here.
 *
 * Emulated device memory is host memory from malloc (poisoned with 0xff bytes,
 * NaN as floats), so AddressSanitizer sees every out-of-bounds kernel access.
 * Work runs on the calling thread in stream order, at once, or is recorded
 * while its stream is being captured into a CUDA graph and run when the graph
 * is launched, as on a GPU. Kernels run block after block; the threads of a
 * block are fibers, so __syncthreads and warp shuffles behave as on a GPU. */
#pragma once

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <functional>

namespace emu {

/* Runs `work` in `stream`'s order: at once, or recorded into the capture under
 * way on that stream. Returns cudaSuccess or why it could not. */
cudaError_t enqueue(cudaStream_t stream, std::function<void()> work);

/* True while `stream` is being captured. */
bool capturing(cudaStream_t stream);

/* True while this thread has a capture open in global or thread-local mode:
 * synchronous calls (cudaMalloc, cudaMemcpy, cudaStreamSynchronize, cuDNN's
 * Find*Ex, ...) are then errors, and the capture is invalidated. Callers that
 * are such calls use refuse_during_capture(). */
bool thread_capturing();
/* Marks this thread's capture invalidated and prints why; returns the error
 * to hand back (cudaErrorStreamCaptureUnsupported). */
cudaError_t refuse_during_capture(const char *call);

enum class memory { none, device, pinned };
/* The kind of the allocation that holds all of [p, p + bytes): device
 * (cudaMalloc), pinned (cudaMallocHost / cudaHostAlloc) or none (pageable host
 * memory, a NULL pointer, or a range that runs past its allocation). */
memory lookup(const void *p, size_t bytes);

/* One diagnostic line on stderr, "cuda-emu: ..."; every refused call prints
 * one, so a test failure names the emulator's reason. */
void diagnose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* fp32 -> TF32 (1 + 8 + 10 bits) as the tensor cores' cvt.rna.tf32.f32:
 * to nearest, ties away from zero; Inf and NaN unchanged. */
inline float tf32_round(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  if ((b & 0x7f800000u) != 0x7f800000u) b = (b + 0x1000u) & 0xffffe000u;
  memcpy(&f, &b, 4);
  return f;
}

} // namespace emu
