/* reid-search: "where was this person seen?" over a tracklet gallery.
 *
 *   reid-search --gallery URI --model M.safetensors --query photo.jpg [more photos]
 *               [--top-k 20] [--since T] [--until T] [--stream NAME]... [--threshold X]
 *               [--json] [--html report.html]
 *               [--index faiss [--index-file F] [--k-factor N | --ef-search N | --nprobe N]]
 *               [--device cpu|cuda|auto] [--chunk ROWS]
 *   reid-search index --gallery URI [--index-file F] [--kind binary|hnsw|ivf]
 *                     [--rebuild] [--k-factor N] [--m N] [--ef-search N] [--nlist N] [--nprobe N]
 *   reid-search prune --gallery URI --older-than 30d
 *   reid-search info  --gallery URI
 *   reid-search export --gallery URI [--since T] [--until T] [--stream NAME]...
 *
 * Query photos are embedded with the image side of the checkpoint (an MDKT
 * pair's image_model) and pooled (mean of the unit embeddings, normalised);
 * the gallery holds the video side's tracklet embeddings. The checkpoint must
 * be the gallery's model (same tensors). Times T: ISO 8601 (UTC unless it
 * says otherwise), @UNIX_SECONDS, or an age such as 30d, 12h, 15m, 90s.
 * Links the gallery library, the kernels and the embedder; not training/. */
#include <glib.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedder.h"
#include "gallery.h"
#include "jsonl.h"
#include "reid_search.h"
#include "search_report.h"

static int usage(void) {
  fprintf(
      stderr,
      "usage: reid-search --gallery URI --model M.safetensors --query PHOTO [PHOTO...]\n"
      "                   [--top-k 20] [--since T] [--until T] [--stream NAME]...\n"
      "                   [--threshold X] [--json] [--html REPORT.html]\n"
      "                   [--index faiss [--index-file F] [--k-factor N|--ef-search N|--nprobe "
      "N]]\n"
      "                   [--device cpu|cuda|auto] [--chunk ROWS]\n"
      "       reid-search index --gallery URI [--index-file F] [--kind binary|hnsw|ivf]\n"
      "                         [--rebuild] [--k-factor N] [--m N] [--ef-search N] [--nlist N]\n"
      "                         [--nprobe N]\n"
      "       reid-search prune --gallery URI --older-than AGE   (e.g. 30d)\n"
      "       reid-search info --gallery URI\n"
      "T: ISO 8601 (UTC by default), @UNIX_SECONDS, or an age (30d, 12h, 15m, 90s).\n");
  return 2;
}

/* An age like 30d -> microseconds; -1 when it is not one. */
static int64_t parse_age(const char *s) {
  char *end;
  double v = g_ascii_strtod(s, &end);
  if (end == s || v < 0) return -1;
  double unit = !strcmp(end, "s")   ? 1
                : !strcmp(end, "m") ? 60
                : !strcmp(end, "h") ? 3600
                : !strcmp(end, "d") ? 86400
                : !strcmp(end, "w") ? 7 * 86400
                                    : -1;
  return unit < 0 ? -1 : (int64_t)(v * unit * 1e6);
}

static int parse_time(const char *s, int64_t *out) {
  int64_t age = parse_age(s);
  if (age >= 0) {
    *out = g_get_real_time() - age;
    return 1;
  }
  if (s[0] == '@') {
    char *end;
    double v = g_ascii_strtod(s + 1, &end);
    if (*end || end == s + 1) return 0;
    *out = (int64_t)(v * 1e6);
    return 1;
  }
  GTimeZone *utc = g_time_zone_new_utc();
  GDateTime *t = g_date_time_new_from_iso8601(s, utc);
  g_time_zone_unref(utc);
  if (!t) return 0;
  *out = g_date_time_to_unix(t) * 1000000 + g_date_time_get_microsecond(t);
  g_date_time_unref(t);
  return 1;
}

/* The options that take one string: where its value goes, or NULL. */
static const char **string_option(options *o, const char *name) {
  static const struct {
    const char *name;
    size_t offset;
  } table[] = {
      {"--gallery", offsetof(options, gallery)},
      {"--model", offsetof(options, model)},
      {"--html", offsetof(options, html)},
      {"--index", offsetof(options, index)},
      {"--index-file", offsetof(options, index_file)},
      {"--device", offsetof(options, device)},
      {"--older-than", offsetof(options, older_than)},
      {"--kind", offsetof(options, kind)},
  };
  for (size_t k = 0; k < sizeof table / sizeof table[0]; k++)
    if (!strcmp(name, table[k].name)) return (const char **)((char *)o + table[k].offset);
  return NULL;
}

