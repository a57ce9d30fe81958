/* A structural check of MATLAB v5 .mat files before libmatio reads them.
 *
 * libmatio trusts the sizes written in the file: a 233-byte file whose
 * variable name claims 1.6 GB made Mat_VarRead allocate and clear 1.6 GB
 * (found by tests/fuzz/fuzz_mars; regression input in tests/fuzz/regress/mars).
 * This check walks the file's data elements and refuses sizes that cannot be
 * true, so that whatever matio allocates stays proportional to the file:
 *
 *   file     128-byte header (version 0x0100, "IM" or "MI"), then elements;
 *   element  tag (u32 type, u32 bytes; or a "small" tag, bytes in the upper
 *            16 bits, data in the next 4 bytes); its bytes must fit in the file;
 *   miMATRIX (14): array flags, dimensions, name, then data: each sub-element
 *            must fit in the matrix, the name be at most 4096 bytes, and the
 *            element count (product of the dimensions) at most the matrix's
 *            bytes (every element of a non-sparse array takes at least one byte);
 *            the class must be char, sparse or numeric: MARS index files hold
 *            numeric matrices only, and matio allocates a struct's elements x
 *            fields pointers before reading any (2.3 GB from a 17 KB file; found
 *            by the fuzzer; cell, object and function classes nest the same way);
 *            then the data elements, each of a numeric or character type and
 *            within the matrix (matio sizes a sparse matrix's arrays from their
 *            tags: a 233-byte file with a bad row-index tag made it ask for 4 GB);
 *   miCOMPRESSED (15): zlib; the first bytes are inflated and the matrix inside
 *            checked the same way, its size bounded by zlib's largest ratio
 *            (1032:1) times the compressed size.
 * v7.3 files (HDF5, version 0x0200) are left to matio and HDF5. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dataset_build.h"

#define MI_INT8        1
#define MI_INT32       5
#define MI_UINT32      6
#define MI_SINGLE      7
#define MI_DOUBLE      9
#define MI_INT64       12
#define MI_UINT64      13
#define MI_UTF8        16
#define MI_UTF32       18
#define MI_MATRIX      14
#define MI_COMPRESSED  15
#define MX_CHAR        4
#define MX_SPARSE      5
#define MX_UINT64      15
#define MAX_NAME       4096
#define ZLIB_MAX_RATIO 1032

typedef struct tag {
  uint32_t type, bytes;
  const uint8_t *data; /* the element's data */
  size_t size;         /* tag + data, padded to 8 bytes (inside its container) */
} tag;

static uint32_t u32(const uint8_t *p, int swap) {
  uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  return swap ? __builtin_bswap32(v) : v;
}

/* The element at p (n bytes left); 0 when its tag or data do not fit. */
static int read_tag(const uint8_t *p, size_t n, int swap, tag *t) {
  if (n < 8) return 0;
  uint32_t first = u32(p, swap);
  if (first >> 16) { /* small element: data in the tag's second word */
    t->type = first & 0xffff, t->bytes = first >> 16, t->data = p + 4, t->size = 8;
    return t->bytes <= 4;
  }
  t->type = first, t->bytes = u32(p + 4, swap), t->data = p + 8;
  if (t->bytes > n - 8) return 0;
  t->size = 8 + (((size_t)t->bytes + 7) & ~(size_t)7);
  if (t->size > n) t->size = n; /* the last element may lack its padding */
  return 1;
}

/* The data elements after a matrix's name (real and imaginary parts; a sparse one's row
 * indices and column starts first): each of a numeric or character type, its bytes within
 * the `left` bytes the matrix declares. p[0, n) is what can be read (less than `left` in a
 * compressed matrix, of which only the inflated start is checked). */
static const char *check_data(const uint8_t *p, size_t n, uint64_t left, int swap) {
  while (n >= 8 && left >= 8) {
    uint32_t first = u32(p, swap), type, bytes;
    size_t size = 8;
    if (first >> 16) { /* small element */
      type = first & 0xffff, bytes = first >> 16;
      if (bytes > 4) return "a bad small data element";
    } else {
      type = first, bytes = u32(p + 4, swap);
      if ((uint64_t)bytes > left - 8) return "a data element is larger than its matrix";
      size = 8 + (((size_t)bytes + 7) & ~(size_t)7);
    }
    int numeric = (type >= MI_INT8 && type <= MI_SINGLE) || type == MI_DOUBLE || type == MI_INT64 ||
                  type == MI_UINT64 || (type >= MI_UTF8 && type <= MI_UTF32);
    if (!numeric) return "a data element of no numeric type";
    if (size >= n || size >= left) break;
    p += size, n -= size, left -= size;
  }
  return NULL;
}

/* The sub-elements of a matrix whose data is p[0, n) and whose declared size is `declared`
 * (n may be less: the inflated start of a compressed one). */
