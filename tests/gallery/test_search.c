/* reid-search end to end, on a real SQLite file and (with_postgres.sh) a
 * real PostgreSQL server: a gallery of 12 identities seen by 3 cameras over
 * 10 days, embedded with a `reid-train init` model; searches with two photos
 * of one identity (pooled), --json, time and stream filters, --threshold,
 * --html that parses as XML with every image inlined, another model refused,
 * prune, and (FAISS builds) `reid-search index` recall@10 >= 0.95 and
 * --index faiss returning the exact ranking's best.
 *
 *   test_search --reid-train PATH --reid-search PATH --workdir DIR */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test_util.h"
#include "embedder.h"
#include "gallery.h"
#include "image.h"
#include "json.h"

#define IDS    12
#define CAMS   3
#define DAY_US (86400LL * 1000000)
#define PIC_W  32
#define PIC_H  64

static const char *reid_train, *reid_search, *workdir;
static int64_t now_us;

/* identity i, variant v: a smooth picture whose colours depend on i; variants
 * shift the brightness a little (another sighting of the same person). */
static void picture(int id, int variant, reid_image *img) {
  reid_image_alloc(PIC_W, PIC_H, img);
  for (int y = 0; y < PIC_H; y++)
    for (int x = 0; x < PIC_W; x++) {
      uint8_t *p = img->data + y * img->stride + 3 * x;
      double t = (double)y / PIC_H, u = (double)x / PIC_W;
      p[0] = (uint8_t)(127 + 100 * sin(3.1 * id + 4 * t + 2 * u) + 4 * variant);
      p[1] = (uint8_t)(127 + 100 * sin(1.7 * id * id + 6 * t) + 4 * variant);
      p[2] = (uint8_t)(127 + 100 * cos(0.9 * id + 5 * u - 3 * t) - 4 * variant);
    }
}

static gchar *path_of(const char *name) {
  return g_build_filename(workdir, name, NULL);
}

static gchar *make_model(int seed) {
  gchar *name = g_strdup_printf("model-s%d.safetensors", seed), *path = path_of(name);
  gchar *seed_s = g_strdup_printf("%d", seed);
  gchar *args[] = {(gchar *)reid_train, "init",  "--arch", "resnet18",
                   "--input-size",      "64x32", "--seed", seed_s,
                   "--output",          path,    NULL};
  gint status = 1;
  if (!g_file_test(path, G_FILE_TEST_EXISTS))
    g_spawn_sync(NULL, args, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, NULL, &status,
                 NULL);
  g_free(name);
  g_free(seed_s);
  return path;
}

