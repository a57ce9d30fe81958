#!/usr/bin/python3
"""PyTorch side of the CPU benchmark (the "peer" the C implementation is compared with).

usage: torch_peer.py [--threads 2] [--json OUT] [--min-time 3] [--reps 5]
                     [--arch resnet50] [--workdir DIR] [--variants LIST]
                     [--skip-train] [--skip-infer]

(a) --arch (default resnet50: torchvision's ResNet-50 with last stride 1;
    mobilenet_v2: torchvision's, classifier removed (1280-d); osnet_x0_25 ..
    osnet_x1_0, osnet_ibn_x1_0, osnet_ain_x1_0: torchreid's osnet.py /
    osnet_ain.py (its eval forward, the 512-d feature); fastreid_resnet50,
    fastreid_resnet50_ibn_a: fast-reid's backbone and BNNeck head (2048-d);
    the upstream code from PyPI in venvs under --workdir, built as
    tests/python/arch_parity.py builds it), eval, 256x128 input, batch 1 and 16:
    every variant in --variants (default: the fp32 ones,
      nograd        torch.no_grad, NCHW
      inference     torch.inference_mode, NCHW
      nograd_cl     torch.no_grad, channels_last
      inference_cl  torch.inference_mode, channels_last
      jit_freeze    inference_mode + channels_last + torch.jit.trace/freeze/
                    optimize_for_inference (BN folded into conv, as a C engine would)
    and on request the bf16 ones,
      autocast_bf16_cl  inference_mode + channels_last + torch.autocast('cpu', bfloat16)
      bf16_cl           inference_mode + channels_last, model and input in bfloat16
      jit_freeze_bf16   bf16_cl traced, frozen and optimize_for_inference)
    is warmed up, then timed for >= --min-time seconds split into --reps
    repetitions (interleaved round-robin across all configurations, so that
    load from other processes hits all alike); crops/s is the median repetition.
    With REID_BENCH_CLOCK=cpu in the environment (as bench_arch's), the clock is
    the process's CPU time (time.process_time, all threads): crops per
    CPU-second. The JSON reports the best
    fp32 variant per batch size (and every variant under "variants", the best
    bf16 one under "bf16_*"); stdout ends with lines
      best ARCH fp32|bf16 BATCH CROPS_PER_S VARIANT
    (what bench_arch --peer reads). A variant PyTorch cannot run is left out
    with a message.
(b) one training step of ResNet-18 (torchvision default strides) at 128x64,
    batch 32: forward + cross-entropy on a 100-class fc + backward + Adam step.
Exit 0 ok, 77 torch/torchvision missing (meson "skip").
"""
import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

try:
    import torch
    import torchvision
except Exception as e:  # noqa: BLE001 - any import problem means "skip"
    print('SKIP: torch/torchvision not importable: %s' % e)
    sys.exit(77)

FP32_VARIANTS = ('nograd', 'inference', 'nograd_cl', 'inference_cl', 'jit_freeze')
BF16_VARIANTS = ('autocast_bf16_cl', 'bf16_cl', 'jit_freeze_bf16')
ALL_VARIANTS = FP32_VARIANTS + BF16_VARIANTS
ARCHS = ('resnet50', 'mobilenet_v2', 'osnet_x0_25', 'osnet_x0_5', 'osnet_x0_75', 'osnet_x1_0',
         'osnet_ibn_x1_0', 'osnet_ain_x1_0', 'fastreid_resnet50', 'fastreid_resnet50_ibn_a')


def cpu_name():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def bench(fns, min_time, reps, warmup=2):
    """Time every callable in `fns` (name -> fn) for >= min_time seconds in all,
    split into `reps` repetitions that are interleaved round-robin across the
    callables, so that a burst of load from other processes hits all of them
    alike. Returns name -> list of seconds per call, one entry per repetition."""
    clock = time.process_time if os.environ.get('REID_BENCH_CLOCK') == 'cpu' else time.perf_counter
    iters = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        t0 = clock()
        fn()
        one = max(clock() - t0, 1e-6)
        iters[name] = max(1, math.ceil(min_time / reps / one))
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = clock()
            for _ in range(iters[name]):
                fn()
            times[name].append((clock() - t0) / iters[name])
    return times


