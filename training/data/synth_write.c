/* Writes a synthetic dataset in a public layout (papers.md §3). The plan (which clip goes
 * where, under which name) is made first, serially; the clips are then rendered in parallel,
 * each from its own RNG stream; the index files (MARS info/, VeRi name_*.txt and
 * test_track.txt) come last.
 *
 * Identities 1 .. N (train: the first N - test_identities); identity i's tracklet k is seen by
 * camera (i + k) mod C, so every identity appears in min(K, C) cameras. Test-side splits:
 *   mars    every test tracklet is in bbox_test; query_IDX = each test identity's first tracklet
 *           in each of its cameras (the gallery is all test tracks: the standard protocol)
 *   duke    each test identity's first tracklet goes to query/, the others to gallery/
 *   market  each test identity's first image in each camera goes to query/, the rest to
 *           bounding_box_test/
 *   veri    as market, with the query images also kept in image_test/ (as VeRi-776 does);
 *           test_track.txt lists each test tracklet
 * Distractors: extra identities with one gallery tracklet each (pid 0000 for mars/market, new
 * ids after N for duke/veri); junk: tracklets of pid -1 (mars "00-1", market "-1"). */
#include <errno.h>
#include <stdarg.h>
#include <matio.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "synth.h"

typedef struct clip_plan {
  int identity;           /* appearance index; N.. are distractors and junk */
  int pid, camera, order; /* order: creation index, the clip's RNG stream */
  int test, query;        /* test side; the whole tracklet is a query (mars, duke) */
  int track_no;           /* mars: per (pid, camera); duke: per pid; market: sequence */
  int time0;              /* frame number base: per camera (market, veri) or global (duke) */
  int n_frames;
  char **rel;       /* [n_frames] paths under the output folder */
  char **dup;       /* [n_frames] second copy or NULL (veri queries) */
  int *query_frame; /* [n_frames] market/veri: this image is a query */
} clip_plan;

typedef struct plan {
  clip_plan *clips;
  int n;
} plan;

static int compare_clips(const void *a, const void *b) {
  const clip_plan *x = a, *y = b;
  if (x->test != y->test) return x->test - y->test;
  if (x->pid != y->pid) return x->pid < y->pid ? -1 : 1; /* -1 ("00-1") sorts first, as its name */
  if (x->camera != y->camera) return x->camera - y->camera;
  return x->order - y->order;
}

static void plan_free(plan *p) {
  for (int i = 0; i < p->n; i++) {
    clip_plan *c = &p->clips[i];
    for (int f = 0; c->rel && f < c->n_frames; f++) free(c->rel[f]);
    for (int f = 0; c->dup && f < c->n_frames; f++) free(c->dup[f]);
    free(c->rel);
    free(c->dup);
    free(c->query_frame);
  }
  free(p->clips);
}

static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) s = NULL;
  va_end(ap);
  return s;
}

static void pid_text(reid_layout layout, int pid, char out[8]) {
  if (pid == -1)
    snprintf(out, 8, layout == REID_LAYOUT_MARS ? "00-1" : "-1");
  else
    snprintf(out, 8, "%04d", pid);
}

