/* safetensors reader (validate everything up front) and writer (atomic). */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "half.h"
#include "json.h"

/* ---- dtypes ----------------------------------------------------------- */

static const struct {
  const char *name;
  size_t size;
} dtype_info[ST_DTYPE_COUNT] = {
    [ST_F64] = {"F64", 8},   [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2},
    [ST_I64] = {"I64", 8},   [ST_I32] = {"I32", 4}, [ST_I16] = {"I16", 2}, [ST_I8] = {"I8", 1},
    [ST_U64] = {"U64", 8},   [ST_U32] = {"U32", 4}, [ST_U16] = {"U16", 2}, [ST_U8] = {"U8", 1},
    [ST_BOOL] = {"BOOL", 1},
};

const char *st_dtype_name(st_dtype d) {
  return (unsigned)d < ST_DTYPE_COUNT ? dtype_info[d].name : "?";
}

size_t st_dtype_size(st_dtype d) {
  return (unsigned)d < ST_DTYPE_COUNT ? dtype_info[d].size : 0;
}

int st_dtype_from_name(const char *name, st_dtype *out) {
  for (int i = 0; i < ST_DTYPE_COUNT; i++) {
    if (strcmp(name, dtype_info[i].name) == 0) {
      *out = (st_dtype)i;
      return 0;
    }
  }
  return -1;
}

/* ---- file helpers ----------------------------------------------------- */

/* ---- the opened file -------------------------------------------------- */

struct st_file {
  char *path;
  unsigned char *bytes; /* the whole file */
  size_t size;
  const unsigned char *data; /* data section: bytes + 8 + header size */
  uint64_t data_size;
  st_tensor *tensors; /* header order; names owned */
  size_t count;
  size_t *by_name; /* tensor indices sorted by name, for st_find */
  char **meta_keys, **meta_values;
  size_t meta_count;
};

void st_close(st_file *f) {
  if (!f) return;
  for (size_t i = 0; i < f->count; i++) free((char *)f->tensors[i].name);
  for (size_t i = 0; i < f->meta_count; i++) {
    free(f->meta_keys[i]);
    free(f->meta_values[i]);
  }
  free(f->meta_keys);
  free(f->meta_values);
  free(f->tensors);
  free(f->by_name);
  free(f->bytes);
  free(f->path);
  free(f);
}

/* "[64,3,7,7]" into buf */
static const char *shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
  size_t n = (size_t)snprintf(buf, cap, "[");
  for (int i = 0; i < ndim && n < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, i ? "," : "", shape[i]);
  if (n < cap) snprintf(buf + n, cap - n, "]");
  return buf;
}

