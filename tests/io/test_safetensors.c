/* safetensors round trip: F32/F16/BF16 payloads, scalars, 1-D and 4-D
 * shapes, metadata, raw dtypes, file layout, atomic save, writer argument
 * checks, and a file produced by Python's safetensors (torch-style names). */
#include <dirent.h>

#include "half.h"
#include "io_fixture.h"
#include "safetensors.h"
#include "status.h"
#include "test_util.h"

static fixture fx;

/* What each stored value must read back as, given its dtype. */
static float quantize(st_dtype dt, float x) {
  if (dt == ST_F16) return half_to_float(float_to_half(x));
  if (dt == ST_BF16) return bf16_to_float(float_to_bf16(x));
  return x;
}

static void test_round_trip(st_dtype dt) {
  char name[64];
  snprintf(name, sizeof name, "rt_%s.safetensors", st_dtype_name(dt));
  const char *path = fx_path(&fx, name);
  test_rng rng = test_rng_make(100 + (uint64_t)dt);

  const int64_t shape4[4] = {4, 3, 5, 2}, shape1[1] = {7}, shape0[2] = {0, 3};
  float w4[120], v1[7], s0 = 3.14159265f, back[120];
  test_fill_uniform(&rng, w4, 120, -2, 2);
  test_fill_uniform(&rng, v1, 7, -1000, 1000);
  w4[0] = 0.0f, w4[1] = -0.0f, w4[2] = 1e-6f, w4[3] = 65504.0f; /* edges */
  int64_t nbt = 12345;

  st_writer *w = st_writer_new();
  CHECK(w != NULL, "writer");
  if (!w) return;
  CHECK_OK(st_writer_add_meta(w, "format", "pt"));
  CHECK_OK(st_writer_add_meta(w, "note", "quote \" backslash \\ newline \n caf\xc3\xa9"));
  CHECK_OK(st_writer_add_f32(w, "layer1.0.conv1.weight", dt, 4, shape4, w4));
  CHECK_OK(st_writer_add_f32(w, "fc.bias", dt, 1, shape1, v1));
  CHECK_OK(st_writer_add_f32(w, "scale", dt, 0, NULL, &s0));
  CHECK_OK(st_writer_add_f32(w, "empty", dt, 2, shape0, NULL));
  CHECK_OK(st_writer_add_raw(w, "bn1.num_batches_tracked", ST_I64, 0, NULL, &nbt));
  CHECK_OK(st_writer_save(w, path));
  st_writer_free(w);

  /* layout: u64 header size, multiple of 8, space padded, starts with '{' */
  size_t n;
  unsigned char *raw = fx_read(path, &n);
  uint64_t hlen = 0;
  for (int k = 7; k >= 0; k--) hlen = hlen << 8 | raw[k];
  CHECK(hlen % 8 == 0 && 8 + hlen <= n, "header size %llu", (unsigned long long)hlen);
  CHECK(raw[8] == '{', "header starts with {");
  size_t payload = (120 + 7 + 1) * st_dtype_size(dt) + 8;
  CHECK(n == 8 + hlen + payload, "file size %zu, want %zu", n, (size_t)(8 + hlen + payload));
  free(raw);

  st_file *f = NULL;
  CHECK_OK(st_open(path, &f));
  if (!f) return;
  CHECK(strcmp(st_path(f), path) == 0, "path");
  CHECK(st_count(f) == 5, "count %zu", st_count(f));
  static const char *order[] = {"layer1.0.conv1.weight", "fc.bias", "scale", "empty",
                                "bn1.num_batches_tracked"};
  for (size_t i = 0; i < 5 && i < st_count(f); i++)
    CHECK(strcmp(st_tensor_at(f, i)->name, order[i]) == 0, "order %zu: %s", i,
          st_tensor_at(f, i)->name);
  CHECK(st_tensor_at(f, 5) == NULL, "past the end");

  CHECK(st_meta_count(f) == 2, "meta count");
  CHECK(st_meta(f, "format") && strcmp(st_meta(f, "format"), "pt") == 0, "meta format");
  const char *note = st_meta(f, "note");
  CHECK(note && strcmp(note, "quote \" backslash \\ newline \n caf\xc3\xa9") == 0, "meta note");
  CHECK(st_meta(f, "absent") == NULL, "absent meta");
  const char *k, *v;
  CHECK(st_meta_at(f, 1, &k, &v) == 0 && strcmp(k, "note") == 0, "meta_at");
  CHECK(st_meta_at(f, 2, &k, &v) == -1, "meta_at past end");

  const st_tensor *t = st_find(f, "layer1.0.conv1.weight");
  CHECK(t && t->dtype == dt && t->ndim == 4 && t->numel == 120, "4-D tensor");
  if (t) {
    for (int d = 0; d < 4; d++) CHECK(t->shape[d] == shape4[d], "dim %d", d);
    CHECK_OK(st_read_f32(f, t, back, 120));
    float want[120];
    for (int i = 0; i < 120; i++) want[i] = quantize(dt, w4[i]);
    CHECK(memcmp(back, want, sizeof want) == 0, "4-D values bit-exact after %s rounding",
          st_dtype_name(dt));
    double rtol = dt == ST_F32 ? 0 : dt == ST_F16 ? 1.0 / 2048 : 1.0 / 256;
    CHECK_CLOSE(back, w4, 120, dt == ST_F16 ? 6e-8 : 1e-30, rtol, "4-D precision");
    CHECK(st_read_f32(f, t, back, 119) == REID_EINVAL, "count mismatch");
    CHECK(strstr(reid_last_error(), path) != NULL, "message names file: %s", reid_last_error());
  }
  t = st_find(f, "fc.bias");
  CHECK(t && t->ndim == 1 && t->shape[0] == 7, "1-D tensor");
  if (t) {
    CHECK_OK(st_read_f32(f, t, back, 7));
    for (int i = 0; i < 7; i++) CHECK(back[i] == quantize(dt, v1[i]), "1-D value %d", i);
  }
  t = st_find(f, "scale");
  CHECK(t && t->ndim == 0 && t->numel == 1, "scalar");
  if (t) {
    CHECK_OK(st_read_f32(f, t, back, 1));
    CHECK(back[0] == quantize(dt, s0), "scalar value %g", (double)back[0]);
  }
  t = st_find(f, "empty");
  CHECK(t && t->numel == 0 && t->begin == t->end, "empty tensor");
  if (t) CHECK_OK(st_read_f32(f, t, back, 0));
  t = st_find(f, "bn1.num_batches_tracked");
  CHECK(t && t->dtype == ST_I64 && t->ndim == 0 && t->numel == 1, "I64 scalar");
  if (t) {
    int64_t got;
    memcpy(&got, st_data(f, t), 8);
    CHECK(got == 12345, "I64 value %lld", (long long)got);
    CHECK(st_read_f32(f, t, back, 1) == REID_EUNSUPPORTED, "I64 does not convert");
  }
  CHECK(st_find(f, "nope") == NULL && st_find(f, "") == NULL, "absent names");
  st_close(f);
}

