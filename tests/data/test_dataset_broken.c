/* Every loader on broken copies of generated fixtures: a missing folder or index file, a
 * malformed name, a .mat of the wrong shape, with rows out of range, not a .mat at all or
 * truncated; missing frames are skipped and counted (a few) or fatal (many). Each failure
 * must name the path at fault and never crash. */
#include <matio.h>

#include "data_fixture.h"

static char tmp[512];
static int serial;

/* A fresh small dataset of `layout` in its own folder. */
static const char *fresh(reid_layout layout) {
  static char root[2][600];
  char *out = root[serial & 1];
  snprintf(out, sizeof root[0], "%s/%s-%d", tmp, reid_layout_name(layout), serial);
  serial++;
  fixture_spec spec = fixture_small(layout);
  fixture_synth(out, &spec);
  return out;
}

static void write_mat(const char *path, const char *var, const double *rowmajor, int rows,
                      int cols) {
  double *cm = malloc(sizeof *cm * (size_t)(rows * cols + 1));
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) cm[r + c * rows] = rowmajor[r * cols + c];
  mat_t *m = Mat_CreateVer(path, NULL, MAT_FT_MAT5);
  size_t dims[2] = {(size_t)rows, (size_t)cols};
  matvar_t *v = Mat_VarCreate(var, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, cm, 0);
  if (!m || !v || Mat_VarWrite(m, v, MAT_COMPRESSION_NONE) != 0) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(2);
  }
  Mat_VarFree(v);
  Mat_Close(m);
  free(cm);
}

/* Rewrites every variable of a .mat file zlib-compressed (MATLAB's default since v7). */
static void compress_mat(const char *path) {
  char copy[700];
  snprintf(copy, sizeof copy, "%s.z", path);
  mat_t *in = Mat_Open(path, MAT_ACC_RDONLY), *out = Mat_CreateVer(copy, NULL, MAT_FT_MAT5);
  matvar_t *v;
  int n = 0;
  while (in && out && (v = Mat_VarReadNext(in)) != NULL) {
    if (Mat_VarWrite(out, v, MAT_COMPRESSION_ZLIB) != 0) exit(2);
    Mat_VarFree(v);
    n++;
  }
  if (!in || !out || n == 0) {
    fprintf(stderr, "cannot compress %s\n", path);
    exit(2);
  }
  Mat_Close(in);
  Mat_Close(out);
  if (rename(copy, path) != 0) exit(2);
}

/* A struct variable of the index's name: MARS index files hold numeric matrices. */
static void write_struct(const char *path, const char *var) {
  size_t dims[2] = {1, 1};
  const char *fields[1] = {"rows"};
  mat_t *m = Mat_CreateVer(path, NULL, MAT_FT_MAT5);
  matvar_t *v = Mat_VarCreateStruct(var, 2, dims, fields, 1);
  if (!m || !v || Mat_VarWrite(m, v, MAT_COMPRESSION_NONE) != 0) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(2);
  }
  Mat_VarFree(v);
  Mat_Close(m);
}

static void truncate_file(const char *path, long keep) {
  if (truncate(path, keep) != 0) {
    fprintf(stderr, "cannot truncate %s\n", path);
    exit(2);
  }
}

