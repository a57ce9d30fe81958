/* The watchlist: a folder (image files by extension, sorted, hidden files,
 * other files and folders skipped) or a list file (comments, relative and
 * absolute paths); names are file names; loading embeds them and scores are
 * cosines; missing / empty / undecodable locations fail naming the file. */
#include <sys/stat.h>

#include "checkpoint.h"
#include "image.h"
#include "test_util.h"
#include "unit_workdir.h"
#include "watchlist.h"

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f) fputs(text, f), fclose(f);
  CHECK(f != NULL, "cannot write %s", path);
}

static reid_image picture(int w, int h, int seed) {
  reid_image img = {0};
  CHECK_OK(reid_image_alloc(w, h, &img));
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        img.data[(size_t)y * img.stride + 3 * x + c] =
            (uint8_t)(127 + 120 * sin(seed * 2.1 + c + x / 6.0 - y / (8.0 + c)));
  return img;
}

static void test_listing(const char *dir) {
  char folder[1100], path[1300];
  snprintf(folder, sizeof folder, "%s/q", dir);
  mkdir(folder, 0755);
  reid_image img = picture(32, 64, 1);
  const char *images[] = {"b.png", "A.JPG", "c.Ppm"};
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", folder, images[i]);
    if (strstr(images[i], "JPG"))
      CHECK_OK(reid_image_save_jpeg(path, &img, 90));
    else
      CHECK_OK(reid_image_save_png(path, &img)); /* content decides, not the extension */
  }
  snprintf(path, sizeof path, "%s/.hidden.png", folder);
  CHECK_OK(reid_image_save_png(path, &img));
  snprintf(path, sizeof path, "%s/notes.txt", folder);
  write_file(path, "not an image\n");
  snprintf(path, sizeof path, "%s/folder.png", folder);
  mkdir(path, 0755);
  reid_watchlist *w = NULL;
  CHECK_OK(reid_watchlist_list(folder, &w));
  CHECK(w && w->count == 3, "3 queries in the folder (%d)", w ? w->count : -1);
  if (w && w->count == 3) {
    CHECK(!strcmp(w->names[0], "A.JPG") && !strcmp(w->names[1], "b.png") &&
              !strcmp(w->names[2], "c.Ppm"),
          "sorted names: %s %s %s", w->names[0], w->names[1], w->names[2]);
    snprintf(path, sizeof path, "%s/A.JPG", folder);
    CHECK(!strcmp(w->paths[0], path), "path %s", w->paths[0]);
  }
  reid_watchlist_free(w);

  /* a list file: comments, blank lines, relative and absolute paths, CRLF */
  char list[1300];
  snprintf(list, sizeof list, "%s/list.txt", dir);
  snprintf(path, sizeof path, "# queries\n\nq/b.png\r\n  %s/q/A.JPG  \n", dir);
  write_file(list, path);
  CHECK_OK(reid_watchlist_list(list, &w));
  CHECK(w && w->count == 2 && !strcmp(w->names[0], "b.png") && !strcmp(w->names[1], "A.JPG"),
        "list file");
  if (w && w->count == 2) {
    snprintf(path, sizeof path, "%s/q/b.png", dir);
    CHECK(!strcmp(w->paths[0], path), "relative to the list's folder: %s", w->paths[0]);
  }
  reid_watchlist_free(w);
  reid_image_free(&img);

  /* errors */
  w = (reid_watchlist *)1;
  CHECK(reid_watchlist_list("/nonexistent/queries", &w) == REID_EIO && !w &&
            strstr(reid_last_error(), "/nonexistent/queries"),
        "missing: %s", reid_last_error());
  snprintf(path, sizeof path, "%s/empty", dir);
  mkdir(path, 0755);
  CHECK(reid_watchlist_list(path, &w) == REID_EFORMAT && strstr(reid_last_error(), "no image file"),
        "empty folder: %s", reid_last_error());
  snprintf(path, sizeof path, "%s/empty.txt", dir);
  write_file(path, "# nothing\n\n");
  CHECK(reid_watchlist_list(path, &w) == REID_EFORMAT && strstr(reid_last_error(), "empty"),
        "empty list: %s", reid_last_error());
}

