/* A walking person, drawn back to front with capsules (limbs), polygons (torso, skirt),
 * ellipses (head, hair, shoes) and boxes (bags). Lengths are fractions of the body height:
 *   head 0 .. 0.13, shoulders 0.17, hips ~0.53, knees ~0.74, ankles 0.955, soles 1. */
#include <math.h>

#include "synth.h"

typedef struct body {
  const synth_person *p;
  synth_canvas *c;
  float cx, top, H; /* centre x, top y, height in pixels */
  float phase;
  int side, dir, back; /* side view facing dir (+1 right, -1 left); back view */
} body;

static float X(const body *b, float f) {
  return b->cx + f * b->H;
}
static float Y(const body *b, float f) {
  return b->top + f * b->H;
}
static synth_rgb shade(synth_rgb c, float k) {
  return (synth_rgb){c.r * k, c.g * k, c.b * k};
}

/* One leg from the hip (hx, hip_y) with thigh/calf angles (radians, 0 = straight down,
 * positive = forward in the facing direction); lift raises the foot (front/back views). */
static void leg(const body *b, float hx, float a_thigh, float a_calf, float lift, float k) {
  const synth_person *p = b->p;
  float hip_y = 0.53f - 0.25f * (p->leg_k - 1), ankle_y = 0.955f - lift;
  float len = (ankle_y - hip_y) * 0.5f, r = 0.036f * p->build;
  float kx = hx + b->dir * len * sinf(a_thigh), ky = hip_y + len * cosf(a_thigh);
  float ax = kx + b->dir * len * sinf(a_calf), ay = ky + len * cosf(a_calf);
  synth_paint lower = synth_solid(shade(p->lower, k)), skin = synth_solid(shade(p->skin, k));
  synth_paint thigh = p->lower_type == 2 ? skin : lower, calf = p->lower_type == 0 ? lower : skin;
  synth_capsule(b->c, X(b, hx), Y(b, hip_y), X(b, kx), Y(b, ky), r * b->H, &thigh);
  synth_capsule(b->c, X(b, kx), Y(b, ky), X(b, ax), Y(b, ay), 0.86f * r * b->H, &calf);
  synth_paint shoe = synth_solid(shade(p->shoes, k));
  float toe = b->side ? b->dir * 0.025f : 0;
  synth_ellipse(b->c, X(b, ax + toe), Y(b, ay + 0.02f), (b->side ? 0.05f : 0.035f) * b->H,
                0.022f * b->H, &shoe);
}

/* One arm from the shoulder; angle as for legs. */
static void arm(const body *b, float sx, float angle, float spread, float k) {
  const synth_person *p = b->p;
  float sy = 0.19f, len = 0.16f, r = 0.026f * p->build;
  float ex = sx + b->dir * len * sinf(angle) + spread, ey = sy + len * cosf(angle);
  float bend = b->side ? 0.35f : 0.0f;
  float hx = ex + b->dir * len * sinf(angle + bend) + spread * 0.5f,
        hy = ey + len * cosf(angle + bend);
  synth_paint sleeve = synth_solid(shade(p->upper, k)), skin = synth_solid(shade(p->skin, k));
  synth_capsule(b->c, X(b, sx), Y(b, sy), X(b, ex), Y(b, ey), r * b->H, &sleeve);
  synth_capsule(b->c, X(b, ex), Y(b, ey), X(b, hx), Y(b, hy), 0.85f * r * b->H,
                p->long_sleeves ? &sleeve : &skin);
  synth_ellipse(b->c, X(b, hx), Y(b, hy + 0.01f), 0.022f * b->H, 0.025f * b->H, &skin);
}

