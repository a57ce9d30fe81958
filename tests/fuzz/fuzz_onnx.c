/* libFuzzer harness: bytes through the ONNX importer to a usable network.
 * reid_onnx_load_bytes parses the protobuf (protobuf-c), checks the opset,
 * input, output and metadata, maps every node onto the network graph and
 * fills the weights from the initializers; a network that loads runs one
 * forward pass. A malformed model must fail with an error (any status),
 * never crash, read out of bounds or leak. Inputs larger than 64x64 are not
 * run (speed, not safety); the seeds are small graphs of every op the
 * exporter writes (tests/fuzz/make_seeds.c). */
#include "backend.h"
#include "fuzz.h"
#include "onnx_import.h"

static reid_backend *cpu;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!cpu && reid_backend_create("cpu", 0, &cpu) != REID_OK) abort();
  reid_net *net = NULL;
  reid_onnx_info info;
  if (reid_onnx_load_bytes(data, size, "fuzz.onnx", NULL, cpu, &net, &info) != REID_OK) return 0;
  const reid_model_config *cfg = reid_net_config(net);
  if (cfg->input_height <= 64 && cfg->input_width <= 64) {
    size_t n = (size_t)3 * cfg->input_height * cfg->input_width;
    float *x = calloc(n, sizeof *x);
    if (x) (void)reid_net_forward(net, x, 1, 1, 0);
    free(x);
  }
  reid_net_destroy(net);
  return 0;
}
