/* reid-search's FAISS side: `reid-search index` (build or update, recall@10
 * against exact search, save) and `--index faiss` searches. */
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "reid_search.h"
#if HAVE_FAISS
#include "gallery_index.h"
#endif

#define RECALL_QUERIES 200
#define RECALL_K       10
#define RECALL_TARGET  0.95

#if HAVE_FAISS

/* Queries: every (rows / RECALL_QUERIES)-th stored embedding plus noise, as a
 * new sighting of a stored identity would be. */
typedef struct sampler {
  int dims, n, want;
  int64_t stride, seen;
  float *out;
  unsigned seed;
} sampler;

static reid_status sample_queries(void *user, const int64_t *ids, const float *emb, int n) {
  sampler *s = user;
  (void)ids;
  for (int i = 0; i < n && s->n < s->want; i++, s->seen++) {
    if (s->seen % s->stride) continue;
    float *q = s->out + (size_t)s->n++ * s->dims;
    double ss = 0;
    for (int j = 0; j < s->dims; j++) {
      s->seed = s->seed * 1103515245u + 12345u;
      float noise = ((float)((s->seed >> 8) & 0xffff) / 65535.0f - 0.5f) * 2.0f;
      q[j] = emb[(size_t)i * s->dims + j] + 0.6f * noise / sqrtf((float)s->dims);
      ss += (double)q[j] * q[j];
    }
    for (int j = 0; j < s->dims; j++) q[j] = (float)(q[j] / sqrt(ss));
  }
  return REID_OK;
}

/* recall@RECALL_K of the index's answers against the exact ids [nq, RECALL_K] */
static double recall_at_k(const reid_gallery_index *ix, const float *queries, int nq,
                          const int64_t *exact, float *scores, int64_t *ids) {
  if (reid_gallery_index_search(ix, queries, nq, RECALL_K, scores, ids) != REID_OK) return -1;
  int hit = 0, total = 0;
  for (int q = 0; q < nq; q++)
    for (int i = 0; i < RECALL_K; i++) {
      int64_t want = exact[(size_t)q * RECALL_K + i];
      if (want < 0) continue;
      total++;
      for (int j = 0; j < RECALL_K; j++) hit += ids[(size_t)q * RECALL_K + j] == want;
    }
  return total ? (double)hit / total : 1.0;
}

/* The breadth asked for the index's kind (--k-factor, --ef-search, --nprobe), 0: none. */
static int asked_breadth(const options *o, const reid_gallery_index *ix) {
  switch (reid_gallery_index_get_kind(ix)) {
  case REID_GALLERY_INDEX_HNSW: return o->ef_search;
  case REID_GALLERY_INDEX_IVF: return o->nprobe;
  default: return o->k_factor;
  }
}

/* An index to update: the one at path, when it exists, is of the kind asked
 * and no rebuild was asked; else NULL. */
static reid_gallery_index *existing_index(const options *o, const char *path,
                                          reid_gallery_index_kind kind) {
  reid_gallery_index *ix = NULL;
  if (o->rebuild || !g_file_test(path, G_FILE_TEST_EXISTS)) return NULL;
  if (reid_gallery_index_load(path, &ix) != REID_OK) {
    fprintf(stderr, "reid-search index: %s; building a new one\n", reid_last_error());
    return NULL;
  }
  if (o->kind && reid_gallery_index_get_kind(ix) != kind) {
    reid_gallery_index_free(ix);
    return NULL;
  }
  return ix;
}

