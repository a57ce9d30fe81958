/* Cameras and clips: background, subject placement with detector-like jitter, occluders,
 * then the sensor: blur, colour cast, brightness/contrast/gamma, noise, 8-bit quantisation. */
#include <math.h>
#include <string.h>

#include "synth.h"

static float range(reid_rng *r, float lo, float hi) {
  return lo + (hi - lo) * reid_rng_uniform(r);
}
static float clamp01(float v) {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

static synth_rgb muted(reid_rng *r, float lo, float hi) {
  float g = range(r, lo, hi), t = 0.08f;
  return (synth_rgb){clamp01(g + range(r, -t, t)), clamp01(g + range(r, -t, t)),
                     clamp01(g + range(r, -t, t))};
}

const synth_rgb synth_cast_directions[4] = {
    {1, 0, -1}, {-1, 0, 1}, {-0.5f, 1, -0.5f}, {0.5f, -1, 0.5f}};

void synth_camera_make(uint64_t seed, int index, synth_camera *c) {
  reid_rng r;
  synth_stream(&r, seed, 11, (uint64_t)index);
  memset(c, 0, sizeof *c);
  /* a colour cast along a random direction: warm, cool, green or magenta, up to 15% */
  synth_rgb dirn = synth_cast_directions[reid_rng_below(&r, 4)];
  float amount = range(&r, 0, 0.15f);
  c->gain = (synth_rgb){1 + amount * dirn.r, 1 + amount * dirn.g, 1 + amount * dirn.b};
  c->brightness = range(&r, 0.75f, 1.25f);
  c->contrast = range(&r, 0.8f, 1.15f);
  c->gamma = range(&r, 0.85f, 1.15f);
  c->wall = muted(&r, 0.25f, 0.75f);
  c->wall2 = muted(&r, 0.15f, 0.8f);
  c->ground = muted(&r, 0.2f, 0.6f);
  c->horizon = range(&r, 0.55f, 0.8f);
  c->bg_style = (int)reid_rng_below(&r, 4);
  c->bg_period = range(&r, 0.15f, 0.45f);
  c->blur = reid_rng_uniform(&r) < 0.3f ? 0 : range(&r, 0.3f, 1.3f);
  c->noise = range(&r, 0.005f, 0.035f);
  c->scale = range(&r, 0.78f, 0.95f);
  c->occlusion_p = range(&r, 0, 0.35f);
  c->y_bias = range(&r, -0.03f, 0.03f);
  float sum = 0;
  for (int v = 0; v < 4; v++) {
    float u = reid_rng_uniform(&r);
    sum += c->view_p[v] = 0.15f + u * u;
  }
  for (int v = 0; v < 4; v++) c->view_p[v] /= sum;
}

void synth_clip_make(const synth_camera *cam, synth_kind kind, reid_rng *r, synth_clip_look *l) {
  memset(l, 0, sizeof *l);
  float w[4], sum = 0;
  for (int v = 0; v < 4; v++) /* vehicles: mostly front and back, as in VeRi */
    sum += w[v] = cam->view_p[v] * (kind == SYNTH_VEHICLE && v >= 2 ? 0.4f : 1.0f);
  float u = reid_rng_uniform(r) * sum, acc = 0;
  l->view = SYNTH_RIGHT;
  for (int v = 0; v < 4; v++)
    if (u < (acc += w[v])) {
      l->view = (synth_view)v;
      break;
    }
  l->phase0 = range(r, 0, 6.2831853f);
  l->phase_step = range(r, 0.45f, 0.75f);
  l->drift_x = range(r, -0.004f, 0.004f);
  l->drift_scale = range(r, -0.004f, 0.006f);
  l->bg_x = range(r, 0, 10);
  l->bg_y = range(r, -0.05f, 0.05f);
  l->light = range(r, 0.92f, 1.08f);
  if (reid_rng_uniform(r) < cam->occlusion_p) {
    float t = reid_rng_uniform(r);
    l->occluder = t < 0.6f ? 1 : t < 0.8f ? 2 : 3;
    l->occ_extent = l->occluder == 1 ? range(r, 0.15f, 0.35f) : range(r, 0.12f, 0.3f);
    l->occ_colour = muted(r, 0.1f, 0.7f);
  }
}

/* Value noise in [0, 1): a hashed lattice, bilinearly interpolated. */
static float lattice(int x, int y) {
  uint64_t h =
      (uint64_t)(uint32_t)x * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uint32_t)y * 0xC2B2AE3D27D4EB4Full;
  h = reid_splitmix64(&h);
  return (float)(h >> 40) * (1.0f / 16777216.0f);
}
static float value_noise(float x, float y) {
  float fx = floorf(x), fy = floorf(y), tx = x - fx, ty = y - fy;
  int ix = (int)fx, iy = (int)fy;
  tx = tx * tx * (3 - 2 * tx), ty = ty * ty * (3 - 2 * ty);
  float a = lattice(ix, iy), b = lattice(ix + 1, iy), c = lattice(ix, iy + 1),
        d = lattice(ix + 1, iy + 1);
  return (a + (b - a) * tx) * (1 - ty) + (c + (d - c) * tx) * ty;
}

