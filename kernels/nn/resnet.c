/* torchvision's ResNet-18/34/50 (v1.5: the stride on the 3x3 conv of a
 * bottleneck) as a network description, with torchvision's parameter names
 * (conv1, bn1, layer1.0.conv1, layer1.0.downsample.0, ...). The re-ID
 * convention of last stride 1 is cfg->last_stride.
 *
 * fast-reid's ResNet-50 backbone (fastreid/modeling/backbones/resnet.py) has
 * the same names and blocks but a max pool without padding in ceil mode
 * (MaxPool2d(3, 2, ceil_mode=True)). Its IBN-a variant (Pan et al. 2018,
 * with_ibn) replaces bn1 of every bottleneck in layer1..3 by IBN(planes):
 *   half = planes / 2:  cat(IN(x[:, :half]) (bn1.IN), BN(x[:, half:]) (bn1.BN))
 * with IN = InstanceNorm2d(affine=True). */
#include <stdio.h>

#include "net_graph.h"

/* a basic (2 x 3x3) or bottleneck (1x1, 3x3, 1x1) block with its shortcut:
 * relu(branch + shortcut) */
static int add_block(reid_net *net, int bottleneck, int ibn, const char *prefix, int in, int planes,
                     int stride) {
  char n1[64], n2[64];
  int out_c = planes * (bottleneck ? 4 : 1);
  int h;
#define NAME2(a, b)                                                                                \
  (snprintf(n1, sizeof n1, "%s.%s", prefix, a), snprintf(n2, sizeof n2, "%s.%s", prefix, b))
  if (bottleneck && ibn) {
    const int half = planes / 2;
    NAME2("conv1", "bn1.IN");
    h = net_conv(net, n1, in, planes, 1, 1, 0, 1, 0);
    int a = net_instance_norm(net, n2, net_slice(net, h, 0, half));
    NAME2("bn1.BN", "bn1.BN");
    int b = net_bn(net, n1, net_slice(net, h, half, planes - half));
    h = net_unary(net, NODE_RELU, net_concat(net, a, b));
    NAME2("conv2", "bn2");
    h = net_conv_bn(net, n1, n2, h, planes, 3, stride, 1, 1, NODE_RELU);
    NAME2("conv3", "bn3");
    h = net_conv_bn(net, n1, n2, h, out_c, 1, 1, 0, 1, -1);
  } else if (bottleneck) {
    NAME2("conv1", "bn1");
    h = net_conv_bn(net, n1, n2, in, planes, 1, 1, 0, 1, NODE_RELU);
    NAME2("conv2", "bn2");
    h = net_conv_bn(net, n1, n2, h, planes, 3, stride, 1, 1, NODE_RELU);
    NAME2("conv3", "bn3");
    h = net_conv_bn(net, n1, n2, h, out_c, 1, 1, 0, 1, -1);
  } else {
    NAME2("conv1", "bn1");
    h = net_conv_bn(net, n1, n2, in, planes, 3, stride, 1, 1, NODE_RELU);
    NAME2("conv2", "bn2");
    h = net_conv_bn(net, n1, n2, h, planes, 3, 1, 1, 1, -1);
  }
  int shortcut = in;
  if (in >= 0 && (stride != 1 || net->acts[in].c != out_c)) {
    NAME2("downsample.0", "downsample.1");
    shortcut = net_conv_bn(net, n1, n2, in, out_c, 1, stride, 0, 1, -1);
  }
#undef NAME2
  return net_unary(net, NODE_RELU, net_binary(net, NODE_ADD, h, shortcut));
}

reid_status resnet_build(reid_net *net) {
  const reid_model_config *c = &net->cfg;
  static const int blocks[2][4] = {{2, 2, 2, 2}, {3, 4, 6, 3}};
  const int fastreid =
      c->arch == REID_ARCH_FASTREID_RESNET50 || c->arch == REID_ARCH_FASTREID_RESNET50_IBN_A;
  const int ibn = c->arch == REID_ARCH_FASTREID_RESNET50_IBN_A;
  const int bottleneck = c->arch == REID_ARCH_RESNET50 || fastreid;
  const int *depth = blocks[c->arch != REID_ARCH_RESNET18];
  int x = net_input(net, 3, c->input_height, c->input_width);
  x = net_conv_bn(net, "conv1", "bn1", x, 64, 7, 2, 3, 1, NODE_RELU);
  x = fastreid ? net_maxpool_ceil(net, x, 3, 2, 0) : net_pool(net, NODE_MAXPOOL, x, 3, 2, 1);
  for (int layer = 0; layer < 4; layer++) {
    int planes = 64 << layer;
    int stride = layer == 0 ? 1 : layer == 3 ? c->last_stride : 2;
    for (int b = 0; b < depth[layer]; b++) {
      char prefix[32];
      snprintf(prefix, sizeof prefix, "layer%d.%d", layer + 1, b);
      x = add_block(net, bottleneck, ibn && layer < 3, prefix, x, planes, b == 0 ? stride : 1);
    }
  }
  return net_finish(net, net_unary(net, NODE_GAP, x));
}
