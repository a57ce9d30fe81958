/* st_open on broken files: every malformed case must fail with REID_EFORMAT
 * (REID_EIO for unreadable paths) and a message naming the file; truncations
 * at every byte and 2000 deterministic mutations must never crash. */
#include "io_fixture.h"
#include "safetensors.h"
#include "status.h"
#include "test_util.h"

static fixture fx;

/* Writes u64 LE header size + header + data_len bytes of data (0xAB). */
static void write_st(const char *path, uint64_t hlen_field, const char *header, size_t data_len) {
  size_t hl = strlen(header);
  size_t n = 8 + hl + data_len;
  unsigned char *b = malloc(n);
  for (int k = 0; k < 8; k++) b[k] = (unsigned char)(hlen_field >> (8 * k));
  memcpy(b + 8, header, hl);
  memset(b + 8 + hl, 0xAB, data_len);
  fx_write(path, b, n);
  free(b);
}

/* Expects st_open to fail with `want`, a message naming the file and containing `needle`. */
static void expect_fail(const char *path, reid_status want, const char *needle, const char *what) {
  st_file *f = (st_file *)1;
  reid_status st = st_open(path, &f);
  CHECK(st == want, "%s: got %s (%s)", what, reid_status_name(st), reid_last_error());
  CHECK(f == NULL, "%s: *out not NULL on failure", what);
  CHECK(strstr(reid_last_error(), path) != NULL, "%s: message lacks the path: %s", what,
        reid_last_error());
  if (needle)
    CHECK(strstr(reid_last_error(), needle) != NULL, "%s: message lacks '%s': %s", what, needle,
          reid_last_error());
  if (st == REID_OK) st_close(f);
  if (getenv("IO_TEST_VERBOSE")) fprintf(stderr, "%-28s -> %s\n", what, reid_last_error());
}

static void header_case(const char *header, size_t data_len, const char *needle, const char *what) {
  const char *path = fx_path(&fx, "bad.safetensors");
  write_st(path, strlen(header), header, data_len);
  expect_fail(path, REID_EFORMAT, needle, what);
}

#define T(name, dtype, shape, b, e)                                                                \
  "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static void test_sizes(void) {
  const char *path = fx_path(&fx, "short.safetensors");
  for (size_t n = 0; n < 8; n += 3) {
    fx_write(path, "\x10\0\0\0\0\0\0", n);
    expect_fail(path, REID_EFORMAT, "too short", "file < 8 bytes");
  }
  path = fx_path(&fx, "hlen.safetensors");
  write_st(path, 100, "{}", 10);
  expect_fail(path, REID_EFORMAT, "exceeds", "header size > file");
  write_st(path, 0, "{}", 0);
  expect_fail(path, REID_EFORMAT, "header size is 0", "header size 0");
  write_st(path, (uint64_t)1 << 40, "{}", 0);
  expect_fail(path, REID_EFORMAT, "absurd", "absurd header size");
  write_st(path, UINT64_MAX, "{}", 0);
  expect_fail(path, REID_EFORMAT, "absurd", "header size 2^64-1");

  expect_fail(fx_path(&fx, "missing.safetensors"), REID_EIO, "cannot open", "missing file");
  expect_fail(fx.dir, REID_EIO, "not a regular file", "a directory");
}

