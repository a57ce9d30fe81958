#!/usr/bin/env bash
# The MDKT ablations of the poster's Table 1 (loss terms) and Table 2 (teacher
# modes) on a synthetic MARS-layout benchmark, on the CPU. Prints a Markdown
# table of I2V and V2V rank-1 / mAP for every student and writes it to OUT/results.md.
#
#   tests/bench/mdkt_ablation.sh BUILD_DIR OUT_DIR [scale]
# scale 1 (default): 48 identities x 4 tracklets x 8 frames at 64x32, ResNet-18,
# teacher 200 steps, each student 100 steps; about 15 minutes on 2 cores.
set -euo pipefail
build=$1 out=$2 scale=${3:-1}
rt=$build/training/reid-train
mkdir -p "$out"
ids=$((48 * scale)) size=64x32 seed=7
common=(--device cpu --threads 2 --quiet)
ev=(--data "$out/data" --frames 4 --device cpu --threads 2)
metric() { sed -n 's/.*"mAP":\([0-9.eE+-]*\).*"cmc":\[\([0-9.eE+-]*\).*/\2 \1/p' "$1"; }
pct() { awk -v r="$1" -v m="$2" 'BEGIN { printf "%.2f | %.2f", 100 * r, 100 * m }'; }

[ -d "$out/data" ] || "$rt" synth --layout mars --output "$out/data" --identities $ids --cameras 4 \
  --tracklets-per-identity 4 --frames 8 --size $size --seed $seed
[ -f "$out/teacher.safetensors" ] || "$rt" teacher --data "$out/data" --arch resnet18 --input-size $size \
  --batch-p 6 --batch-k 2 --frames 4 --epochs $((8 * scale)) --steps-per-epoch 25 --lr 1e-3 --seed 1 \
  "${common[@]}" --output "$out/teacher.safetensors"

row() { # name, student options...
  local name=$1
  shift
  local model=$out/$name.safetensors
  [ -f "$model" ] || "$rt" student --data "$out/data" --teacher "$out/teacher.safetensors" --batch-p 6 \
    --batch-k 2 --frames 4 --student-frames 2 --epochs $((4 * scale)) --steps-per-epoch 25 --lr 3e-4 \
    --seed 1 "${common[@]}" --output "$model" "$@"
  "$rt" eval "${ev[@]}" --model "$model" --part student --protocol i2v --json "$out/$name.i2v.json" >/dev/null
  "$rt" eval "${ev[@]}" --model "$model" --part student --protocol v2v --json "$out/$name.v2v.json" >/dev/null
  read -r r1 m1 < <(metric "$out/$name.i2v.json")
  read -r r2 m2 < <(metric "$out/$name.v2v.json")
  echo "| $name | $(pct "$r1" "$m1") | $(pct "$r2" "$m2") |"
}

{
  echo "| student (M = 2) | I2V rank-1 | I2V mAP | V2V rank-1 | V2V mAP |"
  echo "|---|---|---|---|---|"
  "$rt" eval "${ev[@]}" --model "$out/teacher.safetensors" --protocol v2v --json "$out/teacher.v2v.json" >/dev/null
  "$rt" eval "${ev[@]}" --model "$out/teacher.safetensors" --protocol i2v --json "$out/teacher.i2v.json" >/dev/null
  read -r r1 m1 < <(metric "$out/teacher.i2v.json")
  read -r r2 m2 < <(metric "$out/teacher.v2v.json")
  echo "| (teacher alone, for reference) | $(pct "$r1" "$m1") | $(pct "$r2" "$m2") |"
  for losses in tr tcl tr,tcl mkd,pd,tcl tr,mkd,pd tr,mkd,tcl tr,pd,tcl tr,mkd,pd,tcl; do
    row "mutual-${losses//,/+}" --teacher-mode mutual --losses "$losses"
  done
  row "frozen-all" --teacher-mode frozen --losses tr,mkd,pd,tcl
  row "independent-all" --teacher-mode independent --losses tr,mkd,pd,tcl
} | tee "$out/results.md"
