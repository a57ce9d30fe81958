/* reid-train teacher: video-to-video training of the MDKT teacher. */
#include "train_args.h"

static const char *const summary =
    "usage: reid-train teacher --data DIR --output T.safetensors [options]\n"
    "\n"
    "Trains the video (teacher) network of MDKT as VKD does: a ResNet with BNNeck\n"
    "(BatchNorm1d with a frozen zero bias, then a bias-free classifier over the\n"
    "training identities); each sample is T frames of one tracklet; the embedding is\n"
    "the temporal average of the frames' pooled features (before the BNNeck), the\n"
    "logits are averaged over frames. Loss = batch-hard soft-margin triplet on the\n"
    "Euclidean distances sqrt(sum diff^2 + 1e-12), log(1 + exp(d_ap - d_an)) averaged\n"
    "over anchors, + cross-entropy (optional label smoothing) averaged over samples.\n"
    "Writes one network (metadata task=mdkt-teacher). Defaults follow VKD: resnet50,\n"
    "last stride 1, 256x128, P=8 x K=4 x T=8, Adam 1e-4, weight decay 1e-5, 300 epochs,\n"
    "lr x0.1 at epochs 100 and 200.\n"
    "\n"
    "model:\n"
    "  --arch A               resnet50 (default), resnet18, resnet34, mobilenet_v2,\n"
    "                         osnet_x0_25, osnet_x0_5, osnet_x0_75, osnet_x1_0,\n"
    "                         osnet_ibn_x1_0, osnet_ain_x1_0, fastreid_resnet50 or\n"
    "                         fastreid_resnet50_ibn_a\n"
    "  --last-stride N        1 (default) or 2\n"
    "  --input-size HxW       default 256x128\n"
    "  --init FILE            start the backbone from a checkpoint's weights (e.g. torchvision's\n"
    "                         ImageNet ResNet saved as safetensors); BNNeck and classifier start\n"
    "                         fresh\n";

int cmd_teacher(int argc, char **argv) {
  return train_command("teacher", 0, summary, argc, argv);
}
