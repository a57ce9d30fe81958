#!/usr/bin/env bash
# reid-train continual end to end on a tiny synthetic Market (CPU, ResNet-18 at 64x32):
#   - an intra-domain stream of 3 tasks (4 + 2 x 4 identities) with each method: the
#     results matrix (CSV, JSON with the Seen/Unseen summary and forgetting), the mAP plot
#     (SVG, PNG), a checkpoint per task with its metadata that `reid-train eval` loads, the
#     distillation term only where it belongs (dwopp/dwpp from task 1; never for ft);
#   - an inter-domain stream of 2 datasets plus an unseen one, with --init from a checkpoint;
#   - resumption: stopped within task 1 and at the boundary after task 0, resumed runs end
#     with the same final model and results as the uninterrupted run;
#   - bad input: a folder that does not split, a missing dataset, a missing output folder,
#     an episode larger than a task, bad flags.
#   test_continual_e2e.sh PATH/reid-train
set -u
rt=$1
export OMP_WAIT_POLICY=passive
. "$(dirname "$0")/../cli_expect.sh"
cli_test_begin continual

check() { # check DESCRIPTION command...
  local what=$1
  shift
  if "$@"; then pass=$((pass + 1)); else echo "FAIL: $what"; fail=$((fail + 1)); fi
}
# kd values of a task log, one per line
kd_values() { grep -o '"kd":[-0-9.eE+]*' "$1" | cut -d: -f2; }
all_zero() { awk '{ if ($1 != 0) bad = 1 } END { exit bad }'; }
any_positive() { awk '{ if ($1 > 0) ok = 1 } END { exit !ok }'; }

"$rt" synth --layout market --output "$work/m" --identities 16 --test-identities 4 \
  --tracklets-per-identity 2 --frames 3 --size 64x32 --seed 3 --threads 2 >/dev/null 2>&1 ||
  { echo "FAIL: synth"; exit 1; }
"$rt" synth --layout market --output "$work/u" --identities 10 --test-identities 5 \
  --tracklets-per-identity 2 --frames 2 --size 64x32 --seed 4 --threads 2 >/dev/null 2>&1 ||
  { echo "FAIL: synth unseen"; exit 1; }
tiny=(--arch resnet18 --input-size 64x32 --episode-ids 3 --epochs 1 --steps-per-epoch 1
  --threads 1 --workers 1 --quiet --device cpu)
intra=(--stream intra --data "$work/m" --base-ids 4 --tasks 3 "${tiny[@]}")

for method in dwopp dwpp ft joint; do
  o=$work/$method
  expect 0 "" -- "$rt" continual "${intra[@]}" --method $method --output "$o.safetensors"
  rows=3 && [ $method = joint ] && rows=1
  check "$method: CSV of $rows x 4 results" [ "$(($(wc -l <"$o.results.csv") - 1))" = $((rows * 4)) ]
  check "$method: JSON summary" grep -q '"summary":{"seen_mAP":[0-9.]*,"seen_R1":[0-9.]*,"unseen_mAP":[0-9.]*' "$o.results.json"
  check "$method: forgetting" grep -q '"forgetting":{"mAP":\[' "$o.results.json"
  check "$method: plots" [ -s "$o.map.svg" ] && check "$method: png" [ -s "$o.map.png" ]
  last=2
  check "$method: task checkpoint" [ -s "$o.task0$last.safetensors" ]
  expect 0 "continual_method" -- "$rt" info "$o.safetensors"
  check "$method: metadata" grep -q "continual_task.*$last" "$work/out"
  if [ $method = dwopp ] || [ $method = dwpp ]; then
    check "$method: no distillation in task 0" all_zero < <(kd_values "$o.task00.log.jsonl")
    check "$method: distillation in task 1" any_positive < <(kd_values "$o.task01.log.jsonl")
  elif [ $method = ft ]; then
    check "ft: no distillation" all_zero < <(cat "$o".task0*.log.jsonl | grep -o '"kd":[-0-9.eE+]*' | cut -d: -f2)
  fi
done
expect 0 "" -- "$rt" eval --data "$work/m" --model "$work/dwopp.safetensors" --protocol i2i --flip --device cpu \
  --threads 1 --json "$work/dwopp.eval.json"
check "dwopp: eval mAP of the final model equals the unseen column" python3 -c "
import json, sys
r = json.load(open('$work/dwopp.results.json')); e = json.load(open('$work/dwopp.eval.json'))
a, b = r['mAP'][-1][-1], e['mAP']
if abs(a - b) > 1e-5: sys.exit('results %r, eval %r' % (a, b))"
check "joint trains on all 12 identities" grep -q '"tasks_trained":\[2\]' "$work/joint.results.json"

