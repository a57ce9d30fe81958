/* reidembed's findings against ground truth (scene_eval.h). */
#include "scene_eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "image.h"
#include "json.h"
#include "metrics.h"
#include "npy.h"
#include "video.h"

static char *join(const char *dir, const char *rel) {
  char *s = NULL;
  if (rel[0] == '/' || !dir || !*dir) return strdup(rel);
  return asprintf(&s, "%s/%s", dir, rel) < 0 ? NULL : s;
}

static const char *base_name(const char *path) {
  const char *b = strrchr(path, '/');
  return b ? b + 1 : path;
}

static reid_status add_camera(scene_eval *e, const char *name, char *video, char *tracker,
                              char *truth) {
  scene_camera_in *c = realloc(e->cameras, sizeof *c * (size_t)(e->n_cameras + 1));
  if (!c) return reid_fail(REID_ENOMEM, "scene-eval: out of memory");
  e->cameras = c;
  c = &e->cameras[e->n_cameras++];
  memset(c, 0, sizeof *c);
  c->name = strdup(name), c->video = video, c->tracker = tracker, c->truth = truth;
  if (!c->name || !video || !tracker) return reid_fail(REID_ENOMEM, "scene-eval: out of memory");
  REID_TRY(reid_mot_load(tracker, &c->tracker_rows));
  if (truth) REID_TRY(reid_mot_load(truth, &c->truth_rows));
  return REID_OK;
}

reid_status scene_eval_read_scene(scene_eval *e, const char *dir) {
  char *path = join(dir, "scene.txt");
  if (!path) return reid_fail(REID_ENOMEM, "scene-eval: out of memory");
  FILE *f = fopen(path, "r");
  if (!f) {
    reid_status st =
        reid_fail(REID_EIO, "%s: cannot open (not a reid-train synth --scene folder?)", path);
    free(path);
    return st;
  }
  char line[4096], a[1024], b[1024], c[1024], kind[64];
  int k, person, lineno = 0;
  reid_status st = REID_OK;
  while (st == REID_OK && fgets(line, sizeof line, f)) {
    lineno++;
    double fps;
    if (line[0] == '#' || line[0] == '\n') continue;
    if (sscanf(line, "fps %lf", &fps) == 1) {
      e->fps = fps;
    } else if (sscanf(line, "camera %d %1023s %1023s %1023s %63s", &k, a, b, c, kind) == 5) {
      char name[32];
      snprintf(name, sizeof name, "cam%d", k);
      st = add_camera(e, name, join(dir, a), join(dir, c), join(dir, b));
      e->has_truth = 1;
    } else if (sscanf(line, "query %1023s %d", a, &person) == 2) {
      /* the persons of the query photos, matched by file name in read_queries */
      scene_query *q = realloc(e->queries, sizeof *q * (size_t)(e->n_queries + 1));
      if (!q) st = reid_fail(REID_ENOMEM, "scene-eval: out of memory");
      if (st == REID_OK) {
        e->queries = q;
        q = &e->queries[e->n_queries++];
        memset(q, 0, sizeof *q);
        q->path = join(dir, a);
        q->name = q->path ? strdup(base_name(q->path)) : NULL;
        q->person = person;
        if (!q->name) st = reid_fail(REID_ENOMEM, "scene-eval: out of memory");
      }
    }
  }
  fclose(f);
  if (st == REID_OK && (e->n_cameras < 1 || e->fps <= 0))
    st = reid_fail(REID_EFORMAT, "%s: no cameras or no fps", path);
  free(path);
  return st;
}

reid_status scene_eval_add_camera(scene_eval *e, const char *spec) {
  const char *eq = strchr(spec, '=');
  if (!eq || eq == spec)
    return reid_fail(REID_EINVAL, "--camera '%s': expected NAME=VIDEO,TRACKER_MOT[,TRUTH_MOT]",
                     spec);
  char name[256];
  snprintf(name, sizeof name, "%.*s", (int)(eq - spec), spec);
  char *rest = strdup(eq + 1);
  if (!rest) return reid_fail(REID_ENOMEM, "scene-eval: out of memory");
  char *video = strtok(rest, ","), *tracker = strtok(NULL, ","), *truth = strtok(NULL, ",");
  reid_status st = REID_OK;
  if (!video || !tracker)
    st = reid_fail(REID_EINVAL, "--camera '%s': expected NAME=VIDEO,TRACKER_MOT[,TRUTH_MOT]", spec);
  else
    st = add_camera(e, name, strdup(video), strdup(tracker), truth ? strdup(truth) : NULL);
  if (st == REID_OK && truth) e->has_truth = 1;
  free(rest);
  return st;
}

