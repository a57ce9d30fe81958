/* An approximate index of a gallery's embeddings (FAISS, Debian's
 * libfaiss-dev) ranking by cosine (inner products of unit vectors). Kinds:
 *
 *   binary (the default): "IDMap,LSH<dims>,RFlat", binary quantization with
 *     rescoring: one bit a dimension (above or below the median of a
 *     training sample), every row's code compared with the query's (Hamming
 *     distance: 8 popcounts a 512-d row), then the k_factor * k nearest codes
 *     reranked by exact cosine over their float32 rows. No graph, no cells:
 *     it does not depend on the gallery clustering in ways a graph or k-means
 *     can follow. Rows are added as they come (no retraining). Breadth =
 *     k_factor.
 *   HNSW: "IDMap,HNSW<m>,Flat", a graph of each row's
 *     nearest neighbours searched greedily, exact scores of the rows
 *     visited. No training; rows are added one by one, so the index grows
 *     with the gallery (reid_gallery_index_update). Breadth = efSearch
 *     (candidates kept while walking the graph).
 *   IVF: "IDMap,IVF<nlist>,Flat", inverted lists over k-means cells (trained
 *     once on a sample), exact scores inside the cells probed. Breadth =
 *     nprobe (cells probed).
 *
 * Ids are the gallery's tracklet ids (never reused), so results are fetched
 * (and filtered) from the gallery itself; rows pruned after the build are
 * skipped there, rows added after it are missing until an update.
 *
 * Memory: the index holds every embedding (4 * dims bytes a row), its id
 * (8 bytes), for binary dims / 8 bytes of code, for HNSW about 2 m neighbour
 * ids (4 bytes each) a row. */
#pragma once

#include "gallery.h"

typedef struct reid_gallery_index reid_gallery_index;

typedef enum reid_gallery_index_kind {
  REID_GALLERY_INDEX_BINARY = 0,
  REID_GALLERY_INDEX_HNSW = 1,
  REID_GALLERY_INDEX_IVF = 2,
} reid_gallery_index_kind;

typedef struct reid_gallery_index_options {
  reid_gallery_index_kind kind;
  int hnsw_m;          /* HNSW: neighbours a node keeps; 0: 32 */
  int ef_construction; /* HNSW: candidates while inserting; 0: 40 */
  int nlist;           /* IVF: k-means cells; 0: 4 sqrt(rows), at most 256 */
  int train_rows;      /* IVF: k-means sample, 0: 64 per cell; binary: median sample, 0: 16384 */
  int breadth;         /* search breadth (k_factor / efSearch / nprobe); 0: the kind's default */
} reid_gallery_index_options;

/* Builds an index of every row of g. */
reid_status reid_gallery_index_build(reid_gallery *g, const reid_gallery_index_options *o,
                                     reid_gallery_index **out);
/* Adds the rows of g that the index lacks (rows written since it was built
 * or last updated; *added may be NULL). Reads the gallery once in chunks. */
reid_status reid_gallery_index_update(reid_gallery *g, reid_gallery_index *ix, int64_t *added);

/* Saves atomically (a temporary file renamed into place). */
reid_status reid_gallery_index_save(const reid_gallery_index *ix, const char *path);
reid_status reid_gallery_index_load(const char *path, reid_gallery_index **out);
void reid_gallery_index_free(reid_gallery_index *ix);

int64_t reid_gallery_index_rows(const reid_gallery_index *ix);
int reid_gallery_index_dims(const reid_gallery_index *ix);
reid_gallery_index_kind reid_gallery_index_get_kind(const reid_gallery_index *ix);
/* "LSH512(medians),RFlat", "HNSW32,Flat" or "IVF256,Flat" */
const char *reid_gallery_index_describe(const reid_gallery_index *ix, char *buf, size_t cap);
/* The breadth's name ("k_factor", "efSearch", "nprobe"), its value, its largest value. */
const char *reid_gallery_index_breadth_name(const reid_gallery_index *ix);
int reid_gallery_index_breadth(const reid_gallery_index *ix);
int reid_gallery_index_max_breadth(const reid_gallery_index *ix);
void reid_gallery_index_set_breadth(reid_gallery_index *ix, int breadth);

/* For each of nq queries [nq, dims] (L2-normalised): the k best ids and
 * inner products, best first (ids -1 / scores -inf pad when fewer exist). */
reid_status reid_gallery_index_search(const reid_gallery_index *ix, const float *queries, int nq,
                                      int k, float *scores, int64_t *ids);
