/* The architectures the network knows: names, feature sizes, builders, and
 * the model configuration they share. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "net_graph.h"

typedef struct arch_info {
  const char *name;
  int feature_dim;
  reid_status (*build)(reid_net *net);
} arch_info;

static const arch_info archs[REID_ARCH_COUNT] = {
    [REID_ARCH_RESNET18] = {"resnet18", 512, resnet_build},
    [REID_ARCH_RESNET34] = {"resnet34", 512, resnet_build},
    [REID_ARCH_RESNET50] = {"resnet50", 2048, resnet_build},
    [REID_ARCH_MOBILENET_V2] = {"mobilenet_v2", 1280, mobilenet_v2_build},
    [REID_ARCH_OSNET_X0_25] = {"osnet_x0_25", 512, osnet_build},
    [REID_ARCH_OSNET_X0_5] = {"osnet_x0_5", 512, osnet_build},
    [REID_ARCH_OSNET_X0_75] = {"osnet_x0_75", 512, osnet_build},
    [REID_ARCH_OSNET_X1_0] = {"osnet_x1_0", 512, osnet_build},
    [REID_ARCH_OSNET_IBN_X1_0] = {"osnet_ibn_x1_0", 512, osnet_build},
    [REID_ARCH_OSNET_AIN_X1_0] = {"osnet_ain_x1_0", 512, osnet_ain_build},
    [REID_ARCH_FASTREID_RESNET50] = {"fastreid_resnet50", 2048, resnet_build},
    [REID_ARCH_FASTREID_RESNET50_IBN_A] = {"fastreid_resnet50_ibn_a", 2048, resnet_build},
    [REID_ARCH_ONNX] = {"onnx", 0, NULL}, /* its feature size is the graph's */
};

void reid_model_config_default(reid_model_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->arch = REID_ARCH_RESNET50;
  cfg->last_stride = 1;
  cfg->input_height = 256;
  cfg->input_width = 128;
  const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
  memcpy(cfg->mean, mean, sizeof mean);
  memcpy(cfg->std, std, sizeof std);
}

const char *reid_arch_name(reid_arch arch) {
  return arch >= 0 && arch < REID_ARCH_COUNT ? archs[arch].name : "unknown";
}

const char *reid_arch_list(void) {
  static char list[512];
  if (!list[0]) {
    size_t used = 0;
    for (int a = 0; a < REID_ARCH_COUNT && used < sizeof list; a++)
      if (archs[a].build)
        used +=
            (size_t)snprintf(list + used, sizeof list - used, "%s%s", a ? ", " : "", archs[a].name);
  }
  return list;
}

reid_status reid_arch_parse(const char *name, reid_arch *arch) {
  for (int a = 0; a < REID_ARCH_COUNT; a++)
    if (name && archs[a].build && !strcmp(name, archs[a].name)) {
      *arch = (reid_arch)a;
      return REID_OK;
    }
  return reid_fail(REID_EINVAL, "unknown architecture '%s' (expected one of %s)",
                   name ? name : "(null)", reid_arch_list());
}

int reid_arch_feature_dim(reid_arch arch) {
  return arch >= 0 && arch < REID_ARCH_COUNT ? archs[arch].feature_dim : 0;
}

reid_status reid_model_config_validate(const reid_model_config *c) {
  if (c->arch < 0 || c->arch >= REID_ARCH_COUNT)
    return reid_fail(REID_EINVAL, "unknown architecture %d", (int)c->arch);
  if (c->last_stride != 1 && c->last_stride != 2)
    return reid_fail(REID_EINVAL, "last_stride must be 1 or 2, not %d", c->last_stride);
  if (c->input_height < 32 || c->input_width < 32 || c->input_height > 4096 ||
      c->input_width > 4096)
    return reid_fail(REID_EINVAL, "input size %dx%d out of range (32..4096)", c->input_height,
                     c->input_width);
  if (c->num_classes < 0 || c->num_classes > 1000000)
    return reid_fail(REID_EINVAL, "num_classes %d out of range", c->num_classes);
  if (c->embed_after_bn && !c->bnneck)
    return reid_fail(REID_EINVAL, "embed_after_bn needs a BNNeck");
  for (int i = 0; i < 3; i++)
    if (!(c->std[i] > 0) || !isfinite(c->mean[i]))
      return reid_fail(REID_EINVAL, "normalisation mean/std invalid (std must be > 0)");
  return REID_OK;
}

reid_status reid_arch_build(reid_net *net) {
  if (!archs[net->cfg.arch].build)
    return reid_fail(REID_EINVAL, "architecture %s: its graph comes from a model file, not a name",
                     archs[net->cfg.arch].name);
  return archs[net->cfg.arch].build(net);
}
