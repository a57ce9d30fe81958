#!/usr/bin/python3
"""Hands reid's benchmark model to the other engines (run with Debian's python3-torch).

usage: peer_export.py --model M.safetensors --onnx OUT.onnx
                      [--calibration LIST --calib-npy OUT.npy]

Builds torchvision's ResNet-50 with last stride 1 and no classifier (the
network reid's engine runs: backbone, global average pool, 2048-d output),
loads the checkpoint's tensors into it by name (reid's names are torchvision's),
and exports it to ONNX with a dynamic batch axis. With --calibration, the image
files listed (one path a line) are resized to the model's input and normalised
as reid does (ImageNet mean/std from the checkpoint metadata) into
OUT.npy [n, 3, H, W] float32: the calibration crops of the int8 peers.
Exit 0 ok, 77 torch/torchvision missing.
"""
import argparse
import json
import struct
import sys

try:
    import numpy as np
    import torch
    import torchvision
except Exception as e:  # noqa: BLE001 - any import problem means "skip"
    print('SKIP: torch/torchvision not importable: %s' % e)
    sys.exit(77)

DTYPES = {'F32': np.float32, 'F16': np.float16, 'BF16': None, 'I64': np.int64}


def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop('__metadata__', {})
    tensors = {}
    for name, t in header.items():
        a, b = t['data_offsets']
        if t['dtype'] == 'BF16':
            raw = np.frombuffer(data[a:b], dtype=np.uint16).astype(np.uint32) << 16
            arr = raw.view(np.float32)
        else:
            arr = np.frombuffer(data[a:b], dtype=DTYPES[t['dtype']])
        tensors[name] = torch.from_numpy(arr.reshape(t['shape']).copy())
    return tensors, meta


def resnet50_ls1():
    m = torchvision.models.resnet50(weights=None)
    m.layer4[0].conv2.stride = (1, 1)
    m.layer4[0].downsample[0].stride = (1, 1)
    m.fc = torch.nn.Identity()
    return m.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', required=True)
    ap.add_argument('--onnx', required=True)
    ap.add_argument('--calibration')
    ap.add_argument('--calib-npy')
    a = ap.parse_args()
    tensors, meta = read_safetensors(a.model)
    if meta.get('arch', 'resnet50') != 'resnet50':
        sys.exit('peer_export: %s is a %s, the peers run resnet50' % (a.model, meta.get('arch')))
    h = int(meta.get('input_height', 256))
    w = int(meta.get('input_width', 128))
    m = resnet50_ls1()
    own = m.state_dict()
    loaded = {k: v for k, v in tensors.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in loaded and not k.endswith('num_batches_tracked')]
    if missing:
        sys.exit('peer_export: %s lacks %d tensors of the network, e.g. %s'
                 % (a.model, len(missing), missing[:3]))
    m.load_state_dict(loaded, strict=False)
    torch.onnx.export(m, torch.zeros(1, 3, h, w), a.onnx, input_names=['x'],
                      output_names=['embedding'], opset_version=13,
                      dynamic_axes={'x': {0: 'n'}, 'embedding': {0: 'n'}})
    print('peer_export: %s -> %s (%d tensors, %dx%d)' % (a.model, a.onnx, len(loaded), h, w))
    if a.calibration:
        from PIL import Image
        mean = np.array(meta.get('mean', '0.485,0.456,0.406').split(','), dtype=np.float32)
        std = np.array(meta.get('std', '0.229,0.224,0.225').split(','), dtype=np.float32)
        paths = [p.strip() for p in open(a.calibration) if p.strip()]
        crops = np.zeros((len(paths), 3, h, w), np.float32)
        for i, p in enumerate(paths):
            img = Image.open(p).convert('RGB').resize((w, h), Image.BILINEAR)
            x = np.asarray(img, np.float32) / 255.0
            crops[i] = ((x - mean) / std).transpose(2, 0, 1)
        np.save(a.calib_npy, crops)
        print('peer_export: %d calibration crops -> %s' % (len(paths), a.calib_npy))


if __name__ == '__main__':
    main()
