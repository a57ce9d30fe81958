#include "op_checks.h"

#include <math.h>
#include <stdint.h>

reid_status reid_check_batchnorm(const char *op, int n, int c, int hw, float eps) {
  if (n < 1 || c < 1 || hw < 1)
    return reid_fail(REID_EINVAL, "%s: invalid shape n=%d c=%d hw=%d", op, n, c, hw);
  if ((int64_t)n * c > INT32_MAX || (int64_t)c * hw > INT32_MAX || (int64_t)n * hw > INT32_MAX)
    return reid_fail(REID_EINVAL, "%s: shape n=%d c=%d hw=%d too large", op, n, c, hw);
  if (!(eps >= 0.0f)) return reid_fail(REID_EINVAL, "%s: eps %g must be >= 0", op, (double)eps);
  return REID_OK;
}

reid_status reid_check_batchnorm_train(const char *op, int n, int c, int hw, float eps,
                                       float momentum) {
  REID_TRY(reid_check_batchnorm(op, n, c, hw, eps));
  if ((int64_t)n * hw < 2)
    return reid_fail(REID_EINVAL,
                     "%s: Expected more than 1 value per channel when training, got input size "
                     "[%d, %d, %d]",
                     op, n, c, hw);
  if (!(momentum >= 0.0f && momentum <= 1.0f))
    return reid_fail(REID_EINVAL, "%s: momentum %g outside [0, 1]", op, (double)momentum);
  return REID_OK;
}

reid_status reid_check_instancenorm(const char *op, int n, int c, int hw, float eps) {
  if (n < 1 || c < 1 || hw < 1)
    return reid_fail(REID_EINVAL, "%s: invalid shape n=%d c=%d hw=%d", op, n, c, hw);
  if ((int64_t)n * c > INT32_MAX || (int64_t)n * c * hw > ((int64_t)1 << 40))
    return reid_fail(REID_EINVAL, "%s: shape n=%d c=%d hw=%d too large", op, n, c, hw);
  if (!(eps >= 0.0f)) return reid_fail(REID_EINVAL, "%s: eps %g must be >= 0", op, (double)eps);
  return REID_OK;
}

reid_status reid_check_channel_copy(const char *op, int n, int hw, int c, int src_c, int src_c0,
                                    int dst_c, int dst_c0) {
  if (n < 1 || hw < 1 || c < 1 || src_c0 < 0 || dst_c0 < 0 || (int64_t)src_c0 + c > src_c ||
      (int64_t)dst_c0 + c > dst_c)
    return reid_fail(REID_EINVAL,
                     "%s: invalid block n=%d hw=%d: %d channels from %d of %d to %d of %d", op, n,
                     hw, c, src_c0, src_c, dst_c0, dst_c);
  return REID_OK;
}

int reid_pool2d_extent(int in, int k, int stride, int pad, int ceil_mode) {
  if (in + 2 * pad < k) return 0;
  int out = (in + 2 * pad - k + (ceil_mode ? stride - 1 : 0)) / stride + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) out--; /* no window starts in the padding */
  return out;
}

reid_status reid_check_pool_desc(const char *op, const reid_pool2d_desc *d) {
  if (!d) return reid_fail(REID_EINVAL, "%s: descriptor is NULL", op);
  if (d->n < 1 || d->c < 1 || d->h < 1 || d->w < 1 || d->k < 1 || d->stride < 1 || d->pad < 0 ||
      2 * d->pad > d->k || d->h + 2 * d->pad < d->k || d->w + 2 * d->pad < d->k ||
      (d->ceil_mode != 0 && d->ceil_mode != 1) ||
      d->h_out != reid_pool2d_extent(d->h, d->k, d->stride, d->pad, d->ceil_mode) ||
      d->w_out != reid_pool2d_extent(d->w, d->k, d->stride, d->pad, d->ceil_mode) ||
      (int64_t)d->h * d->w > INT32_MAX || (int64_t)d->n * d->c > INT32_MAX)
    return reid_fail(REID_EINVAL,
                     "%s: invalid descriptor n=%d c=%d h=%d w=%d k=%d stride=%d pad=%d -> %dx%d "
                     "(use reid_pool2d_desc_init)",
                     op, d->n, d->c, d->h, d->w, d->k, d->stride, d->pad, d->h_out, d->w_out);
  return REID_OK;
}

