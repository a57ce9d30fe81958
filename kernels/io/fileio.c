/* Whole-file reads and atomic writes, shared by every writer of the library. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *err_text(int e, char *buf, size_t n) {
  return strerror_r(e, buf, n);
}

reid_status reid_read_file(const char *path, unsigned char **bytes, size_t *size) {
  char eb[128];
  *bytes = NULL;
  *size = 0;
  if (!path || !*path) return reid_fail(REID_EINVAL, "empty file path");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return reid_fail(REID_EIO, "%s: cannot open: %s", path, err_text(errno, eb, sizeof eb));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return reid_fail(REID_EIO, "%s: not a regular file", path);
  }
  if ((uint64_t)sb.st_size > SIZE_MAX - 1) {
    close(fd);
    return reid_fail(REID_EIO, "%s: file too large to read", path);
  }
  size_t n = (size_t)sb.st_size;
  unsigned char *buf = malloc(n ? n : 1);
  if (!buf) {
    close(fd);
    return reid_fail(REID_ENOMEM, "%s: cannot allocate %zu bytes", path, n);
  }
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      int e = r < 0 ? errno : 0;
      close(fd);
      free(buf);
      if (e) return reid_fail(REID_EIO, "%s: read failed: %s", path, err_text(e, eb, sizeof eb));
      return reid_fail(REID_EIO, "%s: file shrank while reading (%zu of %zu bytes)", path, got, n);
    }
    got += (size_t)r;
  }
  close(fd);
  *bytes = buf;
  *size = n;
  return REID_OK;
}

/* The umask without changing it (umask() itself is not thread-safe to query). */
static mode_t current_umask(void) {
  mode_t mask = 022;
  FILE *fp = fopen("/proc/self/status", "re");
  if (!fp) return mask;
  char line[256];
  unsigned int m;
  while (fgets(line, sizeof line, fp))
    if (sscanf(line, "Umask: %o", &m) == 1) {
      mask = (mode_t)(m & 0777);
      break;
    }
  fclose(fp);
  return mask;
}

static int write_all(int fd, const unsigned char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

reid_status reid_write_file_atomic(const char *path, const void *const *parts, const size_t *sizes,
                                   int nparts, int durable) {
  char eb[128];
  if (!path || !*path) return reid_fail(REID_EINVAL, "empty file path");
  size_t plen = strlen(path);
  char *tmp = malloc(plen + sizeof ".tmp-XXXXXX");
  if (!tmp) return reid_fail(REID_ENOMEM, "%s: out of memory", path);
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp-XXXXXX", sizeof ".tmp-XXXXXX");
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) {
    reid_status st = reid_fail(REID_EIO, "%s: cannot create temporary file: %s", path,
                               err_text(errno, eb, sizeof eb));
    free(tmp);
    return st;
  }
  const char *what = NULL;
  if (fchmod(fd, 0666 & ~current_umask()) != 0) what = "chmod";
  for (int i = 0; i < nparts && !what; i++)
    if (sizes[i] && write_all(fd, parts[i], sizes[i]) != 0) what = "write";
  if (!what && durable && fsync(fd) != 0) what = "fsync";
  int e = errno;
  if (close(fd) != 0 && !what) what = "close", e = errno;
  if (!what && rename(tmp, path) != 0) what = "rename", e = errno;
  if (what) {
    unlink(tmp);
    reid_status st =
        reid_fail(REID_EIO, "%s: %s of %s failed: %s", path, what, tmp, err_text(e, eb, sizeof eb));
    free(tmp);
    return st;
  }
  free(tmp);
  if (!durable) return REID_OK;
  /* make the rename itself durable: fsync the folder (best effort) */
  char *dir = strdup(path);
  if (dir) {
    char *slash = strrchr(dir, '/');
    if (!slash)
      strcpy(dir, ".");
    else if (slash == dir)
      slash[1] = '\0'; /* "/name" -> "/" */
    else
      *slash = '\0';
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
    free(dir);
  }
  return REID_OK;
}
