/* Crop + bilinear resize + normalise on the CPU. The math is specified in
 * preprocess.h. Per box, the column taps (indices + weights) are planned once,
 * serially; rows of all boxes then run in parallel. Sample coordinates are
 * computed in double (at x ~ 1000 float coordinates would be off by ~1e-4 px);
 * pixel arithmetic is float. */
#include "preprocess.h"

#include "half.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* ---------------------------------------------------------------- formats */

typedef struct {
  int bytes;   /* per pixel */
  int r, g, b; /* byte offsets within a pixel */
} packed_layout;

static int is_yuv(reid_pixel_format f) {
  return f == REID_PIX_NV12 || f == REID_PIX_I420;
}

static packed_layout packed_layout_of(reid_pixel_format f) {
  switch (f) {
  case REID_PIX_RGB: return (packed_layout){3, 0, 1, 2};
  case REID_PIX_BGR: return (packed_layout){3, 2, 1, 0};
  case REID_PIX_RGBA:
  case REID_PIX_RGBX: return (packed_layout){4, 0, 1, 2};
  case REID_PIX_BGRA:
  case REID_PIX_BGRX: return (packed_layout){4, 2, 1, 0};
  default: return (packed_layout){0, 0, 0, 0};
  }
}

reid_yuv_coeffs reid_yuv_coefficients(reid_yuv_matrix matrix, int full_range) {
  double kr = 0.299, kb = 0.114; /* BT.601 */
  if (matrix == REID_YUV_BT709) kr = 0.2126, kb = 0.0722;
  double kg = 1.0 - kr - kb;
  double ys = full_range ? 1.0 : 255.0 / 219.0; /* Y  16..235 -> 0..255 */
  double cs = full_range ? 1.0 : 255.0 / 224.0; /* UV 16..240 -> 0..255 */
  reid_yuv_coeffs c = {
      .y_scale = (float)ys,
      .y_offset = full_range ? 0.0f : 16.0f,
      .r_v = (float)(2.0 * (1.0 - kr) * cs),
      .g_u = (float)(-2.0 * kb * (1.0 - kb) / kg * cs),
      .g_v = (float)(-2.0 * kr * (1.0 - kr) / kg * cs),
      .b_u = (float)(2.0 * (1.0 - kb) * cs),
  };
  return c;
}

reid_preprocess_params reid_preprocess_params_imagenet(int height, int width) {
  reid_preprocess_params p = {
      .height = height,
      .width = width,
      .mean = {0.485f, 0.456f, 0.406f},
      .std = {0.229f, 0.224f, 0.225f},
  };
  return p;
}

reid_frame reid_frame_from_image(const reid_image *rgb) {
  reid_frame f = {.format = REID_PIX_RGB};
  if (!rgb) return f;
  f.width = rgb->width;
  f.height = rgb->height;
  f.planes[0] = rgb->data;
  f.strides[0] = rgb->stride;
  return f;
}

static reid_status check_plane(const reid_frame *f, int i, int64_t row_bytes) {
  int64_t stride = f->strides[i] < 0 ? -(int64_t)f->strides[i] : f->strides[i];
  if (!f->planes[i]) return reid_fail(REID_EINVAL, "frame: plane %d is NULL", i);
  if (stride < row_bytes)
    return reid_fail(REID_EINVAL, "frame: plane %d stride %d < %lld bytes per row", i,
                     f->strides[i], (long long)row_bytes);
  return REID_OK;
}

reid_status reid_frame_check(const reid_frame *f) {
  if (!f) return reid_fail(REID_EINVAL, "frame is NULL");
  if (f->width < 1 || f->height < 1)
    return reid_fail(REID_EINVAL, "frame: bad size %dx%d", f->width, f->height);
  int64_t w = f->width, cw = (w + 1) / 2;
  switch (f->format) {
  case REID_PIX_RGB:
  case REID_PIX_BGR: return check_plane(f, 0, 3 * w);
  case REID_PIX_RGBA:
  case REID_PIX_BGRA:
  case REID_PIX_RGBX:
  case REID_PIX_BGRX: return check_plane(f, 0, 4 * w);
  case REID_PIX_NV12: REID_TRY(check_plane(f, 0, w)); return check_plane(f, 1, 2 * cw);
  case REID_PIX_I420:
    REID_TRY(check_plane(f, 0, w));
    REID_TRY(check_plane(f, 1, cw));
    return check_plane(f, 2, cw);
  }
  return reid_fail(REID_EINVAL, "frame: unknown pixel format %d", (int)f->format);
}

