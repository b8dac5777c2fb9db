#!/usr/bin/env bash
# `npm test`: every test of the project. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/setup.sh test

# The tests find MNIST as the trainer does: $MNIST_DIR if set, else ./data/mnist (downloaded and
# checksum-verified when missing).
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

echo "== setup's decisions, with each tool hidden (dry runs)"
node --test tests/setup.test.mjs

echo "== the page's language catalogues and its i18n functions"
node --test tests/i18n.test.mjs

echo "== format, lint (native and wasm32, tests included) and docs"
cargo fmt --check
cargo clippy --release --locked --all-targets -- -D warnings
cargo clippy --release --locked --target wasm32-unknown-unknown --lib -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps

echo "== cargo test"
cargo test --release --locked

echo "== the library builds for wasm32, with wgpu's WebGPU backend only"
cargo build --release --locked --target wasm32-unknown-unknown --lib
features=$(cargo tree --locked --target wasm32-unknown-unknown -e features -i wgpu)
if grep -q 'wgpu feature "webgl"' <<<"$features"; then
  echo "wgpu's webgl feature is enabled for wasm32: WebGL has no compute shaders and it triples the size" >&2
  exit 1
fi
grep -q 'wgpu feature "webgpu"' <<<"$features" || { echo "wgpu's webgpu feature is missing for wasm32" >&2; exit 1; }
echo "ok: wasm32 build uses wgpu features: $(grep -o 'wgpu feature "[a-z-]*"' <<<"$features" | sort -u | tr '\n' ' ')"

echo "== a small model from the trainer, for the page's model picker"
export SMALL_MODEL="$PWD/target/browser-test/small.safetensors"
cargo run --release --locked --bin train -- --limit 2048 --epochs 2 \
  --hidden 64,32 --iw-samples 4 --seed 7 --out "$SMALL_MODEL"

echo "== a model with an 8-dimensional latent, for the panels' tests"
export LATENT8_MODEL="$PWD/target/browser-test/latent8.safetensors"
cargo run --release --locked --bin train -- --limit 2048 --epochs 1 --hidden 32 --latent 8 \
  --seed 7 --out "$LATENT8_MODEL"

echo "== a small training subset and the native session, for the Train panel's tests"
export TRAIN_SUBSET="$PWD/target/browser-test/train-small.safetensors.gz"
cargo run --release --locked --bin testset -- --data "${MNIST_DIR:-data/mnist}" --split train --per-class 50 --out "$TRAIN_SUBSET"
cargo build --release --locked --bin session --bin manifold
export RELEASE_BIN="$PWD/target/release"

echo "== the page in a real browser (Chromium, with and without WebGPU)"
bash www/build.sh
node --test --test-concurrency=1 tests/browser/explorer.test.mjs tests/browser/teach.test.mjs tests/browser/panels.test.mjs \
  tests/browser/train.test.mjs tests/browser/i18n.test.mjs
