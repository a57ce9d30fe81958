/* The gallery's backend seam: what SQLite and PostgreSQL each implement.
 * SQL text is shared and written with $1, $2, ... parameters (SQLite gets
 * them as ?1, ?2, ...). Every function returns a reid_status whose message
 * names the gallery (g->uri, redacted). */
#pragma once

#include "gallery.h"

typedef void (*gallery_row_fn)(void *user, int64_t id, const void *blob, size_t bytes);

typedef struct gallery_ops {
  const char *name;
  reid_status (*open)(reid_gallery *g, const char *target);
  void (*close)(reid_gallery *g);
  /* statements without results (DDL, BEGIN, COMMIT, ...) */
  reid_status (*exec)(reid_gallery *g, const char *sql);
  /* the schema, created when missing (concurrent creators are fine) */
  reid_status (*create_schema)(reid_gallery *g);
  reid_status (*get_meta)(reid_gallery *g, const char *key, char *value, size_t cap, int *found);
  /* inserts key=value unless the key exists */
  reid_status (*put_meta)(reid_gallery *g, const char *key, const char *value);
  /* rows inside the caller's transaction; ids[i] = 0 when row i was already stored;
   * blobs[i]: row i's embedding as stored (bytes each) */
  reid_status (*insert_rows)(reid_gallery *g, const reid_gallery_row *rows,
                             const void *const *blobs, size_t bytes, int n, int64_t *ids);
  reid_status (*count)(reid_gallery *g, int64_t *out);
  /* calls fn for every row matching the filter, in id order */
  reid_status (*scan)(reid_gallery *g, const reid_gallery_filter *f, gallery_row_fn fn, void *user);
  reid_status (*fetch)(reid_gallery *g, reid_gallery_hit *h); /* by h->id; id = 0 when gone */
  reid_status (*thumbnail)(reid_gallery *g, int64_t id, uint8_t **jpeg, size_t *size);
  reid_status (*prune)(reid_gallery *g, int64_t before, int64_t *deleted);
} gallery_ops;

struct reid_gallery {
  const gallery_ops *ops;
  char uri[1024];  /* redacted */
  void *db;        /* sqlite3 * or PGconn * */
  void *cached[2]; /* the backend's prepared statements (SQLite: the two inserts) */
  int bound;       /* a model is bound: dims and dtype are known */
  int dims;
  reid_gallery_dtype dtype;
};

extern const gallery_ops reid_gallery_sqlite_ops;
extern const gallery_ops reid_gallery_pg_ops;

/* The filter's WHERE clause (without "WHERE"; "TRUE" when empty), with
 * parameters numbered from `first`: since, until, then the streams, in the
 * order gallery_filter_values lists them. */
void gallery_filter_sql(const reid_gallery_filter *f, int first, char *buf, size_t cap);
/* The filter's parameter count (only bounds that are set count). */
int gallery_filter_params(const reid_gallery_filter *f);

/* The shared DDL of schema version 1 (id_type: the primary key's
 * declaration, blob: the binary type). */
void gallery_schema_sql(const char *id_type, const char *blob, char *buf, size_t cap);
