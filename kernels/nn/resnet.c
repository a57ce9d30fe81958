/* torchvision's ResNet-18/34/50 (v1.5: the stride on the 3x3 conv of a
 * bottleneck) as a network description, with torchvision's parameter names
 * (conv1, bn1, layer1.0.conv1, layer1.0.downsample.0, ...). The re-ID
 * convention of last stride 1 is cfg->last_stride. */
#include <stdio.h>

#include "net_graph.h"

/* a basic (2 x 3x3) or bottleneck (1x1, 3x3, 1x1) block with its shortcut:
 * relu(branch + shortcut) */
static int add_block(reid_net *net, int bottleneck, const char *prefix, int in, int planes,
                     int stride) {
  char n1[64], n2[64];
  int out_c = planes * (bottleneck ? 4 : 1);
  int h;
#define NAME2(a, b)                                                                                \
  (snprintf(n1, sizeof n1, "%s.%s", prefix, a), snprintf(n2, sizeof n2, "%s.%s", prefix, b))
  if (bottleneck) {
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
  static const int blocks[3][4] = {{2, 2, 2, 2}, {3, 4, 6, 3}, {3, 4, 6, 3}};
  int bottleneck = c->arch == REID_ARCH_RESNET50;
  int x = net_input(net, 3, c->input_height, c->input_width);
  x = net_conv_bn(net, "conv1", "bn1", x, 64, 7, 2, 3, 1, NODE_RELU);
  x = net_pool(net, NODE_MAXPOOL, x, 3, 2, 1);
  for (int layer = 0; layer < 4; layer++) {
    int planes = 64 << layer;
    int stride = layer == 0 ? 1 : layer == 3 ? c->last_stride : 2;
    for (int b = 0; b < blocks[c->arch][layer]; b++) {
      char prefix[32];
      snprintf(prefix, sizeof prefix, "layer%d.%d", layer + 1, b);
      x = add_block(net, bottleneck, prefix, x, planes, b == 0 ? stride : 1);
    }
  }
  return net_finish(net, net_unary(net, NODE_GAP, x));
}
