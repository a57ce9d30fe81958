/* Device-side helpers shared by the op kernels: grid-stride loops and block
 * reductions. CUDA C++ only. */
#pragma once

#include <cuda_runtime.h>
#include <math.h>

#include "cuda_common.h"

/* for (size_t i = first; i < n; i += grid size) */
#define GRID_STRIDE(i, n)                                                                          \
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                          \
       i += (size_t)gridDim.x * blockDim.x)

template <typename T> __device__ __forceinline__ T warp_sum(T v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  return v;
}

template <typename T> __device__ __forceinline__ T warp_max(T v) {
  for (int off = 16; off > 0; off >>= 1) {
    T o = __shfl_down_sync(0xffffffffu, v, off);
    v = o > v ? o : v;
  }
  return v;
}

/* Sum over the block (blockDim.x a multiple of 32, <= 1024); the result is
 * valid in every thread. `shared` holds 32 values. */
template <typename T> __device__ T block_sum(T v, T *shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads(); /* shared may still be read by a previous call */
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  T total = lane < warps ? shared[lane] : T(0);
  if (warp == 0) total = warp_sum(total);
  if (threadIdx.x == 0) shared[0] = total;
  __syncthreads();
  return shared[0];
}

template <typename T> __device__ T block_max(T v, T *shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  T m = lane < warps ? shared[lane] : shared[0];
  if (warp == 0) m = warp_max(m);
  if (threadIdx.x == 0) shared[0] = m;
  __syncthreads();
  return shared[0];
}
