#!/usr/bin/env bash
# reid-train teacher / student / eval / export on good and bad command lines, and
# the trainer's state logic on a tiny synthetic MARS (ResNet-18 at 64x32, CPU):
#   - bad arguments exit 2 with one line naming the cause, failures exit 1;
#   - an interrupted run resumed with --resume ends bit-identical (model, state,
#     logged losses) to an uninterrupted one, for the teacher and the student;
#   - a resume with other settings is refused;
#   - an absurd learning rate trips the NaN/Inf guard: a clear stop, and the last
#     good checkpoint (epoch 1) is what stays on disk.
#   test_train_cli.sh PATH/reid-train
set -u
rt=$1
# the machine is shared: idle OpenMP threads sleep instead of spinning
export OMP_WAIT_POLICY=passive
. "$(dirname "$0")/../cli_expect.sh"
cli_test_begin learn-cli


check() { # check DESCRIPTION command...: the command must succeed
  local what=$1
  shift
  if "$@"; then pass=$((pass + 1)); else echo "FAIL: $what"; fail=$((fail + 1)); fi
}

# is_png FILE: FILE starts with the PNG signature
is_png() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ]; }

# the losses of a log without the timing fields
losses() { sed -E 's/"seconds":[^,]*,"images_per_s":[^,]*,//' "$1"; }

"$rt" synth --layout mars --output "$work/d" --identities 8 --tracklets-per-identity 2 \
  --frames 4 --size 64x32 --seed 5 >/dev/null 2>&1 || { echo "FAIL: synth"; exit 1; }
d=$work/d
base=(--data "$d" --batch-p 4 --batch-k 2 --frames 2 --steps-per-epoch 3 --device cpu --threads 2
      --quiet)
tiny=("${base[@]}" --arch resnet18 --input-size 64x32) # the teacher's; a student takes them from its teacher

# ---- help
for c in teacher student eval export; do expect 0 "usage: reid-train $c" -- "$rt" "$c" --help; done
expect 0 "with mutual" -- "$rt" student --help

# ---- usage errors: exit 2
expect 2 "--data is required" -- "$rt" teacher --output "$work/t.safetensors"
expect 2 "--output is required" -- "$rt" teacher --data "$d"
expect 2 "--batch-p expects an integer in [2, 1024]" -- "$rt" teacher "${tiny[@]}" --batch-p 1 --output "$work/t.safetensors"
expect 2 "--frames expects an integer in [1, 64]" -- "$rt" teacher "${tiny[@]}" --frames 0 --output "$work/t.safetensors"
expect 2 "--lr expects a number" -- "$rt" teacher "${tiny[@]}" --lr -1 --output "$work/t.safetensors"
expect 2 "--lr expects a number" -- "$rt" teacher "${tiny[@]}" --lr abc --output "$work/t.safetensors"
expect 2 "--optimizer expects adam or adamw" -- "$rt" teacher "${tiny[@]}" --optimizer sgd --output "$work/t.safetensors"
expect 2 "--lr-schedule" -- "$rt" teacher "${tiny[@]}" --lr-schedule bogus --output "$work/t.safetensors"
expect 2 "--sampling expects chunks or multiview" -- "$rt" teacher "${tiny[@]}" --sampling random --output "$work/t.safetensors"
expect 2 "--tau1 is an option of 'reid-train student'" -- "$rt" teacher "${tiny[@]}" --tau1 2 --output "$work/t.safetensors"
expect 2 "--plot writes SVG or PNG: the file name must end in .svg or .png, got '$work/l.pdf'" -- \
  "$rt" teacher "${tiny[@]}" --plot "$work/l.pdf" --output "$work/t.safetensors"
