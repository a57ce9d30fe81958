/* .npy: round trips through npy_write_f32, files written by NumPy (v2.0
 * header, '<f8', '<f2' scalar, empty), and rejection of malformed files. */
#include "half.h"
#include "io_fixture.h"
#include "npy.h"
#include "status.h"
#include "test_util.h"

static fixture fx;

static void write_hex(const char *path, const char *hex) {
  size_t n = strlen(hex) / 2;
  unsigned char *b = malloc(n ? n : 1);
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    sscanf(hex + 2 * i, "%2x", &v);
    b[i] = (unsigned char)v;
  }
  fx_write(path, b, n);
  free(b);
}

/* An npy file with the given version, dict text (padded with spaces and '\n' to
 * a multiple of 64 like NumPy) and raw data. */
static void write_npy(const char *path, int major, const char *dict, const void *data, size_t n) {
  size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
  size_t hlen = dl + 1;
  while ((pre + hlen) % 64) hlen++;
  unsigned char *b = malloc(pre + hlen + n);
  memcpy(b, "\x93NUMPY", 6);
  b[6] = (unsigned char)major, b[7] = 0;
  for (size_t k = 0; k < pre - 8; k++) b[8 + k] = (unsigned char)(hlen >> (8 * k));
  memcpy(b + pre, dict, dl);
  memset(b + pre + dl, ' ', hlen - dl - 1);
  b[pre + hlen - 1] = '\n';
  if (n) memcpy(b + pre + hlen, data, n);
  fx_write(path, b, pre + hlen + n);
  free(b);
}

static void test_round_trip(void) {
  const int64_t shapes[4][4] = {{0}, {5}, {2, 3}, {2, 1, 4, 3}};
  const int ndims[4] = {0, 1, 2, 4};
  test_rng rng = test_rng_make(5);
  float x[24], *y;
  test_fill_uniform(&rng, x, 24, -3, 3);
  x[0] = -0.0f, x[1] = INFINITY;
  for (int c = 0; c < 4; c++) {
    char name[32];
    snprintf(name, sizeof name, "rt%d.npy", c);
    const char *path = fx_path(&fx, name);
    CHECK_OK(npy_write_f32(path, ndims[c], shapes[c], x));
    size_t n;
    unsigned char *raw = fx_read(path, &n);
    size_t hlen = raw[8] | (size_t)raw[9] << 8;
    CHECK(raw[6] == 1 && raw[7] == 0 && (10 + hlen) % 64 == 0 && raw[10 + hlen - 1] == '\n',
          "v1.0 header aligned to 64");
    free(raw);
    int nd = -1;
    int64_t sh[NPY_MAX_DIMS];
    y = NULL;
    CHECK_OK(npy_read_f32(path, &nd, sh, &y));
    int64_t numel = 1;
    CHECK(nd == ndims[c], "ndim %d vs %d", nd, ndims[c]);
    for (int d = 0; d < ndims[c] && d < nd; d++) {
      CHECK(sh[d] == shapes[c][d], "dim %d", d);
      numel *= shapes[c][d];
    }
    if (y) CHECK(memcmp(y, x, (size_t)numel * sizeof(float)) == 0, "values of case %d", c);
    free(y);
  }
  /* zero elements */
  const int64_t empty[2] = {0, 4};
  const char *path = fx_path(&fx, "empty.npy");
  CHECK_OK(npy_write_f32(path, 2, empty, NULL));
  int nd;
  int64_t sh[NPY_MAX_DIMS];
  y = NULL;
  CHECK_OK(npy_read_f32(path, &nd, sh, &y));
  CHECK(nd == 2 && sh[0] == 0 && sh[1] == 4 && y != NULL, "empty array");
  free(y);
  CHECK(npy_write_f32(fx_path(&fx, "nodir/x.npy"), 1, shapes[1], x) == REID_EIO, "missing dir");
  CHECK(strstr(reid_last_error(), "x.npy") != NULL, "message: %s", reid_last_error());
  const int64_t neg[1] = {-1};
  CHECK(npy_write_f32(path, 1, neg, x) == REID_EINVAL, "negative shape");
  CHECK(npy_write_f32(path, 9, shapes[3], x) == REID_EINVAL, "9 dims");
}

