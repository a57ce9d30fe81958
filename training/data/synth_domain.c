/* Domains of `reid-train synth --domain N` (synth.h): what sets one dataset apart from
 * another, as Market-1501 differs from DukeMTMC or MSMT17. Domain N > 0 draws, from N
 * alone (not the seed: the same domain can be rendered with other people):
 *   palette   the people's clothing (and vehicles' paint): a hue rotation about the grey
 *             axis, a saturation and a value factor (season, region, fashion);
 *   background every camera's background style, its walls and ground tinted one way;
 *   lighting  brightness, contrast and gamma factors, extra sensor noise and blur
 *             (indoor, outdoor, night, low-end cameras);
 *   cast      a colour cast shared by all the cameras (white balance of one installation),
 *             on top of each camera's own.
 * Domain 0 changes nothing: the generator's output stays what it was. */
#include <math.h>
#include <string.h>

#include "synth.h"

static float range(reid_rng *r, float lo, float hi) {
  return lo + (hi - lo) * reid_rng_uniform(r);
}
static float clamp01(float v) {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

void synth_domain_make(int index, synth_domain *d) {
  memset(d, 0, sizeof *d);
  d->index = index;
  d->saturation = d->value = 1;
  d->bg_style = -1;
  d->bg_tint = d->cast = (synth_rgb){1, 1, 1};
  d->brightness = d->contrast = d->gamma = 1;
  if (index <= 0) return;
  reid_rng r;
  synth_stream(&r, 0x646F6D61696EULL, 20, (uint64_t)index);
  /* palette: domains 1, 2, 3, ... rotate the hue by about 0.9 rad more each, so that
   * consecutive domains never share a palette */
  d->hue = fmodf(0.9f * (float)index + range(&r, -0.25f, 0.25f), 6.2831853f);
  d->saturation = range(&r, 0.45f, 1.35f);
  d->value = range(&r, 0.7f, 1.2f);
  d->bg_style = (int)reid_rng_below(&r, 4);
  d->bg_tint = (synth_rgb){range(&r, 0.6f, 1.3f), range(&r, 0.6f, 1.3f), range(&r, 0.6f, 1.3f)};
  /* four domains in a row: four different casts */
  synth_rgb dirn = synth_cast_directions[(index - 1) % 4];
  float amount = range(&r, 0.15f, 0.3f);
  d->cast = (synth_rgb){1 + amount * dirn.r, 1 + amount * dirn.g, 1 + amount * dirn.b};
  d->brightness = range(&r, 0.6f, 1.3f);
  d->contrast = range(&r, 0.7f, 1.2f);
  d->gamma = range(&r, 0.8f, 1.25f);
  d->noise = range(&r, 0, 0.03f);
  d->blur = range(&r, 0, 0.8f);
}

static synth_rgb mul(synth_rgb a, synth_rgb b) {
  return (synth_rgb){a.r * b.r, a.g * b.g, a.b * b.b};
}

void synth_domain_camera(const synth_domain *d, synth_camera *c) {
  if (d->index <= 0) return;
  c->gain = mul(c->gain, d->cast);
  c->brightness *= d->brightness;
  c->contrast *= d->contrast;
  c->gamma *= d->gamma;
  c->noise += d->noise;
  c->blur += d->blur;
  c->bg_style = d->bg_style;
  synth_rgb t = d->bg_tint;
  c->wall =
      (synth_rgb){clamp01(c->wall.r * t.r), clamp01(c->wall.g * t.g), clamp01(c->wall.b * t.b)};
  c->wall2 =
      (synth_rgb){clamp01(c->wall2.r * t.r), clamp01(c->wall2.g * t.g), clamp01(c->wall2.b * t.b)};
  c->ground = (synth_rgb){clamp01(c->ground.r * t.r), clamp01(c->ground.g * t.g),
                          clamp01(c->ground.b * t.b)};
}

/* A colour through the domain's palette: rotated about the grey axis (Rodrigues, axis
 * (1, 1, 1) / sqrt 3), saturation scaled about its grey, value scaled. */
static synth_rgb recolour(const synth_domain *d, synth_rgb c) {
  const float cs = cosf(d->hue), sn = sinf(d->hue), k = (1 - cs) / 3, s3 = sn / sqrtf(3);
  synth_rgb o = {(cs + k) * c.r + (k - s3) * c.g + (k + s3) * c.b,
                 (k + s3) * c.r + (cs + k) * c.g + (k - s3) * c.b,
                 (k - s3) * c.r + (k + s3) * c.g + (cs + k) * c.b};
  float grey = (o.r + o.g + o.b) / 3;
  o.r = clamp01((grey + d->saturation * (o.r - grey)) * d->value);
  o.g = clamp01((grey + d->saturation * (o.g - grey)) * d->value);
  o.b = clamp01((grey + d->saturation * (o.b - grey)) * d->value);
  return o;
}

void synth_domain_identity(const synth_domain *d, synth_identity *id) {
  if (d->index <= 0) return;
  if (id->kind == SYNTH_PERSON) {
    synth_person *p = &id->person; /* clothing and accessories; skin and hair stay */
    synth_rgb *cs[] = {&p->upper, &p->upper2, &p->lower, &p->shoes, &p->bag, &p->hat};
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) *cs[i] = recolour(d, *cs[i]);
  } else {
    id->vehicle.body = recolour(d, id->vehicle.body);
    id->vehicle.trim = recolour(d, id->vehicle.trim);
  }
}