reid_status scene_eval_read_queries(scene_eval *e, const char *list, const char *npy) {
  int ndim;
  int64_t shape[NPY_MAX_DIMS];
  float *emb = NULL;
  REID_TRY(npy_read_f32(npy, &ndim, shape, &emb));
  unsigned char *text = NULL;
  size_t size = 0;
  reid_status st = reid_read_file(list, &text, &size);
  if (st == REID_OK) { /* NUL-terminated for strtok_r */
    unsigned char *z = realloc(text, size + 1);
    if (z)
      z[size] = '\0', text = z;
    else
      st = reid_fail(REID_ENOMEM, "scene-eval: out of memory");
  }
  char *dir = strdup(list);
  if (dir) *(char *)base_name(dir) = '\0';
  int n = 0;
  for (char *save = NULL, *line = st == REID_OK ? strtok_r((char *)text, "\n", &save) : NULL;
       line && st == REID_OK; line = strtok_r(NULL, "\n", &save)) {
    if (!*line || line[0] == '#') continue;
    if (ndim != 2 || n >= shape[0]) {
      st = reid_fail(REID_EFORMAT, "%s: has fewer rows than %s lists images", npy, list);
      break;
    }
    /* a query of the scene (by file name), else a new one of unknown person */
    scene_query *q = NULL;
    for (int i = 0; i < e->n_queries && !q; i++)
      if (!strcmp(e->queries[i].name, base_name(line)) && !e->queries[i].embedding)
        q = &e->queries[i];
    if (!q) {
      scene_query *grown = realloc(e->queries, sizeof *q * (size_t)(e->n_queries + 1));
      if (!grown) {
        st = reid_fail(REID_ENOMEM, "scene-eval: out of memory");
        break;
      }
      e->queries = grown;
      q = &e->queries[e->n_queries++];
      memset(q, 0, sizeof *q);
      q->path = join(dir, line);
      q->name = strdup(base_name(line));
    }
    e->dim = (int)shape[1];
    q->embedding = malloc(sizeof(float) * (size_t)e->dim);
    if (!q->embedding || !q->name || !q->path) {
      st = reid_fail(REID_ENOMEM, "scene-eval: out of memory");
      break;
    }
    memcpy(q->embedding, emb + (size_t)n * e->dim, sizeof(float) * (size_t)e->dim);
    n++;
  }
  if (st == REID_OK && n != (ndim == 2 ? shape[0] : -1))
    st = reid_fail(REID_EFORMAT, "%s: %d images listed in %s, not one per row", npy, n, list);
  /* queries of the scene without a photo in the list take no part */
  int kept = 0;
  for (int i = 0; i < e->n_queries; i++) {
    if (e->queries[i].embedding) {
      e->queries[kept++] = e->queries[i];
    } else {
      free(e->queries[i].path);
      free(e->queries[i].name);
    }
  }
  e->n_queries = kept;
  free(dir);
  free(text);
  free(emb);
  return st;
}

static int frame_of(const scene_eval *e, uint64_t pts) {
  return (int)llround((double)pts * e->fps / 1e9) + 1;
}

static float iou(const float *a, const reid_mot_row *b) {
  float ix = fminf(a[0] + a[2], b->x + b->w) - fmaxf(a[0], b->x);
  float iy = fminf(a[1] + a[3], b->y + b->h) - fmaxf(a[1], b->y);
  if (ix <= 0 || iy <= 0) return 0;
  float inter = ix * iy;
  return inter / (a[2] * a[3] + b->w * b->h - inter);
}

