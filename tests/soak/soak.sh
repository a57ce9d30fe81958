#!/usr/bin/env bash
# Soak test of reidembed (a program, not a unit test; README "Reliability").
#
# Runs one real pipeline for --minutes of generated video, paced in real time:
#   videotestsrc (moving SMPTE bars, is-live) ! MJPEG encode ! FFmpeg decode ! videoconvert !
#   reidattachroi (a MOT file of tracks that come and go for the whole run) !
#   reidembed (CPU, watchlist of two query images, tracklet JSON lines, SQLite gallery,
#              crops collected with collect-location) !
#   fakesink
# The video is generated, not read: SMPTE bars scrolling 2 pixels a frame, so
# the picture loops every 160 frames (32 s at 5 fps); tracks get new ids all
# the time, so tracklets keep ending and being written. Every --interval seconds it samples the gst-launch process:
# RSS (VmRSS), open file descriptors, threads, tracklets written (JSON lines),
# gallery rows and collected tracklet folders (--no-collect: without collection). At the end it reports the growth slope of each after the
# warm-up (least squares, per hour) and FAILS (exit 1) when RSS grew more than
# --bound-mib after warm-up, when fds or threads grew, when the pipeline did
# not end cleanly, or when tracklets stopped being written.
#
#   tests/soak/soak.sh [--minutes 60] [--warmup 5] [--interval 60] [--bound-mib 16]
#                      [--fps 5] [--build build] [--out build/soak] [--no-collect]
#
# Cheap on a shared machine by design: 320x240 at 5 fps, 3 people at a time,
# a ResNet-18 at 64x32 input with random weights, inference-interval 2, one
# OpenMP thread. Run it under `nice -n 10`.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
minutes=60 warmup=5 interval=60 bound=16 fps=5 build=$repo/build out= collect=1
while [ $# -gt 0 ]; do
  case $1 in
  --no-collect) collect=0; shift; continue ;;
  --minutes) minutes=$2 ;;
  --warmup) warmup=$2 ;;
  --interval) interval=$2 ;;
  --bound-mib) bound=$2 ;;
  --fps) fps=$2 ;;
  --build) build=$(cd "$2" && pwd) ;;
  --out) out=$2 ;;
  *) echo "usage: $0 [--minutes M] [--warmup M] [--interval S] [--bound-mib B] [--fps F] [--build DIR] [--out DIR]" >&2; exit 2 ;;
  esac
  shift 2
done
out=${out:-$build/soak}
mkdir -p "$out/queries"
out=$(cd "$out" && pwd)
export GST_PLUGIN_PATH=$build/gst OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
W=320 H=240
frames=$((minutes * 60 * fps))

# model: a small ResNet-18 (speed and memory behaviour do not depend on the weights)
model=$out/model.safetensors
[ -f "$model" ] || "$build/training/reid-train" init --arch resnet18 --input-size 64x32 --seed 1 --output "$model" >/dev/null
# watchlist: two crops of the test patterns
for p in smpte:bars pinwheel:stranger; do
  gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=${p%%:*} ! video/x-raw,width=$W,height=$H ! \
    videocrop left=100 top=60 right=$((W - 140)) bottom=$((H - 140)) ! pngenc ! \
    filesink location="$out/queries/${p##*:}.png"
done
# MOT file: 3 lanes; in each a person walks for 4-16 s, then the next one (new id) comes
mot=$out/soak.mot
awk -v n=$frames -v fps=$fps 'BEGIN {
  srand(7); id = 0
  for (l = 0; l < 3; l++) { id++; lane_id[l] = id; lane_end[l] = 1 + int((4 + rand() * 12) * fps) }
  for (f = 1; f <= n; f++) {
    for (l = 0; l < 3; l++) {
      if (f > lane_end[l]) { id++; lane_id[l] = id; lane_end[l] = f + int((4 + rand() * 12) * fps) }
      x = 10 + (f * 3 + l * 90) % 250
      printf "%d,%d,%d,%d,40,100,1,1,1\n", f, lane_id[l], x, 20 + l * 60
    }
  }
}' >"$mot"
jsonl=$out/tracklets.jsonl gallery=$out/gallery.sqlite csv=$out/soak.csv log=$out/gst.log
collected=$out/collected
rm -rf "$jsonl" "$gallery" "$collected"
collect_prop=()
[ $collect = 1 ] && collect_prop=(collect-location="$collected")

