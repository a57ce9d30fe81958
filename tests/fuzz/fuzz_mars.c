/* libFuzzer harness: MARS index files (info/ folder, MATLAB .mat, read with libmatio)
 * through the dataset loader. A small MARS tree is synthesised once (the
 * project's `reid-train synth` code); each input replaces one of its three
 * index files, chosen by the input's first byte modulo 3 (0: tracks_train_info,
 * 1: tracks_test_info, 2: query_IDX; the rest of the input is the file), and
 * the whole dataset is loaded. A malformed file must fail with an error naming
 * it, never crash, read out of bounds or leak. */
#include "dataset.h"
#include "fuzz.h"
#include "synth.h"

static const char *const index_files[3] = {"info/tracks_train_info.mat",
                                           "info/tracks_test_info.mat", "info/query_IDX.mat"};
static unsigned char *original[3];
static size_t original_size[3];

static const char *root(void) {
  static char path[256];
  if (!path[0]) {
    snprintf(path, sizeof path, "%s/mars", fuzz_dir());
    synth_options o = {.layout = REID_LAYOUT_MARS,
                       .kind = SYNTH_PERSON,
                       .output = path,
                       .identities = 4,
                       .test_identities = 2,
                       .cameras = 2,
                       .tracklets = 2,
                       .frames = 2,
                       .height = 32,
                       .width = 16,
                       .quality = 90,
                       .threads = 1,
                       .seed = 3};
    if (synth_generate(&o, NULL) != REID_OK) {
      fprintf(stderr, "fuzz_mars: synth: %s\n", reid_last_error());
      abort();
    }
    for (int i = 0; i < 3; i++) {
      char p[512];
      snprintf(p, sizeof p, "%s/%s", path, index_files[i]);
      original[i] = fuzz_slurp(p, &original_size[i]);
    }
  }
  return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *r = root();
  if (size < 1) return 0;
  int which = data[0] % 3;
  char path[512];
  snprintf(path, sizeof path, "%s/%s", r, index_files[which]);
  fuzz_write(path, data + 1, size - 1);
  reid_dataset *d = NULL;
  if (reid_dataset_load(r, REID_LAYOUT_MARS, &d) == REID_OK) reid_dataset_free(d);
  fuzz_write(path, original[which], original_size[which]); /* the other files stay valid */
  return 0;
}
