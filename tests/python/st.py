#!/usr/bin/env python3
"""Tiny dependency-free safetensors reader/writer (numpy only).

save_safetensors(path, tensors, metadata=None, dtypes=None)
    tensors:  {name: np.ndarray}; float32 / float16 / int64 (also int32, uint8,
              float64 which is stored as F64).
    dtypes:   optional {name: 'F32'|'F16'|'BF16'|...} overriding the stored
              dtype of a float array. 'BF16' takes a float32 array and rounds it
              to nearest-even bfloat16. A single string applies to every
              floating tensor (e.g. dtypes='F16').
    metadata: {str: str}, written as "__metadata__".
load_safetensors(path) -> (tensors, metadata)
    BF16 tensors come back widened to float32 (exact); everything else keeps
    its stored numpy dtype.
Helpers: to_bf16_bits(a) -> uint16 array, bf16_round(a) -> float32 array
holding the bf16-rounded values (what a BF16 file will read back as).
"""
import json
import struct

import numpy as np

_NP_FOR = {
    'F64': np.dtype('<f8'), 'F32': np.dtype('<f4'), 'F16': np.dtype('<f2'),
    'I64': np.dtype('<i8'), 'I32': np.dtype('<i4'), 'I16': np.dtype('<i2'),
    'I8': np.dtype('i1'), 'U8': np.dtype('u1'), 'BOOL': np.dtype('?'),
}


def _code_of(dt):
    dt = np.dtype(dt).newbyteorder('=')
    for k, v in _NP_FOR.items():
        if v.newbyteorder('=') == dt:
            return k
    raise TypeError('unsupported dtype %s' % dt)


def to_bf16_bits(a):
    """float32 array -> uint16 bfloat16 bit patterns, round to nearest even (NaN kept NaN)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    u = a.view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    nan = np.isnan(a)
    out = (rounded & 0xFFFF).astype(np.uint16)
    if nan.any():
        out[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)  # quiet NaN
    return out.reshape(a.shape)


def from_bf16_bits(b):
    b = np.ascontiguousarray(b, dtype=np.uint16)
    return (b.astype(np.uint32) << 16).view(np.float32).reshape(b.shape)


def bf16_round(a):
    """float32 values rounded to bfloat16 and widened back (exact)."""
    return from_bf16_bits(to_bf16_bits(a))


def save_safetensors(path, tensors, metadata=None, dtypes=None):
    header = {}
    blobs = []
    off = 0
    for name, arr in tensors.items():
        arr = np.asarray(arr)
        want = dtypes if isinstance(dtypes, str) else (dtypes or {}).get(name)
        if want is not None and not np.issubdtype(arr.dtype, np.floating):
            want = None  # a global dtype only converts floating tensors
        if want == 'BF16':
            raw = to_bf16_bits(arr).astype('<u2').tobytes()
            code = 'BF16'
        else:
            if want is not None:
                arr = arr.astype(_NP_FOR[want])
            code = _code_of(arr.dtype)
            raw = np.ascontiguousarray(arr).astype(_NP_FOR[code], copy=False).tobytes()
        header[name] = {'dtype': code, 'shape': [int(s) for s in arr.shape],
                        'data_offsets': [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata:
        header['__metadata__'] = {str(k): str(v) for k, v in metadata.items()}
    hb = json.dumps(header, separators=(',', ':')).encode('utf-8')
    hb += b' ' * ((-len(hb)) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hb)))
        f.write(hb)
        for raw in blobs:
            f.write(raw)


def load_safetensors(path):
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n].decode('utf-8'))
    metadata = header.pop('__metadata__', {}) or {}
    body = memoryview(data)[8 + n:]
    out = {}
    for name, info in header.items():
        b, e = info['data_offsets']
        shape = tuple(info['shape'])
        if info['dtype'] == 'BF16':
            arr = from_bf16_bits(np.frombuffer(body[b:e], dtype='<u2')).reshape(shape)
        else:
            arr = np.frombuffer(body[b:e], dtype=_NP_FOR[info['dtype']]).reshape(shape).copy()
        out[name] = arr
    return out, metadata


def dtypes_of(path):
    """{name: dtype string} as stored in the file header."""
    with open(path, 'rb') as f:
        (n,) = struct.unpack('<Q', f.read(8))
        header = json.loads(f.read(n).decode('utf-8'))
    header.pop('__metadata__', None)
    return {k: v['dtype'] for k, v in header.items()}


if __name__ == '__main__':  # self-test
    import os
    import sys
    import tempfile
    rng = np.random.default_rng(0)
    t = {'a': rng.standard_normal((3, 4)).astype(np.float32),
         'h': rng.standard_normal((5,)).astype(np.float16),
         'b': rng.standard_normal((2, 3, 2)).astype(np.float32),
         'n': np.array(7, dtype=np.int64)}
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, 'x.safetensors')
        save_safetensors(p, t, {'arch': 'resnet50', 'k': 1}, {'b': 'BF16'})
        r, m = load_safetensors(p)
        ok = (np.array_equal(r['a'], t['a']) and np.array_equal(r['h'], t['h'])
              and np.array_equal(r['b'], bf16_round(t['b']))
              and np.abs(r['b'] - t['b']).max() <= np.abs(t['b']).max() / 256
              and r['n'].dtype == np.int64 and r['n'].shape == () and int(r['n']) == 7
              and m == {'arch': 'resnet50', 'k': '1'}
              and dtypes_of(p) == {'a': 'F32', 'h': 'F16', 'b': 'BF16', 'n': 'I64'})
        # nearest-even ties: 1 + 2^-8 is halfway between 1 and 1+2^-7 -> 1
        tie = np.array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8)], np.float32)
        ok = ok and np.array_equal(bf16_round(tie), np.array([1, 1 + 2 ** -6, -1], np.float32))
        with open(p, 'rb') as f:
            ok = ok and (struct.unpack('<Q', f.read(8))[0] % 8 == 0)
    print('st.py self-test', 'OK' if ok else 'FAILED')
    sys.exit(0 if ok else 1)
