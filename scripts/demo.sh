#!/usr/bin/env bash
# The main job: install, build, then run the default model shipped in models/
# (an MDKT student, ResNet-18 at 128x64, trained on `reid-train synth` people by
# scripts/train-default-model.sh):
#   1. reid-train embed on a few generated images;
#   2. the GStreamer plugin on a generated video (pipelines/demo.sh):
#      reidattachroi puts three tracks on it (from a generated MOT file),
#      reidembed embeds them, prints each tracklet as it ends, writes JSON lines
#      and matches the tracklets against two query images.
# MODEL=path/to/checkpoint.safetensors runs another reid-train checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build
model=${MODEL:-models/reid-resnet18-synth.safetensors}
out=build/demo
mkdir -p "$out"
rt=build/training/reid-train
$rt info "$model" | tail -n 1
scripts/make-test-images.sh "$out/images" 96 192 1 2 3 4
(cd "$out/images" && ls *.ppm) >"$out/images/list.txt"
$rt embed --model "$model" --input "$out/images/list.txt" --output "$out/embeddings.npy"
echo "embeddings of $(wc -l <"$out/images/list.txt") images: $out/embeddings.npy"

# the plugin: the freshly built one, a registry of its own in the build folder
GST_PLUGIN_PATH="$PWD/build/gst" GST_REGISTRY="$PWD/$out/gst-registry.bin" \
  MODEL="$(realpath "$model")" DEVICE=cpu pipelines/demo.sh "$out/gst"
