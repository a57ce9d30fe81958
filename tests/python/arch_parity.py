#!/usr/bin/python3
"""Parity test: the upstream model definitions vs scripts/convert-checkpoint.py
+ `reid-train embed --raw`, on random weights.

usage: arch_parity.py --reid-train PATH --workdir DIR --arch NAME
                      [--height 64 --width 32] [--batch 3] [--seed 0]

Upstream definitions, not re-implementations:
  mobilenet_v2, resnet*   torchvision (last stride 2, as torchvision) (Debian's python3-torch / python3-torchvision)
  osnet_*                 torchreid's osnet.py (osnet_ain_x1_0: osnet_ain.py) from PyPI,
                          installed with --no-deps into a virtual environment this script
                          makes (--system-site-packages, so Debian's torch); only that file is
                          imported (the package's __init__ wants dependencies the test does
                          not need)
  fastreid_resnet50*      fast-reid's modeling/backbones/resnet.py (ResNet, Bottleneck, IBN) and
                          modeling/heads/embedding_head.py (EmbeddingHead, BNNeck) from PyPI's
                          fastreid, installed with --no-deps (and termcolor, yacs, which those
                          modules import) into a second venv; those two files are imported
                          without their packages' __init__. Where fast-reid cannot be
                          installed, tests/python/fastreid_resnet.py's transcription of the
                          same modules stands in (the script says so). The model is saved as
                          fast-reid's Checkpointer does (a `model` key, backbone. / heads.
                          prefixes, pixel_mean / pixel_std)
--errors also checks that the converter refuses, naming the cause, a checkpoint
with an unknown key, one with a tensor of the wrong shape and a truncated file.
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
import types

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
# fast-reid from PyPI (--no-deps) and the two small pure-Python packages its backbone and head
# modules import (termcolor: utils/checkpoint.py; yacs: config/, for EmbeddingHead's @configurable)
FASTREID = ['fastreid==1.4.0', 'termcolor==3.3.0', 'yacs==0.1.8']
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


def pip_venv(workdir, name, packages, installed, no_deps=True, timeout=600):
    """workdir/venv-NAME (--system-site-packages, so Debian's torch) with `packages` from PyPI,
    made once and shared by parallel tests (a lock); installed(venv) says whether they are
    there already. Returns the venv's path, or None when pip cannot install them."""
    venv = os.path.join(workdir, 'venv-' + name)
    lock = open(os.path.join(workdir, 'venv-%s.lock' % name), 'w')
    fcntl.flock(lock, fcntl.LOCK_EX)  # released when `lock` goes, at return
    if installed(venv):
        return venv
    print('+ making %s with %s%s' % (venv, ' '.join(packages),
                                     ' (--no-deps, Debian torch)' if no_deps else ''), flush=True)
    try:
        subprocess.run([sys.executable, '-m', 'venv', '--system-site-packages', venv], check=True)
        subprocess.run([os.path.join(venv, 'bin', 'pip'), 'install', '--quiet'] +
                       (['--no-deps'] if no_deps else []) + packages, check=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as e:
        print('cannot install %s into a venv: %s' % (' '.join(packages), e))
        return None
    return venv


def site_glob(venv, *parts, recursive=False):
    return glob.glob(os.path.join(venv, 'lib', 'python3*', 'site-packages', *parts),
                     recursive=recursive)


def torchreid_osnet(workdir, module='osnet'):
    """torchreid's models/<module>.py from a venv this script makes, or None (skip)."""
    def model_file(venv):
        return site_glob(venv, 'torchreid', '**', 'models', module + '.py', recursive=True)
    venv = pip_venv(workdir, 'torchreid', [TORCHREID], model_file)
    if venv is None:
        print('SKIP: no %s' % TORCHREID)
        return None
    found = model_file(venv)
    if not found:
        print('SKIP: %s has no models/%s.py' % (TORCHREID, module))
        return None
    spec = importlib.util.spec_from_file_location('torchreid_' + module, found[0])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fastreid_modules(workdir):
    """fast-reid's modeling/backbones/resnet.py and modeling/heads/embedding_head.py from a venv
    this script makes, imported without their packages' __init__ (which import every backbone,
    meta-architecture and loss), or None when fast-reid cannot be installed."""
    venv = pip_venv(workdir, 'fastreid', FASTREID, lambda v: site_glob(v, 'yacs'))
    site = site_glob(venv, '') if venv else []
    if not site or not os.path.isdir(os.path.join(site[0], 'fastreid')):
        return None
    sys.path.insert(0, site[0])
    root = os.path.join(site[0], 'fastreid')
    for name in ('fastreid.modeling', 'fastreid.modeling.backbones', 'fastreid.modeling.heads'):
        pkg = types.ModuleType(name)
        pkg.__path__ = [os.path.join(root, *name.split('.')[1:])]
        sys.modules[name] = pkg
    return (importlib.import_module('fastreid.modeling.backbones.resnet'),
            importlib.import_module('fastreid.modeling.heads.embedding_head'))


def build_upstream(arch, workdir, seed):
    torch.manual_seed(seed)
    if arch.startswith('osnet'):
        mod = torchreid_osnet(workdir, 'osnet_ain' if arch.startswith('osnet_ain') else 'osnet')
        if mod is None:
            sys.exit(77)
        model = getattr(mod, arch)(num_classes=11, pretrained=False)
    elif arch.startswith('fastreid_'):
        sys.path.insert(0, HERE)
        import fastreid_resnet
        upstream = fastreid_modules(workdir)
        if upstream is None:
            print('NOTE: fast-reid is not installable here: comparing against the transcription '
                  'of its modules in tests/python/fastreid_resnet.py')
        else:
            print('+ fast-reid %s: %s' % (FASTREID[0], upstream[0].__file__))
        torch.manual_seed(seed)
        model = fastreid_resnet.Baseline(with_ibn=arch.endswith('_ibn_a'), upstream=upstream)
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
            if isinstance(m, torch.nn.InstanceNorm2d) and m.affine:
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
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


def convert_and_compare(reid_train, pth, st, xin, out, height, width, ref, cos_tol):
    """pth -> convert-checkpoint.py -> st -> `reid-train embed --raw` on xin (-> out), row by
    row against ref [n, dim]; True when every row's cosine is >= cos_tol."""
    if not run([sys.executable, CONVERTER, '--reid-train', reid_train, '--input-size',
                '%dx%d' % (height, width), pth, st]):
        return False
    if not run([reid_train, 'embed', '--model', st, '--input', xin, '--output', out, '--raw',
                '--device', 'cpu']):
        return False
    got = np.load(out).astype(np.float64)
    if got.shape != ref.shape:
        print('FAIL: shape %s, upstream %s' % (got.shape, ref.shape))
        return False
    cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
    refn = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    print('  reference row-to-row cosine: min %.4f, max between rows %.4f'
          % ((refn @ refn.T).min(), (refn @ refn.T - 2 * np.eye(len(ref))).max()))
    for i, c in enumerate(cos):
        print('  row %d: cosine %.8f' % (i, c))
    rel = np.linalg.norm(got - ref) / np.linalg.norm(ref)
    print('  relative L2 error %.3e, max abs diff %.3e (largest |value| %.3e)'
          % (rel, np.abs(got - ref).max(), np.abs(ref).max()))
    return cos.min() >= cos_tol


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
    ap.add_argument('--errors', action='store_true',
                    help='also check the refusals (unknown key, wrong shape, truncated file)')
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
    elif a.arch.startswith('fastreid_'):  # as fast-reid's Checkpointer
        torch.save({'model': sd, 'iteration': 10}, pth)
    else:
        torch.save(sd, pth)

    x = random_images(a.batch, a.height, a.width, a.seed + 2)
    np.save(xin, x.numpy())
    with torch.no_grad():
        if a.arch.startswith('osnet') or a.arch.startswith('fastreid_'):
            ref = model(x)  # eval: the 512-d fc feature / the BNNeck output
        else:
            if a.arch.startswith('resnet'):
                model.fc = torch.nn.Identity()  # the pooled feature
            else:
                model.classifier = torch.nn.Identity()  # the pooled 1280-d feature
            ref = model(x)
    ref = ref.double().numpy()

    ok = convert_and_compare(a.reid_train, pth, st, xin, out, a.height, a.width, ref, a.cos_tol)
    if ok and a.errors:
        ok = check_errors(a, pth, sd, tag)
    print('%s %s' % ('PASS' if ok else 'FAIL', tag))
    return 0 if ok else 1


def check_errors(a, pth, sd, tag):
    """The converter refuses bad checkpoints with exit 1 and a message naming the cause."""
    wrap = ((lambda d: {'state_dict': {'module.' + k: v for k, v in d.items()}})
            if a.arch.startswith('osnet') else
            (lambda d: {'model': d}) if a.arch.startswith('fastreid_') else (lambda d: d))
    first = next(k for k, v in sd.items() if v.dim() == 4 and 'conv' in k)
    unknown = dict(sd)
    unknown['extra_block.conv.weight'] = torch.zeros(3, 3, 1, 1)
    wrong = dict(sd)
    wrong[first] = torch.zeros(tuple(sd[first].shape[:-1]) + (sd[first].shape[-1] + 2,))
    cases = [('unknown key', unknown, ['extra_block.conv.weight']),
             ('wrong shape', wrong, [first.replace('backbone.', ''), 'shapes that disagree'])]
    if a.arch.startswith('fastreid_'):  # a GeM head (fast-reid's SBS configs) is not ours
        gem = dict(sd)
        gem['heads.pool_layer.p'] = torch.ones(1) * 3.0
        cases.append(('GeM pooling', gem, ['heads.pool_layer.p']))
    ok = True
    for what, d, needles in cases:
        path = os.path.join(a.workdir, '%s_%s.pth' % (tag, what.replace(' ', '_')))
        torch.save(wrap(d), path)
        ok &= expect_refusal(a, what, path, needles)
    data = open(pth, 'rb').read()
    trunc = os.path.join(a.workdir, tag + '_truncated.pth')
    with open(trunc, 'wb') as f:
        f.write(data[:len(data) // 2])
    ok &= expect_refusal(a, 'truncated file', trunc, ['cannot read as a PyTorch checkpoint'])
    return ok


def expect_refusal(a, what, path, needles):
    out = path + '.safetensors'
    p = subprocess.run([sys.executable, CONVERTER, '--reid-train', a.reid_train, '--input-size',
                        '%dx%d' % (a.height, a.width), '--arch', a.arch, path, out],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    msg = p.stderr.decode(errors='replace')
    good = p.returncode == 1 and all(n in msg for n in needles) and not os.path.exists(out)
    print('  %s: exit %d, %s%s' % (what, p.returncode, msg.strip().splitlines()[0] if msg else '',
                                  '' if good else '  <- FAIL (wanted %s)' % needles))
    return good


if __name__ == '__main__':
    sys.exit(main())
