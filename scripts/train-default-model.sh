#!/usr/bin/env bash
# Trains the default model shipped in models/ (README, "The default model"):
#   1. an MDKT student (ResNet-18, last stride 1, 128x64, BNNeck) distilled from a video
#      teacher, both trained on 32 identities of `reid-train synth` crops (MARS layout);
#   2. fine-tuned on the crops of multi-camera scenes (`synth --scene --crops train`: 60 other
#      identities walking through 4 cameras, plus photos of them by third cameras), so that it
#      matches the demo's query photos against the demo's tracklets;
#   3. exported in fp16, embedding after the BNNeck's batch norm, and calibrated on a scene of
#      24 unseen identities (`--crops test`: query photos against walks): match_threshold =
#      the cosine at a 1% false-match rate.
# It knows rendered people only, not real cameras: a real deployment trains on its own data
# (README, "Train your own model"). About 10 + 25 minutes on 2 idle CPU cores.
#   scripts/train-default-model.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build} work=${2:-build/default-model}
rt=$build/training/reid-train
mkdir -p "$work"
common=(--device cpu --threads 2 --quiet --seed 1)
# 1. the MDKT student
[ -d "$work/data" ] || "$rt" synth --layout mars --output "$work/data" --identities 64 --cameras 4 \
  --tracklets-per-identity 4 --frames 8 --size 128x64 --seed 11
"$rt" teacher --data "$work/data" --arch resnet18 --input-size 128x64 --batch-p 8 --batch-k 2 \
  --frames 4 --epochs 8 --steps-per-epoch 25 --lr 1e-3 "${common[@]}" --output "$work/teacher.safetensors"
"$rt" student --data "$work/data" --teacher "$work/teacher.safetensors" --teacher-mode mutual \
  --losses tr,mkd,pd,tcl --batch-p 8 --batch-k 2 --frames 4 --student-frames 2 --epochs 4 \
  --steps-per-epoch 25 --lr 3e-4 "${common[@]}" --output "$work/pair.safetensors"
"$rt" export --model "$work/pair.safetensors" --part student --output "$work/student.safetensors"
# 2. fine-tuned on scene crops (identities 0..59 of seed 21: training identities only)
[ -d "$work/scenes" ] || "$rt" synth --scene --output "$work/scenes" --crops train --people 60 \
  --cameras 4 --seconds 60 --fps 5 --first-identity 0 --seed 21 --queries 0
"$rt" teacher --data "$work/scenes/crops" --layout duke --arch resnet18 --input-size 128x64 \
  --init "$work/student.safetensors" --batch-p 8 --batch-k 2 --frames 4 --epochs 4 \
  --steps-per-epoch 10 --lr 3e-4 "${common[@]}" --output "$work/scene-ft.safetensors"
# 3. fp16, after-BN embedding, calibrated on unseen people (identities 200000.. of seed 101)
[ -d "$work/calibration" ] || "$rt" synth --scene --output "$work/calibration" --crops test \
  --people 24 --cameras 3 --seconds 40 --fps 5 --first-identity 200000 --seed 101 --queries 0
out=models/reid-resnet18-synth.safetensors
"$rt" export --model "$work/scene-ft.safetensors" --part single --embed-after-bn 1 --dtype f16 \
  --output "$out"
"$rt" eval --data "$work/calibration/crops" --layout duke --model "$out" --protocol i2v --frames 4 \
  --device cpu --threads 2 --fmr 0.01 --calibrate
"$rt" info "$out" | grep -E "match_threshold|description"