/* `--query a.jpg b.jpg ...`: every argument from *i up to the next option; *i ends on the last. */
static int take_list(int argc, char **argv, int *i, const char **list, int *n, const char *what) {
  for (; *i < argc && argv[*i][0] != '-'; (*i)++) {
    if (*n == MAX_LIST) {
      fprintf(stderr, "reid-search: more than %d values for %s\n", MAX_LIST, what);
      return 0;
    }
    list[(*n)++] = argv[*i];
  }
  (*i)--;
  return 1;
}

static int parse_args(int argc, char **argv, options *o) {
  memset(o, 0, sizeof *o);
  o->command = "search";
  o->top_k = 20;
  o->threshold = -1.0;
  o->device = "auto";
  o->since = INT64_MIN;
  o->until = INT64_MAX;
  int i = 1;
  if (argc > 1 && argv[1][0] != '-') o->command = argv[i++];
  if (strcmp(o->command, "search") && strcmp(o->command, "index") && strcmp(o->command, "prune") &&
      strcmp(o->command, "info") && strcmp(o->command, "export")) {
    fprintf(stderr, "reid-search: unknown command '%s'\n", o->command);
    return 0;
  }
  for (; i < argc; i++) {
    const char *a = argv[i];
    const char **field;
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define VALUE()                                                                                    \
  do {                                                                                             \
    if (!v) {                                                                                      \
      fprintf(stderr, "reid-search: %s needs a value\n", a);                                       \
      return 0;                                                                                    \
    }                                                                                              \
    i++;                                                                                           \
  } while (0)
    if (!strcmp(a, "--json")) {
      o->json = 1;
    } else if (!strcmp(a, "--rebuild")) {
      o->rebuild = 1;
    } else if (!strcmp(a, "--query") || !strcmp(a, "--stream")) {
      VALUE();
      if (!strcmp(a, "--query") ? !take_list(argc, argv, &i, o->queries, &o->n_queries, a)
                                : !take_list(argc, argv, &i, o->streams, &o->n_streams, a))
        return 0;
    } else if ((field = string_option(o, a))) {
      VALUE();
      *field = v;
    } else if (!strcmp(a, "--top-k") || !strcmp(a, "--nlist") || !strcmp(a, "--nprobe") ||
               !strcmp(a, "--m") || !strcmp(a, "--ef-search") || !strcmp(a, "--k-factor") ||
               !strcmp(a, "--chunk")) {
      VALUE();
      char *end;
      long n = strtol(v, &end, 10);
      if (*end || n < 1 || n > 100000000) {
        fprintf(stderr, "reid-search: %s %s: want a positive integer\n", a, v);
        return 0;
      }
      *(!strcmp(a, "--top-k")       ? &o->top_k
        : !strcmp(a, "--nlist")     ? &o->nlist
        : !strcmp(a, "--nprobe")    ? &o->nprobe
        : !strcmp(a, "--m")         ? &o->hnsw_m
        : !strcmp(a, "--ef-search") ? &o->ef_search
        : !strcmp(a, "--k-factor")  ? &o->k_factor
                                    : &o->chunk) = (int)n;
    } else if (!strcmp(a, "--threshold")) {
      VALUE();
      char *end;
      o->threshold = g_ascii_strtod(v, &end);
      if (*end || o->threshold < -1 || o->threshold > 1) {
        fprintf(stderr, "reid-search: --threshold %s: want a cosine in [-1, 1]\n", v);
        return 0;
      }
    } else if (!strcmp(a, "--since") || !strcmp(a, "--until")) {
      VALUE();
      if (!parse_time(v, !strcmp(a, "--since") ? &o->since : &o->until)) {
        fprintf(stderr, "reid-search: %s %s: not an ISO 8601 time, @UNIX_SECONDS or an age\n", a,
                v);
        return 0;
      }
    } else {
      fprintf(stderr, "reid-search: unknown option '%s'\n", a);
      return 0;
    }
#undef VALUE
  }
  if (!o->gallery) return fprintf(stderr, "reid-search: --gallery is required\n"), 0;
  if (!strcmp(o->command, "search") && (!o->model || o->n_queries == 0))
    return fprintf(stderr, "reid-search: --model and --query are required\n"), 0;
  if (!strcmp(o->command, "prune") && !o->older_than)
    return fprintf(stderr, "reid-search prune: --older-than is required\n"), 0;
  if (o->index && strcmp(o->index, "faiss") && strcmp(o->index, "exact"))
    return fprintf(stderr, "reid-search: --index %s: want faiss or exact\n", o->index), 0;
  if (o->kind && strcmp(o->kind, "binary") && strcmp(o->kind, "hnsw") && strcmp(o->kind, "ivf"))
    return fprintf(stderr, "reid-search: --kind %s: want binary, hnsw or ivf\n", o->kind), 0;
  return 1;
}