static synth_rgb mix(synth_rgb a, synth_rgb b, float t) {
  return (synth_rgb){a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
}

/* Background at (x, y) in units of the image height. */
static synth_rgb background(const synth_camera *c, float x, float y) {
  float tex = 0.08f * (value_noise(x * 24, y * 24) - 0.5f);
  synth_rgb col;
  if (y > c->horizon) {
    col = mix(c->ground, (synth_rgb){c->ground.r * 0.8f, c->ground.g * 0.8f, c->ground.b * 0.8f},
              clamp01((y - c->horizon) * 2));
  } else {
    float p = c->bg_period, fx = x / p - floorf(x / p),
          fy = y / (0.8f * p) - floorf(y / (0.8f * p));
    float t = 0;
    switch (c->bg_style) {
    case 0: t = fx < 0.25f; break;
    case 1: t = fx > 0.2f && fx < 0.8f && fy > 0.25f && fy < 0.75f; break;
    case 2: t = clamp01((value_noise(x / p * 3, y / p * 3) - 0.35f) * 3); break;
    default: t = fy < 0.12f; break;
    }
    col = mix(c->wall, c->wall2, t);
  }
  return (synth_rgb){col.r + tex, col.g + tex, col.b + tex};
}

/* ~N(0, 1) from three uniforms (Irwin-Hall), cheaper than Box-Muller per pixel. */
static float quick_normal(reid_rng *r) {
  uint64_t bits = reid_rng_next(r);
  float a = (float)(bits & 0x1FFFFF), b = (float)((bits >> 21) & 0x1FFFFF), c = (float)(bits >> 43);
  return ((a + b + c) * (1.0f / 2097152.0f) - 1.5f) * 2.0f;
}

static void gaussian_blur(float *img, float *tmp, int w, int h, float sigma) {
  int rad = (int)ceilf(3 * sigma);
  if (rad < 1) return;
  if (rad > 15) rad = 15;
  float k[31], sum = 0;
  for (int i = -rad; i <= rad; i++) sum += k[i + rad] = expf(-0.5f * i * i / (sigma * sigma));
  for (int i = 0; i <= 2 * rad; i++) k[i] /= sum;
  for (int y = 0; y < h; y++) /* rows -> tmp */
    for (int x = 0; x < w; x++)
      for (int ch = 0; ch < 3; ch++) {
        float acc = 0;
        for (int i = -rad; i <= rad; i++) {
          int xx = x + i < 0 ? 0 : x + i >= w ? w - 1 : x + i;
          acc += k[i + rad] * img[3 * ((size_t)y * w + xx) + ch];
        }
        tmp[3 * ((size_t)y * w + x) + ch] = acc;
      }
  for (int y = 0; y < h; y++) /* columns -> img */
    for (int x = 0; x < w; x++)
      for (int ch = 0; ch < 3; ch++) {
        float acc = 0;
        for (int i = -rad; i <= rad; i++) {
          int yy = y + i < 0 ? 0 : y + i >= h ? h - 1 : y + i;
          acc += k[i + rad] * tmp[3 * ((size_t)yy * w + x) + ch];
        }
        img[3 * ((size_t)y * w + x) + ch] = acc;
      }
}

void synth_background_fill(const synth_camera *cam, float *canvas, int W, int H, float shift_x,
                           float shift_y, float ox, float oy) {
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      synth_rgb b = background(cam, (x - shift_x) / H + ox, (y - shift_y) / H + oy);
      float *px = canvas + 3 * ((size_t)y * W + x);
      px[0] = b.r, px[1] = b.g, px[2] = b.b;
    }
}

