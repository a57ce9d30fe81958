/* The emulator's CUDA runtime: the cudart calls the CUDA backend makes, on the
 * CPU, with one emulated device ("CUDA emulator", compute capability 9.0,
 * 2 multiprocessors, so grid-stride loops really loop).
 *
 * What it checks, beyond computing the right answer:
 *   - device memory is malloc'd at its exact size and poisoned with 0xff
 *     bytes (NaN as floats): AddressSanitizer catches out-of-bounds kernel
 *     accesses, tests catch reads of unwritten memory;
 *   - copies and memsets must stay inside one allocation of the right kind
 *     (device side in cudaMalloc memory, host side outside it);
 *   - kernels may only be handed device or pinned pointers;
 *   - while a stream is captured nothing runs (work is recorded and runs at
 *     cudaGraphLaunch), and synchronous calls from the capturing thread fail
 *     and invalidate the capture, as they do on a GPU;
 *   - faults are sticky: after an illegal address every call reports it.
 * What it cannot check: timing, races between streams or with the host (work
 * runs synchronously, in order), the GPU memory model, launch-bound limits. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "emu.h"
#include "emu_control.h"
#include "emu_internal.h"

typedef std::vector<std::function<void()>> work_list;

struct CUstream_st {
  int capturing; /* 1 active, 2 invalidated */
  cudaStreamCaptureMode mode;
  std::shared_ptr<work_list> recording;
};

struct CUgraph_st {
  std::shared_ptr<work_list> nodes;
};

struct CUgraphExec_st {
  std::shared_ptr<work_list> nodes;
};

struct CUevent_st {
  int timing, recorded;
  double ms;
};

namespace emu {

namespace {

struct allocation {
  size_t bytes;
  memory kind;
};

std::mutex registry_lock;
std::map<uintptr_t, allocation> registry; /* by first address */
thread_local cudaError_t last_error = cudaSuccess;
cudaError_t sticky = cudaSuccess;
thread_local CUstream_st *thread_capture; /* the stream this thread captures in a strict mode */
long fail_after = -1;                     /* allocations to let through before one fails */
int injected_failure;

const allocation *find(const void *p, uintptr_t *base) {
  const uintptr_t a = (uintptr_t)p;
  auto it = registry.upper_bound(a);
  if (it == registry.begin()) return nullptr;
  --it;
  if (a - it->first >= (it->second.bytes ? it->second.bytes : 1)) return nullptr;
  *base = it->first;
  return &it->second;
}

double clock_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

} // namespace

void diagnose(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "cuda-emu: %s\n", line);
}

void set_launch_error(cudaError_t e) {
  last_error = e;
}

void set_sticky_error(cudaError_t e) {
  if (sticky == cudaSuccess) sticky = e;
  last_error = e;
}

memory lookup(const void *p, size_t bytes) {
  if (!p) return memory::none;
  std::lock_guard<std::mutex> hold(registry_lock);
  uintptr_t base;
  const allocation *a = find(p, &base);
  if (!a || (uintptr_t)p - base + bytes > a->bytes) return memory::none;
  return a->kind;
}

bool capturing(cudaStream_t stream) {
  return stream && stream->capturing;
}

bool thread_capturing() {
  return thread_capture != nullptr;
}

cudaError_t refuse_during_capture(const char *call) {
  diagnose("%s while this thread captures a stream into a graph: not permitted; the capture is "
           "invalidated",
           call);
  if (thread_capture) thread_capture->capturing = 2;
  return cudaErrorStreamCaptureUnsupported;
}

cudaError_t enqueue(cudaStream_t stream, std::function<void()> work) {
  if (sticky != cudaSuccess) return sticky;
  if (stream && stream->capturing == 2) return cudaErrorStreamCaptureInvalidated;
  if (stream && stream->capturing) {
    stream->recording->push_back(std::move(work));
    return cudaSuccess;
  }
  if (!stream && thread_capture) return refuse_during_capture("work on the legacy default stream");
  work();
  return sticky;
}

} // namespace emu

using emu::diagnose;
using emu::memory;

