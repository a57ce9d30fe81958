#include "backend.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_ops.h"
#include "op_checks.h"

/* Output extent of a k-window sliding with `stride` over `in` padded by `pad`
 * on both sides (floor mode, as PyTorch); < 1 when the window does not fit. */
static int window_extent(int in, int k, int stride, int pad) {
  return in + 2 * pad < k ? 0 : (in + 2 * pad - k) / stride + 1;
}

reid_status reid_conv2d_desc_init(reid_conv2d_desc *d, int n, int c_in, int h_in, int w_in,
                                  int c_out, int k, int stride, int pad) {
  if (n < 1 || c_in < 1 || h_in < 1 || w_in < 1 || c_out < 1 || k < 1 || stride < 1 || pad < 0)
    return reid_fail(REID_EINVAL,
                     "conv2d: invalid shape n=%d c_in=%d h=%d w=%d c_out=%d k=%d stride=%d pad=%d",
                     n, c_in, h_in, w_in, c_out, k, stride, pad);
  int h_out = window_extent(h_in, k, stride, pad), w_out = window_extent(w_in, k, stride, pad);
  if (h_out < 1 || w_out < 1)
    return reid_fail(REID_EINVAL, "conv2d: kernel %d larger than padded input %dx%d", k,
                     h_in + 2 * pad, w_in + 2 * pad);
  *d = (reid_conv2d_desc){n, c_in, h_in, w_in, c_out, k, stride, pad, h_out, w_out, 1};
  return REID_OK;
}

reid_status reid_conv2d_desc_init_grouped(reid_conv2d_desc *d, int n, int c_in, int h_in, int w_in,
                                          int c_out, int k, int stride, int pad, int groups) {
  if (groups < 1 || c_in % groups || c_out % groups)
    return reid_fail(REID_EINVAL, "conv2d: %d groups do not divide %d input and %d output channels",
                     groups, c_in, c_out);
  REID_TRY(reid_conv2d_desc_init(d, n, c_in, h_in, w_in, c_out, k, stride, pad));
  d->groups = groups;
  return REID_OK;
}

static reid_status pool2d_desc_init(reid_pool2d_desc *d, int n, int c, int h, int w, int k,
                                    int stride, int pad, int ceil_mode) {
  if (n < 1 || c < 1 || h < 1 || w < 1 || k < 1 || stride < 1 || pad < 0 || 2 * pad > k)
    return reid_fail(REID_EINVAL, "pool2d: invalid shape n=%d c=%d h=%d w=%d k=%d stride=%d pad=%d",
                     n, c, h, w, k, stride, pad);
  int h_out = reid_pool2d_extent(h, k, stride, pad, ceil_mode),
      w_out = reid_pool2d_extent(w, k, stride, pad, ceil_mode);
  if (h_out < 1 || w_out < 1)
    return reid_fail(REID_EINVAL, "pool2d: window %d larger than padded input %dx%d", k,
                     h + 2 * pad, w + 2 * pad);
  *d = (reid_pool2d_desc){n, c, h, w, k, stride, pad, h_out, w_out, ceil_mode};
  return REID_OK;
}

reid_status reid_pool2d_desc_init(reid_pool2d_desc *d, int n, int c, int h, int w, int k,
                                  int stride, int pad) {
  return pool2d_desc_init(d, n, c, h, w, k, stride, pad, 0);
}

reid_status reid_pool2d_desc_init_ceil(reid_pool2d_desc *d, int n, int c, int h, int w, int k,
                                       int stride, int pad) {
  return pool2d_desc_init(d, n, c, h, w, k, stride, pad, 1);
}

static reid_backend_ops cpu_backend_ops;

static const reid_backend_ops *cpu_ops_table(void) {
  static int ready;
#pragma omp critical(reid_cpu_ops_table)
  if (!ready) {
    cpu_register_memory_ops(&cpu_backend_ops);
    cpu_register_conv_ops(&cpu_backend_ops);
    cpu_register_elementwise_ops(&cpu_backend_ops);
    cpu_register_activation_ops(&cpu_backend_ops);
    cpu_register_batchnorm_ops(&cpu_backend_ops);
    cpu_register_instancenorm_ops(&cpu_backend_ops);
    cpu_register_pool_ops(&cpu_backend_ops);
    cpu_register_linear_ops(&cpu_backend_ops);
    cpu_register_loss_ops(&cpu_backend_ops);
    cpu_register_distance_ops(&cpu_backend_ops);
    cpu_register_optim_ops(&cpu_backend_ops);
    ready = 1;
  }
  return &cpu_backend_ops;
}

#if HAVE_CUDA
reid_status cuda_backend_create(int device_id, reid_backend **out);
void cuda_backend_destroy(reid_backend *be);
int cuda_backend_available(void);
#endif

int reid_cuda_available(void) {
#if HAVE_CUDA
  return cuda_backend_available();
#else
  return 0;
#endif
}

static reid_status cpu_backend_create(reid_backend **out) {
  reid_backend *be = calloc(1, sizeof *be);
  if (!be) return reid_fail(REID_ENOMEM, "backend: out of memory");
  cpu_backend_state *state = NULL;
  reid_status st = cpu_backend_state_create(&state);
  if (st != REID_OK) {
    free(be);
    return st;
  }
  be->ops = cpu_ops_table();
  be->name = "cpu";
  be->device = REID_DEVICE_CPU;
  be->impl = state;
  *out = be;
  return REID_OK;
}

reid_status reid_backend_create(const char *device, int device_id, reid_backend **out) {
  *out = NULL;
  if (!device || !strcmp(device, "auto"))
    return reid_cuda_available() ? reid_backend_create("cuda", device_id, out)
                                 : cpu_backend_create(out);
  if (!strcmp(device, "cpu")) return cpu_backend_create(out);
  if (!strcmp(device, "cuda")) {
#if HAVE_CUDA
    if (!cuda_backend_available())
      return reid_fail(REID_EUNSUPPORTED, "device 'cuda': no usable CUDA GPU was found");
    return cuda_backend_create(device_id, out);
#else
    (void)device_id;
    return reid_fail(REID_EUNSUPPORTED,
                     "device 'cuda': this build has no CUDA backend (rebuild with -Dcuda=enabled)");
#endif
  }
  return reid_fail(REID_EINVAL, "unknown device '%s' (expected cpu, cuda or auto)", device);
}

void reid_backend_destroy(reid_backend *be) {
  if (!be) return;
#if HAVE_CUDA
  if (be->device == REID_DEVICE_CUDA) {
    cuda_backend_destroy(be);
    return;
  }
#endif
  cpu_backend_state_destroy(be->impl);
  free(be);
}

void reid_set_num_threads(int threads) {
  if (threads <= 0) threads = omp_get_num_procs();
  omp_set_num_threads(threads);
}

int reid_get_num_threads(void) {
  return omp_get_max_threads();
}
