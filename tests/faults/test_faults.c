/* Faults that must lose nothing (README "Reliability"):
 *
 *   kill   SIGKILL while a checkpoint is being written leaves the old checkpoint
 *          intact: a child process writes two networks' checkpoints to one path in
 *          turn (reid_checkpoint_save: temporary file, fsync, rename); the parent
 *          kills it while a temporary file exists (a write in progress) and then
 *          at random times, KILLS times; the path must hold, byte for byte, one of
 *          the two complete checkpoints every time.
 *   full   a full disk while writing a checkpoint, a plot (PNG and SVG) or tracklet
 *          JSON lines gives an error naming the file and the cause, and nothing is
 *          truncated in place: the old checkpoint and plot are unchanged, no
 *          temporary file is left, and the JSON-lines file holds only whole lines
 *          (a line that did not fit is taken back), and takes new lines once
 *          there is room again.
 *          The full disk is a real one when possible: a tmpfs of 96 MB mounted
 *          in a private mount namespace (needs root or CAP_SYS_ADMIN; the mount
 *          disappears with the process). Otherwise RLIMIT_FSIZE (writes past the
 *          limit fail with EFBIG) stands in, and the test says so
 *          (REID_FAULTS_NO_MOUNT=1 forces that path).
 *
 *   test_faults [kill|full]...   (default both) */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "checkpoint.h"
#include "fileio.h"
#include "jsonl.h"
#include "json.h"
#include "plot.h"
#include "status.h"
#include "test_util.h"

#define KILLS 8

static char work[256];

static const char *wpath(const char *name) {
  static char b[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(b[k], sizeof b[k], "%s/%s", work, name);
  return b[k];
}

static unsigned char *slurp(const char *path, size_t *n) {
  unsigned char *b = NULL;
  *n = 0;
  if (reid_read_file(path, &b, n) != REID_OK) return NULL;
  return b;
}

static int same_file(const char *a, const char *b) {
  size_t na, nb;
  unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
  int same = x && y && na == nb && memcmp(x, y, na) == 0;
  free(x);
  free(y);
  return same;
}

/* Entries of `dir` whose name contains `part`. */
static int count_entries(const char *dir, const char *part) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strstr(e->d_name, part)) n++;
  if (d) closedir(d);
  return n;
}

static void remove_entries(const char *dir, const char *part) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char p[600];
  while (d && (e = readdir(d)))
    if (strstr(e->d_name, part)) snprintf(p, sizeof p, "%s/%s", dir, e->d_name), unlink(p);
  if (d) closedir(d);
}

/* ResNet-18 in float16 (22 MB), all zero (fast to make): seed 1 at 64x32 input, seed 2 at
 * 96x32, so the two files differ. Made in child processes only, so that the parent never
 * starts OpenMP before a fork. */
static reid_net *make_net(reid_backend *be, int seed) {
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  cfg.input_height = 32 * (seed + 1), cfg.input_width = 32;
  reid_net *net = NULL;
  if (reid_net_create_empty(&cfg, be, &net) != REID_OK) {
    fprintf(stderr, "child: %s\n", reid_last_error());
    _exit(3);
  }
  return net;
}

/* Child: writes a.ref, b.ref and the target (= a) and exits (loop = 0), or
 * writes the target with a and b in turn until killed (loop = 1). */
static void child(int loop) {
  reid_backend *be;
  if (reid_backend_create("cpu", 0, &be) != REID_OK) _exit(3);
  reid_net *a = make_net(be, 1), *b = make_net(be, 2);
  if (!loop) {
    int bad = reid_checkpoint_save(a, wpath("a.ref"), ST_F16) != REID_OK ||
              reid_checkpoint_save(b, wpath("b.ref"), ST_F16) != REID_OK ||
              reid_checkpoint_save(a, wpath("model.safetensors"), ST_F16) != REID_OK;
    _exit(bad ? 4 : 0);
  }
  for (;;) {
    reid_checkpoint_save(b, wpath("model.safetensors"), ST_F16);
    reid_checkpoint_save(a, wpath("model.safetensors"), ST_F16);
  }
}

static void sleep_ms(double ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(fmod(ms, 1000) * 1e6)};
  nanosleep(&ts, NULL);
}