#define RETURN_STICKY                                                                              \
  do {                                                                                             \
    if (emu::sticky != cudaSuccess) return emu::last_error = emu::sticky;                          \
  } while (0)
#define FAIL(e, ...)                                                                               \
  do {                                                                                             \
    diagnose(__VA_ARGS__);                                                                         \
    return emu::last_error = (e);                                                                  \
  } while (0)
#define NOT_DURING_CAPTURE(call)                                                                   \
  do {                                                                                             \
    if (emu::thread_capture) return emu::last_error = emu::refuse_during_capture(call);            \
  } while (0)

/* ---- test controls (emu_control.h) ---- */

extern "C" void emu_fail_allocation_after(long skip) {
  std::lock_guard<std::mutex> hold(emu::registry_lock);
  emu::fail_after = skip;
  emu::injected_failure = 0;
}

extern "C" int emu_allocation_failed(void) {
  std::lock_guard<std::mutex> hold(emu::registry_lock);
  return emu::injected_failure;
}

extern "C" size_t emu_live_allocations(void) {
  std::lock_guard<std::mutex> hold(emu::registry_lock);
  return emu::registry.size();
}

/* ---- errors ---- */

extern "C" cudaError_t cudaGetLastError(void) {
  cudaError_t e = emu::last_error;
  emu::last_error = emu::sticky;
  return e;
}

extern "C" cudaError_t cudaPeekAtLastError(void) {
  return emu::last_error;
}

static const char *error_name(cudaError_t e) {
  switch (e) {
  case cudaSuccess: return "cudaSuccess";
  case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
  case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
  case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
  case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
  case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
  case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
  case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
  case cudaErrorNotReady: return "cudaErrorNotReady";
  case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
  case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
  case cudaErrorStreamCaptureWrongThread: return "cudaErrorStreamCaptureWrongThread";
  case cudaErrorIllegalState: return "cudaErrorIllegalState";
  default: return "cudaErrorUnknown";
  }
}

extern "C" const char *cudaGetErrorName(cudaError_t e) {
  return error_name(e);
}

extern "C" const char *cudaGetErrorString(cudaError_t e) {
  switch (e) {
  case cudaSuccess: return "no error";
  case cudaErrorInvalidValue: return "invalid argument";
  case cudaErrorMemoryAllocation: return "out of memory";
  case cudaErrorInvalidConfiguration: return "invalid configuration argument";
  case cudaErrorInvalidDevice: return "invalid device ordinal";
  case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
  case cudaErrorLaunchFailure: return "unspecified launch failure";
  case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
  case cudaErrorStreamCaptureInvalidated:
    return "operation failed due to a previous error during capture";
  default: return error_name(e);
  }
}

/* ---- the device ---- */

extern "C" cudaError_t cudaGetDeviceCount(int *count) {
  if (!count) return emu::last_error = cudaErrorInvalidValue;
  *count = 1;
  return cudaSuccess;
}

extern "C" cudaError_t cudaSetDevice(int device) {
  RETURN_STICKY;
  if (device != 0)
    FAIL(cudaErrorInvalidDevice, "cudaSetDevice(%d): the emulator has device 0", device);
  return cudaSuccess;
}

extern "C" cudaError_t cudaGetDevice(int *device) {
  if (!device) return emu::last_error = cudaErrorInvalidValue;
  *device = 0;
  return cudaSuccess;
}

static const int SM_COUNT = 2;

extern "C" cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device) {
  if (!value || device != 0) return emu::last_error = cudaErrorInvalidValue;
  switch (attr) {
  case cudaDevAttrMultiProcessorCount: *value = SM_COUNT; break;
  case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
  case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
  case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
  case cudaDevAttrWarpSize: *value = 32; break;
  case cudaDevAttrMaxSharedMemoryPerBlock: *value = 48 * 1024; break;
  default: FAIL(cudaErrorInvalidValue, "cudaDeviceGetAttribute(%d): not emulated", (int)attr);
  }
  return cudaSuccess;
}

