/* reid-search's FAISS side: `reid-search index` (build, recall@10 against
 * exact search, save) and `--index faiss` searches. */
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

/* Exact top-RECALL_K of many queries at once, streamed through the distance op. */
typedef struct exact_batch {
  reid_backend *be;
  int nq, dims;
  const float *queries; /* [nq, dims] */
  float *dist;          /* [nq, chunk] */
  float score[RECALL_QUERIES][RECALL_K];
  int64_t id[RECALL_QUERIES][RECALL_K];
} exact_batch;

static reid_status exact_chunk(void *user, const int64_t *ids, const float *emb, int n) {
  exact_batch *b = user;
  REID_TRY(b->be->ops->distance_forward(b->be, REID_DIST_COSINE, b->nq, n, b->dims, b->queries, emb,
                                        b->dist));
  for (int q = 0; q < b->nq; q++)
    for (int i = 0; i < n; i++) {
      float s = 1.0f - b->dist[(size_t)q * n + i];
      if (s <= b->score[q][RECALL_K - 1]) continue;
      int p = RECALL_K - 1;
      for (; p > 0 && b->score[q][p - 1] < s; p--)
        b->score[q][p] = b->score[q][p - 1], b->id[q][p] = b->id[q][p - 1];
      b->score[q][p] = s, b->id[q][p] = ids[i];
    }
  return REID_OK;
}

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

static double recall_at_k(const reid_gallery_index *ix, const exact_batch *b, float *scores,
                          int64_t *ids) {
  if (reid_gallery_index_search(ix, b->queries, b->nq, RECALL_K, scores, ids) != REID_OK) return -1;
  int hit = 0, total = 0;
  for (int q = 0; q < b->nq; q++)
    for (int i = 0; i < RECALL_K; i++) {
      if (b->id[q][i] < 0) continue;
      total++;
      for (int j = 0; j < RECALL_K; j++) hit += ids[(size_t)q * RECALL_K + j] == b->id[q][i];
    }
  return total ? (double)hit / total : 1.0;
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
  reid_gallery_index_options io = {.nlist = o->nlist, .nprobe = o->nprobe};
  reid_gallery_index *ix = NULL;
  gint64 t0 = g_get_monotonic_time();
  if (reid_gallery_index_build(g, &io, &ix) != REID_OK) return search_fail("index");
  double build_s = (double)(g_get_monotonic_time() - t0) / 1e6;

  /* recall@10 against exact search on sampled queries */
  exact_batch *b = g_new0(exact_batch, 1);
  sampler s = {.dims = m.dims,
               .want = RECALL_QUERIES,
               .stride = rows / RECALL_QUERIES > 1 ? rows / RECALL_QUERIES : 1,
               .seed = 7};
  s.out = g_new(float, (size_t)RECALL_QUERIES *m.dims);
  int rc = 0;
  reid_status st = reid_gallery_scan(g, NULL, 8192, sample_queries, &s);
  if (st == REID_OK) st = reid_backend_create("cpu", 0, &b->be);
  b->nq = s.n, b->dims = m.dims, b->queries = s.out;
  b->dist = g_new(float, (size_t)RECALL_QUERIES * 8192);
  for (int q = 0; q < RECALL_QUERIES; q++)
    for (int i = 0; i < RECALL_K; i++) b->score[q][i] = -INFINITY, b->id[q][i] = -1;
  gint64 t1 = g_get_monotonic_time();
  if (st == REID_OK) st = reid_gallery_scan(g, NULL, 8192, exact_chunk, b);
  double exact_s = (double)(g_get_monotonic_time() - t1) / 1e6;
  float *scores = g_new(float, (size_t)RECALL_QUERIES *RECALL_K);
  int64_t *ids = g_new(int64_t, (size_t)RECALL_QUERIES * RECALL_K);
  double recall = -1;
  if (st != REID_OK) {
    rc = search_fail("index: exact reference");
  } else {
    /* nprobe: the given one, else the smallest power-of-two step reaching the target */
    for (;;) {
      recall = recall_at_k(ix, b, scores, ids);
      int np = reid_gallery_index_nprobe(ix);
      printf("nprobe %d: recall@%d %.4f\n", np, RECALL_K, recall);
      if (o->nprobe || recall >= RECALL_TARGET || np >= reid_gallery_index_nlist(ix)) break;
      reid_gallery_index_set_nprobe(ix, 2 * np);
    }
    if (reid_gallery_index_save(ix, path) != REID_OK) rc = search_fail(NULL);
  }
  if (rc == 0)
    printf("index %s: %lld tracklets, %d dims, IVF%d (nprobe %d), built in %.1f s; recall@%d "
           "%.4f against exact search (%d queries; exact pass %.2f s)\n",
           path, (long long)reid_gallery_index_rows(ix), m.dims, reid_gallery_index_nlist(ix),
           reid_gallery_index_nprobe(ix), build_s, RECALL_K, recall, b->nq, exact_s);
  reid_backend_destroy(b->be);
  g_free(b->dist);
  g_free(b);
  g_free(s.out);
  g_free(scores);
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
  if (o->nprobe) reid_gallery_index_set_nprobe(ix, o->nprobe);
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