/* The tracker rows of t: its middle box, and its person by majority of best-overlap votes. */
static void label_tracklet(const scene_eval *e, scene_tracklet *t) {
  const scene_camera_in *c = &e->cameras[t->camera];
  int f0 = frame_of(e, t->first_pts), f1 = frame_of(e, t->last_pts), rows = 0;
  int cap = 64, n_votes = 0, *votes = malloc(sizeof(int) * 2 * (size_t)cap);
  for (int f = f0; f <= f1; f++) {
    const reid_mot_row *r;
    int n = reid_mot_frame_rows(c->tracker_rows, f, &r);
    for (int i = 0; i < n; i++) {
      if (r[i].id != t->track) continue;
      float box[4] = {r[i].x, r[i].y, r[i].w, r[i].h};
      if (rows++ == 0 || f <= (f0 + f1) / 2) t->mid_frame = f, memcpy(t->box, box, sizeof box);
      if (!c->truth_rows || !votes) continue;
      const reid_mot_row *g;
      int m = reid_mot_frame_rows(c->truth_rows, f, &g), best = 0;
      float best_iou = 0.5f;
      for (int j = 0; j < m; j++)
        if (iou(box, &g[j]) >= best_iou) best_iou = iou(box, &g[j]), best = g[j].id;
      if (!best) continue;
      int k = 0;
      while (k < n_votes && votes[2 * k] != best) k++;
      if (k == n_votes) {
        if (n_votes == cap) {
          int *grown = realloc(votes, sizeof(int) * 4 * (size_t)cap);
          if (!grown) continue;
          votes = grown, cap *= 2;
        }
        votes[2 * n_votes] = best, votes[2 * n_votes + 1] = 0, n_votes++;
      }
      votes[2 * k + 1]++;
    }
  }
  int most = 0;
  for (int k = 0; k < n_votes; k++)
    if (votes[2 * k + 1] > most) most = votes[2 * k + 1], t->person = votes[2 * k];
  free(votes);
}

static int camera_index(const scene_eval *e, const char *stream) {
  for (int c = 0; c < e->n_cameras; c++)
    if (!strcmp(e->cameras[c].name, stream)) return c;
  return -1;
}

static uint64_t pts_of(const json_value *v) {
  int64_t x;
  return v && json_get_int64(v, &x) && x >= 0 ? (uint64_t)x : 0;
}

static reid_status read_line(scene_eval *e, const char *path, int lineno, const json_value *v) {
  const json_value *stream = json_get(v, "stream"), *id = json_get(v, "track_id");
  int64_t track;
  if (!stream || stream->type != JSON_STRING || !json_get_int64(id, &track))
    return reid_fail(REID_EFORMAT, "%s:%d: no stream or track_id", path, lineno);
  int cam = camera_index(e, stream->str);
  if (cam < 0) return REID_OK; /* another camera's element shares the file */
  uint64_t first = pts_of(json_get(v, "first_pts")), last = pts_of(json_get(v, "last_pts"));
  const json_value *match = json_get(v, "match");
  if (match) {
    const json_value *q = json_get(match, "query"), *score = json_get(match, "score");
    int t = e->n_tracklets - 1;
    while (t >= 0 && !(e->tracklets[t].camera == cam && e->tracklets[t].track == track &&
                       e->tracklets[t].first_pts == first))
      t--;
    int qi = -1;
    for (int i = 0; q && q->type == JSON_STRING && i < e->n_queries && qi < 0; i++)
      if (!strcmp(e->queries[i].name, q->str)) qi = i;
    if (t < 0 || qi < 0 || !score || score->type != JSON_NUMBER)
      return reid_fail(REID_EFORMAT, "%s:%d: a match of an unknown tracklet or query", path,
                       lineno);
    scene_match *m = realloc(e->matches, sizeof *m * (size_t)(e->n_matches + 1));
    if (!m) return reid_fail(REID_ENOMEM, "scene-eval: out of memory");
    e->matches = m;
    e->matches[e->n_matches++] = (scene_match){t, qi, score->num};
    return REID_OK;
  }
  const json_value *emb = json_get(v, "embedding"), *frames = json_get(v, "frames");
  if (!emb || emb->type != JSON_ARRAY || (int)emb->count != e->dim)
    return reid_fail(REID_EFORMAT, "%s:%d: the embedding has not the queries' %d dimensions", path,
                     lineno, e->dim);
  scene_tracklet *t = realloc(e->tracklets, sizeof *t * (size_t)(e->n_tracklets + 1));
  if (!t) return reid_fail(REID_ENOMEM, "scene-eval: out of memory");
  e->tracklets = t;
  t = &e->tracklets[e->n_tracklets++];
  memset(t, 0, sizeof *t);
  t->camera = cam, t->track = track, t->first_pts = first, t->last_pts = last;
  int64_t nf = 0;
  json_get_int64(frames, &nf);
  t->frames = (int)nf;
  t->embedding = malloc(sizeof(float) * (size_t)e->dim);
  if (!t->embedding) return reid_fail(REID_ENOMEM, "scene-eval: out of memory");
  for (int k = 0; k < e->dim; k++) t->embedding[k] = (float)emb->items[k].num;
  label_tracklet(e, t);
  return REID_OK;
}

