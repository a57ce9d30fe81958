/* Common dataset code: layout names and detection, the frame/sample lists the
 * per-layout readers fill, train relabelling, folder listings, freeing. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset_build.h"

/* Frame paths live in big arena blocks, not one malloc each (MARS: ~1.2M paths). */
typedef struct arena_block {
  struct arena_block *next;
  size_t used, size;
  char data[];
} arena_block;

typedef struct dataset_impl {
  reid_dataset pub; /* first: a reid_dataset * is a dataset_impl * */
  int frames_cap, samples_cap[3], pairs_cap;
  arena_block *arena;
  char *skipped_example;
} dataset_impl;

static reid_split *split_of(reid_dataset *d, int split) {
  return split == DS_TRAIN ? &d->train : split == DS_QUERY ? &d->query : &d->gallery;
}

/* ------------------------------------------------------------ layouts */

static const char *const layout_names[] = {"auto", "mars", "duke", "market", "veri", "collected"};
enum { N_LAYOUTS = sizeof layout_names / sizeof *layout_names };

reid_status reid_layout_parse(const char *name, reid_layout *out) {
  for (int i = 0; name && i < N_LAYOUTS; i++)
    if (!strcmp(name, layout_names[i])) {
      *out = (reid_layout)i;
      return REID_OK;
    }
  return reid_fail(
      REID_EINVAL,
      "unknown dataset layout '%s' (expected auto, mars, duke, market, veri or collected)",
      name ? name : "(null)");
}

const char *reid_layout_name(reid_layout l) {
  return (unsigned)l < N_LAYOUTS ? layout_names[l] : "unknown";
}

static int has(const char *root, const char *sub) {
  char *p = ds_join(root, sub, NULL);
  int yes = p && ds_is_folder(p);
  free(p);
  return yes;
}

static reid_status detect(const char *root, reid_layout *out) {
  if (!ds_is_folder(root)) return reid_fail(REID_EIO, "%s: no such folder", root);
  if (has(root, "info") && (has(root, "bbox_train") || has(root, "bbox_test")))
    *out = REID_LAYOUT_MARS;
  else if (has(root, "train") && has(root, "query") && has(root, "gallery"))
    *out = REID_LAYOUT_DUKE;
  else if (has(root, "bounding_box_train") || has(root, "bounding_box_test"))
    *out = REID_LAYOUT_MARKET;
  else if (has(root, "image_train") || has(root, "image_test"))
    *out = REID_LAYOUT_VERI;
  else if (ds_is_collected(root))
    *out = REID_LAYOUT_COLLECTED;
  else
    return reid_fail(REID_EFORMAT,
                     "%s: no known dataset layout (expected info/ + bbox_train/ (MARS), "
                     "train/ + query/ + gallery/ (DukeMTMC-VideoReID), bounding_box_train/ "
                     "(Market-1501), image_train/ (VeRi-776) or STREAM/index.jsonl (collected by "
                     "reidembed))",
                     root);
  return REID_OK;
}

reid_status reid_dataset_load(const char *root, reid_layout layout, reid_dataset **out) {
  if (!root || !out) return reid_fail(REID_EINVAL, "reid_dataset_load: NULL argument");
  *out = NULL;
  if (layout == REID_LAYOUT_AUTO) REID_TRY(detect(root, &layout));
  if ((unsigned)layout > REID_LAYOUT_COLLECTED)
    return reid_fail(REID_EINVAL, "reid_dataset_load: layout %d is unknown", (int)layout);
  if (!ds_is_folder(root)) return reid_fail(REID_EIO, "%s: no such folder", root);
  dataset_impl *impl = calloc(1, sizeof *impl);
  if (!impl) return reid_fail(REID_ENOMEM, "%s: out of memory", root);
  reid_dataset *d = &impl->pub;
  d->layout = layout;
  reid_status st;
  switch (layout) {
  case REID_LAYOUT_MARS: st = ds_load_mars(root, d); break;
  case REID_LAYOUT_DUKE: st = ds_load_duke(root, d); break;
  case REID_LAYOUT_MARKET: st = ds_load_market(root, d); break;
  case REID_LAYOUT_COLLECTED: st = ds_load_collected(root, d); break;
  default: st = ds_load_veri(root, d); break;
  }
  if (st == REID_OK) st = ds_finish(d, root);
  if (st != REID_OK) {
    reid_dataset_free(d);
    return st;
  }
  *out = d;
  return REID_OK;
}

