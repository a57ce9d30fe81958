/* The gallery's shared part: locations, model identity, the schema text,
 * batched inserts, and exact search streamed through the distance op. */
#include "gallery.h"

#include <libavutil/mem.h>
#include <libavutil/sha.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gallery_impl.h"
#include "half.h"
#include "safetensors.h"

/* ------------------------------------------------------------ model identity */

reid_status reid_gallery_model_identify(const char *checkpoint, int dims, reid_gallery_model *out) {
  memset(out, 0, sizeof *out);
  st_file *f = NULL;
  REID_TRY(st_open(checkpoint, &f));
  struct AVSHA *sha = av_sha_alloc();
  if (!sha) {
    st_close(f);
    return reid_fail(REID_ENOMEM, "model identity: out of memory");
  }
  av_sha_init(sha, 256);
  for (size_t i = 0; i < st_count(f); i++) {
    const st_tensor *t = st_tensor_at(f, i);
    char head[512];
    int n = snprintf(head, sizeof head, "%s|%s|", t->name, st_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim && n > 0 && (size_t)n < sizeof head - 24; d++)
      n += snprintf(head + n, sizeof head - (size_t)n, "%lld,", (long long)t->shape[d]);
    av_sha_update(sha, (const uint8_t *)head, (size_t)n);
    const uint8_t *data = st_data(f, t);
    for (uint64_t done = 0, size = t->end - t->begin; done < size;) {
      uint64_t part = size - done > (1u << 30) ? (1u << 30) : size - done;
      av_sha_update(sha, data + done, (size_t)part);
      done += part;
    }
  }
  uint8_t digest[32];
  av_sha_final(sha, digest);
  av_free(sha);
  st_close(f);
  for (int i = 0; i < 32; i++) snprintf(out->hash + 2 * i, 3, "%02x", digest[i]);
  const char *base = strrchr(checkpoint, '/');
  snprintf(out->name, sizeof out->name, "%s", base ? base + 1 : checkpoint);
  out->dims = dims;
  return REID_OK;
}

/* ------------------------------------------------------------ locations */

char *reid_gallery_redact(const char *uri, char *buf, size_t cap) {
  snprintf(buf, cap, "%s", uri);
  /* scheme://user:PASSWORD@host */
  char *scheme = strstr(buf, "://");
  if (scheme) {
    char *at = strchr(scheme + 3, '@'), *colon = strchr(scheme + 3, ':');
    if (at && colon && colon < at) {
      char rest[1024];
      snprintf(rest, sizeof rest, "%s", at);
      snprintf(colon + 1, cap - (size_t)(colon + 1 - buf), "***%s", rest);
    }
  }
  /* ...?password=SECRET&... */
  char *p = strstr(buf, "password=");
  if (p) {
    char *end = strchr(p, '&');
    char rest[1024];
    snprintf(rest, sizeof rest, "%s", end ? end : "");
    snprintf(p + 9, cap - (size_t)(p + 9 - buf), "***%s", rest);
  }
  return buf;
}

static int is_postgres(const char *uri) {
  return strncmp(uri, "postgresql://", 13) == 0 || strncmp(uri, "postgres://", 11) == 0;
}

reid_status reid_gallery_open(const char *uri, reid_gallery **out) {
  *out = NULL;
  if (!uri || !*uri) return reid_fail(REID_EINVAL, "gallery: no location given");
  reid_gallery *g = calloc(1, sizeof *g);
  if (!g) return reid_fail(REID_ENOMEM, "gallery: out of memory");
  reid_gallery_redact(uri, g->uri, sizeof g->uri);
  const char *target = uri;
  if (is_postgres(uri)) {
    g->ops = &reid_gallery_pg_ops;
  } else {
    g->ops = &reid_gallery_sqlite_ops;
    if (strncmp(uri, "sqlite:", 7) == 0) target = uri + 7;
    if (strncmp(target, "//", 2) == 0) target += 2; /* sqlite:///abs/path */
  }
  reid_status st = g->ops->open(g, target);
  if (st == REID_OK) st = g->ops->create_schema(g);
  if (st != REID_OK) {
    reid_gallery_close(g);
    return st;
  }
  *out = g;
  return REID_OK;
}

