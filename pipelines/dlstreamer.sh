#!/usr/bin/env bash
# reidembed after Intel DL Streamer's detector and tracker.
#
#   gvadetect  finds people and attaches a GstVideoRegionOfInterestMeta per
#              person (roi_type = the model's label, e.g. "person"),
#   gvatrack   adds the track id as the ROI meta's `object_id` param (field `id`),
#   reidembed  reads exactly those (no adapter needed) and adds `reid-embedding`
#              / `reid-track-embedding` params, tracklet messages, JSON lines,
#   gvametaconvert ! gvametapublish (optional) would forward DL Streamer's JSON.
#
#   pipelines/dlstreamer.sh VIDEO_OR_URI
#   env: DET_MODEL  person detector, OpenVINO IR, e.g. from Open Model Zoo:
#                   omz_downloader --name person-detection-retail-0013
#                   DET_MODEL=intel/person-detection-retail-0013/FP32/person-detection-retail-0013.xml
#        DET_DEVICE CPU | GPU (default CPU), MODEL, DEVICE, QUERIES, THRESHOLD,
#        TRACKLETS (default dlstreamer.jsonl), CLASSES (object-class, default: all)
#
# DL Streamer is not installed on the project's build machine: this script
# checks for it and says so. DL Streamer builds on GStreamer 1.22+ as well.
set -euo pipefail
source "$(dirname "$0")/env.sh"
[ $# -ge 1 ] || usage
NEED_HINT="install Intel DL Streamer (https://github.com/dlstreamer/dlstreamer)" need_element gvadetect gvatrack
: "${DET_MODEL:?set DET_MODEL to a person-detection model (.xml)}"
src=$1
case "$src" in *://*) ;; *) src="file://$(realpath "$src")" ;; esac
queries=()
[ -n "${QUERIES:-}" ] && queries=(query-location="$QUERIES" match-threshold="${THRESHOLD:-0.7}")
gst-launch-1.0 -m -e \
  uridecodebin uri="$src" ! videoconvert ! video/x-raw,format=BGRx ! \
  gvadetect model="$DET_MODEL" device="${DET_DEVICE:-CPU}" ! \
  gvatrack tracking-type=short-term-imageless ! \
  reidembed model="$MODEL" device="$DEVICE" object-class="${CLASSES:-}" \
    tracklet-location="${TRACKLETS:-dlstreamer.jsonl}" "${queries[@]}" ! \
  fakesink sync=false | reid_messages