int search_index_command(const options *o, reid_gallery *g, const char *path) {
  if (!path) {
    fprintf(stderr, "reid-search index: a PostgreSQL gallery needs --index-file\n");
    return 2;
  }
  reid_gallery_model m;
  int64_t rows = 0;
  if (reid_gallery_get_model(g, &m, NULL) != REID_OK || reid_gallery_count(g, &rows) != REID_OK)
    return search_fail(NULL);
  reid_gallery_index_kind kind = !o->kind                   ? REID_GALLERY_INDEX_BINARY
                                 : !strcmp(o->kind, "ivf")  ? REID_GALLERY_INDEX_IVF
                                 : !strcmp(o->kind, "hnsw") ? REID_GALLERY_INDEX_HNSW
                                                            : REID_GALLERY_INDEX_BINARY;
  reid_gallery_index_options io = {.kind = kind, .hnsw_m = o->hnsw_m, .nlist = o->nlist};
  io.breadth = kind == REID_GALLERY_INDEX_HNSW  ? o->ef_search
               : kind == REID_GALLERY_INDEX_IVF ? o->nprobe
                                                : o->k_factor;
  gint64 t0 = g_get_monotonic_time();
  reid_gallery_index *ix = existing_index(o, path, kind);
  int64_t added = 0;
  const char *verb = ix ? "updated" : "built";
  if (ix ? reid_gallery_index_update(g, ix, &added) != REID_OK
         : reid_gallery_index_build(g, &io, &ix) != REID_OK) {
    reid_gallery_index_free(ix);
    return search_fail("index");
  }
  if (!strcmp(verb, "built")) added = reid_gallery_index_rows(ix);
  double build_s = (double)(g_get_monotonic_time() - t0) / 1e6;
  if (asked_breadth(o, ix)) reid_gallery_index_set_breadth(ix, asked_breadth(o, ix));

  /* recall@10 against exact search on sampled queries */
  sampler s = {.dims = m.dims,
               .want = RECALL_QUERIES,
               .stride = rows / RECALL_QUERIES > 1 ? rows / RECALL_QUERIES : 1,
               .seed = 7};
  s.out = g_new(float, (size_t)RECALL_QUERIES *m.dims);
  float *scores = g_new(float, (size_t)RECALL_QUERIES *RECALL_K);
  int64_t *exact = g_new(int64_t, (size_t)RECALL_QUERIES * RECALL_K);
  int64_t *ids = g_new(int64_t, (size_t)RECALL_QUERIES * RECALL_K);
  reid_backend *be = NULL;
  int rc = 0;
  reid_status st = reid_gallery_scan(g, NULL, 8192, sample_queries, &s);
  if (st == REID_OK) st = reid_backend_create("cpu", 0, &be);
  gint64 t1 = g_get_monotonic_time();
  if (st == REID_OK && s.n > 0)
    st = reid_gallery_search_ids(g, be, s.out, s.n, NULL, RECALL_K, 8192, scores, exact);
  double exact_s = (double)(g_get_monotonic_time() - t1) / 1e6;
  double recall = -1;
  const char *breadth = reid_gallery_index_breadth_name(ix);
  if (st != REID_OK) {
    rc = search_fail("index: exact reference");
  } else {
    /* breadth: the given one, else doubled until recall reaches the target */
    for (;;) {
      recall = s.n ? recall_at_k(ix, s.out, s.n, exact, scores, ids) : 1.0;
      int b = reid_gallery_index_breadth(ix);
      printf("%s %d: recall@%d %.4f\n", breadth, b, RECALL_K, recall);
      if (asked_breadth(o, ix) || recall >= RECALL_TARGET ||
          b >= reid_gallery_index_max_breadth(ix))
        break;
      reid_gallery_index_set_breadth(ix, 2 * b);
    }
    if (reid_gallery_index_save(ix, path) != REID_OK) rc = search_fail(NULL);
  }
  if (rc == 0) {
    char kind_name[64];
    printf("index %s: %lld tracklets (%lld %s), %d dims, %s (%s %d), %s in %.1f s; recall@%d "
           "%.4f against exact search (%d queries; exact pass %.2f s)\n",
           path, (long long)reid_gallery_index_rows(ix), (long long)added,
           strcmp(verb, "built") ? "added" : "indexed", m.dims,
           reid_gallery_index_describe(ix, kind_name, sizeof kind_name), breadth,
           reid_gallery_index_breadth(ix), verb, build_s, RECALL_K, recall, s.n, exact_s);
  }
  reid_backend_destroy(be);
  g_free(s.out);
  g_free(scores);
  g_free(exact);
  g_free(ids);
  reid_gallery_index_free(ix);
  return rc;
}

