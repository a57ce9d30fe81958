/* The resumable state of a run, one safetensors file (M.state.safetensors):
 *   tensors   NAME.<torchvision name>   every network of the run (params and buffers, F32)
 *             adam.NAME.m, adam.NAME.v  Adam moments of the trained networks
 *   metadata  format = "reid-train-state", command = teacher | student,
 *             config = the settings a resumed run must share ("key=value;..."),
 *             epoch (completed), iter (completed steps), adam.NAME.step,
 *             rng = the trainer's xoshiro256** state (4 x 16 hex digits),
 *             loader = the loader's sampler state (hex bytes),
 *             extra = the caller's own text (train_run.state_extra), when set,
 *             plus the networks' own metadata under their prefix.
 * Everything needed to continue bit for bit on the CPU. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "trainer_impl.h"

static char *hex_encode(const unsigned char *bytes, size_t n) {
  char *s = malloc(2 * n + 1);
  if (!s) return NULL;
  for (size_t i = 0; i < n; i++) sprintf(s + 2 * i, "%02x", bytes[i]);
  s[2 * n] = 0;
  return s;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes exactly n bytes; 0 on success. */
static int hex_decode(const char *s, unsigned char *bytes, size_t n) {
  if (strlen(s) != 2 * n) return -1;
  for (size_t i = 0; i < n; i++) {
    int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return -1;
    bytes[i] = (unsigned char)(hi << 4 | lo);
  }
  return 0;
}

