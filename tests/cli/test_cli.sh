#!/usr/bin/env bash
# reid-train on good and bad command lines: exit codes (0 ok, 1 failed, 2 usage),
# one-line errors that name the cause, and the outputs of init/info/embed.
#   test_cli.sh PATH/reid-train
set -u
rt=$1
. "$(dirname "$0")/../cli_expect.sh"
cli_test_begin cli



# ---- top level and help
expect 2 "a command is required" -- "$rt"
expect 2 "unknown command 'frobnicate'" -- "$rt" frobnicate
expect 0 "commands:" -- "$rt" --help
for c in init info embed; do expect 0 "usage: reid-train $c" -- "$rt" "$c" --help; done

# ---- init
expect 2 "--arch is required" -- "$rt" init --output "$work/m.safetensors"
expect 2 "--output is required" -- "$rt" init --arch resnet18
expect 2 "expects one of resnet18, resnet34, resnet50, mobilenet_v2, osnet_x0_25" -- "$rt" init --arch vgg16 --output "$work/m.safetensors"
expect 2 "--last-stride expects an integer in [1, 2]" -- "$rt" init --arch resnet18 --last-stride 3 --output "$work/m.safetensors"
expect 2 "--input-size expects HEIGHTxWIDTH" -- "$rt" init --arch resnet18 --input-size 10x10 --output "$work/m.safetensors"
expect 2 "--dtype expects f32, f16 or bf16" -- "$rt" init --arch resnet18 --dtype f64 --output "$work/m.safetensors"
expect 2 "--embed-after-bn needs --bnneck" -- "$rt" init --arch resnet18 --embed-after-bn --output "$work/m.safetensors"
expect 2 "unknown or misses its value" -- "$rt" init --arch resnet18 --bogus --output "$work/m.safetensors"
expect 2 "unexpected argument 'extra'" -- "$rt" init --arch resnet18 --output "$work/m.safetensors" extra
expect 1 "$work/nodir/m.safetensors" -- "$rt" init --arch resnet18 --output "$work/nodir/m.safetensors"
expect 0 "wrote" -- "$rt" init --arch resnet18 --input-size 64x32 --bnneck --num-classes 7 --dtype f16 --output "$work/m.safetensors"

# ---- info
expect 0 "model: resnet18, last stride 1, input 64x32, embedding 512, BNNeck, 7 classes" -- "$rt" info "$work/m.safetensors"
expect 0 "classifier.weight" -- "$rt" info "$work/m.safetensors"
expect 2 "a checkpoint file is required" -- "$rt" info
expect 1 "$work/absent.safetensors" -- "$rt" info "$work/absent.safetensors"
printf 'not a checkpoint' >"$work/garbage.safetensors"
expect 1 "garbage.safetensors" -- "$rt" info "$work/garbage.safetensors"

# ---- the default model shipped in models/ loads and embeds
default_model=$(dirname "$0")/../../models/reid-resnet18-synth.safetensors
expect 0 "model: resnet18, last stride 1, input 128x64, embedding 512, BNNeck (embedding after BN), 240 classes" -- "$rt" info "$default_model"

# ---- embed: arguments
expect 2 "--model is required" -- "$rt" embed --input x --output y
expect 2 "--input is required" -- "$rt" embed --model m --output y
expect 2 "--output is required" -- "$rt" embed --model m --input x
expect 2 "--device expects cpu, cuda or auto" -- "$rt" embed --model m --input x --output y --device tpu
expect 2 "--batch-size expects an integer" -- "$rt" embed --model m --input x --output y --batch-size 0
expect 2 "--precision expects" -- "$rt" embed --model m --input x --output y --precision fp8
expect 1 "absent.safetensors" -- "$rt" embed --model "$work/absent.safetensors" --input x --output "$work/e.npy"
expect 1 "garbage.safetensors" -- "$rt" embed --model "$work/garbage.safetensors" --input x --output "$work/e.npy"