reid_status scene_eval_read_jsonl(scene_eval *e, const char *path) {
  if (e->dim < 1) return reid_fail(REID_EINVAL, "scene-eval: read the queries first");
  unsigned char *text = NULL;
  size_t size = 0;
  REID_TRY(reid_read_file(path, &text, &size));
  reid_status st = REID_OK;
  int lineno = 0;
  for (size_t at = 0; at < size && st == REID_OK;) {
    size_t end = at;
    while (end < size && text[end] != '\n') end++;
    lineno++;
    if (end > at) {
      json_value *v = NULL;
      st = json_parse((const char *)text + at, end - at, &v);
      if (st != REID_OK)
        st = reid_fail(REID_EFORMAT, "%s:%d: %s", path, lineno, reid_last_error());
      else
        st = read_line(e, path, lineno, v);
      json_free(v);
    }
    at = end + 1;
  }
  free(text);
  return st;
}

static double cosine(const float *a, const float *b, int dim) {
  double s = 0;
  for (int k = 0; k < dim; k++) s += (double)a[k] * b[k];
  return s;
}

reid_status scene_eval_score(const scene_eval *e, scene_scores *s) {
  memset(s, 0, sizeof *s);
  s->matches = e->n_matches;
  for (int m = 0; m < e->n_matches; m++) {
    const scene_match *x = &e->matches[m];
    int person = e->queries[x->query].person;
    s->right += person && e->tracklets[x->tracklet].person == person;
  }
  for (int t = 0; t < e->n_tracklets; t++)
    for (int q = 0; q < e->n_queries; q++) {
      if (!e->queries[q].person || e->tracklets[t].person != e->queries[q].person) continue;
      s->positives++;
      for (int m = 0; m < e->n_matches; m++)
        if (e->matches[m].tracklet == t && e->matches[m].query == q) {
          s->found++;
          break;
        }
    }
  const int nq = e->n_queries, ng = e->n_tracklets;
  if (!e->has_truth || nq < 1 || ng < 1) return REID_OK;
  float *dist = malloc(sizeof(float) * (size_t)nq * ng);
  int *ids = malloc(sizeof(int) * 2 * (size_t)(nq + ng));
  if (!dist || !ids) {
    free(dist);
    free(ids);
    return reid_fail(REID_ENOMEM, "scene-eval: out of memory");
  }
  int *q_pid = ids, *q_cam = ids + nq, *g_pid = q_cam + nq, *g_cam = g_pid + ng;
  for (int q = 0; q < nq; q++) {
    q_pid[q] = e->queries[q].person, q_cam[q] = -1; /* the photos' own camera: nothing is junk */
    for (int t = 0; t < ng; t++)
      dist[(size_t)q * ng + t] =
          (float)(1 - cosine(e->queries[q].embedding, e->tracklets[t].embedding, e->dim));
  }
  for (int t = 0; t < ng; t++)
    g_pid[t] = e->tracklets[t].person ? e->tracklets[t].person : -2,
    g_cam[t] = e->tracklets[t].camera;
  reid_rank_result r;
  reid_status st = reid_rank_evaluate(dist, nq, ng, q_pid, q_cam, g_pid, g_cam, 1, &r);
  if (st == REID_OK) {
    s->i2v_queries = r.queries, s->rank1 = r.cmc[0], s->map = r.map;
    reid_rank_result_free(&r);
  }
  free(dist);
  free(ids);
  return st;
}

