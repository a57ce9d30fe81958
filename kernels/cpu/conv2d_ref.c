/* Direct-loop 2-D convolution: the reference the fast paths are tested
 * against, and the CPU path of builds without oneDNN.
 *   y[n, o, i, j] = bias[o] + sum_{c, p, q} x[n, g(o) cg + c, i s - pad + p, j s - pad + q] w[o, c,
 * p, q] with cg = c_in / groups input channels per group and g(o) = o / (c_out / groups). */
#include "cpu_ops.h"

#include <string.h>

void conv2d_forward_reference(const reid_conv2d_desc *d, const float *x, const float *w,
                              const float *bias, float *y) {
  const int K = d->k, S = d->stride, P = d->pad;
  const int G = d->groups > 0 ? d->groups : 1, cg = d->c_in / G, og = d->c_out / G;
#pragma omp parallel for collapse(2) schedule(static)
  for (int n = 0; n < d->n; n++)
    for (int o = 0; o < d->c_out; o++) {
      float *yo = y + ((size_t)n * d->c_out + o) * d->h_out * d->w_out;
      for (int i = 0; i < d->h_out * d->w_out; i++) yo[i] = bias ? bias[o] : 0.0f;
      for (int c = 0; c < cg; c++) {
        const float *xc = x + ((size_t)n * d->c_in + (o / og) * cg + c) * d->h_in * d->w_in;
        const float *wk = w + ((size_t)o * cg + c) * K * K;
        for (int p = 0; p < K; p++)
          for (int q = 0; q < K; q++) {
            float wv = wk[p * K + q];
            for (int i = 0; i < d->h_out; i++) {
              int hi = i * S - P + p;
              if (hi < 0 || hi >= d->h_in) continue;
              for (int j = 0; j < d->w_out; j++) {
                int wi = j * S - P + q;
                if (wi >= 0 && wi < d->w_in) yo[i * d->w_out + j] += wv * xc[hi * d->w_in + wi];
              }
            }
          }
      }
    }
}

/* dx[n, c, hi, wi] = sum over the outputs it fed of dy * w
 * dw[o, c, p, q]   = sum_{n, i, j} dy[n, o, i, j] x[n, c, i s - pad + p, j s - pad + q]
 * dbias[o]         = sum_{n, i, j} dy[n, o, i, j] */
void conv2d_backward_reference(const reid_conv2d_desc *d, const float *x, const float *w,
                               const float *dy, float *dx, float *dw, float *dbias) {
  const int K = d->k, S = d->stride, P = d->pad;
  const int G = d->groups > 0 ? d->groups : 1, cg = d->c_in / G, og = d->c_out / G;
  const size_t plane_out = (size_t)d->h_out * d->w_out, plane_in = (size_t)d->h_in * d->w_in;
  if (dbias) {
    for (int o = 0; o < d->c_out; o++) {
      double acc = 0;
      for (int n = 0; n < d->n; n++)
        for (size_t i = 0; i < plane_out; i++)
          acc += dy[((size_t)n * d->c_out + o) * plane_out + i];
      dbias[o] = (float)acc;
    }
  }
  if (dw) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int o = 0; o < d->c_out; o++)
      for (int c = 0; c < cg; c++)
        for (int p = 0; p < K; p++)
          for (int q = 0; q < K; q++) {
            double acc = 0;
            for (int n = 0; n < d->n; n++) {
              const float *dyo = dy + ((size_t)n * d->c_out + o) * plane_out;
              const float *xc = x + ((size_t)n * d->c_in + (o / og) * cg + c) * plane_in;
              for (int i = 0; i < d->h_out; i++) {
                int hi = i * S - P + p;
                if (hi < 0 || hi >= d->h_in) continue;
                for (int j = 0; j < d->w_out; j++) {
                  int wi = j * S - P + q;
                  if (wi >= 0 && wi < d->w_in) acc += dyo[i * d->w_out + j] * xc[hi * d->w_in + wi];
                }
              }
            }
            dw[(((size_t)o * cg + c) * K + p) * K + q] = (float)acc;
          }
  }
  if (dx) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < d->n; n++)
      for (int c = 0; c < d->c_in; c++) {
        float *dxc = dx + ((size_t)n * d->c_in + c) * plane_in;
        memset(dxc, 0, plane_in * sizeof(float));
        for (int o = (c / cg) * og; o < (c / cg + 1) * og; o++) {
          const float *dyo = dy + ((size_t)n * d->c_out + o) * plane_out;
          const float *wk = w + ((size_t)o * cg + c % cg) * K * K;
          for (int p = 0; p < K; p++)
            for (int q = 0; q < K; q++) {
              float wv = wk[p * K + q];
              for (int i = 0; i < d->h_out; i++) {
                int hi = i * S - P + p;
                if (hi < 0 || hi >= d->h_in) continue;
                for (int j = 0; j < d->w_out; j++) {
                  int wi = j * S - P + q;
                  if (wi >= 0 && wi < d->w_in) dxc[hi * d->w_in + wi] += wv * dyo[i * d->w_out + j];
                }
              }
            }
        }
      }
  }
}
