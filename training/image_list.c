/* Image lists (one path a line) and their decoding into network input. */
#include "image_list.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "preprocess.h"

reid_status image_list_read(const char *list_path, char ***paths_out, int *count_out) {
  FILE *f = fopen(list_path, "r");
  if (!f) return reid_fail(REID_EIO, "%s: cannot open the image list", list_path);
  char *dir_copy = strdup(list_path);
  const char *dir = dir_copy ? dirname(dir_copy) : ".";
  char **paths = NULL;
  int count = 0, cap = 0;
  char line[4096];
  reid_status st = REID_OK;
  int lineno = 0;
  while (st == REID_OK && fgets(line, sizeof line, f)) {
    lineno++;
    size_t len = strlen(line);
    if (len == sizeof line - 1 && line[len - 1] != '\n') {
      st = reid_fail(REID_EFORMAT, "%s:%d: line too long", list_path, lineno);
      break;
    }
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
      line[--len] = 0;
    char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (!*p || *p == '#') continue;
    if (count == cap) {
      cap = cap ? 2 * cap : 256;
      char **grown = realloc(paths, sizeof *paths * cap);
      if (!grown) {
        st = reid_fail(REID_ENOMEM, "out of memory");
        break;
      }
      paths = grown;
    }
    size_t need = strlen(dir) + strlen(p) + 2;
    paths[count] = malloc(need);
    if (!paths[count]) {
      st = reid_fail(REID_ENOMEM, "out of memory");
      break;
    }
    if (p[0] == '/')
      snprintf(paths[count], need, "%s", p);
    else
      snprintf(paths[count], need, "%s/%s", dir, p);
    count++;
  }
  if (st == REID_OK && ferror(f)) st = reid_fail(REID_EIO, "%s: read error", list_path);
  if (st == REID_OK && count == 0)
    st = reid_fail(REID_EFORMAT, "%s: the image list is empty", list_path);
  fclose(f);
  free(dir_copy);
  if (st != REID_OK) {
    for (int i = 0; i < count; i++) free(paths[i]);
    free(paths);
    return st;
  }
  *paths_out = paths;
  *count_out = count;
  return REID_OK;
}

reid_status image_list_load(char **paths, int n, const reid_model_config *cfg, float *x) {
  reid_preprocess_params pp = {cfg->input_height, cfg->input_width, {0}, {0}};
  memcpy(pp.mean, cfg->mean, sizeof pp.mean);
  memcpy(pp.std, cfg->std, sizeof pp.std);
  size_t image = (size_t)3 * pp.height * pp.width;
  int failed = -1;
  char message[1024] = "";
  reid_status failed_status = REID_OK;
#pragma omp parallel for schedule(dynamic)
  for (int i = 0; i < n; i++) {
    reid_image img = {0};
    reid_status st = reid_image_load_rgb(paths[i], &img);
    if (st == REID_OK) st = reid_preprocess_image(&img, &pp, x + image * i);
    reid_image_free(&img);
    if (st != REID_OK) {
#pragma omp critical(embed_load_error)
      if (failed < 0 || i < failed) {
        failed = i;
        failed_status = st;
        snprintf(message, sizeof message, "%s", reid_last_error());
      }
    }
  }
  if (failed >= 0) return reid_fail(failed_status, "%s", message);
  return REID_OK;
}

void image_list_free(char **paths, int n) {
  for (int i = 0; paths && i < n; i++) free(paths[i]);
  free(paths);
}

int image_list_is_npy(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  unsigned char magic[6] = {0};
  size_t got = fread(magic, 1, 6, f);
  fclose(f);
  return got == 6 && !memcmp(magic, "\x93NUMPY", 6);
}