reid_status reid_check_linear(const char *op, int b, int in, int out) {
  if (b < 1 || in < 1 || out < 1)
    return reid_fail(REID_EINVAL, "%s: invalid shape b=%d in=%d out=%d", op, b, in, out);
  if ((int64_t)b * in > INT32_MAX || (int64_t)b * out > INT32_MAX || (int64_t)out * in > INT32_MAX)
    return reid_fail(REID_EINVAL, "%s: shape b=%d in=%d out=%d too large", op, b, in, out);
  return REID_OK;
}

reid_status reid_check_distance(const char *op, reid_distance_kind kind, int m, int n, int d) {
  if (kind != REID_DIST_SQEUCLIDEAN && kind != REID_DIST_EUCLIDEAN && kind != REID_DIST_COSINE)
    return reid_fail(REID_EINVAL, "%s: unknown distance kind %d", op, (int)kind);
  if (m < 1 || n < 1 || d < 1)
    return reid_fail(REID_EINVAL, "%s: invalid shape m=%d n=%d d=%d", op, m, n, d);
  if ((int64_t)m * n > INT32_MAX || (int64_t)m * d > INT32_MAX || (int64_t)n * d > INT32_MAX)
    return reid_fail(REID_EINVAL, "%s: shape m=%d n=%d d=%d too large", op, m, n, d);
  return REID_OK;
}

reid_status reid_check_adam(const char *op, float lr, float beta1, float beta2, float eps,
                            float weight_decay, int step) {
  if (!(lr >= 0.0f)) return reid_fail(REID_EINVAL, "%s: invalid learning rate %g", op, (double)lr);
  if (!(beta1 >= 0.0f && beta1 < 1.0f) || !(beta2 >= 0.0f && beta2 < 1.0f))
    return reid_fail(REID_EINVAL, "%s: betas (%g, %g) outside [0, 1)", op, (double)beta1,
                     (double)beta2);
  if (!(eps >= 0.0f)) return reid_fail(REID_EINVAL, "%s: invalid eps %g", op, (double)eps);
  if (!(weight_decay >= 0.0f))
    return reid_fail(REID_EINVAL, "%s: invalid weight decay %g", op, (double)weight_decay);
  if (step < 1) return reid_fail(REID_EINVAL, "%s: step %d must count from 1", op, step);
  return REID_OK;
}

reid_status reid_check_sgd(const char *op, float lr, float momentum, float weight_decay,
                           int nesterov, int step) {
  if (!(lr >= 0.0f)) return reid_fail(REID_EINVAL, "%s: invalid learning rate %g", op, (double)lr);
  if (!(momentum >= 0.0f))
    return reid_fail(REID_EINVAL, "%s: invalid momentum %g", op, (double)momentum);
  if (!(weight_decay >= 0.0f))
    return reid_fail(REID_EINVAL, "%s: invalid weight decay %g", op, (double)weight_decay);
  if (nesterov && momentum == 0.0f)
    return reid_fail(REID_EINVAL, "%s: Nesterov momentum requires a momentum", op);
  if (step < 1) return reid_fail(REID_EINVAL, "%s: step %d must count from 1", op, step);
  return REID_OK;
}

reid_adam_scalars reid_adam_scalars_at(float lr, float beta1, float beta2, float weight_decay,
                                       int step) {
  reid_adam_scalars s;
  s.step_size = (float)((double)lr / (1.0 - pow(beta1, step)));
  s.bc2_sqrt = (float)sqrt(1.0 - pow(beta2, step));
  s.shrink = (float)(1.0 - (double)lr * weight_decay);
  return s;
}
