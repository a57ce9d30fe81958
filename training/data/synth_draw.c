/* Anti-aliased filled shapes on a float RGB canvas: each shape is a signed distance d (pixels,
 * negative inside); a pixel centre at distance d is covered by clamp(0.5 - d, 0, 1). */
#include <math.h>
#include <stddef.h>

#include "synth.h"

static synth_rgb paint_at(const synth_paint *p, float x, float y) {
  if (p->pattern == SYNTH_PLAIN) return p->a;
  float u = (x - p->x0) / p->sx, v = (y - p->y0) / p->sy;
  int iu = (int)floorf(u / p->period), iv = (int)floorf(v / p->period);
  int second = 0;
  switch (p->pattern) {
  case SYNTH_HSTRIPES: second = iv & 1; break;
  case SYNTH_VSTRIPES: second = iu & 1; break;
  case SYNTH_CHECK: second = (iu + iv) & 1; break;
  case SYNTH_LOGO: second = p->front && u > 0.3f && u < 0.7f && v > 0.18f && v < 0.48f; break;
  case SYNTH_TWO_TONE: second = v > 0.45f; break;
  default: break;
  }
  return second ? p->b : p->a;
}

static void blend(synth_canvas *c, int x, int y, float alpha, synth_rgb col) {
  float *px = c->rgb + 3 * ((size_t)y * c->w + x);
  px[0] += alpha * (col.r - px[0]);
  px[1] += alpha * (col.g - px[1]);
  px[2] += alpha * (col.b - px[2]);
}

/* Pixel range [lo, hi) of a span [a - pad, b + pad] clipped to [0, n). */
static void span(float a, float b, float pad, int n, int *lo, int *hi) {
  float l = floorf(a - pad), h = ceilf(b + pad);
  *lo = l < 0 ? 0 : l > n ? n : (int)l;
  *hi = h < 0 ? 0 : h > n ? n : (int)h;
}

void synth_capsule(synth_canvas *c, float ax, float ay, float bx, float by, float r,
                   const synth_paint *p) {
  int x0, x1, y0, y1;
  span(fminf(ax, bx), fmaxf(ax, bx), r + 1, c->w, &x0, &x1);
  span(fminf(ay, by), fmaxf(ay, by), r + 1, c->h, &y0, &y1);
  float dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) {
      float px = x + 0.5f - ax, py = y + 0.5f - ay;
      float t = len2 > 0 ? (px * dx + py * dy) / len2 : 0;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      float ex = px - t * dx, ey = py - t * dy;
      float alpha = 0.5f - (sqrtf(ex * ex + ey * ey) - r);
      if (alpha > 0) blend(c, x, y, alpha > 1 ? 1 : alpha, paint_at(p, x + 0.5f, y + 0.5f));
    }
}

void synth_ellipse(synth_canvas *c, float cx, float cy, float rx, float ry, const synth_paint *p) {
  if (rx <= 0 || ry <= 0) return;
  int x0, x1, y0, y1;
  span(cx - rx, cx + rx, 1, c->w, &x0, &x1);
  span(cy - ry, cy + ry, 1, c->h, &y0, &y1);
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) {
      float px = x + 0.5f - cx, py = y + 0.5f - cy;
      float k0 = sqrtf((px / rx) * (px / rx) + (py / ry) * (py / ry));
      float k1 = sqrtf((px / (rx * rx)) * (px / (rx * rx)) + (py / (ry * ry)) * (py / (ry * ry)));
      float d = k1 > 0 ? k0 * (k0 - 1) / k1 : -fminf(rx, ry);
      float alpha = 0.5f - d;
      if (alpha > 0) blend(c, x, y, alpha > 1 ? 1 : alpha, paint_at(p, x + 0.5f, y + 0.5f));
    }
}

void synth_box(synth_canvas *c, float bx0, float by0, float bx1, float by1, float r,
               const synth_paint *p) {
  float hx = 0.5f * (bx1 - bx0), hy = 0.5f * (by1 - by0);
  if (hx <= 0 || hy <= 0) return;
  float cx = bx0 + hx, cy = by0 + hy;
  r = fminf(r, fminf(hx, hy));
  int x0, x1, y0, y1;
  span(bx0, bx1, 1, c->w, &x0, &x1);
  span(by0, by1, 1, c->h, &y0, &y1);
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) {
      float qx = fabsf(x + 0.5f - cx) - (hx - r), qy = fabsf(y + 0.5f - cy) - (hy - r);
      float ox = fmaxf(qx, 0), oy = fmaxf(qy, 0);
      float d = sqrtf(ox * ox + oy * oy) + fminf(fmaxf(qx, qy), 0) - r;
      float alpha = 0.5f - d;
      if (alpha > 0) blend(c, x, y, alpha > 1 ? 1 : alpha, paint_at(p, x + 0.5f, y + 0.5f));
    }
}

void synth_polygon(synth_canvas *c, const float *xy, int n, const synth_paint *p) {
  if (n < 3 || n > 8) return;
  float minx = xy[0], maxx = xy[0], miny = xy[1], maxy = xy[1], area2 = 0;
  for (int i = 0; i < n; i++) {
    const float *a = xy + 2 * i, *b = xy + 2 * ((i + 1) % n);
    minx = fminf(minx, a[0]), maxx = fmaxf(maxx, a[0]);
    miny = fminf(miny, a[1]), maxy = fmaxf(maxy, a[1]);
    area2 += a[0] * b[1] - b[0] * a[1];
  }
  if (area2 == 0) return;
  float sign = area2 > 0 ? 1.0f : -1.0f; /* outward normals for either winding */
  float nx[8], ny[8], off[8];
  for (int i = 0; i < n; i++) {
    const float *a = xy + 2 * i, *b = xy + 2 * ((i + 1) % n);
    float ex = b[0] - a[0], ey = b[1] - a[1], len = sqrtf(ex * ex + ey * ey);
    if (len == 0) len = 1;
    nx[i] = sign * ey / len;
    ny[i] = -sign * ex / len;
    off[i] = nx[i] * a[0] + ny[i] * a[1];
  }
  int x0, x1, y0, y1;
  span(minx, maxx, 1, c->w, &x0, &x1);
  span(miny, maxy, 1, c->h, &y0, &y1);
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) {
      float d = -1e9f;
      for (int i = 0; i < n; i++) d = fmaxf(d, nx[i] * (x + 0.5f) + ny[i] * (y + 0.5f) - off[i]);
      float alpha = 0.5f - d;
      if (alpha > 0) blend(c, x, y, alpha > 1 ? 1 : alpha, paint_at(p, x + 0.5f, y + 0.5f));
    }
}
