#!/usr/bin/env bash
# The main job as far as it exists today: install, build, write a ResNet-50
# checkpoint, embed a few images with it on the CPU, then run the GStreamer
# plugin on a generated video: reidattachroi puts three tracks on it (from a
# generated MOT file), reidembed embeds them, prints each tracklet as it ends,
# writes JSON lines and matches the tracklets against two query images
# (pipelines/demo.sh).
#
# Until the trained default model lands (issue 5), the weights are
# torchvision's random initialisation: the embeddings are real network
# outputs, but not yet meaningful for re-identification.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build
out=build/demo
mkdir -p "$out"
rt=build/training/reid-train
[ -f "$out/resnet50.safetensors" ] || $rt init --arch resnet50 --last-stride 1 --output "$out/resnet50.safetensors"
$rt info "$out/resnet50.safetensors" | tail -n 1
scripts/make-test-images.sh "$out/images" 96 192 1 2 3 4
(cd "$out/images" && ls *.ppm) >"$out/images/list.txt"
$rt embed --model "$out/resnet50.safetensors" --input "$out/images/list.txt" --output "$out/embeddings.npy"
echo "embeddings of $(wc -l <"$out/images/list.txt") images: $out/embeddings.npy"

# the plugin: the freshly built one, a registry of its own in the build folder
GST_PLUGIN_PATH="$PWD/build/gst" GST_REGISTRY="$PWD/$out/gst-registry.bin" \
  MODEL="$out/resnet50.safetensors" DEVICE=cpu pipelines/demo.sh "$out/gst"