/* Runs reid-search with args; stdout and stderr in *out / *err; returns the exit code. */
static int run_search(const char *const *args, gchar **out, gchar **err) {
  GPtrArray *argv = g_ptr_array_new();
  g_ptr_array_add(argv, (gpointer)reid_search);
  for (int i = 0; args[i]; i++) g_ptr_array_add(argv, (gpointer)args[i]);
  g_ptr_array_add(argv, NULL);
  gint status = -1;
  GError *error = NULL;
  if (!g_spawn_sync(NULL, (gchar **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, out, err,
                    &status, &error)) {
    fprintf(stderr, "cannot run %s: %s\n", reid_search, error->message);
    g_error_free(error);
    g_ptr_array_free(argv, TRUE);
    return -1;
  }
  g_ptr_array_free(argv, TRUE);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The gallery at uri, bound to model (NULL when it cannot be opened). */
static reid_gallery *open_bound(const char *uri, const char *model) {
  reid_gallery *g = NULL;
  CHECK_OK(reid_gallery_open(uri, &g));
  if (!g) return NULL;
  reid_gallery_model m;
  CHECK_OK(reid_gallery_model_identify(model, 512, &m));
  CHECK_OK(reid_gallery_bind_model(g, &m, REID_GALLERY_F32));
  return g;
}

/* rows: identity i on camera c on day d (d = (i + c) % 10 days ago), track id 100 c + i */
static void fill_gallery(const char *uri, const char *model, reid_embedder *e) {
  reid_gallery *g = open_bound(uri, model);
  if (!g) return;
  static float emb[IDS * CAMS][512];
  reid_gallery_row rows[IDS * CAMS];
  uint8_t *jpegs[IDS * CAMS];
  static const char *cams[CAMS] = {"cam0", "cam1", "cam2"};
  for (int c = 0; c < CAMS; c++)
    for (int i = 0; i < IDS; i++) {
      int r = c * IDS + i;
      reid_image img;
      picture(i, c + 2, &img);
      gchar *file = g_strdup_printf("%s/row-%d.png", workdir, r);
      CHECK_OK(reid_image_save_png(file, &img));
      const char *paths[1] = {file};
      CHECK_OK(reid_embedder_embed_images(e, paths, 1, emb[r]));
      size_t size = 0;
      CHECK_OK(reid_image_encode_jpeg(&img, 90, &jpegs[r], &size));
      int64_t t = now_us - ((i + c) % 10) * DAY_US - 3600LL * 1000000;
      rows[r] = (reid_gallery_row){.stream = cams[c],
                                   .track_id = 100 * c + i,
                                   .first_pts = 0,
                                   .last_pts = 1000000000,
                                   .first_time = t,
                                   .last_time = t + 1000000,
                                   .frames = 30,
                                   .bbox = {1, 2, PIC_W, PIC_H},
                                   .embedding = emb[r],
                                   .jpeg = jpegs[r],
                                   .jpeg_size = size};
      reid_image_free(&img);
      g_unlink(file);
      g_free(file);
    }
  CHECK_OK(reid_gallery_insert(g, rows, IDS * CAMS, NULL));
  for (int r = 0; r < IDS * CAMS; r++) free(jpegs[r]);
  reid_gallery_close(g);
}

static json_value *parse_json(const char *text) {
  json_value *v = NULL;
  CHECK_OK(json_parse(text ? text : "", text ? strlen(text) : 0, &v));
  return v;
}

/* results[i] field helpers */
static const json_value *result(const json_value *doc, size_t i) {
  const json_value *r = json_get(doc, "results");
  return r && r->type == JSON_ARRAY && i < r->count ? &r->items[i] : NULL;
}
static size_t n_results(const json_value *doc) {
  const json_value *r = json_get(doc, "results");
  return r && r->type == JSON_ARRAY ? r->count : 0;
}
static int64_t int_of(const json_value *o, const char *k) {
  int64_t v = -1;
  const json_value *x = o ? json_get(o, k) : NULL;
  if (x) json_get_int64(x, &v);
  return v;
}
static double num_of(const json_value *o, const char *k) {
  const json_value *x = o ? json_get(o, k) : NULL;
  return x && x->type == JSON_NUMBER ? x->num : NAN;
}
static const char *str_of(const json_value *o, const char *k) {
  const json_value *x = o ? json_get(o, k) : NULL;
  return x && x->type == JSON_STRING ? x->str : "";
}

/* ------------------------------------------------------------ HTML */

typedef struct html_state {
  int imgs, bad_images, rows;
} html_state;

static void html_start(GMarkupParseContext *c, const gchar *name, const gchar **keys,
                       const gchar **values, gpointer user, GError **error) {
  html_state *s = user;
  (void)c, (void)error;
  if (!strcmp(name, "tr")) s->rows++;
  if (strcmp(name, "img")) return;
  s->imgs++;
  for (int i = 0; keys[i]; i++) {
    if (strcmp(keys[i], "src")) continue;
    const char *b64 = strstr(values[i], ";base64,");
    gsize n = 0;
    guchar *data = b64 ? g_base64_decode(b64 + 8, &n) : NULL;
    int ok = data && ((n > 2 && data[0] == 0xff && data[1] == 0xd8) ||
                      (n > 4 && !memcmp(data, "\x89PNG", 4)));
    s->bad_images += !ok;
    g_free(data);
  }
}

static void check_html(const char *path, int want_imgs, int want_rows) {
  gchar *text = NULL;
  gsize len = 0;
  CHECK(g_file_get_contents(path, &text, &len, NULL), "--html wrote %s", path);
  if (!text) return;
  /* XHTML: an XML parser reads it once the doctype line is skipped */
  const char *body = strstr(text, "<html");
  GMarkupParser parser = {.start_element = html_start};
  html_state s = {0};
  GMarkupParseContext *c = g_markup_parse_context_new(&parser, 0, &s, NULL);
  GError *error = NULL;
  gboolean ok = body && g_markup_parse_context_parse(c, body, -1, &error) &&
                g_markup_parse_context_end_parse(c, &error);
  CHECK(ok, "--html parses: %s", error ? error->message : "no <html>");
  if (error) g_error_free(error);
  g_markup_parse_context_free(c);
  CHECK(s.imgs == want_imgs && s.bad_images == 0 && s.rows == want_rows + 1,
        "--html: %d images (%d bad), %d table rows; want %d images, %d rows", s.imgs, s.bad_images,
        s.rows, want_imgs, want_rows);
  g_free(text);
}

/* ------------------------------------------------------------ cases */

static void run_cases(const char *uri, const char *label, const char *model,
                      const char *other_model, reid_embedder *e) {
  fprintf(stderr, "== %s\n", label);
  fill_gallery(uri, model, e);
  /* two photos of identity 5, pooled */
  gchar *q1 = path_of("query-5a.png"), *q2 = path_of("query-5b.png");
  reid_image img;
  picture(5, 0, &img);
  CHECK_OK(reid_image_save_png(q1, &img));
  reid_image_free(&img);
  picture(5, 1, &img);
  CHECK_OK(reid_image_save_png(q2, &img));
  reid_image_free(&img);

  gchar *out = NULL, *err = NULL;
  const char *a1[] = {"--gallery", uri, "--model", model,      "--query", q1,  q2,
                      "--top-k",   "3", "--json",  "--device", "cpu",     NULL};
  int rc = run_search(a1, &out, &err);
  CHECK(rc == 0, "%s: search exit %d: %s", label, rc, err);
  json_value *doc = parse_json(out);
  CHECK(n_results(doc) == 3, "%s: %zu results", label, n_results(doc));
  for (size_t i = 0; i < n_results(doc); i++) {
    CHECK(int_of(result(doc, i), "track_id") % 100 == 5,
          "%s: result %zu is identity %lld, want 5 on every camera", label, i,
          (long long)int_of(result(doc, i), "track_id"));
    if (i) CHECK(num_of(result(doc, i), "score") <= num_of(result(doc, i - 1), "score"), "order");
  }
  json_free(doc), g_free(out), g_free(err);

  /* stream and time filters: cam1, seen between 6.5 and 2.5 days ago */
  gchar *since =
      g_strdup_printf("@%lld", (long long)((now_us - 6 * DAY_US - DAY_US / 2) / 1000000));
  GDateTime *u = g_date_time_new_from_unix_utc((now_us - 2 * DAY_US - DAY_US / 2) / 1000000);
  gchar *until = g_date_time_format(u, "%Y-%m-%dT%H:%M:%SZ");
  g_date_time_unref(u);
  const char *a2[] = {"--gallery", uri,   "--model", model, "--query", q1,   "--stream", "cam1",
                      "--since",   since, "--until", until, "--top-k", "50", "--json",   NULL};
  rc = run_search(a2, &out, &err);
  CHECK(rc == 0, "%s: filtered search exit %d: %s", label, rc, err);
  doc = parse_json(out);
  int want = 0;
  for (int i = 0; i < IDS; i++) want += (i + 1) % 10 >= 3 && (i + 1) % 10 <= 6;
  CHECK((int)n_results(doc) == want, "%s: %zu filtered results, want %d", label, n_results(doc),
        want);
  for (size_t i = 0; i < n_results(doc); i++) {
    const json_value *r = result(doc, i);
    int id = (int)(int_of(r, "track_id") - 100);
    CHECK(!strcmp(str_of(r, "stream"), "cam1") && (id + 1) % 10 >= 3 && (id + 1) % 10 <= 6,
          "%s: result %s track %d outside the filter", label, str_of(r, "stream"), id + 100);
  }
  json_free(doc), g_free(out), g_free(err);
  g_free(since), g_free(until);

  /* threshold: the best score only, then everything at or above it */
  const char *a3[] = {"--gallery", uri,       "--model", model,    "--query",
                      q1,          "--top-k", "1",       "--json", NULL};
  run_search(a3, &out, &err);
  doc = parse_json(out);
  double best = num_of(result(doc, 0), "score");
  json_free(doc), g_free(out), g_free(err);
  gchar *thr = g_strdup_printf("%.6f", best - 1e-6);
  const char *a4[] = {"--gallery", uri,           "--model", model,    "--query",
                      q1,          "--threshold", thr,       "--json", NULL};
  rc = run_search(a4, &out, &err);
  doc = parse_json(out);
  CHECK(rc == 0 && n_results(doc) >= 1, "%s: threshold", label);
  for (size_t i = 0; i < n_results(doc); i++)
    CHECK(num_of(result(doc, i), "score") >= best - 1e-5, "%s: below the threshold", label);
  json_free(doc), g_free(out), g_free(err), g_free(thr);

  /* --html: query photos and thumbnails inlined, parses */
  gchar *html = path_of("report.html");
  const char *a5[] = {"--gallery", uri,       "--model", model,    "--query", q1,
                      q2,          "--top-k", "4",       "--html", html,      NULL};
  rc = run_search(a5, &out, &err);
  CHECK(rc == 0 && strstr(out, "rank"), "%s: text + html exit %d: %s", label, rc, err);
  check_html(html, 2 + 4, 4);
  g_free(out), g_free(err), g_free(html);

  /* another model's query is refused, naming both */
  const char *a6[] = {"--gallery", uri, "--model", other_model, "--query", q1, NULL};
  rc = run_search(a6, &out, &err);
  CHECK(rc == 1 && strstr(err, "model-s1.safetensors") && strstr(err, "model-s2.safetensors"),
        "%s: other model: exit %d: %s", label, rc, err);
  g_free(out), g_free(err);

  /* prune: rows last seen more than 5.5 days ago go */
  const char *a7[] = {"prune", "--gallery", uri, "--older-than", "5.5d", NULL};
  rc = run_search(a7, &out, &err);
  int pruned = 0;
  for (int c = 0; c < CAMS; c++)
    for (int i = 0; i < IDS; i++) pruned += (i + c) % 10 >= 6;
  gchar *expect = g_strdup_printf("pruned %d tracklets", pruned);
  CHECK(rc == 0 && strstr(out, expect), "%s: prune exit %d: %s (want '%s')", label, rc, out,
        expect);
  g_free(expect), g_free(out), g_free(err);
  const char *a8[] = {"--gallery", uri,       "--model", model,    "--query",
                      q1,          "--top-k", "1000",    "--json", NULL};
  rc = run_search(a8, &out, &err);
  doc = parse_json(out);
  CHECK((int)n_results(doc) == IDS * CAMS - pruned, "%s: %zu rows after prune, want %d", label,
        n_results(doc), IDS * CAMS - pruned);
  json_free(doc), g_free(out), g_free(err);
  g_free(q1), g_free(q2);
}

#if HAVE_FAISS
/* Rows [from, to) of a bulk gallery: clustered random embeddings (the model's dims). */
static void add_bulk(reid_gallery *g, int from, int to) {
  enum { CENTRES = 300 };
  test_rng r = test_rng_make(3);
  static float centres[CENTRES][512], emb[512 * 500];
  for (int c = 0; c < CENTRES; c++) test_fill_uniform(&r, centres[c], 512, -1, 1);
  r = test_rng_make(4 + from);
  reid_gallery_row rows[500];
  for (int done = from; done < to; done += 500) {
    for (int i = 0; i < 500; i++) {
      float *e = emb + (size_t)i * 512;
      const float *c = centres[(done + i) % CENTRES];
      double ss = 0;
      for (int j = 0; j < 512; j++)
        e[j] = c[j] + test_rng_uniform(&r, -0.6f, 0.6f), ss += e[j] * e[j];
      for (int j = 0; j < 512; j++) e[j] = (float)(e[j] / sqrt(ss));
      rows[i] = (reid_gallery_row){.stream = "bulk",
                                   .track_id = done + i,
                                   .first_time = now_us,
                                   .last_time = now_us,
                                   .frames = 1,
                                   .embedding = e,
                                   .first_pts = REID_GALLERY_TIME_NONE,
                                   .last_pts = REID_GALLERY_TIME_NONE};
    }
    CHECK_OK(reid_gallery_insert(g, rows, 500, NULL));
  }
}

/* `reid-search index ARGS...`: exit 0, `expect` in its report, recall@10 >= 0.95. */
static void check_index(const char *const *args, const char *expect) {
  gchar *out = NULL, *err = NULL;
  int rc = run_search(args, &out, &err);
  const char *p = out ? strstr(out, "against exact") : NULL;
  const char *rec = out ? g_strrstr(out, "recall@10 ") : NULL;
  double recall = rec ? g_ascii_strtod(rec + 10, NULL) : 0;
  fprintf(stderr, "%s", out ? out : "");
  CHECK(rc == 0 && p && recall >= 0.95 && strstr(out, expect),
        "index %s: exit %d, recall %.4f (want '%s'): %s %s", args[5] ? args[5] : "", rc, recall,
        expect, out, err);
  g_free(out), g_free(err);
}

/* The index kinds' recall@10 against exact search, an update with new rows,
 * an indexed search against the exact one, a corrupt index file. */
static void run_faiss(const char *uri, const char *model) {
  reid_gallery *g = open_bound(uri, model);
  if (!g) return;
  enum { N = 6000 };
  add_bulk(g, 0, N);
  gchar *index = path_of("bulk.faiss");
  g_unlink(index);
  /* the default kind (binary codes + rescoring), then 500 rows added to it */
  const char *a1[] = {"index", "--gallery", uri, "--index-file", index, NULL};
  check_index(a1, "LSH512(medians),RFlat");
  add_bulk(g, N, N + 500);
  reid_gallery_close(g);
  check_index(a1, "(500 added)");
  /* the same query through the index and exactly: the same best rows */
  gchar *q = path_of("query-5a.png");
  const char *a2[] = {"--gallery", uri,      "--model", model,   "--query",      q,     "--top-k",
                      "5",         "--json", "--index", "faiss", "--index-file", index, NULL};
  const char *a3[] = {"--gallery", uri,       "--model", model,    "--query",
                      q,           "--top-k", "5",       "--json", NULL};
  gchar *o2, *o3, *e2, *e3;
  int rc2 = run_search(a2, &o2, &e2), rc3 = run_search(a3, &o3, &e3);
  json_value *d2 = parse_json(o2), *d3 = parse_json(o3);
  CHECK(rc2 == 0 && rc3 == 0 && n_results(d2) == 5 && n_results(d3) == 5,
        "faiss search: exit %d/%d: %s", rc2, rc3, e2);
  CHECK(int_of(result(d2, 0), "id") == int_of(result(d3, 0), "id"),
        "faiss: best id %lld, exact %lld", (long long)int_of(result(d2, 0), "id"),
        (long long)int_of(result(d3, 0), "id"));
  json_free(d2), json_free(d3);
  g_free(o2), g_free(o3), g_free(e2), g_free(e3);
  /* filtered through the index: only the stream asked, the same best row as exact search */
  const char *a7[] = {"--gallery", uri,        "--model", model,     "--query", q,
                      "--top-k",   "5",        "--json",  "--index", "faiss",   "--index-file",
                      index,       "--stream", "bulk",    NULL};
  const char *a8[] = {"--gallery", uri, "--model", model,      "--query", q,
                      "--top-k",   "5", "--json",  "--stream", "bulk",    NULL};
  rc2 = run_search(a7, &o2, &e2), rc3 = run_search(a8, &o3, &e3);
  d2 = parse_json(o2), d3 = parse_json(o3);
  int all_bulk = n_results(d2) == 5;
  for (size_t i = 0; i < n_results(d2); i++)
    all_bulk &= !g_strcmp0(str_of(result(d2, i), "stream"), "bulk");
  CHECK(rc2 == 0 && rc3 == 0 && all_bulk && n_results(d3) == 5 &&
            int_of(result(d2, 0), "id") == int_of(result(d3, 0), "id"),
        "faiss --stream bulk: exit %d/%d, all bulk %d, best %lld (exact %lld): %s", rc2, rc3,
        all_bulk, (long long)int_of(result(d2, 0), "id"), (long long)int_of(result(d3, 0), "id"),
        e2);
  json_free(d2), json_free(d3);
  g_free(o2), g_free(o3), g_free(e2), g_free(e3);
  /* the other kinds */
  const char *a4[] = {"index", "--gallery", uri,  "--index-file", index, "--kind",
                      "ivf",   "--nlist",   "16", "--rebuild",    NULL};
  check_index(a4, "IVF16,Flat");
  const char *a5[] = {"index", "--gallery", uri, "--index-file", index, "--kind", "hnsw",
                      "--m",   "4",         NULL};
  check_index(a5, "HNSW4,Flat");
  /* a file that is not an index: a clear error naming it */
  g_file_set_contents(index, "not an index", -1, NULL);
  gchar *o6, *e6;
  int rc6 = run_search(a2, &o6, &e6);
  CHECK(rc6 != 0 && e6 && strstr(e6, index) && strstr(e6, "not a readable FAISS index"),
        "corrupt index: exit %d: %s", rc6, e6);
  g_free(o6), g_free(e6), g_free(q), g_free(index);
}
#endif

int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--reid-train")) reid_train = argv[i + 1];
    if (!strcmp(argv[i], "--reid-search")) reid_search = argv[i + 1];
    if (!strcmp(argv[i], "--workdir")) workdir = argv[i + 1];
  }
  if (!reid_train || !reid_search || !workdir) {
    fprintf(stderr, "usage: test_search --reid-train P --reid-search P --workdir DIR\n");
    return 1;
  }
  g_mkdir_with_parents(workdir, 0755);
  now_us = g_get_real_time();
  gchar *model = make_model(1), *other = make_model(2);
  reid_embedder_options eo = {.model_path = model, .device = "cpu", .batch_size = 4};
  reid_embedder *e = NULL;
  CHECK_OK(reid_embedder_open(&eo, &e));
  if (!e) return test_finish("test_search");
  gchar *sqlite = path_of("search.sqlite");
  g_unlink(sqlite);
  run_cases(sqlite, "sqlite", model, other, e);
  const char *pg = getenv("REID_TEST_PG");
  if (pg && *pg)
    run_cases(pg, "postgresql", model, other, e);
  else
    fprintf(stderr, "REID_TEST_PG not set: PostgreSQL cases skipped\n");
#if HAVE_FAISS
  run_faiss(sqlite, model);
#else
  fprintf(stderr, "no FAISS in this build: index cases skipped\n");
#endif
  reid_embedder_close(e);
  g_free(sqlite), g_free(model), g_free(other);
  return test_finish("test_search");
}