static void test_headers(void) {
  header_case("{\"a\":", 0, "not valid JSON", "truncated JSON");
  header_case("{\"a\" 1}", 0, "offset", "invalid JSON");
  header_case("{} x", 0, "not valid JSON", "garbage after JSON");
  header_case("[1,2]", 0, "not a JSON object (found array)", "array header");
  header_case("\"str\"", 0, "not a JSON object", "string header");
  header_case("42      ", 0, "not a JSON object", "number header");
  header_case("{\"w\":[1]}", 0, "not an object", "tensor entry not an object");
  header_case("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "missing \"dtype\"",
              "missing dtype");
  header_case("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "missing \"shape\"",
              "missing shape");
  header_case("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "missing \"data_offsets\"",
              "missing data_offsets");
  header_case("{" T("w", "F12", "[2]", 0, 8) "}", 8, "unknown dtype 'F12'", "unknown dtype");
  header_case("{\"w\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype",
              "dtype not a string");
  header_case("{" T("w", "f32", "[2]", 0, 8) "}", 8, "unknown dtype", "lower-case dtype");
  header_case("{" T("w", "F32", "[-2]", 0, 8) "}", 8, "shape entry 0", "negative shape");
  header_case("{" T("w", "F32", "[2.0]", 0, 8) "}", 8, "shape entry 0", "fractional shape");
  header_case("{" T("w", "F32", "[\"2\"]", 0, 8) "}", 8, "shape entry", "string shape");
  header_case("{" T("w", "F32", "2", 0, 8) "}", 8, "not an array (found number)",
              "shape not an array");
  header_case("{" T("w", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4, "9 dimensions", "9 dims");
  header_case("{" T("w", "F32", "[4294967296,4294967296,4]", 0, 4) "}", 4, "overflows",
              "numel overflow");
  header_case("{" T("w", "F32", "[4611686018427387904]", 0, 4) "}", 4, "overflows",
              "byte size overflow");
  header_case("{" T("w", "F32", "[2]", 0, 1000) "}", 8, "past the data section",
              "offsets out of range");
  header_case("{" T("w", "F32", "[0]", 8, 4) "}", 8, "begin > end", "begin > end");
  header_case("{" T("w", "F32", "[2]", -8, 0) "}", 8, "data_offsets", "negative begin");
  header_case("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "data_offsets",
              "one offset");
  header_case("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8,
              "data_offsets", "three offsets");
  header_case("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{}}}", 8, "data_offsets",
              "offsets object");
  header_case("{" T("w", "F32", "[2]", 0, 18446744073709551616) "}", 8, "data_offsets",
              "offset beyond int64");
  header_case("{" T("conv1.weight", "F32", "[64,3,7,7]", 0, 100) "}", 100,
              "tensor 'conv1.weight': data_offsets [0, 100] do not match shape [64,3,7,7] x F32 "
              "(37632 bytes)",
              "size/shape mismatch");
  header_case("{" T("w", "F16", "[]", 0, 4) "}", 4, "do not match", "scalar size mismatch");
  header_case("{" T("a", "F32", "[2]", 0, 8) "," T("b", "F32", "[2]", 4, 12) "}", 12, "overlap",
              "overlapping tensors");
  header_case("{" T("a", "F32", "[4]", 0, 16) "," T("b", "F32", "[1]", 8, 12) "}", 16, "overlap",
              "nested tensors");
  header_case("{" T("a", "F32", "[2]", 0, 8) "," T("b", "F32", "[2]", 0, 8) "}", 8, "overlap",
              "identical ranges");
  header_case("{" T("a", "F32", "[2]", 0, 8) "," T("a", "F32", "[2]", 8, 16) "}", 16,
              "duplicate tensor name 'a'", "duplicate names");
  header_case("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4, "NUL",
              "NUL in name");
  header_case("{\"__metadata__\":{\"k\":1}}", 0, "metadata 'k' is not a string (found number)",
              "non-string meta");
  header_case("{\"__metadata__\":{\"k\":null}}", 0, "not a string", "null meta");
  header_case("{\"__metadata__\":[\"k\"]}", 0, "not an object", "meta not an object");
  header_case("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate", "two __metadata__");
  header_case("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "duplicate metadata key",
              "duplicate meta key");

  /* sanity: the same builders make valid files (zero-size tensors overlap nothing) */
  const char *path = fx_path(&fx, "good.safetensors");
  const char *ok = "{\"__metadata__\":{\"k\":\"v\"}," T("a", "F32", "[2]", 0, 8) "," T(
      "z", "U8", "[0,5]", 4, 4) "," T("b", "BF16", "[2,1]", 8, 12) "," T("s", "I64", "[]", 12,
                                                                         20) "}";
  write_st(path, strlen(ok), ok, 20);
  st_file *f = NULL;
  CHECK_OK(st_open(path, &f));
  CHECK(f && st_count(f) == 4 && st_meta(f, "k") != NULL, "valid builder file");
  st_close(f);
}

/* A valid file cut at every length fails cleanly. */
static void test_truncation(const unsigned char *good, size_t n) {
  const char *path = fx_path(&fx, "cut.safetensors");
  int bad = 0;
  for (size_t cut = 0; cut < n; cut++) {
    fx_write(path, good, cut);
    st_file *f = NULL;
    reid_status st = st_open(path, &f);
    if (st != REID_EFORMAT || f || !strstr(reid_last_error(), path)) {
      bad++;
      fprintf(stderr, "cut at %zu: %s: %s\n", cut, reid_status_name(st), reid_last_error());
    }
    st_close(f);
  }
  CHECK(bad == 0, "%d truncations not rejected", bad);
}

/* Flips bytes / truncates / rewrites the size field; st_open must not crash,
 * and whatever it accepts must be internally consistent and readable. */
static void test_fuzz(const unsigned char *good, size_t n) {
  const char *path = fx_path(&fx, "fuzz.safetensors");
  unsigned char *buf = malloc(n);
  test_rng rng = test_rng_make(2024);
  int accepted = 0, weird = 0;
  for (int iter = 0; iter < 2000; iter++) {
    memcpy(buf, good, n);
    size_t len = n;
    int kind = test_rng_int(&rng, 0, 3);
    if (kind == 0) { /* flip 1-4 random bytes in the header */
      for (int k = test_rng_int(&rng, 1, 4); k > 0; k--)
        buf[test_rng_int(&rng, 0, (int)n - 1)] ^= (unsigned char)test_rng_int(&rng, 1, 255);
    } else if (kind == 1) { /* replace a header byte with a JSON-significant one */
      static const char sig[] = "{}[]\",:0123456789-eE.\\u ";
      buf[8 + test_rng_int(&rng, 0, 150)] =
          (unsigned char)sig[test_rng_int(&rng, 0, (int)sizeof sig - 2)];
    } else if (kind == 2) { /* truncate */
      len = (size_t)test_rng_int(&rng, 0, (int)n - 1);
    } else { /* random size field */
      uint64_t h = test_rng_u64(&rng) >> test_rng_int(&rng, 0, 63);
      for (int k = 0; k < 8; k++) buf[k] = (unsigned char)(h >> (8 * k));
    }
    fx_write(path, buf, len);
    st_file *f = NULL;
    reid_status st = st_open(path, &f);
    if (st == REID_OK) {
      accepted++;
      for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_tensor_at(f, i);
        if (st_find(f, t->name) != t || t->end > len || t->begin > t->end) weird++;
        if (t->numel <= 1024) {
          float tmp[1024];
          reid_status r = st_read_f32(f, t, tmp, (size_t)t->numel);
          if (r != REID_OK && r != REID_EUNSUPPORTED) weird++;
        }
      }
      st_close(f);
    } else if (st != REID_EFORMAT || !strstr(reid_last_error(), path)) {
      weird++;
      fprintf(stderr, "fuzz %d: %s: %s\n", iter, reid_status_name(st), reid_last_error());
    }
  }
  free(buf);
  CHECK(weird == 0, "%d fuzz cases misbehaved", weird);
  fprintf(stderr, "fuzz: %d of 2000 mutants accepted\n", accepted);
}

int main(void) {
  fx_init(&fx);
  test_sizes();
  test_headers();

  /* a valid file from the writer as the seed for truncation and fuzzing */
  const char *seed = fx_path(&fx, "seed.safetensors");
  st_writer *w = st_writer_new();
  const int64_t s4[4] = {2, 3, 2, 2}, s1[1] = {5};
  float x[24];
  for (int i = 0; i < 24; i++) x[i] = (float)i - 7.5f;
  CHECK_OK(st_writer_add_meta(w, "format", "pt"));
  CHECK_OK(st_writer_add_f32(w, "conv.weight", ST_F32, 4, s4, x));
  CHECK_OK(st_writer_add_f32(w, "bn.bias", ST_F16, 1, s1, x));
  CHECK_OK(st_writer_add_f32(w, "scale", ST_BF16, 0, NULL, x));
  CHECK_OK(st_writer_save(w, seed));
  st_writer_free(w);
  size_t n;
  unsigned char *good = fx_read(seed, &n);
  test_truncation(good, n);
  test_fuzz(good, n);
  free(good);

  CHECK(fx_cleanup(&fx) == 0, "temp folder not empty after cleanup");
  return test_finish("test_safetensors_malformed");
}
