#!/usr/bin/env bash
# Issue 12's figures on a machine with a real GPU, in one run: GPU training throughput at batch
# 128 and 1024 (`train --backend gpu --bench`), decode throughput at up to 65536 points on the
# tiled and the dense kernel (`manifold --bench`, TFLOP/s from timestamp queries), and the default
# model trained 100 epochs on the GPU (cosine schedule) with its test figures.
#
# Build here, run there (the device machine has no Rust): from the repository root,
#   cargo build --release --bin train --bin manifold
#   BIN=target/release MNIST_DIR=... bash tests/benches/gpu-device.sh
# QUICK=1 runs each part small (1024 images, a 64-unit model), to check the script on lavapipe. Everything printed also goes to
# $OUT/gpu-device.log when OUT is set.
set -euo pipefail
BIN=${BIN:-target/release}
: "${MNIST_DIR:?set MNIST_DIR to the folder with the MNIST IDX files}"
export MNIST_DIR
if [[ -n "${OUT:-}" ]]; then
  exec > >(tee "$OUT/gpu-device.log") 2>&1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ "${QUICK:-0}" == 1 ]]; then
  limit=(--limit 1024 --hidden 64); epochs=1; batches=64,256
else
  limit=(); epochs=${EPOCHS:-100}; batches=1024,4096,16384,65536
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader || true

echo "== training throughput on the GPU"
for batch in 128 1024; do
  "$BIN/train" --backend gpu --bench --batch-size "$batch" "${limit[@]}" 2>&1 | grep -E "model:|throughput"
done

echo "== decoding (GPU time from timestamp queries)"
for kernel in tiled dense; do
  echo "-- $kernel kernel"
  "$BIN/manifold" --model www/models/mnist-2d.safetensors --bench --batches "$batches" --gpu-kernel "$kernel" | grep -vE "^cpu"
done

echo "== the default model, $epochs epochs on the GPU, cosine schedule"
start=$(date +%s%N)
"$BIN/train" --backend gpu --epochs "$epochs" --lr-schedule cosine "${limit[@]}" --out "$work/gpu.safetensors" 2>&1 \
  | grep -vE "^\s*$" | grep -E "model:|epoch +[0-9]+/|trained|test "
echo "whole process: $(( ($(date +%s%N) - start) / 1000000 )) ms"