/* Names every frame of every clip. */
static reid_status name_frames(const synth_options *o, plan *p) {
  const int C = o->cameras;
  int *per_cam = calloc((size_t)C, sizeof(int)), global = 0;
  if (!per_cam) return reid_fail(REID_ENOMEM, "synth: out of memory");
  for (int i = 0; i < p->n; i++) {
    clip_plan *c = &p->clips[i];
    /* tracklet numbers: mars/market per (pid, camera), duke per pid; clips are sorted */
    const clip_plan *prev = i ? &p->clips[i - 1] : NULL;
    int same_pid = prev && prev->pid == c->pid && prev->test == c->test;
    if (o->layout == REID_LAYOUT_DUKE)
      c->track_no = same_pid ? prev->track_no + 1 : 1;
    else
      c->track_no = same_pid && prev->camera == c->camera ? prev->track_no + 1 : 1;
    int first_in_camera = !(same_pid && prev->camera == c->camera);
    int real_test_id = c->test && c->pid > 0 && c->identity < o->identities;
    if (o->layout == REID_LAYOUT_DUKE) {
      c->time0 = global;
      global += c->n_frames + 3;
    } else {
      c->time0 = per_cam[c->camera];
      per_cam[c->camera] += c->n_frames + 3;
    }
    if (o->layout == REID_LAYOUT_MARS) c->query = real_test_id && first_in_camera;
    if (o->layout == REID_LAYOUT_DUKE) c->query = real_test_id && c->track_no == 1;
    c->rel = calloc((size_t)c->n_frames, sizeof *c->rel);
    c->dup = calloc((size_t)c->n_frames, sizeof *c->dup);
    c->query_frame = calloc((size_t)c->n_frames, sizeof *c->query_frame);
    if (!c->rel || !c->dup || !c->query_frame) goto oom;
    char pid[8];
    pid_text(o->layout, c->pid, pid);
    for (int f = 0; f < c->n_frames; f++) {
      int is_query = real_test_id && first_in_camera && f == 0;
      switch (o->layout) {
      case REID_LAYOUT_MARS:
        c->rel[f] = format("%s/%s/%sC%dT%04dF%03d.jpg", c->test ? "bbox_test" : "bbox_train", pid,
                           pid, c->camera + 1, c->track_no, f + 1);
        break;
      case REID_LAYOUT_DUKE:
        c->rel[f] = format("%s/%s/%04d/%s_C%d_F%04d_X%05d.jpg",
                           !c->test   ? "train"
                           : c->query ? "query"
                                      : "gallery",
                           pid, c->track_no, pid, c->camera + 1, f + 1, c->time0 + f + 1);
        break;
      case REID_LAYOUT_MARKET:
        c->query_frame[f] = is_query;
        c->rel[f] = format("%s/%s_c%ds%d_%06d_01.jpg",
                           !c->test   ? "bounding_box_train"
                           : is_query ? "query"
                                      : "bounding_box_test",
                           pid, c->camera + 1, c->track_no, c->time0 + f + 1);
        break;
      default: /* veri */
        c->query_frame[f] = is_query;
        c->rel[f] = format("%s/%s_c%03d_%08d_0.jpg", c->test ? "image_test" : "image_train", pid,
                           c->camera + 1, 5 * (c->time0 + f + 1));
        if (is_query && c->rel[f]) c->dup[f] = format("image_query/%s", strchr(c->rel[f], '/') + 1);
        if (is_query && !c->dup[f]) goto oom;
        break;
      }
      if (!c->rel[f]) goto oom;
    }
  }
  free(per_cam);
  return REID_OK;
oom:
  free(per_cam);
  return reid_fail(REID_ENOMEM, "synth: out of memory naming frames");
}

static reid_status make_plan(const synth_options *o, plan *p) {
  const int N = o->identities, K = o->tracklets, C = o->cameras;
  const int n_train = N - o->test_identities;
  int total = N * K + o->distractors + o->junk;
  p->clips = calloc((size_t)total, sizeof *p->clips);
  p->n = 0;
  if (!p->clips) return reid_fail(REID_ENOMEM, "synth: out of memory for %d clips", total);
  int idx_layout = o->layout == REID_LAYOUT_MARS || o->layout == REID_LAYOUT_MARKET;
  for (int i = 0; i < N; i++)
    for (int k = 0; k < K; k++)
      p->clips[p->n] = (clip_plan){i, i + 1, (i + k) % C, p->n, i >= n_train, 0,
                                   0, 0,     o->frames,   NULL, NULL,         NULL},
      p->n++;
  for (int j = 0; j < o->distractors; j++)
    p->clips[p->n] =
        (clip_plan){
            N + j, idx_layout ? 0 : N + 1 + j, j % C, p->n, 1, 0, 0, 0, o->frames, NULL, NULL,
            NULL},
    p->n++;
  for (int j = 0; j < o->junk; j++)
    p->clips[p->n] =
        (clip_plan){
            N + o->distractors + j, -1, (j + 1) % C, p->n, 1, 0, 0, 0, o->frames, NULL, NULL, NULL},
    p->n++;
  qsort(p->clips, (size_t)p->n, sizeof *p->clips, compare_clips);
  return name_frames(o, p);
}

/* mkdir -p of the folder part of root/rel. */
reid_status synth_make_dirs(const char *root, const char *rel) {
  char *path = format("%s/%s", root, rel);
  if (!path) return reid_fail(REID_ENOMEM, "synth: out of memory");
  char *slash = strrchr(path, '/');
  reid_status st = REID_OK;
  if (slash) *slash = '\0';
  for (char *p = path + 1; st == REID_OK; p++) {
    int end = *p == '\0';
    if (*p == '/' || end) {
      *p = '\0';
      if (mkdir(path, 0755) != 0 && errno != EEXIST)
        st = reid_fail(REID_EIO, "%s: cannot create the folder (%s)", path, strerror(errno));
      if (!end) *p = '/';
    }
    if (end) break;
  }
  free(path);
  return st;
}

