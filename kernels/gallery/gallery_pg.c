/* The gallery on a PostgreSQL server (libpq): one gallery for the cameras
 * of many machines. The location is a libpq connection URI
 * (postgresql://user:password@host:port/db?host=/run/socket/dir ...).
 * Scans page through the rows by id (keyset pagination), binary results. */
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gallery_impl.h"

#define CONN(g)    ((PGconn *)(g)->db)
#define SCAN_PAGE  4096
#define MAX_PARAMS 80

/* The server's message, first line only, naming the gallery. */
static reid_status pg_fail(reid_gallery *g, const char *what, const char *msg) {
  char text[512];
  snprintf(text, sizeof text, "%s", msg && *msg ? msg : "unknown error");
  for (char *p = text; *p; p++)
    if (*p == '\n') {
      *p = 0;
      break;
    }
  return reid_fail(REID_EIO, "gallery %s: %s: %s", g->uri, what, text);
}

/* One error-check for libpq results: the result must have `want` status;
 * otherwise it is cleared and the call fails. */
#define PG_TRY(g, res, want, what)                                                                 \
  do {                                                                                             \
    if (PQresultStatus(res) != (want)) {                                                           \
      reid_status pg_st_ = pg_fail(g, what, PQerrorMessage(CONN(g)));                              \
      PQclear(res);                                                                                \
      return pg_st_;                                                                               \
    }                                                                                              \
  } while (0)

static reid_status pg_open(reid_gallery *g, const char *uri) {
  PGconn *c = PQconnectdb(uri);
  g->db = c;
  if (!c) return reid_fail(REID_ENOMEM, "gallery %s: out of memory", g->uri);
  if (PQstatus(c) != CONNECTION_OK) return pg_fail(g, "cannot connect", PQerrorMessage(c));
  PGresult *r = PQexec(c, "SET client_min_messages = warning");
  PG_TRY(g, r, PGRES_COMMAND_OK, "setting up the session");
  PQclear(r);
  return REID_OK;
}

static void pg_close(reid_gallery *g) {
  PQfinish(CONN(g));
  g->db = NULL;
}

static reid_status pg_exec(reid_gallery *g, const char *sql) {
  PGresult *r = PQexec(CONN(g), sql);
  ExecStatusType s = PQresultStatus(r);
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
    reid_status st = pg_fail(g, sql, PQerrorMessage(CONN(g)));
    PQclear(r);
    return st;
  }
  PQclear(r);
  return REID_OK;
}

static reid_status pg_create_schema(reid_gallery *g) {
  char sql[2048];
  gallery_schema_sql("BIGSERIAL PRIMARY KEY", "BYTEA", sql, sizeof sql);
  /* concurrent CREATE ... IF NOT EXISTS can collide in the catalogue: one at a time */
  REID_TRY(pg_exec(g, "BEGIN"));
  reid_status st = pg_exec(g, "SELECT pg_advisory_xact_lock(7301624101)");
  if (st == REID_OK) st = pg_exec(g, sql);
  if (st == REID_OK) return pg_exec(g, "COMMIT");
  pg_exec(g, "ROLLBACK");
  return st;
}

/* Text parameters (NULL: SQL NULL) plus optional binary ones (lengths > 0). */
static PGresult *run(reid_gallery *g, const char *sql, int n, const char *const *values,
                     const int *lengths, const int *formats, int binary_result) {
  return PQexecParams(CONN(g), sql, n, NULL, values, lengths, formats, binary_result);
}

