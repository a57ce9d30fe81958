#!/usr/bin/env bash
# Trains the default model shipped in models/: an MDKT student (ResNet-18, last
# stride 1, 128x64, BNNeck) distilled from a video teacher, both trained on a
# synthetic MARS-layout dataset written by `reid-train synth`. It knows the
# synthetic people of `reid-train synth`, not real cameras: a real deployment
# trains on its own data (README, Training). About 10 minutes on 2 CPU cores.
#   scripts/train-default-model.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build} work=${2:-build/default-model}
rt=$build/training/reid-train
mkdir -p "$work"
common=(--device cpu --threads 2 --quiet --seed 1)
[ -d "$work/data" ] || "$rt" synth --layout mars --output "$work/data" --identities 64 --cameras 4 \
  --tracklets-per-identity 4 --frames 8 --size 128x64 --seed 11
"$rt" teacher --data "$work/data" --arch resnet18 --input-size 128x64 --batch-p 8 --batch-k 2 \
  --frames 4 --epochs 8 --steps-per-epoch 25 --lr 1e-3 "${common[@]}" --output "$work/teacher.safetensors"
"$rt" student --data "$work/data" --teacher "$work/teacher.safetensors" --teacher-mode mutual \
  --losses tr,mkd,pd,tcl --batch-p 8 --batch-k 2 --frames 4 --student-frames 2 --epochs 4 \
  --steps-per-epoch 25 --lr 3e-4 "${common[@]}" --output "$work/pair.safetensors"
for protocol in i2v v2v; do
  "$rt" eval --data "$work/data" --model "$work/pair.safetensors" --part student --protocol $protocol \
    --frames 4 --device cpu --threads 2 --json "$work/$protocol.json" | grep -E "^(mAP|rank-1) "
done
"$rt" export --model "$work/pair.safetensors" --part student --dtype f16 \
  --output models/reid-resnet18-synth.safetensors
"$rt" info models/reid-resnet18-synth.safetensors | tail -n 1
