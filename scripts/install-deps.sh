#!/usr/bin/env bash
# Installs the Debian bookworm packages the project builds, tests and runs with.
# Safe to run again: only missing packages are installed.
#   scripts/install-deps.sh [--with-torch]   (--with-torch: PyTorch for parity tests and the benchmark peer)
set -euo pipefail
packages=(
  gcc g++ perl meson ninja-build pkg-config bash gawk   # g++, perl: the CUDA emulator (tests/cuda_emu)
  libdnnl-dev                                   # oneDNN: CPU convolutions
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev   # FFmpeg: image decoding
  libmatio-dev                                  # MARS info/*.mat files
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libjson-glib-dev   # the plugin
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-libav
  libsqlite3-dev libpq-dev postgresql libfaiss-dev   # the tracklet gallery: SQLite, PostgreSQL (client; server for the tests), FAISS
  libpango1.0-dev libcairo2-dev fonts-dejavu-core   # reidoverlay's labels
  protobuf-c-compiler libprotobuf-c-dev         # ONNX import and export (protoc-c compiles onnx.proto at build time)
  zlib1g-dev                                    # .mat checks before libmatio (training/data/mat_check.c)
  clang libclang-rt-14-dev libomp-dev           # fuzzing: clang, libFuzzer + sanitizer runtimes, clang's OpenMP (scripts/fuzz.sh)
)
if [ "${1:-}" = "--with-torch" ]; then
  packages+=(python3 python3-numpy python3-torch python3-torchvision)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
