/* The gallery store (kernels/gallery) on a real SQLite file and, when
 * with_postgres.sh started one (REID_TEST_PG), a real PostgreSQL server:
 * the same cases on both. Schema creation, the model record and its check,
 * idempotent batched inserts, exact search against a brute-force ranking,
 * time and stream filters, thumbnails, prune, fp16 storage, bounded chunks,
 * and clear errors (corrupt file, missing folder, wrong password). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../gst/unit_workdir.h"
#include "../test_util.h"
#include "backend.h"
#include "gallery.h"
#include "safetensors.h"

#define DIM  48
#define ROWS 300

static const char *workdir;

static void normalise(float *x, int d) {
  double ss = 0;
  for (int i = 0; i < d; i++) ss += (double)x[i] * x[i];
  for (int i = 0; i < d; i++) x[i] = (float)(x[i] / sqrt(ss));
}

static float dot(const float *a, const float *b, int d) {
  double s = 0;
  for (int i = 0; i < d; i++) s += (double)a[i] * b[i];
  return (float)s;
}

/* A tiny checkpoint: one tensor of `seed`-dependent values. */
static void write_checkpoint(const char *path, float seed) {
  st_writer *w = st_writer_new();
  float data[16];
  for (int i = 0; i < 16; i++) data[i] = seed + (float)i;
  int64_t shape[2] = {4, 4};
  CHECK_OK(st_writer_add_f32(w, "fc.weight", ST_F32, 2, shape, data));
  CHECK_OK(st_writer_save(w, path));
  st_writer_free(w);
}

typedef struct counter {
  int chunks, rows, max_chunk;
} counter;

static reid_status count_chunk(void *user, const int64_t *ids, const float *emb, int n) {
  counter *c = user;
  (void)ids, (void)emb;
  c->chunks++;
  c->rows += n;
  if (n > c->max_chunk) c->max_chunk = n;
  return REID_OK;
}

/* The rows: stream cam<i%3>, times i seconds apart, random unit embeddings. */
static float emb[ROWS][DIM];
static reid_gallery_row rows[ROWS];
static const char *streams[3] = {"cam0", "cam1", "cam2"};

static void make_rows(void) {
  test_rng r = test_rng_make(11);
  for (int i = 0; i < ROWS; i++) {
    test_fill_uniform(&r, emb[i], DIM, -1, 1);
    normalise(emb[i], DIM);
    rows[i] = (reid_gallery_row){.stream = streams[i % 3],
                                 .track_id = i / 3,
                                 .first_pts = (int64_t)i * 1000000000,
                                 .last_pts = i % 7 ? (int64_t)i * 1000000000 + 500000000
                                                   : REID_GALLERY_TIME_NONE,
                                 .first_time = 1700000000000000LL + (int64_t)i * 1000000,
                                 .last_time = 1700000000000000LL + (int64_t)i * 1000000 + 500000,
                                 .frames = 10 + i,
                                 .bbox = {(float)i, 2, 30, 60},
                                 .embedding = emb[i]};
  }
}

/* The expected ranking under a filter: brute force. */
static int expected(const float *q, const reid_gallery_filter *f, int k, int64_t *ids,
                    float *scores) {
  int n = 0;
  for (int i = 0; i < ROWS; i++) {
    if (rows[i].last_time < f->since || rows[i].first_time > f->until) continue;
    int in = f->n_streams == 0;
    for (int s = 0; s < f->n_streams; s++) in |= !strcmp(f->streams[s], rows[i].stream);
    if (!in) continue;
    float sc = dot(q, emb[i], DIM);
    /* insertion into the sorted top k (ties: smaller id first) */
    int pos = n < k ? n : k;
    while (pos > 0 && scores[pos - 1] < sc) pos--;
    if (pos >= k) continue;
    for (int j = (n < k ? n : k - 1); j > pos; j--) ids[j] = ids[j - 1], scores[j] = scores[j - 1];
    ids[pos] = i, scores[pos] = sc;
    if (n < k) n++;
  }
  return n;
}