/* Exact bytes from numpy 2.4 numpy.lib.format.write_array. */
static const char np_v2_f4[] = /* arange(6, float32).reshape(2,3)/4, version=(2,0) */
    "934e554d50590200740000007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046"
    "616c73652c20277368617065273a2028322c2033292c207d2020202020202020202020202020202020202020202020"
    "2020202020202020202020202020202020202020202020202020202020202020200a000000000000803e0000003f00"
    "00403f0000803f0000a03f";
static const char np_f8[] = /* array([1.5, -2.25, 1e-3]) */
    "934e554d5059010076007b276465736372273a20273c6638272c2027666f727472616e5f6f72646572273a2046616c"
    "73652c20277368617065273a2028332c292c207d202020202020202020202020202020202020202020202020202020"
    "2020202020202020202020202020202020202020202020202020202020202020200a000000000000f83f0000000000"
    "0002c0fca9f1d24d62503f";
static const char np_f2[] = /* array(3.5, float16) */
    "934e554d5059010076007b276465736372273a20273c6632272c2027666f727472616e5f6f72646572273a2046616c"
    "73652c20277368617065273a2028292c207d2020202020202020202020202020202020202020202020202020202020"
    "2020202020202020202020202020202020202020202020202020202020202020200a0043";

static void test_numpy_files(void) {
  int nd;
  int64_t sh[NPY_MAX_DIMS];
  float *y = NULL;
  const char *path = fx_path(&fx, "np_v2.npy");
  write_hex(path, np_v2_f4);
  CHECK_OK(npy_read_f32(path, &nd, sh, &y));
  CHECK(nd == 2 && sh[0] == 2 && sh[1] == 3, "v2 shape");
  if (y) CHECK(y[0] == 0 && y[1] == 0.25f && y[5] == 1.25f, "v2 values");
  free(y);

  y = NULL;
  path = fx_path(&fx, "np_f8.npy");
  write_hex(path, np_f8);
  CHECK_OK(npy_read_f32(path, &nd, sh, &y));
  CHECK(nd == 1 && sh[0] == 3, "f8 shape");
  if (y) CHECK(y[0] == 1.5f && y[1] == -2.25f && y[2] == 1e-3f, "f8 values");
  free(y);

  y = NULL;
  path = fx_path(&fx, "np_f2.npy");
  write_hex(path, np_f2);
  CHECK_OK(npy_read_f32(path, &nd, sh, &y));
  CHECK(nd == 0 && y && y[0] == 3.5f, "f2 scalar");
  free(y);

  /* v3.0 (utf-8 header) with double quotes, a trailing-comma-free dict and odd spacing */
  y = NULL;
  path = fx_path(&fx, "v3.npy");
  float d[2] = {7, -8};
  write_npy(path, 3, "{\"shape\":(2,),\"fortran_order\" : False,  'descr':'<f4'}", d, 8);
  CHECK_OK(npy_read_f32(path, &nd, sh, &y));
  CHECK(nd == 1 && sh[0] == 2 && y && y[0] == 7 && y[1] == -8, "v3 file");
  free(y);
}

static void expect_bad(const char *name, int major, const char *dict, size_t data_bytes,
                       reid_status want, const char *needle) {
  const char *path = fx_path(&fx, name);
  unsigned char data[64] = {0};
  write_npy(path, major, dict, data, data_bytes);
  int nd = -7;
  float *y = NULL;
  int64_t sh[NPY_MAX_DIMS];
  reid_status st = npy_read_f32(path, &nd, sh, &y);
  CHECK(st == want, "%s: got %s (%s)", name, reid_status_name(st), reid_last_error());
  CHECK(y == NULL && nd == -7, "%s: outputs touched on failure", name);
  CHECK(strstr(reid_last_error(), path) != NULL, "%s: message lacks path: %s", name,
        reid_last_error());
  CHECK(strstr(reid_last_error(), needle) != NULL, "%s: message lacks '%s': %s", name, needle,
        reid_last_error());
  if (getenv("IO_TEST_VERBOSE")) fprintf(stderr, "%-16s -> %s\n", name, reid_last_error());
  free(y);
}

#define F4(shape) "{'descr': '<f4', 'fortran_order': False, 'shape': " shape ", }"