void reid_gallery_close(reid_gallery *g) {
  if (!g) return;
  if (g->db) g->ops->close(g);
  free(g);
}

const char *reid_gallery_uri(const reid_gallery *g) {
  return g->uri;
}
int reid_gallery_is_sqlite(const reid_gallery *g) {
  return g->ops == &reid_gallery_sqlite_ops;
}

void gallery_schema_sql(const char *id_type, const char *blob, char *buf, size_t cap) {
  snprintf(buf, cap,
           "CREATE TABLE IF NOT EXISTS reid_gallery_meta (key TEXT PRIMARY KEY, value TEXT NOT "
           "NULL);"
           "CREATE TABLE IF NOT EXISTS reid_tracklets ("
           " id %s, stream TEXT NOT NULL, track_id BIGINT NOT NULL,"
           " first_pts BIGINT, last_pts BIGINT,"
           " first_time BIGINT NOT NULL, last_time BIGINT NOT NULL, frames INTEGER NOT NULL,"
           " bbox_x REAL, bbox_y REAL, bbox_w REAL, bbox_h REAL, embedding %s NOT NULL,"
           " UNIQUE (stream, track_id, first_time));"
           "CREATE INDEX IF NOT EXISTS reid_tracklets_last_time ON reid_tracklets (last_time);"
           "CREATE TABLE IF NOT EXISTS reid_thumbnails (tracklet_id BIGINT PRIMARY KEY, jpeg %s "
           "NOT NULL);",
           id_type, blob, blob);
}

/* ------------------------------------------------------------ model binding */

static reid_status read_model(reid_gallery *g, reid_gallery_model *m, reid_gallery_dtype *dtype,
                              int *found) {
  char version[32] = "", dims[32] = "", type[16] = "";
  int have_version = 0, have = 0;
  REID_TRY(g->ops->get_meta(g, "schema_version", version, sizeof version, &have_version));
  if (have_version && atoi(version) != REID_GALLERY_SCHEMA_VERSION)
    return reid_fail(REID_EFORMAT, "gallery %s: schema version %s, this program reads version %d",
                     g->uri, version, REID_GALLERY_SCHEMA_VERSION);
  memset(m, 0, sizeof *m);
  REID_TRY(g->ops->get_meta(g, "model_hash", m->hash, sizeof m->hash, &have));
  *found = have;
  if (!have) return REID_OK;
  int ok = 1, f;
  REID_TRY(g->ops->get_meta(g, "model_name", m->name, sizeof m->name, &f));
  ok &= f;
  REID_TRY(g->ops->get_meta(g, "dims", dims, sizeof dims, &f));
  ok &= f;
  REID_TRY(g->ops->get_meta(g, "dtype", type, sizeof type, &f));
  ok &= f;
  m->dims = atoi(dims);
  if (!ok || m->dims < 1 || (strcmp(type, "f32") && strcmp(type, "f16")))
    return reid_fail(REID_EFORMAT, "gallery %s: incomplete model record (dims '%s', dtype '%s')",
                     g->uri, dims, type);
  *dtype = strcmp(type, "f16") == 0 ? REID_GALLERY_F16 : REID_GALLERY_F32;
  return REID_OK;
}

reid_status reid_gallery_get_model(reid_gallery *g, reid_gallery_model *out,
                                   reid_gallery_dtype *dtype) {
  int found = 0;
  reid_gallery_dtype t = REID_GALLERY_F32;
  REID_TRY(read_model(g, out, &t, &found));
  if (!found) return reid_fail(REID_EINVAL, "gallery %s holds no tracklets yet (no model)", g->uri);
  if (dtype) *dtype = t;
  g->bound = 1;
  g->dims = out->dims;
  g->dtype = t;
  return REID_OK;
}

static reid_status record_model(reid_gallery *g, const reid_gallery_model *m,
                                reid_gallery_dtype dtype) {
  char dims[32], version[16];
  snprintf(dims, sizeof dims, "%d", m->dims);
  snprintf(version, sizeof version, "%d", REID_GALLERY_SCHEMA_VERSION);
  REID_TRY(g->ops->exec(g, "BEGIN"));
  reid_status st = g->ops->put_meta(g, "schema_version", version);
  /* the hash goes last: readers take a gallery without it as unbound */
  if (st == REID_OK) st = g->ops->put_meta(g, "model_name", m->name);
  if (st == REID_OK) st = g->ops->put_meta(g, "dims", dims);
  if (st == REID_OK) st = g->ops->put_meta(g, "dtype", dtype == REID_GALLERY_F16 ? "f16" : "f32");
  if (st == REID_OK) st = g->ops->put_meta(g, "model_hash", m->hash);
  if (st == REID_OK) return g->ops->exec(g, "COMMIT");
  g->ops->exec(g, "ROLLBACK");
  return st;
}

