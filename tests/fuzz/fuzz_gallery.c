/* libFuzzer harness: gallery rows read back by reid-search. A real SQLite
 * gallery is made with the store's own writer (a bound model of 4 dims, two
 * tracklets with thumbnails); the input then rewrites its stored values the
 * way another version, another tool or a damaged file could: each record of
 * the input is [op][length][bytes] and sets one column or metadata value to
 * those bytes, as a BLOB, TEXT or INTEGER, or to NULL (SQLite keeps whatever
 * type it is given; a NOT NULL column refuses NULL). The gallery is then read as reid-search reads
 * it: model, count, a scan, an exact search on the CPU, the hits' columns, the thumbnails. Whatever
 * is stored must give an error (any status) or a result, never a crash, an out-of-bounds read or a
 * leak. */
#include <sqlite3.h>

#include "backend.h"
#include "fuzz.h"
#include "gallery.h"

static const char *const updates[] = {
    "UPDATE reid_gallery_meta SET value = ?1 WHERE key = 'dims'",
    "UPDATE reid_gallery_meta SET value = ?1 WHERE key = 'dtype'",
    "UPDATE reid_gallery_meta SET value = ?1 WHERE key = 'schema_version'",
    "UPDATE reid_gallery_meta SET value = ?1 WHERE key = 'model_name'",
    "UPDATE reid_gallery_meta SET value = ?1 WHERE key = 'model_hash'",
    "DELETE FROM reid_gallery_meta WHERE key = ?1",
    "UPDATE reid_tracklets SET embedding = ?1 WHERE id = 1",
    "UPDATE reid_tracklets SET embedding = ?1 WHERE id = 2",
    "UPDATE reid_tracklets SET stream = ?1 WHERE id = 1",
    "UPDATE reid_tracklets SET track_id = ?1 WHERE id = 1",
    "UPDATE reid_tracklets SET first_pts = ?1, last_pts = ?1 WHERE id = 2",
    "UPDATE reid_tracklets SET first_time = ?1 WHERE id = 1",
    "UPDATE reid_tracklets SET last_time = ?1 WHERE id = 2",
    "UPDATE reid_tracklets SET frames = ?1 WHERE id = 1",
    "UPDATE reid_tracklets SET bbox_x = ?1, bbox_h = ?1 WHERE id = 2",
    "UPDATE reid_thumbnails SET jpeg = ?1 WHERE tracklet_id = 1",
    "UPDATE reid_tracklets SET id = ?1 WHERE id = 2",
    "INSERT INTO reid_tracklets (stream, track_id, first_time, last_time, frames, embedding) "
    "VALUES ('x', 9, 0, 0, 1, ?1)",
};
#define N_UPDATES ((int)(sizeof updates / sizeof *updates))

static reid_backend *cpu;

static void remove_gallery(const char *path) {
  char side[300];
  remove(path);
  snprintf(side, sizeof side, "%s-wal", path), remove(side);
  snprintf(side, sizeof side, "%s-shm", path), remove(side);
}

/* The gallery every input starts from, written once by the store itself (closing the last
 * connection folds the WAL into the file, so the file alone is the database). */
static void make_gallery(const char *path) {
  remove_gallery(path);
  reid_gallery *g;
  if (reid_gallery_open(path, &g) != REID_OK) abort();
  reid_gallery_model m = {.name = "m.safetensors", .dims = 4};
  memset(m.hash, 'a', 64);
  static const float e1[4] = {0.5f, 0.5f, 0.5f, 0.5f}, e2[4] = {1, 0, 0, 0};
  static const uint8_t jpeg[4] = {0xff, 0xd8, 0xff, 0xd9};
  reid_gallery_row rows[2] = {
      {.stream = "cam1",
       .track_id = 1,
       .first_pts = 0,
       .last_pts = 10,
       .first_time = 1000,
       .last_time = 2000,
       .frames = 3,
       .bbox = {1, 2, 3, 4},
       .embedding = e1,
       .jpeg = jpeg,
       .jpeg_size = 4},
      {.stream = "cam2",
       .track_id = 2,
       .first_pts = 5,
       .last_pts = 15,
       .first_time = 1500,
       .last_time = 2500,
       .frames = 4,
       .bbox = {5, 6, 7, 8},
       .embedding = e2},
  };
  if (reid_gallery_bind_model(g, &m, REID_GALLERY_F32) != REID_OK ||
      reid_gallery_insert(g, rows, 2, NULL) != REID_OK) {
    fprintf(stderr, "fuzz_gallery: %s\n", reid_last_error());
    abort();
  }
  reid_gallery_close(g);
}