/* ---------------------------------------------------------------- boxes */

typedef struct {
  double x0, y0, x1, y1;
} clipped_box;

/* 1 when the box keeps positive area inside the frame. */
static int clip_box(const reid_box *b, int fw, int fh, clipped_box *c) {
  *c = (clipped_box){0, 0, 0, 0};
  if (!isfinite(b->x) || !isfinite(b->y) || !isfinite(b->w) || !isfinite(b->h)) return 0;
  if (b->w < 0 || b->h < 0) return 0;
  c->x0 = fmax(b->x, 0.0);
  c->y0 = fmax(b->y, 0.0);
  c->x1 = fmin((double)b->x + b->w, fw);
  c->y1 = fmin((double)b->y + b->h, fh);
  return c->x1 > c->x0 && c->y1 > c->y0;
}

reid_status reid_box_clip(const reid_box *in, int frame_w, int frame_h, reid_box *out) {
  if (!in || !out) return reid_fail(REID_EINVAL, "reid_box_clip: NULL box");
  if (frame_w < 1 || frame_h < 1)
    return reid_fail(REID_EINVAL, "reid_box_clip: bad frame size %dx%d", frame_w, frame_h);
  clipped_box c;
  if (!clip_box(in, frame_w, frame_h, &c))
    return reid_fail(REID_EINVAL, "box (x %g, y %g, w %g, h %g) is empty after clipping to %dx%d",
                     (double)in->x, (double)in->y, (double)in->w, (double)in->h, frame_w, frame_h);
  *out = (reid_box){(float)c.x0, (float)c.y0, (float)(c.x1 - c.x0), (float)(c.y1 - c.y0)};
  return REID_OK;
}

/* ---------------------------------------------------------------- sampling plan */

/* One bilinear tap along an axis: value = (1 - a) P[lo] + a P[hi]. */
typedef struct {
  int lo, hi;
  float a;
} tap;

static inline double clampd(double s, int first, int last) {
  return s < first ? first : (s > last ? last : s);
}

/* Tap at pixel-centre coordinate s, already clamped to [first, last] with
 * first >= 0: lo = floor(s), hi = min(lo + 1, last). */
static inline tap make_tap(double s, int last) {
  int lo = (int)s; /* s >= 0: truncation is floor */
  tap t = {lo, lo < last ? lo + 1 : last, (float)(s - lo)};
  return t;
}

/* Output column c of a box: its tap into the packed / luma row and, for YUV,
 * into the chroma row, both as byte offsets within a row. */
typedef struct {
  int lo, hi;
  float a;
  int clo, chi;
  float ca;
} column_tap;

/* Everything a row of one box needs: rows are sampled at
 * sy = y_origin + (r + 0.5) * y_step - 0.5, clamped to [y_first, y_last]. */
typedef struct {
  double y_origin, y_step;
  int y_first, y_last;
  const column_tap *cols; /* [out width] */
} box_plan;

