#!/usr/bin/env bash
# Writes smooth, deterministic PPM test images (decodable by FFmpeg).
#   make-test-images.sh DIR WIDTH HEIGHT SEED [SEED ...]   -> DIR/img-SEED.ppm
set -euo pipefail
dir=$1 w=$2 h=$3
shift 3
mkdir -p "$dir"
for seed in "$@"; do
  LC_ALL=C awk -v w="$w" -v h="$h" -v seed="$seed" 'BEGIN {
    srand(seed); a = rand() * 6; b = rand() * 6; c = rand() * 6
    printf "P6\n%d %d\n255\n", w, h
    for (y = 0; y < h; y++) for (x = 0; x < w; x++)
      printf "%c%c%c", int(127 + 120 * sin(a + x / 7.0)), int(127 + 120 * sin(b + y / 9.0)), int(127 + 120 * sin(c + (x + y) / 11.0))
  }' >"$dir/img-$seed.ppm"
done
