#!/usr/bin/env bash
# A video file with known tracks (a MOTChallenge file: gt.txt, det.txt with
# ids, or a tracker's output) -> per-track embeddings, printed as they end and
# written as JSON lines; optionally matched against a watchlist of images.
#
#   pipelines/file.sh VIDEO MOT_FILE [TRACKLETS.jsonl]
#   env: MODEL, DEVICE (see env.sh), QUERIES (folder or list of query images),
#        THRESHOLD (cosine for a match, default 0.7), INTERVAL (embed a track
#        every N frames, default 1), ROI_TYPE (default person)
#
# What it shows: filesrc ! decodebin ! videoconvert ! reidattachroi ! reidembed,
# with gst-launch-1.0 -m printing the reid-tracklet / reid-match messages.
set -euo pipefail
source "$(dirname "$0")/env.sh"
[ $# -ge 2 ] || usage
video=$1 mot=$2 out=${3:-tracklets.jsonl}
queries=()
[ -n "${QUERIES:-}" ] && queries=(query-location="$QUERIES" match-threshold="${THRESHOLD:-0.7}")
gst-launch-1.0 -m \
  filesrc location="$video" ! decodebin ! videoconvert ! video/x-raw,format=NV12 ! \
  reidattachroi location="$mot" roi-type="${ROI_TYPE:-person}" ! \
  reidembed model="$MODEL" device="$DEVICE" inference-interval="${INTERVAL:-1}" \
    tracklet-location="$out" "${queries[@]}" ! \
  fakesink sync=false | reid_messages
echo "tracklets: $out"