static void plan_box(const reid_frame *f, const clipped_box *c, const reid_preprocess_params *p,
                     column_tap *cols, box_plan *plan) {
  int yuv = is_yuv(f->format);
  int bytes = yuv ? 1 : packed_layout_of(f->format).bytes;
  int cstep = f->format == REID_PIX_NV12 ? 2 : 1; /* bytes between chroma samples of a row */
  int cw = (f->width + 1) / 2;
  int first = (int)floor(c->x0), last = (int)ceil(c->x1) - 1;
  double step = (c->x1 - c->x0) / p->width;
  for (int j = 0; j < p->width; j++) {
    double sx = clampd(c->x0 + (j + 0.5) * step - 0.5, first, last);
    tap t = make_tap(sx, last);
    /* centre-sited 4:2:0 chroma: luma coordinate s -> chroma (s + 0.5) / 2 - 0.5 */
    tap ct = make_tap(clampd((sx + 0.5) / 2 - 0.5, 0, cw - 1), cw - 1);
    cols[j] = (column_tap){t.lo * bytes, t.hi * bytes, t.a, ct.lo * cstep, ct.hi * cstep, ct.a};
  }
  *plan = (box_plan){
      .y_origin = c->y0,
      .y_step = (c->y1 - c->y0) / p->height,
      .y_first = (int)floor(c->y0),
      .y_last = (int)ceil(c->y1) - 1,
      .cols = cols,
  };
}

/* ---------------------------------------------------------------- rows */

static inline float lerp(float a, float b, float t) {
  return a + t * (b - a);
}
/* Branch-free on gcc (a ternary max became a mispredicted branch): for
 * finite v, (v + |v|) / 2 == max(v, 0) exactly. */
static inline float clamp255(float v) {
  v = 0.5f * (v + fabsf(v));
  return v < 255.0f ? v : 255.0f;
}

static inline const uint8_t *row_ptr(const reid_frame *f, int plane, int y) {
  return f->planes[plane] + (ptrdiff_t)y * f->strides[plane];
}

/* Normalisation folded into v * scale + bias. */
typedef struct {
  float scale[3], bias[3];
} normaliser;

/* One output row of one box from a packed RGB-like frame. */
static void row_packed(const reid_frame *f, const box_plan *b, int r, normaliser n, int out_w,
                       float *restrict o_r, float *restrict o_g, float *restrict o_b) {
  const packed_layout L = packed_layout_of(f->format);
  double sy = clampd(b->y_origin + (r + 0.5) * b->y_step - 0.5, b->y_first, b->y_last);
  tap ty = make_tap(sy, b->y_last);
  const uint8_t *top = row_ptr(f, 0, ty.lo), *bot = row_ptr(f, 0, ty.hi);
  for (int c = 0; c < out_w; c++) {
    const column_tap t = b->cols[c];
    const uint8_t *tl = top + t.lo, *tr = top + t.hi, *bl = bot + t.lo, *br = bot + t.hi;
    float R = lerp(lerp(tl[L.r], tr[L.r], t.a), lerp(bl[L.r], br[L.r], t.a), ty.a);
    float G = lerp(lerp(tl[L.g], tr[L.g], t.a), lerp(bl[L.g], br[L.g], t.a), ty.a);
    float B = lerp(lerp(tl[L.b], tr[L.b], t.a), lerp(bl[L.b], br[L.b], t.a), ty.a);
    o_r[c] = R * n.scale[0] + n.bias[0];
    o_g[c] = G * n.scale[1] + n.bias[1];
    o_b[c] = B * n.scale[2] + n.bias[2];
  }
}

/* One output row of one box from an NV12 / I420 frame: Y, U, V are each
 * interpolated at their own sites, then converted. */
