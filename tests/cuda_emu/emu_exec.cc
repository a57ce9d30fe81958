/* The emulator's kernel executor: a grid runs block after block on the
 * calling OS thread; the threads of a block are fibers (own stacks, switched
 * by a few lines of x86-64 assembly), so __syncthreads and warp shuffles
 * suspend a thread until its block (or warp) has arrived, as on a GPU.
 *
 * A thread runs until it finishes or waits at a barrier; the scheduler then
 * resumes the next unfinished thread of the block, round after round. A
 * round in which no barrier opens and no thread finishes is a deadlock (a
 * barrier some threads never reach): the launch fails with a diagnostic.
 * Threads that have exited no longer count at barriers.
 *
 * A GPU promises no order between blocks, nor between the threads of a block
 * between barriers; the emulator visits both in a different order at each
 * launch (a permutation drawn from the launch's number, so a failure
 * reproduces), so code that depends on an order fails rather than passing by
 * luck.
 *
 * A thread gets its fiber when it first runs, and a finished thread's fiber
 * (stack) is reused: in a block that never synchronises every thread runs to
 * its end on the same, cache-warm stack. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <mutex>

#include "emu_device.h"
#include "emu_internal.h"

#if !defined(__x86_64__)
#error "the CUDA emulator's fibers are written for x86-64"
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

/* void emu_context_switch(void **save_sp, void *load_sp): saves the callee-
 * saved registers, MXCSR and the x87 control word on the current stack,
 * stores the stack pointer in *save_sp, and resumes the stack load_sp. */
extern "C" void emu_context_switch(void **save_sp, void *load_sp);
asm(R"(
  .text
  .globl emu_context_switch
  .type emu_context_switch, @function
emu_context_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size emu_context_switch, .-emu_context_switch
  .section .note.GNU-stack,"",@progbits
  .text
)");

namespace emu {

coordinates now;

namespace {

const int MAX_THREADS = 1024;
const size_t STACK_BYTES = (size_t)64 << 10; /* kernels' call chains are shallow */

struct fiber {
  char *stack; /* [STACK_BYTES], lowest address */
  void *sp;
  void *asan_fake;
};

struct warp_state {
  int live, arrived;
  unsigned generation;
  unsigned char slot[32][16];
};

struct block_state {
  const std::function<void()> *body;
  fiber fibers[MAX_THREADS];
  int free_fibers[MAX_THREADS], n_free; /* stacks not in use */
  int fiber_of[MAX_THREADS];            /* thread -> fiber; -1 before it first runs */
  int done[MAX_THREADS];
  uint3 coords[MAX_THREADS]; /* threadIdx of each thread */
  int threads, current;
  int live, arrived;
  unsigned generation;
  warp_state warps[MAX_THREADS / 32];
  int progress; /* a barrier opened or a thread finished this round */
  void *scheduler_sp;
  const void *scheduler_stack;
  size_t scheduler_stack_bytes;
  void *asan_fake;
};

std::recursive_mutex exec_lock;
block_state B;

void to_scheduler(int finished) {
  fiber *f = &B.fibers[B.fiber_of[B.current]];
#if EMU_ASAN
  __sanitizer_start_switch_fiber(finished ? nullptr : &f->asan_fake, B.scheduler_stack,
                                 B.scheduler_stack_bytes);
#endif
  emu_context_switch(&f->sp, B.scheduler_sp);
#if EMU_ASAN
  __sanitizer_finish_switch_fiber(f->asan_fake, nullptr, nullptr);
#endif
  (void)finished;
}

/* First frame of every fiber (entered through emu_context_switch's ret). */
void fiber_main(void) {
#if EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &B.scheduler_stack, &B.scheduler_stack_bytes);
#endif
  (*B.body)();
  B.done[B.current] = 1;
  B.free_fibers[B.n_free++] = B.fiber_of[B.current]; /* reusable once we have switched away */
  B.live--;
  warp_state *w = &B.warps[B.current / 32];
  w->live--;
  if (B.arrived > 0 && B.arrived == B.live) B.arrived = 0, B.generation++;
  if (w->arrived > 0 && w->arrived == w->live) w->arrived = 0, w->generation++;
  B.progress = 1;
  to_scheduler(1);
  abort(); /* a finished fiber is never resumed */
}

/* A fresh stack whose first switch "returns" into fiber_main with the ABI's
 * alignment: the return address sits 16-byte aligned, 7 saved words below. */
void fiber_reset(fiber *f) {
  uintptr_t top = ((uintptr_t)(f->stack + STACK_BYTES) & ~(uintptr_t)15) - 16;
  uint64_t *sp = (uint64_t *)top;
  *--sp = 0;                             /* fiber_main's (never used) return address */
  *--sp = (uint64_t)&fiber_main;         /* popped by ret */
  for (int r = 0; r < 6; r++) *--sp = 0; /* rbp rbx r12 r13 r14 r15 */
  uint32_t mxcsr;
  uint16_t fpucw;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpucw));
  *--sp = (uint64_t)mxcsr | ((uint64_t)fpucw << 32);
  f->sp = sp;
}

