#!/usr/bin/env bash
# Packs what tests/gpu/run.sh needs from a CUDA build into .gpu/ (ignored by
# git), to travel to a GPU machine as a `carry` path: the CUDA test programs,
# bench_gpu and reid-train, plus every shared library they load according to
# ldd, except the C library family (libc, libm, ld-linux, libpthread, libdl,
# librt) and the NVIDIA driver's (libcuda, libnvidia-*), which the GPU machine
# has. Everything goes into .gpu/bundle.tar.xz (xz keeps it under the 64 MiB
# that may travel); .gpu/MANIFEST lists the contents.
#
# usage: tests/gpu/pack.sh [BUILD_DIR] [--with-cuda-libs]
#   BUILD_DIR          default build-cuda (meson setup build-cuda -Dcuda=enabled && ninja -C build-cuda)
#   --with-cuda-libs   also pack cuDNN and cuBLAS (libcudnn*, libcublas*: ~1 GB, far over the
#                      carry limit). Without it they are listed as "from the GPU machine":
#                      run.sh finds them there (PyTorch's nvidia-* wheels or a CUDA toolkit).
# Then: run(command="tests/gpu/run.sh", carry=[".gpu"]).
set -euo pipefail
cd "$(dirname "$0")/../.."

build=build-cuda with_cuda=0
for a in "$@"; do
  case $a in
  --with-cuda-libs) with_cuda=1 ;;
  -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
  -*) echo "pack.sh: unknown option '$a'" >&2; exit 2 ;;
  *) build=$a ;;
  esac
done
if [ ! -x "$build/tests/cuda/test_cuda_ops" ] || [ ! -x "$build/tests/bench/bench_gpu" ]; then
  echo "pack.sh: $build has no CUDA test programs; build it first:" >&2
  echo "  meson setup $build -Dcuda=enabled && ninja -C $build" >&2
  exit 2
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
bins=("$build"/tests/cuda/test_cuda_* "$build/tests/gst/test_embedder_cuda" "$build/tests/bench/bench_gpu"
      "$build/training/reid-train")
for b in "${bins[@]}"; do
  case $b in *_emu) continue ;; esac # the emulated twins run in CI, not there
  [ -f "$b" ] && [ -x "$b" ] && cp "$b" "$stage/bin/"
done

skip_re='^(libc|libm|libdl|librt|libpthread|libresolv|ld-linux[^/]*|libcuda|libnvidia-[^/]*)\.so'
cuda_re='^(libcudnn[^/]*|libcublas[^/]*|libcublasLt)\.so'
external=()
declare -A seen=()
for b in "$stage"/bin/*; do
  if ldd "$b" | grep -q 'not found'; then
    echo "pack.sh: $(basename "$b") has unresolved libraries:" >&2
    ldd "$b" | grep 'not found' >&2
    exit 1
  fi
  while read -r path; do
    [ -n "$path" ] && [ -z "${seen[$path]:-}" ] || continue
    seen[$path]=1
    name=$(basename "$path")
    if [[ $name =~ $skip_re ]]; then continue; fi
    if [[ $name =~ $cuda_re ]] && [ $with_cuda = 0 ]; then
      external+=("$name")
      continue
    fi
    cp -L "$path" "$stage/lib/$name"
  done < <(ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }')
done
# cuDNN 9 loads its engine libraries with dlopen, which ldd does not show
if [ $with_cuda = 1 ] && [ -f "$stage/lib/libcudnn.so.9" ]; then
  dir=$(dirname "$(ldd "$stage/bin/test_cuda_ops" | awk '$1 == "libcudnn.so.9" { print $3 }')")
  for f in "$dir"/libcudnn_*.so.9; do cp -L "$f" "$stage/lib/"; done
fi

{
  echo "reid GPU bundle, packed $(date -u +%Y-%m-%dT%H:%M:%SZ) from $build"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "bin:"
  (cd "$stage/bin" && ls -l | awk 'NR > 1 { printf "  %-28s %10d\n", $9, $5 }')
  echo "lib:"
  (cd "$stage/lib" && ls -l | awk 'NR > 1 { printf "  %-40s %10d\n", $9, $5 }')
  echo "from the GPU machine: libc family, libcuda${external:+, $(printf '%s ' "${external[@]}" | sort -u | tr '\n' ' ')}"
} >"$stage/MANIFEST"

mkdir -p .gpu
rm -f .gpu/bundle.tar.xz
tar -C "$stage" -cf - bin lib MANIFEST | xz -T0 -6 >.gpu/bundle.tar.xz
cp "$stage/MANIFEST" .gpu/MANIFEST
size=$(stat -c %s .gpu/bundle.tar.xz)
echo "packed $(ls "$stage/bin" | wc -l) programs and $(ls "$stage/lib" | wc -l) libraries into .gpu/bundle.tar.xz ($((size / 1048576)) MiB)"
if [ "$size" -gt $((60 * 1048576)) ]; then
  echo "pack.sh: warning: over 60 MiB; the working tree and carried paths may travel 64 MiB in all" >&2
fi
