/* GPU preprocessing against reid_preprocess_cpu for every pixel format:
 * frames in host and in device memory, padded and negative (bottom-up)
 * strides, odd sizes (4:2:0 chroma of ceil(W/2) x ceil(H/2)), boxes inside,
 * fractional, partly outside and covering the frame; NCHW fp32 output, NHWC
 * fp16 / bf16 / fp32 with padding channels; empty boxes refused before
 * anything is written.
 *
 * The taps are planned exactly as on the CPU and the kernel does the same
 * float operations, so fp32 must agree to 1e-5 (values are O(1)); fp16 and
 * bf16 to their rounding (2^-11, 2^-8 relative). Outputs are poisoned. */
#include "cuda_test.h"
#include "half.h"
#include "preprocess.h"
#include "test_frames.h"

/* the same frame with its planes copied to device memory */
static reid_frame device_frame(const test_frame *t, uint8_t *dev[3]) {
  reid_frame f = t->f;
  for (int i = 0; i < 3; i++) {
    dev[i] = NULL;
    if (!t->mem[i]) continue;
    dev[i] = dev_alloc(t->bytes[i]);
    gpu->ops->upload(gpu, dev[i], t->mem[i], t->bytes[i]);
    f.planes[i] = dev[i] + (t->f.planes[i] - t->mem[i]);
  }
  return f;
}

static int random_boxes(test_rng *rng, int w, int h, reid_box *boxes) {
  int n = 0;
  boxes[n++] = (reid_box){0, 0, (float)w, (float)h};               /* whole frame */
  boxes[n++] = (reid_box){-5.5f, -3.25f, w * 0.5f, h * 0.6f};      /* top-left out */
  boxes[n++] = (reid_box){w * 0.7f, h * 0.5f, (float)w, (float)h}; /* bottom-right out */
  boxes[n++] = (reid_box){w * 0.3f, h * 0.2f, 0.4f, 0.7f};         /* sub-pixel */
  boxes[n++] = (reid_box){3.0f, 2.0f, 10.0f, 20.0f};               /* integer */
  for (int i = 0; i < 5; i++) {
    const float x = test_rng_uniform(rng, -10, (float)w), y = test_rng_uniform(rng, -10, (float)h);
    boxes[n++] =
        (reid_box){x, y, test_rng_uniform(rng, 12, w * 0.8f), test_rng_uniform(rng, 12, h * 0.8f)};
  }
  return n;
}

/* out [n, 3, H, W] fp32 on the GPU vs the CPU */
static void compare_nchw(const char *what, const reid_frame *host_frame, const reid_frame *frame,
                         reid_memory memory, const reid_box *boxes, int n,
                         const reid_preprocess_params *p) {
  const size_t len = (size_t)n * 3 * p->height * p->width;
  float *ref = host_poisoned(len);
  CHECK_OK(reid_preprocess_cpu(host_frame, boxes, n, p, ref));
  float *d = dev_poisoned(len);
  reid_tensor_format fmt = {REID_LAYOUT_NCHW, 3, REID_PRECISION_FP32};
  CHECK_OK(reid_preprocess_cuda(gpu, frame, memory, boxes, n, p, &fmt, d));
  check_dev(what, d, ref, len, 1e-5, 0);
  dev_free(d);
  free(ref);
}

