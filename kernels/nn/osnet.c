/* torchreid's OSNet (osnet_x0_25 ... osnet_x1_0, osnet_ibn_x1_0 from osnet.py,
 * osnet_ain_x1_0 from osnet_ain.py; Zhou et al. 2019, 2021) as network
 * descriptions, with torchreid's parameter names.
 *
 *   conv1     7x7/2 conv + BN + ReLU (conv1.conv, conv1.bn), maxpool 3x3/2
 *   conv2..4  OSBlocks; conv2 and conv3 end with a transition: 1x1 conv + BN + ReLU, avgpool 2x2/2
 *   conv5     1x1 conv + BN + ReLU, global average pool
 *   fc        Linear(C, 512) + BatchNorm1d + ReLU: the 512-d feature (eval-mode forward)
 *
 * OSBlock(in, out), mid = out / 4:
 *   x1 = Conv1x1(in, mid)                          conv1.{conv,bn} + ReLU
 *   streams of 1..4 LightConv3x3(mid, mid):        conv2a, conv2b.{0,1}, conv2c.{0..2},
 * conv2d.{0..3} LightConv3x3 = 1x1 conv (no BN) -> depthwise 3x3 conv -> BN -> ReLU   (conv1,
 * conv2, bn) x2 = sum over streams of gate(stream)          one ChannelGate shared by the four
 * streams: gate(x) = x * sigmoid(fc2(relu(fc1(gap(x)))))  fc1: 1x1 conv mid -> mid/16 with bias out
 * = relu(Conv1x1Linear(mid, out)(x2) + shortcut)   conv3.{conv,bn}; shortcut = x or
 *                                                         downsample.{conv,bn} when in != out */
#include <stdio.h>

#include "net_graph.h"

static int light_conv(reid_net *net, const char *prefix, int x, int c) {
  char a[128], b[128];
  snprintf(a, sizeof a, "%s.conv1", prefix);
  x = net_conv(net, a, x, c, 1, 1, 0, 1, 0);
  snprintf(a, sizeof a, "%s.conv2", prefix);
  snprintf(b, sizeof b, "%s.bn", prefix);
  return net_conv_bn(net, a, b, x, c, 3, 1, 1, c, NODE_RELU);
}

/* x * sigmoid(fc2(relu(fc1(gap(x))))); the first call creates the fc1/fc2
 * convolutions (their node indices go to fc[2]), later calls reuse them */
static int channel_gate(reid_net *net, const char *prefix, int x, int fc[2]) {
  const int c = x >= 0 ? net->acts[x].c : 16;
  int g = net_unary(net, NODE_GAP, x);
  char name[128];
  for (int i = 0; i < 2; i++) {
    if (i) g = net_unary(net, NODE_RELU, g);
    if (fc[i] >= 0) {
      g = net_conv_shared(net, fc[i], g);
      continue;
    }
    snprintf(name, sizeof name, "%s.fc%d", prefix, i + 1);
    g = net_conv(net, name, g, i ? c : c / 16, 1, 1, 0, 1, 1);
    fc[i] = net->n_nodes - 1;
  }
  g = net_unary(net, NODE_SIGMOID, g);
  return net_binary(net, NODE_MUL, x, g);
}

/* Block flavours: torchreid's osnet.py OSBlock (streams conv2a, conv2b.0, ...),
 * with IN after the residual sum (osnet_ibn_x1_0's conv2 blocks), and
 * osnet_ain.py's OSBlock / OSBlockINin (streams conv2.{t}.layers.{l}; INin:
 * conv3 without BN, IN on the branch before the sum). */
typedef enum os_flavour { OS_PLAIN, OS_IN_AFTER_SUM, OS_AIN, OS_AIN_INin } os_flavour;

static int os_block(reid_net *net, const char *prefix, int x, int out_c, os_flavour f) {
  const int mid = out_c / 4, ain = f == OS_AIN || f == OS_AIN_INin;
  char a[80], b[80];
  snprintf(a, sizeof a, "%s.conv1.conv", prefix);
  snprintf(b, sizeof b, "%s.conv1.bn", prefix);
  int x1 = net_conv_bn(net, a, b, x, mid, 1, 1, 0, 1, NODE_RELU);
  int fc[2] = {-1, -1}, sum = -1;
  snprintf(b, sizeof b, "%s.gate", prefix);
  static const char *streams[4] = {"conv2a", "conv2b", "conv2c", "conv2d"};
  for (int s = 0; s < 4; s++) {
    int h = x1;
    for (int l = 0; l <= s; l++) {
      if (ain)
        snprintf(a, sizeof a, "%s.conv2.%d.layers.%d", prefix, s, l);
      else if (s == 0)
        snprintf(a, sizeof a, "%s.%s", prefix, streams[s]);
      else
        snprintf(a, sizeof a, "%s.%s.%d", prefix, streams[s], l);
      h = light_conv(net, a, h, mid);
    }
    h = channel_gate(net, b, h, fc);
    sum = s == 0 ? h : net_binary(net, NODE_ADD, sum, h);
  }
  snprintf(a, sizeof a, "%s.conv3.conv", prefix);
  snprintf(b, sizeof b, "%s.conv3.bn", prefix);
  int x3;
  if (f == OS_AIN_INin) { /* Conv1x1Linear(bn=False), then IN inside the residual */
    x3 = net_conv(net, a, sum, out_c, 1, 1, 0, 1, 0);
    snprintf(a, sizeof a, "%s.IN", prefix);
    x3 = net_instance_norm(net, a, x3);
  } else {
    x3 = net_conv_bn(net, a, b, sum, out_c, 1, 1, 0, 1, -1);
  }
  int shortcut = x;
  if (x >= 0 && net->acts[x].c != out_c) {
    snprintf(a, sizeof a, "%s.downsample.conv", prefix);
    snprintf(b, sizeof b, "%s.downsample.bn", prefix);
    shortcut = net_conv_bn(net, a, b, x, out_c, 1, 1, 0, 1, -1);
  }
  int out = net_binary(net, NODE_ADD, x3, shortcut);
  if (f == OS_IN_AFTER_SUM) {
    snprintf(a, sizeof a, "%s.IN", prefix);
    out = net_instance_norm(net, a, out);
  }
  return net_unary(net, NODE_RELU, out);
}

