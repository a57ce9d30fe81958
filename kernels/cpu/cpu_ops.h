/* The CPU backend's op families. Each file under kernels/cpu/ fills its part
 * of the ops table; cpu_backend.c calls all of them once. */
#pragma once

#include "backend.h"

void cpu_register_memory_ops(reid_backend_ops *ops);
void cpu_register_conv_ops(reid_backend_ops *ops);
void cpu_register_elementwise_ops(reid_backend_ops *ops);
void cpu_register_activation_ops(reid_backend_ops *ops);
void cpu_register_batchnorm_ops(reid_backend_ops *ops);
void cpu_register_instancenorm_ops(reid_backend_ops *ops); /* and channel_copy */
void cpu_register_pool_ops(reid_backend_ops *ops);
void cpu_register_linear_ops(reid_backend_ops *ops);
void cpu_register_loss_ops(reid_backend_ops *ops);
void cpu_register_distance_ops(reid_backend_ops *ops);
void cpu_register_optim_ops(reid_backend_ops *ops);

/* Backend-private state of the CPU backend (be->impl). */
typedef struct cpu_backend_state cpu_backend_state;
reid_status cpu_backend_state_create(cpu_backend_state **out);
void cpu_backend_state_destroy(cpu_backend_state *state);

/* Naive loop references: the specification the fast paths are tested against. */
void conv2d_forward_reference(const reid_conv2d_desc *d, const float *x, const float *w,
                              const float *bias, float *y);
void conv2d_backward_reference(const reid_conv2d_desc *d, const float *x, const float *w,
                               const float *dy, float *dx, float *dw, float *dbias);