/* NHWC with `channels` (>= 3) in fp32 / fp16 / bf16 against the CPU's NCHW fp32 */
static void compare_nhwc(const char *what, const reid_frame *frame, const reid_box *boxes, int n,
                         const reid_preprocess_params *p, int channels, reid_precision dtype) {
  const size_t pixels = (size_t)n * p->height * p->width, plane = (size_t)p->height * p->width;
  float *ref = host_poisoned(pixels * 3);
  CHECK_OK(reid_preprocess_cpu(frame, boxes, n, p, ref));
  reid_tensor_format fmt = {REID_LAYOUT_NHWC, channels, dtype};
  const size_t elem = reid_tensor_format_element_size(&fmt), count = pixels * channels;
  void *d = dev_alloc(elem * count);
  uint8_t *host = malloc(elem * count);
  memset(host, 0xff, elem * count); /* NaN in every precision */
  gpu->ops->upload(gpu, d, host, elem * count);
  CHECK_OK(reid_preprocess_cuda(gpu, frame, REID_MEMORY_HOST, boxes, n, p, &fmt, d));
  gpu->ops->download(gpu, host, d, elem * count);
  double worst = 0;
  size_t at = 0, nonzero_pad = 0;
  const double rtol = dtype == REID_PRECISION_FP16   ? 1.0 / 2048
                      : dtype == REID_PRECISION_BF16 ? 1.0 / 256
                                                     : 0;
  for (size_t px = 0; px < pixels; px++) {
    const size_t b = px / plane, rc = px % plane;
    for (int ch = 0; ch < channels; ch++) {
      const size_t k = px * channels + ch;
      float v;
      if (dtype == REID_PRECISION_FP16)
        v = half_to_float(((const uint16_t *)host)[k]);
      else if (dtype == REID_PRECISION_BF16)
        v = bf16_to_float(((const uint16_t *)host)[k]);
      else
        v = ((const float *)host)[k];
      if (ch >= 3) {
        nonzero_pad += v != 0.0f;
        continue;
      }
      const double r = ref[(b * 3 + ch) * plane + rc];
      const double e = fabs(v - r) / (1e-5 + rtol * fabs(r));
      if (!(e <= worst)) worst = isnan(e) ? INFINITY : e, at = k;
    }
  }
  CHECK(worst <= 1.0, "%s: element %zu off by %.3g of the tolerance", what, at, worst);
  CHECK(nonzero_pad == 0, "%s: %zu padding channels are not 0", what, nonzero_pad);
  dev_free(d);
  free(host);
  free(ref);
}

static void test_format(test_rng *rng, int fi) {
  const reid_pixel_format fmt = test_formats[fi];
  const reid_preprocess_params p = reid_preprocess_params_imagenet(32, 16);
  reid_box boxes[16];
  char what[128];
  for (int variant = 0; variant < 2; variant++) {
    const int bottom_up = variant == 1;
    test_frame t = test_frame_make(rng, fmt, 61, 47, bottom_up ? 0 : 13, bottom_up);
    if (fmt == REID_PIX_NV12 && bottom_up) t.f.yuv_matrix = REID_YUV_BT709, t.f.yuv_full_range = 1;
    const int n = random_boxes(rng, t.f.width, t.f.height, boxes);
    snprintf(what, sizeof what, "%s %s host frame", test_format_names[fi],
             bottom_up ? "bottom-up" : "padded");
    compare_nchw(what, &t.f, &t.f, REID_MEMORY_HOST, boxes, n, &p);
    uint8_t *dev[3];
    reid_frame df = device_frame(&t, dev);
    snprintf(what, sizeof what, "%s %s device frame", test_format_names[fi],
             bottom_up ? "bottom-up" : "padded");
    compare_nchw(what, &t.f, &df, REID_MEMORY_DEVICE, boxes, n, &p);
    for (int i = 0; i < 3; i++) dev_free(dev[i]);
    if (!bottom_up) {
      snprintf(what, sizeof what, "%s NHWC8 fp16", test_format_names[fi]);
      compare_nhwc(what, &t.f, boxes, n, &p, 8, REID_PRECISION_FP16);
      snprintf(what, sizeof what, "%s NHWC8 bf16", test_format_names[fi]);
      compare_nhwc(what, &t.f, boxes, n, &p, 8, REID_PRECISION_BF16);
      snprintf(what, sizeof what, "%s NHWC3 fp32", test_format_names[fi]);
      compare_nhwc(what, &t.f, boxes, n, &p, 3, REID_PRECISION_FP32);
    }
    test_frame_free(&t);
  }
}

/* a 1080p NV12 frame, 32 boxes at the network's input size */
static void test_hd(test_rng *rng) {
  test_frame t = test_frame_make(rng, REID_PIX_NV12, 1920, 1080, 0, 0);
  reid_box boxes[32];
  for (int i = 0; i < 32; i++)
    boxes[i] = (reid_box){test_rng_uniform(rng, -20, 1800), test_rng_uniform(rng, -20, 900),
                          test_rng_uniform(rng, 30, 200), test_rng_uniform(rng, 60, 400)};
  const reid_preprocess_params p = reid_preprocess_params_imagenet(256, 128);
  compare_nchw("NV12 1920x1080, 32 boxes at 256x128", &t.f, &t.f, REID_MEMORY_HOST, boxes, 32, &p);
  test_frame_free(&t);
}

