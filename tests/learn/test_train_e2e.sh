#!/usr/bin/env bash
# A tiny MDKT run end to end on the CPU, on generated data:
#   synthetic MARS (24 identities: 12 train, 12 test; 4 tracklets of 8 frames; 64x32),
#   ResNet-18 at 64x32, teacher 60 steps of 4 ids x 2 tracklets x 2 frames (lr 1e-3),
#   student (mutual, all four losses, M = 1) 10 steps, then evaluation.
# Checks: the teacher's V2V mAP rises clearly over the untrained network's (>= 8 points;
# about 19% -> 35% here), the student's I2V (images and videos through the student, as
# VKD/MDKT evaluate) >= 5 points over the untrained network's (about 19% -> 34%),
# eval's JSON and SVG, export of each part (a student exported alone evaluates exactly
# like the pair), a frozen teacher leaves the pair bit-identical to its checkpoint,
# and the training log and loss plot.
#   test_train_e2e.sh PATH/reid-train
set -u
rt=$1
export OMP_WAIT_POLICY=passive # the machine is shared: idle OpenMP threads sleep
work=$(mktemp -d "${TMPDIR:-/tmp}/reid-learn-e2e-XXXXXX")
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
run() { "$@" >"$work/out" 2>"$work/err" || { bad "'$*' exited $?: $(tail -3 "$work/err")"; return 1; }; }
map() { grep -o '"mAP":[0-9.]*' "$1" | cut -d: -f2; }
# at_least A B: A >= B (decimals)
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

d=$work/d
run "$rt" synth --layout mars --output "$d" --identities 24 --tracklets-per-identity 4 --frames 8 \
  --size 64x32 --seed 3 || exit 1
ev=(--data "$d" --frames 4 --device cpu --threads 2)

# ---- untrained
run "$rt" init --arch resnet18 --input-size 64x32 --output "$work/init.safetensors"
run "$rt" eval "${ev[@]}" --model "$work/init.safetensors" --protocol v2v --json "$work/init_v2v.json"
run "$rt" eval "${ev[@]}" --model "$work/init.safetensors" --protocol i2v --json "$work/init_i2v.json"

# ---- teacher
run "$rt" teacher --data "$d" --arch resnet18 --input-size 64x32 --batch-p 4 --batch-k 2 --frames 2 \
  --epochs 3 --steps-per-epoch 20 --save-every 2 --lr 1e-3 --device cpu --threads 2 \
  --plot "$work/teacher.svg" --output "$work/teacher.safetensors"
grep -q "teacher epoch 3/3" "$work/err" && ok || bad "no progress line for epoch 3: $(cat "$work/err")"
[ "$(wc -l <"$work/teacher.log.jsonl")" = 60 ] && ok || bad "teacher log: $(wc -l <"$work/teacher.log.jsonl") lines, want 60"
grep -q '"triplet":' "$work/teacher.log.jsonl" && grep -q '"ce":' "$work/teacher.log.jsonl" && ok ||
  bad "the log lacks the loss terms"
grep -q "<polyline" "$work/teacher.svg" && grep -q ">triplet<" "$work/teacher.svg" && ok || bad "teacher.svg"
run "$rt" eval "${ev[@]}" --model "$work/teacher.safetensors" --protocol v2v --json "$work/teacher_v2v.json" \
  --plot "$work/cmc.svg"
m0=$(map "$work/init_v2v.json") m1=$(map "$work/teacher_v2v.json")
echo "V2V mAP: untrained $m0, teacher $m1"
at_least "$m1" "$(awk -v a="$m0" 'BEGIN { print a + 0.08 }')" && ok || bad "teacher V2V mAP $m1 is not >= untrained $m0 + 0.08"
grep -q '"protocol":"v2v"' "$work/teacher_v2v.json" && grep -q '"queries":48' "$work/teacher_v2v.json" &&
  grep -q '"cmc":\[' "$work/teacher_v2v.json" && ok || bad "eval JSON: $(cat "$work/teacher_v2v.json")"
