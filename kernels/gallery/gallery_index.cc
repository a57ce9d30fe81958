// The gallery's FAISS index (gallery_index.h): FAISS's C++ API behind a C
// interface (Debian's libfaiss-dev ships no C API library). C++ exceptions
// stop here and become reid_status values.
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexLSH.h>
#include <faiss/IndexRefine.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/utils/distances.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <queue>
#include <string>
#include <utility>
#include <vector>

extern "C" {
#include "gallery_index.h"
}

using idx_t = faiss::Index::idx_t;

#define DEFAULT_HNSW_M          32
#define DEFAULT_EF_CONSTRUCTION 40
#define DEFAULT_EF_SEARCH       64
#define MAX_EF_SEARCH           4096
#define DEFAULT_RERANK          16 /* binary: candidates reranked = this x k */
#define MAX_RERANK              1024
#define BINARY_TRAIN_ROWS       16384

struct reid_gallery_index {
  std::unique_ptr<faiss::IndexIDMap> index; /* gallery ids -> the inner index's rows */
  faiss::IndexHNSW *hnsw = nullptr;         /* the inner index: one of these three */
  faiss::IndexIVF *ivf = nullptr;
  faiss::IndexRefine *binary = nullptr; /* IndexLSH codes, reranked by an IndexFlatL2 */
};

namespace {

/* Finds the inner index of a loaded or new IDMap; false when it is neither kind. */
bool attach_inner(reid_gallery_index *ix) {
  ix->hnsw = dynamic_cast<faiss::IndexHNSW *>(ix->index->index);
  ix->ivf = dynamic_cast<faiss::IndexIVF *>(ix->index->index);
  ix->binary = dynamic_cast<faiss::IndexRefine *>(ix->index->index);
  if (ix->binary && !dynamic_cast<faiss::IndexLSH *>(ix->binary->base_index)) ix->binary = nullptr;
  if (ix->hnsw || ix->ivf) return ix->index->metric_type == faiss::METRIC_INNER_PRODUCT;
  return ix->binary && ix->index->metric_type == faiss::METRIC_L2;
}

struct sample_state {
  int dims;
  int64_t stride, seen = 0;
  std::vector<float> rows;
};

reid_status sample_chunk(void *user, const int64_t *ids, const float *emb, int n) {
  (void)ids;
  auto *s = static_cast<sample_state *>(user);
  for (int i = 0; i < n; i++, s->seen++)
    if (s->seen % s->stride == 0)
      s->rows.insert(s->rows.end(), emb + (size_t)i * s->dims, emb + (size_t)(i + 1) * s->dims);
  return REID_OK;
}

/* Adds the rows of each chunk whose id is not in `have` (sorted). */
struct add_state {
  reid_gallery_index *ix;
  std::vector<idx_t> have;
  std::vector<idx_t> ids;
  std::vector<float> rows;
  int64_t added = 0;
};

reid_status add_chunk(void *user, const int64_t *ids, const float *emb, int n) {
  auto *s = static_cast<add_state *>(user);
  int dims = (int)s->ix->index->d;
  s->ids.clear();
  s->rows.clear();
  for (int i = 0; i < n; i++) {
    if (std::binary_search(s->have.begin(), s->have.end(), (idx_t)ids[i])) continue;
    s->ids.push_back(ids[i]);
    s->rows.insert(s->rows.end(), emb + (size_t)i * dims, emb + (size_t)(i + 1) * dims);
  }
  if (s->ids.empty()) return REID_OK;
  try {
    s->ix->index->add_with_ids((idx_t)s->ids.size(), s->rows.data(), s->ids.data());
  } catch (const std::exception &e) {
    return reid_fail(REID_ENOMEM, "FAISS index: adding rows failed: %s", e.what());
  }
  s->added += (int64_t)s->ids.size();
  return REID_OK;
}

/* About `want` rows of g, evenly spread, [n, dims] into s->rows. */
reid_status sample_rows(reid_gallery *g, int64_t rows, int64_t want, sample_state *s) {
  s->stride = std::max<int64_t>(1, rows / std::max<int64_t>(1, want));
  return reid_gallery_scan(g, nullptr, 8192, sample_chunk, s);
}

/* A new, empty index of the kind asked (IVF, binary: trained on a sample of g). */
reid_status create_index(reid_gallery *g, const reid_gallery_index_options *o, int dims,
                         reid_gallery_index *ix) {
  reid_gallery_index_kind kind = o ? o->kind : REID_GALLERY_INDEX_BINARY;
  if (kind == REID_GALLERY_INDEX_HNSW) {
    int m = o && o->hnsw_m > 0 ? o->hnsw_m : DEFAULT_HNSW_M;
    auto *hnsw = new faiss::IndexHNSWFlat(dims, m, faiss::METRIC_INNER_PRODUCT);
    hnsw->hnsw.efConstruction =
        o && o->ef_construction > 0 ? o->ef_construction : DEFAULT_EF_CONSTRUCTION;
    hnsw->hnsw.efSearch = o && o->breadth > 0 ? o->breadth : DEFAULT_EF_SEARCH;
    ix->index.reset(new faiss::IndexIDMap(hnsw));
    ix->index->own_fields = true;
    attach_inner(ix);
    return REID_OK;
  }
  int64_t rows = 0;
  REID_TRY(reid_gallery_count(g, &rows));
  if (kind == REID_GALLERY_INDEX_BINARY) {
    if (rows < 1)
      return reid_fail(REID_EINVAL, "gallery %s: no tracklets to index", reid_gallery_uri(g));
    sample_state s;
    s.dims = dims;
    REID_TRY(sample_rows(g, rows, o && o->train_rows > 0 ? o->train_rows : BINARY_TRAIN_ROWS, &s));
    /* one bit a dimension: above or below the sample's median (no rotation) */
    auto *lsh = new faiss::IndexLSH(dims, dims, false, true);
    auto *refine = new faiss::IndexRefineFlat(lsh);
    refine->own_fields = true;
    ix->index.reset(new faiss::IndexIDMap(refine));
    ix->index->own_fields = true;
    attach_inner(ix);
    refine->train((idx_t)(s.rows.size() / dims), s.rows.data());
    refine->k_factor = (float)(o && o->breadth > 0 ? o->breadth : DEFAULT_RERANK);
    return REID_OK;
  }
  int nlist =
      o && o->nlist > 0 ? o->nlist : (int)std::min<double>(256, std::max(1.0, 4 * std::sqrt(rows)));
  if (rows < nlist)
    return reid_fail(REID_EINVAL,
                     "gallery %s: %lld tracklets cannot train %d cells (exact search suits it)",
                     reid_gallery_uri(g), (long long)rows, nlist);
  sample_state s;
  s.dims = dims;
  REID_TRY(sample_rows(g, rows, o && o->train_rows > 0 ? o->train_rows : 64LL * nlist, &s));
  std::string spec = "IVF" + std::to_string(nlist) + ",Flat";
  auto *ivf = dynamic_cast<faiss::IndexIVF *>(
      faiss::index_factory(dims, spec.c_str(), faiss::METRIC_INNER_PRODUCT));
  ix->index.reset(new faiss::IndexIDMap(ivf));
  ix->index->own_fields = true;
  attach_inner(ix);
  ivf->cp.seed = 1234;
  ivf->train((idx_t)(s.rows.size() / dims), s.rows.data());
  ivf->nprobe = o && o->breadth > 0 ? o->breadth : std::max(8, nlist / 32);
  return REID_OK;
}

} // namespace