static void row_yuv(const reid_frame *f, const box_plan *b, int r, normaliser n, reid_yuv_coeffs k,
                    int out_w, float *restrict o_r, float *restrict o_g, float *restrict o_b) {
  const int ch = (f->height + 1) / 2, nv12 = f->format == REID_PIX_NV12;
  double sy = clampd(b->y_origin + (r + 0.5) * b->y_step - 0.5, b->y_first, b->y_last);
  tap ty = make_tap(sy, b->y_last);
  tap tc = make_tap(clampd((sy + 0.5) / 2 - 0.5, 0, ch - 1), ch - 1);
  const uint8_t *y_top = row_ptr(f, 0, ty.lo), *y_bot = row_ptr(f, 0, ty.hi);
  const uint8_t *u_top = row_ptr(f, 1, tc.lo), *u_bot = row_ptr(f, 1, tc.hi);
  const uint8_t *v_top = nv12 ? u_top + 1 : row_ptr(f, 2, tc.lo);
  const uint8_t *v_bot = nv12 ? u_bot + 1 : row_ptr(f, 2, tc.hi);
  for (int c = 0; c < out_w; c++) {
    const column_tap t = b->cols[c];
    float Y = lerp(lerp(y_top[t.lo], y_top[t.hi], t.a), lerp(y_bot[t.lo], y_bot[t.hi], t.a), ty.a);
    float U =
        lerp(lerp(u_top[t.clo], u_top[t.chi], t.ca), lerp(u_bot[t.clo], u_bot[t.chi], t.ca), tc.a) -
        128.0f;
    float V =
        lerp(lerp(v_top[t.clo], v_top[t.chi], t.ca), lerp(v_bot[t.clo], v_bot[t.chi], t.ca), tc.a) -
        128.0f;
    float L = k.y_scale * (Y - k.y_offset);
    o_r[c] = clamp255(L + k.r_v * V) * n.scale[0] + n.bias[0];
    o_g[c] = clamp255(L + k.g_u * U + k.g_v * V) * n.scale[1] + n.bias[1];
    o_b[c] = clamp255(L + k.b_u * U) * n.scale[2] + n.bias[2];
  }
}

/* ---------------------------------------------------------------- driver */

static reid_status check_params(const reid_preprocess_params *p) {
  if (!p) return reid_fail(REID_EINVAL, "preprocess: params are NULL");
  if (p->height < 1 || p->width < 1 || (int64_t)p->height * p->width > INT32_MAX / 3)
    return reid_fail(REID_EINVAL, "preprocess: bad output size %dx%d", p->height, p->width);
  for (int c = 0; c < 3; c++)
    if (!isfinite(p->mean[c]) || !isfinite(p->std[c]) || p->std[c] == 0.0f ||
        !isfinite(1.0f / (255.0f * p->std[c])))
      return reid_fail(REID_EINVAL, "preprocess: channel %d: mean %g / std %g unusable", c,
                       (double)p->mean[c], (double)p->std[c]);
  return REID_OK;
}

/* One output row in NHWC: interleaves the three channel rows. */
static void store_nhwc(const float *r, const float *g, const float *b, int w, int bf16, void *out) {
  if (bf16) {
    uint16_t *o = out;
    for (int c = 0; c < w; c++) {
      o[3 * c] = float_to_bf16(r[c]);
      o[3 * c + 1] = float_to_bf16(g[c]);
      o[3 * c + 2] = float_to_bf16(b[c]);
    }
  } else {
    float *o = out;
    for (int c = 0; c < w; c++) {
      o[3 * c] = r[c];
      o[3 * c + 1] = g[c];
      o[3 * c + 2] = b[c];
    }
  }
}

reid_status reid_preprocess_cpu(const reid_frame *frame, const reid_box *boxes, int n_boxes,
                                const reid_preprocess_params *p, float *out) {
  const reid_tensor_format nchw = {REID_LAYOUT_NCHW, 3, REID_PRECISION_FP32};
  return reid_preprocess_cpu_format(frame, boxes, n_boxes, p, &nchw, out);
}