static const char *check_matrix(const uint8_t *p, size_t n, uint64_t declared, int swap) {
  tag flags, dims, name;
  if (!read_tag(p, n, swap, &flags) || flags.bytes < 8) return "bad array flags";
  p += flags.size, n -= flags.size;
  unsigned mx_class = u32(flags.data, swap) & 0xff;
  if (mx_class < MX_CHAR || mx_class > MX_UINT64)
    return "a cell, struct or object variable (index files hold numeric matrices)";
  int sparse = mx_class == MX_SPARSE;
  if (!read_tag(p, n, swap, &dims) || dims.bytes < 8 || dims.bytes % 4 || dims.bytes > 4 * 32)
    return "bad dimensions";
  uint64_t count = 1;
  for (uint32_t i = 0; i < dims.bytes / 4; i++) {
    uint32_t d = u32(dims.data + 4 * i, swap);
    if (d > 0 && count > UINT64_MAX / d) return "dimensions overflow";
    count *= d;
  }
  if (!sparse && count > declared) return "more elements than bytes";
  /* sparse: matio allocates nzmax (the flags' second word) row indices and values, and
   * columns + 1 column starts; each takes at least one byte of the matrix */
  if (sparse &&
      (u32(flags.data + 4, swap) > declared || u32(dims.data + dims.bytes - 4, swap) > declared))
    return "more sparse entries than bytes";
  p += dims.size, n -= dims.size;
  if (!read_tag(p, n, swap, &name) || name.bytes > MAX_NAME || name.bytes > declared)
    return "bad variable name";
  p += name.size, n -= name.size;
  uint64_t used = flags.size + dims.size + name.size;
  return check_data(p, n, declared > used ? declared - used : 0, swap);
}

reid_status ds_check_mat(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return reid_fail(REID_EIO, "%s: cannot open", path);
  uint8_t head[128];
  size_t got = fread(head, 1, sizeof head, f);
  if (got < sizeof head) {
    fclose(f);
    return reid_fail(REID_EFORMAT, "%s: not a MATLAB .mat file (shorter than its header)", path);
  }
  int swap = head[126] == 'M' && head[127] == 'I';
  if (!swap && !(head[126] == 'I' && head[127] == 'M')) {
    fclose(f);
    return reid_fail(REID_EFORMAT, "%s: not a MATLAB .mat file (no endian mark)", path);
  }
  unsigned version =
      swap ? (unsigned)head[124] << 8 | head[125] : (unsigned)head[125] << 8 | head[124];
  if (version == 0x0200) { /* v7.3: HDF5 */
    fclose(f);
    return REID_OK;
  }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  if (size < 128 || size > (1L << 30)) {
    fclose(f);
    return reid_fail(REID_EFORMAT, "%s: implausible size for a MARS index file", path);
  }
  uint8_t *b = malloc((size_t)size);
  fseek(f, 0, SEEK_SET);
  int ok = b && fread(b, 1, (size_t)size, f) == (size_t)size;
  fclose(f);
  if (!ok) {
    free(b);
    return reid_fail(REID_EIO, "%s: read failed", path);
  }
  const char *why = NULL;
  size_t off = 128;
  uint8_t inflated[512];
  while (!why && off + 8 <= (size_t)size) {
    tag t;
    if (!read_tag(b + off, (size_t)size - off, swap, &t)) {
      why = "an element is larger than the file";
      break;
    }
    if (t.type == MI_MATRIX) {
      why = check_matrix(t.data, t.bytes, t.bytes, swap);
    } else if (t.type == MI_COMPRESSED) {
      z_stream z = {0};
      if (inflateInit(&z) != Z_OK) {
        why = "zlib";
        break;
      }
      z.next_in = (Bytef *)t.data, z.avail_in = t.bytes;
      z.next_out = inflated, z.avail_out = sizeof inflated;
      int zr = inflate(&z, Z_SYNC_FLUSH);
      size_t have = sizeof inflated - z.avail_out;
      inflateEnd(&z);
      tag inner;
      if ((zr != Z_OK && zr != Z_STREAM_END) || have < 8)
        why = "a compressed element does not inflate";
      else if (u32(inflated, swap) >> 16 || u32(inflated, swap) != MI_MATRIX)
        why = "a compressed element holds no matrix";
      else {
        inner.bytes = u32(inflated + 4, swap);
        if ((uint64_t)inner.bytes > (uint64_t)t.bytes * ZLIB_MAX_RATIO)
          why = "a compressed matrix claims more than its data can inflate to";
        else
          why = check_matrix(inflated + 8, have - 8, inner.bytes, swap);
      }
    }
    off += t.size;
  }
  free(b);
  if (why) return reid_fail(REID_EFORMAT, "%s: not a valid MATLAB v5 .mat file: %s", path, why);
  return REID_OK;
}
