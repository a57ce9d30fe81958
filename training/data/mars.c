/* MARS (papers.md §3):
 *   bbox_train/PPPP/PPPPCcTttttFfff.jpg, bbox_test/PPPP/...   (PPPP "00-1": junk, "0000":
 * distractor) info/train_name.txt, info/test_name.txt   frame names, one a line
 *   info/tracks_train_info.mat (track_train_info), info/tracks_test_info.mat (track_test_info):
 *       N x 4 matrices, rows [start end pid camid]; start/end 1-based lines of the name list
 *   info/query_IDX.mat (query_IDX): 1-based rows of the test tracks that are queries.
 * Query = the query_IDX tracks; gallery = every test track (the standard protocol keeps the
 * queries in the gallery: same identity in the same camera is junk at evaluation).
 * Junk tracks (pid -1) are left out of the train split and kept in the gallery. */
#include <matio.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_build.h"

/* matio reports through a global logger; keep its last message for our error instead of stderr. */
static _Thread_local char matio_message[256];
static void matio_log(int level, char *message) {
  (void)level;
  snprintf(matio_message, sizeof matio_message, "%s", message ? message : "");
}
static pthread_once_t matio_once = PTHREAD_ONCE_INIT;
static void matio_init(void) {
  Mat_LogInitFunc("reid", matio_log);
}

/* Reads numeric variable `var` of a MAT file as doubles, row-major [rows, cols].
 * cols_wanted > 0: must be rows x cols_wanted; 0: a vector (1 x n or n x 1), returned as n x 1. */
static reid_status read_matrix(const char *path, const char *var, int cols_wanted, double **out,
                               int *rows_out) {
  pthread_once(&matio_once, matio_init);
  *out = NULL;
  if (!ds_is_file(path)) return reid_fail(REID_EIO, "%s: missing file", path);
  REID_TRY(ds_check_mat(path)); /* sizes matio would trust */
  matio_message[0] = '\0';
  mat_t *mat = Mat_Open(path, MAT_ACC_RDONLY);
  if (!mat)
    return reid_fail(REID_EFORMAT, "%s: not a readable MATLAB .mat file %s", path, matio_message);
  matvar_t *v = Mat_VarRead(mat, var);
  reid_status st = REID_OK;
  if (!v) {
    st = reid_fail(REID_EFORMAT, "%s: no readable variable '%s' %s", path, var, matio_message);
    goto done;
  }
  int numeric = v->class_type >= MAT_C_DOUBLE && v->class_type <= MAT_C_UINT64;
  if (!numeric || v->isComplex || v->rank != 2 || !v->data) {
    st = reid_fail(REID_EFORMAT, "%s: '%s' is not a real numeric matrix", path, var);
    goto done;
  }
  size_t r = v->dims[0], c = v->dims[1];
  if (cols_wanted > 0 && c != (size_t)cols_wanted) {
    st = reid_fail(REID_EFORMAT, "%s: '%s' is %zu x %zu, expected N x %d", path, var, r, c,
                   cols_wanted);
    goto done;
  }
  if (cols_wanted == 0) {
    if (r != 1 && c != 1) {
      st = reid_fail(REID_EFORMAT, "%s: '%s' is %zu x %zu, expected a vector", path, var, r, c);
      goto done;
    }
    r = r * c;
    c = 1;
  }
  if (r == 0 || r > 100000000) {
    st = reid_fail(REID_EFORMAT, "%s: '%s' has %zu rows", path, var, r);
    goto done;
  }
  double *m = malloc(sizeof *m * r * c);
  if (!m) {
    st = reid_fail(REID_ENOMEM, "%s: out of memory for '%s'", path, var);
    goto done;
  }
  for (size_t i = 0; i < r; i++)
    for (size_t j = 0; j < c; j++) {
      size_t k = i + j * r; /* MATLAB is column-major */
      double x;
      switch (v->class_type) {
      case MAT_C_DOUBLE: x = ((const double *)v->data)[k]; break;
      case MAT_C_SINGLE: x = ((const float *)v->data)[k]; break;
      case MAT_C_INT8: x = ((const int8_t *)v->data)[k]; break;
      case MAT_C_UINT8: x = ((const uint8_t *)v->data)[k]; break;
      case MAT_C_INT16: x = ((const int16_t *)v->data)[k]; break;
      case MAT_C_UINT16: x = ((const uint16_t *)v->data)[k]; break;
      case MAT_C_INT32: x = ((const int32_t *)v->data)[k]; break;
      case MAT_C_UINT32: x = ((const uint32_t *)v->data)[k]; break;
      case MAT_C_INT64: x = (double)((const int64_t *)v->data)[k]; break;
      default: x = (double)((const uint64_t *)v->data)[k]; break;
      }
      if (!isfinite(x) || x != floor(x) || fabs(x) > 2e9) {
        free(m);
        st = reid_fail(REID_EFORMAT, "%s: '%s' row %zu column %zu holds %g, not an integer", path,
                       var, i + 1, j + 1, x);
        goto done;
      }
      m[i * c + j] = x;
    }
  *out = m;
  *rows_out = (int)r;
done:
  Mat_VarFree(v);
  Mat_Close(mat);
  return st;
}

