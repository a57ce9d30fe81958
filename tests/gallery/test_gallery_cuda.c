/* Exact gallery search on the CUDA backend (the distance op on the device,
 * chunks uploaded) equals the CPU's: the same ids, scores within 1e-5, with
 * and without filters. Built against the real CUDA backend (skips without a
 * GPU) and against the CUDA emulator (tests/cuda_emu), which runs everywhere. */
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "../gst/unit_workdir.h"
#include "../test_util.h"
#include "backend.h"
#include "gallery.h"

#define DIM  64
#define ROWS 5000

int main(int argc, char **argv) {
  const char *dir = unit_workdir(argc, argv);
  if (!dir) return 1;
  if (!reid_cuda_available()) {
    fprintf(stderr, "no usable CUDA device: skipped\n");
    return 77;
  }
  char path[1100];
  snprintf(path, sizeof path, "%s/cuda.sqlite", dir);
  unlink(path);
  reid_gallery *g = NULL;
  CHECK_OK(reid_gallery_open(path, &g));
  if (!g) return test_finish("test_gallery_cuda");
  reid_gallery_model m = {.name = "synthetic", .dims = DIM};
  memset(m.hash, 'c', 64);
  CHECK_OK(reid_gallery_bind_model(g, &m, REID_GALLERY_F32));
  static float emb[ROWS][DIM];
  static reid_gallery_row rows[ROWS];
  const char *streams[2] = {"a", "b"};
  test_rng r = test_rng_make(9);
  for (int i = 0; i < ROWS; i++) {
    test_fill_uniform(&r, emb[i], DIM, -1, 1);
    double ss = 0;
    for (int j = 0; j < DIM; j++) ss += emb[i][j] * emb[i][j];
    for (int j = 0; j < DIM; j++) emb[i][j] = (float)(emb[i][j] / sqrt(ss));
    rows[i] = (reid_gallery_row){.stream = streams[i % 2],
                                 .track_id = i,
                                 .first_time = i,
                                 .last_time = i + 10,
                                 .frames = 1,
                                 .embedding = emb[i],
                                 .first_pts = REID_GALLERY_TIME_NONE,
                                 .last_pts = REID_GALLERY_TIME_NONE};
  }
  CHECK_OK(reid_gallery_insert(g, rows, ROWS, NULL));
  reid_backend *cpu = NULL, *cuda = NULL;
  CHECK_OK(reid_backend_create("cpu", 0, &cpu));
  CHECK_OK(reid_backend_create("cuda", 0, &cuda));
  for (int pass = 0; pass < 2 && cuda; pass++) {
    reid_gallery_filter f;
    reid_gallery_filter_init(&f);
    if (pass) f.since = 1000, f.until = 4000, f.streams = streams + 1, f.n_streams = 1;
    reid_gallery_hit *a = NULL, *b = NULL;
    int na = 0, nb = 0;
    CHECK_OK(reid_gallery_search(g, cpu, emb[77], &f, 25, -1.0f, 1000, &a, &na));
    CHECK_OK(reid_gallery_search(g, cuda, emb[77], &f, 25, -1.0f, 1000, &b, &nb));
    CHECK(na == 25 && nb == na, "pass %d: %d and %d hits", pass, na, nb);
    for (int i = 0; i < na && i < nb; i++)
      CHECK(a[i].id == b[i].id && fabsf(a[i].score - b[i].score) < 1e-5f,
            "pass %d hit %d: cpu %lld %.7f, cuda %lld %.7f", pass, i, (long long)a[i].id,
            (double)a[i].score, (long long)b[i].id, (double)b[i].score);
    reid_gallery_hits_free(a, na);
    reid_gallery_hits_free(b, nb);
  }
  reid_backend_destroy(cuda);
  reid_backend_destroy(cpu);
  reid_gallery_close(g);
  return test_finish("test_gallery_cuda");
}