# ---- embed: an image list (PPM decoded by FFmpeg)
scripts=$(dirname "$0")/../../scripts
"$scripts/make-test-images.sh" "$work/imgs" 40 90 1
"$scripts/make-test-images.sh" "$work/imgs" 64 128 2
mv "$work/imgs/img-1.ppm" "$work/imgs/a.ppm"
mv "$work/imgs/img-2.ppm" "$work/imgs/b.ppm"
printf '# two images\na.ppm\n\n  b.ppm\na.ppm\n' >"$work/imgs/list.txt"
expect 0 "" -- "$rt" embed --model "$work/m.safetensors" --input "$work/imgs/list.txt" --output "$work/e.npy" --device cpu --batch-size 2
expect_size "$work/e.npy" $((128 + 3 * 512 * 4))
expect 0 "" -- "$rt" embed --model "$default_model" --input "$work/imgs/list.txt" --output "$work/d.npy" --device cpu
expect_size "$work/d.npy" $((128 + 3 * 512 * 4))
if cmp -s <(tail -c +129 "$work/e.npy" | head -c 2048) <(tail -c +$((129 + 2 * 2048)) "$work/e.npy" | head -c 2048); then
  pass=$((pass + 1))
else
  echo "FAIL: the same image listed twice gave different embeddings"
  fail=$((fail + 1))
fi
printf 'a.ppm\nmissing.ppm\n' >"$work/imgs/bad.txt"
expect 1 "missing.ppm" -- "$rt" embed --model "$work/m.safetensors" --input "$work/imgs/bad.txt" --output "$work/e2.npy" --device cpu
printf 'this is text' >"$work/imgs/broken.jpg"
printf 'broken.jpg\n' >"$work/imgs/broken.txt"
expect 1 "broken.jpg" -- "$rt" embed --model "$work/m.safetensors" --input "$work/imgs/broken.txt" --output "$work/e2.npy" --device cpu
printf '# nothing\n' >"$work/imgs/empty.txt"
expect 1 "the image list is empty" -- "$rt" embed --model "$work/m.safetensors" --input "$work/imgs/empty.txt" --output "$work/e2.npy"
if [ -e "$work/e2.npy" ]; then echo "FAIL: a failed embed left an output"; fail=$((fail + 1)); else pass=$((pass + 1)); fi

# ---- embed: a .npy batch written by the library itself (the embeddings above are 2-D, not images)
expect 1 "expected float32 N x 3 x H x W" -- "$rt" embed --model "$work/m.safetensors" --input "$work/e.npy" --output "$work/e3.npy"
expect 0 "" -- "$rt" embed --model "$work/m.safetensors" --input "$work/imgs/list.txt" --output "$work/raw.npy" --raw --threads 1

# ---- ONNX: export, then embed through the importer (the ONNX tests: tests/nn/test_onnx.c, parity)
expect 2 "--format expects safetensors or onnx" -- "$rt" export --format tflite --model "$work/m.safetensors" --output "$work/m.onnx"
expect 0 "" -- "$rt" export --format onnx --model "$work/m.safetensors" --output "$work/m.onnx"
expect 0 "" -- "$rt" embed --model "$work/m.onnx" --input "$work/imgs/list.txt" --output "$work/o.npy" --device cpu
expect_size "$work/o.npy" $((128 + 3 * 512 * 4))
expect 1 "fixed at 64x32" -- "$rt" embed --model "$work/m.onnx" --input "$work/imgs/list.txt" --output "$work/o2.npy" --input-size 128x64
LC_ALL=C sed 's/Relu/Selu/g' "$work/m.onnx" >"$work/selu.onnx"
expect 1 "operator Selu is not supported" -- "$rt" embed --model "$work/selu.onnx" --input "$work/imgs/list.txt" --output "$work/o2.npy"
printf 'not protobuf' >"$work/garbage.onnx"
expect 1 "garbage.onnx: not an ONNX model" -- "$rt" embed --model "$work/garbage.onnx" --input "$work/imgs/list.txt" --output "$work/o2.npy"

cli_test_end cli