static void test_load_and_scores(const char *dir) {
  reid_backend *be = NULL;
  CHECK_OK(reid_backend_create("cpu", 0, &be));
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  cfg.arch = REID_ARCH_RESNET18;
  cfg.input_height = 64;
  cfg.input_width = 32;
  reid_net *net = NULL;
  CHECK_OK(reid_net_create(&cfg, be, &net));
  if (!net) return;
  char model[1100], folder[1100], path[1300];
  snprintf(model, sizeof model, "%s/m.safetensors", dir);
  CHECK_OK(reid_checkpoint_save(net, model, ST_F32));
  reid_net_destroy(net);
  reid_backend_destroy(be);
  reid_embedder_options o = {.model_path = model, .device = "cpu", .batch_size = 2};
  reid_embedder *e = NULL;
  CHECK_OK(reid_embedder_open(&o, &e));
  if (!e) return;

  snprintf(folder, sizeof folder, "%s/scored", dir);
  mkdir(folder, 0755);
  snprintf(path, sizeof path, "%s/q4.jpg", folder);
  remove(path); /* from an earlier run */
  reid_image scene = picture(120, 100, 3);
  /* q1 is the scene's crop (30, 10, 40, 80); q2..q3 other pictures (3 queries: a batch of 2 + 1) */
  reid_image crop = {0};
  CHECK_OK(reid_image_alloc(40, 80, &crop));
  for (int y = 0; y < 80; y++)
    memcpy(crop.data + (size_t)y * crop.stride,
           scene.data + (size_t)(10 + y) * scene.stride + 3 * 30, 120);
  snprintf(path, sizeof path, "%s/q1.png", folder);
  CHECK_OK(reid_image_save_png(path, &crop));
  for (int i = 2; i <= 3; i++) {
    reid_image other = picture(40, 80, 10 + i);
    snprintf(path, sizeof path, "%s/q%d.png", folder, i);
    CHECK_OK(reid_image_save_png(path, &other));
    reid_image_free(&other);
  }
  reid_watchlist *w = NULL;
  CHECK_OK(reid_watchlist_load(folder, e, &w));
  if (w) {
    CHECK(w->count == 3 && w->dim == 512, "3 x 512");
    reid_frame frame = reid_frame_from_image(&scene);
    reid_box box = {30, 10, 40, 80};
    float track[512], scores[3];
    CHECK_OK(reid_embedder_embed_boxes(e, &frame, &box, 1, track));
    reid_watchlist_scores(w, track, scores);
    fprintf(stderr, "scores %.6f %.6f %.6f\n", scores[0], scores[1], scores[2]);
    CHECK(scores[0] > 0.99999, "the crop scores %.6f", scores[0]);
    CHECK(scores[1] < scores[0] && scores[2] < scores[0], "other pictures score lower");
    /* the closest query (the live match): the crop, and each query for its own embedding */
    float best_score = -2, again[3];
    CHECK(reid_watchlist_best(w, track, again, &best_score) == 0 && best_score == scores[0] &&
              again[2] == scores[2],
          "best of the crop: score %.6f", best_score);
    CHECK(reid_watchlist_best(w, w->embeddings + 2 * 512, again, &best_score) == 2 &&
              best_score > 0.99999,
          "best of query 2's embedding: %.6f", best_score);
    double ss = 0;
    for (int j = 0; j < 512; j++) ss += (double)w->embeddings[512 + j] * w->embeddings[512 + j];
    CHECK(fabs(ss - 1) < 1e-5, "query embeddings are normalised");
  }
  reid_watchlist_free(w);
  /* an undecodable image fails the load, naming it */
  snprintf(path, sizeof path, "%s/q4.jpg", folder);
  write_file(path, "\xff\xd8 broken");
  w = (reid_watchlist *)1;
  CHECK(reid_watchlist_load(folder, e, &w) != REID_OK && !w && strstr(reid_last_error(), "q4.jpg"),
        "undecodable: %s", reid_last_error());
  reid_image_free(&crop);
  reid_image_free(&scene);
  reid_embedder_close(e);
}

int main(int argc, char **argv) {
  const char *dir = unit_workdir(argc, argv);
  if (!dir) return 1;
  test_listing(dir);
  test_load_and_scores(dir);
  return test_finish("test_watchlist");
}