static void test_mars(void) {
  const char *r;
  r = fresh(REID_LAYOUT_MARS);
  remove(fixture_path("%s/info/test_name.txt", r));
  CHECK_LOAD_FAILS(r, REID_LAYOUT_MARS, REID_EIO, "info/test_name.txt");

  r = fresh(REID_LAYOUT_MARS);
  fixture_replace_line(fixture_path("%s/info/train_name.txt", r), 3, "garbage.jpg");
  CHECK_LOAD_FAILS(r, REID_LAYOUT_MARS, REID_EFORMAT, "train_name.txt:3: 'garbage.jpg'");

  r = fresh(REID_LAYOUT_MARS); /* N x 3 instead of N x 4 */
  double three[6] = {1, 4, 1, 1, 5, 8};
  write_mat(fixture_path("%s/info/tracks_train_info.mat", r), "track_train_info", three, 2, 3);
  CHECK_LOAD_FAILS(r, REID_LAYOUT_MARS, REID_EFORMAT, "is 2 x 3, expected N x 4");

  r = fresh(REID_LAYOUT_MARS); /* a track ending past the name list */
  double far[4] = {1, 9999, 4, 1};
  write_mat(fixture_path("%s/info/tracks_test_info.mat", r), "track_test_info", far, 1, 4);
  CHECK_LOAD_FAILS(r, REID_LAYOUT_MARS, REID_EFORMAT,
                   "tracks_test_info.mat: row 1: frames 1..9999");

  r = fresh(REID_LAYOUT_MARS); /* a track whose person differs from its frames' names */
  double wrong_pid[8] = {1, 4, 1, 1, 5, 8, 3, 2};
  write_mat(fixture_path("%s/info/tracks_train_info.mat", r), "track_train_info", wrong_pid, 2, 4);
  CHECK_LOAD_FAILS(r, REID_LAYOUT_MARS, REID_EFORMAT, "row 2: frame 0001C2T0001F001.jpg");

  r = fresh(REID_LAYOUT_MARS); /* not an integer */
  double frac[4] = {1, 4.5, 1, 1};
  write_mat(fixture_path("%s/info/tracks_train_info.mat", r), "track_train_info", frac, 1, 4);
  CHECK_LOAD_FAILS(r, REID_LAYOUT_MARS, REID_EFORMAT, "holds 4.5, not an integer");

  r = fresh(REID_LAYOUT_MARS); /* query rows out of range, and of the wrong name */
  double rows[2] = {1, 7};
  write_mat(fixture_path("%s/info/query_IDX.mat", r), "query_IDX", rows, 1, 2);
  CHECK_LOAD_FAILS(r, REID_LAYOUT_MARS, REID_EFORMAT, "query_IDX.mat: entry 2 is 7");
  write_mat(fixture_path("%s/info/query_IDX.mat", r), "queries", rows, 1, 1);
  CHECK_LOAD_FAILS(r, REID_LAYOUT_MARS, REID_EFORMAT, "no readable variable 'query_IDX'");
  write_mat(fixture_path("%s/info/query_IDX.mat", r), "query_IDX", rows, 2, 1); /* column: ok */
  double four[4] = {1, 2, 3, 4};
  write_mat(fixture_path("%s/info/query_IDX.mat", r), "query_IDX", four, 2, 2);
  CHECK_LOAD_FAILS(r, REID_LAYOUT_MARS, REID_EFORMAT, "expected a vector");

  r = fresh(REID_LAYOUT_MARS); /* compressed index files load; a struct is refused */
  compress_mat(fixture_path("%s/info/tracks_train_info.mat", r));
  compress_mat(fixture_path("%s/info/tracks_test_info.mat", r));
  compress_mat(fixture_path("%s/info/query_IDX.mat", r));
  reid_dataset *loaded = NULL;
  CHECK(reid_dataset_load(r, REID_LAYOUT_MARS, &loaded) == REID_OK, "compressed MARS index: %s",
        reid_last_error());
  reid_dataset_free(loaded);
  write_struct(fixture_path("%s/info/query_IDX.mat", r), "query_IDX");
  CHECK_LOAD_FAILS(r, REID_LAYOUT_MARS, REID_EFORMAT,
                   "query_IDX.mat: not a valid MATLAB v5 .mat file: a cell, struct or object");

  r = fresh(REID_LAYOUT_MARS); /* text where a .mat belongs, then a truncated .mat */
  fixture_write(fixture_path("%s/info/tracks_train_info.mat", r), "start end pid camid\n1 4 1 1\n");
  CHECK_LOAD_FAILS(r, REID_LAYOUT_MARS, REID_EFORMAT, "tracks_train_info.mat");
  r = fresh(REID_LAYOUT_MARS);
  truncate_file(fixture_path("%s/info/tracks_test_info.mat", r), 150);
  CHECK_LOAD_FAILS(r, REID_LAYOUT_MARS, REID_EFORMAT, "tracks_test_info.mat");
  r = fresh(REID_LAYOUT_MARS);
  remove(fixture_path("%s/info/query_IDX.mat", r));
  CHECK_LOAD_FAILS(r, REID_LAYOUT_MARS, REID_EIO, "info/query_IDX.mat: missing file");

  r = fresh(REID_LAYOUT_MARS); /* a missing identity folder, a missing bbox folder */
  fixture_rm_tree(fixture_path("%s/bbox_test/0005", r));
  CHECK_LOAD_FAILS(r, REID_LAYOUT_MARS, REID_EIO, "bbox_test/0005: missing folder");
  fixture_rm_tree(fixture_path("%s/bbox_train", r));
  CHECK_LOAD_FAILS(r, REID_LAYOUT_MARS, REID_EIO, "bbox_train: missing folder");

  r = fresh(REID_LAYOUT_MARS); /* one frame missing: skipped, counted, named */
  const char *gone = fixture_path("%s/bbox_train/0002/0002C1T0001F003.jpg", r);
  remove(gone);
  reid_dataset *d = NULL;
  CHECK_OK(reid_dataset_load(r, REID_LAYOUT_MARS, &d));
  if (d) {
    CHECK(d->skipped == 1, "skipped %d", d->skipped);
    CHECK(reid_dataset_skipped_example(d) && !strcmp(reid_dataset_skipped_example(d), gone),
          "example %s", reid_dataset_skipped_example(d));
    int short_tracks = 0;
    for (int i = 0; i < d->train.count; i++) short_tracks += d->train.samples[i].n_frames == 3;
    CHECK(short_tracks == 1 && d->train.count == 6, "the tracklet lost one frame");
    reid_dataset_free(d);
  }
  r = fresh(REID_LAYOUT_MARS); /* many missing: an error */
  for (int t = 1; t <= 4; t++)
    for (int c = 1; c <= 2; c++)
      for (int p = 1; p <= 3; p++)
        remove(fixture_path("%s/bbox_train/%04d/%04dC%dT0001F%03d.jpg", r, p, p, c, t));
  CHECK_LOAD_FAILS(r, REID_LAYOUT_MARS, REID_EIO, "missing or unreadable");
}