/* Keeps the candidates that pass the filter (rows are fetched from the gallery). */
static int passes(const reid_gallery_hit *h, const reid_gallery_filter *f, float threshold) {
  if (h->id == 0 || h->score < threshold) return 0;
  if (h->last_time < f->since || h->first_time > f->until) return 0;
  if (f->n_streams == 0) return 1;
  for (int i = 0; i < f->n_streams; i++)
    if (!strcmp(f->streams[i], h->stream)) return 1;
  return 0;
}

int search_with_index(const options *o, reid_gallery *g, const char *path, const float *query,
                      const reid_gallery_filter *f, reid_gallery_hit **hits, int *n) {
  *hits = NULL;
  *n = 0;
  if (!path) {
    fprintf(stderr, "reid-search: --index faiss on a PostgreSQL gallery needs --index-file\n");
    return 2;
  }
  reid_gallery_index *ix = NULL;
  if (reid_gallery_index_load(path, &ix) != REID_OK)
    return search_fail("--index faiss (build it with `reid-search index`)");
  reid_gallery_model m;
  int64_t rows = 0;
  if (reid_gallery_get_model(g, &m, NULL) != REID_OK || reid_gallery_count(g, &rows) != REID_OK) {
    reid_gallery_index_free(ix);
    return search_fail(NULL);
  }
  if (reid_gallery_index_dims(ix) != m.dims) {
    fprintf(stderr, "reid-search: %s holds %d-dimensional rows, the gallery %d: rebuild it\n", path,
            reid_gallery_index_dims(ix), m.dims);
    reid_gallery_index_free(ix);
    return 1;
  }
  if (asked_breadth(o, ix)) reid_gallery_index_set_breadth(ix, asked_breadth(o, ix));
  int64_t total = reid_gallery_index_rows(ix);
  if (rows > total)
    fprintf(stderr,
            "reid-search: %lld tracklets were added after %s was built and are not searched "
            "(run `reid-search index` again)\n",
            (long long)(rows - total), path);
  /* candidates: 4 k, then more while the filter leaves fewer than k */
  int k = o->top_k * 4 < 64 ? 64 : o->top_k * 4, rc = 0, kept = 0;
  reid_gallery_hit *out = NULL;
  for (;;) {
    if (k > total) k = (int)total;
    float *scores = g_new(float, k);
    int64_t *ids = g_new(int64_t, k);
    reid_gallery_hits_free(out, kept);
    out = g_new0(reid_gallery_hit, k > 0 ? k : 1);
    kept = 0;
    reid_status st = k > 0 ? reid_gallery_index_search(ix, query, 1, k, scores, ids) : REID_OK;
    int got = 0;
    for (int i = 0; i < k && st == REID_OK && kept < o->top_k; i++) {
      if (ids[i] < 0) break;
      got++;
      reid_gallery_hit h = {.id = ids[i], .score = scores[i]};
      st = reid_gallery_fetch(g, &h, 1);
      if (st == REID_OK && passes(&h, f, (float)o->threshold))
        out[kept++] = h;
      else
        free(h.stream);
    }
    g_free(scores);
    g_free(ids);
    if (st != REID_OK) {
      rc = search_fail("search");
      break;
    }
    if (kept >= o->top_k || k >= total || got < k) break;
    k = k > total / 4 ? (int)total : 4 * k;
  }
  reid_gallery_index_free(ix);
  if (rc) {
    reid_gallery_hits_free(out, kept);
    return rc;
  }
  *hits = out;
  *n = kept;
  return 0;
}

#else /* no FAISS in this build */

int search_index_command(const options *o, reid_gallery *g, const char *path) {
  (void)o, (void)g, (void)path;
  fprintf(stderr, "reid-search: this build has no FAISS (install libfaiss-dev and rebuild)\n");
  return 1;
}

int search_with_index(const options *o, reid_gallery *g, const char *path, const float *query,
                      const reid_gallery_filter *f, reid_gallery_hit **hits, int *n) {
  (void)query, (void)f, (void)hits, (void)n;
  return search_index_command(o, g, path);
}

#endif
