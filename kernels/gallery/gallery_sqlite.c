/* The gallery in an SQLite file (Debian's libsqlite3): WAL journal so that
 * several pipelines (processes) write one file while searches read it;
 * synchronous=NORMAL (a killed process loses nothing committed; a power cut
 * may lose the last transactions); writers wait up to 10 s for each other. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gallery_impl.h"

#define DB(g) ((sqlite3 *)(g)->db)

/* One error-check macro for SQLite calls: fails naming the gallery and SQLite's message. */
#define SQL_TRY(g, call, what)                                                                     \
  do {                                                                                             \
    int sql_rc_ = (call);                                                                          \
    if (sql_rc_ != SQLITE_OK && sql_rc_ != SQLITE_DONE && sql_rc_ != SQLITE_ROW)                   \
      return sqlite_fail(g, sql_rc_, what);                                                        \
  } while (0)

static reid_status sqlite_fail(reid_gallery *g, int rc, const char *what) {
  const char *msg = g->db ? sqlite3_errmsg(DB(g)) : sqlite3_errstr(rc);
  int code = rc & 0xff;
  if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT)
    return reid_fail(REID_EFORMAT,
                     "gallery %s: %s: the file is not an SQLite gallery or is damaged (%s)", g->uri,
                     what, msg);
  return reid_fail(REID_EIO, "gallery %s: %s: %s", g->uri, what, msg);
}

/* SQL with $N parameters -> SQLite's ?N */
static reid_status prepare(reid_gallery *g, const char *sql, sqlite3_stmt **stmt) {
  char text[4096];
  snprintf(text, sizeof text, "%s", sql);
  for (char *p = text; *p; p++)
    if (*p == '$') *p = '?';
  SQL_TRY(g, sqlite3_prepare_v2(DB(g), text, -1, stmt, NULL), "preparing a statement");
  return REID_OK;
}

static reid_status sq_exec(reid_gallery *g, const char *sql) {
  char *err = NULL;
  /* a deferred transaction that starts reading and then writes can fail at once
   * (SQLITE_BUSY) instead of waiting; writers take the lock up front */
  if (strcmp(sql, "BEGIN") == 0) sql = "BEGIN IMMEDIATE";
  int rc = sqlite3_exec(DB(g), sql, NULL, NULL, &err);
  if (rc != SQLITE_OK) {
    reid_status st = sqlite_fail(g, rc, sql);
    sqlite3_free(err);
    return st;
  }
  return REID_OK;
}

static reid_status sq_open(reid_gallery *g, const char *path) {
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  g->db = db;
  if (rc != SQLITE_OK) return sqlite_fail(g, rc, "opening");
  sqlite3_busy_timeout(db, 10000);
  /* A new file gets 16 KiB pages: a 512-d float32 row (2.1 KiB) fills 4 KiB pages only
   * half (one row each); 16 KiB pages hold seven. Has no effect on an existing file. */
  REID_TRY(sq_exec(g, "PRAGMA page_size=16384"));
  /* scans read the file through mmap (no copy per page; SQLite caps the size) */
  REID_TRY(sq_exec(g, "PRAGMA mmap_size=68719476736"));
  /* journal_mode answers with a row; sqlite3_exec ignores it. The first query reads
   * the header, so a file that is not a database fails here, by name. */
  REID_TRY(sq_exec(g, "PRAGMA journal_mode=WAL"));
  REID_TRY(sq_exec(g, "PRAGMA synchronous=NORMAL"));
  return REID_OK;
}

static void sq_close(reid_gallery *g) {
  for (int i = 0; i < 2; i++) sqlite3_finalize(g->cached[i]), g->cached[i] = NULL;
  sqlite3_close_v2(DB(g));
  g->db = NULL;
}

static reid_status sq_create_schema(reid_gallery *g) {
  char sql[2048];
  gallery_schema_sql("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB", sql, sizeof sql);
  /* AUTOINCREMENT: ids are never reused after a prune (FAISS indexes keep ids) */
  REID_TRY(sq_exec(g, "BEGIN IMMEDIATE"));
  reid_status st = sq_exec(g, sql);
  if (st == REID_OK) return sq_exec(g, "COMMIT");
  sq_exec(g, "ROLLBACK");
  return st;
}

static reid_status sq_get_meta(reid_gallery *g, const char *key, char *value, size_t cap,
                               int *found) {
  sqlite3_stmt *s;
  *found = 0;
  REID_TRY(prepare(g, "SELECT value FROM reid_gallery_meta WHERE key = $1", &s));
  sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    const char *text = (const char *)sqlite3_column_text(s, 0); /* NULL for a NULL value */
    snprintf(value, cap, "%s", text ? text : "");
    *found = 1;
  }
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sqlite_fail(g, rc, "reading the model record");
  return REID_OK;
}