/* Bytes written by Python: safetensors.numpy.save({...}, metadata={"format": "pt"}),
 * safetensors 0.8.0; tensors sorted by the library, I64 scalar with shape []. */
static const char py_header[] =
    "{\"__metadata__\":{\"format\":\"pt\"},\"bn1.num_batches_tracked\":{\"dtype\":\"I64\","
    "\"shape\":[],\"data_offsets\":[0,8]},\"bn1.running_mean\":{\"dtype\":\"F32\",\"shape\":[2],"
    "\"data_offsets\":[8,16]},\"fc.weight\":{\"dtype\":\"F16\",\"shape\":[1,3],\"data_offsets\":"
    "[16,22]},\"flag\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[22,24]}}     ";
static const unsigned char py_data[24] = {7, 0, 0,    0,    0, 0,    0, 0,    0, 0,    0, 0x3f,
                                          0, 0, 0xa0, 0xbf, 0, 0x3c, 0, 0x40, 0, 0xc3, 1, 0};

static void test_python_file(void) {
  const char *path = fx_path(&fx, "python.safetensors");
  size_t hl = sizeof py_header - 1;
  unsigned char buf[8 + sizeof py_header + sizeof py_data];
  for (int k = 0; k < 8; k++) buf[k] = (unsigned char)((uint64_t)hl >> (8 * k));
  memcpy(buf + 8, py_header, hl);
  memcpy(buf + 8 + hl, py_data, sizeof py_data);
  CHECK(hl == 0x130, "fixture header length");
  fx_write(path, buf, 8 + hl + sizeof py_data);

  st_file *f = NULL;
  CHECK_OK(st_open(path, &f));
  if (!f) return;
  CHECK(st_count(f) == 4, "4 tensors");
  CHECK(st_meta(f, "format") && strcmp(st_meta(f, "format"), "pt") == 0, "format pt");
  const st_tensor *t = st_find(f, "bn1.num_batches_tracked");
  CHECK(t && t->dtype == ST_I64 && t->ndim == 0 && t->numel == 1, "num_batches_tracked");
  if (t) CHECK(((const unsigned char *)st_data(f, t))[0] == 7, "value 7");
  float v[3];
  t = st_find(f, "bn1.running_mean");
  if (t) {
    CHECK_OK(st_read_f32(f, t, v, 2));
    CHECK(v[0] == 0.5f && v[1] == -1.25f, "running_mean %g %g", (double)v[0], (double)v[1]);
  }
  t = st_find(f, "fc.weight");
  CHECK(t && t->ndim == 2 && t->shape[0] == 1 && t->shape[1] == 3, "fc.weight shape");
  if (t) {
    CHECK_OK(st_read_f32(f, t, v, 3));
    CHECK(v[0] == 1 && v[1] == 2 && v[2] == -3.5f, "fc.weight values");
  }
  t = st_find(f, "flag");
  CHECK(t && t->dtype == ST_BOOL && st_read_f32(f, t, v, 2) == REID_EUNSUPPORTED, "BOOL");
  st_close(f);
}

