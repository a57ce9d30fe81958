/* torchvision's mobilenet_v2 (width 1.0) as a network description, with
 * torchvision's parameter names. The embedding is the 1280-d global average
 * of features.18 (the input of torchvision's classifier, which is not part of
 * the backbone).
 *
 *   features.0        conv 3x3/2 32 + BN + ReLU6          (features.0.0, features.0.1)
 *   features.1..17    inverted residuals (t, c, n, s) below:
 *                     [expand 1x1 + BN + ReLU6] (conv.0.*; only when t != 1),
 *                     depthwise 3x3/s + BN + ReLU6, project 1x1 + BN (no activation),
 *                     + input when s = 1 and c_in = c_out
 *   features.18       conv 1x1 1280 + BN + ReLU6 */
#include <stdio.h>

#include "net_graph.h"

reid_status mobilenet_v2_build(reid_net *net) {
  static const int setting[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                    {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  const reid_model_config *c = &net->cfg;
  int x = net_input(net, 3, c->input_height, c->input_width);
  x = net_conv_bn(net, "features.0.0", "features.0.1", x, 32, 3, 2, 1, 1, NODE_RELU6);
  int index = 1, in_c = 32;
  char a[64], b[64];
  for (int s = 0; s < 7; s++)
    for (int i = 0; i < setting[s][2]; i++, index++) {
      const int t = setting[s][0], out_c = setting[s][1], stride = i == 0 ? setting[s][3] : 1;
      const int hidden = in_c * t;
      int h = x, part = 0;
      if (t != 1) {
        snprintf(a, sizeof a, "features.%d.conv.0.0", index);
        snprintf(b, sizeof b, "features.%d.conv.0.1", index);
        h = net_conv_bn(net, a, b, h, hidden, 1, 1, 0, 1, NODE_RELU6);
        part = 1;
      }
      snprintf(a, sizeof a, "features.%d.conv.%d.0", index, part);
      snprintf(b, sizeof b, "features.%d.conv.%d.1", index, part);
      h = net_conv_bn(net, a, b, h, hidden, 3, stride, 1, hidden, NODE_RELU6);
      snprintf(a, sizeof a, "features.%d.conv.%d", index, part + 1);
      snprintf(b, sizeof b, "features.%d.conv.%d", index, part + 2);
      h = net_conv_bn(net, a, b, h, out_c, 1, 1, 0, 1, -1);
      x = stride == 1 && in_c == out_c ? net_binary(net, NODE_ADD, h, x) : h;
      in_c = out_c;
    }
  x = net_conv_bn(net, "features.18.0", "features.18.1", x, 1280, 1, 1, 0, 1, NODE_RELU6);
  return net_finish(net, net_unary(net, NODE_GAP, x));
}
