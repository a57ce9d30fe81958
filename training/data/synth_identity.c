/* What identities look like: drawn from palettes with a per-identity tint, so colours
 * repeat across identities (as in real data) while each identity stays the same in every
 * camera. Every fourth identity is a hard case: a copy of the previous identity with exactly
 * one pattern or accessory changed. */
#include <math.h>
#include <string.h>

#include "synth.h"

void synth_stream(reid_rng *r, uint64_t seed, uint64_t purpose, uint64_t index) {
  uint64_t x = seed ^ (purpose * 0xD1B54A32D192ED03ull);
  uint64_t k = reid_splitmix64(&x) ^ ((index + 1) * 0x9E3779B97F4A7C15ull);
  reid_rng_seed(r, reid_splitmix64(&k));
}

static synth_rgb rgb(float r, float g, float b) {
  return (synth_rgb){r, g, b};
}

/* Clothing colours, dark ones listed twice (they dominate street clothing). */
static const synth_rgb clothes[] = {
    {0.08f, 0.08f, 0.09f}, {0.08f, 0.08f, 0.09f}, {0.92f, 0.92f, 0.90f}, {0.50f, 0.50f, 0.52f},
    {0.25f, 0.25f, 0.27f}, {0.25f, 0.25f, 0.27f}, {0.10f, 0.14f, 0.35f}, {0.10f, 0.14f, 0.35f},
    {0.20f, 0.35f, 0.75f}, {0.55f, 0.70f, 0.88f}, {0.75f, 0.12f, 0.12f}, {0.45f, 0.08f, 0.12f},
    {0.15f, 0.50f, 0.22f}, {0.40f, 0.42f, 0.20f}, {0.76f, 0.68f, 0.50f}, {0.42f, 0.27f, 0.15f},
    {0.92f, 0.80f, 0.15f}, {0.90f, 0.55f, 0.70f}, {0.45f, 0.22f, 0.55f}, {0.95f, 0.50f, 0.10f},
};
static const synth_rgb skins[] = {
    {0.96f, 0.80f, 0.69f}, {0.88f, 0.67f, 0.52f}, {0.76f, 0.55f, 0.40f},
    {0.55f, 0.38f, 0.26f}, {0.36f, 0.24f, 0.17f},
};
static const synth_rgb hairs[] = {
    {0.05f, 0.04f, 0.04f}, {0.20f, 0.13f, 0.08f}, {0.40f, 0.26f, 0.14f},
    {0.80f, 0.68f, 0.40f}, {0.60f, 0.60f, 0.60f},
};
/* Car paints: white, black, silver, grey, red, blue, dark blue, yellow, green, brown, orange. */
static const synth_rgb paints[] = {
    {0.93f, 0.93f, 0.93f}, {0.93f, 0.93f, 0.93f}, {0.07f, 0.07f, 0.08f}, {0.07f, 0.07f, 0.08f},
    {0.72f, 0.73f, 0.75f}, {0.45f, 0.46f, 0.48f}, {0.72f, 0.10f, 0.10f}, {0.20f, 0.35f, 0.72f},
    {0.10f, 0.14f, 0.32f}, {0.90f, 0.78f, 0.12f}, {0.18f, 0.45f, 0.22f}, {0.42f, 0.28f, 0.16f},
    {0.92f, 0.48f, 0.10f},
};

#define COUNT(a) ((uint32_t)(sizeof(a) / sizeof *(a)))

static synth_rgb tint(synth_rgb c, reid_rng *r, float amount) {
  float k = 1 + amount * (2 * reid_rng_uniform(r) - 1);
  c.r = fminf(1, fmaxf(0, c.r * k + amount * 0.5f * (2 * reid_rng_uniform(r) - 1)));
  c.g = fminf(1, fmaxf(0, c.g * k + amount * 0.5f * (2 * reid_rng_uniform(r) - 1)));
  c.b = fminf(1, fmaxf(0, c.b * k + amount * 0.5f * (2 * reid_rng_uniform(r) - 1)));
  return c;
}

static synth_rgb pick(const synth_rgb *palette, uint32_t n, reid_rng *r, float amount) {
  return tint(palette[reid_rng_below(r, n)], r, amount);
}

static float range(reid_rng *r, float lo, float hi) {
  return lo + (hi - lo) * reid_rng_uniform(r);
}