gst-launch-1.0 -e videotestsrc is-live=true num-buffers=$frames pattern=smpte horizontal-speed=2 ! \
  video/x-raw,width=$W,height=$H,framerate=$fps/1 ! avenc_mjpeg ! avdec_mjpeg ! videoconvert ! \
  reidattachroi location="$mot" ! \
  reidembed model="$model" device=cpu batch-size=4 inference-interval=2 track-timeout=10 \
  tracklet-location="$jsonl" query-location="$out/queries" match-threshold=0.9 \
  gallery-location="$gallery" stream-name=soak "${collect_prop[@]}" ! fakesink sync=false >"$log" 2>&1 &
pid=$!
echo "soak: pid $pid, $minutes min of ${W}x$H at $fps fps, samples every $interval s into $csv"
echo "minute,rss_kib,fds,threads,tracklets,gallery_rows,collected" >"$csv"
t0=$(date +%s)
sample() {
  local s rss thr fds trk rows col
  s=/proc/$pid/status
  rss=$(awk '/^VmRSS/ {print $2}' "$s" 2>/dev/null) || return 1
  thr=$(awk '/^Threads/ {print $2}' "$s" 2>/dev/null) || return 1
  fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
  [ -n "$rss" ] || return 1
  trk=$(grep -c '"embedding"' "$jsonl" 2>/dev/null || true)
  rows=$(sqlite3 "file:$gallery?mode=ro" 'SELECT count(*) FROM reid_tracklets' 2>/dev/null || echo 0)
  col=$(find "$collected" -mindepth 2 -maxdepth 2 -type d -name '[0-9]*' 2>/dev/null | wc -l)
  printf '%.2f,%s,%s,%s,%s,%s,%s\n' "$(awk -v a="$(date +%s)" -v b=$t0 'BEGIN {print (a - b) / 60}')" "$rss" "$fds" "$thr" "${trk:-0}" "${rows:-0}" "$col" >>"$csv"
}
while kill -0 $pid 2>/dev/null; do
  sample || true
  for _ in $(seq "$interval"); do kill -0 $pid 2>/dev/null || break; sleep 1; done
done
rc=0
wait $pid || rc=$?
echo "soak: gst-launch-1.0 exited with $rc after $(( ($(date +%s) - t0) / 60 )) min"
cat "$csv"
# slope per hour (least squares over the samples after warm-up), growth after warm-up
awk -F, -v warm="$warmup" -v bound="$bound" -v rc=$rc '
  NR > 1 && $1 >= warm {
    n++; t[n] = $1; for (c = 2; c <= NF; c++) v[c, n] = $c; nf = NF
  }
  END {
    split("minute,rss_kib,fds,threads,tracklets,gallery_rows,collected", name, ",")
    if (n < 2) { print "soak: FAIL: fewer than 2 samples after warm-up"; exit 1 }
    for (i = 1; i <= n; i++) { st += t[i]; } mt = st / n
    for (i = 1; i <= n; i++) stt += (t[i] - mt) ^ 2
    fail = (rc != 0)
    if (rc != 0) print "soak: FAIL: the pipeline exited with " rc
    for (c = 2; c <= nf; c++) {
      sv = 0; for (i = 1; i <= n; i++) sv += v[c, i]; mv = sv / n
      sxy = 0; for (i = 1; i <= n; i++) sxy += (t[i] - mt) * (v[c, i] - mv)
      slope = stt > 0 ? sxy / stt * 60 : 0
      hi = v[c, 1]; for (i = 1; i <= n; i++) if (v[c, i] > hi) hi = v[c, i]
      printf "soak: %-12s after warm-up (%d samples, %.1f-%.1f min): first %s, last %s, max %s, slope %.1f/h\n",
             name[c], n, t[1], t[n], v[c, 1], v[c, n], hi, slope
      if (c == 2 && hi - v[2, 1] > bound * 1024) { fail = 1; printf "soak: FAIL: RSS grew %.1f MiB after warm-up (bound %d MiB)\n", (hi - v[2, 1]) / 1024, bound }
      if ((c == 3 || c == 4) && hi > v[c, 1] + 2) { fail = 1; print "soak: FAIL: " name[c] " grew after warm-up" }
      if (c == 5 && v[5, n] <= v[5, 1]) { fail = 1; print "soak: FAIL: no tracklets written after warm-up" }
    }
    print fail ? "soak: FAIL" : "soak: PASS"
    exit fail
  }' "$csv"