extern "C" reid_status reid_gallery_index_build(reid_gallery *g,
                                                const reid_gallery_index_options *o,
                                                reid_gallery_index **out) {
  *out = nullptr;
  reid_gallery_model m;
  REID_TRY(reid_gallery_get_model(g, &m, nullptr));
  auto *ix = new (std::nothrow) reid_gallery_index;
  if (!ix) return reid_fail(REID_ENOMEM, "FAISS index: out of memory");
  reid_status st;
  try {
    st = create_index(g, o, m.dims, ix);
  } catch (const std::exception &e) {
    st = reid_fail(REID_EINVAL, "FAISS index: creating it failed: %s", e.what());
  }
  if (st == REID_OK) st = reid_gallery_index_update(g, ix, nullptr);
  if (st != REID_OK) {
    delete ix;
    return st;
  }
  *out = ix;
  return REID_OK;
}

extern "C" reid_status reid_gallery_index_update(reid_gallery *g, reid_gallery_index *ix,
                                                 int64_t *added) {
  if (added) *added = 0;
  reid_gallery_model m;
  REID_TRY(reid_gallery_get_model(g, &m, nullptr));
  if (m.dims != ix->index->d)
    return reid_fail(REID_EINVAL, "FAISS index: %d-dimensional rows, gallery %s has %d",
                     (int)ix->index->d, reid_gallery_uri(g), m.dims);
  add_state s;
  s.ix = ix;
  s.have = ix->index->id_map;
  std::sort(s.have.begin(), s.have.end());
  REID_TRY(reid_gallery_scan(g, nullptr, 8192, add_chunk, &s));
  if (added) *added = s.added;
  return REID_OK;
}

