/* Argument checks of the backend ops, shared by every backend so that a CPU
 * and a CUDA build reject the same calls with the same messages. Each returns
 * REID_OK or REID_EINVAL with "op: reason" set. */
#pragma once

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* batch norm over [n, c, hw] */
reid_status reid_check_batchnorm(const char *op, int n, int c, int hw, float eps);
/* training mode: also more than one value per channel and momentum in [0, 1] */
reid_status reid_check_batchnorm_train(const char *op, int n, int c, int hw, float eps,
                                       float momentum);
/* instance norm over [n, c, hw] */
reid_status reid_check_instancenorm(const char *op, int n, int c, int hw, float eps);
/* channel_copy's block: c channels from src_c0 of src_c to dst_c0 of dst_c */
reid_status reid_check_channel_copy(const char *op, int n, int hw, int c, int src_c, int src_c0,
                                    int dst_c, int dst_c0);
reid_status reid_check_pool_desc(const char *op, const reid_pool2d_desc *d);
/* Output extent of a k-window over `in` padded by `pad` on both sides (floor or ceil mode, as
 * PyTorch); < 1 when the window does not fit. */
int reid_pool2d_extent(int in, int k, int stride, int pad, int ceil_mode);
reid_status reid_check_linear(const char *op, int b, int in, int out);
reid_status reid_check_distance(const char *op, reid_distance_kind kind, int m, int n, int d);
reid_status reid_check_adam(const char *op, float lr, float beta1, float beta2, float eps,
                            float weight_decay, int step);
reid_status reid_check_sgd(const char *op, float lr, float momentum, float weight_decay,
                           int nesterov, int step);

/* The per-step scalars of Adam/AdamW (see backend.h):
 *   step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t), shrink = 1 - lr wd */
typedef struct reid_adam_scalars {
  float step_size, bc2_sqrt, shrink;
} reid_adam_scalars;
reid_adam_scalars reid_adam_scalars_at(float lr, float beta1, float beta2, float weight_decay,
                                       int step);

#ifdef __cplusplus
}
#endif
