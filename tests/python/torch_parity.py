#!/usr/bin/python3
"""Parity test: `reid-train embed` vs torchvision's ResNet on the same weights.

usage: torch_parity.py --reid-train PATH --workdir DIR [--arch resnet50]
                       [--last-stride 1] [--height 256 --width 128] [--batch 4]
                       [--dtype F32|F16|BF16] [--device cpu] [--threads N]
                       [--rt-batch-size N] [--seed 0]

Builds a randomly initialised torchvision ResNet (BN running stats and affine
params randomised too), sets the last stride, writes its state_dict (fc.* and
num_batches_tracked included) to DIR/<arch>.safetensors with the reid metadata,
writes a random normalised input DIR/input.npy, runs
`reid-train embed` twice (L2-normalised and --raw) and compares with the
torch features (fc = Identity, eval mode).
Exit: 0 pass, 1 fail, 77 torch/torchvision unavailable (meson "skip").
"""
import argparse
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st import save_safetensors, load_safetensors, dtypes_of  # noqa: E402

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
EMBED_DIM = {'resnet18': 512, 'resnet34': 512, 'resnet50': 2048,
             'resnet101': 2048, 'resnet152': 2048}


def random_images(n, h, w, seed):
    """Normalised crops that differ in content: a smooth random 8x4 colour field
    (bilinear upsampled) plus 20% pixel noise, then (x - mean) / std."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 8, 4, generator=g)
    img = torch.nn.functional.interpolate(low, size=(h, w), mode='bilinear',
                                          align_corners=False)
    img = 0.8 * img + 0.2 * torch.rand(n, 3, h, w, generator=g)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return ((img - mean) / std).float().numpy()


def build_model(arch, last_stride, seed):
    """Random torchvision ResNet with non-trivial BatchNorm everywhere.

    BN weight ~ U(0.5, 1.5), bias ~ N(0, 0.1). Running stats: first measured on
    a few random crops (so activations stay O(1) and the pooled features of
    different crops really differ), then randomised around the measurement:
    mean += N(0, 0.1) * sigma, var *= U(0.75, 1.25). Purely random stats
    (mean N(0,0.1), var U(0.5,1.5)) make the features blow up (|f| ~ 300) and
    every crop map to the same direction (row-to-row cosine 0.9997), which would
    let a broken implementation pass a 0.9999 cosine check."""
    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)(weights=None)
    if last_stride == 1:
        blk = model.layer4[0]
        if isinstance(blk, torchvision.models.resnet.Bottleneck):
            blk.conv2.stride = (1, 1)
        else:
            blk.conv1.stride = (1, 1)
        blk.downsample[0].stride = (1, 1)
    g = torch.Generator().manual_seed(seed + 1)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            n = m.num_features
            m.weight.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.copy_(torch.randn(n, generator=g) * 0.1)
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one batch -> its exact stats
        model.train()
        model(torch.from_numpy(random_images(8, 128, 64, seed + 3)))
        for m in bns:
            n = m.num_features
            sd = m.running_var.sqrt()
            m.running_mean.add_(torch.randn(n, generator=g) * 0.1 * sd)
            m.running_var.mul_(torch.rand(n, generator=g) * 0.5 + 0.75)
            m.momentum = 0.1
            m.num_batches_tracked.fill_(0)
        # fc is ignored for embedding but must be present in the file
        model.fc.weight.copy_(torch.randn(model.fc.weight.shape, generator=g) * 0.01)
        model.fc.bias.copy_(torch.randn(model.fc.bias.shape, generator=g) * 0.01)
    model.eval()
    return model


def run(cmd, timeout):
    print('+ ' + ' '.join(cmd), flush=True)
    t0 = time.time()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
    except OSError as e:
        print('FAIL: cannot run reid-train: %s' % e)
        return False
    except subprocess.TimeoutExpired:
        print('FAIL: reid-train timed out after %ds' % timeout)
        return False
    dt = time.time() - t0
    if p.returncode != 0:
        print('FAIL: reid-train exited with %d' % p.returncode)
        sys.stdout.write(p.stdout.decode(errors='replace'))
        sys.stdout.write('--- stderr ---\n' + p.stderr.decode(errors='replace'))
        return False
    print('  reid-train ok in %.2fs' % dt)
    return True


def check_shape(out, n, d, what):
    if out.dtype != np.float32 or out.shape != (n, d):
        print('FAIL: %s output has dtype %s shape %s, want float32 (%d, %d)'
              % (what, out.dtype, out.shape, n, d))
        return False
    if not np.isfinite(out).all():
        print('FAIL: %s output has non-finite values' % what)
        return False
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--reid-train', required=True)
    ap.add_argument('--workdir', required=True)
    ap.add_argument('--arch', default='resnet50', choices=sorted(EMBED_DIM))
    ap.add_argument('--last-stride', type=int, default=1, choices=(1, 2))
    ap.add_argument('--height', type=int, default=256)
    ap.add_argument('--width', type=int, default=128)
    ap.add_argument('--batch', type=int, default=4)
    ap.add_argument('--dtype', default='F32', choices=('F32', 'F16', 'BF16'))
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--threads', type=int, default=None,
                    help='passed to reid-train --threads (and torch)')
    ap.add_argument('--rt-batch-size', type=int, default=None,
                    help='passed to reid-train --batch-size (e.g. 3 with --batch 4 '
                         'tests a partial last batch)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--cos-tol', type=float, default=0.9999)
    ap.add_argument('--raw-rtol', type=float, default=1e-3)
    ap.add_argument('--timeout', type=int, default=600)
    a = ap.parse_args()

    os.makedirs(a.workdir, exist_ok=True)
    torch.set_num_threads(a.threads or max(1, os.cpu_count() or 1))
    dim = EMBED_DIM[a.arch]
    tag = '%s_ls%d_%dx%d_%s' % (a.arch, a.last_stride, a.height, a.width, a.dtype)
    model_path = os.path.join(a.workdir, tag + '.safetensors')
    input_path = os.path.join(a.workdir, tag + '_input.npy')
    out_path = os.path.join(a.workdir, tag + '_embed.npy')
    raw_path = os.path.join(a.workdir, tag + '_raw.npy')

    # ---- model -> safetensors (state_dict as torch has it, fc and counters included)
    model = build_model(a.arch, a.last_stride, a.seed)
    sd = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    assert any(k.endswith('num_batches_tracked') for k in sd)
    num_classes = sd['fc.weight'].shape[0]
    meta = {
        'arch': a.arch, 'last_stride': str(a.last_stride),
        'input_height': str(a.height), 'input_width': str(a.width),
        'embed_dim': str(dim), 'bnneck': '0',
        'mean': ','.join(repr(x) for x in MEAN), 'std': ','.join(repr(x) for x in STD),
        'num_classes': str(num_classes), 'task': 'reid',
        'description': 'torch_parity random %s (seed %d, %s)' % (a.arch, a.seed, a.dtype),
    }
    save_safetensors(model_path, sd, meta, None if a.dtype == 'F32' else a.dtype)
    stored = dtypes_of(model_path)
    assert stored['conv1.weight'] == a.dtype and stored['bn1.num_batches_tracked'] == 'I64'
    # torch reference uses exactly what was written (rounded to F16/BF16 if asked)
    back, meta_back = load_safetensors(model_path)
    assert meta_back == meta
    # (load_state_dict casts F16 arrays back to the fp32 parameters)
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in back.items()})
    model.fc = torch.nn.Identity()
    model.eval()

    # ---- input: random normalised crops with differing content
    x = random_images(a.batch, a.height, a.width, a.seed + 2)
    np.save(input_path, x)

    t0 = time.time()
    with torch.no_grad():
        ref_raw = model(torch.from_numpy(x)).double().numpy()
    print('torch %s: %d x %d features in %.2fs (%d threads), mean |raw| %.4g'
          % (tag, *ref_raw.shape, time.time() - t0, torch.get_num_threads(),
             np.abs(ref_raw).mean()))
    ref = ref_raw / np.linalg.norm(ref_raw, axis=1, keepdims=True)
    if a.batch > 1:  # how different the crops are: the check is only as strong as this
        print('  reference row-to-row cosine: min %.4f' % (ref @ ref.T).min())

    base = [a.reid_train, 'embed', '--model', model_path, '--input', input_path,
            '--device', a.device]
    if a.rt_batch_size:
        base += ['--batch-size', str(a.rt_batch_size)]
    if a.threads:
        base += ['--threads', str(a.threads)]

    ok = True
    # ---- normalised embedding
    if not run(base + ['--output', out_path], a.timeout):
        return 1
    out = np.load(out_path)
    if check_shape(out, a.batch, dim, 'embed'):
        o = out.astype(np.float64)
        norms = np.linalg.norm(o, axis=1)
        cos = (o * ref).sum(1) / np.maximum(norms, 1e-30)
        maxabs = np.abs(o - ref).max()
        for i in range(a.batch):
            print('  row %d: cosine %.8f  |out| %.6f' % (i, cos[i], norms[i]))
        print('  embed: min cosine %.8f, max abs diff %.3e' % (cos.min(), maxabs))
        if not (cos.min() >= a.cos_tol):
            print('FAIL: cosine below %g' % a.cos_tol)
            ok = False
        if np.abs(norms - 1).max() > 1e-4:
            print('FAIL: embed rows are not L2-normalised (|out| off by %.3e)'
                  % np.abs(norms - 1).max())
            ok = False
    else:
        ok = False

    # ---- raw pooled feature
    if not run(base + ['--output', raw_path, '--raw'], a.timeout):
        return 1
    raw = np.load(raw_path)
    if check_shape(raw, a.batch, dim, 'raw'):
        r = raw.astype(np.float64)
        rel = np.linalg.norm(r - ref_raw, axis=1) / np.linalg.norm(ref_raw, axis=1)
        scale = np.abs(ref_raw).max()
        maxabs = np.abs(r - ref_raw).max()
        for i in range(a.batch):
            print('  raw row %d: relative L2 error %.3e' % (i, rel[i]))
        print('  raw: max rel L2 err %.3e, max abs diff %.3e (max |ref| %.4g)'
              % (rel.max(), maxabs, scale))
        if not (rel.max() <= a.raw_rtol and maxabs <= a.raw_rtol * scale):
            print('FAIL: raw feature off by more than rtol %g' % a.raw_rtol)
            ok = False
    else:
        ok = False

    print('%s %s' % ('PASS' if ok else 'FAIL', tag))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