static void check_search(reid_gallery *g, reid_backend *be, const int64_t *row_id, const float *q,
                         const reid_gallery_filter *f, int k, const char *what, float tol) {
  int64_t want[ROWS];
  float want_score[ROWS];
  int n_want = expected(q, f, k, want, want_score);
  reid_gallery_hit *hits = NULL;
  int n = 0;
  CHECK_OK(reid_gallery_search(g, be, q, f, k, -1.0f, 37, &hits, &n));
  CHECK(n == n_want, "%s: %d hits, want %d", what, n, n_want);
  for (int i = 0; i < n && i < n_want; i++) {
    CHECK(hits[i].id == row_id[want[i]], "%s: hit %d is id %lld, want %lld", what, i,
          (long long)hits[i].id, (long long)row_id[want[i]]);
    CHECK(fabsf(hits[i].score - want_score[i]) < tol, "%s: score %g, want %g", what,
          (double)hits[i].score, (double)want_score[i]);
    const reid_gallery_row *r = &rows[want[i]];
    CHECK(hits[i].stream && !strcmp(hits[i].stream, r->stream), "%s: stream", what);
    CHECK(hits[i].track_id == r->track_id && hits[i].frames == r->frames &&
              hits[i].first_time == r->first_time && hits[i].last_time == r->last_time &&
              hits[i].first_pts == r->first_pts && hits[i].last_pts == r->last_pts &&
              hits[i].bbox[0] == r->bbox[0],
          "%s: columns of hit %d differ", what, i);
  }
  reid_gallery_hits_free(hits, n);
}

