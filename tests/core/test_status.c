/* Error reporting and backend selection. */
#include <pthread.h>

#include "backend.h"
#include "rng.h"
#include "test_util.h"

static void *other_thread(void *arg) {
  (void)arg;
  reid_fail(REID_EIO, "message from another thread");
  return NULL;
}

int main(void) {
  CHECK(reid_fail(REID_EINVAL, "batch %d < %d", 0, 1) == REID_EINVAL, "returns the code");
  CHECK(!strcmp(reid_last_error(), "batch 0 < 1"), "message: %s", reid_last_error());
  reid_fail_context(REID_EFORMAT, "%s", "model.safetensors");
  CHECK(!strcmp(reid_last_error(), "model.safetensors: batch 0 < 1"), "context: %s",
        reid_last_error());
  char long_text[2000];
  memset(long_text, 'x', sizeof long_text - 1);
  long_text[sizeof long_text - 1] = 0;
  reid_fail(REID_EIO, "%s", long_text);
  reid_fail_context(REID_EIO, "%s", long_text);
  CHECK(strlen(reid_last_error()) < 1024, "messages are truncated, not overflowed");
  reid_fail(REID_EINVAL, "mine");
  pthread_t t;
  pthread_create(&t, NULL, other_thread, NULL);
  pthread_join(t, NULL);
  CHECK(!strcmp(reid_last_error(), "mine"), "messages are per thread");
  reid_clear_error();
  CHECK(reid_last_error()[0] == 0, "cleared");
  for (int s = REID_OK; s <= REID_ENUMERIC; s++)
    CHECK(strcmp(reid_status_name((reid_status)s), "unknown status"), "status %d has a name", s);

  reid_backend *be = NULL;
  CHECK(reid_backend_create("tpu", 0, &be) == REID_EINVAL && !be, "unknown device");
  CHECK(strstr(reid_last_error(), "tpu") != NULL, "names the device: %s", reid_last_error());
  if (!reid_cuda_available()) {
    CHECK(reid_backend_create("cuda", 0, &be) == REID_EUNSUPPORTED && !be, "no CUDA: clear error");
    CHECK(strstr(reid_last_error(), "cuda") != NULL, "mentions cuda: %s", reid_last_error());
  }
  CHECK_OK(reid_backend_create("auto", 0, &be));
  CHECK(be && (be->device == REID_DEVICE_CPU) == !reid_cuda_available(),
        "auto picks CUDA only when usable");
  reid_backend_destroy(be);

  reid_rng a, b;
  reid_rng_seed(&a, 42);
  reid_rng_seed(&b, 42);
  int same = 1;
  double mean = 0, var = 0;
  for (int i = 0; i < 100000; i++) {
    float x = reid_rng_normal(&a);
    same &= x == reid_rng_normal(&b);
    mean += x, var += (double)x * x;
  }
  mean /= 100000, var = var / 100000 - mean * mean;
  CHECK(same, "same seed, same sequence");
  CHECK(fabs(mean) < 0.02 && fabs(var - 1) < 0.03, "normal: mean %.4f var %.4f", mean, var);
  uint32_t counts[7] = {0};
  for (int i = 0; i < 70000; i++) counts[reid_rng_below(&a, 7)]++;
  for (int i = 0; i < 7; i++)
    CHECK(counts[i] > 9500 && counts[i] < 10500, "below(7) bucket %d: %u", i, counts[i]);
  return test_finish("status");
}
