/* Market-1501 (papers.md §3): bounding_box_train/ (train), query/ (query),
 * bounding_box_test/ (gallery); names PPPP_cCsS_FFFFFF_NN.jpg (person, camera, sequence,
 * frame, detection); person -1 is junk, 0000 a distractor. Junk and distractors are left out
 * of the train split and kept in query/gallery (evaluation treats -1 as junk). Files that are
 * not .jpg (Thumbs.db, ...) are ignored. Each image is a sample with one frame. */
#include <stdlib.h>
#include <string.h>

#include "dataset_build.h"

/* -> pid (-1 junk), camera (1-based); 0 when the name does not follow the layout. */
static int parse_name(const char *name, int *pid, int *cam) {
  const char *p = name;
  if (!strncmp(p, "-1_", 3)) {
    *pid = -1;
    p += 2;
  } else if ((*pid = ds_number(&p)) < 0) {
    return 0;
  }
  if (*p++ != '_' || *p++ != 'c' || (*cam = ds_number(&p)) < 1 || *p++ != 's' ||
      ds_number(&p) < 0 || *p++ != '_' || ds_number(&p) < 0 || *p++ != '_' || ds_number(&p) < 0)
    return 0;
  return !strcmp(p, ".jpg");
}

static reid_status load_split(const char *root, const char *sub, int split, reid_dataset *d) {
  char *folder = ds_join(root, sub, NULL);
  if (!folder) return reid_fail(REID_ENOMEM, "out of memory");
  ds_listing files = {0};
  reid_status st = ds_is_folder(folder) ? ds_list(folder, 'f', &files)
                                        : reid_fail(REID_EIO, "%s: missing folder", folder);
  for (int i = 0; st == REID_OK && i < files.count; i++) {
    const char *name = files.names[i];
    if (!ds_ends_with(name, ".jpg")) continue;
    int pid, cam, index;
    if (!parse_name(name, &pid, &cam)) {
      st = reid_fail(REID_EFORMAT, "%s/%s: not a Market-1501 image name (PPPP_cCsS_FFFFFF_NN.jpg)",
                     folder, name);
      break;
    }
    if (split == DS_TRAIN && pid <= 0) continue;
    st = ds_add_frame(d, folder, name, NULL, &index);
    if (st == REID_OK) st = ds_add_sample(d, split, pid, cam - 1, index, 1);
  }
  ds_listing_free(&files);
  free(folder);
  return st;
}

reid_status ds_load_market(const char *root, reid_dataset *d) {
  d->video = 0;
  REID_TRY(load_split(root, "bounding_box_train", DS_TRAIN, d));
  REID_TRY(load_split(root, "query", DS_QUERY, d));
  return load_split(root, "bounding_box_test", DS_GALLERY, d);
}