static uint64_t read_u64le(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* Validates one tensor entry `name: {...}` into *t (name not yet set). */
static reid_status parse_tensor(const st_file *f, const char *name, const json_value *v,
                                st_tensor *t) {
  const char *path = f->path;
  char sb[256];
  if (v->type != JSON_OBJECT)
    return reid_fail(REID_EFORMAT, "%s: tensor '%.200s': entry is not an object (found %s)", path,
                     name, json_type_name(v->type));

  const json_value *dt = json_get(v, "dtype");
  if (!dt) return reid_fail(REID_EFORMAT, "%s: tensor '%.200s': missing \"dtype\"", path, name);
  if (dt->type != JSON_STRING || st_dtype_from_name(dt->str, &t->dtype) != 0)
    return reid_fail(REID_EFORMAT, "%s: tensor '%.200s': unknown dtype %s%.40s%s", path, name,
                     dt->type == JSON_STRING ? "'" : "(a ",
                     dt->type == JSON_STRING ? dt->str : json_type_name(dt->type),
                     dt->type == JSON_STRING ? "'" : ")");

  const json_value *sh = json_get(v, "shape");
  if (!sh) return reid_fail(REID_EFORMAT, "%s: tensor '%.200s': missing \"shape\"", path, name);
  if (sh->type != JSON_ARRAY)
    return reid_fail(REID_EFORMAT, "%s: tensor '%.200s': \"shape\" is not an array (found %s)",
                     path, name, json_type_name(sh->type));
  if (sh->count > ST_MAX_DIMS)
    return reid_fail(REID_EFORMAT, "%s: tensor '%.200s': %zu dimensions (at most %d supported)",
                     path, name, sh->count, ST_MAX_DIMS);
  t->ndim = (int)sh->count;
  t->numel = 1;
  for (int i = 0; i < t->ndim; i++) {
    int64_t d;
    if (!json_get_int64(&sh->items[i], &d) || d < 0)
      return reid_fail(REID_EFORMAT,
                       "%s: tensor '%.200s': shape entry %d is not a non-negative integer", path,
                       name, i);
    t->shape[i] = d;
    if (__builtin_mul_overflow(t->numel, d, &t->numel))
      return reid_fail(REID_EFORMAT, "%s: tensor '%.200s': shape %s overflows", path, name,
                       shape_str(sb, sizeof sb, i + 1, t->shape));
  }
  uint64_t nbytes;
  if (__builtin_mul_overflow((uint64_t)t->numel, (uint64_t)st_dtype_size(t->dtype), &nbytes))
    return reid_fail(REID_EFORMAT, "%s: tensor '%.200s': shape %s x %s overflows", path, name,
                     shape_str(sb, sizeof sb, t->ndim, t->shape), st_dtype_name(t->dtype));

  const json_value *off = json_get(v, "data_offsets");
  if (!off)
    return reid_fail(REID_EFORMAT, "%s: tensor '%.200s': missing \"data_offsets\"", path, name);
  int64_t b, e;
  if (off->type != JSON_ARRAY || off->count != 2 || !json_get_int64(&off->items[0], &b) ||
      !json_get_int64(&off->items[1], &e) || b < 0 || e < 0)
    return reid_fail(REID_EFORMAT,
                     "%s: tensor '%.200s': \"data_offsets\" is not [begin, end] with "
                     "non-negative integers",
                     path, name);
  t->begin = (uint64_t)b;
  t->end = (uint64_t)e;
  if (t->begin > t->end)
    return reid_fail(REID_EFORMAT,
                     "%s: tensor '%.200s': data_offsets [%" PRIu64 ", %" PRIu64
                     "] have begin > end",
                     path, name, t->begin, t->end);
  if (t->end > f->data_size)
    return reid_fail(REID_EFORMAT,
                     "%s: tensor '%.200s': data_offsets [%" PRIu64 ", %" PRIu64
                     "] run past the data section (%" PRIu64 " bytes; file truncated?)",
                     path, name, t->begin, t->end, f->data_size);
  if (t->end - t->begin != nbytes)
    return reid_fail(REID_EFORMAT,
                     "%s: tensor '%.200s': data_offsets [%" PRIu64 ", %" PRIu64
                     "] do not match shape %s x %s (%" PRIu64 " bytes)",
                     path, name, t->begin, t->end, shape_str(sb, sizeof sb, t->ndim, t->shape),
                     st_dtype_name(t->dtype), nbytes);
  return REID_OK;
}

static reid_status parse_metadata(st_file *f, const json_value *m) {
  if (m->type != JSON_OBJECT)
    return reid_fail(REID_EFORMAT, "%s: \"__metadata__\" is not an object (found %s)", f->path,
                     json_type_name(m->type));
  f->meta_keys = calloc(m->count ? m->count : 1, sizeof *f->meta_keys);
  f->meta_values = calloc(m->count ? m->count : 1, sizeof *f->meta_values);
  if (!f->meta_keys || !f->meta_values) return reid_fail(REID_ENOMEM, "%s: out of memory", f->path);
  for (size_t i = 0; i < m->count; i++) {
    const char *key = m->keys[i];
    const json_value *v = &m->items[i];
    if (strlen(key) != m->key_lens[i])
      return reid_fail(REID_EFORMAT, "%s: metadata key %zu contains a NUL character", f->path, i);
    if (v->type != JSON_STRING)
      return reid_fail(REID_EFORMAT, "%s: metadata '%.200s' is not a string (found %s)", f->path,
                       key, json_type_name(v->type));
    if (strlen(v->str) != v->str_len)
      return reid_fail(REID_EFORMAT, "%s: metadata '%.200s' contains a NUL character", f->path,
                       key);
    for (size_t j = 0; j < i; j++)
      if (strcmp(f->meta_keys[j], key) == 0)
        return reid_fail(REID_EFORMAT, "%s: duplicate metadata key '%.200s'", f->path, key);
    f->meta_keys[i] = strdup(key);
    f->meta_values[i] = strdup(v->str);
    f->meta_count = i + 1;
    if (!f->meta_keys[i] || !f->meta_values[i])
      return reid_fail(REID_ENOMEM, "%s: out of memory", f->path);
  }
  return REID_OK;
}

/* qsort comparators need the tensor array: sort pairs instead of indices */
typedef struct sort_item {
  const st_tensor *t;
  size_t index;
} sort_item;

static int cmp_name(const void *a, const void *b) {
  return strcmp(((const sort_item *)a)->t->name, ((const sort_item *)b)->t->name);
}

static int cmp_begin(const void *a, const void *b) {
  const st_tensor *x = ((const sort_item *)a)->t, *y = ((const sort_item *)b)->t;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

/* Duplicate names and overlapping byte ranges; builds the st_find index. */
static reid_status check_tensor_set(st_file *f) {
  sort_item *s = malloc((f->count ? f->count : 1) * sizeof *s);
  f->by_name = malloc((f->count ? f->count : 1) * sizeof *f->by_name);
  if (!s || !f->by_name) {
    free(s);
    return reid_fail(REID_ENOMEM, "%s: out of memory", f->path);
  }
  for (size_t i = 0; i < f->count; i++) s[i] = (sort_item){&f->tensors[i], i};
  qsort(s, f->count, sizeof *s, cmp_name);
  for (size_t i = 0; i < f->count; i++) {
    f->by_name[i] = s[i].index;
    if (i > 0 && strcmp(s[i - 1].t->name, s[i].t->name) == 0) {
      reid_status st =
          reid_fail(REID_EFORMAT, "%s: duplicate tensor name '%.200s'", f->path, s[i].t->name);
      free(s);
      return st;
    }
  }
  qsort(s, f->count, sizeof *s, cmp_begin);
  const st_tensor *prev = NULL; /* the non-empty range that ends last so far */
  for (size_t i = 0; i < f->count; i++) {
    const st_tensor *t = s[i].t;
    if (t->begin == t->end) continue; /* empty ranges overlap nothing */
    if (prev && t->begin < prev->end) {
      reid_status st =
          reid_fail(REID_EFORMAT,
                    "%s: tensors '%.200s' [%" PRIu64 ", %" PRIu64 "] and '%.200s' [%" PRIu64
                    ", %" PRIu64 "] overlap",
                    f->path, prev->name, prev->begin, prev->end, t->name, t->begin, t->end);
      free(s);
      return st;
    }
    if (!prev || t->end > prev->end) prev = t;
  }
  free(s);
  return REID_OK;
}

static reid_status parse_header(st_file *f, const json_value *root) {
  if (root->type != JSON_OBJECT)
    return reid_fail(REID_EFORMAT, "%s: header is not a JSON object (found %s)", f->path,
                     json_type_name(root->type));
  f->tensors = calloc(root->count ? root->count : 1, sizeof *f->tensors);
  if (!f->tensors) return reid_fail(REID_ENOMEM, "%s: out of memory", f->path);
  int seen_meta = 0;
  for (size_t i = 0; i < root->count; i++) {
    const char *name = root->keys[i];
    if (strlen(name) != root->key_lens[i])
      return reid_fail(REID_EFORMAT, "%s: tensor name %zu contains a NUL character", f->path, i);
    if (strcmp(name, "__metadata__") == 0) {
      if (seen_meta++) return reid_fail(REID_EFORMAT, "%s: duplicate \"__metadata__\"", f->path);
      REID_TRY(parse_metadata(f, &root->items[i]));
      continue;
    }
    st_tensor *t = &f->tensors[f->count];
    REID_TRY(parse_tensor(f, name, &root->items[i], t));
    t->name = strdup(name);
    if (!t->name) return reid_fail(REID_ENOMEM, "%s: out of memory", f->path);
    f->count++;
  }
  return check_tensor_set(f);
}

reid_status st_open(const char *path, st_file **out) {
  *out = NULL;
  st_file *f = calloc(1, sizeof *f);
  if (!f) return reid_fail(REID_ENOMEM, "out of memory");
  reid_status st = REID_OK;
  json_value *root = NULL;
  f->path = strdup(path ? path : "");
  if (!f->path) {
    st = reid_fail(REID_ENOMEM, "out of memory");
    goto done;
  }
  st = reid_read_file(path, &f->bytes, &f->size);
  if (st != REID_OK) goto done;
  if (f->size < 8) {
    st = reid_fail(REID_EFORMAT, "%s: file is %zu bytes, too short for the 8-byte header size",
                   path, f->size);
    goto done;
  }
  uint64_t hlen = read_u64le(f->bytes);
  if (hlen == 0) {
    st = reid_fail(REID_EFORMAT, "%s: header size is 0", path);
  } else if (hlen > ST_MAX_HEADER) {
    st = reid_fail(REID_EFORMAT, "%s: header size %" PRIu64 " is absurd (limit %u bytes)", path,
                   hlen, ST_MAX_HEADER);
  } else if (hlen > f->size - 8) {
    st = reid_fail(REID_EFORMAT,
                   "%s: header size %" PRIu64 " exceeds the %zu bytes after the size field "
                   "(file truncated?)",
                   path, hlen, f->size - 8);
  }
  if (st != REID_OK) goto done;
  f->data = f->bytes + 8 + hlen;
  f->data_size = f->size - 8 - hlen;
  st = json_parse((const char *)f->bytes + 8, (size_t)hlen, &root);
  if (st == REID_EFORMAT) st = reid_fail_context(st, "%s: header is not valid JSON", path);
  if (st != REID_OK) goto done;
  st = parse_header(f, root);
done:
  json_free(root);
  if (st != REID_OK) {
    st_close(f);
    return st;
  }
  *out = f;
  return REID_OK;
}

/* ---- lookups ---------------------------------------------------------- */

const char *st_path(const st_file *f) {
  return f->path;
}
size_t st_count(const st_file *f) {
  return f->count;
}

const st_tensor *st_tensor_at(const st_file *f, size_t i) {
  return i < f->count ? &f->tensors[i] : NULL;
}

const st_tensor *st_find(const st_file *f, const char *name) {
  size_t lo = 0, hi = f->count; /* binary search over by_name */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const st_tensor *t = &f->tensors[f->by_name[mid]];
    int c = strcmp(t->name, name);
    if (c == 0) return t;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

const void *st_data(const st_file *f, const st_tensor *t) {
  return f->data + t->begin;
}

size_t st_meta_count(const st_file *f) {
  return f->meta_count;
}

const char *st_meta(const st_file *f, const char *key) {
  for (size_t i = 0; i < f->meta_count; i++)
    if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
  return NULL;
}

int st_meta_at(const st_file *f, size_t i, const char **key, const char **value) {
  if (i >= f->meta_count) return -1;
  if (key) *key = f->meta_keys[i];
  if (value) *value = f->meta_values[i];
  return 0;
}

reid_status st_read_f32(const st_file *f, const st_tensor *t, float *dst, size_t dst_count) {
  if ((uint64_t)dst_count != (uint64_t)t->numel)
    return reid_fail(REID_EINVAL, "%s: tensor '%.200s' has %" PRId64 " elements, destination %zu",
                     f->path, t->name, t->numel, dst_count);
  const unsigned char *p = f->data + t->begin;
  size_t n = dst_count;
  switch (t->dtype) {
  case ST_F32:
    for (size_t i = 0; i < n; i++, p += 4)
      dst[i] = half_f32_from_bits((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                                  (uint32_t)p[3] << 24);
    return REID_OK;
  case ST_F16:
    for (size_t i = 0; i < n; i++, p += 2) dst[i] = half_to_float((uint16_t)(p[0] | p[1] << 8));
    return REID_OK;
  case ST_BF16:
    for (size_t i = 0; i < n; i++, p += 2) dst[i] = bf16_to_float((uint16_t)(p[0] | p[1] << 8));
    return REID_OK;
  default:
    return reid_fail(REID_EUNSUPPORTED,
                     "%s: tensor '%.200s' is %s; only F32, F16, BF16 convert "
                     "to float",
                     f->path, t->name, st_dtype_name(t->dtype));
  }
}

/* ---- writer ----------------------------------------------------------- */

typedef struct st_wtensor {
  char *name;
  st_dtype dtype;
  int ndim;
  int64_t shape[ST_MAX_DIMS];
  unsigned char *bytes; /* little-endian payload */
  size_t nbytes;
} st_wtensor;

struct st_writer {
  st_wtensor *t;
  size_t n, cap;
  char **meta_keys, **meta_values;
  size_t meta_n, meta_cap;
};

st_writer *st_writer_new(void) {
  st_writer *w = calloc(1, sizeof *w);
  if (!w) reid_fail(REID_ENOMEM, "out of memory");
  return w;
}

void st_writer_free(st_writer *w) {
  if (!w) return;
  for (size_t i = 0; i < w->n; i++) {
    free(w->t[i].name);
    free(w->t[i].bytes);
  }
  for (size_t i = 0; i < w->meta_n; i++) {
    free(w->meta_keys[i]);
    free(w->meta_values[i]);
  }
  free(w->t);
  free(w->meta_keys);
  free(w->meta_values);
  free(w);
}

reid_status st_writer_add_meta(st_writer *w, const char *key, const char *value) {
  if (!w || !key || !value) return reid_fail(REID_EINVAL, "st_writer_add_meta: NULL argument");
  for (size_t i = 0; i < w->meta_n; i++)
    if (strcmp(w->meta_keys[i], key) == 0)
      return reid_fail(REID_EINVAL, "st_writer_add_meta: duplicate key '%.200s'", key);
  if (w->meta_n == w->meta_cap) {
    size_t nc = w->meta_cap ? 2 * w->meta_cap : 8;
    char **k = realloc(w->meta_keys, nc * sizeof *k);
    if (k) w->meta_keys = k;
    char **v = realloc(w->meta_values, nc * sizeof *v);
    if (v) w->meta_values = v;
    if (!k || !v) return reid_fail(REID_ENOMEM, "st_writer_add_meta: out of memory");
    w->meta_cap = nc;
  }
  char *k = strdup(key), *v = strdup(value);
  if (!k || !v) {
    free(k);
    free(v);
    return reid_fail(REID_ENOMEM, "st_writer_add_meta: out of memory");
  }
  w->meta_keys[w->meta_n] = k;
  w->meta_values[w->meta_n] = v;
  w->meta_n++;
  return REID_OK;
}

/* Validates name/shape and appends a tensor with an uninitialized payload. */
static reid_status writer_append(st_writer *w, const char *name, st_dtype dtype, int ndim,
                                 const int64_t *shape, st_wtensor **out) {
  if (!w || !name) return reid_fail(REID_EINVAL, "st_writer: NULL argument");
  if (!*name || strcmp(name, "__metadata__") == 0)
    return reid_fail(REID_EINVAL, "st_writer: invalid tensor name '%s'", name);
  if ((unsigned)dtype >= ST_DTYPE_COUNT)
    return reid_fail(REID_EINVAL, "st_writer: tensor '%.200s': bad dtype %d", name, (int)dtype);
  if (ndim < 0 || ndim > ST_MAX_DIMS || (ndim > 0 && !shape))
    return reid_fail(REID_EINVAL, "st_writer: tensor '%.200s': ndim %d not in 0..%d", name, ndim,
                     ST_MAX_DIMS);
  int64_t numel = 1;
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0 || __builtin_mul_overflow(numel, shape[i], &numel))
      return reid_fail(REID_EINVAL, "st_writer: tensor '%.200s': bad shape entry %" PRId64, name,
                       shape[i]);
  size_t nbytes;
  if (__builtin_mul_overflow((size_t)numel, st_dtype_size(dtype), &nbytes))
    return reid_fail(REID_EINVAL, "st_writer: tensor '%.200s': too large", name);
  for (size_t i = 0; i < w->n; i++)
    if (strcmp(w->t[i].name, name) == 0)
      return reid_fail(REID_EINVAL, "st_writer: duplicate tensor name '%.200s'", name);
  if (w->n == w->cap) {
    size_t nc = w->cap ? 2 * w->cap : 16;
    st_wtensor *t = realloc(w->t, nc * sizeof *t);
    if (!t) return reid_fail(REID_ENOMEM, "st_writer: out of memory");
    w->t = t;
    w->cap = nc;
  }
  st_wtensor *t = &w->t[w->n];
  memset(t, 0, sizeof *t);
  t->name = strdup(name);
  t->bytes = malloc(nbytes ? nbytes : 1);
  if (!t->name || !t->bytes) {
    free(t->name);
    free(t->bytes);
    return reid_fail(REID_ENOMEM, "st_writer: tensor '%.200s': out of memory (%zu bytes)", name,
                     nbytes);
  }
  t->dtype = dtype;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  t->nbytes = nbytes;
  w->n++;
  *out = t;
  return REID_OK;
}

reid_status st_writer_add_f32(st_writer *w, const char *name, st_dtype dtype, int ndim,
                              const int64_t *shape, const float *data) {
  if (dtype != ST_F32 && dtype != ST_F16 && dtype != ST_BF16)
    return reid_fail(REID_EINVAL,
                     "st_writer_add_f32: tensor '%.200s': dtype %s is not F32/F16/BF16",
                     name ? name : "", st_dtype_name(dtype));
  st_wtensor *t = NULL;
  REID_TRY(writer_append(w, name, dtype, ndim, shape, &t));
  size_t n = t->nbytes / st_dtype_size(dtype);
  if (n && !data) {
    free(t->name);
    free(t->bytes);
    w->n--;
    return reid_fail(REID_EINVAL, "st_writer_add_f32: tensor '%.200s': NULL data", name);
  }
  unsigned char *p = t->bytes;
  for (size_t i = 0; i < n; i++) {
    uint32_t u = dtype == ST_F32   ? half_f32_bits(data[i])
                 : dtype == ST_F16 ? float_to_half(data[i])
                                   : float_to_bf16(data[i]);
    size_t sz = st_dtype_size(dtype);
    for (size_t k = 0; k < sz; k++) *p++ = (unsigned char)(u >> (8 * k));
  }
  return REID_OK;
}

reid_status st_writer_add_raw(st_writer *w, const char *name, st_dtype dtype, int ndim,
                              const int64_t *shape, const void *data) {
  st_wtensor *t = NULL;
  REID_TRY(writer_append(w, name, dtype, ndim, shape, &t));
  if (t->nbytes && !data) {
    free(t->name);
    free(t->bytes);
    w->n--;
    return reid_fail(REID_EINVAL, "st_writer_add_raw: tensor '%.200s': NULL data", name);
  }
  if (t->nbytes) memcpy(t->bytes, data, t->nbytes);
  return REID_OK;
}

/* A growable string for the header. */
typedef struct strbuf {
  char *s;
  size_t n, cap;
  int oom;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->n + n + 1) nc *= 2;
    char *p = realloc(b->s, nc);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->s = p;
    b->cap = nc;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = '\0';
}

static void sb_str(strbuf *b, const char *s) {
  sb_put(b, s, strlen(s));
}

static void sb_json_string(strbuf *b, const char *s) {
  size_t len = strlen(s), need = json_escape(NULL, 0, s, len);
  char *tmp = malloc(need + 1);
  if (!tmp) {
    b->oom = 1;
    return;
  }
  json_escape(tmp, need + 1, s, len);
  sb_put(b, tmp, need);
  free(tmp);
}

static void sb_i64(strbuf *b, int64_t v) {
  char num[32];
  snprintf(num, sizeof num, "%" PRId64, v);
  sb_str(b, num);
}

reid_status st_writer_save(const st_writer *w, const char *path) {
  if (!w || !path) return reid_fail(REID_EINVAL, "st_writer_save: NULL argument");
  strbuf h = {0};
  sb_str(&h, "{");
  if (w->meta_n) {
    sb_str(&h, "\"__metadata__\":{");
    for (size_t i = 0; i < w->meta_n; i++) {
      if (i) sb_str(&h, ",");
      sb_json_string(&h, w->meta_keys[i]);
      sb_str(&h, ":");
      sb_json_string(&h, w->meta_values[i]);
    }
    sb_str(&h, "}");
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < w->n; i++) {
    const st_wtensor *t = &w->t[i];
    if (i || w->meta_n) sb_str(&h, ",");
    sb_json_string(&h, t->name);
    sb_str(&h, ":{\"dtype\":\"");
    sb_str(&h, st_dtype_name(t->dtype));
    sb_str(&h, "\",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) {
      if (d) sb_str(&h, ",");
      sb_i64(&h, t->shape[d]);
    }
    sb_str(&h, "],\"data_offsets\":[");
    sb_i64(&h, (int64_t)offset);
    sb_str(&h, ",");
    offset += t->nbytes;
    sb_i64(&h, (int64_t)offset);
    sb_str(&h, "]}");
  }
  sb_str(&h, "}");
  while (h.n % 8) sb_str(&h, " "); /* pad like the reference so data is 8-aligned */
  if (h.oom) {
    free(h.s);
    return reid_fail(REID_ENOMEM, "%s: out of memory building the header", path);
  }

  unsigned char len8[8];
  for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)h.n >> (8 * k));
  const void **parts = malloc((w->n + 2) * sizeof *parts);
  size_t *sizes = malloc((w->n + 2) * sizeof *sizes);
  reid_status st;
  if (!parts || !sizes || w->n + 2 > (size_t)INT32_MAX) {
    st = reid_fail(REID_ENOMEM, "%s: out of memory", path);
  } else {
    parts[0] = len8;
    sizes[0] = 8;
    parts[1] = h.s;
    sizes[1] = h.n;
    for (size_t i = 0; i < w->n; i++) {
      parts[i + 2] = w->t[i].bytes;
      sizes[i + 2] = w->t[i].nbytes;
    }
    st = reid_write_file_atomic(path, parts, sizes, (int)(w->n + 2), 1);
  }
  free(parts);
  free(sizes);
  free(h.s);
  return st;
}
