#!/usr/bin/env bash
# reid-train synth on good and bad command lines: exit codes (0 ok, 1 failed, 2 usage),
# one-line errors naming the cause, the four layouts on disk with their index files.
#   test_synth_cli.sh PATH/reid-train
set -u
rt=$1
. "$(dirname "$0")/../cli_expect.sh"
cli_test_begin synth-cli


# exists PATH...: each path exists
exists() {
  for p in "$@"; do
    if [ -e "$p" ]; then pass=$((pass + 1)); else echo "FAIL: $p missing"; fail=$((fail + 1)); fi
  done
}

small=(--identities 6 --cameras 2 --tracklets-per-identity 2 --frames 3 --size 64x32 --seed 3)
expect 0 "usage: reid-train synth" -- "$rt" synth --help
expect 0 "synth" -- "$rt" --help
expect 2 "--layout is required" -- "$rt" synth --output "$work/x"
expect 2 "--output is required" -- "$rt" synth --layout mars
expect 2 "--layout expects mars, duke, market or veri, got 'cuhk'" -- "$rt" synth --layout cuhk --output "$work/x"
expect 2 "--size expects HEIGHTxWIDTH" -- "$rt" synth --layout mars --output "$work/x" --size 64by32
expect 2 "--tracklets-per-identity expects an integer in [2, 999]" -- "$rt" synth --layout mars --output "$work/x" --tracklets-per-identity 1
expect 2 "--junk: only the mars and market layouts" -- "$rt" synth --layout veri --output "$work/x" --junk 2
expect 2 "--cameras 12: the duke layout" -- "$rt" synth --layout duke --output "$work/x" --cameras 12
expect 2 "--test-identities 6 leaves no train identity" -- "$rt" synth --layout mars --output "$work/x" --identities 6 --test-identities 6
expect 2 "--seed expects a non-negative integer" -- "$rt" synth --layout mars --output "$work/x" --seed -4
expect 2 "unknown or misses its value" -- "$rt" synth --layout mars --output "$work/x" --bogus
expect 2 "unexpected argument 'extra'" -- "$rt" synth --layout mars --output "$work/x" extra

expect 0 "mars layout, 36 images; train 6, query 6, gallery 6 tracklets" -- "$rt" synth --layout mars --output "$work/mars" "${small[@]}"
exists "$work/mars/info/train_name.txt" "$work/mars/info/test_name.txt" "$work/mars/info/tracks_train_info.mat" \
  "$work/mars/info/tracks_test_info.mat" "$work/mars/info/query_IDX.mat" "$work/mars/bbox_train/0001/0001C1T0001F001.jpg" \
  "$work/mars/bbox_test/0004/0004C2T0001F003.jpg"
expect 1 "exists and is not empty" -- "$rt" synth --layout mars --output "$work/mars" "${small[@]}"
touch "$work/file"
expect 1 "exists and is not a folder" -- "$rt" synth --layout mars --output "$work/file" "${small[@]}"
expect 0 "duke layout, 36 images; train 6, query 3, gallery 3 tracklets" -- "$rt" synth --layout duke --output "$work/duke" "${small[@]}"
exists "$work/duke/train/0001/0001/0001_C1_F0001_X00001.jpg" "$work/duke/query/0004" "$work/duke/gallery/0004"
expect 0 "market layout, 39 images; train 18, query 6, gallery 15 images" -- "$rt" synth --layout market --output "$work/market" "${small[@]}" --junk 1 --distractors 0
exists "$work/market/bounding_box_train/0001_c1s1_000001_01.jpg" "$work/market/query" "$work/market/bounding_box_test"
ls "$work/market/bounding_box_test" | grep -q '^-1_c' && pass=$((pass + 1)) || { echo "FAIL: no market junk image"; fail=$((fail + 1)); }
expect 0 "veri layout, 42 images; train 18, query 6, gallery 18 images" -- "$rt" synth --layout veri --output "$work/veri" "${small[@]}" --size 64x64
exists "$work/veri/name_train.txt" "$work/veri/name_query.txt" "$work/veri/name_test.txt" "$work/veri/test_track.txt" \
  "$work/veri/image_train/0001_c001_00000005_0.jpg"

cli_test_end test_synth_cli
