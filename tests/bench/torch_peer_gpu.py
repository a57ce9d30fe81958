#!/usr/bin/env python3
"""PyTorch side of the GPU benchmark (the peer bench_gpu is compared with), on the same GPU.

usage: torch_peer_gpu.py [--model M.safetensors] [--batch 1,128] [--iters 100]
                         [--variants eager_fp32,eager_amp_cl,compile_amp_cl]
                         [--compile-mode reduce-overhead] [--train-batch 64] [--skip-train]
                         [--json OUT]

(a) torchvision ResNet-50 with the last stride 1 and fc = Identity, eval, 256x128 input
    already on the GPU, with the weights of --model (a reid/torchvision safetensors file,
    read with tests/python/st.py) or torchvision's random initialisation:
      eager_fp32      torch.inference_mode, NCHW, TF32 off (true fp32, as reid's fp32 engine)
      eager_amp_cl    inference_mode + autocast fp16 + channels_last
      compile_amp_cl  torch.compile(mode=--compile-mode) of eager_amp_cl
    Each is warmed up, then timed call by call with CUDA events (median of --iters).
(b) one training step of the same network with a 751-class fc at batch --train-batch:
    channels_last, autocast fp16 + GradScaler, cross-entropy, backward, Adam.
Exit 0 ok, 77 torch/torchvision/CUDA missing.
"""
import argparse
import json
import os
import statistics
import sys
import time

try:
    import torch
    import torchvision
except Exception as e:  # noqa: BLE001 - any import problem means "skip"
    print('SKIP: torch/torchvision not importable: %s' % e)
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'python'))
from st import load_safetensors  # noqa: E402

ALL_VARIANTS = ('eager_fp32', 'eager_amp_cl', 'compile_amp_cl')


def resnet50_ls1(classes=None):
    m = torchvision.models.resnet50(weights=None, num_classes=classes or 1000)
    m.layer4[0].conv2.stride = (1, 1)
    m.layer4[0].downsample[0].stride = (1, 1)
    if classes is None:
        m.fc = torch.nn.Identity()
    return m


def load_weights(model, path):
    tensors, _ = load_safetensors(path)
    state = {k: torch.from_numpy(v.astype('float32') if v.dtype.kind == 'f' else v)
             for k, v in tensors.items()
             if not k.startswith('fc.') and not k.endswith('num_batches_tracked')}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith('num_batches_tracked')]
    if missing or unexpected:
        sys.exit('torch_peer_gpu: %s does not fit resnet50: missing %s, unexpected %s'
                 % (path, missing[:5], unexpected[:5]))


def time_cuda(fn, warmup, iters):
    """Median, p10, p90 milliseconds of fn() between CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(iters):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return statistics.median(times), times[len(times) // 10], times[len(times) * 9 // 10]


def make_runner(variant, model_path, batch, h, w, compile_mode):
    torch.manual_seed(0)
    model = resnet50_ls1()
    if model_path:
        load_weights(model, model_path)
    model = model.cuda().eval()
    x = torch.randn(batch, 3, h, w, device='cuda')
    amp = variant != 'eager_fp32'
    if amp:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if variant.startswith('compile'):
        model = torch.compile(model, mode=compile_mode)

    def run():
        with torch.inference_mode(), torch.autocast('cuda', dtype=torch.float16, enabled=amp):
            return model(x)
    y = run()
    assert tuple(y.shape) == (batch, 2048), y.shape
    return run


def train_runner(batch, h, w, classes=751):
    torch.manual_seed(0)
    model = resnet50_ls1(classes).cuda().train().to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=3.5e-4)
    scaler = torch.amp.GradScaler('cuda')
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(batch, 3, h, w, device='cuda').contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch,), device='cuda')

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast('cuda', dtype=torch.float16):
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', default=None)
    ap.add_argument('--batch', default='1,128')
    ap.add_argument('--iters', type=int, default=100)
    ap.add_argument('--height', type=int, default=256)
    ap.add_argument('--width', type=int, default=128)
    ap.add_argument('--variants', default=','.join(ALL_VARIANTS))
    ap.add_argument('--compile-mode', default='reduce-overhead')
    ap.add_argument('--train-batch', type=int, default=64)
    ap.add_argument('--skip-train', action='store_true')
    ap.add_argument('--json', default=None)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print('SKIP: torch sees no CUDA device')
        sys.exit(77)
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False  # eager_fp32 is true fp32; AMP is unaffected
    torch.backends.cuda.matmul.allow_tf32 = False
    device = torch.cuda.get_device_name(0)
    print('# device: %s, torch %s, torchvision %s, cuDNN %s' % (
        device, torch.__version__, torchvision.__version__, torch.backends.cudnn.version()))
    results = []

    def report(name, batch, ms, p10, p90):
        per_s = batch * 1000.0 / ms
        results.append({'name': name, 'batch': batch, 'ms': ms, 'p10': p10, 'p90': p90,
                        'per_s': per_s})
        print('%-34s batch %4d  %9.3f ms  (p10 %.3f, p90 %.3f)  %10.1f /s'
              % (name, batch, ms, p10, p90, per_s), flush=True)

    for variant in [v for v in a.variants.split(',') if v]:
        if variant not in ALL_VARIANTS:
            sys.exit('torch_peer_gpu: unknown variant %s' % variant)
        for batch in [int(b) for b in a.batch.split(',')]:
            t0 = time.time()
            iters = a.iters if batch < 64 else max(10, a.iters // 3)
            try:
                run = make_runner(variant, a.model, batch, a.height, a.width, a.compile_mode)
                prepared = time.time() - t0
                ms, p10, p90 = time_cuda(run, 10, iters)
            except Exception as e:  # noqa: BLE001 - a failing variant is reported, not fatal
                print('torch %s batch %d failed: %s' % (variant, batch, e), flush=True)
                continue
            report('torch %s' % variant, batch, ms, p10, p90)
            print('#   (prepared in %.1f s)' % prepared, flush=True)
            del run
            torch.cuda.empty_cache()
    if not a.skip_train:
        try:
            step = train_runner(a.train_batch, a.height, a.width)
            ms, p10, p90 = time_cuda(step, 5, 20)
            report('torch train step resnet50 (AMP)', a.train_batch, ms, p10, p90)
        except Exception as e:  # noqa: BLE001
            print('torch training step failed: %s' % e, flush=True)
    if a.json:
        with open(a.json, 'w') as f:
            json.dump({'device': device, 'torch': torch.__version__, 'results': results}, f,
                      indent=1)


if __name__ == '__main__':
    main()
