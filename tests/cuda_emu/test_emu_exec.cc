/* The CUDA emulator's executor and runtime: barriers and warp shuffles give
 * the results a GPU gives (the backend's own block_sum / block_max), every
 * thread of a 3-D grid runs once, blocks and threads run in varying orders, a deadlock is reported
 * instead of hanging, bad launch configurations and out-of-allocation copies are refused, work
 * captured into a graph runs only when the graph is launched, synchronous
 * calls during a capture invalidate it, and a kernel handed pageable host
 * memory faults (stickily, as on a GPU: those run in child processes). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emu_device.h"
#include "cuda_kernels.cuh"

static int failures;

#define EXPECT(cond, ...)                                                                          \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                         \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fprintf(stderr, "\n");                                                                       \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)

__global__ void k_block_reduce(const float *x, float *sum, float *max) {
  __shared__ float shared[32];
  const float v = x[blockIdx.x * blockDim.x + threadIdx.x];
  const float s = block_sum(v, shared);
  const float m = block_max(v, shared);
  if (threadIdx.x == 0) sum[blockIdx.x] = s, max[blockIdx.x] = m;
}

__global__ void k_count(int *hits, int width, int height) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  const int z = blockIdx.z * blockDim.z + threadIdx.z;
  atomicAdd(&hits[(z * height + y) * width + x], 1);
}

__global__ void k_deadlock(float *x) {
  if (threadIdx.x == 0)
    x[0] = __shfl_down_sync(0xffffffffu, x[0], 1);
  else
    __syncthreads();
}

/* order-dependent on purpose: the last block / thread to write wins */
__global__ void k_last_writer(int *last_block, int *last_thread) {
  *last_block = (int)blockIdx.x;
  if (blockIdx.x == 0) *last_thread = (int)threadIdx.x;
}

__global__ void k_increment(float *x, int n) {
  GRID_STRIDE(i, (size_t)n) x[i] += 1.0f;
}

static void test_reductions(void) {
  const int sizes[] = {32, 64, 96, 256, 1024};
  for (int s = 0; s < 5; s++) {
    const int threads = sizes[s], blocks = 3, n = threads * blocks;
    float *x, *sum, *max;
    EXPECT(cudaMalloc((void **)&x, sizeof(float) * n) == cudaSuccess, "cudaMalloc");
    EXPECT(cudaMalloc((void **)&sum, sizeof(float) * blocks) == cudaSuccess, "cudaMalloc");
    EXPECT(cudaMalloc((void **)&max, sizeof(float) * blocks) == cudaSuccess, "cudaMalloc");
    float *h = (float *)malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) h[i] = (float)((i * 37) % 101) - 50.0f;
    cudaMemcpy(x, h, sizeof(float) * n, cudaMemcpyHostToDevice);
    EMU_LAUNCH(k_block_reduce, blocks, threads, 0, 0)(x, sum, max);
    EXPECT(cudaGetLastError() == cudaSuccess, "launch with %d threads", threads);
    float hs[3], hm[3];
    cudaMemcpy(hs, sum, sizeof hs, cudaMemcpyDeviceToHost);
    cudaMemcpy(hm, max, sizeof hm, cudaMemcpyDeviceToHost);
    for (int b = 0; b < blocks; b++) {
      float es = 0, em = -INFINITY;
      for (int i = 0; i < threads; i++)
        es += h[b * threads + i], em = fmaxf(em, h[b * threads + i]);
      EXPECT(hs[b] == es, "block_sum over %d threads: %g, expected %g", threads, hs[b], es);
      EXPECT(hm[b] == em, "block_max over %d threads: %g, expected %g", threads, hm[b], em);
    }
    free(h);
    cudaFree(x), cudaFree(sum), cudaFree(max);
  }
}

static void test_coordinates(void) {
  const int w = 8 * 3, h = 4 * 2, d = 2 * 2, n = w * h * d;
  int *hits;
  cudaMalloc((void **)&hits, sizeof(int) * n);
  cudaMemset(hits, 0, sizeof(int) * n);
  EMU_LAUNCH(k_count, dim3(3, 2, 2), dim3(8, 4, 2), 0, 0)(hits, w, h);
  int *host = (int *)malloc(sizeof(int) * n);
  cudaMemcpy(host, hits, sizeof(int) * n, cudaMemcpyDeviceToHost);
  int wrong = 0;
  for (int i = 0; i < n; i++) wrong += host[i] != 1;
  EXPECT(wrong == 0, "%d of %d cells of a 3-D grid not hit exactly once", wrong, n);
  free(host);
  cudaFree(hits);
}

/* Blocks, and threads between barriers, run in a different order at each
 * launch: a race that a fixed order would hide shows up. */
