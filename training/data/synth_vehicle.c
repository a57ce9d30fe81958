/* A vehicle seen from the front, the back or the side. Lengths are fractions of the width the
 * vehicle fills (at->size pixels), heights grow with the type (sedan < pickup < SUV < van <
 * bus); the subject is centred on (at->cx, at->cy). */
#include <math.h>

#include "synth.h"

static const float type_height[5] = {0.36f, 0.46f, 0.52f, 0.42f, 0.62f}; /* side view, of length */
static const float type_front_height[5] = {0.62f, 0.78f, 0.88f, 0.72f, 1.0f}; /* of width */

typedef struct frame_ {
  synth_canvas *c;
  float x0, y0, s; /* vehicle-space (0..1 across, 0..h down) to pixels */
} frame_;

static void box(const frame_ *f, float x0, float y0, float x1, float y1, float r, synth_rgb col) {
  synth_paint p = synth_solid(col);
  synth_box(f->c, f->x0 + x0 * f->s, f->y0 + y0 * f->s, f->x0 + x1 * f->s, f->y0 + y1 * f->s,
            r * f->s, &p);
}

static void ellipse(const frame_ *f, float cx, float cy, float rx, float ry, synth_rgb col) {
  synth_paint p = synth_solid(col);
  synth_ellipse(f->c, f->x0 + cx * f->s, f->y0 + cy * f->s, rx * f->s, ry * f->s, &p);
}

static void quad(const frame_ *f, const float *v, synth_rgb col) {
  float xy[8];
  for (int i = 0; i < 4; i++)
    xy[2 * i] = f->x0 + v[2 * i] * f->s, xy[2 * i + 1] = f->y0 + v[2 * i + 1] * f->s;
  synth_paint p = synth_solid(col);
  synth_polygon(f->c, xy, 4, &p);
}

static synth_rgb shade_dark(synth_rgb c) {
  return (synth_rgb){c.r * 0.55f, c.g * 0.55f, c.b * 0.55f};
}

static const synth_rgb black = {0.05f, 0.05f, 0.05f}, tyre = {0.06f, 0.06f, 0.06f};
static const synth_rgb plate = {0.9f, 0.9f, 0.85f}, head_light = {0.95f, 0.95f, 0.85f};
static const synth_rgb tail_light = {0.75f, 0.08f, 0.06f};

/* Side view, x along the length (0 rear .. 1 front when facing right; mirrored for left). */
static void side(const frame_ *f, const synth_vehicle *v, int dir, float h) {
#define SX(x) (dir > 0 ? (x) : 1 - (x))
  float ground = h, belt = h * 0.5f, roof = 0;
  float clear = h * 0.14f, wheel_r = fminf(0.09f, h * 0.22f);
  synth_rgb roof_col = v->two_tone ? v->trim : v->body;
  /* cabin: sedan/pickup shorter, SUV/van/bus longer */
  float c0 = 0.22f, c1 = 0.72f, t0 = 0.3f, t1 = 0.62f;
  switch (v->type) {
  case 1: c0 = 0.05f, c1 = 0.75f, t0 = 0.06f, t1 = 0.66f; break;
  case 2: c0 = 0.02f, c1 = 0.86f, t0 = 0.02f, t1 = 0.74f; break;
  case 3: c0 = 0.5f, c1 = 0.78f, t0 = 0.54f, t1 = 0.7f; break;
  case 4: c0 = 0.02f, c1 = 0.98f, t0 = 0.02f, t1 = 0.95f; break;
  default: break;
  }
  float cab[8] = {SX(c0), belt, SX(c1), belt, SX(t1), roof, SX(t0), roof};
  quad(f, cab, roof_col);
  box(f, 0, belt - 0.01f, 1, ground - clear, 0.04f, v->body);
  /* windows inset in the cabin, split by a pillar */
  float m = 0.025f, mid = 0.5f * (t0 + t1);
  float w1[8] = {SX(c0 + m + 0.02f), belt - m, SX(mid - 0.01f), belt - m,
                 SX(mid - 0.01f),    roof + m, SX(t0 + m),      roof + m};
  float w2[8] = {SX(mid + 0.01f), belt - m, SX(c1 - m - 0.02f), belt - m,
                 SX(t1 - m),      roof + m, SX(mid + 0.01f),    roof + m};
  quad(f, w1, v->window);
  quad(f, w2, v->window);
  if (v->stripe) box(f, 0.02f, belt + 0.04f, 0.98f, belt + 0.07f, 0, v->trim);
  if (v->roof_rack)
    box(f, fminf(SX(t0), SX(t1)) + 0.02f, roof - 0.035f, fmaxf(SX(t0), SX(t1)) - 0.02f,
        roof - 0.015f, 0.005f, black);
  if (v->spoiler)
    box(f, SX(v->type == 3 ? 0.02f : t0 - 0.04f) - 0.04f, (v->type == 0 ? belt : roof) - 0.03f,
        SX(v->type == 3 ? 0.02f : t0 - 0.04f) + 0.04f, (v->type == 0 ? belt : roof) - 0.005f,
        0.005f, black);
  ellipse(f, SX(0.985f), belt + 0.05f, 0.015f, 0.025f, head_light);
  ellipse(f, SX(0.015f), belt + 0.05f, 0.012f, 0.025f, tail_light);
  for (int i = 0; i < 2; i++) {
    float wx = i ? SX(0.8f) : SX(0.2f);
    ellipse(f, wx, ground - wheel_r, wheel_r, wheel_r, tyre);
    ellipse(f, wx, ground - wheel_r, 0.55f * wheel_r, 0.55f * wheel_r, v->rim);
  }
#undef SX
}

