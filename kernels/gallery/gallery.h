/* The tracklet gallery: finished tracklets (embedding, times, box, thumbnail)
 * in a database, searched by cosine similarity with a query embedding.
 *
 * Locations (URIs):
 *   PATH or sqlite:PATH        an SQLite file (WAL mode: several writers and
 *                              readers share it; created on first use)
 *   postgresql://... postgres://...   a PostgreSQL server (libpq conninfo URI)
 *
 * Schema version 1 (created on first use, identical columns on both backends;
 * README "Gallery" documents it):
 *   reid_gallery_meta(key TEXT PRIMARY KEY, value TEXT)
 *       schema_version=1, model_name, model_hash, dims, dtype (f32|f16)
 *   reid_tracklets(id, stream, track_id, first_pts, last_pts, first_time,
 *                  last_time, frames, bbox_x, bbox_y, bbox_w, bbox_h,
 *                  embedding, UNIQUE(stream, track_id, first_time))
 *       pts in ns (NULL: unknown), times in microseconds since the Unix epoch
 *       (UTC), embedding = dims little-endian float32 or float16, L2-normalised
 *   reid_thumbnails(tracklet_id PRIMARY KEY, jpeg)
 *
 * A gallery belongs to one model: the first writer records its identity
 * (a SHA-256 of the checkpoint's tensors, its file name and dims); a writer
 * or a search with another model is refused, naming both.
 *
 * Inserts are idempotent: a row whose (stream, track_id, first_time) is
 * already stored is skipped, so a batch retried after a lost commit
 * acknowledgement is not stored twice.
 *
 * One reid_gallery is one connection, used from one thread at a time.
 * Errors are reid_status values with messages that name the location
 * (passwords shown as ***). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "status.h"

#define REID_GALLERY_SCHEMA_VERSION 1
#define REID_GALLERY_TIME_NONE      INT64_MIN /* unknown pts */

typedef struct reid_gallery reid_gallery;

/* Who made the embeddings. */
typedef struct reid_gallery_model {
  char name[256]; /* checkpoint file name, e.g. "mdkt.safetensors" */
  char hash[65];  /* lowercase hex SHA-256 of the tensors (names, dtypes, shapes, bytes) */
  int dims;       /* embedding size (the video role's) */
} reid_gallery_model;

/* Hashes the tensors of a safetensors checkpoint (header order: name, dtype,
 * shape, raw bytes), so that a renamed file keeps its identity and a retrained
 * one does not. */
reid_status reid_gallery_model_identify(const char *checkpoint, int dims, reid_gallery_model *out);

typedef enum reid_gallery_dtype { REID_GALLERY_F32 = 0, REID_GALLERY_F16 = 1 } reid_gallery_dtype;

/* One tracklet. Strings and arrays are the caller's. */
typedef struct reid_gallery_row {
  int64_t id; /* assigned by the store */
  const char *stream;
  int64_t track_id;
  int64_t first_pts, last_pts;   /* ns; REID_GALLERY_TIME_NONE when unknown */
  int64_t first_time, last_time; /* microseconds since the Unix epoch (UTC) */
  int frames;
  float bbox[4];          /* last box x, y, w, h (pixels) */
  const float *embedding; /* [dims], L2-normalised */
  const uint8_t *jpeg;    /* thumbnail, NULL: none */
  size_t jpeg_size;
} reid_gallery_row;

/* The location with any password replaced by ***. Returns buf. */
char *reid_gallery_redact(const char *uri, char *buf, size_t cap);

/* Opens (creates) the gallery and its schema. Fails with REID_EIO when the
 * database cannot be reached or opened (a missing server, a wrong password),
 * REID_EFORMAT when it is not a gallery (a corrupt file, a newer schema). */
reid_status reid_gallery_open(const char *uri, reid_gallery **out);
void reid_gallery_close(reid_gallery *g);
const char *reid_gallery_uri(const reid_gallery *g); /* redacted */
int reid_gallery_is_sqlite(const reid_gallery *g);

