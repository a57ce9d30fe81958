#!/usr/bin/env bash
# Image-to-video search over generated cameras (issue 11, item 4): pipelines/demo.sh runs
# one reidembed pipeline per camera of a `reid-train synth --scene` scene (2 cameras), all
# writing one gallery (GALLERY) besides the JSON lines; then
#  1. `reid-search export` reads the gallery back as JSON lines, and `reid-train scene-eval`
#     on them gives the same I2V rank-1 and mAP (against the scene's ground truth) as on the
#     elements' own JSON lines: the gallery holds the same tracklets and embeddings;
#  2. `reid-search` with each query photo ranks every tracklet with the cosine that
#     scene-eval ranks by (the photo's embedding from `reid-train embed`, image side of the
#     same model): same tracklets, scores equal within 1e-4, best first.
# On SQLite (the PostgreSQL store is covered by reidembed_gallery and gallery_search; a
# second demo run here would double the test's time). REID_I2V_PG=1 under
# with_postgres.sh runs it on PostgreSQL too.
#   test_i2v.sh REID_TRAIN REID_SEARCH PLUGIN_DIR WORKDIR
set -euo pipefail
rt=$1 rs=$2 plugins=$3 work=$4
repo=$(cd "$(dirname "$0")/../.." && pwd)
model=$repo/models/reid-resnet18-synth.safetensors
command -v python3 >/dev/null || { echo "no python3: skipped"; exit 77; }
if [ "${REID_SANITIZED:-0}" = 1 ]; then
  echo "sanitizer build: gst-launch-1.0 cannot load this plugin (the ASan runtime must come first): skipped"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work"
export GST_PLUGIN_PATH=$plugins GST_REGISTRY=$work/registry.bin GST_REGISTRY_FORK=no
fail=0
galleries=("$work/gallery.sqlite")
[ -n "${REID_TEST_PG:-}" ] && [ "${REID_I2V_PG:-0}" = 1 ] && galleries+=("$REID_TEST_PG")
for gallery in "${galleries[@]}"; do
  label=sqlite
  case $gallery in postgres*) label=postgresql ;; esac
  out=$work/out # the scene is generated once and reused (demo.sh caches it in OUT)
  echo "== $label"
  if ! RT=$rt MODEL=$model DEVICE=cpu OUT=$out ANNOTATE=0 SEED=3 PEOPLE=8 SCENE_SECONDS=16 \
      SIZE=320x180 GALLERY=$gallery "$repo/pipelines/demo.sh" >"$work/demo-$label.log" 2>&1; then
    cat "$work/demo-$label.log"
    echo "FAIL: pipelines/demo.sh failed"
    exit 1
  fi
  scene=$(ls -d "$out"/scene-* | head -n 1)
  "$rs" export --gallery "$gallery" >"$work/exported-$label.jsonl"
  "$rt" scene-eval --jsonl "$work/exported-$label.jsonl" --queries "$out/queries.txt" \
    --query-embeddings "$out/queries.npy" --scene "$scene" --json "$work/gallery-$label.json" \
    >"$work/eval-$label.log"
  elements=$(grep -vc '"match"' "$out/tracklets.jsonl")
  stored=$(wc -l <"$work/exported-$label.jsonl")
  pick() { sed -E "s/.*\"$1\":([0-9.]+).*/\\1/" "$2"; }
  echo "elements' JSON lines: $elements tracklets, I2V rank-1 $(pick rank1 "$out/accuracy.json") mAP $(pick mAP "$out/accuracy.json")"
  echo "gallery:              $stored tracklets, I2V rank-1 $(pick rank1 "$work/gallery-$label.json") mAP $(pick mAP "$work/gallery-$label.json")"
  if [ "$elements" != "$stored" ] || [ "$(pick rank1 "$out/accuracy.json")" != "$(pick rank1 "$work/gallery-$label.json")" ] ||
     [ "$(pick mAP "$out/accuracy.json")" != "$(pick mAP "$work/gallery-$label.json")" ]; then
    echo "FAIL ($label): the gallery's I2V differs from the elements'"
    fail=1
  fi
  # 2: reid-search's ranking = scene-eval's cosine, for the first 3 query photos
  n=0
  while read -r photo && [ $n -lt 3 ]; do
    "$rs" --gallery "$gallery" --model "$model" --device cpu --query "$photo" --top-k 100000 --json \
      >"$work/search-$label-$n.json"
    n=$((n + 1))
  done <"$out/queries.txt"
  python3 - "$out/queries.npy" "$work/exported-$label.jsonl" "$work"/search-"$label"-*.json <<'PY' || fail=1
import json, math, struct, sys
npy, exported, searches = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(npy, 'rb') as f:
    assert f.read(6) == b'\x93NUMPY'
    major = f.read(2)[0]
    hlen = struct.unpack('<H' if major == 1 else '<I', f.read(2 if major == 1 else 4))[0]
    header = eval(f.read(hlen).decode('latin1'))
    assert header['descr'] == '<f4' and not header['fortran_order'], header
    n, d = header['shape']
    data = struct.unpack('<%df' % (n * d), f.read(4 * n * d))
queries = [data[i * d:(i + 1) * d] for i in range(n)]
tracklets = {}
for line in open(exported):
    t = json.loads(line)
    tracklets[(t['stream'], t['track_id'])] = t['embedding']
bad = 0
for i, path in enumerate(sorted(searches, key=lambda p: int(p.rsplit('-', 1)[1].split('.')[0]))):
    res = json.load(open(path))['results']
    q = queries[i]
    if len(res) != len(tracklets):
        print('query %d: %d results, %d tracklets' % (i, len(res), len(tracklets))); bad += 1
    worst = 0.0
    for k, r in enumerate(res):
        e = tracklets[(r['stream'], r['track_id'])]
        cos = sum(a * b for a, b in zip(q, e)) / math.sqrt(sum(a * a for a in q) * sum(b * b for b in e))
        worst = max(worst, abs(cos - r['score']))
        if k and r['score'] > res[k - 1]['score'] + 1e-7:
            print('query %d: results out of order at %d' % (i, k)); bad += 1
    print('query %d: %d tracklets ranked, largest |score - cosine| %.2e' % (i, len(res), worst))
    if worst > 1e-4:
        bad += 1
sys.exit(1 if bad else 0)
PY
done
exit $fail