static void test_duke(void) {
  const char *r = fresh(REID_LAYOUT_DUKE);
  const char *frame = fixture_path("%s/train/0001/0001/0001_C1_F0002_X00002.jpg", r);
  CHECK(rename(frame, fixture_path("%s/train/0001/0001/0001_C1_2.jpg", r)) == 0, "rename");
  CHECK_LOAD_FAILS(r, REID_LAYOUT_DUKE, REID_EFORMAT, "train/0001/0001/0001_C1_2.jpg");

  r = fresh(REID_LAYOUT_DUKE); /* a frame of person 1 in person 2's folder */
  CHECK(rename(fixture_path("%s/train/0001/0001/0001_C1_F0002_X00002.jpg", r),
               fixture_path("%s/train/0002/0001/0001_C1_F0002_X00002.jpg", r)) == 0,
        "move");
  CHECK_LOAD_FAILS(r, REID_LAYOUT_DUKE, REID_EFORMAT, "person 1 in a folder of person 2");

  r = fresh(REID_LAYOUT_DUKE);
  mkdir(fixture_path("%s/query/abcd", r), 0755);
  CHECK_LOAD_FAILS(r, REID_LAYOUT_DUKE, REID_EFORMAT, "query/abcd: an identity folder");

  r = fresh(REID_LAYOUT_DUKE); /* stray non-image files are ignored */
  fixture_write(fixture_path("%s/train/0001/0001/Thumbs.db", r), "x");
  reid_dataset *d = NULL;
  CHECK_OK(reid_dataset_load(r, REID_LAYOUT_DUKE, &d));
  CHECK(d && d->train.count == 6, "train %d", d ? d->train.count : -1);
  reid_dataset_free(d);
  fixture_rm_tree(fixture_path("%s/gallery", r));
  CHECK_LOAD_FAILS(r, REID_LAYOUT_DUKE, REID_EIO, "gallery: missing folder");
}

