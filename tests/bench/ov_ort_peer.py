"""OpenVINO and ONNX Runtime side of the CPU benchmark (run in the virtual
environment that tests/bench/peers.sh makes; never system-wide).

usage: ov_ort_peer.py --onnx M.onnx --calib-npy C.npy [--threads 2] [--min-time 3]
                      [--reps 5] [--json OUT] [--batches 1,16]

The same ResNet-50 (last stride 1, 256x128) that reid runs, exported by
peer_export.py, at batch 1 and 16:
  ort_fp32   ONNX Runtime, CPU execution provider, all graph optimisations
  ort_int8   ONNX Runtime, static QDQ quantisation (per-channel weights,
             MinMax activation ranges) on the calibration crops
  ov_fp32    OpenVINO CPU plugin, INFERENCE_PRECISION_HINT f32
  ov_bf16    OpenVINO CPU plugin, INFERENCE_PRECISION_HINT bf16
  ov_int8    OpenVINO, NNCF post-training quantisation (nncf.quantize, default
             preset) on the calibration crops, run at the default precision
All with PERFORMANCE_HINT LATENCY / --threads threads, warmed up, then timed
round-robin across configurations (load from other processes hits all alike);
crops/s is the median repetition. A peer that cannot be built is reported as
null with the reason.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np


def bench(fns, min_time, reps, warmup=2):
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    per = min_time / max(reps, 1) / max(len(fns), 1)
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            n, t0 = 0, time.perf_counter()
            while True:
                fn()
                n += 1
                t = time.perf_counter() - t0
                if t >= per:
                    break
            times[k].append(t / n)
    return times


def ort_runner(path, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    s = ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
    return lambda x: s.run(None, {'x': x})[0]


def ort_int8(path, calib, out):
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{'x': calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.it, None)

    pre = out + '.pre.onnx'
    quant_pre_process(path, pre, skip_symbolic_shape=True)
    quantize_static(pre, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def ov_runner(model, threads, precision, batch, h, w):
    import openvino as ov
    core = ov.Core()
    m = model.clone() if hasattr(model, 'clone') else model
    m.reshape([batch, 3, h, w])
    cfg = {'PERFORMANCE_HINT': 'LATENCY', 'INFERENCE_NUM_THREADS': threads,
           'NUM_STREAMS': 1}
    if precision:
        cfg['INFERENCE_PRECISION_HINT'] = precision
    c = core.compile_model(m, 'CPU', cfg)
    req = c.create_infer_request()
    return lambda x: req.infer({0: x}), c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--onnx', required=True)
    ap.add_argument('--calib-npy', required=True)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--min-time', type=float, default=3.0)
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--batches', default='1,16')
    ap.add_argument('--json')
    ap.add_argument('--workdir', default=None)
    a = ap.parse_args()
    calib = np.load(a.calib_npy).astype(np.float32)
    h, w = calib.shape[2], calib.shape[3]
    work = a.workdir or os.path.dirname(os.path.abspath(a.onnx))
    batches = [int(b) for b in a.batches.split(',')]
    res = {'threads': a.threads, 'loadavg_start': list(os.getloadavg()), 'versions': {},
           'crops_per_s': {}, 'errors': {}}
    fns = {}
    reference = {}
    x = {b: np.ascontiguousarray(np.resize(calib, (b, 3, h, w))) for b in batches}

    try:
        import onnxruntime as ort
        res['versions']['onnxruntime'] = ort.__version__
        run = ort_runner(a.onnx, a.threads)
        for b in batches:
            fns['ort_fp32_b%d' % b] = (lambda r, xb: lambda: r(xb))(run, x[b])
        reference = run(x[batches[-1]])
        try:
            q = ort_int8(a.onnx, calib, os.path.join(work, 'peer-ort-int8.onnx'))
            runq = ort_runner(q, a.threads)
            for b in batches:
                fns['ort_int8_b%d' % b] = (lambda r, xb: lambda: r(xb))(runq, x[b])
        except Exception as e:  # noqa: BLE001
            res['errors']['ort_int8'] = str(e)[:300]
    except Exception as e:  # noqa: BLE001
        res['errors']['onnxruntime'] = str(e)[:300]

    try:
        import openvino as ov
        res['versions']['openvino'] = ov.__version__ if hasattr(ov, '__version__') else \
            ov.get_version()
        core = ov.Core()
        model = core.read_model(a.onnx)
        for prec in ('f32', 'bf16'):
            for b in batches:
                try:
                    run, c = ov_runner(core.read_model(a.onnx), a.threads, prec, b, h, w)
                    got = c.get_property('INFERENCE_PRECISION_HINT')
                    aliases = {'f32': ('f32', 'float32'), 'bf16': ('bf16', 'bfloat16')}[prec]
                    if not any(n in str(got).lower() for n in aliases):
                        res['errors']['ov_%s' % prec] = 'CPU plugin runs %s instead' % got
                        continue
                    fns['ov_%s_b%d' % ('fp32' if prec == 'f32' else prec, b)] = \
                        (lambda r, xb: lambda: r(xb))(run, x[b])
                except Exception as e:  # noqa: BLE001
                    res['errors']['ov_%s' % prec] = str(e)[:300]
        try:
            import nncf
            res['versions']['nncf'] = nncf.__version__
            qmodel = nncf.quantize(model, nncf.Dataset([calib[i:i + 1] for i in range(len(calib))]),
                                   subset_size=len(calib))
            qpath = os.path.join(work, 'peer-ov-int8.xml')
            ov.save_model(qmodel, qpath)
            for b in batches:
                run, _ = ov_runner(core.read_model(qpath), a.threads, None, b, h, w)
                fns['ov_int8_b%d' % b] = (lambda r, xb: lambda: r(xb))(run, x[b])
        except Exception as e:  # noqa: BLE001
            res['errors']['ov_int8'] = str(e)[:300]
    except Exception as e:  # noqa: BLE001
        res['errors']['openvino'] = str(e)[:300]

    times = bench(fns, a.min_time * len(fns) / 2, a.reps)
    for k, t in times.items():
        b = int(k.rsplit('_b', 1)[1])
        res['crops_per_s'][k] = b / statistics.median(t)
    res['loadavg_end'] = list(os.getloadavg())
    print('ONNX Runtime / OpenVINO peers (%s), %d threads, crops/s (median of %d reps)'
          % (', '.join('%s %s' % kv for kv in res['versions'].items()), a.threads, a.reps))
    for k in sorted(res['crops_per_s']):
        print('  %-16s %10.2f' % (k, res['crops_per_s'][k]))
    for k, e in res['errors'].items():
        print('  %-16s not run: %s' % (k, e))
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(res, f, indent=2)


if __name__ == '__main__':
    main()
