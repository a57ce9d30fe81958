#!/usr/bin/env bash
# reid-train quantize and the int8 engine: the shipped model quantized on crops of a
# synthetic Market set keeps the accuracy floor (mean cosine against fp32 >= 0.99 on
# held-out crops, <= 1 point of i2i mAP lost); MobileNetV2 quantizes too; a model and
# a precision that do not match, OSNet (no int8 form yet) and bad options fail with a
# message that names the cause.
#   test_quantize.sh PATH/reid-train
set -u
rt=$1
. "$(dirname "$0")/../cli_expect.sh"
cli_test_begin quantize
model=$(dirname "$0")/../../models/reid-resnet18-synth.safetensors

"$rt" synth --layout market --output "$work/ev" --identities 16 --seed 3 >/dev/null 2>&1 ||
  { echo "FAIL: synth"; exit 1; }
# calibration: training crops; check: test crops (other identities)
find "$work/ev/bounding_box_train" -name '*.jpg' | sort | awk 'NR % 8 == 1' | head -32 >"$work/cal.txt"
find "$work/ev/bounding_box_test" -name '*.jpg' | sort | awk 'NR % 6 == 1' | head -32 >"$work/check.txt"

# ---- usage
expect 0 "usage: reid-train quantize" -- "$rt" quantize --help
expect 2 "--model is required" -- "$rt" quantize --calibration "$work/cal.txt" --output "$work/q.safetensors"
expect 2 "--calibration is required" -- "$rt" quantize --model "$model" --output "$work/q.safetensors"
expect 2 "--percentile expects a number in (0, 100]" -- "$rt" quantize --model "$model" --calibration "$work/cal.txt" --output "$work/q.safetensors" --percentile 120
expect 1 "absent.txt" -- "$rt" quantize --model "$model" --calibration "$work/absent.txt" --output "$work/q.safetensors"

# ---- the floor: mean cosine >= 0.99 on held-out crops (quantize fails below it)
expect 0 "mean cosine" -- "$rt" quantize --model "$model" --calibration "$work/cal.txt" --check "$work/check.txt" --min-cosine 0.99 --output "$work/q.safetensors"
cat "$work/out"
expect 0 "match_threshold" -- "$rt" info "$work/q.safetensors"
expect 0 "precision        int8" -- "$rt" info "$work/q.safetensors"
expect 1 "already quantized" -- "$rt" quantize --model "$work/q.safetensors" --calibration "$work/cal.txt" --output "$work/q2.safetensors"
head -4 "$work/cal.txt" >"$work/cal4.txt"
expect 1 "is below --min-cosine 1" -- "$rt" quantize --model "$model" --calibration "$work/cal4.txt" --min-cosine 1 --output "$work/q2.safetensors"
[ ! -e "$work/q2.safetensors" ] && pass=$((pass + 1)) || { echo "FAIL: written below the floor"; fail=$((fail + 1)); }

# ---- <= 1 point of mAP lost
expect 0 "mAP" -- "$rt" eval --data "$work/ev" --model "$model" --protocol i2i --json "$work/f.json"
expect 0 "mAP" -- "$rt" eval --data "$work/ev" --model "$work/q.safetensors" --precision int8 --protocol i2i --json "$work/q.json"
map() { sed -n 's/.*"mAP":\([0-9.]*\).*/\1/p' "$1"; }
r1() { sed -n 's/.*"cmc":\[\([0-9.]*\).*/\1/p' "$1"; }
echo "i2i mAP fp32 $(map "$work/f.json") int8 $(map "$work/q.json"); rank-1 fp32 $(r1 "$work/f.json") int8 $(r1 "$work/q.json")"
if awk -v f="$(map "$work/f.json")" -v q="$(map "$work/q.json")" 'BEGIN { exit !(f != "" && q != "" && f - q <= 0.01) }'; then
  pass=$((pass + 1))
else
  echo "FAIL: int8 lost more than 1 point of mAP"; fail=$((fail + 1))
fi

# ---- model and precision must agree
expect 1 "needs a quantized model" -- "$rt" embed --model "$model" --input "$work/check.txt" --output "$work/e.npy" --precision int8
expect 1 "quantized to int8" -- "$rt" embed --model "$work/q.safetensors" --input "$work/check.txt" --output "$work/e.npy"
expect 0 "" -- "$rt" embed --model "$work/q.safetensors" --input "$work/check.txt" --output "$work/e.npy" --precision int8
expect 1 "an int8 model" -- "$rt" export --format onnx --model "$work/q.safetensors" --output "$work/q.onnx"
expect 2 "bf16 or int8" -- "$rt" embed --model "$model" --input "$work/check.txt" --output "$work/e.npy" --precision int4

# ---- other architectures: MobileNetV2 runs in int8, OSNet is refused by name
"$rt" init --arch mobilenet_v2 --input-size 64x32 --output "$work/mb.safetensors" >/dev/null
expect 0 "mean cosine" -- "$rt" quantize --model "$work/mb.safetensors" --calibration "$work/cal.txt" --min-cosine 0.99 --output "$work/mb8.safetensors"
cat "$work/out"
"$rt" init --arch osnet_x0_25 --input-size 64x32 --output "$work/os.safetensors" >/dev/null
expect 1 "osnet_x0_25 has an elementwise channel gate" -- "$rt" quantize --model "$work/os.safetensors" --calibration "$work/cal.txt" --output "$work/os8.safetensors"

cli_test_end quantize