/* Renders one clip's frames and writes them. */
static reid_status render_clip(const synth_options *o, const synth_camera *cams, const clip_plan *c,
                               float *canvas, reid_image *img) {
  synth_identity id;
  synth_identity_make(o->kind, o->seed, c->identity, &id);
  synth_domain dom;
  synth_domain_make(o->domain, &dom);
  synth_domain_identity(&dom, &id);
  reid_rng rng;
  synth_stream(&rng, o->seed, 12, (uint64_t)c->order);
  synth_clip_look look;
  synth_clip_make(&cams[c->camera], o->kind, &rng, &look);
  for (int f = 0; f < c->n_frames; f++) {
    synth_render(&id, &cams[c->camera], &look, f, &rng, canvas, img);
    for (int copy = 0; copy < 2; copy++) {
      const char *rel = copy ? c->dup[f] : c->rel[f];
      if (!rel) continue;
      char *path = format("%s/%s", o->output, rel);
      if (!path) return reid_fail(REID_ENOMEM, "synth: out of memory");
      reid_status st = reid_image_save_jpeg(path, img, o->quality);
      free(path);
      REID_TRY(st);
    }
  }
  return REID_OK;
}

static reid_status render_all(const synth_options *o, const plan *p) {
  synth_camera *cams = malloc(sizeof *cams * (size_t)o->cameras);
  if (!cams) return reid_fail(REID_ENOMEM, "synth: out of memory");
  synth_domain dom;
  synth_domain_make(o->domain, &dom);
  for (int c = 0; c < o->cameras; c++) {
    synth_camera_make(o->seed, c, &cams[c]);
    synth_domain_camera(&dom, &cams[c]);
  }
  reid_status failed = REID_OK;
  int failed_flag = 0;
  char message[1024] = "";
#pragma omp parallel num_threads(o->threads)
  {
    float *canvas = malloc(sizeof(float) * 6 * (size_t)o->width * o->height);
    reid_image img = {0};
    reid_status st = canvas ? reid_image_alloc(o->width, o->height, &img)
                            : reid_fail(REID_ENOMEM, "synth: out of memory for a canvas");
#pragma omp for schedule(dynamic)
    for (int i = 0; i < p->n; i++) {
      if (st != REID_OK) continue;
      int stop;
#pragma omp atomic read
      stop = failed_flag;
      if (!stop) st = render_clip(o, cams, &p->clips[i], canvas, &img);
    }
    if (st != REID_OK) {
#pragma omp critical(synth_error)
      if (failed == REID_OK) {
        failed = st;
#pragma omp atomic write
        failed_flag = 1;
        snprintf(message, sizeof message, "%s", reid_last_error());
      }
    }
    reid_image_free(&img);
    free(canvas);
  }
  free(cams);
  if (failed != REID_OK) return reid_fail(failed, "%s", message);
  return REID_OK;
}

/* ------------------------------------------------------------ index files */

static const char *base(const char *rel) {
  return strrchr(rel, '/') + 1;
}

static reid_status write_text_begin(const char *root, const char *rel, FILE **f, char **path) {
  *path = format("%s/%s", root, rel);
  if (!*path) return reid_fail(REID_ENOMEM, "synth: out of memory");
  *f = fopen(*path, "w");
  if (!*f) return reid_fail(REID_EIO, "%s: cannot create (%s)", *path, strerror(errno));
  return REID_OK;
}

static reid_status write_text_end(FILE *f, char *path) {
  int bad = ferror(f);
  if (fclose(f) != 0) bad = 1;
  reid_status st = bad ? reid_fail(REID_EIO, "%s: write failed", path) : REID_OK;
  free(path);
  return st;
}

/* A double matrix [rows, cols] (row-major in, column-major in the file) as MATLAB v5. */
static reid_status write_mat(const char *root, const char *rel, const char *var, const double *m,
                             int rows, int cols) {
  char *path = format("%s/%s", root, rel);
  double *colmajor = malloc(sizeof *colmajor * ((size_t)rows * cols + 1));
  if (!path || !colmajor) {
    free(path);
    free(colmajor);
    return reid_fail(REID_ENOMEM, "synth: out of memory");
  }
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) colmajor[r + (size_t)c * rows] = m[(size_t)r * cols + c];
  reid_status st = REID_OK;
  mat_t *mat = Mat_CreateVer(path, "MATLAB 5.0 MAT-file, written by reid-train synth", MAT_FT_MAT5);
  if (!mat) {
    st = reid_fail(REID_EIO, "%s: cannot create the .mat file", path);
  } else {
    size_t dims[2] = {(size_t)rows, (size_t)cols};
    matvar_t *v = Mat_VarCreate(var, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, colmajor, 0);
    if (!v || Mat_VarWrite(mat, v, MAT_COMPRESSION_NONE) != 0)
      st = reid_fail(REID_EIO, "%s: cannot write '%s'", path, var);
    Mat_VarFree(v);
    if (Mat_Close(mat) != 0 && st == REID_OK) st = reid_fail(REID_EIO, "%s: write failed", path);
  }
  free(colmajor);
  free(path);
  return st;
}

