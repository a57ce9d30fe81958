#!/usr/bin/python3
"""Export a reid checkpoint (.safetensors) to ONNX, with Debian's python3-torch.

usage: export-onnx.py [--opset 13] [--torchreid-osnet PATH/osnet.py] IN.safetensors OUT.onnx

The network is rebuilt from its upstream definition (torchvision's resnet* and
mobilenet_v2; torchreid's osnet.py for osnet_*, given with --torchreid-osnet or
importable as torchreid), the checkpoint's tensors are loaded into it by name
(they are the upstream names), and the re-ID head is added as reid-train runs
it: the feature (pooled, or OSNet's fc), then the BNNeck batch norm when the
checkpoint takes its embedding after it. The graph takes `input` float32
[batch, 3, H, W] (normalised) with a dynamic batch and returns `embedding`
[batch, D], not L2-normalised (what `reid-train embed --raw` gives).
"""
import argparse
import importlib.util
import os
import sys

try:
    import torch
    import torchvision
except Exception as e:  # noqa: BLE001
    sys.exit('export-onnx: needs PyTorch and torchvision (Debian: python3-torch, '
             'python3-torchvision): %s' % e)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'python'))
from st import load_safetensors  # noqa: E402


class ReidHead(torch.nn.Module):
    """backbone feature [-> BNNeck batch norm]"""

    def __init__(self, backbone, neck):
        super().__init__()
        self.backbone = backbone
        self.neck = neck

    def forward(self, x):
        f = self.backbone(x)
        return self.neck(f) if self.neck is not None else f


def osnet_module(path):
    if path:
        spec = importlib.util.spec_from_file_location('torchreid_osnet', path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    try:
        from torchreid.reid.models import osnet  # noqa: WPS433
    except ImportError:
        try:
            from torchreid.models import osnet  # noqa: WPS433
        except ImportError:
            sys.exit('export-onnx: osnet needs torchreid\'s osnet.py (--torchreid-osnet PATH)')
    return osnet


def build(arch, meta, tensors, osnet_path):
    if arch.startswith('osnet'):
        model = getattr(osnet_module(osnet_path), arch)(num_classes=1, pretrained=False)
        model.classifier = torch.nn.Identity()
    elif arch.startswith('resnet'):
        model = getattr(torchvision.models, arch)(weights=None)
        if meta.get('last_stride', '1') == '1':  # the re-ID variant: no stride in layer4
            blk = model.layer4[0]
            conv = blk.conv2 if hasattr(blk, 'conv3') else blk.conv1
            conv.stride = (1, 1)
            blk.downsample[0].stride = (1, 1)
        model.fc = torch.nn.Identity()
    elif arch == 'mobilenet_v2':
        model = torchvision.models.mobilenet_v2(weights=None)
        model.classifier = torch.nn.Identity()
    else:
        sys.exit('export-onnx: architecture %s is not known to this script' % arch)
    backbone_sd = {k: torch.from_numpy(v) for k, v in tensors.items()
                   if not k.startswith(('bottleneck.', 'classifier.'))
                   and not (arch.startswith('resnet') and k.startswith('fc.'))}
    missing, unexpected = model.load_state_dict(backbone_sd, strict=False)
    missing = [k for k in missing if not k.endswith('num_batches_tracked')]
    if missing or unexpected:
        sys.exit('export-onnx: the checkpoint does not fit %s: missing %s, unexpected %s'
                 % (arch, missing[:8], unexpected[:8]))
    neck = None
    if meta.get('embed_after_bn') == '1':
        d = tensors['bottleneck.weight'].shape[0]
        neck = torch.nn.BatchNorm1d(d)
        neck.load_state_dict({k[len('bottleneck.'):]: torch.from_numpy(v)
                              for k, v in tensors.items() if k.startswith('bottleneck.')},
                             strict=False)
    return ReidHead(model, neck).eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('input')
    ap.add_argument('output')
    ap.add_argument('--opset', type=int, default=13)
    ap.add_argument('--torchreid-osnet', help="torchreid's models/osnet.py")
    a = ap.parse_args()
    if a.opset < 13:
        ap.error('--opset must be >= 13')
    tensors, meta = load_safetensors(a.input)
    arch = meta.get('arch')
    if not arch:
        sys.exit('export-onnx: %s has no arch metadata (write it with reid-train or '
                 'scripts/convert-checkpoint.py)' % a.input)
    model = build(arch, meta, tensors, a.torchreid_osnet)
    h, w = int(meta.get('input_height', 256)), int(meta.get('input_width', 128))
    x = torch.zeros(1, 3, h, w)
    tmp = a.output + '.tmp'
    with torch.no_grad():
        torch.onnx.export(model, x, tmp, input_names=['input'], output_names=['embedding'],
                          dynamic_axes={'input': {0: 'batch'}, 'embedding': {0: 'batch'}},
                          opset_version=a.opset, do_constant_folding=True)
    os.replace(tmp, a.output)
    print('export-onnx: %s (%s, %dx%d) -> %s (opset %d, dynamic batch)'
          % (a.input, arch, h, w, a.output, a.opset))
    return 0


if __name__ == '__main__':
    sys.exit(main())