def resnet50_ls1():
    torch.manual_seed(0)
    m = torchvision.models.resnet50(weights=None)
    m.layer4[0].conv2.stride = (1, 1)
    m.layer4[0].downsample[0].stride = (1, 1)
    m.fc = torch.nn.Identity()
    return m.eval()


def build_model(arch, workdir):
    """(eval model, embedding dim) for --arch"""
    if arch == 'resnet50':
        return resnet50_ls1(), 2048
    torch.manual_seed(0)
    if arch == 'mobilenet_v2':
        m = torchvision.models.mobilenet_v2(weights=None)
        m.classifier = torch.nn.Identity()
        return m.eval(), 1280
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'python'))
    import arch_parity  # noqa: E402 - torchreid's and fast-reid's code from the venvs it makes
    os.makedirs(workdir, exist_ok=True)
    # the parity test's upstream model: eval forward = the embedding reid computes
    # (OSNet's 512-d feature; fast-reid's BNNeck feature, last stride 1)
    model = arch_parity.build_upstream(arch, workdir, 0).eval()
    return model, 2048 if arch.startswith('fastreid_') else 512


def make_runner(arch, workdir, variant, batch, h, w):
    model, dim = build_model(arch, workdir)
    x = torch.randn(batch, 3, h, w)
    cl = variant.endswith('_cl') or variant.startswith('jit_freeze')
    if cl:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if variant in ('bf16_cl', 'jit_freeze_bf16'):
        model = model.to(torch.bfloat16)
        x = x.to(torch.bfloat16)
    if variant.startswith('jit_freeze'):
        with torch.inference_mode():
            traced = torch.jit.trace(model, x)
            model = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
    ctx = torch.no_grad if variant.startswith('nograd') else torch.inference_mode
    autocast = variant.startswith('autocast_bf16')

    def run():
        with ctx():
            if autocast:
                with torch.autocast('cpu', dtype=torch.bfloat16):
                    return model(x)
            return model(x)
    y = run()
    assert tuple(y.shape) == (batch, dim), y.shape
    return run