/* info/{train,test}_name.txt, info/tracks_{train,test}_info.mat, info/query_IDX.mat */
static reid_status write_mars_info(const synth_options *o, const plan *p) {
  REID_TRY(synth_make_dirs(o->output, "info/x"));
  double *rows = malloc(sizeof *rows * 4 * (size_t)p->n),
         *query = malloc(sizeof *query * (size_t)p->n);
  reid_status st = rows && query ? REID_OK : reid_fail(REID_ENOMEM, "synth: out of memory");
  for (int side = 0; side < 2 && st == REID_OK; side++) {
    FILE *f;
    char *path;
    char rel[64];
    snprintf(rel, sizeof rel, "info/%s_name.txt", side ? "test" : "train");
    st = write_text_begin(o->output, rel, &f, &path);
    if (st != REID_OK) break;
    int n_rows = 0, n_query = 0, line = 0;
    for (int i = 0; i < p->n; i++) {
      const clip_plan *c = &p->clips[i];
      if (c->test != side) continue;
      for (int fr = 0; fr < c->n_frames; fr++) fprintf(f, "%s\n", base(c->rel[fr]));
      double *row = rows + 4 * n_rows;
      row[0] = line + 1, row[1] = line + c->n_frames, row[2] = c->pid, row[3] = c->camera + 1;
      line += c->n_frames;
      n_rows++;
      if (c->query) query[n_query++] = n_rows;
    }
    st = write_text_end(f, path);
    snprintf(rel, sizeof rel, "info/tracks_%s_info.mat", side ? "test" : "train");
    char var[32];
    snprintf(var, sizeof var, "track_%s_info", side ? "test" : "train");
    if (st == REID_OK) st = write_mat(o->output, rel, var, rows, n_rows, 4);
    if (st == REID_OK && side)
      st = write_mat(o->output, "info/query_IDX.mat", "query_IDX", query, 1, n_query);
  }
  free(rows);
  free(query);
  return st;
}

/* name_train.txt, name_query.txt, name_test.txt, test_track.txt */
static reid_status write_veri_lists(const synth_options *o, const plan *p) {
  static const char *const lists[4] = {"name_train.txt", "name_query.txt", "name_test.txt",
                                       "test_track.txt"};
  for (int l = 0; l < 4; l++) {
    FILE *f;
    char *path;
    REID_TRY(write_text_begin(o->output, lists[l], &f, &path));
    for (int i = 0; i < p->n; i++) {
      const clip_plan *c = &p->clips[i];
      if (c->test != (l > 0)) continue;
      if (l == 3) fprintf(f, "%s ", base(c->rel[0]));
      for (int fr = 0; fr < c->n_frames; fr++) {
        if (l == 1 && c->dup[fr]) fprintf(f, "%s\n", base(c->dup[fr]));
        if (l == 0 || l == 2) fprintf(f, "%s\n", base(c->rel[fr]));
        if (l == 3) fprintf(f, "%s ", base(c->rel[fr]));
      }
      if (l == 3) fprintf(f, "\n");
    }
    REID_TRY(write_text_end(f, path));
  }
  return REID_OK;
}

/* ------------------------------------------------------------ entry */

