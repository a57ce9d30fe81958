/* VeRi-776 (papers.md §3): image_train/, image_query/, image_test/ with names
 * VVVV_cCCC_TTTTTTTT_N.jpg (vehicle, camera, time stamp, index), listed in order by
 * name_train.txt, name_query.txt, name_test.txt. Train = image_train, query = image_query,
 * gallery = image_test; each image is a sample with one frame (the image protocol).
 * test_track.txt (one gallery track a line: the track's name, then its images) is checked
 * when present: every image it names must be in name_test.txt, of the track's vehicle and
 * camera. A listed image missing from its folder is skipped and counted. */
#include <stdlib.h>
#include <string.h>

#include "dataset_build.h"

/* -> vehicle id, camera (1-based); 0 when the name does not follow the layout. */
static int parse_name(const char *name, int *vid, int *cam) {
  const char *p = name;
  if ((*vid = ds_number(&p)) < 0 || *p++ != '_' || *p++ != 'c' || (*cam = ds_number(&p)) < 1 ||
      *p++ != '_' || ds_number(&p) < 0 || *p++ != '_' || ds_number(&p) < 0)
    return 0;
  return !strcmp(p, ".jpg");
}

static reid_status load_split(const char *root, const char *list, const char *sub, int split,
                              reid_dataset *d, ds_lines *names_out) {
  char *list_path = ds_join(root, list, NULL), *folder = ds_join(root, sub, NULL);
  ds_lines names = {0};
  ds_listing files = {0};
  reid_status st = list_path && folder ? REID_OK : reid_fail(REID_ENOMEM, "out of memory");
  if (st == REID_OK) st = ds_read_lines(list_path, &names);
  if (st == REID_OK && !ds_is_folder(folder))
    st = reid_fail(REID_EIO, "%s: missing folder", folder);
  if (st == REID_OK) st = ds_list(folder, 'f', &files);
  for (int i = 0; st == REID_OK && i < names.count; i++) {
    const char *name = names.lines[i];
    int vid, cam, index;
    if (!parse_name(name, &vid, &cam)) {
      st = reid_fail(REID_EFORMAT,
                     "%s:%d: '%s' is not a VeRi-776 image name (VVVV_cCCC_TTTTTTTT_N.jpg)",
                     list_path, names.lineno[i], name);
      break;
    }
    if (!ds_listing_has(&files, name)) {
      ds_skip(d, folder, name, NULL);
      continue;
    }
    st = ds_add_frame(d, folder, name, NULL, &index);
    if (st == REID_OK) st = ds_add_sample(d, split, vid, cam - 1, index, 1);
  }
  ds_listing_free(&files);
  free(list_path);
  free(folder);
  if (st == REID_OK && names_out)
    *names_out = names;
  else
    ds_lines_free(&names);
  return st;
}

static int compare_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checks test_track.txt against name_test.txt (sorted in place). */
static reid_status check_tracks(const char *path, ds_lines *test_names) {
  qsort(test_names->lines, (size_t)test_names->count, sizeof(char *), compare_str);
  ds_lines lines;
  REID_TRY(ds_read_lines(path, &lines));
  reid_status st = REID_OK;
  for (int i = 0; st == REID_OK && i < lines.count; i++) {
    int n = 0, vid = 0, cam = 0;
    char *save = NULL;
    for (char *tok = strtok_r(lines.lines[i], " \t", &save); tok && st == REID_OK;
         tok = strtok_r(NULL, " \t", &save), n++) {
      int v, c;
      if (!parse_name(tok, &v, &c))
        st = reid_fail(REID_EFORMAT, "%s:%d: '%s' is not a VeRi-776 image name", path,
                       lines.lineno[i], tok);
      else if (n == 0)
        vid = v, cam = c;
      else if (v != vid || c != cam)
        st = reid_fail(REID_EFORMAT, "%s:%d: '%s' is not of vehicle %d camera %d like its track",
                       path, lines.lineno[i], tok, vid, cam);
      else if (!bsearch(&tok, test_names->lines, (size_t)test_names->count, sizeof(char *),
                        compare_str))
        st = reid_fail(REID_EFORMAT, "%s:%d: '%s' is not listed in name_test.txt", path,
                       lines.lineno[i], tok);
    }
    if (st == REID_OK && n < 2)
      st = reid_fail(REID_EFORMAT, "%s:%d: a track needs its name and at least one image", path,
                     lines.lineno[i]);
  }
  ds_lines_free(&lines);
  return st;
}

reid_status ds_load_veri(const char *root, reid_dataset *d) {
  d->video = 0;
  ds_lines test_names = {0};
  REID_TRY(load_split(root, "name_train.txt", "image_train", DS_TRAIN, d, NULL));
  REID_TRY(load_split(root, "name_query.txt", "image_query", DS_QUERY, d, NULL));
  REID_TRY(load_split(root, "name_test.txt", "image_test", DS_GALLERY, d, &test_names));
  char *tracks = ds_join(root, "test_track.txt", NULL);
  reid_status st = tracks ? REID_OK : reid_fail(REID_ENOMEM, "out of memory");
  if (st == REID_OK && ds_is_file(tracks)) st = check_tracks(tracks, &test_names);
  free(tracks);
  ds_lines_free(&test_names);
  return st;
}
