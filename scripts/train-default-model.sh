#!/usr/bin/env bash
# Trains the default model shipped in models/ (README, "The default model"):
#   1. an MDKT student (ResNet-18, last stride 1, 128x64, BNNeck) distilled from a video
#      teacher, both trained on 32 identities of `reid-train synth` crops (MARS layout);
#   2. fine-tuned on the crops of a multi-camera scene (`synth --scene --crops train`: 60 other
#      identities walking through 4 cameras, plus photos of them by third cameras): 40 steps;
#   3. fine-tuned again on the crops of 6 more scenes (seeds 41..46, 40 people each: 240
#      identities, 24 camera looks): 16 people x 2 tracklets x 2 frames a step, label
#      smoothing 0.1, 250 steps: lr 3e-4, the last 50 at 3e-5;
#   4. exported in fp16, embedding after the BNNeck's batch norm, and calibrated on a scene of
#      24 unseen identities (`--crops test`, seed 101: query photos against walks):
#      match_threshold = the cosine at a 1% false-match rate.
# Every training identity is identity 0..N-1 of a training seed (11, 21, 41..46); the demo's
# and the README's scenes use identities 100000.. and the calibration scene 200000.., of
# other seeds: people never seen in training.
# It knows rendered people only, not real cameras: a real deployment trains on its own data
# (README, "Train your own model"). About 10 + 25 + 30 minutes on 2 idle CPU cores.
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
# 3. fine-tuned on 240 more people: 6 scenes, their crops merged into one dataset (person P
#    of seed S becomes pid (S - 40) * 100 + P)
"$rt" export --model "$work/scene-ft.safetensors" --part single --embed-after-bn 1 --dtype f16 \
  --output "$work/scene-ft16.safetensors"
for seed in 41 42 43 44 45 46; do
  [ -f "$work/scenes$seed/scene.txt" ] || "$rt" synth --scene --output "$work/scenes$seed" \
    --crops train --people 40 --cameras 4 --seconds 40 --fps 5 --first-identity 0 --seed $seed \
    --queries 0
done
if [ ! -d "$work/crops240" ]; then
  mkdir -p "$work/crops240.tmp/train" "$work/crops240.tmp/query" "$work/crops240.tmp/gallery"
  for seed in 41 42 43 44 45 46; do
    for person in "$work/scenes$seed"/crops/train/*; do
      old=$(basename "$person") new=$(printf %04d $(((seed - 40) * 100 + 10#$(basename "$person"))))
      for tracklet in "$person"/*; do
        to=$work/crops240.tmp/train/$new/$(basename "$tracklet")
        mkdir -p "$to"
        for f in "$tracklet"/*.jpg; do ln "$f" "$to/$new$(basename "${f#"$tracklet/$old"}")"; done
      done
    done
  done
  mv "$work/crops240.tmp" "$work/crops240"
fi
"$rt" teacher --data "$work/crops240" --layout duke --arch resnet18 --input-size 128x64 \
  --init "$work/scene-ft16.safetensors" --batch-p 16 --batch-k 2 --frames 2 --epochs 10 \
  --steps-per-epoch 25 --lr 3e-4 --lr-schedule multistep:8:0.1 --label-smoothing 0.1 "${common[@]}" \
  --output "$work/scene-ft2.safetensors"
# 4. fp16, after-BN embedding, calibrated on unseen people (identities 200000.. of seed 101)
[ -d "$work/calibration" ] || "$rt" synth --scene --output "$work/calibration" --crops test \
  --people 24 --cameras 3 --seconds 40 --fps 5 --first-identity 200000 --seed 101 --queries 0
out=models/reid-resnet18-synth.safetensors
description="ResNet-18 for rendered people (reid-train synth): MDKT student, fine-tuned on \
scene crops of 300 synth people (seeds 21, 41-46; 40 + 250 steps); fp16, embedding after \
BNNeck; threshold at 1% false matches, 24 unseen people. scripts/train-default-model.sh"
"$rt" export --model "$work/scene-ft2.safetensors" --part single --embed-after-bn 1 --dtype f16 \
  --description "$description" --output "$out"
"$rt" eval --data "$work/calibration/crops" --layout duke --model "$out" --protocol i2v --frames 4 \
  --device cpu --threads 2 --fmr 0.01 --calibrate
"$rt" info "$out" | grep -E "match_threshold|description"