void reid_dataset_free(reid_dataset *d) {
  if (!d) return;
  dataset_impl *impl = (dataset_impl *)d;
  for (arena_block *b = impl->arena, *next; b; b = next) {
    next = b->next;
    free(b);
  }
  free(d->frames);
  free(d->train.samples);
  free(d->query.samples);
  free(d->gallery.samples);
  free(d->distinct_pairs);
  free(impl->skipped_example);
  free(impl);
}

const char *reid_dataset_skipped_example(const reid_dataset *d) {
  return d ? ((const dataset_impl *)d)->skipped_example : NULL;
}

/* ------------------------------------------------------------ building */

static char *arena_alloc(dataset_impl *impl, size_t n) {
  arena_block *b = impl->arena;
  if (!b || b->size - b->used < n) {
    size_t size = n > (1u << 20) ? n : (1u << 20);
    arena_block *fresh = malloc(sizeof *fresh + size);
    if (!fresh) return NULL;
    fresh->next = b;
    fresh->used = 0;
    fresh->size = size;
    impl->arena = b = fresh;
  }
  char *p = b->data + b->used;
  b->used += n;
  return p;
}

reid_status ds_add_frame(reid_dataset *d, const char *a, const char *b, const char *c, int *index) {
  dataset_impl *impl = (dataset_impl *)d;
  if (d->n_frames == impl->frames_cap) {
    int cap = impl->frames_cap ? 2 * impl->frames_cap : 1024;
    char **grown = realloc(d->frames, sizeof *grown * (size_t)cap);
    if (!grown) return reid_fail(REID_ENOMEM, "out of memory for %d frame paths", cap);
    d->frames = grown;
    impl->frames_cap = cap;
  }
  size_t la = strlen(a), lb = b ? strlen(b) : 0, lc = c ? strlen(c) : 0;
  char *p = arena_alloc(impl, la + lb + lc + 3);
  if (!p) return reid_fail(REID_ENOMEM, "out of memory for frame paths");
  char *w = p;
  memcpy(w, a, la), w += la;
  if (b) *w++ = '/', memcpy(w, b, lb), w += lb;
  if (c) *w++ = '/', memcpy(w, c, lc), w += lc;
  *w = '\0';
  d->frames[d->n_frames] = p;
  if (index) *index = d->n_frames;
  d->n_frames++;
  return REID_OK;
}

reid_status ds_add_sample(reid_dataset *d, int split, int pid, int camid, int first, int n) {
  dataset_impl *impl = (dataset_impl *)d;
  reid_split *s = split_of(d, split);
  if (s->count == impl->samples_cap[split]) {
    int cap = s->count ? 2 * s->count : 256;
    reid_sample *grown = realloc(s->samples, sizeof *grown * (size_t)cap);
    if (!grown) return reid_fail(REID_ENOMEM, "out of memory for %d samples", cap);
    s->samples = grown;
    impl->samples_cap[split] = cap;
  }
  s->samples[s->count++] = (reid_sample){pid, -1, camid, first, n};
  return REID_OK;
}

reid_status ds_add_distinct_pair(reid_dataset *d, int a, int b) {
  dataset_impl *impl = (dataset_impl *)d;
  if (d->n_distinct_pairs == impl->pairs_cap) {
    int cap = impl->pairs_cap ? 2 * impl->pairs_cap : 256;
    int(*grown)[2] = realloc(d->distinct_pairs, sizeof *grown * (size_t)cap);
    if (!grown) return reid_fail(REID_ENOMEM, "out of memory for %d sample pairs", cap);
    d->distinct_pairs = grown;
    impl->pairs_cap = cap;
  }
  d->distinct_pairs[d->n_distinct_pairs][0] = a < b ? a : b;
  d->distinct_pairs[d->n_distinct_pairs][1] = a < b ? b : a;
  d->n_distinct_pairs++;
  return REID_OK;
}

static int compare_pair(const void *x, const void *y) {
  const int *a = x, *b = y;
  if (a[0] != b[0]) return (a[0] > b[0]) - (a[0] < b[0]);
  return (a[1] > b[1]) - (a[1] < b[1]);
}

