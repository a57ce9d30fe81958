#!/usr/bin/env bash
# The on-site loop on generated multi-camera video (README, "The on-site loop"):
#
#   1. a site: `reid-train synth --scene` cameras watching people walk (scene C), and a second
#      day of the same cameras with other people (scene E: same seed, so the same cameras,
#      rooms and paths; other synth identities);
#   2. collect: one reidembed per camera of scene C (the tracker boxes of camK.tracker.txt)
#      with collect-location: the tracklets of the site, no labels;
#   3. update: `reid-train continual --stream collected` from the shipped model (DwoPP; others
#      with METHODS, e.g. "dwopp ft"), the earlier test set as --unseen;
#   4. measure before and after: on scene E (people neither model saw), each camera through
#      reidembed, then `reid-train scene-eval`: I2V rank-1 / mAP of the query photos against
#      every tracklet; on the earlier test set (the synthetic MARS test split next to the
#      shipped model's training data, as scripts/train-default-model.sh makes it) V2V mAP /
#      rank-1: the forgetting.
#
#   scripts/onsite-loop.sh [BUILD_DIR] [WORK_DIR]
#   env: CAMERAS (3), PEOPLE (24), QUERIES (12), SECONDS_C (60), SECONDS_E (40), SEED (5),
#        EPOCHS (20), METHODS ("dwopp"), THREADS (2), MODEL (the shipped model),
#        CONTINUAL_ARGS (more options of the update, e.g. "--collected-negatives all")
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build}") work=$(realpath -m "${2:-build/onsite}")
rt=$build/training/reid-train
export GST_PLUGIN_PATH=$build/gst
model=$(realpath "${MODEL:-models/reid-resnet18-synth.safetensors}")
cams=${CAMERAS:-3} people=${PEOPLE:-24} seed=${SEED:-5} threads=${THREADS:-2}
mkdir -p "$work"
start=$SECONDS

scene() { # DIR FIRST_IDENTITY SECONDS
  [ -s "$1/scene.txt" ] || "$rt" synth --scene --output "$1" --cameras "$cams" --people "$people" \
    --seconds "$3" --seed "$seed" --first-identity "$2" --queries "${QUERIES:-12}" \
    --threads "$threads" >/dev/null
}
scene "$work/scene-c" 100000 "${SECONDS_C:-60}"
scene "$work/scene-e" 200000 "${SECONDS_E:-40}"
# the earlier test set: the data of scripts/train-default-model.sh
[ -d "$work/earlier" ] || "$rt" synth --layout mars --output "$work/earlier" --identities 64 \
  --cameras 4 --tracklets-per-identity 4 --frames 8 --size 128x64 --seed 11 >/dev/null

# reidembed on every camera of a scene: PIPELINE_PROPS... run per camera (SCENE MODEL NAME EXTRA...)
run_cameras() {
  local scene=$1 m=$2 jsonl=$3
  shift 3
  rm -f "$jsonl"
  while read -r _ k video _ tracker _; do
    gst-launch-1.0 -q filesrc location="$scene/$video" ! decodebin ! videoconvert ! \
      video/x-raw,format=NV12 ! reidattachroi location="$scene/$tracker" roi-type=person ! \
      reidembed model="$m" device=cpu stream-name="cam$k" tracklet-location="$jsonl" \
        message=false "$@" ! fakesink sync=false
  done < <(grep '^camera ' "$scene/scene.txt")
}

# 2. collect on scene C
if [ ! -f "$work/collected.done" ]; then
  rm -rf "$work/collected"
  run_cameras "$work/scene-c" "$model" "$work/collect.jsonl" inference-interval=4 \
    collect-location="$work/collected" collect-frames=16 collect-min-frames=8
  touch "$work/collected.done"
fi
n_tracklets=$(cat "$work"/collected/*/index.jsonl | grep -c '"event":"collected"')
n_dropped=$(cat "$work"/collected/*/index.jsonl | grep -c '"event":"dropped"' || true)
echo "collected: $n_tracklets tracklets ($n_dropped dropped) from $cams cameras of scene C"

# 4. accuracy of a model on scene E and on the earlier test set -> one table row
measure() { # NAME MODEL
  local out=$work/eval-$1
  mkdir -p "$out"
  if [ ! -f "$out/accuracy.json" ]; then
    run_cameras "$work/scene-e" "$2" "$out/tracklets.jsonl" inference-interval=2
    (cd "$work/scene-e/queries" && ls -- *.png) | sed "s#^#$work/scene-e/queries/#" >"$out/queries.txt"
    "$rt" embed --model "$2" --device cpu --input "$out/queries.txt" --output "$out/queries.npy" >/dev/null
    "$rt" scene-eval --jsonl "$out/tracklets.jsonl" --queries "$out/queries.txt" \
      --query-embeddings "$out/queries.npy" --scene "$work/scene-e" --json "$out/accuracy.json" >/dev/null
    "$rt" eval --data "$work/earlier" --model "$2" --protocol v2v --frames 4 --device cpu \
      --threads "$threads" --json "$out/earlier.json" >/dev/null
  fi
  python3 - "$1" "$out/accuracy.json" "$out/earlier.json" <<'EOF'
import json, sys
name, site, earlier = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
def pct(d, *keys):
    for k in keys:
        if k in d: return 100 * d[k] if d[k] <= 1 else d[k]
    return float("nan")
print(f"| {name} | {pct(site, 'rank1'):.1f} | {pct(site, 'mAP'):.1f} | "
      f"{pct(earlier, 'mAP'):.1f} | {pct({'r1': earlier['cmc'][0]}, 'r1'):.1f} |")
EOF
}

echo "| model | scene E I2V rank-1 | scene E I2V mAP | earlier V2V mAP | earlier V2V rank-1 |"
echo "|---|---|---|---|---|"
measure shipped "$model"
# 3. update on the collected tracklets, then measure
if ! "$rt" continual --help >/dev/null 2>&1; then
  echo "reid-train continual is not in this build: the loop stops before the update" >&2
  exit 1
fi
for method in ${METHODS:-dwopp}; do
  out=$work/$method.safetensors
  [ -f "$out" ] || "$rt" continual --stream collected --data "$work/collected" --method "$method" \
    --init "$model" --arch resnet18 --input-size 128x64 --epochs "${EPOCHS:-20}" \
    --unseen "$work/earlier" --device cpu --threads "$threads" --seed 1 --quiet --output "$out" \
    ${CONTINUAL_ARGS:-} \
    >"$work/$method.log" 2>&1
  measure "$method" "$out"
done
echo "done in $((SECONDS - start)) s"