static void test_kill(void) {
  pid_t pid = fork();
  if (pid == 0) child(0);
  int status;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reference checkpoints not written");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return;
  CHECK(!same_file(wpath("a.ref"), wpath("b.ref")), "the two checkpoints must differ");
  test_rng rng = test_rng_make(14);
  int mid_write = 0, leftovers = 0;
  for (int k = 0; k < KILLS; k++) {
    pid = fork();
    if (pid == 0) child(1);
    /* even k: kill while a temporary file exists (a write in progress), after 0-20 ms;
     * odd k: kill at a random time in the first 1.5 s */
    if (k % 2 == 0) {
      for (int t = 0; t < 20000 && !count_entries(work, "model.safetensors.tmp-"); t++) sleep_ms(1);
      if (count_entries(work, "model.safetensors.tmp-")) mid_write++;
      sleep_ms(test_rng_uniform(&rng, 0, 20));
    } else {
      sleep_ms(test_rng_uniform(&rng, 20, 1500));
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "kill %d: the writer was not killed",
          k);
    int is_a = same_file(wpath("model.safetensors"), wpath("a.ref"));
    int is_b = same_file(wpath("model.safetensors"), wpath("b.ref"));
    CHECK(is_a || is_b, "kill %d: the checkpoint is neither of the two complete ones", k);
    st_file *f = NULL;
    CHECK_OK(st_open(wpath("model.safetensors"), &f));
    st_close(f);
    leftovers += count_entries(work, "model.safetensors.tmp-");
    remove_entries(work, "model.safetensors.tmp-");
  }
  CHECK(mid_write >= KILLS / 2 - 1, "only %d kills landed during a write", mid_write);
  fprintf(stderr,
          "kill: %d SIGKILLs (%d during a write): the checkpoint was always whole; "
          "%d temporary files were left by killed writers (removed)\n",
          KILLS, mid_write, leftovers);
}

/* ---- full disk ---------------------------------------------------------- */

static char disk[300];
static int real_disk; /* 1: a tmpfs; 0: RLIMIT_FSIZE */

static void set_fsize(rlim_t bytes) {
  struct rlimit r;
  getrlimit(RLIMIT_FSIZE, &r);
  r.rlim_cur = bytes;
  setrlimit(RLIMIT_FSIZE, &r);
}

/* A tmpfs of `mib` MiB at work/disk in a private mount namespace, or a plain folder. */
static void make_disk(int mib) {
  snprintf(disk, sizeof disk, "%s/disk", work);
  mkdir(disk, 0755);
  char opts[64];
  snprintf(opts, sizeof opts, "size=%dm,mode=0755", mib);
  real_disk = !getenv("REID_FAULTS_NO_MOUNT") && unshare(CLONE_NEWNS) == 0 &&
              mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
              mount("tmpfs", disk, "tmpfs", MS_NOSUID | MS_NODEV, opts) == 0;
  signal(SIGXFSZ, SIG_IGN); /* RLIMIT_FSIZE: EFBIG instead of a signal */
  fprintf(stderr, "full: %s\n",
          real_disk ? "a real full disk: tmpfs in a private mount namespace"
                    : "no mount permission: RLIMIT_FSIZE stands in for a full disk");
}

