#!/usr/bin/env bash
# The plugin's demo, from nothing but GStreamer's test source: writes a short
# video (videotestsrc -> lossless PNG frames in AVI), a MOTChallenge file with three tracks
# over it, and two query images (a crop of what track 2 shows, and a crop of
# another test pattern); then runs pipelines/file.sh on them: decode ->
# reidattachroi -> reidembed (inference-interval 3) with the watchlist, prints
# the tracklets and matches as they happen and summarises the JSON lines.
#
#   pipelines/demo.sh [OUT_DIR]        (default build/demo/gst)
#   env: MODEL, DEVICE (see env.sh), THRESHOLD (default 0.9999)
#
# The video shows test patterns, not people, and the query is cut from the same
# pixels as one track: it scores ~0.99999, unrelated patterns less, hence the
# demo's strict threshold. On people, pick match-threshold on validation data
# (~0.5-0.8 for a trained model).
set -euo pipefail
source "$(dirname "$0")/env.sh"
out=${1:-$repo/build/demo/gst}
mkdir -p "$out/queries"
video=$out/demo.avi mot=$out/demo.mot jsonl=$out/tracklets.jsonl
W=640 H=360 N=90

gst-launch-1.0 -q videotestsrc num-buffers=$N pattern=smpte ! \
  video/x-raw,width=$W,height=$H,framerate=30/1 ! pngenc compression-level=1 ! avimux ! filesink location="$video"
# track 1 walks across the bars (frames 1-90), track 2 stands still (1-45),
# track 3 appears later (50-90); MOT boxes: frame, id, x, y, w, h, conf, class, visibility
awk -v n=$N 'BEGIN {
  for (f = 1; f <= n; f++) {
    printf "%d,1,%d,40,64,128,1,1,1\n", f, 20 + 5 * f
    if (f <= 45) printf "%d,2,300,200,60,120,1,1,1\n", f
    if (f >= 50) printf "%d,3,520,30,80,160,1,1,1\n", f
  }
}' >"$mot"
# queries: what track 2 shows (300, 200, 60x120), and a patch of another pattern
gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=smpte ! video/x-raw,width=$W,height=$H ! \
  videocrop left=300 top=200 right=$((W - 360)) bottom=$((H - 320)) ! pngenc ! filesink location="$out/queries/standing.png"
gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=pinwheel ! video/x-raw,width=$W,height=$H ! \
  videocrop left=300 top=200 right=$((W - 360)) bottom=$((H - 320)) ! pngenc ! filesink location="$out/queries/stranger.png"

rm -f "$jsonl"
QUERIES=$out/queries THRESHOLD=${THRESHOLD:-0.9999} INTERVAL=3 "$(dirname "$0")/file.sh" "$video" "$mot" "$jsonl"
echo "JSON lines in $jsonl:"
awk '{
  match($0, /"track_id":[0-9-]+/); id = substr($0, RSTART + 11, RLENGTH - 11)
  if (match($0, /"match":\{[^}]*\}/)) { print "  track " id ": MATCH " substr($0, RSTART + 8, RLENGTH - 8); next }
  match($0, /"frames":[0-9]+/); frames = substr($0, RSTART + 9, RLENGTH - 9)
  match($0, /"reason":"[a-z]+"/); reason = substr($0, RSTART + 10, RLENGTH - 11)
  match($0, /"embedding":\[[^]]*\]/); emb = substr($0, RSTART, RLENGTH); dims = gsub(/,/, ",", emb) + 1
  print "  track " id ": " frames " frames, ended by " reason ", " dims "-d embedding"
}' "$jsonl"
