#!/usr/bin/env bash
# SIGKILL of training (README "Reliability"): reid-train teacher on a tiny synthetic MARS
# (ResNet-18 at 64x32, CPU, checkpoint + state every epoch) is killed with SIGKILL,
#   1. in the middle of epoch 2 (after its first logged step), and
#   2. while epoch 2's checkpoint is being written (a temporary file exists);
# each time `--resume` must finish the run with a model and a state bit-identical to an
# uninterrupted run's, and the logged losses must be the same.
#   test_train_kill.sh PATH/reid-train
set -u
rt=$1
export OMP_WAIT_POLICY=passive
. "$(dirname "$0")/../cli_expect.sh"
cli_test_begin train-kill

check() {
  local what=$1
  shift
  if "$@"; then pass=$((pass + 1)); else echo "FAIL: $what"; fail=$((fail + 1)); fi
}
losses() { sed -E 's/"seconds":[^,]*,"images_per_s":[^,]*,//' "$1"; }

"$rt" synth --layout mars --output "$work/d" --identities 8 --tracklets-per-identity 2 \
  --frames 4 --size 64x32 --seed 5 >/dev/null 2>&1 || { echo "FAIL: synth"; exit 1; }
args=(teacher --data "$work/d" --batch-p 4 --batch-k 2 --frames 2 --steps-per-epoch 2 --device cpu
      --threads 1 --quiet --arch resnet18 --input-size 64x32 --epochs 3 --save-every 1)

expect 0 "" -- "$rt" "${args[@]}" --output "$work/a.safetensors"

# kill_when NAME CONDITION: starts a run writing NAME.*, SIGKILLs it once CONDITION holds
kill_when() {
  local name=$1 cond=$2
  "$rt" "${args[@]}" --output "$work/$name.safetensors" &
  local pid=$! t=0
  until eval "$cond"; do
    if ! kill -0 $pid 2>/dev/null; then echo "FAIL: $name: the run ended before the kill"; fail=$((fail + 1)); return; fi
    sleep 0.01
    t=$((t + 1))
  done
  kill -KILL $pid
  wait $pid 2>/dev/null
  echo "$name: killed ($(wc -l <"$work/$name.log.jsonl") log lines; state $( [ -f "$work/$name.state.safetensors" ] && echo present || echo absent))"
}

# 1. mid-epoch 2: epoch 1's checkpoint and state exist and a step of epoch 2 is logged
kill_when b '[ -f "$work/b.state.safetensors" ] && grep -q "\"epoch\":2" "$work/b.log.jsonl" 2>/dev/null'
check "b: the checkpoint left by the kill opens" "$rt" info "$work/b.safetensors"
expect 0 "" -- "$rt" "${args[@]}" --resume --output "$work/b.safetensors"
check "b: resumed model is bit-identical" cmp "$work/a.safetensors" "$work/b.safetensors"
check "b: resumed state is bit-identical" cmp "$work/a.state.safetensors" "$work/b.state.safetensors"
check "b: resumed log has the same losses" cmp <(losses "$work/a.log.jsonl") <(losses "$work/b.log.jsonl")

# 2. during a checkpoint write of epoch 2 (its last step is logged, a temporary file exists)
kill_when c 'grep -q "\"epoch\":2,\"step\":2" "$work/c.log.jsonl" 2>/dev/null && ls "$work"/c.*tmp-* >/dev/null 2>&1'
check "c: the checkpoint left by the kill opens" "$rt" info "$work/c.safetensors"
rm -f "$work"/c.*tmp-*
expect 0 "" -- "$rt" "${args[@]}" --resume --output "$work/c.safetensors"
check "c: resumed model is bit-identical" cmp "$work/a.safetensors" "$work/c.safetensors"
check "c: resumed state is bit-identical" cmp "$work/a.state.safetensors" "$work/c.state.safetensors"
check "c: resumed log has the same losses" cmp <(losses "$work/a.log.jsonl") <(losses "$work/c.log.jsonl")

cli_test_end train-kill
