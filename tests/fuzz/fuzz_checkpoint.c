/* libFuzzer harness: a safetensors file through the checkpoint loader to a
 * usable network. st_open validates the container; every tensor is read as
 * float and every metadata entry visited; then the model roles (MDKT pair or
 * single), the configuration and, when that is valid, the network is created
 * on the CPU backend and its weights loaded; a network that loads runs one
 * forward pass. A malformed file must fail with an error (any status), never
 * crash, read out of bounds or leak. Networks are capped (input <= 64x64) so
 * one input stays fast. The seeds are small (a ResNet-18 is 45 MB), so what
 * the fuzzer explores is the container, the metadata, the configuration and
 * the tensor-by-tensor checks against the network, not a full load. */
#include "backend.h"
#include "checkpoint.h"
#include "fuzz.h"
#include "safetensors.h"

static reid_backend *cpu;

static void try_network(const st_file *f, const char *prefix) {
  reid_model_config cfg;
  if (reid_checkpoint_read_config(f, prefix, &cfg) != REID_OK) return;
  if (cfg.input_height > 64 || cfg.input_width > 64) return; /* speed, not safety */
  reid_net *net = NULL;
  if (reid_net_create_empty(&cfg, cpu, &net) != REID_OK) return; /* as the loader does */
  if (reid_checkpoint_load_weights(net, f, prefix) == REID_OK) {
    size_t n = (size_t)3 * cfg.input_height * cfg.input_width;
    float *x = calloc(n, sizeof *x);
    if (x) (void)reid_net_forward(net, x, 1, 1, 0);
    free(x);
  }
  reid_net_destroy(net);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!cpu && reid_backend_create("cpu", 0, &cpu) != REID_OK) abort();
  const char *path = fuzz_path("input.safetensors");
  fuzz_write(path, data, size);
  st_file *f = NULL;
  if (st_open(path, &f) != REID_OK) return 0;
  for (size_t i = 0; i < st_count(f); i++) {
    const st_tensor *t = st_tensor_at(f, i);
    size_t numel = (size_t)t->numel;
    if (t->numel >= 0 && numel <= (1u << 20)) {
      float *dst = malloc((numel ? numel : 1) * sizeof *dst);
      if (dst) st_read_f32(f, t, dst, numel);
      free(dst);
    }
    (void)st_find(f, t->name);
  }
  for (size_t i = 0; i < st_meta_count(f); i++) {
    const char *k, *v;
    if (st_meta_at(f, i, &k, &v) == 0) (void)st_meta(f, k);
  }
  reid_model_roles roles;
  if (reid_checkpoint_roles(f, &roles) == REID_OK) {
    try_network(f, roles.video_prefix);
    if (strcmp(roles.image_prefix, roles.video_prefix) != 0) try_network(f, roles.image_prefix);
  }
  st_close(f);
  return 0;
}