static void test_orders_vary(void) {
  int *d;
  cudaMalloc((void **)&d, 2 * sizeof(int));
  int blocks_seen[16] = {0}, threads_seen[64] = {0}, distinct_blocks = 0, distinct_threads = 0;
  for (int launch = 0; launch < 12; launch++) {
    EMU_LAUNCH(k_last_writer, 16, 64, 0, 0)(d, d + 1);
    int h[2];
    cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
    if (h[0] >= 0 && h[0] < 16 && !blocks_seen[h[0]]++) distinct_blocks++;
    if (h[1] >= 0 && h[1] < 64 && !threads_seen[h[1]]++) distinct_threads++;
  }
  EXPECT(distinct_blocks >= 3, "12 launches ended on only %d distinct last blocks",
         distinct_blocks);
  EXPECT(distinct_threads >= 3, "12 launches ended on only %d distinct last threads",
         distinct_threads);
  cudaFree(d);
}

static void test_refusals(void) {
  float *x;
  cudaMalloc((void **)&x, sizeof(float) * 4);
  float h[5] = {0};
  EXPECT(cudaMemcpy(x, h, sizeof h, cudaMemcpyHostToDevice) == cudaErrorInvalidValue,
         "a copy past the end of an allocation is refused");
  EXPECT(cudaMemcpy(h, x, sizeof(float) * 4, cudaMemcpyHostToDevice) == cudaErrorInvalidValue,
         "a copy of the wrong kind is refused");
  cudaGetLastError();
  cudaMemcpy(h, x, sizeof(float) * 4, cudaMemcpyDeviceToHost);
  EXPECT(isnan(h[0]) && isnan(h[3]), "fresh device memory reads as NaN");
  EMU_LAUNCH(k_increment, 1, 2048, 0, 0)(x, 4);
  EXPECT(cudaGetLastError() == cudaErrorInvalidConfiguration, "2048 threads a block is refused");
  EXPECT(cudaGetLastError() == cudaSuccess, "a configuration error is not sticky");
  cudaFree(x);
}

static void test_capture(void) {
  cudaStream_t s;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  float *x, *pinned;
  cudaMalloc((void **)&x, sizeof(float) * 100);
  cudaMallocHost((void **)&pinned, sizeof(float) * 100);
  for (int i = 0; i < 100; i++) pinned[i] = (float)i;
  EXPECT(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess, "begin");
  cudaMemcpyAsync(x, pinned, sizeof(float) * 100, cudaMemcpyHostToDevice, s);
  EMU_LAUNCH(k_increment, 2, 32, 0, s)(x, 100);
  EXPECT(cudaGetLastError() == cudaSuccess, "captured launch");
  cudaGraph_t g;
  EXPECT(cudaStreamEndCapture(s, &g) == cudaSuccess, "end");
  cudaGraphExec_t e;
  EXPECT(cudaGraphInstantiate(&e, g, 0) == cudaSuccess, "instantiate");
  float h[100];
  cudaMemcpy(h, x, sizeof h, cudaMemcpyDeviceToHost);
  EXPECT(isnan(h[7]), "nothing ran during the capture");
  pinned[7] = 70.0f; /* a graph's copy reads the host buffer when it runs */
  cudaGraphLaunch(e, s);
  cudaStreamSynchronize(s);
  cudaMemcpy(h, x, sizeof h, cudaMemcpyDeviceToHost);
  EXPECT(h[7] == 71.0f && h[99] == 100.0f, "the graph ran: %g %g", h[7], h[99]);

  EXPECT(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess, "begin 2");
  EXPECT(cudaMemcpy(h, x, sizeof h, cudaMemcpyDeviceToHost) == cudaErrorStreamCaptureUnsupported,
         "a synchronous copy during a capture is refused");
  cudaGraph_t bad;
  EXPECT(cudaStreamEndCapture(s, &bad) == cudaErrorStreamCaptureInvalidated && !bad,
         "and the capture is invalidated");
  cudaGetLastError();
  cudaGraphExecDestroy(e);
  cudaGraphDestroy(g);
  cudaFreeHost(pinned);
  cudaFree(x);
  cudaStreamDestroy(s);
}

/* Faults are sticky for the process, so each runs in a child. */
static int deadlock_fails_the_launch(void) {
  float *x;
  cudaMalloc((void **)&x, sizeof(float));
  EMU_LAUNCH(k_deadlock, 1, 32, 0, 0)(x);
  return cudaGetLastError() == cudaErrorLaunchFailure &&
         cudaMalloc((void **)&x, 4) == cudaErrorLaunchFailure;
}

static int pageable_pointer_faults(void) {
  float *host = (float *)calloc(4, sizeof(float)), *x;
  EMU_LAUNCH(k_increment, 1, 32, 0, 0)(host, 4);
  const int ok = cudaGetLastError() == cudaErrorIllegalAddress &&
                 cudaMalloc((void **)&x, 4) == cudaErrorIllegalAddress;
  free(host);
  return ok;
}

static void in_child(const char *what, int (*test)(void)) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) _exit(test() ? 0 : 1);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", what);
}

int main(void) {
  test_reductions();
  test_coordinates();
  test_orders_vary();
  test_refusals();
  test_capture();
  in_child("a deadlocked block fails its launch, stickily", deadlock_fails_the_launch);
  in_child("a kernel handed pageable host memory faults, stickily", pageable_pointer_faults);
  if (failures)
    fprintf(stderr, "%d failures\n", failures);
  else
    printf("test_emu_exec: all passed\n");
  return failures ? 1 : 0;
}