expect 2 "--layout expects" -- "$rt" teacher "${tiny[@]}" --layout ilids --output "$work/t.safetensors"
expect 2 "--device expects cpu, cuda or auto" -- "$rt" teacher "${tiny[@]}" --device tpu --output "$work/t.safetensors"
expect 2 "unexpected argument 'extra'" -- "$rt" teacher "${tiny[@]}" --output "$work/t.safetensors" extra
expect 2 "unknown or misses its value" -- "$rt" teacher "${tiny[@]}" --bogus --output "$work/t.safetensors"
expect 2 "--teacher is required" -- "$rt" student "${base[@]}" --output "$work/s.safetensors"
expect 2 "--student-frames 3 exceeds --frames 2" -- "$rt" student "${base[@]}" --teacher x --student-frames 3 --output "$work/s.safetensors"
expect 2 "unknown loss 'kl'" -- "$rt" student "${base[@]}" --teacher x --losses tr,kl --output "$work/s.safetensors"
expect 2 "no loss selected" -- "$rt" student "${base[@]}" --teacher x --losses "" --output "$work/s.safetensors"
expect 2 "--teacher-mode expects frozen, independent or mutual" -- "$rt" student "${base[@]}" --teacher x --teacher-mode lazy --output "$work/s.safetensors"
expect 2 "--tau2 expects a number in (0" -- "$rt" student "${base[@]}" --teacher x --tau2 0 --output "$work/s.safetensors"
expect 2 "the student uses the teacher's input size" -- "$rt" student --data "$d" --teacher x --input-size 64x32 --output "$work/s.safetensors"
expect 2 "--protocol is required" -- "$rt" eval --data "$d" --model x
expect 2 "--protocol expects i2v, v2v or i2i" -- "$rt" eval --data "$d" --model x --protocol x2y
expect 2 "--model is required" -- "$rt" eval --data "$d" --protocol i2v
expect 2 "--plot writes SVG or PNG: the file name must end in .svg or .png, got 'c.pdf'" -- \
  "$rt" eval --data "$d" --model x --protocol i2v --plot c.pdf
expect 2 "--part expects student, teacher or single" -- "$rt" export --model x --part both --output y
expect 2 "--embed-after-bn" -- "$rt" export --model x --part single --embed-after-bn 2 --output y
expect 2 "--part is required" -- "$rt" export --model x --output y

# ---- failures: exit 1, the message names the cause
expect 1 "$work/missing" -- "$rt" teacher "${tiny[@]/$d/$work/missing}" --output "$work/t.safetensors"
expect 1 "its folder does not exist" -- "$rt" teacher "${tiny[@]}" --output "$work/no/t.safetensors"
expect 1 "t.state.safetensors" -- "$rt" teacher "${tiny[@]}" --resume --output "$work/t.safetensors"
expect 1 "$work/none.safetensors" -- "$rt" eval --data "$d" --model "$work/none.safetensors" --protocol v2v
echo "not a checkpoint" >"$work/text.safetensors"
expect 1 "$work/text.safetensors" -- "$rt" eval --data "$d" --model "$work/text.safetensors" --protocol v2v
"$rt" init --arch resnet18 --input-size 64x32 --bnneck --num-classes 7 --output "$work/seven.safetensors" >/dev/null
expect 1 "$work/seven.safetensors: a resnet18 cannot initialise a resnet34" -- "$rt" teacher "${base[@]}" \
  --arch resnet34 --input-size 64x32 --init "$work/seven.safetensors" --output "$work/t.safetensors"
expect 1 "not an MDKT pair" -- "$rt" export --model "$work/seven.safetensors" --part student --output "$work/x.safetensors"
# a single network rewritten: fp16, embedding after the BNNeck (needs one)
expect 0 "" -- "$rt" export --model "$work/seven.safetensors" --part single --embed-after-bn 1 \
  --dtype f16 --description "seven people, fp16" --output "$work/seven16.safetensors"
check "export --part single: fp16, embed_after_bn 1, the description given" sh -c \
  "'$rt' info '$work/seven16.safetensors' | grep -q 'embed_after_bn   1' && '$rt' info '$work/seven16.safetensors' | grep -q ' F16 ' && '$rt' info '$work/seven16.safetensors' | grep -q 'description      seven people, fp16$'"
expect 2 "--description: 300 characters, at most 255" -- "$rt" export --model x --part single \
  --description "$(printf '%300s' '')" --output y
"$rt" init --arch resnet18 --input-size 64x32 --output "$work/plain.safetensors" >/dev/null
expect 1 "needs a BNNeck network" -- "$rt" export --model "$work/plain.safetensors" --part single \
  --embed-after-bn 1 --output "$work/x.safetensors"
expect 1 "the teacher has 7 classes but" -- "$rt" student "${base[@]}" --teacher "$work/seven.safetensors" --output "$work/s.safetensors"

