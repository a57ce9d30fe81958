"""fast-reid's ResNet backbone and BNNeck head, as a parity reference.

This follows, module for module and name for name, fast-reid's
fastreid/modeling/backbones/resnet.py (Bottleneck, ResNet with
with_ibn / last_stride), fastreid/layers/batch_norm.py (IBN) and
fastreid/modeling/heads/embedding_head.py (EmbeddingHead with a BNNeck),
https://github.com/JDAI-CV/fast-reid (Apache-2.0, by L. He, X. Liao et al.),
reduced to what a bag-of-tricks ResNet-50 / ResNet-50-IBN-a checkpoint holds:
no SE, no non-local blocks, plain BatchNorm, global average pooling,
no embedding conv. arch_parity.py uses fast-reid's own modules from PyPI
(Baseline(upstream=...)); this transcription stands in only where fast-reid
cannot be installed.

The details that matter for parity:
  - the stem's max pool is MaxPool2d(3, stride 2, ceil_mode=True) with no padding
    (torchvision's is padding 1, floor mode);
  - IBN(planes): half = int(planes / 2) channels InstanceNorm2d(affine=True)
    (bn1.IN), the rest BatchNorm2d (bn1.BN), concatenated; in every bottleneck
    of layer1..layer3, not layer4;
  - layer4's stride is last_stride (1 in the re-ID configurations);
  - the head: global average pool, then heads.bottleneck.0 = BatchNorm2d with
    its bias frozen; in eval mode the model returns the BNNeck output.
"""
import torch
from torch import nn


class IBN(nn.Module):
    def __init__(self, planes):
        super().__init__()
        half1 = int(planes / 2)
        self.half = half1
        self.IN = nn.InstanceNorm2d(half1, affine=True)
        self.BN = nn.BatchNorm2d(planes - half1)

    def forward(self, x):
        split = torch.split(x, self.half, 1)
        return torch.cat((self.IN(split[0].contiguous()), self.BN(split[1].contiguous())), 1)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, with_ibn=False, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = IBN(planes) if with_ibn else nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            residual = self.downsample(x)
        return self.relu(out + residual)


class ResNet(nn.Module):
    def __init__(self, last_stride, with_ibn, layers=(3, 4, 6, 3)):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)
        self.layer1 = self._make_layer(64, layers[0], 1, with_ibn)
        self.layer2 = self._make_layer(128, layers[1], 2, with_ibn)
        self.layer3 = self._make_layer(256, layers[2], 2, with_ibn)
        self.layer4 = self._make_layer(512, layers[3], last_stride, False)

    def _make_layer(self, planes, blocks, stride, with_ibn):
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * 4, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, with_ibn, stride, downsample)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes, with_ibn) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class EmbeddingHead(nn.Module):
    def __init__(self, feat_dim, num_classes):
        super().__init__()
        self.pool_layer = nn.AdaptiveAvgPool2d(1)
        bn = nn.BatchNorm2d(feat_dim)
        bn.bias.requires_grad_(False)  # bias_freeze
        self.bottleneck = nn.Sequential(bn)
        self.weight = nn.Parameter(torch.randn(num_classes, feat_dim) * 0.01)

    def forward(self, features):
        neck = self.bottleneck(self.pool_layer(features))[..., 0, 0]
        if not self.training:
            return neck
        return nn.functional.linear(neck, self.weight)


class Baseline(nn.Module):
    """fast-reid's meta-architecture: pixel normalisation buffers, backbone, heads.

    upstream: (fastreid.modeling.backbones.resnet, fastreid.modeling.heads.embedding_head)
    modules to build from, or None for the transcription above. Built as fast-reid's
    build_resnet_backbone and a bag-of-tricks config do: depth 50x, BN, no SE, no non-local,
    GlobalAvgPool, BNNeck, neck feature after, Linear classifier."""

    def __init__(self, with_ibn, last_stride=1, num_classes=11, upstream=None):
        super().__init__()
        self.register_buffer('pixel_mean', torch.tensor([123.675, 116.28, 103.53]).view(1, -1, 1, 1))
        self.register_buffer('pixel_std', torch.tensor([58.395, 57.12, 57.375]).view(1, -1, 1, 1))
        if upstream is None:
            self.backbone = ResNet(last_stride, with_ibn)
            self.heads = EmbeddingHead(2048, num_classes)
        else:
            resnet, head = upstream
            self.backbone = resnet.ResNet(last_stride, 'BN', with_ibn, False, False,
                                          resnet.Bottleneck, [3, 4, 6, 3], [0, 0, 0, 0])
            self.heads = head.EmbeddingHead(
                feat_dim=2048, embedding_dim=0, num_classes=num_classes, neck_feat='after',
                pool_type='GlobalAvgPool', cls_type='Linear', scale=1, margin=0.0,
                with_bnneck=True, norm_type='BN')

    def forward(self, images):
        """images: already normalised (x - mean) / std, as reid-train embed's .npy input"""
        return self.heads(self.backbone(images))
