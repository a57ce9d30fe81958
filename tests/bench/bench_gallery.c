/* Gallery scale benchmark (issue 11), a program, not a test:
 *   insert rate (tracklets/s, 64-row transactions as the element's writer
 *   does, 512-d float32 + a 4 KiB thumbnail) into SQLite and PostgreSQL;
 *   search latency at each size (512-d): exact (streamed from SQLite, or
 *   PostgreSQL with --pg-sizes, through the CPU distance op; warm: the second
 *   of two runs; also 100 queries in one batched pass) and with a FAISS index
 *   (--index: binary codes + rescoring by default; mean over 100 queries, its
 *   breadth doubled until recall@10 against exact >= 0.95); memory (RSS).
 *
 *   bench_gallery --dir DIR [--sizes 10000,100000,1000000] [--pg URI] [--pg-rows N]
 *                 [--pg-sizes N,...]
 *                 [--index binary|hnsw|ivf] [--m N] [--ef-construction N] [--nlist N] [--breadth N]
 * Run it with a private PostgreSQL server:
 *   OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive tests/gallery/with_postgres.sh \
 *     sh -c 'build/tests/bench/bench_gallery --dir /tmp/g --pg "$REID_TEST_PG"'
 * Embeddings: 1 identity per 20 tracklets, each a unit vector near its
 * identity's centre (cosine ~0.7), the way re-ID galleries cluster. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "gallery.h"
#if HAVE_FAISS
#include "gallery_index.h"
#endif

#define DIM     512
#define BATCH   64
#define QUERIES 100

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* CPU seconds of the process (all threads): on a shared, loaded machine this is what
 * the work costs; wall time also counts waiting for a core. */
static double cpu_s(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + (double)u.ru_stime.tv_sec +
         u.ru_stime.tv_usec * 1e-6;
}

static double peak_rss_mb(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

static double current_rss_mb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f && fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
  if (f) fclose(f);
  return rss * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static uint64_t rng_state = 88172645463325252ull;
static float gaussian(void) {
  /* xorshift64 + Box-Muller */
  double u[2];
  for (int i = 0; i < 2; i++) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    u[i] = ((rng_state >> 11) + 0.5) / 9007199254740992.0;
  }
  return (float)(sqrt(-2 * log(u[0])) * cos(2 * M_PI * u[1]));
}

static void normalise(float *x) {
  double ss = 0;
  for (int j = 0; j < DIM; j++) ss += (double)x[j] * x[j];
  for (int j = 0; j < DIM; j++) x[j] = (float)(x[j] / sqrt(ss));
}

/* Tracklet i: identity i / 20's centre plus noise. */
static void tracklet_embedding(int64_t i, float *out) {
  uint64_t saved = rng_state;
  rng_state = 0x9E3779B97F4A7C15ull * (uint64_t)(i / 20 + 1);
  float centre[DIM];
  for (int j = 0; j < DIM; j++) centre[j] = gaussian();
  normalise(centre);
  rng_state = saved;
  for (int j = 0; j < DIM; j++) out[j] = centre[j] + gaussian() * 0.045f;
  normalise(out);
}

static reid_gallery_model bench_model(void) {
  reid_gallery_model m = {.name = "bench_gallery (synthetic)", .dims = DIM};
  memset(m.hash, 'b', 64);
  return m;
}

/* Appends rows [from, to) in BATCH-row transactions; returns rows/s. */
static double last_insert_cpu_rate; /* rows per CPU second of the last insert_rows */

