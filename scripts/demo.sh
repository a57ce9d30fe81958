#!/usr/bin/env bash
# The main job: install what is missing, build, then show re-identification working on a
# generated scene (pipelines/demo.sh): two cameras, people walking through both, a
# watchlist of query photos; it prints each query's matches per camera, their accuracy
# against the ground truth, and writes annotated videos and a contact sheet.
#   scripts/demo.sh [VIDEO MOT [QUERIES]]   (with arguments: your own recording)
# MODEL=path/to/checkpoint.safetensors runs another reid-train checkpoint; the other
# settings are pipelines/demo.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
# the plugin: the freshly built one, a registry of its own in the build folder
mkdir -p build/demo
GST_PLUGIN_PATH="$PWD/build/gst" GST_REGISTRY="$PWD/build/demo/gst-registry.bin" \
  DEVICE=${DEVICE:-auto} pipelines/demo.sh "$@"