/* Binds the gallery to a model: records `model` (and dtype) when the gallery
 * has none yet, else checks that it is the same model (REID_EINVAL naming
 * both when not). */
reid_status reid_gallery_bind_model(reid_gallery *g, const reid_gallery_model *model,
                                    reid_gallery_dtype dtype);
/* The recorded model; REID_EINVAL when the gallery has none yet. */
reid_status reid_gallery_get_model(reid_gallery *g, reid_gallery_model *out,
                                   reid_gallery_dtype *dtype);

/* Stores rows in one transaction (all or nothing); rows[i].id is set, or 0
 * when an identical row was already there (counted in *skipped, may be NULL).
 * Needs a bound model. */
reid_status reid_gallery_insert(reid_gallery *g, reid_gallery_row *rows, int n, int *skipped);

reid_status reid_gallery_count(reid_gallery *g, int64_t *out);

/* Which tracklets a search or scan sees: last_time >= since, first_time <=
 * until (INT64_MIN / INT64_MAX: no bound), stream in streams (none: all). */
typedef struct reid_gallery_filter {
  int64_t since, until;
  const char *const *streams;
  int n_streams;
} reid_gallery_filter;
void reid_gallery_filter_init(reid_gallery_filter *f);

/* Calls fn for chunks of up to chunk_rows embeddings of the filtered rows,
 * in id order: ids[n], embeddings[n, dims] float32. Memory stays bounded by
 * chunk_rows. fn returns REID_OK to continue. */
typedef reid_status (*reid_gallery_chunk_fn)(void *user, const int64_t *ids, const float *emb,
                                             int n);
reid_status reid_gallery_scan(reid_gallery *g, const reid_gallery_filter *f, int chunk_rows,
                              reid_gallery_chunk_fn fn, void *user);

/* A search result: the tracklet's columns (strings owned by the hit). */
typedef struct reid_gallery_hit {
  int64_t id;
  float score; /* cosine similarity */
  char *stream;
  int64_t track_id, first_pts, last_pts, first_time, last_time;
  int frames;
  float bbox[4];
} reid_gallery_hit;
void reid_gallery_hits_free(reid_gallery_hit *hits, int n);

/* Fills the columns of hits[i] whose id is set; hits whose row is gone
 * (pruned) get id 0. */
reid_status reid_gallery_fetch(reid_gallery *g, reid_gallery_hit *hits, int n);

/* Exact search: cosine of `query` [dims] (L2-normalised) with every filtered
 * row, streamed in chunks of chunk_rows through the backend's distance op
 * (be: the CPU or a CUDA backend). The best top_k with score >= threshold,
 * best first, in *hits (*n of them; free with reid_gallery_hits_free). */
reid_status reid_gallery_search(reid_gallery *g, reid_backend *be, const float *query,
                                const reid_gallery_filter *f, int top_k, float threshold,
                                int chunk_rows, reid_gallery_hit **hits, int *n);

/* Exact top k of nq queries [nq, dims] (L2-normalised) in one pass over the
 * filtered rows: ids [nq, k] and cosines [nq, k], best first (ids -1 and
 * scores -inf pad when fewer rows pass). Distances go through the backend's
 * op as a [nq, chunk_rows] matrix a chunk. */
reid_status reid_gallery_search_ids(reid_gallery *g, reid_backend *be, const float *queries, int nq,
                                    const reid_gallery_filter *f, int k, int chunk_rows,
                                    float *scores, int64_t *ids);

/* The thumbnail of a tracklet (malloc'd; *jpeg NULL when it has none). */
reid_status reid_gallery_thumbnail(reid_gallery *g, int64_t id, uint8_t **jpeg, size_t *size);

/* Deletes the tracklets (and thumbnails) whose last_time < before; *deleted
 * may be NULL. SQLite overwrites the freed pages (secure_delete). */
reid_status reid_gallery_prune(reid_gallery *g, int64_t before, int64_t *deleted);