/* PPPPCcTttttFfff.jpg -> pid (-1 for "00-1"), camera (1-based). */
static int parse_name(const char *name, int *pid, int *cam) {
  if (strlen(name) < 8) return 0;
  *pid = !strncmp(name, "00-1", 4) ? -1 : ds_digits(name, 4);
  const char *p = name + 4;
  if (*pid < -1 || *p++ != 'C') return 0;
  if ((*cam = ds_number(&p)) < 1 || *p++ != 'T' || ds_number(&p) < 0 || *p++ != 'F' ||
      ds_number(&p) < 0)
    return 0;
  return !strcmp(p, ".jpg");
}

/* The identity folders of bbox_*, each listed the first time a track needs it. */
typedef struct folder_cache {
  char *path;
  ds_listing folders;
  ds_listing *files; /* [folders.count], count < 0: not listed yet */
} folder_cache;

static void cache_free(folder_cache *c) {
  if (c->files)
    for (int i = 0; i < c->folders.count; i++) ds_listing_free(&c->files[i]);
  free(c->files);
  ds_listing_free(&c->folders);
  free(c->path);
}

static reid_status cache_open(const char *root, const char *sub, folder_cache *c) {
  memset(c, 0, sizeof *c);
  if (!(c->path = ds_join(root, sub, NULL))) return reid_fail(REID_ENOMEM, "out of memory");
  if (!ds_is_folder(c->path)) return reid_fail(REID_EIO, "%s: missing folder", c->path);
  REID_TRY(ds_list(c->path, 'd', &c->folders));
  c->files = calloc((size_t)c->folders.count + 1, sizeof *c->files);
  if (!c->files) return reid_fail(REID_ENOMEM, "out of memory");
  for (int i = 0; i < c->folders.count; i++) c->files[i].count = -1;
  return REID_OK;
}

