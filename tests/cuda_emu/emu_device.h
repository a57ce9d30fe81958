/* What a .cu file of the CUDA backend needs to compile as host C++ for the
 * emulator: the CUDA keywords, the built-in coordinates, the device functions
 * the kernels call, and EMU_LAUNCH, which launch_rewrite.pl substitutes for
 * every `kernel<<<grid, block, shared, stream>>>(args)`. Generated sources
 * include it first.
 *
 * __shared__ becomes `static`: the blocks of a grid run one after another on
 * one OS thread (the executor holds a lock), so a function-local static is
 * exactly one block's shared memory. */
#pragma once

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__      static
#define __launch_bounds__(...)

#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>
#include <string.h>

#include <tuple>
#include <type_traits>
#include <utility>

#include "emu.h"

namespace emu {

/* The running thread's coordinates, set by the executor before it switches
 * to a thread's fiber. */
struct coordinates {
  uint3 thread, block;
  dim3 block_dim, grid_dim;
};
extern coordinates now;

void sync_block(void);
/* All live lanes of the caller's warp exchange `bytes` bytes: each writes
 * `mine`, then reads lane `source`'s value into `out` (its own when `source`
 * is outside the warp). */
void warp_exchange(const void *mine, void *out, int source, size_t bytes);

/* Runs `body` for every thread of the grid (see emu_exec.cc), in `stream`
 * order; launch errors become cudaGetLastError's value. */
void launch(const char *name, dim3 grid, dim3 block, size_t shared, cudaStream_t stream,
            std::function<void()> body);
/* A kernel argument that points to memory a GPU could not read (pageable
 * host memory, freed memory) fails the launch, like the illegal-address fault
 * it would cause on a device. Returns 0 for such an argument. */
int kernel_pointer_ok(const char *kernel, int index, const void *p);

template <typename T> int argument_ok(const char *, int, const T &) {
  return 1;
}
template <typename T> int argument_ok(const char *kernel, int index, T *p) {
  return kernel_pointer_ok(kernel, index, (const void *)p);
}

template <typename... P> struct launcher {
  void (*kernel)(P...);
  const char *name;
  dim3 grid, block;
  size_t shared;
  cudaStream_t stream;

  /* Arguments are converted to the kernel's parameter types and copied now,
   * as a launch does. */
  template <typename... A> void operator()(A &&...a) const {
    std::tuple<std::decay_t<P>...> args(std::forward<A>(a)...);
    int ok = 1, index = 0;
    std::apply([&](const auto &...x) { ((ok &= argument_ok(name, index++, x)), ...); }, args);
    if (!ok) return;
    void (*k)(P...) = kernel;
    launch(name, grid, block, shared, stream, [k, args]() { std::apply(k, args); });
  }
};

template <typename... P>
launcher<P...> make_launcher(void (*kernel)(P...), const char *name, dim3 grid, dim3 block,
                             size_t shared = 0, cudaStream_t stream = 0) {
  return launcher<P...>{kernel, name, grid, block, shared, stream};
}

} // namespace emu

#define EMU_LAUNCH(kernel, ...) ::emu::make_launcher(kernel, #kernel, __VA_ARGS__)

#define threadIdx (::emu::now.thread)
#define blockIdx  (::emu::now.block)
#define blockDim  (::emu::now.block_dim)
#define gridDim   (::emu::now.grid_dim)
#define warpSize  32

static inline void __syncthreads(void) {
  emu::sync_block();
}

template <typename T> static inline T __shfl_down_sync(unsigned, T v, unsigned delta) {
  T out;
  emu::warp_exchange(&v, &out, (int)(emu::now.thread.x & 31) + (int)delta, sizeof v);
  return out;
}

template <typename T> static inline T __shfl_xor_sync(unsigned, T v, int mask) {
  T out;
  emu::warp_exchange(&v, &out, (int)(emu::now.thread.x & 31) ^ mask, sizeof v);
  return out;
}

/* One fiber runs at a time: read-modify-write is atomic by construction. */
template <typename T> static inline T atomicAdd(T *p, T v) {
  T old = *p;
  *p = old + v;
  return old;
}
template <typename T> static inline T atomicMax(T *p, T v) {
  T old = *p;
  *p = old > v ? old : v;
  return old;
}
template <typename T> static inline T atomicMin(T *p, T v) {
  T old = *p;
  *p = old < v ? old : v;
  return old;
}
template <typename T> static inline T atomicExch(T *p, T v) {
  T old = *p;
  *p = v;
  return old;
}
template <typename T> static inline T __ldg(const T *p) {
  return *p;
}

/* Fast-math intrinsics: the CPU's accurate functions (the GPU's are within a
 * few ulp; the tests' tolerances cover both). Macros, since the CUDA headers
 * declare these names with C linkage. */
static inline float emu_rsqrtf(float x) {
  return 1.0f / sqrtf(x);
}
static inline double emu_rsqrt(double x) {
  return 1.0 / sqrt(x);
}
#define __expf(x)        expf(x)
#define __logf(x)        logf(x)
#define __fdividef(a, b) ((a) / (b))
#define rsqrtf(x)        emu_rsqrtf(x)
#define rsqrt(x)         emu_rsqrt(x)