static double insert_rows(reid_gallery *g, int64_t from, int64_t to, int thumbs) {
  static float emb[BATCH][DIM];
  static uint8_t jpeg[4096];
  for (size_t i = 0; i < sizeof jpeg; i++) jpeg[i] = (uint8_t)(i * 31 + 7);
  reid_gallery_row rows[BATCH];
  char streams[8][16];
  for (int s = 0; s < 8; s++) snprintf(streams[s], sizeof streams[s], "cam%d", s);
  double t0 = now_s(), c0 = cpu_s();
  for (int64_t done = from; done < to; done += BATCH) {
    int n = to - done < BATCH ? (int)(to - done) : BATCH;
    for (int i = 0; i < n; i++) {
      int64_t k = done + i;
      tracklet_embedding(k, emb[i]);
      rows[i] = (reid_gallery_row){.stream = streams[k % 8],
                                   .track_id = k,
                                   .first_pts = k * 1000,
                                   .last_pts = k * 1000 + 900,
                                   .first_time = 1700000000000000LL + k * 1000,
                                   .last_time = 1700000000000000LL + k * 1000 + 900,
                                   .frames = 25,
                                   .bbox = {10, 20, 40, 80},
                                   .embedding = emb[i],
                                   .jpeg = thumbs ? jpeg : NULL,
                                   .jpeg_size = thumbs ? sizeof jpeg : 0};
    }
    if (reid_gallery_insert(g, rows, n, NULL) != REID_OK) {
      fprintf(stderr, "insert: %s\n", reid_last_error());
      exit(1);
    }
  }
  last_insert_cpu_rate = (double)(to - from) / (cpu_s() - c0);
  return (double)(to - from) / (now_s() - t0);
}

static reid_gallery *open_bound(const char *uri) {
  reid_gallery *g = NULL;
  reid_gallery_model m = bench_model();
  if (reid_gallery_open(uri, &g) != REID_OK || reid_gallery_bind_model(g, &m, REID_GALLERY_F32)) {
    fprintf(stderr, "%s\n", reid_last_error());
    exit(1);
  }
  return g;
}

static void bench_inserts(const char *label, const char *uri, int64_t rows) {
  reid_gallery *g = open_bound(uri);
  int64_t have = 0;
  reid_gallery_count(g, &have);
  double plain = insert_rows(g, have, have + rows / 2, 0), plain_cpu = last_insert_cpu_rate;
  double thumbs = insert_rows(g, have + rows / 2, have + rows, 1),
         thumbs_cpu = last_insert_cpu_rate;
  printf("insert %-10s %7lld rows: %8.0f tracklets/s (embedding only; %.0f per client CPU s), "
         "%8.0f tracklets/s (+ 4 KiB thumbnail; %.0f per client CPU s)\n",
         label, (long long)rows, plain, plain_cpu, thumbs, thumbs_cpu);
  fflush(stdout);
  reid_gallery_close(g);
}

static double last_search_cpu; /* CPU seconds of the last exact_top */

/* The exact top 10 of a query (for recall). */
static void exact_top(reid_gallery *g, reid_backend *be, const float *q, int k, int64_t *ids,
                      double *seconds) {
  reid_gallery_filter f;
  reid_gallery_filter_init(&f);
  reid_gallery_hit *hits = NULL;
  int n = 0;
  double t0 = now_s(), c0 = cpu_s();
  if (reid_gallery_search(g, be, q, &f, k, -1.0f, 8192, &hits, &n) != REID_OK) {
    fprintf(stderr, "search: %s\n", reid_last_error());
    exit(1);
  }
  *seconds = now_s() - t0;
  last_search_cpu = cpu_s() - c0;
  for (int i = 0; i < k; i++) ids[i] = i < n ? hits[i].id : -1;
  reid_gallery_hits_free(hits, n);
}

typedef struct index_args {
  const char *kind; /* "binary", "hnsw" or "ivf" */
  int hnsw_m, ef_construction, nlist, breadth;
} index_args;

/* One gallery size: uri is an SQLite file (one a size) or a PostgreSQL gallery
 * (grown from one size to the next); the index goes to index_base.KIND.faiss. */
