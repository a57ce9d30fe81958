#!/usr/bin/python3
"""Parity test: the upstream model definitions vs scripts/convert-checkpoint.py
+ `reid-train embed --raw`, on random weights.

usage: arch_parity.py --reid-train PATH --workdir DIR --arch NAME
                      [--height 64 --width 32] [--batch 3] [--seed 0]

Upstream definitions, not re-implementations:
  mobilenet_v2, resnet*   torchvision (last stride 2, as torchvision) (Debian's python3-torch / python3-torchvision)
  osnet_*                 torchreid's osnet.py from PyPI, installed with --no-deps into a
                          virtual environment this script makes (--system-site-packages, so
                          Debian's torch); only that file is imported (the package's
                          __init__ wants dependencies the test does not need)
The model gets random weights, random conv biases and BatchNorm statistics
measured on random crops then perturbed (as tests/python/torch_parity.py);
it is saved the way its project saves checkpoints (torchreid: a `state_dict`
key with `module.` prefixes; torchvision: a bare state_dict), converted, and
embedded. Every row's cosine to the eval-mode forward must be >= 0.9999.
Exit: 0 pass, 1 fail, 77 torch / torchvision / torchreid unavailable (skip).
"""
import argparse
import fcntl
import glob
import importlib.util
import os
import subprocess
import sys
import time

try:
    import numpy as np
    import torch
    import torchvision
except Exception as e:  # noqa: BLE001 - any import problem means "skip"
    print('SKIP: torch/torchvision/numpy not importable: %s' % e)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
CONVERTER = os.path.join(HERE, '..', '..', 'scripts', 'convert-checkpoint.py')
TORCHREID = 'torchreid==0.2.5'
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def random_images(n, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 8, 4, generator=g)
    img = torch.nn.functional.interpolate(low, size=(h, w), mode='bilinear', align_corners=False)
    img = 0.8 * img + 0.2 * torch.rand(n, 3, h, w, generator=g)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return ((img - mean) / std).float()


def torchreid_osnet(workdir):
    """torchreid's osnet.py module from a venv this script makes, or None (skip)."""
    venv = os.path.join(workdir, 'venv-torchreid')
    lock = open(os.path.join(workdir, 'venv-torchreid.lock'), 'w')
    fcntl.flock(lock, fcntl.LOCK_EX)  # parallel tests share one venv
    found = glob.glob(os.path.join(venv, 'lib', 'python3*', 'site-packages', 'torchreid',
                                   '**', 'models', 'osnet.py'), recursive=True)
    if not found:
        print('+ making %s with %s (--no-deps, Debian torch)' % (venv, TORCHREID), flush=True)
        try:
            subprocess.run([sys.executable, '-m', 'venv', '--system-site-packages', venv],
                           check=True)
            subprocess.run([os.path.join(venv, 'bin', 'pip'), 'install', '--quiet', '--no-deps',
                            TORCHREID], check=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as e:
            print('SKIP: cannot install %s into a venv: %s' % (TORCHREID, e))
            return None
        found = glob.glob(os.path.join(venv, 'lib', 'python3*', 'site-packages', 'torchreid',
                                       '**', 'models', 'osnet.py'), recursive=True)
    if not found:
        print('SKIP: %s has no models/osnet.py' % TORCHREID)
        return None
    spec = importlib.util.spec_from_file_location('torchreid_osnet', found[0])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build_upstream(arch, workdir, seed):
    torch.manual_seed(seed)
    if arch.startswith('osnet'):
        mod = torchreid_osnet(workdir)
        if mod is None:
            sys.exit(77)
        model = getattr(mod, arch)(num_classes=11, pretrained=False)
    else:
        model = getattr(torchvision.models, arch)(weights=None)
    return model


def randomise(model, h, w, seed):
    """Non-trivial BN everywhere (see torch_parity.py for why measured stats)."""
    g = torch.Generator().manual_seed(seed + 1)
    bns = [m for m in model.modules() if isinstance(m, (torch.nn.BatchNorm2d,
                                                          torch.nn.BatchNorm1d))]
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        for m in bns:
            n = m.num_features
            m.weight.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.copy_(torch.randn(n, generator=g) * 0.1)
            m.reset_running_stats()
            m.momentum = None
        model.train()
        model(random_images(8, h, w, seed + 3))
        for m in bns:
            n = m.num_features
            sd = m.running_var.sqrt()
            m.running_mean.add_(torch.randn(n, generator=g) * 0.1 * sd)
            m.running_var.mul_(torch.rand(n, generator=g) * 0.5 + 0.75)
            m.momentum = 0.1
    model.eval()


def run(cmd):
    print('+ ' + ' '.join(cmd), flush=True)
    t0 = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        print('FAIL: exit %d\n%s%s' % (p.returncode, p.stdout.decode(errors='replace'),
                                      p.stderr.decode(errors='replace')))
        return False
    print('  ok in %.2fs: %s' % (time.time() - t0, p.stdout.decode(errors='replace').strip()))
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--reid-train', required=True)
    ap.add_argument('--workdir', required=True)
    ap.add_argument('--arch', required=True)
    ap.add_argument('--height', type=int, default=64)
    ap.add_argument('--width', type=int, default=32)
    ap.add_argument('--batch', type=int, default=3)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--cos-tol', type=float, default=0.9999)
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

    model = build_upstream(a.arch, a.workdir, a.seed)
    randomise(model, a.height, a.width, a.seed)
    tag = '%s_%dx%d' % (a.arch, a.height, a.width)
    pth = os.path.join(a.workdir, tag + '.pth')
    st = os.path.join(a.workdir, tag + '.safetensors')
    xin = os.path.join(a.workdir, tag + '_input.npy')
    out = os.path.join(a.workdir, tag + '_raw.npy')
    sd = model.state_dict()
    if a.arch.startswith('osnet'):  # as torchreid's save_checkpoint writes a DataParallel model
        torch.save({'state_dict': {'module.' + k: v for k, v in sd.items()}, 'epoch': 1,
                    'rank1': 0.5}, pth)
    else:
        torch.save(sd, pth)

    x = random_images(a.batch, a.height, a.width, a.seed + 2)
    np.save(xin, x.numpy())
    with torch.no_grad():
        if a.arch.startswith('osnet'):
            ref = model(x)  # eval: the 512-d fc feature
        else:
            if a.arch.startswith('resnet'):
                model.fc = torch.nn.Identity()  # the pooled feature
            else:
                model.classifier = torch.nn.Identity()  # the pooled 1280-d feature
            ref = model(x)
    ref = ref.double().numpy()

    if not run([sys.executable, CONVERTER, '--reid-train', a.reid_train, '--input-size',
                '%dx%d' % (a.height, a.width), pth, st]):
        return 1
    if not run([a.reid_train, 'embed', '--model', st, '--input', xin, '--output', out, '--raw',
                '--device', 'cpu']):
        return 1
    got = np.load(out).astype(np.float64)
    if got.shape != ref.shape:
        print('FAIL: shape %s, upstream %s' % (got.shape, ref.shape))
        return 1
    cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
    refn = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    print('  reference row-to-row cosine: min %.4f' % (refn @ refn.T).min())
    for i, c in enumerate(cos):
        print('  row %d: cosine %.8f' % (i, c))
    rel = np.linalg.norm(got - ref) / np.linalg.norm(ref)
    print('  relative L2 error %.3e' % rel)
    ok = cos.min() >= a.cos_tol
    print('%s %s' % ('PASS' if ok else 'FAIL', tag))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