static void torso(const body *b) {
  const synth_person *p = b->p;
  float hip_y = 0.53f - 0.25f * (p->leg_k - 1);
  float sw = (b->side ? 0.065f : 0.105f) * p->build, hw = (b->side ? 0.06f : 0.085f) * p->build;
  float lean = b->side ? b->dir * 0.01f : 0;
  float xy[8] = {X(b, lean - sw), Y(b, 0.155f),        X(b, lean + sw), Y(b, 0.155f),
                 X(b, hw),        Y(b, hip_y + 0.02f), X(b, -hw),       Y(b, hip_y + 0.02f)};
  synth_paint top = {
      p->upper,     p->upper2,     p->upper_pattern,        p->stripe_period,    X(b, -sw),
      Y(b, 0.155f), 2 * sw * b->H, (hip_y - 0.135f) * b->H, !b->back && !b->side};
  synth_polygon(b->c, xy, 4, &top);
  if (p->lower_type == 2) { /* skirt: a trapezoid from the hips to the knees */
    float sk[8] = {X(b, -hw),        Y(b, hip_y - 0.01f), X(b, hw),          Y(b, hip_y - 0.01f),
                   X(b, hw + 0.04f), Y(b, hip_y + 0.2f),  X(b, -hw - 0.04f), Y(b, hip_y + 0.2f)};
    synth_paint lower = synth_solid(p->lower);
    synth_polygon(b->c, sk, 4, &lower);
  } else { /* waist band of the trousers/shorts over the torso's lower edge */
    synth_paint lower = synth_solid(p->lower);
    synth_box(b->c, X(b, -hw), Y(b, hip_y - 0.015f), X(b, hw), Y(b, hip_y + 0.05f), 0.01f * b->H,
              &lower);
  }
}

static void head(const body *b) {
  const synth_person *p = b->p;
  float r = 0.062f * p->head_k, cy = r + 0.008f, fwd = b->side ? b->dir * 0.012f : 0;
  synth_paint skin = synth_solid(p->skin), hair = synth_solid(p->hair);
  synth_capsule(b->c, X(b, 0), Y(b, cy), X(b, 0), Y(b, 0.17f), 0.028f * b->H, &skin); /* neck */
  if (b->back) {
    synth_ellipse(b->c, X(b, 0), Y(b, cy), 1.03f * r * b->H, 1.02f * r * b->H, &hair);
  } else {
    synth_ellipse(b->c, X(b, fwd), Y(b, cy), 0.92f * r * b->H, r * b->H, &skin);
    if (b->side) /* hair over the back half of the head */
      synth_ellipse(b->c, X(b, -b->dir * 0.35f * r), Y(b, cy - 0.2f * r), 0.8f * r * b->H,
                    0.85f * r * b->H, &hair);
    else
      synth_ellipse(b->c, X(b, 0), Y(b, cy - 0.45f * r), 0.98f * r * b->H, 0.6f * r * b->H, &hair);
  }
  if (p->long_hair && (b->back || b->side)) {
    float x0 = b->side ? -b->dir * 0.9f * r : -0.85f * r,
          x1 = b->side ? -b->dir * 0.1f * r : 0.85f * r;
    synth_box(b->c, X(b, fminf(x0, x1)), Y(b, cy), X(b, fmaxf(x0, x1)), Y(b, 0.25f), 0.02f * b->H,
              &hair);
  }
  if (p->hat_on) {
    synth_paint hat = synth_solid(p->hat);
    float brim = b->side ? b->dir * 0.5f * r : 0;
    synth_ellipse(b->c, X(b, brim), Y(b, cy - 0.55f * r), (b->side ? 1.1f : 1.3f) * r * b->H,
                  0.22f * r * b->H, &hat);
    synth_ellipse(b->c, X(b, 0), Y(b, cy - 0.7f * r), 0.95f * r * b->H, 0.55f * r * b->H, &hat);
  }
}

/* Backpack on the back, shoulder bag at the hip; `front_layer` selects what is drawn over
 * the torso (1) or behind it (0). */