# ---- resume: 2 epochs in one go == 1 epoch, then --resume to 2 (teacher)
expect 0 "" -- "$rt" teacher "${tiny[@]}" --epochs 2 --output "$work/a.safetensors"
expect 0 "" -- "$rt" teacher "${tiny[@]}" --epochs 1 --tf32 --plot "$work/b.PNG" --output "$work/b.safetensors"
check "--plot b.PNG writes a PNG" is_png "$work/b.PNG"
check "a one-epoch teacher differs from a two-epoch one" bash -c "! cmp -s '$work/a.safetensors' '$work/b.safetensors'"
# a run killed during epoch 2 leaves log lines the state does not cover: --resume drops them
echo '{"epoch":2,"step":1,"iter":4,"lr":0.0001,"loss":123}' >>"$work/b.log.jsonl"
expect 0 "" -- "$rt" teacher "${tiny[@]}" --epochs 2 --resume --output "$work/b.safetensors"
check "resumed teacher model is bit-identical" cmp "$work/a.safetensors" "$work/b.safetensors"
check "resumed teacher state is bit-identical" cmp "$work/a.state.safetensors" "$work/b.state.safetensors"
expect 0 "" -- "$rt" teacher "${tiny[@]}" --epochs 2 --resume --output "$work/b.safetensors"
check "resuming a finished run changes nothing" cmp "$work/a.safetensors" "$work/b.safetensors"
check "resumed teacher log has the same losses" cmp <(losses "$work/a.log.jsonl") <(losses "$work/b.log.jsonl")
check "the log has one line per step" test "$(wc -l <"$work/a.log.jsonl")" = 6
expect 1 "cannot resume: the saved run has batch=4x2x2, this command batch=3x2x2" -- \
  "$rt" teacher "${tiny[@]}" --batch-p 3 --epochs 3 --resume --output "$work/b.safetensors"
expect 1 "the state of a 'teacher' run cannot resume 'student'" -- \
  "$rt" student "${base[@]}" --teacher "$work/a.safetensors" --resume --output "$work/b.safetensors"

# ---- resume (student, mutual: both networks and both Adam states move)
st=(--teacher "$work/a.safetensors" --teacher-mode mutual --student-frames 1 --steps-per-epoch 2)
expect 0 "" -- "$rt" student "${base[@]}" "${st[@]}" --epochs 2 --output "$work/sa.safetensors"
expect 0 "" -- "$rt" student "${base[@]}" "${st[@]}" --epochs 1 --output "$work/sb.safetensors"
expect 0 "" -- "$rt" student "${base[@]}" "${st[@]}" --epochs 2 --resume --output "$work/sb.safetensors"
check "resumed student pair is bit-identical" cmp "$work/sa.safetensors" "$work/sb.safetensors"
check "resumed student state is bit-identical" cmp "$work/sa.state.safetensors" "$work/sb.state.safetensors"
expect 1 "cannot resume: the saved run has teacher_mode=mutual, this command teacher_mode=frozen" -- \
  "$rt" student "${base[@]}" "${st[@]}" --teacher-mode frozen --epochs 3 --resume --output "$work/sb.safetensors"

# ---- NaN/Inf guard: lr 1e-4 in epoch 1, 1e30 from epoch 2 on
expect 1 "training stopped, the last good checkpoint $work/n.safetensors (epoch 1) is kept" -- \
  "$rt" teacher "${tiny[@]}" --epochs 4 --save-every 1 --lr-schedule multistep:1:1e34 --output "$work/n.safetensors"
check "the guard's message names the non-finite values" grep -q "non-finite values at epoch 2" "$work/err"
# model and state are written together at each checkpoint: the state says which one survived
check "the kept state is epoch 1's" grep -qa '"epoch":"1"' "$work/n.state.safetensors"
expect 0 "mAP" -- "$rt" eval --data "$d" --model "$work/n.safetensors" --protocol v2v --frames 2 --device cpu \
  --plot "$work/cmc.png"
check "eval --plot cmc.png writes a PNG" is_png "$work/cmc.png"
# the match threshold: reported always, written into the model's metadata with --calibrate
cp "$work/n.safetensors" "$work/cal.safetensors"
expect 0 "at false-match rate" -- "$rt" eval --data "$d" --model "$work/cal.safetensors" \
  --protocol v2v --frames 2 --device cpu --fmr 0.02 --calibrate --json "$work/cal.json"
check "eval reports the equal-error threshold" grep -q "at equal error" "$work/out"
check "--calibrate writes match_threshold" sh -c "'$rt' info '$work/cal.safetensors' | grep -q match_threshold"
cal=$("$rt" info "$work/cal.safetensors" | awk '$1 == "match_threshold" {print $2}')
check "eval --json has the calibrated threshold ($cal) and the equal-error one" \
  grep -q "\"threshold\":{\"fmr_target\":0.020000,\"at_fmr\":$cal,.*\"at_eer\":.*\"calibrated\":true}" "$work/cal.json"
expect 2 "--fmr expects a rate in (0, 1)" -- "$rt" eval --data "$d" --model x --protocol i2v --fmr 1.5
expect 1 "no checkpoint had been written yet" -- \
  "$rt" teacher "${tiny[@]}" --epochs 1 --lr 1e30 --output "$work/n2.safetensors"
check "nothing is written after a failed first epoch" test ! -e "$work/n2.safetensors"

cli_test_end test_train_cli