static void print_time(uint64_t pts) {
  double s = (double)pts / 1e9;
  printf("%d:%04.1f", (int)(s / 60), fmod(s, 60));
}

static const char *plural(int n, const char *one, const char *many) {
  return n == 1 ? one : many;
}

void scene_eval_print(const scene_eval *e, const scene_scores *s) {
  for (int q = 0; q < e->n_queries; q++) {
    const scene_query *x = &e->queries[q];
    int shown = 0;
    printf("query %s", x->name);
    if (x->person) printf(" (person %d)", x->person);
    printf(":\n");
    for (int c = 0; c < e->n_cameras; c++)
      for (int m = 0; m < e->n_matches; m++) {
        const scene_match *y = &e->matches[m];
        const scene_tracklet *t = &e->tracklets[y->tracklet];
        if (y->query != q || t->camera != c) continue;
        printf("  %-6s track %-4lld score %.4f  ", e->cameras[c].name, (long long)t->track,
               y->score);
        print_time(t->first_pts);
        printf("-");
        print_time(t->last_pts);
        printf("  %3d frames", t->frames);
        if (e->has_truth && x->person) {
          if (t->person == x->person)
            printf("  right");
          else if (t->person)
            printf("  WRONG (person %d)", t->person);
          else
            printf("  WRONG (no person)");
        }
        printf("\n");
        shown++;
      }
    if (!shown) printf("  no match\n");
  }
  printf("watchlist: %d %s of %d %s in %d %s of %d %s\n", s->matches,
         plural(s->matches, "match", "matches"), e->n_queries,
         plural(e->n_queries, "query", "queries"), e->n_tracklets,
         plural(e->n_tracklets, "tracklet", "tracklets"), e->n_cameras,
         plural(e->n_cameras, "camera", "cameras"));
  if (!e->has_truth) return;
  printf("  precision %.1f%% (%d of %d matches are the query's person)\n",
         s->matches ? 100.0 * s->right / s->matches : 0.0, s->right, s->matches);
  printf("  recall    %.1f%% (%d of %d tracklets of the queries' people matched)\n",
         s->positives ? 100.0 * s->found / s->positives : 0.0, s->found, s->positives);
  printf("I2V, each query photo ranked against all %d %s: rank-1 %.1f%%, mAP %.1f%% (%d %s)\n",
         e->n_tracklets, plural(e->n_tracklets, "tracklet", "tracklets"), 100 * s->rank1,
         100 * s->map, s->i2v_queries, plural(s->i2v_queries, "query", "queries"));
}

/* ------------------------------------------------------------ the contact sheet */

#define CELL_W 72
#define CELL_H 144
#define PAD    10

static void paste(reid_image *dst, int cx, int cy, const reid_image *src, float x, float y, float w,
                  float h) {
  reid_image_resize_into(src, x, y, w, h, dst, cx, cy, CELL_W, CELL_H);
}

static void frame_cell(reid_image *dst, int cx, int cy, int thick, const uint8_t rgb[3]) {
  for (int j = -thick; j < CELL_H + thick; j++)
    for (int i = -thick; i < CELL_W + thick; i++) {
      if (i >= 0 && i < CELL_W && j >= 0 && j < CELL_H) continue;
      int x = cx + i, y = cy + j;
      if (x < 0 || y < 0 || x >= dst->width || y >= dst->height) continue;
      memcpy(dst->data + (size_t)y * dst->stride + 3 * x, rgb, 3);
    }
}

typedef struct sheet_cell {
  int row, col, tracklet;
} sheet_cell;

