#!/usr/bin/env bash
# The lifelong re-ID tables of README (issue 9) on synthetic data, on the CPU:
#   intra  one synthetic Market-layout dataset split into 10 tasks by identity
#          (8 + 9 x 8 of 80 training identities; 20 test identities never trained on),
#          DwoPP, DwPP, FT and Joint, each with seeds 1..SEEDS: final unseen mAP / R1,
#          final mAP on the tasks' own identities and the average forgetting, mean ± std;
#   inter  four synthetic datasets of four `synth --domain`s (palette, background, lighting,
#          colour cast) that also differ in layout, cameras, image size and seed, as four
#          tasks in the LReID style, plus an unseen fifth domain: Seen / Unseen.
# ResNet-18 at 64x32, episodes of 8 identities x (5 + 1), the paper's other settings.
#
#   tests/bench/dwopp_continual.sh BUILD_DIR OUT_DIR [intra|inter|all|tables|steptime]
# Environment: EPOCHS (epochs of one step per task, default 10), SEEDS (the seeds of both
# streams, default "1 2 3"), THREADS (default 1). Runs already done (their results JSON is there)
# are skipped, so several invocations with different SEEDS can share OUT_DIR in parallel;
# `tables` only prints the tables of the runs done.
set -euo pipefail
build=$1 out=$2 which=${3:-all}
rt=$build/training/reid-train
epochs=${EPOCHS:-10} seeds=${SEEDS:-1 2 3} threads=${THREADS:-1}
mkdir -p "$out"
size=64x32
common=(--arch resnet18 --input-size $size --episode-ids 8 --epochs "$epochs" --steps-per-epoch 1 --device cpu
  --threads "$threads" --workers 1 --quiet)