reid_status reid_gallery_bind_model(reid_gallery *g, const reid_gallery_model *model,
                                    reid_gallery_dtype dtype) {
  reid_gallery_model have;
  reid_gallery_dtype have_dtype = REID_GALLERY_F32;
  int found = 0;
  REID_TRY(read_model(g, &have, &have_dtype, &found));
  if (!found) {
    /* concurrent first writers: put_meta keeps the first value of each key;
     * reading back decides */
    REID_TRY(record_model(g, model, dtype));
    REID_TRY(read_model(g, &have, &have_dtype, &found));
  }
  if (strcmp(have.hash, model->hash) != 0 || have.dims != model->dims)
    return reid_fail(REID_EINVAL,
                     "gallery %s was made by model %s (%d dims, tensors sha256 %.12s), not by %s "
                     "(%d dims, sha256 %.12s): use a gallery of its own for each model",
                     g->uri, have.name, have.dims, have.hash, model->name, model->dims,
                     model->hash);
  g->bound = 1;
  g->dims = have.dims;
  g->dtype = have_dtype;
  return REID_OK;
}

/* ------------------------------------------------------------ rows */

reid_status reid_gallery_insert(reid_gallery *g, reid_gallery_row *rows, int n, int *skipped) {
  if (skipped) *skipped = 0;
  if (!g->bound)
    return reid_fail(REID_EINVAL, "gallery %s: insert before a model is bound", g->uri);
  if (n <= 0) return REID_OK;
  size_t bytes = (size_t)g->dims * (g->dtype == REID_GALLERY_F16 ? 2 : 4);
  const void **blobs = malloc(sizeof *blobs * (size_t)n);
  int64_t *ids = malloc(sizeof *ids * (size_t)n);
  uint16_t *half = g->dtype == REID_GALLERY_F16 ? malloc(bytes * (size_t)n) : NULL;
  if (!blobs || !ids || (g->dtype == REID_GALLERY_F16 && !half)) {
    free(blobs), free(ids), free(half);
    return reid_fail(REID_ENOMEM, "gallery: out of memory");
  }
  for (int i = 0; i < n; i++) {
    blobs[i] = rows[i].embedding;
    if (half) {
      uint16_t *h = half + (size_t)i * g->dims;
      half_from_float_array(h, rows[i].embedding, (size_t)g->dims);
      blobs[i] = h;
    }
  }
  reid_status st = g->ops->exec(g, "BEGIN");
  if (st == REID_OK) st = g->ops->insert_rows(g, rows, blobs, bytes, n, ids);
  int skip = 0;
  for (int i = 0; i < n && st == REID_OK; i++) {
    rows[i].id = ids[i];
    skip += ids[i] == 0;
  }
  free(blobs), free(ids), free(half);
  if (st == REID_OK) st = g->ops->exec(g, "COMMIT");
  if (st != REID_OK) {
    char message[1024];
    snprintf(message, sizeof message, "%s", reid_last_error());
    g->ops->exec(g, "ROLLBACK"); /* may fail too when the connection is gone */
    for (int i = 0; i < n; i++) rows[i].id = 0;
    return reid_fail(st, "%s", message);
  }
  if (skipped) *skipped = skip;
  return REID_OK;
}

reid_status reid_gallery_count(reid_gallery *g, int64_t *out) {
  return g->ops->count(g, out);
}

reid_status reid_gallery_thumbnail(reid_gallery *g, int64_t id, uint8_t **jpeg, size_t *size) {
  *jpeg = NULL;
  *size = 0;
  return g->ops->thumbnail(g, id, jpeg, size);
}

reid_status reid_gallery_prune(reid_gallery *g, int64_t before, int64_t *deleted) {
  int64_t d = 0;
  reid_status st = g->ops->prune(g, before, &d);
  if (deleted) *deleted = st == REID_OK ? d : 0;
  return st;
}

