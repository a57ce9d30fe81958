/* DukeMTMC-VideoReID (papers.md §3): train/PPPP/TTTT/, query/PPPP/TTTT/ and
 * gallery/PPPP/TTTT/ hold the .jpg frames, one folder per tracklet. Frame names carry the camera:
 * PPPP_C<c>_F<ffff>[_X<global frame>].jpg (e.g. 0001_C6_F0099_X30823.jpg); the older
 * PPPPC<c>F<ffff>[X<n>].jpg spelling is read too. Frames are ordered by F, then by name.
 * Files that are not .jpg (Thumbs.db, ...) are ignored; an empty tracklet folder is skipped. */
#include <stdlib.h>
#include <string.h>

#include "dataset_build.h"

/* -> pid, camera (1-based), frame number; 0 when the name does not follow the layout. */
static int parse_name(const char *name, int *pid, int *cam, int *frame) {
  const char *p = name;
  if ((*pid = ds_number(&p)) < 0) return 0;
  if (*p == '_') p++;
  if (*p++ != 'C' || (*cam = ds_number(&p)) < 1) return 0;
  if (*p == '_') p++;
  if (*p++ != 'F' || (*frame = ds_number(&p)) < 0) return 0;
  if (*p == '_') p++;
  if (*p == 'X') {
    p++;
    if (ds_number(&p) < 0) return 0;
  }
  return !strcmp(p, ".jpg");
}

typedef struct frame_entry {
  int frame;
  const char *name;
} frame_entry;

static int compare_entry(const void *a, const void *b) {
  const frame_entry *x = a, *y = b;
  if (x->frame != y->frame) return (x->frame > y->frame) - (x->frame < y->frame);
  return strcmp(x->name, y->name);
}

/* One tracklet folder: its frames in order, one sample. */
static reid_status load_tracklet(reid_dataset *d, int split, const char *folder, int pid) {
  ds_listing files;
  REID_TRY(ds_list(folder, 'f', &files));
  frame_entry *e = malloc(sizeof *e * (size_t)(files.count + 1));
  reid_status st = e ? REID_OK : reid_fail(REID_ENOMEM, "%s: out of memory", folder);
  int n = 0, cam = -1;
  for (int i = 0; st == REID_OK && i < files.count; i++) {
    const char *name = files.names[i];
    if (!ds_ends_with(name, ".jpg")) continue;
    int p, c, f;
    if (!parse_name(name, &p, &c, &f))
      st = reid_fail(REID_EFORMAT,
                     "%s/%s: not a DukeMTMC-VideoReID frame name (PPPP_C<c>_F<ffff>.jpg)", folder,
                     name);
    else if (p != pid)
      st = reid_fail(REID_EFORMAT, "%s/%s: person %d in a folder of person %d", folder, name, p,
                     pid);
    else if (cam >= 0 && c != cam)
      st = reid_fail(REID_EFORMAT, "%s/%s: camera %d in a tracklet of camera %d", folder, name, c,
                     cam);
    else {
      cam = c;
      e[n++] = (frame_entry){f, name};
    }
  }
  if (st == REID_OK && n > 0) {
    qsort(e, (size_t)n, sizeof *e, compare_entry);
    int first = d->n_frames;
    for (int i = 0; st == REID_OK && i < n; i++)
      st = ds_add_frame(d, folder, e[i].name, NULL, NULL);
    if (st == REID_OK) st = ds_add_sample(d, split, pid, cam - 1, first, n);
  }
  free(e);
  ds_listing_free(&files);
  return st;
}

static reid_status load_split(const char *root, const char *sub, int split, reid_dataset *d) {
  char *top = ds_join(root, sub, NULL);
  if (!top) return reid_fail(REID_ENOMEM, "out of memory");
  if (!ds_is_folder(top)) {
    reid_status st = reid_fail(REID_EIO, "%s: missing folder", top);
    free(top);
    return st;
  }
  ds_listing people = {0};
  reid_status st = ds_list(top, 'd', &people);
  for (int i = 0; st == REID_OK && i < people.count; i++) {
    const char *pname = people.names[i], *p = pname;
    int pid = ds_number(&p);
    if (pid < 0 || *p) {
      st = reid_fail(REID_EFORMAT, "%s/%s: an identity folder must be a number (PPPP)", top, pname);
      break;
    }
    char *pfolder = ds_join(top, pname, NULL);
    ds_listing tracks = {0};
    st = pfolder ? ds_list(pfolder, 'd', &tracks) : reid_fail(REID_ENOMEM, "out of memory");
    for (int t = 0; st == REID_OK && t < tracks.count; t++) {
      char *tfolder = ds_join(pfolder, tracks.names[t], NULL);
      st =
          tfolder ? load_tracklet(d, split, tfolder, pid) : reid_fail(REID_ENOMEM, "out of memory");
      free(tfolder);
    }
    ds_listing_free(&tracks);
    free(pfolder);
  }
  ds_listing_free(&people);
  free(top);
  return st;
}

reid_status ds_load_duke(const char *root, reid_dataset *d) {
  d->video = 1;
  REID_TRY(load_split(root, "train", DS_TRAIN, d));
  REID_TRY(load_split(root, "query", DS_QUERY, d));
  return load_split(root, "gallery", DS_GALLERY, d);
}