# summary FILE KEY: a value of the results JSON's summary (percent)
summary() { sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p" "$1" | awk '{ printf "%.4f", 100 * $1 }'; }
# the final mAP / R1 of test set COLUMN (0-based) of a results JSON
final() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('%.4f' % (100 * r[sys.argv[2]][-1][int(sys.argv[3])]))" "$@"; }
meanstd() { awk '{ s += $1; q += $1 * $1; n++ } END { m = s / n; v = n > 1 ? (q - n * m * m) / (n - 1) : 0; printf "%.1f ± %.1f", m, sqrt(v > 0 ? v : 0) }'; }

intra_data() {
  "$rt" synth --layout market --output "$out/intra-data" --identities 100 --test-identities 20 \
    --cameras 4 --tracklets-per-identity 3 --frames 4 --size $size --seed 11 --threads "$threads" >/dev/null
}

intra() {
  local d=$out/intra-data
  [ -d "$d" ] || intra_data
  for seed in $seeds; do
    for method in dwopp dwpp ft joint; do
      local o=$out/intra-$method-s$seed
      [ -f "$o.results.json" ] && [ -f "$o.safetensors" ] ||
        "$rt" continual --stream intra --data "$d" --base-ids 8 --tasks 10 --method $method \
          --seed "$seed" "${common[@]}" --output "$o.safetensors"
    done
  done
}

intra_table() {
  local seeds_done
  seeds_done=$(ls "$out"/intra-joint-s*.results.json 2>/dev/null | sed 's/.*-s\([0-9]*\)\.results.json/\1/' | sort -n)
  {
    echo "| method | unseen mAP | unseen R1 | seen-ids mAP | avg forgetting (mAP) |"
    echo "|---|---|---|---|---|"
    for method in dwopp dwpp ft joint; do
      local um="" ur="" sm="" fg=""
      for seed in $seeds_done; do
        local j=$out/intra-$method-s$seed.results.json
        um+="$(summary "$j" unseen_mAP)"$'\n' ur+="$(summary "$j" unseen_R1)"$'\n'
        sm+="$(summary "$j" seen_mAP)"$'\n'
        fg+="$(summary "$j" seen_forgetting_mAP)"$'\n'
      done
      [ "$method" = joint ] && fg="" # one task: nothing to forget
      echo "| $method | $(meanstd <<<"${um%$'\n'}") | $(meanstd <<<"${ur%$'\n'}") |" \
        "$(meanstd <<<"${sm%$'\n'}") | $([ -n "$fg" ] && meanstd <<<"${fg%$'\n'}" || echo -) |"
    done
  } | tee "$out/intra.md"
}

inter() {
  # four domains (synth --domain 1..4), whose layout, cameras, image size and seed differ too
  local doms=(market:4:64x32:21 duke:6:96x48:22 mars:3:128x64:23 market:8:160x80:24)
  local name
  for i in 0 1 2 3; do
    IFS=: read -r layout cams sz sd <<<"${doms[$i]}"
    name=$out/inter-d$i-$layout
    [ -d "$name" ] || "$rt" synth --layout "$layout" --output "$name" --identities 40 \
      --test-identities 10 --cameras "$cams" --tracklets-per-identity 3 --frames 4 --size "$sz" \
      --seed "$sd" --domain $((i + 1)) --threads "$threads" >/dev/null
  done
  local unseen=$out/inter-unseen-d5
  [ -d "$unseen" ] || "$rt" synth --layout market --output "$unseen" --identities 30 \
    --test-identities 20 --cameras 5 --tracklets-per-identity 3 --frames 4 --size 80x40 --seed 25 \
    --domain 5 --threads "$threads" >/dev/null
  local data=()
  for i in 0 1 2 3; do data+=(--data "$(ls -d "$out"/inter-d$i-*)"); done
  for seed in $seeds; do
    for method in dwopp dwpp ft joint; do
      local o=$out/inter-$method-s$seed
      [ -f "$o.results.json" ] && [ -f "$o.safetensors" ] ||
        "$rt" continual --stream inter "${data[@]}" --unseen "$unseen" --ids-per-task 30 \
          --method $method --seed "$seed" "${common[@]}" --output "$o.safetensors"
    done
  done
}

inter_table() {
  local seeds_done
  seeds_done=$(ls "$out"/inter-joint-s*.results.json 2>/dev/null | sed 's/.*-s\([0-9]*\)\.results.json/\1/' | sort -n)
  {
    echo "| method | Seen mAP | Seen R1 | Unseen mAP | Unseen R1 | avg forgetting (mAP) |"
    echo "|---|---|---|---|---|---|"
    for method in dwopp dwpp ft joint; do
      local col k cells=""
      for k in seen_mAP seen_R1 unseen_mAP unseen_R1 seen_forgetting_mAP; do
        col=""
        for seed in $seeds_done; do col+="$(summary "$out/inter-$method-s$seed.results.json" $k)"$'\n'; done
        [ $method = joint ] && [ $k = seen_forgetting_mAP ] && cells+=" - |" && continue
        cells+=" $(meanstd <<<"${col%$'\n'}") |"
      done
      echo "| $method |$cells"
    done
  } | tee "$out/inter.md"
}

# The step time of DwoPP (two forward passes, one backward, batch 32 x 6 = 192): task 1 of a
# 40 + 40 split of the intra data, 4 steps, median seconds of steps 2..4 from the task's log.
steptime() {
  local d=$out/intra-data arch
  [ -d "$d" ] || intra_data
  for arch in resnet18 resnet50; do
    local o=$out/steptime-$arch
    rm -f "$o".*
    "$rt" continual --stream intra --data "$d" --base-ids 40 --tasks 2 --episode-ids 32 \
      --arch $arch --input-size $size --epochs 4 --steps-per-epoch 1 --stop-after 1 --device cpu \
      --threads "$threads" --workers 2 --quiet --output "$o.safetensors"
    echo "$arch $size batch 192 (2 forward + 1 backward), $threads threads: median step" \
      "$(grep -o '"seconds":[0-9.]*' "$o.task01.log.jsonl" | tail -n 3 | cut -d: -f2 | sort -n |
        sed -n 2p) s"
  done | tee "$out/steptime.md"
}

case $which in
intra) intra && intra_table ;;
inter) inter && inter_table ;;
all) intra && inter && intra_table && inter_table ;;
tables) intra_table && inter_table ;;
steptime) steptime ;;
*) echo "usage: $0 BUILD_DIR OUT_DIR [intra|inter|all|tables|steptime]" >&2 && exit 2 ;;
esac
