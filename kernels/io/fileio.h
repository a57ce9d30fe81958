/* Whole-file reads and atomic writes. */
#pragma once

#include <stddef.h>

#include "status.h"

/* Reads the whole regular file into a new buffer (free() it; non-NULL even
 * when *size is 0). REID_EIO with "path: reason" on failure. */
reid_status reid_read_file(const char *path, unsigned char **bytes, size_t *size);

/* Writes the concatenation of parts[0..nparts) to `path` atomically: to
 * "path.tmp-XXXXXX" in the same folder (mkstemp), rename over path; readers
 * see the old file or the new one, never a part. durable = 1 also fsyncs the
 * file and its folder (checkpoints, logs); 0 skips that (thousands of dataset
 * images). The temporary is removed on failure; the file gets 0666 & ~umask. */
reid_status reid_write_file_atomic(const char *path, const void *const *parts, const size_t *sizes,
                                   int nparts, int durable);
