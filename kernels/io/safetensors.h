/* safetensors: the checkpoint container (https://github.com/huggingface/safetensors).
 *
 * File layout:
 *   u64 little-endian N                      header size in bytes
 *   N bytes of UTF-8 JSON (space-padded)     the header
 *   data                                     raw little-endian tensor bytes
 * Header: {"__metadata__": {"key": "value", ...},            (optional)
 *          "name": {"dtype": "F32", "shape": [d0, d1, ...],
 *                   "data_offsets": [begin, end]}, ...}      (relative to data)
 * A scalar has shape [] and one element. Tensors are dense, C order.
 *
 * st_open validates everything before returning (sizes, offsets, overlap,
 * duplicates, dtypes) so users can trust every st_tensor. Errors are
 * REID_EIO (cannot read) or REID_EFORMAT (malformed), with messages that
 * start with the file path. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define ST_MAX_DIMS   8
#define ST_MAX_HEADER (100u * 1024u * 1024u) /* larger headers are rejected as absurd */

typedef enum st_dtype {
  ST_F64,
  ST_F32,
  ST_F16,
  ST_BF16,
  ST_I64,
  ST_I32,
  ST_I16,
  ST_I8,
  ST_U64,
  ST_U32,
  ST_U16,
  ST_U8,
  ST_BOOL,
  ST_DTYPE_COUNT,
} st_dtype;

const char *st_dtype_name(st_dtype d); /* "F32", ... */
size_t st_dtype_size(st_dtype d);      /* bytes per element */
/* Parses a dtype name; returns 0 and sets *out, or -1 if unknown. */
int st_dtype_from_name(const char *name, st_dtype *out);

typedef struct st_tensor {
  const char *name;
  st_dtype dtype;
  int ndim;                   /* 0 .. ST_MAX_DIMS */
  int64_t shape[ST_MAX_DIMS]; /* first ndim entries valid */
  int64_t numel;              /* product of shape; 1 for a scalar */
  uint64_t begin, end;        /* byte range inside the data section */
} st_tensor;

typedef struct st_file st_file;

/* ---- reading ---------------------------------------------------------- */

/* Reads and validates the whole file; *out is NULL on failure. */
reid_status st_open(const char *path, st_file **out);
void st_close(st_file *f);

const char *st_path(const st_file *f);
size_t st_count(const st_file *f);                            /* number of tensors */
const st_tensor *st_tensor_at(const st_file *f, size_t i);    /* header order; NULL if i >= count */
const st_tensor *st_find(const st_file *f, const char *name); /* NULL if absent */
/* The tensor's raw little-endian bytes (end - begin of them). */
const void *st_data(const st_file *f, const st_tensor *t);

size_t st_meta_count(const st_file *f);
const char *st_meta(const st_file *f, const char *key); /* NULL if absent */
/* i-th metadata entry in header order; returns -1 (and leaves outputs) if i >= count. */
int st_meta_at(const st_file *f, size_t i, const char **key, const char **value);

/* Converts an F32, F16 or BF16 tensor to float. dst_count must equal numel
 * (REID_EINVAL otherwise); other dtypes give REID_EUNSUPPORTED. */
reid_status st_read_f32(const st_file *f, const st_tensor *t, float *dst, size_t dst_count);

/* ---- writing ---------------------------------------------------------- */

typedef struct st_writer st_writer;

st_writer *st_writer_new(void); /* NULL (with reid_last_error) if out of memory */
void st_writer_free(st_writer *w);

/* Metadata key -> value strings; a repeated key is REID_EINVAL. */
reid_status st_writer_add_meta(st_writer *w, const char *key, const char *value);

/* Copies `data` (numel floats, C order) in, stored as dtype (ST_F32, ST_F16
 * or ST_BF16; converted with round-to-nearest-even). ndim 0 is a scalar.
 * Names must be unique, non-empty and not "__metadata__". */
reid_status st_writer_add_f32(st_writer *w, const char *name, st_dtype dtype, int ndim,
                              const int64_t *shape, const float *data);

/* Copies numel * st_dtype_size(dtype) raw little-endian bytes in, any dtype
 * (e.g. an I64 "num_batches_tracked" scalar). */
reid_status st_writer_add_raw(st_writer *w, const char *name, st_dtype dtype, int ndim,
                              const int64_t *shape, const void *data);

/* Writes the tensors in the order added, atomically (see reid_write_file_atomic in fileio.h). */
reid_status st_writer_save(const st_writer *w, const char *path);