static void person_make(reid_rng *r, synth_person *p) {
  p->skin = pick(skins, COUNT(skins), r, 0.04f);
  p->hair = pick(hairs, COUNT(hairs), r, 0.05f);
  p->upper = pick(clothes, COUNT(clothes), r, 0.06f);
  do p->upper2 = pick(clothes, COUNT(clothes), r, 0.06f);
  while (fabsf(p->upper2.r - p->upper.r) + fabsf(p->upper2.g - p->upper.g) +
             fabsf(p->upper2.b - p->upper.b) <
         0.35f);
  p->lower = pick(clothes, COUNT(clothes), r, 0.06f);
  p->shoes = reid_rng_uniform(r) < 0.6f ? rgb(0.08f, 0.08f, 0.08f)
                                        : pick(clothes, COUNT(clothes), r, 0.05f);
  p->bag = pick(clothes, COUNT(clothes), r, 0.05f);
  p->hat = pick(clothes, COUNT(clothes), r, 0.05f);
  static const float pattern_weights[SYNTH_N_PATTERNS] = {0.45f, 0.14f, 0.08f, 0.1f, 0.13f, 0.1f};
  float u = reid_rng_uniform(r), acc = 0;
  p->upper_pattern = SYNTH_PLAIN;
  for (int i = 0; i < SYNTH_N_PATTERNS; i++)
    if (u < (acc += pattern_weights[i])) {
      p->upper_pattern = (synth_pattern)i;
      break;
    }
  p->long_sleeves = reid_rng_uniform(r) < 0.6f;
  float lower = reid_rng_uniform(r);
  p->lower_type = lower < 0.7f ? 0 : lower < 0.88f ? 1 : 2;
  p->long_hair = reid_rng_uniform(r) < 0.3f;
  p->hat_on = reid_rng_uniform(r) < 0.15f;
  float bag = reid_rng_uniform(r);
  p->bag_type = bag < 0.5f ? 0 : bag < 0.78f ? 1 : 2;
  p->bag_side = reid_rng_uniform(r) < 0.5f ? -1 : 1;
  p->height_k = range(r, 0.88f, 1.0f);
  p->build = range(r, 0.85f, 1.2f);
  p->head_k = range(r, 0.9f, 1.12f);
  p->leg_k = range(r, 0.94f, 1.06f);
  p->stripe_period = range(r, 0.09f, 0.16f);
}

static void vehicle_make(reid_rng *r, synth_vehicle *v) {
  float t = reid_rng_uniform(r);
  v->type = t < 0.42f ? 0 : t < 0.68f ? 1 : t < 0.82f ? 2 : t < 0.94f ? 3 : 4;
  v->body = pick(paints, COUNT(paints), r, 0.05f);
  v->trim =
      reid_rng_uniform(r) < 0.5f ? rgb(0.1f, 0.1f, 0.1f) : pick(paints, COUNT(paints), r, 0.05f);
  float w = range(r, 0.12f, 0.3f);
  v->window = rgb(w * 0.9f, w, w * range(r, 1.0f, 1.3f));
  v->rim = reid_rng_uniform(r) < 0.5f ? rgb(0.7f, 0.7f, 0.72f) : rgb(0.15f, 0.15f, 0.15f);
  v->stripe = reid_rng_uniform(r) < 0.2f;
  v->roof_rack = reid_rng_uniform(r) < 0.2f;
  v->sunroof = reid_rng_uniform(r) < 0.25f;
  v->spoiler = reid_rng_uniform(r) < 0.15f;
  v->two_tone = reid_rng_uniform(r) < 0.15f;
  v->length_k = range(r, 0.9f, 1.0f);
  v->height_k = range(r, 0.92f, 1.08f);
}

/* The hard case: one attribute of the previous identity changed. */
static void person_change_one(reid_rng *r, synth_person *p) {
  switch (reid_rng_below(r, 4)) {
  case 0: { /* another pattern in the same two colours */
    synth_pattern old = p->upper_pattern;
    do p->upper_pattern = (synth_pattern)reid_rng_below(r, SYNTH_N_PATTERNS);
    while (p->upper_pattern == old);
    break;
  }
  case 1: p->bag_type = (p->bag_type + 1 + (int)reid_rng_below(r, 2)) % 3; break;
  case 2: p->hat_on = !p->hat_on; break;
  default: p->long_sleeves = !p->long_sleeves; break;
  }
}

static void vehicle_change_one(reid_rng *r, synth_vehicle *v) {
  switch (reid_rng_below(r, 5)) {
  case 0: v->stripe = !v->stripe; break;
  case 1: v->roof_rack = !v->roof_rack; break;
  case 2: v->sunroof = !v->sunroof; break;
  case 3: v->spoiler = !v->spoiler; break;
  default: v->two_tone = !v->two_tone; break;
  }
}

void synth_identity_make(synth_kind kind, uint64_t seed, int index, synth_identity *out) {
  memset(out, 0, sizeof *out);
  out->kind = kind;
  reid_rng r;
  int hard = index % 4 == 3;
  synth_stream(&r, seed, 10, (uint64_t)(hard ? index - 1 : index));
  if (kind == SYNTH_PERSON)
    person_make(&r, &out->person);
  else
    vehicle_make(&r, &out->vehicle);
  if (!hard) return;
  synth_stream(&r, seed, 13, (uint64_t)index);
  if (kind == SYNTH_PERSON)
    person_change_one(&r, &out->person);
  else
    vehicle_change_one(&r, &out->vehicle);
}
