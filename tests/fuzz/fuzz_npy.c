/* libFuzzer harness: NumPy .npy files through npy_read_f32 (magic, version,
 * the header's Python dict literal, shape, dtype, data size). A malformed file
 * must fail with an error, never crash, read out of bounds or leak. */
#include "fuzz.h"
#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_path("input.npy");
  fuzz_write(path, data, size);
  int ndim = 0;
  int64_t shape[NPY_MAX_DIMS];
  float *values = NULL;
  if (npy_read_f32(path, &ndim, shape, &values) == REID_OK) {
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (size_t)shape[d];
    volatile float sink = 0;
    for (size_t i = 0; i < numel; i++) sink += values[i]; /* every element is readable */
    free(values);
  }
  return 0;
}
