/* GPU preprocessing, host side: validates everything before anything runs
 * (format, strides, boxes: an empty box fails naming its index), plans the
 * bilinear taps per box exactly as reid_preprocess_cpu does (double
 * coordinates, preprocess.h), uploads a host frame's planes and the taps, and
 * launches one kernel for all boxes (preprocess.cu). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_preprocess.h"
#include "reid_cuda.h"

struct cuda_preprocess_state {
  void *frame; /* device copy of a host frame's planes */
  size_t frame_bytes;
  void *taps; /* device taps */
  size_t taps_bytes;
  pre_tap *taps_host; /* pinned staging of the taps */
  size_t taps_host_bytes;
  cudaEvent_t taps_copied; /* the last upload from taps_host has finished */
  int event_live;
};

void cuda_preprocess_state_destroy(cuda_preprocess_state *p) {
  if (!p) return;
  if (p->frame) cudaFree(p->frame);
  if (p->taps) cudaFree(p->taps);
  if (p->taps_host) cudaFreeHost(p->taps_host);
  if (p->taps_copied) cudaEventDestroy(p->taps_copied);
  cudaGetLastError();
  free(p);
}

static reid_status check_format(const reid_tensor_format *f) {
  if (!f) return reid_fail(REID_EINVAL, "preprocess: output format is NULL");
  if (f->layout == REID_LAYOUT_NCHW && f->channels != 3)
    return reid_fail(REID_EINVAL, "preprocess: NCHW output has 3 channels, not %d", f->channels);
  if (f->layout == REID_LAYOUT_NHWC && (f->channels < 3 || f->channels > 64))
    return reid_fail(REID_EINVAL, "preprocess: NHWC output needs 3..64 channels, not %d",
                     f->channels);
  if (f->layout != REID_LAYOUT_NCHW && f->layout != REID_LAYOUT_NHWC)
    return reid_fail(REID_EINVAL, "preprocess: unknown layout %d", (int)f->layout);
  if (f->dtype < REID_PRECISION_FP32 || f->dtype > REID_PRECISION_BF16)
    return reid_fail(REID_EINVAL, "preprocess: unknown precision %d", (int)f->dtype);
  return REID_OK;
}

static reid_status check_params(const reid_preprocess_params *p) {
  if (!p) return reid_fail(REID_EINVAL, "preprocess: params are NULL");
  if (p->height < 1 || p->width < 1 || (int64_t)p->height * p->width > INT32_MAX / 64)
    return reid_fail(REID_EINVAL, "preprocess: bad output size %dx%d", p->height, p->width);
  for (int c = 0; c < 3; c++)
    if (!isfinite(p->mean[c]) || !isfinite(p->std[c]) || p->std[c] == 0.0f ||
        !isfinite(1.0f / (255.0f * p->std[c])))
      return reid_fail(REID_EINVAL, "preprocess: channel %d: mean %g / std %g unusable", c,
                       (double)p->mean[c], (double)p->std[c]);
  return REID_OK;
}

/* A kernel that dereferences a host pointer would leave the context unusable
 * (a sticky error): device pointers are checked before launch. */
static reid_status check_device_pointer(const void *p, const char *what) {
  struct cudaPointerAttributes a;
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();
    return reid_fail(REID_EINVAL, "preprocess: %s is not CUDA memory", what);
  }
  if (a.type != cudaMemoryTypeDevice && a.type != cudaMemoryTypeManaged)
    return reid_fail(REID_EINVAL, "preprocess: %s is host memory, expected device memory", what);
  return REID_OK;
}

/* ---- taps: reid_preprocess_cpu's plan, in pixel units ---- */

static inline double clampd(double s, int first, int last) {
  return s < first ? first : (s > last ? last : s);
}

/* s already clamped to [first >= 0, last]: lo = floor(s), hi = min(lo + 1, last) */
static inline void make_tap(double s, int last, int *lo, int *hi, float *a) {
  *lo = (int)s;
  *hi = *lo < last ? *lo + 1 : last;
  *a = (float)(s - *lo);
}