def train_runner(batch, h, w, classes):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=classes).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(batch, 3, h, w)
    y = torch.randint(0, classes, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--json', default=None, help='write results here')
    ap.add_argument('--min-time', type=float, default=3.0,
                    help='seconds timed per configuration (after warm-up)')
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--arch', default='resnet50', choices=ARCHS)
    ap.add_argument('--workdir', default='/tmp/reid-torch-peer',
                    help='where the torchreid venv is made (osnet_*)')
    ap.add_argument('--variants', default=','.join(FP32_VARIANTS),
                    help='comma-separated subset of ' + ','.join(ALL_VARIANTS))
    ap.add_argument('--skip-train', action='store_true')
    ap.add_argument('--skip-infer', action='store_true')
    a = ap.parse_args()
    variants = [v for v in a.variants.split(',') if v]
    for v in variants:
        if v not in ALL_VARIANTS:
            ap.error('unknown variant %s' % v)

    torch.set_num_threads(a.threads)
    res = {'torch_version': torch.__version__, 'torchvision_version': torchvision.__version__,
           'threads': torch.get_num_threads(), 'cpu': cpu_name(),
           'mkldnn': bool(torch.backends.mkldnn.is_available()),
           'loadavg_start': list(os.getloadavg())}
    print('torch %s, torchvision %s, %d threads, %s'
          % (torch.__version__, torchvision.__version__, res['threads'], res['cpu']))

    if not a.skip_infer:
        H, W = 256, 128
        table = {}
        title = ('ResNet-50 last-stride 1' if a.arch == 'resnet50' else a.arch)
        unit = 'crops per CPU-second' if os.environ.get('REID_BENCH_CLOCK') == 'cpu' else 'crops/s'
        print('\n%s, %dx%d, eval (%s, median of %d reps)' % (title, H, W, unit, a.reps))
        print('  %-16s %12s %12s   %s' % ('variant', 'batch 1', 'batch 16',
                                        '(best repetition: b1 / b16)'))
        fns = {}
        for v in variants:
            for b in (1, 16):
                try:
                    fns[(v, b)] = make_runner(a.arch, a.workdir, v, b, H, W)
                except Exception as e:  # noqa: BLE001 - a variant this PyTorch cannot run
                    print('  %-16s not run: %s' % (v, str(e).split('\n')[0][:160]))
                    break
        times = bench(fns, a.min_time, a.reps)
        del fns
        for v in variants:
            if (v, 1) not in times or (v, 16) not in times:
                continue
            row = {}
            for b in (1, 16):
                sec = statistics.median(times[(v, b)])
                row['batch%d_crops_per_s' % b] = b / sec
                row['batch%d_best_rep_crops_per_s' % b] = b / min(times[(v, b)])
                row['batch%d_ms_per_iter' % b] = sec * 1e3
            table[v] = row
            print('  %-16s %12.2f %12.2f   (%.2f / %.2f)'
                  % (v, row['batch1_crops_per_s'], row['batch16_crops_per_s'],
                     row['batch1_best_rep_crops_per_s'], row['batch16_best_rep_crops_per_s']),
                  flush=True)
        key = 'resnet50_ls1_256x128' if a.arch == 'resnet50' else '%s_256x128' % a.arch
        res[key] = {}
        best_lines = []
        for kind, names in (('fp32', FP32_VARIANTS), ('bf16', BF16_VARIANTS)):
            got = [v for v in table if v in names]
            if not got:
                continue
            prefix = '' if kind == 'fp32' else 'bf16_'
            best1 = max(got, key=lambda v: table[v]['batch1_crops_per_s'])
            best16 = max(got, key=lambda v: table[v]['batch16_crops_per_s'])
            res[key].update({
                prefix + 'batch1_crops_per_s': table[best1]['batch1_crops_per_s'],
                prefix + 'batch16_crops_per_s': table[best16]['batch16_crops_per_s'],
                prefix + 'variant': best16, prefix + 'batch1_variant': best1})
            best_lines.append('best %s %s 1 %.3f %s' % (a.arch, kind,
                                                       table[best1]['batch1_crops_per_s'], best1))
            best_lines.append('best %s %s 16 %.3f %s' % (a.arch, kind,
                                                        table[best16]['batch16_crops_per_s'],
                                                        best16))
        res[key]['variants'] = table

    if not a.skip_train:
        B, H, W, C = 32, 128, 64, 100
        step = train_runner(B, H, W, C)
        times = bench({'train': step}, a.min_time, a.reps)['train']
        sec = statistics.median(times)
        res['resnet18_train_128x64_b32'] = {
            'steps_per_s': 1.0 / sec, 'images_per_s': B / sec, 'ms_per_step': sec * 1e3,
            'best_rep_images_per_s': B / min(times),
            'config': 'torchvision resnet18 (strides default), fc %d classes, '
                      'CrossEntropyLoss, Adam lr 3e-4, NCHW, fp32' % C,
        }
        print('\nResNet-18 train step %dx%d batch %d (fwd + CE + bwd + Adam): '
              '%.3f steps/s, %.1f images/s (%.0f ms/step)' % (H, W, B, 1 / sec, B / sec, sec * 1e3))

    res['loadavg_end'] = list(os.getloadavg())
    print('load average at start %.2f, at end %.2f (other processes skew the numbers)'
          % (res['loadavg_start'][0], res['loadavg_end'][0]))
    if not a.skip_infer:
        print('\n'.join(best_lines), flush=True)
    if a.json:
        d = os.path.dirname(os.path.abspath(a.json))
        os.makedirs(d, exist_ok=True)
        with open(a.json, 'w') as f:
            json.dump(res, f, indent=2)
            f.write('\n')
        print('\nwrote %s' % a.json)
    return 0


if __name__ == '__main__':
    sys.exit(main())