void reid_gallery_hits_free(reid_gallery_hit *hits, int n) {
  for (int i = 0; hits && i < n; i++) free(hits[i].stream);
  free(hits);
}

reid_status reid_gallery_fetch(reid_gallery *g, reid_gallery_hit *hits, int n) {
  for (int i = 0; i < n; i++)
    if (hits[i].id) REID_TRY(g->ops->fetch(g, &hits[i]));
  return REID_OK;
}

/* ------------------------------------------------------------ filters */

void reid_gallery_filter_init(reid_gallery_filter *f) {
  memset(f, 0, sizeof *f);
  f->since = INT64_MIN;
  f->until = INT64_MAX;
}

int gallery_filter_params(const reid_gallery_filter *f) {
  return (f->since != INT64_MIN) + (f->until != INT64_MAX) + (f->n_streams > 0 ? f->n_streams : 0);
}

void gallery_filter_sql(const reid_gallery_filter *f, int first, char *buf, size_t cap) {
  size_t n = 0;
  int p = first;
  buf[0] = 0;
#define APPEND(...)                                                                                \
  do {                                                                                             \
    int w_ = snprintf(buf + n, n < cap ? cap - n : 0, __VA_ARGS__);                                \
    if (w_ > 0) n += (size_t)w_;                                                                   \
  } while (0)
  APPEND("TRUE");
  if (f->since != INT64_MIN) APPEND(" AND last_time >= $%d", p++);
  if (f->until != INT64_MAX) APPEND(" AND first_time <= $%d", p++);
  if (f->n_streams > 0) {
    APPEND(" AND stream IN (");
    for (int i = 0; i < f->n_streams; i++) APPEND("%s$%d", i ? ", " : "", p++);
    APPEND(")");
  }
#undef APPEND
}

/* ------------------------------------------------------------ scans and search */

typedef struct chunker {
  reid_gallery *g;
  int cap, n;
  int64_t *ids;
  float *emb;
  reid_gallery_chunk_fn fn;
  void *user;
  reid_status st;
} chunker;

static void chunk_row(void *user, int64_t id, const void *blob, size_t bytes) {
  chunker *c = user;
  if (c->st != REID_OK) return;
  int dims = c->g->dims;
  size_t want = (size_t)dims * (c->g->dtype == REID_GALLERY_F16 ? 2 : 4);
  if (bytes != want) {
    c->st = reid_fail(REID_EFORMAT, "gallery %s: tracklet %lld has a %zu-byte embedding, not %zu",
                      c->g->uri, (long long)id, bytes, want);
    return;
  }
  float *dst = c->emb + (size_t)c->n * dims;
  if (c->g->dtype == REID_GALLERY_F16)
    half_to_float_array(dst, blob, (size_t)dims);
  else
    memcpy(dst, blob, bytes);
  c->ids[c->n++] = id;
  if (c->n == c->cap) {
    c->st = c->fn(c->user, c->ids, c->emb, c->n);
    c->n = 0;
  }
}

reid_status reid_gallery_scan(reid_gallery *g, const reid_gallery_filter *f, int chunk_rows,
                              reid_gallery_chunk_fn fn, void *user) {
  if (!g->bound) {
    reid_gallery_model m;
    REID_TRY(reid_gallery_get_model(g, &m, NULL));
  }
  reid_gallery_filter all;
  if (!f) {
    reid_gallery_filter_init(&all);
    f = &all;
  }
  chunker c = {.g = g, .cap = chunk_rows > 0 ? chunk_rows : 8192, .fn = fn, .user = user};
  c.ids = malloc(sizeof *c.ids * (size_t)c.cap);
  c.emb = malloc(sizeof *c.emb * (size_t)c.cap * (size_t)g->dims);
  reid_status st = c.ids && c.emb ? REID_OK : reid_fail(REID_ENOMEM, "gallery scan: out of memory");
  if (st == REID_OK) st = g->ops->scan(g, f, chunk_row, &c);
  if (st == REID_OK) st = c.st;
  if (st == REID_OK && c.n > 0) st = fn(user, c.ids, c.emb, c.n);
  free(c.ids);
  free(c.emb);
  return st;
}