# ---- inter-domain, with --init and an unseen set
expect 0 "" -- "$rt" continual --stream inter --data "$work/m" --data "$work/u" --unseen "$work/u" \
  --ids-per-task 5 "${tiny[@]}" --init "$work/ft.safetensors" --output "$work/inter.safetensors"
check "inter: 2 rows x 3 sets" [ "$(($(wc -l <"$work/inter.results.csv") - 1))" = 6 ]
check "inter: the second dataset is unseen before task 1" grep -q '^0,u,seen,,$' "$work/inter.results.csv"
check "inter: task 0 distils from the --init model" any_positive < <(kd_values "$work/inter.task00.log.jsonl")

# ---- collected: two folders in the layout of reidembed collect-location= (made here from the
# synthetic Market's training images: each identity's images of one camera form a tracklet
# folder of stream cam<C>, each seen together with the previous one of its stream), one task
# each; only the unseen set is evaluated
declare -A last
for f in "$work"/m/bounding_box_train/*.jpg; do
  b=${f##*/} pid=$((10#${b:0:4})) cam=${b:6:1} fr=${b:10:6}
  site=$work/site$((pid % 2)) dir=$(printf '%06d' "$pid")
  mkdir -p "$site/cam$cam/$dir"
  cp "$f" "$site/cam$cam/$dir/$(printf '%010d' $((10#$fr))).jpg"
  grep -qs "\"dir\":\"$dir\"" "$site/cam$cam/index.jsonl" && continue
  with=${last[$site/$cam]:+\"${last[$site/$cam]}\"}
  echo "{\"event\":\"collected\",\"dir\":\"$dir\",\"track_id\":$pid,\"together_with\":[$with]}" \
    >>"$site/cam$cam/index.jsonl"
  last[$site/$cam]=$dir
done
expect 0 "" -- "$rt" continual --stream collected --data "$work/site0" --data "$work/site1" \
  --unseen "$work/u" "${tiny[@]}" --output "$work/site.safetensors"
check "collected: 2 tasks x 1 unseen set" [ "$(($(wc -l <"$work/site.results.csv") - 1))" = 2 ]
check "collected: results for the unseen set after each task" [ "$(grep -c ',u,unseen,0' "$work/site.results.csv")" = 2 ]
expect 0 "collected" -- "$rt" info "$work/site.safetensors"
expect 2 "expects known or all" -- "$rt" continual --stream collected --data "$work/site0" \
  --collected-negatives some --output "$work/bad.safetensors"

# ---- resumption: stop within task 1 (after 1 of its 2 epochs), and at a task boundary
r=(--method dwopp --save-every 1 "${intra[@]}" --epochs 2)
expect 0 "" -- "$rt" continual "${r[@]}" --stop-after 1:1 --output "$work/res.safetensors"
check "stopped: no results of task 1 yet" [ "$(grep -c '^1,' "$work/res.results.csv")" = 0 ]
expect 0 "" -- "$rt" continual "${r[@]}" --resume --output "$work/res.safetensors"
expect 0 "" -- "$rt" continual "${r[@]}" --stop-after 0 --output "$work/res0.safetensors"
expect 0 "" -- "$rt" continual "${r[@]}" --resume --output "$work/res0.safetensors"
expect 0 "" -- "$rt" continual "${r[@]}" --output "$work/full.safetensors"
check "resumed within a task: the same model" cmp -s "$work/full.safetensors" "$work/res.safetensors"
check "resumed at a boundary: the same model" cmp -s "$work/full.safetensors" "$work/res0.safetensors"
check "resumed: the same results" cmp -s "$work/full.results.csv" "$work/res.results.csv"
check "resumed: the same results (boundary)" cmp -s "$work/full.results.csv" "$work/res0.results.csv"
expect 1 "cannot resume" -- "$rt" continual "${r[@]}" --resume --margin 0.3 --output "$work/res.safetensors"

# ---- bad input
expect 1 "do not split" -- "$rt" continual "${tiny[@]}" --data "$work/m" --base-ids 5 --tasks 3 --output "$work/x.safetensors"
expect 1 "fewer than the 8" -- "$rt" continual "${intra[@]}" --episode-ids 8 --output "$work/x.safetensors"
expect 1 "$work/nope" -- "$rt" continual "${tiny[@]}" --data "$work/nope" --output "$work/x.safetensors"
expect 1 "not writable" -- "$rt" continual "${intra[@]}" --output "$work/no/x.safetensors"
expect 2 "--method" -- "$rt" continual "${intra[@]}" --method icarl --output "$work/x.safetensors"
expect 2 "--erase-p" -- "$rt" continual "${intra[@]}" --erase-p 0.7:0.3 --output "$work/x.safetensors"
expect 2 "intra splits one dataset" -- "$rt" continual "${intra[@]}" --data "$work/u" --output "$work/x.safetensors"
expect 0 "--episode-ids C" -- "$rt" continual --help
cli_test_end test_continual_e2e
