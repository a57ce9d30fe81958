#!/usr/bin/env bash
# The main job, shown on a generated multi-camera scene (or on your own recording):
#
#   pipelines/demo.sh                      a scene from `reid-train synth --scene` (cached)
#   pipelines/demo.sh VIDEO MOT [QUERIES]  your recording, the boxes of your detector and
#                                          tracker (MOTChallenge), a folder of query photos
#
# Per camera: filesrc ! decodebin ! reidattachroi (the tracker's boxes) ! reidembed (the
# watchlist of query photos) ! reidoverlay ! encoder ! file; all cameras append to one
# JSON-lines file. Then `reid-train scene-eval` prints, for each query, the tracklets it
# matched in each camera (score, times), and on a generated scene whether each is right:
# the watchlist's precision and recall, and I2V rank-1 / mAP of the query photos against all
# tracklets. It writes the annotated videos and a contact sheet (PNG: each query photo
# beside its best tracklets, framed green when right, red when wrong).
#
#   env: MODEL, DEVICE (see env.sh); OUT (default <repo>/build/demo);
#        THRESHOLD (match-threshold; default: the model's calibrated one);
#        SEED, PEOPLE, SCENE_SECONDS, CAMERAS, SIZE (the generated scene; defaults 1, 10, 30, 2,
#        640x360), QUERY_PHOTOS (default 4); INTERVAL (embed a track every N frames, default 2);
#        ANNOTATE=0 skips the annotated videos; RT (reid-train, default <repo>/build/...);
#        GALLERY: also write every tracklet to this gallery (SQLite path or postgresql:// URI;
#        search it with reid-search)
set -euo pipefail
source "$(dirname "$0")/env.sh"
[ $# -eq 0 ] || [ $# -ge 2 ] || usage
out=$(realpath -m "${OUT:-$repo/build/demo}")
rt=${RT:-$repo/build/training/reid-train}
[ -x "$rt" ] || { echo "reid-train not found at $rt: build the project first" >&2; exit 1; }
mkdir -p "$out"
jsonl=$out/tracklets.jsonl
rm -f "$jsonl"

threshold=()
[ -n "${THRESHOLD:-}" ] && threshold=(match-threshold="$THRESHOLD")
encoder="jpegenc quality=85 ! avimux" ext=avi
if gst-inspect-1.0 x264enc >/dev/null 2>&1; then
  encoder="x264enc speed-preset=veryfast tune=zerolatency ! mp4mux" ext=mp4
fi
overlay="reidoverlay ! videoconvert !"
if ! gst-inspect-1.0 reidoverlay >/dev/null 2>&1; then
  echo "(reidoverlay is not in this build: the videos are written without boxes)"
  overlay="videoconvert !"
fi

# one pipeline per camera: NAME VIDEO MOT [QUERIES]
run_camera() {
  local name=$1 video=$2 mot=$3 queries=${4:-}
  local watch=()
  [ -n "$queries" ] && watch=(query-location="$queries" "${threshold[@]}")
  [ -n "${GALLERY:-}" ] && watch+=(gallery-location="$GALLERY")
  local sink="fakesink sync=false"
  if [ "${ANNOTATE:-1}" != 0 ]; then
    sink="$overlay $encoder ! filesink location=$out/$name-annotated.$ext"
  fi
  # shellcheck disable=SC2086 # sink and encoder are pipeline fragments
  gst-launch-1.0 -q filesrc location="$video" ! decodebin ! videoconvert ! video/x-raw,format=NV12 ! \
    reidattachroi location="$mot" roi-type=person ! \
    reidembed model="$MODEL" device="$DEVICE" stream-name="$name" inference-interval="${INTERVAL:-2}" \
      tracklet-location="$jsonl" "${watch[@]}" message=false ! $sink
}

start=$SECONDS
if [ $# -eq 0 ]; then
  args=(--seed "${SEED:-1}" --people "${PEOPLE:-10}" --seconds "${SCENE_SECONDS:-30}"
        --cameras "${CAMERAS:-2}" --size "${SIZE:-640x360}" --queries "${QUERY_PHOTOS:-4}")
  scene=$out/scene-$(echo "${args[*]}" | tr ' ' '_' | tr -d -)
  if [ ! -f "$scene/scene.txt" ]; then
    rm -rf "$scene"
    "$rt" synth --scene --output "$scene" "${args[@]}"
  else
    echo "scene (cached): $scene"
  fi
  (cd "$scene/queries" && ls -- *.png) >"$out/queries.txt"
  sed -i "s#^#$scene/queries/#" "$out/queries.txt"
  pids=()
  while read -r _ k video _ tracker _; do
    run_camera "cam$k" "$scene/$video" "$scene/$tracker" "$scene/queries" &
    pids+=($!)
  done < <(grep '^camera ' "$scene/scene.txt")
  for p in "${pids[@]}"; do wait "$p"; done
  where=(--scene "$scene")
else
  video=$(realpath "$1") mot=$(realpath "$2") queries=${3:+$(realpath "$3")}
  name=$(basename "${video%.*}")
  run_camera "$name" "$video" "$mot" "$queries"
  where=(--camera "$name=$video,$mot")
  if [ -z "$queries" ]; then
    echo "tracklets: $(grep -vc '"match"' "$jsonl") in $jsonl (give QUERIES to match them)"
    [ "${ANNOTATE:-1}" != 0 ] && echo "annotated video: $out/$name-annotated.$ext"
    exit 0
  fi
  if [ -d "$queries" ]; then
    find "$queries" -maxdepth 1 -type f \( -iname '*.png' -o -iname '*.jpg' -o -iname '*.jpeg' \) | sort >"$out/queries.txt"
  else # a list: its paths made absolute (they are relative to the list's folder)
    (cd "$(dirname "$queries")" && grep -v '^#' "$queries" | grep . | xargs -d '\n' realpath) >"$out/queries.txt"
  fi
fi
echo "pipelines done in $((SECONDS - start)) s; JSON lines: $jsonl"

# the query photos' embeddings (the image role of the same model), then the report
"$rt" embed --model "$MODEL" --device "$DEVICE" --input "$out/queries.txt" \
  --output "$out/queries.npy" >/dev/null
"$rt" scene-eval --jsonl "$jsonl" --queries "$out/queries.txt" --query-embeddings "$out/queries.npy" \
  "${where[@]}" --contact-sheet "$out/contact-sheet.png" --json "$out/accuracy.json"
if [ "${ANNOTATE:-1}" != 0 ]; then
  echo "annotated videos: $(ls "$out"/*-annotated."$ext" | tr '\n' ' ')"
fi
echo "accuracy: $out/accuracy.json; done in $((SECONDS - start)) s"