int search_fail(const char *what) {
  fprintf(stderr, "reid-search: %s%s%s\n", what ? what : "", what ? ": " : "", reid_last_error());
  return 1;
}

/* The index file of a gallery: --index-file, else PATH.faiss next to an SQLite file. */
static gchar *index_path(const options *o, reid_gallery *g) {
  if (o->index_file) return g_strdup(o->index_file);
  if (!reid_gallery_is_sqlite(g)) return NULL;
  const char *p = o->gallery;
  if (g_str_has_prefix(p, "sqlite:")) p += 7;
  return g_strconcat(p, ".faiss", NULL);
}

/* ------------------------------------------------------------ commands */

static int cmd_info(const options *o, reid_gallery *g) {
  reid_gallery_model m;
  reid_gallery_dtype dtype;
  int64_t n = 0;
  if (reid_gallery_count(g, &n) != REID_OK) return search_fail(NULL);
  if (reid_gallery_get_model(g, &m, &dtype) != REID_OK) {
    printf("gallery %s: %lld tracklets, no model yet\n", reid_gallery_uri(g), (long long)n);
    return 0;
  }
  (void)o;
  printf("gallery %s: %lld tracklets, model %s (%d dims, %s, tensors sha256 %s), schema %d\n",
         reid_gallery_uri(g), (long long)n, m.name, m.dims,
         dtype == REID_GALLERY_F16 ? "float16" : "float32", m.hash, REID_GALLERY_SCHEMA_VERSION);
  return 0;
}

static int cmd_prune(const options *o, reid_gallery *g) {
  int64_t age = parse_age(o->older_than);
  if (age < 0) {
    fprintf(stderr, "reid-search prune: --older-than %s: want an age such as 30d, 12h\n",
            o->older_than);
    return 2;
  }
  int64_t before = g_get_real_time() - age, deleted = 0;
  if (reid_gallery_prune(g, before, &deleted) != REID_OK) return search_fail("prune");
  char when[40];
  search_format_time(before, when, sizeof when);
  printf("pruned %lld tracklets last seen before %s\n", (long long)deleted, when);
  return 0;
}

/* `export`: the rows as reidembed's JSON lines (tracklet-location's format), so that
 * tools reading those (reid-train scene-eval) read a gallery too. */
typedef struct exporter {
  reid_gallery *g;
  const char *model;
  int dims;
} exporter;

static reid_status export_chunk(void *user, const int64_t *ids, const float *emb, int n) {
  exporter *x = user;
  for (int i = 0; i < n; i++) {
    reid_gallery_hit h = {.id = ids[i]};
    REID_TRY(reid_gallery_fetch(x->g, &h, 1));
    if (!h.id) continue; /* pruned meanwhile */
    reid_tracklet_record r = {
        .stream = h.stream,
        .reason = "gallery",
        .model = x->model,
        .track_id = h.track_id,
        .first_pts = h.first_pts == REID_GALLERY_TIME_NONE ? UINT64_MAX : (uint64_t)h.first_pts,
        .last_pts = h.last_pts == REID_GALLERY_TIME_NONE ? UINT64_MAX : (uint64_t)h.last_pts,
        .frames = h.frames,
        .embedded_frames = h.frames,
        .embedding = emb + (size_t)i * x->dims,
        .dim = x->dims};
    memcpy(r.bbox, h.bbox, sizeof r.bbox);
    char *line = reid_json_tracklet_line(&r);
    free(h.stream);
    if (!line) return REID_ENOMEM;
    fputs(line, stdout);
    free(line);
  }
  return REID_OK;
}

static int cmd_export(const options *o, reid_gallery *g) {
  reid_gallery_model m;
  if (reid_gallery_get_model(g, &m, NULL) != REID_OK) return search_fail(NULL);
  reid_gallery_filter f;
  reid_gallery_filter_init(&f);
  f.since = o->since;
  f.until = o->until;
  f.streams = o->streams;
  f.n_streams = o->n_streams;
  exporter x = {.g = g, .model = m.name, .dims = m.dims};
  if (reid_gallery_scan(g, &f, 1024, export_chunk, &x) != REID_OK) return search_fail("export");
  return 0;
}