static void bench_size(const char *uri, const char *index_base, int64_t size,
                       const index_args *ia) {
  reid_gallery *g = open_bound(uri);
  const char *store = reid_gallery_is_sqlite(g) ? "SQLite" : "PostgreSQL";
  int64_t have = 0;
  reid_gallery_count(g, &have);
  if (have < size) {
    double rate = insert_rows(g, have, size, 0);
    printf("[%lld] filled %lld rows at %.0f tracklets/s\n", (long long)size,
           (long long)(size - have), rate);
  }
  reid_backend *be = NULL;
  reid_backend_create("cpu", 0, &be);
  float q[DIM];
  int64_t one[10];
  double cold = 0, warm = 0, t;
  double rss_before = current_rss_mb();
  tracklet_embedding(size / 2 + 3, q);
  exact_top(g, be, q, 10, one, &cold);
  exact_top(g, be, q, 10, one, &warm);
  double warm_cpu = last_search_cpu;
  double rss_exact = current_rss_mb();
  /* QUERIES new sightings of stored identities (their centre, fresh noise): a few searched
   * one by one, all of them in one batched pass (the recall reference) */
  static float queries[QUERIES][DIM];
  static int64_t exact_ids[QUERIES][10];
  static float exact_scores[QUERIES][10];
  for (int i = 0; i < QUERIES; i++) tracklet_embedding((int64_t)(i * 7919) % size, queries[i]);
  double exact_total = 0;
  int timed = 5;
  for (int i = 0; i < timed; i++) {
    exact_top(g, be, queries[i], 10, one, &t);
    exact_total += t;
  }
  double t0 = now_s(), c0 = cpu_s();
  if (reid_gallery_search_ids(g, be, &queries[0][0], QUERIES, NULL, 10, 8192, &exact_scores[0][0],
                              &exact_ids[0][0]) != REID_OK) {
    fprintf(stderr, "search: %s\n", reid_last_error());
    exit(1);
  }
  double batch_s = now_s() - t0, batch_cpu = cpu_s() - c0;
  printf("[%lld] exact search (%s, CPU): %.3f s cold, %.3f s warm (%.3f CPU s), mean %.3f s "
         "over %d more queries; %d queries in one pass %.2f s (%.2f CPU s); RSS %.0f MB during "
         "the scan (%.0f MB before)\n",
         (long long)size, store, cold, warm, warm_cpu, exact_total / timed, timed, QUERIES, batch_s,
         batch_cpu, rss_exact, rss_before);
  fflush(stdout);
#if HAVE_FAISS
  char index_path[1100];
  snprintf(index_path, sizeof index_path, "%s.%s.faiss", index_base, ia->kind);
  reid_gallery_index *ix = NULL;
  reid_gallery_index_options io = {.kind = !strcmp(ia->kind, "ivf")    ? REID_GALLERY_INDEX_IVF
                                           : !strcmp(ia->kind, "hnsw") ? REID_GALLERY_INDEX_HNSW
                                                                       : REID_GALLERY_INDEX_BINARY,
                                   .hnsw_m = ia->hnsw_m,
                                   .ef_construction = ia->ef_construction,
                                   .nlist = ia->nlist};
  char name[64];
  t0 = now_s(), c0 = cpu_s();
  double rss0 = current_rss_mb();
  if (reid_gallery_index_load(index_path, &ix) != REID_OK || reid_gallery_index_rows(ix) != size ||
      reid_gallery_index_get_kind(ix) != io.kind) {
    reid_gallery_index_free(ix);
    ix = NULL;
    if (reid_gallery_index_build(g, &io, &ix) != REID_OK) {
      fprintf(stderr, "index: %s\n", reid_last_error());
      exit(1);
    }
    printf("[%lld] FAISS %s built in %.1f s (%.1f CPU s); RSS +%.0f MB\n", (long long)size,
           reid_gallery_index_describe(ix, name, sizeof name), now_s() - t0, cpu_s() - c0,
           current_rss_mb() - rss0);
    t0 = now_s();
    reid_gallery_index_save(ix, index_path);
    printf("[%lld] saved in %.1f s\n", (long long)size, now_s() - t0);
  } else {
    printf("[%lld] FAISS %s loaded in %.1f s\n", (long long)size,
           reid_gallery_index_describe(ix, name, sizeof name), now_s() - t0);
  }
  fflush(stdout);
  /* breadth: the given one, else doubled from 4 (binary: 2) until recall@10 >= 0.95 */
  reid_gallery_index_set_breadth(ix, ia->breadth                            ? ia->breadth
                                     : io.kind == REID_GALLERY_INDEX_BINARY ? 2
                                                                            : 16);
  for (;;) {
    float scores[10];
    int64_t ids[10];
    reid_gallery_index_search(ix, q, 1, 10, scores, ids); /* warm-up */
    double total = 0, worst = 0, search_c0 = cpu_s();
    int hit = 0;
    for (int i = 0; i < QUERIES; i++) {
      t0 = now_s();
      reid_gallery_index_search(ix, queries[i], 1, 10, scores, ids);
      double dt = now_s() - t0;
      total += dt;
      worst = dt > worst ? dt : worst;
      for (int a = 0; a < 10; a++)
        for (int b = 0; b < 10; b++) hit += ids[a] == exact_ids[i][b];
    }
    double search_cpu = cpu_s() - search_c0, recall = (double)hit / (10.0 * QUERIES);
    int b = reid_gallery_index_breadth(ix);
    printf("[%lld] FAISS %s search (%s %d): mean %.2f ms (%.2f CPU ms), worst %.2f ms over %d "
           "queries; recall@10 %.3f; peak RSS %.0f MB\n",
           (long long)size, name, reid_gallery_index_breadth_name(ix), b, 1e3 * total / QUERIES,
           1e3 * search_cpu / QUERIES, 1e3 * worst, QUERIES, recall, peak_rss_mb());
    fflush(stdout);
    if (ia->breadth || recall >= 0.95 || b >= reid_gallery_index_max_breadth(ix)) break;
    reid_gallery_index_set_breadth(ix, 2 * b);
  }
  reid_gallery_index_free(ix);
#else
  (void)ia;
  printf("[%lld] no FAISS in this build\n", (long long)size);
#endif
  fflush(stdout);
  reid_backend_destroy(be);
  reid_gallery_close(g);
}