static reid_status check_options(const synth_options *o) {
  if (!o->output || !o->output[0]) return reid_fail(REID_EINVAL, "synth: no output folder");
  if (o->layout < REID_LAYOUT_MARS || o->layout > REID_LAYOUT_VERI)
    return reid_fail(REID_EINVAL, "synth: pick a layout (mars, duke, market or veri)");
  int max_cams = o->layout == REID_LAYOUT_VERI ? 999 : 9;
  if (o->cameras < 2 || o->cameras > max_cams)
    return reid_fail(REID_EINVAL, "synth: %d cameras, the %s layout takes 2 .. %d", o->cameras,
                     reid_layout_name(o->layout), max_cams);
  if (o->identities < 2 || o->identities > 9000)
    return reid_fail(REID_EINVAL, "synth: %d identities, expected 2 .. 9000", o->identities);
  if (o->test_identities < 1 || o->test_identities >= o->identities)
    return reid_fail(REID_EINVAL, "synth: %d test identities of %d leaves no train or no test side",
                     o->test_identities, o->identities);
  if (o->tracklets < 2 || o->tracklets > 999)
    return reid_fail(REID_EINVAL,
                     "synth: %d tracklets per identity, expected 2 .. 999 (a query "
                     "needs a match in another camera)",
                     o->tracklets);
  if (o->frames < 1 || o->frames > 999)
    return reid_fail(REID_EINVAL, "synth: %d frames per tracklet, expected 1 .. 999", o->frames);
  if (o->height < 16 || o->width < 16 || o->height > 2048 || o->width > 2048)
    return reid_fail(REID_EINVAL, "synth: image size %dx%d outside 16 .. 2048", o->height,
                     o->width);
  if (o->distractors < 0 || o->distractors > 9000 || o->junk < 0 || o->junk > 9000)
    return reid_fail(REID_EINVAL, "synth: distractors/junk counts must be in 0 .. 9000");
  if (o->junk > 0 && o->layout != REID_LAYOUT_MARS && o->layout != REID_LAYOUT_MARKET)
    return reid_fail(REID_EINVAL,
                     "synth: junk (pid -1) exists only in the mars and market layouts");
  if (o->identities + o->distractors > 9999)
    return reid_fail(REID_EINVAL, "synth: identities + distractors must fit in 4 digits");
  if (o->quality < 1 || o->quality > 100 || o->threads < 1)
    return reid_fail(REID_EINVAL, "synth: quality must be 1 .. 100 and threads >= 1");
  return REID_OK;
}

/* The output folder must not exist or be empty: never mix two datasets. */
reid_status synth_prepare_output(const char *out) {
  struct stat sb;
  if (stat(out, &sb) == 0) {
    if (!S_ISDIR(sb.st_mode)) return reid_fail(REID_EIO, "%s: exists and is not a folder", out);
    if (rmdir(out) != 0) {
      if (errno == ENOTEMPTY || errno == EEXIST)
        return reid_fail(REID_EIO, "%s: exists and is not empty (synth writes a fresh folder)",
                         out);
      return reid_fail(REID_EIO, "%s: cannot use the folder (%s)", out, strerror(errno));
    }
  }
  return synth_make_dirs(out, "x"); /* with its parents */
}

reid_status synth_generate(const synth_options *o, synth_stats *stats) {
  REID_TRY(check_options(o));
  REID_TRY(synth_prepare_output(o->output));
  plan p = {0};
  reid_status st = make_plan(o, &p);
  const char *last_dir = NULL;
  size_t last_len = 0;
  for (int i = 0; st == REID_OK && i < p.n; i++)
    for (int f = 0; st == REID_OK && f < p.clips[i].n_frames; f++)
      for (int copy = 0; copy < 2 && st == REID_OK; copy++) {
        const char *rel = copy ? p.clips[i].dup[f] : p.clips[i].rel[f];
        if (!rel) continue;
        size_t len = (size_t)(strrchr(rel, '/') - rel);
        if (last_dir && len == last_len && !strncmp(rel, last_dir, len)) continue;
        st = synth_make_dirs(o->output, rel);
        last_dir = rel, last_len = len;
      }
  if (st == REID_OK) st = render_all(o, &p);
  if (st == REID_OK && o->layout == REID_LAYOUT_MARS) st = write_mars_info(o, &p);
  if (st == REID_OK && o->layout == REID_LAYOUT_VERI) st = write_veri_lists(o, &p);
  if (st == REID_OK && stats) {
    memset(stats, 0, sizeof *stats);
    int video = o->layout == REID_LAYOUT_MARS || o->layout == REID_LAYOUT_DUKE;
    for (int i = 0; i < p.n; i++) {
      const clip_plan *c = &p.clips[i];
      for (int f = 0; f < c->n_frames; f++) {
        stats->images += 1 + (c->dup[f] != NULL);
        if (video) continue;
        if (!c->test)
          stats->train_samples++;
        else if (c->query_frame[f])
          stats->query_samples++, stats->gallery_samples += o->layout == REID_LAYOUT_VERI;
        else
          stats->gallery_samples++;
      }
      if (!video) continue;
      if (!c->test)
        stats->train_samples++;
      else if (o->layout == REID_LAYOUT_MARS)
        stats->gallery_samples++, stats->query_samples += c->query;
      else if (c->query)
        stats->query_samples++;
      else
        stats->gallery_samples++;
    }
  }
  plan_free(&p);
  return st;
}
