#!/usr/bin/env bash
# One command for a GPU machine: every CUDA test and benchmark of an
# already-built tree, the PyTorch parity check and the PyTorch peer on the
# same GPU, then a short table (tests, speed, the issue's targets).
#
# usage: tests/gpu/run.sh [--bundle .gpu | --build DIR] [--part LIST] [--quick] [--out DIR]
#   --bundle DIR  binaries + libraries packed by tests/gpu/pack.sh (default: .gpu when it exists)
#   --build DIR   a CUDA build tree (meson setup DIR -Dcuda=enabled && ninja -C DIR)
#   --part LIST   any of tests,parity,bench,peer (default: all, in that order); split a long
#                 run over several calls, e.g. --part tests,parity then --part bench,peer
#   --quick       fewer timing iterations, no torch.compile (a smoke run)
#   --out DIR     logs and JSON (default: $OUT when set, else /tmp/reid-gpu)
# Needs: an NVIDIA driver; for parity/peer python3 with torch + torchvision (+ numpy).
# cuDNN 9 and cuBLAS 13 come from the bundle when packed with --with-cuda-libs, else from
# the machine (PyTorch's nvidia-* wheels, /usr/local/cuda, the loader's path).
# Exit: 0 when every test passed (skips count as failures here: a GPU is expected), 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2

args="$*"
bundle="" build="" parts="tests,parity,bench,peer" quick=0 out="${OUT:-/tmp/reid-gpu}"
while [ $# -gt 0 ]; do
  case $1 in
  --bundle) bundle=$2; shift 2 ;;
  --build) build=$2; shift 2 ;;
  --part) parts=$2; shift 2 ;;
  --quick) quick=1; shift ;;
  --out) out=$2; shift 2 ;;
  -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
  *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$bundle" ] && [ -z "$build" ]; then
  if [ -f .gpu/bundle.tar.xz ]; then bundle=.gpu; else build="build-cuda"; fi
fi
mkdir -p "$out"
work=$(mktemp -d /tmp/reid-gpu-work.XXXXXX)
status_file="$out/status.tsv"
: >"$status_file"
has_part() { [[ ",$parts," == *",$1,"* ]]; }
note() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$status_file"; }

# ---- binaries and libraries
if [ -n "$bundle" ]; then
  [ -f "$bundle/bundle.tar.xz" ] || { echo "run.sh: $bundle/bundle.tar.xz missing (tests/gpu/pack.sh makes it)" >&2; exit 2; }
  unpack=/tmp/reid-gpu-bundle
  rm -rf "$unpack" && mkdir -p "$unpack"
  tar -xJf "$bundle/bundle.tar.xz" -C "$unpack" || { echo "run.sh: cannot unpack the bundle" >&2; exit 2; }
  bin=$unpack/bin
  libpath=$unpack/lib
  test_bin() { echo "$bin/$1"; }
  bench=$bin/bench_gpu
  reid_train=$bin/reid-train
else
  [ -x "$build/tests/cuda/test_cuda_ops" ] || { echo "run.sh: $build has no CUDA tests; build with -Dcuda=enabled" >&2; exit 2; }
  build=$(cd "$build" && pwd)
  libpath=""
  test_bin() { case $1 in test_embedder_cuda) echo "$build/tests/gst/$1" ;; *) echo "$build/tests/cuda/$1" ;; esac; }
  bench=$build/tests/bench/bench_gpu
  reid_train=$build/training/reid-train
fi

# cuDNN / cuBLAS / cudart directories: the bundle first, then PyTorch's wheels, then the toolkit
find_lib_dir() { # library file name -> directory (empty when not found)
  local name=$1 d
  for d in ${libpath:+"$libpath"} $(python3 - 2>/dev/null <<'EOF'
import importlib, os
for mod in ('nvidia.cudnn', 'nvidia.cublas', 'nvidia.cuda_runtime', 'nvidia.cu13', 'nvidia'):
    try:
        m = importlib.import_module(mod)
    except Exception:
        continue
    for p in getattr(m, '__path__', []):
        for sub in ('lib', 'lib64', ''):
            if os.path.isdir(os.path.join(p, sub)):
                print(os.path.join(p, sub))
EOF
  ) /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
    [ -e "$d/$name" ] && { echo "$d"; return; }
  done
  d=$(find /usr /opt /lib /root -name "$name" -print 2>/dev/null | head -n 1)
  [ -n "$d" ] && dirname "$d"
}
extra=""
for lib in libcudnn.so.9 libcublas.so.13 libcublasLt.so.13 libcudart.so.13; do
  dir=$(find_lib_dir "$lib")
  if [ -z "$dir" ]; then echo "run.sh: warning: $lib not found on this machine" >&2; continue; fi
  [[ ":$extra:" == *":$dir:"* ]] || extra="$extra:$dir"
done
# only reid's programs see these libraries (the bundle's are Debian's: python and torch keep
# the machine's own)
libenv="${libpath}${extra}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
libenv=${libenv#:}
run_bin() { LD_LIBRARY_PATH="$libenv" "$@"; }
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
echo "library path of reid's programs: $libenv"
cat >"$work/reid-train" <<EOF2
#!/bin/sh
LD_LIBRARY_PATH="$libenv" exec "$reid_train" "\$@"
EOF2
chmod +x "$work/reid-train"
missing=$(run_bin ldd "$(test_bin test_cuda_ops)" 2>&1 | grep 'not found' || true)
if [ -n "$missing" ]; then
  echo "run.sh: libraries not found:" >&2
  echo "$missing" >&2
  exit 1
fi

device=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1)
echo "device: ${device:-unknown (nvidia-smi failed)}"
echo "command: tests/gpu/run.sh $args"
git_rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