static int dir_entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  if (!d) return -1;
  for (struct dirent *e; (e = readdir(d));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

static void test_writer_errors(void) {
  st_writer *w = st_writer_new();
  if (!w) return;
  const int64_t s2[1] = {2}, neg[1] = {-1}, big[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  float x[2] = {1, 2};
  CHECK_OK(st_writer_add_f32(w, "a", ST_F32, 1, s2, x));
  CHECK(st_writer_add_f32(w, "a", ST_F32, 1, s2, x) == REID_EINVAL, "duplicate name");
  CHECK(st_writer_add_f32(w, "__metadata__", ST_F32, 1, s2, x) == REID_EINVAL, "reserved");
  CHECK(st_writer_add_f32(w, "", ST_F32, 1, s2, x) == REID_EINVAL, "empty name");
  CHECK(st_writer_add_f32(w, "b", ST_F32, 1, neg, x) == REID_EINVAL, "negative dim");
  CHECK(st_writer_add_f32(w, "b", ST_F32, 9, big, x) == REID_EINVAL, "9 dims");
  CHECK(st_writer_add_f32(w, "b", ST_I32, 1, s2, x) == REID_EINVAL, "I32 from floats");
  CHECK(st_writer_add_f32(w, "b", ST_F32, 1, s2, NULL) == REID_EINVAL, "NULL data");
  CHECK_OK(st_writer_add_meta(w, "k", "v"));
  CHECK(st_writer_add_meta(w, "k", "w") == REID_EINVAL, "duplicate meta key");

  /* failed adds left no trace; a save into a missing folder fails cleanly */
  const char *bad = fx_path(&fx, "no_such_dir/x.safetensors");
  CHECK(st_writer_save(w, bad) == REID_EIO, "save into a missing folder");
  CHECK(strstr(reid_last_error(), "x.safetensors") != NULL, "message: %s", reid_last_error());

  /* overwrite an existing file atomically; no temporary left behind */
  const char *path = fx_path(&fx, "overwrite.safetensors");
  fx_write(path, "old", 3);
  int before = dir_entries(fx.dir);
  CHECK_OK(st_writer_save(w, path));
  CHECK(dir_entries(fx.dir) == before, "no temporary files left");
  st_file *f = NULL;
  CHECK_OK(st_open(path, &f));
  CHECK(f && st_count(f) == 1 && st_meta_count(f) == 1, "overwritten file has 1 tensor, 1 meta");
  st_close(f);
  st_writer_free(w);

  /* an empty writer still makes a valid file */
  w = st_writer_new();
  path = fx_path(&fx, "empty.safetensors");
  CHECK_OK(st_writer_save(w, path));
  st_writer_free(w);
  CHECK_OK(st_open(path, &f));
  CHECK(f && st_count(f) == 0 && st_meta_count(f) == 0, "empty file");
  st_close(f);
}

int main(void) {
  fx_init(&fx);
  test_round_trip(ST_F32);
  test_round_trip(ST_F16);
  test_round_trip(ST_BF16);
  test_python_file();
  test_writer_errors();
  CHECK(fx_cleanup(&fx) == 0, "temp folder not empty after cleanup (stray temporary?)");
  return test_finish("test_safetensors");
}
