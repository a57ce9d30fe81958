/* fp16 / bf16 conversions: exhaustive over all 16-bit patterns, rounding at
 * every midpoint, and known values. */
#include <math.h>

#include "half.h"
#include "status.h"
#include "test_util.h"

/* Independent reference for an fp16 pattern's value, in double. */
static double half_ref(uint16_t h) {
  int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
  return sign ? -v : v;
}

static void test_fp16_exhaustive(void) {
  int bad_value = 0, bad_trip = 0;
  for (uint32_t i = 0; i < 65536; i++) {
    uint16_t h = (uint16_t)i;
    float f = half_to_float(h);
    double ref = half_ref(h);
    if (isnan(ref)) {
      if (!isnan(f) || !!signbit(f) != (int)(h >> 15)) bad_value++;
      /* NaN comes back NaN with its sign and payload, quieted */
      if (float_to_half(f) != (h | 0x200)) bad_trip++;
      continue;
    }
    if ((double)f != ref || !!signbit(f) != (int)(h >> 15)) bad_value++;
    if (float_to_half(f) != h) bad_trip++;
  }
  CHECK(bad_value == 0, "%d fp16 patterns decoded wrongly", bad_value);
  CHECK(bad_trip == 0, "%d fp16 patterns do not round-trip", bad_trip);
}

/* Between every pair of adjacent finite fp16 values (both signs): the exact
 * midpoint rounds to the even one, a float ulp either side to the nearer. */
static void test_fp16_midpoints(void) {
  int bad = 0;
  for (uint16_t h = 0; h < 0x7bff; h++) {
    for (int s = 0; s < 2; s++) {
      uint16_t sign = s ? 0x8000 : 0;
      double a = half_ref(h), b = half_ref((uint16_t)(h + 1));
      float mid = (float)((a + b) / 2); /* exact: 12 significant bits */
      uint16_t even = (h & 1) ? (uint16_t)(h + 1) : h;
      float m = s ? -mid : mid;
      if (float_to_half(m) != (even | sign)) bad++;
      if (float_to_half(nextafterf(m, s ? -INFINITY : INFINITY)) != ((h + 1) | sign)) bad++;
      if (float_to_half(nextafterf(m, 0)) != (h | sign)) bad++;
    }
  }
  CHECK(bad == 0, "%d fp16 midpoint roundings wrong", bad);
  /* the top: 65520 is the midpoint to the (virtual) 65536 -> inf; just below -> 65504 */
  CHECK(float_to_half(65520.0f) == 0x7c00, "65520 -> 0x%04x", float_to_half(65520.0f));
  CHECK(float_to_half(nextafterf(65520.0f, 0)) == 0x7bff, "just below 65520");
  CHECK(float_to_half(-65520.0f) == 0xfc00, "-65520");
  /* the bottom: 2^-25 ties to 0, anything above rounds up to the smallest subnormal */
  CHECK(float_to_half(ldexpf(1, -25)) == 0x0000, "2^-25 -> 0x%04x", float_to_half(ldexpf(1, -25)));
  CHECK(float_to_half(nextafterf(ldexpf(1, -25), 1)) == 0x0001, "just above 2^-25");
  CHECK(float_to_half(-ldexpf(1, -26)) == 0x8000, "-2^-26 -> -0");
  CHECK(float_to_half(1e-30f) == 0 && float_to_half(-1e-30f) == 0x8000, "tiny -> signed zero");
}

static void test_fp16_known(void) {
  static const struct {
    float f;
    uint16_t h;
  } cases[] = {
      {0.0f, 0x0000},        {1.0f, 0x3c00},           {-2.0f, 0xc000},
      {0.5f, 0x3800},        {65504.0f, 0x7bff},       {0.1f, 0x2e66},
      {1.0f / 3, 0x3555},    {5.9604645e-08f, 0x0001}, {6.1035156e-05f, 0x0400},
      {INFINITY, 0x7c00},    {-INFINITY, 0xfc00},      {1e6f, 0x7c00},
      {3.14159265f, 0x4248}, {-0.0f, 0x8000},          {6.0975552e-05f, 0x03ff},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint16_t h = float_to_half(cases[i].f);
    CHECK(h == cases[i].h, "float_to_half(%g) = 0x%04x, want 0x%04x", (double)cases[i].f, h,
          cases[i].h);
  }
  CHECK(isnan(half_to_float(float_to_half(NAN))), "NaN survives");
  CHECK(float_to_half(half_f32_from_bits(0x7f800001u)) == 0x7e00, "signalling NaN is quieted");
}