/* The best k so far: a min-heap on score (ties: the larger id is worse). */
typedef struct topk {
  int k, n;
  float threshold;
  float *score;
  int64_t *id;
} topk;

static int worse(const topk *t, int a, int b) {
  return t->score[a] < t->score[b] || (t->score[a] == t->score[b] && t->id[a] > t->id[b]);
}

static void swap_entries(topk *t, int a, int b) {
  float s = t->score[a];
  t->score[a] = t->score[b], t->score[b] = s;
  int64_t i = t->id[a];
  t->id[a] = t->id[b], t->id[b] = i;
}

static void sift_down(topk *t, int i) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < t->n && worse(t, l, m)) m = l;
    if (r < t->n && worse(t, r, m)) m = r;
    if (m == i) return;
    swap_entries(t, i, m);
    i = m;
  }
}

static void offer(topk *t, float score, int64_t id) {
  if (!(score >= t->threshold)) return;
  if (t->n < t->k) {
    int i = t->n++;
    t->score[i] = score, t->id[i] = id;
    while (i > 0 && worse(t, i, (i - 1) / 2)) {
      swap_entries(t, i, (i - 1) / 2);
      i = (i - 1) / 2;
    }
    return;
  }
  if (score < t->score[0] || (score == t->score[0] && id > t->id[0])) return;
  t->score[0] = score, t->id[0] = id;
  sift_down(t, 0);
}

/* Empties the heap into scores/ids, best first; returns how many. */
static int drain(topk *t, float *scores, int64_t *ids) {
  int count = t->n;
  for (int i = count - 1; i >= 0; i--) {
    scores[i] = t->score[0], ids[i] = t->id[0];
    t->score[0] = t->score[t->n - 1], t->id[0] = t->id[t->n - 1];
    t->n--;
    sift_down(t, 0);
  }
  return count;
}

/* One pass over the rows for nq queries: a heap per query. */
typedef struct search_pass {
  reid_backend *be;
  int nq, dims, chunk;
  topk *heaps;        /* [nq] */
  float *heap_mem;    /* scores [nq, k] */
  int64_t *heap_ids;  /* [nq, k] */
  const float *query; /* backend memory [nq, dims] */
  float *dev_query;   /* backend memory, NULL on the CPU */
  float *dev_emb;     /* backend memory [chunk, dims], NULL on the CPU */
  float *dist;        /* backend memory [nq, chunk] */
  float *host_dist;   /* [nq, chunk] */
} search_pass;

static reid_status search_chunk(void *user, const int64_t *ids, const float *emb, int n) {
  search_pass *p = user;
  const float *b = emb;
  if (p->dev_emb) {
    REID_TRY(p->be->ops->upload(p->be, p->dev_emb, emb, sizeof(float) * (size_t)n * p->dims));
    b = p->dev_emb;
  }
  /* dist[nq, n] = 1 - cos(query, row) */
  REID_TRY(p->be->ops->distance_forward(p->be, REID_DIST_COSINE, p->nq, n, p->dims, p->query, b,
                                        p->dist));
  if (p->dist != p->host_dist)
    REID_TRY(p->be->ops->download(p->be, p->host_dist, p->dist, sizeof(float) * (size_t)p->nq * n));
  for (int q = 0; q < p->nq; q++) {
    const float *d = p->host_dist + (size_t)q * n;
    for (int i = 0; i < n; i++) offer(&p->heaps[q], 1.0f - d[i], ids[i]);
  }
  return REID_OK;
}

static void pass_free(search_pass *p) {
  if (p->be && p->be->device != REID_DEVICE_CPU) {
    if (p->dev_query) p->be->ops->free(p->be, p->dev_query);
    if (p->dev_emb) p->be->ops->free(p->be, p->dev_emb);
    if (p->dist) p->be->ops->free(p->be, p->dist);
  }
  free(p->heaps);
  free(p->heap_mem);
  free(p->heap_ids);
  free(p->host_dist);
}

