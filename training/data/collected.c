/* Tracklets collected on site by `reidembed collect-location=DIR` (README "Collected
 * tracklets"):
 *
 *   DIR/<stream>/index.jsonl            one JSON line per finished tracklet (collected or dropped)
 *   DIR/<stream>/<serial>/<frame>.jpg   the crops of one tracklet, named by frame index
 *
 * A stream is a camera (camid = the stream's position among the sorted stream folders) and
 * a tracklet folder is an identity of its own (pid = 1, 2, ... in stream, then folder order).
 * Every tracklet goes to the train split; query and gallery are empty (nobody labelled the
 * people, so there is nothing to evaluate against). Tracklet folders are what counts: one
 * that a user deleted to clean the data is simply gone, one with no .jpg is ignored. The
 * index adds what the folders cannot say: which tracklets were seen together in one frame
 * (different people by construction), kept as distinct_pairs. A malformed index line (a
 * full disk can cut the last one) is skipped and counted like an unreadable image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_build.h"
#include "json.h"

/* The tracklet folders of one stream and the sample each became. */
typedef struct stream_tracks {
  ds_listing folders;
  int *sample; /* [folders.count] train sample index, -1: no crops */
} stream_tracks;

static int find_folder(const ds_listing *l, const char *name) {
  int lo = 0, hi = l->count - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2, c = strcmp(l->names[mid], name);
    if (c == 0) return mid;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return -1;
}

/* One tracklet folder: its .jpg crops in name (= frame) order, one train sample. */
static reid_status load_tracklet(reid_dataset *d, const char *folder, int pid, int camid,
                                 int *sample) {
  *sample = -1;
  ds_listing files;
  REID_TRY(ds_list(folder, 'f', &files));
  int first = d->n_frames;
  reid_status st = REID_OK;
  for (int i = 0; st == REID_OK && i < files.count; i++)
    if (ds_ends_with(files.names[i], ".jpg"))
      st = ds_add_frame(d, folder, files.names[i], NULL, NULL);
  int n = d->n_frames - first;
  if (st == REID_OK && n > 0) {
    *sample = d->train.count;
    st = ds_add_sample(d, DS_TRAIN, pid, camid, first, n);
  }
  ds_listing_free(&files);
  return st;
}

/* The "together_with" lists of a stream's index -> distinct pairs of train samples. */
static reid_status read_index(reid_dataset *d, const char *stream_dir, const stream_tracks *t) {
  char *path = ds_join(stream_dir, "index.jsonl", NULL);
  if (!path) return reid_fail(REID_ENOMEM, "out of memory");
  ds_lines lines = {0};
  reid_status st = ds_is_file(path) ? ds_read_lines(path, &lines) : REID_OK;
  for (int i = 0; st == REID_OK && i < lines.count; i++) {
    json_value *v = NULL;
    if (json_parse(lines.lines[i], strlen(lines.lines[i]), &v) != REID_OK ||
        v->type != JSON_OBJECT) {
      char where[32];
      snprintf(where, sizeof where, "line %d", lines.lineno[i]);
      ds_skip(d, path, where, NULL);
      json_free(v);
      continue;
    }
    const json_value *dir = json_get(v, "dir"), *with = json_get(v, "together_with");
    int self = -1;
    if (dir && dir->type == JSON_STRING) {
      int f = find_folder(&t->folders, dir->str);
      if (f >= 0) self = t->sample[f];
    }
    for (size_t k = 0; self >= 0 && with && with->type == JSON_ARRAY && k < with->count; k++) {
      const json_value *o = &with->items[k];
      int f = o->type == JSON_STRING ? find_folder(&t->folders, o->str) : -1;
      if (f < 0 || t->sample[f] < 0 || t->sample[f] == self) continue;
      st = ds_add_distinct_pair(d, self, t->sample[f]);
      if (st != REID_OK) break;
    }
    json_free(v);
  }
  ds_lines_free(&lines);
  free(path);
  return st;
}

static reid_status load_stream(reid_dataset *d, const char *root, const char *stream, int camid,
                               int *next_pid) {
  char *dir = ds_join(root, stream, NULL);
  if (!dir) return reid_fail(REID_ENOMEM, "out of memory");
  stream_tracks t = {0};
  reid_status st = ds_list(dir, 'd', &t.folders);
  if (st == REID_OK && !(t.sample = malloc(sizeof *t.sample * (size_t)(t.folders.count + 1))))
    st = reid_fail(REID_ENOMEM, "%s: out of memory", dir);
  for (int i = 0; st == REID_OK && i < t.folders.count; i++) {
    char *folder = ds_join(dir, t.folders.names[i], NULL);
    st = folder ? load_tracklet(d, folder, *next_pid, camid, &t.sample[i])
                : reid_fail(REID_ENOMEM, "out of memory");
    if (st == REID_OK && t.sample[i] >= 0) ++*next_pid;
    free(folder);
  }
  if (st == REID_OK) st = read_index(d, dir, &t);
  free(t.sample);
  ds_listing_free(&t.folders);
  free(dir);
  return st;
}

int ds_is_collected(const char *root) {
  ds_listing streams;
  if (ds_list(root, 'd', &streams) != REID_OK) return 0;
  int yes = 0;
  for (int i = 0; !yes && i < streams.count; i++) {
    char *index = ds_join(root, streams.names[i], "index.jsonl");
    yes = index && ds_is_file(index);
    free(index);
  }
  ds_listing_free(&streams);
  return yes;
}

reid_status ds_load_collected(const char *root, reid_dataset *d) {
  d->video = 1;
  ds_listing streams;
  REID_TRY(ds_list(root, 'd', &streams));
  reid_status st = REID_OK;
  int next_pid = 1, camid = 0;
  for (int i = 0; st == REID_OK && i < streams.count; i++) {
    char *index = ds_join(root, streams.names[i], "index.jsonl");
    int is_stream = index && ds_is_file(index);
    free(index);
    if (is_stream) st = load_stream(d, root, streams.names[i], camid++, &next_pid);
  }
  if (st == REID_OK && camid == 0)
    st = reid_fail(REID_EFORMAT,
                   "%s: no collected stream (a folder holding index.jsonl, as reidembed "
                   "collect-location= writes them)",
                   root);
  ds_listing_free(&streams);
  return st;
}
