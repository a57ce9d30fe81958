#!/usr/bin/env bash
# reid-train on the CUDA backend end to end (run on the CUDA emulator in CI, see
# tests/cuda_emu; on a GPU it runs as it is): on a tiny synthetic MARS with ResNet-18 at 64x32,
#   - a teacher trains on --device cuda (strict fp32, and with --tf32); its first logged
#     losses equal the CPU run's with the same seed (rtol 1e-3);
#   - an MDKT student (mutual, all four losses) trains on --device cuda;
#   - eval --device cuda gives the CPU's I2V mAP (within 0.002);
#   - embed --device cuda --precision fp16 / fp32 gives the CPU's embeddings (cosine >= 0.999
#     / 0.9999 per image), and int8 (the teacher quantized) the CPU's int8 ones (>= 0.999).
#   test_train_cuda.sh PATH/reid-train   (built with CUDA; exits 77 when no CUDA device works)
set -u
rt=$1
export OMP_WAIT_POLICY=passive
. "$(dirname "$0")/../cli_expect.sh"
cli_test_begin learn-cuda

check() { # check DESCRIPTION command...
  local what=$1
  shift
  if "$@"; then pass=$((pass + 1)); else echo "FAIL: $what"; fail=$((fail + 1)); fi
}
map() { grep -o '"mAP":[0-9.eE+-]*' "$1" | cut -d: -f2; }
# the loss terms of a log's first line (timing fields dropped), one per line
first_losses() { head -n 1 "$1" | grep -oE '"(loss|[a-z_]+_loss|ce|tri|mkd|pd|tcl)[a-z_]*":[-0-9.eE+]+'; }
close() { awk -v a="$1" -v b="$2" -v r="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; s = b < 0 ? -b : b; exit !(d <= r * s + 1e-6) }'; }
# min_cosine A.npy B.npy DIM: the smallest per-row cosine of two float32 .npy files (128-byte headers)
min_cosine() {
  paste <(od -An -v -f -w4 -j 128 "$1") <(od -An -v -f -w4 -j 128 "$2") |
    awk -v d="$3" '{ ab += $1 * $2; aa += $1 * $1; bb += $2 * $2; if (++k == d) { c = ab / sqrt(aa * bb + 1e-30); if (min == "" || c < min) min = c; ab = aa = bb = k = 0 } } END { print min }'
}

"$rt" synth --layout mars --output "$work/d" --identities 8 --tracklets-per-identity 2 \
  --frames 4 --size 64x32 --seed 5 >/dev/null 2>&1 || { echo "FAIL: synth"; exit 1; }
d=$work/d
base=(--data "$d" --batch-p 4 --batch-k 2 --frames 2 --steps-per-epoch 2 --epochs 1 --threads 2 --quiet --seed 11)
tiny=("${base[@]}" --arch resnet18 --input-size 64x32)

# ---- teacher: CUDA (fp32, tf32) and CPU from the same seed
if ! "$rt" teacher "${tiny[@]}" --device cuda --output "$work/tg.safetensors" >"$work/out" 2>"$work/err"; then
  if grep -q "no usable CUDA GPU" "$work/err"; then
    echo "test_train_cuda: no usable CUDA GPU, skipping"
    exit 77
  fi
  echo "FAIL: teacher --device cuda: $(tail -3 "$work/err")"
  exit 1
fi
pass=$((pass + 1))
expect 0 "" -- "$rt" teacher "${tiny[@]}" --device cuda --tf32 --output "$work/tt.safetensors"
expect 0 "" -- "$rt" teacher "${tiny[@]}" --device cpu --output "$work/tc.safetensors"
gl=$(first_losses "$work/tg.log.jsonl") cl=$(first_losses "$work/tc.log.jsonl")
echo "first step, cuda: $(echo $gl)"
echo "first step, cpu:  $(echo $cl)"
check "the first step logs loss terms ($gl)" [ -n "$gl" ]
while IFS= read -r line; do
  key=${line%%:*} g=${line#*:}
  c=$(printf '%s\n' "$cl" | grep -F "$key:" | head -n 1 | cut -d: -f2)
  check "first-step $key: cuda $g, cpu $c" close "$g" "${c:-nan}" 1e-3
done <<<"$gl"

# ---- MDKT student on CUDA
expect 0 "" -- "$rt" student "${base[@]}" --device cuda --teacher "$work/tg.safetensors" --teacher-mode mutual \
  --losses tr,mkd,pd,tcl --student-frames 1 --output "$work/pair.safetensors"

# ---- evaluation: CUDA against the CPU on the same checkpoint
ev=(--data "$d" --frames 2 --threads 2 --model "$work/pair.safetensors" --protocol i2v)
expect 0 "" -- "$rt" eval "${ev[@]}" --device cuda --json "$work/g.json"
expect 0 "" -- "$rt" eval "${ev[@]}" --device cpu --json "$work/c.json"
mg=$(map "$work/g.json") mc=$(map "$work/c.json")
echo "I2V mAP: cuda $mg, cpu $mc"
check "I2V mAP on cuda $mg = cpu $mc (within 0.002)" awk -v a="${mg:-nan}" -v b="${mc:-nan}" 'BEGIN { d = a - b; exit !(d <= 0.002 && d >= -0.002) }'

# ---- embed: CUDA engine (fp32, fp16) against the CPU
find "$d/bbox_test" -name '*.jpg' | sort | head -n 6 >"$work/list.txt"
expect 0 "" -- "$rt" embed --model "$work/tg.safetensors" --input "$work/list.txt" --output "$work/c.npy" --device cpu
for p in fp32:0.9999 fp16:0.999; do
  prec=${p%%:*} want=${p#*:}
  expect 0 "" -- "$rt" embed --model "$work/tg.safetensors" --input "$work/list.txt" --output "$work/g_$prec.npy" \
    --device cuda --precision "$prec" --batch-size 4
  cos=$(min_cosine "$work/g_$prec.npy" "$work/c.npy" 512)
  echo "embed $prec: min cosine to the CPU $cos"
  check "embed --device cuda --precision $prec: min cosine to the CPU $cos >= $want" awk -v a="${cos:-0}" -v b="$want" 'BEGIN { exit !(a + 0 >= b + 0) }'
done

# ---- embed int8: the teacher quantized on the same crops; the CUDA engine's int8 against the CPU's
expect 0 "mean cosine" -- "$rt" quantize --model "$work/tg.safetensors" --calibration "$work/list.txt" \
  --output "$work/tg8.safetensors"
expect 0 "" -- "$rt" embed --model "$work/tg8.safetensors" --input "$work/list.txt" --output "$work/c8.npy" \
  --device cpu --precision int8
expect 0 "" -- "$rt" embed --model "$work/tg8.safetensors" --input "$work/list.txt" --output "$work/g8.npy" \
  --device cuda --precision int8 --batch-size 4
cos=$(min_cosine "$work/g8.npy" "$work/c8.npy" 512)
echo "embed int8: min cosine to the CPU's int8 $cos"
check "embed --device cuda --precision int8: min cosine to the CPU's int8 $cos >= 0.999" awk -v a="${cos:-0}" 'BEGIN { exit !(a + 0 >= 0.999) }'
cli_test_end learn-cuda
