# Shared by the command-line test scripts (source it):
#   cli_test_begin NAME   a work folder ($work, removed on exit) and the counters
#   expect CODE NEEDLE -- command...
#                         the exit code; when CODE != 0 exactly one stderr line containing
#                         NEEDLE, when CODE = 0 a stdout containing NEEDLE ("" for any)
#   expect_size FILE BYTES
#   cli_test_end NAME     prints "NAME: N passed, N failed"; returns non-zero on a failure
cli_test_begin() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/reid-$1-XXXXXX")
  trap 'rm -rf "$work"' EXIT
  pass=0
  fail=0
}

expect() {
  local want=$1 needle=$2
  shift 3
  "$@" >"$work/out" 2>"$work/err"
  local got=$? lines
  lines=$(wc -l <"$work/err")
  if [ "$got" != "$want" ]; then
    echo "FAIL: '$*' exited $got, want $want; stderr: $(tail -3 "$work/err")"
    fail=$((fail + 1))
  elif [ "$want" != 0 ] && { [ "$lines" != 1 ] || ! grep -qF -- "$needle" "$work/err"; }; then
    echo "FAIL: '$*': want one stderr line containing '$needle', got: $(cat "$work/err")"
    fail=$((fail + 1))
  elif [ "$want" = 0 ] && [ -n "$needle" ] && ! grep -qF -- "$needle" "$work/out"; then
    echo "FAIL: '$*': stdout lacks '$needle': $(head -c 2000 "$work/out")"
    fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
}

expect_size() {
  local got
  got=$(stat -c %s "$1" 2>/dev/null || echo missing)
  if [ "$got" = "$2" ]; then pass=$((pass + 1)); else echo "FAIL: $1 has $got bytes, want $2"; fail=$((fail + 1)); fi
}

cli_test_end() {
  echo "$1: $pass passed, $fail failed"
  [ "$fail" = 0 ]
}
