// The gallery's FAISS index (gallery_index.h): FAISS's C++ API behind a C
// interface (Debian's libfaiss-dev ships no C API library). C++ exceptions
// stop here and become reid_status values.
#include <faiss/IndexIVF.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

extern "C" {
#include "gallery_index.h"
}

struct reid_gallery_index {
  std::unique_ptr<faiss::Index> index;
  faiss::IndexIVF *ivf = nullptr;
};

namespace {

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

reid_status add_chunk(void *user, const int64_t *ids, const float *emb, int n) {
  auto *ix = static_cast<reid_gallery_index *>(user);
  try {
    std::vector<faiss::Index::idx_t> fids(ids, ids + n);
    ix->index->add_with_ids(n, emb, fids.data());
  } catch (const std::exception &e) {
    return reid_fail(REID_ENOMEM, "FAISS index: adding rows failed: %s", e.what());
  }
  return REID_OK;
}

}  // namespace

extern "C" reid_status reid_gallery_index_build(reid_gallery *g,
                                                const reid_gallery_index_options *o,
                                                reid_gallery_index **out) {
  *out = nullptr;
  reid_gallery_model m;
  REID_TRY(reid_gallery_get_model(g, &m, nullptr));
  int64_t rows = 0;
  REID_TRY(reid_gallery_count(g, &rows));
  int nlist = o && o->nlist > 0 ? o->nlist
                                : (int)std::min<double>(256, std::max(1.0, 4 * std::sqrt(rows)));
  if (rows < nlist)
    return reid_fail(REID_EINVAL,
                     "gallery %s: %lld tracklets cannot train %d cells (exact search suits it)",
                     reid_gallery_uri(g), (long long)rows, nlist);
  int64_t train = o && o->train_rows > 0 ? o->train_rows : 64LL * nlist;
  sample_state s;
  s.dims = m.dims;
  s.stride = std::max<int64_t>(1, rows / std::max<int64_t>(1, train));
  REID_TRY(reid_gallery_scan(g, nullptr, 8192, sample_chunk, &s));
  auto *ix = new (std::nothrow) reid_gallery_index;
  if (!ix) return reid_fail(REID_ENOMEM, "FAISS index: out of memory");
  try {
    std::string spec = "IVF" + std::to_string(nlist) + ",Flat";
    ix->index.reset(faiss::index_factory(m.dims, spec.c_str(), faiss::METRIC_INNER_PRODUCT));
    ix->ivf = dynamic_cast<faiss::IndexIVF *>(ix->index.get());
    ix->ivf->cp.seed = 1234;
    ix->index->train((faiss::Index::idx_t)(s.rows.size() / m.dims), s.rows.data());
    ix->ivf->nprobe = o && o->nprobe > 0 ? o->nprobe : std::max(8, nlist / 32);
  } catch (const std::exception &e) {
    delete ix;
    return reid_fail(REID_EINVAL, "FAISS index: training failed: %s", e.what());
  }
  std::vector<float>().swap(s.rows);
  reid_status st = reid_gallery_scan(g, nullptr, 8192, add_chunk, ix);
  if (st != REID_OK) {
    delete ix;
    return st;
  }
  *out = ix;
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
  try {
    ix->index.reset(faiss::read_index(path));
  } catch (const std::exception &e) {
    delete ix;
    /* FAISS's message carries its source location; the first line names the cause */
    std::string what = e.what();
    return reid_fail(REID_EFORMAT, "%s: not a readable FAISS index (%s)", path,
                     what.substr(0, what.find('\n')).c_str());
  }
  ix->ivf = dynamic_cast<faiss::IndexIVF *>(ix->index.get());
  if (!ix->ivf || ix->index->metric_type != faiss::METRIC_INNER_PRODUCT) {
    delete ix;
    return reid_fail(REID_EFORMAT, "%s: not a gallery index (IVF, inner product)", path);
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
extern "C" int reid_gallery_index_nlist(const reid_gallery_index *ix) {
  return (int)ix->ivf->nlist;
}
extern "C" int reid_gallery_index_nprobe(const reid_gallery_index *ix) {
  return (int)ix->ivf->nprobe;
}
extern "C" void reid_gallery_index_set_nprobe(reid_gallery_index *ix, int nprobe) {
  ix->ivf->nprobe = (size_t)std::max(1, std::min(nprobe, (int)ix->ivf->nlist));
}

extern "C" reid_status reid_gallery_index_search(const reid_gallery_index *ix,
                                                 const float *queries, int nq, int k,
                                                 float *scores, int64_t *ids) {
  if (nq < 1 || k < 1) return reid_fail(REID_EINVAL, "index search: %d queries, k %d", nq, k);
  try {
    std::vector<faiss::Index::idx_t> fids((size_t)nq * k);
    ix->index->search(nq, queries, k, scores, fids.data());
    for (size_t i = 0; i < fids.size(); i++) {
      ids[i] = fids[i];
      if (fids[i] < 0) scores[i] = -INFINITY;
    }
  } catch (const std::exception &e) {
    return reid_fail(REID_EINVAL, "index search failed: %s", e.what());
  }
  return REID_OK;
}
