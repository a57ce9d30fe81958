/* Shared between the emulator's runtime (emu_runtime.cc) and its kernel
 * executor (emu_exec.cc). */
#pragma once

#include <cuda_runtime_api.h>

namespace emu {

/* cudaGetLastError's next value (a bad launch configuration). */
void set_launch_error(cudaError_t e);
/* A fault that, as on a GPU, every later call reports (illegal address,
 * failed kernel). */
void set_sticky_error(cudaError_t e);

} // namespace emu
