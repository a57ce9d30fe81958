#!/bin/sh
# reid's CPU engine next to PyTorch, ONNX Runtime and OpenVINO on the same
# ResNet-50 (last stride 1, 256x128), fp32 / bf16 / int8, batch 1 and 16, in
# one run: --rounds rounds, each running every program once in turn
# (bench_cpu, torch_peer.py, ov_ort_peer.py), so that load from other
# processes hits all of them alike; each figure is the median over the
# rounds, and the ratios are printed with the load average.
#
#   tests/bench/peers.sh [--build DIR] [--work DIR] [--rounds 3] [--min-time 3] [--threads 2]
#
# ONNX Runtime, OpenVINO and NNCF come from PyPI into a virtual environment
# this script makes (WORK/venv); where that is impossible (no network, no
# venv module) they are skipped with a message. PyTorch is Debian's
# python3-torch. The model is `reid-train init --arch resnet50` exported to
# ONNX with its weights (peer_export.py); the int8 peers calibrate on the
# same 64 crops of a synthetic Market-1501 set (WORK/calibration.txt).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=build work= rounds=3 min_time=3 threads=2
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --min-time) min_time=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--work DIR] [--rounds N] [--min-time S] [--threads N]" >&2
       exit 2 ;;
  esac
done
build=$(cd "$build" && pwd)
work=${work:-$build/peers}
mkdir -p "$work"
export OMP_NUM_THREADS=$threads

model=$work/resnet50-ls1.safetensors
[ -f "$model" ] || "$build/training/reid-train" init --arch resnet50 --output "$model" >/dev/null
if [ ! -f "$work/calibration.txt" ]; then
  rm -rf "$work/synth"
  "$build/training/reid-train" synth --layout market --output "$work/synth" --identities 16 \
    --frames 4 --threads "$threads" >/dev/null
  find "$work/synth/bounding_box_train" -name '*.jpg' | sort | head -64 > "$work/calibration.txt"
fi
/usr/bin/python3 "$here/peer_export.py" --model "$model" --onnx "$work/resnet50-ls1.onnx" \
  --calibration "$work/calibration.txt" --calib-npy "$work/calibration.npy"

venv=$work/venv
have_venv=0
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import onnxruntime, onnx, openvino, nncf' 2>/dev/null; then
  have_venv=1
elif /usr/bin/python3 -m venv "$venv" >/dev/null 2>&1 &&
     "$venv/bin/pip" install -q onnxruntime onnx openvino nncf >"$work/pip.log" 2>&1; then
  have_venv=1
else
  echo "SKIP: ONNX Runtime / OpenVINO peers: no virtual environment with them" \
       "(see $work/pip.log)" >&2
fi

for r in $(seq 1 "$rounds"); do
  echo "== round $r of $rounds (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  # reid int8: quantized in-process on the int8 peers' calibration crops
  set -- --no-train
  [ -f "$work/calibration.npy" ] && set -- --no-train --calibration "$work/calibration.npy"
  "$build/tests/bench/bench_cpu" --threads "$threads" --min-time "$min_time" "$@" \
    --json "$work/reid-$r.json" >&2
  /usr/bin/python3 "$here/torch_peer.py" --threads "$threads" --min-time "$min_time" \
    --variants jit_freeze --skip-train --json "$work/torch-$r.json" >&2 || true
  if [ $have_venv = 1 ]; then
    "$venv/bin/python" "$here/ov_ort_peer.py" --onnx "$work/resnet50-ls1.onnx" \
      --calib-npy "$work/calibration.npy" --threads "$threads" --min-time "$min_time" \
      --json "$work/ovort-$r.json" >&2 || true
  fi
done
/usr/bin/python3 "$here/peers_table.py" "$work" "$rounds"
