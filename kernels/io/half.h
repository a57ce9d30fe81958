/* 16-bit float formats <-> fp32, bit-exact and branch-light.
 *
 *   fp16 (IEEE 754 binary16): 1 sign | 5 exponent (bias 15)  | 10 mantissa
 *   bf16 (bfloat16):          1 sign | 8 exponent (bias 127) |  7 mantissa
 *
 * float -> 16-bit rounds to nearest, ties to even (the IEEE default, what
 * numpy and PyTorch do). fp16: overflow gives +-inf, tiny values become
 * subnormals or signed zero, NaN stays NaN (quieted, top payload bits kept).
 * bf16: a truncation of fp32, so NaN keeps its sign and top payload bits
 * (quieted) and rounding carries into the exponent naturally.
 * 16-bit -> float is exact for every bit pattern. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t half_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline float half_f32_from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static inline float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return half_f32_from_bits(sign | 0x7f800000u | (man << 13)); /* inf, nan */
  if (exp != 0) return half_f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
  if (man == 0) return half_f32_from_bits(sign); /* signed zero */
  /* subnormal: man * 2^-24; normalize so the leading 1 becomes implicit */
  uint32_t e = 113; /* fp32 biased exponent of 2^-14 */
  while (!(man & 0x400u)) {
    man <<= 1;
    e--;
  }
  return half_f32_from_bits(sign | (e << 23) | ((man & 0x3ffu) << 13));
}

static inline uint16_t float_to_half(float f) {
  uint32_t x = half_f32_bits(f);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x > 0x7f800000u) return sign | 0x7e00u | (uint16_t)((x >> 13) & 0x3ffu); /* nan */
  if (x >= 0x477ff000u) return sign | 0x7c00u; /* >= 65520 (or inf) rounds to inf */
  if (x >= 0x38800000u) {                      /* normal half: >= 2^-14 */
    uint32_t h = (x - 0x38000000u) >> 13;      /* rebias exponent 127 -> 15 */
    uint32_t rem = x & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++; /* may carry into exponent */
    return sign | (uint16_t)h;
  }
  if (x <= 0x33000000u) return sign; /* <= 2^-25: rounds (ties even) to zero */
  /* subnormal half: value = m * 2^(e-150) -> units of 2^-24 means m >> (126 - e) */
  uint32_t e = x >> 23;
  uint32_t m = (x & 0x7fffffu) | 0x800000u;
  uint32_t shift = 126 - e; /* 14 .. 24 */
  uint32_t h = m >> shift;
  uint32_t rem = m & ((1u << shift) - 1);
  uint32_t halfway = 1u << (shift - 1);
  if (rem > halfway || (rem == halfway && (h & 1u))) h++; /* 0x3ff + 1 = smallest normal */
  return sign | (uint16_t)h;
}

static inline float bf16_to_float(uint16_t b) {
  return half_f32_from_bits((uint32_t)b << 16);
}

static inline uint16_t float_to_bf16(float f) {
  uint32_t x = half_f32_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet nan */
  x += 0x7fffu + ((x >> 16) & 1u);
  return (uint16_t)(x >> 16);
}

/* Bulk converters; dst and src must not overlap. */
static inline void half_to_float_array(float *dst, const uint16_t *src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = half_to_float(src[i]);
}
static inline void half_from_float_array(uint16_t *dst, const float *src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = float_to_half(src[i]);
}
static inline void bf16_to_float_array(float *dst, const uint16_t *src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = bf16_to_float(src[i]);
}
static inline void bf16_from_float_array(uint16_t *dst, const float *src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = float_to_bf16(src[i]);
}
