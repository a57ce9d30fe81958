/* .npy reader/writer for float arrays (see npy.h). The header dict is parsed
 * with a tiny strict parser for the subset NumPy writes: quoted strings,
 * True/False and tuples of non-negative integers. */
#include "npy.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "fileio.h"

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* ---- writing ---------------------------------------------------------- */

reid_status npy_write_f32(const char *path, int ndim, const int64_t *shape, const float *data) {
  if (!path) return reid_fail(REID_EINVAL, "npy_write_f32: NULL path");
  if (ndim < 0 || ndim > NPY_MAX_DIMS || (ndim > 0 && !shape))
    return reid_fail(REID_EINVAL, "%s: ndim %d not in 0..%d", path, ndim, NPY_MAX_DIMS);
  int64_t numel = 1;
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0 || __builtin_mul_overflow(numel, shape[i], &numel))
      return reid_fail(REID_EINVAL, "%s: bad shape entry %" PRId64, path, shape[i]);
  size_t nbytes;
  if (__builtin_mul_overflow((size_t)numel, sizeof(float), &nbytes))
    return reid_fail(REID_EINVAL, "%s: array too large", path);
  if (numel && !data) return reid_fail(REID_EINVAL, "%s: NULL data", path);

  /* 10 bytes of preamble + header; header ends in '\n' and the total is a multiple of 64 */
  char header[512];
  int n = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
  for (int i = 0; i < ndim; i++)
    n += snprintf(header + n, sizeof header - (size_t)n, "%s%" PRId64, i ? ", " : "", shape[i]);
  n += snprintf(header + n, sizeof header - (size_t)n, "%s), }", ndim == 1 ? "," : "");
  while ((10 + n + 1) % 64) header[n++] = ' ';
  header[n++] = '\n';

  unsigned char pre[10];
  memcpy(pre, npy_magic, 6);
  pre[6] = 1, pre[7] = 0;
  pre[8] = (unsigned char)(n & 0xff), pre[9] = (unsigned char)(n >> 8);

  const void *payload = data;
  unsigned char *le = NULL;
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
  le = malloc(nbytes ? nbytes : 1);
  if (!le) return reid_fail(REID_ENOMEM, "%s: out of memory", path);
  for (size_t i = 0; i < (size_t)numel; i++) {
    uint32_t u = half_f32_bits(data[i]);
    for (int k = 0; k < 4; k++) le[4 * i + k] = (unsigned char)(u >> (8 * k));
  }
  payload = le;
#endif
  const void *parts[3] = {pre, header, payload};
  size_t sizes[3] = {sizeof pre, (size_t)n, nbytes};
  reid_status st = reid_write_file_atomic(path, parts, sizes, 3, 1);
  free(le);
  return st;
}

/* ---- header dict ------------------------------------------------------ */

typedef struct hparser {
  const char *path;
  const unsigned char *s;
  size_t len, pos;
} hparser;

typedef enum { DT_F4, DT_F8, DT_F2 } npy_dtype;

static int hpeek(const hparser *p) {
  return p->pos < p->len ? p->s[p->pos] : -1;
}

static void hskip_ws(hparser *p) {
  while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
                             p->s[p->pos] == '\r'))
    p->pos++;
}

static reid_status hfail(const hparser *p, const char *what) {
  return reid_fail(REID_EFORMAT, "%s: bad npy header at offset %zu: %s", p->path, p->pos, what);
}

/* A '...' or "..." literal without escapes, copied into buf. */
static reid_status hstring(hparser *p, char *buf, size_t cap) {
  int q = hpeek(p);
  if (q != '\'' && q != '"') return hfail(p, "expected a quoted string");
  p->pos++;
  size_t n = 0;
  while (hpeek(p) != q) {
    int c = hpeek(p);
    if (c < 0) return hfail(p, "unterminated string");
    if (c == '\\' || c < 0x20) return hfail(p, "unexpected character in string");
    if (n + 1 >= cap) return hfail(p, "string too long");
    buf[n++] = (char)c;
    p->pos++;
  }
  p->pos++;
  buf[n] = '\0';
  return REID_OK;
}