static reid_status sq_put_meta(reid_gallery *g, const char *key, const char *value) {
  sqlite3_stmt *s;
  REID_TRY(prepare(g,
                   "INSERT INTO reid_gallery_meta (key, value) VALUES ($1, $2) "
                   "ON CONFLICT (key) DO NOTHING",
                   &s));
  sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s);
  sqlite3_finalize(s);
  SQL_TRY(g, rc, "recording the model");
  return REID_OK;
}

static void bind_pts(sqlite3_stmt *s, int i, int64_t v) {
  if (v == REID_GALLERY_TIME_NONE)
    sqlite3_bind_null(s, i);
  else
    sqlite3_bind_int64(s, i, v);
}

/* A statement prepared once per connection (cached[slot]), reset for reuse. */
static reid_status cached(reid_gallery *g, int slot, const char *sql, sqlite3_stmt **out) {
  if (!g->cached[slot]) {
    sqlite3_stmt *s;
    REID_TRY(prepare(g, sql, &s));
    g->cached[slot] = s;
  }
  *out = g->cached[slot];
  sqlite3_reset(*out);
  sqlite3_clear_bindings(*out);
  return REID_OK;
}

static reid_status insert_one(reid_gallery *g, const reid_gallery_row *r, const void *blob,
                              size_t bytes, int64_t *id) {
  sqlite3_stmt *s;
  *id = 0;
  REID_TRY(cached(g, 0,
                  "INSERT INTO reid_tracklets (stream, track_id, first_pts, last_pts, "
                  "first_time, last_time, frames, bbox_x, bbox_y, bbox_w, bbox_h, embedding) "
                  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
                  "ON CONFLICT (stream, track_id, first_time) DO NOTHING",
                  &s));
  sqlite3_bind_text(s, 1, r->stream, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 2, r->track_id);
  bind_pts(s, 3, r->first_pts);
  bind_pts(s, 4, r->last_pts);
  sqlite3_bind_int64(s, 5, r->first_time);
  sqlite3_bind_int64(s, 6, r->last_time);
  sqlite3_bind_int(s, 7, r->frames);
  for (int k = 0; k < 4; k++) sqlite3_bind_double(s, 8 + k, r->bbox[k]);
  sqlite3_bind_blob(s, 12, blob, (int)bytes, SQLITE_STATIC);
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  SQL_TRY(g, rc, "inserting a tracklet");
  if (sqlite3_changes(DB(g)) == 0) return REID_OK; /* already stored */
  *id = sqlite3_last_insert_rowid(DB(g));
  if (!r->jpeg) return REID_OK;
  REID_TRY(cached(g, 1, "INSERT INTO reid_thumbnails (tracklet_id, jpeg) VALUES ($1, $2)", &s));
  sqlite3_bind_int64(s, 1, *id);
  sqlite3_bind_blob(s, 2, r->jpeg, (int)r->jpeg_size, SQLITE_STATIC);
  rc = sqlite3_step(s);
  sqlite3_reset(s);
  SQL_TRY(g, rc, "inserting a thumbnail");
  return REID_OK;
}

static reid_status sq_insert_rows(reid_gallery *g, const reid_gallery_row *rows,
                                  const void *const *blobs, size_t bytes, int n, int64_t *ids) {
  for (int i = 0; i < n; i++) REID_TRY(insert_one(g, &rows[i], blobs[i], bytes, &ids[i]));
  return REID_OK;
}

static reid_status sq_count(reid_gallery *g, int64_t *out) {
  sqlite3_stmt *s;
  REID_TRY(prepare(g, "SELECT count(*) FROM reid_tracklets", &s));
  int rc = sqlite3_step(s);
  *out = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
  sqlite3_finalize(s);
  SQL_TRY(g, rc, "counting tracklets");
  return REID_OK;
}

static int bind_filter(sqlite3_stmt *s, const reid_gallery_filter *f, int i) {
  if (f->since != INT64_MIN) sqlite3_bind_int64(s, i++, f->since);
  if (f->until != INT64_MAX) sqlite3_bind_int64(s, i++, f->until);
  for (int k = 0; k < f->n_streams; k++)
    sqlite3_bind_text(s, i++, f->streams[k], -1, SQLITE_STATIC);
  return i;
}

static reid_status sq_scan(reid_gallery *g, const reid_gallery_filter *f, gallery_row_fn fn,
                           void *user) {
  char where[2048], sql[2304];
  gallery_filter_sql(f, 1, where, sizeof where);
  snprintf(sql, sizeof sql, "SELECT id, embedding FROM reid_tracklets WHERE %s ORDER BY id", where);
  sqlite3_stmt *s;
  REID_TRY(prepare(g, sql, &s));
  bind_filter(s, f, 1);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW)
    fn(user, sqlite3_column_int64(s, 0), sqlite3_column_blob(s, 1),
       (size_t)sqlite3_column_bytes(s, 1));
  sqlite3_finalize(s);
  SQL_TRY(g, rc, "reading embeddings");
  return REID_OK;
}

