/* An approximate index of a gallery's embeddings (FAISS, Debian's
 * libfaiss-dev): inverted lists over k-means cells, exact inner products
 * inside the cells probed ("IVF<nlist>,Flat", METRIC_INNER_PRODUCT: cosine
 * of unit vectors). Ids are the gallery's tracklet ids, so results are
 * fetched (and filtered) from the gallery itself; rows pruned after the
 * build are skipped there, rows added after it are missing until a rebuild.
 *
 * Memory: the index holds every embedding (4 * dims bytes a row) plus ids.
 * Building reads the gallery twice in chunks: a training sample (every
 * n / train_rows-th row), then all rows. */
#pragma once

#include "gallery.h"

typedef struct reid_gallery_index reid_gallery_index;

typedef struct reid_gallery_index_options {
  int nlist;      /* k-means cells; 0: 4 sqrt(rows), at most 256 (training stays cheap) */
  int train_rows; /* k-means sample; 0: 64 per cell */
  int nprobe;     /* cells probed by a search; 0: nlist / 32, at least 8 */
} reid_gallery_index_options;

reid_status reid_gallery_index_build(reid_gallery *g, const reid_gallery_index_options *o,
                                     reid_gallery_index **out);
reid_status reid_gallery_index_save(const reid_gallery_index *ix, const char *path);
reid_status reid_gallery_index_load(const char *path, reid_gallery_index **out);
void reid_gallery_index_free(reid_gallery_index *ix);

int64_t reid_gallery_index_rows(const reid_gallery_index *ix);
int reid_gallery_index_dims(const reid_gallery_index *ix);
int reid_gallery_index_nlist(const reid_gallery_index *ix);
int reid_gallery_index_nprobe(const reid_gallery_index *ix);
void reid_gallery_index_set_nprobe(reid_gallery_index *ix, int nprobe);

/* For each of nq queries [nq, dims] (L2-normalised): the k best ids and
 * inner products, best first (ids -1 / scores -inf pad when fewer exist). */
reid_status reid_gallery_index_search(const reid_gallery_index *ix, const float *queries, int nq,
                                      int k, float *scores, int64_t *ids);
