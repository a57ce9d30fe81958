/* NumPy .npy arrays of float, for fixtures and interchange with Python.
 *
 * File layout (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
 *   "\x93NUMPY" major minor                   magic + version (1.0, 2.0 or 3.0)
 *   u16 LE (v1) or u32 LE (v2, v3) H          header length
 *   H bytes: a Python dict literal, '\n'-terminated, e.g.
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 *   data                                      numel * itemsize bytes, C order
 * Errors name the file: REID_EIO (cannot read/write), REID_EFORMAT
 * (malformed), REID_EUNSUPPORTED (valid npy this reader does not handle). */
#pragma once

#include <stdint.h>

#include "status.h"

#define NPY_MAX_DIMS 8

/* Writes a v1.0 '<f4' C-order file, data starting at a multiple of 64 bytes,
 * atomically (temporary file + rename). ndim 0 writes a scalar. */
reid_status npy_write_f32(const char *path, int ndim, const int64_t *shape, const float *data);

/* Reads '<f4' (also '<f8' and '<f2', converted) into a new float array
 * (*data, free() it; non-NULL even for zero elements). Outputs are set only
 * on success; shape has room for NPY_MAX_DIMS entries. */
reid_status npy_read_f32(const char *path, int *ndim, int64_t shape[NPY_MAX_DIMS], float **data);