static double bf16_ref_value(uint32_t hi16) { /* value of bf16 pattern; 0x7f80 as 2^128 */
  if ((hi16 & 0x7fff) == 0x7f80) return (hi16 & 0x8000) ? -ldexp(1, 128) : ldexp(1, 128);
  return (double)half_f32_from_bits(hi16 << 16);
}

static void test_bf16(void) {
  int bad = 0;
  for (uint32_t i = 0; i < 65536; i++) {
    uint16_t b = (uint16_t)i;
    float f = bf16_to_float(b);
    if (half_f32_bits(f) != (uint32_t)b << 16) bad++;
    uint16_t back = float_to_bf16(f);
    if (isnan(f) ? back != (b | 0x40) : back != b) bad++;
  }
  CHECK(bad == 0, "%d bf16 patterns do not round-trip", bad);

  /* random finite floats against nearest-even chosen in double */
  test_rng rng = test_rng_make(7);
  bad = 0;
  for (int k = 0; k < 1000000; k++) {
    uint32_t x = (uint32_t)test_rng_u64(&rng);
    if ((x & 0x7f800000u) == 0x7f800000u) continue;
    if (k % 4 == 0) x = (x & 0xffff0000u) | 0x8000u; /* force ties often */
    uint32_t lo = x >> 16, hi = lo + 1;
    double v = (double)half_f32_from_bits(x);
    double dl = fabs(v - bf16_ref_value(lo)), dh = fabs(bf16_ref_value(hi) - v);
    uint32_t want = dl < dh ? lo : dh < dl ? hi : ((lo & 1) ? hi : lo);
    if (float_to_bf16(half_f32_from_bits(x)) != want) bad++;
  }
  CHECK(bad == 0, "%d random bf16 roundings wrong", bad);

  CHECK(float_to_bf16(half_f32_from_bits(0x3f808000u)) == 0x3f80, "tie to even (down)");
  CHECK(float_to_bf16(half_f32_from_bits(0x3f818000u)) == 0x3f82, "tie to even (up)");
  CHECK(float_to_bf16(half_f32_from_bits(0x3f808001u)) == 0x3f81, "above tie rounds up");
  CHECK(float_to_bf16(half_f32_from_bits(0x3f807fffu)) == 0x3f80, "below tie rounds down");
  CHECK(float_to_bf16(half_f32_from_bits(0x7f7fffffu)) == 0x7f80, "FLT_MAX rounds to inf");
  CHECK(float_to_bf16(half_f32_from_bits(0x7f800001u)) == 0x7fc0, "low-payload NaN stays NaN");
  CHECK(float_to_bf16(half_f32_from_bits(0xff800001u)) == 0xffc0, "negative NaN keeps sign");
  CHECK(float_to_bf16(1.0f) == 0x3f80 && float_to_bf16(-2.0f) == 0xc000, "1, -2");
  CHECK(float_to_bf16(INFINITY) == 0x7f80 && float_to_bf16(-0.0f) == 0x8000, "inf, -0");
  CHECK(float_to_bf16(half_f32_from_bits(0x00018000u)) == 0x0002, "subnormal tie to even");
}

static void test_bulk(void) {
  enum { N = 1000 };
  float src[N], back[N];
  uint16_t h[N];
  test_rng rng = test_rng_make(11);
  test_fill_uniform(&rng, src, N, -100, 100);
  half_from_float_array(h, src, N);
  half_to_float_array(back, h, N);
  CHECK_CLOSE(back, src, N, 1e-7, 1.0 / 2048, "fp16 bulk round trip");
  bf16_from_float_array(h, src, N);
  bf16_to_float_array(back, h, N);
  CHECK_CLOSE(back, src, N, 1e-7, 1.0 / 256, "bf16 bulk round trip");
}

int main(void) {
  test_fp16_exhaustive();
  test_fp16_midpoints();
  test_fp16_known();
  test_bf16();
  test_bulk();
  return test_finish("test_half");
}