static int64_t column_pts(sqlite3_stmt *s, int i) {
  return sqlite3_column_type(s, i) == SQLITE_NULL ? REID_GALLERY_TIME_NONE
                                                  : sqlite3_column_int64(s, i);
}

static reid_status sq_fetch(reid_gallery *g, reid_gallery_hit *h) {
  sqlite3_stmt *s;
  REID_TRY(prepare(g,
                   "SELECT stream, track_id, first_pts, last_pts, first_time, last_time, frames, "
                   "bbox_x, bbox_y, bbox_w, bbox_h FROM reid_tracklets WHERE id = $1",
                   &s));
  sqlite3_bind_int64(s, 1, h->id);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    free(h->stream);
    const char *stream = (const char *)sqlite3_column_text(s, 0); /* NULL for a NULL value */
    h->stream = strdup(stream ? stream : "");
    h->track_id = sqlite3_column_int64(s, 1);
    h->first_pts = column_pts(s, 2);
    h->last_pts = column_pts(s, 3);
    h->first_time = sqlite3_column_int64(s, 4);
    h->last_time = sqlite3_column_int64(s, 5);
    h->frames = sqlite3_column_int(s, 6);
    for (int k = 0; k < 4; k++) h->bbox[k] = (float)sqlite3_column_double(s, 7 + k);
  } else {
    h->id = 0;
  }
  sqlite3_finalize(s);
  SQL_TRY(g, rc, "reading a tracklet");
  if (rc == SQLITE_ROW && !h->stream) return reid_fail(REID_ENOMEM, "gallery: out of memory");
  return REID_OK;
}

static reid_status sq_thumbnail(reid_gallery *g, int64_t id, uint8_t **jpeg, size_t *size) {
  sqlite3_stmt *s;
  REID_TRY(prepare(g, "SELECT jpeg FROM reid_thumbnails WHERE tracklet_id = $1", &s));
  sqlite3_bind_int64(s, 1, id);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    const void *blob = sqlite3_column_blob(s, 0); /* NULL for an empty or NULL value */
    *size = (size_t)sqlite3_column_bytes(s, 0);
    *jpeg = malloc(*size ? *size : 1);
    if (*jpeg && blob) memcpy(*jpeg, blob, *size);
  }
  sqlite3_finalize(s);
  SQL_TRY(g, rc, "reading a thumbnail");
  if (rc == SQLITE_ROW && !*jpeg) return reid_fail(REID_ENOMEM, "gallery: out of memory");
  return REID_OK;
}

static reid_status sq_prune(reid_gallery *g, int64_t before, int64_t *deleted) {
  /* biometric data: deleted rows are overwritten, not left in free pages */
  REID_TRY(sq_exec(g, "PRAGMA secure_delete=ON"));
  REID_TRY(sq_exec(g, "BEGIN IMMEDIATE"));
  sqlite3_stmt *s = NULL;
  reid_status st = prepare(g,
                           "DELETE FROM reid_thumbnails WHERE tracklet_id IN "
                           "(SELECT id FROM reid_tracklets WHERE last_time < $1)",
                           &s);
  if (st == REID_OK) {
    sqlite3_bind_int64(s, 1, before);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) st = sqlite_fail(g, rc, "deleting thumbnails");
  }
  if (st == REID_OK) st = prepare(g, "DELETE FROM reid_tracklets WHERE last_time < $1", &s);
  if (st == REID_OK) {
    sqlite3_bind_int64(s, 1, before);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) st = sqlite_fail(g, rc, "deleting tracklets");
    *deleted = sqlite3_changes(DB(g));
  }
  if (st == REID_OK) st = sq_exec(g, "COMMIT");
  if (st != REID_OK) sq_exec(g, "ROLLBACK");
  /* the WAL still holds copies of the deleted pages until a checkpoint */
  if (st == REID_OK) st = sq_exec(g, "PRAGMA wal_checkpoint(TRUNCATE)");
  return st;
}

const gallery_ops reid_gallery_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .exec = sq_exec,
    .create_schema = sq_create_schema,
    .get_meta = sq_get_meta,
    .put_meta = sq_put_meta,
    .insert_rows = sq_insert_rows,
    .count = sq_count,
    .scan = sq_scan,
    .fetch = sq_fetch,
    .thumbnail = sq_thumbnail,
    .prune = sq_prune,
};