static int hword(hparser *p, const char *w) {
  size_t n = strlen(w);
  if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n) != 0) return 0;
  p->pos += n;
  return 1;
}

/* "()", "(5,)", "(2, 3)", "(2, 3,)" */
static reid_status htuple(hparser *p, int *ndim, int64_t *shape) {
  if (hpeek(p) != '(') return hfail(p, "shape is not a tuple");
  p->pos++;
  int n = 0, trailing_comma = 0;
  for (;;) {
    hskip_ws(p);
    if (hpeek(p) == ')') break;
    if (n == NPY_MAX_DIMS) return hfail(p, "more than 8 dimensions");
    if (hpeek(p) < '0' || hpeek(p) > '9')
      return hfail(p, "shape entry is not a non-negative integer");
    int64_t v = 0;
    while (hpeek(p) >= '0' && hpeek(p) <= '9') {
      if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, hpeek(p) - '0', &v))
        return hfail(p, "shape entry overflows");
      p->pos++;
    }
    shape[n++] = v;
    hskip_ws(p);
    trailing_comma = 0;
    if (hpeek(p) == ',') {
      p->pos++;
      trailing_comma = 1;
    } else if (hpeek(p) != ')') {
      return hfail(p, "expected ',' or ')' in shape");
    }
  }
  if (n == 1 && !trailing_comma) return hfail(p, "shape '(n)' is not a tuple (need '(n,)')");
  p->pos++;
  *ndim = n;
  return REID_OK;
}

static reid_status parse_descr(const char *path, const char *d, npy_dtype *dt, size_t *item) {
  if (strcmp(d, "<f4") == 0)
    *dt = DT_F4, *item = 4;
  else if (strcmp(d, "<f8") == 0)
    *dt = DT_F8, *item = 8;
  else if (strcmp(d, "<f2") == 0)
    *dt = DT_F2, *item = 2;
  else if (d[0] == '>')
    return reid_fail(REID_EUNSUPPORTED, "%s: big-endian dtype '%s' is not supported", path, d);
  else if (strchr(d, 'O'))
    return reid_fail(REID_EUNSUPPORTED, "%s: object dtype '%s' is not supported", path, d);
  else
    return reid_fail(REID_EUNSUPPORTED, "%s: dtype '%s' is not supported (only <f4, <f8, <f2)",
                     path, d);
  return REID_OK;
}

/* Parses the dict; fills dtype, item size, ndim, shape. */
static reid_status parse_header(hparser *p, npy_dtype *dt, size_t *item, int *ndim,
                                int64_t *shape) {
  int have_descr = 0, have_order = 0, have_shape = 0;
  hskip_ws(p);
  if (hpeek(p) != '{') return hfail(p, "header is not a dict");
  p->pos++;
  for (;;) {
    hskip_ws(p);
    if (hpeek(p) == '}') break;
    char key[32], val[64];
    REID_TRY(hstring(p, key, sizeof key));
    hskip_ws(p);
    if (hpeek(p) != ':') return hfail(p, "expected ':' after key");
    p->pos++;
    hskip_ws(p);
    if (strcmp(key, "descr") == 0 && !have_descr++) {
      if (hpeek(p) == '[')
        return reid_fail(REID_EUNSUPPORTED, "%s: structured dtype is not supported", p->path);
      REID_TRY(hstring(p, val, sizeof val));
      REID_TRY(parse_descr(p->path, val, dt, item));
    } else if (strcmp(key, "fortran_order") == 0 && !have_order++) {
      if (hword(p, "True"))
        return reid_fail(REID_EUNSUPPORTED, "%s: fortran_order True is not supported", p->path);
      if (!hword(p, "False")) return hfail(p, "fortran_order is not True or False");
    } else if (strcmp(key, "shape") == 0 && !have_shape++) {
      REID_TRY(htuple(p, ndim, shape));
    } else {
      return reid_fail(REID_EFORMAT, "%s: bad npy header: unexpected or repeated key '%s'", p->path,
                       key);
    }
    hskip_ws(p);
    if (hpeek(p) == ',')
      p->pos++;
    else if (hpeek(p) != '}')
      return hfail(p, "expected ',' or '}'");
  }
  p->pos++;
  hskip_ws(p);
  if (p->pos != p->len) return hfail(p, "unexpected text after the dict");
  if (!have_descr || !have_order || !have_shape)
    return reid_fail(REID_EFORMAT, "%s: bad npy header: missing %s", p->path,
                     !have_descr   ? "'descr'"
                     : !have_order ? "'fortran_order'"
                                   : "'shape'");
  return REID_OK;
}

