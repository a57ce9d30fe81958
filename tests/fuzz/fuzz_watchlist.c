/* libFuzzer harness: a watchlist given as a list file (query-location=FILE:
 * one image path per line, '#' comments, paths relative to the list) through
 * reid_watchlist_list. A few of the names it may list exist (q1.png,
 * sub/q2.jpg) so both outcomes are reached. A malformed list must fail with
 * an error naming the list, never crash, read out of bounds or leak. */
#include <sys/stat.h>

#include "fuzz.h"
#include "watchlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  if (!ready) {
    char sub[256];
    snprintf(sub, sizeof sub, "%s/sub", fuzz_dir());
    mkdir(sub, 0700);
    fuzz_write(fuzz_path("q1.png"), (const uint8_t *)"x", 1);
    fuzz_write(fuzz_path("sub/q2.jpg"), (const uint8_t *)"x", 1);
    ready = 1;
  }
  const char *path = fuzz_path("queries.txt");
  fuzz_write(path, data, size);
  reid_watchlist *w = NULL;
  if (reid_watchlist_list(path, &w) == REID_OK) {
    for (int i = 0; i < w->count; i++)
      if (!w->names[i] || !w->paths[i]) abort();
    reid_watchlist_free(w);
  }
  return 0;
}