/* Sorts the distinct pairs and drops duplicates (each pair is usually listed by both sides). */
static void unique_pairs(reid_dataset *d) {
  if (d->n_distinct_pairs < 2) return;
  qsort(d->distinct_pairs, (size_t)d->n_distinct_pairs, sizeof *d->distinct_pairs, compare_pair);
  int n = 1;
  for (int i = 1; i < d->n_distinct_pairs; i++)
    if (compare_pair(d->distinct_pairs[i], d->distinct_pairs[n - 1]))
      memcpy(d->distinct_pairs[n++], d->distinct_pairs[i], sizeof *d->distinct_pairs);
  d->n_distinct_pairs = n;
}

int reid_dataset_distinct(const reid_dataset *d, int a, int b) {
  if (a == b || d->n_distinct_pairs < 1) return 0;
  const int key[2] = {a < b ? a : b, a < b ? b : a};
  return bsearch(key, d->distinct_pairs, (size_t)d->n_distinct_pairs, sizeof *d->distinct_pairs,
                 compare_pair) != NULL;
}

void ds_skip(reid_dataset *d, const char *a, const char *b, const char *c) {
  dataset_impl *impl = (dataset_impl *)d;
  d->skipped++;
  if (!impl->skipped_example) impl->skipped_example = ds_join(a, b, c);
}

static int compare_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* Labels 0 .. n-1 in ascending pid order (binary search in the sorted distinct pids). */
static reid_status relabel(reid_dataset *d) {
  reid_split *t = &d->train;
  int *pids = malloc(sizeof *pids * (size_t)(t->count ? t->count : 1));
  if (!pids) return reid_fail(REID_ENOMEM, "out of memory relabelling %d samples", t->count);
  for (int i = 0; i < t->count; i++) pids[i] = t->samples[i].pid;
  qsort(pids, (size_t)t->count, sizeof *pids, compare_int);
  int n = 0;
  for (int i = 0; i < t->count; i++)
    if (n == 0 || pids[n - 1] != pids[i]) pids[n++] = pids[i];
  for (int i = 0; i < t->count; i++) {
    int *hit = bsearch(&t->samples[i].pid, pids, (size_t)n, sizeof *pids, compare_int);
    t->samples[i].label = (int)(hit - pids);
  }
  d->n_train_ids = n;
  free(pids);
  return REID_OK;
}

reid_status ds_finish(reid_dataset *d, const char *root) {
  long total = (long)d->n_frames + d->skipped;
  long allowed = total / 100 > 10 ? total / 100 : 10;
  if (d->skipped > allowed)
    return reid_fail(REID_EIO,
                     "%s: %d of %ld images are missing or unreadable (more than 1%%), first: %s",
                     root, d->skipped, total, reid_dataset_skipped_example(d));
  if (d->train.count + d->query.count + d->gallery.count == 0)
    return reid_fail(REID_EFORMAT, "%s: the %s dataset holds no samples", root,
                     reid_layout_name(d->layout));
  if (d->query.count > 0 && d->gallery.count == 0)
    return reid_fail(REID_EFORMAT, "%s: %d query samples but an empty gallery", root,
                     d->query.count);
  for (int s = 0; s < 3; s++) {
    reid_split *sp = split_of(d, s);
    for (int i = 0; i < sp->count; i++) sp->samples[i].label = -1;
  }
  unique_pairs(d);
  return relabel(d);
}

/* ------------------------------------------------------------ files */

char *ds_join(const char *a, const char *b, const char *c) {
  size_t n = strlen(a) + (b ? strlen(b) + 1 : 0) + (c ? strlen(c) + 1 : 0) + 1;
  char *p = malloc(n);
  if (!p) return NULL;
  snprintf(p, n, "%s%s%s%s%s", a, b ? "/" : "", b ? b : "", c ? "/" : "", c ? c : "");
  return p;
}