/* ---- reading ---------------------------------------------------------- */

static uint64_t le_bytes(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static reid_status decode(const char *path, const unsigned char *b, size_t size, int *ndim_out,
                          int64_t *shape_out, float **data_out) {
  if (size < 10 || memcmp(b, npy_magic, 6) != 0)
    return reid_fail(REID_EFORMAT, "%s: not an npy file (bad magic)", path);
  int major = b[6];
  size_t hlen, off;
  if (major == 1) {
    hlen = (size_t)le_bytes(b + 8, 2);
    off = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) return reid_fail(REID_EFORMAT, "%s: truncated npy preamble", path);
    hlen = (size_t)le_bytes(b + 8, 4);
    off = 12;
  } else {
    return reid_fail(REID_EFORMAT, "%s: unknown npy version %d.%d", path, major, b[7]);
  }
  if (hlen > size - off)
    return reid_fail(REID_EFORMAT, "%s: npy header (%zu bytes) runs past the end of the file", path,
                     hlen);

  hparser p = {path, b + off, hlen, 0};
  npy_dtype dt = DT_F4;
  size_t item = 4;
  int ndim = 0;
  int64_t shape[NPY_MAX_DIMS];
  REID_TRY(parse_header(&p, &dt, &item, &ndim, shape));

  int64_t numel = 1;
  for (int i = 0; i < ndim; i++)
    if (__builtin_mul_overflow(numel, shape[i], &numel))
      return reid_fail(REID_EFORMAT, "%s: shape overflows", path);
  uint64_t nbytes;
  if (__builtin_mul_overflow((uint64_t)numel, (uint64_t)item, &nbytes))
    return reid_fail(REID_EFORMAT, "%s: shape overflows", path);
  size_t have = size - off - hlen;
  if ((uint64_t)have != nbytes)
    return reid_fail(
        REID_EFORMAT,
        "%s: expected %" PRIu64 " data bytes for %" PRId64 " elements, file has %zu (%s)", path,
        nbytes, numel, have, (uint64_t)have < nbytes ? "truncated" : "trailing data");

  float *out = malloc(numel ? (size_t)numel * sizeof(float) : 1);
  if (!out) return reid_fail(REID_ENOMEM, "%s: out of memory for %" PRId64 " floats", path, numel);
  const unsigned char *d = b + off + hlen;
  for (size_t i = 0; i < (size_t)numel; i++) {
    if (dt == DT_F4) {
      out[i] = half_f32_from_bits((uint32_t)le_bytes(d + 4 * i, 4));
    } else if (dt == DT_F2) {
      out[i] = half_to_float((uint16_t)le_bytes(d + 2 * i, 2));
    } else {
      uint64_t u = le_bytes(d + 8 * i, 8);
      double x;
      memcpy(&x, &u, sizeof x);
      out[i] = (float)x;
    }
  }
  *ndim_out = ndim;
  for (int i = 0; i < ndim; i++) shape_out[i] = shape[i];
  *data_out = out;
  return REID_OK;
}

reid_status npy_read_f32(const char *path, int *ndim, int64_t shape[NPY_MAX_DIMS], float **data) {
  unsigned char *bytes;
  size_t size;
  REID_TRY(reid_read_file(path, &bytes, &size));
  reid_status st = decode(path, bytes, size, ndim, shape, data);
  free(bytes);
  return st;
}
