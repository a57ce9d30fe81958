/* Chunked plane statistics shared by batch norm and instance norm (see
 * batchnorm.c for the accuracy argument): a run is cut into chunks of CHUNK
 * floats summed in float while in L1, merged in double (Chan et al.). */
#pragma once

#include <math.h>

#define CHUNK 256 /* floats summed in float before a double merge */

/* Statistics of a set of values: count, mean, m2 = sum (x - mean)^2 */
typedef struct moments {
  double count, mean, m2;
} moments;

/* Chan et al.: fold a set of nb values with (mean_b, m2_b) into *st. */
static inline void moments_merge(moments *st, double nb, double mean_b, double m2_b) {
  const double total = st->count + nb;
  const double delta = mean_b - st->mean;
  st->mean += delta * nb / total;
  st->m2 += m2_b + delta * delta * st->count * nb / total;
  st->count = total;
}

/* Moments of the run xr[len], chunk by chunk. */
static inline moments moments_of_run(const float *restrict xr, int len) {
  moments st = {0.0, 0.0, 0.0};
  for (int j0 = 0; j0 < len; j0 += CHUNK) {
    const int nb = len - j0 < CHUNK ? len - j0 : CHUNK;
    const float *xb = xr + j0;
    /* guess mb = chunk mean in float, then s1 = sum (x - mb), s2 = sum (x - mb)^2 */
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < nb; j++) sum += xb[j];
    const float mb = sum / (float)nb;
    float s1 = 0.0f, s2 = 0.0f;
#pragma omp simd reduction(+ : s1, s2)
    for (int j = 0; j < nb; j++) {
      const float d = xb[j] - mb;
      s1 += d;
      s2 += d * d;
    }
    moments_merge(&st, nb, mb + (double)s1 / nb, fmax((double)s2 - (double)s1 * s1 / nb, 0.0));
  }
  return st;
}

/* sdy = sum dy, sdyx = sum dy (x - mean) over a run, float within chunks */
static inline void dy_sums_of_run(const float *restrict xr, const float *restrict dyr, int len,
                                  float mean, double *sdy, double *sdyx) {
  double a = 0.0, b = 0.0;
  for (int j0 = 0; j0 < len; j0 += CHUNK) {
    const int je = len - j0 < CHUNK ? len : j0 + CHUNK;
    float fa = 0.0f, fb = 0.0f;
#pragma omp simd reduction(+ : fa, fb)
    for (int j = j0; j < je; j++) {
      fa += dyr[j];
      fb += dyr[j] * (xr[j] - mean);
    }
    a += fa;
    b += fb;
  }
  *sdy = a;
  *sdyx = b;
}
