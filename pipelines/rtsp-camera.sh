#!/usr/bin/env bash
# An RTSP camera (IP camera, NVR, or `mediamtx` re-streaming a file) ->
# detector + tracker -> reidembed, with tracklets printed and written as JSON
# lines. -e sends EOS on Ctrl-C so that live tracks are reported before exit.
#
#   pipelines/rtsp-camera.sh rtsp://user:pass@camera/stream
#   env: MODEL, DEVICE, QUERIES, THRESHOLD, TRACKLETS (default rtsp.jsonl),
#        LATENCY (jitter buffer, ms, default 200), DETECTOR (as in v4l2-camera.sh),
#        MOT (instead of a detector: a MOT file with the stream's tracks, for
#        replaying a recorded stream whose annotations are known)
set -euo pipefail
source "$(dirname "$0")/env.sh"
[ $# -ge 1 ] || usage
url=$1
if [ -n "${MOT:-}" ]; then
  DETECTOR="reidattachroi location=$MOT"
elif [ -z "${DETECTOR:-}" ]; then
  NEED_HINT="install Intel DL Streamer, or set DETECTOR (or MOT)" need_element gvadetect gvatrack
  : "${DET_MODEL:?set DET_MODEL to a person-detection model (OpenVINO IR .xml)}"
  DETECTOR="gvadetect model=$DET_MODEL device=CPU ! gvatrack tracking-type=short-term-imageless"
fi
queries=()
[ -n "${QUERIES:-}" ] && queries=(query-location="$QUERIES" match-threshold="${THRESHOLD:-0.7}")
# shellcheck disable=SC2086
gst-launch-1.0 -m -e \
  rtspsrc location="$url" latency="${LATENCY:-200}" ! decodebin ! videoconvert ! video/x-raw,format=NV12 ! \
  $DETECTOR ! \
  reidembed model="$MODEL" device="$DEVICE" stream-name=rtsp \
    tracklet-location="${TRACKLETS:-rtsp.jsonl}" "${queries[@]}" ! \
  fakesink sync=false | reid_messages