extern "C" cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device) {
  if (!prop || device != 0) return emu::last_error = cudaErrorInvalidValue;
  memset(prop, 0, sizeof *prop);
  snprintf(prop->name, sizeof prop->name, "CUDA emulator on the CPU (tests/cuda_emu)");
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = SM_COUNT;
  prop->totalGlobalMem = (size_t)4 << 30;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->sharedMemPerBlock = 48 * 1024;
  return cudaSuccess;
}

extern "C" cudaError_t cudaDeviceSynchronize(void) {
  RETURN_STICKY;
  NOT_DURING_CAPTURE("cudaDeviceSynchronize");
  return cudaSuccess;
}

/* ---- memory ---- */

static cudaError_t allocate(void **p, size_t bytes, memory kind, const char *call) {
  RETURN_STICKY;
  if (!p) FAIL(cudaErrorInvalidValue, "%s: NULL result pointer", call);
  NOT_DURING_CAPTURE(call);
  *p = nullptr;
  if (!bytes) return cudaSuccess;
  {
    std::lock_guard<std::mutex> hold(emu::registry_lock);
    if (emu::fail_after == 0) {
      emu::fail_after = -1, emu::injected_failure = 1;
      diagnose("%s(%zu bytes): injected out-of-memory", call, bytes);
      return emu::last_error = cudaErrorMemoryAllocation;
    }
    if (emu::fail_after > 0) emu::fail_after--;
  }
  void *m = nullptr;
  if (posix_memalign(&m, 256, bytes)) return emu::last_error = cudaErrorMemoryAllocation;
  memset(m, 0xff, bytes);
  std::lock_guard<std::mutex> hold(emu::registry_lock);
  emu::registry[(uintptr_t)m] = {bytes, kind};
  *p = m;
  return cudaSuccess;
}

static cudaError_t release(void *p, memory kind, const char *call) {
  if (!p) return cudaSuccess;
  NOT_DURING_CAPTURE(call);
  std::lock_guard<std::mutex> hold(emu::registry_lock);
  auto it = emu::registry.find((uintptr_t)p);
  if (it == emu::registry.end() || it->second.kind != kind)
    FAIL(cudaErrorInvalidValue, "%s(%p): not the start of a live %s allocation", call, p,
         kind == memory::device ? "cudaMalloc" : "cudaMallocHost");
  emu::registry.erase(it);
  free(p);
  return cudaSuccess;
}

extern "C" cudaError_t cudaMalloc(void **p, size_t bytes) {
  return allocate(p, bytes, memory::device, "cudaMalloc");
}
extern "C" cudaError_t cudaFree(void *p) {
  return release(p, memory::device, "cudaFree");
}
extern "C" cudaError_t cudaMallocHost(void **p, size_t bytes) {
  return allocate(p, bytes, memory::pinned, "cudaMallocHost");
}
extern "C" cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned int) {
  return allocate(p, bytes, memory::pinned, "cudaHostAlloc");
}
extern "C" cudaError_t cudaFreeHost(void *p) {
  return release(p, memory::pinned, "cudaFreeHost");
}

extern "C" cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
  if (free_bytes) *free_bytes = (size_t)3 << 30;
  if (total) *total = (size_t)4 << 30;
  return cudaSuccess;
}

extern "C" cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *a, const void *p) {
  if (!a) return emu::last_error = cudaErrorInvalidValue;
  memset(a, 0, sizeof *a);
  a->device = 0;
  switch (emu::lookup(p, 1)) {
  case memory::device:
    a->type = cudaMemoryTypeDevice;
    a->devicePointer = (void *)p;
    break;
  case memory::pinned:
    a->type = cudaMemoryTypeHost;
    a->devicePointer = (void *)p;
    a->hostPointer = (void *)p;
    break;
  default: a->type = cudaMemoryTypeUnregistered; a->hostPointer = (void *)p;
  }
  return cudaSuccess;
}

/* A side of a copy: device memory must lie inside one cudaMalloc block; host
 * memory must not be device memory. */