static void run_cases(const char *uri, const char *label, reid_gallery_dtype dtype) {
  fprintf(stderr, "== %s (%s)\n", label, dtype == REID_GALLERY_F16 ? "f16" : "f32");
  reid_backend *be = NULL;
  CHECK_OK(reid_backend_create("cpu", 0, &be));
  char ck_a[1024], ck_a2[1024], ck_b[1024];
  snprintf(ck_a, sizeof ck_a, "%s/model_a.safetensors", workdir);
  snprintf(ck_a2, sizeof ck_a2, "%s/model_a_renamed.safetensors", workdir);
  snprintf(ck_b, sizeof ck_b, "%s/model_b.safetensors", workdir);
  write_checkpoint(ck_a, 1), write_checkpoint(ck_a2, 1), write_checkpoint(ck_b, 2);
  reid_gallery_model a, a2, b;
  CHECK_OK(reid_gallery_model_identify(ck_a, DIM, &a));
  CHECK_OK(reid_gallery_model_identify(ck_a2, DIM, &a2));
  CHECK_OK(reid_gallery_model_identify(ck_b, DIM, &b));
  CHECK(!strcmp(a.hash, a2.hash), "a renamed checkpoint keeps its identity");
  CHECK(strcmp(a.hash, b.hash) != 0, "other tensors, other identity");

  reid_gallery *g = NULL;
  CHECK_OK(reid_gallery_open(uri, &g));
  if (!g) return;
  reid_gallery_model m;
  CHECK(reid_gallery_get_model(g, &m, NULL) == REID_EINVAL, "a new gallery has no model");
  CHECK_OK(reid_gallery_bind_model(g, &a, dtype));
  /* in batches, as the writer does; the second round is all duplicates */
  int64_t row_id[ROWS];
  for (int done = 0; done < ROWS; done += 64) {
    int n = ROWS - done < 64 ? ROWS - done : 64, skipped = -1;
    CHECK_OK(reid_gallery_insert(g, rows + done, n, &skipped));
    CHECK(skipped == 0, "first insert skipped %d", skipped);
  }
  for (int i = 0; i < ROWS; i++) row_id[i] = rows[i].id;
  int skipped = 0;
  CHECK_OK(reid_gallery_insert(g, rows, 64, &skipped));
  CHECK(skipped == 64, "a retried batch is not stored twice (skipped %d)", skipped);
  int64_t count = 0;
  CHECK_OK(reid_gallery_count(g, &count));
  CHECK(count == ROWS, "%lld rows, want %d", (long long)count, ROWS);

  /* a second connection: the model check */
  reid_gallery *g2 = NULL;
  CHECK_OK(reid_gallery_open(uri, &g2));
  CHECK_OK(reid_gallery_bind_model(g2, &a2, dtype));
  reid_status st = reid_gallery_bind_model(g2, &b, dtype);
  CHECK(st == REID_EINVAL && strstr(reid_last_error(), "model_a") &&
            strstr(reid_last_error(), "model_b"),
        "another model is refused naming both: %s", reid_last_error());
  reid_gallery_close(g2);

  /* exact search, unfiltered and filtered, against brute force */
  float tol = dtype == REID_GALLERY_F16 ? 2e-3f : 1e-5f;
  test_rng r = test_rng_make(5);
  float q[DIM];
  test_fill_uniform(&r, q, DIM, -1, 1);
  normalise(q, DIM);
  reid_gallery_filter f;
  reid_gallery_filter_init(&f);
  check_search(g, be, row_id, q, &f, 10, "all", tol);
  check_search(g, be, row_id, emb[123], &f, 1, "a stored row finds itself", tol);
  f.since = rows[100].first_time;
  f.until = rows[200].first_time;
  check_search(g, be, row_id, q, &f, 20, "since/until", tol);
  const char *two[2] = {"cam2", "cam0"};
  f.streams = two;
  f.n_streams = 2;
  check_search(g, be, row_id, q, &f, 20, "since/until/streams", tol);
  reid_gallery_filter_init(&f);
  f.streams = two + 1;
  f.n_streams = 1;
  check_search(g, be, row_id, q, &f, ROWS, "one stream, all rows", tol);

  /* threshold */
  reid_gallery_hit *hits = NULL;
  int n = 0;
  reid_gallery_filter_init(&f);
  CHECK_OK(reid_gallery_search(g, be, emb[7], &f, 5, 0.99f, 0, &hits, &n));
  CHECK(n == 1 && hits[0].id == row_id[7], "threshold 0.99 keeps only the row itself (%d)", n);
  reid_gallery_hits_free(hits, n);

  /* chunks stay bounded */
  counter c = {0};
  CHECK_OK(reid_gallery_scan(g, NULL, 50, count_chunk, &c));
  CHECK(c.rows == ROWS && c.max_chunk == 50 && c.chunks == (ROWS + 49) / 50,
        "scan: %d rows in %d chunks of at most %d", c.rows, c.chunks, c.max_chunk);

  /* prune: rows that ended before row 150's end go, with their thumbnails */
  int64_t deleted = 0;
  CHECK_OK(reid_gallery_prune(g, rows[150].last_time, &deleted));
  CHECK(deleted == 150, "pruned %lld, want 150", (long long)deleted);
  CHECK_OK(reid_gallery_count(g, &count));
  CHECK(count == ROWS - 150, "%lld rows after prune", (long long)count);
  CHECK_OK(reid_gallery_search(g, be, emb[7], &f, 3, -1.0f, 0, &hits, &n));
  for (int i = 0; i < n; i++) CHECK(hits[i].id > row_id[149], "a pruned row was found");
  reid_gallery_hits_free(hits, n);
  reid_gallery_close(g);
  reid_backend_destroy(be);
}

static void run_thumbnails(const char *uri) {
  reid_gallery *g = NULL;
  CHECK_OK(reid_gallery_open(uri, &g));
  if (!g) return;
  reid_gallery_model m;
  CHECK_OK(reid_gallery_get_model(g, &m, NULL));
  uint8_t jpeg[300];
  for (int i = 0; i < 300; i++) jpeg[i] = (uint8_t)(i * 7);
  reid_gallery_row row = rows[0];
  row.stream = "thumbs";
  row.jpeg = jpeg;
  row.jpeg_size = sizeof jpeg;
  row.first_time = 1800000000000000LL, row.last_time = row.first_time + 1;
  CHECK_OK(reid_gallery_insert(g, &row, 1, NULL));
  uint8_t *back = NULL;
  size_t size = 0;
  CHECK_OK(reid_gallery_thumbnail(g, row.id, &back, &size));
  CHECK(back && size == sizeof jpeg && !memcmp(back, jpeg, size), "thumbnail round trip");
  free(back);
  CHECK_OK(reid_gallery_prune(g, row.last_time + 1, NULL));
  CHECK_OK(reid_gallery_thumbnail(g, row.id, &back, &size));
  CHECK(!back && size == 0, "prune removes the thumbnail too");
  reid_gallery_close(g);
}