int ds_is_folder(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int ds_is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int compare_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

void ds_listing_free(ds_listing *l) {
  for (int i = 0; i < l->count; i++) free(l->names[i]);
  free(l->names);
  l->names = NULL;
  l->count = 0;
}

reid_status ds_list(const char *folder, char want, ds_listing *out) {
  out->names = NULL;
  out->count = 0;
  DIR *dir = opendir(folder);
  if (!dir) return reid_fail(REID_EIO, "%s: cannot open the folder (%s)", folder, strerror(errno));
  int cap = 0;
  reid_status st = REID_OK;
  struct dirent *e;
  while (st == REID_OK && (e = readdir(dir))) {
    if (e->d_name[0] == '.') continue;
    int is_dir = e->d_type == DT_DIR, is_reg = e->d_type == DT_REG;
    if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) { /* follow links, ask the file system */
      char *p = ds_join(folder, e->d_name, NULL);
      is_dir = p && ds_is_folder(p);
      is_reg = p && ds_is_file(p);
      free(p);
    }
    if ((want == 'd' && !is_dir) || (want == 'f' && !is_reg)) continue;
    if (out->count == cap) {
      cap = cap ? 2 * cap : 64;
      char **grown = realloc(out->names, sizeof *grown * (size_t)cap);
      if (!grown) {
        st = reid_fail(REID_ENOMEM, "%s: out of memory listing the folder", folder);
        break;
      }
      out->names = grown;
    }
    if (!(out->names[out->count] = strdup(e->d_name)))
      st = reid_fail(REID_ENOMEM, "%s: out of memory listing the folder", folder);
    else
      out->count++;
  }
  closedir(dir);
  if (st != REID_OK) {
    ds_listing_free(out);
    return st;
  }
  if (out->count > 1) qsort(out->names, (size_t)out->count, sizeof *out->names, compare_str);
  return REID_OK;
}

int ds_listing_has(const ds_listing *l, const char *name) {
  return l->count > 0 &&
         bsearch(&name, l->names, (size_t)l->count, sizeof *l->names, compare_str) != NULL;
}

void ds_lines_free(ds_lines *l) {
  for (int i = 0; i < l->count; i++) free(l->lines[i]);
  free(l->lines);
  free(l->lineno);
  memset(l, 0, sizeof *l);
}

reid_status ds_read_lines(const char *path, ds_lines *out) {
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "r");
  if (!f) return reid_fail(REID_EIO, "%s: cannot open (%s)", path, strerror(errno));
  char *line = NULL;
  size_t line_cap = 0;
  ssize_t len;
  int cap = 0, lineno = 0;
  reid_status st = REID_OK;
  while (st == REID_OK && (len = getline(&line, &line_cap, f)) >= 0) {
    lineno++;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' ||
                       line[len - 1] == '\t'))
      line[--len] = '\0';
    if (len == 0) continue;
    if ((size_t)len != strlen(line)) {
      st = reid_fail(REID_EFORMAT, "%s:%d: NUL byte in a text line", path, lineno);
      break;
    }
    if (out->count == cap) {
      cap = cap ? 2 * cap : 1024;
      char **grown = realloc(out->lines, sizeof *grown * (size_t)cap);
      int *grown_no = grown ? realloc(out->lineno, sizeof *grown_no * (size_t)cap) : NULL;
      if (grown) out->lines = grown;
      if (!grown || !grown_no) {
        st = reid_fail(REID_ENOMEM, "%s: out of memory at line %d", path, lineno);
        break;
      }
      out->lineno = grown_no;
    }
    if (!(out->lines[out->count] = strdup(line))) {
      st = reid_fail(REID_ENOMEM, "%s: out of memory at line %d", path, lineno);
      break;
    }
    out->lineno[out->count++] = lineno;
  }
  if (st == REID_OK && ferror(f)) st = reid_fail(REID_EIO, "%s: read error", path);
  free(line);
  fclose(f);
  if (st != REID_OK) ds_lines_free(out);
  return st;
}

/* ------------------------------------------------------------ names */

int ds_digits(const char *s, int n) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = 10 * v + (s[i] - '0');
  }
  return n > 0 ? v : -1;
}

int ds_number(const char **s) {
  const char *p = *s;
  int v = 0, n = 0;
  while (*p >= '0' && *p <= '9' && n < 10) v = 10 * v + (*p++ - '0'), n++;
  if (n == 0 || n > 9) return -1;
  *s = p;
  return v;
}

int ds_ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}