static reid_status put_meta(st_writer *w, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static reid_status put_meta(st_writer *w, const char *key, const char *fmt, ...) {
  char value[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(value, sizeof value, fmt, ap);
  va_end(ap);
  return st_writer_add_meta(w, key, value);
}

reid_status train_state_save(train_run *r, const char *path, const char *config) {
  st_writer *w = st_writer_new();
  if (!w) return REID_ENOMEM;
  size_t loader_size = reid_loader_state_size(r->loader);
  unsigned char *loader_state = malloc(loader_size ? loader_size : 1);
  char *loader_hex = NULL;
  reid_status st = loader_state ? REID_OK : reid_fail(REID_ENOMEM, "out of memory");
  if (st == REID_OK) st = reid_loader_state_save(r->loader, loader_state);
  if (st == REID_OK && !(loader_hex = hex_encode(loader_state, loader_size)))
    st = reid_fail(REID_ENOMEM, "out of memory");
  if (st == REID_OK) st = st_writer_add_meta(w, "format", "reid-train-state");
  if (st == REID_OK) st = st_writer_add_meta(w, "command", r->task->command);
  if (st == REID_OK) st = st_writer_add_meta(w, "config", config);
  if (st == REID_OK) st = put_meta(w, "epoch", "%d", r->epoch);
  if (st == REID_OK) st = put_meta(w, "iter", "%ld", r->iter);
  if (st == REID_OK)
    st = put_meta(w, "rng", "%016llx%016llx%016llx%016llx", (unsigned long long)r->rng.s[0],
                  (unsigned long long)r->rng.s[1], (unsigned long long)r->rng.s[2],
                  (unsigned long long)r->rng.s[3]);
  if (st == REID_OK) st = st_writer_add_meta(w, "loader", loader_hex);
  if (st == REID_OK && r->state_extra) st = st_writer_add_meta(w, "extra", r->state_extra);
  for (int i = 0; i < r->n_members && st == REID_OK; i++) {
    train_member *m = &r->members[i];
    char prefix[40];
    snprintf(prefix, sizeof prefix, "%s.", m->name);
    st = reid_checkpoint_add(w, m->net, prefix, ST_F32);
    if (st == REID_OK && m->trained) st = reid_optimizer_add(w, &m->opt, m->name);
  }
  if (st == REID_OK) st = st_writer_save(w, path);
  st_writer_free(w);
  free(loader_state);
  free(loader_hex);
  return st;
}

/* The first key of `want` whose value in `have` differs ("key=value;..." lists). */
static reid_status config_mismatch(const char *path, const char *have, const char *want) {
  const char *p = want;
  while (*p) {
    const char *end = strchr(p, ';');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    size_t key_len = eq ? (size_t)(eq - p) : len;
    const char *q = have, *found = NULL;
    size_t found_len = 0;
    while (q && *q) {
      const char *qend = strchr(q, ';');
      size_t qlen = qend ? (size_t)(qend - q) : strlen(q);
      if (qlen > key_len && !strncmp(q, p, key_len) && q[key_len] == '=') {
        found = q;
        found_len = qlen;
        break;
      }
      q = qend ? qend + 1 : NULL;
    }
    if (!found || found_len != len || strncmp(found, p, len))
      return reid_fail(REID_EINVAL, "%s: cannot resume: the saved run has %.*s, this command %.*s",
                       path, found ? (int)found_len : 13, found ? found : "no such entry", (int)len,
                       p);
    if (!end) break;
    p = end + 1;
  }
  return reid_fail(REID_EINVAL, "%s: cannot resume: the saved settings differ", path);
}

static reid_status parse_long(const st_file *f, const char *key, long lo, long hi, long *out) {
  const char *v = st_meta(f, key);
  char *end = NULL;
  errno = 0;
  long x = v ? strtol(v, &end, 10) : 0;
  if (!v || errno || end == v || *end || x < lo || x > hi)
    return reid_fail(REID_EFORMAT, "%s: metadata '%s' is missing or not an integer in [%ld, %ld]",
                     st_path(f), key, lo, hi);
  *out = x;
  return REID_OK;
}

static reid_status load_from(train_run *r, const st_file *f, const char *config) {
  const char *path = st_path(f);
  const char *format = st_meta(f, "format"), *command = st_meta(f, "command");
  if (!format || strcmp(format, "reid-train-state"))
    return reid_fail(REID_EFORMAT, "%s: not a reid-train state file (format '%s')", path,
                     format ? format : "missing");
  if (!command || strcmp(command, r->task->command))
    return reid_fail(REID_EINVAL, "%s: the state of a '%s' run cannot resume '%s'", path,
                     command ? command : "?", r->task->command);
  const char *saved = st_meta(f, "config");
  if (!saved) return reid_fail(REID_EFORMAT, "%s: metadata 'config' is missing", path);
  if (strcmp(saved, config)) return config_mismatch(path, saved, config);
  long epoch, iter;
  REID_TRY(parse_long(f, "epoch", 0, 1000000, &epoch));
  REID_TRY(parse_long(f, "iter", 0, 1L << 40, &iter));
  if (iter != epoch * (long)r->steps_per_epoch)
    return reid_fail(REID_EFORMAT, "%s: %ld steps do not make %ld epochs of %d steps", path, iter,
                     epoch, r->steps_per_epoch);
  const char *rng = st_meta(f, "rng");
  unsigned char rng_bytes[32];
  if (!rng || hex_decode(rng, rng_bytes, sizeof rng_bytes))
    return reid_fail(REID_EFORMAT, "%s: metadata 'rng' is not 64 hex digits", path);
  reid_rng state;
  for (int i = 0; i < 4; i++) {
    uint64_t word = 0;
    for (int b = 0; b < 8; b++) word = word << 8 | rng_bytes[8 * i + b];
    state.s[i] = word;
  }
  size_t loader_size = reid_loader_state_size(r->loader);
  const char *loader_hex = st_meta(f, "loader");
  unsigned char *loader_state = malloc(loader_size ? loader_size : 1);
  if (!loader_state) return reid_fail(REID_ENOMEM, "out of memory");
  reid_status st = REID_OK;
  if (!loader_hex || hex_decode(loader_hex, loader_state, loader_size))
    st = reid_fail(REID_EFORMAT, "%s: metadata 'loader' is not %zu hex-encoded bytes", path,
                   loader_size);
  if (st == REID_OK) st = reid_loader_state_load(r->loader, loader_state);
  free(loader_state);
  for (int i = 0; i < r->n_members && st == REID_OK; i++) {
    train_member *m = &r->members[i];
    char prefix[40];
    snprintf(prefix, sizeof prefix, "%s.", m->name);
    st = reid_checkpoint_load_weights(m->net, f, prefix);
    if (st == REID_OK && m->trained) st = reid_optimizer_load(&m->opt, f, m->name);
  }
  if (st != REID_OK) return st;
  const char *extra = st_meta(f, "extra");
  if (extra) {
    char *copy = strdup(extra);
    if (!copy) return reid_fail(REID_ENOMEM, "out of memory");
    free(r->state_extra);
    r->state_extra = copy;
  }
  r->rng = state;
  r->epoch = (int)epoch;
  r->iter = iter;
  return REID_OK;
}

reid_status train_state_load(train_run *r, const char *path, const char *config) {
  st_file *f;
  REID_TRY(st_open(path, &f));
  reid_status st = load_from(r, f, config);
  st_close(f);
  return st;
}