/* "10000,100000" -> n[], at most 16 positive sizes; returns how many. */
static int parse_sizes(const char *list, int64_t n[16]) {
  int count = 0;
  for (const char *p = list; *p && count < 16;) {
    int64_t v = atoll(p);
    if (v > 0) n[count++] = v;
    p = strchr(p, ',');
    if (!p) break;
    p++;
  }
  return count;
}

int main(int argc, char **argv) {
  const char *dir = NULL, *pg = NULL, *sizes = "10000,100000,1000000", *pg_sizes = "";
  int64_t pg_rows = 20000;
  index_args ia = {.kind = "binary"};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--dir"))
      dir = argv[i + 1];
    else if (!strcmp(argv[i], "--pg"))
      pg = argv[i + 1];
    else if (!strcmp(argv[i], "--sizes"))
      sizes = argv[i + 1];
    else if (!strcmp(argv[i], "--pg-sizes"))
      pg_sizes = argv[i + 1];
    else if (!strcmp(argv[i], "--pg-rows"))
      pg_rows = atoll(argv[i + 1]);
    else if (!strcmp(argv[i], "--index"))
      ia.kind = argv[i + 1];
    else if (!strcmp(argv[i], "--m"))
      ia.hnsw_m = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--ef-construction"))
      ia.ef_construction = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--nlist"))
      ia.nlist = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--breadth"))
      ia.breadth = atoi(argv[i + 1]);
  }
  if (!dir) {
    fprintf(
        stderr,
        "usage: bench_gallery --dir DIR [--sizes 10000,100000,1000000] [--pg URI] "
        "[--pg-rows N] [--pg-sizes N,...] [--index binary|hnsw|ivf] [--m N] [--ef-construction N] "
        "[--nlist N] [--breadth N]\n");
    return 2;
  }
  char path[1024];
  snprintf(path, sizeof path, "%s/bench-insert.sqlite", dir);
  unlink(path);
  bench_inserts("sqlite", path, pg_rows);
  if (pg && *pg) bench_inserts("postgresql", pg, pg_rows);
  int64_t n[16];
  for (int i = 0, count = parse_sizes(sizes, n); i < count; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/bench-%lld.sqlite", dir, (long long)n[i]);
    bench_size(path, path, n[i], &ia);
  }
  for (int i = 0, count = pg && *pg ? parse_sizes(pg_sizes, n) : 0; i < count; i++) {
    char base[1024];
    snprintf(base, sizeof base, "%s/bench-pg-%lld", dir, (long long)n[i]);
    bench_size(pg, base, n[i], &ia);
  }
  return 0;
}
