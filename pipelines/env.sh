# Sourced by the pipeline scripts: finds the plugin and the default model.
#
#   GST_PLUGIN_PATH  defaults to <repo>/build/gst when libgstreid.so is not
#                    installed system-wide (meson install puts it in GStreamer's
#                    plugin folder, where gst-launch-1.0 finds it by itself)
#   MODEL            defaults to <repo>/models/reid-resnet18-synth.safetensors, the
#                    default model shipped in the tree (any reid-train checkpoint works)
#   DEVICE           auto | cpu | cuda (default auto)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if ! gst-inspect-1.0 reidembed >/dev/null 2>&1; then
  export GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$repo/build/gst}"
fi
if ! gst-inspect-1.0 reidembed >/dev/null 2>&1; then
  echo "reidembed not found: build the project (meson setup build && ninja -C build) or set GST_PLUGIN_PATH" >&2
  exit 1
fi
MODEL=${MODEL:-$repo/models/reid-resnet18-synth.safetensors}
DEVICE=${DEVICE:-auto}
if [ ! -f "$MODEL" ]; then
  echo "model $MODEL not found: set MODEL to a reid-train checkpoint" >&2
  exit 1
fi

# gst-launch-1.0 -m prints every bus message; keep the re-ID ones, without the
# base64 embedding (it is in the JSON lines).
reid_messages() {
  grep --line-buffered -E 'reid-(tracklet|match)' |
    sed -u -E 's/embedding=\(GBytes\)[A-Za-z0-9+\/=]*/embedding=(GBytes).../; s/^Got message #[0-9]+ from element //'
}

# Fails with a clear message when an element is not installed.
need_element() {
  for e in "$@"; do
    gst-inspect-1.0 "$e" >/dev/null 2>&1 || { echo "element '$e' is not installed: $NEED_HINT" >&2; exit 1; }
  done
}

# Prints the script's header comment and exits 2 (bad usage).
usage() {
  sed -n '2,/^set /p' "$0" | grep '^#' | sed -E 's/^# ?//' >&2
  exit 2
}