static void run_errors(void) {
  char path[1024];
  snprintf(path, sizeof path, "%s/corrupt.sqlite", workdir);
  FILE *f = fopen(path, "wb");
  for (int i = 0; i < 8192; i++) fputc((i * 131) & 0xff, f);
  fclose(f);
  reid_gallery *g = NULL;
  reid_status st = reid_gallery_open(path, &g);
  CHECK(st == REID_EFORMAT && strstr(reid_last_error(), path) &&
            strstr(reid_last_error(), "not an SQLite gallery"),
        "corrupt file: %s: %s", reid_status_name(st), reid_last_error());
  snprintf(path, sizeof path, "sqlite:%s/no/such/folder/g.sqlite", workdir);
  st = reid_gallery_open(path, &g);
  CHECK(st == REID_EIO && strstr(reid_last_error(), "no/such/folder"), "missing folder: %s: %s",
        reid_status_name(st), reid_last_error());
  char redacted[256];
  reid_gallery_redact("postgresql://bob:s3cret@db.example/reid?sslmode=require", redacted,
                      sizeof redacted);
  CHECK(!strcmp(redacted, "postgresql://bob:***@db.example/reid?sslmode=require"), "%s", redacted);
  reid_gallery_redact("postgresql:///reid?user=bob&password=s3cret&host=/tmp", redacted,
                      sizeof redacted);
  CHECK(!strcmp(redacted, "postgresql:///reid?user=bob&password=***&host=/tmp"), "%s", redacted);
}

static void run_pg_errors(const char *uri) {
  /* wrong password: same server, same user */
  char bad[1024];
  const char *colon = strchr(uri + strlen("postgresql://"), ':');
  const char *at = strchr(uri, '@');
  snprintf(bad, sizeof bad, "%.*s:wrong-password%s", (int)(colon - uri), uri, at);
  reid_gallery *g = NULL;
  reid_status st = reid_gallery_open(bad, &g);
  CHECK(st == REID_EIO && strstr(reid_last_error(), "password authentication failed") &&
            strstr(reid_last_error(), "***") && !strstr(reid_last_error(), "wrong-password"),
        "wrong password: %s: %s", reid_status_name(st), reid_last_error());
  /* a server that is not there */
  st = reid_gallery_open("postgresql://reid@/reid?host=/nonexistent-socket-dir", &g);
  CHECK(st == REID_EIO && strstr(reid_last_error(), "cannot connect"), "no server: %s",
        reid_last_error());
}

int main(int argc, char **argv) {
  workdir = unit_workdir(argc, argv);
  if (!workdir) return 1;
  make_rows();
  char uri[1200];
  snprintf(uri, sizeof uri, "%s/g32.sqlite", workdir);
  unlink(uri);
  run_cases(uri, "sqlite", REID_GALLERY_F32);
  run_thumbnails(uri);
  snprintf(uri, sizeof uri, "sqlite:%s/g16.sqlite", workdir);
  unlink(uri + 7);
  run_cases(uri, "sqlite", REID_GALLERY_F16);
  run_errors();
  const char *pg = getenv("REID_TEST_PG");
  if (pg && *pg) {
    /* one gallery per database: the fp16 path (shared code) ran on SQLite */
    run_cases(pg, "postgresql", REID_GALLERY_F32);
    run_thumbnails(pg);
    run_pg_errors(pg);
  } else {
    fprintf(stderr, "REID_TEST_PG not set: PostgreSQL cases skipped\n");
  }
  return test_finish("test_gallery");
}