static void test_bad_input(test_rng *rng) {
  test_frame t = test_frame_make(rng, REID_PIX_RGB, 20, 10, 0, 0);
  const reid_preprocess_params p = reid_preprocess_params_imagenet(8, 4);
  reid_tensor_format fmt = {REID_LAYOUT_NCHW, 3, REID_PRECISION_FP32};
  const size_t len = 3 * 3 * 8 * 4;
  float *d = dev_poisoned(len);
  reid_box boxes[3] = {{0, 0, 5, 5}, {2, 2, 4, 4}, {25, 0, 5, 5}}; /* box 2 lies outside */
  CHECK(reid_preprocess_cuda(gpu, &t.f, REID_MEMORY_HOST, boxes, 3, &p, &fmt, d) == REID_EINVAL,
        "a box outside the frame is refused");
  CHECK(strstr(reid_last_error(), "box 2") != NULL, "message names the box: %s", reid_last_error());
  float *h = host_from(d, len);
  size_t written = 0;
  for (size_t i = 0; i < len; i++) written += !isnan(h[i]);
  CHECK(written == 0, "%zu elements written although the call was refused", written);
  free(h);
  boxes[2] = (reid_box){1, 1, 0, 3}; /* zero width */
  CHECK(reid_preprocess_cuda(gpu, &t.f, REID_MEMORY_HOST, boxes, 3, &p, &fmt, d) == REID_EINVAL,
        "an empty box is refused");
  boxes[2] = (reid_box){NAN, 1, 2, 3};
  CHECK(reid_preprocess_cuda(gpu, &t.f, REID_MEMORY_HOST, boxes, 3, &p, &fmt, d) == REID_EINVAL,
        "a NaN box is refused");
  reid_tensor_format bad = {REID_LAYOUT_NCHW, 8, REID_PRECISION_FP32};
  CHECK(reid_preprocess_cuda(gpu, &t.f, REID_MEMORY_HOST, boxes, 2, &p, &bad, d) == REID_EINVAL,
        "NCHW with 8 channels is refused");
  reid_frame broken = t.f;
  broken.strides[0] = 10; /* < 3 * 20 bytes */
  CHECK(reid_preprocess_cuda(gpu, &broken, REID_MEMORY_HOST, boxes, 2, &p, &fmt, d) == REID_EINVAL,
        "a short stride is refused");
  CHECK_OK(reid_preprocess_cuda(gpu, &t.f, REID_MEMORY_HOST, boxes, 0, &p, &fmt, NULL));
  /* host memory where device memory is expected: refused before any kernel runs */
  CHECK(reid_preprocess_cuda(gpu, &t.f, REID_MEMORY_DEVICE, boxes, 2, &p, &fmt, d) == REID_EINVAL,
        "a host frame passed as device memory is refused");
  CHECK(strstr(reid_last_error(), "plane 0") != NULL, "message: %s", reid_last_error());
  float host_out[3 * 2 * 8 * 4];
  CHECK(reid_preprocess_cuda(gpu, &t.f, REID_MEMORY_HOST, boxes, 2, &p, &fmt, host_out) ==
            REID_EINVAL,
        "a host output is refused");
  CHECK_OK(
      reid_preprocess_cuda(gpu, &t.f, REID_MEMORY_HOST, boxes, 2, &p, &fmt, d)); /* still usable */
  dev_free(d);
  test_frame_free(&t);
}

int main(void) {
  const int skip = cuda_test_setup("test_cuda_preprocess");
  if (skip) return skip;
  test_rng rng = test_rng_make(97);
  for (int i = 0; i < 8; i++) test_format(&rng, i);
  test_hd(&rng);
  test_bad_input(&rng);
  cuda_test_teardown();
  return test_finish("test_cuda_preprocess");
}