# ---- tests
failed=0
if has_part tests; then
  for t in test_cuda_available test_cuda_ops test_cuda_conv_linear test_cuda_loss \
    test_cuda_preprocess test_cuda_resnet test_cuda_train test_embedder_cuda; do
    start=$(date +%s%N)
    run_bin timeout 600 "$(test_bin $t)" --workdir "$work/$t" >"$out/$t.log" 2>&1
    rc=$?
    secs=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    case $rc in
    0) st=PASS ;;
    77) st=SKIP; failed=1 ;;
    124) st=TIMEOUT; failed=1 ;;
    *) st="FAIL($rc)"; failed=1 ;;
    esac
    note test "$t" "$st ${secs}s"
    echo "$t: $st (${secs}s)"
    [ "$st" = PASS ] || tail -n 25 "$out/$t.log"
  done
fi

# ---- parity with PyTorch (reid-train embed --device cuda), which also writes the weights
model=""
if has_part parity || has_part bench || has_part peer; then
  python3 tests/python/torch_parity.py --reid-train "$work/reid-train" --workdir "$work" --device cuda \
    --batch 4 >"$out/torch_parity.log" 2>&1
  rc=$?
  model=$(ls "$work"/resnet50_ls1_256x128_F32.safetensors 2>/dev/null || true)
  if has_part parity; then
    case $rc in 0) st=PASS ;; 77) st="SKIP (no torch)" ;; *) st="FAIL($rc)"; failed=1 ;; esac
    note test torch_parity_cuda "$st"
    echo "torch_parity --device cuda: $st"
    tail -n 8 "$out/torch_parity.log"
  fi
  if [ -z "$model" ]; then
    model=$work/resnet50.safetensors
    "$work/reid-train" init --arch resnet50 --last-stride 1 --output "$model" >/dev/null 2>&1 || model=""
  fi
fi

# ---- benchmarks
iters=100
[ $quick = 1 ] && iters=20
if has_part bench; then
  run_bin "$bench" ${model:+--model "$model"} --iters $iters --json "$out/bench_gpu.json" 2>&1 | tee "$out/bench_gpu.log"
  [ "${PIPESTATUS[0]}" = 0 ] || { note bench bench_gpu FAIL; failed=1; }
fi
if has_part peer; then
  variants=eager_fp32,eager_amp_cl,compile_amp_cl
  [ $quick = 1 ] && variants=eager_fp32,eager_amp_cl
  python3 tests/bench/torch_peer_gpu.py ${model:+--model "$model"} --iters $iters \
    --variants $variants --json "$out/torch_peer_gpu.json" 2>&1 | tee "$out/torch_peer_gpu.log"
  rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || note bench torch_peer_gpu "exit $rc"
fi

# ---- summary
python3 - "$out" "$device" "$git_rev" <<'EOF'
import json, os, sys
out, device, rev = sys.argv[1], sys.argv[2], sys.argv[3]
def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)['results']
    except (OSError, ValueError, KeyError):
        return []
reid, torch = load('bench_gpu.json'), load('torch_peer_gpu.json')
print('\n== reid on %s (commit %s)' % (device or 'unknown GPU', rev))
with open(os.path.join(out, 'status.tsv')) as f:
    for line in f:
        kind, name, st = line.rstrip('\n').split('\t')
        print('%-6s %-28s %s' % (kind, name, st))
print('\n%-40s %6s %10s %12s' % ('measurement', 'batch', 'ms', 'per second'))
for r in reid + torch:
    print('%-40s %6d %10.3f %12.1f' % (r['name'], r['batch'], r['ms'], r['per_s']))
def pick(rows, prefix, batch):
    c = [r for r in rows if r['name'].startswith(prefix) and r['batch'] == batch]
    return max(c, key=lambda r: r['per_s']) if c else None
print('\ntargets (issue 3):')
f16 = pick(reid, 'engine fp16 (device', 128)
best_t = max([r for r in torch if r['batch'] == 128 and 'train' not in r['name']],
             key=lambda r: r['per_s'], default=None)
if f16:
    print('  fp16 batch 128: %.0f crops/s (target >= 40000): %s'
          % (f16['per_s'], 'met' if f16['per_s'] >= 40000 else 'NOT met'))
    if best_t:
        ratio = f16['per_s'] / best_t['per_s']
        print('  vs fastest PyTorch (%s, %.0f crops/s): %.2fx (target >= 1.3x): %s'
              % (best_t['name'], best_t['per_s'], ratio, 'met' if ratio >= 1.3 else 'NOT met'))
b1 = pick(reid, 'engine fp16 (device', 1)
if b1:
    print('  fp16 batch 1 latency: %.3f ms (target <= 1 ms): %s'
          % (b1['ms'], 'met' if b1['ms'] <= 1.0 else 'NOT met'))
tr = pick(reid, 'train step', 64)
ta = pick(torch, 'torch train step', 64)
if tr and ta:
    ratio = tr['per_s'] / ta['per_s']
    print('  training step b64: %s %.0f img/s vs PyTorch AMP %.0f img/s: %.2fx (target >= 1.0x): %s'
          % (tr['name'], tr['per_s'], ta['per_s'], ratio, 'met' if ratio >= 1.0 else 'NOT met'))
EOF
rm -rf "$work"
echo "logs: $out"
exit $failed