/* Front (back = 0) or rear (back = 1) view, x across the width 0..1, height h. */
static void end(const frame_ *f, const synth_vehicle *v, int back, float h) {
  float belt = h * (v->type == 4 ? 0.55f : 0.5f), hood = belt - h * 0.02f;
  synth_rgb roof_col = v->two_tone ? v->trim : v->body;
  float inset = v->type == 0 ? 0.12f : v->type == 4 ? 0.02f : 0.07f;
  float cab[8] = {0.04f, hood, 0.96f, hood, 1 - inset, 0, inset, 0};
  quad(f, cab, roof_col);
  box(f, 0, belt - 0.02f, 1, h * 0.93f, 0.05f, v->body);
  float m = 0.035f;
  float glass[8] = {0.04f + m + 0.01f, hood - m,  0.96f - m - 0.01f, hood - m,
                    1 - inset - m,     m + 0.02f, inset + m,         m + 0.02f};
  quad(f, glass, v->window);
  if (v->sunroof && !back) box(f, 0.38f, 0.005f, 0.62f, m + 0.012f, 0.005f, black);
  if (v->roof_rack) box(f, inset + 0.03f, -0.035f, 1 - inset - 0.03f, -0.012f, 0.005f, black);
  if (v->spoiler && back) box(f, inset, -0.01f, 1 - inset, 0.025f, 0.006f, black);
  if (v->stripe)
    for (int s = 0; s < 2; s++)
      box(f, s ? 0.53f : 0.41f, belt, s ? 0.59f : 0.47f, h * 0.7f, 0, v->trim);
  float ly = belt + h * 0.1f;
  if (!back) {
    box(f, 0.3f, ly - 0.02f, 0.7f, ly + h * 0.12f, 0.02f, black); /* grille */
    ellipse(f, 0.14f, ly + 0.02f, 0.08f, 0.035f, head_light);
    ellipse(f, 0.86f, ly + 0.02f, 0.08f, 0.035f, head_light);
  } else {
    box(f, 0.05f, ly - 0.02f, 0.22f, ly + 0.05f, 0.015f, tail_light);
    box(f, 0.78f, ly - 0.02f, 0.95f, ly + 0.05f, 0.015f, tail_light);
  }
  box(f, 0.4f, h * 0.74f, 0.6f, h * 0.82f, 0.005f, plate);
  box(f, 0.02f, h * 0.84f, 0.98f, h * 0.9f, 0.02f, shade_dark(v->body));
  box(f, 0.06f, h * 0.88f, 0.2f, h, 0.02f, tyre);
  box(f, 0.8f, h * 0.88f, 0.94f, h, 0.02f, tyre);
}

void synth_draw_vehicle(synth_canvas *c, const synth_vehicle *v, const synth_place *at) {
  int t = v->type < 0 || v->type > 4 ? 0 : v->type;
  if (at->view == SYNTH_LEFT || at->view == SYNTH_RIGHT) {
    float L = at->size * 1.02f * v->length_k, h = type_height[t] * v->height_k;
    frame_ f = {c, at->cx - 0.5f * L, at->cy - 0.5f * h * L, L};
    side(&f, v, at->view == SYNTH_RIGHT ? 1 : -1, h);
  } else {
    float W = at->size * 0.92f * v->length_k, h = type_front_height[t] * v->height_k;
    frame_ f = {c, at->cx - 0.5f * W, at->cy - 0.5f * h * W, W};
    end(&f, v, at->view == SYNTH_BACK, h);
  }
}
