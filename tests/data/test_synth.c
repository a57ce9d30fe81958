/* The generator: the same seed writes byte-identical datasets (for any thread count), another
 * seed different pixels; hard-case identities differ from their twin in exactly one pattern or
 * accessory; identities keep their look across cameras (a colour-histogram matcher finds them
 * far above chance) without being trivial (it does not find them all); bad options are
 * refused with a message; --domain shifts the colours more than other people do. */
#include <dirent.h>

#include "data_fixture.h"

/* Compares every file under a and b (same relative names); returns the number that differ. */
static int compare_trees(const char *a, const char *b, int *files) {
  DIR *d = opendir(a);
  if (!d) return 1;
  int differ = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char pa[1024], pb[1024];
    snprintf(pa, sizeof pa, "%s/%s", a, e->d_name);
    snprintf(pb, sizeof pb, "%s/%s", b, e->d_name);
    struct stat sa;
    stat(pa, &sa);
    if (S_ISDIR(sa.st_mode)) {
      differ += compare_trees(pa, pb, files);
      continue;
    }
    size_t na = 0, nb = 0;
    char *ca = fixture_read(pa, &na), *cb = fixture_read(pb, &nb);
    differ += !ca || !cb || na != nb || memcmp(ca, cb, na) != 0;
    (*files)++;
    free(ca), free(cb);
  }
  closedir(d);
  return differ;
}

static void generate(const char *root, reid_layout layout, uint64_t seed, int threads) {
  fixture_spec s = fixture_small(layout);
  synth_options o = {layout,
                     layout == REID_LAYOUT_VERI ? SYNTH_VEHICLE : SYNTH_PERSON,
                     root,
                     s.identities,
                     s.test_identities,
                     s.cameras,
                     s.tracklets,
                     s.frames,
                     s.height,
                     s.width,
                     1,
                     layout == REID_LAYOUT_MARS,
                     90,
                     threads,
                     seed,
                     0};
  CHECK_OK(synth_generate(&o, NULL));
}

static void test_determinism(const char *tmp) {
  for (int l = REID_LAYOUT_MARS; l <= REID_LAYOUT_VERI; l++) {
    const char *a = fixture_path("%s/%s-a", tmp, reid_layout_name(l));
    const char *b = fixture_path("%s/%s-b", tmp, reid_layout_name(l));
    const char *c = fixture_path("%s/%s-c", tmp, reid_layout_name(l));
    generate(a, (reid_layout)l, 5, 1);
    generate(b, (reid_layout)l, 5, 3);
    generate(c, (reid_layout)l, 6, 2);
    int files = 0, other = 0;
    CHECK(compare_trees(a, b, &files) == 0 && files > 40, "%s: seed 5 twice: files differ (%d)",
          reid_layout_name(l), files);
    int differ = compare_trees(a, c, &other);
    CHECK(differ > files / 2, "%s: seeds 5 and 6 share %d of %d files", reid_layout_name(l),
          files - differ, files);
  }
  /* an existing, non-empty output folder is refused */
  synth_options o = {REID_LAYOUT_MARKET,
                     SYNTH_PERSON,
                     fixture_path("%s/mars-a", tmp),
                     6,
                     3,
                     2,
                     2,
                     4,
                     64,
                     32,
                     0,
                     0,
                     90,
                     1,
                     5,
                     0};
  CHECK(synth_generate(&o, NULL) == REID_EIO && strstr(reid_last_error(), "not empty"),
        "non-empty output: %s", reid_last_error());
  o.output = fixture_path("%s/fresh", tmp);
  o.junk = 1;
  o.layout = REID_LAYOUT_DUKE;
  CHECK(synth_generate(&o, NULL) == REID_EINVAL && strstr(reid_last_error(), "junk"), "duke junk");
  o.junk = 0, o.tracklets = 1;
  CHECK(synth_generate(&o, NULL) == REID_EINVAL && strstr(reid_last_error(), "tracklets"), "K = 1");
}

/* Identity 4j + 3 is identity 4j + 2 with one attribute changed. */
static void test_hard_cases(void) {
  for (int kind = 0; kind < 2; kind++)
    for (int j = 0; j < 25; j++) {
      synth_identity a, b;
      synth_identity_make((synth_kind)kind, 77, 4 * j + 2, &a);
      synth_identity_make((synth_kind)kind, 77, 4 * j + 3, &b);
      int changes;
      if (kind == SYNTH_PERSON) {
        const synth_person *x = &a.person, *y = &b.person;
        CHECK(!memcmp(&x->skin, &y->skin, 8 * sizeof(synth_rgb)), "hard case changed a colour");
        changes = (x->upper_pattern != y->upper_pattern) + (x->long_sleeves != y->long_sleeves) +
                  (x->bag_type != y->bag_type) + (x->hat_on != y->hat_on) +
                  (x->lower_type != y->lower_type) + (x->long_hair != y->long_hair);
      } else {
        const synth_vehicle *x = &a.vehicle, *y = &b.vehicle;
        CHECK(x->type == y->type && !memcmp(&x->body, &y->body, sizeof x->body), "vehicle twin");
        changes = (x->stripe != y->stripe) + (x->roof_rack != y->roof_rack) +
                  (x->sunroof != y->sunroof) + (x->spoiler != y->spoiler) +
                  (x->two_tone != y->two_tone);
      }
      CHECK(changes == 1, "kind %d pair %d: %d attributes changed", kind, j, changes);
    }
}