/* n taps along one axis of a box [v0, v1) with `chroma_last` the last chroma sample */
static void plan_axis(double v0, double v1, int n, int chroma_last, pre_tap *out) {
  const int first = (int)floor(v0), last = (int)ceil(v1) - 1;
  const double step = (v1 - v0) / n;
  for (int j = 0; j < n; j++) {
    const double sv = clampd(v0 + (j + 0.5) * step - 0.5, first, last);
    pre_tap t;
    make_tap(sv, last, &t.lo, &t.hi, &t.a);
    /* centre-sited 4:2:0 chroma: luma coordinate s -> chroma (s + 0.5) / 2 - 0.5 */
    make_tap(clampd((sv + 0.5) / 2 - 0.5, 0, chroma_last), chroma_last, &t.clo, &t.chi, &t.ca);
    out[j] = t;
  }
}

/* ---- frame planes ---- */

static int plane_count(reid_pixel_format f) {
  return f == REID_PIX_NV12 ? 2 : f == REID_PIX_I420 ? 3 : 1;
}

/* rows and bytes per row of plane i */
static void plane_shape(const reid_frame *f, int i, int *rows, size_t *row_bytes) {
  const size_t w = (size_t)f->width, cw = (w + 1) / 2;
  *rows = i == 0 ? f->height : (f->height + 1) / 2;
  switch (f->format) {
  case REID_PIX_RGB:
  case REID_PIX_BGR: *row_bytes = 3 * w; break;
  case REID_PIX_NV12: *row_bytes = i == 0 ? w : 2 * cw; break;
  case REID_PIX_I420: *row_bytes = i == 0 ? w : cw; break;
  default: *row_bytes = 4 * w; break;
  }
}

/* Copies the byte span of each host plane (whatever the stride's sign) to
 * device memory and points planes[] at the copies. */
static reid_status upload_frame(cuda_state *s, cuda_preprocess_state *p, const reid_frame *f,
                                const uint8_t *planes[3]) {
  size_t offset[3], span[3], total = 0;
  const int n = plane_count(f->format);
  for (int i = 0; i < n; i++) {
    int rows;
    size_t row_bytes;
    plane_shape(f, i, &rows, &row_bytes);
    const size_t stride = (size_t)(f->strides[i] < 0 ? -(int64_t)f->strides[i] : f->strides[i]);
    span[i] = (size_t)(rows - 1) * stride + row_bytes;
    offset[i] = total;
    total += (span[i] + 255) & ~(size_t)255;
  }
  REID_TRY(cuda_grow(s, &p->frame, &p->frame_bytes, total, "preprocessing frame"));
  for (int i = 0; i < n; i++) {
    int rows;
    size_t row_bytes;
    plane_shape(f, i, &rows, &row_bytes);
    const size_t back =
        f->strides[i] < 0 ? (size_t)(rows - 1) * (size_t)(-(int64_t)f->strides[i]) : 0;
    const uint8_t *lowest = f->planes[i] - back; /* first byte of the span in memory */
    uint8_t *dst = (uint8_t *)p->frame + offset[i];
    CUDA_CHECK(cudaMemcpyAsync(dst, lowest, span[i], cudaMemcpyHostToDevice, s->stream));
    planes[i] = dst + back;
  }
  return REID_OK;
}