grep -q "<polyline" "$work/cmc.svg" && ok || bad "cmc.svg has no curve"
grep -q "^mAP " "$work/out" && grep -q "^rank-1 " "$work/out" && ok || bad "eval table: $(cat "$work/out")"

# ---- student (mutual, all losses, pure image student)
run "$rt" student --data "$d" --teacher "$work/teacher.safetensors" --batch-p 4 --batch-k 2 --frames 2 \
  --student-frames 1 --epochs 1 --steps-per-epoch 10 --lr 3e-4 --device cpu --threads 2 --quiet \
  --output "$work/pair.safetensors"
for term in s_triplet s_ce mkd_t2s pd tcl_t2s t_triplet t_ce mkd_s2t tcl_s2t; do
  grep -q "\"$term\":" "$work/pair.log.jsonl" && ok || bad "the student log lacks $term"
done
run "$rt" eval "${ev[@]}" --model "$work/pair.safetensors" --protocol i2v --json "$work/pair_i2v.json"
run "$rt" eval "${ev[@]}" --model "$work/pair.safetensors" --part student --protocol i2v \
  --json "$work/student_i2v.json"
mi0=$(map "$work/init_i2v.json") mi1=$(map "$work/student_i2v.json")
echo "I2V mAP: untrained $mi0, student $mi1 (pair: student queries vs teacher gallery $(map "$work/pair_i2v.json"))"
at_least "$mi1" "$(awk -v a="$mi0" 'BEGIN { print a + 0.05 }')" && ok ||
  bad "student I2V mAP $mi1 is not >= untrained $mi0 + 0.05"
grep -q '"part":"student"' "$work/student_i2v.json" && grep -q '"part":null' "$work/pair_i2v.json" && ok ||
  bad "eval JSON part field"

# ---- export: each part alone; the student alone evaluates as the pair's image model
run "$rt" export --model "$work/pair.safetensors" --part student --output "$work/student.safetensors"
run "$rt" export --model "$work/pair.safetensors" --part teacher --output "$work/teacher2.safetensors"
run "$rt" info "$work/student.safetensors" && grep -q "mdkt-student" "$work/out" && ok || bad "exported student metadata"
run "$rt" eval "${ev[@]}" --model "$work/pair.safetensors" --protocol i2i --json "$work/pair_i2i.json"
run "$rt" eval "${ev[@]}" --model "$work/student.safetensors" --protocol i2i --json "$work/student_i2i.json"
[ "$(map "$work/pair_i2i.json")" = "$(map "$work/student_i2i.json")" ] && ok ||
  bad "I2I of the exported student $(map "$work/student_i2i.json") != the pair's $(map "$work/pair_i2i.json")"
cmp -s "$work/teacher.safetensors" "$work/teacher2.safetensors" && bad "the mutual teacher did not change" || ok

# ---- frozen: the teacher is untouched (eval mode, no updates)
run "$rt" student --data "$d" --teacher "$work/teacher.safetensors" --teacher-mode frozen --losses tcl,pd \
  --batch-p 4 --batch-k 2 --frames 2 --student-frames 1 --epochs 1 --steps-per-epoch 2 --device cpu \
  --threads 2 --quiet --output "$work/frozen.safetensors"
run "$rt" export --model "$work/frozen.safetensors" --part teacher --output "$work/frozen_teacher.safetensors"
cmp -s "$work/teacher.safetensors" "$work/frozen_teacher.safetensors" && ok || bad "a frozen teacher changed"
grep -q '"tcl_t2s":' "$work/frozen.log.jsonl" && ! grep -q '"mkd_t2s"\|"t_ce"' "$work/frozen.log.jsonl" && ok ||
  bad "frozen tcl,pd run logged other terms: $(head -1 "$work/frozen.log.jsonl")"

echo "test_train_e2e: $pass passed, $fail failed"
[ "$fail" = 0 ]
