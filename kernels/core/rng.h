/* Deterministic random numbers (xoshiro256**, seeded by splitmix64) for
 * initialisation, sampling and augmentation. Same sequence on every platform. */
#pragma once

#include <math.h>
#include <stdint.h>

typedef struct reid_rng {
  uint64_t s[4];
} reid_rng;

static inline uint64_t reid_splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline void reid_rng_seed(reid_rng *r, uint64_t seed) {
  for (int i = 0; i < 4; i++) r->s[i] = reid_splitmix64(&seed);
}

static inline uint64_t reid_rng_next(reid_rng *r) {
  uint64_t *s = r->s;
  uint64_t x = s[1] * 5;
  uint64_t result = ((x << 7) | (x >> 57)) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = (s[3] << 45) | (s[3] >> 19);
  return result;
}

/* uniform in [0, 1) with 24 random bits */
static inline float reid_rng_uniform(reid_rng *r) {
  return (float)(reid_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

/* uniform integer in [0, n) */
static inline uint32_t reid_rng_below(reid_rng *r, uint32_t n) {
  return (uint32_t)(((reid_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* standard normal (Box-Muller, one value per call) */
static inline float reid_rng_normal(reid_rng *r) {
  double u1 = ((reid_rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0); /* (0, 1] */
  double u2 = (reid_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