static int side_ok(const void *p, size_t bytes, int device_side, const char *call,
                   const char *which) {
  const memory m = emu::lookup(p, bytes);
  if (device_side && m != memory::device) {
    diagnose("%s: %s %p (%zu bytes) is not inside one device allocation", call, which, p, bytes);
    return 0;
  }
  if (!device_side && emu::lookup(p, 1) == memory::device) {
    diagnose("%s: %s %p is device memory but the copy kind says host", call, which, p);
    return 0;
  }
  if (!device_side && !p) {
    diagnose("%s: %s is NULL", call, which);
    return 0;
  }
  return 1;
}

static cudaError_t copy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                        cudaStream_t stream, int async, const char *call) {
  RETURN_STICKY;
  if (!async) NOT_DURING_CAPTURE(call);
  if (!bytes) return cudaSuccess;
  if (kind == cudaMemcpyDefault) {
    const int d_dev = emu::lookup(dst, 1) == memory::device,
              s_dev = emu::lookup(src, 1) == memory::device;
    kind = d_dev ? (s_dev ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                 : (s_dev ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  }
  const int dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const int src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (!side_ok(dst, bytes, dst_dev, call, "destination") ||
      !side_ok(src, bytes, src_dev, call, "source"))
    return emu::last_error = cudaErrorInvalidValue;
  if (emu::capturing(stream) && ((!dst_dev && emu::lookup(dst, bytes) != memory::pinned) ||
                                 (!src_dev && emu::lookup(src, bytes) != memory::pinned)))
    return emu::last_error =
               emu::refuse_during_capture("a captured copy from or to pageable host memory");
  cudaError_t e = emu::enqueue(stream, [dst, src, bytes]() { memmove(dst, src, bytes); });
  return e == cudaSuccess ? e : (emu::last_error = e);
}

extern "C" cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
  return copy(dst, src, bytes, kind, nullptr, 0, "cudaMemcpy");
}

extern "C" cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes,
                                       cudaMemcpyKind kind, cudaStream_t stream) {
  return copy(dst, src, bytes, kind, stream, 1, "cudaMemcpyAsync");
}

static cudaError_t set(void *p, int value, size_t bytes, cudaStream_t stream, int async,
                       const char *call) {
  RETURN_STICKY;
  if (!async) NOT_DURING_CAPTURE(call);
  if (!bytes) return cudaSuccess;
  if (!side_ok(p, bytes, 1, call, "destination")) return emu::last_error = cudaErrorInvalidValue;
  cudaError_t e = emu::enqueue(stream, [p, value, bytes]() { memset(p, value, bytes); });
  return e == cudaSuccess ? e : (emu::last_error = e);
}

extern "C" cudaError_t cudaMemset(void *p, int value, size_t bytes) {
  return set(p, value, bytes, nullptr, 0, "cudaMemset");
}

extern "C" cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t stream) {
  return set(p, value, bytes, stream, 1, "cudaMemsetAsync");
}

/* ---- streams and graphs ---- */

extern "C" cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int) {
  RETURN_STICKY;
  if (!stream) return emu::last_error = cudaErrorInvalidValue;
  *stream = new CUstream_st();
  return cudaSuccess;
}

extern "C" cudaError_t cudaStreamCreate(cudaStream_t *stream) {
  return cudaStreamCreateWithFlags(stream, 0);
}

extern "C" cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (!stream) return emu::last_error = cudaErrorInvalidResourceHandle;
  if (stream->capturing)
    FAIL(cudaErrorIllegalState, "cudaStreamDestroy: the stream is still being captured");
  delete stream;
  return cudaSuccess;
}

extern "C" cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  RETURN_STICKY;
  if (emu::capturing(stream) || emu::thread_capture)
    return emu::last_error = emu::refuse_during_capture("cudaStreamSynchronize");
  return cudaSuccess;
}

extern "C" cudaError_t cudaStreamQuery(cudaStream_t stream) {
  RETURN_STICKY;
  if (emu::capturing(stream))
    return emu::last_error = emu::refuse_during_capture("cudaStreamQuery");
  return cudaSuccess;
}