/* conv1: ConvLayer(3, C, 7, stride 2, pad 3): conv + BN (or IN) + ReLU, then max pool 3x3/2 */
static int stem(reid_net *net, int c, int instance_norm) {
  const reid_model_config *cfg = &net->cfg;
  int x = net_input(net, 3, cfg->input_height, cfg->input_width);
  x = net_conv(net, "conv1.conv", x, c, 7, 2, 3, 1, 0);
  x = instance_norm ? net_instance_norm(net, "conv1.bn", x) : net_bn(net, "conv1.bn", x);
  return net_pool(net, NODE_MAXPOOL, net_unary(net, NODE_RELU, x), 3, 2, 1);
}

/* conv5 (Conv1x1), global average pool, fc: Linear(C, 512) + BatchNorm1d + ReLU */
static reid_status head(reid_net *net, int x, int c) {
  x = net_conv_bn(net, "conv5.conv", "conv5.bn", x, c, 1, 1, 0, 1, NODE_RELU);
  x = net_unary(net, NODE_GAP, x);
  x = net_linear(net, "fc.0", x, 512, 1, INIT_NORMAL_0_01);
  x = net_bn(net, "fc.1", x);
  return net_finish(net, net_unary(net, NODE_RELU, x));
}

/* osnet_x0_25 .. osnet_x1_0 and osnet_ibn_x1_0 (IN in conv1 and after the sum of conv2's blocks) */
reid_status osnet_build(reid_net *net) {
  static const int widths[4][4] = {
      {16, 64, 96, 128}, {32, 128, 192, 256}, {48, 192, 288, 384}, {64, 256, 384, 512}};
  const reid_model_config *c = &net->cfg;
  const int ibn = c->arch == REID_ARCH_OSNET_IBN_X1_0;
  const int *ch = widths[ibn ? 3 : c->arch - REID_ARCH_OSNET_X0_25];
  int x = stem(net, ch[0], ibn);
  char a[64], b[64];
  for (int stage = 0; stage < 3; stage++) { /* conv2, conv3, conv4: two OSBlocks each */
    for (int i = 0; i < 2; i++) {
      snprintf(a, sizeof a, "conv%d.%d", stage + 2, i);
      x = os_block(net, a, x, ch[stage + 1], ibn && stage == 0 ? OS_IN_AFTER_SUM : OS_PLAIN);
    }
    if (stage < 2) { /* transition: Conv1x1 + AvgPool2d(2, 2) */
      snprintf(a, sizeof a, "conv%d.2.0.conv", stage + 2);
      snprintf(b, sizeof b, "conv%d.2.0.bn", stage + 2);
      x = net_conv_bn(net, a, b, x, ch[stage + 1], 1, 1, 0, 1, NODE_RELU);
      x = net_pool(net, NODE_AVGPOOL, x, 2, 2, 0);
    }
  }
  return head(net, x, ch[3]);
}

/* osnet_ain_x1_0: IN in conv1; blocks [INin, INin], [plain, INin], [INin, plain];
 * transitions pool2 / pool3 */
reid_status osnet_ain_build(reid_net *net) {
  static const int ch[4] = {64, 256, 384, 512};
  static const os_flavour blocks[3][2] = {
      {OS_AIN_INin, OS_AIN_INin}, {OS_AIN, OS_AIN_INin}, {OS_AIN_INin, OS_AIN}};
  int x = stem(net, ch[0], 1);
  char a[64], b[64];
  for (int stage = 0; stage < 3; stage++) {
    for (int i = 0; i < 2; i++) {
      snprintf(a, sizeof a, "conv%d.%d", stage + 2, i);
      x = os_block(net, a, x, ch[stage + 1], blocks[stage][i]);
    }
    if (stage < 2) {
      snprintf(a, sizeof a, "pool%d.0.conv", stage + 2);
      snprintf(b, sizeof b, "pool%d.0.bn", stage + 2);
      x = net_conv_bn(net, a, b, x, ch[stage + 1], 1, 1, 0, 1, NODE_RELU);
      x = net_pool(net, NODE_AVGPOOL, x, 2, 2, 0);
    }
  }
  return head(net, x, ch[3]);
}
