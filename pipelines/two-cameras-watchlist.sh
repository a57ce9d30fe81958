#!/usr/bin/env bash
# Two cameras, one watchlist: each camera has its own reidembed (its own
# tracks, stream-name cam1 / cam2); both compare their finished tracklets with
# the same query images and append to one JSON-lines file, so a person seen by
# either camera shows up as a "match" line (and a reid-match message) with the
# camera's name.
#
#   pipelines/two-cameras-watchlist.sh URI1 URI2 QUERIES [OUT.jsonl]
#     URIs: file:///path/video.mp4, rtsp://camera/stream, v4l2:///dev/video0
#     QUERIES: a folder of query images (or a text file listing them)
#   env: MODEL, DEVICE, THRESHOLD (default 0.7),
#        MOT1 / MOT2: MOT files with the tracks of recorded camera 1 / 2
#                     (instead of a detector), else DETECTOR (see v4l2-camera.sh)
set -euo pipefail
source "$(dirname "$0")/env.sh"
[ $# -ge 3 ] || usage
uri1=$1 uri2=$2 queries=$3 out=${4:-watchlist.jsonl}

detector_for() { # camera number -> pipeline fragment that attaches tracked ROIs
  local mot_var="MOT$1"
  if [ -n "${!mot_var:-}" ]; then
    echo "reidattachroi location=${!mot_var}"
  elif [ -n "${DETECTOR:-}" ]; then
    echo "$DETECTOR"
  else
    NEED_HINT="install Intel DL Streamer, or set MOT$1 or DETECTOR" need_element gvadetect gvatrack
    : "${DET_MODEL:?set DET_MODEL to a person-detection model (OpenVINO IR .xml)}"
    echo "gvadetect model=$DET_MODEL device=CPU ! gvatrack tracking-type=short-term-imageless"
  fi
}
det1=$(detector_for 1)
det2=$(detector_for 2)
embed="reidembed model=$MODEL device=$DEVICE query-location=$queries match-threshold=${THRESHOLD:-0.7} tracklet-location=$out"
# shellcheck disable=SC2086
gst-launch-1.0 -m -e \
  uridecodebin uri="$uri1" ! videoconvert ! video/x-raw,format=NV12 ! $det1 ! $embed stream-name=cam1 ! fakesink sync=false \
  uridecodebin uri="$uri2" ! videoconvert ! video/x-raw,format=NV12 ! $det2 ! $embed stream-name=cam2 ! fakesink sync=false |
  reid_messages
echo "tracklets and matches of both cameras: $out"
grep '"match"' "$out" || echo "(no match at threshold ${THRESHOLD:-0.7})"