reid_status reid_preprocess_cuda(reid_backend *be, const reid_frame *frame, reid_memory memory,
                                 const reid_box *boxes, int n_boxes,
                                 const reid_preprocess_params *params,
                                 const reid_tensor_format *fmt, void *out) {
  cuda_state *s;
  REID_TRY(cuda_enter(be, &s));
  REID_TRY(check_params(params));
  REID_TRY(check_format(fmt));
  REID_TRY(reid_frame_check(frame));
  if (memory != REID_MEMORY_HOST && memory != REID_MEMORY_DEVICE)
    return reid_fail(REID_EINVAL, "preprocess: unknown frame memory %d", (int)memory);
  if (n_boxes < 0) return reid_fail(REID_EINVAL, "preprocess: n_boxes %d < 0", n_boxes);
  if (n_boxes == 0) return REID_OK;
  if (!boxes || !out) return reid_fail(REID_EINVAL, "preprocess: boxes or out is NULL");
  REID_TRY(check_device_pointer(out, "the output"));
  if (memory == REID_MEMORY_DEVICE)
    for (int i = 0; i < plane_count(frame->format); i++) {
      char what[32];
      snprintf(what, sizeof what, "frame plane %d", i);
      REID_TRY(check_device_pointer(frame->planes[i], what));
    }
  const int H = params->height, W = params->width;
  if ((size_t)n_boxes > (size_t)INT32_MAX / ((size_t)H + W) ||
      (size_t)n_boxes > SIZE_MAX / 64 / ((size_t)H * W) / (size_t)fmt->channels)
    return reid_fail(REID_EINVAL, "preprocess: %d boxes of %dx%d overflow", n_boxes, H, W);
  for (int i = 0; i < n_boxes; i++) {
    reid_box unused;
    if (reid_box_clip(&boxes[i], frame->width, frame->height, &unused) != REID_OK)
      return reid_fail_context(REID_EINVAL, "preprocess: box %d", i);
  }

  if (!s->pre) {
    s->pre = calloc(1, sizeof *s->pre);
    if (!s->pre) return reid_fail(REID_ENOMEM, "preprocess: out of memory");
  }
  cuda_preprocess_state *p = s->pre;
  const size_t n_taps = (size_t)n_boxes * ((size_t)W + H), tap_bytes = n_taps * sizeof(pre_tap);
  reid_status st = REID_OK;
  /* the pinned staging may still feed the previous call's copy */
  if (p->event_live) st = CUDA_ST(cudaEventSynchronize(p->taps_copied));
  if (st == REID_OK && tap_bytes > p->taps_host_bytes) {
    if (p->taps_host) cudaFreeHost(p->taps_host);
    p->taps_host = NULL;
    p->taps_host_bytes = 0;
    st = CUDA_ST(cudaMallocHost((void **)&p->taps_host, tap_bytes + tap_bytes / 4));
    if (st == REID_OK) p->taps_host_bytes = tap_bytes + tap_bytes / 4;
  }
  if (st == REID_OK && !p->taps_copied)
    st = CUDA_ST(cudaEventCreateWithFlags(&p->taps_copied, cudaEventDisableTiming));
  if (st == REID_OK) st = cuda_grow(s, &p->taps, &p->taps_bytes, tap_bytes, "preprocessing taps");
  if (st != REID_OK) return st;

  /* taps of box b: columns at [b W], rows at [n W + b H]; box clipped in double as the CPU does */
  const int cw_last = (frame->width + 1) / 2 - 1, ch_last = (frame->height + 1) / 2 - 1;
  for (int b = 0; b < n_boxes; b++) {
    const reid_box *in = &boxes[b];
    const double x0 = fmax(in->x, 0.0), y0 = fmax(in->y, 0.0);
    const double x1 = fmin((double)in->x + in->w, frame->width);
    const double y1 = fmin((double)in->y + in->h, frame->height);
    plan_axis(x0, x1, W, cw_last, p->taps_host + (size_t)b * W);
    plan_axis(y0, y1, H, ch_last, p->taps_host + (size_t)n_boxes * W + (size_t)b * H);
  }
  CUDA_CHECK(cudaMemcpyAsync(p->taps, p->taps_host, tap_bytes, cudaMemcpyHostToDevice, s->stream));
  CUDA_CHECK(cudaEventRecord(p->taps_copied, s->stream));
  p->event_live = 1;

  pre_launch l;
  memset(&l, 0, sizeof l);
  l.format = frame->format;
  l.width = frame->width;
  l.height = frame->height;
  for (int i = 0; i < 3; i++) {
    l.planes[i] = frame->planes[i];
    l.strides[i] = frame->strides[i];
  }
  if (memory == REID_MEMORY_HOST) REID_TRY(upload_frame(s, p, frame, l.planes));
  l.yuv = reid_yuv_coefficients(frame->yuv_matrix, frame->yuv_full_range);
  l.n_boxes = n_boxes;
  l.out_h = H;
  l.out_w = W;
  l.cols = (const pre_tap *)p->taps;
  l.rows = (const pre_tap *)p->taps + (size_t)n_boxes * W;
  for (int c = 0; c < 3; c++) {
    l.scale[c] = 1.0f / (255.0f * params->std[c]);
    l.bias[c] = -params->mean[c] / params->std[c];
  }
  l.nhwc = fmt->layout == REID_LAYOUT_NHWC;
  l.channels = fmt->channels;
  l.dtype = fmt->dtype == REID_PRECISION_FP16 ? 1 : fmt->dtype == REID_PRECISION_BF16 ? 2 : 0;
  l.out = out;
  return cuda_preprocess_launch(s, &l);
}