extern "C" reid_status reid_gallery_index_save(const reid_gallery_index *ix, const char *path) {
  std::string tmp = std::string(path) + ".tmp";
  try {
    faiss::write_index(ix->index.get(), tmp.c_str());
  } catch (const std::exception &e) {
    std::remove(tmp.c_str());
    return reid_fail(REID_EIO, "%s: cannot write the index: %s", path, e.what());
  }
  if (std::rename(tmp.c_str(), path) != 0) {
    std::remove(tmp.c_str());
    return reid_fail(REID_EIO, "%s: cannot rename the index into place: %s", path,
                     std::strerror(errno));
  }
  return REID_OK;
}

extern "C" reid_status reid_gallery_index_load(const char *path, reid_gallery_index **out) {
  *out = nullptr;
  auto *ix = new (std::nothrow) reid_gallery_index;
  if (!ix) return reid_fail(REID_ENOMEM, "FAISS index: out of memory");
  std::unique_ptr<faiss::Index> loaded;
  try {
    loaded.reset(faiss::read_index(path));
  } catch (const std::exception &e) {
    delete ix;
    /* FAISS's message carries its source location; the first line names the cause */
    std::string what = e.what();
    return reid_fail(REID_EFORMAT, "%s: not a readable FAISS index (%s)", path,
                     what.substr(0, what.find('\n')).c_str());
  }
  auto *idmap = dynamic_cast<faiss::IndexIDMap *>(loaded.get());
  if (idmap) {
    loaded.release();
    ix->index.reset(idmap);
  }
  if (!idmap || !attach_inner(ix)) {
    delete ix;
    return reid_fail(REID_EFORMAT,
                     "%s: not a gallery index (ids mapped to HNSW, IVF or binary codes): "
                     "rebuild it with `reid-search index --rebuild`",
                     path);
  }
  *out = ix;
  return REID_OK;
}

extern "C" void reid_gallery_index_free(reid_gallery_index *ix) {
  delete ix;
}

extern "C" int64_t reid_gallery_index_rows(const reid_gallery_index *ix) {
  return ix->index->ntotal;
}
extern "C" int reid_gallery_index_dims(const reid_gallery_index *ix) {
  return ix->index->d;
}
extern "C" reid_gallery_index_kind reid_gallery_index_get_kind(const reid_gallery_index *ix) {
  return ix->hnsw  ? REID_GALLERY_INDEX_HNSW
         : ix->ivf ? REID_GALLERY_INDEX_IVF
                   : REID_GALLERY_INDEX_BINARY;
}
extern "C" const char *reid_gallery_index_describe(const reid_gallery_index *ix, char *buf,
                                                   size_t cap) {
  if (ix->hnsw)
    std::snprintf(buf, cap, "HNSW%d,Flat", (int)(ix->hnsw->hnsw.nb_neighbors(1)));
  else if (ix->ivf)
    std::snprintf(buf, cap, "IVF%d,Flat", (int)ix->ivf->nlist);
  else
    std::snprintf(buf, cap, "LSH%d(medians),RFlat", (int)ix->index->d);
  return buf;
}
extern "C" const char *reid_gallery_index_breadth_name(const reid_gallery_index *ix) {
  return ix->hnsw ? "efSearch" : ix->ivf ? "nprobe" : "k_factor";
}
extern "C" int reid_gallery_index_breadth(const reid_gallery_index *ix) {
  return ix->hnsw  ? ix->hnsw->hnsw.efSearch
         : ix->ivf ? (int)ix->ivf->nprobe
                   : (int)ix->binary->k_factor;
}
extern "C" int reid_gallery_index_max_breadth(const reid_gallery_index *ix) {
  return ix->hnsw ? MAX_EF_SEARCH : ix->ivf ? (int)ix->ivf->nlist : MAX_RERANK;
}
extern "C" void reid_gallery_index_set_breadth(reid_gallery_index *ix, int breadth) {
  breadth = std::max(1, std::min(breadth, reid_gallery_index_max_breadth(ix)));
  if (ix->hnsw)
    ix->hnsw->hnsw.efSearch = breadth;
  else if (ix->ivf)
    ix->ivf->nprobe = (size_t)breadth;
  else
    ix->binary->k_factor = (float)breadth;
}

namespace {

/* Hamming distance of two codes of `bytes` bytes. */
__attribute__((always_inline)) inline int hamming(const uint8_t *a, const uint8_t *b,
                                                  size_t bytes) {
  int d = 0;
  size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    uint64_t x, y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    d += __builtin_popcountll(x ^ y);
  }
  for (; i < bytes; i++) d += __builtin_popcount((unsigned)(a[i] ^ b[i]));
  return d;
}

using candidate = std::pair<int, idx_t>; /* (Hamming distance, row); a max-heap keeps the best */
using candidates = std::priority_queue<candidate>;