static void bags(const body *b, int front_layer) {
  const synth_person *p = b->p;
  if (!p->bag_type) return;
  synth_paint bag = synth_solid(p->bag), dark = synth_solid(shade(p->bag, 0.7f));
  float hip_y = 0.53f - 0.25f * (p->leg_k - 1), sw = 0.105f * p->build;
  if (p->bag_type == 1) {
    if (b->back && front_layer)
      synth_box(b->c, X(b, -0.8f * sw), Y(b, 0.19f), X(b, 0.8f * sw), Y(b, 0.43f), 0.02f * b->H,
                &bag);
    else if (!b->back && !b->side && front_layer) /* straps */
      for (int s = -1; s <= 1; s += 2)
        synth_capsule(b->c, X(b, s * 0.6f * sw), Y(b, 0.165f), X(b, s * 0.55f * sw), Y(b, 0.36f),
                      0.012f * b->H, &dark);
    else if (b->side && !front_layer) {
      float x0 = -b->dir * 0.04f, x1 = -b->dir * 0.135f;
      synth_box(b->c, X(b, fminf(x0, x1)), Y(b, 0.19f), X(b, fmaxf(x0, x1)), Y(b, 0.42f),
                0.02f * b->H, &bag);
    }
    return;
  }
  /* shoulder bag: body side +-1 (the person's right is the viewer's left from the front) */
  int screen = b->back ? p->bag_side : -p->bag_side;
  if (b->side) {
    int near = (b->dir == 1) == (p->bag_side == -1);
    if (near != front_layer) return;
    synth_box(b->c, X(b, -0.06f), Y(b, hip_y - 0.06f), X(b, 0.05f), Y(b, hip_y + 0.06f),
              0.01f * b->H, &bag);
    return;
  }
  if (!front_layer) return;
  float bx = screen * (0.085f * p->build + 0.045f);
  synth_capsule(b->c, X(b, -screen * 0.07f), Y(b, 0.165f), X(b, bx), Y(b, hip_y - 0.05f),
                0.009f * b->H, &dark);
  synth_box(b->c, X(b, bx - 0.045f), Y(b, hip_y - 0.06f), X(b, bx + 0.045f), Y(b, hip_y + 0.06f),
            0.01f * b->H, &bag);
}

void synth_draw_person(synth_canvas *c, const synth_person *p, const synth_place *at) {
  body b = {p, c, at->cx, 0, at->size * p->height_k, at->phase, 0, 1, 0};
  b.side = at->view == SYNTH_LEFT || at->view == SYNTH_RIGHT;
  b.dir = at->view == SYNTH_LEFT ? -1 : 1;
  b.back = at->view == SYNTH_BACK;
  float bob = 0.008f * fabsf(sinf(at->phase));
  b.top = at->cy + 0.5f * at->size - b.H - bob * b.H;
  float s = sinf(at->phase);
  if (b.side) {
    float swing = 0.42f * s;
    float bend_near = 0.5f * fmaxf(0, sinf(at->phase + 1.2f)),
          bend_far = 0.5f * fmaxf(0, -sinf(at->phase + 1.2f));
    arm(&b, 0, 0.35f * s, 0, 0.72f); /* far arm, in shade */
    leg(&b, 0, -swing, -swing - bend_far, 0, 0.72f);
    bags(&b, 0);
    leg(&b, 0, swing, swing - bend_near, 0, 1);
    torso(&b);
    head(&b);
    bags(&b, 1);
    arm(&b, 0, -0.35f * s, 0, 1);
  } else {
    float sw = 0.105f * p->build - 0.012f, legx = 0.045f * p->build;
    bags(&b, 0);
    leg(&b, -legx, 0, 0, 0.025f * fmaxf(0, s), 1);
    leg(&b, legx, 0, 0, 0.025f * fmaxf(0, -s), 1);
    torso(&b);
    arm(&b, -sw, 0.02f * s, -0.018f, 1);
    arm(&b, sw, -0.02f * s, 0.018f, 1);
    bags(&b, 1);
    head(&b);
  }
}
