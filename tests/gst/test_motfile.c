/* MOT file parsing: commas with blanks, blanks only, -1 fields, floats,
 * comments, 6 to 10+ fields, rows out of frame order, lookup per frame; and
 * every kind of malformed line failing with "name:line: reason". */
#include "motfile.h"
#include "test_util.h"
#include "unit_workdir.h"

static void test_valid(void) {
  const char *text = "# MOT17 gt\r\n"
                     "3, 7, 10.5, -4, 30, 60, 0.8, 1, 0.25\r\n"
                     "\n"
                     "  1,1,1,2,3,4,-1,-1,-1,-1\n"
                     "1 2 5 6 7 8\n"
                     "3,-1,0,0,1,1,1,2,1\n"
                     "2,1,1.0,2.0,3.0,4.0,1,1,1";
  reid_mot *m = NULL;
  CHECK_OK(reid_mot_parse(text, strlen(text), "t.txt", &m));
  if (!m) return;
  CHECK(m->count == 5 && m->max_frame == 3, "%d rows, max frame %d", m->count, m->max_frame);
  const reid_mot_row *r;
  CHECK(reid_mot_frame_rows(m, 1, &r) == 2 && r[0].id == 1 && r[1].id == 2, "frame 1, file order");
  CHECK(r[0].conf == -1 && r[0].cls == -1 && r[0].visibility == -1 && r[0].line == 4,
        "-1 fields, line 4");
  CHECK(r[1].x == 5 && r[1].h == 8 && r[1].conf == 1 && r[1].cls == -1,
        "six blank-separated fields");
  CHECK(reid_mot_frame_rows(m, 2, &r) == 1 && r[0].w == 3 && r[0].line == 7,
        "frame 2 (no final newline)");
  CHECK(reid_mot_frame_rows(m, 3, &r) == 2 && r[0].id == 7 && r[1].id == -1, "frame 3");
  CHECK(r[0].x == 10.5f && r[0].y == -4 && r[0].visibility == 0.25f, "floats and negatives");
  CHECK(reid_mot_frame_rows(m, 4, &r) == 0 && r == NULL, "no rows");
  CHECK(reid_mot_frame_rows(m, 0, &r) == 0, "frame 0");
  reid_mot_free(m);
  CHECK_OK(reid_mot_parse("", 0, "empty", &m));
  CHECK(m && m->count == 0, "an empty file has no rows");
  reid_mot_free(m);
}

static void test_malformed(void) {
  const struct {
    const char *text, *needle;
  } cases[] = {
      {"1,1,1,1,1\n", "bad.txt:1: 5 fields"},
      {"1,1,1,1,1,1\n2,1,x,1,1,1\n", "bad.txt:2: field 3 (x) 'x' is not a number"},
      {"0,1,1,1,1,1\n", "bad.txt:1: frame 0 < 1"},
      {"1.5,1,1,1,1,1\n", "bad.txt:1: field 1 (frame) '1.5' is not an integer"},
      {"1,-2,1,1,1,1\n", "bad.txt:1: id -2 < -1"},
      {"1,1,1,1,1,1,0.5,car\n", "bad.txt:1: field 8 (class)"},
      {"1,1,1,1,1,nan\n", "bad.txt:1: field 6 (h) 'nan'"},
      {"1,1,1,1,1,1e999\n", "bad.txt:1: field 6 (h)"},
      {"1,1,,1,1,1\n", "bad.txt:1: field 3 (x) ''"},
      {"1,1,1,1,1,1,\n", "bad.txt:1: field 7 (conf) ''"},
      {"# ok\n1,1,1,1,1,1\n\n1,1,1,1,1,1 junk\n", "bad.txt:4: field 6 (h) '1 junk'"},
      {"1,1,1,1,1,1\n\0\n", "bad.txt:2: NUL byte"},
      {"1,1,11111111111111111111111111111111111111111111111111111111111111111111,1,1,1\n",
       "bad.txt:1: a field is longer"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t len = strlen(cases[i].text);
    if (strstr(cases[i].needle, "NUL")) len += 2; /* the embedded NUL and the newline */
    reid_mot *m = (reid_mot *)1;
    reid_status st = reid_mot_parse(cases[i].text, len, "bad.txt", &m);
    CHECK(st == REID_EFORMAT && m == NULL, "case %zu must fail (%s)", i, reid_status_name(st));
    CHECK(strstr(reid_last_error(), cases[i].needle), "case %zu: '%s' lacks '%s'", i,
          reid_last_error(), cases[i].needle);
  }
  reid_mot *m;
  CHECK(reid_mot_load("/nonexistent/gt.txt", &m) == REID_EIO &&
            strstr(reid_last_error(), "/nonexistent/gt.txt"),
        "missing file: %s", reid_last_error());
}

static void test_load(const char *dir) {
  char path[1024];
  snprintf(path, sizeof path, "%s/gt.txt", dir);
  FILE *f = fopen(path, "w");
  if (!f) {
    CHECK(0, "cannot write %s", path);
    return;
  }
  for (int frame = 100; frame >= 1; frame--)
    for (int id = 1; id <= 5; id++)
      fprintf(f, "%d,%d,%d,%d,20,40,1,1,1\n", frame, id, id * 10, frame);
  fclose(f);
  reid_mot *m;
  CHECK_OK(reid_mot_load(path, &m));
  if (!m) return;
  CHECK(m->count == 500 && m->max_frame == 100, "500 rows");
  int ok = 1;
  for (int frame = 1; frame <= 100; frame++) {
    const reid_mot_row *r;
    int n = reid_mot_frame_rows(m, frame, &r);
    ok &= n == 5;
    for (int i = 0; i < n; i++) ok &= r[i].frame == frame && r[i].id == i + 1 && r[i].y == frame;
  }
  CHECK(ok, "rows sorted by frame, stable within a frame");
  reid_mot_free(m);
}

int main(int argc, char **argv) {
  const char *dir = unit_workdir(argc, argv);
  if (!dir) return 1;
  test_valid();
  test_malformed();
  test_load(dir);
  return test_finish("test_motfile");
}
