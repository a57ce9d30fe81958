/* The match threshold (training/learn/calibrate.h): the threshold at a false-match rate and at
 * equal error on known score lists; genuine/impostor pairs from features and splits (junk left
 * out); writing match_threshold into a checkpoint keeps its tensors and other metadata. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calibrate.h"
#include "safetensors.h"
#include "test_util.h"

static void test_scores(void) {
  /* impostors 0.00, 0.01, ..., 0.99; genuine 0.5 .. 0.99 in steps of 0.01 (50) */
  float imp[100], gen[50];
  for (int i = 0; i < 100; i++) imp[99 - i] = i / 100.0f; /* unsorted on purpose */
  for (int i = 0; i < 50; i++) gen[i] = 0.5f + i / 100.0f;
  reid_threshold_result r;
  CHECK_OK(reid_threshold_from_scores(gen, 50, imp, 100, 0.01, &r));
  /* 1% of 100 impostors: only 0.99 may reach t, so t lies just above 0.98 */
  CHECK(r.at_fmr > 0.98f && r.at_fmr <= 0.99f, "threshold at 1%% FMR %.6f", r.at_fmr);
  CHECK(fabs(r.fmr - 0.01) < 1e-9, "its FMR %.4f", r.fmr);
  CHECK(fabs(r.fnmr_at_fmr - 49.0 / 50) < 1e-9, "its FNMR %.4f (genuine below: 0.50 .. 0.98)",
        r.fnmr_at_fmr);
  /* equal error: FMR(t) = (100 - 100 t) / 100, FNMR(t) = (100 t - 50) / 50 -> t = 2/3 */
  CHECK(fabs(r.at_eer - 0.67) < 0.011, "threshold at equal error %.4f", r.at_eer);
  CHECK(fabs(r.eer - 1.0 / 3) < 0.02, "equal error rate %.4f", r.eer);
  CHECK(r.genuine == 50 && r.impostor == 100, "pair counts");
  /* separable: every genuine above every impostor */
  float g2[3] = {0.9f, 0.95f, 0.99f}, i2[4] = {0.1f, 0.2f, 0.3f, 0.4f};
  CHECK_OK(reid_threshold_from_scores(g2, 3, i2, 4, 0.01, &r));
  CHECK(r.at_fmr > 0.4f && r.at_fmr < 0.41f && r.fnmr_at_fmr == 0 && r.eer == 0,
        "separable: t %.4f, FNMR %.3f, EER %.3f", r.at_fmr, r.fnmr_at_fmr, r.eer);
  CHECK(reid_threshold_from_scores(g2, 0, i2, 4, 0.01, &r) == REID_EINVAL, "no genuine pairs");
}

static void test_pairs(void) {
  /* 2-d features; query pid 1 cam 0; gallery: pid 1 cam 1 (genuine), pid 1 cam 0 (junk),
   * pid 2 (impostor), pid -1 (junk), pid 0 (distractor = impostor) */
  reid_sample qs[1] = {{1, -1, 0, 0, 1}};
  reid_sample gs[5] = {
      {1, -1, 1, 0, 1}, {1, -1, 0, 0, 1}, {2, -1, 1, 0, 1}, {-1, -1, 1, 0, 1}, {0, -1, 1, 0, 1}};
  reid_split q = {qs, 1}, g = {gs, 5};
  float qf[2] = {1, 0}, gf[10] = {0.8f, 0.6f, 1, 0, 0.6f, 0.8f, 1, 0, 0, 1};
  reid_threshold_result r;
  CHECK_OK(reid_threshold_calibrate(qf, &q, gf, &g, 2, 0.01, &r));
  CHECK(r.genuine == 1 && r.impostor == 2, "%ld genuine, %ld impostor pairs", r.genuine,
        r.impostor);
  CHECK(r.at_fmr > 0.6f && r.at_fmr < 0.61f, "the top impostor is 0.6: t %.4f", r.at_fmr);
}

static void test_write(void) {
  char path[] = "/tmp/calibrate-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0, "temporary file");
  close(fd);
  st_writer *w = st_writer_new();
  float x[6] = {1, 2, 3, 4, 5, 6};
  int64_t shape[2] = {2, 3};
  CHECK_OK(st_writer_add_meta(w, "arch", "resnet18"));
  CHECK_OK(st_writer_add_meta(w, "match_threshold", "0.1"));
  CHECK_OK(st_writer_add_f32(w, "w", ST_F16, 2, shape, x));
  CHECK_OK(st_writer_save(w, path));
  st_writer_free(w);
  CHECK_OK(reid_checkpoint_set_threshold(path, 0.8125));
  st_file *f = NULL;
  CHECK_OK(st_open(path, &f));
  if (f) {
    CHECK(st_meta(f, "match_threshold") && !strcmp(st_meta(f, "match_threshold"), "0.812500"),
          "match_threshold replaced: %s", st_meta(f, "match_threshold"));
    CHECK(st_meta(f, "arch") && !strcmp(st_meta(f, "arch"), "resnet18"), "arch kept");
    CHECK(st_meta_count(f) == 2, "%zu metadata entries", st_meta_count(f));
    const st_tensor *t = st_find(f, "w");
    float y[6] = {0};
    CHECK(t && t->dtype == ST_F16 && st_read_f32(f, t, y, 6) == REID_OK && !memcmp(x, y, sizeof x),
          "the tensor is kept (F16, same values)");
    st_close(f);
  }
  CHECK(reid_checkpoint_set_threshold(path, 1.5) == REID_EINVAL, "1.5 is not a cosine");
  CHECK(reid_checkpoint_set_threshold("/nonexistent/m.safetensors", 0.5) != REID_OK,
        "a missing file fails");
  unlink(path);
}

int main(void) {
  test_scores();
  test_pairs();
  test_write();
  return test_finish("test_calibrate");
}