static int folder_index(const ds_listing *l, const char *name) {
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

/* The listing of identity folder `folder` (a frame name's first four characters), or NULL. */
static reid_status cache_get(folder_cache *c, const char *folder, const ds_listing **out) {
  *out = NULL;
  int i = folder_index(&c->folders, folder);
  if (i < 0) return REID_OK;
  if (c->files[i].count < 0) {
    char *p = ds_join(c->path, folder, NULL);
    if (!p) return reid_fail(REID_ENOMEM, "out of memory");
    reid_status st = ds_list(p, 'f', &c->files[i]);
    free(p);
    if (st != REID_OK) {
      c->files[i].count = -1;
      return st;
    }
  }
  *out = &c->files[i];
  return REID_OK;
}

/* One side (train or test): reads the names and tracks, adds the frames and, for each track
 * row, a sample (train) or a gallery sample (test); row_sample[r] = its index or -1. */
static reid_status load_side(const char *root, reid_dataset *d, int test, int **row_sample,
                             int *n_rows) {
  const char *side = test ? "test" : "train";
  char names_rel[64], tracks_rel[64], var[32], bbox[32];
  snprintf(names_rel, sizeof names_rel, "info/%s_name.txt", side);
  snprintf(tracks_rel, sizeof tracks_rel, "info/tracks_%s_info.mat", side);
  snprintf(var, sizeof var, "track_%s_info", side);
  snprintf(bbox, sizeof bbox, "bbox_%s", side);
  char *names_path = ds_join(root, names_rel, NULL), *tracks_path = ds_join(root, tracks_rel, NULL);
  ds_lines names = {0};
  int *pid = NULL, *cam = NULL, *rows_map = NULL;
  double *tracks = NULL;
  int rows = 0;
  folder_cache cache = {0};
  reid_status st = names_path && tracks_path ? REID_OK : reid_fail(REID_ENOMEM, "out of memory");
  if (st == REID_OK) st = ds_read_lines(names_path, &names);
  if (st == REID_OK && names.count == 0)
    st = reid_fail(REID_EFORMAT, "%s: no frame names", names_path);
  if (st == REID_OK) {
    pid = malloc(sizeof *pid * (size_t)names.count);
    cam = malloc(sizeof *cam * (size_t)names.count);
    if (!pid || !cam) st = reid_fail(REID_ENOMEM, "%s: out of memory", names_path);
  }
  for (int i = 0; st == REID_OK && i < names.count; i++)
    if (!parse_name(names.lines[i], &pid[i], &cam[i]))
      st = reid_fail(REID_EFORMAT, "%s:%d: '%s' is not a MARS frame name (PPPPCcTttttFfff.jpg)",
                     names_path, names.lineno[i], names.lines[i]);
  if (st == REID_OK) st = read_matrix(tracks_path, var, 4, &tracks, &rows);
  if (st == REID_OK && !(rows_map = malloc(sizeof *rows_map * (size_t)rows)))
    st = reid_fail(REID_ENOMEM, "out of memory");
  if (st == REID_OK) st = cache_open(root, bbox, &cache);
  for (int r = 0; st == REID_OK && r < rows; r++) {
    const double *row = tracks + 4 * r;
    int start = (int)row[0], end = (int)row[1], tpid = (int)row[2], tcam = (int)row[3];
    rows_map[r] = -1;
    if (start < 1 || end < start || end > names.count) {
      st = reid_fail(REID_EFORMAT, "%s: row %d: frames %d..%d outside the %d names of %s",
                     tracks_path, r + 1, start, end, names.count, names_rel);
      break;
    }
    if (tcam < 1) {
      st = reid_fail(REID_EFORMAT, "%s: row %d: camera %d (cameras count from 1)", tracks_path,
                     r + 1, tcam);
      break;
    }
    int first = d->n_frames;
    for (int i = start - 1; st == REID_OK && i < end; i++) {
      const char *name = names.lines[i];
      if (pid[i] != tpid || cam[i] != tcam) {
        st = reid_fail(REID_EFORMAT,
                       "%s: row %d: frame %s (line %d of %s) is person %d camera %d, the track "
                       "says person %d camera %d",
                       tracks_path, r + 1, name, names.lineno[i], names_rel, pid[i], cam[i], tpid,
                       tcam);
        break;
      }
      char folder[5];
      memcpy(folder, name, 4), folder[4] = '\0';
      const ds_listing *files;
      st = cache_get(&cache, folder, &files);
      if (st != REID_OK) break;
      if (!files) {
        st = reid_fail(REID_EIO, "%s/%s: missing folder (frame %s of %s row %d)", cache.path,
                       folder, name, tracks_rel, r + 1);
        break;
      }
      if (!ds_listing_has(files, name))
        ds_skip(d, cache.path, folder, name);
      else
        st = ds_add_frame(d, cache.path, folder, name, NULL);
    }
    int n = d->n_frames - first;
    if (st != REID_OK || n == 0) continue;
    if (!test && tpid < 0) continue; /* junk never trains */
    reid_split *split = test ? &d->gallery : &d->train;
    rows_map[r] = split->count;
    st = ds_add_sample(d, test ? DS_GALLERY : DS_TRAIN, tpid, tcam - 1, first, n);
  }
  cache_free(&cache);
  ds_lines_free(&names);
  free(pid);
  free(cam);
  free(tracks);
  free(names_path);
  free(tracks_path);
  if (st != REID_OK) {
    free(rows_map);
    return st;
  }
  *row_sample = rows_map;
  *n_rows = rows;
  return REID_OK;
}

reid_status ds_load_mars(const char *root, reid_dataset *d) {
  d->video = 1;
  int *train_rows = NULL, *test_rows = NULL, n_train = 0, n_test = 0;
  double *query = NULL;
  int n_query = 0;
  char *query_path = ds_join(root, "info/query_IDX.mat", NULL);
  reid_status st = query_path ? REID_OK : reid_fail(REID_ENOMEM, "out of memory");
  if (st == REID_OK) st = load_side(root, d, 0, &train_rows, &n_train);
  if (st == REID_OK) st = load_side(root, d, 1, &test_rows, &n_test);
  if (st == REID_OK) st = read_matrix(query_path, "query_IDX", 0, &query, &n_query);
  for (int q = 0; st == REID_OK && q < n_query; q++) {
    int row = (int)query[q];
    if (row < 1 || row > n_test) {
      st =
          reid_fail(REID_EFORMAT, "%s: entry %d is %d, outside the %d rows of tracks_test_info.mat",
                    query_path, q + 1, row, n_test);
      break;
    }
    int g = test_rows[row - 1];
    if (g < 0) continue; /* every frame of that track was missing */
    reid_sample s = d->gallery.samples[g];
    st = ds_add_sample(d, DS_QUERY, s.pid, s.camid, s.first_frame, s.n_frames);
  }
  free(train_rows);
  free(test_rows);
  free(query);
  free(query_path);
  return st;
}