static void test_market(void) {
  const char *r = fresh(REID_LAYOUT_MARKET);
  fixture_write(fixture_path("%s/query/0004_c1_000001_01.jpg", r), "not even a jpeg");
  CHECK_LOAD_FAILS(r, REID_LAYOUT_MARKET, REID_EFORMAT, "query/0004_c1_000001_01.jpg");

  r = fresh(REID_LAYOUT_MARKET);
  fixture_write(fixture_path("%s/bounding_box_test/Thumbs.db", r), "x");
  reid_dataset *d = NULL;
  CHECK_OK(reid_dataset_load(r, REID_LAYOUT_AUTO, &d));
  CHECK(d && d->gallery.count == 18, "gallery %d", d ? d->gallery.count : -1);
  reid_dataset_free(d);
  fixture_rm_tree(fixture_path("%s/query", r));
  CHECK_LOAD_FAILS(r, REID_LAYOUT_MARKET, REID_EIO, "query: missing folder");
}

static void test_veri(void) {
  const char *r = fresh(REID_LAYOUT_VERI);
  remove(fixture_path("%s/name_query.txt", r));
  CHECK_LOAD_FAILS(r, REID_LAYOUT_VERI, REID_EIO, "name_query.txt");

  r = fresh(REID_LAYOUT_VERI); /* a listed image that is not there: skipped */
  FILE *f = fopen(fixture_path("%s/name_train.txt", r), "a");
  fputs("0001_c001_00099990_0.jpg\n", f);
  fclose(f);
  reid_dataset *d = NULL;
  CHECK_OK(reid_dataset_load(r, REID_LAYOUT_VERI, &d));
  CHECK(d && d->skipped == 1 && d->train.count == 24, "skipped %d", d ? d->skipped : -1);
  CHECK(d && strstr(reid_dataset_skipped_example(d), "image_train/0001_c001_00099990_0.jpg"),
        "skipped example");
  reid_dataset_free(d);

  r = fresh(REID_LAYOUT_VERI);
  fixture_replace_line(fixture_path("%s/name_test.txt", r), 2, "0004-c001.jpg");
  CHECK_LOAD_FAILS(r, REID_LAYOUT_VERI, REID_EFORMAT, "name_test.txt:2: '0004-c001.jpg'");

  r = fresh(REID_LAYOUT_VERI); /* test_track.txt naming an image not in name_test.txt */
  char first[64] = "", line[256];
  char *names = fixture_read(fixture_path("%s/name_test.txt", r), NULL);
  sscanf(names, "%63s", first);
  free(names);
  CHECK(!strncmp(first, "0004_c", 6), "first test image %s", first);
  snprintf(line, sizeof line, "%s %s 0004_c001_00099995_0.jpg \n", first, first);
  fixture_write(fixture_path("%s/test_track.txt", r), line);
  CHECK_LOAD_FAILS(r, REID_LAYOUT_VERI, REID_EFORMAT, "'0004_c001_00099995_0.jpg' is not listed");
  first[3] = '5'; /* 0005_...: another vehicle in 0004's track */
  snprintf(line, sizeof line, "%.4s%s %s \n", "0004", first + 4, first);
  fixture_write(fixture_path("%s/test_track.txt", r), line);
  CHECK_LOAD_FAILS(r, REID_LAYOUT_VERI, REID_EFORMAT, "test_track.txt:1: '0005_c001");
  remove(fixture_path("%s/test_track.txt", r)); /* optional */
  CHECK_OK(reid_dataset_load(r, REID_LAYOUT_VERI, &d));
  reid_dataset_free(d);
}

int main(void) {
  fixture_tmpdir(tmp, sizeof tmp);
  test_mars();
  test_duke();
  test_market();
  test_veri();
  fixture_rm_tree(tmp);
  return test_finish("test_dataset_broken");
}