int stacks_ready(int threads) {
  for (int t = 0; t < threads; t++) {
    if (B.fibers[t].stack) continue;
    void *p = mmap(nullptr, STACK_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return 0;
    B.fibers[t].stack = (char *)p;
  }
  return 1;
}

void resume(int t) {
  if (B.fiber_of[t] < 0) {
    B.fiber_of[t] = B.free_fibers[--B.n_free];
    fiber_reset(&B.fibers[B.fiber_of[t]]);
  }
  fiber *f = &B.fibers[B.fiber_of[t]];
  B.current = t;
  now.thread =
      make_uint3((unsigned)t % now.block_dim.x, (unsigned)t / now.block_dim.x % now.block_dim.y,
                 (unsigned)t / (now.block_dim.x * now.block_dim.y));
#if EMU_ASAN
  __sanitizer_start_switch_fiber(&B.asan_fake, f->stack, STACK_BYTES);
#endif
  emu_context_switch(&B.scheduler_sp, f->sp);
#if EMU_ASAN
  __sanitizer_finish_switch_fiber(B.asan_fake, nullptr, nullptr);
#endif
}

/* A permutation of [0, n): i -> (i * stride + offset) mod n, stride coprime
 * with n, both drawn from `seed`. */
struct order {
  unsigned long long n, stride, offset;
};

unsigned long long gcd(unsigned long long a, unsigned long long b) {
  while (b) {
    const unsigned long long t = a % b;
    a = b, b = t;
  }
  return a;
}

order order_make(unsigned long long n, unsigned long long seed) {
  seed = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull; /* one splitmix64 step */
  seed = (seed ^ (seed >> 30)) * 0xbf58476d1ce4e5b9ull;
  seed = (seed ^ (seed >> 27)) * 0x94d049bb133111ebull;
  seed ^= seed >> 31;
  order o = {n, n > 1 ? 1 + seed % (n - 1) : 1, n ? (seed >> 32) % n : 0};
  while (gcd(o.stride, n) != 1) o.stride = o.stride % n + 1;
  return o;
}

unsigned long long order_at(const order &o, unsigned long long i) {
  return (i * o.stride + o.offset) % o.n;
}

unsigned long long launches; /* seeds the visiting orders */

/* Runs one block to its end; 0 on a deadlock. */
int run_block(void) {
  const int n = B.threads;
  for (int t = 0; t < n; t++) {
    B.fiber_of[t] = -1;
    B.done[t] = 0;
    B.free_fibers[t] = n - 1 - t;
  }
  B.n_free = n;
  B.live = n, B.arrived = 0, B.generation = 0;
  for (int w = 0; w * 32 < n; w++) {
    B.warps[w].live = n - w * 32 < 32 ? n - w * 32 : 32;
    B.warps[w].arrived = 0;
    B.warps[w].generation = 0;
  }
  const order visit = order_make((unsigned long long)n, launches * 31 + now.block.x);
  while (B.live > 0) {
    B.progress = 0;
    for (int k = 0; k < n; k++) {
      const int t = (int)order_at(visit, (unsigned long long)k);
      if (!B.done[t]) resume(t);
    }
    if (!B.progress && B.live > 0) return 0;
  }
  return 1;
}

} // namespace