static reid_status pass_run(reid_gallery *g, search_pass *p, reid_backend *be, const float *queries,
                            int nq, const reid_gallery_filter *f, int k, float threshold,
                            int chunk_rows) {
  memset(p, 0, sizeof *p);
  if (k < 1) return reid_fail(REID_EINVAL, "search: top-k %d < 1", k);
  if (nq < 1) return reid_fail(REID_EINVAL, "search: %d queries", nq);
  if (!g->bound) {
    reid_gallery_model m;
    REID_TRY(reid_gallery_get_model(g, &m, NULL));
  }
  if (chunk_rows < 1) chunk_rows = 8192;
  *p = (search_pass){.be = be, .nq = nq, .dims = g->dims, .chunk = chunk_rows};
  p->heaps = calloc((size_t)nq, sizeof *p->heaps);
  p->heap_mem = malloc(sizeof *p->heap_mem * (size_t)nq * k);
  p->heap_ids = malloc(sizeof *p->heap_ids * (size_t)nq * k);
  p->host_dist = malloc(sizeof *p->host_dist * (size_t)nq * chunk_rows);
  if (!p->heaps || !p->heap_mem || !p->heap_ids || !p->host_dist)
    return reid_fail(REID_ENOMEM, "search: out of memory");
  for (int q = 0; q < nq; q++)
    p->heaps[q] = (topk){.k = k,
                         .threshold = threshold,
                         .score = p->heap_mem + (size_t)q * k,
                         .id = p->heap_ids + (size_t)q * k};
  size_t query_bytes = sizeof(float) * (size_t)nq * g->dims;
  if (be->device == REID_DEVICE_CPU) {
    p->query = queries;
    p->dist = p->host_dist;
  } else {
    p->dev_query = be->ops->alloc(be, query_bytes);
    p->dev_emb = be->ops->alloc(be, sizeof(float) * (size_t)chunk_rows * g->dims);
    p->dist = be->ops->alloc(be, sizeof(float) * (size_t)nq * chunk_rows);
    if (!p->dev_query || !p->dev_emb || !p->dist)
      return reid_fail(REID_ENOMEM, "search: out of %s memory", be->name);
    REID_TRY(be->ops->upload(be, p->dev_query, queries, query_bytes));
    p->query = p->dev_query;
  }
  return reid_gallery_scan(g, f, chunk_rows, search_chunk, p);
}

reid_status reid_gallery_search_ids(reid_gallery *g, reid_backend *be, const float *queries, int nq,
                                    const reid_gallery_filter *f, int k, int chunk_rows,
                                    float *scores, int64_t *ids) {
  search_pass p;
  reid_status st = pass_run(g, &p, be, queries, nq, f, k, -INFINITY, chunk_rows);
  for (int q = 0; q < nq && st == REID_OK; q++) {
    float *s = scores + (size_t)q * k;
    int64_t *i = ids + (size_t)q * k;
    for (int got = drain(&p.heaps[q], s, i); got < k; got++) s[got] = -INFINITY, i[got] = -1;
  }
  pass_free(&p);
  return st;
}

reid_status reid_gallery_search(reid_gallery *g, reid_backend *be, const float *query,
                                const reid_gallery_filter *f, int top_k, float threshold,
                                int chunk_rows, reid_gallery_hit **hits, int *n) {
  *hits = NULL;
  *n = 0;
  search_pass p;
  reid_status st = pass_run(g, &p, be, query, 1, f, top_k, threshold, chunk_rows);
  reid_gallery_hit *out = NULL;
  int count = 0;
  if (st == REID_OK && p.heaps[0].n > 0) {
    out = calloc((size_t)p.heaps[0].n, sizeof *out);
    float *scores = malloc(sizeof *scores * (size_t)p.heaps[0].n);
    int64_t *ids = malloc(sizeof *ids * (size_t)p.heaps[0].n);
    if (!out || !scores || !ids) {
      st = reid_fail(REID_ENOMEM, "search: out of memory");
    } else {
      count = drain(&p.heaps[0], scores, ids);
      for (int i = 0; i < count; i++) out[i].score = scores[i], out[i].id = ids[i];
      st = reid_gallery_fetch(g, out, count);
    }
    free(scores);
    free(ids);
  }
  pass_free(&p);
  if (st != REID_OK) {
    reid_gallery_hits_free(out, count);
    return st;
  }
  /* rows pruned between the scan and the fetch are dropped */
  int kept = 0;
  for (int i = 0; i < count; i++)
    if (out[i].id) out[kept++] = out[i];
  *hits = out;
  *n = kept;
  return REID_OK;
}