extern "C" cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  RETURN_STICKY;
  if (!stream)
    FAIL(cudaErrorStreamCaptureUnsupported, "cudaStreamBeginCapture on the legacy default stream");
  if (stream->capturing)
    FAIL(cudaErrorIllegalState, "cudaStreamBeginCapture: the stream is already being captured");
  if (mode != cudaStreamCaptureModeRelaxed && emu::thread_capture)
    FAIL(cudaErrorIllegalState, "cudaStreamBeginCapture: this thread already captures a stream");
  stream->capturing = 1;
  stream->mode = mode;
  stream->recording = std::make_shared<work_list>();
  if (mode != cudaStreamCaptureModeRelaxed) emu::thread_capture = stream;
  return cudaSuccess;
}

extern "C" cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph) {
  if (!stream || !graph) return emu::last_error = cudaErrorInvalidValue;
  if (!stream->capturing)
    FAIL(cudaErrorIllegalState, "cudaStreamEndCapture: the stream is not being captured");
  if (stream->mode != cudaStreamCaptureModeRelaxed && emu::thread_capture != stream)
    FAIL(cudaErrorStreamCaptureWrongThread, "cudaStreamEndCapture from another thread");
  const int invalidated = stream->capturing == 2;
  std::shared_ptr<work_list> nodes = std::move(stream->recording);
  stream->capturing = 0;
  if (emu::thread_capture == stream) emu::thread_capture = nullptr;
  *graph = nullptr;
  if (invalidated) return emu::last_error = cudaErrorStreamCaptureInvalidated;
  *graph = new CUgraph_st{nodes};
  return cudaSuccess;
}

extern "C" cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus *status) {
  if (!status) return emu::last_error = cudaErrorInvalidValue;
  *status = !stream || !stream->capturing ? cudaStreamCaptureStatusNone
            : stream->capturing == 1      ? cudaStreamCaptureStatusActive
                                          : cudaStreamCaptureStatusInvalidated;
  return cudaSuccess;
}

extern "C" cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph,
                                            unsigned long long) {
  RETURN_STICKY;
  if (!exec || !graph) return emu::last_error = cudaErrorInvalidValue;
  NOT_DURING_CAPTURE("cudaGraphInstantiate");
  *exec = new CUgraphExec_st{graph->nodes};
  return cudaSuccess;
}

extern "C" cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  RETURN_STICKY;
  if (!exec) return emu::last_error = cudaErrorInvalidResourceHandle;
  std::shared_ptr<work_list> nodes = exec->nodes;
  cudaError_t e = emu::enqueue(stream, [nodes]() {
    for (auto &work : *nodes) {
      if (emu::sticky != cudaSuccess) return;
      work();
    }
  });
  return e == cudaSuccess ? e : (emu::last_error = e);
}

extern "C" cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}

extern "C" cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

/* ---- events ---- */

extern "C" cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags) {
  RETURN_STICKY;
  if (!event) return emu::last_error = cudaErrorInvalidValue;
  *event = new CUevent_st{!(flags & cudaEventDisableTiming), 0, 0.0};
  return cudaSuccess;
}

extern "C" cudaError_t cudaEventCreate(cudaEvent_t *event) {
  return cudaEventCreateWithFlags(event, cudaEventDefault);
}

extern "C" cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}

extern "C" cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  RETURN_STICKY;
  if (!event) return emu::last_error = cudaErrorInvalidResourceHandle;
  cudaError_t e = emu::enqueue(stream, [event]() {
    event->ms = emu::clock_ms();
    event->recorded = 1;
  });
  return e == cudaSuccess ? e : (emu::last_error = e);
}

extern "C" cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  RETURN_STICKY;
  if (!event) return emu::last_error = cudaErrorInvalidResourceHandle;
  NOT_DURING_CAPTURE("cudaEventSynchronize");
  return cudaSuccess;
}

extern "C" cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
  RETURN_STICKY;
  if (!ms || !start || !end) return emu::last_error = cudaErrorInvalidValue;
  if (!start->timing || !end->timing)
    FAIL(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime on an event without timing");
  if (!start->recorded || !end->recorded) return emu::last_error = cudaErrorNotReady;
  *ms = (float)(end->ms - start->ms);
  return cudaSuccess;
}