void synth_sensor(const synth_camera *cam, float light, float light_slope, float *canvas,
                  reid_rng *rng, reid_image *img) {
  const int W = img->width, H = img->height;
  float sigma = cam->blur * (float)H / 128.0f;
  if (sigma >= 0.3f) gaussian_blur(canvas, canvas + (size_t)3 * W * H, W, H, sigma);
  const float gains[3] = {cam->gain.r, cam->gain.g, cam->gain.b};
  for (int y = 0; y < H; y++) {
    uint8_t *row = img->data + (size_t)y * img->stride;
    for (int x = 0; x < W; x++) {
      const float lx = cam->brightness * light * (1 + light_slope * ((x + 0.5f) / W - 0.5f));
      for (int ch = 0; ch < 3; ch++) {
        float v = canvas[3 * ((size_t)y * W + x) + ch] * gains[ch] * lx;
        v = clamp01((v - 0.5f) * cam->contrast + 0.5f);
        v = powf(v, cam->gamma) + (rng ? cam->noise * quick_normal(rng) : 0);
        row[3 * x + ch] = (uint8_t)lrintf(clamp01(v) * 255.0f);
      }
    }
  }
}

void synth_render(const synth_identity *id, const synth_camera *cam, const synth_clip_look *look,
                  int t, reid_rng *rng, float *canvas, reid_image *img) {
  const int W = img->width, H = img->height;
  synth_canvas c = {W, H, canvas};
  /* the detector's box around the subject: jittered position and size */
  float jx = 0.03f * W * quick_normal(rng), jy = 0.02f * H * quick_normal(rng);
  float js = 1 + 0.03f * quick_normal(rng);
  synth_background_fill(cam, canvas, W, H, jx, jy, look->bg_x, look->bg_y);
  synth_place at;
  at.view = look->view;
  at.phase = look->phase0 + look->phase_step * t;
  at.cx = 0.5f * W + jx + look->drift_x * t * W;
  at.cy = (0.5f + cam->y_bias) * H + jy;
  float grow = js * (1 + look->drift_scale * t);
  if (id->kind == SYNTH_PERSON) {
    at.size = cam->scale * H * grow;
    synth_draw_person(&c, &id->person, &at);
  } else {
    at.size = cam->scale * W * grow;
    synth_draw_vehicle(&c, &id->vehicle, &at);
  }
  if (look->occluder) {
    synth_paint occ = synth_solid(look->occ_colour);
    float e = look->occ_extent;
    if (look->occluder == 1)
      synth_box(&c, -2, H * (1 - e), W + 2, H + 2, 0, &occ);
    else if (look->occluder == 2)
      synth_box(&c, -2, -2, W * e, H + 2, 0, &occ);
    else
      synth_box(&c, W * (1 - e), -2, W + 2, H + 2, 0, &occ);
  }
  synth_sensor(cam, look->light, 0, canvas, rng, img);
}
