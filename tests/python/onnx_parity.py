#!/usr/bin/python3
"""ONNX export and import test on a converted random checkpoint (upstream
definition, randomised BN statistics), with ONNX Runtime (from PyPI, in a venv
this script makes over Debian's torch/numpy) as the reference:
  PyTorch's export (scripts/export-onnx.py) run by ONNX Runtime   vs reid-train embed --raw
  the same file imported by reid (reid-train embed --model X.onnx) vs ONNX Runtime on it
  reid's own export (reid-train export --format onnx) run by ONNX Runtime vs reid-train embed

usage: onnx_parity.py --reid-train PATH --workdir DIR --arch NAME [--batch 3]

Checks: a dynamic batch (ONNX Runtime runs batch 1 and --batch on each file and
they agree), per-row cosine >= 0.9999 for each pair. Exit: 0 pass, 1 fail, 77
torch or onnxruntime unavailable.
"""
import argparse
import os
import subprocess
import sys

try:
    import numpy as np
    import torch
except Exception as e:  # noqa: BLE001
    print('SKIP: torch/numpy not importable: %s' % e)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import arch_parity  # noqa: E402

EXPORTER = os.path.join(HERE, '..', '..', 'scripts', 'export-onnx.py')
ORT = 'onnxruntime==1.16.3'

def ort_python(workdir):
    def installed(venv):
        py = os.path.join(venv, 'bin', 'python')
        return os.path.exists(py) and subprocess.run([py, '-c', 'import onnxruntime']).returncode == 0
    venv = arch_parity.pip_venv(workdir, 'onnxruntime', [ORT], installed, no_deps=False,
                                timeout=900)
    if venv is None:
        print('SKIP: no %s' % ORT)
        return None
    return os.path.join(venv, 'bin', 'python')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--reid-train', required=True)
    ap.add_argument('--workdir', required=True)
    ap.add_argument('--arch', required=True)
    ap.add_argument('--height', type=int, default=64)
    ap.add_argument('--width', type=int, default=32)
    ap.add_argument('--batch', type=int, default=3)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    py = ort_python(a.workdir)
    if py is None:
        return 77
    model = arch_parity.build_upstream(a.arch, a.workdir, a.seed)
    arch_parity.randomise(model, a.height, a.width, a.seed)
    tag = 'onnx_%s_%dx%d' % (a.arch, a.height, a.width)
    pth, st = (os.path.join(a.workdir, tag + ext) for ext in ('.pth', '.safetensors'))
    onnx, xin = (os.path.join(a.workdir, tag + ext) for ext in ('.onnx', '_input.npy'))
    raw, ort_out = (os.path.join(a.workdir, tag + ext) for ext in ('_raw.npy', '_ort.npy'))
    imported = os.path.join(a.workdir, tag + '_imported.npy')
    ours, ours_ort = (os.path.join(a.workdir, tag + ext) for ext in ('_reid.onnx', '_reid_ort.npy'))
    sd = model.state_dict()
    if a.arch.startswith('fastreid_'):  # as fast-reid's Checkpointer writes it
        torch.save({'model': sd, 'iteration': 10}, pth)
    else:
        torch.save(sd, pth)
    x = arch_parity.random_images(a.batch, a.height, a.width, a.seed + 2)
    np.save(xin, x.numpy())
    # PyTorch's export: scripts/export-onnx.py rebuilds torchvision's and torchreid osnet.py's
    # models from the checkpoint; osnet_ain (osnet_ain.py) and fast-reid's models, which it does
    # not know, are exported here from the upstream model itself (eval: the embedding reid gives)
    direct = a.arch.startswith(('osnet_ain', 'fastreid_'))
    if direct:
        with torch.no_grad():
            torch.onnx.export(model.eval(), x[:1], onnx, input_names=['input'],
                              output_names=['embedding'],
                              dynamic_axes={'input': {0: 'batch'}, 'embedding': {0: 'batch'}},
                              opset_version=13, do_constant_folding=True)
    osnet = []
    if a.arch.startswith('osnet') and not direct:
        osnet = ['--torchreid-osnet', arch_parity.torchreid_osnet(a.workdir).__file__]
    run_ort = ('import sys, numpy as np, onnxruntime as ort\n'
               's = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])\n'
               'name = s.get_inputs()[0].name\n'
               'x = np.load(sys.argv[2])\n'
               'one = s.run(None, {name: x[:1]})[0]\n'
               'out = s.run(None, {name: x})[0]\n'
               'assert np.allclose(one, out[:1], rtol=1e-4, atol=1e-5), "batch 1 differs"\n'
               'np.save(sys.argv[3], out)\n')
    steps = [
        [sys.executable, arch_parity.CONVERTER, '--reid-train', a.reid_train, '--arch', a.arch,
         '--input-size', '%dx%d' % (a.height, a.width), pth, st],
    ] + ([] if direct else [[sys.executable, EXPORTER] + osnet + [st, onnx]]) + [
        [a.reid_train, 'embed', '--model', st, '--input', xin, '--output', raw, '--raw',
         '--device', 'cpu'],
        [py, '-c', run_ort, onnx, xin, ort_out],
        [a.reid_train, 'embed', '--model', onnx, '--input', xin, '--output', imported, '--raw',
         '--device', 'cpu'],
        [a.reid_train, 'export', '--format', 'onnx', '--model', st, '--output', ours],
        [py, '-c', run_ort, ours, xin, ours_ort],
    ]
    for cmd in steps:
        if not arch_parity.run(cmd):
            return 1
    ok = True
    for what, x, y in [('PyTorch export (ONNX Runtime) vs reid', ort_out, raw),
                       ('PyTorch export: ONNX Runtime vs reid importing it', ort_out, imported),
                       ('reid export (ONNX Runtime) vs reid', ours_ort, raw)]:
        print(what)
        ok = compare(x, y, 0.9999) and ok
    print('%s %s' % ('PASS' if ok else 'FAIL', tag))
    return 0 if ok else 1


def compare(a_path, b_path, tol):
    a, b = np.load(a_path).astype(np.float64), np.load(b_path).astype(np.float64)
    if a.shape != b.shape:
        print('FAIL: shapes %s and %s' % (a.shape, b.shape))
        return False
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    for i, c in enumerate(cos):
        print('  row %d: cosine %.8f' % (i, c))
    print('  max abs difference %.3g (max abs value %.3g)' % (np.abs(a - b).max(), np.abs(b).max()))
    return cos.min() >= tol


if __name__ == '__main__':
    sys.exit(main())