static reid_status pg_get_meta(reid_gallery *g, const char *key, char *value, size_t cap,
                               int *found) {
  const char *v[1] = {key};
  PGresult *r = run(g, "SELECT value FROM reid_gallery_meta WHERE key = $1", 1, v, NULL, NULL, 0);
  PG_TRY(g, r, PGRES_TUPLES_OK, "reading the model record");
  *found = PQntuples(r) > 0;
  if (*found) snprintf(value, cap, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  return REID_OK;
}

static reid_status pg_put_meta(reid_gallery *g, const char *key, const char *value) {
  const char *v[2] = {key, value};
  PGresult *r = run(g,
                    "INSERT INTO reid_gallery_meta (key, value) VALUES ($1, $2) "
                    "ON CONFLICT (key) DO NOTHING",
                    2, v, NULL, NULL, 0);
  PG_TRY(g, r, PGRES_COMMAND_OK, "recording the model");
  PQclear(r);
  return REID_OK;
}

static const char *pts_text(int64_t v, char *buf) {
  if (v == REID_GALLERY_TIME_NONE) return NULL;
  snprintf(buf, 24, "%lld", (long long)v);
  return buf;
}

/* One statement per row (the thumbnail goes in with its tracklet through a
 * CTE), all rows of a batch sent in libpq's pipeline mode: one round trip. */
static const char insert_sql[] =
    "WITH t AS (INSERT INTO reid_tracklets (stream, track_id, first_pts, last_pts, "
    "first_time, last_time, frames, bbox_x, bbox_y, bbox_w, bbox_h, embedding) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
    "ON CONFLICT (stream, track_id, first_time) DO NOTHING RETURNING id), "
    "th AS (INSERT INTO reid_thumbnails (tracklet_id, jpeg) "
    "SELECT id, $13::bytea FROM t WHERE $13::bytea IS NOT NULL) "
    "SELECT id FROM t";

static int send_row(reid_gallery *g, const reid_gallery_row *r, const void *blob, size_t bytes) {
  char t[7][24], box[4][32];
  snprintf(t[0], 24, "%lld", (long long)r->track_id);
  snprintf(t[3], 24, "%lld", (long long)r->first_time);
  snprintf(t[4], 24, "%lld", (long long)r->last_time);
  snprintf(t[5], 24, "%d", r->frames);
  for (int k = 0; k < 4; k++) snprintf(box[k], sizeof box[k], "%.9g", (double)r->bbox[k]);
  const char *v[13] = {r->stream,
                       t[0],
                       pts_text(r->first_pts, t[1]),
                       pts_text(r->last_pts, t[2]),
                       t[3],
                       t[4],
                       t[5],
                       box[0],
                       box[1],
                       box[2],
                       box[3],
                       blob,
                       (const char *)r->jpeg};
  int len[13] = {0}, fmt[13] = {0};
  len[11] = (int)bytes, fmt[11] = 1;
  len[12] = (int)r->jpeg_size, fmt[12] = 1;
  return PQsendQueryParams(CONN(g), insert_sql, 13, NULL, v, len, fmt, 0);
}

static reid_status pg_insert_rows(reid_gallery *g, const reid_gallery_row *rows,
                                  const void *const *blobs, size_t bytes, int n, int64_t *ids) {
  PGconn *c = CONN(g);
  if (!PQenterPipelineMode(c)) return pg_fail(g, "inserting tracklets", PQerrorMessage(c));
  char first_error[512] = "";
  int sent = 0;
  for (; sent < n; sent++)
    if (!send_row(g, &rows[sent], blobs[sent], bytes)) {
      snprintf(first_error, sizeof first_error, "%s", PQerrorMessage(c));
      break;
    }
  if (sent == n && !PQpipelineSync(c))
    snprintf(first_error, sizeof first_error, "%s", PQerrorMessage(c));
  /* each query's result, then NULL; then the sync point */
  for (int i = 0; i < sent; i++) {
    ids[i] = 0;
    PGresult *r;
    while ((r = PQgetResult(c))) {
      ExecStatusType st = PQresultStatus(r);
      if (st == PGRES_TUPLES_OK && PQntuples(r) > 0)
        ids[i] = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
      else if (st != PGRES_TUPLES_OK && !first_error[0])
        snprintf(first_error, sizeof first_error, "%s",
                 st == PGRES_PIPELINE_ABORTED ? "pipeline aborted" : PQresultErrorMessage(r));
      PQclear(r);
    }
  }
  if (sent == n && first_error[0] == 0) {
    PGresult *r = PQgetResult(c); /* PGRES_PIPELINE_SYNC */
    if (PQresultStatus(r) != PGRES_PIPELINE_SYNC)
      snprintf(first_error, sizeof first_error, "%s", PQerrorMessage(c));
    PQclear(r);
  } else {
    PGresult *r;
    while ((r = PQgetResult(c))) { /* drain up to the sync point */
      ExecStatusType st = PQresultStatus(r);
      PQclear(r);
      if (st == PGRES_PIPELINE_SYNC) break;
    }
  }
  PQexitPipelineMode(c);
  if (first_error[0]) return pg_fail(g, "inserting tracklets", first_error);
  return REID_OK;
}

static reid_status pg_count(reid_gallery *g, int64_t *out) {
  PGresult *r = PQexec(CONN(g), "SELECT count(*) FROM reid_tracklets");
  PG_TRY(g, r, PGRES_TUPLES_OK, "counting tracklets");
  *out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  return REID_OK;
}

static int64_t be64(const char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | (uint8_t)p[i];
  return (int64_t)v;
}

static reid_status pg_scan(reid_gallery *g, const reid_gallery_filter *f, gallery_row_fn fn,
                           void *user) {
  int n = 1 + gallery_filter_params(f);
  if (n > MAX_PARAMS) return reid_fail(REID_EINVAL, "search: too many streams (%d)", n - 1);
  char where[2048], sql[2400];
  gallery_filter_sql(f, 2, where, sizeof where);
  snprintf(sql, sizeof sql,
           "SELECT id, embedding FROM reid_tracklets WHERE id > $1 AND %s ORDER BY id LIMIT %d",
           where, SCAN_PAGE);
  char after[24], since[24], until[24];
  const char *v[MAX_PARAMS];
  int k = 1;
  if (f->since != INT64_MIN)
    snprintf(since, sizeof since, "%lld", (long long)f->since), v[k++] = since;
  if (f->until != INT64_MAX)
    snprintf(until, sizeof until, "%lld", (long long)f->until), v[k++] = until;
  for (int s = 0; s < f->n_streams; s++) v[k++] = f->streams[s];
  int64_t last = 0;
  for (;;) {
    snprintf(after, sizeof after, "%lld", (long long)last);
    v[0] = after;
    PGresult *r = run(g, sql, n, v, NULL, NULL, 1);
    PG_TRY(g, r, PGRES_TUPLES_OK, "reading embeddings");
    int rows = PQntuples(r);
    for (int i = 0; i < rows; i++) {
      last = be64(PQgetvalue(r, i, 0));
      fn(user, last, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
    }
    PQclear(r);
    if (rows < SCAN_PAGE) return REID_OK;
  }
}

static int64_t value_pts(PGresult *r, int col) {
  return PQgetisnull(r, 0, col) ? REID_GALLERY_TIME_NONE : strtoll(PQgetvalue(r, 0, col), NULL, 10);
}

static reid_status pg_fetch(reid_gallery *g, reid_gallery_hit *h) {
  char id[24];
  snprintf(id, sizeof id, "%lld", (long long)h->id);
  const char *v[1] = {id};
  PGresult *r = run(g,
                    "SELECT stream, track_id, first_pts, last_pts, first_time, last_time, frames, "
                    "bbox_x, bbox_y, bbox_w, bbox_h FROM reid_tracklets WHERE id = $1",
                    1, v, NULL, NULL, 0);
  PG_TRY(g, r, PGRES_TUPLES_OK, "reading a tracklet");
  if (PQntuples(r) == 0) {
    h->id = 0;
    PQclear(r);
    return REID_OK;
  }
  free(h->stream);
  h->stream = strdup(PQgetvalue(r, 0, 0));
  h->track_id = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
  h->first_pts = value_pts(r, 2);
  h->last_pts = value_pts(r, 3);
  h->first_time = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
  h->last_time = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
  h->frames = atoi(PQgetvalue(r, 0, 6));
  for (int k = 0; k < 4; k++) h->bbox[k] = strtof(PQgetvalue(r, 0, 7 + k), NULL);
  PQclear(r);
  return h->stream ? REID_OK : reid_fail(REID_ENOMEM, "gallery: out of memory");
}

static reid_status pg_thumbnail(reid_gallery *g, int64_t id, uint8_t **jpeg, size_t *size) {
  char text[24];
  snprintf(text, sizeof text, "%lld", (long long)id);
  const char *v[1] = {text};
  PGresult *r =
      run(g, "SELECT jpeg FROM reid_thumbnails WHERE tracklet_id = $1", 1, v, NULL, NULL, 1);
  PG_TRY(g, r, PGRES_TUPLES_OK, "reading a thumbnail");
  if (PQntuples(r) > 0) {
    *size = (size_t)PQgetlength(r, 0, 0);
    *jpeg = malloc(*size ? *size : 1);
    if (*jpeg) memcpy(*jpeg, PQgetvalue(r, 0, 0), *size);
  }
  PQclear(r);
  return !*size || *jpeg ? REID_OK : reid_fail(REID_ENOMEM, "gallery: out of memory");
}

static reid_status pg_prune(reid_gallery *g, int64_t before, int64_t *deleted) {
  char text[24];
  snprintf(text, sizeof text, "%lld", (long long)before);
  const char *v[1] = {text};
  REID_TRY(pg_exec(g, "BEGIN"));
  PGresult *r = run(g,
                    "DELETE FROM reid_thumbnails WHERE tracklet_id IN "
                    "(SELECT id FROM reid_tracklets WHERE last_time < $1)",
                    1, v, NULL, NULL, 0);
  if (PQresultStatus(r) == PGRES_COMMAND_OK) {
    PQclear(r);
    r = run(g, "DELETE FROM reid_tracklets WHERE last_time < $1", 1, v, NULL, NULL, 0);
  }
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    reid_status st = pg_fail(g, "deleting old tracklets", PQerrorMessage(CONN(g)));
    PQclear(r);
    pg_exec(g, "ROLLBACK");
    return st;
  }
  *deleted = strtoll(PQcmdTuples(r), NULL, 10);
  PQclear(r);
  return pg_exec(g, "COMMIT");
}

const gallery_ops reid_gallery_pg_ops = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .exec = pg_exec,
    .create_schema = pg_create_schema,
    .get_meta = pg_get_meta,
    .put_meta = pg_put_meta,
    .insert_rows = pg_insert_rows,
    .count = pg_count,
    .scan = pg_scan,
    .fetch = pg_fetch,
    .thumbnail = pg_thumbnail,
    .prune = pg_prune,
};