reid_status reid_preprocess_cpu_format(const reid_frame *frame, const reid_box *boxes, int n_boxes,
                                       const reid_preprocess_params *p,
                                       const reid_tensor_format *fmt, void *out) {
  REID_TRY(check_params(p));
  if (!fmt) return reid_fail(REID_EINVAL, "preprocess: output format is NULL");
  const int nhwc = fmt->layout == REID_LAYOUT_NHWC, bf16 = fmt->dtype == REID_PRECISION_BF16;
  if (fmt->channels != 3 || (fmt->layout != REID_LAYOUT_NCHW && !nhwc) ||
      (fmt->dtype != REID_PRECISION_FP32 && !(nhwc && bf16)))
    return reid_fail(REID_EUNSUPPORTED,
                     "preprocess: the CPU writes NCHW float32 or NHWC float32/bfloat16 with 3 "
                     "channels (asked: %s, %d channels, %s)",
                     nhwc ? "NHWC" : "NCHW", fmt->channels, reid_precision_name(fmt->dtype));
  REID_TRY(reid_frame_check(frame));
  if (n_boxes < 0) return reid_fail(REID_EINVAL, "preprocess: n_boxes %d < 0", n_boxes);
  if (n_boxes == 0) return REID_OK;
  if (!boxes || !out) return reid_fail(REID_EINVAL, "preprocess: boxes or out is NULL");
  if ((size_t)n_boxes > SIZE_MAX / sizeof(float) / 3 / (size_t)p->height / (size_t)p->width)
    return reid_fail(REID_EINVAL, "preprocess: output of %d boxes overflows", n_boxes);
  for (int i = 0; i < n_boxes; i++) {
    reid_box unused;
    if (reid_box_clip(&boxes[i], frame->width, frame->height, &unused) != REID_OK)
      return reid_fail_context(REID_EINVAL, "preprocess: box %d", i);
  }

  const int H = p->height, W = p->width;
  box_plan *plans = malloc((size_t)n_boxes * sizeof *plans);
  column_tap *cols = malloc((size_t)n_boxes * W * sizeof *cols);
  if (!plans || !cols) {
    free(plans);
    free(cols);
    return reid_fail(REID_ENOMEM, "preprocess: sampling plan for %d boxes x %d columns", n_boxes,
                     W);
  }
  for (int b = 0; b < n_boxes; b++) {
    clipped_box cb;
    clip_box(&boxes[b], frame->width, frame->height, &cb); /* validated above */
    plan_box(frame, &cb, p, cols + (size_t)b * W, &plans[b]);
  }
  normaliser n;
  for (int c = 0; c < 3; c++) {
    n.scale[c] = 1.0f / (255.0f * p->std[c]);
    n.bias[c] = -p->mean[c] / p->std[c];
  }
  const reid_yuv_coeffs k = reid_yuv_coefficients(frame->yuv_matrix, frame->yuv_full_range);
  const int yuv = is_yuv(frame->format);
  const size_t plane = (size_t)H * W;

  const size_t elem = reid_tensor_format_element_size(fmt);
  int failed = 0;
#pragma omp parallel reduction(| : failed)
  {
    /* NHWC: each row is computed as three channel rows, then interleaved */
    float *tmp = nhwc ? malloc(sizeof(float) * 3 * (size_t)W) : NULL;
    failed = nhwc && !tmp;
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < n_boxes; b++) {
      for (int r = 0; r < H; r++) {
        if (failed) continue;
        float *o = nhwc ? tmp : (float *)out + (size_t)b * 3 * plane + (size_t)r * W;
        const size_t ch = nhwc ? (size_t)W : plane; /* [b, 0, r, :] or the scratch rows */
        if (yuv)
          row_yuv(frame, &plans[b], r, n, k, W, o, o + ch, o + 2 * ch);
        else
          row_packed(frame, &plans[b], r, n, W, o, o + ch, o + 2 * ch);
        if (nhwc) /* [b, r, :, :] */
          store_nhwc(o, o + ch, o + 2 * ch, W, bf16,
                     (char *)out + ((size_t)b * plane + (size_t)r * W) * 3 * elem);
      }
    }
    free(tmp);
  }
  free(plans);
  free(cols);
  if (failed) return reid_fail(REID_ENOMEM, "preprocess: row scratch of %d columns", W);
  return REID_OK;
}

reid_status reid_preprocess_image(const reid_image *rgb, const reid_preprocess_params *p,
                                  float *out) {
  if (!rgb) return reid_fail(REID_EINVAL, "reid_preprocess_image: image is NULL");
  reid_frame f = reid_frame_from_image(rgb);
  reid_box whole = {0.0f, 0.0f, (float)rgb->width, (float)rgb->height};
  return reid_preprocess_cpu(&f, &whole, 1, p, out);
}