/* Colour histogram of the lower 7/8, centre half, in 4 horizontal bands x 4^3 bins. */
enum { BINS = 4 * 64 };
static void histogram(const char *path, float *h) {
  reid_image im;
  if (reid_image_load_rgb(path, &im) != REID_OK) return;
  for (int y = im.height / 8; y < im.height; y++)
    for (int x = im.width / 4; x < 3 * im.width / 4; x++) {
      const uint8_t *p = im.data + (size_t)y * im.stride + 3 * x;
      int band = 4 * (y - im.height / 8) / (im.height - im.height / 8);
      h[band * 64 + (p[0] >> 6) * 16 + (p[1] >> 6) * 4 + (p[2] >> 6)] += 1;
    }
  reid_image_free(&im);
}

static void test_learnable(const char *tmp) {
  const char *root = fixture_path("%s/learn", tmp);
  fixture_spec s = {REID_LAYOUT_MARS, 40, 20, 4, 4, 3, 64, 32, 0, 0, 11};
  fixture_synth(root, &s);
  reid_dataset *d = NULL;
  CHECK_OK(reid_dataset_load(root, REID_LAYOUT_MARS, &d));
  if (!d) return;
  const int n = d->gallery.count;
  float *f = calloc((size_t)n * BINS, sizeof(float));
  for (int i = 0; i < n; i++) {
    const reid_sample *x = &d->gallery.samples[i];
    float *h = f + (size_t)i * BINS, norm = 0;
    for (int t = 0; t < x->n_frames; t++) histogram(d->frames[x->first_frame + t], h);
    for (int k = 0; k < BINS; k++) norm += h[k] = sqrtf(h[k]);
    for (int k = 0; k < BINS; k++) h[k] /= norm > 0 ? norm : 1;
  }
  /* tracklet-to-tracklet rank-1 across cameras (Hellinger-like similarity) */
  int hits = 0, queries = 0;
  for (int q = 0; q < n; q++) {
    const reid_sample *x = &d->gallery.samples[q];
    int best = -1;
    float best_sim = -1;
    for (int g = 0; g < n; g++) {
      const reid_sample *y = &d->gallery.samples[g];
      if (y->camid == x->camid) continue;
      float sim = 0;
      for (int k = 0; k < BINS; k++) sim += f[(size_t)q * BINS + k] * f[(size_t)g * BINS + k];
      if (sim > best_sim) best_sim = sim, best = g;
    }
    queries++;
    hits += best >= 0 && d->gallery.samples[best].pid == x->pid;
  }
  float rank1 = (float)hits / queries;
  fprintf(stderr, "colour-histogram rank-1 on 20 test identities: %.3f (chance 0.05)\n", rank1);
  CHECK(rank1 > 0.15f, "identities are not recognisable across cameras (rank-1 %.3f)", rank1);
  CHECK(rank1 < 0.9f, "colour alone solves the data (rank-1 %.3f)", rank1);
  free(f);
  reid_dataset_free(d);
}

/* The mean histogram (whole images) of a domain's dataset: market layout, 8 identities. */
static void domain_histogram(const char *tmp, int domain, uint64_t seed, float *h) {
  const char *root = fixture_path("%s/domain%d-seed%llu", tmp, domain, (unsigned long long)seed);
  synth_options o = {.layout = REID_LAYOUT_MARKET,
                     .kind = SYNTH_PERSON,
                     .output = root,
                     .identities = 8,
                     .test_identities = 2,
                     .cameras = 3,
                     .tracklets = 2,
                     .frames = 2,
                     .height = 64,
                     .width = 32,
                     .quality = 90,
                     .threads = 1,
                     .seed = seed,
                     .domain = domain};
  CHECK_OK(synth_generate(&o, NULL));
  reid_dataset *d = NULL;
  CHECK_OK(reid_dataset_load(root, REID_LAYOUT_MARKET, &d));
  if (!d) return;
  memset(h, 0, sizeof(float) * BINS);
  for (int i = 0; i < d->n_frames; i++) histogram(d->frames[i], h);
  float norm = 0; /* the 4 bands summed: 64 colour bins */
  for (int k = 64; k < BINS; k++) h[k % 64] += h[k], h[k] = 0;
  for (int k = 0; k < 64; k++) norm += h[k];
  for (int k = 0; k < 64; k++) h[k] = sqrtf(h[k] / norm);
  reid_dataset_free(d);
}

/* Hellinger distance of two square-rooted histograms. */
static float hellinger(const float *a, const float *b) {
  float bc = 0;
  for (int k = 0; k < BINS; k++) bc += a[k] * b[k];
  return sqrtf(fmaxf(0, 1 - bc));
}

/* --domain is a real shift: the same people (seed) rendered in another domain look further
 * from themselves than other people (another seed) in the same domain do. */
static void test_domains(const char *tmp) {
  float *h = calloc(4 * BINS, sizeof(float));
  domain_histogram(tmp, 1, 5, h);
  domain_histogram(tmp, 1, 6, h + BINS);
  domain_histogram(tmp, 2, 5, h + 2 * BINS);
  domain_histogram(tmp, 3, 5, h + 3 * BINS);
  float same = hellinger(h, h + BINS), d12 = hellinger(h, h + 2 * BINS),
        d13 = hellinger(h, h + 3 * BINS);
  fprintf(stderr, "domain histograms: other people %.3f, domain 1-2 %.3f, domain 1-3 %.3f\n", same,
          d12, d13);
  CHECK(d12 > 1.4f * same && d13 > 1.4f * same,
        "domains are not told apart: other people %.3f, other domains %.3f, %.3f", same, d12, d13);
  free(h);
}

int main(void) {
  char tmp[512];
  fixture_tmpdir(tmp, sizeof tmp);
  test_determinism(tmp);
  test_hard_cases();
  test_learnable(tmp);
  test_domains(tmp);
  fixture_rm_tree(tmp);
  return test_finish("test_synth");
}