static const char *dpath(const char *name) {
  static char b[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(b[k], sizeof b[k], "%s/%s", disk, name);
  return b[k];
}

/* Fills the disk to `free_bytes` of room (tmpfs), or limits file sizes to it. */
static void fill_disk(size_t free_bytes) {
  if (!real_disk) {
    set_fsize(free_bytes);
    return;
  }
  int fd = open(dpath("filler"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  static char block[65536];
  while (write(fd, block, sizeof block) > 0) {
  }
  while (write(fd, block, 1) > 0) {
  }
  off_t size = lseek(fd, 0, SEEK_END);
  CHECK(ftruncate(fd, size > (off_t)free_bytes ? size - (off_t)free_bytes : 0) == 0,
        "shrink filler");
  close(fd);
}

static void free_disk(void) {
  if (real_disk)
    unlink(dpath("filler"));
  else
    set_fsize(RLIM_INFINITY);
}

static void expect_write_error(reid_status st, const char *path, const char *what) {
  CHECK(st != REID_OK, "%s: writing to a full disk succeeded", what);
  const char *m = reid_last_error();
  CHECK(strstr(m, path) != NULL, "%s: the message does not name %s: %s", what, path, m);
  CHECK(strstr(m, "No space left") || strstr(m, "File too large"),
        "%s: the message does not name the cause: %s", what, m);
  fprintf(stderr, "full: %s -> %s\n", what, m);
}

static void full_checkpoint(void) {
  pid_t pid = fork(); /* the networks live in a child: no OpenMP in the parent */
  if (pid == 0) {
    reid_backend *be;
    if (reid_backend_create("cpu", 0, &be) != REID_OK) _exit(3);
    reid_net *a = make_net(be, 1), *b = make_net(be, 2);
    const char *path = dpath("model.safetensors");
    if (reid_checkpoint_save(a, path, ST_F16) != REID_OK || /* the old checkpoint */
        reid_checkpoint_save(a, wpath("a.ref"), ST_F16) != REID_OK) {
      fprintf(stderr, "full: %s\n", reid_last_error());
      _exit(4);
    }
    fill_disk(1 << 20); /* 1 MiB free: a checkpoint (22 MB) cannot fit */
    reid_status st = reid_checkpoint_save(b, path, ST_F16);
    expect_write_error(st, path, "checkpoint");
    free_disk();
    CHECK(same_file(path, wpath("a.ref")), "checkpoint: the old checkpoint changed");
    CHECK(count_entries(disk, ".tmp-") == 0, "checkpoint: a temporary file was left");
    CHECK_OK(reid_checkpoint_save(b, path, ST_F16)); /* room again: works */
    _exit(test_failures_ ? 1 : 0);
  }
  int status;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "checkpoint on a full disk: child status %d",
        status);
}

static void full_plot(const char *name) {
  double x[50], y[50];
  for (int i = 0; i < 50; i++) x[i] = i, y[i] = 3.0 / (1 + i);
  reid_plot_series s = {"loss", x, y, 50};
  reid_plot p = {.title = "old", .x_label = "step", .y_label = "loss", .log_y = 1};
  const char *path = dpath(name);
  CHECK_OK(reid_plot_write(path, &p, &s, 1));
  size_t n_old;
  unsigned char *old = slurp(path, &n_old);
  p.title = "new";
  fill_disk(real_disk ? 0 : 64);
  reid_status st = reid_plot_write(path, &p, &s, 1);
  expect_write_error(st, path, name);
  free_disk();
  size_t n;
  unsigned char *now = slurp(path, &n);
  CHECK(old && now && n == n_old && memcmp(old, now, n) == 0, "%s: the old plot changed", name);
  CHECK(count_entries(disk, ".tmp-") == 0, "%s: a temporary file was left", name);
  free(old);
  free(now);
}

/* Every line of the file is complete JSON; returns the count (-1 when one is not). */
static int whole_lines(const char *path) {
  size_t n;
  unsigned char *b = slurp(path, &n);
  if (!b) return -1;
  int lines = 0;
  size_t start = 0;
  for (size_t i = 0; i < n; i++)
    if (b[i] == '\n') {
      json_value *v = NULL;
      if (json_parse((const char *)b + start, i - start, &v) != REID_OK) lines = -1000000;
      json_free(v);
      lines++;
      start = i + 1;
    }
  free(b);
  return start == n && lines >= 0 ? lines : -1;
}

static void full_jsonl(void) {
  const char *path = dpath("tracklets.jsonl");
  float emb[512];
  for (int i = 0; i < 512; i++) emb[i] = 0.04419417f * (i % 2 ? 1 : -1);
  reid_tracklet_record r = {.stream = "cam1",
                            .reason = "timeout",
                            .model = "m.safetensors",
                            .track_id = 1,
                            .first_pts = 0,
                            .last_pts = 1000,
                            .frames = 10,
                            .embedded_frames = 10,
                            .bbox = {1, 2, 3, 4},
                            .embedding = emb,
                            .dim = 512};
  reid_jsonl *w;
  CHECK_OK(reid_jsonl_open(path, &w));
  if (!w) return;
  char *line = reid_json_tracklet_line(&r);
  CHECK_OK(reid_jsonl_write(w, line)); /* one line before the disk fills */
  fill_disk(real_disk ? 10000 : strlen(line) * 3 + strlen(line) / 2);
  reid_status st = REID_OK;
  int written = 1;
  for (int k = 0; k < 100 && st == REID_OK; k++) {
    st = reid_jsonl_write(w, line);
    if (st == REID_OK) written++;
  }
  expect_write_error(st, path, "tracklet JSON lines");
  CHECK(strstr(reid_last_error(), "line dropped") != NULL, "jsonl: %s", reid_last_error());
  CHECK(whole_lines(path) == written, "jsonl: %d whole lines expected, the file has %d", written,
        whole_lines(path));
  free_disk();
  CHECK_OK(reid_jsonl_write(w, line));
  CHECK(whole_lines(path) == written + 1, "jsonl: after room came back: %d lines, expected %d",
        whole_lines(path), written + 1);
  free(line);
  reid_jsonl_close(w);
}

static void test_full(void) {
  make_disk(96);
  full_checkpoint();
  full_plot("loss.png");
  full_plot("loss.svg");
  full_jsonl();
  if (real_disk) umount2(disk, MNT_DETACH);
}

int main(int argc, char **argv) {
  const char *tmp = getenv("TMPDIR");
  snprintf(work, sizeof work, "%s/reid-faults-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(work)) return 2;
  int all = argc < 2;
  for (int i = 1; i < argc || all; i++) {
    const char *t = all ? NULL : argv[i];
    if (!t || !strcmp(t, "kill")) test_kill();
    if (!t || !strcmp(t, "full")) test_full();
    if (all) break;
  }
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", work);
  return test_finish("test_faults");
}
