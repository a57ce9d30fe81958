#!/usr/bin/python3
"""A torchreid OSNet checkpoint and an ONNX export of it both run in reidembed
and give the same embeddings (issue 10's "done when").

usage: reidembed_osnet.py --test PATH/test_reidembed_onnx --reid-train PATH --workdir DIR
                          [--arch osnet_x1_0] [--seed 0] -- GST_TEST_ARGS...

The model is torchreid's own definition (torchreid from PyPI with --no-deps in
a venv over Debian's torch, as arch_parity.py makes it) with random weights and
randomised BN statistics, saved as torchreid's save_checkpoint writes it
(`state_dict` key, `module.` prefixes, .pth.tar). scripts/convert-checkpoint.py
turns it into a checkpoint (256x128) and scripts/export-onnx.py exports the
upstream model as ONNX (PyTorch's exporter, opset 13, dynamic batch). Then
test_reidembed_onnx --checkpoint C --onnx O pushes a frame with three boxes
through reidembed with each model: cosine >= 0.9999 per box is the pass mark
(and the ONNX file with an unsupported operator, or a wrong input-size, must
fail at start naming it). Exit: 0 pass, 1 fail, 77 PyTorch or torchreid
unavailable.
"""
import argparse
import os
import sys

try:
    import torch
except Exception as e:  # noqa: BLE001
    print('SKIP: torch not importable: %s' % e)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import arch_parity  # noqa: E402

EXPORTER = os.path.join(HERE, '..', '..', 'scripts', 'export-onnx.py')


def main():
    argv = sys.argv[1:]
    gst_args = []
    if '--' in argv:
        gst_args = argv[argv.index('--') + 1:]
        argv = argv[:argv.index('--')]
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--test', required=True)
    ap.add_argument('--reid-train', required=True)
    ap.add_argument('--workdir', required=True)
    ap.add_argument('--arch', default='osnet_x1_0')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args(argv)
    if not a.arch.startswith('osnet'):
        ap.error('--arch must be a torchreid OSNet')
    os.makedirs(a.workdir, exist_ok=True)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    h, w = 256, 128
    model = arch_parity.build_upstream(a.arch, a.workdir, a.seed)  # exits 77 without torchreid
    arch_parity.randomise(model, h, w, a.seed)
    tag = 'reidembed_%s' % a.arch
    pth = os.path.join(a.workdir, tag + '.pth.tar')
    st = os.path.join(a.workdir, tag + '.safetensors')
    onnx = os.path.join(a.workdir, tag + '.onnx')
    # as torchreid's save_checkpoint writes a DataParallel model
    torch.save({'state_dict': {'module.' + k: v for k, v in model.state_dict().items()},
                'epoch': 60, 'rank1': 0.5, 'optimizer': None}, pth)
    osnet_py = arch_parity.torchreid_osnet(a.workdir).__file__
    steps = [
        [sys.executable, arch_parity.CONVERTER, '--arch', a.arch, '--input-size',
         '%dx%d' % (h, w), '--reid-train', a.reid_train, pth, st],
        [sys.executable, EXPORTER, '--torchreid-osnet', osnet_py, st, onnx],
    ]
    for cmd in steps:
        if not arch_parity.run(cmd):
            return 1
    cmd = [a.test, '--checkpoint', st, '--onnx', onnx] + gst_args
    print('+ ' + ' '.join(cmd), flush=True)
    rc = os.spawnv(os.P_WAIT, a.test, cmd)
    print('%s %s (test exit %d)' % ('PASS' if rc == 0 else 'FAIL', tag, rc))
    return 0 if rc == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