void sync_block(void) {
  if (++B.arrived == B.live) {
    B.arrived = 0, B.generation++, B.progress = 1;
    return;
  }
  const unsigned g = B.generation;
  while (B.generation == g) to_scheduler(0);
}

static void sync_warp(warp_state *w) {
  if (++w->arrived == w->live) {
    w->arrived = 0, w->generation++, B.progress = 1;
    return;
  }
  const unsigned g = w->generation;
  while (w->generation == g) to_scheduler(0);
}

void warp_exchange(const void *mine, void *out, int source, size_t bytes) {
  const int lane = B.current & 31;
  warp_state *w = &B.warps[B.current / 32];
  memcpy(w->slot[lane], mine, bytes);
  sync_warp(w);
  const int lanes = B.threads - (B.current & ~31);
  memcpy(out, source >= 0 && source < 32 && source < lanes ? w->slot[source] : mine, bytes);
  sync_warp(w); /* nobody overwrites a slot before every lane has read */
}

static int config_ok(const char *name, dim3 grid, dim3 block, size_t shared) {
  const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
  if (!grid.x || !grid.y || !grid.z || !threads || threads > MAX_THREADS || block.z > 64 ||
      grid.y > 65535 || grid.z > 65535 || shared > 48 * 1024) {
    diagnose("launch of %s with grid (%u, %u, %u), block (%u, %u, %u), %zu B shared: invalid "
             "configuration",
             name, grid.x, grid.y, grid.z, block.x, block.y, block.z, shared);
    return 0;
  }
  if (shared) {
    diagnose("launch of %s asks for %zu B of dynamic shared memory, which the emulator does "
             "not provide",
             name, shared);
    return 0;
  }
  return 1;
}

static void run_grid(const char *name, dim3 grid, dim3 block, const std::function<void()> &body) {
  std::lock_guard<std::recursive_mutex> hold(exec_lock);
  const int threads = (int)(block.x * block.y * block.z);
  if (!stacks_ready(threads)) {
    diagnose("%s: cannot map fiber stacks", name);
    set_sticky_error(cudaErrorLaunchOutOfResources);
    return;
  }
  const coordinates saved = now;
  now.grid_dim = grid;
  now.block_dim = block;
  B.body = &body;
  B.threads = threads;
  for (int t = 0; t < threads; t++)
    B.coords[t] = make_uint3((unsigned)t % block.x, (unsigned)t / block.x % block.y,
                             (unsigned)t / (block.x * block.y));
  const unsigned long long blocks = (unsigned long long)grid.x * grid.y * grid.z;
  const order visit = order_make(blocks, ++launches);
  for (unsigned long long k = 0; k < blocks; k++) {
    const unsigned long long b = order_at(visit, k);
    now.block = make_uint3((unsigned)(b % grid.x), (unsigned)(b / grid.x % grid.y),
                           (unsigned)(b / ((unsigned long long)grid.x * grid.y)));
    if (!run_block()) {
      diagnose("%s (launch %llu): block (%u, %u, %u) deadlocked: %d of %d threads wait at a "
               "barrier the others never reach",
               name, launches, now.block.x, now.block.y, now.block.z, B.arrived, B.live);
      set_sticky_error(cudaErrorLaunchFailure);
      break;
    }
  }
  now = saved;
}

void launch(const char *name, dim3 grid, dim3 block, size_t shared, cudaStream_t stream,
            std::function<void()> body) {
  if (!config_ok(name, grid, block, shared)) {
    set_launch_error(cudaErrorInvalidConfiguration);
    return;
  }
  cudaError_t e =
      enqueue(stream, [name, grid, block, body]() { run_grid(name, grid, block, body); });
  if (e != cudaSuccess) set_launch_error(e);
}

int kernel_pointer_ok(const char *kernel, int index, const void *p) {
  if (!p || lookup(p, 1) != memory::none) return 1;
  diagnose("%s: argument %d (%p) is not device or pinned memory: a GPU would fault on it", kernel,
           index, p);
  set_sticky_error(cudaErrorIllegalAddress);
  return 0;
}

} // namespace emu