static reid_status count_chunk(void *user, const int64_t *ids, const float *emb, int n) {
  volatile float sink = 0;
  for (int i = 0; i < n; i++) sink += emb[i * *(int *)user] + (float)ids[i];
  return REID_OK;
}

static void apply(const char *path, const uint8_t *data, size_t size) {
  sqlite3 *db;
  if (sqlite3_open(path, &db) != SQLITE_OK) abort();
  sqlite3_exec(db, "PRAGMA synchronous = OFF", NULL, NULL, NULL);
  for (size_t at = 0; at + 2 <= size;) {
    int op = data[at] % (N_UPDATES * 4), kind = op / N_UPDATES;
    size_t len = data[at + 1];
    at += 2;
    if (len > size - at) len = size - at;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, updates[op % N_UPDATES], -1, &s, NULL) == SQLITE_OK) {
      const void *bytes = data + at;
      if (kind == 0) sqlite3_bind_blob(s, 1, bytes, (int)len, SQLITE_TRANSIENT);
      if (kind == 1) sqlite3_bind_text(s, 1, bytes, (int)len, SQLITE_TRANSIENT);
      if (kind == 2) {
        int64_t v = 0;
        memcpy(&v, bytes, len < 8 ? len : 8);
        sqlite3_bind_int64(s, 1, v);
      }
      if (kind == 3) sqlite3_bind_null(s, 1);
      sqlite3_step(s);
    }
    sqlite3_finalize(s);
    at += len;
  }
  sqlite3_close(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static unsigned char *template;
  static size_t template_size;
  char path[256];
  if (!cpu) {
    if (reid_backend_create("cpu", 0, &cpu) != REID_OK) abort();
    snprintf(path, sizeof path, "%s", fuzz_path("template.sqlite"));
    make_gallery(path);
    template = fuzz_slurp(path, &template_size);
  }
  snprintf(path, sizeof path, "%s", fuzz_path("gallery.sqlite"));
  remove_gallery(path);
  fuzz_write(path, template, template_size);
  apply(path, data, size);
  reid_gallery *g;
  if (reid_gallery_open(path, &g) != REID_OK) return 0;
  reid_gallery_model m;
  reid_gallery_dtype dtype;
  int64_t count;
  if (reid_gallery_get_model(g, &m, &dtype) == REID_OK && m.dims > 0 && m.dims <= 4096 &&
      reid_gallery_count(g, &count) == REID_OK) {
    reid_gallery_filter f;
    reid_gallery_filter_init(&f);
    (void)reid_gallery_scan(g, &f, 2, count_chunk, &m.dims);
    float *q = calloc((size_t)m.dims, sizeof *q);
    q[0] = 1;
    reid_gallery_hit *hits = NULL;
    int n = 0;
    if (reid_gallery_search(g, cpu, q, &f, 5, -1.0f, 2, &hits, &n) == REID_OK) {
      (void)reid_gallery_fetch(g, hits, n);
      reid_gallery_hits_free(hits, n);
    }
    free(q);
    for (int64_t id = 0; id <= 3; id++) {
      uint8_t *jpeg = NULL;
      size_t js = 0;
      if (reid_gallery_thumbnail(g, id, &jpeg, &js) == REID_OK) free(jpeg);
    }
  }
  reid_gallery_close(g);
  return 0;
}
