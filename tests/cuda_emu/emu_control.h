/* Test controls of the CUDA emulator, callable from C: fault injection and
 * accounting of emulated memory. Only the emulated build has them. */
#pragma once

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The allocation (cudaMalloc, cudaMallocHost, cudaHostAlloc) after `skip`
 * more successful ones fails with cudaErrorMemoryAllocation, once; -1 turns
 * the injection off. */
void emu_fail_allocation_after(long skip);
/* 1 when the injected failure has happened since it was armed. */
int emu_allocation_failed(void);
/* Live emulated allocations (device and pinned). */
size_t emu_live_allocations(void);

#ifdef __cplusplus
}
#endif