static void test_malformed(void) {
  expect_bad("ok_check.npy", 1, F4("(2,)"), 7, REID_EFORMAT, "truncated");
  expect_bad("trunc.npy", 1, F4("(2, 3)"), 20, REID_EFORMAT, "truncated");
  expect_bad("trailing.npy", 1, F4("(2,)"), 12, REID_EFORMAT, "trailing");
  expect_bad("bigend.npy", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8,
             REID_EUNSUPPORTED, "big-endian");
  expect_bad("fortran.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16,
             REID_EUNSUPPORTED, "fortran_order");
  expect_bad("object.npy", 1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16,
             REID_EUNSUPPORTED, "object");
  expect_bad("int.npy", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", 8,
             REID_EUNSUPPORTED, "'<i4' is not supported");
  expect_bad("struct.npy", 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
             8, REID_EUNSUPPORTED, "structured");
  expect_bad("notuple.npy", 1, F4("(2)"), 8, REID_EFORMAT, "not a tuple");
  expect_bad("list.npy", 1, F4("[2]"), 8, REID_EFORMAT, "not a tuple");
  expect_bad("negshape.npy", 1, F4("(-2,)"), 8, REID_EFORMAT, "non-negative");
  expect_bad("ninedims.npy", 1, F4("(1, 1, 1, 1, 1, 1, 1, 1, 1)"), 4, REID_EFORMAT, "8 dim");
  expect_bad("overflow.npy", 1, F4("(99999999999999999999,)"), 4, REID_EFORMAT, "overflow");
  expect_bad("bigshape.npy", 1, F4("(4294967296, 4294967296)"), 4, REID_EFORMAT, "overflow");
  expect_bad("nodescr.npy", 1, "{'fortran_order': False, 'shape': (2,), }", 8, REID_EFORMAT,
             "missing 'descr'");
  expect_bad("extra.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8,
             REID_EFORMAT, "'x'");
  expect_bad("dupkey.npy", 1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, }", 8,
             REID_EFORMAT, "repeated");
  expect_bad("nodict.npy", 1, "'descr'", 8, REID_EFORMAT, "not a dict");
  expect_bad("unclosed.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", 8,
             REID_EFORMAT, "expected");
  expect_bad("badbool.npy", 1, "{'descr': '<f4', 'fortran_order': false, 'shape': (2,)}", 8,
             REID_EFORMAT, "True or False");
  expect_bad("junk.npy", 1, F4("(2,)") " junk", 8, REID_EFORMAT, "after the dict");
  expect_bad("version.npy", 4, F4("(2,)"), 8, REID_EFORMAT, "version");

  /* raw breakage: magic, tiny files, header longer than the file */
  const char *path = fx_path(&fx, "magic.npy");
  write_npy(path, 1, F4("(1,)"), "\0\0\0\0", 4);
  size_t n;
  unsigned char *b = fx_read(path, &n);
  int nd;
  int64_t sh[NPY_MAX_DIMS];
  float *y = NULL;
  b[1] = 'n';
  fx_write(path, b, n);
  CHECK(npy_read_f32(path, &nd, sh, &y) == REID_EFORMAT && strstr(reid_last_error(), "magic"),
        "bad magic: %s", reid_last_error());
  b[1] = 'N';
  for (size_t cut = 0; cut < n; cut++) { /* every truncation fails */
    fx_write(path, b, cut);
    reid_status st = npy_read_f32(path, &nd, sh, &y);
    CHECK(st == REID_EFORMAT && y == NULL, "cut at %zu: %s", cut, reid_status_name(st));
  }
  b[8] = 0xff, b[9] = 0xff; /* header length 65535 */
  fx_write(path, b, n);
  CHECK(npy_read_f32(path, &nd, sh, &y) == REID_EFORMAT && strstr(reid_last_error(), "past"),
        "header past end: %s", reid_last_error());
  free(b);
  CHECK(npy_read_f32(fx_path(&fx, "absent.npy"), &nd, sh, &y) == REID_EIO, "missing file");
  CHECK(strstr(reid_last_error(), "absent.npy") != NULL, "message: %s", reid_last_error());
}

int main(void) {
  fx_init(&fx);
  test_round_trip();
  test_numpy_files();
  test_malformed();
  CHECK(fx_cleanup(&fx) == 0, "temp folder not empty after cleanup");
  return test_finish("test_npy");
}