reid_status scene_eval_contact_sheet(const scene_eval *e, const char *path, int top) {
  if (top > e->n_tracklets) top = e->n_tracklets;
  const int cols = 1 + top, rows = e->n_queries;
  if (rows < 1) return reid_fail(REID_EINVAL, "%s: no queries to show", path);
  reid_image sheet = {0};
  REID_TRY(
      reid_image_alloc(PAD + cols * (CELL_W + PAD) + PAD, PAD + rows * (CELL_H + PAD), &sheet));
  memset(sheet.data, 40, (size_t)sheet.stride * sheet.height);
  sheet_cell *cells = malloc(sizeof *cells * (size_t)(rows * (top > 0 ? top : 1)));
  double *score = malloc(sizeof(double) * (size_t)(e->n_tracklets + 1));
  reid_status st = cells && score ? REID_OK : reid_fail(REID_ENOMEM, "scene-eval: out of memory");
  int n_cells = 0;
  for (int q = 0; q < rows && st == REID_OK; q++) {
    const int y = PAD + q * (CELL_H + PAD);
    reid_image photo = {0};
    st = reid_image_load_rgb(e->queries[q].path, &photo);
    if (st != REID_OK) break;
    paste(&sheet, PAD, y, &photo, 0, 0, (float)photo.width, (float)photo.height);
    reid_image_free(&photo);
    static const uint8_t white[3] = {230, 230, 230};
    frame_cell(&sheet, PAD, y, 2, white);
    /* the best `top` tracklets by cosine (selection; n is small) */
    for (int t = 0; t < e->n_tracklets; t++)
      score[t] = cosine(e->queries[q].embedding, e->tracklets[t].embedding, e->dim);
    for (int k = 0; k < top; k++) {
      int best = -1;
      for (int t = 0; t < e->n_tracklets; t++)
        if (score[t] > -INFINITY && (best < 0 || score[t] > score[best])) best = t;
      if (best < 0) break;
      score[best] = -INFINITY;
      cells[n_cells++] = (sheet_cell){q, 1 + k, best};
    }
  }
  /* the crops: each camera's video decoded once, front to back */
  for (int c = 0; c < e->n_cameras && st == REID_OK; c++) {
    int wanted = 0;
    for (int i = 0; i < n_cells; i++) wanted += e->tracklets[cells[i].tracklet].camera == c;
    if (!wanted) continue;
    reid_video_reader *r = NULL;
    st = reid_video_reader_open(e->cameras[c].video, &r);
    for (int frame = 1; st == REID_OK && wanted > 0; frame++) {
      const reid_image *img;
      int got;
      st = reid_video_reader_next(r, &img, &got);
      if (st != REID_OK || !got) break;
      for (int i = 0; i < n_cells; i++) {
        const scene_tracklet *t = &e->tracklets[cells[i].tracklet];
        if (t->camera != c || t->mid_frame != frame) continue;
        paste(&sheet, PAD + cells[i].col * (CELL_W + PAD), PAD + cells[i].row * (CELL_H + PAD), img,
              t->box[0], t->box[1], t->box[2], t->box[3]);
        wanted--;
      }
    }
    reid_video_reader_close(r);
  }
  for (int i = 0; i < n_cells && st == REID_OK; i++) {
    const scene_tracklet *t = &e->tracklets[cells[i].tracklet];
    const scene_query *q = &e->queries[cells[i].row];
    static const uint8_t green[3] = {40, 210, 60}, red[3] = {230, 40, 40},
                         grey[3] = {150, 150, 150};
    const uint8_t *colour = !e->has_truth || !q->person ? grey
                            : t->person == q->person    ? green
                                                        : red;
    int matched = 0;
    for (int m = 0; m < e->n_matches; m++)
      matched |= e->matches[m].tracklet == cells[i].tracklet && e->matches[m].query == cells[i].row;
    frame_cell(&sheet, PAD + cells[i].col * (CELL_W + PAD), PAD + cells[i].row * (CELL_H + PAD),
               matched ? 4 : 1, colour);
  }
  if (st == REID_OK) st = reid_image_save_png(path, &sheet);
  reid_image_free(&sheet);
  free(cells);
  free(score);
  return st;
}

void scene_eval_free(scene_eval *e) {
  for (int c = 0; c < e->n_cameras; c++) {
    scene_camera_in *x = &e->cameras[c];
    free(x->name), free(x->video), free(x->tracker), free(x->truth);
    reid_mot_free(x->tracker_rows);
    reid_mot_free(x->truth_rows);
  }
  for (int q = 0; q < e->n_queries; q++)
    free(e->queries[q].path), free(e->queries[q].name), free(e->queries[q].embedding);
  for (int t = 0; t < e->n_tracklets; t++) free(e->tracklets[t].embedding);
  free(e->cameras);
  free(e->queries);
  free(e->tracklets);
  free(e->matches);
  memset(e, 0, sizeof *e);
}
