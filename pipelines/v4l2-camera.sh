#!/usr/bin/env bash
# A V4L2 camera (USB webcam, /dev/videoN) -> detector + tracker -> reidembed:
# live tracklet embeddings, printed as tracks end, appended as JSON lines and
# matched against a watchlist.
#
#   pipelines/v4l2-camera.sh [/dev/video0]
#   env: MODEL, DEVICE, QUERIES, THRESHOLD, TRACKLETS (default camera.jsonl),
#        DETECTOR: the detector + tracker part of the pipeline (anything that
#        attaches GstVideoRegionOfInterestMeta with an object_id param).
#        Default: DL Streamer, when installed:
#          gvadetect model=$DET_MODEL device=CPU ! gvatrack tracking-type=short-term-imageless
#
# reidembed computes embeddings; it does not find people. A live camera needs a
# detector and a tracker upstream (see dlstreamer.sh for the models).
set -euo pipefail
source "$(dirname "$0")/env.sh"
dev=${1:-/dev/video0}
[ -e "$dev" ] || { echo "no camera at $dev" >&2; exit 1; }
if [ -z "${DETECTOR:-}" ]; then
  NEED_HINT="install Intel DL Streamer, or set DETECTOR to your detector ! tracker" need_element gvadetect gvatrack
  : "${DET_MODEL:?set DET_MODEL to a person-detection model (OpenVINO IR .xml), e.g. person-detection-retail-0013.xml}"
  DETECTOR="gvadetect model=$DET_MODEL device=CPU ! gvatrack tracking-type=short-term-imageless"
fi
queries=()
[ -n "${QUERIES:-}" ] && queries=(query-location="$QUERIES" match-threshold="${THRESHOLD:-0.7}")
# shellcheck disable=SC2086  # DETECTOR is a pipeline fragment
gst-launch-1.0 -m -e \
  v4l2src device="$dev" ! videoconvert ! video/x-raw,format=BGRx ! \
  $DETECTOR ! \
  reidembed model="$MODEL" device="$DEVICE" stream-name="$(basename "$dev")" \
    tracklet-location="${TRACKLETS:-camera.jsonl}" "${queries[@]}" ! \
  fakesink sync=false | reid_messages
