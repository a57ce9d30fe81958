/* libFuzzer harness: MOTChallenge files (reidattachroi's location) through
 * reid_mot_parse; a parsed file is looked up frame by frame like the element
 * does. Malformed text must fail with "name:line: reason", never crash, read
 * out of bounds or leak. */
#include "fuzz.h"
#include "motfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reid_mot *m = NULL;
  if (reid_mot_parse((const char *)data, size, "fuzz.mot", &m) != REID_OK) return 0;
  const reid_mot_row *first;
  int seen = 0;
  for (int f = 0; f <= m->max_frame + 1 && f < 100000; f++)
    seen += reid_mot_frame_rows(m, f, &first);
  if (m->max_frame < 100000 && seen != m->count) abort(); /* every row belongs to one frame */
  reid_mot_free(m);
  return 0;
}