/* The `want` rows of codes [rows, bytes] in [begin, end) nearest to `query` (Hamming). */
__attribute__((always_inline)) inline void scan_codes(const uint8_t *codes, size_t bytes,
                                                      const uint8_t *query, idx_t begin, idx_t end,
                                                      size_t want, candidates &heap) {
  for (idx_t i = begin; i < end; i++) {
    int d = hamming(codes + (size_t)i * bytes, query, bytes);
    if (heap.size() < want) {
      heap.emplace(d, i);
    } else if (d < heap.top().first) {
      heap.pop();
      heap.emplace(d, i);
    }
  }
}

/* Debian's libfaiss is built for generic x86-64, where its Hamming kernels
 * call libgcc's software popcount (26 ns a 512-bit code here). The same loop
 * compiled for the POPCNT instruction (every x86-64 CPU since 2008; checked
 * at run time) is several times faster. */
#if defined(__x86_64__)
__attribute__((target("popcnt"))) void scan_codes_popcnt(const uint8_t *codes, size_t bytes,
                                                         const uint8_t *query, idx_t begin,
                                                         idx_t end, size_t want, candidates &heap) {
  scan_codes(codes, bytes, query, begin, end, want, heap);
}
#endif
void scan_codes_generic(const uint8_t *codes, size_t bytes, const uint8_t *query, idx_t begin,
                        idx_t end, size_t want, candidates &heap) {
  scan_codes(codes, bytes, query, begin, end, want, heap);
}

/* Binary quantization with rescoring, one query: the k_factor * k nearest
 * codes (split over the OpenMP threads), then exact inner products of their
 * float rows; the best k, best first. */
void binary_search_one(const reid_gallery_index *ix, const float *query, int k, float *scores,
                       idx_t *rows) {
  auto *lsh = static_cast<const faiss::IndexLSH *>(ix->binary->base_index);
  auto *flat = static_cast<const faiss::IndexFlat *>(ix->binary->refine_index);
  const idx_t n = lsh->ntotal;
  const int dims = (int)lsh->d;
  const size_t bytes = lsh->code_size;
  std::vector<uint8_t> qcode(bytes);
  lsh->sa_encode(1, query, qcode.data());
  const size_t want = std::min<size_t>((size_t)n, (size_t)(ix->binary->k_factor * k));
#if defined(__x86_64__)
  static const auto scan =
      __builtin_cpu_supports("popcnt") ? scan_codes_popcnt : scan_codes_generic;
#else
  static const auto scan = scan_codes_generic;
#endif
  int threads = n >= 65536 ? omp_get_max_threads() : 1;
  std::vector<candidates> heaps(threads);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int t = 0; t < threads; t++)
    scan(lsh->codes.data(), bytes, qcode.data(), n * t / threads, n * (t + 1) / threads, want,
         heaps[t]);
  /* merge, then rescore exactly: <q, x> of each candidate */
  std::vector<candidate> all;
  for (auto &h : heaps)
    for (; !h.empty(); h.pop()) all.push_back(h.top());
  std::sort(all.begin(), all.end());
  if (all.size() > want) all.resize(want);
  std::vector<std::pair<float, idx_t>> scored;
  scored.reserve(all.size());
  const float *xb = flat->get_xb();
  for (const candidate &c : all)
    scored.emplace_back(faiss::fvec_inner_product(query, xb + (size_t)c.second * dims, dims),
                        c.second);
  std::sort(scored.begin(), scored.end(), [](const auto &a, const auto &b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  for (int i = 0; i < k; i++) {
    scores[i] = i < (int)scored.size() ? scored[i].first : -INFINITY;
    rows[i] = i < (int)scored.size() ? scored[i].second : -1;
  }
}

} // namespace

extern "C" reid_status reid_gallery_index_search(const reid_gallery_index *ix, const float *queries,
                                                 int nq, int k, float *scores, int64_t *ids) {
  if (nq < 1 || k < 1) return reid_fail(REID_EINVAL, "index search: %d queries, k %d", nq, k);
  try {
    std::vector<idx_t> fids((size_t)nq * k);
    if (ix->binary) {
      /* rows of the inner index, mapped to gallery ids as IndexIDMap does */
      for (int q = 0; q < nq; q++)
        binary_search_one(ix, queries + (size_t)q * ix->index->d, k, scores + (size_t)q * k,
                          fids.data() + (size_t)q * k);
      for (idx_t &f : fids)
        if (f >= 0) f = ix->index->id_map[f];
    } else {
      ix->index->search(nq, queries, k, scores, fids.data());
    }
    for (size_t i = 0; i < fids.size(); i++) {
      ids[i] = fids[i];
      if (fids[i] < 0) scores[i] = -INFINITY;
    }
  } catch (const std::exception &e) {
    return reid_fail(REID_EINVAL, "index search failed: %s", e.what());
  }
  return REID_OK;
}