/* Embeds and pools the query photos with the image side of the model. */
static int embed_queries(const options *o, int dims, float *query, char *model_name, size_t cap) {
  reid_embedder_options eo = {.model_path = o->model,
                              .device = o->device,
                              .batch_size = 8,
                              .precision = REID_PRECISION_FP32};
  reid_embedder *e = NULL;
  if (reid_embedder_open(&eo, &e) != REID_OK) return search_fail(NULL);
  snprintf(model_name, cap, "%s", reid_embedder_model_name(e));
  int d = reid_embedder_dim(e, REID_ROLE_IMAGE);
  if (d != dims) {
    fprintf(stderr, "reid-search: %s embeds query photos in %d dimensions, the gallery holds %d\n",
            o->model, d, dims);
    reid_embedder_close(e);
    return 1;
  }
  float *all = g_new(float, (size_t)o->n_queries *d);
  reid_status st = reid_embedder_embed_images(e, o->queries, o->n_queries, all);
  reid_embedder_close(e);
  if (st != REID_OK) {
    g_free(all);
    return search_fail(NULL);
  }
  /* pooled like a tracklet: the normalised mean of unit embeddings */
  for (int j = 0; j < d; j++) query[j] = 0;
  for (int i = 0; i < o->n_queries; i++)
    for (int j = 0; j < d; j++) query[j] += all[(size_t)i * d + j];
  reid_l2_normalize_rows(query, 1, d);
  g_free(all);
  return 0;
}

static int cmd_search(const options *o, reid_gallery *g) {
  reid_gallery_model have, want;
  if (reid_gallery_get_model(g, &have, NULL) != REID_OK) return search_fail(NULL);
  if (reid_gallery_model_identify(o->model, have.dims, &want) != REID_OK) return search_fail(NULL);
  if (strcmp(have.hash, want.hash) != 0) {
    fprintf(stderr,
            "reid-search: gallery %s was made by model %s (tensors sha256 %.12s), not by %s "
            "(sha256 %.12s): its embeddings cannot be compared\n",
            reid_gallery_uri(g), have.name, have.hash, want.name, want.hash);
    return 1;
  }
  float *query = g_new(float, have.dims);
  char model_name[256];
  if (embed_queries(o, have.dims, query, model_name, sizeof model_name)) {
    g_free(query);
    return 1;
  }
  reid_gallery_filter f;
  reid_gallery_filter_init(&f);
  f.since = o->since;
  f.until = o->until;
  f.streams = o->streams;
  f.n_streams = o->n_streams;
  reid_gallery_hit *hits = NULL;
  int n = 0, rc = 0;
  gint64 t0 = g_get_monotonic_time();
  char method[128] = "exact";
  if (o->index && !strcmp(o->index, "faiss")) {
    gchar *path = index_path(o, g);
    rc = search_with_index(o, g, path, query, &f, &hits, &n);
    snprintf(method, sizeof method, "faiss index %s", path ? path : "");
    g_free(path);
  } else {
    reid_backend *be = NULL;
    reid_status st = reid_backend_create(o->device, 0, &be);
    if (st == REID_OK)
      st =
          reid_gallery_search(g, be, query, &f, o->top_k, (float)o->threshold, o->chunk, &hits, &n);
    if (st == REID_OK) snprintf(method, sizeof method, "exact on %s", be->name);
    reid_backend_destroy(be);
    if (st != REID_OK) rc = search_fail("search");
  }
  double seconds = (double)(g_get_monotonic_time() - t0) / 1e6;
  if (rc == 0) {
    search_report r = {.gallery = reid_gallery_uri(g),
                       .model = model_name,
                       .queries = o->queries,
                       .n_queries = o->n_queries,
                       .hits = hits,
                       .n_hits = n,
                       .method = method,
                       .seconds = seconds};
    if (o->json)
      search_write_json(stdout, &r);
    else
      search_write_text(stdout, &r);
    if (o->html && search_write_html(o->html, &r, g) != REID_OK) rc = search_fail(NULL);
  }
  reid_gallery_hits_free(hits, n);
  g_free(query);
  return rc;
}

int main(int argc, char **argv) {
  options o;
  if (!parse_args(argc, argv, &o)) return usage();
  reid_gallery *g = NULL;
  if (reid_gallery_open(o.gallery, &g) != REID_OK) return search_fail(NULL);
  int rc;
  if (!strcmp(o.command, "info")) {
    rc = cmd_info(&o, g);
  } else if (!strcmp(o.command, "export")) {
    rc = cmd_export(&o, g);
  } else if (!strcmp(o.command, "prune")) {
    rc = cmd_prune(&o, g);
  } else if (!strcmp(o.command, "index")) {
    gchar *path = index_path(&o, g);
    rc = search_index_command(&o, g, path);
    g_free(path);
  } else {
    rc = cmd_search(&o, g);
  }
  reid_gallery_close(g);
  return rc;
}
