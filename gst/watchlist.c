/* Watchlist: list query files (folder or list file), embed them, score tracklets. */
#include "watchlist.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static int has_image_extension(const char *name) {
  static const char *const exts[] = {"jpg", "jpeg", "png", "bmp",  "ppm", "pgm",
                                     "pnm", "webp", "tif", "tiff", "gif"};
  const char *dot = strrchr(name, '.');
  if (!dot || dot == name) return 0;
  for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
    if (!strcasecmp(dot + 1, exts[i])) return 1;
  return 0;
}

/* Appends path (and its base name) to w; takes ownership of path. */
static reid_status add_query(reid_watchlist *w, int *cap, char *path) {
  if (!path) return reid_fail(REID_ENOMEM, "watchlist: out of memory");
  if (w->count == *cap) {
    int grown_cap = *cap ? 2 * *cap : 16;
    char **p = realloc(w->paths, sizeof *p * (size_t)grown_cap);
    if (p) w->paths = p;
    char **n = realloc(w->names, sizeof *n * (size_t)grown_cap);
    if (n) w->names = n;
    if (!p || !n) {
      free(path);
      return reid_fail(REID_ENOMEM, "watchlist: out of memory");
    }
    *cap = grown_cap;
  }
  const char *slash = strrchr(path, '/');
  char *name = strdup(slash ? slash + 1 : path);
  if (!name) {
    free(path);
    return reid_fail(REID_ENOMEM, "watchlist: out of memory");
  }
  w->paths[w->count] = path;
  w->names[w->count] = name;
  w->count++;
  return REID_OK;
}

static char *join(const char *dir, const char *name) {
  if (name[0] == '/') return strdup(name);
  size_t need = strlen(dir) + strlen(name) + 2;
  char *s = malloc(need);
  if (s) snprintf(s, need, "%s/%s", dir, name);
  return s;
}

static int name_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static reid_status list_folder(const char *dir, reid_watchlist *w) {
  DIR *d = opendir(dir);
  if (!d) return reid_fail(REID_EIO, "%s: cannot open the query folder: %s", dir, strerror(errno));
  char **names = NULL;
  int n = 0, cap = 0;
  reid_status st = REID_OK;
  for (struct dirent *ent; st == REID_OK && (ent = readdir(d));) {
    if (ent->d_name[0] == '.' || !has_image_extension(ent->d_name)) continue;
    char *path = join(dir, ent->d_name);
    struct stat sb;
    int regular = path && stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
    free(path);
    if (!regular) continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 16;
      char **grown = realloc(names, sizeof *grown * (size_t)cap);
      if (!grown) {
        st = reid_fail(REID_ENOMEM, "watchlist: out of memory");
        break;
      }
      names = grown;
    }
    names[n] = strdup(ent->d_name);
    if (!names[n])
      st = reid_fail(REID_ENOMEM, "watchlist: out of memory");
    else
      n++;
  }
  closedir(d);
  if (st == REID_OK && n == 0)
    st = reid_fail(REID_EFORMAT,
                   "%s: the query folder holds no image file "
                   "(.jpg, .jpeg, .png, .bmp, .ppm, .pgm, .pnm, .webp, .tif, .tiff, .gif)",
                   dir);
  if (st == REID_OK) qsort(names, (size_t)n, sizeof *names, name_cmp);
  int wcap = 0;
  for (int i = 0; i < n && st == REID_OK; i++) st = add_query(w, &wcap, join(dir, names[i]));
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
  return st;
}

static reid_status list_file(const char *list, reid_watchlist *w) {
  FILE *f = fopen(list, "r");
  if (!f) return reid_fail(REID_EIO, "%s: cannot open the query list: %s", list, strerror(errno));
  char *dir = strdup(list);
  if (!dir) {
    fclose(f);
    return reid_fail(REID_ENOMEM, "watchlist: out of memory");
  }
  char *slash = strrchr(dir, '/');
  if (slash)
    *(slash == dir ? slash + 1 : slash) = 0;
  else
    strcpy(dir, ".");
  reid_status st = REID_OK;
  char *line = NULL;
  size_t line_cap = 0;
  int cap = 0, lineno = 0;
  for (ssize_t len; st == REID_OK && (len = getline(&line, &line_cap, f)) >= 0;) {
    lineno++;
    if ((size_t)len != strlen(line)) {
      st = reid_fail(REID_EFORMAT, "%s:%d: NUL byte (not a text file?)", list, lineno);
      break;
    }
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' ||
                       line[len - 1] == '\t'))
      line[--len] = 0;
    char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (!*p || *p == '#') continue;
    st = add_query(w, &cap, join(dir, p));
  }
  if (st == REID_OK && ferror(f)) st = reid_fail(REID_EIO, "%s: read error", list);
  if (st == REID_OK && w->count == 0)
    st = reid_fail(REID_EFORMAT, "%s: the query list is empty", list);
  free(line);
  free(dir);
  fclose(f);
  return st;
}

void reid_watchlist_free(reid_watchlist *w) {
  if (!w) return;
  for (int i = 0; i < w->count; i++) {
    free(w->names[i]);
    free(w->paths[i]);
  }
  free(w->names);
  free(w->paths);
  free(w->embeddings);
  free(w);
}

reid_status reid_watchlist_list(const char *location, reid_watchlist **out) {
  *out = NULL;
  if (!location || !*location) return reid_fail(REID_EINVAL, "watchlist: empty location");
  struct stat sb;
  if (stat(location, &sb) != 0)
    return reid_fail(REID_EIO, "%s: cannot read the query location: %s", location, strerror(errno));
  reid_watchlist *w = calloc(1, sizeof *w);
  if (!w) return reid_fail(REID_ENOMEM, "watchlist: out of memory");
  reid_status st = S_ISDIR(sb.st_mode) ? list_folder(location, w) : list_file(location, w);
  if (st != REID_OK) {
    reid_watchlist_free(w);
    return st;
  }
  *out = w;
  return REID_OK;
}

reid_status reid_watchlist_load(const char *location, reid_embedder *embedder,
                                reid_watchlist **out) {
  *out = NULL;
  reid_watchlist *w;
  REID_TRY(reid_watchlist_list(location, &w));
  w->dim = reid_embedder_dim(embedder, REID_ROLE_IMAGE);
  w->embeddings = malloc(sizeof(float) * (size_t)w->count * (size_t)w->dim);
  reid_status st = w->embeddings ? REID_OK : reid_fail(REID_ENOMEM, "watchlist: out of memory");
  if (st == REID_OK)
    st = reid_embedder_embed_images(embedder, (const char *const *)w->paths, w->count,
                                    w->embeddings);
  if (st != REID_OK) {
    reid_watchlist_free(w);
    return reid_fail_context(st, "query location %s", location);
  }
  *out = w;
  return REID_OK;
}

void reid_watchlist_scores(const reid_watchlist *w, const float *e, float *scores) {
  for (int i = 0; i < w->count; i++) {
    const float *q = w->embeddings + (size_t)i * w->dim;
    double dot = 0;
    for (int j = 0; j < w->dim; j++) dot += (double)q[j] * e[j];
    scores[i] = (float)dot;
  }
}

int reid_watchlist_best(const reid_watchlist *w, const float *e, float *scores, float *best_score) {
  reid_watchlist_scores(w, e, scores);
  int best = -1;
  for (int i = 0; i < w->count; i++)
    if (best < 0 || scores[i] > scores[best]) best = i;
  *best_score = best >= 0 ? scores[best] : 0.0f;
  return best;
}
