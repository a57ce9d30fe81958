#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of outside input (tests/fuzz, README
# "Reliability"): libFuzzer harnesses built with Debian's clang, AddressSanitizer,
# UndefinedBehaviorSanitizer (any report aborts) and coverage instrumentation of
# the whole tree, in their own build folder (build-fuzz), so the gcc builds are
# untouched.
#
#   scripts/fuzz.sh run [--time SECONDS] [--jobs N] [NAME...]
#       builds, then fuzzes each harness (default: all) for SECONDS (default 60),
#       N at a time (default 2). Each starts from the committed seeds
#       (tests/fuzz/corpus/NAME) plus what earlier runs found (build-fuzz/corpus/NAME,
#       not committed). A crash, leak, sanitizer report, timeout (> 10 s per
#       input) or out-of-memory (> 2 GiB) fails the run; the input is saved as
#       build-fuzz/crashes/NAME/crash-* and the log as build-fuzz/logs/NAME.log.
#       Fix the parser, then copy the input to tests/fuzz/regress/NAME/, where
#       the ordinary test suite replays it (meson test --suite fuzz).
#       CI runs `scripts/fuzz.sh run --time 60`; run longer by hand, e.g.
#       `nice -n 10 scripts/fuzz.sh run --time 3600 --jobs 1 json`.
#   scripts/fuzz.sh build            only the build
#   scripts/fuzz.sh seeds [BUILD]    regenerates tests/fuzz/corpus with the project's own
#                                    writers (make_seeds of a gcc build, default build/)
#   scripts/fuzz.sh list             the harness names
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
names=(checkpoint onnx npy json motfile watchlist image mars collected gallery)
fuzz_build=build-fuzz

build() {
  local opts=(-Dfuzz=true -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false
    -Dcuda=disabled -Demulate_cuda=disabled
    "-Dc_args=-fsanitize=fuzzer-no-link -fno-sanitize-recover=all"
    "-Dcpp_args=-fsanitize=fuzzer-no-link -fno-sanitize-recover=all")
  if [ -d "$fuzz_build" ]; then
    CC=clang CXX=clang++ meson setup --reconfigure "$fuzz_build" "${opts[@]}" >/dev/null
  else
    CC=clang CXX=clang++ meson setup "$fuzz_build" "${opts[@]}" >/dev/null
  fi
  ninja -C "$fuzz_build" "${names[@]/#/tests/fuzz/fuzz_}"
}

run_one() { # name seconds
  local n=$1 t=$2 work=$fuzz_build/corpus/$1 crashes=$fuzz_build/crashes/$1 log=$fuzz_build/logs/$1.log
  mkdir -p "$work" "$crashes" "$fuzz_build/logs"
  local dict=()
  [ -f "tests/fuzz/$n.dict" ] && dict=("-dict=tests/fuzz/$n.dict")
  local rc=0
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 OMP_NUM_THREADS=1 \
    "$fuzz_build/tests/fuzz/fuzz_$n" "$work" "tests/fuzz/corpus/$n" "${dict[@]}" \
    -max_total_time="$t" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$crashes/" >"$log" 2>&1 || rc=$?
  local execs
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  if [ $rc -ne 0 ]; then
    echo "fuzz $n: FAILED (exit $rc) after ${execs:-?} inputs; input(s) in $crashes, log $log:"
    grep -E "ERROR|SUMMARY|runtime error|^    #[0-9] " "$log" | head -20
    return 1
  fi
  echo "fuzz $n: ok, ${execs:-?} inputs in ${t}s, corpus $(ls "$work" | wc -l) files, $(grep -o 'cov: [0-9]*' "$log" | tail -1)"
}

cmd=${1:-run}
shift || true
case $cmd in
build) build ;;
list) printf '%s\n' "${names[@]}" ;;
seeds)
  b=${1:-build}
  ninja -C "$b" tests/fuzz/make_seeds
  rm -rf tests/fuzz/corpus
  "$b/tests/fuzz/make_seeds" tests/fuzz/corpus
  du -sh tests/fuzz/corpus
  ;;
run)
  secs=60 jobs=2 chosen=()
  while [ $# -gt 0 ]; do
    case $1 in
    --time) secs=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    *) chosen+=("$1"); shift ;;
    esac
  done
  [ ${#chosen[@]} -gt 0 ] || chosen=("${names[@]}")
  build
  fail=0 running=0
  pids=()
  for n in "${chosen[@]}"; do
    run_one "$n" "$secs" &
    pids+=($!)
    running=$((running + 1))
    if [ $running -ge "$jobs" ]; then
      wait -n || fail=1
      running=$((running - 1))
    fi
  done
  while [ $running -gt 0 ]; do
    wait -n || fail=1
    running=$((running - 1))
  done
  [ $fail -eq 0 ] && echo "fuzz: all ${#chosen[@]} harnesses ran ${secs}s without a finding" || { echo "fuzz: FAILED"; exit 1; }
  ;;
*) sed -n '2,25p' "$0"; exit 2 ;;
esac
